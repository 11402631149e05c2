/* Tensors: up to 4-D arrays on a device, NCHW float32 (and int32 for labels and
 * arg-max indices). Storage comes from the device's caching buffer pool, so a
 * training step that frees and re-creates tensors of the same sizes allocates no new
 * cl_mem after the first step.
 *
 * Ownership: clcnn_tensor_create/clcnn_tensor_view return a tensor the caller frees
 * with clcnn_tensor_free. A view shares the storage of its base (reference counted);
 * the storage returns to the pool when the last tensor using it is freed. */
#ifndef CLCNN_TENSOR_H
#define CLCNN_TENSOR_H

#include <stddef.h>

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLCNN_MAX_DIMS 4

typedef enum clcnn_dtype {
    CLCNN_F32 = 0,
    CLCNN_I32 = 1,
    CLCNN_F16 = 2, /* reserved: not implemented yet (CLCNN_ERR_UNSUPPORTED) */
    CLCNN_I64 = 3, /* graph initializers only (shapes, indices); no device tensors */
} clcnn_dtype;

typedef enum clcnn_layout {
    CLCNN_NCHW = 0,
    CLCNN_NHWC = 1, /* reserved: not implemented yet (CLCNN_ERR_UNSUPPORTED) */
} clcnn_layout;

typedef struct clcnn_tensor clcnn_tensor;

/* Create an uninitialised tensor of `ndim` (1..4) dims. Zero-sized dims are
 * CLCNN_ERR_SHAPE. OpenCL out-of-memory is CLCNN_ERR_OUT_OF_MEMORY naming the size. */
CLCNN_API clcnn_status clcnn_tensor_create(clcnn_device *dev, clcnn_dtype dtype, int ndim,
                                           const size_t *shape, clcnn_tensor **out);
/* Shorthand for a 4-D NCHW float32 tensor. */
CLCNN_API clcnn_status clcnn_tensor_create4(clcnn_device *dev, size_t n, size_t c, size_t h,
                                            size_t w, clcnn_tensor **out);
CLCNN_API void clcnn_tensor_free(clcnn_tensor *t);

/* A new tensor sharing t's storage with another shape of the same element count
 * (t must be contiguous). No copy. */
CLCNN_API clcnn_status clcnn_tensor_view(const clcnn_tensor *t, int ndim, const size_t *shape,
                                         clcnn_tensor **out);

CLCNN_API int clcnn_tensor_ndim(const clcnn_tensor *t);
CLCNN_API size_t clcnn_tensor_dim(const clcnn_tensor *t, int i); /* 1 for i >= ndim */
CLCNN_API const size_t *clcnn_tensor_shape(const clcnn_tensor *t);
CLCNN_API const size_t *clcnn_tensor_strides(const clcnn_tensor *t); /* in elements */
CLCNN_API size_t clcnn_tensor_numel(const clcnn_tensor *t);
CLCNN_API clcnn_dtype clcnn_tensor_dtype(const clcnn_tensor *t);
CLCNN_API clcnn_device *clcnn_tensor_device(const clcnn_tensor *t);
/* The OpenCL buffer and the element offset of this tensor inside it. */
CLCNN_API cl_mem clcnn_tensor_mem(const clcnn_tensor *t);
CLCNN_API size_t clcnn_tensor_offset(const clcnn_tensor *t);
/* Writes "2x3x4x5" into buf; returns buf. */
CLCNN_API const char *clcnn_tensor_shape_str(const clcnn_tensor *t, char *buf, size_t cap);

/* Copy `bytes` (must equal numel * element size) between host and device. Blocking
 * calls return when the copy is done; non-blocking ones return at once and the host
 * memory must stay untouched until clcnn_device_finish(). */
CLCNN_API clcnn_status clcnn_tensor_upload(clcnn_tensor *t, const void *src, size_t bytes);
CLCNN_API clcnn_status clcnn_tensor_download(const clcnn_tensor *t, void *dst, size_t bytes);
CLCNN_API clcnn_status clcnn_tensor_upload_async(clcnn_tensor *t, const void *src, size_t bytes);
CLCNN_API clcnn_status clcnn_tensor_download_async(const clcnn_tensor *t, void *dst, size_t bytes);

/* Set every element to `value` (converted to the tensor's dtype). */
CLCNN_API clcnn_status clcnn_tensor_fill(clcnn_tensor *t, float value);
/* Copy src into dst (same numel and dtype; shapes may differ). */
CLCNN_API clcnn_status clcnn_tensor_copy(clcnn_tensor *dst, const clcnn_tensor *src);

/* Buffer-pool counters of a device: cl_mem objects created so far, and bytes held. */
typedef struct clcnn_pool_stats {
    size_t buffers_created;
    size_t buffers_reused;
    size_t bytes_in_use;
    size_t bytes_cached;
} clcnn_pool_stats;
CLCNN_API void clcnn_device_pool_stats(const clcnn_device *dev, clcnn_pool_stats *out);
/* Release every cached (unused) buffer of the pool back to OpenCL. */
CLCNN_API void clcnn_device_pool_trim(clcnn_device *dev);

#ifdef __cplusplus
}
#endif
#endif
