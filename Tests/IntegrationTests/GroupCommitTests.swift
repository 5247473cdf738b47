import Foundation
import MediaCore
import PostgresMetadata
import Testing

/// Group commit on the real PostgreSQL: uploads racing into sets share transactions, and each keeps the
/// outcome it would have alone.
@Suite struct GroupCommitTests {
    @Test func racingUploadsShareTransactionsAndEachSetStillHoldsItsLimit() async throws {
        let isolation = try await Isolation.suite("GroupCommit")
        let groupCommit = PostgresGroupCommit(store: isolation.metadata)
        let store = PostgresMetadataStore(database: isolation.metadata.database, groupCommit: groupCommit, logger: TestStack.logger)
        let sets = try await withThrowingTaskGroup(of: UploadSet.self) { group in
            for index in 0..<6 {
                group.addTask {
                    try await store.createUploadSet(
                        NewUploadSet(ownerID: "batch", context: .post, contextID: "p\(index)", expiresAt: Date().addingTimeInterval(3600))
                    )
                }
            }
            return try await group.reduce(into: [UploadSet]()) { $0.append($1) }
        }
        #expect(Set(sets.map(\.contextID)).count == 6 && sets.allSatisfy { $0.state == .draft })
        let outcomes = try await withThrowingTaskGroup(of: MetadataStoreError.Code?.self) { group in
            for index in 0..<60 {
                let set = sets[index % sets.count]
                group.addTask {
                    let id = MediaID.generate()
                    do {
                        _ = try await store.recordUpload(
                            NewMedia(
                                id: id,
                                kind: .photo,
                                ownerID: "batch",
                                uploadSetID: set.id,
                                size: 1,
                                sha256: String(repeating: "0", count: 64),
                                mime: "image/jpeg",
                                location: ObjectLocation(pool: "media.photo", key: "\(set.id)/\(id)")
                            ),
                            maxCount: 5,
                            now: Date()
                        )
                        return nil
                    } catch let error as MetadataStoreError {
                        if error.code != .limitExceeded { Issue.record("an upload failed: \(error)") }
                        return error.code
                    }
                }
            }
            return try await group.reduce(into: [MetadataStoreError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 30, "five per set: \(outcomes.map { $0.map { "\($0)" } ?? "ok" })")
        #expect(outcomes.filter { $0 == .limitExceeded }.count == 30, "the rest refused, one by one")
        for set in sets {
            #expect(try await store.uploadSet(set.id)?.liveCounts.photo == 5)
            #expect(try await store.media(inSet: set.id).count == 5)
        }
        let recorded = await groupCommit.recorded
        #expect(recorded.uploads == 60)
        #expect(recorded.transactions < 60, "racing uploads shared transactions: \(recorded)")

        // the batch commits: every set once, with one upload_set.committed event each
        let committed = try await withThrowingTaskGroup(of: UploadSet.self) { group in
            for set in sets { group.addTask { try await store.commitUploadSet(set.id, now: Date()) } }
            return try await group.reduce(into: [UploadSet]()) { $0.append($1) }
        }
        #expect(committed.allSatisfy { $0.state == .committed } && Set(committed.map(\.id)) == Set(sets.map(\.id)))
        let events = try await store.events(after: 0, limit: 1000).filter { $0.type == "upload_set.committed" }
        #expect(Set(events.compactMap(\.uploadSetID)) == Set(sets.map(\.id)) && events.count == sets.count)
        for event in events {
            // each event names its own set's five media, whichever batch carried it
            let payload = try JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any]
            let named = Set((payload?["media_ids"] as? [String]) ?? [])
            let media = Set(try await store.media(inSet: try #require(event.uploadSetID)).map(\.id.description))
            #expect(named == media && named.count == 5)
        }
        #expect(try await store.commitUploadSet(sets[0].id, now: Date()).state == .committed, "a commit again changes nothing")
    }
}
