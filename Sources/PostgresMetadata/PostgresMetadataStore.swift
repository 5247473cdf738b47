import Foundation
import Logging
import MediaCore
import PostgresNIO

/// The ``MetadataStore`` on PostgreSQL.
///
/// Every operation runs under the configured statement deadline; failures come out as
/// ``MetadataStoreError`` (unreachable or slow database: `unavailable`/`timedOut`).
public struct PostgresMetadataStore: MetadataStore {
    public let database: MetadataDatabase
    let logger: Logger

    public init(database: MetadataDatabase, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    var client: PostgresClient { database.client }

    /// Runs one database operation under the statement deadline and translates its errors.
    func run<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let configuration = database.configuration
        do {
            return try await withDeadline(configuration.connectTimeout + configuration.statementTimeout, operation: body)
        } catch {
            throw MetadataStoreError.translating(error, operation, database: configuration.redacted)
        }
    }

    public func createUploadSet(_ new: NewUploadSet) async throws -> UploadSet {
        try await run("create upload set") { [client, logger] in
            let rows = try await client.query(
                """
                INSERT INTO upload_sets (id, owner_id, context, context_id, expires_at)
                VALUES (\(new.id.uuid), \(new.ownerID), \(new.context.rawValue), \(new.contextID), \(new.expiresAt))
                RETURNING \(unescaped: UploadSetRow.columns)
                """, logger: logger)
            guard let set = try await UploadSetRow.first(rows) else {
                throw MetadataStoreError(.other, "create upload set: no row returned")
            }
            return set
        }
    }

    public func uploadSet(_ id: UploadSetID) async throws -> UploadSet? {
        try await run("read upload set") { [client, logger] in
            let rows = try await client.query(
                "SELECT \(unescaped: UploadSetRow.columns) FROM upload_sets WHERE id = \(id.uuid)", logger: logger)
            return try await UploadSetRow.first(rows)
        }
    }

    public func insertMedia(_ new: NewMedia) async throws -> Media {
        try await run("insert media") { [client, logger] in
            try await client.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    """
                    INSERT INTO media (id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, pool, object_key)
                    VALUES (\(new.id.uuid), \(new.kind.rawValue), \(new.ownerID), \(new.uploadSetID.uuid), 'stored',
                            \(new.size), \(new.sha256), \(new.mime), \(new.location.pool), \(new.location.key))
                    RETURNING \(unescaped: MediaRow.columns)
                    """, logger: logger)
                guard let media = try await MediaRow.first(rows) else {
                    throw MetadataStoreError(.other, "insert media: no row returned")
                }
                try await Outbox.append(.stored(media), on: connection, logger: logger)
                return media
            }
        }
    }

    public func media(_ id: MediaID) async throws -> Media? {
        try await run("read media") { [client, logger] in
            let rows = try await client.query(
                "SELECT \(unescaped: MediaRow.columns) FROM media WHERE id = \(id.uuid)", logger: logger)
            return try await MediaRow.first(rows)
        }
    }
}

/// Column lists and row decoding, in one place per table.
enum UploadSetRow {
    static let columns = "id, owner_id, context, context_id, state, created_at, expires_at, committed_at"

    static func decode(_ row: PostgresRow) throws -> UploadSet {
        let (id, owner, context, contextID, state, created, expires, committed) =
            try row.decode((UUID, String, String, String, String, Date, Date, Date?).self)
        guard let context = UploadContext(rawValue: context), let state = UploadSetState(rawValue: state) else {
            throw MetadataStoreError(.other, "upload set \(id) has an unknown context or state")
        }
        return UploadSet(
            id: UploadSetID(uuid: id), ownerID: owner, context: context, contextID: contextID, state: state,
            createdAt: created, expiresAt: expires, committedAt: committed)
    }

    static func first(_ rows: PostgresRowSequence) async throws -> UploadSet? {
        for try await row in rows { return try decode(row) }
        return nil
    }
}

enum MediaRow {
    static let columns = """
        id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, width, height, duration_ms, \
        pool, object_key, created_at, committed_at, deleted_at, failure_reason
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
            id: MediaID(uuid: id), kind: kind, ownerID: try cells["owner_id"].decode(String.self),
            uploadSetID: UploadSetID(uuid: try cells["upload_set_id"].decode(UUID.self)), state: state,
            size: try cells["size_bytes"].decode(Int64.self), sha256: try cells["sha256"].decode(String.self),
            mime: try cells["mime"].decode(String.self), width: try cells["width"].decode(Int?.self),
            height: try cells["height"].decode(Int?.self), durationMilliseconds: try cells["duration_ms"].decode(Int64?.self),
            location: ObjectLocation(pool: try cells["pool"].decode(String.self), key: try cells["object_key"].decode(String.self)),
            createdAt: try cells["created_at"].decode(Date.self), committedAt: try cells["committed_at"].decode(Date?.self),
            deletedAt: try cells["deleted_at"].decode(Date?.self), failureReason: try cells["failure_reason"].decode(String?.self))
    }

    static func first(_ rows: PostgresRowSequence) async throws -> Media? {
        for try await row in rows { return try decode(row) }
        return nil
    }
}
