import Foundation
import XCTest
import SwiftletTensor
import SwiftletTestSupport
@testable import SwiftletFormats

/// Safetensors files for the tests: written by `SafetensorsWriter`, then optionally broken by
/// rewriting the header text or the 8-byte length field.
enum SafetensorsBytes {
    struct Entry { var name: String; var dtype: String; var shape: [Int]; var data: [UInt8] }

    static func file(_ entries: [Entry], metadata: [String: String]? = nil, header: ((String) -> String)? = nil,
                     declaredLength: UInt64? = nil) -> Data {
        let tensors = entries.map { SafetensorsWriter.Tensor(name: $0.name, dtype: SafetensorsDType(rawValue: $0.dtype)!, shape: $0.shape, bytes: $0.data) }
        let encoded = try! SafetensorsWriter.encode(tensors, metadata: metadata ?? [:])
        let length = Int(encoded.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var json = String(decoding: encoded.dropFirst(8).prefix(length), as: UTF8.self)
        while json.hasSuffix(" ") { json.removeLast() }
        if let header { json = header(json) }
        while json.utf8.count % 8 != 0 { json += " " }
        var out = Data()
        var declared = (declaredLength ?? UInt64(json.utf8.count)).littleEndian
        withUnsafeBytes(of: &declared) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(json.utf8))
        out.append(encoded.dropFirst(8 + length))
        return out
    }

    static func f32(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } } }
    static func u16(_ values: [UInt16]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } } }

    static func write(_ data: Data, name: String = "model.safetensors", in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }
}

final class SafetensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func open(_ data: Data) throws -> SafetensorsFile {
        try SafetensorsFile(path: SafetensorsBytes.write(data, in: dir).path)
    }

    private func assertMalformed(_ data: Data, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try open(data), message, file: file, line: line) { error in
            switch error as? SwiftletError {
            case .malformedFile?, .truncatedFile?, .unsupportedTensorType?: break
            default: XCTFail("\(message): unexpected error \(error)", file: file, line: line)
            }
        }
    }

    func testReadsF32ZeroCopyAndConvertsF16BF16() throws {
        // Half and bfloat bit patterns with known values (IEEE 754 binary16 / bfloat16 tables).
        let half: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x3555]
        let halfValues: [Float] = [1, -2, 65504, Float(sign: .plus, exponent: -24, significand: 1), -0.0, 0.333251953125]
        let bf: [UInt16] = [0x3F80, 0xC040, 0x4049]
        let bfValues: [Float] = [1, -3, 3.140625]
        let data = SafetensorsBytes.file([
            .init(name: "a", dtype: "F32", shape: [2, 3], data: SafetensorsBytes.f32([1, 2, 3, 4, 5, -6.5])),
            .init(name: "h", dtype: "F16", shape: [6], data: SafetensorsBytes.u16(half)),
            .init(name: "b", dtype: "BF16", shape: [3], data: SafetensorsBytes.u16(bf)),
            .init(name: "ids", dtype: "I64", shape: [1], data: [7, 0, 0, 0, 0, 0, 0, 0]),
        ], metadata: ["format": "pt"])
        let f = try open(data)
        XCTAssertEqual(f.metadata, ["format": "pt"])
        XCTAssertEqual(f.names, ["a", "h", "b", "ids"])
        let a = try f.floats("a", shape: [2, 3])
        XCTAssertTrue(a.isMapped)
        XCTAssertEqual(a.values, [1, 2, 3, 4, 5, -6.5])
        let h = try f.floats("h")
        XCTAssertFalse(h.isMapped)
        XCTAssertEqual(h.values.map(\.bitPattern), halfValues.map(\.bitPattern))
        XCTAssertEqual(try f.floats("b").values, bfValues)
        XCTAssertEqual(try f.info("ids").dtype, .i64)
        XCTAssertEqual(Array(try f.rawBytes("ids")), [7, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try f.floats("ids")) { XCTAssertEqual($0 as? SwiftletError, .unsupportedTensorType("I64 for float tensor 'ids'")) }
        XCTAssertThrowsError(try f.floats("a", shape: [3, 2])) {
            guard case .shapeMismatch? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try f.floats("nope")) { XCTAssertEqual($0 as? SwiftletError, .missingTensor("nope")) }
    }

    func testHostileHeadersAreTypedErrors() throws {
        let good = SafetensorsBytes.Entry(name: "w", dtype: "F32", shape: [2], data: SafetensorsBytes.f32([1, 2]))
        assertMalformed(Data([1, 2, 3]), "shorter than the length field")
        assertMalformed(SafetensorsBytes.file([good], declaredLength: UInt64.max), "absurd header length")
        assertMalformed(SafetensorsBytes.file([good], declaredLength: 1 << 40), "header length beyond the limit")
        assertMalformed(SafetensorsBytes.file([good], declaredLength: 4096), "header longer than the file")
        assertMalformed(SafetensorsBytes.file([good], header: { _ in "{\"w\": [" }), "not JSON")
        assertMalformed(SafetensorsBytes.file([good], header: { _ in "[1,2]" }), "not an object")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "[0,8]", with: "[0,4096]") }), "offset past the data")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "[0,8]", with: "[8,0]") }), "reversed offsets")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "[0,8]", with: "[-8,8]") }), "negative offset")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "\"shape\":[2]", with: "\"shape\":[3]") }), "shape larger than data")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "\"F32\"", with: "\"F16\"") }), "dtype/shape mismatch")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "\"shape\":[2]", with: "\"shape\":[4294967296,4294967296,4]") }), "shape overflow")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "\"shape\":[2]", with: "\"shape\":[1.5]") }), "fractional dim")
        assertMalformed(SafetensorsBytes.file([good], header: { $0.replacingOccurrences(of: "\"F32\"", with: "\"Q9\"") }), "unknown dtype")
        let second = SafetensorsBytes.Entry(name: "v", dtype: "F32", shape: [2], data: SafetensorsBytes.f32([3, 4]))
        assertMalformed(SafetensorsBytes.file([good, second], header: { $0.replacingOccurrences(of: "[8,16]", with: "[4,12]") }), "overlapping tensors")
    }

    func testShardedIndex() throws {
        let shard1 = SafetensorsBytes.file([.init(name: "a", dtype: "F32", shape: [1], data: SafetensorsBytes.f32([1]))])
        let shard2 = SafetensorsBytes.file([.init(name: "b", dtype: "F32", shape: [1], data: SafetensorsBytes.f32([2]))])
        _ = try SafetensorsBytes.write(shard1, name: "model-00001-of-00002.safetensors", in: dir)
        _ = try SafetensorsBytes.write(shard2, name: "model-00002-of-00002.safetensors", in: dir)
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        func writeIndex(_ map: [String: String]) throws {
            try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": map]).write(to: index)
        }
        try writeIndex(["a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"])
        let checkpoint = try SafetensorsCheckpoint(directory: dir)
        XCTAssertEqual(checkpoint.names, ["a", "b"])
        XCTAssertEqual(try checkpoint.floats("b").values, [2])

        try writeIndex(["a": "model-00002-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"])
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: dir), "index names the wrong shard")
        try writeIndex(["a": "../model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"])
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: dir), "shard outside the folder") {
            guard case .malformedFile? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
        try writeIndex(["a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"])
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: dir), "index names a tensor its shard lacks") {
            XCTAssertEqual($0 as? SwiftletError, .missingTensor("c (index names shard model-00002-of-00002.safetensors)"))
        }
    }

    func testHFConfigDefaultsAndErrors() throws {
        let url = dir.appendingPathComponent("config.json")
        try Data(#"{"model_type":"bert","hidden_size":64,"num_attention_heads":4,"layer_norm_eps":1e-5}"#.utf8).write(to: url)
        let c = try HFConfig.load(BERTConfig.self, from: url)
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.headDim, 16)
        XCTAssertEqual(c.layerNormEps, 1e-5)
        XCTAssertEqual(c.intermediateSize, 3072, "transformers' BertConfig default")
        XCTAssertEqual(c.maxPositionEmbeddings, 512)
        try Data(#"{"hidden_size":"wide"}"#.utf8).write(to: url)
        XCTAssertThrowsError(try HFConfig.load(BERTConfig.self, from: url)) {
            guard case .malformedFile? = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
        var bad = BERTConfig()
        bad.numAttentionHeads = 5
        XCTAssertThrowsError(try bad.validate())
    }

    func testRealMiniLMCheckpoint() throws {
        let checkpoint = try SafetensorsCheckpoint(directory: RealModel.minilm.url())
        XCTAssertEqual(checkpoint.names.count, 104, "5 embedding tensors + position_ids, 16 per layer × 6, pooler weight and bias")
        let word = try checkpoint.floats("embeddings.word_embeddings.weight", shape: [30522, 384])
        XCTAssertTrue(word.isMapped, "aligned F32 is read without a copy")
        XCTAssertEqual(try checkpoint.info("embeddings.position_ids").dtype, .i64)
    }
}
