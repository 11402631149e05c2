/* Implicit-GEMM conv2d, forward: host side of cl/conv2d_implicit.cl. Shapes were
 * checked by lib/ops/conv2d.c.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, r, s); y (n, k, p, q); cpg = c/groups,
 * kpg = k/groups, K = cpg*r*s (the reduction of one output).
 *
 * Two launches: the weights transposed to (groups, K, mp) into a pool buffer (mp = kpg
 * rounded up to TM), then the GEMM kernel, which packs the im2col columns of its tiles
 * of 16 output positions into strips of local memory and multiplies every output
 * channel of its range with them (no im2col workspace). The parameters:
 *   TM (define)  output channels per register block: 16 on CPUs (16 float16
 *                accumulators of the 32 AVX-512 registers), 2 on GPUs (registers are
 *                per lane there);
 *   VW (define)  16, 8 or 4 columns per row segment: 16/VW rows x VW columns per tile,
 *                whichever wastes the fewest lanes on this output width (ties: wider);
 *   plane        for 1x1 stride-1 unpadded kernels the 16 lanes are 16 consecutive
 *                positions of the plane (no lanes wasted on short rows);
 *   nt           tiles per work-item: 1, or up to 4 when a group's weights exceed 512 KB
 *                (each block of weights is then used for several tiles while cached);
 *   cc           input channels per chunk: all of them when their strips fit (up to
 *                1024 rows x 64 bytes per strip on a CPU, where local memory is ordinary
 *                cached memory, and half the local memory per work-group), else equal
 *                chunks of whole channels;
 *   m_per        the output channels of a work-item: all of the group's unless there
 *                are too few work-items to keep the device busy, then ranges of TM
 *                multiples.
 * So a network compiles at most 3 programs (VW 16, 8, 4). Backward data with stride 1
 * runs the same kernels on the transposed convolution (cc_conv2d_implicit_backward_data).
 * Measured speeds: the comment of pick_algo() in lib/ops/conv2d.c. */
#include "conv2d_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct implicit_cfg {
    int tm, vw, lws, kc_max, nt; /* nt 0: choose */
} implicit_cfg;

static int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

static int is_pointwise(const cc_conv *cv) {
    return cv->r == 1 && cv->s == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
}

/* Lanes of the tiles that hold an output: (p*q) / (tiles * 16). */
static double lane_use(const cc_conv *cv, int vw) {
    int tr = 16 / vw;
    double tiles = (double)ceil_div(cv->p, tr) * ceil_div(cv->q, vw);
    return (double)cv->p * cv->q / (tiles * 16.0);
}

static implicit_cfg pick_cfg(const clcnn_device *dev, const cc_conv *cv) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    implicit_cfg cfg = {.tm = gpu ? 2 : 16, .vw = 16, .lws = gpu ? 16 : 4, .kc_max = 1024};
    if (!is_pointwise(cv)) {
        /* a narrower segment only when it uses clearly more lanes */
        double best = lane_use(cv, 16);
        for (int vw = 8; vw >= 4; vw /= 2) {
            double u = lane_use(cv, vw);
            if (u > best + 0.04) {
                best = u;
                cfg.vw = vw;
            }
        }
    }
    /* Development switch: $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC [NT]" overrides the
     * choice. */
    const char *e = getenv("CLCNN_CONV_IMPLICIT_CFG");
    int tm, vw, lws, kc, nt = 0;
    int got = e ? sscanf(e, "%d %d %d %d %d", &tm, &vw, &lws, &kc, &nt) : 0;
    if (got >= 4 && tm >= 1 && tm <= 32 && (vw == 16 || vw == 8 || vw == 4) && lws >= 1 &&
        lws <= 256 && kc >= 1 && nt >= 0 && nt <= 64)
        cfg = (implicit_cfg){tm, vw, lws, kc, nt};
    return cfg;
}

/* y = act(conv(x, w) + b) for the geometry cv; flip: w holds the weights of the
 * convolution that cv transposes (backward data, see implicit_weights). */
static clcnn_status run(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                        const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y, int act,
                        int flip) {
    implicit_cfg cfg = pick_cfg(dev, cv);
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    int plane = is_pointwise(cv);
    int rs = cv->r * cv->s, K = cv->cpg * rs;
    /* The weights transposed to (groups, K, mp), channels padded to a multiple of TM:
     * a block of TM channels is then TM consecutive floats of one reduction row. */
    int mp = ceil_div(cv->kpg, cfg.tm) * cfg.tm;
    size_t wfloats = (size_t)cv->groups * (size_t)K * (size_t)mp;
    CC_RETURN_IF(wfloats > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: the transposed weights (%zu floats) are too large",
                 wfloats);

    int tr = 16 / cfg.vw;
    size_t tpi = plane ? (size_t)ceil_div(cv->p * cv->q, 16)
                       : (size_t)ceil_div(cv->p, tr) * (size_t)ceil_div(cv->q, cfg.vw);
    size_t tiles = (size_t)cv->n * tpi;
    CC_RETURN_IF(tiles > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: %zu output tiles are too many", tiles);

    /* About 16 work-items per compute unit keep a CPU busy (64 x lws on a GPU). */
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) *
                  (gpu ? 64 * (size_t)cfg.lws : 16);
    /* Tiles per work-item: when a group's weights outgrow the cache (512 KB: 3x3 layers
     * with a few hundred channels), every tile of a work-item reuses each block of them,
     * up to 4 tiles while enough work-items remain (on a 14x14 layer with 256 channels,
     * 4 tiles: 1.4x). */
    int nt = cfg.nt;
    if (!nt) {
        nt = 1;
        if (!gpu && (size_t)K * mp * sizeof(float) > ((size_t)512 << 10))
            for (nt = 4; nt > 1; nt--)
                if ((tiles + nt - 1) / nt * (size_t)cv->groups >= want) break;
    }
    size_t items = (tiles + nt - 1) / nt;

    /* Chunks of whole input channels (cc channels = cc*r*s rows of B) whose strips, nt
     * per work-item, fit half the local memory of a work-group; a kernel with more taps
     * than that still needs one channel's r*s rows per strip: fewer work-items per group
     * then, and a clear error when even that is more than the device's local memory (a
     * 32x32 kernel on a 48 KB GPU). */
    size_t local = dev->info.local_mem_bytes ? (size_t)dev->info.local_mem_bytes : 32768;
    size_t row_bytes = 16 * sizeof(float);
    size_t fit_rows = local / 2 / ((size_t)cfg.lws * nt * row_bytes);
    int kc_max = (size_t)cfg.kc_max < fit_rows ? cfg.kc_max : (int)fit_rows;
    int cc_max = kc_max / rs < 1 ? 1 : kc_max / rs;
    int chunks = ceil_div(cv->cpg, cc_max);
    int cc = ceil_div(cv->cpg, chunks);
    size_t wi_bytes = (size_t)nt * cc * rs * row_bytes;
    CC_RETURN_IF(wi_bytes > local, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: a %dx%d kernel needs %zu bytes of local memory per "
                 "work-item, the device has %zu (use direct or gemm)",
                 cv->r, cv->s, wi_bytes, local);
    if ((size_t)cfg.lws * wi_bytes > local) cfg.lws = (int)(local / wi_bytes);

    /* Split the channels of a group when the work-items alone leave the device idle. */
    size_t have = items * (size_t)cv->groups;
    int mblocks = ceil_div(cv->kpg, cfg.tm), msplit = 1;
    if (have < want) {
        size_t sp = (want + have - 1) / have;
        msplit = sp > (size_t)mblocks ? mblocks : (int)sp;
    }
    int m_per = ceil_div(mblocks, msplit) * cfg.tm;
    if (m_per > cv->kpg) m_per = cv->kpg;
    msplit = ceil_div(cv->kpg, m_per);

    char defs[64];
    snprintf(defs, sizeof defs, "TM=%d VW=%d", cfg.tm, cfg.vw);
    /* both kernels built before anything is enqueued: a build failure writes nothing */
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", defs, "implicit_weights"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", defs, "conv2d_implicit_fwd"));
    clcnn_tensor *wt = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){wfloats}, &wt));
    clcnn_status st = cc_launch(
        dev, "conv2d_implicit", defs, "implicit_weights", 1, (size_t[]){wfloats}, (size_t[]){64},
        CC_ARGS(CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset), CC_ARG_MEM(wt->storage->mem),
                CC_ARG_INT(wt->offset), CC_ARG_INT(cv->kpg), CC_ARG_INT(cv->cpg), CC_ARG_INT(cv->r),
                CC_ARG_INT(cv->s), CC_ARG_INT(mp), CC_ARG_INT(cv->groups), CC_ARG_INT(flip)));
    size_t gws[2] = {items, (size_t)cv->groups * (size_t)msplit};
    size_t lws[2] = {(size_t)cfg.lws, 1};
    if (st == CLCNN_OK)
        st = cc_launch(
            dev, "conv2d_implicit", defs, "conv2d_implicit_fwd", 2, gws, lws,
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                    CC_ARG_MEM(wt->storage->mem), CC_ARG_INT(wt->offset), CC_ARG_INT(mp),
                    CC_ARG_MEM(b ? b->storage->mem : wt->storage->mem),
                    CC_ARG_INT(b ? b->offset : 0), CC_ARG_INT(b != NULL),
                    CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(cv->n),
                    CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(cv->k),
                    CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s),
                    CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw),
                    CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw), CC_ARG_INT(cv->groups), CC_ARG_INT(act),
                    CC_ARG_FLOAT(CC_CONV_LEAKY_ALPHA), CC_ARG_INT(plane), CC_ARG_INT(cc),
                    CC_ARG_INT(m_per), CC_ARG_INT(nt), CC_ARG_LOCAL((size_t)cfg.lws * wi_bytes)));
    clcnn_tensor_free(wt); /* the in-order queue runs the kernels before any reuse */
    return st;
}

clcnn_status cc_conv2d_implicit_forward(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                        const clcnn_tensor *w, const clcnn_tensor *b,
                                        clcnn_tensor *y, int act) {
    return run(dev, cv, x, w, b, y, act, 0);
}

int cc_conv2d_implicit_supports_data(const cc_conv *cv) {
    return cv->sh == 1 && cv->sw == 1;
}

/* Stride 1: dx (n, c, h, w) = conv(dy (n, k, p, q), w'), w' (c, kpg, r, s) the flipped
 * weights with the channel dims swapped per group, padding dh*(r-1) - ph (and likewise
 * for the columns), dilation unchanged; its output is h x w again. */
clcnn_status cc_conv2d_implicit_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx) {
    cc_conv t = {
        .n = cv->n,
        .c = cv->k,
        .h = cv->p,
        .w = cv->q,
        .k = cv->c,
        .r = cv->r,
        .s = cv->s,
        .p = cv->h,
        .q = cv->w,
        .sh = 1,
        .sw = 1,
        .ph = cv->dh * (cv->r - 1) - cv->ph,
        .pw = cv->dw * (cv->s - 1) - cv->pw,
        .dh = cv->dh,
        .dw = cv->dw,
        .groups = cv->groups,
        .cpg = cv->kpg,
        .kpg = cv->cpg,
    };
    return run(dev, &t, dy, w, NULL, dx, CLCNN_ACT_NONE, 1);
}
