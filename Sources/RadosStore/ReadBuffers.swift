import CRadosShim
import MediaCore
import Metrics
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

/// The buffers streamed reads land in: slots of the process's read-buffer pool (`chunk_pool.h`), reused
/// the last freed first, instead of malloc. A download's buffer is allocated on the task that reads and
/// freed on the event loop that sent it; through malloc those buffers kept about twice their own size
/// resident in the allocating threads' arenas under many concurrent downloads.
///
/// The slots are also a budget (`MEDIAGW_CEPH_READ_BUFFERS`): a read takes a permit before its buffer is
/// allocated, and the permit comes back when the buffer is freed, once the last of its bytes is on the
/// client's socket. Reads beyond the budget wait (at most `MEDIAGW_CEPH_READ_BUFFER_WAIT`), so the memory
/// of downloads is at most the budget × the chunk size, however many clients stream.
enum ReadBuffers {
    /// The most address space the pool reserves (not memory: a slot becomes resident when first used).
    static let regionLimit = 1 << 30
    /// The most slots.
    static let slotLimit = 4096

    private struct Setup {
        var slotSize: Int
        var budget: ReadLimiter
    }

    /// Set by the first ``allocator(chunkSize:buffers:)`` of the process.
    private static let setup = Mutex<Setup?>(nil)

    /// The allocator of read buffers for chunks of `chunkSize` bytes, at most `buffers` of them at once.
    /// The pool and its budget are set up by the first call in the process; a later call with a larger
    /// chunk size gets buffers from malloc, outside the budget, for the chunks that do not fit a slot.
    static func allocator(chunkSize: Int, buffers: Int) -> ByteBufferAllocator {
        setup.withLock { setup in
            guard setup == nil else { return }
            let region = min(regionLimit, slotLimit * chunkSize)
            guard let pool = mgw_read_buffers_setup(chunkSize, region) else { return }
            let slotSize = mgw_chunk_pool_slot_size(pool)
            setup = Setup(slotSize: slotSize, budget: ReadLimiter(permits: min(buffers, region / slotSize)))
            mgw_read_buffers_set_freed_hook { ReadBuffers.freed() }
        }
        // made now, so that it is scraped at 0 before the first buffer is overdrawn
        _ = overdrawn()
        return ByteBufferAllocator(
            allocate: mgw_read_buffers_allocate,
            reallocate: mgw_read_buffers_reallocate,
            deallocate: mgw_read_buffers_deallocate,
            copy: mgw_read_buffers_copy
        )
    }

    /// A buffer of `length` bytes from `allocator`, once the budget allows it when it is to be a slot.
    /// After waiting `wait` for the budget, the buffer comes from malloc instead, outside the budget and
    /// counted (`mediagw_rados_read_buffers_overdrawn_total`): downloads whose clients stopped reading hold
    /// their buffers until their connections close, and must not stop every other download meanwhile.
    /// Throws `CancellationError` if the task is cancelled while it waits (a download whose client left
    /// may hold another buffer meanwhile: waiting on would keep both).
    static func buffer(_ length: Int, from allocator: ByteBufferAllocator, wait: Duration) async throws -> ByteBuffer {
        guard let budget = setup.withLock({ setup in setup.flatMap { length <= $0.slotSize ? $0.budget : nil } }) else {
            return allocator.buffer(capacity: length)
        }
        do {
            try await budget.acquireUnlessCancelled(timeout: wait)
        } catch is ReadLimiter.TimedOut {
            overdrawn().increment()
            return ByteBufferAllocator().buffer(capacity: length)
        }
        // the only allocation that may take a slot: a copy on write of a read buffer gets malloc, as it holds
        // no permit
        mgw_read_buffers_grant_slot()
        let buffer = allocator.buffer(capacity: length)
        mgw_read_buffers_end_grant()
        // no slot although the permit was taken (a pool smaller than its budget): this one came from malloc,
        // and its free gives no permit back
        if !buffer.withVeryUnsafeBytes({ mgw_read_buffers_owns($0.baseAddress) != 0 }) { budget.release() }
        return buffer
    }

    /// The size of the process pool's slots, once it is set up.
    static var slotSize: Int? { setup.withLock { $0?.slotSize } }

    /// Buffers allocated outside the budget because it stayed exhausted for the whole wait.
    static let overdrawn = MetricFamily<Counter>.counters("mediagw_rados_read_buffers_overdrawn_total", labels: [])

    /// A slot of the pool was given back.
    private static func freed() {
        setup.withLock { $0?.budget }?.release()
    }
}
