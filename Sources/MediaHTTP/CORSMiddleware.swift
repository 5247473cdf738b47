import HTTPTypes
import Hummingbird

/// CORS for the public routes (multipart and resumable uploads, the origin), by ``CORSPolicy``. A
/// preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here, with the methods the
/// route has; an actual request gets the allow and expose headers on whatever it is answered, errors
/// included. Requests from an origin that is not allowed get no CORS header, so the browser keeps their
/// answer from the page; the internal and operations routes never answer cross-origin requests.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = MediaRequestContext

    let policy: CORSPolicy
    let routes: RouteTable

    /// Request headers a page may send: authentication, the upload protocols', conditional and range
    /// requests.
    static let allowedHeaders = [
        "authorization", "content-type", "tus-resumable", "upload-length", "upload-offset", "upload-metadata", "upload-defer-length",
        "upload-checksum", "upload-complete", "upload-draft-interop-version", "range", "if-none-match", "if-modified-since", "if-match",
        "if-range", "x-requested-with", "x-http-method-override", "x-request-id",
    ]

    /// Response headers a page may read.
    static let exposedHeaders = [
        "Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata", "Upload-Defer-Length", "Upload-Complete",
        "Upload-Limit", "Upload-Draft-Interop-Version", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
        "Tus-Checksum-Algorithm", "Media-Id", "ETag", "Last-Modified", "Content-Range", "Accept-Ranges", "Content-Length",
        "Retry-After", "X-Request-Id",
    ].joined(separator: ", ")

    /// The routes browsers may call.
    static func isPublic(_ path: String) -> Bool {
        path.hasPrefix("/v1/") || path.hasPrefix("/m/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !policy.origins.isEmpty, let origin = request.headers[.origin], Self.isPublic(request.uri.path) else {
            return try await next(request, context)
        }
        let allowed = policy.allows(origin)
        if request.method == .options, let wanted = request.headers[.accessControlRequestMethod] {
            return preflight(request, origin: origin, allowed: allowed, wanted: wanted)
        }
        var response = try await next(request, context)
        guard allowed else { return response }
        addOrigin(origin, to: &response.headers)
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        return response
    }

    private func addOrigin(_ origin: String, to headers: inout HTTPFields) {
        headers[.accessControlAllowOrigin] = policy.anyOrigin ? "*" : origin
        if !policy.anyOrigin {
            headers.append(HTTPField(name: .vary, value: "Origin"))
            if policy.allowCredentials { headers[.accessControlAllowCredentials] = "true" }
        }
    }

    private func preflight(_ request: Request, origin: String, allowed: Bool, wanted: String) -> Response {
        let methods = routes.methods(forPath: request.uri.path).filter { $0 != .options }
        let askedHeaders = (request.headers[.accessControlRequestHeaders] ?? "").split(separator: ",")
            .map { $0.trimmingOWS().lowercased() }.filter { !$0.isEmpty }
        guard allowed else {
            return JSONResponse.make(
                status: .forbidden,
                ErrorBody(code: "cors_origin_not_allowed", message: "pages of \(origin) may not call this service"),
                headers: [.vary: "Origin"]
            )
        }
        guard !methods.isEmpty else {
            return JSONResponse.make(status: .notFound, ErrorBody(code: "not_found", message: "no such route"), headers: [.vary: "Origin"])
        }
        let unknown = askedHeaders.filter { !Self.allowedHeaders.contains($0) }
        guard methods.map(\.rawValue).contains(wanted.uppercased()), unknown.isEmpty else {
            var headers: HTTPFields = [.vary: "Origin"]
            headers[.allow] = methods.map(\.rawValue).joined(separator: ", ")
            let message =
                unknown.isEmpty
                ? "this route takes \(methods.map(\.rawValue).joined(separator: ", ")), not \(wanted)"
                : "request headers not allowed: \(unknown.joined(separator: ", "))"
            return JSONResponse.make(status: .forbidden, ErrorBody(code: "cors_request_not_allowed", message: message), headers: headers)
        }
        var headers: HTTPFields = [:]
        addOrigin(origin, to: &headers)
        headers[.accessControlAllowMethods] = methods.map(\.rawValue).joined(separator: ", ")
        headers[.accessControlAllowHeaders] = Self.allowedHeaders.joined(separator: ", ")
        headers[.accessControlMaxAge] = "\(Int(policy.maxAge.components.seconds))"
        headers.append(HTTPField(name: .vary, value: "Access-Control-Request-Method, Access-Control-Request-Headers"))
        return Response(status: .noContent, headers: headers)
    }
}
