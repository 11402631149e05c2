/* Element-wise unary ops (ONNX Sigmoid, Tanh, HardSigmoid, HardSwish, Clip, Exp, Log,
 * Sqrt, Neg, Abs, Reciprocal, Floor, Ceil; SiLU, x Sigmoid(x), for plans): UN_VEC
 * consecutive elements per work-item as one vector (gws = ceil(n / UN_VEC) rounded up to
 * the work-group size; the work-item of the last, partial vector takes its elements one by
 * one). Vectors, because the math library's vector exp, tanh and log are several times
 * faster on CPUs than the scalar calls of one element per work-item; and the op a define,
 * because with a run-time op LLVM computed several branches for every vector and selected
 * one (the numbers are in the commits that made these choices).
 *
 * Defines: UN_OP  the op, a CLCNN_UN_ID_* from clcnn_ids.h (one program per op used);
 * alpha and beta are its parameters (see the ids).
 * Buffers: x and y are contiguous float arrays of n elements starting at their element
 * offsets. y may be x (in place): each work-item reads its elements before writing them.
 *
 * NaN propagates (clamps are written with comparisons, not fmin/fmax, which drop NaN).
 * Clip with alpha > beta gives beta everywhere: min(max(x, lo), hi), as ONNX defines. */
#include "common.h"

#define UN_VEC 16 /* elements per work-item (lib/ops/eltwise_nd.c's too) */
#ifndef UN_OP
#error "UN_OP (a CLCNN_UN_ID_*) must be defined"
#endif

/* min(max(v, lo), hi) of type T, NaN kept. */
#define CLAMP_NAN(T, v, lo, hi) select(select((v), (T)(lo), (v) < (T)(lo)), (T)(hi), (v) > (T)(hi))

/* UN_OP on v of type T (float or float16); the switch is resolved at compile time. */
#define UNARY_OP(T, NAME)                                                                          \
    inline T NAME(T v, float alpha, float beta) {                                                  \
        switch (UN_OP) {                                                                           \
        case CLCNN_UN_ID_SIGMOID:                                                                  \
            return 1.0f / (1.0f + exp(-v));                                                        \
        case CLCNN_UN_ID_TANH:                                                                     \
            return tanh(v);                                                                        \
        case CLCNN_UN_ID_HARDSIGMOID: {                                                            \
            const T u = alpha * v + beta;                                                          \
            return CLAMP_NAN(T, u, 0.0f, 1.0f);                                                    \
        }                                                                                          \
        case CLCNN_UN_ID_HARDSWISH: {                                                              \
            const T u = alpha * v + beta;                                                          \
            return v * CLAMP_NAN(T, u, 0.0f, 1.0f);                                                \
        }                                                                                          \
        case CLCNN_UN_ID_CLIP: {                                                                   \
            const T u = select(v, (T)(alpha), v < (T)(alpha));                                     \
            return select(u, (T)(beta), u > (T)(beta));                                            \
        }                                                                                          \
        case CLCNN_UN_ID_EXP:                                                                      \
            return exp(v);                                                                         \
        case CLCNN_UN_ID_LOG:                                                                      \
            return log(v);                                                                         \
        case CLCNN_UN_ID_SQRT:                                                                     \
            return sqrt(v);                                                                        \
        case CLCNN_UN_ID_NEG:                                                                      \
            return -v;                                                                             \
        case CLCNN_UN_ID_ABS:                                                                      \
            return fabs(v);                                                                        \
        case CLCNN_UN_ID_RECIPROCAL:                                                               \
            return 1.0f / v;                                                                       \
        case CLCNN_UN_ID_FLOOR:                                                                    \
            return floor(v);                                                                       \
        case CLCNN_UN_ID_CEIL:                                                                     \
            return ceil(v);                                                                        \
        case CLCNN_UN_ID_SILU: /* as Sigmoid, then Mul: the same roundings */                      \
            return CC_SILU(v);                                                                     \
        default:                                                                                   \
            return v;                                                                              \
        }                                                                                          \
    }
UNARY_OP(float16, unary16)
UNARY_OP(float, unary1)

__kernel void unary_fwd(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                        ulong n, float alpha, float beta) {
    const size_t i = get_global_id(0) * UN_VEC;
    if (i >= n) return;
    if (i + UN_VEC <= n) {
        vstore16(unary16(vload16(0, x + x_off + i), alpha, beta), 0, y + y_off + i);
        return;
    }
    for (size_t j = i; j < n; j++)
        y[y_off + j] = unary1(x[x_off + j], alpha, beta);
}
