import Foundation
import Hummingbird
import Swiftlet

extension APIError {
    /// The error as an HTTP response: its status, `Retry-After` when set, and `json`.
    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
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
