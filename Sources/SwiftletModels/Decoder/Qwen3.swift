import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import CSwiftletKernels

/// Qwen3 (Qwen Team 2025, "Qwen3 Technical Report"), dense models: the Llama block —
/// RMSNorm → grouped-query attention with rotary positions → residual → RMSNorm → SwiGLU →
/// residual — without Qwen2's QKV bias, and with RMSNorm on each query and key head before RoPE
/// (QK-norm) for stable training. NeoX RoPE layout; the head width (`key_length`, 128) need not be
/// `embedding_length / head_count`.
enum Qwen3 {
    /// Hyperparameters from the `qwen3.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try TransformerConfig.rejectUnknownKeys(.qwen3, m)
        var c = try TransformerConfig.common(.qwen3, m)
        c.ropeConvention = .neox
        return c
    }
}

extension Transformer {
    /// One Qwen3 block over `tokens` rows of the residual stream at positions `start…`.
    func qwen3Block(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config

        // Attention: x += Wo · attend(RoPE(norm_q(Wq·h)), RoPE(norm_k(Wk·h)), Wv·h), h = RMSNorm(x)
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
        applyRoPE(tokens: n, start: start, local: false)
        tap("Qcur-\(layer)", s.q, n * c.qDim); tap("Kcur-\(layer)", s.k, n * c.kvDim)
        storeKV(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attend(layer: layer, tokens: n, start: start, window: 0, scale: c.attentionScale)
        tap("kqv_out-\(layer)", s.attention, n * c.qDim)
        observeInput(layer: layer, .attentionOutput, input: s.attention, rows: n, cols: c.qDim)
        linear(w.wo, s.attention, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .attentionOutput, input: s.attention, tokens: n, into: s.xb2)
        addResidual(s.xb2, tokens: n)
        tap("ffn_inp-\(layer)", s.x, n * c.dim)

        // Feed-forward: x += W_down · (SiLU(W_gate·h) ⊙ W_up·h), h = RMSNorm(x)
        rmsNorm(s.x, weight: w.ffnNorm, rows: n, width: c.dim, into: s.xb)
        observeInput(layer: layer, .ffnGate, .ffnUp, input: s.xb, rows: n, cols: c.dim)
        project(w.wGate, into: s.gate, w.wUp, into: s.up, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .ffnGate, input: s.xb, tokens: n, into: s.gate)
        addAdapters(layer: layer, .ffnUp, input: s.xb, tokens: n, into: s.up)
        swiftlet_gc_swiglu(s.gate, s.up, s.gate, n * c.ffnDim)
        observeInput(layer: layer, .ffnDown, input: s.gate, rows: n, cols: c.ffnDim)
        linear(w.wDown, s.gate, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .ffnDown, input: s.gate, tokens: n, into: s.xb2)
        tap("ffn_out-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("l_out-\(layer)", s.x, n * c.dim)
    }
}
