import Foundation
import Logging
import MediaApp
import MediaCore
import PostgresMetadata
import RadosStore
import Testing

/// The real local stack the integration tests run against (`Deploy/local/stack test` exports its settings).
enum TestStack {
    static let environment = ProcessInfo.processInfo.environment

    /// The checkout this test file belongs to.
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Fault-injection tests stop and kill parts of the stack, so they run in a phase of their own.
    static let faultTestsEnabled = environment["MEDIAGW_FAULT_TESTS"] == "1"

    static let logger: Logger = {
        var logger = Logger(label: "tests")
        logger.logLevel = .warning
        return logger
    }()

    /// The gateway configuration of the running stack. Fails the test with the way to start the stack when
    /// the environment does not describe one.
    static func configuration() throws -> GatewayConfiguration {
        guard environment["MEDIAGW_CEPH_CONF"] != nil, environment["MEDIAGW_DATABASE_URL"] != nil else {
            Issue.record("MEDIAGW_CEPH_CONF and MEDIAGW_DATABASE_URL are not set: run the tests with `Deploy/local/stack test`")
            throw ConfigurationError("no stack environment")
        }
        return try GatewayConfiguration(environment: EnvironmentReader(environment))
    }

    /// One Ceph connection for the whole test process.
    static let sharedCluster = Task { () throws -> RadosCluster in
        let settings = try configuration()
        return try await RadosCluster.connect(settings.rados, pools: settings.pools.all, logger: logger)
    }

    static func objectStore() async throws -> RadosObjectStore {
        RadosObjectStore(cluster: try await sharedCluster.value)
    }

    /// One migrated database, with its client running, for the whole test process.
    static let sharedDatabase = Task { () throws -> MetadataDatabase in
        let database = MetadataDatabase(configuration: try configuration().postgres, logger: logger)
        Task.detached { await database.client.run() }
        try await Task.sleep(for: .milliseconds(10))  // let run() start before the first lease
        try await database.migrate()
        return database
    }

    static func metadataStore() async throws -> PostgresMetadataStore {
        PostgresMetadataStore(database: try await sharedDatabase.value, logger: logger)
    }

    static func pools() throws -> StoragePools { try configuration().pools }

    /// Runs `Deploy/local/stack` with the given arguments and returns its exit code.
    @discardableResult
    static func stack(_ arguments: String...) async throws -> Int32 {
        try await run(root.appendingPathComponent("Deploy/local/stack").path, arguments).status
    }

    /// The built `mediagw` executable.
    static var mediagwPath: String {
        environment["MEDIAGW_BIN"] ?? root.appendingPathComponent(".build/debug/mediagw").path
    }

    /// Runs a program to completion and returns its exit status and combined output. The wait happens on a
    /// thread of its own: tests run in parallel on the few threads of the cooperative pool, and one of them
    /// blocked in `waitpid` for seconds would stall every other test (deadlines included).
    static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (status: Int32, output: String) {
        let (status, output, _) = try await runTimed(program, arguments, environment: environment)
        return (status, output)
    }

    /// `run`, with how long the program ran (from its start to its exit, measured on the waiting thread, so
    /// that a busy cooperative pool does not add to it).
    static func runTimed(_ program: String, _ arguments: [String], environment: [String: String]? = nil) async throws
        -> (status: Int32, output: String, duration: Duration) {
        let output = OutputFile()
        defer { output.remove() }
        let started = ContinuousClock.now
        let (status, ended) = await exit(of: try spawn(program, arguments, environment: environment, output: output.path))
        return (status, output.text, ended - started)
    }

    /// `run`, blocking the calling thread: only for synchronous contexts (a `defer`).
    static func runBlocking(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let output = OutputFile()
        defer { output.remove() }
        let status = wait(try spawn(program, arguments, environment: environment, output: output.path))
        return (status, output.text)
    }

    /// Waits for a spawned process on a thread of its own; returns its exit status and when it exited.
    static func exit(of pid: pid_t) async -> (status: Int32, at: ContinuousClock.Instant) {
        await onOwnThread { (wait(pid), ContinuousClock.now) }
    }

    /// A scratch file that receives a child's output.
    struct OutputFile {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).out").path
        var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Starts a program with its output (stdout and stderr) into a file and returns its pid.
    ///
    /// Spawned and reaped here with posix_spawn/waitpid, output through a file: Foundation's `Process`
    /// can miss the exit of a child once a gateway in this test process runs its own `Process` children
    /// (processing workers), and a daemon the program starts (nginx) must not hold a pipe open.
    static func spawn(_ program: String, _ arguments: [String], environment: [String: String]? = nil, output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = (environment ?? self.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, envp)
        guard spawned == 0 else { throw TestFailure("cannot run \(program): \(String(cString: strerror(spawned)))") }
        return pid
    }

    /// Waits for a spawned process and returns its exit status (128 + the signal when a signal ended it).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}

/// Deterministic test bytes: the same seed always gives the same content.
func patternBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return bytes
}

func uniqueKey(_ label: String = #function) -> String {
    let name = label.prefix(while: { $0 != "(" })
    return "test-\(name)-\(UUID().uuidString.lowercased())"
}
