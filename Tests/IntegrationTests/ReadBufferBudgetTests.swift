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

        try await Self.expectNoneOverdrawnAndADrain(gateway)
    }

    /// No buffer was taken outside the budget (the counter is there from the start, at 0), and every buffer
    /// came back: a drain does not wait for downloads stuck on one.
    static func expectNoneOverdrawnAndADrain(_ gateway: GatewayProcess) async throws {
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: gateway.baseURL + "/metrics"), timeout: .seconds(30))
        let text = String(buffer: try await metrics.body.collect(upTo: 4 << 20))
        let overdrawn = text.split(separator: "\n").first { $0.hasPrefix("mediagw_rados_read_buffers_overdrawn_total ") }
        #expect(overdrawn?.hasSuffix(" 0") == true, "\(overdrawn ?? "no such metric")")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// The default 1 MiB chunks, with one buffer of each size class: a 1.19 MB photo is a 1 MiB read (large)
    /// and a 142 KB tail (small), a 252 KB photo one small read. Each class's permits come back to it; a
    /// permit returned to the wrong class would leave the other short, and the downloads would wait out the
    /// 30 s and be overdrawn.
    @Test func largeAndSmallReadsEachWaitForABufferOfTheirOwnClass() async throws {
        let isolation = try await Isolation.suite("ReadBufferBudget")
        let gateway = try await GatewayProcess.start(
            isolation,
            [
                "MEDIAGW_CEPH_READ_BUFFERS": "1", "MEDIAGW_CEPH_READ_SMALL_BUFFERS": "1", "MEDIAGW_ORIGIN_READ_AHEAD": "32",
                "MEDIAGW_CEPH_READ_BUFFER_WAIT": "30s", "MEDIAGW_LIMIT_POST_PHOTO": "5:2MiB",
            ]
        )
        let large = try Corpus.bytes("images/jpeg-ultrahdr-gainmap.jpg")
        let small = try Corpus.bytes("images/orientation-6.jpg")
        #expect(large.count > 1 << 20 && large.count < (1 << 20) + (256 << 10) && small.count <= 256 << 10)
        let set = try await gateway.openSet()
        var paths: [String: [UInt8]] = [:]
        for (name, bytes) in [("large.jpg", large), ("small.jpg", small)] {
            let media = try await gateway.settled(try await gateway.upload(set, name, bytes))
            paths[try #require(media["original_url"] as? String, "\(media)")] = bytes
        }
        let downloads = paths.flatMap { path, bytes in Array(repeating: (path, bytes), count: 8) }
        let matching = try await withThrowingTaskGroup(of: Bool.self) { group in
            for (path, bytes) in downloads {
                group.addTask {
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: gateway.baseURL + path), timeout: .seconds(60))
                    #expect(response.status.code == 200)
                    return Array(try await response.body.collect(upTo: 4 << 20).readableBytesView) == bytes
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(matching.count == 16 && matching.allSatisfy { $0 })
        try await Self.expectNoneOverdrawnAndADrain(gateway)
    }
}
