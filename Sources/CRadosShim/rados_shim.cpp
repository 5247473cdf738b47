#include "rados_shim.h"

#include <cerrno>
#include <new>
#include <rados/librados.hpp>

extern "C" int mgw_rados_aio_writev(rados_ioctx_t io, const char *oid, rados_completion_t completion,
                                    const mgw_iovec *pieces, size_t count, uint64_t offset, mgw_write_mode mode,
                                    const char *fence_name, const void *fence_value, size_t fence_length) {
    try {
        librados::IoCtx ctx;
        librados::IoCtx::from_rados_ioctx_t(io, ctx);
        librados::bufferlist data;
        size_t total = 0;
        for (size_t i = 0; i < count; i++) {
            if (pieces[i].length == 0) continue;
            // a static buffer references the caller's memory: no copy, no free
            data.append(ceph::buffer::ptr(ceph::buffer::create_static(
                static_cast<unsigned>(pieces[i].length), static_cast<char *>(const_cast<void *>(pieces[i].base)))));
            total += pieces[i].length;
        }
        // The C++ API wants its AioCompletion wrapper around the C completion, but the wrapper's destructor
        // releases the completion, which belongs to the caller (it is released in its callback). The wrapper
        // is therefore built in local storage and deliberately never destroyed: it owns nothing else.
        alignas(librados::AioCompletion) unsigned char storage[sizeof(librados::AioCompletion)];
        auto *wrapper = new (storage) librados::AioCompletion(static_cast<librados::AioCompletionImpl *>(completion));
        switch (mode) {
        case MGW_WRITE_AT:
            return ctx.aio_write(oid, wrapper, data, total, offset);
        case MGW_WRITE_FULL:
            return ctx.aio_write_full(oid, wrapper, data);
        case MGW_CREATE_EXCLUSIVE: {
            librados::ObjectWriteOperation operation;
            operation.create(true);
            operation.write_full(data);
            return ctx.aio_operate(oid, wrapper, &operation);
        }
        case MGW_WRITE_AT_FENCED: {
            if (fence_name == nullptr || (fence_value == nullptr && fence_length > 0)) return -EINVAL;
            librados::bufferlist expected;
            expected.append(static_cast<const char *>(fence_value), static_cast<unsigned>(fence_length));
            librados::ObjectWriteOperation operation;
            operation.cmpxattr(fence_name, LIBRADOS_CMPXATTR_OP_EQ, expected);
            operation.write(offset, data);
            return ctx.aio_operate(oid, wrapper, &operation);
        }
        }
        return -EINVAL;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}
