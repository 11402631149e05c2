/* softmax / log-softmax, fused softmax cross-entropy and MSE against the double reference
 * in reference_ops.c: seeded sweeps of random shapes, extreme logits (no inf/NaN),
 * hand-computed values, out-of-range labels, tensors at offsets, bitwise repeatability of
 * the reductions, finite differences of the reference gradients, error paths (nothing
 * written). */
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
static size_t numel_of(int ndim, const size_t *s) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= s[i];
    return n;
}

static float download_scalar(const clcnn_tensor *t) {
    float v;
    TU_OK(clcnn_tensor_download(t, &v, sizeof v));
    return v;
}

/* ---- softmax -------------------------------------------------------------------------- */

/* Tolerances, with c classes and |x - max| <= R:
 *  softmax: x - max is rounded (R u absolute, R u relative error in exp), exp itself is
 *    within 3 ulp (OpenCL 1.2 full profile), the sum of c terms within (c-1) u: relative
 *    error below (c + R + 8) U.
 *  log-softmax: (x - max) - log(sum): absolute error R u + c u (sum) + 3 ulp of log, plus a
 *    final rounding relative to |y|: atol (c + 8) U, rtol (R + 4) U. */
static int check_softmax(const float *x, int ndim, const size_t *shape, int log_out, int in_place) {
    size_t total = numel_of(ndim, shape), n = shape[0], c = shape[1];
    size_t inner = total / (n * c);
    double *xd = ro_to_double(x, total), *ref = malloc(total * sizeof *ref);
    ro_softmax(xd, n, c, inner, log_out, ref);
    double range = 0; /* max |x - rowmax| bound: the spread of x */
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < total; i++)
        lo = fmin(lo, xd[i]), hi = fmax(hi, xd[i]);
    range = hi - lo;
    clcnn_tensor *tx = tu_tensor_from(ndim, shape, x);
    clcnn_tensor *ty = in_place ? tx : tu_tensor_new(CLCNN_F32, ndim, shape);
    if (!in_place) TU_OK(clcnn_tensor_fill(ty, NAN));
    TU_OK(clcnn_softmax_forward(dev, tx, ty, log_out));
    float *y = tu_download(ty);
    int ok = 1;
    for (size_t i = 0; i < total; i++)
        ok &= isfinite(y[i]);
    if (!ok) fprintf(stderr, "softmax produced inf/NaN\n");
    if (log_out)
        ok &= tu_close("log_softmax", y, ref, total, ((double)c + 8) * U, (range + 4) * U);
    else
        ok &= tu_close("softmax", y, ref, total, 1e-37, ((double)c + range + 8) * U);
    if (!ok)
        fprintf(stderr, "  case: %zux%zu inner %zu log %d in place %d range %g\n", n, c, inner,
                log_out, in_place, range);
    free(xd), free(ref), free(y);
    clcnn_tensor_free(tx);
    if (!in_place) clcnn_tensor_free(ty);
    return ok;
}

static void test_softmax_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(101);
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(240, 24); i++) {
        int ndim = tu_rng_int(&r, 2, 4);
        size_t shape[4] = {tu_rng_int(&r, 0, 3) == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 9),
                           (size_t)tu_rng_int(&r, 1, 40), (size_t)tu_rng_int(&r, 1, 6),
                           (size_t)tu_rng_int(&r, 1, 6)};
        if (i % 12 == 0) shape[1] = 1; /* one class: softmax 1, log-softmax 0 */
        size_t total = numel_of(ndim, shape);
        float *x = malloc(total * sizeof *x);
        /* one case in eight with huge logits: exp would overflow without the max */
        float span = i % 8 == 0 ? 1e4f : 5.0f;
        tu_fill_uniform(&r, x, total, -span, span);
        if (!check_softmax(x, ndim, shape, i % 2, i % 5 == 0)) failures++;
        free(x);
    }
    assert_int_equal(failures, 0);
}

static void test_softmax_extreme_and_hand(void **state) {
    (void)state;
    /* [1, 2, 3]: e^k / (e + e^2 + e^3) */
    float x[3] = {1, 2, 3};
    clcnn_tensor *t = tu_tensor_from(2, (size_t[]){1, 3}, x),
                 *ty = tu_tensor_from(2, (size_t[]){1, 3}, NULL);
    TU_OK(clcnn_softmax_forward(dev, t, ty, 0));
    float *y = tu_download(ty);
    assert_float_equal(y[0], 0.09003057f, 1e-7);
    assert_float_equal(y[1], 0.24472847f, 1e-7);
    assert_float_equal(y[2], 0.66524096f, 1e-7);
    free(y);
    TU_OK(clcnn_softmax_forward(dev, t, ty, 1));
    y = tu_download(ty);
    assert_float_equal(y[0], -2.40760596f, 1e-6);
    assert_float_equal(y[2], -0.40760596f, 1e-6);
    free(y);
    clcnn_tensor_free(t), clcnn_tensor_free(ty);

    /* Logits of +-1e4 and mixed scales: no inf, no NaN, exact where exact. */
    float e[12] = {1e4f,  -1e4f,  0, 1e4f, /* row 0 */ -1e4f, -1e4f, -1e4f, -1e4f, /* row 1 */
                   1e38f, -1e38f, 1, 0 /* row 2: x - max stays finite */};
    size_t s[2] = {3, 4};
    assert_true(check_softmax(e, 2, s, 0, 0));
    assert_true(check_softmax(e, 2, s, 1, 0));
    clcnn_tensor *te = tu_tensor_from(2, s, e), *tye = tu_tensor_from(2, s, NULL);
    TU_OK(clcnn_softmax_forward(dev, te, tye, 0));
    float *ye = tu_download(tye);
    assert_float_equal(ye[0], 0.5f, 0);
    assert_float_equal(ye[1], 0.0f, 0);
    assert_float_equal(ye[3], 0.5f, 0);
    for (int j = 4; j < 8; j++)
        assert_float_equal(ye[j], 0.25f, 0);
    assert_float_equal(ye[8], 1.0f, 0);
    free(ye);
    clcnn_tensor_free(te), clcnn_tensor_free(tye);

    /* 1000 classes (ImageNet head) in a (2, 1000, 1, 1) tensor */
    tu_rng r = tu_rng_seed(102);
    float *big = malloc(2000 * sizeof *big);
    tu_fill_uniform(&r, big, 2000, -20, 20);
    assert_true(check_softmax(big, 4, (size_t[]){2, 1000, 1, 1}, 0, 0));
    assert_true(check_softmax(big, 4, (size_t[]){2, 1000, 1, 1}, 1, 0));
    free(big);
}

/* ---- cross-entropy --------------------------------------------------------------------- */

/* Tolerances with k classes and logit spread R:
 *  row loss (max - x_label) + log(sum): R u + (k + 8) u absolute; the mean adds a
 *    compensated per-work-item sum and a tree of <= 8 levels: 16 U relative.
 *  dlogits (p - onehot) / n: p within (k + R + 8) U relative (as softmax), so an absolute
 *    (k + R + 8) U / n. */
static int check_xent(const float *x, const int *labels, size_t n, size_t k, int want_grad,
                      int logits_4d) {
    double *xd = ro_to_double(x, n * k), *dref = malloc(n * k * sizeof *dref);
    double loss_ref = ro_softmax_xent(xd, labels, n, k, dref);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n * k; i++)
        lo = fmin(lo, xd[i]), hi = fmax(hi, xd[i]);
    double range = hi - lo;
    size_t s4[4] = {n, k, 1, 1};
    int nd = logits_4d ? 4 : 2;
    clcnn_tensor *tx = tu_tensor_from(nd, s4, x);
    clcnn_tensor *tl = tu_tensor_new(CLCNN_I32, 1, &n),
                 *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    clcnn_tensor *td = tu_tensor_new(CLCNN_F32, nd, s4);
    TU_OK(clcnn_tensor_upload(tl, labels, n * sizeof *labels));
    TU_OK(clcnn_tensor_fill(td, NAN));
    TU_OK(clcnn_tensor_fill(loss, NAN));
    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, want_grad ? td : NULL));
    float l = download_scalar(loss);
    float *d = tu_download(td);
    int ok = tu_close("xent loss", &l, &loss_ref, 1, (range + (double)k + 8) * U, 16 * U);
    if (want_grad)
        ok &= tu_close("xent dlogits", d, dref, n * k, ((double)k + range + 8) * U / (double)n,
                       ((double)k + range + 8) * U);
    else
        for (size_t i = 0; i < n * k; i++)
            ok &= isnan(d[i]);
    if (!ok) fprintf(stderr, "  case: n %zu k %zu grad %d range %g\n", n, k, want_grad, range);
    free(xd), free(dref), free(d);
    clcnn_tensor_free(tx), clcnn_tensor_free(tl), clcnn_tensor_free(loss), clcnn_tensor_free(td);
    return ok;
}

static void test_xent_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(103);
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(220, 24); i++) {
        size_t n = tu_rng_int(&r, 0, 4) == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 70);
        size_t k = (size_t)tu_rng_int(&r, 1, 30);
        float *x = malloc(n * k * sizeof *x);
        int *lab = malloc(n * sizeof *lab);
        float span = i % 10 == 0 ? 1e4f : 6.0f;
        tu_fill_uniform(&r, x, n * k, -span, span);
        for (size_t j = 0; j < n; j++)
            lab[j] = tu_rng_int(&r, 0, (int)k - 1);
        if (!check_xent(x, lab, n, k, i % 4 != 0, i % 3 == 0)) failures++;
        free(x), free(lab);
    }
    assert_int_equal(failures, 0);
}

static void test_xent_hand_and_labels(void **state) {
    (void)state;
    /* uniform logits: loss = log k exactly; dlogits = (1/k - onehot) / n */
    float x[8] = {0, 0, 0, 0, 5, 5, 5, 5};
    int lab[2] = {1, 3};
    clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){2, 4}, x);
    clcnn_tensor *tl = tu_tensor_new(CLCNN_I32, 1, (size_t[]){2});
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    clcnn_tensor *td = tu_tensor_new(CLCNN_F32, 2, (size_t[]){2, 4});
    TU_OK(clcnn_tensor_upload(tl, lab, sizeof lab));
    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, td));
    assert_float_equal(download_scalar(loss), logf(4), 1e-6);
    float *d = tu_download(td);
    for (int i = 0; i < 8; i++)
        assert_float_equal(d[i], (0.25f - (i == 1 || i == 7 ? 1.0f : 0.0f)) / 2, 1e-7);
    free(d);

    /* huge margins: loss 0 for a confident right answer, 2e4 for a confident wrong one */
    float e[4] = {1e4f, -1e4f, -1e4f, 1e4f};
    int el[2] = {0, 0};
    TU_OK(clcnn_tensor_upload(tl, el, sizeof el));
    clcnn_tensor *te = tu_tensor_from(2, (size_t[]){2, 2}, e),
                 *tde = tu_tensor_from(2, (size_t[]){2, 2}, NULL);
    TU_OK(clcnn_softmax_cross_entropy(dev, te, tl, loss, tde));
    assert_float_equal(download_scalar(loss), 1e4f, 0); /* (0 + 2e4) / 2 */
    d = tu_download(tde);
    assert_float_equal(d[0], 0, 0);
    assert_float_equal(d[1], 0, 0);
    assert_float_equal(d[2], -0.5f, 0);
    assert_float_equal(d[3], 0.5f, 0);
    free(d);

    /* labels out of range: loss NaN (documented in ops.h), the bad row of dlogits NaN,
     * the good row still right */
    int bad[2] = {4, 2};
    TU_OK(clcnn_tensor_upload(tl, bad, sizeof bad));
    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, td));
    assert_true(isnan(download_scalar(loss)));
    d = tu_download(td);
    for (int i = 0; i < 4; i++)
        assert_true(isnan(d[i]));
    for (int i = 4; i < 8; i++)
        assert_float_equal(d[i], (0.25f - (i == 6 ? 1.0f : 0.0f)) / 2, 1e-7);
    free(d);
    int neg[2] = {0, -1};
    TU_OK(clcnn_tensor_upload(tl, neg, sizeof neg));
    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, NULL));
    assert_true(isnan(download_scalar(loss)));
    clcnn_tensor *ts[] = {tx, tl, loss, td, te, tde};
    for (int i = 0; i < 6; i++)
        clcnn_tensor_free(ts[i]);
}

/* ---- MSE -------------------------------------------------------------------------------- */

/* Tolerances: loss, squares rounded once (u), compensated per-work-item sums, two trees of
 * at most 8 levels each (16 u), the division: 32 U relative in all. dpred: pred - target,
 * times a rounded 2/numel: 3 roundings, 4 U relative. */
static int check_mse(const float *p, const float *t, int ndim, const size_t *shape, int want_grad) {
    size_t total = numel_of(ndim, shape);
    double *pd = ro_to_double(p, total), *td = ro_to_double(t, total);
    double *gref = malloc(total * sizeof *gref);
    double ref = ro_mse(pd, td, total, gref);
    clcnn_tensor *tp = tu_tensor_from(ndim, shape, p), *tt = tu_tensor_from(ndim, shape, t);
    clcnn_tensor *tg = tu_tensor_new(CLCNN_F32, ndim, shape),
                 *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    TU_OK(clcnn_tensor_fill(tg, NAN));
    TU_OK(clcnn_mse_loss(dev, tp, tt, loss, want_grad ? tg : NULL));
    float l = download_scalar(loss);
    float *g = tu_download(tg);
    int ok = tu_close("mse loss", &l, &ref, 1, 0, 32 * U);
    if (want_grad)
        ok &= tu_close("mse dpred", g, gref, total, 1e-37, 4 * U);
    else
        for (size_t i = 0; i < total; i++)
            ok &= isnan(g[i]);
    if (!ok) fprintf(stderr, "  case: numel %zu grad %d\n", total, want_grad);
    free(pd), free(td), free(gref), free(g);
    clcnn_tensor_free(tp), clcnn_tensor_free(tt), clcnn_tensor_free(tg), clcnn_tensor_free(loss);
    return ok;
}

static void test_mse_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(104);
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(220, 24); i++) {
        int ndim = tu_rng_int(&r, 1, 4);
        size_t shape[4] = {(size_t)tu_rng_int(&r, 1, 9), (size_t)tu_rng_int(&r, 1, 13),
                           (size_t)tu_rng_int(&r, 1, 7), (size_t)tu_rng_int(&r, 1, 7)};
        size_t total = numel_of(ndim, shape);
        float *p = malloc(total * sizeof *p), *t = malloc(total * sizeof *t);
        tu_fill_uniform(&r, p, total, -3, 3);
        tu_fill_uniform(&r, t, total, -3, 3);
        if (!check_mse(p, t, ndim, shape, i % 3 != 0)) failures++;
        free(p), free(t);
    }
    assert_int_equal(failures, 0);
}

/* A million elements (odd count): 256 partial sums of many values each. */
static void test_mse_large(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(105);
    size_t total = tu_small() ? 4099 : 1000003; /* small: several work-groups plus a tail */
    float *p = malloc(total * sizeof *p), *t = malloc(total * sizeof *t);
    tu_fill_uniform(&r, p, total, 0, 2);
    tu_fill_uniform(&r, t, total, -1, 0);
    assert_true(check_mse(p, t, 1, &total, 1));
    free(p), free(t);
    /* hand: pred 1..4, target 0: (1 + 4 + 9 + 16) / 4 = 7.5, dpred = 2 p / 4 */
    float hp[4] = {1, 2, 3, 4}, ht[4] = {0, 0, 0, 0};
    clcnn_tensor *tp = tu_tensor_from(2, (size_t[]){2, 2}, hp),
                 *tt = tu_tensor_from(2, (size_t[]){2, 2}, ht);
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    TU_OK(clcnn_mse_loss(dev, tp, tt, loss, tp)); /* dpred may be pred itself */
    assert_float_equal(download_scalar(loss), 7.5f, 0);
    float *g = tu_download(tp);
    for (int i = 0; i < 4; i++)
        assert_float_equal(g[i], 0.5f * hp[i], 0);
    free(g);
    clcnn_tensor_free(tp), clcnn_tensor_free(tt), clcnn_tensor_free(loss);
}

/* ---- offsets, determinism ------------------------------------------------------------------ */

static void test_offsets(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(106);
    size_t n = 5, k = 7, s2[2] = {n, k};
    clcnn_tensor *b[6];
    clcnn_tensor *tx = ro_tensor_at_offset(dev, CLCNN_F32, 2, s2, 3, &b[0]);
    clcnn_tensor *ty = ro_tensor_at_offset(dev, CLCNN_F32, 2, s2, 6, &b[1]);
    clcnn_tensor *tl = ro_tensor_at_offset(dev, CLCNN_I32, 1, &n, 2, &b[2]);
    clcnn_tensor *loss = ro_tensor_at_offset(dev, CLCNN_F32, 1, (size_t[]){1}, 5, &b[3]);
    clcnn_tensor *td = ro_tensor_at_offset(dev, CLCNN_F32, 2, s2, 1, &b[4]);
    clcnn_tensor *tt = ro_tensor_at_offset(dev, CLCNN_F32, 2, s2, 4, &b[5]);
    float x[35], t[35];
    int lab[5];
    tu_fill_uniform(&r, x, 35, -3, 3);
    tu_fill_uniform(&r, t, 35, -3, 3);
    for (int i = 0; i < 5; i++)
        lab[i] = tu_rng_int(&r, 0, 6);
    TU_OK(clcnn_tensor_upload(tx, x, sizeof x));
    TU_OK(clcnn_tensor_upload(tt, t, sizeof t));
    TU_OK(clcnn_tensor_upload(tl, lab, sizeof lab));
    double *xd = ro_to_double(x, 35), *tdd = ro_to_double(t, 35), ref[35], dref[35];

    TU_OK(clcnn_softmax_forward(dev, tx, ty, 1));
    ro_softmax(xd, n, k, 1, 1, ref);
    float *y = tu_download(ty);
    assert_true(tu_close("offset log_softmax", y, ref, 35, 1e-5, 1e-5));
    free(y);

    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, td));
    double lref = ro_softmax_xent(xd, lab, n, k, dref);
    float l = download_scalar(loss), *d = tu_download(td);
    assert_true(tu_close("offset xent", &l, &lref, 1, 1e-5, 1e-5));
    assert_true(tu_close("offset dlogits", d, dref, 35, 1e-6, 1e-5));
    free(d);

    TU_OK(clcnn_mse_loss(dev, tx, tt, loss, td));
    lref = ro_mse(xd, tdd, 35, dref);
    l = download_scalar(loss);
    d = tu_download(td);
    assert_true(tu_close("offset mse", &l, &lref, 1, 0, 1e-5));
    assert_true(tu_close("offset dpred", d, dref, 35, 0, 1e-6));
    free(d);
    float *all = tu_download(b[3]); /* loss base: only element 5 written */
    for (size_t i = 0; i < clcnn_tensor_numel(b[3]); i++)
        if (i != 5) assert_true(isnan(all[i]));
    free(all), free(xd), free(tdd);
    clcnn_tensor *ts[] = {tx, ty, tl, loss, td, tt};
    for (int i = 0; i < 6; i++)
        clcnn_tensor_free(ts[i]), clcnn_tensor_free(b[i]);
}

/* The means are reduced in a fixed order: the same inputs give the same bits. */
static void test_losses_deterministic(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(107);
    size_t n = 4099, k = 10, total = n * k;
    float *x = malloc(total * sizeof *x), *t = malloc(total * sizeof *t);
    int *lab = malloc(n * sizeof *lab);
    tu_fill_uniform(&r, x, total, -4, 4);
    tu_fill_uniform(&r, t, total, -4, 4);
    for (size_t i = 0; i < n; i++)
        lab[i] = tu_rng_int(&r, 0, (int)k - 1);
    clcnn_tensor *tx = tu_tensor_from(2, (size_t[]){n, k}, x),
                 *tt = tu_tensor_from(2, (size_t[]){n, k}, t);
    clcnn_tensor *tl = tu_tensor_new(CLCNN_I32, 1, &n),
                 *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    TU_OK(clcnn_tensor_upload(tl, lab, n * sizeof *lab));
    float a[2], b[2];
    TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, NULL));
    a[0] = download_scalar(loss);
    TU_OK(clcnn_mse_loss(dev, tx, tt, loss, NULL));
    a[1] = download_scalar(loss);
    for (int rep = 0; rep < 3; rep++) {
        TU_OK(clcnn_softmax_cross_entropy(dev, tx, tl, loss, NULL));
        b[0] = download_scalar(loss);
        TU_OK(clcnn_mse_loss(dev, tx, tt, loss, NULL));
        b[1] = download_scalar(loss);
        assert_memory_equal(a, b, sizeof a);
    }
    /* and they are right */
    double *xd = ro_to_double(x, total), *tdd = ro_to_double(t, total);
    double want[2] = {ro_softmax_xent(xd, lab, n, k, NULL), ro_mse(xd, tdd, total, NULL)};
    assert_true(tu_close("xent 4099x10", &a[0], &want[0], 1, 0, 32 * U));
    assert_true(tu_close("mse 4099x10", &a[1], &want[1], 1, 0, 32 * U));
    free(x), free(t), free(lab), free(xd), free(tdd);
    clcnn_tensor_free(tx), clcnn_tensor_free(tt), clcnn_tensor_free(tl), clcnn_tensor_free(loss);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void expect_untouched(clcnn_tensor *t, float v) {
    float *h = tu_download(t);
    for (size_t i = 0; i < clcnn_tensor_numel(t); i++)
        assert_float_equal(h[i], v, 0);
    free(h);
}

static void test_errors_write_nothing(void **state) {
    (void)state;
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 5});
    clcnn_tensor *x1 = tu_tensor_new(CLCNN_F32, 1, (size_t[]){20});
    clcnn_tensor *x4 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 5, 2, 1});
    clcnn_tensor *y = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 5});
    clcnn_tensor *y_bad = tu_tensor_new(CLCNN_F32, 2, (size_t[]){5, 4});
    clcnn_tensor *lab = tu_tensor_new(CLCNN_I32, 1, (size_t[]){4});
    clcnn_tensor *lab_f = tu_tensor_new(CLCNN_F32, 1, (size_t[]){4});
    clcnn_tensor *lab_bad = tu_tensor_new(CLCNN_I32, 1, (size_t[]){3});
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    clcnn_tensor *loss2 = tu_tensor_new(CLCNN_F32, 1, (size_t[]){2});
    clcnn_tensor *loss_i = tu_tensor_new(CLCNN_I32, 1, (size_t[]){1});
    TU_OK(clcnn_tensor_fill(x, 1));
    TU_OK(clcnn_tensor_fill(x1, 1));
    TU_OK(clcnn_tensor_fill(x4, 1));
    TU_OK(clcnn_tensor_fill(lab, 0));
    clcnn_tensor *outs[] = {y, y_bad, loss, loss2};
    for (int i = 0; i < 4; i++)
        TU_OK(clcnn_tensor_fill(outs[i], 42));

    assert_int_equal(clcnn_softmax_forward(dev, x, y_bad, 0), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "5x4"));
    assert_non_null(strstr(clcnn_last_error(), "4x5"));
    assert_int_equal(clcnn_softmax_forward(dev, x1, x1, 0), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_softmax_forward(dev, lab, lab, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_softmax_forward(dev, NULL, y, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_softmax_forward(NULL, x, y, 0), CLCNN_ERR_INVALID_ARG);

    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab_f, loss, y), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "labels"));
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab_bad, loss, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "3"));
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, loss2, y), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, loss_i, y), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, loss, y_bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x4, lab, loss, NULL), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "4x5x2x1"));
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x1, lab, loss, NULL), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, NULL, NULL), CLCNN_ERR_INVALID_ARG);

    assert_int_equal(clcnn_mse_loss(dev, x, y_bad, loss, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "5x4"));
    assert_int_equal(clcnn_mse_loss(dev, x, x1, loss, NULL), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_mse_loss(dev, x, x, loss, y_bad), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_mse_loss(dev, x, x, loss2, y), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_mse_loss(dev, x, lab, loss, y), CLCNN_ERR_INVALID_ARG);

    for (int i = 0; i < 4; i++)
        expect_untouched(outs[i], 42);
    clcnn_tensor *ts[] = {x, x1, x4, y, y_bad, lab, lab_f, lab_bad, loss, loss2, loss_i};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        clcnn_tensor_free(ts[i]);
}

/* Overlapping outputs are refused; identical views (in place) are allowed. */
static void test_aliasing(void **state) {
    (void)state;
    clcnn_tensor *base = tu_tensor_new(CLCNN_F32, 1, (size_t[]){24});
    clcnn_tensor *lab = tu_tensor_new(CLCNN_I32, 1, (size_t[]){4});
    TU_OK(clcnn_tensor_fill(base, 0));
    TU_OK(clcnn_tensor_fill(lab, 1));
    clcnn_tensor *x = ro_view_at(base, 2, (size_t[]){4, 5}, 0);
    clcnn_tensor *x_shift = ro_view_at(base, 2, (size_t[]){4, 5}, 1);
    clcnn_tensor *loss_in = ro_view_at(base, 1, (size_t[]){1}, 19);
    clcnn_tensor *loss = ro_view_at(base, 1, (size_t[]){1}, 23);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, loss_in, NULL),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_softmax_cross_entropy(dev, x, lab, loss, x_shift),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_softmax_forward(dev, x, x_shift, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_mse_loss(dev, x, x, loss_in, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_mse_loss(dev, x, x, loss, x_shift), CLCNN_ERR_INVALID_ARG);
    float *d = tu_download(base);
    for (int i = 0; i < 24; i++)
        assert_float_equal(d[i], 0, 0);
    free(d);
    /* dlogits = logits itself: allowed, and right (uniform logits, label 1) */
    TU_OK(clcnn_softmax_cross_entropy(dev, x, lab, loss, x));
    d = tu_download(x);
    for (int i = 0; i < 20; i++)
        assert_float_equal(d[i], (0.2f - (i % 5 == 1 ? 1.0f : 0.0f)) / 4, 1e-7);
    free(d);
    assert_float_equal(download_scalar(loss), logf(5), 1e-6);
    clcnn_tensor *ts[] = {x, x_shift, loss_in, loss, base, lab};
    for (int i = 0; i < 6; i++)
        clcnn_tensor_free(ts[i]);
}

/* ---- finite differences of the reference gradients ---------------------------------------- */

typedef struct xent_ctx {
    double *x;
    const int *lab;
    size_t n, k;
} xent_ctx;
static double xent_fn(void *p) {
    xent_ctx *c = p;
    return ro_softmax_xent(c->x, c->lab, c->n, c->k, NULL);
}

typedef struct mse_ctx {
    double *p, *t;
    size_t n;
} mse_ctx;
static double mse_fn(void *p) {
    mse_ctx *c = p;
    return ro_mse(c->p, c->t, c->n, NULL);
}

static void test_reference_finite_differences(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(108);
    for (int it = 0; it < 20; it++) {
        size_t n = (size_t)tu_rng_int(&r, 1, 6), k = (size_t)tu_rng_int(&r, 1, 9);
        double *x = malloc(n * k * sizeof *x), *g = malloc(n * k * sizeof *g);
        double *t = malloc(n * k * sizeof *t);
        int *lab = malloc(n * sizeof *lab);
        for (size_t i = 0; i < n * k; i++)
            x[i] = tu_rng_uniform(&r, -4, 4);
        for (size_t i = 0; i < n * k; i++)
            t[i] = tu_rng_uniform(&r, -4, 4);
        for (size_t i = 0; i < n; i++)
            lab[i] = tu_rng_int(&r, 0, (int)k - 1);
        /* cross-entropy is smooth with third derivatives below 1: central differences with
         * h = 1e-5 are off by ~h^2 = 1e-10 (+ 1e-16/h rounding). */
        ro_softmax_xent(x, lab, n, k, g);
        xent_ctx xc = {x, lab, n, k};
        for (size_t i = 0; i < n * k; i++) {
            double num = ro_central_diff(xent_fn, &xc, &x[i], 1e-5);
            if (fabs(num - g[i]) > 1e-8)
                fail_msg("xent FD mismatch at %zu: analytic %.12g numeric %.12g", i, g[i], num);
        }
        /* MSE is quadratic: central differences are exact but for rounding. */
        ro_mse(x, t, n * k, g);
        mse_ctx mc = {x, t, n * k};
        for (size_t i = 0; i < n * k; i++) {
            double num = ro_central_diff(mse_fn, &mc, &x[i], 1e-4);
            if (fabs(num - g[i]) > 1e-9)
                fail_msg("mse FD mismatch at %zu: analytic %.12g numeric %.12g", i, g[i], num);
        }
        free(x), free(g), free(t), free(lab);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_extreme_and_hand),
        cmocka_unit_test(test_softmax_sweep),
        cmocka_unit_test(test_xent_hand_and_labels),
        cmocka_unit_test(test_xent_sweep),
        cmocka_unit_test(test_mse_sweep),
        cmocka_unit_test(test_mse_large),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_losses_deterministic),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_aliasing),
        cmocka_unit_test(test_reference_finite_differences),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_device);
}
