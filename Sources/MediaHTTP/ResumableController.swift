import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaCore

/// Resumable uploads over two protocols, on the one ``ResumableUploadService``, authenticated by the set's
/// upload token (`Authorization: Bearer`):
///
/// - **tus 1.0** (`core`, `creation`, `creation-with-upload`, `creation-defer-length`, `termination`,
///   `expiration`, `checksum` with `sha1` and `sha256`): `POST /v1/upload-sets/{id}/tus` creates,
///   `HEAD`/`PATCH`/`DELETE /v1/tus/{upload}` resume, `OPTIONS` on either discovers;
/// - **the IETF draft** "Resumable Uploads for HTTP", draft -05, interop version 6:
///   `POST /v1/upload-sets/{id}/resumable` with `Upload-Complete` creates (and may carry the whole file),
///   `HEAD`/`PATCH`/`DELETE /v1/resumable/{upload}` resume.
///
/// The media item of a completed upload is named in a `Media-Id` header; the draft's final answer also
/// carries it as JSON.
struct ResumableController<Storage: MediaStores>: Sendable {
    let uploads: UploadService<Storage>
    let resumable: ResumableUploadService<Storage>
    let grants: UploadGrants
    let retryAfter: Int

    static var tusVersion: String { ResumableProtocols.tusVersion }
    static var tusExtensions: String { ResumableProtocols.tusExtensions }
    static var interopVersion: String { ResumableProtocols.interopVersion }
    static var mismatchProblem: String { ResumableProtocols.mismatchProblem }

    func register(on router: Router<MediaRequestContext>, routes: RouteTable) {
        routes.add(.options, "/v1/upload-sets/:id/tus", on: router) { _, context in
            _ = try context.id(UploadSetID.self)
            return self.tusOptions()
        }
        routes.add(.post, "/v1/upload-sets/:id/tus", on: router) { try await self.tus($0, $1) { try await self.tusCreate($0, $1) } }
        routes.add(.options, "/v1/tus/:id", on: router) { _, context in
            _ = try context.id(MediaID.self)
            return self.tusOptions()
        }
        routes.add(.head, "/v1/tus/:id", on: router) { try await self.tus($0, $1) { try await self.tusHead($0, $1) } }
        routes.add(.patch, "/v1/tus/:id", on: router) { try await self.tus($0, $1) { try await self.tusPatch($0, $1) } }
        routes.add(.delete, "/v1/tus/:id", on: router) { try await self.tus($0, $1) { try await self.terminate($0, $1, tus: true) } }

        routes.add(.options, "/v1/upload-sets/:id/resumable", on: router) { _, context in
            _ = try context.id(UploadSetID.self)
            return self.draftOptions()
        }
        routes.add(.post, "/v1/upload-sets/:id/resumable", on: router) { try await self.draft($0, $1) { try await self.draftCreate($0, $1) } }
        routes.add(.head, "/v1/resumable/:id", on: router) { try await self.draft($0, $1) { try await self.draftHead($0, $1) } }
        routes.add(.patch, "/v1/resumable/:id", on: router) { try await self.draft($0, $1) { try await self.draftPatch($0, $1) } }
        routes.add(.delete, "/v1/resumable/:id", on: router) { try await self.draft($0, $1) { try await self.terminate($0, $1, tus: false) } }
    }

    // MARK: Shared

    func grant(_ request: Request) throws -> UploadGrant {
        guard let token = request.bearerToken else {
            throw MediaError(.unauthorized, "an upload token is required (Authorization: Bearer <upload_token>)")
        }
        return try grants.verify(token)
    }

    /// The set named in the path, for this grant, ready for uploads.
    func set(_ request: Request, _ context: MediaRequestContext) async throws -> (UploadSet, UploadGrant) {
        let grant = try grant(request)
        let set = try await uploads.authorize(grant, for: try context.id(UploadSetID.self))
        return (set, grant)
    }

    /// The upload named in the path, for the request's grant.
    func upload(_ request: Request, _ context: MediaRequestContext) async throws -> (ResumableUpload, UploadGrant) {
        let grant = try grant(request)
        return (try await resumable.upload(try context.id(MediaID.self), for: grant), grant)
    }

    /// A non-negative integer header (`Upload-Offset`, `Upload-Length`), or `nil` when absent.
    static func integer(_ request: Request, _ name: HTTPField.Name) throws -> Int64? {
        guard let text = request.headers[name] else { return nil }
        guard let value = Int64(text.trimmingOWS()), value >= 0 else {
            throw MediaError(.invalidRequest, "\(name.rawName) must be a non-negative integer")
        }
        return value
    }

    /// The answer to an error: the API's JSON error body with its status (`Retry-After` on 503s and on a
    /// busy upload), plus the protocol's own headers.
    func failure(_ error: any Error, _ headers: HTTPFields, _ context: MediaRequestContext) -> Response {
        let api: APIError
        switch error {
        case let error as APIError: api = error
        case let error as MediaError:
            if error.code == .internal || error.code == .unavailable || error.code == .timedOut {
                context.logger.error("resumable upload failed", metadata: ["error": "\(error)"])
            }
            api = APIError(error, retryAfter: retryAfter)
        case let error as RequestError: api = APIError(error)
        default:
            // the request body ended early (the client went away): what arrived is kept
            context.logger.info("resumable upload request ended early", metadata: ["error": "\(error)"])
            api = APIError(MediaError(.invalidRequest, "the request body ended unexpectedly"))
        }
        var all = api.headers
        for field in headers { all[field.name] = field.value }
        if api.code == MediaError.Code.uploadBusy.rawValue { all[.retryAfter] = "1" }
        return JSONResponse.make(status: api.status, ErrorBody(code: api.code, message: api.message), headers: all)
    }

    func terminate(_ request: Request, _ context: MediaRequestContext, tus: Bool) async throws -> Response {
        let grant = try grant(request)
        try await resumable.terminate(try context.id(MediaID.self), for: grant)
        return Response(status: .noContent, headers: tus ? tusHeaders() : draftHeaders())
    }

    /// The body of a PATCH (or a creation that carries data), in the media type the protocol requires.
    static func requireContentType(_ request: Request, _ type: String) throws {
        let given = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingOWS().lowercased() }
        guard given == type else {
            throw APIError(status: .unsupportedMediaType, code: "unsupported_media_type", message: "the body must be \(type)")
        }
    }

    // MARK: tus 1.0

    func tusHeaders() -> HTTPFields { [.tusResumable: Self.tusVersion] }

    func tusOptions() -> Response {
        var headers = tusHeaders()
        headers[.tusVersion] = Self.tusVersion
        headers[.tusExtension] = Self.tusExtensions
        headers[.tusMaxSize] = "\(UploadContext.allCases.map { resumable.maxLength(for: $0) }.max() ?? 0)"
        headers[.tusChecksumAlgorithm] = ChunkChecksum.Algorithm.allCases.map(\.rawValue).joined(separator: ",")
        return Response(status: .noContent, headers: headers)
    }

    /// Every tus request but OPTIONS names the protocol version (400 without it, 412 for another); errors keep
    /// the protocol's headers.
    func tus(
        _ request: Request,
        _ context: MediaRequestContext,
        _ body: (Request, MediaRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            _ = try grant(request)  // who asks comes first: 401 before any protocol check
        } catch {
            return failure(error, tusHeaders(), context).closingConnectionIfBodyUnread(request, context)
        }
        guard request.headers[.tusResumable] != nil else {
            return failure(MediaError(.invalidRequest, "Tus-Resumable: \(Self.tusVersion) is required"), tusHeaders(), context)
                .closingConnectionIfBodyUnread(request, context)
        }
        guard request.headers[.tusResumable] == Self.tusVersion else {
            var headers = tusHeaders()
            headers[.tusVersion] = Self.tusVersion
            return JSONResponse.make(
                status: .preconditionFailed,
                ErrorBody(code: "unsupported_protocol_version", message: "Tus-Resumable must be \(Self.tusVersion)"),
                headers: headers
            )
        }
        do {
            return try await body(request, context)
        } catch {
            return failure(error, tusHeaders(), context).closingConnectionIfBodyUnread(request, context)
        }
    }

    func tusUploadHeaders(_ upload: ResumableUpload) -> HTTPFields {
        var headers = tusHeaders()
        headers[.uploadOffset] = "\(upload.received)"
        headers[.uploadExpires] = HTTPDate.format(upload.expiresAt)
        if upload.completed { headers[.mediaID] = upload.id.description }
        return headers
    }

    func tusCreate(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let (set, grant) = try await set(request, context)
        let length = try Self.integer(request, .uploadLength)
        let deferred = request.headers[.uploadDeferLength]
        if let deferred, deferred != "1" { throw MediaError(.invalidRequest, "Upload-Defer-Length must be 1") }
        guard (length == nil) != (deferred == nil) else {
            throw MediaError(.invalidRequest, "a creation takes either Upload-Length or Upload-Defer-Length: 1")
        }
        let metadata = try Self.tusMetadata(request.headers[.uploadMetadata])
        let created = try await resumable.create(in: set, length: length, metadata: metadata)
        var upload = created
        let carriesData = request.headers[.contentType] != nil || (Self.declaredBodyLength(request) ?? 0) > 0
        if carriesData {
            try Self.requireContentType(request, "application/offset+octet-stream")
            upload = try await resumable.append(created.id, for: grant, at: 0, body: request.body, checksum: try Self.tusChecksum(request)).upload
        }
        var headers = tusUploadHeaders(upload)
        headers[.location] = "/v1/tus/\(created.id)"
        return Response(status: .created, headers: headers)
    }

    func tusHead(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let (upload, _) = try await upload(request, context)
        var headers = tusUploadHeaders(upload)
        headers[.cacheControl] = "no-store"
        if let length = upload.length { headers[.uploadLength] = "\(length)" } else { headers[.uploadDeferLength] = "1" }
        if !upload.metadata.isEmpty {
            headers[.uploadMetadata] = upload.metadata.sorted { $0.key < $1.key }
                .map { $0.value.isEmpty ? $0.key : "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }.joined(separator: ",")
        }
        return Response(status: .ok, headers: headers)
    }

    func tusPatch(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let grant = try grant(request)
        try Self.requireContentType(request, "application/offset+octet-stream")
        guard let offset = try Self.integer(request, .uploadOffset) else { throw MediaError(.invalidRequest, "Upload-Offset is required") }
        let id = try context.id(MediaID.self)
        let outcome = try await resumable.append(
            id,
            for: grant,
            at: offset,
            body: request.body,
            length: try Self.integer(request, .uploadLength),
            checksum: try Self.tusChecksum(request)
        )
        return Response(status: .noContent, headers: tusUploadHeaders(outcome.upload))
    }

    /// `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent).
    static func tusMetadata(_ header: String?) throws -> [String: String] {
        guard let header, !header.trimmingOWS().isEmpty else { return [:] }
        var metadata: [String: String] = [:]
        for pair in header.split(separator: ",") {
            let parts = pair.trimmingOWS().split(separator: " ", omittingEmptySubsequences: true)
            guard let key = parts.first, parts.count <= 2, !key.isEmpty, key.count <= 128, metadata.count < 32 else {
                throw MediaError(.invalidRequest, "Upload-Metadata must be comma-separated 'key base64value' pairs")
            }
            var value = ""
            if parts.count == 2 {
                guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8), text.utf8.count <= 1024
                else {
                    throw MediaError(.invalidRequest, "the Upload-Metadata value of \(key) is not base64 of UTF-8 text (at most 1 KiB)")
                }
                value = text
            }
            metadata[String(key)] = value
        }
        return metadata
    }

    /// `Upload-Checksum: <algorithm> <base64 digest>`.
    static func tusChecksum(_ request: Request) throws -> ChunkChecksum? {
        guard let header = request.headers[.uploadChecksum] else { return nil }
        let parts = header.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, let algorithm = ChunkChecksum.Algorithm(rawValue: parts[0].lowercased()),
            let digest = Data(base64Encoded: String(parts[1]))
        else {
            throw MediaError(.invalidRequest, "Upload-Checksum must be 'sha1 <base64>' or 'sha256 <base64>'")
        }
        return ChunkChecksum(algorithm: algorithm, digest: Array(digest))
    }

    static func declaredBodyLength(_ request: Request) -> Int64? {
        request.headers[.contentLength].flatMap { Int64($0) }
    }

    // MARK: The IETF draft, interop version 6

    func draftHeaders() -> HTTPFields { [.uploadDraftInteropVersion: Self.interopVersion] }

    func draftLimit(_ context: UploadContext?, expiresAt: Date?) -> String {
        let most = context.map { resumable.maxLength(for: $0) } ?? (UploadContext.allCases.map { resumable.maxLength(for: $0) }.max() ?? 0)
        var parts = ["max-size=\(most)"]
        if let expiresAt { parts.append("expires=\(max(0, Int(expiresAt.timeIntervalSinceNow)))") }
        return parts.joined(separator: ", ")
    }

    func draftOptions() -> Response {
        var headers = draftHeaders()
        headers[.uploadLimit] = draftLimit(nil, expiresAt: nil)
        return Response(status: .noContent, headers: headers)
    }

    func draft(
        _ request: Request,
        _ context: MediaRequestContext,
        _ body: (Request, MediaRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            _ = try grant(request)  // who asks comes first: 401 before any protocol check
        } catch {
            return failure(error, draftHeaders(), context).closingConnectionIfBodyUnread(request, context)
        }
        guard request.headers[.uploadDraftInteropVersion] == Self.interopVersion else {
            return failure(
                MediaError(.invalidRequest, "Upload-Draft-Interop-Version must be \(Self.interopVersion)"),
                draftHeaders(),
                context
            ).closingConnectionIfBodyUnread(request, context)
        }
        do {
            return try await body(request, context)
        } catch let error as MediaError where error.code == .offsetMismatch {
            return await mismatch(request, context)
        } catch {
            return failure(error, draftHeaders(), context).closingConnectionIfBodyUnread(request, context)
        }
    }

    /// A structured-field boolean (`?1`, `?0`).
    static func boolean(_ request: Request, _ name: HTTPField.Name) throws -> Bool? {
        switch request.headers[name]?.trimmingOWS() {
        case nil: nil
        case "?1": true
        case "?0": false
        default: throw MediaError(.invalidRequest, "\(name.rawName) must be ?1 or ?0")
        }
    }

    func draftUploadHeaders(_ upload: ResumableUpload, context: UploadContext?) -> HTTPFields {
        var headers = draftHeaders()
        headers[.uploadOffset] = "\(upload.received)"
        headers[.uploadComplete] = upload.completed ? "?1" : "?0"
        if let length = upload.length { headers[.uploadLength] = "\(length)" }
        if !upload.completed { headers[.uploadLimit] = draftLimit(context, expiresAt: upload.expiresAt) }
        if upload.completed { headers[.mediaID] = upload.id.description }
        return headers
    }

    /// The answer to a creation, and to the append that completes an upload: the upload, with its media
    /// item once complete.
    func result(_ outcome: AppendOutcome, status: HTTPResponse.Status, location: String?, context: UploadContext?) -> Response {
        var headers = draftUploadHeaders(outcome.upload, context: context)
        if let location { headers[.location] = location }
        return JSONResponse.make(status: status, ResumableResultJSON(outcome), headers: headers)
    }

    func draftCreate(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        guard let complete = try Self.boolean(request, .uploadComplete) else {
            throw MediaError(.invalidRequest, "Upload-Complete is required (?1 when this request carries the whole file)")
        }
        let (set, grant) = try await set(request, context)
        let length = try Self.integer(request, .uploadLength) ?? (complete ? Self.declaredBodyLength(request) : nil)
        let created = try await resumable.create(in: set, length: length, metadata: [:])
        let location = "/v1/resumable/\(created.id)"
        let outcome = try await resumable.append(created.id, for: grant, at: 0, body: request.body, length: length, finish: complete)
        return result(outcome, status: .created, location: location, context: set.context)
    }

    func draftHead(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let (upload, _) = try await upload(request, context)
        var headers = draftUploadHeaders(upload, context: nil)
        headers[.cacheControl] = "no-store"
        return Response(status: .noContent, headers: headers)
    }

    func draftPatch(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let grant = try grant(request)
        try Self.requireContentType(request, "application/partial-upload")
        guard let offset = try Self.integer(request, .uploadOffset) else { throw MediaError(.invalidRequest, "Upload-Offset is required") }
        guard let complete = try Self.boolean(request, .uploadComplete) else { throw MediaError(.invalidRequest, "Upload-Complete is required") }
        let outcome = try await resumable.append(
            try context.id(MediaID.self),
            for: grant,
            at: offset,
            body: request.body,
            length: try Self.integer(request, .uploadLength),
            finish: complete
        )
        if outcome.media != nil { return result(outcome, status: .created, location: nil, context: nil) }
        return Response(status: .noContent, headers: draftUploadHeaders(outcome.upload, context: nil))
    }

    /// 409 with the draft's problem type, naming the offset the server has and the one the request gave.
    func mismatch(_ request: Request, _ context: MediaRequestContext) async -> Response {
        let provided = (try? Self.integer(request, .uploadOffset)) ?? nil
        var expected: Int64?
        if let (upload, _) = try? await upload(request, context) { expected = upload.received }
        var headers = draftHeaders()
        headers[.contentType] = "application/problem+json"
        if let expected { headers[.uploadOffset] = "\(expected)" }
        let problem = OffsetProblem(
            type: Self.mismatchProblem,
            title: "the offset of the request does not match the offset of the upload",
            expectedOffset: expected,
            providedOffset: provided
        )
        let body = (try? JSONEncoder().encode(problem)) ?? Data()
        return Response(status: .conflict, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
            .closingConnectionIfBodyUnread(request, context)
    }
}

/// A resumable upload as the draft's creation and completion answer it: the upload, and its media item
/// once complete.
struct ResumableResultJSON: Encodable {
    var id: String
    var offset: Int64
    var complete: Bool
    var expiresAt: Date
    var media: MediaJSON?

    enum CodingKeys: String, CodingKey {
        case id, offset, complete, media
        case expiresAt = "expires_at"
    }

    init(_ outcome: AppendOutcome) {
        id = outcome.upload.id.description
        offset = outcome.upload.received
        complete = outcome.upload.completed
        expiresAt = outcome.upload.expiresAt
        media = outcome.media.map { MediaJSON($0) }
    }
}

/// The protocols' constants.
enum ResumableProtocols {
    static let tusVersion = "1.0.0"
    static let tusExtensions = "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum"
    static let interopVersion = "6"
    static let mismatchProblem = "https://iana.org/assignments/http-problem-types#mismatching-upload-offset"
}

/// The draft's problem details of a mismatched offset.
struct OffsetProblem: Encodable {
    var type: String
    var title: String
    var expectedOffset: Int64?
    var providedOffset: Int64?

    enum CodingKeys: String, CodingKey {
        case type, title
        case expectedOffset = "expected-offset"
        case providedOffset = "provided-offset"
    }
}

extension Response {
    /// An answer given before the request's body was read (a refusal) closes the connection after it, so
    /// that the unread body is never parsed as the next request.
    func closingConnectionIfBodyUnread(_ request: Request, _ context: MediaRequestContext) -> Response {
        let declared = request.headers[.contentLength].flatMap { Int64($0) } ?? 0
        guard declared > 0 || request.headers[.transferEncoding] != nil else { return self }
        return closingConnection(context.channel)
    }
}

extension HTTPField.Name {
    static let tusResumable = Self("Tus-Resumable")!
    static let tusVersion = Self("Tus-Version")!
    static let tusExtension = Self("Tus-Extension")!
    static let tusMaxSize = Self("Tus-Max-Size")!
    static let tusChecksumAlgorithm = Self("Tus-Checksum-Algorithm")!
    static let uploadOffset = Self("Upload-Offset")!
    static let uploadLength = Self("Upload-Length")!
    static let uploadDeferLength = Self("Upload-Defer-Length")!
    static let uploadMetadata = Self("Upload-Metadata")!
    static let uploadExpires = Self("Upload-Expires")!
    static let uploadChecksum = Self("Upload-Checksum")!
    static let uploadComplete = Self("Upload-Complete")!
    static let uploadLimit = Self("Upload-Limit")!
    static let uploadDraftInteropVersion = Self("Upload-Draft-Interop-Version")!
    static let mediaID = Self("Media-Id")!
}
