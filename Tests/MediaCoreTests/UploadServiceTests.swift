import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Testing

/// The upload use case over the in-memory ports: typing, limits under concurrency, and what each failure
/// leaves behind (nothing).
@Suite struct UploadServiceTests {
    let pools = StoragePools()
    let stores: MemoryStores
    let uploads: UploadService<MemoryStores>

    init() {
        stores = .inMemory(pools: pools)
        uploads = UploadService(storage: stores, pools: pools, settings: UploadSettings(), logger: quietLogger)
    }

    func openSet(_ context: UploadContext = .post) async throws -> UploadSet {
        try await stores.metadata.createUploadSet(
            NewUploadSet(ownerID: "owner", context: context, contextID: "c", expiresAt: Date().addingTimeInterval(3600))
        )
    }

    func code(_ body: () async throws -> Void) async -> MediaError.Code? { await mediaErrorCode(body) }

    @Test func twentyPhotosRacingIntoOnePostStoreExactlyFiveAndLeaveNoOtherObject() async throws {
        let set = try await openSet()
        let uploads = self.uploads
        let codes = await withTaskGroup(of: MediaError.Code?.self) { group in
            for seed in 0..<20 {
                group.addTask {
                    await self.code { _ = try await uploads.storeOriginal(pieces(fakeJPEG(20_000, seed: UInt64(seed)), size: 4096).async, into: set) }
                }
            }
            return await group.reduce(into: [MediaError.Code?]()) { $0.append($1) }
        }
        #expect(codes.filter { $0 == nil }.count == 5)
        #expect(codes.filter { $0 == .limitExceeded }.count == 15)
        #expect(stores.blobs.locations.count == 5, "refused uploads removed their objects")
        try await eventually { stores.ledger.entries.isEmpty }
    }

    @Test func theTypeComesFromTheBytesAndAnUnsupportedFileStoresNothing() async throws {
        let set = try await openSet()
        #expect(
            await code { _ = try await uploads.storeOriginal([ByteBuffer(string: "<svg xmlns=\"http://www.w3.org/2000/svg\"/>")].async, into: set) }
                == .unsupportedMediaType
        )
        #expect(await code { _ = try await uploads.storeOriginal([ByteBuffer]().async, into: set) } == .invalidRequest)
        #expect(stores.blobs.locations.isEmpty && stores.ledger.entries.isEmpty)
        let media = try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(5000))].async, into: set)
        #expect(media.kind == .photo && media.mime == "image/jpeg" && media.location.pool == pools.photo)
    }

    @Test func aFileOverItsCapIsCutAndLeavesNothing() async throws {
        let set = try await openSet()
        #expect(await code { _ = try await uploads.storeOriginal(pieces(fakeJPEG(2 << 20), size: 65_536).async, into: set) } == .tooLarge)
        #expect(stores.blobs.locations.isEmpty)
        #expect(stores.ledger.entries.isEmpty)
        #expect(try await stores.metadata.media(inSet: set.id).isEmpty)
    }

    @Test func aStoreThatIsDownIsUnavailableAndLeavesOnlyAnEntryForTheReconciler() async throws {
        let set = try await openSet()
        stores.blobs.setUnavailable(true)
        #expect(await code { _ = try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(5000))].async, into: set) } == .unavailable)
        stores.blobs.setUnavailable(false)
        #expect(stores.blobs.locations.isEmpty)
        #expect(try await stores.metadata.media(inSet: set.id).isEmpty)
        // whether a partial object was left could not be checked while the store was down: the entry stays
        #expect(stores.ledger.entries.count == 1)
        let report = try await Reconciler(storage: stores, pools: pools, logger: quietLogger).run(grace: .zero)
        #expect(report.removedOrphans == 1)
        #expect(stores.ledger.entries.isEmpty)
    }

    @Test func aDatabaseThatGoesDownBeforeTheRowIsUnavailableAndTheReconcilerRemovesTheObject() async throws {
        let set = try await openSet()
        let failingAtCommit = FaultPlan.pause(at: .objectWritten)
        let uploads = UploadService(storage: stores, pools: pools, settings: UploadSettings(), faults: failingAtCommit.injection, logger: quietLogger)
        let upload = Task { try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(5000))].async, into: set) }
        await failingAtCommit.reached()
        stores.metadata.setUnavailable(true)
        failingAtCommit.release()
        await #expect(throws: MediaError.self) { _ = try await upload.value }
        // whether the commit went through cannot be known while the database is down: nothing is removed yet
        #expect(stores.blobs.locations.count == 1)
        #expect(stores.ledger.entries.count == 1)
        stores.metadata.setUnavailable(false)
        let report = try await Reconciler(storage: stores, pools: pools, logger: quietLogger).run(grace: .zero)
        #expect(report.removedOrphans == 1, "no row: the object goes")
        #expect(stores.blobs.locations.isEmpty, "no object without a row")
        #expect(stores.ledger.entries.isEmpty)
    }

    @Test func aCommitWhoseAnswerIsLostKeepsTheObjectItsRowPointsAt() async throws {
        let set = try await openSet()
        stores.metadata.loseAnswers(1)
        #expect(await code { _ = try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(5000))].async, into: set) } == .unavailable)
        // the row was committed although the client was told to retry: its object must stay
        let rows = try await stores.metadata.media(inSet: set.id)
        #expect(rows.count == 1)
        #expect(stores.blobs.locations.count == 1)
        let report = try await Reconciler(storage: stores, pools: pools, logger: quietLogger).run(grace: .zero)
        #expect(report.removedOrphans == 0)
        #expect(stores.ledger.entries.isEmpty, "the reconciler found the row and only cleared the entry")
        for media in rows { #expect(try await stores.blobs.exists(media.location)) }
    }

    @Test func aProfileTakesOnePhotoAndNoVideo() async throws {
        let set = try await openSet(.profile)
        let mp4: [UInt8] = [0, 0, 0, 0x18] + Array("ftypmp42".utf8) + [UInt8](repeating: 0, count: 64)
        #expect(await code { _ = try await uploads.storeOriginal([ByteBuffer(bytes: mp4)].async, into: set) } == .limitExceeded)
        _ = try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(100))].async, into: set)
        let full = try #require(try await stores.metadata.uploadSet(set.id))
        #expect(await code { _ = try await uploads.storeOriginal([ByteBuffer(bytes: fakeJPEG(100, seed: 2))].async, into: full) } == .limitExceeded)
    }

    @Test func grantsAreCheckedAgainstTheSetAndItsOwner() async throws {
        let set = try await openSet()
        let other = try await openSet()
        #expect(try await uploads.authorize(UploadGrant(uploadSetID: set.id, ownerID: "owner", expiresAt: .distantFuture), for: set.id).id == set.id)
        #expect(
            await code {
                _ = try await uploads.authorize(UploadGrant(uploadSetID: other.id, ownerID: "owner", expiresAt: .distantFuture), for: set.id)
            } == .forbidden
        )
        #expect(
            await code {
                _ = try await uploads.authorize(UploadGrant(uploadSetID: set.id, ownerID: "intruder", expiresAt: .distantFuture), for: set.id)
            } == .forbidden
        )
        let unknown = UploadSetID.generate()
        #expect(
            await code {
                _ = try await uploads.authorize(UploadGrant(uploadSetID: unknown, ownerID: "owner", expiresAt: .distantFuture), for: unknown)
            } == .notFound
        )
    }
}
