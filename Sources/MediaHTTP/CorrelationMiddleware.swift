import HTTPTypes
import Hummingbird
import MediaCore

/// Gives every answer the request's id (`X-Request-Id`, Hummingbird's `hb.request.id` that the request's log
/// lines carry), and runs the request in its correlation scope (``Correlation``): the ids it touched are
/// linked to it, to its trace and to the caller's own `X-Request-Id` once it is answered. Inside the error
/// mapping, so that it sees every answer's status.
struct CorrelationMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard Correlation.isEnabled else {
            var response = try await next(request, context)
            response.headers[.xRequestID] = context.id
            return response
        }
        let scope = RequestCorrelation(
            requestID: context.id,
            callerRequestID: request.headers[.xRequestID].flatMap(Self.callerID),
            traceID: TraceParent.traceID(TraceParent.current())
        )
        do {
            var response = try await Correlation.withRequest(scope) { try await next(request, context) }
            scope.finish(route: "\(request.method) \(context.endpointPath ?? "unmatched")", status: Int(response.status.code))
            response.headers[.xRequestID] = context.id
            return response
        } catch let error as any HTTPResponseError {
            scope.finish(route: "\(request.method) \(context.endpointPath ?? "unmatched")", status: Int(error.status.code))
            throw error
        }
    }

    /// A caller's request id is kept when it is 1 to 128 visible ASCII characters.
    static func callerID(_ value: String) -> String? {
        (1...128).contains(value.utf8.count) && value.utf8.allSatisfy { (0x21...0x7E).contains($0) } ? value : nil
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
