import SwiftletFormats

/// Qwen3 (Qwen Team 2025, "Qwen3 Technical Report"), dense models: the Llama block —
/// RMSNorm → grouped-query attention with rotary positions → residual → RMSNorm → SwiGLU →
/// residual — without Qwen2's QKV bias, and with RMSNorm on each query and key head before RoPE
/// (QK-norm) for stable training. NeoX RoPE layout; the head width (`key_length`, 128) need not be
/// `embedding_length / head_count`.
enum Qwen3 {
    /// The Llama block plus QK-norm.
    static let block = BlockVariant(queryKeyNorm: true)

    /// Hyperparameters from the `qwen3.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try .common(.qwen3, m, rope: .neox)
    }
}
