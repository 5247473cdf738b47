import MediaConcurrency
import MediaCore
import NIOCore
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
