import Foundation
import Logging
import MediaCore
import MediaIngest
import PostgresMetadata

/// What `reconcile` reads.
public struct ReconcileConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var database: PostgresConfiguration
    public var reconciler: ReconcilerConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        database = try PostgresConfiguration(environment: env)
        reconciler = try ReconcilerConfiguration(environment: env)
    }
}

/// One reconciler pass outside the server (`mediagw reconcile`); returns its report.
public enum ReconcileCommand {
    public static func run(_ configuration: ReconcileConfiguration, logger: Logger) async throws -> String {
        let runtime = try await MediaRuntime.connect(storage: configuration.storage, database: configuration.database, logger: logger)
        let grace = configuration.reconciler.grace
        return try await runtime.run { runtime in try await runtime.reconciler().run(grace: grace).description }
    }
}

/// What `migrate` reads: PostgreSQL only.
public struct MigrateConfiguration: Sendable {
    public var database: PostgresConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        database = try PostgresConfiguration(environment: env)
    }
}

/// `mediagw migrate`: applies pending schema migrations; returns one line per applied migration, then the
/// schema version.
public enum MigrateCommand {
    public static func run(_ configuration: MigrateConfiguration, logger: Logger) async throws -> [String] {
        let runtime = try await MediaRuntime.connect(storage: nil, database: configuration.database, logger: logger)
        return try await runtime.run(migrate: false) { runtime in
            let report = try await runtime.migrate()
            return report.applied.map { "applied migration \($0.version): \($0.name)" }
                + [
                    report.applied.isEmpty
                        ? "schema is up to date at version \(report.currentVersion)" : "schema now at version \(report.currentVersion)"
                ]
        }
    }
}

/// `mediagw plans`: the plans PostgreSQL chooses for the hot statements (see
/// ``PostgresMetadataStore/hotStatementPlans()``), with the indexes each reads through; reads PostgreSQL only.
public enum PlansCommand {
    public static func run(_ configuration: MigrateConfiguration, logger: Logger) async throws -> [String] {
        let runtime = try await MediaRuntime.connect(storage: nil, database: configuration.database, logger: logger)
        return try await runtime.run(migrate: false) { runtime in
            try await runtime.metadata.hotStatementPlans().flatMap { plan in
                var summary = plan.scansATable ? "reads a whole table" : "through \(plan.indexes.joined(separator: ", "))"
                if plan.rowsFilteredOut > 0 { summary += "; \(plan.rowsFilteredOut) rows read and filtered out" }
                return ["\(plan.statement): \(summary)"] + plan.lines.map { "    " + $0 }
            }
        }
    }
}

/// What direct ingest reads: the stores and the upload rules, no secret.
public struct DirectIngestConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var database: PostgresConfiguration
    public var uploads: UploadSettings
    public var correlation: CorrelationConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        database = try PostgresConfiguration(environment: env)
        // on by default here, unlike `serve`: a bulk run has no one waiting on a single file, so a file may
        // wait for the batch in flight; batches save PostgreSQL's CPU per file and round trips
        database.groupCommit = try env.bool("MEDIAGW_DATABASE_GROUP_COMMIT", default: true)
        uploads = try UploadSettings(environment: env)
        correlation = try CorrelationConfiguration(environment: env)
    }
}

/// `mediagw ingest` without `--gateway`: the same upload rules as `serve`, straight into Ceph and PostgreSQL.
public enum DirectIngest {
    public typealias Target = DirectIngestTarget<GatewayStores>

    /// Connects, applies pending migrations, runs `body` with the target, then disconnects.
    public static func withTarget<T: Sendable>(
        _ configuration: DirectIngestConfiguration,
        logger: Logger,
        _ body: @escaping @Sendable (Target) async throws -> T
    ) async throws -> T {
        let runtime = try await MediaRuntime.connect(storage: configuration.storage, database: configuration.database, logger: logger)
        return try await runtime.run { runtime in
            try await MediaCorrelation.recording(configuration.correlation, store: runtime.metadata, logger: logger) {
                try await body(
                    DirectIngestTarget(
                        media: runtime.mediaService(configuration.uploads),
                        uploads: runtime.uploadService(configuration.uploads)
                    )
                )
            }
        }
    }
}
