import SwiftletFormats

/// Gemma 3 (Gemma Team 2025): embeddings scaled by √d; each block is
/// RMSNorm → attention with RMSNorm on each query/key head (QK-norm) → RMSNorm → residual →
/// RMSNorm → GeGLU (tanh GELU) → RMSNorm → residual. Five sliding-window layers (RoPE base
/// 10 000) alternate with one global layer (RoPE base `rope.freq_base`). NeoX RoPE layout.
///
/// Gemma's RMSNorm multiplies by (1 + w); the GGUF converter already stores 1 + w, so the norms
/// here are plain RMSNorm (as in llama.cpp's gemma3 graph).
enum Gemma3 {
    /// QK-norm, queries scaled before attention, sandwich norms, GeGLU.
    static let block = BlockVariant(queryKeyNorm: true, scalesQueries: true, postNorms: true, activation: .geglu)

    /// Local layers use this RoPE base; only the global layers use `rope.freq_base`.
    static let localRoPEBase: Float = 10_000
    /// Every sixth layer is global.
    static let globalLayerPeriod = 6

    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        var c = try TransformerConfig.common(.gemma3, m, rope: .neox,
                                             extraKeys: ["attention.sliding_window", "final_logit_softcapping"])
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
