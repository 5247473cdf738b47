import Foundation
import Logging
import MediaCore
import PostgresNIO
import Synchronization

/// Events written to the transactional outbox, in the same transaction as the change they describe.
enum Outbox {
    struct Event: Sendable {
        var id = UUID.random()
        var type: String
        var mediaID: MediaID?
        var uploadSetID: UploadSetID?
        var payload: [String: JSONValue]

        static func mediaStored(_ media: Media, id: UUID) -> Event {
            Event(id: id, type: "media.stored", mediaID: media.id, uploadSetID: media.uploadSetID, payload: describe(media))
        }

        /// With the renditions (name, object key, size) the item had: what a purger of CDN edges needs once
        /// the rows are gone.
        static func mediaDeleted(_ media: Media, reason: String, renditions: [DeletedRendition]) -> Event {
            var payload = describe(media)
            payload["reason"] = .string(reason)
            payload["renditions"] = .array(
                renditions.map { .object(["name": .string($0.name), "key": .string($0.key), "size": .integer($0.size)]) }
            )
            return Event(type: "media.deleted", mediaID: media.id, uploadSetID: media.uploadSetID, payload: payload)
        }

        static func mediaReady(_ media: Media, renditions: [String]) -> Event {
            var payload = describe(media)
            payload["renditions"] = .array(renditions.map { .string($0) })
            return Event(type: "media.ready", mediaID: media.id, uploadSetID: media.uploadSetID, payload: payload)
        }

        static func mediaFailed(_ media: Media, reason: String) -> Event {
            var payload = describe(media)
            payload["reason"] = .string(reason)
            return Event(type: "media.failed", mediaID: media.id, uploadSetID: media.uploadSetID, payload: payload)
        }

        static func setCommitted(_ set: UploadSet, media: [Media]) -> Event {
            Event(
                type: "upload_set.committed",
                mediaID: nil,
                uploadSetID: set.id,
                payload: [
                    "upload_set_id": .string(set.id.description), "owner_id": .string(set.ownerID),
                    "context": .string(set.context.rawValue), "context_id": .string(set.contextID),
                    "media_ids": .array(media.map { .string($0.id.description) }),
                ]
            )
        }

        static func describe(_ media: Media) -> [String: JSONValue] {
            [
                "media_id": .string(media.id.description), "upload_set_id": .string(media.uploadSetID.description),
                "owner_id": .string(media.ownerID), "kind": .string(media.kind.rawValue), "mime": .string(media.mime),
                "size": .integer(media.size), "sha256": .string(media.sha256), "state": .string(media.state.rawValue),
            ]
        }
    }

    /// The renditions of media items, by item, read in the transaction that deletes them.
    static func renditions(of ids: [MediaID], on connection: PostgresConnection, logger: Logger) async throws -> [MediaID: [DeletedRendition]] {
        var found: [MediaID: [DeletedRendition]] = [:]
        for try await (id, name, key, size) in try await connection.query(
            "SELECT media_id, name, object_key, size_bytes FROM renditions WHERE media_id = ANY(\(ids.map(\.uuid))) ORDER BY media_id, name",
            logger: logger
        ).decode((UUID, String, String, Int64).self) {
            found[MediaID(uuid: id), default: []].append(DeletedRendition(name: name, key: key, size: size))
        }
        return found
    }

    /// Appends events in the transaction of the change they describe. They get no sequence number yet:
    /// ``sequence(on:logger:)`` numbers them once committed.
    static func append(_ events: [Event], on connection: PostgresConnection, logger: Logger) async throws {
        Appended.current?.events.withLock { $0 += events }
        for event in events {
            let payload = String(decoding: try JSONEncoder.sorted.encode(event.payload), as: UTF8.self)
            for try await _ in try await connection.execute(AppendStatement(event: event, payload: payload), logger: logger) {}
        }
    }

    /// Inserts one event, prepared once per connection.
    struct AppendStatement: PostgresPreparedStatement {
        typealias Row = Int

        static let sql = """
            INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload)
            VALUES ($1::uuid, $2::text, $3::uuid, $4::uuid, $5::text::jsonb)
            RETURNING 1
            """

        var event: Event
        /// The event's payload as JSON text.
        var payload: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 5)
            bindings.append(event.id)
            bindings.append(event.type)
            bindings.append(event.mediaID?.uuid)
            bindings.append(event.uploadSetID?.uuid)
            bindings.append(payload)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }

    /// The events one attempt of a transaction appended: once it commits, each is linked to its media item
    /// (or set) for ``Correlation``.
    final class Appended: Sendable {
        @TaskLocal static var current: Appended?
        let events = Mutex<[Event]>([])

        /// Runs one attempt of a transaction and links the events it appended once it succeeded.
        static func linking<T>(_ body: () async throws -> T) async throws -> T {
            guard Correlation.isEnabled else { return try await body() }
            let appended = Appended()
            let result = try await $current.withValue(appended) { try await body() }
            for event in appended.events.withLock({ $0 }) {
                if let media = event.mediaID {
                    Correlation.link(.media(media), .event(event.id), event.type)
                } else if let set = event.uploadSetID {
                    Correlation.link(.set(set), .event(event.id), event.type)
                }
            }
            return result
        }
    }

    /// Gives every committed, unnumbered event the next sequence numbers, in insertion order. Sequencers
    /// take turns (a transaction-scoped advisory lock), and a transaction only sees committed rows: so an
    /// event is numbered after its transaction committed, always above every number given before, and a
    /// reader that has seen `seq` N never finds a smaller one appear later. Numbers go on above the events
    /// that retention dropped.
    static func sequence(on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.execute(SequencerLockStatement(), logger: logger) {}
        var last: Int64 = 0
        for try await value in try await connection.execute(LastNumberStatement(), logger: logger) { last = value }
        var positions: [Int64] = []
        for try await position in try await connection.execute(UnnumberedStatement(), logger: logger) { positions.append(position) }
        guard !positions.isEmpty else { return }
        let numbers = positions.indices.map { last + 1 + Int64($0) }
        try await connection.query(
            """
            UPDATE outbox SET seq = numbered.seq
            FROM unnest(\(positions)::bigint[], \(numbers)::bigint[]) AS numbered(pos, seq)
            WHERE outbox.pos = numbered.pos
            """,
            logger: logger
        )
    }

    // The statements of every read of the event feed (consumers poll it), prepared once per connection: the
    // outbox has a partition per day, and planning a statement over all of them on every poll cost the
    // database more than running it.

    /// Makes sequencers take turns, until the transaction ends.
    struct SequencerLockStatement: PostgresPreparedStatement {
        typealias Row = Int

        static let sql = "SELECT 1 FROM pg_advisory_xact_lock(7261002)"

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int { try row.decode(Int.self) }
    }

    /// The highest number given: of the events kept, or of those retention dropped.
    struct LastNumberStatement: PostgresPreparedStatement {
        typealias Row = Int64

        static let sql = "SELECT greatest(coalesce(max(seq), 0), (SELECT dropped_through FROM outbox_horizon)) FROM outbox"

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// The committed events not numbered yet, in insertion order.
    struct UnnumberedStatement: PostgresPreparedStatement {
        typealias Row = Int64

        static let sql = "SELECT pos FROM outbox WHERE seq IS NULL ORDER BY pos LIMIT 10000"

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// Events by number after a cursor.
    struct EventsAfterStatement: PostgresPreparedStatement {
        typealias Row = OutboxEvent

        static let sql = """
            SELECT seq, event_id, type, media_id, upload_set_id, payload::text, created_at FROM outbox
            WHERE seq > $1::bigint ORDER BY seq LIMIT $2::bigint
            """

        var after: Int64
        var limit: Int

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(after)
            bindings.append(limit)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> OutboxEvent {
            let (seq, id, type, media, set, payload, created) = try row.decode((Int64, UUID, String, UUID?, UUID?, String, Date).self)
            return OutboxEvent(
                sequence: seq,
                id: id,
                type: type,
                mediaID: media.map(MediaID.init(uuid:)),
                uploadSetID: set.map(UploadSetID.init(uuid:)),
                payload: payload,
                createdAt: created
            )
        }
    }

    /// The highest number retention dropped.
    struct HorizonStatement: PostgresPreparedStatement {
        typealias Row = Int64

        static let sql = "SELECT dropped_through FROM outbox_horizon"

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }
}

/// A JSON value for event payloads.
enum JSONValue: Sendable, Encodable {
    case string(String)
    case integer(Int64)
    case array([JSONValue])
    case object([String: JSONValue])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
        case .object(let fields): try container.encode(fields)
        }
    }
}
extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
