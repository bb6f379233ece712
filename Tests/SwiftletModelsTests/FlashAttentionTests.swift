import XCTest
import Foundation
import CSwiftletKernels
import Swiftlet
import SwiftletTestSupport

/// Flash attention and the quantized KV cache: the kernels' AVX-512 paths equal their portable
/// scalar oracles bit for bit, and whole models reproduce llama-perplexity with `-fa on` (f16 and
/// quantized caches) chunk by chunk (Tests/Fixtures/llamacpp-flash-attention/SOURCE.md).
final class FlashAttentionTests: XCTestCase {
    // MARK: Kernels

    /// Rows of `headDim` values of `type` for `positions` rows of `x`, as the cache stores them.
    func rows(_ x: [Float], positions: Int, headDim: Int, type: KVCacheType) -> [UInt8] {
        let rowBytes = Int(swiftlet_fa_row_bytes(Int32(type.ggmlType.rawValue), headDim))
        var out = [UInt8](repeating: 0, count: (positions + 64) * rowBytes)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBytes { op in
                for p in 0..<positions {
                    let row = op.baseAddress! + p * rowBytes
                    switch type {
                    case .f16:
                        for d in 0..<headDim {
                            row.storeBytes(of: HalfPrecision.f16(from: xp[p * headDim + d]), toByteOffset: 2 * d, as: UInt16.self)
                        }
                    case .q8_0:
                        QuantKernels.quantizeActivations(weightType: .q8_0, xp.baseAddress! + p * headDim, count: headDim, into: row)
                    default:
                        try! quantizeRowReference(type.ggmlType, src: xp.baseAddress! + p * headDim, count: headDim,
                                                  into: UnsafeMutableRawBufferPointer(start: row, count: rowBytes))
                    }
                }
            }
        }
        return out
    }

    /// Deterministic values in about [-2, 2].
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 4001) / 1000 - 2
        }
    }

    /// Outputs of the three kernels for one KV head with `heads` query heads at `tokens` positions
    /// after `first` cached ones.
    func runKernels(headDim: Int, heads: Int, tokens: Int, first: Int, window: Int,
                    keyType: KVCacheType, valueType: KVCacheType) -> [[Float]] {
        let positions = first + tokens
        let q = values(tokens * heads * headDim, seed: 1)
        let k = values(positions * headDim, seed: 2), v = values(positions * headDim, seed: 3)
        let keys = rows(k, positions: positions, headDim: headDim, type: keyType)
        let vals = rows(v, positions: positions, headDim: headDim, type: valueType)
        let kBytes = Int(swiftlet_fa_row_bytes(Int32(keyType.ggmlType.rawValue), headDim))
        let vBytes = Int(swiftlet_fa_row_bytes(Int32(valueType.ggmlType.rawValue), headDim))
        let qStride = heads * headDim
        var results: [[Float]] = []
        var scratch = [Float](repeating: 0, count: Int(max(swiftlet_fa_attend_scratch(Int32(tokens * heads), Int32(headDim)),
                                                            swiftlet_fa_tiled_scratch(Int32(tokens * heads), Int32(headDim)))))
        var out = [Float](repeating: 0, count: tokens * qStride)
        keys.withUnsafeBytes { kp in
            vals.withUnsafeBytes { vp in
                swiftlet_fa_attend(q, qStride, Int32(tokens), Int32(heads), Int32(first), Int32(headDim),
                                   Int32(keyType.ggmlType.rawValue), kp.baseAddress, kBytes,
                                   Int32(valueType.ggmlType.rawValue), vp.baseAddress, vBytes,
                                   Int32(window), 0.125, 0, positions, &scratch, &out, qStride, nil)
                results.append(out)
                if keyType == .f16 && valueType == .f16 {
                    swiftlet_fa_tiled(q, qStride, Int32(tokens), Int32(heads), Int32(first), Int32(headDim),
                                      kp.baseAddress!.assumingMemoryBound(to: UInt16.self),
                                      vp.baseAddress!.assumingMemoryBound(to: UInt16.self),
                                      Int32(window), 0.125, &scratch, &out, qStride)
                    results.append(out)
                }
                if tokens == 1 {
                    // Three chunks, the last one empty.
                    let chunks = 3, size = (positions + 1) / 2
                    var partials = [Float](repeating: 0, count: chunks * heads * (headDim + 2))
                    for c in 0..<chunks {
                        partials.withUnsafeMutableBufferPointer { pp in
                            swiftlet_fa_attend(q, qStride, 1, Int32(heads), Int32(first), Int32(headDim),
                                               Int32(keyType.ggmlType.rawValue), kp.baseAddress, kBytes,
                                               Int32(valueType.ggmlType.rawValue), vp.baseAddress, vBytes,
                                               Int32(window), 0.125, c * size, min((c + 1) * size, positions), &scratch,
                                               &out, qStride, pp.baseAddress! + c * heads * (headDim + 2))
                        }
                    }
                    for g in 0..<heads {
                        out.withUnsafeMutableBufferPointer { op in
                            swiftlet_fa_reduce(partials.withUnsafeBufferPointer { $0.baseAddress! } + g * (headDim + 2),
                                               heads * (headDim + 2), Int32(chunks), Int32(headDim), op.baseAddress! + g * headDim)
                        }
                    }
                    results.append(out)
                }
            }
        }
        return results
    }

    /// Plain softmax attention in double, the yardstick the kernels must be near.
    func reference(headDim: Int, heads: Int, tokens: Int, first: Int, window: Int) -> [Float] {
        let positions = first + tokens
        let q = values(tokens * heads * headDim, seed: 1)
        let k = values(positions * headDim, seed: 2), v = values(positions * headDim, seed: 3)
        var out = [Float](repeating: 0, count: tokens * heads * headDim)
        for t in 0..<tokens {
            let pos = first + t, lo = window > 0 ? max(0, pos - window + 1) : 0
            for g in 0..<heads {
                let qi = (t * heads + g) * headDim
                let scores = (lo...pos).map { j in (0..<headDim).reduce(0.0) { $0 + Double(q[qi + $1]) * Double(k[j * headDim + $1]) } * 0.125 }
                let m = scores.max()!
                let e = scores.map { exp($0 - m) }, sum = e.reduce(0, +)
                for d in 0..<headDim {
                    out[qi + d] = Float(zip(lo...pos, e).reduce(0.0) { $0 + $1.1 * Double(v[$1.0 * headDim + d]) } / sum)
                }
            }
        }
        return out
    }

    func testKernelsEqualTheirScalarOracles() throws {
        defer { swiftlet_gc_select(0) }
        let cases: [(headDim: Int, heads: Int, tokens: Int, first: Int, window: Int)] = [
            (64, 3, 1, 700, 0), (64, 3, 70, 10, 0), (64, 3, 5, 100, 0), (256, 4, 1, 300, 0), (256, 2, 65, 0, 40), (128, 1, 1, 129, 64),
            (96, 2, 3, 40, 0),   // an odd number of blocks (IQ4_NL's leftover block)
            // One query over quantized tiles: heads accumulated four, three, two or one at a time,
            // tiles cut short, a head size outside the specialised ones.
            (64, 4, 1, 200, 0), (64, 7, 1, 90, 0), (128, 3, 1, 150, 0), (32, 2, 1, 16, 0), (64, 1, 1, 0, 0),
        ]
        for c in cases {
            let expected = reference(headDim: c.headDim, heads: c.heads, tokens: c.tokens, first: c.first, window: c.window)
            for (kt, vt) in [(KVCacheType.f16, KVCacheType.f16), (.q8_0, .q8_0), (.q4_0, .q4_0), (.q5_0, .iq4_nl), (.q8_0, .f16),
                             (.q8_0, .q4_0), (.q4_0, .q5_0), (.q5_0, .q8_0),
                             (.q4_1, .q5_1), (.q5_1, .q4_1), (.q5_1, .f16)] {
                swiftlet_gc_select(0)
                let simd = runKernels(headDim: c.headDim, heads: c.heads, tokens: c.tokens, first: c.first, window: c.window,
                                      keyType: kt, valueType: vt)
                swiftlet_gc_select(1)
                let portable = runKernels(headDim: c.headDim, heads: c.heads, tokens: c.tokens, first: c.first, window: c.window,
                                          keyType: kt, valueType: vt)
                let label = "\(c) \(kt)/\(vt)"
                for (a, b) in zip(simd, portable) {
                    XCTAssertEqual(zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count, 0, "SIMD ≠ scalar, \(label)")
                }
                // Near exact attention: f16 rounding, or the quantization's error (4- and 5-bit
                // caches measured up to 0.42 on these random inputs).
                let lowBit: Set<KVCacheType> = [.q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl]
                let tolerance: Float = kt == .f16 && vt == .f16 ? 0.01 : lowBit.contains(kt) || lowBit.contains(vt) ? 0.6 : 0.15
                for result in simd {
                    let worst = zip(result, expected).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(worst, tolerance, label)
                }
            }
        }
    }

    /// The one-query quantized path computes its softmax weights with a vectorised copy of glibc's
    /// expf; it must equal libm's on every float it can be given (the scores' gaps are ≤ 0). Where
    /// the copy is not in use (no AVX-512 BW) the path calls libm itself.
    func testVectorisedExpfEqualsLibmOnEveryNonPositiveFloat() throws {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let mismatches = swiftlet_fa_expf_mismatches(-110, -0.0)
        if mismatches < 0 {
            #if arch(x86_64) && os(Linux)
            XCTAssertFalse(cpu.contains(" avx512bw"), "the vectorised expf is off on an AVX-512 BW CPU: it differs from this libm")
            #endif
            return
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// The in-place transform equals the product with the normalised Sylvester–Hadamard matrix
    /// (llama.cpp's rotation matrix) and undoes itself.
    func testHadamardRotationIsTheSylvesterMatrix() {
        for n in [64, 128, 256] {
            var h = [Float](repeating: 0, count: n * n)
            h[0] = 1 / Float(n).squareRoot()
            var span = 1
            while span < n {
                for i in 0..<span { for j in 0..<span {
                    let v = h[i * n + j]
                    h[(i + span) * n + j] = v; h[i * n + j + span] = v; h[(i + span) * n + j + span] = -v
                } }
                span *= 2
            }
            var rng = SystemRandomNumberGenerator()
            let x = (0..<(3 * n)).map { _ in Float.random(in: -4...4, using: &rng) }
            var y = x
            swiftlet_gc_hadamard(&y, y.count, n)
            for row in 0..<3 {
                for i in 0..<n {
                    var expected: Double = 0
                    for j in 0..<n { expected += Double(h[i * n + j]) * Double(x[row * n + j]) }
                    XCTAssertEqual(Double(y[row * n + i]), expected, accuracy: 1e-4, "n \(n) row \(row) element \(i)")
                }
            }
            swiftlet_gc_hadamard(&y, y.count, n)
            for i in 0..<x.count { XCTAssertEqual(y[i], x[i], accuracy: 1e-5) }
        }
    }

    /// Attention without flash attention over block-type keys and f16 values: the SIMD paths equal
    /// the portable ones bit for bit, and both are near exact attention.
    func testQuantizedKeysWithoutFlashAttentionEqualTheirScalarOracle() {
        defer { swiftlet_gc_select(0) }
        let headDim = 64, positions = 150, capacity = 192
        let k = values(positions * headDim, seed: 2), v = values(positions * headDim, seed: 3)
        var valuesT = [UInt16](repeating: 0, count: headDim * capacity)
        for p in 0..<positions { for d in 0..<headDim { valuesT[d * capacity + p] = HalfPrecision.f16(from: v[p * headDim + d]) } }
        for type in [KVCacheType.q8_0, .q4_0, .q5_0, .q4_1, .q5_1, .iq4_nl] {
            let keys = rows(k, positions: positions, headDim: headDim, type: type)
            let rowBytes = Int(swiftlet_fa_row_bytes(Int32(type.ggmlType.rawValue), headDim))
            for (rows, first) in [(1, positions - 1), (6, positions - 6)] {
                let expected = reference(headDim: headDim, heads: 1, tokens: rows, first: first, window: 0)
                func run() -> [Float] {
                    var q = values(rows * headDim, seed: 1)
                    var scratch = [Float](repeating: 0, count: rows * (capacity + 64))
                    var out = [Float](repeating: 0, count: rows * headDim)
                    keys.withUnsafeBytes { kp in
                        swiftlet_gc_attention_quant_k(&q, headDim, Int32(rows), Int32(first), Int32(headDim),
                                                      Int32(type.ggmlType.rawValue), kp.baseAddress, rowBytes, valuesT, capacity,
                                                      0, 0.125, rows > 1 ? 1 : 0, &scratch, &out, headDim)
                    }
                    return out
                }
                swiftlet_gc_select(0)
                let simd = run()
                swiftlet_gc_select(1)
                let portable = run()
                XCTAssertEqual(zip(simd, portable).filter { $0.bitPattern != $1.bitPattern }.count, 0, "\(type) rows \(rows)")
                XCTAssertLessThan(zip(simd, expected).map { abs($0 - $1) }.max()!, 0.6, "\(type) rows \(rows)")
            }
        }
    }

    /// The combinations llama.cpp refuses.
    func testCacheTypeChecks() throws {
        XCTAssertNoThrow(try KVCache.check(keyType: .q4_1, valueType: .f16, headDim: 64, flashAttention: false))
        XCTAssertNoThrow(try KVCache.check(keyType: .q5_1, valueType: .q4_1, headDim: 64, flashAttention: true))
        XCTAssertThrowsError(try KVCache.check(keyType: .f16, valueType: .q5_1, headDim: 64, flashAttention: false))
        XCTAssertNoThrow(try KVCache.check(keyType: .iq4_nl, valueType: .f16, headDim: 64, flashAttention: false))
        XCTAssertThrowsError(try KVCache.check(keyType: .q8_0, valueType: .f32, headDim: 64, flashAttention: false))
        XCTAssertThrowsError(try KVCache.check(keyType: .q4_1, valueType: .q4_1, headDim: 48, flashAttention: true))
    }

    // MARK: Models against llama-perplexity -fa on (and -fa off with a quantized K cache)

    func check(_ model: RealModel, fixture name: String) throws {
        let url = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llamacpp-flash-attention/perplexity.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let textURL = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/texts/GPL-3")
        let text = try String(contentsOf: textURL, encoding: .utf8)
        for run in (json["results"] as! [[String: Any]]) where (run["name"] as! String).hasPrefix(name) {
            let nCtx = (run["n_ctx"] as! NSNumber).intValue, chunks = (run["chunks"] as! NSNumber).intValue
            let keyType = KVCacheType(rawValue: run["type_k"] as! String)!, valueType = KVCacheType(rawValue: run["type_v"] as! String)!
            let expected = (run["per_chunk"] as! [NSNumber]).map(\.doubleValue)
            let file = try GGUFFile(url: model.url())
            let tokenizer = try Tokenizers.load(gguf: file)
            // LLAMA_ATTN_ROT_DISABLE=1 runs turned llama.cpp's rotation of quantized caches off.
            let rotation = run["env"] as? String != "LLAMA_ATTN_ROT_DISABLE=1"
            let flash = run["flash_attn"] as? Bool ?? true
            let batch = (run["n_batch"] as? NSNumber)?.intValue ?? nCtx
            let transformer = try Transformer.load(gguf: file, contextLength: nCtx, maxBatch: batch, cacheType: keyType,
                                                   valueCacheType: valueType, flashAttention: flash, attentionRotation: rotation)
            let tokens = Array(tokenizer.encode(text, addSpecial: true, parseSpecial: false).prefix(nCtx * chunks))
            var running: [Double] = []
            let result = try Perplexity.measure(transformer, tokens: tokens, contextSize: nCtx,
                                                bos: tokenizer.addsBOS ? tokenizer.bosID : nil) { running.append($0.perplexity) }
            print("FLASH ATTENTION \(run["name"]!): \(running) (llama.cpp \(expected)), final \(result.perplexity)")
            XCTAssertEqual(running.count, expected.count, "\(run["name"]!)")
            for (i, (ours, theirs)) in zip(running, expected).enumerated() {
                XCTAssertEqual(ours, theirs, accuracy: 5.1e-5, "\(run["name"]!) chunk \(i + 1)")
            }
        }
    }

    func testSmolLM2MatchesLlamaPerplexity() throws { try check(.smollm2, fixture: "smollm2") }
    func testGemma3MatchesLlamaPerplexity() throws { try check(.gemma3, fixture: "gemma3") }
}
