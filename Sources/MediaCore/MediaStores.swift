/// The ports a deployment provides together: metadata, blobs and the pending ledger. The use cases are
/// generic over one of these, so that one set of adapters (PostgreSQL and RADOS, or the in-memory ones of
/// the tests) is chosen in one place.
public protocol MediaStores: Sendable {
    associatedtype Metadata: MetadataStore
    associatedtype Blobs: BlobStore
    associatedtype Ledger: PendingLedger

    var metadata: Metadata { get }
    var blobs: Blobs { get }
    var ledger: Ledger { get }
}

/// Any three adapters, as ``MediaStores``.
public struct Stores<Metadata: MetadataStore, Blobs: BlobStore, Ledger: PendingLedger>: MediaStores {
    public let metadata: Metadata
    public let blobs: Blobs
    public let ledger: Ledger

    public init(metadata: Metadata, blobs: Blobs, ledger: Ledger) {
        self.metadata = metadata
        self.blobs = blobs
        self.ledger = ledger
    }
}
