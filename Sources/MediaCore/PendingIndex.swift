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
public struct PendingTicket: Sendable, Hashable {
    public var location: ObjectLocation
    /// The index object (one per pool and hour) that holds the entry.
    public var bucket: ObjectLocation
}

/// Objects that are being written and have no committed row yet, kept in RADOS omap: one index object per
/// pool and hour (`_pending.YYYYMMDDHH`), listed in a directory object (`_pending.directory`) per pool.
///
/// Every object is registered here *before* its first byte is written and completed after its row is
/// committed. What a crash leaves behind is therefore findable without listing the pool: the reconciler
/// reads the directory, then the hour buckets older than its grace period.
public struct PendingIndex<Objects: ObjectStore>: Sendable {
    public static var directoryKey: String { "_pending.directory" }
    public static var bucketPrefix: String { "_pending." }

    let objects: Objects
    private let knownBuckets: KnownBuckets

    public init(objects: Objects) {
        self.objects = objects
        self.knownBuckets = KnownBuckets()
    }

    /// The bucket name of an hour, in UTC.
    public static func bucketName(for date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
        return bucketPrefix + String(format: "%04d%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!)
    }

    /// The end of the hour a bucket covers, or `nil` for a name that is not a bucket.
    public static func bucketEnd(_ name: String) -> Date? {
        guard name.hasPrefix(bucketPrefix), name.count == bucketPrefix.count + 10,
              let value = Int(name.dropFirst(bucketPrefix.count)) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: value / 1_000_000, month: value / 10_000 % 100, day: value / 100 % 100, hour: value % 100)
        return calendar.date(from: components).map { $0.addingTimeInterval(3600) }
    }

    /// Records `location` as pending. Call before writing the object's first byte.
    public func register(_ location: ObjectLocation, _ entry: PendingEntry) async throws -> PendingTicket {
        let name = Self.bucketName(for: entry.registeredAt)
        let bucket = ObjectLocation(pool: location.pool, key: name)
        if knownBuckets.insert("\(location.pool)/\(name)") {
            try await objects.setIndexEntries([IndexEntry(key: name, value: [])], of: directory(location.pool))
        }
        let value = Array(try JSONEncoder().encode(entry))
        try await objects.setIndexEntries([IndexEntry(key: location.key, value: value)], of: bucket)
        return PendingTicket(location: location, bucket: bucket)
    }

    /// Removes the entry once the object's row is committed (or the object is removed).
    public func complete(_ ticket: PendingTicket) async throws {
        try await objects.removeIndexEntries([ticket.location.key], of: ticket.bucket)
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
