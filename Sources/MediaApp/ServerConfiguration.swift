import Foundation
import MediaCore
import MediaHTTP

/// What `mediagw serve` needs beyond the storage settings of ``GatewayConfiguration``.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_SERVICE_TOKENS` | required | comma-separated bearer tokens of the internal API (several: rotation) |
/// | `MEDIAGW_UPLOAD_TOKEN_KEYS` | required | comma-separated `id:base64secret` HMAC keys of upload tokens; the first signs, all verify |
/// | `MEDIAGW_UPLOAD_TOKEN_TTL` | `1h` | lifetime of an upload token |
/// | `MEDIAGW_DRAFT_TTL` | `24h` | a draft set not committed by then expires and its media are removed |
/// | `MEDIAGW_UPLOAD_PART_TIMEOUT` | `15m` | the longest one file may take to arrive |
/// | `MEDIAGW_LIMIT_<CONTEXT>_<KIND>` | see README | `count:size` for a context (POST, PROFILE, COMMUNITY, MESSAGE) and kind (PHOTO, AUDIO, VIDEO), e.g. `MEDIAGW_LIMIT_POST_PHOTO=5:1MiB` |
/// | `MEDIAGW_RECONCILE_INTERVAL` | `5m` | how often `serve` runs the reconciler (`0` disables it) |
/// | `MEDIAGW_RECONCILE_GRACE` | `1h` | pending objects younger than this are left alone; must exceed the part timeout |
/// | `MEDIAGW_SHUTDOWN_TIMEOUT` | `30s` | how long SIGTERM waits for in-flight requests before cancelling them |
/// | `MEDIAGW_URL_SIGNING_KEYS` | required | comma-separated `id:base64secret` HMAC keys of signed media URLs; the first signs, all verify |
/// | `MEDIAGW_SIGNED_URL_TTL` | `1h` | how long a signed media URL stays valid (10s to 7d) |
/// | `MEDIAGW_PRIVATE_CONTEXTS` | `message` | contexts whose media are private (comma-separated; `none` for none) |
/// | `MEDIAGW_SIGN_ORIGINALS` | `false` | originals of public media need signed URLs too (they keep the uploader's EXIF) |
/// | `MEDIAGW_ORIGIN_MAX_AGE` | `365d` | `max-age` of public media |
/// | `MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE` | `10s` | `max-age` of 404 answers of the origin |
/// | `MEDIAGW_PUBLIC_BASE_URL` | empty | prefix of the media URLs the internal API returns, e.g. `https://cdn.example.com` |
/// | `MEDIAGW_ORIGIN_LOOKUP_TTL` | `5s` | how long the origin reuses a lookup of ready media (`0`: always ask PostgreSQL) |
/// | `MEDIAGW_ORIGIN_LOOKUP_ENTRIES` | `10000` | the most media items whose lookups are kept |
public struct ServerConfiguration: Sendable {
    public var http: HTTPConfiguration
    public var uploads: UploadSettings
    public var serviceTokens: [String]
    public var uploadTokenKeys: [SigningKey]
    public var urlSigningKeys: [SigningKey]
    public var origin: OriginSettings
    public var reconcileInterval: Duration
    public var reconcileGrace: Duration
    public var shutdownTimeout: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        http = try HTTPConfiguration(environment: env)
        var limits = UploadLimits.defaults
        for context in UploadContext.allCases {
            for kind in MediaKind.allCases {
                let name = "MEDIAGW_LIMIT_\(context.rawValue.uppercased())_\(kind.rawValue.uppercased())"
                guard let raw = env.string(name) else { continue }
                let parts = raw.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let count = Int(parts[0]), let bytes = EnvironmentReader(["v": parts[1]]).bytesOrNil("v") else {
                    throw ConfigurationError("\(name)=\(raw) must be count:size, for example 5:1MiB")
                }
                limits[context][kind] = KindLimit(maxCount: count, maxBytes: bytes)
            }
        }
        uploads = UploadSettings(
            limits: limits,
            draftLifetime: try env.duration("MEDIAGW_DRAFT_TTL", default: .seconds(24 * 3600)),
            tokenLifetime: try env.duration("MEDIAGW_UPLOAD_TOKEN_TTL", default: .seconds(3600)),
            partTimeout: try env.duration("MEDIAGW_UPLOAD_PART_TIMEOUT", default: .seconds(15 * 60)))
        serviceTokens = (env.string("MEDIAGW_SERVICE_TOKENS") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        uploadTokenKeys = try SigningKey.parseList(try env.requiredString("MEDIAGW_UPLOAD_TOKEN_KEYS"), variable: "MEDIAGW_UPLOAD_TOKEN_KEYS")
        urlSigningKeys = try SigningKey.parseList(try env.requiredString("MEDIAGW_URL_SIGNING_KEYS"), variable: "MEDIAGW_URL_SIGNING_KEYS")
        origin = try Self.origin(env)
        reconcileInterval = try env.duration("MEDIAGW_RECONCILE_INTERVAL", default: .seconds(300))
        reconcileGrace = try env.duration("MEDIAGW_RECONCILE_GRACE", default: .seconds(3600))
        shutdownTimeout = try env.duration("MEDIAGW_SHUTDOWN_TIMEOUT", default: .seconds(30))
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        try http.validate()
        try uploads.limits.validate()
        _ = try ServiceTokens(serviceTokens)
        guard uploads.tokenLifetime >= .seconds(60) else { throw ConfigurationError("MEDIAGW_UPLOAD_TOKEN_TTL must be at least 1m") }
        guard uploads.draftLifetime >= uploads.tokenLifetime else {
            throw ConfigurationError("MEDIAGW_DRAFT_TTL must not be shorter than MEDIAGW_UPLOAD_TOKEN_TTL")
        }
        guard uploads.partTimeout >= .seconds(10) else { throw ConfigurationError("MEDIAGW_UPLOAD_PART_TIMEOUT must be at least 10s") }
        guard reconcileGrace > uploads.partTimeout else {
            throw ConfigurationError("MEDIAGW_RECONCILE_GRACE must exceed MEDIAGW_UPLOAD_PART_TIMEOUT, or uploads still streaming would be removed")
        }
        guard shutdownTimeout >= .seconds(1) else { throw ConfigurationError("MEDIAGW_SHUTDOWN_TIMEOUT must be at least 1s") }
        guard (Duration.seconds(10)...Duration.seconds(7 * 86400)).contains(origin.signedURLLifetime) else {
            throw ConfigurationError("MEDIAGW_SIGNED_URL_TTL must be between 10s and 7d")
        }
        guard origin.publicMaxAge >= 0, origin.negativeMaxAge >= 0 else {
            throw ConfigurationError("MEDIAGW_ORIGIN_MAX_AGE and MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE must not be negative")
        }
        guard origin.baseURL.isEmpty || ((origin.baseURL.hasPrefix("https://") || origin.baseURL.hasPrefix("http://")) && !origin.baseURL.hasSuffix("/")) else {
            throw ConfigurationError("MEDIAGW_PUBLIC_BASE_URL must start with http:// or https:// and not end with /")
        }
        guard origin.lookupCacheTTL >= .zero, origin.lookupCacheTTL <= .seconds(300), origin.lookupCacheEntries >= 1 else {
            throw ConfigurationError("MEDIAGW_ORIGIN_LOOKUP_TTL must be between 0 and 5m, MEDIAGW_ORIGIN_LOOKUP_ENTRIES at least 1")
        }
    }

    private static func origin(_ env: EnvironmentReader) throws(ConfigurationError) -> OriginSettings {
        let defaults = OriginSettings()
        var privateContexts = defaults.privateContexts
        if let raw = env.string("MEDIAGW_PRIVATE_CONTEXTS") {
            privateContexts = []
            for name in raw.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty && name != "none" {
                guard let context = UploadContext(rawValue: name) else {
                    throw ConfigurationError("MEDIAGW_PRIVATE_CONTEXTS names \(name.debugDescription): contexts are post, profile, community, message")
                }
                privateContexts.insert(context)
            }
        }
        return OriginSettings(
            privateContexts: privateContexts,
            signOriginals: try env.bool("MEDIAGW_SIGN_ORIGINALS", default: defaults.signOriginals),
            signedURLLifetime: try env.duration("MEDIAGW_SIGNED_URL_TTL", default: defaults.signedURLLifetime),
            publicMaxAge: Int(try env.duration("MEDIAGW_ORIGIN_MAX_AGE", default: .seconds(defaults.publicMaxAge)).seconds),
            negativeMaxAge: Int(try env.duration("MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE", default: .seconds(defaults.negativeMaxAge)).seconds),
            baseURL: env.string("MEDIAGW_PUBLIC_BASE_URL", default: defaults.baseURL),
            lookupCacheTTL: try env.duration("MEDIAGW_ORIGIN_LOOKUP_TTL", default: defaults.lookupCacheTTL),
            lookupCacheEntries: try env.int("MEDIAGW_ORIGIN_LOOKUP_ENTRIES", default: defaults.lookupCacheEntries))
    }
}

extension EnvironmentReader {
    /// A byte count, or `nil` when unset or not a byte count.
    func bytesOrNil(_ name: String) -> Int64? {
        try? string(name).map { _ in try bytes(name, default: 0) }
    }
}
