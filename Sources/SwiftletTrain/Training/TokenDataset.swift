import Foundation
import SwiftletTensor

/// A tokenized corpus cut into training windows and a held-out validation tail.
///
/// The last `validationFraction` of the tokens (at least one window) is the validation split.
/// The training split is cut into windows of `sequenceLength + 1` tokens starting every
/// `sequenceLength` tokens; each epoch visits them in a seeded random order. The position
/// (epoch, index into the order) is all the state, so a checkpoint resumes the exact sequence.
public final class TokenDataset: @unchecked Sendable {  // mutable; used by one training task at a time
    public let tokens: [Int32]
    public let sequenceLength: Int
    public let seed: UInt64
    /// First token of the validation split.
    public let validationStart: Int
    /// Training windows per epoch.
    public let trainingWindowCount: Int
    /// Validation windows.
    public let validationWindowCount: Int

    /// Where the next training window comes from.
    public struct Position: Codable, Sendable, Equatable {
        public var epoch: Int = 0
        public var index: Int = 0
    }
    public private(set) var position = Position()
    private var order: [Int]

    /// - Throws: ``SwiftletError/invalidArgument(_:)`` when the corpus cannot hold one training and
    ///   one validation window, or a token id is outside the vocabulary.
    public init(tokens: [Int32], vocabSize: Int, sequenceLength: Int, validationFraction: Double = 0.1,
                seed: UInt64) throws {
        guard sequenceLength > 0 else { throw SwiftletError.invalidArgument("sequence length must be positive") }
        guard validationFraction > 0, validationFraction < 1 else {
            throw SwiftletError.invalidArgument("validation fraction \(validationFraction) must be in (0, 1)")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= vocabSize }) {
            throw SwiftletError.invalidArgument("token id \(bad) is outside the vocabulary of \(vocabSize)")
        }
        let window = sequenceLength + 1
        let validationLength = max(window, Int(Double(tokens.count) * validationFraction))
        guard tokens.count >= validationLength + window else {
            throw SwiftletError.invalidArgument(
                "the corpus has \(tokens.count) tokens: too short for one training and one validation sequence of \(sequenceLength) tokens (needs \(2 * window))")
        }
        self.tokens = tokens
        self.sequenceLength = sequenceLength
        self.seed = seed
        validationStart = tokens.count - validationLength
        trainingWindowCount = (validationStart - 1) / sequenceLength
        validationWindowCount = (validationLength - 1) / sequenceLength
        order = Array(0..<trainingWindowCount)
        shuffle(epoch: 0)
    }

    private func shuffle(epoch: Int) {
        for i in 0..<order.count { order[i] = i }
        var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        var i = order.count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
    }

    /// Moves to `position` (from a checkpoint).
    public func seek(to position: Position) throws {
        guard position.epoch >= 0, position.index >= 0, position.index <= trainingWindowCount else {
            throw SwiftletError.invalidArgument("data position \(position) is outside the corpus")
        }
        self.position = position
        shuffle(epoch: position.epoch)
    }

    /// Fills `inputs` and `targets` (`rows` windows of `sequenceLength`) with the next training windows.
    public func nextTrainingBatch(inputs: TokenBuffer, targets: TokenBuffer) {
        let rows = inputs.count / sequenceLength
        for r in 0..<rows {
            if position.index >= trainingWindowCount {
                position.epoch += 1
                position.index = 0
                shuffle(epoch: position.epoch)
            }
            copyWindow(start: order[position.index] * sequenceLength, row: r, inputs: inputs, targets: targets)
            position.index += 1
        }
    }

    /// Fills `inputs` and `targets` with validation windows `first ..< first + rows` (wrapping).
    public func validationBatch(first: Int, inputs: TokenBuffer, targets: TokenBuffer) {
        let rows = inputs.count / sequenceLength
        for r in 0..<rows {
            let w = (first + r) % validationWindowCount
            copyWindow(start: validationStart + w * sequenceLength, row: r, inputs: inputs, targets: targets)
        }
    }

    private func copyWindow(start: Int, row: Int, inputs: TokenBuffer, targets: TokenBuffer) {
        let L = sequenceLength
        tokens.withUnsafeBufferPointer { t in
            (inputs.ids + row * L).update(from: t.baseAddress! + start, count: L)
            (targets.ids + row * L).update(from: t.baseAddress! + start + 1, count: L)
        }
    }

    /// Entropy of the corpus's unigram token distribution, in nats (the loss a model that ignores
    /// context would reach at best).
    public var unigramEntropy: Double {
        var counts: [Int32: Int] = [:]
        for t in tokens { counts[t, default: 0] += 1 }
        let n = Double(tokens.count)
        return counts.values.reduce(0) { acc, c in let p = Double(c) / n; return acc - p * log(p) }
    }
}
