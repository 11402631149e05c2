/* Pointwise convolutions (1x1, stride 1, no padding) with implicit_gemm: on a CPU they take
 * the register blocks of several tiles (TN tiles of 16 plane positions share each
 * broadcast weight; TM 8 x TN 3, or TM 6 x TN 4 when the weights exceed 512 KB, see
 * pick_cfg in lib/ops/conv2d_implicit.c). Checked against the double reference
 * (tests/reference_conv.c): a seeded sweep of odd planes (7x7, 13x13, 1x1, 5x3 ...), batch
 * 1, channel counts that are not multiples of 16, groups, bias and activations; tile
 * counts that leave the last register block short; weights over 512 KB (the TM 6 x TN 4
 * choice); more input channels than one chunk (partial sums kept in y); every TN and
 * several tiles per work-item through $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC NT TN";
 * tensor offsets; the data gradients that run through the same kernel (stride 1, and
 * stride 2 through the phase decomposition, whose phase convolution is pointwise); and
 * determinism: bit-identical results run to run and across TM and TN (the reduction
 * order of an output does not depend on them).
 *
 * Tolerance (inputs, weights and bias uniform in [-1, 1], L = c/groups terms):
 * |got - ref| <= 1e-6 * L + 1e-5 * |ref|, as for implicit_gemm in test_conv2d_algos.c
 * (float32 rounding grows at most about linearly with L; a missing or misplaced term
 * ~0.3 fails it). */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"
#include "internal.h"
#include "reference_conv.h"

#define ENV "CLCNN_CONV_IMPLICIT_CFG"

static ref_conv pw_conv(int n, int c, int h, int w, int k, int groups) {
    return rcp_conv(n, c, h, w, k, 1, 1, 1, 0, 1, groups);
}

static double atol_of(const ref_conv *cv) {
    return 1e-6 * (double)(cv->c / cv->groups);
}

/* Forward with implicit_gemm against the reference; returns 1 on a match. */
static int check(const ref_conv *shape, int bias, int act, uint64_t seed, const char *tag) {
    rcp_problem pb;
    rcp_problem_init(&pb, shape, bias, act, seed);
    float *y = rcp_run_forward(&pb, CLCNN_CONV_IMPLICIT_GEMM);
    char what[320];
    rcp_describe(&pb.cv, CLCNN_CONV_IMPLICIT_GEMM, bias, act, what, sizeof what);
    if (tag) {
        strncat(what, " ", sizeof what - strlen(what) - 1);
        strncat(what, tag, sizeof what - strlen(what) - 1);
    }
    int ok = tu_close(what, y, pb.ref, ref_conv_y_size(&pb.cv), atol_of(&pb.cv), 1e-5);
    free(y);
    rcp_problem_free(&pb);
    return ok;
}

/* A random pointwise shape: batch 1-3, planes 1x1 .. 15x15 (odd ones included), 1-70
 * input and output channels, sometimes grouped. */
static ref_conv random_pw(tu_rng *rng) {
    int groups = tu_rng_int(rng, 0, 5) == 0 ? tu_rng_int(rng, 2, 3) : 1;
    int cpg = tu_rng_int(rng, 1, 70 / groups), kpg = tu_rng_int(rng, 1, 70 / groups);
    return pw_conv(tu_rng_int(rng, 1, 3), groups * cpg, tu_rng_int(rng, 1, 15),
                   tu_rng_int(rng, 1, 15), groups * kpg, groups);
}

static void test_sweep(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(424242);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(80, 8); i++) {
        ref_conv cv = random_pw(&rng);
        ok &= check(&cv, i & 1, i % 3, 100 + (uint64_t)i, NULL);
    }
    assert_true(ok);
}

/* Hand-picked: 7x7 and 13x13 planes (4 and 11 tiles: the last register block of 3 has 1
 * or 2 tiles, the last tile 1 or 9 lanes), batch 1, channels not multiples of 16 or of TM,
 * weights over 512 KB (TM 6 x TN 4, channels split across work-items), more input channels
 * than one chunk of 1024 (partial sums in y), a single position; tiles that run on from
 * one image into the next (batch 8 of 7x7, MobileNet-V2's last layers; batch 5 of 3x3:
 * one tile over three images); planes with enough tiles for long runs of them per
 * work-item (on AVX-512 CPUs 9 and 48 tiles, and 6 over two chunks of a reduction of
 * 1100). */
static void test_edges(void **state) {
    (void)state;
    ref_conv cases[] = {
        pw_conv(1, 1, 1, 1, 1, 1),      pw_conv(1, 37, 7, 7, 23, 1),
        pw_conv(1, 64, 13, 13, 100, 1), pw_conv(2, 17, 13, 13, 9, 1),
        pw_conv(3, 33, 7, 7, 65, 1),    pw_conv(1, 20, 1, 17, 31, 1),
        pw_conv(1, 384, 7, 7, 390, 1),  pw_conv(2, 400, 5, 5, 333, 1),
        pw_conv(1, 1100, 3, 5, 12, 1),  pw_conv(2, 12, 9, 11, 18, 3),
        pw_conv(1, 2, 4, 4, 1000, 2),   pw_conv(2, 256, 14, 14, 256, 1),
        pw_conv(8, 40, 7, 7, 20, 1),    pw_conv(5, 24, 3, 3, 13, 1),
        pw_conv(3, 70, 41, 43, 20, 1),  pw_conv(8, 300, 55, 57, 10, 1),
        pw_conv(4, 1100, 30, 31, 8, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ref_conv *cv = &cases[i];
        if (tu_small() && (double)cv->n * cv->c * cv->h * cv->w * cv->k / cv->groups > 4e6)
            continue; /* small mode: the three largest (>= 6M multiply-adds) */
        ok &= check(cv, (int)(i & 1), (int)(i % 3), 500 + i, NULL);
    }
    assert_true(ok);
}

/* Parameters other than the automatic choice: each TN with TM that do not divide the
 * channels, several register blocks per work-item (NT 6 and 8; NT 5 rounds up to 6),
 * tiny chunks of the reduction (KC 5 and 16: partial sums kept in y between chunks), a
 * local size of 1, the previous single-tile configuration and the choices for CPUs with
 * 16 vector registers (cc_cpu_f16_accumulators: AVX2's TM 6, SSE's TM 2, TN 1). */
static void test_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"16 16 4 1024 0 1", "8 16 4 1024 0 2", "7 16 4 16 0 3",
                          "6 16 4 1024 8 4",  "5 16 1 5 5 3",    "3 16 4 1024 0 4",
                          "6 16 4 1024 0 1",  "2 16 4 1024 0 1"};
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        setenv(ENV, cfgs[c], 1);
        tu_rng rng = tu_rng_seed(777 + c);
        char tag[64];
        snprintf(tag, sizeof tag, "cfg '%s'", cfgs[c]);
        for (int i = 0; i < (int)tu_small_count(8, 1); i++) {
            ref_conv cv = random_pw(&rng);
            ok &= check(&cv, i & 1, i % 3, 900 + (uint64_t)i, tag);
        }
        ref_conv a = pw_conv(1, 40, 13, 13, 21, 1), b = pw_conv(2, 19, 7, 7, 30, 1);
        ok &= check(&a, 1, 1, 990, tag);
        ok &= check(&b, 0, 2, 991, tag);
    }
    unsetenv(ENV);
    assert_true(ok);
}

/* Every tensor at an element offset inside a NaN-filled buffer (reading outside the view
 * poisons the result, writing outside it is seen). */
static void offsets_case(const ref_conv *shape) {
    rcp_problem pb;
    rcp_problem_init(&pb, shape, 1, 2, 61);
    int ok = rcp_check_offsets(&pb, CLCNN_CONV_IMPLICIT_GEMM, atol_of(&pb.cv), 1e-5);
    rcp_problem_free(&pb);
    assert_true(ok);
}

static void test_offsets(void **state) {
    (void)state;
    ref_conv a = pw_conv(2, 19, 7, 7, 35, 1), b = pw_conv(1, 400, 13, 13, 330, 1);
    offsets_case(&a);
    offsets_case(&b);
}

/* Bit-identical results run to run, and across the register blocking: TN 1, 2, 3, 4 with
 * TM 16, 8, 6 and the same chunk of the reduction (KC 64, which fits any device's local
 * memory for these NT) give the same fma chain per output. */
static void test_determinism(void **state) {
    (void)state;
    ref_conv shapes[] = {pw_conv(2, 70, 13, 13, 45, 1), pw_conv(1, 300, 7, 7, 420, 1)};
    const char *cfgs[] = {"16 16 1 64 0 1", "8 16 1 64 0 2", "8 16 1 64 0 3", "6 16 1 64 0 4"};
    for (size_t s = 0; s < 2; s++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &shapes[s], 1, 1, 71 + s);
        size_t ny = ref_conv_y_size(&pb.cv);
        float *y0 = rcp_run_forward(&pb, CLCNN_CONV_IMPLICIT_GEMM);
        float *y1 = rcp_run_forward(&pb, CLCNN_CONV_IMPLICIT_GEMM);
        assert_memory_equal(y0, y1, ny * sizeof(float));
        free(y0);
        free(y1);
        float *yc[4];
        for (size_t c = 0; c < 4; c++) {
            setenv(ENV, cfgs[c], 1);
            yc[c] = rcp_run_forward(&pb, CLCNN_CONV_IMPLICIT_GEMM);
            unsetenv(ENV);
        }
        for (size_t c = 1; c < 4; c++)
            assert_memory_equal(yc[0], yc[c], ny * sizeof(float));
        for (size_t c = 0; c < 4; c++)
            free(yc[c]);
        rcp_problem_free(&pb);
    }
}

/* dx with implicit_gemm against the reference: stride 1 (the transposed convolution is
 * pointwise) and stride 2 (its one phase convolution is pointwise: the output plane is
 * ceil(h/2) x ceil(w/2), dy's). */
static void test_backward_data(void **state) {
    (void)state;
    ref_conv cases[] = {
        pw_conv(1, 37, 7, 7, 23, 1),
        pw_conv(2, 64, 13, 13, 45, 1),
        pw_conv(1, 390, 7, 7, 384, 1),
        pw_conv(3, 10, 5, 9, 70, 2),
        rcp_conv(1, 40, 13, 13, 33, 1, 1, 2, 0, 1, 1),
        rcp_conv(2, 21, 14, 15, 50, 1, 1, 2, 0, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ok &= cck_check_data(CLCNN_CONV_IMPLICIT_GEMM, &cases[i], 1300 + i, 0);
    assert_true(ok);
}

int main(void) {
    if (!tu_device()) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),       cmocka_unit_test(test_edges),
        cmocka_unit_test(test_variants),    cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_determinism), cmocka_unit_test(test_backward_data),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
