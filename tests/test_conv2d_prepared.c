/* The prepared forward convolution (cc_conv_fwd, lib/internal.h) against the double
 * reference (tests/reference_conv.c): every algorithm on hand-picked shapes (odd sizes,
 * padding, strides 1 and 2, dilation, groups, depthwise, pointwise, batch 1, 1x1 images,
 * enough channels for several reduction chunks) and a seeded random sweep, with and
 * without bias, activations none / relu / leaky (alpha 0.2) and, on implicit_gemm,
 * depthwise and AUTO, the plans' SiLU epilogue (CC_ACT_SILU), the residual on and off and
 * in place (z == y). x, z and y are views at non-zero offsets of one NaN-filled buffer
 * (as in a plan's arena), and the guards around y must stay NaN; the weights and bias
 * are overwritten with NaN after create (they must not be kept). Also: two runs give
 * identical bytes, the results equal clcnn_conv2d_forward bit for bit for the same
 * algorithm without a residual, implicit_gemm's few-channel kernel (forced) with every
 * epilogue, and the error paths (CLCNN_ERR_SHAPE / INVALID_ARG /
 * UNSUPPORTED with a message, outputs untouched).
 *
 * Tolerances as in test_conv2d_algos.c (inputs, weights, bias and z uniform in [-1, 1];
 * L = (c/groups)*r*s terms): |got - ref| <= 1e-6 * L + 1e-5 * |ref|, four times that for
 * winograd. The residual adds one rounding of a value of magnitude <= L + 2, inside it. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "reference_conv.h"
#include "reference_conv_problem.h"

static const clcnn_conv_algo all_algos[] = {CLCNN_CONV_DIRECT,        CLCNN_CONV_GEMM,
                                            CLCNN_CONV_IMPLICIT_GEMM, CLCNN_CONV_WINOGRAD,
                                            CLCNN_CONV_DEPTHWISE,     CLCNN_CONV_AUTO};
#define N_ALGOS (int)(sizeof all_algos / sizeof all_algos[0])

/* Stride S when winograd takes cv through space-to-depth (forward: stride S in both dims,
 * dilation 1, groups 1, 2S < r, s <= 3S), else 0. */
static int s2d_stride(const ref_conv *cv) {
    int S = cv->stride_h;
    if (S < 2 || cv->stride_w != S || cv->groups != 1 || cv->dilation_h != 1 || cv->dilation_w != 1)
        return 0;
    return cv->r > 2 * S && cv->r <= 3 * S && cv->s > 2 * S && cv->s <= 3 * S ? S : 0;
}

static int supports(clcnn_conv_algo algo, const ref_conv *cv) {
    if (algo == CLCNN_CONV_WINOGRAD)
        return (cv->r == 3 && cv->s == 3 && cv->stride_h == 1 && cv->stride_w == 1 &&
                cv->dilation_h == 1 && cv->dilation_w == 1) ||
               s2d_stride(cv);
    if (algo == CLCNN_CONV_DEPTHWISE) return cv->groups == cv->c && cv->groups == cv->k;
    return 1;
}

/* One case: the shape, algorithm and epilogue. */
typedef struct pcase {
    ref_conv cv;
    clcnn_conv_algo algo;
    int bias, act, residual, inplace;
    float alpha;
    uint64_t seed;
} pcase;

static void describe(const pcase *c, char *buf, size_t cap) {
    char base[256];
    rcp_describe(&c->cv, c->algo, c->bias, c->act, base, sizeof base);
    snprintf(buf, cap, "prepared %s alpha %g residual %d%s", base, c->alpha, c->residual,
             c->inplace ? " in place" : "");
}

static cc_conv_fwd_desc make_desc(const pcase *c) {
    const ref_conv *cv = &c->cv;
    cc_conv_fwd_desc d = {
        .conv = rcp_make_desc(cv, c->algo),
        .x = {cv->n, cv->c, cv->h, cv->w},
        .w = {cv->k, cv->c / cv->groups, cv->r, cv->s},
        .act = (clcnn_activation)c->act,
        .alpha = c->alpha,
        .residual = c->residual,
    };
    return d;
}

/* Host data and the double reference act(conv(x, w) + b + z) of a case. */
typedef struct pdata {
    float *x, *w, *b, *z;
    double *ref;
} pdata;

static void pdata_init(pdata *p, const pcase *c) {
    const ref_conv *cv = &c->cv;
    size_t nx = ref_conv_x_size(cv), nw = ref_conv_w_size(cv), ny = ref_conv_y_size(cv);
    tu_rng rng = tu_rng_seed(c->seed);
    p->x = malloc(nx * sizeof(float));
    p->w = malloc(nw * sizeof(float));
    p->b = malloc((size_t)cv->k * sizeof(float));
    p->z = malloc(ny * sizeof(float));
    p->ref = malloc(ny * sizeof(double));
    assert_true(p->x && p->w && p->b && p->z && p->ref);
    tu_fill_uniform(&rng, p->x, nx, -1, 1);
    tu_fill_uniform(&rng, p->w, nw, -1, 1);
    tu_fill_uniform(&rng, p->b, (size_t)cv->k, -1, 1);
    tu_fill_uniform(&rng, p->z, ny, -1, 1);
    double *xd = rcp_to_double(p->x, nx), *wd = rcp_to_double(p->w, nw);
    double *bd = rcp_to_double(p->b, (size_t)cv->k);
    ref_conv2d_forward(cv, xd, wd, c->bias ? bd : NULL, 0, 0.0, p->ref);
    for (size_t i = 0; i < ny; i++) {
        double v = p->ref[i] + (c->residual ? (double)p->z[i] : 0.0);
        if (c->act == CLCNN_ACT_RELU) v = v > 0 ? v : 0;
        if (c->act == CLCNN_ACT_LEAKY_RELU) v = v > 0 ? v : (double)c->alpha * v;
        if (c->act == (int)CC_ACT_SILU) v = v / (1.0 + exp(-v));
        p->ref[i] = v;
    }
    free(xd);
    free(wd);
    free(bd);
}

static void pdata_free(pdata *p) {
    free(p->x);
    free(p->w);
    free(p->b);
    free(p->z);
    free(p->ref);
}

/* Weights and bias as views at an offset of their own buffer. */
static clcnn_tensor *param_view(clcnn_tensor **base, int ndim, const size_t *shape,
                                const float *data) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    *base = tu_tensor_new(CLCNN_F32, 1, (size_t[]){numel + 9});
    TU_OK(clcnn_tensor_fill(*base, NAN));
    clcnn_tensor *t = cc_tensor_view_at(*base, ndim, shape, 4);
    assert_non_null(t);
    TU_OK(clcnn_tensor_upload(t, data, numel * sizeof(float)));
    return t;
}

/* Runs a case: reference, two runs (identical bytes), guards, and without a residual the
 * public call bit for bit. Returns 1 when everything matches. */
static int run_case(const pcase *c0) {
    clcnn_device *dev = tu_device();
    pcase cs = *c0;
    assert_true(ref_conv_out(&cs.cv));
    const pcase *c = &cs;
    const ref_conv *cv = &c->cv;
    char what[400];
    describe(c, what, sizeof what);
    pdata pd;
    pdata_init(&pd, c);
    rcp_arena a;
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w}, ys[4] = {cv->n, cv->k, cv->p, cv->q};
    rcp_arena_init(&a, xs, ys, c->residual, c->inplace, pd.x, pd.z);
    size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    clcnn_tensor *wbase, *bbase = NULL;
    clcnn_tensor *w = param_view(&wbase, 4, ws, pd.w);
    clcnn_tensor *b = c->bias ? param_view(&bbase, 1, (size_t[]){cv->k}, pd.b) : NULL;

    cc_conv_fwd_desc d = make_desc(c);
    cc_conv_fwd *f = NULL;
    TU_OK(cc_conv_fwd_create(dev, &d, w, b, &f));
    clcnn_conv_algo used = cc_conv_fwd_algo(f);
    assert_true(used != CLCNN_CONV_AUTO);
    if (c->algo != CLCNN_CONV_AUTO) assert_int_equal(used, c->algo);
    /* w and b are not kept: poison them */
    TU_OK(clcnn_tensor_fill(wbase, NAN));
    if (bbase) TU_OK(clcnn_tensor_fill(bbase, NAN));

    TU_OK(cc_conv_fwd_run(f, a.x, a.z, a.y));
    float *y1 = tu_download(a.y);
    int wino = used == CLCNN_CONV_WINOGRAD, S = wino ? s2d_stride(cv) : 0;
    /* terms summed: space-to-depth pads the kernel to 3S x 3S taps */
    double l = (double)(cv->c / cv->groups) * (S ? 9 * S * S : cv->r * cv->s);
    int ok = tu_close(what, y1, pd.ref, a.ny, (wino ? 4e-6 : 1e-6) * l, wino ? 4e-5 : 1e-5);
    ok &= rcp_arena_guards_ok(&a, what);

    /* again (in place: from the same z) */
    if (c->inplace) TU_OK(clcnn_tensor_upload(a.z, pd.z, a.ny * sizeof(float)));
    TU_OK(cc_conv_fwd_run(f, a.x, a.z, a.y));
    float *y2 = tu_download(a.y);
    if (memcmp(y1, y2, a.ny * sizeof(float)) != 0) {
        fprintf(stderr, "%s: a second run gave different bytes\n", what);
        ok = 0;
    }

    /* (SiLU is no public activation) */
    if (!c->residual && (c->act != CLCNN_ACT_LEAKY_RELU || c->alpha == 0.01f) &&
        c->act != (int)CC_ACT_SILU) {
        /* the public call with the same algorithm and fresh weights, bit for bit (its y
         * must not share x's buffer) */
        clcnn_conv2d_desc pdsc = rcp_make_desc(cv, used);
        clcnn_tensor *w2 = tu_tensor_from(4, ws, pd.w);
        clcnn_tensor *b2 = c->bias ? tu_tensor_from(1, (size_t[]){cv->k}, pd.b) : NULL;
        clcnn_tensor *y_pub = tu_tensor_new(CLCNN_F32, 4, clcnn_tensor_shape(a.y));
        TU_OK(clcnn_tensor_fill(y_pub, NAN));
        TU_OK(clcnn_conv2d_forward(dev, &pdsc, a.x, w2, b2, y_pub, (clcnn_activation)c->act));
        float *y3 = tu_download(y_pub);
        clcnn_tensor_free(y_pub);
        if (memcmp(y1, y3, a.ny * sizeof(float)) != 0) {
            fprintf(stderr, "%s: differs from clcnn_conv2d_forward with %s\n", what,
                    clcnn_conv_algo_name(used));
            ok = 0;
        }
        free(y3);
        clcnn_tensor_free(w2);
        clcnn_tensor_free(b2);
    }
    free(y1);
    free(y2);
    cc_conv_fwd_free(f);
    clcnn_tensor_free(w);
    clcnn_tensor_free(b);
    clcnn_tensor_free(wbase);
    clcnn_tensor_free(bbase);
    rcp_arena_free(&a);
    pdata_free(&pd);
    return ok;
}

/* ---- hand-picked shapes, every algorithm, three epilogues each ------------------------ */

static void test_shapes(void **state) {
    (void)state;
    const ref_conv shapes[] = {
        rcp_conv(2, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1),     /* odd sizes */
        rcp_conv(1, 3, 13, 10, 16, 3, 3, 2, 1, 1, 1),   /* stride 2, batch 1 */
        rcp_conv(2, 4, 12, 12, 6, 3, 3, 1, 2, 2, 1),    /* dilation 2 */
        rcp_conv(2, 6, 7, 9, 9, 3, 3, 1, 1, 1, 3),      /* groups */
        rcp_conv(2, 8, 10, 10, 8, 3, 3, 2, 1, 1, 8),    /* depthwise, stride 2 */
        rcp_conv(1, 12, 9, 9, 12, 5, 5, 1, 2, 1, 12),   /* depthwise 5x5 */
        rcp_conv(2, 9, 7, 7, 9, 3, 3, 1, 1, 1, 9),      /* depthwise 3x3 (compiled in), 7x7 */
        rcp_conv(1, 5, 14, 13, 5, 3, 3, 1, 1, 1, 5),    /* depthwise 3x3 (compiled in), 14x13 */
        rcp_conv(3, 16, 6, 6, 20, 1, 1, 1, 0, 1, 1),    /* pointwise */
        rcp_conv(2, 10, 8, 8, 18, 1, 1, 2, 0, 1, 1),    /* strided 1x1 */
        rcp_conv(1, 3, 1, 1, 4, 1, 1, 1, 0, 1, 1),      /* 1x1 image */
        rcp_conv(1, 3, 2, 3, 5, 3, 3, 1, 4, 1, 1),      /* padding >= kernel */
        rcp_conv(1, 130, 6, 7, 16, 3, 3, 1, 1, 1, 1),   /* several reduction chunks */
        rcp_conv(2, 24, 15, 15, 32, 3, 3, 1, 1, 1, 1),  /* larger, winograd F(4x4) */
        rcp_conv(2, 128, 7, 6, 128, 3, 3, 1, 1, 1, 1),  /* winograd's GEMM path on CPUs */
        rcp_conv(1, 1100, 4, 4, 8, 1, 1, 1, 0, 1, 1),   /* pointwise, several chunks */
        rcp_conv(2, 3, 27, 25, 10, 11, 11, 4, 1, 1, 1), /* winograd by space-to-depth */
        rcp_conv(1, 2, 13, 12, 7, 5, 6, 2, 2, 1, 1),    /* the same, 5x6 at stride 2 */
    };
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]), failures = 0, runs = 0;
    for (int i = 0; i < nshapes; i++) {
        for (int a = 0; a < N_ALGOS; a++) {
            if (!supports(all_algos[a], &shapes[i])) continue;
            pcase v[3] = {
                {shapes[i], all_algos[a], 1, CLCNN_ACT_LEAKY_RELU, 1, 0, 0.2f, 100 + i},
                {shapes[i], all_algos[a], i % 2, CLCNN_ACT_RELU, 1, 1, 0.2f, 200 + i},
                {shapes[i], all_algos[a], i % 2 == 0, i % 3 == 0 ? CLCNN_ACT_NONE : CLCNN_ACT_RELU,
                 0, 0, 0.2f, 300 + i},
            };
            for (int j = 0; j < 3; j++, runs++)
                failures += !run_case(&v[j]);
            /* the SiLU epilogue where it compiles in (AUTO: implicit_gemm when its rule
             * picks another algorithm), with and without a residual */
            clcnn_conv_algo al = all_algos[a];
            if (al == CLCNN_CONV_IMPLICIT_GEMM || al == CLCNN_CONV_DEPTHWISE ||
                al == CLCNN_CONV_AUTO) {
                pcase sc = {shapes[i], al, 1, (int)CC_ACT_SILU, i % 2, 0, 0.2f, 400 + i};
                failures += !run_case(&sc);
                runs++;
            }
        }
    }
    if (failures) fail_msg("%d of %d prepared cases failed", failures, runs);
}

/* ---- seeded random shapes, a random supported algorithm and epilogue each ------------- */

static void test_random(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(20261207);
    int failures = 0, runs = 0;
    for (int i = 0; i < (int)tu_small_count(30, 6); i++) {
        ref_conv cv = rcp_random_conv(&rng, 3);
        clcnn_conv_algo algo;
        do
            algo = all_algos[tu_rng_int(&rng, 0, N_ALGOS - 1)];
        while (!supports(algo, &cv));
        pcase c = {
            .cv = cv,
            .algo = algo,
            .bias = tu_rng_int(&rng, 0, 1),
            .act = tu_rng_int(&rng, 0, 2),
            .residual = tu_rng_int(&rng, 0, 1),
            .alpha = 0.2f,
            .seed = 1000 + (uint64_t)i,
        };
        c.inplace = c.residual && tu_rng_int(&rng, 0, 1);
        runs++;
        failures += !run_case(&c);
    }
    if (failures) fail_msg("%d of %d random prepared cases failed", failures, runs);
}

/* ---- the few-channel forward of implicit_gemm (lib/ops/conv2d_stem.c) ---------------- */

/* Forced with "stem" (on AVX-512 CPUs also the heuristic for such layers): every epilogue,
 * the residual in place, SiLU, offsets and guards, on shapes whose rows end in a partial
 * tile (the residual then read and y written in pieces) or in whole tiles. */
static void test_stem(void **state) {
    (void)state;
    const ref_conv shapes[] = {
        rcp_conv(2, 3, 20, 28, 10, 5, 5, 1, 2, 1, 1), /* rows of 28: a partial tile */
        rcp_conv(1, 1, 9, 32, 8, 3, 3, 1, 1, 1, 1),   /* whole tiles */
        rcp_conv(2, 3, 19, 35, 9, 7, 7, 2, 3, 1, 1),  /* stride 2, 18 columns */
    };
    setenv("CLCNN_CONV_IMPLICIT_CFG", "stem", 1);
    int failures = 0, runs = 0;
    for (int i = 0; i < 3; i++) {
        pcase v[4] = {
            {shapes[i], CLCNN_CONV_IMPLICIT_GEMM, 1, CLCNN_ACT_LEAKY_RELU, 1, 0, 0.2f, 700 + i},
            {shapes[i], CLCNN_CONV_IMPLICIT_GEMM, i % 2, CLCNN_ACT_RELU, 1, 1, 0.2f, 710 + i},
            {shapes[i], CLCNN_CONV_IMPLICIT_GEMM, 1, CLCNN_ACT_NONE, 0, 0, 0.2f, 720 + i},
            {shapes[i], CLCNN_CONV_IMPLICIT_GEMM, 1, (int)CC_ACT_SILU, i % 2, 0, 0.2f, 730 + i},
        };
        for (int j = 0; j < 4; j++, runs++)
            failures += !run_case(&v[j]);
    }
    unsetenv("CLCNN_CONV_IMPLICIT_CFG");
    if (failures) fail_msg("%d of %d few-channel cases failed", failures, runs);
}

/* Leaky ReLU with the public call's slope: bit for bit equal to it (run_case compares). */
static void test_leaky_default_alpha(void **state) {
    (void)state;
    ref_conv cv = rcp_conv(2, 6, 8, 9, 10, 3, 3, 1, 1, 1, 1);
    for (int a = 0; a < N_ALGOS; a++) {
        if (!supports(all_algos[a], &cv)) continue;
        pcase c = {cv, all_algos[a], 1, CLCNN_ACT_LEAKY_RELU, 0, 0, 0.01f, 77};
        assert_true(run_case(&c));
    }
}

/* ---- error paths ----------------------------------------------------------------------- */

#define EXPECT_FAIL(expr, code)                                                                    \
    do {                                                                                           \
        clcnn_status s_ = (expr);                                                                  \
        if (s_ != (code))                                                                          \
            fail_msg("%s gave %s, expected %s", #expr, clcnn_status_str(s_),                       \
                     clcnn_status_str(code));                                                      \
        assert_true(strlen(clcnn_last_error()) > 0);                                               \
        assert_non_null(strstr(clcnn_last_error(), "prepared"));                                   \
    } while (0)

static void expect_all(const clcnn_tensor *t, float v) {
    float *h = tu_download(t);
    size_t n = clcnn_tensor_numel(t);
    for (size_t i = 0; i < n; i++)
        if (h[i] != v) fail_msg("element %zu was written (%g) by a failing call", i, h[i]);
    free(h);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    ref_conv cv = rcp_conv(2, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1); /* y 2x8x6x6 */
    assert_true(ref_conv_out(&cv)); /* p, q: the host buffers are sized by them */
    pcase pc = {cv, CLCNN_CONV_AUTO, 1, CLCNN_ACT_RELU, 1, 0, 0.2f, 5};
    pdata pd;
    pdata_init(&pd, &pc);
    size_t xs[4] = {2, 4, 6, 6}, ws[4] = {8, 4, 3, 3}, ys[4] = {2, 8, 6, 6};
    clcnn_tensor *w = tu_tensor_from(4, ws, pd.w);
    clcnn_tensor *b = tu_tensor_from(1, (size_t[]){8}, pd.b);
    clcnn_tensor *x = tu_tensor_from(4, xs, pd.x);
    clcnn_tensor *y = tu_tensor_from(4, ys, NULL);
    clcnn_tensor *z = tu_tensor_from(4, ys, pd.z);
    cc_conv_fwd_desc d = make_desc(&pc);
    cc_conv_fwd *f = NULL;

    /* create */
    EXPECT_FAIL(cc_conv_fwd_create(NULL, &d, w, b, &f), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_create(dev, NULL, w, b, &f), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_create(dev, &d, NULL, b, &f), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_create(dev, &d, w, b, NULL), CLCNN_ERR_INVALID_ARG);
    cc_conv_fwd_desc bad = d;
    bad.w[1] = 5; /* 4 input channels, weights for 5 */
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_SHAPE);
    bad = d;
    bad.w[2] = bad.w[3] = 5; /* descriptor and tensor disagree */
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_SHAPE);
    clcnn_tensor *b7 = tu_tensor_from(1, (size_t[]){7}, pd.b);
    EXPECT_FAIL(cc_conv_fwd_create(dev, &d, w, b7, &f), CLCNN_ERR_SHAPE);
    bad = d;
    bad.act = (clcnn_activation)9;
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_INVALID_ARG);
    bad = d;
    bad.residual = 2;
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_INVALID_ARG);
    bad = d;
    bad.conv.stride_h = 2;
    bad.conv.algo = CLCNN_CONV_WINOGRAD;
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_UNSUPPORTED);
    bad = d;
    bad.conv.algo = CLCNN_CONV_DEPTHWISE;
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_UNSUPPORTED);
    bad = d; /* the SiLU epilogue on an algorithm that does not compile it in */
    bad.act = CC_ACT_SILU;
    bad.conv.algo = CLCNN_CONV_DIRECT;
    EXPECT_FAIL(cc_conv_fwd_create(dev, &bad, w, b, &f), CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "SiLU"));
    assert_null(f);

    /* run */
    TU_OK(cc_conv_fwd_create(dev, &d, w, b, &f));
    TU_OK(clcnn_tensor_fill(y, 7.0f));
    clcnn_tensor *x3 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){3, 4, 6, 6}); /* other batch */
    clcnn_tensor *z5 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 8, 5, 6});
    EXPECT_FAIL(cc_conv_fwd_run(NULL, x, z, y), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_run(f, NULL, z, y), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_run(f, x, z, NULL), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_run(f, x, NULL, y), CLCNN_ERR_INVALID_ARG); /* residual needs z */
    EXPECT_FAIL(cc_conv_fwd_run(f, x3, z, y), CLCNN_ERR_SHAPE);
    EXPECT_FAIL(cc_conv_fwd_run(f, x, z5, y), CLCNN_ERR_SHAPE);
    EXPECT_FAIL(cc_conv_fwd_run(f, x, z, z5), CLCNN_ERR_SHAPE);
    /* one buffer: y overlapping x, z overlapping y without being y */
    size_t nx = 2 * 4 * 6 * 6, ny = 2 * 8 * 6 * 6;
    clcnn_tensor *base = tu_tensor_new(CLCNN_F32, 1, (size_t[]){nx + 2 * ny});
    TU_OK(clcnn_tensor_fill(base, 7.0f));
    clcnn_tensor *xb = cc_tensor_view_at(base, 4, xs, 0);
    clcnn_tensor *yb_over = cc_tensor_view_at(base, 4, ys, nx - 1);
    clcnn_tensor *yb = cc_tensor_view_at(base, 4, ys, nx);
    clcnn_tensor *zb_over = cc_tensor_view_at(base, 4, ys, nx + 3);
    clcnn_tensor *zb = cc_tensor_view_at(base, 4, ys, nx + ny); /* adjacent: fine */
    EXPECT_FAIL(cc_conv_fwd_run(f, xb, zb, yb_over), CLCNN_ERR_INVALID_ARG);
    EXPECT_FAIL(cc_conv_fwd_run(f, xb, zb_over, yb), CLCNN_ERR_INVALID_ARG);
    expect_all(base, 7.0f);
    expect_all(y, 7.0f);
    TU_OK(cc_conv_fwd_run(f, xb, zb, yb)); /* x, y, z adjacent in one buffer */
    cc_conv_fwd_free(f);

    /* without a residual, z is refused */
    d.residual = 0;
    TU_OK(cc_conv_fwd_create(dev, &d, w, b, &f));
    EXPECT_FAIL(cc_conv_fwd_run(f, x, z, y), CLCNN_ERR_INVALID_ARG);
    expect_all(y, 7.0f);
    TU_OK(cc_conv_fwd_run(f, x, NULL, y));
    cc_conv_fwd_free(f);
    cc_conv_fwd_free(NULL);
    assert_int_equal(cc_conv_fwd_algo(NULL), CLCNN_CONV_AUTO);

    clcnn_tensor *views[] = {xb, yb_over, yb, zb_over, zb, base, x3, z5, b7, w, b, x, y, z};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        clcnn_tensor_free(views[i]);
    pdata_free(&pd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors), cmocka_unit_test(test_leaky_default_alpha),
        cmocka_unit_test(test_shapes), cmocka_unit_test(test_random),
        cmocka_unit_test(test_stem),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
