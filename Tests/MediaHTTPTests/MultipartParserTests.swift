import MediaCore
import NIOCore
import Testing

@testable import MediaHTTP

/// A parsed part: its headers and its body bytes glued together.
struct ParsedPart: Equatable {
    var headers: MultipartPartHeaders
    var body: [UInt8]
}

/// Feeds `body` to a parser in the given chunk sizes and collects the parts.
func parse(
    _ body: [UInt8],
    boundary: String = "XyZ-boundary",
    chunks: [Int]? = nil,
    limits: MultipartLimits = MultipartLimits(maxParts: 100)
) throws -> [ParsedPart] {
    var parser = try MultipartParser(boundary: boundary, limits: limits)
    var events: [MultipartEvent] = []
    var offset = 0
    var sizes = chunks ?? [body.count]
    while offset < body.count {
        let size = max(1, min(sizes.isEmpty ? body.count : sizes.removeFirst(), body.count - offset))
        try parser.feed(ByteBuffer(bytes: body[offset..<offset + size]), into: &events)
        offset += size
    }
    try parser.finish()
    var parts: [ParsedPart] = []
    for event in events {
        switch event {
        case .headers(let headers): parts.append(ParsedPart(headers: headers, body: []))
        case .body(let bytes): parts[parts.count - 1].body += Array(bytes.readableBytesView)
        case .partEnd, .end: continue
        }
    }
    return parts
}

func multipart(
    _ parts: [(name: String, filename: String?, body: [UInt8])],
    boundary: String = "XyZ-boundary",
    preamble: String = "",
    epilogue: String = ""
) -> [UInt8] {
    var out = Array(preamble.utf8)
    for (index, part) in parts.enumerated() {
        out += Array(((index == 0 && preamble.isEmpty) ? "--\(boundary)\r\n" : "\r\n--\(boundary)\r\n").utf8)
        var disposition = "Content-Disposition: form-data; name=\"\(part.name)\""
        if let filename = part.filename { disposition += "; filename=\"\(filename)\"" }
        out += Array("\(disposition)\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        out += part.body
    }
    out += Array("\r\n--\(boundary)--\(epilogue)".utf8)
    return out
}

@Suite struct MultipartParserTests {
    @Test func partsAndTheirHeadersAreParsed() throws {
        let body = multipart([("a", "one.jpg", Array("first".utf8)), ("b", nil, Array("second".utf8))])
        let parts = try parse(body)
        #expect(parts.count == 2)
        #expect(parts[0].headers == MultipartPartHeaders(name: "a", filename: "one.jpg", contentType: "application/octet-stream"))
        #expect(parts[0].body == Array("first".utf8))
        #expect(parts[1].headers.filename == nil)
        #expect(parts[1].body == Array("second".utf8))
    }

    @Test func anyChunkingGivesTheSameParts() throws {
        // bodies full of near-delimiters: CRs, CRLF--, partial boundaries
        var rng = SystemRandomNumberGenerator()
        let tricky = Array("\r\r\n\r\n-\r\n--\r\n--XyZ-boundar\r\n--XyZ-boundaryX".utf8)
        for round in 0..<200 {
            let bodies = (0..<3).map { _ in
                (0..<Int.random(in: 0...300, using: &rng)).map { _ in
                    Bool.random(using: &rng) ? tricky.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
                }
            }
            let body = multipart(bodies.enumerated().map { ("f\($0.offset)", "f\($0.offset).bin", $0.element) })
            let whole = try parse(body)
            #expect(whole.map(\.body) == bodies, "round \(round)")
            let sizes = (0..<body.count).map { _ in Int.random(in: 1...40, using: &rng) }
            #expect(try parse(body, chunks: sizes) == whole, "round \(round)")
            #expect(try parse(body, chunks: Array(repeating: 1, count: body.count)) == whole)
        }
    }

    @Test func bodySlicesAreNotCopiesOfTheInput() throws {
        let content = [UInt8](repeating: 0x41, count: 100_000)
        var parser = try MultipartParser(boundary: "b")
        var events: [MultipartEvent] = []
        try parser.feed(ByteBuffer(bytes: multipart([("f", "f", content)], boundary: "b")), into: &events)
        let bodies = events.compactMap { if case .body(let b) = $0 { b } else { nil } }
        #expect(bodies.count == 1)
        #expect(bodies.first?.readableBytes == 100_000)
    }

    @Test func preambleEpilogueAndAPartWithoutHeadersAreHandled() throws {
        let body = Array("ignored preamble\r\n--b\r\n\r\nno headers\r\n--b--\r\nignored epilogue".utf8)
        let parts = try parse(body, boundary: "b")
        #expect(parts == [ParsedPart(headers: MultipartPartHeaders(), body: Array("no headers".utf8))])
    }

    @Test func whitespaceAfterABoundaryIsAllowed() throws {
        let body = Array("--b \t\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--b--".utf8)
        #expect(try parse(body, boundary: "b").first?.body == Array("v".utf8))
    }

    @Test func theDelimiterSearchFindsWhatANaiveSearchFinds() {
        func naive(_ needle: [UInt8], _ haystack: [UInt8]) -> Int? {
            guard needle.count <= haystack.count else { return nil }
            return (0...(haystack.count - needle.count)).first { Array(haystack[$0..<$0 + needle.count]) == needle }
        }
        var generator = SystemRandomNumberGenerator()
        var checked = 0
        for needle in [Array("\r\n--b".utf8), Array("\r\n--\(String(repeating: "x", count: 60))".utf8), [0x0D], [0x0D, 0x0A]] {
            for length in [0, 1, needle.count - 1, needle.count, 31, 32, 33, 64, 65, 100, 257] {
                // bytes from a small alphabet that includes the needle's first and last bytes: near misses abound
                let alphabet: [UInt8] = [0x0D, 0x0A, 0x2D, needle.last!, 0x41]
                let base = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
                var cases = [base]
                if length >= needle.count {
                    for offset in 0...(length - needle.count) {
                        var planted = base
                        planted.replaceSubrange(offset..<offset + needle.count, with: needle)
                        cases.append(planted)
                    }
                }
                for haystack in cases {
                    let found = haystack.withUnsafeBytes { hay in needle.withUnsafeBytes { MultipartParser.find($0, in: hay) } }
                    #expect(found == naive(needle, haystack), "needle \(needle.count) B in \(haystack)")
                    checked += 1
                }
            }
        }
        #expect(checked > 1_000)
    }

    @Test func headerNamesAndValuesLoseTheSpacesAndTabsAroundThem() throws {
        let body = Array(
            "--b\r\n \tContent-Disposition\t:  form-data ;\tname = \"f\" ; filename= a.jpg \t\r\nContent-Type:\t image/jpeg  \r\n\r\nx\r\n--b--"
                .utf8
        )
        let headers = try #require(try parse(body, boundary: "b").first).headers
        #expect(headers.name == "f")
        #expect(headers.filename == "a.jpg")
        #expect(headers.contentType == "image/jpeg")
    }

    @Test func headersThatAreNotUTF8TextAreRefused() {
        for header in [[0xFF, 0xFE], Array("X-A: b\u{0}c".utf8)] as [[UInt8]] {
            let body = Array("--b\r\n".utf8) + header + Array("\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--b--".utf8)
            #expect { try parse(body, boundary: "b") } throws: { ($0 as? RequestError)?.code == .malformedMultipart }
        }
    }

    @Test func quotedAndExtendedFilenamesAreDecoded() throws {
        let body = Array(
            "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a;b \\\"c\\\".jpg\"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name=g; filename*=UTF-8''caf%C3%A9.png\r\n\r\ny\r\n--b--"
                .utf8
        )
        let parts = try parse(body, boundary: "b")
        #expect(parts[0].headers.filename == "a;b \"c\".jpg")
        #expect(parts[1].headers.filename == "café.png")
    }

    @Test(arguments: [
        ("--b\r\nContent-Disposition: form-data; name=x\r\n\r\ntruncated", RequestError.Code.malformedMultipart),
        ("--b\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--b", .malformedMultipart),
        ("no boundary anywhere", .malformedMultipart),
        ("--bX\r\n\r\nv\r\n--b--", .malformedMultipart),
        ("--b\r\nBroken header line\r\n\r\nv\r\n--b--", .malformedMultipart),
        ("--b\r\nContent-Disposition: attachment; filename=x\r\n\r\nv\r\n--b--", .malformedMultipart),
    ])
    func malformedBodiesAreRefused(_ text: String, _ code: RequestError.Code) {
        #expect { try parse(Array(text.utf8), boundary: "b") } throws: { ($0 as? RequestError)?.code == code }
    }

    @Test func headersLargerThanTheCapAreRefused() {
        let huge = String(repeating: "x", count: 20_000)
        let body = Array("--b\r\nContent-Disposition: form-data; name=x\r\nX-Pad: \(huge)\r\n\r\nv\r\n--b--".utf8)
        #expect { try parse(body, boundary: "b", limits: MultipartLimits(maxParts: 10, maxHeaderBytes: 16 << 10)) } throws: {
            ($0 as? RequestError)?.code == .headerTooLarge
        }
        #expect { try parse(body, boundary: "b", chunks: Array(repeating: 100, count: 300)) } throws: {
            ($0 as? RequestError)?.code == .headerTooLarge
        }
    }

    @Test func morePartsThanTheCapAreRefused() throws {
        let body = multipart((0..<11).map { ("p\($0)", "f\($0)", [UInt8(0)]) })
        #expect { try parse(body, limits: MultipartLimits(maxParts: 10, maxHeaderBytes: 1024)) } throws: {
            ($0 as? RequestError)?.code == .tooManyParts
        }
        #expect(try parse(body, limits: MultipartLimits(maxParts: 11, maxHeaderBytes: 1024)).count == 11)
    }

    @Test(arguments: ["", String(repeating: "a", count: 71), "has space at end ", "bad\"quote", "tab\tinside"])
    func invalidBoundariesAreRefused(_ boundary: String) {
        #expect { _ = try MultipartParser(boundary: boundary) } throws: { ($0 as? RequestError)?.code == .malformedMultipart }
    }

    @Test func randomGarbageNeverCrashesTheParser() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in
                Bool.random(using: &rng) ? Array("\r\n-b".utf8).randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? parse(bytes, boundary: "b", chunks: (0..<50).map { _ in Int.random(in: 1...7, using: &rng) })
        }
    }
}

@Suite struct APIErrorTests {
    @Test(arguments: [
        (MediaError.Code.unauthorized, 401), (.tokenExpired, 401), (.forbidden, 403), (.urlExpired, 403), (.invalidRequest, 400),
        (.unsupportedMediaType, 415), (.tooLarge, 413), (.limitExceeded, 409), (.setCommitted, 409), (.setExpired, 410),
        (.notFound, 404), (.unavailable, 503), (.timedOut, 503), (.shuttingDown, 503), (.internal, 500), (.offsetMismatch, 409),
        (.uploadBusy, 409), (.checksumMismatch, 460), (.cursorExpired, 410),
    ])
    func everyDomainCodeHasItsStatus(_ code: MediaError.Code, _ status: Int) {
        #expect(APIError.status(for: code).code == status)
    }

    @Test(arguments: [
        (RequestError.Code.malformedMultipart, 400), (.requestTooLarge, 413), (.tooManyParts, 413), (.headerTooLarge, 431), (.methodNotAllowed, 405),
    ])
    func everyRequestCodeHasItsStatus(_ code: RequestError.Code, _ status: Int) {
        #expect(APIError.status(for: code).code == status)
    }

    @Test func everyCodeIsListedAbove() {
        #expect(MediaError.Code.allCases.count == 19)
        #expect(RequestError.Code.allCases.count == 5)
    }

    @Test func unavailableAnswersCarryRetryAfter() {
        #expect(APIError(MediaError(.unavailable, "x"), retryAfter: 7).headers[.retryAfter] == "7")
        #expect(APIError(MediaError(.notFound, "x")).headers[.retryAfter] == nil)
    }
}
