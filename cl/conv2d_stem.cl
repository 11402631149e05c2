/* Forward convolution of layers with few input channels (LeNet's first layer, the 3-channel
 * stems of VGG, ResNet, AlexNet and MobileNet), a variant of implicit_gemm on CPUs. Host
 * side: lib/ops/conv2d_stem.c.
 *
 * With few input channels the implicit GEMM's reduction is short (25 to 363 taps) and
 * its pack (im2col of every tile into local memory, element by element for strided
 * layers) costs about as much as the product. Here a work-item copies the input rows a
 * band of output rows reads, once, into local memory, split into the SW column phases of
 * the stride (phase f of a padded row holds its columns f, f + SW, f + 2 SW, ...). For
 * output column q0 + l and tap ks the input is then column (q0 + l)*SW + ks of the padded
 * row, which is element q0 + l + ks/SW of phase ks%SW: 16 consecutive output columns read
 * 16 consecutive floats for every tap, one vector load from the copy, whatever the
 * stride. The product runs TM output channels x TN tiles (16 columns of one output row)
 * at a time: TM*TN float16 accumulators, TN vector loads and TM broadcast weights per tap.
 *
 * Each output is the sum over its taps kk = (ci*KR + kr)*KS + ks in increasing order,
 * one fma chain from 0, then the residual z, the bias (0 without one) and the activation
 * are applied in that order: the implicit GEMM's order (one reduction chunk), so both
 * give the same bits.
 *
 * Defines (the geometry is compiled in):
 *   CIN     input channels (1..8)
 *   KR, KS  kernel rows and columns (1..11)
 *   SW      column stride (1..4); the row stride sh is an argument
 *   TM      output channels per register block (1..16)                        default 8
 *   TN      tiles per register block (1..4)                                   default 3
 *   ACT_SILU  1: the activation is x Sigmoid(x) whatever act says             default 0
 * Dilation 1, one group, k >= TM (the host checks).
 *
 * Arguments: x (n, CIN, h, w), w (k, CIN, KR, KS) the layer's weights as they are, bias
 * (k) (has_bias), z (n, k, p, q) the residual (has_res; may be y itself), y (n, k, p, q);
 * rb output rows per band; ldl floats per column phase of a copied row (at least
 * ceil(q/16)*16 + (KS-1)/SW); buf: local memory, get_local_size(0) * CIN *
 * ((rb-1)*sh + KR) * SW * ldl floats.
 * Work-item -> output mapping: dim0 = image * bands + band (rb output rows, all k
 * channels). */
#include "common.h"

#ifndef TM
#define TM 8
#endif
#ifndef TN
#define TN 3
#endif
#ifndef ACT_SILU
#define ACT_SILU 0
#endif
#if !defined(CIN) || !defined(KR) || !defined(KS) || !defined(SW)
#error "CIN, KR, KS and SW must be defined"
#endif
#if CIN < 1 || CIN > 8 || KR < 1 || KR > 11 || KS < 1 || KS > 11 || SW < 1 || SW > 4
#error "CIN must be in 1..8, KR and KS in 1..11, SW in 1..4"
#endif
#if TM < 1 || TM > 16 || TN < 1 || TN > 4
#error "TM must be in 1..16, TN in 1..4"
#endif

#define K_ALL (CIN * KR * KS) /* taps per output channel */

#if ACT_SILU
#define STEM_ACT(v, act, alpha) CC_SILU(v)
#else
#define STEM_ACT(v, act, alpha) CC_ACT_VEC(float16, v, act, alpha)
#endif

/* The first n (1..15) of 16 floats at p, in pieces of 8, 4, 2 and 1 from registers (an
 * array in private memory stored as one vector and read back in floats stalled on the
 * store forwarding). */
inline void stem_store_part(float16 v, __global float *p, int n) {
    float8 a = v.lo;
    if (n >= 8) {
        vstore8(a, 0, p);
        a = v.hi, p += 8, n -= 8;
    }
    float4 b = a.lo;
    if (n >= 4) {
        vstore4(b, 0, p);
        b = a.hi, p += 4, n -= 4;
    }
    float2 c = b.lo;
    if (n >= 2) {
        vstore2(c, 0, p);
        c = b.hi, p += 2, n -= 2;
    }
    if (n >= 1) p[0] = c.x;
}
__kernel void conv2d_stem_fwd(__global const float *x, int x_off, __global const float *wg,
                              int w_off, __global const float *bias, int b_off, int has_bias,
                              __global const float *z, int z_off, int has_res, __global float *y,
                              int y_off, int n, int h, int w, int k, int p, int q, int sh, int ph,
                              int pw, int act, float alpha, int rb, int ldl, __local float *buf) {
    const int bands = (p + rb - 1) / rb, id = get_global_id(0);
    if (id >= n * bands) return;
    const int ni = id / bands, p0 = (id % bands) * rb, nr = min(rb, p - p0);
    const int rows = (rb - 1) * sh + KR; /* input rows of a band (per channel) */
    const int rstride = SW * ldl;        /* floats per copied row */
    const int cstride = rows * rstride;  /* per channel */
    __local float *lb = buf + get_local_id(0) * CIN * cstride;
    __global const float *zend = z + z_off + n * k * p * q; /* the residual's end */

    /* the copy: rows p0*sh - ph .. of every channel, phase by phase */
    const int nrows = (nr - 1) * sh + KR;
    for (int ci = 0; ci < CIN; ci++) {
        for (int rr = 0; rr < nrows; rr++) {
            const int iy = p0 * sh - ph + rr;
            __global const float *src =
                iy >= 0 && iy < h ? x + x_off + ((ni * CIN + ci) * h + iy) * w : 0;
            __local float *d = lb + ci * cstride + rr * rstride;
            for (int i0 = 0; i0 < ldl; i0 += 16) {
                const int c0 = i0 * SW - pw;
                if (src && c0 >= 0 && c0 + 16 * SW <= w && i0 + 16 <= ldl) {
#if SW == 1
                    vstore16(vload16(0, src + c0), 0, d + i0);
#elif SW == 2
                    const float16 a = vload16(0, src + c0), b = vload16(0, src + c0 + 16);
                    vstore16((float16)(a.even, b.even), 0, d + i0);
                    vstore16((float16)(a.odd, b.odd), 0, d + ldl + i0);
#elif SW == 4
                    const float16 a = vload16(0, src + c0), b = vload16(0, src + c0 + 16);
                    const float16 c = vload16(0, src + c0 + 32), e = vload16(0, src + c0 + 48);
                    vstore16((float16)(a.s048c, b.s048c, c.s048c, e.s048c), 0, d + i0);
                    vstore16((float16)(a.s159d, b.s159d, c.s159d, e.s159d), 0, d + ldl + i0);
                    vstore16((float16)(a.s26ae, b.s26ae, c.s26ae, e.s26ae), 0, d + 2 * ldl + i0);
                    vstore16((float16)(a.s37bf, b.s37bf, c.s37bf, e.s37bf), 0, d + 3 * ldl + i0);
#else
                    for (int f = 0; f < SW; f++)
                        for (int l = 0; l < 16; l++)
                            d[f * ldl + i0 + l] = src[c0 + l * SW + f];
#endif
                } else {
                    for (int f = 0; f < SW; f++)
                        for (int l = 0; l < 16 && i0 + l < ldl; l++) {
                            const int col = (i0 + l) * SW + f - pw;
                            d[f * ldl + i0 + l] = src && col >= 0 && col < w ? src[col] : 0.0f;
                        }
                }
            }
        }
    }

    const int qt = (q + 15) / 16, ntile = nr * qt; /* tiles of 16 columns of one row */
    for (int m0 = 0; m0 < k; m0 += TM) {
        /* the block of TM channels from mb (the last block ends at channel k - 1, storing
         * only its channels from m0; k >= TM): rows of K_ALL taps, constant offsets */
        const int mb = min(m0, k - TM);
        __global const float *wr = wg + w_off + mb * K_ALL;
        for (int t0 = 0; t0 < ntile; t0 += TN) {
            __local const float *bp[TN];
            float16 acc[TN][TM];
#pragma unroll
            for (int tn = 0; tn < TN; tn++) {
                const int tt = min(t0 + tn, ntile - 1);
                bp[tn] = lb + (tt / qt) * sh * rstride + (tt % qt) * 16;
#pragma unroll
                for (int tm = 0; tm < TM; tm++)
                    acc[tn][tm] = (float16)(0.0f);
            }
            __global const float *wp = wr;
            /* one row of taps at a time, one tap at a time: unrolled, LLVM hoisted every
             * load of a row ahead of its FMAs and spilled the accumulators (7x7, 11x11) */
#pragma unroll 1
            for (int row = 0; row < CIN * KR; row++, wp += KS) {
                const int off0 = (row / KR) * cstride + (row % KR) * rstride;
#pragma unroll 1
                for (int ks = 0; ks < KS; ks++) {
                    const int off = off0 + (ks % SW) * ldl + ks / SW;
                    float16 bv[TN];
#pragma unroll
                    for (int tn = 0; tn < TN; tn++)
                        bv[tn] = vload16(0, bp[tn] + off);
#pragma unroll
                    for (int tm = 0; tm < TM; tm++) {
                        const float16 wv = (float16)(wp[tm * K_ALL + ks]);
#pragma unroll
                        for (int tn = 0; tn < TN; tn++)
                            acc[tn][tm] = fma(wv, bv[tn], acc[tn][tm]);
                    }
                }
            }
            /* the epilogue: residual, bias, activation; whole tiles as one vector */
#pragma unroll 1
            for (int tn = 0; tn < TN; tn++) {
                const int tt = t0 + tn;
                if (tt >= ntile) break;
                const int pi = p0 + tt / qt, q0 = (tt % qt) * 16;
#pragma unroll 1
                for (int tm = m0 - mb; tm < TM; tm++) {
                    const int m = mb + tm;
                    const int yo = ((ni * k + m) * p + pi) * q + q0;
                    float16 v = acc[tn][tm];
                    const float bv = has_bias ? bias[b_off + m] : 0.0f;
                    if (q0 + 16 <= q) {
                        if (has_res) v += vload16(0, z + z_off + yo);
                        v += (float16)(bv);
                        vstore16(STEM_ACT(v, act, alpha), 0, y + y_off + yo);
                    } else {
                        if (has_res) {
                            int16 m;
                            v += cc_load16_part(z + z_off + yo, q - q0, zend, &m);
                        }
                        v += (float16)(bv);
                        stem_store_part(STEM_ACT(v, act, alpha), y + y_off + yo, q - q0);
                    }
                }
            }
        }
    }
}
