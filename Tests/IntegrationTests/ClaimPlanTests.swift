import Foundation
import MediaCore
import PostgresMetadata
import PostgresNIO
import Testing

/// A claim of interactive work reads only interactive jobs, however many bulk jobs wait before them.
@Suite struct ClaimPlanTests {
    @Test func anInteractiveClaimBehindABulkBacklogReadsOnlyInteractiveJobs() async throws {
        let isolation = try await Isolation.make("ClaimPlan")
        let store = isolation.metadata
        // a bulk backlog queued a day ago, live jobs queued since: in run_after order every bulk job comes
        // first, and the statistics (half the queue interactive) make the first interactive job look near
        try await store.database.client.query(
            """
            INSERT INTO jobs (queue, media_id, media_kind, priority, run_after)
            SELECT 'process', gen_random_uuid(), 'photo', CASE WHEN g <= 4000 THEN 'bulk' ELSE 'interactive' END,
                   CASE WHEN g <= 4000 THEN now() - interval '1 day' ELSE now() - interval '1 minute' END
            FROM generate_series(1, 44000) g
            """
        )
        try await store.database.client.query("ANALYZE jobs")
        let plans = try await store.hotStatementPlans()
        let claim = try #require(plans.first { $0.statement == "claim a job" })
        let text = claim.lines.joined(separator: "\n")
        #expect(claim.indexes.contains("jobs_claim"), "\(text)")
        #expect(claim.rowsFilteredOut < 100, "the claim walked other jobs to find its own:\n\(text)")
        #expect(!claim.scansATable, "\(text)")
    }
}
