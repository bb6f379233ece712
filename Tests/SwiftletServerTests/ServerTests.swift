import Foundation
import XCTest
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Swiftlet
import SwiftletServer
import SwiftletTestSupport

/// The real server on a loopback port, driven through async-http-client (issue 17).
final class ServerTests: XCTestCase {
    private func client() async throws -> (Client, ServerFixture.Running) {
        let running = try await ServerFixture.shared.start()
        return (Client(base: running.base), running)
    }

    private let question: [[String: Any]] = [["role": "user", "content": "What is the capital of France?"]]

    func testHealthModelsAndAuth() async throws {
        let (client, _) = try await client()
        var anonymous = client
        anonymous.key = nil
        let health = try await anonymous.get("/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")

        for path in ["/v1/models", "/metrics"] {
            let refused = try await anonymous.get(path)
            XCTAssertEqual(refused.status, 401, path)
            XCTAssertEqual(refused.errorCode, "invalid_api_key")
        }
        var wrong = client
        wrong.key = "test-key-124"
        let wrongKey = try await wrong.post("/v1/chat/completions", object: ["messages": question])
        XCTAssertEqual(wrongKey.status, 401)
        XCTAssertEqual(wrongKey.errorCode, "invalid_api_key")

        let models = try await client.get("/v1/models")
        XCTAssertEqual(models.status, 200)
        let ids = (models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        XCTAssertEqual(ids, ["smollm2", "all-minilm-l6-v2"])
        let page = try await anonymous.get("/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.body.contains("<title>Swiftlet chat</title>"))
        XCTAssertFalse(page.body.contains("http://") || page.body.contains("https://"), "the page fetches nothing from elsewhere")
    }

    /// Greedy decoding through the API gives exactly the library's greedy output for the same
    /// chat-template rendering (which is what `swiftlet generate --temp 0` prints for that prompt).
    func testGreedyChatEqualsLibrary() async throws {
        let (client, running) = try await client()
        let reply = try await client.post("/v1/chat/completions", object: [
            "model": "smollm2", "messages": question, "temperature": 0, "max_tokens": 40,
        ])
        XCTAssertEqual(reply.status, 200, reply.body)
        let choice = try XCTUnwrap((reply.json["choices"] as? [[String: Any]])?.first)
        let content = try XCTUnwrap((choice["message"] as? [String: Any])?["content"] as? String)
        let prompt = try running.model.formatChat([.user("What is the capital of France?")])
        let expected = try await libraryGreedy(running.model, tokens: running.model.tokenize(prompt), maxTokens: 40)
        XCTAssertEqual(content, expected)
        XCTAssertFalse(content.isEmpty)
        let usage = try XCTUnwrap(reply.json["usage"] as? [String: Any])
        XCTAssertEqual(usage["prompt_tokens"] as? Int, running.model.tokenize(prompt).count)
        XCTAssertEqual(reply.json["object"] as? String, "chat.completion")
    }

    func testGreedyCompletionAndStreamingAgree() async throws {
        let (client, running) = try await client()
        let prompt = "Swift is a programming language that"
        let body: [String: Any] = ["prompt": prompt, "temperature": 0, "max_tokens": 24]
        let plain = try await client.post("/v1/completions", object: body)
        XCTAssertEqual(plain.status, 200, plain.body)
        let text = try XCTUnwrap((plain.json["choices"] as? [[String: Any]])?.first?["text"] as? String)
        let expected = try await libraryGreedy(running.model, tokens: running.model.tokenize(prompt), maxTokens: 24)
        XCTAssertEqual(text, expected)
        XCTAssertEqual((plain.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String, "length")

        var streamed = body
        streamed["stream"] = true
        let events = try await client.events("/v1/completions", object: streamed)
        XCTAssertEqual(events.last, "[DONE]")
        let pieces = events.dropLast().map { jsonObject($0) }
        XCTAssertEqual(pieces.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }.joined(), expected)

        // Chat streaming: the role first, the text in deltas, a finish reason, usage, [DONE].
        let chatEvents = try await client.events("/v1/chat/completions", object: [
            "messages": question, "temperature": 0, "max_tokens": 40, "stream": true,
            "stream_options": ["include_usage": true],
        ])
        XCTAssertEqual(chatEvents.last, "[DONE]")
        let chunks = chatEvents.dropLast().map { jsonObject($0) }
        let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        XCTAssertEqual(deltas.first?["role"] as? String, "assistant")
        let prompt2 = try running.model.formatChat([.user("What is the capital of France?")])
        let expectedChat = try await libraryGreedy(running.model, tokens: running.model.tokenize(prompt2), maxTokens: 40)
        XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), expectedChat)
        XCTAssertNotNil(chunks.last?["usage"] as? [String: Any])
        XCTAssertTrue(chunks.contains { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) != nil })
    }

    func testSamplingOptionsLogprobsAndJSONSchema() async throws {
        let (client, running) = try await client()
        // Same seed, same text; the logprobs are log-probabilities of the chosen tokens.
        let body: [String: Any] = [
            "messages": question, "temperature": 0.9, "top_p": 0.9, "top_k": 20, "min_p": 0.02, "seed": 42,
            "presence_penalty": 0.5, "frequency_penalty": 0.2, "max_tokens": 12, "logprobs": true, "top_logprobs": 3,
            "stop": ["\n\n"],
        ]
        let a = try await client.post("/v1/chat/completions", object: body)
        let b = try await client.post("/v1/chat/completions", object: body)
        XCTAssertEqual(a.status, 200, a.body)
        let choiceA = try XCTUnwrap((a.json["choices"] as? [[String: Any]])?.first)
        let choiceB = try XCTUnwrap((b.json["choices"] as? [[String: Any]])?.first)
        XCTAssertEqual((choiceA["message"] as? [String: Any])?["content"] as? String,
                       (choiceB["message"] as? [String: Any])?["content"] as? String)
        let entries = try XCTUnwrap((choiceA["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        XCTAssertEqual(entries.count, (a.json["usage"] as? [String: Any])?["completion_tokens"] as? Int)
        for entry in entries {
            let lp = try XCTUnwrap(entry["logprob"] as? Double)
            XCTAssertLessThanOrEqual(lp, 0)
            XCTAssertEqual((entry["top_logprobs"] as? [Any])?.count, 3)
        }

        // logit_bias: banning the greedy first token changes it.
        let prompt = "The capital of France is"
        let first = running.model.tokenize(prompt)
        let greedyFirst = try await client.post("/v1/completions", object: ["prompt": prompt, "temperature": 0, "max_tokens": 1,
                                                                             "logprobs": 0])
        let token = try XCTUnwrap(((greedyFirst.json["choices"] as? [[String: Any]])?.first?["text"] as? String))
        let id = running.model.tokenizer.encode(token, addSpecial: false, parseSpecial: false).first.map(Int.init)
        XCTAssertFalse(first.isEmpty)
        if let id {
            let biased = try await client.post("/v1/completions", object: [
                "prompt": prompt, "temperature": 0, "max_tokens": 1, "logit_bias": [String(id): -100],
            ])
            XCTAssertNotEqual((biased.json["choices"] as? [[String: Any]])?.first?["text"] as? String, token)
        }

        // response_format json_schema: the reply parses and has the required field.
        let schema: [String: Any] = ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]]
        let structured = try await client.post("/v1/chat/completions", object: [
            "messages": question, "temperature": 0, "max_tokens": 40,
            "response_format": ["type": "json_schema", "json_schema": ["name": "answer", "schema": schema]],
        ])
        XCTAssertEqual(structured.status, 200, structured.body)
        let content = try XCTUnwrap(((structured.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String)
        XCTAssertNotNil(jsonObject(content)["city"] as? String, content)
        let object = try await client.post("/v1/chat/completions", object: [
            "messages": question, "temperature": 0, "max_tokens": 24, "response_format": ["type": "json_object"],
        ])
        XCTAssertEqual(object.status, 200, object.body)
        let objectText = try XCTUnwrap(((object.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String)
        XCTAssertTrue(objectText.hasPrefix("{"), objectText)
    }

    func testEmbeddingsTokenizeDetokenizeAndMetrics() async throws {
        let (client, running) = try await client()
        let reply = try await client.post("/v1/embeddings", object: ["input": ["A cat sits.", "A dog runs."], "model": "all-minilm-l6-v2"])
        XCTAssertEqual(reply.status, 200, reply.body)
        let data = try XCTUnwrap(reply.json["data"] as? [[String: Any]])
        XCTAssertEqual(data.count, 2)
        let vector = try XCTUnwrap(data[0]["embedding"] as? [Double])
        let expected = try EmbeddingModel(url: try RealModel.minilm.url()).embeddings(for: ["A cat sits."])[0]
        XCTAssertEqual(vector.count, expected.count)
        for (x, y) in zip(vector, expected) { XCTAssertEqual(Float(x), y) }

        let tokens = try await client.post("/tokenize", object: ["content": "Hello world"])
        let ids = try XCTUnwrap(tokens.json["tokens"] as? [Int]).map(TokenID.init)
        XCTAssertEqual(ids, running.model.tokenizer.encode("Hello world", addSpecial: false, parseSpecial: true))
        let text = try await client.post("/detokenize", object: ["tokens": ids])
        XCTAssertEqual(text.json["content"] as? String, "Hello world")

        _ = try await client.get("/v1/no-such-endpoint")
        let metrics = try await client.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        for name in ["swiftlet_requests_total", "swiftlet_generated_tokens_total", "swiftlet_time_to_first_token_seconds_bucket",
                     "swiftlet_queue_depth", "swiftlet_generation_tokens_per_second", "swiftlet_errors_total"] {
            XCTAssertTrue(metrics.body.contains(name), "metrics lack \(name)")
        }
    }

    /// Every malformed request gets OpenAI's error JSON with the right status.
    func testErrorCases() async throws {
        let (client, _) = try await client()
        let cases: [(String, String, Int, String)] = [
            ("/v1/chat/completions", "{\"messages\": [", 400, "invalid_json"),
            ("/v1/chat/completions", "", 400, "invalid_json"),
            ("/v1/chat/completions", "[1, 2]", 400, "invalid_type"),
            ("/v1/chat/completions", #"{"messages": "hi"}"#, 400, "invalid_type"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#, 400, "invalid_type"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "temperature": 7}"#, 400, "out_of_range"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}"#, 400, "invalid_type"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999999999999999999999}"#, 400, "invalid_type"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}"#, 400, "out_of_range"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "frobnicate": true}"#, 400, "unknown_parameter"),
            ("/v1/chat/completions", #"{"messages": [{"role": "wizard", "content": "hi"}]}"#, 400, "(null)"),
            ("/v1/chat/completions", #"{"messages": []}"#, 400, "(null)"),
            ("/v1/chat/completions", #"{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}"#, 404, "model_not_found"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "n": 2}"#, 400, "(null)"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"abc": 1}}"#, 400, "(null)"),
            ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "frob"}}}}"#, 400, "(null)"),
            ("/v1/completions", #"{"prompt": 12}"#, 400, "invalid_type"),
            ("/v1/completions", #"{"prompt": [1, 999999999]}"#, 400, "(null)"),
            ("/v1/embeddings", #"{"input": 5}"#, 400, "invalid_type"),
            ("/v1/embeddings", #"{"input": "x", "model": "nope"}"#, 404, "model_not_found"),
            ("/detokenize", #"{"tokens": [-1]}"#, 400, "(null)"),
        ]
        for (path, body, status, code) in cases {
            let reply = try await client.post(path, json: body)
            XCTAssertEqual(reply.status, status, "\(path) \(body): \(reply.body)")
            XCTAssertEqual(reply.errorCode, code, "\(path) \(body): \(reply.body)")
            XCTAssertEqual(reply.header("content-type"), "application/json")
        }

        // A prompt beyond the context (1024 positions).
        let long = String(repeating: "hello world ", count: 700)
        let overflow = try await client.post("/v1/chat/completions", object: ["messages": [["role": "user", "content": long]]])
        XCTAssertEqual(overflow.status, 400)
        XCTAssertEqual(overflow.errorCode, "context_length_exceeded")

        // Invalid UTF-8, a body over the limit, unknown endpoint, wrong method.
        let badUTF8 = try await client.send(.POST, "/v1/chat/completions", body: Array(#"{"messages": [{"role": "user", "content": ""#.utf8) + [0xC3, 0x28] + Array(#""}]}"#.utf8))
        XCTAssertEqual(badUTF8.status, 400)
        XCTAssertEqual(badUTF8.errorCode, "invalid_utf8")
        let huge = try await client.send(.POST, "/v1/chat/completions", body: Array(repeating: UInt8(ascii: " "), count: 70 << 10))
        XCTAssertEqual(huge.status, 413)
        XCTAssertEqual(huge.errorCode, "request_too_large")
        let unknown = try await client.get("/v1/nothing")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertNotNil(unknown.errorCode)
        let method = try await client.get("/v1/chat/completions")
        XCTAssertEqual(method.status, 405)
        XCTAssertNotNil(method.errorCode)

        // Still healthy and answering correctly.
        let after = try await client.post("/v1/completions", object: ["prompt": "1, 2, 3,", "temperature": 0, "max_tokens": 4])
        XCTAssertEqual(after.status, 200)
    }

    /// A slot whose KV cache does not fit in the model's KV-cache limit answers 503
    /// `kv_cache_limit` (the server's memory, not the request, is short) and the server stays up.
    func testSlotBeyondTheKVCacheLimitIs503() async throws {
        let budget = KVCacheBudget(limitBytes: 1 << 30)
        let model = try await LanguageModel.load(RealModel.smollm2.url(), contextLength: 256, cacheBudget: budget)
        budget.setLimit(bytes: budget.heldBytes)  // the model's own cache fits, no slot's does
        var options = ServerFixture.options
        options.apiKey = nil
        var serving: Task<Void, Error>?
        let port = try await ServerFixture.launch(InferenceServer(model: model, options: options)) { serving = $0 }
        defer { serving?.cancel() }
        let client = Client(base: "http://127.0.0.1:\(port)", key: nil)
        let reply = try await client.post("/v1/completions", object: ["prompt": "1, 2, 3,", "max_tokens": 2])
        XCTAssertEqual(reply.status, 503, reply.body)
        XCTAssertEqual(reply.errorCode, "kv_cache_limit", reply.body)
        XCTAssertTrue(reply.body.contains("--kv-cache-limit"), reply.body)
        let health = try await client.get("/health")
        XCTAssertEqual(health.status, 200)
    }

    /// Two slots busy and one request queued: the next is refused with 429 and Retry-After. A client
    /// that goes away mid-stream frees its slot at once.
    func testQueueFullAndCancellation() async throws {
        let (client, running) = try await client()
        let eos = try XCTUnwrap(running.model.tokenizer.eosID)
        let long: [String: Any] = ["prompt": "Once upon a time", "max_tokens": 500, "stream": true, "temperature": 0.8,
                                   "logit_bias": [String(eos): -100]]
        let data = Array(try JSONSerialization.data(withJSONObject: long))
        // Three streams: two in slots, one waiting.
        var tasks: [Task<Int, Error>] = []
        let started = AsyncStream<Void>.makeStream()
        for _ in 0..<3 {
            tasks.append(Task {
                let response = try await Client.http.execute(client.request(.POST, "/v1/completions", body: data), timeout: .seconds(120))
                var events = 0
                for try await _ in response.body {
                    events += 1
                    if events == 2 { started.continuation.yield() }
                }
                return events
            })
        }
        // Wait until the two slots stream, and give the third time to queue.
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        await iterator.next()
        try await Task.sleep(for: .milliseconds(300))
        let refused = try await client.post("/v1/completions", object: ["prompt": "Hi", "max_tokens": 2])
        XCTAssertEqual(refused.status, 429, refused.body)
        XCTAssertEqual(refused.errorCode, "rate_limit_exceeded")
        XCTAssertNotNil(refused.header("retry-after").flatMap(Int.init))

        // Walk away from all three; the slots must be free almost at once.
        let cancelAt = ContinuousClock.now
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        var freed = false
        while ContinuousClock.now - cancelAt < .seconds(3) {
            let metrics = try await client.get("/metrics")
            if metrics.body.contains("swiftlet_slots_busy 0.0") || metrics.body.contains("swiftlet_slots_busy 0\n") {
                freed = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertTrue(freed, "slots still busy \(ContinuousClock.now - cancelAt) after the clients left")
        let quick = try await client.post("/v1/completions", object: ["prompt": "1, 2, 3,", "temperature": 0, "max_tokens": 2])
        XCTAssertEqual(quick.status, 200, quick.body)
    }

    /// A client that sends its headers a byte at a time is cut off after the header timeout (2 s).
    func testSlowLorisIsClosed() async throws {
        let (_, running) = try await client()
        let start = ContinuousClock.now
        let closed = try await SlowClient.trickle(port: running.port, bytes: Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8),
                                                  interval: .milliseconds(200), limit: .seconds(8))
        XCTAssertTrue(closed, "the server kept a slow-loris connection open")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }
}
