/* Bias kernels of the fully connected layer (host side: lib/ops/linear.c; the matrix
 * products go to CLBlast).
 *
 * Defines: none. Shapes are kernel arguments.
 *
 * Buffers (contiguous row-major, each with an element offset *_off):
 *   y  (n, k)  float   layer output, the bias is added in place
 *   b  (k)     float   bias
 *   dy (n, k)  float   gradient of the output
 *   db (k)     float   bias gradient (overwritten)
 *
 * linear_bias_add: one work-item per element of y.
 * linear_bias_grad: one work-item per output feature j, db[j] = sum over i = 0..n-1 of
 * dy[i][j] in that order, compensated (deterministic; neighbouring work-items read neighbouring
 * columns, so the loads coalesce). */
#include "common.h"

__kernel void linear_bias_add(__global float *y, int y_off, __global const float *b, int b_off,
                              int n, int k) {
    int gid = get_global_id(0);
    if (gid >= n * k) return;
    y[y_off + gid] += b[b_off + gid % k];
}

__kernel void linear_bias_grad(__global const float *dy, int dy_off, __global float *db, int db_off,
                               int n, int k) {
    int j = get_global_id(0);
    if (j >= k) return;
    __global const float *col = dy + dy_off + j;
    float s = 0.0f, comp = 0.0f; /* Kahan: error independent of the batch size */
    for (int i = 0; i < n; i++) {
        float v = col[(long)i * k] - comp;
        float t = s + v;
        comp = (t - s) - v;
        s = t;
    }
    db[db_off + j] = s;
}
