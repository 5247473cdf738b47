import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Synchronization
import Testing

/// The Ceph-first ordering in isolation: what is in the ledger and the store at each step, and what a
/// failure at each step leaves.
@Suite struct StagedWriteTests {
    let stores = MemoryStores.inMemory()
    let location = ObjectLocation(pool: "media.photo", key: "set/media-1")
    let entry = PendingEntry(mediaID: .generate(), uploadSetID: .generate(), registeredAt: Date())

    var staging: StagedWrite<InMemoryBlobStore, InMemoryPendingLedger> {
        StagedWrite(blobs: stores.blobs, ledger: stores.ledger, logger: quietLogger)
    }

    @Test func theEntryIsRecordedBeforeTheFirstByte() async throws {
        let ledger = stores.ledger
        let location = self.location
        let seenAtFirstByte = Mutex<Bool?>(nil)
        let sent = Mutex(false)
        // the first byte is asked for by the store: the ledger must hold the entry by then
        let source = AsyncStream<ByteBuffer>(unfolding: {
            guard !sent.withLock({ $0 }) else { return nil }
            sent.withLock { $0 = true }
            seenAtFirstByte.withLock { $0 = ledger.entries[location] != nil }
            return ByteBuffer(bytes: fakeJPEG(100))
        })
        let staged = try await staging.write(location, from: source, mode: .createExclusive, entry: entry)
        #expect(seenAtFirstByte.withLock { $0 } == true)
        #expect(staged.size == 100 && staged.exclusive && staged.location == location)
        #expect(stores.ledger.entries[location] == entry, "still pending: no row yet")
    }

    @Test func aCommittedWriteClearsItsEntryAndKeepsItsObject() async throws {
        let staged = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .createExclusive, entry: entry)
        let answer = try await staging.commit([staged]) { "committed" }
        #expect(answer == "committed")
        try await eventually { stores.ledger.entries.isEmpty }
        #expect(try await stores.blobs.exists(location))
    }

    @Test func aRefusedCommitRemovesTheObjectThenItsEntry() async throws {
        struct Refused: Error {}
        let staged = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .createExclusive, entry: entry)
        await #expect(throws: Refused.self) { try await staging.commit([staged]) { throw Refused() } }
        #expect(try await !stores.blobs.exists(location))
        #expect(stores.ledger.entries.isEmpty)
    }

    @Test func anObjectThatCannotBeRemovedKeepsItsEntryForTheReconciler() async throws {
        struct Refused: Error {}
        let staged = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .createExclusive, entry: entry)
        stores.blobs.setUnavailable(true)
        await #expect(throws: Refused.self) { try await staging.commit([staged]) { throw Refused() } }
        stores.blobs.setUnavailable(false)
        #expect(try await stores.blobs.exists(location))
        #expect(stores.ledger.entries[location] != nil, "the reconciler will find it")
    }

    @Test func aCommitWhoseOutcomeIsUnknownLeavesItsObjectAndEntryToTheReconciler() async throws {
        let staged = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .createExclusive, entry: entry)
        for code in [MetadataStoreError.Code.unavailable, .timedOut] {
            await #expect(throws: MetadataStoreError.self) {
                try await staging.commit([staged]) { throw MetadataStoreError(code, "the connection dropped during COMMIT") }
            }
            #expect(try await stores.blobs.exists(location), "the row may have been committed")
            #expect(stores.ledger.entries[location] != nil)
        }
    }

    @Test func anObjectWrittenInPlaceIsLeftToTheReconcilerWhenItsCommitFails() async throws {
        struct Refused: Error {}
        let staged = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .replace, entry: entry)
        #expect(!staged.exclusive)
        await #expect(throws: Refused.self) { try await staging.commit([staged]) { throw Refused() } }
        #expect(try await stores.blobs.exists(location), "an earlier run's row may point at this key")
        #expect(stores.ledger.entries[location] != nil)
    }

    @Test func aWriteThatFailsLeavesNeitherObjectNorEntry() async throws {
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(ByteBuffer(bytes: fakeJPEG(1000)))
            continuation.finish(throwing: CancellationError())
        }
        await #expect(throws: CancellationError.self) { _ = try await staging.write(location, from: source, mode: .createExclusive, entry: entry) }
        #expect(try await !stores.blobs.exists(location))
        #expect(stores.ledger.entries.isEmpty)
    }

    @Test func aLedgerThatIsDownStopsTheWriteBeforeAnyByte() async throws {
        stores.ledger.setUnavailable(true)
        await #expect(throws: BlobStoreError.self) {
            _ = try await staging.write(location, bytes: ByteBuffer(bytes: fakeJPEG(100)), mode: .createExclusive, entry: entry)
        }
        #expect(stores.blobs.locations.isEmpty)
    }
}
