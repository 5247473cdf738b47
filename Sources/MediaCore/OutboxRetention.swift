import Foundation
import Logging
import Metrics

/// Keeps the outbox to its retention: whole UTC days of events older than `retention` are dropped, and
/// `daysAhead` days are always ready for new events. Run by every gateway now and then; the store makes
/// concurrent rotations safe.
public struct OutboxRotator<Metadata: MetadataStore>: Sendable {
    public let metadata: Metadata
    public let retention: Duration
    public let daysAhead: Int
    let clock: MediaClock
    let logger: Logger

    public init(metadata: Metadata, retention: Duration, daysAhead: Int, clock: MediaClock = .system, logger: Logger) {
        self.metadata = metadata
        self.retention = retention
        self.daysAhead = daysAhead
        self.clock = clock
        self.logger = logger
    }

    /// One rotation: drops the days that ended `retention` ago or earlier, makes the coming days, and sets
    /// the gauges (`mediagw_outbox_days_ahead`, `mediagw_outbox_horizon`,
    /// `mediagw_outbox_rotated_timestamp_seconds`) and the dropped-days counter.
    @discardableResult
    public func rotate() async throws -> OutboxRotation {
        let now = clock.now()
        let rotation = try await metadata.rotateOutbox(
            droppingDaysEndingBy: now.addingTimeInterval(-retention.seconds),
            daysAhead: daysAhead,
            now: now
        )
        let today = OutboxRotation.day(of: now)
        OutboxMetrics.daysAhead().record(rotation.lastDay.map { ($0.timeIntervalSince(today) / 86_400).rounded() } ?? -1)
        OutboxMetrics.horizon().record(Double(rotation.horizon))
        OutboxMetrics.rotated().record(now.timeIntervalSince1970)
        if !rotation.droppedDays.isEmpty {
            OutboxMetrics.droppedDays().increment(by: Int64(rotation.droppedDays.count))
        }
        if !rotation.droppedDays.isEmpty || rotation.addedDays > 0 {
            logger.info(
                "rotated the outbox",
                metadata: [
                    "outbox.dropped_days": "\(rotation.droppedDays.map { OutboxRotator.dayName($0) })",
                    "outbox.added_days": "\(rotation.addedDays)", "outbox.horizon": "\(rotation.horizon)",
                ]
            )
        }
        return rotation
    }

    static func dayName(_ day: Date) -> String { day.formatted(.iso8601.year().month().day()) }
}

/// The outbox's retention metrics, made once.
enum OutboxMetrics {
    static let daysAhead = MetricFamily<Gauge>.gauges("mediagw_outbox_days_ahead")
    static let horizon = MetricFamily<Gauge>.gauges("mediagw_outbox_horizon")
    static let rotated = MetricFamily<Gauge>.gauges("mediagw_outbox_rotated_timestamp_seconds")
    static let droppedDays = MetricFamily<Counter>.counters("mediagw_outbox_dropped_days_total", labels: [])
}
