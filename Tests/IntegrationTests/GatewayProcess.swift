import Foundation
import Testing

/// A `mediagw serve` process of the built binary, for what only a real process can show: kill -9, SIGTERM.
final class GatewayProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let logPath: URL

    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(process: Process, port: Int, logPath: URL) {
        self.process = process
        self.port = port
        self.logPath = logPath
    }

    static func start(_ overrides: [String: String] = [:]) async throws -> GatewayProcess {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mediagw-\(UUID()).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestStack.mediagwPath)
        process.arguments = ["serve"]
        process.environment = TestGateway.environment(overrides)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"http\.port=(\d+)"#, options: .regularExpression),
               let port = Int(text[range].split(separator: "=").last ?? "") {
                return GatewayProcess(process: process, port: port, logPath: log)
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
