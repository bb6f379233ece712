import Foundation
import XCTest
import Swiftlet
import SwiftletTestSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files a careless user names: FIFOs, invalid UTF-8, mistyped config.json, tokenizer.json with
/// absurd ids, safetensors edge cases that are valid.
final class HostileInputFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Opening a FIFO for reading blocks until a writer comes; Swiftlet must refuse it at once.
    func testFIFOIsRefusedWithoutBlocking() throws {
        let fifo = dir.appendingPathComponent("model.gguf")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        final class Outcome: @unchecked Sendable { var errors: [SwiftletError?] = [] }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for open in [{ _ = try GGUFFile(url: fifo) }, { _ = try MappedFile.readText(fifo, limit: 1 << 20) },
                         { _ = try WordPieceTokenizer(tokenizerJSON: fifo) }, { _ = try HFConfig.load(BERTConfig.self, from: fifo) }] {
                do { try open(); outcome.errors.append(nil) } catch { outcome.errors.append(error as? SwiftletError) }
            }
            done.signal()
        }
        thread.start()
        if done.wait(timeout: .now() + 10) == .timedOut {
            // Unblock the reader (a writer arriving ends its wait) so the process can finish.
            let fd = open(fifo.path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 10)
            return XCTFail("opening a FIFO blocked")
        }
        XCTAssertEqual(outcome.errors.count, 4)
        for error in outcome.errors {
            guard case .io(_, let reason)? = error else { XCTFail("\(String(describing: error))"); continue }
            XCTAssertEqual(reason, "not a regular file")
        }
    }

    func testInvalidUTF8TextNamesThePathAndOffset() throws {
        let url = dir.appendingPathComponent("prompt.txt")
        try Data([0x48, 0x69, 0x20, 0xC3, 0xA9, 0xFF, 0x21]).write(to: url)
        XCTAssertThrowsError(try MappedFile.readText(url, limit: 1 << 20)) { error in
            XCTAssertEqual(error as? SwiftletError, .malformedFile(path: url.path, reason: "not valid UTF-8 (byte 5)"))
        }
        try Data("Hi é!".utf8).write(to: url)
        XCTAssertEqual(try MappedFile.readText(url, limit: 1 << 20), "Hi é!")
        XCTAssertThrowsError(try MappedFile.readText(url, limit: 3)) { error in
            guard case .io? = error as? SwiftletError else { return XCTFail("\(error)") }
        }
    }

    func testConfigTypeErrorsNameTheKey() throws {
        let cases: [(String, String)] = [
            (#"{"hidden_size": "384"}"#, "hidden_size: expected an integer"),
            (#"{"hidden_size": 384.5}"#, "hidden_size: expected an integer (found 384.5)"),
            (#"{"num_hidden_layers": null}"#, ""),  // null is "absent": the default
            (#"{"layer_norm_eps": "tiny"}"#, "layer_norm_eps: expected a number"),
            (#"{"hidden_act": 3}"#, "hidden_act: expected a string"),
            (#"{"architectures": "BertModel"}"#, ""),  // not read by BERTConfig
            (#"{"hidden_size": 3"#, "not valid JSON"),
            (#"[1, 2]"#, "top level: expected"),
        ]
        for (json, expected) in cases {
            let url = dir.appendingPathComponent("config.json")
            try Data(json.utf8).write(to: url)
            do {
                _ = try HFConfig.load(BERTConfig.self, from: url)
                XCTAssertEqual(expected, "", "\(json) was accepted")
            } catch let error as SwiftletError {
                guard case .malformedFile(let path, let reason) = error else { XCTFail("\(error)"); continue }
                XCTAssertEqual(path, url.path)
                XCTAssertFalse(expected.isEmpty, "\(json): \(reason)")
                XCTAssertTrue(reason.hasPrefix(expected), "\(json): \(reason)")
            }
        }
        XCTAssertThrowsError(try HFConfig.decode(HFConfig.Header.self, from: Data(#"{"architectures": "BertModel"}"#.utf8), path: "c")) {
            XCTAssertTrue("\($0)".contains("architectures: expected an array"), "\($0)")
        }
    }

    /// One id of 16777215 used to make the loader allocate 16 M placeholder tokens.
    func testTokenizerJSONIdsAreBoundedByTheVocabulary() throws {
        func json(_ vocab: String) -> Data {
            Data(#"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {\#(vocab)}}}"#.utf8)
        }
        let base = #""[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3"#
        XCTAssertEqual(try WordPieceTokenizer(tokenizerJSON: json(base), path: "t").vocabularySize, 4)
        for bad in ["16777215", "5", "-1", "1.5", "1e300", "\"3\"", "null"] {
            let start = Date()
            XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSON: json(base + #", "b": \#(bad)"#), path: "t"), bad) { error in
                guard case .malformedFile(_, let reason)? = error as? SwiftletError else { return XCTFail("\(bad): \(error)") }
                XCTAssertTrue(reason.contains("outside the vocabulary of 5 tokens"), reason)
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 1, bad)
        }
    }

    /// A tensor with no elements overlaps nothing, even at the offset where another starts.
    func testEmptySafetensorsTensorAtAnyOffsetIsAccepted() throws {
        for (emptyName, offsets) in [("z", "[0,0]"), ("a0", "[0,0]"), ("m", "[8,8]"), ("zz", "[16,16]")] {
            let header = #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0,16]}, "\#(emptyName)": {"dtype": "F32", "shape": [0, 3], "data_offsets": \#(offsets)}}"#
            var bytes = Data()
            withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: Array(header.utf8))
            bytes.append(contentsOf: [UInt8](repeating: 0, count: 16))
            let file = try SafetensorsFile(mapping: MappedFile(copying: bytes), path: "t.safetensors")
            XCTAssertEqual(try file.floats(emptyName).buffer.count, 0)
            XCTAssertEqual(try file.floats("w").buffer.count, 4)
        }
        // Tensors with bytes still may not overlap.
        let header = #"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0,16]}, "v": {"dtype": "F32", "shape": [1], "data_offsets": [12,16]}}"#
        var bytes = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8) + [UInt8](repeating: 0, count: 16))
        XCTAssertThrowsError(try SafetensorsFile(mapping: MappedFile(copying: bytes), path: "t.safetensors"))
    }
}
