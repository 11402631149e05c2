/* A depthwise convolution and the 1x1 convolution after it as one kernel
 * (lib/ops/conv2d_dwpw.c; cl/conv2d_implicit.cl with DWF), through the prepared forward
 * with pre_dw and through plans (lib/exec/plan_fuse.c's fuse_depthwise_pair).
 *
 * Prepared: hand-picked shapes (odd sizes, batch 1, 1x1 images, strides 1 to 4, 3x3 and
 * 5x5 kernels compiled in, dilation and stride 3 on the generic path, no padding, grouped
 * 1x1 layers, more input channels than one reduction chunk holds, 56x56 planes) with three
 * epilogues each (depthwise bias and activation none / relu / leaky 0.2; the 1x1 layer's
 * bias, activation and residual, also in place), against the double reference of the two
 * layers: x, z and y are views at offsets of one NaN-filled buffer and the guards must
 * stay NaN, the weights are poisoned after create, two runs give the same bytes, and the
 * two layers run apart (depthwise, then implicit_gemm) give the same bytes whenever the 1x1
 * layer's reduction fits one chunk. Refusals: a 1x1 layer with stride or padding or a
 * larger kernel, a forced algorithm other than implicit_gemm, depthwise weights of the
 * wrong shape or missing.
 *
 * Plans: a depthwise Conv + BatchNormalization + Relu read only by a 1x1 Conv + Add (the
 * residual) is one step with the bytes of the plan without the fusion; not fused when the
 * depthwise output is read elsewhere too (a graph output), when the next convolution is
 * 3x3 or strided, when the depthwise group ends in a residual Add, and below the 1568
 * output positions over the batch plan_fuse.c fuses from.
 *
 * Tolerances: the depthwise outputs (r*s terms of magnitude <= 1, plus a bias) carry
 * rounding into the 1x1 layer's sum of cpg terms: |got - ref| <= 2e-6 * cpg * (r*s + 2) +
 * 1e-5 * |ref|. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "reference_conv.h"
#include "reference_conv_problem.h"

/* One case: the depthwise layer dw (k == c == groups), the 1x1 layer's k and groups, the
 * epilogues. */
typedef struct dcase {
    ref_conv dw;
    int k, groups;
    int dw_bias, dw_act, bias, act, residual, inplace;
    uint64_t seed;
} dcase;

/* The 1x1 layer of c: on the depthwise output. */
static ref_conv pw_of(const dcase *c) {
    ref_conv pw = rcp_conv(c->dw.n, c->dw.c, c->dw.p, c->dw.q, c->k, 1, 1, 1, 0, 1, c->groups);
    assert_true(ref_conv_out(&pw));
    return pw;
}

static void act_ref(double *v, size_t n, int act) {
    for (size_t i = 0; i < n; i++) {
        if (act == CLCNN_ACT_RELU && v[i] < 0) v[i] = 0;
        if (act == CLCNN_ACT_LEAKY_RELU && v[i] < 0) v[i] *= 0.2;
    }
}

/* Host data and the reference of a case. */
typedef struct ddata {
    float *x, *dww, *dwb, *w, *b, *z;
    double *ref;
    size_t nx, ny;
} ddata;

static float *rand_floats(tu_rng *r, size_t n) {
    float *f = malloc(n * sizeof *f);
    assert_non_null(f);
    tu_fill_uniform(r, f, n, -1, 1);
    return f;
}

static void ddata_init(ddata *d, const dcase *c) {
    const ref_conv *dw = &c->dw;
    ref_conv pw = pw_of(c);
    tu_rng r = tu_rng_seed(c->seed);
    d->nx = ref_conv_x_size(dw);
    d->ny = ref_conv_y_size(&pw);
    size_t nt = ref_conv_y_size(dw), nw = ref_conv_w_size(&pw);
    d->x = rand_floats(&r, d->nx);
    d->dww = rand_floats(&r, ref_conv_w_size(dw));
    d->dwb = rand_floats(&r, (size_t)dw->c);
    d->w = rand_floats(&r, nw);
    d->b = rand_floats(&r, (size_t)c->k);
    d->z = rand_floats(&r, d->ny);
    double *xd = rcp_to_double(d->x, d->nx), *dwwd = rcp_to_double(d->dww, ref_conv_w_size(dw));
    double *dwbd = rcp_to_double(d->dwb, (size_t)dw->c), *wd = rcp_to_double(d->w, nw);
    double *bd = rcp_to_double(d->b, (size_t)c->k), *t = malloc(nt * sizeof *t);
    d->ref = malloc(d->ny * sizeof *d->ref);
    assert_true(t && d->ref);
    ref_conv2d_forward(dw, xd, dwwd, c->dw_bias ? dwbd : NULL, 0, 0.0, t);
    act_ref(t, nt, c->dw_act);
    ref_conv2d_forward(&pw, t, wd, c->bias ? bd : NULL, 0, 0.0, d->ref);
    for (size_t i = 0; c->residual && i < d->ny; i++)
        d->ref[i] += d->z[i];
    act_ref(d->ref, d->ny, c->act);
    free(xd);
    free(dwwd);
    free(dwbd);
    free(wd);
    free(bd);
    free(t);
}

static void ddata_free(ddata *d) {
    free(d->x);
    free(d->dww);
    free(d->dwb);
    free(d->w);
    free(d->b);
    free(d->z);
    free(d->ref);
}

static cc_conv_fwd_desc make_desc(const dcase *c, const clcnn_tensor *dww,
                                  const clcnn_tensor *dwb) {
    ref_conv pw = pw_of(c);
    cc_conv_fwd_desc d = {
        .conv = rcp_make_desc(&pw, CLCNN_CONV_AUTO),
        .x = {c->dw.n, c->dw.c, c->dw.h, c->dw.w},
        .w = {c->k, c->dw.c / c->groups, 1, 1},
        .act = (clcnn_activation)c->act,
        .alpha = 0.2f,
        .residual = c->residual,
        .pre_dw = 1,
        .dw = rcp_make_desc(&c->dw, CLCNN_CONV_AUTO),
        .dw_w = dww,
        .dw_b = dwb,
        .dw_act = (clcnn_activation)c->dw_act,
        .dw_alpha = 0.2f,
    };
    return d;
}

/* Whether the 1x1 layer's reduction (cpg rows of 16 floats per tile, up to 4 tiles per
 * work-item) fits one chunk of the implicit GEMM on this device, fused or not: then both
 * sum in one fma chain. */
static int one_chunk(const dcase *c) {
    const clcnn_device_info *info = clcnn_device_get_info(tu_device());
    size_t cpg = (size_t)(c->dw.c / c->groups);
    size_t lws = info->type == CLCNN_DEVICE_GPU ? 64 : 1;
    return cpg <= 1024 && cpg * 16 * sizeof(float) * 4 * lws * 2 <= info->local_mem_bytes;
}

/* The two layers apart, depthwise then implicit_gemm, into a fresh y (z: the case's). */
static float *run_apart(const dcase *c, const ddata *d, const clcnn_tensor *x) {
    clcnn_device *dev = tu_device();
    ref_conv pw = pw_of(c);
    size_t dws[4] = {c->dw.c, 1, c->dw.r, c->dw.s}, ws[4] = {c->k, c->dw.c / c->groups, 1, 1};
    size_t ts[4] = {pw.n, pw.c, pw.h, pw.w}, ys[4] = {pw.n, pw.k, pw.p, pw.q};
    clcnn_tensor *dww = tu_tensor_from(4, dws, d->dww), *w = tu_tensor_from(4, ws, d->w);
    clcnn_tensor *dwb = c->dw_bias ? tu_tensor_from(1, dws, d->dwb) : NULL;
    clcnn_tensor *b = c->bias ? tu_tensor_from(1, (size_t[]){c->k}, d->b) : NULL;
    clcnn_tensor *t = tu_tensor_new(CLCNN_F32, 4, ts), *y = tu_tensor_from(4, ys, d->z);
    cc_conv_fwd_desc dd = {.conv = rcp_make_desc(&c->dw, CLCNN_CONV_DEPTHWISE),
                           .x = {c->dw.n, c->dw.c, c->dw.h, c->dw.w},
                           .w = {c->dw.c, 1, c->dw.r, c->dw.s},
                           .act = (clcnn_activation)c->dw_act,
                           .alpha = 0.2f};
    cc_conv_fwd_desc pd = {.conv = rcp_make_desc(&pw, CLCNN_CONV_IMPLICIT_GEMM),
                           .x = {pw.n, pw.c, pw.h, pw.w},
                           .w = {c->k, c->dw.c / c->groups, 1, 1},
                           .act = (clcnn_activation)c->act,
                           .alpha = 0.2f,
                           .residual = c->residual};
    cc_conv_fwd *fd = NULL, *fp = NULL;
    TU_OK(cc_conv_fwd_create(dev, &dd, dww, dwb, &fd));
    TU_OK(cc_conv_fwd_create(dev, &pd, w, b, &fp));
    TU_OK(cc_conv_fwd_run(fd, x, NULL, t));
    TU_OK(cc_conv_fwd_run(fp, t, c->residual ? y : NULL, y));
    float *out = tu_download(y);
    cc_conv_fwd_free(fd);
    cc_conv_fwd_free(fp);
    clcnn_tensor_free(dww);
    clcnn_tensor_free(dwb);
    clcnn_tensor_free(w);
    clcnn_tensor_free(b);
    clcnn_tensor_free(t);
    clcnn_tensor_free(y);
    return out;
}

/* Runs a case; 1 when everything matches. */
static int run_case(const dcase *c0) {
    clcnn_device *dev = tu_device();
    dcase cs = *c0;
    assert_true(ref_conv_out(&cs.dw));
    const dcase *c = &cs;
    ref_conv pw = pw_of(c);
    char what[320];
    snprintf(what, sizeof what,
             "dw+1x1 n%d c%d %dx%d dw %dx%d s%d p%d d%d bias %d act %d -> k%d g%d bias %d act %d "
             "residual %d%s",
             c->dw.n, c->dw.c, c->dw.h, c->dw.w, c->dw.r, c->dw.s, c->dw.stride_h, c->dw.pad_h,
             c->dw.dilation_h, c->dw_bias, c->dw_act, c->k, c->groups, c->bias, c->act, c->residual,
             c->inplace ? " in place" : "");
    ddata d;
    ddata_init(&d, c);
    rcp_arena a;
    size_t xs[4] = {c->dw.n, c->dw.c, c->dw.h, c->dw.w}, ys[4] = {pw.n, pw.k, pw.p, pw.q};
    rcp_arena_init(&a, xs, ys, c->residual, c->inplace, d.x, d.z);
    size_t dws[4] = {c->dw.c, 1, c->dw.r, c->dw.s}, ws[4] = {c->k, c->dw.c / c->groups, 1, 1};
    clcnn_tensor *dww = rcp_offset_tensor(4, dws, 5, d.dww);
    clcnn_tensor *dwb = c->dw_bias ? rcp_offset_tensor(1, dws, 2, d.dwb) : NULL;
    clcnn_tensor *w = rcp_offset_tensor(4, ws, 9, d.w);
    clcnn_tensor *b = c->bias ? rcp_offset_tensor(1, (size_t[]){c->k}, 1, d.b) : NULL;
    cc_conv_fwd_desc desc = make_desc(c, dww, dwb);
    cc_conv_fwd *f = NULL;
    TU_OK(cc_conv_fwd_create(dev, &desc, w, b, &f));
    assert_int_equal(cc_conv_fwd_algo(f), CLCNN_CONV_IMPLICIT_GEMM);
    /* the parameters are not kept */
    TU_OK(clcnn_tensor_fill(dww, NAN));
    TU_OK(clcnn_tensor_fill(w, NAN));
    if (dwb) TU_OK(clcnn_tensor_fill(dwb, NAN));
    if (b) TU_OK(clcnn_tensor_fill(b, NAN));

    TU_OK(cc_conv_fwd_run(f, a.x, a.z, a.y));
    float *y1 = tu_download(a.y);
    double l = (double)(c->dw.c / c->groups) * (c->dw.r * c->dw.s + 2);
    int ok = tu_close(what, y1, d.ref, d.ny, 2e-6 * l, 1e-5);
    ok &= rcp_arena_guards_ok(&a, what);
    if (c->inplace) TU_OK(clcnn_tensor_upload(a.z, d.z, d.ny * sizeof(float)));
    TU_OK(cc_conv_fwd_run(f, a.x, a.z, a.y));
    float *y2 = tu_download(a.y);
    if (memcmp(y1, y2, d.ny * sizeof(float)) != 0) {
        fprintf(stderr, "%s: a second run gave different bytes\n", what);
        ok = 0;
    }
    if (one_chunk(c)) {
        float *y3 = run_apart(c, &d, a.x);
        if (memcmp(y1, y3, d.ny * sizeof(float)) != 0) {
            fprintf(stderr, "%s: differs from the two layers run apart\n", what);
            ok = 0;
        }
        free(y3);
    }
    free(y1);
    free(y2);
    cc_conv_fwd_free(f);
    clcnn_tensor_free(dww);
    clcnn_tensor_free(dwb);
    clcnn_tensor_free(w);
    clcnn_tensor_free(b);
    rcp_arena_free(&a);
    ddata_free(&d);
    return ok;
}

/* rcp_conv for a depthwise layer of c channels. */
static ref_conv dwc(int n, int c, int h, int w, int r, int stride, int pad, int dil) {
    return rcp_conv(n, c, h, w, c, r, r, stride, pad, dil, c);
}

static void test_shapes(void **state) {
    (void)state;
    /* big: left out of small runs (CLCNN_TEST_SMALL: Oclgrind) */
    const struct {
        ref_conv dw;
        int k, groups, big;
    } shapes[] = {
        {dwc(2, 8, 13, 11, 3, 1, 1, 1), 6, 1, 0},   /* odd sizes */
        {dwc(1, 5, 14, 14, 3, 2, 1, 1), 7, 1, 0},   /* stride 2, batch 1 */
        {dwc(2, 6, 9, 10, 5, 1, 2, 1), 4, 1, 0},    /* 5x5 */
        {dwc(1, 4, 11, 12, 5, 2, 2, 1), 3, 1, 0},   /* 5x5 stride 2 */
        {dwc(2, 4, 12, 12, 3, 1, 2, 2), 5, 1, 0},   /* dilation 2: geometry from the arguments */
        {dwc(1, 6, 17, 19, 3, 3, 1, 1), 3, 1, 0},   /* stride 3: element by element */
        {dwc(1, 3, 16, 33, 4, 4, 0, 1), 2, 1, 0},   /* 4x4 stride 4: vector loads of every 4th */
        {dwc(2, 12, 8, 8, 3, 1, 1, 1), 8, 4, 0},    /* a grouped 1x1 layer */
        {dwc(1, 3, 1, 1, 3, 1, 1, 1), 2, 1, 0},     /* 1x1 image */
        {dwc(1, 4, 20, 20, 3, 1, 0, 1), 5, 1, 0},   /* no padding */
        {dwc(2, 7, 7, 7, 3, 2, 1, 1), 9, 1, 0},     /* 7x7 -> 4x4 */
        {dwc(2, 16, 56, 56, 3, 1, 1, 1), 8, 1, 1},  /* MobileNet's plane */
        {dwc(1, 24, 28, 28, 3, 1, 1, 1), 96, 1, 1}, /* an expansion */
        {dwc(1, 1030, 3, 3, 3, 1, 1, 1), 4, 1, 1},  /* more than one reduction chunk */
    };
    int n = (int)(sizeof shapes / sizeof shapes[0]), failures = 0, runs = 0;
    for (int i = 0; i < n; i++) {
        if (shapes[i].big && tu_small()) continue;
        dcase v[3] = {
            {shapes[i].dw, shapes[i].k, shapes[i].groups, 1, CLCNN_ACT_RELU, 1,
             CLCNN_ACT_LEAKY_RELU, 1, 0, 100 + (uint64_t)i},
            {shapes[i].dw, shapes[i].k, shapes[i].groups, 0, CLCNN_ACT_NONE, i % 2, CLCNN_ACT_RELU,
             1, 1, 200 + (uint64_t)i},
            {shapes[i].dw, shapes[i].k, shapes[i].groups, 1, CLCNN_ACT_LEAKY_RELU, 0,
             CLCNN_ACT_NONE, 0, 0, 300 + (uint64_t)i},
        };
        for (int j = 0; j < 3; j++, runs++)
            failures += !run_case(&v[j]);
    }
    if (failures) fail_msg("%d of %d depthwise + 1x1 cases failed", failures, runs);
}

/* create must fail with want and a message holding needle. */
static void expect_create_error(const cc_conv_fwd_desc *d, const clcnn_tensor *w, clcnn_status want,
                                const char *needle) {
    cc_conv_fwd *f = NULL;
    assert_int_equal(cc_conv_fwd_create(tu_device(), d, w, NULL, &f), want);
    assert_null(f);
    if (!strstr(clcnn_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", clcnn_last_error(), needle);
}

static void test_refusals(void **state) {
    (void)state;
    dcase c = {.dw = dwc(1, 4, 8, 8, 3, 1, 1, 1), .k = 6, .groups = 1};
    assert_true(ref_conv_out(&c.dw));
    clcnn_tensor *dww = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 1, 3, 3});
    clcnn_tensor *bad = tu_tensor_new(CLCNN_F32, 4, (size_t[]){4, 2, 3, 3});
    clcnn_tensor *w = tu_tensor_new(CLCNN_F32, 4, (size_t[]){6, 4, 1, 1});
    clcnn_tensor *w3 = tu_tensor_new(CLCNN_F32, 4, (size_t[]){6, 4, 3, 3});
    cc_conv_fwd_desc d = make_desc(&c, dww, NULL);
    cc_conv_fwd_desc e = d;
    e.conv.stride_h = 2;
    expect_create_error(&e, w, CLCNN_ERR_UNSUPPORTED, "1x1 with stride 1");
    e = d;
    e.conv.pad_w = 1;
    expect_create_error(&e, w, CLCNN_ERR_UNSUPPORTED, "no padding");
    e = d;
    e.w[2] = e.w[3] = 3;
    e.conv.pad_h = e.conv.pad_w = 1;
    expect_create_error(&e, w3, CLCNN_ERR_UNSUPPORTED, "must be 1x1");
    e = d;
    e.conv.algo = CLCNN_CONV_DIRECT;
    expect_create_error(&e, w, CLCNN_ERR_UNSUPPORTED, "direct");
    e = d;
    e.dw_w = bad;
    expect_create_error(&e, w, CLCNN_ERR_SHAPE, "depthwise weights");
    e = d;
    e.dw_w = NULL;
    expect_create_error(&e, w, CLCNN_ERR_INVALID_ARG, "dw_w");
    e = d;
    e.dw_act = (clcnn_activation)77;
    expect_create_error(&e, w, CLCNN_ERR_INVALID_ARG, "depthwise activation");
    clcnn_tensor_free(dww);
    clcnn_tensor_free(bad);
    clcnn_tensor_free(w);
    clcnn_tensor_free(w3);
}

/* ---- plans --------------------------------------------------------------------------- */

/* variant: 0 fused (dw Conv + BN + Relu -> 1x1 Conv + Add x); 1 the depthwise output also
 * a graph output; 2 the next Conv 3x3; 3 the next Conv with stride 2; 4 the depthwise
 * group ends in an Add; 5 a 14x14 plane at batch 2 (392 positions, below the 1568
 * plan_fuse.c fuses from); 6 SiLU
 * (Sigmoid and Mul, the depthwise convolution's own epilogue) instead of the Relu. */
static clcnn_graph *pair_graph(int v, int hw, tu_rng *r, float **host) {
    /* a 1x1 reduction of 32: implicit_gemm under the CPU rule (from 16), so the pair fuses
     * on every CPU */
    enum { C = 32 };
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){CLCNN_GRAPH_BATCH, C, hw, hw}));
    int ks = v == 2 ? 3 : 1;
    host[0] = tu_graph_random_init(g, r, "dww", 4, (int64_t[]){C, 1, 3, 3}, -1, 1);
    host[1] = tu_graph_random_init(g, r, "w", 4, (int64_t[]){C, C, ks, ks}, -1, 1);
    host[2] = tu_graph_random_init(g, r, "gamma", 1, (int64_t[]){C}, 0.5f, 1.5f);
    host[3] = tu_graph_random_init(g, r, "beta", 1, (int64_t[]){C}, -1, 1);
    host[4] = tu_graph_random_init(g, r, "mean", 1, (int64_t[]){C}, -0.5f, 0.5f);
    host[5] = tu_graph_random_init(g, r, "var", 1, (int64_t[]){C}, 0.5f, 2);
    clcnn_attr dwa[] = {INT("group", C), INTS("pads", 1, 1, 1, 1)};
    const char *d = "d", *bn = "bn", *a = "a", *y = "y", *s = "s", *o = "o";
    TU_OK(clcnn_graph_add_node(g, "Conv", "dw", 2, (const char *[]){"x", "dww"}, 1, &d, 2, dwa));
    TU_OK(clcnn_graph_add_node(g, "BatchNormalization", "bn", 5,
                               (const char *[]){"d", "gamma", "beta", "mean", "var"}, 1, &bn, 0,
                               NULL));
    if (v == 4) {
        TU_OK(
            clcnn_graph_add_node(g, "Add", "res", 2, (const char *[]){"bn", "x"}, 1, &s, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Relu", "relu", 1, (const char *[]){"s"}, 1, &a, 0, NULL));
    } else if (v == 6) {
        TU_OK(clcnn_graph_add_node(g, "Sigmoid", "sig", 1, (const char *[]){"bn"}, 1, &s, 0, NULL));
        TU_OK(
            clcnn_graph_add_node(g, "Mul", "mul", 2, (const char *[]){"bn", "s"}, 1, &a, 0, NULL));
    } else {
        TU_OK(clcnn_graph_add_node(g, "Relu", "relu", 1, (const char *[]){"bn"}, 1, &a, 0, NULL));
    }
    clcnn_attr pwa[] = {INTS("pads", 1, 1, 1, 1), INTS("strides", 2, 2)};
    int npwa = v == 2 ? 1 : 0;
    const clcnn_attr *pa = pwa;
    if (v == 3) {
        pa = pwa + 1;
        npwa = 1;
    }
    TU_OK(clcnn_graph_add_node(g, "Conv", "pw", 2, (const char *[]){"a", "w"}, 1, &y, npwa, pa));
    if (v == 3) {
        TU_OK(clcnn_graph_add_output(g, "y"));
    } else {
        TU_OK(clcnn_graph_add_node(g, "Add", "add", 2, (const char *[]){"y", "x"}, 1, &o, 0, NULL));
        TU_OK(clcnn_graph_add_output(g, "o"));
    }
    if (v == 1) TU_OK(clcnn_graph_add_output(g, "a"));
    return g;
}

static void test_plans(void **state) {
    (void)state;
    for (int v = 0; v < 7; v++) {
        int hw = v == 5 ? 14 : 56, n = 2;
        tu_rng r = tu_rng_seed(40 + (uint64_t)v);
        float *host[6];
        clcnn_graph *g = pair_graph(v, hw, &r, host);
        size_t xs[4] = {(size_t)n, 32, (size_t)hw, (size_t)hw}, nx = (size_t)n * 32 * hw * hw;
        float *xh = malloc(nx * sizeof *xh);
        tu_fill_uniform(&r, xh, nx, -1, 1);
        clcnn_tensor *x = tu_tensor_from(4, xs, xh);
        float *got[2];
        size_t ny = 0;
        int steps[2], fused[2];
        for (int fd = 1; fd >= 0; fd--) {
            clcnn_plan_options o = clcnn_plan_options_default();
            o.fuse_depthwise = fd;
            clcnn_plan *p = NULL;
            TU_OK(clcnn_plan_create(tu_device(), g, n, &o, &p));
            const clcnn_tensor *in = x;
            TU_OK(clcnn_plan_run(p, &in, 1));
            got[fd] = tu_download(clcnn_plan_output(p, 0));
            ny = clcnn_tensor_numel(clcnn_plan_output(p, 0));
            clcnn_plan_memory m;
            clcnn_plan_get_memory(p, &m);
            steps[fd] = m.steps;
            fused[fd] = m.fused_depthwise;
            if (fd && v == 0) assert_non_null(strstr(clcnn_plan_step_desc(p, 0), "depthwise+"));
            clcnn_plan_free(p);
        }
        int on = v == 0 && clcnn_device_get_info(tu_device())->type == CLCNN_DEVICE_CPU;
        assert_int_equal(fused[1], on);
        assert_int_equal(fused[0], 0);
        assert_int_equal(steps[0], steps[1] + on);
        assert_memory_equal(got[0], got[1], ny * sizeof(float)); /* fused or not, same bytes */
        free(got[0]);
        free(got[1]);
        free(xh);
        for (int i = 0; i < 6; i++)
            free(host[i]);
        clcnn_tensor_free(x);
        clcnn_graph_free(g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_plans),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
