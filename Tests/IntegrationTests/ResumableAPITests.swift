import AsyncHTTPClient
import Crypto
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import NIOHTTP1
import Testing

/// Resumable uploads through a real gateway on the real stack, with plain HTTP requests: tus 1.0 and the
/// IETF draft (interop version 6), each step checked against what the protocol says, and CORS for pages
/// of other origins.
@Suite(.serialized) struct ResumableAPITests {
    static let page = "http://pages.example.test:8000"

    func gateway() async throws -> TestGateway {
        try await TestGateway.suite("ResumableAPI", ["MEDIAGW_CORS_ORIGINS": Self.page, "MEDIAGW_RESUMABLE_CLAIM_LEASE": "3s"])
    }

    func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined() }

    func tus(_ set: TestGateway.OpenedSet, _ extra: [(String, String)] = []) -> [(String, String)] {
        [("Tus-Resumable", "1.0.0")] + extra
    }

    /// The path of a Location header.
    func path(_ reply: TestGateway.Reply) throws -> String {
        let location = try #require(reply.headers.first(name: "Location"), "a Location header: \(reply.status) \(reply.text)")
        return URLComponents(string: location)?.path ?? location
    }

    func patch(
        _ gateway: TestGateway,
        _ path: String,
        _ set: TestGateway.OpenedSet,
        _ bytes: [UInt8],
        headers: [(String, String)]
    ) async throws -> TestGateway.Reply {
        try await gateway.request(.PATCH, path, token: set.token, body: .bytes(ByteBuffer(bytes: bytes)), headers: headers)
    }

    @Test func tusDiscoveryNamesTheVersionExtensionsSizeAndChecksums() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let reply = try await gateway.request(.OPTIONS, "/v1/upload-sets/\(set.id)/tus", token: nil)
        #expect(reply.status == 204)
        #expect(reply.headers.first(name: "Tus-Version") == "1.0.0")
        let extensions = Set((reply.headers.first(name: "Tus-Extension") ?? "").split(separator: ",").map(String.init))
        #expect(extensions == ["creation", "creation-with-upload", "creation-defer-length", "termination", "expiration", "checksum"])
        #expect(reply.headers.first(name: "Tus-Max-Size") == "\(10 << 20)")
        #expect(reply.headers.first(name: "Tus-Checksum-Algorithm") == "sha1,sha256")
        let wrongVersion = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            headers: [("Tus-Resumable", "0.2.2"), ("Upload-Length", "100")]
        )
        #expect(wrongVersion.status == 412 && wrongVersion.headers.first(name: "Tus-Version") == "1.0.0")
    }

    @Test func aTusUploadInPiecesBecomesMediaWithTheDigestOfTheFile() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let file = try Corpus.bytes("images/orientation-6.jpg")
        let created = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            headers: tus(set, [("Upload-Length", "\(file.count)"), ("Upload-Metadata", "filename b3JpZW50YXRpb24tNi5qcGc=,private")])
        )
        #expect(created.status == 201, "\(created.text)")
        #expect(created.headers.first(name: "Upload-Offset") == "0")
        #expect(created.headers.first(name: "Upload-Expires")?.hasSuffix("GMT") == true)
        let upload = try path(created)
        #expect(upload.hasPrefix("/v1/tus/"))

        let head = try await gateway.request(.HEAD, upload, token: set.token, headers: tus(set))
        #expect(head.status == 200 && head.headers.first(name: "Upload-Offset") == "0")
        #expect(head.headers.first(name: "Upload-Length") == "\(file.count)" && head.headers.first(name: "Cache-Control") == "no-store")
        #expect(head.headers.first(name: "Upload-Metadata")?.contains("filename b3JpZW50YXRpb24tNi5qcGc=") == true)

        let octets = ("Content-Type", "application/offset+octet-stream")
        let wrongType = try await patch(gateway, upload, set, Array(file[..<1000]), headers: tus(set, [("Upload-Offset", "0")]))
        #expect(wrongType.status == 415)
        let first = try await patch(gateway, upload, set, Array(file[..<100_000]), headers: tus(set, [octets, ("Upload-Offset", "0")]))
        #expect(first.status == 204 && first.headers.first(name: "Upload-Offset") == "100000", "\(first.text)")
        let mismatch = try await patch(gateway, upload, set, Array(file[50_000..<60_000]), headers: tus(set, [octets, ("Upload-Offset", "50000")]))
        #expect(mismatch.status == 409 && mismatch.errorCode == "offset_mismatch")

        // a piece whose checksum does not match is refused and kept nowhere
        let second = Array(file[100_000..<200_000])
        let wrongDigest = Data(Insecure.SHA1.hash(data: Data(second.reversed()))).base64EncodedString()
        let corrupt = try await patch(
            gateway,
            upload,
            set,
            second,
            headers: tus(set, [octets, ("Upload-Offset", "100000"), ("Upload-Checksum", "sha1 \(wrongDigest)")])
        )
        #expect(corrupt.status == 460 && corrupt.errorCode == "checksum_mismatch")
        #expect(try await gateway.request(.HEAD, upload, token: set.token, headers: tus(set)).headers.first(name: "Upload-Offset") == "100000")
        let digest = Data(Insecure.SHA1.hash(data: Data(second))).base64EncodedString()
        let good = try await patch(
            gateway,
            upload,
            set,
            second,
            headers: tus(set, [octets, ("Upload-Offset", "100000"), ("Upload-Checksum", "sha1 \(digest)")])
        )
        #expect(good.status == 204 && good.headers.first(name: "Upload-Offset") == "200000")

        let last = try await patch(gateway, upload, set, Array(file[200_000...]), headers: tus(set, [octets, ("Upload-Offset", "200000")]))
        #expect(last.status == 204 && last.headers.first(name: "Upload-Offset") == "\(file.count)")
        let mediaID = try #require(last.headers.first(name: "Media-Id"))
        let media = try await gateway.settled(mediaID)
        #expect(media["state"] as? String == "ready" && media["sha256"] as? String == sha256(file) && media["size"] as? Int == file.count)
        #expect((media["renditions"] as? [[String: Any]])?.isEmpty == false)
        let done = try await gateway.request(.HEAD, upload, token: set.token, headers: tus(set))
        #expect(done.headers.first(name: "Upload-Offset") == "\(file.count)" && done.headers.first(name: "Media-Id") == mediaID)
        let photo = try TestStack.pools().photo
        #expect(try await gateway.listObjects(pool: photo, prefix: "\(set.id)/") == ["\(set.id)/\(mediaID)"])
    }

    @Test func tusCreationWithUploadAndADeferredLength() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let file = try Corpus.bytes("images/gps-nikon-coolpix-p6000-1.jpg")
        let octets = ("Content-Type", "application/offset+octet-stream")
        let created = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: Array(file[..<70_000]))),
            headers: tus(set, [("Upload-Defer-Length", "1"), octets])
        )
        #expect(created.status == 201 && created.headers.first(name: "Upload-Offset") == "70000", "\(created.text)")
        let upload = try path(created)
        #expect(try await gateway.request(.HEAD, upload, token: set.token, headers: tus(set)).headers.first(name: "Upload-Defer-Length") == "1")
        let last = try await patch(
            gateway,
            upload,
            set,
            Array(file[70_000...]),
            headers: tus(set, [octets, ("Upload-Offset", "70000"), ("Upload-Length", "\(file.count)")])
        )
        #expect(last.status == 204 && last.headers.first(name: "Media-Id") != nil, "\(last.text)")
        let both = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            headers: tus(set, [("Upload-Defer-Length", "1"), ("Upload-Length", "5")])
        )
        #expect(both.status == 400)
        let tooBig = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            headers: tus(set, [("Upload-Length", "\(11 << 20)")])
        )
        #expect(tooBig.status == 413)
    }

    @Test func terminationRemovesThePartialObject() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let created = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/tus",
            token: set.token,
            headers: tus(set, [("Upload-Length", "300000")])
        )
        let upload = try path(created)
        let piece = try await patch(
            gateway,
            upload,
            set,
            fakeJPEG(150_000),
            headers: tus(set, [("Content-Type", "application/offset+octet-stream"), ("Upload-Offset", "0")])
        )
        #expect(piece.status == 204)
        let photo = try TestStack.pools().photo
        #expect(try await gateway.listObjects(pool: photo, prefix: "\(set.id)/").count == 1, "the partial object is in the photo pool")
        let other = try await gateway.openSet()
        #expect(try await gateway.request(.DELETE, upload, token: other.token, headers: tus(other)).status == 403)
        #expect(try await gateway.request(.DELETE, upload, token: set.token, headers: tus(set)).status == 204)
        #expect(try await gateway.request(.HEAD, upload, token: set.token, headers: tus(set)).status == 404)
        #expect(try await gateway.listObjects(pool: photo, prefix: "\(set.id)/").isEmpty)
    }

    @Test func twentyResumablePhotosRacingIntoOnePostCompleteExactlyFive() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<20 {
                group.addTask {
                    let file = fakeJPEG(200_000, seed: UInt64(index))
                    let created = try await gateway.request(
                        .POST,
                        "/v1/upload-sets/\(set.id)/tus",
                        token: set.token,
                        headers: self.tus(set, [("Upload-Length", "\(file.count)")])
                    )
                    let upload = try self.path(created)
                    let octets = ("Content-Type", "application/offset+octet-stream")
                    let first = try await self.patch(
                        gateway,
                        upload,
                        set,
                        Array(file[..<100_000]),
                        headers: self.tus(set, [octets, ("Upload-Offset", "0")])
                    )
                    guard first.status == 204 else { return first.status }
                    return try await self.patch(
                        gateway,
                        upload,
                        set,
                        Array(file[100_000...]),
                        headers: self.tus(set, [octets, ("Upload-Offset", "100000")])
                    )
                    .status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 204 }.count == 5, "\(statuses)")
        #expect(statuses.filter { $0 == 409 }.count == 15, "\(statuses)")
        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [[String: Any]])?.count == 5)
        let photo = try TestStack.pools().photo
        #expect(try await gateway.listObjects(pool: photo, prefix: "\(set.id)/").count == 5, "the refused uploads left no object")
    }

    @Test func theIETFDraftCreatesResumesReportsMismatchesAndCompletes() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let file = try Corpus.bytes("images/jpeg-ultrahdr-gainmap.jpg").prefix(1 << 20).map { $0 }
        let interop = ("Upload-Draft-Interop-Version", "6")
        let created = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/resumable",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: Array(file[..<300_000]))),
            headers: [interop, ("Upload-Complete", "?0"), ("Upload-Length", "\(file.count)")]
        )
        #expect(created.status == 201, "\(created.text)")
        #expect(created.headers.first(name: "Upload-Complete") == "?0" && created.headers.first(name: "Upload-Offset") == "300000")
        #expect(created.json["complete"] as? Bool == false && created.json["offset"] as? Int == 300_000 && created.json["media"] == nil)
        #expect(created.headers.first(name: "Upload-Limit")?.contains("max-size=\(10 << 20)") == true)
        let upload = try path(created)
        let head = try await gateway.request(.HEAD, upload, token: set.token, headers: [interop])
        #expect(head.status == 204 && head.headers.first(name: "Upload-Offset") == "300000" && head.headers.first(name: "Upload-Complete") == "?0")

        let partial = ("Content-Type", "application/partial-upload")
        let mismatch = try await patch(
            gateway,
            upload,
            set,
            Array(file[200_000...]),
            headers: [interop, partial, ("Upload-Offset", "200000"), ("Upload-Complete", "?1")]
        )
        #expect(mismatch.status == 409 && mismatch.headers.first(name: "Content-Type") == "application/problem+json")
        #expect(mismatch.json["type"] as? String == "https://iana.org/assignments/http-problem-types#mismatching-upload-offset")
        #expect(mismatch.json["expected-offset"] as? Int == 300_000 && mismatch.json["provided-offset"] as? Int == 200_000)

        let middle = try await patch(
            gateway,
            upload,
            set,
            Array(file[300_000..<700_000]),
            headers: [interop, partial, ("Upload-Offset", "300000"), ("Upload-Complete", "?0")]
        )
        #expect(middle.status == 204 && middle.headers.first(name: "Upload-Offset") == "700000")
        let last = try await patch(
            gateway,
            upload,
            set,
            Array(file[700_000...]),
            headers: [interop, partial, ("Upload-Offset", "700000"), ("Upload-Complete", "?1")]
        )
        #expect(last.status == 201 && last.headers.first(name: "Upload-Complete") == "?1", "\(last.text)")
        let media = last.json["media"] as? [String: Any] ?? [:]
        #expect(last.json["complete"] as? Bool == true && last.json["offset"] as? Int == file.count)
        #expect(
            media["sha256"] as? String == sha256(file) && media["kind"] as? String == "photo" && media["id"] as? String == last.json["id"] as? String
        )

        // the whole file in the creation request
        let whole = try Corpus.bytes("images/progressive.jpg")
        let single = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/resumable",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: whole)),
            headers: [interop, ("Upload-Complete", "?1")]
        )
        #expect(single.status == 201 && (single.json["media"] as? [String: Any])?["sha256"] as? String == sha256(whole), "\(single.text)")

        // cancellation
        let cancelled = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/resumable",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: fakeJPEG(50_000))),
            headers: [interop, ("Upload-Complete", "?0")]
        )
        let cancelledPath = try path(cancelled)
        #expect(try await gateway.request(.DELETE, cancelledPath, token: set.token, headers: [interop]).status == 204)
        #expect(try await gateway.request(.HEAD, cancelledPath, token: set.token, headers: [interop]).status == 404)
        #expect(try await gateway.request(.HEAD, cancelledPath, token: set.token, headers: [("Upload-Draft-Interop-Version", "3")]).status == 400)
    }

    @Test func pagesOfAnAllowedOriginGetCORSAndOthersDoNot() async throws {
        let gateway = try await gateway()
        let set = try await gateway.openSet()
        let preflight = try await gateway.request(
            .OPTIONS,
            "/v1/upload-sets/\(set.id)/tus",
            token: nil,
            headers: [
                ("Origin", Self.page), ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization, tus-resumable, upload-length, upload-metadata"),
            ]
        )
        #expect(preflight.status == 204)
        #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == Self.page)
        #expect(preflight.headers.first(name: "Access-Control-Allow-Methods")?.contains("POST") == true)
        #expect(preflight.headers.first(name: "Access-Control-Allow-Headers")?.contains("upload-metadata") == true)
        #expect(preflight.headers.first(name: "Access-Control-Max-Age") == "600")
        #expect(preflight.headers.first(name: "Access-Control-Allow-Credentials") == nil)
        let patchPreflight = try await gateway.request(
            .OPTIONS,
            "/v1/tus/\(MediaID.generate())",
            token: nil,
            headers: [("Origin", Self.page), ("Access-Control-Request-Method", "PATCH")]
        )
        #expect(patchPreflight.headers.first(name: "Access-Control-Allow-Methods") == "HEAD, PATCH, DELETE")

        let stranger = try await gateway.request(
            .OPTIONS,
            "/v1/upload-sets/\(set.id)/media",
            token: nil,
            headers: [("Origin", "http://evil.example.test"), ("Access-Control-Request-Method", "POST")]
        )
        #expect(stranger.status == 403 && stranger.headers.first(name: "Access-Control-Allow-Origin") == nil)

        let upload = try await gateway.request(
            .POST,
            "/v1/upload-sets/\(set.id)/media",
            token: set.token,
            body: .bytes(ByteBuffer(bytes: Multipart.body([("a.jpg", fakeJPEG(5000))], boundary: "b-cors"))),
            headers: [("Origin", Self.page), ("Content-Type", "multipart/form-data; boundary=b-cors")]
        )
        #expect(upload.status == 201)
        #expect(upload.headers.first(name: "Access-Control-Allow-Origin") == Self.page)
        #expect(upload.headers.first(name: "Access-Control-Expose-Headers")?.contains("Upload-Offset") == true)
        #expect(upload.headers[canonicalForm: "Vary"].contains("Origin"))

        let refused = try await gateway.request(.GET, "/m/\(MediaID.generate())/original.jpg", token: nil, headers: [("Origin", Self.page)])
        #expect(refused.status == 404 && refused.headers.first(name: "Access-Control-Allow-Origin") == Self.page, "errors carry CORS too")
        let internalRoute = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)", headers: [("Origin", Self.page)])
        #expect(internalRoute.status == 200 && internalRoute.headers.first(name: "Access-Control-Allow-Origin") == nil)
    }
}
