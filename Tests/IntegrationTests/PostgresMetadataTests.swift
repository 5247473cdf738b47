import Foundation
import Logging
import MediaCore
import MediaTesting
import PostgresMetadata
import PostgresNIO
import Testing

@Suite struct MigrationTests {
    /// A database configuration whose tables live in a fresh, empty schema.
    func freshSchema() throws -> PostgresConfiguration {
        var configuration = try TestStack.database()
        configuration.schema = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        return configuration
    }

    func withDatabase<T: Sendable>(_ configuration: PostgresConfiguration, _ body: @Sendable (MetadataDatabase) async throws -> T) async throws -> T {
        let database = MetadataDatabase(configuration: configuration, logger: TestStack.logger)
        return try await withRunningClient(database.client) {
            do {
                let result = try await body(database)
                try await database.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(configuration.schema) CASCADE"))
                return result
            } catch {
                _ = try? await database.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(configuration.schema) CASCADE"))
                throw error
            }
        }
    }

    @Test func migrationsApplyToAnEmptySchemaThenRerunAsANoOp() async throws {
        try await withDatabase(try freshSchema()) { database in
            #expect(try await database.schemaVersion() == 0)
            let first = try await database.migrate()
            #expect(first.applied.map(\.version) == Schema.migrations.map(\.version))
            #expect(first.currentVersion == Schema.migrations.last?.version)

            let second = try await database.migrate()
            #expect(second.applied.isEmpty)
            #expect(second.currentVersion == first.currentVersion)
            #expect(try await database.schemaVersion() == first.currentVersion)

            let tables = try await database.client.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = \(database.configuration.schema) ORDER BY 1"
            ).decode(String.self).reduce(into: [String]()) { $0.append($1) }
            #expect(
                tables.filter { !$0.hasPrefix("outbox_2") && !$0.hasPrefix("correlation_2") } == [
                    "correlation", "jobs", "media", "media_audio", "media_photo", "media_video", "outbox", "outbox_consumers", "outbox_horizon",
                    "renditions",
                    "resumable_uploads", "schema_migrations", "upload_sets",
                ]
            )
            #expect(tables.filter { $0.hasPrefix("outbox_2") }.count == 8, "the outbox's days, today and seven ahead: \(tables)")
        }
    }

    @Test func mediaIsPartitionedByKind() async throws {
        try await withDatabase(try freshSchema()) { database in
            try await database.migrate()
            let partitions = try await database.client.query(
                """
                SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                JOIN pg_namespace n ON n.oid = p.relnamespace
                WHERE p.relname = 'media' AND n.nspname = \(database.configuration.schema) ORDER BY 1
                """
            ).decode((String, String).self).reduce(into: [String]()) { $0.append("\($1.0) \($1.1)") }
            #expect(
                partitions == ["media_audio FOR VALUES IN ('audio')", "media_photo FOR VALUES IN ('photo')", "media_video FOR VALUES IN ('video')"]
            )
        }
    }

    @Test func aMigrationChangedAfterItWasAppliedIsRefused() async throws {
        try await withDatabase(try freshSchema()) { database in
            let original = [Migration(version: 1, name: "t", statements: ["CREATE TABLE t (a int)"])]
            try await database.migrate(original)
            let edited = [Migration(version: 1, name: "t", statements: ["CREATE TABLE t (a bigint)"])]
            await #expect {
                try await database.migrate(edited)
            } throws: { error in
                (error as? MetadataStoreError)?.message.contains("was changed after it was applied") == true
            }
        }
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        try await withDatabase(try freshSchema()) { database in
            let reports = try await withThrowingTaskGroup(of: MetadataDatabase.MigrationReport.self) { group in
                for _ in 0..<4 { group.addTask { try await database.migrate() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.flatMap(\.applied).count == Schema.migrations.count)
        }
    }
}
