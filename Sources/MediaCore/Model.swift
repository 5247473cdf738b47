import Foundation

/// Where an upload set's media will be attached in the social product.
public enum UploadContext: String, Sendable, Hashable, CaseIterable, Codable {
    case post
    case profile
    case community
    case message
}

/// An upload set is a draft until the owning service publishes it; drafts that are never committed expire.
public enum UploadSetState: String, Sendable, Hashable, CaseIterable, Codable {
    case draft
    case committed
    case expired
}

/// The lifecycle of one media item: stored (original in Ceph, row committed), then processed.
/// `deleted` is a tombstone: the row stays, the objects go.
public enum MediaState: String, Sendable, Hashable, CaseIterable, Codable {
    case stored
    case processing
    case ready
    case failed
    case deleted
}

/// An object in a RADOS pool.
public struct ObjectLocation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var pool: String
    public var key: String

    public init(pool: String, key: String) {
        self.pool = pool
        self.key = key
    }

    public var description: String { "\(pool)/\(key)" }
}

/// The RADOS pools the gateway writes to: one per media kind for originals, one for derivatives.
public struct StoragePools: Hashable, Sendable, Codable {
    public var photo: String
    public var audio: String
    public var video: String
    public var derived: String

    public init(photo: String = "media.photo", audio: String = "media.audio", video: String = "media.video", derived: String = "media.derived") {
        self.photo = photo
        self.audio = audio
        self.video = video
        self.derived = derived
    }

    /// The pool that holds originals of `kind`.
    public func pool(for kind: MediaKind) -> String {
        switch kind {
        case .photo: photo
        case .audio: audio
        case .video: video
        }
    }

    /// Every pool, originals first.
    public var all: [String] { [photo, audio, video, derived] }
}

/// How many live (not deleted) items of each kind a set holds.
public struct LiveCounts: Hashable, Sendable {
    public var photo: Int
    public var audio: Int
    public var video: Int

    public init(photo: Int = 0, audio: Int = 0, video: Int = 0) {
        self.photo = photo
        self.audio = audio
        self.video = video
    }

    public subscript(kind: MediaKind) -> Int {
        switch kind {
        case .photo: photo
        case .audio: audio
        case .video: video
        }
    }
}

/// A set of media uploaded by one owner for one context (a post draft, a profile photo, ...).
public struct UploadSet: Hashable, Sendable {
    public var id: UploadSetID
    public var ownerID: String
    public var context: UploadContext
    public var contextID: String
    /// Created private: its media are served only through signed URLs, whatever the context.
    public var isPrivate: Bool
    /// How soon the set's media are processed.
    public var priority: ProcessingPriority
    public var state: UploadSetState
    public var createdAt: Date
    public var expiresAt: Date
    public var committedAt: Date?
    /// Live items per kind when the set was read.
    public var liveCounts: LiveCounts

    public init(
        id: UploadSetID,
        ownerID: String,
        context: UploadContext,
        contextID: String,
        isPrivate: Bool = false,
        priority: ProcessingPriority = .interactive,
        state: UploadSetState,
        createdAt: Date,
        expiresAt: Date,
        committedAt: Date? = nil,
        liveCounts: LiveCounts = LiveCounts()
    ) {
        self.id = id
        self.ownerID = ownerID
        self.context = context
        self.contextID = contextID
        self.isPrivate = isPrivate
        self.priority = priority
        self.state = state
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.committedAt = committedAt
        self.liveCounts = liveCounts
    }
}

/// One stored original and what is known about it.
public struct Media: Hashable, Sendable {
    public var id: MediaID
    public var kind: MediaKind
    public var ownerID: String
    public var uploadSetID: UploadSetID
    public var state: MediaState
    public var size: Int64
    /// Lowercase hex SHA-256 of the original's bytes.
    public var sha256: String
    /// The MIME type decided by sniffing the content, never the client's declaration.
    public var mime: String
    public var width: Int?
    public var height: Int?
    public var durationMilliseconds: Int64?
    public var location: ObjectLocation
    public var createdAt: Date
    public var committedAt: Date?
    public var deletedAt: Date?
    public var failureReason: String?
    /// What processing learnt: orientation, placeholder and colour of photos; codecs, frame rate, rotation of
    /// videos; codec, sample rate, channels and waveform of audio; the poster or cover rendition's name.
    public var metadata: [String: MetadataValue]

    public init(
        id: MediaID,
        kind: MediaKind,
        ownerID: String,
        uploadSetID: UploadSetID,
        state: MediaState,
        size: Int64,
        sha256: String,
        mime: String,
        width: Int? = nil,
        height: Int? = nil,
        durationMilliseconds: Int64? = nil,
        location: ObjectLocation,
        createdAt: Date,
        committedAt: Date? = nil,
        deletedAt: Date? = nil,
        failureReason: String? = nil,
        metadata: [String: MetadataValue] = [:]
    ) {
        self.id = id
        self.kind = kind
        self.ownerID = ownerID
        self.uploadSetID = uploadSetID
        self.state = state
        self.size = size
        self.sha256 = sha256
        self.mime = mime
        self.width = width
        self.height = height
        self.durationMilliseconds = durationMilliseconds
        self.location = location
        self.createdAt = createdAt
        self.committedAt = committedAt
        self.deletedAt = deletedAt
        self.failureReason = failureReason
        self.metadata = metadata
    }
}

/// A derivative of a media item (a resized photo, a transcoded video, a poster frame).
public struct Rendition: Hashable, Sendable {
    public var mediaID: MediaID
    /// Stable name within the media item, for example `w320.webp`.
    public var name: String
    public var mime: String
    public var width: Int?
    public var height: Int?
    public var size: Int64
    public var sha256: String
    public var location: ObjectLocation
    public var createdAt: Date

    public init(
        mediaID: MediaID,
        name: String,
        mime: String,
        width: Int?,
        height: Int?,
        size: Int64,
        sha256: String,
        location: ObjectLocation,
        createdAt: Date
    ) {
        self.mediaID = mediaID
        self.name = name
        self.mime = mime
        self.width = width
        self.height = height
        self.size = size
        self.sha256 = sha256
        self.location = location
        self.createdAt = createdAt
    }
}
