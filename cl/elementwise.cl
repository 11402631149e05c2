/* Element-wise arithmetic: one work-item per element (gws = n rounded up to the
 * work-group size, so every kernel bounds-checks i < n).
 *
 * Defines: none.
 * Buffers: every tensor is a contiguous float array of n elements starting at its
 * element offset (*_off). Outputs may be the same buffer and offset as an input (each
 * work-item reads its element before writing it), so no pointer is `restrict`. */
#include "common.h"

/* y[i] = a[i] + b[i] */
__kernel void ew_add(__global const float *a, ulong a_off, __global const float *b, ulong b_off,
                     __global float *y, ulong y_off, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = a[a_off + i] + b[b_off + i];
}

/* y = relu(a + b): the sum and comparison of ew_add (or binary_flat's Add) followed by
 * act_forward, in one pass (training plans' Add fused with the ReLU that alone reads it;
 * its backward is act_backward with y as x, as y > 0 exactly where a + b > 0). */
__kernel void ew_add_relu(__global const float *a, ulong a_off, __global const float *b,
                          ulong b_off, __global float *y, ulong y_off, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = a[a_off + i] + b[b_off + i];
    y[y_off + i] = v < 0.0f ? 0.0f : v;
}

/* dx = y > 0 ? a + b : 0: the sum of two gradient contributions (the sum ew_axpby with
 * alpha = beta = 1 makes) masked as act_backward masks by the ReLU's output y, in one pass
 * (training plans: an Add fused with its ReLU whose output two nodes read). */
__kernel void ew_add_relu_grad(__global const float *y, ulong y_off, __global const float *a,
                               ulong a_off, __global const float *b, ulong b_off,
                               __global float *dx, ulong dx_off, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float g = a[a_off + i] + b[b_off + i];
    dx[dx_off + i] = y[y_off + i] > 0.0f ? g : 0.0f;
}

/* y[i] = alpha * x[i] + beta * y[i]; with beta == 0, y is not read (BLAS convention:
 * NaN or garbage in an uninitialised y does not leak into the result). */
__kernel void ew_axpby(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                       ulong n, float alpha, float beta) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float ax = alpha * x[x_off + i];
    y[y_off + i] = beta == 0.0f ? ax : ax + beta * y[y_off + i];
}
