import Foundation
import MediaCore

/// Settings of the HTTP layer.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_HOST` | `127.0.0.1` | address to listen on |
/// | `MEDIAGW_PORT` | `8080` | port to listen on (0: any free port) |
/// | `MEDIAGW_MAX_REQUEST_BYTES` | `40MiB` | largest upload request (all parts); larger ones get 413 and the connection is closed |
/// | `MEDIAGW_MAX_PARTS` | `10` | most parts in one upload request |
/// | `MEDIAGW_MAX_PART_HEADER_BYTES` | `16KiB` | largest header block of one part |
/// | `MEDIAGW_IDLE_TIMEOUT` | `60s` | a connection that sends nothing for this long is closed |
/// | `MEDIAGW_RETRY_AFTER` | `5s` | `Retry-After` of 503 answers |
/// | `MEDIAGW_ORIGIN_READ_AHEAD` | `32` | chunks the origin's downloads may read ahead of the socket, per process (0: none); each is one `MEDIAGW_CEPH_READ_CHUNK_SIZE` of memory |
/// | `MEDIAGW_CORS_ORIGINS` | empty | origins whose pages may call the public routes (comma-separated, or `*`) |
/// | `MEDIAGW_CORS_CREDENTIALS` | `false` | `Access-Control-Allow-Credentials` (never with `*`) |
/// | `MEDIAGW_CORS_MAX_AGE` | `10m` | how long browsers keep a preflight's answer |
public struct HTTPConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var maxRequestBytes: Int64
    public var multipart: MultipartLimits
    public var idleTimeout: Duration
    public var retryAfter: Duration
    /// Chunks the origin's downloads may hold read ahead of their sockets, across the process.
    public var originReadAhead: Int
    /// Which web pages may call the public routes from a browser.
    public var cors: CORSPolicy
    /// Whether each request gets a server span (named after its route template), continuing a caller's W3C
    /// `traceparent`. Set by the composition root when a tracer is bootstrapped; not an environment setting.
    public var traceRequests = false

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        maxRequestBytes: Int64 = 40 << 20,
        multipart: MultipartLimits = MultipartLimits(),
        idleTimeout: Duration = .seconds(60),
        retryAfter: Duration = .seconds(5),
        originReadAhead: Int = 32,
        cors: CORSPolicy = CORSPolicy()
    ) {
        self.host = host
        self.port = port
        self.maxRequestBytes = maxRequestBytes
        self.multipart = multipart
        self.idleTimeout = idleTimeout
        self.retryAfter = retryAfter
        self.originReadAhead = originReadAhead
        self.cors = cors
    }

    public func validate() throws(ConfigurationError) {
        guard (0...65535).contains(port) else { throw ConfigurationError("MEDIAGW_PORT must be between 0 and 65535") }
        guard maxRequestBytes >= 1 << 20 else { throw ConfigurationError("MEDIAGW_MAX_REQUEST_BYTES must be at least 1MiB") }
        guard (1...1000).contains(multipart.maxParts) else { throw ConfigurationError("MEDIAGW_MAX_PARTS must be between 1 and 1000") }
        guard (256...(1 << 20)).contains(multipart.maxHeaderBytes) else {
            throw ConfigurationError("MEDIAGW_MAX_PART_HEADER_BYTES must be between 256B and 1MiB")
        }
        guard idleTimeout >= .seconds(1) else { throw ConfigurationError("MEDIAGW_IDLE_TIMEOUT must be at least 1s") }
        guard (0...4096).contains(originReadAhead) else { throw ConfigurationError("MEDIAGW_ORIGIN_READ_AHEAD must be between 0 and 4096") }
        try cors.validate()
    }
}

/// Cross-origin requests from browsers to the public routes (uploads, resumable uploads, the origin). The
/// internal and operations routes never answer them.
public struct CORSPolicy: Sendable, Hashable {
    /// The origins allowed (`https://app.example.com`, exactly as browsers send them); `["*"]` allows any
    /// origin (without credentials); empty: cross-origin requests get no CORS headers.
    public var origins: [String]
    /// Whether pages may send cookies or HTTP authentication (`Access-Control-Allow-Credentials`). The
    /// upload routes authenticate with a bearer token, which needs no credentials mode.
    public var allowCredentials: Bool
    /// How long a browser may keep a preflight's answer.
    public var maxAge: Duration

    public init(origins: [String] = [], allowCredentials: Bool = false, maxAge: Duration = .seconds(600)) {
        self.origins = origins
        self.allowCredentials = allowCredentials
        self.maxAge = maxAge
    }

    public var anyOrigin: Bool { origins == ["*"] }

    /// Whether a page of `origin` may call.
    public func allows(_ origin: String) -> Bool { anyOrigin || origins.contains(origin) }

    public func validate() throws(ConfigurationError) {
        if origins.contains("*") && origins.count > 1 {
            throw ConfigurationError("MEDIAGW_CORS_ORIGINS is either * alone or a list of origins")
        }
        if anyOrigin && allowCredentials {
            throw ConfigurationError(
                "MEDIAGW_CORS_CREDENTIALS cannot be true with MEDIAGW_CORS_ORIGINS=* (browsers refuse it, and it would let any site act for a user)"
            )
        }
        for origin in origins where origin != "*" {
            // the host as written: `url.host` would encode it through ICU's IDNA tables, loading ICU for a check
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host(percentEncoded: true) != nil,
                url.path.isEmpty, url.query == nil, !origin.hasSuffix("/")
            else {
                throw ConfigurationError("MEDIAGW_CORS_ORIGINS: '\(origin)' is not an origin (scheme://host[:port], no path)")
            }
        }
        guard maxAge >= .zero, maxAge <= .seconds(86400) else { throw ConfigurationError("MEDIAGW_CORS_MAX_AGE must be between 0s and 24h") }
    }
}
