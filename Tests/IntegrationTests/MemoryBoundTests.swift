import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// Large and hostile bodies against a real gateway process: answered with a 4xx while the process's peak
/// memory stays far below the bytes thrown at it.
@Suite struct MemoryBoundTests {
    /// A field of /proc/PID/status, in MiB.
    func memory(_ pid: Int32, _ field: String) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    @Test func oversizedPartsAndBodiesAreCutWithBoundedMemory() async throws {
        let gateway = try await GatewayProcess.start(["MEDIAGW_MAX_REQUEST_BYTES": "40MiB"])
        let opener = try await TestGateway.shared.value
        let baseline = memory(gateway.process.processIdentifier, "VmRSS")

        // three concurrent 35 MiB "photos": each is cut at the 1 MiB cap, the rest of its bytes read and dropped
        let replies = try await withThrowingTaskGroup(of: TestGateway.Reply.self) { group in
            for index in 0..<3 {
                group.addTask {
                    let set = try await opener.openSet()
                    return try await TestGateway.Reply.upload(gateway.baseURL, set, [("huge.jpg", fakeJPEG(35 << 20, seed: UInt64(index)))])
                }
            }
            return try await group.reduce(into: [TestGateway.Reply]()) { $0.append($1) }
        }
        #expect(replies.map(\.status) == [413, 413, 413])
        #expect(replies.allSatisfy { $0.errorCode == "too_large" })

        // a body past the request cap is refused from its Content-Length and the connection closed
        let set = try await opener.openSet()
        let tooMuch = try? await TestGateway.Reply.upload(gateway.baseURL, set, [("a.mp4", try fakeMP4(50 << 20))])
        #expect(tooMuch == nil || tooMuch?.status == 413)

        let peak = memory(gateway.process.processIdentifier, "VmHWM")
        #expect(peak - baseline < 150, "peak \(peak) MiB after a baseline of \(baseline) MiB, for 155 MiB of bodies")
        var health = HTTPClientRequest(url: gateway.baseURL + "/healthz")
        health.method = .GET
        #expect(try await HTTPClient.shared.execute(health, timeout: .seconds(10)).status.code == 200)
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }
}
