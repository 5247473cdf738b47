import Foundation
import MediaCore
import MediaTesting
import NIOCore
import RadosStore
import Testing

/// `MEDIAGW_CEPH_MAX_READS`: reads beyond the bound wait their turn, and every one of them completes.
@Suite struct RadosReadLimitTests {
    @Test func manyStreamsThroughOneReadPermitAllCompleteByteIdentical() async throws {
        var settings = try TestStack.storage()
        settings.rados.maxReadsInFlight = 1
        settings.rados.readChunkSize = 16 << 10
        settings.rados.namespace = try await Isolation.suite("ReadLimit").name
        let cluster = try await RadosCluster.connect(settings.rados, pools: settings.pools.all, logger: TestStack.logger)
        let store = RadosBlobStore(cluster: cluster)
        let pool = settings.pools.photo
        let objects = (0..<12).map { ObjectLocation(pool: pool, key: uniqueKey("read-limit-\($0)")) }
        let contents = objects.indices.map { patternBytes(count: 200_000 + $0 * 1_111, seed: UInt64($0) + 90) }
        for (object, content) in zip(objects, contents) {
            try await store.write(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
        }
        // twelve concurrent streams of 13 chunks or more each, through one permit
        let matches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for (object, content) in zip(objects, contents) {
                group.addTask { try await store.read(object, range: nil).collect(upTo: 1 << 20) == ByteBuffer(bytes: content) }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(matches.count == objects.count && matches.allSatisfy { $0 })
        for object in objects { try await store.remove(object) }
        await cluster.shutdown()
    }
}
