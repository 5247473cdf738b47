import AsyncHTTPClient
import Crypto
import Foundation
import MediaTesting
import Testing

/// tuspy, a real tus client from PyPI (`Tests/resumable/tus_client.py`, installed by the stack into its
/// virtual environment), against real gateway processes on the real stack: a 10 MB video whose gateway is
/// SIGKILLed mid-upload and resumed by the same uploader through another gateway; a wrong checksum; an
/// expired upload; a terminated one.
@Suite(.serialized) struct ResumableClientTests {
    static let settings = ["MEDIAGW_RESUMABLE_CLAIM_LEASE": "3s", "MEDIAGW_WORKERS": "1"]

    var python: String {
        get throws {
            guard let stack = ProcessInfo.processInfo.environment["MEDIAGW_STACK_DIR"] else {
                throw TestFailure("MEDIAGW_STACK_DIR is not set: run through Deploy/local/stack test")
            }
            return stack + "/venv/bin/python"
        }
    }

    var script: String { TestStack.root.appendingPathComponent("Tests/resumable/tus_client.py").path }

    /// Runs one scenario of the client; its last output line is a JSON object.
    func client(_ arguments: [String]) async throws -> [String: Any] {
        let (status, output) = try await TestStack.run(try python, [script] + arguments)
        guard status == 0, let line = output.split(separator: "\n").last,
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw TestFailure("tus_client.py \(arguments.first ?? "") failed (\(status)): \(output.suffix(3000))") }
        return json
    }

    /// A 10 s 720p H.264/AAC video of about 9.5 MB (under the 10 MiB video cap), made by ffmpeg.
    func video() async throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tus-\(UUID().uuidString.prefix(8)).mp4")
        let (status, output) = try await TestStack.run(
            "/usr/bin/ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi",
                "-i", "sine=frequency=330:sample_rate=44100", "-vf", "noise=alls=25:allf=t", "-t", "10", "-c:v", "libx264",
                "-preset", "ultrafast", "-b:v", "7200k", "-maxrate", "7200k", "-bufsize", "7200k", "-c:a", "aac", "-shortest", file.path,
            ]
        )
        guard status == 0 else { throw TestFailure("ffmpeg failed: \(output)") }
        let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? 0
        try #require((8 << 20...10 << 20).contains(size), "the generated video has \(size) bytes")
        return file
    }

    func sha256(_ file: URL) throws -> String {
        SHA256.hash(data: try Data(contentsOf: file)).map { String(format: "%02x", $0) }.joined()
    }

    @Test func aGatewayKilledMidUploadIsResumedThroughAnotherByTheSameUploader() async throws {
        let slice = try await Isolation.suite("TusResume")
        let first = try await GatewayProcess.start(slice, Self.settings)
        let second = try await GatewayProcess.start(slice, Self.settings)
        let file = try await video()
        defer { try? FileManager.default.removeItem(at: file) }
        let set = try await second.openSet()
        let seen = try await client([
            "kill-and-resume", "--gateway", first.baseURL, "--second", second.baseURL, "--pid", "\(first.process.processIdentifier)",
            "--set", set.id, "--token", set.token, "--file", file.path,
        ])
        let size = try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int ?? 0
        #expect(seen["killed_at"] as? Int ?? 0 >= 5 << 20, "the MiB that landed before the kill was acknowledged: \(seen)")
        #expect(seen["resumed_at"] as? Int == seen["killed_at"] as? Int, "the second gateway resumed where the first stopped")
        #expect(seen["offset"] as? Int == size)
        // the second gateway took the hash up where the first saved it with the last landed chunk: the
        // completion did not read the 10 MB back
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: second.baseURL + "/metrics"), timeout: .seconds(30))
        let text = String(buffer: try await metrics.body.collect(upTo: 4 << 20))
        let hashed = text.split(separator: "\n").filter { $0.hasPrefix("mediagw_resumable_uploads_total{event=\"hashed_") }
        #expect(hashed == ["mediagw_resumable_uploads_total{event=\"hashed_as_received\"} 1"], "\(hashed)")
        let mediaID = try #require(seen["media_id"] as? String)
        _ = await first.waitForExit(timeout: .seconds(10))
        for child in try first.processorPIDs() { kill(child, SIGKILL) }

        let gateway = try await TestGateway.start(slice)
        let media = try await gateway.settled(mediaID, within: .seconds(300))
        let digest = try sha256(file)
        #expect(media["state"] as? String == "ready", "\(media["failure_reason"] ?? "")")
        #expect(media["kind"] as? String == "video" && media["size"] as? Int == size && media["sha256"] as? String == digest)
        let renditions = (media["renditions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(renditions.contains { $0.hasSuffix(".mp4") } && renditions.contains { $0.hasPrefix("poster") }, "\(renditions)")
        let video = try TestStack.pools().video
        #expect(try await gateway.listObjects(pool: video, prefix: "\(set.id)/") == ["\(set.id)/\(mediaID)"], "one object, stored once")
        await gateway.stop()
        second.signal(SIGTERM)
        _ = await second.waitForExit(timeout: .seconds(60))
    }

    @Test func aChunkWithAWrongChecksumIsRefusedAndTheUploadGoesOn() async throws {
        let slice = try await Isolation.suite("TusChecksum")
        let gateway = try await GatewayProcess.start(slice, Self.settings)
        let file = try await video()
        defer { try? FileManager.default.removeItem(at: file) }
        let set = try await gateway.openSet()
        let seen = try await client(["checksum", "--gateway", gateway.baseURL, "--set", set.id, "--token", set.token, "--file", file.path])
        #expect(seen["status"] as? Int == 460 && seen["code"] as? String == "checksum_mismatch")
        #expect(seen["offset_after_refusal"] as? Int == 1 << 20, "nothing of the refused chunk was kept")
        #expect(seen["media_id"] as? String != nil)
        gateway.signal(SIGTERM)
        _ = await gateway.waitForExit(timeout: .seconds(60))
    }

    @Test func expiredAndTerminatedUploadsAreGoneWithTheirPartialObjects() async throws {
        let slice = try await Isolation.suite("TusExpiry")
        let gateway = try await GatewayProcess.start(slice, Self.settings.merging(["MEDIAGW_RESUMABLE_TTL": "4s"]) { $1 })
        let file = try await video()
        defer { try? FileManager.default.removeItem(at: file) }
        let video = try TestStack.pools().video
        let set = try await gateway.openSet()

        let terminated = try await client(["terminate", "--gateway", gateway.baseURL, "--set", set.id, "--token", set.token, "--file", file.path])
        #expect(terminated["status"] as? Int == 204 && terminated["after"] as? Int == 404)
        #expect(try await slice.listObjects(pool: video, prefix: "\(set.id)/").isEmpty, "termination removed the partial object")

        let expired = try await client([
            "expire", "--gateway", gateway.baseURL, "--set", set.id, "--token", set.token, "--file", file.path, "--wait", "5",
        ])
        #expect(expired["before"] as? Int == 200 && expired["after"] as? Int == 404)
        #expect(try await slice.listObjects(pool: video, prefix: "\(set.id)/").count == 1, "the partial object waits for the reconciler")
        let (status, output) = try await TestStack.run(TestStack.mediagwPath, ["reconcile"], environment: slice.environment)
        #expect(status == 0 && output.contains("1 expired resumable upload"), "\(output)")
        #expect(try await slice.listObjects(pool: video, prefix: "\(set.id)/").isEmpty, "reclaimed without listing the pool")
        gateway.signal(SIGTERM)
        _ = await gateway.waitForExit(timeout: .seconds(60))
    }
}
