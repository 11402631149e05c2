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

/* v0 alone at weight 0, so an inf or NaN in an unused tap does not leak in */
inline float blend(float v0, float v1, float t) {
    return t == 0.0f ? v0 : (1.0f - t) * v0 + t * v1;
}

__kernel void resize2d(__global const float *x, int x_off, __global float *y, int y_off,
                       __global const float *tab, int tab_off, int outer, int h, int w, int p,
                       int q) {
    int qw = get_global_id(0), ph = get_global_id(1), o = get_global_id(2);
    if (qw >= q || ph >= p || o >= outer) return;
    __global const float *r = tab + tab_off + 3 * ph, *c = tab + tab_off + 3 * (p + qw);
    int r0 = (int)r[0], r1 = (int)r[1], c0 = (int)c[0], c1 = (int)c[1];
    float a = r[2], b = c[2];
    __global const float *xo = x + x_off + (size_t)o * h * w;
    float top = blend(xo[r0 * w + c0], xo[r0 * w + c1], b);
    float bot = a == 0.0f ? top : blend(xo[r1 * w + c0], xo[r1 * w + c1], b);
    y[y_off + ((size_t)o * p + ph) * q + qw] = blend(top, bot, a);
}
