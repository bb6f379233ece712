import XCTest
import Foundation
import CSwiftletKernels
import SwiftletTensor
import SwiftletTestSupport

/// The non-matmul operations of the forward pass reproduce llama.cpp's tensors bit for bit
/// (inputs and outputs dumped from llama.cpp's graph: Tests/Fixtures/llamacpp-ops/SOURCE.md),
/// on the AVX-512 path and the portable path alike.
final class LlamaCppOpsTests: XCTestCase {
    static func fixture(_ name: String) throws -> [Float] {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llamacpp-ops/\(name).f32")
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Number of elements whose bit patterns differ.
    func differing(_ a: [Float], _ b: [Float]) -> Int {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
    }

    /// Runs `body` on the best kernels and again on the portable ones.
    func forBothPaths(_ body: (String) throws -> Void) rethrows {
        defer { swiftlet_gc_select(0) }
        for portable: Int32 in [0, 1] {
            swiftlet_gc_select(portable)
            try body(portable == 1 ? "portable" : "simd")
        }
    }

    func testRoPEMatchesLlamaCpp() throws {
        try forBothPaths { path in
            // SmolLM2 (adjacent pairs, base 100 000): K of 3 heads × 33 positions.
            var k = try Self.fixture("smollm2_k_prerope")
            let table = try RoPE.Table(ropeDim: 64, base: 100_000, maxPositions: 64)
            k.withUnsafeMutableBufferPointer { p in
                for t in 0..<33 { table.apply(p.baseAddress! + t * 192, heads: 3, headDim: 64, position: t, convention: .interleaved) }
            }
            XCTAssertEqual(differing(k, try Self.fixture("smollm2_k")), 0, "SmolLM2 RoPE (\(path))")
            // Gemma 3 (halves, base 10 000 on a sliding layer): Q head 0 × 17 positions.
            var q = try Self.fixture("gemma3_q_normed")
            let local = try RoPE.Table(ropeDim: 256, base: 10_000, maxPositions: 32)
            q.withUnsafeMutableBufferPointer { p in
                for t in 0..<17 { local.apply(p.baseAddress! + t * 256, heads: 1, headDim: 256, position: t, convention: .neox) }
            }
            XCTAssertEqual(differing(q, try Self.fixture("gemma3_q")), 0, "Gemma 3 RoPE (\(path))")
        }
    }

    func testRMSNormMatchesLlamaCpp() throws {
        let x = try Self.fixture("gemma3_q_raw"), w = try Self.fixture("gemma3_attn_q_norm_weight")
        var out = [Float](repeating: 0, count: x.count)
        swiftlet_gc_rms_norm(x, w, 256, x.count / 256, 1e-6, &out)   // 17 rows: 4 groups of 4 and one alone
        XCTAssertEqual(differing(out, try Self.fixture("gemma3_q_normed")), 0)
    }

    func testGatedActivationsMatchLlamaCpp() throws {
        try forBothPaths { path in
            let gate = try Self.fixture("smollm2_ffn_gate"), up = try Self.fixture("smollm2_ffn_up")
            var out = [Float](repeating: 0, count: gate.count)
            swiftlet_gc_swiglu(gate, up, &out, gate.count)
            XCTAssertEqual(differing(out, try Self.fixture("smollm2_ffn_swiglu")), 0, "SwiGLU (\(path))")
        }
        try forBothPaths { path in
            let gate = try Self.fixture("gemma3_ffn_gate"), up = try Self.fixture("gemma3_ffn_up")
            var out = [Float](repeating: 0, count: gate.count)
            swiftlet_gc_geglu(gate, up, &out, gate.count)
            XCTAssertEqual(differing(out, try Self.fixture("gemma3_ffn_geglu")), 0, "GeGLU (\(path))")
        }
    }

    /// f16 cache rows of one KV head: keys `[capacity][headDim]`, values transposed.
    struct HeadCache {
        var keys: [UInt16], valuesT: [UInt16]
        let capacity: Int
        init(keys k: [Float], values v: [Float], headDim: Int, capacity: Int) {
            self.capacity = capacity
            keys = [UInt16](repeating: 0, count: capacity * headDim)
            valuesT = [UInt16](repeating: 0, count: capacity * headDim)
            for j in 0..<(k.count / headDim) {
                for d in 0..<headDim {
                    keys[j * headDim + d] = HalfPrecision.f16(from: k[j * headDim + d])
                    valuesT[d * capacity + j] = HalfPrecision.f16(from: v[j * headDim + d])
                }
            }
        }
    }

    /// Attention of query heads (`qStride` apart per position) over one KV head; output head-major.
    func attend(_ q: [Float], heads: Int, positions: Int, firstPosition: Int, headDim: Int, cache: HeadCache,
                window: Int, scale: Float, batched: Bool) -> [Float] {
        var q = q
        var out = [Float](repeating: 0, count: heads * positions * headDim)
        var scratch = [Float](repeating: 0, count: positions * (firstPosition + positions + 128))
        for h in 0..<heads {
            q.withUnsafeMutableBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    swiftlet_gc_attention_f16(qp.baseAddress! + h * headDim, heads * headDim, Int32(positions),
                                              Int32(firstPosition), Int32(headDim), cache.keys, cache.valuesT, cache.capacity,
                                              Int32(window), scale, batched ? 1 : 0, &scratch,
                                              op.baseAddress! + h * positions * headDim, headDim)
                }
            }
        }
        return out
    }

    func testBatchedAttentionMatchesLlamaCpp() throws {
        // SmolLM2: 33 positions, query heads 0-2 sharing KV head 0, scale 1/8.
        let k = try Self.fixture("smollm2_k")
        let k0 = (0..<33).flatMap { t in k[(t * 192)..<(t * 192 + 64)] }
        let cache = HeadCache(keys: k0, values: try Self.fixture("smollm2_v_h0"), headDim: 64, capacity: 64)
        let expected = try Self.fixture("smollm2_attn_h012")
        // Gemma 3: 17 positions, one query head over its one KV head; queries pre-scaled by 1/16.
        let gq = try Self.fixture("gemma3_q").map { $0 * 0.0625 }
        let gcache = HeadCache(keys: try Self.fixture("gemma3_k"), values: try Self.fixture("gemma3_v"), headDim: 256, capacity: 64)
        let gexpected = try Self.fixture("gemma3_attn_h0")
        try forBothPaths { path in
            let out = attend(try Self.fixture("smollm2_q_h012"), heads: 3, positions: 33, firstPosition: 0, headDim: 64,
                             cache: cache, window: 0, scale: 0.125, batched: true)
            XCTAssertEqual(differing(out, expected), 0, "SmolLM2 batched attention (\(path))")
            let g = attend(gq, heads: 1, positions: 17, firstPosition: 0, headDim: 256, cache: gcache,
                           window: 512, scale: 1, batched: true)
            XCTAssertEqual(differing(g, gexpected), 0, "Gemma 3 batched attention (\(path))")
        }
    }

    func testSingleTokenAttentionMatchesLlamaCpp() throws {
        // Position 32 decoded alone after a 32-token batch: ggml_vec_dot_f16's order.
        let k = try Self.fixture("smollm2_k")
        var keys = (0..<32).flatMap { t in k[(t * 192)..<(t * 192 + 64)] }
        keys += try Self.fixture("smollm2_decode_k_h0")
        var values = Array(try Self.fixture("smollm2_v_h0")[0..<(32 * 64)])
        values += try Self.fixture("smollm2_decode_v_h0")
        let cache = HeadCache(keys: keys, values: values, headDim: 64, capacity: 64)
        let expected = try Self.fixture("smollm2_decode_attn_h012")
        try forBothPaths { path in
            let out = attend(try Self.fixture("smollm2_decode_q_h012"), heads: 3, positions: 1, firstPosition: 32, headDim: 64,
                             cache: cache, window: 0, scale: 0.125, batched: false)
            XCTAssertEqual(differing(out, expected), 0, "single-token attention (\(path))")
        }
    }
}
