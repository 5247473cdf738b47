import Foundation
import MediaCore
import MediaTesting
import PostgresNIO
import Testing

/// `mediagw ingest`, the built executable, against the real stack: directly and through a running gateway.
@Suite(.serialized) struct IngestTests {
    struct Run {
        var status: Int32
        var output: String
        /// The report's lines by path.
        var report: [String: [String: Any]]
    }

    /// A scratch directory for one test's state, report and generated files.
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ingest-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func ingest(_ arguments: [String], state: URL, environment: [String: String] = [:]) async throws -> Run {
        let (status, output) = try await TestStack.run(
            TestStack.mediagwPath,
            ["ingest", "--progress", "lines", "--state", state.path] + arguments,
            environment: TestGateway.environment(try await Isolation.suite("Ingest")).merging(environment) { $1 }
        )
        return Run(status: status, output: output, report: try report(for: state))
    }

    static func report(for state: URL) throws -> [String: [String: Any]] {
        var lines: [String: [String: Any]] = [:]
        for line in try reportLines(for: state) { lines[line["path"] as? String ?? ""] = line }
        return lines
    }

    /// The report's lines in order (rows of a manifest may repeat a path).
    static func reportLines(for state: URL) throws -> [[String: Any]] {
        let path = String(state.path.dropLast(".state.jsonl".count)) + ".report.jsonl"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// Live media of an owner: (count, distinct content hashes, committed sets among theirs, sets that are
    /// not bulk work).
    /// The owner's stored media, and how many of them have a link from their set and to their `media.stored`
    /// event.
    static func linked(owner: String) async throws -> (media: Int, fromSet: Int, toEvent: Int) {
        let database = try await Isolation.suite("Ingest").metadata.database
        var counts = (media: 0, fromSet: 0, toEvent: 0)
        for try await (media, fromSet, toEvent) in try await database.client.query(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM correlation c
                                                  WHERE c.b = 'media:' || m.id::text AND c.a = 'set:' || m.upload_set_id::text)),
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM correlation c
                                                  WHERE c.a = 'media:' || m.id::text AND c.relation = 'media.stored'))
            FROM media m WHERE m.owner_id = \(owner) AND m.state <> 'deleted'
            """
        ).decode((Int, Int, Int).self) {
            counts = (media, fromSet, toEvent)
        }
        return counts
    }

    static func stored(owner: String) async throws -> (media: Int, distinct: Int, uncommittedWithMedia: Int, interactiveSets: Int) {
        let database = try await Isolation.suite("Ingest").metadata.database
        var media = 0
        var distinct = 0
        var uncommitted = 0
        var interactive = 0
        for try await count in try await database.client.query(
            "SELECT count(*) FROM upload_sets WHERE owner_id = \(owner) AND priority <> 'bulk'"
        ).decode(Int.self) {
            interactive = count
        }
        for try await (count, hashes) in try await database.client.query(
            "SELECT count(*), count(DISTINCT sha256) FROM media WHERE owner_id = \(owner) AND state <> 'deleted'"
        ).decode((Int, Int).self) {
            media = count
            distinct = hashes
        }
        for try await count in try await database.client.query(
            "SELECT count(DISTINCT s.id) FROM upload_sets s JOIN media m ON m.upload_set_id = s.id WHERE s.owner_id = \(owner) AND s.state <> 'committed'"
        ).decode(Int.self) {
            uncommitted = count
        }
        return (media, distinct, uncommitted, interactive)
    }

    /// What the gateway's rules say of a corpus file in a community post: nil (accepted) or the refusal code.
    static func expectedRefusal(of file: URL) throws -> String? {
        let bytes = try Data(contentsOf: file)
        guard !bytes.isEmpty else { return "invalid_request" }
        guard let type = MediaSniffer.sniff(bytes.prefix(MediaSniffer.prefixLength)) else { return "unsupported_media_type" }
        let limit = UploadLimits.defaults[.community][type.kind]
        if limit.maxCount == 0 { return "limit_exceeded" }
        return bytes.count > limit.maxBytes ? "too_large" : nil
    }

    static func checkCorpusReport(_ run: Run, owner: String) async throws {
        let files = FileManager.default.enumerator(at: Corpus.root, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])!
            .compactMap { $0 as? URL }.filter { !$0.hasDirectoryPath }
        #expect(files.count > 90)
        #expect(run.report.count == files.count, "one report line per input file")
        var ingested = 0
        for file in files {
            let line = run.report[file.standardizedFileURL.path]
            let expected = try expectedRefusal(of: file)
            if let expected {
                #expect(line?["outcome"] as? String == "refused", "\(file.lastPathComponent): \(line ?? [:])")
                #expect(line?["code"] as? String == expected, "\(file.lastPathComponent)")
            } else {
                #expect(line?["outcome"] as? String == "ingested", "\(file.lastPathComponent): \(line ?? [:])")
                #expect((line?["media_id"] as? String).flatMap(MediaID.init) != nil)
                ingested += 1
            }
        }
        #expect(run.status == 1, "some files are refused: exit code 1")
        #expect(run.output.contains("ingested \(ingested),"), "\(run.output)")
        let stored = try await stored(owner: owner)
        #expect(stored.media == ingested && stored.uncommittedWithMedia == 0)
        #expect(stored.interactiveSets == 0, "ingested media are bulk work, processed after people's uploads")
    }

    @Test func theCorpusIsIngestedDirectlyAndEveryBadFileIsReportedWithItsCode() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let owner = "ingest-direct-\(UUID().uuidString.prefix(8))"
        let state = scratch.appendingPathComponent("corpus.state.jsonl")
        let run = try await Self.ingest([Corpus.root.path, "--owner", owner, "-j", "4"], state: state, environment: ["MEDIAGW_CORRELATION": "true"])
        try await Self.checkCorpusReport(run, owner: owner)
        // every stored file's links (its set → it, it → its media.stored event) are written by the end of the
        // run, the last batch too
        let linked = try await Self.linked(owner: owner)
        #expect(linked.media > 0 && linked.fromSet == linked.media && linked.toEvent == linked.media, "\(linked)")

        // the same command again: nothing new is stored, what was stored is skipped
        let again = try await Self.ingest([Corpus.root.path, "--owner", owner, "-j", "4"], state: state)
        #expect(
            again.output.contains(
                "ingested 0, skipped as already done \(run.report.values.filter { $0["outcome"] as? String == "ingested" }.count),"
            ),
            "\(again.output)"
        )
        #expect(try await Self.stored(owner: owner).media == run.report.values.filter { $0["outcome"] as? String == "ingested" }.count)
    }

    @Test func theCorpusIsIngestedThroughARunningGateway() async throws {
        let gateway = try await TestGateway.start(try await Isolation.suite("Ingest"), ["MEDIAGW_WORKERS_IN_SERVE": "false"])
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let owner = "ingest-remote-\(UUID().uuidString.prefix(8))"
        let run = try await Self.ingest(
            [Corpus.root.path, "--owner", owner, "--gateway", gateway.baseURL, "--token", TestGateway.serviceToken, "-j", "4"],
            state: scratch.appendingPathComponent("corpus.state.jsonl")
        )
        await gateway.stop()
        try await Self.checkCorpusReport(run, owner: owner)
    }

    @Test func aKilledRunResumesWithoutDuplicates() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let owner = "ingest-kill-\(UUID().uuidString.prefix(8))"
        let source = scratch.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let count = 120
        for index in 0..<count {
            try Data(fakeJPEG(200_000, seed: UInt64(index) + 7_000)).write(to: source.appendingPathComponent(String(format: "p%03d.jpg", index)))
        }
        let state = scratch.appendingPathComponent("photos.state.jsonl")
        let arguments = ["ingest", "--progress", "none", "--state", state.path, source.path, "--owner", owner, "-j", "2"]

        // killed with SIGKILL once part of the files are in
        let pid = try TestStack.spawn(
            TestStack.mediagwPath,
            arguments,
            environment: TestGateway.environment(try await Isolation.suite("Ingest")),
            output: scratch.appendingPathComponent("first.out").path
        )
        try await eventually {
            let text = (try? String(contentsOf: state, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "\"type\":\"done\"").count - 1 >= 20
        }
        kill(pid, SIGKILL)
        let killed = await TestStack.exit(of: pid)
        #expect(killed.status == 128 + SIGKILL)
        let partial = try await Self.stored(owner: owner).media
        #expect(partial > 0 && partial < count, "killed halfway: \(partial) of \(count)")

        // the same command again finishes the job: every file once
        let run = try await Self.ingest([source.path, "--owner", owner, "-j", "4"], state: state)
        #expect(run.status == 0, "\(run.output)")
        let outcomes = run.report.values.map { $0["outcome"] as? String ?? "" }
        #expect(outcomes.count == count && outcomes.allSatisfy { $0 == "ingested" || $0 == "skipped" })
        #expect(outcomes.filter { $0 == "skipped" }.count >= 20)
        let stored = try await Self.stored(owner: owner)
        #expect(stored.media == count && stored.distinct == count, "no duplicates: \(stored)")
        #expect(stored.uncommittedWithMedia == 0)
    }

    @Test func aManifestWithMissingFilesAndBadRowsIsReportedNotFatal() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let owner = "ingest-manifest-\(UUID().uuidString.prefix(8))"
        let photo = Corpus.root.appendingPathComponent("images/orientation-1.jpg").path
        let other = Corpus.root.appendingPathComponent("images/progressive.jpg").path
        let csv = scratch.appendingPathComponent("rows.csv")
        try """
        path,owner_id,context,context_id,private
        \(photo),\(owner),post,post-1,false
        "\(other)",\(owner),post,post-1,
        missing/nothing-here.jpg,\(owner),post,post-2,false
        \(photo),\(owner),newsletter,x,false
        \(photo),bad owner!,post,post-3,false
        \(photo),\(owner),post,post-4,maybe
        \(photo),\(owner),post,post-5,false,extra
        """.write(to: csv, atomically: true, encoding: .utf8)
        let run = try await Self.ingest(["--manifest", csv.path], state: scratch.appendingPathComponent("rows.state.jsonl"))
        #expect(run.status == 1, "\(run.output)")
        let lines = try Self.reportLines(for: scratch.appendingPathComponent("rows.state.jsonl"))
        #expect(lines.count == 7, "one report line per row")
        let byOutcome = Dictionary(grouping: lines) { $0["outcome"] as? String ?? "" }
        #expect(byOutcome["ingested"]?.count == 2)
        #expect(
            lines.contains {
                $0["path"] as? String == scratch.appendingPathComponent("missing/nothing-here.jpg").path && $0["code"] as? String == "file_not_found"
            }
        )
        let badRows = lines.filter { $0["code"] as? String == "invalid_manifest_row" }
        #expect(badRows.compactMap { $0["line"] as? Int }.sorted() == [5, 6, 7, 8], "\(badRows)")
        #expect(try await Self.stored(owner: owner).media == 2)

        // both photos of post-1 went into one set, committed
        let database = try await Isolation.suite("Ingest").metadata.database
        var sets = 0
        for try await count in try await database.client.query(
            "SELECT count(*) FROM upload_sets WHERE owner_id = \(owner) AND context_id = 'post-1' AND state = 'committed'"
        ).decode(Int.self) {
            sets = count
        }
        #expect(sets == 1)

        // JSON Lines, with a line that is not JSON
        let jsonl = scratch.appendingPathComponent("rows.jsonl")
        try """
        {"path": "\(other)", "owner_id": "\(owner)", "context": "message", "context_id": "chat-1", "private": true}
        not json at all
        """.write(to: jsonl, atomically: true, encoding: .utf8)
        let second = try await Self.ingest(["--manifest", jsonl.path], state: scratch.appendingPathComponent("rows2.state.jsonl"))
        #expect(second.status == 1 && second.output.contains("ingested 1,"), "\(second.output)")
        #expect(second.report.values.contains { $0["code"] as? String == "invalid_manifest_row" && $0["line"] as? Int == 2 })
    }

    @Test func usageErrorsExitWithTwoAndOneLine() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let state = scratch.appendingPathComponent("x.state.jsonl")
        for arguments in [
            [String](), ["/nonexistent-dir"], ["--manifest", "rows.txt"], [scratch.path, "--gateway", "http://127.0.0.1:1"],
            [scratch.path, "--context", "blog"],
        ] {
            let run = try await Self.ingest(arguments, state: state)
            #expect(run.status == 2, "\(arguments): \(run.output)")
            #expect(run.output.split(separator: "\n").count == 1 && run.output.hasPrefix("mediagw: error:"), "\(arguments): \(run.output)")
        }
    }

    @Test func aDryRunStoresNothing() async throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let owner = "ingest-dry-\(UUID().uuidString.prefix(8))"
        let run = try await Self.ingest(
            [Corpus.root.appendingPathComponent("images").path, "--owner", owner, "--dry-run"],
            state: scratch.appendingPathComponent("d.state.jsonl")
        )
        #expect(run.report.values.contains { $0["outcome"] as? String == "would_ingest" })
        #expect(!run.report.values.contains { $0["outcome"] as? String == "ingested" })
        #expect(try await Self.stored(owner: owner).media == 0)
    }
}
