import Foundation
import MediaTesting
import Testing

/// A real `mediagw serve` with `MEDIAGW_LOG_FORMAT=json`: everything it writes to standard error, its
/// processors' lines included, is JSON objects a collector can parse, with the request's id on its lines.
@Suite struct JSONLogTests {
    @Test func aGatewayLoggingJSONWritesOnlyObjectsWithTheRequestIDs() async throws {
        let slice = try await Isolation.suite("JSONLog")
        let gateway = try await GatewayProcess.start(slice, ["MEDIAGW_LOG_FORMAT": "json", "MEDIAGW_LOG_LEVEL": "debug"])
        let set = try await gateway.openSet()
        let reply = try await TestGateway.Reply.upload(gateway.baseURL, set, [("a.jpg", try Corpus.bytes("images/orientation-6.jpg"))])
        #expect(reply.status == 201)
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)

        let lines = gateway.log.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count >= 5, "\(gateway.log)")
        var objects: [[String: Any]] = []
        for line in lines {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("not a JSON object: \(line)")
                continue
            }
            #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(line)")
            objects.append(object)
        }
        #expect(objects.contains { $0["http.port"] as? String == String(gateway.port) })
        #expect(objects.contains { ($0["ceph.address"] as? String)?.contains("/") == true })
        #expect(objects.contains { ($0["hb.request.id"] as? String)?.isEmpty == false })
        // the access line of the upload: the route's template (never the id), the status the client got
        let access = objects.first { ($0["http.path"] as? String)?.hasSuffix("/\(set.id)/media") == true }
        #expect(access?["http.status"] as? String == "201")
        #expect((access?["http.route"] as? String)?.hasPrefix("/v1/upload-sets/") == true)
        #expect((access?["http.route"] as? String)?.contains(set.id) == false)
    }
}
