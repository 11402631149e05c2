/* The prepared forward convolution (cc_conv_fwd, lib/internal.h): the checks, the
 * algorithm choice and each algorithm's preparation (kernel parameters, kernel builds,
 * weight transforms) once at create; run only checks its tensors and enqueues.
 *
 * Shape key: x (n, c, h, w); w (k, c/groups, r, s); b (k); z, y (n, k, p, q).
 *
 * The algorithms' forwards are the ones clcnn_conv2d_forward runs (cc_conv2d_fwd_impl in
 * conv2d_impl.h); those that read the layer's weights as they are (direct, gemm,
 * depthwise) get a copy owned here, the bias is always copied. */
#include "conv2d_impl.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((int)CC_ACT_SILU == CLCNN_ACT_ID_SILU, "CC_ACT_SILU is the kernels' SiLU id");

struct cc_conv_fwd {
    clcnn_device *dev; /* one reference */
    cc_conv cv;
    size_t x[4], y[4];
    clcnn_conv_algo algo;
    const cc_conv2d_fwd_impl *fa; /* cc_conv2d_dwpw_fwd with a depthwise layer before */
    void *state;
    clcnn_tensor *w, *b; /* owned copies (w: only when fa does not transform it) */
    int act, residual;
    float alpha;
};

/* See conv2d_impl.h. */
clcnn_status cc_conv2d_copy_of(const clcnn_tensor *t, clcnn_tensor **out) {
    clcnn_tensor *c = NULL;
    CC_TRY(clcnn_tensor_create(t->dev, CLCNN_F32, t->ndim, t->shape, &c));
    clcnn_status st = clcnn_tensor_copy(c, t);
    if (st != CLCNN_OK) {
        clcnn_tensor_free(c);
        return st;
    }
    *out = c;
    return CLCNN_OK;
}

clcnn_status cc_conv_fwd_create(clcnn_device *dev, const cc_conv_fwd_desc *d, const clcnn_tensor *w,
                                const clcnn_tensor *b, cc_conv_fwd **out) {
    const char *op = "conv2d prepared forward";
    CC_RETURN_IF(!dev || !d || !out, CLCNN_ERR_INVALID_ARG,
                 "%s: device, descriptor or output pointer is NULL", op);
    CC_RETURN_IF(d->act != CLCNN_ACT_NONE && d->act != CLCNN_ACT_RELU &&
                     d->act != CLCNN_ACT_LEAKY_RELU && d->act != CC_ACT_SILU,
                 CLCNN_ERR_INVALID_ARG, "%s: unknown activation %d", op, (int)d->act);
    CC_RETURN_IF(d->residual != 0 && d->residual != 1, CLCNN_ERR_INVALID_ARG,
                 "%s: residual is %d, not 0 or 1", op, d->residual);
    cc_conv cv, launch, dwcv;
    size_t ys[4], xc[4]; /* xc: the convolution's input (the depthwise output with pre_dw) */
    memcpy(xc, d->x, sizeof xc);
    if (d->pre_dw) CC_TRY(cc_conv2d_dwpw_input(dev, op, d, xc, &dwcv));
    CC_TRY(cc_conv2d_geometry(op, &d->conv, xc, d->w, ys, &cv));
    CC_TRY(cc_conv2d_check_4d(dev, op, "weights w", w));
    CC_RETURN_IF(memcmp(w->shape, d->w, sizeof d->w) != 0, CLCNN_ERR_SHAPE,
                 "%s: weights w are " SHAPE4 ", the descriptor says " SHAPE4, op, DIMS4(w->shape),
                 DIMS4(d->w));
    if (b) CC_TRY(cc_conv2d_check_vec(dev, op, "bias b", b, (size_t)cv.k));
    clcnn_conv_algo a;
    if (d->pre_dw) {
        CC_TRY(cc_conv2d_dwpw_geometry(op, d, &dwcv, &cv, &launch));
        a = CLCNN_CONV_IMPLICIT_GEMM;
    } else {
        CC_TRY(cc_conv2d_forward_algo(dev, op, &d->conv, &cv, &a));
    }
    if (d->act == CC_ACT_SILU && a != CLCNN_CONV_IMPLICIT_GEMM && a != CLCNN_CONV_DEPTHWISE) {
        CC_RETURN_IF(d->conv.algo != CLCNN_CONV_AUTO, CLCNN_ERR_UNSUPPORTED,
                     "%s: a SiLU epilogue runs on implicit_gemm and depthwise, not %s", op,
                     clcnn_conv_algo_name(a));
        a = CLCNN_CONV_IMPLICIT_GEMM; /* runs every forward shape */
    }

    cc_conv_fwd *f = calloc(1, sizeof *f);
    CC_RETURN_IF(!f, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", op);
    *f = (cc_conv_fwd){.dev = dev,
                       .cv = d->pre_dw ? launch : cv,
                       .algo = a,
                       .fa = d->pre_dw ? &cc_conv2d_dwpw_fwd : cc_conv2d_fwd_algo(a),
                       .act = (int)d->act,
                       .residual = d->residual,
                       .alpha = d->alpha};
    memcpy(f->x, d->x, sizeof f->x);
    memcpy(f->y, ys, sizeof f->y);
    cc_device_ref(dev);
    clcnn_status st = CLCNN_OK;
    if (!f->fa->copies_weights) st = cc_conv2d_copy_of(w, &f->w);
    if (st == CLCNN_OK && b) st = cc_conv2d_copy_of(b, &f->b);
    if (st == CLCNN_OK && d->pre_dw)
        st = cc_conv2d_dwpw_new(dev, &launch, w, d, &f->state);
    else if (st == CLCNN_OK)
        st = cc_conv2d_fwd_new(f->fa, dev, &cv, f->w ? f->w : w, (int)d->act, &f->state);
    if (st != CLCNN_OK) {
        cc_conv_fwd_free(f);
        return st;
    }
    *out = f;
    return CLCNN_OK;
}

clcnn_status cc_conv_fwd_run(cc_conv_fwd *f, const clcnn_tensor *x, const clcnn_tensor *z,
                             clcnn_tensor *y) {
    const char *op = "conv2d prepared forward";
    CC_RETURN_IF(!f, CLCNN_ERR_INVALID_ARG, "%s: the prepared convolution is NULL", op);
    clcnn_device *dev = f->dev;
    CC_TRY(cc_conv2d_check_4d(dev, op, "input x", x));
    CC_TRY(cc_conv2d_check_4d(dev, op, "output y", y));
    CC_RETURN_IF(memcmp(x->shape, f->x, sizeof f->x) != 0, CLCNN_ERR_SHAPE,
                 "%s: input x is " SHAPE4 ", prepared for " SHAPE4, op, DIMS4(x->shape),
                 DIMS4(f->x));
    CC_RETURN_IF(memcmp(y->shape, f->y, sizeof f->y) != 0, CLCNN_ERR_SHAPE,
                 "%s: output y is " SHAPE4 ", expected " SHAPE4 " from input " SHAPE4, op,
                 DIMS4(y->shape), DIMS4(f->y), DIMS4(f->x));
    CC_RETURN_IF(f->residual && !z, CLCNN_ERR_INVALID_ARG,
                 "%s: prepared with a residual but z is NULL", op);
    CC_RETURN_IF(!f->residual && z, CLCNN_ERR_INVALID_ARG,
                 "%s: z given but prepared without a residual", op);
    if (z) {
        CC_TRY(cc_conv2d_check_4d(dev, op, "residual z", z));
        CC_RETURN_IF(memcmp(z->shape, f->y, sizeof f->y) != 0, CLCNN_ERR_SHAPE,
                     "%s: residual z is " SHAPE4 ", expected the output's " SHAPE4, op,
                     DIMS4(z->shape), DIMS4(f->y));
        CC_RETURN_IF(cc_tensors_overlap(z, y) && z->offset != y->offset, CLCNN_ERR_INVALID_ARG,
                     "%s: residual z overlaps output y without being y itself", op);
    }
    CC_RETURN_IF(cc_tensors_overlap(x, y), CLCNN_ERR_INVALID_ARG, "%s: output y overlaps input x",
                 op);
    cc_conv_epilogue ep = {.b = f->b, .z = z, .act = f->act, .alpha = f->alpha};
    return f->fa->run(dev, f->state, x, &ep, y);
}

clcnn_conv_algo cc_conv_fwd_algo(const cc_conv_fwd *f) {
    return f ? f->algo : CLCNN_CONV_AUTO;
}

void cc_conv_fwd_free(cc_conv_fwd *f) {
    if (!f) return;
    cc_conv2d_fwd_delete(f->fa, f->state);
    clcnn_tensor_free(f->w);
    clcnn_tensor_free(f->b);
    cc_device_unref(f->dev);
    free(f);
}
