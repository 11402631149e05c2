/* 2-D pooling (max, average with or without padding in the divisor, global), forward and
 * backward. Kernels: cl/pool2d.cl.
 *
 * Shape key: x is (n, c, h, w), y is (n, c, p, q); window kh x kw, stride sh x sw, zero
 * padding ph x pw on both sides (never part of a maximum). Output size in floor mode, as
 * PyTorch with ceil_mode=False: p = (h + 2 ph - kh) / sh + 1. Padding below the kernel size
 * guarantees every window holds at least one input element.
 *
 * Backward: each dx element sums the dy of the outputs whose window covers it (for max,
 * only those whose arg-max is this element) in output order: gathered per dx element, or
 * on CPU devices with many planes scattered by one work-item per plane in output order
 * (the same sums, bit for bit). Deterministic, no atomics, and no need to zero dx first.
 *
 * General windows forward: one work-item per output row, 8 interior windows per float8
 * (5-10x faster than one work-item per output on POCL: no per-output index division, no
 * data-dependent loop bounds or branches inside the vector lanes); bit-identical.
 *
 * Max pooling with non-overlapping windows (stride == kernel, no padding) takes the tiled
 * kernels: each input element lies in at most one window, so one work-item per band of
 * kernel rows writes its windows (forward) or every dx element of the band (backward)
 * directly. */
#include "internal.h"

#include <limits.h>

typedef struct pool_geom {
    int kh, kw, sh, sw, ph, pw;
} pool_geom;

static const char *mode_name(clcnn_pool_mode m) {
    switch (m) {
    case CLCNN_POOL_MAX:
        return "max";
    case CLCNN_POOL_AVG:
        return "avg";
    case CLCNN_POOL_AVG_EXCLUDE:
        return "avg_exclude";
    }
    return "unknown";
}

/* The effective window of d for an input plane h x w (global pooling: the whole plane). */
static clcnn_status pool_geometry(const char *op, const clcnn_pool2d_desc *d, size_t h, size_t w,
                                  pool_geom *g) {
    CC_RETURN_IF(!d, CLCNN_ERR_INVALID_ARG, "%s: descriptor is NULL", op);
    CC_RETURN_IF(d->mode != CLCNN_POOL_MAX && d->mode != CLCNN_POOL_AVG &&
                     d->mode != CLCNN_POOL_AVG_EXCLUDE,
                 CLCNN_ERR_INVALID_ARG, "%s: unknown pooling mode %d", op, (int)d->mode);
    if (d->global) {
        CC_RETURN_IF(h > INT_MAX || w > INT_MAX, CLCNN_ERR_SHAPE,
                     "%s: input plane %zux%zu is too large", op, h, w);
        *g = (pool_geom){(int)h, (int)w, 1, 1, 0, 0};
        return CLCNN_OK;
    }
    CC_RETURN_IF(d->kernel_h < 1 || d->kernel_w < 1, CLCNN_ERR_INVALID_ARG,
                 "%s: kernel %dx%d must be at least 1x1", op, d->kernel_h, d->kernel_w);
    CC_RETURN_IF(d->stride_h < 1 || d->stride_w < 1, CLCNN_ERR_INVALID_ARG,
                 "%s: stride %dx%d must be at least 1x1", op, d->stride_h, d->stride_w);
    CC_RETURN_IF(d->pad_h < 0 || d->pad_w < 0, CLCNN_ERR_INVALID_ARG,
                 "%s: padding %dx%d must not be negative", op, d->pad_h, d->pad_w);
    CC_RETURN_IF(d->pad_h >= d->kernel_h || d->pad_w >= d->kernel_w, CLCNN_ERR_INVALID_ARG,
                 "%s: padding %dx%d must be smaller than the kernel %dx%d", op, d->pad_h, d->pad_w,
                 d->kernel_h, d->kernel_w);
    *g = (pool_geom){d->kernel_h, d->kernel_w, d->stride_h, d->stride_w, d->pad_h, d->pad_w};
    return CLCNN_OK;
}

static clcnn_status output_shape(const char *op, const clcnn_pool2d_desc *d, const size_t x[4],
                                 size_t y[4], pool_geom *g) {
    CC_RETURN_IF(!x || !y, CLCNN_ERR_INVALID_ARG, "%s: shape pointer is NULL", op);
    CC_RETURN_IF(x[0] == 0 || x[1] == 0 || x[2] == 0 || x[3] == 0, CLCNN_ERR_SHAPE,
                 "%s: input %zux%zux%zux%zu has a zero dim", op, x[0], x[1], x[2], x[3]);
    CC_TRY(pool_geometry(op, d, x[2], x[3], g));
    size_t hp = x[2] + 2 * (size_t)g->ph, wp = x[3] + 2 * (size_t)g->pw;
    CC_RETURN_IF(hp < (size_t)g->kh || wp < (size_t)g->kw, CLCNN_ERR_SHAPE,
                 "%s: input %zux%zux%zux%zu padded by %dx%d is smaller than the kernel %dx%d", op,
                 x[0], x[1], x[2], x[3], g->ph, g->pw, g->kh, g->kw);
    y[0] = x[0];
    y[1] = x[1];
    y[2] = (hp - (size_t)g->kh) / (size_t)g->sh + 1;
    y[3] = (wp - (size_t)g->kw) / (size_t)g->sw + 1;
    return CLCNN_OK;
}

clcnn_status clcnn_pool2d_output_shape(const clcnn_pool2d_desc *d, const size_t x[4], size_t y[4]) {
    pool_geom g = {0, 0, 0, 0, 0, 0};
    return output_shape("clcnn_pool2d_output_shape", d, x, y, &g);
}

/* Windows that tile the plane: every input element belongs to at most one window. */
static int tiles(const pool_geom *g) {
    return g->sh == g->kh && g->sw == g->kw && g->ph == 0 && g->pw == 0;
}

static int fits_int(const clcnn_tensor *t) {
    return t->offset <= (size_t)INT_MAX && t->numel <= (size_t)INT_MAX - t->offset;
}

/* Output columns [*qa, *qb) whose windows lie wholly inside the input columns. */
static void interior_cols(const pool_geom *g, int w, int q, int *qa, int *qb) {
    int a = (g->pw + g->sw - 1) / g->sw;
    int b = w + g->pw - g->kw < 0 ? 0 : (w + g->pw - g->kw) / g->sw + 1;
    *qa = a < q ? a : q;
    *qb = b < *qa ? *qa : b < q ? b : q;
}

/* The row kernels pay off as soon as a row has a few interior windows (AlexNet's 13x13
 * pool5, 6 per row, is 2-3x faster than with one work-item per output); rows of clipped
 * windows or of a single window (global pooling) keep one work-item per output (more
 * parallelism, no lanes to waste). */
static int use_rows(int qa, int qb) {
    return qb - qa >= 2;
}

static const char *rows_kernel(int is_max, int sw) {
    if (is_max)
        return sw == 1   ? "pool2d_max_fwd_rows_s1"
               : sw == 2 ? "pool2d_max_fwd_rows_s2"
                         : "pool2d_max_fwd_rows";
    return sw == 1   ? "pool2d_avg_fwd_rows_s1"
           : sw == 2 ? "pool2d_avg_fwd_rows_s2"
                     : "pool2d_avg_fwd_rows";
}

/* Backward by plane (one work-item scatters a whole plane in output order) on CPU devices
 * with enough planes to keep every core busy (work-groups of 8 planes, at least two per
 * compute unit, or of 64 once there are four such groups per unit); otherwise the per-element
 * gather. */
static int use_planes(const clcnn_device *dev, int planes) {
    unsigned cu = dev->info.compute_units ? dev->info.compute_units : 1;
    return dev->info.type == CLCNN_DEVICE_CPU && (size_t)planes >= 16 * (size_t)cu;
}

static const size_t *lws_planes(const clcnn_device *dev, int planes, size_t *buf) {
    size_t max = dev->info.max_work_group_size;
    unsigned cu = dev->info.compute_units ? dev->info.compute_units : 1;
    *buf = (size_t)planes >= 256 * (size_t)cu ? 64 : 8; /* 64: fewer groups to schedule */
    if (max && max < *buf) *buf = max;
    return buf;
}

/* A fixed work-group size for the element-wise kernels: POCL compiles a kernel once per
 * local size, so leaving the choice to the driver (which derives it from the global size)
 * means a fresh compile for many new shapes. 64 suits GPUs and CPUs alike. */
static const size_t *lws_1d(const clcnn_device *dev, size_t *buf) {
    size_t max = dev->info.max_work_group_size;
    *buf = max && max < 64 ? max : 64;
    return buf;
}

/* Checks x (4-D, float) against the y-like tensors; fills the geometry and shapes. */
static clcnn_status check_pair(clcnn_device *dev, const char *op, const clcnn_pool2d_desc *d,
                               const clcnn_tensor *big, const char *big_name,
                               const clcnn_tensor *small, const char *small_name, pool_geom *g,
                               size_t ys[4]) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, big, CLCNN_F32, op, big_name));
    CC_TRY(cc_check_tensor(dev, small, CLCNN_F32, op, small_name));
    char a[64], b[64];
    CC_RETURN_IF(big->ndim != 4, CLCNN_ERR_SHAPE, "%s: %s must be 4-D (n,c,h,w), got %s", op,
                 big_name, clcnn_tensor_shape_str(big, a, sizeof a));
    CC_TRY(output_shape(op, d, big->shape, ys, g));
    if (small->ndim != 4 || small->shape[0] != ys[0] || small->shape[1] != ys[1] ||
        small->shape[2] != ys[2] || small->shape[3] != ys[3])
        return cc_fail(CLCNN_ERR_SHAPE,
                       "%s: %s is %s but %s pooling (kernel %dx%d, stride %dx%d, pad %dx%d) of "
                       "%s %s gives %zux%zux%zux%zu",
                       op, small_name, clcnn_tensor_shape_str(small, a, sizeof a),
                       mode_name(d->mode), g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, big_name,
                       clcnn_tensor_shape_str(big, b, sizeof b), ys[0], ys[1], ys[2], ys[3]);
    CC_RETURN_IF(!fits_int(big) || !fits_int(small), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (%s %s)", op, big_name,
                 clcnn_tensor_shape_str(big, a, sizeof a));
    return CLCNN_OK;
}

static clcnn_status check_argmax(clcnn_device *dev, const char *op, const clcnn_tensor *argmax,
                                 const size_t ys[4]) {
    CC_TRY(cc_check_tensor(dev, argmax, CLCNN_I32, op, "argmax"));
    char a[64];
    if (argmax->ndim != 4 || argmax->shape[0] != ys[0] || argmax->shape[1] != ys[1] ||
        argmax->shape[2] != ys[2] || argmax->shape[3] != ys[3])
        return cc_fail(CLCNN_ERR_SHAPE, "%s: argmax is %s but the pooled output is %zux%zux%zux%zu",
                       op, clcnn_tensor_shape_str(argmax, a, sizeof a), ys[0], ys[1], ys[2], ys[3]);
    CC_RETURN_IF(!fits_int(argmax), CLCNN_ERR_UNSUPPORTED, "%s: argmax is too large", op);
    return CLCNN_OK;
}

clcnn_status clcnn_pool2d_forward(clcnn_device *dev, const clcnn_pool2d_desc *d,
                                  const clcnn_tensor *x, clcnn_tensor *y, clcnn_tensor *argmax) {
    size_t lws;
    static const char op[] = "clcnn_pool2d_forward";
    pool_geom g = {0, 0, 0, 0, 0, 0};
    size_t ys[4];
    CC_TRY(check_pair(dev, op, d, x, "x", y, "y", &g, ys));
    int is_max = d->mode == CLCNN_POOL_MAX;
    if (is_max && argmax) CC_TRY(check_argmax(dev, op, argmax, ys));

    int planes = (int)(ys[0] * ys[1]);
    int h = (int)x->shape[2], w = (int)x->shape[3], p = (int)ys[2], q = (int)ys[3];
    size_t gws = (size_t)planes * (size_t)p * (size_t)q;
    if (is_max && tiles(&g)) {
        int write = argmax != NULL;
        size_t bands = (size_t)planes * (size_t)((h + g.kh - 1) / g.kh);
        return cc_launch(dev, "pool2d", "", "pool2d_max_fwd_tiled", 1, &bands, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                                 CC_ARG_MEM(write ? argmax->storage->mem : NULL),
                                 CC_ARG_INT(write ? argmax->offset : 0), CC_ARG_INT(write),
                                 CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p),
                                 CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw)));
    }
    int qa, qb;
    interior_cols(&g, w, q, &qa, &qb);
    if (use_rows(qa, qb)) {
        size_t rows = (size_t)planes * (size_t)p;
        if (is_max) {
            int write = argmax != NULL;
            return cc_launch(
                dev, "pool2d", "", rows_kernel(1, g.sw), 1, &rows, lws_1d(dev, &lws),
                CC_ARGS(
                    CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                    CC_ARG_INT(y->offset), CC_ARG_MEM(write ? argmax->storage->mem : NULL),
                    CC_ARG_INT(write ? argmax->offset : 0), CC_ARG_INT(write), CC_ARG_INT(planes),
                    CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q), CC_ARG_INT(g.kh),
                    CC_ARG_INT(g.kw), CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph),
                    CC_ARG_INT(g.pw), CC_ARG_INT(qa), CC_ARG_INT(qb)));
        }
        int exclude = d->mode == CLCNN_POOL_AVG_EXCLUDE;
        return cc_launch(
            dev, "pool2d", "", rows_kernel(0, g.sw), 1, &rows, lws_1d(dev, &lws),
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                    CC_ARG_INT(y->offset), CC_ARG_INT(exclude), CC_ARG_INT(planes), CC_ARG_INT(h),
                    CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw),
                    CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph), CC_ARG_INT(g.pw),
                    CC_ARG_INT(qa), CC_ARG_INT(qb)));
    }
    if (is_max) {
        int write = argmax != NULL;
        return cc_launch(
            dev, "pool2d", "", "pool2d_max_fwd", 1, &gws, lws_1d(dev, &lws),
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                    CC_ARG_INT(y->offset), CC_ARG_MEM(write ? argmax->storage->mem : NULL),
                    CC_ARG_INT(write ? argmax->offset : 0), CC_ARG_INT(write), CC_ARG_INT(planes),
                    CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q), CC_ARG_INT(g.kh),
                    CC_ARG_INT(g.kw), CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph),
                    CC_ARG_INT(g.pw)));
    }
    if (p == 1 && q == 1 && g.kh == h && g.kw == w && g.ph == 0 && g.pw == 0) /* whole planes */
        return cc_launch(dev, "pool2d", "", "pool2d_avg_fwd_planes", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                                 CC_ARG_INT(planes), CC_ARG_INT(h * w)));
    int exclude = d->mode == CLCNN_POOL_AVG_EXCLUDE;
    return cc_launch(
        dev, "pool2d", "", "pool2d_avg_fwd", 1, &gws, lws_1d(dev, &lws),
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                CC_ARG_INT(y->offset), CC_ARG_INT(exclude), CC_ARG_INT(planes), CC_ARG_INT(h),
                CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw),
                CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph), CC_ARG_INT(g.pw)));
}

clcnn_status clcnn_pool2d_backward(clcnn_device *dev, const clcnn_pool2d_desc *d,
                                   const clcnn_tensor *dy, const clcnn_tensor *argmax,
                                   clcnn_tensor *dx) {
    size_t lws;
    static const char op[] = "clcnn_pool2d_backward";
    pool_geom g = {0, 0, 0, 0, 0, 0};
    size_t ys[4];
    CC_TRY(check_pair(dev, op, d, dx, "dx", dy, "dy", &g, ys));
    int is_max = d->mode == CLCNN_POOL_MAX;
    if (is_max) {
        CC_RETURN_IF(!argmax, CLCNN_ERR_INVALID_ARG,
                     "%s: max pooling needs the argmax tensor of the forward pass", op);
        CC_TRY(check_argmax(dev, op, argmax, ys));
    }

    int planes = (int)(ys[0] * ys[1]);
    int h = (int)dx->shape[2], w = (int)dx->shape[3], p = (int)ys[2], q = (int)ys[3];
    size_t gws = (size_t)planes * (size_t)h * (size_t)w;
    if (is_max && tiles(&g)) {
        size_t bands = (size_t)planes * (size_t)((h + g.kh - 1) / g.kh);
        return cc_launch(dev, "pool2d", "", "pool2d_max_bwd_tiled", 1, &bands, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(argmax->storage->mem), CC_ARG_INT(argmax->offset),
                                 CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                 CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p),
                                 CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw)));
    }
    if (use_planes(dev, planes)) {
        size_t np = (size_t)planes;
        if (is_max)
            return cc_launch(dev, "pool2d", "", "pool2d_max_bwd_plane", 1, &np,
                             lws_planes(dev, planes, &lws),
                             CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                     CC_ARG_MEM(argmax->storage->mem), CC_ARG_INT(argmax->offset),
                                     CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                     CC_ARG_INT(planes), CC_ARG_INT(h * w), CC_ARG_INT(p * q)));
        int exclude = d->mode == CLCNN_POOL_AVG_EXCLUDE;
        return cc_launch(
            dev, "pool2d", "", "pool2d_avg_bwd_plane", 1, &np, lws_planes(dev, planes, &lws),
            CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                    CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset), CC_ARG_INT(exclude),
                    CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q),
                    CC_ARG_INT(g.kh), CC_ARG_INT(g.kw), CC_ARG_INT(g.sh), CC_ARG_INT(g.sw),
                    CC_ARG_INT(g.ph), CC_ARG_INT(g.pw)));
    }
    if (is_max)
        return cc_launch(dev, "pool2d", "", "pool2d_max_bwd", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(argmax->storage->mem), CC_ARG_INT(argmax->offset),
                                 CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                 CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p),
                                 CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw),
                                 CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph),
                                 CC_ARG_INT(g.pw)));
    int exclude = d->mode == CLCNN_POOL_AVG_EXCLUDE;
    return cc_launch(
        dev, "pool2d", "", "pool2d_avg_bwd", 1, &gws, lws_1d(dev, &lws),
        CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset), CC_ARG_MEM(dx->storage->mem),
                CC_ARG_INT(dx->offset), CC_ARG_INT(exclude), CC_ARG_INT(planes), CC_ARG_INT(h),
                CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q), CC_ARG_INT(g.kh), CC_ARG_INT(g.kw),
                CC_ARG_INT(g.sh), CC_ARG_INT(g.sw), CC_ARG_INT(g.ph), CC_ARG_INT(g.pw)));
}

clcnn_status cc_pool2d_forward_pads(clcnn_device *dev, clcnn_pool_mode mode, const clcnn_tensor *x,
                                    clcnn_tensor *y, int kh, int kw, int sh, int sw,
                                    const int pads[4], int dh, int dw) {
    size_t lws;
    static const char op[] = "pool2d (per-side pads)";
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, op, "x"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, op, "y"));
    char a[64], b[64];
    CC_RETURN_IF(x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0] ||
                     x->shape[1] != y->shape[1],
                 CLCNN_ERR_SHAPE, "%s: x %s and y %s must be (n, c, h, w) and (n, c, p, q)", op,
                 clcnn_tensor_shape_str(x, a, sizeof a), clcnn_tensor_shape_str(y, b, sizeof b));
    CC_RETURN_IF(!fits_int(x) || !fits_int(y), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported", op);
    int h = (int)x->shape[2], w = (int)x->shape[3], p = (int)y->shape[2], q = (int)y->shape[3];
    CC_RETURN_IF(kh < 1 || kw < 1 || sh < 1 || sw < 1 || dh < 1 || dw < 1, CLCNN_ERR_INVALID_ARG,
                 "%s: kernel %dx%d, stride %dx%d and dilation %dx%d must be at least 1x1", op, kh,
                 kw, sh, sw, dh, dw);
    CC_RETURN_IF((dh > 1 || dw > 1) && mode != CLCNN_POOL_MAX, CLCNN_ERR_UNSUPPORTED,
                 "%s: dilated average pooling", op);
    for (int i = 0; i < 4; i++)
        CC_RETURN_IF(pads[i] < 0 || pads[i] >= (i % 2 ? kw : kh), CLCNN_ERR_INVALID_ARG,
                     "%s: pad %d must be in 0..kernel-1", op, pads[i]);
    /* every window starts inside the input or its leading padding: none is empty */
    CC_RETURN_IF(p < 1 || q < 1 || (p - 1) * sh - pads[0] >= h || (q - 1) * sw - pads[1] >= w,
                 CLCNN_ERR_SHAPE, "%s: y %s has windows past x %s", op,
                 clcnn_tensor_shape_str(y, b, sizeof b), clcnn_tensor_shape_str(x, a, sizeof a));
    int planes = (int)(x->shape[0] * x->shape[1]);
    size_t gws = y->numel;
    if (dh > 1 || dw > 1)
        return cc_launch(dev, "pool2d", "", "pool2d_max_fwd_dilated", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                                 CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p),
                                 CC_ARG_INT(q), CC_ARG_INT(kh), CC_ARG_INT(kw), CC_ARG_INT(sh),
                                 CC_ARG_INT(sw), CC_ARG_INT(pads[0]), CC_ARG_INT(pads[1]),
                                 CC_ARG_INT(dh), CC_ARG_INT(dw)));
    if (mode == CLCNN_POOL_MAX)
        return cc_launch(dev, "pool2d", "", "pool2d_max_fwd", 1, &gws, lws_1d(dev, &lws),
                         CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                 CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                                 CC_ARG_MEM(NULL), CC_ARG_INT(0), CC_ARG_INT(0), CC_ARG_INT(planes),
                                 CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q),
                                 CC_ARG_INT(kh), CC_ARG_INT(kw), CC_ARG_INT(sh), CC_ARG_INT(sw),
                                 CC_ARG_INT(pads[0]), CC_ARG_INT(pads[1])));
    return cc_launch(
        dev, "pool2d", "", "pool2d_avg_fwd_pads", 1, &gws, lws_1d(dev, &lws),
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                CC_ARG_INT(y->offset), CC_ARG_INT(mode == CLCNN_POOL_AVG_EXCLUDE),
                CC_ARG_INT(planes), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q),
                CC_ARG_INT(kh), CC_ARG_INT(kw), CC_ARG_INT(sh), CC_ARG_INT(sw), CC_ARG_INT(pads[0]),
                CC_ARG_INT(pads[1]), CC_ARG_INT(pads[2]), CC_ARG_INT(pads[3])));
}
