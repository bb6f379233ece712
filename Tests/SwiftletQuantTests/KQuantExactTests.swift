import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTestSupport
import XCTest

/// K-quant products and the Q8_K activation quantizer in llama.cpp's x86 float order: every C
/// variant equals the Swift oracle bit for bit on random data, and both equal outputs dumped from
/// llama.cpp on Gemma 3 270M (Tests/Fixtures/kquant-llama) and from its tiled matmul on small
/// Q2_K / Q3_K / Q5_K / IQ4_XS matrices (Tests/Fixtures/kquant-tiled); see SOURCE.md there.
final class KQuantExactTests: XCTestCase {
    static func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    /// Quantizes `tokens` rows of `x` for `type` weights with the C kernel `kernel`, or the Swift
    /// reference when `kernel` is nil; `repacked` for llama.cpp's repack-buffer order.
    static func activations(_ type: GGMLType, _ x: [Float], cols: Int, tokens: Int, kernel: QuantKernel?,
                            repacked: Bool = false) -> [UInt8] {
        let stride = type.activationType.rowBytes(cols)!
        var out = [UInt8](repeating: 0, count: stride * tokens)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBytes { ob in
                for t in 0..<tokens {
                    let src = xb.baseAddress! + t * cols, dst = ob.baseAddress! + t * stride
                    if let kernel {
                        QuantKernels.quantizeActivationRow(weightType: type, src, count: cols, token: t, tokens: tokens,
                                                           into: dst, kernel: kernel, repacked: repacked)
                    } else if type.activationType == .q8_K {
                        QuantKernels.referenceQuantizeActivationRow(weightType: type, src, count: cols, token: t, tokens: tokens,
                                                                    into: dst, repacked: repacked)
                    } else {
                        _ = QuantKernels.referenceQuantizeActivations(weightType: type, src, count: cols, into: dst)
                    }
                }
            }
        }
        return out
    }

    /// `rows` × `cols` weights times the activations, by the C kernel `kernel` or the Swift oracle.
    static func product(_ type: GGMLType, weights: UnsafeRawBufferPointer, rows: Int, cols: Int,
                        act: [UInt8], tokens: Int, kernel: QuantKernel?, repacked: Bool = false) -> [Float] {
        let stride = type.activationType.rowBytes(cols)!
        return act.withUnsafeBytes { ab in
            guard let kernel else {
                return repacked
                    ? QuantKernels.referenceRepackedMatmul(type, count: cols, weights: weights.baseAddress!, rows: rows,
                                                           activations: ab.baseAddress!, activationStride: stride, tokens: tokens)
                    : QuantKernels.referenceMatmul(type, count: cols, weights: weights.baseAddress!, rows: rows,
                                                   activations: ab.baseAddress!, activationStride: stride, tokens: tokens)
            }
            var y = [Float](repeating: .nan, count: rows * tokens)
            QuantKernels.matmul(type, count: cols, weights: weights.baseAddress!, rows: rows, activations: ab.baseAddress!,
                                activationStride: stride, tokens: tokens, into: &y, kernel: kernel, repacked: repacked)
            return y
        }
    }

    /// Every supported C kernel's activation bytes and product equal the Swift oracle's, bit for bit.
    static func assertKernelsEqualOracle(_ type: GGMLType, weights: [UInt8], x: [Float], rows: Int, cols: Int, tokens: Int,
                                         repacked: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let refAct = activations(type, x, cols: cols, tokens: tokens, kernel: nil, repacked: repacked)
        let ref = weights.withUnsafeBytes {
            product(type, weights: $0, rows: rows, cols: cols, act: refAct, tokens: tokens, kernel: nil, repacked: repacked)
        }
        for kernel in QuantKernel.supported {
            let act = activations(type, x, cols: cols, tokens: tokens, kernel: kernel, repacked: repacked)
            XCTAssertEqual(act, refAct, "\(type) \(kernel) \(tokens) tokens: activation bytes", file: file, line: line)
            let y = weights.withUnsafeBytes {
                product(type, weights: $0, rows: rows, cols: cols, act: refAct, tokens: tokens, kernel: kernel, repacked: repacked)
            }
            XCTAssertEqual(bits(y), bits(ref), "\(type) \(kernel) \(tokens) tokens", file: file, line: line)
        }
    }

    func testKernelsEqualOracleBitForBit() throws {
        try checkKernels(cols: 1024, rows: 19, tokenCounts: [1, 3, 4, 7, 8, 9])   // one 16-row lane tile (prefill kernels) + 3 rows
    }

    /// Rows wider than 4096 weights (Qwen2.5-0.5B's feed-forward down, 4864) in the lane tiles.
    func testWideRowsEqualOracle() throws {
        try checkKernels(cols: 4864, rows: 17, tokenCounts: [4, 9])
    }

    private func checkKernels(cols: Int, rows: Int, tokenCounts: [Int]) throws {
        for type in [GGMLType.q4_K, .q6_K, .q2_K, .q3_K, .q5_K, .iq4_xs] {
            let weights = try QuantKernelTests.quantized(type, QuantKernelTests.randomFloats(rows * cols, seed: 40 + UInt64(type.rawValue)))
            // 1-7 tokens: Q4_K gemv / gemm groups, Q6_K vec_dot; 8 and 9: all but Q4_K tiled. Below
            // 8 tokens the x86 lanes of Q2_K, Q3_K, Q5_K and IQ4_XS are not in an exact order.
            let exactBelow8 = type == .q4_K || type == .q6_K
            for tokens in tokenCounts where exactBelow8 || tokens >= 8 {
                var x = QuantKernelTests.randomFloats(tokens * cols, seed: 77 + UInt64(tokens))
                // A block holding +max after -max: the 4-row quantizer picks the other sign.
                x[5] = -9; x[200] = 9
                Self.assertKernelsEqualOracle(type, weights: weights, x: x, rows: rows, cols: cols, tokens: tokens)
            }
        }
    }

    func testGroupedQuantizerSignRule() {
        var x = [Float](repeating: 0.5, count: 256)
        x[3] = -2; x[100] = 2   // -max first: the row quantizer takes a positive scale, the 4-row one negative
        let single = Self.activations(.q4_K, x, cols: 256, tokens: 1, kernel: nil)
        let grouped = Self.activations(.q4_K, x + x + x + x, cols: 256, tokens: 4, kernel: nil)
        let dSingle = single.withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        let dGrouped = grouped.withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        XCTAssertGreaterThan(dSingle, 0)
        XCTAssertEqual(dGrouped, -dSingle)
        XCTAssertEqual(Array(grouped[4..<260]).map { Int8(bitPattern: $0) }, Array(single[4..<260]).map { -Int8(bitPattern: $0) })
    }

    /// llama.cpp's own outputs: Q4_K blk.2.attn_output for 1 token (gemv) and 7 (gemm 4 + gemv 3),
    /// Q6_K blk.0.ffn_down for 1 token (vec_dot) and 8 (tiled), first 20 rows.
    func testMatchesLlamaCppOutputs() throws {
        let gguf = try GGUFFile(url: RealModel.gemma3.url())
        let cases: [(tensor: String, type: GGMLType, cols: Int, tokens: [Int], prefix: String)] = [
            ("blk.2.attn_output.weight", .q4_K, 1024, [1, 7], "q4k"),
            ("blk.0.ffn_down.weight", .q6_K, 2048, [1, 8], "q6k"),
        ]
        let rows = 20   // a 16-row lane tile and 4 rows through the row kernel
        for c in cases {
            let info = try XCTUnwrap(gguf.tensor(named: c.tensor))
            XCTAssertEqual(info.type, c.type)
            XCTAssertEqual(info.rowLength, c.cols)
            let weights = UnsafeRawBufferPointer(rebasing: gguf.data(for: info)[0..<(rows * c.type.rowBytes(c.cols)!)])
            for tokens in c.tokens {
                let x = try Self.floats("\(c.prefix)_in_t\(tokens).f32")
                let expected = try Self.floats("\(c.prefix)_out_t\(tokens).f32")
                XCTAssertEqual(x.count, tokens * c.cols)
                XCTAssertEqual(expected.count, tokens * rows)
                let refAct = Self.activations(c.type, x, cols: c.cols, tokens: tokens, kernel: nil)
                XCTAssertEqual(Self.bits(Self.product(c.type, weights: weights, rows: rows, cols: c.cols, act: refAct, tokens: tokens, kernel: nil)),
                               Self.bits(expected), "\(c.tensor) \(tokens) tokens: Swift oracle vs llama.cpp")
                for kernel in QuantKernel.supported {
                    let act = Self.activations(c.type, x, cols: c.cols, tokens: tokens, kernel: kernel)
                    let y = Self.product(c.type, weights: weights, rows: rows, cols: c.cols, act: act, tokens: tokens, kernel: kernel)
                    XCTAssertEqual(Self.bits(y), Self.bits(expected), "\(c.tensor) \(tokens) tokens \(kernel) vs llama.cpp")
                }
            }
        }
    }

    /// llama.cpp's tiled k-quant matmul (8 or more tokens; 8 takes its narrow path, 20 its standard
    /// one) on Q2_K, Q3_K, Q5_K and IQ4_XS weights (Tests/Fixtures/kquant-tiled, see SOURCE.md).
    func testTiledMatchesLlamaCppOutputs() throws {
        let rows = 16, cols = 512
        let x = try Self.floats("x.f32", folder: "kquant-tiled")
        for (type, name) in [(GGMLType.q2_K, "q2_k"), (.q3_K, "q3_k"), (.q5_K, "q5_k"), (.iq4_xs, "iq4_xs")] {
            let weights = try Data(contentsOf: Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/kquant-tiled/\(name)_w.bin"))
            XCTAssertEqual(weights.count, rows * type.rowBytes(cols)!)
            for tokens in [8, 20] {
                let expected = try Self.floats("\(name)_y_t\(tokens).f32", folder: "kquant-tiled")
                XCTAssertEqual(expected.count, tokens * rows)
                let input = Array(x[0..<(tokens * cols)])
                let refAct = Self.activations(type, input, cols: cols, tokens: tokens, kernel: nil)
                weights.withUnsafeBytes { w in
                    XCTAssertEqual(Self.bits(Self.product(type, weights: w, rows: rows, cols: cols, act: refAct, tokens: tokens, kernel: nil)),
                                   Self.bits(expected), "\(type) \(tokens) tokens: Swift oracle vs llama.cpp")
                    for kernel in QuantKernel.supported {
                        let act = Self.activations(type, input, cols: cols, tokens: tokens, kernel: kernel)
                        let y = Self.product(type, weights: w, rows: rows, cols: cols, act: act, tokens: tokens, kernel: kernel)
                        XCTAssertEqual(Self.bits(y), Self.bits(expected), "\(type) \(tokens) tokens \(kernel) vs llama.cpp")
                    }
                }
            }
        }
    }

    static func floats(_ name: String, folder: String = "kquant-llama") throws -> [Float] {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/\(folder)").appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }
}
