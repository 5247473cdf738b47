import Foundation
import Logging

/// A newly opened upload set and the limits it is under.
public struct OpenedUploadSet: Sendable {
    public var set: UploadSet
    public var limits: ContextLimits
}

/// Issues and checks the upload tokens with which an owner's client uploads into one set.
public struct UploadGrants: Sendable {
    public let signer: UploadTokenSigner
    /// How long a token is valid (never past its set's expiry).
    public let tokenLifetime: Duration
    let clock: MediaClock

    public init(signer: UploadTokenSigner, tokenLifetime: Duration, clock: MediaClock = .system) {
        self.signer = signer
        self.tokenLifetime = tokenLifetime
        self.clock = clock
    }

    /// A token for `set`, and when it stops being accepted.
    public func issue(for set: UploadSet) -> (token: String, expiresAt: Date) {
        let grant = UploadGrant(
            uploadSetID: set.id,
            ownerID: set.ownerID,
            expiresAt: min(set.expiresAt, clock.now().addingTimeInterval(tokenLifetime.seconds))
        )
        return (signer.sign(grant), grant.expiresAt)
    }

    /// The grant of a valid token: `unauthorized` for a bad one, `tokenExpired` for an expired one.
    public func verify(_ token: String) throws(MediaError) -> UploadGrant {
        try signer.verify(token, now: clock.now())
    }
}

/// Identifiers of owners and contexts, which come from other services: opaque, but short and printable.
public enum ExternalID {
    public static func validate(_ value: String, name: String) throws(MediaError) {
        guard !value.isEmpty, value.utf8.count <= 128,
            value.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:@".unicodeScalars.contains($0)) })
        else {
            throw MediaError(.invalidRequest, "\(name) must be 1 to 128 characters: letters, digits, - _ . : @")
        }
    }
}

/// The use cases of the internal API that the social modules call: open, read and commit upload sets, read
/// and delete media, read events. Every error thrown is a ``MediaError``.
public struct MediaService<Storage: MediaStores>: Sendable {
    public let storage: Storage
    public let settings: UploadSettings
    /// The origin's lookups, forgotten when media is deleted here.
    public let originCache: OriginLookupCache?
    let clock: MediaClock
    let logger: Logger

    public init(
        storage: Storage,
        settings: UploadSettings,
        originCache: OriginLookupCache? = nil,
        clock: MediaClock = .system,
        logger: Logger
    ) {
        self.storage = storage
        self.settings = settings
        self.originCache = originCache
        self.clock = clock
        self.logger = logger
    }

    var metadata: Storage.Metadata { storage.metadata }

    /// Opens a draft set. A private set's media are served through signed URLs only, whatever the context;
    /// a bulk set's media are processed after interactive uploads.
    public func openUploadSet(
        ownerID: String,
        context: UploadContext,
        contextID: String,
        isPrivate: Bool = false,
        priority: ProcessingPriority = .interactive
    ) async throws
        -> OpenedUploadSet
    {
        try ExternalID.validate(ownerID, name: "owner_id")
        try ExternalID.validate(contextID, name: "context_id")
        let now = clock.now()
        let new = NewUploadSet(
            id: .generate(now: now),
            ownerID: ownerID,
            context: context,
            contextID: contextID,
            isPrivate: isPrivate,
            priority: priority,
            expiresAt: now.addingTimeInterval(settings.draftLifetime.seconds)
        )
        let set = try await map("open the upload set") { try await metadata.createUploadSet(new) }
        Correlation.note(.set(set.id), "opened")
        return OpenedUploadSet(set: set, limits: settings.limits[context])
    }

    /// A set and its media (tombstoned ones included, in their `deleted` state).
    public func uploadSet(_ id: UploadSetID) async throws -> (UploadSet, [Media]) {
        guard let set = try await map("read the upload set", { try await metadata.uploadSet(id) }) else {
            throw MediaError(.notFound, "no upload set \(id)")
        }
        let media = try await map("read the set's media") { try await metadata.media(inSet: id) }
        return (set, media)
    }

    public func commitUploadSet(_ id: UploadSetID) async throws -> UploadSet {
        let set = try await map("commit the upload set") { try await metadata.commitUploadSet(id, now: clock.now()) }
        Correlation.note(.set(id), "committed")
        return set
    }

    public func media(_ id: MediaID) async throws -> Media {
        guard let media = try await map("read the media", { try await metadata.media(id) }) else {
            throw MediaError(.notFound, "no media \(id)")
        }
        return media
    }

    /// A media item, its renditions and its set.
    public func mediaWithRenditions(_ id: MediaID) async throws -> (Media, [Rendition], UploadSet) {
        let media = try await self.media(id)
        let renditions = try await map("read the renditions") { try await metadata.renditions(of: id) }
        guard let set = try await map("read the upload set", { try await metadata.uploadSet(media.uploadSetID) }) else {
            throw MediaError(.notFound, "no upload set \(media.uploadSetID)")
        }
        return (media, renditions, set)
    }

    /// Deletes a media item: the row is tombstoned first (with its event), the objects removed after. If
    /// the objects cannot be removed now, the reconciler purges them later. Idempotent.
    public func deleteMedia(_ id: MediaID) async throws {
        let now = clock.now()
        guard let media = try await map("delete the media", { try await metadata.tombstoneMedia(id, now: now) }) else {
            throw MediaError(.notFound, "no media \(id)")
        }
        Correlation.note(.media(id), "deleted")
        originCache?.forget(id)
        await Purger(storage: storage, logger: logger).purge(media, now: now)
    }

    public func events(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        guard after >= 0 else { throw MediaError(.invalidRequest, "after must not be negative") }
        guard (1...EventFeed.maxPageSize).contains(limit) else {
            throw MediaError(.invalidRequest, "limit must be between 1 and \(EventFeed.maxPageSize)")
        }
        return try await map("read events") { try await metadata.events(after: after, limit: limit) }
    }

    private func map<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw MediaError.from(error, doing: operation)
        }
    }
}

/// The outbox feed's paging rules.
public enum EventFeed {
    /// The largest page a reader may ask for.
    public static let maxPageSize = 1000
}

/// Removes the objects of tombstoned media and records that they are gone.
struct Purger<Storage: MediaStores>: Sendable {
    let storage: Storage
    let logger: Logger

    /// Returns whether the media item is fully purged: its original and its renditions.
    @discardableResult
    func purge(_ media: Media, now: Date) async -> Bool {
        do {
            let locations = [media.location] + (try await storage.metadata.renditions(of: media.id)).map(\.location)
            for location in locations {
                try await storage.blobs.removeIfPresent(location)
            }
            try await storage.metadata.markPurged(media.id, now: now)
            return true
        } catch {
            logger.warning("purge deferred to the reconciler", metadata: ["media.id": "\(media.id)", "error": "\(error)"])
            return false
        }
    }
}
