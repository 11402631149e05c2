/* Fully connected layer products for a small batch n (host side: lib/ops/linear.c, which
 * sends larger batches to CLBlast). At small n the three products are bound by the weight
 * traffic (w is out x in, 151 MB for AlexNet's fc6), so each kernel reads w (or writes dw)
 * once, keeps the few rows of the other operand in registers / cache, and loads 16 floats
 * at a time along `in` (float16: one cache line).
 *
 * Defines (all with defaults; the host passes none):
 *   RB   linear_small_fwd: rows (samples) per register block, default 4.
 *   JF   linear_small_fwd: output features per work-item, default 2 (the host's global
 *        size assumes 2).
 *   DRB  linear_small_dgrad: rows per register block, default 8.
 *   JS   linear_small_dgrad: rows of w a work-group walks between barriers, default 16.
 *   JB   linear_small_wgrad: output features per work-item, default 4.
 * Rows are processed in blocks; a partial last block repeats row n-1 in its idle lanes (no
 * branch in the inner loops) and stores only the real rows.
 *
 * Buffers (contiguous row-major, each with an element offset *_off; x may be any view
 * flattened to (n, in), as a conv output (n, c, h, w)):
 *   x  (n, in)   float   layer input
 *   w  (k, in)   float   weights, k = out features
 *   b  (k)       float   bias (read only when has_b != 0)
 *   y  (n, k)    float   output, overwritten
 *   dy (n, k)    float   output gradient
 *   dx (n, in)   float   input gradient, overwritten
 *   dw (k, in)   float   weight gradient, overwritten
 *
 * Kernels (every sum runs in a fixed order that depends on the shape only, so results are
 * bit-identical from run to run; no atomics):
 *   linear_small_fwd:   1-D, one work-item per JF output features j. For each block of RB
 *       rows it streams rows j of w (float16, then a scalar tail) against the block's rows
 *       of x: y[i][j] = sum_l x[i][l] w[j][l] (+ b[j]); lanes summed in a fixed tree, then
 *       the tail l = in & ~15 .. in-1 in order. A w row is reread once per row block, from
 *       cache.
 *   linear_small_dgrad: 1-D, one work-item per 16 consecutive columns l (the last strip of
 *       a row may be partial); for each block of DRB rows, dx[i][l] = sum_j dy[i][j] w[j][l]
 *       over j = 0..k-1 in order. Has barriers: the work-group walks w's rows JS at a time
 *       together, so on a CPU (work-items run one after another between barriers) a row's
 *       columns are read in sequence rather than one cache line per row and page.
 *   linear_small_wgrad: 2-D, dim 0 one work-item per 16 consecutive columns l, dim 1 one
 *       per JB features: dw[j][l] = sum_{i=0..n-1} dy[i][j] x[i][l] in order, written once. */
#include "common.h"

#ifndef RB
#define RB 4
#endif
#ifndef JF
#define JF 2
#endif
#ifndef JS
#define JS 16
#endif
#ifndef DRB
#define DRB 8
#endif
#ifndef JB
#define JB 4
#endif

/* The sum of the 16 lanes, always in the same order. */
inline float hsum16(float16 v) {
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

__kernel void linear_small_fwd(__global const float *x, int x_off, __global const float *w,
                               int w_off, __global const float *b, int b_off, int has_b,
                               __global float *y, int y_off, int n, int in, int k) {
    int j0 = get_global_id(0) * JF;
    if (j0 >= k) return;
    __global const float *wr[JF];
#pragma unroll
    for (int f = 0; f < JF; f++)
        wr[f] = w + w_off + (long)min(j0 + f, k - 1) * in;
    int in16 = in & ~15;
    for (int i0 = 0; i0 < n; i0 += RB) {
        __global const float *xr[RB];
        float16 acc[JF][RB];
#pragma unroll
        for (int r = 0; r < RB; r++) {
            xr[r] = x + x_off + (long)min(i0 + r, n - 1) * in;
#pragma unroll
            for (int f = 0; f < JF; f++)
                acc[f][r] = (float16)(0.0f);
        }
        for (int l = 0; l < in16; l += 16) {
            float16 wv[JF];
#pragma unroll
            for (int f = 0; f < JF; f++)
                wv[f] = vload16(0, wr[f] + l);
#pragma unroll
            for (int r = 0; r < RB; r++) {
                float16 xv = vload16(0, xr[r] + l);
#pragma unroll
                for (int f = 0; f < JF; f++)
                    acc[f][r] = fma(xv, wv[f], acc[f][r]);
            }
        }
#pragma unroll
        for (int f = 0; f < JF; f++) {
            float bias = has_b ? b[b_off + min(j0 + f, k - 1)] : 0.0f;
#pragma unroll
            for (int r = 0; r < RB; r++) {
                float s = hsum16(acc[f][r]);
                for (int l = in16; l < in; l++)
                    s = fma(xr[r][l], wr[f][l], s);
                if (i0 + r < n && j0 + f < k) y[y_off + (long)(i0 + r) * k + j0 + f] = s + bias;
            }
        }
    }
}

__kernel void linear_small_dgrad(__global const float *dy, int dy_off, __global const float *w,
                                 int w_off, __global float *dx, int dx_off, int n, int in, int k) {
    /* No early return: every work-item must reach the barriers. */
    int l0 = get_global_id(0) * 16;
    int rem = clamp(in - l0, 0, 16); /* columns of this strip: 16, fewer at the end, or none */
    __global const float *wc = w + w_off + min(l0, in - 1);
    for (int i0 = 0; i0 < n; i0 += DRB) {
        __global const float *dr[DRB];
        float16 acc[DRB];
#pragma unroll
        for (int r = 0; r < DRB; r++) {
            dr[r] = dy + dy_off + (long)min(i0 + r, n - 1) * k;
            acc[r] = (float16)(0.0f);
        }
        for (int jb = 0; jb < k; jb += JS) {
            int je = min(k, jb + JS);
            if (rem == 16) {
                int j = jb;
                for (; j + 4 <= je; j += 4) {
                    __global const float *wj = wc + (long)j * in;
                    float16 w0 = vload16(0, wj), w1 = vload16(0, wj + in);
                    float16 w2 = vload16(0, wj + 2 * in), w3 = vload16(0, wj + 3 * in);
#pragma unroll
                    for (int r = 0; r < DRB; r++) {
                        float4 d = vload4(0, dr[r] + j);
                        acc[r] = fma((float16)(d.s0), w0, acc[r]);
                        acc[r] = fma((float16)(d.s1), w1, acc[r]);
                        acc[r] = fma((float16)(d.s2), w2, acc[r]);
                        acc[r] = fma((float16)(d.s3), w3, acc[r]);
                    }
                }
                for (; j < je; j++) {
                    float16 wv = vload16(0, wc + (long)j * in);
#pragma unroll
                    for (int r = 0; r < DRB; r++)
                        acc[r] = fma((float16)(dr[r][j]), wv, acc[r]);
                }
            } else if (rem > 0) {
                /* the last, partial strip of a row: the missing columns read as 0 */
                for (int j = jb; j < je; j++) {
                    float t[16];
                    for (int c = 0; c < 16; c++)
                        t[c] = c < rem ? wc[(long)j * in + c] : 0.0f;
                    float16 wv = vload16(0, t);
#pragma unroll
                    for (int r = 0; r < DRB; r++)
                        acc[r] = fma((float16)(dr[r][j]), wv, acc[r]);
                }
            }
            /* the work-group walks the rows of w together, JS at a time: its columns of a
             * row are read one after the other (prefetch, TLB), not a row per page */
            barrier(CLK_LOCAL_MEM_FENCE);
        }
#pragma unroll
        for (int r = 0; r < DRB; r++) {
            if (i0 + r >= n) continue;
            __global float *o = dx + dx_off + (long)(i0 + r) * in + l0;
            if (rem == 16) {
                vstore16(acc[r], 0, o);
            } else if (rem > 0) {
                float t[16];
                vstore16(acc[r], 0, t);
                for (int c = 0; c < rem; c++)
                    o[c] = t[c];
            }
        }
    }
}

__kernel void linear_small_wgrad(__global const float *dy, int dy_off, __global const float *x,
                                 int x_off, __global float *dw, int dw_off, int n, int in, int k) {
    int l0 = get_global_id(0) * 16;
    int j0 = get_global_id(1) * JB;
    if (l0 >= in || j0 >= k) return;
    int jl[JB];
#pragma unroll
    for (int q = 0; q < JB; q++)
        jl[q] = min(j0 + q, k - 1);
    __global const float *xc = x + x_off + l0;
    __global const float *dc = dy + dy_off;
    if (l0 + 16 <= in) {
        float16 acc[JB];
#pragma unroll
        for (int q = 0; q < JB; q++)
            acc[q] = (float16)(0.0f);
        for (int i = 0; i < n; i++) {
            float16 xv = vload16(0, xc + (long)i * in);
            __global const float *di = dc + (long)i * k;
#pragma unroll
            for (int q = 0; q < JB; q++)
                acc[q] = fma((float16)(di[jl[q]]), xv, acc[q]);
        }
#pragma unroll
        for (int q = 0; q < JB; q++)
            if (j0 + q < k) vstore16(acc[q], 0, dw + dw_off + (long)(j0 + q) * in + l0);
    } else {
        for (int c = 0; c < in - l0; c++) {
            float s[JB];
#pragma unroll
            for (int q = 0; q < JB; q++)
                s[q] = 0.0f;
            for (int i = 0; i < n; i++) {
                float xv = xc[(long)i * in + c];
                __global const float *di = dc + (long)i * k;
#pragma unroll
                for (int q = 0; q < JB; q++)
                    s[q] = fma(di[jl[q]], xv, s[q]);
            }
#pragma unroll
            for (int q = 0; q < JB; q++)
                if (j0 + q < k) dw[dw_off + (long)(j0 + q) * in + l0 + c] = s[q];
        }
    }
}
