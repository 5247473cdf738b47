import Foundation
import Metrics
import Synchronization

/// Which object of a media item an origin URL names. URLs never change content: originals are written
/// once under their media id, and rendition URLs carry the rendition version (`MEDIAGW_RENDITION_VERSION`).
public enum OriginTarget: Sendable, Hashable {
    /// The original as uploaded: `/m/<id>/original.<ext>`.
    case original(fileExtension: String)
    /// A rendition by its full name: `/m/<id>/<version>/<name>`, for example `w320.webp`.
    case rendition(version: String, name: String)
    /// A photo-like rendition without its format, `/m/<id>/<version>/w320`: WebP when the client accepts
    /// it, JPEG otherwise.
    case negotiated(version: String, base: String)

    /// The formats a negotiated rendition is offered in, most preferred first.
    static let negotiatedFormats = ["webp", "jpg"]

    /// The target of `/m/<id>/<file>`, or `nil` when the path names nothing the origin serves.
    public static func parse(file: String) -> OriginTarget? {
        let parts = file.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "original", isSafeSegment(parts[1]), !parts[1].contains(".") else { return nil }
        return .original(fileExtension: String(parts[1]))
    }

    /// The target of `/m/<id>/<version>/<name>`, or `nil` when the path names nothing the origin serves.
    public static func parse(version: String, name: String) -> OriginTarget? {
        guard isSafeSegment(version), isSafeSegment(name), !version.hasPrefix("."), !name.hasPrefix("."), !name.hasSuffix(".") else { return nil }
        return name.contains(".") ? .rendition(version: version, name: name) : .negotiated(version: version, base: name)
    }

    /// The rendition names a lookup needs for this target.
    var renditionNames: [String] {
        switch self {
        case .original: []
        case .rendition(_, let name): [name]
        case .negotiated(_, let base): Self.negotiatedFormats.map { "\(base).\($0)" }
        }
    }

    /// Path segments are short and made of `a-z A-Z 0-9 . _ -` only.
    static func isSafeSegment(_ segment: some StringProtocol) -> Bool {
        !segment.isEmpty && segment.utf8.count <= 64
            && segment.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }
}

/// One request to the origin, as the HTTP layer parsed it.
public struct OriginRequest: Sendable, Hashable {
    public var mediaID: MediaID
    public var target: OriginTarget
    /// The request path exactly as signed (`/m/...`, without the query).
    public var path: String
    /// The signature parameters of the query, when there are any.
    public var signature: URLSignature?
    /// Whether the client's `Accept` lists `image/webp`.
    public var acceptsWebP: Bool

    public init(mediaID: MediaID, target: OriginTarget, path: String, signature: URLSignature?, acceptsWebP: Bool) {
        self.mediaID = mediaID
        self.target = target
        self.path = path
        self.signature = signature
        self.acceptsWebP = acceptsWebP
    }
}

/// How a response may be cached.
public enum OriginCachePolicy: Sendable, Hashable {
    /// Public media: any cache may keep it for `maxAge` seconds without revalidating.
    case publicImmutable(maxAge: Int)
    /// Private media behind a signed URL: only the client's own cache, for at most `maxAge` seconds.
    case privateOnly(maxAge: Int)
}

/// What the origin serves for one URL: the object and everything its response headers say about it.
public struct OriginObject: Sendable, Hashable {
    public var location: ObjectLocation
    public var size: Int64
    public var mime: String
    /// Lowercase hex SHA-256 of the content: the strong entity tag.
    public var sha256: String
    public var lastModified: Date
    public var cache: OriginCachePolicy
    /// The representation was chosen by the request's `Accept` (`Vary: Accept`).
    public var variesByAccept: Bool
    /// A file name that is safe in `Content-Disposition` (`a-z A-Z 0-9 . _ -` only).
    public var filename: String

    public init(
        location: ObjectLocation,
        size: Int64,
        mime: String,
        sha256: String,
        lastModified: Date,
        cache: OriginCachePolicy,
        variesByAccept: Bool,
        filename: String
    ) {
        self.location = location
        self.size = size
        self.mime = mime
        self.sha256 = sha256
        self.lastModified = lastModified
        self.cache = cache
        self.variesByAccept = variesByAccept
        self.filename = filename
    }
}

/// What the metadata store knows that the origin needs: the media row's servable facts, its set's privacy,
/// and the renditions that were asked for.
public struct OriginRecord: Sendable, Hashable {
    public var id: MediaID
    public var kind: MediaKind
    public var state: MediaState
    public var mime: String
    public var size: Int64
    public var sha256: String
    public var location: ObjectLocation
    public var createdAt: Date
    public var context: UploadContext
    /// The set was created private.
    public var setIsPrivate: Bool
    public var renditions: [Rendition]

    public init(
        id: MediaID,
        kind: MediaKind,
        state: MediaState,
        mime: String,
        size: Int64,
        sha256: String,
        location: ObjectLocation,
        createdAt: Date,
        context: UploadContext,
        setIsPrivate: Bool,
        renditions: [Rendition]
    ) {
        self.id = id
        self.kind = kind
        self.state = state
        self.mime = mime
        self.size = size
        self.sha256 = sha256
        self.location = location
        self.createdAt = createdAt
        self.context = context
        self.setIsPrivate = setIsPrivate
        self.renditions = renditions
    }
}

/// Settings of the CDN origin.
public struct OriginSettings: Sendable, Hashable {
    /// Contexts whose media are private (served through signed URLs only).
    public var privateContexts: Set<UploadContext>
    /// Originals of public media also need signed URLs (they keep the uploader's metadata, EXIF included).
    public var signOriginals: Bool
    /// How long a signed URL stays valid.
    public var signedURLLifetime: Duration
    /// `max-age` of public media.
    public var publicMaxAge: Int
    /// `max-age` of 404 answers: how long caches may remember that something is missing.
    public var negativeMaxAge: Int
    /// Prefix of the URLs the internal API returns (`https://cdn.example.com`); empty: paths only.
    public var baseURL: String
    /// How long a lookup of ready media is reused before PostgreSQL is asked again (0: never reused).
    public var lookupCacheTTL: Duration
    /// The most media items whose lookups are kept.
    public var lookupCacheEntries: Int

    public init(
        privateContexts: Set<UploadContext> = [.message],
        signOriginals: Bool = false,
        signedURLLifetime: Duration = .seconds(3600),
        publicMaxAge: Int = 31_536_000,
        negativeMaxAge: Int = 10,
        baseURL: String = "",
        lookupCacheTTL: Duration = .seconds(5),
        lookupCacheEntries: Int = 10_000
    ) {
        self.privateContexts = privateContexts
        self.signOriginals = signOriginals
        self.signedURLLifetime = signedURLLifetime
        self.publicMaxAge = publicMaxAge
        self.negativeMaxAge = negativeMaxAge
        self.baseURL = baseURL
        self.lookupCacheTTL = lookupCacheTTL
        self.lookupCacheEntries = lookupCacheEntries
    }

    /// Whether a set's media are private.
    public func isPrivate(context: UploadContext, setIsPrivate: Bool) -> Bool {
        setIsPrivate || privateContexts.contains(context)
    }
}

/// The origin URLs of one media item, as the internal API returns them.
public struct MediaURLs: Sendable, Hashable {
    /// The original's URL; `nil` until the media is ready.
    public var original: String?
    /// Each rendition's URL, by rendition name.
    public var renditions: [String: String]
    /// Format-negotiated URLs (WebP or JPEG by `Accept`), by base name (`w320`).
    public var negotiated: [String: String]
    /// When signed URLs stop working; `nil` when the URLs are public and permanent.
    public var expiresAt: Date?

    public init(original: String?, renditions: [String: String], negotiated: [String: String], expiresAt: Date?) {
        self.original = original
        self.renditions = renditions
        self.negotiated = negotiated
        self.expiresAt = expiresAt
    }
}

/// The CDN origin's use cases: resolving a URL to the object it serves (with its caching policy and the
/// signature check of private media), and building the URLs that the internal API hands out.
/// Every error thrown is a ``MediaError``: `notFound` (unknown, deleted or not ready), `forbidden`
/// (unsigned or tampered), `urlExpired`, or a store's `unavailable`.
public struct OriginService<Metadata: MetadataStore>: Sendable {
    public let metadata: Metadata
    public let settings: OriginSettings
    public let signer: URLSigner
    public let cache: OriginLookupCache

    public init(metadata: Metadata, settings: OriginSettings, signer: URLSigner, cache: OriginLookupCache) {
        self.metadata = metadata
        self.settings = settings
        self.signer = signer
        self.cache = cache
    }

    /// The object a request names, or why it is not served.
    public func resolve(_ request: OriginRequest, now: Date = Date()) async throws(MediaError) -> OriginObject {
        let names = request.target.renditionNames
        let (record, cached) = try await lookup(request.mediaID, names: names, useCache: true)
        do {
            return try resolve(request, record, now: now)
        } catch let error where error.code == .notFound && cached {
            // a remembered lookup may predate a reprocessing under a new version: ask again before a miss
            cache.forget(request.mediaID)
            return try resolve(request, try await lookup(request.mediaID, names: names, useCache: false).record, now: now)
        }
    }

    private func resolve(_ request: OriginRequest, _ record: OriginRecord?, now: Date) throws(MediaError) -> OriginObject {
        guard let record, record.state == .ready else {
            throw MediaError(.notFound, "no such media")
        }
        let isPrivate = settings.isPrivate(context: record.context, setIsPrivate: record.setIsPrivate)
        let cache: OriginCachePolicy
        if isPrivate || (settings.signOriginals && request.target.isOriginal) {
            guard let signature = request.signature else {
                throw MediaError(.forbidden, "this media is private: a signed URL is required")
            }
            let expiresAt = try signer.verify(signature, path: request.path, now: now)
            let remaining = Int(expiresAt.timeIntervalSince(now).rounded(.down))
            cache = .privateOnly(maxAge: max(0, min(remaining, Int(settings.signedURLLifetime.seconds))))
        } else {
            cache = .publicImmutable(maxAge: settings.publicMaxAge)
        }
        switch request.target {
        case .original(let fileExtension):
            let expected = MediaFormats.fileExtension(forMIME: record.mime)
            guard fileExtension == expected else { throw MediaError(.notFound, "no such media") }
            return OriginObject(
                location: record.location,
                size: record.size,
                mime: record.mime,
                sha256: record.sha256,
                lastModified: record.createdAt,
                cache: cache,
                variesByAccept: false,
                filename: "\(record.id).\(expected)"
            )
        case .rendition(let version, let name):
            guard let rendition = record.renditions.first(where: { $0.name == name }), rendition.isVersion(version) else {
                throw MediaError(.notFound, "no such rendition")
            }
            return Self.object(rendition, cache: cache, variesByAccept: false)
        case .negotiated(let version, let base):
            let offered = OriginTarget.negotiatedFormats.compactMap { format in
                record.renditions.first { $0.name == "\(base).\(format)" && $0.isVersion(version) }
            }
            guard let first = offered.first else { throw MediaError(.notFound, "no such rendition") }
            // both formats exist: WebP (first) only for clients that say they take it
            let chosen = offered.count > 1 && !request.acceptsWebP ? offered[1] : first
            return Self.object(chosen, cache: cache, variesByAccept: offered.count > 1)
        }
    }

    /// The URLs of a media item: paths (prefixed with the configured base URL), signed when the media is
    /// private. Media that is not ready has none.
    public func urls(of media: Media, in set: UploadSet, renditions: [Rendition], now: Date = Date()) -> MediaURLs {
        guard media.state == .ready else { return MediaURLs(original: nil, renditions: [:], negotiated: [:], expiresAt: nil) }
        let isPrivate = settings.isPrivate(context: set.context, setIsPrivate: set.isPrivate)
        let expiresAt = now.addingTimeInterval(settings.signedURLLifetime.seconds).roundedDownToSecond
        func url(_ path: String, signed: Bool) -> String {
            settings.baseURL + (signed ? "\(path)?\(signer.sign(path: path, expiresAt: expiresAt).query)" : path)
        }
        let paths = OriginPaths(id: media.id, mime: media.mime, renditions: renditions.map { ($0.name, $0.location.key) })
        let original = url(paths.original, signed: isPrivate || settings.signOriginals)
        let byName = paths.renditions.mapValues { url($0, signed: isPrivate) }
        let negotiated = paths.negotiated.mapValues { url($0, signed: isPrivate) }
        let anySigned = isPrivate || settings.signOriginals
        return MediaURLs(original: original, renditions: byName, negotiated: negotiated, expiresAt: anySigned ? expiresAt : nil)
    }

    private func lookup(_ id: MediaID, names: [String], useCache: Bool) async throws(MediaError) -> (record: OriginRecord?, cached: Bool) {
        if useCache, let cached = cache.record(id, names: names) {
            OriginMetrics.lookups(hit: true)
            return (cached, true)
        }
        OriginMetrics.lookups(hit: false)
        let record: OriginRecord?
        do {
            record = try await metadata.originRecord(id, renditionNames: names)
        } catch {
            throw MediaError.from(error, doing: "look up the media")
        }
        // only what can be served is remembered: media that becomes ready is served as soon as it is
        if let record, record.state == .ready { cache.store(record, names: names) }
        return (record, false)
    }

    private static func object(_ rendition: Rendition, cache: OriginCachePolicy, variesByAccept: Bool) -> OriginObject {
        OriginObject(
            location: rendition.location,
            size: rendition.size,
            mime: rendition.mime,
            sha256: rendition.sha256,
            lastModified: rendition.createdAt,
            cache: cache,
            variesByAccept: variesByAccept,
            filename: "\(rendition.mediaID)-\(rendition.name)"
        )
    }
}

extension OriginTarget {
    var isOriginal: Bool {
        if case .original = self { return true }
        return false
    }
}

extension Rendition {
    /// The version segment of the rendition's key (`<media id>/<version>/<name>`).
    var version: String? {
        let parts = location.key.split(separator: "/")
        return parts.count == 3 ? String(parts[1]) : nil
    }

    func isVersion(_ version: String) -> Bool { location.key == "\(mediaID)/\(version)/\(name)" }
}

/// The paths the origin serves a media item under: the original, each rendition (by name), and the
/// format-negotiated path of each rendition that exists in every negotiated format (by base name). Written
/// once: the URLs handed out and the purges of deleted media come from here.
public struct OriginPaths: Sendable, Hashable {
    public var original: String
    public var renditions: [String: String]
    public var negotiated: [String: String]

    /// - Parameter renditions: name and object key (`<id>/<version>/<name>`) of each rendition.
    public init(id: MediaID, mime: String, renditions: [(name: String, key: String)]) {
        original = "/m/\(id)/original.\(MediaFormats.fileExtension(forMIME: mime))"
        var byName: [String: String] = [:]
        var negotiated: [String: String] = [:]
        for rendition in renditions {
            byName[rendition.name] = "/m/\(rendition.key)"
            let base = rendition.name.split(separator: ".").first.map(String.init) ?? rendition.name
            let hasEveryFormat = OriginTarget.negotiatedFormats.allSatisfy { format in renditions.contains { $0.name == "\(base).\(format)" } }
            let keyParts = rendition.key.split(separator: "/")
            if hasEveryFormat, keyParts.count == 3 {
                negotiated[base] = "/m/\(id)/\(keyParts[1])/\(base)"
            }
        }
        self.renditions = byName
        self.negotiated = negotiated
    }
}

extension Date {
    /// Signed URLs carry whole seconds.
    var roundedDownToSecond: Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.down)) }
}

/// File extensions of the MIME types the gateway stores and produces.
public enum MediaFormats {
    public static func fileExtension(forMIME mime: String) -> String {
        switch mime {
        case "image/jpeg": "jpg"
        case "image/png": "png"
        case "image/gif": "gif"
        case "image/webp": "webp"
        case "image/heic": "heic"
        case "image/avif": "avif"
        case "audio/mpeg": "mp3"
        case "audio/aac": "aac"
        case "audio/mp4": "m4a"
        case "audio/ogg": "ogg"
        case "audio/flac": "flac"
        case "audio/wav": "wav"
        case "video/mp4": "mp4"
        case "video/quicktime": "mov"
        case "video/3gpp": "3gp"
        case "video/3gpp2": "3g2"
        case "video/webm": "webm"
        case "video/x-matroska": "mkv"
        default: "bin"
        }
    }
}

/// Recent lookups of ready media, reused for a short time so that a burst of requests for one item costs
/// one database round trip. Deleting media through this process forgets it at once; other gateway
/// processes forget it within the time to live.
public final class OriginLookupCache: Sendable {
    private struct Entry {
        var record: OriginRecord
        var expires: ContinuousClock.Instant
    }

    private let ttl: Duration
    private let capacity: Int
    private let entries = Mutex<[MediaID: [[String]: Entry]]>([:])

    /// - Parameters:
    ///   - ttl: how long a lookup is reused; zero disables the cache.
    ///   - capacity: the most media items kept; when full, expired entries go, then everything.
    public init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func record(_ id: MediaID, names: [String]) -> OriginRecord? {
        guard ttl > .zero else { return nil }
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[id]?[names], entry.expires > now else { return nil }
            return entry.record
        }
    }

    func store(_ record: OriginRecord, names: [String]) {
        guard ttl > .zero else { return }
        let now = ContinuousClock.now
        let entry = Entry(record: record, expires: now + ttl)
        entries.withLock { entries in
            if entries[record.id] == nil, entries.count >= capacity {
                entries = entries.filter { $0.value.values.contains { $0.expires > now } }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[record.id, default: [:]][names] = entry
        }
    }

    /// Forgets every lookup of a media item.
    public func forget(_ id: MediaID) {
        _ = entries.withLock { $0.removeValue(forKey: id) }
    }
}

enum OriginMetrics {
    static let hits = Counter(label: "mediagw_origin_lookups_total", dimensions: [("cache", "hit")])
    static let misses = Counter(label: "mediagw_origin_lookups_total", dimensions: [("cache", "miss")])

    static func lookups(hit: Bool) {
        (hit ? hits : misses).increment()
    }
}
