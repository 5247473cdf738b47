import CRadosShim
import Foundation
import NIOCore
import Testing

@testable import RadosStore

/// The pool behind the origin's read buffers (`chunk_pool.h`), on pools of its own, and the allocator the
/// RADOS store reads into.
@Suite struct ReadBufferPoolTests {
    @Test func theLastSlotGivenBackIsTheFirstTakenAndTheCountsFollow() throws {
        let pool = try #require(mgw_chunk_pool_create(64 << 10, 4 * (64 << 10)))
        let first = try #require(mgw_chunk_pool_take(pool, 64 << 10))
        let second = try #require(mgw_chunk_pool_take(pool, 1000))
        #expect(first != second)
        #expect(mgw_chunk_pool_in_use(pool) == 2)
        #expect(mgw_chunk_pool_touched(pool) == 2)
        mgw_chunk_pool_give(pool, first)
        mgw_chunk_pool_give(pool, second)
        #expect(mgw_chunk_pool_in_use(pool) == 0)
        // the slot freed last is reused, and no new slot is touched
        #expect(mgw_chunk_pool_take(pool, 64 << 10) == second)
        #expect(mgw_chunk_pool_take(pool, 64 << 10) == first)
        #expect(mgw_chunk_pool_touched(pool) == 2)
    }

    @Test func aSizeLargerThanASlotOrNoFreeSlotGetsNothing() throws {
        let pool = try #require(mgw_chunk_pool_create(10_000, 2 * 12_288))
        // slots are whole pages: 10,000 bytes round up to 12,288
        #expect(mgw_chunk_pool_slot_size(pool) == 12_288)
        #expect(mgw_chunk_pool_take(pool, 12_289) == nil)
        #expect(mgw_chunk_pool_take(pool, 0) == nil)
        let slots = [mgw_chunk_pool_take(pool, 12_288), mgw_chunk_pool_take(pool, 1)]
        #expect(slots.allSatisfy { $0 != nil })
        #expect(mgw_chunk_pool_take(pool, 1) == nil)
        #expect(slots.allSatisfy { mgw_chunk_pool_owns(pool, $0) != 0 })
        let elsewhere = malloc(16)
        defer { free(elsewhere) }
        #expect(mgw_chunk_pool_owns(pool, elsewhere) == 0)
    }

    /// ByteBuffer rounds capacities up to a power of two; a slot that did not would fit no chunk of an odd
    /// size, and every read would silently use malloc.
    @Test func slotsFitTheBuffersByteBufferAllocatesForAChunk() {
        let chunks: [Int] = [16_384, 100_000, 262_144, 1_048_576, 1_572_864, 3_145_728]
        let slots: [Int] = [16_384, 131_072, 262_144, 1_048_576, 2_097_152, 4_194_304]
        #expect(chunks.map { ReadBuffers.slotSize(forChunk: $0) } == slots)
        for chunk in chunks {
            #expect(ByteBufferAllocator().buffer(capacity: chunk).capacity <= ReadBuffers.slotSize(forChunk: chunk), "\(chunk)")
        }
    }

    @Test func aRegionSmallerThanOneSlotMakesNoPool() {
        #expect(mgw_chunk_pool_create(64 << 10, 4096) == nil)
        #expect(mgw_chunk_pool_create(0, 1 << 20) == nil)
    }

    static func isSlot(_ buffer: ByteBuffer) -> Bool {
        buffer.withVeryUnsafeBytes { mgw_read_buffers_owns($0.baseAddress) != 0 }
    }

    /// A slot stands for a budget permit: a buffer copied on write at the same size would otherwise take a
    /// slot without one, and its free would return a permit never taken (the budget growing by one).
    @Test func onlyBudgetedReadBuffersAreSlotsNotTheirCopiesNorOtherAllocations() async throws {
        let allocator = ReadBuffers.allocator(chunkSize: 256 << 10, buffers: 192, smallBuffers: 64)
        // the first store of the test process set the pools' sizes
        let slotSize = try #require(ReadBuffers.slotSizes.last)
        var budgeted = try await ReadBuffers.buffer(slotSize, from: allocator, wait: .seconds(60))
        #expect(Self.isSlot(budgeted))
        budgeted.writeRepeatingByte(7, count: 100)
        var copy = budgeted
        copy.setBytes([9], at: 0)
        #expect(!Self.isSlot(copy), "a copy on write holds no permit")
        #expect(Self.isSlot(budgeted))
        #expect(copy.getBytes(at: 0, length: 2) == [9, 7] && budgeted.getBytes(at: 0, length: 2) == [7, 7])
        #expect(!Self.isSlot(allocator.buffer(capacity: slotSize)), "an allocation outside the budget")
        // a budgeted buffer that outgrows its slot moves to malloc with its bytes
        budgeted.writeRepeatingByte(8, count: slotSize)
        #expect(!Self.isSlot(budgeted))
        #expect(budgeted.getBytes(at: 0, length: 2) == [7, 7] && budgeted.readableBytes == slotSize + 100)
    }

    @Test func buffersOfTheReadAllocatorHoldWhatIsWrittenGrowAndCopyOnWrite() {
        let allocator = ReadBuffers.allocator(chunkSize: 256 << 10, buffers: 192, smallBuffers: 64)
        var buffers: [ByteBuffer] = []
        for index in 0..<16 {
            var buffer = allocator.buffer(capacity: 256 << 10)
            buffer.writeRepeatingByte(UInt8(index), count: 256 << 10)
            buffers.append(buffer)
        }
        for (index, buffer) in buffers.enumerated() {
            #expect(Array(buffer.readableBytesView) == [UInt8](repeating: UInt8(index), count: 256 << 10))
        }
        // a buffer that grows keeps its bytes
        var grown = buffers[3]
        grown.writeRepeatingByte(0xEE, count: 1 << 20)
        #expect(grown.readableBytes == (256 << 10) + (1 << 20))
        #expect(grown.getBytes(at: 0, length: 4) == [3, 3, 3, 3])
        #expect(buffers[3].readableBytes == 256 << 10)
        // a copy changed leaves the original as it was
        var copy = buffers[5]
        copy.setBytes([9, 9], at: 0)
        #expect(buffers[5].getBytes(at: 0, length: 2) == [5, 5])
        #expect(copy.getBytes(at: 0, length: 3) == [9, 9, 5])
    }
}

/// The permits behind the read limit and the read-buffer budget.
@Suite struct ReadLimiterTests {
    @Test func aWaitThatTimesOutTakesNoPermit() async throws {
        let limiter = ReadLimiter(permits: 1)
        await limiter.acquire()
        await #expect(throws: ReadLimiter.TimedOut.self) { try await limiter.acquireUnlessCancelled(timeout: .milliseconds(50)) }
        // the permit given back goes to the next wait, not to the one that timed out
        limiter.release()
        try await limiter.acquireUnlessCancelled(timeout: .seconds(10))
        await #expect(throws: ReadLimiter.TimedOut.self) { try await limiter.acquireUnlessCancelled(timeout: .milliseconds(50)) }
    }

    @Test func aCancelledWaitTakesNoPermitAndTheNextWaiterGetsIt() async throws {
        let limiter = ReadLimiter(permits: 1)
        await limiter.acquire()
        let cancelled = Task { try await limiter.acquireUnlessCancelled(timeout: .seconds(60)) }
        let waiting = Task { try await limiter.acquireUnlessCancelled(timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        limiter.release()
        try await waiting.value
        // one permit, held by `waiting`: nothing is left for another wait
        await #expect(throws: ReadLimiter.TimedOut.self) { try await limiter.acquireUnlessCancelled(timeout: .milliseconds(50)) }
    }

    @Test func permitsGoToWaitersInTheOrderTheyCame() async throws {
        let limiter = ReadLimiter(permits: 1)
        await limiter.acquire()
        let order = Order()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<5 {
            tasks.append(
                Task {
                    try await limiter.acquireUnlessCancelled(timeout: .seconds(60))
                    await order.append(index)
                    limiter.release()
                }
            )
            // each waits before the next starts
            try await Task.sleep(for: .milliseconds(30))
        }
        limiter.release()
        for task in tasks { try await task.value }
        #expect(await order.values == [0, 1, 2, 3, 4])
    }

    actor Order {
        var values: [Int] = []
        func append(_ value: Int) { values.append(value) }
    }
}
