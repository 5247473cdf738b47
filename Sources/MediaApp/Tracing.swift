import Foundation
import Logging
import OTel
import ServiceLifecycle
import Synchronization
import Tracing

/// Tracing: spans exported over OTLP/HTTP, configured by the standard `OTEL_*` variables. Off unless
/// `OTEL_TRACES_EXPORTER=otlp` is set: unlike the specification's default, a gateway does not send spans to
/// a collector nobody asked for.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `OTEL_TRACES_EXPORTER` | unset (off) | `otlp` turns tracing on; `none` or unset leaves it off |
/// | `OTEL_SDK_DISABLED` | `false` | `true` turns tracing off whatever the exporter |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | `http://localhost:4318` | the collector; spans go to `<endpoint>/v1/traces` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full URL) |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | `http/protobuf` or `http/json` (this build has no gRPC exporter) |
/// | `OTEL_SERVICE_NAME` | the command (`mediagw`, `mediagw-ingest`, …) | `service.name` of the spans |
/// | `OTEL_RESOURCE_ATTRIBUTES` | none | more resource attributes (`host.name=gw1,deployment.environment=prod`) |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `parentbased_always_on` | which traces are kept |
/// | `OTEL_BSP_MAX_QUEUE_SIZE` | `2048` | spans held for export; when full, new spans are dropped, never waited for |
/// | `OTEL_BSP_SCHEDULE_DELAY` | `5000` (ms) | how often a batch is sent |
/// | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | `512` | spans per export request |
/// | `OTEL_BSP_EXPORT_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` | `5000` (ms) each | how long an export may take before the batch is dropped (shorter than the specification's 30 s and 10 s: a hung collector must not outlast a gateway's drain) |
/// | `OTEL_PROPAGATORS` | `tracecontext,baggage` | how a caller's context is read from (and written to) headers |
///
/// Requests never wait for the collector: a span ends into the bounded queue, and a background service
/// exports batches (or drops them when the collector is down or slow).
public struct TracingConfiguration: Sendable {
    public var enabled: Bool
    /// `service.name` when `OTEL_SERVICE_NAME` is not set.
    public var serviceName: String

    public init(environment env: EnvironmentReader, serviceName: String) throws(ConfigurationError) {
        self.serviceName = serviceName
        switch env.string("OTEL_TRACES_EXPORTER")?.lowercased() {
        case _ where env.string("OTEL_SDK_DISABLED")?.lowercased() == "true": enabled = false
        case nil, "none": enabled = false
        case "otlp": enabled = true
        case let other?: throw ConfigurationError("OTEL_TRACES_EXPORTER=\(other) is not supported (otlp or none)")
        }
        guard enabled else { return }
        for name in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = env.string(name), !["http/protobuf", "http/json"].contains(value.lowercased()) {
                throw ConfigurationError("\(name)=\(value) is not supported: this build exports OTLP over HTTP (http/protobuf or http/json)")
            }
        }
    }
}

/// The process's tracer: bootstrapped once, with the background service that exports its spans.
public enum MediaTracing {
    private static let exporter = Mutex<(any Service)?>(nil)

    /// Bootstraps the tracer when `configuration` enables it. Returns whether spans are being recorded.
    @discardableResult
    static func bootstrap(_ configuration: TracingConfiguration, logger: Logger) throws -> Bool {
        guard configuration.enabled else { return false }
        var otel = OTel.Configuration.default
        otel.serviceName = configuration.serviceName
        otel.diagnosticLogger = .custom(logger)
        otel.logs.enabled = false
        otel.metrics.enabled = false
        otel.traces.enabled = true
        otel.traces.exporter = .otlp
        // a collector that hangs holds a gateway's drain for at most this long (the specification's 30 s
        // would outlast the shutdown deadline); the variables still override
        otel.traces.batchSpanProcessor.exportTimeout = .seconds(5)
        otel.traces.otlpExporter.timeout = .seconds(5)
        let backend = try OTel.makeTracingBackend(configuration: otel)
        InstrumentationSystem.bootstrap(backend.factory)
        exporter.withLock { $0 = backend.service }
        return true
    }

    /// Whether a tracer was bootstrapped in this process.
    public static var isEnabled: Bool { exporter.withLock { $0 != nil } }

    /// The exporter, as a service for a command's group: put first, it stops last and sends the spans of
    /// the work that drained before it.
    public static var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        exporter.withLock { $0 }.map { [.init(service: $0)] } ?? []
    }

    /// Whether the current task runs inside ``withExporter(logger:_:)``.
    @TaskLocal private static var exporting = false

    /// For one-shot commands: runs `body` with the exporter running, then sends what is left. Nested calls
    /// run `body` under the outer one (the exporter runs once).
    public static func withExporter<T: Sendable, E: Error>(logger: Logger, _ body: () async throws(E) -> T) async throws(E) -> T {
        guard !exporting, let service = exporter.withLock({ $0 }) else { return try await body() }
        let group = ServiceGroup(services: [service], logger: logger)
        let running = Task { try await group.run() }
        let result: Result<T, E> = await $exporting.withValue(true) { () async -> Result<T, E> in
            do throws(E) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }
        await group.triggerGracefulShutdown()
        _ = await running.result
        return try result.get()
    }
}
