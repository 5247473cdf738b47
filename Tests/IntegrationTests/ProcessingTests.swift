import Foundation
import MediaCore
import MediaTesting
import NIOCore
import PostgresNIO
import Testing

/// Uploads processed by the workers of a real gateway (isolated processor processes), on the real stack.
@Suite struct ProcessingTests {
    let gateway: TestGateway

    init() async throws {
        gateway = try await TestGateway.suite("Processing")
    }

    /// Valid files this libvips cannot decode (see VipsImageProcessorTests) end failed, like broken ones.
    static let undecodableHere: Set = [
        "images/edge-jpeg-12bit.jpg", "images/edge-jpeg-lossless-sof3.jpg",
        "images/avif-animated.avifs", "images/avif-irot-rotate90.avif",
    ]
    static let validUnderAWrongName: Set = [
        "bad-images/wrong-ext-heic-named.jpg", "bad-images/wrong-ext-jpeg-named.png", "bad-images/wrong-ext-png-named.jpg",
    ]

    /// What processing must make of every corpus file the upload accepts.
    static func expectedState(_ path: String) -> String {
        if validUnderAWrongName.contains(path) { return "ready" }
        if path.hasPrefix("bad-images/") || path.contains("/malformed-") || undecodableHere.contains(path) { return "failed" }
        return "ready"
    }

    @Test func everyAcceptedCorpusFileEndsReadyWithRenditionsOrFailedWithAReason() async throws {
        let files = try Corpus.files().filter { UploadAPITests.expectedOutcome($0).status == 201 }
        #expect(files.count == 87)
        let gateway = self.gateway
        let uploaded = try await withThrowingTaskGroup(of: (String, String).self) { group in
            var done: [(String, String)] = []
            for (index, path) in files.enumerated() {
                if index >= 8, let finished = try await group.next() { done.append(finished) }
                group.addTask {
                    let set = try await gateway.openSet(context: "community")
                    let reply = try await gateway.upload(set, [(URL(fileURLWithPath: path).lastPathComponent, try Corpus.bytes(path))])
                    let id = try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String, "\(path): \(reply.text)")
                    return (path, id)
                }
            }
            return try await group.reduce(into: done) { $0.append($1) }
        }
        #expect(uploaded.count == files.count)
        var settled: [(String, [String: Any])] = []
        for (path, id) in uploaded { settled.append((path, try await gateway.settled(id))) }
        #expect(settled.count == files.count)
        for (path, media) in settled {
            let expected = Self.expectedState(path)
            #expect(media["state"] as? String == expected, "\(path): \(media["state"] ?? "?") \(media["failure_reason"] ?? "")")
            let renditions = (media["renditions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            if expected == "failed" {
                let reason = media["failure_reason"] as? String ?? ""
                #expect(reason.hasPrefix("invalid_media: ") || reason.hasPrefix("unsupported: "), "\(path): \(reason)")
                #expect(renditions.isEmpty, "\(path)")
                continue
            }
            switch media["kind"] as? String {
            case "photo":
                #expect(renditions.contains("w160.webp") && renditions.contains("w160.jpg"), "\(path): \(renditions)")
                #expect((media["metadata"] as? [String: Any])?["blurhash"] is String, "\(path)")
                #expect(media["width"] is Int && media["height"] is Int)
            case "video":
                #expect(renditions.contains("video.mp4") && renditions.contains("poster-w160.jpg"), "\(path): \(renditions)")
                let metadata = media["metadata"] as? [String: Any] ?? [:]
                #expect(metadata["video_codec"] is String && metadata["poster"] is String, "\(path)")
                #expect((media["duration_ms"] as? Int ?? 0) > 0, "\(path)")
            case "audio":
                #expect(renditions.contains("audio.m4a"), "\(path): \(renditions)")
                let metadata = media["metadata"] as? [String: Any] ?? [:]
                #expect((metadata["waveform"] as? [Any])?.count == 100, "\(path)")
                #expect(metadata["audio_codec"] is String && metadata["sample_rate"] is Int, "\(path)")
            default:
                Issue.record("\(path): unknown kind")
            }
        }
    }

    @Test func renditionsAreStoredUnderVersionedKeysWithoutMetadataAndEventsSaySo() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [("gps.jpg", try Corpus.bytes("images/gps-nikon-coolpix-p6000-1.jpg"))])
        let id = try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String)
        let media = try await gateway.settled(id)
        #expect(media["state"] as? String == "ready")
        #expect(media["width"] as? Int == 640 && media["height"] as? Int == 480)
        let renditions = media["renditions"] as? [[String: Any]] ?? []
        #expect(renditions.map { $0["name"] as? String } == ["w160.jpg", "w160.webp", "w320.jpg", "w320.webp", "w640.jpg", "w640.webp"])

        let objects = gateway.isolation.blobs
        let derived = try TestStack.pools().derived
        let expectedKeys = renditions.compactMap { $0["name"] as? String }.map { "\(id)/v1/\($0)" }.sorted()
        try await eventually { try await gateway.listObjects(pool: derived, prefix: "\(id)/").sorted() == expectedKeys }
        for rendition in renditions {
            let location = ObjectLocation(pool: derived, key: "\(id)/v1/\(rendition["name"] as! String)")
            let bytes = Array(try await objects.read(location, range: nil).collect(upTo: 1 << 20).readableBytesView)
            #expect(bytes.count == rendition["size"] as? Int)
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(!text.contains("NIKON") && !text.contains("GPS"), "\(rendition["name"] ?? "") carries no camera metadata")
        }
        let database = gateway.isolation.metadata.database
        let events = try await database.client.query(
            "SELECT type FROM outbox WHERE media_id = \(try #require(MediaID(id)).uuid) ORDER BY pos"
        ).decode(String.self).reduce(into: [String]()) { $0.append($1) }
        #expect(events == ["media.stored", "media.ready"])
    }

    @Test func processingAgainWritesTheSameKeysAndNoDuplicateRows() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [("a.png", try Corpus.bytes("images/png-palette-trns.png"))])
        let id = try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String)
        let first = try await gateway.settled(id)
        let mediaID = try #require(MediaID(id))
        let database = gateway.isolation.metadata.database
        try await database.client.query("INSERT INTO jobs (queue, media_id, media_kind) VALUES ('process', \(mediaID.uuid), 'photo')")
        // the job waits its turn behind this suite's other jobs
        try await eventually(within: .seconds(120)) {
            try await database.client.query("SELECT count(*) FROM jobs WHERE media_id = \(mediaID.uuid)").decode(Int.self).reduce(0, +) == 0
        }
        let second = try await gateway.settled(id)
        #expect(second["state"] as? String == "ready")
        let names = { (media: [String: Any]) in (media["renditions"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } }
        #expect(names(second) == names(first))
        let rows = try await database.client.query("SELECT count(*) FROM renditions WHERE media_id = \(mediaID.uuid)").decode(Int.self).reduce(0, +)
        #expect(rows == names(first).count)
        try await eventually { try await gateway.listObjects(pool: TestStack.pools().derived, prefix: "\(id)/").count == rows }
    }

    @Test func deletingAProcessedMediaRemovesItsRenditionsToo() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [("a.webp", try Corpus.bytes("images/webp-lossy.webp"))])
        let id = try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String)
        _ = try await gateway.settled(id)
        try await eventually { try await !gateway.listObjects(pool: TestStack.pools().derived, prefix: "\(id)/").isEmpty }
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(id)").status == 204)
        #expect(try await gateway.listObjects(pool: TestStack.pools().derived, prefix: "\(id)/").isEmpty)
        #expect(try await gateway.listObjects(pool: TestStack.pools().photo, prefix: "\(set.id)/").isEmpty)
    }
}
