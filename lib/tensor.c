/* NCHW tensors on a device: shape bookkeeping, views, transfers, fill and copy. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

size_t cc_dtype_size(clcnn_dtype t) {
    return t == CLCNN_F16 ? 2 : t == CLCNN_I64 ? 8 : 4;
}

static clcnn_status check_shape(int ndim, const size_t *shape, const char *what) {
    CC_RETURN_IF(ndim < 1 || ndim > CLCNN_MAX_DIMS, CLCNN_ERR_SHAPE,
                 "%s: a tensor has 1 to %d dims, not %d", what, CLCNN_MAX_DIMS, ndim);
    CC_RETURN_IF(!shape, CLCNN_ERR_INVALID_ARG, "%s: shape is NULL", what);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        CC_RETURN_IF(shape[i] == 0, CLCNN_ERR_SHAPE, "%s: dim %d is zero", what, i);
        CC_RETURN_IF(numel > SIZE_MAX / 4 / shape[i], CLCNN_ERR_SHAPE,
                     "%s: shape is too large (overflows size_t)", what);
        numel *= shape[i];
    }
    return CLCNN_OK;
}

static void set_shape(clcnn_tensor *t, int ndim, const size_t *shape) {
    t->ndim = ndim;
    t->numel = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = t->numel;
        t->numel *= shape[i];
    }
    for (int i = ndim; i < CLCNN_MAX_DIMS; i++) {
        t->shape[i] = 1;
        t->strides[i] = 1;
    }
}

clcnn_status clcnn_tensor_create(clcnn_device *dev, clcnn_dtype dtype, int ndim,
                                 const size_t *shape, clcnn_tensor **out) {
    CC_RETURN_IF(!dev || !out, CLCNN_ERR_INVALID_ARG, "clcnn_tensor_create: NULL argument");
    *out = NULL;
    CC_RETURN_IF(dtype == CLCNN_F16, CLCNN_ERR_UNSUPPORTED,
                 "clcnn_tensor_create: float16 tensors are not implemented yet");
    CC_RETURN_IF(dtype == CLCNN_I64, CLCNN_ERR_UNSUPPORTED,
                 "clcnn_tensor_create: int64 is a graph dtype (shapes, indices); device tensors "
                 "are float32 or int32");
    CC_RETURN_IF(dtype != CLCNN_F32 && dtype != CLCNN_I32, CLCNN_ERR_INVALID_ARG,
                 "clcnn_tensor_create: unknown dtype %d", (int)dtype);
    CC_TRY(check_shape(ndim, shape, "clcnn_tensor_create"));
    clcnn_tensor *t = calloc(1, sizeof *t);
    CC_RETURN_IF(!t, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    t->dev = dev;
    t->dtype = dtype;
    t->layout = CLCNN_NCHW;
    set_shape(t, ndim, shape);
    size_t bytes = t->numel * cc_dtype_size(dtype);
    clcnn_status s = cc_pool_acquire(dev, bytes, &t->storage);
    if (s != CLCNN_OK) {
        char a[64];
        cc_fail_append(s, " (creating a %s tensor of shape %s, %zu bytes)",
                       dtype == CLCNN_I32 ? "int32" : "float32",
                       clcnn_tensor_shape_str(t, a, sizeof a), bytes);
        free(t);
        return s;
    }
    cc_device_ref(dev);
    *out = t;
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_create4(clcnn_device *dev, size_t n, size_t c, size_t h, size_t w,
                                  clcnn_tensor **out) {
    return clcnn_tensor_create(dev, CLCNN_F32, 4, (size_t[]){n, c, h, w}, out);
}

void clcnn_tensor_free(clcnn_tensor *t) {
    if (!t) return;
    clcnn_device *dev = t->dev;
    cc_pool_release(dev, t->storage);
    free(t);
    cc_device_unref(dev); /* the last tensor of a closed device releases it */
}

clcnn_status clcnn_tensor_view(const clcnn_tensor *t, int ndim, const size_t *shape,
                               clcnn_tensor **out) {
    CC_RETURN_IF(!t || !out, CLCNN_ERR_INVALID_ARG, "clcnn_tensor_view: NULL argument");
    *out = NULL;
    CC_TRY(check_shape(ndim, shape, "clcnn_tensor_view"));
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    if (numel != t->numel) {
        char a[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "clcnn_tensor_view: cannot view %s (%zu elements) as %d "
                       "dims with %zu elements",
                       clcnn_tensor_shape_str(t, a, sizeof a), t->numel, ndim, numel);
    }
    *out = cc_tensor_view_at(t, ndim, shape, t->offset);
    CC_RETURN_IF(!*out, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    return CLCNN_OK;
}

clcnn_tensor *cc_tensor_view_at(const clcnn_tensor *t, int ndim, const size_t *shape,
                                size_t offset) {
    clcnn_tensor *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    *v = *t;
    set_shape(v, ndim, shape);
    v->offset = offset;
    v->storage->refs++;
    cc_device_ref(v->dev);
    return v;
}

int clcnn_tensor_ndim(const clcnn_tensor *t) {
    return t ? t->ndim : 0;
}
size_t clcnn_tensor_dim(const clcnn_tensor *t, int i) {
    return (!t || i < 0) ? 0 : i < t->ndim ? t->shape[i] : 1;
}
const size_t *clcnn_tensor_shape(const clcnn_tensor *t) {
    return t ? t->shape : NULL;
}
const size_t *clcnn_tensor_strides(const clcnn_tensor *t) {
    return t ? t->strides : NULL;
}
size_t clcnn_tensor_numel(const clcnn_tensor *t) {
    return t ? t->numel : 0;
}
clcnn_dtype clcnn_tensor_dtype(const clcnn_tensor *t) {
    return t ? t->dtype : CLCNN_F32;
}
clcnn_device *clcnn_tensor_device(const clcnn_tensor *t) {
    return t ? t->dev : NULL;
}
cl_mem clcnn_tensor_mem(const clcnn_tensor *t) {
    return t ? t->storage->mem : NULL;
}
size_t clcnn_tensor_offset(const clcnn_tensor *t) {
    return t ? t->offset : 0;
}

const char *clcnn_tensor_shape_str(const clcnn_tensor *t, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
    buf[0] = '\0';
    if (!t) {
        snprintf(buf, cap, "(null)");
        return buf;
    }
    size_t pos = 0;
    for (int i = 0; i < t->ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, i ? "x%zu" : "%zu", t->shape[i]);
    return buf;
}

clcnn_status cc_check_tensor(const clcnn_device *dev, const clcnn_tensor *t, clcnn_dtype dtype,
                             const char *op, const char *what) {
    CC_RETURN_IF(!t, CLCNN_ERR_INVALID_ARG, "%s: %s is NULL", op, what);
    CC_RETURN_IF(t->dev != dev, CLCNN_ERR_INVALID_ARG, "%s: %s lives on another device", op, what);
    CC_RETURN_IF(t->dtype != dtype, CLCNN_ERR_INVALID_ARG, "%s: %s has dtype %s, expected %s", op,
                 what, t->dtype == CLCNN_I32 ? "int32" : "float32",
                 dtype == CLCNN_I32 ? "int32" : "float32");
    return CLCNN_OK;
}

static clcnn_status transfer(const clcnn_tensor *t, void *host, size_t bytes, int write,
                             cl_bool blocking, const char *what) {
    CC_RETURN_IF(!t || !host, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", what);
    size_t want = t->numel * cc_dtype_size(t->dtype);
    if (bytes != want) {
        char a[64];
        return cc_fail(CLCNN_ERR_SHAPE, "%s: tensor %s holds %zu bytes but %zu were given", what,
                       clcnn_tensor_shape_str(t, a, sizeof a), want, bytes);
    }
    size_t off = t->offset * cc_dtype_size(t->dtype);
    cl_event *ev = cc_profile_slot(t->dev);
    cl_int err = write ? clEnqueueWriteBuffer(t->dev->queue, t->storage->mem, blocking, off, bytes,
                                              host, 0, NULL, ev)
                       : clEnqueueReadBuffer(t->dev->queue, t->storage->mem, blocking, off, bytes,
                                             host, 0, NULL, ev);
    CC_TRY(cc_cl_status(err, write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer", __FILE__,
                        __LINE__));
    if (ev) cc_profile_commit(t->dev, write ? "(upload)" : "(download)");
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_upload(clcnn_tensor *t, const void *src, size_t bytes) {
    return transfer(t, (void *)src, bytes, 1, CL_TRUE, "clcnn_tensor_upload");
}
clcnn_status clcnn_tensor_download(const clcnn_tensor *t, void *dst, size_t bytes) {
    return transfer(t, dst, bytes, 0, CL_TRUE, "clcnn_tensor_download");
}
clcnn_status clcnn_tensor_upload_async(clcnn_tensor *t, const void *src, size_t bytes) {
    return transfer(t, (void *)src, bytes, 1, CL_FALSE, "clcnn_tensor_upload_async");
}
clcnn_status clcnn_tensor_download_async(const clcnn_tensor *t, void *dst, size_t bytes) {
    return transfer(t, dst, bytes, 0, CL_FALSE, "clcnn_tensor_download_async");
}

clcnn_status clcnn_tensor_fill(clcnn_tensor *t, float value) {
    CC_RETURN_IF(!t, CLCNN_ERR_INVALID_ARG, "clcnn_tensor_fill: tensor is NULL");
    size_t es = cc_dtype_size(t->dtype);
    /* Saturating conversion (a plain cast of NaN or an out-of-range float is undefined). */
    cl_int ival = value != value            ? 0
                  : value >= 2147483647.0f  ? 2147483647
                  : value <= -2147483648.0f ? (cl_int)-2147483647 - 1
                                            : (cl_int)value;
    const void *pattern = t->dtype == CLCNN_I32 ? (const void *)&ival : (const void *)&value;
    cl_event *ev = cc_profile_slot(t->dev);
    CC_CL_TRY(clEnqueueFillBuffer(t->dev->queue, t->storage->mem, pattern, es, t->offset * es,
                                  t->numel * es, 0, NULL, ev));
    if (ev) cc_profile_commit(t->dev, "(fill)");
    return CLCNN_OK;
}

clcnn_status clcnn_tensor_copy(clcnn_tensor *dst, const clcnn_tensor *src) {
    CC_RETURN_IF(!dst || !src, CLCNN_ERR_INVALID_ARG, "clcnn_tensor_copy: NULL argument");
    CC_RETURN_IF(dst->dev != src->dev, CLCNN_ERR_INVALID_ARG,
                 "clcnn_tensor_copy: source and destination live on different devices");
    CC_RETURN_IF(dst->dtype != src->dtype, CLCNN_ERR_INVALID_ARG,
                 "clcnn_tensor_copy: source is %s but destination is %s",
                 src->dtype == CLCNN_I32 ? "int32" : "float32",
                 dst->dtype == CLCNN_I32 ? "int32" : "float32");
    if (dst->numel != src->numel) {
        char a[64], b[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "clcnn_tensor_copy: source %s has %zu elements but destination %s has %zu",
                       clcnn_tensor_shape_str(src, a, sizeof a), src->numel,
                       clcnn_tensor_shape_str(dst, b, sizeof b), dst->numel);
    }
    if (dst->storage == src->storage && dst->offset == src->offset) return CLCNN_OK;
    size_t es = cc_dtype_size(src->dtype);
    cl_event *ev = cc_profile_slot(dst->dev);
    CC_CL_TRY(clEnqueueCopyBuffer(dst->dev->queue, src->storage->mem, dst->storage->mem,
                                  src->offset * es, dst->offset * es, src->numel * es, 0, NULL,
                                  ev));
    if (ev) cc_profile_commit(dst->dev, "(copy)");
    return CLCNN_OK;
}

int cc_tensors_overlap(const clcnn_tensor *a, const clcnn_tensor *b) {
    if (!a || !b || a->storage != b->storage) return 0;
    return a->offset < b->offset + b->numel && b->offset < a->offset + a->numel;
}

int cc_tensors_bad_alias(const clcnn_tensor *a, const clcnn_tensor *b) {
    if (a && b && a->offset == b->offset && a->numel == b->numel) return 0;
    return cc_tensors_overlap(a, b);
}
