import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MediaCore
import Metrics

/// The public upload route: `multipart/form-data`, authenticated by the set's upload token only. Each file
/// part is streamed through the upload use case as it arrives; the body is never collected.
struct UploadController<Storage: MediaStores>: Sendable {
    let uploads: UploadService<Storage>
    let grants: UploadGrants
    let limits: MultipartLimits
    let maxRequestBytes: Int64
    let retryAfter: Int

    func register(on router: Router<MediaRequestContext>, routes: RouteTable) {
        routes.add(.post, "/v1/upload-sets/:id/media", on: router) { try await self.upload($0, $1) }
    }

    /// Errors of the use case that end the whole request (the rest of the body is not read): the
    /// connection is closed after the answer. Every ``RequestError`` ends it too.
    static func endsRequest(_ code: MediaError.Code) -> Bool {
        switch code {
        case .unavailable, .timedOut, .shuttingDown, .internal: true
        default: false
        }
    }

    /// The answer to an upload request. Whatever refuses the request before its body is read (the token,
    /// the set, the content type, the declared length) is answered in the same shape as a refused part,
    /// and the connection is closed after it: the unread body is never parsed as a next request.
    func upload(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let reader: MultipartReader<RequestBody>
        let set: UploadSet
        do {
            (set, reader) = try await admit(request, context)
        } catch {
            let refusal = Self.apiError(error, retryAfter: retryAfter, logger: context.logger)
            return JSONResponse.make(
                status: refusal.status,
                UploadResultJSON(media: [], error: .init(code: refusal.code, message: refusal.message)),
                headers: refusal.headers
            ).closingConnection(context.channel)
        }
        return try await store(reader, into: set, request: request, context: context)
    }

    /// The checks made before any byte of the body is read, in order: the token (401 before anything else),
    /// the set id, the grant against the set, the content type and the declared length.
    func admit(_ request: Request, _ context: MediaRequestContext) async throws -> (UploadSet, MultipartReader<RequestBody>) {
        guard let token = request.bearerToken else {
            throw MediaError(.unauthorized, "an upload token is required (Authorization: Bearer <upload_token>)")
        }
        let grant = try grants.verify(token)
        let setID = try context.id(UploadSetID.self)
        let set = try await uploads.authorize(grant, for: setID)
        let contentType = request.headers[.contentType].map(MultipartParser.parseParameters)
        guard let contentType, contentType.type == "multipart/form-data", let boundary = contentType.values["boundary"] else {
            throw RequestError(.malformedMultipart, "the body must be multipart/form-data with a boundary")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > maxRequestBytes {
            throw RequestError(.requestTooLarge, "the request is larger than \(maxRequestBytes) bytes")
        }
        return (set, try MultipartReader(body: request.body, boundary: boundary, limits: limits, maxBytes: maxRequestBytes))
    }

    /// An error as the API answers it; causes of server-side failures are logged.
    static func apiError(_ error: any Error, retryAfter: Int, logger: Logger) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as RequestError: return APIError(error)
        case let error as MediaError:
            if error.code == .internal || error.code == .unavailable || error.code == .timedOut {
                logger.error("upload refused", metadata: ["error": "\(error)"])
            }
            return APIError(error, retryAfter: retryAfter)
        default:
            logger.error("upload failed", metadata: ["error": "\(error)"])
            return APIError(MediaError(.internal, "internal error"))
        }
    }

    /// Streams every part of an admitted request through the upload use case.
    func store(
        _ reader: MultipartReader<RequestBody>,
        into set: UploadSet,
        request: Request,
        context: MediaRequestContext
    ) async throws -> Response {
        let setID = set.id
        var results: [PartResultJSON] = []
        /// The first refused part's error: the answer's status unless the request itself was cut.
        var firstError: APIError?
        /// What ended the whole request before its end (a malformed body, a cap): the answer's status.
        var requestError: APIError?
        var part = 0
        func refuse(_ error: APIError, _ filename: String?) {
            results.append(.refused(part, filename, error))
            if firstError == nil { firstError = error }
        }
        /// The request cannot be read on. The part being read gets the error as its refusal unless it has an
        /// entry already; a part that could not even begin (its delimiter or headers) has none: `media`
        /// lists the parts that were read.
        func end(_ error: APIError, _ filename: String?) {
            requestError = error
            if reader.isInsidePart && results.last?.part != part { refuse(error, filename) }
        }
        do {
            while let next = try await reader.nextPart() {
                let (headers, body) = next
                part += 1
                guard let filename = headers.filename else {
                    refuse(APIError(RequestError(.malformedMultipart, "part \(part) has no filename: only file parts are accepted")), nil)
                    continue
                }
                do {
                    let media = try await uploads.storeOriginal(body, into: set)
                    results.append(.stored(part, filename, media))
                    UploadMetrics.bytes(media.kind.rawValue).increment(by: media.size)
                } catch let error as MediaError {
                    if error.code == .internal || error.code == .unavailable {
                        context.logger.error("upload failed", metadata: ["error": "\(error)", "upload_set.id": "\(setID)"])
                    }
                    refuse(APIError(error, retryAfter: retryAfter), filename)
                    if Self.endsRequest(error.code) {
                        requestError = firstError
                        break
                    }
                } catch let error as RequestError {
                    end(APIError(error), filename)
                    break
                }
            }
        } catch let error as RequestError {
            end(APIError(error), nil)
        } catch {
            // the request body failed (the client went away): whoever is left gets the answer, then the close
            context.logger.info("upload request ended early", metadata: ["error": "\(error)", "upload_set.id": "\(setID)"])
            end(APIError(RequestError(.malformedMultipart, "the request body ended unexpectedly")), nil)
        }
        UploadMetrics.received("/v1/upload-sets/{id}/media").increment(
            by: Int(reader.bytesRead)
        )
        if results.isEmpty && requestError == nil {
            requestError = APIError(RequestError(.malformedMultipart, "the request carries no file part"))
        }
        let answer = requestError ?? firstError
        let response = JSONResponse.make(
            status: answer?.status ?? .created,
            UploadResultJSON(media: results, error: answer.map { .init(code: $0.code, message: $0.message) }),
            headers: answer?.headers ?? [:]
        )
        return requestError != nil || !reader.isComplete ? response.closingConnection(context.channel) : response
    }
}

/// The upload route's byte counters, made once.
enum UploadMetrics {
    static let bytes = MetricFamily<Counter>.counters("mediagw_upload_bytes_total", labels: ["kind"])
    static let received = MetricFamily<Counter>.counters("mediagw_http_received_bytes_total", labels: ["route"])
}
