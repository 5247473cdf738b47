import Foundation
import Logging
import MediaConcurrency
import MediaCore
import NIOConcurrencyHelpers

/// Processes jobs in separate processor processes (`mediagw-processor child`), one job at a time each: a
/// crash or a runaway decoder takes down one process and fails one job attempt, never the worker. Each
/// process has a data memory limit, and a job past its timeout gets its process killed. The process that
/// runs the pool never loads the media libraries.
public actor ProcessPool: MediaProcessing {
    private let executable: String
    private let arguments: [String]
    private let environment: [String: String]
    private let size: Int
    private let timeout: Duration
    private let logger: Logger
    private var idle: [ProcessorProcess] = []
    private var live = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// - Parameters:
    ///   - executable: the processor program; `arguments` make it serve jobs on its standard input.
    ///   - size: processor processes at most (one per worker).
    ///   - timeout: the longest a job may take; its process is killed after it.
    public init(executable: String, arguments: [String] = ["child"], environment: [String: String], size: Int, timeout: Duration, logger: Logger) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.size = size
        self.timeout = timeout
        self.logger = logger
    }

    public func process(_ job: ProcessingJob) async throws -> ProcessingOutcome {
        let child = try await checkout()
        let timeout = self.timeout
        do {
            let outcome = try await withDeadline(timeout + .seconds(5)) { try await child.run(job) }
            checkin(child)
            return outcome
        } catch is DeadlineExceeded {
            child.kill()
            release()
            throw ProcessingError(.timedOut, "processing took longer than \(timeout)", permanent: false)
        } catch let error as ProcessingError {
            if child.isAlive { checkin(child) } else { release() }
            throw error
        } catch {
            child.kill()
            release()
            throw ProcessingError(.internal, "\(error)")
        }
    }

    /// Stops every idle processor (at shutdown).
    public func shutdown() {
        for child in idle { child.kill() }
        idle.removeAll()
    }

    private func checkout() async throws -> ProcessorProcess {
        while true {
            if let child = idle.popLast() {
                if child.isAlive { return child }
                live -= 1
                continue
            }
            if live < size {
                live += 1
                do {
                    return try ProcessorProcess(executable: executable, arguments: arguments, environment: environment, logger: logger)
                } catch {
                    live -= 1
                    throw ProcessingError(.internal, "cannot start a processor: \(error)", permanent: false)
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func checkin(_ child: ProcessorProcess) {
        idle.append(child)
        wake()
    }

    private func release() {
        live -= 1
        wake()
    }

    private func wake() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }
}

/// One processor process, spoken to with JSON lines over its standard input and output.
final class ProcessorProcess: @unchecked Sendable {
    private let process: Process
    private let requests: FileHandle
    private let responses: FileHandle
    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    private struct State {
        var buffer: [UInt8] = []
        var lines: [[UInt8]] = []
        var waiting: CheckedContinuation<[UInt8]?, Never>?
        var closed = false
        var abandoned = false
    }

    init(executable: String, arguments: [String], environment: [String: String], logger: Logger) throws {
        self.logger = logger
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = environment
        environment["MALLOC_ARENA_MAX"] = "2"
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        requests = input.fileHandleForWriting
        responses = output.fileHandleForReading
        try process.run()
        let thread = Thread { [self] in self.readLoop() }
        thread.start()
    }

    var isAlive: Bool { process.isRunning && !state.withLockedValue { $0.closed || $0.abandoned } }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        try? requests.close()
    }

    /// Sends one job and waits for its answer.
    func run(_ job: ProcessingJob) async throws -> ProcessingOutcome {
        var line = try JSONEncoder().encode(ChildRequest(job: job))
        line.append(0x0A)
        do {
            try requests.write(contentsOf: line)
        } catch {
            throw ProcessingError(.crashed, "the processor is gone", permanent: false)
        }
        guard let answer = await nextLine() else {
            let status = process.isRunning ? "closed its output" : "died (signal or status \(process.terminationStatus))"
            throw ProcessingError(.crashed, "the processor \(status) while processing this file", permanent: false)
        }
        let response = try JSONDecoder().decode(ChildResponse.self, from: Data(answer))
        if let error = response.error { throw error }
        guard let outcome = response.outcome else { throw ProcessingError(.internal, "the processor answered nothing") }
        return outcome
    }

    /// The next line the child wrote, or `nil` when its output closed or the wait was cancelled (the
    /// pool's deadline passed: without this the deadline would wait for a child that never answers).
    private func nextLine() async -> [UInt8]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready: [UInt8]?? = state.withLockedValue { state in
                    if !state.lines.isEmpty { return .some(state.lines.removeFirst()) }
                    if state.closed || state.abandoned { return .some(nil) }
                    state.waiting = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<[UInt8]?, Never>? = state.withLockedValue { state in
                // a child whose answer was given up on is killed, never asked again
                state.abandoned = true
                defer { state.waiting = nil }
                return state.waiting
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Reads the child's output on a thread of its own (blocking reads), line by line.
    private func readLoop() {
        while true {
            let data = responses.availableData
            let waiter: CheckedContinuation<[UInt8]?, Never>? = state.withLockedValue { state in
                if data.isEmpty {
                    state.closed = true
                    defer { state.waiting = nil }
                    return state.waiting
                }
                state.buffer += data
                while let newline = state.buffer.firstIndex(of: 0x0A) {
                    state.lines.append(Array(state.buffer[..<newline]))
                    state.buffer.removeSubrange(...newline)
                }
                guard !state.lines.isEmpty, let waiting = state.waiting else { return nil }
                state.waiting = nil
                return waiting
            }
            if data.isEmpty {
                waiter?.resume(returning: nil)
                try? responses.close()
                process.waitUntilExit()
                return
            }
            if let waiter {
                let line = state.withLockedValue { $0.lines.removeFirst() }
                waiter.resume(returning: line)
            }
        }
    }
}

/// One job, as a line of the processor's standard input.
struct ChildRequest: Codable {
    var job: ProcessingJob
}

/// Its outcome, as a line of the processor's standard output.
struct ChildResponse: Codable {
    var outcome: ProcessingOutcome?
    var error: ProcessingError?
}

/// The processor side: reads jobs as JSON lines on standard input, processes each, and answers with a JSON
/// line on standard output, until standard input closes. Anything else goes to standard error.
public enum ProcessorChildLoop {
    public static func serve(_ processor: some MediaProcessing) async {
        while let line = readLine(strippingNewline: true) {
            let response: ChildResponse
            do {
                let request = try JSONDecoder().decode(ChildRequest.self, from: Data(line.utf8))
                response = ChildResponse(outcome: try await processor.process(request.job), error: nil)
            } catch let error as ProcessingError {
                response = ChildResponse(outcome: nil, error: error)
            } catch {
                response = ChildResponse(outcome: nil, error: ProcessingError(.internal, "\(error)"))
            }
            var data =
                (try? JSONEncoder().encode(response))
                ?? Data(#"{"error":{"code":"internal","message":"unencodable answer","permanent":false}}"#.utf8)
            data.append(0x0A)
            do {
                try FileHandle.standardOutput.write(contentsOf: data)
            } catch {
                return  // the worker is gone (its end of the pipe closed): nobody is left to answer
            }
        }
    }
}
