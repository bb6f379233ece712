import Foundation
import XCTest
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor
import SwiftletTestSupport

/// The reader and writer on the real model files, checked against gguf-py's figures in
/// `Tests/Fixtures/reference/*-tensor-stats.json`.
final class GGUFRealModelTests: XCTestCase {
    private func checkAgainstTensorStats(_ model: RealModel, stats name: String) throws {
        let file = try GGUFFile(url: model.url())
        let stats = try XCTUnwrap(Fixtures.referenceJSON(name) as? [String: Any])
        let reference = try XCTUnwrap(stats["tensors"] as? [[String: Any]])
        XCTAssertEqual(file.tensors.count, reference.count)
        for (info, ref) in zip(file.tensors, reference) {
            XCTAssertEqual(info.name, ref["name"] as? String)
            XCTAssertEqual(info.type.description, ref["type"] as? String, info.name)
            XCTAssertEqual(info.shape, ref["shape"] as? [Int], info.name)
            XCTAssertEqual(info.byteCount, try XCTUnwrap(info.type.rowBytes(info.rowLength)) * info.rowCount, info.name)
            XCTAssertEqual(file.tensor(named: info.name)?.offset, info.offset)
            // F32 tensors need no dequantization: their sums check the zero-copy data view.
            if info.type == .f32 {
                let values = file.data(for: info).bindMemory(to: Float.self)
                var sum = 0.0, sumsq = 0.0
                for v in values { sum += Double(v); sumsq += Double(v) * Double(v) }
                let refSum = try XCTUnwrap(ref["sum"] as? Double), refSumsq = try XCTUnwrap(ref["sumsq"] as? Double)
                XCTAssertEqual(sum, refSum, accuracy: 1e-9 * max(1, refSumsq), info.name)
                XCTAssertEqual(sumsq, refSumsq, accuracy: 1e-9 * max(1, refSumsq), info.name)
            }
        }
        // Tensor data lies inside the file, after the header, aligned.
        for info in file.tensors {
            XCTAssertGreaterThanOrEqual(info.offset, file.dataOffset)
            XCTAssertEqual(info.offset % file.alignment, 0)
            XCTAssertEqual(file.data(for: info).count, info.byteCount)
        }
    }

    func testSmolLM2TensorTableMatchesReference() throws {
        try checkAgainstTensorStats(.smollm2, stats: "smollm2-tensor-stats.json")
    }

    func testGemma3TensorTableMatchesReference() throws {
        try checkAgainstTensorStats(.gemma3, stats: "gemma3-tensor-stats.json")
    }

    func testTypedAccessors() throws {
        let file = try GGUFFile(url: RealModel.gemma3.url())
        XCTAssertEqual(file.architecture, "gemma3")
        XCTAssertEqual(file.version, 3)
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        XCTAssertEqual(try file.floatArray("tokenizer.ggml.scores").count, tokens.count)
        XCTAssertEqual(try file.int32Array("tokenizer.ggml.token_type").count, tokens.count)
        XCTAssertEqual(try file.int("gemma3.embedding_length"), file.tensor(named: "token_embd.weight")?.shape.first)
        XCTAssertEqual(try file.intIfPresent("no.such.key"), nil)
        XCTAssertThrowsError(try file.int("no.such.key")) { XCTAssertEqual($0 as? SwiftletError, .missingMetadata("no.such.key")) }
        XCTAssertThrowsError(try file.string("gemma3.embedding_length")) {
            guard case .missingMetadata = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
    }

    /// Read a real file, write it back: the bytes are identical.
    func testRoundTripIsByteIdentical() throws {
        let source = try GGUFFile(url: RealModel.smollm2.url())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("copy.gguf")
        try GGUFWriter(copying: source).write(to: out)
        let copy = try MappedFile(url: out)
        XCTAssertEqual(copy.bytes.count, source.fileSize)
        XCTAssertTrue(copy.bytes.elementsEqual(source.storage.bytes), "written file differs from the original")
        // And what was written parses to the same tables.
        let reread = try GGUFFile(url: out)
        XCTAssertEqual(reread.metadataKeys, source.metadataKeys)
        XCTAssertEqual(reread.metadata, source.metadata)
        XCTAssertEqual(reread.tensors.map(\.name), source.tensors.map(\.name))
        XCTAssertEqual(reread.tensors.map(\.offset), source.tensors.map(\.offset))
    }
}
