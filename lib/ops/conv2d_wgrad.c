/* Filter gradient as an implicit GEMM: host side of cl/conv2d_wgrad.cl (the algorithm
 * implicit_gemm of the backward-filter pass). Shapes were checked by lib/ops/conv2d.c.
 *
 * Shape key: x (n, c, h, w); dy (n, k, p, q); dw (k, cpg, r, s); cpg = c/groups,
 * kpg = k/groups, K = cpg*r*s (the columns of one group's gradient).
 *
 * Per pass of nb images (all of them unless the workspace limit says otherwise):
 *   1. wgrad_pad_x: the images with their zero padding made explicit, or for 1x1 kernels
 *      with strides wgrad_subsample_x: the positions they read (every sh-th row and sw-th
 *      column), a stride-1 layer for the kernel (skipped otherwise: it reads x itself);
 *   2. wgrad_transpose_dy: dy transposed in blocks of a work-item's MK*VK channels, the
 *      channels of a position consecutive (a vector of VK of them is one load) and the
 *      positions one after the other, in 4x4 register blocks;
 *   3. conv2d_wgrad: each work-item multiplies MK*VK channels x TJ taps over a chunk of
 *      rpc output rows (or whole planes, for 1x1-like layers whose rows are contiguous),
 *      writing its chunk's slice of a partial buffer, its sums as one contiguous block;
 * then wgrad_sum_blocks adds the pass's slices to dw in chunk order (nothing to add when
 * there is one chunk in one pass: the kernel then writes dw directly). Deterministic, no
 * atomics.
 *
 * Parameters:
 *   VK (define)  channels per vector, the lanes: 16, 8 or 4, whichever pads kpg least
 *                (ties: wider);
 *   MK (define)  vectors of channels per work-item: 2 on 32-register CPUs (AVX-512) when
 *                that pads kpg by at most an eighth (each broadcast input element then
 *                feeds two FMAs: 1.2x on VGG and ResNet), else 1;
 *   TJ (define)  taps per work-item: 14 on AVX-512 CPUs (28 accumulators of the 32
 *                registers with MK 2; 8 to 16 were within 3% on the anchors); on CPUs with
 *                16 vector registers (AVX2) as many as fit beside one vector of channels
 *                (cc_cpu_f16_accumulators: 6 with VK 16, 14 with VK 8 or 4; on the 2-core
 *                AVX2 EPYC 1.4-2x faster than 14 x MK 2, whose accumulators spill); for
 *                K <= 64 equal blocks of at most TJ (LeNet: 13), 4 on GPUs;
 *   rpc          rows per chunk: about 2048 output positions per work-item, at most
 *                640 KB of input rows per chunk (they are read again for every block of
 *                channels), fewer rows when that leaves fewer than 32 work-items per
 *                compute unit, and at most so many chunks that the partial buffer stays
 *                under 32 MB.
 *
 * Flat layers (1x1 kernel, no padding; with strides on the subsampled copy of x) with
 * output planes of at least 28x28 on CPUs take a kernel of their own, conv2d_wgrad_flat,
 * instead of all of the above (see pick_cfg): dot products of rows of dy and x along the
 * positions, which reads dy as it is (on MobileNet-V2's pointwise layers the transposed
 * copy cost about as much as the GEMM). Its
 * parameters (config "flat VP TA TB TARGET"): VP lanes (the device's native width), TA x
 * TB output x input channels per work-item (4 x 3), TARGET positions per part of the
 * reduction (1024, 2048 on AVX-512 CPUs; whole images together where planes are
 * smaller); work-items walk super-tiles of channel blocks whose rows fit 256 KB. The
 * parts' sums are added by wgrad_sum_parts.
 *
 * A few programs (VK 16, 8, 4 x MK 1, 2, and TJ for short rows), all small. Measured
 * speeds: the comment of pick_algo() in lib/ops/conv2d.c. Where the time goes on the CPU
 * anchors (CLCNN_PROFILE): the GEMM kernel 70-80 %, the transpose of dy 8-20 % (LeNet,
 * whose product is short: 40 %), the padded copy 9 % on VGG, the chunk sums 1-5 %. */
#include "conv2d_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wgrad_cfg {
    int vk, mk, tj, lws, target; /* target: output positions per work-item */
    /* flat: conv2d_wgrad_flat with vk lanes, ta output x tb input channels per work-item
     * (target: positions per part) */
    int flat, ta, tb;
} wgrad_cfg;

/* A 1x1 kernel without padding: with stride 1 the input and output planes are the same
 * positions, so conv2d_wgrad_flat applies; with strides it applies to the copy of the
 * positions the kernel reads (wgrad_subsample_x). */
static int flat_shape(const cc_conv *cv) {
    return cv->r == 1 && cv->s == 1 && cv->ph == 0 && cv->pw == 0;
}

/* Images n0 .. n0+nb-1 of x at the positions a strided 1x1 layer reads, into xs
 * (nb, c, p, q) (wgrad_subsample_x, built by the caller). */
static clcnn_status subsample_x(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x, int n0,
                                int nb, clcnn_tensor *xs) {
    return cc_launch(dev, "conv2d_wgrad", "PASS=2", "wgrad_subsample_x", 1,
                     (size_t[]){(size_t)nb * cv->c}, (size_t[]){16},
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(xs->storage->mem), CC_ARG_INT(xs->offset), CC_ARG_INT(n0),
                             CC_ARG_INT(nb), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h),
                             CC_ARG_INT(cv->w), CC_ARG_INT(cv->p), CC_ARG_INT(cv->q),
                             CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw)));
}

/* The broadcast kernel's parameters (every shape). */
static wgrad_cfg pick_bcast(const clcnn_device *dev, const cc_conv *cv) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    wgrad_cfg cfg = {.vk = 16, .mk = 1, .tj = gpu ? 4 : 14, .lws = gpu ? 16 : 4, .target = 2048};
    /* the vector width that pads kpg least (ties: the wider) */
    int best = cc_ceil_div(cv->kpg, 16) * 16;
    for (int vk = 8; vk >= 4; vk /= 2) {
        int pad = cc_ceil_div(cv->kpg, vk) * vk;
        if (pad < best) {
            best = pad;
            cfg.vk = vk;
        }
    }
    /* CPUs with 16 vector registers (AVX2): one vector of channels per work-item and as
     * many taps as fit the registers beside it (float16: 6 accumulators, 2 registers each;
     * float8 and float4: 14); the AVX-512 block below spills there every step */
    int narrow = cc_cpu_f16_accumulators(dev, 1);
    if (narrow > 0) cfg.tj = cfg.vk == 16 ? narrow : 14;
    /* Short rows (first layers, K <= 64): equal blocks of at most TJ taps, so that few
     * are wasted on the last block (LeNet's 25 taps: 2 x 13 instead of 2 x 14, 5%
     * faster; one more program per such K). */
    int K = cv->cpg * cv->r * cv->s;
    if (!gpu && K <= 64) cfg.tj = cc_ceil_div(K, cc_ceil_div(K, cfg.tj));
    /* two vectors of channels per work-item on 32-register CPUs (each loaded input element
     * feeds two FMAs: 1.2x on VGG and ResNet) when that pads kpg by at most an eighth */
    int pad2 = cc_ceil_div(cv->kpg, 2 * cfg.vk) * 2 * cfg.vk;
    if (!gpu && !narrow && cv->kpg >= 2 * cfg.vk && (pad2 - cv->kpg) * 8 <= cv->kpg) cfg.mk = 2;
    return cfg;
}

/* conv2d_wgrad_flat's parameters: the device's native vector width (8 on AVX2, 16 on
 * AVX-512), 4 x 3 channels and 1024 positions per part (2048 on AVX-512, where the tuner
 * picked it for ResNet-50's 56x56 and 28x28 1x1 layers: see the commit that set it). */
static wgrad_cfg flat_cfg(const clcnn_device *dev) {
    unsigned nat = dev->native_float_width;
    int vp = nat >= 16 ? 16 : nat == 4 ? 4 : 8, target = nat >= 16 ? 2048 : 1024;
    return (wgrad_cfg){
        .vk = vp, .mk = 1, .tj = 1, .lws = 1, .target = target, .flat = 1, .ta = 4, .tb = 3};
}

/* The heuristic: flat shapes with output planes of at least 28x28 on CPUs take
 * conv2d_wgrad_flat (flat_cfg), except on 32-register CPUs (AVX-512) those with at
 * least 64 output channels per group but fewer than input channels: their dy, the tensor
 * the broadcast kernel transposes, is the smaller one there, and the broadcast kernel's
 * register block is the larger (see the commit that set it; with fewer channels its block
 * of channels is one vector). Everything else (and every shape on GPUs, where a work-item's own
 * rows would make uncoalesced reads) takes the broadcast kernel. Smaller planes keep it:
 * each image's row is a few vectors and a tail there, and the flat kernel measured slower
 * (7110179's message), on channel-major copies too. */
static wgrad_cfg pick_cfg(const clcnn_device *dev, const cc_conv *cv) {
    int wide = cc_cpu_f16_accumulators(dev, 1) == 0;
    if (dev->info.type != CLCNN_DEVICE_GPU && flat_shape(cv) && cv->p * cv->q >= 28 * 28 &&
        !(wide && cv->kpg >= 64 && cv->kpg < cv->cpg))
        return flat_cfg(dev);
    return pick_bcast(dev, cv);
}

/* "VK TJ LWS TARGET [MK]" or, for flat shapes only, "flat VP TA TB TARGET"; 0 when s is
 * neither. */
static int parse_cfg(const char *s, const cc_conv *cv, wgrad_cfg *out) {
    int vk, tj, lws, target, mk = 1, end = 0, got;
    if (!s) return 0;
    if (!strncmp(s, "flat ", 5)) {
        int vp, ta, tb;
        if (sscanf(s + 5, "%d %d %d %d %n", &vp, &ta, &tb, &target, &end) != 4 ||
            s[5 + end] != '\0' || !flat_shape(cv) || (vp != 16 && vp != 8 && vp != 4) || ta < 1 ||
            ta > 8 || tb < 1 || tb > 8 || target < 1 || target > (1 << 24))
            return 0;
        *out = (wgrad_cfg){
            .vk = vp, .mk = 1, .tj = 1, .lws = 1, .target = target, .flat = 1, .ta = ta, .tb = tb};
        return 1;
    }
    got = sscanf(s, "%d %d %d %d %n", &vk, &tj, &lws, &target, &end);
    if (got != 4) return 0;
    if (s[end] != '\0') {
        int end2 = 0;
        if (sscanf(s + end, "%d %n", &mk, &end2) != 1 || s[end + end2] != '\0') return 0;
    }
    if ((vk != 16 && vk != 8 && vk != 4) || tj < 1 || tj > 32 || lws < 1 || lws > 256 ||
        target < 1 || target > (1 << 24) || (mk != 1 && mk != 2))
        return 0;
    *out = (wgrad_cfg){vk, mk, tj, lws, target, 0, 0, 0};
    return 1;
}

/* The heuristic, unless the tuner, $CLCNN_CONV_WGRAD_CFG="VK TJ LWS TARGET [MK]" or the
 * tuning file (cc_conv_cfg) give valid parameters. */
static wgrad_cfg choose_cfg(const clcnn_device *dev, const cc_conv *cv) {
    wgrad_cfg cfg = pick_cfg(dev, cv);
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_conv_cfg(dev, "CLCNN_CONV_WGRAD_CFG", CLCNN_CONV_PASS_BACKWARD_FILTER, cv,
                                CLCNN_CONV_IMPLICIT_GEMM, tmp);
    int used = parse_cfg(e, cv, &cfg);
    cc_conv_cfg_used(CLCNN_CONV_IMPLICIT_GEMM, used ? e : NULL);
    return cfg;
}

/* Near the heuristic: TJ 2/3 and 4/3 of it, TARGET / 2 and x 2, the other MK and VK / 2;
 * exhaustive: TJ {7, 10, 14, 20} x TARGET {1024, 2048, 4096} x MK {1, 2} up to max; on
 * CPUs, flat shapes also try the other kernel (its heuristic, and for the flat kernel
 * other blocks and parts). */
int cc_conv2d_wgrad_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                   int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    if (pass != CLCNN_CONV_PASS_BACKWARD_FILTER) return 0;
    wgrad_cfg h = pick_cfg(dev, cv);
    wgrad_cfg v[32];
    int nv = 0;
    if (h.flat) {
        /* the broadcast kernel's heuristic, other blocks and parts */
        static const int blk[][2] = {{4, 2}, {3, 4}, {2, 4}, {4, 4}};
        v[nv++] = pick_bcast(dev, cv);
        for (int i = 0; i < (exhaustive ? 4 : 2); i++) {
            wgrad_cfg c = h;
            c.ta = blk[i][0], c.tb = blk[i][1], v[nv++] = c;
        }
        wgrad_cfg c = h;
        c.target = h.target / 2, v[nv++] = c;
        c.target = h.target * 2, v[nv++] = c;
    } else if (exhaustive) {
        static const int tjs[] = {7, 10, 14, 20}, tg[] = {1024, 2048, 4096};
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                for (int m = 1; m <= 2; m++)
                    v[nv++] = (wgrad_cfg){h.vk, m, tjs[i], h.lws, tg[j], 0, 0, 0};
    } else {
        wgrad_cfg c;
        c = h, c.tj = h.tj * 2 / 3 > 0 ? h.tj * 2 / 3 : 1, v[nv++] = c;
        c = h, c.tj = h.tj * 4 / 3 <= 32 ? h.tj * 4 / 3 : 32, v[nv++] = c;
        c = h, c.target = h.target / 2, v[nv++] = c;
        c = h, c.target = h.target * 2, v[nv++] = c;
        c = h, c.mk = 3 - h.mk, v[nv++] = c;
        c = h, c.vk = h.vk > 4 ? h.vk / 2 : 8, v[nv++] = c;
    }
    /* flat shapes the heuristic gives the broadcast kernel: the flat kernel too */
    if (!h.flat && dev->info.type != CLCNN_DEVICE_GPU && flat_shape(cv)) v[nv++] = flat_cfg(dev);
    int n = 0;
    for (int i = 0; i < nv && n < max; i++) {
        wgrad_cfg c = v[i];
        if (!memcmp(&c, &h, sizeof c)) continue;
        char s[CC_CONV_CFG_MAX];
        if (c.flat)
            snprintf(s, sizeof s, "flat %d %d %d %d", c.vk, c.ta, c.tb, c.target);
        else
            snprintf(s, sizeof s, "%d %d %d %d %d", c.vk, c.tj, c.lws, c.target, c.mk);
        int dup = 0;
        for (int k = 0; k < n; k++)
            dup |= !strcmp(out[k], s);
        if (!dup) memcpy(out[n++], s, sizeof s);
    }
    return n;
}

/* dw = (accumulate ? dw : 0) + the parts' dw-shaped slices of part (m floats each), added
 * in part order (wgrad_sum_parts, built by the caller). */
static clcnn_status sum_parts(clcnn_device *dev, const clcnn_tensor *part, int parts, size_t m,
                              clcnn_tensor *dw, int accumulate) {
    return cc_launch(dev, "conv2d_wgrad", "PASS=2", "wgrad_sum_parts", 1, (size_t[]){(m + 15) / 16},
                     (size_t[]){64},
                     CC_ARGS(CC_ARG_MEM(part->storage->mem), CC_ARG_INT(part->offset),
                             CC_ARG_INT(parts), CC_ARG_INT(m), CC_ARG_MEM(dw->storage->mem),
                             CC_ARG_INT(dw->offset), CC_ARG_INT(accumulate)));
}

/* conv2d_wgrad_flat over all images at once (no workspace but the partial sums). Parts:
 * about cfg->target positions each, whole images together when a plane is smaller, at
 * least 32 work-items per compute unit where the shape allows, at most 32 MB of partial
 * sums; several parts are summed into dw by wgrad_sum_parts. */
static clcnn_status wgrad_flat(clcnn_device *dev, const cc_conv *cv, const wgrad_cfg *cfg,
                               const clcnn_tensor *x, const clcnn_tensor *dy, clcnn_tensor *dw) {
    int pq = cv->p * cv->q, vp = cfg->vk;
    size_t m = (size_t)cv->k * (size_t)cv->cpg; /* dw elements */
    size_t items = (size_t)cc_ceil_div(cv->cpg, cfg->tb) * cc_ceil_div(cv->kpg, cfg->ta) *
                   cv->groups; /* per part */
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) * 32;
    int target = cfg->target;
    size_t need = (want + items - 1) / items; /* parts for enough work-items */
    if (need > 1 && (size_t)cv->n * pq / (size_t)target < need) {
        size_t per = (size_t)cv->n * pq / need;
        target = per > (size_t)vp ? (int)per : vp;
    }
    size_t max_parts = ((size_t)32 << 20) / sizeof(float) / m;
    if (max_parts < 1) max_parts = 1;
    int ipp = 1, seg = pq, segs = 1;
    if (pq > target) { /* segments of one image, whole vectors each */
        segs = cc_ceil_div(pq, target);
        seg = cc_ceil_div(cc_ceil_div(pq, segs), vp) * vp;
        segs = cc_ceil_div(pq, seg);
    } else {
        ipp = target / pq;
    }
    if ((size_t)cc_ceil_div(cv->n, ipp) * segs > max_parts) { /* fewer, larger parts */
        segs = 1, seg = pq;
        ipp = cc_ceil_div(cv->n, (int)(max_parts < (size_t)cv->n ? max_parts : (size_t)cv->n));
    }
    if (ipp > cv->n) ipp = cv->n;
    int parts = cc_ceil_div(cv->n, ipp) * segs;

    char defs[48];
    snprintf(defs, sizeof defs, "PASS=3 TA=%d TB=%d VP=%d", cfg->ta, cfg->tb, vp);
    int sub = cv->sh > 1 || cv->sw > 1;
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", defs, "conv2d_wgrad_flat"));
    if (parts > 1) CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", "PASS=2", "wgrad_sum_parts"));
    if (sub) CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", "PASS=2", "wgrad_subsample_x"));
    clcnn_tensor *part = NULL, *xs = NULL;
    if (parts > 1)
        CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)parts * m}, &part));
    clcnn_status st = CLCNN_OK;
    if (sub) { /* strides: the positions the kernel reads, as a stride-1 layer */
        st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)cv->n * cv->c * pq}, &xs);
        if (st == CLCNN_OK) st = subsample_x(dev, cv, x, 0, cv->n, xs);
        if (st == CLCNN_OK) x = xs;
    }
    cl_mem out = parts > 1 ? part->storage->mem : dw->storage->mem;
    size_t out_off = parts > 1 ? part->offset : dw->offset;
    /* super-tiles: the dy and x rows of sa x sb blocks, one part's positions each, in
     * about 256 KB (all of a narrow side's rows, the rest for the other) */
    int len = segs > 1 ? seg : ipp * pq;
    int rows = 65536 / len;
    int nba = cc_ceil_div(cv->kpg, cfg->ta), nbb = cc_ceil_div(cv->cpg, cfg->tb);
    int ra = cv->kpg < rows / 2 ? cv->kpg : rows / 2;
    int rb = rows - ra;
    if (rb > cv->cpg) {
        rb = cv->cpg;
        ra = rows - rb;
    }
    int sa = ra / cfg->ta, sb = rb / cfg->tb;
    sa = sa < 1 ? 1 : sa > nba ? nba : sa;
    sb = sb < 1 ? 1 : sb > nbb ? nbb : sb;
    size_t tiles = (size_t)cc_ceil_div(nba, sa) * cc_ceil_div(nbb, sb);
    size_t gws[2] = {tiles * sa * sb, (size_t)cv->groups * parts};
    if (st == CLCNN_OK)
        st = cc_launch(dev, "conv2d_wgrad", defs, "conv2d_wgrad_flat", 2, gws, (size_t[]){1, 1},
                       CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                               CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                               CC_ARG_MEM(out), CC_ARG_INT(out_off), CC_ARG_INT(cv->n),
                               CC_ARG_INT(cv->c), CC_ARG_INT(cv->k), CC_ARG_INT(pq),
                               CC_ARG_INT(cv->groups), CC_ARG_INT(ipp), CC_ARG_INT(seg),
                               CC_ARG_INT(parts), CC_ARG_INT(sa), CC_ARG_INT(sb)));
    if (st == CLCNN_OK && parts > 1) st = sum_parts(dev, part, parts, m, dw, 0);
    clcnn_tensor_free(xs);
    clcnn_tensor_free(part);
    return st;
}

clcnn_status cc_conv2d_wgrad_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                             const clcnn_tensor *x, const clcnn_tensor *dy,
                                             clcnn_tensor *dw) {
    const char *op = "conv2d backward filter (implicit_gemm)";
    wgrad_cfg cfg = choose_cfg(dev, cv);
    /* the flat kernel of a strided layer copies all images' positions at once: within
     * the workspace limit, else the broadcast kernel in passes */
    size_t sub_bytes =
        cv->sh > 1 || cv->sw > 1 ? (size_t)cv->n * cv->c * cv->p * cv->q * sizeof(float) : 0;
    if (cfg.flat && sub_bytes <= cc_conv_workspace_limit())
        return wgrad_flat(dev, cv, &cfg, x, dy, dw);
    if (cfg.flat) cfg = pick_bcast(dev, cv);
    int padded = cv->ph > 0 || cv->pw > 0;
    /* 1x1 with strides and no padding: the kernel reads a copy of the positions it uses
     * (every sh-th row, sw-th column), as a stride-1 layer whose planes are contiguous
     * runs (flat below); on x itself every tap of a row is sw floats from the next */
    int sub = !padded && cv->r == 1 && cv->s == 1 && (cv->sh > 1 || cv->sw > 1);
    int hp = sub ? cv->p : cv->h + 2 * cv->ph, wp = sub ? cv->q : cv->w + 2 * cv->pw;
    int copied = padded || sub; /* the kernel reads xp (hp x wp planes) */
    int sh = sub ? 1 : cv->sh, sw = sub ? 1 : cv->sw;
    int rs = cv->r * cv->s, K = cv->cpg * rs, pq = cv->p * cv->q;
    int kblk = cfg.vk * cfg.mk; /* channels per work-item */
    int kpad = cc_ceil_div(cv->kpg, kblk) * kblk;
    /* floats of one chunk's blocked partial sums: whole blocks of kblk channels x tj taps
     * (at least the k*K of dw) */
    size_t slice =
        (size_t)cv->groups * cc_ceil_div(cv->kpg, kblk) * cc_ceil_div(K, cfg.tj) * cfg.tj * kblk;

    /* Images per pass: the padded copy and the transposed dy of a pass fit the workspace
     * limit (at least one image) and index with int. */
    size_t per_image = (copied ? (size_t)cv->c * hp * wp : 0) + (size_t)cv->groups * pq * kpad;
    size_t limit = cc_conv_workspace_limit() / sizeof(float);
    size_t nb_max = limit / per_image;
    if (nb_max > (size_t)INT_MAX / per_image) nb_max = (size_t)INT_MAX / per_image;
    CC_RETURN_IF(nb_max == 0 && per_image > (size_t)INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "%s: one image needs a workspace of %zu floats", op, per_image);
    int nb = nb_max < 1 ? 1 : nb_max > (size_t)cv->n ? cv->n : (int)nb_max;
    int passes = cc_ceil_div(cv->n, nb);
    nb = cc_ceil_div(cv->n, passes); /* equal passes */

    /* Rows per chunk: about cfg.target positions per work-item, more chunks while a pass
     * would leave the device idle (32 work-items per compute unit; 64 x lws on a GPU),
     * at most 32 MB of partial sums per pass. */
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    size_t items = (size_t)cc_ceil_div(K, cfg.tj) * cc_ceil_div(cv->kpg, kblk) * cv->groups;
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) *
                  (gpu ? 64 * (size_t)cfg.lws : 32);
    /* Stride 1 with rows as wide as xp (1-wide kernels without column padding, such as
     * 1x1): an image's positions are one run of consecutive input columns, so the kernel
     * walks each plane as a single row of p*q positions. */
    int xw = copied ? wp : cv->w;
    int flat = sh == 1 && sw == 1 && cv->q == xw;
    int run_p = flat ? 1 : cv->p, run_q = flat ? pq : cv->q;
    int rows = nb * run_p; /* per pass */
    int rpc = cc_ceil_div(cfg.target, run_q);
    /* ... and the input rows a chunk reads, all cpg channels of them, at most 640 KB (they
     * are read again for every block of channels: ResNet 1x1 c256 is 1.3x faster with 3
     * images per chunk than with 10) */
    size_t row_bytes = (size_t)cv->cpg *
                       (flat ? (size_t)(copied ? hp : cv->h) * xw : (size_t)sh * xw) *
                       sizeof(float);
    size_t rpc_cache = ((size_t)640 << 10) / row_bytes;
    if (rpc_cache < 1) rpc_cache = 1;
    /* On 32-register CPUs (AVX-512), where the cap alone would split a pass whose rows
     * fit twice it into two chunks, one chunk: no partial sums to write and add
     * (ResNet-50's 7x7 3x3 and expand layers; the commit that set this has the numbers) */
    int wide = !gpu && cc_cpu_f16_accumulators(dev, 1) == 0;
    if ((size_t)rpc > rpc_cache)
        rpc = wide && rows <= rpc && (size_t)rows <= 2 * rpc_cache ? rows : (int)rpc_cache;
    size_t need = (want + items - 1) / items; /* chunks per pass */
    if (need > 1 && (size_t)cc_ceil_div(rows, rpc) < need)
        rpc = need >= (size_t)rows ? 1 : cc_ceil_div(rows, (int)need);
    size_t max_parts = ((size_t)32 << 20) / sizeof(float) / slice;
    if (max_parts > (size_t)INT_MAX / slice) max_parts = (size_t)INT_MAX / slice;
    if (max_parts < 1) max_parts = 1; /* one slice is below 2^31 */
    if ((size_t)cc_ceil_div(rows, rpc) > max_parts) rpc = cc_ceil_div(rows, (int)max_parts);
    int parts = cc_ceil_div(rows, rpc); /* chunks of the first (largest) pass */
    /* one chunk in one pass: the kernel writes dw; else each pass's chunks are summed
     * into dw (added to it after the first pass) */
    int direct_out = passes == 1 && parts == 1;

    char defs[48];
    snprintf(defs, sizeof defs, "MK=%d PASS=1 TJ=%d VK=%d", cfg.mk, cfg.tj, cfg.vk);
    /* the helpers use no tile define: one program of theirs serves every tile variant */
    const char *hdefs = "PASS=2";
    /* every kernel built before anything is enqueued: a build failure writes nothing */
    if (padded) CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", hdefs, "wgrad_pad_x"));
    if (sub) CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", hdefs, "wgrad_subsample_x"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", hdefs, "wgrad_transpose_dy"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", defs, "conv2d_wgrad"));
    if (!direct_out) CC_TRY(cc_conv2d_prepare(dev, "conv2d_wgrad", defs, "wgrad_sum_blocks"));

    clcnn_tensor *xp = NULL, *dyt = NULL, *part = NULL;
    size_t xp_n = copied ? (size_t)nb * cv->c * hp * wp : 0;
    size_t dyt_n = (size_t)cv->groups * nb * pq * kpad;
    clcnn_status st = CLCNN_OK;
    if (copied) st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){xp_n}, &xp);
    if (st == CLCNN_OK) st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){dyt_n}, &dyt);
    if (st == CLCNN_OK && !direct_out)
        st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)parts * slice}, &part);
    cl_mem out = st == CLCNN_OK && !direct_out ? part->storage->mem : dw->storage->mem;
    size_t out_off = st == CLCNN_OK && !direct_out ? part->offset : dw->offset;

    for (int n0 = 0; st == CLCNN_OK && n0 < cv->n; n0 += nb) {
        int nbi = cv->n - n0 < nb ? cv->n - n0 : nb;
        int chunks_i = cc_ceil_div(nbi * run_p, rpc);
        cl_mem xs = x->storage->mem;
        size_t xs_off = x->offset + (size_t)n0 * cv->c * cv->h * cv->w;
        if (padded) {
            size_t planes = (size_t)nbi * cv->c;
            st = cc_launch(
                dev, "conv2d_wgrad", hdefs, "wgrad_pad_x", 1, (size_t[]){planes}, (size_t[]){16},
                CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                        CC_ARG_MEM(xp->storage->mem), CC_ARG_INT(xp->offset), CC_ARG_INT(n0),
                        CC_ARG_INT(nbi), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w),
                        CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw)));
            xs = xp->storage->mem;
            xs_off = xp->offset;
        } else if (sub) {
            st = subsample_x(dev, cv, x, n0, nbi, xp);
            xs = xp->storage->mem;
            xs_off = xp->offset;
        }
        if (st == CLCNN_OK)
            st = cc_launch(
                dev, "conv2d_wgrad", hdefs, "wgrad_transpose_dy", 1,
                (size_t[]){(size_t)cv->groups * nbi * cc_ceil_div(pq, 16)}, (size_t[]){64},
                CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                        CC_ARG_MEM(dyt->storage->mem), CC_ARG_INT(dyt->offset), CC_ARG_INT(n0),
                        CC_ARG_INT(nbi), CC_ARG_INT(cv->k), CC_ARG_INT(pq), CC_ARG_INT(cv->groups),
                        CC_ARG_INT(kpad), CC_ARG_INT(kblk)));
        size_t gws[3] = {(size_t)cc_ceil_div(K, cfg.tj), (size_t)cc_ceil_div(cv->kpg, kblk),
                         (size_t)cv->groups * chunks_i};
        size_t lws[3] = {(size_t)cfg.lws, 1, 1};
        if (st == CLCNN_OK)
            st = cc_launch(dev, "conv2d_wgrad", defs, "conv2d_wgrad", 3, gws, lws,
                           CC_ARGS(CC_ARG_MEM(xs), CC_ARG_INT(xs_off), CC_ARG_INT(cv->c),
                                   CC_ARG_INT(copied ? hp : cv->h), CC_ARG_INT(copied ? wp : cv->w),
                                   CC_ARG_MEM(dyt->storage->mem), CC_ARG_INT(dyt->offset),
                                   CC_ARG_INT(kpad), CC_ARG_MEM(out), CC_ARG_INT(out_off),
                                   CC_ARG_INT(nbi), CC_ARG_INT(cv->k), CC_ARG_INT(run_p),
                                   CC_ARG_INT(run_q), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s),
                                   CC_ARG_INT(sh), CC_ARG_INT(sw), CC_ARG_INT(cv->dh),
                                   CC_ARG_INT(cv->dw), CC_ARG_INT(cv->groups), CC_ARG_INT(rpc),
                                   CC_ARG_INT(chunks_i), CC_ARG_INT(!direct_out)));
        if (st == CLCNN_OK && !direct_out) {
            size_t blocks = slice / ((size_t)cfg.tj * kblk);
            st = cc_launch(dev, "conv2d_wgrad", defs, "wgrad_sum_blocks", 1, (size_t[]){blocks},
                           (size_t[]){16},
                           CC_ARGS(CC_ARG_MEM(part->storage->mem), CC_ARG_INT(part->offset),
                                   CC_ARG_INT(chunks_i), CC_ARG_INT((int)slice),
                                   CC_ARG_MEM(dw->storage->mem), CC_ARG_INT(dw->offset),
                                   CC_ARG_INT(n0 > 0), CC_ARG_INT(cv->kpg), CC_ARG_INT(K),
                                   CC_ARG_INT(cv->groups)));
        }
    }
    /* the in-order queue runs the kernels before any reuse of the pool buffers */
    clcnn_tensor_free(part);
    clcnn_tensor_free(dyt);
    clcnn_tensor_free(xp);
    return st;
}
