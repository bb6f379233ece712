import Foundation
import XCTest
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Swiftlet
import SwiftletServer
import SwiftletTestSupport

/// The server against real third-party clients: the official `openai` Python package, headless
/// Chromium driving the chat page, and nginx balancing two replicas.
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

    /// Chromium (through chromedriver's WebDriver protocol) opens the chat page, sends a message,
    /// sees the reply stream in, then stops a long generation with the Stop button.
    func testChatPageInHeadlessChromium() async throws {
        let running = try await ServerFixture.shared.start()
        let driverPath = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first { FileManager.default.fileExists(atPath: $0) }
        guard let driverPath, FileManager.default.fileExists(atPath: "/usr/bin/chromium") else {
            throw Python.skipOrFail("chromium and chromium-driver are not installed (scripts/install-deps.sh installs them)")
        }
        let driverPort = 9515 + Int.random(in: 0..<400)
        let driver = Process()
        driver.executableURL = URL(fileURLWithPath: driverPath)
        driver.arguments = ["--port=\(driverPort)", "--allowed-ips=127.0.0.1"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        defer { driver.terminate(); driver.waitUntilExit() }
        let web = WebDriver(base: "http://127.0.0.1:\(driverPort)")
        try await web.waitUntilReady()
        try await web.startSession()
        do {
            try await web.navigate(running.base + "/")
            try await web.type(ServerFixture.apiKey, into: "api-key")
            try await web.setValue("0", of: "temperature")
            try await web.setValue("24", of: "max-tokens")
            try await web.type("What is the capital of France?", into: "input")
            try await web.click("send")
            let reply = try await web.waitFor(script: """
                const r = document.querySelector('.assistant'); return r && r.dataset.done === 'true' ? r.textContent : null;
                """, timeout: .seconds(60))
            let prompt = running.model.tokenize(try running.model.formatChat([.user("What is the capital of France?")]))
            let expected = try await libraryGreedy(running.model, tokens: prompt, maxTokens: 24)
            XCTAssertEqual(reply as? String, expected)
            let stats = try await web.execute("return document.getElementById('stats').textContent;") as? String
            XCTAssertTrue(stats?.contains("tokens/s") ?? false, stats ?? "")
            if let shot = ProcessInfo.processInfo.environment["SWIFTLET_SCREENSHOT"] {
                try await web.screenshot().write(to: URL(fileURLWithPath: shot))
            }

            // A long reply, stopped while it streams.
            try await web.setValue("400", of: "max-tokens")
            try await web.setValue("1.0", of: "temperature")
            try await web.type("Write a long story about a dragon who learns to bake bread.", into: "input")
            try await web.click("send")
            _ = try await web.waitFor(script: """
                const r = document.querySelectorAll('.assistant')[1]; return r && r.textContent.length > 20 ? true : null;
                """, timeout: .seconds(60))
            try await web.click("stop")
            let stopped = try await web.waitFor(script: """
                const r = document.querySelectorAll('.assistant')[1]; return r && r.dataset.done === 'true' ? (r.dataset.stopped || 'no') : null;
                """, timeout: .seconds(10))
            XCTAssertEqual(stopped as? String, "true")
            let state = try await web.execute("return document.body.dataset.state;") as? String
            XCTAssertEqual(state, "idle")
        } catch {
            try? await web.endSession()
            throw error
        }
        try await web.endSession()
    }

    /// Two replicas behind nginx (Docs/nginx config shape): requests spread over both, and once
    /// one replica is stopped every request still succeeds through the other.
    func testNginxSpreadsAndRoutesAroundAStoppedReplica() async throws {
        guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw Python.skipOrFail("nginx is not installed (scripts/install-deps.sh installs it)")
        }
        let url = try RealModel.smollm2.url()
        var replicas: [(port: Int, task: Task<Void, Error>?)] = []
        for index in 0..<2 {
            let model = try await LanguageModel.load(url, contextLength: 512)
            let server = InferenceServer(model: model, options: ServerOptions(port: 0, parallel: 1, modelName: "replica\(index)"))
            var serving: Task<Void, Error>?
            let port = try await ServerFixture.launch(server) { serving = $0 }
            replicas.append((port, serving))
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let listen = 20000 + Int.random(in: 0..<20000)
        let template = try String(contentsOf: Fixtures.packageRoot.appendingPathComponent("docs/nginx/swiftlet.conf"), encoding: .utf8)
        let config = NginxConfig.standalone(siteTemplate: template, listen: listen,
                                            upstreams: replicas.map { "127.0.0.1:\($0.port)" }, directory: directory.path)
        let configPath = directory.appendingPathComponent("nginx.conf")
        try config.write(to: configPath, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-c", configPath.path, "-p", directory.path, "-e", directory.appendingPathComponent("error.log").path]
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        let client = Client(base: "http://127.0.0.1:\(listen)", key: nil)
        var ready = false
        for _ in 0..<100 where !ready {
            ready = (try? await client.get("/health"))?.status == 200
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertTrue(ready, "nginx did not come up")

        var served: [String: Int] = [:]
        for _ in 0..<8 {
            let reply = try await client.post("/v1/completions", object: ["prompt": "1, 2, 3,", "temperature": 0, "max_tokens": 2])
            XCTAssertEqual(reply.status, 200, reply.body)
            served[reply.json["model"] as? String ?? "?", default: 0] += 1
        }
        XCTAssertEqual(Set(served.keys), ["replica0", "replica1"], "\(served)")

        replicas[0].task?.cancel()
        _ = try? await replicas[0].task?.value
        var after: [String: Int] = [:]
        for _ in 0..<6 {
            let reply = try await client.post("/v1/completions", object: ["prompt": "1, 2, 3,", "temperature": 0, "max_tokens": 2])
            XCTAssertEqual(reply.status, 200, reply.body)
            after[reply.json["model"] as? String ?? "?", default: 0] += 1
        }
        XCTAssertEqual(after, ["replica1": 6])
        replicas[1].task?.cancel()
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
                             "--shutdown-grace", "1"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let port = try await Self.listeningPort(errors.fileHandleForReading)
        let client = Client(base: "http://127.0.0.1:\(port)", key: nil)
        let long: [String: Any] = ["prompt": "Once upon a time", "max_tokens": 600, "stream": true, "temperature": 0.8]
        let data = Array(try JSONSerialization.data(withJSONObject: long))
        let response = try await Client.http.execute(client.request(.POST, "/v1/completions", body: data), timeout: .seconds(60))
        var text = ""
        var iterator = response.body.makeAsyncIterator()
        while !text.contains("\"text\":\"") {
            guard let buffer = try await iterator.next() else { break }
            text += String(buffer: buffer)
        }
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        while let buffer = try await iterator.next() { text += String(buffer: buffer) }
        let events = Client.payloads(text)
        XCTAssertEqual(events.last, "[DONE]", "the stream did not end with its last event")
        XCTAssertTrue(events.dropLast().last?.contains("finish_reason\":\"") ?? false)
        while process.isRunning && ContinuousClock.now - signalled < .seconds(10) { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertFalse(process.isRunning, "still running 10 s after SIGTERM")
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

/// An nginx main configuration around the repository's site configuration, with the upstream
/// servers and the port filled in and every path inside a scratch folder.
enum NginxConfig {
    static func standalone(siteTemplate: String, listen: Int, upstreams: [String], directory: String) -> String {
        let servers = upstreams.map { "    server \($0) max_fails=1 fail_timeout=10s;" }.joined(separator: "\n")
        let site = siteTemplate
            .replacingOccurrences(of: "    server 127.0.0.1:8081 max_fails=1 fail_timeout=10s;\n    server 127.0.0.1:8082 max_fails=1 fail_timeout=10s;", with: servers)
            .replacingOccurrences(of: "listen 127.0.0.1:8080;", with: "listen 127.0.0.1:\(listen);")
        return """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(directory)/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
            \(site)
            }
            """
    }
}

/// The few WebDriver commands the chat-page test needs, over async-http-client.
struct WebDriver {
    let base: String
    private final class SessionBox: @unchecked Sendable { var id = "" }  // set once, before any concurrent use
    private let session = SessionBox()

    private func call(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: body))))
        }
        let response = try await Client.http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 32 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(buffer: bytes), options: [.fragmentsAllowed]) as? [String: Any]
        guard response.status.code == 200 else {
            throw SwiftletError.backendUnavailable("webdriver \(path): \(response.status.code) \(String(buffer: bytes).prefix(300))")
        }
        return json?["value"]
    }

    func waitUntilReady() async throws {
        for _ in 0..<100 {
            if let value = try? await call(.GET, "/status") as? [String: Any], value["ready"] as? Bool == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw SwiftletError.backendUnavailable("chromedriver did not start")
    }

    func startSession() async throws {
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": ["binary": "/usr/bin/chromium",
                                   "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                            "--window-size=900,700"]],
        ]]]
        let value = try await call(.POST, "/session", capabilities) as? [String: Any]
        let id = value?["sessionId"] as? String
        session.id = try XCTUnwrap(id)
    }

    func endSession() async throws { _ = try await call(.DELETE, "/session/\(session.id)") }

    func navigate(_ url: String) async throws { _ = try await call(.POST, "/session/\(session.id)/url", ["url": url]) }

    func execute(_ script: String, _ args: [Any] = []) async throws -> Any? {
        try await call(.POST, "/session/\(session.id)/execute/sync", ["script": script, "args": args])
    }

    private func element(_ id: String) async throws -> String {
        let value = try await call(.POST, "/session/\(session.id)/element", ["using": "css selector", "value": "#\(id)"]) as? [String: Any]
        return try XCTUnwrap(value?.values.first as? String)
    }

    func type(_ text: String, into id: String) async throws {
        let element = try await element(id)
        _ = try await call(.POST, "/session/\(session.id)/element/\(element)/clear", [:])
        _ = try await call(.POST, "/session/\(session.id)/element/\(element)/value", ["text": text])
    }

    func setValue(_ value: String, of id: String) async throws { try await type(value, into: id) }

    func click(_ id: String) async throws {
        let element = try await element(id)
        _ = try await call(.POST, "/session/\(session.id)/element/\(element)/click", [:])
    }

    /// Polls `script` until it returns something other than null.
    func waitFor(script: String, timeout: Duration) async throws -> Any {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try await execute(script), !(value is NSNull) { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SwiftletError.backendUnavailable("timed out waiting for: \(script)")
    }

    func screenshot() async throws -> Data {
        let value = try await call(.GET, "/session/\(session.id)/screenshot")
        let encoded = try XCTUnwrap(value as? String)
        return try XCTUnwrap(Data(base64Encoded: encoded))
    }
}
