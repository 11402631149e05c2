/* Fully connected layer, forward and backward.
 *
 * Shapes: x is read as (n, in) with in = numel(x) / n, whatever its dims (a conv output
 * (n, c, h, w) is flattened in NCHW order, as torch.flatten(x, 1)); w is (out, in) as in
 * PyTorch; b is (out); y is (n, out).
 *   forward:  y  = x w^T + b
 *   backward: dx = dy w        (n, in), overwritten
 *             dw = dy^T x      (out, in), overwritten (not accumulated)
 *             db = sum_i dy[i] (out), one work-item per feature summing the rows in order.
 *
 * The three matrix products take one of two paths, chosen by the batch n:
 *  - n <= SMALL_MAX_CPU (64) on CPUs, SMALL_MAX_OTHER (16) elsewhere: the kernels of
 *    cl/linear_small.cl. At such n the products are bound by the traffic of w / dw, which
 *    they read or write once (the bias is added in the forward kernel);
 *  - larger n: CLBlast (row-major SGEMM through cc_sgemm), then linear_bias_add of
 *    cl/linear.cl for the bias.
 * Both paths are deterministic (fixed summation orders, no atomics). $CLCNN_LINEAR_SMALL_MAX
 * overrides the threshold (read on every call: 0 = always CLBlast; tests force each path
 * with it). Tensors whose offsets or sizes do not fit the kernels' int arguments go to
 * CLBlast too.
 *
 * Measured on the POCL CPU device (2 cores, loaded; medians, ms, CLBlast -> small kernels):
 * 4096 x 4096 at n = 64: forward 149 -> 17, dx 115 -> 24, dw 63 -> 23; AlexNet fc6
 * (9216 -> 4096) at n = 8: forward 245 -> 18, dx 238 -> 20, dw 132 -> 16. At n = 128 the
 * two were within the noise of each other (CLBlast untuned here); the GPU threshold is a
 * cautious guess, not measured (the forward kernel does not coalesce its w reads). A whole
 * AlexNet training step at batch 8 went from 1.7-3.9 s to 0.9-2.0 s (fc products from 49 %
 * of the device time to 9 %, CLCNN_PROFILE=1). */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>

#define SMALL_MAX_CPU 64
#define SMALL_MAX_OTHER 16

static int fits_int(const clcnn_tensor *t) {
    return t->offset <= (size_t)INT_MAX && t->numel <= (size_t)INT_MAX - t->offset;
}

/* A fixed work-group size for the element-wise kernels: POCL compiles a kernel once per
 * local size, so leaving the choice to the driver (which derives it from the global size)
 * means a fresh compile for many new shapes. 64 suits GPUs and CPUs alike. */
static const size_t *lws_1d(const clcnn_device *dev, size_t *buf) {
    size_t max = dev->info.max_work_group_size;
    *buf = max && max < 64 ? max : 64;
    return buf;
}

/* Whether a batch of n rows goes to the small-batch kernels of cl/linear_small.cl rather
 * than CLBlast (see the top of the file). */
int cc_linear_use_small(const clcnn_device *dev, size_t n) {
    const char *e = getenv("CLCNN_LINEAR_SMALL_MAX");
    if (e && *e) return n <= strtoull(e, NULL, 10);
    return n <= (dev->info.type == CLCNN_DEVICE_CPU ? SMALL_MAX_CPU : SMALL_MAX_OTHER);
}

int clcnn_linear_small_batch(const clcnn_device *dev, size_t n) {
    return dev ? cc_linear_use_small(dev, n) : 0;
}

/* x, w (and y-like `out` with `out_name`): n, in, k from the shapes, or a shape error. */
static clcnn_status check_xw(clcnn_device *dev, const char *op, const clcnn_tensor *x,
                             const clcnn_tensor *w, size_t *n, size_t *in, size_t *k) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, op, "x"));
    CC_TRY(cc_check_tensor(dev, w, CLCNN_F32, op, "w"));
    char a[64], b[64];
    *n = x->shape[0];
    *in = x->numel / *n;
    CC_RETURN_IF(w->ndim != 2 || w->shape[1] != *in, CLCNN_ERR_SHAPE,
                 "%s: w is %s but x %s has %zu input features per sample (w must be out x %zu)", op,
                 clcnn_tensor_shape_str(w, a, sizeof a), clcnn_tensor_shape_str(x, b, sizeof b),
                 *in, *in);
    *k = w->shape[0];
    return CLCNN_OK;
}

/* t must hold (n, k): first dim n and n*k elements. */
static clcnn_status check_nk(clcnn_device *dev, const char *op, const clcnn_tensor *t,
                             const char *name, size_t n, size_t k, const clcnn_tensor *x,
                             const clcnn_tensor *w) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, name));
    char a[64], b[64], c[64];
    CC_RETURN_IF(t->shape[0] != n || t->numel != n * k, CLCNN_ERR_SHAPE,
                 "%s: %s is %s but x %s and w %s give %zux%zu", op, name,
                 clcnn_tensor_shape_str(t, a, sizeof a), clcnn_tensor_shape_str(x, b, sizeof b),
                 clcnn_tensor_shape_str(w, c, sizeof c), n, k);
    return CLCNN_OK;
}

static clcnn_status check_bias(clcnn_device *dev, const char *op, const clcnn_tensor *b,
                               const char *name, size_t k, const clcnn_tensor *w) {
    CC_TRY(cc_check_tensor(dev, b, CLCNN_F32, op, name));
    char s1[64], s2[64];
    CC_RETURN_IF(b->numel != k, CLCNN_ERR_SHAPE, "%s: %s is %s but w %s has %zu output features",
                 op, name, clcnn_tensor_shape_str(b, s1, sizeof s1),
                 clcnn_tensor_shape_str(w, s2, sizeof s2), k);
    return CLCNN_OK;
}

clcnn_status clcnn_linear_forward(clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *w,
                                  const clcnn_tensor *b, clcnn_tensor *y) {
    size_t lws;
    static const char op[] = "clcnn_linear_forward";
    size_t n = 0, in = 0, k = 0;
    CC_TRY(check_xw(dev, op, x, w, &n, &in, &k));
    if (b) CC_TRY(check_bias(dev, op, b, "b", k, w));
    CC_TRY(check_nk(dev, op, y, "y", n, k, x, w));
    CC_RETURN_IF(cc_tensors_overlap(y, x) || cc_tensors_overlap(y, w) || cc_tensors_overlap(y, b),
                 CLCNN_ERR_INVALID_ARG, "%s: y must not share memory with x, w or b", op);
    CC_RETURN_IF(!fits_int(y) || (b && !fits_int(b)), CLCNN_ERR_UNSUPPORTED,
                 "%s: outputs beyond 2^31-1 elements are not supported", op);

    if (cc_linear_use_small(dev, n) && fits_int(x) && fits_int(w)) {
        size_t gws = (k + 1) / 2; /* JF = 2 features per work-item */
        return cc_launch(dev, "linear_small", "", "linear_small_fwd", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                                 CC_ARG_MEM(b ? b->storage->mem : w->storage->mem),
                                 CC_ARG_INT(b ? b->offset : 0), CC_ARG_INT(b != NULL),
                                 CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(n),
                                 CC_ARG_INT(in), CC_ARG_INT(k)));
    }
    /* y (n,k) = x (n,in) * w^T, w stored (k,in) */
    CC_TRY(cc_sgemm(dev, 0, 1, n, k, in, 1.0f, x->storage->mem, x->offset, in, w->storage->mem,
                    w->offset, in, 0.0f, y->storage->mem, y->offset, k));
    if (!b) return CLCNN_OK;
    size_t gws = n * k;
    return cc_launch(dev, "linear", "", "linear_bias_add", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                             CC_ARG_MEM(b->storage->mem), CC_ARG_INT(b->offset), CC_ARG_INT(n),
                             CC_ARG_INT(k)));
}

clcnn_status clcnn_linear_backward(clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *w,
                                   const clcnn_tensor *dy, clcnn_tensor *dx, clcnn_tensor *dw,
                                   clcnn_tensor *db) {
    size_t lws;
    static const char op[] = "clcnn_linear_backward";
    size_t n = 0, in = 0, k = 0;
    CC_TRY(check_xw(dev, op, x, w, &n, &in, &k));
    CC_TRY(check_nk(dev, op, dy, "dy", n, k, x, w));
    char s1[64], s2[64];
    if (dx) {
        CC_TRY(cc_check_tensor(dev, dx, CLCNN_F32, op, "dx"));
        CC_RETURN_IF(dx->shape[0] != n || dx->numel != x->numel, CLCNN_ERR_SHAPE,
                     "%s: dx is %s but x is %s", op, clcnn_tensor_shape_str(dx, s1, sizeof s1),
                     clcnn_tensor_shape_str(x, s2, sizeof s2));
    }
    if (dw) {
        CC_TRY(cc_check_tensor(dev, dw, CLCNN_F32, op, "dw"));
        CC_RETURN_IF(dw->ndim != 2 || dw->shape[0] != k || dw->shape[1] != in, CLCNN_ERR_SHAPE,
                     "%s: dw is %s but w is %s", op, clcnn_tensor_shape_str(dw, s1, sizeof s1),
                     clcnn_tensor_shape_str(w, s2, sizeof s2));
    }
    if (db) CC_TRY(check_bias(dev, op, db, "db", k, w));
    CC_RETURN_IF(cc_tensors_overlap(dx, dy) || cc_tensors_overlap(dx, w) ||
                     cc_tensors_overlap(dw, dy) || cc_tensors_overlap(dw, x) ||
                     cc_tensors_overlap(db, dy) || cc_tensors_overlap(dx, dw) ||
                     cc_tensors_overlap(dx, db) || cc_tensors_overlap(dw, db),
                 CLCNN_ERR_INVALID_ARG,
                 "%s: dx, dw and db must not share memory with each other or with the inputs", op);
    CC_RETURN_IF(!fits_int(dy) || (db && !fits_int(db)), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported", op);

    int small = cc_linear_use_small(dev, n) && fits_int(x) && fits_int(w) &&
                (!dx || fits_int(dx)) && (!dw || fits_int(dw));
    if (small && dx) {
        size_t gws = (in + 15) / 16;
        CC_TRY(cc_launch(dev, "linear_small", "", "linear_small_dgrad", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                                 CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                 CC_ARG_INT(n), CC_ARG_INT(in), CC_ARG_INT(k))));
    }
    if (small && dw) {
        size_t gws[2] = {(in + 15) / 16, (k + 3) / 4}, lws2[2] = {0, 1};
        lws_1d(dev, &lws2[0]);
        CC_TRY(cc_launch(dev, "linear_small", "", "linear_small_wgrad", 2, gws, lws2,
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(dw->storage->mem), CC_ARG_INT(dw->offset),
                                 CC_ARG_INT(n), CC_ARG_INT(in), CC_ARG_INT(k))));
    }
    /* dx (n,in) = dy (n,k) * w (k,in) */
    if (dx && !small)
        CC_TRY(cc_sgemm(dev, 0, 0, n, in, k, 1.0f, dy->storage->mem, dy->offset, k, w->storage->mem,
                        w->offset, in, 0.0f, dx->storage->mem, dx->offset, in));
    /* dw (k,in) = dy^T (k,n) * x (n,in) */
    if (dw && !small)
        CC_TRY(cc_sgemm(dev, 1, 0, k, in, n, 1.0f, dy->storage->mem, dy->offset, k, x->storage->mem,
                        x->offset, in, 0.0f, dw->storage->mem, dw->offset, in));
    if (!db) return CLCNN_OK;
    size_t gws = k;
    return cc_launch(dev, "linear", "", "linear_bias_grad", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                             CC_ARG_MEM(db->storage->mem), CC_ARG_INT(db->offset), CC_ARG_INT(n),
                             CC_ARG_INT(k)));
}
