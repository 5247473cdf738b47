import Foundation
import MediaCore
import MediaTesting
import Synchronization
import Testing

/// An edge double that records what it was asked to purge and fails while `down`.
final class RecordingEdge: EdgeCache {
    let purged = Mutex<[EdgeObject]>([])
    let down = Mutex(false)
    var name: String { "edge-1" }

    func purge(_ objects: [EdgeObject]) async throws {
        if down.withLock({ $0 }) { throw MediaError(.unavailable, "the edge is down") }
        purged.withLock { $0 += objects }
    }
}

@Suite struct EdgePurgeTests {
    let store = InMemoryMetadataStore()

    func stored(_ kind: MediaKind, mime: String, renditions: [String]) async throws -> Media {
        let set = try await store.createUploadSet(
            NewUploadSet(ownerID: "o", context: .post, contextID: "c", expiresAt: Date().addingTimeInterval(3600))
        )
        let id = MediaID.generate()
        let media = try await store.recordUpload(
            NewMedia(
                id: id,
                kind: kind,
                ownerID: "o",
                uploadSetID: set.id,
                size: 3_000_000,
                sha256: String(repeating: "a", count: 64),
                mime: mime,
                location: ObjectLocation(pool: "media.\(kind)", key: "\(set.id)/\(id)")
            ),
            maxCount: 5,
            now: Date()
        )
        let job = try #require(try await store.claimJob(ClaimStep.everything, reclaimingExpired: true, lease: .seconds(60), now: Date()))
        let records = renditions.map { name in
            RenditionRecord(
                name: name,
                mime: name.hasSuffix(".mp4") ? "video/mp4" : name.hasSuffix(".webp") ? "image/webp" : "image/jpeg",
                width: 160,
                height: 120,
                size: name.hasSuffix(".mp4") ? 2_500_000 : 1000,
                sha256: String(repeating: "b", count: 64),
                location: ObjectLocation(pool: "media.derived", key: "\(id)/v1/\(name)")
            )
        }
        _ = try await store.completeJob(
            job,
            outcome: ProcessingOutcome(width: nil, height: nil, durationMilliseconds: nil, metadata: [:], renditions: records, staged: []),
            now: Date()
        )
        return media
    }

    @Test func aDeletedPhotoIsPurgedUnderEveryPathItWasServedUnder() async throws {
        let edge = RecordingEdge()
        let purger = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        #expect(try await purger.pass().events == 0, "a new purger starts at the end of the outbox")
        let photo = try await stored(.photo, mime: "image/jpeg", renditions: ["w160.webp", "w160.jpg", "w320.webp", "w320.jpg"])
        #expect(try await purger.pass().purged == 0, "nothing is deleted yet")
        _ = try await store.tombstoneMedia(photo.id, now: Date())
        #expect(try await purger.pass().purged == 1)
        let purged = edge.purged.withLock { $0 }
        #expect(
            Set(purged) == [
                EdgeObject(path: "/m/\(photo.id)/original.jpg", caching: .whole),
                EdgeObject(path: "/m/\(photo.id)/v1/w160.webp", caching: .whole), EdgeObject(path: "/m/\(photo.id)/v1/w160.jpg", caching: .whole),
                EdgeObject(path: "/m/\(photo.id)/v1/w320.webp", caching: .whole), EdgeObject(path: "/m/\(photo.id)/v1/w320.jpg", caching: .whole),
                EdgeObject(path: "/m/\(photo.id)/v1/w160", caching: .negotiated), EdgeObject(path: "/m/\(photo.id)/v1/w320", caching: .negotiated),
            ]
        )
        #expect(purged.count == 7)
        #expect(try await purger.pass().events == 0, "each deletion is purged once")
    }

    @Test func aDeletedVideoIsPurgedSliceBySlice() async throws {
        let edge = RecordingEdge()
        let purger = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        try await purger.pass()
        let video = try await stored(.video, mime: "video/mp4", renditions: ["video.mp4", "poster-w320.jpg"])
        _ = try await store.tombstoneMedia(video.id, now: Date())
        try await purger.pass()
        let purged = edge.purged.withLock { $0 }
        #expect(purged.contains(EdgeObject(path: "/m/\(video.id)/original.mp4", caching: .sliced(size: 3_000_000))))
        #expect(purged.contains(EdgeObject(path: "/m/\(video.id)/v1/video.mp4", caching: .sliced(size: 2_500_000))))
        #expect(purged.contains(EdgeObject(path: "/m/\(video.id)/v1/poster-w320.jpg", caching: .whole)))
    }

    @Test func aPurgeThatFailsIsTriedAgainWithNothingSkipped() async throws {
        let edge = RecordingEdge()
        let purger = EdgePurger(metadata: store, edge: edge, batch: 2, logger: quietLogger)
        try await purger.pass()
        var deleted: [MediaID] = []
        for _ in 0..<3 {
            let photo = try await stored(.photo, mime: "image/jpeg", renditions: [])
            _ = try await store.tombstoneMedia(photo.id, now: Date())
            deleted.append(photo.id)
        }
        edge.down.withLock { $0 = true }
        // the events before the first deletion are read; then the cursor stays on the batch that has it
        for _ in 0..<10 { _ = try? await purger.pass() }
        await #expect(throws: MediaError.self) { try await purger.pass() }
        await #expect(throws: MediaError.self) { try await purger.pass() }
        edge.down.withLock { $0 = false }
        var passes = 0
        while try await purger.pass().events > 0 { passes += 1 }
        #expect(passes >= 2, "the batch is smaller than the backlog")
        #expect(edge.purged.withLock { $0 }.map(\.path) == deleted.map { "/m/\($0)/original.jpg" })
    }

    @Test func twoPurgersOfOneEdgeShareItsCursor() async throws {
        let edge = RecordingEdge()
        let first = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        let second = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        try await first.pass()
        let photo = try await stored(.photo, mime: "image/jpeg", renditions: [])
        _ = try await store.tombstoneMedia(photo.id, now: Date())
        #expect(try await first.pass().purged == 1)
        #expect(try await second.pass().events == 0, "the other gateway's purger reads on from where the first left")
    }

    @Test func aPurgerThatFellBehindTheOutboxRetentionSaysSoAndReadsOnFromTheHorizon() async throws {
        let edge = RecordingEdge()
        let purger = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        let lost = try await stored(.photo, mime: "image/jpeg", renditions: [])
        try await purger.pass()
        edge.down.withLock { $0 = true }
        _ = try await store.tombstoneMedia(lost.id, now: Date())
        await #expect(throws: MediaError.self) { try await purger.pass() }
        let now = Date()
        let rotation = try await store.rotateOutbox(
            droppingDaysEndingBy: OutboxRotation.end(ofDay: OutboxRotation.day(of: now)),
            daysAhead: 1,
            now: now
        )
        #expect(rotation.horizon > 0)
        edge.down.withLock { $0 = false }
        #expect(try await purger.pass() == (0, 0), "the dropped deletion is reported, not purged")
        #expect(try await store.consumerCursor(purger.consumer) == rotation.horizon)
        let later = try await stored(.photo, mime: "image/jpeg", renditions: [])
        _ = try await store.tombstoneMedia(later.id, now: Date())
        #expect(try await purger.pass().purged == 1)
        #expect(edge.purged.withLock { $0 }.map(\.path) == ["/m/\(later.id)/original.jpg"])
    }

    @Test func aPurgerWhoseCursorAnotherMovedPurgesThatBatchAgainOnceThenFollows() async throws {
        let edge = RecordingEdge()
        let first = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        let second = EdgePurger(metadata: store, edge: edge, logger: quietLogger)
        try await first.pass()
        let photo = try await stored(.photo, mime: "image/jpeg", renditions: [])
        #expect(try await second.pass().events > 0, "the second reads the upload's events and remembers its cursor")
        _ = try await store.tombstoneMedia(photo.id, now: Date())
        #expect(try await first.pass().purged == 1)
        #expect(try await second.pass().purged == 1, "its remembered cursor is behind: the batch is purged again")
        #expect(try await second.pass().events == 0, "the failed compare and set made it read the cursor again")
        #expect(try await first.pass().events == 0)
        let other = try await stored(.photo, mime: "image/jpeg", renditions: [])
        _ = try await store.tombstoneMedia(other.id, now: Date())
        #expect(try await second.pass().purged == 1)
        #expect(
            edge.purged.withLock { $0 }.map(\.path) == ["/m/\(photo.id)/original.jpg", "/m/\(photo.id)/original.jpg", "/m/\(other.id)/original.jpg"]
        )
    }
}
