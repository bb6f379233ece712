import SwiftletFormats

/// Llama (Touvron et al. 2023), as used by SmolLM2: pre-norm blocks of
/// RMSNorm → grouped-query attention with rotary positions → residual →
/// RMSNorm → SwiGLU feed-forward → residual.
///
/// Llama 3.1 / 3.2 extend the context by dividing the RoPE frequency of each pair by a factor the
/// converter stores as `rope_freqs.weight` ("llama3" scaling); linear and YaRN scaling come from
/// the `llama.rope.scaling.*` keys. Both feed the RoPE table (`TransformerConfig.ropeScaling`).
enum Llama {
    /// The block as the paper draws it: no departures.
    static let block = BlockVariant()

    /// Hyperparameters from the `llama.*` GGUF keys.
    /// The GGUF converter permutes Q/K rows so that ggml's pairwise ("normal") RoPE matches the
    /// Hugging Face rotate-half layout.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try .common(.llama, m, rope: .interleaved)
    }
}
