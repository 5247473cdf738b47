import Foundation
import Logging
import MediaCore
import NIOCore
import PostgresNIO

/// Resumable uploads in the `resumable_uploads` table. The claim of an append is a column pair
/// (`claim`, `claimed_until`) changed by conditional updates; a place in the set is the set's live count,
/// taken and given back under the set's row lock as stored files do.
extension PostgresMetadataStore {
    public func createResumableUpload(_ upload: ResumableUpload) async throws {
        try await run("create_resumable_upload") { [client, logger] in
            let metadata = String(decoding: try JSONEncoder().encode(upload.metadata), as: UTF8.self)
            do {
                try await client.query(
                    """
                    INSERT INTO resumable_uploads (id, upload_set_id, owner_id, length, metadata, created_at, expires_at)
                    VALUES (\(upload.id.uuid), \(upload.uploadSetID.uuid), \(upload.ownerID), \(upload.length), \(metadata)::jsonb,
                            \(upload.createdAt), \(upload.expiresAt))
                    """,
                    logger: logger
                )
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23503" {
                throw MetadataStoreError(.notFound, "no upload set \(upload.uploadSetID)")
            }
        }
    }

    public func resumableUpload(_ id: MediaID, now: Date) async throws -> ResumableUpload? {
        try await run("read_resumable_upload") { [client, logger] in
            try await ResumableRow.first(
                try await client.query(
                    "SELECT \(unescaped: ResumableRow.columns) FROM resumable_uploads WHERE id = \(id.uuid) AND expires_at > \(now)",
                    logger: logger
                )
            )?.upload
        }
    }

    public func claimResumableAppend(
        _ id: MediaID,
        at offset: Int64,
        claim: String,
        until: Date,
        now: Date
    ) async throws
        -> ResumableAppendClaim
    {
        try await run("claim_resumable_append") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                let current = try await ResumableRow.first(
                    try await connection.query(
                        "SELECT \(unescaped: ResumableRow.columns) FROM resumable_uploads WHERE id = \(id.uuid) FOR UPDATE",
                        logger: logger
                    )
                )
                guard let current, current.upload.expiresAt > now else { return .missing }
                if current.upload.completed { return .completed(current.upload) }
                if let holder = current.claim, holder != claim, let held = current.claimedUntil, held > now { return .busy(current.upload) }
                guard current.upload.received == offset else { return .offsetMismatch(current.upload) }
                try await connection.query(
                    "UPDATE resumable_uploads SET claim = \(claim), claimed_until = \(until) WHERE id = \(id.uuid)",
                    logger: logger
                )
                return .claimed(current.upload)
            }
        }
    }

    public func renewResumableClaim(_ id: MediaID, claim: String, until: Date) async throws {
        try await run("renew_resumable_claim") { [client, logger] in
            let rows = try await client.query(
                "UPDATE resumable_uploads SET claimed_until = \(until) WHERE id = \(id.uuid) AND claim = \(claim) RETURNING 1",
                logger: logger
            )
            for try await _ in rows.decode(Int.self) { return }
            throw MetadataStoreError(.conflict, "upload \(id) is no longer claimed by this request")
        }
    }

    public func placeResumableUpload(
        _ id: MediaID,
        claim: String,
        placement: ResumablePlacement,
        maxCount: Int,
        now: Date
    ) async throws
        -> ResumableUpload
    {
        try await run("place_resumable_upload") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                guard
                    let current = try await ResumableRow.first(
                        try await connection.query(
                            "SELECT \(unescaped: ResumableRow.columns) FROM resumable_uploads WHERE id = \(id.uuid) FOR UPDATE",
                            logger: logger
                        )
                    ), current.claim == claim
                else { throw MetadataStoreError(.conflict, "upload \(id) is no longer claimed by this request") }
                if current.upload.placement != nil { return current.upload }
                guard
                    let set = try await UploadSetRow.first(
                        try await connection.query(
                            "SELECT \(unescaped: UploadSetRow.columns) FROM upload_sets WHERE id = \(current.upload.uploadSetID.uuid) FOR UPDATE",
                            logger: logger
                        )
                    )
                else { throw MetadataStoreError(.notFound, "no upload set \(current.upload.uploadSetID)") }
                guard set.state != .committed else { throw MetadataStoreError(.setCommitted, "the set is committed") }
                guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
                guard set.liveCounts[placement.kind] < maxCount else {
                    throw MetadataStoreError(
                        .limitExceeded,
                        "the set already holds \(set.liveCounts[placement.kind]) \(placement.kind.rawValue) item(s)"
                    )
                }
                let counter = UploadSetRow.counter(placement.kind)
                try await connection.query(
                    "UPDATE upload_sets SET \(unescaped: counter) = \(unescaped: counter) + 1 WHERE id = \(set.id.uuid)",
                    logger: logger
                )
                try await connection.query(
                    """
                    UPDATE resumable_uploads SET kind = \(placement.kind.rawValue), mime = \(placement.mime), pool = \(placement.location.pool),
                        object_key = \(placement.location.key), ledger_slot = \(placement.ticket.slot)
                    WHERE id = \(id.uuid)
                    """,
                    logger: logger
                )
                var placed = current.upload
                placed.placement = placement
                return placed
            }
        }
    }

    public func recordResumableProgress(
        _ id: MediaID,
        claim: String,
        received: Int64,
        head: [UInt8],
        length: Int64?,
        hashState: [UInt8]?,
        until: Date?
    ) async throws {
        try await run("record_resumable_progress") { [client, logger] in
            let statement = RecordResumableProgressStatement(
                id: id,
                claim: claim,
                received: received,
                head: head,
                length: length,
                hashState: hashState,
                until: until
            )
            for try await _ in try await client.execute(statement, logger: logger) { return }
            throw MetadataStoreError(.conflict, "upload \(id) is no longer claimed by this request")
        }
    }

    public func completeResumableUpload(_ id: MediaID, claim: String, media new: NewMedia, now: Date) async throws -> Media {
        try await run("complete_resumable_upload") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                let claimed = try await connection.query(
                    "SELECT 1 FROM resumable_uploads WHERE id = \(id.uuid) AND claim = \(claim) AND NOT completed FOR UPDATE",
                    logger: logger
                )
                var holds = false
                for try await _ in claimed.decode(Int.self) { holds = true }
                guard holds else { throw MetadataStoreError(.conflict, "upload \(id) is no longer claimed by this request") }
                guard
                    let set = try await UploadSetRow.first(
                        try await connection.query(
                            "SELECT \(unescaped: UploadSetRow.columns) FROM upload_sets WHERE id = \(new.uploadSetID.uuid) FOR UPDATE",
                            logger: logger
                        )
                    )
                else { throw MetadataStoreError(.notFound, "no upload set \(new.uploadSetID)") }
                guard set.state != .committed else { throw MetadataStoreError(.setCommitted, "the set is committed") }
                guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
                // the place in the set was taken when the upload was placed: the row goes in without counting again
                let media = try await MediaRow.first(
                    try await connection.query(
                        """
                        INSERT INTO media (id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, pool, object_key, created_at)
                        VALUES (\(new.id.uuid), \(new.kind.rawValue), \(new.ownerID), \(new.uploadSetID.uuid), 'stored', \(new.size),
                                \(new.sha256), \(new.mime), \(new.location.pool), \(new.location.key), \(now))
                        RETURNING \(unescaped: MediaRow.columns)
                        """,
                        logger: logger
                    )
                )!
                try await connection.query(
                    """
                    INSERT INTO jobs (queue, media_id, media_kind, priority, trace_parent)
                    VALUES ('process', \(media.id.uuid), \(media.kind.rawValue), \(set.priority.rawValue), \(new.trace))
                    """,
                    logger: logger
                )
                try await Outbox.append([.mediaStored(media, id: new.eventID)], on: connection, logger: logger)
                try await connection.query(
                    """
                    UPDATE resumable_uploads SET completed = true, received = \(new.size), head = '\\x'::bytea, claim = NULL, claimed_until = NULL
                    WHERE id = \(id.uuid)
                    """,
                    logger: logger
                )
                return media
            }
        }
    }

    public func removeResumableUpload(_ id: MediaID) async throws -> ResumableUpload? {
        try await run("remove_resumable_upload") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                let removed = try await ResumableRow.first(
                    try await connection.query(
                        "DELETE FROM resumable_uploads WHERE id = \(id.uuid) RETURNING \(unescaped: ResumableRow.columns)",
                        logger: logger
                    )
                )?.upload
                if let removed, let placement = removed.placement, !removed.completed {
                    let counter = UploadSetRow.counter(placement.kind)
                    try await connection.query(
                        "UPDATE upload_sets SET \(unescaped: counter) = \(unescaped: counter) - 1 WHERE id = \(removed.uploadSetID.uuid) AND \(unescaped: counter) > 0",
                        logger: logger
                    )
                }
                return removed
            }
        }
    }

    public func expiredResumableUploads(now: Date, limit: Int) async throws -> [ResumableUpload] {
        try await run("expired_resumable_uploads") { [client, logger] in
            var uploads: [ResumableUpload] = []
            for try await row in try await client.query(
                """
                SELECT \(unescaped: ResumableRow.columns) FROM resumable_uploads WHERE expires_at <= \(now)
                ORDER BY expires_at LIMIT \(limit)
                """,
                logger: logger
            ) {
                uploads.append(try ResumableRow.decode(row).upload)
            }
            return uploads
        }
    }
}

/// One `resumable_uploads` row, with its claim.
/// Records a resumable upload's progress under its claim: one statement per landed MiB of every resumable
/// upload, so it is prepared once per connection instead of parsed and planned on every call.
struct RecordResumableProgressStatement: PostgresPreparedStatement {
    typealias Row = Int

    static let sql = """
        UPDATE resumable_uploads SET received = $2::bigint, head = $3::bytea, length = coalesce($4::bigint, length),
            hash_state = $5::bytea, claim = CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE claim END, claimed_until = $6::timestamptz
        WHERE id = $1::uuid AND claim = $7::text RETURNING 1
        """

    var id: MediaID
    var claim: String
    var received: Int64
    var head: [UInt8]
    var length: Int64?
    var hashState: [UInt8]?
    var until: Date?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(id.uuid)
        bindings.append(received)
        bindings.append(ByteBuffer(bytes: head))
        bindings.append(length)
        bindings.append(hashState.map { ByteBuffer(bytes: $0) })
        bindings.append(until)
        bindings.append(claim)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
}

struct ResumableRow {
    var upload: ResumableUpload
    var claim: String?
    var claimedUntil: Date?

    static let columns = """
        id, upload_set_id, owner_id, length, received, head, kind, mime, pool, object_key, ledger_slot, metadata::text AS metadata_json, \
        created_at, expires_at, completed, claim, claimed_until, hash_state
        """

    static func decode(_ row: PostgresRow) throws -> ResumableRow {
        let cells = PostgresRandomAccessRow(row)
        let id = try cells["id"].decode(UUID.self)
        var placement: ResumablePlacement?
        if let kind = try cells["kind"].decode(String?.self) {
            guard let kind = MediaKind(rawValue: kind), let mime = try cells["mime"].decode(String?.self),
                let pool = try cells["pool"].decode(String?.self), let key = try cells["object_key"].decode(String?.self),
                let slot = try cells["ledger_slot"].decode(String?.self)
            else { throw MetadataStoreError(.other, "resumable upload \(id) has an incomplete placement") }
            placement = ResumablePlacement(kind: kind, mime: mime, ticket: PendingTicket(location: ObjectLocation(pool: pool, key: key), slot: slot))
        }
        let head = try cells["head"].decode(ByteBuffer.self)
        let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(try cells["metadata_json"].decode(String.self).utf8))) ?? [:]
        return ResumableRow(
            upload: ResumableUpload(
                id: MediaID(uuid: id),
                uploadSetID: UploadSetID(uuid: try cells["upload_set_id"].decode(UUID.self)),
                ownerID: try cells["owner_id"].decode(String.self),
                length: try cells["length"].decode(Int64?.self),
                received: try cells["received"].decode(Int64.self),
                head: Array(head.readableBytesView),
                placement: placement,
                metadata: metadata,
                createdAt: try cells["created_at"].decode(Date.self),
                expiresAt: try cells["expires_at"].decode(Date.self),
                completed: try cells["completed"].decode(Bool.self),
                hashState: try cells["hash_state"].decode(ByteBuffer?.self).map { Array($0.readableBytesView) }
            ),
            claim: try cells["claim"].decode(String?.self),
            claimedUntil: try cells["claimed_until"].decode(Date?.self)
        )
    }

    static func first(_ rows: PostgresRowSequence) async throws -> ResumableRow? {
        for try await row in rows { return try decode(row) }
        return nil
    }
}
