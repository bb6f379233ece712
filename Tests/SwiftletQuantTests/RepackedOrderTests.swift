import Foundation
import SwiftletQuant
import SwiftletTestSupport
import XCTest

/// llama.cpp repacks Q4_0, IQ4_NL (AVX2) and Q2_K (AVX-512) weights at load and then sums their
/// products in another order than with `-nr`: every C variant and the Swift oracle reproduce it
/// bit for bit, against outputs of the reference build with the weights in its repack buffer
/// (Tests/Fixtures/kquant-repacked, see SOURCE.md there).
final class RepackedOrderTests: XCTestCase {
    /// 1 token (gemv), 7 (Q2_K: gemm for 4, gemv for 3) and 20 (our 16-row lane tiles for Q4_0 / IQ4_NL).
    func testMatchesLlamaCppRepackedOutputs() throws {
        let rows = 16, cols = 512
        let x = try KQuantExactTests.floats("x.f32", folder: "kquant-tiled")
        for (type, name, folder) in [(GGMLType.q4_0, "q4_0", "kquant-repacked"), (.iq4_nl, "iq4_nl", "kquant-repacked"),
                                     (.q2_K, "q2_k", "kquant-tiled")] {
            let weights = try Data(contentsOf: Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/\(folder)/\(name)_w.bin"))
            XCTAssertEqual(weights.count, rows * type.rowBytes(cols)!)
            for tokens in [1, 7, 20] {
                let expected = try KQuantExactTests.floats("\(name)_y_t\(tokens).f32", folder: "kquant-repacked")
                XCTAssertEqual(expected.count, tokens * rows)
                let input = Array(x[0..<(tokens * cols)])
                let refAct = KQuantExactTests.activations(type, input, cols: cols, tokens: tokens, kernel: nil, repacked: true)
                weights.withUnsafeBytes { w in
                    let oracle = KQuantExactTests.product(type, weights: w, rows: rows, cols: cols, act: refAct, tokens: tokens,
                                                          kernel: nil, repacked: true)
                    XCTAssertEqual(KQuantExactTests.bits(oracle), KQuantExactTests.bits(expected), "\(type) \(tokens) tokens: Swift oracle vs llama.cpp")
                    for kernel in QuantKernel.supported {
                        let act = KQuantExactTests.activations(type, input, cols: cols, tokens: tokens, kernel: kernel, repacked: true)
                        XCTAssertEqual(act, refAct, "\(type) \(tokens) tokens \(kernel): activation bytes")
                        let y = KQuantExactTests.product(type, weights: w, rows: rows, cols: cols, act: act, tokens: tokens, kernel: kernel,
                                                         repacked: true)
                        XCTAssertEqual(KQuantExactTests.bits(y), KQuantExactTests.bits(expected), "\(type) \(tokens) tokens \(kernel) vs llama.cpp")
                    }
                }
            }
        }
    }

    /// Fast kernels against the oracle on random data: 8-row tiles, a 16-row lane tile and
    /// leftover rows, token counts around the gemm groups of 4 and the 8-token lane path.
    func testKernelsEqualOracle() throws {
        let rows = 21, cols = 1024
        for type in [GGMLType.q4_0, .iq4_nl, .q2_K] {
            let weights = try QuantKernelTests.quantized(type, QuantKernelTests.randomFloats(rows * cols, seed: 90 + UInt64(type.rawValue)))
            for tokens in [1, 3, 4, 7, 8, 9] {
                var x = QuantKernelTests.randomFloats(tokens * cols, seed: 31 + UInt64(tokens))
                x[5] = -9; x[200] = 9   // +max after -max: the 4-row Q8_K quantizer picks the other sign
                KQuantExactTests.assertKernelsEqualOracle(type, weights: weights, x: x, rows: rows, cols: cols, tokens: tokens,
                                                          repacked: true)
            }
        }
    }

    /// llama.cpp's per-tensor decision (ggml-cpu repack.cpp): type, CPU features, rows % 8.
    func testRepackDecision() {
        for type in [GGMLType.q4_0, .iq4_nl, .q4_K] {
            XCTAssertTrue(QuantizedMatrix.llamaRepacks(type: type, rows: 576, cpu: .avx2), "\(type)")
            XCTAssertTrue(QuantizedMatrix.llamaRepacks(type: type, rows: 576, cpu: .avx512), "\(type)")
            XCTAssertFalse(QuantizedMatrix.llamaRepacks(type: type, rows: 572, cpu: .avx512), "\(type) rows % 8")
            XCTAssertFalse(QuantizedMatrix.llamaRepacks(type: type, rows: 576, cpu: .other), "\(type) not x86")
        }
        XCTAssertFalse(QuantizedMatrix.llamaRepacks(type: .q2_K, rows: 576, cpu: .avx2))
        XCTAssertTrue(QuantizedMatrix.llamaRepacks(type: .q2_K, rows: 576, cpu: .avx512))
        for type in [GGMLType.q4_1, .q5_0, .q5_1, .q8_0, .q3_K, .q5_K, .q6_K, .iq4_xs, .f32, .f16] {
            XCTAssertFalse(QuantizedMatrix.llamaRepacks(type: type, rows: 576, cpu: .avx512), "\(type)")
        }
    }
}
