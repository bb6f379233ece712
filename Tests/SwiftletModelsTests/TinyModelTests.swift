import XCTest
import SwiftletModels
import SwiftletTensor

/// Shapes, KV-cache consistency and the forward pass against a naive oracle, on tiny random
/// models built in memory.
final class TinyModelTests: XCTestCase {
    let tokens: [TokenID] = [3, 17, 5, 42, 8, 8, 29, 1, 33, 12, 7, 49]

    private func allLogits(_ m: Transformer, _ tokens: [TokenID]) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: tokens.count)
        try tokens.withUnsafeBufferPointer { p in
            try m.evaluate(p, at: 0, logits: .all) { i, row in out[i] = Array(row) }
        }
        return out
    }

    private func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, tolerance, "\(message): max |Δ| = \(worst)", file: file, line: line)
    }

    func testMatchesOracle() throws {
        for arch in [Architecture.llama, .gemma3] {  // the architectures TinyModel builds
            let c = TinyModel.config(arch)
            let (tensors, storage) = TinyModel.tensors(c)
            let m = try Transformer(config: c, weights: TransformerWeights(config: c, tensors: tensors, storageOwner: storage),
                                    contextLength: 32, cacheType: .f32)
            let ours = try allLogits(m, tokens)
            let expected = Oracle.logits(c, OracleWeights(tensors), tokens: tokens)
            for i in tokens.indices { assertClose(ours[i], expected[i], tolerance: 2e-3, "\(arch) position \(i)") }
        }
    }

    /// Gemma's GELU goes through llama.cpp's f16 table, whose 2⁻¹¹ steps turn a last-bit
    /// difference in summation order (batched vs single-token attention) into up to ~5e-4.
    private func orderTolerance(_ arch: Architecture) -> Float { arch == .gemma3 ? 1e-3 : 1e-4 }

    /// Decoding one token at a time through the KV cache gives the same logits as one batched
    /// prefill of the whole sequence, and as prefills split into uneven batches.
    func testDecodeStepByStepEqualsPrefill() throws {
        for arch in [Architecture.llama, .gemma3] {  // the architectures TinyModel builds
            let full = try allLogits(TinyModel.transformer(arch), tokens)
            let stepper = try TinyModel.transformer(arch)
            for (i, t) in tokens.enumerated() {
                let row = try Array(stepper.decode(t, at: i))
                assertClose(row, full[i], tolerance: orderTolerance(arch), "\(arch) decode step \(i)")
            }
            let batched = try allLogits(TinyModel.transformer(arch, maxBatch: 5), tokens)
            for i in tokens.indices { assertClose(batched[i], full[i], tolerance: orderTolerance(arch), "\(arch) batch-5 position \(i)") }
        }
    }

    /// Past the batched attention's 64-query blocks (and Gemma's 5-token window): a 150-token
    /// prefill equals decoding the same tokens one at a time.
    func testLongPrefillAcrossQueryBlocksEqualsDecode() throws {
        let long = (0..<150).map { TokenID(($0 * 37 + 11) % 50) }
        for arch in [Architecture.llama, .gemma3] {  // the architectures TinyModel builds
            let full = try allLogits(TinyModel.transformer(arch, contextLength: 160), long)
            let stepper = try TinyModel.transformer(arch, contextLength: 160)
            for (i, t) in long.enumerated() {
                let row = try Array(stepper.decode(t, at: i))
                assertClose(row, full[i], tolerance: orderTolerance(arch), "\(arch) decode step \(i)")
            }
        }
    }

    /// The f16 cache: decode equals prefill, and both stay close to the f32 results.
    func testF16CacheMatchesF32() throws {
        for arch in [Architecture.llama, .gemma3] {  // the architectures TinyModel builds
            let reference = try allLogits(TinyModel.transformer(arch), tokens)
            let full = try allLogits(TinyModel.transformer(arch, cacheType: .f16), tokens)
            let stepper = try TinyModel.transformer(arch, cacheType: .f16)
            for (i, t) in tokens.enumerated() {
                assertClose(try Array(stepper.decode(t, at: i)), full[i], tolerance: orderTolerance(arch), "\(arch) f16 decode step \(i)")
                assertClose(full[i], reference[i], tolerance: 0.05, "\(arch) f16 vs f32 position \(i)")
            }
        }
    }

    func testSessionReusesSharedPrefix() throws {
        let m = try TinyModel.transformer(.llama)
        let session = GenerationSession(transformer: m)
        let first = try session.prefill(Array(tokens[0..<8]))
        XCTAssertEqual(first.evaluated, 8)
        let second = try session.prefill(Array(tokens[0..<6]) + [9, 10])
        XCTAssertEqual(second.evaluated, 2)
        let logits = Array(second.logits)
        let fresh = try allLogits(TinyModel.transformer(.llama), Array(tokens[0..<6]) + [9, 10])
        assertClose(logits, fresh[7], tolerance: 1e-4, "reused prefix")
        let same = try session.prefill(Array(tokens[0..<6]) + [9, 10])
        XCTAssertEqual(same.evaluated, 1)
    }

    func testTiedAndSeparateOutput() throws {
        let tied = try TinyModel.transformer(.llama, tied: true)
        XCTAssertEqual(tied.weights.output.data.baseAddress, tied.weights.tokenEmbedding.data.baseAddress)
        let separate = try TinyModel.transformer(.llama, tied: false)
        XCTAssertNotEqual(separate.weights.output.data.baseAddress, separate.weights.tokenEmbedding.data.baseAddress)
        let c = TinyModel.config(.llama)
        let (tensors, _) = TinyModel.tensors(c, tied: false)
        let logits = try allLogits(separate, [4, 5])
        XCTAssertEqual(logits[1].count, c.vocabSize)
        _ = tensors
    }

    func testStrictWeightMapping() throws {
        let c = TinyModel.config(.gemma3)
        var (tensors, storage) = TinyModel.tensors(c)
        let keep = tensors
        tensors["blk.1.attn_q_norm.weight"] = nil
        XCTAssertThrowsError(try TransformerWeights(config: c, tensors: tensors, storageOwner: storage)) {
            XCTAssertEqual($0 as? SwiftletError, .missingTensor("blk.1.attn_q_norm.weight"))
        }
        tensors = keep
        tensors["blk.9.attn_q.weight"] = keep["blk.0.attn_q.weight"]
        XCTAssertThrowsError(try TransformerWeights(config: c, tensors: tensors, storageOwner: storage)) {
            XCTAssertEqual($0 as? SwiftletError, .unexpectedTensor("blk.9.attn_q.weight"))
        }
        tensors = keep
        tensors["blk.0.attn_k.weight"] = keep["blk.0.attn_q.weight"]
        XCTAssertThrowsError(try TransformerWeights(config: c, tensors: tensors, storageOwner: storage)) {
            guard case .shapeMismatch? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
        // Llama has no QK-norm: Gemma's extra tensors are unexpected there.
        var llama = c
        llama.architecture = .llama
        XCTAssertThrowsError(try TransformerWeights(config: llama, tensors: keep, storageOwner: storage)) {
            guard case .unexpectedTensor? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
    }

    func testUnknownArchitectureAndContextOverflow() throws {
        XCTAssertThrowsError(try Architecture(gguf: "mamba")) {
            XCTAssertEqual($0 as? SwiftletError, .unsupportedArchitecture("mamba", supported: Architecture.allCases.map(\.rawValue)))
        }
        let m = try TinyModel.transformer(.llama, contextLength: 8)
        XCTAssertThrowsError(try m.decode(1, at: 8)) {
            XCTAssertEqual($0 as? SwiftletError, .contextOverflow(requested: 9, limit: 8))
        }
        XCTAssertThrowsError(try m.decode(50, at: 0))  // outside the vocabulary
        let session = GenerationSession(transformer: m)
        XCTAssertThrowsError(try session.prefill(Array(repeating: 3, count: 9))) {
            XCTAssertEqual($0 as? SwiftletError, .contextOverflow(requested: 9, limit: 8))
        }
    }
}
