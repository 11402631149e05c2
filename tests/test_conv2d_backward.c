/* conv2d backward data, backward filter and bias gradient: the double reference
 * (tests/reference_conv.c) validated by central finite differences, then both
 * algorithms (direct, gemm) against it on a seeded sweep of random small shapes,
 * hand-picked edge cases and reduced versions of the anchor layers; error paths
 * (nothing written), workspace chunking and run-to-run determinism (bit-identical).
 *
 * Tolerance: a dx element sums at most L = (k/groups)*r*s products, a dw element and a
 * db element L = n*p*q, of numbers in [-1, 1]. float32 rounding grows at most about
 * linearly with L, so |got - ref| <= 1e-6 * L + 1e-5 * |ref| (as in test_conv2d.c),
 * plus normalised MSE <= 1e-7 for the larger layers. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "reference_conv.h"
#include "reference_conv_problem.h"

static const clcnn_conv_algo algos[] = {CLCNN_CONV_DIRECT, CLCNN_CONV_GEMM};

static void describe(const ref_conv *cv, clcnn_conv_algo algo, const char *what, char *buf,
                     size_t cap) {
    snprintf(buf, cap,
             "%s %s: x %dx%dx%dx%d w %dx%dx%dx%d stride %dx%d pad %dx%d dil %dx%d groups %d", what,
             clcnn_conv_algo_name(algo), cv->n, cv->c, cv->h, cv->w, cv->k, cv->c / cv->groups,
             cv->r, cv->s, cv->stride_h, cv->stride_w, cv->pad_h, cv->pad_w, cv->dilation_h,
             cv->dilation_w, cv->groups);
}

/* Host data of one problem and the reference gradients. */
typedef struct problem {
    ref_conv cv;
    float *x, *w, *dy;
    double *dx, *dw, *db;
} problem;

static void problem_init(problem *pb, const ref_conv *cv, uint64_t seed) {
    memset(pb, 0, sizeof *pb);
    pb->cv = *cv;
    assert_true(ref_conv_out(&pb->cv));
    size_t nx = ref_conv_x_size(&pb->cv), nw = ref_conv_w_size(&pb->cv);
    size_t ny = ref_conv_y_size(&pb->cv);
    tu_rng rng = tu_rng_seed(seed);
    pb->x = malloc(nx * sizeof(float));
    pb->w = malloc(nw * sizeof(float));
    pb->dy = malloc(ny * sizeof(float));
    pb->dx = malloc(nx * sizeof(double));
    pb->dw = malloc(nw * sizeof(double));
    pb->db = malloc((size_t)cv->k * sizeof(double));
    assert_true(pb->x && pb->w && pb->dy && pb->dx && pb->dw && pb->db);
    tu_fill_uniform(&rng, pb->x, nx, -1, 1);
    tu_fill_uniform(&rng, pb->w, nw, -1, 1);
    tu_fill_uniform(&rng, pb->dy, ny, -1, 1);
    double *xd = rcp_to_double(pb->x, nx), *wd = rcp_to_double(pb->w, nw),
           *dyd = rcp_to_double(pb->dy, ny);
    ref_conv2d_backward_data(&pb->cv, dyd, wd, pb->dx);
    ref_conv2d_backward_filter(&pb->cv, xd, dyd, pb->dw);
    ref_conv2d_bias_grad(&pb->cv, dyd, pb->db);
    free(xd);
    free(wd);
    free(dyd);
}

static void problem_free(problem *pb) {
    free(pb->x);
    free(pb->w);
    free(pb->dy);
    free(pb->dx);
    free(pb->dw);
    free(pb->db);
}

/* Device results of one algorithm; outputs start as NaN so unwritten elements show. */
typedef struct result {
    float *dx, *dw, *db;
} result;

static result run_backward(const problem *pb, clcnn_conv_algo algo) {
    const ref_conv *cv = &pb->cv;
    clcnn_device *dev = tu_device();
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w};
    size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
    clcnn_tensor *x = tu_tensor_from(4, xs, pb->x), *w = tu_tensor_from(4, ws, pb->w);
    clcnn_tensor *dy = tu_tensor_from(4, ys, pb->dy);
    clcnn_tensor *dx = tu_tensor_from(4, xs, NULL), *dw = tu_tensor_from(4, ws, NULL);
    clcnn_tensor *db = tu_tensor_from(1, (size_t[]){cv->k}, NULL);
    TU_OK(clcnn_tensor_fill(dx, NAN));
    TU_OK(clcnn_tensor_fill(dw, NAN));
    TU_OK(clcnn_tensor_fill(db, NAN));
    clcnn_conv2d_desc d = rcp_make_desc(cv, algo);
    TU_OK(clcnn_conv2d_backward_data(dev, &d, dy, w, dx));
    TU_OK(clcnn_conv2d_backward_filter(dev, &d, x, dy, dw, db));
    result r = {tu_download(dx), tu_download(dw), tu_download(db)};
    clcnn_tensor *all[] = {x, w, dy, dx, dw, db};
    for (int i = 0; i < 6; i++)
        clcnn_tensor_free(all[i]);
    return r;
}

static void result_free(result *r) {
    free(r->dx);
    free(r->dw);
    free(r->db);
}

/* Compares one algorithm's gradients with the reference; returns 1 when all match. */
static int check_result(const problem *pb, const result *r, clcnn_conv_algo algo, int nmse) {
    const ref_conv *cv = &pb->cv;
    double l_data = (double)(cv->k / cv->groups) * cv->r * cv->s;
    double l_filt = (double)cv->n * cv->p * cv->q;
    struct {
        const char *what;
        const float *got;
        const double *ref;
        size_t n;
        double l;
    } parts[] = {
        {"dx", r->dx, pb->dx, ref_conv_x_size(cv), l_data},
        {"dw", r->dw, pb->dw, ref_conv_w_size(cv), l_filt},
        {"db", r->db, pb->db, (size_t)cv->k, l_filt},
    };
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        char what[256];
        describe(cv, algo, parts[i].what, what, sizeof what);
        ok &= tu_close(what, parts[i].got, parts[i].ref, parts[i].n, 1e-6 * parts[i].l, 1e-5);
        if (nmse) {
            double e = tu_nmse(parts[i].got, parts[i].ref, parts[i].n);
            if (!(e <= 1e-7)) {
                fprintf(stderr, "NMSE %s: %g > 1e-7\n", what, e);
                ok = 0;
            }
        }
    }
    return ok;
}

static int check_problem(const problem *pb, int nmse) {
    int ok = 1;
    for (size_t a = 0; a < 2; a++) {
        result r = run_backward(pb, algos[a]);
        ok &= check_result(pb, &r, algos[a], nmse);
        result_free(&r);
    }
    return ok;
}

/* ---- the reference itself: central finite differences ----------------------------------- */

/* L(x, w, b) = sum(y * g) with y = conv(x, w) + b; dL/dx, dL/dw, dL/db from the reference
 * backward (with dy = g) against (L(v + e) - L(v - e)) / 2e for every element v. L is
 * linear in each variable, so the difference quotient has no truncation error and only
 * rounding (~1e-16 |L| / e) separates the two. */
static double loss(const ref_conv *cv, const double *x, const double *w, const double *b,
                   const double *g, double *y) {
    ref_conv2d_forward(cv, x, w, b, 0, 0.0, y);
    double l = 0;
    for (size_t i = 0; i < ref_conv_y_size(cv); i++)
        l += y[i] * g[i];
    return l;
}

static int fd_check(const char *what, double *v, size_t n, const double *grad, const ref_conv *cv,
                    double *x, double *w, double *b, const double *g, double *y) {
    const double e = 1e-3;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + e;
        double lp = loss(cv, x, w, b, g, y);
        v[i] = keep - e;
        double lm = loss(cv, x, w, b, g, y);
        v[i] = keep;
        double num = (lp - lm) / (2 * e);
        double err = fabs(num - grad[i]) / (1 + fabs(grad[i]));
        if (err > worst) worst = err;
        if (err > 1e-9) {
            fprintf(stderr, "FD %s[%zu]: numeric %.12g analytic %.12g\n", what, i, num, grad[i]);
            return 0;
        }
    }
    return 1;
}

static void test_reference_finite_differences(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 3, 5, 6, 4, 3, 2, 1, 1, 1, 1), rcp_conv(1, 4, 7, 7, 6, 3, 3, 2, 2, 2, 2),
        rcp_conv(2, 3, 6, 5, 3, 2, 3, 3, 1, 1, 3), /* depthwise, stride > kernel */
        rcp_conv(1, 2, 4, 4, 2, 1, 1, 1, 2, 1, 1), /* padding >= kernel */
    };
    cases[1].stride_w = 1;
    cases[1].dilation_w = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ref_conv cv = cases[ci];
        assert_true(ref_conv_out(&cv));
        size_t nx = ref_conv_x_size(&cv), nw = ref_conv_w_size(&cv), ny = ref_conv_y_size(&cv);
        double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
        double *b = malloc((size_t)cv.k * sizeof *b), *g = malloc(ny * sizeof *g);
        double *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
        double *dw = malloc(nw * sizeof *dw), *db = malloc((size_t)cv.k * sizeof *db);
        tu_rng rng = tu_rng_seed(31 + ci);
        for (size_t i = 0; i < nx; i++)
            x[i] = tu_rng_uniform(&rng, -1, 1);
        for (size_t i = 0; i < nw; i++)
            w[i] = tu_rng_uniform(&rng, -1, 1);
        for (int i = 0; i < cv.k; i++)
            b[i] = tu_rng_uniform(&rng, -1, 1);
        for (size_t i = 0; i < ny; i++)
            g[i] = tu_rng_uniform(&rng, -1, 1);
        ref_conv2d_backward_data(&cv, g, w, dx);
        ref_conv2d_backward_filter(&cv, x, g, dw);
        ref_conv2d_bias_grad(&cv, g, db);
        assert_true(fd_check("dx", x, nx, dx, &cv, x, w, b, g, y));
        assert_true(fd_check("dw", w, nw, dw, &cv, x, w, b, g, y));
        assert_true(fd_check("db", b, (size_t)cv.k, db, &cv, x, w, b, g, y));
        free(x);
        free(w);
        free(b);
        free(g);
        free(y);
        free(dx);
        free(dw);
        free(db);
    }
}

/* ---- error paths ---------------------------------------------------------------------- */

static void fill(clcnn_tensor *t, float v) {
    TU_OK(clcnn_tensor_fill(t, v));
}

static void expect_data_error(const clcnn_conv2d_desc *d, const clcnn_tensor *dy,
                              const clcnn_tensor *w, clcnn_tensor *dx, clcnn_status want,
                              const char *needle) {
    if (dx) fill(dx, 42.0f);
    tu_expect_status(clcnn_conv2d_backward_data(tu_device(), d, dy, w, dx), want, needle);
    tu_expect_untouched(dx, 42.0f);
}

static void expect_filter_error(const clcnn_conv2d_desc *d, const clcnn_tensor *x,
                                const clcnn_tensor *dy, clcnn_tensor *dw, clcnn_tensor *db,
                                clcnn_status want, const char *needle) {
    fill(dw, 42.0f);
    if (db) fill(db, 42.0f);
    tu_expect_status(clcnn_conv2d_backward_filter(tu_device(), d, x, dy, dw, db), want, needle);
    tu_expect_untouched(dw, 42.0f);
    tu_expect_untouched(db, 42.0f);
}

static void test_backward_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x, *w, *w4, *dy, *dybad, *dx, *dw, *dwbad, *db, *dbbad;
    TU_OK(clcnn_tensor_create4(dev, 2, 3, 8, 8, &x));
    TU_OK(clcnn_tensor_create4(dev, 16, 3, 3, 3, &w));
    TU_OK(clcnn_tensor_create4(dev, 16, 4, 3, 3, &w4));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 6, 6, &dy));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 7, 6, &dybad));
    TU_OK(clcnn_tensor_create4(dev, 2, 3, 8, 8, &dx));
    TU_OK(clcnn_tensor_create4(dev, 16, 3, 3, 3, &dw));
    TU_OK(clcnn_tensor_create4(dev, 16, 3, 5, 5, &dwbad));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){16}, &db));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){8}, &dbbad));
    fill(x, 1.0f);
    fill(w, 1.0f);
    fill(w4, 1.0f);
    fill(dy, 1.0f);
    fill(dybad, 1.0f);
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();

    expect_data_error(&d, dy, w4, dx, CLCNN_ERR_SHAPE,
                      "input 2x3x8x8 has 3 channels but weights 16x4x3x3 expect 4 (groups 1)");
    expect_data_error(&d, dybad, w, dx, CLCNN_ERR_SHAPE,
                      "output gradient dy is 2x16x7x6, expected 2x16x6x6");
    expect_data_error(&d, dy, w, NULL, CLCNN_ERR_INVALID_ARG, "NULL");
    { /* dy and dx in the same buffer (a view): refused, since kernels read dy while
       * writing dx */
        clcnn_tensor *a = NULL, *av = NULL, *w1 = NULL;
        TU_OK(clcnn_tensor_create4(dev, 1, 1, 4, 4, &a));
        TU_OK(clcnn_tensor_view(a, 4, (size_t[]){1, 1, 4, 4}, &av));
        TU_OK(clcnn_tensor_create4(dev, 1, 1, 1, 1, &w1));
        fill(w1, 1.0f);
        expect_data_error(&d, av, w1, a, CLCNN_ERR_INVALID_ARG, "must not share memory");
        clcnn_tensor_free(av);
        clcnn_tensor_free(a);
        clcnn_tensor_free(w1);
    }
    expect_filter_error(&d, x, dy, dwbad, db, CLCNN_ERR_SHAPE,
                        "output gradient dy is 2x16x6x6, expected 2x16x4x4");
    expect_filter_error(&d, x, dybad, dw, db, CLCNN_ERR_SHAPE, "expected 2x16x6x6");
    expect_filter_error(&d, x, dy, dw, dbbad, CLCNN_ERR_SHAPE,
                        "bias gradient db 8 has 8 elements, expected 16");
    /* db is optional: dw = sum over n, p, q of 1 * 1 = 2*6*6 */
    TU_OK(clcnn_conv2d_backward_filter(dev, &d, x, dy, dw, NULL));
    tu_expect_untouched(dw, 72.0f);
    d.pad_h = -1;
    expect_data_error(&d, dy, w, dx, CLCNN_ERR_INVALID_ARG, "padding -1x0");
    expect_filter_error(&d, x, dy, dw, db, CLCNN_ERR_INVALID_ARG, "padding -1x0");
    d = clcnn_conv2d_desc_default();
    d.dilation_w = 0;
    expect_data_error(&d, dy, w, dx, CLCNN_ERR_INVALID_ARG, "dilation 1x0");
    d = clcnn_conv2d_desc_default();
    d.groups = 3; /* divides 3 channels but not 16 outputs */
    expect_filter_error(&d, x, dy, dw, db, CLCNN_ERR_SHAPE, "groups 3 does not divide the 16");
    /* algorithms without a kernel for a pass fail cleanly when forced (winograd has
     * stride-1 data gradients: tests/test_conv2d_algos.c; implicit_gemm runs every
     * filter gradient: tests/test_conv2d_wgrad.c) */
    const clcnn_conv_algo missing[] = {CLCNN_CONV_WINOGRAD, CLCNN_CONV_DEPTHWISE};
    for (int i = 0; i < 2; i++) {
        d = clcnn_conv2d_desc_default();
        d.algo = missing[i];
        if (missing[i] == CLCNN_CONV_DEPTHWISE)
            expect_data_error(&d, dy, w, dx, CLCNN_ERR_UNSUPPORTED,
                              clcnn_conv_algo_name(missing[i]));
        expect_filter_error(&d, x, dy, dw, db, CLCNN_ERR_UNSUPPORTED,
                            clcnn_conv_algo_name(missing[i]));
    }
    expect_data_error(NULL, dy, w, dx, CLCNN_ERR_INVALID_ARG, "descriptor");
    expect_filter_error(NULL, x, dy, dw, db, CLCNN_ERR_INVALID_ARG, "descriptor");
    clcnn_tensor *all[] = {x, w, w4, dy, dybad, dx, dw, dwbad, db, dbbad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clcnn_tensor_free(all[i]);
}

/* ---- correctness ------------------------------------------------------------------------ */

static void test_random_sweep(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(777001);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(130, 12); i++) {
        ref_conv cv = rcp_random_conv(&rng, 4);
        problem pb;
        problem_init(&pb, &cv, 9000 + (uint64_t)i);
        ok &= check_problem(&pb, 0);
        problem_free(&pb);
    }
    assert_true(ok);
}

static void test_edge_cases(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),    /* everything 1 */
        rcp_conv(1, 3, 1, 1, 5, 3, 3, 1, 1, 1, 1),    /* 1x1 image */
        rcp_conv(2, 5, 7, 9, 7, 3, 3, 1, 1, 1, 1),    /* odd sizes */
        rcp_conv(1, 3, 11, 11, 6, 2, 2, 3, 0, 1, 1),  /* stride > kernel: rows with no gradient */
        rcp_conv(2, 2, 5, 5, 3, 3, 3, 1, 4, 1, 1),    /* padding >= kernel */
        rcp_conv(1, 4, 13, 13, 4, 3, 3, 1, 2, 2, 1),  /* dilation */
        rcp_conv(2, 6, 9, 8, 6, 3, 3, 2, 1, 1, 6),    /* depthwise */
        rcp_conv(1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 4),    /* depthwise multiplier 2 */
        rcp_conv(2, 6, 7, 7, 9, 3, 3, 1, 1, 1, 3),    /* groups */
        rcp_conv(3, 16, 6, 6, 24, 1, 1, 1, 0, 1, 1),  /* 1x1: gemm without im2col */
        rcp_conv(2, 16, 6, 6, 24, 1, 1, 1, 0, 1, 4),  /* grouped 1x1 */
        rcp_conv(1, 8, 9, 9, 16, 1, 1, 2, 0, 1, 1),   /* 1x1 stride 2 */
        rcp_conv(2, 9, 17, 3, 33, 3, 1, 1, 1, 1, 1),  /* r != s */
        rcp_conv(40, 1, 12, 12, 2, 5, 5, 1, 2, 1, 1), /* few taps, long batch: split reduction */
        rcp_conv(1, 3, 20, 30, 10, 5, 5, 2, 2, 1, 1), /* wide rows, stride 2 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem pb;
        problem_init(&pb, &cases[i], 300 + i);
        ok &= check_problem(&pb, 0);
        problem_free(&pb);
    }
    assert_true(ok);
}

/* Reduced anchor layers (smaller batch / channels / images so that the double
 * reference stays fast, same kernel, stride and padding): AlexNet conv1 (11x11 s4),
 * VGG 3x3 p1, ResNet 1x1, LeNet 5x5 p2 with a longer batch. */
static void test_anchor_like_shapes(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    ref_conv cases[] = {
        rcp_conv(2, 3, 67, 67, 24, 11, 11, 4, 0, 1, 1),
        rcp_conv(2, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1),
        rcp_conv(2, 128, 14, 14, 64, 1, 1, 1, 0, 1, 1),
        rcp_conv(64, 1, 28, 28, 32, 5, 5, 1, 2, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem pb;
        problem_init(&pb, &cases[i], 400 + i);
        ok &= check_problem(&pb, 1);
        problem_free(&pb);
    }
    assert_true(ok);
}

/* The direct kernels with other tile parameters than this device's table picks (the
 * GPU table's, and odd tiles with 2-wide vectors) via $CLCNN_CONV_DIRECT_CFG. */
static void test_direct_tile_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"4 2 4 2", "1 2 4 1", "3 3 2 3"};
    tu_rng rng = tu_rng_seed(4343);
    int ok = 1;
    for (size_t c = 0; c < 3; c++) {
        setenv("CLCNN_CONV_DIRECT_CFG", cfgs[c], 1);
        for (int i = 0; i < (int)tu_small_count(20, 3); i++) {
            ref_conv cv = rcp_random_conv(&rng, 4);
            problem pb;
            problem_init(&pb, &cv, 7100 + (uint64_t)i);
            result r = run_backward(&pb, CLCNN_CONV_DIRECT);
            if (!check_result(&pb, &r, CLCNN_CONV_DIRECT, 0)) {
                fprintf(stderr, "  (tiles %s)\n", cfgs[c]);
                ok = 0;
            }
            result_free(&r);
            problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_DIRECT_CFG");
    assert_true(ok);
}

/* Reads the whole buffer of an offset_tensor; checks the elements around the view are
 * still NaN and returns the view's values (malloc'd). */
static float *download_view(const clcnn_tensor *t, int *untouched) {
    size_t all_n = t->offset + t->numel + 5;
    float *all = malloc(all_n * sizeof *all), *v = malloc(t->numel * sizeof *v);
    assert_int_equal(clEnqueueReadBuffer(clcnn_device_queue(tu_device()), clcnn_tensor_mem(t),
                                         CL_TRUE, 0, all_n * sizeof(float), all, 0, NULL, NULL),
                     CL_SUCCESS);
    for (size_t i = 0; i < all_n; i++)
        if ((i < t->offset || i >= t->offset + t->numel) && !isnan(all[i])) *untouched = 0;
    memcpy(v, all + t->offset, t->numel * sizeof *v);
    free(all);
    return v;
}

/* Tensors at element offsets inside NaN-filled buffers (the direct filter kernel walks
 * stride-1 planes as one run with full vector loads wherever they stay inside the tensor:
 * lanes outside a row must be zeroed, never multiplied), and +inf at the ends of rows of
 * x and dy: a lane past a row end that reached one would turn a finite tap gradient into
 * NaN. */
static void test_offsets_and_row_ends(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1),    /* planes shorter than one 16-wide run */
        rcp_conv(3, 17, 7, 9, 9, 3, 3, 1, 1, 1, 1),   /* 16 input channels per work-item */
        rcp_conv(2, 2, 9, 11, 20, 5, 5, 1, 2, 1, 1),  /* one input channel, 16 output channels */
        rcp_conv(2, 4, 9, 9, 6, 3, 3, 1, 2, 2, 2),    /* dilation, groups */
        rcp_conv(2, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1) /* the bn model's conv2, reduced */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem pb;
        problem_init(&pb, &cases[i], 800 + i);
        const ref_conv *cv = &pb.cv;
        for (int inf = 0; inf < 2; inf++) {
            if (inf) { /* +inf at the first or last column of some rows of x and dy */
                size_t nx = ref_conv_x_size(cv), ny = ref_conv_y_size(cv);
                for (size_t row = 1; row * (size_t)cv->w < nx; row += 7)
                    pb.x[row * (size_t)cv->w + (row % 2 ? 0 : (size_t)cv->w - 1)] = INFINITY;
                for (size_t row = 2; row * (size_t)cv->q < ny; row += 11)
                    pb.dy[row * (size_t)cv->q + (row % 2 ? 0 : (size_t)cv->q - 1)] = INFINITY;
                double *xd = rcp_to_double(pb.x, nx), *dyd = rcp_to_double(pb.dy, ny);
                double *wd = rcp_to_double(pb.w, ref_conv_w_size(cv));
                ref_conv2d_backward_data(cv, dyd, wd, pb.dx);
                ref_conv2d_backward_filter(cv, xd, dyd, pb.dw);
                ref_conv2d_bias_grad(cv, dyd, pb.db);
                free(xd);
                free(dyd);
                free(wd);
            }
            size_t xs[4] = {cv->n, cv->c, cv->h, cv->w};
            size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
            size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
            /* gemm multiplies im2col's padding zeros by dy: inf there gives NaN, a
             * different (also non-finite) answer; the inf case checks direct only */
            for (size_t a = 0; a < (inf ? 1u : 2u); a++) {
                clcnn_tensor *x = rcp_offset_tensor(4, xs, 3, pb.x),
                             *w = rcp_offset_tensor(4, ws, 7, pb.w);
                clcnn_tensor *dy = rcp_offset_tensor(4, ys, 5, pb.dy),
                             *dx = rcp_offset_tensor(4, xs, 9, NULL);
                clcnn_tensor *dw = rcp_offset_tensor(4, ws, 1, NULL);
                clcnn_tensor *db = rcp_offset_tensor(1, (size_t[]){cv->k}, 2, NULL);
                clcnn_conv2d_desc d = rcp_make_desc(cv, algos[a]);
                TU_OK(clcnn_conv2d_backward_data(tu_device(), &d, dy, w, dx));
                TU_OK(clcnn_conv2d_backward_filter(tu_device(), &d, x, dy, dw, db));
                int untouched = 1;
                result r = {download_view(dx, &untouched), download_view(dw, &untouched),
                            download_view(db, &untouched)};
                if (!check_result(&pb, &r, algos[a], 0) || !untouched) {
                    fprintf(stderr, "  (offsets, inf %d, untouched %d)\n", inf, untouched);
                    ok = 0;
                }
                result_free(&r);
                clcnn_tensor *all[] = {x, w, dy, dx, dw, db};
                for (int j = 0; j < 6; j++)
                    clcnn_tensor_free(all[j]);
            }
        }
        problem_free(&pb);
    }
    assert_true(ok);
}

static void test_auto(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 32, 12, 12, 32, 3, 3, 1, 1, 1, 1),
        rcp_conv(2, 8, 12, 12, 8, 3, 3, 1, 1, 1, 8),
        rcp_conv(2, 32, 7, 7, 64, 1, 1, 1, 0, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem pb;
        problem_init(&pb, &cases[i], 500 + i);
        result r = run_backward(&pb, CLCNN_CONV_AUTO);
        ok &= check_result(&pb, &r, CLCNN_CONV_AUTO, 0);
        result_free(&r);
        problem_free(&pb);
    }
    assert_true(ok);
}

/* Tiny workspace limits: the gemm paths chunk the batch, split images into row bands
 * (filter) or group ranges (data). */
static void test_gemm_workspace_chunking(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(5, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1), rcp_conv(3, 6, 10, 7, 6, 3, 2, 2, 1, 1, 3),
        rcp_conv(4, 16, 5, 5, 8, 1, 1, 1, 0, 1, 2), /* 1x1: chunks of filter partials */
    };
    const char *limits[] = {"0.002", "0.0005", "0.00001"};
    int ok = 1;
    for (size_t l = 0; l < 3; l++) {
        setenv("CLCNN_CONV_WORKSPACE_MB", limits[l], 1);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            problem pb;
            problem_init(&pb, &cases[i], 600 + i);
            result r = run_backward(&pb, CLCNN_CONV_GEMM);
            if (!check_result(&pb, &r, CLCNN_CONV_GEMM, 0)) {
                fprintf(stderr, "  (workspace limit %s MB)\n", limits[l]);
                ok = 0;
            }
            result_free(&r);
            problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    assert_true(ok);
}

/* Two runs give bit-identical dx, dw and db (no atomics; fixed summation orders), also
 * when the direct filter kernel splits the batch. */
static void test_determinism(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(3, 12, 15, 15, 20, 3, 3, 1, 1, 1, 1),
        rcp_conv(2, 8, 11, 11, 8, 5, 5, 2, 2, 1, 4),
        rcp_conv(48, 1, 16, 16, 3, 5, 5, 1, 2, 1, 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        problem pb;
        problem_init(&pb, &cases[i], 700 + i);
        for (size_t a = 0; a < 2; a++) {
            result r1 = run_backward(&pb, algos[a]);
            result r2 = run_backward(&pb, algos[a]);
            assert_memory_equal(r1.dx, r2.dx, ref_conv_x_size(&pb.cv) * sizeof(float));
            assert_memory_equal(r1.dw, r2.dw, ref_conv_w_size(&pb.cv) * sizeof(float));
            assert_memory_equal(r1.db, r2.db, (size_t)pb.cv.k * sizeof(float));
            result_free(&r1);
            result_free(&r2);
        }
        problem_free(&pb);
    }
}

int main(void) {
    if (!tu_device()) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_finite_differences),
        cmocka_unit_test(test_backward_errors),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_anchor_like_shapes),
        cmocka_unit_test(test_direct_tile_variants),
        cmocka_unit_test(test_offsets_and_row_ends),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_gemm_workspace_chunking),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
