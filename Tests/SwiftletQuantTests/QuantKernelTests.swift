import SwiftletQuant
import SwiftletTensor
import XCTest

/// The C dot kernels (every variant this CPU runs) against the Swift scalar reference, and
/// QuantizedMatrix against dequantize + a naive f32 dot.
final class QuantKernelTests: XCTestCase {
    static let kernelTypes: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .iq4_nl,
                                          .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs, .q8_K]

    /// Deterministic pseudo-random floats with a few outliers, like real weights.
    static func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { i in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let u = Float(state >> 40) / Float(1 << 24) - 0.5
            return i % 97 == 0 ? u * 8 : u
        }
    }

    static func quantized(_ type: GGMLType, _ values: [Float]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: type.rowBytes(values.count)!)
        try values.withUnsafeBufferPointer { v in
            try out.withUnsafeMutableBytes { try quantize(type, src: v.baseAddress!, count: values.count, into: $0) }
        }
        return out
    }

    func testDotKernelsMatchReference() throws {
        let n = 1024
        for type in Self.kernelTypes {
            let w = try Self.quantized(type, Self.randomFloats(n, seed: UInt64(type.rawValue) + 1))
            let x = Self.randomFloats(n, seed: 99)
            let actBytes = QuantKernels.activationRowBytes(weightType: type, cols: n)!
            var act = [UInt8](repeating: 0, count: actBytes)
            x.withUnsafeBufferPointer { xb in
                act.withUnsafeMutableBytes { QuantKernels.quantizeActivations(weightType: type, xb.baseAddress!, count: n, into: $0.baseAddress!, kernel: .generic) }
            }
            // Scale of the terms: Σ |w_i · a_i| of the dequantized operands.
            var wd = [Float](repeating: 0, count: n), ad = [Float](repeating: 0, count: n)
            try w.withUnsafeBytes { try dequantize(type, src: $0, count: n, into: &wd) }
            try act.withUnsafeBytes { try dequantize(type.activationType, src: $0, count: n, into: &ad) }
            let scale = zip(wd, ad).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
            XCTAssertGreaterThan(scale, 0)

            try w.withUnsafeBytes { wb in
                try act.withUnsafeBytes { ab in
                    let ref = QuantKernels.referenceDot(type, count: n, weights: wb.baseAddress!, activations: ab.baseAddress!)
                    XCTAssertFalse(ref.isNaN, "\(type)")
                    for kernel in QuantKernel.supported {
                        let got = QuantKernels.dot(type, count: n, weights: wb.baseAddress!, activations: ab.baseAddress!, kernel: kernel)
                        XCTAssertLessThanOrEqual(abs(got - ref), 1e-5 * scale, "\(type) \(kernel): \(got) vs reference \(ref)")
                    }
                    // The reference itself agrees with dequantize + dot.
                    let naive = zip(wd, ad).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    XCTAssertLessThanOrEqual(abs(naive - ref), 1e-4 * scale, "\(type) reference vs dequantized dot")
                    _ = try XCTUnwrap(Optional(ref))
                }
            }
        }
    }

    func testActivationQuantizersAgree() {
        let n = 512
        let x = Self.randomFloats(n, seed: 7)
        for type in [GGMLType.q4_0, .q4_1, .q4_K] {
            let bytes = QuantKernels.activationRowBytes(weightType: type, cols: n)!
            var outputs: [[UInt8]] = []
            for kernel in QuantKernel.supported {
                var out = [UInt8](repeating: 0, count: bytes)
                x.withUnsafeBufferPointer { xb in
                    out.withUnsafeMutableBytes { QuantKernels.quantizeActivations(weightType: type, xb.baseAddress!, count: n, into: $0.baseAddress!, kernel: kernel) }
                }
                outputs.append(out)
            }
            for o in outputs.dropFirst() { XCTAssertEqual(o, outputs[0], "\(type.activationType) quantizers differ between variants") }
        }
    }

    func testQuantizedMatrixMatchesDequantizedProduct() throws {
        let rows = 37, cols = 512, tokens = 5
        let pool = ComputePool(threadCount: 2)
        for type in Self.kernelTypes where type != .q8_K {
            let weights = try Self.quantized(type, Self.randomFloats(rows * cols, seed: 1000 + UInt64(type.rawValue)))
            let x = Self.randomFloats(tokens * cols, seed: 5)
            var wd = [Float](repeating: 0, count: rows * cols)
            try weights.withUnsafeBytes { try dequantize(type, src: $0, count: rows * cols, into: &wd) }
            // Bound: activations are rounded to a step of (block max / 127) at most.
            let block = type.activationType == .f32 ? 1 : type.activationType.traits.blockSize
            let blockMax = stride(from: 0, to: x.count, by: block).map { x[$0..<($0 + block)].map(abs).max()! }
            var expected = [Float](repeating: 0, count: tokens * rows), bound = expected
            for t in 0..<tokens {
                for r in 0..<rows {
                    var s: Float = 0, b: Float = 0
                    for c in 0..<cols {
                        let w = wd[r * cols + c]
                        s += w * x[t * cols + c]
                        b += abs(w) * (type.activationType == .f32 ? 0 : blockMax[(t * cols + c) / block] / 127)
                    }
                    expected[t * rows + r] = s; bound[t * rows + r] = b + 1e-4 * abs(s) + 1e-5
                }
            }
            try weights.withUnsafeBytes { wb in
                var m = try QuantizedMatrix(type: type, rows: rows, cols: cols, data: wb)
                var scratch = [UInt8](repeating: 0, count: QuantizedMatrix.activationScratchBytes(type: type, cols: cols, tokens: tokens))
                for kernel in QuantKernel.supported {
                    m.kernel = kernel
                    var y = [Float](repeating: .nan, count: tokens * rows)
                    scratch.withUnsafeMutableBytes { s in
                        m.matmul(x, tokens: tokens, into: &y, scratch: s, pool: pool)
                    }
                    for i in 0..<(tokens * rows) {
                        XCTAssertLessThanOrEqual(abs(y[i] - expected[i]), bound[i], "\(type) \(kernel) matmul [\(i / rows), \(i % rows)]")
                    }
                    var yv = [Float](repeating: .nan, count: rows)
                    scratch.withUnsafeMutableBytes { s in
                        m.matvec(Array(x[cols..<(2 * cols)]), into: &yv, scratch: s, pool: pool)
                    }
                    for r in 0..<rows {
                        XCTAssertEqual(yv[r], y[rows + r], accuracy: 1e-5 * max(1, abs(y[rows + r])), "\(type) \(kernel) matvec row \(r)")
                    }
                }
            }
        }
    }

    func testUnsupportedTypeAndBadShapeThrow() throws {
        let bytes = [UInt8](repeating: 0, count: 18)
        try bytes.withUnsafeBytes { b in
            XCTAssertThrowsError(try QuantizedMatrix(type: .q4_0, rows: 2, cols: 32, data: b))
            XCTAssertThrowsError(try QuantizedMatrix(type: .q4_0, rows: 1, cols: 16, data: b))
            XCTAssertThrowsError(try QuantizedMatrix(type: .iq2_xxs, rows: 1, cols: 256, data: b))
            XCTAssertNoThrow(try QuantizedMatrix(type: .q4_0, rows: 1, cols: 32, data: b))
        }
    }
}
