/* Depthwise conv2d forward (groups == c == k): host side of cl/conv2d_depthwise.cl.
 * Shapes were checked by lib/ops/conv2d.c, cc_conv2d_depthwise_supports() by the
 * dispatcher.
 *
 * Shape key: x (n, c, h, w); w (c, 1, r, s); y (n, c, p, q).
 *
 * A work-item computes TP rows x VEC columns of one output plane. Depthwise layers do
 * about r*s multiply-adds per element they read, so they are bound by memory traffic and
 * the cost of building input vectors, not by arithmetic: VEC is the widest vector (16, 8
 * or 4) that the output rows fill (q >= 12: 16, q >= 6: 8, else 4), and TP = 4 rows share
 * each weight load. At most 3 programs. */
#include "conv2d_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

int cc_conv2d_depthwise_supports(const cc_conv *cv) {
    return cv->groups == cv->c && cv->groups == cv->k;
}

clcnn_status cc_conv2d_depthwise_forward(clcnn_device *dev, const cc_conv *cv,
                                         const clcnn_tensor *x, const clcnn_tensor *w,
                                         const clcnn_tensor *b, clcnn_tensor *y, int act) {
    int vec = cv->q >= 12 ? 16 : cv->q >= 6 ? 8 : 4;
    int tp = 4;
    /* Development switch: $CLCNN_CONV_DEPTHWISE_CFG="VEC TP" overrides the choice. */
    const char *e = getenv("CLCNN_CONV_DEPTHWISE_CFG");
    int ev, et;
    if (e && sscanf(e, "%d %d", &ev, &et) == 2 && (ev == 16 || ev == 8 || ev == 4) && et >= 1 &&
        et <= 8) {
        vec = ev;
        tp = et;
    }
    char defs[32];
    snprintf(defs, sizeof defs, "VEC=%d TP=%d", vec, tp);
    size_t tiles = (size_t)ceil_div(cv->p, tp) * (size_t)ceil_div(cv->q, vec);
    size_t gws[3] = {tiles, (size_t)cv->c, (size_t)cv->n};
    size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8, 1, 1};
    return cc_launch(
        dev, "conv2d_depthwise", defs, "conv2d_depthwise_fwd", 3, gws, lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(w->storage->mem),
                CC_ARG_INT(w->offset), CC_ARG_MEM(b ? b->storage->mem : w->storage->mem),
                CC_ARG_INT(b ? b->offset : 0), CC_ARG_INT(b != NULL), CC_ARG_MEM(y->storage->mem),
                CC_ARG_INT(y->offset), CC_ARG_INT(cv->n), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h),
                CC_ARG_INT(cv->w), CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->r),
                CC_ARG_INT(cv->s), CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph),
                CC_ARG_INT(cv->pw), CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw), CC_ARG_INT(act),
                CC_ARG_FLOAT(CC_CONV_LEAKY_ALPHA)));
}
