import AsyncHTTPClient
import Crypto
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Testing

/// The public upload route through real HTTP, on the real stack.
@Suite struct UploadAPITests {
    let gateway: TestGateway

    init() async throws {
        gateway = try await TestGateway.suite("UploadAPI")
    }

    /// What the gateway must answer for each corpus file uploaded alone into a fresh post set.
    static func expectedOutcome(_ path: String) -> (status: Int, kind: String?, code: String?) {
        let unsupported: Set = [
            "audio/aiff-alaw.aif", "audio/malformed-wav-header.wav", "bad-images/bomb-tiff-oom.tif",
            "bad-images/corrupt-png-crlf-mangled.png", "bad-images/corrupt-png-signature-bit.png",
            "bad-images/corrupt-tiff-libtiff-segfault.tif", "bad-images/wrong-ext-json-named.webp",
            "images/svg-embedded-data-uri-rasters.svg", "images/svg-inkscape.svg", "images/tiff-lzw.tif", "images/tiff-multipage.tiff",
        ]
        let overPhotoCap: Set = ["bad-images/bomb-jpeg-20000x14000-real.jpg", "images/jpeg-ultrahdr-gainmap.jpg"]
        if unsupported.contains(path) { return (415, nil, "unsupported_media_type") }
        if overPhotoCap.contains(path) { return (413, nil, "too_large") }
        let kind = path.hasPrefix("audio/") ? "audio" : path.hasPrefix("video/") ? "video" : "photo"
        return (201, kind, nil)
    }

    @Test func everyCorpusFileIsStoredWithItsKindOrRefusedWithItsCode() async throws {
        let files = try Corpus.files()
        #expect(files.count == 100)
        let gateway = self.gateway
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, path) in files.enumerated() {
                if index >= 8 { try await group.next() }
                group.addTask {
                    let bytes = try Corpus.bytes(path)
                    let set = try await gateway.openSet()
                    let reply = try await gateway.upload(set, [(URL(fileURLWithPath: path).lastPathComponent, bytes)])
                    let expected = Self.expectedOutcome(path)
                    #expect(reply.status == expected.status, "\(path): \(reply.text)")
                    let result = (reply.json["media"] as? [[String: Any]])?.first ?? [:]
                    if let kind = expected.kind {
                        #expect(result["kind"] as? String == kind, "\(path)")
                        #expect(result["size"] as? Int == bytes.count, "\(path)")
                        let digest = SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined()
                        #expect(result["sha256"] as? String == digest, "\(path)")
                        #expect(result["state"] as? String == "stored")
                    } else {
                        #expect(reply.errorCode == expected.code, "\(path): \(reply.text)")
                        #expect((result["error"] as? [String: Any])?["code"] as? String == expected.code, "\(path)")
                        let stored = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
                        #expect((stored.json["media"] as? [Any])?.isEmpty == true, "\(path): a refused file leaves no row")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func twentyParallelPhotoUploadsToOnePostStoreExactlyFive() async throws {
        let gateway = self.gateway
        let set = try await gateway.openSet()
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<20 {
                group.addTask {
                    let reply = try await gateway.upload(set, [("p\(index).jpg", fakeJPEG(50_000, seed: UInt64(index)))])
                    return (reply.status, reply.errorCode)
                }
            }
            return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0.0 == 201 }.count == 5)
        #expect(statuses.filter { $0 == (409, "limit_exceeded") }.count == 15)
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.count == 5)
        // the fifteen refused objects are gone from Ceph
        try await eventually { try await gateway.listObjects(pool: TestStack.pools().photo, prefix: "\(set.id)/").count == 5 }
    }

    @Test func uploadsToDifferentSetsRunConcurrently() async throws {
        let gateway = self.gateway
        let replies = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<16 {
                group.addTask {
                    let set = try await gateway.openSet()
                    return try await gateway.upload(
                        set,
                        [("a.jpg", fakeJPEG(300_000, seed: UInt64(100 + index))), ("b.jpg", fakeJPEG(200_000, seed: 7))]
                    ).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(replies == Array(repeating: 201, count: 16))
    }

    @Test func aPhotoOverItsCapIsCutAndLeavesNothing() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [("big.jpg", fakeJPEG(2 << 20))])
        #expect(reply.status == 413)
        #expect(reply.errorCode == "too_large")
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.isEmpty == true)
        #expect(try await gateway.listObjects(pool: TestStack.pools().photo, prefix: "\(set.id)/").isEmpty)
    }

    @Test func aRefusedPartDoesNotUndoTheStoredOnes() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(
            set,
            [
                ("one.jpg", try Corpus.bytes("images/orientation-1.jpg")),
                ("drawing.svg", try Corpus.bytes("images/svg-inkscape.svg")),
                ("clip.mov", try Corpus.bytes("video/mov-h264.mov")),
            ]
        )
        #expect(reply.status == 415)
        let results = reply.json["media"] as? [[String: Any]] ?? []
        #expect(results.map { $0["part"] as? Int } == [1, 2, 3])
        #expect(results[0]["kind"] as? String == "photo")
        #expect((results[1]["error"] as? [String: Any])?["code"] as? String == "unsupported_media_type")
        #expect(results[2]["kind"] as? String == "video")
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.count == 2)
    }

    @Test func aProfileSetTakesOnePhotoAndNothingElse() async throws {
        let set = try await gateway.openSet(context: "profile")
        #expect(try await gateway.upload(set, [("v.mov", try Corpus.bytes("video/mov-h264.mov"))]).errorCode == "limit_exceeded")
        #expect(try await gateway.upload(set, [("a.jpg", fakeJPEG(1000))]).status == 201)
        let second = try await gateway.upload(set, [("b.jpg", fakeJPEG(1000))])
        #expect(second.status == 409)
        #expect(second.errorCode == "limit_exceeded")
    }

    @Test func anEmptyFileIsRefused() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [("empty.jpg", [])])
        #expect(reply.status == 400)
        #expect(reply.errorCode == "invalid_request")
    }

    // MARK: Authentication

    @Test func theUploadRouteRefusesMissingTamperedExpiredAndForeignTokens() async throws {
        let set = try await gateway.openSet()
        let other = try await gateway.openSet()
        let file = [(Optional("a.jpg"), fakeJPEG(1000))]
        func status(_ token: String?) async throws -> (Int, String?) {
            let boundary = "b"
            var request = HTTPClientRequest(url: gateway.baseURL + "/v1/upload-sets/\(set.id)/media")
            request.method = .POST
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.body = .bytes(ByteBuffer(bytes: Multipart.body(file, boundary: boundary)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
            return (Int(response.status.code), (json?["error"] as? [String: Any])?["code"] as? String)
        }
        #expect(try await status(nil) == (401, "unauthorized"))
        #expect(try await status("not-a-token") == (401, "unauthorized"))
        #expect(try await status(String(set.token.dropLast(2)) + "xx") == (401, "unauthorized"))
        let setID = try #require(UploadSetID(set.id))
        let expired = gateway.signer.sign(UploadGrant(uploadSetID: setID, ownerID: "x", expiresAt: Date().addingTimeInterval(-5)))
        #expect(try await status(expired) == (401, "token_expired"))
        #expect(try await status(other.token) == (403, "forbidden"))
        let wrongOwner = gateway.signer.sign(UploadGrant(uploadSetID: setID, ownerID: "someone-else", expiresAt: Date().addingTimeInterval(60)))
        #expect(try await status(wrongOwner) == (403, "forbidden"))
        // the service token is not an upload token
        #expect(try await status(TestGateway.serviceToken) == (401, "unauthorized"))
        #expect(try await status(set.token) == (201, nil))
    }

    @Test func idsInPathsAreValidated() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.request(.POST, "/v1/upload-sets/not-an-id/media", token: set.token)
        #expect(reply.status == 400)
        #expect(reply.errorCode == "invalid_request")
        let unknown = UploadSetID.generate()
        let token = gateway.signer.sign(UploadGrant(uploadSetID: unknown, ownerID: "o", expiresAt: Date().addingTimeInterval(60)))
        let missing = try await gateway.upload(TestGateway.OpenedSet(id: unknown.description, token: token), [("a.jpg", fakeJPEG(10))])
        #expect(missing.status == 404)
    }

    // MARK: Malformed requests

    @Test func aBodyThatIsNotMultipartIsRefused() async throws {
        let set = try await gateway.openSet()
        for contentType in ["application/json", "multipart/form-data", "multipart/form-data; boundary=\"\""] {
            let reply = try await gateway.request(
                .POST,
                "/v1/upload-sets/\(set.id)/media",
                token: set.token,
                body: .bytes(ByteBuffer(string: "{}")),
                headers: [("Content-Type", contentType)]
            )
            #expect(reply.status == 400, "\(contentType)")
            #expect(reply.errorCode == "malformed_multipart")
        }
    }

    @Test func aTruncatedBodyKeepsTheCompleteParts() async throws {
        let set = try await gateway.openSet()
        let boundary = "trunc"
        var body = Array(Multipart.partHeader(index: 0, filename: "whole.jpg", boundary: boundary).utf8) + fakeJPEG(20_000) + Array("\r\n".utf8)
        body += Array(Multipart.partHeader(index: 1, filename: "cut.jpg", boundary: boundary).utf8) + fakeJPEG(30_000)
        let reply = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/media",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: body)),
            headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")]
        )
        #expect(reply.status == 400)
        #expect(reply.errorCode == "malformed_multipart")
        let results = reply.json["media"] as? [[String: Any]] ?? []
        #expect(results.first?["kind"] as? String == "photo")
        try await eventually { try await gateway.listObjects(pool: TestStack.pools().photo, prefix: "\(set.id)/").count == 1 }
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.count == 1)
    }

    @Test func aPartWithoutAFilenameIsRefusedAndTheOthersStored() async throws {
        let set = try await gateway.openSet()
        let reply = try await gateway.upload(set, [(nil, Array("caption text".utf8)), ("a.jpg", fakeJPEG(5000))])
        #expect(reply.status == 400)
        let results = reply.json["media"] as? [[String: Any]] ?? []
        #expect((results.first?["error"] as? [String: Any])?["code"] as? String == "malformed_multipart")
        #expect(results.last?["kind"] as? String == "photo")
    }

    @Test func thousandsOfTinyPartsAreCutAtThePartCap() async throws {
        let set = try await gateway.openSet()
        let files = (0..<3000).map { (Optional("f\($0)"), [UInt8]([0x00])) }
        let reply = try await gateway.upload(set, files)
        // the request is cut at its 11th part: that is the answer; the ten parts read are each listed
        #expect(reply.status == 413, "\(reply.text.prefix(300))")
        #expect(reply.errorCode == "too_many_parts")
        let results = reply.json["media"] as? [[String: Any]] ?? []
        #expect(results.compactMap { $0["part"] as? Int } == Array(1...10))
        #expect(results.allSatisfy { ($0["error"] as? [String: Any])?["code"] as? String == "unsupported_media_type" })
        #expect(try await gateway.request(.GET, "/healthz").status == 200)
    }

    @Test func thePartBeforeABadOneIsStoredWhole() async throws {
        // a message set takes ten photos: the eleventh part is one too many, and the tenth stays stored
        let set = try await gateway.openSet(context: "message")
        let files = (0..<11).map { (Optional("p\($0).jpg"), fakeJPEG(3000, seed: UInt64($0))) }
        let reply = try await gateway.upload(set, files)
        #expect(reply.status == 413)
        #expect(reply.errorCode == "too_many_parts")
        let results = reply.json["media"] as? [[String: Any]] ?? []
        #expect(results.count == 10)
        #expect(results.allSatisfy { $0["state"] as? String == "stored" }, "\(reply.text.prefix(400))")
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.count == 10)
        try await eventually { try await gateway.listObjects(pool: TestStack.pools().photo, prefix: "\(set.id)/").count == 10 }
    }

    @Test func aChunkedBodyCutAtTheRequestCapIsAnsweredForTheRequestWithOneEntryPerPart() async throws {
        let set = try await gateway.openSet()
        let boundary = "cap"
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        var request = HTTPClientRequest(url: gateway.baseURL + "/v1/upload-sets/\(set.id)/media")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(set.token)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .stream(stream, length: .unknown)
        let response = Task { try await HTTPClient.shared.execute(request, timeout: .seconds(120)) }
        continuation.yield(ByteBuffer(bytes: Array(Multipart.partHeader(index: 0, filename: "a.jpg", boundary: boundary).utf8) + fakeJPEG(5000)))
        continuation.yield(ByteBuffer(string: "\r\n" + Multipart.partHeader(index: 1, filename: "zeros.bin", boundary: boundary)))
        let zeros = ByteBuffer(repeating: 0, count: 1 << 20)
        for _ in 0..<42 { continuation.yield(zeros) }  // past the 40 MiB request cap
        continuation.finish()
        let answer = try await response.value
        let json = (try JSONSerialization.jsonObject(with: Data(try await answer.body.collect(upTo: 1 << 20).readableBytesView))) as? [String: Any]
        #expect(answer.status.code == 413)
        #expect((json?["error"] as? [String: Any])?["code"] as? String == "request_too_large")
        let results = json?["media"] as? [[String: Any]] ?? []
        #expect(results.compactMap { $0["part"] as? Int } == [1, 2], "one entry per part")
        #expect(results.first?["state"] as? String == "stored")
        #expect((results.last?["error"] as? [String: Any])?["code"] as? String == "unsupported_media_type")
    }

    @Test func aRequestRefusedBeforeItsBodyGetsOneAnswerAndTheConnectionCloses() async throws {
        let set = try await gateway.openSet()
        for (path, token) in [("/v1/upload-sets/not-an-id/media", set.token), ("/v1/upload-sets/\(set.id)/media", "v1.bad.token.x")] {
            let connection = try RawConnection(gateway.baseURL)
            defer { connection.close() }
            // the headers and a part of the promised body, then the client stops sending
            try await connection.send(
                Array(
                    """
                    POST \(path) HTTP/1.1\r
                    Host: 127.0.0.1\r
                    Authorization: Bearer \(token)\r
                    Content-Type: multipart/form-data; boundary=b\r
                    Content-Length: 100000\r
                    \r
                    --b\r

                    """.utf8
                )
            )
            connection.shutdownWrites()
            let answer = String(decoding: await connection.receiveAll(), as: UTF8.self)
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count - 1 == 1, "exactly one answer: \(answer.prefix(600))")
            #expect(answer.lowercased().contains("connection: close"))
            #expect(answer.contains("\"media\":[]"), "the shape of every upload answer")
        }
    }

    @Test func theTokenIsCheckedBeforeTheSetID() async throws {
        let reply = try await gateway.request(.POST, "/v1/upload-sets/not-an-id/media", token: nil, body: .bytes(ByteBuffer(string: "x")))
        #expect(reply.status == 401)
        #expect(reply.errorCode == "unauthorized")
    }

    @Test func hugePartHeadersAreRefused() async throws {
        let set = try await gateway.openSet()
        let boundary = "hdr"
        let body =
            Array(
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\nX-Padding: \(String(repeating: "p", count: 40_000))\r\n\r\n"
                    .utf8
            )
            + fakeJPEG(100) + Array("\r\n--\(boundary)--\r\n".utf8)
        let reply = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/media",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: body)),
            headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")]
        )
        #expect(reply.status == 431)
        #expect(reply.errorCode == "header_too_large")
        #expect(try await gateway.request(.GET, "/healthz").status == 200)
    }

    @Test func aClientThatGoesAwayMidPartLeavesNoRowAndNoObject() async throws {
        let set = try await gateway.openSet()
        // A bare connection: the request promises 8 MiB, sends 1.25 MiB of one part (one Ceph chunk and a
        // quarter), then the connection is closed. (An HTTP client's cancellation need not close its connection
        // at once; this test is about the server.) The server sees the end only after it has read what the
        // kernel had buffered, which a loaded machine running a debug build does slowly: the deadlines bound
        // liveness (the idle timeout is 60 s), not speed.
        let boundary = "cancel"
        let connection = try RawConnection(gateway.baseURL)
        try await connection.send(
            Array(
                """
                POST /v1/upload-sets/\(set.id)/media HTTP/1.1\r
                Host: 127.0.0.1\r
                Authorization: Bearer \(set.token)\r
                Content-Type: multipart/form-data; boundary=\(boundary)\r
                Content-Length: \(8 << 20)\r
                \r
                \(Multipart.partHeader(index: 0, filename: "slow.mp4", boundary: boundary))
                """.utf8
            ) + (try fakeMP4(5 << 18))
        )
        // the object exists (its first chunk is written) while the part still streams
        try await eventually(within: .seconds(60)) {
            try await gateway.listObjects(pool: TestStack.pools().video, prefix: "\(set.id)/").count == 1
        }
        connection.close()
        try await eventually(within: .seconds(60)) {
            try await gateway.listObjects(pool: TestStack.pools().video, prefix: "\(set.id)/").isEmpty
        }
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [Any])?.isEmpty == true)
    }
}
