/* The GEMM tuner's search space (lib/tune/gemm_tune.c runs the search): CLBlast's Xgemm
 * and XgemmDirect parameter vectors drawn at random or by mutating the best so far, and
 * the starting points per device type. Every draw comes from one xorshift* generator
 * whose state the caller keeps, so a seed gives the same sequence of candidates. */
#include "tune_internal.h"

#include <string.h>

/* See tune_internal.h. */
uint64_t cc_gemm_rnd(uint64_t *rng) {
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    return *rng * 2685821657736338717ULL;
}

static size_t pick(uint64_t *rng, const size_t *list, size_t n) {
    return list[cc_gemm_rnd(rng) % n];
}

/* Value lists: CLBlast's own tuner ranges (its xgemm variants 2 and 12: GEMMK 0 and the
 * 2-D register-tiled GEMMK 1), plus vector width 16 (AVX-512 holds 16 floats). Exhaustive
 * mode adds KWI 8 and 4-wide work-groups and searches longer. Tiles stay <= 128
 * (cc_xgemm_invalid): bigger ones were seen to give wrong results and crash on POCL.
 * GEMMK 1 is drawn half the time: on CPUs it is the fast kernel (no transposes of A and C
 * around it at all in a row-major GEMM). */
static void random_xgemm(uint64_t *rng, int cpu, int ex, size_t v[CC_XG_COUNT]) {
    static const size_t wg[] = {16, 32, 64, 128}, kwg[] = {16, 32}, kwi[] = {2, 8};
    static const size_t dim[] = {8, 16, 32, 4}, vw[] = {1, 2, 4, 8, 16};
    static const size_t dim1[] = {2, 4, 8, 16, 32}, kreg[] = {1, 2, 4, 8, 16};
    /* CPUs only run fast with their SIMD width filled: no vectors narrower than 4 there */
    memset(v, 0, CC_XG_COUNT * sizeof *v);
    v[CC_XG_VWM] = cpu ? pick(rng, vw + 2, 3) : pick(rng, vw, 5);
    v[CC_XG_VWN] = cpu ? pick(rng, vw + 2, 3) : pick(rng, vw, 5);
    v[CC_XG_MWG] = pick(rng, wg, 4);
    if (cc_gemm_rnd(rng) % 2) { /* GEMMK 1: the ties of cc_xgemm_invalid */
        v[CC_XG_GEMMK] = 1;
        v[CC_XG_KWG] = v[CC_XG_KWI] = 1;
        v[CC_XG_NWG] = v[CC_XG_MWG];
        v[CC_XG_MDIMC] = v[CC_XG_MDIMA] = pick(rng, dim1, 5);
        v[CC_XG_NDIMC] = v[CC_XG_NDIMB] = pick(rng, dim1, 5);
        v[CC_XG_KREG] = pick(rng, kreg, 5);
        return;
    }
    v[CC_XG_GEMMK] = 0;
    v[CC_XG_KREG] = 1;
    v[CC_XG_NWG] = pick(rng, wg, 4);
    v[CC_XG_KWG] = pick(rng, kwg, 2);
    v[CC_XG_KWI] = pick(rng, kwi, ex ? 2 : 1);
    v[CC_XG_MDIMC] = pick(rng, dim, ex ? 4 : 3);
    v[CC_XG_NDIMC] = pick(rng, dim, ex ? 4 : 3);
    v[CC_XG_MDIMA] = pick(rng, dim, ex ? 4 : 3);
    v[CC_XG_NDIMB] = pick(rng, dim, ex ? 4 : 3);
    v[CC_XG_STRM] = cc_gemm_rnd(rng) % 2;
    v[CC_XG_STRN] = cc_gemm_rnd(rng) % 2;
    v[CC_XG_SA] = cc_gemm_rnd(rng) % 2;
    v[CC_XG_SB] = cc_gemm_rnd(rng) % 2;
}

/* Change one or two parameters of `from` to a neighbouring power of two (or flip a
 * flag), keeping the GEMMK 1 ties (MWG = NWG, MDIMA = MDIMC, NDIMB = NDIMC). */
static void mutate_xgemm(uint64_t *rng, const size_t *from, size_t v[CC_XG_COUNT]) {
    memcpy(v, from, CC_XG_COUNT * sizeof *v);
    const int k1 = v[CC_XG_GEMMK] == 1;
    int changes = 1 + (int)(cc_gemm_rnd(rng) % 2);
    for (int c = 0; c < changes; c++) {
        int p = (int)(cc_gemm_rnd(rng) % CC_XG_COUNT);
        if (p == CC_XG_GEMMK || (p == CC_XG_KREG && !k1)) continue;
        if (p == CC_XG_SA || p == CC_XG_SB || p == CC_XG_STRM || p == CC_XG_STRN)
            v[p] ^= 1;
        else
            v[p] = cc_gemm_rnd(rng) % 2 ? v[p] * 2 : (v[p] > 1 ? v[p] / 2 : 2);
        if (k1) {
            if (p == CC_XG_MWG || p == CC_XG_NWG) v[CC_XG_MWG] = v[CC_XG_NWG] = v[p];
            if (p == CC_XG_MDIMC || p == CC_XG_MDIMA) v[CC_XG_MDIMA] = v[CC_XG_MDIMC] = v[p];
            if (p == CC_XG_NDIMC || p == CC_XG_NDIMB) v[CC_XG_NDIMB] = v[CC_XG_NDIMC] = v[p];
        }
    }
}

static void random_direct(uint64_t *rng, int cpu, size_t v[CC_XD_COUNT]) {
    static const size_t wgd[] = {8, 16, 32, 64}, dim[] = {8, 16, 32}, kwid[] = {2, 8, 16};
    static const size_t vw[] = {1, 2, 4, 8};
    v[CC_XD_WGD] = pick(rng, wgd, 4);
    v[CC_XD_MDIMCD] = pick(rng, dim, 3);
    v[CC_XD_NDIMCD] = pick(rng, dim, 3);
    v[CC_XD_MDIMAD] = pick(rng, dim, 3);
    v[CC_XD_NDIMBD] = pick(rng, dim, 3);
    v[CC_XD_KWID] = pick(rng, kwid, 3);
    v[CC_XD_VWMD] = cpu ? pick(rng, vw + 2, 2) : pick(rng, vw, 4);
    v[CC_XD_VWND] = cpu ? pick(rng, vw + 2, 2) : pick(rng, vw, 4);
    v[CC_XD_PADA] = cc_gemm_rnd(rng) % 2;
    v[CC_XD_PADB] = cc_gemm_rnd(rng) % 2;
}

static void mutate_direct(uint64_t *rng, const size_t *from, size_t v[CC_XD_COUNT]) {
    memcpy(v, from, CC_XD_COUNT * sizeof *v);
    int changes = 1 + (int)(cc_gemm_rnd(rng) % 2);
    for (int c = 0; c < changes; c++) {
        int p = (int)(cc_gemm_rnd(rng) % CC_XD_COUNT);
        if (p == CC_XD_PADA || p == CC_XD_PADB)
            v[p] ^= 1;
        else
            v[p] = cc_gemm_rnd(rng) % 2 ? v[p] * 2 : (v[p] > 1 ? v[p] / 2 : 2);
    }
}

/* Starting points (in CLBlast's order: GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG
 * SA SB STRM STRN VWM VWN). CPUs (POCL) like big tiles and wide vectors with no local
 * memory, and the 2-D register tiling (GEMMK 1) with 16x16 or 16x8 results per work-item:
 * a row-major GEMM then needs no transposes of A and C (5-10x CLBlast's defaults at
 * 1024^3 on a 2-core AVX-512 Xeon, against about 3x for the best GEMMK 0 seed); GPUs
 * like 8x8-16x16 work-groups with local memory. */
static const size_t cpu_seeds[][CC_XG_COUNT] = {
    {1, 16, 1, 1, 4, 4, 64, 4, 4, 64, 0, 0, 0, 0, 16, 4},
    {1, 1, 1, 1, 4, 4, 64, 8, 8, 64, 0, 0, 0, 0, 16, 1}, /* 16x8: found from seed 7 */
    {1, 4, 1, 1, 4, 4, 64, 4, 4, 64, 0, 0, 0, 0, 16, 4},
    {1, 16, 1, 1, 2, 2, 32, 2, 2, 32, 0, 0, 0, 0, 16, 4},
    {1, 1, 1, 1, 4, 4, 64, 4, 4, 64, 0, 0, 0, 0, 16, 1},
    {0, 1, 16, 2, 8, 8, 128, 8, 8, 64, 0, 0, 0, 0, 8, 8},
};
static const size_t gpu_seeds[][CC_XG_COUNT] = {
    {0, 1, 32, 2, 16, 16, 64, 8, 8, 64, 1, 1, 0, 0, 4, 4},
    {0, 1, 32, 2, 8, 8, 64, 16, 16, 64, 1, 1, 1, 0, 2, 2},
    {0, 1, 16, 2, 16, 16, 128, 16, 16, 128, 1, 1, 1, 1, 4, 4},
    {0, 1, 32, 2, 8, 8, 32, 8, 8, 64, 1, 1, 0, 0, 2, 4},
};
/* XgemmDirect: KWID MDIMAD MDIMCD NDIMBD NDIMCD PADA PADB VWMD VWND WGD */
/* (WGD 64 with 8-wide vectors took over 3 minutes to build and check on POCL: last) */
static const size_t cpu_direct_seeds[][CC_XD_COUNT] = {
    {8, 8, 8, 8, 8, 1, 1, 4, 4, 32},
    {2, 8, 8, 8, 8, 0, 0, 8, 8, 64},
};
static const size_t gpu_direct_seeds[][CC_XD_COUNT] = {
    {2, 8, 8, 8, 8, 1, 1, 2, 2, 32},
    {8, 16, 16, 16, 16, 1, 1, 2, 2, 32},
};

/* See tune_internal.h. */
void cc_gemm_random(uint64_t *rng, int kind, int cpu, int exhaustive, size_t *v) {
    if (kind)
        random_direct(rng, cpu, v);
    else
        random_xgemm(rng, cpu, exhaustive, v);
}

/* See tune_internal.h. */
void cc_gemm_mutate(uint64_t *rng, int kind, const size_t *from, size_t *v) {
    if (kind)
        mutate_direct(rng, from, v);
    else
        mutate_xgemm(rng, from, v);
}

/* See tune_internal.h. */
size_t cc_gemm_seeds(int kind, int gpu, const size_t **rows) {
    if (kind) {
        *rows = gpu ? gpu_direct_seeds[0] : cpu_direct_seeds[0];
        return (gpu ? sizeof gpu_direct_seeds : sizeof cpu_direct_seeds) /
               sizeof(size_t[CC_XD_COUNT]);
    }
    *rows = gpu ? gpu_seeds[0] : cpu_seeds[0];
    return (gpu ? sizeof gpu_seeds : sizeof cpu_seeds) / sizeof(size_t[CC_XG_COUNT]);
}
