import Foundation
import Hummingbird
import NIOCore
import Swiftlet

extension InferenceServer {
    /// `/v1/chat/completions` and `/v1/completions`: parse, wait for a slot, generate, answer as
    /// one JSON document or as server-sent events.
    func generation(_ request: Request, kind: GenerationRequest.Kind) async throws -> Response {
        let arrival = ContinuousClock.now
        let ticket = GenerationTicket()
        let headers = request.headers
        // While the request is read and (when not streamed) answered, a client that closes the
        // connection stops its generation.
        return try await request.body.consumeWithInboundCloseHandler({ body in
            let fields = try JSONFields(body: try await readBody(body, headers: headers))
            let parsed = try kind == .chat ? parser.chat(fields) : parser.completion(fields)
            let reply = GenerationReply(server: self, request: parsed)
            // A stream is written after this returns, when the close handler no longer watches:
            // a client that leaves is noticed by the failing write instead.
            if parsed.stream { return try await stream(parsed, reply: reply, arrival: arrival, ticket: GenerationTicket()) }
            var text = ""
            var logprobs: [TokenLogprob] = []
            let stats = try await generate(parsed, arrival: arrival, ticket: ticket) { chunk in
                text += chunk.text
                logprobs += chunk.logprobs
            }
            guard let stats else { throw CancellationError() }
            return jsonResponse(reply.whole(text: text, logprobs: logprobs, stats: stats))
        }, onInboundClosed: { ticket.stop() })
    }

    /// Runs `request` in a slot, handing each chunk to `consume`; `nil` when the ticket was stopped
    /// (client gone, shutdown). A throwing `consume` (a failed write) stops the generation.
    func generate(_ request: GenerationRequest, arrival: ContinuousClock.Instant, ticket: GenerationTicket,
                  consume: (GenerationChunk) async throws -> Void) async throws -> GenerationStatistics? {
        let slot = try await scheduler.acquire(for: request.tokens, ticket: ticket)
        defer { Task { await scheduler.release(slot, ticket: ticket) } }
        var firstToken = true
        var statistics: GenerationStatistics?
        for try await chunk in scheduler.slots[slot].generate(tokens: request.tokens, parameters: request.parameters) {
            if ticket.isStopped { return nil }
            if firstToken && !chunk.tokenIDs.isEmpty {
                firstToken = false
                metrics.recordFirstToken(after: ContinuousClock.now - arrival)
            }
            if let s = chunk.statistics { statistics = s }
            try await consume(chunk)
            if ticket.isStopped { return nil }
        }
        if let s = statistics {
            metrics.recordGeneration(.init(promptTokens: s.promptTokens, promptTokensEvaluated: s.promptTokensEvaluated,
                                           generatedTokens: s.generatedTokens, tokensPerSecond: s.generatedTokensPerSecond),
                                     duration: ContinuousClock.now - arrival)
        }
        return statistics
    }

    /// Server-sent events: one `data:` event per chunk of text, a last event with the finish
    /// reason (and usage when asked), then `data: [DONE]`. Waiting for the slot happens before
    /// the response starts, so a full queue is still a 429.
    private func stream(_ request: GenerationRequest, reply: GenerationReply, arrival: ContinuousClock.Instant,
                        ticket: GenerationTicket) async throws -> Response {
        // Fail fast on a full queue or a draining server: admission is checked again in `generate`.
        if await scheduler.isDraining { throw APIError.shuttingDown }
        if await scheduler.busySlots == options.parallel, await scheduler.queueDepth >= options.queueLimit {
            throw APIError.queueFull(retryAfter: 1)
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] (writer: inout any ResponseBodyWriter) in
            func send(_ json: String) async throws {
                try await writer.write(ByteBuffer(string: "data: " + json + "\n\n"))
            }
            do {
                try await send(reply.opening())
                let stats = try await generate(request, arrival: arrival, ticket: ticket) { chunk in
                    if let event = reply.event(for: chunk) { try await send(event) }
                }
                if let stats {
                    try await send(reply.closing(stats))
                    if request.includeUsage { try await send(reply.usageEvent(stats)) }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                } else {
                    metrics.countStreamError("stopped")
                }
            } catch let error as APIError {
                metrics.countStreamError(error.code ?? error.type)
                try? await send(error.json)
            } catch let error as SwiftletError {
                metrics.countStreamError("generation")
                try? await send(APIError(error).json)
            } catch {
                // The client went away (the write failed): the generation is already stopped.
                ticket.stop()
                metrics.countStreamError("disconnected")
            }
            try? await writer.finish(nil)
        })
    }
}

/// The OpenAI shapes of one request's answer (ids, timestamps, chunks, usage).
struct GenerationReply: Sendable {
    let request: GenerationRequest
    let modelName: String
    let tokenizer: any Tokenizer
    let id: String
    let created = Int(Date().timeIntervalSince1970)

    init(server: InferenceServer, request: GenerationRequest) {
        self.request = request
        modelName = server.modelName
        tokenizer = server.model.tokenizer
        let suffix = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        id = (request.kind == .chat ? "chatcmpl-" : "cmpl-") + suffix
    }

    private var object: String { request.kind == .chat ? "chat.completion" : "text_completion" }

    private func envelope(object: String, choice: String, extra: String = "") -> String {
        "{\"id\":\"\(id)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":\(JSONText.quoted(modelName)),"
            + "\"system_fingerprint\":\"swiftlet\",\"choices\":[\(choice)]\(extra)}"
    }

    static func finishReason(_ reason: StopReason) -> String {
        switch reason {
        case .maxTokens: return "length"
        case .endOfGeneration, .stopString, .constraintRejectedAllTokens, .cancelled: return "stop"
        }
    }

    func usage(_ s: GenerationStatistics) -> String {
        "{\"prompt_tokens\":\(s.promptTokens),\"completion_tokens\":\(s.generatedTokens),"
            + "\"total_tokens\":\(s.promptTokens + s.generatedTokens),"
            + "\"prompt_tokens_details\":{\"cached_tokens\":\(s.promptTokens - s.promptTokensEvaluated)}}"
    }

    /// A non-streamed answer.
    func whole(text: String, logprobs: [TokenLogprob], stats: GenerationStatistics) -> String {
        let finish = JSONText.quoted(Self.finishReason(stats.stopReason))
        let lp = request.logprobs ? logprobsJSON(logprobs) : "null"
        let timings = ",\"timings\":{\"prompt_n\":\(stats.promptTokensEvaluated),\"prompt_ms\":\(stats.promptSeconds * 1000),"
            + "\"predicted_n\":\(stats.generatedTokens),\"predicted_per_second\":\(stats.generatedTokensPerSecond)}"
        let choice: String
        if request.kind == .chat {
            choice = "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\(JSONText.quoted(text))},"
                + "\"logprobs\":\(lp),\"finish_reason\":\(finish)}"
        } else {
            choice = "{\"index\":0,\"text\":\(JSONText.quoted(text)),\"logprobs\":\(lp),\"finish_reason\":\(finish)}"
        }
        return envelope(object: object, choice: choice, extra: ",\"usage\":" + usage(stats) + timings)
    }

    private var chunkObject: String { request.kind == .chat ? "chat.completion.chunk" : "text_completion" }

    private func delta(_ content: String?, role: Bool = false, logprobs: String = "null", finish: String = "null") -> String {
        if request.kind == .chat {
            var fields: [String] = []
            if role { fields.append("\"role\":\"assistant\"") }
            if let content { fields.append("\"content\":" + JSONText.quoted(content)) }
            return envelope(object: chunkObject,
                            choice: "{\"index\":0,\"delta\":{\(fields.joined(separator: ","))},\"logprobs\":\(logprobs),\"finish_reason\":\(finish)}")
        }
        return envelope(object: chunkObject,
                        choice: "{\"index\":0,\"text\":\(JSONText.quoted(content ?? "")),\"logprobs\":\(logprobs),\"finish_reason\":\(finish)}")
    }

    /// The first event: the assistant's role (chat), so clients can show a reply has begun.
    func opening() -> String { delta("", role: request.kind == .chat) }

    /// The event for a generated chunk; `nil` when it holds nothing to send.
    func event(for chunk: GenerationChunk) -> String? {
        guard !chunk.text.isEmpty || (request.logprobs && !chunk.logprobs.isEmpty) else { return nil }
        return delta(chunk.text, logprobs: request.logprobs ? logprobsJSON(chunk.logprobs) : "null")
    }

    func closing(_ stats: GenerationStatistics) -> String {
        delta(request.kind == .chat ? nil : "", finish: JSONText.quoted(Self.finishReason(stats.stopReason)))
    }

    func usageEvent(_ stats: GenerationStatistics) -> String {
        envelope(object: chunkObject, choice: "", extra: ",\"usage\":" + usage(stats))
    }

    private func piece(_ token: TokenID) -> (text: String, bytes: String) {
        let bytes = tokenizer.pieceBytes(token, renderSpecial: true)
        return (String(decoding: bytes, as: UTF8.self), "[" + bytes.map(String.init).joined(separator: ",") + "]")
    }

    func logprobsJSON(_ entries: [TokenLogprob]) -> String {
        if request.kind == .chat {
            let content = entries.map { entry -> String in
                let p = piece(entry.token)
                let top = entry.top.map { alt -> String in
                    let a = piece(alt.token)
                    return "{\"token\":\(JSONText.quoted(a.text)),\"logprob\":\(JSONText.number(alt.logprob)),\"bytes\":\(a.bytes)}"
                }
                return "{\"token\":\(JSONText.quoted(p.text)),\"logprob\":\(JSONText.number(entry.logprob)),\"bytes\":\(p.bytes),"
                    + "\"top_logprobs\":[\(top.joined(separator: ","))]}"
            }
            return "{\"content\":[" + content.joined(separator: ",") + "]}"
        }
        let tokens = entries.map { JSONText.quoted(piece($0.token).text) }
        let values = entries.map { JSONText.number($0.logprob) }
        let tops = entries.map { entry in
            "{" + entry.top.map { JSONText.quoted(piece($0.token).text) + ":" + JSONText.number($0.logprob) }.joined(separator: ",") + "}"
        }
        return "{\"tokens\":[\(tokens.joined(separator: ","))],\"token_logprobs\":[\(values.joined(separator: ","))],"
            + "\"top_logprobs\":[\(tops.joined(separator: ","))]}"
    }
}
