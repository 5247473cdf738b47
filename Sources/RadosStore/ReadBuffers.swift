import CRadosShim
@_spi(CustomByteBufferAllocator) import NIOCore

/// The buffers streamed reads land in: slots of the process's read-buffer pool (`chunk_pool.h`), reused
/// the last freed first, instead of malloc. A download's buffer is allocated on the task that reads and
/// freed on the event loop that sent it; through malloc those buffers kept about twice their own size
/// resident in the allocating threads' arenas under many concurrent downloads.
enum ReadBuffers {
    /// The most address space the pool reserves (not memory: a slot becomes resident when first used).
    static let regionLimit = 1 << 30
    /// The most slots: enough for the reads in flight, the read-ahead and a thousand sockets each holding a
    /// chunk being sent; beyond them a buffer comes from malloc.
    static let slotLimit = 1024

    /// The allocator of read buffers for chunks of `chunkSize` bytes. The pool is set up by the first
    /// call in the process; a later call with a larger chunk size gets buffers from malloc for the chunks
    /// that do not fit a slot.
    static func allocator(chunkSize: Int) -> ByteBufferAllocator {
        _ = mgw_read_buffers_setup(chunkSize, min(regionLimit, slotLimit * chunkSize))
        return ByteBufferAllocator(
            allocate: mgw_read_buffers_allocate,
            reallocate: mgw_read_buffers_reallocate,
            deallocate: mgw_read_buffers_deallocate,
            copy: mgw_read_buffers_copy
        )
    }
}
