import SwiftletTensor
import SwiftletQuant
import SwiftletFormats
import CSwiftletKernels

/// Phi-3 (Abdin et al. 2024, "Phi-3 Technical Report"): the Llama block — RMSNorm → grouped-query
/// attention with rotary positions → residual → RMSNorm → SwiGLU → residual — with the query, key
/// and value projections stored as one matrix (`attn_qkv`) and the gate and up projections as one
/// (`ffn_up`, gate rows first). The fused matrices are read as row ranges, so each projection is
/// the same product as in llama.cpp's fused one. NeoX RoPE; the queries are scaled by 1/√d before
/// attention (as llama.cpp's graph does, before their f16 rounding).
///
/// `phi3.attention.sliding_window` is accepted and not applied: llama.cpp disables Phi-3's sliding
/// window (its converters fill it inconsistently), and Swiftlet computes what llama.cpp computes.
/// The 128k variants' `rope_factors_long/short` tensors (LongRoPE) are not implemented and are
/// refused as unexpected tensors.
enum Phi3 {
    /// Hyperparameters from the `phi3.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try TransformerConfig.rejectUnknownKeys(.phi3, m, extra: ["attention.sliding_window"])
        var c = try TransformerConfig.common(.phi3, m)
        c.ropeConvention = .neox
        return c
    }
}

extension Transformer {
    /// One Phi-3 block over `tokens` rows of the residual stream at positions `start…`.
    func phi3Block(_ layer: Int, tokens n: Int, start: Int) {
        let w = weights.layers[layer], s = state, c = config

        // Attention: x += Wo · attend(RoPE(Wq·h) / √d, RoPE(Wk·h), Wv·h), h = RMSNorm(x), [Wq Wk Wv] fused
        rmsNorm(s.x, weight: w.attentionNorm, rows: n, width: c.dim, into: s.xb)
        tap("attn_norm-\(layer)", s.xb, n * c.dim)
        project(w.wq, into: s.q, w.wk, into: s.k, w.wv, into: s.v, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .attentionQuery, input: s.xb, tokens: n, into: s.q)
        addAdapters(layer: layer, .attentionKey, input: s.xb, tokens: n, into: s.k)
        addAdapters(layer: layer, .attentionValue, input: s.xb, tokens: n, into: s.v)
        tap("Vcur-\(layer)", s.v, n * c.kvDim)
        applyRoPE(tokens: n, start: start, local: false)
        tap("Kcur-\(layer)", s.k, n * c.kvDim)
        VectorOps.scale(s.q, by: c.attentionScale, count: n * c.qDim)
        tap("Qcur-\(layer)", s.q, n * c.qDim)
        storeKV(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attend(layer: layer, tokens: n, start: start, window: 0, scale: 1)
        tap("kqv_out-\(layer)", s.attention, n * c.qDim)
        linear(w.wo, s.attention, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .attentionOutput, input: s.attention, tokens: n, into: s.xb2)
        addResidual(s.xb2, tokens: n)

        // Feed-forward: x += W_down · (SiLU(W_gate·h) ⊙ W_up·h), h = RMSNorm(x), [W_gate W_up] fused
        rmsNorm(s.x, weight: w.ffnNorm, rows: n, width: c.dim, into: s.xb)
        tap("ffn_norm-\(layer)", s.xb, n * c.dim)
        project(w.wGate, into: s.gate, w.wUp, into: s.up, input: s.xb, tokens: n,
                               scratch: s.scratch, pool: pool)
        addAdapters(layer: layer, .ffnGate, input: s.xb, tokens: n, into: s.gate)
        addAdapters(layer: layer, .ffnUp, input: s.xb, tokens: n, into: s.up)
        swiftlet_gc_swiglu(s.gate, s.up, s.gate, n * c.ffnDim)
        linear(w.wDown, s.gate, tokens: n, into: s.xb2)
        addAdapters(layer: layer, .ffnDown, input: s.gate, tokens: n, into: s.xb2)
        tap("ffn_out-\(layer)", s.xb2, n * c.dim)
        addResidual(s.xb2, tokens: n)
        tap("l_out-\(layer)", s.x, n * c.dim)
    }
}
