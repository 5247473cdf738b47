import Metrics
import Synchronization

/// Metric objects of one name, made once per set of label values and kept: an operation looks its metric
/// up, it never creates one. Label values must come from a bounded set (kinds, outcomes, operation
/// names, errno values), never ids.
public final class MetricFamily<Metric: Sendable>: Sendable {
    private let make: @Sendable ([(String, String)]) -> Metric
    private let labels: [String]
    /// Each metric, and whether the metrics system was bootstrapped when it was made.
    private let made = Mutex<[[String]: (metric: Metric, bootstrapped: Bool)]>([:])

    /// - Parameters:
    ///   - labels: the dimension names, in the order their values are given.
    ///   - make: creates the metric for a list of (name, value) dimensions.
    public init(labels: [String], make: @escaping @Sendable ([(String, String)]) -> Metric) {
        self.labels = labels
        self.make = make
    }

    /// The metric of `values` (one per label, in order).
    public func callAsFunction(_ values: String...) -> Metric {
        precondition(values.count == labels.count, "one value per label")
        return made.withLock { made in
            // a metric made before the metrics system was bootstrapped goes nowhere: it is made again once
            // the system is there (checked only for such metrics)
            if let existing = made[values], existing.bootstrapped || !Self.isBootstrapped { return existing.metric }
            let metric = make(Array(zip(labels, values)))
            made[values] = (metric, Self.isBootstrapped)
            return metric
        }
    }

    static var isBootstrapped: Bool { !(MetricsSystem.factory is NOOPMetricsHandler) }
}

extension MetricFamily where Metric == Counter {
    /// Counters named `label`, one per set of values of `labels`.
    public static func counters(_ label: String, labels: [String]) -> MetricFamily<Counter> {
        MetricFamily(labels: labels) { Counter(label: label, dimensions: $0) }
    }
}

extension MetricFamily where Metric == Gauge {
    /// Gauges named `label`, one per set of values of `labels` (none: one gauge).
    public static func gauges(_ label: String, labels: [String] = []) -> MetricFamily<Gauge> {
        MetricFamily(labels: labels) { Gauge(label: label, dimensions: $0) }
    }
}

extension MetricFamily where Metric == Timer {
    /// Timers in seconds named `label`, one per set of values of `labels`.
    public static func timers(_ label: String, labels: [String]) -> MetricFamily<Timer> {
        MetricFamily(labels: labels) { Timer(label: label, dimensions: $0, preferredDisplayUnit: .seconds) }
    }
}
