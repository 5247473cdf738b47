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
public struct HTTPConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var maxRequestBytes: Int64
    public var multipart: MultipartLimits
    public var idleTimeout: Duration
    public var retryAfter: Duration
    /// Chunks the origin's downloads may hold read ahead of their sockets, across the process.
    public var originReadAhead: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        maxRequestBytes: Int64 = 40 << 20,
        multipart: MultipartLimits = MultipartLimits(),
        idleTimeout: Duration = .seconds(60),
        retryAfter: Duration = .seconds(5),
        originReadAhead: Int = 32
    ) {
        self.host = host
        self.port = port
        self.maxRequestBytes = maxRequestBytes
        self.multipart = multipart
        self.idleTimeout = idleTimeout
        self.retryAfter = retryAfter
        self.originReadAhead = originReadAhead
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
    }
}
