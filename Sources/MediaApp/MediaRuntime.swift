import Foundation
import Logging
import MediaCore
import OpenSSLHashing
import PostgresMetadata
import RadosStore
import ServiceLifecycle
import Synchronization

/// The stores of a deployment: PostgreSQL for metadata, RADOS for blobs and the pending ledger.
public typealias GatewayStores = Stores<PostgresMetadataStore, RadosBlobStore, RadosPendingLedger>

/// The composition root: the one place that opens the adapters from configuration and wires the use cases
/// over them. Every command (`serve`, `worker`, `reconcile`, `ingest`, `migrate`, `check`, the processor
/// and the benchmarks) starts here, and opens only what it uses: Ceph, PostgreSQL, or both.
///
/// A process has one runtime, so one Ceph connection, one PostgreSQL pool and one pending ledger (one
/// ledger shard per process), shared by its uploads, workers and reconciler.
public struct MediaRuntime: Sendable {
    public let logger: Logger
    let cluster: RadosCluster?
    let database: MetadataDatabase?
    let replica: MetadataDatabase?
    /// Shared by every copy of the metadata store, when the database configuration asks for it.
    let groupCommit: PostgresGroupCommit?
    let pools: StoragePools?
    let ledger: RadosPendingLedger?
    private let migration = MigrationOnce()

    /// Connects to what is configured: Ceph (`storage`) and PostgreSQL (`database`, checked by a preflight
    /// connection; its pool runs as a service), and a read replica if one is given (not checked at start:
    /// reads fall back to the primary while it does not answer). Each failure is one line saying what is wrong.
    public static func connect(
        storage: StorageConfiguration?,
        database: PostgresConfiguration?,
        replica: PostgresConfiguration? = nil,
        logger: Logger
    ) async throws -> MediaRuntime {
        var metadata: MetadataDatabase?
        if let database {
            _ = try await MetadataDatabase.preflight(database, logger: logger)
            metadata = MetadataDatabase(configuration: database, logger: logger)
        }
        let replicaDatabase = replica.map { MetadataDatabase(configuration: $0, logger: logger) }
        var cluster: RadosCluster?
        var ledger: RadosPendingLedger?
        if let storage {
            let connected = try await RadosCluster.connect(storage.rados, pools: storage.pools.all, logger: logger)
            cluster = connected
            ledger = RadosPendingLedger(blobs: RadosBlobStore(cluster: connected))
        }
        let groupCommit = metadata.flatMap { metadata in
            database?.groupCommit == true ? PostgresGroupCommit(store: PostgresMetadataStore(database: metadata, logger: logger)) : nil
        }
        return MediaRuntime(
            logger: logger,
            cluster: cluster,
            database: metadata,
            replica: replicaDatabase,
            groupCommit: groupCommit,
            pools: storage?.pools,
            ledger: ledger
        )
    }

    /// The long-lived resources, as services of a `ServiceGroup`, in start order: PostgreSQL's connection
    /// pool, then the Ceph connection (stopped in reverse order, after what uses them).
    public var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let database { services.append(.init(service: database.client)) }
        if let replica { services.append(.init(service: replica.client)) }
        if let cluster { services.append(.init(service: cluster)) }
        // stopped before the Ceph connection: the ledger entries cleared after answers are cleared first
        services.append(.init(service: BackgroundWorkService()))
        return services
    }

    /// For one-shot commands: runs `body` with the PostgreSQL pool running (and the schema migrated), then
    /// disconnects from both stores, whatever happens.
    public func run<T: Sendable>(migrate: Bool = true, _ body: @escaping @Sendable (MediaRuntime) async throws -> T) async throws -> T {
        try await MediaTracing.withExporter(logger: logger) { try await runUntraced(migrate: migrate, body) }
    }

    private func runUntraced<T: Sendable>(migrate: Bool, _ body: @escaping @Sendable (MediaRuntime) async throws -> T) async throws -> T {
        do {
            let result: T
            if let database {
                result = try await withRunningClient(database.client) {
                    if migrate { try await database.migrate() }
                    return try await body(self)
                }
            } else {
                result = try await body(self)
            }
            await BackgroundWork.shared.drained()
            await cluster?.shutdown()
            return result
        } catch {
            await BackgroundWork.shared.drained()
            await cluster?.shutdown()
            throw error
        }
    }

    /// Disconnects from Ceph, for a runtime whose services never ran in a group (one opened for Ceph only).
    public func close() async {
        await BackgroundWork.shared.drained()
        await cluster?.shutdown()
    }

    // MARK: The adapters

    /// PostgreSQL, as the metadata port.
    public var metadata: PostgresMetadataStore {
        guard let database else { preconditionFailure("this runtime was opened without PostgreSQL") }
        return PostgresMetadataStore(database: database, replica: replica, groupCommit: groupCommit, logger: logger)
    }

    /// RADOS, as the blob port.
    public var blobs: RadosBlobStore {
        guard let cluster else { preconditionFailure("this runtime was opened without Ceph") }
        return RadosBlobStore(cluster: cluster)
    }

    /// This process's pending ledger.
    public var pendingLedger: RadosPendingLedger {
        guard let ledger else { preconditionFailure("this runtime was opened without Ceph") }
        return ledger
    }

    /// The pools of originals and renditions.
    public var storagePools: StoragePools {
        guard let pools else { preconditionFailure("this runtime was opened without Ceph") }
        return pools
    }

    /// All three ports.
    public var stores: GatewayStores { Stores(metadata: metadata, blobs: blobs, ledger: pendingLedger) }

    /// Applies pending schema migrations (needs the PostgreSQL pool running), once per runtime: whoever
    /// calls it first runs them, later callers (the server, the workers, the reconciler) wait for that run.
    @discardableResult
    public func migrate() async throws -> MetadataDatabase.MigrationReport {
        guard let database else { preconditionFailure("this runtime was opened without PostgreSQL") }
        return try await migration.run { try await database.migrate() }
    }

    /// The schema version (needs the PostgreSQL pool running).
    public func schemaVersion() async throws -> Int {
        guard let database else { preconditionFailure("this runtime was opened without PostgreSQL") }
        return try await database.schemaVersion()
    }

    // MARK: The use cases

    public func uploadService(_ settings: UploadSettings, clock: MediaClock = .system, faults: FaultInjection = .none) -> UploadService<GatewayStores>
    {
        UploadService(storage: stores, pools: storagePools, settings: settings, clock: clock, faults: faults, logger: logger)
    }

    public func resumableService(
        _ uploads: UploadSettings,
        _ settings: ResumableSettings,
        clock: MediaClock = .system
    )
        -> ResumableUploadService<GatewayStores>
    {
        ResumableUploadService(
            storage: stores,
            pools: storagePools,
            uploadSettings: uploads,
            settings: settings,
            hashing: OpenSSLSHA256(),
            clock: clock,
            logger: logger
        )
    }

    public func mediaService(_ settings: UploadSettings, originCache: OriginLookupCache? = nil) -> MediaService<GatewayStores> {
        MediaService(storage: stores, settings: settings, originCache: originCache, logger: logger)
    }

    public func reconciler(faults: FaultInjection = .none) -> Reconciler<GatewayStores> {
        Reconciler(storage: stores, pools: storagePools, faults: faults, logger: logger)
    }

    public func readinessProbe() -> ReadinessProbe<GatewayStores> {
        ReadinessProbe(storage: stores, pools: storagePools)
    }
}

/// A migration run shared by everything that needs the schema: one run, and every caller gets its outcome
/// (a failed run is tried again by the next caller).
final class MigrationOnce: Sendable {
    private let task = Mutex<Task<MetadataDatabase.MigrationReport, any Error>?>(nil)

    func run(_ body: @escaping @Sendable () async throws -> MetadataDatabase.MigrationReport) async throws -> MetadataDatabase.MigrationReport {
        let current = task.withLock { task in
            if let task { return task }
            let started = Task { try await body() }
            task = started
            return started
        }
        do {
            return try await current.value
        } catch {
            task.withLock { if $0 == current { $0 = nil } }
            throw error
        }
    }
}
/// Waits, once shutdown begins, for the background work (``BackgroundWork``) to end: placed after the
/// Ceph connection in the group, it is stopped before it.
struct BackgroundWorkService: Service {
    func run() async throws {
        try? await gracefulShutdown()
        await BackgroundWork.shared.drained()
    }
}
