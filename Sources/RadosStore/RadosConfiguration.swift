import MediaCore

/// How the gateway connects to Ceph.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_CEPH_CONF` | `/etc/ceph/ceph.conf` | ceph.conf with `mon_host` |
/// | `MEDIAGW_CEPH_CLIENT` | `mediagw` | cephx client id (without `client.`) |
/// | `MEDIAGW_CEPH_KEYRING` | from ceph.conf | keyring holding that client's key |
/// | `MEDIAGW_CEPH_MOUNT_TIMEOUT` | `10s` | `client_mount_timeout`: how long connecting may take (librados counts whole seconds; fractions round up) |
/// | `MEDIAGW_CEPH_OP_TIMEOUT` | `30s` | `rados_osd_op_timeout` and `rados_mon_op_timeout`: must outlast the cluster noticing a dead OSD host (`osd_heartbeat_grace`, 20 s by default, then re-peering), or writes fail that would have completed |
/// | `MEDIAGW_CEPH_OBJECTER_TIMEOUT` | `3s` | `objecter_timeout`; must stay below the op timeout so the client refreshes its OSD map and recovers after an OSD restart |
/// | `MEDIAGW_CEPH_RECONNECT_AFTER` | `60s` | when operations have kept timing out for this long, the gateway opens a new Ceph client and retires the old one once its operations end (a blocklisted client is replaced at once): a librados client whose session to an OSD failed authentication while that OSD restarted stays cut off from it until the OSD map changes; `0` never reconnects; otherwise at least the op timeout |
/// | `MEDIAGW_CEPH_CHUNK_SIZE` | `1MiB` | size of each RADOS write of a streamed upload |
/// | `MEDIAGW_CEPH_MAX_READS` | `16` | RADOS reads in flight per process at most (downloads beyond wait their turn): bounds the memory of read buffers whatever the number of clients |
/// | `MEDIAGW_CEPH_READ_CHUNK_SIZE` | `1MiB` | size of each RADOS read of a streamed download (the last may be shorter) |
/// | `MEDIAGW_CEPH_READ_BUFFERS` | `32` | chunk-size buffers that streamed reads may hold at once per process (read, being sent, read ahead); a read waits for one to be freed |
/// | `MEDIAGW_CEPH_READ_SMALL_BUFFERS` | `128` | 256 KiB buffers, likewise, for the reads of at most 256 KiB (a photo rendition whole, the tail of a video) when the chunk size is larger: the memory of downloads is at most 32 MiB + 32 MiB by default, whatever the number of clients |
/// | `MEDIAGW_CEPH_READ_BUFFER_WAIT` | `1s` | how long a read waits for a buffer of that budget before it takes one outside it (counted in `mediagw_rados_read_buffers_overdrawn_total`): clients that stop reading keep their buffers until their connections close, and must not stop every other download |
/// | `MEDIAGW_CEPH_NAMESPACE` | empty | RADOS namespace of every object in every pool (one deployment, or one test suite, per namespace) |
public struct RadosConfiguration: Sendable, Hashable {
    public var configPath: String
    public var clientID: String
    public var keyringPath: String?
    public var mountTimeout: Duration
    public var operationTimeout: Duration
    public var objecterTimeout: Duration
    /// How long operations may only time out before the client is replaced (`.zero`: never).
    public var reconnectAfter: Duration
    public var chunkSize: Int
    public var readChunkSize: Int
    public var maxReadsInFlight: Int
    /// Read buffers of the read chunk size a process may hold at once (``ReadBuffers``).
    public var readBuffers: Int
    /// Small read buffers (256 KiB) a process may hold at once, when the read chunk size is larger.
    public var readSmallBuffers: Int
    /// How long a read waits for one of those before it takes one outside the budget.
    public var readBufferWait: Duration
    /// The RADOS namespace of every object (empty: the default namespace).
    public var namespace: String

    public init(
        configPath: String = "/etc/ceph/ceph.conf",
        clientID: String = "mediagw",
        keyringPath: String? = nil,
        mountTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(30),
        objecterTimeout: Duration = .seconds(3),
        reconnectAfter: Duration = .seconds(60),
        chunkSize: Int = 1 << 20,
        readChunkSize: Int = 1 << 20,
        maxReadsInFlight: Int = 16,
        readBuffers: Int = 32,
        readSmallBuffers: Int = 128,
        readBufferWait: Duration = .seconds(1),
        namespace: String = ""
    ) {
        self.configPath = configPath
        self.clientID = clientID
        self.keyringPath = keyringPath
        self.mountTimeout = mountTimeout
        self.operationTimeout = operationTimeout
        self.objecterTimeout = objecterTimeout
        self.reconnectAfter = reconnectAfter
        self.chunkSize = chunkSize
        self.readChunkSize = readChunkSize
        self.maxReadsInFlight = maxReadsInFlight
        self.readBuffers = readBuffers
        self.readSmallBuffers = readSmallBuffers
        self.readBufferWait = readBufferWait
        self.namespace = namespace
    }

    public func validate() throws(ConfigurationError) {
        guard !clientID.isEmpty, !clientID.hasPrefix("client.") else {
            throw ConfigurationError("MEDIAGW_CEPH_CLIENT must be a client id without the 'client.' prefix")
        }
        guard mountTimeout >= .seconds(1), operationTimeout >= .seconds(1) else {
            throw ConfigurationError("Ceph timeouts must be at least one second")
        }
        guard objecterTimeout >= .seconds(1), wholeSeconds(objecterTimeout) < wholeSeconds(operationTimeout) else {
            throw ConfigurationError(
                "MEDIAGW_CEPH_OBJECTER_TIMEOUT must be at least 1s and below MEDIAGW_CEPH_OP_TIMEOUT, or the client never recovers after an OSD restart"
            )
        }
        guard reconnectAfter == .zero || reconnectAfter >= operationTimeout else {
            throw ConfigurationError("MEDIAGW_CEPH_RECONNECT_AFTER must be 0 (never) or at least MEDIAGW_CEPH_OP_TIMEOUT")
        }
        guard chunkSize >= 64 << 10, chunkSize <= 64 << 20 else {
            throw ConfigurationError("MEDIAGW_CEPH_CHUNK_SIZE must be between 64KiB and 64MiB")
        }
        guard readChunkSize >= 16 << 10, readChunkSize <= 64 << 20 else {
            throw ConfigurationError("MEDIAGW_CEPH_READ_CHUNK_SIZE must be between 16KiB and 64MiB")
        }
        guard (1...4096).contains(maxReadsInFlight) else {
            throw ConfigurationError("MEDIAGW_CEPH_MAX_READS must be between 1 and 4096")
        }
        guard (1...4096).contains(readBuffers) else {
            throw ConfigurationError("MEDIAGW_CEPH_READ_BUFFERS must be between 1 and 4096")
        }
        guard (1...4096).contains(readSmallBuffers) else {
            throw ConfigurationError("MEDIAGW_CEPH_READ_SMALL_BUFFERS must be between 1 and 4096")
        }
        guard readBufferWait >= .milliseconds(1), readBufferWait <= operationTimeout else {
            throw ConfigurationError("MEDIAGW_CEPH_READ_BUFFER_WAIT must be between 1ms and MEDIAGW_CEPH_OP_TIMEOUT")
        }
        guard namespace.utf8.count <= 64, namespace.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
            throw ConfigurationError("MEDIAGW_CEPH_NAMESPACE must be at most 64 printable ASCII characters without spaces or /")
        }
    }
}
