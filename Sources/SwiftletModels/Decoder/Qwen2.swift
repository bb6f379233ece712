import SwiftletFormats

/// Qwen2 (Yang et al. 2024, "Qwen2 Technical Report"), also Qwen2.5: the Llama block —
/// RMSNorm → grouped-query attention with rotary positions → residual → RMSNorm → SwiGLU →
/// residual — with a bias on each of the query, key and value projections ("QKV bias"). The
/// GGUF converter leaves Q/K unpermuted, so RoPE rotates the two halves of a head (NeoX layout).
/// The unembedding is tied to the token embedding in the small sizes (no `output.weight`).
enum Qwen2 {
    /// The Llama block plus a bias on each of the query, key and value projections.
    static let block = BlockVariant(projectionBiases: true)

    /// Hyperparameters from the `qwen2.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try .common(.qwen2, m, rope: .neox)
    }
}
