import Foundation
import Hummingbird
import Logging
import MediaCore
import MediaHTTP
import Metrics
import NIOCore
import PostgresMetadata
import Prometheus
import RadosStore
import ServiceLifecycle

/// The composition root: connects the adapters, wires the use cases and the HTTP layer, and returns the
/// service group that runs them. Every long-lived resource is a service; SIGTERM stops the HTTP server
/// first (in-flight requests finish), then the reconciler, then the Ceph and PostgreSQL clients.
public struct GatewayServer: Sendable {
    public let serviceGroup: ServiceGroup
    /// The registered routes, for the OpenAPI parity check.
    public let routes: RouteTable

    /// Connects to both services (one clear error line each if they are not right), applies pending
    /// migrations, and builds the server. `onListening` gets the bound port.
    public static func build(
        configuration: GatewayConfiguration, server: ServerConfiguration, processing: ProcessingConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger,
        handleSignals: Bool = true,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> GatewayServer {
        let registry = Metrics.registry
        _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
        let cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
        let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
        let metadata = PostgresMetadataStore(database: database, logger: logger)
        let objects = RadosObjectStore(cluster: cluster)
        let signer = UploadTokenSigner(keys: server.uploadTokenKeys)
        let serviceTokens = try ServiceTokens(server.serviceTokens)
        let originCache = OriginLookupCache(ttl: server.origin.lookupCacheTTL, capacity: server.origin.lookupCacheEntries)

        let api = MediaAPI(
            uploads: UploadService(metadata: metadata, objects: objects, pools: configuration.pools, settings: server.uploads, tokens: signer, logger: logger),
            media: MediaService(
                metadata: metadata, objects: objects, settings: server.uploads, tokens: signer, originCache: originCache, logger: logger),
            origin: OriginService(
                metadata: metadata, settings: server.origin, signer: URLSigner(keys: server.urlSigningKeys), cache: originCache),
            readiness: ReadinessProbe(metadata: metadata, objects: objects, pools: configuration.pools),
            serviceTokens: serviceTokens, registry: registry, configuration: server.http)
        let (router, routes) = api.buildRouter()
        var app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(server.http.idleTimeout.seconds * 1000)))),
            configuration: .init(address: .hostname(server.http.host, port: server.http.port), serverName: "mediagw"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        app.beforeServerStarts {
            let report = try await database.migrate()
            if !report.applied.isEmpty {
                logger.info("migrated", metadata: ["schema.version": "\(report.currentVersion)"])
            }
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: database.client),
            .init(service: cluster),
        ]
        if processing.inServe {
            let (processor, pool) = try Processing.make(
                configuration: configuration, processing: processing, objects: objects, environment: environment, logger: logger)
            let runner = JobRunner(metadata: metadata, objects: objects, processing: processor, settings: processing.workers, logger: logger)
            services.append(.init(service: WorkerService(runner: runner, pool: pool)))
        }
        if server.reconcileInterval > .zero {
            let reconciler = Reconciler(metadata: metadata, objects: objects, pools: configuration.pools, logger: logger)
            services.append(.init(service: ReconcilerService(reconciler: reconciler, interval: server.reconcileInterval, grace: server.reconcileGrace, logger: logger)))
        }
        services.append(.init(service: app))
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger)
        group.maximumGracefulShutdownDuration = server.shutdownTimeout
        return GatewayServer(serviceGroup: ServiceGroup(configuration: group), routes: routes)
    }
}

/// `mediagw worker`: the processing workers without the HTTP server.
public enum WorkerCommand {
    public static func build(
        configuration: GatewayConfiguration, processing: ProcessingConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) async throws -> ServiceGroup {
        _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
        let cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
        let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
        let metadata = PostgresMetadataStore(database: database, logger: logger)
        let objects = RadosObjectStore(cluster: cluster)
        let (processor, pool) = try Processing.make(
            configuration: configuration, processing: processing, objects: objects, environment: environment, logger: logger)
        let runner = JobRunner(metadata: metadata, objects: objects, processing: processor, settings: processing.workers, logger: logger)
        return ServiceGroup(configuration: .init(
            services: [
                .init(service: database.client), .init(service: cluster),
                .init(service: MigratedWorker(database: database, worker: WorkerService(runner: runner, pool: pool))),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }
}

/// Applies pending migrations, then runs the workers.
struct MigratedWorker<Metadata: MetadataStore, Objects: ObjectStore>: Service {
    let database: MetadataDatabase
    let worker: WorkerService<Metadata, Objects>

    func run() async throws {
        try await database.migrate()
        try await worker.run()
    }
}

/// Runs the reconciler every `interval` until shutdown.
struct ReconcilerService<Metadata: MetadataStore, Objects: ObjectStore>: Service {
    let reconciler: Reconciler<Metadata, Objects>
    let interval: Duration
    let grace: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            do {
                _ = try await reconciler.run(grace: grace)
            } catch {
                logger.warning("reconcile pass failed; retrying next interval", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// The process-wide metrics registry, bootstrapped once.
public enum Metrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Prometheus names and labels allow [a-zA-Z0-9_]: Hummingbird's dotted OpenTelemetry names are mapped
        factory.nameAndLabelSanitizer = { name, labels in
            func clean(_ text: String) -> String {
                String(text.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
            }
            return (clean(name), labels.map { (clean($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
        return registry
    }()
}
