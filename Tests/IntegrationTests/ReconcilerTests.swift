import Foundation
import MediaCore
import NIOCore
import PostgresMetadata
import PostgresNIO
import RadosStore
import Testing

/// The reconciler on the real stack: orphans from a crash, expired drafts, purges.
@Suite struct ReconcilerTests {
    let objects: RadosObjectStore
    let metadata: PostgresMetadataStore
    let pools: StoragePools

    init() async throws {
        objects = try await TestStack.objectStore()
        metadata = try await TestStack.metadataStore()
        pools = try TestStack.pools()
    }

    var reconciler: Reconciler<PostgresMetadataStore, RadosObjectStore> {
        Reconciler(metadata: metadata, objects: objects, pools: pools, logger: TestStack.logger)
    }

    func exists(_ location: ObjectLocation) async throws -> Bool {
        do {
            _ = try await objects.stat(location)
            return true
        } catch let error as ObjectStoreError where error.code == .notFound {
            return false
        }
    }

    @Test func orphansOlderThanTheGraceAreRemovedAndCommittedObjectsKept() async throws {
        let index = PendingIndex(objects: objects)
        let threeHoursAgo = Date().addingTimeInterval(-3 * 3600)
        let set = try await metadata.createUploadSet(NewUploadSet(ownerID: "rec", context: .post, contextID: "c", expiresAt: Date().addingTimeInterval(3600)))

        // a crash between the Ceph write and the commit: entry and object, no row
        let orphanID = MediaID.generate()
        let orphan = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(orphanID)")
        let orphanTicket = try await index.register(orphan, PendingEntry(mediaID: orphanID, uploadSetID: set.id, registeredAt: threeHoursAgo))
        try await objects.writeFull(orphan, bytes: ByteBuffer(string: "orphan"), mode: .createExclusive)

        // a crash after the commit, before the entry was cleared: entry, object and row
        let keptID = MediaID.generate()
        let kept = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(keptID)")
        let keptTicket = try await index.register(kept, PendingEntry(mediaID: keptID, uploadSetID: set.id, registeredAt: threeHoursAgo))
        try await objects.writeFull(kept, bytes: ByteBuffer(string: "kept"), mode: .createExclusive)
        _ = try await metadata.recordUpload(
            NewMedia(id: keptID, kind: .photo, ownerID: "rec", uploadSetID: set.id, size: 4, sha256: "00", mime: "image/jpeg", location: kept),
            maxCount: 5, now: Date())

        // an upload still streaming: young entry, object, no row yet
        let youngID = MediaID.generate()
        let young = ObjectLocation(pool: pools.photo, key: "\(set.id)/\(youngID)")
        let youngTicket = try await index.register(young, PendingEntry(mediaID: youngID, uploadSetID: set.id, registeredAt: Date()))
        try await objects.writeFull(young, bytes: ByteBuffer(string: "young"), mode: .createExclusive)

        let report = try await reconciler.run(grace: .seconds(3600))
        #expect(report.removedOrphans >= 1)
        #expect(report.clearedEntries >= 1)
        #expect(try await exists(orphan) == false)
        #expect(try await exists(kept))
        #expect(try await exists(young), "objects younger than the grace are left alone")

        let directory = ObjectLocation(pool: pools.photo, key: PendingIndex<RadosObjectStore>.directoryKey)
        #expect(orphanTicket.bucket == keptTicket.bucket)
        #expect(try await objects.indexEntries(of: orphanTicket.bucket, keys: [orphan.key, kept.key]).isEmpty)
        #expect(try await objects.indexEntries(of: directory, keys: [orphanTicket.bucket.key]).isEmpty, "the emptied bucket is retired")
        #expect(try await objects.indexEntries(of: youngTicket.bucket, keys: [young.key]).count == 1)

        try await index.complete(youngTicket)
        try await objects.remove(young)
    }

    @Test func expiredDraftsAreTombstonedThenPurged() async throws {
        let gateway = try await TestGateway.shared.value
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(set, [("a.jpg", fakeJPEG(2000)), ("b.jpg", fakeJPEG(3000))])
        #expect(uploaded.status == 201)
        let ids = (uploaded.json["media"] as? [[String: Any]] ?? []).compactMap { ($0["id"] as? String).flatMap(MediaID.init) }
        #expect(ids.count == 2)
        let setID = try #require(UploadSetID(set.id))

        let database = try await TestStack.sharedDatabase.value
        try await database.client.query("UPDATE upload_sets SET expires_at = now() - interval '1 minute' WHERE id = \(setID.uuid)")

        let report = try await reconciler.run(grace: .seconds(3600))
        #expect(report.expiredSets >= 1)
        #expect(try await metadata.uploadSet(setID)?.state == .expired)
        for id in ids {
            let media = try #require(try await metadata.media(id))
            #expect(media.state == .deleted)
            #expect(try await exists(media.location) == false)
        }
        #expect(try await listObjects(pool: pools.photo, prefix: "\(set.id)/").isEmpty)
        let events = try await database.client.query(
            "SELECT count(*) FROM outbox WHERE type = 'media.deleted' AND upload_set_id = \(setID.uuid) AND payload->>'reason' = 'set_expired'"
        ).decode(Int.self).reduce(into: 0) { $0 += $1 }
        #expect(events == 2)
        let late = try await gateway.upload(set, [("c.jpg", fakeJPEG(100))])
        #expect(late.status == 410)
        #expect(late.errorCode == "set_expired")
    }

    @Test func bucketNamesRoundTripToTheirHour() {
        let date = Date(timeIntervalSince1970: 1_800_003_700)  // 2027-01-15 09:01:40 UTC
        let name = PendingIndex<RadosObjectStore>.bucketName(for: date, shard: 7)
        #expect(name == "_pending.2027011509.07")
        #expect(PendingIndex<RadosObjectStore>.bucketEnd(name) == Date(timeIntervalSince1970: 1_800_007_200))
        #expect(PendingIndex<RadosObjectStore>.bucketEnd("_pending.directory") == nil)
    }
}
