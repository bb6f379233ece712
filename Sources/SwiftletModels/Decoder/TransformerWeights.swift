import SwiftletTensor
import SwiftletQuant

/// One tensor as stored in a model file: ggml type, shape in GGUF order (row length first) and
/// its bytes, viewed in place (the owner of the file keeps them alive).
public struct WeightTensor: @unchecked Sendable {  // `data` is read-only file memory
    public var type: GGMLType
    public var shape: [Int]
    public var data: UnsafeRawBufferPointer

    public init(type: GGMLType, shape: [Int], data: UnsafeRawBufferPointer) {
        self.type = type; self.shape = shape; self.data = data
    }
}

/// The weights of one transformer block. Matrices stay in their file format (quantized, read in
/// place); the small norm vectors are copied to f32 at load.
public struct LayerWeights: @unchecked Sendable {  // written at load, read-only afterwards
    public var attentionNorm: UnsafeMutableBufferPointer<Float>
    public var wq, wk, wv, wo: QuantizedMatrix
    /// Qwen2: biases added to the query / key / value projections.
    public var queryBias: UnsafeMutableBufferPointer<Float>?
    public var keyBias: UnsafeMutableBufferPointer<Float>?
    public var valueBias: UnsafeMutableBufferPointer<Float>?
    /// Gemma 3: RMSNorm over each query / key head.
    public var queryNorm: UnsafeMutableBufferPointer<Float>?
    public var keyNorm: UnsafeMutableBufferPointer<Float>?
    /// Gemma 3: norm on the attention output before the residual add.
    public var postAttentionNorm: UnsafeMutableBufferPointer<Float>?
    public var ffnNorm: UnsafeMutableBufferPointer<Float>
    public var wGate, wUp, wDown: QuantizedMatrix
    /// Gemma 3: norm on the FFN output before the residual add.
    public var postFFNNorm: UnsafeMutableBufferPointer<Float>?
}

/// All weights of a decoder-only transformer.
public final class TransformerWeights: @unchecked Sendable {  // written at load, read-only afterwards
    public let tokenEmbedding: QuantizedMatrix
    public let layers: [LayerWeights]
    public let outputNorm: UnsafeMutableBufferPointer<Float>
    /// The unembedding; the token embedding itself when the file has no `output.weight` (tied).
    public let output: QuantizedMatrix
    /// Llama 3's RoPE frequency factors (`rope_freqs.weight`, one per rotated pair), if any.
    public let ropeFrequencyFactors: [Float]?
    /// Keeps the memory the matrices point into alive (the mapped file, or test buffers).
    let storageOwner: AnyObject?
    /// Owns the f32 copies of the norm vectors.
    private let vectors: VectorArena

    /// Bytes of the weight matrices (the tied embedding once), which stay resident while a model runs.
    var matrixBytes: Int {
        var matrices = [tokenEmbedding] + layers.flatMap { [$0.wq, $0.wk, $0.wv, $0.wo, $0.wGate, $0.wUp, $0.wDown] }
        if output.data.baseAddress != tokenEmbedding.data.baseAddress { matrices.append(output) }
        return matrices.reduce(0) { $0 + $1.data.count }
    }

    /// What a tensor is for, so the mapping below can be declared as data.
    enum Role {
        case vector(Int)          // f32 norm weight of this length
        case matrix(rows: Int, cols: Int)
    }

    /// Maps the tensors of `tensors` onto the architecture's weights, strictly: a missing tensor
    /// throws `missingTensor`, one the architecture does not use throws `unexpectedTensor`, a
    /// wrong shape throws `shapeMismatch`.
    public init(config: TransformerConfig, tensors: [String: WeightTensor], storageOwner: AnyObject?) throws {
        self.storageOwner = storageOwner
        let arena = VectorArena()
        self.vectors = arena
        var unused = Set(tensors.keys)

        func take(_ name: String) throws -> WeightTensor {
            guard let t = tensors[name] else { throw SwiftletError.missingTensor(name) }
            unused.remove(name)
            return t
        }
        func matrix(_ name: String, rows: Int, cols: Int) throws -> QuantizedMatrix {
            let t = try take(name)
            guard t.shape.count == 2, t.shape[0] == cols, t.shape[1] == rows else {
                throw SwiftletError.shapeMismatch(op: "load \(name)", detail: "expected [\(cols), \(rows)], file has \(t.shape)")
            }
            return try QuantizedMatrix(type: t.type, rows: rows, cols: cols, data: t.data)
        }
        func vector(_ name: String, count: Int) throws -> UnsafeMutableBufferPointer<Float> {
            let t = try take(name)
            guard t.shape == [count] else {
                throw SwiftletError.shapeMismatch(op: "load \(name)", detail: "expected [\(count)], file has \(t.shape)")
            }
            let out = arena.allocate(count)
            if t.type == .f32 {
                guard t.data.count == count * 4 else {
                    throw SwiftletError.shapeMismatch(op: "load \(name)", detail: "\(t.data.count) bytes for \(count) f32")
                }
                UnsafeMutableRawBufferPointer(out).copyMemory(from: t.data)
            } else {
                let m = try QuantizedMatrix(type: t.type, rows: 1, cols: count, data: t.data)
                m.dequantizeRow(0, into: out.baseAddress!)
            }
            return out
        }
        func optionalVector(_ name: String, count: Int) throws -> UnsafeMutableBufferPointer<Float>? {
            tensors[name] == nil ? nil : try vector(name, count: count)
        }
        /// Row ranges of one fused matrix (Phi-3's QKV, gate|up) as separate matrices, read in place:
        /// a product's rows do not depend on each other, so the results are those of the fused one.
        func split(_ name: String, rows parts: [Int], cols: Int) throws -> [QuantizedMatrix] {
            let fused = try matrix(name, rows: parts.reduce(0, +), cols: cols)
            let rowBytes = fused.rowBytes
            var first = 0
            return try parts.map { rows in
                let data = UnsafeRawBufferPointer(rebasing: fused.data[first * rowBytes ..< (first + rows) * rowBytes])
                first += rows
                var part = try QuantizedMatrix(type: fused.type, rows: rows, cols: cols, data: data)
                part.llamaRepacked = fused.llamaRepacked   // llama.cpp decides on the fused tensor
                return part
            }
        }

        let c = config
        let names = c.architecture.tensorNames
        tokenEmbedding = try matrix(names.tokenEmbedding, rows: c.vocabSize, cols: c.dim)
        outputNorm = try vector(names.outputNorm, count: c.dim)
        output = tensors[names.output] == nil ? tokenEmbedding : try matrix(names.output, rows: c.vocabSize, cols: c.dim)

        var layers: [LayerWeights] = []
        for l in 0..<c.layerCount {
            let n = { (suffix: String) in "blk.\(l).\(suffix)" }
            let qkv = tensors[n("attn_qkv.weight")] != nil
                ? try split(n("attn_qkv.weight"), rows: [c.qDim, c.kvDim, c.kvDim], cols: c.dim)
                : [try matrix(n("attn_q.weight"), rows: c.qDim, cols: c.dim),
                   try matrix(n("attn_k.weight"), rows: c.kvDim, cols: c.dim),
                   try matrix(n("attn_v.weight"), rows: c.kvDim, cols: c.dim)]
            let gateUp = names.fusedGateUp
                ? try split(n("ffn_up.weight"), rows: [c.ffnDim, c.ffnDim], cols: c.dim)
                : [try matrix(n("ffn_gate.weight"), rows: c.ffnDim, cols: c.dim),
                   try matrix(n("ffn_up.weight"), rows: c.ffnDim, cols: c.dim)]
            var w = LayerWeights(
                attentionNorm: try vector(n("attn_norm.weight"), count: c.dim),
                wq: qkv[0], wk: qkv[1], wv: qkv[2],
                wo: try matrix(n("attn_output.weight"), rows: c.dim, cols: c.qDim),
                queryBias: nil, keyBias: nil, valueBias: nil,
                queryNorm: nil, keyNorm: nil, postAttentionNorm: nil,
                ffnNorm: try vector(n("ffn_norm.weight"), count: c.dim),
                wGate: gateUp[0], wUp: gateUp[1],
                wDown: try matrix(n("ffn_down.weight"), rows: c.dim, cols: c.ffnDim),
                postFFNNorm: nil)
            if names.attentionBiases {
                w.queryBias = try vector(n("attn_q.bias"), count: c.qDim)
                w.keyBias = try vector(n("attn_k.bias"), count: c.kvDim)
                w.valueBias = try vector(n("attn_v.bias"), count: c.kvDim)
            }
            if names.queryKeyNorms {
                w.queryNorm = try vector(n("attn_q_norm.weight"), count: c.headDim)
                w.keyNorm = try vector(n("attn_k_norm.weight"), count: c.headDim)
            }
            if names.sandwichNorms {
                w.postAttentionNorm = try vector(n("post_attention_norm.weight"), count: c.dim)
                w.postFFNNorm = try vector(n("post_ffw_norm.weight"), count: c.dim)
            }
            layers.append(w)
        }
        self.layers = layers
        if names.ropeFrequencyFactors, tensors["rope_freqs.weight"] != nil {
            let factors = try vector("rope_freqs.weight", count: c.ropeDim / 2)
            ropeFrequencyFactors = Array(factors)
        } else {
            ropeFrequencyFactors = nil
        }
        if let extra = unused.sorted().first { throw SwiftletError.unexpectedTensor(extra) }
    }

}

/// Owns float buffers allocated once at load and freed with the model.
final class VectorArena {
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []
    func allocate(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
        b.initialize(repeating: 0)
        buffers.append(b)
        return b
    }
    deinit { for b in buffers { b.deallocate() } }
}

/// The GGUF tensor names of an architecture (llama.cpp's names).
struct TensorNames {
    var tokenEmbedding = "token_embd.weight"
    var outputNorm = "output_norm.weight"
    var output = "output.weight"
    /// RMSNorm on each query / key head (Gemma 3, Qwen3).
    var queryKeyNorms = false
    /// Norms on the attention and FFN outputs before the residual adds (Gemma 3).
    var sandwichNorms = false
    /// `ffn_up.weight` holds the gate rows then the up rows (Phi-3).
    var fusedGateUp = false
    /// Llama 3's `rope_freqs.weight` may be present.
    var ropeFrequencyFactors = false
    /// Biases on the Q/K/V projections (Qwen2).
    var attentionBiases = false
}

extension Architecture {
    var tensorNames: TensorNames {
        switch self {
        case .llama: return TensorNames(ropeFrequencyFactors: true)
        case .gemma3: return TensorNames(queryKeyNorms: true, sandwichNorms: true)
        case .qwen2: return TensorNames(attentionBiases: true)
        case .qwen3: return TensorNames(queryKeyNorms: true)
        case .phi3: return TensorNames(fusedGateUp: true)
        }
    }
}
