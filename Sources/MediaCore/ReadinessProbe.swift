import Foundation
import MediaConcurrency
import NIOCore
import Synchronization

/// Whether this process can do its work now, each dependency under a short deadline: every pool takes a
/// write (a one-byte object `_readyz`, replaced each time: the cluster has a quorum, the OSDs of that
/// placement group are up and the pool is not full), and the metadata store answers and takes writes (a
/// standby or a demoted primary does not). Answers are reused for `reuse` (1 s), so that balancers
/// checking every second cost one probe per interval however many they are.
public struct ReadinessProbe<Storage: MediaStores>: Sendable {
    public typealias Report = ReadinessReport

    let storage: Storage
    let pools: StoragePools
    let timeout: Duration
    let reuse: Duration
    private let last = LastReport()

    public init(storage: Storage, pools: StoragePools, timeout: Duration = .seconds(2), reuse: Duration = .seconds(1)) {
        self.storage = storage
        self.pools = pools
        self.timeout = timeout
        self.reuse = reuse
    }

    /// `nil` for a dependency that answered, else why not.
    public func check() async -> Report {
        if let recent = last.report(within: reuse) { return recent }
        async let ceph: String? = probeCeph()
        async let postgres: String? = probePostgres()
        let report = await Report(ceph: ceph, postgres: postgres)
        last.store(report)
        return report
    }

    private func probeCeph() async -> String? {
        let blobs = storage.blobs
        let pools = self.pools
        do {
            // the pools at once: the probe waits for the slowest write, not for the sum of them (a busy OSD
            // would otherwise push a healthy cluster past the deadline)
            try await withDeadline(timeout) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for pool in pools.all {
                        group.addTask {
                            try await blobs.write(ObjectLocation(pool: pool, key: "_readyz"), bytes: ByteBuffer(integer: UInt8(1)), mode: .replace)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            return nil
        } catch is DeadlineExceeded {
            return "Ceph did not answer within \(timeout)"
        } catch {
            return "Ceph: \(error)"
        }
    }

    private func probePostgres() async -> String? {
        let metadata = storage.metadata
        do {
            try await withDeadline(timeout) { try await metadata.ping() }
            return nil
        } catch is DeadlineExceeded {
            return "PostgreSQL did not answer within \(timeout)"
        } catch {
            return "PostgreSQL: \(error)"
        }
    }
}

/// What a readiness probe found: `nil` for a dependency that answered, else why not.
public struct ReadinessReport: Sendable {
    public var ceph: String?
    public var postgres: String?
    /// Both answered.
    public var ready: Bool { ceph == nil && postgres == nil }
}

/// The last report and when it was made.
final class LastReport: Sendable {
    private let state = Mutex<(at: ContinuousClock.Instant, report: ReadinessReport)?>(nil)

    func report(within interval: Duration) -> ReadinessReport? {
        state.withLock { state in
            guard let state, ContinuousClock.now - state.at < interval else { return nil }
            return state.report
        }
    }

    func store(_ report: ReadinessReport) {
        state.withLock { $0 = (ContinuousClock.now, report) }
    }
}
