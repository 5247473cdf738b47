import Foundation
import MediaApp
import MediaCore
import PostgresMetadata
import PostgresNIO
import Synchronization
import Testing

/// The outbox's day partitions on the real PostgreSQL: old days dropped without stopping writers, the
/// coming days made by the gateway, and a reader behind the retention told so over HTTP.
@Suite(.serialized) struct OutboxRetentionTests {
    static let day: TimeInterval = 86_400

    /// A day ten days ago with `count` numbered events, made in SQL as ten days of traffic would have left
    /// it, in a slice whose outbox was empty: their numbers are 1...count.
    func oldDay(_ isolation: Isolation, count: Int) async throws -> (day: Date, name: String) {
        let day = OutboxRotation.day(of: Date()).addingTimeInterval(-10 * Self.day)
        let date = day.formatted(.iso8601.year().month().day())
        try await isolation.client.query("SELECT outbox_add_days(\(date)::date, \(date)::date)")
        try await isolation.client.query(
            """
            INSERT INTO outbox (seq, event_id, type, payload, created_at)
            SELECT g, gen_random_uuid(), 'test.old', '{}'::jsonb, \(day) + interval '1 hour'
            FROM generate_series(1, \(count)) g
            """
        )
        return (day, "outbox_" + date.replacingOccurrences(of: "-", with: ""))
    }

    func tableExists(_ isolation: Isolation, _ name: String) async throws -> Bool {
        for try await exists in try await isolation.client.query("SELECT to_regclass(\(name)) IS NOT NULL").decode(Bool.self) {
            return exists
        }
        return false
    }

    func record(_ store: PostgresMetadataStore, _ set: UploadSet) async throws -> Media {
        let id = MediaID.generate()
        return try await store.recordUpload(
            NewMedia(
                id: id,
                kind: .photo,
                ownerID: set.ownerID,
                uploadSetID: set.id,
                size: 1,
                sha256: String(repeating: "0", count: 64),
                mime: "image/jpeg",
                location: ObjectLocation(pool: "media.photo", key: "\(set.id)/\(id)")
            ),
            maxCount: 1000,
            now: Date()
        )
    }

    @Test func anOldDayIsDroppedWhileAWriterHoldsItsTransactionAndOtherWritersGoOn() async throws {
        // the detach must outlast the polling and the other writer below on a loaded machine: with the 5 s
        // default statement timeout it was once cut off in between (the CI run of f98630d)
        let isolation = try await Isolation.make("OutboxRetentionDrop", overrides: ["MEDIAGW_DATABASE_STATEMENT_TIMEOUT": "60s"])
        let store = isolation.metadata
        let old = try await oldDay(isolation, count: 100)
        let set = try await store.createUploadSet(
            NewUploadSet(ownerID: "retention", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600))
        )
        _ = try await record(store, set)

        // a writer's transaction stays open on today's events while the rotation runs
        let (held, holding) = AsyncStream<Void>.makeStream()
        let release = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let committed = Mutex<ContinuousClock.Instant?>(nil)
        let writer = Task {
            try await isolation.client.withTransaction(logger: TestStack.logger) { connection in
                try await connection.query(
                    "INSERT INTO outbox (event_id, type, payload) VALUES (gen_random_uuid(), 'test.slow', '{}'::jsonb)",
                    logger: TestStack.logger
                )
                holding.yield()
                await withCheckedContinuation { continuation in release.withLock { $0 = continuation } }
            }
            committed.withLock { $0 = .now }
        }
        var iterator = held.makeAsyncIterator()
        _ = await iterator.next()
        let rotation = Task {
            try await store.rotateOutbox(droppingDaysEndingBy: Date().addingTimeInterval(-7 * Self.day), daysAhead: 7, now: Date())
        }
        // the detach waits for the open transaction (it must not cut off a reader of the old day) ...
        func detachWaits() async throws -> Bool {
            for try await count in try await isolation.client.query(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE outbox DETACH PARTITION%' AND wait_event_type = 'Lock'"
            ).decode(Int.self) {
                return count > 0
            }
            return false
        }
        var waiting = false
        for _ in 0..<50 where !waiting {
            waiting = try await detachWaits()
            if !waiting { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(waiting, "the rotation reached its detach and waits for the open transaction")
        // ... while other writers are not held up behind it (a lock that stopped them would keep this one
        // waiting until the detach gave up)
        _ = try await record(store, set)
        let otherWriterDone = ContinuousClock.now
        #expect(try await detachWaits(), "the other writer finished while the detach still waited")
        while release.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        release.withLock { $0?.resume() }
        try await writer.value
        var done = try await rotation.value
        #expect(otherWriterDone < (try #require(committed.withLock { $0 })), "the other writer finished before the open transaction did")
        if done.droppedDays.isEmpty {
            // DETACH ... CONCURRENTLY also waits for older snapshots of the whole database: under the suite's
            // load another test's transaction can outlast the statement timeout. The next rotation finishes
            // the detach (FINALIZE), as it would in production.
            done = try await store.rotateOutbox(droppingDaysEndingBy: Date().addingTimeInterval(-7 * Self.day), daysAhead: 7, now: Date())
        } else {
            #expect(done.droppedDays == [old.day])
        }
        #expect(done.horizon == 100)
        #expect(try await !tableExists(isolation, old.name), "the day's table is gone, not emptied")
        do {
            _ = try await store.events(after: 40, limit: 10)
            Issue.record("a cursor inside the dropped day read on")
        } catch let error as MetadataStoreError {
            #expect(error.code == .cursorExpired)
        }
        let kept = try await store.events(after: 100, limit: 100)
        #expect(kept.map(\.type) == ["media.stored", "test.slow", "media.stored"], "today's events, numbered above the dropped ones")
        #expect(kept.first?.sequence == 101)
    }

    @Test func aDetachLeftPendingIsFinishedByTheNextRotation() async throws {
        let isolation = try await Isolation.make("OutboxRetentionPending")
        let store = isolation.metadata
        let old = try await oldDay(isolation, count: 5)
        // a detach cut short by its statement timeout (a long transaction) leaves the partition pending
        let (held, holding) = AsyncStream<Void>.makeStream()
        let release = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let reader = Task {
            try await isolation.client.withTransaction(logger: TestStack.logger) { connection in
                for try await _ in try await connection.query("SELECT count(*) FROM outbox", logger: TestStack.logger).decode(Int.self) {}
                holding.yield()
                await withCheckedContinuation { continuation in release.withLock { $0 = continuation } }
            }
        }
        var iterator = held.makeAsyncIterator()
        _ = await iterator.next()
        let interrupted = try await isolation.client.withConnection { connection in
            try await connection.query("SET statement_timeout = '300ms'", logger: TestStack.logger)
            var failed = false
            do {
                try await connection.query(
                    PostgresQuery(unsafeSQL: "ALTER TABLE outbox DETACH PARTITION \(old.name) CONCURRENTLY"),
                    logger: TestStack.logger
                )
            } catch {
                failed = true
            }
            try await connection.query("RESET statement_timeout", logger: TestStack.logger)
            return failed
        }
        #expect(interrupted, "the detach timed out waiting for the open transaction")
        while release.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        release.withLock { $0?.resume() }
        try await reader.value
        var pending = 0
        for try await count in try await isolation.client.query(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'outbox'::regclass AND inhdetachpending"
        ).decode(Int.self) {
            pending = count
        }
        #expect(pending == 1, "the interrupted detach is pending")
        _ = try await store.rotateOutbox(droppingDaysEndingBy: Date().addingTimeInterval(-7 * Self.day), daysAhead: 7, now: Date())
        #expect(try await !tableExists(isolation, old.name), "finished and dropped")
        do {
            _ = try await store.events(after: 0, limit: 10)
            Issue.record("a cursor inside the dropped day read on")
        } catch let error as MetadataStoreError {
            #expect((error.cause as? OutboxHorizon)?.horizon == 5)
        }
    }

    @Test func theGatewayMakesTheComingDaysAndAReaderBehindTheRetentionGets410() async throws {
        let isolation = try await Isolation.make("OutboxRetentionGateway")
        _ = try await oldDay(isolation, count: 3)
        let gateway = try await TestGateway.start(isolation, ["MEDIAGW_OUTBOX_DAYS_AHEAD": "9"])
        // the rotation at start drops the old day and makes nine days ahead (polled: it runs beside the server)
        let expected = OutboxRotation.day(of: Date()).addingTimeInterval(9 * Self.day).formatted(.iso8601.year().month().day())
        let expectedName = "outbox_" + expected.replacingOccurrences(of: "-", with: "")
        var (lastDay, horizon): (String?, Int64) = (nil, 0)
        for _ in 0..<200 where lastDay != expectedName || horizon != 3 {
            for try await row in try await isolation.client.query(
                """
                SELECT max(c.relname::text), (SELECT dropped_through FROM outbox_horizon) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'outbox'::regclass AND NOT i.inhdetachpending
                """
            ).decode((String?, Int64).self) {
                (lastDay, horizon) = row
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(lastDay == expectedName)
        #expect(horizon == 3)
        // the correlation links' days are made with the outbox's (right after them)
        var lastLinksDay: String?
        for _ in 0..<50 where lastLinksDay != "correlation_" + expected.replacingOccurrences(of: "-", with: "") {
            for try await name in try await isolation.client.query(
                "SELECT max(c.relname::text) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'correlation'::regclass"
            ).decode(String?.self) {
                lastLinksDay = name
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(lastLinksDay == "correlation_" + expected.replacingOccurrences(of: "-", with: ""))

        let behind = try await gateway.request(.GET, "/internal/v1/events?after=1")
        #expect(behind.status == 410)
        #expect(behind.errorCode == "cursor_expired")
        #expect(behind.text.contains("read on after 3"), "\(behind.text)")
        let onward = try await gateway.request(.GET, "/internal/v1/events?after=3")
        #expect(onward.status == 200)
        let metrics = try await gateway.request(.GET, "/metrics", token: nil).text
        #expect(metrics.contains("mediagw_outbox_days_ahead 9"), "the gauge of the days made ahead")
        #expect(metrics.contains("mediagw_outbox_horizon"))
        await gateway.stop()
    }
}
