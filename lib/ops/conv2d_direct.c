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

typedef struct direct_cfg {
    int tile_k, tile_p, vec, tile_c;
} direct_cfg;

static int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

/* Work-group size along dim 0 (the spatial tiles). */
static size_t lws0(const clcnn_device *dev) {
    return dev->info.type == CLCNN_DEVICE_GPU ? 64 : 8;
}

static void cfg_defines(const direct_cfg *cfg, char *buf, size_t cap) {
    snprintf(buf, cap, "TILE_K=%d TILE_P=%d VEC=%d TILE_C=%d", cfg->tile_k, cfg->tile_p, cfg->vec,
             cfg->tile_c);
}

/* Geometry arguments shared by the three kernels, in kernel order. */
#define GEOM_ARGS(cv)                                                                              \
    CC_ARG_INT((cv)->n), CC_ARG_INT((cv)->c), CC_ARG_INT((cv)->h), CC_ARG_INT((cv)->w),            \
        CC_ARG_INT((cv)->k), CC_ARG_INT((cv)->p), CC_ARG_INT((cv)->q), CC_ARG_INT((cv)->r),        \
        CC_ARG_INT((cv)->s), CC_ARG_INT((cv)->sh), CC_ARG_INT((cv)->sw), CC_ARG_INT((cv)->ph),     \
        CC_ARG_INT((cv)->pw), CC_ARG_INT((cv)->dh), CC_ARG_INT((cv)->dw), CC_ARG_INT((cv)->groups)

/* Forward: TILE_K output channels share every input load, TILE_P x VEC outputs share
 * every weight load. Few channels per group (depthwise) -> one channel, more rows. */
static direct_cfg forward_cfg(const cc_conv *cv) {
    direct_cfg cfg = {.tile_k = 8, .tile_p = 2, .vec = 8, .tile_c = 4};
    if (cv->kpg < 8) cfg.tile_k = cv->kpg >= 3 ? 4 : 1;
    if (cfg.tile_k == 1) cfg.tile_p = 4;
    if (cv->q <= 4) cfg.vec = 4;
    return cfg;
}

clcnn_status cc_conv2d_direct_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                      const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y,
                                      int act) {
    direct_cfg cfg = forward_cfg(cv);
    char defs[128];
    cfg_defines(&cfg, defs, sizeof defs);
    size_t tiles = (size_t)ceil_div(cv->p, cfg.tile_p) * (size_t)ceil_div(cv->q, cfg.vec);
    size_t gws[3] = {tiles, (size_t)cv->groups * (size_t)ceil_div(cv->kpg, cfg.tile_k),
                     (size_t)cv->n};
    size_t lws[3] = {lws0(dev), 1, 1};
    return cc_launch(dev, "conv2d_direct", defs, "conv2d_direct_fwd", 3, gws, lws,
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                             CC_ARG_MEM(b ? b->storage->mem : w->storage->mem),
                             CC_ARG_INT(b ? b->offset : 0), CC_ARG_INT(b != NULL),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), GEOM_ARGS(cv),
                             CC_ARG_INT(act), CC_ARG_FLOAT(CC_CONV_LEAKY_ALPHA)));
}

/* Backward data: TILE_C input channels x VEC columns per work-item. */
static direct_cfg data_cfg(const cc_conv *cv) {
    direct_cfg cfg = {.tile_k = 4, .tile_p = 2, .vec = 8, .tile_c = 8};
    if (cv->cpg < 8) cfg.tile_c = cv->cpg >= 3 ? 4 : 1;
    if (cv->w <= 4) cfg.vec = 4;
    return cfg;
}

clcnn_status cc_conv2d_direct_backward_data(clcnn_device *dev, const cc_conv *cv,
                                            const clcnn_tensor *dy, const clcnn_tensor *w,
                                            clcnn_tensor *dx) {
    direct_cfg cfg = data_cfg(cv);
    char defs[128];
    cfg_defines(&cfg, defs, sizeof defs);
    size_t gws[3] = {(size_t)cv->h * (size_t)ceil_div(cv->w, cfg.vec),
                     (size_t)cv->groups * (size_t)ceil_div(cv->cpg, cfg.tile_c), (size_t)cv->n};
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
static direct_cfg filter_cfg(const cc_conv *cv) {
    direct_cfg cfg = {.tile_k = 4, .tile_p = 1, .vec = 8, .tile_c = 4};
    if (cv->kpg < 4) cfg.tile_k = 1;
    if (cv->cpg < 4) cfg.tile_c = 1;
    if (cv->q < 8) cfg.vec = 4;
    return cfg;
}

clcnn_status cc_conv2d_direct_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *x, const clcnn_tensor *dy,
                                              clcnn_tensor *dw) {
    direct_cfg cfg = filter_cfg(cv);
    char defs[128];
    cfg_defines(&cfg, defs, sizeof defs);
    size_t rs = (size_t)cv->r * cv->s;
    size_t taps = (size_t)ceil_div(cv->cpg, cfg.tile_c) * rs;
    size_t ktiles = (size_t)cv->groups * (size_t)ceil_div(cv->kpg, cfg.tile_k);
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
    int per = ceil_div(cv->n, splits);
    splits = ceil_div(cv->n, per);

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
