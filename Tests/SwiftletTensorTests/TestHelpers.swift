import XCTest
import SwiftletTensor

/// Deterministic generator (SplitMix64) so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomFloats(_ count: Int, in range: ClosedRange<Float> = -2...2, seed: UInt64 = 1) -> [Float] {
    var g = SeededGenerator(seed: seed &+ UInt64(count) &* 7919)
    return (0..<count).map { _ in Float.random(in: range, using: &g) }
}

/// Awkward sizes: 1, odd, prime, just past SIMD widths, and decode-sized vectors.
let awkwardSizes = [1, 3, 15, 16, 17, 33, 100, 576, 1000, 1536]

func assertClose(_ actual: [Float], _ expected: [Float], absolute: Float, relative: Float = 0,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count " + message, file: file, line: line)
    var worst: (Int, Float) = (-1, 0)
    for i in 0..<min(actual.count, expected.count) {
        let err = abs(actual[i] - expected[i])
        let allowed = absolute + relative * abs(expected[i])
        if !(err <= allowed) && (worst.0 < 0 || err > worst.1) { worst = (i, err) }
    }
    if worst.0 >= 0 {
        let i = worst.0
        XCTFail("\(message): element \(i) is \(actual[i]), expected \(expected[i]) (error \(worst.1))", file: file, line: line)
    }
}

/// Runs `body` once per backend, with the backend selected.
func forEachBackend(_ body: (ComputeBackend) throws -> Void) rethrows {
    for backend in ComputeBackend.allCases {
        try ComputeBackend.with(backend) { try body(backend) }
    }
}
