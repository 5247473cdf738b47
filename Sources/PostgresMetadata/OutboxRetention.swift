import Foundation
import Logging
import MediaCore
import PostgresNIO

/// Retention of the outbox by day partitions (migration 9): each UTC day's events live in a table
/// `outbox_YYYYMMDD`, attached to `outbox`; old days are detached concurrently and dropped, new ones made
/// and attached ahead. Neither step takes a lock that stops writers: `ATTACH` and `DETACH ... CONCURRENTLY`
/// take SHARE UPDATE EXCLUSIVE on the outbox, which inserts do not wait for, and the detached table is
/// dropped on its own. Several gateways may rotate at once: every step is safe to repeat or to lose to
/// another gateway, and an interrupted detach is finished by the next rotation.
extension PostgresMetadataStore {
    public func rotateOutbox(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation {
        var rotation = try await rotateDays(
            of: DayTables(table: "outbox"),
            droppingDaysEndingBy: cutoff,
            daysAhead: daysAhead,
            now: now,
            beforeDetach: { name in
                let (unnumbered, highest) = try await run("read_outbox_day") { [client, logger] in
                    var answer = (0, Int64(0))
                    for try await row in try await client.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FILTER (WHERE seq IS NULL), coalesce(max(seq), 0) FROM \(name)"),
                        logger: logger
                    ).decode((Int, Int64).self) {
                        answer = row
                    }
                    return answer
                }
                guard unnumbered == 0 else {
                    // numbered by the next read of the events; dropped by the next rotation
                    logger.warning("an old outbox day still has events without a number; kept", metadata: ["outbox.day": "\(name)"])
                    return false
                }
                try await run("record_outbox_horizon") { [client, logger] in
                    try await client.query(
                        "UPDATE outbox_horizon SET dropped_through = greatest(dropped_through, \(highest)), updated_at = now()",
                        logger: logger
                    )
                }
                return true
            },
            drop: { name in
                // its highest number recorded in the horizon first (a detach that someone else began did not
                // record it)
                try await run("drop_outbox_day") { [client, logger] in
                    try await client.withTransaction(logger: logger) { connection in
                        try await connection.query(
                            PostgresQuery(
                                unsafeSQL: """
                                    UPDATE outbox_horizon SET dropped_through = greatest(dropped_through, (SELECT coalesce(max(seq), 0) FROM \(name))),
                                        updated_at = now()
                                    """
                            ),
                            logger: logger
                        )
                        try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE \(name)"), logger: logger)
                    }
                }
            }
        )
        rotation.horizon = try await outboxHorizon()
        return rotation
    }

    /// The highest sequence dropped by retention (0 before any drop).
    func outboxHorizon() async throws -> Int64 {
        try await run("read_outbox_horizon") { [client, logger] in
            for try await horizon in try await client.query("SELECT dropped_through FROM outbox_horizon", logger: logger).decode(Int64.self) {
                return horizon
            }
            return 0
        }
    }

    /// Rotates a table partitioned by UTC day (``DayTables``): finishes detaches left pending, drops
    /// leftover day tables, detaches (concurrently) and drops the days that ended by `cutoff`, oldest first,
    /// and makes the days up to `daysAhead` after today. `beforeDetach` may keep a day (and the later ones)
    /// for the next rotation; `drop` drops a detached day table.
    func rotateDays(
        of days: DayTables,
        droppingDaysEndingBy cutoff: Date,
        daysAhead: Int,
        now: Date,
        beforeDetach: (String) async throws -> Bool = { _ in true },
        drop: (String) async throws -> Void
    ) async throws -> OutboxRotation {
        var rotation = OutboxRotation()
        // a detach interrupted by a timeout or a crash is finished first
        for name in try await partitions(of: days, pendingDetach: true) {
            try await run("finalize_day_detach") { [client, logger] in
                try await client.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(days.table) DETACH PARTITION \(name) FINALIZE"), logger: logger)
            }
            try await drop(name)
        }
        // tables of dropped days left behind by an interrupted rotation, and of days never attached
        for (name, day) in try await unattachedDayTables(of: days) where OutboxRotation.end(ofDay: day) <= cutoff {
            try await drop(name)
        }
        for (name, day) in try await partitions(of: days, pendingDetach: false).compactMap(days.day).sorted(by: { $0.1 < $1.1 })
        where OutboxRotation.end(ofDay: day) <= cutoff {
            guard try await beforeDetach(name) else { break }
            do {
                try await run("detach_day") { [client, logger] in
                    try await client.query(
                        PostgresQuery(unsafeSQL: "ALTER TABLE \(days.table) DETACH PARTITION \(name) CONCURRENTLY"),
                        logger: logger
                    )
                }
            } catch {
                // another gateway is detaching it, or a long transaction outlasted the statement timeout: the
                // detach stays pending and the next rotation finishes it
                logger.info("day not detached yet", metadata: ["day_table": "\(name)", "error": "\(error)"])
                break
            }
            try await drop(name)
            rotation.droppedDays.append(day)
        }
        let first = OutboxRotation.day(of: now)
        let last = first.addingTimeInterval(Double(max(0, daysAhead)) * 86_400)
        rotation.addedDays = try await run("add_days") { [client, logger] in
            var added = 0
            for try await count in try await client.query(
                "SELECT day_partitions_add(\(days.table), \(DayTables.name(of: first))::date, \(DayTables.name(of: last))::date)",
                logger: logger
            ).decode(Int.self) {
                added = count
            }
            return added
        }
        rotation.lastDay = try await partitions(of: days, pendingDetach: false).compactMap(days.day).map(\.1).max()
        return rotation
    }

    /// A day-partitioned table's partitions, attached or with a detach pending.
    private func partitions(of days: DayTables, pendingDetach: Bool) async throws -> [String] {
        try await run("list_days") { [client, logger] in
            var names: [String] = []
            for try await name in try await client.query(
                """
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = \(days.table)::regclass AND i.inhdetachpending = \(pendingDetach)
                """,
                logger: logger
            ).decode(String.self) where days.day(named: name) != nil {
                names.append(name)
            }
            return names
        }
    }

    /// Day tables of this schema that are no partition of the table.
    private func unattachedDayTables(of days: DayTables) async throws -> [(String, Date)] {
        try await run("list_unattached_days") { [client, logger] in
            var tables: [(String, Date)] = []
            for try await name in try await client.query(
                """
                SELECT c.relname::text FROM pg_class c
                WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname ~ \(days.pattern)
                    AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
                """,
                logger: logger
            ).decode(String.self) {
                if let day = days.day(named: name) { tables.append((name, day)) }
            }
            return tables
        }
    }
}

/// The names and bounds of a day-partitioned table's partitions: `<table>_YYYYMMDD` holds the rows of that
/// UTC day (made by the SQL function `day_partitions_add`).
struct DayTables {
    /// The partitioned table: `outbox` or `correlation`.
    let table: String

    /// The regular expression of its day tables' names.
    var pattern: String { "^\(table)_[0-9]{8}$" }

    /// `YYYY-MM-DD` of the UTC day of `date`.
    static func name(of date: Date) -> String {
        let (year, month, day) = UTCCalendar.civilDate(of: date)
        return UTCCalendar.digits(year, 4) + "-" + UTCCalendar.digits(month, 2) + "-" + UTCCalendar.digits(day, 2)
    }

    /// The day of a table named `<table>_YYYYMMDD`; `nil` for any other name.
    func day(named name: String) -> Date? {
        let prefix = table + "_"
        guard name.count == prefix.count + 8, name.hasPrefix(prefix), name.dropFirst(prefix.count).allSatisfy({ $0.isASCII && $0.isNumber }),
            let digits = Int(name.dropFirst(prefix.count)),
            digits > 0
        else { return nil }
        return UTCCalendar.startOfDay(yyyymmdd: digits)
    }

    func day(_ name: String) -> (String, Date)? {
        day(named: name).map { (name, $0) }
    }
}
