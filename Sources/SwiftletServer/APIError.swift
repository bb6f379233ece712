import Foundation
import HTTPTypes
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

    /// A library error as the client's fault (400) or the server's (500).
    init(_ error: SwiftletError) {
        switch error {
        case .contextOverflow:
            self = .contextExceeded(error.description)
        case .kvCacheLimit:
            // The server's memory, not the request, is short: another request may fit later.
            self = APIError(status: .serviceUnavailable, message: error.description, type: "server_error", code: "kv_cache_limit")
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
