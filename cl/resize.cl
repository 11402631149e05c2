/* Resize / Upsample over the last two dims (host side: lib/ops/resize.c).
 *
 * No defines.
 *
 * resize2d: x (outer, h, w) and y (outer, p, q) dense. tab (p + q, 3): per output row ph
 *   (rows 0..p-1) and per output column qw (rows p..p+q-1), the two input coordinates it
 *   reads (i0, i1, stored as floats, exact below 2^24) and the weight of i1; nearest
 *   modes give i1 = i0 and weight 0. The host computes the table once from the ONNX
 *   coordinate transform, so every mode is the same bilinear blend here.
 *   One work-item per output element: gid (qw, ph, o). */
#include "common.h"

__kernel void resize2d(__global const float *x, int x_off, __global float *y, int y_off,
                       __global const float *tab, int tab_off, int outer, int h, int w, int p,
                       int q) {
    int qw = get_global_id(0), ph = get_global_id(1), o = get_global_id(2);
    if (qw >= q || ph >= p || o >= outer) return;
    __global const float *r = tab + tab_off + 3 * ph, *c = tab + tab_off + 3 * (p + qw);
    int r0 = (int)r[0], r1 = (int)r[1], c0 = (int)c[0], c1 = (int)c[1];
    float a = r[2], b = c[2];
    __global const float *xo = x + x_off + (size_t)o * h * w;
    float top = (1.0f - b) * xo[r0 * w + c0] + b * xo[r0 * w + c1];
    float bot = (1.0f - b) * xo[r1 * w + c0] + b * xo[r1 * w + c1];
    y[y_off + ((size_t)o * p + ph) * q + qw] = (1.0f - a) * top + a * bot;
}
