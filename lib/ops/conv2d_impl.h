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

#include "internal.h"

typedef struct cc_conv {
    int n, c, h, w;
    int k, r, s;
    int p, q;
    int sh, sw; /* stride */
    int ph, pw; /* zero padding */
    int dh, dw; /* dilation */
    int groups, cpg, kpg;
} cc_conv;

/* ceil(a / b) for positive ints. */
static inline int cc_ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

/* The stride-1 data gradient of cv as a forward convolution: dx (n, c, h, w) =
 * conv(dy (n, k, p, q), w'), w' the flipped weights with the channel dims swapped per
 * group, padding dh*(r-1) - ph (likewise for the columns), dilation unchanged; its output
 * is h x w again. Only meaningful for stride 1. */
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

/* The slope used for CLCNN_ACT_LEAKY_RELU when fused into conv2d (the public call has
 * no alpha argument; 0.01 is PyTorch's default). */
#define CC_CONV_LEAKY_ALPHA 0.01f

/* Byte limit of one im2col/col2im workspace (256 MiB unless $CLCNN_CONV_WORKSPACE_MB
 * says otherwise): the gemm paths process the batch in chunks that fit it. */
size_t cc_conv_workspace_limit(void);

/* Checks the descriptor d, the input shape x (n,c,h,w) and the weight shape w
 * (k,c/groups,r,s), fills the output shape y and (when cv is non-NULL) the geometry;
 * failures name op (lib/ops/conv2d.c). */
clcnn_status cc_conv2d_geometry(const char *op, const clcnn_conv2d_desc *d, const size_t x[4],
                                const size_t w[4], size_t y[4], cc_conv *cv);

/* Forward: y = conv(x, w) (+ b) then the activation; b may be NULL. */
clcnn_status cc_conv2d_direct_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                      const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y,
                                      int act);
clcnn_status cc_conv2d_gemm_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                    const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y,
                                    int act);
/* lib/ops/conv2d_implicit.c (cl/conv2d_implicit.cl): forward for every shape, backward
 * data for strides up to 32 (cc_conv2d_implicit_supports_data); a transposed copy of the
 * weights from the pool, and for stride > 1 a phase buffer of about dx's size (in chunks
 * of images within cc_conv_workspace_limit()). */
clcnn_status cc_conv2d_implicit_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                        const clcnn_tensor *w, const clcnn_tensor *b,
                                        clcnn_tensor *y, int act);
int cc_conv2d_implicit_supports_data(const cc_conv *cv);
/* The GEMMs backward data runs for cv (one, or one per phase for stride > 1): the fewest
 * output channels (rows of dx per group) and reduction rows of any of them, and the
 * largest weight matrix per group in bytes (for pick_algo in conv2d.c). */
void cc_conv2d_implicit_data_gemms(const cc_conv *cv, int *min_m, int *min_k, size_t *max_wbytes);
clcnn_status cc_conv2d_implicit_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx);
/* lib/ops/conv2d_winograd.c (cl/conv2d_winograd.cl): 3x3, stride 1, dilation 1 only
 * (cc_conv2d_winograd_supports); a filter-transform buffer from the pool. */
int cc_conv2d_winograd_supports(const cc_conv *cv);
clcnn_status cc_conv2d_winograd_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                        const clcnn_tensor *w, const clcnn_tensor *b,
                                        clcnn_tensor *y, int act);
/* Backward data for the same shapes (a forward Winograd convolution of dy). */
clcnn_status cc_conv2d_winograd_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx);
/* lib/ops/conv2d_depthwise.c (cl/conv2d_depthwise.cl): groups == c == k only
 * (cc_conv2d_depthwise_supports). */
int cc_conv2d_depthwise_supports(const cc_conv *cv);
clcnn_status cc_conv2d_depthwise_forward(clcnn_device *dev, const cc_conv *cv,
                                         const clcnn_tensor *x, const clcnn_tensor *w,
                                         const clcnn_tensor *b, clcnn_tensor *y, int act);
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

/* ---- kernel parameters (lib/tune/conv_tune.c) ---------------------------------------- */

/* Parameter strings are one line of at most CC_CONV_CFG_MAX - 1 printable characters in
 * the syntax of the algorithm's $CLCNN_CONV_*_CFG variable. */
#define CC_CONV_CFG_MAX 64
/* The kernel parameters algorithm `algo` should use for pass (a clcnn_conv_pass) of cv,
 * copied into buf: the string the tuner is timing on dev, else $env_name when set, else
 * the one stored in dev's tuning file for this pass and geometry when its winner is algo
 * (and $CLCNN_TUNE is not off); NULL: the algorithm's heuristic. The caller validates the
 * string and uses its heuristic when it is invalid; then, and after using the string or
 * the heuristic, it reports what it used with cc_conv_cfg_used. Never fails. */
const char *cc_conv_cfg(const clcnn_device *dev, const char *env_name, int pass, const cc_conv *cv,
                        clcnn_conv_algo algo, char buf[CC_CONV_CFG_MAX]);
/* Record the parameters the last convolution on this thread used: cfg when the algorithm
 * accepted it, NULL or "" for its heuristic (read by cc_conv_cfg_last, tune_internal.h). */
void cc_conv_cfg_used(clcnn_conv_algo algo, const char *cfg);

/* Candidate parameter strings of an algorithm for pass on cv, near its heuristic (more
 * with exhaustive), written to out[0..max) without the heuristic itself; returns how
 * many. The tuner times "" (the heuristic) plus these. Each distinct string is one more
 * kernel build (1-6 s on POCL). */
int cc_conv2d_direct_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                    int exhaustive, char out[][CC_CONV_CFG_MAX], int max);
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
/* y = act(y + b[k]) in place over (n, k, p, q); b may be NULL (activation only). Does
 * nothing when there is neither a bias nor an activation. */
clcnn_status cc_conv2d_bias_act(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *b,
                                clcnn_tensor *y, int act);
/* out[i] = (accumulate ? out[i] : 0) + sum_{j < parts} part[j*m + i] for i < m, summed in
 * the order j = 0, 1, ...: the fixed-order reduction of per-chunk partial results. */
clcnn_status cc_conv2d_sum_parts(clcnn_device *dev, cl_mem part, size_t part_off, int parts, int m,
                                 cl_mem out, size_t out_off, int accumulate);

#endif
