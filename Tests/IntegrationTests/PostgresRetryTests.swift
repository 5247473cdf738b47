import Foundation
import MediaCore
import MediaTesting
import PostgresNIO
import Synchronization
import Testing

@testable import PostgresMetadata

/// PostgreSQL rolls back one transaction of a deadlock and asks for it again; the store does, instead of
/// answering a client with an error for a conflict it did not cause.
@Suite struct PostgresRetryTests {
    @Test func aTransactionChosenAsADeadlockVictimIsRunAgain() async throws {
        let isolation = try await Isolation.suite("PostgresRetry")
        let table = "\"\(isolation.name)\".deadlock_\(UUID().uuidString.lowercased().prefix(8))"
        try await isolation.client.query("CREATE TABLE \(unescaped: table) (id int PRIMARY KEY)")
        try await isolation.client.query("INSERT INTO \(unescaped: table) VALUES (1), (2)")
        let attempts = Atomic<Int>(0)
        let victimHoldsOne = Atomic<Bool>(false)

        // the other transaction: row 2, then row 1 a little after the store's transaction took row 1 and
        // began to wait for row 2. The transaction that has waited for deadlock_timeout first looks for a
        // deadlock and is the one rolled back: the store's.
        let other = Task {
            try await isolation.client.withTransaction(logger: TestStack.logger) { connection in
                try await connection.query("SELECT 1 FROM \(unescaped: table) WHERE id = 2 FOR UPDATE", logger: TestStack.logger).consume()
                while !victimHoldsOne.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                try await Task.sleep(for: .milliseconds(400))
                try await connection.query("SELECT 1 FROM \(unescaped: table) WHERE id = 1 FOR UPDATE", logger: TestStack.logger).consume()
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        let client = isolation.client
        let result = try await isolation.metadata.run("deadlock_test") {
            try await client.withTransaction(logger: TestStack.logger) { connection in
                let attempt = attempts.add(1, ordering: .relaxed).newValue
                try await connection.query("SELECT 1 FROM \(unescaped: table) WHERE id = 1 FOR UPDATE", logger: TestStack.logger).consume()
                victimHoldsOne.store(true, ordering: .releasing)
                try await connection.query("SELECT 1 FROM \(unescaped: table) WHERE id = 2 FOR UPDATE", logger: TestStack.logger).consume()
                return attempt
            }
        }
        try await other.value
        #expect(result == 2, "the first attempt was the deadlock's victim, the second went through")
        #expect(attempts.load(ordering: .relaxed) == 2)
        try await isolation.client.query("DROP TABLE \(unescaped: table)")
    }

    @Test func deadlocksAndSerializationFailuresAreRetryableAndNothingElse() {
        #expect(!MetadataStoreError.isRetryableConflict(MetadataStoreError(.conflict, "a unique key")))
        #expect(!MetadataStoreError.isRetryableConflict(CancellationError()))
    }
}
