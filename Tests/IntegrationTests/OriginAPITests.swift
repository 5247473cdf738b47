import AsyncHTTPClient
import Crypto
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing

/// The CDN origin through the real gateway on the real stack: the URLs the internal API hands out, what
/// they serve, negotiation, misses, and the signed URLs of private media.
@Suite struct OriginAPITests {
    let gateway: TestGateway

    init() async throws {
        gateway = try await TestGateway.suite("OriginAPI")
    }

    /// A corpus photo uploaded into a new set and processed; its media JSON.
    func readyPhoto(
        context: String = "post",
        private isPrivate: Bool? = nil,
        file: String = "images/gps-nikon-coolpix-p6000-1.jpg"
    ) async throws -> [String: Any] {
        var body: [String: Any] = ["owner_id": "origin-\(UUID().uuidString.prefix(8))", "context": context, "context_id": "c1"]
        if let isPrivate { body["private"] = isPrivate }
        let created = try await gateway.request(.POST, "/internal/v1/upload-sets", json: body)
        #expect(created.status == 201)
        let set = TestGateway.OpenedSet(id: created.json["id"] as? String ?? "", token: created.json["upload_token"] as? String ?? "")
        let uploaded = try await gateway.upload(set, [("photo.jpg", try Corpus.bytes(file))])
        let id = try #require(((uploaded.json["media"] as? [[String: Any]])?.first?["id"]) as? String)
        let media = try await gateway.settled(id)
        #expect(media["state"] as? String == "ready")
        return media
    }

    func get(_ url: String, _ headers: [(String, String)] = [], method: HTTPMethod = .GET) async throws -> TestGateway.Reply {
        try await gateway.request(method, url, token: nil, headers: headers)
    }

    static func sha256(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test func publicURLsServeTheOriginalAndEveryRenditionAsStoredForAYear() async throws {
        let media = try await readyPhoto()
        let id = media["id"] as? String ?? ""
        let originalURL = try #require(media["original_url"] as? String)
        #expect(originalURL == "/m/\(id)/original.jpg")
        #expect(media["urls_expire_at"] == nil)
        let original = try await get(originalURL)
        #expect(original.status == 200)
        #expect(original.body == (try Corpus.bytes("images/gps-nikon-coolpix-p6000-1.jpg")))
        #expect(original.headers["Content-Type"].first == "image/jpeg")
        #expect(original.headers["ETag"].first == "\"\(media["sha256"] as? String ?? "")\"")
        #expect(original.headers["Cache-Control"].first == "public, max-age=31536000, immutable")

        let renditions = try #require(media["renditions"] as? [[String: Any]])
        #expect(renditions.count >= 4)
        for rendition in renditions {
            let name = rendition["name"] as? String ?? ""
            let url = try #require(rendition["url"] as? String)
            #expect(url == "/m/\(id)/v1/\(name)", "the URL carries the rendition version")
            let reply = try await get(url)
            #expect(reply.status == 200, "\(name)")
            #expect(Self.sha256(reply.body) == rendition["sha256"] as? String, "\(name)")
            #expect(reply.headers["Content-Type"].first == rendition["mime"] as? String, "\(name)")
            #expect(reply.headers["Content-Length"].first == "\(rendition["size"] as? Int ?? -1)", "\(name)")
            #expect(reply.headers["Cache-Control"].first == "public, max-age=31536000, immutable", "\(name)")
            #expect(reply.headers["X-Content-Type-Options"].first == "nosniff")
        }
    }

    @Test func aRenditionWithoutFormatIsWebPForClientsThatAcceptItAndJPEGForOthers() async throws {
        let media = try await readyPhoto()
        let id = media["id"] as? String ?? ""
        let negotiated = try #require(media["negotiated_urls"] as? [String: String])
        let url = try #require(negotiated["w160"])
        #expect(url == "/m/\(id)/v1/w160")
        let renditions = media["renditions"] as? [[String: Any]] ?? []
        func sha(_ name: String) -> String { renditions.first { $0["name"] as? String == name }?["sha256"] as? String ?? "?" }

        let chrome = try await get(url, [("Accept", "image/avif,image/webp,image/apng,image/*,*/*;q=0.8")])
        #expect(chrome.status == 200)
        #expect(chrome.headers["Content-Type"].first == "image/webp")
        #expect(chrome.headers["Vary"].first == "Accept")
        #expect(Self.sha256(chrome.body) == sha("w160.webp"))
        for accept in ["*/*", "image/jpeg", "image/webp;q=0"] {
            let other = try await get(url, [("Accept", accept)])
            #expect(other.headers["Content-Type"].first == "image/jpeg", "\(accept)")
            #expect(other.headers["Vary"].first == "Accept")
            #expect(Self.sha256(other.body) == sha("w160.jpg"), "\(accept)")
        }
        let revalidated = try await get(url, [("Accept", "image/webp"), ("If-None-Match", "\"\(sha("w160.webp"))\"")])
        #expect(revalidated.status == 304)
        // the explicit URLs are not negotiated
        #expect(try await get("/m/\(id)/v1/w160.jpg", [("Accept", "image/webp")]).headers["Vary"].isEmpty)
    }

    @Test func unknownMalformedAndMisnamedURLsAre404ForSecondsNotAYear() async throws {
        let media = try await readyPhoto()
        let id = media["id"] as? String ?? ""
        let misses = [
            "/m/\(MediaID.generate())/original.jpg", "/m/not-a-uuid/original.jpg", "/m/\(id)/original.png", "/m/\(id)/original",
            "/m/\(id)/v1/w999.webp", "/m/\(id)/v0/w160.webp", "/m/\(id)/v1/w160.gif", "/m/\(id)/v1/nothing", "/m/\(id)/..%2f..%2fetc/passwd",
        ]
        for url in misses {
            for method in [HTTPMethod.GET, .HEAD] {
                let reply = try await get(url, method: method)
                #expect(reply.status == 404, "\(method) \(url)")
                #expect(reply.headers["Cache-Control"].first == "public, max-age=10", "\(method) \(url)")
                if method == .GET { #expect(reply.errorCode == "not_found", "\(url)") }
            }
        }
    }

    @Test func mediaThatFailedOrWasDeletedIsNotServed() async throws {
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(set, [("broken.jpg", fakeJPEG(5000))])
        let brokenID = try #require(((uploaded.json["media"] as? [[String: Any]])?.first?["id"]) as? String)
        let broken = try await gateway.settled(brokenID)
        #expect(broken["state"] as? String == "failed")
        #expect(broken["original_url"] == nil, "media that is not ready has no URLs")
        #expect(try await get("/m/\(brokenID)/original.jpg").status == 404)

        let media = try await readyPhoto()
        let id = media["id"] as? String ?? ""
        let original = try #require(media["original_url"] as? String)
        let rendition = try #require((media["renditions"] as? [[String: Any]])?.first?["url"] as? String)
        #expect(try await get(original).status == 200)
        #expect(try await get(rendition).status == 200)
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(id)").status == 204)
        // this process forgets its lookups of deleted media at once
        #expect(try await get(original).status == 404)
        #expect(try await get(rendition).status == 404)
    }

    @Test func privateMediaIsServedOnlyThroughAnUnexpiredUntamperedSignature() async throws {
        let media = try await readyPhoto(context: "message")
        let id = media["id"] as? String ?? ""
        let originalURL = try #require(media["original_url"] as? String)
        let expiresAt = try #require((media["urls_expire_at"] as? String).flatMap(ISO8601DateFormatter().date))
        #expect(abs(expiresAt.timeIntervalSinceNow - 3600) < 120)
        let renditionURL = try #require((media["renditions"] as? [[String: Any]])?.first?["url"] as? String)
        for url in [originalURL, renditionURL] {
            #expect(url.contains("?exp=") && url.contains("&kid=u1&sig="), "\(url)")
            let signed = try await get(url)
            #expect(signed.status == 200)
            let cache = signed.headers["Cache-Control"].first ?? ""
            let maxAge = Int(cache.replacingOccurrences(of: "private, max-age=", with: "")) ?? -1
            #expect(cache.hasPrefix("private, max-age="))
            #expect((3400...3600).contains(maxAge), "max-age is bounded by the expiry: \(cache)")
        }
        let path = String(originalURL.prefix { $0 != "?" })
        let query = String(originalURL.drop { $0 != "?" })
        let otherPath = String(renditionURL.prefix { $0 != "?" })
        let expired = URLSigner(keys: [try SigningKey(id: "u1", secret: TestGateway.urlKeySecret)])
            .sign(path: path, expiresAt: Date().addingTimeInterval(-5))
        let refusals: [(String, String)] = [
            (path, "forbidden"),  // unsigned
            (path + query.replacingOccurrences(of: "sig=", with: "sig=A"), "forbidden"),  // tampered signature
            (path + query.replacingOccurrences(of: "exp=1", with: "exp=2"), "forbidden"),  // extended expiry
            (path + query.replacingOccurrences(of: "kid=u1", with: "kid=u7"), "forbidden"),  // unknown key
            (otherPath + query, "forbidden"),  // a signature moved to another object
            ("\(path)?\(expired.query)", "url_expired"),
        ]
        for (url, code) in refusals {
            let reply = try await get(url)
            #expect(reply.status == 403, "\(url)")
            #expect(reply.errorCode == code, "\(url)")
            #expect(reply.headers["Cache-Control"].first == "no-store", "\(url)")
            let head = try await get(url, method: .HEAD)
            #expect(head.status == 403 && head.body.isEmpty)
        }
        #expect(!id.isEmpty)
    }

    @Test func aSetCreatedPrivateIsPrivateInAPublicContext() async throws {
        let media = try await readyPhoto(context: "post", private: true)
        let set = try await gateway.request(.GET, "/internal/v1/upload-sets/\(media["upload_set_id"] as? String ?? "")")
        #expect(set.json["private"] as? Bool == true)
        let url = try #require(media["original_url"] as? String)
        #expect(url.contains("&sig="))
        #expect(try await get(url).status == 200)
        #expect(try await get(String(url.prefix { $0 != "?" })).status == 403)
        // and a public one ignores a signature it does not need
        let publicMedia = try await readyPhoto(context: "post", private: false)
        let publicURL = try #require(publicMedia["original_url"] as? String)
        let withSignature = try await get(publicURL + "?exp=1&kid=u1&sig=AAAA")
        #expect(withSignature.status == 200)
        #expect(withSignature.headers["Cache-Control"].first == "public, max-age=31536000, immutable")
    }

    @Test func urlsSignedWithARetiredButConfiguredKeyStillWork() async throws {
        let media = try await readyPhoto(context: "message")
        let path = String((media["original_url"] as? String ?? "").prefix { $0 != "?" })
        let newSecret = Array(repeating: UInt8(42), count: 32)
        let rotated = try await TestGateway.start(
            gateway.isolation,
            [
                "MEDIAGW_URL_SIGNING_KEYS": "u2:\(Data(newSecret).base64EncodedString()),u1:\(Data(TestGateway.urlKeySecret).base64EncodedString())",
                "MEDIAGW_WORKERS_IN_SERVE": "false",
            ]
        )
        let old = URLSigner(keys: [try SigningKey(id: "u1", secret: TestGateway.urlKeySecret)]).sign(
            path: path,
            expiresAt: Date().addingTimeInterval(60)
        )
        let served = try await rotated.request(.GET, "\(path)?\(old.query)", token: nil)
        let fresh = try await rotated.request(.GET, "/internal/v1/media/\(media["id"] as? String ?? "")")
        await rotated.stop()
        #expect(served.status == 200)
        #expect((fresh.json["original_url"] as? String ?? "").contains("kid=u2"), "the newest key signs")
    }

    @Test func headAgreesWithGetThroughTheGateway() async throws {
        let media = try await readyPhoto()
        let id = media["id"] as? String ?? ""
        let urls: [(String, [(String, String)])] = [
            (media["original_url"] as? String ?? "", []),
            (media["original_url"] as? String ?? "", [("Range", "bytes=100-199")]),
            ("/m/\(id)/v1/w160", [("Accept", "image/webp")]),
            ("/m/\(id)/v1/w160.jpg", [("If-None-Match", "*")]),
            ("/m/\(id)/v1/missing.jpg", []),
        ]
        for (url, headers) in urls {
            let full = try await get(url, headers)
            let head = try await get(url, headers, method: .HEAD)
            #expect(head.status == full.status, "\(url)")
            #expect(head.body.isEmpty)
            func fields(_ reply: TestGateway.Reply) -> [String] {
                // every answer names its own request
                reply.headers.filter { !["date", "x-request-id"].contains($0.name.lowercased()) }.map { "\($0.name.lowercased()): \($0.value)" }
                    .sorted()
            }
            #expect(fields(head) == fields(full), "\(url)")
        }
    }

    @Test func aNewRenditionVersionGivesNewURLsAndRetiresTheOldOnes() async throws {
        let media = try await readyPhoto()
        let id = try #require(MediaID(media["id"] as? String ?? ""))
        let oldURL = try #require((media["renditions"] as? [[String: Any]])?.first { $0["name"] as? String == "w160.jpg" }?["url"] as? String)
        #expect(try await get(oldURL).status == 200)
        // what a reprocess under MEDIAGW_RENDITION_VERSION=v2 records: objects under v2 keys, rows pointing at them, v1 gone
        let store = gateway.isolation.blobs
        let database = gateway.isolation.metadata.database
        for rendition in try await gateway.isolation.metadata.renditions(of: id) {
            let bytes = try await store.read(rendition.location, range: nil).collect(upTo: 8 << 20)
            let newKey = rendition.location.key.replacingOccurrences(of: "/v1/", with: "/v2/")
            try await store.write(ObjectLocation(pool: rendition.location.pool, key: newKey), bytes: bytes, mode: .replace)
            try await database.client.query("UPDATE renditions SET object_key = \(newKey) WHERE media_id = \(id.uuid) AND name = \(rendition.name)")
            try await store.remove(rendition.location)
        }
        let updated = try await gateway.request(.GET, "/internal/v1/media/\(id)")
        let newURL = try #require((updated.json["renditions"] as? [[String: Any]])?.first { $0["name"] as? String == "w160.jpg" }?["url"] as? String)
        #expect(newURL == oldURL.replacingOccurrences(of: "/v1/", with: "/v2/"))
        #expect(try await get(newURL).status == 200)
        // the old URL stops working once the lookup cache (5 s) lets go of it
        try await eventually { try await get(oldURL).status == 404 }
    }
}
