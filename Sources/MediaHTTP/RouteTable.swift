import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers

/// Every route the server registers, as `METHOD /path/{param}`: the OpenAPI document is checked against it,
/// and a path that exists with other methods is answered 405 with the methods it has.
public final class RouteTable: Sendable {
    private let entries = NIOLockedValueBox<[String]>([])
    private let templates = NIOLockedValueBox<[(HTTPRequest.Method, [Substring])]>([])

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
        templates.withLockedValue { $0.append((method, path.split(separator: "/"))) }
    }

    /// The methods registered for a path (`:name` segments match any one segment), in registration order.
    public func methods(forPath path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        var methods: [HTTPRequest.Method] = []
        for (method, template) in templates.withLockedValue({ $0 }) where template.count == segments.count {
            let matches = zip(template, segments).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
            if matches && !methods.contains(method) { methods.append(method) }
        }
        return methods
    }
}
