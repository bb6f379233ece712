import Foundation
import XCTest
import CSwiftletKernels
import Swiftlet
import SwiftletTestSupport

/// The opt-in bf16 precision of the BERT encoder: both kernels (AMX tiles, AVX-512 BF16) compute
/// the product of the bf16-rounded operands to f32 accuracy, and MiniLM's embeddings stay within
/// 1e-4 of cosine of the f32 ones and of sentence-transformers'.
final class BF16EncoderTests: XCTestCase {
    override func setUpWithError() throws {
        guard swiftlet_bf16_supported() != 0 else {
            // Without AVX-512 BF16 the precision is refused with a typed error; nothing else to test.
            XCTAssertThrowsError(try EmbeddingModel(directory: RealModel.minilm.url()).with(precision: .bfloat16)) { error in
                guard case SwiftletError.backendUnavailable = error else { return XCTFail("\(error)") }
            }
            throw XCTSkip("no AVX-512 BF16 on this CPU")
        }
    }

    override func tearDown() { swiftlet_bf16_select(0) }

    /// bf16 value of `x`, nearest even (as the packing rounds).
    func bf16(_ x: Float) -> Float {
        let u = x.bitPattern
        return Float(bitPattern: (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000)
    }

    func testKernelsEqualTheProductOfTheRoundedOperands() throws {
        var state: UInt64 = 7
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001) / 1000 - 1
        }
        // Rows that are not a multiple of 12 or 32 (kernel tails), inputs with and without AMX's 32.
        for (m, n, k) in [(45, 64, 384), (1, 32, 96), (33, 96, 1536), (12, 32, 32)] {
            let w = (0..<n * k).map { _ in random() }, a = (0..<m * k).map { _ in random() }
            let packed = UnsafeMutableRawPointer.allocate(byteCount: swiftlet_bf16_packed_bytes(n, k), alignment: 64)
            defer { packed.deallocate() }
            swiftlet_bf16_pack(w, n, k, packed)
            var rounded = [UInt16](repeating: 0, count: (m + 32) * k)
            swiftlet_bf16_round(a, m * k, &rounded)
            for avx512 in [1, 0] {
                swiftlet_bf16_select(Int32(avx512))
                var c = [Float](repeating: .nan, count: m * n)
                swiftlet_bf16_gemm(rounded, m, k, packed, 0, n, &c, n)
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = 0.0, magnitude = 0.0
                        for l in 0..<k {
                            let p = Double(bf16(a[i * k + l])) * Double(bf16(w[j * k + l]))
                            exact += p
                            magnitude += abs(p)
                        }
                        worst = max(worst, abs(Double(c[i * n + j]) - exact) / max(magnitude, 1e-30))
                    }
                }
                let kernel = avx512 == 1 ? "AVX-512 BF16" : swiftlet_bf16_uses_amx(k) != 0 ? "AMX" : "AVX-512 BF16 (no AMX)"
                // f32 accumulation of k exact products: relative to Σ|p|, within k · 2⁻²⁴.
                XCTAssertLessThan(worst, Double(k) * 0x1p-24, "\(kernel) m \(m) n \(n) k \(k)")
            }
        }
    }

    func testMiniLMEmbeddingsStayWithinTheirF32AndReferenceCosines() throws {
        let f32 = try EmbeddingModel(directory: RealModel.minilm.url())
        let bf16 = try f32.with(precision: .bfloat16)
        XCTAssertEqual(bf16.pipeline.encoder.precision, .bfloat16)
        let items = try MiniLMItem.load("minilm.json") + MiniLMItem.load("minilm-truncation.json")
        for avx512 in [1, 0] {
            swiftlet_bf16_select(Int32(avx512))
            let a = try bf16.embeddings(for: items.map(\.text)), b = try f32.embeddings(for: items.map(\.text))
            for (i, item) in items.enumerated() {
                XCTAssertGreaterThan(EmbeddingModel.cosineSimilarity(a[i], b[i]), 0.9999, "vs f32: \(item.text.prefix(40))")
                XCTAssertGreaterThan(cosine(a[i], item.embedding), 0.9999, "vs sentence-transformers: \(item.text.prefix(40))")
            }
        }
    }
}
