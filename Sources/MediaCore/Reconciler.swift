import Foundation
import Logging

/// Cleans up after crashes and expiries, without listing any pool:
/// 1. expires drafts past their expiry (rows tombstoned first, with events);
/// 2. purges tombstoned media (objects removed, then marked purged);
/// 3. walks the pending index for entries older than the grace period: an entry whose object has a row is
///    just cleared; an entry without a row is an orphan (a crash between the Ceph write and the commit)
///    and its object is removed. Emptied buckets of past hours are retired.
///
/// A grace of zero also takes uploads that are streaming right now for orphans: use it only when no
/// gateway is running (after a crash, in tests).
public struct Reconciler<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    public struct Report: Sendable, Hashable, CustomStringConvertible {
        public var expiredSets = 0
        public var purgedMedia = 0
        public var clearedEntries = 0
        public var removedOrphans = 0
        public var retiredBuckets = 0
        public var failures = 0

        public var description: String {
            "expired \(expiredSets) draft set(s), purged \(purgedMedia) deleted media, cleared \(clearedEntries) pending entr(ies), removed \(removedOrphans) orphan object(s), retired \(retiredBuckets) bucket(s), \(failures) failure(s)"
        }
    }

    public let metadata: Metadata
    public let objects: Objects
    public let pools: StoragePools
    let pending: PendingIndex<Objects>
    let logger: Logger

    public init(metadata: Metadata, objects: Objects, pools: StoragePools, logger: Logger) {
        self.metadata = metadata
        self.objects = objects
        self.pools = pools
        self.pending = PendingIndex(objects: objects)
        self.logger = logger
    }

    /// One full pass. `grace` must exceed the longest an upload may take, or an upload still streaming
    /// would be taken for an orphan.
    public func run(now: Date = Date(), grace: Duration) async throws -> Report {
        var report = Report()
        // 1. expired drafts
        while true {
            let expired = try await metadata.expireDrafts(now: now, limit: 100)
            report.expiredSets += expired.count
            if expired.count < 100 { break }
        }
        // 2. tombstoned media whose objects are still there
        let purger = Purger(metadata: metadata, objects: objects, logger: logger)
        while true {
            let batch = try await metadata.mediaAwaitingPurge(limit: 100)
            var progressed = false
            for media in batch {
                if await purger.purge(media, now: now) {
                    report.purgedMedia += 1
                    progressed = true
                } else {
                    report.failures += 1
                }
            }
            if batch.count < 100 || !progressed { break }
        }
        // 3. the pending index: buckets that may hold entries older than the cutoff
        let cutoff = now.addingTimeInterval(-grace.seconds)
        for pool in pools.all {
            for bucket in try await pending.buckets(in: pool) {
                guard let end = PendingIndex<Objects>.bucketEnd(bucket), end.addingTimeInterval(-3600) < cutoff else { continue }
                let empty = try await sweep(bucket: bucket, in: pool, olderThan: cutoff, report: &report)
                // writers only register into the current hour: a bucket whose hour ended before the cutoff gets
                // no new entries, and once empty it can go
                if empty && end <= cutoff {
                    try await pending.retire(bucket: bucket, in: pool)
                    report.retiredBuckets += 1
                }
            }
        }
        logger.info("reconciled", metadata: ["reconcile.report": "\(report)"])
        return report
    }

    /// Settles the entries of a bucket registered before `cutoff`; returns whether the bucket is now empty.
    private func sweep(bucket: String, in pool: String, olderThan cutoff: Date, report: inout Report) async throws -> Bool {
        let index = ObjectLocation(pool: pool, key: bucket)
        var after: String?
        var empty = true
        while true {
            let page = try await objects.indexEntries(of: index, startAfter: after, prefix: nil, limit: 200)
            var settled: [String] = []
            for entry in page.entries {
                let location = ObjectLocation(pool: pool, key: entry.key)
                if let pending = try? JSONDecoder().decode(PendingEntry.self, from: Data(entry.value)), pending.registeredAt > cutoff {
                    empty = false  // still within its grace: it may be streaming right now
                    continue
                }
                do {
                    if try await metadata.objectHasRow(location) {
                        report.clearedEntries += 1
                    } else {
                        do {
                            try await objects.remove(location)
                        } catch let error as ObjectStoreError where error.code == .notFound {}
                        report.removedOrphans += 1
                        logger.info("removed an orphan object", metadata: ["object": "\(location)"])
                    }
                    settled.append(entry.key)
                } catch {
                    report.failures += 1
                    empty = false
                    logger.warning("could not settle a pending entry", metadata: ["object": "\(location)", "error": "\(error)"])
                }
            }
            try await objects.removeIndexEntries(settled, of: index)
            after = page.entries.last?.key
            if !page.hasMore || after == nil { return empty }
        }
    }
}
