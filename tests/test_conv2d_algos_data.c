/* The stride-1 data gradients of implicit_gemm (the transposed convolution as a forward
 * GEMM) and winograd (3x3) against the double reference (tests/reference_conv.c): random
 * shapes (padding up to and beyond the kernel's reach, so the transposed padding is
 * negative; dilation, groups, 1x1), edge cases, the anchors with stride 1; and winograd's
 * GEMM path (forward and data gradient: where the heuristic takes it, forced on random
 * shapes, tensors at offsets, bit-identical repeats, chunks of images). Tolerances:
 * conv_check.h. Strided data gradients: test_conv2d_dgrad.c. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"

/* Random stride-1 shapes (padding up to and beyond the kernel's reach, so the transposed
 * convolution's padding is negative, dilation, groups, 1x1) and edge cases. */
static void test_implicit_backward_data(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(8675309);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(120, 10); i++) {
        ref_conv cv = cck_random_any(&rng);
        cv.stride_h = cv.stride_w = 1;
        if (!ref_conv_out(&cv)) continue;
        ok &= cck_check_data(CLCNN_CONV_IMPLICIT_GEMM, &cv, 9000 + (uint64_t)i, 0);
    }
    ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),   rcp_conv(2, 3, 5, 5, 4, 1, 1, 1, 2, 1, 1),
        rcp_conv(1, 5, 7, 9, 3, 3, 3, 1, 3, 1, 1),   rcp_conv(2, 4, 9, 9, 6, 3, 3, 1, 0, 2, 2),
        rcp_conv(1, 6, 8, 8, 6, 3, 3, 1, 1, 1, 6),   rcp_conv(1, 40, 6, 7, 130, 3, 3, 1, 1, 1, 1),
        rcp_conv(1, 3, 17, 29, 8, 5, 3, 1, 2, 1, 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ok &= cck_check_data(CLCNN_CONV_IMPLICIT_GEMM, &cases[i], 9500 + i, 0);
    /* anchors with stride 1, reduced batch (as for forward) */
    ref_conv vgg = rcp_conv(2, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1);
    ref_conv resnet = rcp_conv(2, 256, 14, 14, 256, 1, 1, 1, 0, 1, 1);
    if (!tu_small()) ok &= cck_check_data(CLCNN_CONV_IMPLICIT_GEMM, &vgg, 9600, 1);
    if (!tu_small()) ok &= cck_check_data(CLCNN_CONV_IMPLICIT_GEMM, &resnet, 9601, 1);
    assert_true(ok);
}

/* Winograd backward data (3x3, stride 1): random shapes with padding 0-3 (so the
 * transposed padding 2 - pad runs from 2 down to -1), groups, and the VGG anchor.
 * Tolerance as for winograd forward. */
static void test_winograd_backward_data(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(1123581321);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(100, 10); i++) {
        ref_conv cv = cck_random_winograd(&rng);
        ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &cv, 9700 + (uint64_t)i, 0);
    }
    ref_conv vgg = rcp_conv(2, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1);
    ref_conv wide = rcp_conv(1, 40, 6, 7, 130, 3, 3, 1, 1, 1, 1); /* channel chunks */
    if (!tu_small()) ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &vgg, 9800, 1);
    ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &wide, 9801, 0);
    assert_true(ok);
}

/* The GEMM path where the heuristic takes it (128 channels and more per group: F(2x2) on
 * 7x7, F(4x4) on 14x13), forward and backward data; forced on random backward-data
 * shapes, tensors at element offsets and bit-identical repeats; and in chunks of images
 * (a small $CLCNN_CONV_WORKSPACE_MB: 5 images as 2 + 2 + 1, the last chunk its own GEMM). */
static void test_winograd_gemm_path(void **state) {
    (void)state;
    int ok = 1;
    const ref_conv big[] = {rcp_conv(2, 128, 7, 7, 130, 3, 3, 1, 1, 1, 1),
                            rcp_conv(1, 130, 14, 13, 128, 3, 3, 1, 0, 1, 1),
                            rcp_conv(1, 256, 6, 5, 256, 3, 3, 1, 2, 1, 2)};
    for (int i = 0; i < 3; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &big[i], 1, i % 3, 7300 + (uint64_t)i);
        ok &= cck_check(&pb, CLCNN_CONV_WINOGRAD, "(GEMM path)", 1);
        rcp_problem_free(&pb);
        ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &big[i], 7310 + (uint64_t)i, 1);
    }
    cck_determinism(CLCNN_CONV_WINOGRAD, &big[0]);
    setenv("CLCNN_CONV_WINOGRAD_CFG", "4 0 6 0 0 1", 1);
    const ref_conv grouped = rcp_conv(2, 6, 7, 9, 8, 3, 3, 1, 1, 1, 2);
    cck_offsets(CLCNN_CONV_WINOGRAD, &grouped); /* tensors at offsets, groups 2 */
    tu_rng rng = tu_rng_seed(7320);
    for (int i = 0; i < (int)tu_small_count(24, 8); i++) {
        ref_conv cv = cck_random_winograd(&rng);
        ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &cv, 7330 + (uint64_t)i, 0);
    }
    /* 36 * 3x4 tiles * 11 channels * 4 bytes = 19008 bytes per image: 2 per 0.04 MB */
    setenv("CLCNN_CONV_WORKSPACE_MB", "0.04", 1);
    const ref_conv five = rcp_conv(5, 5, 9, 10, 6, 3, 3, 1, 1, 1, 1);
    rcp_problem pb;
    rcp_problem_init(&pb, &five, 1, 1, 7340);
    ok &= cck_check(&pb, CLCNN_CONV_WINOGRAD, "(GEMM path in chunks)", 0);
    rcp_problem_free(&pb);
    ok &= cck_check_data(CLCNN_CONV_WINOGRAD, &five, 7341, 0);
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    unsetenv("CLCNN_CONV_WINOGRAD_CFG");
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implicit_backward_data),
        cmocka_unit_test(test_winograd_backward_data),
        cmocka_unit_test(test_winograd_gemm_path),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
