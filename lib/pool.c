/* A caching buffer pool per device: freed buffers are kept and handed out again for
 * requests of a similar size (best fit, at most 2x the request), so a training step
 * that frees and re-creates the same tensors creates no cl_mem after the first step.
 *
 * $CLCNN_POOL_EXACT=1 (development and tests, read when the pool is created): every
 * buffer is exactly the size asked for and is handed out again only for that size, so
 * an access one element past a tensor leaves its cl_mem, where Oclgrind (make
 * test-oclgrind) sees it; the usual rounding and reuse would hide it. */
#include "fault.h"
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_BYTES 256

struct cc_pool {
    cc_storage **free_list; /* unused buffers, owned by the pool */
    size_t nfree, cap;
    clcnn_pool_stats stats;
    int exact; /* $CLCNN_POOL_EXACT */
};

static cc_pool *get_pool(clcnn_device *dev) {
    if (!dev->pool && (dev->pool = calloc(1, sizeof *dev->pool)) != NULL) {
        const char *e = getenv("CLCNN_POOL_EXACT");
        dev->pool->exact = e && *e && strcmp(e, "0") != 0;
    }
    return dev->pool;
}

clcnn_status cc_pool_acquire(clcnn_device *dev, size_t bytes, cc_storage **out) {
    cc_pool *p = get_pool(dev);
    CC_RETURN_IF(!p, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory creating the buffer pool");
    CC_RETURN_IF(bytes > SIZE_MAX - ALIGN_BYTES, CLCNN_ERR_OUT_OF_MEMORY,
                 "cannot allocate %zu bytes on %s", bytes, dev->info.name);
    size_t want = p->exact ? bytes : (bytes + ALIGN_BYTES - 1) / ALIGN_BYTES * ALIGN_BYTES;
    if (want == 0) want = p->exact ? sizeof(float) : ALIGN_BYTES;
    size_t best = (size_t)-1, most = p->exact ? want : 2 * want;
    for (size_t i = 0; i < p->nfree; i++) {
        size_t b = p->free_list[i]->bytes;
        if (b >= want && b <= most && (best == (size_t)-1 || b < p->free_list[best]->bytes))
            best = i;
    }
    if (best != (size_t)-1) {
        cc_storage *s = p->free_list[best];
        p->free_list[best] = p->free_list[--p->nfree];
        s->refs = 1;
        p->stats.buffers_reused++;
        p->stats.bytes_cached -= s->bytes;
        p->stats.bytes_in_use += s->bytes;
        *out = s;
        return CLCNN_OK;
    }
    CC_RETURN_IF(dev->info.max_alloc_bytes && want > dev->info.max_alloc_bytes,
                 CLCNN_ERR_OUT_OF_MEMORY,
                 "cannot allocate %zu bytes on %s: the device's largest buffer is %llu bytes", want,
                 dev->info.name, (unsigned long long)dev->info.max_alloc_bytes);
    cc_storage *s = calloc(1, sizeof *s);
    CC_RETURN_IF(!s, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    cl_int err = CL_SUCCESS;
    s->mem = cc_fault_hit(CC_FAULT_CREATE_BUFFER)
                 ? (err = CL_MEM_OBJECT_ALLOCATION_FAILURE, NULL)
                 : clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    if (err != CL_SUCCESS && p->nfree > 0) {
        /* Maybe cached buffers are in the way: give them back and try once more. */
        clcnn_device_pool_trim(dev);
        s->mem = cc_fault_hit(CC_FAULT_CREATE_BUFFER)
                     ? (err = CL_MEM_OBJECT_ALLOCATION_FAILURE, NULL)
                     : clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    }
    if (err != CL_SUCCESS) {
        free(s);
        clcnn_status st = cc_cl_status(err, "clCreateBuffer", __FILE__, __LINE__);
        return cc_fail_append(st == CLCNN_ERR_OPENCL ? CLCNN_ERR_OUT_OF_MEMORY : st,
                              " allocating %zu bytes on %s", want, dev->info.name);
    }
    s->bytes = want;
    s->refs = 1;
    p->stats.buffers_created++;
    p->stats.bytes_in_use += want;
    *out = s;
    return CLCNN_OK;
}

void cc_pool_release(clcnn_device *dev, cc_storage *s) {
    if (!s || --s->refs > 0) return;
    cc_pool *p = dev->pool;
    p->stats.bytes_in_use -= s->bytes;
    if (p->nfree == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        cc_storage **nl = realloc(p->free_list, cap * sizeof *nl);
        if (!nl) { /* cannot cache it: release it */
            clReleaseMemObject(s->mem);
            free(s);
            return;
        }
        p->free_list = nl;
        p->cap = cap;
    }
    p->free_list[p->nfree++] = s;
    p->stats.bytes_cached += s->bytes;
}

void clcnn_device_pool_trim(clcnn_device *dev) {
    if (!dev || !dev->pool) return;
    cc_pool *p = dev->pool;
    for (size_t i = 0; i < p->nfree; i++) {
        clReleaseMemObject(p->free_list[i]->mem);
        free(p->free_list[i]);
    }
    p->nfree = 0;
    p->stats.bytes_cached = 0;
}

void cc_pool_destroy(clcnn_device *dev) {
    if (!dev->pool) return;
    clcnn_device_pool_trim(dev);
    free(dev->pool->free_list);
    free(dev->pool);
    dev->pool = NULL;
}

void clcnn_device_pool_stats(const clcnn_device *dev, clcnn_pool_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (dev && dev->pool) *out = dev->pool->stats;
}
