import ArgumentParser
import Foundation
import Swiftlet
import SwiftletServer

/// `swiftlet serve -m FILE`: the OpenAI-compatible HTTP server (llama-server's flags where they
/// exist: `--host`, `--port`, `--api-key`, `-np/--parallel`, `-c/--ctx-size`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a GGUF model over an OpenAI-compatible HTTP API, with a chat page at /.",
        discussion: """
            Endpoints: POST /v1/chat/completions, /v1/completions, /v1/embeddings, /tokenize, /detokenize; \
            GET /v1/models, /health, /metrics, and / (the chat page). SIGTERM or SIGINT stops accepting \
            connections, lets running generations finish for --shutdown-grace seconds, then stops them.
            """)

    @Option(name: [.short, .customLong("model")], help: "GGUF model file.")
    var m: String
    @Option(name: .customLong("embedding-model"), help: "Sentence-embedding model (folder or bert GGUF) for /v1/embeddings.")
    var embeddingModel: String?
    @Option(help: "Address to listen on (loopback by default).")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint but /health and the chat page.")
    var apiKey: String?
    @Option(name: [.customLong("np", withSingleDash: true), .customLong("parallel")], help: "Generation slots (requests generated at once).")
    var parallel = 1
    @Option(name: [.short, .customLong("ctx-size")], help: "Context shared out among the slots, as llama-server does (default: 4096 per slot, at most the model's).")
    var c: Int?
    @Option(name: .customLong("queue"), help: "Requests that may wait for a slot; beyond, 429 with Retry-After.")
    var queue = 64
    @Option(name: [.short, .customLong("n-predict")], help: "Most tokens a request may generate, and its default (-1: the room left in the context).")
    var n = -1
    @Option(name: .customLong("max-body"), help: "Largest request body in bytes (413 beyond).")
    var maxBody = 4 << 20
    @Option(name: .customLong("alias"), help: "Model name for /v1/models and the 'model' field (default: the file's name).")
    var alias: String?
    @Option(name: .customLong("shutdown-grace"), help: "Seconds running generations may go on after SIGTERM.")
    var shutdownGrace: Double = 10
    @Option(name: .customLong("timeout"), help: "Seconds a client has to send a request's headers, and its body.")
    var timeout: Double = 30
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var cacheLimit: KVCacheLimitOptions

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel \(parallel) is outside 1...64") }
        if let c { guard c >= parallel * 16 else { throw ValidationError("--ctx-size \(c) leaves fewer than 16 positions per slot") } }
        guard shutdownGrace >= 0, shutdownGrace.isFinite, timeout > 0, timeout.isFinite else {
            throw ValidationError("--shutdown-grace and --timeout must be non-negative numbers of seconds")
        }
    }

    func run() async throws {
        let url = URL(fileURLWithPath: m)
        let perSlot = c.map { $0 / parallel }
        let start = Date()
        let model = try await LanguageModel.load(url, contextLength: perSlot) { progress in
            let step = max(progress.totalTensors / 10, 1)
            if progress.completedTensors % step == 0 || progress.completedTensors == progress.totalTensors {
                progressBar("loading", done: progress.completedTensors, total: progress.totalTensors, since: start)
            }
        }
        // Each slot's cache is made at its first request: refuse slots that cannot all fit now.
        try model.checkSessionsFit(parallel, for: "\(parallel) slots of \(model.contextLength) positions")
        let embedder = try embeddingModel.map { try EmbeddingModel(url: URL(fileURLWithPath: $0)) }
        let embeddingName = embeddingModel.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        let options = ServerOptions(
            host: host, port: port, apiKey: apiKey, parallel: parallel, queueLimit: queue, maxBodyBytes: maxBody,
            maxTokens: n < 0 ? nil : n, headerTimeout: .seconds(timeout), bodyTimeout: .seconds(timeout),
            shutdownGrace: .seconds(shutdownGrace), modelName: alias ?? url.deletingPathExtension().lastPathComponent)
        do { try options.validate() } catch let error as SwiftletError { throw ValidationError(error.description) }
        let server = InferenceServer(model: model, embeddingModel: embedder, embeddingModelName: embeddingName, options: options)
        let host = host
        try await server.run { port in
            printError("swiftlet serve: listening on http://\(host):\(port) (\(options.parallel) slots × \(model.contextLength) positions)")
        }
        printError("swiftlet serve: stopped")
    }
}
