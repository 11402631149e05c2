/* Batch normalisation over the channels of NCHW (or the features of (n, c)), training and
 * inference, forward and backward (host side: lib/ops/batchnorm.c).
 *
 * Defines:
 *   WG  work-items per channel in the reduction kernels (a power of two; the host launches
 *       exactly WG per group).
 *
 * Buffers (contiguous, each with an element offset *_off):
 *   x, y, dy, dx  (n, c, hw) float, hw = h*w (1 for (n, c))
 *   per-channel   (c) float: gamma, beta, mean, invstd, running mean/var, sums
 * Activation act (run-time argument; CLCNN_ACT_ID_* from clcnn_ids.h): bn_apply and
 *   bn_apply_chunk write act(y) for CLCNN_ACT_ID_RELU (y < 0 ? 0 : y) and
 *   CLCNN_ACT_ID_RELU6 (then y > 6 ? 6 : y), the same comparisons as act_forward and Clip;
 *   the backward kernels then read dy masked where the activation passes its gradient on
 *   (dy where y > 0, and y < 6 for RELU6, else 0), which is what act_backward / Clip's
 *   backward would have written from the activated output (ya > 0 exactly where y > 0,
 *   ya < 6 exactly where y < 6), so the sums see the same values. They do not read ya:
 *   they compute y again from x, the saved statistics, gamma and beta with the forward's
 *   own expression (bn_affine, bn_affine16: one rounding of the product and one of the
 *   fused multiply-add, as in the forward), which gives the forward's y bit for bit, so a
 *   backward reads two tensors (x, dy) instead of three.
 *   CLCNN_ACT_ID_NONE: plain batch norm.
 * Each channel has m = n*hw values; work-item lid of the channel's group visits values
 * e = lid, lid + WG, ... (e = sample * hw + position) with compensated sums, then the
 * group adds the WG partial sums as a fixed tree: deterministic run to run.
 *
 * bn_stats: one group per channel. Two passes over the data (mean, then the sum of squared
 *   deviations, which cannot cancel catastrophically as E[x^2] - E[x]^2 can). Writes mean
 *   and 1/sqrt(var + eps) with the biased variance, and when update_running, running
 *   statistics PyTorch-style: r = (1 - momentum) r + momentum * batch, unbiased variance.
 * bn_apply: one work-item per element, y = (x - mean) * invstd * gamma + beta; with
 *   from_var the second per-channel buffer holds a variance and invstd = 1/sqrt(var + eps)
 *   (inference from running statistics). With res (not NULL, shaped like x) the
 *   activation applies to y + res: a training plan's residual Add (and the ReLU after it)
 *   in the same pass, the sum that ew_add / ew_add_relu would have made of the stored y.
 * bn_bwd_reduce: one group per channel: sum_dy = sum dy, sum_dyxhat = sum dy * xhat.
 * bn_bwd_dx: one work-item per element,
 *   dx = gamma * invstd * (dy - sum_dy / m - xhat * sum_dyxhat / m).
 *
 * Chunk kernels (CPUs: one work-item walking contiguous memory with float16 vectors is
 * what POCL runs fast; the group kernels above suit GPUs). Work-item gid of
 * n * c * chunks owns chunk kc = gid % chunks of plane gid / chunks (sample * c + ch): the
 * hw values from kc * chunk on (at most chunk of them). Per-chunk sums are compensated per
 * lane, their 16 lanes added as a fixed tree, and written to
 *   part  (c, P) float, P = n * chunks, part[ch * P + sample * chunks + kc]
 * (a second array of the same shape follows at part + c * P where two sums are kept).
 * A channel's total is the compensated sum of its P partials in index order (bn_total,
 * one work-item per channel in the *_final kernels).
 * bn_part_sum: part = sums of x. bn_mean_final: mean. bn_part_sqdev: part2 = sums of
 *   (x - mean)^2 (two passes, as bn_stats). bn_var_final: invstd and the running
 *   statistics, as bn_stats. bn_apply_chunk: bn_apply over a chunk.
 * bn_bwd_part: part = sums of dy, part2 = sums of dy * (x - mean). bn_bwd_final: one
 *   work-item per channel, writes what bn_bwd_reduce writes. bn_bwd_dx_chunk: bn_bwd_dx
 *   over a chunk. */
#include "common.h"

#ifndef WG
#define WG 256 // work-items per channel in the reduction kernels
#endif
#if (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

/* The activation of the fused forward, and the mask of its gradient from its output. The
 * vector masks come from isless / isgreater (-1 where true), which Oclgrind gets right
 * where it gives 1 for a vector comparison kept in a variable. */
inline float bn_act(float v, int act) {
    if (act != CLCNN_ACT_ID_NONE) v = v < 0.0f ? 0.0f : v;
    if (act == CLCNN_ACT_ID_RELU6) v = v > 6.0f ? 6.0f : v;
    return v;
}
inline float16 bn_act16(float16 v, int act) {
    if (act != CLCNN_ACT_ID_NONE) v = select(v, (float16)(0.0f), isless(v, (float16)(0.0f)));
    if (act == CLCNN_ACT_ID_RELU6) v = select(v, (float16)(6.0f), isgreater(v, (float16)(6.0f)));
    return v;
}
/* y before the activation: the forward's expression, which every kernel that needs y
 * (the applies, and the backward kernels for their masks) computes through these. */
inline float bn_affine(float x, float mu, float inv, float g, float b) {
    return (x - mu) * inv * g + b;
}
inline float16 bn_affine16(float16 x, float mu, float inv, float g, float b) {
    return (x - mu) * inv * g + b;
}
/* g where the activation of y passes its gradient on (y > 0, and y < 6 for RELU6), else 0;
 * g itself without an activation. */
inline float bn_mask(float g, float y, int act) {
    if (act == CLCNN_ACT_ID_NONE) return g;
    int keep = act == CLCNN_ACT_ID_RELU6 ? y > 0.0f && y < 6.0f : y > 0.0f;
    return keep ? g : 0.0f;
}
inline float16 bn_mask16(float16 g, float16 y, int act) {
    if (act == CLCNN_ACT_ID_NONE) return g;
    int16 keep = isgreater(y, (float16)(0.0f));
    if (act == CLCNN_ACT_ID_RELU6) keep &= isless(y, (float16)(6.0f));
    return select((float16)(0.0f), g, keep);
}
inline float bn_wg_sum(__local float *buf, float v) {
    int lid = get_local_id(0);
    barrier(CLK_LOCAL_MEM_FENCE); /* buf may still be read from a previous call */
    buf[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) buf[lid] += buf[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return buf[0];
}

inline void bn_kahan(float *s, float *comp, float v) {
    float y = v - *comp;
    float t = *s + y;
    *comp = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Walks the values e = lid, lid + WG, ... of channel ch as (sample, pos), e = sample * hw +
 * pos, without a division per step: WG = step_s * hw + step_p. */
typedef struct bn_walk {
    int sample, pos, step_s, step_p;
} bn_walk;

inline bn_walk bn_walk_start(int lid, int hw) {
    bn_walk w = {lid / hw, lid % hw, WG / hw, WG % hw};
    return w;
}
inline int bn_walk_index(const bn_walk *w, int ch, int c, int hw) {
    return (w->sample * c + ch) * hw + w->pos;
}
inline void bn_walk_next(bn_walk *w, int hw) {
    w->sample += w->step_s;
    w->pos += w->step_p;
    if (w->pos >= hw) {
        w->pos -= hw;
        w->sample++;
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
bn_stats(__global const float *x, int x_off, int n, int c, int hw, float eps, __global float *mean,
         int mean_off, __global float *invstd, int inv_off, int update_running,
         __global float *rmean, int rm_off, __global float *rvar, int rv_off, float momentum) {
    __local float buf[WG];
    int ch = get_group_id(0), lid = get_local_id(0);
    int m = n * hw;
    __global const float *xp = x + x_off;
    float s = 0.0f, comp = 0.0f;
    bn_walk w = bn_walk_start(lid, hw);
    for (int e = lid; e < m; e += WG, bn_walk_next(&w, hw))
        bn_kahan(&s, &comp, xp[bn_walk_index(&w, ch, c, hw)]);
    float mu = bn_wg_sum(buf, s) / (float)m;
    s = 0.0f;
    comp = 0.0f;
    w = bn_walk_start(lid, hw);
    for (int e = lid; e < m; e += WG, bn_walk_next(&w, hw)) {
        float d = xp[bn_walk_index(&w, ch, c, hw)] - mu;
        bn_kahan(&s, &comp, d * d);
    }
    float ss = bn_wg_sum(buf, s);
    if (lid != 0) return;
    float var = ss / (float)m;
    mean[mean_off + ch] = mu;
    invstd[inv_off + ch] = 1.0f / sqrt(var + eps);
    if (update_running) {
        float unbiased = ss / (float)(m - 1);
        rmean[rm_off + ch] = (1.0f - momentum) * rmean[rm_off + ch] + momentum * mu;
        rvar[rv_off + ch] = (1.0f - momentum) * rvar[rv_off + ch] + momentum * unbiased;
    }
}

__kernel void bn_apply(__global const float *x, int x_off, __global float *y, int y_off, int n,
                       int c, int hw, __global const float *mean, int mean_off,
                       __global const float *sd, int sd_off, int from_var, float eps,
                       __global const float *gamma, int g_off, __global const float *beta,
                       int b_off, int act, __global const float *res, int res_off) {
    int gid = get_global_id(0);
    if (gid >= n * c * hw) return;
    int ch = (gid / hw) % c;
    float inv = from_var ? 1.0f / sqrt(sd[sd_off + ch] + eps) : sd[sd_off + ch];
    float g = gamma ? gamma[g_off + ch] : 1.0f;
    float b = beta ? beta[b_off + ch] : 0.0f;
    float v = bn_affine(x[x_off + gid], mean[mean_off + ch], inv, g, b);
    if (res) v += res[res_off + gid];
    y[y_off + gid] = bn_act(v, act);
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
bn_bwd_reduce(__global const float *x, int x_off, __global const float *dy, int dy_off, int n,
              int c, int hw, __global const float *mean, int mean_off, __global const float *invstd,
              int inv_off, __global float *sum_dy, int sdy_off, __global float *sum_dyxhat,
              int sdx_off, __global const float *gamma, int g_off, __global const float *beta,
              int b_off, int act) {
    __local float buf[WG];
    int ch = get_group_id(0), lid = get_local_id(0);
    int m = n * hw;
    float mu = mean[mean_off + ch], inv = invstd[inv_off + ch];
    float ga = gamma ? gamma[g_off + ch] : 1.0f, be = beta ? beta[b_off + ch] : 0.0f;
    float s1 = 0.0f, c1 = 0.0f, s2 = 0.0f, c2 = 0.0f;
    bn_walk w = bn_walk_start(lid, hw);
    for (int e = lid; e < m; e += WG, bn_walk_next(&w, hw)) {
        int i = bn_walk_index(&w, ch, c, hw);
        float xv = x[x_off + i];
        float g = bn_mask(dy[dy_off + i], bn_affine(xv, mu, inv, ga, be), act);
        bn_kahan(&s1, &c1, g);
        bn_kahan(&s2, &c2, g * (xv - mu));
    }
    float t1 = bn_wg_sum(buf, s1);
    float t2 = bn_wg_sum(buf, s2);
    if (lid != 0) return;
    sum_dy[sdy_off + ch] = t1;
    sum_dyxhat[sdx_off + ch] = t2 * inv;
}

__kernel void bn_bwd_dx(__global const float *x, int x_off, __global const float *dy, int dy_off,
                        __global float *dx, int dx_off, int n, int c, int hw,
                        __global const float *mean, int mean_off, __global const float *invstd,
                        int inv_off, __global const float *gamma, int g_off,
                        __global const float *sum_dy, int sdy_off, __global const float *sum_dyxhat,
                        int sdx_off, __global const float *beta, int b_off, int act) {
    int gid = get_global_id(0);
    if (gid >= n * c * hw) return;
    int ch = (gid / hw) % c;
    float inv = invstd[inv_off + ch], mu = mean[mean_off + ch];
    float fm = (float)(n * hw);
    float xv = x[x_off + gid];
    float xhat = (xv - mu) * inv;
    float g = gamma ? gamma[g_off + ch] : 1.0f, be = beta ? beta[b_off + ch] : 0.0f;
    dx[dx_off + gid] = g * inv *
                       (bn_mask(dy[dy_off + gid], bn_affine(xv, mu, inv, g, be), act) -
                        sum_dy[sdy_off + ch] / fm - xhat * (sum_dyxhat[sdx_off + ch] / fm));
}

/* ---- chunk kernels (CPUs) ------------------------------------------------------------ */

inline void bn_kahan16(float16 *s, float16 *comp, float16 v) {
    float16 y = v - *comp;
    float16 t = *s + y;
    *comp = select((float16)(0.0f), (t - *s) - y, isfinite(t));
    *s = t;
}

/* The compensated lanes added as a fixed tree. */
inline float bn_lanes(float16 s, float16 comp) {
    float16 r = s - comp;
    float8 a = r.lo + r.hi;
    float4 b = a.lo + a.hi;
    float2 d = b.lo + b.hi;
    return d.s0 + d.s1;
}

/* Total of a channel's P partials, in index order. */
inline float bn_total(__global const float *part, int P) {
    float s = 0.0f, comp = 0.0f;
    for (int i = 0; i < P; i++)
        bn_kahan(&s, &comp, part[i]);
    return s;
}

/* Channel ch's invstd from the sum of squared deviations ss of its m values (biased
 * variance), returned and stored, and its running statistics when update_running. */
inline float bn_store_var(float mu, float ss, int m, float eps, int ch, __global float *invstd,
                          int inv_off, int update_running, __global float *rmean, int rm_off,
                          __global float *rvar, int rv_off, float momentum) {
    float var = ss / (float)m;
    float inv = 1.0f / sqrt(var + eps);
    invstd[inv_off + ch] = inv;
    if (update_running) {
        float unbiased = ss / (float)(m - 1);
        rmean[rm_off + ch] = (1.0f - momentum) * rmean[rm_off + ch] + momentum * mu;
        rvar[rv_off + ch] = (1.0f - momentum) * rvar[rv_off + ch] + momentum * unbiased;
    }
    return inv;
}

/* The values of one chunk: first element (relative to the tensor), count, channel and
 * partial index. */
typedef struct bn_chunk {
    int first, len, ch, slot;
} bn_chunk;

inline bn_chunk bn_chunk_of(int gid, int c, int hw, int chunk, int chunks) {
    int kc = gid % chunks, plane = gid / chunks;
    int sample = plane / c;
    bn_chunk r;
    r.ch = plane - sample * c;
    r.first = plane * hw + kc * chunk;
    r.len = min(chunk, hw - kc * chunk);
    r.slot = sample * chunks + kc;
    return r;
}

/* A software prefetch of the element 256 floats (16 cache lines) ahead of p in a stream
 * (CPU compilers only, see CC_PREFETCH; past a chunk's end it fetches the next
 * chunk's start, or nothing useful): the kernels below stalled on their loads. The
 * apply kernels also prefetch the lines they will write as far ahead (CC_PREFETCH_W). */
#define BN_PF(p) CC_PREFETCH((p) + 256)

/* The reduction kernels' work-items each own BN_IL consecutive chunks (gid * BN_IL ...),
 * their compensated sums interleaved: one chunk's chain of dependent adds is what bounded
 * a work-item, and the chains of independent chunks overlap. Each chunk's sums are the
 * same operations in the same order as with one chunk per work-item, so every bit of the
 * result is too. The host launches ceil(n * c * chunks / BN_IL) work-items. */
#define BN_IL CC_BN_CHUNKS_PER_ITEM

/* The chunks of work-item wid: ck[j] for gid = wid * BN_IL + j; len 0 past the last. */
inline int bn_chunks_of(int wid, int total, int c, int hw, int chunk, int chunks,
                        bn_chunk ck[BN_IL]) {
    int maxlen = 0;
    for (int j = 0; j < BN_IL; j++) {
        const int gid = wid * BN_IL + j;
        if (gid < total) {
            ck[j] = bn_chunk_of(gid, c, hw, chunk, chunks);
        } else {
            ck[j].first = ck[j].ch = ck[j].slot = 0;
            ck[j].len = 0;
        }
        maxlen = max(maxlen, ck[j].len);
    }
    return maxlen;
}

/* The partial sums of x over the chunks ck (maxlen: the longest): sum[j] of chunk j. Each
 * reduction below is written once, for the chunk kernels and the whole-channel kernels
 * (batchnorm_channel.h) alike: the same operations in the same order, so both give the
 * same bits. x points at the tensor's first element, end past its last. tight: a chunk's
 * last vector reads nothing past the chunk (element by element where the masked vector
 * load would; the same values): the whole-channel kernels' other work-items may be
 * writing there (in place) while this one reads. The helpers are always inlined: each
 * kernel's constant arguments (tight, res) then fold away and their arrays stay in
 * registers (called, the chunk kernels' sweeps took up to 3.5x as long). */
#define BN_END(p, end, ck, tight) ((tight) ? (p) + (ck).first + (ck).len : (end))

/* With mu NULL the partial sums of x over the chunks ck, else of (x - mu[j])^2 (the
 * squared deviations from chunk j's mean). */
inline __attribute__((always_inline)) void bn_sums(__global const float *x,
                                                   __global const float *end, const bn_chunk *ck,
                                                   int maxlen, int tight, const float *mu,
                                                   float *sum) {
    float16 s[BN_IL], comp[BN_IL];
    for (int j = 0; j < BN_IL; j++)
        s[j] = comp[j] = (float16)(0.0f);
    int16 mask;
    for (int i = 0; i < maxlen; i += 16) {
#pragma unroll
        for (int j = 0; j < BN_IL; j++)
            if (i < ck[j].len) {
                BN_PF(x + ck[j].first + i);
                float16 v = cc_load16_part(x + ck[j].first + i, ck[j].len - i,
                                           BN_END(x, end, ck[j], tight), &mask);
                if (mu) {
                    v = select((float16)(0.0f), v - mu[j], mask);
                    v = v * v;
                }
                bn_kahan16(&s[j], &comp[j], v);
            }
    }
    for (int j = 0; j < BN_IL; j++)
        sum[j] = bn_lanes(s[j], comp[j]);
}

/* The partial sums of the masked dy (sum1) and of it times x - mu (sum2) over the chunks
 * ck, with chunk j's statistics and affine parameters. */
inline __attribute__((always_inline)) void
bn_bwd_sums(__global const float *x, __global const float *end, __global const float *dy,
            __global const float *dend, const bn_chunk *ck, int maxlen, int tight, const float *mu,
            const float *inv, const float *ga, const float *be, int act, float *sum1, float *sum2) {
    float16 s1[BN_IL], c1[BN_IL], s2[BN_IL], c2[BN_IL];
    for (int j = 0; j < BN_IL; j++)
        s1[j] = c1[j] = s2[j] = c2[j] = (float16)(0.0f);
    int16 mask;
    for (int i = 0; i < maxlen; i += 16) {
#pragma unroll
        for (int j = 0; j < BN_IL; j++)
            if (i < ck[j].len) {
                /* lanes past the chunk: dy and x 0, so g is 0 whatever the mask */
                const int rem = ck[j].len - i;
                BN_PF(x + ck[j].first + i);
                BN_PF(dy + ck[j].first + i);
                float16 xv =
                    cc_load16_part(x + ck[j].first + i, rem, BN_END(x, end, ck[j], tight), &mask);
                float16 g = bn_mask16(cc_load16_part(dy + ck[j].first + i, rem,
                                                     BN_END(dy, dend, ck[j], tight), &mask),
                                      bn_affine16(xv, mu[j], inv[j], ga[j], be[j]), act);
                float16 d = select((float16)(0.0f), xv - mu[j], mask);
                bn_kahan16(&s1[j], &c1[j], g);
                bn_kahan16(&s2[j], &c2[j], g * d);
            }
    }
    for (int j = 0; j < BN_IL; j++) {
        sum1[j] = bn_lanes(s1[j], c1[j]);
        sum2[j] = bn_lanes(s2[j], c2[j]);
    }
}

/* y = act(bn(x) (+ res)) over len elements from xp, yp, rp (res: NULL or not). */
inline __attribute__((always_inline)) void
bn_apply_span(__global const float *xp, __global float *yp, __global const float *rp, int len,
              float mu, float inv, float g, float b, int act) {
    int i = 0;
    for (; i + 16 <= len; i += 16) {
        BN_PF(xp + i);
        CC_PREFETCH_W(yp + i + 256);
        float16 v = bn_affine16(vload16(0, xp + i), mu, inv, g, b);
        if (rp) {
            BN_PF(rp + i);
            v += vload16(0, rp + i);
        }
        vstore16(bn_act16(v, act), 0, yp + i);
    }
    for (; i < len; i++) {
        float v = bn_affine(xp[i], mu, inv, g, b);
        if (rp) v += rp[i];
        yp[i] = bn_act(v, act);
    }
}

/* dx over len elements from xp, gp (dy), dp: a = sum_dy / m, b = sum_dyxhat / m,
 * gi = gamma * invstd. */
inline __attribute__((always_inline)) void
bn_dx_span(__global const float *xp, __global const float *gp, __global float *dp, int len,
           float mu, float inv, float g, float be, float a, float b, float gi, int act) {
    int i = 0;
    for (; i + 16 <= len; i += 16) {
        BN_PF(xp + i);
        BN_PF(gp + i);
        CC_PREFETCH_W(dp + i + 256);
        float16 xv = vload16(0, xp + i), xhat = (xv - mu) * inv;
        float16 gv = bn_mask16(vload16(0, gp + i), bn_affine16(xv, mu, inv, g, be), act);
        vstore16(gi * (gv - a - xhat * b), 0, dp + i);
    }
    for (; i < len; i++) {
        float xhat = (xp[i] - mu) * inv;
        dp[i] = gi * (bn_mask(gp[i], bn_affine(xp[i], mu, inv, g, be), act) - a - xhat * b);
    }
}

__kernel void bn_part_sum(__global const float *x, int x_off, int n, int c, int hw, int chunk,
                          int chunks, __global float *part) {
    const int total = n * c * chunks, wid = get_global_id(0);
    if (wid * BN_IL >= total) return;
    bn_chunk ck[BN_IL];
    const int maxlen = bn_chunks_of(wid, total, c, hw, chunk, chunks, ck);
    float sum[BN_IL];
    bn_sums(x + x_off, x + x_off + n * c * hw, ck, maxlen, 0, NULL, sum);
    for (int j = 0; j < BN_IL; j++)
        if (ck[j].len) part[ck[j].ch * n * chunks + ck[j].slot] = sum[j];
}

__kernel void bn_mean_final(__global const float *part, int n, int c, int hw, int chunks,
                            __global float *mean, int mean_off) {
    int ch = get_global_id(0);
    if (ch >= c) return;
    int P = n * chunks;
    mean[mean_off + ch] = bn_total(part + ch * P, P) / (float)(n * hw);
}

__kernel void bn_part_sqdev(__global const float *x, int x_off, int n, int c, int hw, int chunk,
                            int chunks, __global const float *mean, int mean_off,
                            __global float *part) {
    const int total = n * c * chunks, wid = get_global_id(0);
    if (wid * BN_IL >= total) return;
    bn_chunk ck[BN_IL];
    const int maxlen = bn_chunks_of(wid, total, c, hw, chunk, chunks, ck);
    const int P = n * chunks;
    float mu[BN_IL], sum[BN_IL];
    for (int j = 0; j < BN_IL; j++)
        mu[j] = mean[mean_off + ck[j].ch];
    bn_sums(x + x_off, x + x_off + n * c * hw, ck, maxlen, 0, mu, sum);
    for (int j = 0; j < BN_IL; j++)
        if (ck[j].len) part[c * P + ck[j].ch * P + ck[j].slot] = sum[j];
}

__kernel void bn_var_final(__global const float *part, int n, int c, int hw, int chunks, float eps,
                           __global const float *mean, int mean_off, __global float *invstd,
                           int inv_off, int update_running, __global float *rmean, int rm_off,
                           __global float *rvar, int rv_off, float momentum) {
    int ch = get_global_id(0);
    if (ch >= c) return;
    int P = n * chunks, m = n * hw;
    bn_store_var(mean[mean_off + ch], bn_total(part + c * P + ch * P, P), m, eps, ch, invstd,
                 inv_off, update_running, rmean, rm_off, rvar, rv_off, momentum);
}

/* In place (y == x) is fine: every element is read before it is written, by one
 * work-item. */
__kernel void bn_apply_chunk(__global const float *x, int x_off, __global float *y, int y_off,
                             int n, int c, int hw, int chunk, int chunks,
                             __global const float *mean, int mean_off, __global const float *sd,
                             int sd_off, int from_var, float eps, __global const float *gamma,
                             int g_off, __global const float *beta, int b_off, int act,
                             __global const float *res, int res_off) {
    int gid = get_global_id(0);
    if (gid >= n * c * chunks) return;
    bn_chunk ck = bn_chunk_of(gid, c, hw, chunk, chunks);
    int ch = ck.ch;
    float inv = from_var ? 1.0f / sqrt(sd[sd_off + ch] + eps) : sd[sd_off + ch];
    float g = gamma ? gamma[g_off + ch] : 1.0f;
    float b = beta ? beta[b_off + ch] : 0.0f;
    float mu = mean[mean_off + ch];
    /* with res, act(y + res): the residual Add (and its ReLU) of a training plan */
    bn_apply_span(x + x_off + ck.first, y + y_off + ck.first, res ? res + res_off + ck.first : NULL,
                  ck.len, mu, inv, g, b, act);
}

__kernel void bn_bwd_part(__global const float *x, int x_off, __global const float *dy, int dy_off,
                          int n, int c, int hw, int chunk, int chunks, __global const float *mean,
                          int mean_off, __global const float *invstd, int inv_off,
                          __global const float *gamma, int g_off, __global const float *beta,
                          int b_off, __global float *part, int act) {
    const int total = n * c * chunks, wid = get_global_id(0);
    if (wid * BN_IL >= total) return;
    bn_chunk ck[BN_IL];
    const int maxlen = bn_chunks_of(wid, total, c, hw, chunk, chunks, ck);
    const int P = n * chunks;
    float mu[BN_IL], inv[BN_IL], ga[BN_IL], be[BN_IL], sum1[BN_IL], sum2[BN_IL];
    for (int j = 0; j < BN_IL; j++) {
        const int ch = ck[j].ch;
        mu[j] = mean[mean_off + ch];
        inv[j] = invstd[inv_off + ch];
        ga[j] = gamma ? gamma[g_off + ch] : 1.0f;
        be[j] = beta ? beta[b_off + ch] : 0.0f;
    }
    bn_bwd_sums(x + x_off, x + x_off + n * c * hw, dy + dy_off, dy + dy_off + n * c * hw, ck,
                maxlen, 0, mu, inv, ga, be, act, sum1, sum2);
    for (int j = 0; j < BN_IL; j++)
        if (ck[j].len) {
            part[ck[j].ch * P + ck[j].slot] = sum1[j];
            part[c * P + ck[j].ch * P + ck[j].slot] = sum2[j];
        }
}

__kernel void bn_bwd_final(__global const float *part, int n, int c, int chunks,
                           __global const float *invstd, int inv_off, __global float *sum_dy,
                           int sdy_off, __global float *sum_dyxhat, int sdx_off) {
    int ch = get_global_id(0);
    if (ch >= c) return;
    int P = n * chunks;
    sum_dy[sdy_off + ch] = bn_total(part + ch * P, P);
    sum_dyxhat[sdx_off + ch] = bn_total(part + c * P + ch * P, P) * invstd[inv_off + ch];
}

/* dx may be x or dy itself: every element is read before it is written, by one
 * work-item. */
__kernel void bn_bwd_dx_chunk(__global const float *x, int x_off, __global const float *dy,
                              int dy_off, __global float *dx, int dx_off, int n, int c, int hw,
                              int chunk, int chunks, __global const float *mean, int mean_off,
                              __global const float *invstd, int inv_off,
                              __global const float *gamma, int g_off, __global const float *sum_dy,
                              int sdy_off, __global const float *sum_dyxhat, int sdx_off,
                              __global const float *beta, int b_off, int act) {
    int gid = get_global_id(0);
    if (gid >= n * c * chunks) return;
    bn_chunk ck = bn_chunk_of(gid, c, hw, chunk, chunks);
    int ch = ck.ch;
    float inv = invstd[inv_off + ch], mu = mean[mean_off + ch];
    float fm = (float)(n * hw);
    float g = gamma ? gamma[g_off + ch] : 1.0f, be = beta ? beta[b_off + ch] : 0.0f;
    float a = sum_dy[sdy_off + ch] / fm, b = sum_dyxhat[sdx_off + ch] / fm, gi = g * inv;
    bn_dx_span(x + x_off + ck.first, dy + dy_off + ck.first, dx + dx_off + ck.first, ck.len, mu,
               inv, g, be, a, b, gi, act);
}

#include "batchnorm_channel.h"
