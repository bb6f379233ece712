import Foundation
import XCTest
import SwiftletFormats
import SwiftletTestSupport

/// A GGUF rewritten by Swiftlet with a different layout (64-byte alignment, extra metadata of
/// every scalar and flat array type) loads in llama.cpp and generates exactly what the original
/// does. Needs llama.cpp's tools: set `SWIFTLET_LLAMA_BIN` to the directory holding
/// `llama-completion`; skipped otherwise. (llama.cpp reads no nested arrays, so none are added.)
final class GGUFLlamaCppInteropTests: XCTestCase {
    func testRewrittenModelGeneratesAsOriginalInLlamaCpp() throws {
        guard let bin = ProcessInfo.processInfo.environment["SWIFTLET_LLAMA_BIN"] else {
            throw XCTSkip("set SWIFTLET_LLAMA_BIN to llama.cpp's build/bin")
        }
        let original = try RealModel.smollm2.url()
        var writer = try GGUFWriter(copying: GGUFFile(url: original))
        writer.set("general.alignment", .uint32(64))
        writer.set("swiftlet.u8", .uint8(200)); writer.set("swiftlet.i16", .int16(-7)); writer.set("swiftlet.u64", .uint64(.max))
        writer.set("swiftlet.f64", .float64(0.1)); writer.set("swiftlet.bool", .bool(true)); writer.set("swiftlet.str", .string("ünïcode 🦙"))
        writer.set("swiftlet.f32s", .array(.float32([1, 2.5]))); writer.set("swiftlet.i64s", .array(.int64([-1, 1 << 40])))
        writer.set("swiftlet.strs", .array(.string(["a", "", "ß"]))); writer.set("swiftlet.empty", .array(.uint16([])))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-llama-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rewritten = dir.appendingPathComponent("rewritten.gguf")
        try writer.write(to: rewritten)
        let reread = try GGUFFile(url: rewritten)
        XCTAssertEqual(reread.alignment, 64)
        XCTAssertTrue(reread.tensors.allSatisfy { $0.offset % 64 == 0 })

        func generate(_ model: URL) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: bin).appendingPathComponent("llama-completion")
            process.arguments = ["-m", model.path, "-p", "The capital of France is", "-n", "16", "--temp", "0",
                                 "-t", "2", "-no-cnv", "--no-warmup", "-s", "1"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "llama-completion failed on \(model.lastPathComponent)")
            return String(decoding: data, as: UTF8.self)
        }
        let expected = try generate(original)
        XCTAssertTrue(expected.contains("The capital of France is"), expected)
        XCTAssertEqual(try generate(rewritten), expected)
    }
}
