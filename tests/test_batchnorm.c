/* batchnorm: training forward (y, saved mean / invstd, running statistics), inference
 * forward and backward (dx, dgamma, dbeta) against the double reference in
 * reference_ops.c (error bounds: reference_bn.c) over a seeded sweep of random shapes; a
 * hand-computed case; data with a large mean (where E[x^2] - E[x]^2 would fail); planes
 * longer than a chunk; tensors at offsets; bitwise repeatability; all of these for each
 * kernel family (per-channel groups, per-chunk partial sums, whole channels); central
 * finite differences of the reference backward; error paths (nothing written, running
 * statistics untouched). Batch norm fused with ReLU / ReLU6: test_batchnorm_fused. */
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

#define U FLT_EPSILON /* 2^-23 = 2u */

static clcnn_device *dev;

static int setup(void **state) {
    (void)state;
    dev = tu_device();
    return dev ? 0 : -1;
}
static clcnn_tensor *vec(size_t c, const float *data) {
    return tu_tensor_from(1, &c, data);
}

typedef struct bn_case {
    int ndim;
    size_t shape[4];
    int affine;  /* gamma and beta given */
    int running; /* running statistics given */
    int save;    /* save_mean / save_invstd given (else backward is skipped) */
    int want_dx, want_dgb;
    float offset, scale, momentum, eps;
} bn_case;

/* Training forward, inference forward from the updated running statistics, backward:
 * device vs reference. Returns 1 when everything matched. */
static int run_case(const bn_case *bc, tu_rng *r) {
    size_t n = bc->shape[0], c = bc->shape[1], total = 1;
    for (int i = 0; i < bc->ndim; i++)
        total *= bc->shape[i];
    size_t hw = total / (n * c);
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    float *gm = malloc(c * sizeof *gm), *bt = malloc(c * sizeof *bt);
    float *rm = malloc(c * sizeof *rm), *rv = malloc(c * sizeof *rv);
    for (size_t i = 0; i < total; i++)
        x[i] = bc->offset + bc->scale * tu_rng_uniform(r, -1, 1);
    tu_fill_uniform(r, dy, total, -1, 1);
    tu_fill_uniform(r, gm, c, -2, 2);
    tu_fill_uniform(r, bt, c, -1, 1);
    tu_fill_uniform(r, rm, c, -1, 1);
    tu_fill_uniform(r, rv, c, 0.5f, 2);

    double *xd = ro_to_double(x, total), *dyd = ro_to_double(dy, total);
    double *gd = ro_to_double(gm, c), *bd = ro_to_double(bt, c);
    double *rmd = ro_to_double(rm, c), *rvd = ro_to_double(rv, c), *rm_old = ro_to_double(rm, c);
    double *yref = malloc(total * sizeof *yref), *dxref = malloc(total * sizeof *dxref);
    double *mref = malloc(c * sizeof *mref), *iref = malloc(c * sizeof *iref);
    double *dgref = malloc(c * sizeof *dgref), *dbref = malloc(c * sizeof *dbref);
    const double *G = bc->affine ? gd : NULL, *B = bc->affine ? bd : NULL;
    ro_bn_train(xd, n, c, hw, G, B, rmd, rvd, bc->momentum, bc->eps, yref, mref, iref);
    ro_bn_backward(xd, dyd, n, c, hw, G, mref, iref, dxref, dgref, dbref);
    bn_tol tol = ref_bn_tolerances(xd, dyd, n, c, hw, G, B, mref, iref, bc->momentum, rm_old);

    clcnn_tensor *tx = tu_tensor_from(bc->ndim, bc->shape, x);
    clcnn_tensor *ty = tu_tensor_from(bc->ndim, bc->shape, NULL);
    clcnn_tensor *tdy = tu_tensor_from(bc->ndim, bc->shape, dy);
    clcnn_tensor *tdx = tu_tensor_from(bc->ndim, bc->shape, NULL);
    clcnn_tensor *tg = vec(c, gm), *tb = vec(c, bt), *trm = vec(c, rm), *trv = vec(c, rv);
    clcnn_tensor *tm = vec(c, NULL), *ti = vec(c, NULL), *tdg = vec(c, NULL), *tdb = vec(c, NULL);
    clcnn_tensor *fills[] = {ty, tdx, tm, ti, tdg, tdb};
    for (int i = 0; i < 6; i++)
        TU_OK(clcnn_tensor_fill(fills[i], NAN));
    TU_OK(clcnn_batchnorm_forward_train(dev, tx, bc->affine ? tg : NULL, bc->affine ? tb : NULL,
                                        bc->running ? trm : NULL, bc->running ? trv : NULL,
                                        bc->momentum, bc->eps, ty, bc->save ? tm : NULL,
                                        bc->save ? ti : NULL));
    float *y = tu_download(ty), *hm = tu_download(tm), *hi = tu_download(ti);
    float *hrm = tu_download(trm), *hrv = tu_download(trv);
    int ok = tu_close("bn y", y, yref, total, tol.y, 0);
    if (bc->save) {
        ok &= tu_close("bn save_mean", hm, mref, c, tol.mean, 0);
        ok &= tu_close("bn save_invstd", hi, iref, c, 0, tol.inv_rel);
    }
    if (bc->running) {
        ok &= tu_close("bn running_mean", hrm, rmd, c, tol.rmean, 0);
        ok &= tu_close("bn running_var", hrv, rvd, c, 1e-30, tol.rvar_rel);
    } else {
        for (size_t i = 0; i < c; i++)
            ok &= hrm[i] == rm[i] && hrv[i] == rv[i];
    }

    /* Inference from the running statistics the device now holds, against the reference
     * fed the same float values: (x - rm) and the division round once each (U |.|), sqrt
     * and 1/sqrt 2 U, the products 2 U: 8 U of |gamma (x - rm) invstd| + 2 U |beta|. */
    double *rmf = ro_to_double(hrm, c), *rvf = ro_to_double(hrv, c);
    double *yinf = malloc(total * sizeof *yinf);
    ro_bn_infer(xd, n, c, hw, G, B, rmf, rvf, bc->eps, yinf);
    double inf_tol = 0;
    for (size_t i = 0; i < total; i++) {
        size_t ch = (i / hw) % c;
        double g = G ? fabs(G[ch]) : 1, b = B ? fabs(B[ch]) : 0;
        inf_tol =
            fmax(inf_tol, 8 * U * g * fabs(xd[i] - rmf[ch]) / sqrt(rvf[ch] + bc->eps) + 2 * U * b);
    }
    TU_OK(clcnn_batchnorm_forward_infer(dev, tx, bc->affine ? tg : NULL, bc->affine ? tb : NULL,
                                        trm, trv, bc->eps, ty));
    float *yi = tu_download(ty);
    ok &= tu_close("bn infer y", yi, yinf, total, inf_tol + 1e-30, 0);

    if (bc->save) {
        TU_OK(clcnn_batchnorm_backward(dev, tx, tdy, bc->affine ? tg : NULL, tm, ti,
                                       bc->want_dx ? tdx : NULL, bc->want_dgb ? tdg : NULL,
                                       bc->want_dgb ? tdb : NULL));
        float *dx = tu_download(tdx), *dg = tu_download(tdg), *db = tu_download(tdb);
        if (bc->want_dx)
            ok &= tu_close("bn dx", dx, dxref, total, tol.dx, 0);
        else
            for (size_t i = 0; i < total; i++)
                ok &= isnan(dx[i]);
        if (bc->want_dgb) {
            ok &= tu_close("bn dgamma", dg, dgref, c, tol.dgamma, 0);
            ok &= tu_close("bn dbeta", db, dbref, c, tol.dbeta, 0);
        } else {
            for (size_t i = 0; i < c; i++)
                ok &= isnan(dg[i]) && isnan(db[i]);
        }
        free(dx), free(dg), free(db);
    }
    if (!ok)
        fprintf(stderr,
                "  case: %zux%zux%zu (ndim %d) affine %d running %d save %d dx %d dgb %d offset "
                "%g scale %g momentum %g eps %g\n",
                n, c, hw, bc->ndim, bc->affine, bc->running, bc->save, bc->want_dx, bc->want_dgb,
                bc->offset, bc->scale, bc->momentum, bc->eps);

    clcnn_tensor *ts[] = {tx, ty, tdy, tdx, tg, tb, trm, trv, tm, ti, tdg, tdb};
    for (int i = 0; i < 12; i++)
        clcnn_tensor_free(ts[i]);
    void *ps[] = {x,  dy, gd,  bd,  rmd, rvd, rm_old, yref, dxref, mref, iref, dgref, dbref, y,
                  hm, hi, hrm, hrv, rmf, rvf, yinf,   yi,   gm,    bt,   rm,   rv,    xd,    dyd};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
        free(ps[i]);
    return ok;
}

static void test_random_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(301);
    int failures = 0;
    for (int it = 0; it < (int)tu_small_count(220, 20); it++) {
        bn_case bc = {0};
        bc.ndim = it % 3 == 0 ? 2 : 4;
        for (;;) {
            bc.shape[0] = tu_rng_int(&r, 0, 3) == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 6);
            bc.shape[1] = (size_t)tu_rng_int(&r, 1, 9);
            bc.shape[2] = bc.ndim == 4 ? (size_t)tu_rng_int(&r, 1, 7) : 1;
            bc.shape[3] = bc.ndim == 4 ? (size_t)tu_rng_int(&r, 1, 7) : 1;
            if (it % 11 == 0 && bc.ndim == 4) bc.shape[2] = bc.shape[3] = 1; /* 1x1 planes */
            if (bc.shape[0] * bc.shape[2] * bc.shape[3] >= 2) break; /* training needs m >= 2 */
        }
        bc.affine = tu_rng_int(&r, 0, 4) != 0;
        bc.running = tu_rng_int(&r, 0, 4) != 0;
        bc.save = tu_rng_int(&r, 0, 6) != 0;
        bc.want_dx = tu_rng_int(&r, 0, 4) != 0;
        bc.want_dgb = tu_rng_int(&r, 0, 4) != 0;
        bc.offset = tu_rng_uniform(&r, -3, 3);
        bc.scale = tu_rng_int(&r, 0, 5) == 0 ? 1e-2f : tu_rng_uniform(&r, 0.2f, 3);
        bc.momentum = tu_rng_int(&r, 0, 5) == 0 ? 1.0f : tu_rng_uniform(&r, 0, 0.5f);
        bc.eps = tu_rng_int(&r, 0, 1) ? 1e-5f : 1e-3f;
        if (!run_case(&bc, &r)) failures++;
    }
    assert_int_equal(failures, 0);
}

/* Shapes of real layers, and data with a mean 1000x its spread: the two-pass variance
 * keeps full precision where E[x^2] - E[x]^2 would lose all of it (1e6 - 1e6). */
static void test_layers_and_large_mean(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(302);
    bn_case a = {4, {32, 16, 14, 14}, 1, 1, 1, 1, 1, 0.5f, 2.0f, 0.1f, 1e-5f};
    bn_case b = {2, {256, 100, 1, 1}, 1, 1, 1, 1, 1, 0.0f, 1.0f, 0.1f, 1e-5f};
    bn_case big_mean = {4, {16, 3, 16, 16}, 1, 1, 1, 1, 1, 1000.0f, 1.0f, 0.1f, 1e-5f};
    if (!tu_small()) assert_true(run_case(&a, &r)); /* 100k values: minutes on a simulator */
    assert_true(run_case(&b, &r));
    assert_true(run_case(&big_mean, &r));
}

static void test_hand_computed(void **state) {
    (void)state;
    /* one channel, values 1..4: mean 2.5, biased var 1.25, unbiased 5/3 */
    float x[4] = {1, 2, 3, 4}, one = 1, zero = 0, rm0 = 0, rv0 = 1;
    clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){4, 1}, x),
                 *ty = tu_tensor_from(2, (size_t[]){4, 1}, NULL);
    clcnn_tensor *tg = vec(1, &one), *tb = vec(1, &zero), *trm = vec(1, &rm0), *trv = vec(1, &rv0);
    clcnn_tensor *tm = vec(1, NULL), *ti = vec(1, NULL);
    TU_OK(clcnn_batchnorm_forward_train(dev, tx, tg, tb, trm, trv, 0.1f, 0.0f, ty, tm, ti));
    float *y = tu_download(ty), *m = tu_download(tm), *i = tu_download(ti);
    float *rm = tu_download(trm), *rv = tu_download(trv);
    assert_float_equal(m[0], 2.5f, 0);
    assert_float_equal(i[0], 1 / sqrtf(1.25f), 1e-7);
    for (int k = 0; k < 4; k++)
        assert_float_equal(y[k], (x[k] - 2.5f) / sqrtf(1.25f), 1e-6);
    assert_float_equal(rm[0], 0.25f, 1e-7);
    assert_float_equal(rv[0], 0.9f + 0.1f * 5.0f / 3.0f, 1e-6);
    /* backward with dy = y (L = sum y^2 / 2): dbeta = sum y = 0, dgamma = sum y^2 = 4, and
     * dx = invstd (y - 0 - y * 4 / 4) = 0 */
    clcnn_tensor *tdx = tu_tensor_from(2, (size_t[]){4, 1}, NULL), *tdg = vec(1, NULL),
                 *tdb = vec(1, NULL);
    TU_OK(clcnn_batchnorm_backward(dev, tx, ty, tg, tm, ti, tdx, tdg, tdb));
    float *dx = tu_download(tdx), *dg = tu_download(tdg), *db = tu_download(tdb);
    assert_float_equal(dg[0], 4.0f, 1e-5);
    assert_float_equal(db[0], 0.0f, 1e-6);
    for (int k = 0; k < 4; k++)
        assert_float_equal(dx[k], 0.0f, 1e-5);
    void *ps[] = {y, m, i, rm, rv, dx, dg, db};
    for (int k = 0; k < 8; k++)
        free(ps[k]);
    clcnn_tensor *ts[] = {tx, ty, tg, tb, trm, trv, tm, ti, tdx, tdg, tdb};
    for (int k = 0; k < 11; k++)
        clcnn_tensor_free(ts[k]);
}

static void test_offsets_and_in_place(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(303);
    size_t n = 3, c = 5, hw = 6, shape[4] = {3, 5, 2, 3}, total = 90;
    clcnn_tensor *b[10];
    clcnn_tensor *tx = ro_tensor_at_offset(dev, CLCNN_F32, 4, shape, 3, &b[0]);
    clcnn_tensor *tdy = ro_tensor_at_offset(dev, CLCNN_F32, 4, shape, 5, &b[1]);
    clcnn_tensor *tg = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 1, &b[2]);
    clcnn_tensor *tb = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 2, &b[3]);
    clcnn_tensor *trm = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 4, &b[4]);
    clcnn_tensor *trv = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 6, &b[5]);
    clcnn_tensor *tm = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 7, &b[6]);
    clcnn_tensor *ti = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 8, &b[7]);
    clcnn_tensor *tdg = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 9, &b[8]);
    clcnn_tensor *tdb = ro_tensor_at_offset(dev, CLCNN_F32, 1, &c, 10, &b[9]);
    float x[90], dy[90], g[5], be[5], rm[5], rv[5];
    tu_fill_uniform(&r, x, total, -2, 2);
    tu_fill_uniform(&r, dy, total, -1, 1);
    tu_fill_uniform(&r, g, c, -2, 2);
    tu_fill_uniform(&r, be, c, -1, 1);
    tu_fill_uniform(&r, rm, c, -1, 1);
    tu_fill_uniform(&r, rv, c, 0.5f, 2);
    TU_OK(clcnn_tensor_upload(tx, x, sizeof x));
    TU_OK(clcnn_tensor_upload(tdy, dy, sizeof dy));
    TU_OK(clcnn_tensor_upload(tg, g, sizeof g));
    TU_OK(clcnn_tensor_upload(tb, be, sizeof be));
    TU_OK(clcnn_tensor_upload(trm, rm, sizeof rm));
    TU_OK(clcnn_tensor_upload(trv, rv, sizeof rv));
    double *xd = ro_to_double(x, total), *dyd = ro_to_double(dy, total);
    double *gd = ro_to_double(g, c), *bd = ro_to_double(be, c), *rmd = ro_to_double(rm, c);
    double *rvd = ro_to_double(rv, c), yref[90], dxref[90], mref[5], iref[5], dgref[5], dbref[5];
    ro_bn_train(xd, n, c, hw, gd, bd, rmd, rvd, 0.1, 1e-5, yref, mref, iref);
    ro_bn_backward(xd, dyd, n, c, hw, gd, mref, iref, dxref, dgref, dbref);
    /* backward first (it needs x), then forward in place: y written over x; dx over dy */
    TU_OK(clcnn_batchnorm_forward_train(dev, tx, tg, tb, trm, trv, 0.1f, 1e-5f, tx, tm, ti));
    float *y = tu_download(tx);
    /* 30 values per channel of magnitude <= 2: all bounds above stay below 1e-5 */
    assert_true(tu_close("offset bn y (in place)", y, yref, total, 1e-5, 1e-5));
    float *hrm = tu_download(trm), *hrv = tu_download(trv);
    assert_true(tu_close("offset running_mean", hrm, rmd, c, 1e-6, 1e-5));
    assert_true(tu_close("offset running_var", hrv, rvd, c, 1e-6, 1e-5));
    TU_OK(clcnn_tensor_upload(tx, x, sizeof x)); /* x back for the backward */
    TU_OK(clcnn_batchnorm_backward(dev, tx, tdy, tg, tm, ti, tdy, tdg, tdb));
    float *dx = tu_download(tdy), *dg = tu_download(tdg), *db = tu_download(tdb);
    assert_true(tu_close("offset bn dx (over dy)", dx, dxref, total, 1e-5, 1e-5));
    assert_true(tu_close("offset bn dgamma", dg, dgref, c, 1e-5, 1e-5));
    assert_true(tu_close("offset bn dbeta", db, dbref, c, 1e-5, 1e-5));
    float *all = tu_download(b[8]);
    for (size_t i = 0; i < clcnn_tensor_numel(b[8]); i++)
        if (i < 9 || i >= 9 + c) assert_true(isnan(all[i]));
    free(all);
    void *ps[] = {xd, dyd, gd, bd, rmd, rvd, y, hrm, hrv, dx, dg, db};
    for (int i = 0; i < 12; i++)
        free(ps[i]);
    clcnn_tensor *ts[] = {tx, tdy, tg, tb, trm, trv, tm, ti, tdg, tdb};
    for (int i = 0; i < 10; i++)
        clcnn_tensor_free(ts[i]), clcnn_tensor_free(b[i]);
}

/* Fixed-order reductions: the same inputs give the same bits. */
/* Planes longer than one chunk of the chunk kernels (4096 values, or 1024 when that
 * leaves fewer than 64 work-items), with a last chunk that is not a multiple of 16. */
static void test_large_planes(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(303);
    bn_case a = {4, {1, 3, 50, 50}, 1, 1, 1, 1, 1, 0.5f, 2.0f, 0.1f, 1e-5f};  /* 3 x 1024 */
    bn_case b = {4, {2, 2, 70, 71}, 1, 1, 1, 1, 1, -1.0f, 1.0f, 0.1f, 1e-5f}; /* 5 x 1024 */
    bn_case d = {4, {8, 9, 65, 65}, 1, 0, 1, 1, 1, 3.0f, 0.5f, 0.1f, 1e-5f};  /* 2 x 4096 */
    assert_true(run_case(&a, &r));
    assert_true(run_case(&b, &r));
    if (!tu_small()) assert_true(run_case(&d, &r)); /* 300k values; a and b have the tails */
}

static void test_deterministic(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(304);
    size_t shape[4] = {16, 7, 13, 11}, total = 16 * 7 * 13 * 11, c = 7;
    float *x = malloc(total * sizeof *x), *dy = malloc(total * sizeof *dy);
    tu_fill_uniform(&r, x, total, -1, 3);
    tu_fill_uniform(&r, dy, total, -1, 1);
    clcnn_tensor *tx = tu_tensor_from(4, shape, x), *tdy = tu_tensor_from(4, shape, dy);
    clcnn_tensor *ty = tu_tensor_from(4, shape, NULL), *tdx = tu_tensor_from(4, shape, NULL);
    clcnn_tensor *tm = vec(c, NULL), *ti = vec(c, NULL), *tdg = vec(c, NULL), *tdb = vec(c, NULL);
    float *first[4] = {0};
    for (int rep = 0; rep < 3; rep++) {
        TU_OK(clcnn_batchnorm_forward_train(dev, tx, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, ty, tm,
                                            ti));
        TU_OK(clcnn_batchnorm_backward(dev, tx, tdy, NULL, tm, ti, tdx, tdg, tdb));
        float *now[4] = {tu_download(ty), tu_download(tdx), tu_download(tdg), tu_download(tdb)};
        size_t sizes[4] = {total, total, c, c};
        for (int k = 0; k < 4; k++) {
            if (rep == 0) {
                first[k] = now[k];
                continue;
            }
            assert_memory_equal(first[k], now[k], sizes[k] * sizeof(float));
            free(now[k]);
        }
    }
    for (int k = 0; k < 4; k++)
        free(first[k]);
    free(x), free(dy);
    clcnn_tensor *ts[] = {tx, tdy, ty, tdx, tm, ti, tdg, tdb};
    for (int i = 0; i < 8; i++)
        clcnn_tensor_free(ts[i]);
}

static void expect_untouched(clcnn_tensor *t, float v) {
    float *h = tu_download(t);
    for (size_t i = 0; i < clcnn_tensor_numel(t); i++)
        assert_float_equal(h[i], v, 0);
    free(h);
}

static void test_errors_write_nothing(void **state) {
    (void)state;
    size_t s4[4] = {2, 3, 4, 4};
    clcnn_tensor *x = tu_tensor_from(4, s4, NULL), *y = tu_tensor_from(4, s4, NULL);
    clcnn_tensor *x1 = tu_tensor_from(4, (size_t[]){1, 3, 1, 1}, NULL);
    clcnn_tensor *y1 = tu_tensor_from(4, (size_t[]){1, 3, 1, 1}, NULL);
    clcnn_tensor *y_bad = tu_tensor_from(4, (size_t[]){2, 3, 4, 5}, NULL);
    clcnn_tensor *xv = tu_tensor_from(1, (size_t[]){96}, NULL);
    clcnn_tensor *g = vec(3, NULL), *g_bad = vec(4, NULL), *rm = vec(3, NULL), *rv = vec(3, NULL);
    clcnn_tensor *m = vec(3, NULL), *iv = vec(3, NULL), *dg = vec(3, NULL), *db = vec(3, NULL);
    clcnn_tensor *gi = tu_tensor_new(CLCNN_I32, 1, (size_t[]){3});
    clcnn_tensor *dx = tu_tensor_from(4, s4, NULL);
    TU_OK(clcnn_tensor_fill(x, 1));
    TU_OK(clcnn_tensor_fill(x1, 1));
    TU_OK(clcnn_tensor_fill(xv, 1));
    TU_OK(clcnn_tensor_fill(g, 1));
    TU_OK(clcnn_tensor_fill(g_bad, 1));
    clcnn_tensor *outs[] = {y, y1, y_bad, rm, rv, m, iv, dg, db, dx};
    for (int i = 0; i < 10; i++)
        TU_OK(clcnn_tensor_fill(outs[i], 42));

    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, 0.1f, 1e-5f, y_bad, m, iv),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3x4x5"));
    assert_non_null(strstr(clcnn_last_error(), "2x3x4x4"));
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g_bad, g, rm, rv, 0.1f, 1e-5f, y, m, iv),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "gamma"));
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, g_bad, 0.1f, 1e-5f, y, m, iv),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, gi, g, rm, rv, 0.1f, 1e-5f, y, m, iv),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, NULL, 0.1f, 1e-5f, y, m, iv),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, 0.1f, 1e-5f, y, m, NULL),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, 1.5f, 1e-5f, y, m, iv),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, NAN, 1e-5f, y, m, iv),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, 0.1f, -1.0f, y, m, iv),
                     CLCNN_ERR_INVALID_ARG);
    /* one value per channel: no batch variance (as PyTorch) */
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x1, g, g, rm, rv, 0.1f, 1e-5f, y1, m, iv),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "1x3x1x1"));
    assert_int_equal(
        clcnn_batchnorm_forward_train(dev, xv, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, xv, NULL, NULL),
        CLCNN_ERR_SHAPE);
    /* statistics that overlap x */
    assert_int_equal(clcnn_batchnorm_forward_train(dev, x, g, g, rm, rv, 0.1f, 1e-5f, y, m, g),
                     CLCNN_ERR_INVALID_ARG);

    assert_int_equal(clcnn_batchnorm_forward_infer(dev, x, g, g, rm, g_bad, 1e-5f, y),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_forward_infer(dev, x, g, g, NULL, rv, 1e-5f, y),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_forward_infer(dev, x, g, g, rm, rv, 1e-5f, y_bad),
                     CLCNN_ERR_SHAPE);

    assert_int_equal(clcnn_batchnorm_backward(dev, x, y_bad, g, m, iv, dx, dg, db),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_backward(dev, x, x, g, m, iv, y_bad, dg, db), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_backward(dev, x, x, g, m, g_bad, dx, dg, db), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_backward(dev, x, x, g, NULL, iv, dx, dg, db),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batchnorm_backward(dev, x, x, g, m, iv, dx, dg, g_bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_batchnorm_backward(dev, x, x, g, m, iv, dx, dg, dg),
                     CLCNN_ERR_INVALID_ARG);

    for (int i = 0; i < 10; i++)
        expect_untouched(outs[i], 42);
    clcnn_tensor *ts[] = {x, y, x1, y1, y_bad, xv, g, g_bad, rm, rv, m, iv, dg, db, gi, dx};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        clcnn_tensor_free(ts[i]);
}

/* ---- finite differences of the reference backward ------------------------------------ */

typedef struct fd_ctx {
    double *x, *g, *b, *y, *r;
    size_t n, c, hw;
    double eps;
} fd_ctx;

/* L = sum r y with y the training-mode output (batch statistics depend on x). */
static double bn_loss(void *p) {
    fd_ctx *f = p;
    ro_bn_train(f->x, f->n, f->c, f->hw, f->g, f->b, NULL, NULL, 0.1, f->eps, f->y, NULL, NULL);
    double s = 0;
    for (size_t i = 0; i < f->n * f->c * f->hw; i++)
        s += f->r[i] * f->y[i];
    return s;
}

static void test_reference_finite_differences(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(305);
    for (int it = 0; it < 20; it++) {
        size_t n = (size_t)tu_rng_int(&r, 1, 4), c = (size_t)tu_rng_int(&r, 1, 3);
        size_t hw = (size_t)tu_rng_int(&r, 1, 5);
        if (n * hw < 2) n = 2;
        size_t total = n * c * hw;
        double *x = malloc(total * sizeof *x), *y = malloc(total * sizeof *y);
        double *rr = malloc(total * sizeof *rr), *dx = malloc(total * sizeof *dx);
        double g[3], b[3], mean[3], inv[3], dg[3], db[3];
        for (size_t i = 0; i < total; i++)
            x[i] = tu_rng_uniform(&r, -2, 2);
        for (size_t i = 0; i < total; i++)
            rr[i] = tu_rng_uniform(&r, -1, 1);
        for (size_t i = 0; i < c; i++)
            g[i] = tu_rng_uniform(&r, -2, 2), b[i] = tu_rng_uniform(&r, -1, 1);
        double eps = 1e-3;
        ro_bn_train(x, n, c, hw, g, b, NULL, NULL, 0.1, eps, y, mean, inv);
        ro_bn_backward(x, rr, n, c, hw, g, mean, inv, dx, dg, db);
        fd_ctx f = {x, g, b, y, rr, n, c, hw, eps};
        /* L is smooth in x (variance >= eps keeps 1/sqrt away from its pole); with the
         * values spread over [-2, 2] its third derivatives stay O(10^2), so h = 1e-5 gives
         * a truncation error ~1e-8 and rounding ~1e-16/1e-5: allow 1e-6 (1 + |grad|).
         * L is linear in gamma and beta: exact up to rounding. */
        double *params[3] = {x, g, b}, *grads[3] = {dx, dg, db};
        size_t counts[3] = {total, c, c};
        const char *names[3] = {"x", "gamma", "beta"};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < counts[p]; i++) {
                double num = ro_central_diff(bn_loss, &f, &params[p][i], 1e-5);
                if (fabs(num - grads[p][i]) > 1e-6 * (1 + fabs(grads[p][i])))
                    fail_msg("bn FD mismatch d%s[%zu] (n %zu c %zu hw %zu): analytic %.10g "
                             "numeric %.10g",
                             names[p], i, n, c, hw, grads[p][i], num);
            }
        free(x), free(y), free(rr), free(dx);
    }
}

/* Every check above with the kernels $CLCNN_BN_KERNELS=kernels names. */
static void run_all(void **state, const char *kernels) {
    setenv("CLCNN_BN_KERNELS", kernels, 1);
    test_hand_computed(state);
    test_random_sweep(state);
    test_layers_and_large_mean(state);
    test_large_planes(state);
    test_offsets_and_in_place(state);
    test_deterministic(state);
    unsetenv("CLCNN_BN_KERNELS");
}

/* The per-channel group kernels (what GPUs run) on this device too, */
static void test_group_kernels(void **state) {
    run_all(state, "group");
}

/* ... the chunk kernels (what CPUs run), whatever this device is, */
static void test_chunk_kernels(void **state) {
    run_all(state, "chunk");
}

/* ... and the whole-channel kernels (what CPUs run where a channel fits the cache). */
static void test_channel_kernels(void **state) {
    run_all(state, "channel");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_kernels),
        cmocka_unit_test(test_chunk_kernels),
        cmocka_unit_test(test_channel_kernels),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_reference_finite_differences),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_device);
}
