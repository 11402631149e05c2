/* GEMM conv2d: im2col (cl/im2col.cl) + CLBlast SGEMM, forward, backward data (GEMM +
 * col2im) and backward filter (im2col + GEMM). Shapes were checked by lib/ops/conv2d.c.
 *
 * Shape key: x (n, c, h, w); w (k, cpg, r, s); y (n, k, p, q); cpg = c/groups,
 * kpg = k/groups, crs = cpg*r*s (the reduction of one output), PQ = p*q.
 * Per image b and group g, with col_bg the (crs, PQ) im2col matrix of x[b, group g]:
 *   forward   y_bg  (kpg, PQ)  = W_g (kpg, crs) * col_bg (crs, PQ)
 *   data      dcol_bg (crs, PQ) = W_g^T * dy_bg (kpg, PQ),   dx = col2im(dcol)
 *   filter    dW_g (kpg, crs)  = sum_b dy_bg * col_bg^T
 * A 1x1 kernel with stride 1 and no padding needs no im2col: x[b, group g] is col_bg
 * itself (and dx[b, group g] is dcol_bg).
 *
 * The workspace (col or dcol) comes from the device's buffer pool and is limited to
 * cc_conv_workspace_limit() bytes (256 MiB): the batch is processed in chunks of images
 * and, when one image alone is too large, forward and filter split it into bands of
 * output rows, backward data into ranges of groups. A chunk never goes below one output
 * row (or one group), whatever the limit.
 *
 * Backward filter keeps one partial dW per image of a chunk (one batched GEMM) and sums
 * them with conv2d_sum_parts in image order, chunk after chunk: deterministic. */
#include "conv2d_impl.h"

#include <limits.h>
#include <stdlib.h>

typedef struct gemm_grid {
    int ta, tb;
    float beta; /* C = A*B + beta*C */
    size_t m, n, k;
    cl_mem a;
    size_t a_off, lda, a_img, a_grp; /* offset, leading dim, step per image, per group */
    cl_mem b;
    size_t b_off, ldb, b_img, b_grp;
    cl_mem c;
    size_t c_off, ldc, c_img, c_grp;
} gemm_grid;

/* C_ig = A_ig * B_ig + beta C_ig for nimg images x ngrp groups: one strided-batched call
 * over the longer of the two dimensions per entry of the shorter one. */
static clcnn_status run_grid(clcnn_device *dev, const gemm_grid *g, int nimg, int ngrp) {
    if (nimg >= ngrp) {
        for (int gi = 0; gi < ngrp; gi++)
            CC_TRY(cc_sgemm_strided_batched(
                dev, g->ta, g->tb, g->m, g->n, g->k, 1.0f, g->a, g->a_off + gi * g->a_grp, g->lda,
                g->a_img, g->b, g->b_off + gi * g->b_grp, g->ldb, g->b_img, g->beta, g->c,
                g->c_off + gi * g->c_grp, g->ldc, g->c_img, (size_t)nimg));
    } else {
        for (int i = 0; i < nimg; i++)
            CC_TRY(cc_sgemm_strided_batched(
                dev, g->ta, g->tb, g->m, g->n, g->k, 1.0f, g->a, g->a_off + i * g->a_img, g->lda,
                g->a_grp, g->b, g->b_off + i * g->b_img, g->ldb, g->b_grp, g->beta, g->c,
                g->c_off + i * g->c_img, g->ldc, g->c_grp, (size_t)ngrp));
    }
    return CLCNN_OK;
}

static int is_pointwise(const cc_conv *cv) {
    return cv->r == 1 && cv->s == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
}

static size_t workspace_limit(const clcnn_device *dev) {
    size_t lim = cc_conv_workspace_limit();
    if (dev->info.max_alloc_bytes && dev->info.max_alloc_bytes < lim)
        lim = (size_t)dev->info.max_alloc_bytes;
    return lim;
}

/* A chunk of the batch for the im2col paths: images [n0, n0+nb) x output rows
 * [p0, p0+prow) (prow < p only when nb == 1). */
typedef struct chunking {
    int nb;   /* images per chunk */
    int prow; /* output rows per chunk */
} chunking;

/* extra_per_image: further bytes per image of a chunk (filter partials). */
static chunking plan_chunks(const clcnn_device *dev, const cc_conv *cv, size_t extra_per_image) {
    size_t lim = workspace_limit(dev);
    size_t row_bytes = (size_t)cv->c * cv->r * cv->s * cv->q * sizeof(float);
    size_t img_bytes = row_bytes * cv->p + extra_per_image;
    chunking ch = {1, cv->p};
    if (img_bytes <= lim) {
        size_t nb = lim / img_bytes;
        ch.nb = nb >= (size_t)cv->n ? cv->n : (int)nb;
    } else {
        size_t rows = lim > extra_per_image ? (lim - extra_per_image) / row_bytes : 0;
        ch.prow = rows < 1 ? 1 : (int)rows;
    }
    return ch;
}

static clcnn_status launch_im2col(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                  const clcnn_tensor *col, int n0, int nb, int p0, int prow) {
    size_t gws[3] = {(size_t)prow * cv->q, (size_t)cv->c * cv->r * cv->s, (size_t)nb};
    size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 16, 1, 1};
    return cc_launch(
        dev, "im2col", "", "im2col", 3, gws, lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(col->storage->mem),
                CC_ARG_INT(col->offset), CC_ARG_INT(n0), CC_ARG_INT(nb), CC_ARG_INT(cv->c),
                CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(0), CC_ARG_INT(cv->c),
                CC_ARG_INT(p0), CC_ARG_INT(prow), CC_ARG_INT(cv->q), CC_ARG_INT(cv->r),
                CC_ARG_INT(cv->s), CC_ARG_INT(cv->sh), CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph),
                CC_ARG_INT(cv->pw), CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw)));
}

static clcnn_status new_workspace(clcnn_device *dev, size_t floats, clcnn_tensor **out) {
    /* One output row of one image can exceed any limit; kernels index with int. */
    CC_RETURN_IF(floats > INT_MAX, CLCNN_ERR_UNSUPPORTED,
                 "conv2d gemm: the im2col workspace of %zu floats for one chunk is too large "
                 "(use the direct algorithm)",
                 floats);
    return clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){floats}, out);
}

/* ---- forward ---------------------------------------------------------------------------- */

static clcnn_status forward_chunks(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *x,
                                   const clcnn_tensor *w, clcnn_tensor *y, clcnn_tensor *col,
                                   chunking ch, float beta) {
    size_t rs = (size_t)cv->r * cv->s, crs = (size_t)cv->cpg * rs, pq = (size_t)cv->p * cv->q;
    for (int n0 = 0; n0 < cv->n; n0 += ch.nb) {
        int nb = cv->n - n0 < ch.nb ? cv->n - n0 : ch.nb;
        for (int p0 = 0; p0 < cv->p; p0 += ch.prow) {
            int prow = cv->p - p0 < ch.prow ? cv->p - p0 : ch.prow;
            size_t cols = (size_t)prow * cv->q;
            CC_TRY(launch_im2col(dev, cv, x, col, n0, nb, p0, prow));
            gemm_grid g = {
                .ta = 0,
                .tb = 0,
                .beta = beta,
                .m = (size_t)cv->kpg,
                .n = cols,
                .k = crs,
                .a = w->storage->mem,
                .a_off = w->offset,
                .lda = crs,
                .a_img = 0,
                .a_grp = (size_t)cv->kpg * crs,
                .b = col->storage->mem,
                .b_off = col->offset,
                .ldb = cols,
                .b_img = (size_t)cv->c * rs * cols,
                .b_grp = crs * cols,
                .c = y->storage->mem,
                .c_off = y->offset + (size_t)n0 * cv->k * pq + (size_t)p0 * cv->q,
                .ldc = pq,
                .c_img = (size_t)cv->k * pq,
                .c_grp = (size_t)cv->kpg * pq,
            };
            CC_TRY(run_grid(dev, &g, nb, cv->groups));
        }
    }
    return CLCNN_OK;
}

/* The forward prepared for one geometry: the batch chunks of its im2col workspace. */
typedef struct gemm_fwd {
    cc_conv cv;
    const clcnn_tensor *w; /* borrowed */
    chunking ch;
} gemm_fwd;

static clcnn_status fwd_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                int act, void *state) {
    (void)act; /* run time: never CLCNN_ACT_ID_SILU (cc_conv_fwd_create) */
    CC_TRY(cc_conv2d_prepare(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_bias_act"));
    if (!is_pointwise(cv)) CC_TRY(cc_conv2d_prepare(dev, "im2col", "", "im2col"));
    *(gemm_fwd *)state = (gemm_fwd){.cv = *cv, .w = w, .ch = plan_chunks(dev, cv, 0)};
    return CLCNN_OK;
}

/* The GEMMs write y; a residual z that is y itself is added by them (beta 1), any other
 * by the bias kernel that follows. */
static clcnn_status fwd_run(clcnn_device *dev, const void *state, const clcnn_tensor *x,
                            const cc_conv_epilogue *ep, clcnn_tensor *y) {
    const gemm_fwd *f = state;
    const cc_conv *cv = &f->cv;
    const clcnn_tensor *w = f->w, *z = ep->z;
    float beta = 0.0f;
    if (z && z->storage == y->storage && z->offset == y->offset) {
        beta = 1.0f;
        z = NULL;
    }
    size_t crs = (size_t)cv->cpg * cv->r * cv->s, pq = (size_t)cv->p * cv->q;
    if (is_pointwise(cv)) {
        size_t hw = (size_t)cv->h * cv->w; /* == pq */
        gemm_grid g = {
            .ta = 0,
            .tb = 0,
            .beta = beta,
            .m = (size_t)cv->kpg,
            .n = pq,
            .k = crs,
            .a = w->storage->mem,
            .a_off = w->offset,
            .lda = crs,
            .a_img = 0,
            .a_grp = (size_t)cv->kpg * crs,
            .b = x->storage->mem,
            .b_off = x->offset,
            .ldb = hw,
            .b_img = (size_t)cv->c * hw,
            .b_grp = (size_t)cv->cpg * hw,
            .c = y->storage->mem,
            .c_off = y->offset,
            .ldc = pq,
            .c_img = (size_t)cv->k * pq,
            .c_grp = (size_t)cv->kpg * pq,
        };
        CC_TRY(run_grid(dev, &g, cv->n, cv->groups));
    } else {
        clcnn_tensor *col = NULL;
        CC_TRY(new_workspace(dev, (size_t)f->ch.nb * cv->c * cv->r * cv->s * f->ch.prow * cv->q,
                             &col));
        clcnn_status st = forward_chunks(dev, cv, x, w, y, col, f->ch, beta);
        clcnn_tensor_free(col); /* in-order queue: reuse comes after these kernels */
        CC_TRY(st);
    }
    return cc_conv2d_bias_act(dev, cv, ep->b, z, y, ep->act, ep->alpha);
}

const cc_conv2d_fwd_impl cc_conv2d_gemm_fwd = {sizeof(gemm_fwd), fwd_prepare, fwd_run, NULL, 0};

/* ---- backward data ------------------------------------------------------------------------ */

clcnn_status cc_conv2d_gemm_backward_data(clcnn_device *dev, const cc_conv *cv,
                                          const clcnn_tensor *dy, const clcnn_tensor *w,
                                          clcnn_tensor *dx) {
    size_t rs = (size_t)cv->r * cv->s, crs = (size_t)cv->cpg * rs, pq = (size_t)cv->p * cv->q;
    gemm_grid g = {
        .ta = 1,
        .tb = 0,
        .m = crs,
        .n = pq,
        .k = (size_t)cv->kpg,
        .a = w->storage->mem,
        .a_off = w->offset,
        .lda = crs,
        .a_img = 0,
        .a_grp = (size_t)cv->kpg * crs,
        .b = dy->storage->mem,
        .b_off = dy->offset,
        .ldb = pq,
        .b_img = (size_t)cv->k * pq,
        .b_grp = (size_t)cv->kpg * pq,
    };
    if (is_pointwise(cv)) {
        g.c = dx->storage->mem;
        g.c_off = dx->offset;
        g.ldc = pq;
        g.c_img = (size_t)cv->c * pq;
        g.c_grp = (size_t)cv->cpg * pq;
        return run_grid(dev, &g, cv->n, cv->groups);
    }
    /* Chunks of whole images, or of groups of one image when an image is too large. */
    size_t lim = workspace_limit(dev);
    size_t grp_bytes = crs * pq * sizeof(float), img_bytes = grp_bytes * cv->groups;
    int nb = 1, gb = cv->groups;
    if (img_bytes <= lim) {
        size_t v = lim / img_bytes;
        nb = v >= (size_t)cv->n ? cv->n : (int)v;
    } else {
        size_t v = lim / grp_bytes;
        gb = v < 1 ? 1 : (int)v;
    }
    clcnn_tensor *col = NULL;
    CC_TRY(new_workspace(dev, (size_t)nb * gb * crs * pq, &col));
    clcnn_status st = CLCNN_OK;
    for (int n0 = 0; n0 < cv->n && st == CLCNN_OK; n0 += nb) {
        int nbc = cv->n - n0 < nb ? cv->n - n0 : nb;
        for (int g0 = 0; g0 < cv->groups && st == CLCNN_OK; g0 += gb) {
            int gbc = cv->groups - g0 < gb ? cv->groups - g0 : gb;
            gemm_grid gc = g;
            gc.a_off = w->offset + (size_t)g0 * cv->kpg * crs;
            gc.b_off = dy->offset + ((size_t)n0 * cv->k + (size_t)g0 * cv->kpg) * pq;
            gc.c = col->storage->mem;
            gc.c_off = col->offset;
            gc.ldc = pq;
            gc.c_img = (size_t)gbc * crs * pq;
            gc.c_grp = crs * pq;
            st = run_grid(dev, &gc, nbc, gbc);
            if (st != CLCNN_OK) break;
            int cc = gbc * cv->cpg;
            size_t gws[3] = {(size_t)cv->h * cv->w, (size_t)cc, (size_t)nbc};
            size_t lws[3] = {dev->info.type == CLCNN_DEVICE_GPU ? 64 : 16, 1, 1};
            st = cc_launch(dev, "im2col", "", "col2im", 3, gws, lws,
                           CC_ARGS(CC_ARG_MEM(col->storage->mem), CC_ARG_INT(col->offset),
                                   CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset),
                                   CC_ARG_INT(n0), CC_ARG_INT(nbc), CC_ARG_INT(cv->c),
                                   CC_ARG_INT(cv->h), CC_ARG_INT(cv->w), CC_ARG_INT(g0 * cv->cpg),
                                   CC_ARG_INT(cc), CC_ARG_INT(cv->p), CC_ARG_INT(cv->q),
                                   CC_ARG_INT(cv->r), CC_ARG_INT(cv->s), CC_ARG_INT(cv->sh),
                                   CC_ARG_INT(cv->sw), CC_ARG_INT(cv->ph), CC_ARG_INT(cv->pw),
                                   CC_ARG_INT(cv->dh), CC_ARG_INT(cv->dw)));
        }
    }
    clcnn_tensor_free(col);
    return st;
}

/* ---- backward filter ----------------------------------------------------------------------- */

clcnn_status cc_conv2d_gemm_backward_filter(clcnn_device *dev, const cc_conv *cv,
                                            const clcnn_tensor *x, const clcnn_tensor *dy,
                                            clcnn_tensor *dw) {
    size_t rs = (size_t)cv->r * cv->s, crs = (size_t)cv->cpg * rs, pq = (size_t)cv->p * cv->q;
    size_t m = (size_t)cv->k * crs; /* dw elements */
    int pointwise = is_pointwise(cv);
    chunking ch;
    if (pointwise) {
        size_t lim = workspace_limit(dev), per = m * sizeof(float);
        size_t v = lim / per;
        ch.nb = v < 1 ? 1 : v >= (size_t)cv->n ? cv->n : (int)v;
        ch.prow = cv->p;
    } else {
        ch = plan_chunks(dev, cv, m * sizeof(float));
    }
    clcnn_tensor *col = NULL, *part = NULL;
    if (!pointwise) CC_TRY(new_workspace(dev, (size_t)ch.nb * cv->c * rs * ch.prow * cv->q, &col));
    clcnn_status st = new_workspace(dev, (size_t)ch.nb * m, &part);
    int first = 1;
    for (int n0 = 0; n0 < cv->n && st == CLCNN_OK; n0 += ch.nb) {
        int nb = cv->n - n0 < ch.nb ? cv->n - n0 : ch.nb;
        for (int p0 = 0; p0 < cv->p && st == CLCNN_OK; p0 += ch.prow) {
            int prow = cv->p - p0 < ch.prow ? cv->p - p0 : ch.prow;
            size_t cols = (size_t)prow * cv->q;
            gemm_grid g = {
                .ta = 0,
                .tb = 1,
                .m = (size_t)cv->kpg,
                .n = crs,
                .k = cols,
                .a = dy->storage->mem,
                .a_off = dy->offset + (size_t)n0 * cv->k * pq + (size_t)p0 * cv->q,
                .lda = pq,
                .a_img = (size_t)cv->k * pq,
                .a_grp = (size_t)cv->kpg * pq,
                .c = part->storage->mem,
                .c_off = part->offset,
                .ldc = crs,
                .c_img = m,
                .c_grp = (size_t)cv->kpg * crs,
            };
            if (pointwise) {
                size_t hw = (size_t)cv->h * cv->w;
                g.b = x->storage->mem;
                g.b_off = x->offset + (size_t)n0 * cv->c * hw;
                g.ldb = hw;
                g.b_img = (size_t)cv->c * hw;
                g.b_grp = (size_t)cv->cpg * hw;
            } else {
                st = launch_im2col(dev, cv, x, col, n0, nb, p0, prow);
                if (st != CLCNN_OK) break;
                g.b = col->storage->mem;
                g.b_off = col->offset;
                g.ldb = cols;
                g.b_img = (size_t)cv->c * rs * cols;
                g.b_grp = crs * cols;
            }
            st = run_grid(dev, &g, nb, cv->groups);
            if (st != CLCNN_OK) break;
            st = cc_conv2d_sum_parts(dev, part->storage->mem, part->offset, nb, (int)m,
                                     dw->storage->mem, dw->offset, !first);
            first = 0;
        }
    }
    clcnn_tensor_free(col);
    clcnn_tensor_free(part);
    return st;
}
