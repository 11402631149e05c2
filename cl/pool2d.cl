/* 2-D max and average pooling, forward and backward (host side: lib/ops/pool2d.c).
 *
 * Defines: none. Every shape and window parameter is a kernel argument, so one program
 * serves every pooling layer.
 *
 * Buffers (all contiguous NCHW, each with an element offset *_off):
 *   x      (n, c, h, w)  float   forward input
 *   y      (n, c, p, q)  float   forward output
 *   argmax (n, c, p, q)  int32   flat index ih*w + iw of the maximum inside its input plane
 *   dy     (n, c, p, q)  float   gradient of the output
 *   dx     (n, c, h, w)  float   gradient of the input (overwritten)
 * planes = n*c. Window of output (op, oq): rows op*sh - ph .. op*sh - ph + kh - 1, cols
 * likewise; padding never reaches the maximum (it acts as -inf) and, for the average,
 * counts in the divisor only when exclude_pad == 0.
 *
 * Work-item mapping: forward, one work-item per output element (flat over planes*p*q);
 * backward, one work-item per input element (flat over planes*h*w) that gathers from the
 * outputs whose windows cover it, in a fixed order: deterministic, no atomics. */
#include "common.h"

/* First maximum wins on ties; a NaN in the window wins over numbers (as in PyTorch) and
 * the first NaN is kept. */
__kernel void pool2d_max_fwd(__global const float *x, int x_off, __global float *y, int y_off,
                             __global int *argmax, int a_off, int write_argmax, int planes, int h,
                             int w, int p, int q, int kh, int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    int plane = gid / (p * q);
    __global const float *xp = x + x_off + plane * h * w;
    int h0 = op * sh - ph, w0 = oq * sw - pw;
    int h1 = min(h0 + kh, h), w1 = min(w0 + kw, w);
    h0 = max(h0, 0);
    w0 = max(w0, 0);
    float m = -INFINITY;
    int best = h0 * w + w0;
    for (int ih = h0; ih < h1; ih++) {
        for (int iw = w0; iw < w1; iw++) {
            float v = xp[ih * w + iw];
            if (v > m || (isnan(v) && !isnan(m))) {
                m = v;
                best = ih * w + iw;
            }
        }
    }
    y[y_off + gid] = m;
    if (write_argmax) argmax[a_off + gid] = best;
}

/* PyTorch's divisor: with padding counted, the window clipped to the padded plane; without,
 * the window clipped to the input plane. */
__kernel void pool2d_avg_fwd(__global const float *x, int x_off, __global float *y, int y_off,
                             int exclude_pad, int planes, int h, int w, int p, int q, int kh,
                             int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    int plane = gid / (p * q);
    __global const float *xp = x + x_off + plane * h * w;
    int h0 = op * sh - ph, w0 = oq * sw - pw;
    int h1 = min(h0 + kh, h + ph), w1 = min(w0 + kw, w + pw);
    int pad_count = (h1 - h0) * (w1 - w0);
    h0 = max(h0, 0);
    w0 = max(w0, 0);
    h1 = min(h1, h);
    w1 = min(w1, w);
    float s = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
            s += xp[ih * w + iw];
    int count = exclude_pad ? (h1 - h0) * (w1 - w0) : pad_count;
    y[y_off + gid] = s / (float)count;
}

/* Range of outputs [lo, hi] along one axis whose windows cover input index i. */
inline int pool_first_out(int i, int k, int s, int pad) {
    int t = i + pad - k + 1; /* smallest window start that still reaches i */
    return t <= 0 ? 0 : (t + s - 1) / s;
}
inline int pool_last_out(int i, int s, int pad, int outs) {
    return min((i + pad) / s, outs - 1);
}

__kernel void pool2d_max_bwd(__global const float *dy, int dy_off, __global const int *argmax,
                             int a_off, __global float *dx, int dx_off, int planes, int h, int w,
                             int p, int q, int kh, int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * h * w) return;
    int idx = gid % (h * w); /* flat index inside the plane, as argmax stores it */
    int iw = idx % w, ih = idx / w;
    int plane = gid / (h * w);
    int p0 = pool_first_out(ih, kh, sh, ph), p1 = pool_last_out(ih, sh, ph, p);
    int q0 = pool_first_out(iw, kw, sw, pw), q1 = pool_last_out(iw, sw, pw, q);
    int base = plane * p * q;
    float g = 0.0f;
    for (int op = p0; op <= p1; op++)
        for (int oq = q0; oq <= q1; oq++) {
            int o = base + op * q + oq;
            if (argmax[a_off + o] == idx) g += dy[dy_off + o];
        }
    dx[dx_off + gid] = g;
}

__kernel void pool2d_avg_bwd(__global const float *dy, int dy_off, __global float *dx, int dx_off,
                             int exclude_pad, int planes, int h, int w, int p, int q, int kh,
                             int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * h * w) return;
    int iw = gid % w;
    int ih = (gid / w) % h;
    int plane = gid / (h * w);
    int p0 = pool_first_out(ih, kh, sh, ph), p1 = pool_last_out(ih, sh, ph, p);
    int q0 = pool_first_out(iw, kw, sw, pw), q1 = pool_last_out(iw, sw, pw, q);
    int base = plane * p * q;
    float g = 0.0f;
    for (int op = p0; op <= p1; op++) {
        int h0 = op * sh - ph;
        int h1 = min(h0 + kh, h + ph);
        int rows = exclude_pad ? min(h1, h) - max(h0, 0) : h1 - h0;
        for (int oq = q0; oq <= q1; oq++) {
            int w0 = oq * sw - pw;
            int w1 = min(w0 + kw, w + pw);
            int cols = exclude_pad ? min(w1, w) - max(w0, 0) : w1 - w0;
            g += dy[dy_off + base + op * q + oq] / (float)(rows * cols);
        }
    }
    dx[dx_off + gid] = g;
}
