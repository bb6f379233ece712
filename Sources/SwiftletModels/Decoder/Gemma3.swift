import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import CSwiftletKernels

/// Gemma 3 (Gemma Team 2025): embeddings scaled by √d; each block is
/// RMSNorm → attention with RMSNorm on each query/key head (QK-norm) → RMSNorm → residual →
/// RMSNorm → GeGLU (tanh GELU) → RMSNorm → residual. Five sliding-window layers (RoPE base
/// 10 000) alternate with one global layer (RoPE base `rope.freq_base`). NeoX RoPE layout.
///
/// Gemma's RMSNorm multiplies by (1 + w); the GGUF converter already stores 1 + w, so the norms
/// here are plain RMSNorm (as in llama.cpp's gemma3 graph).
enum Gemma3 {
    /// Local layers use this RoPE base; only the global layers use `rope.freq_base`.
    static let localRoPEBase: Float = 10_000
    /// Every sixth layer is global.
    static let globalLayerPeriod = 6

    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try TransformerConfig.rejectUnknownKeys(.gemma3, m, extra: ["attention.sliding_window", "final_logit_softcapping"])
        var c = try TransformerConfig.common(.gemma3, m)
        c.ropeConvention = .neox
        c.ropeBase = try m.floatIfPresent("gemma3.rope.freq_base") ?? 1_000_000
        c.ropeBaseLocal = localRoPEBase
        c.slidingWindow = try m.intIfPresent("gemma3.attention.sliding_window") ?? 0
        c.globalLayerPeriod = globalLayerPeriod
        c.embeddingScale = Float(c.dim).squareRoot()
        // query_pre_attn_scalar = key_length for the released sizes.
        c.attentionScale = 1 / Float(c.headDim).squareRoot()
        if let cap = try m.floatIfPresent("gemma3.final_logit_softcapping"), cap > 0 { c.finalLogitSoftcap = cap }
        return c
    }
}

extension Transformer {
    /// One Gemma 3 block over `tokens` rows of the residual stream at positions `start…`.
    func gemma3Block(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config
        let local = c.isSlidingWindowLayer(layer)

        // Attention with QK-norm and a post-attention norm.
        rmsNorm(s.x, weight: w.attentionNorm, rows: n, width: c.dim, into: s.xb)
        tap("attn_norm-\(layer)", s.xb, n * c.dim)
        observeInput(layer: layer, .attentionQuery, .attentionKey, .attentionValue, input: s.xb, rows: n, cols: c.dim)
        project(w.wq, into: s.q, w.wk, into: s.k, w.wv, into: s.v, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .attentionQuery, input: s.xb, tokens: n, into: s.q)
        addAdapters(layer: layer, .attentionKey, input: s.xb, tokens: n, into: s.k)
        addAdapters(layer: layer, .attentionValue, input: s.xb, tokens: n, into: s.v)
        rmsNorm(s.q, weight: w.queryNorm!, rows: n * c.headCount, width: c.headDim, into: s.q)
        rmsNorm(s.k, weight: w.keyNorm!, rows: n * c.kvHeadCount, width: c.headDim, into: s.k)
        tap("Qcur_normed-\(layer)", s.q, n * c.qDim); tap("Kcur_normed-\(layer)", s.k, n * c.kvDim)
        applyRoPE(tokens: n, start: start, local: local)
        // Gemma scales the queries (as llama.cpp's graph does, before their f16 rounding).
        VectorOps.scale(s.q, by: c.attentionScale, count: n * c.qDim)
        storeKV(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attend(layer: layer, tokens: n, start: start, window: local ? c.slidingWindow : 0, scale: 1)
        tap("kqv_out-\(layer)", s.attention, n * c.qDim)
        observeInput(layer: layer, .attentionOutput, input: s.attention, rows: n, cols: c.qDim)
        linear(w.wo, s.attention, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .attentionOutput, input: s.attention, tokens: n, into: s.xb2)
        rmsNorm(s.xb2, weight: w.postAttentionNorm!, rows: n, width: c.dim, into: s.xb2)
        tap("attn_post_norm-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("sa_out-\(layer)", s.x, n * c.dim)

        // GeGLU feed-forward with a post-FFN norm.
        rmsNorm(s.x, weight: w.ffnNorm, rows: n, width: c.dim, into: s.xb)
        observeInput(layer: layer, .ffnGate, .ffnUp, input: s.xb, rows: n, cols: c.dim)
        project(w.wGate, into: s.gate, w.wUp, into: s.up, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .ffnGate, input: s.xb, tokens: n, into: s.gate)
        addAdapters(layer: layer, .ffnUp, input: s.xb, tokens: n, into: s.up)
        swiftlet_gc_geglu(s.gate, s.up, s.gate, n * c.ffnDim)   // ggml's f16 GELU table, bit for bit
        tap("ffn_geglu-\(layer)", s.gate, n * c.ffnDim)
        observeInput(layer: layer, .ffnDown, input: s.gate, rows: n, cols: c.ffnDim)
        linear(w.wDown, s.gate, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .ffnDown, input: s.gate, tokens: n, into: s.xb2)
        rmsNorm(s.xb2, weight: w.postFFNNorm!, rows: n, width: c.dim, into: s.xb2)
        tap("ffn_post_norm-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("l_out-\(layer)", s.x, n * c.dim)
    }
}
