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
 * Work-item mapping (every variant gives the same bits as the per-element kernels):
 *   pool2d_{max,avg}_fwd: one work-item per output element (flat over planes*p*q): the
 *     definition; used for rows with fewer than 2 interior windows (global pooling).
 *   pool2d_{max,avg}_fwd_rows[_s1|_s2]: one work-item per output row (flat over planes*p);
 *     interior windows 8 at a time as float8 lanes, clipped border windows one at a time.
 *     Extra arguments qa, qb: the output columns whose windows lie inside the plane.
 *   pool2d_{max,avg}_bwd: one work-item per input element (flat over planes*h*w) that
 *     gathers from the outputs whose windows cover it, in output order.
 *   pool2d_{max,avg}_bwd_plane: one work-item per plane (CPU devices, many planes) that
 *     zeroes dx and adds each output's term in output order: the same sums.
 * Deterministic, no atomics.
 *
 * Tiled variants (*_tiled) for non-overlapping windows (stride == kernel, no padding,
 * the usual 2x2/2 layer): one work-item per band of kh input rows (flat over
 * planes * ceil(h/kh)) walks the band left to right. Forward writes the band's q outputs
 * (a band past the last full window writes nothing); max backward writes every element
 * of the band exactly once (the arg-max element of each window gets its dy, the rest of
 * the window and the dropped last rows/columns get 0): no gather, no atomics. */
#include "common.h"

/* First maximum wins on ties; a NaN in the window wins over numbers (as in PyTorch) and
 * the first NaN is kept. */
/* One output of max pooling with its window clipped to the plane (every kernel's border
 * columns and the per-output kernel). */
inline void max_one(__global const float *xp, int h, int w, int op, int oq, int kh, int kw, int sh,
                    int sw, int ph, int pw, float *mo, int *bo) {
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
    *mo = m;
    *bo = best;
}

__kernel void pool2d_max_fwd(__global const float *x, int x_off, __global float *y, int y_off,
                             __global int *argmax, int a_off, int write_argmax, int planes, int h,
                             int w, int p, int q, int kh, int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    int plane = gid / (p * q);
    float m;
    int best;
    max_one(x + x_off + plane * h * w, h, w, op, oq, kh, kw, sh, sw, ph, pw, &m, &best);
    y[y_off + gid] = m;
    if (write_argmax) argmax[a_off + gid] = best;
}

/* pool2d_max_fwd with dilated windows (taps dh, dw apart), no argmax: ONNX MaxPool's
 * dilations. A window whose taps all miss the plane gives -inf. */
__kernel void pool2d_max_fwd_dilated(__global const float *x, int x_off, __global float *y,
                                     int y_off, int planes, int h, int w, int p, int q, int kh,
                                     int kw, int sh, int sw, int ph, int pw, int dh, int dw) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    __global const float *xp = x + x_off + (gid / (p * q)) * h * w;
    int h0 = op * sh - ph, w0 = oq * sw - pw;
    float m = -INFINITY;
    for (int i = 0; i < kh; i++) {
        int ih = h0 + i * dh;
        if (ih < 0 || ih >= h) continue;
        for (int j = 0; j < kw; j++) {
            int iw = w0 + j * dw;
            if (iw < 0 || iw >= w) continue;
            float v = xp[ih * w + iw];
            if (v > m || (isnan(v) && !isnan(m))) m = v;
        }
    }
    y[y_off + gid] = m;
}

/* PyTorch's divisor: with padding counted, the window clipped to the padded plane; without,
 * the window clipped to the input plane. Padding ph/pw before, ph_end/pw_end after. */
inline float avg_one_pads(__global const float *xp, int exclude_pad, int h, int w, int op, int oq,
                          int kh, int kw, int sh, int sw, int ph, int pw, int ph_end, int pw_end) {
    int h0 = op * sh - ph, w0 = oq * sw - pw;
    int h1 = min(h0 + kh, h + ph_end), w1 = min(w0 + kw, w + pw_end);
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
    return s / (float)count;
}

inline float avg_one(__global const float *xp, int exclude_pad, int h, int w, int op, int oq,
                     int kh, int kw, int sh, int sw, int ph, int pw) {
    return avg_one_pads(xp, exclude_pad, h, w, op, oq, kh, kw, sh, sw, ph, pw, ph, pw);
}

/* pool2d_avg_fwd with padding ph_end x pw_end after the plane (ONNX's asymmetric pads; p, q
 * may include ceil mode's last windows). */
__kernel void pool2d_avg_fwd_pads(__global const float *x, int x_off, __global float *y, int y_off,
                                  int exclude_pad, int planes, int h, int w, int p, int q, int kh,
                                  int kw, int sh, int sw, int ph, int pw, int ph_end, int pw_end) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    int plane = gid / (p * q);
    y[y_off + gid] = avg_one_pads(x + x_off + plane * h * w, exclude_pad, h, w, op, oq, kh, kw, sh,
                                  sw, ph, pw, ph_end, pw_end);
}

__kernel void pool2d_avg_fwd(__global const float *x, int x_off, __global float *y, int y_off,
                             int exclude_pad, int planes, int h, int w, int p, int q, int kh,
                             int kw, int sh, int sw, int ph, int pw) {
    int gid = get_global_id(0);
    if (gid >= planes * p * q) return;
    int oq = gid % q;
    int op = (gid / q) % p;
    int plane = gid / (p * q);
    y[y_off + gid] =
        avg_one(x + x_off + plane * h * w, exclude_pad, h, w, op, oq, kh, kw, sh, sw, ph, pw);
}

/* The average of whole planes (global average pooling, or one window that is the plane):
 * one work-item per plane, 16 lanes of partial sums added in a fixed order, then the tail,
 * the sum divided by h*w as avg_one does. One element at a time, a 112x112 plane was one
 * chain of 12544 dependent adds (EfficientNet-B0's squeeze-excitation pools). */
__kernel void pool2d_avg_fwd_planes(__global const float *x, int x_off, __global float *y,
                                    int y_off, int planes, int hw) {
    int pl = get_global_id(0);
    if (pl >= planes) return;
    __global const float *xp = x + x_off + pl * hw;
    float16 acc = (float16)(0.0f);
    int i = 0;
    for (; i + 16 <= hw; i += 16)
        acc += vload16(0, xp + i);
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    float s = a2.x + a2.y;
    for (; i < hw; i++)
        s += xp[i];
    y[y_off + pl] = s / (float)hw;
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

/* ---- non-overlapping windows: sh == kh, sw == kw, no padding ------------------------ */

/* Same selection rule as pool2d_max_fwd, visiting the window in the same order. */
__kernel void pool2d_max_fwd_tiled(__global const float *x, int x_off, __global float *y, int y_off,
                                   __global int *argmax, int a_off, int write_argmax, int planes,
                                   int h, int w, int p, int q, int kh, int kw) {
    int band = get_global_id(0);
    int bands = (h + kh - 1) / kh;
    if (band >= planes * bands) return;
    int plane = band / bands, op = band - plane * bands;
    if (op >= p) return;
    __global const float *xp = x + x_off + plane * h * w;
    int o = plane * p * q + op * q;
    int oq = 0;
    if (kh == 2 && kw == 2) { /* 8 windows at a time from two rows of 16 */
        __global const float *x0 = xp + 2 * op * w, *x1 = x0 + w;
        const int8 col = (int8)(0, 2, 4, 6, 8, 10, 12, 14);
        for (; oq < q; oq += 8) {
            float16 r0, r1;
            if (oq + 8 <= q) {
                r0 = vload16(0, x0 + 2 * oq);
                r1 = vload16(0, x1 + 2 * oq);
            } else { /* the last windows of the row; missing lanes are never stored */
                float a[16], b[16];
                for (int i = 0; i < 16; i++) {
                    int in = 2 * oq + i < 2 * q;
                    a[i] = in ? x0[2 * oq + i] : 0.0f;
                    b[i] = in ? x1[2 * oq + i] : 0.0f;
                }
                r0 = vload16(0, a);
                r1 = vload16(0, b);
            }
            float8 m = r0.even;
            int8 best = col + 2 * op * w + 2 * oq;
            float8 v = r0.odd;
            int8 take = isgreater(v, m) | (isnan(v) & ~isnan(m));
            m = select(m, v, take);
            best = select(best, best + 1, take);
            int8 b1 = col + (2 * op + 1) * w + 2 * oq;
            v = r1.even;
            take = isgreater(v, m) | (isnan(v) & ~isnan(m));
            m = select(m, v, take);
            best = select(best, b1, take);
            v = r1.odd;
            take = isgreater(v, m) | (isnan(v) & ~isnan(m));
            m = select(m, v, take);
            best = select(best, b1 + 1, take);
            if (oq + 8 <= q) {
                vstore8(m, 0, y + y_off + o + oq);
                if (write_argmax) vstore8(best, 0, argmax + a_off + o + oq);
            } else {
                float ms[8];
                int bs[8];
                vstore8(m, 0, ms);
                vstore8(best, 0, bs);
                for (int i = 0; oq + i < q; i++) {
                    y[y_off + o + oq + i] = ms[i];
                    if (write_argmax) argmax[a_off + o + oq + i] = bs[i];
                }
            }
        }
    }
    for (; oq < q; oq++) {
        int best = op * kh * w + oq * kw;
        float m = xp[best];
        for (int i = 0; i < kh; i++) {
            int row = (op * kh + i) * w + oq * kw;
            for (int j = 0; j < kw; j++) {
                float v = xp[row + j];
                int take = v > m || (isnan(v) && !isnan(m));
                m = take ? v : m;
                best = take ? row + j : best;
            }
        }
        y[y_off + o + oq] = m;
        if (write_argmax) argmax[a_off + o + oq] = best;
    }
}

__kernel void pool2d_max_bwd_tiled(__global const float *dy, int dy_off, __global const int *argmax,
                                   int a_off, __global float *dx, int dx_off, int planes, int h,
                                   int w, int p, int q, int kh, int kw) {
    int band = get_global_id(0);
    int bands = (h + kh - 1) / kh;
    if (band >= planes * bands) return;
    int plane = band / bands, op = band - plane * bands;
    __global float *dxp = dx + dx_off + plane * h * w;
    int r0 = op * kh, r1 = min(r0 + kh, h);
    if (op >= p) { /* rows below the last window: no output reaches them */
        for (int i = r0 * w; i < r1 * w; i++)
            dxp[i] = 0.0f;
        return;
    }
    int o = plane * p * q + op * q;
    int oq = 0;
    if (kh == 2 && kw == 2) { /* 8 windows at a time: two rows of 16 (op < p: both exist) */
        __global float *d0 = dxp + r0 * w, *d1 = d0 + w;
        const int8 col = (int8)(0, 2, 4, 6, 8, 10, 12, 14);
        const uint16 zip = (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
        for (; oq < q; oq += 8) {
            int8 a;
            float8 g;
            if (oq + 8 <= q) {
                a = vload8(0, argmax + a_off + o + oq);
                g = vload8(0, dy + dy_off + o + oq);
            } else {
                int as[8];
                float gs[8];
                for (int i = 0; i < 8; i++) {
                    as[i] = oq + i < q ? argmax[a_off + o + oq + i] : -1;
                    gs[i] = oq + i < q ? dy[dy_off + o + oq + i] : 0.0f;
                }
                a = vload8(0, as);
                g = vload8(0, gs);
            }
            int8 i00 = col + r0 * w + 2 * oq, i10 = i00 + w;
            const float8 z = (float8)(0.0f);
            float16 v0 = shuffle2(select(z, g, a == i00), select(z, g, a == i00 + 1), zip);
            float16 v1 = shuffle2(select(z, g, a == i10), select(z, g, a == i10 + 1), zip);
            if (oq + 8 <= q) {
                vstore16(v0, 0, d0 + 2 * oq);
                vstore16(v1, 0, d1 + 2 * oq);
            } else {
                float s0[16], s1[16];
                vstore16(v0, 0, s0);
                vstore16(v1, 0, s1);
                for (int i = 0; 2 * oq + i < 2 * q; i++) {
                    d0[2 * oq + i] = s0[i];
                    d1[2 * oq + i] = s1[i];
                }
            }
        }
    }
    for (; oq < q; oq++) {
        int a = argmax[a_off + o + oq];
        float g = dy[dy_off + o + oq];
        for (int i = r0; i < r1; i++)
            for (int j = oq * kw; j < oq * kw + kw; j++)
                dxp[i * w + j] = i * w + j == a ? g : 0.0f;
    }
    for (int i = r0; i < r1; i++) /* columns right of the last window */
        for (int j = q * kw; j < w; j++)
            dxp[i * w + j] = 0.0f;
}

/* ---- general windows, one work-item per output row ---------------------------------- */

/* Output columns [qa, qb) have their whole window inside the plane's columns (the host
 * computes them); those go 8 at a time as float8 lanes (lane l is output oq + l), visiting
 * each window in the per-output order (rows, then columns) with the same selection rule,
 * so results are bit-identical to pool2d_max_fwd. Columns outside [qa, qb) are the clipped
 * border windows: one at a time through max_one / avg_one. SW is the stride when it is 1
 * or 2 (contiguous or even-lane loads) and 0 for any other stride (lane gathers). */
inline float8 pool_lanes(__global const float *r, int col, int sw, int w, int full, const int SW) {
    if (SW == 1 && full) return vload8(0, r + col);
    if (SW == 2 && full && col + 16 <= w) return vload16(0, r + col).even;
    if (SW == 2 && full && col >= 1) return vload16(0, r + col - 1).odd; /* at the row's end */
    float a[8];
    for (int l = 0; l < 8; l++)
        a[l] = r[min(col + l * sw, w - 1)]; /* lanes past qb are never stored */
    return vload8(0, a);
}

inline void max_rows(__global const float *x, int x_off, __global float *y, int y_off,
                     __global int *argmax, int a_off, int write_argmax, int planes, int h, int w,
                     int p, int q, int kh, int kw, int sh, int sw, int ph, int pw, int qa, int qb,
                     const int SW) {
    int row = get_global_id(0);
    if (row >= planes * p) return;
    int plane = row / p, op = row - plane * p;
    __global const float *xp = x + x_off + plane * h * w;
    int yo = y_off + row * q, ao = a_off + row * q;
    for (int oq = 0; oq < q; oq++) {
        if (oq == qa) oq = qb;
        if (oq >= q) break;
        float m;
        int best;
        max_one(xp, h, w, op, oq, kh, kw, sh, sw, ph, pw, &m, &best);
        y[yo + oq] = m;
        if (write_argmax) argmax[ao + oq] = best;
    }
    int h0 = max(op * sh - ph, 0), h1 = min(op * sh - ph + kh, h);
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    for (int o8 = qa; o8 < qb; o8 += 8) {
        /* a short last group moves left to end at qb when the row has 8 interior windows:
         * the windows it recomputes get the same values again */
        int oq = o8 + 8 > qb && qb - qa >= 8 ? qb - 8 : o8;
        int full = oq + 8 <= qb, c0 = oq * sw - pw;
        float8 m = (float8)(-INFINITY);
        int8 best = h0 * w + c0 + lane * sw;
        for (int ih = h0; ih < h1; ih++) {
            __global const float *r = xp + ih * w;
            for (int j = 0; j < kw; j++) {
                float8 v = pool_lanes(r, c0 + j, sw, w, full, SW);
                int8 take = isgreater(v, m) | (isnan(v) & ~isnan(m));
                m = select(m, v, take);
                best = select(best, ih * w + c0 + j + lane * sw, take);
            }
        }
        if (full) {
            vstore8(m, 0, y + yo + oq);
            if (write_argmax) vstore8(best, 0, argmax + ao + oq);
        } else {
            float ms[8];
            int bs[8];
            vstore8(m, 0, ms);
            vstore8(best, 0, bs);
            for (int l = 0; oq + l < qb; l++) {
                y[yo + oq + l] = ms[l];
                if (write_argmax) argmax[ao + oq + l] = bs[l];
            }
        }
    }
}

#define POOL_MAX_ROWS(name, SW)                                                                    \
    __kernel void name(__global const float *x, int x_off, __global float *y, int y_off,           \
                       __global int *argmax, int a_off, int write_argmax, int planes, int h,       \
                       int w, int p, int q, int kh, int kw, int sh, int sw, int ph, int pw,        \
                       int qa, int qb) {                                                           \
        max_rows(x, x_off, y, y_off, argmax, a_off, write_argmax, planes, h, w, p, q, kh, kw, sh,  \
                 sw, ph, pw, qa, qb, SW);                                                          \
    }
POOL_MAX_ROWS(pool2d_max_fwd_rows_s1, 1)
POOL_MAX_ROWS(pool2d_max_fwd_rows_s2, 2)
POOL_MAX_ROWS(pool2d_max_fwd_rows, 0)

/* Same sums in the same order as avg_one; an interior window spans kw columns in both
 * divisor rules, so only its row count depends on exclude_pad. */
inline void avg_rows(__global const float *x, int x_off, __global float *y, int y_off,
                     int exclude_pad, int planes, int h, int w, int p, int q, int kh, int kw,
                     int sh, int sw, int ph, int pw, int qa, int qb, const int SW) {
    int row = get_global_id(0);
    if (row >= planes * p) return;
    int plane = row / p, op = row - plane * p;
    __global const float *xp = x + x_off + plane * h * w;
    int yo = y_off + row * q;
    for (int oq = 0; oq < q; oq++) {
        if (oq == qa) oq = qb;
        if (oq >= q) break;
        y[yo + oq] = avg_one(xp, exclude_pad, h, w, op, oq, kh, kw, sh, sw, ph, pw);
    }
    int hs = op * sh - ph;
    int h0 = max(hs, 0), h1 = min(hs + kh, h);
    int rows = exclude_pad ? h1 - h0 : min(hs + kh, h + ph) - hs;
    float count = (float)(rows * kw);
    for (int o8 = qa; o8 < qb; o8 += 8) {
        /* a short last group moves left to end at qb when the row has 8 interior windows:
         * the windows it recomputes get the same values again */
        int oq = o8 + 8 > qb && qb - qa >= 8 ? qb - 8 : o8;
        int full = oq + 8 <= qb, c0 = oq * sw - pw;
        float8 s = (float8)(0.0f);
        for (int ih = h0; ih < h1; ih++) {
            __global const float *r = xp + ih * w;
            for (int j = 0; j < kw; j++)
                s += pool_lanes(r, c0 + j, sw, w, full, SW);
        }
        s = s / count;
        if (full) {
            vstore8(s, 0, y + yo + oq);
        } else {
            float ss[8];
            vstore8(s, 0, ss);
            for (int l = 0; oq + l < qb; l++)
                y[yo + oq + l] = ss[l];
        }
    }
}

#define POOL_AVG_ROWS(name, SW)                                                                    \
    __kernel void name(__global const float *x, int x_off, __global float *y, int y_off,           \
                       int exclude_pad, int planes, int h, int w, int p, int q, int kh, int kw,    \
                       int sh, int sw, int ph, int pw, int qa, int qb) {                           \
        avg_rows(x, x_off, y, y_off, exclude_pad, planes, h, w, p, q, kh, kw, sh, sw, ph, pw, qa,  \
                 qb, SW);                                                                          \
    }
POOL_AVG_ROWS(pool2d_avg_fwd_rows_s1, 1)
POOL_AVG_ROWS(pool2d_avg_fwd_rows_s2, 2)
POOL_AVG_ROWS(pool2d_avg_fwd_rows, 0)

/* ---- backward by plane: one work-item per (n, c) plane ------------------------------- */

/* Zeroes its dx plane, then adds each output's gradient to the element(s) of its window
 * in output order (op, then oq): every dx element receives the same terms in the same
 * order, from the same +0.0f start, as the gather kernels, so the sums are bit-identical;
 * no other work-item touches the plane, so no atomics. An arg-max outside the plane (never
 * written by the forward pass) is skipped. */
__kernel void pool2d_max_bwd_plane(__global const float *dy, int dy_off, __global const int *argmax,
                                   int a_off, __global float *dx, int dx_off, int planes, int hw,
                                   int pq) {
    int plane = get_global_id(0);
    if (plane >= planes) return;
    __global float *dxp = dx + dx_off + plane * hw;
    for (int i = 0; i < hw; i++)
        dxp[i] = 0.0f;
    __global const float *g = dy + dy_off + plane * pq;
    __global const int *a = argmax + a_off + plane * pq;
    for (int o = 0; o < pq; o++) {
        int i = a[o];
        if ((uint)i < (uint)hw) dxp[i] += g[o];
    }
}

__kernel void pool2d_avg_bwd_plane(__global const float *dy, int dy_off, __global float *dx,
                                   int dx_off, int exclude_pad, int planes, int h, int w, int p,
                                   int q, int kh, int kw, int sh, int sw, int ph, int pw) {
    int plane = get_global_id(0);
    if (plane >= planes) return;
    __global float *dxp = dx + dx_off + plane * h * w;
    for (int i = 0; i < h * w; i++)
        dxp[i] = 0.0f;
    __global const float *g = dy + dy_off + plane * p * q;
    for (int op = 0; op < p; op++) {
        int hs = op * sh - ph;
        int he = min(hs + kh, h + ph);
        int h0 = max(hs, 0), h1 = min(he, h);
        int rows = exclude_pad ? h1 - h0 : he - hs;
        for (int oq = 0; oq < q; oq++) {
            int ws = oq * sw - pw;
            int we = min(ws + kw, w + pw);
            int w0 = max(ws, 0), w1 = min(we, w);
            int cols = exclude_pad ? w1 - w0 : we - ws;
            float v = g[op * q + oq] / (float)(rows * cols);
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    dxp[ih * w + iw] += v;
        }
    }
}
