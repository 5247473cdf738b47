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
        var payload: [String: String]

        static func stored(_ media: Media) -> Event {
            Event(
                type: "media.stored", mediaID: media.id, uploadSetID: media.uploadSetID,
                payload: [
                    "media_id": media.id.description, "upload_set_id": media.uploadSetID.description,
                    "owner_id": media.ownerID, "kind": media.kind.rawValue, "mime": media.mime,
                    "size": "\(media.size)", "sha256": media.sha256,
                ])
        }
    }

    /// Appends an event. Call it as the last statement of the transaction: the transaction-scoped advisory
    /// lock taken here makes sequence order equal commit order, so a reader that has seen `seq` N never
    /// later finds a smaller one appear (the lock is held only from here to COMMIT).
    static func append(_ event: Event, on connection: PostgresConnection, logger: Logger) async throws {
        let payload = String(decoding: try JSONEncoder.sorted.encode(event.payload), as: UTF8.self)
        try await connection.query("SELECT pg_advisory_xact_lock(7261002)", logger: logger)
        try await connection.query(
            """
            INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload)
            VALUES (\(UUID()), \(event.type), \(event.mediaID?.uuid), \(event.uploadSetID?.uuid), \(payload)::jsonb)
            """, logger: logger)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
