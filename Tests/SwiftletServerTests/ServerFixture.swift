import Foundation
import XCTest
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Swiftlet
import SwiftletServer
import SwiftletTestSupport

/// One real server per test process: SmolLM2 in 2 slots of 1024 positions, a queue of 1, a
/// 64 KiB body limit, 2 s header/body timeouts and an API key, on a free loopback port.
actor ServerFixture {
    static let shared = ServerFixture()
    static let apiKey = "test-key-123"
    static let options = ServerOptions(host: "127.0.0.1", port: 0, apiKey: apiKey, parallel: 2, queueLimit: 1,
                                       maxBodyBytes: 64 << 10, maxTokens: 512, headerTimeout: .seconds(2),
                                       bodyTimeout: .seconds(2), shutdownGrace: .seconds(2), modelName: "smollm2")

    struct Running: Sendable {
        let model: LanguageModel
        let port: Int
        var base: String { "http://127.0.0.1:\(port)" }
    }

    private var running: Running?

    func start() async throws -> Running {
        if let running { return running }
        let url = try RealModel.smollm2.url()
        let model = try await LanguageModel.load(url, contextLength: 1024)
        let embedder = try EmbeddingModel(url: try RealModel.minilm.url())
        let server = InferenceServer(model: model, embeddingModel: embedder, embeddingModelName: "all-minilm-l6-v2",
                                     options: Self.options)
        let port = try await Self.launch(server)
        let r = Running(model: model, port: port)
        running = r
        return r
    }

    /// Starts `server` in a task of its own (it lives until the process ends, or until the
    /// returned task is cancelled) and waits for its port.
    @discardableResult
    static func launch(_ server: InferenceServer, task: ((Task<Void, Error>) -> Void)? = nil) async throws -> Int {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let serving = Task {
            try await server.run(handleSignals: false) { port in continuation.yield(port) }
        }
        task?(serving)
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw SwiftletError.backendUnavailable("the server did not start") }
        return port
    }
}

/// Requests against the fixture with async-http-client.
struct Client {
    let base: String
    var key: String? = ServerFixture.apiKey
    static let http = HTTPClient(eventLoopGroupProvider: .singleton)

    struct Reply {
        let status: Int
        let headers: [(String, String)]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        /// `error.code`, checking the error document's shape on the way.
        var errorCode: String? {
            guard let error = json["error"] as? [String: Any], error["message"] is String, error["type"] is String else { return nil }
            return error["code"] as? String ?? "(null)"
        }
    }

    func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) async throws -> Reply {
        let response = try await Self.http.execute(request(method, path, body: body, headers: headers), timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                     body: String(buffer: bytes))
    }

    func get(_ path: String) async throws -> Reply { try await send(.GET, path) }

    func post(_ path: String, json: String) async throws -> Reply { try await send(.POST, path, body: Array(json.utf8)) }

    func post(_ path: String, object: [String: Any]) async throws -> Reply {
        try await send(.POST, path, body: Array(try JSONSerialization.data(withJSONObject: object)))
    }

    /// The `data:` payloads of a server-sent-event stream, read to its end.
    func events(_ path: String, object: [String: Any]) async throws -> [String] {
        let response = try await Self.http.execute(
            request(.POST, path, body: Array(try JSONSerialization.data(withJSONObject: object))), timeout: .seconds(120))
        XCTAssertEqual(response.status.code, 200)
        XCTAssertEqual(response.headers.first(name: "content-type"), "text/event-stream")
        var text = ""
        for try await buffer in response.body { text += String(buffer: buffer) }
        return Self.payloads(text)
    }

    static func payloads(_ text: String) -> [String] {
        text.components(separatedBy: "\n\n").compactMap { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
        }
    }
}

func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// The greedy continuation of `tokens` computed by the library directly (no server).
func libraryGreedy(_ model: LanguageModel, tokens: [TokenID], maxTokens: Int) async throws -> String {
    let session = PromptSession(model)
    var text = ""
    for try await chunk in session.generate(tokens: tokens, parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy)) {
        text += chunk.text
    }
    return text
}
