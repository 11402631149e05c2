/* The data gradient that ends in a ReLU's gradient over a sum of two contributions,
 * cc_conv2d_backward_data_relu: dx = mask > 0 ? dgrad(dy, w) + z : 0 in the implicit
 * GEMM's epilogue (stride 1; training plans run ResNet's Add + ReLU backward in it), on
 *  - the bits of what it replaces, clcnn_conv2d_backward_data on implicit_gemm and then
 *    cc_add_relu_grad: 1x1 layers (plane tiles, whole and running on into the next
 *    image), 3x3 and 5x5 kernels (row tiles of 16, 8 and 4 columns, partial tiles),
 *    padding, dilation, groups, batch 1, reductions cut into several chunks (a small KC
 *    in $CLCNN_CONV_IMPLICIT_CFG: z must be added after the last one, not the first),
 *    other register blocks; masks with exact zeros and negatives;
 *  - the double reference (tests/reference_conv.c): the data gradient's tolerance of
 *    test_conv2d_dgrad.c, |got - ref| <= 1e-6 * L + 1e-5 * |ref| with L = (k/groups)*r*s,
 *    plus 1e-6 for z;
 *  - its refusals (strides, other algorithms, shapes, overlaps), nothing written. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"
#include "internal.h"
#include "reference_conv.h"

/* A data-gradient problem (w, dy and the reference dx of conv_check.h), z uniform in
 * [-1, 1] and mask too, with every 7th element exactly 0; ref the reference of the fused
 * dx. */
typedef struct rproblem {
    cck_dproblem d;
    float *z, *mask;
    double *ref;
} rproblem;

static void rproblem_init(rproblem *pb, const ref_conv *shape, uint64_t seed) {
    cck_dproblem_init(&pb->d, shape, seed);
    size_t nx = ref_conv_x_size(&pb->d.cv);
    tu_rng rng = tu_rng_seed(seed + 1);
    pb->z = malloc(nx * sizeof(float));
    pb->mask = malloc(nx * sizeof(float));
    pb->ref = malloc(nx * sizeof(double));
    assert_true(pb->z && pb->mask && pb->ref);
    tu_fill_uniform(&rng, pb->z, nx, -1, 1);
    tu_fill_uniform(&rng, pb->mask, nx, -1, 1);
    for (size_t i = 0; i < nx; i += 7)
        pb->mask[i] = 0.0f;
    for (size_t i = 0; i < nx; i++)
        pb->ref[i] = pb->mask[i] > 0.0f ? pb->d.ref[i] + pb->z[i] : 0.0;
}

static void rproblem_free(rproblem *pb) {
    cck_dproblem_free(&pb->d);
    free(pb->z);
    free(pb->mask);
    free(pb->ref);
}

/* The fused dx (*fused) and the two-step one (*plain), both starting as NaN. */
static void run_both(const rproblem *pb, float **fused, float **plain) {
    const ref_conv *cv = &pb->d.cv;
    clcnn_device *dev = tu_device();
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w}, ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
    clcnn_tensor *w = tu_tensor_from(4, ws, pb->d.w), *dy = tu_tensor_from(4, ys, pb->d.dy);
    clcnn_tensor *z = tu_tensor_from(4, xs, pb->z), *mask = tu_tensor_from(4, xs, pb->mask);
    clcnn_tensor *dx = tu_tensor_from(4, xs, NULL), *dx2 = tu_tensor_from(4, xs, NULL);
    TU_OK(clcnn_tensor_fill(dx, NAN));
    TU_OK(clcnn_tensor_fill(dx2, NAN));
    clcnn_conv2d_desc d = rcp_make_desc(cv, CLCNN_CONV_IMPLICIT_GEMM);
    TU_OK(cc_conv2d_backward_data_relu(dev, &d, dy, w, z, mask, dx));
    TU_OK(clcnn_conv2d_backward_data(dev, &d, dy, w, dx2));
    TU_OK(cc_add_relu_grad(dev, mask, dx2, z, dx2));
    *fused = tu_download(dx);
    *plain = tu_download(dx2);
    clcnn_tensor *all[] = {w, dy, z, mask, dx, dx2};
    for (int i = 0; i < 6; i++)
        clcnn_tensor_free(all[i]);
}

/* One shape under the parameter string cfg (NULL: the heuristic): bits and reference. */
static int check(const ref_conv *shape, const char *cfg, uint64_t seed) {
    char *keep = tu_env_set("CLCNN_CONV_IMPLICIT_CFG", cfg);
    rproblem pb;
    rproblem_init(&pb, shape, seed);
    float *fused, *plain;
    run_both(&pb, &fused, &plain);
    tu_env_restore("CLCNN_CONV_IMPLICIT_CFG", keep);
    const ref_conv *cv = &pb.d.cv;
    size_t nx = ref_conv_x_size(cv);
    char what[320];
    rcp_describe(cv, CLCNN_CONV_IMPLICIT_GEMM, 0, 0, what, sizeof what);
    int ok = 1;
    for (size_t i = 0; i < nx && ok; i++)
        if (memcmp(&fused[i], &plain[i], sizeof(float)) != 0) {
            fprintf(stderr, "%s [%s]: element %zu is %.9g, the two steps give %.9g\n", what,
                    cfg ? cfg : "heuristic", i, fused[i], plain[i]);
            ok = 0;
        }
    double l = (double)(cv->k / cv->groups) * cv->r * cv->s;
    ok &= tu_close(what, fused, pb.ref, nx, 1e-6 * l + 1e-6, 1e-5);
    free(fused);
    free(plain);
    rproblem_free(&pb);
    return ok;
}

/* The shapes (rcp_conv: n, c, h, w, k, r, s, stride, pad, dilation, groups) into out;
 * returns their count. */
static int shapes_init(ref_conv out[8]) {
    int n = 0;
    out[n++] = rcp_conv(2, 24, 7, 7, 40, 1, 1, 1, 0, 1, 1);   /* 1x1, tiles across images */
    out[n++] = rcp_conv(1, 16, 8, 8, 32, 1, 1, 1, 0, 1, 1);   /* 1x1, whole tiles, batch 1 */
    out[n++] = rcp_conv(2, 8, 9, 13, 16, 3, 3, 1, 1, 1, 1);   /* 3x3, partial row tiles */
    out[n++] = rcp_conv(1, 6, 5, 4, 12, 3, 3, 1, 1, 1, 1);    /* 3x3, 4 columns */
    out[n++] = rcp_conv(2, 4, 11, 10, 8, 5, 5, 1, 4, 2, 1);   /* 5x5, dilation 2 */
    out[n++] = rcp_conv(2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 2);    /* 2 groups */
    out[n++] = rcp_conv(1, 5, 6, 17, 7, 1, 3, 1, 0, 1, 1);    /* 1x3, odd counts */
    out[n++] = rcp_conv(3, 20, 14, 14, 48, 1, 1, 1, 0, 1, 1); /* 1x1, ResNet-like plane */
    return n;
}

static void test_bits_and_reference(void **state) {
    (void)state;
    ref_conv s[8];
    int n = shapes_init(s);
    /* the heuristic; reductions in chunks of 16 rows (TM 8, LWS 1, KC 16); other register
     * blocks (TM 8 x TN 3 tiles; TM 16; TM 6 x TN 2 with 8-column segments). Oclgrind
     * (tu_small): the first three, without the last (largest) shape. */
    const char *cfgs[] = {NULL, "8 16 1 16", "8 16 4 1024 0 3", "16 16 4 1024", "6 8 1 1024 0 2"};
    int nc = (int)tu_small_count(5, 3);
    n = (int)tu_small_count((size_t)n, (size_t)n - 1);
    int ok = 1;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < nc; c++)
            ok &= check(&s[i], cfgs[c], 100 + (uint64_t)i * 7 + (uint64_t)c);
    assert_true(ok);
}

/* ---- refusals ------------------------------------------------------------------------- */

static void expect_error(const clcnn_conv2d_desc *d, const clcnn_tensor *dy, const clcnn_tensor *w,
                         const clcnn_tensor *z, const clcnn_tensor *mask, clcnn_tensor *dx,
                         clcnn_status want, const char *needle) {
    TU_OK(clcnn_tensor_fill(dx, 42.0f));
    tu_expect_status(cc_conv2d_backward_data_relu(tu_device(), d, dy, w, z, mask, dx), want,
                     needle);
    tu_expect_untouched(dx, 42.0f);
}

static void test_refusals(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *w, *dy, *dy2, *dx, *z, *zbad, *mask;
    TU_OK(clcnn_tensor_create4(dev, 16, 8, 1, 1, &w));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 6, 6, &dy));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 3, 3, &dy2)); /* 6x6 at stride 2 */
    TU_OK(clcnn_tensor_create4(dev, 2, 8, 6, 6, &dx));
    TU_OK(clcnn_tensor_create4(dev, 2, 8, 6, 6, &z));
    TU_OK(clcnn_tensor_create4(dev, 2, 8, 6, 5, &zbad));
    TU_OK(clcnn_tensor_create4(dev, 2, 8, 6, 6, &mask));
    clcnn_tensor *all[] = {w, dy, dy2, dx, z, zbad, mask};
    for (int i = 0; i < 7; i++)
        TU_OK(clcnn_tensor_fill(all[i], 1.0f));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.algo = CLCNN_CONV_IMPLICIT_GEMM;
    expect_error(&d, dy, w, zbad, mask, dx, CLCNN_ERR_SHAPE,
                 "contribution z is 2x8x6x5, the input gradient dx 2x8x6x6");
    expect_error(&d, dy, w, z, NULL, dx, CLCNN_ERR_INVALID_ARG, "ReLU output mask is NULL");
    expect_error(&d, dy, w, z, mask, z, CLCNN_ERR_INVALID_ARG,
                 "input gradient dx must not share memory with contribution z");
    expect_error(&d, dy, w, z, mask, mask, CLCNN_ERR_INVALID_ARG,
                 "input gradient dx must not share memory with ReLU output mask");
    d.algo = CLCNN_CONV_DIRECT;
    expect_error(&d, dy, w, z, mask, dx, CLCNN_ERR_UNSUPPORTED,
                 "runs on implicit_gemm at stride 1 only, not direct at stride 1x1");
    d.algo = CLCNN_CONV_IMPLICIT_GEMM;
    d.stride_h = d.stride_w = 2;
    expect_error(&d, dy2, w, z, mask, dx, CLCNN_ERR_UNSUPPORTED, "not implicit_gemm at stride 2x2");
    /* the same tensors run at stride 1 (they were fine) */
    d.stride_h = d.stride_w = 1;
    TU_OK(cc_conv2d_backward_data_relu(dev, &d, dy, w, z, mask, dx));
    for (int i = 0; i < 7; i++)
        clcnn_tensor_free(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bits_and_reference),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
