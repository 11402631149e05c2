/* Run-time kernel builds with an in-memory and an on-disk program cache.
 *
 * Memory: per device, a list of (file, options, source hash) -> cl_program + its
 *         cl_kernels (the source hash matters only under $CLCNN_KERNEL_DIR, where the
 *         file on disk may change while the process runs).
 * Disk:   one file per program under the cache directory (lib/program_disk.c). Anything
 *         that does not validate, or that the driver rejects, is rebuilt from source and
 *         rewritten: never fatal. A miss builds under the program's build lock, so that
 *         processes wanting one program at once compile it once. */
#include "fault.h"
#include "internal.h"
#include "program_disk.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WARM_TAG "clcnn-warm:"

typedef struct cc_kernel_entry {
    char *name;
    cl_kernel kernel;
    int launched; /* set at the first launch ($CLCNN_TRACE_KERNELS writes its line then) */
    struct cc_kernel_entry *next;
} cc_kernel_entry;

struct cc_program_entry {
    char *file;
    char *options;     /* normalised: sorted -D list + -cl-std */
    uint64_t src_hash; /* 0 for embedded sources; hash of the text under CLCNN_KERNEL_DIR */
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

/* CPU time of the whole process (the driver's compiler threads included). */
static double cpu_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- sources -------------------------------------------------------------------- */

/* A growing text buffer for the include expansion below. */
typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static int tb_add(text_buf *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (b->n + len + 1 > cap)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Append the text of dir/name with local #include "x" lines replaced by dir/x, as
 * cmake/embed_kernels.cmake does for the embedded copies, so that a kernel loaded from
 * $CLCNN_KERNEL_DIR builds exactly like the embedded one and its cache key covers the
 * included headers too. */
static clcnn_status expand_file(text_buf *b, const char *dir, const char *name, int depth) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CC_RETURN_IF(depth > 4, CLCNN_ERR_INVALID_ARG, "kernel includes nest too deep at %s", path);
    char *text = cc_read_text(path, NULL);
    CC_RETURN_IF(!text, CLCNN_ERR_IO, "cannot read kernel file %s (CLCNN_KERNEL_DIR): %s", path,
                 strerror(errno));
    clcnn_status s = CLCNN_OK;
    for (const char *line = text; *line && s == CLCNN_OK;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) + 1 : strlen(line);
        const char *c = line;
        while (*c == ' ' || *c == '\t')
            c++;
        char inc[256];
        int is_inc = 0;
        if (*c == '#') {
            c++;
            while (*c == ' ' || *c == '\t')
                c++;
            if (strncmp(c, "include", 7) == 0) {
                c += 7;
                while (*c == ' ' || *c == '\t')
                    c++;
                const char *q = *c == '"' ? strchr(c + 1, '"') : NULL;
                if (q && q < line + len && (size_t)(q - c - 1) < sizeof inc) {
                    memcpy(inc, c + 1, (size_t)(q - c - 1));
                    inc[q - c - 1] = '\0';
                    is_inc = 1;
                }
            }
        }
        if (is_inc) {
            s = expand_file(b, dir, inc, depth + 1);
            if (s == CLCNN_OK && tb_add(b, "\n", 1) != 0) s = CLCNN_ERR_OUT_OF_MEMORY;
        } else if (tb_add(b, line, len) != 0) {
            s = CLCNN_ERR_OUT_OF_MEMORY;
        }
        line += len;
    }
    free(text);
    if (s == CLCNN_ERR_OUT_OF_MEMORY)
        return cc_fail(s, "out of host memory reading kernel file %s", path);
    return s;
}

/* The source of cl/<file>.cl: from $CLCNN_KERNEL_DIR when set (development), else
 * the copy embedded at build time. *owned is set when the caller must free it. */
static clcnn_status find_source(const char *file, const char **src, char **owned) {
    *owned = NULL;
    const char *dir = getenv("CLCNN_KERNEL_DIR");
    if (dir && *dir) {
        char name[512];
        CC_RETURN_IF(snprintf(name, sizeof name, "%s.cl", file) >= (int)sizeof name,
                     CLCNN_ERR_INVALID_ARG, "kernel file name '%s' is too long", file);
        text_buf b = {0};
        clcnn_status s = expand_file(&b, dir, name, 0);
        if (s == CLCNN_OK && !b.p && tb_add(&b, "", 0) != 0)
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory reading %s", name);
        if (s != CLCNN_OK) {
            free(b.p);
            return s;
        }
        *owned = b.p;
        *src = b.p;
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
static clcnn_status build_options(const clcnn_device *dev, const char *defines, char **out) {
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
    char *save = NULL; /* strtok_r: device handles may build on several threads at once */
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
        items[n++] = tok;
    qsort(items, n, sizeof *items, cmp_str);
    size_t cap = len + 4 * n + sizeof dev->cl_std + 8;
    char *opt = malloc(cap);
    if (!opt) {
        free(copy);
        free(items);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory building options");
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(opt + pos, cap - pos, "-D%s ", items[i]);
    snprintf(opt + pos, cap - pos, "%s", dev->cl_std);
    if (pos && !dev->cl_std[0]) opt[pos - 1] = '\0'; /* no trailing blank */
    free(copy);
    free(items);
    *out = opt;
    return CLCNN_OK;
}

static unsigned char *program_binary(cl_program prog, cl_device_id dev, size_t *len) {
    cl_uint ndev = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS ||
        ndev != 1)
        return NULL;
    cl_device_id pd;
    if (clGetProgramInfo(prog, CL_PROGRAM_DEVICES, sizeof pd, &pd, NULL) != CL_SUCCESS || pd != dev)
        return NULL;
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
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
    clcnn_status s =
        cc_fail(CLCNN_ERR_BUILD,
                "building kernel file %s.cl for %s failed (%s) with options "
                "'%s'; compiler log:\n%s",
                file, dev->info.name, cc_cl_error_name(err), options, log ? log : "(no log)");
    free(log);
    return s;
}

/* $CLCNN_TRACE_BUILDS=FILE (development and tests): every process appends one line per
 * program it compiles from source, "process cpu_ms wall_ms file OPTIONS..." (the build
 * plus, with a disk cache, fetching the binary, when POCL generates the machine code; CPU
 * time of the whole process), so the cold cost of a test suite can be summed up per
 * process and per program. Best effort: a file that cannot be written is skipped. */
static void trace_build(const char *file, const char *options, double cpu, double wall) {
    const char *path = getenv("CLCNN_TRACE_BUILDS");
    if (!path || !*path) return;
    char proc[64] = "?";
    FILE *c = fopen("/proc/self/comm", "r");
    if (c) {
        if (fgets(proc, sizeof proc, c)) proc[strcspn(proc, "\n")] = '\0';
        fclose(c);
    }
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s %.0f %.0f %s %s\n", proc, cpu, wall, file, options);
    fclose(f);
}

static clcnn_status build_from_source(clcnn_device *dev, const char *file, const char *src,
                                      const char *options, cl_program *out) {
    double t0 = cc_now_ms();
    cl_int err = CL_SUCCESS;
    cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &src, NULL, &err);
    CC_CL_TRY(err);
    err = cc_fault_hit(CC_FAULT_BUILD_PROGRAM)
              ? CL_BUILD_PROGRAM_FAILURE
              : clBuildProgram(prog, 1, &dev->id, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        clcnn_status s = err == CL_BUILD_PROGRAM_FAILURE || err == CL_INVALID_BUILD_OPTIONS
                             ? build_log_error(dev, prog, file, options, err)
                             : cc_cl_status(err, "clBuildProgram", __FILE__, __LINE__);
        clReleaseProgram(prog);
        return s;
    }
    dev->cache_stats.builds++;
    dev->cache_stats.build_ms += cc_now_ms() - t0;
    if (cc_verbose())
        fprintf(stderr, "clcnn: built %s.cl [%s] in %.0f ms\n", file, options, cc_now_ms() - t0);
    *out = prog;
    return CLCNN_OK;
}

static cl_program build_from_binary(clcnn_device *dev, const unsigned char *bin, size_t len,
                                    const char *options) {
    cl_int err = CL_SUCCESS, bstatus = CL_SUCCESS;
    cl_program prog = clCreateProgramWithBinary(dev->ctx, 1, &dev->id, &len, &bin, &bstatus, &err);
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

/* The cached binary at path, loaded into a program (NULL when there is none or it does
 * not validate; *existed: a file was there). */
static cl_program disk_load(clcnn_device *dev, const char *path, uint64_t key, const char *options,
                            int *existed) {
    double t0 = cc_now_ms();
    size_t len = 0;
    unsigned char *bin = cc_disk_read(path, key, &len);
    *existed = bin != NULL || access(path, F_OK) == 0;
    cl_program prog = bin ? build_from_binary(dev, bin, len, options) : NULL;
    free(bin);
    if (prog) {
        dev->cache_stats.disk_hits++;
        dev->cache_stats.load_ms += cc_now_ms() - t0;
    }
    return prog;
}

static clcnn_status obtain_program(clcnn_device *dev, const char *file, const char *src,
                                   const char *options, cl_program *out) {
    char dir[4000], path[4100], lock_path[4200];
    int use_disk = clcnn_cache_dir(dir, sizeof dir), lock_fd = -1;
    uint64_t key = 0;
    if (use_disk) {
        key = cc_disk_key(dev, src, options);
        cc_disk_path(dir, key, path, sizeof path);
        int existed = 0;
        cl_program prog = disk_load(dev, path, key, options, &existed);
        if (!prog && !existed) {
            /* another process may be building it right now: wait, then look again */
            lock_fd = cc_disk_build_lock(dir, path, lock_path, sizeof lock_path);
            prog = disk_load(dev, path, key, options, &existed);
            if (prog) cc_disk_build_unlock(lock_fd, lock_path);
        }
        if (prog) {
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
    double t_build = cc_now_ms(), c_build = cpu_ms();
    clcnn_status st = build_from_source(dev, file, src, options, out);
    if (st != CLCNN_OK) {
        cc_disk_build_unlock(lock_fd, lock_path);
        return st;
    }
    if (use_disk) {
        /* Fetching the binary is not free: POCL generates the kernels' machine code
         * here (often longer than clBuildProgram itself), so it counts as build time. */
        double t0 = cc_now_ms();
        size_t len = 0;
        unsigned char *bin = program_binary(*out, dev->id, &len);
        double t1 = cc_now_ms();
        dev->cache_stats.build_ms += t1 - t0;
        if (bin && cc_disk_write(dir, path, key, bin, len) == 0) {
            dev->cache_stats.disk_writes++;
            if (cc_verbose())
                fprintf(stderr,
                        "clcnn: cached %s.cl as %s (%zu KiB; %.0f ms to get the binary, %.0f "
                        "ms to write)\n",
                        file, path, len / 1024, t1 - t0, cc_now_ms() - t1);
        } else if (cc_verbose()) {
            fprintf(stderr, "clcnn: could not write cache file %s\n", path);
        }
        free(bin);
        cc_disk_build_unlock(lock_fd, lock_path);
    }
    trace_build(file, options, cpu_ms() - c_build, cc_now_ms() - t_build);
    return CLCNN_OK;
}

clcnn_status cc_program_get(clcnn_device *dev, const char *file, const char *defines,
                            cl_program *out) {
    CC_RETURN_IF(!dev || !file || !out, CLCNN_ERR_INVALID_ARG, "cc_program_get: NULL argument");
    const char *src = NULL;
    char *owned = NULL, *options = NULL;
    CC_TRY(find_source(file, &src, &owned));
    clcnn_status s = build_options(dev, defines, &options);
    if (s != CLCNN_OK) {
        free(owned);
        return s;
    }
    /* Embedded sources never change; a file under CLCNN_KERNEL_DIR may be edited (or a
     * test may swap it) while the process runs, so its text is part of the key. */
    uint64_t src_hash = owned ? cc_hash64(CC_HASH_INIT, src, strlen(src)) | 1 : 0;
    for (cc_program_entry *e = dev->programs; e; e = e->next) {
        if (e->src_hash == src_hash && strcmp(e->file, file) == 0 &&
            strcmp(e->options, options) == 0) {
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
    if (s != CLCNN_OK) {
        free(options);
        return s;
    }
    cc_program_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->file = strdup(file))) {
        free(e);
        clReleaseProgram(prog);
        free(options);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory caching a program");
    }
    e->options = options;
    e->src_hash = src_hash;
    e->program = prog;
    e->next = dev->programs;
    dev->programs = e;
    *out = prog;
    return CLCNN_OK;
}

/* The cached kernel of (file, defines, kernel) and the program it belongs to. */
static clcnn_status kernel_entry(clcnn_device *dev, const char *file, const char *defines,
                                 const char *kernel, cc_program_entry **pe, cc_kernel_entry **out) {
    cl_program prog = NULL;
    CC_TRY(cc_program_get(dev, file, defines, &prog));
    cc_program_entry *e = dev->programs;
    while (e && e->program != prog)
        e = e->next;
    *pe = e;
    for (cc_kernel_entry *k = e->kernels; k; k = k->next) {
        if (strcmp(k->name, kernel) == 0) {
            *out = k;
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
    *out = k;
    return CLCNN_OK;
}

clcnn_status cc_kernel_get(clcnn_device *dev, const char *file, const char *defines,
                           const char *kernel, cl_kernel *out) {
    cc_program_entry *e = NULL;
    cc_kernel_entry *k = NULL;
    CC_TRY(kernel_entry(dev, file, defines, kernel, &e, &k));
    *out = k->kernel;
    return CLCNN_OK;
}

/* $CLCNN_TRACE_KERNELS=FILE (development and tests): every process appends one line per
 * distinct kernel it launches, "file kernel DEFINES..." (the build options without
 * -cl-std), the first time it launches it; tests/oclgrind/run.sh sums them up into the
 * coverage of a run. Best effort: a file that cannot be written is skipped. */
static void trace_first_launch(const cc_program_entry *e, cc_kernel_entry *k) {
    k->launched = 1;
    const char *path = getenv("CLCNN_TRACE_KERNELS");
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s %s", e->file, k->name);
    const char *o = e->options;
    while (*o && n > 0 && (size_t)n < sizeof line) {
        size_t len = strcspn(o, " ");
        if (strncmp(o, "-D", 2) == 0)
            n += snprintf(line + n, sizeof line - (size_t)n, " %.*s", (int)len - 2, o + 2);
        o += len;
        o += strspn(o, " ");
    }
    fprintf(f, "%s\n", line); /* one write of a short line: appends do not interleave */
    fclose(f);
}

clcnn_status cc_launch(clcnn_device *dev, const char *file, const char *defines, const char *kernel,
                       int dims, const size_t *gws, const size_t *lws, const cc_arg *args,
                       int nargs) {
    cc_program_entry *e = NULL;
    cc_kernel_entry *ke = NULL;
    CC_TRY(kernel_entry(dev, file, defines, kernel, &e, &ke));
    cl_kernel k = ke->kernel;
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS)
            return cc_fail(CLCNN_ERR_OPENCL, "clSetKernelArg(%s, arg %d) failed with %s", kernel, i,
                           cc_cl_error_name(err));
    }
    size_t g[3] = {1, 1, 1};
    for (int d = 0; d < dims; d++) {
        g[d] = gws[d] ? gws[d] : 1;
        if (lws && lws[d]) g[d] = (g[d] + lws[d] - 1) / lws[d] * lws[d];
    }
    cl_event *ev = cc_profile_slot(dev);
    cl_int err =
        cc_fault_hit(CC_FAULT_ENQUEUE_KERNEL)
            ? CL_OUT_OF_RESOURCES
            : clEnqueueNDRangeKernel(dev->queue, k, (cl_uint)dims, NULL, g, lws, 0, NULL, ev);
    if (err != CL_SUCCESS) {
        clcnn_status s = cc_cl_status(err, "clEnqueueNDRangeKernel", __FILE__, __LINE__);
        return cc_fail_append(s, " (kernel %s from %s.cl)", kernel, file);
    }
    if (ev) cc_profile_commit(dev, kernel);
    if (!ke->launched) trace_first_launch(e, ke);
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

/* ---- warming the cache ------------------------------------------------------------- */

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The kernel files in force: *.cl under $CLCNN_KERNEL_DIR when set, else the embedded
 * table. Returns a malloc'd array of malloc'd names (without ".cl"), sorted. */
static clcnn_status list_kernel_files(char ***out, size_t *count) {
    *out = NULL;
    *count = 0;
    size_t n = 0, cap = 16;
    char **names = malloc(cap * sizeof *names);
    CC_RETURN_IF(!names, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory listing kernels");
    const char *dir = getenv("CLCNN_KERNEL_DIR");
    clcnn_status s = CLCNN_OK;
    if (dir && *dir) {
        DIR *d = opendir(dir);
        if (!d) {
            free(names);
            return cc_fail(CLCNN_ERR_IO, "cannot list CLCNN_KERNEL_DIR %s: %s", dir,
                           strerror(errno));
        }
        for (struct dirent *de; (de = readdir(d)) != NULL && s == CLCNN_OK;) {
            size_t len = strlen(de->d_name);
            if (len <= 3 || strcmp(de->d_name + len - 3, ".cl") != 0) continue;
            if (n == cap) {
                char **nn = realloc(names, (cap *= 2) * sizeof *names);
                if (!nn) {
                    s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory listing kernels");
                    break;
                }
                names = nn;
            }
            if (!(names[n] = strndup(de->d_name, len - 3)))
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory listing kernels");
            else
                n++;
        }
        closedir(d);
    } else {
        for (const cc_kernel_source *k = cc_kernel_sources; k->name && s == CLCNN_OK; k++) {
            if (n == cap) {
                char **nn = realloc(names, (cap *= 2) * sizeof *names);
                if (!nn) {
                    s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory listing kernels");
                    break;
                }
                names = nn;
            }
            if (!(names[n] = strdup(k->name)))
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory listing kernels");
            else
                n++;
        }
    }
    if (s != CLCNN_OK) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return s;
    }
    qsort(names, n, sizeof *names, cmp_cstr);
    *out = names;
    *count = n;
    return CLCNN_OK;
}

/* Build one (file, defines) program and report how it was obtained. */
static clcnn_status warm_one(clcnn_device *dev, const char *file, const char *defines,
                             cc_warm_fn fn, void *ctx) {
    clcnn_cache_stats before = dev->cache_stats;
    double t0 = cc_now_ms();
    cl_program p;
    clcnn_status s = cc_program_get(dev, file, defines, &p);
    const clcnn_cache_stats *now = &dev->cache_stats;
    const char *how = s != CLCNN_OK                       ? "failed"
                      : now->builds > before.builds       ? "built"
                      : now->disk_hits > before.disk_hits ? "loaded"
                                                          : "in memory";
    if (fn) fn(ctx, file, defines, how, cc_now_ms() - t0, s);
    return s;
}

clcnn_status cc_warm(clcnn_device *dev, cc_warm_fn fn, void *ctx) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "clcnn_device_warm: device is NULL");
    char **files = NULL;
    size_t nfiles = 0;
    CC_TRY(list_kernel_files(&files, &nfiles));
    clcnn_status first = CLCNN_OK;
    char first_msg[6144] = "";
    size_t failed = 0, total = 0;
    for (size_t i = 0; i < nfiles; i++) {
        const char *src = NULL;
        char *owned = NULL;
        clcnn_status s = find_source(files[i], &src, &owned);
        /* Variants: every "clcnn-warm: DEFINES" line of the file (up to the end of the
         * line or of the comment); none means the file's defaults. */
        int variants = 0;
        for (const char *m = s == CLCNN_OK ? strstr(src, WARM_TAG) : NULL; m;
             m = strstr(m + 1, WARM_TAG)) {
            const char *b = m + strlen(WARM_TAG), *e = b;
            while (*e && *e != '\n' && strncmp(e, "*/", 2) != 0)
                e++;
            char defs[512];
            size_t len = (size_t)(e - b) < sizeof defs - 1 ? (size_t)(e - b) : sizeof defs - 1;
            memcpy(defs, b, len);
            defs[len] = '\0';
            variants++;
            total++;
            clcnn_status v = warm_one(dev, files[i], defs, fn, ctx);
            if (v != CLCNN_OK && failed++ == 0) {
                first = v;
                snprintf(first_msg, sizeof first_msg, "%s", clcnn_last_error());
            }
        }
        if (s == CLCNN_OK && variants == 0) {
            total++;
            s = warm_one(dev, files[i], "", fn, ctx);
        } else if (s != CLCNN_OK && fn) {
            total++;
            fn(ctx, files[i], "", "failed", 0, s);
        }
        if (s != CLCNN_OK && failed++ == 0) {
            first = s;
            snprintf(first_msg, sizeof first_msg, "%s", clcnn_last_error());
        }
        free(owned);
        free(files[i]);
    }
    free(files);
    if (failed)
        return cc_fail(first, "warming the program cache: %zu of %zu programs failed; first: %s",
                       failed, total, first_msg);
    return CLCNN_OK;
}

clcnn_status clcnn_device_warm(clcnn_device *dev) {
    return cc_warm(dev, NULL, NULL);
}

clcnn_status clcnn_device_warm_each(clcnn_device *dev, clcnn_warm_fn fn, void *ctx) {
    return cc_warm(dev, fn, ctx);
}
