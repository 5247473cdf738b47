import Foundation
import Logging
import MediaApp
import Synchronization
import Testing

/// `MEDIAGW_LOG_FORMAT=json`: one JSON object per line that a log collector can take as it is.
@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func objects() throws -> [[String: Any]] {
            try all.map { line in
                #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false, "one line: \(line)")
                return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
        }
    }

    func logger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        var handler = JSONLogHandler(label: "mediagw") { line in lines.lines.withLock { $0.append(line) } }
        handler.logLevel = level
        return Logger(label: "mediagw") { _ in handler }
    }

    @Test func eachEventIsOneObjectWithTheFixedFieldsAndItsDottedMetadata() throws {
        let lines = Lines()
        var logger = logger(lines)
        logger[metadataKey: "hb.request.id"] = "4f2a"
        logger.info(
            "upload refused",
            metadata: [
                "upload_set.id": "01a2", "media.ids": .array(["a", "b"]), "limits": .dictionary(["photo": "5"]), "size": .stringConvertible(42),
            ]
        )
        let objects = try lines.objects()
        #expect(objects.count == 1)
        let object = try #require(objects.first)
        #expect(object["message"] as? String == "upload refused")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "mediagw")
        #expect(object["source"] as? String == "MediaAppTests")
        #expect(object["hb.request.id"] as? String == "4f2a")
        #expect(object["upload_set.id"] as? String == "01a2")
        #expect(object["media.ids"] as? [String] == ["a", "b"])
        #expect((object["limits"] as? [String: String]) == ["photo": "5"])
        #expect(object["size"] as? String == "42")
        let time = try #require(object["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(time)")
    }

    @Test func quotesNewlinesControlCharactersAndNonASCIISurviveTheRoundTrip() throws {
        let lines = Lines()
        let message = "a \"quoted\" \\ path\nsecond line\t\u{1}\u{7F}\u{2028} — ünïcödé 📷"
        logger(lines).warning("\(message)", metadata: ["error": "\(message)"])
        let object = try #require(try lines.objects().first)
        #expect(object["message"] as? String == message)
        #expect(object["error"] as? String == message)
    }

    @Test func metadataNeverReplacesTheFixedFields() throws {
        let lines = Lines()
        logger(lines).error("the real message", metadata: ["message": "spoofed", "level": "trace", "time": "never"])
        let object = try #require(try lines.objects().first)
        #expect(object["message"] as? String == "the real message")
        #expect(object["level"] as? String == "error")
        #expect(object["time"] as? String != "never")
    }

    @Test func eventsBelowTheLevelAreNotWritten() throws {
        let lines = Lines()
        let logger = logger(lines, level: .warning)
        logger.info("quiet")
        logger.debug("quieter")
        logger.warning("heard")
        #expect(try lines.objects().map { $0["message"] as? String } == ["heard"])
    }

    @Test func theFormatIsTextUnlessSetAndAnythingElseIsRefused() throws {
        #expect(try LoggingConfiguration(environment: EnvironmentReader([:])).format == .text)
        #expect(try LoggingConfiguration(environment: EnvironmentReader(["MEDIAGW_LOG_FORMAT": "JSON"])).format == .json)
        #expect {
            try LoggingConfiguration(environment: EnvironmentReader(["MEDIAGW_LOG_FORMAT": "xml"]))
        } throws: { error in
            (error as? ConfigurationError)?.message.hasPrefix("MEDIAGW_LOG_FORMAT=xml") == true
        }
    }
}
