/* Library internals shared between lib/ files. Never installed, never exported
 * (the library is built with -fvisibility=hidden; only CLCNN_API symbols leave it).
 *
 * Prefix: cc_ for functions, CC_ for macros. */
#ifndef CLCNN_INTERNAL_H
#define CLCNN_INTERNAL_H

#include "clcnn/clcnn.h"

#include <CL/cl_ext.h>

#include <stdint.h>
#include <stdio.h>

#define CLCNN_VERSION_STRING "0.1.0"

/* ---- errors (lib/status.c) ------------------------------------------------- */

/* Record a detail message for this thread and return s. */
clcnn_status cc_fail(clcnn_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append to the current detail message and return s. */
clcnn_status cc_fail_append(clcnn_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fail with a message when cond holds. */
#define CC_RETURN_IF(cond, status, ...)                                                            \
    do {                                                                                           \
        if (cond) return cc_fail((status), __VA_ARGS__);                                           \
    } while (0)

/* Propagate a failing status (the callee already set the message). */
#define CC_TRY(expr)                                                                               \
    do {                                                                                           \
        clcnn_status cc_s_ = (expr);                                                               \
        if (cc_s_ != CLCNN_OK) return cc_s_;                                                       \
    } while (0)

/* Map an OpenCL error to a status, recording the call and the CL error name. */
clcnn_status cc_cl_status(cl_int err, const char *call, const char *file, int line);
const char *cc_cl_error_name(cl_int err);
#define CC_CL(call) cc_cl_status((call), #call, __FILE__, __LINE__)
/* Return from the function when the OpenCL call fails. */
#define CC_CL_TRY(call) CC_TRY(cc_cl_status((call), #call, __FILE__, __LINE__))

/* ---- files (lib/files.c) ------------------------------------------------------ */

/* Best effort: sync the folder holding path, making a rename into it durable (not every
 * file system supports it; failures are ignored). */
void cc_fsync_dir_of(const char *path);
/* The whole file at path, NUL-terminated (caller frees), its length in *len (may be
 * NULL); NULL when it cannot be opened or read, or memory runs out. */
char *cc_read_text(const char *path, size_t *len);

/* ---- CLBlast (lib/blas.c): row-major SGEMM, C = alpha op(A) op(B) + beta C ------ */

/* Map a CLBlast status (CLBlastStatusCode, an int) to a status. */
clcnn_status cc_blas_status(int code, const char *call);
clcnn_status cc_sgemm(clcnn_device *dev, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                      size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc);
/* batch GEMMs whose operands are a_stride/b_stride/c_stride elements apart. */
clcnn_status cc_sgemm_strided_batched(clcnn_device *dev, int trans_a, int trans_b, size_t m,
                                      size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                      size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                      size_t ldb, size_t b_stride, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t c_stride, size_t batch);
/* What lib/blas.c needs to know of the CLBlast parameters in force on a device to keep
 * strided-batched calls off the cases CLBlast 1.5.3 computes wrong (they run as one GEMM
 * per item): lib/tune calls these whenever it overrides Xgemm (x NULL: back to unknown
 * defaults) or GemmRoutine's XGEMM_MIN_INDIRECT_SIZE. */
typedef struct cc_blas_xgemm_shape {
    size_t gemmk, mwg, nwg, kwg, kreg, vwm;
} cc_blas_xgemm_shape;
void cc_blas_note_xgemm(cl_device_id id, const cc_blas_xgemm_shape *x);
void cc_blas_note_min_indirect(cl_device_id id, size_t min_indirect);
/* 1 when CLBlastSgemmStridedBatched gets this row-major call right with the parameters
 * in force on device id (else cc_sgemm_strided_batched runs it one item at a time). */
int cc_blas_batched_ok(cl_device_id id, int ta, int tb, size_t m, size_t n, size_t k, size_t a_off,
                       size_t lda, size_t a_stride, size_t b_off, size_t ldb, size_t b_stride,
                       size_t c_off, size_t ldc, size_t c_stride);

/* Apply the device's stored GEMM tuning to CLBlast once per physical device and process
 * (lib/tune/tune_file.c; lib/blas.c calls it before CLBlast). Never fails: a missing,
 * corrupted or invalid tuning file leaves CLBlast's defaults in force. */
void cc_tune_apply(clcnn_device *dev);

/* ---- prepared forward convolution (lib/ops/conv2d_prepared.c) ------------------------- */

/* A forward convolution decided once and run many times (the plan's hot path). */
typedef struct cc_conv_fwd cc_conv_fwd;
typedef struct cc_conv_fwd_desc {
    clcnn_conv2d_desc conv; /* strides, pads, dilation, groups; algo AUTO or forced */
    size_t x[4], w[4];      /* input (n,c,h,w) and weight (k,c/groups,r,s) shapes */
    clcnn_activation act;   /* epilogue activation, or CC_ACT_SILU (below) */
    float alpha;            /* leaky-ReLU slope */
    int residual;           /* 1: run takes z (n,k,p,q) and computes y = act(conv(x,w) + b + z) */
    /* A depthwise layer before the convolution (pre_dw 1; lib/ops/conv2d_dwpw.c): x is
     * then its input, the convolution reads dw_act(depthwise(x, dw_w) + dw_b), never
     * stored, and must be 1x1 with stride 1, no padding and algo AUTO or implicit_gemm
     * (CLCNN_ERR_UNSUPPORTED otherwise). dw_w (c, 1, r, s) and dw_b (c, or NULL) are
     * copied at create. */
    int pre_dw;
    clcnn_conv2d_desc dw; /* its strides, pads and dilation (groups: c) */
    const clcnn_tensor *dw_w, *dw_b;
    clcnn_activation dw_act;
    float dw_alpha;
} cc_conv_fwd_desc;
/* x Sigmoid(x) as a prepared forward's epilogue activation (plans fuse EfficientNet's SiLU
 * with it; not a public clcnn_activation): compiled into the implicit_gemm and depthwise
 * kernels (cl/clcnn_ids.h's CLCNN_ACT_ID_SILU). AUTO then takes implicit_gemm where its rules
 * would pick another algorithm; a forced other algorithm is CLCNN_ERR_UNSUPPORTED. */
#define CC_ACT_SILU ((clcnn_activation)4)
/* Validates shapes, resolves the algorithm once (explicit > tuning file > rule, as
 * clcnn_conv2d_forward does), builds its kernels and transforms or copies w (and b) into
 * buffers it owns (implicit-GEMM layout, Winograd filter transform, a plain copy for the
 * others). b (k) may be NULL. w and b are not kept. Errors: CLCNN_ERR_INVALID_ARG,
 * CLCNN_ERR_SHAPE, CLCNN_ERR_UNSUPPORTED (a forced algorithm that cannot run the shape),
 * build and memory errors; *out is untouched on failure. */
clcnn_status cc_conv_fwd_create(clcnn_device *dev, const cc_conv_fwd_desc *d, const clcnn_tensor *w,
                                const clcnn_tensor *b, cc_conv_fwd **out);
/* y = act(conv(x) + b [+ z]); x (n,c,h,w) as in the desc, z and y (n,k,p,q). No tuning
 * lookup, no weight transform, nothing allocated besides pool workspace (gemm's im2col).
 * z is required iff the desc has residual; it may be y itself (same storage and offset:
 * in place), else must not overlap y; y must not overlap x. Views at any offset. */
clcnn_status cc_conv_fwd_run(cc_conv_fwd *f, const clcnn_tensor *x, const clcnn_tensor *z,
                             clcnn_tensor *y);
clcnn_conv_algo cc_conv_fwd_algo(const cc_conv_fwd *f);
void cc_conv_fwd_free(cc_conv_fwd *f); /* NULL ok */

/* ---- device (lib/device.c) ------------------------------------------------- */

/* A monotonic clock in milliseconds, for timing builds, waits and steps. */
double cc_now_ms(void);

typedef struct cc_program_entry cc_program_entry; /* lib/program.c */
typedef struct cc_pool cc_pool;                   /* lib/pool.c */

struct clcnn_device {
    clcnn_device_info info;
    cl_platform_id platform;
    cl_device_id id;
    cl_context ctx;
    cl_command_queue queue;
    char cl_std[32]; /* "-cl-std=CL1.2" etc., chosen from CL_DEVICE_OPENCL_C_VERSION */
    /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT (0: unknown): on a CPU the width of its vector
     * registers in floats (POCL: 16 with AVX-512, 8 with AVX/AVX2, 4 with SSE), which
     * sizes the register blocks of the convolution kernels (cc_cpu_f16_accumulators) */
    unsigned native_float_width;
    /* CL_DEVICE_GLOBAL_MEM_CACHE_SIZE (0: unknown): on a CPU its last-level cache (POCL),
     * which decides where outputs too large to stay cached are stored past the cache
     * (the implicit GEMM's NTS) */
    uint64_t global_cache_bytes;

    /* program cache (lib/program.c) */
    cc_program_entry *programs;
    clcnn_cache_stats cache_stats;

    /* buffer pool (lib/pool.c) */
    cc_pool *pool;

    /* profiling (clcnn_device_profile_begin/end) */
    int profiling;
    struct cc_span *prof_events; /* kept spans between profile_begin and profile_end */
    size_t prof_count, prof_cap;
    cl_event slot_event; /* the event of the enqueue in progress (cc_profile_slot) */

    /* per-kernel trace ($CLCNN_PROFILE=1): time per kernel name, printed on close;
     * $CLCNN_PROFILE=steps: what a plan step enqueues counts under the step's label
     * (trace_label, set by clcnn_plan_run while it enqueues the step) */
    int trace, trace_steps;
    const char *trace_label;
    struct cc_trace_entry *trace_pending; /* events not yet read */
    size_t trace_count, trace_cap;
    struct cc_kernel_stat *kstats;
    size_t kstat_count, kstat_cap;

    /* Lifetime: the handle itself is one reference, every live tensor another (tensors
     * are used on the handle's thread only, so a plain int). clcnn_device_close drops
     * the handle's; the OpenCL objects go when the count reaches zero. */
    int refs;

    /* Kernel parameters the convolution tuner (lib/tune/conv_tune.c) is timing: while
     * tune_cfg_algo is an algorithm (not CLCNN_CONV_AUTO), that algorithm uses tune_cfg
     * ("" = its heuristic) instead of $CLCNN_CONV_*_CFG and the tuning file
     * (cc_conv_cfg in lib/tune/conv_db.h). */
    int tune_cfg_algo;
    char tune_cfg[64];
};

/* A view of t's storage with the given dense shape starting at element `offset` (not
 * checked against the storage's size): it shares the storage and holds a reference to it
 * and to the device, like clcnn_tensor_view. NULL when out of host memory. */
clcnn_tensor *cc_tensor_view_at(const clcnn_tensor *t, int ndim, const size_t *shape,
                                size_t offset);

/* Whether clcnn_linear_* runs a batch of n rows on its small-batch kernels rather than
 * CLBlast (lib/ops/linear.c; clcnn-perf labels its rows with it). */
int cc_linear_use_small(const clcnn_device *dev, size_t n);

/* Take / drop one reference to dev (lib/device.c); dropping the last releases it. */
void cc_device_ref(clcnn_device *dev);
void cc_device_unref(clcnn_device *dev);

/* The -cl-std= option for a device whose compiler reports OpenCL C major.minor
 * ("" when none should be passed). */
void cc_choose_cl_std(int major, int minor, char *buf, size_t cap);

/* Whether CLCNN_VERBOSE is set to something other than "0". */
int cc_verbose(void);

/* When profiling (clcnn_device_profile_begin) or tracing ($CLCNN_PROFILE), returns a
 * pointer where the next enqueue should write its event, else NULL. After a successful
 * enqueue call cc_profile_commit(dev, what) with the kernel's name (a static string or
 * one that outlives the call; it is copied) to keep the event. */
cl_event *cc_profile_slot(clcnn_device *dev);
void cc_profile_commit(clcnn_device *dev, const char *what);
/* Record the span from the start of `first` to the end of `last` as one call of `what`
 * (for work that enqueues several commands, such as a CLBlast call between two
 * markers). Takes over both event references. */
void cc_profile_commit_span(clcnn_device *dev, const char *what, cl_event first, cl_event last);
/* The device time from the start of `first` to the end of `last` (completed events of a
 * profiling queue) in *ms, 0 when the end is not after the start; returns the error of
 * reading the times (CL_SUCCESS). */
cl_int cc_event_span_ms(cl_event first, cl_event last, double *ms);
/* lib/device_profile.c, for lib/device.c: the kept profiling spans released (device
 * release), the $CLCNN_PROFILE table printed and the trace freed (device close). */
void cc_profile_release(clcnn_device *dev);
void cc_trace_report(clcnn_device *dev);

/* ---- programs and kernel launches (lib/program.c) ---------------------------- */

/* One embedded kernel file: name is the file name without ".cl" ("conv2d_direct"). */
typedef struct cc_kernel_source {
    const char *name;
    const char *source; /* local #includes already expanded */
} cc_kernel_source;

/* The table generated at build time from cl/ *.cl (terminated by {NULL, NULL}). */
extern const cc_kernel_source cc_kernel_sources[];

/* A built program for (file, defines) from the in-memory cache, the disk cache or a
 * fresh build. `defines` is a space-separated list of NAME=VALUE (or NAME) entries,
 * in any order (they are sorted so that equal sets give equal cache keys); may be
 * NULL or "". The program stays owned by the device. */
clcnn_status cc_program_get(clcnn_device *dev, const char *file, const char *defines,
                            cl_program *out);

/* A kernel object from (file, defines, kernel name), cached on the device. */
clcnn_status cc_kernel_get(clcnn_device *dev, const char *file, const char *defines,
                           const char *kernel, cl_kernel *out);

/* One kernel argument. Use the CC_ARG_* helpers. ptr NULL + size > 0 = __local. */
typedef struct cc_arg {
    size_t size;
    const void *ptr;
} cc_arg;
#define CC_ARG_MEM(m) ((cc_arg){sizeof(cl_mem), &(cl_mem){(m)}})
#define CC_ARG_INT(v) ((cc_arg){sizeof(cl_int), &(cl_int){(cl_int)(v)}})
#define CC_ARG_UINT(v) ((cc_arg){sizeof(cl_uint), &(cl_uint){(cl_uint)(v)}})
#define CC_ARG_ULONG(v) ((cc_arg){sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(v)}})
#define CC_ARG_FLOAT(v) ((cc_arg){sizeof(cl_float), &(cl_float){(cl_float)(v)}})
#define CC_ARG_LOCAL(bytes) ((cc_arg){(bytes), NULL})
#define CC_ARGS(...)                                                                               \
    (cc_arg[]){__VA_ARGS__}, (int)(sizeof((cc_arg[]){__VA_ARGS__}) / sizeof(cc_arg))

/* Set the arguments and enqueue `kernel` from `file` built with `defines`.
 * gws: global size per dim (rounded up here to a multiple of lws when lws is given;
 * kernels must bounds-check); lws may be NULL (driver's choice).
 * Example:
 *   CC_TRY(cc_launch(dev, "activation", "", "relu_fwd", 1, (size_t[]){n}, NULL,
 *                    CC_ARGS(CC_ARG_MEM(x), CC_ARG_MEM(y), CC_ARG_INT(n))));  */
clcnn_status cc_launch(clcnn_device *dev, const char *file, const char *defines, const char *kernel,
                       int dims, const size_t *gws, const size_t *lws, const cc_arg *args,
                       int nargs);

/* clcnn_device_warm with a progress callback (the `clcnn cache warm` command): called
 * once per program with how it was obtained ("built", "loaded" from disk, "in memory"
 * or "failed") and the wall time. Programs are every kernel file in force (embedded,
 * or *.cl under $CLCNN_KERNEL_DIR), once per "clcnn-warm: DEFINES" line in the file, or
 * with its default defines when it has none. All are tried; the first failure is
 * returned. */
typedef clcnn_warm_fn cc_warm_fn;
clcnn_status cc_warm(clcnn_device *dev, cc_warm_fn fn, void *ctx);

/* Free every program and kernel of the device (device close). */
void cc_programs_release(clcnn_device *dev);

/* Hash helper (FNV-1a 64) used for cache keys. */
uint64_t cc_hash64(uint64_t h, const void *data, size_t len);
#define CC_HASH_INIT 1469598103934665603ULL

/* ---- tensors (lib/tensor.c, lib/pool.c) ---------------------------------------- */

typedef struct cc_storage {
    cl_mem mem;
    size_t bytes; /* capacity of mem */
    int refs;
} cc_storage;

struct clcnn_tensor {
    clcnn_device *dev;
    clcnn_dtype dtype;
    clcnn_layout layout;
    int ndim;
    size_t shape[CLCNN_MAX_DIMS];
    size_t strides[CLCNN_MAX_DIMS];
    size_t offset; /* elements */
    size_t numel;
    cc_storage *storage;
};

/* Get a buffer of at least `bytes` from the pool (or OpenCL). */
clcnn_status cc_pool_acquire(clcnn_device *dev, size_t bytes, cc_storage **out);
/* Drop one reference; the buffer returns to the pool at zero. */
void cc_pool_release(clcnn_device *dev, cc_storage *s);
void cc_pool_destroy(clcnn_device *dev);

size_t cc_dtype_size(clcnn_dtype t);

/* Shape accessors that treat missing dims as 1 (n, c, h, w of a 4-D view). */
static inline size_t cc_dim(const clcnn_tensor *t, int i) {
    return i < t->ndim ? t->shape[i] : 1;
}

/* Whether a and b (either may be NULL) share storage and their element ranges overlap;
 * and the same except for two identical views (element-wise ops may write in place). */
int cc_tensors_overlap(const clcnn_tensor *a, const clcnn_tensor *b);
int cc_tensors_bad_alias(const clcnn_tensor *a, const clcnn_tensor *b);

/* Check that t is non-NULL, float32 and on dev; the message names `what` and `op`. */
clcnn_status cc_check_tensor(const clcnn_device *dev, const clcnn_tensor *t, clcnn_dtype dtype,
                             const char *op, const char *what);

/* ---- strided N-d copies (lib/ops/copy_nd.c, cl/copy_nd.cl) ---------------------------- */

/* One strided gather over a box of up to 4 dims (dims past ndim count as 1), the kernel
 * of the data-movement ops. For every coordinate o of shape[0..ndim):
 *     y[y_off + sum o_d * y_stride_d] = x[x_off + sum c_d * x_stride_d],
 *     c_d = start_d + o_d * step_d,
 * when 0 <= c_d < lim_d for every d; otherwise `value` (mode CLCNN_COPY_ID_CONSTANT) or
 * c_d mapped into [0, lim_d) (EDGE, REFLECT, WRAP; cl/clcnn_ids.h). Offsets are elements
 * past the tensors' own; strides are elements (0 broadcasts). */
typedef struct cc_copy_nd {
    int ndim;        /* 0..4 */
    size_t shape[4]; /* the box written, each >= 1 */
    size_t y_off, x_off;
    size_t y_stride[4], x_stride[4];
    int64_t start[4], step[4];
    size_t lim[4]; /* input extent per dim, >= 1 */
    int mode;
    float value;
} cc_copy_nd;
/* The plain copy of a dense shape into a dense tensor: strides dense, lim = shape. */
void cc_copy_nd_dense(cc_copy_nd *d, int ndim, const size_t *shape);
/* Enqueue d from x to y (float32 tensors on dev that must not overlap). Every element
 * the box writes must lie inside y and every element it may read inside x:
 * CLCNN_ERR_SHAPE naming the box and both tensors otherwise, before anything is queued. */
clcnn_status cc_copy_nd_run(clcnn_device *dev, const cc_copy_nd *d, const clcnn_tensor *x,
                            clcnn_tensor *y);
/* ---- element-wise families (lib/ops/eltwise_nd.c; cl/unary.cl, cl/binary.cl) ------- */

/* y = op(x) for op a CLCNN_UN_ID_* (cl/clcnn_ids.h) with its alpha and beta; x and y
 * any float32 tensors of equal dims; y may be x (in place). CLCNN_ERR_SHAPE names both
 * shapes, CLCNN_ERR_INVALID_ARG an unknown op. */
clcnn_status cc_unary(clcnn_device *dev, int op, float alpha, float beta, const clcnn_tensor *x,
                      clcnn_tensor *y);
/* y = op(a, b) for op a CLCNN_BIN_ID_*, with NumPy broadcasting: a and b (1-4 dims, right
 * aligned) each broadcast to y's shape exactly (dims equal or 1). y may be a or b when
 * that operand has y's dims; otherwise y must not overlap them. Views at any offset.
 * CLCNN_ERR_SHAPE names the three shapes. */
clcnn_status cc_binary(clcnn_device *dev, int op, const clcnn_tensor *a, const clcnn_tensor *b,
                       clcnn_tensor *y);
/* ---- batch norm fused with its activation (lib/ops/batchnorm.c) ------------------ */

/* clcnn_batchnorm_forward_train writing act(y) for act CLCNN_ACT_ID_NONE, _RELU or _RELU6
 * (cl/clcnn_ids.h; y < 0 ? 0 : y, then y > 6 ? 6 : y, as the ReLU and Clip kernels); with
 * res (x's shape; NULL: none) act(y + res) instead, the sum ew_add would make of y. */
clcnn_status cc_batchnorm_forward_train_act(clcnn_device *dev, const clcnn_tensor *x,
                                            const clcnn_tensor *gamma, const clcnn_tensor *beta,
                                            clcnn_tensor *running_mean, clcnn_tensor *running_var,
                                            float momentum, float eps, int act,
                                            const clcnn_tensor *res, clcnn_tensor *y,
                                            clcnn_tensor *save_mean, clcnn_tensor *save_invstd);
/* clcnn_batchnorm_backward of that: dy is the gradient of act(y); the kernels use dy where
 * the activation passes its gradient (y > 0, and y < 6 for RELU6), 0 elsewhere. They
 * compute y again, bit for bit, from x, gamma, beta (NULL: 0) and the saved statistics, so
 * these must be the forward's (the activated output is not read). */
clcnn_status cc_batchnorm_backward_act(clcnn_device *dev, const clcnn_tensor *x,
                                       const clcnn_tensor *beta, const clcnn_tensor *dy, int act,
                                       const clcnn_tensor *gamma, const clcnn_tensor *save_mean,
                                       const clcnn_tensor *save_invstd, clcnn_tensor *dx,
                                       clcnn_tensor *dgamma, clcnn_tensor *dbeta);
/* y = relu(a + b) in one pass (lib/ops/elementwise.c): bit for bit clcnn_add then the
 * ReLU. a, b, y float32 of equal element counts; y may be a or b. */
clcnn_status cc_add_relu(clcnn_device *dev, const clcnn_tensor *a, const clcnn_tensor *b,
                         clcnn_tensor *y);
/* dx = mask > 0 ? (the data gradient of dy with w) + z : 0 in one launch (lib/ops/conv2d.c):
 * bit for bit clcnn_conv2d_backward_data and then cc_add_relu_grad(mask, dx, z, dx), for
 * the ReLU's gradient of a value whose gradient has two contributions, the convolution's
 * data gradient being the later one (training plans). Where cc_conv2d_data_relu_applies
 * says for d and its data-gradient algorithm a (the implicit GEMM at stride 1), else
 * CLCNN_ERR_UNSUPPORTED. z and mask shaped as dx; dx overlaps none of dy, w, z, mask. */
int cc_conv2d_data_relu_applies(const clcnn_conv2d_desc *d, clcnn_conv_algo a);
clcnn_status cc_conv2d_backward_data_relu(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                          const clcnn_tensor *dy, const clcnn_tensor *w,
                                          const clcnn_tensor *z, const clcnn_tensor *mask,
                                          clcnn_tensor *dx);
/* dx = (y > 0) ? a + b : 0 in one pass: bit for bit clcnn_axpby(1, b, 1, a) then the ReLU's
 * backward with y as its output. y, a, b, dx float32 of equal element counts; dx may be a
 * or b. */
clcnn_status cc_add_relu_grad(clcnn_device *dev, const clcnn_tensor *y, const clcnn_tensor *a,
                              const clcnn_tensor *b, clcnn_tensor *dx);
/* ---- reductions and LRN (lib/ops/reduce.c, cl/reduce.cl) ---------------------- */

/* The ONNX reductions, numbered as cl/clcnn_ids.h's CC_REDUCE_ID_* (lib/ops/reduce.c
 * checks). L1, L2, SUM_SQUARE: of |x|, x^2; LOG_SUM: log of the sum; LOG_SUM_EXP: max m
 * plus log of the sum of exp(x - m). */
typedef enum cc_reduce_op {
    CC_REDUCE_SUM = 0,
    CC_REDUCE_MEAN,
    CC_REDUCE_MAX,
    CC_REDUCE_MIN,
    CC_REDUCE_PROD,
    CC_REDUCE_SUM_SQUARE,
    CC_REDUCE_L1,
    CC_REDUCE_L2,
    CC_REDUCE_LOG_SUM,
    CC_REDUCE_LOG_SUM_EXP,
} cc_reduce_op;
/* y = op of x over the dims whose bit is set in mask (bit d: dim d of x); y holds the
 * kept dims in order (any shape of that many elements: keepdims or not). Accumulated in a
 * fixed order per output element (deterministic). x and y dense, not overlapping; a mask
 * of 0 applies op to each element alone. */
clcnn_status cc_reduce(clcnn_device *dev, cc_reduce_op op, const clcnn_tensor *x, unsigned mask,
                       clcnn_tensor *y);
/* Local response normalisation across dim 1 of x (n, c, ...), as AlexNet's (ONNX LRN):
 * y = x / (bias + alpha / size * sum of x^2 over a window of size channels)^beta; y like
 * x, not overlapping it. */
clcnn_status cc_lrn(clcnn_device *dev, const clcnn_tensor *x, int size, float alpha, float beta,
                    float bias, clcnn_tensor *y);
/* Resize / Upsample (lib/ops/resize.c, cl/resize.cl): ONNX's coordinate transforms and
 * nearest roundings. */
typedef enum cc_resize_coord {
    CC_RESIZE_HALF_PIXEL = 0,
    CC_RESIZE_ASYMMETRIC,
    CC_RESIZE_ALIGN_CORNERS,
    CC_RESIZE_PYTORCH_HALF_PIXEL,
    CC_RESIZE_TF_HALF_PIXEL_FOR_NN,
} cc_resize_coord;
typedef enum cc_resize_round {
    CC_RESIZE_ROUND_PREFER_FLOOR = 0,
    CC_RESIZE_ROUND_PREFER_CEIL,
    CC_RESIZE_FLOOR,
    CC_RESIZE_CEIL,
} cc_resize_round;
/* One axis's table for cc_resize2d: per output coordinate (out of them) the two input
 * coordinates read (clamped to 0..in-1, as floats) and the weight of the second; linear 0
 * is nearest (round), the weight 0. scale: the ONNX scale (out / in when sizes are given). */
void cc_resize_axis(int linear, cc_resize_coord coord, cc_resize_round round, size_t in, size_t out,
                    double scale, float *tab);
/* y (outer, p, q) from x (outer, h, w) through tab (p + q, 3): the rows' table, then the
 * columns'. CLCNN_ERR_SHAPE when the element counts disagree, before anything is queued. */
clcnn_status cc_resize2d(clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *tab,
                         size_t outer, size_t h, size_t w, size_t p, size_t q, clcnn_tensor *y);
/* Forward 2-D pooling (lib/ops/pool2d.c) with pads per side (top, left, bottom, right; each
 * below the kernel) and the output size y has (ceil mode's last windows included, each
 * starting inside the input or its leading padding): one work-item per output. Dilations
 * dh, dw (taps apart) for max pooling only. */
clcnn_status cc_pool2d_forward_pads(clcnn_device *dev, clcnn_pool_mode mode, const clcnn_tensor *x,
                                    clcnn_tensor *y, int kh, int kw, int sh, int sw,
                                    const int pads[4], int dh, int dw);

#endif
