import Foundation
import SwiftletTensor

/// Perplexity as llama-perplexity measures it: the token sequence is cut into non-overlapping
/// chunks of `contextSize`; each chunk is evaluated from an empty cache with its first token
/// replaced by BOS (when the model adds BOS), and only the second half of each chunk is scored.
/// PPL = exp(mean negative log-likelihood).
public enum Perplexity {
    /// Running result after some chunks.
    public struct Estimate: Sendable {
        /// Chunks scored so far / in total.
        public var chunk: Int
        public var chunkCount: Int
        /// Scored tokens so far.
        public var tokenCount: Int
        /// exp(mean NLL) so far.
        public var perplexity: Double
        /// Standard error of the perplexity estimate (llama-perplexity's "+/-").
        public var standardError: Double

        public init(chunk: Int, chunkCount: Int, tokenCount: Int, perplexity: Double, standardError: Double) {
            self.chunk = chunk; self.chunkCount = chunkCount; self.tokenCount = tokenCount
            self.perplexity = perplexity; self.standardError = standardError
        }
    }

    /// Runs the measurement; `progress` is called after every chunk with the running estimate.
    /// `tokens` is the whole text, tokenized as the model's tokenizer does by default.
    public static func measure(_ transformer: Transformer, tokens: [TokenID], contextSize: Int, bos: TokenID?,
                               progress: (Estimate) -> Void = { _ in }) throws -> Estimate {
        guard contextSize >= 2, contextSize <= transformer.contextLength else {
            throw SwiftletError.invalidArgument("perplexity context \(contextSize) must be in 2...\(transformer.contextLength)")
        }
        let chunkCount = tokens.count / contextSize
        guard chunkCount > 0 else {
            throw SwiftletError.invalidArgument("text has \(tokens.count) tokens, fewer than one chunk of \(contextSize)")
        }
        let first = contextSize / 2
        var nll = 0.0, nll2 = 0.0, count = 0
        var chunkTokens = [TokenID](repeating: 0, count: contextSize)
        var estimate = Estimate(chunk: 0, chunkCount: chunkCount, tokenCount: 0, perplexity: .nan, standardError: .nan)
        for chunk in 0..<chunkCount {
            let start = chunk * contextSize
            for i in 0..<contextSize { chunkTokens[i] = tokens[start + i] }
            if let bos { chunkTokens[0] = bos }
            try chunkTokens.withUnsafeBufferPointer { p in
                try transformer.evaluate(p, at: 0, logits: .from(first)) { index, logits in
                    guard index < contextSize - 1 else { return }
                    let target = tokens[start + index + 1]
                    let value = Double(negativeLogLikelihood(logits, target: Int(target)))
                    nll += value; nll2 += value * value; count += 1
                }
            }
            let mean = nll / Double(count)
            let variance = nll2 / Double(count) - mean * mean
            let ppl = exp(mean)
            estimate = Estimate(chunk: chunk + 1, chunkCount: chunkCount, tokenCount: count, perplexity: ppl,
                                standardError: count > 1 && variance > 0 ? ppl * (variance / Double(count - 1)).squareRoot() : 0)
            progress(estimate)
        }
        return estimate
    }

    /// −log softmax(logits)[target], computed stably.
    public static func negativeLogLikelihood(_ logits: UnsafeBufferPointer<Float>, target: Int) -> Float {
        logSumExp(logits) - logits[target]
    }

    /// log Σ exp(logits), computed stably (in double: the vocabulary can be large).
    public static func logSumExp(_ logits: UnsafeBufferPointer<Float>) -> Float {
        var m = -Float.infinity
        for v in logits { m = max(m, v) }
        var sum = 0.0
        for v in logits { sum += Double(expf(v - m)) }
        return m + Float(log(sum))
    }
}
