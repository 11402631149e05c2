/* Fully connected layer products for a small batch n (host side: lib/ops/linear.c, which
 * sends large batches to CLBlast instead). At small n the three products are bound by
 * the weight traffic (w is out x in), so each kernel streams w (or writes dw) once, keeps
 * the n rows of the other operand in registers / cache, and loads 4 floats at a time
 * along `in`.
 *
 * Defines:
 *   RB  rows (samples) per register block, default 8. Rows are processed in blocks of RB;
 *       a partial last block repeats row n-1 in its idle lanes (no branch in the inner
 *       loop) and stores only the real rows.
 *   JB  output features per work-item of linear_small_wgrad, default 4.
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
 *   linear_small_fwd:   1-D, one work-item per output feature j. For each row block it
 *       streams row j of w (4 floats at a time, then a scalar tail) against the block's
 *       rows of x; y[i][j] = sum_l x[i][l] w[j][l] (+ b[j]). A w row is reread once per
 *       row block, from cache (rows are in floats long).
 *   linear_small_dgrad: 1-D, one work-item per 8 consecutive columns l (two float4; the
 *       last strip of a row scalar). For each row block it runs j = 0..k-1 in order:
 *       dx[i][l] = sum_j dy[i][j] w[j][l]. Neighbouring work-items read neighbouring
 *       columns of w.
 *   linear_small_wgrad: 2-D, dim 0 one work-item per 4 consecutive columns l, dim 1 one
 *       per JB features: dw[j][l] = sum_{i=0..n-1} dy[i][j] x[i][l], written once. */
#include "common.h"

#ifndef RB
#define RB 8
#endif
#ifndef JB
#define JB 4
#endif

__kernel void linear_small_fwd(__global const float *x, int x_off, __global const float *w,
                               int w_off, __global const float *b, int b_off, int has_b,
                               __global float *y, int y_off, int n, int in, int k) {
    int j = get_global_id(0);
    if (j >= k) return;
    __global const float *wr = w + w_off + (long)j * in;
    int in4 = in & ~3;
    float bias = has_b ? b[b_off + j] : 0.0f;
    for (int i0 = 0; i0 < n; i0 += RB) {
        __global const float *xr[RB];
        float4 acc[RB];
#pragma unroll
        for (int r = 0; r < RB; r++) {
            xr[r] = x + x_off + (long)min(i0 + r, n - 1) * in;
            acc[r] = (float4)(0.0f);
        }
        for (int l = 0; l < in4; l += 4) {
            float4 wv = vload4(0, wr + l);
#pragma unroll
            for (int r = 0; r < RB; r++)
                acc[r] = fma(vload4(0, xr[r] + l), wv, acc[r]);
        }
        float s[RB];
#pragma unroll
        for (int r = 0; r < RB; r++)
            s[r] = (acc[r].s0 + acc[r].s1) + (acc[r].s2 + acc[r].s3);
        for (int l = in4; l < in; l++) {
            float wv = wr[l];
#pragma unroll
            for (int r = 0; r < RB; r++)
                s[r] = fma(xr[r][l], wv, s[r]);
        }
#pragma unroll
        for (int r = 0; r < RB; r++)
            if (i0 + r < n) y[y_off + (long)(i0 + r) * k + j] = s[r] + bias;
    }
}

__kernel void linear_small_dgrad(__global const float *dy, int dy_off, __global const float *w,
                                 int w_off, __global float *dx, int dx_off, int n, int in, int k) {
    int l0 = get_global_id(0) * 8;
    if (l0 >= in) return;
    __global const float *wc = w + w_off + l0;
    int full = l0 + 8 <= in;
    for (int i0 = 0; i0 < n; i0 += RB) {
        __global const float *dr[RB];
        float4 a0[RB], a1[RB];
#pragma unroll
        for (int r = 0; r < RB; r++) {
            dr[r] = dy + dy_off + (long)min(i0 + r, n - 1) * k;
            a0[r] = (float4)(0.0f);
            a1[r] = (float4)(0.0f);
        }
        if (full) {
            for (int j = 0; j < k; j++) {
                __global const float *wj = wc + (long)j * in;
                float4 w0 = vload4(0, wj), w1 = vload4(1, wj);
#pragma unroll
                for (int r = 0; r < RB; r++) {
                    float d = dr[r][j];
                    a0[r] = fma((float4)(d), w0, a0[r]);
                    a1[r] = fma((float4)(d), w1, a1[r]);
                }
            }
#pragma unroll
            for (int r = 0; r < RB; r++)
                if (i0 + r < n) {
                    __global float *o = dx + dx_off + (long)(i0 + r) * in + l0;
                    vstore4(a0[r], 0, o);
                    vstore4(a1[r], 1, o);
                }
        } else {
            /* the last, partial strip of a row: columns l0 .. in-1, one at a time */
            for (int c = 0; c < in - l0; c++) {
                float s[RB];
#pragma unroll
                for (int r = 0; r < RB; r++)
                    s[r] = 0.0f;
                for (int j = 0; j < k; j++) {
                    float wv = wc[(long)j * in + c];
#pragma unroll
                    for (int r = 0; r < RB; r++)
                        s[r] = fma(dr[r][j], wv, s[r]);
                }
#pragma unroll
                for (int r = 0; r < RB; r++)
                    if (i0 + r < n) dx[dx_off + (long)(i0 + r) * in + l0 + c] = s[r];
            }
        }
    }
}

__kernel void linear_small_wgrad(__global const float *dy, int dy_off, __global const float *x,
                                 int x_off, __global float *dw, int dw_off, int n, int in, int k) {
    int l0 = get_global_id(0) * 4;
    int j0 = get_global_id(1) * JB;
    if (l0 >= in || j0 >= k) return;
    int jl[JB];
#pragma unroll
    for (int q = 0; q < JB; q++)
        jl[q] = min(j0 + q, k - 1);
    __global const float *xc = x + x_off + l0;
    __global const float *dc = dy + dy_off;
    if (l0 + 4 <= in) {
        float4 acc[JB];
#pragma unroll
        for (int q = 0; q < JB; q++)
            acc[q] = (float4)(0.0f);
        for (int i = 0; i < n; i++) {
            float4 xv = vload4(0, xc + (long)i * in);
            __global const float *di = dc + (long)i * k;
#pragma unroll
            for (int q = 0; q < JB; q++)
                acc[q] = fma((float4)(di[jl[q]]), xv, acc[q]);
        }
#pragma unroll
        for (int q = 0; q < JB; q++)
            if (j0 + q < k) vstore4(acc[q], 0, dw + dw_off + (long)(j0 + q) * in + l0);
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
