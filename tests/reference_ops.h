/* Plain C references, in double, for the non-convolution primitives (pool2d, linear,
 * softmax and the losses, batch normalisation), forward and backward. They are the
 * documentation of what the kernels must compute: straightforward loops, no tricks, the
 * textbook formulas. Layouts are contiguous NCHW / row-major as in include/clcnn/ops.h.
 *
 * Also: a central finite-difference helper and a way to place a tensor at a non-zero
 * element offset inside a bigger buffer (tests of the kernels' offset arguments). */
#ifndef CLCNN_REFERENCE_OPS_H
#define CLCNN_REFERENCE_OPS_H

#include <stddef.h>

#include "clcnn/clcnn.h"

/* ---- pool2d: x (n, c, h, w) -> y (n, c, p, q) ---------------------------------------- */

typedef struct ro_pool {
    int mode; /* clcnn_pool_mode */
    int kh, kw, sh, sw, ph, pw;
} ro_pool;

/* p, q in floor mode; returns 0 when the padded input is smaller than the kernel. */
int ro_pool_out(const ro_pool *g, size_t h, size_t w, size_t *p, size_t *q);
/* y (n,c,p,q); argmax (n,c,p,q) may be NULL (max mode: first maximum, NaN wins). */
void ro_pool_forward(const ro_pool *g, const double *x, size_t n, size_t c, size_t h, size_t w,
                     double *y, int *argmax);
/* dx (n,c,h,w) from dy (n,c,p,q): max scatters to the argmax (computed here from x, not
 * taken from the device), average spreads dy / divisor over the window. Scatter order,
 * independent of the kernels' gather. */
void ro_pool_backward(const ro_pool *g, const double *x, const double *dy, size_t n, size_t c,
                      size_t h, size_t w, double *dx);

/* ---- linear: y (n,k) = x (n,in) w^T + b ----------------------------------------------- */

void ro_linear_forward(const double *x, const double *w, const double *b, size_t n, size_t in,
                       size_t k, double *y);
/* dx (n,in), dw (k,in), db (k); any may be NULL. */
void ro_linear_backward(const double *x, const double *w, const double *dy, size_t n, size_t in,
                        size_t k, double *dx, double *dw, double *db);

/* ---- softmax over dim 1 of (n, c, inner) ------------------------------------------------ */

void ro_softmax(const double *x, size_t n, size_t c, size_t inner, int log, double *y);
/* mean over n of -log softmax(x_i)[label_i]; labels out of [0,k) give NaN. dlogits may be
 * NULL. Returns the loss. */
double ro_softmax_xent(const double *logits, const int *labels, size_t n, size_t k,
                       double *dlogits);
/* mean((pred - target)^2); dpred = 2 (pred - target) / numel, may be NULL. */
double ro_mse(const double *pred, const double *target, size_t numel, double *dpred);

/* ---- batch normalisation over channels of x (n, c, hw) ---------------------------------- */

/* Training: biased batch variance for y; rmean/rvar (may be NULL) updated with momentum
 * and the unbiased variance; mean/invstd (c) written when non-NULL. gamma/beta may be NULL
 * (1 and 0). */
void ro_bn_train(const double *x, size_t n, size_t c, size_t hw, const double *gamma,
                 const double *beta, double *rmean, double *rvar, double momentum, double eps,
                 double *y, double *mean, double *invstd);
void ro_bn_infer(const double *x, size_t n, size_t c, size_t hw, const double *gamma,
                 const double *beta, const double *rmean, const double *rvar, double eps,
                 double *y);
/* Standard backward of the training-mode forward, with the saved mean and invstd. */
void ro_bn_backward(const double *x, const double *dy, size_t n, size_t c, size_t hw,
                    const double *gamma, const double *mean, const double *invstd, double *dx,
                    double *dgamma, double *dbeta);

/* ---- helpers ------------------------------------------------------------------------- */

/* Central difference of f at p[i]: (f(p+h) - f(p-h)) / 2h, restoring p[i]. */
typedef double (*ro_scalar_fn)(void *ctx);
double ro_central_diff(ro_scalar_fn f, void *ctx, double *p, double h);

double *ro_to_double(const float *x, size_t n); /* malloc'd copy */

/* A tensor of `shape` whose data starts `offset` elements into a fresh buffer (the bytes
 * before it are filled with NaN, so a kernel that ignores the offset fails). Free both the
 * view and *base with clcnn_tensor_free. */
clcnn_tensor *ro_tensor_at_offset(clcnn_device *dev, clcnn_dtype dtype, int ndim,
                                  const size_t *shape, size_t offset, clcnn_tensor **base);
/* A view of `shape` on base's storage starting `offset` elements into base's buffer (same
 * dtype); may overlap other views. Free with clcnn_tensor_free. */
clcnn_tensor *ro_view_at(const clcnn_tensor *base, int ndim, const size_t *shape, size_t offset);

#endif
