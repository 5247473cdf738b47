import AsyncHTTPClient
import Foundation
import MediaTesting
import NIOCore
import Testing

/// Large and hostile bodies against a real gateway process: answered with a 4xx while the process's peak
/// memory stays far below the bytes thrown at it.
@Suite struct MemoryBoundTests {
    /// A field of /proc/PID/status, in MiB; a process without one fails the test.
    func memory(_ pid: Int32, _ field: String) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") }, "no \(field) in /proc/\(pid)/status")
        return try #require(Double(line.split(separator: " ").dropFirst().first ?? ""), "\(line)") / 1024
    }

    @Test func oversizedPartsAndBodiesAreCutWithBoundedMemory() async throws {
        let isolation = try await Isolation.suite("MemoryBound")
        let gateway = try await GatewayProcess.start(isolation, ["MEDIAGW_MAX_REQUEST_BYTES": "40MiB"])
        let baseline = try memory(gateway.process.processIdentifier, "VmRSS")
        #expect(baseline > 1, "a running gateway has resident memory")

        // three concurrent 35 MiB "photos": each is cut at the 1 MiB cap, the rest of its bytes read and dropped
        let replies = try await withThrowingTaskGroup(of: TestGateway.Reply.self) { group in
            for index in 0..<3 {
                group.addTask {
                    let set = try await gateway.openSet()
                    return try await TestGateway.Reply.upload(gateway.baseURL, set, [("huge.jpg", fakeJPEG(35 << 20, seed: UInt64(index)))])
                }
            }
            return try await group.reduce(into: [TestGateway.Reply]()) { $0.append($1) }
        }
        #expect(replies.map(\.status) == [413, 413, 413])
        #expect(replies.allSatisfy { $0.errorCode == "too_large" })

        // a body past the request cap is refused from its Content-Length, before any of it is read, and the
        // connection closed: a client that sends only the headers gets the whole answer
        let set = try await gateway.openSet()
        let connection = try RawConnection(gateway.baseURL)
        defer { connection.close() }
        try await connection.send(
            Array(
                """
                POST /v1/upload-sets/\(set.id)/media HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(set.token)\r
                Content-Type: multipart/form-data; boundary=b\r
                Content-Length: \(50 << 20)\r
                \r

                """.utf8
            )
        )
        let answer = String(decoding: await connection.receiveAll(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(200))")
        #expect(answer.contains("request_too_large"))
        #expect(answer.lowercased().contains("connection: close"))

        let peak = try memory(gateway.process.processIdentifier, "VmHWM")
        #expect(peak - baseline < 150, "peak \(peak) MiB after a baseline of \(baseline) MiB, for 105 MiB of bodies")
        var health = HTTPClientRequest(url: gateway.baseURL + "/healthz")
        health.method = .GET
        #expect(try await HTTPClient.shared.execute(health, timeout: .seconds(10)).status.code == 200)
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }

    @Test func resumablePiecesStreamWithBoundedMemory() async throws {
        let isolation = try await Isolation.suite("MemoryBoundResumable")
        let gateway = try await GatewayProcess.start(isolation, ["MEDIAGW_WORKERS_IN_SERVE": "false"])
        let baseline = try memory(gateway.process.processIdentifier, "VmRSS")
        // sixteen 9 MiB videos at once, each in one tus PATCH: 144 MiB in flight
        let size = 9 << 20
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask {
                    let set = try await gateway.openSet()
                    let file = try fakeMP4(size, seed: UInt64(index))
                    var create = HTTPClientRequest(url: gateway.baseURL + "/v1/upload-sets/\(set.id)/tus")
                    create.method = .POST
                    create.headers.add(name: "Authorization", value: "Bearer \(set.token)")
                    create.headers.add(name: "Tus-Resumable", value: "1.0.0")
                    create.headers.add(name: "Upload-Length", value: "\(size)")
                    let created = try await HTTPClient.shared.execute(create, timeout: .seconds(60))
                    let location = try #require(created.headers.first(name: "Location"))
                    var patch = HTTPClientRequest(url: gateway.baseURL + location)
                    patch.method = .PATCH
                    patch.headers.add(name: "Authorization", value: "Bearer \(set.token)")
                    patch.headers.add(name: "Tus-Resumable", value: "1.0.0")
                    patch.headers.add(name: "Upload-Offset", value: "0")
                    patch.headers.add(name: "Content-Type", value: "application/offset+octet-stream")
                    patch.body = .bytes(ByteBuffer(bytes: file))
                    return Int(try await HTTPClient.shared.execute(patch, timeout: .seconds(120)).status.code)
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 204, count: 16))
        let peak = try memory(gateway.process.processIdentifier, "VmHWM")
        #expect(peak - baseline < 150, "peak \(peak) MiB after a baseline of \(baseline) MiB, for 144 MiB of pieces")
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }
}
