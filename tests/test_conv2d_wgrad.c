/* The implicit-GEMM filter gradient (lib/ops/conv2d_wgrad.c, cl/conv2d_wgrad.cl: the
 * implicit_gemm algorithm of clcnn_conv2d_backward_filter) against the double reference
 * ref_conv2d_backward_filter / ref_conv2d_bias_grad (tests/reference_conv.c):
 *   - a seeded sweep of random small shapes (odd sizes, batch 1, strides, padding,
 *     dilation, groups, depthwise, 1x1, tall and wide kernels) and more channels than
 *     one work-item's block (remainders of the VK channel and TJ tap blocks);
 *   - every kernel configuration the host may choose ($CLCNN_CONV_WGRAD_CFG) and several
 *     image passes (a tiny $CLCNN_CONV_WORKSPACE_MB);
 *   - the kernel of flat layers (conv2d_wgrad_flat: 1x1, stride 1, no padding) under
 *     each of its configuration forms and the heuristic's own choice;
 *   - the four anchor layers of perf/suites/anchors.txt at a reduced batch;
 *   - tensors at element offsets, bit-identical repeats, bad shapes leaving the outputs
 *     as they were, and the bias gradient computed beside it.
 *
 * Tolerance: every gradient element is a sum of L = n*p*q products of values in [-1, 1].
 * The kernel sums them in float32 in chunks, then adds the chunks in float32: the
 * rounding error is at most about L * 2^-24 times the largest partial sum, which is
 * itself at most L; for the random signs here it stays near sqrt(L) * 2^-24 * sqrt(L).
 * So |got - ref| <= 1e-5 + 2e-6 * L + 1e-4 |ref| (30x the typical error, and below the
 * 0.05 of a single missing or doubled product for every small shape, L < 2000). The
 * anchor layers (L up to 6e4) use the normalised MSE, at most 1e-9: float32 summation
 * gives about 1e-13, one missed product per output about 1/L > 1e-5. */
#include "test_util.h"

#include "internal.h"
#include "reference_conv.h"
#include "reference_conv_problem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A random shape with more channels per group than rcp_random_conv gives: 1 .. 40 output
 * channels (VK blocks of 16, 8 or 4 with remainders) and up to 12 input channels. */
static ref_conv random_wide(tu_rng *rng) {
    for (;;) {
        ref_conv cv = {0};
        cv.groups = tu_rng_int(rng, 1, 4) == 4 ? 2 : 1;
        cv.c = cv.groups * tu_rng_int(rng, 1, 12);
        cv.k = cv.groups * tu_rng_int(rng, 1, 40);
        cv.n = tu_rng_int(rng, 1, 3);
        cv.h = tu_rng_int(rng, 1, 17);
        cv.w = tu_rng_int(rng, 1, 17);
        int kind = tu_rng_int(rng, 0, 5);
        cv.r = kind == 0 ? 1 : kind == 1 ? tu_rng_int(rng, 3, 7) : tu_rng_int(rng, 1, 4);
        cv.s = kind == 0 ? 1 : kind == 2 ? tu_rng_int(rng, 3, 7) : tu_rng_int(rng, 1, 4);
        if (kind == 1) cv.s = 1; /* tall */
        if (kind == 2) cv.r = 1; /* wide */
        cv.stride_h = tu_rng_int(rng, 1, 3);
        cv.stride_w = tu_rng_int(rng, 1, 3);
        cv.pad_h = tu_rng_int(rng, 0, 3);
        cv.pad_w = tu_rng_int(rng, 0, 3);
        cv.dilation_h = tu_rng_int(rng, 1, 6) == 6 ? 2 : 1;
        cv.dilation_w = tu_rng_int(rng, 1, 6) == 6 ? 3 : 1;
        if (ref_conv_out(&cv)) return cv;
    }
}

static void describe(const ref_conv *cv, char *buf, size_t cap) {
    snprintf(buf, cap,
             "wgrad n%d c%d %dx%d k%d %dx%d stride %dx%d pad %dx%d dil %dx%d groups %d (p %d q "
             "%d)",
             cv->n, cv->c, cv->h, cv->w, cv->k, cv->r, cv->s, cv->stride_h, cv->stride_w, cv->pad_h,
             cv->pad_w, cv->dilation_h, cv->dilation_w, cv->groups, cv->p, cv->q);
}

typedef struct problem {
    ref_conv cv;
    float *x, *dy;
    double *dw_ref, *db_ref;
} problem;

static void problem_init(problem *pb, const ref_conv *cv, uint64_t seed) {
    pb->cv = *cv;
    tu_rng rng = tu_rng_seed(seed);
    size_t nx = ref_conv_x_size(cv), ny = ref_conv_y_size(cv), nw = ref_conv_w_size(cv);
    pb->x = malloc(nx * sizeof(float));
    pb->dy = malloc(ny * sizeof(float));
    pb->dw_ref = malloc(nw * sizeof(double));
    pb->db_ref = malloc((size_t)cv->k * sizeof(double));
    assert_non_null(pb->x);
    assert_non_null(pb->dy);
    assert_non_null(pb->dw_ref);
    assert_non_null(pb->db_ref);
    tu_fill_uniform(&rng, pb->x, nx, -1.0f, 1.0f);
    tu_fill_uniform(&rng, pb->dy, ny, -1.0f, 1.0f);
    double *xd = rcp_to_double(pb->x, nx), *dyd = rcp_to_double(pb->dy, ny);
    ref_conv2d_backward_filter(cv, xd, dyd, pb->dw_ref);
    ref_conv2d_bias_grad(cv, dyd, pb->db_ref);
    free(xd);
    free(dyd);
}

static void problem_free(problem *pb) {
    free(pb->x);
    free(pb->dy);
    free(pb->dw_ref);
    free(pb->db_ref);
}

/* Runs the filter gradient with implicit_gemm (and db when with_db); dw and db start as
 * NaN so that an element the kernels forget shows. off: element offset of every tensor
 * (0: plain tensors). Returns dw (malloc'd); *db_out gets db when with_db. */
static float *run_wgrad(const problem *pb, int with_db, size_t off, float **db_out) {
    const ref_conv *cv = &pb->cv;
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w}, ys[4] = {cv->n, cv->k, cv->p, cv->q};
    size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    clcnn_tensor *x, *dy, *dw, *db = NULL;
    if (off) {
        x = rcp_offset_tensor(4, xs, off, pb->x);
        dy = rcp_offset_tensor(4, ys, off + 3, pb->dy);
        dw = rcp_offset_tensor(4, ws, off + 1, NULL);
        if (with_db) db = rcp_offset_tensor(1, (size_t[]){cv->k}, off + 2, NULL);
    } else {
        x = tu_tensor_from(4, xs, pb->x);
        dy = tu_tensor_from(4, ys, pb->dy);
        dw = tu_tensor_new(CLCNN_F32, 4, ws);
        TU_OK(clcnn_tensor_fill(dw, NAN));
        if (with_db) {
            db = tu_tensor_new(CLCNN_F32, 1, (size_t[]){cv->k});
            TU_OK(clcnn_tensor_fill(db, NAN));
        }
    }
    clcnn_conv2d_desc d = rcp_make_desc(cv, CLCNN_CONV_IMPLICIT_GEMM);
    TU_OK(clcnn_conv2d_backward_filter(tu_device(), &d, x, dy, dw, db));
    float *got = tu_download(dw);
    if (with_db) *db_out = tu_download(db);
    clcnn_tensor_free(x);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(dw);
    clcnn_tensor_free(db);
    return got;
}

/* Checks one shape; returns 1 when dw (and db) match the reference. */
static int check_shape(const ref_conv *cv, uint64_t seed, int with_db, size_t off, int nmse) {
    problem pb;
    problem_init(&pb, cv, seed);
    float *db = NULL;
    float *dw = run_wgrad(&pb, with_db, off, &db);
    char what[256];
    describe(cv, what, sizeof what);
    size_t nw = ref_conv_w_size(cv);
    double L = (double)cv->n * cv->p * cv->q;
    int ok;
    if (nmse) {
        double e = tu_nmse(dw, pb.dw_ref, nw);
        ok = e <= 1e-9;
        if (!ok) print_message("%s: dw nmse %g > 1e-9\n", what, e);
    } else {
        ok = tu_close(what, dw, pb.dw_ref, nw, 1e-5 + 2e-6 * L, 1e-4);
    }
    if (with_db) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s (db)", what);
        ok &= tu_close(w2, db, pb.db_ref, (size_t)cv->k, 1e-5 + 2e-6 * L, 1e-4);
    }
    free(dw);
    free(db);
    problem_free(&pb);
    return ok;
}

/* ---- random shapes ------------------------------------------------------------------------ */

static void test_random_shapes(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(20261125);
    int ok = 1;
    for (int i = 0; i < (int)tu_small_count(120, 10); i++) {
        ref_conv cv = i % 2 ? random_wide(&rng) : rcp_random_conv(&rng, 3);
        ok &= check_shape(&cv, 1000 + (uint64_t)i, i % 3 == 0, 0, 0);
    }
    assert_true(ok);
}

/* Named corner cases: batch 1, 1x1, tall and wide kernels, kernels as large as the
 * padded input, large strides and dilations, depthwise, many groups. */
static void test_corner_cases(void **state) {
    (void)state;
    ref_conv cases[] = {
        rcp_conv(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
        rcp_conv(1, 3, 7, 5, 17, 1, 1, 1, 0, 1, 1),
        rcp_conv(2, 5, 9, 11, 33, 1, 1, 2, 0, 1, 1),
        rcp_conv(1, 2, 13, 6, 20, 7, 1, 1, 3, 1, 1),
        rcp_conv(1, 2, 6, 13, 20, 1, 7, 1, 3, 1, 1),
        rcp_conv(2, 3, 5, 5, 8, 5, 5, 1, 0, 1, 1),
        rcp_conv(1, 3, 4, 4, 8, 7, 7, 1, 2, 1, 1),
        rcp_conv(2, 4, 17, 15, 12, 3, 3, 4, 1, 2, 1),
        rcp_conv(1, 8, 9, 9, 8, 3, 3, 1, 1, 1, 8),
        rcp_conv(2, 6, 10, 10, 12, 3, 3, 2, 1, 1, 6),
        rcp_conv(1, 12, 8, 8, 24, 3, 3, 1, 1, 1, 4),
        rcp_conv(3, 3, 23, 23, 16, 11, 11, 4, 0, 1, 1),
        rcp_conv(1, 1, 12, 12, 32, 5, 5, 1, 2, 1, 1),
        rcp_conv(1, 16, 5, 5, 16, 3, 3, 1, 4, 1, 1),
        rcp_conv(2, 7, 9, 31, 5, 2, 3, 3, 2, 3, 1),
        rcp_conv(1, 4, 30, 3, 100, 3, 3, 1, 1, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        ok &= check_shape(&cv, 2000 + i, 1, 0, 0);
    }
    assert_true(ok);
}

/* Every configuration the host may pick (VK 16/8/4, MK 1/2, TJ from 1 to 32, the GPU's
 * TJ 4 and local size 16, chunks of a few positions) on random shapes. */
static void test_configs(void **state) {
    (void)state;
    const char *cfgs[] = {"16 12 4 1024", "8 12 4 64",   "4 5 2 7",   "16 1 1 1",
                          "16 32 3 100",  "4 4 16 1024", "8 13 4 30", "16 14 4 2048 2",
                          "8 7 4 64 2",   "4 3 2 9 2"};
    tu_rng rng = tu_rng_seed(777);
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        setenv("CLCNN_CONV_WGRAD_CFG", cfgs[c], 1);
        for (int i = 0; i < (int)tu_small_count(6, 2); i++) {
            ref_conv cv = i % 2 ? random_wide(&rng) : rcp_random_conv(&rng, 3);
            int one = check_shape(&cv, 3000 + 10 * c + (uint64_t)i, 0, 0, 0);
            if (!one) print_message("  with CLCNN_CONV_WGRAD_CFG=\"%s\"\n", cfgs[c]);
            ok &= one;
        }
    }
    unsetenv("CLCNN_CONV_WGRAD_CFG");
    assert_true(ok);
}

/* A random flat shape (1x1 kernel, no padding; conv2d_wgrad_flat): planes of 1 to 19 x 19
 * positions (tails of every length after the whole vectors), 1 to 40 channels per side
 * (remainders of the TA and TB blocks), 1 to 3 groups, batch 1 to 3; a quarter of them
 * with strides up to 3 (the subsampled copy). */
static ref_conv random_flat(tu_rng *rng) {
    int groups = tu_rng_int(rng, 1, 3);
    ref_conv cv =
        rcp_conv(tu_rng_int(rng, 1, 3), groups * tu_rng_int(rng, 1, 14), tu_rng_int(rng, 1, 19),
                 tu_rng_int(rng, 1, 19), groups * tu_rng_int(rng, 1, 40), 1, 1, 1, 0, 1, groups);
    if (tu_rng_int(rng, 1, 4) == 4) {
        cv.stride_h = tu_rng_int(rng, 1, 3);
        cv.stride_w = tu_rng_int(rng, 2, 3);
    }
    assert_true(ref_conv_out(&cv));
    return cv;
}

/* The flat kernel under every configuration form: vector widths 4, 8 and 16, blocks from
 * 1 x 1 to 7 x 2, parts of whole images and of a few positions of one image (TARGET 1 to
 * 1024); strided layers through the subsampled copy; the heuristic's own choice on 28x28
 * planes (strided too, and in passes under a small workspace); tensors at element
 * offsets; and a
 * flat configuration given for a shape that is not flat, which falls back to the
 * broadcast kernel. */
static void test_flat(void **state) {
    (void)state;
    const char *cfgs[] = {"flat 8 4 3 1024", "flat 4 1 1 5", "flat 16 2 5 1", "flat 4 7 2 100"};
    tu_rng rng = tu_rng_seed(4242);
    int ok = 1;
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        setenv("CLCNN_CONV_WGRAD_CFG", cfgs[c], 1);
        for (int i = 0; i < (int)tu_small_count(6, 2); i++) {
            ref_conv cv = random_flat(&rng);
            int one = check_shape(&cv, 8000 + 10 * c + (uint64_t)i, i == 0, c == 1 ? 5 : 0, 0);
            if (!one) print_message("  with CLCNN_CONV_WGRAD_CFG=\"%s\"\n", cfgs[c]);
            ok &= one;
        }
        ref_conv other = rcp_conv(2, 4, 9, 8, 6, 3, 3, 1, 1, 1, 1); /* not flat */
        assert_true(ref_conv_out(&other));
        ok &= check_shape(&other, 8100 + c, 0, 0, 0);
    }
    unsetenv("CLCNN_CONV_WGRAD_CFG");
    /* the heuristic: 28x28 and larger output planes take the flat kernel on CPUs, strided
     * ones through the subsampled copy, or in passes of the broadcast kernel when that
     * copy would outgrow the workspace limit */
    ref_conv cases[] = {rcp_conv(1, 5, 28, 28, 13, 1, 1, 1, 0, 1, 1),
                        rcp_conv(2, 24, 29, 31, 8, 1, 1, 1, 0, 1, 2),
                        rcp_conv(2, 6, 57, 56, 10, 1, 1, 2, 0, 1, 1)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(ref_conv_out(&cases[i]));
        ok &= check_shape(&cases[i], 8200 + i, 1, i, 0);
    }
    setenv("CLCNN_CONV_WORKSPACE_MB", "0.02", 1);
    ok &= check_shape(&cases[2], 8210, 1, 0, 0);
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    assert_true(ok);
}

/* A workspace limit smaller than one image's copies: one pass per image (and the partial
 * sums of every pass summed in order), also through the subsampled copy of a strided 1x1
 * layer. */
static void test_passes(void **state) {
    (void)state;
    setenv("CLCNN_CONV_WORKSPACE_MB", "0.001", 1);
    ref_conv a = rcp_conv(5, 3, 9, 9, 16, 3, 3, 1, 1, 1, 1),
             b = rcp_conv(3, 4, 12, 7, 8, 3, 2, 2, 0, 1, 2);
    assert_true(ref_conv_out(&a) && ref_conv_out(&b));
    ref_conv c = rcp_conv(3, 5, 13, 11, 7, 1, 1, 2, 0, 1, 1); /* the subsampled copy */
    assert_true(ref_conv_out(&c));
    int ok = check_shape(&a, 4001, 1, 0, 0);
    ok &= check_shape(&b, 4003, 1, 0, 0);
    ok &= check_shape(&c, 4004, 1, 0, 0);
    /* 5242 floats: 3 images of a (6.6 KB each) per pass, then 2 */
    setenv("CLCNN_CONV_WORKSPACE_MB", "0.02", 1);
    ok &= check_shape(&a, 4002, 0, 0, 0);
    unsetenv("CLCNN_CONV_WORKSPACE_MB");
    assert_true(ok);
}

/* The anchor layers of perf/suites/anchors.txt at a reduced batch. */
static void test_anchors(void **state) {
    (void)state;
    TU_SKIP_IF_SMALL();
    ref_conv cases[] = {
        rcp_conv(2, 3, 227, 227, 96, 11, 11, 4, 0, 1, 1), /* AlexNet conv1 */
        rcp_conv(1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),    /* VGG 3x3 c64 */
        rcp_conv(2, 256, 14, 14, 256, 1, 1, 1, 0, 1, 1),  /* ResNet 1x1 */
        rcp_conv(16, 1, 28, 28, 32, 5, 5, 1, 2, 1, 1),    /* LeNet 5x5 */
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        ok &= check_shape(&cv, 5000 + i, 1, 0, 1);
    }
    assert_true(ok);
}

/* Tensors at element offsets in NaN-filled buffers: reading outside the views poisons
 * the result, writing outside them is caught by the NaN-filled neighbours staying NaN
 * (the views are separate buffers, so that is checked through the results only). */
static void test_offsets(void **state) {
    (void)state;
    ref_conv a = rcp_conv(2, 5, 11, 9, 20, 3, 3, 1, 1, 1, 1),
             b = rcp_conv(3, 4, 10, 10, 6, 3, 3, 2, 2, 1, 2);
    assert_true(ref_conv_out(&a) && ref_conv_out(&b));
    int ok = check_shape(&a, 6001, 1, 7, 0);
    ok &= check_shape(&b, 6002, 1, 13, 0);
    assert_true(ok);
}

/* Two runs give bit-identical gradients (fixed summation order, no atomics), also with
 * several chunks of partial sums. */
static void test_deterministic(void **state) {
    (void)state;
    ref_conv cases[] = {rcp_conv(8, 6, 20, 20, 24, 3, 3, 1, 1, 1, 1),
                        rcp_conv(32, 1, 28, 28, 32, 5, 5, 1, 2, 1, 1)};
    for (size_t i = 0; i < 2; i++) {
        ref_conv cv = cases[i];
        assert_true(ref_conv_out(&cv));
        problem pb;
        problem_init(&pb, &cv, 7000 + i);
        float *db1 = NULL, *db2 = NULL;
        float *a = run_wgrad(&pb, 1, 0, &db1), *b = run_wgrad(&pb, 1, 0, &db2);
        size_t nw = ref_conv_w_size(&cv);
        assert_memory_equal(a, b, nw * sizeof(float));
        assert_memory_equal(db1, db2, (size_t)cv.k * sizeof(float));
        assert_true(
            tu_close("deterministic", a, pb.dw_ref, nw, 1e-5 + 2e-6 * cv.n * cv.p * cv.q, 1e-4));
        free(a);
        free(b);
        free(db1);
        free(db2);
        problem_free(&pb);
    }
}

/* A bad shape fails with CLCNN_ERR_SHAPE before anything is written. */
static void test_bad_shapes(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 4, 8, 8});
    clcnn_tensor *dy = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 6, 8, 8});
    clcnn_tensor *dybad = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 6, 7, 8});
    clcnn_tensor *dw = tu_tensor_new(CLCNN_F32, 4, (size_t[]){6, 4, 3, 3});
    clcnn_tensor *dwbad = tu_tensor_new(CLCNN_F32, 4, (size_t[]){6, 3, 3, 3});
    clcnn_tensor *db = tu_tensor_new(CLCNN_F32, 1, (size_t[]){6});
    clcnn_tensor *dbbad = tu_tensor_new(CLCNN_F32, 1, (size_t[]){5});
    clcnn_tensor *all[] = {x, dy, dybad, dw, dwbad, db, dbbad};
    for (int i = 0; i < 7; i++)
        TU_OK(clcnn_tensor_fill(all[i], 42.0f));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    d.algo = CLCNN_CONV_IMPLICIT_GEMM;
    struct {
        clcnn_tensor *dy, *dw, *db;
        clcnn_status want;
    } cases[] = {
        {dybad, dw, db, CLCNN_ERR_SHAPE},
        {dy, dwbad, db, CLCNN_ERR_SHAPE},
        {dy, dw, dbbad, CLCNN_ERR_SHAPE},
    };
    for (int i = 0; i < 3; i++) {
        clcnn_status st =
            clcnn_conv2d_backward_filter(dev, &d, x, cases[i].dy, cases[i].dw, cases[i].db);
        if (st != cases[i].want)
            fail_msg("case %d: got %s '%s'", i, clcnn_status_str(st), clcnn_last_error());
    }
    d.groups = 3; /* does not divide 4 channels */
    assert_int_equal(clcnn_conv2d_backward_filter(dev, &d, x, dy, dw, db), CLCNN_ERR_SHAPE);
    for (int i = 3; i < 7; i++) {
        float *h = tu_download(all[i]);
        for (size_t j = 0; j < clcnn_tensor_numel(all[i]); j++)
            if (h[j] != 42.0f) fail_msg("tensor %d [%zu] = %g was written", i, j, h[j]);
        free(h);
    }
    for (int i = 0; i < 7; i++)
        clcnn_tensor_free(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corner_cases), cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_configs),      cmocka_unit_test(test_flat),
        cmocka_unit_test(test_passes),       cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_offsets),      cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_shapes),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return r;
}
