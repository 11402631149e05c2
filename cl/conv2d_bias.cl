/* conv2d helpers: fused bias + residual + activation after a GEMM, the bias gradient, and the
 * fixed-order sum of per-chunk partial results (deterministic, no atomics).
 *
 * Defines:
 *   WG  work-group size of conv2d_bias_grad (a power of two; the host launches with
 *       exactly this local size).
 *
 * Buffers (dense NCHW, each with an element offset argument):
 *   y, dy  (n, k, pq)   pq = p*q output positions
 *   z      (n, k, pq)   residual (may be y itself: each element is read before written)
 *   b, db  (k)
 *   part   (parts, m)   out (m) */
#include "common.h"

#ifndef WG
#define WG 64 /* work-items per output channel in conv2d_bias_grad */
#endif
#if (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

/* One work-item per y element: y = act(y + b[k] + z) (without b or z when has_bias or
 * has_res is 0). */
__kernel void conv2d_bias_act(__global float *y, int y_off, __global const float *b, int b_off,
                              int has_bias, __global const float *z, int z_off, int has_res, int n,
                              int k, int pq, int act, float alpha) {
    int i = get_global_id(0);
    if (i >= n * k * pq) return;
    float v = y[y_off + i];
    if (has_bias) v += b[b_off + (i / pq) % k];
    if (has_res) v += z[z_off + i];
    y[y_off + i] = cc_activate(v, act, alpha);
}

/* One work-group per output channel k: work-item t sums the elements t, t+WG, ... of
 * each image's plane in image order, then a fixed tree in local memory adds the WG
 * partial sums. Same shape and WG => same order => bit-identical results. */
__kernel void conv2d_bias_grad(__global const float *dy, int dy_off, __global float *db, int db_off,
                               int n, int k, int pq) {
    __local float sums[WG];
    int ko = get_group_id(0), t = get_local_id(0);
    float acc = 0.0f;
    if (ko < k) {
        for (int ni = 0; ni < n; ni++) {
            __global const float *plane = dy + dy_off + (ni * k + ko) * pq;
            for (int j = t; j < pq; j += WG)
                acc += plane[j];
        }
    }
    sums[t] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = WG / 2; step > 0; step /= 2) {
        if (t < step) sums[t] += sums[t + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0 && ko < k) db[db_off + ko] = sums[0];
}

/* out[i] = (accumulate ? out[i] : 0) + part[0][i] + part[1][i] + ... in that order. */
__kernel void conv2d_sum_parts(__global const float *part, int part_off, int parts, int m,
                               __global float *out, int out_off, int accumulate) {
    int i = get_global_id(0);
    if (i >= m) return;
    float acc = accumulate ? out[out_off + i] : 0.0f;
    for (int j = 0; j < parts; j++)
        acc += part[part_off + j * m + i];
    out[out_off + i] = acc;
}
