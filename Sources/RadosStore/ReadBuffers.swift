import CRadosShim
import MediaCore
import Metrics
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

/// The buffers streamed reads land in: slots of the process's read-buffer pools (`chunk_pool.h`), reused
/// the last freed first, instead of malloc. A download's buffer is allocated on the task that reads and
/// freed on the event loop that sent it; through malloc those buffers kept about twice their own size
/// resident in the allocating threads' arenas under many concurrent downloads.
///
/// There are two size classes: chunk-size slots (`MEDIAGW_CEPH_READ_CHUNK_SIZE`, 1 MiB) for the reads of
/// large objects, and slots of at most ``smallSlotSize`` for the reads that fit one (a photo rendition
/// whole, the tail of a video), so that large chunks (a quarter of the hops per byte of 256 KiB ones) do
/// not make every small download hold a large buffer.
///
/// The slots are also a budget per class (`MEDIAGW_CEPH_READ_BUFFERS` large, `MEDIAGW_CEPH_READ_SMALL_BUFFERS`
/// small): a read takes a permit before its buffer is allocated, and the permit comes back when the buffer
/// is freed, once the last of its bytes is on the client's socket. Reads beyond the budget wait (at most
/// `MEDIAGW_CEPH_READ_BUFFER_WAIT`), so the memory of downloads is at most the two budgets × their slot
/// sizes, however many clients stream.
enum ReadBuffers {
    /// The largest read that takes a small slot.
    static let smallSlotSize = 256 << 10

    private struct SizeClass {
        var slotSize: Int
        var budget: ReadLimiter
    }

    /// Set by the first ``allocator(chunkSize:buffers:smallBuffers:)`` of the process, by the pools' class
    /// numbers: the small class, then the large one (nil when the chunk size is no larger than a small slot).
    private static let setup = Mutex<[SizeClass?]?>(nil)

    /// The allocator of read buffers for chunks of `chunkSize` bytes: at most `buffers` of the chunk size
    /// (rounded up to a power of two) and `smallBuffers` small ones at once; when `chunkSize` is no larger
    /// than ``smallSlotSize``, one class of `buffers` slots of the chunk size. The pools and their budgets
    /// are set up by the first call in the process; a later call with a larger chunk size gets buffers
    /// from malloc, outside the budget, for the chunks that fit no slot.
    static func allocator(chunkSize: Int, buffers: Int, smallBuffers: Int) -> ByteBufferAllocator {
        setup.withLock { setup in
            guard setup == nil else { return }
            let large = slotSize(forChunk: chunkSize)
            let small = min(large, smallSlotSize)
            let smallCount = large > smallSlotSize ? smallBuffers : buffers
            let largeCount = large > smallSlotSize ? buffers : 0
            mgw_read_buffers_setup(small, smallCount * small, large, largeCount * large)
            setup = [smallCount, largeCount].enumerated().map { sizeClass, count in
                mgw_read_buffers_pool(Int32(sizeClass)).map {
                    SizeClass(slotSize: mgw_chunk_pool_slot_size($0), budget: ReadLimiter(permits: count))
                }
            }
            mgw_read_buffers_set_freed_hook { ReadBuffers.freed(Int($0)) }
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
        // the smallest class whose slots fit the buffer (ByteBuffer rounds its capacity up to a power of two)
        let fitting = setup.withLock { classes in
            classes?.enumerated().lazy.compactMap { index, sizeClass in sizeClass.map { (index, $0) } }
                .first { slotSize(forChunk: length) <= $0.1.slotSize }
        }
        guard let (sizeClass, fits) = fitting else {
            return allocator.buffer(capacity: length)
        }
        let budget = fits.budget
        do {
            try await budget.acquireUnlessCancelled(timeout: wait)
        } catch is ReadLimiter.TimedOut {
            overdrawn().increment()
            return ByteBufferAllocator().buffer(capacity: length)
        }
        // the only allocation that may take a slot, of the class whose permit it holds: a copy on write of a
        // read buffer gets malloc, as it holds none
        mgw_read_buffers_grant_slot(Int32(sizeClass))
        let buffer = allocator.buffer(capacity: length)
        mgw_read_buffers_end_grant()
        // no slot although the permit was taken (a pool smaller than its budget, which cannot be): this one came
        // from malloc, and its free gives no permit back
        if !buffer.withVeryUnsafeBytes({ mgw_read_buffers_owns($0.baseAddress) != 0 }) { budget.release() }
        return buffer
    }

    /// The slot size for chunks of `chunkSize` bytes: the power of two at or above it, since ByteBuffer rounds
    /// every capacity up to one (a chunk of 1.5 MiB is a 2 MiB buffer, which a 1.5 MiB slot would not fit).
    static func slotSize(forChunk chunkSize: Int) -> Int {
        1 << (Int.bitWidth - (max(chunkSize, 2) - 1).leadingZeroBitCount)
    }

    /// The slot sizes of the process's pools, small first, once they are set up.
    static var slotSizes: [Int] { setup.withLock { $0?.compactMap { $0?.slotSize } ?? [] } }

    /// Buffers allocated outside the budget because it stayed exhausted for the whole wait.
    static let overdrawn = MetricFamily<Counter>.counters("mediagw_rados_read_buffers_overdrawn_total", labels: [])

    /// A slot of the pool of `sizeClass` was given back.
    private static func freed(_ sizeClass: Int) {
        setup.withLock { classes in classes.flatMap { sizeClass < $0.count ? $0[sizeClass]?.budget : nil } }?.release()
    }
}
