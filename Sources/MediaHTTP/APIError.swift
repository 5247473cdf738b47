import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaCore
import NIOCore

/// A refusal of the HTTP layer itself, before or around the use cases: what only means something in HTTP
/// (a body that is not well-formed multipart, a request over its caps).
public struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable codes; the raw values are the `error.code` strings of the API.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        case malformedMultipart = "malformed_multipart"
        case requestTooLarge = "request_too_large"
        case tooManyParts = "too_many_parts"
        case headerTooLarge = "header_too_large"
        /// The path exists, with other methods.
        case methodNotAllowed = "method_not_allowed"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The HTTP face of an error: a status, and a JSON body `{"error": {"code", "message"}}` with a stable code
/// and a public message. Only this layer maps errors to statuses; the message never carries a cause.
public struct APIError: HTTPResponseError, Sendable {
    public var code: String
    public var message: String
    public var status: HTTPResponse.Status
    /// Seconds after which a retry may succeed (503s).
    public var retryAfter: Int?
    /// `Cache-Control` of the answer, when caches must be told (the CDN origin's errors).
    public var cacheControl: String?
    /// Other headers the answer needs (`Allow` of a 405).
    public var extraHeaders: HTTPFields = [:]

    public init(_ error: MediaError, retryAfter: Int? = nil, cacheControl: String? = nil) {
        self.code = error.code.rawValue
        self.message = error.message
        self.status = Self.status(for: error.code)
        self.retryAfter = retryAfter
        self.cacheControl = cacheControl
    }

    public init(_ error: RequestError) {
        self.code = error.code.rawValue
        self.message = error.message
        self.status = Self.status(for: error.code)
    }

    init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.status = status
        self.extraHeaders = headers
    }

    public static func status(for code: MediaError.Code) -> HTTPResponse.Status {
        switch code {
        case .unauthorized, .tokenExpired: .unauthorized
        case .forbidden, .urlExpired: .forbidden
        case .invalidRequest: .badRequest
        case .unsupportedMediaType: .unsupportedMediaType
        case .tooLarge: .contentTooLarge
        case .limitExceeded, .setCommitted, .offsetMismatch, .uploadBusy: .conflict
        case .checksumMismatch: .init(code: 460, reasonPhrase: "Checksum Mismatch")
        case .setExpired, .cursorExpired: .gone
        case .notFound: .notFound
        case .timedOut, .unavailable, .shuttingDown: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    public static func status(for code: RequestError.Code) -> HTTPResponse.Status {
        switch code {
        case .malformedMultipart: .badRequest
        case .requestTooLarge, .tooManyParts: .contentTooLarge
        case .headerTooLarge: .init(code: 431, reasonPhrase: "Request Header Fields Too Large")
        case .methodNotAllowed: .methodNotAllowed
        }
    }

    /// Whether the error belongs to the server or a dependency (logged as such), not to the request.
    var isServerSide: Bool { status.code >= 500 }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        JSONResponse.make(status: status, ErrorBody(code: code, message: message), headers: headers)
    }

    var headers: HTTPFields {
        var headers = extraHeaders
        if status == .serviceUnavailable { headers[.retryAfter] = "\(retryAfter ?? 5)" }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
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

    init(code: String, message: String) {
        self.error = Detail(code: code, message: message)
    }
}

/// Turns every error that reaches it into an ``APIError`` response. Unexpected errors are logged with
/// their details and answered with a bare 500: nothing internal reaches the client.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = MediaRequestContext

    let retryAfter: Int
    /// The registered routes: a path that exists with other methods is answered 405 with `Allow`.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // the handler gave up before reading the body, if it had one: the unread bytes must not be parsed
            // as a next request, and a client that stops sending must not get a second answer
            let refusal = try answer(error, request, context: context)
            return request.declaresBody ? refusal.closingConnection(context.channel) : refusal
        }
        // HEAD gets the status and headers of GET, never a body
        return request.method == .head ? response.createHeadResponse() : response
    }

    private func answer(_ error: any Error, _ request: Request, context: Context) throws -> Response {
        let response = try response(to: error, request, context: context)
        return request.method == .head ? response.createHeadResponse() : response
    }

    private func response(to error: any Error, _ request: Request, context: Context) throws -> Response {
        do {
            throw error
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as MediaError {
            log(error, context: context)
            return try APIError(error, retryAfter: retryAfter).response(from: request, context: context)
        } catch let error as RequestError {
            return try APIError(error).response(from: request, context: context)
        } catch is NIOTooManyBytesError {
            // a body collected with a cap (the JSON of the internal API) went past it
            return try APIError(RequestError(.requestTooLarge, "the request body is larger than allowed")).response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(forPath: request.uri.path)
            guard !allowed.isEmpty else {
                return JSONResponse.make(status: .notFound, ErrorBody(code: MediaError.Code.notFound.rawValue, message: "no such route"))
            }
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            return try APIError(
                status: .methodNotAllowed,
                code: RequestError.Code.methodNotAllowed.rawValue,
                message: "\(request.method.rawValue) is not allowed here; allowed: \(allow)",
                headers: [.allow: allow]
            ).response(from: request, context: context)
        } catch let error as HTTPError {
            let code =
                switch error.status {
                case .notFound: MediaError.Code.notFound.rawValue
                case .contentTooLarge: RequestError.Code.requestTooLarge.rawValue
                case .unauthorized: MediaError.Code.unauthorized.rawValue
                default: MediaError.Code.invalidRequest.rawValue
                }
            let message = error.status == .notFound ? "no such route" : (error.body ?? error.status.reasonPhrase)
            var response = JSONResponse.make(status: error.status, ErrorBody(code: code, message: message))
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
