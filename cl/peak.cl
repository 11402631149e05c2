/* Peak probes: how fast can this device multiply-add and move memory? Used by
 * clcnn_device_peak() (lib/tune/peak.c) so benchmarks can print "% of peak".
 *
 * Defines:
 *   VEC     vector width of each accumulator: 1, 2, 4, 8 or 16 (default 4)
 *   CHAINS  independent multiply-add chains per work-item (default 16): enough of them
 *           to hide the FMA latency (4-5 cycles) times the number of FMA ports, few
 *           enough that VEC * CHAINS fits the vector registers (the host tries several)
 *
 * peak_fma: one work-item per output element; each runs CHAINS chains of `iters`
 *   dependent fma()s on floatVEC values: 2 * VEC * CHAINS * iters flops per work-item.
 *   fma(), not mad(): POCL compiles mad() to a multiply and an add, which the FMA ports
 *   of an Intel core run as two instructions (half the peak there).
 *   The sum of the chains is stored in out[gid] (out: gws floats) so nothing is
 *   optimised away; `a` and `b` are arguments so nothing is constant-folded.
 * peak_copy: dst[i] = src[i] for i < n (float4 elements, one per work-item); bandwidth
 *   counts the bytes read plus the bytes written. */

#ifndef VEC
#define VEC 4 /* accumulator width */
#endif
#ifndef CHAINS
#define CHAINS 16 /* independent chains per work-item */
#endif

#if VEC == 1
#define floatV float
#define HSUM(v) (v)
#elif VEC == 2
#define floatV float2
#define HSUM(v) ((v).s0 + (v).s1)
#elif VEC == 4
#define floatV float4
#define HSUM(v) ((v).s0 + (v).s1 + (v).s2 + (v).s3)
#elif VEC == 8
#define floatV float8
#define HSUM(v) dot((v).lo, (float4)(1.0f)) + dot((v).hi, (float4)(1.0f))
#elif VEC == 16
#define floatV float16
#define HSUM(v) dot((v).lo.lo + (v).lo.hi + (v).hi.lo + (v).hi.hi, (float4)(1.0f))
#else
#error "VEC must be 1, 2, 4, 8 or 16"
#endif

#if CHAINS < 1 || CHAINS > 16
#error "CHAINS must be in 1..16"
#endif

__kernel void peak_fma(__global float *out, int iters, float a, float b) {
    const size_t gid = get_global_id(0);
    floatV x[CHAINS];
#pragma unroll
    for (int c = 0; c < CHAINS; c++)
        x[c] = (floatV)((float)(gid & 7) * 1e-3f + (float)c * 1e-4f);
    for (int i = 0; i < iters; i++) {
#pragma unroll
        for (int c = 0; c < CHAINS; c++)
            x[c] = fma(x[c], (floatV)(a), (floatV)(b));
    }
    floatV s = x[0];
#pragma unroll
    for (int c = 1; c < CHAINS; c++)
        s += x[c];
    out[gid] = HSUM(s);
}

__kernel void peak_copy(__global const float4 *src, __global float4 *dst, ulong n) {
    const size_t i = get_global_id(0);
    if (i < n) dst[i] = src[i];
}
