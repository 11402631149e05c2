/* batchnorm fused with ReLU / ReLU6 (the training plans' internal form,
 * cc_batchnorm_*_act): against the double reference and bit for bit against the separate
 * activation, with a residual (in place too), for each kernel family (per-channel groups,
 * per-chunk partial sums, whole channels); bad fused arguments refused. The plain batch
 * norm: test_batchnorm. */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn_ids.h"
#include "internal.h"
#include "reference_bn.h"
#include "reference_ops.h"

static clcnn_tensor *vec(size_t c, const float *data) {
    return tu_tensor_from(1, &c, data);
}

static float act_host(float v, int act) {
    v = v < 0.0f ? 0.0f : v;
    return act == CLCNN_ACT_ID_RELU6 && v > 6.0f ? 6.0f : v;
}

/* Batch norm with ReLU or ReLU6 applied inside (cc_batchnorm_*_act): the forward equals
 * the activation of the plain forward bit for bit and the reference within its bound;
 * the fused backward (which computes y again from x, gamma and beta for its mask) equals
 * the plain backward of dy masked by the activation's gradient taken from the forward's
 * activated output (zero where ya <= 0, or ya >= 6 for ReLU6) bit for bit, and the
 * reference backward of that masked dy within its bounds. Values straddle 0 and 6, and
 * some land on them exactly (x at the mean with beta 0 or 6). */
static int run_fused(const size_t *shape, int ndim, int act, tu_rng *r) {
    size_t n = shape[0], c = shape[1], total = 1;
    for (int i = 0; i < ndim; i++)
        total *= shape[i];
    size_t hw = total / (n * c);
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float *dym = malloc(total * sizeof *dym), gm[16], bt[16];
    tu_fill_uniform(r, x, total, -3, 3);
    tu_fill_uniform(r, dy, total, -1, 1);
    tu_fill_uniform(r, gm, c, -4, 4);
    tu_fill_uniform(r, bt, c, -1, 5);
    /* gamma 0: y is beta exactly, on the activation's bounds */
    gm[0] = 0.0f, bt[0] = 0.0f;
    if (c > 2) gm[2] = 0.0f, bt[2] = 6.0f;
    clcnn_tensor *tx = tu_tensor_from(ndim, shape, x), *tdy = tu_tensor_from(ndim, shape, dy);
    clcnn_tensor *ty = tu_tensor_from(ndim, shape, NULL), *ta = tu_tensor_from(ndim, shape, NULL);
    clcnn_tensor *tdx = tu_tensor_from(ndim, shape, NULL),
                 *tdx0 = tu_tensor_from(ndim, shape, NULL);
    clcnn_tensor *tg = vec(c, gm), *tb = vec(c, bt), *tm = vec(c, NULL), *ti = vec(c, NULL);
    clcnn_tensor *tdg = vec(c, NULL), *tdb = vec(c, NULL), *tdg0 = vec(c, NULL),
                 *tdb0 = vec(c, NULL);
    TU_OK(clcnn_batchnorm_forward_train(tu_device(), tx, tg, tb, NULL, NULL, 0.1f, 1e-5f, ty, tm,
                                        ti));
    TU_OK(cc_batchnorm_forward_train_act(tu_device(), tx, tg, tb, NULL, NULL, 0.1f, 1e-5f, act,
                                         NULL, ta, tm, ti));
    float *y = tu_download(ty), *ya = tu_download(ta);
    int ok = 1, crossed = 0;
    for (size_t i = 0; i < total; i++) {
        ok &= memcmp(&ya[i], &(float){act_host(y[i], act)}, sizeof(float)) == 0;
        int keep = ya[i] > 0.0f && (act != CLCNN_ACT_ID_RELU6 || ya[i] < 6.0f);
        dym[i] = keep ? dy[i] : 0.0f;
        crossed += !keep;
    }
    if (!ok) fprintf(stderr, "fused forward differs from the activation of the forward\n");
    /* with a residual: act(y + res) as the host adds the stored y (a training plan's Add
     * run in the batch norm's pass), into a buffer of its own and into res itself */
    float *res = malloc(total * sizeof *res);
    tu_fill_uniform(r, res, total, -2, 2);
    clcnn_tensor *tr = tu_tensor_from(ndim, shape, res);
    for (int in_place = 0; in_place < 2; in_place++) {
        clcnn_tensor *out = in_place ? tr : ta;
        TU_OK(cc_batchnorm_forward_train_act(tu_device(), tx, tg, tb, NULL, NULL, 0.1f, 1e-5f, act,
                                             tr, out, tm, ti));
        float *yr = tu_download(out);
        int same = 1;
        for (size_t i = 0; i < total; i++)
            same &= memcmp(&yr[i], &(float){act_host(y[i] + res[i], act)}, sizeof(float)) == 0;
        if (!same) fprintf(stderr, "fused residual forward differs (in place %d)\n", in_place);
        ok &= same;
        free(yr);
    }
    clcnn_tensor_free(tr);
    free(res);
    double *xd = ro_to_double(x, total), *dymd = ro_to_double(dym, total);
    double *gd = ro_to_double(gm, c), *bd = ro_to_double(bt, c);
    double *yref = malloc(total * sizeof *yref), *dxref = malloc(total * sizeof *dxref);
    double mref[16], iref[16], dgref[16], dbref[16], rm0[16] = {0};
    ro_bn_train(xd, n, c, hw, gd, bd, NULL, NULL, 0.1, 1e-5, yref, mref, iref);
    ro_bn_backward(xd, dymd, n, c, hw, gd, mref, iref, dxref, dgref, dbref);
    bn_tol tol = ref_bn_tolerances(xd, dymd, n, c, hw, gd, bd, mref, iref, 0.1, rm0);
    for (size_t i = 0; i < total; i++)
        yref[i] = act == CLCNN_ACT_ID_RELU6 ? fmin(fmax(yref[i], 0), 6) : fmax(yref[i], 0);
    ok &= tu_close("fused bn y", ya, yref, total, tol.y, 0);

    TU_OK(clcnn_tensor_upload(tdy, dym, total * sizeof *dym));
    TU_OK(clcnn_batchnorm_backward(tu_device(), tx, tdy, tg, tm, ti, tdx0, tdg0, tdb0));
    TU_OK(clcnn_tensor_upload(tdy, dy, total * sizeof *dy));
    TU_OK(cc_batchnorm_backward_act(tu_device(), tx, tb, tdy, act, tg, tm, ti, tdx, tdg, tdb));
    float *dx = tu_download(tdx), *dg = tu_download(tdg), *db = tu_download(tdb);
    float *dx0 = tu_download(tdx0), *dg0 = tu_download(tdg0), *db0 = tu_download(tdb0);
    int same = !memcmp(dx, dx0, total * sizeof *dx) && !memcmp(dg, dg0, c * sizeof *dg) &&
               !memcmp(db, db0, c * sizeof *db);
    if (!same) fprintf(stderr, "fused backward differs from the backward of the masked dy\n");
    ok &= same;
    ok &= tu_close("fused bn dx", dx, dxref, total, tol.dx, 0);
    ok &= tu_close("fused bn dgamma", dg, dgref, c, tol.dgamma, 0);
    ok &= tu_close("fused bn dbeta", db, dbref, c, tol.dbeta, 0);
    if (!ok || crossed == 0 || crossed == (int)total)
        fprintf(stderr, "  fused case %zux%zux%zu act %d: %d of %zu masked\n", n, c, hw, act,
                crossed, total);
    ok &= crossed > 0 && crossed < (int)total;
    clcnn_tensor *ts[] = {tx, tdy, ty, ta, tdx, tdx0, tg, tb, tm, ti, tdg, tdb, tdg0, tdb0};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        clcnn_tensor_free(ts[i]);
    void *ps[] = {x, dy, dym, y, ya, xd, dymd, gd, bd, yref, dxref, dx, dg, db, dx0, dg0, db0};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        free(ps[i]);
    return ok;
}

static void fused_shapes(void) {
    tu_rng r = tu_rng_seed(305);
    static const size_t shapes[][4] = {{1, 3, 5, 7},   {2, 5, 1, 1},  {3, 4, 9, 11},
                                       {1, 2, 70, 71}, {5, 16, 4, 4}, {7, 9, 1, 1}};
    static const int ndims[] = {4, 4, 4, 4, 4, 2};
    for (size_t k = 0; k < sizeof ndims / sizeof *ndims; k++) {
        if (tu_small() && shapes[k][2] * shapes[k][3] > 1024) continue; /* a simulator's minutes */
        for (int act = CLCNN_ACT_ID_RELU; act <= CLCNN_ACT_ID_RELU6; act += 2)
            assert_true(run_fused(shapes[k], ndims[k], act, &r));
    }
}

/* Bad fused arguments: an activation batch norm does not fuse, a beta of the wrong size or
 * under an output. */
static void test_fused_errors(void **state) {
    (void)state;
    size_t s4[4] = {2, 3, 4, 4}, c = 3;
    clcnn_tensor *x = tu_tensor_from(4, s4, NULL), *y = tu_tensor_from(4, s4, NULL);
    clcnn_tensor *m = vec(c, NULL), *i = vec(c, NULL);
    TU_OK(clcnn_tensor_fill(x, 1.0f));
    assert_int_equal(cc_batchnorm_forward_train_act(tu_device(), x, NULL, NULL, NULL, NULL, 0.1f,
                                                    1e-5f, CLCNN_ACT_ID_LEAKY, NULL, y, m, i),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "not one batch norm fuses"));
    /* a residual of another shape, one that overlaps y only in part */
    size_t s5[4] = {2, 3, 4, 5};
    clcnn_tensor *r5 = tu_tensor_from(4, s5, NULL);
    assert_int_equal(cc_batchnorm_forward_train_act(tu_device(), x, NULL, NULL, NULL, NULL, 0.1f,
                                                    1e-5f, CLCNN_ACT_ID_RELU, r5, y, m, i),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "res"));
    clcnn_tensor *ra = cc_tensor_view_at(r5, 4, s4, 0), *yb = cc_tensor_view_at(r5, 4, s4, 1);
    assert_non_null(ra);
    assert_non_null(yb);
    assert_int_equal(cc_batchnorm_forward_train_act(tu_device(), x, NULL, NULL, NULL, NULL, 0.1f,
                                                    1e-5f, CLCNN_ACT_ID_RELU, ra, yb, m, i),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "y must be res itself or not overlap it"));
    clcnn_tensor_free(ra), clcnn_tensor_free(yb), clcnn_tensor_free(r5);
    clcnn_tensor *b4 = vec(c + 1, NULL), *db = vec(c, NULL);
    assert_int_equal(cc_batchnorm_backward_act(tu_device(), x, b4, x, CLCNN_ACT_ID_RELU, NULL, m, i,
                                               y, NULL, NULL),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "beta"));
    assert_int_equal(cc_batchnorm_backward_act(tu_device(), x, db, x, CLCNN_ACT_ID_RELU6, NULL, m,
                                               i, y, NULL, db),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "must not overlap the inputs"));
    clcnn_tensor_free(x), clcnn_tensor_free(y), clcnn_tensor_free(m), clcnn_tensor_free(i);
    clcnn_tensor_free(b4), clcnn_tensor_free(db);
}

/* fused_shapes with the kernels $CLCNN_BN_KERNELS=kernels names. */
static void fused_with(const char *kernels) {
    setenv("CLCNN_BN_KERNELS", kernels, 1);
    fused_shapes();
    unsetenv("CLCNN_BN_KERNELS");
}

static void test_fused_group(void **state) {
    (void)state;
    fused_with("group");
}

static void test_fused_chunk(void **state) {
    (void)state;
    fused_with("chunk");
}

static void test_fused_channel(void **state) {
    (void)state;
    fused_with("channel");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_group),
        cmocka_unit_test(test_fused_chunk),
        cmocka_unit_test(test_fused_channel),
        cmocka_unit_test(test_fused_errors),
    };
    return cmocka_run_group_tests(tests, tu_setup_device, tu_teardown_device);
}
