import AsyncHTTPClient
import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Testing

/// A `mediagw serve` process of the built binary, for what only a real process can show: kill -9, SIGTERM.
final class GatewayProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let logPath: URL
    let isolation: Isolation

    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(process: Process, port: Int, logPath: URL, isolation: Isolation) {
        self.process = process
        self.port = port
        self.logPath = logPath
        self.isolation = isolation
    }

    /// Starts `mediagw serve` on `isolation`'s slice of the stack.
    static func start(_ isolation: Isolation, _ overrides: [String: String] = [:]) async throws -> GatewayProcess {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mediagw-\(UUID()).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestStack.mediagwPath)
        process.arguments = ["serve"]
        process.environment = TestGateway.environment(isolation, overrides)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            // the text format writes http.port=N, the JSON one "http.port":"N"
            if let match = text.firstMatch(of: /http\.port"?[=:]"?(\d+)/), let port = Int(match.output.1) {
                return GatewayProcess(process: process, port: port, logPath: log, isolation: isolation)
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        throw TestFailure("mediagw serve did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    var log: String { (try? String(contentsOf: logPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit and returns its status (or `nil` if it still runs after `timeout`).
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension GatewayProcess {
    /// Polls the internal API until the media item leaves `stored` and `processing`; the item as it is then.
    func settled(_ id: String) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: baseURL + "/internal/v1/media/\(id)")
            request.headers.add(name: "Authorization", value: "Bearer \(TestGateway.serviceToken)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            if let state = json["state"] as? String, state != "stored" && state != "processing" { return json }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("media \(id) did not settle")
    }

    /// Opens an upload set through this process's internal API.
    func openSet(context: String = "post") async throws -> TestGateway.OpenedSet {
        var request = HTTPClientRequest(url: baseURL + "/internal/v1/upload-sets")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(TestGateway.serviceToken)")
        request.body = .bytes(
            ByteBuffer(string: #"{"owner_id": "process-test", "context": "\#(context)", "context_id": "c-\#(UUID().uuidString.prefix(8))"}"#)
        )
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        let json = (try JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        return TestGateway.OpenedSet(id: json["id"] as? String ?? "", token: json["upload_token"] as? String ?? "", raw: body)
    }

    /// Uploads one file and returns its media id.
    func upload(_ set: TestGateway.OpenedSet, _ filename: String, _ bytes: [UInt8]) async throws -> String {
        let reply = try await TestGateway.Reply.upload(baseURL, set, [(filename, bytes)])
        return try #require((reply.json["media"] as? [[String: Any]])?.first?["id"] as? String, "\(reply.text)")
    }

    /// The processor processes this gateway started (an unreadable `/proc` is an error, never "none").
    func processorPIDs() throws -> [Int32] {
        let parent = process.processIdentifier
        let entries = try FileManager.default.contentsOfDirectory(atPath: "/proc")
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 2 && Int32(fields[1]) == parent
        }
    }

    /// Resident memory of a process, in MiB.
    static func residentMiB(_ pid: Int32) -> Double {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}
