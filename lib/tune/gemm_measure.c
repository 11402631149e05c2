/* The GEMM tuner's measurements (lib/tune/gemm_tune.c runs the search): setting CLBlast's
 * parameters, timing SGEMMs as device-side spans between queue markers, and checking
 * their results against a double-precision host GEMM. */
#include "gemm_tune_internal.h"

#include <clblast_c.h>
#include <math.h>
#include <string.h>

#define RUNS 3

const tshape cc_gt_shapes[CC_GT_NSHAPES] = {
    {0, 0, 1024, 1024, 1024, 1, "1024^3"},
    {0, 0, 64, 3136, 576, 1, "conv 3x3 c64 56x56 forward (VGG)"},
    {0, 0, 256, 196, 256, 8, "conv 1x1 c256 14x14 forward x8 (ResNet)"},
    {0, 1, 64, 576, 3136, 1, "conv 3x3 c64 56x56 weight gradient"},
    {0, 1, 32, 1000, 2048, 1, "linear 2048->1000 n32"},
};

clcnn_status cc_gt_override(tuner *t, const char *kernel, const char *const *names, const size_t *v,
                            int count) {
    int code = CLBlastOverrideParameters(t->dev->id, kernel, CLBlastPrecisionSingle, (size_t)count,
                                         (const char **)names, v);
    CC_RETURN_IF(code != CLBlastSuccess, CLCNN_ERR_BLAS,
                 "CLBlastOverrideParameters(%s) failed with CLBlast status %d", kernel, code);
    /* lib/blas.c decides by these which strided-batched calls CLBlast gets right */
    if (!strcmp(kernel, "Xgemm")) {
        cc_blas_xgemm_shape sh = {v[CC_XG_GEMMK], v[CC_XG_MWG],  v[CC_XG_NWG],
                                  v[CC_XG_KWG],   v[CC_XG_KREG], v[CC_XG_VWM]};
        cc_blas_note_xgemm(t->dev->id, &sh);
    } else if (!strcmp(kernel, "GemmRoutine")) {
        cc_blas_note_min_indirect(t->dev->id, v[0]);
    }
    return CLCNN_OK;
}
clcnn_status cc_gt_set_min_indirect(tuner *t, size_t x) {
    static const char *const names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    return cc_gt_override(t, "GemmRoutine", names, &x, 1);
}

static size_t lda_of(const tshape *s) {
    return s->ta ? s->m : s->k;
}
static size_t ldb_of(const tshape *s) {
    return s->tb ? s->k : s->n;
}

/* One SGEMM through lib/blas.c (so a strided-batched one runs as the library runs it:
 * one CLBlast call, or one per item where CLBlast would get it wrong), timed as the span
 * between a marker before and a marker after it. */
static clcnn_status gemm_timed(tuner *t, const tshape *s, size_t a_off, size_t b_off, size_t c_off,
                               double *ms) {
    cl_command_queue q = t->dev->queue;
    cl_event m0 = NULL, m1 = NULL;
    CC_CL_TRY(clEnqueueMarkerWithWaitList(q, 0, NULL, &m0));
    clcnn_status st = cc_sgemm_strided_batched(
        t->dev, s->ta, s->tb, s->m, s->n, s->k, 1.0f, t->a, a_off, lda_of(s), 0, t->b, b_off,
        ldb_of(s), s->k * s->n, 0.0f, t->c, c_off, s->n, s->m * s->n, s->batch);
    cl_int err = clEnqueueMarkerWithWaitList(q, 0, NULL, &m1);
    if (err == CL_SUCCESS)
        err = clWaitForEvents(1, &m1);
    else
        clFinish(q);
    double span = 0;
    if (err == CL_SUCCESS) err = cc_event_span_ms(m0, m1, &span);
    clReleaseEvent(m0);
    if (m1) clReleaseEvent(m1);
    if (st != CLCNN_OK) {
        clFinish(q);
        return st;
    }
    CC_TRY(cc_cl_status(err, "profiling the tuning GEMM", __FILE__, __LINE__));
    *ms = span > 0 ? span : 1e-6;
    return CLCNN_OK;
}

static double ref_entry(const tuner *t, const tshape *s, size_t a_off, size_t b_off, size_t i,
                        size_t j, double *mag) {
    double acc = 0, abs_acc = 0;
    for (size_t p = 0; p < s->k; p++) {
        double x = t->ha[a_off + (s->ta ? p * lda_of(s) + i : i * lda_of(s) + p)];
        double y = t->hb[b_off + (s->tb ? j * ldb_of(s) + p : p * ldb_of(s) + j)];
        acc += x * y;
        abs_acc += fabs(x * y);
    }
    *mag = abs_acc;
    return acc;
}

/* Compare C with a double-precision host GEMM: every entry when `all`, else 48 random
 * ones. Tolerance 2e-4 * sum|a*b| per entry: float rounding over k <= 3136 products
 * stays well inside it, a wrong kernel (bad tiling, missing padding) does not. */
static clcnn_status check(tuner *t, const tshape *s, size_t a_off, size_t b_off, size_t c_off,
                          int all) {
    const size_t mn = s->m * s->n, total = mn * s->batch;
    CC_CL_TRY(clEnqueueReadBuffer(t->dev->queue, t->c, CL_TRUE, c_off * sizeof(float),
                                  total * sizeof(float), t->hc, 0, NULL, NULL));
    size_t count = all ? total : 48;
    for (size_t e = 0; e < count; e++) {
        size_t idx = all ? e : cc_gt_rnd(t) % total;
        size_t bi = idx / mn, i = idx % mn / s->n, j = idx % s->n;
        double mag = 0, ref = ref_entry(t, s, a_off, b_off + bi * s->k * s->n, i, j, &mag);
        double got = t->hc[idx];
        if (!(fabs(got - ref) <= 2e-4 * mag + 1e-6))
            return cc_fail(CLCNN_ERR_NUMERIC,
                           "SGEMM %s%s %zux%zux%zu (batch %zu) gives C[%zu][%zu][%zu] = %g, "
                           "expected %g",
                           s->ta ? "T" : "N", s->tb ? "T" : "N", s->m, s->n, s->k, s->batch, bi, i,
                           j, got, ref);
    }
    return CLCNN_OK;
}

/* Time cc_gt_shapes[first..last] with the parameters in force: gflops[i] per shape, the
 * geometric mean in *score. Stops early (poor = 1) when the first shape runs at less than
 * `cutoff` GFLOPS: such a candidate cannot win and slow ones cost the most time. */
clcnn_status cc_gt_evaluate(tuner *t, int first, int last, double cutoff, double *gflops,
                            double *score, int *poor) {
    double logsum = 0;
    *poor = 0;
    for (int i = first; i <= last; i++) {
        const tshape *s = &cc_gt_shapes[i];
        double ms = 0, best = 0;
        double w0 = cc_gt_now_s();
        CC_TRY(gemm_timed(t, s, 0, 0, 0, &ms)); /* warm-up: builds the program */
        t->warm[i] = cc_gt_now_s() - w0;
        const double flop = 2.0 * (double)s->m * (double)s->n * (double)s->k * (double)s->batch;
        const int runs = t->careful && i == 0 ? CC_GT_RUNS_CAREFUL : RUNS;
        for (int r = 0; r < runs; r++) {
            CC_TRY(gemm_timed(t, s, 0, 0, 0, &ms));
            if (r == 0 || ms < best) best = ms;
            if (r == 0 && i == first && flop / (best * 1e6) < cutoff) break;
        }
        gflops[i] = flop / (best * 1e6);
        CC_TRY(check(t, s, 0, 0, 0, 0));
        logsum += log(gflops[i]);
        if (i == first && gflops[i] < cutoff) {
            *poor = 1;
            *score = gflops[i] * 0.5;
            return CLCNN_OK;
        }
    }
    *score = exp(logsum / (last - first + 1));
    return CLCNN_OK;
}

double cc_gt_geomean(const double *g) {
    double l = 0;
    for (int i = 0; i < CC_GT_NSHAPES; i++)
        l += log(g[i] > 0 ? g[i] : 1e-9);
    return exp(l / CC_GT_NSHAPES);
}

/* Full check of the parameters in force on awkward shapes: sizes that are no multiple of
 * any tile, m or n of 1, every transpose combination, non-zero buffer offsets, and
 * strided-batched products on both sides of the direct/indirect threshold. */
clcnn_status cc_gt_verify(tuner *t) {
    static const size_t dims[][4] = {{67, 45, 37, 1},    {129, 257, 65, 1},  {1, 300, 17, 1},
                                     {300, 1, 29, 1},    {256, 256, 256, 1}, {33, 1000, 200, 1},
                                     {67, 45, 37, 3},    {129, 257, 65, 2},  {64, 196, 256, 4},
                                     {256, 256, 256, 2}, {64, 64, 64, 3},    {576, 3136, 64, 2}};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++) {
        for (int tr = 0; tr < 4; tr++) {
            tshape s = {tr & 1,     tr >> 1,    dims[d][0],    dims[d][1],
                        dims[d][2], dims[d][3], "cc_gt_verify"};
            size_t c_off = d & 1 ? 7 : 0;
            size_t a_off = d & 1 ? 5 : 0, b_off = d & 1 ? 3 : 0;
            double ms;
            CC_TRY(gemm_timed(t, &s, a_off, b_off, c_off, &ms));
            CC_TRY(check(t, &s, a_off, b_off, c_off, 1));
        }
    }
    return CLCNN_OK;
}

/* Quick check of a candidate before it is timed: strided-batched products whose sizes are
 * multiples of every tile (CLBlast then skips its copy kernels), operands at offsets.
 * CLBlast 1.5.3's indirect strided-batched GEMM ignores offsets and strides of the
 * matrices it does not copy (and k padding with GEMMK 1): lib/blas.c runs such calls one
 * item at a time, and these checks (through lib/blas.c) make sure it does. */
clcnn_status cc_gt_probe(tuner *t) {
    static const size_t offs[][3] = {{0, 0, 0}, {0, 0, 7}, {5, 3, 7}};
    for (size_t o = 0; o < sizeof offs / sizeof *offs; o++) {
        tshape s = {0, 0, 128, 128, 128, 2, "cc_gt_probe"};
        double ms;
        CC_TRY(gemm_timed(t, &s, offs[o][0], offs[o][1], offs[o][2], &ms));
        CC_TRY(check(t, &s, offs[o][0], offs[o][1], offs[o][2], 1));
    }
    return CLCNN_OK;
}
