import Foundation
import Swiftlet

/// How `swiftlet serve` listens, and its limits.
public struct ServerOptions: Sendable {
    /// Address to bind; loopback unless told otherwise.
    public var host: String
    /// Port to bind (`0`: any free port, see ``InferenceServer/run(handleSignals:onStart:)``).
    public var port: Int
    /// When set, every endpoint but `/health` and the chat page needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// Generation slots: requests generated at once, each with a KV cache of its own.
    public var parallel: Int
    /// Requests that may wait for a slot; more are refused with 429 and `Retry-After`.
    public var queueLimit: Int
    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// Largest `max_tokens` a request may ask for, and the default when it asks for none
    /// (`nil`: the room left in the context).
    public var maxTokens: Int?
    /// A connection must send a request's headers within this time of opening (or of the
    /// previous response); slower ones are closed (slow-loris).
    public var headerTimeout: Duration
    /// A request's body must arrive within this time of its headers (408 otherwise).
    public var bodyTimeout: Duration
    /// On SIGTERM / SIGINT: how long running generations may go on before they are stopped.
    public var shutdownGrace: Duration
    /// Model name reported by `/v1/models` and accepted in `model` (default: the file's name).
    public var modelName: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, parallel: Int = 1,
                queueLimit: Int = 64, maxBodyBytes: Int = 4 << 20, maxTokens: Int? = nil,
                headerTimeout: Duration = .seconds(30), bodyTimeout: Duration = .seconds(30),
                shutdownGrace: Duration = .seconds(10), modelName: String? = nil) {
        self.host = host; self.port = port; self.apiKey = apiKey; self.parallel = parallel
        self.queueLimit = queueLimit; self.maxBodyBytes = maxBodyBytes; self.maxTokens = maxTokens
        self.headerTimeout = headerTimeout; self.bodyTimeout = bodyTimeout
        self.shutdownGrace = shutdownGrace; self.modelName = modelName
    }

    /// Throws a message naming the first option outside its range.
    public func validate() throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw SwiftletError.invalidArgument(what) } }
        try require((0...65535).contains(port), "port \(port) is outside 0...65535")
        try require((1...64).contains(parallel), "parallel \(parallel) is outside 1...64")
        try require((0...100_000).contains(queueLimit), "queue \(queueLimit) is outside 0...100000")
        try require(maxBodyBytes >= 1024, "body limit \(maxBodyBytes) is below 1024 bytes")
        try require(maxTokens.map { $0 >= 1 } ?? true, "max tokens must be at least 1")
        try require(apiKey.map { !$0.isEmpty } ?? true, "the API key is empty")
    }
}
