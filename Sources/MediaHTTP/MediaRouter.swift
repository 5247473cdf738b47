import Hummingbird
import Logging
import MediaCore
import Prometheus

/// Everything the HTTP layer serves, over any implementation of the ports.
public struct MediaAPI<Storage: MediaStores>: Sendable {
    public let uploads: UploadService<Storage>
    public let resumable: ResumableUploadService<Storage>
    public let media: MediaService<Storage>
    public let grants: UploadGrants
    public let origin: OriginService<Storage.Metadata>
    public let readiness: ReadinessProbe<Storage>
    public let serviceTokens: ServiceTokens
    public let registry: PrometheusCollectorRegistry
    public let configuration: HTTPConfiguration

    public init(
        uploads: UploadService<Storage>,
        resumable: ResumableUploadService<Storage>,
        media: MediaService<Storage>,
        grants: UploadGrants,
        origin: OriginService<Storage.Metadata>,
        readiness: ReadinessProbe<Storage>,
        serviceTokens: ServiceTokens,
        registry: PrometheusCollectorRegistry,
        configuration: HTTPConfiguration
    ) {
        self.uploads = uploads
        self.resumable = resumable
        self.media = media
        self.grants = grants
        self.origin = origin
        self.readiness = readiness
        self.serviceTokens = serviceTokens
        self.registry = registry
        self.configuration = configuration
    }

    /// The router with every route, and the table of what was registered.
    public func buildRouter() -> (Router<MediaRequestContext>, RouteTable) {
        let router = Router(context: MediaRequestContext.self)
        let retryAfter = Int(configuration.retryAfter.seconds.rounded(.up))
        let routes = RouteTable()
        if configuration.traceRequests {
            // outermost: the access log line and everything the request does are inside its span; a signed
            // URL's signature is not recorded
            router.add(middleware: TracingMiddleware(redactingQueryParameters: ["sig"]))
        }
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: CORSMiddleware(policy: configuration.cors, routes: routes))
        router.add(middleware: CorrelationMiddleware())
        router.add(middleware: ErrorMiddleware(retryAfter: retryAfter, routes: routes))
        OperationsController(readiness: readiness, registry: registry, retryAfter: retryAfter).register(on: router, routes: routes)
        InternalController(service: media, grants: grants, origin: origin, tokens: serviceTokens).register(on: router, routes: routes)
        OriginController(
            origin: origin,
            responder: OriginResponder(blobs: media.storage.blobs, readAhead: configuration.originReadAhead),
            retryAfter: retryAfter
        )
        .register(on: router, routes: routes)
        UploadController(
            uploads: uploads,
            grants: grants,
            limits: configuration.multipart,
            maxRequestBytes: configuration.maxRequestBytes,
            retryAfter: retryAfter
        ).register(on: router, routes: routes)
        ResumableController(uploads: uploads, resumable: resumable, grants: grants, retryAfter: retryAfter).register(on: router, routes: routes)
        return (router, routes)
    }
}
