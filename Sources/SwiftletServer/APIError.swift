import Foundation
import Hummingbird
import Swiftlet

/// An error answered as OpenAI answers it: `{"error": {"message", "type", "param", "code"}}` with
/// an HTTP status.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var code: String?
    var param: String?
    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    var retryAfter: Int?

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", code: code, param: param)
    }

    static func invalidType(_ param: String, expected: String) -> APIError {
        invalidRequest("'\(param)' must be \(expected)", param: param, code: "invalid_type")
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(status: .notFound, message: "The model '\(name)' does not exist on this server",
                 type: "invalid_request_error", code: "model_not_found", param: "model")
    }

    static let unauthorized = APIError(status: .unauthorized,
                                       message: "Missing or incorrect API key: send 'Authorization: Bearer <key>'",
                                       type: "invalid_request_error", code: "invalid_api_key")

    static func tooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "The request body exceeds the server's limit of \(limit) bytes",
                 type: "invalid_request_error", code: "request_too_large")
    }

    static func queueFull(retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, message: "All generation slots are busy and the queue is full; retry later",
                 type: "rate_limit_error", code: "rate_limit_exceeded", retryAfter: retryAfter)
    }

    static let shuttingDown = APIError(status: .serviceUnavailable, message: "The server is shutting down",
                                       type: "server_error", code: "shutting_down")

    static func contextExceeded(_ message: String) -> APIError {
        invalidRequest(message, param: "messages", code: "context_length_exceeded")
    }

    static func internalError(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", code: nil)
    }

    /// The JSON body.
    var json: String {
        var fields = ["\"message\":" + JSONText.quoted(message), "\"type\":" + JSONText.quoted(type)]
        fields.append("\"param\":" + (param.map { JSONText.quoted($0) } ?? "null"))
        fields.append("\"code\":" + (code.map { JSONText.quoted($0) } ?? "null"))
        return "{\"error\":{" + fields.joined(separator: ",") + "}}"
    }

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A library error as the client's fault (400) or the server's (500).
    init(_ error: SwiftletError) {
        switch error {
        case .contextOverflow:
            self = .contextExceeded(error.description)
        case .invalidArgument, .invalidSchema, .invalidGrammar, .template:
            self = .invalidRequest(error.description)
        default:
            self = .internalError(error.description)
        }
    }

    init(status: HTTPResponse.Status, message: String, type: String, code: String?, param: String? = nil, retryAfter: Int? = nil) {
        self.status = status; self.message = message; self.type = type; self.code = code
        self.param = param; self.retryAfter = retryAfter
    }
}

/// Turns every error that reaches it (the router's 404/405, a handler's throw) into OpenAI's
/// error JSON, and counts it.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    static var closingPaths: Set<String> { ["/v1/chat/completions", "/v1/completions"] }
    /// The server's paths and their method, to tell a wrong method (405) from an unknown path (404).
    static var routes: [String: String] {
        ["/": "GET", "/health": "GET", "/metrics": "GET", "/v1/models": "GET", "/v1/chat/completions": "POST",
         "/v1/completions": "POST", "/v1/embeddings": "POST", "/tokenize": "POST", "/detokenize": "POST"]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response
        } catch let error as SwiftletError {
            response = APIError(error).response
        } catch let error as HTTPResponseError {
            let status = error.status
            let message: String
            switch status {
            case .notFound where Self.routes[request.uri.path] != nil:
                let allowed = Self.routes[request.uri.path]!
                var refused = APIError(status: .methodNotAllowed, message: "Method \(request.method) is not allowed on "
                    + "\(request.uri.path); use \(allowed)", type: "invalid_request_error", code: "method_not_allowed").response
                refused.headers[.allow] = allowed
                metrics.countRequest(path: request.uri.path, status: refused.status.code)
                return refused
            case .notFound: message = "Unknown endpoint: \(request.method) \(request.uri.path)"
            case .methodNotAllowed: message = "Method \(request.method) is not allowed on \(request.uri.path)"
            default: message = status.reasonPhrase
            }
            response = APIError(status: status, message: message,
                                type: status.code < 500 ? "invalid_request_error" : "server_error", code: nil).response
        } catch {
            response = APIError.internalError("\(error)").response
        }
        metrics.countRequest(path: request.uri.path, status: response.status.code)
        // Generation endpoints watch the connection for the client leaving, which uses it up:
        // say so, so that clients do not send another request on it.
        if Self.closingPaths.contains(request.uri.path) {
            var response = response
            response.headers[.connection] = "close"
            return response
        }
        return response
    }
}

/// `Authorization: Bearer KEY` on every path but the public ones.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String
    let publicPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if publicPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              constantTimeEqual(Array(header.utf8.dropFirst(7)), Array(key.utf8)) else {
            throw APIError.unauthorized
        }
        return try await next(request, context)
    }

    /// Compares without stopping at the first difference, so timing does not reveal the key.
    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<min(a.count, b.count) { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
