import Logging
import MediaCore
import PostgresMetadata
import RadosStore

/// One reconciler pass outside the server (`mediagw reconcile`).
public enum ReconcileCommand {
    public static func run(configuration: GatewayConfiguration, grace: Duration, logger: Logger) async throws -> String {
        _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
        let cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
        let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
        do {
            let report = try await withRunningClient(database.client) {
                try await database.migrate()
                let reconciler = Reconciler(
                    metadata: PostgresMetadataStore(database: database, logger: logger), objects: RadosObjectStore(cluster: cluster),
                    pools: configuration.pools, logger: logger)
                return try await reconciler.run(grace: grace)
            }
            await cluster.shutdown()
            return report.description
        } catch {
            await cluster.shutdown()
            throw error
        }
    }
}
