import Foundation
import MediaCore
import PostgresMetadata
import PostgresNIO
import Testing

/// The statements every upload, ingested file, processing job and read of the event feed runs are prepared once per connection and,
/// after PostgreSQL's five trial executions, run on a cached (generic) plan: planning them again on every call
/// cost the database more than running them (1.6 ms per set commit and per claim on this machine).
@Suite(.serialized) struct CachedPlanTests {
    /// Statements and how many of their executions PostgreSQL planned anew, on the connection that ran them.
    struct Plans: Equatable {
        var generic: Int64
        var custom: Int64
    }

    @Test func theHotStatementsRunOnACachedPlanAfterFiveExecutions() async throws {
        // one connection, so that the statements below and the look at `pg_prepared_statements` share it
        let isolation = try await Isolation.make("CachedPlan", overrides: ["MEDIAGW_DATABASE_MAX_CONNECTIONS": "1"])
        let store = isolation.metadata
        let rounds = 8
        for round in 0..<rounds {
            let set = try await store.createUploadSet(
                NewUploadSet(
                    ownerID: "plans",
                    context: .post,
                    contextID: "post-\(round)",
                    isPrivate: false,
                    priority: .interactive,
                    expiresAt: Date().addingTimeInterval(3600)
                )
            )
            let id = MediaID.generate()
            let new = NewMedia(
                id: id,
                kind: .photo,
                ownerID: "plans",
                uploadSetID: set.id,
                size: 1234,
                sha256: String(repeating: "ab", count: 32),
                mime: "image/jpeg",
                location: ObjectLocation(pool: "media.photo", key: "\(set.id)/\(id)")
            )
            _ = try await store.recordUpload(new, maxCount: 5, now: Date())
            // a resumable upload's progress, recorded once per landed MiB
            let resumable = ResumableUpload(
                id: MediaID.generate(),
                uploadSetID: set.id,
                ownerID: "plans",
                length: 100,
                createdAt: Date(),
                expiresAt: Date().addingTimeInterval(600)
            )
            try await store.createResumableUpload(resumable)
            guard
                case .claimed = try await store.claimResumableAppend(
                    resumable.id,
                    at: 0,
                    claim: "c",
                    until: Date().addingTimeInterval(60),
                    now: Date()
                )
            else {
                Issue.record("the resumable upload of round \(round) is claimed")
                return
            }
            try await store.recordResumableProgress(resumable.id, claim: "c", received: 10, head: [1, 2, 3], length: nil, hashState: [9], until: nil)
            let committed = try await store.commitUploadSet(set.id, now: Date())
            #expect(committed.state == .committed)
            let job = try #require(
                try await store.claimJob(ClaimStep.everything, reclaimingExpired: true, lease: .seconds(60), now: Date()),
                "the job of round \(round)"
            )
            #expect(job.mediaID == id)
            #expect(try await store.renewLease(job, lease: .seconds(60), now: Date()))
            let rendition = RenditionRecord(
                name: "w160.webp",
                mime: "image/webp",
                width: 160,
                height: 120,
                size: 99,
                sha256: String(repeating: "cd", count: 32),
                location: ObjectLocation(pool: "media.derived", key: "\(id)/w160.webp")
            )
            let outcome = ProcessingOutcome(
                width: 640,
                height: 480,
                durationMilliseconds: nil,
                metadata: [:],
                renditions: [rendition],
                staged: []
            )
            #expect(try await store.completeJob(job, outcome: outcome, now: Date()).isEmpty)
            #expect(try await store.media(id)?.state == .ready)
            #expect(try await store.renditions(of: id).map(\.name) == ["w160.webp"])
            let events = try await store.events(after: 0, limit: 1000)
            #expect(events.filter { $0.mediaID == id }.map(\.type) == ["media.stored", "media.ready"])
        }

        var plans: [String: Plans] = [:]
        for try await (name, generic, custom) in try await isolation.client.query(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements"
        ).decode((String, Int64, Int64).self) {
            plans[name.split(separator: ".").last.map(String.init) ?? name] = Plans(generic: generic, custom: custom)
        }
        let cached = [
            "CreateUploadSetStatement", "RecordUploadStatement", "CommitUploadSetStatement", "ClaimQueuedJobStatement",
            "ClaimExpiredJobStatement", "RenewLeaseStatement", "DeleteJobStatement", "DeleteOtherRenditionsStatement",
            "UpsertRenditionStatement", "AppendStatement", "SequencerLockStatement", "LastNumberStatement",
            "UnnumberedStatement", "EventsAfterStatement", "HorizonStatement", "MediaStatement", "RenditionsStatement",
            "RecordResumableProgressStatement",
        ]
        for name in cached {
            let found = try #require(plans[name], "\(name) is prepared on the connection: \(plans.keys.sorted())")
            #expect(found.custom + found.generic == Int64(rounds), "\(name) ran once per round: \(found)")
            #expect(found.custom <= 5, "\(name) was planned again after PostgreSQL's five trial plans: \(found)")
            #expect(found.generic >= Int64(rounds - 5), "\(name) ran on its cached plan: \(found)")
        }
        // a row of one kind, by kind and id: the plan of its one partition costs less than a cached plan over
        // all three, so PostgreSQL plans it on each execution (parsed once all the same)
        for name in ["LockMediaStatement", "MarkMediaReadyStatement"] {
            let found = try #require(plans[name], "\(name) is prepared on the connection: \(plans.keys.sorted())")
            #expect(found.custom + found.generic == Int64(rounds), "\(name) ran once per round: \(found)")
        }
    }
}
