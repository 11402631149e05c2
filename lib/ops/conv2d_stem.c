/* The implicit GEMM's forward for layers with few input channels: host side of
 * cl/conv2d_stem.cl (see its top comment), used by lib/ops/conv2d_implicit.c's forward.
 *
 * It applies (cc_stem_applies) on CPUs with vectors of at least 8 floats to one-group
 * layers with dilation 1, at most 4 input channels, kernels up to 11x11, column strides up
 * to 4 (with 16 vector registers, AVX2: up to 3), at least TM output channels and output
 * rows of which whole 16-column tiles use at least three quarters (LeNet's 28: 28 of 32
 * lanes; 7x7 planes stay with the GEMM). There it replaced the implicit GEMM, whose pack
 * dominated these layers: on AVX-512, and with AVX2 code (POCL_LLVM_CPU_NAME=znver2 and
 * CLCNN_CPU_VECTOR_WIDTH=8 on an AVX-512 Xeon; not on an AVX2 CPU of its own), where
 * AlexNet's stride 4 stayed faster on the GEMM (the commits that made it so have the
 * numbers).
 * Parameters (the implicit GEMM's parameter string "stem [TM TN]", or the heuristic):
 *   TM x TN  output channels x 16-column tiles per register block: 8 x 3 (32 vector
 *            registers), 8 x 1 (16: eight float16 accumulators);
 *   rb       output rows per band (a work-item): as many as keep 16 work-items per
 *            compute unit, at most what fits 128 KB of copied input rows.
 * One program per geometry (CIN, KR, KS, SW): a network has one or two such layers. */
#include "conv2d_implicit.h"

#include <stdio.h>
#include <string.h>

#define STEM_LOCAL_MAX ((size_t)128 << 10)

/* Floats per column phase of a copied row: the 16-column tiles of q and the taps past them. */
static int phase_len(const cc_conv *cv) {
    return cc_ceil_div(cv->q, 16) * 16 + (cv->s - 1) / cv->sw;
}

/* Local floats of one work-item with bands of rb output rows. */
static size_t band_floats(const cc_conv *cv, int rb) {
    return (size_t)cv->c * (size_t)((rb - 1) * cv->sh + cv->r) * (size_t)cv->sw *
           (size_t)phase_len(cv);
}

/* Whether the kernel can run cv with TM tm (any device; the heuristic is cc_stem_applies):
 * one group, dilation 1, the defines' ranges, a band of one output row in local memory. */
static int stem_fits(const clcnn_device *dev, const cc_conv *cv, int tm) {
    return cv->groups == 1 && cv->dh == 1 && cv->dw == 1 && cv->c <= 8 && cv->r <= 11 &&
           cv->s <= 11 && cv->sw <= 4 && cv->k >= tm &&
           band_floats(cv, 1) * sizeof(float) <= cc_local_mem_bytes(dev);
}

/* See conv2d_implicit.h. */
int cc_stem_applies(const clcnn_device *dev, const cc_conv *cv) {
    int narrow = cc_cpu_f16_accumulators(dev, 1) != 0; /* 16 vector registers */
    if (dev->info.type == CLCNN_DEVICE_GPU || dev->native_float_width < 8 || cv->c > 4 ||
        (narrow && cv->sw >= 4))
        return 0;
    /* lanes used by whole tiles of 16 columns */
    if (4 * cv->q < 3 * cc_ceil_div(cv->q, 16) * 16) return 0;
    return stem_fits(dev, cv, 8) && band_floats(cv, 1) * sizeof(float) <= STEM_LOCAL_MAX;
}

/* See conv2d_implicit.h. */
int cc_stem_parse(const clcnn_device *dev, const cc_conv *cv, const char *s, int *tm, int *tn) {
    int a = 8, b = cc_cpu_f16_accumulators(dev, 1) != 0 ? 1 : 3, end = 0;
    if (!s || strncmp(s, "stem", 4) != 0) return 0;
    if (s[4] != '\0' && (sscanf(s + 4, " %d %d %n", &a, &b, &end) != 2 || s[4 + end] != '\0' ||
                         a < 1 || a > 16 || b < 1 || b > 4))
        return 0;
    if (!stem_fits(dev, cv, a)) return 0;
    *tm = a;
    *tn = b;
    return 1;
}

/* See conv2d_implicit.h. */
clcnn_status cc_stem_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w, int act,
                             int tm, int tn, cc_stem *st) {
    CC_RETURN_IF(!stem_fits(dev, cv, tm), CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: the few-channel kernel does not fit this layer");
    /* bands: 16 work-items per compute unit where the images allow, local memory */
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) * 16;
    size_t per_image = (want + (size_t)cv->n - 1) / (size_t)cv->n;
    int rb = per_image > (size_t)cv->p ? 1 : cc_ceil_div(cv->p, (int)per_image);
    size_t budget =
        cc_local_mem_bytes(dev) < STEM_LOCAL_MAX ? cc_local_mem_bytes(dev) : STEM_LOCAL_MAX;
    while (rb > 1 && band_floats(cv, rb) * sizeof(float) > budget)
        rb--;
    rb = cc_ceil_div(cv->p, cc_ceil_div(cv->p, rb)); /* equal bands */
    *st = (cc_stem){.cv = *cv, .rb = rb, .ldl = phase_len(cv)};
    st->local_bytes = band_floats(cv, rb) * sizeof(float);
    snprintf(st->defs, sizeof st->defs, "CIN=%d KR=%d KS=%d SW=%d TM=%d TN=%d%s", cv->c, cv->r,
             cv->s, cv->sw, tm, tn, act == CLCNN_ACT_ID_SILU ? " ACT_SILU=1" : "");
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_stem", st->defs, "conv2d_stem_fwd"));
    return cc_conv2d_copy_of(w, &st->w);
}

/* See conv2d_implicit.h. */
clcnn_status cc_stem_run(clcnn_device *dev, const cc_stem *st, const clcnn_tensor *x,
                         const cc_conv_epilogue *ep, clcnn_tensor *y) {
    static const cc_conv_epilogue none = {.act = CLCNN_ACT_NONE};
    if (!ep) ep = &none;
    const cc_conv *cv = &st->cv;
    const clcnn_tensor *b = ep->b, *z = ep->z;
    cl_mem wm = st->w->storage->mem;
    size_t bands = (size_t)cc_ceil_div(cv->p, st->rb);
    return cc_launch(dev, "conv2d_stem", st->defs, "conv2d_stem_fwd", 1,
                     (size_t[]){(size_t)cv->n * bands}, (size_t[]){1},
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(wm),
                             CC_ARG_INT(st->w->offset), CC_ARGS_OPT(b, wm), CC_ARGS_OPT(z, wm),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(cv->n),
                             CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(cv->k),
                             CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->sh),
                             CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw), CC_ARG_INT(ep->act),
                             CC_ARG_FLOAT(ep->alpha), CC_ARG_INT(st->rb), CC_ARG_INT(st->ldl),
                             CC_ARG_LOCAL(st->local_bytes)));
}
