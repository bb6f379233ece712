import Foundation
import SwiftletTensor

/// How the next token is chosen from the logits (llama.cpp's sampler chain, same order:
/// penalties → top-k → top-p → min-p → temperature → draw).
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; `0` (or less) picks the most likely token (greedy).
    public var temperature: Float
    /// Keep only the `topK` most likely tokens (`0` = all).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (`1` = off).
    public var topP: Float
    /// Drop tokens less likely than `minP` times the most likely one (`0` = off).
    public var minP: Float
    /// Divides positive / multiplies negative logits of recently seen tokens (`1` = off).
    public var repetitionPenalty: Float
    /// Subtracted once from the logit of every recently seen token (`0` = off).
    public var presencePenalty: Float
    /// Subtracted per occurrence from the logit of recently seen tokens (`0` = off).
    public var frequencyPenalty: Float
    /// How many recent tokens the penalties look at (`-1`: all of them, llama.cpp's `--repeat-last-n -1`).
    public var penaltyWindow: Int
    /// Seed of the random generator; `nil` draws one from the system.
    public var seed: UInt64?
    /// Added to the logits of these token ids before the chain runs (OpenAI's `logit_bias`; -100
    /// all but bans a token, +100 all but forces it). Ids outside the vocabulary are ignored.
    public var logitBias: [TokenID: Float]

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                penaltyWindow: Int = 64, seed: UInt64? = nil, logitBias: [TokenID: Float] = [:]) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty; self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty; self.penaltyWindow = penaltyWindow; self.seed = seed
        self.logitBias = logitBias
    }

    /// Throws ``SwiftletError/invalidArgument(_:)`` naming the first value outside its range:
    /// a temperature or penalty that is not a finite number, top-p or min-p outside 0…1, a
    /// repetition penalty that is not positive, a penalty window below -1. (Top-k ≤ 0 and a
    /// temperature ≤ 0 are meaningful: all tokens, greedy.)
    public func validate() throws {
        func require(_ ok: Bool, _ what: String) throws {
            if !ok { throw SwiftletError.invalidArgument(what) }
        }
        try require(temperature.isFinite, "temperature \(temperature) is not a finite number")
        try require((0 ... 1).contains(topP), "top-p \(topP) is outside 0...1")
        try require((0 ... 1).contains(minP), "min-p \(minP) is outside 0...1")
        try require(repetitionPenalty.isFinite && repetitionPenalty > 0, "repeat penalty \(repetitionPenalty) is not a positive number")
        try require(presencePenalty.isFinite, "presence penalty \(presencePenalty) is not a finite number")
        try require(frequencyPenalty.isFinite, "frequency penalty \(frequencyPenalty) is not a finite number")
        try require(penaltyWindow >= -1, "penalty window \(penaltyWindow) is below -1 (the whole history)")
        for (token, bias) in logitBias {
            try require(bias.isFinite, "logit bias \(bias) of token \(token) is not a finite number")
        }
    }

    /// Always the most likely token.
    public static let greedy = SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0)

    var penalized: Bool { repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 }
}

/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    public mutating func next() -> UInt64 {
        @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }
}

/// Chooses tokens from logits. All working memory is allocated once for the vocabulary, so
/// sampling a token never allocates.
public final class Sampler {
    public let parameters: SamplingParameters
    public let vocabSize: Int
    private var rng: SeededGenerator
    /// Working copy of the logits (penalties are applied here, never to the model's buffer).
    private let work: UnsafeMutablePointer<Float>
    /// Candidate token ids, best first after selection.
    private let candidates: UnsafeMutablePointer<Int32>
    private let probabilities: UnsafeMutablePointer<Float>
    /// Occurrences of each token in the penalty window (zeroed again after every use).
    private let counts: UnsafeMutablePointer<Int32>

    public init(parameters: SamplingParameters, vocabSize: Int) {
        self.parameters = parameters
        self.vocabSize = vocabSize
        rng = SeededGenerator(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        let n = max(vocabSize, 1)
        work = .allocate(capacity: n); work.initialize(repeating: 0, count: n)
        candidates = .allocate(capacity: n); candidates.initialize(repeating: 0, count: n)
        probabilities = .allocate(capacity: n); probabilities.initialize(repeating: 0, count: n)
        counts = .allocate(capacity: n); counts.initialize(repeating: 0, count: n)
    }

    deinit { work.deallocate(); candidates.deallocate(); probabilities.deallocate(); counts.deallocate() }

    /// The next token given `logits` (one row of `vocabSize`) and the tokens so far (`history`,
    /// whose last `penaltyWindow` entries the penalties consider).
    public func sample(_ logits: UnsafeBufferPointer<Float>, history: UnsafeBufferPointer<TokenID> = .init(start: nil, count: 0)) -> TokenID {
        let n = min(vocabSize, logits.count)
        guard n > 0 else { return 0 }
        load(logits, history: history, count: n)
        return pick(count: n)
    }

    /// The next token under a grammar, as llama.cpp's common sampler chooses it: the chain runs
    /// on the full logits first; if its token breaks the grammar, the logits are loaded again,
    /// every disallowed token is masked to −∞ and the chain runs once more. Greedy decoding tries
    /// the best few tokens in order before building a mask (the same answer: the most likely
    /// allowed token). Returns `nil` when the grammar allows no token at all.
    public func sample(_ logits: UnsafeBufferPointer<Float>, history: UnsafeBufferPointer<TokenID> = .init(start: nil, count: 0),
                       constraint: GrammarMatcher) throws -> TokenID? {
        let n = min(vocabSize, logits.count)
        guard n > 0 else { return nil }
        load(logits, history: history, count: n)
        let first = pick(count: n)
        if try constraint.allows(first) { return first }
        if parameters.temperature <= 0 {
            let k = selectTop(min(Self.greedyProbe, n), of: n)
            for i in 0..<k where try constraint.allows(candidates[i]) { return candidates[i] }
        }
        let mask = try constraint.allowedTokens()
        load(logits, history: history, count: n)
        var allowed = 0
        for t in 0..<n {
            if mask[t >> 6] >> UInt64(t & 63) & 1 == 0 { work[t] = -.infinity } else { allowed += 1 }
        }
        guard allowed > 0 else { return nil }
        return pick(count: n)
    }

    /// Tokens greedy decoding checks one by one before it builds a full mask.
    static let greedyProbe = 16

    /// Copies the logits to the working buffer and applies the penalties and the logit bias.
    private func load(_ logits: UnsafeBufferPointer<Float>, history: UnsafeBufferPointer<TokenID>, count n: Int) {
        work.update(from: logits.baseAddress!, count: n)
        if parameters.penalized { applyPenalties(history: history, count: n) }
        for (token, bias) in parameters.logitBias where token >= 0 && token < n { work[Int(token)] += bias }
    }

    /// Runs the chain (top-k → top-p → min-p → temperature → draw) on the working logits.
    private func pick(count n: Int) -> TokenID {
        let p = parameters
        if p.temperature <= 0 { return argmax(count: n) }

        // Top-k (a heap selection; k = everything when off), best first.
        let k = p.topK > 0 ? min(p.topK, n) : n
        let kept = selectTop(k, of: n)

        // Probabilities at temperature 1 for top-p / min-p, as llama.cpp does.
        softmaxCandidates(kept, temperature: 1)
        var keep = kept
        if p.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<kept {
                cumulative += probabilities[i]
                if cumulative >= p.topP { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = probabilities[0] * p.minP
            var i = 1
            while i < keep, probabilities[i] >= threshold { i += 1 }
            keep = i
        }

        softmaxCandidates(keep, temperature: p.temperature)
        let u = rng.nextUnit()
        var cumulative: Float = 0
        var lastPossible = 0
        for i in 0..<keep where probabilities[i] > 0 {
            cumulative += probabilities[i]
            lastPossible = i
            if u < cumulative { return candidates[i] }
        }
        // Rounding left u above the total: the last token that had a chance (never a masked one).
        return candidates[lastPossible]
    }

    private func argmax(count n: Int) -> TokenID {
        var best = 0
        var bestValue = work[0]
        for i in 1..<n where work[i] > bestValue { bestValue = work[i]; best = i }
        return TokenID(best)
    }

    private func applyPenalties(history: UnsafeBufferPointer<TokenID>, count n: Int) {
        let p = parameters
        let recent = history.suffix(p.penaltyWindow < 0 ? history.count : p.penaltyWindow).lazy.map(Int.init)
        for t in recent where t >= 0 && t < n { counts[t] += 1 }
        for t in recent where t >= 0 && t < n && counts[t] > 0 {
            let c = Float(counts[t])
            var l = work[t]
            if p.repetitionPenalty != 1 { l = l <= 0 ? l * p.repetitionPenalty : l / p.repetitionPenalty }
            l -= c * p.frequencyPenalty + p.presencePenalty
            work[t] = l
            counts[t] = 0   // also marks the token as done
        }
    }

    /// Moves the `k` largest logits' ids to `candidates[0..<k]`, sorted descending; returns k.
    private func selectTop(_ k: Int, of n: Int) -> Int {
        let w = work, c = candidates
        // Min-heap of size k on logits, over the whole vocabulary.
        @inline(__always) func less(_ a: Int32, _ b: Int32) -> Bool {
            let x = w[Int(a)], y = w[Int(b)]
            return x < y || (x == y && a > b)
        }
        func siftDown(_ start: Int, _ size: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < size && less(c[l], c[m]) { m = l }
                if r < size && less(c[r], c[m]) { m = r }
                if m == i { return }
                c.swapAt(i, m); i = m
            }
        }
        for i in 0..<k { c[i] = Int32(i) }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, k) }
        if k < n {
            for t in k..<n where less(c[0], Int32(t)) {
                c[0] = Int32(t); siftDown(0, k)
            }
        }
        // Heap sort in place: repeatedly move the smallest to the end → descending order.
        var size = k
        while size > 1 {
            c.swapAt(0, size - 1)
            size -= 1
            siftDown(0, size)
        }
        return k
    }

    /// Softmax of the first `count` candidates' logits at `temperature` into `probabilities`.
    private func softmaxCandidates(_ count: Int, temperature: Float) {
        let maxLogit = work[Int(candidates[0])]
        var sum: Float = 0
        for i in 0..<count {
            let e = expf((work[Int(candidates[i])] - maxLogit) / temperature)
            probabilities[i] = e; sum += e
        }
        for i in 0..<count { probabilities[i] /= sum }
    }
}

private extension UnsafeMutablePointer {
    @inline(__always) func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]; self[i] = self[j]; self[j] = t
    }
}
