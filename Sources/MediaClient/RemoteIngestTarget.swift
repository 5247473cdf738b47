import AsyncHTTPClient
import Foundation
import MediaCore
import MediaIngest
import NIOCore
import NIOHTTP1

/// Ingests through a running gateway: the internal API (service token) opens, reads and commits sets, the
/// public upload API (the set's upload token) takes the files, streamed as multipart bodies. The gateway
/// applies its rules; its answers come back as ``MediaError``s with the same codes.
public struct RemoteIngestTarget: IngestTarget {
    let baseURL: String
    let serviceToken: String
    let client: HTTPClient
    let timeout: TimeAmount

    /// - Parameters:
    ///   - baseURL: the gateway, e.g. `http://127.0.0.1:8080`.
    ///   - serviceToken: a token of `MEDIAGW_SERVICE_TOKENS`.
    public init(baseURL: String, serviceToken: String, client: HTTPClient = .shared, timeout: TimeAmount = .seconds(900)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.serviceToken = serviceToken
        self.client = client
        self.timeout = timeout
    }

    public func openSet(for destination: IngestDestination) async throws -> IngestSet {
        let body: [String: Any] = [
            "owner_id": destination.ownerID, "context": destination.context.rawValue, "context_id": destination.contextID,
            "private": destination.isPrivate, "priority": ProcessingPriority.bulk.rawValue,
        ]
        let json = try await call(.POST, "/internal/v1/upload-sets", body: try JSONSerialization.data(withJSONObject: body), expect: [201])
        guard let id = json["id"] as? String, let token = json["upload_token"] as? String else {
            throw MediaError(.internal, "the gateway answered an unexpected upload set")
        }
        return IngestSet(id: id, token: token, tokenExpiresAt: (json["token_expires_at"] as? String).flatMap(Self.date))
    }

    public func state(of set: IngestSet) async throws -> IngestSetState? {
        let json: [String: Any]
        do {
            json = try await call(.GET, "/internal/v1/upload-sets/\(set.id)", expect: [200])
        } catch let error as MediaError where error.code == .notFound {
            return nil
        }
        let state = json["state"] as? String
        let expires = (json["expires_at"] as? String).flatMap(Self.date) ?? .distantPast
        var byHash: [String: [String]] = [:]
        for media in json["media"] as? [[String: Any]] ?? [] where media["state"] as? String != "deleted" {
            if let sha = media["sha256"] as? String, let id = media["id"] as? String { byHash[sha, default: []].append(id) }
        }
        // a token that would expire within the minute cannot be resumed with: a new set is opened instead
        let tokenUsable = set.token != nil && (set.tokenExpiresAt ?? .distantPast) > Date().addingTimeInterval(60)
        return IngestSetState(
            acceptsUploads: state == "draft" && expires > Date().addingTimeInterval(60) && tokenUsable,
            isCommitted: state == "committed",
            mediaByHash: byHash
        )
    }

    public func upload<Chunks: AsyncSequence & Sendable>(
        _ chunks: Chunks,
        size: Int64,
        filename: String,
        into set: IngestSet
    ) async throws -> IngestedFile
    where Chunks.Element == ByteBuffer {
        guard let token = set.token else { throw MediaError(.unauthorized, "no upload token for set \(set.id)") }
        let boundary = "mediagw-ingest-\(UUID().uuidString)"
        let safeName = filename.filter { $0 != "\"" && $0 != "\r" && $0 != "\n" }
        let head = ByteBuffer(
            string:
                "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(safeName)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        let tail = ByteBuffer(string: "\r\n--\(boundary)--\r\n")
        var request = HTTPClientRequest(url: "\(baseURL)/v1/upload-sets/\(set.id)/media")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.body = .stream(
            MultipartFileBody(head: head, chunks: chunks, tail: tail),
            length: .known(Int64(head.readableBytes + tail.readableBytes) + size)
        )
        let json = try await send(request, expect: [201])
        guard let media = (json["media"] as? [[String: Any]])?.first, let id = media["id"] as? String, let sha256 = media["sha256"] as? String else {
            throw MediaError(.internal, "the gateway answered an unexpected upload result")
        }
        return IngestedFile(mediaID: id, sha256: sha256)
    }

    public func commit(_ set: IngestSet) async throws {
        _ = try await call(.POST, "/internal/v1/upload-sets/\(set.id)/commit", expect: [200])
    }

    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, expect: Set<UInt>) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(serviceToken)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return try await send(request, expect: expect)
    }

    /// Sends a request; a non-expected status becomes the ``MediaError`` of its JSON error body.
    private func send(_ request: HTTPClientRequest, expect: Set<UInt>) async throws -> [String: Any] {
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            body = try await response.body.collect(upTo: 4 << 20)
        } catch let error as MediaError {
            throw error
        } catch {
            throw MediaError(.unavailable, "the gateway at \(baseURL) cannot be reached: \(error)", cause: error)
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        guard expect.contains(response.status.code) else {
            let error = json["error"] as? [String: Any]
            let code =
                (error?["code"] as? String).flatMap(MediaError.Code.init(rawValue:)) ?? (response.status.code >= 500 ? .unavailable : .invalidRequest)
            throw MediaError(code, error?["message"] as? String ?? "the gateway answered \(response.status.code)")
        }
        return json
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// A multipart body of one file part: the part's head, the file's chunks, the closing boundary.
struct MultipartFileBody<Chunks: AsyncSequence & Sendable>: AsyncSequence, Sendable where Chunks.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let head: ByteBuffer
    let chunks: Chunks
    let tail: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var head: ByteBuffer?
        var chunks: Chunks.AsyncIterator
        var tail: ByteBuffer?

        mutating func next() async throws -> ByteBuffer? {
            if let head {
                self.head = nil
                return head
            }
            if let chunk = try await chunks.next() { return chunk }
            defer { tail = nil }
            return tail
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(head: head, chunks: chunks.makeAsyncIterator(), tail: tail)
    }
}
