import Foundation
import XCTest
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Swiftlet
import SwiftletServer
import SwiftletTestSupport

/// The server against real clients: the official `openai` Python package, the hostile-request
/// suite, and `swiftlet serve` as a process receiving SIGTERM.
final class ServerClientsTests: XCTestCase {
    private static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts")

    func testOpenAIPythonClient() async throws {
        let running = try await ServerFixture.shared.start()
        if (try? Python.run(["-c", "import openai"]))?.0 != 0 {
            throw Python.skipOrFail("python3 with the openai package unavailable (scripts/install-deps.sh installs it)")
        }
        let (status, out, err) = try Python.run([Self.scripts.appendingPathComponent("openai_client.py").path, running.base,
                                                 ServerFixture.apiKey, "smollm2", "all-minilm-l6-v2"])
        XCTAssertEqual(status, 0, err)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: out) as? [String: Any], err)
        let prompt = running.model.tokenize(try running.model.formatChat([.user("What is the capital of France?")]))
        let expected = try await libraryGreedy(running.model, tokens: prompt, maxTokens: 40)
        XCTAssertEqual(result["plain"] as? String, expected)
        XCTAssertEqual(result["streamed"] as? String, expected)
        XCTAssertEqual(result["streamed_usage"] as? Int, result["plain_usage"] as? Int)
        XCTAssertEqual(result["streamed_finish"] as? String, result["plain_finish"] as? String)
        let vectors = try XCTUnwrap(result["embeddings"] as? [[Double]])
        let reference = try EmbeddingModel(url: try RealModel.minilm.url()).embeddings(for: ["A cat sits.", "A dog runs."])
        XCTAssertEqual(vectors.count, 2)
        for (v, r) in zip(vectors, reference) { XCTAssertEqual(v.map(Float.init), r) }
        XCTAssertEqual(result["models"] as? [String], ["smollm2", "all-minilm-l6-v2"])
        XCTAssertEqual(result["not_found"] as? Int, 404)
        XCTAssertEqual(result["unauthorized"] as? Int, 401)
    }
}

extension ServerClientsTests {
    /// The CI-sized hostile suite (scripts/server-hostile.py --quick): malformed JSON, wrong types,
    /// huge numbers and bodies, invalid UTF-8, HTTP garbage, slow-loris, hang-ups; every request a
    /// 4xx JSON error or a clean close, the server healthy and unchanged afterwards.
    func testHostileRequestsQuickSuite() async throws {
        let running = try await ServerFixture.shared.start()
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/server-hostile.py").path
        let (status, out, err) = try Python.run([script, "--port", String(running.port), "--api-key", ServerFixture.apiKey,
                                                 "--quick", "--header-timeout", "2", "--body-limit", String(64 << 10)])
        let summary = String(decoding: out, as: UTF8.self)
        XCTAssertEqual(status, 0, summary + err)
        let result = jsonObject(summary)
        XCTAssertGreaterThanOrEqual(result["requests"] as? Int ?? 0, 150, summary)
        XCTAssertEqual(result["violation_count"] as? Int, 0, summary)
    }

    /// `swiftlet serve` as a process: SIGTERM lets a running stream end properly, refuses new
    /// connections, and the process exits 0 within the grace period.
    func testSigtermShutsDownGracefully() async throws {
        let binary = Self.productsDirectory.appendingPathComponent("swiftlet")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw Python.skipOrFail("the swiftlet executable is not built next to the tests: \(binary.path)")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "-m", try RealModel.smollm2.url().path, "--port", "0", "-c", "1024",
                             "--shutdown-grace", "8"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let port = try await Self.listeningPort(errors.fileHandleForReading)
        let client = Client(base: "http://127.0.0.1:\(port)", key: nil)
        let long: [String: Any] = ["prompt": "Once upon a time", "max_tokens": 80, "stream": true, "temperature": 0.8]
        let data = Array(try JSONSerialization.data(withJSONObject: long))
        let response = try await Client.http.execute(client.request(.POST, "/v1/completions", body: data), timeout: .seconds(60))
        var text = ""
        var iterator = response.body.makeAsyncIterator()
        while text.components(separatedBy: "\"text\":\"").count < 3 {  // the opening event and one token
            guard let buffer = try await iterator.next() else { break }
            text += String(buffer: buffer)
        }
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        while let buffer = try await iterator.next() { text += String(buffer: buffer) }
        let events = Client.payloads(text)
        XCTAssertEqual(events.last, "[DONE]", "the stream did not end with its last event")
        XCTAssertTrue(events.dropLast().last?.contains("finish_reason\":\"") ?? false)
        while process.isRunning && ContinuousClock.now - signalled < .seconds(15) { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertFalse(process.isRunning, "still running 15 s after SIGTERM")
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertNil(SlowClient.connect(port: port), "still accepting connections")
    }

    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    /// Reads `swiftlet serve`'s stderr until it says where it listens.
    static func listeningPort(_ handle: FileHandle) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        var text = ""
        while ContinuousClock.now < deadline {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), text[range.upperBound...].count > digits.count { return port }
            }
        }
        throw SwiftletError.backendUnavailable("swiftlet serve did not start: \(text)")
    }
}

