import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaCore
import NIOConcurrencyHelpers
import NIOCore

/// Answers `GET` and `HEAD` for one stored object, over any ``BlobStore``: validators (`ETag`,
/// `Last-Modified`), conditional requests (304 and 412), byte ranges (206 and 416), caching and safety
/// headers, and the body streamed from the store chunk by chunk. Written once; every origin route uses it.
///
/// Several ranges in one request are answered with the whole object (200), never `multipart/byteranges`.
public struct OriginResponder<Blobs: BlobStore>: Sendable {
    public let blobs: Blobs
    private let readAhead: ReadAheadBudget

    /// - Parameter readAhead: chunks that downloads may hold read ahead of their sockets, across every
    ///   download of this responder. A download reads its next chunk while it sends one when a permit is
    ///   free, else after: the socket need not wait for the store, and memory stays bounded however many
    ///   clients there are.
    public init(blobs: Blobs, readAhead: Int = 32) {
        self.blobs = blobs
        self.readAhead = ReadAheadBudget(permits: readAhead)
    }

    /// The response to `request` (a `GET` or a `HEAD`) for `object`. `HEAD` gets exactly the status and
    /// headers `GET` would, and reads nothing from the store.
    public func respond(to request: Request, object: OriginObject, logger: Logger) async throws -> Response {
        let etag = "\"\(object.sha256)\""
        let lastModified = object.lastModified.roundedToSecond
        var headers = OriginHeaders.validatorHeaders(object, etag: etag, lastModified: lastModified)

        if let status = OriginHeaders.preconditionStatus(request.headers, etag: etag, lastModified: lastModified) {
            // a 304's Content-Length, when sent, is the length a 200 would have (RFC 9110 §8.6)
            headers[.contentLength] = status == .notModified ? String(object.size) : "0"
            return Response(status: status, headers: headers)
        }

        headers[.contentType] = object.mime
        headers[.acceptRanges] = "bytes"
        headers[.xContentTypeOptions] = "nosniff"
        headers[.contentDisposition] = "inline; filename=\"\(object.filename)\""
        headers[.crossOriginResourcePolicy] = "cross-origin"

        let status: HTTPResponse.Status
        let range: Range<Int64>
        switch OriginHeaders.rangeRequest(request.headers, etag: etag, lastModified: lastModified, size: object.size) {
        case .whole, .several:
            status = .ok
            range = 0..<object.size
        case .single(let requested):
            status = .partialContent
            range = requested
            headers[.contentRange] = "bytes \(requested.lowerBound)-\(requested.upperBound - 1)/\(object.size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(object.size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        let length = range.upperBound - range.lowerBound
        headers[.contentLength] = String(length)
        guard request.method == .get, length > 0 else {
            return Response(status: status, headers: headers, body: ResponseBody())
        }
        return Response(status: status, headers: headers, body: try await body(object, range: range, logger: logger))
    }

    /// The body, streamed from the store. The first chunk is read before the response starts, so that a
    /// missing object or a store that is down still gets a proper status; a failure later cuts the
    /// connection short (the client sees fewer bytes than `Content-Length`).
    private func body(_ object: OriginObject, range: Range<Int64>, logger: Logger) async throws -> ResponseBody {
        let length = range.upperBound - range.lowerBound
        var iterator = blobs.read(object.location, range: range).makeAsyncIterator()
        let first: ByteBuffer?
        do {
            first = try await iterator.next()
        } catch let error as BlobStoreError where error.code == .notFound {
            logger.error("a ready media item's object is missing", metadata: ["object.location": "\(object.location)"])
            throw MediaError(.notFound, "no such media", cause: error)
        } catch {
            throw MediaError.from(error, doing: "read the media")
        }
        // handed over, not captured: a closure holds what it captures until it is released, after the whole
        // body, and the first chunk's buffer must be freed once it is sent like every other
        let handover = NIOLockedValueBox(first)
        return ResponseBody(contentLength: Int(length)) { [iterator, readAhead] writer in
            var sent: Int64 = 0
            var chunk = handover.withLockedValue { $0.take() }
            // Each chunk is handed to `send` (consumed), so that nothing here holds it while the next one is
            // read: its buffer is freed as soon as its last byte is on the socket, which is what lets another
            // read have a buffer (`MEDIAGW_CEPH_READ_BUFFERS`).
            while let buffer = chunk.take() {
                sent += Int64(buffer.readableBytes)
                if readAhead.tryAcquire() {
                    defer { readAhead.release() }
                    // reads are sequential: each is awaited before the next starts
                    async let following = Self.next(iterator)
                    try await Self.send(consume buffer, to: &writer)
                    chunk = try await following
                } else {
                    try await Self.send(consume buffer, to: &writer)
                    chunk = try await Self.next(iterator)
                }
            }
            guard sent == length else {
                logger.error(
                    "object shorter than its metadata",
                    metadata: [
                        "object.location": "\(object.location)", "object.expected": "\(length)", "object.sent": "\(sent)",
                    ]
                )
                throw MediaError(.internal, "the object ended early")
            }
            try await writer.finish(nil)
        }
    }
}

extension OriginResponder {
    /// The next chunk of a read (the iterator's state lives in the store's reader, shared by its copies).
    fileprivate static func next(_ iterator: BlobChunks.AsyncIterator) async throws -> ByteBuffer? {
        var iterator = iterator
        return try await iterator.next()
    }

    /// Writes `buffer` in slices (views of the same bytes, no copy): the writer waits while the socket is
    /// full, so a download holds the chunk it sends (and at most one read ahead), never a queue of them.
    fileprivate static func send(_ buffer: consuming ByteBuffer, to writer: inout some ResponseBodyWriter) async throws {
        var buffer = buffer
        while let slice = buffer.readSlice(length: min(buffer.readableBytes, originWriteSlice)), slice.readableBytes > 0 {
            try await writer.write(slice)
        }
    }
}

/// Permits to read a chunk ahead, shared by every download of a responder; taken only when free.
final class ReadAheadBudget: Sendable {
    private let available: NIOLockedValueBox<Int>

    init(permits: Int) {
        available = NIOLockedValueBox(max(0, permits))
    }

    func tryAcquire() -> Bool {
        available.withLockedValue { available in
            guard available > 0 else { return false }
            available -= 1
            return true
        }
    }

    func release() {
        available.withLockedValue { $0 += 1 }
    }
}

/// Bytes per write of an origin body to the connection.
private let originWriteSlice = 64 << 10

/// The header rules of the origin, as pure functions of the request's headers and the object's validators.
enum OriginHeaders {
    /// The validators and caching headers: sent with every answer for the object, 304 and 412 included.
    static func validatorHeaders(_ object: OriginObject, etag: String, lastModified: Date) -> HTTPFields {
        var headers = HTTPFields()
        headers[.eTag] = etag
        headers[.lastModified] = HTTPDate.format(lastModified)
        switch object.cache {
        case .publicImmutable(let maxAge): headers[.cacheControl] = "public, max-age=\(maxAge), immutable"
        case .privateOnly(let maxAge): headers[.cacheControl] = "private, max-age=\(maxAge)"
        }
        if object.variesByAccept { headers[.vary] = "Accept" }
        return headers
    }

    /// 412 or 304 when a precondition says so (RFC 9110 §13.2.2 order), `nil` to go on. A header sent with
    /// an empty value states no condition and counts as absent.
    static func preconditionStatus(_ headers: HTTPFields, etag: String, lastModified: Date) -> HTTPResponse.Status? {
        if let ifMatch = headers.nonEmpty(.ifMatch) {
            if !EntityTags.list(ifMatch, matches: etag, weak: false) { return .preconditionFailed }
        } else if let since = headers[.ifUnmodifiedSince].flatMap(HTTPDate.parse), lastModified > since {
            return .preconditionFailed
        }
        if let ifNoneMatch = headers.nonEmpty(.ifNoneMatch) {
            if EntityTags.list(ifNoneMatch, matches: etag, weak: true) { return .notModified }
        } else if let since = headers[.ifModifiedSince].flatMap(HTTPDate.parse), lastModified <= since {
            return .notModified
        }
        return nil
    }

    /// The range to send: `If-Range` that does not match the current object turns a range into the whole.
    static func rangeRequest(_ headers: HTTPFields, etag: String, lastModified: Date, size: Int64) -> RangeRequest {
        guard let range = headers.nonEmpty(.range) else { return .whole }
        if let ifRange = headers.nonEmpty(.ifRange) {
            let current =
                ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/")
                ? ifRange == etag
                : HTTPDate.parse(ifRange) == lastModified
            guard current else { return .whole }
        }
        return RangeRequest.evaluate(range, size: size)
    }
}

extension HTTPFields {
    /// A field's value, trimmed, or `nil` when the field is absent or empty.
    func nonEmpty(_ name: HTTPField.Name) -> String? {
        guard let value = self[name]?.trimmingOWS(), !value.isEmpty else { return nil }
        return value
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let crossOriginResourcePolicy = HTTPField.Name("Cross-Origin-Resource-Policy")!
}

extension Date {
    /// HTTP dates have whole seconds: validators compare at that resolution.
    var roundedToSecond: Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}
