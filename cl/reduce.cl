/* Reductions along arbitrary axes (ReduceSum / ReduceMean / ReduceMax) and local response
 * normalisation across channels (host side: lib/ops/reduce.c).
 *
 * No defines.
 *
 * reduce_fwd: x is a dense tensor seen as up to 4 kept and up to 4 reduced groups of dims
 *   (adjacent dims of the same kind merged by the host); kept_size/kept_stride give each
 *   kept group's extent and element stride in x (outermost in .x; unused groups size 1),
 *   red_size/red_stride the same for the reduced groups, nred = their product. y (nout)
 *   is dense in the kept dims' order. One work-item per output element walks its nred
 *   inputs in a fixed order (Kahan sums), so results are identical run to run.
 *   op: a CC_REDUCE_ID_* (clcnn_ids.h); scale multiplies the mean's sum (1 / nred).
 *   Max and min propagate NaN. Log-sum-exp takes two passes (the max, then the sum).
 * lrn_fwd: x, y (n, c, inner) dense; one work-item per element:
 *   y = x / (bias + alpha / size * sum of x^2 over channels
 *            c - (size - 1) / 2 .. c + size / 2, clipped)^beta. */
#include "common.h"

inline void kahan_add(float *s, float *comp, float v) {
    float y = v - *comp;
    float t = *s + y;
    *comp = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

/* Element offset of flat index i over the 4 groups (size, stride), .w innermost. */
inline int group_offset(int i, int4 size, int4 stride) {
    int off = (i % size.w) * stride.w;
    i /= size.w;
    off += (i % size.z) * stride.z;
    i /= size.z;
    off += (i % size.y) * stride.y;
    i /= size.y;
    return off + i * stride.x;
}

/* The value an input element contributes (|x|, x^2, exp(x - shift) or x itself). */
inline float reduce_pre(float v, int op, float shift) {
    switch (op) {
    case CC_REDUCE_ID_SUM_SQUARE:
    case CC_REDUCE_ID_L2:
        return v * v;
    case CC_REDUCE_ID_L1:
        return fabs(v);
    case CC_REDUCE_ID_LOG_SUM_EXP:
        return exp(v - shift);
    default:
        return v;
    }
}

inline float nan_max(float acc, float v) {
    return (v > acc || isnan(v)) && !isnan(acc) ? v : acc;
}

inline float nan_min(float acc, float v) {
    return (v < acc || isnan(v)) && !isnan(acc) ? v : acc;
}

__kernel void reduce_fwd(__global const float *x, int x_off, __global float *y, int y_off, int nout,
                         int4 kept_size, int4 kept_stride, int4 red_size, int4 red_stride, int nred,
                         int op, float scale) {
    int gid = get_global_id(0);
    if (gid >= nout) return;
    __global const float *xb = x + x_off + group_offset(gid, kept_size, kept_stride);
    /* one reduced group (the host puts it in .x): no index arithmetic per element */
    int one = red_size.y == 1 && red_size.z == 1 && red_size.w == 1;
    float shift = 0.0f;
    if (op == CC_REDUCE_ID_LOG_SUM_EXP) {
        shift = -INFINITY;
        for (int i = 0; i < nred; i++)
            shift =
                nan_max(shift, xb[one ? i * red_stride.x : group_offset(i, red_size, red_stride)]);
        if (!isfinite(shift)) shift = isnan(shift) ? shift : 0.0f; /* all -inf: log 0 */
    }
    float acc = op == CC_REDUCE_ID_MAX    ? -INFINITY
                : op == CC_REDUCE_ID_MIN  ? INFINITY
                : op == CC_REDUCE_ID_PROD ? 1.0f
                                          : 0.0f;
    float comp = 0.0f;
    for (int i = 0; i < nred; i++) {
        float v = xb[one ? i * red_stride.x : group_offset(i, red_size, red_stride)];
        if (op == CC_REDUCE_ID_MAX)
            acc = nan_max(acc, v);
        else if (op == CC_REDUCE_ID_MIN)
            acc = nan_min(acc, v);
        else if (op == CC_REDUCE_ID_PROD)
            acc *= v;
        else
            kahan_add(&acc, &comp, reduce_pre(v, op, shift));
    }
    if (op == CC_REDUCE_ID_MEAN) acc *= scale;
    if (op == CC_REDUCE_ID_L2) acc = sqrt(acc);
    if (op == CC_REDUCE_ID_LOG_SUM) acc = log(acc);
    if (op == CC_REDUCE_ID_LOG_SUM_EXP) acc = shift + log(acc);
    y[y_off + gid] = acc;
}

__kernel void lrn_fwd(__global const float *x, int x_off, __global float *y, int y_off, int n,
                      int c, int inner, int size, float alpha, float beta, float bias) {
    int gid = get_global_id(0);
    if (gid >= n * c * inner) return;
    int ch = (gid / inner) % c;
    __global const float *xc = x + x_off + (gid - ch * inner); /* channel 0 of this column */
    int lo = max(ch - (size - 1) / 2, 0), hi = min(ch + size / 2, c - 1);
    float s = 0.0f;
    for (int j = lo; j <= hi; j++) {
        float v = xc[j * inner];
        s += v * v;
    }
    y[y_off + gid] = x[x_off + gid] / pow(bias + alpha / (float)size * s, beta);
}
