import Foundation
import HTTPTypes
import Hummingbird
import MediaCore

/// The internal API of the social modules (posts, profiles, communities, messages): upload sets, media,
/// events. Every route requires the service token.
struct InternalController<Storage: MediaStores>: Sendable {
    let service: MediaService<Storage>
    let grants: UploadGrants
    let origin: OriginService<Storage.Metadata>
    let tokens: ServiceTokens

    func register(on router: Router<MediaRequestContext>, routes: RouteTable) {
        let prefix = "/internal/v1"
        routes.add(.post, "\(prefix)/upload-sets", on: router) { try await self.authorized($0, $1, self.createUploadSet) }
        routes.add(.get, "\(prefix)/upload-sets/:id", on: router) { try await self.authorized($0, $1, self.getUploadSet) }
        routes.add(.post, "\(prefix)/upload-sets/:id/commit", on: router) { try await self.authorized($0, $1, self.commitUploadSet) }
        routes.add(.get, "\(prefix)/media/:id", on: router) { try await self.authorized($0, $1, self.getMedia) }
        routes.add(.delete, "\(prefix)/media/:id", on: router) { try await self.authorized($0, $1, self.deleteMedia) }
        routes.add(.get, "\(prefix)/events", on: router) { try await self.authorized($0, $1, self.events) }
    }

    /// Checks `Authorization: Bearer <service token>` before running `handler`.
    func authorized(
        _ request: Request,
        _ context: MediaRequestContext,
        _ handler: (Request, MediaRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let token = request.bearerToken, tokens.accepts(token) else {
            throw MediaError(.unauthorized, "a valid service token is required")
        }
        return try await handler(request, context)
    }

    func createUploadSet(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 16 << 10)
        guard let body = try? JSONDecoder().decode(CreateUploadSetRequest.self, from: Data(buffer.readableBytesView)) else {
            throw MediaError(.invalidRequest, "the body must be JSON with owner_id, context and context_id")
        }
        guard let uploadContext = UploadContext(rawValue: body.context) else {
            throw MediaError(.invalidRequest, "context must be one of post, profile, community, message")
        }
        guard let priority = body.priority.map(ProcessingPriority.init(rawValue:)) ?? .interactive else {
            throw MediaError(.invalidRequest, "priority must be interactive or bulk")
        }
        let opened = try await service.openUploadSet(
            ownerID: body.ownerID,
            context: uploadContext,
            contextID: body.contextID,
            isPrivate: body.isPrivate ?? false,
            priority: priority
        )
        let token = grants.issue(for: opened.set)
        return JSONResponse.make(
            status: .created,
            CreatedUploadSetJSON(
                id: opened.set.id.description,
                uploadToken: token.token,
                expiresAt: opened.set.expiresAt,
                tokenExpiresAt: token.expiresAt,
                uploadURL: "/v1/upload-sets/\(opened.set.id)/media",
                limits: LimitsJSON(opened.limits)
            ),
            headers: [.location: "/internal/v1/upload-sets/\(opened.set.id)"]
        )
    }

    func getUploadSet(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let (set, media) = try await service.uploadSet(try context.id(UploadSetID.self))
        return JSONResponse.make(status: .ok, UploadSetJSON(set, media: media))
    }

    func commitUploadSet(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let id = try context.id(UploadSetID.self)
        _ = try await service.commitUploadSet(id)
        let (set, media) = try await service.uploadSet(id)
        return JSONResponse.make(status: .ok, UploadSetJSON(set, media: media))
    }

    func getMedia(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let (media, renditions, set) = try await service.mediaWithRenditions(try context.id(MediaID.self))
        let urls = origin.urls(of: media, in: set, renditions: renditions)
        return JSONResponse.make(status: .ok, MediaJSON(media, renditions: renditions, urls: urls))
    }

    func deleteMedia(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        try await service.deleteMedia(try context.id(MediaID.self))
        return Response(status: .noContent)
    }

    func events(_ request: Request, _ context: MediaRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        func integer(_ name: String, default value: Int64) throws -> Int64 {
            guard let raw = query.get(name) else { return value }
            guard let parsed = Int64(raw) else { throw MediaError(.invalidRequest, "\(name) must be a whole number") }
            return parsed
        }
        let after = try integer("after", default: 0)
        let limit = try integer("limit", default: 100)
        guard (1...1000).contains(limit) else { throw MediaError(.invalidRequest, "limit must be between 1 and 1000") }
        let events = try await service.events(after: after, limit: Int(limit))
        return JSONResponse.make(status: .ok, EventsJSON(events: events.map(EventJSON.init), nextAfter: events.last?.sequence ?? after))
    }
}

extension MediaRequestContext {
    /// The `:id` path parameter as a typed identifier; anything but a UUID is a 400.
    func id<ID: TimeOrderedIdentifier>(_ type: ID.Type) throws -> ID {
        guard let raw = parameters.get("id"), let id = ID(raw) else {
            throw MediaError(.invalidRequest, "the id in the path is not a valid identifier")
        }
        return id
    }
}

extension Request {
    /// The token of an `Authorization: Bearer` header.
    var bearerToken: String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingOWS()
        return token.isEmpty ? nil : token
    }

    /// Whether the request says a body follows its headers (a length above zero, or chunks).
    var declaresBody: Bool {
        if let length = headers[.contentLength].flatMap(Int.init) { return length > 0 }
        return headers[.transferEncoding] != nil
    }
}
