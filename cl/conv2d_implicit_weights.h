/* The weights half of cl/conv2d_implicit.cl (included there, before the GEMM kernel): the
 * GEMM's weight matrix and the kernels that make it from a layer's weights
 * (implicit_weights for the forward and for backward data at stride 1,
 * implicit_weights_phase for the phase GEMMs of strided backward data), and the scatter
 * of those phase GEMMs' outputs into dx (implicit_phase_scatter). Uses TM. */

/* wt (groups, mp/TM, K, TM): the GEMM's weight matrix per group, transposed, its kpg
 * channels padded with zeros to mp, a multiple of TM, in blocks of TM channels: the TM
 * weights of one reduction row are consecutive floats and so are the rows of a block (the
 * GEMM loop walks one block from start to end). K = cpg*r*s. wt[g][m][kk] below stands
 * for the element at wt_index.
 *   flip 0 (forward):  w is (groups*kpg, cpg, r, s) and wt[g][kk][m] = w[g*kpg + m][kk].
 *   flip 1 (backward data as a forward convolution of dy, with the kernel flipped and
 *          its two channel dims swapped): w is (groups*cpg, kpg, r, s) and
 *          wt[g][(ci*r + kr)*s + ks][m] = w[g*cpg + ci][m][r-1-kr][s-1-ks].
 * One work-item per WKB consecutive reduction rows of one block of TM channels: dim0 = row
 * block, dim1 = g * mp/TM + channel block. It writes WKB*TM consecutive floats, reading
 * each channel's WKB weights, which are consecutive in w for the forward (for flip: runs
 * of r*s, reversed). No divisions per element: one element per work-item spent most of
 * its time on the index arithmetic. */
inline int wt_index(int g, int kk, int m, int K, int mp) {
    return ((g * (mp / TM) + m / TM) * K + kk) * TM + m % TM;
}

#define WKB 16 /* reduction rows per work-item of implicit_weights (the host's too) */
__kernel void implicit_weights(__global const float *w, int w_off, __global float *wt, int wt_off,
                               int kpg, int cpg, int r, int s, int mp, int groups, int flip) {
    const int rs = r * s, K = cpg * rs;
    const int kk0 = get_global_id(0) * WKB, gb = get_global_id(1);
    if (kk0 >= K || gb >= groups * (mp / TM)) return;
    const int g = gb / (mp / TM), m0 = (gb % (mp / TM)) * TM;
    const int nk = min(WKB, K - kk0), nm = clamp(kpg - m0, 0, TM); /* channels < kpg */
    __global float *d = wt + wt_off + (gb * K + kk0) * TM;
    /* kk = ci*rs + e; flip reads w[g*cpg + ci][m][rs-1-e] */
    int ci = kk0 / rs, e = kk0 % rs;
    /* not unrolled: a copy, and unrolled per TM it doubled the program's compile time */
#pragma unroll 1
    for (int j = 0; j < nk; j++, d += TM) {
        __global const float *src = flip ? w + w_off + ((g * cpg + ci) * kpg + m0) * rs + rs - 1 - e
                                         : w + w_off + (g * kpg + m0) * K + kk0 + j;
        const int step = flip ? rs : K; /* from channel m to m + 1 */
#pragma unroll 1
        for (int tm = 0; tm < nm; tm++)
            d[tm] = src[tm * step];
#pragma unroll 1
        for (int tm = nm; tm < TM; tm++)
            d[tm] = 0.0f;
        if (++e == rs) {
            e = 0;
            ci++;
        }
    }
}

/* Backward data with stride > 1 (lib/ops/conv2d_implicit.c, backward_data_phases): wt
 * (groups, mp/TM, K, TM) with K = kpg*th*tw, the filter of the stride-1 convolution of
 * dy whose output channel m = (ci*na + ai)*nb + bi (< cpg*na*nb; padded with zeros to
 * mp) is input channel ci of the group at row phase a (the ai-th set bit of mask_h) and
 * column phase b. Reduction row kk = (mi*th + u)*tw + v is dy channel mi of the group at
 * row offset e = emin_h + u (column emin_w + v): the tap kr with kr*dh = a + ph - sh*e,
 * zero when there is none. One work-item per row (g, kk): it writes the row's mp floats
 * (at wt_index).
 *   w (groups*kpg, cpg, r, s): the layer's weights. */
__kernel void implicit_weights_phase(__global const float *w, int w_off, __global float *wt,
                                     int wt_off, int kpg, int cpg, int r, int s, int sh, int sw,
                                     int ph, int pw, int dh, int dw, int th, int tw, int emin_h,
                                     int emin_w, uint mask_h, uint mask_w, int na, int nb, int mp,
                                     int groups) {
    const int K = kpg * th * tw;
    const int row = get_global_id(0); /* (g, kk) flattened */
    if (row >= groups * K) return;
    const int kk = row % K, g = row / K;
    const int mi = kk / (th * tw), u = (kk / tw) % th, vv = kk % tw;
    __global const float *wg = w + w_off + (g * kpg + mi) * cpg * r * s;
    /* the taps of the set phases (-1: none), once per work-item instead of per channel */
    int kra[32], ksb[32];
    int na2 = 0, nb2 = 0;
    for (int a = 0; a < sh; a++) {
        if (!((mask_h >> a) & 1u)) continue;
        const int nr = a + ph - sh * (emin_h + u);
        kra[na2++] = nr >= 0 && nr % dh == 0 && nr / dh < r ? nr / dh : -1;
    }
    for (int b = 0; b < sw; b++) {
        if (!((mask_w >> b) & 1u)) continue;
        const int ns = b + pw - sw * (emin_w + vv);
        ksb[nb2++] = ns >= 0 && ns % dw == 0 && ns / dw < s ? ns / dw : -1;
    }
    /* m = (ci*na + ai)*nb + bi in order: TM consecutive floats per block of channels, the
     * blocks K*TM floats apart (wt_index without a division per element) */
    __global float *out = wt + wt_off + (g * (mp / TM) * K + kk) * TM;
    int tm = 0;
    for (int ci = 0; ci < cpg; ci++) {
        __global const float *wc = wg + ci * r * s;
        for (int ai = 0; ai < na2; ai++) {
            const int kr = kra[ai];
            for (int bi = 0; bi < nb2; bi++) {
                const int ks = ksb[bi];
                out[tm] = kr >= 0 && ks >= 0 ? wc[kr * s + ks] : 0.0f;
                if (++tm == TM) {
                    tm = 0;
                    out += K * TM;
                }
            }
        }
    }
    for (int m = cpg * na2 * nb2; m < mp; m++) {
        out[tm] = 0.0f;
        if (++tm == TM) {
            tm = 0;
            out += K * TM;
        }
    }
}

/* dx[n0 + z/c][z%c][hi][wi] = buf[z*zs + (ai*nb + bi)*phs + (hi/sh)*qq + wi/sw] for the
 * phase (a, b) = (hi mod sh, wi mod sw) when both are set in mask_h / mask_w (ai, bi:
 * their ranks among the set bits, nb the set bits of mask_w), else 0. One work-item per
 * row of dx: dim0 = hi, dim1 = z (image of the chunk * c + channel); it copies each
 * column phase's row of buf (contiguous) to every sw-th element of the row, so the inner
 * loops have no division (strides 2 and 4: all rows at once, interleaved in vectors).
 *   buf: the output of the phase convolutions, planes of pp x qq: (nbat, c*na*nb, pp, qq)
 *        (zs = na*nb*pp*qq, phs = pp*qq) or one (nbat, c, pp, qq) block per phase
 *        (zs = pp*qq, phs = nbat*c*pp*qq). */
__kernel void implicit_phase_scatter(__global const float *buf, int buf_off, __global float *dx,
                                     int dx_off, int n0, int nbat, int c, int h, int w, int sh,
                                     int sw, uint mask_h, uint mask_w, int nb, int zs, int phs,
                                     int qq) {
    const int hi = get_global_id(0), z = get_global_id(1);
    if (hi >= h || z >= nbat * c) return;
    const uint a = (uint)(hi % sh);
    __global float *d = dx + dx_off + ((n0 * c + z) * h + hi) * w;
    if (!((mask_h >> a) & 1u)) {
        for (int wi = 0; wi < w; wi++)
            d[wi] = 0.0f;
        return;
    }
    const int ai = popcount(mask_h & ((1u << a) - 1u));
    __global const float *src = buf + buf_off + z * zs + ai * nb * phs + (hi / sh) * qq;
    int bi = 0;
    if (sw == 4) { /* AlexNet's stride: the four phase rows interleaved in vectors */
        __global const float *sb[4];
        int on[4], k = 0;
        for (int b = 0; b < 4; b++) {
            on[b] = (int)((mask_w >> b) & 1u);
            sb[b] = src + k * phs;
            k += on[b];
        }
        int j = 0;
        for (; 4 * j + 16 <= w; j += 4) {
            const float4 v0 = on[0] ? vload4(0, sb[0] + j) : (float4)(0.0f);
            const float4 v1 = on[1] ? vload4(0, sb[1] + j) : (float4)(0.0f);
            const float4 v2 = on[2] ? vload4(0, sb[2] + j) : (float4)(0.0f);
            const float4 v3 = on[3] ? vload4(0, sb[3] + j) : (float4)(0.0f);
            vstore16((float16)(v0.s0, v1.s0, v2.s0, v3.s0, v0.s1, v1.s1, v2.s1, v3.s1, v0.s2, v1.s2,
                               v2.s2, v3.s2, v0.s3, v1.s3, v2.s3, v3.s3),
                     0, d + 4 * j);
        }
        for (int wi = 4 * j; wi < w; wi++)
            d[wi] = on[wi & 3] ? sb[wi & 3][wi >> 2] : 0.0f;
        return;
    }
    if (sw == 2) { /* the common stride: interleave the two phase rows with vectors */
        const int on0 = (int)(mask_w & 1u), on1 = (int)((mask_w >> 1) & 1u);
        __global const float *s0 = src, *s1 = src + on0 * phs;
        int j = 0;
        for (; 2 * j + 16 <= w; j += 8) {
            const float8 v0 = on0 ? vload8(0, s0 + j) : (float8)(0.0f);
            const float8 v1 = on1 ? vload8(0, s1 + j) : (float8)(0.0f);
            vstore16(
                shuffle2(v0, v1, (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15)), 0,
                d + 2 * j);
        }
        for (int wi = 2 * j; wi < w; wi++) {
            const int odd = wi & 1;
            d[wi] = (odd ? on1 : on0) ? (odd ? s1 : s0)[wi >> 1] : 0.0f;
        }
        return;
    }
    for (int b = 0; b < sw && b < w; b++) {
        if ((mask_w >> b) & 1u) {
            __global const float *sb = src + bi * phs;
            for (int j = 0, wi = b; wi < w; j++, wi += sw)
                d[wi] = sb[j];
            bi++;
        } else {
            for (int wi = b; wi < w; wi += sw)
                d[wi] = 0.0f;
        }
    }
}
