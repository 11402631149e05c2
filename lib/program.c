/* Run-time kernel builds with an in-memory and an on-disk program cache.
 *
 * Memory: per device, a list of (file, options) -> cl_program + its cl_kernels.
 * Disk:   one file per program under the cache directory, named by a 64-bit hash of
 *         (source, options, platform, device name, driver version, library version).
 *         File layout (little-endian):
 *           "CLCNNBIN" | u32 format | u32 0 | u64 key | u64 payload bytes |
 *           u64 payload hash | payload (the CL_PROGRAM_BINARIES bytes)
 *         Written to a unique temporary name, flushed, fsync'd and renamed, so readers
 *         see either no file or a whole one. Anything that does not validate, or that
 *         the driver rejects, is rebuilt from source and rewritten: never fatal. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DISK_MAGIC "CLCNNBIN"
#define DISK_FORMAT 1u
#define HEADER_BYTES 40

typedef struct cc_kernel_entry {
    char *name;
    cl_kernel kernel;
    struct cc_kernel_entry *next;
} cc_kernel_entry;

struct cc_program_entry {
    char *file;
    char *options; /* normalised: sorted -D list + -cl-std */
    cl_program program;
    cc_kernel_entry *kernels;
    struct cc_program_entry *next;
};

uint64_t cc_hash64(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- sources -------------------------------------------------------------------- */

static char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* The source of cl/<file>.cl: from $CLCNN_KERNEL_DIR when set (development), else
 * the copy embedded at build time. *owned is set when the caller must free it. */
static clcnn_status find_source(const char *file, const char **src, char **owned,
                                const char **include_dir) {
    *owned = NULL;
    *include_dir = NULL;
    const char *dir = getenv("CLCNN_KERNEL_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.cl", dir, file);
        *owned = read_whole(path, NULL);
        CC_RETURN_IF(!*owned, CLCNN_ERR_IO, "cannot read kernel file %s (CLCNN_KERNEL_DIR): %s",
                     path, strerror(errno));
        *src = *owned;
        *include_dir = dir;
        return CLCNN_OK;
    }
    for (const cc_kernel_source *k = cc_kernel_sources; k->name; k++) {
        if (strcmp(k->name, file) == 0) {
            *src = k->source;
            return CLCNN_OK;
        }
    }
    return cc_fail(CLCNN_ERR_NOT_FOUND, "no kernel file '%s.cl' is built into the library", file);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "B=2 A=1" -> "-DA=1 -DB=2 -cl-std=CL1.2": sorted so equal sets give equal keys. */
static clcnn_status build_options(const clcnn_device *dev, const char *defines,
                                  const char *include_dir, char **out) {
    *out = NULL;
    size_t len = defines ? strlen(defines) : 0;
    char *copy = malloc(len + 1);
    const char **items = malloc((len / 2 + 2) * sizeof *items);
    if (!copy || !items) {
        free(copy);
        free(items);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory building options");
    }
    memcpy(copy, defines ? defines : "", len + 1);
    size_t n = 0;
    for (char *tok = strtok(copy, " \t"); tok; tok = strtok(NULL, " \t")) items[n++] = tok;
    qsort(items, n, sizeof *items, cmp_str);
    size_t cap = len + 4 * n + 64 + (include_dir ? strlen(include_dir) + 8 : 0);
    char *opt = malloc(cap);
    if (!opt) {
        free(copy);
        free(items);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory building options");
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) pos += (size_t)snprintf(opt + pos, cap - pos, "-D%s ", items[i]);
    if (include_dir) pos += (size_t)snprintf(opt + pos, cap - pos, "-I%s ", include_dir);
    snprintf(opt + pos, cap - pos, "%s", dev->cl_std);
    free(copy);
    free(items);
    *out = opt;
    return CLCNN_OK;
}

/* ---- disk cache ------------------------------------------------------------------- */

int clcnn_cache_dir(char *buf, size_t cap) {
    const char *env = getenv("CLCNN_CACHE_DIR");
    if (env && strcmp(env, "off") == 0) return 0;
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return 1;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(buf, cap, "%s/clcnn", xdg);
        return 1;
    }
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(buf, cap, "%s/.cache/clcnn", home);
        return 1;
    }
    return 0;
}

static int mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static uint64_t disk_key(const clcnn_device *dev, const char *src, const char *options) {
    uint64_t h = CC_HASH_INIT;
    const char *parts[] = {src,
                           options,
                           dev->info.platform_name,
                           dev->info.name,
                           dev->info.driver_version,
                           CLCNN_VERSION_STRING};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        h = cc_hash64(h, parts[i], strlen(parts[i]) + 1); /* +1: separator */
    return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void disk_path(const char *dir, uint64_t key, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%016llx.clbin", dir, (unsigned long long)key);
}

/* Load and validate a cached binary. Returns the payload (caller frees) or NULL. */
static unsigned char *disk_read(const char *path, uint64_t key, size_t *payload_len) {
    size_t len = 0;
    unsigned char *buf = (unsigned char *)read_whole(path, &len);
    if (!buf) return NULL;
    if (len < HEADER_BYTES || memcmp(buf, DISK_MAGIC, 8) != 0 ||
        (buf[8] | buf[9] << 8 | buf[10] << 16 | (uint32_t)buf[11] << 24) != DISK_FORMAT ||
        get_u64(buf + 16) != key || get_u64(buf + 24) != len - HEADER_BYTES ||
        get_u64(buf + 32) != cc_hash64(CC_HASH_INIT, buf + HEADER_BYTES, len - HEADER_BYTES)) {
        free(buf);
        return NULL;
    }
    *payload_len = len - HEADER_BYTES;
    memmove(buf, buf + HEADER_BYTES, *payload_len);
    return buf;
}

/* Write atomically: unique temp file in the same directory, fsync, rename. Failures
 * are silent (the cache is an optimisation) but counted under CLCNN_VERBOSE. */
static int disk_write(const char *dir, const char *path, uint64_t key, const unsigned char *data,
                      size_t len) {
    if (mkdir_p(dir) != 0) return -1;
    char tmp[4400];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld%06ld", path, (long)getpid(), (long)tv.tv_sec,
             (long)tv.tv_usec);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    unsigned char hdr[HEADER_BYTES] = {0};
    memcpy(hdr, DISK_MAGIC, 8);
    hdr[8] = DISK_FORMAT;
    put_u64(hdr + 16, key);
    put_u64(hdr + 24, len);
    put_u64(hdr + 32, cc_hash64(CC_HASH_INIT, data, len));
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(data, 1, len, f) == len &&
             fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static unsigned char *program_binary(cl_program prog, cl_device_id dev, size_t *len) {
    cl_uint ndev = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS ||
        ndev != 1)
        return NULL;
    cl_device_id pd;
    if (clGetProgramInfo(prog, CL_PROGRAM_DEVICES, sizeof pd, &pd, NULL) != CL_SUCCESS ||
        pd != dev)
        return NULL;
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) !=
            CL_SUCCESS ||
        size == 0)
        return NULL;
    unsigned char *bin = malloc(size);
    if (!bin) return NULL;
    unsigned char *ptrs[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL) != CL_SUCCESS) {
        free(bin);
        return NULL;
    }
    *len = size;
    return bin;
}

/* ---- building --------------------------------------------------------------------- */

static clcnn_status build_log_error(clcnn_device *dev, cl_program prog, const char *file,
                                    const char *options, cl_int err) {
    size_t size = 0;
    clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &size);
    char *log = malloc(size + 1);
    if (log) {
        log[0] = '\0';
        clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, size, log, NULL);
        log[size] = '\0';
    }
    clcnn_status s = cc_fail(CLCNN_ERR_BUILD,
                             "building kernel file %s.cl for %s failed (%s) with options "
                             "'%s'; compiler log:\n%s",
                             file, dev->info.name, cc_cl_error_name(err), options,
                             log ? log : "(no log)");
    free(log);
    return s;
}

static clcnn_status build_from_source(clcnn_device *dev, const char *file, const char *src,
                                      const char *options, cl_program *out) {
    double t0 = now_ms();
    cl_int err = CL_SUCCESS;
    cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &src, NULL, &err);
    CC_CL_TRY(err);
    err = clBuildProgram(prog, 1, &dev->id, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        clcnn_status s = err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS
                             ? build_log_error(dev, prog, file, options, err)
                             : cc_cl_status(err, "clBuildProgram", __FILE__, __LINE__);
        clReleaseProgram(prog);
        return s;
    }
    dev->cache_stats.builds++;
    dev->cache_stats.build_ms += now_ms() - t0;
    if (cc_verbose())
        fprintf(stderr, "clcnn: built %s.cl [%s] in %.0f ms\n", file, options, now_ms() - t0);
    *out = prog;
    return CLCNN_OK;
}

static cl_program build_from_binary(clcnn_device *dev, const unsigned char *bin, size_t len,
                                    const char *options) {
    cl_int err = CL_SUCCESS, bstatus = CL_SUCCESS;
    cl_program prog =
        clCreateProgramWithBinary(dev->ctx, 1, &dev->id, &len, &bin, &bstatus, &err);
    if (err != CL_SUCCESS || bstatus != CL_SUCCESS) {
        if (prog) clReleaseProgram(prog);
        return NULL;
    }
    if (clBuildProgram(prog, 1, &dev->id, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

static clcnn_status obtain_program(clcnn_device *dev, const char *file, const char *src,
                                   const char *options, cl_program *out) {
    char dir[4000], path[4100];
    int use_disk = clcnn_cache_dir(dir, sizeof dir);
    uint64_t key = 0;
    if (use_disk) {
        key = disk_key(dev, src, options);
        disk_path(dir, key, path, sizeof path);
        double t0 = now_ms();
        size_t len = 0;
        unsigned char *bin = disk_read(path, key, &len);
        int existed = bin != NULL || access(path, F_OK) == 0;
        cl_program prog = bin ? build_from_binary(dev, bin, len, options) : NULL;
        free(bin);
        if (prog) {
            dev->cache_stats.disk_hits++;
            dev->cache_stats.load_ms += now_ms() - t0;
            *out = prog;
            return CLCNN_OK;
        }
        if (existed) {
            dev->cache_stats.disk_rejects++;
            if (cc_verbose())
                fprintf(stderr, "clcnn: cache file %s is unreadable or rejected; rebuilding\n",
                        path);
        }
    }
    CC_TRY(build_from_source(dev, file, src, options, out));
    if (use_disk) {
        size_t len = 0;
        unsigned char *bin = program_binary(*out, dev->id, &len);
        if (bin && disk_write(dir, path, key, bin, len) == 0) dev->cache_stats.disk_writes++;
        else if (cc_verbose())
            fprintf(stderr, "clcnn: could not write cache file %s\n", path);
        free(bin);
    }
    return CLCNN_OK;
}

clcnn_status cc_program_get(clcnn_device *dev, const char *file, const char *defines,
                            cl_program *out) {
    CC_RETURN_IF(!dev || !file || !out, CLCNN_ERR_INVALID_ARG, "cc_program_get: NULL argument");
    const char *src = NULL, *include_dir = NULL;
    char *owned = NULL, *options = NULL;
    CC_TRY(find_source(file, &src, &owned, &include_dir));
    clcnn_status s = build_options(dev, defines, include_dir, &options);
    if (s != CLCNN_OK) {
        free(owned);
        return s;
    }
    for (cc_program_entry *e = dev->programs; e; e = e->next) {
        if (strcmp(e->file, file) == 0 && strcmp(e->options, options) == 0) {
            dev->cache_stats.memory_hits++;
            free(owned);
            free(options);
            *out = e->program;
            return CLCNN_OK;
        }
    }
    cl_program prog = NULL;
    s = obtain_program(dev, file, src, options, &prog);
    free(owned);
    cc_program_entry *e = s == CLCNN_OK ? calloc(1, sizeof *e) : NULL;
    if (s == CLCNN_OK && (!e || !(e->file = strdup(file)))) {
        free(e);
        clReleaseProgram(prog);
        free(options);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory caching a program");
    }
    if (s != CLCNN_OK) {
        free(options);
        return s;
    }
    e->options = options;
    e->program = prog;
    e->next = dev->programs;
    dev->programs = e;
    *out = prog;
    return CLCNN_OK;
}

clcnn_status cc_kernel_get(clcnn_device *dev, const char *file, const char *defines,
                           const char *kernel, cl_kernel *out) {
    cl_program prog = NULL;
    CC_TRY(cc_program_get(dev, file, defines, &prog));
    cc_program_entry *e = dev->programs;
    while (e && e->program != prog) e = e->next;
    for (cc_kernel_entry *k = e->kernels; k; k = k->next) {
        if (strcmp(k->name, kernel) == 0) {
            *out = k->kernel;
            return CLCNN_OK;
        }
    }
    cl_int err = CL_SUCCESS;
    cl_kernel kern = clCreateKernel(prog, kernel, &err);
    if (err != CL_SUCCESS)
        return cc_fail(err == CL_INVALID_KERNEL_NAME ? CLCNN_ERR_NOT_FOUND : CLCNN_ERR_OPENCL,
                       "clCreateKernel(%s) in %s.cl failed with %s", kernel, file,
                       cc_cl_error_name(err));
    cc_kernel_entry *k = calloc(1, sizeof *k);
    if (!k || !(k->name = strdup(kernel))) {
        free(k);
        clReleaseKernel(kern);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory caching a kernel");
    }
    k->kernel = kern;
    k->next = e->kernels;
    e->kernels = k;
    *out = kern;
    return CLCNN_OK;
}

clcnn_status cc_launch(clcnn_device *dev, const char *file, const char *defines,
                       const char *kernel, int dims, const size_t *gws, const size_t *lws,
                       const cc_arg *args, int nargs) {
    cl_kernel k = NULL;
    CC_TRY(cc_kernel_get(dev, file, defines, kernel, &k));
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS)
            return cc_fail(CLCNN_ERR_OPENCL, "clSetKernelArg(%s, arg %d) failed with %s", kernel,
                           i, cc_cl_error_name(err));
    }
    size_t g[3] = {1, 1, 1};
    for (int d = 0; d < dims; d++) {
        g[d] = gws[d] ? gws[d] : 1;
        if (lws && lws[d]) g[d] = (g[d] + lws[d] - 1) / lws[d] * lws[d];
    }
    cl_event *ev = cc_profile_slot(dev);
    cl_int err = clEnqueueNDRangeKernel(dev->queue, k, (cl_uint)dims, NULL, g, lws, 0, NULL, ev);
    if (err != CL_SUCCESS) {
        clcnn_status s = cc_cl_status(err, "clEnqueueNDRangeKernel", __FILE__, __LINE__);
        return cc_fail_append(s, " (kernel %s from %s.cl)", kernel, file);
    }
    if (ev) cc_profile_commit(dev);
    return CLCNN_OK;
}

void cc_programs_release(clcnn_device *dev) {
    cc_program_entry *e = dev->programs;
    while (e) {
        cc_program_entry *next = e->next;
        cc_kernel_entry *k = e->kernels;
        while (k) {
            cc_kernel_entry *kn = k->next;
            clReleaseKernel(k->kernel);
            free(k->name);
            free(k);
            k = kn;
        }
        clReleaseProgram(e->program);
        free(e->file);
        free(e->options);
        free(e);
        e = next;
    }
    dev->programs = NULL;
}

clcnn_status clcnn_device_warm(clcnn_device *dev) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "clcnn_device_warm: device is NULL");
    for (const cc_kernel_source *k = cc_kernel_sources; k->name; k++) {
        if (strcmp(k->name, "common") == 0) continue; /* include-only helpers */
        cl_program p;
        CC_TRY(cc_program_get(dev, k->name, "", &p));
    }
    return CLCNN_OK;
}
