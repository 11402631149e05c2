/* Activations, forward and backward: one work-item per element (gws = n rounded up to
 * the work-group size; kernels bounds-check i < n).
 *
 * Defines: none. The activation is a run-time argument `act` (CLCNN_ACT_ID_RELU or
 * CLCNN_ACT_ID_LEAKY from clcnn_ids.h; the identity is a buffer copy on the host side),
 * so one program serves every activation.
 * Buffers: x, y, dy, dx are contiguous float arrays of n elements starting at their
 * element offsets (*_off). y may be x and dx may be dy (in place): each work-item
 * reads its element before writing it, so nothing is `restrict`.
 *
 * NaN propagates through the forward pass (relu(NaN) = NaN, as in PyTorch), so a
 * diverging network is visible in its loss. Derivative at 0: relu'(0) = 0,
 * leaky'(0) = alpha (PyTorch's convention). */
#include "common.h"

__kernel void act_forward(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                          ulong n, int act, float alpha) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = x[x_off + i];
    if (act == CLCNN_ACT_ID_RELU)
        v = v < 0.0f ? 0.0f : v;
    else if (act == CLCNN_ACT_ID_LEAKY)
        v = v > 0.0f ? v : alpha * v;
    y[y_off + i] = v;
}

/* dx = dy * act'(x), x the forward input. */
__kernel void act_backward(__global const float *x, ulong x_off, __global const float *dy,
                           ulong dy_off, __global float *dx, ulong dx_off, ulong n, int act,
                           float alpha) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float g = dy[dy_off + i];
    int pos = x[x_off + i] > 0.0f;
    if (act == CLCNN_ACT_ID_RELU)
        g = pos ? g : 0.0f;
    else if (act == CLCNN_ACT_ID_LEAKY)
        g = pos ? g : alpha * g;
    dx[dx_off + i] = g;
}
