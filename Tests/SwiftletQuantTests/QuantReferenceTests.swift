import Foundation
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor
import SwiftletTestSupport
import XCTest

/// Quantize / dequantize against the reference fixtures: gguf-py's quantizer
/// (quant-reference.gguf) and ggml's own (kquant-reference.gguf). Bar: our quantized bytes are
/// identical, our dequantized values within 1 ulp.
final class QuantReferenceTests: XCTestCase {
    func testBlockGeometryMatchesGGML() throws {
        // ggml's block sizes and bytes (ggml-common.h), independent of our table.
        let expected: [GGMLType: (Int, Int)] = [
            .f16: (1, 2), .bf16: (1, 2), .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24),
            .q8_0: (32, 34), .q8_1: (32, 36), .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144),
            .q5_K: (256, 176), .q6_K: (256, 210), .q8_K: (256, 292), .iq4_nl: (32, 18), .iq4_xs: (256, 136),
        ]
        for (type, (block, bytes)) in expected {
            XCTAssertEqual(type.traits.blockSize, block, "\(type)")
            XCTAssertEqual(type.traits.typeSize, bytes, "\(type)")
            XCTAssertTrue(type.isQuantSupported, "\(type)")
        }
    }

    func testQuantizeAndDequantizeMatchReference() throws {
        var checked: [String] = []
        for file in ["quant-reference.gguf", "kquant-reference.gguf"] {
            let gguf = try GGUFFile(url: Fixtures.reference(file))
            for info in gguf.tensors where info.name.hasPrefix("q.") {
                let typeName = String(info.name.dropFirst(2))
                let type = info.type
                XCTAssertEqual(type.description, typeName)
                let src = try floats(gguf, "src.\(typeName)")
                let deq = try floats(gguf, "deq.\(typeName)")
                let bytes = try XCTUnwrap(type.rowBytes(src.count))
                XCTAssertEqual(info.byteCount, bytes)
                let ref = Array(gguf.data(for: info))

                var ours = [UInt8](repeating: 0, count: bytes)
                try src.withUnsafeBufferPointer { s in
                    try ours.withUnsafeMutableBytes { try quantize(type, src: s.baseAddress!, count: src.count, into: $0) }
                }
                let mismatched = zip(ours, ref).filter { $0 != $1 }.count
                XCTAssertEqual(mismatched, 0, "\(file) \(typeName): \(mismatched) of \(bytes) quantized bytes differ")

                var out = [Float](repeating: 0, count: src.count)
                try ref.withUnsafeBytes { r in
                    try out.withUnsafeMutableBufferPointer { try dequantize(type, src: r, count: src.count, into: $0.baseAddress!) }
                }
                var worst = 0
                for (a, b) in zip(out, deq) { worst = max(worst, ulpDistance(a, b)) }
                XCTAssertLessThanOrEqual(worst, 1, "\(file) \(typeName): dequantized values \(worst) ulp from reference")
                checked.append(typeName)
            }
        }
        XCTAssertEqual(Set(checked), ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"])
    }

    func testBadSizesThrow() throws {
        var out = [Float](repeating: 0, count: 256)
        let src = [UInt8](repeating: 0, count: 10)
        try src.withUnsafeBytes { s in
            try out.withUnsafeMutableBufferPointer { o in
                XCTAssertThrowsError(try dequantize(.q4_0, src: s, count: 32, into: o.baseAddress!))   // needs 18 bytes
                XCTAssertThrowsError(try dequantize(.q4_0, src: s, count: 31, into: o.baseAddress!))   // not whole blocks
                XCTAssertThrowsError(try dequantize(.iq2_xxs, src: s, count: 256, into: o.baseAddress!)) // unsupported
            }
        }
        var q = [UInt8](repeating: 0, count: 10)
        try out.withUnsafeBufferPointer { o in
            try q.withUnsafeMutableBytes { qb in
                XCTAssertThrowsError(try quantize(.q8_0, src: o.baseAddress!, count: 32, into: qb))
            }
        }
    }
}

/// The f32 values of tensor `name`.
func floats(_ gguf: GGUFFile, _ name: String) throws -> [Float] {
    let info = try XCTUnwrap(gguf.tensor(named: name), name)
    XCTAssertEqual(info.type, .f32)
    return Array(gguf.data(for: info).bindMemory(to: Float.self))
}

/// Distance in units in the last place between two floats (0 when equal).
func ulpDistance(_ a: Float, _ b: Float) -> Int {
    if a == b { return 0 }
    if a.isNaN || b.isNaN { return Int.max }
    func ordered(_ x: Float) -> Int { let i = Int(Int32(bitPattern: x.bitPattern)); return i < 0 ? Int(Int32.min) - i : i }
    return abs(ordered(a) - ordered(b))
}
