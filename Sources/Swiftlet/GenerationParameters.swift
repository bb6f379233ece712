import SwiftletModels

/// What to generate and when to stop.
public struct GenerationParameters: Sendable, Equatable {
    /// Most tokens to generate; negative: until the context is full (llama.cpp's `-n -1`).
    public var maxTokens: Int
    /// How each token is chosen.
    public var sampling: SamplingParameters
    /// Generation stops before any of these strings would appear in the output.
    public var stopStrings: [String]
    /// Stop at the model's end-of-sequence / end-of-turn tokens.
    public var stopAtEndOfGeneration: Bool
    /// Restricts the output to a grammar, JSON Schema, regex or list of choices (see
    /// ``GenerationConstraint``); `nil` = free text.
    public var constraint: GenerationConstraint?
    /// When set, each generated token's chunk carries its ``TokenLogprob``: the log-probability of
    /// the chosen token and of the `logprobs` most likely tokens (0…20, OpenAI's `top_logprobs`),
    /// under the model's distribution before sampling (logit bias and penalties not applied).
    /// `nil` = none (no extra cost).
    public var logprobs: Int?

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], stopAtEndOfGeneration: Bool = true,
                constraint: GenerationConstraint? = nil, logprobs: Int? = nil) {
        self.maxTokens = maxTokens; self.sampling = sampling
        self.stopStrings = stopStrings; self.stopAtEndOfGeneration = stopAtEndOfGeneration
        self.constraint = constraint; self.logprobs = logprobs
    }

    /// Most alternatives ``logprobs`` may ask for (OpenAI's limit).
    public static let maxTopLogprobs = 20
}
