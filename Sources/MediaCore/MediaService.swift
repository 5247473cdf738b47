import Foundation
import Logging

/// A newly opened upload set, with the token its owner's client uploads with.
public struct OpenedUploadSet: Sendable {
    public var set: UploadSet
    public var uploadToken: String
    public var limits: ContextLimits
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
public struct MediaService<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    public let metadata: Metadata
    public let objects: Objects
    public let settings: UploadSettings
    public let tokens: UploadTokenSigner
    /// The origin's lookups, forgotten when media is deleted here.
    public let originCache: OriginLookupCache?
    let logger: Logger

    public init(
        metadata: Metadata, objects: Objects, settings: UploadSettings, tokens: UploadTokenSigner, originCache: OriginLookupCache? = nil,
        logger: Logger
    ) {
        self.metadata = metadata
        self.objects = objects
        self.settings = settings
        self.tokens = tokens
        self.originCache = originCache
        self.logger = logger
    }

    /// Identifiers of owners and contexts come from other services: opaque, but short and printable.
    public static func validateExternalID(_ value: String, name: String) throws(MediaError) {
        try ExternalID.validate(value, name: name)
    }

    /// Opens a draft set. A private set's media are served through signed URLs only, whatever the context.
    public func openUploadSet(
        ownerID: String, context: UploadContext, contextID: String, isPrivate: Bool = false, now: Date = Date()
    ) async throws -> OpenedUploadSet {
        try Self.validateExternalID(ownerID, name: "owner_id")
        try Self.validateExternalID(contextID, name: "context_id")
        let new = NewUploadSet(
            id: .generate(now: now), ownerID: ownerID, context: context, contextID: contextID, isPrivate: isPrivate,
            expiresAt: now.addingTimeInterval(settings.draftLifetime.seconds))
        let set = try await map("open the upload set") { try await metadata.createUploadSet(new) }
        let grant = UploadGrant(
            uploadSetID: set.id, ownerID: ownerID,
            expiresAt: min(set.expiresAt, now.addingTimeInterval(settings.tokenLifetime.seconds)))
        return OpenedUploadSet(set: set, uploadToken: tokens.sign(grant), limits: settings.limits[context])
    }

    /// A set and its media (tombstoned ones included, in their `deleted` state).
    public func uploadSet(_ id: UploadSetID) async throws -> (UploadSet, [Media]) {
        guard let set = try await map("read the upload set", { try await metadata.uploadSet(id) }) else {
            throw MediaError(.notFound, "no upload set \(id)")
        }
        let media = try await map("read the set's media") { try await metadata.media(inSet: id) }
        return (set, media)
    }

    public func commitUploadSet(_ id: UploadSetID, now: Date = Date()) async throws -> UploadSet {
        try await map("commit the upload set") { try await metadata.commitUploadSet(id, now: now) }
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
    public func deleteMedia(_ id: MediaID, now: Date = Date()) async throws {
        guard let media = try await map("delete the media", { try await metadata.tombstoneMedia(id, now: now) }) else {
            throw MediaError(.notFound, "no media \(id)")
        }
        originCache?.forget(id)
        await Purger(metadata: metadata, objects: objects, logger: logger).purge(media, now: now)
    }

    public func events(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        guard after >= 0 else { throw MediaError(.invalidRequest, "after must not be negative") }
        guard (1...1000).contains(limit) else { throw MediaError(.invalidRequest, "limit must be between 1 and 1000") }
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

/// Removes the objects of tombstoned media and records that they are gone.
struct Purger<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    let metadata: Metadata
    let objects: Objects
    let logger: Logger

    /// Returns whether the media item is fully purged: its original and its renditions.
    @discardableResult
    func purge(_ media: Media, now: Date) async -> Bool {
        do {
            let locations = [media.location] + (try await metadata.renditions(of: media.id)).map(\.location)
            for location in locations {
                do {
                    try await objects.remove(location)
                } catch let error as ObjectStoreError where error.code == .notFound {}
            }
            try await metadata.markPurged(media.id, now: now)
            return true
        } catch {
            logger.warning("purge deferred to the reconciler", metadata: ["media.id": "\(media.id)", "error": "\(error)"])
            return false
        }
    }
}
