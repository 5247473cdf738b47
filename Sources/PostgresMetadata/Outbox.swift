import Foundation
import Logging
import MediaCore
import PostgresNIO

/// Events written to the transactional outbox, in the same transaction as the change they describe.
enum Outbox {
    struct Event: Sendable {
        var type: String
        var mediaID: MediaID?
        var uploadSetID: UploadSetID?
        var payload: [String: JSONValue]

        static func mediaStored(_ media: Media) -> Event {
            Event(type: "media.stored", mediaID: media.id, uploadSetID: media.uploadSetID, payload: describe(media))
        }

        static func mediaDeleted(_ media: Media, reason: String) -> Event {
            var payload = describe(media)
            payload["reason"] = .string(reason)
            return Event(type: "media.deleted", mediaID: media.id, uploadSetID: media.uploadSetID, payload: payload)
        }

        static func setCommitted(_ set: UploadSet, media: [Media]) -> Event {
            Event(
                type: "upload_set.committed", mediaID: nil, uploadSetID: set.id,
                payload: [
                    "upload_set_id": .string(set.id.description), "owner_id": .string(set.ownerID),
                    "context": .string(set.context.rawValue), "context_id": .string(set.contextID),
                    "media_ids": .array(media.map { .string($0.id.description) }),
                ])
        }

        static func describe(_ media: Media) -> [String: JSONValue] {
            [
                "media_id": .string(media.id.description), "upload_set_id": .string(media.uploadSetID.description),
                "owner_id": .string(media.ownerID), "kind": .string(media.kind.rawValue), "mime": .string(media.mime),
                "size": .integer(media.size), "sha256": .string(media.sha256), "state": .string(media.state.rawValue),
            ]
        }
    }

    /// Appends events. Call it as the last statement of the transaction: the transaction-scoped advisory
    /// lock taken here makes sequence order equal commit order, so a reader that has seen `seq` N never
    /// later finds a smaller one appear (the lock is held only from here to COMMIT).
    static func append(_ events: [Event], on connection: PostgresConnection, logger: Logger) async throws {
        guard !events.isEmpty else { return }
        try await connection.query("SELECT pg_advisory_xact_lock(7261002)", logger: logger)
        for event in events {
            let payload = String(decoding: try JSONEncoder.sorted.encode(event.payload), as: UTF8.self)
            try await connection.query(
                """
                INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload)
                VALUES (\(UUID()), \(event.type), \(event.mediaID?.uuid), \(event.uploadSetID?.uuid), \(payload)::jsonb)
                """, logger: logger)
        }
    }
}

/// A JSON value for event payloads.
enum JSONValue: Sendable, Encodable {
    case string(String)
    case integer(Int64)
    case array([JSONValue])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .array(let values): try container.encode(values)
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
