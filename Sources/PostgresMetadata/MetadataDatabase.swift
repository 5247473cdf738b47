import Foundation
import Logging
import MediaConcurrency
import MediaCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// The gateway's PostgreSQL: a `PostgresClient` connection pool (run it as a `Service`), the schema
/// migrations, and a preflight that turns a wrong URL, password or unreachable server into one line.
public final class MetadataDatabase: Sendable {
    public let configuration: PostgresConfiguration
    public let client: PostgresClient
    let logger: Logger

    public init(configuration: PostgresConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.client = PostgresClient(configuration: Self.clientConfiguration(configuration), backgroundLogger: logger)
    }

    static func clientConfiguration(_ configuration: PostgresConfiguration) -> PostgresClient.Configuration {
        var client = PostgresClient.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.username,
            password: configuration.password,
            database: configuration.database,
            tls: tls(configuration)
        )
        client.options.maximumConnections = configuration.maxConnections
        client.options.connectTimeout = configuration.connectTimeout
        client.options.additionalStartupParameters = startupParameters(configuration)
        return client
    }

    static func tls(_ configuration: PostgresConfiguration) -> PostgresClient.Configuration.TLS {
        switch configuration.tls {
        case .disable: .disable
        case .require: .require(.makeClientConfiguration())
        }
    }

    static func startupParameters(_ configuration: PostgresConfiguration) -> [(String, String)] {
        let milliseconds = Int(configuration.statementTimeout.seconds * 1000)
        return [
            ("statement_timeout", "\(milliseconds)"),
            ("lock_timeout", "\(milliseconds)"),
            ("idle_in_transaction_session_timeout", "\(milliseconds * 6)"),
            ("application_name", "mediagw"),
            ("search_path", configuration.schema),
        ]
    }

    /// What the preflight found.
    public struct ServerInfo: Sendable {
        public var version: String
        public var database: String
        public var user: String
    }

    /// Opens one connection (not through the pool) and asks the server who it is. Fails with a
    /// ``MetadataStoreError`` whose message is one line: unreachable, refused login, missing database.
    public static func preflight(_ configuration: PostgresConfiguration, logger: Logger) async throws -> ServerInfo {
        let redacted = configuration.redacted
        do {
            try configuration.validate()
        } catch {
            throw MetadataStoreError(.other, error.message)
        }
        do {
            return try await withDeadline(configuration.connectTimeout + configuration.statementTimeout) {
                let connection = try await PostgresConnection.connect(
                    on: MultiThreadedEventLoopGroup.singleton.any(),
                    configuration: PostgresConnection.Configuration(
                        host: configuration.host,
                        port: configuration.port,
                        username: configuration.username,
                        password: configuration.password,
                        database: configuration.database,
                        tls: connectionTLS(configuration)
                    ),
                    id: 0,
                    logger: logger
                )
                do {
                    let rows = try await connection.query(
                        "SELECT current_setting('server_version'), current_database(), current_user",
                        logger: logger
                    )
                    var info = ServerInfo(version: "?", database: "?", user: "?")
                    for try await (version, database, user) in rows.decode((String, String, String).self) {
                        info = ServerInfo(version: version, database: database, user: user)
                    }
                    try? await connection.close()
                    return info
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
        } catch {
            throw MetadataStoreError.translating(error, "connect", database: redacted)
        }
    }

    private static func connectionTLS(_ configuration: PostgresConfiguration) -> PostgresConnection.Configuration.TLS {
        switch configuration.tls {
        case .disable: .disable
        case .require: .require(try! NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }

    // MARK: Migrations

    /// The outcome of ``migrate()``.
    public struct MigrationReport: Sendable {
        public var applied: [Migration]
        public var currentVersion: Int
    }

    /// Applies the migrations that are not yet recorded, each in its own transaction, under an advisory
    /// lock so that gateways starting together do not race. Running it again is a no-op.
    @discardableResult
    public func migrate(_ migrations: [Migration] = Schema.migrations) async throws -> MigrationReport {
        do {
            return try await client.withConnection { connection in
                try await Self.lockForMigration(connection, schema: self.configuration.schema, logger: logger)
                do {
                    let report = try await self.applyPending(migrations, on: connection)
                    try await connection.query("SELECT pg_advisory_unlock(7261, hashtext(\(self.configuration.schema)))", logger: logger).consume()
                    return report
                } catch {
                    try? await connection.query("SELECT pg_advisory_unlock(7261, hashtext(\(self.configuration.schema)))", logger: logger).consume()
                    throw error
                }
            }
        } catch {
            throw MetadataStoreError.translating(error, "migrate", database: configuration.redacted)
        }
    }

    /// Takes the migration lock of `schema`, waiting for other migrators (another gateway starting) for up
    /// to two minutes. Polled with `pg_try_advisory_lock`: one blocking wait would be cut by
    /// `statement_timeout`. Each answer is read: a result dropped unread is cancelled, and the lock with it.
    static func lockForMigration(_ connection: PostgresConnection, schema: String, logger: Logger) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            var locked = false
            for try await taken in try await connection.query("SELECT pg_try_advisory_lock(7261, hashtext(\(schema)))", logger: logger).decode(
                Bool.self
            ) {
                locked = taken
            }
            if locked { return }
            guard ContinuousClock.now < deadline else {
                throw MetadataStoreError(.timedOut, "another migrator held the migration lock for two minutes")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private func applyPending(_ migrations: [Migration], on connection: PostgresConnection) async throws -> MigrationReport {
        // the schema name was validated as a plain identifier
        try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(configuration.schema)"), logger: logger)
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   bigint NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        var recorded: [Int: Int64] = [:]
        for try await (version, checksum) in try await connection.query(
            "SELECT version, checksum FROM schema_migrations",
            logger: logger
        ).decode((Int, Int64).self) {
            recorded[version] = checksum
        }
        var applied: [Migration] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            if let checksum = recorded[migration.version] {
                guard checksum == migration.checksum else {
                    throw MetadataStoreError(.other, "migration \(migration.version) (\(migration.name)) was changed after it was applied")
                }
                continue
            }
            try await connection.withTransaction(logger: logger) { transaction in
                for statement in migration.statements {
                    try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await transaction.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                    logger: logger
                )
            }
            logger.info("applied migration", metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"])
            applied.append(migration)
        }
        let known = Set(recorded.keys).union(applied.map(\.version))
        return MigrationReport(applied: applied, currentVersion: known.max() ?? 0)
    }

    /// The highest applied migration version, 0 for an empty database.
    public func schemaVersion() async throws -> Int {
        do {
            let rows = try await client.query(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                logger: logger
            )
            for try await version in rows.decode(Int.self) { return version }
            return 0
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
            return 0
        } catch {
            throw MetadataStoreError.translating(error, "read schema version", database: configuration.redacted)
        }
    }
}

/// Runs `body` with the client's `run()` active, then stops the client: for one-shot commands.
public func withRunningClient<T: Sendable>(_ client: PostgresClient, _ body: @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        // let run() start first, so that the first lease does not find the pool idle
        try await Task.sleep(for: .milliseconds(10))
        return try await body()
    }
}

extension PostgresRowSequence {
    /// Reads the rows to the end (and with them the statement's outcome), keeping none.
    func consume() async throws {
        for try await _ in self {}
    }
}
