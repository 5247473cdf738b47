import Foundation
import MediaCore
import Testing

/// What every ``MetadataStore`` must do, written once and run against each implementation (PostgreSQL, in
/// memory). Checks may find rows that earlier checks left in the same store: each looks at its own sets,
/// media and jobs only.
public struct MetadataStoreConformance<Store: MetadataStore>: ConformanceSuite {
    public let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// The checks that change what every other check sees (they drop the outbox's events): run each on a
    /// store of its own.
    public static var checksNeedingAStoreOfTheirOwn: Set<String> { [outboxRetentionCheck] }

    static var outboxRetentionCheck: String { "retention drops whole old days of events, numbering goes on above them, an older cursor is told" }

    public static var table: [String: @Sendable (Self) async throws -> Void] {
        [
            "an upload set is created as a draft and read back": { try await $0.createdSet() },
            "media rows are recorded with their stored event": { try await $0.recordedMedia() },
            "media for an unknown set is refused": { try await $0.unknownSet() },
            "the count limit holds under concurrency": { try await $0.limitUnderConcurrency() },
            "media of another owner is refused": { try await $0.otherOwner() },
            "a commit is idempotent and ends uploads": { try await $0.commit() },
            "an expired set refuses uploads and commits": { try await $0.expiredSet() },
            "a tombstone is idempotent, frees its slot and has one event": { try await $0.tombstone() },
            "expired drafts are tombstoned with their media": { try await $0.expireDrafts() },
            "tombstoned media await purge until marked purged": { try await $0.purge() },
            "an object has a row when media or a rendition refers to it": { try await $0.objectRows() },
            "events are numbered in order and read after a cursor": { try await $0.events() },
            "a deleted item's event names its renditions, for purging the edges": { try await $0.deletedEventNamesRenditions() },
            "a consumer's cursor starts at the end and moves only forward from where it is": { try await $0.consumerCursors() },
            "a claimed job is leased until its lease expires": { try await $0.leases() },
            "a claim takes the oldest job of its first step that has one, and only its steps' kinds": { try await $0.claimOrder() },
            "a lease is renewed only by its current claim": { try await $0.renewedLeases() },
            "a completed job records renditions and readiness and returns obsolete objects": { try await $0.completeJob() },
            "a failed job is retried, then dead with its media failed": { try await $0.failJob() },
            "the backlog counts queued and dead jobs, the oldest wait and unread events": { try await $0.backlog() },
            "a job of media deleted meanwhile gives back its renditions": { try await $0.deletedWhileProcessing() },
            "a job carries the trace context of the request that recorded its media": { try await $0.jobTrace() },
            "the origin record has the media, its set's privacy and the named renditions": { try await $0.originRecord() },
            "a resumable upload is kept until it expires or is removed": { try await $0.resumableLifetime() },
            "one append at a time claims a resumable upload, at its offset": { try await $0.resumableClaims() },
            "a placed upload holds a place in its set until it completes or is removed": { try await $0.resumablePlaces() },
            outboxRetentionCheck: { try await $0.outboxRetention() },
        ]
    }

    // MARK: Helpers

    func newSet(
        context: UploadContext = .post,
        isPrivate: Bool = false,
        priority: ProcessingPriority = .interactive,
        expiresIn: TimeInterval = 3600
    ) async throws -> UploadSet {
        try await store.createUploadSet(
            NewUploadSet(
                ownerID: "user-\(UUID().uuidString.prefix(8))",
                context: context,
                contextID: "ctx-1",
                isPrivate: isPrivate,
                priority: priority,
                expiresAt: Date().addingTimeInterval(expiresIn)
            )
        )
    }

    func newMedia(_ set: UploadSet, kind: MediaKind = .photo, owner: String? = nil) -> NewMedia {
        let id = MediaID.generate()
        return NewMedia(
            id: id,
            kind: kind,
            ownerID: owner ?? set.ownerID,
            uploadSetID: set.id,
            size: 1234,
            sha256: String(repeating: "ab", count: 32),
            mime: "image/jpeg",
            location: ObjectLocation(pool: "media.\(kind)", key: "\(set.id)/\(id)")
        )
    }

    func record(_ set: UploadSet, kind: MediaKind = .photo, maxCount: Int = 10) async throws -> Media {
        try await store.recordUpload(newMedia(set, kind: kind), maxCount: maxCount, now: Date())
    }

    func allEvents(after cursor: Int64 = 0) async throws -> [OutboxEvent] {
        var events: [OutboxEvent] = []
        var after = cursor
        while true {
            let page = try await store.events(after: after, limit: 1000)
            events += page
            guard let last = page.last, page.count == 1000 else { return events }
            after = last.sequence
        }
    }

    /// Claims until this media item's job is among the claimed (jobs of earlier checks may come first).
    func claim(_ id: MediaID, lease: Duration = .seconds(600), now: Date = Date()) async throws -> ProcessingJob? {
        while let job = try await store.claimJob(ClaimStep.everything, reclaimingExpired: true, lease: lease, now: now) {
            if job.mediaID == id { return job }
        }
        return nil
    }

    func rendition(_ media: Media, _ name: String, version: String = "v1") -> RenditionRecord {
        RenditionRecord(
            name: name,
            mime: name.hasSuffix(".webp") ? "image/webp" : "image/jpeg",
            width: 160,
            height: 120,
            size: 99,
            sha256: String(repeating: "cd", count: 32),
            location: ObjectLocation(pool: "media.derived", key: "\(media.id)/\(version)/\(name)")
        )
    }

    func outcome(_ renditions: [RenditionRecord]) -> ProcessingOutcome {
        ProcessingOutcome(
            width: 640,
            height: 480,
            durationMilliseconds: nil,
            metadata: ["orientation": .integer(1), "blurhash": .string("LKO2?U%2Tw=w")],
            renditions: renditions,
            staged: []
        )
    }

    // MARK: Checks

    func createdSet() async throws {
        let new = NewUploadSet(ownerID: "owner-1", context: .community, contextID: "c-9", isPrivate: true, expiresAt: Date().addingTimeInterval(3600))
        let created = try await store.createUploadSet(new)
        #expect(created.id == new.id && created.state == .draft && created.context == .community && created.isPrivate)
        #expect(created.ownerID == "owner-1" && created.contextID == "c-9")
        #expect(abs(created.expiresAt.timeIntervalSince(new.expiresAt)) < 0.001)
        #expect(created.liveCounts == LiveCounts())
        #expect(try await store.uploadSet(new.id) == created)
        #expect(try await store.uploadSet(.generate()) == nil)
    }

    func recordedMedia() async throws {
        let set = try await newSet()
        let cursor = try await allEvents().last?.sequence ?? 0
        var recorded: [Media] = []
        var eventIDs: [UUID] = []
        for kind in MediaKind.allCases {
            let new = newMedia(set, kind: kind)
            eventIDs.append(new.eventID)
            let media = try await store.recordUpload(new, maxCount: 10, now: Date())
            #expect(media.id == new.id && media.state == .stored && media.kind == kind && media.size == 1234 && media.location == new.location)
            #expect(media.sha256 == new.sha256 && media.mime == new.mime && media.ownerID == set.ownerID && media.uploadSetID == set.id)
            #expect(try await store.media(new.id) == media)
            recorded.append(media)
        }
        #expect(try await store.media(inSet: set.id).map(\.id) == recorded.map(\.id), "oldest first")
        #expect(try await store.uploadSet(set.id)?.liveCounts == LiveCounts(photo: 1, audio: 1, video: 1))
        let stored = try await allEvents(after: cursor).filter { $0.type == "media.stored" && $0.uploadSetID == set.id }
        #expect(stored.map(\.mediaID) == recorded.map(\.id), "one media.stored event each, in order")
        #expect(stored.map(\.id) == eventIDs, "each with the id its new media gave it")
        #expect(try await store.media(.generate()) == nil)
    }

    func unknownSet() async throws {
        let id = MediaID.generate()
        let new = NewMedia(
            id: id,
            kind: .photo,
            ownerID: "o",
            uploadSetID: .generate(),
            size: 1,
            sha256: "00",
            mime: "image/png",
            location: ObjectLocation(pool: "media.photo", key: "x/\(id)")
        )
        await expectMetadataError(.notFound) { _ = try await store.recordUpload(new, maxCount: 10, now: Date()) }
        #expect(try await store.media(id) == nil)
    }

    func limitUnderConcurrency() async throws {
        let set = try await newSet()
        let store = self.store
        let news = (0..<20).map { _ in newMedia(set) }
        let results = await withTaskGroup(of: MetadataStoreError.Code?.self) { group in
            for new in news {
                group.addTask {
                    do {
                        _ = try await store.recordUpload(new, maxCount: 5, now: Date())
                        return nil
                    } catch let error as MetadataStoreError {
                        return error.code
                    } catch {
                        return .other
                    }
                }
            }
            return await group.reduce(into: [MetadataStoreError.Code?]()) { $0.append($1) }
        }
        #expect(results.filter { $0 == nil }.count == 5, "exactly five recorded")
        #expect(results.filter { $0 == .limitExceeded }.count == 15, "the others refused for the limit")
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 5)
        #expect(try await store.media(inSet: set.id).count == 5)
    }

    func otherOwner() async throws {
        let set = try await newSet()
        let new = newMedia(set, owner: "someone-else")
        await expectMetadataError(.conflict) { _ = try await store.recordUpload(new, maxCount: 10, now: Date()) }
        #expect(try await store.media(new.id) == nil)
    }

    func commit() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let cursor = try await allEvents().last?.sequence ?? 0
        let committed = try await store.commitUploadSet(set.id, now: Date())
        #expect(committed.state == .committed && committed.committedAt != nil)
        #expect(try await store.commitUploadSet(set.id, now: Date()) == committed, "idempotent")
        #expect(try await store.media(media.id)?.committedAt != nil)
        await expectMetadataError(.setCommitted) { _ = try await record(set) }
        let events = try await allEvents(after: cursor).filter { $0.type == "upload_set.committed" && $0.uploadSetID == set.id }
        #expect(events.count == 1)
        #expect(events.first?.payload.contains(media.id.description) == true)
        await expectMetadataError(.notFound) { _ = try await store.commitUploadSet(.generate(), now: Date()) }
    }

    func expiredSet() async throws {
        let set = try await newSet(expiresIn: 60)
        let later = Date().addingTimeInterval(120)
        await expectMetadataError(.setExpired) { _ = try await store.recordUpload(newMedia(set), maxCount: 10, now: later) }
        await expectMetadataError(.setExpired) { _ = try await store.commitUploadSet(set.id, now: later) }
    }

    func newResumable(_ set: UploadSet, length: Int64? = 5000, expiresIn: TimeInterval = 3600) async throws -> ResumableUpload {
        let now = Date()
        let upload = ResumableUpload(
            id: .generate(),
            uploadSetID: set.id,
            ownerID: set.ownerID,
            length: length,
            metadata: ["filename": "clip.mp4"],
            createdAt: now,
            expiresAt: now.addingTimeInterval(expiresIn)
        )
        try await store.createResumableUpload(upload)
        return upload
    }

    func placement(_ upload: ResumableUpload, kind: MediaKind = .photo) -> ResumablePlacement {
        ResumablePlacement(
            kind: kind,
            mime: "image/jpeg",
            ticket: PendingTicket(location: ObjectLocation(pool: "media.\(kind)", key: "\(upload.uploadSetID)/\(upload.id)"), slot: "slot-1")
        )
    }

    func resumableLifetime() async throws {
        let set = try await newSet()
        let upload = try await newResumable(set, expiresIn: 60)
        let read = try #require(try await store.resumableUpload(upload.id, now: Date()))
        #expect(read.uploadSetID == set.id && read.ownerID == set.ownerID && read.length == 5000 && read.received == 0)
        #expect(read.metadata == ["filename": "clip.mp4"] && read.placement == nil && !read.completed && read.head.isEmpty)
        #expect(abs(read.expiresAt.timeIntervalSince(upload.expiresAt)) < 0.001)
        #expect(try await store.resumableUpload(upload.id, now: Date().addingTimeInterval(61)) == nil, "expired")
        #expect(try await store.expiredResumableUploads(now: Date().addingTimeInterval(61), limit: 1000).contains { $0.id == upload.id })
        #expect(try await !store.expiredResumableUploads(now: Date(), limit: 1000).contains { $0.id == upload.id })
        #expect(try await store.removeResumableUpload(upload.id)?.id == upload.id)
        #expect(try await store.removeResumableUpload(upload.id) == nil)
        #expect(try await store.resumableUpload(upload.id, now: Date()) == nil)
        await expectMetadataError(.notFound) {
            try await store.createResumableUpload(
                ResumableUpload(id: .generate(), uploadSetID: .generate(), ownerID: "x", length: nil, createdAt: Date(), expiresAt: Date())
            )
        }
    }

    func resumableClaims() async throws {
        let set = try await newSet()
        let upload = try await newResumable(set, length: nil)
        let now = Date()
        guard case .claimed = try await store.claimResumableAppend(upload.id, at: 0, claim: "a", until: now.addingTimeInterval(10), now: now)
        else {
            Issue.record("the first claim is taken")
            return
        }
        guard case .busy = try await store.claimResumableAppend(upload.id, at: 0, claim: "b", until: now.addingTimeInterval(10), now: now)
        else {
            Issue.record("a second request is told the upload is busy")
            return
        }
        try await store.recordResumableProgress(
            upload.id,
            claim: "a",
            received: 40,
            head: [1, 2, 3],
            length: 9000,
            hashState: [7, 7, 7],
            until: now.addingTimeInterval(10)
        )
        try await store.renewResumableClaim(upload.id, claim: "a", until: now.addingTimeInterval(20))
        guard
            case .busy = try await store.claimResumableAppend(
                upload.id,
                at: 40,
                claim: "b",
                until: now.addingTimeInterval(30),
                now: now.addingTimeInterval(15)
            )
        else {
            Issue.record("the renewed claim still holds")
            return
        }
        // the holder's gateway dies: once its claim lapses, another request takes the upload over
        guard
            case .claimed(let taken) = try await store.claimResumableAppend(
                upload.id,
                at: 40,
                claim: "b",
                until: now.addingTimeInterval(40),
                now: now.addingTimeInterval(21)
            )
        else {
            Issue.record("a lapsed claim is taken over")
            return
        }
        #expect(taken.received == 40 && taken.head == [1, 2, 3] && taken.length == 9000 && taken.hashState == [7, 7, 7])
        await expectMetadataError(.conflict) {
            try await store.recordResumableProgress(upload.id, claim: "a", received: 80, head: [], length: nil, hashState: [8], until: nil)
        }
        await expectMetadataError(.conflict) { try await store.renewResumableClaim(upload.id, claim: "a", until: now.addingTimeInterval(60)) }
        #expect(try await store.resumableUpload(upload.id, now: now)?.hashState == [7, 7, 7], "a lost claim records nothing")
        try await store.recordResumableProgress(upload.id, claim: "b", received: 100, head: [], length: nil, hashState: nil, until: nil)
        let recorded = try await store.resumableUpload(upload.id, now: now)
        #expect(recorded?.received == 100)
        #expect(recorded?.hashState == nil, "progress without a hash forgets the hash of another length")
        guard
            case .offsetMismatch(let current) = try await store.claimResumableAppend(
                upload.id,
                at: 40,
                claim: "c",
                until: now.addingTimeInterval(50),
                now: now.addingTimeInterval(22)
            )
        else {
            Issue.record("a wrong offset is refused")
            return
        }
        #expect(current.received == 100)
        guard
            case .claimed = try await store.claimResumableAppend(
                upload.id,
                at: 100,
                claim: "c",
                until: now.addingTimeInterval(50),
                now: now.addingTimeInterval(22)
            )
        else {
            Issue.record("a released upload is claimed at once")
            return
        }
        guard case .missing = try await store.claimResumableAppend(.generate(), at: 0, claim: "d", until: now, now: now)
        else {
            Issue.record("an unknown upload is missing")
            return
        }
        _ = try await store.removeResumableUpload(upload.id)
    }

    func resumablePlaces() async throws {
        let set = try await newSet()
        let now = Date()
        let first = try await newResumable(set)
        let second = try await newResumable(set)
        for upload in [first, second] {
            _ = try await store.claimResumableAppend(upload.id, at: 0, claim: "claim-\(upload.id)", until: now.addingTimeInterval(60), now: now)
        }
        let placed = try await store.placeResumableUpload(first.id, claim: "claim-\(first.id)", placement: placement(first), maxCount: 1, now: now)
        #expect(placed.placement == placement(first))
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 1, "the place is taken")
        await expectMetadataError(.limitExceeded) {
            _ = try await store.placeResumableUpload(second.id, claim: "claim-\(second.id)", placement: placement(second), maxCount: 1, now: now)
        }
        await expectMetadataError(.limitExceeded) { _ = try await record(set, maxCount: 1) }
        await expectMetadataError(.conflict) {
            _ = try await store.placeResumableUpload(first.id, claim: "not-mine", placement: placement(first), maxCount: 5, now: now)
        }
        #expect(try await store.removeResumableUpload(first.id)?.placement != nil)
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 0, "removing gives the place back")
        _ = try await store.placeResumableUpload(second.id, claim: "claim-\(second.id)", placement: placement(second), maxCount: 1, now: now)
        let cursor = try await allEvents().last?.sequence ?? 0
        let new = NewMedia(
            id: second.id,
            kind: .photo,
            ownerID: set.ownerID,
            uploadSetID: set.id,
            size: 5000,
            sha256: String(repeating: "ef", count: 32),
            mime: "image/jpeg",
            location: placement(second).location
        )
        await expectMetadataError(.conflict) { _ = try await store.completeResumableUpload(second.id, claim: "not-mine", media: new, now: now) }
        let media = try await store.completeResumableUpload(second.id, claim: "claim-\(second.id)", media: new, now: now)
        #expect(media.id == second.id && media.state == .stored && media.size == 5000 && media.location == new.location)
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 1, "the place it held, not another")
        #expect(try await store.media(inSet: set.id).map(\.id) == [second.id])
        #expect(try await allEvents(after: cursor).contains { $0.type == "media.stored" && $0.mediaID == second.id })
        #expect(try await claim(second.id) != nil, "its processing job is queued")
        let done = try #require(try await store.resumableUpload(second.id, now: now))
        #expect(done.completed && done.received == 5000)
        guard case .completed = try await store.claimResumableAppend(second.id, at: 5000, claim: "late", until: now, now: now)
        else {
            Issue.record("a completed upload takes no more pieces")
            return
        }
        _ = try await store.removeResumableUpload(second.id)
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 1, "removing a completed upload keeps its media's place")
    }

    func tombstone() async throws {
        let set = try await newSet()
        let first = try await record(set, maxCount: 1)
        await expectMetadataError(.limitExceeded) { _ = try await record(set, maxCount: 1) }
        let cursor = try await allEvents().last?.sequence ?? 0
        let deleted = try #require(try await store.tombstoneMedia(first.id, now: Date()))
        #expect(deleted.state == .deleted && deleted.deletedAt != nil)
        #expect(try await store.tombstoneMedia(first.id, now: Date()) == deleted, "idempotent")
        #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 0, "the slot is free again")
        _ = try await record(set, maxCount: 1)
        let events = try await allEvents(after: cursor).filter { $0.type == "media.deleted" && $0.mediaID == first.id }
        #expect(events.count == 1)
        #expect(events.first?.payload.contains("\"reason\"") == true)
        #expect(try await store.tombstoneMedia(.generate(), now: Date()) == nil)
    }

    func deletedEventNamesRenditions() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let job = try #require(try await claim(media.id))
        _ = try await store.completeJob(job, outcome: outcome([rendition(media, "w160.webp"), rendition(media, "w160.jpg")]), now: Date())
        let cursor = try await allEvents().last?.sequence ?? 0
        _ = try await store.tombstoneMedia(media.id, now: Date())
        let event = try #require(try await allEvents(after: cursor).first { $0.type == "media.deleted" && $0.mediaID == media.id })
        let deleted = try #require(DeletedMedia(event))
        #expect(deleted.id == media.id && deleted.kind == .photo && deleted.mime == media.mime && deleted.size == media.size)
        #expect(deleted.renditions.map(\.name).sorted() == ["w160.jpg", "w160.webp"])
        #expect(deleted.renditions.allSatisfy { $0.key == "\(media.id)/v1/\($0.name)" && $0.size == 99 })
        let paths = deleted.edgeObjects.map(\.path)
        #expect(paths.contains("/m/\(media.id)/v1/w160") && paths.contains("/m/\(media.id)/v1/w160.webp"), "\(paths)")
    }

    func consumerCursors() async throws {
        let name = "purger-\(UUID().uuidString.prefix(8))"
        let end = try await allEvents().last?.sequence ?? 0
        let start = try await store.consumerCursor(name)
        #expect(start == end, "a new consumer starts at the end of the outbox")
        _ = try await record(try await newSet())
        let next = try #require(try await allEvents(after: start).last?.sequence)
        #expect(try await store.consumerCursor(name) == start, "reading does not move it")
        #expect(try await !store.advanceConsumerCursor(name, from: start + 1000, to: next), "not from where it is")
        #expect(try await store.advanceConsumerCursor(name, from: start, to: next))
        #expect(try await !store.advanceConsumerCursor(name, from: start, to: next), "another process moved it already")
        #expect(try await !store.advanceConsumerCursor(name, from: next, to: start), "never backwards")
        #expect(try await store.consumerCursor(name) == next)
    }

    func outboxRetention() async throws {
        let now = Date()
        let today = OutboxRotation.day(of: now)
        let made = try await store.rotateOutbox(droppingDaysEndingBy: .distantPast, daysAhead: 3, now: now)
        #expect(made.droppedDays.isEmpty)
        #expect(try #require(made.lastDay) >= today.addingTimeInterval(3 * 86_400), "room for the coming days")
        let again = try await store.rotateOutbox(droppingDaysEndingBy: .distantPast, daysAhead: 3, now: now)
        #expect(again.addedDays == 0 && again.lastDay == made.lastDay && again.horizon == made.horizon, "a second rotation changes nothing")
        let set = try await newSet()
        for _ in 0..<3 { _ = try await record(set) }
        let last = try #require(try await allEvents().last?.sequence)
        let reader = "reader-\(UUID().uuidString.prefix(8))"
        _ = try await store.consumerCursor(reader)

        // a cutoff at the end of today drops today's events (in service the cutoff is the retention ago)
        let rotation = try await store.rotateOutbox(droppingDaysEndingBy: OutboxRotation.end(ofDay: today), daysAhead: 3, now: now)
        #expect(rotation.droppedDays.contains(today))
        #expect(rotation.horizon >= last, "the horizon is the highest dropped number")
        #expect(rotation.addedDays == 1, "today has room again")
        do {
            _ = try await store.events(after: last - 1, limit: 10)
            Issue.record("a cursor below the horizon read on")
        } catch let error as MetadataStoreError {
            #expect(error.code == .cursorExpired)
            #expect((error.cause as? OutboxHorizon)?.horizon == rotation.horizon)
        }
        #expect(try await store.events(after: rotation.horizon, limit: 10).isEmpty)
        _ = try await record(set)
        let next = try await store.events(after: rotation.horizon, limit: 10)
        #expect(next.count == 1 && next.allSatisfy { $0.sequence > rotation.horizon }, "numbering goes on above the dropped events")
        #expect(try await store.consumerCursor("new-\(reader)") >= rotation.horizon, "a new reader starts past the horizon")

        let quiet = try await store.rotateOutbox(droppingDaysEndingBy: now.addingTimeInterval(-7 * 86_400), daysAhead: 3, now: now)
        #expect(quiet.droppedDays.isEmpty && quiet.horizon == rotation.horizon, "nothing newer than the cutoff is dropped")
        #expect(try await store.events(after: rotation.horizon, limit: 10) == next)
    }

    func expireDrafts() async throws {
        let set = try await newSet(expiresIn: 60)
        let media = try await record(set)
        let committed = try await newSet(expiresIn: 60)
        _ = try await store.commitUploadSet(committed.id, now: Date())
        let later = Date().addingTimeInterval(120)
        var expired: [UploadSetID] = []
        while true {
            let batch = try await store.expireDrafts(now: later, limit: 100)
            expired += batch
            if batch.count < 100 { break }
        }
        #expect(expired.contains(set.id))
        #expect(!expired.contains(committed.id), "a committed set never expires")
        #expect(try await store.uploadSet(set.id)?.state == .expired)
        #expect(try await store.media(media.id)?.state == .deleted)
        let events = try await allEvents().filter { $0.type == "media.deleted" && $0.mediaID == media.id }
        #expect(events.count == 1 && events.first?.payload.contains("set_expired") == true)
    }

    func purge() async throws {
        let set = try await newSet()
        let media = try await record(set)
        _ = try await store.tombstoneMedia(media.id, now: Date())
        #expect(try await store.mediaAwaitingPurge(limit: 10_000).contains { $0.id == media.id })
        try await store.markPurged(media.id, now: Date())
        #expect(try await !store.mediaAwaitingPurge(limit: 10_000).contains { $0.id == media.id })
    }

    func objectRows() async throws {
        let set = try await newSet()
        let media = try await record(set)
        #expect(try await store.objectHasRow(media.location))
        #expect(try await !store.objectHasRow(ObjectLocation(pool: media.location.pool, key: "\(set.id)/\(MediaID.generate())")))
        let job = try #require(try await claim(media.id))
        let rendition = rendition(media, "w160.jpg")
        #expect(try await !store.objectHasRow(rendition.location))
        _ = try await store.completeJob(job, outcome: outcome([rendition]), now: Date())
        #expect(try await store.objectHasRow(rendition.location))
    }

    func events() async throws {
        let set = try await newSet()
        let before = try await allEvents().last?.sequence ?? 0
        var ids: [MediaID] = []
        for _ in 0..<5 { ids.append(try await record(set).id) }
        let first = try await store.events(after: before, limit: 2)
        #expect(first.count == 2)
        let rest = try await allEvents(after: first.last!.sequence)
        let all = first + rest
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.sequence < $1.sequence }, "numbers only grow")
        #expect(all.filter { $0.uploadSetID == set.id }.compactMap(\.mediaID) == ids, "in the order they were written")
        #expect(try await store.events(after: all.last!.sequence, limit: 10).isEmpty)
    }

    func leases() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let now = Date()
        let job = try #require(try await claim(media.id, lease: .seconds(60), now: now))
        #expect(job.kind == .photo && job.original == media.location && job.size == media.size && job.mime == media.mime && job.attempts == 1)
        #expect(try await store.media(media.id)?.state == .processing)
        #expect(try await claim(media.id, now: now.addingTimeInterval(30)) == nil, "leased")
        while let other = try await store.claimJob(
            ClaimStep.everything,
            reclaimingExpired: false,
            lease: .seconds(600),
            now: now.addingTimeInterval(61)
        ) {
            #expect(other.jobID != job.jobID, "an expired lease is left alone when the claim does not reclaim")
        }
        let again = try #require(try await claim(media.id, now: now.addingTimeInterval(61)), "taken again once the lease expired")
        #expect(again.jobID == job.jobID && again.attempts == 2)
    }

    func claimOrder() async throws {
        // what earlier checks left runnable is claimed first, so that the order below is this check's
        let lease = Duration.seconds(600)
        while try await store.claimJob(ClaimStep.everything, reclaimingExpired: true, lease: lease, now: Date().addingTimeInterval(1)) != nil {}
        let bulk = try await newSet(priority: .bulk)
        let live = try await newSet()
        #expect(try await store.uploadSet(bulk.id)?.priority == .bulk && live.priority == .interactive)
        let olderBulkPhoto = try await record(bulk)
        let video = try await record(live, kind: .video)
        let livePhoto = try await record(live)
        let liveAudio = try await record(live, kind: .audio)
        let laterBulkPhoto = try await record(bulk)
        let interactiveFirst = [ClaimStep(kinds: [.photo, .audio], priority: .interactive), ClaimStep(kinds: [.photo, .audio], priority: .bulk)]
        func next(_ steps: [ClaimStep]) async throws -> MediaID? {
            try await store.claimJob(steps, reclaimingExpired: true, lease: lease, now: Date().addingTimeInterval(1))?.mediaID
        }
        #expect(try await next(interactiveFirst) == livePhoto.id, "interactive work before older bulk work")
        #expect(try await next(interactiveFirst.reversed()) == olderBulkPhoto.id, "bulk work first when the steps say so")
        #expect(try await next(interactiveFirst) == liveAudio.id)
        #expect(try await next(interactiveFirst) == laterBulkPhoto.id, "bulk work when no interactive work waits")
        #expect(try await next(interactiveFirst) == nil, "steps without video never take video")
        #expect(try await next([ClaimStep(kinds: [.video], priority: .bulk), ClaimStep(kinds: [.video], priority: .interactive)]) == video.id)
    }

    func renewedLeases() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let now = Date()
        let job = try #require(try await claim(media.id, lease: .seconds(60), now: now))
        #expect(try await store.renewLease(job, lease: .seconds(60), now: now.addingTimeInterval(50)))
        #expect(try await claim(media.id, now: now.addingTimeInterval(100)) == nil, "renewed until 110 s")
        let again = try #require(try await claim(media.id, lease: .seconds(30), now: now.addingTimeInterval(111)))
        #expect(again.attempts == 2)
        #expect(try await !store.renewLease(job, lease: .seconds(60), now: now.addingTimeInterval(112)), "the first claim is no longer the job's")
        let third = try #require(try await claim(media.id, now: now.addingTimeInterval(142)), "nor did it move the second claim's lease")
        #expect(third.attempts == 3)
        _ = try await store.completeJob(third, outcome: outcome([]), now: now.addingTimeInterval(160))
        #expect(try await !store.renewLease(third, lease: .seconds(60), now: now.addingTimeInterval(161)), "the job ended")
    }

    func completeJob() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let first = try #require(try await claim(media.id))
        let old = [rendition(media, "w160.jpg"), rendition(media, "w320.jpg")]
        #expect(try await store.completeJob(first, outcome: outcome(old), now: Date()).isEmpty)
        let ready = try #require(try await store.media(media.id))
        #expect(ready.state == .ready && ready.width == 640 && ready.height == 480)
        #expect(ready.metadata["blurhash"] == .string("LKO2?U%2Tw=w"))
        #expect(try await store.renditions(of: media.id).map(\.name) == ["w160.jpg", "w320.jpg"])
        #expect(try await allEvents().contains { $0.type == "media.ready" && $0.mediaID == media.id })
        #expect(try await claim(media.id) == nil, "the job is done")
        // processing again with fewer renditions: the one no longer made is handed back, its row gone
        #expect(try await store.completeJob(first, outcome: outcome([old[0]]), now: Date()) == [old[1].location])
        #expect(try await store.renditions(of: media.id).map(\.name) == ["w160.jpg"])
        #expect(try await !store.objectHasRow(old[1].location))
    }

    func jobTrace() async throws {
        let set = try await newSet()
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        var traced = newMedia(set)
        traced.trace = traceparent
        let media = try await store.recordUpload(traced, maxCount: 10, now: Date())
        #expect(try await claim(media.id)?.trace == traceparent, "a recorded upload's job")
        let untraced = try await record(set)
        let job = try #require(try await claim(untraced.id))
        #expect(job.trace == nil, "no trace recorded, none claimed")
        let upload = try await newResumable(set)
        let now = Date()
        _ = try await store.claimResumableAppend(upload.id, at: 0, claim: "c", until: now.addingTimeInterval(60), now: now)
        _ = try await store.placeResumableUpload(upload.id, claim: "c", placement: placement(upload), maxCount: 10, now: now)
        var completed = newMedia(set)
        completed.id = upload.id
        completed.location = placement(upload).location
        completed.trace = traceparent
        _ = try await store.completeResumableUpload(upload.id, claim: "c", media: completed, now: now)
        #expect(try await claim(upload.id)?.trace == traceparent, "a completed resumable upload's job")
    }

    func failJob() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let now = Date()
        let job = try #require(try await claim(media.id, now: now))
        try await store.failJob(job, error: ProcessingError(.storage, "the OSD went away"), retry: true, retryAfter: .seconds(30), now: now)
        #expect(try await claim(media.id, now: now.addingTimeInterval(10)) == nil, "not before its backoff")
        let retried = try #require(try await claim(media.id, now: now.addingTimeInterval(31)))
        #expect(retried.attempts == 2)
        try await store.failJob(retried, error: ProcessingError(.invalidMedia, "truncated"), retry: false, retryAfter: .zero, now: now)
        let failed = try #require(try await store.media(media.id))
        #expect(failed.state == .failed)
        #expect(failed.failureReason == "invalid_media: truncated")
        #expect(try await claim(media.id, now: now.addingTimeInterval(3600)) == nil, "a dead job is never claimed")
        #expect(try await allEvents().contains { $0.type == "media.failed" && $0.mediaID == media.id })
    }

    /// Measured as differences: the other checks share the store.
    func backlog() async throws {
        let now = Date()
        _ = try await store.events(after: 0, limit: 1)  // every event so far is read
        let before = try await store.backlog(now: now)
        #expect(before.unreadEvents == 0)
        let set = try await newSet()
        let first = try await record(set)
        _ = try await record(set)
        let queued = try await store.backlog(now: now.addingTimeInterval(60))
        #expect(queued.queuedJobs[.photo, default: 0] == before.queuedJobs[.photo, default: 0] + 2)
        #expect(queued.oldestQueuedJob[.photo].map { $0 >= .seconds(55) } == true, "\(queued.oldestQueuedJob)")
        #expect(queued.unreadEvents >= 2, "the stored events are not read yet")
        let job = try #require(try await claim(first.id, now: now.addingTimeInterval(60)))
        try await store.failJob(job, error: ProcessingError(.invalidMedia, "truncated"), retry: false, retryAfter: .zero, now: now)
        let after = try await store.backlog(now: now.addingTimeInterval(60))
        #expect(after.deadJobs == before.deadJobs + 1)
        // the claim may have taken other runnable jobs too: they run, they are no longer queued
        #expect(after.queuedJobs[.photo, default: 0] < queued.queuedJobs[.photo, default: 0])
    }

    func deletedWhileProcessing() async throws {
        let set = try await newSet()
        let media = try await record(set)
        let job = try #require(try await claim(media.id))
        _ = try await store.tombstoneMedia(media.id, now: Date())
        let made = [rendition(media, "w160.jpg")]
        #expect(try await store.completeJob(job, outcome: outcome(made), now: Date()) == made.map(\.location))
        #expect(try await store.renditions(of: media.id).isEmpty)
        #expect(try await store.media(media.id)?.state == .deleted)
    }

    func originRecord() async throws {
        let set = try await newSet(context: .post, isPrivate: true)
        let media = try await record(set)
        let job = try #require(try await claim(media.id))
        _ = try await store.completeJob(job, outcome: outcome([rendition(media, "w160.jpg"), rendition(media, "w320.jpg")]), now: Date())
        let record = try #require(try await store.originRecord(media.id, renditionNames: ["w160.jpg", "w160.webp", "w999.jpg"]))
        #expect(record.id == media.id && record.state == .ready && record.context == .post && record.setIsPrivate)
        #expect(record.location == media.location && record.sha256 == media.sha256 && record.size == media.size && record.mime == media.mime)
        #expect(record.renditions.map(\.name) == ["w160.jpg"], "only the named renditions that exist")
        #expect(try await store.originRecord(media.id, renditionNames: [])?.renditions.isEmpty == true)
        #expect(try await store.originRecord(.generate(), renditionNames: []) == nil)
    }
}
