import MediaCore
import Metrics
import Testing

/// Metric objects are made once per label values and then looked up, never made per operation.
@Suite struct MetricFamilyTests {
    @Test func theSameValuesGiveTheSameObjectAndOthersAnother() {
        let family = MetricFamily<Counter>.counters("mediagw_test_total", labels: ["kind", "outcome"])
        let first = family("photo", "stored")
        #expect(family("photo", "stored") === first)
        #expect(family("photo", "refused") !== first)
        #expect(family("video", "stored") !== first)
    }

    @Test func theFactoryRunsOncePerValues() {
        let made = Counted()
        let family = MetricFamily<Counter>(labels: ["operation"]) { dimensions in
            made.increment()
            return Counter(label: "mediagw_test_made_total", dimensions: dimensions)
        }
        for _ in 0..<100 { family("read").increment() }
        _ = family("write")
        #expect(made.value == 2)
    }

    final class Counted: @unchecked Sendable {
        private(set) var value = 0
        func increment() { value += 1 }
    }
}
