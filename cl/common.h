/* Helpers shared by every kernel file (expanded into each .cl at build time). */
#ifndef CLCNN_CL_COMMON_H
#define CLCNN_CL_COMMON_H

#include "clcnn_ids.h"

/* PASS: in files whose kernels the host builds as separate programs per pass (their top
 * comment says which kernels each value holds), the kernels this program holds; 0 = all,
 * so such a file still compiles on its own. */
#ifndef PASS
#define PASS 0
#endif
#if PASS < 0 || PASS > 3
#error "PASS must be 0, 1, 2 or 3"
#endif

/* Declare res[A * B] of type T holding the accumulators acc[A][B] (res[a * B + b]), copied
 * fully unrolled so that acc stays in registers. A convolution's epilogue, which runs once
 * per tile after the whole reduction, walks res in loops kept rolled (`#pragma unroll 1`):
 * compiled once instead of once per accumulator (unrolled, the epilogues were most of a
 * program's compile time). */
#define CC_TILE_COPY(T, res, acc, A, B)                                                            \
    T res[(A) * (B)];                                                                              \
    _Pragma("unroll") for (int ra_ = 0; ra_ < (A); ra_++)                                          \
        _Pragma("unroll") for (int rb_ = 0; rb_ < (B); rb_++) res[ra_ * (B) + rb_] = acc[ra_][rb_]

/* A convolution epilogue's activation on a vector of type T, chosen by ACT_* id at run
 * time: the choices of cc_activate. */
#define CC_ACT_VEC(T, v, act, alpha)                                                               \
    ((act) == CLCNN_ACT_ID_RELU    ? fmax((v), (T)(0.0f))                                          \
     : (act) == CLCNN_ACT_ID_LEAKY ? select((v) * (alpha), (v), (v) > (T)(0.0f))                   \
                                   : (v))

/* A software prefetch of the cache line at p where the compiler targets a CPU
 * architecture (POCL builds for the host), nothing elsewhere (GPUs; SPIR, as Oclgrind
 * compiles even for a CPU-class run, has no prefetch). */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__)
#define CC_PREFETCH(p) __builtin_prefetch(p)
#else
#define CC_PREFETCH(p) ((void)0)
#endif

/* x Sigmoid(x): the unary SiLU and the convolution epilogues that compile it in
 * (ACT_SILU), one expression so that fused and unfused plans round alike. */
#define CC_SILU(v) ((v) * (1.0f / (1.0f + exp(-(v)))))

/* Apply a fused activation chosen by ACT_* id at run time. */
inline float cc_activate(float v, int act, float alpha) {
    if (act == CLCNN_ACT_ID_RELU) return fmax(v, 0.0f);
    if (act == CLCNN_ACT_ID_LEAKY) return v > 0.0f ? v : alpha * v;
    return v;
}

#endif
