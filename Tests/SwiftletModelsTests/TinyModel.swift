import Foundation
import SwiftletModels
import SwiftletQuant
import SwiftletTensor

/// Owns the f32 buffers of a tiny random model built in memory.
final class TinyStorage {
    var buffers: [UnsafeMutableRawBufferPointer] = []
    deinit { for b in buffers { b.deallocate() } }
}

/// Tiny random models (f32 weights, built in the test, no file) for shape and cache checks.
enum TinyModel {
    static func config(_ arch: Architecture) -> TransformerConfig {
        var c = TransformerConfig(
            architecture: arch, dim: 64, ffnDim: 96, layerCount: 3, headCount: 4, kvHeadCount: 2,
            headDim: 16, vocabSize: 50, trainedContext: 64, normEpsilon: 1e-5, ropeDim: 16,
            ropeConvention: .interleaved, ropeBase: 10_000, ropeBaseLocal: 10_000, slidingWindow: 0,
            globalLayerPeriod: 0, embeddingScale: 1, attentionScale: 1 / 4, finalLogitSoftcap: nil)
        if arch == .gemma3 {
            c.ropeConvention = .neox
            c.ropeBase = 1_000_000
            c.slidingWindow = 5
            c.globalLayerPeriod = 3
            c.embeddingScale = 8
            c.headDim = 32
            c.ropeDim = 32
            c.attentionScale = 1 / Float(32).squareRoot()
            c.finalLogitSoftcap = 30
        }
        return c
    }

    /// GGUF-named f32 tensors with deterministic pseudo-random values.
    static func tensors(_ c: TransformerConfig, seed: UInt64 = 1, tied: Bool = true) -> ([String: WeightTensor], TinyStorage) {
        let storage = TinyStorage()
        var rng = SeededGenerator(seed: seed)
        var out: [String: WeightTensor] = [:]
        func add(_ name: String, _ shape: [Int], scale: Float, offset: Float = 0) {
            let n = shape.reduce(1, *)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: n * 4, alignment: 64)
            let f = buffer.bindMemory(to: Float.self)
            for i in 0..<n { f[i] = offset + scale * (rng.nextUnit() * 2 - 1) }
            storage.buffers.append(buffer)
            out[name] = WeightTensor(type: .f32, shape: shape, data: UnsafeRawBufferPointer(buffer))
        }
        add("token_embd.weight", [c.dim, c.vocabSize], scale: 1)
        add("output_norm.weight", [c.dim], scale: 0.2, offset: 1)
        if !tied { add("output.weight", [c.dim, c.vocabSize], scale: 0.3) }
        for l in 0..<c.layerCount {
            let p = "blk.\(l)."
            add(p + "attn_norm.weight", [c.dim], scale: 0.2, offset: 1)
            add(p + "attn_q.weight", [c.dim, c.qDim], scale: 0.3)
            add(p + "attn_k.weight", [c.dim, c.kvDim], scale: 0.3)
            add(p + "attn_v.weight", [c.dim, c.kvDim], scale: 0.3)
            add(p + "attn_output.weight", [c.qDim, c.dim], scale: 0.2)
            add(p + "ffn_norm.weight", [c.dim], scale: 0.2, offset: 1)
            add(p + "ffn_gate.weight", [c.dim, c.ffnDim], scale: 0.3)
            add(p + "ffn_up.weight", [c.dim, c.ffnDim], scale: 0.3)
            add(p + "ffn_down.weight", [c.ffnDim, c.dim], scale: 0.2)
            if c.architecture == .gemma3 {
                add(p + "attn_q_norm.weight", [c.headDim], scale: 0.2, offset: 1)
                add(p + "attn_k_norm.weight", [c.headDim], scale: 0.2, offset: 1)
                add(p + "post_attention_norm.weight", [c.dim], scale: 0.2, offset: 1)
                add(p + "post_ffw_norm.weight", [c.dim], scale: 0.2, offset: 1)
            }
        }
        return (out, storage)
    }

    static func transformer(_ arch: Architecture, contextLength: Int = 32, maxBatch: Int = 512, tied: Bool = true,
                            cacheType: KVCacheType = .f32, pool: ComputePool = .shared) throws -> Transformer {
        let c = config(arch)
        let (t, storage) = tensors(c, tied: tied)
        let w = try TransformerWeights(config: c, tensors: t, storageOwner: storage)
        return try Transformer(config: c, weights: w, contextLength: contextLength, maxBatch: maxBatch, cacheType: cacheType, pool: pool)
    }
}

/// The f32 weights of a tiny model as plain arrays, for the scalar oracle below.
struct OracleWeights {
    let tensors: [String: [Float]]
    init(_ t: [String: WeightTensor]) {
        var d: [String: [Float]] = [:]
        for (k, v) in t { d[k] = Array(v.data.bindMemory(to: Float.self)) }
        tensors = d
    }
    subscript(_ name: String) -> [Float] { tensors[name]! }
}

/// A deliberately naive, independent forward pass (the paper's equations, whole sequence at once,
/// no cache) used as the test oracle for the optimized `Transformer`.
enum Oracle {
    static func rmsNorm(_ x: [Float], _ w: [Float], eps: Float) -> [Float] {
        let ms = x.reduce(0) { $0 + $1 * $1 } / Float(x.count)
        let r = 1 / (ms + eps).squareRoot()
        return zip(x, w).map { $0 * r * $1 }
    }
    /// `W` stored GGUF-style: `rows` rows of `cols` (shape [cols, rows]).
    static func matvec(_ w: [Float], rows: Int, cols: Int, _ x: [Float]) -> [Float] {
        (0..<rows).map { r in (0..<cols).reduce(Float(0)) { $0 + w[r * cols + $1] * x[$1] } }
    }
    static func rope(_ v: inout [Float], offset: Int, headDim: Int, ropeDim: Int, pos: Int, base: Float, neox: Bool) {
        for i in 0..<(ropeDim / 2) {
            let theta = Float(pos) / powf(base, Float(2 * i) / Float(ropeDim))
            let (a, b) = neox ? (i, i + ropeDim / 2) : (2 * i, 2 * i + 1)
            let x0 = v[offset + a], x1 = v[offset + b]
            v[offset + a] = x0 * cosf(theta) - x1 * sinf(theta)
            v[offset + b] = x0 * sinf(theta) + x1 * cosf(theta)
        }
    }

    /// Logits at every position of `tokens`.
    static func logits(_ c: TransformerConfig, _ W: OracleWeights, tokens: [TokenID]) -> [[Float]] {
        let gemma = c.architecture == .gemma3
        let n = tokens.count
        let emb = W["token_embd.weight"]
        var xs: [[Float]] = tokens.map { Int($0) }.map { t in Array(emb[t * c.dim ..< (t + 1) * c.dim]).map { $0 * c.embeddingScale } }
        for l in 0..<c.layerCount {
            let p = "blk.\(l)."
            let local = c.isSlidingWindowLayer(l)
            var qs: [[Float]] = [], ks: [[Float]] = [], vs: [[Float]] = []
            for (pos, x) in xs.enumerated() {
                let h = rmsNorm(x, W[p + "attn_norm.weight"], eps: c.normEpsilon)
                var q = matvec(W[p + "attn_q.weight"], rows: c.qDim, cols: c.dim, h)
                var k = matvec(W[p + "attn_k.weight"], rows: c.kvDim, cols: c.dim, h)
                let v = matvec(W[p + "attn_v.weight"], rows: c.kvDim, cols: c.dim, h)
                if gemma {
                    for hd in 0..<c.headCount {
                        let r = hd * c.headDim ..< (hd + 1) * c.headDim
                        q.replaceSubrange(r, with: rmsNorm(Array(q[r]), W[p + "attn_q_norm.weight"], eps: c.normEpsilon))
                    }
                    for hd in 0..<c.kvHeadCount {
                        let r = hd * c.headDim ..< (hd + 1) * c.headDim
                        k.replaceSubrange(r, with: rmsNorm(Array(k[r]), W[p + "attn_k_norm.weight"], eps: c.normEpsilon))
                    }
                }
                let base = local ? c.ropeBaseLocal : c.ropeBase
                for hd in 0..<c.headCount { rope(&q, offset: hd * c.headDim, headDim: c.headDim, ropeDim: c.ropeDim, pos: pos, base: base, neox: gemma) }
                for hd in 0..<c.kvHeadCount { rope(&k, offset: hd * c.headDim, headDim: c.headDim, ropeDim: c.ropeDim, pos: pos, base: base, neox: gemma) }
                qs.append(q); ks.append(k); vs.append(v)
            }
            for i in 0..<n {
                var att = [Float](repeating: 0, count: c.qDim)
                for hd in 0..<c.headCount {
                    let g = hd / (c.headCount / c.kvHeadCount)
                    let js = (0...i).filter { j in !(local && i - j >= c.slidingWindow) }
                    let scores = js.map { j in
                        (0..<c.headDim).reduce(Float(0)) { $0 + qs[i][hd * c.headDim + $1] * ks[j][g * c.headDim + $1] } * c.attentionScale
                    }
                    let m = scores.max()!
                    let e = scores.map { expf($0 - m) }
                    let s = e.reduce(0, +)
                    for (idx, j) in js.enumerated() {
                        for d in 0..<c.headDim { att[hd * c.headDim + d] += e[idx] / s * vs[j][g * c.headDim + d] }
                    }
                }
                var o = matvec(W[p + "attn_output.weight"], rows: c.dim, cols: c.qDim, att)
                if gemma { o = rmsNorm(o, W[p + "post_attention_norm.weight"], eps: c.normEpsilon) }
                xs[i] = zip(xs[i], o).map(+)
            }
            for i in 0..<n {
                let h = rmsNorm(xs[i], W[p + "ffn_norm.weight"], eps: c.normEpsilon)
                let g = matvec(W[p + "ffn_gate.weight"], rows: c.ffnDim, cols: c.dim, h)
                let u = matvec(W[p + "ffn_up.weight"], rows: c.ffnDim, cols: c.dim, h)
                let act: [Float] = zip(g, u).map { a, b in
                    let f = gemma ? 0.5 * a * (1 + tanhf(0.7978845608 * (a + 0.044715 * a * a * a))) : a / (1 + expf(-a))
                    return f * b
                }
                var d = matvec(W[p + "ffn_down.weight"], rows: c.dim, cols: c.ffnDim, act)
                if gemma { d = rmsNorm(d, W[p + "post_ffw_norm.weight"], eps: c.normEpsilon) }
                xs[i] = zip(xs[i], d).map(+)
            }
        }
        let out = W.tensors["output.weight"] ?? emb
        return xs.map { x in
            var l = matvec(out, rows: c.vocabSize, cols: c.dim, rmsNorm(x, W["output_norm.weight"], eps: c.normEpsilon))
            if let cap = c.finalLogitSoftcap { l = l.map { cap * tanhf($0 / cap) } }
            return l
        }
    }
}
