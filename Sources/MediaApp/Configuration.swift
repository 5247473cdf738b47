import Foundation
import Logging
import MediaCore
import MediaHTTP
import PostgresMetadata
import RadosStore

// One configuration per concern, read from `MEDIAGW_*` environment variables and validated at start. Each
// command reads only the concerns it uses; a bad value is one ``ConfigurationError`` naming the variable.

/// Logging.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_LOG_LEVEL` | `info` | trace, debug, info, notice, warning, error, critical |
/// | `MEDIAGW_LOG_FORMAT` | `text` | `text` (one readable line per event) or `json` (one JSON object per line, for a log collector) |
public struct LoggingConfiguration: Sendable {
    /// How log lines are written.
    public enum Format: String, Sendable {
        case text, json
    }

    public var level: Logger.Level
    /// Whether the level was set, or is the command's default.
    public var isSet: Bool
    public var format: Format

    public init(environment env: EnvironmentReader, default defaultLevel: Logger.Level = .info) throws(ConfigurationError) {
        let raw = env.string("MEDIAGW_LOG_LEVEL")
        guard let level = Logger.Level(rawValue: raw ?? defaultLevel.rawValue) else {
            throw ConfigurationError("MEDIAGW_LOG_LEVEL=\(raw ?? "") is not a log level (trace, debug, info, notice, warning, error, critical)")
        }
        self.level = level
        self.isSet = raw != nil
        let rawFormat = env.string("MEDIAGW_LOG_FORMAT") ?? Format.text.rawValue
        guard let format = Format(rawValue: rawFormat.lowercased()) else {
            throw ConfigurationError("MEDIAGW_LOG_FORMAT=\(rawFormat) is not a log format (text, json)")
        }
        self.format = format
    }
}

/// Ceph: how to connect (``RadosConfiguration``, whose settings it documents) and the pools.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_POOL_PHOTO` | `media.photo` | pool of photo originals |
/// | `MEDIAGW_POOL_AUDIO` | `media.audio` | pool of audio originals |
/// | `MEDIAGW_POOL_VIDEO` | `media.video` | pool of video originals |
/// | `MEDIAGW_POOL_DERIVED` | `media.derived` | pool of renditions |
public struct StorageConfiguration: Sendable {
    public var rados: RadosConfiguration
    public var pools: StoragePools

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = RadosConfiguration()
        rados = RadosConfiguration(
            configPath: env.string("MEDIAGW_CEPH_CONF", default: defaults.configPath),
            clientID: env.string("MEDIAGW_CEPH_CLIENT", default: defaults.clientID),
            keyringPath: env.string("MEDIAGW_CEPH_KEYRING"),
            mountTimeout: try env.duration("MEDIAGW_CEPH_MOUNT_TIMEOUT", default: defaults.mountTimeout),
            operationTimeout: try env.duration("MEDIAGW_CEPH_OP_TIMEOUT", default: defaults.operationTimeout),
            objecterTimeout: try env.duration("MEDIAGW_CEPH_OBJECTER_TIMEOUT", default: defaults.objecterTimeout),
            reconnectAfter: try env.duration("MEDIAGW_CEPH_RECONNECT_AFTER", default: defaults.reconnectAfter),
            chunkSize: Int(try env.bytes("MEDIAGW_CEPH_CHUNK_SIZE", default: Int64(defaults.chunkSize))),
            readChunkSize: Int(try env.bytes("MEDIAGW_CEPH_READ_CHUNK_SIZE", default: Int64(defaults.readChunkSize))),
            maxReadsInFlight: try env.int("MEDIAGW_CEPH_MAX_READS", default: defaults.maxReadsInFlight),
            readBuffers: try env.int("MEDIAGW_CEPH_READ_BUFFERS", default: defaults.readBuffers),
            readSmallBuffers: try env.int("MEDIAGW_CEPH_READ_SMALL_BUFFERS", default: defaults.readSmallBuffers),
            readBufferWait: try env.duration("MEDIAGW_CEPH_READ_BUFFER_WAIT", default: defaults.readBufferWait),
            namespace: env.string("MEDIAGW_CEPH_NAMESPACE", default: defaults.namespace)
        )
        let pools = StoragePools()
        self.pools = StoragePools(
            photo: env.string("MEDIAGW_POOL_PHOTO", default: pools.photo),
            audio: env.string("MEDIAGW_POOL_AUDIO", default: pools.audio),
            video: env.string("MEDIAGW_POOL_VIDEO", default: pools.video),
            derived: env.string("MEDIAGW_POOL_DERIVED", default: pools.derived)
        )
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        try rados.validate()
        guard Set(pools.all).count == pools.all.count else {
            throw ConfigurationError("the photo, audio, video and derived pools must be four different pools")
        }
    }
}

extension PostgresConfiguration {
    /// PostgreSQL, from the variables documented on ``PostgresConfiguration``.
    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        try self.init(url: env.string("MEDIAGW_DATABASE_URL", default: "postgres://mediagw@127.0.0.1:5432/mediagw"))
        maxConnections = try env.int("MEDIAGW_DATABASE_MAX_CONNECTIONS", default: maxConnections)
        connectTimeout = try env.duration("MEDIAGW_DATABASE_CONNECT_TIMEOUT", default: connectTimeout)
        statementTimeout = try env.duration("MEDIAGW_DATABASE_STATEMENT_TIMEOUT", default: statementTimeout)
        schema = env.string("MEDIAGW_DATABASE_SCHEMA", default: schema)
        groupCommit = try env.bool("MEDIAGW_DATABASE_GROUP_COMMIT", default: false)
        try validate()
    }

    /// The read replica of `MEDIAGW_DATABASE_READ_URL` (a hot standby: the origin's lookups and the internal
    /// read routes go there first), with the primary's schema and pool settings; `nil` when unset.
    public static func replica(
        environment env: EnvironmentReader,
        of primary: PostgresConfiguration
    ) throws(ConfigurationError)
        -> PostgresConfiguration?
    {
        guard let url = env.string("MEDIAGW_DATABASE_READ_URL") else { return nil }
        var replica: PostgresConfiguration
        do {
            replica = try PostgresConfiguration(url: url)
        } catch {
            throw ConfigurationError(error.message.replacingOccurrences(of: "MEDIAGW_DATABASE_URL", with: "MEDIAGW_DATABASE_READ_URL"))
        }
        replica.maxConnections = primary.maxConnections
        replica.connectTimeout = primary.connectTimeout
        replica.statementTimeout = primary.statementTimeout
        replica.schema = primary.schema
        try replica.validate()
        return replica
    }
}

extension ResumableSettings {
    /// Resumable uploads (tus, the IETF draft).
    ///
    /// | variable | default | meaning |
    /// |---|---|---|
    /// | `MEDIAGW_RESUMABLE_TTL` | `24h` | an upload not completed by then (or by its set's expiry) is removed with its bytes |
    /// | `MEDIAGW_RESUMABLE_CLAIM_LEASE` | `15s` | how long a gateway that died mid-append holds the upload |
    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = ResumableSettings()
        self.init(
            lifetime: try env.duration("MEDIAGW_RESUMABLE_TTL", default: defaults.lifetime),
            claimLease: try env.duration("MEDIAGW_RESUMABLE_CLAIM_LEASE", default: defaults.claimLease)
        )
        guard lifetime >= .seconds(1) else { throw ConfigurationError("MEDIAGW_RESUMABLE_TTL must be at least 1s") }
        guard claimLease >= .seconds(3), claimLease <= .seconds(600) else {
            throw ConfigurationError("MEDIAGW_RESUMABLE_CLAIM_LEASE must be between 3s and 10m")
        }
    }
}

extension UploadSettings {
    /// The upload rules: limits per context and kind, lifetimes.
    ///
    /// | variable | default | meaning |
    /// |---|---|---|
    /// | `MEDIAGW_LIMIT_<CONTEXT>_<KIND>` | ``UploadLimits/defaults`` | `count:size`, e.g. `MEDIAGW_LIMIT_COMMUNITY_PHOTO=20:2MiB` |
    /// | `MEDIAGW_DRAFT_TTL` | `24h` | a draft set not committed by then expires |
    /// | `MEDIAGW_UPLOAD_TOKEN_TTL` | `1h` | lifetime of an upload token |
    /// | `MEDIAGW_UPLOAD_PART_TIMEOUT` | `15m` | the longest one file may take to arrive |
    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        var limits = UploadLimits.defaults
        for context in UploadContext.allCases {
            for kind in MediaKind.allCases {
                let name = "MEDIAGW_LIMIT_\(context.rawValue.uppercased())_\(kind.rawValue.uppercased())"
                guard let raw = env.string(name) else { continue }
                let parts = raw.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let count = Int(parts[0]), let bytes = EnvironmentReader.parseBytes(parts[1]) else {
                    throw ConfigurationError("\(name)=\(raw) must be count:size, for example 5:1MiB")
                }
                limits[context][kind] = KindLimit(maxCount: count, maxBytes: bytes)
            }
        }
        self.init(
            limits: limits,
            draftLifetime: try env.duration("MEDIAGW_DRAFT_TTL", default: .seconds(24 * 3600)),
            tokenLifetime: try env.duration("MEDIAGW_UPLOAD_TOKEN_TTL", default: .seconds(3600)),
            partTimeout: try env.duration("MEDIAGW_UPLOAD_PART_TIMEOUT", default: .seconds(15 * 60))
        )
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        try limits.validate()
        guard tokenLifetime >= .seconds(60) else { throw ConfigurationError("MEDIAGW_UPLOAD_TOKEN_TTL must be at least 1m") }
        guard draftLifetime >= tokenLifetime else {
            throw ConfigurationError("MEDIAGW_DRAFT_TTL must not be shorter than MEDIAGW_UPLOAD_TOKEN_TTL")
        }
        guard partTimeout >= .seconds(10) else { throw ConfigurationError("MEDIAGW_UPLOAD_PART_TIMEOUT must be at least 10s") }
    }
}

/// The secrets of the public and internal APIs: service tokens and the keys of upload tokens and media URLs.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_SERVICE_TOKENS` | required | comma-separated bearer tokens of the internal API, 16+ characters each |
/// | `MEDIAGW_UPLOAD_TOKEN_KEYS` | required | comma-separated `id:base64secret` keys of upload tokens; the first signs |
/// | `MEDIAGW_URL_SIGNING_KEYS` | required | comma-separated `id:base64secret` keys of signed media URLs; the first signs |
public struct SecretsConfiguration: Sendable {
    public var serviceTokens: ServiceTokens
    public var uploadTokenKeys: [SigningKey]
    public var urlSigningKeys: [SigningKey]

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let tokens = (env.string("MEDIAGW_SERVICE_TOKENS") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        serviceTokens = try ServiceTokens(tokens)
        uploadTokenKeys = try SigningKey.parseList(try env.requiredString("MEDIAGW_UPLOAD_TOKEN_KEYS"), variable: "MEDIAGW_UPLOAD_TOKEN_KEYS")
        urlSigningKeys = try SigningKey.parseList(try env.requiredString("MEDIAGW_URL_SIGNING_KEYS"), variable: "MEDIAGW_URL_SIGNING_KEYS")
    }
}

extension OriginSettings {
    /// The CDN origin.
    ///
    /// | variable | default | meaning |
    /// |---|---|---|
    /// | `MEDIAGW_SIGNED_URL_TTL` | `1h` | how long a signed media URL stays valid (10s to 7d) |
    /// | `MEDIAGW_PRIVATE_CONTEXTS` | `message` | contexts whose media are private (comma-separated; `none` for none) |
    /// | `MEDIAGW_SIGN_ORIGINALS` | `false` | originals of public media need signed URLs too (they keep the uploader's EXIF) |
    /// | `MEDIAGW_ORIGIN_MAX_AGE` | `365d` | `max-age` of public media |
    /// | `MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE` | `10s` | `max-age` of 404 answers of the origin |
    /// | `MEDIAGW_PUBLIC_BASE_URL` | empty | prefix of the media URLs the internal API returns, e.g. `https://cdn.example.com` |
    /// | `MEDIAGW_ORIGIN_LOOKUP_TTL` | `5s` | how long the origin reuses a lookup of ready media (`0`: always ask PostgreSQL) |
    /// | `MEDIAGW_ORIGIN_LOOKUP_ENTRIES` | `10000` | the most media items whose lookups are kept |
    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = OriginSettings()
        var privateContexts = defaults.privateContexts
        if let raw = env.string("MEDIAGW_PRIVATE_CONTEXTS") {
            privateContexts = []
            for name in raw.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty && name != "none" {
                guard let context = UploadContext(rawValue: name) else {
                    throw ConfigurationError(
                        "MEDIAGW_PRIVATE_CONTEXTS names \(name.debugDescription): contexts are post, profile, community, message"
                    )
                }
                privateContexts.insert(context)
            }
        }
        self.init(
            privateContexts: privateContexts,
            signOriginals: try env.bool("MEDIAGW_SIGN_ORIGINALS", default: defaults.signOriginals),
            signedURLLifetime: try env.duration("MEDIAGW_SIGNED_URL_TTL", default: defaults.signedURLLifetime),
            publicMaxAge: Int(try env.duration("MEDIAGW_ORIGIN_MAX_AGE", default: .seconds(defaults.publicMaxAge)).seconds),
            negativeMaxAge: Int(try env.duration("MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE", default: .seconds(defaults.negativeMaxAge)).seconds),
            baseURL: env.string("MEDIAGW_PUBLIC_BASE_URL", default: defaults.baseURL),
            lookupCacheTTL: try env.duration("MEDIAGW_ORIGIN_LOOKUP_TTL", default: defaults.lookupCacheTTL),
            lookupCacheEntries: try env.int("MEDIAGW_ORIGIN_LOOKUP_ENTRIES", default: defaults.lookupCacheEntries)
        )
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        guard (Duration.seconds(10)...Duration.seconds(7 * 86400)).contains(signedURLLifetime) else {
            throw ConfigurationError("MEDIAGW_SIGNED_URL_TTL must be between 10s and 7d")
        }
        guard publicMaxAge >= 0, negativeMaxAge >= 0 else {
            throw ConfigurationError("MEDIAGW_ORIGIN_MAX_AGE and MEDIAGW_ORIGIN_NEGATIVE_MAX_AGE must not be negative")
        }
        guard baseURL.isEmpty || ((baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) && !baseURL.hasSuffix("/")) else {
            throw ConfigurationError("MEDIAGW_PUBLIC_BASE_URL must start with http:// or https:// and not end with /")
        }
        guard lookupCacheTTL >= .zero, lookupCacheTTL <= .seconds(300), lookupCacheEntries >= 1 else {
            throw ConfigurationError("MEDIAGW_ORIGIN_LOOKUP_TTL must be between 0 and 5m, MEDIAGW_ORIGIN_LOOKUP_ENTRIES at least 1")
        }
    }
}

extension HTTPConfiguration {
    /// The HTTP server, from the variables documented on ``HTTPConfiguration``.
    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = HTTPConfiguration()
        self.init(
            host: env.string("MEDIAGW_HOST", default: defaults.host),
            port: try env.int("MEDIAGW_PORT", default: defaults.port),
            maxRequestBytes: try env.bytes("MEDIAGW_MAX_REQUEST_BYTES", default: defaults.maxRequestBytes),
            multipart: MultipartLimits(
                maxParts: try env.int("MEDIAGW_MAX_PARTS", default: defaults.multipart.maxParts),
                maxHeaderBytes: Int(try env.bytes("MEDIAGW_MAX_PART_HEADER_BYTES", default: Int64(defaults.multipart.maxHeaderBytes)))
            ),
            idleTimeout: try env.duration("MEDIAGW_IDLE_TIMEOUT", default: defaults.idleTimeout),
            retryAfter: try env.duration("MEDIAGW_RETRY_AFTER", default: defaults.retryAfter),
            originReadAhead: try env.int("MEDIAGW_ORIGIN_READ_AHEAD", default: defaults.originReadAhead),
            cors: CORSPolicy(
                origins: (env.string("MEDIAGW_CORS_ORIGINS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty },
                allowCredentials: try env.bool("MEDIAGW_CORS_CREDENTIALS", default: defaults.cors.allowCredentials),
                maxAge: try env.duration("MEDIAGW_CORS_MAX_AGE", default: defaults.cors.maxAge)
            )
        )
        try validate()
    }
}

/// The reconciler.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_RECONCILE_INTERVAL` | `5m` | how often `serve` runs the reconciler (`0` disables it) |
/// | `MEDIAGW_RECONCILE_GRACE` | `1h` | pending objects younger than this are left alone; must exceed the part timeout |
public struct ReconcilerConfiguration: Sendable {
    public var interval: Duration
    public var grace: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        interval = try env.duration("MEDIAGW_RECONCILE_INTERVAL", default: .seconds(300))
        grace = try env.duration("MEDIAGW_RECONCILE_GRACE", default: .seconds(3600))
    }

    /// The grace period must outlast the longest upload, or uploads still streaming would be removed.
    public func validate(against uploads: UploadSettings) throws(ConfigurationError) {
        guard grace > uploads.partTimeout else {
            throw ConfigurationError("MEDIAGW_RECONCILE_GRACE must exceed MEDIAGW_UPLOAD_PART_TIMEOUT, or uploads still streaming would be removed")
        }
    }
}

/// The backlog gauges (`mediagw_jobs_queued`, `mediagw_jobs_oldest_queued_age_seconds`, `mediagw_jobs_dead`,
/// `mediagw_outbox_unread_events`, `mediagw_pending_ledger_oldest_age_seconds`).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_MONITOR_INTERVAL` | `15s` | how often `serve` samples them (one small query and one omap read per pool); `0` never |
public struct MonitorConfiguration: Sendable {
    public var interval: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        interval = try env.duration("MEDIAGW_MONITOR_INTERVAL", default: .seconds(15))
        guard interval == .zero || interval >= .seconds(1) else {
            throw ConfigurationError("MEDIAGW_MONITOR_INTERVAL must be 0 (never) or at least 1s")
        }
    }
}

/// Purging CDN edges of deleted media: a purger per edge reads the outbox's `media.deleted` events and asks
/// the edge to drop every URL of the item.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_CDN_PURGE_URLS` | none | the edges to purge (`http://host:port`, comma-separated): nginx of `Deploy/cdn` with its purge location |
/// | `MEDIAGW_CDN_PURGE_INTERVAL` | `1s` | how often each purger reads new events; a failed purge is tried again after it, doubling up to 30 s |
public struct EdgePurgeConfiguration: Sendable {
    public var edges: [String]
    public var interval: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        edges = env.string("MEDIAGW_CDN_PURGE_URLS", default: "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        interval = try env.duration("MEDIAGW_CDN_PURGE_INTERVAL", default: .seconds(1))
        for edge in edges {
            guard let url = URL(string: edge), url.scheme == "http" || url.scheme == "https", url.host != nil, url.query == nil else {
                throw ConfigurationError("MEDIAGW_CDN_PURGE_URLS: \(edge) is not an http(s)://host:port address")
            }
        }
        guard Set(edges).count == edges.count else { throw ConfigurationError("MEDIAGW_CDN_PURGE_URLS lists an edge twice") }
        guard interval >= .milliseconds(100), interval <= .seconds(60) else {
            throw ConfigurationError("MEDIAGW_CDN_PURGE_INTERVAL must be between 100ms and 60s")
        }
    }
}

/// The outbox's retention: it is partitioned by UTC day, and whole old days are dropped.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_OUTBOX_RETENTION` | `7d` | events are kept at least this long (whole days: up to a day longer); at least `1d` |
/// | `MEDIAGW_OUTBOX_DAYS_AHEAD` | `7` | days made ready ahead of today (1–60); writes need the day they fall in |
/// | `MEDIAGW_OUTBOX_ROTATION_INTERVAL` | `1h` | how often `serve` rotates (at start too); `0` never (another process must) |
public struct OutboxRetentionConfiguration: Sendable {
    public var retention: Duration
    public var daysAhead: Int
    public var interval: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        retention = try env.duration("MEDIAGW_OUTBOX_RETENTION", default: .seconds(7 * 86_400))
        daysAhead = try env.int("MEDIAGW_OUTBOX_DAYS_AHEAD", default: 7)
        interval = try env.duration("MEDIAGW_OUTBOX_ROTATION_INTERVAL", default: .seconds(3600))
        guard retention >= .seconds(86_400) else {
            throw ConfigurationError("MEDIAGW_OUTBOX_RETENTION must be at least 1d: consumers need time to read")
        }
        guard (1...60).contains(daysAhead) else { throw ConfigurationError("MEDIAGW_OUTBOX_DAYS_AHEAD must be between 1 and 60") }
        guard interval == .zero || (interval >= .seconds(60) && interval <= .seconds(12 * 3600)) else {
            throw ConfigurationError("MEDIAGW_OUTBOX_ROTATION_INTERVAL must be 0 (never) or between 1m and 12h")
        }
    }
}

/// The correlation of related work (`mediagw correlate`): links between ids kept in PostgreSQL by whole
/// UTC days, written in batches. `serve` and `worker` record; `serve` rotates with the outbox's interval and
/// days ahead.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_CORRELATION` | `true` | record links (`false`: nothing is recorded, `correlate` finds what was) |
/// | `MEDIAGW_CORRELATION_RETENTION` | `14d` | links are kept at least this long (whole days); at least `1d` |
/// | `MEDIAGW_CORRELATION_FLUSH_INTERVAL` | `200ms` | how often buffered links are written, one statement per batch (10ms–10s) |
/// | `MEDIAGW_CORRELATION_BUFFER` | `20000` | links held between writes (100–1000000); more are dropped and counted |
/// | `MEDIAGW_HOST_NAME` | the host's name | the host recorded with each link |
public struct CorrelationConfiguration: Sendable {
    public var enabled: Bool
    public var retention: Duration
    public var flushInterval: Duration
    public var buffer: Int
    public var hostName: String

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        enabled = try env.bool("MEDIAGW_CORRELATION", default: true)
        retention = try env.duration("MEDIAGW_CORRELATION_RETENTION", default: .seconds(14 * 86_400))
        flushInterval = try env.duration("MEDIAGW_CORRELATION_FLUSH_INTERVAL", default: .milliseconds(200))
        buffer = try env.int("MEDIAGW_CORRELATION_BUFFER", default: 20_000)
        hostName = env.string("MEDIAGW_HOST_NAME", default: ProcessInfo.processInfo.hostName)
        guard retention >= .seconds(86_400) else { throw ConfigurationError("MEDIAGW_CORRELATION_RETENTION must be at least 1d") }
        guard flushInterval >= .milliseconds(10), flushInterval <= .seconds(10) else {
            throw ConfigurationError("MEDIAGW_CORRELATION_FLUSH_INTERVAL must be between 10ms and 10s")
        }
        guard (100...1_000_000).contains(buffer) else { throw ConfigurationError("MEDIAGW_CORRELATION_BUFFER must be between 100 and 1000000") }
        guard !hostName.isEmpty, hostName.count <= 255 else { throw ConfigurationError("MEDIAGW_HOST_NAME must be 1 to 255 characters") }
    }
}

/// How long-running commands stop.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_SHUTDOWN_TIMEOUT` | `30s` | how long SIGTERM waits for in-flight requests and jobs |
public struct LifecycleConfiguration: Sendable {
    public var shutdownTimeout: Duration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        shutdownTimeout = try env.duration("MEDIAGW_SHUTDOWN_TIMEOUT", default: .seconds(30))
        guard shutdownTimeout >= .seconds(1) else { throw ConfigurationError("MEDIAGW_SHUTDOWN_TIMEOUT must be at least 1s") }
    }
}

/// Media processing: the workers, their processor processes, the renditions.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_WORKERS` | cores | jobs processed at once (one processor process each) |
/// | `MEDIAGW_VIDEO_WORKERS` | half the workers | workers that take video first; the others take photos and audio only (one worker takes everything) |
/// | `MEDIAGW_JOB_BULK_SHARE` | `20` | percent of a worker's recent busy time kept for bulk (ingested) media while interactive uploads wait too |
/// | `MEDIAGW_WORKERS_IN_SERVE` | `true` | whether `serve` also runs workers (else run `mediagw worker`) |
/// | `MEDIAGW_JOB_TIMEOUT` | `5m` | wall time of one job; past it the processor is killed and the attempt fails |
/// | `MEDIAGW_JOB_LEASE` | `60s` | a claim not renewed (its worker renews it every third) is taken again after this |
/// | `MEDIAGW_JOB_HOLD_LIMIT` | job timeout + lease | the longest a worker renews one job's lease (a worker stuck past it gives the job up) |
/// | `MEDIAGW_JOB_ATTEMPTS` | `3` | attempts before a job is dead and its media failed (bad input fails at once) |
/// | `MEDIAGW_JOB_BACKOFF` | `10s` | wait before the first retry, doubling each time |
/// | `MEDIAGW_PROCESSOR_MEMORY` | `2GiB` | data memory limit of each processor process |
/// | `MEDIAGW_PROCESSOR_EXECUTABLE` | `mediagw-processor` beside this program | the processor program (libvips and FFmpeg live there only) |
/// | `MEDIAGW_WORK_DIR` | `$TMPDIR/mediagw-work` | scratch space for transcoded files |
/// | `MEDIAGW_RENDITION_VERSION` | `v1` | part of rendition keys and URLs; change it when changing rendition settings |
/// | `MEDIAGW_PHOTO_WIDTHS` | `160,320,640,1280` | the rendition ladder |
/// | `MEDIAGW_PHOTO_MAX_PIXELS` | `50000000` | photos with more pixels are refused before decoding |
/// | `MEDIAGW_PHOTO_MAX_FRAMES` | `100` | animations with more frames are refused |
public struct ProcessingConfiguration: Sendable {
    public var workers: WorkerSettings
    public var inServe: Bool
    public var processorMemory: Int64
    public var processorExecutable: String
    public var processing: ProcessingSettings

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = WorkerSettings()
        let concurrency = try env.int("MEDIAGW_WORKERS", default: defaults.concurrency)
        let lease = try env.duration("MEDIAGW_JOB_LEASE", default: defaults.lease)
        let timeout = try env.duration("MEDIAGW_JOB_TIMEOUT", default: .seconds(300))
        workers = WorkerSettings(
            concurrency: concurrency,
            lease: lease,
            maxAttempts: try env.int("MEDIAGW_JOB_ATTEMPTS", default: defaults.maxAttempts),
            backoff: try env.duration("MEDIAGW_JOB_BACKOFF", default: defaults.backoff),
            videoWorkers: try env.int("MEDIAGW_VIDEO_WORKERS", default: max(1, concurrency / 2)),
            bulkShare: Double(try env.int("MEDIAGW_JOB_BULK_SHARE", default: Int(defaults.bulkShare * 100))) / 100,
            holdLimit: try env.duration("MEDIAGW_JOB_HOLD_LIMIT", default: timeout + lease)
        )
        inServe = try env.bool("MEDIAGW_WORKERS_IN_SERVE", default: true)
        processorMemory = try env.bytes("MEDIAGW_PROCESSOR_MEMORY", default: 2 << 30)
        processorExecutable = env.string("MEDIAGW_PROCESSOR_EXECUTABLE") ?? Self.besideThisProgram("mediagw-processor")
        let widthsText = env.string("MEDIAGW_PHOTO_WIDTHS", default: "160,320,640,1280")
        let widths = widthsText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.count == widthsText.split(separator: ",").count, widths.allSatisfy({ (16...8192).contains($0) }) else {
            throw ConfigurationError("MEDIAGW_PHOTO_WIDTHS must be a comma-separated list of widths between 16 and 8192")
        }
        let defaultPhoto = PhotoSettings()
        processing = ProcessingSettings(
            photo: PhotoSettings(
                widths: widths,
                maxPixels: try env.int("MEDIAGW_PHOTO_MAX_PIXELS", default: defaultPhoto.maxPixels),
                maxFrames: try env.int("MEDIAGW_PHOTO_MAX_FRAMES", default: defaultPhoto.maxFrames)
            ),
            version: env.string("MEDIAGW_RENDITION_VERSION", default: "v1"),
            timeout: timeout,
            workDirectory: env.string("MEDIAGW_WORK_DIR", default: NSTemporaryDirectory() + "mediagw-work")
        )
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        guard (1...256).contains(workers.concurrency) else { throw ConfigurationError("MEDIAGW_WORKERS must be between 1 and 256") }
        guard workers.concurrency == 1 || (1..<workers.concurrency).contains(workers.videoWorkers) else {
            throw ConfigurationError("MEDIAGW_VIDEO_WORKERS must be at least 1 and fewer than MEDIAGW_WORKERS (one worker takes every kind)")
        }
        guard (0.01...0.9).contains(workers.bulkShare) else { throw ConfigurationError("MEDIAGW_JOB_BULK_SHARE must be between 1 and 90 (percent)") }
        guard workers.lease >= .seconds(3) else { throw ConfigurationError("MEDIAGW_JOB_LEASE must be at least 3s (it is renewed every third)") }
        guard processing.timeout >= .milliseconds(100) else { throw ConfigurationError("MEDIAGW_JOB_TIMEOUT must be at least 100ms") }
        guard workers.holdLimit > processing.timeout else {
            throw ConfigurationError("MEDIAGW_JOB_HOLD_LIMIT must be longer than MEDIAGW_JOB_TIMEOUT (a job may take all of it)")
        }
        guard (1...100).contains(workers.maxAttempts) else { throw ConfigurationError("MEDIAGW_JOB_ATTEMPTS must be between 1 and 100") }
        guard processorMemory >= 256 << 20 else { throw ConfigurationError("MEDIAGW_PROCESSOR_MEMORY must be at least 256MiB") }
        // a-z 0-9 . _ - by bytes: a regular expression would load ICU into the gateway for one check
        let version = processing.version.utf8
        let allowed = { (byte: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || "._-".utf8.contains(byte)
        }
        guard (1...16).contains(version.count), version.allSatisfy(allowed) else {
            throw ConfigurationError("MEDIAGW_RENDITION_VERSION must be 1 to 16 characters: a-z 0-9 . _ -")
        }
        guard processing.photo.maxPixels >= 1, processing.photo.maxFrames >= 1 else {
            throw ConfigurationError("MEDIAGW_PHOTO_MAX_PIXELS and MEDIAGW_PHOTO_MAX_FRAMES must be positive")
        }
    }

    /// A program in the directory of the running one.
    static func besideThisProgram(_ name: String) -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
