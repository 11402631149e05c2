/* Depthwise conv2d (groups == c == k, channel multiplier 1), forward, backward data and
 * backward filter: host side of cl/conv2d_depthwise.cl.
 * Shapes were checked by lib/ops/conv2d.c, cc_conv2d_depthwise_supports() by the
 * dispatcher.
 *
 * Shape key: x (n, c, h, w); w (c, 1, r, s); y (n, c, p, q).
 *
 * A work-item computes TP rows x VEC columns of one output plane (on CPUs: TP rows x the
 * whole width, VEC columns at a time, QLOOP=1). Depthwise layers do about r*s
 * multiply-adds per element they read, so they are bound by memory traffic and the cost
 * of building input vectors, not by arithmetic: VEC is the widest vector (16, 8 or 4) that
 * the output rows fill (q >= 12: 16, q >= 6: 8, else 4), on CPUs at most the native float
 * vector width, and TP = 4 rows (8 on AVX-512 CPUs, outputs of up to 56 rows) share each
 * weight load. On CPUs the vector loads are plain unaligned loads (UNALIGNED_LOADS=1; POCL
 * assembles vload8 from 2-float pieces).
 * A handful of programs (VEC x QLOOP; the backward passes share the forward's QLOOP
 * define, which they ignore).
 *
 * Backward data: stride 1 is the forward kernel over dy with each filter rotated by 180
 * degrees (its flip argument), with the forward's heuristic for that geometry. 3x3
 * stride 2 padding 1 (MobileNet's downsampling layers): conv2d_depthwise_bwd_data_s2,
 * which computes each pair of dx rows from two dy rows. Other strides: the same tiles over
 * dx, VEC columns of one column phase (iw mod stride) per work-item (both phases for
 * stride 2), VEC chosen from ceil(w / sw) like the forward's from q.
 * Backward filter: per channel a reduction over n*p*q; split into chunks of dy rows of
 * one image, or of whole planes of several images (about CHUNK_ELEMS dy elements each,
 * smaller while there are too few work-items to fill the device), partial sums per chunk in a pool
 * buffer, summed in fixed order by cc_conv2d_sum_parts: deterministic. */
#include "conv2d_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* VEC for rows of len outputs. */
static int pick_vec(int len) {
    return len >= 12 ? 16 : len >= 6 ? 8 : 4;
}

/* pick_vec(len), on CPUs at most the device's native float vector width (8 with AVX2: a
 * float16 is two registers per accumulator). */
static int cpu_vec(const clcnn_device *dev, int len) {
    int vec = pick_vec(len);
    unsigned nat = dev->native_float_width; /* read once at device open */
    if (dev->info.type == CLCNN_DEVICE_CPU && nat >= 4)
        while (vec > 4 && (unsigned)vec > nat)
            vec /= 2;
    return vec;
}

/* The forward's heuristic. GPUs: pick_vec, one tile per work-item. CPUs: at most the
 * device's native float vector width (8 with AVX2: a float16 is two registers per
 * accumulator, and twice the columns wasted in partial tiles), each work-item walks its
 * rows' whole width (QLOOP: a quarter to a fourteenth of the work-items), and strided
 * layers take TP = 2: a tile then streams 2*TP+1 = 5 input rows at once (stride 1 with
 * TP 4: 6) instead of 9; the layers are bound by memory traffic. */
static void fwd_heuristic(const clcnn_device *dev, const cc_conv *cv, int *vec, int *tp,
                          int *qloop) {
    *vec = cpu_vec(dev, cv->q);
    *tp = 4;
    *qloop = 0;
    if (dev->info.type != CLCNN_DEVICE_CPU) return;
    *qloop = 1;
    if (cv->sh >= 2) *tp = 2;
    /* CPUs with 16-float vectors (AVX-512): TP 8, the 8 rows' float16 accumulators fit
     * its 32 registers and share each weight and the input rows they overlap in, on
     * outputs of at most 56 rows (on 112x112 planes TP 8 lost; AVX2 lost with TP 8) */
    if (dev->native_float_width >= 16 && cv->p <= 56) *tp = 8;
}

/* "VEC TP [QLOOP]" into *vec, *tp, *qloop (untouched and 0 when s is not one). */
static int parse_cfg(const char *s, int *vec, int *tp, int *qloop) {
    int v, t, ql = *qloop, end = 0, end3 = 0;
    if (!s || sscanf(s, "%d %d %n", &v, &t, &end) != 2) return 0;
    if (s[end] != '\0' && (sscanf(s + end, "%d %n", &ql, &end3) != 1 || s[end + end3] != '\0'))
        return 0;
    if ((v != 16 && v != 8 && v != 4) || t < 1 || t > 8 || (ql != 0 && ql != 1)) return 0;
    *vec = v;
    *tp = t;
    *qloop = ql;
    return 1;
}

/* Forward only (the gradients keep their choice): the other VECs, TP 2 and 8, the other
 * QLOOP; exhaustive: VEC {4, 8, 16} x TP {1, 2, 4, 8} x QLOOP {0, 1} up to max. */
int cc_conv2d_depthwise_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                       int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    if (pass != CLCNN_CONV_PASS_FORWARD || !cc_conv2d_depthwise_supports(cv)) return 0;
    int hv, ht, hq, n = 0;
    fwd_heuristic(dev, cv, &hv, &ht, &hq);
    static const int vs[] = {4, 8, 16}, ts[] = {1, 2, 4, 8};
    for (int ql = 0; ql < 2; ql++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                int v = vs[i], t = ts[j], changed = (v != hv) + (t != ht) + (ql != hq);
                if (changed == 0) continue;
                /* near: one of the three changed, TP only to 2 or 8 */
                if (!exhaustive && (changed > 1 || (t != ht && t != 2 && t != 8))) continue;
                if (n < max) snprintf(out[n++], CC_CONV_CFG_MAX, "%d %d %d", v, t, ql);
            }
    return n;
}

int cc_conv2d_depthwise_supports(const cc_conv *cv) {
    return cv->groups == cv->c && cv->groups == cv->k;
}

/* The forward prepared for one geometry: defines and grid. */
typedef struct depthwise_fwd {
    cc_conv cv;
    const clcnn_tensor *w; /* borrowed */
    char defs[80];
    size_t gws[2], lws[2];
} depthwise_fwd;

/* The kernel size when cv's geometry can be compiled in, the taps unrolled: 3x3 or 5x5
 * (MobileNet's and EfficientNet's layers), dilation 1, equal strides 1 or 2; else 0. The
 * forward takes both (KF), the gradient kernels 3x3 (K3). */
static int compiled_size(const cc_conv *cv) {
    if (cv->r != cv->s || (cv->r != 3 && cv->r != 5) || cv->dh != 1 || cv->dw != 1 ||
        cv->sh != cv->sw || (cv->sh != 1 && cv->sh != 2))
        return 0;
    return cv->r;
}

int cc_conv2d_depthwise_k3(const cc_conv *cv) {
    return compiled_size(cv) == 3;
}

/* The forward kernel's defines and grid for cv with the parameters vec, tp, qloop. */
static void fwd_setup(const clcnn_device *dev, const cc_conv *cv, int vec, int tp, int qloop,
                      int act, depthwise_fwd *f) {
    f->cv = *cv;
    int kf = compiled_size(cv), cpu = dev->info.type == CLCNN_DEVICE_CPU;
    snprintf(f->defs, sizeof f->defs,
             "KF=%d PASS=1 PF=%d QLOOP=%d STRIDE=%d TP=%d UNALIGNED_LOADS=%d VEC=%d%s", kf, cpu,
             qloop, kf ? cv->sh : 0, tp, cpu, vec, act == CLCNN_ACT_ID_SILU ? " ACT_SILU=1" : "");
    /* channels and tiles of a plane in one dimension: a work-group of a 7x7 plane (2 row
     * tiles) then holds 4 channels instead of 2 working items out of 8 */
    f->gws[0] = (size_t)cc_ceil_div(cv->p, tp) * (size_t)(qloop ? 1 : cc_ceil_div(cv->q, vec)) *
                (size_t)cv->c;
    f->gws[1] = (size_t)cv->n;
    f->lws[0] = dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8;
    f->lws[1] = 1;
}

static clcnn_status fwd_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                int act, void *state) {
    int vec, tp, qloop;
    fwd_heuristic(dev, cv, &vec, &tp, &qloop);
    /* The tuner, $CLCNN_CONV_DEPTHWISE_CFG="VEC TP [QLOOP]" or the tuning file (cc_conv_cfg)
     * override the choice. */
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_conv_cfg(dev, "CLCNN_CONV_DEPTHWISE_CFG", CLCNN_CONV_PASS_FORWARD, cv,
                                CLCNN_CONV_DEPTHWISE, tmp);
    int used = parse_cfg(e, &vec, &tp, &qloop);
    cc_conv_cfg_used(CLCNN_CONV_DEPTHWISE, used ? e : NULL);
    depthwise_fwd *f = state;
    fwd_setup(dev, cv, vec, tp, qloop, act, f);
    f->w = w;
    return cc_conv2d_prepare(dev, "conv2d_depthwise", f->defs, "conv2d_depthwise_fwd");
}

/* The forward kernel on x -> y; flip: the filters rotated by 180 degrees (the stride-1
 * data gradient, see the .cl file). */
static clcnn_status fwd_launch(clcnn_device *dev, const depthwise_fwd *f, const clcnn_tensor *x,
                               const clcnn_tensor *w, const cc_conv_epilogue *ep, int flip,
                               clcnn_tensor *y) {
    const cc_conv *cv = &f->cv;
    const clcnn_tensor *b = ep->b, *z = ep->z;
    return cc_launch(
        dev, "conv2d_depthwise", f->defs, "conv2d_depthwise_fwd", 2, f->gws, f->lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(w->storage->mem),
                CC_ARG_INT(w->offset), CC_ARGS_OPT(b, w->storage->mem),
                CC_ARGS_OPT(z, w->storage->mem), CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                CC_ARG_INT(cv->n), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w),
                CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s),
                CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw),
                CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw), CC_ARG_INT(ep->act),
                CC_ARG_FLOAT(ep->alpha), CC_ARG_INT(flip)));
}

static clcnn_status fwd_run(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                            const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const depthwise_fwd *f = state;
    return fwd_launch(dev, f, x, f->w, ep, 0, y);
}

const cc_conv2d_fwd_impl cc_conv2d_depthwise_fwd = {sizeof(depthwise_fwd), fwd_prepare, fwd_run,
                                                    NULL, 0};

/* The defines of the gradient program (PASS 2: the data gradient's and the filter
 * gradient's kernels, one program for both) for cv with VEC vec; TP 4. */
static void grad_defs(const clcnn_device *dev, const cc_conv *cv, int vec, char defs[80]) {
    int k3 = cc_conv2d_depthwise_k3(cv), cpu = dev->info.type == CLCNN_DEVICE_CPU;
    snprintf(defs, 80, "K3=%d PASS=2 PF=%d QLOOP=%d STRIDE=%d TP=4 UNALIGNED_LOADS=%d VEC=%d", k3,
             cpu, cpu, k3 ? cv->sh : 0, cpu, vec);
}

clcnn_status cc_conv2d_depthwise_backward_data(clcnn_device *dev, const cc_conv *cv,
                                               const clcnn_tensor *dy, const clcnn_tensor *w,
                                               clcnn_tensor *dx) {
    if (cv->sh == 1 && cv->sw == 1 && cv->ph <= cv->dh * (cv->r - 1) &&
        cv->pw <= cv->dw * (cv->s - 1)) {
        /* stride 1: the forward kernel over dy with the filters rotated, as fast as the
         * forward pass (the gather kernel below checks every tap of every row) */
        cc_conv t = cc_conv_transposed(cv);
        int vec, tp, qloop;
        fwd_heuristic(dev, &t, &vec, &tp, &qloop);
        depthwise_fwd f;
        fwd_setup(dev, &t, vec, tp, qloop, CLCNN_ACT_ID_NONE, &f);
        CC_TRY(cc_conv2d_prepare(dev, "conv2d_depthwise", f.defs, "conv2d_depthwise_fwd"));
        cc_conv_epilogue ep = {.act = CLCNN_ACT_NONE};
        return fwd_launch(dev, &f, dy, w, &ep, 1, dx);
    }
    int wq = cc_ceil_div(cv->w, cv->sw);
    int k3 = cc_conv2d_depthwise_k3(cv), tp = 4; /* grad_defs' TP */
    /* 3x3 stride 2 padding 1: conv2d_depthwise_bwd_data_s2 (each dx row pair from two dy
     * rows), VEC at most the native width as the filter gradient's (the same program) */
    int s2 = k3 && cv->sh == 2 && cv->ph == 1 && cv->pw == 1;
    int vec = s2 ? cpu_vec(dev, wq) : pick_vec(wq);
    char defs[80];
    grad_defs(dev, cv, vec, defs);
    if (s2) {
        size_t tiles = (size_t)cc_ceil_div(cc_ceil_div(cv->h, 2), 2) *
                       (size_t)cc_ceil_div(cc_ceil_div(cv->w, 2), vec); /* DU = 2 pairs */
        size_t gws[3] = {tiles, (size_t)cv->c, (size_t)cv->n};
        size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8, 1, 1};
        return cc_launch(dev, "conv2d_depthwise", defs, "conv2d_depthwise_bwd_data_s2", 3, gws, lws,
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                                 CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                 CC_ARG_INT(cv->n), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h),
                                 CC_ARG_INT(cv->w), CC_ARG_INT(cv->p), CC_ARG_INT(cv->q)));
    }
    /* stride 2: one work-item computes both column phases */
    size_t tiles = (size_t)cc_ceil_div(cv->h, tp) * (size_t)cc_ceil_div(wq, vec) *
                   (size_t)(cv->sw == 2 ? 1 : cv->sw);
    size_t gws[3] = {tiles, (size_t)cv->c, (size_t)cv->n};
    size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8, 1, 1};
    return cc_launch(
        dev, "conv2d_depthwise", defs, "conv2d_depthwise_bwd_data", 3, gws, lws,
        CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset), CC_ARG_MEM(w->storage->mem),
                CC_ARG_INT(w->offset), CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                CC_ARG_INT(cv->n), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w),
                CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s),
                CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw),
                CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw)));
}

enum {
    RB = 3,
    SB = 4, /* RB x SB taps per work-item (RB, SB in the .cl file) */
    CHUNK_ELEMS = 4096
}; /* dy elements per chunk */

clcnn_status cc_conv2d_depthwise_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                                 const clcnn_tensor *x, const clcnn_tensor *dy,
                                                 clcnn_tensor *dw) {
    int k3 = cc_conv2d_depthwise_k3(cv);
    /* 3x3: nine vector accumulators, which fit the registers at the native width (with
     * AVX2, float16s would take 18 of the 16) */
    int vec = k3 ? cpu_vec(dev, cv->q) : pick_vec(cv->q);
    char defs[80];
    grad_defs(dev, cv, vec, defs);
    size_t m = (size_t)cv->c * cv->r * cv->s; /* dw elements */
    size_t taps = (size_t)cc_ceil_div(cv->r, RB) * cc_ceil_div(cv->s, SB);
    /* Enough work-items to fill the device: about 64 per compute unit (x 64 on a GPU). */
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) * 64 *
                  (dev->info.type == CLCNN_DEVICE_GPU ? 64 : 1);
    int rows = cv->q >= CHUNK_ELEMS ? 1 : CHUNK_ELEMS / cv->q;
    if (rows > cv->p) rows = cv->p;
    while (rows > 1 && (size_t)cv->n * cc_ceil_div(cv->p, rows) * cv->c * taps < want)
        rows = cc_ceil_div(rows, 2);
    /* whole planes per chunk: several images per chunk while the items still fill the
     * device (fewer partial sums and per-item reductions on small planes) */
    int imgs = 1;
    if (rows == cv->p) {
        size_t plane = (size_t)cv->p * cv->q;
        imgs = plane >= CHUNK_ELEMS ? 1 : (int)(CHUNK_ELEMS / plane);
        if (imgs > cv->n) imgs = cv->n;
        while (imgs > 1 && (size_t)cc_ceil_div(cv->n, imgs) * cv->c * taps < want)
            imgs = cc_ceil_div(imgs, 2);
    }
    /* the partial buffer stays within the workspace limit and int indexing: longer
     * chunks, then more images per chunk (down to one part: no partial buffer) */
    size_t limit = cc_conv_workspace_limit() / sizeof(float);
    if (limit > INT_MAX) limit = INT_MAX;
    while (rows < cv->p && (size_t)cv->n * cc_ceil_div(cv->p, rows) * m > limit)
        rows = rows * 2 < cv->p ? rows * 2 : cv->p;
    int cpi = cc_ceil_div(cv->p, rows);
    while (imgs < cv->n && (size_t)cc_ceil_div(cv->n, imgs) * cpi * m > limit)
        imgs = imgs * 2 < cv->n ? imgs * 2 : cv->n;
    size_t parts = (size_t)cc_ceil_div(cv->n, imgs) * cpi;
    if (parts > 1)
        CC_TRY(cc_conv2d_prepare(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_sum_parts"));
    cc_storage *part = NULL;
    cl_mem out = dw->storage->mem;
    size_t out_off = dw->offset;
    if (parts > 1) {
        CC_TRY(cc_pool_acquire(dev, parts * m * sizeof(float), &part));
        out = part->mem;
        out_off = 0;
    }
    size_t gws[3] = {parts, (size_t)cv->c, taps};
    size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8, 1, 1};
    clcnn_status st = cc_launch(
        dev, "conv2d_depthwise", defs, "conv2d_depthwise_bwd_filter", 3, gws, lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(dy->storage->mem),
                CC_ARG_INT(dy->offset), CC_ARG_MEM(out), CC_ARG_INT(out_off), CC_ARG_INT(cv->n),
                CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(cv->p),
                CC_ARG_INT(cv->q), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s), CC_ARG_INT(cv->sh),
                CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw), CC_ARG_INT(cv->dh),
                CC_ARG_INT(cv->dw), CC_ARG_INT(rows), CC_ARG_INT(cpi), CC_ARG_INT(imgs)));
    if (st == CLCNN_OK && part)
        st = cc_conv2d_sum_parts(dev, part->mem, 0, (int)parts, (int)m, dw->storage->mem,
                                 dw->offset, 0);
    if (part) cc_pool_release(dev, part); /* in-order queue: later users run after us */
    return st;
}
