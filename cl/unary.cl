/* Element-wise unary ops (ONNX Sigmoid, Tanh, HardSigmoid, HardSwish, Clip, Exp, Log,
 * Sqrt, Neg, Abs, Reciprocal, Floor, Ceil): one work-item per element (gws = n rounded
 * up to the work-group size; the kernel bounds-checks i < n).
 *
 * Defines: none. The op is a run-time argument (CLCNN_UN_ID_* from clcnn_ids.h), so one
 * program serves the whole family; alpha and beta are its parameters (see the ids).
 * Buffers: x and y are contiguous float arrays of n elements starting at their element
 * offsets. y may be x (in place): each work-item reads its element before writing it.
 *
 * NaN propagates (clamps are written with comparisons, not fmin/fmax, which drop NaN).
 * Clip with alpha > beta gives beta everywhere: min(max(x, lo), hi), as ONNX defines. */
#include "common.h"

inline float cc_clamp_nan(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

__kernel void unary_fwd(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                        ulong n, int op, float alpha, float beta) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = x[x_off + i];
    switch (op) {
    case CLCNN_UN_ID_SIGMOID:
        v = 1.0f / (1.0f + exp(-v));
        break;
    case CLCNN_UN_ID_TANH:
        v = tanh(v);
        break;
    case CLCNN_UN_ID_HARDSIGMOID:
        v = cc_clamp_nan(alpha * v + beta, 0.0f, 1.0f);
        break;
    case CLCNN_UN_ID_HARDSWISH:
        v = v * cc_clamp_nan(alpha * v + beta, 0.0f, 1.0f);
        break;
    case CLCNN_UN_ID_CLIP:
        v = cc_clamp_nan(v, alpha, beta);
        break;
    case CLCNN_UN_ID_EXP:
        v = exp(v);
        break;
    case CLCNN_UN_ID_LOG:
        v = log(v);
        break;
    case CLCNN_UN_ID_SQRT:
        v = sqrt(v);
        break;
    case CLCNN_UN_ID_NEG:
        v = -v;
        break;
    case CLCNN_UN_ID_ABS:
        v = fabs(v);
        break;
    case CLCNN_UN_ID_RECIPROCAL:
        v = 1.0f / v;
        break;
    case CLCNN_UN_ID_FLOOR:
        v = floor(v);
        break;
    case CLCNN_UN_ID_CEIL:
        v = ceil(v);
        break;
    default:
        break;
    }
    y[y_off + i] = v;
}
