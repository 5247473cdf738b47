import Foundation
import NIOCore
import Synchronization

/// What the pending index records about an object whose row is not committed yet.
public struct PendingEntry: Sendable, Hashable, Codable {
    public var mediaID: MediaID
    public var uploadSetID: UploadSetID?
    public var registeredAt: Date

    public init(mediaID: MediaID, uploadSetID: UploadSetID?, registeredAt: Date) {
        self.mediaID = mediaID
        self.uploadSetID = uploadSetID
        self.registeredAt = registeredAt
    }

    enum CodingKeys: String, CodingKey {
        case mediaID = "media"
        case uploadSetID = "set"
        case registeredAt = "at"
    }
}

/// A record in the pending index, to be completed once the object's row is committed.
public struct PendingTicket: Sendable, Hashable, Codable {
    public var location: ObjectLocation
    /// The index object (one per pool and hour) that holds the entry.
    public var bucket: ObjectLocation
}

/// Objects that are being written and have no committed row yet, kept in RADOS omap: index objects per
/// pool, hour and shard (`_pending.YYYYMMDDHH.SS`), listed in a directory object (`_pending.directory`) per
/// pool. Each gateway process writes to a shard of its own, so processes do not queue behind each other
/// on one index object (RADOS applies the operations on one object one at a time), and within a process
/// concurrent registrations (and completions) of one bucket are grouped into one omap operation.
///
/// Every object is registered here *before* its first byte is written and completed after its row is
/// committed. What a crash leaves behind is therefore findable without listing the pool: the reconciler
/// reads the directory, then the hour buckets older than its grace period.
public struct PendingIndex<Objects: ObjectStore>: Sendable {
    public static var directoryKey: String { "_pending.directory" }
    public static var bucketPrefix: String { "_pending." }
    /// Index objects per pool and hour.
    public static var shards: Int { 32 }

    let objects: Objects
    private let knownBuckets: KnownBuckets
    /// This process's shard.
    let shard: Int
    private let registrations: GroupCommitter<ObjectLocation, IndexEntry>
    private let completions: GroupCommitter<ObjectLocation, String>

    public init(objects: Objects) {
        self.objects = objects
        self.knownBuckets = KnownBuckets()
        self.shard = Int.random(in: 0..<Self.shards)
        self.registrations = GroupCommitter { bucket, entries in try await objects.setIndexEntries(entries, of: bucket) }
        self.completions = GroupCommitter { bucket, keys in try await objects.removeIndexEntries(keys, of: bucket) }
    }

    /// The bucket of an hour (UTC) and shard.
    public static func bucketName(for date: Date, shard: Int) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
        return bucketPrefix + String(format: "%04d%02d%02d%02d.%02d", c.year!, c.month!, c.day!, c.hour!, shard)
    }

    /// The end of the hour a bucket covers, or `nil` for a name that is not a bucket.
    public static func bucketEnd(_ name: String) -> Date? {
        guard name.hasPrefix(bucketPrefix), name.count == bucketPrefix.count + 13,
              let value = Int(name.dropFirst(bucketPrefix.count).prefix(10)) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: value / 1_000_000, month: value / 10_000 % 100, day: value / 100 % 100, hour: value % 100)
        return calendar.date(from: components).map { $0.addingTimeInterval(3600) }
    }

    /// Records `location` as pending. Call before writing the object's first byte.
    public func register(_ location: ObjectLocation, _ entry: PendingEntry) async throws -> PendingTicket {
        let name = Self.bucketName(for: entry.registeredAt, shard: shard)
        let bucket = ObjectLocation(pool: location.pool, key: name)
        if knownBuckets.insert("\(location.pool)/\(name)") {
            do {
                try await objects.setIndexEntries([IndexEntry(key: name, value: [])], of: directory(location.pool))
            } catch {
                knownBuckets.remove("\(location.pool)/\(name)")
                throw error
            }
        }
        let value = Array(try JSONEncoder().encode(entry))
        try await registrations.submit(IndexEntry(key: location.key, value: value), to: bucket)
        return PendingTicket(location: location, bucket: bucket)
    }

    /// Removes the entry once the object's row is committed (or the object is removed).
    public func complete(_ ticket: PendingTicket) async throws {
        try await completions.submit(ticket.location.key, to: ticket.bucket)
    }

    func directory(_ pool: String) -> ObjectLocation {
        ObjectLocation(pool: pool, key: Self.directoryKey)
    }

    /// Every bucket listed in a pool's directory.
    func buckets(in pool: String) async throws -> [String] {
        var names: [String] = []
        var after: String?
        while true {
            let page = try await objects.indexEntries(of: directory(pool), startAfter: after, prefix: nil, limit: 500)
            names += page.entries.map(\.key)
            after = page.entries.last?.key
            if !page.hasMore || after == nil { return names }
        }
    }

    /// Forgets an emptied bucket: removes its index object and its directory entry.
    func retire(bucket name: String, in pool: String) async throws {
        do {
            try await objects.remove(ObjectLocation(pool: pool, key: name))
        } catch let error as ObjectStoreError where error.code == .notFound {}
        try await objects.removeIndexEntries([name], of: directory(pool))
        knownBuckets.remove("\(pool)/\(name)")
    }
}

/// The buckets this process already listed in a directory, so that each is written there once.
final class KnownBuckets: Sendable {
    private let names = Mutex<Set<String>>([])

    /// Returns `true` if the name was new.
    func insert(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
    func remove(_ name: String) { _ = names.withLock { $0.remove(name) } }
}

/// Group commit: items submitted for one key while an operation on that key is in flight are sent
/// together in the next one. At low load each item goes alone at once; under load, batches grow by
/// themselves. Each submitter waits for the operation that carried its item.
actor GroupCommitter<Key: Hashable & Sendable, Item: Sendable> {
    private var queues: [Key: [(Item, CheckedContinuation<Void, any Error>)]] = [:]
    private var busy: Set<Key> = []
    private let perform: @Sendable (Key, [Item]) async throws -> Void

    init(_ perform: @escaping @Sendable (Key, [Item]) async throws -> Void) {
        self.perform = perform
    }

    func submit(_ item: Item, to key: Key) async throws {
        try await withCheckedThrowingContinuation { continuation in
            queues[key, default: []].append((item, continuation))
            if busy.insert(key).inserted {
                Task { await self.drain(key) }
            }
        }
    }

    private func drain(_ key: Key) async {
        while let batch = queues.removeValue(forKey: key), !batch.isEmpty {
            do {
                try await perform(key, batch.map(\.0))
                for (_, waiter) in batch { waiter.resume() }
            } catch {
                for (_, waiter) in batch { waiter.resume(throwing: error) }
            }
        }
        busy.remove(key)
    }
}
