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
 *   (inference from running statistics).
 * bn_bwd_reduce: one group per channel: sum_dy = sum dy, sum_dyxhat = sum dy * xhat.
 * bn_bwd_dx: one work-item per element,
 *   dx = gamma * invstd * (dy - sum_dy / m - xhat * sum_dyxhat / m). */
#include "common.h"

#ifndef WG
#define WG 256 // work-items per channel in the reduction kernels
#endif
#if (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

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
                       int b_off) {
    int gid = get_global_id(0);
    if (gid >= n * c * hw) return;
    int ch = (gid / hw) % c;
    float inv = from_var ? 1.0f / sqrt(sd[sd_off + ch] + eps) : sd[sd_off + ch];
    float g = gamma ? gamma[g_off + ch] : 1.0f;
    float b = beta ? beta[b_off + ch] : 0.0f;
    y[y_off + gid] = (x[x_off + gid] - mean[mean_off + ch]) * inv * g + b;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
bn_bwd_reduce(__global const float *x, int x_off, __global const float *dy, int dy_off, int n,
              int c, int hw, __global const float *mean, int mean_off, __global const float *invstd,
              int inv_off, __global float *sum_dy, int sdy_off, __global float *sum_dyxhat,
              int sdx_off) {
    __local float buf[WG];
    int ch = get_group_id(0), lid = get_local_id(0);
    int m = n * hw;
    float mu = mean[mean_off + ch];
    float s1 = 0.0f, c1 = 0.0f, s2 = 0.0f, c2 = 0.0f;
    bn_walk w = bn_walk_start(lid, hw);
    for (int e = lid; e < m; e += WG, bn_walk_next(&w, hw)) {
        int i = bn_walk_index(&w, ch, c, hw);
        float g = dy[dy_off + i];
        bn_kahan(&s1, &c1, g);
        bn_kahan(&s2, &c2, g * (x[x_off + i] - mu));
    }
    float t1 = bn_wg_sum(buf, s1);
    float t2 = bn_wg_sum(buf, s2);
    if (lid != 0) return;
    sum_dy[sdy_off + ch] = t1;
    sum_dyxhat[sdx_off + ch] = t2 * invstd[inv_off + ch];
}

__kernel void bn_bwd_dx(__global const float *x, int x_off, __global const float *dy, int dy_off,
                        __global float *dx, int dx_off, int n, int c, int hw,
                        __global const float *mean, int mean_off, __global const float *invstd,
                        int inv_off, __global const float *gamma, int g_off,
                        __global const float *sum_dy, int sdy_off, __global const float *sum_dyxhat,
                        int sdx_off) {
    int gid = get_global_id(0);
    if (gid >= n * c * hw) return;
    int ch = (gid / hw) % c;
    float inv = invstd[inv_off + ch];
    float fm = (float)(n * hw);
    float xhat = (x[x_off + gid] - mean[mean_off + ch]) * inv;
    float g = gamma ? gamma[g_off + ch] : 1.0f;
    dx[dx_off + gid] =
        g * inv *
        (dy[dy_off + gid] - sum_dy[sdy_off + ch] / fm - xhat * (sum_dyxhat[sdx_off + ch] / fm));
}
