import ArgumentParser
import Foundation
import MediaApp
import MediaCore
import PostgresMetadata

/// `mediagw migrate`: apply the schema migrations that are not applied yet.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending PostgreSQL schema migrations (idempotent; the server also runs them at start)."
    )

    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        do {
            let (configuration, logger) = try options.load(defaultLogLevel: .warning)
            do {
                _ = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
                let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
                let report = try await withRunningClient(database.client) { try await database.migrate() }
                for migration in report.applied {
                    print("applied migration \(migration.version): \(migration.name)")
                }
                print(report.applied.isEmpty
                    ? "schema is up to date at version \(report.currentVersion)"
                    : "schema now at version \(report.currentVersion)")
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}
