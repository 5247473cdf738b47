#ifndef MEDIAGW_RADOS_SHIM_H
#define MEDIAGW_RADOS_SHIM_H
// Zero-copy writes for the gateway: librados' C API copies every buffer it is given; its C++ API can
// reference the caller's memory instead. This shim exposes that one capability to Swift with a C ABI.
#include <stddef.h>
#include <stdint.h>
#include <rados/librados.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One piece of a vectored write; the memory must stay valid until the completion fires.
typedef struct {
    const void *base;
    size_t length;
} mgw_iovec;

typedef enum {
    /// Write at an offset.
    MGW_WRITE_AT = 0,
    /// Replace the whole object.
    MGW_WRITE_FULL = 1,
    /// Create the object, failing with -EEXIST if it exists, and write its whole content.
    MGW_CREATE_EXCLUSIVE = 2,
    /// Write at an offset, only if the object's extended attribute `fence_name` equals `fence_value`
    /// (else the completion fails with -ECANCELED and nothing is written), in one atomic operation.
    MGW_WRITE_AT_FENCED = 3,
} mgw_write_mode;

/// Submits an asynchronous write of `count` pieces without copying them. Returns 0 or a negative errno;
/// on success `completion` fires once the write is durable, and not before that may the pieces be freed.
/// `fence_name`, `fence_value` and `fence_length` are read for MGW_WRITE_AT_FENCED only (NULL, NULL, 0
/// otherwise), and copied before the call returns.
int mgw_rados_aio_writev(rados_ioctx_t io, const char *oid, rados_completion_t completion,
                         const mgw_iovec *pieces, size_t count, uint64_t offset, mgw_write_mode mode,
                         const char *fence_name, const void *fence_value, size_t fence_length);

#ifdef __cplusplus
}
#endif
#endif
