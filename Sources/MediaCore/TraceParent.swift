import Tracing

/// The W3C trace context (`traceparent`) of work that crosses a queue. A media's processing job records
/// the context of the request that stored it; the job's span, minutes later and maybe on another host,
/// links back to that trace. Nothing is recorded when nothing is traced.
public enum TraceParent {
    /// The `traceparent` of the current span, or `nil` when no tracer is bootstrapped or no span is active.
    public static func current() -> String? {
        guard let context = InstrumentationContext.current else { return nil }
        var fields: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &fields, using: FieldInjector())
        return fields["traceparent"]
    }

    /// A link to the span a recorded `traceparent` names.
    public static func link(_ traceparent: String) -> SpanLink {
        var context = InstrumentationContext.topLevel
        InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: FieldExtractor())
        return SpanLink(context: context, attributes: [:])
    }

    struct FieldInjector: Injector {
        func inject(_ value: String, forKey key: String, into fields: inout [String: String]) { fields[key] = value }
    }

    struct FieldExtractor: Extractor {
        func extract(key: String, from fields: [String: String]) -> String? { fields[key] }
    }
}
