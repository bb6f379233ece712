import SwiftletFormats

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
    /// The Llama block with fused projections and the queries scaled by 1/√d before attention.
    static let block = BlockVariant(scalesQueries: true, fusedProjections: true)

    /// Hyperparameters from the `phi3.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
        try .common(.phi3, m, rope: .neox, extraKeys: ["attention.sliding_window"])
    }
}
