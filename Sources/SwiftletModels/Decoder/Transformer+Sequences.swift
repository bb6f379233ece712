import SwiftletTensor

/// The sequence behind each row of a batched decode step: its position and its KV cache.
struct SequenceRows {
    let positions: [Int]
    let caches: [KVCache]
}

extension Transformer {
    /// One decode step of several sequences in one forward pass: `tokens[i]` runs at
    /// `positions[i]` against `caches[i]` (which must hold that sequence's earlier positions).
    /// The tokens form one batch of rows through every weight product, so each weight block is
    /// read once for all sequences, while RoPE, the cache write and attention use each row's own
    /// position and cache. `body(i, logits)` receives sequence `i`'s logits (valid during the call),
    /// bit-identical to what ``decode(_:at:)`` gives that sequence alone.
    ///
    /// With LoRA adapters or a matmul observer the sequences run one after the other (same results).
    /// The transformer's installed ``cache`` is left as it was.
    public func decode(_ tokens: [TokenID], at positions: [Int], caches: [KVCache],
                       _ body: (Int, UnsafeBufferPointer<Float>) -> Void) throws {
        let n = tokens.count
        guard positions.count == n, caches.count == n else {
            throw SwiftletError.invalidArgument("batched decode: \(n) tokens, \(positions.count) positions, \(caches.count) caches")
        }
        guard n <= maxBatch else {
            throw SwiftletError.invalidArgument("batched decode of \(n) sequences exceeds the batch size \(maxBatch)")
        }
        guard Set(caches.map(ObjectIdentifier.init)).count == n else {
            throw SwiftletError.invalidArgument("batched decode: a KV cache appears twice")
        }
        for i in 0..<n {
            guard caches[i].fits(self) else {
                throw SwiftletError.invalidArgument("batched decode: a KV cache made for another model or context length")
            }
            guard positions[i] >= 0, positions[i] < contextLength else {
                throw SwiftletError.contextOverflow(requested: positions[i] + 1, limit: contextLength)
            }
            guard tokens[i] >= 0, tokens[i] < config.vocabSize else {
                throw SwiftletError.invalidArgument("token id \(tokens[i]) outside the vocabulary (\(config.vocabSize))")
            }
        }
        guard n > 0 else { return }
        let installed = cache
        defer { if cache !== installed { cache = installed } }
        if n == 1 || lora != nil || matmulInputObserver != nil {
            for i in 0..<n {
                if cache !== caches[i] { cache = caches[i] }
                body(i, try decode(tokens[i], at: positions[i]))
            }
            return
        }
        sequenceRows = SequenceRows(positions: positions, caches: caches)
        defer { sequenceRows = nil }
        _ = tokens.withUnsafeBufferPointer { forward($0, at: 0, interruptible: false) }
        computeLogits(rows: 0 ..< n, body)
    }

    // MARK: - Steps of the blocks that depend on the sequence

    /// Writes the keys and values of the step's rows: consecutive positions of the installed
    /// cache, or each row at its own sequence's position and cache.
    func storeKV(layer: Int, start: Int, tokens: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        guard let rows = sequenceRows else {
            let cache = self.cache, kvDim = config.kvDim
            forRows(tokens) { r in
                cache.store(layer: layer, start: start + r.lowerBound, tokens: r.count,
                            k: k + r.lowerBound * kvDim, v: v + r.lowerBound * kvDim)
            }
            return
        }
        let kvDim = config.kvDim
        for i in 0..<tokens {
            rows.caches[i].store(layer: layer, start: rows.positions[i], tokens: 1, k: k + i * kvDim, v: v + i * kvDim)
        }
    }

    /// Attention of the step's queries: causal over the installed cache, or each row alone
    /// against its own sequence's cache (the single-token path, so results equal a lone decode).
    func attend(layer: Int, tokens: Int, start: Int, window: Int, scale: Float) {
        guard let rows = sequenceRows else {
            attention(layer: layer, tokens: tokens, start: start, window: window, scale: scale)
            return
        }
        let s = state, qDim = config.qDim
        let query = s.q, output = s.attention, installed = cache
        defer { s.q = query; s.attention = output; cache = installed }
        for i in 0..<tokens {
            s.q = query + i * qDim
            s.attention = output + i * qDim
            cache = rows.caches[i]
            attention(layer: layer, tokens: 1, start: rows.positions[i], window: window, scale: scale)
        }
    }
}
