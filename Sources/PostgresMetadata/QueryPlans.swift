import Foundation
import MediaCore
import PostgresNIO

/// The plans PostgreSQL chooses for the hot statements, for the cost-growth benchmark and for operators who
/// wonder whether a table outgrew an index.
extension PostgresMetadataStore {
    /// One statement's plan.
    public struct QueryPlan: Sendable {
        public var statement: String
        /// The lines of `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)`.
        public var lines: [String]

        public init(statement: String, lines: [String]) {
            self.statement = statement
            self.lines = lines
        }

        /// The indexes the plan reads through, each once.
        public var indexes: [String] {
            var seen = Set<String>()
            return lines.compactMap { line in
                guard let range = line.range(of: #"(Index|Index Only|Bitmap Index) Scan (Backward )?using [a-z0-9_]+"#, options: .regularExpression),
                    let index = line[range].split(separator: " ").last.map(String.init), seen.insert(index).inserted
                else { return nil }
                return index
            }
        }

        /// Whether some table of the plan is read whole: a sequential scan that found rows or filtered some out.
        /// One that found nothing to read (an empty table, such as a day partition yet to come, which the
        /// planner rightly scans rather than probe an index of) or never ran does not count.
        public var scansATable: Bool {
            lines.indices.contains { index in
                let line = lines[index]
                guard line.contains("Seq Scan") else { return false }
                if line.contains("never executed") { return false }
                if Self.count(after: "actual rows=", in: line) != 0 { return true }
                // the node's own detail lines follow it, up to the next node
                for detail in lines[(index + 1)...] {
                    if detail.contains("->") { break }
                    if let removed = Self.count(after: "Rows Removed by Filter: ", in: detail), removed > 0 { return true }
                }
                return false
            }
        }

        /// Rows that the plan's scans read and then filtered out (`Rows Removed by Filter`), over all its nodes:
        /// an index that serves a statement well leaves few.
        public var rowsFilteredOut: Int {
            lines.reduce(0) { $0 + (Self.count(after: "Rows Removed by Filter: ", in: $1) ?? 0) }
        }

        /// The number written right after `label` in `line`, if any.
        static func count(after label: String, in line: String) -> Int? {
            guard let range = line.range(of: label) else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
    }

    /// Runs the hot statements with `EXPLAIN ANALYZE`, each in a transaction that is rolled back (nothing is
    /// written): recording an upload, the origin's lookup, reading a media item by id, claiming a job and
    /// reading the last hundred events; on a media item and set picked at random among those stored.
    public func hotStatementPlans() async throws -> [QueryPlan] {
        var media = MediaID.generate()
        let (set, owner) = (UploadSetID.generate(), "explain")
        var cursor: Int64 = 0
        for try await mediaID in try await database.client.query(
            "SELECT id FROM media TABLESAMPLE SYSTEM (1) LIMIT 1",
            logger: logger
        ).decode(UUID.self) {
            media = MediaID(uuid: mediaID)
        }
        for try await last in try await database.client.query("SELECT coalesce(max(seq), 0) FROM outbox", logger: logger).decode(Int64.self) {
            cursor = max(0, last - 100)
        }
        let now = Date()
        let id = MediaID.generate()
        let new = NewMedia(
            id: id,
            kind: .photo,
            ownerID: owner,
            uploadSetID: set,
            size: 1,
            sha256: String(repeating: "0", count: 64),
            mime: "image/jpeg",
            location: ObjectLocation(pool: "media.photo", key: "explain/\(id)")
        )
        // the upload goes into a draft set made in the same rolled-back transaction, so that every part of
        // the statement runs
        let draft: PostgresQuery = """
            INSERT INTO upload_sets (id, owner_id, context, context_id, expires_at) VALUES (\(set.uuid), \(owner), 'post', 'explain', \(now.addingTimeInterval(3600)))
            """
        let record = RecordUploadStatement(media: new, maxCount: 1_000_000, now: now)
        let origin = OriginRecordStatement(id: media, renditionNames: ["w320.webp", "w320.jpg"])
        let leaseEnd = now.addingTimeInterval(60)
        let claim = ClaimQueuedJobStatement(kinds: [.photo, .audio], priority: .interactive, leaseEnd: leaseEnd, now: now)
        let reclaim = ClaimExpiredJobStatement(kinds: MediaKind.allCases, leaseEnd: leaseEnd, now: now)
        let events = Outbox.EventsAfterStatement(after: cursor, limit: 100)
        let statements: [(String, PostgresQuery?, PostgresQuery)] = [
            ("record an upload", draft, PostgresQuery(unsafeSQL: RecordUploadStatement.sql, binds: try record.makeBindings())),
            ("the origin's lookup", nil, PostgresQuery(unsafeSQL: OriginRecordStatement.sql, binds: try origin.makeBindings())),
            ("read a media item", nil, PostgresQuery(unsafeSQL: MediaStatement.sql, binds: try MediaStatement(id: media).makeBindings())),
            ("claim a job", nil, PostgresQuery(unsafeSQL: ClaimQueuedJobStatement.sql, binds: try claim.makeBindings())),
            ("claim an expired lease", nil, PostgresQuery(unsafeSQL: ClaimExpiredJobStatement.sql, binds: try reclaim.makeBindings())),
            ("read events after a cursor", nil, PostgresQuery(unsafeSQL: Outbox.EventsAfterStatement.sql, binds: try events.makeBindings())),
        ]
        var plans: [QueryPlan] = []
        for (name, setup, query) in statements {
            let explain = PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query.sql, binds: query.binds)
            let lines = try await database.client.withConnection { [logger] connection in
                try await connection.query("BEGIN", logger: logger)
                var lines: [String] = []
                do {
                    if let setup { try await connection.query(setup, logger: logger) }
                    for try await line in try await connection.query(explain, logger: logger).decode(String.self) { lines.append(line) }
                } catch {
                    try await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
                try await connection.query("ROLLBACK", logger: logger)
                return lines
            }
            plans.append(QueryPlan(statement: name, lines: lines))
        }
        return plans
    }
}
