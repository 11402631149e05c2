/* The primitives, forward and backward, cuDNN-style: descriptor in, tensors in and
 * out, status back. Every entry point validates shapes first and fails with
 * CLCNN_ERR_SHAPE (message printing the offending shapes) before writing anything.
 * All work is enqueued on the device's in-order queue; nothing blocks.
 *
 * Shape key (as in cuDNN / DeepBench): input x is (n, c, h, w); weights (k, c/groups,
 * r, s); output y is (n, k, p, q). Outputs are overwritten, never accumulated into. */
#ifndef CLCNN_OPS_H
#define CLCNN_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clcnn_activation {
    CLCNN_ACT_NONE = 0,
    CLCNN_ACT_RELU = 1,
    CLCNN_ACT_LEAKY_RELU = 2, /* y = x > 0 ? x : alpha * x */
} clcnn_activation;

/* ---- conv2d ---------------------------------------------------------------- */

typedef enum clcnn_conv_algo {
    CLCNN_CONV_AUTO = 0,   /* explicit choice > tuning database > heuristic */
    CLCNN_CONV_DIRECT = 1, /* tiled direct kernel */
    CLCNN_CONV_GEMM = 2,   /* im2col + CLBlast GEMM (1x1 stride 1: no im2col) */
    /* im2col fused into a tiled GEMM, no workspace: forward for any shape, backward
     * data for stride 1 */
    CLCNN_CONV_IMPLICIT_GEMM = 3,
    /* 3x3 stride 1 (F(4x4,3x3) or F(2x2,3x3)): forward and backward data; forward also
     * groups 1, dilation 1 and stride S with 2S < r, s <= 3S (11x11 stride 4), as the 3x3
     * stride-1 convolution of the input rearranged space-to-depth */
    CLCNN_CONV_WINOGRAD = 4,
    CLCNN_CONV_DEPTHWISE = 5, /* groups == c == k only; forward */
    CLCNN_CONV_ALGO_COUNT
} clcnn_conv_algo;

typedef struct clcnn_conv2d_desc {
    int stride_h, stride_w;     /* >= 1 */
    int pad_h, pad_w;           /* >= 0, zero padding on both sides */
    int dilation_h, dilation_w; /* >= 1 */
    int groups;                 /* >= 1, divides c and k */
    clcnn_conv_algo algo;       /* CLCNN_CONV_AUTO unless forcing one */
} clcnn_conv2d_desc;

/* stride 1, no padding, dilation 1, 1 group, automatic algorithm. */
CLCNN_API clcnn_conv2d_desc clcnn_conv2d_desc_default(void);
CLCNN_API const char *clcnn_conv_algo_name(clcnn_conv_algo a);
/* Parses "direct", "gemm", ...; returns -1 when unknown. */
CLCNN_API int clcnn_conv_algo_parse(const char *name);

/* y shape from x shape (n,c,h,w) and w shape (k,c/groups,r,s). */
CLCNN_API clcnn_status clcnn_conv2d_output_shape(const clcnn_conv2d_desc *d, const size_t x[4],
                                                 const size_t w[4], size_t y[4]);
/* y = act(conv(x, w) + b). b (k) may be NULL. An algorithm that cannot handle the
 * shape (e.g. winograd on 5x5) is CLCNN_ERR_UNSUPPORTED when forced. act
 * CLCNN_ACT_LEAKY_RELU uses alpha = 0.01 here (no alpha argument). */
CLCNN_API clcnn_status clcnn_conv2d_forward(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                            const clcnn_tensor *x, const clcnn_tensor *w,
                                            const clcnn_tensor *b, clcnn_tensor *y,
                                            clcnn_activation act);
/* dx = d(loss)/dx from dy (n,k,p,q) and w. */
CLCNN_API clcnn_status clcnn_conv2d_backward_data(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                                  const clcnn_tensor *dy, const clcnn_tensor *w,
                                                  clcnn_tensor *dx);
/* dw (k,c/groups,r,s) and db (k, may be NULL) from x and dy. */
CLCNN_API clcnn_status clcnn_conv2d_backward_filter(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                                    const clcnn_tensor *x, const clcnn_tensor *dy,
                                                    clcnn_tensor *dw, clcnn_tensor *db);

/* ---- pool2d ---------------------------------------------------------------- */

typedef enum clcnn_pool_mode {
    CLCNN_POOL_MAX = 0,
    CLCNN_POOL_AVG = 1,         /* padding counted in the divisor */
    CLCNN_POOL_AVG_EXCLUDE = 2, /* padding not counted */
} clcnn_pool_mode;

typedef struct clcnn_pool2d_desc {
    clcnn_pool_mode mode;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w; /* must be < kernel size */
    int global;       /* 1: kernel = whole input plane, output 1x1 (other fields ignored) */
} clcnn_pool2d_desc;

CLCNN_API clcnn_status clcnn_pool2d_output_shape(const clcnn_pool2d_desc *d, const size_t x[4],
                                                 size_t y[4]);
/* argmax: an int32 tensor shaped like y holding the flat h*w index of each maximum
 * inside its input plane; required for CLCNN_POOL_MAX when a backward pass follows,
 * may be NULL otherwise (and is ignored for average pooling). */
CLCNN_API clcnn_status clcnn_pool2d_forward(clcnn_device *dev, const clcnn_pool2d_desc *d,
                                            const clcnn_tensor *x, clcnn_tensor *y,
                                            clcnn_tensor *argmax);
CLCNN_API clcnn_status clcnn_pool2d_backward(clcnn_device *dev, const clcnn_pool2d_desc *d,
                                             const clcnn_tensor *dy, const clcnn_tensor *argmax,
                                             clcnn_tensor *dx);

/* ---- activations and element-wise ------------------------------------------ */

/* y = act(x); y may be x (in place). alpha is the leaky-ReLU slope. */
CLCNN_API clcnn_status clcnn_activation_forward(clcnn_device *dev, clcnn_activation act,
                                                float alpha, const clcnn_tensor *x,
                                                clcnn_tensor *y);
/* dx = dy * act'(x); x is the forward input; dx may be dy. */
CLCNN_API clcnn_status clcnn_activation_backward(clcnn_device *dev, clcnn_activation act,
                                                 float alpha, const clcnn_tensor *x,
                                                 const clcnn_tensor *dy, clcnn_tensor *dx);
/* y = a + b (same numel); y may alias a or b. */
CLCNN_API clcnn_status clcnn_add(clcnn_device *dev, const clcnn_tensor *a, const clcnn_tensor *b,
                                 clcnn_tensor *y);
/* y = alpha * x + beta * y */
CLCNN_API clcnn_status clcnn_axpby(clcnn_device *dev, float alpha, const clcnn_tensor *x,
                                   float beta, clcnn_tensor *y);

/* ---- linear ---------------------------------------------------------------- */

/* y (n, out) = x (n, in) * w^T + b; w is (out, in) as in PyTorch; b (out) may be NULL.
 * x may have any shape whose first dim is n (it is read as n x numel/n). */
CLCNN_API clcnn_status clcnn_linear_forward(clcnn_device *dev, const clcnn_tensor *x,
                                            const clcnn_tensor *w, const clcnn_tensor *b,
                                            clcnn_tensor *y);
/* dx (like x, may be NULL), dw (out,in), db (out, may be NULL). */
CLCNN_API clcnn_status clcnn_linear_backward(clcnn_device *dev, const clcnn_tensor *x,
                                             const clcnn_tensor *w, const clcnn_tensor *dy,
                                             clcnn_tensor *dx, clcnn_tensor *dw, clcnn_tensor *db);

/* c[i] = alpha op(a[i]) op(b[i]) + beta c[i] for i < batch (CLBlast, row-major): op(a) is
 * m x k (a holds k x m when ta), op(b) k x n (b holds n x k when tb), c m x n; lda, ldb,
 * ldc are leading dimensions and stride_a/b/c the element distance between consecutive
 * matrices, counted from each tensor's offset. A matrix reaching past its tensor is
 * CLCNN_ERR_SHAPE. */
CLCNN_API clcnn_status clcnn_gemm_batched(clcnn_device *dev, int ta, int tb, size_t m, size_t n,
                                          size_t k, float alpha, const clcnn_tensor *a, size_t lda,
                                          size_t stride_a, const clcnn_tensor *b, size_t ldb,
                                          size_t stride_b, float beta, clcnn_tensor *c, size_t ldc,
                                          size_t stride_c, size_t batch);
/* 1 when clcnn_linear_* runs a batch of n rows on the device's small-batch kernels rather
 * than CLBlast (for labelling measurements). */
CLCNN_API int clcnn_linear_small_batch(const clcnn_device *dev, size_t n);

/* ---- softmax and losses ---------------------------------------------------- */

/* Softmax (log_softmax when log != 0) over dim 1 of an (n, c) or (n, c, h, w) tensor.
 * Numerically stable: subtracts the per-position maximum. */
CLCNN_API clcnn_status clcnn_softmax_forward(clcnn_device *dev, const clcnn_tensor *x,
                                             clcnn_tensor *y, int log);
/* Fused softmax + cross-entropy, mean over the batch. logits (n, k) float, labels (n)
 * int32 in [0, k). loss: a 1-element tensor. dlogits (n, k, may be NULL) receives
 * d(mean loss)/d(logits) = (softmax - onehot) / n. A label out of range is reported
 * as a loss of NaN, and that sample's dlogits row is NaN (the data layer validates labels
 * before they reach here). */
CLCNN_API clcnn_status clcnn_softmax_cross_entropy(clcnn_device *dev, const clcnn_tensor *logits,
                                                   const clcnn_tensor *labels, clcnn_tensor *loss,
                                                   clcnn_tensor *dlogits);
/* Mean squared error, mean over all elements; dpred may be NULL. */
CLCNN_API clcnn_status clcnn_mse_loss(clcnn_device *dev, const clcnn_tensor *pred,
                                      const clcnn_tensor *target, clcnn_tensor *loss,
                                      clcnn_tensor *dpred);

/* ---- batch normalisation (per channel of NCHW, or per feature of (n, c)) ------- */

/* Training mode: normalise with the batch statistics, update running_mean/var with
 * `momentum` (PyTorch convention: running = (1-m)*running + m*batch, unbiased var),
 * and save the batch mean and 1/sqrt(var+eps) (each (c)) for backward. */
CLCNN_API clcnn_status clcnn_batchnorm_forward_train(
    clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *gamma, const clcnn_tensor *beta,
    clcnn_tensor *running_mean, clcnn_tensor *running_var, float momentum, float eps,
    clcnn_tensor *y, clcnn_tensor *save_mean, clcnn_tensor *save_invstd);
CLCNN_API clcnn_status clcnn_batchnorm_forward_infer(
    clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *gamma, const clcnn_tensor *beta,
    const clcnn_tensor *running_mean, const clcnn_tensor *running_var, float eps, clcnn_tensor *y);
CLCNN_API clcnn_status clcnn_batchnorm_backward(clcnn_device *dev, const clcnn_tensor *x,
                                                const clcnn_tensor *dy, const clcnn_tensor *gamma,
                                                const clcnn_tensor *save_mean,
                                                const clcnn_tensor *save_invstd, clcnn_tensor *dx,
                                                clcnn_tensor *dgamma, clcnn_tensor *dbeta);

/* ---- dropout ----------------------------------------------------------------- */

/* Inverted dropout: y = x * mask / (1-p), mask drawn on the device from a counter-based
 * RNG keyed by (seed, step), so the same (seed, step) gives the same mask. mask is a
 * float tensor like x (0 or 1/(1-p)). */
CLCNN_API clcnn_status clcnn_dropout_forward(clcnn_device *dev, float p, unsigned long long seed,
                                             unsigned long long step, const clcnn_tensor *x,
                                             clcnn_tensor *y, clcnn_tensor *mask);
CLCNN_API clcnn_status clcnn_dropout_backward(clcnn_device *dev, const clcnn_tensor *mask,
                                              const clcnn_tensor *dy, clcnn_tensor *dx);

/* ---- optimizer updates (on the device, in place) ------------------------------ */

/* v = momentum * v + (g + wd * p); p -= lr * v   (PyTorch SGD). v may be NULL if momentum 0. */
CLCNN_API clcnn_status clcnn_sgd_update(clcnn_device *dev, clcnn_tensor *param,
                                        const clcnn_tensor *grad, clcnn_tensor *velocity, float lr,
                                        float momentum, float weight_decay);
/* Adam (PyTorch semantics, L2 weight decay added to g), step t >= 1 for bias correction. */
CLCNN_API clcnn_status clcnn_adam_update(clcnn_device *dev, clcnn_tensor *param,
                                         const clcnn_tensor *grad, clcnn_tensor *m, clcnn_tensor *v,
                                         float lr, float beta1, float beta2, float eps,
                                         float weight_decay, int t);

#ifdef __cplusplus
}
#endif
#endif
