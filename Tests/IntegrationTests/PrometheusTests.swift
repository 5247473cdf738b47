import AsyncHTTPClient
import Foundation
import MediaTesting
import NIOCore
import Testing

/// The operator's side of the metrics: the rules in `Deploy/prometheus` are valid and behave as their unit
/// tests say (`promtool`), and a real Prometheus scraping a real gateway finds the series they use.
@Suite struct PrometheusTests {
    static var directory: URL { TestStack.root.appendingPathComponent("Deploy/prometheus") }

    @Test func theRulesAndTheConfigurationAreValidAndTheRuleTestsPass() async throws {
        let rules = Self.directory.appendingPathComponent("mediagw-rules.yml").path
        let check = try await TestStack.run("/usr/bin/promtool", ["check", "rules", rules])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("SUCCESS: 21 rules found"), "\(check.output)")
        let config = try await TestStack.run("/usr/bin/promtool", ["check", "config", Self.directory.appendingPathComponent("prometheus.yml").path])
        #expect(config.status == 0, "\(config.output)")
        let tests = try await TestStack.run(
            "/usr/bin/promtool",
            ["test", "rules", Self.directory.appendingPathComponent("tests/mediagw-rules.test.yml").path]
        )
        #expect(tests.status == 0 && tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    @Test func aRealPrometheusScrapesTheGatewayAndFindsTheSeriesTheRulesUse() async throws {
        let slice = try await Isolation.suite("Prometheus")
        let gateway = try await GatewayProcess.start(slice, ["MEDIAGW_MONITOR_INTERVAL": "1s"])
        #expect(try await get(gateway.baseURL + "/readyz").status == 200)
        let set = try await gateway.openSet()
        #expect(try await TestGateway.Reply.upload(gateway.baseURL, set, [("a.jpg", try Corpus.bytes("images/orientation-6.jpg"))]).status == 201)

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let port = Int.random(in: 30_000..<40_000)
        let configuration = """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: ["\(Self.directory.appendingPathComponent("mediagw-rules.yml").path)"]
            scrape_configs:
              - job_name: mediagw
                static_configs: [{targets: ["127.0.0.1:\(gateway.port)"]}]
            """
        try configuration.write(to: work.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = [
            "--config.file=\(work.appendingPathComponent("prometheus.yml").path)",
            "--storage.tsdb.path=\(work.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)",
        ]
        let log = try FileHandle(
            forWritingTo: {
                let url = work.appendingPathComponent("log")
                FileManager.default.createFile(atPath: url.path, contents: nil)
                return url
            }()
        )
        prometheus.standardOutput = log
        prometheus.standardError = log
        try prometheus.run()
        defer { prometheus.terminate() }

        let api = "http://127.0.0.1:\(port)/api/v1"
        var found: [String: [[String: Any]]] = [:]
        let wanted = [
            "mediagw_jobs_queued", "mediagw_ready", "mediagw_pending_ledger_oldest_age_seconds", "up", "hb_requests", "mediagw_outbox_days_ahead",
            "mediagw_outbox_rotated_timestamp_seconds", "mediagw_rados_read_buffers_overdrawn_total",
        ]
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline && found.count < wanted.count {
            for query in wanted where found[query] == nil {
                guard let reply = try? await get("\(api)/query?query=\(query)"), reply.status == 200,
                    let result = ((reply.json["data"] as? [String: Any])?["result"]) as? [[String: Any]], !result.isEmpty
                else { continue }
                found[query] = result
            }
            if found.count < wanted.count { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(
            found.count == wanted.count,
            "series found: \(found.keys.sorted()); log: \((try? String(contentsOf: work.appendingPathComponent("log"), encoding: .utf8)) ?? "")"
        )
        func value(_ series: [String: Any]) -> String? { (series["value"] as? [Any])?.last as? String }
        let kinds = Set((found["mediagw_jobs_queued"] ?? []).compactMap { ($0["metric"] as? [String: String])?["kind"] })
        #expect(kinds == ["photo", "audio", "video"])
        #expect((found["mediagw_ready"] ?? []).compactMap(value) == ["1"])
        #expect((found["up"] ?? []).compactMap(value) == ["1"])
        let pools = Set((found["mediagw_pending_ledger_oldest_age_seconds"] ?? []).compactMap { ($0["metric"] as? [String: String])?["pool"] })
        #expect(pools.count == 4, "\(pools)")
        // the upload's route is a template, never an id
        let routes = (found["hb_requests"] ?? []).compactMap { ($0["metric"] as? [String: String])?["http_route"] }
        #expect(routes.contains("/v1/upload-sets/{id}/media"), "\(routes)")
        #expect(!routes.contains { $0.contains(set.id) })

        let rules = try await get("\(api)/rules")
        #expect(rules.text.contains("MediagwJobQueueStuck") && rules.text.contains("mediagw:upload_errors:ratio_rate5m"))
    }

    private func get(_ url: String) async throws -> TestGateway.Reply {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 8 << 20)
        return TestGateway.Reply(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
    }
}
