/* Winograd conv2d, F(MT x MT, 3x3) for 3x3 kernels with stride 1 and dilation 1, forward
 * and backward data: host side of cl/conv2d_winograd.cl. Shapes were checked by lib/ops/conv2d.c,
 * and cc_conv2d_winograd_supports() by the dispatcher. The forward also runs strided layers
 * whose kernel spans three strides (cc_conv2d_winograd_s2d: AlexNet's 11x11 stride 4): the
 * weights rearranged space-to-depth when prepared, the input per run (a pool buffer), then
 * the 3x3 stride-1 convolution below.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, 3, 3); y (n, k, p, q); cpg = c/groups,
 * kpg = k/groups; tiles th x tw = ceil(p/MT) x ceil(q/MT) per image.
 *
 * Two ways to run it. The fused kernel: the filter transform U (A*A, k, cpg) into a pool
 * buffer (A = MT + 2; forward: once, when prepared, cc_conv2d_fwd_impl), then per run one
 * kernel (input transform, A*A GEMMs, output transform per strip of 16 tiles, in local
 * memory). The GEMM path (CPUs, at least 128 channels per group on both sides,
 * cc_conv2d_winograd_cpu_gemm): U straight into the weights of an implicit GEMM
 * (lib/ops/conv2d_implicit.c) when prepared, then per run and chunk of images three
 * launches, the input transform into V, the A*A GEMMs as one grouped 1x1 convolution, the
 * output transform (see gemm_geometry); MT there is the tile size with fewer products per
 * image, padding included. Parameters of the fused kernel: MT  4
 * (F(4x4,3x3): 36 products for 16 outputs, 4x fewer multiplications than direct) unless the output
 * is so small that 4x4 tiles waste more than F(2x2)'s 2.25x saving can repay (p or q below 6),
 * then 2. SW  16, 8 or 4 tiles per lane segment, whichever wastes the fewest lanes on tw (F(2x2):
 * always 4; its outputs are below 6x6). At most 4 programs. TM  16 output channels per register
 * block on CPUs (AVX-512), what 16 vector registers hold on narrower ones (AVX2: 6,
 * cc_cpu_f16_accumulators), 2 on GPUs. cc  input channels per chunk and mr output channels per
 * work-item: as many as the work-item's scratch allows (CPU: 320 KB of cached memory, about 140
 * channels of A*A x 16 floats, at most half of them output channels; GPU: what fits in half the
 * local memory). Numerics: F(4x4) multiplies by transform entries up to 5 and divides by 24;
 * measured, its float32 error stays within twice the direct kernel's tolerance (the tests allow
 * four times, tests/test_conv2d_algos.c). Backward data: the same kernels on the
 * transposed convolution (cc_conv2d_winograd_backward_data). */
#include "conv2d_impl.h"

#include <string.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct wino_cfg {
    int mt, sw, tm, lws, cc_max, mr;
    int gemm; /* 1: the GEMM path (three launches), else the fused kernel */
} wino_cfg;

int cc_conv2d_winograd_supports(const cc_conv *cv) {
    return cv->r == 3 && cv->s == 3 && cv->sh == 1 && cv->sw == 1 && cv->dh == 1 && cv->dw == 1;
}

/* Space-to-depth (forward only): S when cv has stride S >= 2 in both dims, dilation 1,
 * groups 1 and a kernel that spans three strides each way (2S < r, s <= 3S: 5x5 and 6x6
 * at stride 2, 7x7 to 9x9 at stride 3, 9x9 to 12x12 at stride 4, as AlexNet's first
 * layer), and the rearranged input (n, c*S*S, p+2, q+2) fits cc_conv_workspace_limit();
 * else 0. The layer is then the 3x3 stride-1 convolution of the rearranged input with
 * the rearranged weights (cl/conv2d_winograd.cl, winograd_s2d_*): Winograd's 2.25x (F(2x2))
 * or 4x (F(4x4)) fewer multiplications, on (3S)^2 taps instead of r*s (AlexNet's 11x11
 * stride 4: 144 instead of 121). */
int cc_conv2d_winograd_s2d(const cc_conv *cv) {
    int S = cv->sh;
    if (S < 2 || S > 16 || cv->sw != S || cv->groups != 1 || cv->dh != 1 || cv->dw != 1 ||
        cc_ceil_div(cv->r, S) != 3 || cc_ceil_div(cv->s, S) != 3)
        return 0;
    double floats = (double)cv->n * cv->c * S * S * (cv->p + 2.0) * (cv->q + 2.0);
    double wfloats = (double)cv->k * cv->c * S * S * 9.0;
    if (floats * sizeof(float) > (double)cc_conv_workspace_limit() || wfloats >= INT_MAX) return 0;
    return S;
}

/* The 3x3 stride-1 geometry that space-to-depth with stride S makes of cv. */
static cc_conv s2d_geometry(const cc_conv *cv, int S) {
    cc_conv g = *cv;
    g.c = g.cpg = cv->c * S * S;
    g.h = cv->p + 2;
    g.w = cv->q + 2;
    g.r = g.s = 3;
    g.sh = g.sw = 1;
    g.ph = g.pw = 0;
    return g;
}

/* Fraction of the lanes that hold a tile, for SW tiles per segment. */
static double lane_use(int th, int tw, int sw) {
    int trw = 16 / sw;
    return (double)th * tw / ((double)cc_ceil_div(th, trw) * trw * cc_ceil_div(tw, sw) * sw);
}

/* Fraction of the lanes of the GEMM path's transform kernels (SW tiles of one tile row)
 * that hold a tile. */
static double row_use(int tw, int sw) {
    return (double)tw / ((double)cc_ceil_div(tw, sw) * sw);
}

/* "MT SW TM CC MR [G]" into f[6] (G: 1 the GEMM path, 0 the fused kernel, -1 when not
 * given: the heuristic's); 0 when s is not one. */
static int parse_cfg(const char *s, int f[6]) {
    int end = 0, n = 0;
    f[5] = -1;
    if (!s || sscanf(s, "%d %d %d %d %d %n", &f[0], &f[1], &f[2], &f[3], &f[4], &end) != 5)
        return 0;
    if (s[end] != '\0' && (sscanf(s + end, "%d %n", &f[5], &n) != 1 || s[end + n] != '\0'))
        return 0;
    return (f[0] == 2 || f[0] == 4) && (f[1] == 0 || f[1] == 16 || f[1] == 8 || f[1] == 4) &&
           f[2] >= 1 && f[2] <= 32 && f[3] >= 0 && f[3] <= 4096 && f[4] >= 0 && f[4] <= 4096 &&
           f[5] >= -1 && f[5] <= 1;
}

/* A CPU runs cv on the GEMM path with at least 128 input and output channels per group:
 * there the fused kernel's repeated input transforms (once per range of output channels)
 * and its GEMMs of 16 tiles cost more than writing V and M out. With fewer channels the
 * fused kernel was faster (its transforms stay in its cache); the commit that set this
 * rule has the measurements. */
int cc_conv2d_winograd_cpu_gemm(const cc_conv *cv) {
    return cv->cpg >= 128 && cv->kpg >= 128;
}

#define GEMM_TB 128 /* tiles per batch of the transform kernels (TB in the .cl file) */
#define GEMM_LWS 4  /* their work-group size, when the local memory holds that many buffers */

/* GEMM columns per image on the GEMM path: tile rows padded to whole segments of SW. */
static size_t gemm_tiles(const cc_conv *cv, int mt, int sw) {
    return (size_t)cc_ceil_div(cv->p, mt) * (size_t)(cc_ceil_div(cc_ceil_div(cv->q, mt), sw) * sw);
}

/* Images per chunk of the GEMM path; 0 when one image's V or M has 2^31 floats or more.
 * A chunk's V and M are written and read back at once, so they should stay in the cache,
 * but each chunk reads all of U again: V + M of a chunk take at most 4 MB or twice U's
 * size (small filters: small chunks; large ones: the whole batch at once), within
 * cc_conv_workspace_limit(). */
static int gemm_images(const cc_conv *cv, int mt, int sw) {
    int a2 = (mt + 2) * (mt + 2);
    size_t tiles = gemm_tiles(cv, mt, sw);
    size_t per = (size_t)a2 * tiles * (size_t)(cv->c > cv->k ? cv->c : cv->k);
    if (per >= INT_MAX) return 0;
    size_t ubytes = (size_t)a2 * cv->k * cv->cpg * sizeof(float);
    size_t budget = 2 * ubytes > ((size_t)4 << 20) ? 2 * ubytes : (size_t)4 << 20;
    if (budget > cc_conv_workspace_limit()) budget = cc_conv_workspace_limit();
    size_t nb = budget / ((size_t)a2 * tiles * (cv->c + cv->k) * sizeof(float));
    if (nb > (size_t)INT_MAX / per) nb = (size_t)INT_MAX / per;
    return nb < 1 ? 1 : nb > (size_t)cv->n ? cv->n : (int)nb;
}

/* The transform kernels' work-group size: their buffers, A*A x GEMM_TB floats per
 * work-item, in the device's local memory (0: not even one). */
static int gemm_lws(const clcnn_device *dev, int mt) {
    size_t n = cc_local_mem_bytes(dev) / ((size_t)(mt + 2) * (mt + 2) * GEMM_TB * sizeof(float));
    return n > GEMM_LWS ? GEMM_LWS : (int)n;
}

/* The heuristic, with the forced values of f (NULL: none). 0 when f asks for more
 * channels in local memory than fit. */
static int make_cfg(const clcnn_device *dev, const cc_conv *cv, const int *f, wino_cfg *out) {
    int gpu = dev->info.type == CLCNN_DEVICE_GPU;
    /* TM: on CPUs with 16 vector registers as many float16 accumulators as fit beside the
     * strip vector (AVX2: 6; ResNet-50's stride-1 3x3 layers 1.6-1.9x faster than TM 16) */
    int acc = gpu ? 0 : cc_cpu_f16_accumulators(dev, 1);
    wino_cfg cfg = {.mt = cv->p < 6 || cv->q < 6 ? 2 : 4, .tm = gpu ? 2 : acc ? acc : 16, .lws = 1};
    cfg.gemm = !gpu && cc_conv2d_winograd_cpu_gemm(cv);
    if (f) {
        cfg.mt = f[0];
        cfg.tm = f[2];
        if (f[5] >= 0) cfg.gemm = f[5];
    }
    const int fused_mt = cfg.mt;
    if (cfg.gemm) {
        /* The GEMMs' columns: tile rows padded to whole segments. The tile size with fewer
         * products per image, padding included (7x7: F(2x2) 256 vs F(4x4) 288; 14x14:
         * F(4x4) 576 vs 896), and for the transform kernels the widest segment that wastes
         * least. */
        int best = 0;
        for (int mt = 4; mt >= 2; mt -= 2) {
            if (f && f[0] != mt) continue;
            int twm = cc_ceil_div(cv->q, mt), sw = 16;
            for (int s = 8; s >= 4; s /= 2)
                if (row_use(twm, s) > row_use(twm, sw) + 0.04) sw = s;
            if (f && f[1]) sw = f[1];
            int cost = (mt + 2) * (mt + 2) * cc_ceil_div(cv->p, mt) * cc_ceil_div(twm, sw) * sw;
            if (!best || cost < best) best = cost, cfg.mt = mt, cfg.sw = sw;
        }
        if (gemm_images(cv, cfg.mt, cfg.sw) && gemm_lws(dev, cfg.mt)) {
            cfg.cc_max = cv->cpg, cfg.mr = cv->kpg; /* (unused) */
            *out = cfg;
            return 1;
        }
        /* too large for the GEMM path's buffers: the fused kernel */
        cfg.gemm = 0;
        cfg.mt = fused_mt;
    }
    int th = cc_ceil_div(cv->p, cfg.mt), tw = cc_ceil_div(cv->q, cfg.mt);
    cfg.sw = 16;
    double best = lane_use(th, tw, 16);
    for (int s = 8; s >= 4; s /= 2) {
        double u = lane_use(th, tw, s);
        if (u > best + 0.04) {
            best = u;
            cfg.sw = s;
        }
    }
    if (cfg.mt == 2) cfg.sw = 4; /* F(2x2) only for outputs below 6x6: 3x3 tiles at most */
    if (f && f[1]) cfg.sw = f[1];

    /* scratch per work-item: (cc + mr) * A*A * 16 floats */
    int a2 = (cfg.mt + 2) * (cfg.mt + 2);
    size_t per_chan = (size_t)a2 * 16 * sizeof(float);
    size_t local = cc_local_mem_bytes(dev);
    size_t budget = gpu ? local / 2 : (local / 2 < (size_t)320 << 10 ? local / 2 : 320 << 10);
    int chans = (int)(budget / ((size_t)cfg.lws * per_chan));
    if (chans < 2) chans = 2;
    cfg.mr = cv->kpg < chans / 2 ? cv->kpg : chans / 2;
    cfg.cc_max = cv->cpg < chans - cfg.mr ? cv->cpg : chans - cfg.mr;
    if (f && f[3]) cfg.cc_max = f[3];
    if (f && f[4]) cfg.mr = f[4];
    if (f && (f[3] || f[4]) && (cfg.cc_max + cfg.mr > chans || cfg.cc_max < 1 || cfg.mr < 1))
        return 0;
    *out = cfg;
    return 1;
}

/* The heuristic, unless the tuner, $CLCNN_CONV_WINOGRAD_CFG="MT SW TM CC MR [G]" (SW 0:
 * pick it; CC / MR 0: as many as fit; G 1 the GEMM path, 0 the fused kernel, absent the
 * heuristic's; the GEMM path ignores TM, CC and MR) or the tuning file (cc_conv_cfg, keyed
 * by the pass and its geometry `key`) give valid parameters. */
static wino_cfg pick_cfg(const clcnn_device *dev, const cc_conv *cv, int pass, const cc_conv *key) {
    char tmp[CC_CONV_CFG_MAX];
    const char *e =
        cc_conv_cfg(dev, "CLCNN_CONV_WINOGRAD_CFG", pass, key, CLCNN_CONV_WINOGRAD, tmp);
    int f[6];
    wino_cfg cfg;
    int used = parse_cfg(e, f) && make_cfg(dev, cv, f, &cfg);
    if (!used) make_cfg(dev, cv, NULL, &cfg);
    cc_conv_cfg_used(CLCNN_CONV_WINOGRAD, used ? e : NULL);
    return cfg;
}

/* The Winograd convolution of the geometry cv, prepared: its parameters and grid, its
 * kernels built and u, the filter transform (flip: w holds the weights of the convolution
 * that cv transposes, backward data of the layer key, see winograd_filter; else key is
 * cv). */
typedef struct wino_fwd {
    cc_conv cv;
    wino_cfg cfg;
    int mr;
    char defs[64];
    size_t gws[2], lws[2], scratch;
    clcnn_tensor *u; /* (A*A, k, cpg); NULL on the GEMM path (its GEMMs hold U) */
    /* the GEMM path: nb images per chunk, the GEMM of a full chunk and of the last one
     * when that is shorter (else NULL) */
    int nb, chunks, tlws; /* tlws: the transform kernels' work-group size */
    void *gemm[2];
    /* space-to-depth: the stride (0: none) and the layer's own geometry (cv above is the
     * 3x3 stride-1 convolution that runs) */
    int s2d;
    cc_conv outer;
} wino_fwd;

/* The GEMM path (cfg.gemm), per chunk of nb images:
 *   winograd_input   V (A*A*c, nt), nt = nb*th*twp tiles (tile rows padded to whole
 *                    segments of SW, gemm_tiles): row a*c + ci;
 *   the implicit GEMM (lib/ops/conv2d_implicit.c), V as one 1 x nt image of A*A*c channels
 *                    in A*A*groups groups, U (A*A*k, cpg) as its 1x1 weights (output
 *                    channel a*k + ko; group a*groups + g on both sides): the A*A
 *                    products M[a] = U[a] V[a] per group in one launch, M (A*A*k, nt);
 *   winograd_output  y from M, with bias, residual and activation.
 * V and M come from the pool per run; nb keeps them within cc_conv_workspace_limit(). */
static cc_conv gemm_geometry(const cc_conv *cv, int a2, int nt) {
    return (cc_conv){.n = 1,
                     .c = a2 * cv->c,
                     .h = 1,
                     .w = nt,
                     .k = a2 * cv->k,
                     .r = 1,
                     .s = 1,
                     .p = 1,
                     .q = nt,
                     .sh = 1,
                     .sw = 1,
                     .dh = 1,
                     .dw = 1,
                     .groups = a2 * cv->groups,
                     .cpg = cv->cpg,
                     .kpg = cv->kpg};
}

/* The filter transform of w (flip: see winograd_filter) into out: U (A*A, k, cpg) for tm 0,
 * else the transposed weights (tm, mp) of a GEMM of the GEMM path. */
static clcnn_status filter_transform(clcnn_device *dev, const wino_fwd *f, const clcnn_tensor *w,
                                     int flip, clcnn_tensor *out, int tm, int mp) {
    const cc_conv *cv = &f->cv;
    size_t outs = tm ? (size_t)cv->groups * mp * cv->cpg : (size_t)cv->k * cv->cpg;
    return cc_launch(dev, "conv2d_winograd", f->defs, "winograd_filter", 1,
                     (size_t[]){(outs + 7) / 8}, (size_t[]){16},
                     CC_ARGS(CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                             CC_ARG_MEM(out->storage->mem), CC_ARG_INT(out->offset),
                             CC_ARG_INT(cv->k), CC_ARG_INT(cv->cpg), CC_ARG_INT(cv->groups),
                             CC_ARG_INT(flip), CC_ARG_INT(tm), CC_ARG_INT(mp)));
}

static void release_gemms(wino_fwd *f) {
    for (int i = 0; i < 2; i++) {
        cc_conv2d_fwd_delete(&cc_conv2d_implicit_fwd, f->gemm[i]);
        f->gemm[i] = NULL;
    }
}

/* The GEMM path's kernels and GEMMs for f, their weights the filter transform of w. */
static clcnn_status prepare_gemm_path(clcnn_device *dev, wino_fwd *f, const clcnn_tensor *w,
                                      int flip) {
    const cc_conv *cv = &f->cv;
    int a2 = (f->cfg.mt + 2) * (f->cfg.mt + 2);
    int tiles = (int)gemm_tiles(cv, f->cfg.mt, f->cfg.sw);
    /* every kernel built before anything is enqueued: a build failure writes nothing */
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_filter"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_input"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_output"));
    f->chunks = cc_ceil_div(cv->n, f->nb);
    f->nb = cc_ceil_div(cv->n, f->chunks); /* equal chunks but the last */
    int last = cv->n - (f->chunks - 1) * f->nb, ngemm = last != f->nb ? 2 : 1;
    clcnn_tensor *wt[2];
    int tm[2], mp[2];
    clcnn_status st = CLCNN_OK;
    for (int i = 0; i < ngemm && st == CLCNN_OK; i++) {
        cc_conv g = gemm_geometry(cv, a2, (i ? last : f->nb) * tiles);
        st = cc_conv2d_implicit_prepare_wt(dev, &g, &f->gemm[i], &wt[i], &tm[i], &mp[i]);
    }
    for (int i = 0; i < ngemm && st == CLCNN_OK; i++)
        st = filter_transform(dev, f, w, flip, wt[i], tm[i], mp[i]);
    if (st != CLCNN_OK) release_gemms(f);
    return st;
}

/* y = act(conv(x) + b + z) on the GEMM path. */
static clcnn_status run_gemm_path(clcnn_device *dev, const wino_fwd *f, const clcnn_tensor *x,
                                  const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const cc_conv *cv = &f->cv;
    const clcnn_tensor *b = ep->b, *z = ep->z;
    int a2 = (f->cfg.mt + 2) * (f->cfg.mt + 2);
    size_t cols = (size_t)f->nb * gemm_tiles(cv, f->cfg.mt, f->cfg.sw);
    size_t buf = (size_t)f->tlws * a2 * GEMM_TB * sizeof(float); /* the kernels' local buffers */
    clcnn_tensor *v = NULL, *m = NULL;
    clcnn_status st =
        clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)a2 * cv->c * cols}, &v);
    if (st == CLCNN_OK)
        st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){(size_t)a2 * cv->k * cols}, &m);
    for (int ch = 0; ch < f->chunks && st == CLCNN_OK; ch++) {
        int n0 = ch * f->nb, nb = cv->n - n0 < f->nb ? cv->n - n0 : f->nb;
        st = cc_launch(
            dev, "conv2d_winograd", f->defs, "winograd_input", 1, (size_t[]){(size_t)cv->c},
            (size_t[]){(size_t)f->tlws},
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(v->storage->mem),
                    CC_ARG_INT(v->offset), CC_ARG_INT(cv->n), CC_ARG_INT(n0), CC_ARG_INT(nb),
                    CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(cv->p),
                    CC_ARG_INT(cv->q), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw), CC_ARG_LOCAL(buf)));
        if (st == CLCNN_OK)
            st = cc_conv2d_implicit_fwd.run(dev, f->gemm[nb == f->nb ? 0 : 1], v, NULL, m);
        if (st == CLCNN_OK)
            st = cc_launch(dev, "conv2d_winograd", f->defs, "winograd_output", 1,
                           (size_t[]){(size_t)cv->k}, (size_t[]){(size_t)f->tlws},
                           CC_ARGS(CC_ARG_MEM(m->storage->mem), CC_ARG_INT(m->offset),
                                   CC_ARGS_OPT(b, m->storage->mem), CC_ARGS_OPT(z, m->storage->mem),
                                   CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                                   CC_ARG_INT(n0), CC_ARG_INT(nb), CC_ARG_INT(cv->k),
                                   CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(ep->act),
                                   CC_ARG_FLOAT(ep->alpha), CC_ARG_LOCAL(buf)));
    }
    clcnn_tensor_free(v); /* the in-order queue runs the kernels before any reuse */
    clcnn_tensor_free(m);
    return st;
}

/* The Winograd convolution of the geometry cv planned into f: its parameters, grid and
 * kernel defines (flip: backward data of the layer key, see prepare_wino). */
static clcnn_status plan_wino(clcnn_device *dev, const cc_conv *cv, int flip, const cc_conv *key,
                              wino_fwd *f) {
    wino_cfg cfg =
        pick_cfg(dev, cv, flip ? CLCNN_CONV_PASS_BACKWARD_DATA : CLCNN_CONV_PASS_FORWARD, key);
    int a2 = (cfg.mt + 2) * (cfg.mt + 2);
    int th = cc_ceil_div(cv->p, cfg.mt), tw = cc_ceil_div(cv->q, cfg.mt);
    int trw = 16 / cfg.sw;
    size_t spi = (size_t)cc_ceil_div(th, trw) * (size_t)cc_ceil_div(tw, cfg.sw);
    size_t strips = (size_t)cv->n * spi;
    size_t ufloats = (size_t)a2 * cv->k * cv->cpg;
    CC_RETURN_IF(strips > INT_MAX || ufloats > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d winograd: %zu tile strips or a %zu-float filter transform are too many",
                 strips, ufloats);

    /* Split the channels of a group further when there are too few strips to keep the
     * device busy (about 8 work-items per compute unit; 64 x lws on a GPU). */
    int mr = cfg.mr;
    size_t want = (size_t)(dev->info.compute_units ? dev->info.compute_units : 1) *
                  (dev->info.type == CLCNN_DEVICE_GPU ? 64 * (size_t)cfg.lws : 8);
    size_t have = strips * (size_t)cv->groups * (size_t)cc_ceil_div(cv->kpg, mr);
    if (have < want) {
        int more = (int)((want + have - 1) / have);
        int smaller = cc_ceil_div(mr, more);
        mr = smaller < cfg.tm ? (cfg.tm < mr ? cfg.tm : mr) : smaller;
    }
    int msplit = cc_ceil_div(cv->kpg, mr);

    *f = (wino_fwd){.cv = *cv,
                    .cfg = cfg,
                    .mr = mr,
                    .nb = cfg.gemm ? gemm_images(cv, cfg.mt, cfg.sw) : 0,
                    .tlws = cfg.gemm ? gemm_lws(dev, cfg.mt) : 0};
    if (cfg.gemm) /* TM is the GEMM's: the transform kernels share one program */
        snprintf(f->defs, sizeof f->defs, "MT=%d SW=%d", cfg.mt, cfg.sw);
    else
        snprintf(f->defs, sizeof f->defs, "MT=%d SW=%d TM=%d", cfg.mt, cfg.sw, cfg.tm);
    f->gws[0] = strips;
    f->gws[1] = (size_t)cv->groups * (size_t)msplit;
    f->lws[0] = (size_t)cfg.lws;
    f->lws[1] = 1;
    f->scratch = (size_t)cfg.lws * (size_t)(cfg.cc_max + mr) * a2 * 16 * sizeof(float);
    return CLCNN_OK;
}

/* The kernels of f (planned by plan_wino) built and its filter transform of w made. */
static clcnn_status finish_wino(clcnn_device *dev, wino_fwd *f, const clcnn_tensor *w, int flip) {
    size_t ufloats = (size_t)(f->cfg.mt + 2) * (f->cfg.mt + 2) * f->cv.k * f->cv.cpg;
    if (f->cfg.gemm) return prepare_gemm_path(dev, f, w, flip);
    /* both kernels built before anything is enqueued: a build failure writes nothing */
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_filter"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_fwd"));
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){ufloats}, &f->u));
    clcnn_status st = filter_transform(dev, f, w, flip, f->u, 0, 0);
    if (st != CLCNN_OK) {
        clcnn_tensor_free(f->u);
        f->u = NULL;
    }
    return st;
}

static clcnn_status launch_wino(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                                const cc_conv_epilogue *ep, clcnn_tensor *y);

/* Space-to-depth: x rearranged into a pool buffer, then the 3x3 stride-1 convolution. */
static clcnn_status run_s2d(clcnn_device *dev, const wino_fwd *f, const clcnn_tensor *x,
                            const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const cc_conv *o = &f->outer, *g = &f->cv;
    clcnn_tensor *xs = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 4,
                               (size_t[]){(size_t)g->n, (size_t)g->c, (size_t)g->h, (size_t)g->w},
                               &xs));
    clcnn_status st = cc_launch(dev, "conv2d_winograd", f->defs, "winograd_s2d_input", 1,
                                (size_t[]){(size_t)g->n * g->c * g->h}, NULL,
                                CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                                        CC_ARG_MEM(xs->storage->mem), CC_ARG_INT(xs->offset),
                                        CC_ARG_INT(o->n), CC_ARG_INT(o->c), CC_ARG_INT(o->h),
                                        CC_ARG_INT(o->w), CC_ARG_INT(f->s2d), CC_ARG_INT(o->ph),
                                        CC_ARG_INT(o->pw), CC_ARG_INT(g->h), CC_ARG_INT(g->w)));
    if (st == CLCNN_OK) {
        wino_fwd inner = *f; /* shares U or the GEMMs: nothing of it is released */
        inner.s2d = 0;
        st = launch_wino(dev, &inner, xs, ep, y);
    }
    clcnn_tensor_free(xs); /* the in-order queue runs the kernels before any reuse */
    return st;
}

/* y = act(conv(x) + b + z) (ep NULL: the convolution alone). */
static clcnn_status launch_wino(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                                const cc_conv_epilogue *ep, clcnn_tensor *y) {
    static const cc_conv_epilogue none = {.act = CLCNN_ACT_NONE};
    if (!ep) ep = &none;
    const wino_fwd *f = state;
    if (f->s2d) return run_s2d(dev, f, x, ep, y);
    if (f->cfg.gemm) return run_gemm_path(dev, f, x, ep, y);
    const cc_conv *cv = &f->cv;
    const clcnn_tensor *u = f->u, *b = ep->b, *z = ep->z;
    return cc_launch(
        dev, "conv2d_winograd", f->defs, "winograd_fwd", 2, f->gws, f->lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(u->storage->mem),
                CC_ARG_INT(u->offset), CC_ARGS_OPT(b, u->storage->mem),
                CC_ARGS_OPT(z, u->storage->mem), CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                CC_ARG_INT(cv->n), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h), CC_ARG_INT(cv->w),
                CC_ARG_INT(cv->k), CC_ARG_INT(cv->p), CC_ARG_INT(cv->q), CC_ARG_INT(cv->ph),
                CC_ARG_INT(cv->pw), CC_ARG_INT(cv->groups), CC_ARG_INT(ep->act),
                CC_ARG_FLOAT(ep->alpha), CC_ARG_INT(f->cfg.cc_max), CC_ARG_INT(f->mr),
                CC_ARG_LOCAL(f->scratch)));
}

static clcnn_status prepare_wino(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                 int flip, const cc_conv *key, wino_fwd *f) {
    CC_TRY(plan_wino(dev, cv, flip, key, f));
    return finish_wino(dev, f, w, flip);
}

static void fwd_release(void *state) {
    clcnn_tensor_free(((wino_fwd *)state)->u); /* the in-order queue runs the kernels before
                                                * any reuse */
    release_gemms(state);
}

/* Space-to-depth: the plan of the 3x3 stride-1 convolution (keyed in the tuning file by
 * the layer's own geometry), its kernels, the rearranged weights (a pool buffer, freed
 * once the filter transform is enqueued) and their transform. */
static clcnn_status prepare_s2d(clcnn_device *dev, const cc_conv *cv, int S, const clcnn_tensor *w,
                                wino_fwd *f) {
    cc_conv g = s2d_geometry(cv, S);
    CC_TRY(plan_wino(dev, &g, 0, cv, f));
    f->s2d = S;
    f->outer = *cv;
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_s2d_filter"));
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_winograd", f->defs, "winograd_s2d_input"));
    size_t wsn = (size_t)g.k * g.c * 9;
    clcnn_tensor *ws = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 4, (size_t[]){(size_t)g.k, (size_t)g.c, 3, 3}, &ws));
    clcnn_status st =
        cc_launch(dev, "conv2d_winograd", f->defs, "winograd_s2d_filter", 1, (size_t[]){wsn}, NULL,
                  CC_ARGS(CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                          CC_ARG_MEM(ws->storage->mem), CC_ARG_INT(ws->offset), CC_ARG_INT(cv->k),
                          CC_ARG_INT(cv->c), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s), CC_ARG_INT(S)));
    if (st == CLCNN_OK) st = finish_wino(dev, f, ws, 0);
    clcnn_tensor_free(ws); /* the in-order queue runs the transform before any reuse */
    return st;
}

static clcnn_status fwd_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                int act, void *state) {
    (void)act; /* run time: never CLCNN_ACT_ID_SILU (cc_conv_fwd_create) */
    int S = cc_conv2d_winograd_supports(cv) ? 0 : cc_conv2d_winograd_s2d(cv);
    if (S) return prepare_s2d(dev, cv, S, w, state);
    return prepare_wino(dev, cv, w, 0, cv, state);
}

const cc_conv2d_fwd_impl cc_conv2d_winograd_fwd = {sizeof(wino_fwd), fwd_prepare, launch_wino,
                                                   fwd_release, 1};

/* dx (n, c, h, w) = conv(dy (n, k, p, q), w rotated, channel dims swapped), 3x3, stride 1,
 * padding 2 - pad (cc_conv_transposed): its output is h x w again. */
clcnn_status cc_conv2d_winograd_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx) {
    cc_conv t = cc_conv_transposed(cv);
    wino_fwd f;
    CC_TRY(prepare_wino(dev, &t, w, 1, cv, &f));
    clcnn_status st = launch_wino(dev, &f, dy, NULL, dx);
    fwd_release(&f);
    return st;
}

/* Near the heuristic: the other tile size where the output allows it, half and double
 * TM (tiles per work-item), and segment widths (SW) 8 and 4, on the heuristic's path; on
 * CPUs also the other path (G: the fused kernel or the GEMM path) with its own defaults;
 * exhaustive: TM {4, 8, 16, 32} x SW {pick, 16, 8, 4} x both MT up to max, on the
 * heuristic's path, then the other one. */
int cc_conv2d_winograd_cfg_candidates(const clcnn_device *dev, const cc_conv *cv, int pass,
                                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    int S = pass == CLCNN_CONV_PASS_FORWARD && !cc_conv2d_winograd_supports(cv)
                ? cc_conv2d_winograd_s2d(cv)
                : 0;
    if ((!S && !cc_conv2d_winograd_supports(cv)) || pass == CLCNN_CONV_PASS_BACKWARD_FILTER)
        return 0;
    cc_conv t = S                                       ? s2d_geometry(cv, S)
                : pass == CLCNN_CONV_PASS_BACKWARD_DATA ? cc_conv_transposed(cv)
                                                        : *cv;
    wino_cfg h;
    make_cfg(dev, &t, NULL, &h);
    int want[42][4], nw = 0; /* mt, sw, tm, path (-1: the heuristic's) */
    if (exhaustive) {
        static const int tms[] = {4, 8, 16, 32}, sws[] = {0, 16, 8, 4};
        for (int m = 4; m >= 2; m -= 2)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    if (nw < 32) {
                        int v[4] = {m, sws[j], tms[i], -1};
                        memcpy(want[nw++], v, sizeof v);
                    }
    } else {
        int tm_lo = h.tm / 2 >= 1 ? h.tm / 2 : 1, tm_hi = h.tm * 2 <= 32 ? h.tm * 2 : 32;
        int v[][4] = {{h.mt, 0, tm_lo, -1},
                      {h.mt, 0, tm_hi, -1},
                      {6 - h.mt, 0, h.tm, -1},
                      {h.mt, h.sw == 8 ? 4 : 8, h.tm, -1},
                      {h.mt, h.sw == 16 ? 4 : 16, h.tm, -1}};
        for (int i = 0; i < 5; i++)
            memcpy(want[nw++], v[i], sizeof v[i]);
    }
    if (dev->info.type != CLCNN_DEVICE_GPU) /* the other path, both tile sizes */
        for (int m = 4; m >= 2; m -= 2) {
            int v[4] = {m, 0, h.tm, !h.gemm};
            memcpy(want[nw++], v, sizeof v);
        }
    int n = 0;
    for (int i = 0; i < nw && n < max; i++) {
        int f[6] = {want[i][0], want[i][1], want[i][2], 0, 0, want[i][3]};
        wino_cfg c;
        if (!make_cfg(dev, &t, f, &c)) continue;
        if (c.gemm == h.gemm && c.mt == h.mt && c.sw == h.sw && (c.gemm || c.tm == h.tm))
            continue;            /* the heuristic (the GEMM path ignores TM) */
        if (c.gemm) f[2] = h.tm; /* one string per GEMM-path configuration */
        char s[CC_CONV_CFG_MAX];
        if (f[5] < 0)
            snprintf(s, sizeof s, "%d %d %d 0 0", f[0], f[1], f[2]);
        else
            snprintf(s, sizeof s, "%d %d %d 0 0 %d", f[0], f[1], f[2], f[5]);
        int dup = 0;
        for (int k = 0; k < n; k++)
            dup |= !strcmp(out[k], s);
        if (!dup) memcpy(out[n++], s, sizeof s);
    }
    return n;
}
