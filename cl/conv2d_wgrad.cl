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
#ifndef MK
#define MK 1
#endif

#if VK != 16 && VK != 8 && VK != 4
#error "VK must be 16, 8 or 4"
#endif
#if TJ < 1 || TJ > 32
#error "TJ must be in 1..32"
#endif
#if MK != 1 && MK != 2
#error "MK must be 1 or 2"
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatK CC_CAT(float, VK)
#define vloadK CC_CAT(vload, VK)
#define vstoreK CC_CAT(vstore, VK)

/* xp = images n0 .. n0+nb-1 of x with ph rows and pw columns of zeros around each
 * plane: (nb, c, h + 2 ph, w + 2 pw). One work-item per row of xp: zeros, the input row
 * in vectors of 16, zeros. */
__kernel void wgrad_pad_x(__global const float *x, int x_off, __global float *xp, int xp_off,
                          int n0, int nb, int c, int h, int w, int ph, int pw) {
    const int hp = h + 2 * ph, wp = w + 2 * pw;
    const int row = get_global_id(0); /* (image*c + channel)*hp + ih */
    if (row >= nb * c * hp) return;
    const int ih = row % hp - ph, nc = row / hp;
    __global float *d = xp + xp_off + row * wp;
    if (ih < 0 || ih >= h) {
        int i = 0;
        for (; i + 16 <= wp; i += 16)
            vstore16((float16)(0.0f), 0, d + i);
        for (; i < wp; i++)
            d[i] = 0.0f;
        return;
    }
    __global const float *src = x + x_off + ((n0 * c + nc) * h + ih) * w;
    for (int i = 0; i < pw; i++) {
        d[i] = 0.0f;
        d[pw + w + i] = 0.0f;
    }
    d += pw;
    int i = 0;
    for (; i + 16 <= w; i += 16)
        vstore16(vload16(0, src + i), 0, d + i);
    for (; i < w; i++)
        d[i] = src[i];
}

/* Swaps bit b of the row index with bit b of the lane index in rows lo and hi = lo + b
 * of a 16x16 block (one butterfly of the transpose). */
inline void butterfly(float16 *lo, float16 *hi, uint16 mlo, uint16 mhi) {
    const float16 a = shuffle2(*lo, *hi, mlo), c = shuffle2(*lo, *hi, mhi);
    *lo = a;
    *hi = c;
}

/* dyt (groups, nb*pq, kpad) from images n0 .. n0+nb-1 of dy (n, k, pq), see the top.
 * One work-item per block of 16 positions x 16 channels, transposed in registers (four
 * butterfly stages): dim0 = position block of an image, dim1 = channel block, dim2 =
 * group*nb + image. */
__kernel void wgrad_transpose_dy(__global const float *dy, int dy_off, __global float *dyt,
                                 int dyt_off, int n0, int nb, int k, int pq, int groups, int kpad) {
    const int kpg = k / groups;
    const int j0 = get_global_id(0) * 16, m0 = get_global_id(1) * 16, gn = get_global_id(2);
    if (j0 >= pq || m0 >= kpad || gn >= groups * nb) return;
    const int g = gn / nb, ni = gn % nb;
    const int nj = min(16, pq - j0), nm = min(16, kpad - m0);
    __global const float *src = dy + dy_off + ((n0 + ni) * k + g * kpg + m0) * pq + j0;
    float16 t[16]; /* row l: channel m0 + l at positions j0 .. j0+15 */
#pragma unroll
    for (int l = 0; l < 16; l++) {
        float16 v = (float16)(0.0f);
        if (m0 + l < kpg) {
            if (nj == 16) {
                v = vload16(0, src + l * pq);
            } else {
                float u[16];
                for (int j = 0; j < 16; j++)
                    u[j] = j < nj ? src[l * pq + j] : 0.0f;
                v = vload16(0, u);
            }
        }
        t[l] = v;
    }
    /* stage b: rows i and i + b (bit b of i clear) exchange the lanes with bit b set of
     * row i for the lanes with bit b clear of row i + b */
    const uint16 lane = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma unroll
    for (int b = 1; b < 16; b *= 2) {
        const uint16 bit = (lane / (uint16)(b)) & (uint16)(1); /* 1 where lane bit b is set */
        /* row i keeps its lanes without bit b and takes row i+b's lane l-b for the others;
         * row i+b takes row i's lane l+b for the lanes without bit b and keeps the others */
        const uint16 mlo = lane + bit * (uint16)(16 - b);
        const uint16 mhi = lane + (uint16)(b) + bit * (uint16)(16 - b);
#pragma unroll
        for (int i = 0; i < 16; i++)
            if (!(i & b)) butterfly(&t[i], &t[i + b], mlo, mhi);
    }
    /* row j now holds the 16 channels of position j0 + j */
    __global float *d = dyt + dyt_off + ((g * nb + ni) * pq + j0) * kpad + m0;
#pragma unroll
    for (int j = 0; j < 16; j++) {
        if (j >= nj) break;
        if (nm == 16) {
            vstore16(t[j], 0, d + j * kpad);
        } else {
            float u[16];
            vstore16(t[j], 0, u);
            for (int l = 0; l < nm; l++)
                d[j * kpad + l] = u[l];
        }
    }
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
    const int j0 = get_global_id(0) * TJ, m0 = get_global_id(1) * (VK * MK), gc = get_global_id(2);
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
    floatK acc[MK][TJ];
#pragma unroll
    for (int mk = 0; mk < MK; mk++)
#pragma unroll
        for (int tj = 0; tj < TJ; tj++)
            acc[mk][tj] = (floatK)(0.0f);

    __global const float *xg = xs + xs_off + g * cpg * plane;
    for (int row = row0; row < row1; row++) {
        const int ni = row / p, pi = row - ni * p;
        __global const float *xb = xg + ni * xc * plane + pi * sh * xw;
        __global const float *dp = dyt + dyt_off + ((g * nb + ni) * pq + pi * q) * kpad + m0;
        for (int qi = 0; qi < q; qi++, xb += sw, dp += kpad) {
            floatK dv[MK];
#pragma unroll
            for (int mk = 0; mk < MK; mk++)
                dv[mk] = vloadK(mk, dp);
#pragma unroll
            for (int tj = 0; tj < TJ; tj++) {
                const floatK xv = (floatK)(xb[off[tj]]);
#pragma unroll
                for (int mk = 0; mk < MK; mk++)
                    acc[mk][tj] = fma(xv, dv[mk], acc[mk][tj]);
            }
        }
    }

    __global float *o = out + out_off + ch * k * K + (g * kpg + m0) * K + j0;
    const int nm = min(VK * MK, kpg - m0), nj = min(TJ, K - j0);
#pragma unroll
    for (int tj = 0; tj < TJ; tj++) {
        if (tj >= nj) break;
        float v[VK * MK];
#pragma unroll
        for (int mk = 0; mk < MK; mk++)
            vstoreK(acc[mk][tj], mk, v);
        for (int l = 0; l < nm; l++)
            o[l * K + tj] = v[l];
    }
}
