import Foundation
import MediaCore
import Synchronization

/// A ``MetadataStore`` in memory, for unit tests of the use cases: the same rules as the PostgreSQL adapter
/// (the limits checked under one lock, idempotent commits and tombstones, jobs under leases, events
/// numbered in order), and a switch that makes every operation fail as a database that is down would.
public final class InMemoryMetadataStore: MetadataStore {
    struct Job {
        var id: Int64
        var mediaID: MediaID
        var kind: MediaKind
        var priority: ProcessingPriority
        var state: String  // queued, running, dead
        var attempts = 0
        var runAfter: Date
        var leasedUntil: Date?
        var lastError: String?
        var trace: String?
    }

    struct Event {
        var sequence: Int64?
        var event: OutboxEvent
    }

    struct State {
        var sets: [UploadSetID: UploadSet] = [:]
        var media: [MediaID: Media] = [:]
        var purged: Set<MediaID> = []
        var renditions: [MediaID: [String: Rendition]] = [:]
        var jobs: [Int64: Job] = [:]
        var nextJob: Int64 = 1
        var cursors: [String: Int64] = [:]
        var events: [Event] = []
        /// The UTC days the outbox has room for (made ahead by rotations), and the highest sequence dropped.
        var outboxDays: Set<Date> = []
        var horizon: Int64 = 0
        var resumable: [MediaID: Resumable] = [:]
    }

    struct Resumable {
        var upload: ResumableUpload
        var claim: String?
        var claimedUntil: Date?
    }

    private let state = Mutex(State())
    private let down = Mutex(false)
    private let answersToLose = Mutex(0)

    public init() {}

    /// From now on every operation fails with `unavailable` (`true`), or works again (`false`).
    public func setUnavailable(_ unavailable: Bool) {
        down.withLock { $0 = unavailable }
    }

    /// The next `count` operations take effect, then fail with `unavailable` as if the connection had dropped
    /// before their answer came back: a failover that kills the primary right after a commit.
    public func loseAnswers(_ count: Int = 1) {
        answersToLose.withLock { $0 = count }
    }

    /// The jobs' states by media, for assertions (`queued`, `running`, `dead`).
    public var jobStates: [MediaID: String] {
        state.withLock { Dictionary($0.jobs.values.map { ($0.mediaID, $0.state) }, uniquingKeysWith: { $1 }) }
    }

    private func check() throws(MetadataStoreError) {
        if down.withLock({ $0 }) { throw MetadataStoreError(.unavailable, "the in-memory database is down") }
    }

    private func withState<T>(_ body: (inout State) throws(MetadataStoreError) -> T) throws(MetadataStoreError) -> T {
        try check()
        let result = try state.withLock { state throws(MetadataStoreError) in try body(&state) }
        let lost = answersToLose.withLock { count in
            guard count > 0 else { return false }
            count -= 1
            return true
        }
        if lost { throw MetadataStoreError(.unavailable, "the connection dropped before the answer came back") }
        return result
    }

    public func createUploadSet(_ new: NewUploadSet) async throws -> UploadSet {
        try withState { state throws(MetadataStoreError) in
            guard state.sets[new.id] == nil else { throw MetadataStoreError(.conflict, "upload set \(new.id) exists") }
            let set = UploadSet(
                id: new.id,
                ownerID: new.ownerID,
                context: new.context,
                contextID: new.contextID,
                isPrivate: new.isPrivate,
                priority: new.priority,
                state: .draft,
                createdAt: Date(),
                expiresAt: new.expiresAt
            )
            state.sets[new.id] = set
            return set
        }
    }

    public func uploadSet(_ id: UploadSetID) async throws -> UploadSet? {
        try withState { $0.sets[id] }
    }

    public func media(inSet id: UploadSetID) async throws -> [Media] {
        try withState { state in
            state.media.values.filter { $0.uploadSetID == id }.sorted { ($0.createdAt, $0.id.description) < ($1.createdAt, $1.id.description) }
        }
    }

    public func recordUpload(_ new: NewMedia, maxCount: Int, now: Date) async throws -> Media {
        try withState { state throws(MetadataStoreError) in
            guard var set = state.sets[new.uploadSetID] else { throw MetadataStoreError(.notFound, "no upload set \(new.uploadSetID)") }
            guard set.ownerID == new.ownerID else { throw MetadataStoreError(.conflict, "the media's owner does not own the set") }
            guard set.state != .committed else { throw MetadataStoreError(.setCommitted, "the set is committed") }
            guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
            guard set.liveCounts[new.kind] < maxCount else {
                throw MetadataStoreError(.limitExceeded, "the set already holds \(set.liveCounts[new.kind]) \(new.kind.rawValue) item(s)")
            }
            guard !state.media.values.contains(where: { $0.location == new.location }) else {
                throw MetadataStoreError(.conflict, "an object \(new.location) already has a row")
            }
            set.liveCounts = set.liveCounts.adding(1, to: new.kind)
            state.sets[set.id] = set
            let media = Self.store(&state, new, now: now)
            return media
        }
    }

    // MARK: Resumable uploads

    public func createResumableUpload(_ upload: ResumableUpload) async throws {
        try withState { state throws(MetadataStoreError) in
            guard state.sets[upload.uploadSetID] != nil else { throw MetadataStoreError(.notFound, "no upload set \(upload.uploadSetID)") }
            guard state.resumable[upload.id] == nil else { throw MetadataStoreError(.conflict, "upload \(upload.id) exists") }
            state.resumable[upload.id] = Resumable(upload: upload)
        }
    }

    public func resumableUpload(_ id: MediaID, now: Date) async throws -> ResumableUpload? {
        try withState { state in
            guard let stored = state.resumable[id], stored.upload.expiresAt > now else { return nil }
            return stored.upload
        }
    }

    public func claimResumableAppend(_ id: MediaID, at offset: Int64, claim: String, until: Date, now: Date) async throws -> ResumableAppendClaim {
        try withState { state in
            guard var stored = state.resumable[id], stored.upload.expiresAt > now else { return .missing }
            if stored.upload.completed { return .completed(stored.upload) }
            if let holder = stored.claim, holder != claim, let until = stored.claimedUntil, until > now { return .busy(stored.upload) }
            guard stored.upload.received == offset else { return .offsetMismatch(stored.upload) }
            stored.claim = claim
            stored.claimedUntil = until
            state.resumable[id] = stored
            return .claimed(stored.upload)
        }
    }

    private static func claimed(_ state: inout State, _ id: MediaID, _ claim: String) throws(MetadataStoreError) -> Resumable {
        guard let stored = state.resumable[id], stored.claim == claim else {
            throw MetadataStoreError(.conflict, "upload \(id) is no longer claimed by this request")
        }
        return stored
    }

    public func renewResumableClaim(_ id: MediaID, claim: String, until: Date) async throws {
        try withState { state throws(MetadataStoreError) in
            var stored = try Self.claimed(&state, id, claim)
            stored.claimedUntil = until
            state.resumable[id] = stored
        }
    }

    public func placeResumableUpload(
        _ id: MediaID,
        claim: String,
        placement: ResumablePlacement,
        maxCount: Int,
        now: Date
    ) async throws
        -> ResumableUpload
    {
        try withState { state throws(MetadataStoreError) in
            var stored = try Self.claimed(&state, id, claim)
            guard stored.upload.placement == nil else { return stored.upload }
            guard var set = state.sets[stored.upload.uploadSetID] else { throw MetadataStoreError(.notFound, "no upload set") }
            guard set.state != .committed else { throw MetadataStoreError(.setCommitted, "the set is committed") }
            guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
            guard set.liveCounts[placement.kind] < maxCount else {
                throw MetadataStoreError(.limitExceeded, "the set already holds \(set.liveCounts[placement.kind]) \(placement.kind.rawValue) item(s)")
            }
            set.liveCounts = set.liveCounts.adding(1, to: placement.kind)
            state.sets[set.id] = set
            stored.upload.placement = placement
            state.resumable[id] = stored
            return stored.upload
        }
    }

    public func recordResumableProgress(
        _ id: MediaID,
        claim: String,
        received: Int64,
        head: [UInt8],
        length: Int64?,
        hashState: [UInt8]?,
        until: Date?
    ) async throws {
        try withState { state throws(MetadataStoreError) in
            var stored = try Self.claimed(&state, id, claim)
            stored.upload.received = received
            stored.upload.head = head
            stored.upload.hashState = hashState
            if let length { stored.upload.length = length }
            stored.claim = until == nil ? nil : claim
            stored.claimedUntil = until
            state.resumable[id] = stored
        }
    }

    /// The row of `new`, its processing job and its `media.stored` event, as one transaction records them.
    private static func store(_ state: inout State, _ new: NewMedia, now: Date) -> Media {
        let media = Media(
            id: new.id,
            kind: new.kind,
            ownerID: new.ownerID,
            uploadSetID: new.uploadSetID,
            state: .stored,
            size: new.size,
            sha256: new.sha256,
            mime: new.mime,
            location: new.location,
            createdAt: now
        )
        state.media[media.id] = media
        let priority = state.sets[new.uploadSetID]?.priority ?? .interactive
        state.jobs[state.nextJob] = Job(
            id: state.nextJob,
            mediaID: media.id,
            kind: media.kind,
            priority: priority,
            state: "queued",
            runAfter: now,
            trace: new.trace
        )
        state.nextJob += 1
        append(&state, "media.stored", media, id: new.eventID, now: now)
        return media
    }

    public func completeResumableUpload(_ id: MediaID, claim: String, media new: NewMedia, now: Date) async throws -> Media {
        try withState { state throws(MetadataStoreError) in
            var stored = try Self.claimed(&state, id, claim)
            guard let set = state.sets[new.uploadSetID] else { throw MetadataStoreError(.notFound, "no upload set \(new.uploadSetID)") }
            guard set.state != .committed else { throw MetadataStoreError(.setCommitted, "the set is committed") }
            guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
            let media = Self.store(&state, new, now: now)
            stored.upload.completed = true
            stored.upload.received = new.size
            stored.claim = nil
            stored.claimedUntil = nil
            state.resumable[id] = stored
            return media
        }
    }

    public func removeResumableUpload(_ id: MediaID) async throws -> ResumableUpload? {
        try withState { state in
            guard let stored = state.resumable.removeValue(forKey: id) else { return nil }
            if let placement = stored.upload.placement, !stored.upload.completed, var set = state.sets[stored.upload.uploadSetID] {
                set.liveCounts = set.liveCounts.adding(-1, to: placement.kind)
                state.sets[set.id] = set
            }
            return stored.upload
        }
    }

    public func expiredResumableUploads(now: Date, limit: Int) async throws -> [ResumableUpload] {
        try withState { state in
            Array(state.resumable.values.map(\.upload).filter { $0.expiresAt <= now }.sorted { $0.expiresAt < $1.expiresAt }.prefix(limit))
        }
    }

    public func commitUploadSet(_ id: UploadSetID, now: Date) async throws -> UploadSet {
        try withState { state throws(MetadataStoreError) in
            guard var set = state.sets[id] else { throw MetadataStoreError(.notFound, "no upload set \(id)") }
            if set.state == .committed { return set }
            guard set.state == .draft, set.expiresAt > now else { throw MetadataStoreError(.setExpired, "the set has expired") }
            set.state = .committed
            set.committedAt = now
            state.sets[id] = set
            var ids: [String] = []
            for (mediaID, media) in state.media where media.uploadSetID == id && media.deletedAt == nil {
                state.media[mediaID]?.committedAt = now
                ids.append(mediaID.description)
            }
            Self.append(
                &state,
                "upload_set.committed",
                mediaID: nil,
                setID: id,
                payload: ["upload_set_id": id.description, "owner_id": set.ownerID, "media_ids": ids.sorted()],
                now: now
            )
            return set
        }
    }

    public func media(_ id: MediaID) async throws -> Media? {
        try withState { $0.media[id] }
    }

    public func tombstoneMedia(_ id: MediaID, now: Date) async throws -> Media? {
        try withState { state in
            guard let current = state.media[id] else { return nil }
            if current.deletedAt != nil { return current }
            Self.tombstone(&state, id, now: now, reason: "deleted")
            return state.media[id]
        }
    }

    private static func tombstone(_ state: inout State, _ id: MediaID, now: Date, reason: String) {
        guard var media = state.media[id], media.deletedAt == nil else { return }
        media.state = .deleted
        media.deletedAt = now
        state.media[id] = media
        if var set = state.sets[media.uploadSetID], set.liveCounts[media.kind] > 0 {
            set.liveCounts = set.liveCounts.adding(-1, to: media.kind)
            state.sets[set.id] = set
        }
        state.jobs = state.jobs.filter { $0.value.mediaID != id || $0.value.state == "dead" }
        let renditions = (state.renditions[id] ?? [:]).values.sorted { $0.name < $1.name }.map {
            ["name": $0.name, "key": $0.location.key, "size": $0.size] as [String: Any]
        }
        append(&state, "media.deleted", media, extra: ["reason": reason, "renditions": renditions], now: now)
    }

    public func expireDrafts(now: Date, limit: Int) async throws -> [UploadSetID] {
        try withState { state in
            let due = state.sets.values.filter { $0.state == .draft && $0.expiresAt <= now }.sorted { $0.expiresAt < $1.expiresAt }.prefix(limit)
            for set in due {
                var expired = set
                expired.state = .expired
                expired.liveCounts = LiveCounts()
                state.sets[set.id] = expired
                for (id, media) in state.media where media.uploadSetID == set.id && media.deletedAt == nil {
                    Self.tombstone(&state, id, now: now, reason: "set_expired")
                }
            }
            return due.map(\.id)
        }
    }

    public func mediaAwaitingPurge(limit: Int) async throws -> [Media] {
        try withState { state in
            Array(
                state.media.values.filter { $0.deletedAt != nil && !state.purged.contains($0.id) }.sorted { $0.deletedAt! < $1.deletedAt! }.prefix(
                    limit
                )
            )
        }
    }

    public func markPurged(_ id: MediaID, now: Date) async throws {
        try withState { _ = $0.purged.insert(id) }
    }

    public func objectHasRow(_ location: ObjectLocation) async throws -> Bool {
        try withState { state in
            state.media.values.contains { $0.location == location }
                || state.renditions.values.contains { $0.values.contains { $0.location == location } }
        }
    }

    public func events(after: Int64, limit: Int) async throws -> [OutboxEvent] {
        try withState { state throws(MetadataStoreError) in
            Self.number(&state)
            guard after >= state.horizon else {
                throw MetadataStoreError(
                    .cursorExpired,
                    "events after \(after) up to \(state.horizon) were dropped by the outbox's retention",
                    cause: OutboxHorizon(horizon: state.horizon)
                )
            }
            return Array(state.events.map(\.event).filter { $0.sequence > after }.sorted { $0.sequence < $1.sequence }.prefix(limit))
        }
    }

    /// Numbers what was appended since the last read, in order, after every number given or dropped before.
    private static func number(_ state: inout State) {
        var last = max(state.events.compactMap(\.sequence).max() ?? 0, state.horizon)
        for index in state.events.indices where state.events[index].sequence == nil {
            last += 1
            state.events[index].sequence = last
            state.events[index].event.sequence = last
        }
    }

    public func rotateOutbox(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation {
        try withState { state in
            Self.number(&state)
            var rotation = OutboxRotation()
            let days = Set(state.events.map { OutboxRotation.day(of: $0.event.createdAt) }).union(state.outboxDays)
            for day in days.sorted() where OutboxRotation.end(ofDay: day) <= cutoff {
                let dropped = state.events.filter { OutboxRotation.day(of: $0.event.createdAt) == day }
                state.horizon = max(state.horizon, dropped.compactMap(\.sequence).max() ?? 0)
                state.events.removeAll { OutboxRotation.day(of: $0.event.createdAt) == day }
                state.outboxDays.remove(day)
                rotation.droppedDays.append(day)
            }
            let today = OutboxRotation.day(of: now)
            for offset in 0...max(0, daysAhead) where state.outboxDays.insert(today.addingTimeInterval(Double(offset) * 86_400)).inserted {
                rotation.addedDays += 1
            }
            rotation.horizon = state.horizon
            rotation.lastDay = state.outboxDays.max()
            return rotation
        }
    }

    public func consumerCursor(_ consumer: String) async throws -> Int64 {
        try withState { state in
            if let cursor = state.cursors[consumer] { return cursor }
            let end = max(state.events.compactMap(\.sequence).max() ?? 0, state.horizon)
            state.cursors[consumer] = end
            return end
        }
    }

    public func advanceConsumerCursor(_ consumer: String, from: Int64, to: Int64) async throws -> Bool {
        try withState { state in
            guard state.cursors[consumer] == from, to > from else { return false }
            state.cursors[consumer] = to
            return true
        }
    }

    public func ping() async throws {
        try check()
    }

    public func backlog(now: Date) async throws -> Backlog {
        try withState { state in
            var backlog = Backlog(unreadEvents: state.events.filter { $0.sequence == nil }.count)
            for job in state.jobs.values {
                guard let kind = state.media[job.mediaID]?.kind else { continue }
                switch job.state {
                case "queued":
                    backlog.queuedJobs[kind, default: 0] += 1
                    if job.runAfter <= now {
                        let waited = Duration.milliseconds(Int64(now.timeIntervalSince(job.runAfter) * 1000))
                        backlog.oldestQueuedJob[kind] = max(backlog.oldestQueuedJob[kind] ?? .zero, waited)
                    }
                case "dead": backlog.deadJobs += 1
                default: break
                }
            }
            return backlog
        }
    }

    // MARK: Processing

    public func claimJob(_ steps: [ClaimStep], reclaimingExpired: Bool, lease: Duration, now: Date) async throws -> ProcessingJob? {
        try withState { state in
            let kinds = Set(steps.flatMap(\.kinds))
            let expired = state.jobs.values.filter {
                reclaimingExpired && $0.state == "running" && ($0.leasedUntil ?? now) < now && kinds.contains($0.kind)
            }
            .min { ($0.leasedUntil ?? now, $0.id) < ($1.leasedUntil ?? now, $1.id) }
            var found = expired
            for step in steps where found == nil {
                found = state.jobs.values.filter {
                    $0.state == "queued" && $0.runAfter <= now && $0.priority == step.priority && step.kinds.contains($0.kind)
                }
                .min { ($0.runAfter, $0.id) < ($1.runAfter, $1.id) }
            }
            guard var job = found else { return nil }
            job.state = "running"
            job.attempts += 1
            job.leasedUntil = now.addingTimeInterval(lease.seconds)
            state.jobs[job.id] = job
            guard var media = state.media[job.mediaID] else { return nil }
            if media.deletedAt == nil {
                media.state = .processing
                state.media[media.id] = media
            }
            return ProcessingJob(
                jobID: job.id,
                mediaID: media.id,
                kind: media.kind,
                original: media.location,
                size: media.size,
                mime: media.mime,
                attempts: job.attempts,
                priority: job.priority,
                trace: job.trace
            )
        }
    }

    public func renewLease(_ job: ProcessingJob, lease: Duration, now: Date) async throws -> Bool {
        try withState { state in
            guard var stored = state.jobs[job.jobID], stored.state == "running", stored.attempts == job.attempts else { return false }
            stored.leasedUntil = now.addingTimeInterval(lease.seconds)
            state.jobs[job.jobID] = stored
            return true
        }
    }

    public func completeJob(_ job: ProcessingJob, outcome: ProcessingOutcome, now: Date) async throws -> [ObjectLocation] {
        try withState { state in
            state.jobs.removeValue(forKey: job.jobID)
            guard var media = state.media[job.mediaID], media.deletedAt == nil else {
                return outcome.renditions.map(\.location)
            }
            let names = Set(outcome.renditions.map(\.name))
            let existing = state.renditions[job.mediaID] ?? [:]
            let obsolete = existing.values.filter { !names.contains($0.name) }.map(\.location)
            var renditions: [String: Rendition] = [:]
            for record in outcome.renditions {
                renditions[record.name] = Rendition(
                    mediaID: job.mediaID,
                    name: record.name,
                    mime: record.mime,
                    width: record.width,
                    height: record.height,
                    size: record.size,
                    sha256: record.sha256,
                    location: record.location,
                    createdAt: now
                )
            }
            state.renditions[job.mediaID] = renditions
            media.state = .ready
            media.width = outcome.width
            media.height = outcome.height
            media.durationMilliseconds = outcome.durationMilliseconds
            media.metadata = outcome.metadata
            media.failureReason = nil
            state.media[media.id] = media
            Self.append(&state, "media.ready", media, extra: ["renditions": outcome.renditions.map(\.name)], now: now)
            return obsolete
        }
    }

    public func failJob(_ job: ProcessingJob, error: ProcessingError, retry: Bool, retryAfter: Duration, now: Date) async throws {
        try withState { state in
            let reason = String(error.reason.prefix(500))
            guard var stored = state.jobs[job.jobID] else { return }
            stored.leasedUntil = nil
            stored.lastError = reason
            if retry {
                stored.state = "queued"
                stored.runAfter = now.addingTimeInterval(retryAfter.seconds)
                state.jobs[job.jobID] = stored
                return
            }
            stored.state = "dead"
            state.jobs[job.jobID] = stored
            guard var media = state.media[job.mediaID], media.deletedAt == nil else { return }
            media.state = .failed
            media.failureReason = reason
            state.media[media.id] = media
            Self.append(&state, "media.failed", media, extra: ["reason": reason], now: now)
        }
    }

    public func renditions(of id: MediaID) async throws -> [Rendition] {
        try withState { ($0.renditions[id] ?? [:]).values.sorted { $0.name < $1.name } }
    }

    // MARK: Origin

    public func originRecord(_ id: MediaID, renditionNames: [String]) async throws -> OriginRecord? {
        try withState { state in
            guard let media = state.media[id], let set = state.sets[media.uploadSetID] else { return nil }
            return OriginRecord(
                id: id,
                kind: media.kind,
                state: media.state,
                mime: media.mime,
                size: media.size,
                sha256: media.sha256,
                location: media.location,
                createdAt: media.createdAt,
                context: set.context,
                setIsPrivate: set.isPrivate,
                renditions: (state.renditions[id] ?? [:]).values.filter { renditionNames.contains($0.name) }.sorted { $0.name < $1.name }
            )
        }
    }

    // MARK: Events

    private static func append(_ state: inout State, _ type: String, _ media: Media, id: UUID = UUID(), extra: [String: Any] = [:], now: Date) {
        var payload: [String: Any] = [
            "media_id": media.id.description, "upload_set_id": media.uploadSetID.description, "owner_id": media.ownerID,
            "kind": media.kind.rawValue, "mime": media.mime, "size": media.size, "sha256": media.sha256, "state": media.state.rawValue,
        ]
        payload.merge(extra) { $1 }
        append(&state, type, id: id, mediaID: media.id, setID: media.uploadSetID, payload: payload, now: now)
    }

    private static func append(
        _ state: inout State,
        _ type: String,
        id: UUID = UUID(),
        mediaID: MediaID?,
        setID: UploadSetID?,
        payload: [String: Any],
        now: Date
    ) {
        let json = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        state.events.append(
            Event(
                sequence: nil,
                event: OutboxEvent(sequence: 0, id: id, type: type, mediaID: mediaID, uploadSetID: setID, payload: json, createdAt: now)
            )
        )
    }
}

extension LiveCounts {
    func adding(_ delta: Int, to kind: MediaKind) -> LiveCounts {
        var counts = self
        switch kind {
        case .photo: counts.photo += delta
        case .audio: counts.audio += delta
        case .video: counts.video += delta
        }
        return counts
    }
}
