import MediaConcurrency
import MediaCore
import Synchronization
import Testing

@Suite struct GroupCommitterTests {
    final class Calls: Sendable {
        let batches = Mutex<[[Int]]>([])
    }

    final class Answers: Sendable {
        let values = Mutex<[Int: Result<Int, MediaError>]>([:])
    }

    /// A gate the first operation waits at, so that the test decides when it ends (no sleeps).
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>], entered: Bool)>((false, [], false))

        var entered: Bool { state.withLock { $0.entered } }

        func wait() async {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state in
                    state.entered = true
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }

        func open() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    @Test func itemsSubmittedWhileAnOperationRunsGoTogetherInTheNext() async throws {
        let calls = Calls()
        let gate = Gate()
        let committer = GroupCommitter<String, Int> { _, items in
            calls.batches.withLock { $0.append(items) }
            await gate.wait()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await committer.submit(0, to: "bucket") }
            while !gate.entered { await Task.yield() }  // the first operation is running, alone
            for item in 1..<20 { group.addTask { try await committer.submit(item, to: "bucket") } }
            while await committer.queued(for: "bucket") < 19 { await Task.yield() }
            gate.open()
            try await group.waitForAll()
        }
        let batches = calls.batches.withLock { $0 }
        #expect(batches.count == 2)
        #expect(batches.first == [0], "the first item went alone, at once")
        #expect(batches.last?.sorted() == Array(1..<20), "the others waited and went together")
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

    @Test func aBatcherAnswersEachItemWithItsOwnResultAndCapsItsBatches() async throws {
        let calls = Calls()
        let gate = Gate()
        let batcher = Batcher<Int, Int>(maxBatch: 8) { items in
            calls.batches.withLock { $0.append(items) }
            await gate.wait()
            return items.map { $0 % 5 == 0 ? .failure(MediaError(.limitExceeded, "\($0)")) : .success($0 * 10) }
        }
        let results = Answers()
        @Sendable func submit(_ item: Int) async {
            do {
                let value = try await batcher.submit(item)
                results.values.withLock { $0[item] = .success(value) }
            } catch {
                results.values.withLock { $0[item] = .failure(error as? MediaError ?? MediaError(.internal, "\(error)")) }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await submit(1) }
            while !gate.entered { await Task.yield() }
            for item in 2...20 { group.addTask { await submit(item) } }
            while await batcher.queued < 19 { await Task.yield() }
            gate.open()
            await group.waitForAll()
        }
        let batches = calls.batches.withLock { $0 }
        #expect(batches.map(\.count) == [1, 8, 8, 3], "the first alone, then the queue in batches of at most 8")
        let answers = results.values.withLock { $0 }
        #expect(answers.count == 20)
        for item in 1...20 {
            switch answers[item] {
            case .success(let value): #expect(item % 5 != 0 && value == item * 10)
            case .failure(let error): #expect(item % 5 == 0 && error.message == "\(item)")
            case nil: Issue.record("no answer for \(item)")
            }
        }
    }

    @Test func aBatchThatAnswersForTooFewItemsFailsTheRest() async throws {
        let batcher = Batcher<Int, Int>(maxBatch: 4) { _ in [] }
        await #expect(throws: BatcherError.self) { try await batcher.submit(1) }
    }
}
