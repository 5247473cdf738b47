import Metrics
import Synchronization

/// Metric objects of one name, made once per set of label values and kept: an operation looks its metric
/// up, it never creates one. Label values must come from a bounded set (kinds, outcomes, operation
/// names, errno values), never ids.
public final class MetricFamily<Metric: Sendable>: Sendable {
    private let make: @Sendable ([(String, String)]) -> Metric
    private let labels: [String]
    private let made = Mutex<[[String]: Metric]>([:])

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
            if let metric = made[values] { return metric }
            let metric = make(Array(zip(labels, values)))
            made[values] = metric
            return metric
        }
    }
}

extension MetricFamily where Metric == Counter {
    /// Counters named `label`, one per set of values of `labels`.
    public static func counters(_ label: String, labels: [String]) -> MetricFamily<Counter> {
        MetricFamily(labels: labels) { Counter(label: label, dimensions: $0) }
    }
}

extension MetricFamily where Metric == Timer {
    /// Timers in seconds named `label`, one per set of values of `labels`.
    public static func timers(_ label: String, labels: [String]) -> MetricFamily<Timer> {
        MetricFamily(labels: labels) { Timer(label: label, dimensions: $0, preferredDisplayUnit: .seconds) }
    }
}
