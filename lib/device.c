/* Platform/device discovery, selection, context + queue (profiling: device_profile.c). */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

const char *clcnn_version(void) {
    return CLCNN_VERSION_STRING;
}

int cc_verbose(void) {
    const char *v = getenv("CLCNN_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

static void get_str(cl_device_id d, cl_device_info what, char *buf, size_t cap) {
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[cap - 1] = '\0';
    /* drivers pad some strings with spaces */
    size_t n = strlen(buf);
    while (n && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
}

/* Whether the space-separated extension list names `want` exactly. */
static int has_extension(const char *list, const char *want) {
    size_t n = strlen(want);
    for (const char *p = list; (p = strstr(p, want)) != NULL; p += n)
        if ((p == list || isspace((unsigned char)p[-1])) &&
            (p[n] == '\0' || isspace((unsigned char)p[n])))
            return 1;
    return 0;
}

static void fill_info(cl_platform_id p, cl_device_id d, int index, int pindex,
                      clcnn_device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = index;
    info->platform_index = pindex;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof info->platform_name, info->platform_name,
                          NULL) != CL_SUCCESS)
        info->platform_name[0] = '\0';
    info->platform_name[sizeof info->platform_name - 1] = '\0';
    for (size_t n = strlen(info->platform_name);
         n && isspace((unsigned char)info->platform_name[n - 1]);)
        info->platform_name[--n] = '\0';
    get_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    get_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    get_str(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    get_str(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
    /* "OpenCL C <major>.<minor> <vendor-specific>" */
    if (sscanf(info->opencl_c_version, "OpenCL C %d.%d", &info->opencl_c_major,
               &info->opencl_c_minor) != 2) {
        info->opencl_c_major = 1;
        info->opencl_c_minor = 2;
    }
    cl_device_type t = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    info->type = (t & CL_DEVICE_TYPE_GPU)           ? CLCNN_DEVICE_GPU
                 : (t & CL_DEVICE_TYPE_CPU)         ? CLCNN_DEVICE_CPU
                 : (t & CL_DEVICE_TYPE_ACCELERATOR) ? CLCNN_DEVICE_ACCELERATOR
                                                    : CLCNN_DEVICE_OTHER;
    cl_uint u = 0;
    cl_ulong ul = 0;
    size_t sz = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, NULL) == CL_SUCCESS)
        info->compute_units = u;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, NULL) == CL_SUCCESS)
        info->max_clock_mhz = u;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        info->global_mem_bytes = ul;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        info->local_mem_bytes = ul;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS)
        info->max_alloc_bytes = ul;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
        info->max_work_group_size = sz;
    /* The extension string of a GPU driver can be several KB: ask for its size. */
    size_t ext_len = 0;
    char *ext = NULL;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len) == CL_SUCCESS &&
        (ext = calloc(1, ext_len + 1)) != NULL &&
        clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL) == CL_SUCCESS) {
        info->has_fp16 = has_extension(ext, "cl_khr_fp16");
        info->has_fp64 = has_extension(ext, "cl_khr_fp64") || has_extension(ext, "cl_amd_fp64");
    }
    free(ext);
    /* Since OpenCL 1.2 double support is also reported by a non-zero FP config. */
    cl_device_fp_config fp = 0;
    if (!info->has_fp64 &&
        clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL) == CL_SUCCESS &&
        fp != 0)
        info->has_fp64 = 1;
}

/* Every (platform, device) pair in a fixed order: platforms as the ICD loader lists
 * them, devices of all types within each. */
typedef struct found {
    cl_platform_id platform[MAX_DEVICES];
    cl_device_id device[MAX_DEVICES];
    clcnn_device_info info[MAX_DEVICES];
    size_t count;
} found;

static clcnn_status discover(found *f) {
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    f->count = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0))
        return cc_fail(CLCNN_ERR_NO_DEVICE,
                       "no OpenCL platform found: install an OpenCL driver (on Debian: "
                       "'apt-get install pocl-opencl-icd' for the CPU, or your GPU vendor's "
                       "ICD, e.g. nvidia-opencl-icd, mesa-opencl-icd, intel-opencl-icd) and "
                       "the ICD loader 'ocl-icd-libopencl1'");
    if (err != CL_SUCCESS) return cc_cl_status(err, "clGetPlatformIDs", __FILE__, __LINE__);
    if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd) != CL_SUCCESS)
            continue; /* a platform without devices is not an error */
        if (nd > MAX_DEVICES) nd = MAX_DEVICES;
        for (cl_uint d = 0; d < nd && f->count < MAX_DEVICES; d++) {
            f->platform[f->count] = plats[p];
            f->device[f->count] = devs[d];
            fill_info(plats[p], devs[d], (int)f->count, (int)p, &f->info[f->count]);
            f->count++;
        }
    }
    if (f->count == 0)
        return cc_fail(CLCNN_ERR_NO_DEVICE,
                       "OpenCL platforms exist but report no device: check the driver "
                       "installation (on Debian: pocl-opencl-icd for the CPU)");
    return CLCNN_OK;
}

clcnn_status clcnn_device_list(clcnn_device_info *infos, size_t cap, size_t *count) {
    CC_RETURN_IF(!count, CLCNN_ERR_INVALID_ARG, "clcnn_device_list: count is NULL");
    *count = 0;
    found *f = malloc(sizeof *f);
    CC_RETURN_IF(!f, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_device_list: out of host memory");
    clcnn_status s = discover(f);
    if (s == CLCNN_OK) {
        for (size_t i = 0; i < f->count && i < cap && infos; i++)
            infos[i] = f->info[i];
        *count = f->count;
    }
    free(f);
    return s;
}

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0) return 0;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return 0;
}

static int is_index(const char *s) {
    if (!*s) return 0;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    return 1;
}

/* Returns the position in f of the device `sel` names, or -1. */
static int match(const found *f, const char *sel) {
    if (is_index(sel)) {
        long i = strtol(sel, NULL, 10);
        return i >= 0 && (size_t)i < f->count ? (int)i : -1;
    }
    clcnn_device_type want = 0;
    if (strcasecmp(sel, "gpu") == 0) want = CLCNN_DEVICE_GPU;
    if (strcasecmp(sel, "cpu") == 0) want = CLCNN_DEVICE_CPU;
    if (strcasecmp(sel, "accelerator") == 0) want = CLCNN_DEVICE_ACCELERATOR;
    for (size_t i = 0; i < f->count; i++) {
        const clcnn_device_info *in = &f->info[i];
        if (want) {
            if (in->type == want) return (int)i;
            continue;
        }
        /* The platform vendor too: POCL's platform is "Portable Computing Language" by
         * "The pocl project", so "pocl" is found only there. */
        char pvendor[256] = "";
        if (clGetPlatformInfo(f->platform[i], CL_PLATFORM_VENDOR, sizeof pvendor, pvendor, NULL) !=
            CL_SUCCESS)
            pvendor[0] = '\0';
        pvendor[sizeof pvendor - 1] = '\0';
        if (contains_nocase(in->platform_name, sel) || contains_nocase(pvendor, sel) ||
            contains_nocase(in->vendor, sel) || contains_nocase(in->name, sel))
            return (int)i;
    }
    return -1;
}

static const char *type_name(clcnn_device_type t) {
    switch (t) {
    case CLCNN_DEVICE_CPU:
        return "cpu";
    case CLCNN_DEVICE_GPU:
        return "gpu";
    case CLCNN_DEVICE_ACCELERATOR:
        return "accelerator";
    default:
        return "other";
    }
}

static clcnn_status no_match(const found *f, const char *sel, const char *from) {
    cc_fail(CLCNN_ERR_NO_DEVICE,
            "no OpenCL device matches selector '%s'%s; a selector is an index, 'gpu', "
            "'cpu', or part of a platform/vendor/device name. Devices here:",
            sel, from);
    for (size_t i = 0; i < f->count; i++)
        cc_fail_append(CLCNN_ERR_NO_DEVICE, "\n  %zu: [%s] %s / %s / %s", i,
                       type_name(f->info[i].type), f->info[i].platform_name, f->info[i].vendor,
                       f->info[i].name);
    return CLCNN_ERR_NO_DEVICE;
}

/* Kernels are OpenCL C 1.2; ask for the newest standard the *device compiler* reports
 * (CL_DEVICE_OPENCL_C_VERSION, not the platform version: POCL reports a 3.0 platform
 * whose compiler may say C 1.2). -cl-std accepts only CL1.1, CL1.2, CL2.0 and CL3.0;
 * an OpenCL C 1.0 compiler gets no option (its default). */
void cc_choose_cl_std(int major, int minor, char *buf, size_t cap) {
    if (major >= 3)
        snprintf(buf, cap, "-cl-std=CL3.0");
    else if (major == 2)
        snprintf(buf, cap, "-cl-std=CL2.0");
    else if (major == 1 && minor >= 2)
        snprintf(buf, cap, "-cl-std=CL1.2");
    else if (major == 1 && minor == 1)
        snprintf(buf, cap, "-cl-std=CL1.1");
    else
        snprintf(buf, cap, "%s", "");
}

static clcnn_status create_on(clcnn_device *dev) {
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform, 0};
    dev->ctx = clCreateContext(props, 1, &dev->id, NULL, NULL, &err);
    CC_CL_TRY(err);
    dev->queue = clCreateCommandQueue(dev->ctx, dev->id, CL_QUEUE_PROFILING_ENABLE, &err);
    CC_CL_TRY(err);
    cc_choose_cl_std(dev->info.opencl_c_major, dev->info.opencl_c_minor, dev->cl_std,
                     sizeof dev->cl_std);
    cl_uint vw = 0;
    if (clGetDeviceInfo(dev->id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vw, &vw, NULL) ==
        CL_SUCCESS)
        dev->native_float_width = vw;
    cl_ulong cache = 0;
    if (clGetDeviceInfo(dev->id, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof cache, &cache, NULL) ==
        CL_SUCCESS)
        dev->global_cache_bytes = cache;
    return CLCNN_OK;
}

/* $CLCNN_DEVICE_CLASS (development and tests): "gpu" or "cpu" makes every choice the
 * library makes by device type (tile tables, algorithm rules, local sizes, kernel
 * families) as for that class, whatever the driver reports; unset or empty: the driver's
 * type. Oclgrind reports every type at once, so this is how its runs take each side. */
static clcnn_status device_class(clcnn_device_type *out) {
    *out = 0;
    const char *v = getenv("CLCNN_DEVICE_CLASS");
    if (!v || !*v) return CLCNN_OK;
    if (strcasecmp(v, "gpu") == 0)
        *out = CLCNN_DEVICE_GPU;
    else if (strcasecmp(v, "cpu") == 0)
        *out = CLCNN_DEVICE_CPU;
    else
        return cc_fail(CLCNN_ERR_INVALID_ARG,
                       "CLCNN_DEVICE_CLASS is '%s': it must be 'gpu' or 'cpu' (or unset, for the "
                       "type the driver reports)",
                       v);
    return CLCNN_OK;
}

/* $CLCNN_CPU_VECTOR_WIDTH (development): 4, 8 or 16 makes every choice the library makes
 * by the device's native float vector width (register blocks, tile shapes, the AVX2 and
 * AVX-512 rules) as for that width, whatever the driver reports; unset or empty: the
 * driver's. With POCL_LLVM_CPU_NAME (POCL's code-generation target, e.g. znver2 for an AVX2
 * CPU) an AVX-512 machine then runs what an AVX2 one would. */
static clcnn_status vector_width(unsigned *out) {
    *out = 0;
    const char *v = getenv("CLCNN_CPU_VECTOR_WIDTH");
    if (!v || !*v) return CLCNN_OK;
    if (strcmp(v, "4") == 0 || strcmp(v, "8") == 0 || strcmp(v, "16") == 0) {
        *out = (unsigned)atoi(v);
        return CLCNN_OK;
    }
    return cc_fail(CLCNN_ERR_INVALID_ARG,
                   "CLCNN_CPU_VECTOR_WIDTH is '%s': it must be 4, 8 or 16 (or unset, for the width "
                   "the driver reports)",
                   v);
}

clcnn_status clcnn_device_open(const char *selector, clcnn_device **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_device_open: out is NULL");
    *out = NULL;
    clcnn_device_type forced = 0;
    unsigned width = 0;
    CC_TRY(device_class(&forced));
    CC_TRY(vector_width(&width));
    found *f = malloc(sizeof *f);
    CC_RETURN_IF(!f, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_device_open: out of host memory");
    clcnn_status s = discover(f);
    if (s != CLCNN_OK) {
        free(f);
        return s;
    }
    int pick = -1;
    const char *env = getenv("CLCNN_DEVICE");
    if (selector && *selector) {
        pick = match(f, selector);
        if (pick < 0) s = no_match(f, selector, "");
    } else if (env && *env) {
        pick = match(f, env);
        if (pick < 0) s = no_match(f, env, " (from $CLCNN_DEVICE)");
    } else {
        pick = match(f, "gpu");
        if (pick < 0) pick = match(f, "cpu");
        if (pick < 0) pick = 0;
    }
    if (pick < 0) {
        free(f);
        return s;
    }
    clcnn_device *dev = calloc(1, sizeof *dev);
    if (!dev) {
        free(f);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_device_open: out of host memory");
    }
    dev->refs = 1;
    dev->platform = f->platform[pick];
    dev->id = f->device[pick];
    dev->info = f->info[pick];
    if (forced) dev->info.type = forced; /* selection above used the driver's type */
    free(f);
    s = create_on(dev);
    if (s != CLCNN_OK) {
        cc_fail_append(s, " (opening device '%s')", dev->info.name);
        clcnn_device_close(dev);
        return s;
    }
    if (width) dev->native_float_width = width;
    const char *prof = getenv("CLCNN_PROFILE");
    dev->trace = prof && *prof && strcmp(prof, "0") != 0;
    dev->trace_steps = dev->trace && strcmp(prof, "steps") == 0;
    if (cc_verbose())
        fprintf(stderr, "clcnn: device %d: %s / %s (%s, driver %s)%s%s\n", dev->info.index,
                dev->info.platform_name, dev->info.name, dev->info.opencl_c_version,
                dev->info.driver_version, forced ? "; as a " : "", forced ? type_name(forced) : "");
    *out = dev;
    return CLCNN_OK;
}

void cc_device_ref(clcnn_device *dev) {
    dev->refs++;
}

/* Everything the handle owns, once nothing uses it any more. */
static void device_release(clcnn_device *dev) {
    if (dev->queue) clFinish(dev->queue);
    cc_profile_release(dev);
    cc_programs_release(dev);
    cc_pool_destroy(dev);
    if (dev->queue) clReleaseCommandQueue(dev->queue);
    if (dev->ctx) clReleaseContext(dev->ctx);
    free(dev);
}

void cc_device_unref(clcnn_device *dev) {
    if (dev && --dev->refs <= 0) device_release(dev);
}

void clcnn_device_close(clcnn_device *dev) {
    if (!dev) return;
    if (dev->queue) clFinish(dev->queue);
    cc_trace_report(dev);
    if (cc_verbose() && dev->ctx) {
        const clcnn_cache_stats *c = &dev->cache_stats;
        fprintf(stderr,
                "clcnn: program cache: %llu builds (%.0f ms), %llu memory hits, %llu disk "
                "hits (%.0f ms), %llu disk writes, %llu rejected files\n",
                (unsigned long long)c->builds, c->build_ms, (unsigned long long)c->memory_hits,
                (unsigned long long)c->disk_hits, c->load_ms, (unsigned long long)c->disk_writes,
                (unsigned long long)c->disk_rejects);
        if (dev->refs > 1)
            fprintf(stderr,
                    "clcnn: device closed with %d tensors still alive: released with the "
                    "last of them\n",
                    dev->refs - 1);
    }
    cc_device_unref(dev);
}

const clcnn_device_info *clcnn_device_get_info(const clcnn_device *dev) {
    return dev ? &dev->info : NULL;
}
cl_context clcnn_device_context(const clcnn_device *dev) {
    return dev ? dev->ctx : NULL;
}
cl_command_queue clcnn_device_queue(const clcnn_device *dev) {
    return dev ? dev->queue : NULL;
}

clcnn_status clcnn_device_finish(clcnn_device *dev) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "clcnn_device_finish: device is NULL");
    return CC_CL(clFinish(dev->queue));
}

void clcnn_device_cache_stats(const clcnn_device *dev, clcnn_cache_stats *out) {
    if (!out) return;
    if (!dev) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = dev->cache_stats;
}

/* ---- OpenCL error mapping ---------------------------------------------------------- */

const char *cc_cl_error_name(cl_int err) {
    switch (err) {
#define N(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        // clang-format off
        N(CL_SUCCESS)
        N(CL_DEVICE_NOT_FOUND)
        N(CL_DEVICE_NOT_AVAILABLE)
        N(CL_COMPILER_NOT_AVAILABLE)
        N(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        N(CL_OUT_OF_RESOURCES)
        N(CL_OUT_OF_HOST_MEMORY)
        N(CL_PROFILING_INFO_NOT_AVAILABLE)
        N(CL_MEM_COPY_OVERLAP)
        N(CL_BUILD_PROGRAM_FAILURE)
        N(CL_MAP_FAILURE)
        N(CL_INVALID_VALUE)
        N(CL_INVALID_DEVICE_TYPE)
        N(CL_INVALID_PLATFORM)
        N(CL_INVALID_DEVICE)
        N(CL_INVALID_CONTEXT)
        N(CL_INVALID_QUEUE_PROPERTIES)
        N(CL_INVALID_COMMAND_QUEUE)
        N(CL_INVALID_HOST_PTR)
        N(CL_INVALID_MEM_OBJECT)
        N(CL_INVALID_BINARY)
        N(CL_INVALID_BUILD_OPTIONS)
        N(CL_INVALID_PROGRAM)
        N(CL_INVALID_PROGRAM_EXECUTABLE)
        N(CL_INVALID_KERNEL_NAME)
        N(CL_INVALID_KERNEL_DEFINITION)
        N(CL_INVALID_KERNEL)
        N(CL_INVALID_ARG_INDEX)
        N(CL_INVALID_ARG_VALUE)
        N(CL_INVALID_ARG_SIZE)
        N(CL_INVALID_KERNEL_ARGS)
        N(CL_INVALID_WORK_DIMENSION)
        N(CL_INVALID_WORK_GROUP_SIZE)
        N(CL_INVALID_WORK_ITEM_SIZE)
        N(CL_INVALID_GLOBAL_OFFSET)
        N(CL_INVALID_EVENT_WAIT_LIST)
        N(CL_INVALID_EVENT)
        N(CL_INVALID_OPERATION)
        N(CL_INVALID_BUFFER_SIZE)
        N(CL_INVALID_GLOBAL_WORK_SIZE)
        N(CL_PLATFORM_NOT_FOUND_KHR)
        N(CL_COMPILE_PROGRAM_FAILURE)
        N(CL_LINKER_NOT_AVAILABLE)
        N(CL_LINK_PROGRAM_FAILURE)
        N(CL_DEVICE_PARTITION_FAILED)
        N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
        N(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        N(CL_INVALID_PROPERTY)
        N(CL_INVALID_IMAGE_SIZE)
        N(CL_INVALID_SAMPLER)
        N(CL_INVALID_COMPILER_OPTIONS)
        N(CL_INVALID_LINKER_OPTIONS)
        N(CL_INVALID_DEVICE_PARTITION_COUNT)
        N(CL_IMAGE_FORMAT_NOT_SUPPORTED)
        N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
        // clang-format on
#undef N
    }
    return "unknown OpenCL error";
}

clcnn_status cc_cl_status(cl_int err, const char *call, const char *file, int line) {
    if (err == CL_SUCCESS) return CLCNN_OK;
    clcnn_status s = (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                      err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE)
                         ? CLCNN_ERR_OUT_OF_MEMORY
                         : CLCNN_ERR_OPENCL;
    const char *base = strrchr(file, '/');
    return cc_fail(s, "%s failed with %s (%d) at %s:%d", call, cc_cl_error_name(err), (int)err,
                   base ? base + 1 : file, line);
}

double cc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
