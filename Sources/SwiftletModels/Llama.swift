import SwiftletTensor
import SwiftletFormats

/// Llama (Touvron et al. 2023), as used by SmolLM2: pre-norm blocks of
/// RMSNorm → grouped-query attention with rotary positions → residual →
/// RMSNorm → SwiGLU feed-forward → residual.
enum Llama {
    /// Hyperparameters from the `llama.*` GGUF keys.
    static func config(_ m: GGUFMetadataContainer) throws -> TransformerConfig {
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
        rmsNorm(s.x, weight: w.attentionNorm, rows: n, width: c.dim, into: s.xb)
        linear(w.wq, s.xb, tokens: n, into: s.q)
        linear(w.wk, s.xb, tokens: n, into: s.k)
        linear(w.wv, s.xb, tokens: n, into: s.v)
        applyRoPE(tokens: n, start: start, local: false)
        cache.store(layer: layer, start: start, tokens: n, k: s.k, v: s.v)
        attention(layer: layer, tokens: n, start: start, window: 0)
        linear(w.wo, s.attention, tokens: n, into: s.xb2)
        addResidual(s.xb2, tokens: n)

        // Feed-forward: x += W_down · (SiLU(W_gate·h) ⊙ W_up·h), h = RMSNorm(x)
        rmsNorm(s.x, weight: w.ffnNorm, rows: n, width: c.dim, into: s.xb)
        linear(w.wGate, s.xb, tokens: n, into: s.gate)
        linear(w.wUp, s.xb, tokens: n, into: s.up)
        VectorOps.swiglu(gate: s.gate, up: s.up, out: s.gate, count: n * c.ffnDim)
        linear(w.wDown, s.gate, tokens: n, into: s.xb2)
        addResidual(s.xb2, tokens: n)
    }
}
