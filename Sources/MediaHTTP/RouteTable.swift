import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers

/// Every route the server registers, as `METHOD /path/{param}`: the OpenAPI document is checked against it.
public final class RouteTable: Sendable {
    private let entries = NIOLockedValueBox<[String]>([])

    public init() {}

    /// The registered routes, sorted.
    public var routes: [String] { entries.withLockedValue { $0.sorted() } }

    /// Registers `handler` for `method` at `path` (Hummingbird `:name` parameters) on `router`, and records it.
    func add<Context: RequestContext>(
        _ method: HTTPRequest.Method,
        _ path: String,
        on router: Router<Context>,
        _ handler: @escaping @Sendable (Request, Context) async throws -> Response
    ) {
        router.on(RouterPath(path), method: method, use: handler)
        let template = path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        entries.withLockedValue { $0.append("\(method.rawValue) /\(template)") }
    }
}
