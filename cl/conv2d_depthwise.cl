/* Depthwise 2-D convolution, forward (conv2d_depthwise_fwd), data gradient
 * (conv2d_depthwise_bwd_data) and filter gradient (conv2d_depthwise_bwd_filter): groups
 * == c == k, one filter per channel (channel multiplier 1). Any kernel size, stride, zero
 * padding and dilation (kernel arguments). Host side: lib/ops/conv2d_depthwise.c. The
 * gradient kernels are in conv2d_depthwise_bwd.h (included at the end), described above
 * each of them.
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
 *   PF   forward: 1 = each tile prefetches, at its columns, the input rows the next row
 *        tile of its plane adds (CC_PREFETCH; the host sets it on CPUs, where a
 *        work-group's work-items are consecutive row tiles run in turn, and a tile's
 *        few short rows are too little for the hardware prefetchers); the 3x3 filter
 *        gradient (K3) over wide rows: each output row prefetches the x rows and the dy
 *        row of two output rows ahead                                           default 0
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
 * common.h's 4-byte-aligned vector types, one unaligned load instruction on CPUs (POCL
 * builds vload8 from pieces). */
#if UNALIGNED_LOADS
#define LD4(p) (*(__global const cc_float4_u *)(p))
#define LD8(p) (*(__global const cc_float8_u *)(p))
#define LD16(p) (*(__global const cc_float16_u *)(p))
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
#ifndef PF
#define PF 0
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

#if PASS != 2
/* One tile: TP rows from p0 x VEC columns from q0 of the output plane (ni, ch). Its tap
 * loops unroll where the kernel size is compiled in (KF); with run-time sizes the
 * compiler cannot, and warned about each such loop. */
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
#if PF
    for (int rr = 1; rr <= TP * sh; rr++) {
        __global const float *pf = x + plane + (ih_last + rr) * w + max(iw0, 0);
        CC_PREFETCH(pf);
        if (VEC * sw > 16) CC_PREFETCH(pf + 16);
    }
#endif
    const int interior = (sw == 1 || sw == 2) && ih0 >= 0 && ih_last < h && iw0 >= 0 &&
                         iw0 + (VEC - 1) * sw + (s - 1) * dw < w &&
                         plane + ih_last * w + iw0 + (s - 1) * dw + VEC * sw <= hi;
    if (interior) {
        __global const float *xp = x + plane + ih0 * w + iw0;
#if KF
#pragma unroll
#endif
        for (int kr = 0; kr < r; kr++) {
#if KF
#pragma unroll
#endif
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
#if KF
#pragma unroll
#endif
        for (int kr = 0; kr < r; kr++) {
#if KF
#pragma unroll
#endif
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

#include "conv2d_depthwise_bwd.h"
