import Crypto
import Foundation
import Logging
import Metrics
import NIOCore

/// Settings of resumable uploads.
public struct ResumableSettings: Sendable, Hashable {
    /// How long an upload may take from its creation; never past its set's expiry.
    public var lifetime: Duration
    /// How long the claim of one append lasts without renewal (it is renewed every third of it while the
    /// append runs): a gateway that dies mid-append holds the upload this long at most.
    public var claimLease: Duration

    public init(lifetime: Duration = .seconds(24 * 3600), claimLease: Duration = .seconds(15)) {
        self.lifetime = lifetime
        self.claimLease = claimLease
    }
}

/// What one append did.
public struct AppendOutcome: Sendable {
    /// The upload after the append (its new offset).
    public var upload: ResumableUpload
    /// The media item, when the append completed the upload.
    public var media: Media?
}

/// Files uploaded in pieces, by any protocol (tus 1.0, the IETF resumable-upload draft), under the same
/// rules as multipart uploads: the first bytes decide the type (then the pool, the cap and the count
/// limit, whose place in the set is taken at that moment, under the set's lock), the bytes go to Ceph
/// first (into the object the upload becomes, registered in the pending ledger before its first byte), and
/// the row is committed last through the ``StagedWrite``, with the SHA-256 of the whole file.
///
/// Any gateway serves any piece: the state is in the metadata store, the bytes in the object, and one
/// append at a time holds the upload (a claim in the metadata store, and a fence on the object that a
/// writer whose claim was taken over cannot pass).
public struct ResumableUploadService<Storage: MediaStores>: Sendable {
    public let storage: Storage
    public let pools: StoragePools
    public let uploadSettings: UploadSettings
    public let settings: ResumableSettings
    /// Hashes the bytes as they arrive, its state saved with each landed chunk; `nil`: the completion reads
    /// the object back to hash it.
    public let hashing: (any ResumableSHA256)?
    let staging: StagedWrite<Storage.Blobs, Storage.Ledger>
    let clock: MediaClock
    let logger: Logger

    public init(
        storage: Storage,
        pools: StoragePools,
        uploadSettings: UploadSettings,
        settings: ResumableSettings,
        hashing: (any ResumableSHA256)? = nil,
        clock: MediaClock = .system,
        faults: FaultInjection = .none,
        logger: Logger
    ) {
        self.storage = storage
        self.pools = pools
        self.uploadSettings = uploadSettings
        self.settings = settings
        self.hashing = hashing
        self.staging = StagedWrite(blobs: storage.blobs, ledger: storage.ledger, faults: faults, logger: logger)
        self.clock = clock
        self.logger = logger
    }

    /// The largest file a set of `context` takes of any kind: a declared length beyond is refused at once.
    public func maxLength(for context: UploadContext) -> Int64 {
        MediaKind.allCases.map { uploadSettings.limits[context][$0] }.filter { $0.maxCount > 0 }.map(\.maxBytes).max() ?? 0
    }

    // MARK: Creation, status, termination

    /// Starts an upload into `set` (already authorized): `length` is the declared length, `nil` when the
    /// client defers it. `tooLarge` beyond what the set takes of any kind; `invalidRequest` for an empty file.
    public func create(in set: UploadSet, length: Int64?, metadata: [String: String]) async throws(MediaError) -> ResumableUpload {
        if let length {
            guard length > 0 else { throw MediaError(.invalidRequest, "the file is empty") }
            let most = maxLength(for: set.context)
            guard length <= most else { throw MediaError(.tooLarge, "a \(set.context.rawValue) upload set takes files of at most \(most) bytes") }
        }
        let now = clock.now()
        let upload = ResumableUpload(
            id: MediaID.generate(now: now),
            uploadSetID: set.id,
            ownerID: set.ownerID,
            length: length,
            metadata: metadata,
            createdAt: now,
            expiresAt: min(now.addingTimeInterval(settings.lifetime.seconds), set.expiresAt)
        )
        do {
            try await storage.metadata.createResumableUpload(upload)
        } catch {
            throw MediaError.from(error, doing: "create the upload")
        }
        ResumableMetrics.count("created")
        return upload
    }

    /// The upload, for a client of its set: `notFound` when there is none (or it expired), `forbidden` for
    /// a grant of another set.
    public func upload(_ id: MediaID, for grant: UploadGrant) async throws(MediaError) -> ResumableUpload {
        let upload: ResumableUpload?
        do {
            upload = try await storage.metadata.resumableUpload(id, now: clock.now())
        } catch {
            throw MediaError.from(error, doing: "read the upload")
        }
        guard let upload else { throw MediaError(.notFound, "no upload \(id) (it may have expired, completed long ago or been terminated)") }
        guard upload.uploadSetID == grant.uploadSetID, upload.ownerID == grant.ownerID else {
            throw MediaError(.forbidden, "the upload token is for another upload set")
        }
        return upload
    }

    /// Ends an upload that is not complete and removes what it stored (its partial object, its ledger
    /// entry, its place in the set). A completed upload is not undone: delete its media instead.
    public func terminate(_ id: MediaID, for grant: UploadGrant) async throws(MediaError) {
        let upload = try await self.upload(id, for: grant)
        guard !upload.completed else { throw MediaError(.invalidRequest, "the upload is complete; delete its media instead") }
        try await discard(upload)
        ResumableMetrics.count("terminated")
    }

    /// Forgets an upload and removes its object and ledger entry. An object that cannot be removed now keeps
    /// its entry, which the reconciler finds once the upload's expiry and grace are past.
    func discard(_ upload: ResumableUpload) async throws(MediaError) {
        do {
            _ = try await storage.metadata.removeResumableUpload(upload.id)
        } catch {
            throw MediaError.from(error, doing: "remove the upload")
        }
        guard let placement = upload.placement, !upload.completed else { return }
        await staging.discard([StagedObject(location: placement.location, size: upload.received, ticket: placement.ticket, exclusive: true)])
    }

    // MARK: Appending

    /// Appends `body` at `offset` (which must be the bytes received so far) and completes the upload when
    /// its last byte arrives: with a declared length, when the offset reaches it; with `finish` (the IETF
    /// draft's `Upload-Complete: ?1`), at the end of this body. `length` declares a deferred length.
    ///
    /// Errors are ``MediaError``s: `notFound`, `forbidden`, `offsetMismatch`, `uploadBusy`,
    /// `checksumMismatch` (nothing of this body is kept), `unsupportedMediaType`, `tooLarge` and
    /// `limitExceeded` (the upload is removed), `invalidRequest`; when the client goes away, what arrived is
    /// kept and the body's error rethrown.
    public func append<Body: AsyncSequence>(
        _ id: MediaID,
        for grant: UploadGrant,
        at offset: Int64,
        body: Body,
        length: Int64? = nil,
        checksum: ChunkChecksum? = nil,
        finish: Bool = false
    ) async throws -> AppendOutcome where Body.Element == ByteBuffer {
        let known = try await upload(id, for: grant)
        if let length, let declared = known.length, declared != length {
            throw MediaError(.invalidRequest, "the upload's length is \(declared) bytes, not \(length)")
        }
        let claim = UUID().uuidString
        let upload: ResumableUpload
        do {
            switch try await storage.metadata.claimResumableAppend(id, at: offset, claim: claim, until: leaseEnd(), now: clock.now()) {
            case .claimed(let claimed): upload = claimed
            case .missing: throw MediaError(.notFound, "no upload \(id)")
            case .offsetMismatch(let current):
                throw MediaError(.offsetMismatch, "the upload has received \(current.received) bytes, not \(offset)")
            case .completed(let current):
                throw MediaError(.offsetMismatch, "the upload is complete (\(current.received) bytes)")
            case .busy: throw MediaError(.uploadBusy, "another request is appending to this upload; retry when it has ended")
            }
        } catch {
            throw MediaError.from(error, doing: "claim the upload")
        }
        return try await withLease(id, claim) {
            try await appendClaimed(upload, claim: claim, body: body, length: length ?? upload.length, checksum: checksum, finish: finish)
        }
    }

    private func leaseEnd() -> Date { clock.now().addingTimeInterval(settings.claimLease.seconds) }

    /// Runs `body` while renewing the claim every third of its lease.
    private func withLease<T: Sendable>(_ id: MediaID, _ claim: String, _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: settings.claimLease / 3)
                    do {
                        try await storage.metadata.renewResumableClaim(id, claim: claim, until: leaseEnd())
                    } catch let error as MetadataStoreError where error.code == .conflict {
                        return  // taken over: the writes' fence stops this append
                    } catch {
                        logger.notice("could not renew an upload's claim", metadata: ["upload.id": "\(id)", "error": "\(error)"])
                    }
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    private func appendClaimed<Body: AsyncSequence>(
        _ claimed: ResumableUpload,
        claim: String,
        body: Body,
        length: Int64?,
        checksum: ChunkChecksum?,
        finish: Bool
    ) async throws -> AppendOutcome where Body.Element == ByteBuffer {
        var upload = claimed
        var iterator = body.makeAsyncIterator()
        let digest = ChunkDigest(checksum?.algorithm)
        var prefix: [ByteBuffer] = []
        /// Bytes acknowledged by earlier requests before this one: where the offset goes back to when this
        /// request's body is refused.
        var acknowledged = upload.received

        // 1. until placed, the first bytes are kept with the upload's state; once there are enough of them
        //    they decide the type, the pool, the cap and the place in the set
        if upload.placement == nil {
            var head = upload.head
            while head.count < MediaSniffer.prefixLength, let chunk = try await nextPiece(&iterator, digest) {
                prefix.append(chunk)
                head += chunk.readableBytesView.prefix(MediaSniffer.prefixLength - head.count)
            }
            let arrived = prefix.map(\.readableBytes).reduce(0, +)
            let total = upload.received + Int64(arrived)
            let lastByteCame = finish || (length.map { total >= $0 } ?? false)
            if head.count < MediaSniffer.prefixLength && !lastByteCame {
                // too few bytes to know the type yet: keep them with the state (the checksum was checked above)
                try digest.verify(checksum)
                try await record(upload.id, claim, received: total, head: head, length: length, hash: nil, release: true)
                upload.received = total
                upload.head = head
                upload.length = length ?? upload.length
                return AppendOutcome(upload: upload, media: nil)
            }
            guard !head.isEmpty else { throw MediaError(.invalidRequest, "the file is empty") }
            upload = try await place(upload, head: head, claim: claim, length: length)
            // the kept first bytes go into the object before this body's
            let kept = upload.head
            if !kept.isEmpty { prefix.insert(ByteBuffer(bytes: kept), at: 0) }
            acknowledged = Int64(kept.count)
            upload.received = 0
            upload.head = []
        }
        guard let placement = upload.placement else { throw MediaError(.internal, "the upload has no object") }
        let limit = uploadSettings.limits[try await setContext(upload)][placement.kind]

        // 2. the bytes, at the offset, into the object this append has claimed, hashed on the way from where
        //    the last append left the hash (from nothing for the object's first bytes); without that state
        //    the completion reads the object back
        let start = upload.received
        let hashState = upload.hashState
        let tracker = hashing.flatMap { hashing in
            start == 0 ? hashing.start() : hashState.flatMap { hashing.resume($0, at: start) }
        }.map(UploadHashTracker.init)
        let cap = min(limit.maxBytes, length ?? limit.maxBytes)
        let source = CappedPieces(prefix: prefix, rest: iterator, digest: digest, tracker: tracker, remaining: cap - start)
        let written: Int64
        let id = upload.id
        let acknowledgedHash = { tracker?.hash(at: acknowledged) }
        let metadata = storage.metadata
        let lease = settings.claimLease
        let clock = self.clock
        do {
            try await storage.blobs.claim(placement.location, for: claim)
            written = try await storage.blobs.write(placement.location, from: source, at: start, writer: claim) { landed in
                // without a checksum to check at the end, every chunk that lands is acknowledged at once
                guard checksum == nil else { return }
                try await metadata.recordResumableProgress(
                    id,
                    claim: claim,
                    received: start + landed,
                    head: [],
                    length: length,
                    hashState: tracker?.hash(at: start + landed)?.saved(),
                    until: clock.now().addingTimeInterval(lease.seconds)
                )
            }
        } catch let error as CappedPieces<Body.AsyncIterator>.Overflow {
            try? await record(upload.id, claim, received: acknowledged, head: [], length: length, hash: acknowledgedHash(), release: true)
            if start + error.attempted > limit.maxBytes {
                try await discard(upload)
                throw MediaError(.tooLarge, "a \(placement.kind.rawValue) may have at most \(limit.maxBytes) bytes")
            }
            throw MediaError(.invalidRequest, "more bytes than the upload's declared length of \(length ?? 0)")
        } catch let error as MediaError {
            throw error
        } catch let error as BlobStoreError {
            if error.code == .superseded { throw MediaError(.uploadBusy, "another request took this upload over") }
            throw MediaError.from(error, doing: "store the piece")
        } catch let error as MetadataStoreError {
            if error.code == .conflict { throw MediaError(.uploadBusy, "another request took this upload over") }
            throw MediaError.from(error, doing: "record the piece")
        } catch {
            // the client went away: what landed was acknowledged chunk by chunk (when no checksum asked for
            // more); the claim is given up
            try? await record(upload.id, claim, received: nil, head: [], length: length, hash: nil, release: true)
            throw error
        }
        let received = start + written
        do {
            try digest.verify(checksum)
        } catch {
            // nothing of this body is kept: the offset (and its hash) stays where it was
            try? await record(upload.id, claim, received: acknowledged, head: [], length: length, hash: acknowledgedHash(), release: true)
            throw error
        }

        // 3. complete when the last byte came, else acknowledge and give up the claim
        let isComplete = finish || (length.map { received >= $0 } ?? false)
        let hash = tracker?.hash(at: received)
        if finish, let length, received != length {
            try? await record(upload.id, claim, received: received, head: [], length: nil, hash: hash, release: true)
            throw MediaError(.invalidRequest, "the upload ends at \(received) bytes, not at its declared length of \(length)")
        }
        guard isComplete else {
            try await record(upload.id, claim, received: received, head: [], length: length, hash: hash, release: true)
            upload.received = received
            upload.length = length ?? upload.length
            return AppendOutcome(upload: upload, media: nil)
        }
        let media = try await complete(upload, placement: placement, size: received, claim: claim, hash: hash)
        upload.received = received
        upload.length = received
        upload.completed = true
        return AppendOutcome(upload: upload, media: media)
    }

    /// The next non-empty piece of the body, counted into the request's checksum.
    private func nextPiece<Iterator: AsyncIteratorProtocol>(_ iterator: inout Iterator, _ digest: ChunkDigest) async throws -> ByteBuffer?
    where Iterator.Element == ByteBuffer {
        while let piece = try await iterator.next() {
            guard piece.readableBytes > 0 else { continue }
            digest.update(piece)
            return piece
        }
        return nil
    }

    private func setContext(_ upload: ResumableUpload) async throws(MediaError) -> UploadContext {
        let set: UploadSet?
        do {
            set = try await storage.metadata.uploadSet(upload.uploadSetID)
        } catch {
            throw MediaError.from(error, doing: "read the upload set")
        }
        guard let set else { throw MediaError(.notFound, "no upload set \(upload.uploadSetID)") }
        return set.context
    }

    /// Sniffs the first bytes and gives the upload its object and its place in the set; an upload refused
    /// here is removed.
    private func place(_ upload: ResumableUpload, head: [UInt8], claim: String, length: Int64?) async throws -> ResumableUpload {
        let set: UploadSet
        do {
            guard let found = try await storage.metadata.uploadSet(upload.uploadSetID) else { throw MediaError(.notFound, "no upload set") }
            set = found
        } catch {
            throw MediaError.from(error, doing: "read the upload set")
        }
        guard let type = MediaSniffer.sniff(head) else {
            try await discard(upload)
            throw MediaError(.unsupportedMediaType, "the content is not a supported photo, audio or video format")
        }
        let limit = uploadSettings.limits[set.context][type.kind]
        guard limit.maxCount > 0 else {
            try await discard(upload)
            throw MediaError(.limitExceeded, "a \(set.context.rawValue) upload set takes no \(type.kind.rawValue)")
        }
        if let length, length > limit.maxBytes {
            try await discard(upload)
            throw MediaError(.tooLarge, "a \(type.kind.rawValue) may have at most \(limit.maxBytes) bytes")
        }
        // Ceph first: the ledger entry before the object's first byte. It is due for the reconciler only once
        // the upload has expired (and the grace after), because the upload may take that long.
        let location = ObjectLocation(pool: pools.pool(for: type.kind), key: "\(set.id)/\(upload.id)")
        let ticket: PendingTicket
        do {
            ticket = try await storage.ledger.register(
                location,
                PendingEntry(mediaID: upload.id, uploadSetID: set.id, registeredAt: upload.expiresAt)
            )
        } catch {
            throw MediaError.from(error, doing: "register the upload's object")
        }
        let placement = ResumablePlacement(kind: type.kind, mime: type.mime, ticket: ticket)
        do {
            var placed = try await storage.metadata.placeResumableUpload(
                upload.id,
                claim: claim,
                placement: placement,
                maxCount: limit.maxCount,
                now: clock.now()
            )
            placed.head = upload.head
            return placed
        } catch {
            try? await storage.ledger.complete(ticket)
            let mapped = MediaError.from(error, doing: "place the upload")
            switch mapped.code {
            case .limitExceeded, .setCommitted, .setExpired:
                try await discard(upload)
                throw mapped.code == .limitExceeded ? UploadService<Storage>.limitError(set, type.kind, limit) : mapped
            default:
                if (error as? MetadataStoreError)?.code == .conflict { throw MediaError(.uploadBusy, "another request took this upload over") }
                throw mapped
            }
        }
    }

    /// Seals the object and commits its row through the staged write, with the SHA-256 of its bytes: `hash`
    /// when it is of all `size` of them, else read back from the object.
    private func complete(
        _ upload: ResumableUpload,
        placement: ResumablePlacement,
        size: Int64,
        claim: String,
        hash: (any ResumableSHA256State)?
    ) async throws -> Media {
        let sha256: String
        do {
            try await storage.blobs.seal(placement.location, size: size, writer: claim)
            if let hash, hash.byteCount == size {
                sha256 = hash.hexDigest()
                ResumableMetrics.count("hashed_as_received")
            } else {
                sha256 = try await readBackDigest(placement.location, size: size)
                ResumableMetrics.count("hashed_by_reading_back")
            }
        } catch let error as BlobStoreError where error.code == .superseded {
            throw MediaError(.uploadBusy, "another request took this upload over")
        } catch {
            throw MediaError.from(error, doing: "seal the upload")
        }
        return try await commit(upload, placement: placement, size: size, sha256: sha256, claim: claim)
    }

    /// The SHA-256 of the object's first `size` bytes, read back from the store.
    private func readBackDigest(_ location: ObjectLocation, size: Int64) async throws -> String {
        var hasher = SHA256()
        var hashed: Int64 = 0
        for try await chunk in storage.blobs.read(location, range: 0..<size) {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            hashed += Int64(chunk.readableBytes)
        }
        guard hashed == size else { throw MediaError(.internal, "the upload's object has \(hashed) bytes, not \(size)") }
        return hasher.finalize().hexEncoded
    }

    /// Commits the completed upload's row through the staged write.
    private func commit(_ upload: ResumableUpload, placement: ResumablePlacement, size: Int64, sha256: String, claim: String) async throws -> Media {
        let new = NewMedia(
            id: upload.id,
            kind: placement.kind,
            ownerID: upload.ownerID,
            uploadSetID: upload.uploadSetID,
            size: size,
            sha256: sha256,
            mime: placement.mime,
            location: placement.location,
            trace: TraceParent.current()
        )
        let object = StagedObject(location: placement.location, size: size, ticket: placement.ticket, exclusive: true)
        do {
            let media = try await staging.commit([object]) {
                try await storage.metadata.completeResumableUpload(upload.id, claim: claim, media: new, now: clock.now())
            }
            ResumableMetrics.count("completed")
            UploadMetrics.count(placement.kind, "stored")
            Correlation.stored(media)
            return media
        } catch {
            let mapped = MediaError.from(error, doing: "record the upload")
            if mapped.code == .setCommitted || mapped.code == .setExpired {
                // the object went with the refused commit; the upload and its place go too
                _ = try? await storage.metadata.removeResumableUpload(upload.id)
            }
            if (error as? MetadataStoreError)?.code == .conflict { throw MediaError(.uploadBusy, "another request took this upload over") }
            throw mapped
        }
    }

    /// Records progress under the claim, giving the claim up when `release`; `received` `nil` keeps what the
    /// chunks recorded (and the hash recorded with it). `hash` is of the `received` bytes, when known.
    private func record(
        _ id: MediaID,
        _ claim: String,
        received: Int64?,
        head: [UInt8],
        length: Int64?,
        hash: (any ResumableSHA256State)?,
        release: Bool
    ) async throws {
        if let received {
            try await storage.metadata.recordResumableProgress(
                id,
                claim: claim,
                received: received,
                head: head,
                length: length,
                hashState: hash.flatMap { $0.byteCount == received ? $0.saved() : nil },
                until: release ? nil : leaseEnd()
            )
        } else if let current = try await storage.metadata.resumableUpload(id, now: clock.now()) {
            try await storage.metadata.recordResumableProgress(
                id,
                claim: claim,
                received: current.received,
                head: current.head,
                length: length,
                hashState: current.hashState,
                until: nil
            )
        }
    }
}

/// The checksum of one request's body, in the algorithm the client asked for.
final class ChunkDigest: @unchecked Sendable {
    private var sha1: Insecure.SHA1?
    private var sha256: SHA256?

    init(_ algorithm: ChunkChecksum.Algorithm?) {
        switch algorithm {
        case .sha1: sha1 = Insecure.SHA1()
        case .sha256: sha256 = SHA256()
        case nil: break
        }
    }

    func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            sha1?.update(bufferPointer: bytes)
            sha256?.update(bufferPointer: bytes)
        }
    }

    func verify(_ expected: ChunkChecksum?) throws(MediaError) {
        guard let expected else { return }
        let actual: [UInt8]
        switch expected.algorithm {
        case .sha1: actual = Array(sha1!.finalize())
        case .sha256: actual = Array(sha256!.finalize())
        }
        guard actual == expected.digest else {
            throw MediaError(.checksumMismatch, "the \(expected.algorithm.rawValue) checksum of the body does not match Upload-Checksum")
        }
    }
}

/// The pieces of an append: what was read ahead to sniff, then the rest of the body, counted into the
/// checksum, stopped when they pass what the upload may still take.
struct CappedPieces<Iterator: AsyncIteratorProtocol>: AsyncSequence where Iterator.Element == ByteBuffer {
    typealias Element = ByteBuffer

    /// More bytes came than the upload may take; `attempted` counts this append's bytes so far.
    struct Overflow: Error {
        var attempted: Int64
    }

    let prefix: [ByteBuffer]
    let rest: Iterator
    let digest: ChunkDigest
    /// Hashes what is handed to the store, when the upload's hash is kept as it arrives.
    let tracker: UploadHashTracker?
    let remaining: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        var prefix: [ByteBuffer]
        var rest: Iterator
        let digest: ChunkDigest
        let tracker: UploadHashTracker?
        let remaining: Int64
        var delivered: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            let piece: ByteBuffer
            if !prefix.isEmpty {
                piece = prefix.removeFirst()
            } else {
                guard let next = try await rest.next() else { return nil }
                digest.update(next)
                piece = next
            }
            delivered += Int64(piece.readableBytes)
            guard delivered <= remaining else { throw Overflow(attempted: delivered) }
            tracker?.hand(piece)
            return piece
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(prefix: prefix, rest: rest, digest: digest, tracker: tracker, remaining: remaining)
    }
}

/// Counters of resumable uploads by what happened.
enum ResumableMetrics {
    static let events = MetricFamily<Counter>.counters("mediagw_resumable_uploads_total", labels: ["event"])

    static func count(_ event: String, by amount: Int = 1) {
        Self.events(event).increment(by: amount)
    }
}
