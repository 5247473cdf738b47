import Foundation
import Logging
import Metrics

/// Samples what waits (the job queue, dead jobs, unread events, the pending ledger's oldest period) into
/// gauges, for alerts: an operator learns of a stuck queue or an unsettled ledger from the metrics, not
/// from users. Labels are kinds and pools, never ids.
public struct BacklogMonitor<Storage: MediaStores>: Sendable {
    let storage: Storage
    let pools: StoragePools
    let clock: MediaClock
    let logger: Logger

    public init(storage: Storage, pools: StoragePools, clock: MediaClock = .system, logger: Logger) {
        self.storage = storage
        self.pools = pools
        self.clock = clock
        self.logger = logger
    }

    /// One sample: reads the backlog and the ledger, and sets every gauge. A store that does not answer
    /// leaves its gauges as they were and is logged; the next sample tries again.
    public func sample() async {
        let now = clock.now()
        do {
            let backlog = try await storage.metadata.backlog(now: now)
            for kind in MediaKind.allCases {
                BacklogMetrics.queued(kind.rawValue).record(backlog.queuedJobs[kind] ?? 0)
                BacklogMetrics.oldestQueued(kind.rawValue).record((backlog.oldestQueuedJob[kind] ?? .zero).seconds)
            }
            BacklogMetrics.dead().record(backlog.deadJobs)
            BacklogMetrics.unreadEvents().record(backlog.unreadEvents)
        } catch {
            logger.warning("could not read the backlog", metadata: ["error": "\(error)"])
        }
        for pool in pools.all {
            do {
                let oldest = try await storage.ledger.oldestPeriod(in: pool)
                BacklogMetrics.ledgerAge(pool).record(oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            } catch {
                logger.warning("could not read the pending ledger", metadata: ["error": "\(error)", "ceph.pool": "\(pool)"])
            }
        }
    }
}

/// The backlog's gauges, made once.
enum BacklogMetrics {
    static let queued = MetricFamily<Gauge>(labels: ["kind"]) { Gauge(label: "mediagw_jobs_queued", dimensions: $0) }
    static let oldestQueued = MetricFamily<Gauge>(labels: ["kind"]) { Gauge(label: "mediagw_jobs_oldest_queued_age_seconds", dimensions: $0) }
    static let dead = MetricFamily<Gauge>.gauges("mediagw_jobs_dead")
    static let unreadEvents = MetricFamily<Gauge>.gauges("mediagw_outbox_unread_events")
    static let ledgerAge = MetricFamily<Gauge>(labels: ["pool"]) { Gauge(label: "mediagw_pending_ledger_oldest_age_seconds", dimensions: $0) }
}
