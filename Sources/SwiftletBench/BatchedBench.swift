import Foundation
import SwiftletModels
import SwiftletTensor

/// llama-batched-bench's measurement: `sequences` sequences each get a prompt of `prompt` tokens
/// (evaluated sequence by sequence, each as one batch), then `generate` decode steps each run one
/// token of every sequence in one batched forward pass. Random token ids, a fresh cache per run.
public struct BatchedBenchResult: Sendable {
    public var prompt: Int
    public var generate: Int
    public var sequences: Int
    /// Seconds of the prompt phase and of the decode phase.
    public var promptSeconds: Double
    public var generateSeconds: Double

    /// KV positions in use at the end (llama-batched-bench's `N_KV`).
    public var kvPositions: Int { sequences * (prompt + generate) }
    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(sequences * prompt) / promptSeconds : 0 }
    public var generateTokensPerSecond: Double { generateSeconds > 0 ? Double(sequences * generate) / generateSeconds : 0 }
    public var totalSeconds: Double { promptSeconds + generateSeconds }
    public var tokensPerSecond: Double { totalSeconds > 0 ? Double(kvPositions) / totalSeconds : 0 }

    /// One row of llama-batched-bench's table.
    public var markdownRow: String {
        String(format: "| %5d | %6d | %4d | %6d | %8.3f | %8.2f | %8.3f | %8.2f | %8.3f | %8.2f |",
               prompt, generate, sequences, kvPositions, promptSeconds, promptTokensPerSecond,
               generateSeconds, generateTokensPerSecond, totalSeconds, tokensPerSecond)
    }

    public static let markdownHeader = """
        |    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
        |-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
        """
}

public enum BatchedBench {
    /// Runs one (prompt, generate, sequences) point on `transformer` (whose context must hold
    /// `prompt + generate` positions and whose batch must hold `max(prompt, sequences)` tokens).
    public static func run(_ transformer: Transformer, prompt: Int, generate: Int, sequences: Int,
                           random: inout SplitMix64) throws -> BatchedBenchResult {
        try checkShape(transformer, prompt: prompt, generate: generate, sequences: sequences)
        let vocab = UInt64(transformer.config.vocabSize)
        func token() -> TokenID { TokenID(random.next() % vocab) }
        let sessions = try (0..<sequences).map { _ in try sequence(transformer) }
        let prompts = sessions.map { _ in (0..<prompt).map { _ in token() } }
        let steps = (0..<generate).map { _ in (0..<sequences).map { _ in token() } }
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        let t0 = now()
        for (session, p) in zip(sessions, prompts) { try session.prefill(p) }
        let t1 = now()
        for tokens in steps { _ = try GenerationSession.step(sessions, tokens: tokens) }
        let t2 = now()
        return BatchedBenchResult(prompt: prompt, generate: generate, sequences: sequences,
                                  promptSeconds: Double(t1 - t0) / 1e9, generateSeconds: Double(t2 - t1) / 1e9)
    }
}

extension BatchedBench {
    /// A sequence with a KV cache of its own.
    static func sequence(_ transformer: Transformer) throws -> GenerationSession {
        GenerationSession(transformer: transformer, cache: try transformer.makeCache(for: "the KV cache of a sequence"))
    }

    /// Refuses counts that are negative, overflow, exceed the context or need more KV cache memory
    /// (one cache per sequence) than the transformer's ``KVCacheBudget`` has left.
    static func checkShape(_ transformer: Transformer, prompt: Int, generate: Int, sequences: Int) throws {
        guard prompt >= 1, generate >= 0, sequences >= 1 else {
            throw SwiftletError.invalidArgument("batched bench needs a prompt of at least 1 token and at least 1 sequence")
        }
        let (positions, overflow) = prompt.addingReportingOverflow(generate)
        guard !overflow, positions <= transformer.contextLength else {
            throw SwiftletError.contextOverflow(requested: overflow ? .max : positions, limit: transformer.contextLength)
        }
        let (cacheBytes, tooMany) = sequences.multipliedReportingOverflow(by: transformer.defaultCache.byteCount)
        try transformer.cacheBudget.check(tooMany ? nil : cacheBytes, for: "\(sequences) sequences (one KV cache each)")
    }

    /// Decodes `sequences` sequences (prompts of `prompt` random tokens, `generate` greedy steps)
    /// each alone and then all together in batched steps, and counts the logits of the batched
    /// steps whose bits differ from the lone decode's (0 when batching is exact).
    public static func verify(_ transformer: Transformer, prompt: Int, generate: Int, sequences: Int,
                              random: inout SplitMix64) throws -> (compared: Int, mismatches: Int) {
        // The i-th prompt is i tokens longer, so every sequence sits at another position.
        let (longestPrompt, overflow) = prompt.addingReportingOverflow(max(sequences, 1) - 1)
        try checkShape(transformer, prompt: overflow ? .max : longestPrompt, generate: generate, sequences: sequences)
        let vocab = UInt64(transformer.config.vocabSize)
        let prompts = (0..<sequences).map { i in (0..<(prompt + i)).map { _ in TokenID(random.next() % vocab) } }
        func argmax(_ v: UnsafeBufferPointer<Float>) -> TokenID { TokenID(v.indices.max { v[$0] < v[$1] }!) }
        var fed: [[TokenID]] = [], lone: [[[Float]]] = []
        for p in prompts {
            let session = try sequence(transformer)
            var logits = try session.prefill(p).logits
            var tokens: [TokenID] = [], rows: [[Float]] = []
            for _ in 0..<generate {
                tokens.append(argmax(logits))
                logits = try session.step(tokens.last!)
                rows.append(Array(logits))
            }
            fed.append(tokens); lone.append(rows)
        }
        let sessions = try prompts.map { _ in try sequence(transformer) }
        for (s, p) in zip(sessions, prompts) { try s.prefill(p) }
        var compared = 0, mismatches = 0
        for step in 0..<generate {
            let logits = try GenerationSession.step(sessions, tokens: fed.map { $0[step] })
            for i in 0..<sequences {
                compared += logits[i].count
                mismatches += zip(logits[i], lone[i][step]).filter { $0.bitPattern != $1.bitPattern }.count
            }
        }
        return (compared, mismatches)
    }
}
