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

/* 1 where the compiler targets a CPU architecture (POCL builds for the host), 0
 * elsewhere (GPUs; Oclgrind compiles SPIR even for a CPU-class run). */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__)
#define CC_CPU_COMPILER 1
#else
#define CC_CPU_COMPILER 0
#endif

/* A software prefetch of the cache line at p on CPU compilers, nothing elsewhere (SPIR
 * has no prefetch). */
#if CC_CPU_COMPILER
#define CC_PREFETCH(p) __builtin_prefetch(p)
#define CC_PREFETCH_W(p) __builtin_prefetch((p), 1) /* a line about to be written */
#else
#define CC_PREFETCH(p) ((void)0)
#define CC_PREFETCH_W(p) ((void)0)
#endif

/* x Sigmoid(x): the unary SiLU and the convolution epilogues that compile it in
 * (ACT_SILU), one expression so that fused and unfused plans round alike. */
#define CC_SILU(v) ((v) * (1.0f / (1.0f + exp(-(v)))))

/* Vectors with the alignment of their element: dereferenced, one unaligned vector load or
 * store on CPUs, where POCL builds vload8 and vstore16 from pieces. Declared for CPU
 * compilers and for programs the host builds with UNALIGNED_LOADS (conv2d_depthwise.cl's
 * loads; also Oclgrind's CPU class); GPU compilers do not see them. */
#if CC_CPU_COMPILER || (defined(UNALIGNED_LOADS) && UNALIGNED_LOADS)
typedef float4 __attribute__((aligned(4))) cc_float4_u;
typedef float8 __attribute__((aligned(4))) cc_float8_u;
typedef float16 __attribute__((aligned(4))) cc_float16_u;
typedef int16 __attribute__((aligned(4))) cc_int16_u;
#endif

/* On CPU compilers (POCL), vstore16 in every kernel file is this one store (the macro at the
 * end; float16 and int16 in every address space): POCL's vstore16 stores 4 + 4 + 8 elements
 * in three instructions on AVX-512. Elsewhere (GPU compilers, Oclgrind's SPIR) vstore16 is the
 * builtin. */
#if CC_CPU_COMPILER
#define CC_VSTORE16_AS(T, AS)                                                                      \
    inline void __attribute__((overloadable)) cc_vstore16(T##16 v, size_t o, AS T *p) {            \
        *(AS cc_##T##16_u *)(p + o * 16) = v;                                                      \
    }
#define CC_VSTORE16(T)                                                                             \
    CC_VSTORE16_AS(T, __global) CC_VSTORE16_AS(T, __local) CC_VSTORE16_AS(T, __private)
CC_VSTORE16(float)
CC_VSTORE16(int)
#undef CC_VSTORE16
#undef CC_VSTORE16_AS
#undef vstore16 /* POCL's own macro (a redefinition warning on every build otherwise) */
#define vstore16 cc_vstore16
#endif

/* 16 values from p[0 .. 16) when full, else the first rem (the rest 0), for the tail of
 * a plane or row; mask holds -1 in the lanes that were loaded. end: the first element past
 * the tensor; a short load that stays before it is one vector load with the lanes past rem
 * zeroed (batch norm over 7x7 planes ends every fourth vector short), else element by
 * element. */
inline float16 cc_load16_part(__global const float *p, int rem, __global const float *end,
                              int16 *mask) {
    if (rem >= 16) {
        *mask = (int16)(-1);
        return vload16(0, p);
    }
    if (p + 16 <= end) {
        *mask = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) < (int16)(rem);
        return select((float16)(0.0f), vload16(0, p), *mask);
    }
    float v[16];
    int m[16];
    for (int i = 0; i < 16; i++) {
        v[i] = i < rem ? p[i] : 0.0f;
        m[i] = i < rem ? -1 : 0;
    }
    *mask = vload16(0, m);
    return vload16(0, v);
}

/* Apply a fused activation chosen by ACT_* id at run time. */
inline float cc_activate(float v, int act, float alpha) {
    if (act == CLCNN_ACT_ID_RELU) return fmax(v, 0.0f);
    if (act == CLCNN_ACT_ID_LEAKY) return v > 0.0f ? v : alpha * v;
    return v;
}

#endif
