import Foundation
import MediaCore
import PostgresNIO

/// The processing path's statements, prepared once per connection like the upload path's: a claim was
/// planned again on every call (1.6 ms of the database's CPU on this machine, more than running it), and a
/// finished job's transaction parsed and planned each of its statements.

/// Claims the oldest queued job at one priority that is due (`jobs_claim`): marks it running with a lease,
/// marks its media processing, and returns the job with its media's location.
struct ClaimQueuedJobStatement: PostgresPreparedStatement {
    typealias Row = ProcessingJob?

    static let sql = ClaimedJob.sql(
        picking: "j.state = 'queued' AND j.run_after <= $1::timestamptz AND j.priority = $4::text",
        order: "j.run_after"
    )

    var kinds: [MediaKind]
    var priority: ProcessingPriority
    var leaseEnd: Date
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(now)
        bindings.append(kinds.map(\.rawValue))
        bindings.append(leaseEnd)
        bindings.append(priority.rawValue)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try ClaimedJob.decode(row) }
}

/// Claims the running job whose lease expired longest ago (`jobs_leases`), at any priority: its worker is
/// gone. It gets a new lease and another attempt.
struct ClaimExpiredJobStatement: PostgresPreparedStatement {
    typealias Row = ProcessingJob?

    static let sql = ClaimedJob.sql(picking: "j.state = 'running' AND j.leased_until < $1::timestamptz", order: "j.leased_until")

    var kinds: [MediaKind]
    var leaseEnd: Date
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(now)
        bindings.append(kinds.map(\.rawValue))
        bindings.append(leaseEnd)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try ClaimedJob.decode(row) }
}

/// What the two claims share: `$1` is now, `$2` the kinds, `$3` the lease's end.
enum ClaimedJob {
    static func sql(picking condition: String, order: String) -> String {
        """
        WITH picked AS (
            SELECT j.id FROM jobs j
            WHERE j.queue = 'process' AND \(condition) AND j.media_kind = ANY($2::text[])
            ORDER BY \(order) LIMIT 1 FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, leased_until = $3::timestamptz, updated_at = $1::timestamptz
            FROM picked WHERE j.id = picked.id
            RETURNING j.id, j.media_id, j.media_kind, j.attempts, j.priority, j.trace_parent
        ), marked AS (
            UPDATE media m SET state = 'processing'
            FROM claimed c WHERE m.kind = c.media_kind AND m.id = c.media_id AND m.deleted_at IS NULL
            RETURNING m.id
        )
        SELECT c.id, c.media_id, c.media_kind, c.attempts, m.pool, m.object_key, m.size_bytes, m.mime, c.priority, c.trace_parent
        FROM claimed c JOIN media m ON m.kind = c.media_kind AND m.id = c.media_id
        """
    }

    /// The claimed job; nil for a kind this version does not know.
    static func decode(_ row: PostgresRow) throws -> ProcessingJob? {
        let (jobID, mediaID, kind, attempts, pool, key, size, mime, priority, trace) = try row.decode(
            (Int64, UUID, String, Int, String, String, Int64, String, String, String?).self
        )
        guard let kind = MediaKind(rawValue: kind) else { return nil }
        return ProcessingJob(
            jobID: jobID,
            mediaID: MediaID(uuid: mediaID),
            kind: kind,
            original: ObjectLocation(pool: pool, key: key),
            size: size,
            mime: mime,
            attempts: attempts,
            priority: ProcessingPriority(rawValue: priority) ?? .interactive,
            trace: trace
        )
    }
}

/// Extends a running job's lease, if this attempt still holds it. Returns the job's id when it does.
struct RenewLeaseStatement: PostgresPreparedStatement {
    typealias Row = Int64

    static let sql =
        "UPDATE jobs SET leased_until = $1::timestamptz WHERE id = $2::bigint AND state = 'running' AND attempts = $3::bigint RETURNING id"

    var job: ProcessingJob
    var leaseEnd: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(leaseEnd)
        bindings.append(job.jobID)
        bindings.append(job.attempts)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// Locks a media row (the first lock a job's outcome takes: the media, then its jobs) and returns it.
struct LockMediaStatement: PostgresPreparedStatement {
    typealias Row = Media

    static let sql = "SELECT \(MediaRow.columns) FROM media WHERE kind = $1::text AND id = $2::uuid FOR UPDATE"

    var kind: MediaKind
    var id: MediaID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(kind.rawValue)
        bindings.append(id.uuid)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Media { try MediaRow.decode(row) }
}

/// Removes a finished job.
struct DeleteJobStatement: PostgresPreparedStatement {
    typealias Row = Int64

    static let sql = "DELETE FROM jobs WHERE id = $1::bigint RETURNING id"

    var jobID: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(jobID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

/// Removes a media item's renditions that a new processing run did not make again, and returns where their
/// objects are.
struct DeleteOtherRenditionsStatement: PostgresPreparedStatement {
    typealias Row = ObjectLocation

    static let sql = "DELETE FROM renditions WHERE media_id = $1::uuid AND NOT (name = ANY($2::text[])) RETURNING pool, object_key"

    var mediaID: MediaID
    var keep: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(mediaID.uuid)
        bindings.append(keep)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> ObjectLocation {
        let (pool, key) = try row.decode((String, String).self)
        return ObjectLocation(pool: pool, key: key)
    }
}

/// Records one rendition, replacing an earlier one of the same name.
struct UpsertRenditionStatement: PostgresPreparedStatement {
    typealias Row = Int

    static let sql = """
        INSERT INTO renditions (media_id, media_kind, name, mime, width, height, size_bytes, sha256, pool, object_key, created_at)
        VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::bigint, $8::text, $9::text, $10::text, $11::timestamptz)
        ON CONFLICT (media_id, name) DO UPDATE SET
            mime = excluded.mime, width = excluded.width, height = excluded.height, size_bytes = excluded.size_bytes,
            sha256 = excluded.sha256, pool = excluded.pool, object_key = excluded.object_key, created_at = excluded.created_at
        RETURNING 1
        """

    var mediaID: MediaID
    var mediaKind: MediaKind
    var rendition: RenditionRecord
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(mediaID.uuid)
        bindings.append(mediaKind.rawValue)
        bindings.append(rendition.name)
        bindings.append(rendition.mime)
        bindings.append(rendition.width)
        bindings.append(rendition.height)
        bindings.append(rendition.size)
        bindings.append(rendition.sha256)
        bindings.append(rendition.location.pool)
        bindings.append(rendition.location.key)
        bindings.append(now)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}

/// Marks a processed media item ready with what processing found, and returns it.
struct MarkMediaReadyStatement: PostgresPreparedStatement {
    typealias Row = Media

    static let sql = """
        UPDATE media SET state = 'ready', width = $3::bigint, height = $4::bigint, duration_ms = $5::bigint, metadata = $6::text::jsonb, failure_reason = NULL
        WHERE kind = $1::text AND id = $2::uuid
        RETURNING \(MediaRow.columns)
        """

    var kind: MediaKind
    var id: MediaID
    var outcome: ProcessingOutcome
    /// The outcome's metadata as JSON text.
    var metadata: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 6)
        bindings.append(kind.rawValue)
        bindings.append(id.uuid)
        bindings.append(outcome.width)
        bindings.append(outcome.height)
        bindings.append(outcome.durationMilliseconds)
        bindings.append(metadata)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Media { try MediaRow.decode(row) }
}
