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
        try await withStores(configuration: configuration, logger: logger) { metadata, objects in
            let signer = UploadTokenSigner(keys: server.uploadTokenKeys)
            let target = DirectIngestTarget(
                media: MediaService(metadata: metadata, objects: objects, settings: server.uploads, tokens: signer, logger: logger),
                uploads: UploadService(
                    metadata: metadata, objects: objects, pools: configuration.pools, settings: server.uploads, tokens: signer, logger: logger))
            return try await body(target)
        }
    }
}
