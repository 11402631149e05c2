/* Filter gradient (backward filter) of a 2-D convolution as an implicit GEMM. Host side:
 * lib/ops/conv2d_wgrad.c. Every shape: any kernel size, stride, padding, dilation and
 * groups (all kernel arguments).
 *
 * Per group g the gradient is the product
 *   dW_g (kpg, K) = dY_g (kpg, n*p*q) * B_g (n*p*q, K),   K = cpg*r*s,
 *   B_g[(ni, pi, qi), (ci*r + kr)*s + ks] = xp[ni, g*cpg+ci, pi*sh + kr*dh, qi*sw + ks*dw]
 * where xp is the input with its zero padding made explicit (a padded copy, or x itself
 * when there is no padding): every tap of every output position lies inside xp, so the
 * GEMM loop has no bounds checks. dY_g is read from dyt, a transposed copy of dy in
 * which the kpg channels of one position are consecutive (padded with zeros to kpad).
 *
 * A work-item owns VK output channels (the lanes of a floatVK) x TJ consecutive taps j
 * of K and one chunk of output rows (consecutive rows of the flattened n*p rows). Per
 * output position it loads one vector of dyt and multiplies it with TJ broadcast input
 * elements xp[base + off[tj]] (off: the tap's constant offset from the position's first
 * tap): TJ vector accumulators, one vector load and TJ scalar loads per position. The
 * chunk's sums go to its own slice of a partial buffer (or to dw when there is one
 * chunk), summed afterwards in a fixed order (conv2d_sum_parts): deterministic, no
 * atomics.
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   VK  output channels per work-item: the lanes of a vector (16, 8 or 4)   default 16
 *   TJ  taps per work-item (1..32)                                           default 12
 *
 * Buffers (dense, each with an element offset *_off):
 *   x  (n, c, h, w)            dy (n, k, p, q)
 *   xp (nb, c, hp, wp)         the padded copy of images n0 .. n0+nb-1 (wgrad_pad_x)
 *   dyt (groups, nb*p*q, kpad) dyt[g][(ni*p + pi)*q + qi][m] = dy[n0+ni][g*kpg + m][pi][qi]
 *                              (0 for m >= kpg; wgrad_transpose_dy)
 *   out (chunks, k, cpg, r, s) one dw-shaped slice per chunk of rows
 *
 * Work-item -> output mapping: dim0 = block of TJ taps, dim1 = block of VK channels,
 * dim2 = group * chunks + chunk. */
#include "common.h"

#ifndef VK
#define VK 16
#endif
#ifndef TJ
#define TJ 12
#endif

#if VK != 16 && VK != 8 && VK != 4
#error "VK must be 16, 8 or 4"
#endif
#if TJ < 1 || TJ > 32
#error "TJ must be in 1..32"
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatK CC_CAT(float, VK)
#define vloadK CC_CAT(vload, VK)
#define vstoreK CC_CAT(vstore, VK)

/* xp = images n0 .. n0+nb-1 of x with pad_h rows and pad_w columns of zeros around each
 * plane: (nb, c, h + 2 ph, w + 2 pw). One work-item per element of xp. */
__kernel void wgrad_pad_x(__global const float *x, int x_off, __global float *xp, int xp_off,
                          int n0, int nb, int c, int h, int w, int ph, int pw) {
    const int hp = h + 2 * ph, wp = w + 2 * pw;
    const int i = get_global_id(0);
    if (i >= nb * c * hp * wp) return;
    const int iw = i % wp, ih = (i / wp) % hp, nc = i / (wp * hp);
    const int sh = ih - ph, sw = iw - pw;
    float v = 0.0f;
    if (sh >= 0 && sh < h && sw >= 0 && sw < w) v = x[x_off + (n0 * c + nc) * h * w + sh * w + sw];
    xp[xp_off + i] = v;
}

/* dyt (groups, nb*pq, kpad) from images n0 .. n0+nb-1 of dy (n, k, pq), see the top.
 * One work-item per element of dyt. */
__kernel void wgrad_transpose_dy(__global const float *dy, int dy_off, __global float *dyt,
                                 int dyt_off, int n0, int nb, int k, int pq, int groups, int kpad) {
    const int kpg = k / groups, npq = nb * pq;
    const int i = get_global_id(0);
    if (i >= groups * npq * kpad) return;
    const int m = i % kpad, pos = (i / kpad) % npq, g = i / (kpad * npq);
    const int ni = pos / pq, j = pos % pq;
    dyt[dyt_off + i] = m < kpg ? dy[dy_off + ((n0 + ni) * k + g * kpg + m) * pq + j] : 0.0f;
}

/* See the top comment. xs: xp (or x), xs_off its element offset of image n0; xc, xh, xw
 * its channels, rows and columns. rows: the nb*p output rows of this pass, split into
 * chunks of rpc rows; out_off: the element offset of this pass's first chunk slice. */
__kernel void conv2d_wgrad(__global const float *xs, int xs_off, int xc, int xh, int xw,
                           __global const float *dyt, int dyt_off, int kpad, __global float *out,
                           int out_off, int nb, int k, int p, int q, int r, int s, int sh, int sw,
                           int dh, int dw, int groups, int rpc, int chunks) {
    const int cpg = xc / groups, kpg = k / groups;
    const int rs = r * s, K = cpg * rs, pq = p * q;
    const int j0 = get_global_id(0) * TJ, m0 = get_global_id(1) * VK, gc = get_global_id(2);
    if (j0 >= K || m0 >= kpg || gc >= groups * chunks) return;
    const int g = gc / chunks, ch = gc % chunks;
    const int row0 = ch * rpc, row1 = min(row0 + rpc, nb * p);
    const int plane = xh * xw;

    /* the constant offset of each tap from the position's first tap (ci 0, kr 0, ks 0);
     * taps past K repeat the last one and are not stored */
    int off[TJ];
#pragma unroll
    for (int tj = 0; tj < TJ; tj++) {
        const int j = min(j0 + tj, K - 1);
        const int ci = j / rs, kr = (j / s) % r, ks = j % s;
        off[tj] = ci * plane + kr * dh * xw + ks * dw;
    }
    floatK acc[TJ];
#pragma unroll
    for (int tj = 0; tj < TJ; tj++)
        acc[tj] = (floatK)(0.0f);

    __global const float *xg = xs + xs_off + g * cpg * plane;
    for (int row = row0; row < row1; row++) {
        const int ni = row / p, pi = row - ni * p;
        __global const float *xb = xg + ni * xc * plane + pi * sh * xw;
        __global const float *dp = dyt + dyt_off + ((g * nb + ni) * pq + pi * q) * kpad + m0;
        for (int qi = 0; qi < q; qi++, xb += sw, dp += kpad) {
            const floatK dv = vloadK(0, dp);
#pragma unroll
            for (int tj = 0; tj < TJ; tj++)
                acc[tj] = fma((floatK)(xb[off[tj]]), dv, acc[tj]);
        }
    }

    __global float *o = out + out_off + ch * k * K + (g * kpg + m0) * K + j0;
    const int nm = min(VK, kpg - m0), nj = min(TJ, K - j0);
#pragma unroll
    for (int tj = 0; tj < TJ; tj++) {
        if (tj >= nj) break;
        float v[VK];
        vstoreK(acc[tj], 0, v);
        for (int l = 0; l < nm; l++)
            o[l * K + tj] = v[l];
    }
}
