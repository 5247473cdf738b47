#ifndef MEDIAGW_CHUNK_POOL_H
#define MEDIAGW_CHUNK_POOL_H
// A pool of equal read buffers for streamed downloads, behind a ByteBuffer allocator. Each buffer the
// origin reads from RADOS lives until its last byte is on the client's socket, and is freed on another
// thread than the one that allocated it. Through malloc, those buffers of a few hundred KiB were spread
// over the allocating threads' arenas, which kept their free space between peaks: about twice the memory
// of the buffers in use. Here every buffer is a slot of one reserved region, the last freed reused first,
// so the memory the pool holds is the most buffers that were in use at once.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mgw_chunk_pool mgw_chunk_pool;

/// A pool of slots of `slot_size` bytes (rounded up to pages) in a region of at most `region_size`
/// bytes, reserved as address space only: a slot's pages become resident when first written. NULL if
/// the region cannot be reserved.
mgw_chunk_pool *_Nullable mgw_chunk_pool_create(size_t slot_size, size_t region_size);
/// A free slot (the last freed first) when `size` fits one, NULL when it does not or none is free.
void *_Nullable mgw_chunk_pool_take(mgw_chunk_pool *_Nonnull pool, size_t size);
/// Whether `pointer` is a slot of `pool`.
int mgw_chunk_pool_owns(const mgw_chunk_pool *_Nonnull pool, const void *_Nullable pointer);
/// Gives a slot of `pool` back.
void mgw_chunk_pool_give(mgw_chunk_pool *_Nonnull pool, void *_Nonnull slot);
/// The slot size in effect, the slots handed out now, and the slots ever handed out (the pool's resident
/// memory is at most this × the slot size).
size_t mgw_chunk_pool_slot_size(const mgw_chunk_pool *_Nonnull pool);
size_t mgw_chunk_pool_in_use(mgw_chunk_pool *_Nonnull pool);
size_t mgw_chunk_pool_touched(mgw_chunk_pool *_Nonnull pool);

/// Sets up the process's two pools of read buffers: small slots, for reads that fit one, and large slots
/// (the chunk size) for the others; a region size of 0, or a large slot no larger than a small one, makes no
/// pool of that class. Only the first call in a process does anything; later calls (with any sizes) leave
/// the pools as they are.
void mgw_read_buffers_setup(size_t small_slot_size, size_t small_region_size, size_t large_slot_size, size_t large_region_size);
/// The process's pool of a size class (0 small, 1 large), NULL if there is none.
mgw_chunk_pool *_Nullable mgw_read_buffers_pool(int size_class);

/// The allocator functions of a ByteBuffer allocator over the process's pools: for an allocation granted a
/// slot of a class (below), a slot of that class if the size fits one and one is free; malloc otherwise.
/// Each pointer goes back where it came from.
void *_Nullable mgw_read_buffers_allocate(size_t size);
void *_Nullable mgw_read_buffers_reallocate(void *_Nullable pointer, size_t old_size, size_t new_size);
void mgw_read_buffers_deallocate(void *_Nonnull pointer);
void mgw_read_buffers_copy(void *_Nonnull destination, const void *_Nonnull source, size_t count);
/// Grants a slot of `size_class` to the next allocation made on this thread, and ends that grant: only the
/// allocation between the two calls (a read buffer whose budget permit of that class was taken) may take a
/// slot, and of that class. Any other allocation through these functions (a copy on write of a read
/// buffer) uses malloc, so that every slot in use stands for a permit of its class taken, and every slot
/// given back returns exactly one to that class.
void mgw_read_buffers_grant_slot(int size_class);
void mgw_read_buffers_end_grant(void);
/// Whether `pointer` is a slot of one of the process's pools.
int mgw_read_buffers_owns(const void *_Nullable pointer);
/// Sets the function called after each slot is given back (by deallocate, or by reallocate moving a buffer
/// out of it), with the slot's size class, on the thread that gave it back. Only the first call sets it.
void mgw_read_buffers_set_freed_hook(void (*_Nonnull hook)(int size_class));

#ifdef __cplusplus
}
#endif
#endif
