/* The one place that calls CLBlast: row-major SGEMM wrappers that map CLBlast status
 * codes to clcnn statuses and take part in device profiling. */
#include "internal.h"
#include "program_disk.h"

#include <clblast_c.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

clcnn_status cc_blas_status(int code, const char *call) {
    if (code == CLBlastSuccess) return CLCNN_OK;
    clcnn_status s = CLCNN_ERR_BLAS;
    if (code == CLBlastOpenCLOutOfHostMemory || code == CLBlastOpenCLOutOfResources ||
        code == CLBlastTempBufferAllocFailure)
        s = CLCNN_ERR_OUT_OF_MEMORY;
    if (code == CLBlastOpenCLBuildProgramFailure) s = CLCNN_ERR_BUILD;
    return cc_fail(s, "%s failed with CLBlast status %d", call, code);
}

/* When profiling or tracing, a marker before a CLBlast call: CLBlast's own event covers
 * only the last of the kernels it enqueues, so the call is timed from this marker to one
 * enqueued after it. */
static cl_event span_start(clcnn_device *dev) {
    cl_event e = NULL;
    if (cc_profile_slot(dev) && clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &e) != CL_SUCCESS)
        e = NULL;
    return e;
}

static void span_end(clcnn_device *dev, cl_event first, int ok) {
    if (!first) return;
    cl_event last = NULL;
    if (!ok || clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &last) != CL_SUCCESS) {
        clReleaseEvent(first);
        return;
    }
    cc_profile_commit_span(dev, "CLBlastSgemm", first, last);
}

/* ---- CLBlast 1.5.3's strided-batched GEMM ----------------------------------------
 *
 * Its indirect path (XgemmStridedBatched::BatchedGemmIndirect) copies a matrix into a
 * padded temporary only when the sizes, leading dimension or orientation do not suit the
 * Xgemm kernel; when no copy is made it hands the kernel the caller's buffer but the
 * kernel finds item i at i * rows * cols from element 0: the caller's offset and stride
 * are ignored (B at an offset, A shared by every item, C at an offset all come out wrong).
 * And it pads k to a multiple of KWG only, and passes the kernel k rounded up to VWM,
 * where the single GEMM pads to KWG*KREG: with GEMMK = 1 (2-D register tiling, KWG = 1,
 * KREG up to 16) the kernel then walks past the last rows of A and B (NaN, garbage)
 * whenever k is no multiple of KREG and VWM. Calls that would hit either run as one
 * GEMM per item. To decide, blas.c follows the Xgemm parameters and the
 * XGEMM_MIN_INDIRECT_SIZE in force per device (lib/tune tells it whenever it overrides
 * them; before that, CLBlast's defaults: GEMMK 0, tile sizes unknown). */

#define RULES_MAX 32
typedef struct batched_rule {
    cl_device_id id;
    int known;             /* xgemm below is what is in force */
    cc_blas_xgemm_shape x; /* GEMMK 0 with unknown tiles when !known */
    size_t min_indirect;   /* 0: unknown (CLBlast's default) */
} batched_rule;
static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static batched_rule rules[RULES_MAX];
static int rules_n;

static batched_rule *rule_slot(cl_device_id id) { /* with rules_lock held */
    for (int i = 0; i < rules_n; i++)
        if (rules[i].id == id) return &rules[i];
    if (rules_n == RULES_MAX) return NULL;
    memset(&rules[rules_n], 0, sizeof rules[0]);
    rules[rules_n].id = id;
    return &rules[rules_n++];
}

void cc_blas_note_xgemm(cl_device_id id, const cc_blas_xgemm_shape *x) {
    pthread_mutex_lock(&rules_lock);
    batched_rule *r = rule_slot(id);
    if (r) {
        r->known = x != NULL;
        if (x) r->x = *x;
    }
    pthread_mutex_unlock(&rules_lock);
}

void cc_blas_note_min_indirect(cl_device_id id, size_t min_indirect) {
    pthread_mutex_lock(&rules_lock);
    batched_rule *r = rule_slot(id);
    if (r) r->min_indirect = min_indirect;
    pthread_mutex_unlock(&rules_lock);
}

/* ---- CLBlast's first call per routine ---------------------------------------------
 *
 * CLBlast compiles a routine's program (every kernel of it, for the parameters in force)
 * at the routine's first call in a process; POCL keeps the binary in its own disk cache,
 * with no lock between processes, so processes starting together (parallel tests, MPI
 * ranks) each compiled it, tens of seconds of CPU per program on POCL. The
 * first call of each routine per device and parameter set therefore runs under an
 * exclusive flock on <cache dir>/<key>.clblast.lock; the others wait for it, and their
 * own first call then finds the binary in the driver's cache. Without a disk cache
 * (CLCNN_CACHE_DIR=off) nothing is locked. */

enum { ROUTINE_SGEMM, ROUTINE_SGEMM_BATCHED };

#define WARM_MAX 64
static struct {
    cl_device_id id;
    uint64_t key;
} warm[WARM_MAX];
static int warm_n;

/* Whether routine key has had its first call on device id (with rules_lock held). */
static int warm_seen(cl_device_id id, uint64_t key) {
    for (int i = 0; i < warm_n; i++)
        if (warm[i].id == id && warm[i].key == key) return 1;
    return 0;
}

/* The key of routine's program on dev: device, driver and the GEMM parameters lib/tune
 * put in force (CLBlast's defaults until then). */
static uint64_t routine_key(const clcnn_device *dev, int routine) {
    uint64_t h = cc_hash64(CC_HASH_INIT, &routine, sizeof routine);
    h = cc_hash64(h, dev->info.name, strlen(dev->info.name));
    h = cc_hash64(h, dev->info.driver_version, strlen(dev->info.driver_version));
    pthread_mutex_lock(&rules_lock);
    batched_rule *r = rule_slot(dev->id);
    if (r && r->known) h = cc_hash64(h, &r->x, sizeof r->x);
    if (r) h = cc_hash64(h, &r->min_indirect, sizeof r->min_indirect);
    pthread_mutex_unlock(&rules_lock);
    return h;
}

/* Before a CLBlast call: the lock's descriptor when this is the routine's first call in
 * this process for the parameters in force (first_done after the call), else -1. */
static int first_call_lock(const clcnn_device *dev, int routine, uint64_t *key) {
    *key = routine_key(dev, routine);
    pthread_mutex_lock(&rules_lock);
    int seen = warm_seen(dev->id, *key);
    pthread_mutex_unlock(&rules_lock);
    char dir[4000], path[4100];
    if (seen || !clcnn_cache_dir(dir, sizeof dir)) return -1;
    snprintf(path, sizeof path, "%s/%016llx.clblast.lock", dir, (unsigned long long)*key);
    return cc_disk_lock_wait(dir, path, NULL);
}

/* After the call (whatever its outcome): later calls take no lock. */
static void first_done(const clcnn_device *dev, uint64_t key, int fd) {
    pthread_mutex_lock(&rules_lock);
    if (!warm_seen(dev->id, key) && warm_n < WARM_MAX) {
        warm[warm_n].id = dev->id;
        warm[warm_n++].key = key;
    }
    pthread_mutex_unlock(&rules_lock);
    if (fd >= 0) close(fd);
}

clcnn_status cc_sgemm(clcnn_device *dev, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                      size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc) {
    cc_tune_apply(dev); /* stored GEMM tuning, once per device (lib/tune) */
    uint64_t key;
    int lock = first_call_lock(dev, ROUTINE_SGEMM, &key);
    cl_event first = span_start(dev);
    int code =
        CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                     trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                     lda, b, b_off, ldb, beta, c, c_off, ldc, &dev->queue, NULL);
    span_end(dev, first, code == CLBlastSuccess);
    first_done(dev, key, lock);
    return cc_blas_status(code, "CLBlastSgemm");
}

static size_t ceil_to(size_t x, size_t m) {
    return m > 1 ? (x + m - 1) / m * m : x;
}

/* Whether one of CLBlast's kernels would read matrix (one x two, leading dim ld) in place:
 * not transposed by the copy kernels, already padded (one_i x two_i; both unknown: any
 * size may be) and ld == one. */
static int in_place(int do_transpose, size_t one, size_t two, size_t ld, size_t one_i, size_t two_i,
                    int known) {
    return !do_transpose && ld == one && (!known || (one == one_i && two == two_i));
}

/* 1 when CLBlastSgemmStridedBatched (row-major) computes this call right with the
 * parameters in force, by CLBlast 1.5.3's own rules (xgemm.hpp ProcessArguments,
 * CalculateInternalDimensions; xgemmstridedbatched.cpp). */
int cc_blas_batched_ok(cl_device_id id, int ta, int tb, size_t m, size_t n, size_t k, size_t a_off,
                       size_t lda, size_t a_stride, size_t b_off, size_t ldb, size_t b_stride,
                       size_t c_off, size_t ldc, size_t c_stride) {
    batched_rule r;
    memset(&r, 0, sizeof r);
    pthread_mutex_lock(&rules_lock);
    for (int i = 0; i < rules_n; i++)
        if (rules[i].id == id) r = rules[i];
    pthread_mutex_unlock(&rules_lock);
    if (r.min_indirect > 1) { /* the direct kernel takes offsets and strides as given */
        unsigned long long t = r.min_indirect;
        if ((unsigned long long)m * n * k < t * t * t) return 1;
    }
    const int known = r.known, k1 = known && r.x.gemmk == 1;
    const size_t mwg = known ? r.x.mwg : 1, nwg = known ? r.x.nwg : 1, kwg = known ? r.x.kwg : 1;
    const size_t mc = ceil_to(m, mwg), nc = ceil_to(n, nwg), kc = ceil_to(k, kwg);
    if (known && (kc % (kwg * r.x.kreg) != 0 || kc % r.x.vwm != 0)) return 0;
    /* row-major: A (m x k) is "rotated" unless transposed; the kernel wants it rotated
     * with GEMMK 1 only. B: always wanted rotated. C: rotated, wanted so with GEMMK 1. */
    const int a_rot = !ta;
    const size_t a_one = a_rot ? k : m, a_two = a_rot ? m : k;
    if (in_place(a_rot != k1, a_one, a_two, lda, k1 ? kc : mc, k1 ? mc : kc, known) &&
        (a_off != 0 || a_stride != a_one * a_two))
        return 0;
    const size_t b_one = tb ? k : n, b_two = tb ? n : k;
    if (in_place(tb, b_one, b_two, ldb, nc, kc, known) && (b_off != 0 || b_stride != b_one * b_two))
        return 0;
    if (in_place(!k1, n, m, ldc, k1 ? nc : mc, k1 ? mc : nc, known) &&
        (c_off != 0 || c_stride != m * n))
        return 0;
    return 1;
}

clcnn_status cc_sgemm_strided_batched(clcnn_device *dev, int trans_a, int trans_b, size_t m,
                                      size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                      size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                      size_t ldb, size_t b_stride, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
    cc_tune_apply(dev); /* first: it decides the parameters the rule below looks at */
    if (batch == 1 || !cc_blas_batched_ok(dev->id, trans_a, trans_b, m, n, k, a_off, lda, a_stride,
                                          b_off, ldb, b_stride, c_off, ldc, c_stride)) {
        for (size_t i = 0; i < batch; i++)
            CC_TRY(cc_sgemm(dev, trans_a, trans_b, m, n, k, alpha, a, a_off + i * a_stride, lda, b,
                            b_off + i * b_stride, ldb, beta, c, c_off + i * c_stride, ldc));
        return CLCNN_OK;
    }
    uint64_t key;
    int lock = first_call_lock(dev, ROUTINE_SGEMM_BATCHED, &key);
    cl_event first = span_start(dev);
    int code = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda, a_stride,
        b, b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &dev->queue, NULL);
    span_end(dev, first, code == CLBlastSuccess);
    first_done(dev, key, lock);
    return cc_blas_status(code, "CLBlastSgemmStridedBatched");
}
