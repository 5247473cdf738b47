import AsyncHTTPClient
import Crypto
import Foundation
import MediaApp
import MediaCore
import MediaTesting
import NIOCore
import NIOHTTP1
import PostgresMetadata
import PostgresNIO
import Synchronization
import Testing

/// The highly available deployment (`Deploy/cluster`) under a mixed workload through its balancer, while
/// faults are injected in turn: a Ceph host killed, a Ceph host cut off, the PostgreSQL primary killed, a
/// gateway killed; each healed, then an audit. Runs in a phase of its own (`MEDIAGW_CLUSTER_TESTS=1`, the
/// cluster's `env` exported): `Deploy/local/run-tests` boots the cluster for it.
@Suite(.serialized, .enabled(if: ChaosSettings.enabled, "set MEDIAGW_CLUSTER_TESTS=1 with the cluster's environment (Deploy/local/run-tests does)"))
struct ClusterChaosTests {
    @Test func nothingAcknowledgedIsLostAndServiceContinuesThroughEveryFault() async throws {
        let settings = try ChaosSettings()
        let chaos = ChaosRun(settings: settings)
        let report = try await chaos.run()
        print(report.text)
        try report.text.write(toFile: settings.reportPath, atomically: true, encoding: .utf8)

        // nothing acknowledged is lost, ever
        #expect(report.audit.acknowledged > 0, "the workload stored something")
        #expect(report.audit.lost.isEmpty, "acknowledged but not readable whole: \(report.audit.lost.prefix(10))")
        #expect(report.audit.rowsWithoutObjects.isEmpty, "rows without objects: \(report.audit.rowsWithoutObjects.prefix(10))")
        #expect(report.audit.objectsWithoutRows.isEmpty, "objects without rows: \(report.audit.objectsWithoutRows.prefix(10))")
        #expect(report.audit.unfinishedJobs.isEmpty, "every job ended: \(report.audit.unfinishedJobs)")
        #expect(report.audit.failedWithoutReason == 0)
        #expect(report.audit.settled, "Ceph HEALTH_OK and no replication lag: \(report.audit.settledMessage)")
        for fault in report.faults {
            #expect(fault.uploads.longestOutage <= .seconds(30), "\(fault.name): uploads unavailable \(fault.uploads.longestOutage)")
            #expect(fault.uploads.longestGap <= .seconds(30), "\(fault.name): no upload succeeded for \(fault.uploads.longestGap)")
            #expect(fault.uploads.succeeded > 0, "\(fault.name): uploads went on")
            #expect(fault.downloads.succeeded > 0, "\(fault.name): downloads went on")
        }
        if let gateway = report.faults.first(where: { $0.kind == .gateway }) {
            #expect(gateway.downloads.failed == 0, "no GET fails while a gateway is lost")
        }
        for fault in report.faults where fault.kind == .cephKill || fault.kind == .cephPartition {
            #expect(fault.downloads.longestOutage <= settings.detectionWindow, "\(fault.name): downloads out \(fault.downloads.longestOutage)")
            #expect(fault.downloads.longestGap <= settings.detectionWindow, "\(fault.name): no download succeeded for \(fault.downloads.longestGap)")
        }
    }
}

/// How the chaos run is sized and where the cluster is, from the environment.
struct ChaosSettings: Sendable {
    static var enabled: Bool { ProcessInfo.processInfo.environment["MEDIAGW_CLUSTER_TESTS"] == "1" }

    let gateway: String
    let serviceToken: String
    let cluster: String
    let reportPath: String
    let environment: [String: String]
    let warmup: Duration
    let hold: Duration
    let recover: Duration
    let uploaders: Int
    let downloaders: Int
    /// Each uploader's pause between two files: the workload stays within what the cluster's workers
    /// process, so that the audit finds every job ended.
    let uploadPause: Duration
    /// How long the audit waits for the last jobs to end.
    let drain: Duration
    /// The longest a Ceph host loss may stop downloads: the cluster's failure detection (6-13 s measured)
    /// and re-peering.
    let detectionWindow: Duration

    init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let gateway = environment["CLUSTER_GATEWAY_URL"], let tokens = environment["MEDIAGW_SERVICE_TOKENS"] else {
            throw TestFailure("CLUSTER_GATEWAY_URL and MEDIAGW_SERVICE_TOKENS are not set: export `Deploy/cluster/cluster env`")
        }
        func seconds(_ name: String, _ fallback: Int) -> Duration { .seconds(Int(environment[name] ?? "") ?? fallback) }
        self.gateway = gateway
        serviceToken = String(tokens.split(separator: ",").first ?? "")
        cluster = TestStack.root.appendingPathComponent("Deploy/cluster/cluster").path
        let directory = environment["CLUSTER_DIR"] ?? TestStack.root.appendingPathComponent(".cluster").path
        reportPath = directory + "/chaos-report.md"
        self.environment = environment
        warmup = seconds("CHAOS_WARMUP", 15)
        hold = seconds("CHAOS_HOLD", 20)
        recover = seconds("CHAOS_RECOVER", 25)
        uploaders = Int(environment["CHAOS_UPLOADERS"] ?? "") ?? 2
        uploadPause = .milliseconds(Int(environment["CHAOS_UPLOAD_PAUSE_MS"] ?? "") ?? 700)
        drain = seconds("CHAOS_DRAIN", 600)
        downloaders = Int(environment["CHAOS_DOWNLOADERS"] ?? "") ?? 3
        detectionWindow = seconds("CHAOS_DETECTION_WINDOW", 20)
    }
}

/// One request of the workload, as it ended.
struct Attempt: Sendable {
    enum Kind: Sendable { case upload, download }
    enum Outcome: Sendable, Hashable, CustomStringConvertible {
        case ok
        case status(Int)
        /// The connection failed or the request timed out: a real client retries it.
        case transport

        var description: String {
            switch self {
            case .ok: "ok"
            case .status(let code): "\(code)"
            case .transport: "connection error"
            }
        }
    }

    var kind: Kind
    var at: ContinuousClock.Instant
    var outcome: Outcome
}

/// An upload the gateway acknowledged (201).
struct Acknowledged: Sendable {
    var mediaID: String
    var sha256: String
    var size: Int
}

/// What was measured for one fault, from its injection to the end of its recovery.
struct FaultFigures: Sendable {
    enum Kind: Sendable { case cephKill, cephPartition, postgresPrimary, gateway }

    struct Requests: Sendable {
        var outcomes: [Attempt.Outcome: Int] = [:]
        /// The longest time in which every attempt failed (from the first failure after a success to the next
        /// success).
        var longestOutage: Duration = .zero
        /// The longest time without a request of this kind succeeding (requests that waited rather than
        /// failed show here): what a client saw as a stall.
        var longestGap: Duration = .zero
        var succeeded: Int { outcomes[.ok] ?? 0 }
        var failed: Int { outcomes.filter { $0.key != .ok }.map(\.value).reduce(0, +) }

        init(_ attempts: [Attempt], from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
            var failingSince: ContinuousClock.Instant?
            var lastSuccess = start
            for attempt in attempts.sorted(by: { $0.at < $1.at }) {
                outcomes[attempt.outcome, default: 0] += 1
                if attempt.outcome == .ok {
                    longestGap = max(longestGap, attempt.at - lastSuccess)
                    lastSuccess = attempt.at
                    if let since = failingSince { longestOutage = max(longestOutage, attempt.at - since) }
                    failingSince = nil
                } else if failingSince == nil {
                    failingSince = attempt.at
                }
            }
            if let since = failingSince, let last = attempts.map(\.at).max() { longestOutage = max(longestOutage, last - since) }
            longestGap = max(longestGap, end - lastSuccess)
        }

        var summary: String {
            let parts = outcomes.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "\(parts.isEmpty ? "none" : parts); failing for \(String(format: "%.1f", longestOutage.seconds)) s at most; "
                + "longest wait for a success \(String(format: "%.1f", longestGap.seconds)) s"
        }
    }

    var name: String
    var kind: Kind
    var uploads: Requests
    var downloads: Requests
}

/// What the audit found once every fault was healed.
struct Audit: Sendable {
    var acknowledged = 0
    var lost: [String] = []
    var rowsWithoutObjects: [String] = []
    var objectsWithoutRows: [String] = []
    /// Jobs still queued or running after the drain: id, state, attempts, last claim and lease end.
    var unfinishedJobs: [String] = []
    var failedWithoutReason = 0
    var ready = 0
    var failed = 0
    var settled = false
    var settledMessage = ""
}

struct ChaosReport: Sendable {
    var faults: [FaultFigures]
    var audit: Audit
    var availability: Double
    var uploads: Int
    var downloads: Int
    var duration: Duration

    var text: String {
        var lines = [
            "## Chaos run, \(ISO8601DateFormatter().string(from: Date()))", "",
            "| fault | uploads | downloads |", "|---|---|---|",
        ]
        for fault in faults { lines.append("| \(fault.name) | \(fault.uploads.summary) | \(fault.downloads.summary) |") }
        lines += [
            "",
            "Whole run: \(String(format: "%.0f", duration.seconds)) s, \(uploads) upload and \(downloads) download requests, "
                + "availability \(String(format: "%.2f", availability * 100)) % (requests answered as a client wants them, retries counted).",
            "Audit: \(audit.acknowledged) acknowledged uploads, \(audit.lost.count) lost; \(audit.ready) ready, \(audit.failed) failed; "
                + "\(audit.rowsWithoutObjects.count) rows without objects, \(audit.objectsWithoutRows.count) objects without rows after reconcile; "
                + "\(audit.unfinishedJobs.count) unfinished jobs; \(audit.settledMessage)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The workload, the faults and the audit.
final class ChaosRun: Sendable {
    let settings: ChaosSettings
    private let attempts = Mutex<[Attempt]>([])
    private let acknowledged = Mutex<[Acknowledged]>([])
    /// Media ready to be downloaded: the original's URL and its SHA-256.
    private let readable = Mutex<[(url: String, sha256: String)]>([])
    private let stopping = Mutex(false)
    private let openedSets = Mutex<Set<String>>([])
    /// The owner of everything this run stores: the audit looks at its rows and objects only.
    let owner = "chaos-\(UUID().uuidString.prefix(8).lowercased())"
    static let photos = [
        "images/orientation-1.jpg", "images/orientation-6.jpg", "images/progressive.jpg", "images/png-palette-trns.png",
        "images/webp-lossy.webp", "images/gif-animated.gif", "images/gps-nikon-coolpix-p6000-1.jpg", "images/cmyk-adobe.jpg",
    ]
    static let videos = ["video/mp4-h264-aac-testpattern-8s.mp4", "video/mov-iphone-rotated-90-gps.mov", "video/webm-vp8-vorbis.webm"]

    init(settings: ChaosSettings) {
        self.settings = settings
    }

    func run() async throws -> ChaosReport {
        let started = ContinuousClock.now
        let workload = Task { await self.workload() }
        try await Task.sleep(for: settings.warmup)
        var windows: [(String, FaultFigures.Kind, ContinuousClock.Instant, ContinuousClock.Instant)] = []
        for (name, kind, host) in try await faultPlan() {
            let from = ContinuousClock.now
            try await cluster(kind == .cephPartition ? "partition" : "kill", host)
            try await Task.sleep(for: settings.hold)
            try await cluster(kind == .cephPartition ? "heal" : "restart", host)
            try await Task.sleep(for: settings.recover)
            windows.append((name, kind, from, ContinuousClock.now))
        }
        stopping.withLock { $0 = true }
        await workload.value
        let duration = ContinuousClock.now - started

        let all = attempts.withLock { $0 }
        let faults = windows.map { name, kind, from, to in
            let inWindow = all.filter { $0.at >= from && $0.at <= to }
            return FaultFigures(
                name: name,
                kind: kind,
                uploads: .init(inWindow.filter { $0.kind == .upload }, from: from, to: to),
                downloads: .init(inWindow.filter { $0.kind == .download }, from: from, to: to)
            )
        }
        let audit = try await self.audit()
        return ChaosReport(
            faults: faults,
            audit: audit,
            availability: Double(all.filter { $0.outcome == .ok }.count) / Double(max(1, all.count)),
            uploads: all.filter { $0.kind == .upload }.count,
            downloads: all.filter { $0.kind == .download }.count,
            duration: duration
        )
    }

    /// The faults in turn; the PostgreSQL primary is whichever host holds it when its turn comes.
    func faultPlan() async throws -> [(String, FaultFigures.Kind, String)] {
        let primary = try await cluster("primary").trimmingCharacters(in: .whitespacesAndNewlines)
        return [
            ("Ceph host killed (ceph2: mon, mgr, OSD)", .cephKill, "ceph2"),
            ("Ceph host cut off (ceph3's link down)", .cephPartition, "ceph3"),
            ("PostgreSQL primary killed (\(primary))", .postgresPrimary, primary),
            ("gateway killed (gw1)", .gateway, "gw1"),
        ]
    }

    // MARK: The workload

    var stopped: Bool { stopping.withLock { $0 } }

    func record(_ kind: Attempt.Kind, _ outcome: Attempt.Outcome) {
        attempts.withLock { $0.append(Attempt(kind: kind, at: .now, outcome: outcome)) }
    }

    func workload() async {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<settings.uploaders { group.addTask { await self.uploader(index) } }
            for _ in 0..<settings.downloaders { group.addTask { await self.downloader() } }
            group.addTask { await self.readinessPoller() }
        }
    }

    /// Opens a post set, uploads three photos into it one by one (and a video every fourth round), retrying
    /// each as a client would (the same file, a new request) on 503 and on a dropped connection, then commits
    /// the set.
    func uploader(_ index: Int) async {
        var round = 0
        while !stopped {
            round += 1
            guard let set = await retrying({ try await self.openSet() }) else { continue }
            var files = (0..<3).map { Self.photos[(index + round + $0) % Self.photos.count] }
            if round % 4 == 0 { files.append(Self.videos[(index + round / 4) % Self.videos.count]) }
            for path in files where !stopped {
                guard let bytes = try? Corpus.bytes(path) else { continue }
                var stored = false
                while !stored && !stopped {
                    let reply = await request(.upload) {
                        try await TestGateway.Reply.upload(self.settings.gateway, set, [(URL(fileURLWithPath: path).lastPathComponent, bytes)])
                    }
                    guard let reply else {
                        try? await Task.sleep(for: .milliseconds(300))
                        continue
                    }
                    if reply.status == 201, let id = (reply.json["media"] as? [[String: Any]])?.first?["id"] as? String {
                        let sha = SHA256.hash(data: Data(bytes)).map { String(format: "%02x", $0) }.joined()
                        acknowledged.withLock { $0.append(Acknowledged(mediaID: id, sha256: sha, size: bytes.count)) }
                        stored = true
                        try? await Task.sleep(for: settings.uploadPause)
                    } else if reply.status >= 500 {
                        try? await Task.sleep(for: .milliseconds(300))
                    } else {
                        stored = true  // refused for good (a limit reached by a retried upload that had in fact been stored)
                    }
                }
            }
            _ = await retrying { try await self.internalRequest(.POST, "/internal/v1/upload-sets/\(set.id)/commit") }
        }
    }

    /// GETs originals of ready media through the balancer and checks their bytes. A GET whose connection
    /// drops is sent again once, at once, as HTTP clients do for an idempotent request; only its last outcome
    /// is recorded.
    func downloader() async {
        while !stopped {
            guard let (url, sha) = readable.withLock({ $0.randomElement() }) else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            _ = await request(.download, retriesOnDroppedConnection: 1) {
                var request = HTTPClientRequest(url: self.settings.gateway + url)
                request.method = .GET
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                let body = try await response.body.collect(upTo: 16 << 20)
                let digest = SHA256.hash(data: Data(body.readableBytesView)).map { String(format: "%02x", $0) }.joined()
                // a whole body with other bytes would be a corruption: counted as a failure of its own (599)
                return TestGateway.Reply(
                    status: response.status.code == 200 && digest != sha ? 599 : Int(response.status.code),
                    headers: response.headers,
                    body: []
                )
            }
        }
    }

    /// Finds which acknowledged media are ready, for the downloaders.
    func readinessPoller() async {
        var known = Set<String>()
        while !stopped {
            for item in acknowledged.withLock({ $0 }) where !known.contains(item.mediaID) {
                guard let reply = try? await internalRequest(.GET, "/internal/v1/media/\(item.mediaID)"), reply.status == 200 else { continue }
                if reply.json["state"] as? String == "ready", let url = reply.json["original_url"] as? String {
                    readable.withLock { $0.append((url, item.sha256)) }
                    known.insert(item.mediaID)
                } else if reply.json["state"] as? String == "failed" {
                    known.insert(item.mediaID)
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// One request of the workload, recorded: `nil` when the connection failed.
    func request(
        _ kind: Attempt.Kind,
        retriesOnDroppedConnection retries: Int = 0,
        _ body: @escaping @Sendable () async throws -> TestGateway.Reply
    ) async -> TestGateway.Reply? {
        for attempt in 0...retries {
            do {
                let reply = try await body()
                record(kind, reply.status < 300 ? .ok : .status(reply.status))
                return reply
            } catch {
                if attempt == retries { record(kind, .transport) }
            }
        }
        return nil
    }

    /// Retries a bookkeeping call (open, commit) until it succeeds or the run stops; not recorded.
    func retrying<T: Sendable>(_ body: @escaping @Sendable () async throws -> T?) async -> T? {
        while !stopped {
            if let value = try? await body() { return value }
            try? await Task.sleep(for: .milliseconds(300))
        }
        return nil
    }

    func openSet() async throws -> TestGateway.OpenedSet? {
        let reply = try await internalRequest(
            .POST,
            "/internal/v1/upload-sets",
            json: ["owner_id": owner, "context": "post", "context_id": "p-\(UUID().uuidString.prefix(8))"]
        )
        guard reply.status == 201, let id = reply.json["id"] as? String else { return nil }
        openedSets.withLock { _ = $0.insert(id) }
        return TestGateway.OpenedSet(id: reply.json["id"] as? String ?? "", token: reply.json["upload_token"] as? String ?? "", raw: reply.body)
    }

    func internalRequest(_ method: HTTPMethod, _ path: String, json: [String: Any]? = nil) async throws -> TestGateway.Reply {
        var request = HTTPClientRequest(url: settings.gateway + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(settings.serviceToken)")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        return TestGateway.Reply(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
    }

    /// Runs a verb of `Deploy/cluster/cluster` and returns its output; a verb that fails fails the run.
    @discardableResult
    func cluster(_ arguments: String...) async throws -> String {
        let (status, output) = try await TestStack.run(settings.cluster, arguments, environment: settings.environment)
        guard status == 0 else { throw TestFailure("cluster \(arguments.joined(separator: " ")) failed (\(status)): \(output)") }
        return output
    }

    // MARK: The audit

    func audit() async throws -> Audit {
        var audit = Audit()
        let items = acknowledged.withLock { $0 }
        audit.acknowledged = items.count

        // every job ends, ready or failed with a reason
        let deadline = ContinuousClock.now + settings.drain
        var pending = items.map(\.mediaID)
        while !pending.isEmpty && ContinuousClock.now < deadline {
            var still: [String] = []
            for id in pending {
                let state = (try? await internalRequest(.GET, "/internal/v1/media/\(id)"))?.json["state"] as? String
                if state == nil || state == "stored" || state == "processing" { still.append(id) }
            }
            pending = still
            if !pending.isEmpty { try await Task.sleep(for: .seconds(2)) }
        }

        // the database and the pools agree, once the reconciler has run (no upload is in flight now)
        let environment = settings.environment
        let reconcile = try await TestStack.run(TestStack.mediagwPath, ["reconcile", "--grace", "0s"], environment: environment)
        if reconcile.status != 0 { throw TestFailure("mediagw reconcile failed: \(reconcile.output)") }
        let storage = try StorageConfiguration(environment: EnvironmentReader(environment))
        let runtime = try await MediaRuntime.connect(
            storage: storage,
            database: try PostgresConfiguration(environment: EnvironmentReader(environment)),
            logger: TestStack.logger
        )
        let owner = self.owner
        let gateway = settings.gateway
        let sets = openedSets.withLock { $0 }
        let counted = audit
        audit = try await runtime.run { runtime in
            var audit = counted
            // every acknowledged upload has its row, with the bytes' digest and size, and its original whole:
            // through the balancer once ready, straight from the pool otherwise
            for item in items {
                guard let id = MediaID(item.mediaID), let media = try await runtime.metadata.media(id) else {
                    audit.lost.append("\(item.mediaID): no row")
                    continue
                }
                switch media.state {
                case .ready: audit.ready += 1
                case .failed:
                    audit.failed += 1
                    if (media.failureReason ?? "").isEmpty { audit.failedWithoutReason += 1 }
                default: break
                }
                guard media.sha256 == item.sha256, media.size == Int64(item.size) else {
                    audit.lost.append("\(item.mediaID): row says \(media.size) bytes, \(media.sha256)")
                    continue
                }
                var body: [UInt8] = []
                var via = "the pool"
                if media.state == .ready,
                    let reply = try await self.internalRequest(.GET, "/internal/v1/media/\(item.mediaID)").json["original_url"] as? String
                {
                    via = "GET"
                    var request = HTTPClientRequest(url: gateway + reply)
                    request.method = .GET
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                    let collected = try await response.body.collect(upTo: 16 << 20)
                    if response.status.code == 200 { body = Array(collected.readableBytesView) }
                } else {
                    for try await chunk in runtime.blobs.read(media.location, range: nil) { body += chunk.readableBytesView }
                }
                let digest = SHA256.hash(data: Data(body)).map { String(format: "%02x", $0) }.joined()
                if digest != item.sha256 { audit.lost.append("\(item.mediaID): \(via) gave \(body.count) other bytes") }
            }

            // this run's rows have their objects, and its objects their rows
            let client = runtime.metadata.database.client
            var rows: [ObjectLocation] = []
            var prefixes = Set(sets.map { $0 + "/" })
            for try await (pool, key, id, set) in try await client.query(
                """
                SELECT pool, object_key, id::text, upload_set_id::text FROM media
                    WHERE owner_id = \(owner) AND purged_at IS NULL AND deleted_at IS NULL
                """
            ).decode((String, String, String, String).self) {
                rows.append(ObjectLocation(pool: pool, key: key))
                prefixes.formUnion([id + "/", set + "/"])
            }
            for try await (pool, key) in try await client.query(
                "SELECT r.pool, r.object_key FROM renditions r JOIN media m ON m.id = r.media_id WHERE m.owner_id = \(owner)"
            ).decode((String, String).self) {
                rows.append(ObjectLocation(pool: pool, key: key))
            }
            for try await job in try await client.query(
                """
                SELECT format('job %s of %s: %s, attempt %s, claimed or queued %s, lease until %s', j.id, m.id, j.state, j.attempts,
                              j.updated_at, coalesce(j.leased_until::text, '-'))
                FROM jobs j JOIN media m ON m.id = j.media_id WHERE m.owner_id = \(owner) AND j.state IN ('queued', 'running')
                """
            ).decode(String.self) {
                audit.unfinishedJobs.append(job)
            }
            for location in rows where try await !runtime.blobs.exists(location) {
                audit.rowsWithoutObjects.append(location.description)
            }
            let known = Set(rows.map(\.description))
            for pool in storage.pools.all {
                var arguments = ["-c", storage.rados.configPath, "--id", storage.rados.clientID, "-p", pool, "ls"]
                if let keyring = storage.rados.keyringPath { arguments += ["--keyring", keyring] }
                let (status, output) = try await TestStack.run("/usr/bin/rados", arguments)
                guard status == 0 else { throw TestFailure("rados ls \(pool) failed: \(output)") }
                for key in output.split(separator: "\n").map(String.init) {
                    guard let slash = key.firstIndex(of: "/"), prefixes.contains(String(key[...slash])) else { continue }
                    if !known.contains("\(pool)/\(key)") { audit.objectsWithoutRows.append("\(pool)/\(key)") }
                }
            }
            return audit
        }

        // Ceph healthy again, the standby caught up
        let (status, output) = try await TestStack.run(settings.cluster, ["settled", "120"], environment: settings.environment)
        audit.settled = status == 0
        audit.settledMessage = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return audit
    }
}
