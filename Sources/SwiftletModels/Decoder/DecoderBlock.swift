import SwiftletTensor
import SwiftletQuant
import CSwiftletKernels

/// How an architecture's block departs from Llama's (the defaults): pre-norm attention with
/// rotary positions, then a pre-norm SwiGLU feed-forward, each added to the residual stream.
/// Each architecture file declares its own; sliding-window layers come from the configuration.
struct BlockVariant: Sendable {
    enum GatedActivation: Sendable { case swiglu, geglu }

    /// A bias added to each of the query, key and value projections (Qwen2).
    var projectionBiases = false
    /// RMSNorm over each query and key head before RoPE (QK-norm: Qwen3, Gemma 3).
    var queryKeyNorm = false
    /// The queries are multiplied by the attention scale after RoPE and the scores are left
    /// unscaled, as llama.cpp's graph does for Phi-3 and Gemma 3 (before its f16 rounding).
    var scalesQueries = false
    /// RMSNorm on each sub-block's output before its residual add (Gemma 3's sandwich norms).
    var postNorms = false
    /// SiLU-gated (SwiGLU) or tanh-GELU-gated (GeGLU) feed-forward.
    var activation = GatedActivation.swiglu
    /// Q/K/V and gate/up are row ranges of one fused tensor each (Phi-3). The file names no
    /// per-matrix tensor for an importance matrix, so the matmul observer sees no product.
    var fusedProjections = false
}

extension Architecture {
    var block: BlockVariant {
        switch self {
        case .llama: Llama.block
        case .gemma3: Gemma3.block
        case .qwen2: Qwen2.block
        case .qwen3: Qwen3.block
        case .phi3: Phi3.block
        }
    }
}

/// One weight product of a block: `output = W·input + LoRA + bias`.
struct Product {
    let role: MatmulWeight.Role
    let weight: QuantizedMatrix
    let bias: UnsafeMutableBufferPointer<Float>?
    let output: UnsafeMutablePointer<Float>

    init(_ role: MatmulWeight.Role, _ weight: QuantizedMatrix, bias: UnsafeMutableBufferPointer<Float>? = nil,
         into output: UnsafeMutablePointer<Float>) {
        self.role = role; self.weight = weight; self.bias = bias; self.output = output
    }
}

extension MatmulWeight.Role {
    /// The name of the product's output in llama.cpp's graph (activation taps).
    var activationName: String {
        switch self {
        case .attentionQuery: "Qcur"
        case .attentionKey: "Kcur"
        case .attentionValue: "Vcur"
        case .attentionOutput: "attn_out"
        case .ffnGate: "ffn_gate"
        case .ffnUp: "ffn_up"
        case .ffnDown: "ffn_out"
        }
    }
}

extension Transformer {
    /// `x += Wo · attend(RoPE(Wq·h), RoPE(Wk·h), Wv·h)`, `h = RMSNorm(x)`, over `tokens` rows of
    /// the residual stream at positions `start…`, with the variant's biases, QK-norm, query
    /// scaling and post-norm. Sliding-window layers attend to the last `slidingWindow` positions
    /// with the local RoPE base.
    func attentionBlock(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config, b = block
        let local = c.isSlidingWindowLayer(layer)

        normalize(s.x, w.attentionNorm, rows: n, width: c.dim, into: s.xb, tap: "attn_norm", layer)
        project(layer, input: s.xb, tokens: n,
                Product(.attentionQuery, w.wq, bias: b.projectionBiases ? w.queryBias! : nil, into: s.q),
                Product(.attentionKey, w.wk, bias: b.projectionBiases ? w.keyBias! : nil, into: s.k),
                Product(.attentionValue, w.wv, bias: b.projectionBiases ? w.valueBias! : nil, into: s.v))
        if b.queryKeyNorm {
            normalize(s.q, w.queryNorm!, rows: n * c.headCount, width: c.headDim, into: s.q, tap: "Qcur_normed", layer)
            normalize(s.k, w.keyNorm!, rows: n * c.kvHeadCount, width: c.headDim, into: s.k, tap: "Kcur_normed", layer)
        }
        applyRoPE(tokens: n, start: start, local: local)
        if b.scalesQueries {
            let q = s.q, qDim = c.qDim, scale = c.attentionScale
            forRows(n) { r in VectorOps.scale(q + r.lowerBound * qDim, by: scale, count: r.count * qDim) }
        }
        tap("Qrope-\(layer)", s.q, n * c.qDim); tap("Krope-\(layer)", s.k, n * c.kvDim)
        let keyRotation = cache.keyRotation, valueRotation = cache.valueRotation
        if keyRotation > 0 {
            swiftlet_gc_hadamard(s.q, n * c.qDim, keyRotation)
            swiftlet_gc_hadamard(s.k, n * c.kvDim, keyRotation)
        }
        if valueRotation > 0 { swiftlet_gc_hadamard(s.v, n * c.kvDim, valueRotation) }
        storeKV(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attend(layer: layer, tokens: n, start: start, window: local ? c.slidingWindow : 0,
               scale: b.scalesQueries ? 1 : c.attentionScale)
        tap("kqv_out-\(layer)", s.attention, n * c.qDim)
        if valueRotation > 0 { swiftlet_gc_hadamard(s.attention, n * c.qDim, valueRotation) }
        project(layer, input: s.attention, tokens: n, Product(.attentionOutput, w.wo, into: s.xb2))
        addToResidual(layer, tokens: n, postNorm: b.postNorms ? w.postAttentionNorm! : nil, tap: "attn_post_norm", "ffn_inp")
    }

    /// `x += W_down · (act(W_gate·h) ⊙ W_up·h)`, `h = RMSNorm(x)`, with the variant's activation
    /// (ggml's SiLU or f16 GELU table, bit for bit) and post-norm.
    func feedForwardBlock(_ layer: Int, tokens n: Int) {
        let w = weights.layers[layer], s = state, c = config, b = block

        normalize(s.x, w.ffnNorm, rows: n, width: c.dim, into: s.xb, tap: "ffn_norm", layer)
        project(layer, input: s.xb, tokens: n, Product(.ffnGate, w.wGate, into: s.gate), Product(.ffnUp, w.wUp, into: s.up))
        // Whole token rows per thread when a row is whole 16-float chunks: the kernels' scalar
        // tail (libm expf for SwiGLU) then stays where it is on one thread.
        let gate = s.gate, up = s.up, ffn = c.ffnDim, swiglu = b.activation == .swiglu
        let rows = ffn % 16 == 0 ? n : 1, width = n * ffn / rows
        forRows(rows) { r in
            let offset = r.lowerBound * width, count = r.count * width
            if swiglu { swiftlet_gc_swiglu(gate + offset, up + offset, gate + offset, count) }
            else { swiftlet_gc_geglu(gate + offset, up + offset, gate + offset, count) }
        }
        tap(swiglu ? "ffn_swiglu-\(layer)" : "ffn_geglu-\(layer)", s.gate, n * c.ffnDim)
        project(layer, input: s.gate, tokens: n, Product(.ffnDown, w.wDown, into: s.xb2))
        addToResidual(layer, tokens: n, postNorm: b.postNorms ? w.postFFNNorm! : nil, tap: "ffn_post_norm", "l_out")
    }

    /// `x += out` for a sub-block's output in `state.xb2`, after its post-norm if it has one;
    /// the normed output and the sum are shown to the activation tap as `normName-layer` and
    /// `sumName-layer`.
    func addToResidual(_ layer: Int, tokens n: Int, postNorm: UnsafeMutableBufferPointer<Float>?,
                       tap normName: StaticString, _ sumName: StaticString) {
        let s = state, dim = config.dim
        if let postNorm { normalize(s.xb2, postNorm, rows: n, width: dim, into: s.xb2, tap: normName, layer) }
        addResidual(s.xb2, tokens: n)
        tap("\(sumName)-\(layer)", s.x, n * dim)
    }

    /// RMSNorm of `rows` rows of `width`, shown to the activation tap as `name-layer`.
    @inline(__always)
    func normalize(_ input: UnsafePointer<Float>, _ weight: UnsafeMutableBufferPointer<Float>, rows: Int, width: Int,
                   into out: UnsafeMutablePointer<Float>, tap name: StaticString, _ layer: Int) {
        rmsNorm(input, weight: weight, rows: rows, width: width, into: out)
        tap("\(name)-\(layer)", out, rows * width)
    }

    /// The products of block `layer` on one input (Q, K, V; gate, up; or a single one): the input
    /// is shown to the matmul observer, the weights are multiplied in one pass (per token in a
    /// batched decode step), then each output gets its LoRA adapters and bias and is shown to the
    /// activation tap.
    func project(_ layer: Int, input: UnsafePointer<Float>, tokens n: Int,
                 _ a: Product, _ b: Product? = nil, _ c: Product? = nil) {
        func each(_ body: (Product) -> Void) { body(a); if let b { body(b) }; if let c { body(c) } }
        if !block.fusedProjections {
            observeInput(layer: layer, a.role, b?.role, c?.role, input: input, rows: n, cols: a.weight.cols)
        }
        if let b, sequenceRows == nil || n == 1 {
            QuantizedMatrix.matmul(a.weight, into: a.output, b.weight, into: b.output, c?.weight, into: c?.output,
                                   input: input, tokens: n, scratch: state.scratch, pool: pool)
        } else {
            each { linear($0.weight, input, tokens: n, into: $0.output) }
        }
        each { addAdapters(layer: layer, $0.role, input: input, tokens: n, into: $0.output) }
        each { p in
            if let bias = p.bias { addBias(bias, to: p.output, tokens: n) }
            tap("\(p.role.activationName)-\(layer)", p.output, n * p.weight.rows)
        }
    }
}
