import CRados
import Foundation
import Logging
import MediaCore
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle

/// A connection to a Ceph cluster through librados, with one I/O context per pool.
///
/// Connecting and the few librados calls that block run on NIO's blocking thread pool, never on an event
/// loop or on the Swift cooperative pool; object I/O uses librados AIO completions.
/// As a `Service`, it stays up until graceful shutdown, then waits for in-flight operations and disconnects.
///
/// When operations keep timing out for `reconnectAfter` (or the client was blocklisted), the cluster opens a
/// new librados client and routes new operations through it; the old one is closed once the operations that
/// hold it have ended. librados alone does not recover when its session to an OSD failed authentication
/// while that OSD restarted: the session stays shut until the OSD map changes, which on a quiet cluster may
/// be never.
public final class RadosCluster: @unchecked Sendable, Service {
    public let configuration: RadosConfiguration
    let logger: Logger
    private let current: NIOLockedValueBox<RadosConnection>
    private let gate = OperationGate()
    private let recovery: NIOLockedValueBox<ReconnectPolicy>
    /// Reads in flight, bounded (`MEDIAGW_CEPH_MAX_READS`).
    let reads: ReadLimiter

    private init(connection: RadosConnection, configuration: RadosConfiguration, logger: Logger) {
        self.current = NIOLockedValueBox(connection)
        self.configuration = configuration
        self.logger = logger
        recovery = NIOLockedValueBox(ReconnectPolicy(after: configuration.reconnectAfter))
        reads = ReadLimiter(permits: configuration.maxReadsInFlight)
    }

    /// Connects to the cluster and opens an I/O context for each of `pools`. Fails with an
    /// ``BlobStoreError`` whose message is one line saying what is wrong (missing ceph.conf or keyring,
    /// unreachable monitors, refused key, missing pool).
    public static func connect(
        _ configuration: RadosConfiguration,
        pools: [String],
        logger: Logger
    ) async throws -> RadosCluster {
        do {
            try configuration.validate()
        } catch {
            throw BlobStoreError(.invalidArgument, error.message)
        }
        let connection = try await NIOThreadPool.singleton.runIfActive {
            try RadosCluster.connectBlocking(configuration)
        }
        let cluster = RadosCluster(connection: connection, configuration: configuration, logger: logger)
        do {
            for pool in pools { _ = try await cluster.ioContext(for: pool) }
        } catch {
            await cluster.shutdown()
            throw error
        }
        logger.info(
            "connected to Ceph",
            metadata: ["ceph.fsid": "\(cluster.fsid)", "ceph.client": "\(configuration.clientID)", "ceph.address": "\(connection.address)"]
        )
        return cluster
    }

    private static func connectBlocking(_ configuration: RadosConfiguration) throws -> RadosConnection {
        let files = FileManager.default
        guard files.isReadableFile(atPath: configuration.configPath) else {
            throw BlobStoreError(.invalidArgument, "Ceph configuration \(configuration.configPath) does not exist or is not readable")
        }
        if let keyring = configuration.keyringPath, !files.isReadableFile(atPath: keyring) {
            throw BlobStoreError(.invalidArgument, "Ceph keyring \(keyring) does not exist or is not readable")
        }
        var handle: rados_t?
        var rc = rados_create2(&handle, "ceph", "client.\(configuration.clientID)", 0)
        guard rc == 0, let handle else {
            throw BlobStoreError.rados(rc, "create Ceph client", "client.\(configuration.clientID)")
        }
        func fail(_ error: BlobStoreError) -> BlobStoreError {
            rados_shutdown(handle)
            return error
        }
        rc = rados_conf_read_file(handle, configuration.configPath)
        guard rc == 0 else {
            throw fail(BlobStoreError(.invalidArgument, "Ceph configuration \(configuration.configPath) cannot be parsed (errno \(-rc))"))
        }
        var settings: [(String, String)] = [
            // librados takes these timeouts in whole seconds
            ("client_mount_timeout", "\(wholeSeconds(configuration.mountTimeout))"),
            ("objecter_timeout", "\(wholeSeconds(configuration.objecterTimeout))"),
            ("rados_osd_op_timeout", "\(wholeSeconds(configuration.operationTimeout))"),
            ("rados_mon_op_timeout", "\(wholeSeconds(configuration.operationTimeout))"),
            // librados must not print to the gateway's stderr; failures come back as typed errors.
            ("log_to_stderr", "false"),
            ("err_to_stderr", "false"),
            ("log_to_file", "false"),
        ]
        if let keyring = configuration.keyringPath { settings.append(("keyring", keyring)) }
        for (name, value) in settings {
            rc = rados_conf_set(handle, name, value)
            guard rc == 0 else {
                throw fail(BlobStoreError(.invalidArgument, "librados refused \(name)=\(value) (errno \(-rc))"))
            }
        }
        rc = rados_connect(handle)
        guard rc == 0 else {
            let client = "client.\(configuration.clientID)"
            let keyring = configuration.keyringPath ?? "the keyring named in \(configuration.configPath)"
            switch -rc {
            case ETIMEDOUT:
                throw fail(
                    BlobStoreError(
                        .timedOut,
                        "no Ceph monitor answered within \(configuration.mountTimeout) (mon_host in \(configuration.configPath))"
                    )
                )
            case EACCES, EPERM, EIO:
                // cephx answers a wrong key with EIO, an unknown client with EACCES
                throw fail(BlobStoreError(.permissionDenied, "Ceph monitors refused to authenticate \(client) with the key in \(keyring)"))
            case ENOENT:
                throw fail(BlobStoreError(.invalidArgument, "no key for \(client) in \(keyring)"))
            default:
                throw fail(BlobStoreError.rados(rc, "connect to Ceph as", client))
            }
        }
        return RadosConnection(handle: handle)
    }

    /// The address of the client in use, as `ceph osd blocklist` names it.
    public var clientAddress: String { current.withLockedValue { $0 }.address }

    /// The cluster's fsid.
    public var fsid: String {
        let connection = current.withLockedValue { $0 }
        var buffer = [CChar](repeating: 0, count: 64)
        let rc = rados_cluster_fsid(connection.handle, &buffer, buffer.count)
        guard rc >= 0 else { return "unknown" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The librados version this process runs with, for example `3.0.0`.
    public static var libraryVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var extra: Int32 = 0
        rados_version(&major, &minor, &extra)
        return "\(major).\(minor).\(extra)"
    }

    /// The I/O context of `pool` on the client in use, created on first use and kept while that client is.
    func ioContext(for pool: String) async throws -> IOContext {
        let connection = current.withLockedValue { $0 }
        if let existing = connection.ioContext(pool) { return IOContext(handle: existing, pool: pool, connection: connection) }
        guard !pool.isEmpty, !pool.utf8.contains(0) else {
            throw BlobStoreError(.invalidArgument, "invalid pool name \(pool.debugDescription)")
        }
        let namespace = configuration.namespace
        let created = try await withOperation {
            try await NIOThreadPool.singleton.runIfActive {
                UnsafeTransfer(try connection.openIOContext(pool, namespace: namespace))
            }
        }
        return IOContext(handle: created.value, pool: pool, connection: connection)
    }

    /// Notes how an operation ended, and replaces the client when ``ReconnectPolicy`` says so.
    func observe(_ rc: Int32) {
        let now = ContinuousClock.now
        let reconnect = recovery.withLockedValue { policy in
            switch -rc {
            case ETIMEDOUT: return policy.timedOut(at: now)
            case ESHUTDOWN: return policy.blocklisted(at: now)
            default: return false
            }
        }
        guard reconnect else { return }
        Task { await self.reconnect() }
    }

    /// Opens a new client with the pools of the one in use, then routes new operations through it. The old
    /// client closes when the last operation holding it ends.
    func reconnect() async {
        guard gate.enter() else { return }
        defer { gate.leave() }
        let old = current.withLockedValue { $0 }
        let pools = old.pools
        let configuration = configuration
        do {
            let connection = try await NIOThreadPool.singleton.runIfActive {
                let connection = try RadosCluster.connectBlocking(configuration)
                for pool in pools { try connection.openIOContext(pool, namespace: configuration.namespace) }
                return connection
            }
            current.withLockedValue { $0 = connection }
            logger.warning(
                "Ceph operations kept failing; replaced the Ceph client",
                metadata: ["ceph.address": "\(connection.address)", "ceph.old_address": "\(old.address)"]
            )
        } catch {
            logger.warning("Ceph operations kept failing, and a new Ceph client could not connect", metadata: ["error": "\(error)"])
        }
    }

    /// Runs `body` as one operation on the cluster; shutdown waits for it and refuses new ones.
    func withOperation<T>(_ body: () async throws -> T) async throws -> T {
        guard gate.enter() else { throw BlobStoreError(.unavailable, "the Ceph client is shut down") }
        defer { gate.leave() }
        return try await body()
    }

    /// Refuses new operations, waits for in-flight ones, flushes and closes every I/O context, disconnects.
    public func shutdown() async {
        guard await gate.close() else { return }
        let connection = current.withLockedValue { $0 }
        try? await NIOThreadPool.singleton.runIfActive {
            connection.close()
        }
        logger.info("disconnected from Ceph")
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}

/// A duration as the whole number of seconds librados expects, rounded up.
func wholeSeconds(_ duration: Duration) -> Int { Int(duration.seconds.rounded(.up)) }

/// A RADOS I/O context: the handle through which objects of one pool are read and written. It keeps its
/// client open while an operation holds it.
struct IOContext: @unchecked Sendable {
    let handle: rados_ioctx_t
    let pool: String
    let connection: RadosConnection
}

/// One librados client and its I/O contexts, closed explicitly at shutdown or, once replaced, when the last
/// reference goes (on a thread of its own: closing joins librados threads).
final class RadosConnection: @unchecked Sendable {
    let handle: rados_t
    private let state = NIOLockedValueBox(State())

    private struct State {
        var contexts: [String: rados_ioctx_t] = [:]
        var closed = false
    }

    init(handle: rados_t) { self.handle = handle }

    /// This client's address (`ip:port/nonce`).
    var address: String {
        var addresses: UnsafeMutablePointer<CChar>?
        guard rados_getaddrs(handle, &addresses) == 0, let addresses else { return "unknown" }
        defer { free(addresses) }
        return String(cString: addresses)
    }

    var pools: [String] { state.withLockedValue { Array($0.contexts.keys) } }

    func ioContext(_ pool: String) -> rados_ioctx_t? { state.withLockedValue { $0.contexts[pool] } }

    /// Opens (blocking) the I/O context of `pool`, or returns the one a concurrent caller opened first.
    @discardableResult
    func openIOContext(_ pool: String, namespace: String) throws -> rados_ioctx_t {
        if let existing = ioContext(pool) { return existing }
        var io: rados_ioctx_t?
        let rc = rados_ioctx_create(handle, pool, &io)
        guard rc == 0, let io else {
            if rc == -ENOENT { throw BlobStoreError(.notFound, "Ceph pool \(pool) does not exist") }
            throw BlobStoreError.rados(rc, "open pool", pool)
        }
        // every object of this client lives in the configured namespace of each pool
        rados_ioctx_set_namespace(io, namespace)
        return state.withLockedValue { state in
            if let raced = state.contexts[pool] {
                rados_ioctx_destroy(io)
                return raced
            }
            state.contexts[pool] = io
            return io
        }
    }

    /// Flushes and destroys every I/O context, then shuts the client down (blocking).
    func close() {
        let contexts: [rados_ioctx_t]? = state.withLockedValue { state in
            guard !state.closed else { return nil }
            state.closed = true
            defer { state.contexts.removeAll() }
            return Array(state.contexts.values)
        }
        guard let contexts else { return }
        for io in contexts {
            rados_aio_flush(io)
            rados_ioctx_destroy(io)
        }
        rados_shutdown(handle)
    }

    deinit {
        let contexts: [rados_ioctx_t]? = state.withLockedValue { state in state.closed ? nil : Array(state.contexts.values) }
        guard let contexts else { return }
        let handles = UnsafeTransfer((handle, contexts))
        let closer = Thread {
            let (handle, contexts) = handles.value
            for io in contexts {
                rados_aio_flush(io)
                rados_ioctx_destroy(io)
            }
            rados_shutdown(handle)
        }
        closer.start()
    }
}

/// A value handed between threads that owns no shared state of its own (librados handles).
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// When to replace a Ceph client: when operations have kept timing out for `after` (a run of timeouts
/// ends when none came for `after`), or at once when it was blocklisted; never twice within `after`
/// (a blocklisted one: within a second).
struct ReconnectPolicy: Sendable {
    let after: Duration
    private var streakStart: ContinuousClock.Instant?
    private var lastTimeout: ContinuousClock.Instant?
    private var lastReconnect: ContinuousClock.Instant?

    init(after: Duration) { self.after = after }

    /// A timed-out operation at `now`; whether to reconnect.
    mutating func timedOut(at now: ContinuousClock.Instant) -> Bool {
        guard after > .zero else { return false }
        if let lastTimeout, now - lastTimeout <= after, let streakStart {
            self.lastTimeout = now
            guard now - streakStart >= after, lastReconnect.map({ now - $0 >= after }) ?? true else { return false }
            self.streakStart = now
            lastReconnect = now
            return true
        }
        streakStart = now
        lastTimeout = now
        return false
    }

    /// An operation refused because the client is blocklisted; whether to reconnect.
    mutating func blocklisted(at now: ContinuousClock.Instant) -> Bool {
        guard after > .zero, lastReconnect.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
        lastReconnect = now
        streakStart = nil
        lastTimeout = nil
        return true
    }
}

/// Counts in-flight operations so that shutdown can wait for them before freeing librados handles.
final class OperationGate: Sendable {
    private struct State {
        var open = true
        var inFlight = 0
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    func enter() -> Bool {
        state.withLockedValue { state in
            guard state.open else { return false }
            state.inFlight += 1
            return true
        }
    }

    func leave() {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            state.inFlight -= 1
            guard !state.open, state.inFlight == 0 else { return [] }
            defer { state.drained.removeAll() }
            return state.drained
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Closes the gate and waits until no operation is in flight. Returns `false` if it was already closed.
    func close() async -> Bool {
        let first = state.withLockedValue { state in
            defer { state.open = false }
            return state.open
        }
        guard first else { return false }
        await withCheckedContinuation { continuation in
            let done = state.withLockedValue { state in
                if state.inFlight == 0 { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        return true
    }
}
