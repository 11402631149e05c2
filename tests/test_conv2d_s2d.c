/* conv2d forward with winograd on strided layers through space-to-depth (stride S in both
 * dims, dilation 1, groups 1, a kernel of 2S < r, s <= 3S taps, as AlexNet's 11x11 stride 4:
 * lib/ops/conv2d_winograd.c), against the double reference (tests/reference_conv.c):
 * a seeded sweep of random such shapes (strides 2 to 4, rectangular kernels, padding up
 * to and past the stride, odd sizes, batch 1, one input channel, both Winograd tile sizes
 * and paths through $CLCNN_CONV_WINOGRAD_CFG), fused bias and activations, tensor
 * offsets, bit-identical repeats, AUTO on an AlexNet-like first layer, and the refusals:
 * shapes it does not cover, its backward passes, an input too large for the workspace.
 *
 * Tolerance: the 3x3 stride-1 convolution that runs sums L = c*(3S)^2 products (the
 * kernel padded with zeros to 3S x 3S taps), with Winograd's rounding: |got - ref| <=
 * 4e-6 * L + 4e-5 * |ref|, as for winograd in test_conv2d_algos.c. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference_conv.h"
#include "reference_conv_problem.h"

/* The stride when the library should take the shape (stated independently), else 0. */
static int s2d_stride(const ref_conv *cv) {
    int S = cv->stride_h;
    if (S < 2 || cv->stride_w != S || cv->groups != 1 || cv->dilation_h != 1 || cv->dilation_w != 1)
        return 0;
    return cv->r > 2 * S && cv->r <= 3 * S && cv->s > 2 * S && cv->s <= 3 * S ? S : 0;
}

static int check(const rcp_problem *pb, clcnn_conv_algo algo, const char *tag) {
    int S = s2d_stride(&pb->cv);
    size_t ny = ref_conv_y_size(&pb->cv);
    float *y = rcp_run_forward(pb, algo);
    char what[320];
    rcp_describe(&pb->cv, algo, pb->bias, pb->act, what, sizeof what);
    if (tag) {
        strncat(what, " ", sizeof what - strlen(what) - 1);
        strncat(what, tag, sizeof what - strlen(what) - 1);
    }
    double l = (double)pb->cv.c * 9 * S * S;
    int ok = tu_close(what, y, pb->ref, ny, 4e-6 * l, 4e-5);
    free(y);
    return ok;
}

/* A random shape the library takes: strides 2-4, kernels of three strides (rectangular),
 * padding 0 .. S+1, inputs large enough for one output (up to 40 more rows and columns,
 * 8 in small mode), batch 1-3, 1-6 channels, 1-20 filters (8 in small mode). */
static ref_conv random_s2d(tu_rng *rng) {
    int more = tu_small() ? 8 : 40, kmax = tu_small() ? 8 : 20;
    for (;;) {
        int S = tu_rng_int(rng, 2, 4);
        int r = tu_rng_int(rng, 2 * S + 1, 3 * S), s = tu_rng_int(rng, 2 * S + 1, 3 * S);
        int pad = tu_rng_int(rng, 0, S + 1);
        ref_conv cv =
            rcp_conv(tu_rng_int(rng, 1, 3), tu_rng_int(rng, 1, 6), tu_rng_int(rng, r, r + more),
                     tu_rng_int(rng, s, s + more), tu_rng_int(rng, 1, kmax), r, s, S, pad, 1, 1);
        if (ref_conv_out(&cv) && s2d_stride(&cv)) return cv;
    }
}

static void test_sweep(void **state) {
    (void)state;
    /* the heuristic, then each tile size on the fused kernel and the GEMM path */
    const char *cfgs[] = {NULL, "4 0 6 0 0 0", "2 0 6 0 0 0", "4 0 6 0 0 1", "2 4 3 2 5"};
    tu_rng rng = tu_rng_seed(20261207);
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        if (cfgs[c])
            setenv("CLCNN_CONV_WINOGRAD_CFG", cfgs[c], 1);
        else
            unsetenv("CLCNN_CONV_WINOGRAD_CFG");
        for (int i = 0; i < (int)tu_small_count(8, 3); i++) {
            ref_conv cv = random_s2d(&rng);
            rcp_problem pb;
            rcp_problem_init(&pb, &cv, i % 2, i % 3, 100 * c + (uint64_t)i);
            char tag[64];
            snprintf(tag, sizeof tag, "cfg '%s'", cfgs[c] ? cfgs[c] : "heuristic");
            ok &= check(&pb, CLCNN_CONV_WINOGRAD, tag);
            rcp_problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_WINOGRAD_CFG");
    assert_true(ok);
}

/* Hand-picked: AlexNet's first layer (batch 1, smaller input), each kernel size of stride
 * 2, one input channel, padding past the stride, the smallest input for one output. */
static void test_edges(void **state) {
    (void)state;
    const ref_conv shapes[] = {
        rcp_conv(1, 3, 67, 67, 96, 11, 11, 4, 0, 1, 1),
        rcp_conv(2, 3, 40, 37, 16, 11, 11, 4, 2, 1, 1),
        rcp_conv(2, 5, 17, 19, 7, 5, 5, 2, 2, 1, 1),
        rcp_conv(1, 4, 16, 15, 9, 6, 6, 2, 1, 1, 1),
        rcp_conv(3, 1, 28, 28, 8, 5, 5, 2, 2, 1, 1),
        rcp_conv(1, 2, 9, 9, 5, 9, 9, 3, 4, 1, 1),
        rcp_conv(1, 3, 5, 6, 4, 5, 6, 2, 0, 1, 1),
        rcp_conv(2, 3, 31, 29, 130, 12, 12, 4, 3, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        assert_true(s2d_stride(&shapes[i]));
        for (int act = 0; act < 3; act++) {
            rcp_problem pb;
            rcp_problem_init(&pb, &shapes[i], act != 1, act, 300 + 3 * i + (uint64_t)act);
            ok &= check(&pb, CLCNN_CONV_WINOGRAD, NULL);
            rcp_problem_free(&pb);
        }
    }
    assert_true(ok);
}

/* Tensors at element offsets inside NaN-filled buffers, and two runs bit for bit. */
static void test_offsets_determinism(void **state) {
    (void)state;
    rcp_problem pb;
    ref_conv shape = rcp_conv(2, 3, 35, 33, 12, 11, 11, 4, 1, 1, 1);
    rcp_problem_init(&pb, &shape, 1, 2, 61);
    int ok = rcp_check_offsets(&pb, CLCNN_CONV_WINOGRAD, 4e-6 * 3 * 144, 4e-5);
    size_t ny = ref_conv_y_size(&pb.cv);
    float *y1 = rcp_run_forward(&pb, CLCNN_CONV_WINOGRAD);
    float *y2 = rcp_run_forward(&pb, CLCNN_CONV_WINOGRAD);
    assert_memory_equal(y1, y2, ny * sizeof(float));
    free(y1);
    free(y2);
    rcp_problem_free(&pb);
    assert_true(ok);
}

/* AUTO on an AlexNet-like first layer (96 filters of 11x11, stride 4, 55x55 outputs):
 * whatever it runs (winograd on CPUs, lib/ops/conv2d.c) gives the right answer. */
static void test_auto(void **state) {
    (void)state;
    ref_conv cv = rcp_conv(1, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1);
    rcp_problem pb;
    rcp_problem_init(&pb, &cv, 1, 1, 77);
    assert_true(check(&pb, CLCNN_CONV_AUTO, NULL));
    rcp_problem_free(&pb);
}

static void test_refused(void **state) {
    (void)state;
    const char *fwd = "a kernel of three strides each way";
    ref_conv alex = rcp_conv(1, 3, 43, 43, 8, 11, 11, 4, 0, 1, 1);
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &alex, 1, "backward data"); /* forward only */
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &alex, 2, "backward filter");
    ref_conv g2 = rcp_conv(1, 4, 20, 20, 8, 5, 5, 2, 2, 1, 2), /* groups */
        d2 = rcp_conv(1, 3, 30, 30, 4, 5, 5, 2, 2, 2, 1),      /* dilation */
        short_k = rcp_conv(1, 3, 20, 20, 4, 4, 4, 2, 1, 1, 1), /* 4x4 at stride 2: 2 strides */
        long_k = rcp_conv(1, 3, 30, 30, 4, 7, 7, 2, 3, 1, 1),  /* 7x7 at stride 2: 4 strides */
        rect = rcp_conv(1, 3, 30, 30, 4, 5, 3, 2, 1, 1, 1);    /* 5x3: 3 and 2 strides */
    const ref_conv *no[] = {&g2, &d2, &short_k, &long_k, &rect};
    for (int i = 0; i < 5; i++)
        rcp_expect_refused(CLCNN_CONV_WINOGRAD, no[i], 0, fwd);
    /* the rearranged input (3*16 x 11 x 11 floats, 23 KB) past the workspace
     * limit: refused when forced, and AUTO runs something else, correctly */
    setenv("CLCNN_CONV_WORKSPACE_MB", "0.02", 1);
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &alex, 0, fwd);
    rcp_problem pb;
    rcp_problem_init(&pb, &alex, 1, 1, 88);
    int ok = check(&pb, CLCNN_CONV_AUTO, "(small workspace)");
    rcp_problem_free(&pb);
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    assert_true(ok);
}

int main(void) {
    if (!tu_device()) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_offsets_determinism),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
