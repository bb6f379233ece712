import Foundation
import Swiftlet
import SwiftletTestSupport
import XCTest
@testable import SwiftletCLI

/// The `swiftlet` binary's contract, run as a user runs it: exit codes, what goes to stdout and
/// what to stderr, machine-readable output, and llama.cpp's flag names.
final class CommandContractTests: XCTestCase {
    struct Run { let status: Int32; let stdout: String; let stderr: String }

    /// The `swiftlet` executable built beside this test bundle (`swift test` builds every product
    /// into the same folder: on Linux the test runner is the bundle itself, on macOS `xctest`
    /// loads it from there).
    static let binary: URL = {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
                          Bundle(for: CommandContractTests.self).bundleURL.deletingLastPathComponent()]
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("swiftlet").path) }
        return (found ?? candidates[0]).appendingPathComponent("swiftlet")
    }()

    func run(_ arguments: [String], stdin: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes before waiting, so a chatty command cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        group.wait()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: errData, as: UTF8.self))
    }

    func testEveryCommandHasHelp() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary.path), "no swiftlet beside the tests: \(Self.binary.path)")
        for command in SwiftletCommand.configuration.subcommands {
            let name = command.configuration.commandName ?? command._commandName
            let r = try run([name, "--help"])
            XCTAssertEqual(r.status, 0, "\(name) --help: \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE: swiftlet \(name)"), "\(name) --help:\n\(r.stdout)")
        }
        let r = try run(["--help"])
        XCTAssertEqual(r.status, 0)
        for command in SwiftletCommand.configuration.subcommands where command.configuration.shouldDisplay {
            XCTAssertTrue(r.stdout.contains(command._commandName), "root help lists \(command._commandName)")
        }
    }

    func testUnknownCommandAndOptionFailWithUsageOnStderr() throws {
        let unknown = try run(["frobnicate"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stdout.isEmpty)
        XCTAssertFalse(unknown.stderr.isEmpty)
        let option = try run(["generate", "-m", "x.gguf", "-p", "hi", "--no-such-flag"])
        XCTAssertNotEqual(option.status, 0)
        XCTAssertTrue(option.stderr.contains("--no-such-flag"), option.stderr)
    }

    func testMissingModelFileIsAnErrorNamingTheFile() throws {
        let missing = "/nonexistent/model-\(UUID().uuidString).gguf"
        let text = FileManager.default.temporaryDirectory.appendingPathComponent("contract-\(UUID().uuidString).txt")
        try Data("some text".utf8).write(to: text)
        defer { try? FileManager.default.removeItem(at: text) }
        for arguments in [["generate", "-m", missing, "-p", "hi"], ["perplexity", "-m", missing, "-f", text.path],
                          ["tokenize", "-m", missing, "hi"], ["bench", "-m", missing], ["info", missing],
                          ["quantize", missing, "/tmp/out-\(UUID().uuidString).gguf", "Q8_0"]] {
            let r = try run(arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.stdout.isEmpty, "\(arguments): stdout \(r.stdout)")
            XCTAssertTrue(r.stderr.contains(missing) || r.stderr.contains("model-"), "\(arguments): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), "\(arguments): \(r.stderr)")
        }
    }

    func testGenerateWritesTextToStdoutAndStatisticsToStderr() async throws {
        let model = try RealModel.smollm2.url()
        let r = try run(["generate", "-m", model.path, "-p", "The capital of France is", "-n", "8", "--temp", "0", "-t", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The same greedy continuation as the library's.
        let lm = try await LanguageModel.load(model)
        var parameters = GenerationParameters(maxTokens: 8)
        parameters.sampling = .greedy
        var expected = ""
        for try await chunk in lm.generate(prompt: "The capital of France is", parameters: parameters) { expected += chunk.text }
        XCTAssertEqual(r.stdout, expected + "\n")
        XCTAssertTrue(r.stderr.contains("tokens/s") || r.stderr.contains("t/s"), r.stderr)
    }

    func testGenerateJSONOutputIsMachineReadable() throws {
        let model = try RealModel.smollm2.url()
        let r = try run(["generate", "-m", model.path, "-p", "Hello", "-n", "4", "--temp", "0", "--output-format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((object["generated_ids"] as? [Int])?.count, 4)
        XCTAssertNotNil(object["prompt_ids"] as? [Int])
        XCTAssertNotNil((object["stats"] as? [String: Any])?["stop_reason"])
    }

    func testTokenizeIDsMatchTheLibrary() async throws {
        let model = try RealModel.smollm2.url()
        let r = try run(["tokenize", "-m", model.path, "--ids", "Hello world"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Int])
        let lm = try await LanguageModel.load(model)
        XCTAssertEqual(ids.map(TokenID.init), lm.tokenizer.encode("Hello world"))
    }

    func testChatEndsOnExitAndResetsOnReset() throws {
        let model = try RealModel.smollm2.url()
        let r = try run(["chat", "-m", model.path, "-n", "4", "--temp", "0"], stdin: "Hi\n/reset\n/exit\nnever read\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("never read"))
    }

    func testBenchJSONHasLlamaBenchFields() throws {
        let model = try RealModel.smollm2.url()
        let r = try run(["bench", "-m", model.path, "-p", "8", "-n", "2", "-r", "1", "-o", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, 2)
        for field in ["model_type", "n_prompt", "n_gen", "n_threads", "avg_ts", "stddev_ts", "samples_ns"] {
            XCTAssertNotNil(rows[0][field], "llama-bench field \(field)")
        }
    }

    func testInfoSystemReportsTheKernelPath() throws {
        let r = try run(["info", "--system"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.isEmpty)
    }
}
