/* Implicit-GEMM conv2d, backward data: the same GEMM kernel as the forward
 * (lib/ops/conv2d_implicit.c, cl/conv2d_implicit.cl). With stride 1 it runs the
 * transposed convolution (dy in, the weights flipped with their channel dims swapped);
 * with strides up to 32 the stride-1 convolutions of the phase decomposition of dx,
 * followed by a scatter into dx (backward_data_phases; a phase buffer of about dx's size,
 * in chunks of images within cc_conv_workspace_limit()). At stride 1 the GEMM's epilogue can
 * also finish a ReLU's gradient over a sum (cc_conv2d_implicit_backward_data_relu: the
 * RGRAD define; training plans' Add + ReLU backward). Shapes were checked by
 * lib/ops/conv2d.c. */
#include "conv2d_implicit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strides up to 32: the phases of an axis are the bits of one uint (phase_axis). */
int cc_conv2d_implicit_supports_data(const cc_conv *cv) {
    return cv->sh <= 32 && cv->sw <= 32;
}

/* ep: NULL, or the ReLU gradient's (z, mask) */
static clcnn_status backward_data_stride1(clcnn_device *dev, const cc_conv *cv,
                                          const clcnn_tensor *dy, const clcnn_tensor *w,
                                          const cc_conv_epilogue *ep, clcnn_tensor *dx) {
    cc_conv t = cc_conv_transposed(cv);
    implicit_fwd f;
    CC_TRY(
        cc_implicit_prepare(dev, &t, w, 1, cv, ep ? CC_IMPLICIT_RELU_GRAD : CLCNN_ACT_ID_NONE, &f));
    clcnn_status st =
        cc_implicit_launch(dev, &t, &f.pl, dy->storage->mem, dy->offset, f.wt->storage->mem,
                           f.wt->offset, ep, dx->storage->mem, dx->offset);
    clcnn_tensor_free(f.wt); /* the in-order queue runs the kernels before any reuse */
    return st;
}

/* One axis of the phase decomposition (rows: stride sh, padding ph, dilation dh, r taps).
 * Input row hi = a + sh*i (phase a = hi mod sh) receives from output row pi = i + e with
 * e = (a + ph - kr*dh) / sh for every tap kr that makes the division exact. mask: the
 * phases with at least one such tap (bit a; only phase `only` when only >= 0), count of
 * them; e ranges over emin .. emin + taps - 1. */
typedef struct phase_axis {
    unsigned mask;
    int count, emin, taps;
} phase_axis;

static phase_axis axis_phases(int stride, int pad, int dil, int r, int only) {
    phase_axis ax = {0, 0, INT_MAX, 0};
    int emax = INT_MIN;
    for (int a = 0; a < stride; a++) {
        if (only >= 0 && a != only) continue;
        for (int kr = 0; kr < r; kr++) {
            long long num = (long long)a + pad - (long long)kr * dil;
            if (num % stride != 0) continue;
            int e = (int)(num / stride);
            ax.mask |= 1u << a;
            if (e < ax.emin) ax.emin = e;
            if (e > emax) emax = e;
        }
    }
    for (int a = 0; a < stride; a++)
        ax.count += (int)(ax.mask >> a & 1u);
    ax.taps = emax - ax.emin + 1; /* called for phases with taps only (kr = 0 gives one) */
    return ax;
}

/* The phase whose rank among the set bits of mask is i. */
static int nth_phase(unsigned mask, int i) {
    for (int a = 0; a < 32; a++)
        if ((mask >> a & 1u) && i-- == 0) return a;
    return 0;
}

/* The stride-1 convolution of dy (n images) that computes the phases ah x aw of dx: input
 * channel ci at the ai-th row phase and bi-th column phase is its output channel
 * (ci*na + ai)*nb + bi (per group), over the union of the phases' taps. */
static cc_conv phase_geometry(const cc_conv *cv, const phase_axis *ah, const phase_axis *aw,
                              int n) {
    int nph = ah->count * aw->count;
    return (cc_conv){
        .n = n,
        .c = cv->k,
        .h = cv->p,
        .w = cv->q,
        .k = cv->c * nph,
        .r = ah->taps,
        .s = aw->taps,
        .p = cc_ceil_div(cv->h, cv->sh),
        .q = cc_ceil_div(cv->w, cv->sw),
        .sh = 1,
        .sw = 1,
        .ph = -ah->emin,
        .pw = -aw->emin,
        .dh = 1,
        .dw = 1,
        .groups = cv->groups,
        .cpg = cv->kpg,
        .kpg = cv->cpg * nph,
    };
}

/* One stride-1 GEMM of the decomposition: its phases, geometry, plan and the offset of
 * its weights in the shared buffer. */
typedef struct phase_job {
    phase_axis ah, aw;
    cc_conv t;
    gemm_plan pl;
    size_t wt_off;
    int used; /* planned with the parameter string (else the heuristic) */
} phase_job;

#define MAX_SPLIT 16 /* phases run as separate GEMMs at most (strides up to 4x4) */

/* Whether to run each phase as its own GEMM (split) rather than all phases as one. One
 * GEMM over the union of the taps computes zeros where a phase has no tap (3x3 stride 2:
 * 16 products for 9) and grows the filter by as much, but keeps TM output channels busy
 * when a group has few input channels (AlexNet conv1: 3 channels, 48 as one GEMM); split
 * computes no zeros (with dilation 1) and keeps the weights of a GEMM small. Split when
 * a group has at least 32 input channels; $CLCNN_CONV_DGRAD_SPLIT=0|1 overrides (tests). */
static int split_phases(const cc_conv *cv, int nph) {
    if (nph <= 1 || nph > MAX_SPLIT) return 0;
    const char *e = getenv("CLCNN_CONV_DGRAD_SPLIT");
    if (e && (e[0] == '0' || e[0] == '1') && e[1] == '\0') return e[0] == '1';
    return cv->cpg >= 32;
}

/* Stride > 1: the phase decomposition. The input positions of one phase (a, b) (rows
 * a + sh*i, columns b + sw*j) receive from dy through a stride-1 convolution with only
 * the taps of that phase: implicit GEMMs of dy (one per phase, or one for all phases, see
 * split_phases) into a phase buffer of ceil(h/sh) x ceil(w/sw) planes, then
 * implicit_phase_scatter puts every element in its place in dx (zero in phases without
 * taps). The batch goes in chunks whose phase buffer fits cc_conv_workspace_limit(). */
static clcnn_status backward_data_phases(clcnn_device *dev, const cc_conv *cv,
                                         const clcnn_tensor *dy, const clcnn_tensor *w,
                                         clcnn_tensor *dx) {
    phase_axis ah = axis_phases(cv->sh, cv->ph, cv->dh, cv->r, -1);
    phase_axis aw = axis_phases(cv->sw, cv->pw, cv->dw, cv->s, -1);
    int pp = cc_ceil_div(cv->h, cv->sh), qq = cc_ceil_div(cv->w, cv->sw);
    int nph = ah.count * aw.count;
    size_t plane = (size_t)pp * qq;
    /* images per chunk: as many phase buffers as fit the workspace limit, at least one */
    size_t per_img = (size_t)cv->c * nph * plane;
    size_t lim = cc_conv_workspace_limit();
    if (dev->info.max_alloc_bytes && dev->info.max_alloc_bytes < lim)
        lim = (size_t)dev->info.max_alloc_bytes;
    size_t fit = lim / (per_img * sizeof(float));
    int nb = fit < 1 ? 1 : fit >= (size_t)cv->n ? cv->n : (int)fit;
    CC_RETURN_IF(per_img * nb > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: the phase buffer of one image (%zu floats) is too large "
                 "(use direct or gemm)",
                 per_img);

    int split = split_phases(cv, nph), njobs = split ? nph : 1;
    phase_job jobs[MAX_SPLIT];
    size_t wfloats = 0;
    /* one parameter string for every GEMM, keyed by the layer; a GEMM it does not fit
     * uses the heuristic */
    char tmp[CC_CONV_CFG_MAX];
    const char *e = cc_implicit_cfg_string(dev, CLCNN_CONV_PASS_BACKWARD_DATA, cv, tmp);
    int any_used = 0;
    for (int j = 0; j < njobs; j++) {
        phase_job *jb = &jobs[j];
        jb->ah = split
                     ? axis_phases(cv->sh, cv->ph, cv->dh, cv->r, nth_phase(ah.mask, j / aw.count))
                     : ah;
        jb->aw = split
                     ? axis_phases(cv->sw, cv->pw, cv->dw, cv->s, nth_phase(aw.mask, j % aw.count))
                     : aw;
        jb->t = phase_geometry(cv, &jb->ah, &jb->aw, nb);
        CC_TRY(cc_implicit_plan_gemm(dev, &jb->t, e, &jb->pl, &jb->used));
        any_used |= jb->used;
        jb->wt_off = wfloats;
        wfloats += jb->pl.wfloats;
        /* every kernel built before anything is enqueued: a build failure writes nothing */
        CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", jb->pl.defs, "implicit_weights_phase"));
        CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", jb->pl.defs, "conv2d_implicit_fwd"));
        CC_TRY(cc_conv2d_prepare(dev, "conv2d_implicit", jb->pl.defs, "implicit_phase_scatter"));
    }
    CC_RETURN_IF(wfloats > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d implicit_gemm: the phase weights (%zu floats) are too large", wfloats);
    cc_conv_cfg_used(CLCNN_CONV_IMPLICIT_GEMM, any_used ? e : NULL);
    clcnn_tensor *wt = NULL, *buf = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){wfloats}, &wt));
    clcnn_status st = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){per_img * nb}, &buf);
    for (int j = 0; j < njobs && st == CLCNN_OK; j++) {
        const phase_job *jb = &jobs[j];
        st = cc_launch(
            dev, "conv2d_implicit", jb->pl.defs, "implicit_weights_phase", 1,
            (size_t[]){jb->pl.wfloats / (size_t)jb->pl.mp}, NULL,
            CC_ARGS(CC_ARG_MEM(w->storage->mem), CC_ARG_INT(w->offset),
                    CC_ARG_MEM(wt->storage->mem), CC_ARG_INT(wt->offset + jb->wt_off),
                    CC_ARG_INT(cv->kpg), CC_ARG_INT(cv->cpg), CC_ARG_INT(cv->r), CC_ARG_INT(cv->s),
                    CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw),
                    CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw), CC_ARG_INT(jb->ah.taps),
                    CC_ARG_INT(jb->aw.taps), CC_ARG_INT(jb->ah.emin), CC_ARG_INT(jb->aw.emin),
                    CC_ARG_UINT(jb->ah.mask), CC_ARG_UINT(jb->aw.mask), CC_ARG_INT(jb->ah.count),
                    CC_ARG_INT(jb->aw.count), CC_ARG_INT(jb->pl.mp), CC_ARG_INT(cv->groups)));
    }
    size_t dy_img = (size_t)cv->k * cv->p * cv->q;
    for (int n0 = 0; n0 < cv->n && st == CLCNN_OK; n0 += nb) {
        int nbc = cv->n - n0 < nb ? cv->n - n0 : nb;
        /* split: buf is (phase, image, c, pp, qq); else (image, c*nph, pp, qq) */
        size_t slot = (size_t)nbc * cv->c * plane;
        for (int j = 0; j < njobs && st == CLCNN_OK; j++) {
            phase_job *jb = &jobs[j];
            if (nbc != jb->t.n) { /* the last, shorter chunk: same program (TM, VW), new grid */
                jb->t.n = nbc;
                int u; /* fewer tiles: what fitted before fits again */
                st = cc_implicit_plan_gemm(dev, &jb->t, jb->used ? e : NULL, &jb->pl, &u);
                if (st != CLCNN_OK) break;
            }
            st = cc_implicit_launch(dev, &jb->t, &jb->pl, dy->storage->mem,
                                    dy->offset + (size_t)n0 * dy_img, wt->storage->mem,
                                    wt->offset + jb->wt_off, NULL, buf->storage->mem,
                                    buf->offset + (size_t)j * slot);
        }
        if (st != CLCNN_OK) break;
        size_t zs = split ? plane : (size_t)nph * plane, phs = split ? slot : plane;
        size_t gws[2] = {(size_t)cv->h, (size_t)nbc * cv->c};
        st = cc_launch(dev, "conv2d_implicit", jobs[0].pl.defs, "implicit_phase_scatter", 2, gws,
                       NULL,
                       CC_ARGS(CC_ARG_MEM(buf->storage->mem), CC_ARG_INT(buf->offset),
                               CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset), CC_ARG_INT(n0),
                               CC_ARG_INT(nbc), CC_ARG_INT(cv->c), CC_ARG_INT(cv->h),
                               CC_ARG_INT(cv->w), CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw),
                               CC_ARG_UINT(ah.mask), CC_ARG_UINT(aw.mask), CC_ARG_INT(aw.count),
                               CC_ARG_INT(zs), CC_ARG_INT(phs), CC_ARG_INT(qq)));
    }
    clcnn_tensor_free(buf); /* the in-order queue runs the kernels before any reuse */
    clcnn_tensor_free(wt);
    return st;
}

void cc_conv2d_implicit_data_gemms(const cc_conv *cv, int *min_m, int *min_k, size_t *max_wbytes) {
    *min_m = INT_MAX;
    *min_k = INT_MAX;
    *max_wbytes = 0;
    if (cv->sh == 1 && cv->sw == 1) { /* one GEMM: the transposed convolution */
        *min_m = cv->cpg;
        *min_k = cv->kpg * cv->r * cv->s;
        *max_wbytes = (size_t)*min_m * *min_k * sizeof(float);
        return;
    }
    phase_axis ah = axis_phases(cv->sh, cv->ph, cv->dh, cv->r, -1);
    phase_axis aw = axis_phases(cv->sw, cv->pw, cv->dw, cv->s, -1);
    int nph = ah.count * aw.count, split = split_phases(cv, nph), njobs = split ? nph : 1;
    for (int j = 0; j < njobs; j++) {
        phase_axis jh =
            split ? axis_phases(cv->sh, cv->ph, cv->dh, cv->r, nth_phase(ah.mask, j / aw.count))
                  : ah;
        phase_axis jw =
            split ? axis_phases(cv->sw, cv->pw, cv->dw, cv->s, nth_phase(aw.mask, j % aw.count))
                  : aw;
        cc_conv t = phase_geometry(cv, &jh, &jw, cv->n);
        int k = t.cpg * t.r * t.s;
        size_t wb = (size_t)t.kpg * k * sizeof(float);
        if (t.kpg < *min_m) *min_m = t.kpg;
        if (k < *min_k) *min_k = k;
        if (wb > *max_wbytes) *max_wbytes = wb;
    }
}

/* See conv2d_implicit.h. */
cc_conv cc_implicit_data_gemm0(const cc_conv *cv) {
    if (cv->sh == 1 && cv->sw == 1) return cc_conv_transposed(cv);
    phase_axis ah = axis_phases(cv->sh, cv->ph, cv->dh, cv->r, -1);
    phase_axis aw = axis_phases(cv->sw, cv->pw, cv->dw, cv->s, -1);
    if (split_phases(cv, ah.count * aw.count)) {
        ah = axis_phases(cv->sh, cv->ph, cv->dh, cv->r, nth_phase(ah.mask, 0));
        aw = axis_phases(cv->sw, cv->pw, cv->dw, cv->s, nth_phase(aw.mask, 0));
    }
    return phase_geometry(cv, &ah, &aw, cv->n);
}

clcnn_status cc_conv2d_implicit_backward_data(clcnn_device *dev, const cc_conv *cv,
                                              const clcnn_tensor *dy, const clcnn_tensor *w,
                                              clcnn_tensor *dx) {
    if (cv->sh == 1 && cv->sw == 1) return backward_data_stride1(dev, cv, dy, w, NULL, dx);
    return backward_data_phases(dev, cv, dy, w, dx);
}

clcnn_status cc_conv2d_implicit_backward_data_relu(clcnn_device *dev, const cc_conv *cv,
                                                   const clcnn_tensor *dy, const clcnn_tensor *w,
                                                   const clcnn_tensor *z, const clcnn_tensor *mask,
                                                   clcnn_tensor *dx) {
    cc_conv_epilogue ep = {.z = z, .mask = mask, .act = CLCNN_ACT_NONE};
    return backward_data_stride1(dev, cv, dy, w, &ep, dx);
}
