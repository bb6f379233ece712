import Foundation

/// Generates the continuations of several prompts at once on one model: after each prompt's
/// prefill, every decode step runs the next token of all unfinished sequences in one forward pass,
/// so each weight block is read once per step for all of them rather than once per sequence.
///
/// ```swift
/// let generator = BatchedGenerator(model, sequences: 4)
/// let prompts = ["The sea", "A forest", "The city", "Winter"].map { model.tokenize($0) }
/// let replies = try await generator.generate(prompts: prompts,
///                                            parameters: GenerationParameters(maxTokens: 64, sampling: .greedy))
/// ```
/// Each sequence keeps a KV cache of its own (one ``PromptSession`` per sequence, reused by the
/// next call, so a prompt that extends the previous one evaluates only its new tokens). A
/// sequence's output is the same as when it is generated alone: its logits are bit-identical to a
/// lone decode. Sequences stop independently (end of generation, stop strings, `maxTokens`); the
/// batch shrinks as they finish.
///
/// Batching is the model's: concurrent generations of any sessions of one ``LanguageModel``
/// (server slots, several ``ChatSession``s) share their decode steps the same way; this type is the
/// convenient front for a known set of prompts.
public final class BatchedGenerator: Sendable {
    /// The model the sequences run on.
    public let model: LanguageModel
    private let sessions: [PromptSession]

    /// A generator of up to `sequences` concurrent sequences on `model` (at least one).
    public init(_ model: LanguageModel, sequences: Int) {
        self.model = model
        sessions = (0 ..< max(sequences, 1)).map { _ in PromptSession(model) }
    }

    /// How many prompts one call takes at most.
    public var sequenceCount: Int { sessions.count }

    /// Streams the chunks of every sequence as they are generated, each tagged with the index of
    /// its prompt; each sequence's last chunk carries its statistics. The stream ends when every
    /// sequence has finished. Cancelling the consuming task (or dropping the stream) stops them all
    /// within one token.
    /// - Throws: (through the stream) ``SwiftletError/invalidArgument(_:)`` for more prompts than
    ///   ``sequenceCount``; a sequence's own error (an empty prompt, a context overflow) ends the
    ///   whole stream.
    public func stream(prompts: [[TokenID]], parameters: GenerationParameters = GenerationParameters())
        -> AsyncThrowingStream<(index: Int, chunk: GenerationChunk), Error> {
        let (stream, continuation) = AsyncThrowingStream<(index: Int, chunk: GenerationChunk), Error>.makeStream()
        guard prompts.count <= sessions.count else {
            continuation.finish(throwing: SwiftletError.invalidArgument(
                "\(prompts.count) prompts for a generator of \(sessions.count) sequences"))
            return stream
        }
        let sessions = sessions
        let task = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, prompt) in prompts.enumerated() {
                        group.addTask {
                            for try await chunk in sessions[index].generate(tokens: prompt, parameters: parameters) {
                                continuation.yield((index, chunk))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The generated text of each prompt, in prompt order.
    public func generate(prompts: [[TokenID]], parameters: GenerationParameters = GenerationParameters()) async throws -> [String] {
        var texts = Array(repeating: "", count: prompts.count)
        for try await (index, chunk) in stream(prompts: prompts, parameters: parameters) { texts[index] += chunk.text }
        return texts
    }
}
