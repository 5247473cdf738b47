import Foundation
import MediaCore
import MediaTesting
import Testing

@Suite struct JobSchedulingTests {
    static let stills = (
        interactive: ClaimStep(kinds: [.photo, .audio], priority: .interactive), bulk: ClaimStep(kinds: [.photo, .audio], priority: .bulk)
    )

    @Test func aFreshWorkerLooksForInteractiveWorkFirst() {
        #expect(ClaimScheduler(lane: .stills, bulkShare: 0.2).steps == [Self.stills.interactive, Self.stills.bulk])
    }

    @Test func bulkWorkGoesFirstOnlyWhileItHadLessThanItsShareOfTheTime() {
        var scheduler = ClaimScheduler(lane: .stills, bulkShare: 0.2)
        scheduler.ran(.interactive, .photo, from: 0, to: 0.05)
        #expect(scheduler.steps.first == Self.stills.bulk, "no bulk work lately: it is owed its turn")
        scheduler.ran(.bulk, .photo, from: 0.05, to: 0.45)
        #expect(scheduler.steps.first == Self.stills.interactive, "a long bulk job took far more than its share")
        var now = 0.45
        var interactiveJobs = 0
        while scheduler.steps.first == Self.stills.interactive {
            scheduler.ran(.interactive, .photo, from: now, to: now + 0.05)
            now += 0.05
            interactiveJobs += 1
        }
        // 0.4 s of bulk work is 20 % of 2 s: about 1.6 s of interactive work (less, as the bulk job fades)
        #expect((20...32).contains(interactiveJobs), "\(interactiveJobs)")
    }

    @Test func underSustainedLoadOfBothBulkWorkKeepsAboutItsShareOfTheTime() {
        // every claim finds both: 50 ms interactive jobs, 400 ms bulk jobs
        for share in [0.1, 0.2, 0.5] {
            var scheduler = ClaimScheduler(lane: .stills, bulkShare: share)
            var now = 0.0
            var spent: [ProcessingPriority: Double] = [:]
            while now < 600 {
                let priority = scheduler.steps[0].priority
                let seconds = priority == .bulk ? 0.4 : 0.05
                scheduler.ran(priority, .photo, from: now, to: now + seconds)
                now += seconds
                if now > 60 { spent[priority, default: 0] += seconds }
            }
            let bulk = (spent[.bulk] ?? 0) / ((spent[.bulk] ?? 0) + (spent[.interactive] ?? 0))
            #expect(abs(bulk - share) < 0.08, "share \(share): bulk had \(bulk) of the time")
        }
    }

    @Test func aLongQuietSpellIsForgotten() {
        var scheduler = ClaimScheduler(lane: .stills, bulkShare: 0.2, memory: 10)
        for second in 0..<600 { scheduler.ran(.interactive, .photo, from: Double(second), to: Double(second) + 1) }
        scheduler.ran(.bulk, .photo, from: 600, to: 601)
        #expect(scheduler.steps.first == Self.stills.bulk, "bulk work had a second in ten minutes")
        scheduler.ran(.bulk, .photo, from: 700, to: 701)
        #expect(scheduler.steps.first == Self.stills.interactive, "after 100 s the interactive minutes no longer count")
    }

    @Test func aStillsWorkerNeverLooksForVideo() {
        var scheduler = ClaimScheduler(lane: .stills, bulkShare: 0.3)
        for index in 0..<50 {
            #expect(scheduler.steps.allSatisfy { !$0.kinds.contains(.video) })
            scheduler.ran(index % 3 == 0 ? .bulk : .interactive, .photo, from: Double(index), to: Double(index) + 0.5)
        }
    }

    @Test func aVideoWorkerTakesVideoFirstThenHelpsWithPhotosAndAudio() {
        #expect(
            ClaimScheduler(lane: .video, bulkShare: 0.2).steps == [
                ClaimStep(kinds: [.video], priority: .interactive), ClaimStep(kinds: [.audio, .photo], priority: .interactive),
                ClaimStep(kinds: [.video], priority: .bulk), ClaimStep(kinds: [.photo, .audio], priority: .bulk),
            ]
        )
    }

    @Test func aVideoWorkerOwingBulkWorkStillHelpsWithInteractivePhotosBeforeBulkOnes() {
        var scheduler = ClaimScheduler(lane: .video, bulkShare: 0.2)
        scheduler.ran(.interactive, .video, from: 0, to: 5)
        #expect(scheduler.steps.map(\.description) == ["bulk video", "interactive video", "interactive photo+audio", "bulk photo+audio"])
    }

    @Test func aSingleWorkerSharesItsTimeBetweenVideoAndTheRest() {
        var scheduler = ClaimScheduler(lane: .all, bulkShare: 0.2)
        #expect(scheduler.steps.map(\.description) == ["interactive photo+audio", "interactive video", "bulk photo+audio", "bulk video"])
        scheduler.ran(.interactive, .photo, from: 0, to: 1)
        #expect(scheduler.steps.prefix(2).map(\.description) == ["bulk video", "bulk photo+audio"], "video and bulk work are owed")
        scheduler.ran(.interactive, .video, from: 1, to: 3)
        #expect(scheduler.steps.prefix(2).map(\.description) == ["bulk photo+audio", "bulk video"], "video had its half")
        #expect(ClaimStep.everything.map(\.description) == ["interactive photo+audio", "interactive video", "bulk photo+audio", "bulk video"])
    }

    @Test(arguments: [
        (1, 1, [WorkerLane.all]), (2, 1, [.stills, .video]), (4, 2, [.stills, .stills, .video, .video]), (3, 9, [.stills, .video, .video]),
        (3, 0, [.stills, .stills, .video]),
    ])
    func workersAreSplitIntoLanesKeepingOneForPhotos(_ workers: Int, _ video: Int, _ lanes: [WorkerLane]) {
        #expect(WorkerSettings(concurrency: workers, videoWorkers: video).lanes == lanes)
    }

    @Test func expiredLeasesAreLookedForAtTheFirstClaimThenOncePerThirdOfTheLease() {
        var schedule = ReclaimSchedule(every: .seconds(60) / 3)
        let answers = [0, 0.5, 19.9, 20, 25, 100].map { schedule.due(at: $0) }
        // the first claim; not at every poll; a third of the lease later; after a long job, at once
        #expect(answers == [true, false, false, true, false, true])
    }

    @Test func anInteractiveUploadIsClaimedBeforeAnEarlierIngest() async throws {
        let store = InMemoryMetadataStore()
        let clock = TestClock()
        func set(_ priority: ProcessingPriority) async throws -> UploadSet {
            try await store.createUploadSet(
                NewUploadSet(ownerID: "o", context: .post, contextID: "c", priority: priority, expiresAt: clock.clock.now().addingTimeInterval(3600))
            )
        }
        func media(in set: UploadSet) -> NewMedia {
            let id = MediaID.generate()
            return NewMedia(
                id: id,
                kind: .photo,
                ownerID: "o",
                uploadSetID: set.id,
                size: 1,
                sha256: String(repeating: "0", count: 64),
                mime: "image/jpeg",
                location: ObjectLocation(pool: "p", key: "\(id)")
            )
        }
        let bulk = try await set(.bulk)
        var ingested: [MediaID] = []
        for _ in 0..<20 { ingested.append(try await store.recordUpload(media(in: bulk), maxCount: 100, now: clock.clock.now()).id) }
        clock.advance(by: .seconds(1))
        let live = try await store.recordUpload(media(in: try await set(.interactive)), maxCount: 5, now: clock.clock.now())
        clock.advance(by: .seconds(1))
        let steps = ClaimScheduler(lane: .stills, bulkShare: 0.2).steps
        let order = try await (0..<21).asyncMap { _ in
            try await store.claimJob(steps, reclaimingExpired: true, lease: .seconds(60), now: clock.clock.now())?.mediaID
        }
        #expect(order.first == live.id, "the upload is processed first")
        #expect(order.dropFirst().compactMap { $0 } == ingested, "then the ingest, in order")
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
