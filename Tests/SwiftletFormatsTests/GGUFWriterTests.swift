import Foundation
import XCTest
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor

final class GGUFWriterTests: XCTestCase {
    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Rewriting the file the tensor data is mapped from replaces it safely.
    func testRewriteInPlace() throws {
        let url = try temporaryDirectory().appendingPathComponent("model.gguf")
        let original = try GGUFPythonInteropTests.sampleWriter(alignment: nil)
        try original.write(to: url)
        let file = try GGUFFile(url: url)
        var writer = try GGUFWriter(copying: file)
        writer.set("general.alignment", .uint32(128))
        writer.set("added", .string("yes"))
        try writer.write(to: url)
        let reread = try GGUFFile(url: url)
        XCTAssertEqual(reread.alignment, 128)
        XCTAssertEqual(try reread.string("added"), "yes")
        XCTAssertEqual(reread.metadataKeys.count, original.metadataKeys.count + 2)
        for (t, info) in zip(original.tensors, reread.tensors) {
            XCTAssertEqual(info.name, t.name)
            XCTAssertEqual(Data(reread.data(for: info)), t.data, t.name)
            XCTAssertEqual(info.offset % 128, 0)
        }
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path), ["model.gguf"])
    }

    func testSetKeepsPositionAndRemoveDrops() {
        var w = GGUFWriter()
        w.set("a", .uint32(1)); w.set("b", .uint32(2)); w.set("a", .string("x"))
        XCTAssertEqual(w.metadataKeys, ["a", "b"])
        XCTAssertEqual(w.metadata["a"], .string("x"))
        w.removeValue(forKey: "a")
        XCTAssertEqual(w.metadataKeys, ["b"])
        XCTAssertNil(w.metadata["a"])
    }

    func testInvalidTensorsAreRejected() throws {
        var w = GGUFWriter()
        try w.addTensor(name: "ok", shape: [2], float32: [1, 2])
        let invalid: [(String, GGMLType, [Int], Int)] = [
            ("ok", .f32, [2], 8), // duplicate
            ("", .f32, [2], 8),
            (String(repeating: "n", count: 64), .f32, [2], 8), // longer than ggml's 63 bytes
            ("short", .f32, [2], 4), // wrong byte count
            ("rows", .q4_0, [33], 18), // not whole blocks
            ("dims", .f32, [1, 1, 1, 1, 1], 4),
            ("negative", .f32, [-1], 0),
            ("overflow", .f32, [1 << 40, 1 << 40], 0),
        ]
        for (name, type, shape, bytes) in invalid {
            XCTAssertThrowsError(try w.addTensor(name: name, type: type, shape: shape, data: Data(count: bytes)), name) {
                guard case .invalidArgument = $0 as? SwiftletError else { return XCTFail("\(name): \($0)") }
            }
        }
        XCTAssertEqual(w.tensors.count, 1)
        w.set("general.alignment", .uint32(24))
        XCTAssertThrowsError(try w.serialized()) {
            guard case .invalidArgument = $0 as? SwiftletError else { return XCTFail("\($0)") }
        }
    }
}
