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

    public init(limits: UploadLimits = .defaults, draftLifetime: Duration = .seconds(24 * 3600),
                tokenLifetime: Duration = .seconds(3600), partTimeout: Duration = .seconds(15 * 60)) {
        self.limits = limits
        self.draftLifetime = draftLifetime
        self.tokenLifetime = tokenLifetime
        self.partTimeout = partTimeout
    }
}

/// Stores uploaded originals: Ceph first, then the row.
///
/// For each file: the first bytes decide the type (never the client's name or Content-Type); the object is
/// recorded in the pending index, streamed into its kind's pool while it is counted, hashed and capped,
/// and only then is its row committed under the set's lock, with its event. Whatever fails, the object
/// is removed again; what a crash leaves behind, the ``Reconciler`` finds in the pending index.
public struct UploadService<Metadata: MetadataStore, Objects: ObjectStore>: Sendable {
    public let metadata: Metadata
    public let objects: Objects
    public let pools: StoragePools
    public let settings: UploadSettings
    public let tokens: UploadTokenSigner
    let pending: PendingIndex<Objects>
    let logger: Logger

    public init(metadata: Metadata, objects: Objects, pools: StoragePools, settings: UploadSettings, tokens: UploadTokenSigner, logger: Logger) {
        self.metadata = metadata
        self.objects = objects
        self.pools = pools
        self.settings = settings
        self.tokens = tokens
        self.pending = PendingIndex(objects: objects)
        self.logger = logger
    }

    /// Checks an upload token against the set named in the request and returns the set, ready for uploads.
    /// Every error is a ``MediaError``: `unauthorized`/`tokenExpired` (bad token), `forbidden` (a token of
    /// another set or owner), `notFound`, `setCommitted`, `setExpired`.
    public func authorize(token: String, for setID: UploadSetID, now: Date = Date()) async throws -> UploadSet {
        let grant = try tokens.verify(token, now: now)
        guard grant.uploadSetID == setID else {
            throw MediaError(.forbidden, "the upload token is for another upload set")
        }
        let set: UploadSet?
        do {
            set = try await metadata.uploadSet(setID)
        } catch {
            throw MediaError.from(error, doing: "read the upload set")
        }
        guard let set else { throw MediaError(.notFound, "no upload set \(setID)") }
        guard set.ownerID == grant.ownerID else { throw MediaError(.forbidden, "the upload token is for another owner") }
        try Self.checkAcceptsUploads(set, now: now)
        return set
    }

    static func checkAcceptsUploads(_ set: UploadSet, now: Date) throws(MediaError) {
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
    public func storeOriginal<Body: AsyncSequence>(_ body: Body, into set: UploadSet, now: Date = Date()) async throws -> Media
    where Body.Element == ByteBuffer {
        var outcome = "error"
        var kindLabel = "unknown"
        defer { Counter(label: "mediagw_uploads_total", dimensions: [("kind", kindLabel), ("outcome", outcome)]).increment() }
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
            kindLabel = type.kind.rawValue
            let limit = settings.limits[set.context][type.kind]
            guard limit.maxCount > 0 else {
                throw MediaError(.limitExceeded, "a \(set.context.rawValue) upload set takes no \(type.kind.rawValue)")
            }
            // Fail fast, before any byte is stored, when the set was already full when the request came in.
            // The check that counts is the one made under the set's lock when the row is recorded.
            guard set.liveCounts[type.kind] < limit.maxCount else { throw Self.limitError(set, type.kind, limit) }

            // 2. Ceph first: pending index entry, then the bytes, counted, hashed and capped as they stream
            let mediaID = MediaID.generate(now: now)
            let location = ObjectLocation(pool: pools.pool(for: type.kind), key: "\(set.id)/\(mediaID)")
            let meter = UploadMeter(maxBytes: limit.maxBytes, deadline: .now + settings.partTimeout)
            let ticket: PendingTicket
            do {
                ticket = try await pending.register(location, PendingEntry(mediaID: mediaID, uploadSetID: set.id, registeredAt: now))
            } catch {
                throw MediaError.from(error, doing: "register the upload")
            }
            let size: Int64
            do {
                size = try await objects.write(location, from: MeteredBody(prefix: prefix, rest: iterator, meter: meter), mode: .createExclusive)
            } catch {
                await discard(location, ticket)
                throw error is ObjectStoreError ? MediaError.from(error, doing: "store the file") : error
            }

            // 3. then the row, under the set's lock, with its event
            let media: Media
            do {
                media = try await metadata.recordUpload(
                    NewMedia(id: mediaID, kind: type.kind, ownerID: set.ownerID, uploadSetID: set.id, size: size,
                             sha256: meter.finalizeHex(), mime: type.mime, location: location),
                    maxCount: limit.maxCount, now: now)
            } catch {
                await discard(location, ticket)
                let mapped = MediaError.from(error, doing: "record the upload")
                throw mapped.code == .limitExceeded ? Self.limitError(set, type.kind, limit) : mapped
            }
            // The entry goes in the background, grouped with other uploads' entries; the answer need not wait.
            // Were it lost (a crash now), the reconciler would find the row and only clear the entry.
            Task { [pending, logger] in
                do {
                    try await pending.complete(ticket)
                } catch {
                    logger.warning("could not complete a pending entry", metadata: ["object": "\(location)", "error": "\(error)"])
                }
            }
            outcome = "stored"
            return media
        } catch let error as MediaError {
            outcome = error.code.rawValue
            throw error
        }
    }

    static func limitError(_ set: UploadSet, _ kind: MediaKind, _ limit: KindLimit) -> MediaError {
        MediaError(.limitExceeded, "a \(set.context.rawValue) upload set takes at most \(limit.maxCount) \(kind.rawValue) item(s)")
    }

    /// Removes an object that will get no row, then its pending entry. If the object cannot be removed now
    /// the entry stays, and the reconciler removes both later.
    func discard(_ location: ObjectLocation, _ ticket: PendingTicket) async {
        do {
            try await objects.remove(location)
        } catch let error as ObjectStoreError where error.code == .notFound {
        } catch {
            logger.warning("could not remove an object without a row; the reconciler will", metadata: ["object": "\(location)", "error": "\(error)"])
            return
        }
        do {
            try await pending.complete(ticket)
        } catch {
            logger.warning("could not complete a pending entry", metadata: ["object": "\(location)", "error": "\(error)"])
        }
    }
}
