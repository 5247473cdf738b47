import Foundation
import MediaApp

/// What `wrk --latency` printed.
struct WrkResult {
    var requestsPerSecond: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var non2xx: Int
    var errors: Int
    var requests: Int

    /// Runs wrk (with a Lua script, or plain GETs of `url` without one) and parses its summary.
    static func run(url: String, script: String? = nil, connections: Int, threads: Int = 2, seconds: Int) throws -> WrkResult {
        let output = try runProcess(
            ["wrk", "-t\(min(threads, connections))", "-c\(connections)", "-d\(seconds)s", "--latency", "--timeout", "30s"]
                + (script.map { ["-s", $0] } ?? []) + [url]
        )
        func number(after label: String) -> Double? {
            guard let line = output.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }) else {
                return nil
            }
            return line.split(separator: " ").dropFirst(label.split(separator: " ").count).first.flatMap { milliseconds(String($0)) ?? Double($0) }
        }
        func milliseconds(_ text: String) -> Double? {
            for (suffix, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where text.hasSuffix(suffix) {
                if let value = Double(text.dropLast(suffix.count)) { return value * factor }
            }
            return nil
        }
        guard let rate = number(after: "Requests/sec:"), let p50 = number(after: "50%"), let p99 = number(after: "99%") else {
            throw BenchError("could not read wrk output:\n\(output)")
        }
        let non2xx =
            output.split(separator: "\n").first { $0.contains("Non-2xx or 3xx responses:") }
            .flatMap { Int($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 0
        let errors =
            output.split(separator: "\n").first { $0.contains("Socket errors:") }
            .map { $0.split(separator: ",").compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +) } ?? 0
        let requests =
            output.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        return WrkResult(requestsPerSecond: rate, p50Milliseconds: p50, p99Milliseconds: p99, non2xx: non2xx, errors: errors, requests: requests)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    /// What to run first when the stack's radosgw settings are missing.
    static let needsRadosgw = BenchError("run `Deploy/local/stack up rgw` and `eval \"$(Deploy/local/stack env)\"` first")
}

/// The release `mediagw` beside this benchmark's executable.
let mediagwBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("mediagw").path

/// The first service token of the stack's environment (`Deploy/local/stack env`).
func stackServiceToken(_ environment: [String: String]) -> String? {
    environment["MEDIAGW_SERVICE_TOKENS"]?.split(separator: ",").first.map(String.init)
}

/// Refuses to measure a gateway while the job queue holds work of earlier runs: the gateway's processors
/// would work on it during the measurement, and their CPU counts as the gateway's (a leftover ingest of
/// 2,000 photos once doubled the origin's CPU per GB).
func requireIdleJobQueue(_ environment: [String: String]) throws {
    let database = environment["MEDIAGW_DATABASE_URL"] ?? ""
    let count = try runProcess(["psql", database, "-Atc", "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"])
        .trimmingCharacters(in: .whitespacesAndNewlines)
    guard count == "0" else {
        throw BenchError(
            "\(count) processing jobs of earlier runs are queued or running: the gateway's processors would work on them "
                + "during the measurement and count in its CPU. Let them finish, or remove them: "
                + "psql \"$MEDIAGW_DATABASE_URL\" -c \"DELETE FROM jobs WHERE state IN ('queued', 'running')\""
        )
    }
}

/// A `mediagw serve` of the release build, for benchmarks.
final class BenchGateway {
    let process: Process
    let port: Int
    let baseURL: String

    init(binary: String, environment: [String: String]) throws {
        port = 21000 + Int.random(in: 0..<4000)
        baseURL = "http://127.0.0.1:\(port)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"]
        var environment = environment
        environment["MEDIAGW_PORT"] = "\(port)"
        environment["MEDIAGW_LOG_LEVEL"] = "warning"
        environment["MEDIAGW_RECONCILE_INTERVAL"] = "0"
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 {
            if (try? runProcess(["curl", "-sf", "\(baseURL)/readyz"])) != nil { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        process.terminate()
        throw BenchError("the gateway did not become ready")
    }

    /// Peak resident memory so far, in MiB.
    var peakRSS: Double {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    /// Opens `count` upload sets and returns (set id, upload token) pairs.
    func openSets(_ count: Int, context: String, serviceToken: String) throws -> [(String, String)] {
        try (0..<count).map { index in
            let json = try runProcess([
                "curl", "-sf", "-X", "POST", "\(baseURL)/internal/v1/upload-sets", "-H", "Authorization: Bearer \(serviceToken)",
                "-d", #"{"owner_id": "bench", "context": "\#(context)", "context_id": "bench-\#(index)"}"#,
            ])
            guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let id = object["id"] as? String, let token = object["upload_token"] as? String
            else { throw BenchError("unexpected answer: \(json)") }
            return (id, token)
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    // a benchmark that fails half way leaves no gateway behind (holding its port and the caller's pipe)
    deinit { stop() }
}

/// A scratch directory for bench inputs (Lua scripts, bodies).
func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mediagw-bench-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A wrk script that posts one multipart body, rotating over upload sets (path and token per request).
func multipartUploadScript(sets: [(String, String)], bodyFile: URL, boundary: String, in directory: URL) throws -> String {
    let entries = sets.map { #"{"/v1/upload-sets/\#($0.0)/media", "Bearer \#($0.1)"}"# }.joined(separator: ",\n  ")
    let script = """
        local sets = {
          \(entries)
        }
        local f = io.open("\(bodyFile.path)", "rb")
        local body = f:read("*all")
        f:close()
        local counter = 0
        function setup(thread)
          thread:set("offset", counter)
          counter = counter + 7
        end
        local i = 0
        request = function()
          i = i + 1
          local entry = sets[((i + offset) % #sets) + 1]
          return wrk.format("POST", entry[1], {
            ["Authorization"] = entry[2],
            ["Content-Type"] = "multipart/form-data; boundary=\(boundary)",
          }, body)
        end
        """
    let url = directory.appendingPathComponent("upload-\(UUID().uuidString.prefix(6)).lua")
    try script.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// A multipart body with one file of `payload`.
func multipartBody(_ payload: [UInt8], filename: String, boundary: String) -> [UInt8] {
    Array(
        "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            .utf8
    )
        + payload + Array("\r\n--\(boundary)--\r\n".utf8)
}

/// A bucket of the stack's radosgw, through its S3 API signed by curl (SigV4), with no SDK to install.
struct S3Bucket {
    let endpoint: String
    let name: String
    private let credentials: String

    /// The stack's radosgw (`Deploy/local/stack up rgw` and its `env`), or nil when it is not configured.
    init?(name: String, environment: [String: String]) {
        guard let endpoint = environment["STACK_S3_ENDPOINT"], let access = environment["STACK_S3_ACCESS_KEY"],
            let secret = environment["STACK_S3_SECRET_KEY"]
        else { return nil }
        self.endpoint = endpoint
        self.name = name
        credentials = "\(access):\(secret)"
    }

    private func signed(_ arguments: [String]) throws {
        _ = try runProcess(
            [
                "curl", "-sSf", "-o", "/dev/null", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", credentials,
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            ] + arguments
        )
    }

    /// Creates the bucket (if needed) with a canned ACL such as `public-read-write`.
    func create(acl: String) throws {
        try? remove()
        try signed(["-X", "PUT", "-H", "x-amz-acl: \(acl)", "\(endpoint)/\(name)"])
    }

    /// Stores a file under `key`, readable by anyone.
    func putPublic(_ file: URL, key: String) throws {
        try signed(["-T", file.path, "-H", "x-amz-acl: public-read", url(key)])
    }

    func url(_ key: String) -> String { "\(endpoint)/\(name)/\(key)" }

    /// The variables that define an rclone remote `name` (used as `name:bucket`) for this radosgw.
    func rcloneRemote(named name: String) -> [String: String] {
        let (access, secret) = (credentials.prefix { $0 != ":" }, credentials.drop { $0 != ":" }.dropFirst())
        let prefix = "RCLONE_CONFIG_\(name.uppercased())_"
        return [
            prefix + "TYPE": "s3", prefix + "PROVIDER": "Ceph", prefix + "ENDPOINT": endpoint, prefix + "ACCESS_KEY_ID": String(access),
            prefix + "SECRET_ACCESS_KEY": String(secret), prefix + "REGION": "us-east-1",
        ]
    }

    /// Deletes the bucket and its objects.
    func remove() throws {
        let ceph = ProcessInfo.processInfo.environment["CEPH_CONF"] ?? ProcessInfo.processInfo.environment["MEDIAGW_CEPH_CONF"] ?? ""
        _ = try runProcess(["radosgw-admin", "-c", ceph, "-n", "client.admin", "bucket", "rm", "--bucket=\(name)", "--purge-objects"])
    }
}

/// What `rados bench ... write` printed.
struct RadosBenchResult {
    /// Decimal MB/s (rados prints MiB/s and calls it MB/sec).
    var megabytesPerSecond: Double
    var seconds: Double
    var averageLatency: Double

    /// Runs `rados bench <seconds> write` into a pool with the gateway's Ceph identity and parses its summary.
    static func run(
        _ configuration: StorageConfiguration,
        pool: String,
        seconds: Int,
        objectSize: Int,
        concurrency: Int,
        maxObjects: Int? = nil,
        runName: String
    ) throws -> RadosBenchResult {
        var arguments = ["rados", "-c", configuration.rados.configPath, "--id", configuration.rados.clientID]
        if let keyring = configuration.rados.keyringPath { arguments += ["--keyring", keyring] }
        arguments += ["-p", pool, "bench", "\(seconds)", "write", "-b", "\(objectSize)", "-t", "\(concurrency)", "--run-name", runName]
        if let maxObjects { arguments += ["--max-objects", "\(maxObjects)"] }
        let output = try runProcess(arguments)
        func value(_ label: String) -> Double? {
            output.split(separator: "\n").first { $0.hasPrefix(label) }.flatMap {
                Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))
            }
        }
        guard let mib = value("Bandwidth (MB/sec)"), let time = value("Total time run"), let latency = value("Average Latency(s)") else {
            throw BenchError("could not read rados bench output:\n\(output)")
        }
        return RadosBenchResult(megabytesPerSecond: mib * 1.048576, seconds: time, averageLatency: latency)
    }
}
