import Foundation
import Swiftlet
import SwiftletTestSupport
import XCTest

/// `Quantizer` against llama-quantize (llama-cpp-python 0.3.36's build): the files it writes for
/// the synthetic models of `Tests/Fixtures/llama-quantize` in 88 configurations (every type, with
/// and without an importance matrix, the mix options), compared whole-file by FNV-1a-64 and size.
final class QuantizerFixtureTests: XCTestCase {
    static let folder = Fixtures.packageRoot.appendingPathComponent("Tests/Fixtures/llama-quantize")

    func testEveryConfigurationMatchesLlamaQuantize() throws {
        let manifest = try String(contentsOf: Self.folder.appendingPathComponent("expected.tsv"), encoding: .utf8)
        let lines = manifest.split(separator: "\n")
        XCTAssertEqual(lines.count, 88)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let imatrix = try ImportanceMatrix(contentsOf: Self.folder.appendingPathComponent("synthetic-imatrix.gguf"))
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            let (source, args, type, hash, size) = (f[0], f[1].split(separator: " ").map(String.init), f[2], f[3], Int(f[4])!)
            var options = Quantizer.Options(mix: try XCTUnwrap(QuantizationMix(name: type)))
            options.threads = 2
            var i = 0
            while i < args.count {
                switch args[i] {
                case "--imatrix": options.importanceMatrix = imatrix; options.importanceMatrixPath = args[i + 1]; i += 1
                case "--pure": options.pure = true
                case "--leave-output-tensor": options.leaveOutputTensor = true
                case "--output-tensor-type": options.outputTensorType = GGMLType(name: args[i + 1]); i += 1
                case "--token-embedding-type": options.tokenEmbeddingType = GGMLType(name: args[i + 1]); i += 1
                default: XCTFail("unknown option \(args[i])")
                }
                i += 1
            }
            let out = dir.appendingPathComponent("out.gguf")
            try Quantizer.quantize(input: Self.folder.appendingPathComponent(source), output: out, options: options)
            let data = try Data(contentsOf: out)
            XCTAssertEqual(data.count, size, "\(source) \(f[1]) \(type)")
            XCTAssertEqual(String(fnv1a64(data), radix: 16).leftPadded(16), hash, "\(source) \(f[1]) \(type)")
        }
    }

    func testPlanFollowsLlamaQuantizeMixRules() throws {
        let file = Self.folder.appendingPathComponent("synthetic-f32.gguf")
        let plan = try Quantizer.plan(for: file, options: Quantizer.Options(mix: .q4_K_M))
        let types = Dictionary(uniqueKeysWithValues: plan.entries.map { ($0.name, $0.targetType) })
        XCTAssertEqual(types["output.weight"], .q6_K)
        XCTAssertEqual(types["token_embd.weight"], .q4_K)
        XCTAssertEqual(types["output_norm.weight"], .f32)
        // use_more_bits: layers 0, 3, 6, 7 of 8 get Q6_K attention-V.
        XCTAssertEqual((0..<8).map { types["blk.\($0).attn_v.weight"]! }, [.q6_K, .q4_K, .q4_K, .q6_K, .q4_K, .q4_K, .q6_K, .q6_K])
        // ffn_down rows of 96 fall back (Q6_K → Q8_0, Q4_K → Q5_0); 40 columns fall back to F16.
        XCTAssertEqual(types["blk.0.ffn_down.weight"], .q8_0)
        XCTAssertEqual(types["blk.1.ffn_down.weight"], .q5_0)
        XCTAssertEqual(types["blk.7.ffn_down.weight"], .f16)
        XCTAssertEqual(plan.entries.filter(\.fellBack).count, 8)
        // Output order: non-layer tensors by name, then by layer.
        XCTAssertEqual(plan.entries.prefix(4).map(\.name), ["output.weight", "output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight"])
    }

    func testImportanceMatrixReadsBothFormatsAlike() throws {
        let m = try ImportanceMatrix(contentsOf: Self.folder.appendingPathComponent("synthetic-imatrix.gguf"))
        XCTAssertEqual(m.chunkCount, 3)
        XCTAssertEqual(m.chunkSize, 256)
        XCTAssertEqual(m.datasets, ["synthetic"])
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dat = dir.appendingPathComponent("m.dat"), gguf = dir.appendingPathComponent("m.gguf")
        try m.write(to: dat)
        try m.write(to: gguf)
        let legacy = try ImportanceMatrix(contentsOf: dat)
        XCTAssertTrue(legacy.isLegacy)
        XCTAssertEqual(try ImportanceMatrix(contentsOf: gguf), m)
        for name in m.entries.keys {
            let a = try XCTUnwrap(m.weights(for: name)), b = try XCTUnwrap(legacy.weights(for: name))
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: abs(x) * 1e-6, name) }
        }
    }
}

/// Hostile inputs: a clear error, and no output file left behind.
final class QuantizerHostileInputTests: XCTestCase {
    private func assertFailsCleanly(input: URL, output: URL, options: Quantizer.Options, contains needle: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Quantizer.quantize(input: input, output: output, options: options), file: file, line: line) { error in
            XCTAssertTrue(error is SwiftletError, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(needle), "\(error)", file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), file: file, line: line)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: output.deletingLastPathComponent().path)) ?? []
        XCTAssertFalse(leftovers.contains { $0.hasSuffix(".partial") }, "\(leftovers)", file: file, line: line)
    }

    func testTruncatedSourceUnwritableOutputAndRequantize() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = QuantizerFixtureTests.folder.appendingPathComponent("synthetic-f32.gguf")
        let bytes = try Data(contentsOf: source)
        let out = dir.appendingPathComponent("out.gguf")

        let truncated = dir.appendingPathComponent("truncated.gguf")
        try bytes.prefix(bytes.count - 1000).write(to: truncated)
        assertFailsCleanly(input: truncated, output: out, options: .init(mix: .q4_0), contains: "truncated")

        let header = dir.appendingPathComponent("header.gguf")
        try bytes.prefix(100).write(to: header)
        assertFailsCleanly(input: header, output: out, options: .init(mix: .q4_0), contains: "truncated")

        assertFailsCleanly(input: source, output: dir.appendingPathComponent("missing/out.gguf"), options: .init(mix: .q4_0),
                           contains: "cannot create output")

        let quantized = dir.appendingPathComponent("q8.gguf")
        try Quantizer.quantize(input: source, output: quantized, options: .init(mix: .q8_0))
        assertFailsCleanly(input: quantized, output: out, options: .init(mix: .q4_0), contains: "--allow-requantize")
        var allowed = Quantizer.Options(mix: .q4_0)
        allowed.allowRequantize = true
        XCTAssertNoThrow(try Quantizer.quantize(input: quantized, output: out, options: allowed))

        XCTAssertThrowsError(try Quantizer.quantize(input: source, output: source, options: .init(mix: .q4_0))) {
            XCTAssertTrue("\($0)".contains("same"), "\($0)")
        }
        XCTAssertEqual(try Data(contentsOf: source), bytes)
        XCTAssertNil(QuantizationMix(name: "Q4_Z"))
    }

    func testImportanceMatrixOfTheWrongSizeIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = Quantizer.Options(mix: .q4_K_M)
        options.importanceMatrix = ImportanceMatrix(entries: ["blk.0.attn_q.weight": .init(sums: [1, 2, 3], counts: [1])],
                                                    datasets: ["x"], chunkCount: 1, chunkSize: 1)
        assertFailsCleanly(input: QuantizerFixtureTests.folder.appendingPathComponent("synthetic-f32.gguf"),
                           output: dir.appendingPathComponent("out.gguf"), options: options, contains: "imatrix size")
    }

    func testGarbageImportanceMatrixFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let junk = dir.appendingPathComponent("junk.dat")
        try Data([5, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]).write(to: junk)
        XCTAssertThrowsError(try ImportanceMatrix(contentsOf: junk)) { XCTAssertTrue($0 is SwiftletError, "\($0)") }
        let empty = dir.appendingPathComponent("empty.dat")
        try Data().write(to: empty)
        XCTAssertThrowsError(try ImportanceMatrix(contentsOf: empty)) { XCTAssertTrue($0 is SwiftletError, "\($0)") }
    }
}

/// The real models: dequantizing and requantizing reproduce llama.cpp's bytes.
final class QuantizerRealModelTests: XCTestCase {
    /// SmolLM2 dequantized to F32 is llama-quantize's F32 file (`--allow-requantize … F32`); that
    /// file quantized to Q4_K_M with llama-imatrix's matrix is llama-quantize's Q4_K_M file; and
    /// quantized to Q4_1 it gives back the shipped Q4_1 tensors byte for byte.
    func testSmolLM2MatchesLlamaQuantize() throws {
        let model = try RealModel.smollm2.url()
        let folder = QuantizerFixtureTests.folder
        let expected = try String(contentsOf: folder.appendingPathComponent("expected-smollm2.tsv"), encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f32 = dir.appendingPathComponent("f32.gguf")
        var dequantize = Quantizer.Options(mix: .f32)
        dequantize.allowRequantize = true
        try Quantizer.quantize(input: model, output: f32, options: dequantize)
        try assertFile(f32, hash: expected[0][3], size: Int(expected[0][4])!)

        let q4km = dir.appendingPathComponent("q4_k_m.gguf")
        var options = Quantizer.Options(mix: .q4_K_M)
        options.importanceMatrix = try ImportanceMatrix(contentsOf: folder.appendingPathComponent("smollm2-imatrix.gguf"))
        options.importanceMatrixPath = "smollm2-imatrix.gguf"
        try Quantizer.quantize(input: f32, output: q4km, options: options)
        try assertFile(q4km, hash: expected[1][3], size: Int(expected[1][4])!)

        let q41 = dir.appendingPathComponent("q4_1.gguf")
        try Quantizer.quantize(input: f32, output: q41, options: .init(mix: .q4_1))
        let shipped = try GGUFFile(url: model), ours = try GGUFFile(url: q41)
        var compared = 0
        for info in shipped.tensors where info.type == .q4_1 {
            let mine = try XCTUnwrap(ours.tensor(named: info.name))
            XCTAssertEqual(mine.type, .q4_1, info.name)
            XCTAssertTrue(ours.data(for: mine).elementsEqual(shipped.data(for: info)), info.name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 200)
    }

    /// llama-imatrix's own file, read and written back, is the same bytes.
    func testImportanceMatrixRewritesLlamaImatrixFileExactly() throws {
        let url = QuantizerFixtureTests.folder.appendingPathComponent("smollm2-imatrix.gguf")
        let m = try ImportanceMatrix(contentsOf: url)
        XCTAssertEqual(m.entries.count, 210)
        XCTAssertEqual(try m.ggufWriter().serialized(), try Data(contentsOf: url))
    }

    private func assertFile(_ url: URL, hash: String, size: Int, line: UInt = #line) throws {
        let file = try MappedFile(url: url)
        withExtendedLifetime(file) {
            XCTAssertEqual(file.bytes.count, size, url.lastPathComponent, line: line)
            XCTAssertEqual(String(fnv1a64(file.bytes), radix: 16).leftPadded(16), hash, url.lastPathComponent, line: line)
        }
    }
}

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-quant-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// FNV-1a, 64 bits: the fixtures' whole-file checksum.
func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: Swift.max(0, width - count)) + self }
}
