import Foundation
import Logging
import MediaApp
import MediaConcurrency
import MediaCore
import MediaTesting
import PostgresMetadata
import PostgresNIO
import RadosStore
import ServiceLifecycle
import Synchronization
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

    /// Fails the test with the way to start the stack when the environment does not describe one.
    static func requireStack() throws {
        guard environment["MEDIAGW_CEPH_CONF"] != nil, environment["MEDIAGW_DATABASE_URL"] != nil else {
            Issue.record("MEDIAGW_CEPH_CONF and MEDIAGW_DATABASE_URL are not set: run the tests with `Deploy/local/stack test`")
            throw ConfigurationError("no stack environment")
        }
    }

    /// Ceph as the stack describes it (the default namespace).
    static func storage() throws -> StorageConfiguration {
        try requireStack()
        return try StorageConfiguration(environment: EnvironmentReader(environment))
    }

    /// PostgreSQL as the stack describes it (the public schema).
    static func database() throws -> PostgresConfiguration {
        try requireStack()
        return try PostgresConfiguration(environment: EnvironmentReader(environment))
    }

    static func pools() throws -> StoragePools { try storage().pools }

    /// Runs `Deploy/local/stack` with the given arguments and returns its exit code.
    @discardableResult
    static func stack(_ arguments: String...) async throws -> Int32 {
        try await run(root.appendingPathComponent("Deploy/local/stack").path, arguments).status
    }

    /// The built `mediagw` executable.
    static var mediagwPath: String {
        environment["MEDIAGW_BIN"] ?? root.appendingPathComponent(".build/debug/mediagw").path
    }

    /// The built processor program, beside `mediagw`.
    static var processorPath: String {
        URL(fileURLWithPath: mediagwPath).deletingLastPathComponent().appendingPathComponent("mediagw-processor").path
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
    static func runTimed(
        _ program: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) async throws
        -> (status: Int32, output: String, duration: Duration)
    {
        let output = OutputFile()
        defer { output.remove() }
        let started = ContinuousClock.now
        let (status, ended) = await exit(of: try spawn(program, arguments, environment: environment, output: output.path))
        return (status, output.text, ended - started)
    }

    /// `run`, blocking the calling thread: only for synchronous contexts (a `defer`).
    static func runBlocking(_ program: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String)
    {
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
        defer { for pointer in argv + envp { free(pointer) } }
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

/// One integration suite's own slice of the real stack: a PostgreSQL schema and a RADOS namespace of its
/// own (the same name), so that no suite sees another suite's rows, objects, jobs, events or ledger
/// entries, and no assertion has to allow for another suite's workers.
final class Isolation: Sendable {
    /// The schema's and the namespace's name.
    let name: String
    /// The stack's environment, pointed at this slice.
    let environment: [String: String]
    /// Connected to both stores, the PostgreSQL pool running and the schema migrated.
    let runtime: MediaRuntime

    private init(name: String, environment: [String: String], runtime: MediaRuntime) {
        self.name = name
        self.environment = environment
        self.runtime = runtime
    }

    var metadata: PostgresMetadataStore { runtime.metadata }
    var blobs: RadosBlobStore { runtime.blobs }
    var ledger: RadosPendingLedger { runtime.pendingLedger }
    var pools: StoragePools { runtime.storagePools }
    var stores: GatewayStores { runtime.stores }
    /// For the SQL a test runs itself.
    var client: PostgresClient { metadata.database.client }

    private static let suites = Mutex<[String: Task<Isolation, any Error>]>([:])

    /// The slice of one suite, made once per test process.
    static func suite(_ suite: String) async throws -> Isolation {
        let task = suites.withLock { suites in
            if let task = suites[suite] { return task }
            let task = Task { try await make(suite) }
            suites[suite] = task
            return task
        }
        return try await task.value
    }

    /// A new slice: `t_<suite>_<random>`, with `overrides` on top of the stack's environment.
    static func make(_ suite: String, overrides: [String: String] = [:]) async throws -> Isolation {
        try TestStack.requireStack()
        await dropOldSlices.value
        let name = "t_\(suite.lowercased().filter { $0.isLetter || $0.isNumber })_\(UUID().uuidString.lowercased().prefix(8))"
        var environment = TestStack.environment.merging(overrides) { $1 }
        environment["MEDIAGW_DATABASE_SCHEMA"] = name
        environment["MEDIAGW_CEPH_NAMESPACE"] = name
        let reader = EnvironmentReader(environment)
        let runtime = try await MediaRuntime.connect(
            storage: try StorageConfiguration(environment: reader),
            database: try PostgresConfiguration(environment: reader),
            logger: TestStack.logger
        )
        let services = runtime.services
        Task.detached {
            try await ServiceGroup(configuration: .init(services: services, logger: TestStack.logger)).run()
        }
        try await Task.sleep(for: .milliseconds(10))  // let the pool run before the first lease
        try await runtime.migrate()
        return Isolation(name: name, environment: environment, runtime: runtime)
    }

    /// The schemas earlier test runs left (their objects stay in their namespaces): dropped once per process.
    private static let dropOldSlices = Task {
        guard let configuration = try? TestStack.database() else { return }
        _ = try? await MediaRuntime.connect(storage: nil, database: configuration, logger: TestStack.logger).run(migrate: false) { runtime in
            let client = runtime.metadata.database.client
            let rows = try await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'")
            var old: [String] = []
            for try await name in rows.decode(String.self) { old.append(name) }
            for name in old where name.range(of: "^t_[a-z0-9]+_[0-9a-f]{8}$", options: .regularExpression) != nil {
                try await client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(name) CASCADE"))
            }
        }
    }

    /// Objects of this slice in a pool whose key starts with `prefix` (tests may list pools; the gateway never
    /// does).
    func listObjects(pool: String, prefix: String) async throws -> [String] {
        let rados = runtime.blobs.cluster.configuration
        var arguments = ["-c", rados.configPath, "--id", rados.clientID, "-p", pool, "-N", name, "ls"]
        if let keyring = rados.keyringPath { arguments += ["--keyring", keyring] }
        let (status, output) = try await TestStack.run("/usr/bin/rados", arguments)
        guard status == 0 else { throw ConfigurationError("rados ls failed: \(output)") }
        return output.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// A media row, straight from this slice's database.
    func media(_ id: String) async throws -> Media? {
        try await metadata.media(try #require(MediaID(id)))
    }

    /// Polls a media row until `condition` holds, for at most `timeout`.
    func waitForMedia(_ id: String, within timeout: Duration = .seconds(120), _ condition: @Sendable (Media) -> Bool) async throws -> Media {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let media = try await media(id), condition(media) { return media }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("media \(id) did not reach the expected state within \(timeout)")
    }
}
