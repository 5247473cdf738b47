import AsyncHTTPClient
import Foundation
import MediaCore
import NIOCore
import NIOHTTP1

/// The nginx edge of `Deploy/cdn`, purged through its purge location (`/purge/<path>`, Debian's
/// `libnginx-mod-http-cache-purge`, allowed only from the purger's address): one request per cache key.
/// The keys are the edge's: `<path>|<variant>`, where the variant is empty for whole responses, the
/// reduced `Accept` (`image/webp` or `*/*`) for negotiated renditions, and the slice's range for audio and
/// video (`bytes=0-1048575`, ... in 1 MiB slices).
public struct NginxEdgeCache: EdgeCache {
    /// The edge, e.g. `http://10.0.0.7:8090`.
    public let baseURL: String
    let client: HTTPClient
    let timeout: TimeAmount
    let sliceSize: Int64
    /// Purge requests in flight at once.
    let concurrency: Int

    public init(baseURL: String, client: HTTPClient = .shared, timeout: TimeAmount = .seconds(5), sliceSize: Int64 = 1 << 20, concurrency: Int = 8) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.client = client
        self.timeout = timeout
        self.sliceSize = sliceSize
        self.concurrency = concurrency
    }

    public var name: String { baseURL }

    /// The cache keys of an object, as the edge's `proxy_cache_key` makes them.
    public func keys(_ object: EdgeObject) -> [(path: String, variant: String)] {
        switch object.caching {
        case .whole: return [(object.path, "")]
        case .negotiated: return [(object.path, "image/webp"), (object.path, "*/*")]
        case .sliced(let size):
            // a request without a range is cached slice by slice too; an empty object still has slice 0
            let slices = max(1, (size + sliceSize - 1) / sliceSize)
            return (0..<slices).map { (object.path, "bytes=\($0 * sliceSize)-\(($0 + 1) * sliceSize - 1)") }
        }
    }

    public func purge(_ objects: [EdgeObject]) async throws {
        let keys = objects.flatMap(keys)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                if index >= concurrency { try await group.next() }
                group.addTask { try await purge(key) }
            }
            try await group.waitForAll()
        }
    }

    /// One key: 200 (purged) and 404 (not cached) both mean the edge no longer holds it.
    func purge(_ key: (path: String, variant: String)) async throws {
        var request = HTTPClientRequest(url: baseURL + "/purge" + key.path)
        request.method = .RAW(value: "PURGE")
        request.headers.add(name: "X-Cache-Variant", value: key.variant)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw MediaError(.unavailable, "the edge \(baseURL) could not be asked to purge \(key.path)", cause: error)
        }
        _ = try? await response.body.collect(upTo: 64 << 10)
        guard response.status == .ok || response.status == .notFound else {
            throw MediaError(.unavailable, "the edge \(baseURL) answered \(response.status.code) to the purge of \(key.path)")
        }
    }
}
