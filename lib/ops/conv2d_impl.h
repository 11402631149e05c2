/* Internals shared by the conv2d files: lib/ops/conv2d.c (checks, algorithm choice,
 * dispatch, bias kernels), lib/ops/conv2d_direct.c (cl/conv2d_direct.cl) and
 * lib/ops/conv2d_gemm.c (cl/im2col.cl + CLBlast). Internal to lib/ops.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, r, s) with cpg = c/groups; y (n, k, p, q);
 * kpg = k/groups output channels per group. Every tensor is dense NCHW starting at its
 * element offset. The checks in conv2d.c guarantee that every element count fits an
 * OpenCL int, so kernels index with int. */
#ifndef CLCNN_OPS_CONV2D_IMPL_H
#define CLCNN_OPS_CONV2D_IMPL_H

#include "clcnn_ids.h"
#include "internal.h"
/* cc_conv (the geometry) and the tuning database's lookups: cc_conv_tuned_algo,
 * cc_conv_cfg and cc_conv_cfg_used, CC_CONV_CFG_MAX. */
#include "tune/conv_db.h"

/* A 4-D shape in a message: printf(SHAPE4, DIMS4(shape)) for size_t shape[4]. */
#define SHAPE4 "%zux%zux%zux%zu"
#define DIMS4(a) (a)[0], (a)[1], (a)[2], (a)[3]

/* ceil(a / b) for positive ints. */
static inline int cc_ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

/* The stride-1 data gradient of cv as a forward convolution: dx (n, c, h, w) =
 * conv(dy (n, k, p, q), w'), w' the flipped weights with the channel dims swapped per
 * group, padding dh*(r-1) - ph (likewise for the columns), dilation unchanged; its output
 * is h x w again. Only meaningful for stride 1. */
/* The device's local memory per work-group in bytes (32 KB, OpenCL's minimum, when it
 * reports none). */
static inline size_t cc_local_mem_bytes(const clcnn_device *dev) {
    return dev->info.local_mem_bytes ? (size_t)dev->info.local_mem_bytes : 32768;
}

static inline cc_conv cc_conv_transposed(const cc_conv *cv) {
    cc_conv t = {
        .n = cv->n,
        .c = cv->k,
        .h = cv->p,
        .w = cv->q,
        .k = cv->c,
        .r = cv->r,
        .s = cv->s,
        .p = cv->h,
        .q = cv->w,
        .sh = 1,
        .sw = 1,
        .ph = cv->dh * (cv->r - 1) - cv->ph,
        .pw = cv->dw * (cv->s - 1) - cv->pw,
        .dh = cv->dh,
        .dw = cv->dw,
        .groups = cv->groups,
        .cpg = cv->kpg,
        .kpg = cv->cpg,
    };
    return t;
}

/* The slope clcnn_conv2d_forward uses for CLCNN_ACT_LEAKY_RELU (it has no alpha
 * argument; 0.01 is PyTorch's default; cc_conv_fwd takes any). */
#define CC_CONV_LEAKY_ALPHA 0.01f

/* Byte limit of one im2col/col2im workspace (256 MiB unless $CLCNN_CONV_WORKSPACE_MB
 * says otherwise): the gemm paths process the batch in chunks that fit it. */
size_t cc_conv_workspace_limit(void);

/* Checks the descriptor d, the input shape x (n,c,h,w) and the weight shape w
 * (k,c/groups,r,s), fills the output shape y and (when cv is non-NULL) the geometry;
 * failures name op (lib/ops/conv2d.c). */
clcnn_status cc_conv2d_geometry(const char *op, const clcnn_conv2d_desc *d, const size_t x[4],
                                const size_t w[4], size_t y[4], cc_conv *cv);

/* Checks of lib/ops/conv2d.c's entry points, shared with lib/ops/conv2d_prepared.c; the
 * messages name op and what. A float32, 4-D tensor on dev ending before element 2^31: */
clcnn_status cc_conv2d_check_4d(const clcnn_device *dev, const char *op, const char *what,
                                const clcnn_tensor *t);
/* t has exactly the shape want, which follows from tensors a and b: */
clcnn_status cc_conv2d_check_shape(const char *op, const char *what, const clcnn_tensor *t,
                                   const size_t want[4], const char *a_what, const clcnn_tensor *a,
                                   const char *b_what, const clcnn_tensor *b);
/* A float32 vector of k elements on dev (any dims): */
clcnn_status cc_conv2d_check_vec(const clcnn_device *dev, const char *op, const char *what,
                                 const clcnn_tensor *t, size_t k);
/* The forward algorithm for cv: d->algo when it supports cv, else (AUTO) the tuning
 * file's winner, else the rule (pick_algo); CLCNN_ERR_UNSUPPORTED for a forced algorithm
 * that cannot run cv. */
clcnn_status cc_conv2d_forward_algo(clcnn_device *dev, const char *op, const clcnn_conv2d_desc *d,
                                    const cc_conv *cv, clcnn_conv_algo *out);

/* The built-in rule's algorithm for pass `which` (a clcnn_conv_pass) of cv, as AUTO picks
 * it for a shape the tuning file does not know (for the tuner's comparisons). */
clcnn_conv_algo cc_conv2d_rule_algo(const clcnn_device *dev, const cc_conv *cv, int which);

/* ---- forward: prepared once, run many times -------------------------------------------- */

/* What a forward adds after the convolution: y = act(conv(x, w) + b + z). b (k) and z
 * (n, k, p, q) may be NULL; z may be y itself (same storage and offset: in place), else
 * it does not overlap y. With mask (the implicit GEMM's backward data only, its program
 * built for it: CC_IMPLICIT_RELU_GRAD) the epilogue is instead y = mask > 0 ? conv + z : 0,
 * z added after the whole sum; mask and z shaped as y, neither overlapping it, no b, no
 * activation. */
typedef struct cc_conv_epilogue {
    const clcnn_tensor *b, *z;
    int act; /* a clcnn_activation */
    float alpha;
    const clcnn_tensor *mask;
} cc_conv_epilogue;

/* One algorithm's forward, on a zeroed state of state_bytes. prepare resolves its kernel
 * parameters for cv (the tuner's, $CLCNN_CONV_*_CFG, the tuning file's or its
 * heuristic), builds its kernels and transforms w into buffers it owns, or
 * (copies_weights 0) keeps the pointer w, which must then outlive the state; on failure
 * it leaves nothing to release. run enqueues the forward of x (shaped as cv) into y with
 * no lookups and no allocation besides pool workspace. release (NULL: nothing to do)
 * frees what prepare made. clcnn_conv2d_forward prepares, runs and releases per call;
 * cc_conv_fwd_create (lib/ops/conv2d_prepared.c) keeps the state. */
typedef struct cc_conv2d_fwd_impl {
    size_t state_bytes;
    clcnn_status (*prepare)(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w, int act,
                            void *state);
    clcnn_status (*run)(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                        const cc_conv_epilogue *ep, clcnn_tensor *y);
    void (*release)(void *state);
    int copies_weights; /* 1: prepare keeps no reference to w */
} cc_conv2d_fwd_impl;

/* The forward of algorithm a (any but CLCNN_CONV_AUTO; lib/ops/conv2d.c's table). */
const cc_conv2d_fwd_impl *cc_conv2d_fwd_algo(clcnn_conv_algo a);
/* A new state of fa prepared for cv (*state untouched on failure), and its release
 * (NULL ok). */
clcnn_status cc_conv2d_fwd_new(const cc_conv2d_fwd_impl *fa, clcnn_device *dev, const cc_conv *cv,
                               const clcnn_tensor *w, int act, void **state);
void cc_conv2d_fwd_delete(const cc_conv2d_fwd_impl *fa, void *state);

/* The three kernel arguments of an optional tensor t: its buffer (fallback when t is
 * NULL), element offset and whether it is there. */
#define CC_ARGS_OPT(t, fallback)                                                                   \
    CC_ARG_MEM((t) ? (t)->storage->mem : (fallback)), CC_ARG_INT((t) ? (t)->offset : 0),           \
        CC_ARG_INT((t) != NULL)
/* Every forward shape: direct (cl/conv2d_direct.cl) and gemm (im2col + CLBlast, then
 * cl/conv2d_bias.cl's epilogue; an im2col workspace from the pool per run). */
extern const cc_conv2d_fwd_impl cc_conv2d_direct_fwd;
extern const cc_conv2d_fwd_impl cc_conv2d_gemm_fwd;
/* lib/ops/conv2d_implicit.c and _data.c (cl/conv2d_implicit.cl): forward for every shape (the
 * weights transposed once, when prepared), backward data for strides up to 32
 * (cc_conv2d_implicit_supports_data; a transposed copy of the weights from the pool, and
 * for stride > 1 a phase buffer of about dx's size, in chunks of images within
 * cc_conv_workspace_limit()). */
extern const cc_conv2d_fwd_impl cc_conv2d_implicit_fwd;
/* A cc_conv2d_implicit_fwd state for cv whose transposed weights the caller writes: *wt
 * (the state's, freed with it by cc_conv2d_fwd_delete) is (groups, mp/tm, K, tm), K =
 * cpg*r*s, element ((g*(mp/tm) + m/tm)*K + kk)*tm + m%tm the weight of output channel m <
 * kpg of group g at reduction row kk, zero for m >= kpg (see cl/conv2d_implicit.cl). */
clcnn_status cc_conv2d_implicit_prepare_wt(clcnn_device *dev, const cc_conv *cv, void **state,
                                           clcnn_tensor **wt, int *tm, int *mp);
int cc_conv2d_implicit_supports_data(const cc_conv *cv);
/* The GEMMs backward data runs for cv (one, or one per phase for stride > 1): the fewest
 * output channels (rows of dx per group) and reduction rows of any of them, and the
 * largest weight matrix per group in bytes (for pick_algo in conv2d.c). */
void cc_conv2d_implicit_data_gemms(const cc_conv *cv, int *min_m, int *min_k, size_t *max_wbytes);
clcnn_status cc_conv2d_implicit_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx);
/* dx = mask > 0 ? (backward data of dy) + z : 0 for a stride-1 layer (one GEMM, its
 * epilogue: cc_conv_epilogue's mask; lib/ops/conv2d.c's cc_conv2d_backward_data_relu
 * checks the stride). */
clcnn_status cc_conv2d_implicit_backward_data_relu(clcnn_device *dev, const cc_conv *cv,
                                                   const clcnn_tensor *dy, const clcnn_tensor *w,
                                                   const clcnn_tensor *z, const clcnn_tensor *mask,
                                                   clcnn_tensor *dx);
/* lib/ops/conv2d_winograd.c (cl/conv2d_winograd.cl): 3x3, stride 1, dilation 1 only
 * (cc_conv2d_winograd_supports); the filter transform in a buffer of its own (forward:
 * computed when prepared; backward data: per call, from the pool). */
int cc_conv2d_winograd_supports(const cc_conv *cv);
/* The forward also runs strided layers whose kernel spans three strides, rearranged
 * space-to-depth into a 3x3 stride-1 convolution: cc_conv2d_winograd_s2d gives the stride
 * S when it applies to cv (groups 1, dilation 1, 2S < r, s <= 3S, workspace within
 * cc_conv_workspace_limit()), else 0. */
int cc_conv2d_winograd_s2d(const cc_conv *cv);
extern const cc_conv2d_fwd_impl cc_conv2d_winograd_fwd;
/* Backward data for the same shapes (a forward Winograd convolution of dy). */
clcnn_status cc_conv2d_winograd_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx);
/* lib/ops/conv2d_depthwise.c (cl/conv2d_depthwise.cl): groups == c == k only
 * (cc_conv2d_depthwise_supports). */
int cc_conv2d_depthwise_supports(const cc_conv *cv);
/* Whether the depthwise kernels compile cv's geometry in (3x3, dilation 1, equal strides 1
 * or 2: MobileNet's layers), unrolling their taps. */
int cc_conv2d_depthwise_k3(const cc_conv *cv);
extern const cc_conv2d_fwd_impl cc_conv2d_depthwise_fwd;
/* A copy of t (same shape) on its device, from the pool (lib/ops/conv2d_prepared.c);
 * *out untouched on failure. Prepared forwards keep such copies of what they were given. */
clcnn_status cc_conv2d_copy_of(const clcnn_tensor *t, clcnn_tensor **out);
/* lib/ops/conv2d_dwpw.c: a depthwise layer and the 1x1 convolution after it as one
 * implicit-GEMM launch (cl/conv2d_implicit.cl's DWF), for prepared forwards with pre_dw
 * (lib/internal.h). cc_conv2d_dwpw_input checks d's depthwise layer on d->x and gives its
 * output shape y (the 1x1 layer's input) and geometry; cc_conv2d_dwpw_geometry checks the
 * 1x1 layer pw (1x1, stride 1, no padding, dilation 1; algo AUTO or implicit_gemm) and
 * gives the launch geometry (the depthwise layer's, with pw's k and groups). The state:
 * cc_conv2d_dwpw_new with the 1x1 weights w and d's depthwise weights and bias (copied),
 * run and released through cc_conv2d_dwpw_fwd (cc_conv2d_fwd_delete). */
clcnn_status cc_conv2d_dwpw_input(const clcnn_device *dev, const char *op,
                                  const cc_conv_fwd_desc *d, size_t y[4], cc_conv *dwcv);
clcnn_status cc_conv2d_dwpw_geometry(const char *op, const cc_conv_fwd_desc *d, const cc_conv *dwcv,
                                     const cc_conv *pw, cc_conv *launch);
clcnn_status cc_conv2d_dwpw_new(clcnn_device *dev, const cc_conv *launch, const clcnn_tensor *w,
                                const cc_conv_fwd_desc *d, void **state);
extern const cc_conv2d_fwd_impl cc_conv2d_dwpw_fwd;
/* Backward data and filter of the same shapes (filter: partial sums from the pool). */
clcnn_status cc_conv2d_depthwise_backward_data(clcnn_device *dev, const cc_conv *cv,
                                               const clcnn_tensor *dy, const clcnn_tensor *w,
                                               clcnn_tensor *dx);
clcnn_status cc_conv2d_depthwise_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                                 const clcnn_tensor *x, const clcnn_tensor *dy,
                                                 clcnn_tensor *dw);
/* Backward data: dx = conv^T(dy, w). */
clcnn_status cc_conv2d_direct_backward_data(clcnn_device *dev, const cc_conv *cv,
                                            const clcnn_tensor *dy, const clcnn_tensor *w,
                                            clcnn_tensor *dx);
clcnn_status cc_conv2d_gemm_backward_data(clcnn_device *dev, const cc_conv *cv,
                                          const clcnn_tensor *dy, const clcnn_tensor *w,
                                          clcnn_tensor *dx);
/* Backward filter: dw = sum over images of dy (x) x; no bias gradient. */
clcnn_status cc_conv2d_direct_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *x, const clcnn_tensor *dy,
                                              clcnn_tensor *dw);
clcnn_status cc_conv2d_gemm_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                            const clcnn_tensor *x, const clcnn_tensor *dy,
                                            clcnn_tensor *dw);

/* lib/ops/conv2d_wgrad.c (cl/conv2d_wgrad.cl): backward filter of every shape as an
 * implicit GEMM (the implicit_gemm algorithm of that pass); a padded copy of x, a
 * transposed copy of dy and partial sums from the pool. */
clcnn_status cc_conv2d_wgrad_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                             const clcnn_tensor *x, const clcnn_tensor *dy,
                                             clcnn_tensor *dw);

/* On a CPU device, how many float16 accumulators the register block of a kernel's GEMM
 * loop can hold next to `live` other float16 values (the strip vectors) and one
 * broadcast register, from the native float vector width: an x86 register file has 16
 * vector registers with AVX/AVX2 and SSE (widths 8 and 4; a float16 takes 16/width of
 * them), so AVX2 fits 6 beside one strip vector; more spill to the stack every step
 * (measured: TM 16 and TM 8 x TN 3 run 2-2.5x slower than TM 6 on a 2-core AVX2 EPYC).
 * 0 with a width of 16 or more (AVX-512: 32 registers, one per float16) or an unknown
 * one, where the kernels keep the choices measured on AVX-512; at least 1 otherwise.
 * (lib/ops/conv2d.c) */
int cc_cpu_f16_accumulators(const clcnn_device *dev, int live);

/* ---- kernel parameters: candidates for the tuner (lib/tune/conv_tune.c) ----------------- */

/* Candidate parameter strings of an algorithm for pass on cv, near its heuristic (more
 * with exhaustive), written to out[0..max) without the heuristic itself; returns how
 * many. The tuner times "" (the heuristic) plus these. Each distinct string is one more
 * kernel build (1-6 s on POCL). */
int cc_conv2d_direct_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                    int exhaustive, char out[][CC_CONV_CFG_MAX], int max);
/* Whether a CPU runs the Winograd convolution cv as transform kernels around the
 * implicit GEMM (the GEMM path) rather than the fused kernel (lib/ops/conv2d_winograd.c). */
int cc_conv2d_winograd_cpu_gemm(const cc_conv *cv);
int cc_conv2d_winograd_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max);
int cc_conv2d_depthwise_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                       int exhaustive, char out[][CC_CONV_CFG_MAX], int max);
int cc_conv2d_implicit_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max);
int cc_conv2d_wgrad_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                   int exhaustive, char out[][CC_CONV_CFG_MAX], int max);

/* cl/conv2d_bias.cl helpers (lib/ops/conv2d.c), all built with these defines. */
#define CC_CONV_BIAS_DEFINES "WG=64"
/* Build (or fetch from the caches) a kernel before a pass writes its first output, so
 * that a build failure of a later step leaves the outputs untouched. */
clcnn_status cc_conv2d_prepare(clcnn_device *dev, const char *file, const char *defines,
                               const char *kernel);
/* y = act(y + b[k] + z) in place over (n, k, p, q); b and z may be NULL (z may be y).
 * Does nothing when there is no bias, no residual and no activation. */
clcnn_status cc_conv2d_bias_act(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *b,
                                const clcnn_tensor *z, clcnn_tensor *y, int act, float alpha);
/* out[i] = (accumulate ? out[i] : 0) + sum_{j < parts} part[j*m + i] for i < m, summed in
 * the order j = 0, 1, ...: the fixed-order reduction of per-chunk partial results. */
clcnn_status cc_conv2d_sum_parts(clcnn_device *dev, cl_mem part, size_t part_off, int parts, int m,
                                 cl_mem out, size_t out_off, int accumulate);

#endif
