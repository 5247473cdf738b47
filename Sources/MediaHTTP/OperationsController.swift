import Foundation
import HTTPTypes
import Hummingbird
import MediaCore
import Metrics
import Prometheus

/// Health, readiness, metrics and the API description.
struct OperationsController<Storage: MediaStores>: Sendable {
    let readiness: ReadinessProbe<Storage>
    let registry: PrometheusCollectorRegistry
    let retryAfter: Int

    struct Status: Encodable {
        var status: String
        var ceph: String?
        var postgres: String?
    }

    func register(on router: Router<MediaRequestContext>, routes: RouteTable) {
        routes.add(.get, "/healthz", on: router) { _, _ in
            JSONResponse.make(status: .ok, Status(status: "ok"))
        }
        routes.add(.get, "/readyz", on: router) { _, _ in
            let report = await readiness.check()
            // what the balancer saw last, for alerts (the balancer asks every few seconds)
            ReadinessMetrics.ready().record(report.ready ? 1 : 0)
            guard report.ready else {
                return JSONResponse.make(
                    status: .serviceUnavailable,
                    Status(
                        status: "unavailable",
                        ceph: report.ceph == nil ? "ok" : "unavailable",
                        postgres: report.postgres == nil ? "ok" : "unavailable"
                    ),
                    headers: [.retryAfter: "\(retryAfter)"]
                )
            }
            return JSONResponse.make(status: .ok, Status(status: "ready", ceph: "ok", postgres: "ok"))
        }
        routes.add(.get, "/metrics", on: router) { _, _ in
            let text = registry.emitToBuffer()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: text))
            )
        }
        routes.add(.get, "/openapi.json", on: router) { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes))
            )
        }
    }
}

/// The OpenAPI 3.1 document of the API, kept in the repository beside this file (`openapi.json`).
public enum OpenAPIDocument {
    public static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let data = try? Data(contentsOf: url)
        else { preconditionFailure("openapi.json is missing from the MediaHTTP bundle") }
        return Array(data)
    }()
}

/// The answer `/readyz` gave last (1 ready, 0 not), made once.
enum ReadinessMetrics {
    static let ready = MetricFamily<Metrics.Gauge>.gauges("mediagw_ready")
}
