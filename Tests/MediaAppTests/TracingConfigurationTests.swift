import MediaApp
import Testing

struct TracingConfigurationTests {
    @Test func tracingIsOffUnlessTheOTLPExporterIsAskedFor() throws {
        #expect(try !TracingConfiguration(environment: EnvironmentReader([:]), serviceName: "mediagw").enabled)
        #expect(try !TracingConfiguration(environment: EnvironmentReader(["OTEL_TRACES_EXPORTER": "none"]), serviceName: "mediagw").enabled)
        #expect(try TracingConfiguration(environment: EnvironmentReader(["OTEL_TRACES_EXPORTER": "OTLP"]), serviceName: "mediagw").enabled)
        let disabled = EnvironmentReader(["OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"])
        #expect(try !TracingConfiguration(environment: disabled, serviceName: "mediagw").enabled, "the SDK switch wins")
    }

    @Test(arguments: [
        ["OTEL_TRACES_EXPORTER": "zipkin"],
        ["OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"],
        ["OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"],
    ])
    func anExporterOrProtocolThisBuildCannotSpeakIsRefusedAtStart(_ environment: [String: String]) {
        #expect(throws: ConfigurationError.self) { try TracingConfiguration(environment: EnvironmentReader(environment), serviceName: "mediagw") }
    }

    @Test func theOTLPOverHTTPProtocolsAreAccepted() throws {
        for value in ["http/protobuf", "http/json"] {
            let environment = EnvironmentReader(["OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": value])
            #expect(try TracingConfiguration(environment: environment, serviceName: "mediagw").enabled)
        }
    }
}
