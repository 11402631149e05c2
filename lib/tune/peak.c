/* Peak probes (cl/peak.cl): multiply-add throughput and copy bandwidth of a device,
 * measured once per physical device and process, so benchmarks can print "% of peak".
 *
 * The FMA probe runs a few (vector width, chains) pairs and keeps the fastest: the best
 * width differs (GPUs like float4, POCL maps float8 onto AVX2 and float16 onto AVX-512),
 * and a CPU core only reaches its peak when the chains fill its vector registers without
 * spilling (16 float8 chains on AVX2's 16 registers spill: that probe read half of what
 * the cores do). Each pair is calibrated to run >= 20 ms and timed best-of-4 with
 * profiling events. */
#include "tune_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PEAK_CACHE 16

static pthread_mutex_t peak_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    cl_device_id id;
    clcnn_peak peak;
} peak_cache[PEAK_CACHE];
static int peak_cached;

/* Launch a kernel on dev's queue with its own event (outside the profiling window of
 * clcnn_device_profile_begin/end) and return the device time in ms. */
static clcnn_status run_timed(clcnn_device *dev, cl_kernel k, size_t gws, double *ms) {
    cl_event ev = NULL;
    CC_CL_TRY(clEnqueueNDRangeKernel(dev->queue, k, 1, NULL, &gws, NULL, 0, NULL, &ev));
    cl_int err = clWaitForEvents(1, &ev);
    double span = 0;
    if (err == CL_SUCCESS) err = cc_event_span_ms(ev, ev, &span);
    clReleaseEvent(ev);
    CC_CL_TRY(err);
    *ms = span > 0 ? span : 1e-6;
    return CLCNN_OK;
}

static clcnn_status fma_probe(clcnn_device *dev, cl_mem out, size_t gws, int vec, int chains,
                              double *gflops) {
    char defines[64];
    snprintf(defines, sizeof defines, "VEC=%d CHAINS=%d", vec, chains);
    cl_kernel k = NULL;
    CC_TRY(cc_kernel_get(dev, "peak", defines, "peak_fma", &k));
    cl_float a = 0.999f, b = 1e-3f; /* x -> b / (1 - a) = 1: stays finite */
    cl_int iters = 16;
    CC_CL_TRY(clSetKernelArg(k, 0, sizeof out, &out));
    CC_CL_TRY(clSetKernelArg(k, 2, sizeof a, &a));
    CC_CL_TRY(clSetKernelArg(k, 3, sizeof b, &b));
    double ms = 0;
    /* calibrate: grow iters until one launch takes >= 20 ms */
    for (;;) {
        CC_CL_TRY(clSetKernelArg(k, 1, sizeof iters, &iters));
        CC_TRY(run_timed(dev, k, gws, &ms));
        if (ms >= 20.0 || iters >= (1 << 24)) break;
        double grow = ms > 0.5 ? 25.0 / ms : 16.0;
        iters = (cl_int)(iters * (grow < 16.0 ? grow : 16.0)) + 1;
    }
    double best = ms;
    for (int r = 0; r < 4; r++) {
        CC_TRY(run_timed(dev, k, gws, &ms));
        if (ms < best) best = ms;
    }
    *gflops = 2.0 * vec * chains * (double)iters * (double)gws / (best * 1e6);
    return CLCNN_OK;
}

static clcnn_status copy_probe(clcnn_device *dev, double *gbps) {
    const clcnn_device_info *info = &dev->info;
    uint64_t bytes = 256ull << 20;
    if (info->max_alloc_bytes && bytes > info->max_alloc_bytes) bytes = info->max_alloc_bytes;
    if (info->global_mem_bytes && bytes > info->global_mem_bytes / 8)
        bytes = info->global_mem_bytes / 8;
    bytes &= ~(uint64_t)15;
    CC_RETURN_IF(bytes < (1u << 20), CLCNN_ERR_OUT_OF_MEMORY,
                 "peak: device %s has too little memory for the copy probe", info->name);
    cl_int err = CL_SUCCESS;
    cl_mem src = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem dst =
        err == CL_SUCCESS ? clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err) : NULL;
    clcnn_status s = CLCNN_OK;
    if (err != CL_SUCCESS) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "peak: cannot allocate 2 x %llu bytes on %s (%s)",
                    (unsigned long long)bytes, info->name, cc_cl_error_name(err));
        goto done;
    }
    cl_float zero = 0.0f;
    s = CC_CL(clEnqueueFillBuffer(dev->queue, src, &zero, sizeof zero, 0, bytes, 0, NULL, NULL));
    cl_kernel k = NULL;
    if (s == CLCNN_OK) s = cc_kernel_get(dev, "peak", "", "peak_copy", &k);
    cl_ulong n = bytes / 16;
    if (s == CLCNN_OK) s = CC_CL(clSetKernelArg(k, 0, sizeof src, &src));
    if (s == CLCNN_OK) s = CC_CL(clSetKernelArg(k, 1, sizeof dst, &dst));
    if (s == CLCNN_OK) s = CC_CL(clSetKernelArg(k, 2, sizeof n, &n));
    double best = 0, ms = 0;
    for (int r = 0; r < 4 && s == CLCNN_OK; r++) { /* run 0 warms up (page faults, build) */
        s = run_timed(dev, k, (size_t)n, &ms);
        if (r > 0 && (best == 0 || ms < best)) best = ms;
    }
    if (s == CLCNN_OK) *gbps = 2.0 * (double)bytes / (best * 1e6);
done:
    if (src) clReleaseMemObject(src);
    if (dst) clReleaseMemObject(dst);
    return s;
}

clcnn_status clcnn_device_peak(clcnn_device *dev, clcnn_peak *out) {
    CC_RETURN_IF(!dev || !out, CLCNN_ERR_INVALID_ARG, "clcnn_device_peak: NULL argument");
    pthread_mutex_lock(&peak_lock);
    for (int i = 0; i < peak_cached; i++) {
        if (peak_cache[i].id == dev->id) {
            *out = peak_cache[i].peak;
            pthread_mutex_unlock(&peak_lock);
            return CLCNN_OK;
        }
    }
    pthread_mutex_unlock(&peak_lock);

    const clcnn_device_info *info = &dev->info;
    size_t per_cu = info->max_work_group_size < 1024 ? info->max_work_group_size : 1024;
    size_t gws = (info->compute_units ? info->compute_units : 1) * per_cu * 4;
    cl_int err = CL_SUCCESS;
    cl_mem buf = clCreateBuffer(dev->ctx, CL_MEM_WRITE_ONLY, gws * sizeof(float), NULL, &err);
    CC_RETURN_IF(err != CL_SUCCESS, CLCNN_ERR_OUT_OF_MEMORY,
                 "peak: cannot allocate %zu floats on %s (%s)", gws, info->name,
                 cc_cl_error_name(err));
    clcnn_peak p = {0, 0};
    clcnn_status s = CLCNN_OK;
    /* independent chains enough to hide the FMA latency times its ports (8-12 on CPUs),
     * as many vector registers as 16 (AVX2) or 32 (AVX-512) hold: float4 x 16 on GPUs and
     * SSE, float8 x 8 and x 12 on AVX2, float16 x 6 (AVX2: 12 registers) and x 12
     * (AVX-512) */
    static const int pairs[][2] = {{4, 16}, {8, 8}, {8, 12}, {16, 6}, {16, 12}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs && s == CLCNN_OK; i++) {
        double g = 0;
        s = fma_probe(dev, buf, gws, pairs[i][0], pairs[i][1], &g);
        if (s == CLCNN_OK && cc_verbose())
            fprintf(stderr, "clcnn: peak probe on %s: float%d x %d chains, %.1f GFLOPS\n",
                    info->name, pairs[i][0], pairs[i][1], g);
        if (g > p.gflops) p.gflops = g;
    }
    clReleaseMemObject(buf);
    if (s == CLCNN_OK) s = copy_probe(dev, &p.gbps);
    if (s != CLCNN_OK) return cc_fail_append(s, " (measuring the peak of %s)", info->name);

    pthread_mutex_lock(&peak_lock);
    if (peak_cached < PEAK_CACHE) {
        peak_cache[peak_cached].id = dev->id;
        peak_cache[peak_cached].peak = p;
        peak_cached++;
    }
    pthread_mutex_unlock(&peak_lock);
    *out = p;
    return CLCNN_OK;
}
