/* OpenCL device discovery, selection and the program cache.
 *
 * A clcnn_device owns one OpenCL context and one in-order command queue (profiling
 * enabled) on one device, the compiled programs for it and a buffer pool. A device
 * handle is not thread-safe: use one handle per thread (opening the same physical
 * device from several threads is fine). */
#ifndef CLCNN_DEVICE_H
#define CLCNN_DEVICE_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clcnn_device clcnn_device;

typedef enum clcnn_device_type {
    CLCNN_DEVICE_CPU = 1,
    CLCNN_DEVICE_GPU = 2,
    CLCNN_DEVICE_ACCELERATOR = 4,
    CLCNN_DEVICE_OTHER = 8,
} clcnn_device_type;

/* Facts about one device, as the driver reports them. */
typedef struct clcnn_device_info {
    int index; /* position in the global enumeration, as accepted by a "N" selector */
    int platform_index;
    /* the driver's type; for an opened device (clcnn_device_get_info) the class
     * $CLCNN_DEVICE_CLASS names when set: the type every device-type choice follows */
    clcnn_device_type type;
    char platform_name[128];
    char vendor[128];
    char name[256];
    char driver_version[128];
    char opencl_c_version[64]; /* e.g. "OpenCL C 1.2 pocl" */
    int opencl_c_major, opencl_c_minor;
    unsigned compute_units;
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes;
    uint64_t max_alloc_bytes;
    size_t max_work_group_size;
    unsigned max_clock_mhz;
    int has_fp16, has_fp64;
} clcnn_device_info;

/* Program-cache counters of one device handle. */
typedef struct clcnn_cache_stats {
    uint64_t builds;       /* programs compiled from source */
    uint64_t memory_hits;  /* programs found already built in this process */
    uint64_t disk_hits;    /* programs loaded from a binary in the disk cache */
    uint64_t disk_writes;  /* binaries written to the disk cache */
    uint64_t disk_rejects; /* unreadable/truncated/rejected cache files that were rebuilt */
    double build_ms;       /* wall time spent compiling from source */
    double load_ms;        /* wall time spent loading binaries from disk */
} clcnn_cache_stats;

/* Enumerate every device of every platform. Fills up to `cap` entries of `infos`
 * (may be NULL when cap is 0) and sets *count to the number that exist. Having no
 * platform at all is CLCNN_ERR_NO_DEVICE with a message naming the packages to install. */
CLCNN_API clcnn_status clcnn_device_list(clcnn_device_info *infos, size_t cap, size_t *count);

/* Open a device. selector: NULL (then $CLCNN_DEVICE, then the first GPU, then the
 * first CPU), an index ("1"), a type ("gpu", "cpu"), or a case-insensitive substring
 * of the platform, vendor or device name ("pocl", "nvidia"). No match is
 * CLCNN_ERR_NO_DEVICE with a message listing the devices that exist. $CLCNN_DEVICE_CLASS
 * ("gpu" or "cpu") makes the opened device behave as that class; another value is
 * CLCNN_ERR_INVALID_ARG. */
CLCNN_API clcnn_status clcnn_device_open(const char *selector, clcnn_device **out);

/* Close the handle: release everything it owns (programs, buffers, queue, context).
 * Tensors (and so nets and optimizers) still alive keep those alive: they stay usable
 * and the device's resources go with the last of them, so freeing them before or
 * after the close is equally fine. NULL is a no-op. */
CLCNN_API void clcnn_device_close(clcnn_device *dev);

CLCNN_API const clcnn_device_info *clcnn_device_get_info(const clcnn_device *dev);
CLCNN_API cl_context clcnn_device_context(const clcnn_device *dev);
CLCNN_API cl_command_queue clcnn_device_queue(const clcnn_device *dev);

/* Wait until all work enqueued on the device's queue is done. */
CLCNN_API clcnn_status clcnn_device_finish(clcnn_device *dev);

/* Program cache of this handle. */
CLCNN_API void clcnn_device_cache_stats(const clcnn_device *dev, clcnn_cache_stats *out);

/* Build (or load from the caches) every kernel program the library ships, with its
 * default defines, so that later runs start warm. */
CLCNN_API clcnn_status clcnn_device_warm(clcnn_device *dev);

/* clcnn_device_warm, calling fn (may be NULL) after each program with its kernel file,
 * defines, how it came ("built", "loaded", "memory" or "failed"), the milliseconds it took
 * and its status. */
typedef void (*clcnn_warm_fn)(void *ctx, const char *file, const char *defines, const char *how,
                              double ms, clcnn_status s);
CLCNN_API clcnn_status clcnn_device_warm_each(clcnn_device *dev, clcnn_warm_fn fn, void *ctx);

/* The on-disk cache directory in force ($CLCNN_CACHE_DIR, $XDG_CACHE_HOME/clcnn or
 * ~/.cache/clcnn), written into buf. Returns 0 when the disk cache is disabled ("off"). */
CLCNN_API int clcnn_cache_dir(char *buf, size_t cap);

/* Kernel-time profiling: between begin and end every kernel the library enqueues on
 * this device is timed with OpenCL profiling events; end waits for the queue and
 * returns the summed device time in milliseconds. */
CLCNN_API void clcnn_device_profile_begin(clcnn_device *dev);
CLCNN_API clcnn_status clcnn_device_profile_end(clcnn_device *dev, double *ms);

/* The library version string, e.g. "0.1.0". */
CLCNN_API const char *clcnn_version(void);

#ifdef __cplusplus
}
#endif
#endif
