import Foundation
import SwiftletTensor

/// A conversation's worth of model state: its own KV cache and the tokens the cache holds, over a
/// transformer it may share with other sessions. Feeding a new prompt reuses the longest shared
/// prefix (a chat turn does not re-process the history), then decoding appends one token at a time.
///
/// Not thread-safe: sessions sharing a transformer must be used one at a time (the
/// `Swiftlet.LanguageModel` runs them all on one inference thread).
public final class GenerationSession {
    public let transformer: Transformer
    /// This session's keys and values; installed in the transformer before each evaluation.
    public let cache: KVCache
    /// The tokens whose keys and values are in the cache, position = index.
    public internal(set) var tokens: [TokenID]
    /// This session's logits from its last batched step (``step(_:tokens:)``), allocated on first use.
    var batchLogits: UnsafeMutableBufferPointer<Float>?

    /// A session with a cache of its own (`cache: nil` uses the transformer's default cache,
    /// for a transformer that only ever serves one conversation).
    public init(transformer: Transformer, cache: KVCache? = nil) {
        self.transformer = transformer
        self.cache = cache ?? transformer.defaultCache
        precondition(self.cache.fits(transformer), "a KV cache made for another model or context length")
        tokens = []
        tokens.reserveCapacity(transformer.contextLength)
    }

    deinit { batchLogits?.deallocate() }

    /// Positions still free in the context.
    public var remainingContext: Int { transformer.contextLength - tokens.count }

    /// Forgets the cached tokens.
    public func reset() { tokens.removeAll(keepingCapacity: true) }

    /// Makes the cache hold exactly `prompt` and returns the logits after its last token.
    /// Returns how many prompt tokens had to be evaluated (the rest came from the cache).
    /// `isCancelled` is asked before every layer of every batch; when it says yes the cache keeps
    /// only the prefix that was already complete and ``SwiftletError/cancelled`` is thrown.
    @discardableResult
    public func prefill(_ prompt: [TokenID], isCancelled: (() -> Bool)? = nil) throws -> (logits: UnsafeBufferPointer<Float>, evaluated: Int) {
        guard !prompt.isEmpty else { throw SwiftletError.invalidArgument("empty prompt") }
        guard prompt.count <= transformer.contextLength else {
            throw SwiftletError.contextOverflow(requested: prompt.count, limit: transformer.contextLength)
        }
        if let isCancelled, isCancelled() { throw SwiftletError.cancelled }
        var shared = 0
        let limit = min(tokens.count, prompt.count)
        while shared < limit && tokens[shared] == prompt[shared] { shared += 1 }
        // The last prompt token always runs again: its logits are needed.
        shared = min(shared, prompt.count - 1)
        tokens.removeSubrange(shared...)
        install()
        transformer.interruption = isCancelled
        defer { transformer.interruption = nil }
        try prompt.withUnsafeBufferPointer { p in
            try transformer.evaluate(UnsafeBufferPointer(rebasing: p[shared...]), at: shared, logits: .last)
        }
        tokens.append(contentsOf: prompt[shared...])
        return (transformer.lastLogits, prompt.count - shared)
    }

    /// Appends `token` and returns the logits predicting the one after it. Allocation-free.
    public func step(_ token: TokenID) throws -> UnsafeBufferPointer<Float> {
        install()
        let logits = try transformer.decode(token, at: tokens.count)
        tokens.append(token)
        return logits
    }

    private func install() {
        if transformer.cache !== cache { transformer.cache = cache }
    }

    // MARK: - Saved state

    private static let stateMagic = Data("SWLKV001".utf8)

    /// The cached tokens and their keys and values, to continue this conversation later (another
    /// process, the same model file and context length) without evaluating it again.
    public func savedState() -> Data {
        var data = Self.stateMagic
        let c = transformer.config
        let header: [Int64] = [Int64(c.layerCount), Int64(c.kvHeadCount), Int64(c.headDim), Int64(c.vocabSize),
                               Int64(cache.type == .f16 ? 1 : 0), Int64(tokens.count)]
        header.withUnsafeBytes { data.append(contentsOf: $0) }
        tokens.map(Int64.init).withUnsafeBytes { data.append(contentsOf: $0) }
        data.append(cache.snapshot(positions: tokens.count))
        return data
    }

    /// Replaces this session's tokens and cache with a ``savedState()`` of the same model.
    public func restore(state: Data) throws {
        let data = Data(state)  // indices from 0, whatever slice was passed
        let headerBytes = Self.stateMagic.count + 6 * 8
        guard data.count >= headerBytes, data.prefix(Self.stateMagic.count) == Self.stateMagic else {
            throw SwiftletError.invalidArgument("not a Swiftlet session state")
        }
        let fields = data.subdata(in: Self.stateMagic.count ..< headerBytes).withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        let c = transformer.config
        let expected: [Int64] = [Int64(c.layerCount), Int64(c.kvHeadCount), Int64(c.headDim), Int64(c.vocabSize),
                                 Int64(cache.type == .f16 ? 1 : 0)]
        guard Array(fields.prefix(5)) == expected else {
            throw SwiftletError.invalidArgument("session state made for another model or cache type")
        }
        let count = fields[5]
        guard count >= 0, count <= Int64(transformer.contextLength) else {
            throw SwiftletError.contextOverflow(requested: Int(clamping: count), limit: transformer.contextLength)
        }
        let n = Int(count)
        let tokenEnd = headerBytes + n * 8
        guard data.count >= tokenEnd else { throw SwiftletError.invalidArgument("session state is truncated") }
        let restored = data.subdata(in: headerBytes ..< tokenEnd).withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        guard restored.allSatisfy({ $0 >= 0 && $0 < c.vocabSize }) else {
            throw SwiftletError.invalidArgument("session state holds a token outside the vocabulary")
        }
        try cache.restore(data.subdata(in: tokenEnd ..< data.count), positions: n)
        tokens = restored.map { TokenID($0) }
    }
}
