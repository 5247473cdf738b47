import Foundation
import MediaCore
import PostgresMetadata
import PostgresNIO
import Testing

/// A PostgreSQL server that stops answering without closing the connection (a stopped backend here; a
/// balancer that keeps the client's side open after losing the server's, in production). PostgresNIO's
/// queries do not react to cancellation, so the store's deadline must not wait for them: the chaos run once
/// saw a job whose result was being recorded at the moment of a failover held by its worker, lease renewed,
/// for the rest of the run.
@Suite(.serialized) struct UnansweringDatabaseTests {
    @Test func aQueryThatNeverGetsAnAnswerTimesOutAtTheDeadline() async throws {
        // one connection, so that the stopped backend is the one the store's next operation uses
        let isolation = try await Isolation.make("UnansweringDatabase", overrides: ["MEDIAGW_DATABASE_MAX_CONNECTIONS": "1"])
        var backend: Int32 = 0
        for try await pid in try await isolation.client.query("SELECT pg_backend_pid()").decode(Int32.self) { backend = pid }
        try #require(backend > 0)
        #expect(kill(backend, SIGSTOP) == 0)
        // a store that waited for the query would wait until this lets the backend go: the checks below fail
        // then, instead of the test hanging
        let backstop = Task.detached {
            try await Task.sleep(for: .seconds(60))
            kill(backend, SIGCONT)
        }
        let started = ContinuousClock.now
        do {
            _ = try await isolation.metadata.uploadSet(UploadSetID.generate())
            Issue.record("a stopped server answered")
        } catch let error as MetadataStoreError {
            #expect(error.code == .timedOut, "a server that does not answer timed out (503 and Retry-After at the HTTP layer)")
            #expect(error.isTransient)
        }
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(40), "answered at the deadline (10 s by default), not when the server came back: \(waited)")
        backstop.cancel()
        kill(backend, SIGCONT)
        // once the server answers again, the abandoned query ends and its connection serves the next one
        var recovered = false
        for _ in 0..<100 where !recovered {
            do {
                _ = try await isolation.metadata.uploadSet(UploadSetID.generate())
                recovered = true
            } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(recovered, "the store answers again once the server does")
    }
}
