import Foundation
import Hummingbird
import Logging
import MediaClient
import MediaCore
import MediaHTTP
import Metrics
import NIOCore
import PostgresMetadata
import ProcessorPool
import Prometheus
import RadosStore
import ServiceLifecycle

/// What `serve` reads: every concern of a gateway.
public struct ServeConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var database: PostgresConfiguration
    /// A hot standby for reads (`MEDIAGW_DATABASE_READ_URL`), if any.
    public var replica: PostgresConfiguration?
    public var uploads: UploadSettings
    public var resumable: ResumableSettings
    public var secrets: SecretsConfiguration
    public var origin: OriginSettings
    public var http: HTTPConfiguration
    public var reconciler: ReconcilerConfiguration
    public var monitor: MonitorConfiguration
    public var edgePurge: EdgePurgeConfiguration
    public var outbox: OutboxRetentionConfiguration
    public var correlation: CorrelationConfiguration
    public var processing: ProcessingConfiguration
    public var lifecycle: LifecycleConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        database = try PostgresConfiguration(environment: env)
        replica = try PostgresConfiguration.replica(environment: env, of: database)
        uploads = try UploadSettings(environment: env)
        resumable = try ResumableSettings(environment: env)
        secrets = try SecretsConfiguration(environment: env)
        origin = try OriginSettings(environment: env)
        http = try HTTPConfiguration(environment: env)
        reconciler = try ReconcilerConfiguration(environment: env)
        monitor = try MonitorConfiguration(environment: env)
        edgePurge = try EdgePurgeConfiguration(environment: env)
        outbox = try OutboxRetentionConfiguration(environment: env)
        correlation = try CorrelationConfiguration(environment: env)
        try reconciler.validate(against: uploads)
        processing = try ProcessingConfiguration(environment: env)
        lifecycle = try LifecycleConfiguration(environment: env)
    }
}

/// `mediagw serve`: the HTTP API, the processing workers and the periodic reconciler of one gateway, as one
/// service group. SIGTERM stops the HTTP server first (in-flight requests finish), then the reconciler and
/// the workers (a job in hand is finished), then the Ceph and PostgreSQL clients.
public struct GatewayServer: Sendable {
    public let serviceGroup: ServiceGroup
    /// The registered routes, for the OpenAPI parity check.
    public let routes: RouteTable

    /// Connects to both stores (one clear error line each if they are not right), and builds the server;
    /// pending migrations are applied before it starts listening. `onListening` gets the bound port.
    public static func build(
        _ configuration: ServeConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger,
        handleSignals: Bool = true,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> GatewayServer {
        let registry = Metrics.registry
        let runtime = try await MediaRuntime.connect(
            storage: configuration.storage,
            database: configuration.database,
            replica: configuration.replica,
            logger: logger
        )
        var http = configuration.http
        http.traceRequests = MediaTracing.isEnabled
        let originCache = OriginLookupCache(ttl: configuration.origin.lookupCacheTTL, capacity: configuration.origin.lookupCacheEntries)
        let api = MediaAPI(
            uploads: runtime.uploadService(configuration.uploads),
            resumable: runtime.resumableService(configuration.uploads, configuration.resumable),
            media: runtime.mediaService(configuration.uploads, originCache: originCache),
            grants: UploadGrants(
                signer: UploadTokenSigner(keys: configuration.secrets.uploadTokenKeys),
                tokenLifetime: configuration.uploads.tokenLifetime
            ),
            origin: OriginService(
                metadata: runtime.metadata,
                settings: configuration.origin,
                signer: URLSigner(keys: configuration.secrets.urlSigningKeys),
                cache: originCache
            ),
            readiness: runtime.readinessProbe(),
            serviceTokens: configuration.secrets.serviceTokens,
            registry: registry,
            configuration: http
        )
        let (router, routes) = api.buildRouter()
        var app = Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [HeaderOverflowHandler()],
                    idleTimeout: .milliseconds(Int64(http.idleTimeout.seconds * 1000))
                )
            ),
            configuration: .init(address: .hostname(http.host, port: http.port), serverName: "mediagw"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        app.beforeServerStarts {
            let report = try await runtime.migrate()
            if !report.applied.isEmpty {
                logger.info("migrated", metadata: ["schema.version": "\(report.currentVersion)"])
            }
        }
        var services = MediaTracing.services + runtime.services
        services += MediaCorrelation.services(
            configuration.correlation,
            store: runtime.metadata,
            prepare: { try await runtime.migrate() },
            logger: logger
        )
        if configuration.processing.inServe {
            services.append(.init(service: WorkerService(runtime: runtime, configuration: configuration.processing, environment: environment)))
        }
        if configuration.reconciler.interval > .zero {
            services.append(
                .init(
                    service: ReconcilerService(
                        reconciler: runtime.reconciler(),
                        interval: configuration.reconciler.interval,
                        grace: configuration.reconciler.grace,
                        logger: logger,
                        prepare: { try await runtime.migrate() }
                    )
                )
            )
        }
        if configuration.monitor.interval > .zero {
            let monitor = BacklogMonitor(storage: runtime.stores, pools: runtime.storagePools, logger: logger)
            services.append(.init(service: BacklogMonitorService(monitor: monitor, interval: configuration.monitor.interval)))
        }
        for edge in configuration.edgePurge.edges {
            let purger = EdgePurger(metadata: runtime.metadata, edge: NginxEdgeCache(baseURL: edge), logger: logger)
            services.append(
                .init(
                    service: EdgePurgeService(purger: purger, interval: configuration.edgePurge.interval, logger: logger) {
                        try await runtime.migrate()
                    }
                )
            )
        }
        if configuration.outbox.interval > .zero {
            let rotator = OutboxRotator(
                metadata: runtime.metadata,
                retention: configuration.outbox.retention,
                daysAhead: configuration.outbox.daysAhead,
                logger: logger
            )
            let correlation = configuration.correlation
            let outbox = configuration.outbox
            let metadata = runtime.metadata
            services.append(
                .init(
                    service: OutboxRotationService(
                        rotator: rotator,
                        interval: configuration.outbox.interval,
                        logger: logger,
                        prepare: { try await runtime.migrate() },
                        alongside: { now in
                            // the correlation's days go by the same clock
                            try await metadata.rotateCorrelation(
                                droppingDaysEndingBy: now.addingTimeInterval(-correlation.retention.seconds),
                                daysAhead: outbox.daysAhead,
                                now: now
                            )
                        }
                    )
                )
            )
        }
        services.append(.init(service: app))
        var group = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = configuration.lifecycle.shutdownTimeout
        return GatewayServer(serviceGroup: ServiceGroup(configuration: group), routes: routes)
    }
}

/// What `worker` reads.
public struct WorkerConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var database: PostgresConfiguration
    public var processing: ProcessingConfiguration
    public var correlation: CorrelationConfiguration
    public var lifecycle: LifecycleConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        database = try PostgresConfiguration(environment: env)
        processing = try ProcessingConfiguration(environment: env)
        correlation = try CorrelationConfiguration(environment: env)
        lifecycle = try LifecycleConfiguration(environment: env)
    }
}

/// `mediagw worker`: the processing workers without the HTTP server.
public enum WorkerCommand {
    public static func build(
        _ configuration: WorkerConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger
    ) async throws -> ServiceGroup {
        let runtime = try await MediaRuntime.connect(storage: configuration.storage, database: configuration.database, logger: logger)
        let worker = WorkerService(runtime: runtime, configuration: configuration.processing, environment: environment)
        let correlation = MediaCorrelation.services(
            configuration.correlation,
            store: runtime.metadata,
            prepare: { try await runtime.migrate() },
            logger: logger
        )
        var group = ServiceGroupConfiguration(
            services: MediaTracing.services + runtime.services + correlation + [.init(service: worker)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        group.maximumGracefulShutdownDuration = configuration.lifecycle.shutdownTimeout
        return ServiceGroup(configuration: group)
    }
}

/// The processing workers as a service: each worker hands its jobs to a processor process of its own. On
/// graceful shutdown they stop claiming, finish the jobs in hand, then stop their processors.
struct WorkerService: Service {
    let runtime: MediaRuntime
    let runner: JobRunner<GatewayStores, ProcessPool>
    let pool: ProcessPool

    init(runtime: MediaRuntime, configuration: ProcessingConfiguration, environment: [String: String]) {
        self.runtime = runtime
        pool = ProcessPool(
            executable: configuration.processorExecutable,
            environment: environment,
            size: configuration.workers.concurrency,
            timeout: configuration.processing.timeout,
            logger: runtime.logger
        )
        runner = JobRunner(storage: runtime.stores, processing: pool, settings: configuration.workers, logger: runtime.logger)
    }

    func run() async throws {
        // the queue is a table of the schema: it must be there before the first claim
        try await runtime.migrate()
        await runner.run(stop: { Task.isShuttingDownGracefully })
        await pool.shutdown()
    }
}

/// Runs the reconciler every `interval` until shutdown.
struct ReconcilerService<Storage: MediaStores>: Service {
    let reconciler: Reconciler<Storage>
    let interval: Duration
    let grace: Duration
    let logger: Logger
    /// What must be done before the first pass (the schema migrated).
    let prepare: @Sendable () async throws -> Void

    func run() async throws {
        try await prepare()
        await everyInterval(interval) {
            do {
                _ = try await reconciler.run(grace: grace)
            } catch {
                logger.warning("reconcile pass failed; retrying next interval", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Samples the backlog gauges every `interval` until shutdown (the first time one interval after start,
/// once the schema is migrated).
struct BacklogMonitorService<Storage: MediaStores>: Service {
    let monitor: BacklogMonitor<Storage>
    let interval: Duration

    func run() async throws {
        await everyInterval(interval) { await monitor.sample() }
    }
}

/// Runs `body` every `interval` until graceful shutdown begins, the first time one interval after the call;
/// the wait ends at once when shutdown begins (a body in progress finishes).
func everyInterval(_ interval: Duration, _ body: () async -> Void) async {
    while !Task.isShuttingDownGracefully {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        } catch {
            return
        }
        await body()
    }
}

/// Runs one edge's purger every `interval` until shutdown; after a failure it waits twice as long each time
/// (up to 30 s), and the same events are purged again.
struct EdgePurgeService<Metadata: MetadataStore, Edge: EdgeCache>: Service {
    let purger: EdgePurger<Metadata, Edge>
    let interval: Duration
    let logger: Logger
    /// What must be done before the first pass (the schema migrated).
    let prepare: @Sendable () async throws -> Void

    func run() async throws {
        try await prepare()
        var wait = interval
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { [wait] in try await Task.sleep(for: wait) }
            } catch {
                return
            }
            do {
                // a full batch means more is waiting: read on at once
                while try await purger.pass().events >= purger.batch, !Task.isShuttingDownGracefully {}
                wait = interval
            } catch {
                logger.warning(
                    "could not purge deleted media from the edge; trying again",
                    metadata: ["edge": "\(purger.edge.name)", "error": "\(error)", "retry.after": "\(wait * 2)"]
                )
                wait = min(wait * 2, .seconds(30))
            }
        }
    }
}

/// Rotates the outbox at start and then every `interval` until shutdown; a failed rotation is tried again
/// after a minute (the days made ahead leave plenty of time).
struct OutboxRotationService<Metadata: MetadataStore>: Service {
    let rotator: OutboxRotator<Metadata>
    let interval: Duration
    let logger: Logger
    /// What must be done before the first rotation (the schema migrated).
    let prepare: @Sendable () async throws -> Void
    /// The rotation of the other day-partitioned tables (the correlation links), at the same time.
    let alongside: @Sendable (Date) async throws -> OutboxRotation

    func run() async throws {
        try await prepare()
        while !Task.isShuttingDownGracefully {
            var wait = interval
            do {
                try await rotator.rotate()
                let other = try await alongside(Date())
                if !other.droppedDays.isEmpty || other.addedDays > 0 {
                    logger.info(
                        "rotated the correlation links",
                        metadata: ["correlation.dropped_days": "\(other.droppedDays.count)", "correlation.added_days": "\(other.addedDays)"]
                    )
                }
            } catch {
                logger.warning("could not rotate the outbox; trying again", metadata: ["error": "\(error)", "retry.after": "60s"])
                wait = min(interval, .seconds(60))
            }
            do {
                try await cancelWhenGracefulShutdown { [wait] in try await Task.sleep(for: wait) }
            } catch {
                return
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
