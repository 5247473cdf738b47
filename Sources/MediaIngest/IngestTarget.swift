import Foundation
import MediaCore
import NIOCore
import Synchronization

/// Where one file to ingest goes: its owner and the context (post, profile, community, message) it belongs to.
public struct IngestDestination: Sendable, Hashable, Codable {
    public var ownerID: String
    public var context: UploadContext
    public var contextID: String
    public var isPrivate: Bool

    public init(ownerID: String, context: UploadContext, contextID: String, isPrivate: Bool = false) {
        self.ownerID = ownerID
        self.context = context
        self.contextID = contextID
        self.isPrivate = isPrivate
    }

    /// A stable text key: the files of one destination go into one upload set, under that context's limits.
    public var key: String { "\(ownerID)|\(context.rawValue)|\(contextID)|\(isPrivate ? "private" : "public")" }
}

/// One file to ingest.
public struct IngestItem: Sendable, Hashable {
    /// The path as the operator wrote it (manifest) or found it (directory), relative or absolute.
    public var path: String
    public var destination: IngestDestination

    public init(path: String, destination: IngestDestination) {
        self.path = path
        self.destination = destination
    }
}

/// An upload set opened for ingesting, as the target knows it.
public struct IngestSet: Sendable, Hashable, Codable {
    public var id: String
    /// The set's upload token, for targets that upload through the public API.
    public var token: String?
    /// When that token stops being accepted.
    public var tokenExpiresAt: Date?

    public init(id: String, token: String?, tokenExpiresAt: Date? = nil) {
        self.id = id
        self.token = token
        self.tokenExpiresAt = tokenExpiresAt
    }
}

/// What a target knows of a set when a run resumes: whether it still takes uploads, and the content hashes
/// of the media already in it (so that a file stored just before a crash is recognised, not stored again).
public struct IngestSetState: Sendable, Hashable {
    public var acceptsUploads: Bool
    public var isCommitted: Bool
    /// Media id by content hash (lowercase hex SHA-256), live media only.
    public var mediaByHash: [String: [String]]

    public init(acceptsUploads: Bool, isCommitted: Bool, mediaByHash: [String: [String]]) {
        self.acceptsUploads = acceptsUploads
        self.isCommitted = isCommitted
        self.mediaByHash = mediaByHash
    }
}

/// A file stored by a target.
public struct IngestedFile: Sendable, Hashable {
    public var mediaID: String
    /// Lowercase hex SHA-256 of the stored bytes.
    public var sha256: String

    public init(mediaID: String, sha256: String) {
        self.mediaID = mediaID
        self.sha256 = sha256
    }
}

/// Where ingested files go: the upload use cases directly, or a running gateway over HTTP. Both apply the
/// same rules, because both end in ``UploadService``. Errors are ``MediaError``s.
public protocol IngestTarget: Sendable {
    /// Opens a draft set for one destination.
    func openSet(for destination: IngestDestination) async throws -> IngestSet
    /// The state of a set opened by an earlier run; nil when it no longer exists.
    func state(of set: IngestSet) async throws -> IngestSetState?
    /// Stores one file, streamed from `chunks`, and returns the new media item's id and content hash.
    func upload<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, size: Int64, filename: String, into set: IngestSet) async throws -> IngestedFile
    where Chunks.Element == ByteBuffer
    /// Publishes the set, so that its media outlive the draft lifetime.
    func commit(_ set: IngestSet) async throws
}

extension MediaError.Code {
    /// Whether an ingest that ended with this error is final for its file (the file itself, or where it
    /// was to go, is refused) rather than a failure worth retrying on the next run.
    public var refusesFile: Bool {
        switch self {
        case .invalidRequest, .unsupportedMediaType, .tooLarge, .limitExceeded: true
        default: false
        }
    }
}

/// Ingests straight through the use cases (``MediaService`` opens and commits sets, ``UploadService``
/// stores the files): the same rules as the HTTP API, without HTTP.
public struct DirectIngestTarget<Storage: MediaStores>: IngestTarget {
    public let media: MediaService<Storage>
    public let uploads: UploadService<Storage>
    /// Sets opened by this target: an upload into one of them needs no read of it first (the count limit is
    /// enforced where it counts, under the set's lock when the row is recorded).
    private let opened = OpenedSets()

    public init(media: MediaService<Storage>, uploads: UploadService<Storage>) {
        self.media = media
        self.uploads = uploads
    }

    public func openSet(for destination: IngestDestination) async throws -> IngestSet {
        let opened = try await media.openUploadSet(
            ownerID: destination.ownerID,
            context: destination.context,
            contextID: destination.contextID,
            isPrivate: destination.isPrivate,
            priority: .bulk
        )
        self.opened.remember(opened.set)
        return IngestSet(id: opened.set.id.description, token: nil)
    }

    public func state(of set: IngestSet) async throws -> IngestSetState? {
        guard let id = UploadSetID(set.id) else { return nil }
        let found: (UploadSet, [Media])
        do {
            found = try await media.uploadSet(id)
        } catch let error as MediaError where error.code == .notFound {
            return nil
        }
        let (uploadSet, items) = found
        var byHash: [String: [String]] = [:]
        for item in items where item.state != .deleted { byHash[item.sha256, default: []].append(item.id.description) }
        return IngestSetState(
            acceptsUploads: uploadSet.state == .draft && uploadSet.expiresAt > Date().addingTimeInterval(60),
            isCommitted: uploadSet.state == .committed,
            mediaByHash: byHash
        )
    }

    public func upload<Chunks: AsyncSequence & Sendable>(
        _ chunks: Chunks,
        size: Int64,
        filename: String,
        into set: IngestSet
    ) async throws
        -> IngestedFile
    where Chunks.Element == ByteBuffer {
        guard let id = UploadSetID(set.id) else { throw MediaError(.notFound, "no upload set \(set.id)") }
        let uploadSet: UploadSet
        if let known = opened.set(id) {
            try UploadService<Storage>.checkAcceptsUploads(known, now: Date())
            uploadSet = known
        } else {
            uploadSet = try await uploads.uploadSet(id)
        }
        let stored = try await uploads.storeOriginal(chunks, into: uploadSet)
        return IngestedFile(mediaID: stored.id.description, sha256: stored.sha256)
    }

    public func commit(_ set: IngestSet) async throws {
        guard let id = UploadSetID(set.id) else { throw MediaError(.notFound, "no upload set \(set.id)") }
        _ = try await media.commitUploadSet(id)
        // a committed set takes no more uploads: forgotten, or a directory ingest (a set per file) would keep
        // every set of the run in memory
        opened.forget(id)
    }

    /// How many opened sets the target still remembers.
    var remembered: Int { opened.count }
}

/// Upload sets a direct ingest opened, by id.
final class OpenedSets: Sendable {
    private let sets = Mutex<[UploadSetID: UploadSet]>([:])

    func remember(_ set: UploadSet) {
        sets.withLock { $0[set.id] = set }
    }

    func set(_ id: UploadSetID) -> UploadSet? {
        sets.withLock { $0[id] }
    }

    func forget(_ id: UploadSetID) {
        _ = sets.withLock { $0.removeValue(forKey: id) }
    }

    var count: Int { sets.withLock { $0.count } }
}
