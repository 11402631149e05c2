/* Direct conv2d: host side of cl/conv2d_direct.cl (forward, backward data, backward
 * filter). Shapes were checked by lib/ops/conv2d.c.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, r, s); y (n, k, p, q); cpg = c/groups,
 * kpg = k/groups.
 *
 * Kernel parameters come from a small fixed table (chosen by the channels per group and
 * the output width), so a whole network compiles a handful of programs; shapes are
 * kernel arguments. The work-group size is fixed per device type so that POCL compiles
 * one work-group function per kernel, not one per shape. */
#include "conv2d_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct direct_cfg {
    int tile_k, tile_p, vec, tile_c;
} direct_cfg;

/* Work-group size along dim 0 (the spatial tiles). */
static size_t lws0(const clcnn_device *dev) {
    return dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8;
}

/* "K P V C" (TILE_K TILE_P VEC TILE_C); 0 when s is not one (the kernels' limits). */
static int parse_cfg(const char *s, direct_cfg *out) {
    int k, p, v, c, end = 0;
    if (!s || sscanf(s, "%d %d %d %d %n", &k, &p, &v, &c, &end) != 4 || s[end] != '\0') return 0;
    if (k < 1 || k > 32 || p < 1 || p > 8 || (v != 2 && v != 4 && v != 8 && v != 16) || c < 1 ||
        c > 16)
        return 0;
    *out = (direct_cfg){k, p, v, c};
    return 1;
}

/* The defines of cfg, or of the parameters the tuner, $CLCNN_CONV_DIRECT_CFG="K P V C"
 * or the tuning file give for this pass (cc_conv_cfg; an invalid string: the table). */
static void cfg_defines(const clcnn_device *dev, const cc_conv *cv, int pass, direct_cfg *cfg,
                        char *buf, size_t cap) {
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_conv_cfg(dev, "CLCNN_CONV_DIRECT_CFG", pass, cv, CLCNN_CONV_DIRECT, tmp);
    int used = parse_cfg(e, cfg);
    cc_conv_cfg_used(CLCNN_CONV_DIRECT, used ? e : NULL);
    /* each pass's program holds only its kernels and is keyed by the defines they use:
     * forward (1) and backward data (3) TILE_K TILE_P VEC, backward filter (2) TILE_C
     * TILE_K VEC */
    if (pass == CLCNN_CONV_PASS_BACKWARD_FILTER)
        snprintf(buf, cap, "PASS=2 TILE_C=%d TILE_K=%d VEC=%d", cfg->tile_c, cfg->tile_k, cfg->vec);
    else
        snprintf(buf, cap, "PASS=%d TILE_K=%d TILE_P=%d VEC=%d",
                 pass == CLCNN_CONV_PASS_FORWARD ? 1 : 3, cfg->tile_k, cfg->tile_p, cfg->vec);
}

/* Geometry arguments shared by the three kernels, in kernel order. */
#define GEOM_ARGS(cv)                                                                              \
    CC_ARG_INT((cv)->n), CC_ARG_INT((cv)->c), CC_ARG_INT((cv)->h), CC_ARG_INT((cv)->w),            \
        CC_ARG_INT((cv)->k), CC_ARG_INT((cv)->p), CC_ARG_INT((cv)->q), CC_ARG_INT((cv)->r),        \
        CC_ARG_INT((cv)->s), CC_ARG_INT((cv)->sh), CC_ARG_INT((cv)->sw), CC_ARG_INT((cv)->ph),     \
        CC_ARG_INT((cv)->pw), CC_ARG_INT((cv)->dh), CC_ARG_INT((cv)->dw), CC_ARG_INT((cv)->groups)

/* The tile table. Forward and backward data share one program per (TILE_K, TILE_P, VEC)
 * (their four kernels), backward filter has one per (TILE_C, TILE_K, VEC) (PASS in the
 * .cl file: a program compiles only the kernels it can launch), and compile time matters
 * (POCL: about a second per program), so every pass draws from one small family:
 *   CPU: TILE_K in {16, 8, 4, 1}, TILE_P = 2 for TILE_K >= 8 else 4, VEC in {16, 8}
 *        (at most 8 forward / data programs), TILE_C in {16, 4, 1} (backward filter
 *        only).
 *   GPU: TILE_K in {4, 1}, TILE_P 2, VEC 4, TILE_C in {2, 1}.
 * Forward and backward data pick TILE_K from the channels per group of their output
 * (kpg forward, cpg backward data) and VEC from the width of its rows (from the plane size
 * for the *_flat kernels: CPUs, stride 1 with q == w); backward filter
 * picks TILE_C from cpg, TILE_K from kpg (16 only with TILE_C 1) and VEC from the length
 * of the runs it walks (whole planes for stride 1 with q == w, else rows).
 *
 * CPU (POCL, measured on the anchor layers by process CPU time, which stays comparable
 * on a loaded machine): wide vectors and many accumulators win, 16 channels x 2 rows x
 * 16 columns (32 float16 registers of AVX-512) ran 1.5-2x faster than 8x2x8 on VGG 3x3
 * and ResNet 1x1 forward; with one channel per group (LeNet's single input channel,
 * depthwise) 1 x 4 rows x 8 columns was best; the filter gradient was fastest with
 * 8 x 4 channels (16 output channels or 2 input channels: slower on VGG and ResNet), and
 * with TILE_C 1 when there are fewer than 3 input channels per group (2x on LeNet).
 * Filter gradient, remeasured with the plane-run walk (process CPU ms, old table -> new):
 * 8 x 16 channels with VEC 16 where cpg >= 16: the bn model's conv2 (64x32x14x14 -> 64,
 * 3x3 p1) 26.3 -> 12.0, VGG 8x64x56x56 -> 64 3x3 p1 74 -> 52, 3x3 stride 2 -> 128 96 -> 79,
 * ResNet 1x1 128 -> 64 on 14x14 1.13 -> 0.90 (16 x 16: within 10%, 8 x 8: 20% slower);
 * 16 x 1 with one input channel: 64x1x28x28 -> 32 3x3 p1 3.3 -> 1.9.
 * Forward and backward data on whole-plane runs (stride 1, q == w), the same 16 x 2 x 16
 * tiles as the row kernels: bn conv2 forward 16.6 -> 9.7, data 15.9 -> 12.1, VGG forward
 * 58 -> 37, data 63 -> 40, ResNet 1x1 0.97 -> 0.65 / 1.05 -> 0.64 (32 channels: up to 10%
 * faster on the data gradient, not worth another program; 8 channels or 4 rows: slower).
 * GPU: a work-item holds at most 4x2x4 = 32 accumulators (registers are per lane); not
 * measured yet (no GPU here). */
static direct_cfg make_cfg(const clcnn_device *dev, int tile_k, int vec, int tile_c) {
    if (dev->info.type == CLCNN_DEVICE_GPU)
        return (direct_cfg){
            .tile_k = tile_k >= 4 ? 4 : 1, .tile_p = 2, .vec = 4, .tile_c = tile_c >= 2 ? 2 : 1};
    return (direct_cfg){
        .tile_k = tile_k, .tile_p = tile_k >= 8 ? 2 : 4, .vec = vec, .tile_c = tile_c};
}

/* Forward / backward data: chans channels per group in the output, rows cols wide. */
static direct_cfg pick_cfg(const clcnn_device *dev, int chans, int cols) {
    if (chans < 3) return make_cfg(dev, 1, 8, 1);
    return make_cfg(dev, chans >= 16 ? 16 : chans >= 8 ? 8 : 4, cols >= 12 ? 16 : 8, 4);
}

/* Forward: TILE_K output channels share every input load, TILE_P x VEC outputs share
 * every weight load. */
static direct_cfg forward_cfg(const clcnn_device *dev, const cc_conv *cv) {
    return pick_cfg(dev, cv->kpg, cv->q);
}

/* Stride 1 with as many output as input columns: planes are walked as one run (CPUs;
 * GPUs keep the row tiles, not measured there). */
static int flat_plane(const clcnn_device *dev, const cc_conv *cv) {
    return dev->info.type != CLCNN_DEVICE_GPU && cv->sh == 1 && cv->sw == 1 && cv->q == cv->w;
}

/* The forward prepared for one geometry: the kernel, its defines and grid. */
typedef struct direct_fwd {
    cc_conv cv;
    const clcnn_tensor *w; /* borrowed */
    const char *kernel;
    char defs[128];
    size_t gws[3], lws[3];
} direct_fwd;

static clcnn_status fwd_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                int act, void *state) {
    (void)act; /* run time: never CLCNN_ACT_ID_SILU (cc_conv_fwd_create) */
    direct_fwd *f = state;
    f->cv = *cv;
    f->w = w;
    direct_cfg cfg = forward_cfg(dev, cv);
    size_t tiles;
    if (flat_plane(dev, cv)) {
        cfg = pick_cfg(dev, cv->kpg, cv->p * cv->q);
        cfg_defines(dev, cv, CLCNN_CONV_PASS_FORWARD, &cfg, f->defs, sizeof f->defs);
        tiles = (size_t)cc_ceil_div(cv->p * cv->q, cfg.tile_p * cfg.vec);
        f->kernel = "conv2d_direct_fwd_flat";
    } else {
        cfg_defines(dev, cv, CLCNN_CONV_PASS_FORWARD, &cfg, f->defs, sizeof f->defs);
        tiles = (size_t)cc_ceil_div(cv->p, cfg.tile_p) * (size_t)cc_ceil_div(cv->q, cfg.vec);
        f->kernel = "conv2d_direct_fwd";
    }
    f->gws[0] = tiles;
    f->gws[1] = (size_t)cv->groups * (size_t)cc_ceil_div(cv->kpg, cfg.tile_k);
    f->gws[2] = (size_t)cv->n;
    f->lws[0] = lws0(dev);
    f->lws[1] = f->lws[2] = 1;
    return cc_conv2d_prepare(dev, "conv2d_direct", f->defs, f->kernel);
}

static clcnn_status fwd_run(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                            const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const direct_fwd *f = state;
    const clcnn_tensor *w = f->w, *b = ep->b, *z = ep->z;
    return cc_launch(dev, "conv2d_direct", f->defs, f->kernel, 3, f->gws, f->lws,
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                             CC_ARGS_OPT(b, w->storage->mem), CC_ARGS_OPT(z, w->storage->mem),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), GEOM_ARGS(&f->cv),
                             CC_ARG_INT(ep->act), CC_ARG_FLOAT(ep->alpha)));
}

const cc_conv2d_fwd_impl cc_conv2d_direct_fwd = {sizeof(direct_fwd), fwd_prepare, fwd_run, NULL, 0};

/* Backward data: TILE_K input channels x TILE_P rows x VEC columns of one stride phase
 * per work-item (the columns of a phase are w/sw wide). */
static direct_cfg data_cfg(const clcnn_device *dev, const cc_conv *cv) {
    return pick_cfg(dev, cv->cpg, cc_ceil_div(cv->w, cv->sw));
}

clcnn_status cc_conv2d_direct_backward_data(clcnn_device *dev, const cc_conv *cv,
                                            const clcnn_tensor *dy, const clcnn_tensor *w,
                                            clcnn_tensor *dx) {
    direct_cfg cfg = data_cfg(dev, cv);
    char defs[128];
    if (flat_plane(dev, cv)) {
        cfg = pick_cfg(dev, cv->cpg, cv->h * cv->w);
        cfg_defines(dev, cv, CLCNN_CONV_PASS_BACKWARD_DATA, &cfg, defs, sizeof defs);
        size_t gws[3] = {(size_t)cc_ceil_div(cv->h * cv->w, cfg.tile_p * cfg.vec),
                         (size_t)cv->groups * (size_t)cc_ceil_div(cv->cpg, cfg.tile_k),
                         (size_t)cv->n};
        size_t lws[3] = {lws0(dev), 1, 1};
        return cc_launch(dev, "conv2d_direct", defs, "conv2d_direct_bwd_data_flat", 3, gws, lws,
                         CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                                 CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                                 CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                 GEOM_ARGS(cv)));
    }
    cfg_defines(dev, cv, CLCNN_CONV_PASS_BACKWARD_DATA, &cfg, defs, sizeof defs);
    size_t rows = (size_t)cc_ceil_div(cc_ceil_div(cv->h, cv->sh), cfg.tile_p);
    size_t cols = (size_t)cc_ceil_div(cc_ceil_div(cv->w, cv->sw), cfg.vec);
    size_t gws[3] = {(size_t)cv->sh * cv->sw * rows * cols,
                     (size_t)cv->groups * (size_t)cc_ceil_div(cv->cpg, cfg.tile_k), (size_t)cv->n};
    size_t lws[3] = {lws0(dev), 1, 1};
    return cc_launch(dev, "conv2d_direct", defs, "conv2d_direct_bwd_data", 3, gws, lws,
                     CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                             CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                             CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset), GEOM_ARGS(cv)));
}

/* Backward filter: TILE_K x TILE_C taps per work-item, each summed over the rows and
 * columns of a split of the batch. Long reductions over few filter taps (first layers,
 * large batches) split the batch so that enough work-items run; the splits are summed
 * in a fixed order by conv2d_sum_parts, so the result stays deterministic. */
static direct_cfg filter_cfg(const clcnn_device *dev, const cc_conv *cv) {
    /* stride 1 and q == w: the kernel walks whole planes as one run */
    int flat = cv->sh == 1 && cv->sw == 1 && cv->q == cv->w;
    int len = flat ? cv->p * cv->q : cv->q;
    int tile_c = cv->cpg >= 16 ? 16 : cv->cpg >= 3 ? 4 : 1;
    int tile_k = cv->kpg >= 16 && tile_c == 1 ? 16 : cv->kpg >= 8 ? 8 : cv->kpg >= 3 ? 4 : 1;
    return make_cfg(dev, tile_k, len >= 48 ? 16 : 8, tile_c);
}

clcnn_status cc_conv2d_direct_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *x, const clcnn_tensor *dy,
                                              clcnn_tensor *dw) {
    direct_cfg cfg = filter_cfg(dev, cv);
    char defs[128];
    cfg_defines(dev, cv, CLCNN_CONV_PASS_BACKWARD_FILTER, &cfg, defs, sizeof defs);
    size_t rs = (size_t)cv->r * cv->s;
    size_t taps = (size_t)cc_ceil_div(cv->cpg, cfg.tile_c) * rs;
    size_t ktiles = (size_t)cv->groups * (size_t)cc_ceil_div(cv->kpg, cfg.tile_k);
    size_t m = (size_t)cv->k * cv->cpg * rs; /* dw elements */

    /* Enough work-items to fill the device: about 64 per compute unit (x lws on a GPU). */
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) * 64 *
                  (dev->info.type == CLCNN_DEVICE_GPU ? 64 : 1);
    size_t items = taps * ktiles;
    int splits = 1;
    if (items < want && cv->n > 1) {
        size_t sp = (want + items - 1) / items;
        splits = sp > (size_t)cv->n ? cv->n : (int)sp;
        /* keep the partial buffer modest */
        size_t max_sp = cc_conv_workspace_limit() / (m * sizeof(float));
        if ((size_t)splits > max_sp) splits = max_sp > 1 ? (int)max_sp : 1;
        if ((size_t)splits * m > 0x7fffffff) splits = 1;
    }
    int per = cc_ceil_div(cv->n, splits);
    splits = cc_ceil_div(cv->n, per);

    clcnn_tensor *part = NULL;
    cl_mem out = dw->storage->mem;
    size_t out_off = dw->offset;
    if (splits > 1) {
        CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)splits * m}, &part));
        out = part->storage->mem;
        out_off = part->offset;
    }
    size_t gws[3] = {taps, ktiles, (size_t)splits};
    size_t lws[3] = {lws0(dev), 1, 1};
    clcnn_status st =
        cc_launch(dev, "conv2d_direct", defs, "conv2d_direct_bwd_filter", 3, gws, lws,
                  CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                          CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset), CC_ARG_MEM(out),
                          CC_ARG_INT(out_off), GEOM_ARGS(cv), CC_ARG_INT(per)));
    if (st == CLCNN_OK && part)
        st = cc_conv2d_sum_parts(dev, part->storage->mem, part->offset, splits, (int)m,
                                 dw->storage->mem, dw->offset, 0);
    clcnn_tensor_free(part); /* the in-order queue runs the kernels before any reuse */
    return st;
}

/* ---- tuning candidates ------------------------------------------------------------------ */

/* The table's choice for pass on cv (what the launch functions above pick). */
static direct_cfg heuristic_cfg(const clcnn_device *dev, const cc_conv *cv, int pass) {
    if (pass == CLCNN_CONV_PASS_FORWARD)
        return flat_plane(dev, cv) ? pick_cfg(dev, cv->kpg, cv->p * cv->q) : forward_cfg(dev, cv);
    if (pass == CLCNN_CONV_PASS_BACKWARD_DATA)
        return flat_plane(dev, cv) ? pick_cfg(dev, cv->cpg, cv->h * cv->w) : data_cfg(dev, cv);
    return filter_cfg(dev, cv);
}

static int add_cfg(direct_cfg c, direct_cfg h, char out[][CC_CONV_CFG_MAX], int n, int max) {
    if (n >= max || c.tile_k < 1 || c.tile_k > 16 || c.tile_p < 1 || c.tile_p > 4 || c.tile_c < 1 ||
        c.tile_c > 16)
        return n;
    if (c.tile_k == h.tile_k && c.tile_p == h.tile_p && c.vec == h.vec && c.tile_c == h.tile_c)
        return n;
    char s[CC_CONV_CFG_MAX];
    snprintf(s, sizeof s, "%d %d %d %d", c.tile_k, c.tile_p, c.vec, c.tile_c);
    for (int i = 0; i < n; i++)
        if (!strcmp(out[i], s)) return n;
    memcpy(out[n], s, sizeof s);
    return n + 1;
}

/* Near the table: half / double TILE_K, the other TILE_P and VEC, and (backward filter)
 * the neighbouring TILE_C; exhaustive: every TILE_K {4, 8, 16} x TILE_P {2, 4} x VEC
 * {8, 16} (x TILE_C {1, 4, 16} for the filter gradient) up to max. */
int cc_conv2d_direct_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                    int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    direct_cfg h = heuristic_cfg(dev, cv, pass), c;
    int n = 0, filter = pass == CLCNN_CONV_PASS_BACKWARD_FILTER;
    if (exhaustive) {
        static const int ks[] = {4, 8, 16}, ps[] = {2, 4}, vs[] = {8, 16}, cs[] = {1, 4, 16};
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 2; b++)
                for (int v = 0; v < 2; v++)
                    for (int t = 0; t < (filter ? 3 : 1); t++)
                        n = add_cfg((direct_cfg){ks[a], ps[b], vs[v], filter ? cs[t] : h.tile_c}, h,
                                    out, n, max);
        return n;
    }
    c = h, c.tile_k = h.tile_k * 2, n = add_cfg(c, h, out, n, max);
    c = h, c.tile_k = h.tile_k / 2, n = add_cfg(c, h, out, n, max);
    c = h, c.tile_p = h.tile_p == 2 ? 4 : 2, n = add_cfg(c, h, out, n, max);
    c = h, c.vec = h.vec == 16 ? 8 : 16, n = add_cfg(c, h, out, n, max);
    if (filter) {
        c = h, c.tile_c = h.tile_c >= 16 ? 4 : h.tile_c * 4, n = add_cfg(c, h, out, n, max);
        c = h, c.tile_c = h.tile_c > 1 ? h.tile_c / 4 : 1, n = add_cfg(c, h, out, n, max);
    }
    return n;
}
