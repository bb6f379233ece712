import XCTest
import SwiftletTensor


func randomFloats(_ count: Int, in range: ClosedRange<Float> = -2...2, seed: UInt64 = 1) -> [Float] {
    var g = SplitMix64(seed: seed &+ UInt64(count) &* 7919)
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
