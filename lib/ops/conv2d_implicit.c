/* Implicit-GEMM conv2d: host side of cl/conv2d_implicit.cl, the parameters and plans of
 * its GEMMs, the forward and the tuner's candidates (backward data, which runs the same
 * GEMMs: lib/ops/conv2d_implicit_data.c). Shapes were checked by lib/ops/conv2d.c.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, r, s); y (n, k, p, q); cpg = c/groups,
 * kpg = k/groups, K = cpg*r*s (the reduction of one output).
 *
 * Two launches: the weights transposed to (groups, mp/TM, K, TM) into a pool buffer (mp = kpg
 * rounded up to TM; forward: once, when prepared, cc_conv2d_fwd_impl), then per run the
 * GEMM kernel, which packs the im2col columns of its tiles
 * of 16 output positions into strips of local memory and multiplies every output
 * channel of its range with them (no im2col workspace). The parameters:
 *   TM (define)  output channels per register block: on AVX-512 CPUs 16 (16 float16
 *                accumulators of the 32 registers), 8 or 6 where TN is above 1; on CPUs
 *                with 16 vector registers what fits them (AVX2: 6,
 *                cc_cpu_f16_accumulators), 2 on GPUs (registers are per lane there);
 *   VW (define)  16, 8 or 4 columns per row segment: 16/VW rows x VW columns per tile,
 *                whichever wastes the fewest lanes on this output width (ties: wider);
 *   TN (define)  tiles per register block: 1, on AVX-512 CPUs 3 (with TM 8) or 4 (with
 *                TM 6, weights over 512 KB) for pointwise layers, and for the others
 *                (fused depthwise + 1x1 pairs too) 3 or 2 (with TM 8) where there are
 *                enough tiles, see heuristic_cfg;
 *   plane        for 1x1 stride-1 unpadded kernels the 16 lanes are 16 consecutive
 *                positions of the plane (no lanes wasted on short rows); on CPUs also
 *                for strided ones whose rows would waste lanes, on AVX-512 CPUs for all
 *                strided ones (is_strided_pointwise) and for every other kernel whose
 *                rows would leave lanes empty (7x7, 13x13, 14x14 outputs: each lane's
 *                taps gathered); parameter strings ask for it with VW 0;
 *   nt           tiles per work-item: 1, or up to 4 when a group's weights exceed 512 KB
 *                (each block of weights is then used for several tiles while cached),
 *                up to 48 with TN above 1 while enough work-items remain (runs of each
 *                plane instead of single tiles), rounded up to a multiple of TN;
 *   cc           input channels per chunk: all of them when their strips fit (up to
 *                1024 rows x 64 bytes per strip on a CPU, where local memory is ordinary
 *                cached memory, and half the local memory per work-group), else equal
 *                chunks of whole channels;
 *   m_per        the output channels of a work-item: all of the group's unless there
 *                are too few work-items to keep the device busy, then ranges of TM
 *                multiples.
 * So a network compiles at most 5 programs (VW 16, 8, 4; pointwise TN 3 and 4).
 * Parameters: heuristic_cfg, unless the tuner, $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC
 * [NT [TN]]" (NT 0: choose; VW 0: plane tiles) or the tuning file's "params" (cc_conv_cfg,
 * keyed by the pass and the layer's own geometry, also for backward data) give a valid
 * string (parse_cfg); a string whose plan does not fit a GEMM (local memory) leaves that
 * GEMM on the heuristic, and one string applies to every phase GEMM of strided backward
 * data. cc_conv2d_implicit_cfg_candidates lists the tuner's candidates.
 * Backward data runs the same kernels: with stride 1 on the transposed convolution,
 * with strides up to 32 on the stride-1 convolutions of its phase decomposition
 * followed by a scatter into dx (lib/ops/conv2d_implicit_data.c).
 * Measured speeds: the comment of pick_algo() in lib/ops/conv2d.c. */
#include "conv2d_implicit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1x1, stride 1, no padding, and (for the phase convolutions of backward data, whose
 * output may be larger than their input) an output plane as large as the input's. */
static int is_pointwise(const cc_conv *cv) {
    return cv->r == 1 && cv->s == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0 &&
           cv->p == cv->h && cv->q == cv->w;
}

/* Lanes of the tiles that hold an output: (p*q) / (tiles * 16). */
static double lane_use(const cc_conv *cv, int vw) {
    int tr = 16 / vw;
    double tiles = (double)cc_ceil_div(cv->p, tr) * cc_ceil_div(cv->q, vw);
    return (double)cv->p * cv->q / (tiles * 16.0);
}

/* A 1x1 kernel without padding with strides on a CPU, where row-segment tiles would
 * leave more than a fifth of their lanes empty (7x7 outputs: a quarter): plane tiles,
 * each lane packed from its own input position (pack_rows). Elsewhere the segments'
 * vector loads pack faster than one load per lane, and win, except on AVX-512 CPUs
 * (32 vector registers: no cc_cpu_f16_accumulators), where plane tiles come in runs of
 * up to 48 per work-item (plan_with) and were faster on every strided 1x1 layer of
 * ResNet-50 (the commit that made it so has the numbers). */
static int is_strided_pointwise(const clcnn_device *dev, const cc_conv *cv) {
    if (dev->info.type == CLCNN_DEVICE_GPU || cv->r != 1 || cv->s != 1 || cv->ph != 0 ||
        cv->pw != 0 || (cv->sh == 1 && cv->sw == 1))
        return 0;
    if (cc_cpu_f16_accumulators(dev, 1) == 0) return 1;
    double best = 0;
    for (int vw = 16; vw >= 4; vw /= 2)
        if (lane_use(cv, vw) > best) best = lane_use(cv, vw);
    return best < 0.8;
}

/* Output tiles of 16 lanes: plane tiles run on from one image into the next (a 7x7 plane:
 * 49 positions in 3.06 tiles instead of 4); row tiles are 16/vw rows x vw columns. */
static size_t tile_count(const cc_conv *cv, int plane, int vw) {
    return plane ? ((size_t)cv->n * cv->p * cv->q + 15) / 16
                 : (size_t)cv->n * (size_t)cc_ceil_div(cv->p, 16 / vw) *
                       (size_t)cc_ceil_div(cv->q, vw);
}

/* Work-items that keep the device busy: about 16 per compute unit on a CPU, 64 work-groups
 * of lws per compute unit on a GPU. */
static size_t wanted_items(const clcnn_device *dev, int lws) {
    size_t cu = dev->info.compute_units ? dev->info.compute_units : 1;
    return dev->info.type == CLCNN_DEVICE_GPU ? cu * 64 * (size_t)lws : cu * 16;
}

/* The heuristic for the GEMM geometry cv (nt 0: plan_with chooses); dwf: cv is a fused
 * depthwise + 1x1 launch (row tiles, VW by lane use). */
static implicit_cfg heuristic_cfg(const clcnn_device *dev, const cc_conv *cv, int dwf) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    implicit_cfg cfg = {.tm = gpu ? 2 : 16, .vw = 16, .lws = gpu ? 16 : 4, .kc_max = 1024, .tn = 1};
    /* CPUs with 16 vector registers (AVX2): as many float16 accumulators as fit beside
     * one strip vector, TN 1 (AVX2: TM 6, 12 of the 16 registers; TM 16 and TM 8 x TN 3
     * spill there: the commit that set this has the numbers) */
    int acc = gpu ? 0 : cc_cpu_f16_accumulators(dev, 1);
    if (acc) cfg.tm = acc;
    if (!dwf && is_pointwise(cv) && !gpu) {
        if (acc) return cfg; /* (VW is unused with plane lanes) */
        /* The lanes are consecutive positions of the plane, the packing is a plain copy
         * and the GEMM loop dominates: TN tiles share each broadcast weight (24 float16
         * accumulators of the 32 registers: per reduction step TN + TM loads for 24
         * FMAs instead of 17 for 16). TM 8 x TN 3 where the weights stay in the cache;
         * TM 6 x TN 4 where they do not (a block of weights serves more tiles per fetch;
         * the commits that set these have the numbers). */
        size_t wbytes = (size_t)cv->cpg * cv->kpg * sizeof(float);
        int big = wbytes > ((size_t)512 << 10);
        cfg.tm = big ? 6 : 8;
        cfg.tn = big ? 4 : 3;
        /* Fewer than two tiles per work-item of the 16 per compute unit that keep a CPU
         * busy (7x7 planes at batch 8 to 12, 14x14 ones at batch 2 to 4): TM 8 x TN 2. The
         * blocks above then left a work-item one or two register blocks of tiles and
         * split the output channels 3-5 ways, each split packing the same input again
         * (the commit that set this has the numbers). */
        if (tile_count(cv, 1, 16) < 2 * wanted_items(dev, cfg.lws)) {
            cfg.tm = 8;
            cfg.tn = 2;
        }
    } else {
        /* a narrower segment only when it uses clearly more lanes */
        double best = lane_use(cv, 16);
        for (int vw = 8; vw >= 4; vw /= 2) {
            double u = lane_use(cv, vw);
            if (u > best + 0.04) {
                best = u;
                cfg.vw = vw;
            }
        }
        /* CPUs with 32 vector registers (AVX-512): plane tiles (VW 0: 16 consecutive
         * positions of the flattened plane, each lane's taps gathered) where the best row
         * segments leave more than a tenth of the lanes empty: 1.06-1.19x on the 7x7,
         * 13x13 and 14x14 outputs of ResNet-50, AlexNet and VGG-16 (lane use 0.77-0.875);
         * at 0.93-0.97 (AlexNet's 27x27 and 55x55) the gathers cost more than the lanes
         * gained (0.96-0.98x), and where segments fill every lane about 5 % (the commits
         * that set this have the numbers). */
        if (!gpu && !acc && !dwf && !is_strided_pointwise(dev, cv) && best < 0.9) cfg.vw = 0;
        /* CPUs with 32 vector registers (AVX-512): TM 8 x TN 3, 24 accumulators sharing
         * each broadcast weight (11 loads per 24 FMAs instead of 17 per 16), where there
         * are tiles for it: at least 1.5 per work-item of the 16 per compute unit that
         * keep a CPU busy; TM 8 x TN 2 from 0.75 per work-item (ResNet-50's 7x7 layers
         * at batch 8); below that (the same layers at batch 4) TM 16 x TN 1. Fused
         * depthwise + 1x1 pairs too: faster on all of MobileNet-V2's, whose 1x1 layers
         * of 24 channels TM 16 padded to 32 */
        if (!gpu && !acc) {
            size_t tiles =
                tile_count(cv, !dwf && (cfg.vw == 0 || is_strided_pointwise(dev, cv)), cfg.vw);
            size_t want = wanted_items(dev, cfg.lws);
            if (4 * tiles >= 3 * want) {
                cfg.tm = 8;
                cfg.tn = 2 * tiles >= 3 * want ? 3 : 2;
            }
        }
    }
    return cfg;
}

/* "TM VW LWS KC [NT [TN]]" (NT 0: choose; TN default 1) into *out; 0 when s is not one
 * or asks for a work-group larger than dev allows. */
static int parse_cfg(const clcnn_device *dev, const char *s, implicit_cfg *out) {
    int f[6] = {0, 0, 0, 0, 0, 1}, n = 0, len;
    if (!s) return 0;
    const char *p = s;
    while (n < 6 && sscanf(p, "%d%n", &f[n], &len) == 1) {
        n++;
        p += len;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (n < 4 || *p != '\0') return 0;
    size_t max_wg = dev->info.max_work_group_size ? dev->info.max_work_group_size : 256;
    if (f[0] < 1 || f[0] > 32 || (f[1] != 16 && f[1] != 8 && f[1] != 4 && f[1] != 0) || f[2] < 1 ||
        f[2] > 256 || (size_t)f[2] > max_wg || f[3] < 1 || f[4] < 0 || f[4] > 64 || f[5] < 1 ||
        f[5] > 4)
        return 0;
    *out = (implicit_cfg){f[0], f[1], f[2], f[3], f[4], f[5]};
    return 1;
}

/* Input channels per chunk of the reduction (rs rows each) for nt tiles per work-item: all
 * of a group's when their strips fit (at most kc_max rows, and half the local memory per
 * work-group: on GPUs for lws work-items, on CPUs for one), else equal chunks of whole
 * channels, at least one. */
static int chunk_channels(const clcnn_device *dev, const cc_conv *cv, implicit_cfg cfg, int rs,
                          int nt) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    size_t fit_rows = cc_local_mem_bytes(dev) / 2 /
                      ((size_t)(gpu ? cfg.lws : 1) * (size_t)nt * 16 * sizeof(float));
    int kc_max = (size_t)cfg.kc_max < fit_rows ? cfg.kc_max : (int)fit_rows;
    int cc_max = kc_max / rs < 1 ? 1 : kc_max / rs;
    return cc_ceil_div(cv->cpg, cc_ceil_div(cv->cpg, cc_max));
}

/* The plan of the GEMM geometry cv with the parameters cfg; an error when they do not
 * fit (too large, too much local memory). dwf: cv is the launch geometry of a fused
 * depthwise + 1x1 pair (DWF: row tiles, one reduction row per input channel). */
static clcnn_status plan_with(const clcnn_device *dev, const cc_conv *cv, implicit_cfg cfg, int dwf,
                              gemm_plan *pl) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    int plane = !dwf && (cfg.vw == 0 || is_pointwise(cv) || is_strided_pointwise(dev, cv));
    int rs = dwf ? 1 : cv->r * cv->s, K = cv->cpg * rs;
    /* The weights transposed to (groups, mp/TM, K, TM), channels padded to a multiple of TM:
     * a block of TM channels is then TM consecutive floats of one reduction row. */
    int mp = cc_ceil_div(cv->kpg, cfg.tm) * cfg.tm;
    size_t wfloats = (size_t)cv->groups * (size_t)K * (size_t)mp;
    CC_RETURN_IF(wfloats > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: the transposed weights (%zu floats) are too large",
                 wfloats);

    size_t tiles = tile_count(cv, plane, cfg.vw);
    CC_RETURN_IF(tiles > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: %zu output tiles are too many", tiles);

    size_t want = wanted_items(dev, cfg.lws);
    /* Tiles per work-item: when a group's weights outgrow the cache (512 KB: 3x3 layers
     * with a few hundred channels), every tile of a work-item reuses each block of them,
     * up to 4 tiles while enough work-items remain. With 16 vector registers (TM 6,
     * cc_cpu_f16_accumulators) up to 3 tiles while 8 work-items per compute unit remain
     * (the 7x7 layers of ResNet-50 at batch 8, 32 tiles, get NT 2 instead of 1; NT 4
     * instead of 3 on its 14x14 layers was no gain). The commits that set these have the
     * numbers. */
    int nt = cfg.nt;
    if (!nt) {
        int narrow = !gpu && cc_cpu_f16_accumulators(dev, 1) > 0;
        size_t enough = narrow ? want / 2 : want;
        nt = 1;
        if (!gpu && (size_t)K * mp * sizeof(float) > ((size_t)512 << 10))
            for (nt = narrow ? 3 : 4; nt > 1; nt--)
                if ((tiles + nt - 1) / nt * (size_t)cv->groups >= enough) break;
        /* Expansion layers with 16 vector registers (at least 6x the channels out as in;
         * 1x1, or a reduction of at most 32 as in 3-channel 3x3 stems): 4 tiles per
         * work-item, the output channels split below when that leaves too few
         * work-items. Their time goes to writing the wide output, and a work-item then
         * writes 4 consecutive tiles of each plane (faster on MobileNet-V2's expansions and
         * stem and VGG-16's conv1_1; slower on MobileNet's projections, its 4x head and the
         * 7x7 and 11x11 stems of ResNet-50 and AlexNet: the commit that set this has the
         * numbers). */
        if (narrow && cv->kpg >= 6 * cv->cpg && (plane || K <= 32)) nt = 4;
        /* Register blocks of TN tiles (AVX-512): up to 48 consecutive tiles per
         * work-item while enough work-items remain. The pack then reads, and the
         * epilogue writes, runs of up to 3 KB of each plane instead of 192 bytes of each
         * of hundreds of planes, which the hardware prefetchers do not follow; the
         * large-plane layers of ResNet-50 and MobileNet-V2 gained most, 24 tiles lost to
         * 48 (the commits that set this have the numbers). Only as many as leave the
         * reduction in the chunks it had: the strips must not split it further (partial
         * sums kept in y, and other sums than the same layer's with fewer tiles or the
         * fused depthwise + 1x1 kernel's, whose bytes a plan keeps). */
        if (!gpu && cfg.tn > 1) {
            int base = cc_ceil_div(nt, cfg.tn) * cfg.tn;
            int cc0 = chunk_channels(dev, cv, cfg, rs, base);
            for (int more = 48 / cfg.tn * cfg.tn; more > base; more -= cfg.tn)
                if ((tiles + more - 1) / more * (size_t)cv->groups >= want &&
                    chunk_channels(dev, cv, cfg, rs, more) == cc0) {
                    nt = more;
                    break;
                }
        }
    }
    /* whole register blocks of TN tiles per work-item */
    nt = cc_ceil_div(nt, cfg.tn) * cfg.tn;
    size_t items = (tiles + nt - 1) / nt;

    /* Chunks of whole input channels (cc channels = cc*r*s rows of B) whose strips, nt
     * per work-item, fit half the local memory of a work-group; a kernel with more taps
     * than that still needs one channel's r*s rows per strip: fewer work-items per group
     * then, and a clear error when even that is more than the device's local memory (a
     * 32x32 kernel on a 48 KB GPU). On CPUs the chunks are sized for one work-item and
     * the work-group shrinks to what fits: a work-group there is only a loop over its
     * work-items, while every chunk past the first stores and reloads the partial sums
     * (POCL's 512 KB with LWS 4 and 3 tiles per work-item cut ResNet-50's 1024-channel
     * 1x1 layers into 4 chunks). */
    size_t local = cc_local_mem_bytes(dev);
    size_t row_bytes = 16 * sizeof(float);
    int cc = chunk_channels(dev, cv, cfg, rs, nt);
    size_t wi_bytes = (size_t)nt * cc * rs * row_bytes;
    CC_RETURN_IF(wi_bytes > local, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: a %dx%d kernel needs %zu bytes of local memory per "
                 "work-item, the device has %zu (use direct or gemm)",
                 cv->r, cv->s, wi_bytes, local);
    if (!gpu && (size_t)cfg.lws * wi_bytes > local / 2)
        cfg.lws = wi_bytes > local / 2 ? 1 : (int)(local / 2 / wi_bytes);
    if ((size_t)cfg.lws * wi_bytes > local) cfg.lws = (int)(local / wi_bytes);

    /* Split the channels of a group when the work-items alone leave the device idle. */
    size_t have = items * (size_t)cv->groups;
    int mblocks = cc_ceil_div(cv->kpg, cfg.tm), msplit = 1;
    if (have < want) {
        size_t sp = (want + have - 1) / have;
        msplit = sp > (size_t)mblocks ? mblocks : (int)sp;
    }
    int m_per = cc_ceil_div(mblocks, msplit) * cfg.tm;
    if (m_per > cv->kpg) m_per = cv->kpg;
    msplit = cc_ceil_div(cv->kpg, m_per);
    /* CPUs: work-items one by one when groups of lws would leave fewer than 16 per compute
     * unit (the threads then run out of work unevenly: ResNet-50's 14x14 c256 k1024 layer
     * at batch 8 has 33 work-items; the commit that set this has the numbers); layers with
     * thousands of work-items keep their groups (POCL's cost per group). */
    if (!gpu && cfg.lws > 1 && items * (size_t)cv->groups * msplit < (size_t)cfg.lws * want)
        cfg.lws = 1;

    *pl = (gemm_plan){.cfg = cfg,
                      .plane = plane,
                      .mp = mp,
                      .nt = nt,
                      .cc = cc,
                      .m_per = m_per,
                      .msplit = msplit,
                      .items = items,
                      .wfloats = wfloats,
                      .local_bytes = (size_t)cfg.lws * wi_bytes};
    /* CPUs: a 1x1 output larger than half the last-level cache cannot stay there for the
     * next layer; its whole tiles are stored past the cache (non-temporal stores: no read
     * for ownership, no eviction of what the next layer reads; MobileNet-V2's 112x112
     * expansion on a CPU reporting 32 MB: the commit that set this has the numbers). */
    size_t ybytes = (size_t)cv->n * (size_t)cv->k * (size_t)cv->p * (size_t)cv->q * sizeof(float);
    int nts = !gpu && plane && dev->global_cache_bytes && ybytes > dev->global_cache_bytes / 2;
    /* DWF: a 3x3 or 5x5 depthwise kernel with dilation 1 and equal strides 1 or 2
     * (MobileNet's and EfficientNet's) is compiled in, its taps unrolled */
    int dwk = dwf && cv->r == cv->s && (cv->r == 3 || cv->r == 5) && cv->dh == 1 && cv->dw == 1 &&
                      cv->sh == cv->sw && (cv->sh == 1 || cv->sh == 2)
                  ? cv->r
                  : 0;
    /* CPUs: software prefetch (PF): with DWF of the depthwise input rows (see
     * conv2d_implicit_dwf.h), with plane tiles of each register block's epilogue lines */
    snprintf(pl->defs, sizeof pl->defs, "DWF=%d DWK=%d DWS=%d NTS=%d PF=%d TM=%d VW=%d TN=%d", dwf,
             dwk, dwk ? cv->sh : 0, nts, !gpu && (dwf || plane), cfg.tm, cfg.vw ? cfg.vw : 16,
             cfg.tn);
    return CLCNN_OK;
}

/* See conv2d_implicit.h. */
const char *cc_implicit_cfg_string(const clcnn_device *dev, int pass, const cc_conv *key,
                                   char tmp[CC_CONV_CFG_MAX]) {
    return cc_conv_cfg(dev, "CLCNN_CONV_IMPLICIT_CFG", pass, key, CLCNN_CONV_IMPLICIT_GEMM, tmp);
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_plan_gemm(const clcnn_device *dev, const cc_conv *cv, const char *s,
                                   gemm_plan *pl, int *used) {
    implicit_cfg f;
    *used = parse_cfg(dev, s, &f) && plan_with(dev, cv, f, 0, pl) == CLCNN_OK;
    return *used ? CLCNN_OK : plan_with(dev, cv, heuristic_cfg(dev, cv, 0), 0, pl);
}

/* See conv2d_implicit.h. */
void cc_implicit_act_defs(gemm_plan *pl, int act) {
    size_t used = strlen(pl->defs);
    const char *add = act == CLCNN_ACT_ID_SILU       ? " ACT_SILU=1"
                      : act == CC_IMPLICIT_RELU_GRAD ? " RGRAD=1"
                                                     : NULL;
    if (add && used < sizeof pl->defs) snprintf(pl->defs + used, sizeof pl->defs - used, "%s", add);
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_plan_dwf(const clcnn_device *dev, const cc_conv *cv, gemm_plan *pl) {
    return plan_with(dev, cv, heuristic_cfg(dev, cv, 1), 1, pl);
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_launch_dwf(clcnn_device *dev, const cc_conv *cv, const gemm_plan *pl,
                                    cl_mem x, size_t x_off, cl_mem wt, size_t wt_off,
                                    const cc_conv_epilogue *ep, const cc_implicit_dw *dwf, cl_mem y,
                                    size_t y_off) {
    static const cc_conv_epilogue none = {.act = CLCNN_ACT_NONE};
    if (!ep) ep = &none;
    const clcnn_tensor *b = ep->b, *z = ep->z, *mask = ep->mask;
    size_t gws[2] = {pl->items, (size_t)cv->groups * (size_t)pl->msplit};
    size_t lws[2] = {(size_t)pl->cfg.lws, 1};
    const clcnn_tensor *dww = dwf ? dwf->w : NULL, *dwb = dwf ? dwf->b : NULL;
    cc_arg common[] = {CC_ARG_MEM(x),           CC_ARG_INT(x_off),
                       CC_ARG_MEM(wt),          CC_ARG_INT(wt_off),
                       CC_ARG_INT(pl->mp),      CC_ARGS_OPT(b, wt),
                       CC_ARGS_OPT(z, wt),      CC_ARG_MEM(y),
                       CC_ARG_INT(y_off),       CC_ARG_INT(cv->n),
                       CC_ARG_INT(cv->c),       CC_ARG_INT(cv->h),
                       CC_ARG_INT(cv->w),       CC_ARG_INT(cv->k),
                       CC_ARG_INT(cv->p),       CC_ARG_INT(cv->q),
                       CC_ARG_INT(cv->r),       CC_ARG_INT(cv->s),
                       CC_ARG_INT(cv->sh),      CC_ARG_INT(cv->sw),
                       CC_ARG_INT(cv->ph),      CC_ARG_INT(cv->pw),
                       CC_ARG_INT(cv->dh),      CC_ARG_INT(cv->dw),
                       CC_ARG_INT(cv->groups),  CC_ARG_INT(ep->act),
                       CC_ARG_FLOAT(ep->alpha), CC_ARG_INT(pl->plane),
                       CC_ARG_INT(pl->cc),      CC_ARG_INT(pl->m_per),
                       CC_ARG_INT(pl->nt),      CC_ARG_LOCAL(pl->local_bytes)};
    /* DWF programs only: the depthwise layer's weights, bias and activation */
    cc_arg dw[] = {CC_ARG_MEM(dww ? dww->storage->mem : wt), CC_ARG_INT(dww ? dww->offset : 0),
                   CC_ARGS_OPT(dwb, wt), CC_ARG_INT(dwf ? dwf->act : 0),
                   CC_ARG_FLOAT(dwf ? dwf->alpha : 0)};
    /* RGRAD programs only: the ReLU's output */
    cc_arg rg[] = {CC_ARG_MEM(mask ? mask->storage->mem : wt), CC_ARG_INT(mask ? mask->offset : 0)};
    enum { NC = sizeof common / sizeof *common, ND = sizeof dw / sizeof *dw };
    enum { NR = sizeof rg / sizeof *rg };
    cc_arg args[NC + ND + NR];
    memcpy(args, common, sizeof common);
    int nargs = NC;
    if (dwf) {
        memcpy(args + nargs, dw, sizeof dw);
        nargs += ND;
    }
    if (mask) {
        memcpy(args + nargs, rg, sizeof rg);
        nargs += NR;
    }
    return cc_launch(dev, "conv2d_implicit", pl->defs, "conv2d_implicit_fwd", 2, gws, lws, args,
                     nargs);
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_launch(clcnn_device *dev, const cc_conv *cv, const gemm_plan *pl, cl_mem x,
                                size_t x_off, cl_mem wt, size_t wt_off, const cc_conv_epilogue *ep,
                                cl_mem y, size_t y_off) {
    return cc_implicit_launch_dwf(dev, cv, pl, x, x_off, wt, wt_off, ep, NULL, y, y_off);
}

/* f planned for cv (the parameters of pass for the layer key), its GEMM kernel built and
 * f->wt allocated but not filled. */
static clcnn_status plan_alloc(clcnn_device *dev, const cc_conv *cv, int pass, const cc_conv *key,
                               int act, implicit_fwd *f) {
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_implicit_cfg_string(dev, pass, key, tmp);
    int used;
    f->cv = *cv;
    f->wt = NULL;
    CC_TRY(cc_implicit_plan_gemm(dev, cv, e, &f->pl, &used));
    cc_implicit_act_defs(&f->pl, act);
    cc_conv_cfg_used(CLCNN_CONV_IMPLICIT_GEMM, used ? e : NULL);
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", f->pl.defs, "conv2d_implicit_fwd"));
    return clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){f->pl.wfloats}, &f->wt);
}

clcnn_status cc_conv2d_implicit_prepare_wt(clcnn_device *dev, const cc_conv *cv, void **state,
                                           clcnn_tensor **wt, int *tm, int *mp) {
    implicit_fwd *f = calloc(1, sizeof *f);
    CC_RETURN_IF(!f, CLCNN_ERR_OUT_OF_MEMORY, "conv2d implicit_gemm: out of host memory");
    clcnn_status st = plan_alloc(dev, cv, CLCNN_CONV_PASS_FORWARD, cv, CLCNN_ACT_ID_NONE, f);
    if (st != CLCNN_OK) {
        free(f);
        return st;
    }
    *state = f;
    *wt = f->wt;
    *tm = f->pl.cfg.tm;
    *mp = f->pl.mp;
    return CLCNN_OK;
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                 int flip, const cc_conv *key, int act, implicit_fwd *f) {
    CC_TRY(plan_alloc(dev, cv, flip ? CLCNN_CONV_PASS_BACKWARD_DATA : CLCNN_CONV_PASS_FORWARD, key,
                      act, f));
    return cc_implicit_fill_wt(dev, cv, w, flip, f);
}

/* See conv2d_implicit.h. */
clcnn_status cc_implicit_fill_wt(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                 int flip, implicit_fwd *f) {
    const gemm_plan *pl = &f->pl;
    /* both kernels built before anything is enqueued: a build failure writes nothing */
    clcnn_status bs = cc_conv2d_prepare(dev, "conv2d_implicit", pl->defs, "implicit_weights");
    if (bs != CLCNN_OK) {
        clcnn_tensor_free(f->wt);
        f->wt = NULL;
        return bs;
    }
    /* WKB = 16 reduction rows of one block of TM channels per work-item (the .cl file) */
    size_t gws[2] = {(size_t)cc_ceil_div(cv->cpg * cv->r * cv->s, 16),
                     (size_t)cv->groups * (size_t)(pl->mp / pl->cfg.tm)};
    clcnn_status st = cc_launch(
        dev, "conv2d_implicit", pl->defs, "implicit_weights", 2, gws, (size_t[]){8, 1},
        CC_ARGS(CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset), CC_ARG_MEM(f->wt->storage->mem),
                CC_ARG_INT(f->wt->offset), CC_ARG_INT(cv->kpg), CC_ARG_INT(cv->cpg),
                CC_ARG_INT(cv->r), CC_ARG_INT(cv->s), CC_ARG_INT(pl->mp), CC_ARG_INT(cv->groups),
                CC_ARG_INT(flip)));
    if (st != CLCNN_OK) {
        clcnn_tensor_free(f->wt);
        f->wt = NULL;
    }
    return st;
}

static void fwd_release(void *state) {
    implicit_fwd *f = state; /* the in-order queue runs the kernels before any reuse */
    clcnn_tensor_free(f->wt);
    clcnn_tensor_free(f->stem.w);
}

/* The forward: the few-channel kernel (lib/ops/conv2d_stem.c) when the parameter string
 * asks for it ("stem [TM TN]") and it fits, or when there is no valid GEMM string and the
 * heuristic picks it (cc_stem_applies); else the GEMM. */
static clcnn_status fwd_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                int act, void *state) {
    implicit_fwd *f = state;
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_implicit_cfg_string(dev, CLCNN_CONV_PASS_FORWARD, cv, tmp);
    int tm = 8, tn = 3;
    implicit_cfg g;
    int used = cc_stem_parse(dev, cv, e, &tm, &tn);
    /* the heuristic's blocks: cc_stem_parse's for "stem" */
    if (used || (!parse_cfg(dev, e, &g) && cc_stem_applies(dev, cv) &&
                 cc_stem_parse(dev, cv, "stem", &tm, &tn))) {
        cc_conv_cfg_used(CLCNN_CONV_IMPLICIT_GEMM, used ? e : NULL);
        return cc_stem_prepare(dev, cv, w, act, tm, tn, &f->stem);
    }
    return cc_implicit_prepare(dev, cv, w, 0, cv, act, f);
}

static clcnn_status fwd_run(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                            const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const implicit_fwd *f = state;
    if (f->stem.w) return cc_stem_run(dev, &f->stem, x, ep, y);
    return cc_implicit_launch(dev, &f->cv, &f->pl, x->storage->mem, x->offset, f->wt->storage->mem,
                              f->wt->offset, ep, y->storage->mem, y->offset);
}

const cc_conv2d_fwd_impl cc_conv2d_implicit_fwd = {sizeof(implicit_fwd), fwd_prepare, fwd_run,
                                                   fwd_release, 1};

/* Whether two plans launch the same program the same way. */
static int same_plan(const gemm_plan *a, const gemm_plan *b) {
    return !strcmp(a->defs, b->defs) && a->cfg.lws == b->cfg.lws && a->plane == b->plane &&
           a->mp == b->mp && a->nt == b->nt && a->cc == b->cc && a->m_per == b->m_per &&
           a->msplit == b->msplit;
}

/* Append c to out unless it is invalid on dev, does not fit the GEMM geometry g, or plans
 * g like the heuristic or a string already in out (plans[0] the heuristic's, plans[1 + i]
 * out[i]'s). */
static int add_cfg(const clcnn_device *dev, const cc_conv *g, implicit_cfg c, gemm_plan *plans,
                   char out[][CC_CONV_CFG_MAX], int n, int max) {
    if (n >= max) return n;
    char s[CC_CONV_CFG_MAX];
    snprintf(s, sizeof s, "%d %d %d %d %d %d", c.tm, c.vw, c.lws, c.kc_max, c.nt, c.tn);
    implicit_cfg f;
    gemm_plan pl;
    if (!parse_cfg(dev, s, &f) || plan_with(dev, g, f, 0, &pl) != CLCNN_OK) return n;
    for (int i = 0; i <= n; i++)
        if (same_plan(&plans[i], &pl)) return n;
    plans[n + 1] = pl;
    snprintf(out[n], CC_CONV_CFG_MAX, "%s", s);
    return n + 1;
}

/* Forward of layers with at most 4 input channels that the few-channel kernel can run
 * (lib/ops/conv2d_stem.c): where it is the heuristic, the GEMM's heuristic ("TM VW LWS KC
 * NT TN") and "stem 16 1", "stem 6 4" (16 vector registers: "stem 4 2", "stem 6 1"); else
 * "stem". Then, forward and backward data
 * (backward filter is lib/ops/conv2d_wgrad.c), around the
 * heuristic of the (first) GEMM the pass runs: with 16 vector registers (TM below 8) TM
 * - 2, TM + 2 and TM/2 x TN 2; else where the heuristic has TN above 1 (AVX-512: pointwise
 * layers, and the others with enough tiles) TM x TN 8 x 3, 6 x 4, 16 x 1, 8 x 2, else
 * TM 8 or 16 and TM 8 x TN 2; NT 1 and 2 (tiles per work-item), LWS 4 or 8;
 * exhaustive: TM {4, 8, 16} x TN {1..4} x NT {choose, 2}, then the other VWs and LWSs, up
 * to max; strings that plan the GEMM like the heuristic or an earlier one are left out.
 * Each distinct TM/VW/TN is one program. */
int cc_conv2d_implicit_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    cc_conv g = *cv;
    if (pass == CLCNN_CONV_PASS_BACKWARD_DATA) {
        if (!cc_conv2d_implicit_supports_data(cv)) return 0;
        g = cc_implicit_data_gemm0(cv);
    } else if (pass != CLCNN_CONV_PASS_FORWARD) {
        return 0;
    }
    implicit_cfg h = heuristic_cfg(dev, &g, 0), c;
    gemm_plan plans[41];
    if (max > 40) max = 40;
    if (plan_with(dev, &g, h, 0, &plans[0]) != CLCNN_OK) return 0; /* implicit_gemm cannot run */
    int n = 0;
    /* Forward of few-channel layers: where the few-channel kernel is the heuristic, the
     * GEMM's heuristic (its plan, plans[0], then screens the GEMM strings below) and that
     * kernel's other blocks; elsewhere that kernel (a plan slot that matches no GEMM's). */
    int tm, tn;
    if (pass == CLCNN_CONV_PASS_FORWARD && cv->c <= 4 && cc_stem_parse(dev, cv, "stem", &tm, &tn)) {
        int h_stem = cc_stem_applies(dev, cv), narrow = cc_cpu_f16_accumulators(dev, 1) != 0;
        const char *stems[] = {!h_stem  ? "stem"
                               : narrow ? "stem 4 2"
                                        : "stem 16 1",
                               !h_stem  ? NULL
                               : narrow ? "stem 6 1"
                                        : "stem 6 4"};
        if (h_stem && n < max) {
            plans[n + 1] = plans[0];
            snprintf(out[n++], CC_CONV_CFG_MAX, "%d %d %d %d %d %d", h.tm, h.vw, h.lws, h.kc_max,
                     h.nt, h.tn);
        }
        for (int i = 0; i < 2 && stems[i] && n < max; i++)
            if (cc_stem_parse(dev, cv, stems[i], &tm, &tn)) {
                memset(&plans[n + 1], 0, sizeof plans[n + 1]);
                snprintf(out[n++], CC_CONV_CFG_MAX, "%s", stems[i]);
            }
    }
    if (exhaustive) {
        static const int tms[] = {4, 8, 16}, nts[] = {0, 2}, vws[] = {16, 8, 4, 0}, lwss[] = {4, 8};
        for (int a = 0; a < 3; a++)
            for (int t = 1; t <= 4; t++)
                for (int b = 0; b < 2; b++)
                    c = h, c.tm = tms[a], c.tn = t, c.nt = nts[b],
                    n = add_cfg(dev, &g, c, plans, out, n, max);
        for (int v = 0; v < 4; v++)
            c = h, c.vw = vws[v], n = add_cfg(dev, &g, c, plans, out, n, max);
        for (int l = 0; l < 2; l++)
            c = h, c.lws = lwss[l], n = add_cfg(dev, &g, c, plans, out, n, max);
        return n;
    }
    if (h.tm < 8) { /* 16 vector registers (cc_cpu_f16_accumulators) */
        int tms[] = {h.tm > 2 ? h.tm - 2 : 1, h.tm + 2, (h.tm + 1) / 2}, tns[] = {1, 1, 2};
        for (int i = 0; i < 3; i++)
            c = h, c.tm = tms[i], c.tn = tns[i], n = add_cfg(dev, &g, c, plans, out, n, max);
    } else if (h.tn > 1) {
        static const int pairs[][2] = {{8, 3}, {6, 4}, {16, 1}, {8, 2}};
        for (int i = 0; i < 4; i++)
            c = h, c.tm = pairs[i][0], c.tn = pairs[i][1],
            n = add_cfg(dev, &g, c, plans, out, n, max);
    } else {
        c = h, c.tm = h.tm == 8 ? 16 : 8, n = add_cfg(dev, &g, c, plans, out, n, max);
        c = h, c.tm = 8, c.tn = 2, n = add_cfg(dev, &g, c, plans, out, n, max);
    }
    c = h, c.nt = 1, n = add_cfg(dev, &g, c, plans, out, n, max);
    c = h, c.nt = 2, n = add_cfg(dev, &g, c, plans, out, n, max);
    c = h, c.lws = h.lws == 4 ? 8 : 4, n = add_cfg(dev, &g, c, plans, out, n, max);
    /* plane tiles against row segments, where the heuristic took either (plans that
     * come to the same are dropped) */
    c = h, c.vw = h.vw ? 0 : 16, n = add_cfg(dev, &g, c, plans, out, n, max);
    return n;
}
