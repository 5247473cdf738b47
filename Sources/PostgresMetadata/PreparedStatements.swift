import Foundation
import MediaCore
import PostgresNIO

/// The upload path's statements, prepared once per connection: parsing and planning them on every upload
/// cost more than running them.

/// Records an upload in one statement (one round trip, its own transaction): locks the set row, checks the
/// set and its live count, bumps the count, inserts the media row, its processing job and its
/// `media.stored` event.
/// Returns the set's state as it was found, and the media row if it was inserted.
struct RecordUploadStatement: PostgresPreparedStatement {
    struct Outcome {
        var setOwner: String
        var setState: String
        var setExpiresAt: Date
        var count: Int
        var media: Media?
    }

    typealias Row = Outcome

    static let sql = """
        WITH target AS (
            SELECT id, owner_id, state, expires_at, priority,
                   CASE $4::text WHEN 'photo' THEN photo_count WHEN 'audio' THEN audio_count ELSE video_count END AS live
            FROM upload_sets WHERE id = $1 FOR UPDATE
        ), allowed AS (
            SELECT id FROM target WHERE owner_id = $2 AND state = 'draft' AND expires_at > $3 AND live < $5
        ), counted AS (
            UPDATE upload_sets s SET
                photo_count = photo_count + CASE WHEN $4::text = 'photo' THEN 1 ELSE 0 END,
                audio_count = audio_count + CASE WHEN $4::text = 'audio' THEN 1 ELSE 0 END,
                video_count = video_count + CASE WHEN $4::text = 'video' THEN 1 ELSE 0 END
            FROM allowed WHERE s.id = allowed.id RETURNING s.id
        ), inserted AS (
            INSERT INTO media (id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, pool, object_key, created_at)
            SELECT $6, $4::text, $2, counted.id, 'stored', $7, $8, $9, $10, $11, $3 FROM counted
            RETURNING \(MediaRow.columns)
        ), job AS (
            INSERT INTO jobs (queue, media_id, media_kind, priority, trace_parent)
            SELECT 'process', i.id, i.kind, t.priority, $12::text FROM inserted i, target t RETURNING 1
        ), event AS (
            INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload)
            SELECT $13::uuid, 'media.stored', i.id, i.upload_set_id,
                   jsonb_build_object('media_id', i.id, 'upload_set_id', i.upload_set_id, 'owner_id', i.owner_id,
                                      'kind', i.kind, 'mime', i.mime, 'size', i.size_bytes, 'sha256', i.sha256, 'state', i.state)
            FROM inserted i RETURNING 1
        )
        SELECT t.owner_id AS set_owner, t.state AS set_state, t.expires_at AS set_expires_at, t.live AS set_live, i.*
        FROM target t LEFT JOIN inserted i ON true
        """

    var media: NewMedia
    var maxCount: Int
    var now: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        bindings.append(media.uploadSetID.uuid)
        bindings.append(media.ownerID)
        bindings.append(now)
        bindings.append(media.kind.rawValue)
        bindings.append(maxCount)
        bindings.append(media.id.uuid)
        bindings.append(media.size)
        bindings.append(media.sha256)
        bindings.append(media.mime)
        bindings.append(media.location.pool)
        bindings.append(media.location.key)
        bindings.append(media.trace)
        bindings.append(media.eventID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Outcome {
        let cells = PostgresRandomAccessRow(row)
        let inserted = try cells["id"].decode(UUID?.self) != nil
        return Outcome(
            setOwner: try cells["set_owner"].decode(String.self),
            setState: try cells["set_state"].decode(String.self),
            setExpiresAt: try cells["set_expires_at"].decode(Date.self),
            count: try cells["set_live"].decode(Int.self),
            media: inserted ? try MediaRow.decode(row) : nil
        )
    }
}

/// ``RecordUploadStatement`` for several uploads at once (group commit), in one statement: the sets' rows
/// are locked in the order of their ids; each upload is recorded or refused as it would be alone, the
/// uploads of one set and kind counted against its limit in the order they came.
struct RecordUploadsStatement: PostgresPreparedStatement {
    struct Row {
        var index: Int
        var outcome: RecordUploadStatement.Outcome?
    }

    static let sql = """
        WITH input AS (
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::uuid[], $6::bigint[], $7::text[], $8::text[], $9::text[],
                                 $10::text[], $11::timestamptz[], $12::text[], $13::uuid[])
                WITH ORDINALITY AS i(set_id, owner, kind, max_count, media_id, size, digest, media_mime, media_pool, media_key, at, trace, event_id, ord)
        ), target AS (
            SELECT id, owner_id, state, expires_at, priority, photo_count, audio_count, video_count
            FROM upload_sets WHERE id IN (SELECT set_id FROM input) ORDER BY id FOR UPDATE
        ), ranked AS (
            SELECT i.*, t.owner_id AS set_owner, t.state AS set_state, t.expires_at AS set_expires_at, t.priority AS set_priority,
                   CASE i.kind WHEN 'photo' THEN t.photo_count WHEN 'audio' THEN t.audio_count ELSE t.video_count END AS live,
                   (t.owner_id = i.owner AND t.state = 'draft' AND t.expires_at > i.at) AS is_open,
                   row_number() OVER (
                       PARTITION BY i.set_id, i.kind, (t.owner_id = i.owner AND t.state = 'draft' AND t.expires_at > i.at) ORDER BY i.ord
                   ) AS rank
            FROM input i LEFT JOIN target t ON t.id = i.set_id
        ), allowed AS (
            SELECT * FROM ranked WHERE is_open AND live + rank <= max_count
        ), counted AS (
            UPDATE upload_sets s SET
                photo_count = photo_count + a.photos, audio_count = audio_count + a.audios, video_count = video_count + a.videos
            FROM (
                SELECT set_id, count(*) FILTER (WHERE kind = 'photo') AS photos, count(*) FILTER (WHERE kind = 'audio') AS audios,
                       count(*) FILTER (WHERE kind = 'video') AS videos
                FROM allowed GROUP BY set_id
            ) a
            WHERE s.id = a.set_id RETURNING s.id
        ), inserted AS (
            INSERT INTO media (id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, pool, object_key, created_at)
            SELECT media_id, kind, owner, set_id, 'stored', size, digest, media_mime, media_pool, media_key, at FROM allowed
            RETURNING \(MediaRow.columns)
        ), job AS (
            INSERT INTO jobs (queue, media_id, media_kind, priority, trace_parent)
            SELECT 'process', i.id, i.kind, a.set_priority, NULLIF(a.trace, '') FROM inserted i JOIN allowed a ON a.media_id = i.id RETURNING 1
        ), event AS (
            INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload)
            SELECT a.event_id, 'media.stored', i.id, i.upload_set_id,
                   jsonb_build_object('media_id', i.id, 'upload_set_id', i.upload_set_id, 'owner_id', i.owner_id,
                                      'kind', i.kind, 'mime', i.mime, 'size', i.size_bytes, 'sha256', i.sha256, 'state', i.state)
            FROM inserted i JOIN allowed a ON a.media_id = i.id ORDER BY i.id RETURNING 1
        )
        SELECT r.ord AS upload_index, r.set_owner, r.set_state, r.set_expires_at, (r.live + r.rank - 1)::int AS set_live, i.*
        FROM ranked r LEFT JOIN inserted i ON i.id = r.media_id ORDER BY r.ord
        """

    var requests: [UploadRecordRequest]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        bindings.append(requests.map(\.media.uploadSetID.uuid))
        bindings.append(requests.map(\.media.ownerID))
        bindings.append(requests.map(\.media.kind.rawValue))
        bindings.append(requests.map { Int32(clamping: $0.maxCount) })
        bindings.append(requests.map(\.media.id.uuid))
        bindings.append(requests.map(\.media.size))
        bindings.append(requests.map(\.media.sha256))
        bindings.append(requests.map(\.media.mime))
        bindings.append(requests.map(\.media.location.pool))
        bindings.append(requests.map(\.media.location.key))
        bindings.append(requests.map(\.now))
        // an array of optional text does not bind; no trace is the empty string
        bindings.append(requests.map { $0.media.trace ?? "" })
        bindings.append(requests.map(\.media.eventID))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let cells = PostgresRandomAccessRow(row)
        let index = Int(try cells["upload_index"].decode(Int64.self)) - 1
        guard let owner = try cells["set_owner"].decode(String?.self) else { return Row(index: index, outcome: nil) }
        let inserted = try cells["id"].decode(UUID?.self) != nil
        return Row(
            index: index,
            outcome: RecordUploadStatement.Outcome(
                setOwner: owner,
                setState: try cells["set_state"].decode(String.self),
                setExpiresAt: try cells["set_expires_at"].decode(Date.self),
                count: try cells["set_live"].decode(Int.self),
                media: inserted ? try MediaRow.decode(row) : nil
            )
        )
    }
}

/// Commits draft sets in one statement (one round trip, its own transaction): one set, or several at once
/// for group commit. Each set's row is locked (in the order of their ids); a draft that has not expired
/// is marked committed with its live media, at its own request's time, and gets its
/// `upload_set.committed` event, with the id the request chose (so that it can be linked). Returns each set
/// as it was found, with the commit time if it was committed now; a set already committed, expired or
/// unknown is left as it is.
struct CommitUploadSetsStatement: PostgresPreparedStatement {
    struct Row {
        var found: UploadSet
        var committedAt: Date?
    }

    static let sql = makeSQL(over: "unnest($1::uuid[], $2::timestamptz[], $3::uuid[])")

    /// The statement over `requested`: rows of a set's id, the request's time and the event's id.
    static func makeSQL(over requested: String) -> String {
        """
        WITH target AS (
            SELECT s.id, s.owner_id, s.context, s.context_id, s.is_private, s.state, s.created_at, s.expires_at, s.committed_at,
                   s.photo_count, s.audio_count, s.video_count, s.priority, r.at, r.event_id
            FROM upload_sets s JOIN \(requested) AS r(id, at, event_id) ON s.id = r.id
            ORDER BY s.id FOR UPDATE OF s
        ), committed AS (
            UPDATE upload_sets s SET state = 'committed', committed_at = t.at
            FROM target t WHERE s.id = t.id AND t.state = 'draft' AND t.expires_at > t.at
            RETURNING s.id, s.owner_id, s.context, s.context_id, s.committed_at, t.event_id
        ), media_committed AS (
            UPDATE media m SET committed_at = c.committed_at FROM committed c
            WHERE m.upload_set_id = c.id AND m.deleted_at IS NULL RETURNING m.id, m.upload_set_id
        ), event AS (
            INSERT INTO outbox (event_id, type, upload_set_id, payload)
            SELECT c.event_id, 'upload_set.committed', c.id,
                   jsonb_build_object('upload_set_id', c.id, 'owner_id', c.owner_id, 'context', c.context, 'context_id', c.context_id,
                                      'media_ids', coalesce((SELECT jsonb_agg(mc.id) FROM media_committed mc WHERE mc.upload_set_id = c.id), '[]'::jsonb))
            FROM committed c ORDER BY c.id RETURNING 1
        )
        SELECT t.id, t.owner_id, t.context, t.context_id, t.is_private, t.state, t.created_at, t.expires_at, t.committed_at,
               t.photo_count, t.audio_count, t.video_count, t.priority, c.committed_at AS committed_now
        FROM target t LEFT JOIN committed c ON c.id = t.id
        """
    }

    var requests: [UploadSetCommitRequest]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(requests.map(\.id.uuid))
        bindings.append(requests.map(\.now))
        bindings.append(requests.map(\.eventID))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try Self.decode(row) }

    static func decode(_ row: PostgresRow) throws -> Row {
        Row(found: try UploadSetRow.decode(row), committedAt: try PostgresRandomAccessRow(row)["committed_now"].decode(Date?.self))
    }
}

/// ``CommitUploadSetsStatement`` for one set, with scalar parameters. PostgreSQL estimates an array's
/// `unnest` at many rows, so the array form never gets a plan cached for its connection and is planned
/// again on every execution: 1.6 ms of the database's CPU for each set committed by a direct ingest,
/// more than running it. This form's cached (generic) plan is the plan of every execution.
struct CommitUploadSetStatement: PostgresPreparedStatement {
    typealias Row = CommitUploadSetsStatement.Row

    static let sql = CommitUploadSetsStatement.makeSQL(over: "(VALUES ($1::uuid, $2::timestamptz, $3::uuid))")

    var request: UploadSetCommitRequest

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(request.id.uuid)
        bindings.append(request.now)
        bindings.append(request.eventID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try CommitUploadSetsStatement.decode(row) }
}

/// Opens several upload sets in one statement (group commit).
struct CreateUploadSetsStatement: PostgresPreparedStatement {
    typealias Row = UploadSet

    static let sql = makeSQL(over: "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::timestamptz[])")

    /// The statement over `values`: rows of the new sets' columns.
    static func makeSQL(over values: String) -> String {
        """
        INSERT INTO upload_sets (id, owner_id, context, context_id, is_private, priority, expires_at)
        \(values)
        RETURNING \(UploadSetRow.columns)
        """
    }

    var sets: [NewUploadSet]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(sets.map(\.id.uuid))
        bindings.append(sets.map(\.ownerID))
        bindings.append(sets.map(\.context.rawValue))
        bindings.append(sets.map(\.contextID))
        bindings.append(sets.map(\.isPrivate))
        bindings.append(sets.map(\.priority.rawValue))
        bindings.append(sets.map(\.expiresAt))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> UploadSet { try UploadSetRow.decode(row) }
}

/// Opens one upload set: ``CreateUploadSetsStatement`` with scalar parameters, parsed and planned once per
/// connection.
struct CreateUploadSetStatement: PostgresPreparedStatement {
    typealias Row = UploadSet

    static let sql = CreateUploadSetsStatement.makeSQL(over: "VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::bool, $6::text, $7::timestamptz)")

    var set: NewUploadSet

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(set.id.uuid)
        bindings.append(set.ownerID)
        bindings.append(set.context.rawValue)
        bindings.append(set.contextID)
        bindings.append(set.isPrivate)
        bindings.append(set.priority.rawValue)
        bindings.append(set.expiresAt)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> UploadSet { try UploadSetRow.decode(row) }
}

/// A media row by id, of whichever kind (the internal API's read of an item).
struct MediaStatement: PostgresPreparedStatement {
    typealias Row = Media

    static let sql = "SELECT \(MediaRow.columns) FROM media WHERE id = $1::uuid"

    var id: MediaID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id.uuid)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Media { try MediaRow.decode(row) }
}

/// A media item's renditions, by name.
struct RenditionsStatement: PostgresPreparedStatement {
    typealias Row = Rendition

    static let sql = """
        SELECT name, mime, width, height, size_bytes, sha256, pool, object_key, created_at
        FROM renditions WHERE media_id = $1::uuid ORDER BY name
        """

    var mediaID: MediaID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(mediaID.uuid)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Rendition {
        let (name, mime, width, height, size, sha256, pool, key, created) = try row.decode(
            (String, String, Int?, Int?, Int64, String, String, String, Date).self
        )
        return Rendition(
            mediaID: mediaID,
            name: name,
            mime: mime,
            width: width,
            height: height,
            size: size,
            sha256: sha256,
            location: ObjectLocation(pool: pool, key: key),
            createdAt: created
        )
    }
}

/// One upload set, with its live counts: read on every upload request.
struct UploadSetStatement: PostgresPreparedStatement {
    typealias Row = UploadSet

    static let sql = "SELECT \(UploadSetRow.columns) FROM upload_sets WHERE id = $1"

    var id: UploadSetID

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(id.uuid)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> UploadSet { try UploadSetRow.decode(row) }
}

/// What the CDN origin needs for one request, in one round trip: the media row, its set's privacy, and the
/// asked-for renditions (one row per rendition found; one row with no rendition when none is).
struct OriginRecordStatement: PostgresPreparedStatement {
    struct Row {
        var record: OriginRecord
        var rendition: Rendition?
    }

    static let sql = """
        SELECT m.id, m.kind, m.state, m.mime, m.size_bytes, m.sha256, m.pool, m.object_key, m.created_at,
               s.context, s.is_private,
               r.name, r.mime, r.width, r.height, r.size_bytes, r.sha256, r.pool, r.object_key, r.created_at
        FROM media m
        JOIN upload_sets s ON s.id = m.upload_set_id
        LEFT JOIN renditions r ON r.media_id = m.id AND r.name = ANY($2::text[])
        WHERE m.id = $1
        """

    var id: MediaID
    var renditionNames: [String]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(id.uuid)
        bindings.append(renditionNames)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (
            id, kind, state, mime, size, sha256, pool, key, created, context, isPrivate,
            name, renditionMIME, width, height, renditionSize, renditionSHA, renditionPool, renditionKey, renditionCreated
        ) =
            try row.decode(
                (
                    UUID, String, String, String, Int64, String, String, String, Date, String, Bool,
                    String?, String?, Int?, Int?, Int64?, String?, String?, String?, Date?
                ).self
            )
        guard let kind = MediaKind(rawValue: kind), let state = MediaState(rawValue: state), let context = UploadContext(rawValue: context) else {
            throw MetadataStoreError(.other, "media \(id) has an unknown kind, state or context")
        }
        let mediaID = MediaID(uuid: id)
        var rendition: Rendition?
        if let name, let renditionMIME, let renditionSize, let renditionSHA, let renditionPool, let renditionKey, let renditionCreated {
            rendition = Rendition(
                mediaID: mediaID,
                name: name,
                mime: renditionMIME,
                width: width,
                height: height,
                size: renditionSize,
                sha256: renditionSHA,
                location: ObjectLocation(pool: renditionPool, key: renditionKey),
                createdAt: renditionCreated
            )
        }
        return Row(
            record: OriginRecord(
                id: mediaID,
                kind: kind,
                state: state,
                mime: mime,
                size: size,
                sha256: sha256,
                location: ObjectLocation(pool: pool, key: key),
                createdAt: created,
                context: context,
                setIsPrivate: isPrivate,
                renditions: []
            ),
            rendition: rendition
        )
    }
}
