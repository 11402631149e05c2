/* Checks shared by the convolution algorithms' tests (conv_check.h). */
#include "conv_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether algo applies to the shape (mirrors the library's rule, stated independently). */
int cck_supports(clcnn_conv_algo algo, const ref_conv *cv) {
    switch (algo) {
    case CLCNN_CONV_WINOGRAD:
        return cv->r == 3 && cv->s == 3 && cv->stride_h == 1 && cv->stride_w == 1 &&
               cv->dilation_h == 1 && cv->dilation_w == 1;
    case CLCNN_CONV_DEPTHWISE:
        return cv->groups == cv->c && cv->groups == cv->k;
    default:
        return 1;
    }
}

double cck_atol(clcnn_conv_algo algo, const ref_conv *cv) {
    double l = (double)(cv->c / cv->groups) * cv->r * cv->s;
    return (algo == CLCNN_CONV_WINOGRAD ? 4e-6 : 1e-6) * l;
}

double cck_rtol(clcnn_conv_algo algo) {
    return algo == CLCNN_CONV_WINOGRAD ? 4e-5 : 1e-5;
}

/* Runs algo on the problem and compares; returns 1 on a match. */
int cck_check(const rcp_problem *pb, clcnn_conv_algo algo, const char *tag, int use_nmse) {
    size_t ny = ref_conv_y_size(&pb->cv);
    float *y = rcp_run_forward(pb, algo);
    char what[320];
    rcp_describe(&pb->cv, algo, pb->bias, pb->act, what, sizeof what);
    if (tag) {
        strncat(what, " ", sizeof what - strlen(what) - 1);
        strncat(what, tag, sizeof what - strlen(what) - 1);
    }
    int ok = tu_close(what, y, pb->ref, ny, cck_atol(algo, &pb->cv), cck_rtol(algo));
    if (use_nmse) {
        double e = tu_nmse(y, pb->ref, ny);
        if (!(e <= 1e-7)) {
            fprintf(stderr, "NMSE %s: %g > 1e-7\n", what, e);
            ok = 0;
        }
    }
    free(y);
    return ok;
}

/* ---- random shapes per algorithm ----------------------------------------------------- */

/* Anything: groups, dilation, stride, padding, rectangular kernels. */
ref_conv cck_random_any(tu_rng *rng) {
    for (;;) {
        ref_conv cv = {0};
        int kind = tu_rng_int(rng, 0, 9);
        int groups = kind == 7 ? tu_rng_int(rng, 2, 3) : kind >= 8 ? tu_rng_int(rng, 2, 6) : 1;
        int cpg = kind >= 8 ? 1 : tu_rng_int(rng, 1, 7),
            kpg = kind == 9 ? 1 : tu_rng_int(rng, 1, 21);
        cv.groups = groups;
        cv.c = groups * cpg;
        cv.k = groups * kpg;
        cv.n = tu_rng_int(rng, 1, 3);
        cv.h = tu_rng_int(rng, 1, 19);
        cv.w = tu_rng_int(rng, 1, 37);
        cv.r = tu_rng_int(rng, 1, 5);
        cv.s = tu_rng_int(rng, 1, 5);
        if (kind == 6) cv.r = cv.s = 1;
        cv.stride_h = tu_rng_int(rng, 1, 10) > 6 ? tu_rng_int(rng, 2, 4) : 1;
        cv.stride_w = tu_rng_int(rng, 1, 10) > 6 ? tu_rng_int(rng, 2, 4) : 1;
        cv.pad_h = kind == 6 ? 0 : tu_rng_int(rng, 0, 3);
        cv.pad_w = kind == 6 ? 0 : tu_rng_int(rng, 0, 3);
        if (kind == 6) cv.stride_h = cv.stride_w = 1; /* pointwise: the plane path */
        cv.dilation_h = tu_rng_int(rng, 1, 10) > 7 ? tu_rng_int(rng, 2, 3) : 1;
        cv.dilation_w = tu_rng_int(rng, 1, 10) > 7 ? tu_rng_int(rng, 2, 3) : 1;
        if (ref_conv_out(&cv)) return cv;
    }
}

/* 3x3, stride 1, dilation 1; any padding and groups. */
ref_conv cck_random_winograd(tu_rng *rng) {
    for (;;) {
        ref_conv cv = {0};
        int groups = tu_rng_int(rng, 0, 4) == 0 ? tu_rng_int(rng, 2, 4) : 1;
        cv.groups = groups;
        cv.c = groups * tu_rng_int(rng, 1, 9);
        cv.k = groups * tu_rng_int(rng, 1, 19);
        cv.n = tu_rng_int(rng, 1, 3);
        cv.h = tu_rng_int(rng, 1, 17);
        cv.w = tu_rng_int(rng, 1, 23);
        cv.r = cv.s = 3;
        cv.stride_h = cv.stride_w = 1;
        cv.dilation_h = cv.dilation_w = 1;
        cv.pad_h = tu_rng_int(rng, 0, 3);
        cv.pad_w = tu_rng_int(rng, 0, 3);
        if (ref_conv_out(&cv)) return cv;
    }
}

/* groups == c == k; any kernel, stride, padding, dilation. */
ref_conv cck_random_depthwise(tu_rng *rng) {
    for (;;) {
        ref_conv cv = {0};
        cv.c = cv.k = cv.groups = tu_rng_int(rng, 1, 13);
        cv.n = tu_rng_int(rng, 1, 3);
        cv.h = tu_rng_int(rng, 1, 21);
        cv.w = tu_rng_int(rng, 1, 29);
        cv.r = tu_rng_int(rng, 1, 7);
        cv.s = tu_rng_int(rng, 1, 7);
        cv.stride_h = tu_rng_int(rng, 1, 10) > 6 ? tu_rng_int(rng, 2, 3) : 1;
        cv.stride_w = tu_rng_int(rng, 1, 10) > 6 ? tu_rng_int(rng, 2, 3) : 1;
        cv.pad_h = tu_rng_int(rng, 0, 3);
        cv.pad_w = tu_rng_int(rng, 0, 3);
        cv.dilation_h = tu_rng_int(rng, 1, 10) > 7 ? 2 : 1;
        cv.dilation_w = tu_rng_int(rng, 1, 10) > 7 ? 2 : 1;
        if (tu_rng_int(rng, 0, 2) ==
            0) { /* a third: 3x3, dilation 1, stride 1 or 2 (geometry compiled in) */
            cv.r = cv.s = 3;
            cv.stride_h = cv.stride_w = tu_rng_int(rng, 1, 2);
            cv.dilation_h = cv.dilation_w = 1;
        }
        if (ref_conv_out(&cv)) return cv;
    }
}

/* ---- offsets, determinism --------------------------------------------------------------- */

void cck_offsets(clcnn_conv_algo algo, const ref_conv *shape) {
    rcp_problem pb;
    rcp_problem_init(&pb, shape, 1, 2, 61);
    int ok = rcp_check_offsets(&pb, algo, cck_atol(algo, &pb.cv), cck_rtol(algo));
    rcp_problem_free(&pb);
    assert_true(ok);
}

void cck_determinism(clcnn_conv_algo algo, const ref_conv *shape) {
    rcp_problem pb;
    rcp_problem_init(&pb, shape, 1, 1, 71);
    float *y1 = rcp_run_forward(&pb, algo);
    float *y2 = rcp_run_forward(&pb, algo);
    assert_memory_equal(y1, y2, ref_conv_y_size(&pb.cv) * sizeof(float));
    free(y1);
    free(y2);
    rcp_problem_free(&pb);
}

void cck_dproblem_init(cck_dproblem *pb, const ref_conv *shape, uint64_t seed) {
    pb->cv = *shape;
    assert_true(ref_conv_out(&pb->cv));
    size_t nx = ref_conv_x_size(&pb->cv), nw = ref_conv_w_size(&pb->cv);
    size_t ny = ref_conv_y_size(&pb->cv);
    tu_rng rng = tu_rng_seed(seed);
    pb->w = malloc(nw * sizeof(float));
    pb->dy = malloc(ny * sizeof(float));
    pb->ref = malloc(nx * sizeof(double));
    assert_true(pb->w && pb->dy && pb->ref);
    tu_fill_uniform(&rng, pb->w, nw, -1, 1);
    tu_fill_uniform(&rng, pb->dy, ny, -1, 1);
    double *wd = rcp_to_double(pb->w, nw), *dyd = rcp_to_double(pb->dy, ny);
    ref_conv2d_backward_data(&pb->cv, dyd, wd, pb->ref);
    free(wd);
    free(dyd);
}

void cck_dproblem_free(cck_dproblem *pb) {
    free(pb->w);
    free(pb->dy);
    free(pb->ref);
}

/* dx starts as NaN; a dx element sums L = (k/groups)*r*s products: the forward's
 * tolerances with that L (as test_conv2d_backward.c). */
int cck_check_data(clcnn_conv_algo algo, const ref_conv *shape, uint64_t seed, int use_nmse) {
    cck_dproblem pb;
    cck_dproblem_init(&pb, shape, seed);
    const ref_conv cv = pb.cv;
    size_t nx = ref_conv_x_size(&cv);
    size_t xs[4] = {cv.n, cv.c, cv.h, cv.w}, ws[4] = {cv.k, cv.c / cv.groups, cv.r, cv.s};
    size_t ys[4] = {cv.n, cv.k, cv.p, cv.q};
    clcnn_tensor *tw = tu_tensor_from(4, ws, pb.w), *tdy = tu_tensor_from(4, ys, pb.dy);
    clcnn_tensor *tdx = tu_tensor_from(4, xs, NULL);
    TU_OK(clcnn_tensor_fill(tdx, NAN));
    clcnn_conv2d_desc d = rcp_make_desc(&cv, algo);
    TU_OK(clcnn_conv2d_backward_data(tu_device(), &d, tdy, tw, tdx));
    float *got = tu_download(tdx);
    char what[320];
    rcp_describe(&cv, algo, 0, 0, what, sizeof what);
    strcat(what, " (backward data)");
    double l = (double)(cv.k / cv.groups) * cv.r * cv.s;
    double scale = algo == CLCNN_CONV_WINOGRAD ? 4.0 : 1.0; /* as for forward */
    int ok = tu_close(what, got, pb.ref, nx, scale * 1e-6 * l, scale * 1e-5);
    if (use_nmse && !(tu_nmse(got, pb.ref, nx) <= 1e-7)) {
        fprintf(stderr, "NMSE %s: %g > 1e-7\n", what, tu_nmse(got, pb.ref, nx));
        ok = 0;
    }
    free(got);
    cck_dproblem_free(&pb);
    clcnn_tensor_free(tw);
    clcnn_tensor_free(tdy);
    clcnn_tensor_free(tdx);
    return ok;
}
