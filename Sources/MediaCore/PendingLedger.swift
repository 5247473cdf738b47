import Foundation

/// What the pending ledger records about an object whose row is not committed yet.
public struct PendingEntry: Sendable, Hashable, Codable {
    public var mediaID: MediaID
    public var uploadSetID: UploadSetID?
    public var registeredAt: Date

    public init(mediaID: MediaID, uploadSetID: UploadSetID?, registeredAt: Date) {
        self.mediaID = mediaID
        self.uploadSetID = uploadSetID
        self.registeredAt = registeredAt
    }

    enum CodingKeys: String, CodingKey {
        case mediaID = "media"
        case uploadSetID = "set"
        case registeredAt = "at"
    }
}

/// The receipt of a registration: enough for any process to complete the entry later (a processor
/// process registers renditions that its worker commits).
public struct PendingTicket: Sendable, Hashable, Codable {
    /// The object the entry is about.
    public var location: ObjectLocation
    /// Where the ledger keeps the entry; meaningful only to the ledger that issued it.
    public var slot: String

    public init(location: ObjectLocation, slot: String) {
        self.location = location
        self.slot = slot
    }
}

/// An entry as the reconciler finds it.
public struct PendingRecord: Sendable, Hashable {
    public var ticket: PendingTicket
    /// What was registered; `nil` when the entry could not be read (it is then treated as old).
    public var entry: PendingEntry?

    public init(ticket: PendingTicket, entry: PendingEntry?) {
        self.ticket = ticket
        self.entry = entry
    }
}

/// Objects that are being written and have no committed row yet. Every object is registered here *before*
/// its first byte is written and completed once its row is committed (or the object removed): what a crash
/// leaves behind is found here, without listing any pool. Every error thrown is a ``BlobStoreError``.
///
/// A ledger keeps its entries in periods (time slices): writers register into the current period only, so
/// a period that ended long ago and holds no entry can be closed. One ledger serves a whole process: the
/// uploads, the workers and the reconciler of a process share it.
public protocol PendingLedger: Sendable {
    /// Records `location` as pending. Call before writing the object's first byte.
    func register(_ location: ObjectLocation, _ entry: PendingEntry) async throws -> PendingTicket

    /// Forgets an entry once the object's row is committed, or the object removed.
    func complete(_ ticket: PendingTicket) async throws

    /// The entries of `pool` registered before `cutoff`, up to `limit` of them, starting after `cursor`
    /// (`nil`: from the start). Returns them and the cursor of the next page (`nil` at the end).
    func stale(
        in pool: String,
        registeredBefore cutoff: Date,
        after cursor: String?,
        limit: Int
    ) async throws
        -> (records: [PendingRecord], next: String?)

    /// Forgets entries the reconciler settled.
    func retire(_ records: [PendingRecord]) async throws

    /// Closes the periods of `pool` that ended before `cutoff` and hold no entry any more; returns how many.
    func closePeriods(in pool: String, endedBefore cutoff: Date) async throws -> Int

    /// The start of the oldest period of `pool` not yet closed (`nil`: none): no pending entry is older, and
    /// one that stays old is what the reconciler has not settled.
    func oldestPeriod(in pool: String) async throws -> Date?
}
