import Foundation
import Logging
import NIOCore

/// An object written Ceph-first whose row is not committed yet.
public struct StagedObject: Sendable, Hashable, Codable {
    public var location: ObjectLocation
    /// Bytes written.
    public var size: Int64
    /// Its entry in the pending ledger.
    public var ticket: PendingTicket
    /// Created exclusively: nothing else was or will be at this location, so it may be removed when its
    /// row is refused. An object written in place (a rendition, whose key a previous run may have given a
    /// row) is never removed here: the reconciler, which looks for a row first, decides.
    public var exclusive: Bool

    public init(location: ObjectLocation, size: Int64, ticket: PendingTicket, exclusive: Bool) {
        self.location = location
        self.size = size
        self.ticket = ticket
        self.exclusive = exclusive
    }
}

/// The Ceph-first ordering, written once, for every object whose row describes it (originals, renditions):
///
/// 1. **register** the object in the pending ledger, before its first byte;
/// 2. **write** it into the blob store (a failed write removes what was written, then clears the entry);
/// 3. **commit** its row (the caller's transaction: `commit(_:_:)`, or later, elsewhere);
/// 4. **complete**: once the row is committed, clear the entries, in the background; when the commit is
///    refused, **discard**: remove the objects first, then clear their entries (objects written in place, at
///    a key that may have a row already, are left with their entries to the reconciler). When the commit's
///    outcome is unknown (the database became unreachable or slow while it ran: a connection dropped during
///    a failover may have carried the commit through), nothing is removed: the objects keep their entries
///    and the reconciler, which asks the database for the row once it answers, keeps or removes them.
///
/// What a crash leaves between the steps:
/// - after 1 or during 2: an entry and maybe a partial object, no row: the ``Reconciler`` removes the object
///   once the entry is older than its grace period;
/// - after 2, before 3 commits: an entry and a whole object, no row: the same;
/// - after 3, before 4: an entry and an object with its row: the reconciler only clears the entry.
///
/// No row ever points at a missing or partial object, because the row is committed last; and no object is
/// ever left without an entry, because the entry is cleared last.
public struct StagedWrite<Blobs: BlobStore, Ledger: PendingLedger>: Sendable {
    public let blobs: Blobs
    public let ledger: Ledger
    let faults: FaultInjection
    let logger: Logger

    public init(blobs: Blobs, ledger: Ledger, faults: FaultInjection = .none, logger: Logger) {
        self.blobs = blobs
        self.ledger = ledger
        self.faults = faults
        self.logger = logger
    }

    /// Steps 1 and 2: registers `location`, then streams `source` into it. When the write fails, the object
    /// is discarded and the error rethrown: a ``BlobStoreError`` of the store, or the source's own error.
    public func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        mode: ObjectWriteMode,
        entry: PendingEntry
    ) async throws -> StagedObject where Source.Element == ByteBuffer {
        let ticket = try await ledger.register(location, entry)
        await faults.reach(.registered)
        let size: Int64
        do {
            size = try await blobs.write(location, from: source, mode: mode)
        } catch {
            await discard([StagedObject(location: location, size: 0, ticket: ticket, exclusive: mode == .createExclusive)])
            throw error
        }
        await faults.reach(.objectWritten)
        return StagedObject(location: location, size: size, ticket: ticket, exclusive: mode == .createExclusive)
    }

    /// ``write(_:from:mode:entry:)`` of one buffer (a rendition).
    public func write(
        _ location: ObjectLocation,
        bytes: ByteBuffer,
        mode: ObjectWriteMode,
        entry: PendingEntry
    ) async throws
        -> StagedObject
    {
        try await write(location, from: OneBuffer(buffer: bytes), mode: mode, entry: entry)
    }

    /// Steps 3 and 4: runs `commit`, the transaction that records the objects' rows. When it succeeds the
    /// entries are cleared in the background and its result returned; when it is refused, the objects are
    /// discarded and its error rethrown; when its outcome is unknown (a transient ``MetadataStoreError``),
    /// the objects and their entries are left to the reconciler and the error rethrown.
    public func commit<T: Sendable>(_ objects: [StagedObject], _ commit: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await commit()
        } catch let error as MetadataStoreError where error.isTransient {
            logger.warning(
                "the commit's outcome is unknown; the reconciler will keep or remove its objects once the database answers",
                metadata: ["objects": "\(objects.map(\.location))", "error": "\(error)"]
            )
            throw error
        } catch {
            await discard(objects)
            throw error
        }
        await faults.reach(.rowCommitted)
        completeInBackground(objects)
        return result
    }

    /// Step 4 when the rows were committed elsewhere (a worker commits what its processor wrote): clears the
    /// entries. Failures are logged: the reconciler clears what is left.
    public func complete(_ objects: [StagedObject]) async {
        for object in objects {
            do {
                try await ledger.complete(object.ticket)
            } catch {
                logger.warning(
                    "could not clear a pending entry; the reconciler will",
                    metadata: ["object": "\(object.location)", "error": "\(error)"]
                )
            }
        }
    }

    /// Step 4 when no row will describe the objects: removes each, then clears its entry. An object that
    /// cannot be removed now keeps its entry, and the reconciler removes it later; so does an object written
    /// in place (see ``StagedObject/exclusive``).
    public func discard(_ objects: [StagedObject]) async {
        for object in objects where object.exclusive {
            do {
                try await blobs.removeIfPresent(object.location)
            } catch {
                logger.warning(
                    "could not remove an object without a row; the reconciler will",
                    metadata: ["object": "\(object.location)", "error": "\(error)"]
                )
                continue
            }
            do {
                try await ledger.complete(object.ticket)
            } catch {
                logger.warning(
                    "could not clear a pending entry; the reconciler will",
                    metadata: ["object": "\(object.location)", "error": "\(error)"]
                )
            }
        }
    }

    /// The answer need not wait for the entries: were they lost (a crash now), the reconciler would find
    /// the rows and only clear them.
    private func completeInBackground(_ objects: [StagedObject]) {
        BackgroundWork.shared.start { await complete(objects) }
    }
}
