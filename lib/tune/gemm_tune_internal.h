/* Internals of the GEMM tuner shared by lib/tune/gemm_tune.c (the search) and
 * lib/tune/gemm_measure.c (timing and checking the parameters in force): the shapes it
 * times, its state and the measuring functions. Never installed. Prefix cc_gt_. */
#ifndef CLCNN_GEMM_TUNE_INTERNAL_H
#define CLCNN_GEMM_TUNE_INTERNAL_H

#include "tune_internal.h"

/* Shapes the tuner times (row-major, as lib/blas.c calls CLBlast). batch > 1 is a
 * strided-batched GEMM as the convolutions issue it: A (the weights) shared by every
 * product (stride 0), B and C one matrix per image. CLBlast runs batched GEMMs with
 * kernels of their own, so they must be timed and checked too. */
typedef struct tshape {
    int ta, tb;
    size_t m, n, k, batch;
    const char *what;
} tshape;
#define CC_GT_NSHAPES 5
extern const tshape cc_gt_shapes[CC_GT_NSHAPES];
#define CC_GT_RUNS_CAREFUL                                                                         \
    7 /* SGEMM 1024^3 before and after: best of 7 (the machine may be busy) */
#define CC_GT_MAX_TRIED 4096

typedef struct tuner {
    clcnn_device *dev;
    const clcnn_gemm_tune_options *opt;
    clcnn_gemm_tune_result *res;
    cl_mem a, b, c;
    float *ha, *hb, *hc;
    uint64_t rng;
    double t0, budget;
    double cost_sum; /* seconds spent on evaluated candidates */
    int cost_n;
    size_t seen[CC_GT_MAX_TRIED][CC_XG_COUNT]; /* configurations tried (Xgemm or XgemmDirect) */
    int seen_n;
    double warm[CC_GT_NSHAPES]; /* wall seconds of each shape's warm-up call (builds) */
    int careful; /* cc_gt_evaluate() takes CC_GT_RUNS_CAREFUL runs of cc_gt_shapes[0] */
    /* crash journal: the configuration being tried is written to trying_path first; a
     * run that finds it there crashed on it, and moves it to crashed_path for good */
    int journal;
    char trying_path[4300], crashed_path[4300];
    char bad[64][400];
    int nbad;
} tuner;

static inline double cc_gt_now_s(void) {
    return cc_now_ms() * 1e-3;
}

static inline uint64_t cc_gt_rnd(tuner *t) {
    return cc_gemm_rnd(&t->rng);
}

/* lib/tune/gemm_measure.c. cc_gt_override: CLBlast's parameters of kernel (names[i] =
 * v[i]), also told to lib/blas.c; cc_gt_set_min_indirect: XGEMM_MIN_INDIRECT_SIZE. */
clcnn_status cc_gt_override(tuner *t, const char *kernel, const char *const *names, const size_t *v,
                            int count);
clcnn_status cc_gt_set_min_indirect(tuner *t, size_t x);
/* Time cc_gt_shapes[first..last] with the parameters in force: gflops[i] per shape, the
 * geometric mean in *score; poor = 1 when the first shape runs at less than cutoff
 * GFLOPS (the rest not timed). Each shape's result is spot-checked. */
clcnn_status cc_gt_evaluate(tuner *t, int first, int last, double cutoff, double *gflops,
                            double *score, int *poor);
/* The geometric mean of the CC_GT_NSHAPES figures g. */
double cc_gt_geomean(const double *g);
/* Full check of the parameters in force on awkward shapes (cc_gt_verify), quick check of
 * a candidate before it is timed (cc_gt_probe). */
clcnn_status cc_gt_verify(tuner *t);
clcnn_status cc_gt_probe(tuner *t);

#endif
