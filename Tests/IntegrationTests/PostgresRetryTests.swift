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
    /// Both connections are taken from the pool before the store's deadline starts: on a loaded machine,
    /// opening one while the transaction waits outlasted that deadline (seen twice on the project's CI).
    @Test func aTransactionThatCannotBeSerializedIsRunAgain() async throws {
        let isolation = try await Isolation.suite("PostgresRetry")
        let table = "\"\(isolation.name)\".conflict_\(UUID().uuidString.lowercased().prefix(8))"
        let client = isolation.client
        try await client.query("CREATE TABLE \(unescaped: table) (id int PRIMARY KEY, v int NOT NULL)")
        try await client.query("INSERT INTO \(unescaped: table) VALUES (1, 0)")
        let signals = Signals()
        let logger = TestStack.logger

        let writer = Task {
            try await client.withConnection { other in
                signals.otherConnected.store(true, ordering: .releasing)
                while !signals.snapshotTaken.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
                try await other.query("UPDATE \(unescaped: table) SET v = v + 10 WHERE id = 1", logger: logger)
                signals.otherCommitted.store(true, ordering: .releasing)
            }
        }
        while !signals.otherConnected.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
        let result = try await client.withConnection { mine in
            try await isolation.metadata.run("serialization_test") {
                let attempt = signals.attempts.add(1, ordering: .relaxed).newValue
                try await mine.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: logger)
                do {
                    try await mine.query("SELECT v FROM \(unescaped: table) WHERE id = 1", logger: logger).consume()
                    signals.snapshotTaken.store(true, ordering: .releasing)
                    while !signals.otherCommitted.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(5)) }
                    try await mine.query("UPDATE \(unescaped: table) SET v = v + 1 WHERE id = 1", logger: logger)
                    try await mine.query("COMMIT", logger: logger)
                    return attempt
                } catch {
                    _ = try? await mine.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
        try await writer.value
        #expect(result == 2, "the first attempt could not be serialized, the second went through")
        #expect(signals.attempts.load(ordering: .relaxed) == 2)
        let rows = try await client.query("SELECT v FROM \(unescaped: table) WHERE id = 1").decode(Int.self)
        var values: [Int] = []
        for try await value in rows { values.append(value) }
        #expect(values == [11], "both updates, each once")
        try await client.query("DROP TABLE \(unescaped: table)")
    }

    /// What the two transactions tell each other.
    final class Signals: Sendable {
        let attempts = Atomic<Int>(0)
        let snapshotTaken = Atomic<Bool>(false)
        let otherConnected = Atomic<Bool>(false)
        let otherCommitted = Atomic<Bool>(false)
    }

    @Test func deadlocksAndSerializationFailuresAreRetryableAndNothingElse() {
        #expect(!MetadataStoreError.isRetryableConflict(MetadataStoreError(.conflict, "a unique key")))
        #expect(!MetadataStoreError.isRetryableConflict(CancellationError()))
    }
}
