/* Depthwise 2-D convolution, forward (conv2d_depthwise_fwd), data gradient
 * (conv2d_depthwise_bwd_data) and filter gradient (conv2d_depthwise_bwd_filter): groups
 * == c == k, one filter per channel (channel multiplier 1). Any kernel size, stride, zero
 * padding and dilation (kernel arguments). Host side: lib/ops/conv2d_depthwise.c. The
 * gradients are described above their kernels below.
 *
 *   y[ni,ch,pi,qi] = b[ch] + sum_{kr,ks} x[ni, ch, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]
 *                                        * wt[ch, 0, kr, ks]        (outside the input: 0)
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   VEC  output columns per work-item, the width of the float vectors: 16, 8 or 4
 *                                                                             default 16
 *   TP   output rows per work-item (1..8)                                     default 4
 *   QLOOP  forward: 1 = a work-item walks its rows' whole width, VEC columns at a time
 *        (fewer, longer work-items: CPUs); 0 = one VEC-column tile per work-item   default 0
 *   UNALIGNED_LOADS  1 = global vector loads through 4-byte-aligned vector types (one
 *        unaligned load on CPUs); 0 = vloadN                                   default 0
 *   KF   forward: 3 or 5 = the kernel is KF x KF with dilation 1 and STRIDE (1 or 2)
 *        its stride in both directions (the host sets it only then; the arguments are
 *        ignored), so the tap loops unroll and the stride branches fold (MobileNet's
 *        and EfficientNet's layers); 0 = any geometry from the arguments        default 0
 *   K3   the gradients: 1 = the kernel is 3x3 with dilation 1 and STRIDE (1 or 2) its
 *        stride, compiled in likewise (named accumulators in the filter gradient); 0 =
 *        any geometry from the arguments                                         default 0
 *   ACT_SILU  1: the forward's activation is x Sigmoid(x) whatever act says (plans'
 *        SiLU, compiled in so that no other layer pays for the exp)           default 0
 *   PASS the kernels the program holds: 1 = the forward kernel, 2 = the two gradient
 *        kernels, 0 = all three. The host builds forward and gradient programs apart (their
 *        defines differ anyway), so each compiles only the kernels it launches: on POCL
 *        most of a cold build is generating every kernel's code             default 0
 *
 * The forward kernel with flip = 1 reads each filter rotated by 180 degrees: that is the
 * data gradient of a stride-1 layer (dx = conv(dy, rotated wt), padding d*(r-1) - pad;
 * lib/ops/conv2d_depthwise.c), computed like a forward pass. The data-gradient kernel
 * below serves the other strides.
 *
 * Buffers (dense NCHW, each with an element offset *_off):
 *   x (n, c, h, w)   wt (c, 1, r, s)   b (c)   y (n, c, p, q)
 *   z (n, c, p, q)   forward residual (has_res): y = act(conv + b + z); may be y itself
 *                    (each element is read by the work-item that writes it)
 *
 * Forward work-item -> output mapping: dim0 = (channel, row tile, column tile) flattened
 * (QLOOP: no column tile), so a work-group spans channels when a plane has fewer tiles
 * than its size (7x7 and 14x14 planes), dim1 = image; TP rows x VEC columns of one output plane
 * (QLOOP: TP rows x every column, VEC at a time). Input vectors of
 * stride-1 and stride-2 layers are vector loads (columns outside the row zeroed by a lane
 * mask); other strides and the two ends of the tensor gather element by element.
 * Fixed summation order (kr, then ks): deterministic. */
#include "common.h"

#ifndef VEC
#define VEC 16
#endif
#ifndef TP
#define TP 4
#endif
#ifndef QLOOP
#define QLOOP 0
#endif
#ifndef UNALIGNED_LOADS
#define UNALIGNED_LOADS 0
#endif
#ifndef K3
#define K3 0
#endif
#if K3 && (!defined(STRIDE) || (STRIDE != 1 && STRIDE != 2))
#error "K3 needs STRIDE 1 or 2"
#endif
#ifndef KF
#define KF 0
#endif
#if KF && ((KF != 3 && KF != 5) || !defined(STRIDE) || (STRIDE != 1 && STRIDE != 2))
#error "KF must be 3 or 5, with STRIDE 1 or 2"
#endif
/* Each kernel's first statement: with K3, its geometry arguments become the compile-time
 * 3x3 geometry (the taps unroll, the stride branches fold). */
#if K3
#define K3_GEOMETRY()                                                                              \
    r = s = 3;                                                                                     \
    dh = dw = 1;                                                                                   \
    sh = sw = STRIDE
#else
#define K3_GEOMETRY() (void)0
#endif

#if VEC != 16 && VEC != 8 && VEC != 4
#error "VEC must be 16, 8 or 4"
#endif
#if TP < 1 || TP > 8
#error "TP must be in 1..8"
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatV CC_CAT(float, VEC)
#define intV CC_CAT(int, VEC)
#define vloadV CC_CAT(vload, VEC)
#define vstoreV CC_CAT(vstore, VEC)
/* Vector loads from any float address: vloadN, or with UNALIGNED_LOADS a dereference of
 * a 4-byte-aligned vector type, one unaligned load instruction on CPUs (POCL builds
 * vload8 from pieces). */
#if UNALIGNED_LOADS
typedef float4 __attribute__((aligned(4))) float4_u;
typedef float8 __attribute__((aligned(4))) float8_u;
typedef float16 __attribute__((aligned(4))) float16_u;
#define LD4(p) (*(__global const float4_u *)(p))
#define LD8(p) (*(__global const float8_u *)(p))
#define LD16(p) (*(__global const float16_u *)(p))
#else
#define LD4(p) vload4(0, (p))
#define LD8(p) vload8(0, (p))
#define LD16(p) vload16(0, (p))
#endif
#if VEC == 16
#define LANES (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define LOAD_EVEN(p) (float16)(LD16(p).even, LD16((p) + 16).even)
#define LOADV(p) LD16(p)
#elif VEC == 8
#define LANES (int8)(0, 1, 2, 3, 4, 5, 6, 7)
#define LOAD_EVEN(p) LD16(p).even
#define LOADV(p) LD8(p)
#else
#define LANES (int4)(0, 1, 2, 3)
#define LOAD_EVEN(p) LD8(p).even
#define LOADV(p) LD4(p)
#endif

#ifndef ACT_SILU
#define ACT_SILU 0
#endif
#if ACT_SILU /* the forward's activation is x Sigmoid(x), compiled in (plans' SiLU) */
#define ACT_VEC(T, v, act, alpha) CC_SILU(v)
#else
#define ACT_VEC(T, v, act, alpha) CC_ACT_VEC(T, v, act, alpha)
#endif

/* VEC input elements row[c0 + l*sw], l < VEC, zero outside [0, w). base: the element
 * index of the row's first column in x; lo..hi: the elements that may be read. */
inline floatV load_cols(__global const float *x, int base, int c0, int w, int sw, int lo, int hi) {
    const int inside = c0 >= 0 && c0 + (VEC - 1) * sw < w;
    const int start = base + c0;
    if (sw <= 2 && start >= lo && start + VEC * sw <= hi) {
        floatV v;
        v = sw == 1 ? LOADV(x + start) : LOAD_EVEN(x + start);
        if (!inside) {
            const intV col = (intV)(c0) + LANES * sw;
            v = select((floatV)(0.0f), v, (col >= (intV)(0)) & (col < (intV)(w)));
        }
        return v;
    }
    float t[VEC];
    if (inside) {
        for (int l = 0; l < VEC; l++)
            t[l] = x[start + l * sw];
    } else {
        for (int l = 0; l < VEC; l++) {
            const int col = c0 + l * sw;
            t[l] = col >= 0 && col < w ? x[base + col] : 0.0f;
        }
    }
    return vloadV(0, t);
}

/* One tile: TP rows from p0 x VEC columns from q0 of the output plane (ni, ch). */
inline __attribute__((always_inline)) void
fwd_tile(__global const float *x, __global const float *wc, int wstep, float bv,
         __global const float *z, int z_off, int has_res, __global float *y, int y_off, int ni,
         int ch, int p0, int q0, int c, int h, int w, int p, int q, int r, int s, int sh, int sw,
         int ph, int pw, int dh, int dw, int act, float alpha, int plane, int lo, int hi) {
    floatV acc[TP];
    for (int tp = 0; tp < TP; tp++)
        acc[tp] = (floatV)(0.0f);
    /* Interior tiles (every row and column of every tap inside the input, the common
     * case) skip all checks: stride 1 and 2 by plain vector loads. */
    const int ih0 = p0 * sh - ph, iw0 = q0 * sw - pw;
    const int ih_last = ih0 + (TP - 1) * sh + (r - 1) * dh;
    const int interior = (sw == 1 || sw == 2) && ih0 >= 0 && ih_last < h && iw0 >= 0 &&
                         iw0 + (VEC - 1) * sw + (s - 1) * dw < w &&
                         plane + ih_last * w + iw0 + (s - 1) * dw + VEC * sw <= hi;
    if (interior) {
        __global const float *xp = x + plane + ih0 * w + iw0;
#pragma unroll
        for (int kr = 0; kr < r; kr++) {
#pragma unroll
            for (int ks = 0; ks < s; ks++) {
                const float wv = wc[wstep * (kr * s + ks)];
                __global const float *xk = xp + kr * dh * w + ks * dw;
                if (sw == 1) {
#pragma unroll
                    for (int tp = 0; tp < TP; tp++)
                        acc[tp] = fma((floatV)(wv), LOADV(xk + tp * sh * w), acc[tp]);
                } else {
#pragma unroll
                    for (int tp = 0; tp < TP; tp++)
                        acc[tp] = fma((floatV)(wv), LOAD_EVEN(xk + tp * sh * w), acc[tp]);
                }
            }
        }
    } else if ((sw == 1 || sw == 2) && plane + ih0 * w + iw0 >= lo &&
               plane + ih_last * w + iw0 + (s - 1) * dw + VEC * sw <= hi) {
        /* Border tile whose vector loads all stay inside the buffer (every tile but the
         * tensor's first and last): the rows outside the input are skipped, the columns
         * outside it zeroed by a lane mask per column tap, shared by all rows. The
         * clamped rows keep the loads inside the buffer. Taps in (kr, ks) order, as on
         * the other paths (the fused depthwise + 1x1 kernel of conv2d_implicit.cl sums in
         * that order too). */
#if KF /* the column masks once, before the taps */
        intV mk[KF];
#pragma unroll
        for (int ks = 0; ks < KF; ks++) {
            const intV col = (intV)(iw0 + ks * dw) + LANES * sw;
            mk[ks] = (col >= (intV)(0)) & (col < (intV)(w));
        }
#endif
#pragma unroll
        for (int kr = 0; kr < r; kr++) {
#pragma unroll
            for (int ks = 0; ks < s; ks++) {
                const int c0 = iw0 + ks * dw;
#if KF
                const intV m = mk[ks];
#else
                const intV col = (intV)(c0) + LANES * sw;
                const intV m = (col >= (intV)(0)) & (col < (intV)(w));
#endif
                const float wv = wc[wstep * (kr * s + ks)];
#pragma unroll
                for (int tp = 0; tp < TP; tp++) {
                    const int ih = ih0 + tp * sh + kr * dh;
                    if (ih >= 0 && ih < h) {
                        __global const float *xr = x + plane + ih * w + c0;
                        const floatV v = sw == 1 ? LOADV(xr) : LOAD_EVEN(xr);
                        acc[tp] = fma((floatV)(wv), select((floatV)(0.0f), v, m), acc[tp]);
                    }
                }
            }
        }
    } else {
        /* tp unrolled: the accumulators stay in registers; the taps are a loop (only the
         * tensor's first and last tiles and strides above 2 come here) */
#pragma unroll 1
        for (int kr = 0; kr < r; kr++) {
#pragma unroll 1
            for (int ks = 0; ks < s; ks++) {
                const float wv = wc[wstep * (kr * s + ks)];
                const int c0 = q0 * sw - pw + ks * dw;
#pragma unroll
                for (int tp = 0; tp < TP; tp++) {
                    const int ih = (p0 + tp) * sh - ph + kr * dh;
                    if (ih >= 0 && ih < h)
                        acc[tp] = fma((floatV)(wv), load_cols(x, plane + ih * w, c0, w, sw, lo, hi),
                                      acc[tp]);
                }
            }
        }
    }

    __global float *yc = y + y_off + (ni * c + ch) * p * q;
#pragma unroll
    for (int tp = 0; tp < TP; tp++) {
        const int pi = p0 + tp;
        if (pi >= p) break;
        floatV v = acc[tp] + bv;
        if (has_res) {
            __global const float *zr = z + z_off + ((ni * c + ch) * p + pi) * q + q0;
            if (q0 + VEC <= q) {
                v += LOADV(zr);
            } else {
                float t[VEC];
                for (int l = 0; l < VEC; l++)
                    t[l] = q0 + l < q ? zr[l] : 0.0f;
                v += vloadV(0, t);
            }
        }
        v = ACT_VEC(floatV, v, act, alpha);
        __global float *yr = yc + pi * q + q0;
        if (q0 + VEC <= q) {
            vstoreV(v, 0, yr);
        } else { /* the row's last q - q0 < VEC columns, in pieces of 8, 4, 2, 1 */
            float o[VEC];
            vstoreV(v, 0, o);
            const int rem = q - q0;
            int l = 0;
#if VEC == 16
            if (rem - l >= 8) {
                vstore8(vload8(0, o + l), 0, yr + l);
                l += 8;
            }
#endif
#if VEC >= 8
            if (rem - l >= 4) {
                vstore4(vload4(0, o + l), 0, yr + l);
                l += 4;
            }
#endif
            if (rem - l >= 2) {
                vstore2(vload2(0, o + l), 0, yr + l);
                l += 2;
            }
            if (rem - l >= 1) yr[l] = o[l];
        }
    }
}

#if PASS != 2
__kernel void conv2d_depthwise_fwd(__global const float *x, int x_off, __global const float *wt,
                                   int w_off, __global const float *bias, int b_off, int has_bias,
                                   __global const float *z, int z_off, int has_res,
                                   __global float *y, int y_off, int n, int c, int h, int w, int p,
                                   int q, int r, int s, int sh, int sw, int ph, int pw, int dh,
                                   int dw, int act, float alpha, int flip) {
    const int qt = QLOOP ? 1 : (q + VEC - 1) / VEC, pt = (p + TP - 1) / TP;
    const int ct = get_global_id(0), ni = get_global_id(1);
    if (ct >= c * pt * qt || ni >= n) return;
    const int ch = ct / (pt * qt), t = ct % (pt * qt);
    const int p0 = (t / qt) * TP;
    const int plane = x_off + (ni * c + ch) * h * w;
    const int lo = x_off, hi = x_off + n * c * h * w;
    /* flip: tap (kr, ks) takes the weight of (r-1-kr, s-1-ks), read backwards from the
     * filter's last one */
    __global const float *wc = wt + w_off + ch * r * s + (flip ? r * s - 1 : 0);
    const int wstep = flip ? -1 : 1;
    const float bv = has_bias ? bias[b_off + ch] : 0.0f;
#if KF /* the inlined tile unrolls its taps */
    r = s = KF;
    dh = dw = 1;
    sh = sw = STRIDE;
#endif
#if QLOOP
    for (int q0 = 0; q0 < q; q0 += VEC)
#else
    const int q0 = (t % qt) * VEC;
#endif
        fwd_tile(x, wc, wstep, bv, z, z_off, has_res, y, y_off, ni, ch, p0, q0, c, h, w, p, q, r, s,
                 sh, sw, ph, pw, dh, dw, act, alpha, plane, lo, hi);
}
#endif

#if PASS != 1
/* VEC values of the dy row at dyr from column q0 (zero past the row's end, q; dhi: the end
 * of the buffer's readable part). keep: the lanes inside the row. */
inline floatV load_dy(__global const float *dy, int dyr, int q0, int q, int dhi, intV keep) {
    if (q0 + VEC <= q) return vloadV(0, dy + dyr + q0);
    if (dyr + q0 + VEC <= dhi) return select((floatV)(0.0f), vloadV(0, dy + dyr + q0), keep);
    float tq[VEC];
    for (int l = 0; l < VEC; l++)
        tq[l] = q0 + l < q ? dy[dyr + q0 + l] : 0.0f;
    return vloadV(0, tq);
}

/* ---- backward data ------------------------------------------------------------------
 *
 *   dx[ni,ch,ih,iw] = sum_{kr,ks} wt[ch,0,kr,ks] * dy[ni, ch, (ih+ph-kr*dh)/sh, (iw+pw-ks*dw)/sw]
 *   over the taps whose numerators are non-negative multiples of the strides and whose
 *   quotients are inside dy: a gather per dx element, no atomics.
 *
 * Work-item -> dx mapping: dim0 = (row tile, column tile, column phase), dim1 = channel,
 * dim2 = image; TP consecutive rows x VEC columns iw = phase + sw*(j0 + l), l < VEC, of
 * one phase (iw mod sw); for stride 2 one work-item computes both phases (dim0 has no
 * phase then) and stores them interleaved, 2*VEC consecutive columns. Every column of a
 * phase uses the same column taps, and their dy columns are consecutive: one vector load
 * per (row, tap). Strides 1 and 2 store vectors, others element by element. Fixed order (ks, then
 * kr): deterministic. */
__kernel void conv2d_depthwise_bwd_data(__global const float *dy, int dy_off,
                                        __global const float *wt, int w_off, __global float *dx,
                                        int dx_off, int n, int c, int h, int w, int p, int q, int r,
                                        int s, int sh, int sw, int ph, int pw, int dh, int dw) {
    K3_GEOMETRY();
    const int wq = (w + sw - 1) / sw; /* columns of phase 0, the longest phase */
    const int qt = (wq + VEC - 1) / VEC, ht = (h + TP - 1) / TP;
    const int nph = sw == 2 ? 2 : 1; /* phases per work-item */
    const int t = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (t >= ht * qt * (sw / nph) || ch >= c || ni >= n) return;
    const int ph0 = nph == 2 ? 0 : t % sw, t2 = nph == 2 ? t : t / sw;
    const int h0 = (t2 / qt) * TP, j0 = (t2 % qt) * VEC;
    const int plane = dy_off + (ni * c + ch) * p * q;
    const int lo = dy_off, hi = dy_off + n * c * p * q;
    __global const float *wc = wt + w_off + ch * r * s;

    /* f and tp unrolled: the accumulators stay in registers (indexed at run time, they
     * were kept in memory, a load and a store around every FMA) */
    floatV acc[2][TP];
#pragma unroll
    for (int f = 0; f < 2; f++)
#pragma unroll
        for (int tp = 0; tp < TP; tp++)
            acc[f][tp] = (floatV)(0.0f);
#pragma unroll
    for (int f = 0; f < 2; f++) {
        if (f >= nph) break;
        for (int ks = 0; ks < s; ks++) {
            const int num = ph0 + f + pw - ks * dw;
            if (num % sw != 0) continue;
            const int c0 = num / sw + j0; /* exact: dy column of lane 0 */
            for (int kr = 0; kr < r; kr++) {
                const float wv = wc[kr * s + ks];
#pragma unroll
                for (int tp = 0; tp < TP; tp++) {
                    const int nr = h0 + tp + ph - kr * dh;
                    if (nr < 0 || nr % sh != 0) continue;
                    const int pi = nr / sh;
                    if (pi >= p) continue;
                    acc[f][tp] = fma((floatV)(wv), load_cols(dy, plane + pi * q, c0, q, 1, lo, hi),
                                     acc[f][tp]);
                }
            }
        }
    }

    /* stride 1: VEC consecutive columns; stride 2: both phases interleaved into 2*VEC
     * consecutive columns; other strides: element by element */
    __global float *xc = dx + dx_off + (ni * c + ch) * h * w;
#pragma unroll
    for (int tp = 0; tp < TP; tp++) {
        const int ih = h0 + tp;
        if (ih >= h) break;
        __global float *xr = xc + ih * w;
        if (sw == 1 && j0 + VEC <= w) {
            vstoreV(acc[0][tp], 0, xr + j0);
        } else if (nph == 2) {
            float a[VEC], b[VEC], o[2 * VEC];
            vstoreV(acc[0][tp], 0, a);
            vstoreV(acc[1][tp], 0, b);
            for (int l = 0; l < VEC; l++) {
                o[2 * l] = a[l];
                o[2 * l + 1] = b[l];
            }
            const int col0 = 2 * j0;
            if (col0 + 2 * VEC <= w) {
                vstoreV(vloadV(0, o), 0, xr + col0);
                vstoreV(vloadV(0, o + VEC), 0, xr + col0 + VEC);
            } else {
                for (int l = 0; l < 2 * VEC && col0 + l < w; l++)
                    xr[col0 + l] = o[l];
            }
        } else {
            float o[VEC];
            vstoreV(acc[0][tp], 0, o);
            for (int l = 0; l < VEC; l++) {
                const int col = ph0 + sw * (j0 + l);
                if (col >= w) break;
                xr[col] = o[l];
            }
        }
    }
}

#if K3 && STRIDE == 2
/* ---- backward data, 3x3 stride 2 padding 1 (MobileNet's downsampling layers) -----------
 *
 * With padding 1, dx rows 2u and 2u+1 take dy rows u and u+1 only (and so do columns):
 *   dx[2u  ][2v  ] = w11 dy[u][v]
 *   dx[2u  ][2v+1] = w10 dy[u][v+1] + w12 dy[u][v]
 *   dx[2u+1][2v  ] = w01 dy[u+1][v] + w21 dy[u][v]
 *   dx[2u+1][2v+1] = w00 dy[u+1][v+1] + w20 dy[u][v+1] + w02 dy[u+1][v] + w22 dy[u][v]
 * (dy outside its plane: 0). A work-item takes DU pairs of dx rows x VEC values of v, so it
 * loads DU+1 dy rows at v and v+1 (vector loads; element by element in a row's last
 * tile) and stores 2*VEC interleaved columns per dx row. Sums in the order of
 * conv2d_depthwise_bwd_data (ks, then kr), from 0: the same values. Work-item: dim0 = (pair
 * block, column tile), dim1 = channel, dim2 = image. */
#define DU 2
#if VEC == 16
#define STORE_PAIR(a, b, p)                                                                        \
    vstore16(shuffle2((a), (b), (uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)), \
             0, (p));                                                                              \
    vstore16(shuffle2((a), (b),                                                                    \
                      (uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)),     \
             0, (p) + 16)
#elif VEC == 8
#define STORE_PAIR(a, b, p)                                                                        \
    vstore16(shuffle2((a), (b), (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)),   \
             0, (p))
#else
#define STORE_PAIR(a, b, p) vstore8(shuffle2((a), (b), (uint8)(0, 4, 1, 5, 2, 6, 3, 7)), 0, (p))
#endif

/* VEC values of dy row u from column v (0 outside the plane's rows and columns). */
inline floatV s2_row(__global const float *plane, int u, int v, int p, int q) {
    if (u >= p) return (floatV)(0.0f);
    return load_dy(plane, u * q, v, q, p * q, LANES < (intV)(q - v));
}

/* Row ih of dx from 2*VEC interleaved columns at 2*v0 (e: even columns, o: odd). */
inline void s2_store(__global float *xr, floatV e, floatV o, int v0, int w) {
    if (2 * v0 + 2 * VEC <= w) {
        STORE_PAIR(e, o, xr + 2 * v0);
        return;
    }
    float t[2 * VEC];
    STORE_PAIR(e, o, t);
    for (int l = 0; 2 * v0 + l < w; l++)
        xr[2 * v0 + l] = t[l];
}

__kernel void conv2d_depthwise_bwd_data_s2(__global const float *dy, int dy_off,
                                           __global const float *wt, int w_off, __global float *dx,
                                           int dx_off, int n, int c, int h, int w, int p, int q) {
    const int hu = (h + 1) / 2, wv = (w + 1) / 2; /* dx row pairs, column pairs */
    const int vt = (wv + VEC - 1) / VEC, ut = (hu + DU - 1) / DU;
    const int t = get_global_id(0), ch = get_global_id(1), ni = get_global_id(2);
    if (t >= ut * vt || ch >= c || ni >= n) return;
    const int u0 = (t / vt) * DU, v0 = (t % vt) * VEC;
    __global const float *plane = dy + dy_off + (ni * c + ch) * p * q;
    __global const float *wc = wt + w_off + ch * 9;
    const float w00 = wc[0], w01 = wc[1], w02 = wc[2], w10 = wc[3], w11 = wc[4], w12 = wc[5],
                w20 = wc[6], w21 = wc[7], w22 = wc[8];
    __global float *xc = dx + dx_off + (ni * c + ch) * h * w;
    floatV a0 = s2_row(plane, u0, v0, p, q), a1 = s2_row(plane, u0, v0 + 1, p, q);
#pragma unroll
    for (int du = 0; du < DU; du++) {
        const int u = u0 + du;
        if (2 * u >= h) break;
        const floatV b0 = s2_row(plane, u + 1, v0, p, q), b1 = s2_row(plane, u + 1, v0 + 1, p, q);
        const floatV z = (floatV)(0.0f);
        /* order (ks, then kr) per output, as the generic kernel sums */
        const floatV ee = fma((floatV)(w11), a0, z);
        const floatV eo = fma((floatV)(w12), a0, fma((floatV)(w10), a1, z));
        s2_store(xc + 2 * u * w, ee, eo, v0, w);
        if (2 * u + 1 < h) {
            const floatV oe = fma((floatV)(w21), a0, fma((floatV)(w01), b0, z));
            const floatV oo =
                fma((floatV)(w22), a0,
                    fma((floatV)(w02), b0, fma((floatV)(w20), a1, fma((floatV)(w00), b1, z))));
            s2_store(xc + (2 * u + 1) * w, oe, oo, v0, w);
        }
        a0 = b0;
        a1 = b1;
    }
}
#endif

/* ---- backward filter ----------------------------------------------------------------
 *
 *   part[chunk, ch, kr, ks] = sum over the dy rows pi of the chunk, qi < q of
 *                             dy[ni,ch,pi,qi] * x[ni, ch, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]
 *
 * A chunk is `rows` consecutive dy rows (cpi row blocks per image) of `imgs` consecutive
 * images (chunk index = image block * cpi + row block; imgs > 1 for small planes); the host sums
 * the n*cpi partial sets in fixed order (cc_conv2d_sum_parts) or, with one chunk, this kernel
 * writes dw itself. Work-item: dim0 = chunk, dim1 = channel, dim2 = a block of RB x SB taps (a 3x3
 * kernel is one block: each dy vector is loaded once for all 9 taps); VEC lanes along the dy row,
 * one vector accumulator per tap, summed lane by lane at the end. Fixed order: deterministic. part:
 * (chunks, c, r, s) dense from part_off. With K3 the nine accumulators are named variables, which
 * the compiler keeps in registers (the host then takes VEC at most the native width); an array of
 * them indexed in the loops was kept in memory, a load and a store around every FMA. */
#define RB 3
#define SB 4

/* The lanes of v added in order. */
inline float lane_sum(floatV v) {
    float o[VEC];
    vstoreV(v, 0, o);
    float sum = 0.0f;
    for (int l = 0; l < VEC; l++)
        sum += o[l];
    return sum;
}

#if K3
/* x[row xb, c0 + lane*STRIDE] for VEC lanes: a plain vector load (fast: every lane inside
 * the row), else a vector load masked to the lanes of m (inside the row, lane < the dy
 * row's end) when its span lies inside x, else load_cols masked by keep. */
#define K3_LOAD(p) (STRIDE == 1 ? LOADV(p) : LOAD_EVEN(p))
inline floatV k3_load(__global const float *x, int xb, int c0, int w, int lo, int hi, int fast,
                      intV m, intV keep) {
    if (fast) return K3_LOAD(x + xb + c0);
    if (xb + c0 >= lo && xb + c0 + VEC * STRIDE <= hi)
        return select((floatV)(0.0f), K3_LOAD(x + xb + c0), m);
    return select((floatV)(0.0f), load_cols(x, xb, c0, w, STRIDE, lo, hi), keep);
}
/* The dy vector g times the three x rows ih0 .. ih0+2, into the nine accumulators (rows
 * outside the input skipped); fast and the tap masks m0..m2 as k3_load takes them. */
#define K3_ROW(ih, A0, A1, A2)                                                                     \
    if ((ih) >= 0 && (ih) < h) {                                                                   \
        const int xb = xplane + (ih)*w;                                                            \
        A0 = fma(g, k3_load(x, xb, c0, w, lo, hi, fast, m0, keep), A0);                            \
        A1 = fma(g, k3_load(x, xb, c0 + 1, w, lo, hi, fast, m1, keep), A1);                        \
        A2 = fma(g, k3_load(x, xb, c0 + 2, w, lo, hi, fast, m2, keep), A2);                        \
    }
#define K3_ROWS()                                                                                  \
    K3_ROW(ih0, a00, a01, a02)                                                                     \
    K3_ROW(ih0 + 1, a10, a11, a12)                                                                 \
    K3_ROW(ih0 + 2, a20, a21, a22)
/* Per column tile: keep, the three taps' lane masks and whole (every lane of every tap
 * inside the row; the fast loads also need the span inside x). */
#define K3_TILE()                                                                                  \
    const intV keep = LANES < (intV)(q - q0); /* no 0 * inf past the row's end */                  \
    const int c0 = q0 * STRIDE - pw;          /* column of tap ks = 0 in lane 0 */                 \
    const intV col = (intV)(c0) + LANES * STRIDE;                                                  \
    const intV m0 = keep & (col >= (intV)(0)) & (col < (intV)(w));                                 \
    const intV m1 = keep & (col >= (intV)(-1)) & (col < (intV)(w - 1));                            \
    const intV m2 = keep & (col >= (intV)(-2)) & (col < (intV)(w - 2));                            \
    const int whole = q0 + VEC <= q && c0 >= 0 && c0 + 2 + (VEC - 1) * STRIDE < w
#endif

__kernel void conv2d_depthwise_bwd_filter(__global const float *x, int x_off,
                                          __global const float *dy, int dy_off,
                                          __global float *part, int part_off, int n, int c, int h,
                                          int w, int p, int q, int r, int s, int sh, int sw, int ph,
                                          int pw, int dh, int dw, int rows, int cpi, int imgs) {
    K3_GEOMETRY();
    const int sblk = (s + SB - 1) / SB, rblk = (r + RB - 1) / RB;
    const int chunk = get_global_id(0), ch = get_global_id(1), tap = get_global_id(2);
    if (chunk >= (n + imgs - 1) / imgs * cpi || ch >= c || tap >= rblk * sblk) return;
    const int ni0 = chunk / cpi * imgs, ni1 = min(n, ni0 + imgs);
    const int p0 = (chunk % cpi) * rows, p1 = min(p, p0 + rows);
    const int kr0 = (tap / sblk) * RB, ks0 = (tap % sblk) * SB;
    const int nr = min(RB, r - kr0), ns = min(SB, s - ks0);
    const int lo = x_off, hi = x_off + n * c * h * w;
    const int dhi = dy_off + n * c * p * q;
#if K3
    /* 3x3 (one tap block): the nine accumulators by name, so they stay in registers (an
     * array indexed in loops was kept in memory, a load and a store around every FMA). */
    (void)nr, (void)ns, (void)kr0, (void)ks0;
    floatV a00 = (floatV)(0.0f), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00, a20 = a00,
           a21 = a00, a22 = a00;
    if (q > 2 * VEC) { /* rows outer, the columns VEC at a time; masks only at the edges */
        for (int ni = ni0; ni < ni1; ni++)
            for (int pi = p0; pi < p1; pi++) {
                const int xplane = x_off + (ni * c + ch) * h * w;
                const int dyr = dy_off + (ni * c + ch) * p * q + pi * q;
                const int ih0 = pi * STRIDE - ph;
                const int xlast = xplane + (ih0 + 2) * w + 2 + VEC * STRIDE;
                for (int q0 = 0; q0 < q; q0 += VEC) {
                    K3_TILE();
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    if (whole && xlast + c0 <= hi) {
                        const int fast = 1;
                        K3_ROWS()
                    } else {
                        const int fast = 0;
                        K3_ROWS()
                    }
                }
            }
    } else { /* one or two column tiles: the masks once per tile for all rows */
        for (int q0 = 0; q0 < q; q0 += VEC) {
            K3_TILE();
            for (int ni = ni0; ni < ni1; ni++)
                for (int pi = p0; pi < p1; pi++) {
                    const int xplane = x_off + (ni * c + ch) * h * w;
                    const int dyr = dy_off + (ni * c + ch) * p * q + pi * q;
                    const int ih0 = pi * STRIDE - ph;
                    const int fast = whole && xplane + (ih0 + 2) * w + 2 + VEC * STRIDE + c0 <= hi;
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    K3_ROWS()
                }
        }
    }
    __global float *o3 = part + part_off + (chunk * c + ch) * 9;
    o3[0] = lane_sum(a00), o3[1] = lane_sum(a01), o3[2] = lane_sum(a02);
    o3[3] = lane_sum(a10), o3[4] = lane_sum(a11), o3[5] = lane_sum(a12);
    o3[6] = lane_sum(a20), o3[7] = lane_sum(a21), o3[8] = lane_sum(a22);
#else
    floatV acc[RB][SB];
    for (int i = 0; i < RB; i++)
        for (int j = 0; j < SB; j++)
            acc[i][j] = (floatV)(0.0f);
    if (q > 2 * VEC) { /* rows outer: plain vector loads inside the rows */
        for (int ni = ni0; ni < ni1; ni++)
            for (int pi = p0; pi < p1; pi++) {
                const int xplane = x_off + (ni * c + ch) * h * w,
                          dyc = dy_off + (ni * c + ch) * p * q;
                const int dyr = dyc + pi * q;
                for (int q0 = 0; q0 < q; q0 += VEC) {
                    const int full = q0 + VEC <= q;
                    const intV keep = LANES < (intV)(q - q0); /* no 0 * inf past the row's end */
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
                    /* every tap's VEC columns inside the row (and stride 1 or 2): plain loads */
                    const int c0 = q0 * sw - pw + ks0 * dw,
                              c1 = c0 + (ns - 1) * dw + (VEC - 1) * sw;
                    const int fast = full && (sw == 1 || sw == 2) && c0 >= 0 && c1 < w;
#pragma unroll
                    for (int i = 0; i < RB; i++) {
                        if (i >= nr) break;
                        const int ih = pi * sh - ph + (kr0 + i) * dh;
                        if (ih < 0 || ih >= h) continue;
                        const int xbase = xplane + ih * w;
                        if (fast && xbase + c1 + sw <= hi) {
                            __global const float *xr = x + xbase + c0;
                            if (sw == 1) {
#pragma unroll
                                for (int j = 0; j < SB; j++) {
                                    if (j >= ns) break;
                                    acc[i][j] = fma(g, vloadV(0, xr + j * dw), acc[i][j]);
                                }
                            } else {
#pragma unroll
                                for (int j = 0; j < SB; j++) {
                                    if (j >= ns) break;
                                    acc[i][j] = fma(g, LOAD_EVEN(xr + j * dw), acc[i][j]);
                                }
                            }
                            continue;
                        }
#pragma unroll
                        for (int j = 0; j < SB; j++) {
                            if (j >= ns) break;
                            floatV xv = load_cols(x, xbase, c0 + j * dw, w, sw, lo, hi);
                            if (!full) xv = select((floatV)(0.0f), xv, keep);
                            acc[i][j] = fma(g, xv, acc[i][j]);
                        }
                    }
                }
            }
    } else { /* one or two column tiles: the lane masks once per tile for all rows */
        for (int q0 = 0; q0 < q; q0 += VEC) {
            /* per column tile: each tap's lane mask (inside the row, lane < q: no 0 * inf past
             * the row's end), computed once for all rows */
            const int full = q0 + VEC <= q;
            const intV keep = LANES < (intV)(q - q0);
            const int c0 = q0 * sw - pw + ks0 * dw;
            intV mask[SB];
            int whole[SB]; /* every lane inside: no mask */
#pragma unroll
            for (int j = 0; j < SB; j++) {
                const intV col = (intV)(c0 + j * dw) + LANES * sw;
                mask[j] = keep & (col >= (intV)(0)) & (col < (intV)(w));
                whole[j] = full && c0 + j * dw >= 0 && c0 + j * dw + (VEC - 1) * sw < w;
            }
            for (int ni = ni0; ni < ni1; ni++)
                for (int pi = p0; pi < p1; pi++) {
                    const int xplane = x_off + (ni * c + ch) * h * w,
                              dyc = dy_off + (ni * c + ch) * p * q;
                    const int dyr = dyc + pi * q;
                    const floatV g = load_dy(dy, dyr, q0, q, dhi, keep);
#pragma unroll
                    for (int i = 0; i < RB; i++) {
                        if (i >= nr) break;
                        const int ih = pi * sh - ph + (kr0 + i) * dh;
                        if (ih < 0 || ih >= h) continue;
                        const int xbase = xplane + ih * w;
#pragma unroll
                        for (int j = 0; j < SB; j++) {
                            if (j >= ns) break;
                            const int start = xbase + c0 + j * dw;
                            floatV xv;
                            if ((sw == 1 || sw == 2) && start >= lo && start + VEC * sw <= hi) {
                                xv = sw == 1 ? vloadV(0, x + start) : LOAD_EVEN(x + start);
                                if (!whole[j]) xv = select((floatV)(0.0f), xv, mask[j]);
                            } else {
                                xv = select((floatV)(0.0f),
                                            load_cols(x, xbase, c0 + j * dw, w, sw, lo, hi), keep);
                            }
                            acc[i][j] = fma(g, xv, acc[i][j]);
                        }
                    }
                }
        }
    }
    __global float *out = part + part_off + (chunk * c + ch) * r * s;
    CC_TILE_COPY(floatV, res, acc, RB, SB); /* the epilogue's loops stay rolled */
#pragma unroll 1
    for (int i = 0; i < nr; i++) {
#pragma unroll 1
        for (int j = 0; j < ns; j++)
            out[(kr0 + i) * s + ks0 + j] = lane_sum(res[i * SB + j]);
    }
#endif
}
#endif
