import Foundation

/// Whether the dependencies answer now: a stat of a well-known missing object in every pool (an OSD must
/// answer "not found") and a database round trip, each under a short deadline.
public struct ReadinessProbe<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    public struct Report: Sendable {
        public var ceph: String?
        public var postgres: String?
        /// Both answered.
        public var ready: Bool { ceph == nil && postgres == nil }
    }

    let metadata: Metadata
    let objects: Objects
    let pools: StoragePools
    let timeout: Duration

    public init(metadata: Metadata, objects: Objects, pools: StoragePools, timeout: Duration = .seconds(2)) {
        self.metadata = metadata
        self.objects = objects
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
        let objects = self.objects
        let pools = self.pools
        do {
            try await withDeadline(timeout) {
                for pool in pools.all {
                    do {
                        _ = try await objects.stat(ObjectLocation(pool: pool, key: "_readyz"))
                    } catch let error as ObjectStoreError where error.code == .notFound {}
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
        let metadata = self.metadata
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
