/* clcnn_add and clcnn_axpby against the double reference (tests/reference_elementwise.c)
 * on a seeded sweep of sizes and shapes, aliasing, buffer offsets and error paths. */
#include "test_util.h"

#include "internal.h"
#include "reference_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1 element, odd sizes, non-multiples of 4, around the work-group size (256) and
 * large-ish ones. */
static const size_t sizes[] = {1,   2,   3,   4,    5,    7,    8,    9,     15,
                               16,  17,  31,  33,   63,   64,   65,   127,   255,
                               256, 257, 511, 1000, 1023, 1025, 4097, 65537, 1u << 20 | 3};
#define NSIZES (sizeof sizes / sizeof *sizes)
#define NRANDOM 12

/* Size i of the sweep: the fixed list, then random 1..4-D shapes (dims 1..40). */
static size_t sweep_shape(tu_rng *r, size_t i, int *ndim, size_t shape[4]) {
    if (i < NSIZES) {
        *ndim = 1;
        shape[0] = sizes[i];
        return sizes[i];
    }
    *ndim = tu_rng_int(r, 1, 4);
    size_t n = 1;
    for (int d = 0; d < *ndim; d++)
        n *= shape[d] = (size_t)tu_rng_int(r, 1, 40);
    return n;
}

static float *random_floats(tu_rng *r, size_t n, float lo, float hi) {
    float *h = malloc(n * sizeof *h);
    assert_non_null(h);
    tu_fill_uniform(r, h, n, lo, hi);
    return h;
}

/* A 1-D tensor of n elements that starts `off` elements into its buffer (the public API
 * only makes offset-0 tensors; operators must still honour t->offset). */
static clcnn_tensor *offset_tensor(size_t n, size_t off, clcnn_tensor **base) {
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_F32, 1, (size_t[]){n + off + 5}, base));
    TU_OK(clcnn_tensor_fill(*base, -777.0f));
    clcnn_tensor *v = NULL;
    TU_OK(clcnn_tensor_view(*base, 1, (size_t[]){n + off + 5}, &v));
    v->shape[0] = v->numel = n;
    v->offset = off;
    return v;
}

/* add: a single float rounding of a + b, |err| <= 2^-24 |ref|: rtol 1e-6 (16x margin). */
static void test_add_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(101);
    for (size_t i = 0; i < NSIZES + NRANDOM; i++) {
        int nd;
        size_t shape[4];
        size_t n = sweep_shape(&r, i, &nd, shape);
        if (tu_small() && n > 5000) continue; /* keeps 1..4097 */
        float *a = random_floats(&r, n, -1, 1), *b = random_floats(&r, n, -1, 1);
        double *ref = malloc(n * sizeof *ref);
        ref_add(a, b, n, ref);
        clcnn_tensor *ta = tu_tensor_from(nd, shape, a), *tb = tu_tensor_from(nd, shape, b);
        clcnn_tensor *ty = tu_tensor_from(nd, shape, NULL);
        TU_OK(clcnn_add(tu_device(), ta, tb, ty));
        float *y = tu_download(ty);
        char what[64];
        snprintf(what, sizeof what, "add n=%zu (case %zu)", n, i);
        assert_true(tu_close(what, y, ref, n, 0, 1e-6));
        clcnn_tensor_free(ta);
        clcnn_tensor_free(tb);
        clcnn_tensor_free(ty);
        free(a);
        free(b);
        free(y);
        free(ref);
    }
}

/* y may alias a, b or both (y = a + a). */
static void test_add_aliasing(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(102);
    const size_t n = 1001;
    float *a = random_floats(&r, n, -1, 1), *b = random_floats(&r, n, -1, 1);
    double *ref = malloc(n * sizeof *ref);
    for (int which = 0; which < 3; which++) {
        clcnn_tensor *ta = tu_tensor_from(1, &n, a), *tb = tu_tensor_from(1, &n, b);
        clcnn_tensor *in2 = which == 2 ? ta : tb, *out = which == 1 ? tb : ta;
        TU_OK(clcnn_add(tu_device(), ta, in2, out));
        ref_add(a, which == 2 ? a : b, n, ref);
        float *y = tu_download(out);
        assert_true(tu_close("add aliased", y, ref, n, 0, 1e-6));
        free(y);
        clcnn_tensor_free(ta);
        clcnn_tensor_free(tb);
    }
    free(a);
    free(b);
    free(ref);
}

/* Same element count, different shapes: read as flat arrays. */
static void test_add_different_shapes(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(103);
    float *a = random_floats(&r, 24, -1, 1), *b = random_floats(&r, 24, -1, 1);
    double ref[24];
    ref_add(a, b, 24, ref);
    clcnn_tensor *ta = tu_tensor_from(3, (size_t[]){2, 3, 4}, a);
    clcnn_tensor *tb = tu_tensor_from(1, (size_t[]){24}, b);
    clcnn_tensor *ty = tu_tensor_from(2, (size_t[]){6, 4}, NULL);
    TU_OK(clcnn_add(tu_device(), ta, tb, ty));
    float *y = tu_download(ty);
    assert_true(tu_close("add 2x3x4 + 24 -> 6x4", y, ref, 24, 0, 1e-6));
    free(y);
    free(a);
    free(b);
    clcnn_tensor_free(ta);
    clcnn_tensor_free(tb);
    clcnn_tensor_free(ty);
}

/* axpby: alpha*x and beta*y round once each, the sum once more (or an fma):
 * |err| <= 3 * 2^-24 * (|alpha x| + |beta y|) <= 3 * 6e-8 * 4 < 1e-6 for |x|,|y| <= 1
 * and |alpha|, |beta| <= 2, even under cancellation: atol 1e-6, rtol 1e-6. */
static void test_axpby_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(104);
    const float coef[][2] = {{1, 1}, {2, -1.5f}, {-0.5f, 0}, {0, 1.25f}, {0.3f, 0.7f}};
    for (size_t i = 0; i < NSIZES + NRANDOM; i++) {
        int nd;
        size_t shape[4];
        size_t n = sweep_shape(&r, i, &nd, shape);
        if (tu_small() && n > 5000) continue; /* keeps 1..4097 */
        float alpha = coef[i % 5][0], beta = coef[i % 5][1];
        float *x = random_floats(&r, n, -1, 1), *y0 = random_floats(&r, n, -1, 1);
        double *ref = malloc(n * sizeof *ref);
        ref_axpby(alpha, x, beta, y0, n, ref);
        clcnn_tensor *tx = tu_tensor_from(nd, shape, x), *ty = tu_tensor_from(nd, shape, y0);
        TU_OK(clcnn_axpby(tu_device(), alpha, tx, beta, ty));
        float *y = tu_download(ty);
        char what[96];
        snprintf(what, sizeof what, "axpby n=%zu alpha=%g beta=%g", n, alpha, beta);
        assert_true(tu_close(what, y, ref, n, 1e-6, 1e-6));
        clcnn_tensor_free(tx);
        clcnn_tensor_free(ty);
        free(x);
        free(y0);
        free(y);
        free(ref);
    }
}

/* beta == 0 does not read y: NaN in y does not leak into y = alpha * x. x == y works. */
static void test_axpby_beta_zero_and_alias(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(105);
    const size_t n = 77;
    float *x = random_floats(&r, n, -1, 1);
    double *ref = malloc(n * sizeof *ref);
    clcnn_tensor *tx = tu_tensor_from(1, &n, x), *ty = tu_tensor_from(1, &n, NULL);
    TU_OK(clcnn_tensor_fill(ty, NAN));
    TU_OK(clcnn_axpby(tu_device(), 3.0f, tx, 0.0f, ty));
    float *y = tu_download(ty);
    ref_axpby(3.0, x, 0.0, NULL, n, ref);
    assert_true(tu_close("axpby beta=0 over NaN", y, ref, n, 0, 1e-6));
    free(y);
    TU_OK(clcnn_axpby(tu_device(), 0.5f, tx, 2.0f, tx)); /* x = 0.5x + 2x */
    y = tu_download(tx);
    for (size_t i = 0; i < n; i++)
        ref[i] = 2.5 * x[i];
    assert_true(tu_close("axpby x aliased as y", y, ref, n, 1e-6, 1e-6));
    free(y);
    free(x);
    free(ref);
    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
}

/* Tensors that start inside their buffer: results land at the offset, nothing around
 * them is touched. */
static void test_offsets(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(106);
    const size_t n = 300;
    float *a = random_floats(&r, n, -1, 1), *b = random_floats(&r, n, -1, 1);
    clcnn_tensor *ba, *bb, *by;
    clcnn_tensor *ta = offset_tensor(n, 3, &ba), *tb = offset_tensor(n, 17, &bb);
    clcnn_tensor *ty = offset_tensor(n, 260, &by);
    TU_OK(clcnn_tensor_upload(ta, a, n * sizeof(float)));
    TU_OK(clcnn_tensor_upload(tb, b, n * sizeof(float)));
    TU_OK(clcnn_add(tu_device(), ta, tb, ty));
    double *ref = malloc(n * sizeof *ref);
    ref_add(a, b, n, ref);
    float *y = tu_download(ty);
    assert_true(tu_close("add with offsets", y, ref, n, 0, 1e-6));
    free(y);
    TU_OK(clcnn_axpby(tu_device(), 2.0f, ta, -1.0f, ty)); /* y = 2a - (a + b) */
    for (size_t i = 0; i < n; i++)
        ref[i] = 2.0 * a[i] - (double)(a[i] + b[i]);
    y = tu_download(ty);
    assert_true(tu_close("axpby with offsets", y, ref, n, 1e-6, 1e-6));
    free(y);
    float *whole = tu_download(by); /* the base: sentinel outside [260, 560) */
    for (size_t i = 0; i < clcnn_tensor_numel(by); i++)
        if (i < 260 || i >= 260 + n) assert_true(whole[i] == -777.0f);
    free(whole);
    clcnn_tensor_free(ta);
    clcnn_tensor_free(tb);
    clcnn_tensor_free(ty);
    clcnn_tensor_free(ba);
    clcnn_tensor_free(bb);
    clcnn_tensor_free(by);
    free(a);
    free(b);
    free(ref);
}

static void assert_untouched(clcnn_tensor *t, float v) {
    float *h = tu_download(t);
    for (size_t i = 0; i < clcnn_tensor_numel(t); i++)
        assert_true(h[i] == v);
    free(h);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *a = tu_tensor_from(2, (size_t[]){2, 3}, NULL);
    clcnn_tensor *b = tu_tensor_from(1, (size_t[]){4}, NULL);
    clcnn_tensor *y = tu_tensor_from(2, (size_t[]){3, 2}, NULL);
    clcnn_tensor *yi = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 2, (size_t[]){2, 3}, &yi));
    TU_OK(clcnn_tensor_fill(a, 1.0f));
    TU_OK(clcnn_tensor_fill(b, 1.0f));
    TU_OK(clcnn_tensor_fill(y, 5.0f));

    assert_int_equal(clcnn_add(dev, a, b, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3"));
    assert_non_null(strstr(clcnn_last_error(), "4"));
    assert_int_equal(clcnn_add(dev, a, a, b), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_axpby(dev, 1, b, 1, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "3x2"));
    assert_int_equal(clcnn_add(dev, a, a, yi), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "int32"));
    assert_int_equal(clcnn_add(dev, NULL, a, y), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_add(NULL, a, a, y), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_axpby(dev, 1, a, 1, NULL), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_device_finish(dev));
    assert_untouched(y, 5.0f);
    clcnn_tensor_free(a);
    clcnn_tensor_free(b);
    clcnn_tensor_free(y);
    clcnn_tensor_free(yi);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_sweep),
        cmocka_unit_test(test_add_aliasing),
        cmocka_unit_test(test_add_different_shapes),
        cmocka_unit_test(test_axpby_sweep),
        cmocka_unit_test(test_axpby_beta_zero_and_alias),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
