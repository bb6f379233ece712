import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import CSwiftletKernels

/// Llama (Touvron et al. 2023), as used by SmolLM2: pre-norm blocks of
/// RMSNorm → grouped-query attention with rotary positions → residual →
/// RMSNorm → SwiGLU feed-forward → residual.
///
/// Llama 3.1 / 3.2 extend the context by dividing the RoPE frequency of each pair by a factor the
/// converter stores as `rope_freqs.weight` ("llama3" scaling); linear and YaRN scaling come from
/// the `llama.rope.scaling.*` keys. Both feed the RoPE table (`TransformerConfig.ropeScaling`).
enum Llama {
    /// Hyperparameters from the `llama.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try TransformerConfig.rejectUnknownKeys(.llama, m)
        var c = try TransformerConfig.common(.llama, m)
        // The GGUF converter permutes Q/K rows so that ggml's pairwise ("normal") RoPE matches
        // the Hugging Face rotate-half layout.
        c.ropeConvention = .interleaved
        return c
    }
}

extension Transformer {
    /// One Llama block over `tokens` rows of the residual stream at positions `start…`.
    func llamaBlock(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config

        // Attention: x += Wo · attend(RoPE(Wq·h), RoPE(Wk·h), Wv·h), h = RMSNorm(x)
        tap("inp-\(layer)", s.x, n * c.dim)
        rmsNorm(s.x, weight: w.attentionNorm, rows: n, width: c.dim, into: s.xb)
        tap("attn_norm-\(layer)", s.xb, n * c.dim)
        observeInput(layer: layer, .attentionQuery, .attentionKey, .attentionValue, input: s.xb, rows: n, cols: c.dim)
        project(w.wq, into: s.q, w.wk, into: s.k, w.wv, into: s.v, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .attentionQuery, input: s.xb, tokens: n, into: s.q)
        addAdapters(layer: layer, .attentionKey, input: s.xb, tokens: n, into: s.k)
        addAdapters(layer: layer, .attentionValue, input: s.xb, tokens: n, into: s.v)
        tap("Qcur-\(layer)", s.q, n * c.qDim); tap("Kcur-\(layer)", s.k, n * c.kvDim); tap("Vcur-\(layer)", s.v, n * c.kvDim)
        applyRoPE(tokens: n, start: start, local: false)
        tap("Qrope-\(layer)", s.q, n * c.qDim); tap("Krope-\(layer)", s.k, n * c.kvDim)
        storeKV(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attend(layer: layer, tokens: n, start: start, window: 0, scale: c.attentionScale)
        tap("kqv_out-\(layer)", s.attention, n * c.qDim)
        observeInput(layer: layer, .attentionOutput, input: s.attention, rows: n, cols: c.qDim)
        linear(w.wo, s.attention, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .attentionOutput, input: s.attention, tokens: n, into: s.xb2)
        tap("attn_out-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("ffn_inp-\(layer)", s.x, n * c.dim)

        // Feed-forward: x += W_down · (SiLU(W_gate·h) ⊙ W_up·h), h = RMSNorm(x)
        rmsNorm(s.x, weight: w.ffnNorm, rows: n, width: c.dim, into: s.xb)
        tap("ffn_norm-\(layer)", s.xb, n * c.dim)
        observeInput(layer: layer, .ffnGate, .ffnUp, input: s.xb, rows: n, cols: c.dim)
        project(w.wGate, into: s.gate, w.wUp, into: s.up, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .ffnGate, input: s.xb, tokens: n, into: s.gate)
        addAdapters(layer: layer, .ffnUp, input: s.xb, tokens: n, into: s.up)
        tap("ffn_gate-\(layer)", s.gate, n * c.ffnDim); tap("ffn_up-\(layer)", s.up, n * c.ffnDim)
        swiftlet_gc_swiglu(s.gate, s.up, s.gate, n * c.ffnDim)   // ggml's exp, bit for bit
        tap("ffn_swiglu-\(layer)", s.gate, n * c.ffnDim)
        observeInput(layer: layer, .ffnDown, input: s.gate, rows: n, cols: c.ffnDim)
        linear(w.wDown, s.gate, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .ffnDown, input: s.gate, tokens: n, into: s.xb2)
        tap("ffn_out-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("l_out-\(layer)", s.x, n * c.dim)
    }
}
