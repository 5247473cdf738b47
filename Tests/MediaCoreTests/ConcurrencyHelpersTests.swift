import MediaConcurrency
import MediaCore
import NIOCore
import Synchronization
import Testing

@Suite struct ConcurrencyHelpersTests {
    @Test func deadlinePassesTheResultThrough() async throws {
        #expect(try await withDeadline(.seconds(5)) { 42 } == 42)
    }

    @Test func deadlineCancelsASlowOperation() async throws {
        let started = ContinuousClock.now
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) {
                try await Task.sleep(for: .seconds(600))
            }
        }
        // far below the operation's 600 s, with room for a test run whose other tests keep the few threads
        // of the cooperative pool busy for a while (the deadline can only fire once one is free)
        #expect(ContinuousClock.now - started < .seconds(120))
    }

    /// The chaos run's stuck job: a PostgresNIO query on a connection whose server stopped answering ignores
    /// cancellation, and a deadline that waited for it held its worker for good.
    @Test func deadlineAnswersEvenWhenTheOperationIgnoresCancellation() async throws {
        let parked = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let finished = Mutex(false)
        let unpark: @Sendable () -> Void = { parked.withLock { $0.take() }?.resume() }
        // a deadline that waits for the operation would wait until this lets it go: the check below fails
        // then instead of the test hanging
        let backstop = Task.detached {
            try await Task.sleep(for: .seconds(30))
            unpark()
        }
        let started = ContinuousClock.now
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) {
                // deaf to cancellation: only the test resumes it
                await withCheckedContinuation { continuation in parked.withLock { $0 = continuation } }
                finished.withLock { $0 = true }
            }
        }
        #expect(ContinuousClock.now - started < .seconds(20), "the caller was answered without waiting for the operation")
        #expect(!finished.withLock { $0 }, "the operation still runs in the background")
        backstop.cancel()
        while !finished.withLock({ $0 }) {
            unpark()
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func cancellingTheCallerCancelsTheOperation() async throws {
        let operationCancelled = Mutex(false)
        let caller = Task {
            try await withDeadline(.seconds(600)) {
                do {
                    try await Task.sleep(for: .seconds(600))
                } catch {
                    operationCancelled.withLock { $0 = true }
                    throw error
                }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        while !operationCancelled.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func aCallerCancelledBeforeTheDeadlineStartsNeverRunsTheOperation() async throws {
        let ran = Mutex(false)
        let caller = Task {
            while !Task.isCancelled { await Task.yield() }
            return try await withDeadline(.seconds(600)) { ran.withLock { $0 = true } }
        }
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
        #expect(!ran.withLock { $0 })
    }

    @TaskLocal static var requestName: String?

    @Test func theOperationSeesTheCallersTaskLocals() async throws {
        let seen = try await Self.$requestName.withValue("upload 7") {
            try await withDeadline(.seconds(5)) { Self.requestName }
        }
        #expect(seen == "upload 7")
    }

    @Test func objectChunksCollectsInOrderAndRefusesOversizedContent() async throws {
        let chunks = BlobChunks {
            let parts = ["ab", "cd", "e"].map { ByteBuffer(string: $0) }
            let index = Counter()
            return { await index.next(parts) }
        }
        #expect(try await chunks.collect(upTo: 10) == ByteBuffer(string: "abcde"))
        await #expect(throws: BlobStoreError.self) { try await chunks.collect(upTo: 4) }
    }

    /// Iterating twice starts over: every iteration gets its own state.
    actor Counter {
        var position = 0
        func next(_ parts: [ByteBuffer]) -> ByteBuffer? {
            defer { position += 1 }
            return position < parts.count ? parts[position] : nil
        }
    }
}
