import Foundation
import XCTest
import SwiftletFormats
import SwiftletQuant
import SwiftletTensor
import SwiftletTestSupport

/// Files Swiftlet writes read back identically in gguf-py, and Swiftlet reads a real file as
/// gguf-py does. gguf-py comes from `pip install gguf` (done by `make test`'s set-up); the
/// dumper is `scripts/gguf_dump_json.py`.
final class GGUFPythonInteropTests: XCTestCase {
    /// A file exercising every value type, nested and empty arrays, odd tensor sizes (padding),
    /// several block types, 1-D to 4-D shapes, and a non-default alignment.
    static func sampleWriter(alignment: UInt32?) throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string("swiftlet-test"))
        if let alignment { w.set("general.alignment", .uint32(alignment)) }
        w.set("t.u8", .uint8(255)); w.set("t.i8", .int8(-128))
        w.set("t.u16", .uint16(65535)); w.set("t.i16", .int16(-32768))
        w.set("t.u32", .uint32(.max)); w.set("t.i32", .int32(.min))
        w.set("t.u64", .uint64(.max)); w.set("t.i64", .int64(.min))
        w.set("t.f32", .float32(-0.0)); w.set("t.f32.inf", .float32(.infinity)); w.set("t.f32.tiny", .float32(.leastNonzeroMagnitude))
        w.set("t.f64", .float64(Double.pi))
        w.set("t.true", .bool(true)); w.set("t.false", .bool(false))
        w.set("t.str", .string("héllo, 世界 🦙\n\"quoted\"")); w.set("t.empty", .string(""))
        w.set("a.u8", .array(.uint8([0, 1, 255]))); w.set("a.i8", .array(.int8([-1, 0, 127])))
        w.set("a.u16", .array(.uint16([1, 65535]))); w.set("a.i16", .array(.int16([-2, 2])))
        w.set("a.u32", .array(.uint32([7, .max]))); w.set("a.i32", .array(.int32([.min, 0, .max])))
        w.set("a.u64", .array(.uint64([0, .max]))); w.set("a.i64", .array(.int64([.min, .max])))
        w.set("a.f32", .array(.float32([1.5, -2.25, .greatestFiniteMagnitude]))); w.set("a.f64", .array(.float64([1e300, -1e-300])))
        w.set("a.bool", .array(.bool([true, false, true])))
        w.set("a.str", .array(.string(["", "a", "ünïcödé", String(repeating: "x", count: 1000)])))
        w.set("a.empty", .array(.float32([])))
        w.set("a.nested", .array(.array([.uint8([1, 2]), .string(["x", "yz"]), .int32([]), .array([.float64([0.5])])])))
        w.set("t.last", .uint32(1))

        var rng = SplitMix64(seed: 42)
        func bytes(_ n: Int) -> Data { Data((0 ..< n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }) }
        try w.addTensor(name: "f32.odd", shape: [7, 3], float32: (0 ..< 21).map { Float($0) * 0.25 - 1 })
        try w.addTensor(name: "f16.vec", type: .f16, shape: [5], data: bytes(10))
        try w.addTensor(name: "q8_0.mat", type: .q8_0, shape: [64, 3], data: bytes(34 * 2 * 3))
        try w.addTensor(name: "q4_K.mat", type: .q4_K, shape: [256, 2, 1], data: bytes(144 * 2))
        try w.addTensor(name: "i8.4d", type: .i8, shape: [3, 2, 2, 2], data: bytes(24))
        try w.addTensor(name: "i32.vec", type: .i32, shape: [3], data: bytes(12))
        try w.addTensor(name: "q4_1.row", type: .q4_1, shape: [32], data: bytes(20))
        return w
    }

    func testWrittenFileReadsBackInGGUFPy() throws {
        try Python.requireGGUFPy()
        for alignment in [nil, UInt32(64)] {
            let writer = try Self.sampleWriter(alignment: alignment)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-gguf-py-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent("sample.gguf")
            try writer.write(to: url)
            XCTAssertEqual(try Data(contentsOf: url), try writer.serialized())

            let dump = try Self.dump(url, crc: true)
            XCTAssertEqual(dump["version"] as? Int, 3)
            XCTAssertEqual(dump["alignment"] as? Int, try writer.alignment())
            try Self.compareMetadata(dump, keys: writer.metadataKeys, values: writer.metadata)
            let tensors = try XCTUnwrap(dump["tensors"] as? [[String: Any]])
            XCTAssertEqual(tensors.count, writer.tensors.count)
            let reread = try GGUFFile(url: url)
            for ((t, py), info) in zip(zip(writer.tensors, tensors), reread.tensors) {
                XCTAssertEqual(py["name"] as? String, t.name)
                XCTAssertEqual(py["type"] as? Int, Int(t.type.rawValue), t.name)
                XCTAssertEqual(py["shape"] as? [Int], t.shape, t.name)
                XCTAssertEqual(py["nbytes"] as? Int, t.data.count, t.name)
                XCTAssertEqual(py["offset"] as? Int, info.offset, t.name)
                XCTAssertEqual(py["crc32"] as? Int, Int(CRC32.checksum(t.data)), t.name)
                XCTAssertEqual(Data(reread.data(for: info)), t.data, t.name)
            }
        }
    }

    /// Swiftlet's reader agrees with gguf-py on a real file: every metadata value, every
    /// tensor's name, type, shape, absolute offset and size.
    func testRealFileReadsAsInGGUFPy() throws {
        let url = try RealModel.smollm2.url()
        try Python.requireGGUFPy()
        let file = try GGUFFile(url: url)
        let dump = try Self.dump(url, crc: false)
        XCTAssertEqual(dump["version"] as? Int, Int(file.version))
        XCTAssertEqual(dump["alignment"] as? Int, file.alignment)
        XCTAssertEqual(dump["data_offset"] as? Int, file.dataOffset)
        try Self.compareMetadata(dump, keys: file.metadataKeys, values: file.metadata)
        let tensors = try XCTUnwrap(dump["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, file.tensors.count)
        for (t, py) in zip(file.tensors, tensors) {
            XCTAssertEqual(py["name"] as? String, t.name)
            XCTAssertEqual(py["type"] as? Int, Int(t.type.rawValue), t.name)
            XCTAssertEqual(py["shape"] as? [Int], t.shape, t.name)
            XCTAssertEqual(py["offset"] as? Int, t.offset, t.name)
            XCTAssertEqual(py["nbytes"] as? Int, t.byteCount, t.name)
        }
    }

    // MARK: - helpers

    static func compareMetadata(_ dump: [String: Any], keys: [String], values: [String: GGUFValue]) throws {
        let metadata = try XCTUnwrap(dump["metadata"] as? [[Any]])
        XCTAssertEqual(metadata.map { $0[0] as? String }, keys)
        for entry in metadata {
            guard let key = entry[0] as? String, let value = values[key] else { continue }
            let expected = encode(value, topLevel: true) as! NSObject
            XCTAssertTrue(expected.isEqual(entry[1]), "\(key): gguf-py \(entry[1]) vs Swiftlet \(expected)")
        }
    }

    /// The JSON shape `scripts/gguf_dump_json.py` gives a value.
    static func encode(_ value: GGUFValue, topLevel: Bool) -> Any {
        let plain: Any
        switch value {
        case let .uint8(v): plain = Int(v)
        case let .int8(v): plain = Int(v)
        case let .uint16(v): plain = Int(v)
        case let .int16(v): plain = Int(v)
        case let .uint32(v): plain = Int(v)
        case let .int32(v): plain = Int(v)
        case let .uint64(v): plain = String(v)
        case let .int64(v): plain = String(v)
        case let .float32(v): plain = Int(v.bitPattern)
        case let .float64(v): plain = NSNumber(value: v.bitPattern)
        case let .bool(v): plain = v ? 1 : 0
        case let .string(v): plain = v
        case let .array(a):
            let elements = (0 ..< a.count).map { encode(a.element(at: $0)!, topLevel: false) }
            return ["ARRAY", a.elementType.description, elements] as [Any]
        }
        return topLevel ? [value.type.description, plain] as [Any] : plain
    }

    static func dump(_ url: URL, crc: Bool) throws -> [String: Any] {
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/gguf_dump_json.py").path
        let (status, out, err) = try Python.run([script, url.path] + (crc ? ["--crc"] : []))
        guard status == 0 else { throw Python.skipOrFail("gguf_dump_json.py failed: \(err)") }
        return try XCTUnwrap(JSONSerialization.jsonObject(with: out) as? [String: Any])
    }
}

/// CRC-32 (IEEE, as zlib.crc32) for comparing tensor bytes with gguf-py.
enum CRC32 {
    static let table: [UInt32] = (0 ..< 256).map { n in
        var c = UInt32(n)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}

