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
public final class RadosCluster: @unchecked Sendable, Service {
    public let configuration: RadosConfiguration
    let logger: Logger
    private let handle: rados_t
    private let ioContexts = NIOLockedValueBox<[String: IOContext]>([:])
    private let gate = OperationGate()
    /// Reads in flight, bounded (`MEDIAGW_CEPH_MAX_READS`).
    let reads: ReadLimiter

    private init(handle: rados_t, configuration: RadosConfiguration, logger: Logger) {
        self.handle = handle
        self.configuration = configuration
        self.logger = logger
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
        let cluster = try await NIOThreadPool.singleton.runIfActive {
            try RadosCluster.connectBlocking(configuration, logger: logger)
        }
        do {
            for pool in pools { _ = try await cluster.ioContext(for: pool) }
        } catch {
            await cluster.shutdown()
            throw error
        }
        logger.info("connected to Ceph", metadata: ["ceph.fsid": "\(cluster.fsid)", "ceph.client": "\(configuration.clientID)"])
        return cluster
    }

    private static func connectBlocking(_ configuration: RadosConfiguration, logger: Logger) throws -> RadosCluster {
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
        return RadosCluster(handle: handle, configuration: configuration, logger: logger)
    }

    /// The cluster's fsid.
    public var fsid: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let rc = rados_cluster_fsid(handle, &buffer, buffer.count)
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

    /// The I/O context of `pool`, created on first use and kept until shutdown.
    func ioContext(for pool: String) async throws -> IOContext {
        if let existing = ioContexts.withLockedValue({ $0[pool] }) { return existing }
        guard !pool.isEmpty, !pool.utf8.contains(0) else {
            throw BlobStoreError(.invalidArgument, "invalid pool name \(pool.debugDescription)")
        }
        let created: IOContext = try await withOperation {
            try await NIOThreadPool.singleton.runIfActive { [self] in
                var io: rados_ioctx_t?
                let rc = rados_ioctx_create(self.handle, pool, &io)
                guard rc == 0, let io else {
                    if rc == -ENOENT { throw BlobStoreError(.notFound, "Ceph pool \(pool) does not exist") }
                    throw BlobStoreError.rados(rc, "open pool", pool)
                }
                // every object of this client lives in the configured namespace of each pool
                rados_ioctx_set_namespace(io, self.configuration.namespace)
                return IOContext(handle: io, pool: pool)
            }
        }
        return ioContexts.withLockedValue { contexts in
            if let raced = contexts[pool] {
                rados_ioctx_destroy(created.handle)
                return raced
            }
            contexts[pool] = created
            return created
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
        let contexts = ioContexts.withLockedValue { contexts in
            defer { contexts.removeAll() }
            return Array(contexts.values)
        }
        try? await NIOThreadPool.singleton.runIfActive { [self] in
            for io in contexts {
                rados_aio_flush(io.handle)
                rados_ioctx_destroy(io.handle)
            }
            rados_shutdown(self.handle)
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

/// A RADOS I/O context: the handle through which objects of one pool are read and written.
final class IOContext: @unchecked Sendable {
    let handle: rados_ioctx_t
    let pool: String

    init(handle: rados_ioctx_t, pool: String) {
        self.handle = handle
        self.pool = pool
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
