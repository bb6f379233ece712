import XCTest
import Foundation
import SwiftletModels
import SwiftletCore

final class SamplerTests: XCTestCase {
    let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.5, 2.9, -4.0, 0.0]

    private func draw(_ p: SamplingParameters, _ logits: [Float], history: [TokenID] = [], times: Int = 1) -> [TokenID] {
        let s = Sampler(parameters: p, vocabSize: logits.count)
        return logits.withUnsafeBufferPointer { l in
            history.withUnsafeBufferPointer { h in (0..<times).map { _ in s.sample(l, history: h) } }
        }
    }

    func testGreedyPicksArgmax() {
        XCTAssertEqual(draw(.greedy, logits), [1])
        XCTAssertEqual(draw(SamplingParameters(temperature: 1, topK: 1, seed: 7), logits, times: 20), Array(repeating: 1, count: 20))
    }

    func testSeedIsDeterministic() {
        let p = SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42)
        XCTAssertEqual(draw(p, logits, times: 50), draw(p, logits, times: 50))
        var q = p; q.seed = 43
        XCTAssertNotEqual(draw(p, logits, times: 50), draw(q, logits, times: 50))
    }

    /// Frequencies of plain temperature sampling follow softmax(logits / T).
    func testTemperatureFollowsSoftmax() {
        let t: Float = 0.7
        let p = SamplingParameters(temperature: t, topK: 0, topP: 1, minP: 0, seed: 1)
        let n = 40_000
        var counts = [Int](repeating: 0, count: logits.count)
        for i in draw(p, logits, times: n) { counts[Int(i)] += 1 }
        let e = logits.map { expf($0 / t) }, s = e.reduce(0, +)
        for i in logits.indices {
            XCTAssertEqual(Double(counts[i]) / Double(n), Double(e[i] / s), accuracy: 0.01, "token \(i)")
        }
    }

    func testTopKTopPMinPRestrictCandidates() {
        let hot = SamplingParameters(temperature: 50, topK: 3, topP: 1, minP: 0, seed: 3)
        XCTAssertEqual(Set(draw(hot, logits, times: 300)), [1, 5, 2])
        // Probabilities at T=1: token 1 ≈ 0.36, 5 ≈ 0.33, 2 ≈ 0.22 — top-p 0.6 keeps {1, 5}.
        let nucleus = SamplingParameters(temperature: 50, topK: 0, topP: 0.6, minP: 0, seed: 3)
        XCTAssertEqual(Set(draw(nucleus, logits, times: 300)), [1, 5])
        // min-p 0.5 keeps tokens with p ≥ 0.5·p(1): 1, 5, 2 (e^-0.5 ≈ 0.61).
        let minP = SamplingParameters(temperature: 50, topK: 0, topP: 1, minP: 0.5, seed: 3)
        XCTAssertEqual(Set(draw(minP, logits, times: 300)), [1, 5, 2])
    }

    func testPenalties() {
        // Repetition penalty 2 on token 1: 3.0 → 1.5, so token 5 (2.9) wins.
        XCTAssertEqual(draw(SamplingParameters(temperature: 0, repetitionPenalty: 2), logits, history: [1]), [5])
        // Presence 0.2 on 1 and 5: 2.8, 2.7 vs 2.5 → 1 still wins; frequency 0.3 × 2 on 1 → 2.4: 5 wins.
        XCTAssertEqual(draw(SamplingParameters(temperature: 0, presencePenalty: 0.2), logits, history: [1, 5]), [1])
        XCTAssertEqual(draw(SamplingParameters(temperature: 0, frequencyPenalty: 0.3), logits, history: [1, 1]), [5])
        // The window only looks back `penaltyWindow` tokens.
        XCTAssertEqual(draw(SamplingParameters(temperature: 0, repetitionPenalty: 2, penaltyWindow: 1), logits, history: [1, 4]), [1])
    }
}
