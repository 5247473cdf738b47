import Foundation
import Logging
import Tracing

/// Cleans up after crashes and expiries, without listing any pool:
/// 1. expires drafts past their expiry (rows tombstoned first, with events);
/// 2. purges tombstoned media (objects removed, then marked purged);
/// 3. removes resumable uploads past their expiry, with their partial objects and ledger entries;
/// 4. reads the pending ledger for entries older than the grace period: an entry whose object has a row is
///    just cleared; an entry without a row is an orphan (a crash between the Ceph write and the commit)
///    and its object is removed, then the entry. Emptied ledger periods are closed. (The entry of a
///    resumable upload's object is registered at the upload's expiry, so it is not due before.)
///
/// A grace of zero also takes uploads that are streaming right now for orphans: use it only when no
/// gateway is running (after a crash, in tests).
public struct Reconciler<Storage: MediaStores>: Sendable {
    public struct Report: Sendable, Hashable, CustomStringConvertible {
        public var expiredSets = 0
        public var purgedMedia = 0
        public var clearedEntries = 0
        public var removedOrphans = 0
        public var expiredUploads = 0
        public var closedPeriods = 0
        public var failures = 0

        public init() {}

        public var description: String {
            "expired \(expiredSets) draft set(s), purged \(purgedMedia) deleted media, cleared \(clearedEntries) pending entr(ies), "
                + "removed \(removedOrphans) orphan object(s), \(expiredUploads) expired resumable upload(s), closed \(closedPeriods) ledger period(s), "
                + "\(failures) failure(s)"
        }
    }

    public let storage: Storage
    public let pools: StoragePools
    let clock: MediaClock
    let faults: FaultInjection
    let logger: Logger

    public init(storage: Storage, pools: StoragePools, clock: MediaClock = .system, faults: FaultInjection = .none, logger: Logger) {
        self.storage = storage
        self.pools = pools
        self.clock = clock
        self.faults = faults
        self.logger = logger
    }

    /// One full pass. `grace` must exceed the longest an upload may take, or an upload still streaming
    /// would be taken for an orphan.
    public func run(grace: Duration) async throws -> Report {
        try await withSpan("reconcile", context: .topLevel) { span in
            let report = try await pass(grace: grace)
            span.attributes["reconcile.expired_sets"] = report.expiredSets
            span.attributes["reconcile.purged_media"] = report.purgedMedia
            span.attributes["reconcile.removed_orphans"] = report.removedOrphans
            span.attributes["reconcile.expired_uploads"] = report.expiredUploads
            span.attributes["reconcile.failures"] = report.failures
            return report
        }
    }

    private func pass(grace: Duration) async throws -> Report {
        let now = clock.now()
        var report = Report()
        // 1. expired drafts
        while true {
            let expired = try await storage.metadata.expireDrafts(now: now, limit: 100)
            report.expiredSets += expired.count
            if expired.count < 100 { break }
        }
        // 2. tombstoned media whose objects are still there
        let purger = Purger(storage: storage, logger: logger)
        while true {
            let batch = try await storage.metadata.mediaAwaitingPurge(limit: 100)
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
        // 3. resumable uploads past their expiry: the state first, then the partial object, then its entry
        let staging = StagedWrite(blobs: storage.blobs, ledger: storage.ledger, faults: faults, logger: logger)
        while true {
            let expired = try await storage.metadata.expiredResumableUploads(now: now, limit: 100)
            for upload in expired {
                guard try await storage.metadata.removeResumableUpload(upload.id) != nil else { continue }
                report.expiredUploads += 1
                if let placement = upload.placement, !upload.completed {
                    await staging.discard([
                        StagedObject(location: placement.location, size: upload.received, ticket: placement.ticket, exclusive: true)
                    ])
                }
            }
            if expired.count < 100 { break }
        }
        // 4. the pending ledger: entries registered before the cutoff
        let cutoff = now.addingTimeInterval(-grace.seconds)
        for pool in pools.all {
            var cursor: String?
            repeat {
                let page = try await storage.ledger.stale(in: pool, registeredBefore: cutoff, after: cursor, limit: 200)
                var settled: [PendingRecord] = []
                for record in page.records {
                    if await settle(record, report: &report) { settled.append(record) }
                }
                try await storage.ledger.retire(settled)
                cursor = page.next
            } while cursor != nil
            // writers only register into the current period: one that ended before the cutoff gets no new
            // entries, and once empty it can go
            report.closedPeriods += try await storage.ledger.closePeriods(in: pool, endedBefore: cutoff)
        }
        logger.info("reconciled", metadata: ["reconcile.report": "\(report)"])
        return report
    }

    /// Settles one old entry: an object with a row keeps it, an orphan is removed. Returns whether the entry
    /// can go.
    private func settle(_ record: PendingRecord, report: inout Report) async -> Bool {
        let location = record.ticket.location
        do {
            if try await storage.metadata.objectHasRow(location) {
                report.clearedEntries += 1
            } else {
                await faults.reach(.orphanFound)
                try await storage.blobs.removeIfPresent(location)
                report.removedOrphans += 1
                logger.info("removed an orphan object", metadata: ["object": "\(location)"])
            }
            return true
        } catch {
            report.failures += 1
            logger.warning("could not settle a pending entry", metadata: ["object": "\(location)", "error": "\(error)"])
            return false
        }
    }
}
