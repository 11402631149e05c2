/* Activations (identity, ReLU, leaky ReLU), forward and backward, against the double
 * reference (tests/reference_elementwise.c) on a seeded sweep of shapes; backward also
 * against central finite differences of the double forward; in place; errors; the Add
 * fused with a ReLU of training plans (cc_add_relu, and its backward cc_add_relu_grad). */
#include "test_util.h"

#include "internal.h"

#include "reference_elementwise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {1,  2,  3,   4,   5,   7,   8,    15,   16,   17,    31,          33,
                               63, 65, 127, 255, 256, 257, 1000, 1023, 4097, 65537, 1u << 20 | 1};
#define NSIZES (sizeof sizes / sizeof *sizes)
#define NRANDOM 12

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

static const clcnn_activation acts[] = {CLCNN_ACT_NONE, CLCNN_ACT_RELU, CLCNN_ACT_LEAKY_RELU};
static const char *act_name[] = {"none", "relu", "leaky"};

/* Forward and backward are one select/multiply per element: exact for identity and
 * ReLU, one float rounding of alpha*x (or alpha*dy) for leaky: |err| <= 2^-24 |ref|.
 * rtol 1e-6, atol 0. */
static void test_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(201);
    clcnn_device *dev = tu_device();
    for (size_t i = 0; i < NSIZES + NRANDOM; i++) {
        int nd;
        size_t shape[4];
        size_t n = sweep_shape(&r, i, &nd, shape);
        if (tu_small() && n > 5000) continue; /* keeps 1..4097: tails of every local size */
        float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
        double *ref = malloc(n * sizeof *ref);
        tu_fill_uniform(&r, x, n, -2, 2);
        tu_fill_uniform(&r, dy, n, -1, 1);
        x[0] = 0.0f; /* the kink: relu'(0) = 0, leaky'(0) = alpha (PyTorch) */
        clcnn_tensor *tx = tu_tensor_from(nd, shape, x), *tdy = tu_tensor_from(nd, shape, dy);
        clcnn_tensor *ty = tu_tensor_from(nd, shape, NULL);
        for (int a = 0; a < 3; a++) {
            float alpha = a == 2 ? 0.01f + 0.1f * (float)(i % 4) : 0.0f;
            char what[96];
            TU_OK(clcnn_activation_forward(dev, acts[a], alpha, tx, ty));
            float *y = tu_download(ty);
            ref_activation_forward(acts[a], alpha, x, n, ref);
            snprintf(what, sizeof what, "%s forward n=%zu (case %zu)", act_name[a], n, i);
            assert_true(tu_close(what, y, ref, n, 0, 1e-6));
            TU_OK(clcnn_activation_backward(dev, acts[a], alpha, tx, tdy, ty));
            float *dx = tu_download(ty);
            ref_activation_backward(acts[a], alpha, x, dy, n, ref);
            snprintf(what, sizeof what, "%s backward n=%zu (case %zu)", act_name[a], n, i);
            assert_true(tu_close(what, dx, ref, n, 0, 1e-6));
            free(y);
            free(dx);
        }
        clcnn_tensor_free(tx);
        clcnn_tensor_free(tdy);
        clcnn_tensor_free(ty);
        free(x);
        free(dy);
        free(ref);
    }
}

/* Backward vs central finite differences of L = sum(dy * act(x)) computed in double on
 * the reference forward: dL/dx_i = (act(x_i + h) - act(x_i - h)) / (2h) * dy_i.
 * x is kept at least 2h away from the kink at 0, where the function is linear on
 * [x-h, x+h] and the difference is exact up to double rounding (~1e-10 relative);
 * the device result carries one float rounding: rtol 1e-6, atol 1e-9. */
static void test_gradient_finite_differences(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(202);
    clcnn_device *dev = tu_device();
    const double h = 1e-3;
    const size_t shape[4] = {3, 5, 7, 9};
    const size_t n = 3 * 5 * 7 * 9;
    float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
    double *fd = malloc(n * sizeof *fd);
    tu_fill_uniform(&r, x, n, -3, 3);
    tu_fill_uniform(&r, dy, n, -1, 1);
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) < 2 * h) x[i] = x[i] < 0 ? -0.5f : 0.5f;
    clcnn_tensor *tx = tu_tensor_from(4, shape, x), *tdy = tu_tensor_from(4, shape, dy);
    clcnn_tensor *tdx = tu_tensor_from(4, shape, NULL);
    for (int a = 0; a < 3; a++) {
        double alpha = a == 2 ? 0.2f : 0.0f;
        for (size_t i = 0; i < n; i++)
            fd[i] = (ref_act(acts[a], alpha, (double)x[i] + h) -
                     ref_act(acts[a], alpha, (double)x[i] - h)) /
                    (2 * h) * dy[i];
        TU_OK(clcnn_activation_backward(dev, acts[a], (float)alpha, tx, tdy, tdx));
        float *dx = tu_download(tdx);
        char what[64];
        snprintf(what, sizeof what, "%s backward vs finite differences", act_name[a]);
        assert_true(tu_close(what, dx, fd, n, 1e-9, 1e-6));
        free(dx);
    }
    clcnn_tensor_free(tx);
    clcnn_tensor_free(tdy);
    clcnn_tensor_free(tdx);
    free(x);
    free(dy);
    free(fd);
}

/* y = act(y) in place and dx = dy * act'(x) written over dy. */
static void test_in_place(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(203);
    clcnn_device *dev = tu_device();
    const size_t n = 4099;
    float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
    double *ref = malloc(n * sizeof *ref);
    tu_fill_uniform(&r, x, n, -1, 1);
    tu_fill_uniform(&r, dy, n, -1, 1);
    for (int a = 0; a < 3; a++) {
        clcnn_tensor *t = tu_tensor_from(1, &n, x), *tdy = tu_tensor_from(1, &n, dy);
        clcnn_tensor *tx = tu_tensor_from(1, &n, x);
        TU_OK(clcnn_activation_backward(dev, acts[a], 0.1f, tx, tdy, tdy));
        TU_OK(clcnn_activation_forward(dev, acts[a], 0.1f, t, t));
        float *y = tu_download(t), *dx = tu_download(tdy);
        ref_activation_forward(acts[a], 0.1f, x, n, ref);
        assert_true(tu_close("forward in place", y, ref, n, 0, 1e-6));
        ref_activation_backward(acts[a], 0.1f, x, dy, n, ref);
        assert_true(tu_close("backward dx = dy", dx, ref, n, 0, 1e-6));
        free(y);
        free(dx);
        clcnn_tensor_free(t);
        clcnn_tensor_free(tdy);
        clcnn_tensor_free(tx);
    }
    free(x);
    free(dy);
    free(ref);
}

/* NaN and infinities go through the forward pass (relu(NaN) = NaN as in PyTorch, so a
 * diverging network shows up in its loss instead of being silently zeroed). */
static void test_special_values(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const float x[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, -1e-38f, 3.0f};
    const size_t n = sizeof x / sizeof *x;
    clcnn_tensor *tx = tu_tensor_from(1, &n, x), *ty = tu_tensor_from(1, &n, NULL);
    for (int a = 1; a < 3; a++) {
        TU_OK(clcnn_activation_forward(dev, acts[a], 0.5f, tx, ty));
        float *y = tu_download(ty);
        double ref[7];
        ref_activation_forward(acts[a], 0.5f, x, n, ref);
        assert_true(isnan(y[0]));
        assert_true(tu_close("special values", y, ref, n, 0, 1e-6));
        free(y);
    }
    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x = tu_tensor_from(2, (size_t[]){2, 3}, NULL);
    clcnn_tensor *y_perm = tu_tensor_from(2, (size_t[]){3, 2}, NULL);
    clcnn_tensor *y_flat = tu_tensor_from(1, (size_t[]){6}, NULL);
    clcnn_tensor *y_big = tu_tensor_from(2, (size_t[]){2, 4}, NULL);
    clcnn_tensor *y = tu_tensor_from(2, (size_t[]){2, 3}, NULL);
    TU_OK(clcnn_tensor_fill(x, -1.0f));
    clcnn_tensor *outs[] = {y_perm, y_flat, y_big};
    for (int i = 0; i < 3; i++)
        TU_OK(clcnn_tensor_fill(outs[i], 9.0f));
    TU_OK(clcnn_tensor_fill(y, 9.0f));

    /* Same element count but other dims is still a shape error, naming both shapes. */
    for (int i = 0; i < 3; i++) {
        char want[32];
        assert_int_equal(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0, x, outs[i]),
                         CLCNN_ERR_SHAPE);
        assert_non_null(strstr(clcnn_last_error(), "2x3"));
        clcnn_tensor_shape_str(outs[i], want, sizeof want);
        assert_non_null(strstr(clcnn_last_error(), want));
        assert_int_equal(clcnn_activation_forward(dev, CLCNN_ACT_NONE, 0, x, outs[i]),
                         CLCNN_ERR_SHAPE);
        assert_int_equal(clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0, x, y, outs[i]),
                         CLCNN_ERR_SHAPE);
        assert_int_equal(clcnn_activation_backward(dev, CLCNN_ACT_LEAKY_RELU, 0, x, outs[i], y),
                         CLCNN_ERR_SHAPE);
    }
    assert_int_equal(clcnn_activation_forward(dev, (clcnn_activation)7, 0, x, y),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "7"));
    assert_int_equal(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0, NULL, y),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0, x, NULL, y),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_activation_forward(NULL, CLCNN_ACT_RELU, 0, x, y),
                     CLCNN_ERR_INVALID_ARG);
    clcnn_tensor *yi = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 2, (size_t[]){2, 3}, &yi));
    assert_int_equal(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0, x, yi),
                     CLCNN_ERR_INVALID_ARG);
    /* nothing was written */
    for (int i = 0; i < 4; i++) {
        float *h = tu_download(i < 3 ? outs[i] : y);
        for (size_t j = 0; j < clcnn_tensor_numel(i < 3 ? outs[i] : y); j++)
            assert_true(h[j] == 9.0f);
        free(h);
    }
    clcnn_tensor_free(x);
    clcnn_tensor_free(y);
    clcnn_tensor_free(yi);
    for (int i = 0; i < 3; i++)
        clcnn_tensor_free(outs[i]);
}

/* The backward of an Add fused with its ReLU whose output two nodes read, on one sweep
 * shape: (y > 0) ? a + b : 0 within one rounding of the double reference, bit for bit
 * clcnn_axpby(1, b, 1, a) followed by the ReLU's backward (what the plan did before), in
 * place over a; y holds exact 0, -0 and NaN (all masked). */
static void check_add_relu_grad(tu_rng *r, size_t i, size_t n, int nd, const size_t *shape) {
    clcnn_device *dev = tu_device();
    float *y = malloc(n * sizeof *y), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *ref = malloc(n * sizeof *ref);
    tu_fill_uniform(r, y, n, -1, 1);
    tu_fill_uniform(r, a, n, -2, 2);
    tu_fill_uniform(r, b, n, -2, 2);
    y[0] = 0.0f;
    if (n > 1) y[1] = -0.0f;
    if (n > 2) y[2] = NAN;
    for (size_t k = 0; k < n; k++)
        ref[k] = y[k] > 0.0f ? (double)a[k] + (double)b[k] : 0.0;
    clcnn_tensor *ty = tu_tensor_from(nd, shape, y), *ta = tu_tensor_from(nd, shape, a);
    clcnn_tensor *tb = tu_tensor_from(nd, shape, b), *tg = tu_tensor_from(nd, shape, NULL);
    clcnn_tensor *t2 = tu_tensor_from(nd, shape, a);
    TU_OK(cc_add_relu_grad(dev, ty, ta, tb, tg));
    TU_OK(clcnn_axpby(dev, 1.0f, tb, 1.0f, t2));
    TU_OK(clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0.0f, ty, t2, t2));
    TU_OK(cc_add_relu_grad(dev, ty, ta, tb, ta)); /* in place */
    float *g = tu_download(tg), *g2 = tu_download(t2), *gi = tu_download(ta);
    char what[64];
    snprintf(what, sizeof what, "add_relu_grad n=%zu (case %zu)", n, i);
    assert_true(tu_close(what, g, ref, n, 0, 1.2e-7));
    assert_memory_equal(g, g2, n * sizeof *g);
    assert_memory_equal(g, gi, n * sizeof *g);
    clcnn_tensor *ts[] = {ty, ta, tb, tg, t2};
    for (int k = 0; k < 5; k++)
        clcnn_tensor_free(ts[k]);
    void *ps[] = {y, a, b, ref, g, g2, gi};
    for (int k = 0; k < 7; k++)
        free(ps[k]);
}

/* relu(a + b) in one pass: the double reference within one rounding of the sum, bit for
 * bit clcnn_add followed by the ReLU, in place over a; the sweep's sizes (tails of every
 * local size), sums that are exactly 0 and -0 included; errors name the shapes. Its
 * backward (check_add_relu_grad) on the same sizes. */
static void test_add_relu(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(202);
    clcnn_device *dev = tu_device();
    for (size_t i = 0; i < NSIZES + NRANDOM; i++) {
        int nd;
        size_t shape[4];
        size_t n = sweep_shape(&r, i, &nd, shape);
        if (tu_small() && n > 5000) continue;
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        double *ref = malloc(n * sizeof *ref);
        tu_fill_uniform(&r, a, n, -2, 2);
        tu_fill_uniform(&r, b, n, -2, 2);
        b[0] = -a[0];                   /* a sum of exactly 0 */
        if (n > 1) a[1] = b[1] = -0.0f; /* and of -0 */
        for (size_t k = 0; k < n; k++)
            ref[k] = fmax((double)a[k] + (double)b[k], 0.0);
        clcnn_tensor *ta = tu_tensor_from(nd, shape, a), *tb = tu_tensor_from(nd, shape, b);
        clcnn_tensor *ty = tu_tensor_from(nd, shape, NULL), *t2 = tu_tensor_from(nd, shape, NULL);
        TU_OK(cc_add_relu(dev, ta, tb, ty));
        TU_OK(clcnn_add(dev, ta, tb, t2));
        TU_OK(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0.0f, t2, t2));
        TU_OK(cc_add_relu(dev, ta, tb, ta)); /* in place */
        float *y = tu_download(ty), *y2 = tu_download(t2), *yi = tu_download(ta);
        char what[64];
        snprintf(what, sizeof what, "add_relu n=%zu (case %zu)", n, i);
        assert_true(tu_close(what, y, ref, n, 0, 1.2e-7));
        assert_memory_equal(y, y2, n * sizeof *y);
        assert_memory_equal(y, yi, n * sizeof *y);
        clcnn_tensor *ts[] = {ta, tb, ty, t2};
        for (int k = 0; k < 4; k++)
            clcnn_tensor_free(ts[k]);
        void *ps[] = {a, b, ref, y, y2, yi};
        for (int k = 0; k < 6; k++)
            free(ps[k]);
        check_add_relu_grad(&r, i, n, nd, shape);
    }
    size_t s3 = 3, s4 = 4;
    clcnn_tensor *t3 = tu_tensor_from(1, &s3, NULL), *t4 = tu_tensor_from(1, &s4, NULL);
    assert_int_equal(cc_add_relu(dev, t3, t4, t3), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "cc_add_relu"));
    assert_int_equal(cc_add_relu_grad(dev, t3, t3, t4, t3), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "cc_add_relu_grad"));
    clcnn_tensor_free(t3);
    clcnn_tensor_free(t4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),    cmocka_unit_test(test_gradient_finite_differences),
        cmocka_unit_test(test_in_place), cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_add_relu),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
