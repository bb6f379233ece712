import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor
import SwiftletTestSupport
import XCTest

/// The 32-weight block kernels (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) and the Q8_0 / Q8_1
/// activation quantizers are bit-identical to llama.cpp: every C variant equals the Swift oracle
/// (which follows llama.cpp's float order) on random data, for every tile shape of the batched
/// kernel; and real-model products equal outputs captured from llama.cpp itself
/// (Tests/Fixtures/llama-matmul, see SOURCE.md there).
final class Block32ExactTests: XCTestCase {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl]

    func testActivationQuantizersMatchReferenceBytes() {
        var x = QuantKernelTests.randomFloats(32 * 40, seed: 11)
        // Edge blocks: all zero; a value exactly halfway after scaling; huge and tiny magnitudes.
        for j in 0..<32 { x[j] = 0 }
        for j in 0..<32 { x[32 + j] = Float(j - 16) * 0.5 }
        for j in 0..<32 { x[64 + j] = Float(j % 7) * 3.0e4 - 9.0e4 }
        for j in 0..<32 { x[96 + j] = Float(j + 1) * 1.0e-9 }
        for type in [GGMLType.q4_0, .q4_1] {
            let bytes = QuantKernels.activationRowBytes(weightType: type, cols: x.count)!
            var expected = [UInt8](repeating: 0, count: bytes)
            x.withUnsafeBufferPointer { xb in
                expected.withUnsafeMutableBytes {
                    XCTAssertTrue(QuantKernels.referenceQuantizeActivations(weightType: type, xb.baseAddress!, count: x.count, into: $0.baseAddress!))
                }
            }
            for kernel in QuantKernel.supported {
                var got = [UInt8](repeating: 0xAA, count: bytes)
                x.withUnsafeBufferPointer { xb in
                    got.withUnsafeMutableBytes { QuantKernels.quantizeActivations(weightType: type, xb.baseAddress!, count: x.count, into: $0.baseAddress!, kernel: kernel) }
                }
                XCTAssertEqual(got, expected, "\(type.activationType) \(kernel)")
            }
        }
    }

    /// Every output of `QuantizedMatrix.matmul` / `matvec` (all variants, row counts and token
    /// counts that hit every tile shape and tail) equals the oracle's bits.
    func testKernelsEqualOracleBitExactly() throws {
        let pool = ComputePool(threadCount: 2)
        for type in Self.types {
            for (rows, cols, tokens) in [(13, 96, 11), (6, 640, 17), (4, 32, 3), (7, 64, 7), (5, 96, 12)] {
                let weights = try QuantKernelTests.quantized(type, QuantKernelTests.randomFloats(rows * cols, seed: 31 + UInt64(type.rawValue)))
                let x = QuantKernelTests.randomFloats(tokens * cols, seed: 77 + UInt64(cols))
                let rowBytes = QuantKernels.activationRowBytes(weightType: type, cols: cols)!
                var act = [UInt8](repeating: 0, count: rowBytes * tokens)
                x.withUnsafeBufferPointer { xb in
                    act.withUnsafeMutableBytes { a in
                        for t in 0..<tokens {
                            _ = QuantKernels.referenceQuantizeActivations(weightType: type, xb.baseAddress! + t * cols, count: cols, into: a.baseAddress! + t * rowBytes)
                        }
                    }
                }
                var expected = [Float](repeating: 0, count: tokens * rows)
                let wRow = type.rowBytes(cols)!
                weights.withUnsafeBytes { wb in
                    act.withUnsafeBytes { ab in
                        for t in 0..<tokens {
                            for r in 0..<rows {
                                expected[t * rows + r] = QuantKernels.referenceDot(type, count: cols, weights: wb.baseAddress! + r * wRow,
                                                                                   activations: ab.baseAddress! + t * rowBytes)
                            }
                        }
                    }
                }
                try weights.withUnsafeBytes { wb in
                    var m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: wb)
                    var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: type, cols: cols, tokens: tokens))
                    for kernel in QuantKernel.supported {
                        m.kernel = kernel
                        var y = [Float](repeating: .nan, count: tokens * rows)
                        scratch.withUnsafeMutableBytes { m.matmul(x, tokens: tokens, into: &y, scratch: $0, pool: pool) }
                        XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), "\(type) \(kernel) \(rows)x\(cols) × \(tokens) tokens")
                        var yv = [Float](repeating: .nan, count: rows)
                        scratch.withUnsafeMutableBytes { m.matvec(Array(x[cols..<(2 * cols)]), into: &yv, scratch: $0, pool: pool) }
                        XCTAssertEqual(yv.map(\.bitPattern), Array(expected[rows..<(2 * rows)]).map(\.bitPattern), "\(type) \(kernel) matvec")
                    }
                }
            }
        }
    }

    /// Long rows: smaller token groups (200 blocks: groups of 4 tokens), and past the batched
    /// kernel's activation pack the generic path (1300 blocks): same bits.
    func testLongRowsEqualOracle() throws {
        for (type, blocks, rows, tokens) in [(GGMLType.q5_0, 200, 5, 9), (.q4_1, 200, 5, 9), (.q5_0, 1300, 1, 2), (.q4_1, 1300, 1, 2)] {
            try checkLongRows(type, cols: 32 * blocks, rows: rows, tokens: tokens)
        }
    }

    /// The 16-row lane tiles of the prefill kernel (8 or more tokens): whole tiles plus leftover
    /// rows, odd token counts, several activation packs (long rows), and raw random block bytes
    /// (every level and high bit, Q8_0's −128) besides quantized weights: same bits as the oracle.
    func testLaneTilesEqualOracle() throws {
        for type in Self.types {
            for (blocks, rows, tokens, raw) in [(3, 35, 8, false), (3, 35, 21, false), (5, 17, 9, true), (300, 16, 45, false)] {
                if blocks == 300 && type != .q5_0 && type != .q4_1 { continue }
                let cols = 32 * blocks
                var weights = try QuantKernelTests.quantized(type, QuantKernelTests.randomFloats(rows * cols, seed: 9 + UInt64(blocks)))
                if raw { Self.randomizeBlocks(type, &weights) }
                try checkDirectProduct(type, weights: weights, rows: rows, cols: cols, tokens: tokens)
            }
        }
    }

    /// Random bytes in every block, with finite scales (d, and m where the format has one).
    private static func randomizeBlocks(_ type: GGMLType, _ bytes: inout [UInt8]) {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for i in bytes.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            bytes[i] = UInt8(truncatingIfNeeded: state)
        }
        let blockBytes = type.rowBytes(32)!, scales = type == .q4_1 || type == .q5_1 ? 2 : 1
        for block in stride(from: 0, to: bytes.count, by: blockBytes) {
            for s in 0..<scales {
                // A normal fp16 of either sign between 2^-10 and 2^-2.
                let lo = UInt16(bytes[block + 2 * s]), hi = UInt16(bytes[block + 2 * s + 1])
                let half = (hi & 0x80) << 8 | (5 + hi % 8) << 10 | (hi & 3) << 8 | lo
                bytes[block + 2 * s] = UInt8(half & 0xFF); bytes[block + 2 * s + 1] = UInt8(half >> 8)
            }
        }
    }

    /// `QuantKernels.matmul` (one C gemm call over all rows and tokens) of every variant against
    /// the oracle's dot for each (row, token).
    private func checkDirectProduct(_ type: GGMLType, weights: [UInt8], rows: Int, cols: Int, tokens: Int) throws {
        let x = QuantKernelTests.randomFloats(tokens * cols, seed: 17 + UInt64(cols))
        let rowBytes = QuantKernels.activationRowBytes(weightType: type, cols: cols)!, wRow = type.rowBytes(cols)!
        var act = [UInt8](repeating: 0, count: rowBytes * tokens)
        x.withUnsafeBufferPointer { xb in
            act.withUnsafeMutableBytes { a in
                for t in 0..<tokens { QuantKernels.quantizeActivations(weightType: type, xb.baseAddress! + t * cols, count: cols, into: a.baseAddress! + t * rowBytes) }
            }
        }
        weights.withUnsafeBytes { wb in
            act.withUnsafeBytes { ab in
                var expected = [UInt32](repeating: 0, count: tokens * rows)
                for t in 0..<tokens {
                    for r in 0..<rows {
                        expected[t * rows + r] = QuantKernels.referenceDot(type, count: cols, weights: wb.baseAddress! + r * wRow,
                                                                           activations: ab.baseAddress! + t * rowBytes).bitPattern
                    }
                }
                for kernel in QuantKernel.supported {
                    var y = [Float](repeating: .nan, count: tokens * rows)
                    QuantKernels.matmul(type, count: cols, weights: wb.baseAddress!, rows: rows, activations: ab.baseAddress!,
                                        activationStride: rowBytes, tokens: tokens, into: &y, kernel: kernel)
                    XCTAssertEqual(y.map(\.bitPattern), expected, "\(type) \(kernel) \(rows)x\(cols) × \(tokens) tokens")
                }
            }
        }
    }

    private func checkLongRows(_ type: GGMLType, cols: Int, rows: Int, tokens: Int) throws {
        let weights = try QuantKernelTests.quantized(type, QuantKernelTests.randomFloats(rows * cols, seed: 5))
        let x = QuantKernelTests.randomFloats(tokens * cols, seed: 6)
        let rowBytes = QuantKernels.activationRowBytes(weightType: type, cols: cols)!
        var act = [UInt8](repeating: 0, count: rowBytes * tokens)
        x.withUnsafeBufferPointer { xb in
            act.withUnsafeMutableBytes { a in
                for t in 0..<tokens { QuantKernels.quantizeActivations(weightType: type, xb.baseAddress! + t * cols, count: cols, into: a.baseAddress! + t * rowBytes) }
            }
        }
        let wRow = type.rowBytes(cols)!
        try weights.withUnsafeBytes { wb in
            var m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: wb)
            var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: type, cols: cols, tokens: tokens))
            act.withUnsafeBytes { ab in
                for kernel in QuantKernel.supported {
                    m.kernel = kernel
                    var y = [Float](repeating: .nan, count: tokens * rows)
                    scratch.withUnsafeMutableBytes { m.matmul(x, tokens: tokens, into: &y, scratch: $0, pool: .shared) }
                    for t in 0..<tokens {
                        for r in 0..<rows {
                            let ref = QuantKernels.referenceDot(type, count: cols, weights: wb.baseAddress! + r * wRow, activations: ab.baseAddress! + t * rowBytes)
                            XCTAssertEqual(y[t * rows + r].bitPattern, ref.bitPattern, "\(type) \(cols) weights \(kernel) [\(t), \(r)]")
                        }
                    }
                }
            }
        }
    }

    /// Real weights × llama.cpp's own input rows give llama.cpp's own output rows, bit for bit.
    func testRealModelProductsEqualLlamaCpp() throws {
        let dir = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llama-matmul")
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("cases.json"))) as? [String: Any])
        let cases = try XCTUnwrap(manifest["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        func floats(_ name: String) throws -> [Float] {
            let data = try Data(contentsOf: dir.appendingPathComponent(name))
            return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        var files: [String: GGUFFile] = [:]
        for c in cases {
            let model = try XCTUnwrap(RealModel(rawValue: c["model"] as? String == "gemma3" ? RealModel.gemma3.rawValue : RealModel.smollm2.rawValue))
            let gguf = try files[model.rawValue] ?? GGUFFile(url: try model.url())
            files[model.rawValue] = gguf
            let name = try XCTUnwrap(c["weight"] as? String)
            let tokens = try XCTUnwrap(c["tokens"] as? Int), cols = try XCTUnwrap(c["cols"] as? Int), rows = try XCTUnwrap(c["rows"] as? Int)
            let info = try XCTUnwrap(gguf.tensor(named: name), name)
            XCTAssertEqual(info.type.description, c["type"] as? String)
            XCTAssertEqual(info.rowLength, cols)
            let x = try floats(try XCTUnwrap(c["input"] as? String)), expected = try floats(try XCTUnwrap(c["output"] as? String))
            XCTAssertEqual(x.count, tokens * cols); XCTAssertEqual(expected.count, tokens * rows)
            let data = gguf.data(for: info)
            let slice = UnsafeRawBufferPointer(rebasing: data[0..<(rows * info.type.rowBytes(cols)!)])
            var m = try QuantizedMatrix(type: info.type, rows: rows, cols: cols, data: slice)
            var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: info.type, cols: cols, tokens: tokens))
            for kernel in QuantKernel.supported {
                m.kernel = kernel
                var y = [Float](repeating: .nan, count: tokens * rows)
                scratch.withUnsafeMutableBytes { m.matmul(x, tokens: tokens, into: &y, scratch: $0, pool: .shared) }
                let diff = zip(y, expected).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(diff, 0, "\(name) \(kernel) batched: \(diff) of \(y.count) outputs differ from llama.cpp")
                for t in 0..<tokens {
                    var yv = [Float](repeating: .nan, count: rows)
                    scratch.withUnsafeMutableBytes { m.matvec(Array(x[(t * cols)..<((t + 1) * cols)]), into: &yv, scratch: $0, pool: .shared) }
                    let d = zip(yv, expected[(t * rows)..<((t + 1) * rows)]).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(d, 0, "\(name) \(kernel) matvec token \(t): \(d) of \(rows) outputs differ from llama.cpp")
                }
            }
        }
    }
}
