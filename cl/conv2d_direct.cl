/* Direct 2-D convolution (cross-correlation), forward, backward data and backward
 * filter, for every shape: any kernel size, stride, zero padding, dilation and groups
 * (all of them kernel arguments: one generic variant). Host side:
 * lib/ops/conv2d_direct.c.
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   TILE_K   channels per work-item: output channels (forward, backward filter),
 *            input channels (backward data)                                  default 4
 *   TILE_P   rows per work-item: rows of y (forward), rows of dx of one stride
 *            phase (backward data)                                           default 2
 *   VEC      columns per work-item (forward, backward data) or per vector step
 *            (backward filter); 2, 4, 8 or 16: the width of the float vectors default 8
 *   TILE_C   input channels per work-item (backward filter)                  default 4
 *   PASS     the kernels the program holds: 1 = forward, 3 = backward data (the two
 *            kernels of each use TILE_K, TILE_P and VEC), 2 = backward filter (TILE_C,
 *            TILE_K and VEC), 0 = all six; the host keys each program by the defines
 *            its kernels use, and on POCL most of a cold build is generating every
 *            kernel's code, so inference never builds the gradient kernels    default 0
 *
 * Buffers (dense NCHW, each with an element offset *_off):
 *   x, dx  (n, c, h, w)      wt, dw  (k, cpg, r, s)      y, dy  (n, k, p, q)
 *   b      (k)               part    (splits, k, cpg, r, s) partial filter gradients
 *   z      (n, k, p, q)      forward residual (has_res): y = act(conv + b + z); z may be
 *                            y itself (every element is read by the work-item that writes it)
 * with cpg = c/groups, kpg = k/groups; output channel ko belongs to group ko / kpg and
 * reads input channels g*cpg .. g*cpg + cpg - 1.
 *   y[ni,ko,pi,qi] = sum_{ci,kr,ks} x[ni, g*cpg+ci, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]
 *                                   * wt[ko,ci,kr,ks]          (outside the input: 0)
 *
 * Work-item -> output mapping (every output element is written by exactly one
 * work-item, which sums its terms in a fixed order: deterministic, no atomics):
 *   forward:  dim0 = (p tile, q tile), dim1 = (group, k tile), dim2 = image;
 *             TILE_K channels x TILE_P rows x VEC columns of y.
 *   bwd data: dim0 = (row phase, column phase, row tile, column tile), dim1 = (group,
 *             c tile), dim2 = image; TILE_K channels x TILE_P rows x VEC columns of dx
 *             taken with the stride (rows fh, fh+sh, ...; columns fw, fw+sw, ...), so that
 *             a filter tap either reaches all of them or none and their dy elements
 *             are consecutive: a gather without atomics.
 *   *_flat (forward and backward data for stride 1 with q == w, chosen by the host on
 *             CPUs): dim0 = tile of TILE_P*VEC consecutive values of the output plane
 *             taken as one run, dim1 = (group, channel tile), dim2 = image; the input
 *             index is the output index plus a constant per tap, lanes outside the
 *             input's rows or columns zeroed.
 *   bwd filt: dim0 = (c tile, kr, ks), dim1 = (group, k tile), dim2 = split of the batch;
 *             TILE_K x TILE_C filter taps summed over the split's images, rows and
 *             columns, VEC columns per step (the last step masked); with stride 1 and
 *             q == w the valid rows of a plane are one run of VEC-wide steps whose lanes
 *             outside the row are zeroed. */
#include "common.h"

#ifndef TILE_K
#define TILE_K 4
#endif
#ifndef TILE_P
#define TILE_P 2
#endif
#ifndef VEC
#define VEC 8
#endif
#ifndef TILE_C
#define TILE_C 4
#endif

#if VEC != 2 && VEC != 4 && VEC != 8 && VEC != 16
#error "VEC must be 2, 4, 8 or 16"
#endif
#if TILE_K < 1 || TILE_P < 1 || TILE_C < 1
#error "TILE_K, TILE_P and TILE_C must be at least 1"
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatV CC_CAT(float, VEC)
#define vloadV CC_CAT(vload, VEC)
#define vstoreV CC_CAT(vstore, VEC)
#define intV CC_CAT(int, VEC)

/* The tile loops (TILE_K, TILE_P, TILE_C: compile-time trip counts) carry
 * `#pragma unroll`: POCL's compiler left them rolled, with the accumulators in memory and
 * a load, multiply, add and store per product (1.5-1.9x slower on a 2-core AVX-512 Xeon).
 * Not in conv2d_direct_bwd_data, whose tile loops hold the per-row skips and the gather
 * (10% slower unrolled on a 3x3 stride-2 layer). */

/* ---- forward ----------------------------------------------------------------------- */

#if PASS == 0 || PASS == 1
__kernel void conv2d_direct_fwd(__global const float *x, int x_off, __global const float *wt,
                                int w_off, __global const float *bias, int b_off, int has_bias,
                                __global const float *z, int z_off, int has_res, __global float *y,
                                int y_off, int n, int c, int h, int w, int k, int p, int q, int r,
                                int s, int sh, int sw, int ph, int pw, int dh, int dw, int groups,
                                int act, float alpha) {
    const int cpg = c / groups, kpg = k / groups;
    const int qt = (q + VEC - 1) / VEC, pt = (p + TILE_P - 1) / TILE_P;
    const int kt = (kpg + TILE_K - 1) / TILE_K;
    const int t = get_global_id(0), gk = get_global_id(1), ni = get_global_id(2);
    if (t >= pt * qt || gk >= groups * kt || ni >= n) return;
    const int p0 = (t / qt) * TILE_P, q0 = (t % qt) * VEC;
    const int g = gk / kt, k0 = (gk % kt) * TILE_K;
    const int rs = r * s, crs = cpg * rs;

    __global const float *xg = x + x_off + (ni * c + g * cpg) * h * w;
    __global const float *wg = wt + w_off + (g * kpg) * crs;
    int wrow[TILE_K]; /* channels past the group's end read its last one (not stored) */
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
        wrow[tk] = min(k0 + tk, kpg - 1) * crs;

    const int ih0 = p0 * sh - ph, iw0 = q0 * sw - pw;
    /* Columns of the tile's window all inside the row (then no per-element checks)? */
    const int cols_in = iw0 >= 0 && iw0 + (VEC - 1) * sw + (s - 1) * dw < w;

    floatV acc[TILE_K][TILE_P];
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
#pragma unroll
        for (int tp = 0; tp < TILE_P; tp++)
            acc[tk][tp] = (floatV)(0.0f);

    for (int ci = 0; ci < cpg; ci++) {
        __global const float *xc = xg + ci * h * w;
        __global const float *wc = wg + ci * rs;
        for (int kr = 0; kr < r; kr++) {
            for (int ks = 0; ks < s; ks++) {
                float wv[TILE_K];
#pragma unroll
                for (int tk = 0; tk < TILE_K; tk++)
                    wv[tk] = wc[wrow[tk] + kr * s + ks];
                const int iw = iw0 + ks * dw;
#pragma unroll
                for (int tp = 0; tp < TILE_P; tp++) {
                    const int ih = ih0 + tp * sh + kr * dh;
                    floatV xv;
                    if (ih < 0 || ih >= h) {
                        xv = (floatV)(0.0f);
                    } else if (cols_in && sw == 1) {
                        xv = vloadV(0, xc + ih * w + iw);
                    } else if (cols_in) {
                        float xs[VEC];
                        for (int tq = 0; tq < VEC; tq++)
                            xs[tq] = xc[ih * w + iw + tq * sw];
                        xv = vloadV(0, xs);
                    } else {
                        float xs[VEC];
                        for (int tq = 0; tq < VEC; tq++) {
                            const int col = iw + tq * sw;
                            xs[tq] = (col >= 0 && col < w) ? xc[ih * w + col] : 0.0f;
                        }
                        xv = vloadV(0, xs);
                    }
#pragma unroll
                    for (int tk = 0; tk < TILE_K; tk++)
                        acc[tk][tp] = mad((floatV)(wv[tk]), xv, acc[tk][tp]);
                }
            }
        }
    }

    CC_TILE_COPY(floatV, res, acc, TILE_K, TILE_P); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int tk = 0; tk < TILE_K; tk++) {
        const int ko = g * kpg + k0 + tk;
        if (k0 + tk >= kpg) break;
        const float bv = has_bias ? bias[b_off + ko] : 0.0f;
#pragma unroll 1
        for (int tp = 0; tp < TILE_P; tp++) {
            const int pi = p0 + tp;
            if (pi >= p) break;
            float out[VEC];
            vstoreV(res[tk * TILE_P + tp], 0, out);
            const int row = ((ni * k + ko) * p + pi) * q + q0;
            for (int tq = 0; tq < VEC && q0 + tq < q; tq++) {
                float v = out[tq] + bv;
                if (has_res) v += z[z_off + row + tq];
                y[y_off + row + tq] = cc_activate(v, act, alpha);
            }
        }
    }
}

/* Forward for stride 1 with q == w (same padding, 1x1, ...): the output plane is one run
 * of p*q values and x index = y index + shift(kr, ks) inside a plane, shift = (kr*dh -
 * ph)*w + ks*dw - pw. A work-item owns TILE_K channels x TILE_P*VEC consecutive outputs
 * of the run (dim0 = run tile, dim1 = (group, k tile), dim2 = image); per tap, lanes whose
 * x column or row falls outside the image are zeroed (select, never multiplied). Full
 * vector loads wherever they stay inside the tensor x, per-lane guarded loads at its
 * ends. */
__kernel void conv2d_direct_fwd_flat(__global const float *x, int x_off, __global const float *wt,
                                     int w_off, __global const float *bias, int b_off, int has_bias,
                                     __global const float *z, int z_off, int has_res,
                                     __global float *y, int y_off, int n, int c, int h, int w,
                                     int k, int p, int q, int r, int s, int sh, int sw, int ph,
                                     int pw, int dh, int dw, int groups, int act, float alpha) {
    const int cpg = c / groups, kpg = k / groups;
    const int pq = p * q, hw = h * w, run = TILE_P * VEC;
    const int kt = (kpg + TILE_K - 1) / TILE_K;
    const int t = get_global_id(0), gk = get_global_id(1), ni = get_global_id(2);
    if (t * run >= pq || gk >= groups * kt || ni >= n) return;
    const int f0 = t * run;
    const int g = gk / kt, k0 = (gk % kt) * TILE_K;
    const int rs = r * s, crs = cpg * rs;
    const int xbase = (ni * c + g * cpg) * hw; /* relative to x_off */
    const int xend = n * c * hw;

    __global const float *wg = wt + w_off + (g * kpg) * crs;
    int wrow[TILE_K]; /* channels past the group's end read its last one (not stored) */
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
        wrow[tk] = min(k0 + tk, kpg - 1) * crs;

    intV lane, col[TILE_P];
    {
        int ls[VEC];
        for (int v = 0; v < VEC; v++)
            ls[v] = v;
        lane = vloadV(0, ls);
#pragma unroll
        for (int tp = 0; tp < TILE_P; tp++) {
            int cs[VEC];
            for (int v = 0; v < VEC; v++)
                cs[v] = (f0 + tp * VEC + v) % q;
            col[tp] = vloadV(0, cs);
        }
    }

    floatV acc[TILE_K][TILE_P];
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
#pragma unroll
        for (int tp = 0; tp < TILE_P; tp++)
            acc[tk][tp] = (floatV)(0.0f);

    const floatV zero = (floatV)(0.0f);
    for (int kr = 0; kr < r; kr++) {
        for (int ks = 0; ks < s; ks++) {
            const int ow = ks * dw - pw, shift = (kr * dh - ph) * w + ow;
            intV ok[TILE_P];
            int full = 1; /* every x vector of the tile inside the tensor for every ci */
#pragma unroll
            for (int tp = 0; tp < TILE_P; tp++) {
                const int f = f0 + tp * VEC;
                const intV xi = lane + (f + shift), cw = col[tp] + ow;
                ok[tp] = (cw >= 0) & (cw < w) & (xi >= 0) & (xi < hw) & (lane + f < pq);
            }
            full = xbase + f0 + shift >= 0 && xbase + (cpg - 1) * hw + f0 + run + shift <= xend;
            const int wk = kr * s + ks;
            for (int ci = 0; ci < cpg; ci++) {
                const int xc = xbase + ci * hw + f0 + shift;
                floatV xv[TILE_P];
                if (full) {
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++)
                        xv[tp] = select(zero, vloadV(0, x + x_off + xc + tp * VEC), ok[tp]);
                } else {
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++) {
                        int oks[VEC];
                        float xs[VEC];
                        vstoreV(ok[tp], 0, oks);
                        for (int v = 0; v < VEC; v++)
                            xs[v] = oks[v] ? x[x_off + xc + tp * VEC + v] : 0.0f;
                        xv[tp] = vloadV(0, xs);
                    }
                }
                __global const float *wc = wg + ci * rs + wk;
#pragma unroll
                for (int tk = 0; tk < TILE_K; tk++) {
                    const floatV wv = (floatV)(wc[wrow[tk]]);
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++)
                        acc[tk][tp] = mad(wv, xv[tp], acc[tk][tp]);
                }
            }
        }
    }

    CC_TILE_COPY(floatV, res, acc, TILE_K, TILE_P); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int tk = 0; tk < TILE_K; tk++) {
        const int ko = g * kpg + k0 + tk;
        if (k0 + tk >= kpg) break;
        const float bv = has_bias ? bias[b_off + ko] : 0.0f;
        __global float *yk = y + y_off + (ni * k + ko) * pq;
        __global const float *zk = z + z_off + (ni * k + ko) * pq;
#pragma unroll 1
        for (int tp = 0; tp < TILE_P; tp++) {
            const int f = f0 + tp * VEC;
            if (f >= pq) break;
            floatV v = res[tk * TILE_P + tp] + bv;
            if (has_res) {
                if (f + VEC <= pq) {
                    v += vloadV(0, zk + f);
                } else {
                    float zs[VEC];
                    for (int v2 = 0; v2 < VEC; v2++)
                        zs[v2] = f + v2 < pq ? zk[f + v2] : 0.0f;
                    v += vloadV(0, zs);
                }
            }
            if (act == CLCNN_ACT_ID_RELU)
                v = fmax(v, zero);
            else if (act == CLCNN_ACT_ID_LEAKY)
                v = select(alpha * v, v, v > zero);
            if (f + VEC <= pq) {
                vstoreV(v, 0, yk + f);
            } else {
                float out[VEC];
                vstoreV(v, 0, out);
                for (int v2 = 0; f + v2 < pq; v2++)
                    yk[f + v2] = out[v2];
            }
        }
    }
}

#endif

/* ---- backward data ------------------------------------------------------------------- */

#if PASS == 0 || PASS == 3

/* dx[ni,cc,hi,wi] = sum over (ko in the group, kr, ks) with
 *   hi + ph - kr*dh = pi*sh, wi + pw - ks*dw = qi*sw, 0 <= pi < p, 0 <= qi < q
 * of dy[ni,ko,pi,qi] * wt[ko, cc - g*cpg, kr, ks].
 * A work-item owns rows hi = fh + sh*(i0 + tp) and columns wi = fw + sw*(j0 + tv) for one
 * phase (fh, fw): tap kr reaches its rows iff (fh + ph - kr*dh) is a multiple of sh, and
 * then row i0 + tp reads dy row pi = (fh + ph - kr*dh)/sh + i0 + tp (columns likewise). */
__kernel void conv2d_direct_bwd_data(__global const float *dy, int dy_off, __global const float *wt,
                                     int w_off, __global float *dx, int dx_off, int n, int c, int h,
                                     int w, int k, int p, int q, int r, int s, int sh, int sw,
                                     int ph, int pw, int dh, int dw, int groups) {
    const int cpg = c / groups, kpg = k / groups;
    const int hn = (h + sh - 1) / sh, wn = (w + sw - 1) / sw; /* rows / columns of phase 0 */
    const int it = (hn + TILE_P - 1) / TILE_P, jt = (wn + VEC - 1) / VEC;
    const int ct = (cpg + TILE_K - 1) / TILE_K;
    const int t = get_global_id(0), gc = get_global_id(1), ni = get_global_id(2);
    if (t >= sh * sw * it * jt || gc >= groups * ct || ni >= n) return;
    const int j0 = (t % jt) * VEC, i0 = (t / jt % it) * TILE_P;
    const int fw = t / (jt * it) % sw, fh = t / (jt * it * sw);
    if (fh + sh * i0 >= h || fw + sw * j0 >= w) return; /* this phase has fewer rows/cols */
    const int g = gc / ct, c0 = (gc % ct) * TILE_K;
    const int rs = r * s, crs = cpg * rs;

    int wcol[TILE_K]; /* channels past the group's end read its last one (not stored) */
    for (int tc = 0; tc < TILE_K; tc++)
        wcol[tc] = min(c0 + tc, cpg - 1) * rs;

    floatV acc[TILE_K][TILE_P];
    for (int tc = 0; tc < TILE_K; tc++)
        for (int tp = 0; tp < TILE_P; tp++)
            acc[tc][tp] = (floatV)(0.0f);

    for (int kk = 0; kk < kpg; kk++) {
        const int ko = g * kpg + kk;
        __global const float *dyk = dy + dy_off + (ni * k + ko) * p * q;
        __global const float *wk = wt + w_off + ko * crs;
        for (int kr = 0; kr < r; kr++) {
            const int th = fh + ph - kr * dh;
            if (((th % sh) + sh) % sh != 0) continue;
            const int pi0 = th / sh + i0; /* exact division */
            if (pi0 >= p || pi0 + TILE_P <= 0) continue;
            for (int ks = 0; ks < s; ks++) {
                const int tw = fw + pw - ks * dw;
                if (((tw % sw) + sw) % sw != 0) continue;
                const int qi0 = tw / sw + j0;
                if (qi0 >= q || qi0 + VEC <= 0) continue;
                const int cols_in = qi0 >= 0 && qi0 + VEC <= q;
                float wv[TILE_K];
                for (int tc = 0; tc < TILE_K; tc++)
                    wv[tc] = wk[wcol[tc] + kr * s + ks];
                for (int tp = 0; tp < TILE_P; tp++) {
                    const int pi = pi0 + tp;
                    if (pi < 0 || pi >= p) continue;
                    __global const float *dyr = dyk + pi * q;
                    floatV dv;
                    if (cols_in) {
                        dv = vloadV(0, dyr + qi0);
                    } else {
                        float ds[VEC];
                        for (int tv = 0; tv < VEC; tv++) {
                            const int qi = qi0 + tv;
                            ds[tv] = (qi >= 0 && qi < q) ? dyr[qi] : 0.0f;
                        }
                        dv = vloadV(0, ds);
                    }
                    for (int tc = 0; tc < TILE_K; tc++)
                        acc[tc][tp] = mad((floatV)(wv[tc]), dv, acc[tc][tp]);
                }
            }
        }
    }

    CC_TILE_COPY(floatV, res, acc, TILE_K, TILE_P); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int tc = 0; tc < TILE_K; tc++) {
        if (c0 + tc >= cpg) break;
        __global float *dxc = dx + dx_off + (ni * c + g * cpg + c0 + tc) * h * w;
#pragma unroll 1
        for (int tp = 0; tp < TILE_P; tp++) {
            const int hi = fh + sh * (i0 + tp);
            if (hi >= h) break;
            float out[VEC];
            vstoreV(res[tc * TILE_P + tp], 0, out);
            for (int tv = 0; tv < VEC; tv++) {
                const int wi = fw + sw * (j0 + tv);
                if (wi >= w) break;
                dxc[hi * w + wi] = out[tv];
            }
        }
    }
}

/* Backward data for stride 1 with q == w: the mirror of conv2d_direct_fwd_flat. A
 * work-item owns TILE_K input channels x TILE_P*VEC consecutive values of the dx plane
 * run; dy index = dx index - shift(kr, ks) inside a plane, lanes whose dy column or row
 * falls outside dy are zeroed. */
__kernel void conv2d_direct_bwd_data_flat(__global const float *dy, int dy_off,
                                          __global const float *wt, int w_off, __global float *dx,
                                          int dx_off, int n, int c, int h, int w, int k, int p,
                                          int q, int r, int s, int sh, int sw, int ph, int pw,
                                          int dh, int dw, int groups) {
    const int cpg = c / groups, kpg = k / groups;
    const int pq = p * q, hw = h * w, run = TILE_P * VEC;
    const int ct = (cpg + TILE_K - 1) / TILE_K;
    const int t = get_global_id(0), gc = get_global_id(1), ni = get_global_id(2);
    if (t * run >= hw || gc >= groups * ct || ni >= n) return;
    const int f0 = t * run;
    const int g = gc / ct, c0 = (gc % ct) * TILE_K;
    const int rs = r * s, crs = cpg * rs;
    const int dbase = (ni * k + g * kpg) * pq; /* relative to dy_off */
    const int dend = n * k * pq;

    int wcol[TILE_K]; /* channels past the group's end read its last one (not stored) */
#pragma unroll
    for (int tc = 0; tc < TILE_K; tc++)
        wcol[tc] = min(c0 + tc, cpg - 1) * rs;

    intV lane, col[TILE_P];
    {
        int ls[VEC];
        for (int v = 0; v < VEC; v++)
            ls[v] = v;
        lane = vloadV(0, ls);
#pragma unroll
        for (int tp = 0; tp < TILE_P; tp++) {
            int cs[VEC];
            for (int v = 0; v < VEC; v++)
                cs[v] = (f0 + tp * VEC + v) % w;
            col[tp] = vloadV(0, cs);
        }
    }

    floatV acc[TILE_K][TILE_P];
#pragma unroll
    for (int tc = 0; tc < TILE_K; tc++)
#pragma unroll
        for (int tp = 0; tp < TILE_P; tp++)
            acc[tc][tp] = (floatV)(0.0f);

    const floatV zero = (floatV)(0.0f);
    __global const float *wg = wt + w_off + (g * kpg) * crs;
    for (int kr = 0; kr < r; kr++) {
        for (int ks = 0; ks < s; ks++) {
            const int ow = ks * dw - pw, shift = (kr * dh - ph) * w + ow;
            intV ok[TILE_P];
#pragma unroll
            for (int tp = 0; tp < TILE_P; tp++) {
                const int f = f0 + tp * VEC;
                const intV di = lane + (f - shift), cq = col[tp] - ow;
                ok[tp] = (cq >= 0) & (cq < q) & (di >= 0) & (di < pq) & (lane + f < hw);
            }
            const int full =
                dbase + f0 - shift >= 0 && dbase + (kpg - 1) * pq + f0 + run - shift <= dend;
            const int wk = kr * s + ks;
            for (int kk = 0; kk < kpg; kk++) {
                const int dk = dbase + kk * pq + f0 - shift;
                floatV dv[TILE_P];
                if (full) {
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++)
                        dv[tp] = select(zero, vloadV(0, dy + dy_off + dk + tp * VEC), ok[tp]);
                } else {
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++) {
                        int oks[VEC];
                        float ds[VEC];
                        vstoreV(ok[tp], 0, oks);
                        for (int v = 0; v < VEC; v++)
                            ds[v] = oks[v] ? dy[dy_off + dk + tp * VEC + v] : 0.0f;
                        dv[tp] = vloadV(0, ds);
                    }
                }
                __global const float *wk_ = wg + kk * crs + wk;
#pragma unroll
                for (int tc = 0; tc < TILE_K; tc++) {
                    const floatV wv = (floatV)(wk_[wcol[tc]]);
#pragma unroll
                    for (int tp = 0; tp < TILE_P; tp++)
                        acc[tc][tp] = mad(wv, dv[tp], acc[tc][tp]);
                }
            }
        }
    }

    CC_TILE_COPY(floatV, res, acc, TILE_K, TILE_P); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int tc = 0; tc < TILE_K; tc++) {
        if (c0 + tc >= cpg) break;
        __global float *dxc = dx + dx_off + (ni * c + g * cpg + c0 + tc) * hw;
#pragma unroll 1
        for (int tp = 0; tp < TILE_P; tp++) {
            const int f = f0 + tp * VEC;
            if (f >= hw) break;
            if (f + VEC <= hw) {
                vstoreV(res[tc * TILE_P + tp], 0, dxc + f);
            } else {
                float out[VEC];
                vstoreV(res[tc * TILE_P + tp], 0, out);
                for (int v = 0; f + v < hw; v++)
                    dxc[f + v] = out[v];
            }
        }
    }
}

#endif

#if PASS == 0 || PASS == 2
/* ---- backward filter ------------------------------------------------------------------ */

/* part[split, ko, ci, kr, ks] = sum over images n0 .. n1-1 of the split, rows pi and
 * columns qi of dy[ni,ko,pi,qi] * x[ni, g*cpg+ci, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]; the
 * host sums the splits in order (or writes dw directly when there is one split). */
__kernel void conv2d_direct_bwd_filter(__global const float *x, int x_off, __global const float *dy,
                                       int dy_off, __global float *part, int part_off, int n, int c,
                                       int h, int w, int k, int p, int q, int r, int s, int sh,
                                       int sw, int ph, int pw, int dh, int dw, int groups,
                                       int imgs_per_split) {
    const int cpg = c / groups, kpg = k / groups;
    const int rs = r * s, crs = cpg * rs;
    const int ct = (cpg + TILE_C - 1) / TILE_C, kt = (kpg + TILE_K - 1) / TILE_K;
    const int t = get_global_id(0), gk = get_global_id(1), split = get_global_id(2);
    const int n0 = split * imgs_per_split, n1 = min(n0 + imgs_per_split, n);
    if (t >= ct * rs || gk >= groups * kt || n0 >= n) return;
    const int c0 = (t / rs) * TILE_C, kr = (t % rs) / s, ks = t % s;
    const int g = gk / kt, k0 = (gk % kt) * TILE_K;

    /* Output rows / columns whose input position is inside the image:
     * 0 <= pi*sh - ph + kr*dh < h  <=>  plo <= pi < phi. */
    const int oh = kr * dh - ph, ow = ks * dw - pw;
    const int plo = oh >= 0 ? 0 : (-oh + sh - 1) / sh;
    const int phi = min(p, h - oh <= 0 ? 0 : (h - oh - 1) / sh + 1);
    const int qlo = ow >= 0 ? 0 : (-ow + sw - 1) / sw;
    const int qhi = min(q, w - ow <= 0 ? 0 : (w - ow - 1) / sw + 1);

    int crow[TILE_C], krow[TILE_K];
#pragma unroll
    for (int tc = 0; tc < TILE_C; tc++)
        crow[tc] = (g * cpg + min(c0 + tc, cpg - 1)) * h * w;
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
        krow[tk] = (g * kpg + min(k0 + tk, kpg - 1)) * p * q;

    floatV acc[TILE_K][TILE_C];
#pragma unroll
    for (int tk = 0; tk < TILE_K; tk++)
#pragma unroll
        for (int tc = 0; tc < TILE_C; tc++)
            acc[tk][tc] = (floatV)(0.0f);

    if (sh == 1 && sw == 1 && q == w) {
        /* Stride 1 with as many output as input columns (same padding, 1x1): x index =
         * dy index + shift inside a plane, so the rows plo .. phi-1 are walked as one run
         * of dy, VEC at a time; lanes whose x column falls outside the row (or past the
         * run) are zeroed in both operands. Full vector loads wherever they stay inside
         * the tensors, per-lane guarded loads at their ends. */
        const int shift = oh * w + ow, f0 = plo * q, f1 = phi * q;
        const int chw = c * h * w, kpq = k * p * q;
        const int adv = VEC % q;
        intV lane, col0;
        {
            int ls[VEC], cs[VEC];
            for (int v = 0; v < VEC; v++) {
                ls[v] = v;
                cs[v] = v % q;
            }
            lane = vloadV(0, ls);
            col0 = vloadV(0, cs);
        }
        for (int ni = n0; ni < n1; ni++) {
            const int xb = ni * chw + shift, db = ni * kpq;
            intV col = col0;
            for (int f = f0; f < f1; f += VEC) {
                const intV cw = col + ow;
                const intV ok = (cw >= 0) & (cw < w) & (lane + f < f1);
                col += adv;
                col = select(col, col - q, col >= q);
                floatV xv[TILE_C], dv[TILE_K];
                if (xb + crow[0] + f >= 0 && xb + crow[TILE_C - 1] + f + VEC <= n * chw &&
                    db + krow[TILE_K - 1] + f + VEC <= n * kpq) {
#pragma unroll
                    for (int tc = 0; tc < TILE_C; tc++)
                        xv[tc] = vloadV(0, x + x_off + xb + crow[tc] + f);
#pragma unroll
                    for (int tk = 0; tk < TILE_K; tk++)
                        dv[tk] = vloadV(0, dy + dy_off + db + krow[tk] + f);
                } else {
                    int oks[VEC];
                    vstoreV(ok, 0, oks);
#pragma unroll
                    for (int tc = 0; tc < TILE_C; tc++) {
                        float xs[VEC];
                        for (int v = 0; v < VEC; v++)
                            xs[v] = oks[v] ? x[x_off + xb + crow[tc] + f + v] : 0.0f;
                        xv[tc] = vloadV(0, xs);
                    }
#pragma unroll
                    for (int tk = 0; tk < TILE_K; tk++) {
                        float ds[VEC];
                        for (int v = 0; v < VEC; v++)
                            ds[v] = oks[v] ? dy[dy_off + db + krow[tk] + f + v] : 0.0f;
                        dv[tk] = vloadV(0, ds);
                    }
                }
                const floatV zero = (floatV)(0.0f);
#pragma unroll
                for (int tc = 0; tc < TILE_C; tc++)
                    xv[tc] = select(zero, xv[tc], ok);
#pragma unroll
                for (int tk = 0; tk < TILE_K; tk++)
                    dv[tk] = select(zero, dv[tk], ok);
#pragma unroll
                for (int tk = 0; tk < TILE_K; tk++)
#pragma unroll
                    for (int tc = 0; tc < TILE_C; tc++)
                        acc[tk][tc] = mad(dv[tk], xv[tc], acc[tk][tc]);
            }
        }
    } else {
        /* The rows pi in [plo, phi) read x row pi*sh + oh from column ow + qlo*sw on. */
        const int nrows = phi - plo, len = qhi - qlo, xstep = sh * w, dstep = q;
        const int x0 = (plo * sh + oh) * w + ow + qlo * sw, d0 = plo * q + qlo;
        for (int ni = n0; ni < n1; ni++) {
            __global const float *xn = x + x_off + ni * c * h * w + x0;
            __global const float *dyn = dy + dy_off + ni * k * p * q + d0;
            for (int row = 0; row < nrows; row++) {
                const int xrow = row * xstep, drow = row * dstep;
                for (int j = 0; j < len; j += VEC) {
                    floatV xv[TILE_C], dv[TILE_K];
                    if (j + VEC <= len) {
#pragma unroll
                        for (int tc = 0; tc < TILE_C; tc++) {
                            __global const float *xr = xn + crow[tc] + xrow;
                            if (sw == 1) {
                                xv[tc] = vloadV(0, xr + j);
                            } else {
                                float xs[VEC];
                                for (int v = 0; v < VEC; v++)
                                    xs[v] = xr[(j + v) * sw];
                                xv[tc] = vloadV(0, xs);
                            }
                        }
#pragma unroll
                        for (int tk = 0; tk < TILE_K; tk++)
                            dv[tk] = vloadV(0, dyn + krow[tk] + drow + j);
                    } else { /* the last, partial step: missing lanes are zero */
#pragma unroll
                        for (int tc = 0; tc < TILE_C; tc++) {
                            float xs[VEC];
                            for (int v = 0; v < VEC; v++)
                                xs[v] = j + v < len ? xn[crow[tc] + xrow + (j + v) * sw] : 0.0f;
                            xv[tc] = vloadV(0, xs);
                        }
#pragma unroll
                        for (int tk = 0; tk < TILE_K; tk++) {
                            float ds[VEC];
                            for (int v = 0; v < VEC; v++)
                                ds[v] = j + v < len ? dyn[krow[tk] + drow + j + v] : 0.0f;
                            dv[tk] = vloadV(0, ds);
                        }
                    }
#pragma unroll
                    for (int tk = 0; tk < TILE_K; tk++)
#pragma unroll
                        for (int tc = 0; tc < TILE_C; tc++)
                            acc[tk][tc] = mad(dv[tk], xv[tc], acc[tk][tc]);
                }
            }
        }
    }

    __global float *out = part + part_off + split * k * crs;
    for (int tk = 0; tk < TILE_K; tk++) {
        if (k0 + tk >= kpg) break;
        for (int tc = 0; tc < TILE_C; tc++) {
            if (c0 + tc >= cpg) break;
            float lanes[VEC];
            vstoreV(acc[tk][tc], 0, lanes);
            float sum = 0.0f;
            for (int v = 0; v < VEC; v++)
                sum += lanes[v];
            out[(g * kpg + k0 + tk) * crs + (c0 + tc) * rs + kr * s + ks] = sum;
        }
    }
}
#endif
