/* im2col and col2im for the GEMM convolution (host side: lib/ops/conv2d_gemm.c).
 *
 * Defines: none. Every shape is a kernel argument, so one program serves every layer.
 *
 * Buffers (dense, each with an element offset *_off):
 *   x, dx (n, c, h, w)                 input / its gradient
 *   col   (nb, cc*r*s, prow*q)         one column matrix per image of the chunk:
 *         col[b, (ci*r + kr)*s + ks, (pi - p0)*q + qi]
 *           = x[n0 + b, c0 + ci, pi*sh - ph + kr*dh, qi*sw - pw + ks*dw]  (0 outside)
 * for images n0 .. n0+nb-1, channels c0 .. c0+cc-1 and output rows p0 .. p0+prow-1.
 *
 * Work-item mapping: im2col writes one col element per work-item (dim0 = column
 * (pi - p0)*q + qi, dim1 = row (ci*r + kr)*s + ks, dim2 = image of the chunk). col2im
 * is a gather: one dx element per work-item (dim0 = hi*w + wi, dim1 = channel of the
 * chunk, dim2 = image) sums the col entries that read it, kr then ks ascending, so it
 * needs no atomics and is deterministic. */
#include "common.h"

__kernel void im2col(__global const float *x, int x_off, __global float *col, int col_off, int n0,
                     int nb, int c, int h, int w, int c0, int cc, int p0, int prow, int q, int r,
                     int s, int sh, int sw, int ph, int pw, int dh, int dw) {
    const int j = get_global_id(0), row = get_global_id(1), b = get_global_id(2);
    const int cols = prow * q, rows = cc * r * s;
    if (j >= cols || row >= rows || b >= nb) return;
    const int ci = row / (r * s), kr = (row / s) % r, ks = row % s;
    const int pi = p0 + j / q, qi = j % q;
    const int ih = pi * sh - ph + kr * dh, iw = qi * sw - pw + ks * dw;
    float v = 0.0f;
    if (ih >= 0 && ih < h && iw >= 0 && iw < w)
        v = x[x_off + (((n0 + b) * c + c0 + ci) * h + ih) * w + iw];
    col[col_off + (b * rows + row) * cols + j] = v;
}

/* dx[n0+b, c0+ci, hi, wi] = sum over (kr, ks) with hi + ph - kr*dh = pi*sh and
 * wi + pw - ks*dw = qi*sw inside the output of col[b, (ci*r + kr)*s + ks, pi*q + qi]
 * (col holds every output row: prow = p). */
__kernel void col2im(__global const float *col, int col_off, __global float *dx, int dx_off, int n0,
                     int nb, int c, int h, int w, int c0, int cc, int p, int q, int r, int s,
                     int sh, int sw, int ph, int pw, int dh, int dw) {
    const int t = get_global_id(0), ci = get_global_id(1), b = get_global_id(2);
    if (t >= h * w || ci >= cc || b >= nb) return;
    const int hi = t / w, wi = t % w;
    const int pq = p * q;
    __global const float *cb = col + col_off + (b * cc + ci) * r * s * pq;
    float acc = 0.0f;
    for (int kr = 0; kr < r; kr++) {
        const int th = hi + ph - kr * dh;
        if (th < 0 || th % sh != 0 || th / sh >= p) continue;
        const int pi = th / sh;
        for (int ks = 0; ks < s; ks++) {
            const int tw = wi + pw - ks * dw;
            if (tw < 0 || tw % sw != 0 || tw / sw >= q) continue;
            acc += cb[(kr * s + ks) * pq + pi * q + tw / sw];
        }
    }
    dx[dx_off + (((n0 + b) * c + c0 + ci) * h + hi) * w + wi] = acc;
}
