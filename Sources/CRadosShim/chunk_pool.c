// See chunk_pool.h.
#define _GNU_SOURCE
#include "chunk_pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct mgw_chunk_pool {
    pthread_mutex_t lock;
    uint8_t *region;
    size_t slot_size, slot_count;
    uint32_t *free_slots;  // a stack of free slot indices, the last freed on top
    size_t free_count;
    size_t touched;  // slots below this index have been handed out at least once
    size_t in_use;
};

mgw_chunk_pool *mgw_chunk_pool_create(size_t slot_size, size_t region_size) {
    size_t page = 4096;
    size_t size = (slot_size + page - 1) / page * page;
    if (size == 0 || region_size < size) return NULL;
    size_t count = region_size / size;
    if (count > UINT32_MAX) count = UINT32_MAX;
    mgw_chunk_pool *pool = calloc(1, sizeof(mgw_chunk_pool));
    uint32_t *stack = malloc(count * sizeof(uint32_t));
    void *region = mmap(NULL, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pool == NULL || stack == NULL || region == MAP_FAILED) {
        free(pool);
        free(stack);
        if (region != MAP_FAILED) munmap(region, count * size);
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pool->region = region;
    pool->slot_size = size;
    pool->slot_count = count;
    pool->free_slots = stack;
    return pool;
}

void *mgw_chunk_pool_take(mgw_chunk_pool *pool, size_t size) {
    if (size == 0 || size > pool->slot_size) return NULL;
    void *slot = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->free_count > 0) {
        slot = pool->region + (size_t)pool->free_slots[--pool->free_count] * pool->slot_size;
    } else if (pool->touched < pool->slot_count) {
        slot = pool->region + pool->touched++ * pool->slot_size;
    }
    if (slot != NULL) pool->in_use++;
    pthread_mutex_unlock(&pool->lock);
    return slot;
}

int mgw_chunk_pool_owns(const mgw_chunk_pool *pool, const void *pointer) {
    const uint8_t *byte = pointer;
    return byte >= pool->region && byte < pool->region + pool->slot_count * pool->slot_size;
}

void mgw_chunk_pool_give(mgw_chunk_pool *pool, void *slot) {
    pthread_mutex_lock(&pool->lock);
    pool->free_slots[pool->free_count++] = (uint32_t)(((uint8_t *)slot - pool->region) / pool->slot_size);
    pool->in_use--;
    pthread_mutex_unlock(&pool->lock);
}

size_t mgw_chunk_pool_slot_size(const mgw_chunk_pool *pool) { return pool->slot_size; }

size_t mgw_chunk_pool_in_use(mgw_chunk_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    size_t value = pool->in_use;
    pthread_mutex_unlock(&pool->lock);
    return value;
}

size_t mgw_chunk_pool_touched(mgw_chunk_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    size_t value = pool->touched;
    pthread_mutex_unlock(&pool->lock);
    return value;
}

// MARK: the process's pools

static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static int set_up;                                  // under setup_lock
static mgw_chunk_pool *process_pools[2];            // small, large; written once, published with release
static void (*freed_hook)(int size_class);          // likewise

void mgw_read_buffers_setup(size_t small_slot_size, size_t small_region_size, size_t large_slot_size, size_t large_region_size) {
    pthread_mutex_lock(&setup_lock);
    if (!set_up) {
        set_up = 1;
        mgw_chunk_pool *small = small_region_size > 0 ? mgw_chunk_pool_create(small_slot_size, small_region_size) : NULL;
        mgw_chunk_pool *large = NULL;
        if (large_region_size > 0 && (small == NULL || large_slot_size > small->slot_size)) {
            large = mgw_chunk_pool_create(large_slot_size, large_region_size);
        }
        __atomic_store_n(&process_pools[0], small, __ATOMIC_RELEASE);
        __atomic_store_n(&process_pools[1], large, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&setup_lock);
}

mgw_chunk_pool *mgw_read_buffers_pool(int size_class) {
    if (size_class < 0 || size_class > 1) return NULL;
    return __atomic_load_n(&process_pools[size_class], __ATOMIC_ACQUIRE);
}

static _Thread_local int granted_class = -1;  // set around the allocation of a budgeted read buffer

void mgw_read_buffers_grant_slot(int size_class) { granted_class = size_class; }
void mgw_read_buffers_end_grant(void) { granted_class = -1; }

/// The class whose pool `pointer` is a slot of, or -1.
static int class_owning(const void *pointer) {
    for (int size_class = 0; size_class < 2; size_class++) {
        mgw_chunk_pool *pool = mgw_read_buffers_pool(size_class);
        if (pool != NULL && mgw_chunk_pool_owns(pool, pointer)) return size_class;
    }
    return -1;
}

void *mgw_read_buffers_allocate(size_t size) {
    int size_class = granted_class;
    granted_class = -1;
    mgw_chunk_pool *pool = mgw_read_buffers_pool(size_class);
    void *slot = pool != NULL ? mgw_chunk_pool_take(pool, size) : NULL;
    return slot != NULL ? slot : malloc(size == 0 ? 1 : size);
}

static void give_back(int size_class, void *slot) {
    mgw_chunk_pool_give(mgw_read_buffers_pool(size_class), slot);
    void (*hook)(int) = __atomic_load_n(&freed_hook, __ATOMIC_ACQUIRE);
    if (hook != NULL) hook(size_class);
}

void mgw_read_buffers_deallocate(void *pointer) {
    int size_class = class_owning(pointer);
    if (size_class >= 0) {
        give_back(size_class, pointer);
    } else {
        free(pointer);
    }
}

void *mgw_read_buffers_reallocate(void *pointer, size_t old_size, size_t new_size) {
    if (pointer == NULL) return mgw_read_buffers_allocate(new_size);
    int size_class = class_owning(pointer);
    if (size_class < 0) return realloc(pointer, new_size == 0 ? 1 : new_size);
    if (new_size != 0 && new_size <= mgw_read_buffers_pool(size_class)->slot_size) return pointer;
    void *moved = malloc(new_size == 0 ? 1 : new_size);
    if (moved == NULL) return NULL;
    memcpy(moved, pointer, old_size < new_size ? old_size : new_size);
    give_back(size_class, pointer);
    return moved;
}

int mgw_read_buffers_owns(const void *pointer) { return class_owning(pointer) >= 0; }

void mgw_read_buffers_set_freed_hook(void (*hook)(int size_class)) {
    void (*none)(int) = NULL;
    __atomic_compare_exchange_n(&freed_hook, &none, hook, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

void mgw_read_buffers_copy(void *destination, const void *source, size_t count) { memcpy(destination, source, count); }
