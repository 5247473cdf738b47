import Foundation
import HTTPTypes
import MediaCore
import Testing

@testable import MediaHTTP

/// The pure rules behind the origin's headers: byte ranges, entity tags, HTTP dates, `Accept`.
@Suite struct OriginHeaderRulesTests {
    @Test(arguments: [
        (nil as String?, RangeRequest.whole),
        ("bytes=0-0", .single(0..<1)),
        ("bytes=0-99", .single(0..<100)),
        ("BYTES = 10-", .single(10..<1000)),
        ("bytes=-1", .single(999..<1000)),
        ("bytes=-5000", .single(0..<1000)),
        ("bytes=990-5000", .single(990..<1000)),
        ("bytes=999-999", .single(999..<1000)),
        ("bytes=0-99999999999999999999999", .single(0..<1000)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=1000-1000, 2000-", .unsatisfiable),
        ("bytes=0-1,3-4", .several),
        ("bytes=0-1, 5000-", .several),
        ("bytes=5-1", .whole),
        ("bytes=a-b", .whole),
        ("bytes=1-2-3", .whole),
        ("bytes=", .whole),
        ("bytes=,", .whole),
        ("pages=1-2", .whole),
        ("0-10", .whole),
        ("bytes=+1-2", .whole),
    ])
    func rangeHeadersAreEvaluatedForAThousandByteObject(_ header: String?, _ expected: RangeRequest) {
        #expect(RangeRequest.evaluate(header, size: 1000) == expected)
    }

    @Test func tooManyRangesAreAnsweredWithTheWholeObject() {
        let header = "bytes=" + (0..<40).map { "\($0 * 2)-\($0 * 2)" }.joined(separator: ",")
        #expect(RangeRequest.evaluate(header, size: 1000) == .whole)
    }

    @Test func anEmptyObjectSatisfiesNoRange() {
        #expect(RangeRequest.evaluate("bytes=0-", size: 0) == .unsatisfiable)
        #expect(RangeRequest.evaluate("bytes=-10", size: 0) == .unsatisfiable)
    }

    @Test func entityTagListsCompareWeaklyForIfNoneMatchAndStronglyForIfMatch() {
        let etag = "\"abc\""
        #expect(EntityTags.list("\"abc\"", matches: etag, weak: true))
        #expect(EntityTags.list("W/\"abc\"", matches: etag, weak: true))
        #expect(!EntityTags.list("W/\"abc\"", matches: etag, weak: false))
        #expect(EntityTags.list("\"x\", \"abc\"", matches: etag, weak: false))
        #expect(EntityTags.list(" * ", matches: etag, weak: false))
        #expect(!EntityTags.list("\"abcd\"", matches: etag, weak: true))
        #expect(!EntityTags.list("abc", matches: etag, weak: true), "unquoted tags are not tags")
    }

    @Test func httpDatesAreWrittenAsIMFFixdateAndReadInAllThreeFormats() throws {
        let date = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(HTTPDate.format(date) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777.9)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        for text in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            #expect(HTTPDate.parse(text) == date, "\(text)")
        }
        for text in [
            "", "yesterday", "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT", String(repeating: "x", count: 100),
        ] {
            #expect(HTTPDate.parse(text) == nil, "\(text)")
        }
        #expect(HTTPDate.parse("Thursday, 01-Jan-26 00:00:00 GMT") == Date(timeIntervalSince1970: 1_767_225_600))
    }

    @Test(arguments: [
        ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", true),
        ("image/webp", true),
        ("IMAGE/WEBP;q=0.5", true),
        ("image/webp;q=0", false),
        ("image/webp; q=0.0", false),
        ("*/*", false),
        ("image/*", false),
        ("image/jpeg,image/png", false),
        ("", false),
    ])
    func webPIsChosenOnlyWhenAcceptNamesIt(_ accept: String, _ expected: Bool) {
        #expect(ContentNegotiation.acceptsWebP(accept) == expected)
    }

    @Test func preconditionsFollowTheOrderOfRFC9110() throws {
        let etag = "\"abc\""
        let modified = Date(timeIntervalSince1970: 1_000_000)
        func status(_ fields: [(HTTPField.Name, String)]) -> HTTPResponse.Status? {
            var headers = HTTPFields()
            for (name, value) in fields { headers[name] = value }
            return OriginHeaders.preconditionStatus(headers, etag: etag, lastModified: modified)
        }
        let later = HTTPDate.format(modified.addingTimeInterval(60))
        let earlier = HTTPDate.format(modified.addingTimeInterval(-60))
        #expect(status([]) == nil)
        #expect(status([(.ifMatch, "\"zzz\""), (.ifNoneMatch, etag)]) == .preconditionFailed, "If-Match first")
        #expect(status([(.ifMatch, etag), (.ifUnmodifiedSince, earlier)]) == nil, "If-Unmodified-Since only without If-Match")
        #expect(status([(.ifUnmodifiedSince, earlier)]) == .preconditionFailed)
        #expect(status([(.ifNoneMatch, "\"zzz\""), (.ifModifiedSince, later)]) == nil, "If-Modified-Since only without If-None-Match")
        #expect(status([(.ifModifiedSince, later)]) == .notModified)
        #expect(status([(.ifModifiedSince, earlier)]) == nil)
    }
}
