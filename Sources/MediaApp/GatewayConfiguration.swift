import Logging
import MediaCore
import PostgresMetadata
import RadosStore

/// Every setting of the gateway, one struct per module, read from the environment and validated at start.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_POOL_PHOTO` | `media.photo` | pool of photo originals |
/// | `MEDIAGW_POOL_AUDIO` | `media.audio` | pool of audio originals |
/// | `MEDIAGW_POOL_VIDEO` | `media.video` | pool of video originals |
/// | `MEDIAGW_POOL_DERIVED` | `media.derived` | pool of renditions |
/// | `MEDIAGW_LOG_LEVEL` | `info` | trace, debug, info, notice, warning, error, critical |
///
/// The Ceph settings are documented on ``RadosConfiguration``, the PostgreSQL ones on ``PostgresConfiguration``.
public struct GatewayConfiguration: Sendable {
    public var rados: RadosConfiguration
    public var postgres: PostgresConfiguration
    public var pools: StoragePools
    public var logLevel: Logger.Level

    public init(environment env: EnvironmentReader = EnvironmentReader()) throws(ConfigurationError) {
        rados = try RadosConfiguration(environment: env)
        postgres = try PostgresConfiguration(environment: env)
        let defaults = StoragePools()
        pools = StoragePools(
            photo: env.string("MEDIAGW_POOL_PHOTO", default: defaults.photo),
            audio: env.string("MEDIAGW_POOL_AUDIO", default: defaults.audio),
            video: env.string("MEDIAGW_POOL_VIDEO", default: defaults.video),
            derived: env.string("MEDIAGW_POOL_DERIVED", default: defaults.derived))
        let level = env.string("MEDIAGW_LOG_LEVEL", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError("MEDIAGW_LOG_LEVEL=\(level) is not a log level (trace, debug, info, notice, warning, error, critical)")
        }
        logLevel = parsed
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        try rados.validate()
        try postgres.validate()
        guard Set(pools.all).count == pools.all.count else {
            throw ConfigurationError("the photo, audio, video and derived pools must be four different pools")
        }
    }
}
