/* SGD (with and without momentum, weight decay) and Adam update kernels against a double
 * reference (tests/reference_elementwise.c) carried over several steps, on a sweep of
 * sizes; hyper-parameter validation and shape errors. */
#include "test_util.h"

#include "reference_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {1, 2, 3, 5, 7, 16, 17, 63, 255, 257, 1000, 4097, 65537, 300007};
#define NSIZES (sizeof sizes / sizeof *sizes)
#define STEPS 10

static float *to_float(const double *d, size_t n) {
    float *f = malloc(n * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    return f;
}

static int compare(const char *what, size_t n, const clcnn_tensor *t, const double *ref,
                   double atol, double rtol) {
    float *h = tu_download(t);
    int ok = tu_close(what, h, ref, n, atol, rtol);
    free(h);
    return ok;
}

/* SGD over STEPS steps with fresh gradients each step; the device state is float, the
 * reference double from the same start. Per step the device rounds g', v and p a few
 * times (~2^-24 relative each); with |p| <= 1, |g| <= 1, lr <= 0.1, momentum <= 0.9 the
 * velocity stays below ~10 and 10 steps accumulate well under 1e-5 relative error:
 * atol 1e-6, rtol 1e-5 for p and v. */
static void test_sgd(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(401);
    clcnn_device *dev = tu_device();
    /* lr, momentum, weight decay, use velocity */
    const float cfg[][4] = {{0.1f, 0.9f, 1e-4f, 1},
                            {0.05f, 0.0f, 0.0f, 0},
                            {0.01f, 0.0f, 0.01f, 1},
                            {0.1f, 0.5f, 0.0f, 1},
                            {0.02f, 0.0f, 0.05f, 0}};
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        if (tu_small() && n > 5000) continue; /* keeps 1..4097 */
        const float *c = cfg[i % 5];
        int use_v = c[3] != 0;
        double *p = malloc(n * sizeof *p), *v = calloc(n, sizeof *v);
        float *g = malloc(n * sizeof *g);
        for (size_t j = 0; j < n; j++)
            p[j] = tu_rng_uniform(&r, -1, 1);
        float *pf = to_float(p, n);
        for (size_t j = 0; j < n; j++)
            p[j] = pf[j];
        clcnn_tensor *tp = tu_tensor_from(1, &n, pf), *tg = tu_tensor_from(1, &n, NULL);
        clcnn_tensor *tv = use_v ? tu_tensor_from(1, &n, NULL) : NULL;
        if (tv) TU_OK(clcnn_tensor_fill(tv, 0.0f));
        for (int s = 0; s < STEPS; s++) {
            tu_fill_uniform(&r, g, n, -1, 1);
            TU_OK(clcnn_tensor_upload(tg, g, n * sizeof *g));
            TU_OK(clcnn_sgd_update(dev, tp, tg, tv, c[0], c[1], c[2]));
            ref_sgd_step(p, g, use_v ? v : NULL, n, c[0], c[1], c[2]);
        }
        char what[128];
        snprintf(what, sizeof what, "sgd param n=%zu lr=%g momentum=%g wd=%g velocity=%d", n, c[0],
                 c[1], c[2], use_v);
        assert_true(compare(what, n, tp, p, 1e-6, 1e-5));
        if (tv) {
            snprintf(what, sizeof what, "sgd velocity n=%zu", n);
            assert_true(compare(what, n, tv, v, 1e-6, 1e-5));
        }
        free(p), free(v), free(g), free(pf);
        clcnn_tensor_free(tp);
        clcnn_tensor_free(tg);
        clcnn_tensor_free(tv);
    }
}

/* Adam over STEPS steps. m and v carry ~1e-7 relative rounding per step; the update
 * m_hat / (sqrt(v_hat) + eps) has magnitude <= ~1/(1-beta1) and relative error ~1e-6
 * (sqrt <= 3 ulp and division <= 2.5 ulp in OpenCL 1.2 single precision), times lr per
 * step, plus one rounding of p per step: atol 1e-6, rtol 1e-5 for p. v sums positive
 * terms (relative error only): atol 1e-9, rtol 1e-5. m sums gradients of both signs, so
 * it can cancel to far below the terms it rounded (|g| <= 1, ~2 roundings of 2^-24 per
 * step over 10 steps): atol 1e-6, rtol 1e-5. Gradients in [-1, 1] with a few tiny and
 * zero ones, so eps matters for some elements. */
static void test_adam(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(402);
    clcnn_device *dev = tu_device();
    /* lr, beta1, beta2, eps, weight decay */
    const float cfg[][5] = {{1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f},
                            {1e-2f, 0.8f, 0.99f, 1e-6f, 1e-2f},
                            {3e-4f, 0.0f, 0.5f, 1e-8f, 1e-4f},
                            {1e-3f, 0.95f, 0.9999f, 1e-3f, 0.0f}};
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        if (tu_small() && n > 5000) continue; /* keeps 1..4097 */
        const float *c = cfg[i % 4];
        double *p = malloc(n * sizeof *p), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
        float *g = malloc(n * sizeof *g);
        for (size_t j = 0; j < n; j++)
            p[j] = tu_rng_uniform(&r, -1, 1);
        float *pf = to_float(p, n);
        for (size_t j = 0; j < n; j++)
            p[j] = pf[j];
        clcnn_tensor *tp = tu_tensor_from(1, &n, pf), *tg = tu_tensor_from(1, &n, NULL);
        clcnn_tensor *tm = tu_tensor_from(1, &n, NULL), *tv = tu_tensor_from(1, &n, NULL);
        TU_OK(clcnn_tensor_fill(tm, 0.0f));
        TU_OK(clcnn_tensor_fill(tv, 0.0f));
        for (int t = 1; t <= STEPS; t++) {
            tu_fill_uniform(&r, g, n, -1, 1);
            for (size_t j = 0; j < n; j += 7)
                g[j] = j % 2 ? 1e-6f * g[j] : 0.0f;
            TU_OK(clcnn_tensor_upload(tg, g, n * sizeof *g));
            TU_OK(clcnn_adam_update(dev, tp, tg, tm, tv, c[0], c[1], c[2], c[3], c[4], t));
            ref_adam_step(p, g, m, v, n, c[0], c[1], c[2], c[3], c[4], t);
        }
        char what[128];
        snprintf(what, sizeof what, "adam param n=%zu lr=%g betas=(%g,%g) eps=%g wd=%g", n, c[0],
                 c[1], c[2], c[3], c[4]);
        assert_true(compare(what, n, tp, p, 1e-6, 1e-5));
        snprintf(what, sizeof what, "adam m n=%zu", n);
        assert_true(compare(what, n, tm, m, 1e-6, 1e-5));
        snprintf(what, sizeof what, "adam v n=%zu", n);
        assert_true(compare(what, n, tv, v, 1e-9, 1e-5));
        free(p), free(m), free(v), free(g), free(pf);
        clcnn_tensor_free(tp);
        clcnn_tensor_free(tg);
        clcnn_tensor_free(tm);
        clcnn_tensor_free(tv);
    }
}

/* The first Adam step moves every parameter with a non-zero gradient by ~lr (bias
 * correction makes m_hat / sqrt(v_hat) = sign(g)): a direct check of the correction. */
static void test_adam_first_step_is_lr(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const float g[] = {0.5f, -2.0f, 1e-3f, -7.0f};
    const float p0[] = {1, 1, 1, 1};
    const size_t n = 4;
    clcnn_tensor *tp = tu_tensor_from(1, &n, p0), *tg = tu_tensor_from(1, &n, g);
    clcnn_tensor *tm = tu_tensor_from(1, &n, NULL), *tv = tu_tensor_from(1, &n, NULL);
    TU_OK(clcnn_tensor_fill(tm, 0));
    TU_OK(clcnn_tensor_fill(tv, 0));
    TU_OK(clcnn_adam_update(dev, tp, tg, tm, tv, 0.01f, 0.9f, 0.999f, 1e-12f, 0.0f, 1));
    const double ref[] = {0.99, 1.01, 0.99, 1.01};
    assert_true(compare("adam first step", n, tp, ref, 1e-6, 1e-6));
    clcnn_tensor_free(tp);
    clcnn_tensor_free(tg);
    clcnn_tensor_free(tm);
    clcnn_tensor_free(tv);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const size_t n = 6;
    clcnn_tensor *p = tu_tensor_from(2, (size_t[]){2, 3}, NULL);
    clcnn_tensor *g = tu_tensor_from(1, &n, NULL); /* same numel, other shape: fine */
    clcnn_tensor *v = tu_tensor_from(2, (size_t[]){3, 2}, NULL);
    clcnn_tensor *m = tu_tensor_from(1, &n, NULL);
    clcnn_tensor *bad = tu_tensor_from(1, (size_t[]){7}, NULL);
    TU_OK(clcnn_tensor_fill(p, 1.0f));
    TU_OK(clcnn_tensor_fill(g, 1.0f));
    TU_OK(clcnn_tensor_fill(v, 0.0f));
    TU_OK(clcnn_tensor_fill(m, 0.0f));

    assert_int_equal(clcnn_sgd_update(dev, p, bad, v, 0.1f, 0.9f, 0), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3"));
    assert_non_null(strstr(clcnn_last_error(), "7"));
    assert_int_equal(clcnn_sgd_update(dev, p, g, bad, 0.1f, 0.9f, 0), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_sgd_update(dev, p, g, NULL, 0.1f, 0.9f, 0), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "velocity"));
    assert_int_equal(clcnn_sgd_update(dev, p, g, v, -0.1f, 0.9f, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_sgd_update(dev, p, g, v, NAN, 0.9f, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_sgd_update(dev, p, g, v, 0.1f, -1.0f, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_sgd_update(dev, p, g, v, 0.1f, 0.9f, -1), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_sgd_update(dev, p, NULL, v, 0.1f, 0.9f, 0), CLCNN_ERR_INVALID_ARG);

    assert_int_equal(clcnn_adam_update(dev, p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 0),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "t = 0"));
    assert_int_equal(clcnn_adam_update(dev, p, g, m, v, 1e-3f, 1.0f, 0.999f, 1e-8f, 0, 1),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_adam_update(dev, p, g, m, v, 1e-3f, 0.9f, -0.1f, 1e-8f, 0, 1),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_adam_update(dev, p, g, m, v, 1e-3f, 0.9f, 0.999f, -1e-8f, 0, 1),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_adam_update(dev, p, g, m, m, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_adam_update(dev, p, g, m, bad, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_adam_update(dev, p, bad, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_adam_update(NULL, p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1),
                     CLCNN_ERR_INVALID_ARG);

    /* Nothing moved. */
    float h[6];
    TU_OK(clcnn_tensor_download(p, h, sizeof h));
    for (int i = 0; i < 6; i++)
        assert_true(h[i] == 1.0f);
    TU_OK(clcnn_tensor_download(v, h, sizeof h));
    for (int i = 0; i < 6; i++)
        assert_true(h[i] == 0.0f);
    TU_OK(clcnn_tensor_download(m, h, sizeof h));
    for (int i = 0; i < 6; i++)
        assert_true(h[i] == 0.0f);

    /* Same element count, other shapes: accepted (p 2x3, g 6, v 3x2). */
    TU_OK(clcnn_sgd_update(dev, p, g, v, 0.5f, 0.9f, 0));
    TU_OK(clcnn_tensor_download(p, h, sizeof h));
    for (int i = 0; i < 6; i++)
        assert_true(h[i] == 0.5f);
    clcnn_tensor_free(p);
    clcnn_tensor_free(g);
    clcnn_tensor_free(v);
    clcnn_tensor_free(m);
    clcnn_tensor_free(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adam_first_step_is_lr),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
