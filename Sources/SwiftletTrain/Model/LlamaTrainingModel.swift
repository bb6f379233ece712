import Foundation
import SwiftletTensor

/// A Llama-architecture decoder as a training graph: the parameters (GGUF names and layout) and
/// the tape of one batch of `batch` sequences of `sequenceLength` tokens ending in the mean
/// next-token cross-entropy.
///
/// Per block: RMSNorm → Q/K/V → RoPE (interleaved, as llama.cpp runs `llama` GGUFs) → causal
/// grouped-query attention → output projection → residual → RMSNorm → SwiGLU → residual.
public final class LlamaTrainingModel: @unchecked Sendable {  // mutable; used by one training task at a time
    public let shape: LlamaShape
    public let parameters: ParameterStore
    public let batch: Int
    public let sequenceLength: Int
    public let tape: Tape
    /// Token ids of the batch, row-major `[batch, sequenceLength]`.
    public let inputs: TokenBuffer
    /// The next token of each input position.
    public let targets: TokenBuffer
    /// Logits `[batch · sequenceLength, vocabSize]`.
    public let logits: Variable
    /// Mean cross-entropy, 1×1.
    public let loss: Variable

    /// Creates the parameters (zero; see ``initializeParameters(seed:)``) and records the graph.
    /// - Throws: ``SwiftletError/invalidArgument(_:)`` for an invalid shape or batch geometry.
    public convenience init(shape: LlamaShape, batch: Int, sequenceLength: Int, pool: ComputePool = .shared) throws {
        try shape.validate()
        try self.init(shape: shape, parameters: Self.makeParameters(shape), batch: batch,
                      sequenceLength: sequenceLength, pool: pool)
    }

    /// Records the graph over existing `parameters` (shared with another graph, or with frozen ones).
    public init(shape: LlamaShape, parameters: ParameterStore, batch: Int, sequenceLength: Int,
                pool: ComputePool = .shared) throws {
        try shape.validate()
        guard batch > 0, sequenceLength > 0, sequenceLength <= shape.contextLength else {
            throw SwiftletError.invalidArgument("batch \(batch) × sequence \(sequenceLength) (context \(shape.contextLength))")
        }
        let (tokens, overflow) = batch.multipliedReportingOverflow(by: sequenceLength)
        guard !overflow, tokens <= 1 << 24 else { throw SwiftletError.invalidArgument("batch of \(batch) × \(sequenceLength) tokens is too large") }
        self.shape = shape
        self.parameters = parameters
        self.batch = batch
        self.sequenceLength = sequenceLength
        tape = Tape(pool: pool)
        inputs = try TokenBuffer(count: tokens)
        targets = try TokenBuffer(count: tokens)
        func p(_ name: String) throws -> Variable {
            guard let v = parameters[name] else { throw SwiftletError.missingTensor(name) }
            return v
        }
        let t = tape
        var x = try t.embedding(p("token_embd.weight"), tokens: inputs, name: "embd")
        for l in 0..<shape.layerCount {
            let n = { (s: String) in "blk.\(l).\(s)" }
            let h = try t.rmsNorm(x, weight: p(n("attn_norm.weight")), eps: shape.normEpsilon, name: n("attn_norm"))
            let q = try t.linear(h, weight: p(n("attn_q.weight")), name: n("q"))
            let k = try t.linear(h, weight: p(n("attn_k.weight")), name: n("k"))
            let v = try t.linear(h, weight: p(n("attn_v.weight")), name: n("v"))
            let qr = try t.rope(q, heads: shape.headCount, sequenceLength: sequenceLength, base: shape.ropeBase, name: n("q_rope"))
            let kr = try t.rope(k, heads: shape.kvHeadCount, sequenceLength: sequenceLength, base: shape.ropeBase, name: n("k_rope"))
            let a = try t.attention(q: qr, k: kr, v: v, sequenceLength: sequenceLength, heads: shape.headCount,
                                    kvHeads: shape.kvHeadCount, name: n("attn"))
            let o = try t.linear(a, weight: p(n("attn_output.weight")), name: n("attn_out"))
            x = try t.add(x, o, name: n("attn_residual"))
            let h2 = try t.rmsNorm(x, weight: p(n("ffn_norm.weight")), eps: shape.normEpsilon, name: n("ffn_norm"))
            let g = try t.linear(h2, weight: p(n("ffn_gate.weight")), name: n("gate"))
            let u = try t.linear(h2, weight: p(n("ffn_up.weight")), name: n("up"))
            let s = try t.swiglu(gate: g, up: u, name: n("swiglu"))
            let d = try t.linear(s, weight: p(n("ffn_down.weight")), name: n("down"))
            x = try t.add(x, d, name: n("ffn_residual"))
        }
        let final = try t.rmsNorm(x, weight: p("output_norm.weight"), eps: shape.normEpsilon, name: "output_norm")
        logits = try t.linear(final, weight: p("output.weight"), name: "logits")
        loss = try t.crossEntropy(logits, targets: targets, name: "loss")
    }

    /// The parameters of `shape` with their GGUF names; weights are `[out, in]`.
    public static func makeParameters(_ shape: LlamaShape) throws -> ParameterStore {
        let s = ParameterStore()
        try s.add("token_embd.weight", rows: shape.vocabSize, columns: shape.dim)
        for l in 0..<shape.layerCount {
            let n = { (x: String) in "blk.\(l).\(x)" }
            try s.add(n("attn_norm.weight"), rows: 1, columns: shape.dim)
            try s.add(n("attn_q.weight"), rows: shape.dim, columns: shape.dim)
            try s.add(n("attn_k.weight"), rows: shape.kvDim, columns: shape.dim)
            try s.add(n("attn_v.weight"), rows: shape.kvDim, columns: shape.dim)
            try s.add(n("attn_output.weight"), rows: shape.dim, columns: shape.dim)
            try s.add(n("ffn_norm.weight"), rows: 1, columns: shape.dim)
            try s.add(n("ffn_gate.weight"), rows: shape.ffnDim, columns: shape.dim)
            try s.add(n("ffn_up.weight"), rows: shape.ffnDim, columns: shape.dim)
            try s.add(n("ffn_down.weight"), rows: shape.dim, columns: shape.ffnDim)
        }
        try s.add("output_norm.weight", rows: 1, columns: shape.dim)
        try s.add("output.weight", rows: shape.vocabSize, columns: shape.dim)
        return s
    }

    /// Norm weights 1; matrices normal with standard deviation 0.02, the projections that feed the
    /// residual stream (attention output, feed-forward down) scaled by 1/√(2·layers) as in GPT-2.
    public func initializeParameters(seed: UInt64) {
        var sampler = NormalSampler(seed: seed)
        let residualScale = 1 / Float(2 * shape.layerCount).squareRoot()
        for p in parameters.parameters {
            if p.rows == 1 {
                p.value.update(repeating: 1, count: p.count)
                continue
            }
            let std: Float = p.name.hasSuffix("attn_output.weight") || p.name.hasSuffix("ffn_down.weight")
                ? 0.02 * residualScale : 0.02
            for i in 0..<p.count { p.value[i] = sampler.next() * std }
        }
    }

    /// Runs the graph forward and returns the loss.
    @discardableResult
    public func forward() -> Float {
        tape.forward()
        return loss.value[0]
    }

    /// Back-propagates the loss, adding `seed` × d(loss)/d(parameter) to the parameter gradients.
    public func backward(seed: Float = 1) {
        tape.backward(from: loss, seed: seed)
    }
}
