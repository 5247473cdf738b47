import Foundation

/// A file being uploaded in pieces (tus, or the IETF resumable-upload draft), by any gateway: its state is
/// in the metadata store and the bytes received so far in the object it will become, so that the next
/// piece may come to another gateway after one died.
public struct ResumableUpload: Sendable, Hashable {
    /// The media item the upload becomes once complete.
    public var id: MediaID
    public var uploadSetID: UploadSetID
    public var ownerID: String
    /// The file's length as declared by the client; `nil` while it is deferred.
    public var length: Int64?
    /// Bytes received and durable: the next piece starts here.
    public var received: Int64
    /// The first bytes, kept here until there are enough of them to decide the type (at most
    /// ``MediaSniffer/prefixLength``); empty once the upload is placed.
    public var head: [UInt8]
    /// Where the bytes go, once the first bytes decided the type.
    public var placement: ResumablePlacement?
    /// What the client said about the file (tus `Upload-Metadata`); never used to decide anything.
    public var metadata: [String: String]
    public var createdAt: Date
    /// After this the upload is gone and its partial object removed.
    public var expiresAt: Date
    /// The media row is committed.
    public var completed: Bool
    /// The SHA-256 of the `received` bytes, saved (``ResumableSHA256``) so that the next append hashes on
    /// from it; `nil` when not known (the completion then reads the object back to hash it).
    public var hashState: [UInt8]?

    public init(
        id: MediaID,
        uploadSetID: UploadSetID,
        ownerID: String,
        length: Int64?,
        received: Int64 = 0,
        head: [UInt8] = [],
        placement: ResumablePlacement? = nil,
        metadata: [String: String] = [:],
        createdAt: Date,
        expiresAt: Date,
        completed: Bool = false,
        hashState: [UInt8]? = nil
    ) {
        self.id = id
        self.uploadSetID = uploadSetID
        self.ownerID = ownerID
        self.length = length
        self.received = received
        self.head = head
        self.placement = placement
        self.metadata = metadata
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.completed = completed
        self.hashState = hashState
    }
}

/// The type an upload's first bytes decided, and the object its bytes go to.
public struct ResumablePlacement: Sendable, Hashable {
    public var kind: MediaKind
    public var mime: String
    /// The object's pending-ledger entry, made before its first byte (its location is the object's).
    public var ticket: PendingTicket

    public var location: ObjectLocation { ticket.location }

    public init(kind: MediaKind, mime: String, ticket: PendingTicket) {
        self.kind = kind
        self.mime = mime
        self.ticket = ticket
    }
}

/// What asking to append to an upload at an offset found.
public enum ResumableAppendClaim: Sendable, Hashable {
    /// The upload is this request's until the claim ends or lapses.
    case claimed(ResumableUpload)
    /// No such upload, or it expired.
    case missing
    /// The upload has received another number of bytes than the request says.
    case offsetMismatch(ResumableUpload)
    /// Another request is appending to it now.
    case busy(ResumableUpload)
    /// The upload is complete.
    case completed(ResumableUpload)
}

/// A checksum of one request's body (tus `Upload-Checksum`).
public struct ChunkChecksum: Sendable, Hashable {
    public enum Algorithm: String, Sendable, Hashable, CaseIterable {
        case sha1, sha256
    }

    public var algorithm: Algorithm
    public var digest: [UInt8]

    public init(algorithm: Algorithm, digest: [UInt8]) {
        self.algorithm = algorithm
        self.digest = digest
    }
}
