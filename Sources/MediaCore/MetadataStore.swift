import Foundation

/// What is needed to open a new upload set.
public struct NewUploadSet: Hashable, Sendable {
    public var id: UploadSetID
    public var ownerID: String
    public var context: UploadContext
    public var contextID: String
    /// The set's media are served only through signed URLs, whatever the context.
    public var isPrivate: Bool
    /// How soon the set's media are processed.
    public var priority: ProcessingPriority
    public var expiresAt: Date

    public init(
        id: UploadSetID = .generate(),
        ownerID: String,
        context: UploadContext,
        contextID: String,
        isPrivate: Bool = false,
        priority: ProcessingPriority = .interactive,
        expiresAt: Date
    ) {
        self.priority = priority
        self.id = id
        self.ownerID = ownerID
        self.context = context
        self.contextID = contextID
        self.isPrivate = isPrivate
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
    /// The W3C `traceparent` of the request that stored it, kept with its processing job (see ``TraceParent``).
    public var trace: String?
    /// The id of its `media.stored` event, made here so that the event can be correlated with the item.
    public var eventID: UUID

    public init(
        id: MediaID,
        kind: MediaKind,
        ownerID: String,
        uploadSetID: UploadSetID,
        size: Int64,
        sha256: String,
        mime: String,
        location: ObjectLocation,
        trace: String? = nil,
        eventID: UUID = .random()
    ) {
        self.trace = trace
        self.eventID = eventID
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

/// One event of the transactional outbox.
public struct OutboxEvent: Sendable, Hashable {
    /// Position in the outbox; strictly increasing in commit order.
    public var sequence: Int64
    public var id: UUID
    /// `media.stored`, `media.deleted`, `upload_set.committed`, ...
    public var type: String
    public var mediaID: MediaID?
    public var uploadSetID: UploadSetID?
    /// The event's JSON document.
    public var payload: String
    public var createdAt: Date

    public init(sequence: Int64, id: UUID, type: String, mediaID: MediaID?, uploadSetID: UploadSetID?, payload: String, createdAt: Date) {
        self.sequence = sequence
        self.id = id
        self.type = type
        self.mediaID = mediaID
        self.uploadSetID = uploadSetID
        self.payload = payload
        self.createdAt = createdAt
    }
}

/// What one rotation of the outbox did: whole days of events dropped, days made ready ahead.
public struct OutboxRotation: Sendable, Hashable {
    /// The UTC days whose events were dropped, oldest first.
    public var droppedDays: [Date]
    /// Days added ahead (or found missing and added).
    public var addedDays: Int
    /// The highest sequence of any dropped event: a cursor below it has missed events.
    public var horizon: Int64
    /// The start of the last UTC day that has room for events.
    public var lastDay: Date?

    public init(droppedDays: [Date] = [], addedDays: Int = 0, horizon: Int64 = 0, lastDay: Date? = nil) {
        self.droppedDays = droppedDays
        self.addedDays = addedDays
        self.horizon = horizon
        self.lastDay = lastDay
    }
}

extension OutboxRotation {
    /// The start (00:00 UTC) of the day of `date`: the outbox keeps and drops its events by whole UTC days.
    public static func day(of date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    }

    /// The end of the day that starts at `day` (the next day's start).
    public static func end(ofDay day: Date) -> Date { day.addingTimeInterval(86_400) }
}

/// The cause of a `cursorExpired` error: events above the reader's cursor, up to `horizon`, were dropped
/// by the outbox's retention.
public struct OutboxHorizon: Error, Sendable, Hashable {
    /// The highest sequence dropped: reading on after it misses nothing that is still kept.
    public var horizon: Int64

    public init(horizon: Int64) { self.horizon = horizon }
}

/// Durable metadata: upload sets, media rows, and the events that describe their changes.
/// Every error thrown is a ``MetadataStoreError``.
public protocol MetadataStore: Sendable {
    /// Opens a draft upload set.
    func createUploadSet(_ new: NewUploadSet) async throws -> UploadSet
    /// The upload set, or `nil` when there is none with this id.
    func uploadSet(_ id: UploadSetID) async throws -> UploadSet?
    /// The media of a set, oldest first, tombstoned ones included.
    func media(inSet id: UploadSetID) async throws -> [Media]

    /// Records an uploaded original under the set's row lock: the set must be a draft, not expired and
    /// owned by the media's owner, and hold fewer than `maxCount` live items of the kind. Inserts the row
    /// and its `media.stored` event in one transaction. Throws `limitExceeded`, `setCommitted`,
    /// `setExpired` or `notFound` otherwise, and writes nothing.
    func recordUpload(_ new: NewMedia, maxCount: Int, now: Date) async throws -> Media

    /// Commits a draft set: its media become permanent. Idempotent: committing a committed set returns it
    /// unchanged. Throws `setExpired` for an expired set and `notFound` for an unknown one.
    func commitUploadSet(_ id: UploadSetID, now: Date) async throws -> UploadSet

    /// The media row (tombstoned rows included), or `nil` when there is none with this id.
    func media(_ id: MediaID) async throws -> Media?

    /// Tombstones a media row (state `deleted`, `deleted_at`) with its `media.deleted` event, in one
    /// transaction, and returns it; an already tombstoned row is returned unchanged. `nil` if unknown.
    func tombstoneMedia(_ id: MediaID, now: Date) async throws -> Media?

    /// Expires up to `limit` drafts whose expiry has passed, tombstoning their media (with events) in the
    /// same transaction. Returns the expired sets' ids.
    func expireDrafts(now: Date, limit: Int) async throws -> [UploadSetID]

    /// Tombstoned media whose objects are not yet removed, oldest first.
    func mediaAwaitingPurge(limit: Int) async throws -> [Media]

    /// Records that a tombstoned media item's objects are gone.
    func markPurged(_ id: MediaID, now: Date) async throws

    /// Whether any row (media or rendition) refers to the object.
    func objectHasRow(_ location: ObjectLocation) async throws -> Bool

    /// Outbox events with a sequence above `after`, in order, at most `limit`. Throws `cursorExpired`
    /// (with an ``OutboxHorizon`` as the cause) when retention dropped events above `after`.
    func events(after: Int64, limit: Int) async throws -> [OutboxEvent]

    /// Where the named consumer of the outbox (a purger) has read up to. A consumer seen for the first time
    /// starts at the outbox's current end: it acts on what happens from then on.
    func consumerCursor(_ consumer: String) async throws -> Int64

    /// Retention of the outbox by whole UTC days: drops the days that ended at or before `cutoff` (never
    /// an event not yet numbered), records the highest sequence dropped, and makes sure that every day
    /// from the one of `now` to `daysAhead` days later has room for events. Writers are never blocked.
    /// Numbering goes on above the dropped events, even when every event was dropped.
    func rotateOutbox(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation

    /// Moves the consumer's cursor from `from` to `to`; `false` (and no change) when it was no longer at
    /// `from` (another process moved it) or `to` is not ahead of it.
    func advanceConsumerCursor(_ consumer: String, from: Int64, to: Int64) async throws -> Bool

    /// A cheap round trip, for readiness.
    func ping() async throws

    /// What waits: queued and dead jobs, the oldest runnable job's wait, unread events (at `now`).
    func backlog(now: Date) async throws -> Backlog

    // MARK: Resumable uploads

    /// Records a new resumable upload (nothing received yet).
    func createResumableUpload(_ upload: ResumableUpload) async throws

    /// The upload, if it exists and has not expired at `now`.
    func resumableUpload(_ id: MediaID, now: Date) async throws -> ResumableUpload?

    /// Takes the upload for one append starting at `offset`, as `claim`, until `until`: one request at a
    /// time appends. An earlier claim that lapsed (its gateway died) is taken over.
    func claimResumableAppend(_ id: MediaID, at offset: Int64, claim: String, until: Date, now: Date) async throws -> ResumableAppendClaim

    /// Extends `claim` to `until`; throws `conflict` when the claim is no longer the upload's.
    func renewResumableClaim(_ id: MediaID, claim: String, until: Date) async throws

    /// Gives the upload its type and object (first bytes sniffed) and, under the set's lock, takes one of
    /// the set's `maxCount` places of that kind for it, as a stored file would: `limitExceeded`,
    /// `setCommitted`, `setExpired`, or `conflict` when the claim was lost.
    func placeResumableUpload(
        _ id: MediaID,
        claim: String,
        placement: ResumablePlacement,
        maxCount: Int,
        now: Date
    ) async throws
        -> ResumableUpload

    /// Records the bytes received (and the first bytes kept, or a length declared late) under `claim`, with
    /// the hash of those bytes (`hashState`; `nil` forgets any hash kept before: it was of another length),
    /// and keeps the claim until `until`, or ends it when `until` is `nil`. Throws `conflict` when the claim
    /// was lost (nothing is recorded then).
    func recordResumableProgress(
        _ id: MediaID,
        claim: String,
        received: Int64,
        head: [UInt8],
        length: Int64?,
        hashState: [UInt8]?,
        until: Date?
    ) async throws

    /// Completes the upload under `claim`: its media row is recorded in the place taken for it, with its
    /// processing job and `media.stored` event, in one transaction: `setCommitted`, `setExpired`, or
    /// `conflict` when the claim was lost.
    func completeResumableUpload(_ id: MediaID, claim: String, media: NewMedia, now: Date) async throws -> Media

    /// Forgets the upload (terminated, refused or expired), giving back the place it took in its set when
    /// it did not complete; returns what it was, or `nil` when there was none.
    func removeResumableUpload(_ id: MediaID) async throws -> ResumableUpload?

    /// Uploads whose expiry is past, oldest first.
    func expiredResumableUploads(now: Date, limit: Int) async throws -> [ResumableUpload]

    // MARK: Processing

    /// Claims one runnable job, marks it running under a lease and its media `processing`: when
    /// `reclaimingExpired`, a job of the steps' kinds whose lease expired (a worker died) first; else, or
    /// when there is none, the oldest queued and due job of the first step that has one. Concurrent
    /// claimers never get the same job (`FOR UPDATE SKIP LOCKED`).
    func claimJob(_ steps: [ClaimStep], reclaimingExpired: Bool, lease: Duration, now: Date) async throws -> ProcessingJob?

    /// Extends the lease of a job its worker is still running to `now + lease`. `false` when the job is no
    /// longer this claim's (it ended, or its lease expired and another worker claimed it again).
    func renewLease(_ job: ProcessingJob, lease: Duration, now: Date) async throws -> Bool

    /// Records a finished job in one transaction: the renditions' rows (replacing those of an earlier run),
    /// the media `ready` with what was learnt, its `media.ready` event; the job goes. Returns the objects
    /// no row refers to any more (renditions an earlier run made that this one did not, or all of this run's
    /// if the media was deleted meanwhile): the caller removes them.
    func completeJob(_ job: ProcessingJob, outcome: ProcessingOutcome, now: Date) async throws -> [ObjectLocation]

    /// Records a failed attempt: retried after `retryAfter` when `retry`, else the job is dead and the media
    /// `failed` with the error as its reason, with a `media.failed` event, in one transaction.
    func failJob(_ job: ProcessingJob, error: ProcessingError, retry: Bool, retryAfter: Duration, now: Date) async throws

    /// The renditions of a media item, by name.
    func renditions(of id: MediaID) async throws -> [Rendition]

    // MARK: Origin

    /// What the origin needs to serve a media item's original or the named renditions, in one round trip;
    /// `nil` when there is no media item with this id. Renditions that do not exist are left out.
    func originRecord(_ id: MediaID, renditionNames: [String]) async throws -> OriginRecord?
}
