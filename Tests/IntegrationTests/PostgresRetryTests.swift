import Foundation
import MediaCore
import MediaTesting
import PostgresNIO
import Synchronization
import Testing

@testable import PostgresMetadata

/// PostgreSQL rolls back the victim of a deadlock or of a serialization failure and asks for it again;
/// the store does, instead of answering a client with an error for a conflict it did not cause.
@Suite struct PostgresRetryTests {
    /// A serialization failure made deterministically: the store's transaction reads a row in a
    /// repeatable-read snapshot, another one updates it and commits, then the first updates it too.
    @Test func aTransactionThatCannotBeSerializedIsRunAgain() async throws {
        let isolation = try await Isolation.suite("PostgresRetry")
        let table = "\"\(isolation.name)\".conflict_\(UUID().uuidString.lowercased().prefix(8))"
        try await isolation.client.query("CREATE TABLE \(unescaped: table) (id int PRIMARY KEY, v int NOT NULL)")
        try await isolation.client.query("INSERT INTO \(unescaped: table) VALUES (1, 0)")
        let attempts = Atomic<Int>(0)
        let snapshotTaken = Atomic<Bool>(false)
        let otherCommitted = Atomic<Bool>(false)
        let client = isolation.client

        // The other writer holds its connection before the store's transaction begins: on a loaded machine,
        // opening one while the transaction waits could outlast the store's deadline (a CI run saw it).
        let otherConnected = Atomic<Bool>(false)
        let other = Task {
            try await client.withConnection { connection in
                otherConnected.store(true, ordering: .releasing)
                while !snapshotTaken.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
                try await connection.query("UPDATE \(unescaped: table) SET v = v + 10 WHERE id = 1", logger: TestStack.logger)
                otherCommitted.store(true, ordering: .releasing)
            }
        }
        while !otherConnected.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
        let result = try await isolation.metadata.run("serialization_test") {
            try await client.withTransaction(logger: TestStack.logger) { connection in
                let attempt = attempts.add(1, ordering: .relaxed).newValue
                try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: TestStack.logger)
                try await connection.query("SELECT v FROM \(unescaped: table) WHERE id = 1", logger: TestStack.logger).consume()
                snapshotTaken.store(true, ordering: .releasing)
                while !otherCommitted.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
                try await connection.query("UPDATE \(unescaped: table) SET v = v + 1 WHERE id = 1", logger: TestStack.logger)
                return attempt
            }
        }
        try await other.value
        #expect(result == 2, "the first attempt could not be serialized, the second went through")
        #expect(attempts.load(ordering: .relaxed) == 2)
        let rows = try await client.query("SELECT v FROM \(unescaped: table) WHERE id = 1").decode(Int.self)
        var values: [Int] = []
        for try await value in rows { values.append(value) }
        #expect(values == [11], "both updates, each once")
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    @Test func deadlocksAndSerializationFailuresAreRetryableAndNothingElse() {
        #expect(!MetadataStoreError.isRetryableConflict(MetadataStoreError(.conflict, "a unique key")))
        #expect(!MetadataStoreError.isRetryableConflict(CancellationError()))
    }
}
