import Foundation

/// What is needed to open a new upload set.
public struct NewUploadSet: Hashable, Sendable {
    public var id: UploadSetID
    public var ownerID: String
    public var context: UploadContext
    public var contextID: String
    public var expiresAt: Date

    public init(id: UploadSetID = .generate(), ownerID: String, context: UploadContext, contextID: String, expiresAt: Date) {
        self.id = id
        self.ownerID = ownerID
        self.context = context
        self.contextID = contextID
        self.expiresAt = expiresAt
    }
}

/// The row written once an original's bytes are safely in the object store.
public struct NewMedia: Hashable, Sendable {
    public var id: MediaID
    public var kind: MediaKind
    public var ownerID: String
    public var uploadSetID: UploadSetID
    public var size: Int64
    public var sha256: String
    public var mime: String
    public var location: ObjectLocation

    public init(
        id: MediaID, kind: MediaKind, ownerID: String, uploadSetID: UploadSetID, size: Int64, sha256: String,
        mime: String, location: ObjectLocation
    ) {
        self.id = id
        self.kind = kind
        self.ownerID = ownerID
        self.uploadSetID = uploadSetID
        self.size = size
        self.sha256 = sha256
        self.mime = mime
        self.location = location
    }
}

/// Durable metadata: upload sets, media rows, and the events that describe their changes.
/// Every error thrown is a ``MetadataStoreError``.
public protocol MetadataStore: Sendable {
    /// Opens a draft upload set.
    func createUploadSet(_ new: NewUploadSet) async throws -> UploadSet
    /// The upload set, or `nil` when there is none with this id.
    func uploadSet(_ id: UploadSetID) async throws -> UploadSet?
    /// Inserts the row of an original whose bytes are already stored, in state `stored`, together with its
    /// `media.stored` event, in one transaction.
    func insertMedia(_ new: NewMedia) async throws -> Media
    /// The media row (tombstoned rows included), or `nil` when there is none with this id.
    func media(_ id: MediaID) async throws -> Media?
}
