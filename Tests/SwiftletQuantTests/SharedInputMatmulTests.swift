import XCTest
import SwiftletQuant
import SwiftletTensor

/// `QuantizedMatrix.matmul(_:into:_:into:_:into:…)`: several products of one input, one
/// activation quantization and one dispatch, bit-identical to separate `matmul` calls.
final class SharedInputMatmulTests: XCTestCase {
    func testSharedInputEqualsSeparateProducts() throws {
        let pool = ComputePool(threadCount: 2)
        // Same types (Q/K/V of SmolLM2), and a third of another type (Gemma's alternating V).
        for (types, tokens) in [([GGMLType.q4_1, .q4_1, .q4_1], 1), ([.q4_1, .q4_1, .q4_1], 7), ([.q5_0, .q5_0, .q8_0], 5),
                                ([.q4_K, .q4_K, .q4_K], 9), ([.q5_0, .q5_0], 3)] {
            let rows = [48, 16, 16]
            let weights = try types.indices.map { i in
                try QuantKernelTests.quantized(types[i], QuantKernelTests.randomFloats(rows[i] * 256, seed: UInt64(10 + i)))
            }
            let x = QuantKernelTests.randomFloats(tokens * 256, seed: 3)
            var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: .q4_K, cols: 256, tokens: tokens) * 2)
            try weights[0].withUnsafeBytes { w0 in
                try weights[1].withUnsafeBytes { w1 in
                    try weights[types.count - 1].withUnsafeBytes { w2 in
                        let m = [try QuantizedMatrix(type: types[0], rows: rows[0], cols: 256, data: w0),
                                 try QuantizedMatrix(type: types[1], rows: rows[1], cols: 256, data: w1),
                                 try QuantizedMatrix(type: types[types.count - 1], rows: rows[types.count - 1], cols: 256, data: w2)]
                        var separate = (0..<types.count).map { [Float](repeating: .nan, count: tokens * rows[$0]) }
                        for i in types.indices {
                            scratch.withUnsafeMutableBytes { m[i].matmul(x, tokens: tokens, into: &separate[i], scratch: $0, pool: pool) }
                        }
                        var s0 = [Float](repeating: .nan, count: tokens * rows[0])
                        var s1 = [Float](repeating: .nan, count: tokens * rows[1])
                        var s2 = [Float](repeating: .nan, count: tokens * rows[2])
                        scratch.withUnsafeMutableBytes { s in
                            s0.withUnsafeMutableBufferPointer { y0 in
                                s1.withUnsafeMutableBufferPointer { y1 in
                                    s2.withUnsafeMutableBufferPointer { y2 in
                                        if types.count == 3 {
                                            QuantizedMatrix.matmul(m[0], into: y0.baseAddress!, m[1], into: y1.baseAddress!, m[2], into: y2.baseAddress!,
                                                                   input: x, tokens: tokens, scratch: s, pool: pool)
                                        } else {
                                            QuantizedMatrix.matmul(m[0], into: y0.baseAddress!, m[1], into: y1.baseAddress!,
                                                                   input: x, tokens: tokens, scratch: s, pool: pool)
                                        }
                                    }
                                }
                            }
                        }
                        let shared = [s0, s1, s2]
                        for i in types.indices {
                            XCTAssertEqual(shared[i].map(\.bitPattern), separate[i].map(\.bitPattern), "\(types) × \(tokens): matrix \(i)")
                        }
                    }
                }
            }
        }
    }
}
