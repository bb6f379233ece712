import SwiftletTensor

/// A conversation's worth of model state: the transformer, its KV cache and the tokens the cache
/// holds. Feeding a new prompt reuses the longest shared prefix (a chat turn does not re-process
/// the history), then decoding appends one token at a time.
///
/// Not thread-safe; one session per transformer.
public final class GenerationSession {
    public let transformer: Transformer
    /// The tokens whose keys and values are in the cache, position = index.
    public private(set) var tokens: [Int]

    public init(transformer: Transformer) {
        self.transformer = transformer
        tokens = []
        tokens.reserveCapacity(transformer.contextLength)
    }

    /// Positions still free in the context.
    public var remainingContext: Int { transformer.contextLength - tokens.count }

    /// Forgets the cached tokens.
    public func reset() { tokens.removeAll(keepingCapacity: true) }

    /// Makes the cache hold exactly `prompt` and returns the logits after its last token.
    /// Returns how many prompt tokens had to be evaluated (the rest came from the cache).
    @discardableResult
    public func prefill(_ prompt: [Int]) throws -> (logits: UnsafeBufferPointer<Float>, evaluated: Int) {
        guard !prompt.isEmpty else { throw SwiftletError.invalidArgument("empty prompt") }
        guard prompt.count <= transformer.contextLength else {
            throw SwiftletError.contextOverflow(requested: prompt.count, limit: transformer.contextLength)
        }
        var shared = 0
        let limit = min(tokens.count, prompt.count)
        while shared < limit && tokens[shared] == prompt[shared] { shared += 1 }
        // The last prompt token always runs again: its logits are needed.
        shared = min(shared, prompt.count - 1)
        tokens.removeSubrange(shared...)
        try prompt.withUnsafeBufferPointer { p in
            try transformer.evaluate(UnsafeBufferPointer(rebasing: p[shared...]), at: shared, logits: .last)
        }
        tokens.append(contentsOf: prompt[shared...])
        return (transformer.lastLogits, prompt.count - shared)
    }

    /// Appends `token` and returns the logits predicting the one after it. Allocation-free.
    public func step(_ token: Int) throws -> UnsafeBufferPointer<Float> {
        let logits = try transformer.decode(token, at: tokens.count)
        tokens.append(token)
        return logits
    }
}
