import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Swiftlet

/// An OpenAI-compatible HTTP server over a ``LanguageModel`` (and optionally an
/// ``EmbeddingModel``): `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
/// `GET /v1/models`, `/health`, `/metrics`, `POST /tokenize`, `/detokenize`, and a chat page at `/`.
///
/// ```swift
/// let model = try await LanguageModel.load(url, contextLength: 2048)
/// let server = InferenceServer(model: model, options: ServerOptions(port: 8080, parallel: 4))
/// try await server.run()   // until SIGTERM or SIGINT
/// ```
/// Requests share ``ServerOptions/parallel`` slots, each a ``PromptSession`` with its own KV cache;
/// the model's thread runs their tokens in turn. A client that goes away stops its generation at
/// the next token.
public final class InferenceServer: Sendable {
    public let model: LanguageModel
    public let embeddingModel: EmbeddingModel?
    public let options: ServerOptions
    let modelName: String
    let embeddingModelName: String?
    let scheduler: SlotScheduler
    let metrics = ServerMetrics()
    let parser: OpenAIRequestParser
    /// Embeddings run here, one batch at a time, off the concurrency pool.
    private let embeddingQueue = DispatchQueue(label: "swiftlet.server.embeddings")
    private let created = Int(Date().timeIntervalSince1970)

    /// A server for `model`; `embeddingModel` answers `/v1/embeddings` (404 without one).
    public init(model: LanguageModel, embeddingModel: EmbeddingModel? = nil, embeddingModelName: String? = nil,
                options: ServerOptions) {
        self.model = model
        self.embeddingModel = embeddingModel
        self.options = options
        modelName = options.modelName ?? "swiftlet"
        self.embeddingModelName = embeddingModel.map { _ in embeddingModelName ?? "embedding" }
        scheduler = SlotScheduler(model: model, slotCount: options.parallel, queueLimit: options.queueLimit)
        parser = OpenAIRequestParser(model: model, modelName: options.modelName ?? "swiftlet",
                                     maxTokensCap: options.maxTokens ?? model.contextLength)
    }

    /// Serves until SIGTERM or SIGINT arrives (with `handleSignals`) or the calling task is
    /// cancelled, then stops accepting connections, lets running generations finish for
    /// ``ServerOptions/shutdownGrace`` and stops the rest. `onStart` gets the bound port.
    public func run(handleSignals: Bool = true, onStart: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try options.validate()
        var logger = Logger(label: "swiftlet.server")
        logger.logLevel = .warning
        let headerTimeout = options.headerTimeout, bodyTimeout = options.bodyTimeout + .seconds(1)
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [RequestHeadDeadlineHandler(headerTimeout: headerTimeout, bodyTimeout: bodyTimeout)],
                idleTimeout: .seconds(Int64(headerTimeout.components.seconds) + 1))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "swiftlet"),
            onServerRunning: { channel in await onStart(channel.localAddress?.port ?? 0) },
            logger: logger)
        let drain = DrainOnShutdown(application: app, scheduler: scheduler, grace: options.shutdownGrace)
        let signals: [UnixSignal] = handleSignals ? [.sigterm, .sigint] : []
        let group = ServiceGroup(configuration: .init(services: [drain], gracefulShutdownSignals: signals,
                                                      cancellationSignals: [], logger: logger))
        try await group.run()
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.middlewares.add(OpenAIErrorMiddleware(metrics: metrics))
        if let key = options.apiKey {
            router.middlewares.add(BearerAuthMiddleware(key: key, publicPaths: ["/health", "/"]))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: ChatPage.html)))
        }
        router.get("/health") { [self] _, _ in
            await scheduler.isDraining ? APIError.shuttingDown.response : jsonResponse("{\"status\":\"ok\"}")
        }
        router.get("/metrics") { [self] _, _ in
            metrics.queueDepth.set(Double(await scheduler.queueDepth))
            metrics.busySlots.set(Double(await scheduler.busySlots))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        router.get("/v1/models") { [self] _, _ in jsonResponse(modelsJSON()) }
        router.get("/v1/models/:id") { [self] _, context in
            let id = context.parameters.get("id") ?? ""
            guard id == modelName || id == embeddingModelName else { throw APIError.modelNotFound(id) }
            return jsonResponse(modelJSON(id))
        }
        router.post("/v1/chat/completions") { [self] request, _ in try await generation(request, kind: .chat) }
        router.post("/v1/completions") { [self] request, _ in try await generation(request, kind: .completion) }
        router.post("/v1/embeddings") { [self] request, _ in try await embeddings(request) }
        router.post("/tokenize") { [self] request, _ in try await tokenize(request) }
        router.post("/detokenize") { [self] request, _ in try await detokenize(request) }
        return router
    }

    // MARK: - Request bodies

    /// The whole body, refused with 413 beyond the limit (before reading when the
    /// `Content-Length` says so) and 408 when it arrives too slowly. (A client that stops sending
    /// altogether is cut off by ``RequestHeadDeadlineHandler``.)
    func readBody(_ body: RequestBody, headers: HTTPFields) async throws -> [UInt8] {
        let limit = options.maxBodyBytes
        if let length = headers[.contentLength].flatMap(Int.init), length > limit { throw APIError.tooLarge(limit: limit) }
        let deadline = ContinuousClock.now + options.bodyTimeout
        var bytes: [UInt8] = []
        for try await buffer in body {
            guard buffer.readableBytes <= limit - bytes.count else { throw APIError.tooLarge(limit: limit) }
            guard ContinuousClock.now < deadline else {
                throw APIError(status: .requestTimeout, message: "The request body did not arrive within \(options.bodyTimeout)",
                               type: "invalid_request_error", code: "request_timeout")
            }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    func jsonResponse(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    // MARK: - Models

    private func modelJSON(_ id: String) -> String {
        var meta = ""
        if id == modelName {
            meta = ",\"meta\":{\"n_ctx\":\(model.contextLength),\"n_vocab\":\(model.config.vocabSize),\"slots\":\(options.parallel)}"
        }
        return "{\"id\":\(JSONText.quoted(id)),\"object\":\"model\",\"created\":\(created),\"owned_by\":\"swiftlet\"\(meta)}"
    }

    private func modelsJSON() -> String {
        let ids = [modelName] + (embeddingModelName.map { [$0] } ?? [])
        return "{\"object\":\"list\",\"data\":[" + ids.map(modelJSON).joined(separator: ",") + "]}"
    }

    // MARK: - Tokenizer endpoints

    private func tokenize(_ request: Request) async throws -> Response {
        let fields = try JSONFields(body: try await readBody(request.body, headers: request.headers))
        try fields.rejectUnknown(["content", "add_special", "parse_special", "with_pieces"])
        guard let content = try fields.string("content") else {
            throw APIError.invalidRequest("'content' is required", param: "content", code: "missing_required_parameter")
        }
        let ids = model.tokenizer.encode(content, addSpecial: try fields.bool("add_special") ?? false,
                                         parseSpecial: try fields.bool("parse_special") ?? true)
        let tokens: [String]
        if try fields.bool("with_pieces") ?? false {
            tokens = ids.map { "{\"id\":\($0),\"piece\":\(JSONText.quoted(model.tokenizer.piece($0)))}" }
        } else {
            tokens = ids.map { String($0) }
        }
        return jsonResponse("{\"tokens\":[" + tokens.joined(separator: ",") + "]}")
    }

    private func detokenize(_ request: Request) async throws -> Response {
        let fields = try JSONFields(body: try await readBody(request.body, headers: request.headers))
        try fields.rejectUnknown(["tokens"])
        guard let items = try fields.array("tokens") else {
            throw APIError.invalidRequest("'tokens' is required", param: "tokens", code: "missing_required_parameter")
        }
        let vocabulary = model.config.vocabSize
        let ids = try items.map { item -> TokenID in
            guard let id = JSONFields.integer(item), (0..<vocabulary).contains(id) else {
                throw APIError.invalidRequest("'tokens' must hold token ids in 0..<\(vocabulary)", param: "tokens")
            }
            return TokenID(id)
        }
        return jsonResponse("{\"content\":" + JSONText.quoted(model.tokenizer.decode(ids)) + "}")
    }

    // MARK: - Embeddings

    /// Most texts in one embeddings request.
    static let maxEmbeddingInputs = 2048

    private func embeddings(_ request: Request) async throws -> Response {
        let fields = try JSONFields(body: try await readBody(request.body, headers: request.headers))
        try fields.rejectUnknown(["input", "model", "encoding_format", "dimensions", "user"])
        let name = try fields.string("model")
        guard let embeddingModel, let embeddingModelName else {
            throw APIError(status: .notFound, message: "This server has no embedding model (start it with --embedding-model DIR)",
                           type: "invalid_request_error", code: "model_not_found", param: "model")
        }
        if let name, !name.isEmpty, name != embeddingModelName { throw APIError.modelNotFound(name) }
        let texts: [String]
        switch fields.value("input") {
        case let .string(s)?: texts = [s]
        case let .array(items)? where !items.isEmpty:
            guard items.count <= Self.maxEmbeddingInputs else {
                throw APIError.invalidRequest("'input' holds more than \(Self.maxEmbeddingInputs) texts", param: "input")
            }
            texts = try items.map {
                guard case let .string(s) = $0 else { throw APIError.invalidType("input", expected: "a string or an array of strings") }
                return s
            }
        case nil: throw APIError.invalidRequest("'input' is required", param: "input", code: "missing_required_parameter")
        default: throw APIError.invalidType("input", expected: "a string or a non-empty array of strings")
        }
        let format = try fields.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw APIError.invalidRequest("'encoding_format' must be float or base64", param: "encoding_format")
        }
        if let d = try fields.integer("dimensions", in: 1...Int.max), d != embeddingModel.dimension {
            throw APIError.invalidRequest("'dimensions' must be \(embeddingModel.dimension) for this model", param: "dimensions")
        }
        let counted = try texts.reduce(0) { $0 + (try embeddingModel.tokenize($1).count) }
        let vectors: [[Float]] = try await withCheckedThrowingContinuation { continuation in
            embeddingQueue.async {
                continuation.resume(with: Result { try embeddingModel.embeddings(for: texts) })
            }
        }
        let data = vectors.enumerated().map { index, vector in
            let embedding: String
            if format == "base64" {
                embedding = JSONText.quoted(vector.withUnsafeBytes { Data($0).base64EncodedString() })
            } else {
                embedding = "[" + vector.map(JSONText.number).joined(separator: ",") + "]"
            }
            return "{\"object\":\"embedding\",\"index\":\(index),\"embedding\":\(embedding)}"
        }
        return jsonResponse("{\"object\":\"list\",\"data\":[" + data.joined(separator: ",") + "],\"model\":"
            + JSONText.quoted(embeddingModelName) + ",\"usage\":{\"prompt_tokens\":\(counted),\"total_tokens\":\(counted)}}")
    }
}

/// Runs the application; on graceful shutdown first drains the slots (so streams end with their
/// last event), then lets the HTTP server close.
struct DrainOnShutdown<App: ApplicationProtocol>: Service {
    let application: App
    let scheduler: SlotScheduler
    let grace: Duration

    func run() async throws {
        let inner = ServiceGroup(configuration: .init(services: [application], logger: application.logger))
        // Detached: the application's own service group must not see this group's graceful
        // shutdown (it would close connections before the generations are drained).
        let serving = Task.detached { try await inner.run() }
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await serving.value }
                group.addTask {
                    try await gracefulShutdown()
                    await scheduler.drain(grace: grace)
                    await inner.triggerGracefulShutdown()
                }
                try await group.next()
                group.cancelAll()
            }
        } onCancel: {
            serving.cancel()
        }
    }
}
