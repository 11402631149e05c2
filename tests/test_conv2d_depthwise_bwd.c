/* The depthwise backward passes (lib/ops/conv2d_depthwise.c, cl/conv2d_depthwise.cl: the
 * depthwise algorithm of clcnn_conv2d_backward_data and clcnn_conv2d_backward_filter)
 * against the double references ref_conv2d_backward_data / ref_conv2d_backward_filter /
 * ref_conv2d_bias_grad (tests/reference_conv.c):
 *   - a seeded sweep of random depthwise shapes (stride 1-3, padding, dilation, odd
 *     sizes, batch 1, kernels wider than one work-item's SB = 4 column taps, rows longer
 *     than one vector, 1 .. 70 channels);
 *   - MobileNet-V2's depthwise layers (perf/suites/mobilenet_v2.txt) at batch 1;
 *   - tensors at element offsets, bit-identical repeats, bad shapes and unsupported
 *     shapes (channel multiplier 2) leaving the outputs as they were, and the choice of
 *     AUTO for depthwise layers.
 *
 * Tolerances. Data: every dx element is a sum of at most r*s products of values in
 * [-1, 1], summed in float32: error <= r*s * 2^-24 * r*s, so atol 1e-5 + 1e-6 * r*s
 * (>= 10x that for r*s <= 49) and rtol 1e-5; a single missing or doubled product is
 * about 0.25 on average, far above. Filter: every dw element is a sum of L = n*p*q
 * products, summed in float32 in chunks: as in test_conv2d_wgrad.c, |got - ref| <=
 * 1e-5 + 2e-6 * L + 1e-4 |ref| for the small random shapes (L < 2000: below the 0.05 of a
 * missing product), and the normalised MSE at most 1e-9 for the MobileNet layers
 * (L up to 12544; float32 summation gives about 1e-13, one missed product about 1/L). */
#include "test_util.h"

#include "reference_conv.h"
#include "reference_conv_problem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ref_conv random_dw(tu_rng *rng) {
    for (;;) {
        ref_conv cv = {0};
        int big = tu_rng_int(rng, 0, 7) == 0;
        cv.c = big ? tu_rng_int(rng, 30, 70) : tu_rng_int(rng, 1, 9);
        cv.k = cv.c;
        cv.groups = cv.c;
        cv.n = tu_rng_int(rng, 1, 3);
        int wide = tu_rng_int(rng, 0, 5) == 0;
        cv.h = tu_rng_int(rng, 1, big ? 12 : 19);
        cv.w = wide ? tu_rng_int(rng, 20, 45) : tu_rng_int(rng, 1, big ? 12 : 19);
        int kind = tu_rng_int(rng, 0, 5);
        cv.r = kind == 0 ? tu_rng_int(rng, 5, 7) : tu_rng_int(rng, 1, 4);
        cv.s = kind == 1 ? tu_rng_int(rng, 5, 7) : tu_rng_int(rng, 1, 4);
        if (kind >= 3) cv.r = cv.s = 3;
        cv.stride_h = tu_rng_int(rng, 1, 3);
        cv.stride_w = tu_rng_int(rng, 1, 3);
        cv.pad_h = tu_rng_int(rng, 0, 3);
        cv.pad_w = tu_rng_int(rng, 0, 3);
        cv.dilation_h = tu_rng_int(rng, 1, 5) == 5 ? 2 : 1;
        cv.dilation_w = tu_rng_int(rng, 1, 5) == 5 ? 3 : 1;
        if (ref_conv_out(&cv)) return cv;
    }
}

static void describe(const char *pass, const ref_conv *cv, char *buf, size_t cap) {
    snprintf(buf, cap,
             "depthwise %s n%d c%d %dx%d %dx%d stride %dx%d pad %dx%d dil %dx%d (p %d q %d)", pass,
             cv->n, cv->c, cv->h, cv->w, cv->r, cv->s, cv->stride_h, cv->stride_w, cv->pad_h,
             cv->pad_w, cv->dilation_h, cv->dilation_w, cv->p, cv->q);
}

typedef struct problem {
    ref_conv cv;
    float *x, *w, *dy;
    double *dx_ref, *dw_ref, *db_ref;
} problem;

static void problem_init(problem *pb, const ref_conv *cv, uint64_t seed) {
    pb->cv = *cv;
    tu_rng rng = tu_rng_seed(seed);
    size_t nx = ref_conv_x_size(cv), ny = ref_conv_y_size(cv), nw = ref_conv_w_size(cv);
    pb->x = malloc(nx * sizeof(float));
    pb->w = malloc(nw * sizeof(float));
    pb->dy = malloc(ny * sizeof(float));
    pb->dx_ref = malloc(nx * sizeof(double));
    pb->dw_ref = malloc(nw * sizeof(double));
    pb->db_ref = malloc((size_t)cv->k * sizeof(double));
    assert_true(pb->x && pb->w && pb->dy && pb->dx_ref && pb->dw_ref && pb->db_ref);
    tu_fill_uniform(&rng, pb->x, nx, -1.0f, 1.0f);
    tu_fill_uniform(&rng, pb->w, nw, -1.0f, 1.0f);
    tu_fill_uniform(&rng, pb->dy, ny, -1.0f, 1.0f);
    double *xd = rcp_to_double(pb->x, nx), *wd = rcp_to_double(pb->w, nw);
    double *dyd = rcp_to_double(pb->dy, ny);
    ref_conv2d_backward_data(cv, dyd, wd, pb->dx_ref);
    ref_conv2d_backward_filter(cv, xd, dyd, pb->dw_ref);
    ref_conv2d_bias_grad(cv, dyd, pb->db_ref);
    free(xd);
    free(wd);
    free(dyd);
}

static void problem_free(problem *pb) {
    free(pb->x);
    free(pb->w);
    free(pb->dy);
    free(pb->dx_ref);
    free(pb->dw_ref);
    free(pb->db_ref);
}

static void shapes(const ref_conv *cv, size_t xs[4], size_t ws[4], size_t ys[4]) {
    size_t a[4] = {cv->n, cv->c, cv->h, cv->w}, b[4] = {cv->k, 1, cv->r, cv->s};
    size_t c[4] = {cv->n, cv->k, cv->p, cv->q};
    memcpy(xs, a, sizeof a);
    memcpy(ws, b, sizeof b);
    memcpy(ys, c, sizeof c);
}

static clcnn_tensor *make(int ndim, const size_t *shape, size_t off, const float *data) {
    if (off) return rcp_offset_tensor(ndim, shape, off, data);
    if (data) return tu_tensor_from(ndim, shape, data);
    clcnn_tensor *t = tu_tensor_new(CLCNN_F32, ndim, shape);
    TU_OK(clcnn_tensor_fill(t, NAN));
    return t;
}

/* dx by the depthwise algorithm (dx starts as NaN); malloc'd. */
static float *run_data(const problem *pb, size_t off) {
    size_t xs[4], ws[4], ys[4];
    shapes(&pb->cv, xs, ws, ys);
    clcnn_tensor *dy = make(4, ys, off ? off + 3 : 0, pb->dy);
    clcnn_tensor *w = make(4, ws, off ? off + 1 : 0, pb->w);
    clcnn_tensor *dx = make(4, xs, off, NULL);
    clcnn_conv2d_desc d = rcp_make_desc(&pb->cv, CLCNN_CONV_DEPTHWISE);
    TU_OK(clcnn_conv2d_backward_data(tu_device(), &d, dy, w, dx));
    float *got = tu_download(dx);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(w);
    clcnn_tensor_free(dx);
    return got;
}

/* dw (and db when db_out) by the depthwise algorithm (outputs start as NaN); malloc'd. */
static float *run_filter(const problem *pb, size_t off, float **db_out) {
    size_t xs[4], ws[4], ys[4];
    shapes(&pb->cv, xs, ws, ys);
    clcnn_tensor *x = make(4, xs, off, pb->x);
    clcnn_tensor *dy = make(4, ys, off ? off + 3 : 0, pb->dy);
    clcnn_tensor *dw = make(4, ws, off ? off + 1 : 0, NULL);
    clcnn_tensor *db = db_out ? make(1, (size_t[]){pb->cv.k}, off ? off + 2 : 0, NULL) : NULL;
    clcnn_conv2d_desc d = rcp_make_desc(&pb->cv, CLCNN_CONV_DEPTHWISE);
    TU_OK(clcnn_conv2d_backward_filter(tu_device(), &d, x, dy, dw, db));
    float *got = tu_download(dw);
    if (db_out) *db_out = tu_download(db);
    clcnn_tensor_free(x);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(dw);
    clcnn_tensor_free(db);
    return got;
}

/* Checks both passes of one shape; returns 1 when they match the reference. */
static int check_case(const ref_conv *cv, uint64_t seed, size_t off, int with_db, int nmse) {
    problem pb;
    problem_init(&pb, cv, seed);
    char what[256];
    int ok = 1;

    float *dx = run_data(&pb, off);
    describe("data", cv, what, sizeof what);
    ok &= tu_close(what, dx, pb.dx_ref, ref_conv_x_size(cv), 1e-5 + 1e-6 * cv->r * cv->s, 1e-5);
    free(dx);

    float *db = NULL;
    float *dw = run_filter(&pb, off, with_db ? &db : NULL);
    describe("filter", cv, what, sizeof what);
    size_t nw = ref_conv_w_size(cv);
    double L = (double)cv->n * cv->p * cv->q;
    if (nmse) {
        double e = tu_nmse(dw, pb.dw_ref, nw);
        if (e > 1e-9 || isnan(e)) {
            print_message("%s: dw nmse %g > 1e-9\n", what, e);
            ok = 0;
        }
    } else {
        ok &= tu_close(what, dw, pb.dw_ref, nw, 1e-5 + 2e-6 * L, 1e-4);
    }
    if (with_db) ok &= tu_close("db", db, pb.db_ref, (size_t)cv->k, 1e-5 + 2e-6 * L, 1e-4);
    free(dw);
    free(db);
    problem_free(&pb);
    return ok;
}

static void test_random_shapes(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(0xd3b3d);
    int bad = 0;
    for (int i = 0; i < (int)tu_small_count(130, 12); i++) {
        ref_conv cv = random_dw(&rng);
        bad += !check_case(&cv, 1000 + (uint64_t)i, 0, i % 4 == 0, 0);
    }
    assert_int_equal(bad, 0);
}

static void test_corner_cases(void **state) {
    (void)state;
    const ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),    /* a single element */
        rcp_conv(1, 3, 1, 40, 3, 1, 7, 1, 3, 1, 3),   /* one row, 7 taps (two SB blocks) */
        rcp_conv(2, 2, 17, 1, 2, 5, 1, 2, 2, 1, 2),   /* one column */
        rcp_conv(1, 4, 9, 9, 4, 3, 3, 3, 0, 1, 4),    /* stride 3, no padding */
        rcp_conv(1, 2, 10, 33, 2, 3, 3, 2, 1, 3, 2),  /* dilation 3, stride 2 */
        rcp_conv(3, 5, 6, 6, 5, 6, 6, 1, 0, 1, 5),    /* kernel as large as the input */
        rcp_conv(1, 16, 5, 5, 16, 3, 3, 1, 3, 1, 16), /* padding > kernel extent - 1 */
        rcp_conv(1, 1, 300, 70, 1, 3, 3, 2, 1, 1, 1), /* one channel, long reduction */
        rcp_conv(2, 7, 12, 100, 7, 2, 4, 1, 1, 2, 7), /* even kernels, wide rows */
        /* small planes, many channels: several images per filter-gradient chunk */
        rcp_conv(4, 96, 7, 7, 96, 3, 3, 1, 1, 1, 96),    /* 2 images per chunk */
        rcp_conv(5, 200, 9, 9, 200, 3, 3, 2, 1, 1, 200), /* all 5 in one: no partials */
        rcp_conv(3, 150, 5, 13, 150, 3, 5, 1, 2, 1, 150),
        /* data gradient, stride 2: taps left of the first column, odd and tiny widths,
         * wide kernels, dilation */
        rcp_conv(2, 3, 9, 17, 3, 3, 3, 2, 0, 1, 3),
        rcp_conv(1, 5, 8, 33, 5, 3, 3, 2, 2, 1, 5),
        rcp_conv(2, 4, 11, 2, 4, 5, 5, 2, 3, 1, 4),
        rcp_conv(3, 9, 7, 1, 9, 3, 3, 2, 1, 1, 9),
        rcp_conv(1, 6, 13, 40, 6, 3, 3, 2, 1, 2, 6),
        /* data gradient, stride 1 (the forward kernel, filters rotated): padding 0 of a
         * dilated kernel, 1x1 */
        rcp_conv(2, 5, 10, 21, 5, 3, 3, 1, 0, 2, 5),
        rcp_conv(1, 3, 6, 19, 3, 1, 1, 1, 0, 1, 3),
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        double L = (double)cv.n * cv.p * cv.q;
        bad += !check_case(&cv, 77 + i, 0, 1, L > 2000);
    }
    assert_int_equal(bad, 0);
}

/* perf/suites/mobilenet_v2.txt, the _dw rows, at batch 1. */
static void test_mobilenet(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    const int layers[][4] = {{32, 112, 1, 0}, {96, 112, 2, 0}, {144, 56, 1, 0}, {144, 56, 2, 0},
                             {192, 28, 1, 0}, {192, 28, 2, 0}, {384, 14, 1, 0}, {576, 14, 1, 0},
                             {576, 14, 2, 0}, {960, 7, 1, 0}};
    int bad = 0;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        int c = layers[i][0], hw = layers[i][1], st = layers[i][2];
        ref_conv cv = rcp_conv(1, c, hw, hw, c, 3, 3, st, 1, 1, c);
        assert_true(ref_conv_out(&cv));
        bad += !check_case(&cv, 500 + i, 0, 0, 1);
    }
    assert_int_equal(bad, 0);
}

static void test_offsets(void **state) {
    (void)state;
    const ref_conv cases[] = {
        rcp_conv(2, 5, 13, 21, 5, 3, 3, 1, 1, 1, 5),
        rcp_conv(3, 6, 16, 16, 6, 3, 3, 2, 1, 1, 6),
        rcp_conv(1, 3, 9, 30, 3, 5, 5, 3, 2, 2, 3),
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        bad += !check_case(&cv, 900 + i, 7 + 4 * i, 1, 0);
    }
    assert_int_equal(bad, 0);
}

/* Stride-2 3x3 layers whose last input column (and row) no output reads: infinities
 * there must not reach dw (the lanes past a dy row's end meet them, as 0 * inf). Rows of
 * one tile, of two and wider (the kernel's two loop orders). */
static void test_unread_infinities(void **state) {
    (void)state;
    const ref_conv cases[] = {
        rcp_conv(2, 5, 9, 8, 5, 3, 3, 2, 0, 1, 5), /* the last row at x's end */
        rcp_conv(1, 3, 8, 36, 3, 3, 3, 2, 0, 1, 3),
        rcp_conv(2, 4, 6, 40, 4, 3, 3, 2, 0, 1, 4),
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        problem pb;
        problem_init(&pb, &cv, 950 + i);
        int unread = 0;
        for (int ni = 0; ni < cv.n * cv.c; ni++)
            for (int hi = 0; hi < cv.h; hi++)
                for (int wi = 0; wi < cv.w; wi++)
                    if (wi > 2 * cv.q || hi > 2 * cv.p) {
                        pb.x[((size_t)ni * cv.h + hi) * cv.w + wi] = INFINITY;
                        unread++;
                    }
        assert_true(unread > 0);
        float *dw = run_filter(&pb, 0, NULL);
        char what[256];
        describe("filter, unread inf", &cv, what, sizeof what);
        bad += !tu_close(what, dw, pb.dw_ref, ref_conv_w_size(&cv), 1e-4, 1e-4);
        free(dw);
        problem_free(&pb);
    }
    assert_int_equal(bad, 0);
}

/* Two runs give the same bits (the filter gradient of these shapes has several partial
 * sums per channel). */
static void test_deterministic(void **state) {
    (void)state;
    const ref_conv cases[] = {
        rcp_conv(4, 8, 56, 56, 8, 3, 3, 1, 1, 1, 8),
        rcp_conv(3, 5, 41, 37, 5, 3, 3, 2, 1, 1, 5),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        problem pb;
        problem_init(&pb, &cv, 40 + i);
        size_t nx = ref_conv_x_size(&cv), nw = ref_conv_w_size(&cv);
        float *a = run_data(&pb, 0), *b = run_data(&pb, 0);
        assert_memory_equal(a, b, nx * sizeof(float));
        free(a);
        free(b);
        a = run_filter(&pb, 0, NULL);
        b = run_filter(&pb, 0, NULL);
        assert_memory_equal(a, b, nw * sizeof(float));
        double e = tu_nmse(a, pb.dw_ref, nw);
        if (!(e <= 1e-9)) fail_msg("deterministic case %zu: dw nmse %g", i, e);
        free(a);
        free(b);
        problem_free(&pb);
    }
}

/* Bad shapes (CLCNN_ERR_SHAPE) and shapes the algorithm does not support (a channel
 * multiplier of 2: CLCNN_ERR_UNSUPPORTED) write nothing. */
static void test_bad_shapes(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 4, 8, 8});
    clcnn_tensor *dy = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 4, 8, 8});
    clcnn_tensor *dybad = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 4, 7, 8});
    clcnn_tensor *dy8 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 8, 8, 8});
    clcnn_tensor *w = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 1, 3, 3});
    clcnn_tensor *w8 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){8, 1, 3, 3});
    clcnn_tensor *dx = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 4, 8, 8});
    clcnn_tensor *dw = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 1, 3, 3});
    clcnn_tensor *dw8 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){8, 1, 3, 3});
    clcnn_tensor *db = tu_tensor_new(CLCNN_F32, 1, (size_t[]){4});
    clcnn_tensor *all[] = {x, dy, dybad, dy8, w, w8, dx, dw, dw8, db};
    const int nall = 10, first_out = 6;
    for (int i = 0; i < nall; i++)
        TU_OK(clcnn_tensor_fill(all[i], 42.0f));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    d.groups = 4;
    d.algo = CLCNN_CONV_DEPTHWISE;
    assert_int_equal(clcnn_conv2d_backward_data(dev, &d, dybad, w, dx), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_conv2d_backward_filter(dev, &d, x, dybad, dw, db), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_conv2d_backward_filter(dev, &d, x, dy, dw8, db), CLCNN_ERR_SHAPE);
    /* channel multiplier 2 (k = 8 = 2c): a valid grouped convolution, not depthwise here */
    clcnn_status st = clcnn_conv2d_backward_data(dev, &d, dy8, w8, dx);
    if (st != CLCNN_ERR_UNSUPPORTED || !strstr(clcnn_last_error(), "depthwise"))
        fail_msg("multiplier 2, data: got %s '%s'", clcnn_status_str(st), clcnn_last_error());
    st = clcnn_conv2d_backward_filter(dev, &d, x, dy8, dw8, NULL);
    if (st != CLCNN_ERR_UNSUPPORTED)
        fail_msg("multiplier 2, filter: got %s '%s'", clcnn_status_str(st), clcnn_last_error());
    for (int i = first_out; i < nall; i++) {
        float *h = tu_download(all[i]);
        for (size_t j = 0; j < clcnn_tensor_numel(all[i]); j++)
            if (h[j] != 42.0f) fail_msg("tensor %d [%zu] = %g was written", i, j, h[j]);
        free(h);
    }
    for (int i = 0; i < nall; i++)
        clcnn_tensor_free(all[i]);
}

/* AUTO on a CPU (without a tuned entry) takes depthwise for both gradients of strided
 * depthwise layers, large planes and 3x3 kernels, direct for the filter gradient of other
 * kernels on small stride-1 planes (the rule and its measurements: pick_algo in
 * lib/ops/conv2d.c). */
static void test_auto(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    if (clcnn_device_get_info(dev)->type != CLCNN_DEVICE_CPU) skip();
    struct {
        int c, hw, stride, r;
        clcnn_conv_algo data, filter;
    } cases[] = {
        {32, 112, 1, 3, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DEPTHWISE},
        {96, 112, 2, 3, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DEPTHWISE},
        {576, 14, 2, 3, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DEPTHWISE},
        {144, 56, 1, 3, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DEPTHWISE},
        {192, 28, 1, 3, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DEPTHWISE},
        {192, 28, 1, 5, CLCNN_CONV_DEPTHWISE, CLCNN_CONV_DIRECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
        d.stride_h = d.stride_w = cases[i].stride;
        d.pad_h = d.pad_w = cases[i].r / 2;
        d.groups = cases[i].c;
        size_t xs[4] = {8, cases[i].c, cases[i].hw, cases[i].hw},
               ws[4] = {cases[i].c, 1, cases[i].r, cases[i].r};
        clcnn_conv_algo a;
        int db;
        TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_BACKWARD_DATA, &d, xs, ws, &a, &db));
        if (!db) assert_int_equal(a, cases[i].data);
        TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_BACKWARD_FILTER, &d, xs, ws, &a, &db));
        if (!db) assert_int_equal(a, cases[i].filter);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corner_cases),  cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_mobilenet),     cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_unread_infinities),
        cmocka_unit_test(test_bad_shapes),    cmocka_unit_test(test_auto),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return r;
}
