import Foundation
import MediaCore
import NIOCore
import Synchronization

/// A ``BlobStore`` in memory, for unit tests of the use cases: the same contract as RADOS (exclusive
/// creates, a failed write leaves nothing, bounded read chunks), and a switch that makes every operation
/// fail as a store that is down would.
public final class InMemoryBlobStore: BlobStore {
    struct Object {
        var bytes: [UInt8]
        var modified: Date
    }

    private let objects = Mutex<[ObjectLocation: Object]>([:])
    private let writers = Mutex<[ObjectLocation: String]>([:])
    private let down = Mutex(false)
    private let readsStarted = Mutex(0)
    private let pools: Set<String>?
    let chunkSize: Int
    let clock: MediaClock

    /// - Parameters:
    ///   - pools: the pools that exist (`nil`: any); an object in another pool is `notFound`, as RADOS says.
    ///   - chunkSize: the largest chunk a read hands out.
    public init(pools: Set<String>? = nil, chunkSize: Int = 64 << 10, clock: MediaClock = .system) {
        self.pools = pools
        self.chunkSize = chunkSize
        self.clock = clock
    }

    /// From now on every operation fails with `unavailable` (`true`), or works again (`false`).
    public func setUnavailable(_ unavailable: Bool) {
        down.withLock { $0 = unavailable }
    }

    /// Every object's location.
    public var locations: Set<ObjectLocation> { Set(objects.withLock { $0.keys }) }

    /// How many reads of objects were begun.
    public var reads: Int { readsStarted.withLock { $0 } }

    /// The bytes of an object, or `nil`.
    public func bytes(of location: ObjectLocation) -> [UInt8]? { objects.withLock { $0[location]?.bytes } }

    private func check(_ location: ObjectLocation) throws(BlobStoreError) {
        if down.withLock({ $0 }) { throw BlobStoreError(.unavailable, "the in-memory store is down") }
        guard !location.key.isEmpty, location.key.utf8.count <= 1024, !location.key.utf8.contains(0) else {
            throw BlobStoreError(.invalidArgument, "invalid object key \(location.key.prefix(64).debugDescription)")
        }
        if let pools, !pools.contains(location.pool) { throw BlobStoreError(.notFound, "no pool \(location.pool)") }
    }

    public func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        mode: ObjectWriteMode
    ) async throws -> Int64 where Source.Element == ByteBuffer {
        try check(location)
        // like RADOS: the object exists from the first write on, and goes again when the source fails
        try objects.withLock { objects throws(BlobStoreError) in
            if mode == .createExclusive, objects[location] != nil {
                throw BlobStoreError(.alreadyExists, "\(location) exists")
            }
            objects[location] = Object(bytes: [], modified: clock.now())
        }
        var written: Int64 = 0
        do {
            for try await piece in source {
                try check(location)
                objects.withLock { $0[location]?.bytes += piece.readableBytesView }
                written += Int64(piece.readableBytes)
            }
        } catch {
            _ = objects.withLock { $0.removeValue(forKey: location) }
            throw error
        }
        return written
    }

    public func read(_ location: ObjectLocation, range: Range<Int64>?) -> BlobChunks {
        BlobChunks { [self] in
            readsStarted.withLock { $0 += 1 }
            let position = Mutex<Int64?>(nil)
            return {
                try self.check(location)
                guard let object = self.objects.withLock({ $0[location] }) else { throw BlobStoreError(.notFound, "no object \(location)") }
                let size = Int64(object.bytes.count)
                let start = position.withLock { $0 } ?? min(range?.lowerBound ?? 0, size)
                let end = min(range?.upperBound ?? size, size)
                guard start < end else { return nil }
                let stop = min(end, start + Int64(self.chunkSize))
                position.withLock { $0 = stop }
                return ByteBuffer(bytes: object.bytes[Int(start)..<Int(stop)])
            }
        }
    }

    public func stat(_ location: ObjectLocation) async throws -> ObjectInfo {
        try check(location)
        guard let object = objects.withLock({ $0[location] }) else { throw BlobStoreError(.notFound, "no object \(location)") }
        return ObjectInfo(size: Int64(object.bytes.count), modified: object.modified)
    }

    public func remove(_ location: ObjectLocation) async throws {
        try check(location)
        _ = writers.withLock { $0.removeValue(forKey: location) }
        guard objects.withLock({ $0.removeValue(forKey: location) }) != nil else { throw BlobStoreError(.notFound, "no object \(location)") }
    }

    public func claim(_ location: ObjectLocation, for writer: String) async throws {
        try check(location)
        objects.withLock { objects in
            if objects[location] == nil { objects[location] = Object(bytes: [], modified: clock.now()) }
        }
        writers.withLock { $0[location] = writer }
    }

    private func checkClaim(_ location: ObjectLocation, _ writer: String) throws(BlobStoreError) {
        try check(location)
        guard writers.withLock({ $0[location] }) == writer else {
            throw BlobStoreError(.superseded, "\(location) is claimed by another writer")
        }
    }

    /// Lands `bytes` at `offset`, zero-filling a gap, as RADOS does.
    private func land(_ bytes: [UInt8], at offset: Int64, in location: ObjectLocation) {
        objects.withLock { objects in
            var object = objects[location] ?? Object(bytes: [], modified: clock.now())
            let end = Int(offset) + bytes.count
            if object.bytes.count < end { object.bytes += [UInt8](repeating: 0, count: end - object.bytes.count) }
            object.bytes.replaceSubrange(Int(offset)..<end, with: bytes)
            object.modified = clock.now()
            objects[location] = object
        }
    }

    public func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        at offset: Int64,
        writer: String,
        landed: @escaping @Sendable (Int64) async throws -> Void
    ) async throws -> Int64 where Source.Element == ByteBuffer {
        try checkClaim(location, writer)
        var written: Int64 = 0
        var pending: [UInt8] = []
        func flush() async throws {
            guard !pending.isEmpty else { return }
            try checkClaim(location, writer)
            land(pending, at: offset + written, in: location)
            written += Int64(pending.count)
            pending = []
            try await landed(written)
        }
        do {
            for try await piece in source {
                pending += piece.readableBytesView
                if pending.count >= chunkSize { try await flush() }
            }
        } catch let error as BlobStoreError {
            throw error
        } catch {
            try await flush()
            throw error
        }
        try await flush()
        return written
    }

    public func seal(_ location: ObjectLocation, size: Int64, writer: String) async throws {
        try checkClaim(location, writer)
        try objects.withLock { objects throws(BlobStoreError) in
            guard var object = objects[location] else { throw BlobStoreError(.notFound, "no object \(location)") }
            if object.bytes.count > Int(size) { object.bytes.removeLast(object.bytes.count - Int(size)) }
            objects[location] = object
        }
        _ = writers.withLock { $0.removeValue(forKey: location) }
    }
}
