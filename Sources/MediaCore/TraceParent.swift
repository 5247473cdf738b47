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

/// Runs `body` in a client span named `name` when the caller is itself traced (a request, a job, a
/// reconciler pass); without a span around it (the polls of background loops) `body` runs untraced, as each
/// call would otherwise be a trace of its own.
public func withClientSpan<T>(_ name: String, _ body: ((any Span)?) async throws -> T) async throws -> T {
    guard InstrumentationContext.current != nil else { return try await body(nil) }
    return try await withSpan(name, ofKind: .client) { span in try await body(span) }
}
