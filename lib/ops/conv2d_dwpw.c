/* A depthwise convolution and the 1x1 convolution that reads it, as one launch of the
 * implicit GEMM (cl/conv2d_implicit.cl with DWF=1): for inference plans, where MobileNet's
 * blocks end in such a pair (lib/exec/plan_fuse.c pairs them). The GEMM packs, for each tile
 * of 16 output positions and each input channel, the depthwise layer's output there
 * (its taps, bias and activation) instead of a copy of x: the depthwise output is never
 * written to memory nor read back, and its own kernel does not run.
 *
 * Shape key: x (n, c, h, w) the depthwise layer's input; dw_w (c, 1, r, s), dw_b (c);
 * the 1x1 layer w (k, c/groups, 1, 1), b (k); y, z (n, k, p, q), p x q the depthwise
 * layer's output plane.
 *
 * The launch geometry is the depthwise layer's (input, kernel, strides, pads,
 * dilations) with the 1x1 layer's k and groups; the GEMM's parameters are the
 * heuristic's for row tiles (cc_implicit_plan_dwf; no tuning-file entry: a pair is not a
 * layer the tuner measures). The summation orders are those of the two layers' own
 * kernels when the 1x1 layer's reduction fits one chunk (up to 1024 input channels on a
 * CPU), so a fused plan then writes the unfused plan's bytes. */
#include "conv2d_implicit.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* The prepared pair: the GEMM (launch geometry, plan, transposed 1x1 weights) and copies
 * of the depthwise layer's weights and bias. */
typedef struct dwpw_state {
    implicit_fwd f;
    clcnn_tensor *dww, *dwb;
    int dw_act;
    float dw_alpha;
} dwpw_state;

clcnn_status cc_conv2d_dwpw_input(const clcnn_device *dev, const char *op,
                                  const cc_conv_fwd_desc *d, size_t y[4], cc_conv *dwcv) {
    CC_RETURN_IF(!d->dw_w, CLCNN_ERR_INVALID_ARG, "%s: depthwise weights dw_w are NULL", op);
    CC_TRY(cc_conv2d_check_4d(dev, op, "depthwise weights dw_w", d->dw_w));
    const size_t *ws = d->dw_w->shape;
    CC_RETURN_IF(ws[0] != d->x[1] || ws[1] != 1, CLCNN_ERR_SHAPE,
                 "%s: depthwise weights dw_w are " SHAPE4 ", expected %zux1xRxS for input " SHAPE4,
                 op, DIMS4(ws), d->x[1], DIMS4(d->x));
    CC_RETURN_IF(d->dw_act != CLCNN_ACT_NONE && d->dw_act != CLCNN_ACT_RELU &&
                     d->dw_act != CLCNN_ACT_LEAKY_RELU,
                 CLCNN_ERR_INVALID_ARG, "%s: unknown depthwise activation %d", op, (int)d->dw_act);
    CC_RETURN_IF(d->x[1] > INT_MAX, CLCNN_ERR_SHAPE, "%s: input " SHAPE4 " too large", op,
                 DIMS4(d->x));
    clcnn_conv2d_desc dd = d->dw;
    dd.groups = (int)d->x[1];
    CC_TRY(cc_conv2d_geometry(op, &dd, d->x, ws, y, dwcv));
    if (d->dw_b) CC_TRY(cc_conv2d_check_vec(dev, op, "depthwise bias dw_b", d->dw_b, d->x[1]));
    return CLCNN_OK;
}

clcnn_status cc_conv2d_dwpw_geometry(const char *op, const cc_conv_fwd_desc *d, const cc_conv *dwcv,
                                     const cc_conv *pw, cc_conv *launch) {
    CC_RETURN_IF(pw->r != 1 || pw->s != 1 || pw->sh != 1 || pw->sw != 1 || pw->ph != 0 ||
                     pw->pw != 0,
                 CLCNN_ERR_UNSUPPORTED,
                 "%s: after a depthwise layer the convolution must be 1x1 with stride 1 and no "
                 "padding, not %dx%d stride %dx%d pad %dx%d",
                 op, pw->r, pw->s, pw->sh, pw->sw, pw->ph, pw->pw);
    CC_RETURN_IF(d->conv.algo != CLCNN_CONV_AUTO && d->conv.algo != CLCNN_CONV_IMPLICIT_GEMM,
                 CLCNN_ERR_UNSUPPORTED,
                 "%s: a depthwise layer fused before the convolution runs only on implicit_gemm, "
                 "not %s",
                 op, clcnn_conv_algo_name(d->conv.algo));
    *launch = *dwcv;
    launch->k = pw->k;
    launch->groups = pw->groups;
    launch->cpg = pw->cpg;
    launch->kpg = pw->kpg;
    return CLCNN_OK;
}

static void dwpw_release(void *state) {
    dwpw_state *s = state;
    clcnn_tensor_free(s->f.wt);
    clcnn_tensor_free(s->dww);
    clcnn_tensor_free(s->dwb);
}

clcnn_status cc_conv2d_dwpw_new(clcnn_device *dev, const cc_conv *launch, const clcnn_tensor *w,
                                const cc_conv_fwd_desc *d, void **state) {
    dwpw_state *s = calloc(1, sizeof *s);
    CC_RETURN_IF(!s, CLCNN_ERR_OUT_OF_MEMORY, "conv2d depthwise + 1x1: out of host memory");
    s->f.cv = *launch;
    s->dw_act = (int)d->dw_act;
    s->dw_alpha = d->dw_alpha;
    /* the 1x1 layer's own geometry, for its transposed weights (K = cpg rows) */
    cc_conv pw = *launch;
    pw.h = pw.p;
    pw.w = pw.q;
    pw.r = pw.s = pw.sh = pw.sw = pw.dh = pw.dw = 1;
    pw.ph = pw.pw = 0;
    clcnn_status st = cc_implicit_plan_dwf(dev, launch, &s->f.pl);
    cc_implicit_act_defs(&s->f.pl, (int)d->act);
    if (st == CLCNN_OK)
        st = cc_conv2d_prepare(dev, "conv2d_implicit", s->f.pl.defs, "conv2d_implicit_fwd");
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){s->f.pl.wfloats}, &s->f.wt);
    if (st == CLCNN_OK) st = cc_implicit_fill_wt(dev, &pw, w, 0, &s->f);
    if (st == CLCNN_OK) st = cc_conv2d_copy_of(d->dw_w, &s->dww);
    if (st == CLCNN_OK && d->dw_b) st = cc_conv2d_copy_of(d->dw_b, &s->dwb);
    if (st != CLCNN_OK) {
        dwpw_release(s);
        free(s);
        return st;
    }
    *state = s;
    return CLCNN_OK;
}

static clcnn_status dwpw_run(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                             const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const dwpw_state *s = state;
    cc_implicit_dw dw = {.w = s->dww, .b = s->dwb, .act = s->dw_act, .alpha = s->dw_alpha};
    return cc_implicit_launch_dwf(dev, &s->f.cv, &s->f.pl, x->storage->mem, x->offset,
                                  s->f.wt->storage->mem, s->f.wt->offset, ep, &dw, y->storage->mem,
                                  y->offset);
}

/* prepare is cc_conv2d_dwpw_new (it needs the depthwise layer too) */
const cc_conv2d_fwd_impl cc_conv2d_dwpw_fwd = {sizeof(dwpw_state), NULL, dwpw_run, dwpw_release, 1};
