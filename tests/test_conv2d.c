/* conv2d forward: descriptor helpers, error paths (nothing written), both algorithms
 * (direct, gemm) against the double reference (tests/reference_conv.c) on a seeded sweep
 * of random shapes, hand-picked edge cases and the four anchor layers; workspace
 * chunking, tensor offsets and run-to-run determinism.
 *
 * Tolerance: every output is a sum of L = (c/groups)*r*s products of numbers in [-1, 1].
 * float32 rounding of such a sum grows at most about linearly with L (each partial sum
 * is rounded, relative error 6e-8), so |got - ref| <= 1e-6 * L + 1e-5 * |ref| holds
 * with a wide margin for correct kernels while an indexing error (a missing, extra or
 * misplaced term of size ~0.3) fails it. The anchor layers (L up to 576) are also
 * checked by normalised MSE <= 1e-7. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"
#include "internal.h"
#include "reference_conv.h"

static const clcnn_conv_algo algos[] = {CLCNN_CONV_DIRECT, CLCNN_CONV_GEMM};

/* Runs every algorithm on the problem; returns 1 when all match. */
static int check_problem(const rcp_problem *pb, int use_nmse) {
    int ok = 1;
    for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++)
        ok &= cck_check(pb, algos[a], NULL, use_nmse);
    return ok;
}

/* ---- descriptor helpers -------------------------------------------------------------- */

static void test_desc_and_names(void **state) {
    (void)state;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    assert_int_equal(d.stride_h, 1);
    assert_int_equal(d.stride_w, 1);
    assert_int_equal(d.pad_h, 0);
    assert_int_equal(d.pad_w, 0);
    assert_int_equal(d.dilation_h, 1);
    assert_int_equal(d.dilation_w, 1);
    assert_int_equal(d.groups, 1);
    assert_int_equal(d.algo, CLCNN_CONV_AUTO);
    for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++) {
        const char *name = clcnn_conv_algo_name((clcnn_conv_algo)a);
        assert_int_equal(clcnn_conv_algo_parse(name), a);
    }
    assert_string_equal(clcnn_conv_algo_name(CLCNN_CONV_GEMM), "gemm");
    assert_int_equal(clcnn_conv_algo_parse("DIRECT"), CLCNN_CONV_DIRECT);
    assert_int_equal(clcnn_conv_algo_parse("fft"), -1);
    assert_int_equal(clcnn_conv_algo_parse(NULL), -1);
    assert_string_equal(clcnn_conv_algo_name((clcnn_conv_algo)99), "unknown");
}

static void test_output_shape(void **state) {
    (void)state;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    size_t y[4];
    /* AlexNet conv1: 227 -> (227 - 11)/4 + 1 = 55 */
    d.stride_h = d.stride_w = 4;
    TU_OK(clcnn_conv2d_output_shape(&d, (size_t[]){32, 3, 227, 227}, (size_t[]){96, 3, 11, 11}, y));
    assert_int_equal(y[0], 32);
    assert_int_equal(y[1], 96);
    assert_int_equal(y[2], 55);
    assert_int_equal(y[3], 55);
    /* independent h and w parameters; dilation 2 makes a 3-tap kernel span 5 */
    d = clcnn_conv2d_desc_default();
    d.stride_h = 2;
    d.pad_w = 3;
    d.dilation_h = 2;
    TU_OK(clcnn_conv2d_output_shape(&d, (size_t[]){1, 4, 10, 7}, (size_t[]){6, 4, 3, 2}, y));
    assert_int_equal(y[2], (10 - 5) / 2 + 1);
    assert_int_equal(y[3], 7 + 6 - 2 + 1);
    /* depthwise */
    d = clcnn_conv2d_desc_default();
    d.groups = 8;
    d.pad_h = d.pad_w = 1;
    TU_OK(clcnn_conv2d_output_shape(&d, (size_t[]){2, 8, 5, 5}, (size_t[]){8, 1, 3, 3}, y));
    assert_int_equal(y[1], 8);
    assert_int_equal(y[2], 5);
}

/* ---- error paths ---------------------------------------------------------------------- */

static void expect_shape_error(const clcnn_conv2d_desc *d, const size_t x[4], const size_t w[4],
                               clcnn_status want, const char *needle) {
    size_t y[4] = {7, 7, 7, 7};
    clcnn_status s = clcnn_conv2d_output_shape(d, x, w, y);
    if (s != want || !strstr(clcnn_last_error(), needle))
        fail_msg("got %s '%s', want %s containing '%s'", clcnn_status_str(s), clcnn_last_error(),
                 clcnn_status_str(want), needle);
    for (int i = 0; i < 4; i++)
        assert_int_equal(y[i], 7);
}

static void test_output_shape_errors(void **state) {
    (void)state;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    size_t x[4] = {2, 3, 8, 8}, w[4] = {16, 4, 3, 3};
    expect_shape_error(&d, x, w, CLCNN_ERR_SHAPE,
                       "input 2x3x8x8 has 3 channels but weights 16x4x3x3 expect 4 (groups 1)");
    expect_shape_error(&d, (size_t[]){2, 0, 8, 8}, (size_t[]){16, 3, 3, 3}, CLCNN_ERR_SHAPE,
                       "zero");
    expect_shape_error(&d, (size_t[]){2, 3, 8, 8}, (size_t[]){0, 3, 3, 3}, CLCNN_ERR_SHAPE, "zero");
    /* kernel larger than the (padded) input */
    expect_shape_error(&d, (size_t[]){1, 3, 4, 4}, (size_t[]){2, 3, 5, 5}, CLCNN_ERR_SHAPE,
                       "empty");
    d.dilation_w = 3; /* 3 taps span 7 > 6 */
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, CLCNN_ERR_SHAPE,
                       "empty");
    d = clcnn_conv2d_desc_default();
    d.groups = 2;
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 1, 3, 3}, CLCNN_ERR_SHAPE,
                       "groups 2 does not divide the 3 channels");
    expect_shape_error(&d, (size_t[]){1, 4, 6, 6}, (size_t[]){3, 2, 3, 3}, CLCNN_ERR_SHAPE,
                       "groups 2 does not divide the 3 output channels");
    d.groups = 0;
    expect_shape_error(&d, (size_t[]){1, 4, 6, 6}, (size_t[]){4, 4, 3, 3}, CLCNN_ERR_INVALID_ARG,
                       "groups 0");
    d = clcnn_conv2d_desc_default();
    d.pad_h = -1;
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, CLCNN_ERR_INVALID_ARG,
                       "padding -1x0");
    d = clcnn_conv2d_desc_default();
    d.stride_w = 0;
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, CLCNN_ERR_INVALID_ARG,
                       "stride 1x0");
    d = clcnn_conv2d_desc_default();
    d.dilation_h = 0;
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, CLCNN_ERR_INVALID_ARG,
                       "dilation 0x1");
    d = clcnn_conv2d_desc_default();
    d.algo = (clcnn_conv_algo)42;
    expect_shape_error(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, CLCNN_ERR_INVALID_ARG,
                       "algorithm 42");
    assert_int_equal(clcnn_conv2d_output_shape(NULL, x, w, (size_t[4]){0}), CLCNN_ERR_INVALID_ARG);
    d = clcnn_conv2d_desc_default();
    assert_int_equal(
        clcnn_conv2d_output_shape(&d, (size_t[]){1, 3, 6, 6}, (size_t[]){2, 3, 3, 3}, NULL),
        CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_conv2d_output_shape(&d, NULL, (size_t[]){2, 3, 3, 3}, (size_t[4]){0}),
                     CLCNN_ERR_INVALID_ARG);
}

/* Forward with the given tensors must fail with want and leave y (filled with 42) as it
 * was. */
static void expect_forward_error(const clcnn_conv2d_desc *d, const clcnn_tensor *x,
                                 const clcnn_tensor *w, const clcnn_tensor *b, clcnn_tensor *y,
                                 clcnn_activation act, clcnn_status want, const char *needle) {
    TU_OK(clcnn_tensor_fill(y, 42.0f));
    tu_expect_status(clcnn_conv2d_forward(tu_device(), d, x, w, b, y, act), want, needle);
    tu_expect_untouched(y, 42.0f);
}

static void test_forward_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x = NULL, *w = NULL, *w4 = NULL, *y = NULL, *ybad = NULL, *b = NULL, *bbad = NULL,
                 *x3 = NULL, *xi = NULL;
    TU_OK(clcnn_tensor_create4(dev, 2, 3, 8, 8, &x));
    TU_OK(clcnn_tensor_create4(dev, 16, 3, 3, 3, &w));
    TU_OK(clcnn_tensor_create4(dev, 16, 4, 3, 3, &w4));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 6, 6, &y));
    TU_OK(clcnn_tensor_create4(dev, 2, 16, 8, 8, &ybad));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){16}, &b));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){15}, &bbad));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 3, (size_t[]){2, 3, 64}, &x3));
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 4, (size_t[]){2, 3, 8, 8}, &xi));
    TU_OK(clcnn_tensor_fill(x, 1.0f));
    TU_OK(clcnn_tensor_fill(w, 1.0f));
    TU_OK(clcnn_tensor_fill(w4, 1.0f));
    TU_OK(clcnn_tensor_fill(b, 1.0f));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    expect_forward_error(&d, x, w4, NULL, y, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE,
                         "input 2x3x8x8 has 3 channels but weights 16x4x3x3 expect 4 (groups 1)");
    expect_forward_error(
        &d, x, w, NULL, ybad, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE,
        "output y is 2x16x8x8, expected 2x16x6x6 from input x 2x3x8x8 and weights w 16x3x3x3");
    expect_forward_error(&d, x, w, bbad, y, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE,
                         "bias b 15 has 15 elements, expected 16");
    expect_forward_error(&d, x3, w, NULL, y, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE, "4 dims");
    expect_forward_error(&d, xi, w, NULL, y, CLCNN_ACT_NONE, CLCNN_ERR_INVALID_ARG, "int32");
    expect_forward_error(&d, NULL, w, NULL, y, CLCNN_ACT_NONE, CLCNN_ERR_INVALID_ARG, "NULL");
    expect_forward_error(&d, x, w, NULL, y, (clcnn_activation)7, CLCNN_ERR_INVALID_ARG,
                         "activation 7");
    expect_forward_error(&d, y, w, NULL, y, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE, "channels");
    d.pad_w = -2;
    expect_forward_error(&d, x, w, b, y, CLCNN_ACT_NONE, CLCNN_ERR_INVALID_ARG, "padding 0x-2");
    d = clcnn_conv2d_desc_default();
    d.stride_h = 0;
    expect_forward_error(&d, x, w, b, y, CLCNN_ACT_NONE, CLCNN_ERR_INVALID_ARG, "stride 0x1");
    d = clcnn_conv2d_desc_default();
    d.groups = 2; /* 3 channels */
    expect_forward_error(&d, x, w, b, y, CLCNN_ACT_NONE, CLCNN_ERR_SHAPE, "groups 2");
    /* an algorithm forced where it does not apply fails cleanly (depthwise on a dense
     * layer; the other algorithms' limits: tests/test_conv2d_algos.c) */
    d = clcnn_conv2d_desc_default();
    d.algo = CLCNN_CONV_DEPTHWISE;
    expect_forward_error(&d, x, w, b, y, CLCNN_ACT_RELU, CLCNN_ERR_UNSUPPORTED, "depthwise");
    /* NULL descriptor / device */
    expect_forward_error(NULL, x, w, b, y, CLCNN_ACT_NONE, CLCNN_ERR_INVALID_ARG, "descriptor");
    d = clcnn_conv2d_desc_default();
    assert_int_equal(clcnn_conv2d_forward(NULL, &d, x, w, b, y, CLCNN_ACT_NONE),
                     CLCNN_ERR_INVALID_ARG);
    /* and a good call works with the same tensors: 27 ones + bias 1 */
    TU_OK(clcnn_conv2d_forward(dev, &d, x, w, b, y, CLCNN_ACT_RELU));
    float *h = tu_download(y);
    for (size_t i = 0; i < clcnn_tensor_numel(y); i++)
        assert_true(h[i] == 28.0f);
    free(h);
    clcnn_tensor *all[] = {x, w, w4, y, ybad, b, bbad, x3, xi};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clcnn_tensor_free(all[i]);
}

/* ---- correctness ---------------------------------------------------------------------- */

/* Hand-picked edge cases: batch 1, 1x1 images, odd sizes, channels that are not
 * multiples of 4, stride > kernel, padding >= kernel, dilation, asymmetric parameters,
 * groups and depthwise (with a channel multiplier), every activation. */
static void test_edge_cases(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),    /* 1x1 image, 1x1 kernel */
        rcp_conv(1, 3, 1, 1, 5, 3, 3, 1, 1, 1, 1),    /* 1x1 image, padding makes room */
        rcp_conv(2, 5, 7, 9, 7, 3, 3, 1, 1, 1, 1),    /* odd everything */
        rcp_conv(1, 3, 11, 11, 6, 2, 2, 3, 0, 1, 1),  /* stride > kernel */
        rcp_conv(2, 2, 5, 5, 3, 3, 3, 1, 4, 1, 1),    /* padding >= kernel */
        rcp_conv(1, 4, 13, 13, 4, 3, 3, 1, 2, 2, 1),  /* dilation 2 */
        rcp_conv(2, 6, 9, 8, 6, 3, 3, 2, 1, 1, 6),    /* depthwise stride 2 */
        rcp_conv(1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 4),    /* depthwise multiplier 2 */
        rcp_conv(2, 6, 7, 7, 9, 3, 3, 1, 1, 1, 3),    /* groups 3 */
        rcp_conv(3, 16, 6, 6, 24, 1, 1, 1, 0, 1, 1),  /* 1x1 (gemm without im2col) */
        rcp_conv(2, 16, 6, 6, 24, 1, 1, 1, 0, 1, 4),  /* grouped 1x1 */
        rcp_conv(1, 8, 9, 9, 16, 1, 1, 2, 0, 1, 1),   /* 1x1 stride 2 (needs im2col) */
        rcp_conv(1, 4, 6, 6, 4, 1, 1, 1, 1, 1, 1),    /* 1x1 with padding */
        rcp_conv(1, 3, 20, 30, 10, 5, 5, 1, 2, 1, 1), /* wide rows */
        rcp_conv(2, 9, 17, 3, 33, 3, 1, 1, 1, 1, 1),  /* r != s, 33 output channels */
        rcp_conv(1, 1, 40, 40, 1, 7, 7, 3, 3, 1, 1),  /* single channel, large kernel */
    };
    /* asymmetric stride / padding / dilation */
    ref_conv asym = rcp_conv(2, 4, 10, 12, 5, 3, 2, 1, 0, 1, 1);
    asym.stride_h = 2;
    asym.pad_w = 2;
    asym.dilation_w = 3;
    int ok = 1;
    for (size_t i = 0; i <= sizeof cases / sizeof cases[0]; i++) {
        const ref_conv *cv = i < sizeof cases / sizeof cases[0] ? &cases[i] : &asym;
        for (int act = 0; act < 3; act++) {
            if (tu_small() && act != (int)(i % 3)) continue; /* small: one epilogue each */
            rcp_problem pb;
            rcp_problem_init(&pb, cv, act != 1, act, 100 + i * 3 + (size_t)act);
            ok &= check_problem(&pb, 0);
            rcp_problem_free(&pb);
        }
    }
    assert_true(ok);
}

static void test_random_sweep(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(20240611);
    int ok = 1, cases = (int)tu_small_count(220, 12);
    for (int i = 0; i < cases; i++) {
        ref_conv cv = rcp_random_conv(&rng, 3);
        int bias = tu_rng_int(&rng, 0, 1), act = tu_rng_int(&rng, 0, 2);
        rcp_problem pb;
        rcp_problem_init(&pb, &cv, bias, act, 5000 + (uint64_t)i);
        ok &= check_problem(&pb, 0);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

/* The anchor layers. The batch is cut to 2 for the three large ones: images are
 * computed independently (the batch only enters through the image offset, which n = 2
 * already exercises, and which the random sweep covers with n up to 3), while the
 * double reference of the full batches would cost ~10^10 multiply-adds. LeNet keeps its
 * full batch of 256. */
static void test_anchor_shapes(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    ref_conv alex = rcp_conv(2, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1);
    ref_conv vgg = rcp_conv(2, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1);
    ref_conv resnet = rcp_conv(2, 256, 14, 14, 256, 1, 1, 1, 0, 1, 1);
    ref_conv lenet = rcp_conv(256, 1, 28, 28, 32, 5, 5, 1, 2, 1, 1);
    const ref_conv *anchors[] = {&alex, &vgg, &resnet, &lenet};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, anchors[i], 1, 1, 777 + (uint64_t)i);
        ok &= check_problem(&pb, 1);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

/* The direct kernels with other tile parameters than this device's table picks (the
 * GPU table's 4x2x4 and 1x2x4, and odd tiles with 2-wide vectors), through the
 * development override $CLCNN_CONV_DIRECT_CFG="TILE_K TILE_P VEC TILE_C". */
static void test_direct_tile_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"4 2 4 2", "1 2 4 1", "3 3 2 3"};
    tu_rng rng = tu_rng_seed(4242);
    int ok = 1;
    for (size_t c = 0; c < 3; c++) {
        setenv("CLCNN_CONV_DIRECT_CFG", cfgs[c], 1);
        for (int i = 0; i < (int)tu_small_count(25, 3); i++) {
            ref_conv cv = rcp_random_conv(&rng, 3);
            rcp_problem pb;
            rcp_problem_init(&pb, &cv, i & 1, i % 3, 7000 + (uint64_t)i);
            char tag[64];
            snprintf(tag, sizeof tag, "tiles %s", cfgs[c]);
            ok &= cck_check(&pb, CLCNN_CONV_DIRECT, tag, 0);
            rcp_problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_DIRECT_CFG");
    assert_true(ok);
}

/* AUTO picks one of the built algorithms and gives the right answer either way. */
static void test_auto(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 32, 12, 12, 32, 3, 3, 1, 1, 1, 1), /* large reduction: gemm */
        rcp_conv(2, 8, 12, 12, 8, 3, 3, 1, 1, 1, 8),   /* depthwise: direct */
        rcp_conv(2, 32, 7, 7, 64, 1, 1, 1, 0, 1, 1),   /* 1x1 */
        rcp_conv(1, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1),     /* small */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &cases[i], 1, 1, 900 + i);
        ok &= cck_check(&pb, CLCNN_CONV_AUTO, NULL, 0);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

/* A tiny workspace limit forces the gemm path to chunk the batch, and to split single
 * images into bands of output rows; the result must not change. */
static void test_gemm_workspace_chunking(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(5, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1),  /* col 972 B per image */
        rcp_conv(3, 4, 10, 7, 6, 3, 2, 2, 1, 1, 2), /* grouped, strided */
    };
    const char *limits[] = {"0.002", "0.0005", "0.00001"}; /* ~2 images, ~1 row band, 1 row */
    int ok = 1;
    for (size_t l = 0; l < 3; l++) {
        setenv("CLCNN_CONV_WORKSPACE_MB", limits[l], 1);
        for (size_t i = 0; i < 2; i++) {
            rcp_problem pb;
            rcp_problem_init(&pb, &cases[i], 1, 2, 40 + i);
            char tag[64];
            snprintf(tag, sizeof tag, "workspace MB %s", limits[l]);
            ok &= cck_check(&pb, CLCNN_CONV_GEMM, tag, 0);
            rcp_problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    assert_true(ok);
}

static void test_tensor_offsets(void **state) {
    (void)state;
    ref_conv cases[] = {rcp_conv(2, 6, 7, 9, 8, 3, 3, 1, 1, 1, 2),
                        rcp_conv(2, 8, 5, 5, 16, 1, 1, 1, 0, 1, 1)};
    int ok = 1;
    for (size_t i = 0; i < 2; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &cases[i], 1, 0, 60 + i);
        const ref_conv *cv = &pb.cv;
        size_t xs[4] = {cv->n, cv->c, cv->h, cv->w},
               ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
        size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
        for (size_t a = 0; a < 2; a++) {
            clcnn_tensor *x = rcp_offset_tensor(4, xs, 3, pb.x),
                         *w = rcp_offset_tensor(4, ws, 17, pb.w);
            clcnn_tensor *b = rcp_offset_tensor(1, (size_t[]){cv->k}, 1, pb.b);
            clcnn_tensor *y = rcp_offset_tensor(4, ys, 11, NULL);
            clcnn_conv2d_desc d = rcp_make_desc(cv, algos[a]);
            TU_OK(clcnn_conv2d_forward(tu_device(), &d, x, w, b, y, CLCNN_ACT_NONE));
            size_t ny = ref_conv_y_size(cv);
            float *all = malloc((ny + 16) * sizeof(float));
            assert_int_equal(clEnqueueReadBuffer(clcnn_device_queue(tu_device()),
                                                 clcnn_tensor_mem(y), CL_TRUE, 0,
                                                 (ny + 16) * sizeof(float), all, 0, NULL, NULL),
                             CL_SUCCESS);
            char what[256];
            rcp_describe(cv, algos[a], 1, 0, what, sizeof what);
            strcat(what, " (offsets)");
            ok &= tu_close(what, all + 11, pb.ref, ny, cck_atol(algos[a], cv), cck_rtol(algos[a]));
            /* nothing written before or after the view */
            for (size_t j = 0; j < 11; j++)
                ok &= isnan(all[j]);
            for (size_t j = ny + 11; j < ny + 16; j++)
                ok &= isnan(all[j]);
            free(all);
            clcnn_tensor_free(x);
            clcnn_tensor_free(w);
            clcnn_tensor_free(b);
            clcnn_tensor_free(y);
        }
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

/* +inf at the first or last column of some rows of x: the direct kernels walk stride-1
 * planes as one run, and a lane past a row end that reached such a value (instead of
 * being zeroed) would turn finite outputs into NaN. Direct only: gemm multiplies
 * im2col's padding zeros by the weights, never by x, but its sums are checked elsewhere. */
static void test_direct_row_ends(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1), rcp_conv(2, 5, 9, 11, 20, 5, 5, 1, 2, 1, 1),
        rcp_conv(1, 4, 9, 9, 6, 3, 3, 1, 2, 2, 2), rcp_conv(2, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1)};
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &cases[i], 1, 0, 90 + i);
        const ref_conv *cv = &pb.cv;
        size_t nx = ref_conv_x_size(cv);
        for (size_t row = 1; row * (size_t)cv->w < nx; row += 5)
            pb.x[row * (size_t)cv->w + (row % 2 ? 0 : (size_t)cv->w - 1)] = INFINITY;
        double *xd = rcp_to_double(pb.x, nx), *wd = rcp_to_double(pb.w, ref_conv_w_size(cv));
        double *bd = rcp_to_double(pb.b, (size_t)cv->k);
        ref_conv2d_forward(cv, xd, wd, bd, 0, 0.01, pb.ref);
        free(xd);
        free(wd);
        free(bd);
        ok &= cck_check(&pb, CLCNN_CONV_DIRECT, NULL, 0);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

/* Two runs of the same call give bit-identical outputs. */
static void test_determinism(void **state) {
    (void)state;
    ref_conv cases[] = {rcp_conv(3, 12, 15, 15, 20, 3, 3, 1, 1, 1, 1),
                        rcp_conv(2, 8, 11, 11, 8, 5, 5, 2, 2, 1, 4)};
    for (size_t i = 0; i < 2; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &cases[i], 1, 1, 70 + i);
        for (size_t a = 0; a < 2; a++) {
            float *y1 = rcp_run_forward(&pb, algos[a]);
            float *y2 = rcp_run_forward(&pb, algos[a]);
            assert_memory_equal(y1, y2, ref_conv_y_size(&pb.cv) * sizeof(float));
            free(y1);
            free(y2);
        }
        rcp_problem_free(&pb);
    }
}

int main(void) {
    if (!tu_device()) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_desc_and_names),
        cmocka_unit_test(test_output_shape),
        cmocka_unit_test(test_output_shape_errors),
        cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_anchor_shapes),
        cmocka_unit_test(test_direct_tile_variants),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_gemm_workspace_chunking),
        cmocka_unit_test(test_tensor_offsets),
        cmocka_unit_test(test_direct_row_ends),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
