/* linear: y = x w^T + b and its backward (dx, dw, db) against the double reference in
 * reference_ops.c over a seeded sweep of random shapes (x 2-D and 4-D, bias or not, batch
 * 1, odd sizes); a hand-computed case; tensors at offsets; finite differences of the
 * reference backward; error paths (nothing written). The products have two paths (the
 * small-batch kernels of cl/linear_small.cl and CLBlast, lib/ops/linear.c): the sweeps at
 * the default threshold cover the small one, test_layer_sizes (n = 64 / 1) both; the
 * offsets, test_paths_sweep and test_threshold_and_repeat force each path in turn. */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference_ops.h"

#define U FLT_EPSILON /* 2^-23 = 2u */

static clcnn_device *dev;

static int setup(void **state) {
    (void)state;
    dev = tu_device();
    return dev ? 0 : -1;
}
/* A float dot product of length K is off by at most gamma_K sum|a_l b_l| ~ K u sum|a b|
 * (Higham 3.1), whatever the summation order or FMA use; we allow K U = 2 K u of the
 * largest such sum among the outputs. The bound is rigorous, and still far below the
 * error of any wrong term (|x w| ~ 0.25 on average here). */
static double dot_tol(size_t k, double max_abs_sum) {
    return (double)k * U * max_abs_sum + 1e-30;
}

/* max over (i, j) of sum_l |a[i, l] b[j, l]| with a (m, k), b (n, k) accessed through
 * strides (row, col) so transposed operands work too. */
static double max_abs_dot(const double *a, size_t as_r, size_t as_c, const double *b, size_t bs_r,
                          size_t bs_c, size_t m, size_t n, size_t k, const double *add) {
    double best = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = add ? fabs(add[j]) : 0;
            for (size_t l = 0; l < k; l++)
                s += fabs(a[i * as_r + l * as_c] * b[j * bs_r + l * bs_c]);
            if (s > best) best = s;
        }
    return best;
}

typedef struct lin_case {
    size_t n, in, k;
    int xdims; /* 2: x is (n, in); 4: x is (n, c, h, w) with c*h*w = in */
    size_t xs[4];
    int bias, want_dx, want_db;
} lin_case;

static int run_case(const lin_case *lc, tu_rng *r) {
    size_t n = lc->n, in = lc->in, k = lc->k;
    float *x = malloc(n * in * sizeof *x), *w = malloc(k * in * sizeof *w);
    float *b = malloc(k * sizeof *b), *dy = malloc(n * k * sizeof *dy);
    tu_fill_uniform(r, x, n * in, -1, 1);
    tu_fill_uniform(r, w, k * in, -1, 1);
    tu_fill_uniform(r, b, k, -1, 1);
    tu_fill_uniform(r, dy, n * k, -1, 1);
    double *xd = ro_to_double(x, n * in), *wd = ro_to_double(w, k * in);
    double *bd = ro_to_double(b, k), *dyd = ro_to_double(dy, n * k);
    double *yref = malloc(n * k * sizeof *yref), *dxref = malloc(n * in * sizeof *dxref);
    double *dwref = malloc(k * in * sizeof *dwref), *dbref = malloc(k * sizeof *dbref);
    ro_linear_forward(xd, wd, lc->bias ? bd : NULL, n, in, k, yref);
    ro_linear_backward(xd, wd, dyd, n, in, k, dxref, dwref, dbref);

    clcnn_tensor *tx = tu_tensor_new(CLCNN_F32, lc->xdims, lc->xs);
    clcnn_tensor *tw = tu_tensor_new(CLCNN_F32, 2, (size_t[]){k, in});
    clcnn_tensor *tb = tu_tensor_new(CLCNN_F32, 1, &k);
    clcnn_tensor *ty = tu_tensor_new(CLCNN_F32, 2, (size_t[]){n, k});
    clcnn_tensor *tdy = tu_tensor_new(CLCNN_F32, 2, (size_t[]){n, k});
    clcnn_tensor *tdx = tu_tensor_new(CLCNN_F32, lc->xdims, lc->xs);
    clcnn_tensor *tdw = tu_tensor_new(CLCNN_F32, 2, (size_t[]){k, in});
    clcnn_tensor *tdb = tu_tensor_new(CLCNN_F32, 1, &k);
    TU_OK(clcnn_tensor_upload(tx, x, n * in * sizeof *x));
    TU_OK(clcnn_tensor_upload(tw, w, k * in * sizeof *w));
    TU_OK(clcnn_tensor_upload(tb, b, k * sizeof *b));
    TU_OK(clcnn_tensor_upload(tdy, dy, n * k * sizeof *dy));
    TU_OK(clcnn_tensor_fill(ty, NAN));
    TU_OK(clcnn_tensor_fill(tdx, NAN));
    TU_OK(clcnn_tensor_fill(tdw, NAN));
    TU_OK(clcnn_tensor_fill(tdb, NAN));
    TU_OK(clcnn_linear_forward(dev, tx, tw, lc->bias ? tb : NULL, ty));
    TU_OK(clcnn_linear_backward(dev, tx, tw, tdy, lc->want_dx ? tdx : NULL, tdw,
                                lc->want_db ? tdb : NULL));
    float *y = tu_download(ty), *dx = tu_download(tdx), *dw = tu_download(tdw);
    float *db = tu_download(tdb);

    int ok = 1;
    /* y (n,k): dots of length in (+ the bias) */
    ok &= tu_close(
        "linear y", y, yref, n * k,
        dot_tol(in + 1, max_abs_dot(xd, in, 1, wd, in, 1, n, k, in, lc->bias ? bd : NULL)), 0);
    /* dx (n,in) = dy w: dots of length k; dw (k,in) = dy^T x: length n; db: length n */
    if (lc->want_dx)
        ok &= tu_close("linear dx", dx, dxref, n * in,
                       dot_tol(k, max_abs_dot(dyd, k, 1, wd, 1, in, n, in, k, NULL)), 0);
    else
        for (size_t i = 0; i < n * in; i++)
            ok &= isnan(dx[i]); /* not written */
    ok &= tu_close("linear dw", dw, dwref, k * in,
                   dot_tol(n, max_abs_dot(dyd, 1, k, xd, 1, in, k, in, n, NULL)), 0);
    if (lc->want_db) {
        double abs_col = 0; /* max_j sum_i |dy[i,j]| */
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += fabs(dyd[i * k + j]);
            if (s > abs_col) abs_col = s;
        }
        ok &= tu_close("linear db", db, dbref, k, dot_tol(n, abs_col), 0);
    } else {
        for (size_t i = 0; i < k; i++)
            ok &= isnan(db[i]);
    }
    if (!ok)
        fprintf(stderr, "  case: n %zu in %zu k %zu xdims %d bias %d dx %d db %d\n", n, in, k,
                lc->xdims, lc->bias, lc->want_dx, lc->want_db);

    clcnn_tensor *ts[] = {tx, tw, tb, ty, tdy, tdx, tdw, tdb};
    for (int i = 0; i < 8; i++)
        clcnn_tensor_free(ts[i]);
    void *ps[] = {x, w, b, dy, xd, wd, bd, dyd, yref, dxref, dwref, dbref, y, dx, dw, db};
    for (int i = 0; i < 16; i++)
        free(ps[i]);
    return ok;
}

static void test_random_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(11);
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(220, 24); i++) {
        lin_case lc = {0};
        lc.n = tu_rng_int(&r, 0, 4) == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 17);
        lc.k = (size_t)tu_rng_int(&r, 1, 37);
        if (i % 2) {
            lc.xdims = 4;
            lc.xs[1] = (size_t)tu_rng_int(&r, 1, 5);
            lc.xs[2] = (size_t)tu_rng_int(&r, 1, 5);
            lc.xs[3] = (size_t)tu_rng_int(&r, 1, 5);
            lc.in = lc.xs[1] * lc.xs[2] * lc.xs[3];
        } else {
            lc.xdims = 2;
            lc.in = (size_t)tu_rng_int(&r, 1, 70);
            lc.xs[1] = lc.in;
        }
        lc.xs[0] = lc.n;
        lc.bias = tu_rng_int(&r, 0, 3) != 0;
        lc.want_dx = tu_rng_int(&r, 0, 4) != 0;
        lc.want_db = tu_rng_int(&r, 0, 4) != 0;
        if (!run_case(&lc, &r)) failures++;
    }
    assert_int_equal(failures, 0);
}

/* A few layer sizes of real networks (LeNet / MNIST MLP heads). */
static void test_layer_sizes(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL(); /* up to 64x800x500: test_paths_sweep has the small ones */
    tu_rng r = tu_rng_seed(12);
    lin_case a = {64, 800, 500, 4, {64, 50, 4, 4}, 1, 1, 1};
    lin_case b = {64, 500, 10, 2, {64, 500}, 1, 1, 1};
    lin_case c = {1, 784, 128, 4, {1, 1, 28, 28}, 1, 1, 1};
    assert_true(run_case(&a, &r));
    assert_true(run_case(&b, &r));
    assert_true(run_case(&c, &r));
}

static void test_hand_computed(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0.5f, -1, 0};
    clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){2, 2}, x);
    clcnn_tensor *tw = tu_tensor_from(2, (size_t[]){3, 2}, w);
    clcnn_tensor *tb = tu_tensor_from(1, (size_t[]){3}, b);
    clcnn_tensor *ty = tu_tensor_from(2, (size_t[]){2, 3}, NULL);
    TU_OK(clcnn_linear_forward(dev, tx, tw, tb, ty));
    float *y = tu_download(ty);
    const float want[6] = {1.5f, 1, 3, 3.5f, 3, 7};
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], want[i], 0);
    /* dy = ones: dx = column sums of w = (2, 2); dw = column sums of x = (4, 6) per row;
     * db = n = 2 */
    clcnn_tensor *tdw = tu_tensor_from(2, (size_t[]){3, 2}, NULL);
    clcnn_tensor *tdb = tu_tensor_from(1, (size_t[]){3}, NULL);
    clcnn_tensor *tdx = tu_tensor_from(2, (size_t[]){2, 2}, NULL);
    TU_OK(clcnn_tensor_fill(ty, 1.0f));
    TU_OK(clcnn_linear_backward(dev, tx, tw, ty, tdx, tdw, tdb));
    float *dx = tu_download(tdx), *dw = tu_download(tdw), *db = tu_download(tdb);
    for (int i = 0; i < 4; i++)
        assert_float_equal(dx[i], 2, 0);
    for (int j = 0; j < 3; j++) {
        assert_float_equal(dw[2 * j], 4, 0);
        assert_float_equal(dw[2 * j + 1], 6, 0);
        assert_float_equal(db[j], 2, 0);
    }
    free(y), free(dx), free(dw), free(db);
    clcnn_tensor *ts[] = {tx, tw, tb, ty, tdw, tdb, tdx};
    for (int i = 0; i < 7; i++)
        clcnn_tensor_free(ts[i]);
}

/* Every tensor a view at its own offset into a NaN-filled buffer (x as a conv output would
 * be); the results match the reference and y's neighbours stay NaN. */
static void check_offsets(size_t n, size_t in, size_t k, unsigned seed) {
    tu_rng r = tu_rng_seed(seed);
    clcnn_tensor *base[8];
    clcnn_tensor *tx = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){n, in}, 3, &base[0]);
    clcnn_tensor *tw = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){k, in}, 5, &base[1]);
    clcnn_tensor *tb = ro_tensor_at_offset(dev, CLCNN_F32, 1, &k, 1, &base[2]);
    clcnn_tensor *ty = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){n, k}, 7, &base[3]);
    clcnn_tensor *tdy = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){n, k}, 2, &base[4]);
    clcnn_tensor *tdx = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){n, in}, 9, &base[5]);
    clcnn_tensor *tdw = ro_tensor_at_offset(dev, CLCNN_F32, 2, (size_t[]){k, in}, 4, &base[6]);
    clcnn_tensor *tdb = ro_tensor_at_offset(dev, CLCNN_F32, 1, &k, 6, &base[7]);
    float *x = malloc(n * in * sizeof *x), *w = malloc(k * in * sizeof *w);
    float *b = malloc(k * sizeof *b), *dy = malloc(n * k * sizeof *dy);
    tu_fill_uniform(&r, x, n * in, -1, 1);
    tu_fill_uniform(&r, w, k * in, -1, 1);
    tu_fill_uniform(&r, b, k, -1, 1);
    tu_fill_uniform(&r, dy, n * k, -1, 1);
    TU_OK(clcnn_tensor_upload(tx, x, n * in * sizeof *x));
    TU_OK(clcnn_tensor_upload(tw, w, k * in * sizeof *w));
    TU_OK(clcnn_tensor_upload(tb, b, k * sizeof *b));
    TU_OK(clcnn_tensor_upload(tdy, dy, n * k * sizeof *dy));
    TU_OK(clcnn_linear_forward(dev, tx, tw, tb, ty));
    TU_OK(clcnn_linear_backward(dev, tx, tw, tdy, tdx, tdw, tdb));
    double *xd = ro_to_double(x, n * in), *wd = ro_to_double(w, k * in), *bd = ro_to_double(b, k);
    double *dyd = ro_to_double(dy, n * k), *yref = malloc(n * k * sizeof *yref);
    double *dxref = malloc(n * in * sizeof *dxref), *dwref = malloc(k * in * sizeof *dwref);
    double *dbref = malloc(k * sizeof *dbref);
    ro_linear_forward(xd, wd, bd, n, in, k, yref);
    ro_linear_backward(xd, wd, dyd, n, in, k, dxref, dwref, dbref);
    float *y = tu_download(ty), *dx = tu_download(tdx), *dw = tu_download(tdw);
    float *db = tu_download(tdb);
    /* dots of length L <= in + 1, k or n with |terms| <= 1: L * L * U bounds the error */
    size_t len = in + 1 > k ? in + 1 : k;
    if (n > len) len = n;
    double tol = (double)len * (double)len * U;
    assert_true(tu_close("offset y", y, yref, n * k, tol, 0));
    assert_true(tu_close("offset dx", dx, dxref, n * in, tol, 0));
    assert_true(tu_close("offset dw", dw, dwref, k * in, tol, 0));
    assert_true(tu_close("offset db", db, dbref, k, tol, 0));
    float *all = tu_download(base[3]);
    for (size_t i = 0; i < 7; i++)
        assert_true(isnan(all[i]));
    for (size_t i = 7 + n * k; i < clcnn_tensor_numel(base[3]); i++)
        assert_true(isnan(all[i]));
    free(all);
    void *ps[] = {xd, wd, bd, dyd, y, dx, dw, db, x, w, b, dy, yref, dxref, dwref, dbref};
    for (int i = 0; i < 16; i++)
        free(ps[i]);
    clcnn_tensor *ts[] = {tx, tw, tb, ty, tdy, tdx, tdw, tdb};
    for (int i = 0; i < 8; i++) {
        clcnn_tensor_free(ts[i]);
        clcnn_tensor_free(base[i]);
    }
}

/* The CLBlast path and the small-batch kernels (lib/ops/linear.c), each forced through
 * $CLCNN_LINEAR_SMALL_MAX; unset afterwards (the default threshold). */
static void force_path(int small) {
    setenv("CLCNN_LINEAR_SMALL_MAX", small ? "1000000000" : "0", 1);
}

static void test_offsets(void **state) {
    (void)state;
    for (int small = 0; small < 2; small++) {
        force_path(small);
        check_offsets(3, 7, 5, 13);
        check_offsets(1, 16, 1, 15);  /* n = 1, one full strip, one feature */
        check_offsets(9, 37, 19, 16); /* partial strips and row blocks, odd k */
    }
    unsetenv("CLCNN_LINEAR_SMALL_MAX");
}

/* db is a fixed-order column sum; the GEMMs have no atomics: bitwise repeatable. */
static void test_deterministic(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(14);
    size_t n = 300, in = 33, k = 17;
    float *x = malloc(n * in * sizeof *x), *dy = malloc(n * k * sizeof *dy), w[33 * 17];
    tu_fill_uniform(&r, x, n * in, -1, 1);
    tu_fill_uniform(&r, dy, n * k, -1, 1);
    tu_fill_uniform(&r, w, in * k, -1, 1);
    clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){n, in}, x);
    clcnn_tensor *tw = tu_tensor_from(2, (size_t[]){k, in}, w);
    clcnn_tensor *tdy = tu_tensor_from(2, (size_t[]){n, k}, dy);
    clcnn_tensor *tdw = tu_tensor_from(2, (size_t[]){k, in}, NULL);
    clcnn_tensor *tdb = tu_tensor_from(1, &k, NULL);
    float *first[2] = {NULL, NULL};
    for (int rep = 0; rep < 2; rep++) {
        TU_OK(clcnn_linear_backward(dev, tx, tw, tdy, NULL, tdw, tdb));
        float *dw = tu_download(tdw), *db = tu_download(tdb);
        if (rep == 0) {
            first[0] = dw;
            first[1] = db;
            continue;
        }
        assert_memory_equal(dw, first[0], k * in * sizeof *dw);
        assert_memory_equal(db, first[1], k * sizeof *db);
        free(dw), free(db);
    }
    free(first[0]), free(first[1]), free(x), free(dy);
    clcnn_tensor *ts[] = {tx, tw, tdy, tdw, tdb};
    for (int i = 0; i < 5; i++)
        clcnn_tensor_free(ts[i]);
}

/* Both paths on shapes around the small kernels' blocking: in below, at and around
 * multiples of 16 (float16 strips and tails), k odd and around multiples of 2 / 4 / 16
 * (features per work-item, the j unrolling, the row blocks of backward data), n = 1 and
 * around the row blocks of 4 and 8, x 2-D and 4-D. */
static void test_paths_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(21);
    static const size_t ins[] = {1, 3, 15, 16, 17, 31, 33, 48, 70};
    static const size_t ks[] = {1, 2, 3, 5, 16, 17, 33, 36};
    static const size_t ns[] = {1, 2, 4, 5, 8, 9, 13, 17};
    int failures = 0;
    for (int small = 0; small < 2; small++) {
        force_path(small);
        for (int i = 0; i < (int)tu_small_count(48, 16); i++) { /* 16: every n twice */
            lin_case lc = {0};
            lc.n = ns[i % 8];
            lc.in = ins[(i * 5 + small) % 9];
            lc.k = ks[(i * 3 + i / 8) % 8];
            lc.xdims = 2;
            lc.xs[0] = lc.n;
            lc.xs[1] = lc.in;
            if (i % 3 == 0 && lc.in % 3 == 0) { /* (n, in/3, 3, 1) */
                lc.xdims = 4;
                lc.xs[1] = lc.in / 3;
                lc.xs[2] = 3;
                lc.xs[3] = 1;
            }
            lc.bias = i % 4 != 1;
            lc.want_dx = i % 5 != 2;
            lc.want_db = i % 3 != 0;
            if (!run_case(&lc, &r)) failures++;
        }
        /* a few larger ones: many row blocks, many JS blocks of w's rows */
        lin_case big[] = {{8, 1000, 300, 2, {8, 1000}, 1, 1, 1},
                          {33, 257, 45, 2, {33, 257}, 1, 1, 1},
                          {2, 4096, 10, 4, {2, 256, 4, 4}, 0, 1, 1}};
        for (int i = 0; i < 3; i++)
            if (!run_case(&big[i], &r)) failures++;
    }
    unsetenv("CLCNN_LINEAR_SMALL_MAX");
    assert_int_equal(failures, 0);
}

/* y, dx, dw of one shape, downloaded (y first). */
static void products(clcnn_tensor *tx, clcnn_tensor *tw, clcnn_tensor *tb, clcnn_tensor *ty,
                     clcnn_tensor *tdy, clcnn_tensor *tdx, clcnn_tensor *tdw, float *out[3]) {
    TU_OK(clcnn_linear_forward(dev, tx, tw, tb, ty));
    TU_OK(clcnn_linear_backward(dev, tx, tw, tdy, tdx, tdw, NULL));
    out[0] = tu_download(ty);
    out[1] = tu_download(tdx);
    out[2] = tu_download(tdw);
}

/* The default threshold (64 rows on CPUs, 16 elsewhere): at it the results are bit for bit
 * those of the forced small kernels, one row above those of forced CLBlast; and each path
 * repeats bit for bit. */
static void test_threshold_and_repeat(void **state) {
    (void)state;
    size_t thr = clcnn_device_get_info(dev)->type == CLCNN_DEVICE_CPU ? 64 : 16, in = 45, k = 19;
    tu_rng r = tu_rng_seed(22);
    for (size_t n = thr; n <= thr + 1; n++) {
        float *x = malloc(n * in * sizeof *x), *dy = malloc(n * k * sizeof *dy);
        float w[45 * 19], b[19];
        tu_fill_uniform(&r, x, n * in, -1, 1);
        tu_fill_uniform(&r, dy, n * k, -1, 1);
        tu_fill_uniform(&r, w, in * k, -1, 1);
        tu_fill_uniform(&r, b, k, -1, 1);
        clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){n, in}, x);
        clcnn_tensor *tw = tu_tensor_from(2, (size_t[]){k, in}, w);
        clcnn_tensor *tb = tu_tensor_from(1, &k, b);
        clcnn_tensor *ty = tu_tensor_from(2, (size_t[]){n, k}, NULL);
        clcnn_tensor *tdy = tu_tensor_from(2, (size_t[]){n, k}, dy);
        clcnn_tensor *tdx = tu_tensor_from(2, (size_t[]){n, in}, NULL);
        clcnn_tensor *tdw = tu_tensor_from(2, (size_t[]){k, in}, NULL);
        size_t sizes[3] = {n * k, n * in, k * in};
        float *dflt[3], *forced[3], *again[3];
        unsetenv("CLCNN_LINEAR_SMALL_MAX");
        products(tx, tw, tb, ty, tdy, tdx, tdw, dflt);
        force_path(n <= thr);
        products(tx, tw, tb, ty, tdy, tdx, tdw, forced);
        products(tx, tw, tb, ty, tdy, tdx, tdw, again);
        force_path(n > thr);
        float *other[3];
        products(tx, tw, tb, ty, tdy, tdx, tdw, other);
        int differs = 0;
        for (int i = 0; i < 3; i++) {
            assert_memory_equal(dflt[i], forced[i], sizes[i] * sizeof(float));
            assert_memory_equal(again[i], forced[i], sizes[i] * sizeof(float));
            differs |= memcmp(other[i], forced[i], sizes[i] * sizeof(float)) != 0;
            free(dflt[i]), free(forced[i]), free(again[i]), free(other[i]);
        }
        /* the two paths sum in different orders: if they agreed bit for bit on every
         * value, the test could not tell which path ran */
        assert_true(differs);
        clcnn_tensor *ts[] = {tx, tw, tb, ty, tdy, tdx, tdw};
        for (int i = 0; i < 7; i++)
            clcnn_tensor_free(ts[i]);
        free(x), free(dy);
    }
    unsetenv("CLCNN_LINEAR_SMALL_MAX");
}

static void expect_untouched(clcnn_tensor *t, float v) {
    float *h = tu_download(t);
    for (size_t i = 0; i < clcnn_tensor_numel(t); i++)
        assert_float_equal(h[i], v, 0);
    free(h);
}

static void test_errors_write_nothing(void **state) {
    (void)state;
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 2, 3, 3}); /* in = 18 */
    clcnn_tensor *w = tu_tensor_new(CLCNN_F32, 2, (size_t[]){5, 18});
    clcnn_tensor *w_bad = tu_tensor_new(CLCNN_F32, 2, (size_t[]){5, 17});
    clcnn_tensor *w3 = tu_tensor_new(CLCNN_F32, 3, (size_t[]){5, 18, 1});
    clcnn_tensor *b = tu_tensor_new(CLCNN_F32, 1, (size_t[]){5});
    clcnn_tensor *b_bad = tu_tensor_new(CLCNN_F32, 1, (size_t[]){6});
    clcnn_tensor *y = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 5});
    clcnn_tensor *y_bad = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 6});
    clcnn_tensor *y_n = tu_tensor_new(CLCNN_F32, 2, (size_t[]){5, 4});
    clcnn_tensor *yi = tu_tensor_new(CLCNN_I32, 2, (size_t[]){4, 5});
    clcnn_tensor *dx_bad = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 17});
    clcnn_tensor *dw = tu_tensor_new(CLCNN_F32, 2, (size_t[]){5, 18});
    clcnn_tensor *dw_bad = tu_tensor_new(CLCNN_F32, 2, (size_t[]){18, 5});
    clcnn_tensor *db = tu_tensor_new(CLCNN_F32, 1, (size_t[]){5});
    TU_OK(clcnn_tensor_fill(x, 1));
    TU_OK(clcnn_tensor_fill(w, 1));
    TU_OK(clcnn_tensor_fill(b, 1));
    clcnn_tensor *outs[] = {y, y_bad, y_n, dx_bad, dw, dw_bad, db, b_bad};
    for (int i = 0; i < 8; i++)
        TU_OK(clcnn_tensor_fill(outs[i], 42));

    assert_int_equal(clcnn_linear_forward(dev, x, w_bad, b, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "5x17"));
    assert_non_null(strstr(clcnn_last_error(), "4x2x3x3"));
    assert_int_equal(clcnn_linear_forward(dev, x, w3, b, y), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_linear_forward(dev, x, w, b_bad, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "6"));
    assert_int_equal(clcnn_linear_forward(dev, x, w, b, y_bad), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "4x6"));
    assert_int_equal(clcnn_linear_forward(dev, x, w, b, y_n), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_linear_forward(dev, x, w, b, yi), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_forward(dev, x, w, b, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_forward(NULL, x, w, b, y), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_forward(dev, x, w, b, x), CLCNN_ERR_SHAPE);

    assert_int_equal(clcnn_linear_backward(dev, x, w, y_bad, NULL, dw, db), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_linear_backward(dev, x, w, y, dx_bad, dw, db), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "4x17"));
    assert_int_equal(clcnn_linear_backward(dev, x, w, y, NULL, dw_bad, db), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "18x5"));
    assert_int_equal(clcnn_linear_backward(dev, x, w, y, NULL, dw, b_bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_linear_backward(dev, x, w_bad, y, NULL, dw, db), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_linear_backward(dev, x, w, yi, NULL, dw, db), CLCNN_ERR_INVALID_ARG);

    expect_untouched(y, 42), expect_untouched(y_bad, 42), expect_untouched(y_n, 42);
    expect_untouched(dx_bad, 42), expect_untouched(dw, 42), expect_untouched(dw_bad, 42);
    expect_untouched(db, 42), expect_untouched(b_bad, 42);
    clcnn_tensor *ts[] = {x, w, w_bad, w3, b, b_bad, y, y_bad, y_n, yi, dx_bad, dw, dw_bad, db};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        clcnn_tensor_free(ts[i]);
}

/* Outputs sharing memory with inputs are refused before anything runs. */
static void test_aliasing_refused(void **state) {
    (void)state;
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 4});
    clcnn_tensor *w = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 4});
    clcnn_tensor *dy = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 4});
    clcnn_tensor *dw = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 4});
    clcnn_tensor *w_view = NULL; /* another tensor on w's storage */
    TU_OK(clcnn_tensor_view(w, 2, (size_t[]){4, 4}, &w_view));
    TU_OK(clcnn_tensor_fill(x, 1));
    TU_OK(clcnn_tensor_fill(w, 2));
    assert_int_equal(clcnn_linear_forward(dev, x, w, NULL, x), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_forward(dev, x, w, NULL, w_view), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_backward(dev, x, w, dy, dy, dw, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_linear_backward(dev, x, w, dy, NULL, x, NULL), CLCNN_ERR_INVALID_ARG);
    expect_untouched(x, 1);
    expect_untouched(w, 2);
    clcnn_tensor_free(x), clcnn_tensor_free(w), clcnn_tensor_free(dy), clcnn_tensor_free(dw);
    clcnn_tensor_free(w_view);
}

/* ---- finite differences of the reference backward ------------------------------------ */

typedef struct fd_ctx {
    double *x, *w, *b, *y, *r;
    size_t n, in, k;
} fd_ctx;

static double lin_loss(void *p) {
    fd_ctx *f = p;
    ro_linear_forward(f->x, f->w, f->b, f->n, f->in, f->k, f->y);
    double s = 0;
    for (size_t i = 0; i < f->n * f->k; i++)
        s += f->r[i] * f->y[i];
    return s;
}

static void test_reference_finite_differences(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(15);
    for (int it = 0; it < 10; it++) {
        size_t n = (size_t)tu_rng_int(&r, 1, 5), in = (size_t)tu_rng_int(&r, 1, 9);
        size_t k = (size_t)tu_rng_int(&r, 1, 6);
        double *x = malloc(n * in * sizeof *x), *w = malloc(k * in * sizeof *w);
        double *b = malloc(k * sizeof *b), *y = malloc(n * k * sizeof *y);
        double *rr = malloc(n * k * sizeof *rr), *dx = malloc(n * in * sizeof *dx);
        double *dw = malloc(k * in * sizeof *dw), *db = malloc(k * sizeof *db);
        for (size_t i = 0; i < n * in; i++)
            x[i] = tu_rng_uniform(&r, -1, 1);
        for (size_t i = 0; i < k * in; i++)
            w[i] = tu_rng_uniform(&r, -1, 1);
        for (size_t i = 0; i < k; i++)
            b[i] = tu_rng_uniform(&r, -1, 1);
        for (size_t i = 0; i < n * k; i++)
            rr[i] = tu_rng_uniform(&r, -1, 1);
        ro_linear_backward(x, w, rr, n, in, k, dx, dw, db);
        fd_ctx f = {x, w, b, y, rr, n, in, k};
        /* L = sum r y is linear in each parameter: central differences are exact but for
         * rounding, ~ |L| 1e-16 / h with h = 1e-4: below 1e-10. */
        double *params[3] = {x, w, b}, *grads[3] = {dx, dw, db};
        size_t counts[3] = {n * in, k * in, k};
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < counts[p]; i++) {
                double num = ro_central_diff(lin_loss, &f, &params[p][i], 1e-4);
                if (fabs(num - grads[p][i]) > 1e-9)
                    fail_msg("linear FD mismatch, param %d element %zu: analytic %g numeric %g", p,
                             i, grads[p][i], num);
            }
        void *ps[] = {x, w, b, y, rr, dx, dw, db};
        for (int i = 0; i < 8; i++)
            free(ps[i]);
    }
}

/* clcnn_gemm_batched (the public CLBlast product): every transpose combination, padded
 * leading dimensions, strides between matrices and operands at non-zero tensor offsets,
 * against a double loop; operands reaching past their tensors are refused. */
static void test_gemm_batched(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(77);
    const size_t m = 5, n = 7, k = 9, batch = 3, off = 11;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            size_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
            size_t sa = (ta ? k : m) * lda + 4, sb = (tb ? n : k) * ldb, sc = m * ldc + 1;
            size_t na = off + batch * sa, nb = off + batch * sb, nc = off + batch * sc;
            float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
            float *c = malloc(nc * sizeof *c);
            tu_fill_uniform(&r, a, na, -1, 1);
            tu_fill_uniform(&r, b, nb, -1, 1);
            tu_fill_uniform(&r, c, nc, -1, 1);
            double *want = malloc(nc * sizeof *want);
            for (size_t i = 0; i < nc; i++)
                want[i] = c[i];
            for (size_t q = 0; q < batch; q++)
                for (size_t i = 0; i < m; i++)
                    for (size_t j = 0; j < n; j++) {
                        double acc = 0;
                        for (size_t l = 0; l < k; l++) {
                            double av = a[off + q * sa + (ta ? l * lda + i : i * lda + l)];
                            double bv = b[off + q * sb + (tb ? j * ldb + l : l * ldb + j)];
                            acc += av * bv;
                        }
                        size_t ci = off + q * sc + i * ldc + j;
                        want[ci] = 0.5 * acc + 2.0 * c[ci];
                    }
            clcnn_tensor *ta_t = tu_tensor_from(1, &na, a), *tb_t = tu_tensor_from(1, &nb, b);
            clcnn_tensor *tc_t = tu_tensor_from(1, &nc, c);
            clcnn_tensor *av = NULL, *bv = NULL, *cv = NULL;
            size_t va = na - off, vb = nb - off, vc = nc - off;
            av = ro_view_at(ta_t, 1, &va, off);
            bv = ro_view_at(tb_t, 1, &vb, off);
            cv = ro_view_at(tc_t, 1, &vc, off);
            TU_OK(clcnn_gemm_batched(tu_device(), ta, tb, m, n, k, 0.5f, av, lda, sa, bv, ldb, sb,
                                     2.0f, cv, ldc, sc, batch));
            float *got = tu_download(tc_t);
            assert_true(tu_close("gemm_batched", got, want, nc, 1e-5, 1e-5));
            /* one matrix too many for b's tensor: refused, nothing written */
            assert_int_equal(clcnn_gemm_batched(tu_device(), ta, tb, m, n, k, 1.0f, av, lda, sa, bv,
                                                ldb, sb + 1, 0.0f, cv, ldc, sc, batch),
                             CLCNN_ERR_SHAPE);
            assert_non_null(strstr(clcnn_last_error(), "b needs"));
            assert_int_equal(clcnn_gemm_batched(tu_device(), ta, tb, m, n, k, 1.0f, av, 1, sa, bv,
                                                ldb, sb, 0.0f, cv, ldc, sc, batch),
                             CLCNN_ERR_SHAPE);
            float *again = tu_download(tc_t);
            assert_memory_equal(again, got, nc * sizeof *got);
            free(again), free(got), free(a), free(b), free(c), free(want);
            clcnn_tensor_free(av), clcnn_tensor_free(bv), clcnn_tensor_free(cv);
            clcnn_tensor_free(ta_t), clcnn_tensor_free(tb_t), clcnn_tensor_free(tc_t);
        }
    assert_int_equal(clcnn_linear_small_batch(tu_device(), 1), 1);
    assert_int_equal(clcnn_linear_small_batch(NULL, 1), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_batched),
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_layer_sizes),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_paths_sweep),
        cmocka_unit_test(test_threshold_and_repeat),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_aliasing_refused),
        cmocka_unit_test(test_reference_finite_differences),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_device);
}
