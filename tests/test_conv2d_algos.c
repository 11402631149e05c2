/* conv2d forward with the specialised algorithms: implicit_gemm (every shape), winograd
 * (3x3, stride 1, dilation 1) and depthwise (groups == c == k), each against the double
 * reference (tests/reference_conv.c) on a seeded sweep of random shapes it supports (odd
 * sizes, batch 1, channel counts that are not multiples of 4, padding, groups, dilation),
 * hand-picked edge cases, the anchor layers (reduced batch), fused bias + activations,
 * tensor offsets, run-to-run determinism (bit-identical), kernel parameter variants, and
 * forcing an algorithm where it does not apply (CLCNN_ERR_UNSUPPORTED with a message,
 * nothing written), forward and backward; the automatic choice. Tolerances: conv_check.h.
 * The stride-1 data gradients of implicit_gemm and winograd, and winograd's GEMM path:
 * test_conv2d_algos_data.c. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_check.h"
#include "internal.h"

/* ---- random shapes per algorithm ----------------------------------------------------- */

static void sweep(clcnn_conv_algo algo, ref_conv (*gen)(tu_rng *), uint64_t seed, int cases) {
    tu_rng rng = tu_rng_seed(seed);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count((size_t)cases, 10); i++) {
        ref_conv cv = gen(&rng);
        assert_true(cck_supports(algo, &cv));
        int bias = tu_rng_int(&rng, 0, 1), act = tu_rng_int(&rng, 0, 2);
        rcp_problem pb;
        rcp_problem_init(&pb, &cv, bias, act, seed + 1000 + (uint64_t)i);
        ok &= cck_check(&pb, algo, NULL, 0);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

static void test_implicit_sweep(void **state) {
    (void)state;
    sweep(CLCNN_CONV_IMPLICIT_GEMM, cck_random_any, 31337, 240);
}

static void test_winograd_sweep(void **state) {
    (void)state;
    sweep(CLCNN_CONV_WINOGRAD, cck_random_winograd, 27182, 220);
}

static void test_depthwise_sweep(void **state) {
    (void)state;
    sweep(CLCNN_CONV_DEPTHWISE, cck_random_depthwise, 16180, 240);
}

/* ---- hand-picked edge cases ----------------------------------------------------------- */

static void edge_cases(clcnn_conv_algo algo) {
    ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),   /* 1x1 image, 1x1 kernel */
        rcp_conv(1, 3, 1, 1, 5, 3, 3, 1, 1, 1, 1),   /* 1x1 image, padding makes room */
        rcp_conv(2, 5, 7, 9, 7, 3, 3, 1, 1, 1, 1),   /* odd everything */
        rcp_conv(1, 3, 11, 11, 6, 2, 2, 3, 0, 1, 1), /* stride > kernel */
        rcp_conv(2, 2, 5, 5, 3, 3, 3, 1, 4, 1, 1),   /* padding >= kernel */
        rcp_conv(1, 4, 13, 13, 4, 3, 3, 1, 2, 2, 1), /* dilation 2 */
        rcp_conv(2, 6, 9, 8, 6, 3, 3, 2, 1, 1, 6),   /* depthwise stride 2 */
        rcp_conv(2, 7, 10, 33, 7, 3, 3, 1, 1, 1, 7), /* depthwise 3x3 */
        rcp_conv(1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 4),   /* depthwise multiplier 2 */
        rcp_conv(1, 5, 7, 7, 5, 3, 3, 1, 1, 1, 5),   /* depthwise 3x3 (compiled in), 7x7, batch 1 */
        rcp_conv(3, 9, 14, 13, 9, 3, 3, 2, 1, 1,
                 9), /* depthwise 3x3 stride 2 (compiled in), odd w */
        rcp_conv(2, 11, 1, 5, 11, 3, 3, 1, 1, 1, 11),   /* depthwise 3x3 (compiled in), one row */
        rcp_conv(2, 6, 7, 7, 9, 3, 3, 1, 1, 1, 3),      /* groups 3 */
        rcp_conv(3, 16, 6, 6, 24, 1, 1, 1, 0, 1, 1),    /* 1x1 (plane tiles) */
        rcp_conv(2, 3, 5, 9, 20, 1, 1, 1, 0, 1, 1),     /* 1x1 expansion (k >= 6c): 4 tiles */
        rcp_conv(1, 2, 3, 3, 13, 1, 1, 1, 0, 1, 1),     /* expansion, fewer tiles than 4 */
        rcp_conv(2, 3, 23, 37, 20, 3, 3, 2, 1, 1, 1),   /* 3x3 s2 stem (K 27, k >= 6c) */
        rcp_conv(2, 16, 5, 7, 40, 1, 1, 1, 0, 1, 4),    /* grouped 1x1 */
        rcp_conv(1, 8, 9, 9, 16, 1, 1, 2, 0, 1, 1),     /* 1x1 stride 2 */
        rcp_conv(1, 4, 6, 6, 4, 1, 1, 1, 1, 1, 1),      /* 1x1 with padding */
        rcp_conv(1, 3, 20, 30, 10, 5, 5, 1, 2, 1, 1),   /* wide rows */
        rcp_conv(2, 9, 17, 3, 33, 3, 1, 1, 1, 1, 1),    /* r != s, 33 output channels */
        rcp_conv(1, 1, 40, 40, 1, 7, 7, 3, 3, 1, 1),    /* single channel, large kernel */
        rcp_conv(1, 3, 2, 70, 5, 3, 3, 1, 1, 1, 1),     /* short and wide */
        rcp_conv(1, 2, 70, 2, 3, 3, 3, 1, 1, 1, 1),     /* tall and narrow */
        rcp_conv(2, 37, 9, 9, 35, 3, 3, 1, 1, 1, 1),    /* 35 channels: TM tail */
        rcp_conv(1, 130, 5, 6, 3, 3, 3, 1, 1, 1, 1),    /* K = 1170: reduction chunks */
        rcp_conv(1, 3, 227, 19, 4, 11, 11, 4, 0, 1, 1), /* AlexNet-like strip */
    };
    int ok = 1, ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!cck_supports(algo, &cases[i])) continue;
        for (int act = 0; act < 3; act++) {
            if (tu_small() && act != (int)(i % 3)) continue; /* small: one epilogue each */
            rcp_problem pb;
            rcp_problem_init(&pb, &cases[i], act != 1, act, 100 + i * 3 + (size_t)act);
            ok &= cck_check(&pb, algo, NULL, 0);
            rcp_problem_free(&pb);
            ran++;
        }
    }
    assert_true(ran >= (tu_small() ? 3 : 9));
    assert_true(ok);
}

static void test_implicit_edges(void **state) {
    (void)state;
    edge_cases(CLCNN_CONV_IMPLICIT_GEMM);
}

/* A 1x1 output of 21 MB, over half of the 32 MB last-level cache POCL reports on the
 * test machines: the implicit GEMM stores its tiles with non-temporal stores (NTS), the
 * planes not multiples of 16 floats (aligned and unaligned tiles, tiles across images),
 * with bias and ReLU. Then a strided 1x1 layer with enough output tiles for several
 * register blocks per work-item (plane tiles on AVX-512 CPUs: 6 per work-item, each lane
 * packed from its own input position, tiles across images of 31x30 outputs). */
static void test_implicit_large_output(void **state) {
    (void)state;
    ref_conv shapes[] = {rcp_conv(2, 8, 129, 255, 80, 1, 1, 1, 0, 1, 1),
                         rcp_conv(4, 24, 61, 59, 20, 1, 1, 2, 0, 1, 1)};
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        rcp_problem pb;
        rcp_problem_init(&pb, &shapes[i], 1, 1, 4242 + (uint64_t)i);
        ok &= cck_check(&pb, CLCNN_CONV_IMPLICIT_GEMM, "large output", 0);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

static void test_winograd_edges(void **state) {
    (void)state;
    edge_cases(CLCNN_CONV_WINOGRAD);
}

static void test_depthwise_edges(void **state) {
    (void)state;
    edge_cases(CLCNN_CONV_DEPTHWISE);
}

/* ---- anchors ----------------------------------------------------------------------------- */

/* The anchor layers with the batch cut to 2 for the three large ones (as in
 * test_conv2d.c: images are independent, and the double reference of the full batches
 * would cost ~10^10 multiply-adds); LeNet keeps 256 images. Bias + ReLU fused. */
static void anchors(clcnn_conv_algo algo) {
    TU_SKIP_IF_SMALL();
    ref_conv list[] = {
        rcp_conv(2, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1),
        rcp_conv(2, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
        rcp_conv(2, 256, 14, 14, 256, 1, 1, 1, 0, 1, 1),
        rcp_conv(256, 1, 28, 28, 32, 5, 5, 1, 2, 1, 1),
    };
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        if (!cck_supports(algo, &list[i])) continue;
        rcp_problem pb;
        rcp_problem_init(&pb, &list[i], 1, 1, 777 + (uint64_t)i);
        ok &= cck_check(&pb, algo, "anchor", 1);
        rcp_problem_free(&pb);
    }
    assert_true(ok);
}

static void test_implicit_anchors(void **state) {
    (void)state;
    anchors(CLCNN_CONV_IMPLICIT_GEMM);
}

static void test_winograd_anchors(void **state) {
    (void)state;
    anchors(CLCNN_CONV_WINOGRAD);
}

/* ---- kernel parameter variants ------------------------------------------------------------ */

/* Runs cases random shapes from gen (one generator seeded with rng_seed, shared by all
 * configurations) under each configuration in cfgs, set through the environment variable
 * env; problem i is seeded with seed + i. */
static void cfg_sweep(clcnn_conv_algo algo, const char *env, const char *const *cfgs, size_t ncfg,
                      ref_conv (*gen)(tu_rng *), uint64_t rng_seed, int cases, uint64_t seed) {
    tu_rng rng = tu_rng_seed(rng_seed);
    int ok = 1;
    for (size_t c = 0; c < ncfg; c++) {
        setenv(env, cfgs[c], 1);
        for (int i = 0; i < (int)tu_small_count((size_t)cases, 3); i++) {
            ref_conv cv = gen(&rng);
            rcp_problem pb;
            rcp_problem_init(&pb, &cv, i & 1, i % 3, seed + (uint64_t)i);
            char tag[64];
            snprintf(tag, sizeof tag, "cfg '%s'", cfgs[c]);
            ok &= cck_check(&pb, algo, tag, 0);
            rcp_problem_free(&pb);
        }
    }
    unsetenv(env);
    assert_true(ok);
}

/* Other implicit-GEMM parameters than this device's choice, through the development
 * override $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC [NT [TN]]": the GPU's TM 2 and local
 * size, odd TM (channel tails), narrow segments, tiny reduction chunks (partial sums kept
 * in y between chunks), several tiles per work-item (the last one partly past the end),
 * AVX2's TM 6 (cc_cpu_f16_accumulators) with narrow segments, and AVX-512's register
 * blocks of TN 3 and 2 tiles on any shape (row tiles, strides, padding; with NT 5, whose
 * last block is missing tiles, and tiny chunks), and plane tiles (VW 0) on any shape:
 * each lane's taps gathered, tiles running on into the next image, with TN 2 and tiny
 * chunks, and with the GPU's TM 2 and local size. */
static void test_implicit_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"2 16 16 64",     "3 8 4 5 3",      "16 4 4 7",       "16 16 4 1024 2",
                          "6 8 4 1024 0 1", "6 4 4 1024 0 1", "8 8 4 1024 0 3", "8 4 4 7 5 2",
                          "8 0 4 1024 0 2", "3 0 4 9 5 2",    "2 0 16 64"};
    cfg_sweep(CLCNN_CONV_IMPLICIT_GEMM, "CLCNN_CONV_IMPLICIT_CFG", cfgs, 11, cck_random_any, 4243,
              20, 7000);
}

/* Winograd with both tile sizes, every segment width, odd TM and tiny channel chunks
 * and ranges (partial sums kept in local memory between chunks), AVX2's TM 6, through
 * $CLCNN_CONV_WINOGRAD_CFG="MT SW TM CC MR [G]"; G 1: the GEMM path (transform kernels and
 * the implicit GEMM) with both tile sizes and every segment width, G 0 the fused kernel. */
static void test_winograd_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"2 4 3 2 5",   "4 16 16 1 7", "4 8 16 3 0",  "4 4 2 4 3",
                          "4 0 6 0 0",   "4 0 6 0 0 1", "2 0 6 0 0 1", "4 16 6 0 0 1",
                          "2 8 6 0 0 1", "4 4 6 0 0 0"};
    cfg_sweep(CLCNN_CONV_WINOGRAD, "CLCNN_CONV_WINOGRAD_CFG", cfgs, 10, cck_random_winograd, 4244,
              12, 7100);
}

/* Depthwise with every vector width, row count and column walk through
 * $CLCNN_CONV_DEPTHWISE_CFG="VEC TP [QLOOP]", on random shapes and on MobileNet-like
 * layers (3x3, stride 1 and 2, padding 1, odd and even planes down to 7x7, batch 1) and
 * EfficientNet-like 5x5 ones (stride 1 and 2, padding 2). */
static void test_depthwise_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"16 1", "8 4", "4 3", "8 4 1", "16 2 1", "4 8 1", "8 3 0", "16 8 1"};
    const ref_conv fixed[] = {
        rcp_conv(2, 5, 37, 45, 5, 3, 3, 1, 1, 1, 5), rcp_conv(2, 5, 37, 45, 5, 3, 3, 2, 1, 1, 5),
        rcp_conv(1, 3, 7, 7, 3, 3, 3, 1, 1, 1, 3),   rcp_conv(2, 4, 14, 14, 4, 3, 3, 2, 1, 1, 4),
        rcp_conv(1, 3, 28, 28, 3, 3, 3, 1, 1, 1, 3), rcp_conv(3, 2, 15, 29, 2, 3, 3, 2, 1, 1, 2),
        rcp_conv(2, 5, 23, 19, 5, 5, 5, 1, 2, 1, 5), rcp_conv(2, 4, 29, 27, 4, 5, 5, 2, 2, 1, 4),
    };
    const int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
    tu_rng rng = tu_rng_seed(4245);
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        setenv("CLCNN_CONV_DEPTHWISE_CFG", cfgs[c], 1);
        for (int i = 0; i < nfixed + (int)tu_small_count(10, 1); i++) {
            ref_conv cv = i < nfixed ? fixed[i] : cck_random_depthwise(&rng);
            rcp_problem pb;
            rcp_problem_init(&pb, &cv, i & 1, i % 3, 7200 + (uint64_t)i);
            char tag[64];
            snprintf(tag, sizeof tag, "cfg '%s'", cfgs[c]);
            ok &= cck_check(&pb, CLCNN_CONV_DEPTHWISE, tag, 0);
            rcp_problem_free(&pb);
        }
    }
    unsetenv("CLCNN_CONV_DEPTHWISE_CFG");
    assert_true(ok);
}

/* ---- offsets, determinism --------------------------------------------------------------- */

static void test_implicit_offsets_determinism(void **state) {
    (void)state;
    ref_conv a = rcp_conv(2, 6, 7, 9, 8, 3, 3, 1, 1, 1, 2),
             b = rcp_conv(2, 8, 5, 5, 16, 1, 1, 1, 0, 1, 1);
    cck_offsets(CLCNN_CONV_IMPLICIT_GEMM, &a);
    cck_offsets(CLCNN_CONV_IMPLICIT_GEMM, &b);
    ref_conv c = rcp_conv(3, 12, 15, 15, 20, 3, 3, 1, 1, 1, 1),
             d = rcp_conv(2, 130, 9, 11, 8, 3, 3, 2, 2, 1, 1);
    cck_determinism(CLCNN_CONV_IMPLICIT_GEMM, &c);
    cck_determinism(CLCNN_CONV_IMPLICIT_GEMM, &d);
}

static void test_depthwise_offsets_determinism(void **state) {
    (void)state;
    ref_conv a = rcp_conv(2, 6, 7, 9, 6, 3, 3, 1, 1, 1, 6),
             b = rcp_conv(1, 3, 30, 41, 3, 3, 3, 2, 1, 1, 3);
    cck_offsets(CLCNN_CONV_DEPTHWISE, &a);
    cck_offsets(CLCNN_CONV_DEPTHWISE, &b);
    ref_conv c = rcp_conv(3, 12, 15, 35, 12, 5, 5, 1, 2, 1, 12),
             d = rcp_conv(2, 9, 19, 19, 9, 3, 3, 2, 1, 1, 9);
    cck_determinism(CLCNN_CONV_DEPTHWISE, &c);
    cck_determinism(CLCNN_CONV_DEPTHWISE, &d);
}

static void test_winograd_offsets_determinism(void **state) {
    (void)state;
    ref_conv a = rcp_conv(2, 6, 7, 9, 8, 3, 3, 1, 1, 1, 2),
             b = rcp_conv(1, 5, 30, 41, 7, 3, 3, 1, 0, 1, 1);
    cck_offsets(CLCNN_CONV_WINOGRAD, &a);
    cck_offsets(CLCNN_CONV_WINOGRAD, &b);
    ref_conv c = rcp_conv(3, 12, 15, 15, 20, 3, 3, 1, 1, 1, 1),
             d = rcp_conv(2, 150, 9, 11, 70, 3, 3, 1, 2, 1, 1);
    cck_determinism(CLCNN_CONV_WINOGRAD, &c);
    cck_determinism(CLCNN_CONV_WINOGRAD, &d);
}

/* ---- unsupported shapes and passes --------------------------------------------------------- */

/* The backward passes with algo forced fail cleanly (backward data only when data != 0). */
static void expect_backward_unsupported(clcnn_conv_algo algo, const ref_conv *cv, int data) {
    if (data) rcp_expect_refused(algo, cv, 1, "backward data");
    rcp_expect_refused(algo, cv, 2, "backward filter");
}

static void test_unsupported(void **state) {
    (void)state;
    ref_conv c3 = rcp_conv(2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1);
    /* implicit_gemm runs every filter gradient: test_conv2d_wgrad.c */
    expect_backward_unsupported(CLCNN_CONV_WINOGRAD, &c3, 0); /* filter gradient */
    ref_conv c5 = rcp_conv(2, 4, 8, 8, 6, 5, 5, 1, 2, 1, 1),
             s2 = rcp_conv(1, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1);
    ref_conv d2 = rcp_conv(1, 3, 9, 9, 4, 3, 3, 1, 2, 2, 1),
             r31 = rcp_conv(1, 3, 9, 9, 4, 3, 1, 1, 1, 1, 1);
    const char *need = "3x3 kernel with stride 1 and dilation 1";
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &c5, 0, need);
    expect_backward_unsupported(CLCNN_CONV_WINOGRAD, &c5, 1); /* 5x5: neither pass */
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &s2, 0, need);
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &d2, 0, need);
    rcp_expect_refused(CLCNN_CONV_WINOGRAD, &r31, 0, need);
    /* implicit_gemm has strided data gradients (up to stride 32): test_conv2d_dgrad.c */
    /* depthwise has both gradients of depthwise layers: test_conv2d_depthwise_bwd.c */
    ref_conv mult = rcp_conv(1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 4),
             g2 = rcp_conv(1, 4, 8, 8, 4, 3, 3, 1, 1, 1, 2);
    need = "groups == input channels == output channels";
    rcp_expect_refused(CLCNN_CONV_DEPTHWISE, &mult, 0, need); /* channel multiplier 2 */
    rcp_expect_refused(CLCNN_CONV_DEPTHWISE, &g2, 0, need);
    rcp_expect_refused(CLCNN_CONV_DEPTHWISE, &c3, 0, need);
}

/* ---- AUTO -------------------------------------------------------------------------------- */

/* Whatever AUTO picks for the anchor-like shape classes gives the right answer. */
static void test_auto(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(2, 32, 12, 12, 32, 3, 3, 1, 1, 1, 1), /* 3x3 stride 1 */
        rcp_conv(2, 8, 12, 12, 8, 3, 3, 1, 1, 1, 8),   /* depthwise */
        rcp_conv(2, 32, 7, 7, 64, 1, 1, 1, 0, 1, 1),   /* 1x1 */
        rcp_conv(1, 3, 39, 39, 8, 11, 11, 4, 0, 1, 1), /* large kernel, stride 4 */
        rcp_conv(4, 1, 12, 12, 8, 5, 5, 1, 2, 1, 1),   /* one input channel */
        rcp_conv(1, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1),     /* small, strided */
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

/* AUTO's forward rule for 3x3 stride-1 layers by the CPU's vector registers (devices
 * opened with CLCNN_CPU_VECTOR_WIDTH 16 and 8): with 32 (AVX-512) fewer than 128 input
 * channels on planes larger than 56x56 take implicit_gemm (VGG conv1_2, conv2_1), the
 * rest winograd; with 16 (AVX2) all winograd. The data gradient follows the forward rule
 * of its transposed geometry. Choices from a tuning file do not count (from_db). */
static void test_auto_3x3_by_width(void **state) {
    (void)state;
    if (clcnn_device_get_info(tu_device())->type != CLCNN_DEVICE_CPU) skip();
    struct {
        int c, k, hw;
        clcnn_conv_pass pass;
        clcnn_conv_algo wide, narrow;
    } cases[] = {
        {64, 128, 112, CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_IMPLICIT_GEMM, CLCNN_CONV_WINOGRAD},
        {64, 64, 224, CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_IMPLICIT_GEMM, CLCNN_CONV_WINOGRAD},
        {64, 64, 224, CLCNN_CONV_PASS_BACKWARD_DATA, CLCNN_CONV_IMPLICIT_GEMM, CLCNN_CONV_WINOGRAD},
        {128, 128, 112, CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_WINOGRAD, CLCNN_CONV_WINOGRAD},
        {64, 128, 112, CLCNN_CONV_PASS_BACKWARD_DATA, CLCNN_CONV_WINOGRAD, CLCNN_CONV_WINOGRAD},
        {64, 64, 56, CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_WINOGRAD, CLCNN_CONV_WINOGRAD},
        {32, 64, 14, CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_WINOGRAD, CLCNN_CONV_WINOGRAD},
    };
    static const char *const widths[] = {"16", "8"};
    for (int wi = 0; wi < 2; wi++) {
        clcnn_device *dev = tu_device_with_width(widths[wi]);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
            d.pad_h = d.pad_w = 1;
            size_t xs[4] = {8, (size_t)cases[i].c, (size_t)cases[i].hw, (size_t)cases[i].hw},
                   ws[4] = {(size_t)cases[i].k, (size_t)cases[i].c, 3, 3};
            clcnn_conv_algo a;
            int db = 0;
            TU_OK(clcnn_conv2d_algo_choice(dev, cases[i].pass, &d, xs, ws, &a, &db));
            clcnn_conv_algo want = wi == 0 ? cases[i].wide : cases[i].narrow;
            if (!db && a != want)
                fail_msg("width %s, c%d k%d %dx%d pass %d: %s, expected %s", widths[wi], cases[i].c,
                         cases[i].k, cases[i].hw, cases[i].hw, (int)cases[i].pass,
                         clcnn_conv_algo_name(a), clcnn_conv_algo_name(want));
        }
        clcnn_device_close(dev);
    }
}

int main(void) {
    if (!tu_device()) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implicit_sweep),
        cmocka_unit_test(test_implicit_edges),
        cmocka_unit_test(test_implicit_large_output),
        cmocka_unit_test(test_implicit_anchors),
        cmocka_unit_test(test_implicit_variants),
        cmocka_unit_test(test_implicit_offsets_determinism),
        cmocka_unit_test(test_winograd_sweep),
        cmocka_unit_test(test_winograd_edges),
        cmocka_unit_test(test_winograd_anchors),
        cmocka_unit_test(test_winograd_variants),
        cmocka_unit_test(test_winograd_offsets_determinism),
        cmocka_unit_test(test_depthwise_sweep),
        cmocka_unit_test(test_depthwise_edges),
        cmocka_unit_test(test_depthwise_variants),
        cmocka_unit_test(test_depthwise_offsets_determinism),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_auto_3x3_by_width),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
