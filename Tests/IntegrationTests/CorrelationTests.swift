import AsyncHTTPClient
import Foundation
import MediaTesting
import NIOCore
import NIOHTTP1
import Testing

/// `mediagw correlate` on what a real gateway process recorded: one upload request of three files, one of
/// which fails processing and one of which is deleted and purged from a real nginx edge, is found whole from
/// each of its ids.
@Suite struct CorrelationTests {
    @Test func anUploadOfThreeFilesIsFoundWholeFromEachOfItsIds() async throws {
        let listen = "127.0.0.1:\(try CDNEdgeTests.freePort())"
        let isolation = try await Isolation.suite("Correlation")
        let gateway = try await GatewayProcess.start(
            isolation,
            [
                "MEDIAGW_CORRELATION": "true", "MEDIAGW_CORRELATION_FLUSH_INTERVAL": "100ms", "MEDIAGW_HOST_NAME": "gw-correlate",
                "MEDIAGW_CDN_PURGE_URLS": "http://\(listen)", "MEDIAGW_CDN_PURGE_INTERVAL": "200ms", "MEDIAGW_WORKERS": "1",
                // traced, to a collector that is not there: the trace ids are made all the same
                "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(try CDNEdgeTests.freePort())",
            ]
        )
        let edge = try await CDNEdgeTests.Edge.start(origin: "127.0.0.1:\(gateway.port)", listen: listen)
        defer { edge.stop() }

        let set = try await gateway.openSet()
        let traceID = TracingTests.randomHex(bytes: 16)
        let reply = try await TestGateway.Reply.upload(
            gateway.baseURL,
            set,
            [
                ("kept.jpg", try Corpus.bytes("images/orientation-1.jpg")),
                // a JPEG this libvips cannot decode: stored, then its processing fails for good
                ("undecodable.jpg", try Corpus.bytes("images/edge-jpeg-12bit.jpg")),
                ("deleted.jpg", try Corpus.bytes("images/orientation-3.jpg")),
            ],
            headers: [("traceparent", "00-\(traceID)-\(TracingTests.randomHex(bytes: 8))-01"), ("X-Request-Id", "support-case-42")]
        )
        #expect(reply.status == 201, "\(reply.text)")
        let requestID = try #require(reply.headers["X-Request-Id"].first, "every answer names its request")
        let ids = (reply.json["media"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        try #require(ids.count == 3, "\(reply.text)")
        let (kept, undecodable, deleted) = (ids[0], ids[1], ids[2])
        #expect(try await gateway.settled(kept)["state"] as? String == "ready")
        #expect(try await gateway.settled(undecodable)["state"] as? String == "failed")
        #expect(try await gateway.settled(deleted)["state"] as? String == "ready")
        #expect(try await internalRequest(gateway, .DELETE, "/internal/v1/media/\(deleted)") == 204)
        #expect(try await internalRequest(gateway, .POST, "/internal/v1/upload-sets/\(set.id)/commit") == 200)

        // the purge of the deleted item is the last link to come
        let environment = isolation.environment
        var story: [String: Any] = [:]
        try await eventually(within: .seconds(30)) {
            story = try await Self.correlate(requestID, environment)
            return Self.links(story).contains {
                $0["relation"] as? String == "purged from edge \("http://\(listen)")" && $0["state"] as? String == "purged"
            }
        }
        let links = Self.links(story)
        let nodes = Set(story["ids"] as? [String] ?? [])

        // the story has every kind of id, with states, errors, hosts and durations
        #expect(nodes.isSuperset(of: ["request:\(requestID)", "request:support-case-42", "trace:\(traceID)", "set:\(set.id)"]))
        #expect(nodes.isSuperset(of: ids.map { "media:\($0)" }))
        let jobs = nodes.filter { $0.hasPrefix("job:") }
        let events = nodes.filter { $0.hasPrefix("event:") }
        #expect(jobs.count == 3, "one job each: \(jobs)")
        // media.stored ×3, media.ready ×2, media.failed, media.deleted, upload_set.committed
        let eventTypes = links.filter { ($0["to"] as? String)?.hasPrefix("event:") == true }.compactMap { $0["relation"] as? String }.sorted()
        #expect(
            eventTypes == [
                "media.deleted", "media.failed", "media.ready", "media.ready", "media.stored", "media.stored", "media.stored",
                "upload_set.committed",
            ]
        )
        #expect(events.count == 8)
        let commitEvent = links.first { $0["relation"] as? String == "upload_set.committed" }
        #expect(commitEvent?["from"] as? String == "set:\(set.id)")
        let failedAttempt = links.first {
            $0["to"] as? String == "media:\(undecodable)" && ($0["relation"] as? String)?.hasPrefix("processing attempt") == true
        }
        #expect(failedAttempt?["state"] as? String == "failed")
        #expect((failedAttempt?["error"] as? String)?.isEmpty == false, "the failure says why")
        let stored = links.filter { $0["from"] as? String == "request:\(requestID)" && $0["to"] as? String == "media:\(kept)" }
        #expect(stored.first?["state"] as? String == "201" && stored.first?["duration_ms"] != nil)
        #expect((stored.first?["relation"] as? String)?.contains("/v1/upload-sets/{id}/media") == true, "named by the route template")
        #expect(links.contains { $0["to"] as? String == "media:\(deleted)" && ($0["relation"] as? String)?.hasPrefix("deleted by DELETE") == true })
        #expect(links.allSatisfy { $0["host"] as? String == "gw-correlate" })
        let times = links.compactMap { $0["at"] as? String }
        #expect(times == times.sorted(), "in time order")
        #expect(nodes.count >= 20, "\(nodes.sorted())")

        // the same story from each of its ids, bare as a support engineer would paste it
        for node in nodes.sorted() {
            let bare = String(node.drop { $0 != ":" }.dropFirst())
            let found = try await Self.correlate(bare, environment)
            #expect(Set(found["ids"] as? [String] ?? []) == nodes, "from \(node)")
        }
        // and the text a person reads
        let text = try await TestStack.run(TestStack.mediagwPath, ["correlate", undecodable], environment: environment)
        #expect(text.status == 0 && text.output.contains("media:\(undecodable) failed"), "\(text.output)")
        let unknown = try await TestStack.run(TestStack.mediagwPath, ["correlate", UUID().uuidString], environment: environment)
        #expect(unknown.status == 1 && unknown.output.contains("nothing is linked"), "\(unknown.output)")

        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }

    static func correlate(_ id: String, _ environment: [String: String]) async throws -> [String: Any] {
        let run = try await TestStack.run(TestStack.mediagwPath, ["correlate", id, "--json"], environment: environment)
        guard run.status == 0 else { return [:] }
        let json = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
    }

    static func links(_ story: [String: Any]) -> [[String: Any]] { story["links"] as? [[String: Any]] ?? [] }

    func internalRequest(_ gateway: GatewayProcess, _ method: HTTPMethod, _ path: String) async throws -> Int {
        var request = HTTPClientRequest(url: gateway.baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(TestGateway.serviceToken)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }
}
