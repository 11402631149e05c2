/* conv2d backward data with stride > 1 through the implicit_gemm algorithm (the phase
 * decomposition of lib/ops/conv2d_implicit_data.c) against the double reference
 * (tests/reference_conv.c, itself checked by finite differences in
 * test_conv2d_backward.c): a seeded sweep of random strided shapes (strides 2-4 per
 * axis, unequal strides, padding up to beyond the kernel, dilation, groups, kernels
 * smaller than the stride, odd sizes, batch 1), hand-picked cases, reduced versions of
 * the strided layers of AlexNet, ResNet-50 and MobileNet-V2, the workspace chunking
 * (a small $CLCNN_CONV_WORKSPACE_MB), tensors at element offsets, bit-identical repeats,
 * and the error paths (nothing written). Both ways of running the phases (all as one
 * GEMM, or one GEMM per phase: $CLCNN_CONV_DGRAD_SPLIT) are checked on the same shapes.
 *
 * Tolerance: a dx element sums at most L = (k/groups)*r*s products of numbers in
 * [-1, 1] (the phase filter adds only exact zeros); float32 rounding grows at most about
 * linearly with L: |got - ref| <= 1e-6 * L + 1e-5 * |ref| (as in test_conv2d_backward.c),
 * plus normalised MSE <= 1e-7 on the large layers. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"
#include "internal.h"
#include "reference_conv.h"
#include "reference_conv_problem.h"

/* dx on the device with algo; tensors at element offset off (0: ordinary tensors). dx
 * starts as NaN so an element the kernels forget to write fails the comparison. */
static float *run_data(const cck_dproblem *pb, clcnn_conv_algo algo, size_t off) {
    const ref_conv *cv = &pb->cv;
    clcnn_device *dev = tu_device();
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w}, ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
    clcnn_tensor *w, *dy, *dx;
    if (off) {
        w = rcp_offset_tensor(4, ws, off, pb->w);
        dy = rcp_offset_tensor(4, ys, off + 3, pb->dy);
        dx = rcp_offset_tensor(4, xs, off + 7, NULL);
    } else {
        w = tu_tensor_from(4, ws, pb->w);
        dy = tu_tensor_from(4, ys, pb->dy);
        dx = tu_tensor_from(4, xs, NULL);
        TU_OK(clcnn_tensor_fill(dx, NAN));
    }
    clcnn_conv2d_desc d = rcp_make_desc(cv, algo);
    TU_OK(clcnn_conv2d_backward_data(dev, &d, dy, w, dx));
    float *got = tu_download(dx);
    clcnn_tensor_free(w);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(dx);
    return got;
}

static int compare(const cck_dproblem *pb, const float *got, clcnn_conv_algo algo, const char *tag,
                   int nmse) {
    const ref_conv *cv = &pb->cv;
    size_t nx = ref_conv_x_size(cv);
    char what[320];
    rcp_describe(cv, algo, 0, 0, what, sizeof what);
    strncat(what, tag, sizeof what - strlen(what) - 1);
    double l = (double)(cv->k / cv->groups) * cv->r * cv->s;
    int ok = tu_close(what, got, pb->ref, nx, 1e-6 * l, 1e-5);
    if (nmse) {
        double e = tu_nmse(got, pb->ref, nx);
        if (!(e <= 1e-7)) {
            fprintf(stderr, "NMSE %s: %g > 1e-7\n", what, e);
            ok = 0;
        }
    }
    return ok;
}

/* One shape with implicit_gemm against the reference. */
static int check(const ref_conv *shape, uint64_t seed, int nmse) {
    cck_dproblem pb;
    cck_dproblem_init(&pb, shape, seed);
    float *got = run_data(&pb, CLCNN_CONV_IMPLICIT_GEMM, 0);
    int ok = compare(&pb, got, CLCNN_CONV_IMPLICIT_GEMM, " (backward data)", nmse);
    free(got);
    cck_dproblem_free(&pb);
    return ok;
}

static ref_conv shape(int n, int c, int h, int w, int k, int r, int s, int sh, int sw, int ph,
                      int pw, int dh, int dw, int groups) {
    ref_conv cv = rcp_conv(n, c, h, w, k, r, s, sh, ph, dh, groups);
    cv.stride_w = sw;
    cv.pad_w = pw;
    cv.dilation_w = dw;
    return cv;
}

/* The phases as one GEMM ("0"), one GEMM per phase ("1") or the library's choice (NULL):
 * $CLCNN_CONV_DGRAD_SPLIT (lib/ops/conv2d_implicit_data.c, split_phases). */
static const char *const split_modes[] = {NULL, "0", "1"};

/* A random strided shape: strides 2-4 per axis (unequal about half the time), kernels
 * 1-7 (often smaller than the stride), padding 0 .. beyond the kernel, dilation 1-3,
 * groups 1-3 with 1-6 channels per group, batch 1-3, odd and even sizes. */
static ref_conv random_strided(tu_rng *rng) {
    for (;;) {
        int groups = tu_rng_int(rng, 0, 3) == 0 ? tu_rng_int(rng, 2, 3) : 1;
        int sh = tu_rng_int(rng, 2, 4), sw = tu_rng_int(rng, 0, 1) ? sh : tu_rng_int(rng, 2, 4);
        int r = tu_rng_int(rng, 1, 7), s = tu_rng_int(rng, 0, 2) ? r : tu_rng_int(rng, 1, 7);
        int dil = tu_rng_int(rng, 0, 4) == 0 ? tu_rng_int(rng, 2, 3) : 1;
        ref_conv cv = shape(tu_rng_int(rng, 1, 3), groups * tu_rng_int(rng, 1, 6),
                            tu_rng_int(rng, 1, 30), tu_rng_int(rng, 1, 30),
                            groups * tu_rng_int(rng, 1, 6), r, s, sh, sw, tu_rng_int(rng, 0, r),
                            tu_rng_int(rng, 0, s), dil, tu_rng_int(rng, 0, 3) ? dil : 1, groups);
        if (ref_conv_out(&cv)) return cv;
    }
}

static void test_random_strided(void **state) {
    (void)state;
    int ok = 1;
    /* the library's choice (one GEMM for these few channels), then one GEMM per phase */
    const char *modes[] = {NULL, "1"};
    for (int m = 0; m < 2; m++) {
        char *keep = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", modes[m]);
        tu_rng rng = tu_rng_seed(20261125 + (uint64_t)m);
        for (int i = 0; i < (int)tu_small_count(120, 10); i++) {
            ref_conv cv = random_strided(&rng);
            ok &= check(&cv, 1000 + (uint64_t)i, 0);
        }
        tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep);
    }
    assert_true(ok);
}

/* Other implicit-GEMM parameters than this device's choice, through the development
 * override $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC [NT]" (the set test_conv2d_algos.c uses,
 * so the programs are shared): the GPU's TM 2 and local size, odd TM (channel tails),
 * narrow segments, tiny reduction chunks (partial sums kept in the phase buffer between
 * chunks), several tiles per work-item, and plane tiles (VW 0: the phase convolutions'
 * taps gathered lane by lane; their output planes may be larger than dy's); every other
 * shape with one GEMM per phase. */
static void test_gemm_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"2 16 16 64",     "3 8 4 5 3",      "16 4 4 7",
                          "16 16 4 1024 2", "8 0 4 1024 0 2", "3 0 4 9 5 2"};
    tu_rng rng = tu_rng_seed(77077);
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        char *keep = tu_env_set("CLCNN_CONV_IMPLICIT_CFG", cfgs[c]);
        for (int i = 0; i < (int)tu_small_count(12, 4); i++) {
            char *keep_split = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", i & 1 ? "1" : NULL);
            ref_conv cv = random_strided(&rng);
            if (!check(&cv, 6000 + 100 * c + (uint64_t)i, 0))
                fprintf(stderr, "  (cfg '%s')\n", cfgs[c]), ok = 0;
            tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep_split);
        }
        tu_env_restore("CLCNN_CONV_IMPLICIT_CFG", keep);
    }
    /* plane tiles on phases of one tap whose outputs are narrower than dy (4x4 kernel,
     * stride 4: the per-phase 1x1 GEMMs), split and not */
    char *keep = tu_env_set("CLCNN_CONV_IMPLICIT_CFG", "8 0 4 1024 0 2");
    for (int m = 0; m < 2; m++) {
        char *keep_split = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", m ? "1" : "0");
        ref_conv cv = shape(1, 3, 14, 24, 3, 4, 4, 4, 4, 1, 2, 1, 1, 1);
        ok &= check(&cv, 6900 + (uint64_t)m, 0);
        tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep_split);
    }
    tu_env_restore("CLCNN_CONV_IMPLICIT_CFG", keep);
    assert_true(ok);
}

static void test_edge_cases(void **state) {
    (void)state;
    ref_conv cases[] = {
        shape(1, 1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 1, 1, 1),     /* 1x1 image, stride 2 */
        shape(1, 3, 9, 9, 4, 1, 1, 3, 3, 0, 0, 1, 1, 1),     /* kernel smaller than stride */
        shape(2, 4, 10, 11, 5, 2, 2, 4, 3, 0, 1, 1, 1, 1),   /* 2x2, stride 4x3 */
        shape(1, 2, 8, 8, 3, 1, 1, 2, 2, 1, 1, 1, 1, 1),     /* 1x1 with padding */
        shape(1, 3, 6, 7, 2, 2, 2, 4, 4, 0, 0, 2, 2, 1),     /* dilation 2, stride 4 */
        shape(2, 4, 13, 12, 4, 3, 3, 2, 3, 3, 3, 1, 1, 1),   /* padding == kernel */
        shape(1, 6, 11, 11, 6, 3, 3, 2, 2, 1, 1, 1, 1, 6),   /* depthwise */
        shape(1, 6, 12, 12, 12, 3, 3, 2, 2, 1, 1, 1, 1, 3),  /* grouped, multiplier 2 */
        shape(2, 3, 23, 19, 7, 5, 4, 3, 2, 2, 1, 2, 3, 1),   /* everything unequal */
        shape(1, 40, 9, 9, 36, 3, 3, 2, 2, 1, 1, 1, 1, 1),   /* more than TM channels */
        shape(1, 3, 33, 35, 5, 7, 7, 2, 2, 3, 3, 1, 1, 1),   /* ResNet stem-like */
        shape(1, 2, 40, 40, 3, 3, 3, 32, 32, 1, 1, 1, 1, 1), /* largest supported stride */
        shape(1, 2, 20, 20, 3, 3, 3, 17, 5, 0, 0, 1, 1, 1),  /* one output row */
    };
    int ok = 1;
    for (int m = 0; m < 3; m++) {
        char *keep = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", split_modes[m]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            ok &= check(&cases[i], 2000 + i, 0);
        tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep);
    }
    assert_true(ok);
}

/* The strided layers of the perf suites, reduced in batch (and AlexNet conv1 exactly as
 * in the anchors suite, at batch 1 and 2). */
static void test_network_layers(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    ref_conv cases[] = {
        rcp_conv(1, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1), /* AlexNet conv1 */
        rcp_conv(2, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1), /* ... batch 2 */
        rcp_conv(1, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1),   /* ResNet-50 conv1 */
        rcp_conv(1, 128, 56, 56, 128, 3, 3, 2, 1, 1, 1),  /* l2_conv3x3_s2 */
        rcp_conv(1, 512, 14, 14, 512, 3, 3, 2, 1, 1, 1),  /* l4_conv3x3_s2 */
        rcp_conv(1, 256, 56, 56, 512, 1, 1, 2, 0, 1, 1),  /* l2_down */
        rcp_conv(2, 3, 224, 224, 32, 3, 3, 2, 1, 1, 1),   /* MobileNet-V2 stem */
        rcp_conv(1, 96, 112, 112, 96, 3, 3, 2, 1, 1, 96), /* b2_dw_s2 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ok &= check(&cases[i], 3000 + i, 1);
        /* and whatever AUTO picks for the layer (implicit_gemm, gemm or direct) */
        cck_dproblem pb;
        cck_dproblem_init(&pb, &cases[i], 3200 + i);
        float *got = run_data(&pb, CLCNN_CONV_AUTO, 0);
        ok &= compare(&pb, got, CLCNN_CONV_AUTO, " (backward data)", 1);
        free(got);
        cck_dproblem_free(&pb);
    }
    /* l2_conv3x3_s2 (split by default) as one GEMM, AlexNet conv1 split */
    char *keep = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", "0");
    ok &= check(&cases[3], 3100, 1);
    tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep);
    keep = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", "1");
    ok &= check(&cases[0], 3101, 1);
    tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep);
    assert_true(ok);
}

/* A workspace limit of a few KB: the phase buffer holds one image (or a few) per chunk,
 * including a shorter last chunk. */
static void test_workspace_chunks(void **state) {
    (void)state;
    ref_conv cases[] = {
        shape(5, 4, 17, 15, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1), /* 5 images, chunks of 2 */
        shape(3, 6, 20, 20, 4, 5, 5, 3, 3, 2, 2, 1, 1, 2), /* one image per chunk */
        shape(7, 3, 31, 31, 8, 11, 11, 4, 4, 0, 0, 1, 1, 1),
    };
    const char *limits[] = {"0.012", "0.001", "0.05"};
    int ok = 1;
    for (int m = 0; m < 3; m++) {
        char *keep_split = tu_env_set("CLCNN_CONV_DGRAD_SPLIT", split_modes[m]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *keep = tu_env_set("CLCNN_CONV_WORKSPACE_MB", limits[i]);
            ok &= check(&cases[i], 4000 + i, 0);
            tu_env_restore("CLCNN_CONV_WORKSPACE_MB", keep);
        }
        tu_env_restore("CLCNN_CONV_DGRAD_SPLIT", keep_split);
    }
    assert_true(ok);
}

/* Tensors at element offsets (each kernel must honour them) and bit-identical results
 * from repeated calls. */
static void test_offsets_and_determinism(void **state) {
    (void)state;
    ref_conv cases[] = {
        shape(2, 6, 19, 21, 8, 3, 3, 2, 2, 1, 1, 1, 1, 2),
        shape(2, 64, 15, 17, 40, 3, 3, 2, 3, 1, 1, 1, 1, 1), /* one GEMM per phase */
        rcp_conv(2, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cck_dproblem pb;
        cck_dproblem_init(&pb, &cases[i], 5000 + i);
        float *a = run_data(&pb, CLCNN_CONV_IMPLICIT_GEMM, 0);
        float *b = run_data(&pb, CLCNN_CONV_IMPLICIT_GEMM, 0);
        float *c = run_data(&pb, CLCNN_CONV_IMPLICIT_GEMM, 13);
        size_t nx = ref_conv_x_size(&pb.cv);
        ok &= compare(&pb, c, CLCNN_CONV_IMPLICIT_GEMM, " (offset tensors)", 0);
        if (memcmp(a, b, nx * sizeof(float)) != 0) {
            fprintf(stderr, "case %zu: two runs differ\n", i);
            ok = 0;
        }
        if (memcmp(a, c, nx * sizeof(float)) != 0) {
            fprintf(stderr, "case %zu: the offset run differs\n", i);
            ok = 0;
        }
        free(a);
        free(b);
        free(c);
        cck_dproblem_free(&pb);
    }
    assert_true(ok);
}

/* ---- error paths ---------------------------------------------------------------------- */

static void expect_data_error(const clcnn_conv2d_desc *d, const clcnn_tensor *dy,
                              const clcnn_tensor *w, clcnn_tensor *dx, clcnn_status want,
                              const char *needle) {
    TU_OK(clcnn_tensor_fill(dx, 42.0f));
    tu_expect_status(clcnn_conv2d_backward_data(tu_device(), d, dy, w, dx), want, needle);
    tu_expect_untouched(dx, 42.0f);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *w, *w4, *dy, *dybad, *dx, *dx40, *dy40;
    TU_OK(clcnn_tensor_create4(dev, 16, 3, 3, 3, &w));
    TU_OK(clcnn_tensor_create4(dev, 16, 4, 3, 3, &w4));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 4, 4, &dy)); /* 8x8, stride 2, pad 1 */
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 3, 4, &dybad));
    TU_OK(clcnn_tensor_create4(dev, 2, 3, 8, 8, &dx));
    TU_OK(clcnn_tensor_create4(dev, 1, 3, 40, 40, &dx40));
    TU_OK(clcnn_tensor_create4(dev, 1, 16, 2, 2, &dy40)); /* 40x40, stride 33, pad 1 */
    clcnn_tensor *all[] = {w, w4, dy, dybad, dx, dx40, dy40};
    for (int i = 0; i < 7; i++)
        TU_OK(clcnn_tensor_fill(all[i], 1.0f));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = 2;
    d.pad_h = d.pad_w = 1;
    d.algo = CLCNN_CONV_IMPLICIT_GEMM;
    expect_data_error(&d, dy, w4, dx, CLCNN_ERR_SHAPE,
                      "input 2x3x8x8 has 3 channels but weights 16x4x3x3 expect 4 (groups 1)");
    expect_data_error(&d, dybad, w, dx, CLCNN_ERR_SHAPE,
                      "output gradient dy is 2x16x3x4, expected 2x16x4x4");
    d.groups = 3; /* divides the 3 channels but not the 16 outputs */
    expect_data_error(&d, dy, w, dx, CLCNN_ERR_SHAPE, "groups 3 does not divide the 16");
    d.groups = 1;
    d.stride_h = d.stride_w = 33; /* beyond the phase masks: a clear refusal */
    expect_data_error(&d, dy40, w, dx40, CLCNN_ERR_UNSUPPORTED, "strides of at most 32");
    /* the same shape runs with stride 2 (the tensors were fine) */
    d.stride_h = d.stride_w = 2;
    TU_OK(clcnn_conv2d_backward_data(dev, &d, dy, w, dx));
    for (int i = 0; i < 7; i++)
        clcnn_tensor_free(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_strided),   cmocka_unit_test(test_gemm_variants),
        cmocka_unit_test(test_workspace_chunks), cmocka_unit_test(test_offsets_and_determinism),
        cmocka_unit_test(test_network_layers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
