import Foundation
import Logging
import Metrics
import NIOCore

/// Settings of the upload use cases.
public struct UploadSettings: Sendable, Hashable {
    public var limits: UploadLimits
    /// How long a draft set lives before it expires and its media are removed.
    public var draftLifetime: Duration
    /// How long an upload token is valid.
    public var tokenLifetime: Duration
    /// The longest one file may take to arrive; the reconciler's grace period must exceed it.
    public var partTimeout: Duration

    public init(
        limits: UploadLimits = .defaults,
        draftLifetime: Duration = .seconds(24 * 3600),
        tokenLifetime: Duration = .seconds(3600),
        partTimeout: Duration = .seconds(15 * 60)
    ) {
        self.limits = limits
        self.draftLifetime = draftLifetime
        self.tokenLifetime = tokenLifetime
        self.partTimeout = partTimeout
    }
}

/// Stores uploaded originals: Ceph first, then the row.
///
/// For each file: the first bytes decide the type (never the client's name or Content-Type); the object is
/// written through the ``StagedWrite`` (pending ledger, then the bytes, counted, hashed and capped as they
/// stream), and only then is its row committed under the set's lock, with its event.
public struct UploadService<Storage: MediaStores>: Sendable {
    public let storage: Storage
    public let pools: StoragePools
    public let settings: UploadSettings
    let staging: StagedWrite<Storage.Blobs, Storage.Ledger>
    let clock: MediaClock
    let logger: Logger

    public init(
        storage: Storage,
        pools: StoragePools,
        settings: UploadSettings,
        clock: MediaClock = .system,
        faults: FaultInjection = .none,
        logger: Logger
    ) {
        self.storage = storage
        self.pools = pools
        self.settings = settings
        self.staging = StagedWrite(blobs: storage.blobs, ledger: storage.ledger, faults: faults, logger: logger)
        self.clock = clock
        self.logger = logger
    }

    /// The set, if it takes uploads now. Every error is a ``MediaError``: `notFound`, `setCommitted`,
    /// `setExpired`, or a store's `unavailable`.
    public func uploadSet(_ id: UploadSetID) async throws(MediaError) -> UploadSet {
        let set: UploadSet?
        do {
            set = try await storage.metadata.uploadSet(id)
        } catch {
            throw MediaError.from(error, doing: "read the upload set")
        }
        guard let set else { throw MediaError(.notFound, "no upload set \(id)") }
        try Self.checkAcceptsUploads(set, now: clock.now())
        return set
    }

    /// Checks an upload grant against the set named in the request and returns the set, ready for uploads:
    /// `forbidden` for a grant of another set or owner, else as ``uploadSet(_:)``.
    public func authorize(_ grant: UploadGrant, for setID: UploadSetID) async throws(MediaError) -> UploadSet {
        guard grant.uploadSetID == setID else {
            throw MediaError(.forbidden, "the upload token is for another upload set")
        }
        let set = try await uploadSet(setID)
        guard set.ownerID == grant.ownerID else { throw MediaError(.forbidden, "the upload token is for another owner") }
        return set
    }

    /// Throws `setCommitted` or `setExpired` unless the set takes uploads at `now`.
    public static func checkAcceptsUploads(_ set: UploadSet, now: Date) throws(MediaError) {
        switch set.state {
        case .committed: throw MediaError(.setCommitted, "the upload set is committed and takes no more uploads")
        case .expired: throw MediaError(.setExpired, "the upload set has expired")
        case .draft where set.expiresAt <= now: throw MediaError(.setExpired, "the upload set has expired")
        case .draft: return
        }
    }

    /// Stores one file of `set` from its byte stream and returns its committed row. Errors are
    /// ``MediaError``s; the stream's own errors (a client that went away, a malformed body) are rethrown
    /// as they are, after cleanup.
    public func storeOriginal<Body: AsyncSequence>(_ body: Body, into set: UploadSet) async throws -> Media
    where Body.Element == ByteBuffer {
        var outcome = "error"
        var kind: MediaKind?
        defer { UploadMetrics.count(kind, outcome) }
        do {
            // 1. the first bytes decide the type, and with it the pool, the size cap and the count limit
            var iterator = body.makeAsyncIterator()
            var prefix: [ByteBuffer] = []
            var head: [UInt8] = []
            while head.count < MediaSniffer.prefixLength, let chunk = try await iterator.next() {
                guard chunk.readableBytes > 0 else { continue }
                prefix.append(chunk)
                head += chunk.readableBytesView.prefix(MediaSniffer.prefixLength - head.count)
            }
            guard !head.isEmpty else { throw MediaError(.invalidRequest, "the file is empty") }
            guard let type = MediaSniffer.sniff(head) else {
                throw MediaError(.unsupportedMediaType, "the content is not a supported photo, audio or video format")
            }
            kind = type.kind
            let limit = settings.limits[set.context][type.kind]
            guard limit.maxCount > 0 else {
                throw MediaError(.limitExceeded, "a \(set.context.rawValue) upload set takes no \(type.kind.rawValue)")
            }
            // Fail fast, before any byte is stored, when the set was already full when the request came in.
            // The check that counts is the one made under the set's lock when the row is recorded.
            guard set.liveCounts[type.kind] < limit.maxCount else { throw Self.limitError(set, type.kind, limit) }

            // 2. Ceph first: the bytes, counted, hashed and capped as they stream
            let now = clock.now()
            let mediaID = MediaID.generate(now: now)
            let location = ObjectLocation(pool: pools.pool(for: type.kind), key: "\(set.id)/\(mediaID)")
            let meter = UploadMeter(maxBytes: limit.maxBytes, deadline: .now + settings.partTimeout)
            let object: StagedObject
            do {
                object = try await staging.write(
                    location,
                    from: MeteredBody(prefix: prefix, rest: iterator, meter: meter),
                    mode: .createExclusive,
                    entry: PendingEntry(mediaID: mediaID, uploadSetID: set.id, registeredAt: now)
                )
            } catch {
                throw error is BlobStoreError ? MediaError.from(error, doing: "store the file") : error
            }

            // 3. then the row, under the set's lock, with its event
            let new = NewMedia(
                id: mediaID,
                kind: type.kind,
                ownerID: set.ownerID,
                uploadSetID: set.id,
                size: object.size,
                sha256: meter.finalizeHex(),
                mime: type.mime,
                location: location,
                trace: TraceParent.current()
            )
            let media: Media
            do {
                media = try await staging.commit([object]) {
                    try await storage.metadata.recordUpload(new, maxCount: limit.maxCount, now: clock.now())
                }
            } catch {
                let mapped = MediaError.from(error, doing: "record the upload")
                throw mapped.code == .limitExceeded ? Self.limitError(set, type.kind, limit) : mapped
            }
            outcome = "stored"
            Correlation.stored(media)
            return media
        } catch let error as MediaError {
            outcome = error.code.rawValue
            Correlation.note(.set(set.id), "refused a file", error: "\(error.code.rawValue): \(error.message)")
            throw error
        }
    }

    static func limitError(_ set: UploadSet, _ kind: MediaKind, _ limit: KindLimit) -> MediaError {
        MediaError(.limitExceeded, "a \(set.context.rawValue) upload set takes at most \(limit.maxCount) \(kind.rawValue) item(s)")
    }
}

/// The upload counters.
enum UploadMetrics {
    static let uploads = MetricFamily<Counter>.counters("mediagw_uploads_total", labels: ["kind", "outcome"])

    static func count(_ kind: MediaKind?, _ outcome: String) {
        Self.uploads(kind?.rawValue ?? "unknown", outcome).increment()
    }
}
