/* pool2d: forward (max with arg-max, average with and without padding in the divisor,
 * global) and backward against the double reference in reference_ops.c, over a seeded
 * sweep of random shapes; hand-picked cases; central finite differences of the reference
 * backward; error paths (nothing written). */
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference_ops.h"

#define U FLT_EPSILON /* 2^-23: one float ulp at 1 (twice the unit roundoff) */

static clcnn_device *dev;

static int setup(void **state) {
    (void)state;
    dev = tu_device();
    return dev ? 0 : -1;
}
static clcnn_tensor *new_tensor(clcnn_dtype dt, size_t n, size_t c, size_t h, size_t w) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(dev, dt, 4, (size_t[]){n, c, h, w}, &t));
    return t;
}

static ro_pool geom_of(const clcnn_pool2d_desc *d, size_t h, size_t w) {
    if (d->global) return (ro_pool){d->mode, (int)h, (int)w, 1, 1, 0, 0};
    return (ro_pool){d->mode,     d->kernel_h, d->kernel_w, d->stride_h,
                     d->stride_w, d->pad_h,    d->pad_w};
}

/* Number of outputs whose windows can cover one input element: the length of the gather
 * (max backward) per axis is ceil(k / s). */
static double overlap_count(const ro_pool *g) {
    return (double)((g->kh + g->sh - 1) / g->sh) * (double)((g->kw + g->sw - 1) / g->sw);
}

/* One forward + backward case on the device vs the reference. quantised 1: inputs from
 * {-1, -0.5, 0, 0.5, 1}, so windows hold ties and the first-maximum rule is exercised;
 * quantised 2: like 1 with about one value in eight NaN, -inf or +inf (the NaN rule).
 * Returns 1 when everything matched. */
static int run_case(const clcnn_pool2d_desc *d, size_t n, size_t c, size_t h, size_t w, tu_rng *r,
                    int quantised) {
    ro_pool g = geom_of(d, h, w);
    size_t p, q;
    assert_true(ro_pool_out(&g, h, w, &p, &q));
    size_t ys[4], xs[4] = {n, c, h, w};
    TU_OK(clcnn_pool2d_output_shape(d, xs, ys));
    assert_int_equal(ys[2], p);
    assert_int_equal(ys[3], q);

    size_t nx = n * c * h * w, ny = n * c * p * q;
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
    static const float special[3] = {NAN, -INFINITY, INFINITY};
    for (size_t i = 0; i < nx; i++) {
        x[i] = quantised ? 0.5f * (float)tu_rng_int(r, -2, 2) : tu_rng_uniform(r, -1, 1);
        if (quantised == 2 && tu_rng_int(r, 0, 7) == 0) x[i] = special[tu_rng_int(r, 0, 2)];
    }
    tu_fill_uniform(r, dy, ny, -1, 1);
    double *xd = ro_to_double(x, nx), *dyd = ro_to_double(dy, ny);
    double *yref = malloc(ny * sizeof *yref), *dxref = malloc(nx * sizeof *dxref);
    int *amref = malloc(ny * sizeof *amref);
    ro_pool_forward(&g, xd, n, c, h, w, yref, amref);
    ro_pool_backward(&g, xd, dyd, n, c, h, w, dxref);

    clcnn_tensor *tx = new_tensor(CLCNN_F32, n, c, h, w), *ty = new_tensor(CLCNN_F32, n, c, p, q);
    clcnn_tensor *tam = new_tensor(CLCNN_I32, n, c, p, q), *tdy = new_tensor(CLCNN_F32, n, c, p, q);
    clcnn_tensor *tdx = new_tensor(CLCNN_F32, n, c, h, w);
    TU_OK(clcnn_tensor_upload(tx, x, nx * sizeof *x));
    TU_OK(clcnn_tensor_upload(tdy, dy, ny * sizeof *dy));
    TU_OK(clcnn_tensor_fill(tdx, NAN)); /* every element must be written */
    int is_max = d->mode == CLCNN_POOL_MAX;
    TU_OK(clcnn_pool2d_forward(dev, d, tx, ty, is_max ? tam : NULL));
    TU_OK(clcnn_pool2d_backward(dev, d, tdy, is_max ? tam : NULL, tdx));
    float *y = tu_download(ty), *dx = tu_download(tdx);
    int *am = malloc(ny * sizeof *am);
    TU_OK(clcnn_tensor_download(tam, am, ny * sizeof *am));

    int ok = 1;
    size_t win = (size_t)g.kh * (size_t)g.kw;
    if (is_max) {
        /* max: a selection, exact. */
        ok &= tu_close("pool max y", y, yref, ny, 0, 0);
        for (size_t i = 0; i < ny && ok; i++)
            if (am[i] != amref[i]) {
                fprintf(stderr, "argmax[%zu] = %d, reference %d\n", i, am[i], amref[i]);
                ok = 0;
            }
        /* max backward: each dx sums at most m = overlap_count dy values, |dy| <= 1, in
         * float; such a sum is off by at most (m-1) u sum|terms| <= m^2 U / 2 (Higham,
         * u = U/2). */
        double m = overlap_count(&g);
        ok &= tu_close("pool max dx", dx, dxref, nx, m * m * U + 1e-12, 0);
    } else {
        /* average: a float sum of the r <= win real terms, |x| <= 1, is off by at most
         * (r-1) u r; the divisor is >= r, so the mean is off by (r-1) u < win U, plus one
         * rounding of the division (relative). */
        ok &= tu_close("pool avg y", y, yref, ny, (double)win * U, 2 * U);
        /* average backward: at most m = overlap_count terms dy/div, |dy/div| <= 1, each
         * rounded once (m u) and then summed ((m-1) u m): below m^2 U. */
        double m = overlap_count(&g);
        ok &= tu_close("pool avg dx", dx, dxref, nx, m * m * U + 1e-12, 2 * U);
    }
    if (!ok)
        fprintf(stderr,
                "  case: mode %d x %zux%zux%zux%zu kernel %dx%d stride %dx%d pad %dx%d global %d "
                "quantised %d\n",
                d->mode, n, c, h, w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, d->global, quantised);

    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
    clcnn_tensor_free(tam);
    clcnn_tensor_free(tdy);
    clcnn_tensor_free(tdx);
    free(x), free(dy), free(xd), free(dyd), free(yref), free(dxref), free(amref), free(y), free(dx),
        free(am);
    return ok;
}

/* A random valid descriptor for an h x w plane: kernel 1..5 (not above the padded plane),
 * padding below the kernel, stride 1..4 (so stride > kernel happens), 15% global. */
static clcnn_pool2d_desc random_desc(tu_rng *r, size_t h, size_t w) {
    clcnn_pool2d_desc d = {0};
    d.mode = (clcnn_pool_mode)tu_rng_int(r, 0, 2);
    if (tu_rng_int(r, 0, 99) < 15) {
        d.global = 1;
        return d;
    }
    for (;;) {
        d.kernel_h = tu_rng_int(r, 1, 5);
        d.kernel_w = tu_rng_int(r, 1, 5);
        d.pad_h = tu_rng_int(r, 0, d.kernel_h - 1);
        d.pad_w = tu_rng_int(r, 0, d.kernel_w - 1);
        if (h + 2 * (size_t)d.pad_h >= (size_t)d.kernel_h &&
            w + 2 * (size_t)d.pad_w >= (size_t)d.kernel_w)
            break;
    }
    d.stride_h = tu_rng_int(r, 1, 4);
    d.stride_w = tu_rng_int(r, 1, 4);
    return d;
}

static void test_random_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(2024);
    int failures = 0, cases = (int)tu_small_count(300, 30);
    for (int i = 0; i < cases; i++) {
        size_t n = tu_rng_int(&r, 0, 3) == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 3);
        size_t c = (size_t)tu_rng_int(&r, 1, 7);
        size_t h = (size_t)tu_rng_int(&r, 1, 13), w = (size_t)tu_rng_int(&r, 1, 13);
        if (i % 10 == 0) h = w = 1; /* 1x1 planes */
        clcnn_pool2d_desc d = random_desc(&r, h, w);
        if (!run_case(&d, n, c, h, w, &r, i % 2)) failures++;
    }
    assert_int_equal(failures, 0);
}

static void test_common_layers(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(7);
    /* LeNet/VGG-style 2x2 stride 2, AlexNet-style 3x3 stride 2 (overlapping), ResNet's stem
     * 3x3 stride 2 pad 1, global average over 7x7, a larger global max. */
    clcnn_pool2d_desc d1 = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    clcnn_pool2d_desc d2 = {CLCNN_POOL_MAX, 3, 3, 2, 2, 0, 0, 0};
    clcnn_pool2d_desc d3 = {CLCNN_POOL_MAX, 3, 3, 2, 2, 1, 1, 0};
    clcnn_pool2d_desc d4 = {CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    clcnn_pool2d_desc d5 = {CLCNN_POOL_MAX, 0, 0, 0, 0, 0, 0, 1};
    clcnn_pool2d_desc d6 = {CLCNN_POOL_AVG_EXCLUDE, 3, 3, 1, 1, 1, 1, 0};
    assert_true(run_case(&d1, 4, 6, 28, 28, &r, 0));
    assert_true(run_case(&d2, 2, 5, 27, 27, &r, 0));
    assert_true(run_case(&d3, 2, 3, 32, 31, &r, 1));
    assert_true(run_case(&d4, 3, 64, 7, 7, &r, 0));
    assert_true(run_case(&d5, 2, 3, 40, 33, &r, 0));
    assert_true(run_case(&d6, 2, 3, 9, 10, &r, 0));
}

/* Non-overlapping windows (stride == kernel, no padding) take the tiled kernels: 2x2
 * (vectorised 8 windows at a time, so output widths around 8 and 16 matter) and other
 * sizes; odd planes whose last rows/columns no window reaches (their dx must be 0);
 * batch 1; ties, NaN and infinities. */
static void test_tiled_windows(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(77);
    static const int kern[][2] = {{2, 2}, {2, 2}, {2, 2}, {3, 3}, {1, 1}, {2, 3}, {3, 2}, {4, 4}};
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(120, 16); i++) {
        const int *k = kern[i % 8];
        clcnn_pool2d_desc d = {CLCNN_POOL_MAX, k[0], k[1], k[0], k[1], 0, 0, 0};
        size_t n = i % 4 == 0 ? 1 : (size_t)tu_rng_int(&r, 1, 3);
        size_t c = (size_t)tu_rng_int(&r, 1, 4);
        size_t h = (size_t)tu_rng_int(&r, k[0], 21), w = (size_t)tu_rng_int(&r, k[1], 37);
        if (!run_case(&d, n, c, h, w, &r, i % 3)) failures++;
    }
    /* the default model's layers, and planes one short of / one past a vector of windows */
    clcnn_pool2d_desc d2 = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    static const size_t hw[][2] = {{28, 28}, {14, 14}, {15, 15}, {16, 17}, {33, 32}, {2, 35}};
    for (int i = 0; i < 6; i++)
        if (!run_case(&d2, 3, 5, hw[i][0], hw[i][1], &r, i % 3)) failures++;
    assert_int_equal(failures, 0);
}

/* The tiled kernels with tensors at element offsets; dx written exactly in its view. */
static void test_tiled_offsets(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(98);
    clcnn_pool2d_desc d = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    size_t n = 2, c = 3, h = 9, w = 19, p = 4, q = 9, nx = n * c * h * w, ny = n * c * p * q;
    clcnn_tensor *bx, *by, *bam, *bdy, *bdx;
    clcnn_tensor *x = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, h, w}, 5, &bx);
    clcnn_tensor *y = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, p, q}, 3, &by);
    clcnn_tensor *am = ro_tensor_at_offset(dev, CLCNN_I32, 4, (size_t[]){n, c, p, q}, 11, &bam);
    clcnn_tensor *dy = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, p, q}, 1, &bdy);
    clcnn_tensor *dx = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, h, w}, 9, &bdx);
    float hx[2 * 3 * 9 * 19], hdy[2 * 3 * 4 * 9];
    tu_fill_uniform(&r, hx, nx, -1, 1);
    tu_fill_uniform(&r, hdy, ny, -1, 1);
    TU_OK(clcnn_tensor_upload(x, hx, nx * sizeof(float)));
    TU_OK(clcnn_tensor_upload(dy, hdy, ny * sizeof(float)));
    TU_OK(clcnn_pool2d_forward(dev, &d, x, y, am));
    TU_OK(clcnn_pool2d_backward(dev, &d, dy, am, dx));
    ro_pool g = geom_of(&d, h, w);
    double *xd = ro_to_double(hx, nx), *dyd = ro_to_double(hdy, ny);
    double yref[2 * 3 * 4 * 9], dxref[2 * 3 * 9 * 19];
    ro_pool_forward(&g, xd, n, c, h, w, yref, NULL);
    ro_pool_backward(&g, xd, dyd, n, c, h, w, dxref);
    float *hy = tu_download(y), *hdx = tu_download(dx);
    assert_true(tu_close("tiled offset y", hy, yref, ny, 0, 0));
    assert_true(tu_close("tiled offset dx", hdx, dxref, nx, 0, 0));
    float *all = tu_download(bdx), *ally = tu_download(by);
    for (size_t i = 0; i < clcnn_tensor_numel(bdx); i++)
        if (i < 9 || i >= 9 + nx) assert_true(isnan(all[i]));
    for (size_t i = 0; i < clcnn_tensor_numel(by); i++)
        if (i < 3 || i >= 3 + ny) assert_true(isnan(ally[i]));
    free(all), free(ally), free(hy), free(hdx), free(xd), free(dyd);
    clcnn_tensor *ts[] = {x, y, am, dy, dx, bx, by, bam, bdy, bdx};
    for (int i = 0; i < 10; i++)
        clcnn_tensor_free(ts[i]);
}

/* Values worked out by hand, independent of both implementations. */
static void test_hand_computed(void **state) {
    (void)state;
    /* 1x1x3x3 input 1..9, kernel 2, stride 1, pad 1: output 4x4 (floor((3+2-2)/1)+1). */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    clcnn_tensor *tx = tu_tensor_from(4, (size_t[]){1, 1, 3, 3}, x);
    clcnn_tensor *ty = new_tensor(CLCNN_F32, 1, 1, 4, 4), *tam = new_tensor(CLCNN_I32, 1, 1, 4, 4);
    clcnn_pool2d_desc d = {CLCNN_POOL_AVG, 2, 2, 1, 1, 1, 1, 0};
    TU_OK(clcnn_pool2d_forward(dev, &d, tx, ty, NULL));
    float *y = tu_download(ty);
    /* corner windows hold 1 real value of 4: 1/4; edge windows 2 of 4: (1+2)/4 ... */
    const float want_avg[16] = {0.25f, 0.75f, 1.25f, 0.75f, 1.25f, 3.0f,  4.0f,  2.25f,
                                2.75f, 6.0f,  7.0f,  3.75f, 1.75f, 3.75f, 4.25f, 2.25f};
    for (int i = 0; i < 16; i++)
        assert_float_equal(y[i], want_avg[i], 1e-6);
    free(y);
    d.mode = CLCNN_POOL_AVG_EXCLUDE;
    TU_OK(clcnn_pool2d_forward(dev, &d, tx, ty, NULL));
    y = tu_download(ty);
    const float want_ex[16] = {1,    1.5f, 2.5f, 3,    2.5f, 3,    4,    4.5f,
                               5.5f, 6,    7,    7.5f, 7,    7.5f, 8.5f, 9};
    for (int i = 0; i < 16; i++)
        assert_float_equal(y[i], want_ex[i], 1e-6);
    free(y);
    d.mode = CLCNN_POOL_MAX;
    TU_OK(clcnn_pool2d_forward(dev, &d, tx, ty, tam));
    y = tu_download(ty);
    int am[16];
    TU_OK(clcnn_tensor_download(tam, am, sizeof am));
    const float want_max[16] = {1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 7, 8, 9, 9};
    for (int i = 0; i < 16; i++) {
        assert_float_equal(y[i], want_max[i], 0);
        assert_int_equal(am[i], (int)want_max[i] - 1); /* value v sits at index v-1 */
    }
    free(y);
    /* backward of max with dy = 1: each input gets the number of windows it wins. */
    clcnn_tensor *tdy = new_tensor(CLCNN_F32, 1, 1, 4, 4);
    TU_OK(clcnn_tensor_fill(tdy, 1.0f));
    TU_OK(clcnn_pool2d_backward(dev, &d, tdy, tam, tx));
    float *dx = tu_download(tx);
    const float want_dx[9] = {1, 1, 2, 1, 1, 2, 2, 2, 4};
    for (int i = 0; i < 9; i++)
        assert_float_equal(dx[i], want_dx[i], 0);
    free(dx);

    /* Ties go to the first element, NaN wins over numbers (the first NaN). */
    float t[8] = {3, 3, 3, 3, 1, NAN, 2, NAN};
    clcnn_tensor *tt = tu_tensor_from(4, (size_t[]){1, 2, 2, 2}, t);
    clcnn_tensor *tty = new_tensor(CLCNN_F32, 1, 2, 1, 1),
                 *ttam = new_tensor(CLCNN_I32, 1, 2, 1, 1);
    clcnn_pool2d_desc gm = {CLCNN_POOL_MAX, 0, 0, 0, 0, 0, 0, 1};
    TU_OK(clcnn_pool2d_forward(dev, &gm, tt, tty, ttam));
    float *ty2 = tu_download(tty);
    int am2[2];
    TU_OK(clcnn_tensor_download(ttam, am2, sizeof am2));
    assert_float_equal(ty2[0], 3, 0);
    assert_int_equal(am2[0], 0);
    assert_true(isnan(ty2[1]));
    assert_int_equal(am2[1], 1);
    free(ty2);
    clcnn_tensor_free(tt), clcnn_tensor_free(tty), clcnn_tensor_free(ttam);
    clcnn_tensor_free(tx), clcnn_tensor_free(ty), clcnn_tensor_free(tam), clcnn_tensor_free(tdy);
}

static void test_output_shape(void **state) {
    (void)state;
    size_t y[4];
    clcnn_pool2d_desc d = {CLCNN_POOL_MAX, 3, 3, 2, 2, 1, 1, 0};
    TU_OK(clcnn_pool2d_output_shape(&d, (size_t[]){8, 64, 112, 112}, y));
    assert_true(y[0] == 8 && y[1] == 64 && y[2] == 56 && y[3] == 56); /* ResNet stem */
    d = (clcnn_pool2d_desc){CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    TU_OK(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 7, 5}, y));
    assert_true(y[2] == 3 && y[3] == 2); /* floor mode drops the last row/column */
    d = (clcnn_pool2d_desc){CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    TU_OK(clcnn_pool2d_output_shape(&d, (size_t[]){2, 3, 9, 4}, y));
    assert_true(y[0] == 2 && y[1] == 3 && y[2] == 1 && y[3] == 1);
    /* descriptor and shape errors */
    d = (clcnn_pool2d_desc){CLCNN_POOL_MAX, 2, 2, 2, 2, 2, 0, 0}; /* pad == kernel */
    assert_int_equal(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 8, 8}, y),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "padding"));
    d = (clcnn_pool2d_desc){CLCNN_POOL_MAX, 0, 2, 1, 1, 0, 0, 0};
    assert_int_equal(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 8, 8}, y),
                     CLCNN_ERR_INVALID_ARG);
    d = (clcnn_pool2d_desc){CLCNN_POOL_MAX, 2, 2, 0, 1, 0, 0, 0};
    assert_int_equal(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 8, 8}, y),
                     CLCNN_ERR_INVALID_ARG);
    d = (clcnn_pool2d_desc){(clcnn_pool_mode)7, 2, 2, 1, 1, 0, 0, 0};
    assert_int_equal(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 8, 8}, y),
                     CLCNN_ERR_INVALID_ARG);
    d = (clcnn_pool2d_desc){CLCNN_POOL_MAX, 5, 2, 1, 1, 1, 0, 0}; /* 2 + 2 < 5 */
    assert_int_equal(clcnn_pool2d_output_shape(&d, (size_t[]){1, 1, 2, 8}, y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "1x1x2x8"));
    assert_int_equal(clcnn_pool2d_output_shape(NULL, (size_t[]){1, 1, 2, 8}, y),
                     CLCNN_ERR_INVALID_ARG);
}

/* Every failure leaves the outputs as they were. */
static void test_errors_write_nothing(void **state) {
    (void)state;
    clcnn_pool2d_desc d = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    clcnn_tensor *x = new_tensor(CLCNN_F32, 2, 3, 8, 8);
    clcnn_tensor *y_bad = new_tensor(CLCNN_F32, 2, 3, 5, 4), *y = new_tensor(CLCNN_F32, 2, 3, 4, 4);
    clcnn_tensor *am = new_tensor(CLCNN_I32, 2, 3, 4, 4), *am_f = new_tensor(CLCNN_F32, 2, 3, 4, 4);
    clcnn_tensor *am_bad = new_tensor(CLCNN_I32, 2, 3, 4, 5),
                 *dx = new_tensor(CLCNN_F32, 2, 3, 8, 8);
    clcnn_tensor *x3 = NULL, *xi = new_tensor(CLCNN_I32, 2, 3, 8, 8);
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 3, (size_t[]){2, 3, 8}, &x3));
    TU_OK(clcnn_tensor_fill(x, 1.0f));
    const float s = 42.0f;
    clcnn_tensor *outs[] = {y_bad, y, am_f, dx};
    for (int i = 0; i < 4; i++)
        TU_OK(clcnn_tensor_fill(outs[i], s));
    TU_OK(clcnn_tensor_fill(am, 42.0f));
    TU_OK(clcnn_tensor_fill(am_bad, 42.0f));

    assert_int_equal(clcnn_pool2d_forward(dev, &d, x, y_bad, am), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3x5x4"));
    assert_non_null(strstr(clcnn_last_error(), "2x3x8x8"));
    assert_int_equal(clcnn_pool2d_forward(dev, &d, x, y, am_f), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "argmax"));
    assert_int_equal(clcnn_pool2d_forward(dev, &d, x, y, am_bad), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3x4x5"));
    assert_int_equal(clcnn_pool2d_forward(dev, &d, x3, y, am), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_pool2d_forward(dev, &d, xi, y, am), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_pool2d_forward(dev, NULL, x, y, am), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_pool2d_forward(NULL, &d, x, y, am), CLCNN_ERR_INVALID_ARG);
    clcnn_pool2d_desc bad_pad = {CLCNN_POOL_AVG, 2, 2, 2, 2, 2, 2, 0};
    assert_int_equal(clcnn_pool2d_forward(dev, &bad_pad, x, y, NULL), CLCNN_ERR_INVALID_ARG);
    /* backward */
    assert_int_equal(clcnn_pool2d_backward(dev, &d, y, NULL, dx), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "argmax"));
    assert_int_equal(clcnn_pool2d_backward(dev, &d, y, am_f, dx), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_pool2d_backward(dev, &d, y_bad, am, dx), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_pool2d_backward(dev, &d, y, am_bad, dx), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_pool2d_backward(dev, &d, y, am, y_bad), CLCNN_ERR_SHAPE);
    clcnn_pool2d_desc avg = {CLCNN_POOL_AVG, 2, 2, 2, 2, 0, 0, 0};
    assert_int_equal(clcnn_pool2d_backward(dev, &avg, y_bad, NULL, dx), CLCNN_ERR_SHAPE);

    for (int i = 0; i < 4; i++) {
        float *h = tu_download(outs[i]);
        for (size_t j = 0; j < clcnn_tensor_numel(outs[i]); j++)
            assert_float_equal(h[j], s, 0);
        free(h);
    }
    int a[2 * 3 * 4 * 5];
    TU_OK(clcnn_tensor_download(am, a, 2 * 3 * 4 * 4 * sizeof(int)));
    for (int j = 0; j < 2 * 3 * 4 * 4; j++)
        assert_int_equal(a[j], 42);
    TU_OK(clcnn_tensor_download(am_bad, a, sizeof a));
    for (int j = 0; j < 2 * 3 * 4 * 5; j++)
        assert_int_equal(a[j], 42);
    clcnn_tensor *all[] = {x, y_bad, y, am, am_f, am_bad, dx, x3, xi};
    for (int i = 0; i < 9; i++)
        clcnn_tensor_free(all[i]);
}

/* Tensors that start at an element offset inside their buffer. */
static void test_offsets(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(99);
    for (int mode = 0; mode < 3; mode++) {
        clcnn_pool2d_desc d = {(clcnn_pool_mode)mode, 3, 2, 2, 1, 1, 0, 0};
        size_t n = 2, c = 3, h = 7, w = 6, p, q;
        ro_pool g = geom_of(&d, h, w);
        assert_true(ro_pool_out(&g, h, w, &p, &q));
        clcnn_tensor *bx, *by, *bam, *bdy, *bdx;
        clcnn_tensor *x = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, h, w}, 5, &bx);
        clcnn_tensor *y = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, p, q}, 3, &by);
        clcnn_tensor *am = ro_tensor_at_offset(dev, CLCNN_I32, 4, (size_t[]){n, c, p, q}, 11, &bam);
        clcnn_tensor *dy = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, p, q}, 1, &bdy);
        clcnn_tensor *dx = ro_tensor_at_offset(dev, CLCNN_F32, 4, (size_t[]){n, c, h, w}, 9, &bdx);
        float hx[2 * 3 * 7 * 6], hdy[2 * 3 * 8 * 6];
        tu_fill_uniform(&r, hx, n * c * h * w, -1, 1);
        tu_fill_uniform(&r, hdy, n * c * p * q, -1, 1);
        TU_OK(clcnn_tensor_upload(x, hx, n * c * h * w * sizeof(float)));
        TU_OK(clcnn_tensor_upload(dy, hdy, n * c * p * q * sizeof(float)));
        TU_OK(clcnn_pool2d_forward(dev, &d, x, y, am));
        TU_OK(clcnn_pool2d_backward(dev, &d, dy, am, dx));
        double *xd = ro_to_double(hx, n * c * h * w), *dyd = ro_to_double(hdy, n * c * p * q);
        double yref[2 * 3 * 8 * 6], dxref[2 * 3 * 7 * 6];
        ro_pool_forward(&g, xd, n, c, h, w, yref, NULL);
        ro_pool_backward(&g, xd, dyd, n, c, h, w, dxref);
        float *hy = tu_download(y), *hdx = tu_download(dx);
        assert_true(tu_close("offset y", hy, yref, n * c * p * q, 1e-6, 1e-6));
        assert_true(tu_close("offset dx", hdx, dxref, n * c * h * w, 1e-6, 1e-6));
        /* the bytes before and after the views are untouched (still NaN) */
        float *all = tu_download(bdx);
        for (size_t i = 0; i < 9; i++)
            assert_true(isnan(all[i]));
        for (size_t i = 9 + n * c * h * w; i < clcnn_tensor_numel(bdx); i++)
            assert_true(isnan(all[i]));
        free(all), free(hy), free(hdx), free(xd), free(dyd);
        clcnn_tensor *ts[] = {x, y, am, dy, dx, bx, by, bam, bdy, bdx};
        for (int i = 0; i < 10; i++)
            clcnn_tensor_free(ts[i]);
    }
}

/* Backward is a gather without atomics (overlapping windows) or a direct write (tiled
 * windows): bitwise identical across runs. */
static void test_backward_deterministic(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(5);
    clcnn_pool2d_desc d = {CLCNN_POOL_AVG, 3, 3, 1, 1, 1, 1, 0};
    size_t n = 4, c = 8, h = 17, w = 15;
    clcnn_tensor *dy = new_tensor(CLCNN_F32, n, c, h, w), *dx = new_tensor(CLCNN_F32, n, c, h, w);
    float *hdy = malloc(n * c * h * w * sizeof *hdy);
    tu_fill_uniform(&r, hdy, n * c * h * w, -1, 1);
    TU_OK(clcnn_tensor_upload(dy, hdy, n * c * h * w * sizeof *hdy));
    TU_OK(clcnn_pool2d_backward(dev, &d, dy, NULL, dx));
    float *a = tu_download(dx);
    TU_OK(clcnn_pool2d_backward(dev, &d, dy, NULL, dx));
    float *b = tu_download(dx);
    assert_memory_equal(a, b, n * c * h * w * sizeof *a);
    free(a), free(b);

    /* max 2x2/2 on 17x15 (last row and column dropped): forward, then backward twice */
    clcnn_pool2d_desc m = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    clcnn_tensor *x = new_tensor(CLCNN_F32, n, c, h, w), *y = new_tensor(CLCNN_F32, n, c, 8, 7);
    clcnn_tensor *am = new_tensor(CLCNN_I32, n, c, 8, 7), *dy2 = new_tensor(CLCNN_F32, n, c, 8, 7);
    TU_OK(clcnn_tensor_upload(x, hdy, n * c * h * w * sizeof *hdy));
    TU_OK(clcnn_tensor_upload(dy2, hdy, n * c * 8 * 7 * sizeof *hdy));
    TU_OK(clcnn_pool2d_forward(dev, &m, x, y, am));
    TU_OK(clcnn_tensor_fill(dx, NAN));
    TU_OK(clcnn_pool2d_backward(dev, &m, dy2, am, dx));
    a = tu_download(dx);
    TU_OK(clcnn_tensor_fill(dx, 7.0f));
    TU_OK(clcnn_pool2d_backward(dev, &m, dy2, am, dx));
    b = tu_download(dx);
    assert_memory_equal(a, b, n * c * h * w * sizeof *a);
    free(a), free(b), free(hdy);
    clcnn_tensor_free(dy), clcnn_tensor_free(dx), clcnn_tensor_free(x), clcnn_tensor_free(y);
    clcnn_tensor_free(am), clcnn_tensor_free(dy2);
}

/* ---- the row (forward) and plane (backward) kernels, bit for bit -------------------- */

/* The float result the per-output kernels define, computed here in float in the same
 * order: max visits the clipped window row by row, takes a strictly greater value or the
 * first NaN, and starts at -inf on the window's first element's index; average sums from
 * +0.0f in the same order and divides once by the divisor; backward adds each output's term
 * (max: dy at the arg-max; average: dy / divisor on every window element) in output order
 * from +0.0f. Float additions are correctly rounded everywhere, so max y, arg-max and
 * both dx must match exactly; the average's divisions are exact on CPU devices (OpenCL
 * allows 2.5 ulp elsewhere, hence the 3-ulp relative bound there). */
static void float_order_pool(const clcnn_pool2d_desc *d, const float *x, const float *dy,
                             size_t planes, int h, int w, int p, int q, float *y, int *am,
                             float *dx) {
    int kh = d->kernel_h, kw = d->kernel_w, sh = d->stride_h, sw = d->stride_w;
    int ph = d->pad_h, pw = d->pad_w, excl = d->mode == CLCNN_POOL_AVG_EXCLUDE;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * (size_t)h * w;
        float *dxp = dx + pl * (size_t)h * w;
        for (int i = 0; i < h * w; i++)
            dxp[i] = 0.0f;
        for (int op = 0; op < p; op++)
            for (int oq = 0; oq < q; oq++) {
                size_t o = (pl * (size_t)p + op) * q + oq;
                int hs = op * sh - ph, ws = oq * sw - pw;
                int he = hs + kh < h + ph ? hs + kh : h + ph,
                    we = ws + kw < w + pw ? ws + kw : w + pw;
                int h0 = hs > 0 ? hs : 0, w0 = ws > 0 ? ws : 0;
                int h1 = he < h ? he : h, w1 = we < w ? we : w;
                if (d->mode == CLCNN_POOL_MAX) {
                    float m = -INFINITY;
                    int best = h0 * w + w0;
                    for (int i = h0; i < h1; i++)
                        for (int j = w0; j < w1; j++) {
                            float v = xp[i * w + j];
                            if (v > m || (isnan(v) && !isnan(m))) m = v, best = i * w + j;
                        }
                    y[o] = m, am[o] = best;
                    dxp[best] += dy[o];
                } else {
                    float s = 0.0f;
                    for (int i = h0; i < h1; i++)
                        for (int j = w0; j < w1; j++)
                            s += xp[i * w + j];
                    int count = excl ? (h1 - h0) * (w1 - w0) : (he - hs) * (we - ws);
                    y[o] = s / (float)count;
                    float v = dy[o] / (float)count;
                    for (int i = h0; i < h1; i++)
                        for (int j = w0; j < w1; j++)
                            dxp[i * w + j] += v;
                }
            }
    }
}

static int same_bits(const char *what, const float *a, const float *b, size_t n, int exact) {
    for (size_t i = 0; i < n; i++) {
        int eq = memcmp(&a[i], &b[i], sizeof *a) == 0 || (isnan(a[i]) && isnan(b[i]));
        if (!eq && !exact && fabsf(a[i] - b[i]) <= 3 * U * fabsf(b[i])) eq = 1;
        if (!eq) {
            fprintf(stderr, "%s[%zu] = %a, float-order value %a\n", what, i, a[i], b[i]);
            return 0;
        }
    }
    return 1;
}

/* Runs forward and backward twice (dx prefilled with NaN, then 7) and checks both runs
 * bit for bit against float_order_pool. Inputs hold ties (quantised values), NaN and
 * infinities. */
static int exact_case(const clcnn_pool2d_desc *d, size_t n, size_t c, size_t h, size_t w,
                      tu_rng *r) {
    size_t ys[4], xs[4] = {n, c, h, w};
    TU_OK(clcnn_pool2d_output_shape(d, xs, ys));
    size_t p = ys[2], q = ys[3], nx = n * c * h * w, ny = n * c * p * q;
    float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
    float *yr = malloc(ny * sizeof *yr), *dxr = malloc(nx * sizeof *dxr);
    int *amr = malloc(ny * sizeof *amr), *am = malloc(ny * sizeof *am);
    static const float special[3] = {NAN, -INFINITY, INFINITY};
    for (size_t i = 0; i < nx; i++) {
        int k = tu_rng_int(r, 0, 99);
        x[i] = k < 30   ? 0.5f * (float)tu_rng_int(r, -2, 2)
               : k < 33 ? special[tu_rng_int(r, 0, 2)]
                        : tu_rng_uniform(r, -1, 1);
    }
    tu_fill_uniform(r, dy, ny, -1, 1);
    float_order_pool(d, x, dy, n * c, (int)h, (int)w, (int)p, (int)q, yr, amr, dxr);
    clcnn_tensor *tx = new_tensor(CLCNN_F32, n, c, h, w), *ty = new_tensor(CLCNN_F32, n, c, p, q);
    clcnn_tensor *tam = new_tensor(CLCNN_I32, n, c, p, q), *tdy = new_tensor(CLCNN_F32, n, c, p, q);
    clcnn_tensor *tdx = new_tensor(CLCNN_F32, n, c, h, w);
    TU_OK(clcnn_tensor_upload(tx, x, nx * sizeof *x));
    TU_OK(clcnn_tensor_upload(tdy, dy, ny * sizeof *dy));
    int is_max = d->mode == CLCNN_POOL_MAX;
    int exact = is_max || clcnn_device_get_info(dev)->type == CLCNN_DEVICE_CPU;
    int ok = 1;
    for (int rep = 0; rep < 2 && ok; rep++) {
        TU_OK(clcnn_tensor_fill(ty, NAN));
        TU_OK(clcnn_tensor_fill(tdx, rep ? 7.0f : NAN)); /* every element must be written */
        TU_OK(clcnn_pool2d_forward(dev, d, tx, ty, is_max ? tam : NULL));
        TU_OK(clcnn_pool2d_backward(dev, d, tdy, is_max ? tam : NULL, tdx));
        float *y = tu_download(ty), *dx = tu_download(tdx);
        ok &= same_bits("y", y, yr, ny, exact);
        ok &= same_bits("dx", dx, dxr, nx, exact);
        if (is_max) {
            TU_OK(clcnn_tensor_download(tam, am, ny * sizeof *am));
            for (size_t i = 0; i < ny && ok; i++)
                if (am[i] != amr[i]) {
                    fprintf(stderr, "argmax[%zu] = %d, float-order value %d\n", i, am[i], amr[i]);
                    ok = 0;
                }
        }
        free(y), free(dx);
    }
    if (!ok)
        fprintf(stderr, "  case: mode %d x %zux%zux%zux%zu kernel %dx%d stride %dx%d pad %dx%d\n",
                d->mode, n, c, h, w, d->kernel_h, d->kernel_w, d->stride_h, d->stride_w, d->pad_h,
                d->pad_w);
    clcnn_tensor_free(tx), clcnn_tensor_free(ty), clcnn_tensor_free(tam);
    clcnn_tensor_free(tdy), clcnn_tensor_free(tdx);
    free(x), free(dy), free(yr), free(dxr), free(amr), free(am);
    return ok;
}

/* Overlapping and other general windows through the row kernels: rows with 8 or more
 * whole windows (vector groups, a last group shifted left, stride-2 loads at the row's
 * end, clipped border windows on both sides) and narrow rows (one short group), with few planes
 * (backward gather) and many (backward by plane); every mode. */
static void test_row_and_plane_kernels(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(4242);
    int failures = 0;
    for (int i = 0; i < (int)tu_small_count(90, 30); i++) {
        clcnn_pool2d_desc d = {0};
        d.mode = (clcnn_pool_mode)(i % 3);
        d.kernel_h = tu_rng_int(&r, 1, 5), d.kernel_w = tu_rng_int(&r, 1, 5);
        d.stride_h = tu_rng_int(&r, 1, 3), d.stride_w = i % 4 == 3 ? 3 : 1 + i % 2;
        d.pad_h = tu_rng_int(&r, 0, d.kernel_h - 1), d.pad_w = tu_rng_int(&r, 0, d.kernel_w - 1);
        if (d.stride_h == d.kernel_h && d.stride_w == d.kernel_w) d.pad_w = d.kernel_w - 1;
        size_t h = (size_t)tu_rng_int(&r, d.kernel_h, 9);
        size_t w = i % 3 == 2 ? (size_t)tu_rng_int(&r, d.kernel_w, 12) /* a short group only */
                              : (size_t)tu_rng_int(&r, 8 * d.stride_w + d.kernel_w, 60);
        size_t n = i % 5 == 0 ? 1 : 2, c = i % 2 ? 40 : (size_t)tu_rng_int(&r, 1, 3);
        if (!exact_case(&d, n, c, h, w, &r)) failures++;
        if (i % 6 == 0 && !run_case(&d, n, c, h, w, &r, i % 3)) failures++;
    }
    /* exactly 8 whole windows; stride 2 rows whose last group loads odd lanes; 1-row
     * planes; a row one window short of the row kernels */
    static const int sh[][6] = {{1, 23, 3, 2, 0, 0}, {3, 19, 3, 2, 0, 0}, {4, 55, 3, 2, 1, 0},
                                {1, 17, 2, 2, 0, 1}, {5, 10, 3, 1, 0, 0}, {2, 16, 3, 2, 1, 1}};
    for (int i = 0; i < 6; i++)
        for (int m = 0; m < 3; m++) {
            clcnn_pool2d_desc d = {(clcnn_pool_mode)m, sh[i][2], sh[i][2], sh[i][3],
                                   sh[i][3],           sh[i][4], sh[i][5], 0};
            d.kernel_h = d.kernel_h < sh[i][0] + 2 * d.pad_h ? d.kernel_h : 1;
            d.pad_h = d.pad_h < d.kernel_h ? d.pad_h : 0;
            if (!exact_case(&d, 1, 33, (size_t)sh[i][0], (size_t)sh[i][1], &r)) failures++;
        }
    assert_int_equal(failures, 0);
}

/* The perf anchors' pooling shapes (batch cut to 2, 1 and 2): AlexNet's 3x3/2 on 55x55
 * (max and average), VGG's 2x2/2 on 112x112 (tiled), ResNet's global average. */
static void test_anchor_shapes(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    tu_rng r = tu_rng_seed(55);
    clcnn_pool2d_desc alex = {CLCNN_POOL_MAX, 3, 3, 2, 2, 0, 0, 0};
    assert_true(exact_case(&alex, 2, 96, 55, 55, &r));
    assert_true(run_case(&alex, 2, 96, 55, 55, &r, 2));
    alex.mode = CLCNN_POOL_AVG;
    assert_true(exact_case(&alex, 2, 96, 55, 55, &r));
    assert_true(run_case(&alex, 2, 96, 55, 55, &r, 0));
    clcnn_pool2d_desc vgg = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    assert_true(run_case(&vgg, 1, 64, 112, 112, &r, 1));
    clcnn_pool2d_desc gap = {CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    assert_true(run_case(&gap, 2, 2048, 7, 7, &r, 0));
}

/* ---- finite differences of the reference backward ------------------------------------ */

typedef struct fd_ctx {
    const ro_pool *g;
    double *x, *y, *r;
    size_t n, c, h, w, ny;
} fd_ctx;

/* L = sum_o r_o y_o, so dL/dy = r. */
static double pool_loss(void *p) {
    fd_ctx *f = p;
    ro_pool_forward(f->g, f->x, f->n, f->c, f->h, f->w, f->y, NULL);
    double s = 0;
    for (size_t i = 0; i < f->ny; i++)
        s += f->r[i] * f->y[i];
    return s;
}

static void test_reference_finite_differences(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(31);
    for (int it = 0; it < 30; it++) {
        size_t n = (size_t)tu_rng_int(&r, 1, 2), c = (size_t)tu_rng_int(&r, 1, 3);
        size_t h = (size_t)tu_rng_int(&r, 1, 7), w = (size_t)tu_rng_int(&r, 1, 7);
        clcnn_pool2d_desc d = random_desc(&r, h, w);
        d.mode = (clcnn_pool_mode)(it % 3); /* every mode, ten shapes each */
        ro_pool g = geom_of(&d, h, w);
        size_t p, q;
        assert_true(ro_pool_out(&g, h, w, &p, &q));
        size_t nx = n * c * h * w, ny = n * c * p * q;
        double *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
        double *rr = malloc(ny * sizeof *rr), *dx = malloc(nx * sizeof *dx);
        /* Distinct values 1e-2 apart (a shuffled ramp): a step of 1e-6 never changes which
         * element is the maximum, so max pooling is differentiable there. */
        for (size_t i = 0; i < nx; i++)
            x[i] = 0.01 * (double)i - 0.3;
        for (size_t i = nx; i > 1; i--) {
            size_t j = (size_t)tu_rng_int(&r, 0, (int)i - 1);
            double t = x[i - 1];
            x[i - 1] = x[j];
            x[j] = t;
        }
        for (size_t i = 0; i < ny; i++)
            rr[i] = tu_rng_uniform(&r, -1, 1);
        ro_pool_backward(&g, x, rr, n, c, h, w, dx);
        fd_ctx f = {&g, x, y, rr, n, c, h, w, ny};
        /* L is piecewise linear in x: central differences are exact up to rounding,
         * |L| <= ny, step 1e-6: error ~ ny * 1e-16 / 1e-6 << 1e-7. */
        for (size_t i = 0; i < nx; i++) {
            double num = ro_central_diff(pool_loss, &f, &x[i], 1e-6);
            if (fabs(num - dx[i]) > 1e-7)
                fail_msg("pool mode %d FD mismatch at %zu: analytic %g numeric %g", d.mode, i,
                         dx[i], num);
        }
        free(x), free(y), free(rr), free(dx);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_shape),
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_common_layers),
        cmocka_unit_test(test_tiled_windows),
        cmocka_unit_test(test_tiled_offsets),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_backward_deterministic),
        cmocka_unit_test(test_row_and_plane_kernels),
        cmocka_unit_test(test_anchor_shapes),
        cmocka_unit_test(test_errors_write_nothing),
        cmocka_unit_test(test_reference_finite_differences),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_device);
}
