/* ConvTranspose through the graph and plans, and Conv with per-side pads (explicit or
 * auto_pad SAME_UPPER / SAME_LOWER), against double references written straight from the
 * ONNX definitions: every input element scatters x * w into the output at
 * (i stride - pad_top + r dilation, j stride - pad_left + s dilation). Strides 1-3,
 * padding, output_padding, output_shape, auto_pad, groups, dilation, batch 1 and odd
 * sizes; weights as initializers or as a graph input; bias optional. Errors name the node. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct convt_case {
    int n, c, h, w, k, group, r, s;
    int stride[2], dil[2];
    int pads[4];   /* top, left, bottom, right */
    int opad[2];   /* output_padding */
    int oshape[2]; /* output_shape (0: absent) */
    const char *auto_pad;
    int bias, w_input; /* weights as a graph input instead of an initializer */
} convt_case;

static int64_t floor_half(int64_t v) {
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

/* The output size and the effective (top/left) pads per the ONNX spec. */
static void convt_geometry(const convt_case *t, int64_t out[2], int64_t lo[2]) {
    int64_t in[2] = {t->h, t->w}, ker[2] = {t->r, t->s};
    for (int d = 0; d < 2; d++) {
        int64_t full = t->stride[d] * (in[d] - 1) + t->dil[d] * (ker[d] - 1) + 1 + t->opad[d];
        int64_t o = t->oshape[d];
        int upper = t->auto_pad && !strcmp(t->auto_pad, "SAME_UPPER");
        if (!o && t->auto_pad && strncmp(t->auto_pad, "SAME", 4) == 0) o = in[d] * t->stride[d];
        if (o) {
            int64_t total = full - o, half = floor_half(total);
            lo[d] = upper ? half : total - half;
        } else {
            lo[d] = t->pads[d];
            o = full - t->pads[d] - t->pads[d + 2];
        }
        out[d] = o;
    }
}

/* y (n, k, oh, ow) = ConvTranspose(x (n, c, h, w), w (c, k/group, r, s)) + b. */
static double *ref_convt(const convt_case *t, const float *x, const float *w, const float *b,
                         int64_t oh, int64_t ow, const int64_t lo[2]) {
    size_t ny = (size_t)t->n * t->k * oh * ow;
    double *y = calloc(ny, sizeof *y);
    int cg = t->c / t->group, kg = t->k / t->group;
    for (int n = 0; n < t->n; n++)
        for (int c = 0; c < t->c; c++)
            for (int i = 0; i < t->h; i++)
                for (int j = 0; j < t->w; j++) {
                    double xv = x[((size_t)(n * t->c + c) * t->h + i) * t->w + j];
                    for (int kk = 0; kk < kg; kk++) {
                        int k = (c / cg) * kg + kk;
                        for (int r = 0; r < t->r; r++)
                            for (int s = 0; s < t->s; s++) {
                                int64_t oi = (int64_t)i * t->stride[0] - lo[0] + r * t->dil[0];
                                int64_t oj = (int64_t)j * t->stride[1] - lo[1] + s * t->dil[1];
                                if (oi < 0 || oi >= oh || oj < 0 || oj >= ow) continue;
                                double wv = w[((size_t)(c * kg + kk) * t->r + r) * t->s + s];
                                y[((size_t)(n * t->k + k) * oh + oi) * ow + oj] += xv * wv;
                            }
                    }
                }
    if (b)
        for (size_t i = 0; i < ny; i++)
            y[i] += b[(i / (size_t)(oh * ow)) % (size_t)t->k];
    return y;
}

static void run_convt_case(const convt_case *t, uint64_t seed) {
    tu_rng rng = tu_rng_seed(seed);
    size_t nx = (size_t)t->n * t->c * t->h * t->w;
    size_t nw = (size_t)t->c * (t->k / t->group) * t->r * t->s;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(t->k * sizeof *b);
    tu_fill_uniform(&rng, x, nx, -1.0f, 1.0f);
    tu_fill_uniform(&rng, w, nw, -1.0f, 1.0f);
    tu_fill_uniform(&rng, b, (size_t)t->k, -1.0f, 1.0f);
    int64_t out[2], lo[2];
    convt_geometry(t, out, lo);

    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4,
                                (int64_t[]){CLCNN_GRAPH_BATCH, t->c, t->h, t->w}));
    int64_t wd[4] = {t->c, t->k / t->group, t->r, t->s};
    if (t->w_input)
        TU_OK(clcnn_graph_add_input(g, "w", CLCNN_F32, 4, wd));
    else
        TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 4, wd, w));
    if (t->bias) TU_OK(clcnn_graph_add_initializer(g, "b", CLCNN_F32, 1, (int64_t[]){t->k}, b));
    /* the attribute values live as long as the node is added */
    const int64_t strides[2] = {t->stride[0], t->stride[1]}, dil[2] = {t->dil[0], t->dil[1]};
    const int64_t ks[2] = {t->r, t->s}, op[2] = {t->opad[0], t->opad[1]};
    const int64_t os[2] = {t->oshape[0], t->oshape[1]};
    const int64_t pads[4] = {t->pads[0], t->pads[1], t->pads[2], t->pads[3]};
    clcnn_attr a[8];
    int na = 0;
    a[na++] = (clcnn_attr){"strides", CLCNN_ATTR_INTS, 0, 0.0f, strides, NULL, 2, NULL};
    a[na++] = (clcnn_attr){"dilations", CLCNN_ATTR_INTS, 0, 0.0f, dil, NULL, 2, NULL};
    a[na++] = INT("group", t->group);
    a[na++] = (clcnn_attr){"kernel_shape", CLCNN_ATTR_INTS, 0, 0.0f, ks, NULL, 2, NULL};
    if (t->auto_pad)
        a[na++] = STR("auto_pad", t->auto_pad);
    else
        a[na++] = (clcnn_attr){"pads", CLCNN_ATTR_INTS, 0, 0.0f, pads, NULL, 4, NULL};
    if (op[0] || op[1])
        a[na++] = (clcnn_attr){"output_padding", CLCNN_ATTR_INTS, 0, 0.0f, op, NULL, 2, NULL};
    if (os[0]) a[na++] = (clcnn_attr){"output_shape", CLCNN_ATTR_INTS, 0, 0.0f, os, NULL, 2, NULL};
    clcnn_status st =
        clcnn_graph_add_node(g, "ConvTranspose", "ct", t->bias ? 3 : 2,
                             (const char *[]){"x", "w", "b"}, 1, (const char *[]){"y"}, na, a);
    if (st != CLCNN_OK) fail_msg("ConvTranspose: %s", clcnn_last_error());
    TU_OK(clcnn_graph_add_output(g, "y"));
    TU_OK(clcnn_graph_check(g));
    int nd = 0;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_value_shape(g, "y", &nd, dims));
    assert_int_equal(nd, 4);
    if (dims[1] != t->k || dims[2] != out[0] || dims[3] != out[1])
        fail_msg("y is [N,%lld,%lld,%lld], want [N,%d,%lld,%lld]", (long long)dims[1],
                 (long long)dims[2], (long long)dims[3], t->k, (long long)out[0],
                 (long long)out[1]);

    clcnn_plan *p = NULL;
    if (clcnn_plan_create(tu_device(), g, t->n, NULL, &p) != CLCNN_OK)
        fail_msg("plan: %s", clcnn_last_error());
    size_t xs[4] = {(size_t)t->n, (size_t)t->c, (size_t)t->h, (size_t)t->w};
    size_t ws[4] = {(size_t)wd[0], (size_t)wd[1], (size_t)wd[2], (size_t)wd[3]};
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *wt = tu_tensor_from(4, ws, w);
    const clcnn_tensor *in[2] = {xt, wt};
    TU_OK(clcnn_plan_run(p, in, t->w_input ? 2 : 1));
    float *got = tu_download(clcnn_plan_output(p, 0));
    double *ref = ref_convt(t, x, w, t->bias ? b : NULL, out[0], out[1], lo);
    char what[200];
    snprintf(what, sizeof what,
             "ConvTranspose x %dx%dx%dx%d k %d group %d %dx%d stride %dx%d dil %dx%d pads "
             "%d,%d,%d,%d opad %d,%d oshape %d,%d %s%s [%s]",
             t->n, t->c, t->h, t->w, t->k, t->group, t->r, t->s, t->stride[0], t->stride[1],
             t->dil[0], t->dil[1], t->pads[0], t->pads[1], t->pads[2], t->pads[3], t->opad[0],
             t->opad[1], t->oshape[0], t->oshape[1], t->auto_pad ? t->auto_pad : "",
             t->bias ? " bias" : "", clcnn_plan_step_desc(p, 0));
    size_t ny = (size_t)t->n * t->k * out[0] * out[1];
    double reduction = (double)(t->c / t->group) * t->r * t->s;
    if (!tu_close(what, got, ref, ny, 1e-5 * reduction, 1e-5 * reduction)) fail_msg("%s", what);
    free(got);
    free(ref);
    clcnn_tensor_free(xt);
    clcnn_tensor_free(wt);
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    free(x);
    free(w);
    free(b);
}

static void test_convtranspose(void **state) {
    (void)state;
    static const convt_case cases[] = {
        /* n  c  h  w  k  g  r  s  stride  dil     pads          opad    oshape  auto bias win */
        {1, 1, 3, 3, 2, 1, 3, 3, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0, 0}, NULL, 0, 0},
        {2, 3, 5, 4, 4, 1, 3, 3, {2, 2}, {1, 1}, {1, 1, 1, 1}, {0, 0}, {0, 0}, NULL, 1, 0},
        {2, 3, 5, 4, 4, 1, 3, 3, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {0, 0}, NULL, 1, 0},
        {1, 2, 7, 5, 3, 1, 3, 2, {3, 2}, {1, 1}, {0, 1, 2, 0}, {2, 1}, {0, 0}, NULL, 1, 0},
        {3, 4, 3, 5, 6, 2, 3, 3, {2, 1}, {1, 1}, {1, 0, 0, 1}, {0, 0}, {0, 0}, NULL, 1, 0},
        {1, 6, 4, 4, 6, 6, 3, 3, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}, {0, 0}, NULL, 1, 0},
        {2, 2, 4, 3, 2, 1, 2, 3, {1, 2}, {2, 2}, {1, 2, 1, 2}, {0, 0}, {0, 0}, NULL, 0, 0},
        {1, 2, 3, 3, 2, 1, 3, 3, {2, 2}, {2, 2}, {0, 0, 0, 0}, {0, 0}, {0, 0}, NULL, 1, 0},
        {1, 1, 3, 3, 2, 1, 3, 3, {3, 2}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {10, 8}, NULL, 1, 0},
        {1, 1, 3, 3, 2, 1, 3, 3, {3, 2}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {6, 5}, NULL, 1, 0},
        {2, 3, 3, 4, 2, 1, 3, 3, {2, 2}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0, 0}, "SAME_UPPER", 1, 0},
        {2, 3, 3, 4, 2, 1, 3, 3, {2, 2}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0, 0}, "SAME_LOWER", 0, 0},
        {1, 3, 5, 5, 2, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0, 0}, "VALID", 1, 0},
        {1, 3, 1, 1, 5, 1, 4, 4, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}, {0, 0}, NULL, 1, 0},
        {2, 4, 5, 3, 4, 2, 3, 3, {2, 2}, {1, 1}, {1, 1, 2, 2}, {1, 0}, {0, 0}, NULL, 1, 1},
        {1, 4, 4, 4, 2, 2, 3, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}, {0, 0}, {0, 0}, NULL, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_convt_case(&cases[i], 100 + i);
}

/* Seeded random shapes: every attribute drawn, pads sometimes larger than the kernel. */
static void test_convtranspose_random(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(2026);
    for (int i = 0; i < 24; i++) {
        convt_case t = {0};
        t.group = tu_rng_int(&r, 1, 3);
        t.n = tu_rng_int(&r, 1, 2);
        t.c = t.group * tu_rng_int(&r, 1, 3);
        t.k = t.group * tu_rng_int(&r, 1, 3);
        t.h = tu_rng_int(&r, 1, 6);
        t.w = tu_rng_int(&r, 1, 6);
        t.r = tu_rng_int(&r, 1, 4);
        t.s = tu_rng_int(&r, 1, 4);
        for (int d = 0; d < 2; d++) {
            t.stride[d] = tu_rng_int(&r, 1, 3);
            t.dil[d] = tu_rng_int(&r, 1, 2);
            t.opad[d] = tu_rng_int(&r, 0, (t.stride[d] > t.dil[d] ? t.stride[d] : t.dil[d]) - 1);
        }
        int ker[2] = {t.r, t.s}, in[2] = {t.h, t.w};
        for (int d = 0; d < 4; d++) { /* keep at least one output row and column */
            int full = t.stride[d % 2] * (in[d % 2] - 1) + t.dil[d % 2] * (ker[d % 2] - 1) + 1;
            int room = full + t.opad[d % 2] - 1 - (d >= 2 ? t.pads[d - 2] : 0);
            int hi = room < 4 ? room : 4;
            t.pads[d] = hi > 0 ? tu_rng_int(&r, 0, hi) : 0;
        }
        t.bias = tu_rng_int(&r, 0, 1);
        t.w_input = tu_rng_int(&r, 0, 3) == 0;
        run_convt_case(&t, 500 + (uint64_t)i);
    }
}

/* ---- Conv with per-side pads ----------------------------------------------------------- */

/* y = Conv(x (n, c, h, w), w (k, c, r, s)) with pads (top, left, bottom, right), stride
 * st, then optionally a batch norm (scale per channel sc, shift sh) and Relu. */
static double *ref_conv(int n, int c, int h, int wd, int k, int r, int s, int st, const int *pads,
                        const float *x, const float *w, const double *sc, const double *sh,
                        int relu, int *oh, int *ow) {
    *oh = (h + pads[0] + pads[2] - r) / st + 1;
    *ow = (wd + pads[1] + pads[3] - s) / st + 1;
    double *y = calloc((size_t)n * k * *oh * *ow, sizeof *y);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < k; o++)
            for (int i = 0; i < *oh; i++)
                for (int j = 0; j < *ow; j++) {
                    double acc = 0.0;
                    for (int cc = 0; cc < c; cc++)
                        for (int u = 0; u < r; u++)
                            for (int v = 0; v < s; v++) {
                                int xi = i * st - pads[0] + u, xj = j * st - pads[1] + v;
                                if (xi < 0 || xi >= h || xj < 0 || xj >= wd) continue;
                                acc += (double)x[((size_t)(b * c + cc) * h + xi) * wd + xj] *
                                       w[((size_t)(o * c + cc) * r + u) * s + v];
                            }
                    if (sc) acc = acc * sc[o] + sh[o];
                    if (relu && acc < 0) acc = 0;
                    y[((size_t)(b * k + o) * *oh + i) * *ow + j] = acc;
                }
    return y;
}

static void run_conv_pads(const int *pads, const char *auto_pad, int st, int bn_relu, int w_input,
                          uint64_t seed) {
    const int n = 2, c = 3, h = 7, wd = 6, k = 4, r = 3, s = 3;
    tu_rng rng = tu_rng_seed(seed);
    size_t nx = (size_t)n * c * h * wd, nw = (size_t)k * c * r * s;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
    tu_fill_uniform(&rng, x, nx, -1.0f, 1.0f);
    tu_fill_uniform(&rng, w, nw, -1.0f, 1.0f);
    float gamma[4] = {0.5f, 1.5f, -1.0f, 2.0f}, beta[4] = {0.1f, -0.2f, 0.3f, 0.0f};
    float mean[4] = {0.1f, 0.0f, -0.3f, 0.2f}, var[4] = {1.0f, 0.5f, 2.0f, 0.25f};
    double sc[4], sh[4];
    for (int i = 0; i < k; i++) {
        sc[i] = gamma[i] / sqrt((double)var[i] + 1e-5);
        sh[i] = beta[i] - mean[i] * sc[i];
    }
    int p[4] = {0, 0, 0, 0};
    if (pads) memcpy(p, pads, sizeof p);
    if (auto_pad) { /* SAME_*: output ceil(in / stride), the odd pixel at the end (UPPER) */
        int in[2] = {h, wd};
        for (int d = 0; d < 2; d++) {
            int o = (in[d] + st - 1) / st, total = (o - 1) * st + r - in[d];
            if (total < 0) total = 0;
            int small = total / 2;
            p[d] = !strcmp(auto_pad, "SAME_UPPER") ? small : total - small;
            p[d + 2] = total - p[d];
        }
    }
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){CLCNN_GRAPH_BATCH, c, h, wd}));
    int64_t wdims[4] = {k, c, r, s};
    if (w_input)
        TU_OK(clcnn_graph_add_input(g, "w", CLCNN_F32, 4, wdims));
    else
        TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 4, wdims, w));
    clcnn_attr a[2] = {INTS("strides", st, st),
                       auto_pad ? STR("auto_pad", auto_pad) : INTS("pads", p[0], p[1], p[2], p[3])};
    TU_OK(clcnn_graph_add_node(g, "Conv", "conv", 2, (const char *[]){"x", "w"}, 1,
                               (const char *[]){"c1"}, 2, a));
    const char *out = "c1";
    if (bn_relu) {
        int64_t kd[1] = {k};
        TU_OK(clcnn_graph_add_initializer(g, "gamma", CLCNN_F32, 1, kd, gamma));
        TU_OK(clcnn_graph_add_initializer(g, "beta", CLCNN_F32, 1, kd, beta));
        TU_OK(clcnn_graph_add_initializer(g, "mean", CLCNN_F32, 1, kd, mean));
        TU_OK(clcnn_graph_add_initializer(g, "var", CLCNN_F32, 1, kd, var));
        TU_OK(clcnn_graph_add_node(g, "BatchNormalization", "bn", 5,
                                   (const char *[]){"c1", "gamma", "beta", "mean", "var"}, 1,
                                   (const char *[]){"b1"}, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Relu", "relu", 1, (const char *[]){"b1"}, 1,
                                   (const char *[]){"y"}, 0, NULL));
        out = "y";
    }
    TU_OK(clcnn_graph_add_output(g, out));
    clcnn_plan *pl = NULL;
    if (clcnn_plan_create(tu_device(), g, n, NULL, &pl) != CLCNN_OK)
        fail_msg("plan: %s", clcnn_last_error());
    if (bn_relu && !w_input) assert_int_equal(clcnn_plan_num_steps(pl), 1); /* still fused */
    size_t xs[4] = {n, c, h, wd}, ws[4] = {k, c, r, s};
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *wt = tu_tensor_from(4, ws, w);
    const clcnn_tensor *in[2] = {xt, wt};
    TU_OK(clcnn_plan_run(pl, in, w_input ? 2 : 1));
    int oh, ow;
    double *ref = ref_conv(n, c, h, wd, k, r, s, st, p, x, w, bn_relu ? sc : NULL,
                           bn_relu ? sh : NULL, bn_relu, &oh, &ow);
    const clcnn_tensor *y = clcnn_plan_output(pl, 0);
    assert_int_equal(clcnn_tensor_dim(y, 2), oh);
    assert_int_equal(clcnn_tensor_dim(y, 3), ow);
    float *got = tu_download(y);
    char what[160];
    snprintf(what, sizeof what, "Conv pads %d,%d,%d,%d %s stride %d%s%s [%s]", p[0], p[1], p[2],
             p[3], auto_pad ? auto_pad : "", st, bn_relu ? " +BN+Relu" : "",
             w_input ? " weights per run" : "", clcnn_plan_step_desc(pl, 0));
    if (!tu_close(what, got, ref, (size_t)n * k * oh * ow, 1e-4, 1e-4)) fail_msg("%s", what);
    /* per-side pads: the padded copy of x is the step's buffer, reported as scratch */
    clcnn_plan_memory mem;
    clcnn_plan_get_memory(pl, &mem);
    if (p[0] != p[2] || p[1] != p[3])
        assert_int_equal(mem.scratch_bytes,
                         (size_t)n * c * (h + p[0] + p[2]) * (wd + p[1] + p[3]) * sizeof(float));
    else
        assert_int_equal(mem.scratch_bytes, 0);
    free(got);
    free(ref);
    clcnn_tensor_free(xt);
    clcnn_tensor_free(wt);
    clcnn_plan_free(pl);
    clcnn_graph_free(g);
    free(x);
    free(w);
}

static void test_conv_asymmetric_pads(void **state) {
    (void)state;
    run_conv_pads((const int[]){1, 0, 2, 1}, NULL, 1, 0, 0, 1);
    run_conv_pads((const int[]){0, 2, 1, 0}, NULL, 2, 1, 0, 2);
    run_conv_pads((const int[]){2, 1, 0, 3}, NULL, 3, 0, 1, 3);
    run_conv_pads(NULL, "SAME_UPPER", 2, 1, 0, 4);
    run_conv_pads(NULL, "SAME_LOWER", 2, 0, 0, 5);
    run_conv_pads(NULL, "SAME_LOWER", 2, 1, 1, 6);
    run_conv_pads((const int[]){1, 1, 1, 1}, NULL, 1, 1, 0, 7); /* symmetric: unchanged path */
}

/* ---- errors ---------------------------------------------------------------------------- */

static clcnn_status add_convt(int64_t c, int64_t wc, int64_t kg, int na, const clcnn_attr *a,
                              clcnn_graph **out) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){CLCNN_GRAPH_BATCH, c, 4, 4}));
    TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 4, (int64_t[]){wc, kg, 3, 3}, NULL));
    clcnn_status s =
        clcnn_graph_add_node(g, "ConvTranspose", "bad_ct", 2, (const char *[]){"x", "w"}, 1,
                             (const char *[]){"y"}, na, a);
    if (s == CLCNN_OK) s = clcnn_graph_add_output(g, "y");
    if (s == CLCNN_OK) s = clcnn_graph_check(g);
    *out = g;
    return s;
}

static void expect_error(clcnn_status got, clcnn_status want, clcnn_graph *g) {
    if (got != want)
        fail_msg("status %s, want %s: %s", clcnn_status_str(got), clcnn_status_str(want),
                 clcnn_last_error());
    if (!strstr(clcnn_last_error(), "bad_ct")) fail_msg("message: %s", clcnn_last_error());
    clcnn_graph_free(g);
}

static void test_convtranspose_errors(void **state) {
    (void)state;
    clcnn_graph *g;
    clcnn_status st;
    /* weights for 3 input channels on a 2-channel input */
    st = add_convt(2, 3, 2, 0, NULL, &g);
    expect_error(st, CLCNN_ERR_SHAPE, g);
    /* group 2 on 3 channels */
    st = add_convt(3, 3, 2, 1, (clcnn_attr[]){INT("group", 2)}, &g);
    expect_error(st, CLCNN_ERR_SHAPE, g);
    /* output_padding not below the stride nor the dilation */
    st = add_convt(2, 2, 2, 2, (clcnn_attr[]){INTS("strides", 2, 2), INTS("output_padding", 2, 0)},
                   &g);
    expect_error(st, CLCNN_ERR_SHAPE, g);
    /* pads eating the whole output */
    st = add_convt(2, 2, 2, 1, (clcnn_attr[]){INTS("pads", 3, 3, 3, 3)}, &g);
    expect_error(st, CLCNN_ERR_SHAPE, g);
    /* 3-D is not supported */
    st = add_convt(2, 2, 2, 1, (clcnn_attr[]){INTS("strides", 1, 1, 1)}, &g);
    expect_error(st, CLCNN_ERR_UNSUPPORTED, g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convtranspose),
        cmocka_unit_test(test_convtranspose_random),
        cmocka_unit_test(test_conv_asymmetric_pads),
        cmocka_unit_test(test_convtranspose_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
