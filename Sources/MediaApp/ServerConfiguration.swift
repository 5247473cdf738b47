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
public struct ServerConfiguration: Sendable {
    public var http: HTTPConfiguration
    public var uploads: UploadSettings
    public var serviceTokens: [String]
    public var uploadTokenKeys: [SigningKey]
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
    }
}

extension EnvironmentReader {
    /// A byte count, or `nil` when unset or not a byte count.
    func bytesOrNil(_ name: String) -> Int64? {
        try? string(name).map { _ in try bytes(name, default: 0) }
    }
}
