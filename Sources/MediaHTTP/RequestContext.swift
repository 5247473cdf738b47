import Hummingbird
import NIOCore

/// The request context of the gateway: Hummingbird's core storage plus the connection's channel, so that a
/// handler that stops reading a request body early can close the connection after answering.
public struct MediaRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

extension Response {
    /// Closes the connection once this response is written: the rest of the request body is never read.
    func closingConnection(_ channel: any Channel) -> Response {
        var response = self
        response.headers[.connection] = "close"
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            try await body.write(writer)
            channel.close(promise: nil)
        }
        return response
    }
}
