/* One general strided gather of up to 4 dims: Transpose, Slice, Pad, Expand, Tile, and the
 * parts of Concat, Split and Gather are all this kernel with other strides and offsets.
 *
 * Defines: none (shapes, strides and the mode are arguments: one program for every use).
 * Buffers: x and y are float arrays; their tensors start at element offsets x_off, y_off.
 * They must not overlap.
 *
 * The box `shape` (s0, s1, s2, s3), outermost first, is what is written: for every
 * coordinate o of the box,
 *     y[y_off + sum_d o_d * ystride_d] = x[x_off + sum_d c_d * xstride_d]
 *     with c_d = start_d + o_d * step_d,
 * when 0 <= c_d < lim_d for every d. Otherwise, by mode (cl/clcnn_ids.h): CONSTANT writes
 * `value`; EDGE, REFLECT and WRAP map c_d into [0, lim_d) first. lim_d >= 1; a stride of
 * 0 broadcasts (Expand).
 *
 * Work-items: dim 0 = o3 (the innermost, contiguous for dense outputs), dim 1 = o2,
 * dim 2 = o0 * s1 + o1; the global size may be padded (items past the box return). */
#include "common.h"

/* c mapped into [0, lim) by mode; *inside = 0 when c is outside and mode is CONSTANT. */
inline long cc_copy_coord(long c, long lim, int mode, int *inside) {
    if (c >= 0 && c < lim) return c;
    if (mode == CLCNN_COPY_ID_EDGE) return c < 0 ? 0 : lim - 1;
    if (mode == CLCNN_COPY_ID_WRAP) {
        c %= lim;
        return c < 0 ? c + lim : c;
    }
    if (mode == CLCNN_COPY_ID_REFLECT) {
        if (lim == 1) return 0;
        long period = 2 * (lim - 1);
        c %= period;
        if (c < 0) c += period;
        return c < lim ? c : period - c;
    }
    *inside = 0;
    return 0;
}

__kernel void copy_nd(__global const float *x, ulong x_off, __global float *y, ulong y_off,
                      int4 shape, long4 ystride, long4 xstride, long4 start, long4 step, long4 lim,
                      int mode, float value) {
    long o3 = get_global_id(0), o2 = get_global_id(1), z = get_global_id(2);
    if (o3 >= shape.s3 || o2 >= shape.s2 || z >= (long)shape.s0 * shape.s1) return;
    long o1 = z % shape.s1, o0 = z / shape.s1;
    int inside = 1;
    long c0 = cc_copy_coord(start.s0 + o0 * step.s0, lim.s0, mode, &inside);
    long c1 = cc_copy_coord(start.s1 + o1 * step.s1, lim.s1, mode, &inside);
    long c2 = cc_copy_coord(start.s2 + o2 * step.s2, lim.s2, mode, &inside);
    long c3 = cc_copy_coord(start.s3 + o3 * step.s3, lim.s3, mode, &inside);
    long yi = o0 * ystride.s0 + o1 * ystride.s1 + o2 * ystride.s2 + o3 * ystride.s3;
    long xi = c0 * xstride.s0 + c1 * xstride.s1 + c2 * xstride.s2 + c3 * xstride.s3;
    y[y_off + yi] = inside ? x[x_off + xi] : value;
}
