import Foundation
import MediaApp
import MediaCore
import MediaTesting
import NIOHTTP1
import Testing

/// The internal API of the social modules through real HTTP, on the real stack.
@Suite struct InternalAPITests {
    let gateway: TestGateway

    init() async throws {
        gateway = try await TestGateway.suite("InternalAPI")
    }

    @Test func everyInternalRouteRefusesAMissingOrWrongServiceToken() async throws {
        let id = MediaID.generate()
        let routes: [(HTTPMethodName, String)] = [
            (.POST, "/internal/v1/upload-sets"), (.GET, "/internal/v1/upload-sets/\(id)"),
            (.POST, "/internal/v1/upload-sets/\(id)/commit"), (.GET, "/internal/v1/media/\(id)"),
            (.DELETE, "/internal/v1/media/\(id)"), (.GET, "/internal/v1/events"),
        ]
        for (method, path) in routes {
            for token in [nil, "wrong-token-0123456789", TestGateway.serviceToken + "x"] {
                let reply = try await gateway.request(method.nio, path, token: token)
                #expect(reply.status == 401, "\(method) \(path)")
                #expect(reply.errorCode == "unauthorized")
                #expect(reply.headers["WWW-Authenticate"].first == "Bearer")
            }
        }
    }

    @Test func creatingASetReturnsItsTokenExpiryAndLimits() async throws {
        let set = try await gateway.openSet(context: "message")
        let limits = set.json["limits"] as? [String: [String: Int]]
        #expect(limits?["audio"]?["max_count"] == 1)
        #expect(limits?["photo"]?["max_bytes"] == 1 << 20)
        #expect(set.json["upload_url"] as? String == "/v1/upload-sets/\(set.id)/media")
        let formatter = ISO8601DateFormatter()
        let expires = try #require((set.json["expires_at"] as? String).flatMap(formatter.date))
        let tokenExpires = try #require((set.json["token_expires_at"] as? String).flatMap(formatter.date))
        #expect(abs(expires.timeIntervalSinceNow - 24 * 3600) < 120)
        #expect(abs(tokenExpires.timeIntervalSinceNow - 3600) < 120)
        let grant = try gateway.signer.verify(set.token)
        #expect(grant.uploadSetID.description == set.id)
    }

    @Test(arguments: [
        #"{"owner_id": "u", "context": "story", "context_id": "c"}"#,
        #"{"owner_id": "u u", "context": "post", "context_id": "c"}"#,
        #"{"owner_id": "", "context": "post", "context_id": "c"}"#,
        #"{"context": "post", "context_id": "c"}"#,
        #"{"owner_id": "u", "context": "post", "context_id": "c", "private": null}"#,
        #"{"owner_id": "u", "context": "post", "context_id": "c", "private": "true"}"#,
        #"{"owner_id": "u", "context": "post", "context_id": "c", "priority": "urgent"}"#,
        #"{"owner_id": "u", "context": "post", "context_id": "c", "priority": null}"#,
        #"{"owner_id": "u", "context": "post", "context_id": "c", "priority": 1}"#,
        "not json",
    ])
    func badSetRequestsAreRefusedWithInvalidRequest(_ body: String) async throws {
        let reply = try await gateway.request(
            .POST,
            "/internal/v1/upload-sets",
            body: .bytes(.init(string: body)),
            headers: [("Content-Type", "application/json")]
        )
        #expect(reply.status == 400)
        #expect(reply.errorCode == "invalid_request")
    }

    @Test func aSetIsInteractiveUnlessOpenedForBulkWork() async throws {
        let usual = try await gateway.openSet()
        let bulk = try await gateway.request(
            .POST,
            "/internal/v1/upload-sets",
            json: ["owner_id": "ingest", "context": "community", "context_id": "c1", "priority": "bulk"]
        )
        #expect(bulk.status == 201)
        let bulkID = try #require(bulk.json["id"] as? String)
        #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(usual.id)").json["priority"] as? String == "interactive")
        #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(bulkID)").json["priority"] as? String == "bulk")
    }

    @Test func aSetRequestOverItsCapIsTooLargeNotAServerError() async throws {
        let body = #"{"owner_id": "u", "context": "post", "context_id": "c", "pad": ""# + String(repeating: "x", count: 17_000) + "\"}"
        let reply = try await gateway.request(
            .POST,
            "/internal/v1/upload-sets",
            body: .bytes(.init(string: body)),
            headers: [("Content-Type", "application/json")]
        )
        #expect(reply.status == 413)
        #expect(reply.errorCode == "request_too_large")
    }

    @Test(arguments: [
        ("POST", "/healthz", "GET"), ("PUT", "/internal/v1/media/01a2255e-06bd-74e8-8615-804dd721d1ac", "GET, DELETE"),
        ("DELETE", "/internal/v1/upload-sets", "POST"), ("POST", "/m/01a2255e-06bd-74e8-8615-804dd721d1ac/v1/w320", "GET, HEAD"),
    ])
    func aKnownPathWithAnotherMethodIsMethodNotAllowedWithItsMethods(_ method: String, _ path: String, _ allowed: String) async throws {
        let reply = try await gateway.request(HTTPMethod(rawValue: method), path)
        #expect(reply.status == 405, "\(method) \(path)")
        #expect(reply.errorCode == "method_not_allowed")
        #expect(reply.headers["Allow"].first == allowed)
        #expect(try await gateway.request(.GET, "/no/such/route").status == 404)
    }

    @Test func headerFieldsOverTheLimitAreAnswered431InTheAPIsShape() async throws {
        let reply = try await gateway.request(.GET, "/healthz", token: nil, headers: [("X-Padding", String(repeating: "p", count: 82_000))])
        #expect(reply.status == 431)
        #expect(reply.errorCode == "header_too_large")
        #expect(try await gateway.request(.GET, "/healthz", token: nil).status == 200, "the server goes on")
    }

    @Test func commitIsIdempotentAndClosesTheSetToUploads() async throws {
        let set = try await gateway.openSet()
        #expect(try await gateway.upload(set, [("a.jpg", fakeJPEG(2000))]).status == 201)
        let first = try await gateway.request(.POST, "/internal/v1/upload-sets/\(set.id)/commit")
        #expect(first.status == 200)
        #expect(first.json["state"] as? String == "committed")
        let media = first.json["media"] as? [[String: Any]] ?? []
        #expect(media.count == 1 && media[0]["committed_at"] is String)
        let second = try await gateway.request(.POST, "/internal/v1/upload-sets/\(set.id)/commit")
        #expect(second.status == 200)
        #expect(second.json["committed_at"] as? String == first.json["committed_at"] as? String)
        let late = try await gateway.upload(set, [("b.jpg", fakeJPEG(2000))])
        #expect(late.status == 409)
        #expect(late.errorCode == "set_committed")
        let events = try await gateway.request(.GET, "/internal/v1/events?after=0&limit=1000")
        #expect(events.status == 200)
    }

    @Test func unknownIdsAreNotFoundAndMalformedIdsInvalid() async throws {
        #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(UploadSetID.generate())").status == 404)
        #expect(try await gateway.request(.POST, "/internal/v1/upload-sets/\(UploadSetID.generate())/commit").status == 404)
        #expect(try await gateway.request(.GET, "/internal/v1/media/\(MediaID.generate())").status == 404)
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(MediaID.generate())").status == 404)
        for path in ["/internal/v1/media/123", "/internal/v1/upload-sets/x'%20OR%201=1"] {
            let reply = try await gateway.request(.GET, path)
            #expect(reply.status == 400, "\(path)")
            #expect(reply.errorCode == "invalid_request")
        }
        let route = try await gateway.request(.GET, "/internal/v1/nothing-here")
        #expect(route.status == 404)
        #expect(route.errorCode == "not_found")
    }

    @Test func mediaIsReadAndDeletedTombstoneFirstIdempotently() async throws {
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(set, [("a.jpg", fakeJPEG(3000))])
        let id = try #require((uploaded.json["media"] as? [[String: Any]])?.first?["id"] as? String)
        let read = try await gateway.request(.GET, "/internal/v1/media/\(id)")
        #expect(read.status == 200)
        for key in ["id", "kind", "state", "size", "sha256", "mime", "owner_id", "upload_set_id", "created_at"] {
            #expect(read.json[key] != nil, "\(key)")
        }
        let original = ObjectLocation(pool: try TestStack.pools().photo, key: "\(set.id)/\(id)")
        let objects = gateway.isolation.blobs
        #expect(try await objects.stat(original).size == 3000)

        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(id)").status == 204)
        #expect(try await gateway.request(.DELETE, "/internal/v1/media/\(id)").status == 204)
        let gone = try await gateway.request(.GET, "/internal/v1/media/\(id)")
        #expect(gone.json["state"] as? String == "deleted")
        #expect(gone.json["deleted_at"] is String)
        await expectBlobError(.notFound) { _ = try await objects.stat(original) }
        // a deleted item frees its place in the set
        #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)").status == 200)
    }

    @Test func eventsAreReadInOrderAfterACursor() async throws {
        let start = try await gateway.request(.GET, "/internal/v1/events?after=0&limit=1000")
        var cursor = Int64(start.json["next_after"] as? Int ?? 0)
        // drain to the current end
        while true {
            let page = try await gateway.request(.GET, "/internal/v1/events?after=\(cursor)&limit=1000")
            let next = Int64(page.json["next_after"] as? Int ?? 0)
            if next == cursor { break }
            cursor = next
        }
        let set = try await gateway.openSet()
        let uploaded = try await gateway.upload(set, [("a.jpg", fakeJPEG(1000)), ("b.jpg", fakeJPEG(1000))])
        let ids = (uploaded.json["media"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        _ = try await gateway.request(.DELETE, "/internal/v1/media/\(ids[0])")
        _ = try await gateway.request(.POST, "/internal/v1/upload-sets/\(set.id)/commit")

        var seen: [(Int, String, String?)] = []
        var after = cursor
        while true {
            let page = try await gateway.request(.GET, "/internal/v1/events?after=\(after)&limit=2")
            let events = page.json["events"] as? [[String: Any]] ?? []
            if events.isEmpty { break }
            #expect(events.count <= 2)
            for event in events {
                seen.append((event["seq"] as? Int ?? 0, event["type"] as? String ?? "", event["media_id"] as? String))
            }
            after = Int64(page.json["next_after"] as? Int ?? 0)
        }
        #expect(seen.map(\.0) == seen.map(\.0).sorted())
        #expect(Set(seen.map(\.0)).count == seen.count)
        let ours = seen.filter { $0.2 == nil ? true : ids.contains($0.2!) }
        #expect(ours.contains { $0.1 == "media.stored" && $0.2 == ids[0] })
        #expect(ours.contains { $0.1 == "media.stored" && $0.2 == ids[1] })
        #expect(ours.contains { $0.1 == "media.deleted" && $0.2 == ids[0] })
        #expect(seen.contains { $0.1 == "upload_set.committed" })
        for bad in ["after=-1", "limit=0", "limit=1001", "after=abc"] {
            #expect(try await gateway.request(.GET, "/internal/v1/events?\(bad)").status == 400, "\(bad)")
        }
    }
}

/// Operations routes, metrics and the API description.
@Suite struct OperationsTests {
    let gateway: TestGateway

    init() async throws {
        gateway = try await TestGateway.suite("Operations")
    }

    @Test func healthAndReadiness() async throws {
        #expect(try await gateway.request(.GET, "/healthz", token: nil).status == 200)
        // ready once both answer within the probe's deadline; the suite runs beside every other one, whose
        // load may push one probe past it, so the gateway is asked again for a while
        var ready = try await gateway.request(.GET, "/readyz", token: nil)
        let deadline = ContinuousClock.now + .seconds(30)
        while ready.status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            ready = try await gateway.request(.GET, "/readyz", token: nil)
        }
        #expect(ready.status == 200, "\(ready.text)")
        #expect(ready.json["ceph"] as? String == "ok" && ready.json["postgres"] as? String == "ok")
    }

    @Test func theOpenAPIDocumentListsExactlyTheRegisteredRoutes() async throws {
        let reply = try await gateway.request(.GET, "/openapi.json", token: nil)
        #expect(reply.status == 200)
        #expect(reply.json["openapi"] as? String == "3.1.0")
        let paths = reply.json["paths"] as? [String: [String: Any]] ?? [:]
        let documented = paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } }.sorted()
        let registered = gateway.routeTable
        #expect(documented == registered)
        #expect(registered.count == 26)
    }

    @Test func everyDocumentedAnswerCarriesItsRequestId() async throws {
        let reply = try await gateway.request(.GET, "/openapi.json", token: nil)
        let components = reply.json["components"] as? [String: Any] ?? [:]
        let shared = components["responses"] as? [String: [String: Any]] ?? [:]
        let paths = reply.json["paths"] as? [String: [String: [String: Any]]] ?? [:]
        var answers = shared.map { ("components \($0.key)", $0.value) }
        for (path, operations) in paths {
            for (method, operation) in operations {
                for (status, answer) in operation["responses"] as? [String: [String: Any]] ?? [:] where answer["$ref"] == nil {
                    answers.append(("\(method) \(path) \(status)", answer))
                }
            }
        }
        #expect(answers.count > 100)
        for (name, answer) in answers {
            let header = (answer["headers"] as? [String: [String: Any]])?["X-Request-Id"]
            #expect(header?["$ref"] as? String == "#/components/headers/RequestId", "\(name)")
        }
        let requestID = (components["headers"] as? [String: [String: Any]])?["RequestId"]
        #expect(requestID?["required"] as? Bool == true)
        #expect(reply.headers.first(name: "X-Request-Id")?.isEmpty == false, "the document's own answer carries one")
    }

    @Test func metricsAreLabelledByRouteTemplateNeverById() async throws {
        let set = try await gateway.openSet()
        _ = try await gateway.upload(set, [("a.jpg", fakeJPEG(4000))])
        _ = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        let metrics = try await gateway.request(.GET, "/metrics", token: nil)
        #expect(metrics.status == 200)
        let text = metrics.text
        for name in [
            "http_server_request_duration", "hb_requests", "mediagw_uploads_total", "mediagw_upload_bytes_total", "mediagw_http_received_bytes_total",
            "mediagw_rados_operation_duration_seconds", "mediagw_postgres_operation_duration_seconds",
        ] {
            #expect(text.contains(name), "\(name)")
        }
        #expect(text.contains("/v1/upload-sets/{id}/media"))
        #expect(!text.contains(set.id), "no id in any label")
    }
}

enum HTTPMethodName: String {
    case GET, POST, DELETE
    var nio: NIOHTTP1HTTPMethod {
        switch self {
        case .GET: .GET
        case .POST: .POST
        case .DELETE: .DELETE
        }
    }
}

typealias NIOHTTP1HTTPMethod = NIOHTTP1.HTTPMethod
