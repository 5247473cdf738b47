import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Testing

/// What a crash leaves in each window of the Ceph-first ordering, and how it is cleaned up: the use cases
/// over the in-memory ports, stopped at a fault point as a killed process would stop, a new "process"
/// (new use cases over the same stores) and an injected clock. No stack, seconds in all.
@Suite struct CrashWindowTests {
    let clock = TestClock()
    let pools = StoragePools()
    let stores: MemoryStores
    let grace = Duration.seconds(3600)

    init() {
        stores = .inMemory(pools: pools, clock: clock.clock)
    }

    func openSet() async throws -> UploadSet {
        try await stores.metadata.createUploadSet(
            NewUploadSet(ownerID: "owner", context: .post, contextID: "post-1", expiresAt: clock.now.addingTimeInterval(86400))
        )
    }

    func uploads(_ faults: FaultInjection = .none) -> UploadService<MemoryStores> {
        UploadService(storage: stores, pools: pools, settings: UploadSettings(), clock: clock.clock, faults: faults, logger: quietLogger)
    }

    func reconciler() -> Reconciler<MemoryStores> {
        Reconciler(storage: stores, pools: pools, clock: clock.clock, logger: quietLogger)
    }

    func photo(seed: UInt64 = 1) -> AsyncStream<ByteBuffer> { pieces(fakeJPEG(300_000, seed: seed), size: 65_536).async }

    @Test func aCrashAfterTheObjectAndBeforeTheRowLeavesAnOrphanThatTheReconcilerRemovesAfterItsGrace() async throws {
        let set = try await openSet()
        let plan = FaultPlan.crash(at: .objectWritten)
        let doomed = uploads(plan.injection)
        let body = photo()
        Task { _ = try? await doomed.storeOriginal(body, into: set) }
        await plan.reached()

        // what the crash left: a whole object and its ledger entry, no row
        #expect(stores.blobs.locations.count == 1)
        #expect(stores.ledger.entries.count == 1)
        #expect(try await stores.metadata.media(inSet: set.id).isEmpty)
        let object = try #require(stores.blobs.locations.first)
        #expect(stores.blobs.bytes(of: object)?.count == 300_000)

        // another process reconciles: within the grace the object may still be streaming, so it stays
        var report = try await reconciler().run(grace: grace)
        #expect(report.removedOrphans == 0)
        #expect(stores.blobs.locations == [object])

        clock.advance(by: .seconds(2 * 3600))
        report = try await reconciler().run(grace: grace)
        #expect(report.removedOrphans == 1)
        #expect(stores.blobs.locations.isEmpty)
        #expect(stores.ledger.entries.isEmpty)
        #expect(report.closedPeriods == 1, "the emptied hour is closed")
        #expect(try await stores.metadata.media(inSet: set.id).isEmpty, "no row points at the removed object")
    }

    @Test func aCrashDuringTheWriteLeavesAPartialObjectThatTheReconcilerRemoves() async throws {
        let set = try await openSet()
        let plan = FaultPlan.crash(at: .registered)
        let doomed = uploads(plan.injection)
        let body = photo()
        Task { _ = try? await doomed.storeOriginal(body, into: set) }
        await plan.reached()
        // registered before the first byte: the entry is there although no object is yet
        #expect(stores.ledger.entries.count == 1)
        #expect(stores.blobs.locations.isEmpty)

        clock.advance(by: .seconds(2 * 3600))
        let report = try await reconciler().run(grace: grace)
        #expect(report.removedOrphans == 1, "an entry whose object never came is settled too")
        #expect(stores.ledger.entries.isEmpty)
    }

    @Test func aCrashAfterTheRowAndBeforeTheEntryIsClearedKeepsTheObjectAndOnlyClearsTheEntry() async throws {
        let set = try await openSet()
        let plan = FaultPlan.crash(at: .rowCommitted)
        let doomed = uploads(plan.injection)
        let body = photo()
        Task { _ = try? await doomed.storeOriginal(body, into: set) }
        await plan.reached()

        let rows = try await stores.metadata.media(inSet: set.id)
        #expect(rows.count == 1)
        #expect(stores.ledger.entries.count == 1)
        let object = try #require(rows.first?.location)
        #expect(stores.blobs.locations == [object])

        clock.advance(by: .seconds(2 * 3600))
        let report = try await reconciler().run(grace: grace)
        #expect(report.clearedEntries == 1)
        #expect(report.removedOrphans == 0)
        #expect(stores.ledger.entries.isEmpty)
        #expect(stores.blobs.locations == [object], "an object with a row is never removed")
        #expect(try await stores.metadata.media(inSet: set.id).first?.state == .stored)
    }

    @Test func aJobWhoseWorkerDiesIsTakenAgainAfterItsLeaseAndItsLeftoversCleared() async throws {
        let set = try await openSet()
        let media = try await uploads().storeOriginal(photo(), into: set)
        try await eventually { stores.ledger.entries.isEmpty }
        let settings = WorkerSettings(concurrency: 1, lease: .seconds(600), maxAttempts: 3, backoff: .seconds(1))

        // worker A writes the renditions and dies before it commits them
        let plan = FaultPlan.crash(at: .jobProcessed)
        let doomed = JobRunner(
            storage: stores,
            processing: processor(),
            settings: settings,
            clock: clock.clock,
            faults: plan.injection,
            logger: quietLogger
        )
        Task { _ = try? await doomed.runOne() }
        await plan.reached()
        #expect(try await stores.metadata.media(media.id)?.state == .processing)
        let renditions = stores.blobs.locations.filter { $0.pool == pools.derived }
        #expect(renditions.count == 2)
        #expect(stores.ledger.entries.count == 2, "the renditions are staged, not committed")

        // worker B finds nothing while the lease holds, then takes the job over
        let survivor = JobRunner(storage: stores, processing: processor(), settings: settings, clock: clock.clock, logger: quietLogger)
        #expect(try await survivor.runOne() == nil)
        clock.advance(by: .seconds(2 * 3600))
        #expect(try await survivor.runOne() != nil)
        let ready = try #require(try await stores.metadata.media(media.id))
        #expect(ready.state == .ready)
        #expect(
            try await stores.metadata.renditions(of: media.id).map(\.location).sorted { $0.key < $1.key } == renditions.sorted { $0.key < $1.key }
        )

        // A's entries (an earlier hour) are left; the reconciler finds their rows and only clears them
        try await eventually { stores.ledger.entries.count == 2 }
        clock.advance(by: .seconds(2 * 3600))
        let report = try await reconciler().run(grace: grace)
        #expect(report.clearedEntries == 2)
        #expect(report.removedOrphans == 0)
        #expect(stores.ledger.entries.isEmpty)
        #expect(Set(stores.blobs.locations.filter { $0.pool == pools.derived }) == Set(renditions))
    }

    @Test func aJobThatOutlastsItsLeaseKeepsItWhileItsWorkerRenewsIt() async throws {
        let set = try await openSet()
        let media = try await uploads().storeOriginal(photo(), into: set)
        let settings = WorkerSettings(concurrency: 1, lease: .seconds(3), maxAttempts: 3, backoff: .seconds(1))

        // worker A is slow: it holds the job between processing and commit (renewals go on meanwhile)
        let slow = FaultPlan.pause(at: .jobProcessed)
        let first = JobRunner(
            storage: stores,
            processing: processor(),
            settings: settings,
            clock: clock.clock,
            faults: slow.injection,
            logger: quietLogger
        )
        let running = Task { try await first.runOne() }
        await slow.reached()
        clock.advance(by: .seconds(2))
        try await Task.sleep(for: .milliseconds(2500))  // renewals every second, each to "now" + 3 s
        clock.advance(by: .seconds(2))  // past the first lease

        let second = JobRunner(storage: stores, processing: processor(), settings: settings, clock: clock.clock, logger: quietLogger)
        #expect(try await second.runOne() == nil, "still A's")
        slow.release()
        #expect(try await running.value != nil)
        #expect(try await stores.metadata.media(media.id)?.state == .ready)
        #expect(stores.metadata.jobStates[media.id] == nil, "the job ended once")
    }

    @Test func aWorkerStuckPastTheHoldLimitStopsRenewingAndAnotherWorkerTakesTheJob() async throws {
        let set = try await openSet()
        let media = try await uploads().storeOriginal(photo(), into: set)
        // renewals every second of real time; the worker gives the job up after 2 s of holding it
        let settings = WorkerSettings(concurrency: 1, lease: .seconds(3), maxAttempts: 3, backoff: .seconds(1), holdLimit: .seconds(2))

        // worker A is stuck between processing and commit, where no deadline reaches it
        let stuck = FaultPlan.pause(at: .jobProcessed)
        let first = JobRunner(
            storage: stores,
            processing: processor(),
            settings: settings,
            clock: clock.clock,
            faults: stuck.injection,
            logger: quietLogger
        )
        let running = Task { try await first.runOne() }
        await stuck.reached()
        // the injected clock follows real time, so that each renewal moves the lease on: the renewal at 1 s
        // leases until at most 5 s; at 2 s the limit is reached. A worker without the limit would have
        // renewed at 4 s, until at least 6.5 s.
        for _ in 0..<8 {
            try await Task.sleep(for: .milliseconds(500))
            clock.advance(by: .milliseconds(500))
        }
        try await Task.sleep(for: .milliseconds(300))
        clock.advance(by: .milliseconds(1500))  // 5.5 s: past every lease given before the limit

        let second = JobRunner(storage: stores, processing: processor(), settings: settings, clock: clock.clock, logger: quietLogger)
        let retaken = try await second.runOne()
        #expect(retaken?.mediaID == media.id, "the stuck worker's job is another worker's once its lease ran out")
        #expect(retaken?.attempts == 2)
        #expect(try await stores.metadata.media(media.id)?.state == .ready)
        stuck.release()
        #expect(try await running.value != nil)
        #expect(try await stores.metadata.media(media.id)?.state == .ready, "the stuck worker's late outcome changes nothing")
    }

    @Test func aReconcileRacingAnUploadLeavesTheUploadAlone() async throws {
        let set = try await openSet()
        let plan = FaultPlan.pause(at: .objectWritten)
        let paused = uploads(plan.injection)
        let body = photo()
        let upload = Task { try await paused.storeOriginal(body, into: set) }
        await plan.reached()

        // the object is written, its row not yet: the reconciler must not take it for an orphan
        clock.advance(by: .seconds(60))
        let report = try await reconciler().run(grace: grace)
        #expect(report.removedOrphans == 0 && report.clearedEntries == 0)
        plan.release()
        let media = try await upload.value
        #expect(try await stores.blobs.exists(media.location))
        #expect(try await stores.metadata.media(media.id) != nil)
        try await eventually { stores.ledger.entries.isEmpty }

        // a later pass has nothing to do
        clock.advance(by: .seconds(2 * 3600))
        let later = try await reconciler().run(grace: grace)
        #expect(later.removedOrphans == 0 && later.clearedEntries == 0)
        #expect(try await stores.blobs.exists(media.location))
    }

    func processor() -> MediaProcessor<InMemoryBlobStore, InMemoryPendingLedger, FixedImages, NoTranscoder> {
        MediaProcessor(
            blobs: stores.blobs,
            ledger: stores.ledger,
            images: FixedImages(),
            transcoder: NoTranscoder(),
            pools: pools,
            settings: ProcessingSettings(),
            clock: clock.clock,
            logger: quietLogger
        )
    }
}

/// An image processor for tests of the job logic: two fixed renditions, whatever the input.
struct FixedImages: ImageProcessor {
    func derive(encoded bytes: [UInt8], settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation {
        PhotoDerivation(
            width: 640,
            height: 480,
            orientation: 1,
            frames: 1,
            blurHash: "L00000fQfQfQfQfQfQfQfQfQfQfQ",
            dominantColor: "#000000",
            renditions: [
                EncodedImage(name: "\(prefix)w160.jpg", mime: "image/jpeg", width: 160, height: 120, bytes: fakeJPEG(900)),
                EncodedImage(name: "\(prefix)w160.webp", mime: "image/webp", width: 160, height: 120, bytes: Array("RIFF0000WEBPVP8 ".utf8)),
            ]
        )
    }

    func derive(frame: RGBFrame, settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation {
        try await derive(encoded: [], settings: settings, prefix: prefix)
    }

    var loaders: [String: Bool] { [:] }
}

/// A transcoder for tests of photos only.
struct NoTranscoder: Transcoder {
    func transcodeVideo(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> VideoResult
    {
        throw ProcessingError(.unsupported, "no video in these tests")
    }

    func transcodeAudio(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> AudioResult
    {
        throw ProcessingError(.unsupported, "no audio in these tests")
    }

    var versions: [String: String] { [:] }
}
