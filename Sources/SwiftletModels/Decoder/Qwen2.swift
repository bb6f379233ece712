import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import CSwiftletKernels

/// Qwen2 (Yang et al. 2024, "Qwen2 Technical Report"), also Qwen2.5: the Llama block —
/// RMSNorm → grouped-query attention with rotary positions → residual → RMSNorm → SwiGLU →
/// residual — with a bias on each of the query, key and value projections ("QKV bias"). The
/// GGUF converter leaves Q/K unpermuted, so RoPE rotates the two halves of a head (NeoX layout).
/// The unembedding is tied to the token embedding in the small sizes (no `output.weight`).
enum Qwen2 {
    /// Hyperparameters from the `qwen2.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try TransformerConfig.rejectUnknownKeys(.qwen2, m)
        var c = try TransformerConfig.common(.qwen2, m)
        c.ropeConvention = .neox
        return c
    }
}

extension Transformer {
    /// One Qwen2 block over `tokens` rows of the residual stream at positions `start…`.
    func qwen2Block(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config

        // Attention: x += Wo · attend(RoPE(Wq·h + bq), RoPE(Wk·h + bk), Wv·h + bv), h = RMSNorm(x)
        rmsNorm(s.x, weight: w.attentionNorm, rows: n, width: c.dim, into: s.xb)
        tap("attn_norm-\(layer)", s.xb, n * c.dim)
        observeInput(layer: layer, .attentionQuery, .attentionKey, .attentionValue, input: s.xb, rows: n, cols: c.dim)
        project(w.wq, into: s.q, w.wk, into: s.k, w.wv, into: s.v, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .attentionQuery, input: s.xb, tokens: n, into: s.q)
        addAdapters(layer: layer, .attentionKey, input: s.xb, tokens: n, into: s.k)
        addAdapters(layer: layer, .attentionValue, input: s.xb, tokens: n, into: s.v)
        addBias(w.queryBias!, to: s.q, tokens: n)
        addBias(w.keyBias!, to: s.k, tokens: n)
        addBias(w.valueBias!, to: s.v, tokens: n)
        tap("Vcur-\(layer)", s.v, n * c.kvDim)
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
        tap("ffn_norm-\(layer)", s.xb, n * c.dim)
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
