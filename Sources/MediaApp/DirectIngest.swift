import Logging
import MediaCore
import PostgresMetadata
import RadosStore

/// The direct ingest target wired to Ceph and PostgreSQL (`mediagw ingest` without `--gateway`): the same
/// upload service, limits and settings as `mediagw serve` with this configuration.
public enum DirectIngest {
    public typealias Target = DirectIngestTarget<PostgresMetadataStore, RadosObjectStore>

    /// Connects, applies pending migrations, runs `body` with the target, then disconnects.
    public static func withTarget<T: Sendable>(
        configuration: GatewayConfiguration, server: ServerConfiguration, logger: Logger,
        _ body: @escaping @Sendable (Target) async throws -> T
    ) async throws -> T {
        _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
        let cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
        let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
        do {
            let result = try await withRunningClient(database.client) {
                try await database.migrate()
                let metadata = PostgresMetadataStore(database: database, logger: logger)
                let objects = RadosObjectStore(cluster: cluster)
                let signer = UploadTokenSigner(keys: server.uploadTokenKeys)
                let target = DirectIngestTarget(
                    media: MediaService(metadata: metadata, objects: objects, settings: server.uploads, tokens: signer, logger: logger),
                    uploads: UploadService(
                        metadata: metadata, objects: objects, pools: configuration.pools, settings: server.uploads, tokens: signer, logger: logger))
                return try await body(target)
            }
            await cluster.shutdown()
            return result
        } catch {
            await cluster.shutdown()
            throw error
        }
    }
}
