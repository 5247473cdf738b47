import Foundation
import MediaCore

/// The JSON shapes of the API (snake_case keys, ISO 8601 dates), built from the domain types.
struct CreateUploadSetRequest: Decodable {
    var ownerID: String
    var context: String
    var contextID: String
    var isPrivate: Bool?
    var priority: String?

    enum CodingKeys: String, CodingKey {
        case ownerID = "owner_id"
        case context
        case contextID = "context_id"
        case isPrivate = "private"
        case priority
    }

    /// `private` and `priority` may be left out, but when present they have their type: `null` is refused,
    /// not taken for the default.
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ownerID = try container.decode(String.self, forKey: .ownerID)
        context = try container.decode(String.self, forKey: .context)
        contextID = try container.decode(String.self, forKey: .contextID)
        isPrivate = container.contains(.isPrivate) ? try container.decode(Bool.self, forKey: .isPrivate) : nil
        priority = container.contains(.priority) ? try container.decode(String.self, forKey: .priority) : nil
    }
}

struct KindLimitJSON: Encodable {
    var maxCount: Int
    var maxBytes: Int64

    enum CodingKeys: String, CodingKey {
        case maxCount = "max_count"
        case maxBytes = "max_bytes"
    }

    init(_ limit: KindLimit) {
        maxCount = limit.maxCount
        maxBytes = limit.maxBytes
    }
}

struct LimitsJSON: Encodable {
    var photo: KindLimitJSON
    var audio: KindLimitJSON
    var video: KindLimitJSON

    init(_ limits: ContextLimits) {
        photo = KindLimitJSON(limits.photo)
        audio = KindLimitJSON(limits.audio)
        video = KindLimitJSON(limits.video)
    }
}

struct CreatedUploadSetJSON: Encodable {
    var id: String
    var uploadToken: String
    var expiresAt: Date
    var tokenExpiresAt: Date
    var uploadURL: String
    var limits: LimitsJSON

    enum CodingKeys: String, CodingKey {
        case id
        case uploadToken = "upload_token"
        case expiresAt = "expires_at"
        case tokenExpiresAt = "token_expires_at"
        case uploadURL = "upload_url"
        case limits
    }
}

struct RenditionJSON: Encodable {
    var name: String
    var mime: String
    var width: Int?
    var height: Int?
    var size: Int64
    var sha256: String
    var url: String?

    init(_ rendition: Rendition, url: String?) {
        name = rendition.name
        mime = rendition.mime
        width = rendition.width
        height = rendition.height
        size = rendition.size
        sha256 = rendition.sha256
        self.url = url
    }
}

struct MediaJSON: Encodable {
    var id: String
    var kind: String
    var state: String
    var size: Int64
    var sha256: String
    var mime: String
    var ownerID: String
    var uploadSetID: String
    var width: Int?
    var height: Int?
    var durationMS: Int64?
    var failureReason: String?
    var createdAt: Date
    var committedAt: Date?
    var deletedAt: Date?
    var metadata: [String: MetadataValue]?
    var renditions: [RenditionJSON]?
    var originalURL: String?
    var negotiatedURLs: [String: String]?
    var urlsExpireAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, kind, state, size, sha256, mime, width, height, metadata, renditions
        case originalURL = "original_url"
        case negotiatedURLs = "negotiated_urls"
        case urlsExpireAt = "urls_expire_at"
        case ownerID = "owner_id"
        case uploadSetID = "upload_set_id"
        case durationMS = "duration_ms"
        case failureReason = "failure_reason"
        case createdAt = "created_at"
        case committedAt = "committed_at"
        case deletedAt = "deleted_at"
    }

    /// - Parameters:
    ///   - renditions: listed when given, each with its URL from `urls`.
    ///   - urls: the origin URLs, for a single media item's view.
    init(_ media: Media, renditions: [Rendition]? = nil, urls: MediaURLs? = nil) {
        id = media.id.description
        metadata = media.metadata.isEmpty ? nil : media.metadata
        self.renditions = renditions?.map { RenditionJSON($0, url: urls?.renditions[$0.name]) }
        originalURL = urls?.original
        negotiatedURLs = urls.flatMap { $0.negotiated.isEmpty ? nil : $0.negotiated }
        urlsExpireAt = urls?.expiresAt
        kind = media.kind.rawValue
        state = media.state.rawValue
        size = media.size
        sha256 = media.sha256
        mime = media.mime
        ownerID = media.ownerID
        uploadSetID = media.uploadSetID.description
        width = media.width
        height = media.height
        durationMS = media.durationMilliseconds
        failureReason = media.failureReason
        createdAt = media.createdAt
        committedAt = media.committedAt
        deletedAt = media.deletedAt
    }
}

struct UploadSetJSON: Encodable {
    var id: String
    var ownerID: String
    var context: String
    var contextID: String
    var isPrivate: Bool
    var priority: String
    var state: String
    var createdAt: Date
    var expiresAt: Date
    var committedAt: Date?
    var media: [MediaJSON]?

    enum CodingKeys: String, CodingKey {
        case id, context, state, media, priority
        case isPrivate = "private"
        case ownerID = "owner_id"
        case contextID = "context_id"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case committedAt = "committed_at"
    }

    init(_ set: UploadSet, media: [Media]?) {
        id = set.id.description
        ownerID = set.ownerID
        context = set.context.rawValue
        contextID = set.contextID
        isPrivate = set.isPrivate
        priority = set.priority.rawValue
        state = set.state.rawValue
        createdAt = set.createdAt
        expiresAt = set.expiresAt
        committedAt = set.committedAt
        self.media = media?.map { MediaJSON($0) }
    }
}

/// One entry per part of an upload request: the stored media, or why the part was refused.
struct PartResultJSON: Encodable {
    var part: Int
    var filename: String?
    var id: String?
    var kind: String?
    var size: Int64?
    var sha256: String?
    var mime: String?
    var state: String?
    var error: ErrorBody.Detail?

    static func stored(_ part: Int, _ filename: String?, _ media: Media) -> PartResultJSON {
        PartResultJSON(
            part: part,
            filename: filename,
            id: media.id.description,
            kind: media.kind.rawValue,
            size: media.size,
            sha256: media.sha256,
            mime: media.mime,
            state: media.state.rawValue,
            error: nil
        )
    }

    static func refused(_ part: Int, _ filename: String?, _ error: APIError) -> PartResultJSON {
        PartResultJSON(part: part, filename: filename, error: .init(code: error.code, message: error.message))
    }
}

struct UploadResultJSON: Encodable {
    var media: [PartResultJSON]
    var error: ErrorBody.Detail?
}

struct EventJSON: Encodable {
    var seq: Int64
    var id: String
    var type: String
    var mediaID: String?
    var uploadSetID: String?
    var payload: JSONDocument
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case seq, id, type, payload
        case mediaID = "media_id"
        case uploadSetID = "upload_set_id"
        case createdAt = "created_at"
    }

    init(_ event: OutboxEvent) {
        seq = event.sequence
        id = event.id.uuidString.lowercased()
        type = event.type
        mediaID = event.mediaID?.description
        uploadSetID = event.uploadSetID?.description
        payload = (try? JSONDecoder().decode(JSONDocument.self, from: Data(event.payload.utf8))) ?? .null
        createdAt = event.createdAt
    }
}

struct EventsJSON: Encodable {
    var events: [EventJSON]
    /// The cursor for the next call: the last sequence returned, or the one given when there was none.
    var nextAfter: Int64

    enum CodingKeys: String, CodingKey {
        case events
        case nextAfter = "next_after"
    }
}

/// Any JSON value, to pass event payloads through as documents.
indirect enum JSONDocument: Codable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONDocument])
    case object([String: JSONDocument])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONDocument].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONDocument].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
