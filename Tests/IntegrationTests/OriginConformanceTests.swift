import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MediaCore
import MediaHTTP
import MediaTesting
import NIOCore
import RadosStore
import Testing

/// The conformance suite of the origin's GET path: every validator, conditional and range rule, checked
/// over real HTTP against ``OriginResponder`` serving an object of a ``BlobStore``. It runs against
/// RADOS on the real stack; another store runs the same suite by providing its own `Fixture`.
@Suite struct OriginConformanceTests {
    /// An object in a store, and the server that serves it at `/object` with the origin's responder.
    struct Fixture<Objects: BlobStore>: Sendable {
        let store: Objects
        let object: OriginObject
        let content: [UInt8]

        /// Writes `content` and describes it as the origin would.
        static func make(
            store: Objects,
            pool: String,
            content: [UInt8],
            cache: OriginCachePolicy,
            variesByAccept: Bool = false
        ) async throws -> Fixture {
            let location = ObjectLocation(pool: pool, key: uniqueKey("origin-conformance"))
            if content.isEmpty {
                try await store.write(location, bytes: ByteBuffer(), mode: .createExclusive)
            } else {
                _ = try await store.write(
                    location,
                    from: AsyncStream {
                        $0.yield(ByteBuffer(bytes: content))
                        $0.finish()
                    },
                    mode: .createExclusive
                )
            }
            let object = OriginObject(
                location: location,
                size: Int64(content.count),
                mime: "video/mp4",
                sha256: SHA256.hash(data: content).map { String(format: "%02x", $0) }.joined(),
                lastModified: Date(timeIntervalSince1970: 1_790_000_000.75),
                cache: cache,
                variesByAccept: variesByAccept,
                filename: "clip.mp4"
            )
            return Fixture(store: store, object: object, content: content)
        }

        /// Runs `body` against a live server on a free port. The default client sends its requests one after
        /// another on one connection; `.ahc()` opens a connection per concurrent request.
        func withServer(
            readAhead: Int = 32,
            client setup: TestingSetup = .live,
            _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
        ) async throws {
            let router = Router()
            let responder = OriginResponder(blobs: store, readAhead: readAhead)
            let object = self.object
            for method in [HTTPRequest.Method.get, .head] {
                router.on("/object", method: method) { request, context in
                    try await responder.respond(to: request, object: object, logger: context.logger)
                }
            }
            try await Application(router: router).test(setup) { client in try await body(client) }
        }

        func remove() async { try? await store.remove(object.location) }
    }

    static let size = 3 * (1 << 20) + 123  // more than three RADOS read chunks

    func fixture(
        cache: OriginCachePolicy = .publicImmutable(maxAge: 31_536_000),
        variesByAccept: Bool = false
    ) async throws -> Fixture<RadosBlobStore> {
        try await Fixture.make(
            store: try await Isolation.suite("OriginConformance").blobs,
            pool: try TestStack.pools().video,
            content: patternBytes(count: Self.size, seed: 55),
            cache: cache,
            variesByAccept: variesByAccept
        )
    }

    /// GET `/object` with the given headers.
    func get(
        _ client: any TestClientProtocol,
        _ headers: [(HTTPField.Name, String)] = [],
        method: HTTPRequest.Method = .get
    ) async throws -> TestResponse {
        var fields = HTTPFields()
        for (name, value) in headers { fields[name] = value }
        return try await client.execute(uri: "/object", method: method, headers: fields)
    }

    /// No read-ahead permit, one shared by concurrent downloads, or plenty: every body is whole and in order.
    /// The downloads run at once, each on its own connection (one pipelined connection would serve them one
    /// after another, and the last one's deadline would count the four before it).
    @Test(arguments: [0, 1, 32])
    func bodiesAreByteIdenticalWhateverTheReadAhead(_ readAhead: Int) async throws {
        let fixture = try await fixture()
        try await fixture.withServer(readAhead: readAhead, client: .ahc()) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let response = try await get(client)
                        #expect(response.status == .ok)
                        #expect(Array(response.body.readableBytesView) == fixture.content)
                    }
                }
                group.addTask {
                    let range = 300_000..<2_900_000  // across several chunks
                    let response = try await get(client, [(.range, "bytes=\(range.lowerBound)-\(range.upperBound - 1)")])
                    #expect(response.status == .partialContent)
                    #expect(Array(response.body.readableBytesView) == Array(fixture.content[range]))
                }
                try await group.waitForAll()
            }
        }
        await fixture.remove()
    }

    @Test func aFullGetReturnsTheObjectWithEveryHeaderACDNNeeds() async throws {
        let fixture = try await fixture()
        try await fixture.withServer { client in
            let response = try await get(client)
            #expect(response.status == .ok)
            #expect(Array(response.body.readableBytesView) == fixture.content)
            #expect(response.headers[.contentLength] == "\(Self.size)")
            #expect(response.headers[.contentType] == "video/mp4")
            #expect(response.headers[.acceptRanges] == "bytes")
            #expect(response.headers[.eTag] == "\"\(fixture.object.sha256)\"")
            #expect(response.headers[.lastModified] == "Mon, 21 Sep 2026 14:13:20 GMT")
            #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
            #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(response.headers[.contentDisposition] == "inline; filename=\"clip.mp4\"")
            #expect(response.headers[.vary] == nil, "nothing was negotiated")
        }
        await fixture.remove()
    }

    @Test func singleRangesAreServedWith206AndTheirContentRange() async throws {
        let fixture = try await fixture()
        let size = Self.size
        // closed, crossing read chunks, open-ended, suffix, past the end (cut at the end)
        let cases: [(String, Range<Int>)] = [
            ("bytes=0-99", 0..<100),
            ("bytes=1048570-2097160", 1_048_570..<2_097_161),
            ("bytes=3145000-", 3_145_000..<size),
            ("bytes=-500", size - 500..<size),
            ("bytes=3145700-99999999", 3_145_700..<size),
            ("bytes=-99999999", 0..<size),
        ]
        try await fixture.withServer { client in
            for (header, expected) in cases {
                let response = try await get(client, [(.range, header)])
                #expect(response.status == .partialContent, "\(header)")
                #expect(response.headers[.contentRange] == "bytes \(expected.lowerBound)-\(expected.upperBound - 1)/\(size)", "\(header)")
                #expect(response.headers[.contentLength] == "\(expected.count)", "\(header)")
                #expect(Array(response.body.readableBytesView) == Array(fixture.content[expected]), "\(header)")
            }
        }
        await fixture.remove()
    }

    @Test func unsatisfiableRangesAre416WithTheSize() async throws {
        let fixture = try await fixture()
        try await fixture.withServer { client in
            for header in ["bytes=\(Self.size)-", "bytes=99999999-99999999", "bytes=-0"] {
                let response = try await get(client, [(.range, header)])
                #expect(response.status == .rangeNotSatisfiable, "\(header)")
                #expect(response.headers[.contentRange] == "bytes */\(Self.size)", "\(header)")
                #expect(response.body.readableBytes == 0)
            }
        }
        await fixture.remove()
    }

    @Test func severalRangesOrAnUnreadableRangeGetTheWholeObject() async throws {
        let fixture = try await fixture()
        try await fixture.withServer { client in
            for header in ["bytes=0-9,20-29", "bytes=0-9, -5", "bytes=abc", "bytes=9-1", "items=0-9", "bytes="] {
                let response = try await get(client, [(.range, header)])
                #expect(response.status == .ok, "\(header)")
                #expect(response.headers[.contentRange] == nil, "\(header)")
                #expect(response.body.readableBytes == Self.size, "\(header)")
            }
        }
        await fixture.remove()
    }

    @Test func ifNoneMatchAnswers304WithTheValidatorsAndNoBody() async throws {
        let fixture = try await fixture()
        let etag = "\"\(fixture.object.sha256)\""
        try await fixture.withServer { client in
            for header in [etag, "W/\(etag)", "\"other\", \(etag)", "*"] {
                let response = try await get(client, [(.ifNoneMatch, header)])
                #expect(response.status == .notModified, "\(header)")
                #expect(response.headers[.eTag] == etag)
                #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(response.headers[.lastModified] != nil)
                #expect(response.body.readableBytes == 0)
            }
            let changed = try await get(client, [(.ifNoneMatch, "\"0000\"")])
            #expect(changed.status == .ok)
            #expect(changed.body.readableBytes == Self.size)
        }
        await fixture.remove()
    }

    @Test func ifModifiedSinceAnswers304UnlessTheObjectIsNewer() async throws {
        let fixture = try await fixture()
        try await fixture.withServer { client in
            for date in [
                "Mon, 21 Sep 2026 14:13:20 GMT", "Tue, 22 Sep 2026 00:00:00 GMT", "Tuesday, 22-Sep-26 00:00:00 GMT", "Tue Sep 22 00:00:00 2026",
            ] {
                do {
                    let status = try await get(client, [(.ifModifiedSince, date)]).status
                    #expect(status == .notModified, "\(date)")
                }
            }
            do {
                let status = try await get(client, [(.ifModifiedSince, "Mon, 21 Sep 2026 14:13:19 GMT")]).status
                #expect(status == .ok)
            }
            do {
                let status = try await get(client, [(.ifModifiedSince, "not a date")]).status
                #expect(status == .ok)
            }
            // If-None-Match decides alone when both are present
            let both = try await get(client, [(.ifNoneMatch, "\"0000\""), (.ifModifiedSince, "Tue, 22 Sep 2026 00:00:00 GMT")])
            #expect(both.status == .ok)
        }
        await fixture.remove()
    }

    @Test func ifRangeServesTheRangeOnlyForTheCurrentObject() async throws {
        let fixture = try await fixture()
        let etag = "\"\(fixture.object.sha256)\""
        try await fixture.withServer { client in
            let current = try await get(client, [(.range, "bytes=10-19"), (.ifRange, etag)])
            #expect(current.status == .partialContent)
            #expect(Array(current.body.readableBytesView) == Array(fixture.content[10..<20]))
            let byDate = try await get(client, [(.range, "bytes=10-19"), (.ifRange, "Mon, 21 Sep 2026 14:13:20 GMT")])
            #expect(byDate.status == .partialContent)
            for stale in ["\"0000\"", "W/\(etag)", "Sun, 20 Sep 2026 00:00:00 GMT"] {
                let response = try await get(client, [(.range, "bytes=10-19"), (.ifRange, stale)])
                #expect(response.status == .ok, "\(stale)")
                #expect(response.body.readableBytes == Self.size, "\(stale)")
            }
        }
        await fixture.remove()
    }

    @Test func ifMatchAndIfUnmodifiedSinceFailWith412() async throws {
        let fixture = try await fixture()
        let etag = "\"\(fixture.object.sha256)\""
        try await fixture.withServer { client in
            do {
                let status = try await get(client, [(.ifMatch, "\"0000\"")]).status
                #expect(status == .preconditionFailed)
            }
            do {
                let status = try await get(client, [(.ifMatch, "W/\(etag)")]).status
                #expect(status == .preconditionFailed, "If-Match compares strongly")
            }
            do {
                let status = try await get(client, [(.ifMatch, etag)]).status
                #expect(status == .ok)
            }
            do {
                let status = try await get(client, [(.ifUnmodifiedSince, "Sun, 20 Sep 2026 00:00:00 GMT")]).status
                #expect(status == .preconditionFailed)
            }
            do {
                let status = try await get(client, [(.ifUnmodifiedSince, "Tue, 22 Sep 2026 00:00:00 GMT")]).status
                #expect(status == .ok)
            }
        }
        await fixture.remove()
    }

    @Test func headAgreesWithGetOnStatusAndHeadersAndSendsNoBody() async throws {
        let fixture = try await fixture()
        let etag = "\"\(fixture.object.sha256)\""
        let requests: [[(HTTPField.Name, String)]] = [
            [], [(.range, "bytes=5-50")], [(.range, "bytes=-10")], [(.range, "bytes=\(Self.size)-")],
            [(.ifNoneMatch, etag)], [(.ifMatch, "\"0000\"")], [(.range, "bytes=0-1,5-6")],
        ]
        try await fixture.withServer { client in
            for headers in requests {
                let full = try await get(client, headers)
                let head = try await get(client, headers, method: .head)
                #expect(head.status == full.status, "\(headers)")
                #expect(head.body.readableBytes == 0)
                var getFields = full.headers
                var headFields = head.headers
                getFields[.date] = nil
                headFields[.date] = nil
                #expect(headFields == getFields, "\(headers)")
            }
        }
        await fixture.remove()
    }

    @Test func privateAndNegotiatedObjectsSayHowTheyMayBeCached() async throws {
        let fixture = try await fixture(cache: .privateOnly(maxAge: 120), variesByAccept: true)
        try await fixture.withServer { client in
            for response in [try await get(client), try await get(client, [(.ifNoneMatch, "\"\(fixture.object.sha256)\"")])] {
                #expect(response.headers[.cacheControl] == "private, max-age=120")
                #expect(response.headers[.vary] == "Accept")
            }
        }
        await fixture.remove()
    }

    @Test func anEmptyObjectIsServedAndHasNoSatisfiableRange() async throws {
        let store = try await Isolation.suite("OriginConformance").blobs
        let fixture = try await Fixture.make(store: store, pool: try TestStack.pools().video, content: [], cache: .publicImmutable(maxAge: 60))
        try await fixture.withServer { client in
            let whole = try await get(client)
            #expect(whole.status == .ok)
            #expect(whole.headers[.contentLength] == "0")
            do {
                let status = try await get(client, [(.range, "bytes=0-")]).status
                #expect(status == .rangeNotSatisfiable)
            }
        }
        await fixture.remove()
    }
}
