import AsyncHTTPClient
import Foundation
import Logging
import MediaApp
import MediaConcurrency
import MediaCore
import MediaTesting
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

/// A real gateway (the same composition root as `mediagw serve`) running in this test process on a free
/// port, on its suite's slice of the real stack, reached through real HTTP with AsyncHTTPClient.
final class TestGateway: Sendable {
    static let serviceToken = "test-service-token-0123456789"
    static let keySecret = Array("0123456789abcdef0123456789abcdef".utf8)
    static let urlKeySecret = Array("fedcba9876543210fedcba9876543210".utf8)

    let baseURL: String
    let signer: UploadTokenSigner
    let routeTable: [String]
    let isolation: Isolation
    private let group: ServiceGroup
    private let runner: Task<Void, any Error>

    private init(
        baseURL: String,
        signer: UploadTokenSigner,
        routeTable: [String],
        isolation: Isolation,
        group: ServiceGroup,
        runner: Task<Void, any Error>
    ) {
        self.baseURL = baseURL
        self.signer = signer
        self.routeTable = routeTable
        self.isolation = isolation
        self.group = group
        self.runner = runner
    }

    /// The environment of a test gateway: its slice of the stack, test secrets, any free port, no background
    /// reconciler, processing in processor processes of the built `mediagw-processor`.
    static func environment(_ isolation: Isolation, _ overrides: [String: String] = [:]) -> [String: String] {
        var environment = isolation.environment
        environment["MEDIAGW_SERVICE_TOKENS"] = serviceToken
        environment["MEDIAGW_UPLOAD_TOKEN_KEYS"] = "t1:\(Data(keySecret).base64EncodedString())"
        environment["MEDIAGW_URL_SIGNING_KEYS"] = "u1:\(Data(urlKeySecret).base64EncodedString())"
        environment["MEDIAGW_PORT"] = "0"
        environment["MEDIAGW_RECONCILE_INTERVAL"] = "0"
        environment["MEDIAGW_PROCESSOR_EXECUTABLE"] = TestStack.processorPath
        environment["MEDIAGW_WORKERS"] = environment["MEDIAGW_WORKERS"] ?? "2"
        environment["MEDIAGW_JOB_BACKOFF"] = "1s"
        // the recorder is one per process: gateways in the test process would share it (the correlation is
        // tested with gateway processes)
        environment["MEDIAGW_CORRELATION"] = "false"
        for (name, value) in overrides { environment[name] = value }
        return environment
    }

    private static let suites = Mutex<[String: Task<TestGateway, any Error>]>([:])

    /// The gateway of one suite, started once per test process on the suite's own slice of the stack.
    static func suite(_ suite: String, _ overrides: [String: String] = [:]) async throws -> TestGateway {
        let task = suites.withLock { suites in
            if let task = suites[suite] { return task }
            let task = Task { try await start(try await Isolation.suite(suite), overrides) }
            suites[suite] = task
            return task
        }
        return try await task.value
    }

    static func start(_ isolation: Isolation, _ overrides: [String: String] = [:]) async throws -> TestGateway {
        let environment = environment(isolation, overrides)
        let configuration = try ServeConfiguration(environment: EnvironmentReader(environment))
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let gateway = try await GatewayServer.build(configuration, environment: environment, logger: TestStack.logger, handleSignals: false) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let runner = Task { try await gateway.serviceGroup.run() }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ConfigurationError("the test gateway did not start") }
        return TestGateway(
            baseURL: "http://127.0.0.1:\(port)",
            signer: UploadTokenSigner(keys: [try SigningKey(id: "t1", secret: keySecret)]),
            routeTable: gateway.routes.routes,
            isolation: isolation,
            group: gateway.serviceGroup,
            runner: runner
        )
    }

    /// Graceful shutdown, then waits for the service group to finish.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await runner.value
    }

    // MARK: HTTP

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]

        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var text: String { String(decoding: body, as: UTF8.self) }

        /// Uploads files in one multipart request to the gateway at `baseURL`.
        static func upload(
            _ baseURL: String,
            _ set: OpenedSet,
            _ files: [(filename: String?, bytes: [UInt8])],
            token: String? = nil,
            headers: [(String, String)] = []
        ) async throws -> Reply {
            let boundary = "test-\(UUID().uuidString)"
            var request = HTTPClientRequest(url: baseURL + "/v1/upload-sets/\(set.id)/media")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token ?? set.token)")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.body = .bytes(ByteBuffer(bytes: Multipart.body(files, boundary: boundary)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            let bytes = try await response.body.collect(upTo: 16 << 20)
            return Reply(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
        }
    }

    func request(
        _ method: HTTPMethod,
        _ path: String,
        token: String? = TestGateway.serviceToken,
        json: Any? = nil,
        body: HTTPClientRequest.Body? = nil,
        headers: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let body {
            request.body = body
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    /// An upload set opened through the internal API.
    struct OpenedSet: Sendable {
        var id: String
        var token: String
        var raw: [UInt8] = []
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(raw))) as? [String: Any] ?? [:] }
    }

    func openSet(context: String = "post", owner: String = "owner-\(UUID().uuidString.prefix(8))") async throws -> OpenedSet {
        let reply = try await request(
            .POST,
            "/internal/v1/upload-sets",
            json: ["owner_id": owner, "context": context, "context_id": "ctx-\(UUID().uuidString.prefix(8))"]
        )
        #expect(reply.status == 201, "\(reply.text)")
        let json = reply.json
        return OpenedSet(id: json["id"] as? String ?? "", token: json["upload_token"] as? String ?? "", raw: reply.body)
    }

    /// Uploads files in one multipart request.
    func upload(_ set: OpenedSet, _ files: [(filename: String?, bytes: [UInt8])], token: String? = nil) async throws -> Reply {
        try await Reply.upload(baseURL, set, files, token: token)
    }
}

/// Builds `multipart/form-data` bodies for tests.
enum Multipart {
    static func body(_ files: [(filename: String?, bytes: [UInt8])], boundary: String) -> [UInt8] {
        var out: [UInt8] = []
        for (index, file) in files.enumerated() {
            out += Array(partHeader(index: index, filename: file.filename, boundary: boundary).utf8)
            out += file.bytes
            out += Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }

    static func partHeader(index: Int, filename: String?, boundary: String, contentType: String = "application/octet-stream") -> String {
        var disposition = "Content-Disposition: form-data; name=\"file\(index)\""
        if let filename { disposition += "; filename=\"\(filename)\"" }
        return "--\(boundary)\r\n\(disposition)\r\nContent-Type: \(contentType)\r\n\r\n"
    }
}

/// The media files the tests use, kept in the repository (`Tests/Fixtures/corpus`, with a MANIFEST of each
/// file's source and licence).
enum Corpus {
    static let root = TestStack.root.appendingPathComponent("Tests/Fixtures/corpus")

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(path)))
    }

    /// Every media file (MANIFEST.md aside). A missing fixture directory fails the test: never zero cases.
    static func files() throws -> [String] {
        let files = try FileManager.default.subpathsOfDirectory(atPath: root.path).filter { $0.contains("/") && !$0.hasSuffix(".md") }.sorted()
        try #require(files.count == 100, "the corpus in \(root.path) has \(files.count) files, not 100")
        return files
    }
}

/// An MP4-looking payload of `count` bytes: a real `ftyp` box, then filler.
func fakeMP4(_ count: Int, seed: UInt64 = 1) throws -> [UInt8] {
    let head = Array(try Corpus.bytes("video/mp4-h264-aac-bbb-10s.mp4").prefix(32))
    return head + patternBytes(count: max(0, count - head.count), seed: seed)
}

extension TestGateway {
    /// Objects of this gateway's slice in a pool whose key starts with `prefix`.
    func listObjects(pool: String, prefix: String) async throws -> [String] {
        try await isolation.listObjects(pool: pool, prefix: prefix)
    }

    /// Waits until a media item leaves `stored`/`processing`, and returns its JSON.
    func settled(_ id: String, within timeout: Duration = .seconds(180)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let reply = try await request(.GET, "/internal/v1/media/\(id)")
            if let state = reply.json["state"] as? String, state != "stored" && state != "processing" { return reply.json }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw TestFailure("media \(id) was not processed within \(timeout)")
    }
}

/// `127.0.0.1:port` as a socket address.
func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}

/// A bare TCP connection to a gateway, for a client that misbehaves as no HTTP client will: a request cut
/// off mid-body, then the connection closed.
final class RawConnection: Sendable {
    let descriptor: Int32

    /// Connects to the host and port of `baseURL` (`http://127.0.0.1:port`).
    init(_ baseURL: String) throws {
        guard let port = URLComponents(string: baseURL)?.port else { throw TestFailure("no port in \(baseURL)") }
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Foundation.close(descriptor)
            throw TestFailure("could not connect to \(baseURL): errno \(errno)")
        }
    }

    /// Sends all of `bytes` (blocking writes, on a thread of their own).
    func send(_ bytes: [UInt8]) async throws {
        let descriptor = descriptor
        let failure: Int32? = await onOwnThread {
            var offset = 0
            while offset < bytes.count {
                let count = bytes[offset...].withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard count > 0 else { return errno }
                offset += count
            }
            return nil
        }
        if let failure { throw TestFailure("the connection refused the bytes: errno \(failure)") }
    }

    /// Reads until the peer closes the connection or `limit` bytes came (blocking reads, on a thread of
    /// their own), and returns what came.
    func receiveAll(limit: Int = 1 << 20) async -> [UInt8] {
        let descriptor = descriptor
        return await onOwnThread {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while received.count < limit {
                let count = buffer.withUnsafeMutableBytes { Foundation.recv(descriptor, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                received += buffer[0..<count]
            }
            return received
        }
    }

    /// Sends no more: the peer reads an end of stream, the connection still takes what it answers.
    func shutdownWrites() {
        shutdown(descriptor, Int32(SHUT_WR))
    }

    func close() {
        Foundation.close(descriptor)
    }
}
