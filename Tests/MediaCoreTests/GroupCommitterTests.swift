@testable import MediaCore
import Synchronization
import Testing

@Suite struct GroupCommitterTests {
    final class Calls: Sendable {
        let batches = Mutex<[[Int]]>([])
    }

    @Test func itemsSubmittedWhileAnOperationRunsGoTogetherInTheNext() async throws {
        let calls = Calls()
        let committer = GroupCommitter<String, Int> { _, items in
            calls.batches.withLock { $0.append(items) }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for item in 0..<20 {
                group.addTask { try await committer.submit(item, to: "bucket") }
                if item == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await group.waitForAll()
        }
        let batches = calls.batches.withLock { $0 }
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<20), "every item carried exactly once")
        #expect(batches.first == [0], "the first item went alone, at once")
        #expect(batches.count < 20, "the others were grouped")
    }

    @Test func keysDoNotWaitForEachOther() async throws {
        let calls = Calls()
        let committer = GroupCommitter<Int, Int> { key, items in
            calls.batches.withLock { $0.append([key] + items) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in 0..<5 { group.addTask { try await committer.submit(key * 10, to: key) } }
            try await group.waitForAll()
        }
        #expect(Set(calls.batches.withLock { $0 }.map { $0[0] }) == Set(0..<5))
    }

    @Test func aFailedOperationFailsEveryItemItCarried() async {
        struct Boom: Error {}
        let committer = GroupCommitter<String, Int> { _, _ in throw Boom() }
        await #expect(throws: Boom.self) { try await committer.submit(1, to: "k") }
        // and the next submission is tried again
        await #expect(throws: Boom.self) { try await committer.submit(2, to: "k") }
    }
}
