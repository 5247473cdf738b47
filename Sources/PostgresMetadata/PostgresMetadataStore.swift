import Foundation
import Logging
import MediaConcurrency
import MediaCore
import Metrics
import PostgresNIO
import Tracing

/// The ``MetadataStore`` on PostgreSQL.
///
/// Every operation runs under the configured statement deadline; failures come out as
/// ``MetadataStoreError`` (unreachable or slow database: `unavailable`/`timedOut`).
///
/// With a `replica` (a hot standby), the reads that tolerate it (a set, its media, a media item, its
/// renditions, the origin's lookup) go there first, and to the primary when the standby does not have what
/// was asked for yet (read-your-writes: a just-uploaded item is found), when its answer is not good enough
/// (the origin's item not ready there yet), or when it does not answer. Everything that writes, claims,
/// numbers events or decides what an object is (the reconciler's question) stays on the primary.
public struct PostgresMetadataStore: MetadataStore {
    public let database: MetadataDatabase
    /// A hot standby for the reads that tolerate it; `nil`: everything on the primary.
    public let replica: MetadataDatabase?
    /// When set, sets opened, uploads recorded and sets committed at the same time share transactions
    /// (``PostgresGroupCommit``).
    public let groupCommit: PostgresGroupCommit?
    let logger: Logger

    public init(database: MetadataDatabase, replica: MetadataDatabase? = nil, groupCommit: PostgresGroupCommit? = nil, logger: Logger) {
        self.database = database
        self.replica = replica
        self.groupCommit = groupCommit
        self.logger = logger
    }

    var client: PostgresClient { database.client }

    /// Runs a read on the replica, then on the primary when there is no replica, when the replica's answer
    /// `needsPrimary`, or when the replica fails.
    func read<T: Sendable>(
        _ operation: String,
        needsPrimary: @escaping @Sendable (T) -> Bool,
        _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        let primary = database.client
        guard let replica else { return try await run(operation) { try await body(primary) } }
        do {
            let answer = try await run(operation + "_replica", on: replica) { try await body(replica.client) }
            if !needsPrimary(answer) { return answer }
            ReplicaMetrics.fallbacks.increment()
        } catch {
            ReplicaMetrics.failures.increment()
            logger.debug("the read replica failed; asking the primary", metadata: ["error": "\(error)"])
        }
        return try await run(operation) { try await body(primary) }
    }

    /// Runs one database operation under the statement deadline, times it and translates its errors.
    func run<T: Sendable>(
        _ operation: String,
        on database: MetadataDatabase? = nil,
        _ body: @escaping @Sendable () async throws -> T
    )
        async throws -> T
    {
        let configuration = (database ?? self.database).configuration
        let started = ContinuousClock.now
        defer {
            ReplicaMetrics.durations(operation).recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        }
        return try await withClientSpan("postgresql \(operation)") { span in
            span?.attributes["db.system.name"] = "postgresql"
            span?.attributes["db.operation.name"] = operation
            span?.attributes["server.address"] = configuration.host
            span?.attributes["server.port"] = configuration.port
            return try await retryingConflicts(operation, configuration, span, body)
        }
    }

    /// PostgreSQL's answer to a deadlock or a serialization failure is to roll the transaction back and ask
    /// for it again; every body here is one transaction (or statements safe to repeat).
    private func retryingConflicts<T: Sendable>(
        _ operation: String,
        _ configuration: PostgresConfiguration,
        _ span: (any Span)?,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await Outbox.Appended.linking {
                    try await withDeadline(configuration.connectTimeout + configuration.statementTimeout, operation: body)
                }
            } catch {
                guard attempt < Self.conflictAttempts, MetadataStoreError.isRetryableConflict(error) else {
                    let translated = MetadataStoreError.translating(error, operation, database: configuration.redacted)
                    span?.attributes["error.type"] = "\(translated.code)"
                    throw translated
                }
                span?.addEvent(SpanEvent(name: "retry after a conflict", attributes: ["attempt": .int64(Int64(attempt))]))
                logger.debug(
                    "retrying after a deadlock or serialization failure",
                    metadata: ["postgres.operation": "\(operation)", "attempt": "\(attempt)"]
                )
                attempt += 1
                try? await Task.sleep(for: .milliseconds(Int64.random(in: 5...40) * Int64(attempt)))
            }
        }
    }

    /// How many times a transaction is tried when PostgreSQL rolls it back for a deadlock or a
    /// serialization failure.
    static let conflictAttempts = 4

    public func createUploadSet(_ new: NewUploadSet) async throws -> UploadSet {
        if let groupCommit { return try await groupCommit.sets.submit(new) }
        return try await createOneUploadSet(new)
    }

    func createOneUploadSet(_ new: NewUploadSet) async throws -> UploadSet {
        try await run("create_upload_set") { [client, logger] in
            for try await set in try await client.execute(CreateUploadSetStatement(set: new), logger: logger) { return set }
            throw MetadataStoreError(.other, "create upload set: no row returned")
        }
    }

    public func uploadSet(_ id: UploadSetID) async throws -> UploadSet? {
        try await read(
            "read_upload_set",
            needsPrimary: { $0 == nil },
            { [logger] client in
                for try await set in try await client.execute(UploadSetStatement(id: id), logger: logger) { return set }
                return nil
            }
        )
    }

    public func media(inSet id: UploadSetID) async throws -> [Media] {
        try await read(
            "read_set_media",
            needsPrimary: { $0.isEmpty },
            { [logger] client in
                let rows = try await client.query(
                    "SELECT \(unescaped: MediaRow.columns) FROM media WHERE upload_set_id = \(id.uuid) ORDER BY created_at, id",
                    logger: logger
                )
                return try await MediaRow.all(rows)
            }
        )
    }

    public func recordUpload(_ new: NewMedia, maxCount: Int, now: Date) async throws -> Media {
        let request = UploadRecordRequest(media: new, maxCount: maxCount, now: now)
        let media: Media
        if let groupCommit {
            media = try await groupCommit.records.submit(request)
        } else {
            media = try await recordOneUpload(request)
        }
        Correlation.link(.media(media.id), .event(new.eventID), "media.stored")
        return media
    }

    func recordOneUpload(_ request: UploadRecordRequest) async throws -> Media {
        try await run("record_upload") { [client, logger] in
            var outcome: RecordUploadStatement.Outcome?
            for try await row in try await client.execute(request.statement, logger: logger) {
                outcome = row
            }
            return try request.media(from: outcome)
        }
    }

    public func commitUploadSet(_ id: UploadSetID, now: Date) async throws -> UploadSet {
        if let groupCommit { return try await groupCommit.commits.submit(UploadSetCommitRequest(id: id, now: now)) }
        return try await commitOneUploadSet(UploadSetCommitRequest(id: id, now: now))
    }

    func commitOneUploadSet(_ request: UploadSetCommitRequest) async throws -> UploadSet {
        try await run("commit_upload_set") { [client, logger] in
            var answer: CommitUploadSetsStatement.Row?
            for try await row in try await client.execute(CommitUploadSetStatement(request: request), logger: logger) { answer = row }
            return try request.set(from: answer)
        }
    }

    public func media(_ id: MediaID) async throws -> Media? {
        try await read(
            "read_media",
            needsPrimary: { $0 == nil },
            { [logger] client in
                for try await media in try await client.execute(MediaStatement(id: id), logger: logger) { return media }
                return nil
            }
        )
    }

    public func tombstoneMedia(_ id: MediaID, now: Date) async throws -> Media? {
        try await run("tombstone_media") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                guard
                    let current = try await MediaRow.first(
                        try await connection.query(
                            "SELECT \(unescaped: MediaRow.columns) FROM media WHERE id = \(id.uuid)",
                            logger: logger
                        )
                    )
                else { return nil }
                if current.deletedAt != nil { return current }
                // lock order everywhere: the set, then its media
                try await connection.query("SELECT 1 FROM upload_sets WHERE id = \(current.uploadSetID.uuid) FOR UPDATE", logger: logger).consume()
                guard
                    let deleted = try await MediaRow.first(
                        try await connection.query(
                            """
                            UPDATE media SET state = 'deleted', deleted_at = \(now)
                            WHERE kind = \(current.kind.rawValue) AND id = \(id.uuid) AND deleted_at IS NULL
                            RETURNING \(unescaped: MediaRow.columns)
                            """,
                            logger: logger
                        )
                    )
                else { return current }
                try await connection.query(
                    """
                    UPDATE upload_sets SET \(unescaped: UploadSetRow.counter(deleted.kind)) = \(unescaped: UploadSetRow.counter(deleted.kind)) - 1
                    WHERE id = \(deleted.uploadSetID.uuid) AND \(unescaped: UploadSetRow.counter(deleted.kind)) > 0
                    """,
                    logger: logger
                )
                try await connection.query("DELETE FROM jobs WHERE media_id = \(id.uuid) AND state IN ('queued', 'running')", logger: logger)
                let renditions = try await Outbox.renditions(of: [id], on: connection, logger: logger)
                try await Outbox.append([.mediaDeleted(deleted, reason: "deleted", renditions: renditions[id] ?? [])], on: connection, logger: logger)
                return deleted
            }
        }
    }

    public func expireDrafts(now: Date, limit: Int) async throws -> [UploadSetID] {
        try await run("expire_drafts") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                var expired: [UUID] = []
                for try await id in try await connection.query(
                    """
                    WITH due AS (
                        SELECT id FROM upload_sets WHERE state = 'draft' AND expires_at <= \(now)
                        ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    )
                    UPDATE upload_sets s SET state = 'expired', photo_count = 0, audio_count = 0, video_count = 0
                    FROM due WHERE s.id = due.id RETURNING s.id
                    """,
                    logger: logger
                ).decode(UUID.self) {
                    expired.append(id)
                }
                guard !expired.isEmpty else { return [] }
                let media = try await MediaRow.all(
                    try await connection.query(
                        """
                        UPDATE media SET state = 'deleted', deleted_at = \(now)
                        WHERE upload_set_id = ANY(\(expired)) AND deleted_at IS NULL
                        RETURNING \(unescaped: MediaRow.columns)
                        """,
                        logger: logger
                    )
                )
                try await connection.query(
                    "DELETE FROM jobs WHERE media_id = ANY(\(media.map(\.id.uuid))) AND state IN ('queued', 'running')",
                    logger: logger
                )
                let renditions = try await Outbox.renditions(of: media.map(\.id), on: connection, logger: logger)
                try await Outbox.append(
                    media.map { .mediaDeleted($0, reason: "set_expired", renditions: renditions[$0.id] ?? []) },
                    on: connection,
                    logger: logger
                )
                return expired.map(UploadSetID.init(uuid:))
            }
        }
    }

    public func mediaAwaitingPurge(limit: Int) async throws -> [Media] {
        try await run("media_awaiting_purge") { [client, logger] in
            try await MediaRow.all(
                try await client.query(
                    """
                    SELECT \(unescaped: MediaRow.columns) FROM media
                    WHERE deleted_at IS NOT NULL AND purged_at IS NULL ORDER BY deleted_at LIMIT \(limit)
                    """,
                    logger: logger
                )
            )
        }
    }

    public func markPurged(_ id: MediaID, now: Date) async throws {
        try await run("mark_purged") { [client, logger] in
            try await client.query("UPDATE media SET purged_at = \(now) WHERE id = \(id.uuid)", logger: logger)
        }
    }

    public func objectHasRow(_ location: ObjectLocation) async throws -> Bool {
        try await run("object_has_row") { [client, logger] in
            let rows = try await client.query(
                """
                SELECT EXISTS (SELECT 1 FROM media WHERE pool = \(location.pool) AND object_key = \(location.key))
                    OR EXISTS (SELECT 1 FROM renditions WHERE pool = \(location.pool) AND object_key = \(location.key))
                """,
                logger: logger
            )
            for try await exists in rows.decode(Bool.self) { return exists }
            return false
        }
    }

    public func events(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        try await run("read_events") { [client, logger] in
            // number what has committed since the last read, then read by number
            try await client.withTransaction(logger: logger) { connection in
                try await Outbox.sequence(on: connection, logger: logger)
            }
            var events: [OutboxEvent] = []
            for try await event in try await client.execute(Outbox.EventsAfterStatement(after: after, limit: limit), logger: logger) {
                events.append(event)
            }
            // read after the events: a day dropped before they were read has its horizon recorded by now
            for try await horizon in try await client.execute(Outbox.HorizonStatement(), logger: logger) where after < horizon {
                throw MetadataStoreError(
                    .cursorExpired,
                    "events after \(after) up to \(horizon) were dropped by the outbox's retention; resynchronise, then read on after \(horizon)",
                    cause: OutboxHorizon(horizon: horizon)
                )
            }
            return events
        }
    }

    public func consumerCursor(_ consumer: String) async throws -> Int64 {
        try await run("read_consumer_cursor") { [client, logger] in
            // a new consumer starts at the end of what is numbered now
            for try await cursor in try await client.query(
                """
                WITH created AS (
                    INSERT INTO outbox_consumers (name, after)
                    SELECT \(consumer), greatest(coalesce(max(seq), 0), (SELECT dropped_through FROM outbox_horizon)) FROM outbox
                    ON CONFLICT (name) DO NOTHING RETURNING after
                )
                SELECT after FROM created UNION ALL SELECT after FROM outbox_consumers WHERE name = \(consumer)
                """,
                logger: logger
            ).decode(Int64.self) {
                return cursor
            }
            throw MetadataStoreError(.other, "consumer \(consumer): no cursor returned")
        }
    }

    public func advanceConsumerCursor(_ consumer: String, from: Int64, to: Int64) async throws -> Bool {
        try await run("advance_consumer_cursor") { [client, logger] in
            for try await _ in try await client.query(
                "UPDATE outbox_consumers SET after = \(to), updated_at = now() WHERE name = \(consumer) AND after = \(from) AND \(to) > after RETURNING 1",
                logger: logger
            ).decode(Int.self) {
                return true
            }
            return false
        }
    }

    public func backlog(now: Date) async throws -> Backlog {
        try await run("read_backlog") { [client, logger] in
            var backlog = Backlog()
            for try await (kind, queued, waited, dead) in try await client.query(
                """
                SELECT media_kind, count(*) FILTER (WHERE state = 'queued'),
                    coalesce(extract(epoch FROM \(now) - min(run_after) FILTER (WHERE state = 'queued' AND run_after <= \(now)))::float8, -1),
                    count(*) FILTER (WHERE state = 'dead')
                FROM jobs WHERE media_kind IS NOT NULL GROUP BY media_kind
                """,
                logger: logger
            ).decode((String, Int, Double, Int).self) {
                guard let kind = MediaKind(rawValue: kind) else { continue }
                backlog.queuedJobs[kind] = queued
                if waited >= 0 { backlog.oldestQueuedJob[kind] = .milliseconds(Int64(waited * 1000)) }
                backlog.deadJobs += dead
            }
            for try await unread in try await client.query("SELECT count(*) FROM outbox WHERE seq IS NULL", logger: logger).decode(Int.self) {
                backlog.unreadEvents = unread
            }
            return backlog
        }
    }

    /// Answers when the database answers *and takes writes*: a server in recovery (a standby, or a
    /// demoted primary during a failover) is `unavailable`.
    public func ping() async throws {
        let inRecovery = try await run("ping") { [client, logger] in
            var inRecovery = false
            for try await value in try await client.query("SELECT pg_is_in_recovery()", logger: logger).decode(Bool.self) {
                inRecovery = value
            }
            return inRecovery
        }
        if inRecovery { throw MetadataStoreError(.unavailable, "PostgreSQL at \(database.configuration.redacted) is a standby: it takes no writes") }
    }

    // MARK: Processing

    public func claimJob(_ steps: [ClaimStep], reclaimingExpired: Bool, lease: Duration, now: Date) async throws -> ProcessingJob? {
        let kinds = MediaKind.allCases.filter { kind in steps.contains { $0.kinds.contains(kind) } }
        guard !kinds.isEmpty else { return nil }
        if reclaimingExpired, let job = try await claim(expired: true, kinds: kinds, priority: .interactive, lease: lease, now: now) {
            return job
        }
        for step in steps {
            if let job = try await claim(expired: false, kinds: step.kinds, priority: step.priority, lease: lease, now: now) { return job }
        }
        return nil
    }

    /// Claims, in one statement, the job of `kinds` whose lease expired longest ago (`expired`), or the
    /// oldest queued and due one at `priority` (through `jobs_claim`).
    private func claim(
        expired: Bool,
        kinds: [MediaKind],
        priority: ProcessingPriority,
        lease: Duration,
        now: Date
    ) async throws
        -> ProcessingJob?
    {
        let leaseEnd = now.addingTimeInterval(lease.seconds)
        return try await run(expired ? "claim_expired_job" : "claim_job") { [client, logger] in
            let rows =
                expired
                ? try await client.execute(ClaimExpiredJobStatement(kinds: kinds, leaseEnd: leaseEnd, now: now), logger: logger)
                : try await client.execute(
                    ClaimQueuedJobStatement(kinds: kinds, priority: priority, leaseEnd: leaseEnd, now: now),
                    logger: logger
                )
            for try await job in rows {
                if let job { return job }
            }
            return nil
        }
    }

    public func renewLease(_ job: ProcessingJob, lease: Duration, now: Date) async throws -> Bool {
        let leaseEnd = now.addingTimeInterval(lease.seconds)
        return try await run("renew_lease") { [client, logger] in
            for try await _ in try await client.execute(RenewLeaseStatement(job: job, leaseEnd: leaseEnd), logger: logger) { return true }
            return false
        }
    }

    public func completeJob(_ job: ProcessingJob, outcome: ProcessingOutcome, now: Date) async throws -> [ObjectLocation] {
        let metadata = String(decoding: try JSONEncoder.sorted.encode(outcome.metadata), as: UTF8.self)
        return try await run("complete_job") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                var current: Media?
                for try await row in try await connection.execute(LockMediaStatement(kind: job.kind, id: job.mediaID), logger: logger) {
                    current = row
                }
                for try await _ in try await connection.execute(DeleteJobStatement(jobID: job.jobID), logger: logger) {}
                guard let current, current.deletedAt == nil else {
                    // deleted while it was processed: nothing refers to this run's renditions
                    return outcome.renditions.map(\.location)
                }
                var obsolete: [ObjectLocation] = []
                let kept = outcome.renditions.map(\.name)
                for try await location in try await connection.execute(
                    DeleteOtherRenditionsStatement(mediaID: job.mediaID, keep: kept),
                    logger: logger
                ) {
                    obsolete.append(location)
                }
                for rendition in outcome.renditions {
                    let upsert = UpsertRenditionStatement(mediaID: job.mediaID, mediaKind: job.kind, rendition: rendition, now: now)
                    for try await _ in try await connection.execute(upsert, logger: logger) {}
                }
                let marked = MarkMediaReadyStatement(kind: job.kind, id: job.mediaID, outcome: outcome, metadata: metadata)
                var ready: Media?
                for try await row in try await connection.execute(marked, logger: logger) { ready = row }
                guard let ready else { throw MetadataStoreError(.other, "complete job: media \(job.mediaID) was not updated") }
                try await Outbox.append([.mediaReady(ready, renditions: outcome.renditions.map(\.name))], on: connection, logger: logger)
                return obsolete
            }
        }
    }

    public func failJob(_ job: ProcessingJob, error: ProcessingError, retry: Bool, retryAfter: Duration, now: Date) async throws {
        let reason = String(error.reason.prefix(500))
        try await run("fail_job") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                if retry {
                    try await connection.query(
                        """
                        UPDATE jobs SET state = 'queued', run_after = \(now.addingTimeInterval(retryAfter.seconds)), leased_until = NULL,
                            last_error = \(reason), updated_at = \(now)
                        WHERE id = \(job.jobID)
                        """,
                        logger: logger
                    )
                    return
                }
                // lock order everywhere: the media, then its jobs (as completeJob and tombstoneMedia)
                for try await _ in try await connection.execute(LockMediaStatement(kind: job.kind, id: job.mediaID), logger: logger) {}
                try await connection.query(
                    "UPDATE jobs SET state = 'dead', leased_until = NULL, last_error = \(reason), updated_at = \(now) WHERE id = \(job.jobID)",
                    logger: logger
                )
                let failed = try await MediaRow.first(
                    try await connection.query(
                        """
                        UPDATE media SET state = 'failed', failure_reason = \(reason)
                        WHERE kind = \(job.kind.rawValue) AND id = \(job.mediaID.uuid) AND deleted_at IS NULL
                        RETURNING \(unescaped: MediaRow.columns)
                        """,
                        logger: logger
                    )
                )
                if let failed {
                    try await Outbox.append([.mediaFailed(failed, reason: reason)], on: connection, logger: logger)
                }
            }
        }
    }

    public func renditions(of id: MediaID) async throws -> [Rendition] {
        try await read(
            "read_renditions",
            needsPrimary: { $0.isEmpty },
            { [logger] client in
                var renditions: [Rendition] = []
                for try await rendition in try await client.execute(RenditionsStatement(mediaID: id), logger: logger) {
                    renditions.append(rendition)
                }
                return renditions
            }
        )
    }

    public func originRecord(_ id: MediaID, renditionNames: [String]) async throws -> OriginRecord? {
        try await read(
            "read_origin_record",
            needsPrimary: { $0?.state != .ready },
            { [logger] client in
                var record: OriginRecord?
                for try await row in try await client.execute(OriginRecordStatement(id: id, renditionNames: renditionNames), logger: logger) {
                    if record == nil {
                        record = row.record
                    }
                    if let rendition = row.rendition { record?.renditions.append(rendition) }
                }
                return record
            }
        )
    }
}

/// Column lists and row decoding, in one place per table.
enum UploadSetRow {
    static let columns =
        "id, owner_id, context, context_id, is_private, state, created_at, expires_at, committed_at, photo_count, audio_count, video_count, priority"

    /// The live-count column of a kind (a fixed identifier, never user input).
    static func counter(_ kind: MediaKind) -> String { "\(kind.rawValue)_count" }

    static func decode(_ row: PostgresRow) throws -> UploadSet {
        let (id, owner, context, contextID, isPrivate, state, created, expires, committed, photos, audio, videos, priority) =
            try row.decode((UUID, String, String, String, Bool, String, Date, Date, Date?, Int, Int, Int, String).self)
        guard let context = UploadContext(rawValue: context), let state = UploadSetState(rawValue: state),
            let priority = ProcessingPriority(rawValue: priority)
        else {
            throw MetadataStoreError(.other, "upload set \(id) has an unknown context, state or priority")
        }
        return UploadSet(
            id: UploadSetID(uuid: id),
            ownerID: owner,
            context: context,
            contextID: contextID,
            isPrivate: isPrivate,
            priority: priority,
            state: state,
            createdAt: created,
            expiresAt: expires,
            committedAt: committed,
            liveCounts: LiveCounts(photo: photos, audio: audio, video: videos)
        )
    }

    static func first(_ rows: PostgresRowSequence) async throws -> UploadSet? {
        for try await row in rows { return try decode(row) }
        return nil
    }
}

enum MediaRow {
    static let columns = """
        id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, width, height, duration_ms, \
        pool, object_key, created_at, committed_at, deleted_at, failure_reason, metadata::text AS metadata_json
        """

    static func decode(_ row: PostgresRow) throws -> Media {
        let cells = PostgresRandomAccessRow(row)
        let id = try cells["id"].decode(UUID.self)
        guard let kind = MediaKind(rawValue: try cells["kind"].decode(String.self)),
            let state = MediaState(rawValue: try cells["state"].decode(String.self))
        else {
            throw MetadataStoreError(.other, "media \(id) has an unknown kind or state")
        }
        return Media(
            id: MediaID(uuid: id),
            kind: kind,
            ownerID: try cells["owner_id"].decode(String.self),
            uploadSetID: UploadSetID(uuid: try cells["upload_set_id"].decode(UUID.self)),
            state: state,
            size: try cells["size_bytes"].decode(Int64.self),
            sha256: try cells["sha256"].decode(String.self),
            mime: try cells["mime"].decode(String.self),
            width: try cells["width"].decode(Int?.self),
            height: try cells["height"].decode(Int?.self),
            durationMilliseconds: try cells["duration_ms"].decode(Int64?.self),
            location: ObjectLocation(pool: try cells["pool"].decode(String.self), key: try cells["object_key"].decode(String.self)),
            createdAt: try cells["created_at"].decode(Date.self),
            committedAt: try cells["committed_at"].decode(Date?.self),
            deletedAt: try cells["deleted_at"].decode(Date?.self),
            failureReason: try cells["failure_reason"].decode(String?.self),
            metadata: (try? JSONDecoder().decode([String: MetadataValue].self, from: Data(try cells["metadata_json"].decode(String.self).utf8)))
                ?? [:]
        )
    }

    static func first(_ rows: PostgresRowSequence) async throws -> Media? {
        for try await row in rows { return try decode(row) }
        return nil
    }

    static func all(_ rows: PostgresRowSequence) async throws -> [Media] {
        var media: [Media] = []
        for try await row in rows { media.append(try decode(row)) }
        return media
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// How often the read replica could not answer alone.
/// Metrics of the metadata store: latency by operation, and the replica's fallbacks to the primary.
enum ReplicaMetrics {
    static let durations = MetricFamily<Timer>.timers("mediagw_postgres_operation_duration_seconds", labels: ["operation"])
    static let fallbacks = Counter(label: "mediagw_postgres_replica_fallbacks_total", dimensions: [("reason", "not_there_yet")])
    static let failures = Counter(label: "mediagw_postgres_replica_fallbacks_total", dimensions: [("reason", "replica_failed")])
}
