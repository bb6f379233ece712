import Foundation
import Synchronization

/// A KV cache of its own in a ``LanguageModel``, for callers that send whole prompts (a server
/// slot, a batch job) rather than conversation turns.
///
/// ```swift
/// let session = PromptSession(model)
/// let prompt = model.tokenize(try model.formatChat([.user("Hi!")]))
/// for try await chunk in session.generate(tokens: prompt) { print(chunk.text, terminator: "") }
/// ```
/// Each generation reuses the longest prefix its prompt shares with what the cache already holds
/// (the previous prompt and reply), so a conversation sent again with one more turn evaluates only
/// the new tokens. Generations of different sessions share the model's thread token by token.
public final class PromptSession: Sendable {
    /// The model this session runs on.
    public let model: LanguageModel
    private let id: Int
    private let cached = Mutex<[TokenID]>([])

    /// A session with an empty cache of its own in `model`.
    public init(_ model: LanguageModel) {
        self.model = model
        id = model.makeSessionID()
    }

    deinit {
        let engine = model.engine, id = id
        Task { await engine.close(session: id) }
    }

    /// The tokens the cache held after the last generation that ran to its end: its prompt and
    /// generated tokens (empty before the first, and after a cancelled or failed one).
    public var cachedTokens: [TokenID] { cached.withLock { $0 } }

    /// How many leading tokens of `tokens` the cache already holds (per ``cachedTokens``).
    public func sharedPrefixLength(_ tokens: [TokenID]) -> Int {
        cached.withLock { cache in
            var n = 0
            let limit = min(cache.count, tokens.count)
            while n < limit && cache[n] == tokens[n] { n += 1 }
            return n
        }
    }

    /// Streams the continuation of `tokens` (a tokenized prompt, see ``LanguageModel/tokenize(_:)``).
    /// Dropping the stream or cancelling its task stops the generation within one token.
    public func generate(tokens: [TokenID], parameters: GenerationParameters = GenerationParameters()) -> AsyncThrowingStream<GenerationChunk, Error> {
        cached.withLock { $0 = [] }
        return model.generate(tokens: tokens, parameters: parameters, session: id) { [self] _, generated in
            cached.withLock { $0 = tokens + generated }
        }
    }
}
