import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaCore

/// The HTTP face of a ``MediaError``: a status, and a JSON body `{"error": {"code", "message"}}`.
/// Only this layer maps errors to statuses; the message is the error's public one, never its cause.
public struct APIError: HTTPResponseError, Sendable {
    public var error: MediaError
    /// Seconds after which a retry may succeed (503s).
    public var retryAfter: Int?
    /// `Cache-Control` of the answer, when caches must be told (the CDN origin's errors).
    public var cacheControl: String?

    public init(_ error: MediaError, retryAfter: Int? = nil, cacheControl: String? = nil) {
        self.error = error
        self.retryAfter = retryAfter
        self.cacheControl = cacheControl
    }

    public var status: HTTPResponse.Status { Self.status(for: error.code) }

    public static func status(for code: MediaError.Code) -> HTTPResponse.Status {
        switch code {
        case .unauthorized, .tokenExpired: .unauthorized
        case .forbidden, .urlExpired: .forbidden
        case .invalidRequest, .malformedMultipart: .badRequest
        case .unsupportedMediaType: .unsupportedMediaType
        case .tooLarge, .requestTooLarge, .tooManyParts: .contentTooLarge
        case .headerTooLarge: .init(code: 431, reasonPhrase: "Request Header Fields Too Large")
        case .limitExceeded, .setCommitted: .conflict
        case .setExpired: .gone
        case .notFound: .notFound
        case .timedOut, .unavailable, .shuttingDown: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(status: status, ErrorBody(error), headers: headers)
    }

    var headers: HTTPFields {
        var headers = HTTPFields()
        if status == .serviceUnavailable { headers[.retryAfter] = "\(retryAfter ?? 5)" }
        if error.code == .unauthorized || error.code == .tokenExpired { headers[.wwwAuthenticate] = "Bearer" }
        if let cacheControl { headers[.cacheControl] = cacheControl }
        return headers
    }
}

/// `{"error": {"code": "...", "message": "..."}}`
struct ErrorBody: Encodable, Sendable {
    struct Detail: Encodable, Sendable {
        var code: String
        var message: String
    }

    var error: Detail

    init(_ error: MediaError) {
        self.error = Detail(code: error.code.rawValue, message: error.message)
    }
}

/// Turns every error that reaches it into an ``APIError`` response. Unexpected errors are logged with
/// their details and answered with a bare 500: nothing internal reaches the client.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let retryAfter: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await answer(request, context: context, next: next)
        // HEAD gets the status and headers of GET, never a body
        return request.method == .head ? response.createHeadResponse() : response
    }

    private func answer(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            log(error.error, context: context)
            return try error.response(from: request, context: context)
        } catch let error as MediaError {
            log(error, context: context)
            return try APIError(error, retryAfter: retryAfter).response(from: request, context: context)
        } catch let error as HTTPError {
            let code: MediaError.Code = switch error.status {
            case .notFound: .notFound
            case .contentTooLarge: .requestTooLarge
            case .unauthorized: .unauthorized
            default: .invalidRequest
            }
            let message = error.status == .notFound ? "no such route" : (error.body ?? error.status.reasonPhrase)
            var response = JSONResponse.make(status: error.status, ErrorBody(MediaError(code, message)))
            for field in error.headers { response.headers.append(field) }
            return response
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            return try APIError(MediaError(.internal, "internal error")).response(from: request, context: context)
        }
    }

    /// Internal errors are logged with their details; refusals with their cause, when they have one.
    private func log(_ error: MediaError, context: Context) {
        if error.code == .internal {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
        } else if let cause = error.cause {
            context.logger.info("request refused", metadata: ["error.code": "\(error.code.rawValue)", "error.cause": "\(cause)"])
        }
    }
}

/// JSON responses with the API's conventions: snake_case keys chosen by the types, ISO 8601 dates.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make(status: HTTPResponse.Status, _ value: some Encodable, headers: HTTPFields = [:]) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal","message":"internal error"}}"#.utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
