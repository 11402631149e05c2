/* Inverted dropout: the mask against the RNG's definition (tests/reference_elementwise.c),
 * determinism for the same (seed, step), the kept fraction against 1 - p, independence
 * between steps, y = x * mask, backward = dy * mask, p == 0, in place, errors. */
#include "test_util.h"

#include "reference_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {1, 2, 3, 5, 7, 16, 17, 63, 255, 257, 1000, 4097, 65537};
#define NSIZES (sizeof sizes / sizeof *sizes)

/* Forward: mask bit-exact with the reference RNG (it is a definition, the same on every
 * device), mask values 1/(1-p) within one float rounding, y = x * mask within one more
 * rounding: rtol 1e-6, atol 0. Backward likewise. */
static void test_matches_reference(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(301);
    clcnn_device *dev = tu_device();
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f, 0.999f};
    for (size_t i = 0; i < NSIZES + 6; i++) {
        int nd = 1;
        size_t shape[4] = {i < NSIZES ? sizes[i] : 0};
        if (i >= NSIZES) {
            nd = tu_rng_int(&r, 1, 4);
            for (int d = 0; d < nd; d++)
                shape[d] = (size_t)tu_rng_int(&r, 1, 30);
        }
        size_t n = 1;
        for (int d = 0; d < nd; d++)
            n *= shape[d];
        if (tu_small() && n > 5000) continue; /* keeps 1..4097 */
        float p = ps[i % 5];
        unsigned long long seed = tu_rng_next(&r), step = i * 1000003ULL;
        float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
        double *mref = malloc(n * sizeof *mref), *ref = malloc(n * sizeof *ref);
        tu_fill_uniform(&r, x, n, -2, 2);
        tu_fill_uniform(&r, dy, n, -1, 1);
        clcnn_tensor *tx = tu_tensor_from(nd, shape, x), *ty = tu_tensor_from(nd, shape, NULL);
        clcnn_tensor *tm = tu_tensor_from(nd, shape, NULL), *tdy = tu_tensor_from(nd, shape, dy);
        TU_OK(clcnn_dropout_forward(dev, p, seed, step, tx, ty, tm));
        float *y = tu_download(ty), *m = tu_download(tm);
        ref_dropout_mask(p, seed, step, n, mref);
        char what[96];
        snprintf(what, sizeof what, "dropout mask n=%zu p=%g", n, p);
        assert_true(tu_close(what, m, mref, n, 0, 1e-6));
        for (size_t j = 0; j < n; j++)
            ref[j] = x[j] * mref[j];
        snprintf(what, sizeof what, "dropout y n=%zu p=%g", n, p);
        assert_true(tu_close(what, y, ref, n, 0, 1e-6));
        TU_OK(clcnn_dropout_backward(dev, tm, tdy, ty));
        float *dx = tu_download(ty);
        for (size_t j = 0; j < n; j++)
            ref[j] = dy[j] * mref[j];
        snprintf(what, sizeof what, "dropout backward n=%zu p=%g", n, p);
        assert_true(tu_close(what, dx, ref, n, 0, 1e-6));
        if (p == 0.0f) /* exactly y = x, mask = 1 */
            for (size_t j = 0; j < n; j++)
                assert_true(y[j] == x[j] && m[j] == 1.0f);
        free(x), free(dy), free(y), free(m), free(dx), free(mref), free(ref);
        clcnn_tensor_free(tx);
        clcnn_tensor_free(ty);
        clcnn_tensor_free(tm);
        clcnn_tensor_free(tdy);
    }
}

/* Kept fraction over n = 2^21 elements: the count is Binomial(n, 1-p), standard deviation
 * sqrt(p(1-p)/n) <= 3.5e-4 in the fraction; the bound is 6 standard deviations (a false
 * alarm has probability ~2e-9 for a correct RNG; the seeds are fixed anyway). Two steps
 * of the same seed agree on an element with probability (1-p)^2 + p^2 when independent;
 * same bound. Also checks both the mean of the kept values (exactly 1/(1-p)) and that
 * the same (seed, step) gives the same mask bit for bit while other steps/seeds differ. */
static void test_statistics_and_determinism(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL(); /* statistics of 2M values; test_matches_reference has the tails */
    clcnn_device *dev = tu_device();
    const size_t n = 1u << 21;
    const size_t shape[2] = {1024, 2048};
    clcnn_tensor *tx = tu_tensor_from(2, shape, NULL), *ty = tu_tensor_from(2, shape, NULL);
    clcnn_tensor *tm = tu_tensor_from(2, shape, NULL);
    TU_OK(clcnn_tensor_fill(tx, 1.0f));
    const float ps[] = {0.1f, 0.5f, 0.8f};
    for (int k = 0; k < 3; k++) {
        double p = ps[k], sd = sqrt(p * (1 - p) / n), bound = 6 * sd;
        float scale = (float)(1.0 / (1.0 - p));
        TU_OK(clcnn_dropout_forward(dev, ps[k], 42, 7, tx, ty, tm));
        float *m1 = tu_download(tm), *y = tu_download(ty);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            assert_true(m1[i] == 0.0f || m1[i] == scale);
            assert_true(y[i] == m1[i]); /* x = 1 */
            kept += m1[i] != 0.0f;
        }
        double frac = (double)kept / n;
        if (fabs(frac - (1 - p)) > bound)
            fail_msg("p=%g: kept fraction %.6f, expected %.6f +- %.6f", p, frac, 1 - p, bound);

        TU_OK(clcnn_dropout_forward(dev, ps[k], 42, 7, tx, ty, tm)); /* same (seed, step) */
        float *m2 = tu_download(tm);
        assert_memory_equal(m1, m2, n * sizeof *m1);
        free(m2);

        const unsigned long long other[2][2] = {{42, 8}, {43, 7}}; /* next step, next seed */
        for (int o = 0; o < 2; o++) {
            TU_OK(clcnn_dropout_forward(dev, ps[k], other[o][0], other[o][1], tx, ty, tm));
            float *m3 = tu_download(tm);
            size_t agree = 0;
            for (size_t i = 0; i < n; i++)
                agree += (m1[i] != 0.0f) == (m3[i] != 0.0f);
            double fa = (double)agree / n, want = (1 - p) * (1 - p) + p * p;
            double sda = sqrt(want * (1 - want) / n);
            if (fabs(fa - want) > 6 * sda)
                fail_msg("p=%g seed %llu step %llu: masks agree on %.6f of elements, "
                         "independent masks would on %.6f +- %.6f",
                         p, other[o][0], other[o][1], fa, want, 6 * sda);
            free(m3);
        }
        free(m1);
        free(y);
    }
    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
    clcnn_tensor_free(tm);
}

/* y may be x (in place); dx may be dy. */
static void test_in_place(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(303);
    clcnn_device *dev = tu_device();
    const size_t n = 999;
    float *x = malloc(n * sizeof *x);
    double *mref = malloc(n * sizeof *mref), *ref = malloc(n * sizeof *ref);
    tu_fill_uniform(&r, x, n, -1, 1);
    clcnn_tensor *t = tu_tensor_from(1, &n, x), *tm = tu_tensor_from(1, &n, NULL);
    TU_OK(clcnn_dropout_forward(dev, 0.3f, 5, 6, t, t, tm));
    ref_dropout_mask(0.3f, 5, 6, n, mref);
    for (size_t i = 0; i < n; i++)
        ref[i] = x[i] * mref[i];
    float *y = tu_download(t);
    assert_true(tu_close("dropout in place", y, ref, n, 0, 1e-6));
    TU_OK(clcnn_tensor_upload(t, x, n * sizeof *x));
    TU_OK(clcnn_dropout_backward(dev, tm, t, t));
    free(y);
    y = tu_download(t);
    assert_true(tu_close("dropout backward in place", y, ref, n, 0, 1e-6));
    free(y), free(x), free(mref), free(ref);
    clcnn_tensor_free(t);
    clcnn_tensor_free(tm);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x = tu_tensor_from(2, (size_t[]){4, 5}, NULL);
    clcnn_tensor *y = tu_tensor_from(2, (size_t[]){4, 5}, NULL);
    clcnn_tensor *m = tu_tensor_from(2, (size_t[]){4, 5}, NULL);
    clcnn_tensor *bad = tu_tensor_from(2, (size_t[]){5, 4}, NULL);
    TU_OK(clcnn_tensor_fill(x, 1.0f));
    TU_OK(clcnn_tensor_fill(y, 3.0f));
    TU_OK(clcnn_tensor_fill(m, 3.0f));
    TU_OK(clcnn_tensor_fill(bad, 3.0f));
    const float bad_p[] = {-0.1f, 1.0f, 1.5f, NAN};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(clcnn_dropout_forward(dev, bad_p[i], 1, 1, x, y, m),
                         CLCNN_ERR_INVALID_ARG);
        assert_non_null(strstr(clcnn_last_error(), "[0, 1)"));
    }
    assert_int_equal(clcnn_dropout_forward(dev, 0.5f, 1, 1, x, bad, m), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "5x4"));
    assert_non_null(strstr(clcnn_last_error(), "4x5"));
    assert_int_equal(clcnn_dropout_forward(dev, 0.5f, 1, 1, x, y, bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_dropout_forward(dev, 0.5f, 1, 1, x, y, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dropout_forward(dev, 0.5f, 1, 1, x, y, y), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dropout_backward(dev, m, bad, y), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_dropout_backward(dev, m, x, bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_dropout_backward(NULL, m, x, y), CLCNN_ERR_INVALID_ARG);
    clcnn_tensor *ts[] = {y, m, bad};
    for (int i = 0; i < 3; i++) {
        float *h = tu_download(ts[i]);
        for (size_t j = 0; j < 20; j++)
            assert_true(h[j] == 3.0f);
        free(h);
    }
    clcnn_tensor_free(x);
    clcnn_tensor_free(y);
    clcnn_tensor_free(m);
    clcnn_tensor_free(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_statistics_and_determinism),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
