/* Filter gradient (backward filter) of a 2-D convolution as an implicit GEMM. Host side:
 * lib/ops/conv2d_wgrad.c. Every shape: any kernel size, stride, padding, dilation and
 * groups (all kernel arguments).
 *
 * Per group g the gradient is the product
 *   dW_g (kpg, K) = dY_g (kpg, n*p*q) * B_g (n*p*q, K),   K = cpg*r*s,
 *   B_g[(ni, pi, qi), (ci*r + kr)*s + ks] = xp[ni, g*cpg+ci, pi*sh + kr*dh, qi*sw + ks*dw]
 * where xp is the input with its zero padding made explicit (a padded copy, or x itself
 * when there is no padding; for 1x1 kernels with strides, the positions they read, and
 * strides 1): every tap of every output position lies inside xp, so the
 * GEMM loop has no bounds checks. dY_g is read from dyt, a transposed copy of dy in
 * blocks of MK*VK channels: within a block the channels of one position are consecutive,
 * and the positions follow each other, so that a work-item's loads of dY are one stream
 * that hardware prefetchers follow (with all kpg channels of a position together,
 * consecutive positions would be kpad floats apart: 4 KB, a page each, on 1024-channel
 * layers).
 *
 * A work-item owns MK*VK output channels (MK vectors of VK lanes) x TJ consecutive taps
 * j of K and one chunk of output rows (consecutive rows of the flattened n*p rows; the
 * host may pass p = 1 and q = p*q to walk whole planes when the rows are contiguous in
 * xp). Per output position it loads MK vectors of dyt and multiplies them with TJ
 * broadcast input elements xp[base + off[tj]] (off: the tap's constant offset from the
 * position's first tap): MK*TJ vector accumulators, MK vector loads and TJ scalar loads
 * per position. With one chunk the sums go to dw. With several (blocked), each chunk's go
 * to its own slice of a partial buffer as whole blocks: a work-item's MK*VK x TJ sums
 * are TJ*MK*VK consecutive floats (vector stores; written in dw's layout, 6-float pieces
 * on hundreds of rows, the stores missed the cache on ResNet-50's 14x14 and 7x7 layers),
 * summed afterwards in a fixed order into dw by wgrad_sum_blocks: deterministic, no
 * atomics.
 *
 * Defines (tuning only; shapes are kernel arguments):
 *   VK  output channels per vector: the lanes (16, 8 or 4)                  default 16
 *   MK  vectors of output channels per work-item (1 or 2)                    default 1
 *   TJ  taps per work-item (1..32)                                           default 12
 *   PASS the kernels the program holds: 1 = the GEMM kernel conv2d_wgrad, 2 = the four
 *       helpers (wgrad_pad_x, wgrad_subsample_x, wgrad_transpose_dy, wgrad_sum_parts,
 *       which use none of the tile defines: the host builds them once, without those, for
 *       every tile variant), 3 = conv2d_wgrad_flat (below, with its own defines), 0 = all
 *       six; on POCL most of a cold build is generating every kernel's code  default 0
 *
 * Buffers (dense, each with an element offset *_off):
 *   x  (n, c, h, w)            dy (n, k, p, q)
 *   xp (nb, c, hp, wp)         the padded copy of images n0 .. n0+nb-1 (wgrad_pad_x)
 *   dyt (groups, kpad/kb, nb*p*q, kb)  kb = MK*VK channels per block:
 *                              dyt[g][m/kb][(ni*p + pi)*q + qi][m%kb] = dy[n0+ni][g*kpg +
 * m][pi][qi] (0 for m >= kpg; kpad a multiple of kb; wgrad_transpose_dy) out (k, cpg, r, s) dw
 * itself (one chunk), or out (chunks, groups, nmb, njb, TJ, MK*VK)  the blocked partial sums (nmb =
 * the blocks of MK*VK channels, njb = the blocks of TJ taps; taps past K and channels past kpg hold
 * what the work-item computed for them, which wgrad_sum_blocks skips)
 *
 * Work-item -> output mapping: dim0 = block of TJ taps, dim1 = block of MK*VK channels,
 * dim2 = group * chunks + chunk. */
#include "common.h"

#ifndef VK
#define VK 16
#endif
#ifndef TJ
#define TJ 12
#endif
#ifndef MK
#define MK 1
#endif

#if VK != 16 && VK != 8 && VK != 4
#error "VK must be 16, 8 or 4"
#endif
#if TJ < 1 || TJ > 32
#error "TJ must be in 1..32"
#endif
#if MK != 1 && MK != 2
#error "MK must be 1 or 2"
#endif

#define CC_CAT_(a, b) a##b
#define CC_CAT(a, b) CC_CAT_(a, b)
#define floatK CC_CAT(float, VK)
#define vloadK CC_CAT(vload, VK)
#define vstoreK CC_CAT(vstore, VK)

#if PASS != 1
/* xp = images n0 .. n0+nb-1 of x with ph rows and pw columns of zeros around each
 * plane: (nb, c, h + 2 ph, w + 2 pw). One work-item per plane (few work-items: POCL's
 * cost per work-group is a few microseconds): zero rows, then each input row between
 * zero columns, copied in vectors of 16. */
__kernel void wgrad_pad_x(__global const float *x, int x_off, __global float *xp, int xp_off,
                          int n0, int nb, int c, int h, int w, int ph, int pw) {
    const int hp = h + 2 * ph, wp = w + 2 * pw;
    const int nc = get_global_id(0); /* image*c + channel */
    if (nc >= nb * c) return;
    __global float *d = xp + xp_off + nc * hp * wp;
    __global const float *src = x + x_off + (n0 * c + nc) * h * w;
    const int top = ph * wp; /* zeros before the first row, and after the last */
    for (int i = 0; i < top; i++) {
        d[i] = 0.0f;
        d[(hp - ph) * wp + i] = 0.0f;
    }
    d += top;
    for (int ih = 0; ih < h; ih++, d += wp, src += w) {
        for (int i = 0; i < pw; i++) {
            d[i] = 0.0f;
            d[pw + w + i] = 0.0f;
        }
        int i = 0;
        for (; i + 16 <= w; i += 16)
            vstore16(vload16(0, src + i), 0, d + pw + i);
        for (; i < w; i++)
            d[pw + i] = src[i];
    }
}

/* xs = images n0 .. n0+nb-1 of x at every sh-th row and sw-th column from the first:
 * (nb, c, p, q), the positions a 1x1 kernel with strides sh, sw and no padding reads, so
 * that the filter gradient runs as a stride-1 layer on contiguous planes. One work-item
 * per plane. */
__kernel void wgrad_subsample_x(__global const float *x, int x_off, __global float *xs, int xs_off,
                                int n0, int nb, int c, int h, int w, int p, int q, int sh, int sw) {
    const int nc = get_global_id(0); /* image*c + channel */
    if (nc >= nb * c) return;
    __global float *d = xs + xs_off + nc * p * q;
    __global const float *src = x + x_off + (n0 * c + nc) * h * w;
    for (int pi = 0; pi < p; pi++, d += q, src += sh * w)
        for (int qi = 0; qi < q; qi++)
            d[qi] = src[qi * sw];
}

/* dyt (groups, kpad/kb, nb*pq, kb) from images n0 .. n0+nb-1 of dy (n, k, pq), see the
 * top (kb: a multiple of 4 that divides kpad). One work-item per block of 16 positions of
 * one image and group (flattened: (group*nb + image) * position blocks + block), which
 * transposes its 16 x kpad block in 4x4 blocks
 * through registers (float4 loads and stores; 2x faster than scalar copies, and than
 * 16x16 shuffle butterflies, which LLVM turns into a maze of narrow shuffles). Few,
 * large work-items: POCL's cost per work-group is a few microseconds. */
__kernel void wgrad_transpose_dy(__global const float *dy, int dy_off, __global float *dyt,
                                 int dyt_off, int n0, int nb, int k, int pq, int groups, int kpad,
                                 int kb) {
    const int kpg = k / groups;
    const int jblocks = (pq + 15) / 16, id = get_global_id(0);
    if (id >= groups * nb * jblocks) return;
    const int j0 = (id % jblocks) * 16, gn = id / jblocks;
    const int g = gn / nb, ni = gn % nb;
    const int nj = min(16, pq - j0);
    /* channel m of position j: d[(m / kb) * bstride + j * kb + m % kb] */
    const int bstride = nb * pq * kb;
    __global float *d0 = dyt + dyt_off + (g * (kpad / kb) * nb + ni) * pq * kb + j0 * kb;
    __global const float *src = dy + dy_off + ((n0 + ni) * k + g * kpg) * pq + j0;
    /* 4x4 blocks through registers where they are whole (kb is a multiple of 4) */
    const int m4 = (kpg / 4) * 4, j4 = (nj / 4) * 4;
    for (int m = 0; m < m4; m += 4) {
        __global float *d = d0 + (m / kb) * bstride + m % kb;
        for (int j = 0; j < j4; j += 4) {
            const float4 a = vload4(0, src + m * pq + j), b = vload4(0, src + (m + 1) * pq + j);
            const float4 c = vload4(0, src + (m + 2) * pq + j),
                         e = vload4(0, src + (m + 3) * pq + j);
            vstore4((float4)(a.s0, b.s0, c.s0, e.s0), 0, d + j * kb);
            vstore4((float4)(a.s1, b.s1, c.s1, e.s1), 0, d + (j + 1) * kb);
            vstore4((float4)(a.s2, b.s2, c.s2, e.s2), 0, d + (j + 2) * kb);
            vstore4((float4)(a.s3, b.s3, c.s3, e.s3), 0, d + (j + 3) * kb);
        }
        for (int j = j4; j < nj; j++)
            for (int l = 0; l < 4; l++)
                d[j * kb + l] = src[(m + l) * pq + j];
    }
    for (int m = m4; m < kpad; m++) {
        __global float *d = d0 + (m / kb) * bstride + m % kb;
        for (int j = 0; j < nj; j++)
            d[j * kb] = m < kpg ? src[m * pq + j] : 0.0f;
    }
}

/* out[i] = (accumulate ? out[i] : 0) + part[0][i] + part[1][i] + ... in that order, for
 * i < m: the chunks' slices summed, 16 consecutive elements per work-item (vector loads;
 * conv2d_sum_parts has one element per work-item, 3x slower here). */
__kernel void wgrad_sum_parts(__global const float *part, int part_off, int parts, int m,
                              __global float *out, int out_off, int accumulate) {
    const int i0 = get_global_id(0) * 16;
    if (i0 >= m) return;
    __global const float *src = part + part_off + i0;
    if (i0 + 16 <= m) {
        float16 acc = accumulate ? vload16(0, out + out_off + i0) : (float16)(0.0f);
        for (int j = 0; j < parts; j++)
            acc += vload16(0, src + j * m);
        vstore16(acc, 0, out + out_off + i0);
    } else {
        for (int i = 0; i0 + i < m; i++) {
            float acc = accumulate ? out[out_off + i0 + i] : 0.0f;
            for (int j = 0; j < parts; j++)
                acc += src[j * m + i];
            out[out_off + i0 + i] = acc;
        }
    }
}

#endif

#if PASS == 0 || PASS == 1
/* See the top comment. xs: xp (or x), xs_off its element offset of image n0; xc, xh, xw
 * its channels, rows and columns. rows: the nb*p output rows of this pass, split into
 * chunks of rpc rows; out_off: the element offset of this pass's first chunk slice. */
__kernel void conv2d_wgrad(__global const float *xs, int xs_off, int xc, int xh, int xw,
                           __global const float *dyt, int dyt_off, int kpad, __global float *out,
                           int out_off, int nb, int k, int p, int q, int r, int s, int sh, int sw,
                           int dh, int dw, int groups, int rpc, int chunks, int blocked) {
    const int cpg = xc / groups, kpg = k / groups;
    const int rs = r * s, K = cpg * rs, pq = p * q;
    const int j0 = get_global_id(0) * TJ, m0 = get_global_id(1) * (VK * MK), gc = get_global_id(2);
    if (j0 >= K || m0 >= kpg || gc >= groups * chunks) return;
    const int g = gc / chunks, ch = gc % chunks;
    const int row0 = ch * rpc, row1 = min(row0 + rpc, nb * p);
    const int plane = xh * xw;

    /* the constant offset of each tap from the position's first tap (ci 0, kr 0, ks 0);
     * taps past K repeat the last one and are not stored */
    int off[TJ];
#pragma unroll
    for (int tj = 0; tj < TJ; tj++) {
        const int j = min(j0 + tj, K - 1);
        const int ci = j / rs, kr = (j / s) % r, ks = j % s;
        off[tj] = ci * plane + kr * dh * xw + ks * dw;
    }
    floatK acc[MK][TJ];
#pragma unroll
    for (int mk = 0; mk < MK; mk++)
#pragma unroll
        for (int tj = 0; tj < TJ; tj++)
            acc[mk][tj] = (floatK)(0.0f);

    __global const float *xg = xs + xs_off + g * cpg * plane;
    for (int row = row0; row < row1; row++) {
        const int ni = row / p, pi = row - ni * p;
        __global const float *xb = xg + ni * xc * plane + pi * sh * xw;
        __global const float *dp = dyt + dyt_off +
                                   ((g * (kpad / (VK * MK)) * nb + ni) * pq + pi * q) * (VK * MK) +
                                   m0 * nb * pq;
        for (int qi = 0; qi < q; qi++, xb += sw, dp += VK * MK) {
            floatK dv[MK];
#pragma unroll
            for (int mk = 0; mk < MK; mk++)
                dv[mk] = vloadK(mk, dp);
#pragma unroll
            for (int tj = 0; tj < TJ; tj++) {
                const floatK xv = (floatK)(xb[off[tj]]);
#pragma unroll
                for (int mk = 0; mk < MK; mk++)
                    acc[mk][tj] = fma(xv, dv[mk], acc[mk][tj]);
            }
        }
    }

    if (blocked) { /* the block, whole (see the top comment) */
        const int nmb = (kpg + VK * MK - 1) / (VK * MK), njb = (K + TJ - 1) / TJ;
        __global float *ob =
            out + out_off +
            (((ch * groups + g) * nmb + m0 / (VK * MK)) * njb + j0 / TJ) * TJ * (VK * MK);
#pragma unroll
        for (int tj = 0; tj < TJ; tj++)
#pragma unroll
            for (int mk = 0; mk < MK; mk++)
                vstoreK(acc[mk][tj], mk, ob + tj * (VK * MK));
        return;
    }
    __global float *o = out + out_off + (g * kpg + m0) * K + j0;
    const int nm = min(VK * MK, kpg - m0), nj = min(TJ, K - j0);
    /* through a private block, so that each channel's nj taps (consecutive in dw) are
     * written together, row after row */
    float v[TJ][VK * MK];
#pragma unroll
    for (int tj = 0; tj < TJ; tj++)
#pragma unroll
        for (int mk = 0; mk < MK; mk++)
            vstoreK(acc[mk][tj], mk, v[tj]);
#pragma unroll 1
    for (int l = 0; l < nm; l++)
#pragma unroll 1
        for (int tj = 0; tj < nj; tj++)
            o[l * K + tj] = v[tj][l];
}

/* dw (+= dw when accumulate) = the sum of the parts' blocked slices (conv2d_wgrad with
 * blocked), in part order: for each element, (accumulate ? dw : 0) + part 0 + part 1 +
 * ..., as wgrad_sum_parts sums. One work-item per block (g, channel block, tap block):
 * MK vectors per tap row, each channel's taps then written together. slice: floats per
 * part (groups * nmb * njb * TJ * MK*VK). */
__kernel void wgrad_sum_blocks(__global const float *part, int part_off, int parts, int slice,
                               __global float *dw, int dw_off, int accumulate, int kpg, int K,
                               int groups) {
    const int nmb = (kpg + VK * MK - 1) / (VK * MK), njb = (K + TJ - 1) / TJ;
    const int b = get_global_id(0);
    if (b >= groups * nmb * njb) return;
    const int jb = b % njb, mb = (b / njb) % nmb, g = b / (njb * nmb);
    const int j0 = jb * TJ, m0 = mb * (VK * MK);
    const int nj = min(TJ, K - j0), nm = min(VK * MK, kpg - m0);
    __global const float *src = part + part_off + b * TJ * (VK * MK);
    __global float *o = dw + dw_off + (g * kpg + m0) * K + j0;
    float v[TJ][VK * MK];
#pragma unroll 1
    for (int tj = 0; tj < nj; tj++) {
        if (accumulate)
            for (int l = 0; l < nm; l++)
                v[tj][l] = o[l * K + tj];
#pragma unroll
        for (int mk = 0; mk < MK; mk++) {
            floatK acc = accumulate ? vloadK(mk, v[tj]) : (floatK)(0.0f);
            for (int pi = 0; pi < parts; pi++)
                acc += vloadK(mk, src + pi * slice + tj * (VK * MK));
            vstoreK(acc, mk, v[tj]);
        }
    }
#pragma unroll 1
    for (int l = 0; l < nm; l++)
#pragma unroll 1
        for (int tj = 0; tj < nj; tj++)
            o[l * K + tj] = v[tj][l];
}
#endif

#if PASS == 0 || PASS == 3
/* The filter gradient of a flat layer (1x1 kernel, stride 1, no padding: the input and
 * output planes are the same p*q positions) without the transposed copy of dy:
 *   dW[g*kpg + m][ci] = sum over images ni, positions j of
 *                       dy[ni][g*kpg + m][j] * x[ni][g*cpg + ci][j],
 * dot products of rows of dy and x, both contiguous along j. A work-item owns TA output
 * channels x TB input channels of one group and one part of the reduction: VP
 * consecutive positions at a time it loads TA vectors of dy and TB of x and accumulates
 * their TA*TB lane-wise products (TA*TB vector accumulators, TA+TB loads per TA*TB FMAs;
 * the broadcast kernel above needs the transposed dy for its vector of channels, a copy
 * that cost as much as its GEMM on MobileNet-V2's pointwise layers). At the end each
 * accumulator's lanes are added in a fixed order (halves, then halves of those).
 *
 * Parts: the reduction over (image, position) is split into parts, each a range of ipp
 * whole images (segs = 1) or a segment of seg positions of one image (ipp = 1, segs =
 * ceil(p*q/seg) segments; seg a multiple of VP): part = (images block) * segs + segment.
 * Each part's sums go to its own dw-shaped slice of out (k*cpg floats; out is dw itself
 * when there is one part), added in part order by wgrad_sum_parts: deterministic, no
 * atomics. Channels past the group's last repeat it and are not stored.
 *
 * Defines: VP lanes per vector (16, 8 or 4; default 8), TA output channels and TB input
 * channels per work-item (1..8 each; defaults 4 and 3: 12 accumulators, on AVX2 with the
 * 3 vectors of x and one of dy the 16 registers).
 * Work-item -> output mapping: dim0 = block of TB input channels and block of TA output
 * channels, in super-tiles of sa x sb such blocks (the rows of dy and x a super-tile reads
 * fit the cache; blocks outside the channels return), dim1 = group * parts + part. */
#ifndef VP
#define VP 8
#endif
#ifndef TA
#define TA 4
#endif
#ifndef TB
#define TB 3
#endif
#if VP != 16 && VP != 8 && VP != 4
#error "VP must be 16, 8 or 4"
#endif
#if TA < 1 || TA > 8 || TB < 1 || TB > 8
#error "TA and TB must be in 1..8"
#endif
#define floatP CC_CAT(float, VP)
#define vloadP CC_CAT(vload, VP)

/* The lanes of v added in a fixed order. */
inline float flat_hsum(floatP v) {
#if VP == 16
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
#elif VP == 8
    const float4 b = v.lo + v.hi;
#else
    const float4 b = v;
#endif
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

#if VP == 16
#define LANES_P (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#elif VP == 8
#define LANES_P (int8)(0, 1, 2, 3, 4, 5, 6, 7)
#else
#define LANES_P (int4)(0, 1, 2, 3)
#endif
#define intP CC_CAT(int, VP)

/* row[j .. j1-1] then zeros, element by element (not inlined: one copy, not one per
 * load of the tail). */
__attribute__((noinline)) floatP flat_gather(__global const float *row, int j, int j1) {
    float t[VP];
    for (int l = 0; l < VP; l++)
        t[l] = j + l < j1 ? row[j + l] : 0.0f;
    return vloadP(0, t);
}

/* VP elements of row from j, zero from j1 on (the tail of a part's positions): one vector
 * load with the lanes past j1 cleared where the vector ends before end (it then reads the
 * next row's first elements), else flat_gather (the tensor's last row). */
inline floatP flat_tail(__global const float *row, int j, int j1, __global const float *end) {
    if (row + j + VP <= end)
        return select((floatP)(0.0f), vloadP(0, row + j), LANES_P < (intP)(j1 - j));
    return flat_gather(row, j, j1);
}

/* acc += the lane-wise products of TA vectors of dy and TB of x, each loaded by
 * LOAD(start of its row, end of its tensor). */
#define FLAT_STEP(LOAD)                                                                            \
    do {                                                                                           \
        floatP xv[TB];                                                                             \
        _Pragma("unroll") for (int tb = 0; tb < TB; tb++) {                                        \
            xv[tb] = LOAD(xi + xr[tb], xend);                                                      \
        }                                                                                          \
        _Pragma("unroll") for (int ta = 0; ta < TA; ta++) {                                        \
            const floatP dv = LOAD(di + dr[ta], dend);                                             \
            _Pragma("unroll") for (int tb = 0; tb < TB; tb++) acc[ta][tb] =                        \
                fma(dv, xv[tb], acc[ta][tb]);                                                      \
        }                                                                                          \
    } while (0)

__kernel void conv2d_wgrad_flat(__global const float *x, int x_off, __global const float *dy,
                                int dy_off, __global float *out, int out_off, int n, int c, int k,
                                int pq, int groups, int ipp, int seg, int parts, int sa, int sb) {
    const int cpg = c / groups, kpg = k / groups;
    /* dim0 walks super-tiles of sa x sb blocks, sb fastest, so that the rows of dy and x
     * that consecutive work-items read stay in cache */
    const int nbb = (cpg + TB - 1) / TB, tiles_b = (nbb + sb - 1) / sb;
    const int id = get_global_id(0), gp = get_global_id(1);
    const int tile = id / (sa * sb), in = id % (sa * sb);
    const int c0 = ((tile % tiles_b) * sb + in % sb) * TB;
    const int m0 = ((tile / tiles_b) * sa + in / sb) * TA;
    if (c0 >= cpg || m0 >= kpg || gp >= groups * parts) return;
    const int g = gp / parts, part = gp % parts;
    const int segs = (pq + seg - 1) / seg;
    const int ni0 = (part / segs) * ipp, ni1 = min(ni0 + ipp, n);
    const int j0 = (part % segs) * seg, j1 = min(j0 + seg, pq);
    const int jv = j0 + (j1 - j0) / VP * VP; /* end of the whole vectors */
    __global const float *xend = x + x_off + n * c * pq, *dend = dy + dy_off + n * k * pq;
    int xr[TB], dr[TA]; /* row offsets within an image */
#pragma unroll
    for (int tb = 0; tb < TB; tb++)
        xr[tb] = (g * cpg + min(c0 + tb, cpg - 1)) * pq;
#pragma unroll
    for (int ta = 0; ta < TA; ta++)
        dr[ta] = (g * kpg + min(m0 + ta, kpg - 1)) * pq;
    floatP acc[TA][TB];
#pragma unroll
    for (int ta = 0; ta < TA; ta++)
#pragma unroll
        for (int tb = 0; tb < TB; tb++)
            acc[ta][tb] = (floatP)(0.0f);
    for (int ni = ni0; ni < ni1; ni++) {
        __global const float *xi = x + x_off + ni * c * pq;
        __global const float *di = dy + dy_off + ni * k * pq;
#define FLAT_VEC(row, end) vloadP(0, (row) + j)
#define FLAT_TAIL(row, end) flat_tail((row), jv, j1, (end))
        for (int j = j0; j < jv; j += VP)
            FLAT_STEP(FLAT_VEC);
        if (jv < j1) /* the last positions, zero-padded to a vector */
            FLAT_STEP(FLAT_TAIL);
    }
    __global float *o = out + out_off + part * k * cpg + (g * kpg + m0) * cpg + c0;
    const int na = min(TA, kpg - m0), nb = min(TB, cpg - c0);
    float sum[TA * TB]; /* unrolled, so that acc stays in registers */
#pragma unroll
    for (int ta = 0; ta < TA; ta++)
#pragma unroll
        for (int tb = 0; tb < TB; tb++)
            sum[ta * TB + tb] = flat_hsum(acc[ta][tb]);
#pragma unroll 1
    for (int ta = 0; ta < na; ta++)
#pragma unroll 1
        for (int tb = 0; tb < nb; tb++)
            o[ta * cpg + tb] = sum[ta * TB + tb];
}
#endif
