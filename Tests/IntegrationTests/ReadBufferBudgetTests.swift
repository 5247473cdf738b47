import AsyncHTTPClient
import Foundation
import MediaTesting
import NIOCore
import Testing

/// `MEDIAGW_CEPH_READ_BUFFERS` against a real gateway process: downloads share a budget of read buffers far
/// smaller than they would hold, and wait for each other without ever all waiting; clients that leave in
/// the middle give their buffers back.
@Suite struct ReadBufferBudgetTests {
    @Test func manyDownloadsThroughTwoBuffersAllCompleteByteIdenticalAndAbandonedOnesGiveThemBack() async throws {
        let isolation = try await Isolation.suite("ReadBufferBudget")
        // 16 KiB chunks (a 252 KB photo is 16 of them), 2 buffers for the whole process, read-ahead on, and a
        // wait long enough that no buffer is ever taken outside the budget: a cycle of waits would hang here
        let gateway = try await GatewayProcess.start(
            isolation,
            [
                "MEDIAGW_CEPH_READ_BUFFERS": "2", "MEDIAGW_CEPH_READ_CHUNK_SIZE": "16KiB", "MEDIAGW_ORIGIN_READ_AHEAD": "32",
                "MEDIAGW_CEPH_READ_BUFFER_WAIT": "30s",
            ]
        )
        let photo = try Corpus.bytes("images/orientation-6.jpg")
        let set = try await gateway.openSet()
        let id = try await gateway.upload(set, "photo.jpg", photo)
        let media = try await gateway.settled(id)
        let path = try #require(media["original_url"] as? String, "\(media)")

        // clients that ask for the photo and leave without reading its body
        for _ in 0..<6 {
            let connection = try RawConnection(gateway.baseURL)
            try await connection.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            connection.close()
        }
        // and sixteen downloads at once
        let bodies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: gateway.baseURL + path), timeout: .seconds(60))
                    #expect(response.status.code == 200)
                    return Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                }
            }
            return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        #expect(bodies.count == 16)
        #expect(bodies.allSatisfy { $0 == photo })

        // no buffer was taken outside the budget (the counter is there from the start, at 0)
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: gateway.baseURL + "/metrics"), timeout: .seconds(30))
        let text = String(buffer: try await metrics.body.collect(upTo: 4 << 20))
        let overdrawn = text.split(separator: "\n").first { $0.hasPrefix("mediagw_rados_read_buffers_overdrawn_total ") }
        #expect(overdrawn?.hasSuffix(" 0") == true, "\(overdrawn ?? "no such metric")")

        // every buffer came back: a drain does not wait for downloads stuck on one
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }
}
