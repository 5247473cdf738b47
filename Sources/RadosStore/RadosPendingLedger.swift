import Foundation
import MediaConcurrency
import MediaCore
import Synchronization

/// The ``PendingLedger`` in RADOS omap. In each pool, entries live in bucket objects, one per hour and shard
/// (`_pending.YYYYMMDDHH.SS`, keyed by object key, the value a JSON ``PendingEntry``), listed in a directory
/// object (`_pending.directory`). A ledger writes to one shard, chosen when it is created: one ledger per
/// process means one shard per process, so processes do not queue behind each other on one bucket object
/// (RADOS applies the operations on one object one at a time), and within a process concurrent
/// registrations (and completions) of one bucket go together in one omap operation.
///
/// The reconciler reads the directory, then the buckets of hours that began before its cutoff; a bucket
/// is a period of the ledger, closed (removed, with its directory entry) once its hour ended before the
/// cutoff and it holds no entry.
public final class RadosPendingLedger: PendingLedger {
    public static let directoryKey = "_pending.directory"
    public static let bucketPrefix = "_pending."
    /// Bucket objects per pool and hour.
    public static let shards = 32

    let blobs: RadosBlobStore
    /// This ledger's shard.
    public let shard: Int
    private let listed = Mutex<Set<String>>([])
    private let registrations: GroupCommitter<ObjectLocation, OmapEntry>
    private let completions: GroupCommitter<ObjectLocation, String>

    /// - Parameter shard: the shard this ledger writes to (by default one chosen at random).
    public init(blobs: RadosBlobStore, shard: Int = Int.random(in: 0..<RadosPendingLedger.shards)) {
        precondition((0..<Self.shards).contains(shard), "a shard between 0 and \(Self.shards - 1)")
        self.blobs = blobs
        self.shard = shard
        registrations = GroupCommitter { bucket, entries in try await blobs.setEntries(entries, of: bucket) }
        completions = GroupCommitter { bucket, keys in try await blobs.removeEntries(keys, of: bucket) }
    }

    /// The bucket of an hour (UTC) and shard.
    /// Computed from the seconds since 1970 (once per upload, so without a calendar or a format string).
    public static func bucketName(for date: Date, shard: Int) -> String {
        let hours = Int((date.timeIntervalSince1970 / 3600).rounded(.down))
        let (days, hour) = hours.quotientAndRemainder(dividingBy: 24)
        let (day, hourOfDay) = hour < 0 ? (days - 1, hour + 24) : (days, hour)
        let (year, month, dayOfMonth) = UTCCalendar.civilDate(daysSince1970: day)
        let digits = UTCCalendar.digits
        return bucketPrefix + digits(year, 4) + digits(month, 2) + digits(dayOfMonth, 2) + digits(hourOfDay, 2) + "."
            + digits(shard, 2)
    }

    /// The end of the hour a bucket covers, or `nil` for a name that is not a bucket.
    public static func bucketEnd(_ name: String) -> Date? {
        guard name.hasPrefix(bucketPrefix), name.count == bucketPrefix.count + 13,
            let value = Int(name.dropFirst(bucketPrefix.count).prefix(10)),
            case let hour = value % 100, hour < 24,
            let start = UTCCalendar.startOfDay(yyyymmdd: value / 100)
        else { return nil }
        return start.addingTimeInterval(TimeInterval(hour + 1) * 3600)
    }

    public func register(_ location: ObjectLocation, _ entry: PendingEntry) async throws -> PendingTicket {
        let name = Self.bucketName(for: entry.registeredAt, shard: shard)
        let bucket = ObjectLocation(pool: location.pool, key: name)
        try await list(bucket)
        let value = Array(try JSONEncoder().encode(entry))
        try await registrations.submit(OmapEntry(key: location.key, value: value), to: bucket)
        return PendingTicket(location: location, slot: name)
    }

    public func complete(_ ticket: PendingTicket) async throws {
        try await completions.submit(ticket.location.key, to: ObjectLocation(pool: ticket.location.pool, key: ticket.slot))
    }

    public func stale(
        in pool: String,
        registeredBefore cutoff: Date,
        after cursor: String?,
        limit: Int
    ) async throws
        -> (records: [PendingRecord], next: String?)
    {
        // the cursor is "<bucket>/<last key read>": buckets in name order (hour, then shard), keys in order
        let (startBucket, startKey) = Self.split(cursor)
        var records: [PendingRecord] = []
        for bucket in try await buckets(in: pool) where startBucket.map({ bucket >= $0 }) ?? true {
            // a bucket whose hour began after the cutoff holds no entry registered before it
            guard let end = Self.bucketEnd(bucket), end.addingTimeInterval(-3600) < cutoff else { continue }
            var after = bucket == startBucket ? startKey : nil
            while true {
                let page = try await blobs.entries(
                    of: ObjectLocation(pool: pool, key: bucket),
                    startAfter: after,
                    prefix: nil,
                    limit: limit - records.count
                )
                for entry in page.entries {
                    let registered = try? JSONDecoder().decode(PendingEntry.self, from: Data(entry.value))
                    // still within its grace: it may be streaming right now
                    if let registered, registered.registeredAt >= cutoff { continue }
                    records.append(
                        PendingRecord(ticket: PendingTicket(location: ObjectLocation(pool: pool, key: entry.key), slot: bucket), entry: registered)
                    )
                }
                after = page.entries.last?.key
                if records.count >= limit, let after { return (records, "\(bucket)/\(after)") }
                if !page.hasMore || after == nil { break }
            }
        }
        return (records, nil)
    }

    public func retire(_ records: [PendingRecord]) async throws {
        let byBucket = Dictionary(grouping: records) { ObjectLocation(pool: $0.ticket.location.pool, key: $0.ticket.slot) }
        for (bucket, records) in byBucket {
            try await blobs.removeEntries(records.map(\.ticket.location.key), of: bucket)
        }
    }

    public func closePeriods(in pool: String, endedBefore cutoff: Date) async throws -> Int {
        var closed = 0
        for bucket in try await buckets(in: pool) {
            guard let end = Self.bucketEnd(bucket), end <= cutoff else { continue }
            let location = ObjectLocation(pool: pool, key: bucket)
            guard try await blobs.entries(of: location, startAfter: nil, prefix: nil, limit: 1).entries.isEmpty else { continue }
            try await blobs.removeIfPresent(location)
            try await blobs.removeEntries([bucket], of: directory(pool))
            _ = listed.withLock { $0.remove("\(pool)/\(bucket)") }
            closed += 1
        }
        return closed
    }

    public func oldestPeriod(in pool: String) async throws -> Date? {
        try await buckets(in: pool).compactMap(Self.bucketEnd).min().map { $0.addingTimeInterval(-3600) }
    }

    // MARK: The directory

    func directory(_ pool: String) -> ObjectLocation {
        ObjectLocation(pool: pool, key: Self.directoryKey)
    }

    /// Lists a bucket in its pool's directory, once per process.
    private func list(_ bucket: ObjectLocation) async throws {
        let name = "\(bucket.pool)/\(bucket.key)"
        guard listed.withLock({ $0.insert(name).inserted }) else { return }
        do {
            try await blobs.setEntries([OmapEntry(key: bucket.key, value: [])], of: directory(bucket.pool))
        } catch {
            _ = listed.withLock { $0.remove(name) }
            throw error
        }
    }

    /// Every bucket listed in a pool's directory, in name order.
    func buckets(in pool: String) async throws -> [String] {
        var names: [String] = []
        var after: String?
        while true {
            let page = try await blobs.entries(of: directory(pool), startAfter: after, prefix: nil, limit: 500)
            names += page.entries.map(\.key)
            after = page.entries.last?.key
            if !page.hasMore || after == nil { return names }
        }
    }

    private static func split(_ cursor: String?) -> (bucket: String?, key: String?) {
        guard let cursor, let slash = cursor.firstIndex(of: "/") else { return (nil, nil) }
        return (String(cursor[..<slash]), String(cursor[cursor.index(after: slash)...]))
    }
}
