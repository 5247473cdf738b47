import Foundation
import MediaCore
import Synchronization
import Testing

/// What every ``CorrelationStore`` must do, written once and run against each implementation (PostgreSQL, in
/// memory). Each check works on ids of its own; the retention check drops whole days: give it a store of its
/// own.
public struct CorrelationStoreConformance<Store: CorrelationStore>: ConformanceSuite {
    public let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// The checks that drop what other checks recorded.
    public static var checksNeedingAStoreOfTheirOwn: Set<String> { [retentionCheck] }

    static var retentionCheck: String { "retention drops whole old days of links and makes the coming days" }

    public static var table: [String: @Sendable (Self) async throws -> Void] {
        [
            "an upload's whole story is found from any of its ids, and nothing else": { try await $0.wholeStory() },
            "the walk stops at its depth and at its limit of ids": { try await $0.bounds() },
            "links keep their state, error, host and duration": { try await $0.details() },
            retentionCheck: { try await $0.retention() },
        ]
    }

    /// Ids of one story: a request that stored two media items of a set, their events and jobs.
    struct Story {
        let request = CorrelationNode(.request, "req-\(UUID().uuidString.lowercased())")
        let trace = CorrelationNode(.trace, UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
        let set = CorrelationNode.set(.generate())
        let media = [CorrelationNode.media(.generate()), CorrelationNode.media(.generate())]
        let events = [CorrelationNode.event(UUID()), CorrelationNode.event(UUID())]
        let job = CorrelationNode.job(Int64.random(in: 1...Int64.max))

        var nodes: Set<CorrelationNode> { Set([request, trace, set, job] + media + events) }

        func links(at: Date) -> [CorrelationLink] {
            var links = [
                link(request, set, "opened", at),
                link(request, trace, "traced", at),
                link(set, media[0], "stored", at),
                link(set, media[1], "stored", at),
                link(request, media[0], "stored", at),
                link(media[0], events[0], "media.stored", at),
                link(media[1], events[1], "media.stored", at),
                link(job, media[1], "processing attempt 1", at),
            ]
            links[7].state = "failed"
            return links
        }

        func link(_ from: CorrelationNode, _ to: CorrelationNode, _ relation: String, _ at: Date) -> CorrelationLink {
            CorrelationLink(from: from, to: to, relation: relation, at: at, host: "gw-test")
        }
    }

    func wholeStory() async throws {
        let story = Story()
        let other = Story()
        let now = Date()
        try await store.recordLinks(story.links(at: now))
        try await store.recordLinks(other.links(at: now))
        for node in story.nodes {
            let links = try await store.correlatedLinks(from: [node], depth: 8, limit: 100)
            #expect(links.count == 8, "every link of the story from \(node)")
            #expect(Set(links.flatMap { [$0.from, $0.to] }) == story.nodes, "and nothing of another story from \(node)")
        }
        #expect(try await store.correlatedLinks(from: [CorrelationNode.media(.generate())], depth: 8, limit: 100).isEmpty)
        let times = try await store.correlatedLinks(from: [story.job], depth: 8, limit: 100).map(\.at)
        #expect(times == times.sorted(), "in time order")
    }

    func bounds() async throws {
        // a chain n0 - n1 - n2 - n3 - n4 - n5
        let chain = (0..<6).map { _ in CorrelationNode.media(.generate()) }
        let now = Date()
        try await store.recordLinks(
            (0..<5).map { CorrelationLink(from: chain[$0], to: chain[$0 + 1], relation: "next", at: now.addingTimeInterval(Double($0)), host: "h") }
        )
        let two = try await store.correlatedLinks(from: [chain[0]], depth: 2, limit: 100)
        #expect(Set(two.map(\.to)) == Set(chain[1...3]), "ids two steps away, and their links")
        let limited = try await store.correlatedLinks(from: [chain[0]], depth: 10, limit: 2)
        #expect(Set(limited.flatMap { [$0.from, $0.to] }) == Set(chain[0...2]), "the two nearest ids, with their links")
        let all = try await store.correlatedLinks(from: [chain[5]], depth: 10, limit: 100)
        #expect(all.count == 5)
        // an id linked to everything (a caller's constant request id) is cut at the limits
        let hub = CorrelationNode(.request, "hub-\(UUID())")
        try await store.recordLinks((0..<80).map { _ in CorrelationLink(from: hub, to: .media(.generate()), relation: "r", at: now, host: "h") })
        let cut = try await store.correlatedLinks(from: [hub], depth: 3, limit: 5)
        #expect(cut.count == 50 && cut.allSatisfy { $0.from == hub }, "at most ten links per id asked for")
    }

    func details() async throws {
        let job = CorrelationNode.job(Int64.random(in: 1...Int64.max))
        let media = CorrelationNode.media(.generate())
        let at = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded() / 1000)
        let failed = CorrelationLink(
            from: job,
            to: media,
            relation: "processing attempt 1",
            at: at,
            host: "gw-b",
            state: "failed",
            error: "undecodable: no decoder",
            durationMilliseconds: 1234
        )
        let plain = CorrelationLink(
            from: media,
            to: CorrelationNode.event(UUID()),
            relation: "media.stored",
            at: at.addingTimeInterval(1),
            host: "gw-a"
        )
        try await store.recordLinks([failed, plain])
        let links = try await store.correlatedLinks(from: [job], depth: 3, limit: 10)
        #expect(links.count == 2)
        let found = try #require(links.first)
        #expect(found.state == "failed" && found.error == "undecodable: no decoder" && found.durationMilliseconds == 1234 && found.host == "gw-b")
        #expect(abs(found.at.timeIntervalSince(at)) < 0.001)
        #expect(links.last?.state == nil && links.last?.error == nil && links.last?.durationMilliseconds == nil)
    }

    func retention() async throws {
        let now = Date()
        let old = now.addingTimeInterval(-10 * 86_400)
        // the days from ten days ago on, as if rotations had run then
        _ = try await store.rotateCorrelation(droppingDaysEndingBy: .distantPast, daysAhead: 12, now: old)
        let before = Story()
        let after = Story()
        try await store.recordLinks(before.links(at: old))
        try await store.recordLinks(after.links(at: now))
        let rotation = try await store.rotateCorrelation(droppingDaysEndingBy: now.addingTimeInterval(-5 * 86_400), daysAhead: 3, now: now)
        #expect(rotation.droppedDays.contains(OutboxRotation.day(of: old)), "the old day went")
        #expect(rotation.droppedDays.allSatisfy { OutboxRotation.end(ofDay: $0) <= now.addingTimeInterval(-5 * 86_400) }, "only days that ended")
        #expect(rotation.lastDay.map { $0 >= OutboxRotation.day(of: now).addingTimeInterval(3 * 86_400) } == true, "three days ahead")
        #expect(try await store.correlatedLinks(from: [before.set], depth: 8, limit: 100).isEmpty)
        #expect(try await store.correlatedLinks(from: [after.set], depth: 8, limit: 100).count == 8)
        // days ahead have room
        let later = Story()
        try await store.recordLinks(later.links(at: now.addingTimeInterval(2 * 86_400)))
        #expect(try await store.correlatedLinks(from: [later.job], depth: 8, limit: 100).count == 8)
    }
}

/// A ``CorrelationStore`` in memory, for unit tests of pure logic: it keeps days as the PostgreSQL store
/// does (a link of a day that was never made is refused).
public final class InMemoryCorrelationStore: CorrelationStore {
    private struct State {
        var links: [CorrelationLink] = []
        var days: Set<Date> = []
    }

    private let state = Mutex(State())

    public init(daysFrom first: Date = Date().addingTimeInterval(-86_400), through last: Date = Date().addingTimeInterval(7 * 86_400)) {
        var day = OutboxRotation.day(of: first)
        var days: Set<Date> = []
        while day <= last {
            days.insert(day)
            day = OutboxRotation.end(ofDay: day)
        }
        state.withLock { $0.days = days }
    }

    /// Every link kept.
    public var links: [CorrelationLink] { state.withLock { $0.links } }

    public func recordLinks(_ links: [CorrelationLink]) async throws {
        try state.withLock { state in
            for link in links where !state.days.contains(OutboxRotation.day(of: link.at)) {
                throw MetadataStoreError(.other, "no day for a link at \(link.at)")
            }
            state.links += links
        }
    }

    public func correlatedLinks(from start: [CorrelationNode], depth: Int, limit: Int) async throws -> [CorrelationLink] {
        let links = state.withLock { $0.links }
        var seen = Set(start)
        var order = start
        var frontier = Set(start)
        for _ in 0..<max(0, depth) {
            var next: Set<CorrelationNode> = []
            for link in links {
                if frontier.contains(link.from), !seen.contains(link.to) { next.insert(link.to) }
                if frontier.contains(link.to), !seen.contains(link.from) { next.insert(link.from) }
            }
            if next.isEmpty { break }
            seen.formUnion(next)
            order += next.sorted()
            frontier = next
        }
        let nodes = Set(order.prefix(limit))
        return Array(
            links
                .filter { nodes.contains($0.from) || nodes.contains($0.to) }
                .sorted { ($0.at, $0.from, $0.to) < ($1.at, $1.from, $1.to) }
                .prefix(limit * 10)
        )
    }

    public func rotateCorrelation(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation {
        state.withLock { state in
            var rotation = OutboxRotation()
            rotation.droppedDays = state.days.filter { OutboxRotation.end(ofDay: $0) <= cutoff }.sorted()
            state.days.subtract(rotation.droppedDays)
            state.links.removeAll { OutboxRotation.end(ofDay: OutboxRotation.day(of: $0.at)) <= cutoff }
            var day = OutboxRotation.day(of: now)
            for _ in 0...max(0, daysAhead) {
                if state.days.insert(day).inserted { rotation.addedDays += 1 }
                day = OutboxRotation.end(ofDay: day)
            }
            rotation.lastDay = state.days.max()
            return rotation
        }
    }
}
