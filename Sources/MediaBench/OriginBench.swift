import ArgumentParser
import Foundation
import MediaApp
import Synchronization

/// Origin GETs through the gateway beside radosgw GETs of the same bytes and nginx serving them from local
/// disk, in one run: a photo rendition of about 100 KB and a video of about 10 MB, 32 connections each; then
/// the gateway's peak RSS while 100 clients stream the video, and while 50 stream it and 50 fetch the rendition.
struct OriginBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Origin GET vs radosgw GET vs nginx from disk (100 KB rendition, 10 MB video); peak RSS under 100 video streams, and a mixed load."
    )

    @Option(help: "Seconds per measurement.")
    var seconds = 10
    @Option(help: "Rounds of the throughput and memory phases (the servers' order alternates; medians are reported).")
    var rounds = 3
    @Option(help: "Concurrent connections of the throughput phase.")
    var connections = 32
    @Option(help: "Concurrent clients of the memory phase.")
    var memoryClients = 100
    @Option(help: "Size of the generated video, in bytes (at most the video limit of 10 MiB).")
    var videoSize = 9_800_000

    func validate() throws {
        guard seconds >= 1, rounds >= 1, connections >= 1, memoryClients >= 1 else {
            throw ValidationError("--seconds, --rounds, --connections and --memory-clients must be at least 1")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serviceToken = stackServiceToken(environment),
            let bucket = S3Bucket(name: "mediagw-origin-bench", environment: environment)
        else {
            throw BenchError.needsRadosgw
        }
        try requireIdleJobQueue(environment)
        var gatewayEnvironment = environment
        gatewayEnvironment["MEDIAGW_LIMIT_COMMUNITY_PHOTO"] = "5:16MiB"
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        // 1. the objects: a detailed photo (its rendition nearest 100 KB is measured) and a 10 MB video,
        //    uploaded, processed, then fetched back so that every server below serves the very same bytes
        let photoFile = scratch.appendingPathComponent("source.jpg")
        let videoFile = scratch.appendingPathComponent("source.mp4")
        try Self.generatePhoto(photoFile)
        try Self.generateVideo(videoFile, size: videoSize)
        var gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
        let set = try gateway.openSets(1, context: "community", serviceToken: serviceToken)[0]
        let uploaded = try runProcess([
            "curl", "-sSf", "-X", "POST", "\(gateway.baseURL)/v1/upload-sets/\(set.0)/media", "-H", "Authorization: Bearer \(set.1)",
            "-F", "photo=@\(photoFile.path)", "-F", "video=@\(videoFile.path)",
        ])
        let ids = ((try JSONSerialization.jsonObject(with: Data(uploaded.utf8)) as? [String: Any])?["media"] as? [[String: Any]] ?? [])
            .compactMap { $0["id"] as? String }
        guard ids.count == 2 else { throw BenchError("the upload was not accepted: \(uploaded)") }
        let photo = try gateway.ready(ids[0], serviceToken: serviceToken)
        let video = try gateway.ready(ids[1], serviceToken: serviceToken)
        let renditions = (photo["renditions"] as? [[String: Any]] ?? []).filter { $0["url"] is String && $0["size"] is Int }
        guard let rendition = renditions.min(by: { abs(($0["size"] as! Int) - 100_000) < abs(($1["size"] as! Int) - 100_000) }),
            let videoPath = video["original_url"] as? String, let videoBytes = video["size"] as? Int
        else { throw BenchError("unexpected media: \(photo) \(video)") }
        let renditionPath = rendition["url"] as! String
        let renditionBytes = rendition["size"] as! Int
        let objects = [("rendition", renditionPath, renditionBytes), ("video", videoPath, videoBytes)]

        let staticRoot = scratch.appendingPathComponent("static")
        try FileManager.default.createDirectory(at: staticRoot, withIntermediateDirectories: true)
        try bucket.create(acl: "private")
        defer { try? bucket.remove() }
        for (name, path, _) in objects {
            let file = staticRoot.appendingPathComponent(name)
            _ = try runProcess(["curl", "-sSf", "-o", file.path, gateway.baseURL + path])
            try bucket.putPublic(file, key: name)
        }
        let nginx = try StaticNginx(root: staticRoot, directory: scratch)
        defer { nginx.stop() }
        print(
            "origin: \(renditionBytes) B rendition (\(rendition["name"] as! String)), \(videoBytes) B video; \(connections) connections, \(seconds) s each"
        )

        // 2. the same GETs from the three servers, one after the other, in rounds whose order alternates
        // each server's URL of an object, from its name and its origin path
        let gatewayURL = gateway.baseURL
        let servers: [(String, (_ name: String, _ path: String) -> String)] = [
            ("gateway", { _, path in gatewayURL + path }), ("radosgw", { name, _ in bucket.url(name) }),
            ("nginx disk", { name, _ in nginx.baseURL + "/" + name }),
        ]
        var results: [String: [WrkResult]] = [:]  // "object server" → one result per round
        var cpu: [String: [[(String, Double)]]] = [:]  // "object server" → CPU s/GB by process, per round
        let gatewayPID = gateway.process.processIdentifier
        let meters: [String: CPUMeter] = [
            "gateway": CPUMeter(servers: [CPUMeter.Server(name: "gateway") { [gatewayPID] }, StackProcess.osd.server]),
            "radosgw": CPUMeter(servers: [StackProcess.rgw.server, StackProcess.osd.server]),
            "nginx disk": CPUMeter(servers: [CPUMeter.Server(name: "nginx") { nginx.pids }]),
        ]
        for round in 0..<rounds {
            for (name, path, size) in objects {
                for (server, url) in round % 2 == 0 ? servers : servers.reversed() {
                    let meter = meters[server]!
                    let before = meter.snapshot()
                    let result = try WrkResult.run(url: url(name, path), connections: connections, seconds: seconds)
                    cpu["\(name) \(server)", default: []].append(
                        meter.snapshot().perGB(
                            since: before,
                            bytes: Double(result.requests) * Double(size),
                            order: ["gateway", "radosgw", "nginx", "OSD"]
                        )
                    )
                    guard result.non2xx == 0, result.errors == 0 else {
                        throw BenchError("\(server) \(name): \(result.non2xx) non-2xx answers, \(result.errors) socket errors")
                    }
                    results["\(name) \(server)", default: []].append(result)
                }
            }
        }
        gateway.stop()

        // 3. peak RSS of a fresh gateway while many clients stream the video, once per round
        var memory: [(idle: Double, peak: Double, megabytesPerSecond: Double)] = []
        for _ in 0..<rounds {
            gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
            let idleRSS = gateway.peakRSS
            let streamed = try WrkResult.run(url: gateway.baseURL + videoPath, connections: memoryClients, seconds: seconds)
            memory.append((idleRSS, gateway.peakRSS, streamed.requestsPerSecond * Double(videoBytes) / 1e6))
            gateway.stop()
        }
        // 4. and while half of them stream the video and half fetch the rendition at once: the two read-buffer
        //    classes (chunk-size and small) are both in use
        var mixed: [(peak: Double, videoMegabytesPerSecond: Double, renditionsPerSecond: Double)] = []
        let videoClients = max(1, memoryClients / 2)
        let renditionClients = max(1, memoryClients - videoClients)
        for _ in 0..<rounds {
            gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
            let urls = [(gateway.baseURL + videoPath, videoClients), (gateway.baseURL + renditionPath, renditionClients)]
            let outcomes = Mutex<[Int: Result<WrkResult, any Error>]>([:])
            DispatchQueue.concurrentPerform(iterations: urls.count) { index in
                let outcome = Result { try WrkResult.run(url: urls[index].0, connections: urls[index].1, seconds: seconds) }
                outcomes.withLock { $0[index] = outcome }
            }
            let (video, photo) = try outcomes.withLock { (try $0[0]!.get(), try $0[1]!.get()) }
            guard video.non2xx + video.errors + photo.non2xx + photo.errors == 0 else {
                throw BenchError("mixed memory phase: non-2xx answers or socket errors (video \(video), rendition \(photo))")
            }
            mixed.append((gateway.peakRSS, video.requestsPerSecond * Double(videoBytes) / 1e6, photo.requestsPerSecond))
            gateway.stop()
        }
        _ = try? runProcess([
            "psql", environment["MEDIAGW_DATABASE_URL"] ?? "", "-qc",
            "UPDATE upload_sets SET expires_at = now() WHERE owner_id = 'bench' AND state = 'draft'",
        ])
        _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])

        print("medians of \(rounds) rounds:")
        for (name, _, size) in objects {
            for (server, _) in servers {
                let runs = results["\(name) \(server)"] ?? []
                let rate = median(runs.map(\.requestsPerSecond))
                print(
                    "\(name) \(server):".padding(toLength: 22, withPad: " ", startingAt: 0)
                        + "\(format(rate)) req/s, \(format(rate * Double(size) / 1e6)) MB/s, p50 \(format(median(runs.map(\.p50Milliseconds)))) ms, p99 \(format(median(runs.map(\.p99Milliseconds)))) ms; "
                        + CPUMeter.describe(Self.medianCPU(cpu["\(name) \(server)"] ?? []))
                )
            }
        }
        for (name, _, _) in objects {
            let rates = { (server: String) in (results["\(name) \(server)"] ?? []).map(\.requestsPerSecond) }
            let perRound = zip(rates("gateway"), rates("radosgw")).map { format($0 / $1, 2) }.joined(separator: ", ")
            let cost = { (server: String) in Self.medianCPU(cpu["\(name) \(server)"] ?? []).first?.1 ?? .nan }
            print("CPU per GB \(name): gateway / radosgw \(format(cost("gateway") / cost("radosgw"), 2)) (target <= 0.5)")
            print(
                "ratios \(name): gateway / radosgw \(format(median(rates("gateway")) / median(rates("radosgw")), 2)) (target >= 1.5; rounds: \(perRound)), "
                    + "gateway / nginx from disk \(format(median(rates("gateway")) / median(rates("nginx disk")), 2))"
            )
        }
        let peaks = memory.map { format($0.peak) }.joined(separator: ", ")
        print(
            "memory: \(memoryClients) clients streaming the video: \(format(median(memory.map(\.megabytesPerSecond)))) MB/s; gateway peak RSS per round \(peaks) MiB "
                + "(idle \(format(median(memory.map(\.idle)))) MiB; target <= 150 MiB in every round)"
        )
        print(
            "memory, mixed: \(videoClients) clients streaming the video (\(format(median(mixed.map(\.videoMegabytesPerSecond)))) MB/s) and "
                + "\(renditionClients) fetching the rendition (\(format(median(mixed.map(\.renditionsPerSecond)))) req/s) at once; "
                + "gateway peak RSS per round \(mixed.map { format($0.peak) }.joined(separator: ", ")) MiB"
        )
    }

    /// The median CPU s/GB of each process over the rounds, in the rounds' order of processes.
    static func medianCPU(_ rounds: [[(String, Double)]]) -> [(String, Double)] {
        guard let first = rounds.first else { return [] }
        return first.map { name, _ in (name, median(rounds.compactMap { $0.first { $0.0 == name }?.1 })) }
    }

    /// A 3000x2000 JPEG with fine detail (noise over a test pattern), so that its renditions are not tiny.
    static func generatePhoto(_ file: URL) throws {
        _ = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=3000x2000",
            "-vf", "noise=alls=30:allf=u", "-frames:v", "1", "-q:v", "3", file.path,
        ])
    }

    /// An H.264/AAC MP4 of about `size` bytes: noisy 720p at the bit rate that gives that size in 10 s.
    static func generateVideo(_ file: URL, size: Int) throws {
        let bitrate = size * 8 / 10 * 95 / 100
        _ = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-vf", "noise=alls=20:allf=t", "-t", "10",
            "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "\(bitrate)", "-maxrate", "\(bitrate)", "-bufsize", "\(bitrate)",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-shortest", file.path,
        ])
        let written = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        guard written <= 10 << 20 else { throw BenchError("the generated video has \(written) bytes, over the 10 MiB limit; lower --video-size") }
    }
}

extension BenchGateway {
    /// Waits until a media item is processed and returns its internal API representation.
    func ready(_ id: String, serviceToken: String, timeout: TimeInterval = 600) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let json = try runProcess(["curl", "-sSf", "\(baseURL)/internal/v1/media/\(id)", "-H", "Authorization: Bearer \(serviceToken)"])
            let media = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
            switch media["state"] as? String {
            case "ready": return media
            case "stored", "processing": Thread.sleep(forTimeInterval: 0.5)
            default: throw BenchError("media \(id) was not processed: \(json)")
            }
        }
        throw BenchError("media \(id) was not processed within \(Int(timeout)) s")
    }
}

/// nginx from Debian's packages serving a directory from local disk (sendfile), the ceiling of a static server.
struct StaticNginx {
    let baseURL: String
    let configuration: URL
    let pidFile: String

    /// The master process (its workers are its children).
    var pids: [Int32] {
        ((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").split(whereSeparator: \.isNewline).compactMap { Int32($0) }
    }

    init(root: URL, directory: URL) throws {
        let port = 25000 + Int.random(in: 0..<4000)
        baseURL = "http://127.0.0.1:\(port)"
        configuration = directory.appendingPathComponent("static-nginx.conf")
        pidFile = "\(directory.path)/static-nginx.pid"
        try """
        user root;
        worker_processes auto;
        pid \(directory.path)/static-nginx.pid;
        error_log \(directory.path)/static-nginx.error.log;
        events { worker_connections 1024; }
        http {
            access_log off;
            sendfile on;
            tcp_nopush on;
            keepalive_requests 100000;
            default_type application/octet-stream;
            server {
                listen 127.0.0.1:\(port);
                root \(root.path);
            }
        }
        """.write(to: configuration, atomically: true, encoding: .utf8)
        // The daemon keeps no descriptor of ours: an output pipe or Foundation's own child-monitoring socket
        // held open by nginx would keep this launch from ever being seen to finish.
        _ = try runProcess([
            "bash", "-c",
            """
            for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null; done
            exec nginx -c '\(configuration.path)' -p '\(directory.path)' </dev/null >/dev/null 2>&1
            """,
        ])
        for _ in 0..<50 {
            if (try? runProcess(["curl", "-s", "-o", "/dev/null", baseURL])) != nil { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw BenchError("nginx did not start (see \(directory.path)/static-nginx.error.log)")
    }

    func stop() {
        _ = try? runProcess(["nginx", "-c", configuration.path, "-s", "stop"])
    }
}
