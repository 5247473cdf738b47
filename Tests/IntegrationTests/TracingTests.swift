import AsyncHTTPClient
import Foundation
import MediaTesting
import NIOCore
import Testing

/// Traces exported over OTLP/HTTP by a real `mediagw serve` process, decoded by the official
/// `opentelemetry-proto` package (PyPI) in `Tests/tracing/otlp_receiver.py`.
@Suite(.serialized) struct TracingTests {
    /// The receiver process and the JSON-lines file its decoded spans land in.
    final class Receiver: @unchecked Sendable {
        let process: Process
        let port: Int
        let spansFile: URL

        private init(process: Process, port: Int, spansFile: URL) {
            self.process = process
            self.port = port
            self.spansFile = spansFile
        }

        static func start(stall: Bool = false) async throws -> Receiver {
            guard let stack = ProcessInfo.processInfo.environment["MEDIAGW_STACK_DIR"] else {
                throw TestFailure("MEDIAGW_STACK_DIR is not set: run through Deploy/local/stack test")
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("otlp-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let portFile = directory.appendingPathComponent("port")
            let spansFile = directory.appendingPathComponent("spans.jsonl")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: stack + "/venv/bin/python")
            process.arguments =
                [TestStack.root.appendingPathComponent("Tests/tracing/otlp_receiver.py").path, "--port-file", portFile.path, "--out", spansFile.path]
                + (stall ? ["--stall"] : [])
            let log = directory.appendingPathComponent("receiver.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
            try process.run()
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if let text = try? String(contentsOf: portFile, encoding: .utf8), let port = Int(text) {
                    return Receiver(process: process, port: port, spansFile: spansFile)
                }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            process.terminate()
            throw TestFailure("the OTLP receiver did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }

        var endpoint: String { "http://127.0.0.1:\(port)" }

        /// Every span received so far.
        func spans() -> [Span] {
            let text = (try? String(contentsOf: spansFile, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]).map(Span.init)
            }
        }

        /// Waits until the spans received satisfy `done`, and returns them.
        func spans(within timeout: Duration, until done: ([Span]) -> Bool) async throws -> [Span] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let spans = spans()
                if done(spans) { return spans }
                try await Task.sleep(for: .milliseconds(200))
            }
            return spans()
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// One decoded span.
    struct Span: CustomStringConvertible {
        var json: [String: Any]
        var traceID: String { json["trace_id"] as? String ?? "" }
        var spanID: String { json["span_id"] as? String ?? "" }
        var parentID: String { json["parent_span_id"] as? String ?? "" }
        var name: String { json["name"] as? String ?? "" }
        var kind: String { json["kind"] as? String ?? "" }
        var service: String { json["service"] as? String ?? "" }
        var attributes: [String: Any] { json["attributes"] as? [String: Any] ?? [:] }
        var links: [(traceID: String, spanID: String)] {
            (json["links"] as? [[String: String]] ?? []).map { ($0["trace_id"] ?? "", $0["span_id"] ?? "") }
        }
        var description: String { "\(name) [\(kind)] \(traceID)/\(spanID) <- \(parentID)" }
    }

    static func randomHex(bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    func tracedGateway(_ receiver: Receiver, _ extra: [String: String] = [:]) async throws -> GatewayProcess {
        let slice = try await Isolation.suite("Tracing")
        return try await GatewayProcess.start(
            slice,
            [
                "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_SERVICE_NAME": "mediagw-under-test", "MEDIAGW_WORKERS": "1",
            ].merging(extra) { $1 }
        )
    }

    @Test func anUploadIsOneTraceWithItsHTTPRadosAndPostgresSpansAndItsJobLinksToIt() async throws {
        let receiver = try await Receiver.start()
        let gateway = try await tracedGateway(receiver, ["MEDIAGW_LOG_FORMAT": "json", "MEDIAGW_LOG_LEVEL": "debug"])
        let set = try await gateway.openSet()
        // the caller's trace, as an edge or a calling service would send it
        let traceID = Self.randomHex(bytes: 16)
        let callerSpan = Self.randomHex(bytes: 8)
        let reply = try await TestGateway.Reply.upload(
            gateway.baseURL,
            set,
            [("photo.jpg", try Corpus.bytes("images/orientation-6.jpg"))],
            headers: [("traceparent", "00-\(traceID)-\(callerSpan)-01")]
        )
        #expect(reply.status == 201, "\(reply.text)")
        let mediaID = try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String, "\(reply.text)")
        let media = try await gateway.settled(mediaID)
        #expect(media["state"] as? String == "ready", "\(media)")

        let spans = try await receiver.spans(within: .seconds(30)) { spans in
            spans.contains { $0.kind == "SPAN_KIND_SERVER" && $0.traceID == traceID }
                && spans.contains { $0.name == "process photo" && $0.links.contains { $0.traceID == traceID } }
                && spans.contains { $0.name == "postgresql complete_job" }
        }
        let upload = spans.filter { $0.traceID == traceID }

        // the request's span continues the caller's trace and is named after its route template
        let server = try #require(upload.first { $0.kind == "SPAN_KIND_SERVER" }, "spans: \(spans)")
        #expect(server.parentID == callerSpan, "the caller's span is the parent")
        #expect(server.name.contains("upload-sets") && !server.name.contains(set.id), "a route template, not a path: \(server.name)")
        #expect(server.attributes["http.response.status_code"] as? Int == 201)
        #expect(server.service == "mediagw-under-test")

        // Ceph and PostgreSQL work of the request, inside its trace, under its span
        let byID = Dictionary(upload.map { ($0.spanID, $0) }) { first, _ in first }
        func descends(_ span: Span) -> Bool {
            var current = span
            for _ in 0..<32 {
                if current.parentID == server.spanID { return true }
                guard let parent = byID[current.parentID] else { return false }
                current = parent
            }
            return false
        }
        let write = try #require(upload.first { $0.name == "rados write" }, "no RADOS write in the upload's trace: \(upload)")
        #expect(write.kind == "SPAN_KIND_CLIENT" && descends(write))
        #expect(write.attributes["rados.bytes"] as? Int == (try Corpus.bytes("images/orientation-6.jpg")).count)
        let record = try #require(upload.first { $0.name == "postgresql record_upload" }, "no PostgreSQL span in the upload's trace: \(upload)")
        #expect(record.kind == "SPAN_KIND_CLIENT" && descends(record))
        #expect(record.attributes["db.system.name"] as? String == "postgresql")
        #expect(upload.contains { $0.name.hasPrefix("rados ") && $0.name != "rados write" }, "the pending ledger's RADOS operations too")

        // the job: a trace of its own, linked to the upload's, with its own Ceph and PostgreSQL spans
        let job = try #require(spans.first { $0.name == "process photo" && $0.links.contains { $0.traceID == traceID } })
        #expect(job.traceID != traceID && job.kind == "SPAN_KIND_CONSUMER")
        #expect(job.attributes["media.id"] as? String == mediaID && job.attributes["job.outcome"] as? String == "ready")
        let linked = try #require(job.links.first { $0.traceID == traceID })
        #expect(upload.contains { $0.spanID == linked.spanID }, "the link names a span of the upload's trace")
        let jobSpans = spans.filter { $0.traceID == job.traceID }
        #expect(jobSpans.contains { $0.name == "postgresql complete_job" && $0.parentID == job.spanID })
        #expect(jobSpans.contains { $0.name == "render photo" && $0.parentID == job.spanID }, "the processor's run: \(jobSpans)")
        #expect(jobSpans.contains { $0.name == "rados omap_rm" }, "the renditions' pending entries cleared: \(jobSpans)")
        // the polls of idle loops (job claims, the backlog monitor, outbox rotation) are no traces of their own
        #expect(!spans.contains { $0.name.hasPrefix("postgresql claim") || ($0.parentID.isEmpty && $0.kind == "SPAN_KIND_CLIENT") }, "\(spans)")

        // a log line written inside the request's span carries its trace and span ids
        let lines = gateway.log.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        #expect(lines.contains { $0["trace_id"] as? String == traceID && ($0["span_id"] as? String).map(byID.keys.contains) == true })
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }

    @Test func aFileIngestedThroughAGatewayIsOneTraceAcrossBothProcesses() async throws {
        let receiver = try await Receiver.start()
        let gateway = try await tracedGateway(receiver, ["MEDIAGW_WORKERS_IN_SERVE": "false"])
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("traced-ingest-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("in"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for name in ["orientation-1.jpg", "orientation-3.jpg"] {
            try Data(try Corpus.bytes("images/\(name)")).write(to: scratch.appendingPathComponent("in/\(name)"))
        }
        var environment = TestGateway.environment(try await Isolation.suite("Tracing"))
        environment["OTEL_TRACES_EXPORTER"] = "otlp"
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        let (status, output) = try await TestStack.run(
            TestStack.mediagwPath,
            [
                "ingest", scratch.appendingPathComponent("in").path, "--owner", "traced-ingest", "--gateway", gateway.baseURL, "--token",
                TestGateway.serviceToken, "--state", scratch.appendingPathComponent("run.state.jsonl").path,
            ],
            environment: environment
        )
        #expect(status == 0, "\(output)")
        // the CLI sends what is left when it ends; the gateway every 100 ms
        let spans = try await receiver.spans(within: .seconds(20)) { spans in
            let files = spans.filter { $0.name == "ingest file" }
            return files.count == 2
                && files.allSatisfy { file in
                    spans.contains { $0.traceID == file.traceID && $0.service == "mediagw-under-test" && $0.name.hasSuffix("/media") }
                        && spans.contains { $0.traceID == file.traceID && $0.name == "postgresql record_upload" }
                }
        }
        let files = spans.filter { $0.name == "ingest file" }
        #expect(files.count == 2, "\(spans)")
        for file in files {
            #expect(file.service == "mediagw-ingest" && file.attributes["ingest.outcome"] as? String == "ingested")
            let trace = spans.filter { $0.traceID == file.traceID }
            // the CLI's request span is the parent of the gateway's server span: the traceparent crossed over
            let clients = trace.filter { $0.service == "mediagw-ingest" && $0.kind == "SPAN_KIND_CLIENT" }
            let servers = trace.filter { $0.service == "mediagw-under-test" && $0.kind == "SPAN_KIND_SERVER" }
            #expect(servers.contains { $0.name.hasSuffix("/media") && clients.map(\.spanID).contains($0.parentID) }, "\(trace)")
            #expect(trace.contains { $0.service == "mediagw-under-test" && $0.name == "rados write" })
            #expect(trace.contains { $0.service == "mediagw-under-test" && $0.name == "postgresql record_upload" })
        }
        gateway.signal(SIGTERM)
        #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0)
    }

    @Test func aCollectorThatHangsOrIsDownNeverFailsAnUpload() async throws {
        let hanging = try await Receiver.start(stall: true)
        let closed = try await Receiver.start()
        let closedEndpoint = closed.endpoint
        kill(closed.process.processIdentifier, SIGKILL)
        while closed.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        for endpoint in [hanging.endpoint, closedEndpoint] {
            let gateway = try await GatewayProcess.start(
                try await Isolation.suite("Tracing"),
                [
                    "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50",
                    "OTEL_BSP_MAX_QUEUE_SIZE": "16", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4", "MEDIAGW_WORKERS": "1",
                ]
            )
            let photo = try Corpus.bytes("images/orientation-1.jpg")
            var uploaded = 0
            for _ in 0..<4 {
                let set = try await gateway.openSet()
                let reply = try await TestGateway.Reply.upload(gateway.baseURL, set, Array(repeating: ("p.jpg", photo), count: 5))
                #expect(reply.status == 201, "\(endpoint): \(reply.text)")
                uploaded += (reply.json["media"] as? [Any])?.count ?? 0
            }
            #expect(uploaded == 20, "every upload stored with the collector at \(endpoint)")
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0, "it stops even with spans it cannot send")
        }
    }
}
