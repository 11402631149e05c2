/* Implicit-GEMM 2-D convolution, forward: im2col fused into a register-tiled GEMM, no
 * global workspace. Every shape: any kernel size, stride, zero padding, dilation and
 * groups (all kernel arguments). Host side: lib/ops/conv2d_implicit.c.
 *
 * Per group g the convolution is the product
 *   Y_g (kpg, n*p*q) = W_g (kpg, K) * B_g (K, n*p*q),   K = cpg*r*s,
 *   B_g[(ci*r + kr)*s + ks, (ni, pi, qi)] = x[ni, g*cpg+ci, pi*sh-ph+kr*dh, qi*sw-pw+ks*dw]
 * (zero outside the input). A tile is 16 output positions of one image (the lanes of a
 * float16; plane tiles may run on into the next image); a work-item owns nt tiles. For each chunk
 * of cc input channels it copies
 * ("packs") the tiles' columns of B (cc*r*s rows each) into its own strips of local
 * memory (contiguous, so the GEMM loop streams them from cache), then runs every output
 * channel of its range over them, TM channels at a time: TM float16 accumulators, one
 * strip vector and TM broadcast weights per step of the reduction. The partial sums of
 * all but the last chunk are kept in y itself (each y element belongs to one work-item);
 * the first chunk adds the residual z (has_res; z may be y itself, read before the first
 * write), bias and activation are applied with the last chunk. Fixed summation order:
 * deterministic, no atomics.
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   TM   output channels per register block (1..32)                           default 16
 *   VW   width of a lane segment: the 16 lanes are 16/VW output rows of VW columns
 *        each (16, 8 or 4), chosen by the host to fit the output width          default 16
 *   TN   tiles per register block (1..4): TN tiles of a work-item share each broadcast
 *        weight of the GEMM loop (TN*TM float16 accumulators; the host uses it on
 *        AVX-512 CPUs); a work-item's nt is a multiple of TN                       default 1
 *   NTS  1: whole plane tiles are stored with non-temporal stores where 64-byte aligned
 *        (clang's __builtin_nontemporal_store: past the cache on CPUs; the host sets it
 *        only on CPUs, for outputs larger than half the last-level cache)       default 0
 *   DWF  1: the rows of B are not x but the outputs of a depthwise convolution of x
 *        (one filter per channel, dww (c, 1, r, s), its bias dwb and activation dw_act:
 *        the extra arguments); the geometry arguments (h, w, r, s, strides, pads,
 *        dilations) are that layer's, and the GEMM is a 1x1 convolution of its output,
 *        K = cpg, row tiles only (plane 0). A depthwise layer and the 1x1 layer after it
 *        (MobileNet's blocks) run as one kernel, the depthwise output never stored.
 *        Host side: lib/ops/conv2d_dwpw.c                                      default 0
 *   ACT_SILU  1: the epilogue's activation is x Sigmoid(x) whatever act says (plans fuse
 *        EfficientNet's SiLU this way; the op is compiled in so that no other layer pays
 *        for the exp); 0: act at run time                                      default 0
 *   DWK  with DWF: 3 or 5 = the depthwise kernel is DWK x DWK with dilation 1 and DWS (1
 *        or 2) its stride both ways (the geometry arguments are then ignored), so its
 *        taps unroll; 0 = any geometry from the arguments                      default 0
 *   RGRAD 1: the epilogue is the gradient of a ReLU over a sum of two contributions, for
 *        backward data (lib/ops/conv2d_implicit_data.c): y = mk > 0 ? conv + z : 0, with mk
 *        (the ReLU's output, shaped and laid out as y: the extra arguments) and z added
 *        after the whole reduction (conv + z: the same float sum as adding the two finished
 *        contributions), no bias, no activation; has_res is ignored (z is read only
 *        there). Not with DWF                                                   default 0
 *   PF   1 = software prefetch where the compiler targets a CPU architecture (the host
 *        sets it on CPUs): with DWF the input rows of the tiles ahead; with plane tiles,
 *        before each register block's product, the lines of y its epilogue writes and
 *        (residual) of z it reads                                               default 0
 *
 * Backward data with stride 1 is the same kernel: dx = conv(dy, w flipped and with its
 * channel dims swapped), padding dilation*(r-1) - pad (which may be negative: the
 * packing bounds-checks every position), see implicit_weights. With stride > 1 it runs
 * the stride-1 convolutions of dy that give each phase (h mod sh, w mod sw) of dx, with
 * the weights of implicit_weights_phase, into a phase buffer that implicit_phase_scatter
 * copies into dx (those three kernels: conv2d_implicit_weights.h).
 *
 * Arguments besides the shapes:
 *   plane  1: the lanes are 16 consecutive positions of the flattened p*q plane (for
 *          1x1 kernels without padding: with stride 1 they are consecutive input
 *          elements too, with strides each lane is packed from its own; any other kernel
 *          gathers each lane's taps, bounds-checked); 0: 16/VW rows x VW columns of y
 *   cc     input channels per chunk: the strip of local memory holds cc*r*s rows of B
 *          (x 16 floats)
 *   m_per  output channels per work-item along dim 1 (a multiple of TM, or kpg)
 *   nt     tiles per work-item (consecutive flat tile indices): each block of weights is
 *          used for all of them while it is in cache (layers whose weights outgrow the
 *          cache: 3x3 convolutions with hundreds of channels)
 *   strips __local, get_local_size(0) * nt * cc*r*s * 16 floats
 *
 * Buffers (dense, each with an element offset *_off):
 *   x (n, c, h, w)   b (k)   y (n, k, p, q)   z (n, k, p, q) (residual, has_res)
 *   w (k, cpg, r, s) the layer's weights, read by implicit_weights only
 *   wt (groups, mp/TM, K, TM) their transposed, padded copy (see implicit_weights)
 *
 * Work-item -> output mapping: dim0 = flat tile / nt (plane: 16 consecutive positions of
 * all n*p*q, so a 7x7 plane wastes no lanes; else image * tiles per image + tile, a tile
 * 16/VW rows x VW columns, row-major), dim1 = group *
 * msplit + channel range [m_per*j, m_per*(j+1)) of the group. */
#include "common.h"

#ifndef TM
#define TM 16
#endif
#ifndef VW
#define VW 16
#endif
#ifndef TN
#define TN 1
#endif
#ifndef NTS
#define NTS 0
#endif
#ifndef DWF
#define DWF 0
#endif
#ifndef ACT_SILU
#define ACT_SILU 0
#endif
#ifndef DWK
#define DWK 0
#endif
#ifndef RGRAD
#define RGRAD 0
#endif
#if RGRAD && DWF
#error "RGRAD does not combine with DWF"
#endif

#if DWK && (!DWF || (DWK != 3 && DWK != 5) || !defined(DWS) || (DWS != 1 && DWS != 2))
#error "DWK must be 3 or 5, with DWF and DWS 1 or 2"
#endif

#if VW != 16 && VW != 8 && VW != 4
#error "VW must be 16, 8 or 4"
#endif
#if TM < 1 || TM > 32
#error "TM must be in 1..32"
#endif
#if TN < 1 || TN > 4
#error "TN must be in 1..4"
#endif

#define TR (16 / VW) /* output rows per tile */
#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatW CC_CAT(float, VW)
#define vloadW CC_CAT(vload, VW)
#define vstoreW CC_CAT(vstore, VW)

/* The epilogue's activation on a vector of type T and on one float (ACT_ONE): SiLU with
 * ACT_SILU, else chosen at run time (the depthwise layer of DWF always is: CC_ACT_VEC). */
#if ACT_SILU
#define ACT_VEC(T, v, act, alpha) CC_SILU(v)
#define ACT_ONE(v, act, alpha) CC_SILU(v)
#else
#define ACT_VEC(T, v, act, alpha) CC_ACT_VEC(T, v, act, alpha)
#define ACT_ONE(v, act, alpha) cc_activate((v), (act), (alpha))
#endif

#if VW == 16
#define LANES (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define LOAD_S2(p) (float16)(vload16(0, (p)).even, vload16(0, (p) + 16).even)
#define LOAD_S4(p)                                                                                 \
    (float16)(vload16(0, (p)).s048c, vload16(0, (p) + 16).s048c, vload16(0, (p) + 32).s048c,       \
              vload16(0, (p) + 48).s048c)
#elif VW == 8
#define LANES (int8)(0, 1, 2, 3, 4, 5, 6, 7)
#define LOAD_S2(p) vload16(0, (p)).even
#define LOAD_S4(p) (float8)(vload16(0, (p)).s048c, vload16(0, (p) + 16).s048c)
#else
#define LANES (int4)(0, 1, 2, 3)
#define LOAD_S2(p) vload8(0, (p)).even
#define LOAD_S4(p) vload16(0, (p)).s048c
#endif
#define intW CC_CAT(int, VW)

/* The TR rows of VW columns of a tile as one float16, the rows ld floats apart. */
#if VW == 16
#define LOAD_ROWS(p, ld) vload16(0, (p))
#define STORE_ROWS(v, p, ld) vstore16((v), 0, (p))
#elif VW == 8
#define LOAD_ROWS(p, ld) (float16)(vload8(0, (p)), vload8(0, (p) + (ld)))
#define STORE_ROWS(v, p, ld)                                                                       \
    do {                                                                                           \
        vstore8((v).lo, 0, (p));                                                                   \
        vstore8((v).hi, 0, (p) + (ld));                                                            \
    } while (0)
#else
#define LOAD_ROWS(p, ld)                                                                           \
    (float16)(vload4(0, (p)), vload4(0, (p) + (ld)), vload4(0, (p) + 2 * (ld)),                    \
              vload4(0, (p) + 3 * (ld)))
#define STORE_ROWS(v, p, ld)                                                                       \
    do {                                                                                           \
        vstore4((v).s0123, 0, (p));                                                                \
        vstore4((v).s4567, 0, (p) + (ld));                                                         \
        vstore4((v).s89ab, 0, (p) + 2 * (ld));                                                     \
        vstore4((v).scdef, 0, (p) + 3 * (ld));                                                     \
    } while (0)
#endif

/* RGRAD's finish of VW or 16 lanes: v + z where the ReLU's output m is positive, else 0
 * (the sum and comparison of ew_add_relu_grad, cl/elementwise.cl). */
#define RG_FINISH(T, v, zv, mv) select((T)(0.0f), (v) + (zv), (mv) > (T)(0.0f))
#if RGRAD
#define RG_PARAMS , __global const float *mk, int mk_off
#else
#define RG_PARAMS
#endif

/* VW input elements x[base + c0 + l*sw], l < VW, zero where the column c0 + l*sw is
 * outside [0, w). Strides 1, 2 and 4 load vectors (and mask the lanes outside the row)
 * when the loaded span lies inside the tensor, elements lo .. hi-1; otherwise, and for
 * other strides, element by element. */
inline floatW load_seg(__global const float *x, int base, int c0, int w, int sw, int lo, int hi) {
    const int inside = c0 >= 0 && c0 + (VW - 1) * sw < w;
    const int start = base + c0;
    if ((sw == 1 || sw == 2 || sw == 4) && start >= lo && start + VW * sw <= hi) {
        floatW v = sw == 1   ? vloadW(0, x + start)
                   : sw == 2 ? LOAD_S2(x + start)
                             : LOAD_S4(x + start);
        if (!inside) {
            const intW col = (intW)(c0) + LANES * sw;
            v = select((floatW)(0.0f), v, (col >= (intW)(0)) & (col < (intW)(w)));
        }
        return v;
    }
    float t[VW];
    for (int l = 0; l < VW; l++) {
        const int col = c0 + l * sw;
        t[l] = col >= 0 && col < w ? x[base + col] : 0.0f;
    }
    return vloadW(0, t);
}

/* Output columns of a p-row plane of pq positions. */
inline int q_of(int p, int pq) {
    return pq / p;
}

/* Packs the rows of B of input channels [ci0, ci1) of the group (rows ci*r*s .. ) for
 * this work-item's lanes into strip, row after row (16 floats each). xc_off: element
 * index of the group's first input channel of this image in x; lo .. hi-1: the elements
 * of x that may be read. Row validity is decided once per (channel, tap row, tile row)
 * and, when every tap's columns lie inside the input rows (most tiles), the columns take
 * plain vector loads without checks. */
inline void pack_rows(__local float *strip, __global const float *x, int xc_off, int lo, int hi,
                      int ci0, int ci1, int plane, int j0, int pq, int p0, int q0, int h, int w,
                      int p, int r, int s, int sh, int sw, int ph, int pw, int dh, int dw, int left,
                      int xstride) {
    const int hw = h * w;
    if (plane &&
        (r * s > 1 || ph != 0 || pw != 0 || (p - 1) * sh >= h || (q_of(p, pq) - 1) * sw >= w)) {
        /* Any other kernel, or a 1x1 one with outputs past the input (phase convolutions
         * of backward data): plane tiles where row segments would waste lanes (7x7
         * outputs). Each lane's first tap row and column and its offset from the image's
         * channel once per tile, then each row of B gathered lane by lane, zero outside
         * the input and past the end of y (left). */
        const int q = pq / p;
        int ih0[16], iw0[16], off[16];
        for (int l = 0; l < 16; l++) {
            const int jj = j0 + l, j = jj % pq, in = l < left, row = (j / q) * sh - ph;
            ih0[l] = in ? row : -(1 << 29); /* past y's end: no tap row reaches 0 */
            iw0[l] = (j % q) * sw - pw;
            off[l] = in ? (jj / pq) * xstride + row * w + iw0[l] : 0;
        }
        __local float *dst = strip;
        for (int ci = ci0; ci < ci1; ci++) {
            __global const float *src = x + xc_off + ci * hw;
            for (int kr = 0; kr < r; kr++)
                for (int ks = 0; ks < s; ks++, dst += 16) {
                    float t[16];
                    for (int l = 0; l < 16; l++) {
                        const int ih = ih0[l] + kr * dh, iw = iw0[l] + ks * dw;
                        t[l] = ih >= 0 && ih < h && iw >= 0 && iw < w
                                   ? src[off[l] + kr * dh * w + ks * dw]
                                   : 0.0f;
                    }
                    vstore16(vload16(0, t), 0, dst);
                }
        }
        return;
    }
    if (plane) { /* 1x1, no padding, outputs inside the input: row ci is x[ci] at the
                  * positions of outputs j0.. (consecutive at stride 1 when the output's
                  * rows are the input's) */
        if (sh == 1 && sw == 1 && q_of(p, pq) == w && j0 + 16 <= pq) {
            for (int ci = ci0; ci < ci1; ci++)
                vstore16(vload16(0, x + xc_off + ci * hw + j0), ci - ci0, strip);
            return;
        }
        /* Strides, or a tile that runs on into the next images (left: lanes before the
         * end of y): each lane's offset from the image's channel, once per tile (7x7
         * planes: a third of the tiles; two divisions per lane and row made them 3x the
         * cost of the others) */
        const int q = pq / p;
        int off[16];
        for (int l = 0; l < 16; l++) {
            const int jj = j0 + l, j = jj % pq;
            off[l] = l < left ? (jj / pq) * xstride + (j / q) * sh * w + (j % q) * sw : -1;
        }
        for (int ci = ci0; ci < ci1; ci++) {
            __global const float *src = x + xc_off + ci * hw;
            float t[16];
            for (int l = 0; l < 16; l++)
                t[l] = off[l] >= 0 ? src[off[l]] : 0.0f;
            vstore16(vload16(0, t), ci - ci0, strip);
        }
        return;
    }
    const int c0 = q0 * sw - pw; /* first column of tap ks = 0 */
    /* every loaded element of every tap inside the row? */
    const int cols_in =
        (sw == 1 || sw == 2 || sw == 4) && c0 >= 0 && c0 + (s - 1) * dw + VW * sw <= w;
    __local float *dst = strip;
    for (int ci = ci0; ci < ci1; ci++) {
        for (int kr = 0; kr < r; kr++, dst += s * 16) {
#pragma unroll
            for (int tr = 0; tr < TR; tr++) {
                const int ih = (p0 + tr) * sh - ph + kr * dh;
                const int base = xc_off + ci * hw + ih * w;
                __local float *d = dst + tr * VW;
                if (ih < 0 || ih >= h || p0 + tr >= p) {
                    for (int ks = 0; ks < s; ks++)
                        vstoreW((floatW)(0.0f), 0, d + ks * 16);
                } else if (cols_in) {
                    __global const float *src = x + base + c0;
                    if (sw == 1) {
                        for (int ks = 0; ks < s; ks++)
                            vstoreW(vloadW(0, src + ks * dw), 0, d + ks * 16);
                    } else if (sw == 2) {
                        for (int ks = 0; ks < s; ks++)
                            vstoreW(LOAD_S2(src + ks * dw), 0, d + ks * 16);
                    } else {
                        for (int ks = 0; ks < s; ks++)
                            vstoreW(LOAD_S4(src + ks * dw), 0, d + ks * 16);
                    }
                } else {
                    for (int ks = 0; ks < s; ks++)
                        vstoreW(load_seg(x, base, c0 + ks * dw, w, sw, lo, hi), 0, d + ks * 16);
                }
            }
        }
    }
}

#include "conv2d_implicit_dwf.h"

#include "conv2d_implicit_weights.h"

/* A whole tile of 16 outputs at p: with NTS past the cache where p is 64-byte aligned (a
 * float16 store needs that alignment), else a plain store. */
inline void store_tile(float16 v, __global float *p) {
#if NTS
    if ((((ulong)p) & 63) == 0) {
        __builtin_nontemporal_store(v, (__global float16 *)p);
        return;
    }
#endif
    vstore16(v, 0, p);
}

/* Image and position of flat tile T: plane tiles are 16 consecutive positions of the
 * n*p*q positions of all images (the last ones of an image may be followed by the first
 * of the next) and start at image ni, position j0; row tiles (n * tpi of them) at
 * (p0, q0). */
inline void tile_at(int T, int tpi, int qt, int plane, int pq, int *ni, int *j0, int *p0, int *q0) {
    const int ti = T % tpi;
    *ni = plane ? T * 16 / pq : T / tpi;
    *j0 = plane ? T * 16 % pq : 0;
    *p0 = plane ? 0 : (ti / qt) * TR;
    *q0 = plane ? 0 : (ti % qt) * VW;
}

__kernel void conv2d_implicit_fwd(__global const float *x, int x_off, __global const float *wt,
                                  int wt_off, int mp, __global const float *bias, int b_off,
                                  int has_bias, __global const float *z, int z_off, int has_res,
                                  __global float *y, int y_off, int n, int c, int h, int w, int k,
                                  int p, int q, int r, int s, int sh, int sw, int ph, int pw,
                                  int dh, int dw, int groups, int act, float alpha, int plane,
                                  int cc, int m_per, int nt,
                                  __local float *strips DWF_PARAMS RG_PARAMS) {
#if RGRAD
    has_res = 0; /* z is the contribution the epilogue adds last (RG_FINISH) */
#endif
    const int cpg = c / groups, kpg = k / groups;
    const int pq = p * q, rs = DWF ? 1 : r * s, K = cpg * rs; /* DWF: rows of B per channel */
    /* tiles per image */
    const int qt = (q + VW - 1) / VW;
    const int tpi = ((p + TR - 1) / TR) * qt;
    const int ntiles = plane ? (n * pq + 15) / 16 : n * tpi;
    const int msplit = (kpg + m_per - 1) / m_per;
    const int t = get_global_id(0), gm = get_global_id(1);
    if (t * nt >= ntiles || gm >= groups * msplit) return;
    const int nu = min(nt, ntiles - t * nt); /* tiles of this work-item */
    const int g = gm / msplit, m_lo = (gm % msplit) * m_per;
    const int m_hi = min(m_lo + m_per, kpg);
    const int lo = x_off, hi = x_off + n * c * h * w;
    const int strip_len = cc * rs * 16;
    __local float *strips_wi = strips + get_local_id(0) * nt * strip_len;

    for (int ci0 = 0; ci0 < cpg; ci0 += cc) {
        const int ci1 = min(ci0 + cc, cpg), k0 = ci0 * rs, k1 = ci1 * rs;
        const int first = ci0 == 0, last = ci1 == cpg;
        for (int u = 0; u < nu; u++) {
            int ni, j0, p0, q0;
            tile_at(t * nt + u, tpi, qt, plane, pq, &ni, &j0, &p0, &q0);
#if DWF
            pack_dw_rows(strips_wi + u * strip_len, x, x_off + (ni * c + g * cpg) * h * w, lo, hi,
                         ci0, ci1, g * cpg, p0, q0, h, w, p, r, s, sh, sw, ph, pw, dh, dw,
                         dww + dww_off, dwb + dwb_off, dw_has_bias, dw_act, dw_alpha);
#else
            pack_rows(strips_wi + u * strip_len, x, x_off + (ni * c + g * cpg) * h * w, lo, hi, ci0,
                      ci1, plane, j0, pq, p0, q0, h, w, p, r, s, sh, sw, ph, pw, dh, dw,
                      n * pq - (t * nt + u) * 16, c * h * w);
#endif
        }
        /* the weights of a channel block are reused by every tile of the work-item; TN
         * tiles at a time share each broadcast weight (a missing last one repeats the
         * first and is not stored) */
        for (int m0 = m_lo; m0 < m_hi; m0 += TM) {
            for (int u0 = 0; u0 < nu; u0 += TN) {
                /* TM consecutive weights of one reduction row: one pointer, constant offsets */
                __global const float *wp = wt + wt_off + wt_index(g, k0, m0, K, mp);
                __local const float *sp[TN];
                float16 acc[TN][TM];
#if PF && !DWF
                /* whole plane tiles of the last chunk: the lines its epilogue reads (the
                 * residual) and writes, prefetched before the product (plane tiles of one
                 * image: consecutive positions, one line per tile and channel) */
                if (plane && last && u0 + TN <= nu) {
                    int ni, j0, p0, q0;
                    tile_at(t * nt + u0, tpi, qt, plane, pq, &ni, &j0, &p0, &q0);
                    if (j0 + TN * 16 <= pq) {
                        const int yo = (ni * k + g * kpg + m0) * pq + j0;
                        for (int tm = 0; tm < min(TM, m_hi - m0); tm++)
                            for (int tn = 0; tn < TN; tn++) {
                                if (has_res && first)
                                    CC_PREFETCH(z + z_off + yo + tm * pq + 16 * tn);
                                CC_PREFETCH_W(y + y_off + yo + tm * pq + 16 * tn);
                            }
                    }
                }
#endif
#pragma unroll
                for (int tn = 0; tn < TN; tn++) {
                    sp[tn] = strips_wi + (u0 + tn < nu ? u0 + tn : u0) * strip_len;
#pragma unroll
                    for (int tm = 0; tm < TM; tm++)
                        acc[tn][tm] = (float16)(0.0f);
                }
                for (int kk = 0; kk < k1 - k0; kk++, wp += TM) {
                    float16 bv[TN];
#pragma unroll
                    for (int tn = 0; tn < TN; tn++)
                        bv[tn] = vload16(kk, sp[tn]);
#pragma unroll
                    for (int tm = 0; tm < TM; tm++) {
                        const float16 wv = (float16)(wp[tm]);
#pragma unroll
                        for (int tn = 0; tn < TN; tn++)
                            acc[tn][tm] = fma(wv, bv[tn], acc[tn][tm]);
                    }
                }
                CC_TILE_COPY(float16, res, acc, TN, TM); /* the epilogue's loops stay rolled */
#pragma unroll 1
                for (int tn = 0; tn < TN; tn++) {
                    const int u = u0 + tn;
                    if (u >= nu) break;
                    int ni, j0, p0, q0;
                    tile_at(t * nt + u, tpi, qt, plane, pq, &ni, &j0, &p0, &q0);
                    const int left = n * pq - (t * nt + u) * 16, ystride = k * pq;
                    __global float *yg = y + y_off + (ni * k + g * kpg) * pq;
                    __global const float *zg = z + z_off + (ni * k + g * kpg) * pq;
#if RGRAD
                    __global const float *mg = mk + mk_off + (ni * k + g * kpg) * pq;
#endif
                    /* a plane tile that runs on into the next images: each lane's offset
                     * from its channel's plane in image ni, once for the TM channels */
                    const int full = !plane || j0 + 16 <= pq;
                    /* a whole plane tile: its channels' pointers and flags once per tile */
                    if (plane && full) {
                        const int mend = min(TM, m_hi - m0), add = !first || has_res;
                        __global float *yp = yg + m0 * pq + j0;
                        __global const float *ap = (first ? zg : yg) + m0 * pq + j0;
                        __global const float *bp = bias + b_off + g * kpg + m0;
                        const float16 *rp = res + tn * TM;
                        if (!add && last) {
#pragma unroll 1
                            for (int tm = 0; tm < mend; tm++) {
                                float16 v = rp[tm];
#if RGRAD
                                const int o = (m0 + tm) * pq + j0;
                                v = RG_FINISH(float16, v, vload16(0, zg + o), vload16(0, mg + o));
#else
                                if (has_bias) v += (float16)(bp[tm]);
                                v = ACT_VEC(float16, v, act, alpha);
#endif
                                store_tile(v, yp + tm * pq);
                            }
                        } else {
#pragma unroll 1
                            for (int tm = 0; tm < mend; tm++) {
                                float16 v = rp[tm];
                                if (add) v += vload16(0, ap + tm * pq);
                                if (last) {
#if RGRAD
                                    const int o = (m0 + tm) * pq + j0;
                                    v = RG_FINISH(float16, v, vload16(0, zg + o),
                                                  vload16(0, mg + o));
#else
                                    if (has_bias) v += (float16)(bp[tm]);
                                    v = ACT_VEC(float16, v, act, alpha);
#endif
                                }
                                store_tile(v, yp + tm * pq);
                            }
                        }
                        continue;
                    }
                    /* a row tile inside y: all 16 lanes at once, stored from registers */
                    const int whole = !plane && p0 + TR <= p && q0 + VW <= q;
                    int off[16];
                    if (!full)
                        for (int l = 0; l < 16; l++) {
                            const int jj = j0 + l;
                            off[l] = l < left ? (jj / pq) * ystride + jj % pq : -1;
                        }
#pragma unroll 1
                    for (int tm = 0; tm < TM; tm++) {
                        const int m = m0 + tm;
                        if (m >= m_hi) break;
                        __global float *ym = yg + m * pq;
                        /* what the chunk adds to: the partial sum in y, else z or nothing */
                        __global const float *base = first ? zg + m * pq : ym;
                        const int add = !first || has_res;
                        float16 v = res[tn * TM + tm];
                        if (plane) {
                            if (add) {
                                if (full) {
                                    v += vload16(0, base + j0);
                                } else {
                                    float o[16];
                                    for (int l = 0; l < 16; l++)
                                        o[l] = off[l] >= 0 ? base[off[l]] : 0.0f;
                                    v += vload16(0, o);
                                }
                            }
                            if (last) {
#if RGRAD
                                float zo[16], mo[16];
                                for (int l = 0; l < 16; l++) {
                                    const int e = full ? j0 + l : off[l];
                                    zo[l] = e >= 0 ? zg[m * pq + e] : 0.0f;
                                    mo[l] = e >= 0 ? mg[m * pq + e] : 0.0f;
                                }
                                v = RG_FINISH(float16, v, vload16(0, zo), vload16(0, mo));
#else
                                if (has_bias) v += (float16)(bias[b_off + g * kpg + m]);
                                v = ACT_VEC(float16, v, act, alpha);
#endif
                            }
                            if (full) {
                                store_tile(v, ym + j0);
                            } else {
                                float o[16];
                                vstore16(v, 0, o);
                                for (int l = 0; l < 16 && l < left; l++)
                                    ym[off[l]] = o[l];
                            }
                        } else if (whole) {
                            if (add) v += LOAD_ROWS(base + p0 * q + q0, q);
                            if (last) {
#if RGRAD
                                const int o = m * pq + p0 * q + q0;
                                v = RG_FINISH(float16, v, LOAD_ROWS(zg + o, q),
                                              LOAD_ROWS(mg + o, q));
#else
                                v += (float16)(has_bias ? bias[b_off + g * kpg + m] : 0.0f);
                                v = ACT_VEC(float16, v, act, alpha);
#endif
                            }
                            STORE_ROWS(v, ym + p0 * q + q0, q);
                        } else {
                            float o[16];
                            vstore16(v, 0, o);
                            const float bv = last && has_bias ? bias[b_off + g * kpg + m] : 0.0f;
#pragma unroll
                            for (int tr = 0; tr < TR; tr++) {
                                if (p0 + tr >= p) break;
                                __global float *yr = ym + (p0 + tr) * q + q0;
                                __global const float *br = base + (p0 + tr) * q + q0;
#if RGRAD
                                const int ro = m * pq + (p0 + tr) * q + q0;
#endif
                                if (q0 + VW <= q) {
                                    floatW u = vloadW(tr, o);
                                    if (add) u += vloadW(0, br);
                                    if (last) {
#if RGRAD
                                        u = RG_FINISH(floatW, u, vloadW(0, zg + ro),
                                                      vloadW(0, mg + ro));
#else
                                        u += (floatW)(bv);
                                        u = ACT_VEC(floatW, u, act, alpha);
#endif
                                    }
                                    vstoreW(u, 0, yr);
                                } else {
                                    for (int l = 0; q0 + l < q; l++) {
                                        float u = o[tr * VW + l];
                                        if (add) u += br[l];
#if RGRAD
                                        if (last) u = mg[ro + l] > 0.0f ? u + zg[ro + l] : 0.0f;
#else
                                        if (last) u = ACT_ONE(u + bv, act, alpha);
#endif
                                        yr[l] = u;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
