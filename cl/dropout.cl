/* Inverted dropout with a counter-based RNG: one work-item per element (gws = n
 * rounded up to the work-group size; kernels bounds-check i < n).
 *
 * Defines: none.
 * Buffers: x, y, mask, dy, dx are contiguous float arrays of n elements starting at
 * their element offsets (*_off). y may be x and dx may be dy (in place).
 *
 * RNG: element i (its index inside the tensor, not the buffer) draws
 *     r = splitmix64(key + (i + 1) * 0x9E3779B97F4A7C15)
 * i.e. the i-th output of SplitMix64 started at `key`, where the host derives
 *     key = splitmix64(seed ^ splitmix64(step))
 * so the mask depends only on (seed, step, i): the same on every device and for any
 * work-group size. The element is kept when the high 32 bits of r are >= thresh,
 * thresh = floor(p * 2^32), i.e. with probability 1 - thresh / 2^32. */
#include "common.h"

inline ulong cc_splitmix64(ulong z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}

/* mask[i] = keep ? scale : 0; y[i] = x[i] * mask[i]. scale = 1 / (1 - p). */
__kernel void dropout_forward(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                              __global float *mask, ulong mask_off, ulong n, ulong key, uint thresh,
                              float scale) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    ulong r = cc_splitmix64(key + ((ulong)i + 1UL) * 0x9E3779B97F4A7C15UL);
    float m = (uint)(r >> 32) >= thresh ? scale : 0.0f;
    float v = x[x_off + i];
    mask[mask_off + i] = m;
    y[y_off + i] = v * m;
}

/* dx[i] = dy[i] * mask[i] */
__kernel void dropout_backward(__global const float *mask, ulong mask_off, __global const float *dy,
                               ulong dy_off, __global float *dx, ulong dx_off, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    dx[dx_off + i] = dy[dy_off + i] * mask[mask_off + i];
}
