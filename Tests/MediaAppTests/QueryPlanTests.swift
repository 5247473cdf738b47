import PostgresMetadata
import Testing

@Suite struct QueryPlanTests {
    private func plan(_ text: String) -> PostgresMetadataStore.QueryPlan {
        PostgresMetadataStore.QueryPlan(statement: "test", lines: text.split(separator: "\n").map(String.init))
    }

    @Test func emptyPartitionsScannedBesideAnIndexedOneAreNotAWholeTableRead() {
        let events = plan(
            """
            Limit (actual rows=100 loops=1)
              ->  Sort (actual rows=100 loops=1)
                    ->  Append (actual rows=100 loops=1)
                          ->  Index Scan using outbox_20261130_seq_idx on outbox_20261130 outbox_1 (actual rows=100 loops=1)
                                Index Cond: (seq > '999900'::bigint)
                          ->  Seq Scan on outbox_20261201 outbox_2 (actual rows=0 loops=1)
                                Filter: (seq > '999900'::bigint)
                          ->  Seq Scan on outbox_20261202 outbox_3 (never executed)
                                Filter: (seq > '999900'::bigint)
            """
        )
        #expect(!events.scansATable)
        #expect(events.indexes == ["outbox_20261130_seq_idx"])
    }

    @Test func aSequentialScanThatFoundOrFilteredRowsIsAWholeTableRead() {
        let found = plan(
            """
            Limit (actual rows=1 loops=1)
              ->  Seq Scan on media_photo (actual rows=1 loops=1)
            """
        )
        let filtered = plan(
            """
            Limit (actual rows=0 loops=1)
              ->  Seq Scan on jobs j (actual rows=0 loops=1)
                    Filter: (state = 'queued'::text)
                    Rows Removed by Filter: 5000
              ->  Index Scan using jobs_pkey on jobs (actual rows=0 loops=1)
            """
        )
        #expect(found.scansATable && found.rowsFilteredOut == 0)
        #expect(filtered.scansATable && filtered.rowsFilteredOut == 5000)
    }
}
