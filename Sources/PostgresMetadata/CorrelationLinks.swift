import Foundation
import MediaCore
import PostgresNIO

/// The correlation links (migration 11): one table partitioned by UTC day, indexed by each end, written a
/// batch at a time and walked with a recursive query.
extension PostgresMetadataStore: CorrelationStore {
    public func recordLinks(_ links: [CorrelationLink]) async throws {
        guard !links.isEmpty else { return }
        try await run("record_correlation") { [client, logger] in
            // one statement per batch; optional values travel as empty strings (arrays of optionals do not bind)
            _ = try await client.query(
                """
                INSERT INTO correlation (a, b, relation, at, host, state, error, duration_ms)
                SELECT a, b, relation, at, host, NULLIF(state, ''), NULLIF(error, ''), NULLIF(duration_ms, -1)
                FROM unnest(\(links.map(\.from.description)), \(links.map(\.to.description)), \(links.map(\.relation)),
                            \(links.map(\.at)), \(links.map(\.host)), \(links.map { $0.state ?? "" }), \(links.map { $0.error ?? "" }),
                            \(links.map { $0.durationMilliseconds ?? -1 }))
                    AS l(a, b, relation, at, host, state, error, duration_ms)
                """,
                logger: logger
            )
        }
    }

    public func correlatedLinks(from start: [CorrelationNode], depth: Int, limit: Int) async throws -> [CorrelationLink] {
        guard !start.isEmpty else { return [] }
        return try await run("walk_correlation") { [client, logger] in
            // breadth first, both ways, each id once per depth; each step reads the two indexes, at most
            // `limit` neighbours of an id each way (an id linked to everything, such as a caller's constant
            // X-Request-Id, is cut there instead of walking the whole table)
            let rows = try await client.query(
                """
                WITH RECURSIVE walk(node, depth) AS (
                    SELECT n, 0 FROM unnest(\(start.map(\.description))::text[]) AS n
                    UNION
                    SELECT next.node, w.depth + 1 FROM walk w
                    CROSS JOIN LATERAL (
                        (SELECT c.b AS node FROM correlation c WHERE c.a = w.node LIMIT \(limit))
                        UNION (SELECT c.a FROM correlation c WHERE c.b = w.node LIMIT \(limit))
                    ) next
                    WHERE w.depth < \(depth)
                ), nodes AS (
                    SELECT node FROM walk GROUP BY node ORDER BY min(depth), node LIMIT \(limit)
                )
                SELECT a, b, relation, at, host, state, error, duration_ms FROM correlation
                WHERE a IN (SELECT node FROM nodes) OR b IN (SELECT node FROM nodes)
                ORDER BY at, a, b LIMIT \(limit * 10)
                """,
                logger: logger
            )
            var links: [CorrelationLink] = []
            for try await (a, b, relation, at, host, state, error, duration) in rows.decode(
                (String, String, String, Date, String, String?, String?, Int64?).self
            ) {
                guard let from = CorrelationNode(a), let to = CorrelationNode(b) else { continue }
                links.append(
                    CorrelationLink(
                        from: from,
                        to: to,
                        relation: relation,
                        at: at,
                        host: host,
                        state: state,
                        error: error,
                        durationMilliseconds: duration
                    )
                )
            }
            return links
        }
    }

    public func rotateCorrelation(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation {
        try await rotateDays(of: DayTables(table: "correlation"), droppingDaysEndingBy: cutoff, daysAhead: daysAhead, now: now) { name in
            try await run("drop_correlation_day") { [client, logger] in
                _ = try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \(name)"), logger: logger)
            }
        }
    }
}
