import Foundation
import MediaCore
import MediaTesting
import NIOCore
import PostgresMetadata
import PostgresNIO
import RadosStore
import Testing

/// The reconciler on the real stack: orphans from a crash, expired drafts, purges.
@Suite struct ReconcilerTests {
    @Test func orphansOlderThanTheGraceAreRemovedAndCommittedObjectsKept() async throws {
        let slice = try await Isolation.suite("ReconcilerOrphans")
        let (metadata, blobs, ledger, pools) = (slice.metadata, slice.blobs, slice.ledger, slice.pools)
        let threeHoursAgo = Date().addingTimeInterval(-3 * 3600)
        let set = try await metadata.createUploadSet(
            NewUploadSet(ownerID: "rec", context: .post, contextID: "c", expiresAt: Date().addingTimeInterval(3600))
        )

        // a crash between the Ceph write and the commit: entry and object, no row
        let orphanID = MediaID.generate()
        let orphan = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(orphanID)")
        _ = try await ledger.register(orphan, PendingEntry(mediaID: orphanID, uploadSetID: set.id, registeredAt: threeHoursAgo))
        try await blobs.write(orphan, bytes: ByteBuffer(string: "orphan"), mode: .createExclusive)

        // a crash after the commit, before the entry was cleared: entry, object and row
        let keptID = MediaID.generate()
        let kept = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(keptID)")
        _ = try await ledger.register(kept, PendingEntry(mediaID: keptID, uploadSetID: set.id, registeredAt: threeHoursAgo))
        try await blobs.write(kept, bytes: ByteBuffer(string: "kept"), mode: .createExclusive)
        _ = try await metadata.recordUpload(
            NewMedia(id: keptID, kind: .photo, ownerID: "rec", uploadSetID: set.id, size: 4, sha256: "00", mime: "image/jpeg", location: kept),
            maxCount: 5,
            now: Date()
        )

        // an upload still streaming: young entry, object, no row yet
        let youngID = MediaID.generate()
        let young = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(youngID)")
        let youngTicket = try await ledger.register(young, PendingEntry(mediaID: youngID, uploadSetID: set.id, registeredAt: Date()))
        try await blobs.write(young, bytes: ByteBuffer(string: "young"), mode: .createExclusive)

        let report = try await slice.runtime.reconciler().run(grace: .seconds(3600))
        #expect(report.removedOrphans == 1)
        #expect(report.clearedEntries == 1)
        #expect(report.closedPeriods == 1, "the emptied hour is closed")
        #expect(try await blobs.exists(orphan) == false)
        #expect(try await blobs.exists(kept))
        #expect(try await blobs.exists(young), "objects younger than the grace are left alone")

        var stale: [PendingRecord] = []
        var cursor: String?
        repeat {
            let page = try await ledger.stale(in: pools.photo, registeredBefore: Date().addingTimeInterval(60), after: cursor, limit: 100)
            stale += page.records
            cursor = page.next
        } while cursor != nil
        #expect(stale.map(\.ticket.location) == [young], "only the young entry is left")

        try await ledger.complete(youngTicket)
        try await blobs.remove(young)
    }

    @Test func expiredDraftsAreTombstonedThenPurged() async throws {
        let gateway = try await TestGateway.suite("Reconciler")
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(set, [("a.jpg", fakeJPEG(2000)), ("b.jpg", fakeJPEG(3000))])
        #expect(uploaded.status == 201)
        let ids = (uploaded.json["media"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? String).flatMap(MediaID.init) }
        #expect(ids.count == 2)
        let setID = try #require(UploadSetID(set.id))

        let database = gateway.isolation.metadata.database
        try await database.client.query("UPDATE upload_sets SET expires_at = now() - interval '1 minute' WHERE id = \(setID.uuid)")

        let report = try await gateway.isolation.runtime.reconciler().run(grace: .seconds(3600))
        #expect(report.expiredSets == 1)
        #expect(report.purgedMedia == 2)
        let metadata = gateway.isolation.metadata
        #expect(try await metadata.uploadSet(setID)?.state == .expired)
        for id in ids {
            let media = try #require(try await metadata.media(id))
            #expect(media.state == .deleted)
            #expect(try await gateway.isolation.blobs.exists(media.location) == false)
        }
        #expect(try await gateway.listObjects(pool: gateway.isolation.pools.photo, prefix: "\(set.id)/").isEmpty)
        let events = try await database.client.query(
            "SELECT count(*) FROM outbox WHERE type = 'media.deleted' AND upload_set_id = \(setID.uuid) AND payload->>'reason' = 'set_expired'"
        ).decode(Int.self).reduce(into: 0) { $0 += $1 }
        #expect(events == 2)
        let late = try await gateway.upload(set, [("c.jpg", fakeJPEG(100))])
        #expect(late.status == 410)
        #expect(late.errorCode == "set_expired")
    }
}
