import ArgumentParser
import Foundation
import MediaApp

/// Cost growth: upload throughput, ingest throughput and the origin's lookup latency with about 10 k media
/// rows, then with 1 M (with their sets, renditions, jobs and events, generated in SQL), in one run, in a
/// schema of its own; then the plans of the hot statements (`mediagw plans`) at 1 M rows.
struct RowsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rows",
        abstract: "Uploads, ingest and origin lookups at ~10 k and at 1 M media rows, and the hot statements' plans."
    )

    @Option(help: "Media rows of the large round.")
    var rows = 1_000_000
    @Option(help: "Media rows of the small round.")
    var base = 10_000
    @Option(help: "Seconds per wrk measurement.")
    var seconds = 10
    @Option(help: "Concurrent clients (connections) of wrk and ingest.")
    var clients = 16
    @Option(help: "Files ingested per round.")
    var files = 500
    @Option(help: "Bytes per upload and per ingested file: small, so that the metadata's cost shows.")
    var size = 32_768
    @Option(help: "Measurements of each kind per size; the median is reported (one wrk round moves by 10 %).")
    var repeats = 3

    struct Round {
        var rows: Int
        /// Every measurement, in order; the figures below are the medians.
        var uploadRuns: [WrkResult]
        var ingestRuns: [Double]
        var lookupRuns: [WrkResult]
        var fillSeconds: Double

        var uploads: WrkResult { Self.medianRun(uploadRuns) }
        var ingestFilesPerSecond: Double { median(ingestRuns) }
        var lookups: WrkResult { Self.medianRun(lookupRuns) }

        /// The run of median throughput (its latencies go with it).
        static func medianRun(_ runs: [WrkResult]) -> WrkResult {
            runs.sorted { $0.requestsPerSecond < $1.requestsPerSecond }[runs.count / 2]
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serviceToken = stackServiceToken(environment), let database = environment["MEDIAGW_DATABASE_URL"] else {
            throw BenchError("run `Deploy/local/stack up` and `eval \"$(Deploy/local/stack env)\"` first")
        }
        guard base >= 100, rows > base else { throw BenchError("--rows must be larger than --base (at least 100)") }
        guard repeats >= 1 else { throw BenchError("--repeats must be at least 1") }
        let schema = "bench_rows_\(UUID().uuidString.prefix(8).lowercased())"
        var benchEnvironment = environment
        benchEnvironment["MEDIAGW_DATABASE_SCHEMA"] = schema
        benchEnvironment["MEDIAGW_LIMIT_COMMUNITY_PHOTO"] = "1000000:1MiB"
        benchEnvironment["MEDIAGW_WORKERS_IN_SERVE"] = "false"
        benchEnvironment["MEDIAGW_ORIGIN_LOOKUP_TTL"] = "0"
        benchEnvironment["MEDIAGW_LOG_LEVEL"] = "error"
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        _ = try runProcess([mediagwBinary, "migrate"], environment: benchEnvironment)
        let psql = PSQL(url: database, schema: schema)
        defer {
            // what the rounds stored goes (rows tombstoned, objects purged by the reconciler); then the schema
            _ = try? psql.run("UPDATE media SET state = 'deleted', deleted_at = now() WHERE object_key NOT LIKE 'generated/%'")
            _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"], environment: benchEnvironment)
            _ = try? runProcess(["psql", database, "-qc", "DROP SCHEMA \(schema) CASCADE"])
        }
        print(
            "rows: \(base) then \(rows) media rows in schema \(schema); \(size) B per upload and ingested file, "
                + "\(clients) clients, \(seconds) s, medians of \(repeats)"
        )

        var rounds: [Round] = []
        var filled = 0
        for target in [base, rows] {
            let started = Date()
            try psql.fill(from: filled, to: target)
            filled = target
            let fillSeconds = Date().timeIntervalSince(started)
            rounds.append(
                try measure(rows: target, fillSeconds: fillSeconds, environment: benchEnvironment, psql: psql, token: serviceToken, scratch: scratch)
            )
        }
        let plans = try runProcess([mediagwBinary, "plans"], environment: benchEnvironment)

        print("rows       fill s  uploads/s  upload p99 ms  ingest files/s  lookups/s  lookup p50 ms  lookup p99 ms")
        for round in rounds {
            print(
                String(
                    format: "%-9d  %6.1f  %9.0f  %13.1f  %14.1f  %9.0f  %13.2f  %13.2f",
                    round.rows,
                    round.fillSeconds,
                    round.uploads.requestsPerSecond,
                    round.uploads.p99Milliseconds,
                    round.ingestFilesPerSecond,
                    round.lookups.requestsPerSecond,
                    round.lookups.p50Milliseconds,
                    round.lookups.p99Milliseconds
                )
            )
        }
        for round in rounds {
            print(
                "each run at \(round.rows) rows: uploads/s "
                    + round.uploadRuns.map { format($0.requestsPerSecond, 0) }.joined(separator: ", ")
                    + "; ingest files/s " + round.ingestRuns.map { format($0, 1) }.joined(separator: ", ")
                    + "; lookups/s " + round.lookupRuns.map { format($0.requestsPerSecond, 0) }.joined(separator: ", ")
            )
        }
        let (small, large) = (rounds[0], rounds[1])
        print(
            "ratio at \(rows) / at \(base) rows: uploads \(format(large.uploads.requestsPerSecond / small.uploads.requestsPerSecond, 2)), "
                + "ingest \(format(large.ingestFilesPerSecond / small.ingestFilesPerSecond, 2)), "
                + "lookups \(format(large.lookups.requestsPerSecond / small.lookups.requestsPerSecond, 2)) (target >= 0.9)"
        )
        print("plans at \(rows) rows (mediagw plans):")
        print(plans)
    }

    /// One round: `repeats` times each, uploads through a release gateway (wrk), a direct ingest, then origin
    /// lookups (wrk: conditional GETs of random stored photos that PostgreSQL answers, 304 without reading Ceph).
    func measure(rows: Int, fillSeconds: Double, environment: [String: String], psql: PSQL, token: String, scratch: URL) throws -> Round {
        // uploads
        let gateway = try BenchGateway(binary: mediagwBinary, environment: environment)
        defer { gateway.stop() }
        let boundary = "mediagw-bench-boundary"
        let photo = [UInt8]([0xFF, 0xD8, 0xFF, 0xE0]) + (4..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let body = scratch.appendingPathComponent("photo-\(rows).multipart")
        try Data(multipartBody(photo, filename: "bench.jpg", boundary: boundary)).write(to: body)
        let sets = try gateway.openSets(64, context: "community", serviceToken: token)
        let uploadScript = try multipartUploadScript(sets: sets, bodyFile: body, boundary: boundary, in: scratch)
        var uploadRuns: [WrkResult] = []
        for _ in 0..<repeats {
            let uploads = try WrkResult.run(url: gateway.baseURL, script: uploadScript, connections: clients, seconds: seconds)
            guard uploads.non2xx == 0, uploads.errors == 0 else { throw BenchError("\(uploads.non2xx) uploads refused, \(uploads.errors) errors") }
            uploadRuns.append(uploads)
        }

        // ingest: `files` distinct small photos per run
        var ingestRuns: [Double] = []
        for run in 0..<repeats {
            let directory = scratch.appendingPathComponent("ingest-\(rows)-\(run)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for index in 0..<files {
                try Data(photo + Array("\(rows)-\(run)-\(index)".utf8)).write(
                    to: directory.appendingPathComponent(String(format: "f%05d.jpg", index))
                )
            }
            let started = Date()
            let output = try runProcess(
                [
                    mediagwBinary, "ingest", directory.path, "--owner", "bench-rows", "-j", "\(clients)", "--progress", "none",
                    "--state", scratch.appendingPathComponent("ingest-\(rows)-\(run).state.jsonl").path,
                ],
                environment: environment
            )
            guard output.contains("ingested \(files),") else { throw BenchError("not every file was ingested:\n\(output)") }
            ingestRuns.append(Double(files) / Date().timeIntervalSince(started))
        }

        // origin lookups of 1000 random generated photos
        let ids = try psql.run("SELECT id FROM media WHERE kind = 'photo' AND object_key LIKE 'generated/%' ORDER BY random() LIMIT 1000")
            .split(whereSeparator: \.isNewline).map(String.init)
        guard ids.count >= min(1000, rows / 2) else { throw BenchError("found \(ids.count) generated photos") }
        let script = scratch.appendingPathComponent("lookups-\(rows).lua")
        try """
        local ids = { \(ids.map { "\"\($0)\"" }.joined(separator: ", ")) }
        local i = 0
        request = function()
          i = i + 1
          return wrk.format("GET", "/m/" .. ids[(i % #ids) + 1] .. "/original.jpg", { ["If-None-Match"] = "*" })
        end
        """.write(to: script, atomically: true, encoding: .utf8)
        var lookupRuns: [WrkResult] = []
        for _ in 0..<repeats {
            let lookups = try WrkResult.run(url: gateway.baseURL, script: script.path, connections: clients, seconds: seconds)
            guard lookups.non2xx == 0, lookups.errors == 0 else { throw BenchError("\(lookups.non2xx) lookups were not answered 304") }
            lookupRuns.append(lookups)
        }
        return Round(rows: rows, uploadRuns: uploadRuns, ingestRuns: ingestRuns, lookupRuns: lookupRuns, fillSeconds: fillSeconds)
    }
}

/// `psql` on the benchmark's schema.
struct PSQL {
    let url: String
    let schema: String

    /// Runs SQL (statements separated by semicolons) and returns the unaligned output.
    @discardableResult
    func run(_ sql: String) throws -> String {
        try runProcess(["psql", url, "-qtA", "-v", "ON_ERROR_STOP=1", "-c", "SET search_path = \(schema); " + sql])
    }

    /// Generates media rows `from ..< to`, as people's posts would have left them: sets of five, nineteen in
    /// twenty photos (else audio or video), each ready with two renditions and its `media.ready` event; one
    /// in 200 with a queued bulk job, one in 1,000 with a dead one; then VACUUM ANALYZE.
    func fill(from: Int, to: Int) throws {
        let (low, high) = (from, to - 1)
        let kind = "(CASE WHEN g % 20 = 0 THEN 'video' WHEN g % 20 = 1 THEN 'audio' ELSE 'photo' END)"
        try run(
            """
            INSERT INTO upload_sets (id, owner_id, context, context_id, state, created_at, expires_at, committed_at, photo_count, priority)
            SELECT md5('set' || s)::uuid, 'user-' || (s % 100000), 'post', 'post-' || s, 'committed',
                   now() - interval '30 days', now() - interval '29 days', now() - interval '30 days', 5, 'interactive'
            FROM generate_series(\(low / 5), \(high / 5)) s ON CONFLICT DO NOTHING;
            INSERT INTO media (id, kind, owner_id, upload_set_id, state, size_bytes, sha256, mime, width, height, pool, object_key, created_at, committed_at)
            SELECT md5('media' || g)::uuid, \(kind), 'user-' || ((g / 5) % 100000), md5('set' || (g / 5))::uuid, 'ready', 500000,
                   encode(sha256(('m' || g)::bytea), 'hex'),
                   CASE WHEN g % 20 = 0 THEN 'video/mp4' WHEN g % 20 = 1 THEN 'audio/mpeg' ELSE 'image/jpeg' END,
                   1280, 960, 'media.' || \(kind), 'generated/' || g, now() - interval '30 days', now() - interval '30 days'
            FROM generate_series(\(low), \(high)) g;
            INSERT INTO renditions (media_id, media_kind, name, mime, width, height, size_bytes, sha256, pool, object_key)
            SELECT md5('media' || g)::uuid, \(kind), n.name, n.mime, 320, 240, 20000, encode(sha256(('r' || g || n.name)::bytea), 'hex'),
                   'media.derived', 'generated/' || g || '/' || n.name
            FROM generate_series(\(low), \(high)) g, (VALUES ('w320.webp', 'image/webp'), ('w320.jpg', 'image/jpeg')) n(name, mime);
            INSERT INTO jobs (queue, media_id, media_kind, priority, state, attempts, run_after)
            SELECT 'process', md5('media' || g)::uuid, \(kind), 'bulk', CASE WHEN g % 1000 = 7 THEN 'dead' ELSE 'queued' END,
                   CASE WHEN g % 1000 = 7 THEN 3 ELSE 0 END, now() - interval '1 day'
            FROM generate_series(\(low), \(high)) g WHERE g % 200 = 0 OR g % 1000 = 7;
            WITH last AS (SELECT coalesce(max(seq), 0) AS seq FROM outbox)
            INSERT INTO outbox (event_id, type, media_id, upload_set_id, payload, seq, created_at)
            SELECT md5('event' || g)::uuid, 'media.ready', md5('media' || g)::uuid, md5('set' || (g / 5))::uuid,
                   jsonb_build_object('media_id', md5('media' || g)::uuid, 'kind', \(kind), 'state', 'ready', 'size', 500000),
                   last.seq + g - \(low) + 1, now()
            FROM generate_series(\(low), \(high)) g, last;
            """
        )
        _ = try runProcess([
            "psql", url, "-q", "-c", "SET search_path = \(schema)", "-c", "VACUUM ANALYZE upload_sets, media, renditions, jobs, outbox",
        ])
    }
}
