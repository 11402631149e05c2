/* The few-channel forward of implicit_gemm (lib/ops/conv2d_stem.c, cl/conv2d_stem.cl:
 * layers with few input channels, such as LeNet's first layer and the 3-channel stems)
 * against the double reference (tests/reference_conv.c): a seeded sweep of shapes with 1
 * to 4 input channels, kernels 1x1 to 11x11, strides 1 to 4 each way (the column stride
 * 3 takes the element-by-element copy), padding, batch 1, output rows that end in a
 * partial tile of 16 columns, output channels that are not a multiple of the block (the
 * last block ends at the last channel), bias and activations; the named stems (LeNet,
 * VGG, ResNet, AlexNet, MobileNet) at batch 1; tall images split into bands of rows
 * with a short last band; every register block through "stem TM TN". The kernel is
 * forced with $CLCNN_CONV_IMPLICIT_CFG="stem [TM TN]" (on CPUs with 8- and 16-float vectors
 * it is also the heuristic for these layers: test_heuristic_by_width). Its sums are the implicit
 * GEMM's, term for term: on CPU devices (whose local memory holds the GEMM's whole reduction, one
 * fma chain per output) the results must equal the GEMM's bit for bit (forced with a GEMM parameter
 * string). Shapes it cannot run ("stem" on a grouped, dilated or 9-channel layer) fall back to the
 * GEMM and stay correct. Residual, in-place and SiLU epilogues and tensor offsets:
 * test_conv2d_prepared.c's stem case.
 *
 * Tolerance as for implicit_gemm in test_conv2d_algos.c (inputs, weights and bias uniform
 * in [-1, 1], L = c*r*s terms): |got - ref| <= 1e-6 * L + 1e-5 * |ref|. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference_conv.h"
#include "reference_conv_problem.h"

#define ENV "CLCNN_CONV_IMPLICIT_CFG"

static ref_conv conv2(int n, int c, int h, int w, int k, int r, int s, int sh, int sw, int ph,
                      int pw) {
    ref_conv cv = rcp_conv(n, c, h, w, k, r, s, 1, 0, 1, 1);
    cv.stride_h = sh, cv.stride_w = sw, cv.pad_h = ph, cv.pad_w = pw;
    assert_true(ref_conv_out(&cv));
    return cv;
}

/* y of pb with implicit_gemm under the parameter string cfg (NULL: the heuristic). */
static float *run_with(const rcp_problem *pb, const char *cfg) {
    if (cfg)
        setenv(ENV, cfg, 1);
    else
        unsetenv(ENV);
    float *y = rcp_run_forward(pb, CLCNN_CONV_IMPLICIT_GEMM);
    unsetenv(ENV);
    return y;
}

/* The forward under cfg against the reference and, when gemm is not NULL, bit for bit
 * against the GEMM under that string. Returns 1 on a match. */
static int check(const ref_conv *shape, int bias, int act, uint64_t seed, const char *cfg,
                 const char *gemm) {
    rcp_problem pb;
    rcp_problem_init(&pb, shape, bias, act, seed);
    size_t ny = ref_conv_y_size(&pb.cv);
    char what[320], base[256];
    rcp_describe(&pb.cv, CLCNN_CONV_IMPLICIT_GEMM, bias, act, base, sizeof base);
    snprintf(what, sizeof what, "%s with '%s'", base, cfg ? cfg : "(heuristic)");
    float *y = run_with(&pb, cfg);
    double l = (double)pb.cv.c * pb.cv.r * pb.cv.s;
    int ok = tu_close(what, y, pb.ref, ny, 1e-6 * l, 1e-5);
    /* (the GEMM keeps one fma chain per output where its strips hold the whole
     * reduction, as on CPUs; with less local memory it sums chunks) */
    if (gemm && clcnn_device_get_info(tu_device())->type == CLCNN_DEVICE_CPU) {
        float *g = run_with(&pb, gemm);
        if (memcmp(y, g, ny * sizeof(float)) != 0) {
            print_message("%s: differs from the GEMM ('%s') bit for bit\n", what, gemm);
            ok = 0;
        }
        free(g);
    }
    free(y);
    rcp_problem_free(&pb);
    return ok;
}

/* A random few-channel shape: batch 1-3, 8-40 output channels, planes 3x3 .. 40x40 (20 in
 * small mode), row
 * strides 1-4, padding 0-4, and one of eight geometries (channels, kernel, column stride;
 * each is one program, a few seconds to build on POCL). */
static ref_conv random_stem(tu_rng *rng) {
    static const int geo[][4] = {{1, 5, 5, 1}, {3, 3, 3, 1}, {3, 3, 3, 2},   {3, 7, 7, 2},
                                 {2, 4, 5, 3}, {4, 2, 3, 1}, {3, 11, 11, 4}, {1, 1, 1, 1}};
    for (;;) {
        const int *g = geo[tu_rng_int(rng, 0, 7)];
        ref_conv cv = conv2(1, 1, 1, 1, 8, 1, 1, 1, 1, 0, 0);
        cv.n = tu_rng_int(rng, 1, 3);
        cv.c = g[0], cv.r = g[1], cv.s = g[2], cv.stride_w = g[3];
        int big = tu_small() ? 20 : 40; /* a simulated device: smaller planes */
        cv.k = tu_rng_int(rng, 8, big);
        cv.h = tu_rng_int(rng, 3, big);
        cv.w = tu_rng_int(rng, 3, big);
        cv.stride_h = tu_rng_int(rng, 1, 4);
        cv.pad_h = tu_rng_int(rng, 0, 4);
        cv.pad_w = tu_rng_int(rng, 0, 4);
        if (ref_conv_out(&cv)) return cv;
    }
}

static void test_sweep(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(20261208);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(40, 8); i++) {
        ref_conv cv = random_stem(&rng);
        ok &= check(&cv, i & 1, i % 3, 100 + (uint64_t)i, "stem", "16 16 4 4096 0 1");
    }
    assert_true(ok);
}

/* The named stems at batch 1 (their real planes, which need many bands), and edges: k
 * equal to the block, k one past it, the column stride 3, 1x1 kernels, a kernel as wide
 * as the padded input, outputs narrower than a tile. */
static void test_edges(void **state) {
    (void)state;
    const ref_conv shapes[] = {
        conv2(1, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2),     /* LeNet conv1 */
        conv2(1, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3),   /* ResNet conv1 */
        conv2(1, 3, 227, 227, 96, 11, 11, 4, 4, 0, 0), /* AlexNet conv1 */
        conv2(1, 3, 224, 224, 32, 3, 3, 2, 2, 1, 1),   /* MobileNet stem */
        conv2(1, 3, 64, 64, 64, 3, 3, 1, 1, 1, 1),     /* VGG conv1_1, smaller plane */
        conv2(2, 2, 17, 19, 8, 3, 3, 1, 1, 1, 1),      /* k = TM */
        conv2(2, 2, 17, 19, 9, 3, 3, 1, 1, 1, 1),      /* k = TM + 1 */
        conv2(1, 4, 20, 40, 12, 4, 5, 2, 3, 1, 2),     /* column stride 3 */
        conv2(2, 3, 9, 33, 10, 1, 1, 1, 1, 0, 0),      /* 1x1 */
        conv2(1, 1, 5, 6, 8, 5, 10, 1, 1, 0, 2),       /* a kernel as wide as the input */
        conv2(3, 2, 6, 5, 11, 2, 2, 1, 1, 1, 1),       /* outputs narrower than a tile */
        conv2(1, 3, 150, 20, 16, 3, 3, 1, 1, 1, 1),    /* tall: bands, a short last one */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        ok &=
            check(&shapes[i], (int)(i % 2 == 0), (int)(i % 3), 300 + i, "stem", "16 16 4 4096 0 1");
    assert_true(ok);
}

/* Every register block the parameter string allows, and the heuristic (the few-channel
 * kernel on AVX-512 CPUs, else the GEMM). */
static void test_variants(void **state) {
    (void)state;
    const char *cfgs[] = {"stem 16 1", "stem 6 4", "stem 1 1", "stem 5 2", "stem 12 3", NULL};
    const ref_conv shapes[] = {conv2(2, 3, 23, 37, 21, 3, 3, 1, 2, 1, 0),
                               conv2(1, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2)};
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++)
        for (size_t i = 0; i < 2; i++)
            ok &= check(&shapes[i], 1, 1, 500 + c, cfgs[c], "16 16 4 4096 0 1");
    assert_true(ok);
}

/* "stem" where the kernel cannot run: the GEMM's heuristic runs instead, correctly. */
static void test_fallback(void **state) {
    (void)state;
    ref_conv grouped = rcp_conv(2, 4, 12, 12, 8, 3, 3, 1, 1, 1, 2);
    ref_conv dilated = rcp_conv(1, 3, 20, 20, 16, 3, 3, 1, 2, 2, 1);
    ref_conv wide = rcp_conv(1, 9, 12, 12, 16, 3, 3, 1, 1, 1, 1);
    ref_conv few_k = rcp_conv(1, 3, 12, 30, 4, 3, 3, 1, 1, 1, 1);
    int ok = check(&grouped, 1, 1, 600, "stem", NULL);
    ok &= check(&dilated, 0, 2, 601, "stem", NULL);
    ok &= check(&wide, 1, 0, 602, "stem", NULL);
    ok &= check(&few_k, 1, 1, 603, "stem", NULL);
    ok &= check(&few_k, 1, 1, 604, "stem 16 1", NULL); /* a block wider than k */
    assert_true(ok);
}

/* t on dev holding the floats of data (shape n dims). */
static clcnn_tensor *on(clcnn_device *dev, int nd, const size_t *shape, const float *data) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, nd, shape, &t));
    if (data) TU_OK(clcnn_tensor_upload(t, data, clcnn_tensor_numel(t) * sizeof(float)));
    return t;
}

/* The heuristic by vector registers: on a CPU whose library choices see 8-float vectors
 * (CLCNN_CPU_VECTOR_WIDTH=8, an AVX2 CPU's 16 registers) it takes the few-channel kernel
 * with TM 8 x TN 1 for a VGG-like 3-channel 3x3 layer, and the GEMM for an AlexNet-like
 * one with column stride 4; with 16-float vectors TM 8 x TN 3 for both (the kernels each
 * device launched: $CLCNN_TRACE_KERNELS). The results match the reference either way. */
static void test_heuristic_by_width(void **state) {
    (void)state;
    if (clcnn_device_get_info(tu_device())->type != CLCNN_DEVICE_CPU) skip();
    char *dir = tu_temp_dir("stem-width");
    const ref_conv shapes[] = {conv2(1, 3, 20, 40, 8, 3, 3, 1, 1, 1, 1),
                               conv2(1, 3, 45, 227, 8, 11, 11, 4, 4, 0, 0)};
    static const char *const widths[] = {"8", "16"};
    /* the few-channel kernel's blocks, or NULL: the GEMM's kernel */
    static const char *const want[2][2] = {{"TM=8 TN=1", NULL}, {"TM=8 TN=3", "TM=8 TN=3"}};
    int ok = 1;
    for (int wi = 0; wi < 2; wi++)
        for (int i = 0; i < 2; i++) {
            tu_trace_begin(dir);
            clcnn_device *dev = tu_device_with_width(widths[wi]);
            rcp_problem pb;
            rcp_problem_init(&pb, &shapes[i], 1, 1, 700 + (uint64_t)(2 * wi + i));
            const ref_conv *cv = &pb.cv;
            clcnn_tensor *x = on(dev, 4, (size_t[]){cv->n, cv->c, cv->h, cv->w}, pb.x);
            clcnn_tensor *w = on(dev, 4, (size_t[]){cv->k, cv->c, cv->r, cv->s}, pb.w);
            clcnn_tensor *b = on(dev, 1, (size_t[]){cv->k}, pb.b);
            clcnn_tensor *y = on(dev, 4, (size_t[]){cv->n, cv->k, cv->p, cv->q}, NULL);
            clcnn_conv2d_desc d = rcp_make_desc(cv, CLCNN_CONV_IMPLICIT_GEMM);
            TU_OK(clcnn_conv2d_forward(dev, &d, x, w, b, y, (clcnn_activation)pb.act));
            size_t ny = ref_conv_y_size(cv);
            float *got = malloc(ny * sizeof *got);
            TU_OK(clcnn_tensor_download(y, got, ny * sizeof *got));
            double l = (double)cv->c * cv->r * cv->s;
            ok &= tu_close("few-channel heuristic", got, pb.ref, ny, 1e-6 * l, 1e-5);
            clcnn_tensor_free(x), clcnn_tensor_free(w), clcnn_tensor_free(b), clcnn_tensor_free(y);
            clcnn_device_close(dev);
            char *trace = tu_trace_end(dir);
            assert_non_null(trace);
            const char *stem = strstr(trace, "conv2d_stem_fwd");
            int right = want[wi][i] ? stem && strstr(stem, want[wi][i]) != NULL
                                    : !stem && strstr(trace, "conv2d_implicit_fwd") != NULL;
            if (!right)
                print_message("width %s, shape %d: expected %s, launched:\n%s", widths[wi], i,
                              want[wi][i] ? want[wi][i] : "the GEMM", trace);
            ok &= right;
            free(trace);
            free(got);
            rcp_problem_free(&pb);
        }
    tu_remove_dir(dir);
    assert_true(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_heuristic_by_width),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
