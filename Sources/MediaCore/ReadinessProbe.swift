import Foundation
import MediaConcurrency

/// Whether the dependencies answer now: a stat of a well-known missing object in every pool (an OSD must
/// answer "not found") and a database round trip, each under a short deadline.
public struct ReadinessProbe<Storage: MediaStores>: Sendable {
    public struct Report: Sendable {
        public var ceph: String?
        public var postgres: String?
        /// Both answered.
        public var ready: Bool { ceph == nil && postgres == nil }
    }

    let storage: Storage
    let pools: StoragePools
    let timeout: Duration

    public init(storage: Storage, pools: StoragePools, timeout: Duration = .seconds(2)) {
        self.storage = storage
        self.pools = pools
        self.timeout = timeout
    }

    /// `nil` for a dependency that answered, else why not.
    public func check() async -> Report {
        async let ceph: String? = probeCeph()
        async let postgres: String? = probePostgres()
        return await Report(ceph: ceph, postgres: postgres)
    }

    private func probeCeph() async -> String? {
        let blobs = storage.blobs
        let pools = self.pools
        do {
            try await withDeadline(timeout) {
                for pool in pools.all {
                    _ = try await blobs.exists(ObjectLocation(pool: pool, key: "_readyz"))
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
