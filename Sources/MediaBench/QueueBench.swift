import ArgumentParser
import AsyncHTTPClient
import Foundation
import MediaApp
import NIOCore
import Synchronization

/// Upload → ready latency of photos at a steady rate through a release gateway and its workers: alone,
/// then while the backlog of an ingest is processed, then on the same backlog with every job at one
/// priority (the single FIFO queue of before priorities), in one run. The ready time is when the
/// `media.ready` event is seen on the event feed (polled every 50 ms).
struct QueueBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Photo upload → ready latency at a steady rate, alone and behind an ingest's backlog (priorities vs one FIFO queue)."
    )

    @Option(help: "Photo uploads per second.")
    var rate = 20.0
    @Option(help: "Seconds of uploads in each phase.")
    var seconds = 30
    @Option(help: "Photos ingested to make the backlog (300 KB - 1 MB, 1600x1200).")
    var files = 2000
    @Option(help: "Width of the uploaded photos (4:3 JPEG).")
    var width = 640
    @Option(help: "Seconds of uploads on the FIFO queue (the reference phase).")
    var fifoSeconds = 10

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serviceToken = stackServiceToken(environment), let database = environment["MEDIAGW_DATABASE_URL"] else {
            throw BenchError("run `Deploy/local/stack up` and `eval \"$(Deploy/local/stack env)\"` first")
        }
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        // 1. the uploaded photo and the ingest's photos
        let photoFile = scratch.appendingPathComponent("live.jpg")
        _ = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(width * 3 / 4)",
            "-vf", "noise=alls=10:allf=u", "-frames:v", "1", "-q:v", "4", photoFile.path,
        ])
        let photo = [UInt8](try Data(contentsOf: photoFile))
        let ingestDirectory = scratch.appendingPathComponent("ingest")
        let ingestBytes = try generateIngestPhotos(files, in: ingestDirectory, scratch: scratch)
        let workers = try ProcessingConfiguration(environment: EnvironmentReader()).workers
        print(
            "queue: \(format(rate, 0)) photo uploads/s (\(width)x\(width * 3 / 4), \(photo.count) B) for \(seconds) s; backlog: ingest of \(files) photos "
                + "(\(format(Double(ingestBytes) / 1e6)) MB); workers \(workers.lanes.map(\.rawValue)), bulk share \(Int(workers.bulkShare * 100)) %"
        )

        // 2. a release gateway with its workers
        var gatewayEnvironment = environment
        gatewayEnvironment["MEDIAGW_LIMIT_COMMUNITY_PHOTO"] = "1000000:1MiB"
        let gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
        defer { gateway.stop() }
        let sets = try gateway.openSets(16, context: "community", serviceToken: serviceToken)
        let feed = EventFeed(baseURL: gateway.baseURL, token: serviceToken)
        try await feed.skipToEnd()
        let owner = "bench-queue-\(UUID().uuidString.prefix(8).lowercased())"
        func bulkJobs() throws -> Int {
            Int(
                try runProcess([
                    "psql", database, "-tAc",
                    "SELECT count(*) FROM jobs j JOIN media m ON m.id = j.media_id WHERE m.owner_id = '\(owner)' AND j.state IN ('queued', 'running')",
                ]).trimmingCharacters(in: .whitespacesAndNewlines)
            ) ?? -1
        }
        defer {
            // the benchmark's ingested media go again: tombstoned, jobs dropped, objects purged by the reconciler
            _ = try? runProcess([
                "psql", database, "-qc",
                """
                DELETE FROM jobs WHERE media_id IN (SELECT id FROM media WHERE owner_id = '\(owner)');
                UPDATE media SET state = 'deleted', deleted_at = now() WHERE owner_id = '\(owner)';
                """,
            ])
            _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])
        }
        let load = LiveLoad(photo: photo, sets: sets, gateway: gateway.baseURL, feed: feed, rate: rate)
        /// Waits (at most 5 minutes) until no interactive job is left, so that a phase does not queue behind
        /// the last one's uploads.
        func drainInteractive() async throws {
            for _ in 0..<600 {
                let left = try runProcess([
                    "psql", database, "-tAc", "SELECT count(*) FROM jobs WHERE priority = 'interactive' AND state IN ('queued', 'running')",
                ]).trimmingCharacters(in: .whitespacesAndNewlines)
                if left == "0" { return }
                try await Task.sleep(for: .milliseconds(500))
            }
            throw BenchError("the interactive jobs were not done within 5 minutes")
        }

        defer {
            // the live uploads go too
            let setIDs = sets.map { "'\($0.0)'" }.joined(separator: ", ")
            _ = try? runProcess([
                "psql", database, "-qc",
                """
                DELETE FROM jobs WHERE media_id IN (SELECT id FROM media WHERE upload_set_id IN (\(setIDs)));
                UPDATE media SET state = 'deleted', deleted_at = now() WHERE upload_set_id IN (\(setIDs));
                """,
            ])
        }
        // interactive work left by others would be measured as this benchmark's wait
        try await drainInteractive()

        // 3. alone
        let meter = CPUMeter(servers: [
            CPUMeter.Server(name: "gateway") { [gateway] in [gateway.process.processIdentifier] },
            CPUMeter.Server(name: "processors") { [gateway] in
                ProcessTable.read().entries.filter { $0.value.parent == gateway.process.processIdentifier }.map(\.key)
            },
            StackProcess.osd.server, StackProcess.pg.server,
        ])
        let before = meter.snapshot()
        let alone = try await load.measure(seconds: seconds, grace: 30)
        let cost = meter.snapshot().perGB(
            since: before,
            bytes: Double(alone.latencies.count) * 1e9,
            order: ["gateway", "processors", "OSD", "PostgreSQL"]
        )
        try await drainInteractive()

        // 4. behind the ingest's backlog: ingest (its jobs queue up as bulk work), then the same load
        var ingestEnvironment = environment
        ingestEnvironment["MEDIAGW_LOG_LEVEL"] = "error"
        let ingestStarted = ContinuousClock.now
        let output = try runProcess(
            [
                mediagwBinary, "ingest", ingestDirectory.path, "--owner", owner, "-j", "8", "--progress", "none",
                "--state", scratch.appendingPathComponent("bench.state.jsonl").path,
            ],
            environment: ingestEnvironment
        )
        guard output.contains("ingested \(files),") else { throw BenchError("not every photo was ingested:\n\(output)") }
        let ingestSeconds = (ContinuousClock.now - ingestStarted).seconds
        let backlogBefore = try bulkJobs()
        let busy = try await load.measure(seconds: seconds, grace: 30)
        let backlogAfter = try bulkJobs()
        try await drainInteractive()

        // 5. the same backlog in one FIFO queue: every job at one priority, as before priorities
        _ = try runProcess([
            "psql", database, "-qc",
            "UPDATE jobs SET priority = 'interactive' WHERE priority = 'bulk' AND media_id IN (SELECT id FROM media WHERE owner_id = '\(owner)')",
        ])
        let fifoBacklog = try bulkJobs()
        let fifo = try await load.measure(seconds: fifoSeconds, grace: 20)

        print("ingest: \(files) photos stored in \(format(ingestSeconds)) s; \(backlogBefore) of their jobs waiting when the measure began")
        print("alone:                 \(alone.describe)")
        print(
            "CPU per photo uploaded and made ready, alone (the gateway with its processors; the processors alone): "
                + cost.map { "\($0.0) \(format($0.1 * 1000, 0)) ms" }.joined(separator: ", ")
        )
        print(
            "behind the ingest:     \(busy.describe); bulk jobs done meanwhile \(backlogBefore - backlogAfter) "
                + "(\(format(Double(backlogBefore - backlogAfter) / busy.elapsed)) /s), \(backlogAfter) left"
        )
        print("one FIFO queue (ref.): \(fifo.describe), with \(fifoBacklog) jobs ahead")
        print("target: p99 <= 2 s alone and behind the ingest")
    }
}

/// Photo uploads at a steady rate, each timed until its `media.ready` (or `media.failed`) event.
struct LiveLoad: Sendable {
    let photo: [UInt8]
    let sets: [(String, String)]
    let gateway: String
    let feed: EventFeed
    let rate: Double

    struct Result {
        var uploads: Int
        /// Seconds from sending the upload to seeing the event, of those that were seen.
        var latencies: [Double]
        var failed: Int
        var grace: Double
        var elapsed: Double

        func percentile(_ p: Double) -> Double? {
            // uploads not ready count as slower than every ready one
            let rank = Int((Double(uploads) * p).rounded(.up)) - 1
            let sorted = latencies.sorted()
            return rank < sorted.count ? sorted[max(0, rank)] : nil
        }

        var describe: String {
            func text(_ value: Double?) -> String { value.map { format($0, 2) + " s" } ?? "> \(format(grace, 0)) s" }
            return "\(uploads) uploads, \(latencies.count) ready (\(format(Double(latencies.count) / elapsed)) /s), \(failed) failed; "
                + "upload → ready p50 \(text(percentile(0.5))), "
                + "p99 \(text(percentile(0.99))), max \(text(latencies.count == uploads ? latencies.max() : nil))"
        }
    }

    /// Uploads `rate` photos a second for `seconds`, then waits up to `grace` seconds for the last events.
    func measure(seconds: Int, grace: Double) async throws -> Result {
        let clock = ContinuousClock()
        let stamps = Stamps()
        let total = Int(rate * Double(seconds))
        let start = clock.now
        let polling = Task {
            while !Task.isCancelled {
                for (media, ready) in try await feed.next() {
                    let now = clock.now
                    stamps.seen.withLock { $0[media] = $0[media] ?? (now, ready) }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { polling.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                try await clock.sleep(until: start + .seconds(Double(index) / rate))
                group.addTask {
                    let began = clock.now
                    let id = try await upload(index)
                    stamps.sent.withLock { $0[id] = began }
                }
            }
            try await group.waitForAll()
        }
        let waitEnd = clock.now + .seconds(grace)
        while clock.now < waitEnd {
            let done = stamps.sent.withLock { Set($0.keys) }.subtracting(stamps.seen.withLock { Set($0.keys) }).isEmpty
            if done { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = (clock.now - start).seconds
        let times = stamps.sent.withLock { $0 }
        let events = stamps.seen.withLock { $0 }
        var latencies: [Double] = []
        var failed = 0
        for (id, began) in times {
            guard let (at, ready) = events[id] else { continue }
            if ready { latencies.append((at - began).seconds) } else { failed += 1 }
        }
        return Result(uploads: total, latencies: latencies, failed: failed, grace: grace, elapsed: elapsed)
    }

    /// Uploads the photo (made unique by a trailer) into one of the sets; returns the media id.
    func upload(_ index: Int) async throws -> String {
        let (setID, token) = sets[index % sets.count]
        let boundary = "bench-\(index)"
        var request = HTTPClientRequest(url: "\(gateway)/v1/upload-sets/\(setID)/media")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        let unique = photo + Array("\(UUID())".utf8)
        request.body = .bytes(ByteBuffer(bytes: multipartBody(unique, filename: "live.jpg", boundary: boundary)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == 201,
            let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let id = (json["media"] as? [[String: Any]])?.first?["id"] as? String
        else {
            throw BenchError("upload answered \(response.status.code): \(String(buffer: body))")
        }
        return id
    }
}

/// When each upload was sent and when its event was seen, by media id.
final class Stamps: Sendable {
    let sent = Mutex<[String: ContinuousClock.Instant]>([:])
    let seen = Mutex<[String: (ContinuousClock.Instant, Bool)]>([:])
}

/// The gateway's event feed, read from a cursor: which media became ready (or failed).
final class EventFeed: Sendable {
    let baseURL: String
    let token: String
    private let cursor = Mutex<Int64>(0)

    init(baseURL: String, token: String) {
        self.baseURL = baseURL
        self.token = token
    }

    /// Moves the cursor past every event written so far.
    func skipToEnd() async throws {
        while try await !page().isEmpty {}
    }

    /// Media ids of the `media.ready` (true) and `media.failed` (false) events since the last call.
    func next() async throws -> [(String, Bool)] {
        var found: [(String, Bool)] = []
        while true {
            let events = try await page()
            for event in events {
                guard let media = event["media_id"] as? String else { continue }
                switch event["type"] as? String {
                case "media.ready": found.append((media, true))
                case "media.failed": found.append((media, false))
                default: break
                }
            }
            if events.count < 1000 { return found }
        }
    }

    private func page() async throws -> [[String: Any]] {
        let after = cursor.withLock { $0 }
        var request = HTTPClientRequest(url: "\(baseURL)/internal/v1/events?after=\(after)&limit=1000")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200, let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let events = json["events"] as? [[String: Any]], let next = (json["next_after"] as? NSNumber)?.int64Value
        else {
            throw BenchError("the event feed answered \(response.status.code)")
        }
        cursor.withLock { $0 = next }
        return events
    }
}
