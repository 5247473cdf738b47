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

    func upload(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let setID = try context.id(UploadSetID.self)
        guard let token = request.bearerToken else {
            throw MediaError(.unauthorized, "an upload token is required (Authorization: Bearer <upload_token>)")
        }
        let set = try await uploads.authorize(try grants.verify(token), for: setID)
        let contentType = request.headers[.contentType].map(MultipartParser.parseParameters)
        guard let contentType, contentType.type == "multipart/form-data", let boundary = contentType.values["boundary"] else {
            throw RequestError(.malformedMultipart, "the body must be multipart/form-data with a boundary")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > maxRequestBytes {
            let error = RequestError(.requestTooLarge, "the request is larger than \(maxRequestBytes) bytes")
            return try APIError(error).response(from: request, context: context).closingConnection(context.channel)
        }

        let reader = try MultipartReader(body: request.body, boundary: boundary, limits: limits, maxBytes: maxRequestBytes)
        var results: [PartResultJSON] = []
        var firstError: APIError?
        var abandoned = false
        var part = 0
        func refuse(_ error: APIError, _ filename: String?) {
            results.append(.refused(part, filename, error))
            if firstError == nil { firstError = error }
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
                    Counter(label: "mediagw_upload_bytes_total", dimensions: [("kind", media.kind.rawValue)]).increment(by: media.size)
                } catch let error as MediaError {
                    if error.code == .internal || error.code == .unavailable {
                        context.logger.error("upload failed", metadata: ["error": "\(error)", "upload_set.id": "\(setID)"])
                    }
                    refuse(APIError(error, retryAfter: retryAfter), filename)
                    if Self.endsRequest(error.code) {
                        abandoned = true
                        break
                    }
                } catch let error as RequestError {
                    refuse(APIError(error), filename)
                    abandoned = true
                    break
                }
            }
        } catch let error as RequestError {
            refuse(APIError(error), nil)
            abandoned = true
        } catch {
            // the request body failed (the client went away): nobody is left to answer
            context.logger.info("upload request ended early", metadata: ["error": "\(error)", "upload_set.id": "\(setID)"])
            throw RequestError(.malformedMultipart, "the request body ended unexpectedly")
        }
        Counter(label: "mediagw_http_received_bytes_total", dimensions: [("route", "/v1/upload-sets/{id}/media")]).increment(
            by: Int(reader.bytesRead)
        )
        if results.isEmpty {
            throw RequestError(.malformedMultipart, "the request carries no file part")
        }
        let status = firstError?.status ?? .created
        let response = JSONResponse.make(
            status: status,
            UploadResultJSON(media: results, error: firstError.map { .init(code: $0.code, message: $0.message) }),
            headers: firstError?.headers ?? [:]
        )
        return abandoned || !reader.isComplete ? response.closingConnection(context.channel) : response
    }
}
