import Foundation
import Logging
import MediaCore
import NIOCore
import PostgresMetadata
import RadosStore
import Testing

/// Tests that stop, kill and restart parts of the real stack. They run after the rest of the suite, alone
/// (`MEDIAGW_FAULT_TESTS=1`), because everything else shares the same stack.
@Suite(.serialized, .enabled(if: TestStack.faultTestsEnabled, "set MEDIAGW_FAULT_TESTS=1 (Deploy/local/run-tests does)"))
struct FaultInjection {
    @Test func anObjectAndARowSurviveARestartOfTheWholeStack() async throws {
        let configuration = try TestStack.configuration()
        let object = ObjectLocation(pool: configuration.pools.photo, key: uniqueKey())
        let content = patternBytes(count: 3 << 20, seed: 99)
        let mediaID = MediaID.generate()

        // write both, with connections that are closed before the stack goes down
        let cluster = try await RadosCluster.connect(configuration.rados, pools: [object.pool], logger: TestStack.logger)
        try await RadosObjectStore(cluster: cluster).writeFull(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
        await cluster.shutdown()
        let database = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
        try await withRunningClient(database.client) {
            try await database.migrate()
            let store = PostgresMetadataStore(database: database, logger: TestStack.logger)
            let set = try await store.createUploadSet(NewUploadSet(ownerID: "restart", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600)))
            _ = try await store.recordUpload(NewMedia(
                id: mediaID, kind: .photo, ownerID: "restart", uploadSetID: set.id, size: Int64(content.count),
                sha256: "00", mime: "image/jpeg", location: object), maxCount: 5, now: Date())
        }

        #expect(try TestStack.stack("down") == 0)
        #expect(try TestStack.stack("up") == 0)

        let again = try await RadosCluster.connect(configuration.rados, pools: [object.pool], logger: TestStack.logger)
        let store = RadosObjectStore(cluster: again)
        let back = try await store.read(object, range: nil).collect(upTo: 4 << 20)
        #expect(Array(back.readableBytesView) == content)
        try await store.remove(object)
        await again.shutdown()
        let reopened = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
        let media = try await withRunningClient(reopened.client) {
            try await PostgresMetadataStore(database: reopened, logger: TestStack.logger).media(mediaID)
        }
        #expect(media?.location == object)
    }

    @Test func radosOperationsTimeOutWhileTheOSDIsDownAndRecoverWhenItReturns() async throws {
        var configuration = try TestStack.configuration()
        configuration.rados.operationTimeout = .seconds(4)
        configuration.rados.objecterTimeout = .seconds(2)
        let pool = configuration.pools.photo
        let cluster = try await RadosCluster.connect(configuration.rados, pools: [pool], logger: TestStack.logger)
        let store = RadosObjectStore(cluster: cluster)
        let object = ObjectLocation(pool: pool, key: uniqueKey())
        try await store.writeFull(object, bytes: ByteBuffer(string: "before"), mode: .createExclusive)

        #expect(try TestStack.stack("kill", "osd") == 0)
        let started = ContinuousClock.now
        await expectCode(.timedOut) { _ = try await store.stat(object) }
        #expect(ContinuousClock.now - started < .seconds(15), "the op timeout bounds the wait")

        #expect(try TestStack.stack("up") == 0)
        // the same client recovers by itself: no reconnect
        var recovered = false
        let deadline = ContinuousClock.now + .seconds(60)
        while !recovered && ContinuousClock.now < deadline {
            recovered = (try? await store.stat(object))?.size == 6
            if !recovered { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(recovered)
        try await store.writeFull(object, bytes: ByteBuffer(string: "after"), mode: .replace)
        #expect(try await store.read(object, range: nil).collect(upTo: 10) == ByteBuffer(string: "after"))
        try await store.remove(object)
        await cluster.shutdown()
    }

    @Test func aStoppedPostgreSQLGivesUnavailableAndTheClientRecovers() async throws {
        let configuration = try TestStack.configuration()
        let database = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
        try await withRunningClient(database.client) {
            let store = PostgresMetadataStore(database: database, logger: TestStack.logger)
            let set = try await store.createUploadSet(NewUploadSet(ownerID: "pg-down", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600)))

            #expect(try TestStack.stack("kill", "pg") == 0)
            let started = ContinuousClock.now
            await #expect {
                _ = try await store.uploadSet(set.id)
            } throws: { error in
                (error as? MetadataStoreError)?.isTransient == true
            }
            #expect(ContinuousClock.now - started < .seconds(15))

            #expect(try TestStack.stack("up") == 0)
            var found: UploadSet?
            let deadline = ContinuousClock.now + .seconds(30)
            while found == nil && ContinuousClock.now < deadline {
                found = try? await store.uploadSet(set.id)
                if found == nil { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(found?.id == set.id)
        }
    }
}
