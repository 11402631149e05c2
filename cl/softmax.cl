/* Softmax, log-softmax, fused softmax cross-entropy and mean squared error (host side:
 * lib/ops/softmax.c).
 *
 * Defines:
 *   WG  work-group size of the reduction kernels (a power of two; the host passes it and
 *       launches exactly WG work-items per group). Sums run per work-item in a fixed order,
 *       then as a fixed tree in local memory, so results are identical run to run.
 *
 * Buffers (contiguous, each with an element offset *_off):
 *   softmax_fwd: x, y (n, c, inner) float, inner = h*w (1 for (n, c)); one work-item per
 *     (sample, position) walking the c classes, stride inner.
 *   xent_rows: logits (n, k) float, labels (n) int32, dlogits (n, k) float (written when
 *     write_grad), rowloss (n) float scratch; one work-item per sample.
 *   mse_partial: pred, target, dpred (numel) float, partial (groups) float scratch;
 *     work-item g handles elements g, g + global size, ... in order.
 *   sum_final: in (len) float, out (1) float = sum(in) / denom; a single work-group. */
#include "common.h"

#ifndef WG
#define WG 256 // work-items per reduction group
#endif
#if (WG & (WG - 1)) != 0
#error "WG must be a power of two"
#endif

/* Sum of v over the work-group, in a fixed tree order; valid in work-item 0. */
inline float wg_sum(__local float *buf, float v) {
    int lid = get_local_id(0);
    buf[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) buf[lid] += buf[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return buf[0];
}

/* Compensated (Kahan) accumulation: the per-work-item error does not grow with length.
 * Once the sum is infinite the compensation is dropped, so inf stays inf (not NaN). */
inline void kahan_add(float *s, float *comp, float v) {
    float y = v - *comp;
    float t = *s + y;
    *comp = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

__kernel void softmax_fwd(__global const float *x, int x_off, __global float *y, int y_off, int n,
                          int c, int inner, int log_out) {
    int gid = get_global_id(0);
    if (gid >= n * inner) return;
    int pos = gid % inner;
    int base = (gid / inner) * c * inner + pos;
    __global const float *xr = x + x_off + base;
    __global float *yr = y + y_off + base;
    float m = -INFINITY;
    for (int j = 0; j < c; j++)
        m = fmax(m, xr[j * inner]);
    float s = 0.0f;
    for (int j = 0; j < c; j++)
        s += exp(xr[j * inner] - m);
    if (log_out) {
        float ls = log(s);
        for (int j = 0; j < c; j++)
            yr[j * inner] = (xr[j * inner] - m) - ls;
    } else {
        float inv = 1.0f / s;
        for (int j = 0; j < c; j++)
            yr[j * inner] = exp(xr[j * inner] - m) * inv;
    }
}

/* rowloss[i] = log(sum_j exp(x_ij)) - x_i,label = (m - x_label) + log(sum exp(x - m)), which
 * keeps full precision even for logits of 1e4. A label outside 0..k-1 gives NaN (loss and,
 * when written, the dlogits row). */
__kernel void xent_rows(__global const float *logits, int l_off, __global const int *labels,
                        int lab_off, __global float *dlogits, int d_off, int write_grad,
                        __global float *rowloss, int n, int k) {
    int i = get_global_id(0);
    if (i >= n) return;
    __global const float *xr = logits + l_off + i * k;
    int label = labels[lab_off + i];
    float m = -INFINITY;
    for (int j = 0; j < k; j++)
        m = fmax(m, xr[j]);
    float s = 0.0f;
    for (int j = 0; j < k; j++)
        s += exp(xr[j] - m);
    int ok = label >= 0 && label < k;
    rowloss[i] = ok ? (m - xr[label]) + log(s) : NAN;
    if (!write_grad) return;
    __global float *dr = dlogits + d_off + i * k;
    float inv = 1.0f / s, fn = (float)n;
    for (int j = 0; j < k; j++)
        dr[j] = ok ? (exp(xr[j] - m) * inv - (j == label ? 1.0f : 0.0f)) / fn : NAN;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
mse_partial(__global const float *pred, int p_off, __global const float *target, int t_off,
            __global float *dpred, int d_off, int write_grad, __global float *partial, int numel) {
    __local float buf[WG];
    float s = 0.0f, comp = 0.0f, scale = 2.0f / (float)numel;
    for (int i = get_global_id(0); i < numel; i += get_global_size(0)) {
        float d = pred[p_off + i] - target[t_off + i];
        kahan_add(&s, &comp, d * d);
        if (write_grad) dpred[d_off + i] = scale * d;
    }
    float total = wg_sum(buf, s);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = total;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
sum_final(__global const float *in, int len, __global float *out, int out_off, float denom) {
    __local float buf[WG];
    float s = 0.0f, comp = 0.0f;
    for (int i = get_local_id(0); i < len; i += WG)
        kahan_add(&s, &comp, in[i]);
    float total = wg_sum(buf, s);
    if (get_local_id(0) == 0) out[out_off] = total / denom;
}
