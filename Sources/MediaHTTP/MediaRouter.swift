import Hummingbird
import Logging
import MediaCore
import Prometheus

/// Everything the HTTP layer serves, over any implementation of the ports.
public struct MediaAPI<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    public let uploads: UploadService<Metadata, Objects>
    public let media: MediaService<Metadata, Objects>
    public let origin: OriginService<Metadata>
    public let readiness: ReadinessProbe<Metadata, Objects>
    public let serviceTokens: ServiceTokens
    public let registry: PrometheusCollectorRegistry
    public let configuration: HTTPConfiguration

    public init(
        uploads: UploadService<Metadata, Objects>, media: MediaService<Metadata, Objects>, origin: OriginService<Metadata>,
        readiness: ReadinessProbe<Metadata, Objects>, serviceTokens: ServiceTokens,
        registry: PrometheusCollectorRegistry, configuration: HTTPConfiguration
    ) {
        self.uploads = uploads
        self.media = media
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
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorMiddleware(retryAfter: retryAfter))
        let routes = RouteTable()
        OperationsController(readiness: readiness, registry: registry, retryAfter: retryAfter).register(on: router, routes: routes)
        InternalController(service: media, origin: origin, tokens: serviceTokens).register(on: router, routes: routes)
        OriginController(origin: origin, responder: OriginResponder(objects: media.objects, readAhead: configuration.originReadAhead), retryAfter: retryAfter)
            .register(on: router, routes: routes)
        UploadController(
            uploads: uploads, limits: configuration.multipart, maxRequestBytes: configuration.maxRequestBytes,
            retryAfter: retryAfter
        ).register(on: router, routes: routes)
        return (router, routes)
    }
}
