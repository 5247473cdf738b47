import Foundation
import MediaCore
import Testing

/// What every ``PendingLedger`` must do, written once and run against each implementation. Each check
/// expects a ledger of its own that holds nothing yet (`makeLedger` is called once per check; a second call
/// within a check must give another instance over the same storage, as another process would have).
public struct PendingLedgerConformance<Ledger: PendingLedger>: ConformanceSuite {
    public let makeLedger: @Sendable () async throws -> Ledger
    /// Two pools that exist.
    public let pools: (String, String)

    public init(pools: (String, String), makeLedger: @escaping @Sendable () async throws -> Ledger) {
        self.pools = pools
        self.makeLedger = makeLedger
    }

    /// Each check, given a new ledger.
    public static var table: [String: @Sendable (Self) async throws -> Void] {
        checksOnALedger.mapValues { body in { suite in try await body(suite, try await suite.makeLedger()) } }
    }

    private static var checksOnALedger: [String: @Sendable (Self, Ledger) async throws -> Void] {
        [
            "an entry registered and completed is not stale": { try await $0.completed($1) },
            "only entries registered before the cutoff are stale, with what was registered": { try await $0.cutoff($1) },
            "stale entries come in pages that cover each once": { try await $0.paging($1) },
            "retired entries are gone": { try await $0.retired($1) },
            "a ticket is completed by another instance": { try await $0.otherInstance($1) },
            "empty periods that ended before the cutoff are closed": { try await $0.periods($1) },
            "pools are separate": { try await $0.separatePools($1) },
            "the oldest open period begins at most an hour before the oldest entry": { try await $0.oldestPeriod($1) },
        ]
    }

    var hoursAgo: (Double) -> Date { { Date().addingTimeInterval(-$0 * 3600) } }

    func entry(_ at: Date) -> PendingEntry { PendingEntry(mediaID: .generate(), uploadSetID: .generate(), registeredAt: at) }

    func location(_ pool: String? = nil) -> ObjectLocation { ObjectLocation(pool: pool ?? pools.0, key: uniqueKey("ledger")) }

    func allStale(
        _ ledger: Ledger,
        in pool: String? = nil,
        before cutoff: Date = Date().addingTimeInterval(-1800),
        limit: Int = 100
    ) async throws
        -> [PendingRecord]
    {
        var all: [PendingRecord] = []
        var cursor: String?
        repeat {
            let page = try await ledger.stale(in: pool ?? pools.0, registeredBefore: cutoff, after: cursor, limit: limit)
            all += page.records
            cursor = page.next
        } while cursor != nil
        return all
    }

    func oldestPeriod(_ ledger: Ledger) async throws {
        // older than what any other check registers: the oldest period is this entry's whatever they left
        let registered = hoursAgo(30)
        let ticket = try await ledger.register(location(), entry(registered))
        let oldest = try #require(try await ledger.oldestPeriod(in: pools.0))
        #expect(oldest <= registered && oldest > registered.addingTimeInterval(-3600), "\(oldest) for \(registered)")
        try await ledger.complete(ticket)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: hoursAgo(28))
        #expect(try await ledger.oldestPeriod(in: pools.0).map { $0 > registered } ?? true, "the closed period no longer counts")
    }

    func completed(_ ledger: Ledger) async throws {
        let ticket = try await ledger.register(location(), entry(hoursAgo(3)))
        #expect(try await allStale(ledger).map(\.ticket) == [ticket])
        try await ledger.complete(ticket)
        #expect(try await allStale(ledger).isEmpty)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func cutoff(_ ledger: Ledger) async throws {
        let old = entry(hoursAgo(3))
        let oldTicket = try await ledger.register(location(), old)
        let young = try await ledger.register(location(), entry(Date()))
        let stale = try await allStale(ledger, before: hoursAgo(1))
        #expect(stale.map(\.ticket) == [oldTicket])
        #expect(stale.first?.entry?.mediaID == old.mediaID)
        #expect(stale.first?.entry?.uploadSetID == old.uploadSetID)
        #expect(abs((stale.first?.entry?.registeredAt ?? .distantPast).timeIntervalSince(old.registeredAt)) < 1)
        #expect(try await allStale(ledger, before: Date().addingTimeInterval(60)).count == 2, "with a later cutoff the young one is stale too")
        try await ledger.complete(oldTicket)
        try await ledger.complete(young)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func paging(_ ledger: Ledger) async throws {
        var tickets: [PendingTicket] = []
        for index in 0..<25 { tickets.append(try await ledger.register(location(), entry(hoursAgo(3 + Double(index % 3))))) }
        var pages = 0
        var seen: [PendingTicket] = []
        var cursor: String?
        repeat {
            let page = try await ledger.stale(in: pools.0, registeredBefore: hoursAgo(1), after: cursor, limit: 10)
            #expect(page.records.count <= 10)
            seen += page.records.map(\.ticket)
            cursor = page.next
            pages += 1
        } while cursor != nil && pages < 10
        #expect(Set(seen) == Set(tickets))
        #expect(seen.count == 25, "each entry once")
        #expect(pages == 3)
        try await ledger.retire(try await allStale(ledger, before: hoursAgo(1)))
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func retired(_ ledger: Ledger) async throws {
        for _ in 0..<3 { _ = try await ledger.register(location(), entry(hoursAgo(3))) }
        let stale = try await allStale(ledger)
        #expect(stale.count == 3)
        try await ledger.retire(Array(stale.prefix(2)))
        #expect(try await allStale(ledger).map(\.ticket) == [stale[2].ticket])
        try await ledger.retire([stale[2]])
        #expect(try await allStale(ledger).isEmpty)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func otherInstance(_ ledger: Ledger) async throws {
        let ticket = try await ledger.register(location(), entry(hoursAgo(3)))
        // the ticket travels to another process (a processor's renditions, committed by the worker)
        let travelled = try JSONDecoder().decode(PendingTicket.self, from: JSONEncoder().encode(ticket))
        let other = try await makeLedger()
        try await other.complete(travelled)
        #expect(try await allStale(ledger).isEmpty)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func periods(_ ledger: Ledger) async throws {
        let first = try await ledger.register(location(), entry(hoursAgo(3)))
        let second = try await ledger.register(location(), entry(hoursAgo(3)))
        let current = try await ledger.register(location(), entry(Date()))
        try await ledger.complete(first)
        #expect(try await ledger.closePeriods(in: pools.0, endedBefore: hoursAgo(1)) == 0, "a period that holds an entry stays")
        try await ledger.complete(second)
        #expect(try await ledger.closePeriods(in: pools.0, endedBefore: hoursAgo(1)) == 1, "an emptied period that ended is closed")
        #expect(try await ledger.closePeriods(in: pools.0, endedBefore: hoursAgo(1)) == 0, "once")
        try await ledger.complete(current)
        #expect(try await ledger.closePeriods(in: pools.0, endedBefore: hoursAgo(1)) == 0, "the current period has not ended")
        // a closed period takes registrations again (a late writer), and they are found
        let late = try await ledger.register(location(), entry(hoursAgo(3)))
        #expect(try await allStale(ledger).map(\.ticket) == [late])
        try await ledger.complete(late)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }

    func separatePools(_ ledger: Ledger) async throws {
        let ticket = try await ledger.register(location(pools.0), entry(hoursAgo(3)))
        #expect(try await allStale(ledger, in: pools.1).isEmpty)
        #expect(try await allStale(ledger, in: pools.0).map(\.ticket) == [ticket])
        try await ledger.complete(ticket)
        _ = try await ledger.closePeriods(in: pools.0, endedBefore: Date().addingTimeInterval(3600))
    }
}
