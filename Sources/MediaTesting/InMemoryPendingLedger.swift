import Foundation
import MediaCore
import Synchronization

/// A ``PendingLedger`` in memory, with periods of one hour, for unit tests of the use cases.
public final class InMemoryPendingLedger: PendingLedger {
    private struct Period {
        var end: Date
        var entries: [String: (ObjectLocation, PendingEntry)] = [:]
    }

    private let periods = Mutex<[String: [String: Period]]>([:])  // pool → period name → period
    private let down = Mutex(false)

    public init() {}

    /// From now on every operation fails with `unavailable` (`true`), or works again (`false`).
    public func setUnavailable(_ unavailable: Bool) {
        down.withLock { $0 = unavailable }
    }

    /// Every entry, by object.
    public var entries: [ObjectLocation: PendingEntry] {
        periods.withLock { pools in
            var all: [ObjectLocation: PendingEntry] = [:]
            for period in pools.values.flatMap(\.values) {
                for (location, entry) in period.entries.values { all[location] = entry }
            }
            return all
        }
    }

    /// How many periods hold or held entries and are not closed.
    public var openPeriods: Int { periods.withLock { $0.values.map(\.count).reduce(0, +) } }

    private func check() throws(BlobStoreError) {
        if down.withLock({ $0 }) { throw BlobStoreError(.unavailable, "the in-memory ledger is down") }
    }

    static func period(of date: Date) -> (name: String, end: Date) {
        let hour = (date.timeIntervalSince1970 / 3600).rounded(.down)
        return (String(format: "%012.0f", hour), Date(timeIntervalSince1970: (hour + 1) * 3600))
    }

    public func oldestPeriod(in pool: String) async throws -> Date? {
        try check()
        return periods.withLock { $0[pool]?.values.map { $0.end.addingTimeInterval(-3600) }.min() }
    }

    public func register(_ location: ObjectLocation, _ entry: PendingEntry) async throws -> PendingTicket {
        try check()
        let (name, end) = Self.period(of: entry.registeredAt)
        periods.withLock { $0[location.pool, default: [:]][name, default: Period(end: end)].entries[location.key] = (location, entry) }
        return PendingTicket(location: location, slot: name)
    }

    public func complete(_ ticket: PendingTicket) async throws {
        try check()
        periods.withLock { _ = $0[ticket.location.pool]?[ticket.slot]?.entries.removeValue(forKey: ticket.location.key) }
    }

    public func stale(
        in pool: String,
        registeredBefore cutoff: Date,
        after cursor: String?,
        limit: Int
    ) async throws
        -> (records: [PendingRecord], next: String?)
    {
        try check()
        let all = periods.withLock { pools in
            (pools[pool] ?? [:]).flatMap { name, period in
                period.entries.values.filter { $0.1.registeredAt < cutoff }.map {
                    (cursor: "\(name)/\($0.0.key)", slot: name, location: $0.0, entry: $0.1)
                }
            }
        }
        let page = all.sorted { $0.cursor < $1.cursor }.filter { cursor == nil || $0.cursor > cursor! }.prefix(limit)
        let records = page.map { PendingRecord(ticket: PendingTicket(location: $0.location, slot: $0.slot), entry: $0.entry) }
        return (records, page.count == limit ? page.last?.cursor : nil)
    }

    public func retire(_ records: [PendingRecord]) async throws {
        try check()
        for record in records { try await complete(record.ticket) }
    }

    public func closePeriods(in pool: String, endedBefore cutoff: Date) async throws -> Int {
        try check()
        return periods.withLock { pools in
            let closing = (pools[pool] ?? [:]).filter { $0.value.end <= cutoff && $0.value.entries.isEmpty }.map(\.key)
            for name in closing { pools[pool]?.removeValue(forKey: name) }
            return closing.count
        }
    }
}
