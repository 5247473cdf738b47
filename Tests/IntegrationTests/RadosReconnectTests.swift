import Foundation
import MediaApp
import MediaCore
import MediaTesting
import NIOCore
import Testing

@testable import RadosStore

/// A Ceph client that the cluster stops serving is replaced, and the gateway's operations resume without a
/// restart. Blocklisting the client's address (what an operator or a fencing tool does) is the one way to
/// cut a client off that a test can cause at will.
@Suite struct RadosReconnectTests {
    @Test func aBlocklistedClientIsReplacedAndItsOperationsResume() async throws {
        var settings = try TestStack.storage()
        settings.rados.namespace = "t_reconnect_\(UUID().uuidString.lowercased().prefix(8))"
        settings.rados.operationTimeout = .seconds(5)
        settings.rados.reconnectAfter = .seconds(5)
        let cluster = try await RadosCluster.connect(settings.rados, pools: [settings.pools.photo], logger: TestStack.logger)
        let store = RadosBlobStore(cluster: cluster)
        let location = ObjectLocation(pool: settings.pools.photo, key: uniqueKey())
        let content = patternBytes(count: 300_000, seed: 3)
        let (body, source) = AsyncStream<ByteBuffer>.makeStream()
        source.yield(ByteBuffer(bytes: content))
        source.finish()
        _ = try await store.write(location, from: body, mode: .createExclusive)

        let address = cluster.clientAddress
        #expect(address.contains("/"), "a client address is ip:port/nonce: \(address)")
        #expect(try await ceph("osd", "blocklist", "add", address) == 0)
        defer { Task { _ = try? await ceph("osd", "blocklist", "rm", address) } }

        // the blocklisted client is refused; the cluster replaces it, and the same store serves again
        var answered = false
        let deadline = ContinuousClock.now + .seconds(90)
        while !answered && ContinuousClock.now < deadline {
            do {
                let info = try await store.stat(location)
                answered = info.size == Int64(content.count) && cluster.clientAddress != address
            } catch let error as BlobStoreError {
                #expect(error.code == .unavailable || error.code == .timedOut, "\(error)")
            }
            if !answered { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(answered, "the store answered again through a new client")
        #expect(cluster.clientAddress != address)
        #expect(try await read(store, location) == content)
        try await store.remove(location)
        await cluster.shutdown()
    }

    private func read(_ store: RadosBlobStore, _ location: ObjectLocation) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in store.read(location, range: nil) { bytes += Array(chunk.readableBytesView) }
        return bytes
    }

    private func ceph(_ arguments: String...) async throws -> Int32 {
        let rados = try TestStack.storage().rados
        return try await TestStack.run("/usr/bin/ceph", ["-c", rados.configPath] + arguments).status
    }
}
