/* Optimizer updates, in place on the parameters: one work-item per element (gws = n
 * rounded up to the work-group size; kernels bounds-check i < n).
 *
 * Defines: none.
 * Buffers: p (parameters), g (gradients), v (SGD velocity / Adam second moment) and
 * m (Adam first moment) are contiguous float arrays of n elements starting at their
 * element offsets (*_off). p, v and m are read and written; g is read.
 *
 * Semantics are PyTorch's (torch.optim.SGD without dampening/nesterov, torch.optim.Adam
 * without amsgrad), weight decay being L2 decay added to the gradient:
 *   SGD:  g' = g + wd*p;  v = momentum*v + g';  p -= lr*v     (sgd_plain: p -= lr*g')
 *   Adam: g' = g + wd*p;  m = b1*m + (1-b1)*g';  v = b2*v + (1-b2)*g'^2;
 *         p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
 *   with step_size = lr / (1 - b1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - b2^t), computed on
 *   the host in double. */
#include "common.h"

__kernel void sgd_plain(__global float *p, ulong p_off, __global const float *g, ulong g_off,
                        ulong n, float lr, float wd) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float pv = p[p_off + i];
    float gv = g[g_off + i] + wd * pv;
    p[p_off + i] = pv - lr * gv;
}

__kernel void sgd_momentum(__global float *p, ulong p_off, __global const float *g, ulong g_off,
                           __global float *v, ulong v_off, ulong n, float lr, float momentum,
                           float wd) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float pv = p[p_off + i];
    float gv = g[g_off + i] + wd * pv;
    float vel = momentum * v[v_off + i] + gv;
    v[v_off + i] = vel;
    p[p_off + i] = pv - lr * vel;
}

__kernel void adam(__global float *p, ulong p_off, __global const float *g, ulong g_off,
                   __global float *m, ulong m_off, __global float *v, ulong v_off, ulong n,
                   float step_size, float beta1, float beta2, float eps, float wd,
                   float inv_sqrt_bc2) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float pv = p[p_off + i];
    float gv = g[g_off + i] + wd * pv;
    float mv = beta1 * m[m_off + i] + (1.0f - beta1) * gv;
    float vv = beta2 * v[v_off + i] + (1.0f - beta2) * gv * gv;
    m[m_off + i] = mv;
    v[v_off + i] = vv;
    p[p_off + i] = pv - step_size * mv / (sqrt(vv) * inv_sqrt_bc2 + eps);
}
