/* Element-wise binary ops with NumPy broadcasting (ONNX Add, Sub, Mul, Div, Pow, Max,
 * Min, PRelu): y = op(a, b) over an output of at most 4 dims (d0, d1, d2, d3).
 *
 * Defines: BIN_OP, the op (a CLCNN_BIN_ID_* from clcnn_ids.h) fixed at build time, or -1
 * (default) for the run-time argument op. A fixed op lets CPU compilers vectorise.
 * Buffers: y is dense (d0, d1, d2, d3) from y_off. a and b are read at
 * a_off + i0*as0 + i1*as1 + i2*as2 + i3*as3 (likewise b): a stride of 0 broadcasts that
 * dim. The host merges dims first, so equal shapes arrive as one dim (d3) with strides
 * 1, a scalar with strides 0, and a per-channel operand ((N,C,H,W) by (N,C,1,1)) as
 * (N*C, H*W) with strides (1, 0).
 * Work-items: gid0 -> i3, gid1 -> i2, gid2 -> i0*d1 + i1 (gws rounded up to the
 * work-group size; the kernel bounds-checks). y may be a or b when that operand has
 * y's shape (each work-item reads its elements before writing its own).
 *
 * The common patterns have kernels of their own, whose loads are contiguous (CPU
 * compilers vectorise them; the general kernel's run-time strides defeat that):
 * binary_flat (equal shapes, or one operand a single element) and binary_rows (a dense
 * (R, K) operand with a vector indexed by row modulo vr) and binary_cols (by column).
 *
 * NaN propagates through Max and Min (np.maximum / np.minimum, not fmax / fmin). */
#include "common.h"

#ifndef BIN_OP
#define BIN_OP -1 /* a CLCNN_BIN_ID_*: the op, fixed; -1: the kernel argument op */
#endif

/* op(a, b) on values of type T (float or float16): the op fixed by BIN_OP, else the
 * argument. Max and Min keep a NaN of a (and take b's otherwise), as np.maximum does. */
#define BINARY_OP(T, NAME)                                                                         \
    inline T NAME(int op, T a, T b) {                                                              \
        if (BIN_OP >= 0) op = BIN_OP;                                                              \
        switch (op) {                                                                              \
        case CLCNN_BIN_ID_ADD:                                                                     \
            return a + b;                                                                          \
        case CLCNN_BIN_ID_SUB:                                                                     \
            return a - b;                                                                          \
        case CLCNN_BIN_ID_MUL:                                                                     \
            return a * b;                                                                          \
        case CLCNN_BIN_ID_DIV:                                                                     \
            return a / b;                                                                          \
        case CLCNN_BIN_ID_POW:                                                                     \
            return pow(a, b);                                                                      \
        case CLCNN_BIN_ID_MAX:                                                                     \
            return select(b, a, (a > b) | isnan(a));                                               \
        case CLCNN_BIN_ID_MIN:                                                                     \
            return select(b, a, (a < b) | isnan(a));                                               \
        case CLCNN_BIN_ID_PRELU:                                                                   \
            return select(a, b * a, a < (T)(0.0f));                                                \
        default:                                                                                   \
            return a;                                                                              \
        }                                                                                          \
    }
BINARY_OP(float, cc_binary_op)
BINARY_OP(float16, cc_binary_op16)

__kernel void binary_fwd(__global const float *a, ulong a_off, uint as0, uint as1, uint as2,
                         uint as3, __global const float *b, ulong b_off, uint bs0, uint bs1,
                         uint bs2, uint bs3, __global float *y, ulong y_off, uint d1, uint d2,
                         uint d3, uint d01, int op) {
    size_t i3 = get_global_id(0), i2 = get_global_id(1), i01 = get_global_id(2);
    if (i3 >= d3 || i2 >= d2 || i01 >= d01) return;
    size_t i0 = i01 / d1, i1 = i01 - i0 * d1;
    size_t ai = a_off + i0 * as0 + i1 * as1 + i2 * as2 + i3 * as3;
    size_t bi = b_off + i0 * bs0 + i1 * bs1 + i2 * bs2 + i3 * bs3;
    y[y_off + (i01 * d2 + i2) * d3 + i3] = cc_binary_op(op, a[ai], b[bi]);
}

/* y[i] = op(a[i], b[i]) over n elements; a_scalar / b_scalar: that operand is one element. */
__kernel void binary_flat(__global const float *a, ulong a_off, __global const float *b,
                          ulong b_off, __global float *y, ulong y_off, ulong n, int op,
                          int a_scalar, int b_scalar) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float r;
    if (a_scalar)
        r = cc_binary_op(op, a[a_off], b[b_off + i]);
    else if (b_scalar)
        r = cc_binary_op(op, a[a_off + i], b[b_off]);
    else
        r = cc_binary_op(op, a[a_off + i], b[b_off + i]);
    y[y_off + i] = r;
}

/* y (R, K) = op(x, v) (or op(v, x) with v_first): x dense (R, K), v[r % vr] per row
 * (the squeeze-excitation scale, per-channel operands). gid0 -> 16 consecutive k (one
 * float16; the row's last, partial vector element by element), gid1 -> r. y may be x.
 * One element per work-item left the scale far below memory bandwidth on POCL (the commit
 * that vectorised it has the numbers). */
__kernel void binary_rows(__global const float *x, ulong x_off, __global const float *v,
                          ulong v_off, __global float *y, ulong y_off, uint K, uint R, uint vr,
                          int v_first, int op) {
    size_t k = get_global_id(0) * 16, r = get_global_id(1);
    if (k >= K || r >= R) return;
    float vv = v[v_off + r % vr];
    size_t i = r * K + k;
    if (k + 16 <= K) {
        float16 xv = vload16(0, x + x_off + i), vv16 = (float16)(vv);
        vstore16(v_first ? cc_binary_op16(op, vv16, xv) : cc_binary_op16(op, xv, vv16), 0,
                 y + y_off + i);
        return;
    }
    for (; k < K; k++, i++) {
        float xv = x[x_off + i];
        y[y_off + i] = v_first ? cc_binary_op(op, vv, xv) : cc_binary_op(op, xv, vv);
    }
}

/* The same with v[k] per column. */
__kernel void binary_cols(__global const float *x, ulong x_off, __global const float *v,
                          ulong v_off, __global float *y, ulong y_off, uint K, uint R, uint vr,
                          int v_first, int op) {
    size_t k = get_global_id(0), r = get_global_id(1);
    if (k >= K || r >= R) return;
    float vv = v[v_off + k];
    size_t i = r * K + k;
    float xv = x[x_off + i];
    y[y_off + i] = v_first ? cc_binary_op(op, vv, xv) : cc_binary_op(op, xv, vv);
}
