import AsyncHTTPClient
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import NIOHTTP1
import Testing

/// A real nginx (Deploy/cdn/nginx.conf, started by Deploy/cdn/edge) in front of a real gateway on the real
/// stack: what a CDN point of presence does with the origin's answers.
@Suite(.serialized) struct CDNEdgeTests {
    /// A large video made by the ffmpeg command (installed by the stack): 6 s of 720p at 4 Mbit/s, about 3 MB.
    static func generatedVideo() async throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edge-\(UUID().uuidString).mp4").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try await TestStack.run(
            "/usr/bin/ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6", "-c:v", "libx264", "-preset", "veryfast",
                "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-c:a", "aac", "-movflags", "+faststart", "-shortest", path,
            ]
        )
        guard status == 0 else { throw TestFailure("ffmpeg failed: \(output)") }
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A TCP port nothing listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("no free port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct Edge {
        let baseURL: String
        let directory: URL

        /// Starts an edge; with `directory`, on the cache an edge stopped with ``halt()`` left there.
        static func start(origin: String, listen: String? = nil, directory: URL? = nil) async throws -> Edge {
            let directory =
                directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("mediagw-edge-\(UUID().uuidString.prefix(8))")
            let listen = try listen ?? "127.0.0.1:\(CDNEdgeTests.freePort())"
            let (status, output) = try await TestStack.run(
                TestStack.root.appendingPathComponent("Deploy/cdn/edge").path,
                ["start", "--origin", origin, "--listen", listen, "--dir", directory.path]
            )
            guard status == 0 else { throw TestFailure("the edge did not start: \(output)") }
            return Edge(baseURL: "http://\(listen)", directory: directory)
        }

        func stop() {
            halt()
            try? FileManager.default.removeItem(at: directory)
        }

        /// Stops nginx and keeps its cache on disk.
        func halt() {
            _ = try? TestStack.runBlocking(TestStack.root.appendingPathComponent("Deploy/cdn/edge").path, ["stop", "--dir", directory.path])
        }

        func get(_ path: String, _ headers: [(String, String)] = []) async throws -> TestGateway.Reply {
            var request = HTTPClientRequest(url: baseURL + path)
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 16 << 20)
            return TestGateway.Reply(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
        }

        /// The access log's last line for requests of `path`.
        func lastLogLine(for path: String) throws -> String {
            let log = try String(contentsOf: directory.appendingPathComponent("access.log"), encoding: .utf8)
            return log.split(separator: "\n").last { $0.contains("GET \(path) ") }.map(String.init) ?? ""
        }
    }

    @Test func theEdgeCachesRevalidatesSlicesAndOutlivesItsOrigin() async throws {
        // public media expire after 3 s here, so that revalidation and stale serving happen within the test
        let gateway = try await TestGateway.start(try await Isolation.suite("CDNEdge"), ["MEDIAGW_ORIGIN_MAX_AGE": "3s"])
        let edge = try await Edge.start(origin: String(gateway.baseURL.dropFirst("http://".count)))
        defer { edge.stop() }

        let set = try await gateway.openSet()
        let photoBytes = try Corpus.bytes("images/orientation-1.jpg")
        let videoBytes = try await Self.generatedVideo()
        #expect(videoBytes.count > 2 << 20, "the video spans several 1 MiB slices")
        let uploaded = try await gateway.upload(set, [("photo.jpg", photoBytes), ("clip.mp4", videoBytes)])
        let ids = (uploaded.json["media"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(ids.count == 2, "\(uploaded.text)")
        let photo = try await gateway.settled(ids[0])
        let video = try await gateway.settled(ids[1])
        #expect(photo["state"] as? String == "ready" && video["state"] as? String == "ready")
        let photoID = ids[0]
        let rendition = try #require((photo["renditions"] as? [[String: Any]])?.first { $0["name"] as? String == "w320.jpg" })
        let renditionURL = try #require(rendition["url"] as? String)
        let videoURL = try #require(video["original_url"] as? String)

        // a miss, then a hit with the same bytes
        let miss = try await edge.get(renditionURL)
        #expect(miss.status == 200)
        #expect(miss.headers["X-Cache-Status"].first == "MISS")
        let hit = try await edge.get(renditionURL)
        #expect(hit.headers["X-Cache-Status"].first == "HIT")
        #expect(hit.body == miss.body)
        // the edge names its own request, not the origin's request that filled its cache
        #expect(hit.headers["X-Request-Id"].count == 1 && hit.headers["X-Request-Id"] != miss.headers["X-Request-Id"], "\(hit.headers)")
        #expect(hit.headers["ETag"].first == "\"\(rendition["sha256"] as? String ?? "")\"")

        // negotiated renditions: two cache entries, whatever Accept headers browsers send
        let negotiated = "/m/\(photoID)/v1/w320"
        let webp = try await edge.get(negotiated, [("Accept", "image/avif,image/webp,*/*")])
        #expect(webp.headers["Content-Type"].first == "image/webp" && webp.headers["X-Cache-Status"].first == "MISS")
        let jpeg = try await edge.get(negotiated, [("Accept", "*/*")])
        #expect(jpeg.headers["Content-Type"].first == "image/jpeg" && jpeg.headers["X-Cache-Status"].first == "MISS")
        let otherBrowser = try await edge.get(negotiated, [("Accept", "image/webp,image/png")])
        #expect(otherBrowser.headers["Content-Type"].first == "image/webp" && otherBrowser.headers["X-Cache-Status"].first == "HIT")
        let refusesWebP = try await edge.get(negotiated, [("Accept", "image/png,image/webp;q=0")])
        #expect(refusesWebP.headers["Content-Type"].first == "image/jpeg" && refusesWebP.headers["X-Cache-Status"].first == "HIT")

        // a seek into the video: the edge fetches the one 1 MiB slice that holds it, then serves from it
        let seek = try await edge.get(videoURL, [("Range", "bytes=1500000-1500099")])
        #expect(seek.status == 206)
        #expect(seek.headers["Content-Range"].first == "bytes 1500000-1500099/\(videoBytes.count)")
        #expect(seek.body == Array(videoBytes[1_500_000..<1_500_100]))
        #expect(try edge.lastLogLine(for: videoURL).contains("origin_range=\"bytes 1048576-2097151/\(videoBytes.count)\""))
        let sameSlice = try await edge.get(videoURL, [("Range", "bytes=1048576-1048600")])
        #expect(sameSlice.status == 206 && sameSlice.headers["X-Cache-Status"].first == "HIT")
        #expect(sameSlice.body == Array(videoBytes[1_048_576...1_048_600]))
        let whole = try await edge.get(videoURL)
        #expect(whole.status == 200 && whole.body == videoBytes, "slices are assembled into the whole object")

        // once expired, the edge revalidates and the origin answers 304
        try await Task.sleep(for: .seconds(4))
        let revalidated = try await edge.get(renditionURL)
        #expect(revalidated.headers["X-Cache-Status"].first == "REVALIDATED")
        #expect(revalidated.body == miss.body)
        #expect(try edge.lastLogLine(for: renditionURL).contains("upstream=304"))

        // the origin goes away: what is cached is still served, stale
        await gateway.stop()
        try await Task.sleep(for: .seconds(4))
        let stale = try await edge.get(renditionURL)
        #expect(stale.status == 200)
        #expect(stale.headers["X-Cache-Status"].first == "STALE")
        #expect(stale.body == miss.body)
        let staleSlice = try await edge.get(videoURL, [("Range", "bytes=1500000-1500099")])
        #expect(staleSlice.status == 206 && staleSlice.body == Array(videoBytes[1_500_000..<1_500_100]))
    }

    @Test func deletedMediaLeaveTheEdgeWithinSecondsAndAFailedPurgeIsTriedAgain() async throws {
        let listen = "127.0.0.1:\(try Self.freePort())"
        let gateway = try await TestGateway.start(
            try await Isolation.suite("CDNEdge"),
            ["MEDIAGW_CDN_PURGE_URLS": "http://\(listen)", "MEDIAGW_CDN_PURGE_INTERVAL": "200ms"]
        )
        var edge = try await Edge.start(origin: String(gateway.baseURL.dropFirst("http://".count)), listen: listen)
        defer { edge.stop() }
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(
            set,
            [("photo.jpg", try Corpus.bytes("images/orientation-1.jpg")), ("clip.mp4", try await Self.generatedVideo())]
        )
        let ids = (uploaded.json["media"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(ids.count == 2, "\(uploaded.text)")
        let photo = try await gateway.settled(ids[0])
        let video = try await gateway.settled(ids[1])
        let renditionURL = try #require((photo["renditions"] as? [[String: Any]])?.first { $0["name"] as? String == "w320.webp" }?["url"] as? String)
        let negotiated = "/m/\(ids[0])/v1/w320"
        let videoURL = try #require(video["original_url"] as? String)
        let videoRendition = try #require(
            (video["renditions"] as? [[String: Any]])?.first { $0["name"] as? String == "video.mp4" }?["url"] as? String
        )

        // the edge holds a rendition, a negotiated variant, a slice of the original video and one of its transcode
        let seek = ("Range", "bytes=1500000-1500099")
        for (path, headers) in [
            (renditionURL, []), (negotiated, [("Accept", "image/webp")]), (videoURL, [seek]), (videoRendition, [("Range", "bytes=0-99")]),
        ] {
            _ = try await edge.get(path, headers)
            let again = try await edge.get(path, headers)
            #expect(again.headers["X-Cache-Status"].first == "HIT" && [200, 206].contains(again.status), "\(path)")
        }

        // deleted: within seconds the edge no longer serves it (the origin then answers 404)
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(ids[0])").status == 204)
        try await eventually(within: .seconds(5)) { try await edge.get(renditionURL).status == 404 }
        #expect(try await edge.get(negotiated, [("Accept", "image/webp")]).status == 404)
        #expect(try await edge.get(negotiated, [("Accept", "*/*")]).status == 404)

        // the edge is down when the video is deleted: the purge fails and is tried again until the edge is
        // back, with its cache still on disk
        edge.halt()
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(ids[1])").status == 204)
        try await Task.sleep(for: .seconds(2))
        edge = try await Edge.start(origin: String(gateway.baseURL.dropFirst("http://".count)), listen: listen, directory: edge.directory)
        try await eventually(within: .seconds(35)) { try await edge.get(videoURL, [seek]).status == 404 }
        #expect(try await edge.get(videoRendition, [("Range", "bytes=0-99")]).status == 404)
        await gateway.stop()
    }

    @Test func privateMediaAndMissesAreNotKeptByTheEdge() async throws {
        let gateway = try await TestGateway.start(try await Isolation.suite("CDNEdge"))
        let edge = try await Edge.start(origin: String(gateway.baseURL.dropFirst("http://".count)))
        defer { edge.stop() }
        let set = try await gateway.openSet(context: "message")
        let uploaded = try await gateway.upload(set, [("photo.jpg", try Corpus.bytes("images/progressive.jpg"))])
        let id = try #require((uploaded.json["media"] as? [[String: Any]])?.first?["id"] as? String)
        let media = try await gateway.settled(id)
        let signed = try #require(media["original_url"] as? String)
        for _ in 0..<2 {
            let reply = try await edge.get(signed)
            #expect(reply.status == 200)
            #expect(reply.headers["X-Cache-Status"].first == "MISS", "Cache-Control: private is never stored at the edge")
        }
        let unsigned = try await edge.get(String(signed.prefix { $0 != "?" }))
        #expect(unsigned.status == 403)
        let missing = "/m/\(MediaID.generate())/original.jpg"
        #expect(try await edge.get(missing).headers["X-Cache-Status"].first == "MISS")
        #expect(try await edge.get(missing).headers["X-Cache-Status"].first == "HIT", "a miss is remembered for seconds")
        await gateway.stop()
    }
}
