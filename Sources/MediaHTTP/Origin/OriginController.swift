import Foundation
import HTTPTypes
import Hummingbird
import MediaCore

/// The CDN origin: `GET` and `HEAD` of originals (`/m/{id}/original.<ext>`) and renditions
/// (`/m/{id}/<version>/<name>`), public media cacheable for a year, private media through signed URLs only.
/// The second segment is one route parameter, `segment`, in both routes (the router's tree shares it).
struct OriginController<Metadata: MetadataStore, Blobs: BlobStore>: Sendable {
    let origin: OriginService<Metadata>
    let responder: OriginResponder<Blobs>
    let retryAfter: Int

    func register(on router: Router<MediaRequestContext>, routes: RouteTable) {
        for method in [HTTPRequest.Method.get, .head] {
            routes.add(method, "/m/:id/:segment", on: router) { request, context in
                try await self.serve(request, context) { OriginTarget.parse(file: $0.value("segment")) }
            }
            routes.add(method, "/m/:id/:segment/:name", on: router) { request, context in
                try await self.serve(request, context) { OriginTarget.parse(version: $0.value("segment"), name: $0.value("name")) }
            }
        }
    }

    private func serve(
        _ request: Request,
        _ context: MediaRequestContext,
        target: (Parameters) -> OriginTarget?
    ) async throws -> Response {
        do {
            guard let id = context.parameters.get("id").flatMap(MediaID.init), let target = target(context.parameters) else {
                throw MediaError(.notFound, "no such media")
            }
            let originRequest = OriginRequest(
                mediaID: id,
                target: target,
                path: request.uri.path,
                signature: request.urlSignature,
                acceptsWebP: request.headers[.accept].map(ContentNegotiation.acceptsWebP) ?? false
            )
            let object = try await origin.resolve(originRequest)
            return try await responder.respond(to: request, object: object, logger: context.logger)
        } catch let error as MediaError {
            throw APIError(error, retryAfter: retryAfter, cacheControl: cacheControl(for: error.code))
        }
    }

    /// Misses are cached briefly (the media may appear once processed); refusals and outages never.
    private func cacheControl(for code: MediaError.Code) -> String {
        code == .notFound ? "public, max-age=\(origin.settings.negativeMaxAge)" : "no-store"
    }
}

extension Parameters {
    /// A path parameter the route guarantees.
    func value(_ name: String) -> String { get(name) ?? "" }
}

extension Request {
    /// The signature parameters of a signed URL, when the query has all three.
    var urlSignature: URLSignature? {
        let query = uri.queryParameters
        guard let expires = query.get("exp"), let keyID = query.get("kid"), let signature = query.get("sig") else { return nil }
        return URLSignature(expires: expires, keyID: keyID, signature: signature)
    }
}

/// How the origin picks a rendition's format.
enum ContentNegotiation {
    /// Whether an `Accept` header lists `image/webp` with a non-zero quality. Wildcards do not count: a
    /// client that says only `*/*` or `image/*` may not decode WebP.
    static func acceptsWebP(_ accept: String) -> Bool {
        for item in accept.split(separator: ",") {
            let parameters = item.split(separator: ";").map { $0.trimmingOWS() }
            guard parameters.first?.lowercased() == "image/webp" else { continue }
            let quality = parameters.dropFirst().first { $0.lowercased().hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return quality > 0
        }
        return false
    }
}
