import Crypto
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import OpenSSLHashing
import Synchronization
import Testing

/// Resumable uploads over the in-memory ports: the same rules as multipart (type from the first bytes,
/// caps, count limits under concurrency), pieces from any "gateway", one append at a time, and what every
/// refusal, interruption and expiry leaves behind.
@Suite struct ResumableUploadTests {
    let pools = StoragePools()
    let clock = TestClock()
    let stores: MemoryStores
    let service: ResumableUploadService<MemoryStores>
    let grantOwner = "owner"

    init() {
        stores = .inMemory(pools: pools, clock: clock.clock)
        service = Self.service(stores, pools, clock, hashing: nil)
    }

    /// A gateway's service over the shared stores; with `hashing`, it keeps the upload's hash as the bytes
    /// arrive.
    static func service(
        _ stores: MemoryStores,
        _ pools: StoragePools,
        _ clock: TestClock,
        hashing: (any ResumableSHA256)?
    ) -> ResumableUploadService<MemoryStores> {
        ResumableUploadService(
            storage: stores,
            pools: pools,
            uploadSettings: UploadSettings(),
            settings: ResumableSettings(lifetime: .seconds(3600), claimLease: .seconds(15)),
            hashing: hashing,
            clock: clock.clock,
            logger: quietLogger
        )
    }

    func openSet(_ context: UploadContext = .post) async throws -> (UploadSet, UploadGrant) {
        let set = try await stores.metadata.createUploadSet(
            NewUploadSet(ownerID: grantOwner, context: context, contextID: "c", expiresAt: clock.now.addingTimeInterval(86400))
        )
        return (set, UploadGrant(uploadSetID: set.id, ownerID: grantOwner, expiresAt: clock.now.addingTimeInterval(3600)))
    }

    func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined() }

    /// Appends `bytes` at the upload's current offset.
    @discardableResult
    func append(
        _ upload: ResumableUpload,
        _ grant: UploadGrant,
        _ bytes: [UInt8],
        at offset: Int64,
        finish: Bool = false
    ) async throws
        -> AppendOutcome
    {
        try await service.append(upload.id, for: grant, at: offset, body: pieces(bytes, size: 40_000).async, finish: finish)
    }

    @Test func aFileInThreePiecesBecomesAMediaItemWithTheDigestOfTheWholeFile() async throws {
        let (set, grant) = try await openSet()
        let file = fakeJPEG(900_000, seed: 3)
        let upload = try await service.create(in: set, length: Int64(file.count), metadata: ["filename": "a.jpg"])
        var offset: Int64 = 0
        for piece in [file[..<300_000], file[300_000..<600_000]] {
            let outcome = try await append(upload, grant, Array(piece), at: offset)
            offset = outcome.upload.received
            #expect(outcome.media == nil)
        }
        #expect(offset == 600_000)
        #expect(try await stores.metadata.media(inSet: set.id).isEmpty, "no row before the last byte")
        let last = try await append(upload, grant, Array(file[600_000...]), at: offset)
        let media = try #require(last.media)
        #expect(media.id == upload.id && media.kind == .photo && media.size == Int64(file.count) && media.sha256 == sha256(file))
        #expect(stores.blobs.bytes(of: media.location) == file)
        #expect(last.upload.completed && last.upload.received == Int64(file.count))
        #expect(stores.metadata.jobStates[media.id] == "queued", "its processing job is queued")
        try await eventually { stores.ledger.entries.isEmpty }
        #expect(try await stores.metadata.uploadSet(set.id)?.liveCounts.photo == 1)
        #expect(try await service.upload(upload.id, for: grant).completed, "a HEAD after completion still answers")
    }

    /// The service of a gateway that keeps the upload's hash as its bytes arrive.
    func hashingService() -> ResumableUploadService<MemoryStores> { Self.service(stores, pools, clock, hashing: OpenSSLSHA256()) }

    /// Appends the rest of `file` from `offset` through `service`, which completes the upload; returns its
    /// media, checked to carry the digest of the whole file.
    func complete(
        _ upload: ResumableUpload,
        _ grant: UploadGrant,
        through service: ResumableUploadService<MemoryStores>,
        _ file: [UInt8],
        from offset: Int64
    ) async throws -> Media {
        let last = try await service.append(upload.id, for: grant, at: offset, body: pieces(Array(file[Int(offset)...]), size: 40_000).async)
        let media = try #require(last.media)
        #expect(media.sha256 == sha256(file) && media.size == Int64(file.count))
        return media
    }

    @Test func aFileInPiecesIsHashedAsItArrivesNotReadBackAtTheEnd() async throws {
        let hashing = hashingService()
        let (set, grant) = try await openSet()
        let file = fakeJPEG(900_000, seed: 21)
        let upload = try await hashing.create(in: set, length: Int64(file.count), metadata: [:])
        var offset: Int64 = 0
        // the first bytes alone (too few to name the type: kept with the state), then two pieces, each
        // append as another gateway would take it, from what the metadata store holds
        for piece in [file[..<10], file[10..<300_000], file[300_000..<600_000]] {
            offset = try await hashing.append(upload.id, for: grant, at: offset, body: pieces(Array(piece), size: 40_000).async).upload.received
            let saved = try await stores.metadata.resumableUpload(upload.id, now: clock.now)
            #expect(saved?.received == offset)
            #expect((saved?.hashState != nil) == (offset >= Int64(MediaSniffer.prefixLength)), "a hash once the upload is placed")
        }
        let media = try await complete(upload, grant, through: hashing, file, from: offset)
        #expect(stores.blobs.bytes(of: media.location) == file)
        #expect(stores.blobs.reads == 0, "the object was not read back to hash it")
    }

    @Test func anUploadWhoseHashIsNotKnownIsReadBackToHashIt() async throws {
        let hashing = hashingService()
        let (set, grant) = try await openSet()
        let file = fakeJPEG(500_000, seed: 22)
        let upload = try await hashing.create(in: set, length: Int64(file.count), metadata: [:])
        // the first piece through a gateway that keeps no hash, then one that does: it has nothing to go on
        let first = try await append(upload, grant, Array(file[..<200_000]), at: 0)
        #expect(try await stores.metadata.resumableUpload(upload.id, now: clock.now)?.hashState == nil)
        _ = try await complete(upload, grant, through: hashing, file, from: first.upload.received)
        #expect(stores.blobs.reads == 1, "read back once")
    }

    @Test func aHashOfAnotherLengthIsNotUsed() async throws {
        let hashing = hashingService()
        let (set, grant) = try await openSet()
        let file = fakeJPEG(300_000, seed: 23)
        let upload = try await hashing.create(in: set, length: Int64(file.count), metadata: [:])
        let first = try await hashing.append(upload.id, for: grant, at: 0, body: pieces(Array(file[..<100_000]), size: 40_000).async)
        // a state saved at another offset than the one recorded (as a bug or a damaged row would leave it)
        var stale = try #require(try await stores.metadata.resumableUpload(upload.id, now: clock.now))
        let claim = "stale"
        guard
            case .claimed = try await stores.metadata.claimResumableAppend(
                upload.id,
                at: stale.received,
                claim: claim,
                until: clock.now.addingTimeInterval(10),
                now: clock.now
            )
        else {
            Issue.record("claimed")
            return
        }
        var other = OpenSSLSHA256().start()
        [UInt8](repeating: 1, count: 5).withUnsafeBytes { other.update($0) }
        stale.hashState = other.saved()
        try await stores.metadata.recordResumableProgress(
            upload.id,
            claim: claim,
            received: stale.received,
            head: [],
            length: nil,
            hashState: stale.hashState,
            until: nil
        )
        // the digest is of the file, read back, not of the stale state
        _ = try await complete(upload, grant, through: hashing, file, from: first.upload.received)
        #expect(stores.blobs.reads == 1)
    }

    @Test func firstBytesInTinyPiecesAreKeptWithTheStateUntilTheyNameTheType() async throws {
        let (set, grant) = try await openSet()
        let file = fakeJPEG(200_000, seed: 4)
        let upload = try await service.create(in: set, length: nil, metadata: [:])
        var offset: Int64 = 0
        for start in stride(from: 0, to: 50, by: 10) {
            offset = try await append(upload, grant, Array(file[start..<start + 10]), at: offset).upload.received
        }
        #expect(offset == 50)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty, "nothing stored before the type is known")
        let media = try #require(try await append(upload, grant, Array(file[50...]), at: 50, finish: true).media)
        #expect(stores.blobs.bytes(of: media.location) == file)
        #expect(media.sha256 == sha256(file))
    }

    @Test func contentThatIsNotMediaIsRefusedAtTheFirstPieceAndLeavesNothing() async throws {
        let (set, grant) = try await openSet()
        let upload = try await service.create(in: set, length: 100_000, metadata: [:])
        let text = Array(String(repeating: "not a photo ", count: 9000).utf8.prefix(100_000))
        #expect(await mediaErrorCode { try await append(upload, grant, text, at: 0) } == .unsupportedMediaType)
        #expect(await mediaErrorCode { _ = try await service.upload(upload.id, for: grant) } == .notFound)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty)
    }

    @Test func lengthsOverTheCapsAreRefusedAsSoonAsTheyAreKnown() async throws {
        let (set, grant) = try await openSet()
        // nothing a post takes is this big: refused at creation
        #expect(await mediaErrorCode { _ = try await service.create(in: set, length: 11 << 20, metadata: [:]) } == .tooLarge)
        // a video could be 5 MiB, a photo not: refused once the first bytes say photo
        let declared = try await service.create(in: set, length: 5 << 20, metadata: [:])
        #expect(await mediaErrorCode { try await append(declared, grant, fakeJPEG(100_000), at: 0) } == .tooLarge)
        #expect(await mediaErrorCode { _ = try await service.upload(declared.id, for: grant) } == .notFound)
        // a deferred length is cut when the bytes pass the cap, and the place in the set is given back
        let deferred = try await service.create(in: set, length: nil, metadata: [:])
        #expect(await mediaErrorCode { try await append(deferred, grant, fakeJPEG((1 << 20) + 1), at: 0) } == .tooLarge)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty)
        #expect(try await stores.metadata.uploadSet(set.id)?.liveCounts.photo == 0)
        #expect(await mediaErrorCode { _ = try await service.create(in: set, length: 0, metadata: [:]) } == .invalidRequest)
    }

    @Test func twentyResumablePhotosRacingIntoOnePostPlaceExactlyFive() async throws {
        let (set, grant) = try await openSet()
        let outcomes = try await withThrowingTaskGroup(of: MediaError.Code?.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let file = fakeJPEG(150_000, seed: UInt64(index))
                    let upload = try await service.create(in: set, length: Int64(file.count), metadata: [:])
                    return await mediaErrorCode {
                        let half = try await append(upload, grant, Array(file[..<70_000]), at: 0)
                        try await append(upload, grant, Array(file[70_000...]), at: half.upload.received)
                    }
                }
            }
            return try await group.reduce(into: [MediaError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 5)
        #expect(outcomes.filter { $0 == .limitExceeded }.count == 15)
        #expect(try await stores.metadata.media(inSet: set.id).count == 5)
        #expect(stores.blobs.locations.count == 5, "the refused uploads left no object")
        #expect(try await stores.metadata.uploadSet(set.id)?.liveCounts.photo == 5)
    }

    @Test func aWrongOffsetIsRefusedAndChangesNothing() async throws {
        let (set, grant) = try await openSet()
        let file = fakeJPEG(300_000)
        let upload = try await service.create(in: set, length: Int64(file.count), metadata: [:])
        try await append(upload, grant, Array(file[..<100_000]), at: 0)
        #expect(await mediaErrorCode { try await append(upload, grant, Array(file[50_000...]), at: 50_000) } == .offsetMismatch)
        #expect(try await service.upload(upload.id, for: grant).received == 100_000)
        let media = try #require(try await append(upload, grant, Array(file[100_000...]), at: 100_000).media)
        #expect(stores.blobs.bytes(of: media.location) == file)
    }

    @Test func aSecondAppendWhileOneRunsIsToldTheUploadIsBusy() async throws {
        let (set, grant) = try await openSet()
        let upload = try await service.create(in: set, length: 400_000, metadata: [:])
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let first = Task { try await service.append(upload.id, for: grant, at: 0, body: stream) }
        continuation.yield(ByteBuffer(bytes: fakeJPEG(100_000)))
        try await eventually { (try? await service.upload(upload.id, for: grant).received) == 100_000 }
        #expect(await mediaErrorCode { try await append(upload, grant, fakeJPEG(1000), at: 100_000) } == .uploadBusy)
        continuation.finish()
        #expect(try await first.value.upload.received == 100_000)
        #expect(await mediaErrorCode { try await append(upload, grant, patternBytes(count: 300_000, seed: 9), at: 100_000) } == nil)
    }

    @Test func aBodyWhoseChecksumDoesNotMatchIsNotKept() async throws {
        let (set, grant) = try await openSet()
        let file = fakeJPEG(200_000)
        let upload = try await service.create(in: set, length: Int64(file.count), metadata: [:])
        let first = Array(file[..<80_000])
        let good = ChunkChecksum(algorithm: .sha1, digest: Array(Insecure.SHA1.hash(data: Data(first))))
        _ = try await service.append(upload.id, for: grant, at: 0, body: pieces(first, size: 30_000).async, checksum: good)
        let second = Array(file[80_000...])
        let wrong = ChunkChecksum(algorithm: .sha256, digest: Array(SHA256.hash(data: Data(second.reversed()))))
        #expect(
            await mediaErrorCode {
                _ = try await service.append(upload.id, for: grant, at: 80_000, body: pieces(second, size: 30_000).async, checksum: wrong)
            } == .checksumMismatch
        )
        #expect(try await service.upload(upload.id, for: grant).received == 80_000, "the refused body moved nothing")
        let right = ChunkChecksum(algorithm: .sha256, digest: Array(SHA256.hash(data: Data(second))))
        let media = try #require(
            try await service.append(upload.id, for: grant, at: 80_000, body: pieces(second, size: 30_000).async, checksum: right).media
        )
        #expect(media.sha256 == sha256(file))
    }

    @Test func aClientThatGoesAwayMidPieceKeepsWhatArrived() async throws {
        struct Dropped: Error {}
        let (set, grant) = try await openSet()
        let file = fakeJPEG(500_000)
        let upload = try await service.create(in: set, length: Int64(file.count), metadata: [:])
        let cut = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            for piece in pieces(Array(file[..<210_000]), size: 30_000) { continuation.yield(piece) }
            continuation.finish(throwing: Dropped())
        }
        await #expect(throws: Dropped.self) { _ = try await service.append(upload.id, for: grant, at: 0, body: cut) }
        let resumed = try await service.upload(upload.id, for: grant)
        #expect(resumed.received == 210_000, "every byte that arrived is acknowledged")
        let media = try #require(try await append(upload, grant, Array(file[210_000...]), at: 210_000).media)
        #expect(stores.blobs.bytes(of: media.location) == file)
    }

    @Test func terminationRemovesTheObjectItsEntryAndItsPlace() async throws {
        let (set, grant) = try await openSet()
        let upload = try await service.create(in: set, length: 300_000, metadata: [:])
        try await append(upload, grant, fakeJPEG(100_000), at: 0)
        #expect(stores.blobs.locations.count == 1 && stores.ledger.entries.count == 1)
        try await service.terminate(upload.id, for: grant)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty)
        #expect(try await stores.metadata.uploadSet(set.id)?.liveCounts.photo == 0)
        #expect(await mediaErrorCode { _ = try await service.upload(upload.id, for: grant) } == .notFound)
        let (_, otherGrant) = try await openSet()
        let another = try await service.create(in: set, length: 300_000, metadata: [:])
        #expect(await mediaErrorCode { try await service.terminate(another.id, for: otherGrant) } == .forbidden)
    }

    @Test func anExpiredUploadIsRemovedByTheReconcilerWithItsObject() async throws {
        let (set, grant) = try await openSet()
        let upload = try await service.create(in: set, length: 300_000, metadata: [:])
        try await append(upload, grant, fakeJPEG(100_000), at: 0)
        let reconciler = Reconciler(storage: stores, pools: pools, clock: clock.clock, logger: quietLogger)
        #expect(try await reconciler.run(grace: .seconds(3600)).expiredUploads == 0)
        #expect(stores.blobs.locations.count == 1, "an upload in progress is left alone, however old its entry's hour")
        clock.advance(by: .seconds(3601))
        let report = try await reconciler.run(grace: .seconds(3600))
        #expect(report.expiredUploads == 1)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty)
        #expect(try await stores.metadata.uploadSet(set.id)?.liveCounts.photo == 0)
        #expect(await mediaErrorCode { _ = try await service.upload(upload.id, for: grant) } == .notFound)
    }

    @Test func aWriterWhoseClaimLapsedIsStoppedByTheObjectsFence() async throws {
        let (set, grant) = try await openSet()
        let file = fakeJPEG(400_000)
        let upload = try await service.create(in: set, length: Int64(file.count), metadata: [:])
        // gateway A appends, then hangs (partitioned from the database, its claim not renewed)
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let stalled = Task { try await service.append(upload.id, for: grant, at: 0, body: stream) }
        continuation.yield(ByteBuffer(bytes: Array(file[..<131_072])))
        try await eventually { (try? await service.upload(upload.id, for: grant).received) == 131_072 }
        clock.advance(by: .seconds(60))
        // gateway B takes the upload over at the acknowledged offset and completes it
        let media = try #require(try await append(upload, grant, Array(file[131_072...]), at: 131_072).media)
        // A wakes up and writes on: the fence refuses it, and the file is B's
        continuation.yield(ByteBuffer(bytes: patternBytes(count: 200_000, seed: 99)))
        continuation.finish()
        #expect(await mediaErrorCode { _ = try await stalled.value } == .uploadBusy)
        #expect(stores.blobs.bytes(of: media.location) == file)
        #expect(media.sha256 == sha256(file))
    }
}
