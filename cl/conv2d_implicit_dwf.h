/* The DWF half of cl/conv2d_implicit.cl (included there, after pack_rows): a depthwise
 * convolution's outputs computed as the rows of B (pack_dw_rows) and the kernel arguments
 * it needs (DWF_PARAMS). Without DWF, DWF_PARAMS is empty and nothing else is defined. */
#if DWF
/* PF 1 (the host sets it on CPUs): each input row a tile reads is prefetched 4 tiles
 * ahead along it. A work-item's tiles run along the rows, and each of them reads a few
 * rows of every channel, planes apart, which the hardware prefetchers do not follow
 * (CC_PREFETCH: only where the compiler targets a CPU architecture). */
#ifndef PF
#define PF 0
#endif
#if PF
#define DW_PREFETCH(src, sw) CC_PREFETCH((src) + 4 * VW * (sw))
#else
#define DW_PREFETCH(src, sw)
#endif
/* DWF: row ci - ci0 of strip is the depthwise convolution's output of input channel ci of
 * the group (dww, dwb at its global channel gc0 + ci) at the tile's 16 positions, TR rows
 * from p0 x VW columns from q0: per tile row the taps summed in (kr, ks) order from 0 with
 * fma, then the bias, then the activation, which is what cl/conv2d_depthwise.cl computes
 * (the fused plan writes the unfused plan's bytes). Tap rows outside the input are
 * skipped, columns outside it are zero lanes; lanes past the output are computed but
 * never stored. Three ways to load a tap's VW columns, chosen once per call: plain vector
 * loads when every tap's columns lie inside the rows (most tiles); vector loads and one
 * lane mask per column tap when the loads stay inside x (the rows' two ends); else
 * load_seg (the tensor's first and last tiles, strides other than 1, 2 and 4). */
#define DW_TAPS(LOAD)                                                                              \
    for (int ci = ci0; ci < ci1; ci++) {                                                           \
        __global const float *wc = dww + (gc0 + ci) * r * s;                                       \
        const float bv = dw_has_bias ? dwb[gc0 + ci] : 0.0f;                                       \
        _Pragma("unroll") for (int tr = 0; tr < TR; tr++) {                                        \
            floatW acc = (floatW)(0.0f);                                                           \
            _Pragma("unroll") for (int kr = 0; kr < r; kr++) {                                     \
                const int ih = (p0 + tr) * sh - ph + kr * dh;                                      \
                if (ih < 0 || ih >= h) continue;                                                   \
                const int base = xc_off + ci * hw + ih * w;                                        \
                __global const float *src = x + base + c0;                                         \
                DW_PREFETCH(src, sw);                                                              \
                _Pragma("unroll") for (int ks = 0; ks < s; ks++) {                                 \
                    const floatW v = LOAD;                                                         \
                    acc = fma((floatW)(wc[kr * s + ks]), v, acc);                                  \
                }                                                                                  \
            }                                                                                      \
            floatW v = acc + bv;                                                                   \
            v = CC_ACT_VEC(floatW, v, dw_act, dw_alpha);                                           \
            vstoreW(v, 0, strip + (ci - ci0) * 16 + tr * VW);                                      \
        }                                                                                          \
    }
#if DWK
/* DW_TAPS with the geometry compiled in: each input row is loaded once for the TR tile
 * rows that use it (stride 1: TR + 2 rows instead of 3*TR), the sums still in (kr, ks)
 * order (rows ascending) */
#undef DW_TAPS
#define DW_TAPS(LOAD)                                                                              \
    for (int ci = ci0; ci < ci1; ci++) {                                                           \
        __global const float *wc = dww + (gc0 + ci) * DWK * DWK;                                   \
        const float bv = dw_has_bias ? dwb[gc0 + ci] : 0.0f;                                       \
        floatW acc[TR];                                                                            \
        _Pragma("unroll") for (int tr = 0; tr < TR; tr++) acc[tr] = (floatW)(0.0f);                \
        _Pragma("unroll") for (int ir = 0; ir < (TR - 1) * DWS + DWK; ir++) {                      \
            const int ih = p0 * DWS - ph + ir;                                                     \
            if (ih < 0 || ih >= h) continue;                                                       \
            const int base = xc_off + ci * hw + ih * w;                                            \
            __global const float *src = x + base + c0;                                             \
            DW_PREFETCH(src, DWS);                                                                 \
            floatW vk[DWK];                                                                        \
            _Pragma("unroll") for (int ks = 0; ks < DWK; ks++) vk[ks] = LOAD;                      \
            _Pragma("unroll") for (int tr = 0; tr < TR; tr++) {                                    \
                const int kr = ir - tr * DWS;                                                      \
                if (kr < 0 || kr >= DWK) continue;                                                 \
                _Pragma("unroll") for (int ks = 0; ks < DWK; ks++) acc[tr] =                       \
                    fma((floatW)(wc[kr * DWK + ks]), vk[ks], acc[tr]);                             \
            }                                                                                      \
        }                                                                                          \
        _Pragma("unroll") for (int tr = 0; tr < TR; tr++) {                                        \
            floatW v = acc[tr] + bv;                                                               \
            v = CC_ACT_VEC(floatW, v, dw_act, dw_alpha);                                           \
            vstoreW(v, 0, strip + (ci - ci0) * 16 + tr * VW);                                      \
        }                                                                                          \
    }
#endif
/* VW columns of a row from p, every sw-th (1, 2 or 4) */
#define LOAD_SW(p) (sw == 1 ? vloadW(0, (p)) : sw == 2 ? LOAD_S2(p) : LOAD_S4(p))

inline __attribute__((always_inline)) void
pack_dw_rows(__local float *strip, __global const float *x, int xc_off, int lo, int hi, int ci0,
             int ci1, int gc0, int p0, int q0, int h, int w, int p, int r, int s, int sh, int sw,
             int ph, int pw, int dh, int dw, __global const float *dww, __global const float *dwb,
             int dw_has_bias, int dw_act, float dw_alpha) {
#if DWK
    r = s = DWK;
    sh = sw = DWS;
    dh = dw = 1;
#endif
    const int hw = h * w;
    const int c0 = q0 * sw - pw; /* first column of tap ks = 0 */
    const int vec = sw == 1 || sw == 2 || sw == 4;
    if (vec && c0 >= 0 && c0 + (s - 1) * dw + VW * sw <= w) {
        DW_TAPS(LOAD_SW(src + ks * dw))
        return;
    }
    /* the first and last elements any tap loads */
    const int r_lo = max(p0 * sh - ph, 0),
              r_hi = min((p0 + TR - 1) * sh - ph + (r - 1) * dh, h - 1);
    const int e_lo = xc_off + ci0 * hw + r_lo * w + c0;
    const int e_hi = xc_off + (ci1 - 1) * hw + r_hi * w + c0 + (s - 1) * dw + VW * sw;
    if (vec && e_lo >= lo && e_hi <= hi) {
        const intW lanes = LANES * sw;
#define MASKED(p, c)                                                                               \
    select((floatW)(0.0f), LOAD_SW(p),                                                             \
           ((intW)(c) + lanes >= (intW)(0)) & ((intW)(c) + lanes < (intW)(w)))
        DW_TAPS(MASKED(src + ks * dw, c0 + ks * dw))
#undef MASKED
        return;
    }
    DW_TAPS(load_seg(x, base, c0 + ks * dw, w, sw, lo, hi))
}
#undef DW_TAPS
#undef DW_PREFETCH
#undef LOAD_SW
#define DWF_PARAMS                                                                                 \
    , __global const float *dww, int dww_off, __global const float *dwb, int dwb_off,              \
        int dw_has_bias, int dw_act, float dw_alpha
#else
#define DWF_PARAMS
#endif
