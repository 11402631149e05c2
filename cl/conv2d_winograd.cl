/* Winograd 2-D convolution (forward; backward data below) for 3x3 kernels with stride 1 and
 * dilation 1 (any zero padding, any groups): F(MT x MT, 3x3) with MT = 2 (4x4 input tiles, 16
 * products per tile and channel pair) or MT = 4 (6x6 input tiles, 36 products). Host side:
 * lib/ops/conv2d_winograd.c.
 *
 * With A = MT + 2 and the matrices of Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks" (2016), per tile and output channel:
 *   y_tile (MT x MT) = A^T [ sum_ci (G g_ci G^T) .* (B^T d_ci B) ] A
 * where d_ci is the A x A input window of the tile in channel ci and g_ci the 3x3 filter.
 *
 * Backward data (stride 1) is the same computation on dy with the filters rotated by 180
 * degrees and their channel dims swapped (winograd_filter's flip), padding 2 - pad
 * (negative padding just starts the tiles inside the input).
 *
 * Kernels:
 *   winograd_filter  U[a][ko][ci] = (G w[ko,ci] G^T)[a], a < A*A (row-major), one
 *                    work-item per 8 consecutive (ko, ci), flattened (flip: see above);
 *                    once per prepared forward, or per backward-data call.
 *   winograd_fwd     a work-item owns 16 tiles of one image (the lanes of a float16:
 *                    16/SW rows of SW tiles) and a range of output channels of one group;
 *                    all in its own scratch of local memory (on a CPU simply cached memory):
 *                      1. input transform of cc channels:  V[a][ci][16]
 *                      2. for every a: M[a][m][16] (+)= sum_ci U[a][m][ci] * V[a][ci][16],
 *                         TM channels x 16 lanes in float16 registers per step
 *                      3. after the last channel chunk, output transform of M[.][m] per
 *                         channel, bias, activation, store.
 *                    No global workspace besides U; deterministic (fixed order).
 *   winograd_input, winograd_output
 *                    the GEMM path (lib/ops/conv2d_winograd.c): the input transform of a
 *                    chunk of images into V (A*A*c, tiles) and the output transform of the
 *                    GEMMs' M (A*A*k, tiles) into y; between them the implicit GEMM
 *                    (cl/conv2d_implicit.c) computes M[a] = U[a] V[a] for every a and group
 *                    in one launch. TB (tiles per batch of their local buffers) is fixed.
 *   winograd_s2d_filter, winograd_s2d_input
 *                    space-to-depth for strided layers whose kernel spans three strides
 *                    (forward only, lib/ops/conv2d_winograd.c): the weights and the input
 *                    rearranged so that the layer is a 3x3 stride-1 convolution.
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   MT  output tile size: 2 or 4                                                default 4
 *   SW  tiles per lane segment (16, 8 or 4): 16/SW tile rows per work-item      default 16
 *   TM  output channels per register block (1..32)                              default 16
 *
 * Buffers (dense, each with an element offset *_off):
 *   x (n, c, h, w)   wt (k, cpg, 3, 3)   b (k)   y (n, k, p, q)   u (A*A, k, cpg)
 *   z (n, k, p, q)   residual (has_res): y = act(conv + b + z); may be y itself (each
 *                    element is read by the work-item that writes it)
 * Scratch (__local, per work-item): (cc_max + mr) * A*A * 16 floats: V then M.
 *
 * Work-item -> output mapping (winograd_fwd): dim0 = image * strips per image + strip
 * (strips: rows of 16/SW tile rows x SW tiles, tiles th x tw = ceil(p/MT) x ceil(q/MT)),
 * dim1 = group * msplit + channel range [mr*j, mr*(j+1)) of the group. */
#include "common.h"

#ifndef MT
#define MT 4
#endif
#ifndef SW
#define SW 16
#endif
#ifndef TM
#define TM 16
#endif

#if MT != 2 && MT != 4
#error "MT must be 2 or 4"
#endif
#if SW != 16 && SW != 8 && SW != 4
#error "SW must be 16, 8 or 4"
#endif
#if TM < 1 || TM > 32
#error "TM must be in 1..32"
#endif

#define AL (MT + 2)   /* input tile size */
#define A2 (AL * AL)  /* products per tile */
#define TRW (16 / SW) /* tile rows per work-item */
#define TB 128        /* GEMM path: tiles per batch of the transform kernels' local buffers */
#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatS CC_CAT(float, SW)
#define intS CC_CAT(int, SW)
#define vloadS CC_CAT(vload, SW)
#define vstoreS CC_CAT(vstore, SW)

/* ---- filter transform ------------------------------------------------------------------- */

/* The 3x3 filter of the pair (ko, ci) of the output u: wt holds the layer's weights; flip:
 * wt holds the forward weights (groups*cpg, k/groups, 3, 3) of the convolution this one
 * transposes (backward data): filter (ko, ci) is that one's filter (g*cpg + ci, ko -
 * g*kpg), rotated by 180 degrees. */
inline __global const float *filter_at(__global const float *wt, int ko, int ci, int kpg, int cpg,
                                       int flip) {
    const int g = ko / kpg;
    return wt + (flip ? ((g * cpg + ci) * kpg + ko - g * kpg) : (ko * cpg + ci)) * 9;
}

/* U = G g G^T of every filter g, A*A values each, into u: with tm 0 U[a][ko][ci] at (a*k + ko)
 * * cpg + ci; else as the weights of the GEMM path's implicit GEMM over A*A*groups groups
 * (cc_conv2d_implicit_prepare_wt): at ((g'*(mp/tm) + m/tm)*cpg + ci)*tm + m%tm with g' =
 * a*groups + g, m = ko - g*kpg, and zeros for the channels kpg .. mp-1 of a group. Either
 * way the elements of one a are u[a*astep + j] for j < jn (jn = k*cpg, or groups*mp*cpg):
 * one work-item per 8 consecutive j, its filters gathered into float8 lanes (the same
 * divisions and additions per lane as one filter at a time, which spent its time on scalar
 * divisions), vector stores. */
__kernel void winograd_filter(__global const float *wt, int w_off, __global float *u, int u_off,
                              int k, int cpg, int groups, int flip, int tm, int mp) {
    const int kpg = k / groups;
    const int jn = tm ? groups * mp * cpg : k * cpg, j0 = get_global_id(0) * 8;
    if (j0 >= jn) return;
    float gf[9][8];
    int live[8];
    for (int l = 0; l < 8; l++) {
        const int j = j0 + l;
        int ko, ci, m = 0;
        if (tm) { /* j = ((g*(mp/tm) + mb)*cpg + ci)*tm + mt */
            const int g = j / (mp * cpg), r = j % (mp * cpg);
            ci = (r / tm) % cpg;
            m = (r / (tm * cpg)) * tm + r % tm;
            ko = g * kpg + m;
        } else {
            ko = j / cpg;
            ci = j % cpg;
        }
        live[l] = j < jn && m < kpg;
        __global const float *src = filter_at(wt + w_off, live[l] ? ko : 0, ci, kpg, cpg, flip);
        for (int e = 0; e < 9; e++)
            gf[e][l] = live[l] ? src[flip ? 8 - e : e] : 0.0f;
    }
    float8 t[AL][3]; /* G g */
    for (int j = 0; j < 3; j++) {
        const float8 g0 = vload8(0, gf[j]), g1 = vload8(0, gf[3 + j]), g2 = vload8(0, gf[6 + j]);
#if MT == 2
        t[0][j] = g0;
        t[1][j] = 0.5f * (g0 + g1 + g2);
        t[2][j] = 0.5f * (g0 - g1 + g2);
        t[3][j] = g2;
#else
        t[0][j] = g0 / 4.0f;
        t[1][j] = -(g0 + g1 + g2) / 6.0f;
        t[2][j] = -(g0 - g1 + g2) / 6.0f;
        t[3][j] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
        t[4][j] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
        t[5][j] = g2;
#endif
    }
    const int astep = jn, whole = j0 + 8 <= jn;
    __global float *out = u + u_off + j0;
    for (int i = 0; i < AL; i++) {
        const float8 g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
        float8 v[AL]; /* (G g) G^T, row i */
#if MT == 2
        v[0] = g0;
        v[1] = 0.5f * (g0 + g1 + g2);
        v[2] = 0.5f * (g0 - g1 + g2);
        v[3] = g2;
#else
        v[0] = g0 / 4.0f;
        v[1] = -(g0 + g1 + g2) / 6.0f;
        v[2] = -(g0 - g1 + g2) / 6.0f;
        v[3] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
        v[4] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
        v[5] = g2;
#endif
        for (int j = 0; j < AL; j++) {
            __global float *d = out + (i * AL + j) * astep;
            if (whole) {
                vstore8(v[j], 0, d);
            } else {
                float o[8];
                vstore8(v[j], 0, o);
                for (int l = 0; j0 + l < jn; l++)
                    d[l] = o[l];
            }
        }
    }
}

/* ---- input rows ----------------------------------------------------------------------------- */

/* Columns of the vector loads of one segment, relative to its first input column (a few
 * more than the AL + MT*(SW-1) that are used). */
#if MT == 4
#define LOADW (4 * SW + 4)
#else
#define LOADW (2 * SW + 2 + (SW == 4 ? 4 : 0))
#endif

/* d[j] lane l = row[c0 + MT*l + j], j < AL, by vector loads and swizzles; row + c0 must
 * have LOADW readable elements. */
inline void row_vectors(__global const float *src, floatS d[AL]) {
#if MT == 4
    /* 4 lanes per 16 loaded floats: lane l of a chunk reads elements 4l .. 4l+5 */
    float4 e[SW / 4][AL];
    for (int ch = 0; ch < SW / 4; ch++) {
        const float16 a = vload16(0, src + 16 * ch), b = vload16(0, src + 16 * ch + 4);
        e[ch][0] = a.s048c;
        e[ch][1] = a.s159d;
        e[ch][2] = a.s26ae;
        e[ch][3] = a.s37bf;
        e[ch][4] = b.s048c;
        e[ch][5] = b.s159d;
    }
    for (int j = 0; j < AL; j++) {
#if SW == 16
        d[j] = (float16)(e[0][j], e[1][j], e[2][j], e[3][j]);
#elif SW == 8
        d[j] = (float8)(e[0][j], e[1][j]);
#else
        d[j] = e[0][j];
#endif
    }
#else /* MT == 2: 8 lanes per 16 loaded floats */
#if SW == 4
    const float8 a = vload8(0, src), b = vload8(0, src + 2);
    d[0] = a.even;
    d[1] = a.odd;
    d[2] = b.even;
    d[3] = b.odd;
#else
    float8 e[SW / 8][4];
    for (int ch = 0; ch < SW / 8; ch++) {
        const float16 a = vload16(0, src + 16 * ch), b = vload16(0, src + 16 * ch + 2);
        e[ch][0] = a.even;
        e[ch][1] = a.odd;
        e[ch][2] = b.even;
        e[ch][3] = b.odd;
    }
    for (int j = 0; j < AL; j++) {
#if SW == 16
        d[j] = (float16)(e[0][j], e[1][j]);
#else
        d[j] = e[0][j];
#endif
    }
#endif
#endif
}

/* The AL column vectors of input row ih (of the channel plane xc) for the segment whose
 * first column is c0: zero outside the image. lo..hi: the element range of x that may
 * be read (the tensor). */
inline void load_row(__global const float *x, int xc_off, int ih, int c0, int h, int w, int lo,
                     int hi, floatS d[AL]) {
    if (ih < 0 || ih >= h) {
        for (int j = 0; j < AL; j++)
            d[j] = (floatS)(0.0f);
        return;
    }
    const int start = xc_off + ih * w + c0;
    const int used_in = c0 >= 0 && c0 + MT * (SW - 1) + AL <= w;
    if (start >= lo && start + LOADW <= hi) {
        row_vectors(x + start, d);
        if (!used_in) { /* zero the columns outside the row (padding) */
            const intS col = (intS)(c0) + MT * (intS)(0, 1, 2, 3
#if SW >= 8
                                                      ,
                                                      4, 5, 6, 7
#endif
#if SW == 16
                                                      ,
                                                      8, 9, 10, 11, 12, 13, 14, 15
#endif
                                               );
            for (int j = 0; j < AL; j++) {
                const intS cj = col + j;
                d[j] = select((floatS)(0.0f), d[j], (cj >= (intS)(0)) & (cj < (intS)(w)));
            }
        }
        return;
    }
    /* next to the ends of the tensor: element by element */
    for (int j = 0; j < AL; j++) {
        float t[SW];
        for (int l = 0; l < SW; l++) {
            const int col = c0 + MT * l + j;
            t[l] = col >= 0 && col < w ? x[xc_off + ih * w + col] : 0.0f;
        }
        d[j] = vloadS(0, t);
    }
}

/* B^T applied to AL values (in place order: out[i] = sum_j BT[i][j] in[j]). */
#define BT_APPLY(o, i)                                                                             \
    do {                                                                                           \
        if (MT == 2) {                                                                             \
            o[0] = i[0] - i[2];                                                                    \
            o[1] = i[1] + i[2];                                                                    \
            o[2] = i[2] - i[1];                                                                    \
            o[3] = i[1] - i[3];                                                                    \
        } else {                                                                                   \
            o[0] = 4.0f * i[0] - 5.0f * i[2] + i[4];                                               \
            o[1] = i[3] + i[4] - 4.0f * (i[1] + i[2]);                                             \
            o[2] = 4.0f * (i[1] - i[2]) + i[4] - i[3];                                             \
            o[3] = 2.0f * (i[3] - i[1]) + i[4] - i[2];                                             \
            o[4] = 2.0f * (i[1] - i[3]) + i[4] - i[2];                                             \
            o[5] = 4.0f * i[1] - 5.0f * i[3] + i[5];                                               \
        }                                                                                          \
    } while (0)

/* A^T applied to AL values: MT outputs. */
#define AT_APPLY(o, i)                                                                             \
    do {                                                                                           \
        if (MT == 2) {                                                                             \
            o[0] = i[0] + i[1] + i[2];                                                             \
            o[1] = i[1] - i[2] - i[3];                                                             \
        } else {                                                                                   \
            o[0] = i[0] + i[1] + i[2] + i[3] + i[4];                                               \
            o[1] = i[1] - i[2] + 2.0f * (i[3] - i[4]);                                             \
            o[2] = i[1] + i[2] + 4.0f * (i[3] + i[4]);                                             \
            o[3] = i[1] - i[2] + 8.0f * (i[3] - i[4]) + i[5];                                      \
        }                                                                                          \
    } while (0)

/* The input transform B^T d B of the SW tiles ty, tx0.. of the channel plane at xc_off:
 * element a of them at dst + a*astride (SW floats). lo .. hi-1: the elements of x that may
 * be read. */
inline void input_tiles(__global const float *x, int xc_off, int ty, int tx0, int h, int w, int ph,
                        int pw, int lo, int hi, __local float *dst, int astride) {
    floatS e[AL][AL]; /* rows: B^T along the columns of each input row */
    for (int r = 0; r < AL; r++) {
        floatS d[AL];
        load_row(x, xc_off, ty * MT - ph + r, tx0 * MT - pw, h, w, lo, hi, d);
        BT_APPLY(e[r], d);
    }
    for (int j = 0; j < AL; j++) {
        floatS col[AL], o[AL];
        for (int r = 0; r < AL; r++)
            col[r] = e[r][j];
        BT_APPLY(o, col);
        for (int r = 0; r < AL; r++)
            vstoreS(o[r], 0, dst + (r * AL + j) * astride);
    }
}

/* Output rows ty*MT .. of SW tiles from column q0 of one channel plane (yk, residual zk):
 * A^T M A of the SW tiles whose element a is at m + a*astride (SW floats), + bv, + z,
 * activation. */
inline void output_rows(__local const float *m, int astride, int ty, int q0, int p, int q, float bv,
                        __global float *yk, __global const float *zk, int has_res, int act,
                        float alpha) {
    floatS f[MT][AL]; /* A^T along the rows of M */
    for (int j = 0; j < AL; j++) {
        floatS col[AL], o[MT];
        for (int i = 0; i < AL; i++)
            col[i] = vloadS(0, m + (i * AL + j) * astride);
        AT_APPLY(o, col);
        for (int i = 0; i < MT; i++)
            f[i][j] = o[i];
    }
    for (int i = 0; i < MT; i++) {
        const int pi = ty * MT + i;
        if (pi >= p) break;
        floatS o[MT];
        AT_APPLY(o, f[i]);
        float row[MT * SW]; /* output columns q0 .. q0 + MT*SW - 1 */
        for (int jj = 0; jj < MT; jj++) {
            float tmp[SW];
            vstoreS(o[jj] + bv, 0, tmp);
            for (int l = 0; l < SW; l++)
                row[MT * l + jj] = tmp[l];
        }
        if (has_res) {
            __global const float *zr = zk + pi * q + q0;
            if (q0 + MT * SW <= q) {
                for (int v = 0; v < MT * SW / 4; v++)
                    vstore4(vload4(v, row) + vload4(v, zr), v, row);
            } else {
                for (int l = 0; q0 + l < q && l < MT * SW; l++)
                    row[l] += zr[l];
            }
        }
        for (int v = 0; v < MT * SW / 4; v++)
            vstore4(CC_ACT_VEC(float4, vload4(v, row), act, alpha), v, row);
        __global float *yr = yk + pi * q + q0;
        if (q0 + MT * SW <= q) {
            for (int v = 0; v < MT * SW / 4; v++)
                vstore4(vload4(v, row), v, yr);
        } else {
            for (int l = 0; q0 + l < q && l < MT * SW; l++)
                yr[l] = row[l];
        }
    }
}

/* ---- fused transform + GEMM + inverse transform ---------------------------------------------- */

__kernel void winograd_fwd(__global const float *x, int x_off, __global const float *u, int u_off,
                           __global const float *bias, int b_off, int has_bias,
                           __global const float *z, int z_off, int has_res, __global float *y,
                           int y_off, int n, int c, int h, int w, int k, int p, int q, int ph,
                           int pw, int groups, int act, float alpha, int cc_max, int mr,
                           __local float *scratch) {
    const int cpg = c / groups, kpg = k / groups;
    const int th = (p + MT - 1) / MT, tw = (q + MT - 1) / MT;
    const int sx = (tw + SW - 1) / SW, spi = ((th + TRW - 1) / TRW) * sx; /* strips/image */
    const int msplit = (kpg + mr - 1) / mr;
    const int t = get_global_id(0), gm = get_global_id(1);
    if (t >= n * spi || gm >= groups * msplit) return;
    const int ni = t / spi, si = t % spi;
    const int ty0 = (si / sx) * TRW, tx0 = (si % sx) * SW;
    const int g = gm / msplit, m_lo = (gm % msplit) * mr;
    const int m_hi = min(m_lo + mr, kpg);

    __local float *vs = scratch + get_local_id(0) * (cc_max + mr) * A2 * 16; /* [a][ci][16] */
    __local float *ms = vs + cc_max * A2 * 16;                               /* [a][m][16] */
    const int lo = x_off, hi = x_off + n * c * h * w;

    for (int c0 = 0; c0 < cpg; c0 += cc_max) {
        const int cc = min(cc_max, cpg - c0);
        const int first = c0 == 0;
        /* 1. input transform */
        for (int ci = 0; ci < cc; ci++) {
            const int xc_off = x_off + (ni * c + g * cpg + c0 + ci) * h * w;
            for (int tr = 0; tr < TRW; tr++)
                input_tiles(x, xc_off, ty0 + tr, tx0, h, w, ph, pw, lo, hi, vs + ci * 16 + tr * SW,
                            cc_max * 16);
        }
        /* 2. one GEMM per transform element a */
        for (int a = 0; a < A2; a++) {
            __local const float *va = vs + a * cc_max * 16;
            __global const float *ua = u + u_off + (a * k + g * kpg) * cpg + c0;
            for (int m0 = m_lo; m0 < m_hi; m0 += TM) {
                __global const float *urow[TM]; /* rows past the range read its last one */
#pragma unroll
                for (int tm = 0; tm < TM; tm++)
                    urow[tm] = ua + min(m0 + tm, m_hi - 1) * cpg;
                float16 acc[TM];
#pragma unroll
                for (int tm = 0; tm < TM; tm++)
                    acc[tm] = (float16)(0.0f);
                for (int ci = 0; ci < cc; ci++) {
                    const float16 bv = vload16(ci, va);
#pragma unroll
                    for (int tm = 0; tm < TM; tm++)
                        acc[tm] = fma((float16)(urow[tm][ci]), bv, acc[tm]);
                }
#pragma unroll
                for (int tm = 0; tm < TM; tm++) {
                    if (m0 + tm < m_hi) {
                        __local float *dst = ms + (a * mr + m0 + tm - m_lo) * 16;
                        vstore16(first ? acc[tm] : acc[tm] + vload16(0, dst), 0, dst);
                    }
                }
            }
        }
    }

    /* 3. output transform, bias, activation */
    for (int m = m_lo; m < m_hi; m++) {
        const int ko = g * kpg + m;
        const float bv = has_bias ? bias[b_off + ko] : 0.0f;
        __global float *yk = y + y_off + (ni * k + ko) * p * q;
        __global const float *zk = z + z_off + (ni * k + ko) * p * q;
        for (int tr = 0; tr < TRW; tr++) {
            const int ty = ty0 + tr;
            if (ty >= th) break;
            output_rows(ms + (m - m_lo) * 16 + tr * SW, mr * 16, ty, tx0 * MT, p, q, bv, yk, zk,
                        has_res, act, alpha);
        }
    }
}

/* ---- the GEMM path: input transform, GEMM, output transform as three launches ------------ */

/* v (A*A*c, nt): the input transform of images n0 .. n0+nb-1 of x, row a*c + ci, column t =
 * (i*th + ty)*twp + tx (tile ty, tx of image n0 + i; the tile rows padded to twp = SW *
 * ceil(tw/SW) columns, whose tiles past tw hold the transform of zeros or of columns no
 * output uses), nt = nb*th*twp. As a pointwise convolution of A*A*groups groups it is the
 * input of the A*A GEMMs (lib/ops/conv2d_winograd.c). One work-item per channel, dim0 = ci,
 * over every image of the chunk: TB tiles at a time (SW at a time, whole vectors) into its
 * buf (local, A*A x TB floats), then A*A runs of TB consecutive floats into v, one after
 * the other. Storing each strip's A*A vectors straight into v (A*A streams at once), or
 * runs as short as one image's tiles, waited on the memory. */
__kernel void winograd_input(__global const float *x, int x_off, __global float *v, int v_off,
                             int n, int n0, int nb, int c, int h, int w, int p, int q, int ph,
                             int pw, __local float *buf) {
    const int th = (p + MT - 1) / MT, tw = (q + MT - 1) / MT, sx = (tw + SW - 1) / SW;
    const int ci = get_global_id(0);
    if (ci >= c) return;
    const int spi = th * sx, nt = nb * spi * SW; /* strips per image */
    __local float *b = buf + get_local_id(0) * A2 * TB;
    for (int s0 = 0; s0 < nb * spi; s0 += TB / SW) {
        const int ns = min(TB / SW, nb * spi - s0);
        for (int u = 0; u < ns; u++) {
            const int s = (s0 + u) % spi, i = (s0 + u) / spi;
            input_tiles(x, x_off + ((n0 + i) * c + ci) * h * w, s / sx, (s % sx) * SW, h, w, ph, pw,
                        x_off, x_off + n * c * h * w, b + u * SW, TB);
        }
        __global float *d = v + v_off + ci * nt + s0 * SW;
        for (int a = 0; a < A2; a++)
            for (int u = 0; u < ns; u++)
                vstoreS(vloadS(0, b + a * TB + u * SW), 0, d + a * c * nt + u * SW);
    }
}

/* y = act(A^T M A + b + z) for images n0 .. n0+nb-1 from mm (A*A*k, nt), the GEMMs' output
 * (row a*k + ko, columns as winograd_input's). One work-item per output channel, dim0 = ko,
 * over every image of the chunk: A*A runs of TB tiles into its buf (local, A*A x TB
 * floats), one after the other, then SW tiles of a tile row at a time from there (not the
 * A*A rows of mm a strip at a time: A*A streams at once). */
__kernel void winograd_output(__global const float *mm, int m_off, __global const float *bias,
                              int b_off, int has_bias, __global const float *z, int z_off,
                              int has_res, __global float *y, int y_off, int n0, int nb, int k,
                              int p, int q, int act, float alpha, __local float *buf) {
    const int th = (p + MT - 1) / MT, tw = (q + MT - 1) / MT, sx = (tw + SW - 1) / SW;
    const int ko = get_global_id(0);
    if (ko >= k) return;
    const int spi = th * sx, nt = nb * spi * SW; /* strips per image */
    const float bv = has_bias ? bias[b_off + ko] : 0.0f;
    __local float *b = buf + get_local_id(0) * A2 * TB;
    for (int sg = 0; sg < nb * spi; sg++) {
        const int u = sg % (TB / SW), s = sg % spi, i = sg / spi;
        const int plane = ((n0 + i) * k + ko) * p * q;
        if (u == 0) {
            const int ns = min(TB / SW, nb * spi - sg);
            __global const float *src = mm + m_off + ko * nt + sg * SW;
            for (int a = 0; a < A2; a++)
                for (int uu = 0; uu < ns; uu++)
                    vstoreS(vloadS(0, src + a * k * nt + uu * SW), 0, b + a * TB + uu * SW);
        }
        output_rows(b + u * SW, TB, s / sx, (s % sx) * SW * MT, p, q, bv, y + y_off + plane,
                    z + z_off + plane, has_res, act, alpha);
    }
}

/* Space-to-depth with stride S (lib/ops/conv2d_winograd.c, s2d_geometry): a layer with
 * stride S in both dims, dilation 1, groups 1 and a kernel of r x s taps, 2S < r, s <= 3S,
 * is the 3x3 stride-1 convolution without padding of xs (n, c*S*S, p+2, q+2) with
 * ws (k, c*S*S, 3, 3), where channel (ci*S + a)*S + b holds phase (a, b) of channel ci:
 *   xs[ni][(ci*S + a)*S + b][i][j] = x[ni][ci][i*S + a - ph][j*S + b - pw]  (0 outside x)
 *   ws[m][(ci*S + a)*S + b][u][v] = w[m][ci][u*S + a][v*S + b]
 *                                   (0 where u*S + a >= r or v*S + b >= s)
 * since output (pi, qi) reads rows pi*S - ph + kr with kr = u*S + a, that is row pi + u of
 * phase a. */
__kernel void winograd_s2d_filter(__global const float *w, int w_off, __global float *ws,
                                  int ws_off, int k, int c, int r, int s, int S) {
    const int cs = c * S * S, e = get_global_id(0); /* one element of ws */
    if (e >= k * cs * 9) return;
    const int v = e % 3, u = (e / 3) % 3, ch = (e / 9) % cs, m = e / (9 * cs);
    const int ci = ch / (S * S), kr = u * S + (ch / S) % S, ks = v * S + ch % S;
    ws[ws_off + e] = kr < r && ks < s ? w[w_off + ((m * c + ci) * r + kr) * s + ks] : 0.0f;
}

/* xs from x (see above); hs = p + 2 and wd = q + 2 its rows and columns. One work-item per
 * row of xs: dim0 = (image * c*S*S + channel of xs) * hs + row. */
__kernel void winograd_s2d_input(__global const float *x, int x_off, __global float *xs, int xs_off,
                                 int n, int c, int h, int w, int S, int ph, int pw, int hs,
                                 int wd) {
    const int cs = c * S * S, row = get_global_id(0);
    if (row >= n * cs * hs) return;
    const int i = row % hs, ch = (row / hs) % cs, ni = row / (hs * cs);
    const int ci = ch / (S * S), ih = i * S + (ch / S) % S - ph, b = ch % S - pw;
    __global float *d = xs + xs_off + row * wd;
    if (ih < 0 || ih >= h) {
        for (int j = 0; j < wd; j++)
            d[j] = 0.0f;
        return;
    }
    __global const float *src = x + x_off + ((ni * c + ci) * h + ih) * w;
    for (int j = 0; j < wd; j++) {
        const int iw = j * S + b;
        d[j] = iw >= 0 && iw < w ? src[iw] : 0.0f;
    }
}
