import Logging
import MediaCore
import PostgresMetadata
import RadosStore

/// One reconciler pass outside the server (`mediagw reconcile`).
public enum ReconcileCommand {
    public static func run(configuration: GatewayConfiguration, grace: Duration, logger: Logger) async throws -> String {
        try await withStores(configuration: configuration, logger: logger) { metadata, objects in
            let reconciler = Reconciler(metadata: metadata, objects: objects, pools: configuration.pools, logger: logger)
            return try await reconciler.run(grace: grace).description
        }
    }
}

/// For one-shot commands: connects to PostgreSQL (preflight, then the client running, migrations applied)
/// and to Ceph, runs `body` with both stores, and disconnects whatever happens.
func withStores<T: Sendable>(
    configuration: GatewayConfiguration, logger: Logger,
    _ body: @escaping @Sendable (PostgresMetadataStore, RadosObjectStore) async throws -> T
) async throws -> T {
    _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
    let cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
    let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
    do {
        let result = try await withRunningClient(database.client) {
            try await database.migrate()
            return try await body(PostgresMetadataStore(database: database, logger: logger), RadosObjectStore(cluster: cluster))
        }
        await cluster.shutdown()
        return result
    } catch {
        await cluster.shutdown()
        throw error
    }
}
