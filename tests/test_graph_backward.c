/* Backward on the graph: training plans (clcnn_train_plan_*). Each op's gradients against
 * central finite differences of a scalar loss L = sum(y * r) (r fixed random; L summed in
 * double on the host), a DAG with fan-out, Concat, Split, a squeeze-excitation Mul, a
 * residual Add and batch norm, bit-identical repeats, Dropout's masks, the zoo's "bn" and
 * "lenet" models against the layer-by-layer net's backward, and the error paths. */
#include "test_util.h"

#include "exec/train_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXI 4 /* graph inputs per test graph */

/* ---- building graphs ------------------------------------------------------------------- */

static void add_input(clcnn_graph *g, const char *name, int nd, int64_t d0, int64_t d1, int64_t d2,
                      int64_t d3) {
    int64_t dims[4] = {d0, d1, d2, d3};
    TU_OK(clcnn_graph_add_input(g, name, CLCNN_F32, nd, dims));
}

/* A float initializer of random values in [lo, hi]. */
static void add_param(clcnn_graph *g, tu_rng *r, const char *name, int nd, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3, float lo, float hi) {
    int64_t dims[4] = {d0, d1, d2, d3};
    free(tu_graph_random_init(g, r, name, nd, dims, lo, hi));
}

/* A node with inputs given as one space-separated string ("x w b") and one output. */
static void node(clcnn_graph *g, const char *op, const char *name, const char *ins, const char *out,
                 int na, const clcnn_attr *a) {
    char buf[256], *names[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", ins);
    for (char *t = strtok(buf, " "); t && n < 16; t = strtok(NULL, " "))
        names[n++] = t;
    TU_OK(clcnn_graph_add_node(g, op, name, n, (const char *const *)names, 1, &out, na, a));
}

static clcnn_attr ai(const char *n, int64_t v) {
    return (clcnn_attr){n, CLCNN_ATTR_INT, v, 0.0f, NULL, NULL, 0, NULL};
}
static clcnn_attr af(const char *n, float v) {
    return (clcnn_attr){n, CLCNN_ATTR_FLOAT, 0, v, NULL, NULL, 0, NULL};
}
static clcnn_attr ais(const char *n, const int64_t *v, int c) {
    return (clcnn_attr){n, CLCNN_ATTR_INTS, 0, 0.0f, v, NULL, c, NULL};
}

/* ---- the finite-difference check --------------------------------------------------------- */

typedef struct fd_case {
    clcnn_graph *g;
    int batch;
    float in_lo, in_hi; /* input values: uniform in +-[lo, hi] (away from ReLU's kink) */
    double h, atol, rtol;
    int max_checks;   /* elements checked per tensor (a seeded sample when larger) */
    float grad_scale; /* 1; the meta test scales the analytic gradients to see them caught */
} fd_case;

typedef struct fd_run {
    clcnn_train_plan *p;
    int nin, nout;
    float *x[MAXI];
    clcnn_tensor *xt[MAXI];
    float *r[MAXI];
} fd_run;

static double loss_of(fd_run *f) {
    TU_OK(clcnn_train_plan_forward(f->p, (const clcnn_tensor *const *)f->xt, f->nin));
    double l = 0.0;
    for (int o = 0; o < f->nout; o++) {
        float *y = tu_download(clcnn_train_plan_output(f->p, o));
        size_t n = clcnn_tensor_numel(clcnn_train_plan_output(f->p, o));
        for (size_t i = 0; i < n; i++)
            l += (double)y[i] * f->r[o][i];
        free(y);
    }
    return l;
}

/* Compare the analytic gradient `got` of one tensor (numel n) with central differences;
 * set(e, v) writes element e of the perturbed tensor. Returns 1 when close. */
typedef void (*fd_setter)(fd_run *f, int which, size_t e, float v);

static void set_param(fd_run *f, int which, size_t e, float v) {
    clcnn_tensor *t = clcnn_train_plan_param(f->p, clcnn_train_plan_param_name(f->p, which));
    size_t n = clcnn_tensor_numel(t);
    float *h = tu_download(t);
    h[e] = v;
    TU_OK(clcnn_train_plan_write(f->p, clcnn_train_plan_param_name(f->p, which), h, n * sizeof *h));
    free(h);
}

static void set_input(fd_run *f, int which, size_t e, float v) {
    f->x[which][e] = v;
    TU_OK(clcnn_tensor_upload(f->xt[which], f->x[which],
                              clcnn_tensor_numel(f->xt[which]) * sizeof(float)));
}

static int fd_compare(const fd_case *c, fd_run *f, const char *what, int which, const float *base,
                      const float *got, size_t n, fd_setter set) {
    int m = c->max_checks < (int)n ? c->max_checks : (int)n;
    float *g = malloc((size_t)m * sizeof *g);
    double *ref = malloc((size_t)m * sizeof *ref);
    tu_rng r = tu_rng_seed(77 + (uint64_t)which);
    for (int k = 0; k < m; k++) {
        size_t e = m == (int)n ? (size_t)k : (size_t)tu_rng_int(&r, 0, (int)n - 1);
        set(f, which, e, (float)(base[e] + c->h));
        double lp = loss_of(f);
        set(f, which, e, (float)(base[e] - c->h));
        double lm = loss_of(f);
        set(f, which, e, base[e]);
        ref[k] = (lp - lm) / (2.0 * c->h);
        g[k] = got[e] * c->grad_scale;
    }
    int ok = tu_close(what, g, ref, (size_t)m, c->atol, c->rtol);
    free(g);
    free(ref);
    return ok;
}

/* Gradients of every parameter and input of c->g against finite differences; returns 1
 * when all are close. */
static int fd_check(const fd_case *c) {
    clcnn_train_options o = {.input_grads = 1};
    fd_run f = {0};
    TU_OK(clcnn_train_plan_create(tu_device(), c->g, c->batch, &o, &f.p));
    f.nin = clcnn_graph_num_inputs(c->g);
    f.nout = clcnn_graph_num_outputs(c->g);
    tu_rng r = tu_rng_seed(5);
    for (int i = 0; i < f.nin; i++) {
        int nd;
        int64_t d[CLCNN_GRAPH_MAX_DIMS];
        TU_OK(clcnn_graph_value_shape(c->g, clcnn_graph_input_name(c->g, i), &nd, d));
        size_t shape[4], n = 1;
        for (int k = 0; k < nd; k++) {
            shape[k] = (size_t)(d[k] == CLCNN_GRAPH_BATCH ? c->batch : d[k]);
            n *= shape[k];
        }
        f.x[i] = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            float v = tu_rng_uniform(&r, c->in_lo, c->in_hi);
            f.x[i][k] = tu_rng_int(&r, 0, 1) ? v : -v;
        }
        f.xt[i] = tu_tensor_from(nd, shape, f.x[i]);
    }
    TU_OK(clcnn_train_plan_forward(f.p, (const clcnn_tensor *const *)f.xt, f.nin));
    clcnn_tensor *dy[MAXI];
    for (int o2 = 0; o2 < f.nout; o2++) {
        const clcnn_tensor *y = clcnn_train_plan_output(f.p, o2);
        size_t n = clcnn_tensor_numel(y);
        f.r[o2] = malloc(n * sizeof(float));
        tu_fill_uniform(&r, f.r[o2], n, -1.0f, 1.0f);
        dy[o2] = tu_tensor_from(clcnn_tensor_ndim(y), clcnn_tensor_shape(y), f.r[o2]);
    }
    TU_OK(clcnn_train_plan_zero_grad(f.p));
    TU_OK(clcnn_train_plan_backward(f.p, (const clcnn_tensor *const *)dy, f.nout));
    int ok = 1;
    for (int i = 0; i < clcnn_train_plan_num_params(f.p); i++) {
        const char *name = clcnn_train_plan_param_name(f.p, i);
        clcnn_tensor *gt = clcnn_train_plan_grad(f.p, name);
        if (!gt) continue; /* state: running statistics */
        float *got = tu_download(gt), *base = tu_download(clcnn_train_plan_param(f.p, name));
        ok &= fd_compare(c, &f, name, i, base, got, clcnn_tensor_numel(gt), set_param);
        free(got);
        free(base);
    }
    for (int i = 0; i < f.nin; i++) {
        float *got = tu_download(clcnn_train_plan_input_grad(f.p, i));
        size_t n = clcnn_tensor_numel(f.xt[i]);
        float *base = malloc(n * sizeof *base);
        memcpy(base, f.x[i], n * sizeof *base);
        ok &= fd_compare(c, &f, clcnn_graph_input_name(c->g, i), i, base, got, n, set_input);
        free(got);
        free(base);
    }
    for (int i = 0; i < f.nin; i++) {
        clcnn_tensor_free(f.xt[i]);
        free(f.x[i]);
    }
    for (int o2 = 0; o2 < f.nout; o2++) {
        clcnn_tensor_free(dy[o2]);
        free(f.r[o2]);
    }
    clcnn_train_plan_free(f.p);
    return ok;
}

static fd_case fd_default(clcnn_graph *g, int batch) {
    fd_case c = {g, batch, 0.05f, 1.0f, 1e-2, 3e-3, 2e-2, 24, 1.0f};
    return c;
}

/* Check graph g at batch, then free it. */
static void expect_fd(clcnn_graph *g, int batch, double h) {
    fd_case c = fd_default(g, batch);
    c.h = h;
    assert_true(fd_check(&c));
    clcnn_graph_free(g);
}

static clcnn_graph *new_graph(void) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    return g;
}

/* ---- per op ----------------------------------------------------------------------------- */

static void conv_case_pads(int batch, int c, int h, int w, int k, int r, int stride,
                           const int64_t pd[4], int dil, int groups, int bias) {
    clcnn_graph *g = new_graph();
    tu_rng rng = tu_rng_seed(11);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, c, h, w);
    add_param(g, &rng, "w", 4, k, c / groups, r, r, -0.5f, 0.5f);
    if (bias) add_param(g, &rng, "b", 1, k, 0, 0, 0, -0.5f, 0.5f);
    int64_t st[2] = {stride, stride}, dl[2] = {dil, dil};
    clcnn_attr a[4] = {ais("strides", st, 2), ais("pads", pd, 4), ais("dilations", dl, 2),
                       ai("group", groups)};
    node(g, "Conv", "conv", bias ? "x w b" : "x w", "y", 4, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_fd(g, batch, 1e-2);
}

static void conv_case(int batch, int c, int h, int w, int k, int r, int stride, int pad, int dil,
                      int groups, int bias) {
    int64_t pd[4] = {pad, pad, pad, pad};
    conv_case_pads(batch, c, h, w, k, r, stride, pd, dil, groups, bias);
}

static void test_conv(void **state) {
    (void)state;
    conv_case(2, 3, 7, 6, 4, 3, 1, 1, 1, 1, 1); /* odd sizes, padding */
    conv_case(1, 2, 9, 9, 3, 3, 2, 0, 1, 1, 1); /* batch 1, stride 2 */
    conv_case(2, 4, 8, 7, 6, 3, 1, 2, 2, 2, 0); /* groups, dilation, no bias */
    conv_case(2, 3, 5, 5, 2, 1, 1, 0, 1, 1, 1); /* 1x1 */
    conv_case(1, 4, 6, 6, 4, 3, 2, 1, 1, 4, 1); /* depthwise, stride 2 */
    int64_t same_upper[4] = {0, 1, 1, 2};       /* per-side pads (as auto_pad SAME_*) */
    conv_case_pads(2, 3, 6, 7, 3, 3, 2, same_upper, 1, 1, 1);
}

/* ConvTranspose x (n, c, h, w) with weights (c, k / groups, r, r). */
static void convt_case(int batch, int c, int h, int k, int r, int stride, int pad, int groups) {
    clcnn_graph *g = new_graph();
    tu_rng rng = tu_rng_seed(15);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, c, h, h + 1);
    add_param(g, &rng, "w", 4, c, k / groups, r, r, -0.5f, 0.5f);
    add_param(g, &rng, "b", 1, k, 0, 0, 0, -0.5f, 0.5f);
    int64_t st[2] = {stride, stride}, pd[4] = {pad, pad, pad, pad};
    clcnn_attr a[3] = {ais("strides", st, 2), ais("pads", pd, 4), ai("group", groups)};
    node(g, "ConvTranspose", "up", "x w b", "y", 3, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_fd(g, batch, 1e-2);
}

static void test_conv_transpose(void **state) {
    (void)state;
    convt_case(2, 3, 4, 2, 3, 2, 1, 1); /* stride 2, pad 1 */
    convt_case(1, 4, 3, 6, 2, 1, 0, 2); /* groups */
}

static void bn_case(int nd, int batch) {
    clcnn_graph *g = new_graph();
    tu_rng rng = tu_rng_seed(12);
    if (nd == 4)
        add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 5, 4);
    else
        add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 5, 0, 0);
    int c = nd == 4 ? 3 : 5;
    add_param(g, &rng, "gamma", 1, c, 0, 0, 0, 0.5f, 1.5f);
    add_param(g, &rng, "beta", 1, c, 0, 0, 0, -0.5f, 0.5f);
    add_param(g, &rng, "mean", 1, c, 0, 0, 0, -0.1f, 0.1f);
    add_param(g, &rng, "var", 1, c, 0, 0, 0, 0.9f, 1.1f);
    clcnn_attr a[1] = {af("momentum", 0.9f)};
    node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_fd(g, batch, 1e-2);
}

/* Running statistics: PyTorch's rule with momentum 1 - ONNX's (unbiased variance). */
static void test_batchnorm_running(void **state) {
    (void)state;
    clcnn_graph *g = new_graph();
    add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 2, 0, 0);
    float one[2] = {1, 1}, zero[2] = {0, 0};
    int64_t d = 2;
    TU_OK(clcnn_graph_add_initializer(g, "gamma", CLCNN_F32, 1, &d, one));
    TU_OK(clcnn_graph_add_initializer(g, "beta", CLCNN_F32, 1, &d, zero));
    TU_OK(clcnn_graph_add_initializer(g, "mean", CLCNN_F32, 1, &d, zero));
    TU_OK(clcnn_graph_add_initializer(g, "var", CLCNN_F32, 1, &d, one));
    clcnn_attr a[1] = {af("momentum", 0.75f)};
    node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 3, NULL, &p));
    float xv[6] = {1, 10, 2, 20, 6, 60}; /* channel 0: mean 3, unbiased var 7 */
    size_t shape[2] = {3, 2};
    clcnn_tensor *x = tu_tensor_from(2, shape, xv);
    TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&x, 1));
    float m[2], v[2];
    TU_OK(clcnn_train_plan_read(p, "mean", m, sizeof m));
    TU_OK(clcnn_train_plan_read(p, "var", v, sizeof v));
    assert_true(fabsf(m[0] - 0.25f * 3.0f) < 1e-5f && fabsf(m[1] - 0.25f * 30.0f) < 1e-4f);
    assert_true(fabsf(v[0] - (0.75f + 0.25f * 7.0f)) < 1e-4f);
    assert_true(fabsf(v[1] - (0.75f + 0.25f * 700.0f)) < 1e-2f);
    assert_null(clcnn_train_plan_grad(p, "mean")); /* state, no gradient */
    assert_non_null(clcnn_train_plan_grad(p, "gamma"));
    clcnn_tensor_free(x);
    clcnn_train_plan_free(p);
    clcnn_graph_free(g);
}

/* The net builders (and PyTorch's exports) store momentum m as ONNX's 1 - m; training uses
 * m itself, not 1 - (1 - m) rounded twice: from zero the running mean is exactly m times
 * the batch mean (3, exact in float). */
static void test_batchnorm_momentum_exact(void **state) {
    (void)state;
    const float ms[4] = {0.1f, 0.01f, 0.05f, 0.3f};
    for (int i = 0; i < 4; i++) {
        clcnn_graph *g = new_graph();
        add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 1, 0, 0);
        float one = 1, zero = 0;
        int64_t d = 1;
        TU_OK(clcnn_graph_add_initializer(g, "gamma", CLCNN_F32, 1, &d, &one));
        TU_OK(clcnn_graph_add_initializer(g, "beta", CLCNN_F32, 1, &d, &zero));
        TU_OK(clcnn_graph_add_initializer(g, "mean", CLCNN_F32, 1, &d, &zero));
        TU_OK(clcnn_graph_add_initializer(g, "var", CLCNN_F32, 1, &d, &one));
        clcnn_attr a[1] = {af("momentum", 1.0f - ms[i])};
        node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
        TU_OK(clcnn_graph_add_output(g, "y"));
        clcnn_train_plan *p = NULL;
        TU_OK(clcnn_train_plan_create(tu_device(), g, 3, NULL, &p));
        float xv[3] = {1, 2, 6}, m;
        size_t shape[2] = {3, 1};
        clcnn_tensor *x = tu_tensor_from(2, shape, xv);
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&x, 1));
        TU_OK(clcnn_train_plan_read(p, "mean", &m, sizeof m));
        float want = ms[i] * 3.0f;
        if (m != want)
            print_error("momentum %.9g: running mean %.9g, want %.9g\n", (double)ms[i], (double)m,
                        (double)want);
        assert_true(m == want);
        clcnn_tensor_free(x);
        clcnn_train_plan_free(p);
        clcnn_graph_free(g);
    }
}

static void test_batchnorm(void **state) {
    (void)state;
    bn_case(4, 2);
    bn_case(2, 4);
}

static void unary_case(const char *op, int na, const clcnn_attr *a, const char *extra_in) {
    clcnn_graph *g = new_graph();
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 3, 5);
    char ins[64];
    snprintf(ins, sizeof ins, "x%s", extra_in ? extra_in : "");
    if (extra_in) {
        float lo = -0.4f, hi = 0.6f;
        TU_OK(clcnn_graph_add_initializer(g, "lo", CLCNN_F32, 0, NULL, &lo));
        TU_OK(clcnn_graph_add_initializer(g, "hi", CLCNN_F32, 0, NULL, &hi));
    }
    node(g, op, "u", ins, "y", na, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    fd_case c = fd_default(g, 2);
    c.h = 1e-3;
    c.in_hi = strcmp(op, "HardSwish") ? 1.0f : 4.0f; /* inside and outside (-3, 3) */
    assert_true(fd_check(&c));
    clcnn_graph_free(g);
}

static void test_activations(void **state) {
    (void)state;
    unary_case("Relu", 0, NULL, NULL);
    clcnn_attr alpha = af("alpha", 0.2f);
    unary_case("LeakyRelu", 1, &alpha, NULL);
    unary_case("Sigmoid", 0, NULL, NULL);
    unary_case("Tanh", 0, NULL, NULL);
    unary_case("Clip", 0, NULL, " lo hi");
    clcnn_attr hs[2] = {af("alpha", 1.0f), af("beta", 0.5f)}; /* the window (-0.5, 0.5) */
    unary_case("HardSigmoid", 2, hs, NULL);
    unary_case("HardSwish", 0, NULL, NULL);
    int64_t hw[2] = {2, 3}, c1[1] = {1};
    clcnn_attr mean[2] = {ais("axes", hw, 2), ai("keepdims", 1)};
    unary_case("ReduceMean", 2, mean, NULL); /* as a squeeze-excitation's pooling */
    clcnn_attr sum[2] = {ais("axes", c1, 1), ai("keepdims", 0)};
    unary_case("ReduceSum", 2, sum, NULL);
}

/* pads top, left, bottom, right = pad, pad, pad + extra, pad + extra. */
static void pool_case(const char *op, int k, int stride, int pad, int include_pad, int extra,
                      int ceil) {
    clcnn_graph *g = new_graph();
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 7, 9);
    int64_t ks[2] = {k, k}, st[2] = {stride, stride};
    int64_t pd[4] = {pad, pad, pad + extra, pad + extra};
    clcnn_attr a[5] = {ais("kernel_shape", ks, 2), ais("strides", st, 2), ais("pads", pd, 4),
                       ai("ceil_mode", ceil), ai("count_include_pad", include_pad)};
    node(g, op, "pool", "x", "y", strncmp(op, "Global", 6) ? 5 - !strcmp(op, "MaxPool") : 0, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_fd(g, 2, 1e-3);
}

static void test_pools(void **state) {
    (void)state;
    /* op, kernel, stride, pad, count_include_pad, extra bottom/right pad, ceil_mode; the
     * last six: ceil mode (7x9 by 2x2 stride 2: a last window half outside), per-side pads */
    static const struct {
        const char *op;
        int k, stride, pad, include, extra, ceil;
    } cases[] = {
        {"MaxPool", 3, 2, 1, 0, 0, 0},           {"MaxPool", 2, 2, 0, 0, 0, 0},
        {"AveragePool", 3, 2, 1, 0, 0, 0},       {"AveragePool", 3, 1, 1, 1, 0, 0},
        {"GlobalAveragePool", 0, 0, 0, 0, 0, 0}, {"GlobalMaxPool", 0, 0, 0, 0, 0, 0},
        {"MaxPool", 2, 2, 0, 0, 0, 1},           {"MaxPool", 3, 2, 0, 0, 1, 1},
        {"AveragePool", 2, 2, 0, 0, 0, 1},       {"AveragePool", 3, 2, 1, 1, 0, 1},
        {"AveragePool", 3, 2, 0, 0, 1, 0},       {"AveragePool", 3, 2, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        pool_case(cases[i].op, cases[i].k, cases[i].stride, cases[i].pad, cases[i].include,
                  cases[i].extra, cases[i].ceil);
}

/* y = a op b with b an initializer or a second input, broadcast as given. */
static void binary_case(const char *op, int bnd, int64_t b1, int64_t b2, int64_t b3,
                        int b_is_input) {
    clcnn_graph *g = new_graph();
    tu_rng rng = tu_rng_seed(13);
    add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    if (b_is_input)
        add_input(g, "b", bnd, CLCNN_GRAPH_BATCH, b1, b2, b3);
    else
        add_param(g, &rng, "b", bnd, b1, b2, b3, 0, strcmp(op, "Div") ? -1.0f : 0.5f, 1.5f);
    node(g, op, "bin", "a b", "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_fd(g, 2, 1e-2);
}

static void test_binary(void **state) {
    (void)state;
    binary_case("Add", 4, 3, 4, 5, 1);   /* same shapes */
    binary_case("Mul", 4, 3, 1, 1, 1);   /* squeeze-excitation: [N,C,1,1] * [N,C,H,W] */
    binary_case("Sub", 3, 3, 1, 5, 0);   /* a parameter [C,1,W] */
    binary_case("Add", 1, 5, 0, 0, 0);   /* a bias over the last dim */
    binary_case("Mul", 3, 3, 4, 5, 0);   /* a parameter without the batch */
    binary_case("Div", 3, 3, 1, 1, 0);   /* by a parameter [C,1,1] in [0.5, 1.5] */
    binary_case("PRelu", 3, 3, 1, 1, 0); /* a slope per channel */
}

static void test_gemm(void **state) {
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        clcnn_graph *g = new_graph();
        tu_rng rng = tu_rng_seed(14);
        int ta = variant == 2, tb = variant == 0 || variant == 2;
        if (ta)
            add_input(g, "a", 2, 6, 3, 0, 0); /* (k, m), m the batch of 3 */
        else
            add_input(g, "a", 2, CLCNN_GRAPH_BATCH, 6, 0, 0);
        add_param(g, &rng, "w", 2, tb ? 5 : 6, tb ? 6 : 5, 0, 0, -1.0f, 1.0f);
        add_param(g, &rng, "c", 1, 5, 0, 0, 0, -1.0f, 1.0f);
        clcnn_attr a[3] = {ai("transA", ta), ai("transB", tb), af("alpha", ta ? 0.5f : 1.0f)};
        if (variant == 3)
            node(g, "MatMul", "mm", "a w", "y", 0, NULL);
        else
            node(g, "Gemm", "fc", variant == 1 ? "a w" : "a w c", "y", 3, a);
        TU_OK(clcnn_graph_add_output(g, "y"));
        expect_fd(g, 3, 1e-2);
    }
}

static void test_concat_split_views(void **state) {
    (void)state;
    clcnn_graph *g = new_graph();
    add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 2, 3, 3);
    add_input(g, "b", 4, CLCNN_GRAPH_BATCH, 3, 3, 3);
    clcnn_attr ax1 = ai("axis", 1);
    node(g, "Concat", "cat", "a b a", "c", 1, &ax1);
    int64_t sp[3] = {1, 4, 2};
    clcnn_attr split[2] = {ai("axis", 1), ais("split", sp, 3)};
    const char *outs[3] = {"s0", "s1", "s2"};
    const char *in = "c";
    TU_OK(clcnn_graph_add_node(g, "Split", "split", 1, &in, 3, outs, 2, split));
    clcnn_attr fl = ai("axis", 1);
    node(g, "Flatten", "flat", "s1", "f", 1, &fl);
    int64_t shape[3] = {INT64_MIN, 2, 9};
    int64_t sd = 3;
    TU_OK(clcnn_graph_add_initializer(g, "shape", CLCNN_I64, 1, &sd, shape));
    node(g, "Reshape", "reshape", "s2 shape", "r", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "f"));
    TU_OK(clcnn_graph_add_output(g, "r"));
    TU_OK(clcnn_graph_add_output(g, "s0"));
    expect_fd(g, 2, 1e-2);
}

/* Views take their gradient buffers from their input's (no copy in backward): a Flatten
 * that is the first of its input's three readers, a Reshape that is the last, a view of a
 * view, a view that is a graph output read twice by one Mul, a view of a node output. */
static void test_view_gradients(void **state) {
    (void)state;
    clcnn_graph *g = new_graph();
    tu_rng rng = tu_rng_seed(21);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 3, 3);
    add_param(g, &rng, "s", 4, 1, 2, 1, 1, 0.5f, 1.5f);
    node(g, "Mul", "scale", "x s", "a", 0, NULL);
    clcnn_attr fl = ai("axis", 1);
    node(g, "Flatten", "flat", "a", "f", 1, &fl); /* (N, 18) */
    node(g, "Tanh", "tanh", "a", "t", 0, NULL);
    int64_t sd = 3, s29[3] = {INT64_MIN, 2, 9}, s36[3] = {INT64_MIN, 3, 6};
    TU_OK(clcnn_graph_add_initializer(g, "s29", CLCNN_I64, 1, &sd, s29));
    TU_OK(clcnn_graph_add_initializer(g, "s36", CLCNN_I64, 1, &sd, s36));
    node(g, "Reshape", "ra", "a s29", "ra", 0, NULL);
    node(g, "Reshape", "rt", "t s29", "rt", 0, NULL);
    node(g, "Mul", "z", "ra rt", "z", 0, NULL);
    node(g, "Mul", "square", "f f", "q", 0, NULL);
    node(g, "Reshape", "f2", "f s36", "f2", 0, NULL);
    node(g, "Sigmoid", "o", "f2", "o", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "f"));
    TU_OK(clcnn_graph_add_output(g, "q"));
    TU_OK(clcnn_graph_add_output(g, "o"));
    TU_OK(clcnn_graph_add_output(g, "z"));
    expect_fd(g, 3, 1e-2);
}

/* Transpose to NHWC, a strided Slice of two axes, a constant Pad (and a crop), an Expand
 * added to it */
static void test_transpose_slice_pad_expand(void **state) {
    (void)state;
    clcnn_graph *g = new_graph();
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 5, 6);
    int64_t perm[4] = {0, 2, 3, 1};
    clcnn_attr pa = ais("perm", perm, 4);
    node(g, "Transpose", "nhwc", "x", "t", 1, &pa);
    int64_t one = 2, starts[2] = {1, 0}, ends[2] = {5, 6}, axes[2] = {1, 2}, steps[2] = {2, 2};
    TU_OK(clcnn_graph_add_initializer(g, "starts", CLCNN_I64, 1, &one, starts));
    TU_OK(clcnn_graph_add_initializer(g, "ends", CLCNN_I64, 1, &one, ends));
    TU_OK(clcnn_graph_add_initializer(g, "axes", CLCNN_I64, 1, &one, axes));
    TU_OK(clcnn_graph_add_initializer(g, "steps", CLCNN_I64, 1, &one, steps));
    node(g, "Slice", "slice", "t starts ends axes steps", "s", 0, NULL); /* [N,2,3,3] */
    int64_t eight = 8, pads[8] = {0, 1, 0, 2, 0, 0, 1, -1};
    TU_OK(clcnn_graph_add_initializer(g, "pads", CLCNN_I64, 1, &eight, pads));
    node(g, "Pad", "pad", "s pads", "y", 0, NULL); /* [N,3,4,4] */
    int64_t four = 4, eshape[4] = {1, 3, 4, 4};    /* [N,3,1,4] over its h */
    TU_OK(clcnn_graph_add_initializer(g, "eshape", CLCNN_I64, 1, &four, eshape));
    add_input(g, "row", 4, CLCNN_GRAPH_BATCH, 3, 1, 4);
    node(g, "Expand", "expand", "row eshape", "e", 0, NULL);
    node(g, "Add", "sum", "y e", "z", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "z"));
    expect_fd(g, 2, 1e-2);
}

/* ---- input gradients against closed forms computed in double ---------------------------- */

/* Run g (input a [2,3,4,5], maybe a second input b; one output) at batch 2 forward and
 * backward from dy; return the gradients of a and b (malloc'd; db NULL without b). */
static void run_grads(clcnn_graph *g, const float *a, const float *b, const float *dy, float **da,
                      float **db) {
    clcnn_train_options o = {.input_grads = 1};
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, &o, &p));
    size_t as[4] = {2, 3, 4, 5};
    clcnn_tensor *in[2] = {tu_tensor_from(4, as, a), NULL};
    int nin = clcnn_graph_num_inputs(g);
    if (nin > 1) {
        int nd;
        int64_t d[CLCNN_GRAPH_MAX_DIMS];
        TU_OK(clcnn_graph_value_shape(g, clcnn_graph_input_name(g, 1), &nd, d));
        size_t bs[4];
        for (int k = 0; k < nd; k++)
            bs[k] = d[k] == CLCNN_GRAPH_BATCH ? 2 : (size_t)d[k];
        in[1] = tu_tensor_from(nd, bs, b);
    }
    TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)in, nin));
    const clcnn_tensor *y = clcnn_train_plan_output(p, 0);
    clcnn_tensor *dyt = tu_tensor_from(clcnn_tensor_ndim(y), clcnn_tensor_shape(y), dy);
    TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    *da = tu_download(clcnn_train_plan_input_grad(p, 0));
    *db = nin > 1 ? tu_download(clcnn_train_plan_input_grad(p, 1)) : NULL;
    clcnn_tensor_free(in[0]);
    clcnn_tensor_free(in[1]);
    clcnn_tensor_free(dyt);
    clcnn_train_plan_free(p);
}

/* Squeeze-excitation Mul, Sigmoid, Tanh, Softmax and LogSoftmax over the channels, Concat:
 * the plan's input gradients against the closed-form gradients in double (tolerances of
 * float element-wise work and reductions of a few terms). */
static void test_closed_forms(void **state) {
    (void)state;
    enum { N = 2 * 3 * 4 * 5, NB = 2 * 3 };
    float a[N], b[NB], dy[2 * N];
    tu_rng r = tu_rng_seed(51);
    tu_fill_uniform(&r, a, N, -2.0f, 2.0f);
    tu_fill_uniform(&r, b, NB, -2.0f, 2.0f);
    tu_fill_uniform(&r, dy, 2 * N, -1.0f, 1.0f);
    double ra[N], rb[NB];
    float *da, *db;
    /* y = a * b, b [N,C,1,1]: da = dy b, db = sum over h, w of dy a */
    clcnn_graph *g = new_graph();
    add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    add_input(g, "b", 4, CLCNN_GRAPH_BATCH, 3, 1, 1);
    node(g, "Mul", "se", "a b", "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    run_grads(g, a, b, dy, &da, &db);
    for (int nc = 0; nc < NB; nc++) {
        rb[nc] = 0.0;
        for (int k = 0; k < 20; k++) {
            ra[nc * 20 + k] = (double)dy[nc * 20 + k] * b[nc];
            rb[nc] += (double)dy[nc * 20 + k] * a[nc * 20 + k];
        }
    }
    assert_true(tu_close("Mul da", da, ra, N, 1e-6, 1e-6));
    assert_true(tu_close("Mul db", db, rb, NB, 1e-5, 1e-5));
    free(da);
    free(db);
    clcnn_graph_free(g);
    /* unary ops and softmax over the 3 channels (stride 20) */
    const char *ops[4] = {"Sigmoid", "Tanh", "Softmax", "LogSoftmax"};
    for (int o = 0; o < 4; o++) {
        g = new_graph();
        add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
        clcnn_attr ax = ai("axis", 1);
        node(g, ops[o], "u", "a", "y", o >= 2, &ax);
        TU_OK(clcnn_graph_add_output(g, "y"));
        run_grads(g, a, NULL, dy, &da, &db);
        for (int i = 0; i < N; i++) {
            double x = a[i];
            if (o == 0) ra[i] = dy[i] / (1 + exp(-x)) * (1 - 1 / (1 + exp(-x)));
            if (o == 1) ra[i] = dy[i] * (1 - tanh(x) * tanh(x));
        }
        for (int n = 0; o >= 2 && n < 2; n++)
            for (int hw = 0; hw < 20; hw++) {
                double sm[3], z = 0.0, sdy = 0.0, sdyy = 0.0;
                for (int c = 0; c < 3; c++)
                    z += exp(a[n * 60 + c * 20 + hw]);
                for (int c = 0; c < 3; c++) {
                    int i = n * 60 + c * 20 + hw;
                    sm[c] = exp(a[i]) / z;
                    sdy += dy[i];
                    sdyy += dy[i] * sm[c];
                }
                for (int c = 0; c < 3; c++) {
                    int i = n * 60 + c * 20 + hw;
                    ra[i] = o == 2 ? sm[c] * (dy[i] - sdyy) : dy[i] - sm[c] * sdy;
                }
            }
        assert_true(tu_close(ops[o], da, ra, N, 1e-6, 1e-5));
        free(da);
        clcnn_graph_free(g);
    }
    /* Concat(a, a) over h: a's gradient is the sum of the two halves of dy */
    g = new_graph();
    add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    clcnn_attr ax2 = ai("axis", 2);
    node(g, "Concat", "cat", "a a", "y", 1, &ax2);
    TU_OK(clcnn_graph_add_output(g, "y"));
    run_grads(g, a, NULL, dy, &da, &db);
    for (int nc = 0; nc < NB; nc++)
        for (int k = 0; k < 20; k++)
            ra[nc * 20 + k] = (double)dy[nc * 40 + k] + dy[nc * 40 + 20 + k];
    assert_true(tu_close("Concat(a, a)", da, ra, N, 1e-6, 1e-6));
    free(da);
    clcnn_graph_free(g);
}

static void test_softmax(void **state) {
    (void)state;
    const char *ops[2] = {"Softmax", "LogSoftmax"};
    for (int i = 0; i < 2; i++)
        for (int four = 0; four < 2; four++) {
            clcnn_graph *g = new_graph();
            if (four)
                add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 4, 3, 2);
            else
                add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 7, 0, 0);
            clcnn_attr ax = ai("axis", 1);
            node(g, ops[i], "sm", "x", "y", 1, &ax);
            TU_OK(clcnn_graph_add_output(g, "y"));
            expect_fd(g, 3, 1e-2);
        }
}

/* Dropout: y is 0 or x / (1 - p); dx = dy there, 0 elsewhere; a new mask each forward, the
 * same masks for the same seed; ratio 0 (or training_mode 0) a copy. */
static float *dropout_run(uint64_t seed, float ratio, int forwards, float **dx_out) {
    clcnn_graph *g = new_graph();
    add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 300, 0, 0);
    clcnn_attr a = af("ratio", ratio);
    node(g, "Dropout", "drop", "x", "y", 1, &a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    clcnn_train_options o = {.input_grads = 1, .seed = seed};
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, &o, &p));
    clcnn_graph_free(g);
    tu_rng r = tu_rng_seed(31);
    float x[600], dy[600];
    tu_fill_uniform(&r, x, 600, 0.5f, 1.0f);
    tu_fill_uniform(&r, dy, 600, -1.0f, 1.0f);
    size_t shape[2] = {2, 300};
    clcnn_tensor *xt = tu_tensor_from(2, shape, x), *dyt = tu_tensor_from(2, shape, dy);
    for (int k = 0; k < forwards; k++)
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
    TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    float *y = tu_download(clcnn_train_plan_output(p, 0));
    float *dx = tu_download(clcnn_train_plan_input_grad(p, 0));
    int dropped = 0;
    for (int i = 0; i < 600; i++) {
        int kept = y[i] != 0.0f;
        dropped += !kept;
        if (kept) assert_true(fabsf(y[i] - x[i] / (1.0f - ratio)) < 1e-5f);
        assert_true(fabsf(dx[i] - (kept ? dy[i] / (1.0f - ratio) : 0.0f)) < 1e-5f);
    }
    if (ratio == 0.0f) assert_int_equal(dropped, 0);
    if (ratio == 0.5f) assert_true(dropped > 200 && dropped < 400);
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    clcnn_train_plan_free(p);
    *dx_out = dx;
    return y;
}

static void test_dropout(void **state) {
    (void)state;
    float *d1, *d2, *d3, *d0;
    float *y1 = dropout_run(5, 0.5f, 1, &d1), *y2 = dropout_run(5, 0.5f, 1, &d2);
    float *y3 = dropout_run(5, 0.5f, 2, &d3), *y0 = dropout_run(5, 0.0f, 1, &d0);
    assert_memory_equal(y1, y2, 600 * sizeof *y1);     /* same seed and step: same mask */
    assert_memory_not_equal(y1, y3, 600 * sizeof *y1); /* the second forward: a new mask */
    float *all[8] = {y1, y2, y3, y0, d1, d2, d3, d0};
    for (int i = 0; i < 8; i++)
        free(all[i]);
}

/* ---- a DAG: stem conv + BN + ReLU fans out to two branches (one with a squeeze-excitation
 * block), concatenated, split and concatenated in another order, a residual Add with the
 * stem, pooled, a classifier ------------------------------------------------------------ */

/* Flatten of in (features per sample), a Gemm to 3 logits (weights in +-w_range, a bias
 * in +-0.1 when bias) and the graph's output "logits". */
static void classifier(clcnn_graph *g, tu_rng *r, const char *in, int64_t features, float w_range,
                       int bias) {
    node(g, "Flatten", "flat", in, "f", 0, NULL);
    add_param(g, r, "fc.w", 2, 3, features, 0, 0, -w_range, w_range);
    if (bias) add_param(g, r, "fc.b", 1, 3, 0, 0, 0, -0.1f, 0.1f);
    clcnn_attr tb = ai("transB", 1);
    node(g, "Gemm", "fc", bias ? "f fc.w fc.b" : "f fc.w", "logits", 1, &tb);
    TU_OK(clcnn_graph_add_output(g, "logits"));
}

static clcnn_graph *dag_graph(void) {
    clcnn_graph *g = new_graph();
    tu_rng r = tu_rng_seed(21);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 7, 7);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = ais("pads", p1, 4);
    add_param(g, &r, "stem.w", 4, 4, 3, 3, 3, -0.4f, 0.4f);
    add_param(g, &r, "stem.b", 1, 4, 0, 0, 0, -0.1f, 0.1f);
    node(g, "Conv", "stem", "x stem.w stem.b", "s0", 1, &pad1);
    add_param(g, &r, "bn.g", 1, 4, 0, 0, 0, 0.8f, 1.2f);
    add_param(g, &r, "bn.b", 1, 4, 0, 0, 0, -0.1f, 0.1f);
    add_param(g, &r, "bn.m", 1, 4, 0, 0, 0, 0.0f, 0.0f);
    add_param(g, &r, "bn.v", 1, 4, 0, 0, 0, 1.0f, 1.0f);
    node(g, "BatchNormalization", "bn", "s0 bn.g bn.b bn.m bn.v", "s1", 0, NULL);
    node(g, "Relu", "relu", "s1", "s", 0, NULL); /* fans out to 4 readers */
    /* branch a: 1x1 conv to 2 channels */
    add_param(g, &r, "a.w", 4, 2, 4, 1, 1, -0.5f, 0.5f);
    node(g, "Conv", "a", "s a.w", "ya", 0, NULL);
    /* branch b: 3x3 conv to 2 channels, then squeeze-excitation */
    add_param(g, &r, "b.w", 4, 2, 4, 3, 3, -0.3f, 0.3f);
    node(g, "Conv", "b", "s b.w", "yb", 1, &pad1);
    node(g, "GlobalAveragePool", "se.pool", "yb", "se0", 0, NULL);
    add_param(g, &r, "se.w", 4, 2, 2, 1, 1, -0.8f, 0.8f);
    add_param(g, &r, "se.b", 1, 2, 0, 0, 0, -0.1f, 0.1f);
    node(g, "Conv", "se.fc", "se0 se.w se.b", "se1", 0, NULL);
    node(g, "Sigmoid", "se.gate", "se1", "se2", 0, NULL);
    node(g, "Mul", "se.scale", "yb se2", "ybs", 0, NULL);
    clcnn_attr ax1 = ai("axis", 1);
    node(g, "Concat", "cat", "ya ybs", "cat", 1, &ax1);
    /* the channels rotated by one: Split 1 + 3, Concat the other way round */
    int64_t sizes[2] = {1, 3};
    clcnn_attr split[2] = {ai("axis", 1), ais("split", sizes, 2)};
    const char *parts[2] = {"c0", "c1"}, *cat = "cat";
    TU_OK(clcnn_graph_add_node(g, "Split", "split", 1, &cat, 2, parts, 2, split));
    node(g, "Concat", "rot", "c1 c0", "rot", 1, &ax1);
    node(g, "Add", "res", "rot s", "sum", 0, NULL);
    node(g, "Mul", "sq", "sum s", "sq", 0, NULL); /* s read a fourth time */
    int64_t k2[2] = {2, 2};
    clcnn_attr mp[2] = {ais("kernel_shape", k2, 2), ais("strides", k2, 2)};
    node(g, "MaxPool", "pool", "sq", "pooled", 2, mp);
    classifier(g, &r, "pooled", 36, 0.2f, 1);
    return g;
}

static void test_dag(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    fd_case c = fd_default(g, 2);
    c.max_checks = 16;
    c.h = 3e-4; /* ReLU and max-pool kinks lie within 1e-3 of some inputs here */
    assert_true(fd_check(&c));
    clcnn_graph_free(g);
}

/* The check catches a gradient 5% off: the test above can fail. */
static void test_fd_catches_wrong_gradient(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    fd_case c = fd_default(g, 2);
    c.max_checks = 4;
    c.h = 3e-4; /* as test_dag: only the scaling differs */
    c.grad_scale = 1.05f;
    printf("(expected mismatch reports follow)\n");
    fflush(stdout);
    assert_false(fd_check(&c));
    clcnn_graph_free(g);
}

/* The element-wise tail the plan fuses: batch norm into the ReLU and the Clip to [0, 6]
 * that alone read it (one node, masked backward), not a batch norm whose output two nodes
 * read, nor a Clip to other bounds; residual Adds whose operands' gradients become views of
 * dy (one operand read elsewhere too, one Add feeding the next), the last fused with the
 * ReLU that alone reads it, whose output two nodes read (its backward sums their
 * contributions and masks them in one pass). BN2's gamma and beta put a good share of its
 * values above 6. */
static clcnn_graph *tail_graph(void) {
    clcnn_graph *g = new_graph();
    tu_rng r = tu_rng_seed(23);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 6, 5);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = ais("pads", p1, 4);
    float zero = 0.0f, six = 6.0f, one = 1.0f;
    TU_OK(clcnn_graph_add_initializer(g, "zero", CLCNN_F32, 0, NULL, &zero));
    TU_OK(clcnn_graph_add_initializer(g, "six", CLCNN_F32, 0, NULL, &six));
    TU_OK(clcnn_graph_add_initializer(g, "one", CLCNN_F32, 0, NULL, &one));
    const char *ins[4] = {"x", "r1", "c2o", "r3"};
    for (int l = 1; l <= 4; l++) {
        char w[8], cv[8], gm[8], bt[8], mn[8], vr[8], bn[128], t[8], nm[8];
        snprintf(w, sizeof w, "w%d", l);
        snprintf(cv, sizeof cv, "cv%d", l);
        snprintf(gm, sizeof gm, "g%d", l);
        snprintf(bt, sizeof bt, "b%d", l);
        snprintf(mn, sizeof mn, "m%d", l);
        snprintf(vr, sizeof vr, "v%d", l);
        snprintf(t, sizeof t, "t%d", l);
        snprintf(nm, sizeof nm, "bn%d", l);
        add_param(g, &r, w, 4, 4, l == 1 ? 3 : 4, 3, 3, -0.4f, 0.4f);
        char cin[32];
        snprintf(cin, sizeof cin, "%s %s", ins[l - 1], w);
        node(g, "Conv", w, cin, cv, 1, &pad1);
        add_param(g, &r, gm, 1, 4, 0, 0, 0, l == 2 ? 3.0f : 0.5f, l == 2 ? 4.0f : 1.5f);
        add_param(g, &r, bt, 1, 4, 0, 0, 0, l == 2 ? 3.0f : -0.5f, l == 2 ? 4.0f : 0.5f);
        add_param(g, &r, mn, 1, 4, 0, 0, 0, 0.0f, 0.0f);
        add_param(g, &r, vr, 1, 4, 0, 0, 0, 1.0f, 1.0f);
        snprintf(bn, sizeof bn, "%s %s %s %s %s", cv, gm, bt, mn, vr);
        node(g, "BatchNormalization", nm, bn, t, 0, NULL);
    }
    node(g, "Relu", "r1", "t1", "r1", 0, NULL);           /* fused; r1 read twice */
    node(g, "Clip", "c2", "t2 zero six", "c2o", 0, NULL); /* fused as ReLU6 */
    node(g, "Relu", "r3", "t3", "r3", 0, NULL);           /* t3 read twice: not fused */
    node(g, "Clip", "c4", "t4 zero one", "c4o", 0, NULL); /* other bounds: not fused */
    node(g, "Add", "s1", "c4o r1", "s1", 0, NULL);
    node(g, "Add", "s2", "s1 t3", "s2", 0, NULL);
    node(g, "Relu", "r5", "s2", "r5", 0, NULL); /* fused into s2; r5 read twice */
    node(g, "Add", "s3", "r5 c4o", "s3", 0, NULL);
    node(g, "Mul", "mul3", "s3 r5", "mul3", 0, NULL);
    node(g, "GlobalAveragePool", "pool", "mul3", "pooled", 0, NULL);
    classifier(g, &r, "pooled", 4, 0.5f, 0);
    return g;
}

static void test_fused_tail(void **state) {
    (void)state;
    for (int batch = 1; batch <= 3; batch += 2) {
        clcnn_graph *g = tail_graph();
        fd_case c = fd_default(g, batch);
        c.max_checks = 12;
        c.h = 3e-4; /* activation kinks lie within 1e-3 of some values */
        assert_true(fd_check(&c));
        clcnn_graph_free(g);
    }
}

/* A batch of 3 random 3-channel h x w images (x) and the gradient of 3 logits per image
 * (dy), uniform in [-1, 1] from seed. */
static void random_batch(uint64_t seed, size_t h, size_t w, clcnn_tensor **xt, clcnn_tensor **dyt) {
    tu_rng r = tu_rng_seed(seed);
    size_t xs[4] = {3, 3, h, w}, ys[2] = {3, 3}, n = 9 * h * w;
    float *x = malloc(n * sizeof *x), dy[9];
    assert_non_null(x);
    tu_fill_uniform(&r, x, n, -1.0f, 1.0f);
    tu_fill_uniform(&r, dy, 9, -1.0f, 1.0f);
    *xt = tu_tensor_from(4, xs, x);
    *dyt = tu_tensor_from(2, ys, dy);
    free(x);
}

/* A residual Add whose later operand is a batch norm's output that only it reads runs in
 * the batch norm's pass (train.c's fuse_bn_add): a bottleneck-like block with a
 * downsampling branch (Add + ReLU: the branch's batch norm comes last) and a second Add
 * without ReLU whose other operand the block's convolution reads too. extra: the two batch
 * norms' outputs are graph outputs as well, which keeps both Adds apart. */
static clcnn_graph *bn_add_graph(int extra) {
    clcnn_graph *g = new_graph();
    tu_rng r = tu_rng_seed(29);
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 6, 5);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = ais("pads", p1, 4);
    static const char *const layers[][3] = {
        {"1", "x", "4"}, {"2", "r1", "4"}, {"d", "x", "4"}, {"3", "o1", "4"}};
    for (int l = 0; l < 4; l++) {
        const char *id = layers[l][0];
        char w[8], cv[8], bn[128], t[8], nm[8], cin[32];
        snprintf(w, sizeof w, "w%s", id);
        snprintf(cv, sizeof cv, "c%s", id);
        snprintf(t, sizeof t, "t%s", id);
        snprintf(nm, sizeof nm, "bn%s", id);
        add_param(g, &r, w, 4, 4, l == 0 || l == 2 ? 3 : 4, 3, 3, -0.4f, 0.4f);
        snprintf(cin, sizeof cin, "%s %s", layers[l][1], w);
        node(g, "Conv", w, cin, cv, 1, &pad1);
        const char *sfx[4] = {"g", "b", "m", "v"};
        float lo[4] = {0.5f, -0.5f, 0.0f, 1.0f}, hi[4] = {1.5f, 0.5f, 0.0f, 1.0f};
        char pn[4][8];
        for (int k = 0; k < 4; k++) {
            snprintf(pn[k], sizeof pn[k], "%s%s", sfx[k], id);
            add_param(g, &r, pn[k], 1, 4, 0, 0, 0, lo[k], hi[k]);
        }
        snprintf(bn, sizeof bn, "%s %s %s %s %s", cv, pn[0], pn[1], pn[2], pn[3]);
        node(g, "BatchNormalization", nm, bn, t, 0, NULL);
        if (l == 0) node(g, "Relu", "r1", "t1", "r1", 0, NULL);
        if (l == 2) { /* after the downsampling branch: the block's sum */
            node(g, "Add", "s1", "t2 td", "u1", 0, NULL);
            node(g, "Relu", "o1", "u1", "o1", 0, NULL);
        }
    }
    node(g, "Add", "s2", "o1 t3", "u2", 0, NULL);
    node(g, "GlobalAveragePool", "pool", "u2", "pooled", 0, NULL);
    classifier(g, &r, "pooled", 4, 0.5f, 1);
    if (extra) {
        TU_OK(clcnn_graph_add_output(g, "td"));
        TU_OK(clcnn_graph_add_output(g, "t3"));
    }
    return g;
}

/* The batch norms of a plan that run an Add in their pass. */
static int bn_adds(const clcnn_train_plan *p) {
    int n = 0;
    for (int i = 0; i < p->nnodes; i++)
        n += p->nodes[i].op == CC_OP_BATCHNORM && p->nodes[i].res >= 0;
    return n;
}

/* Finite differences through the fused block, and the same logits and parameter
 * gradients, bit for bit, as the plan that keeps the Adds apart (twice: the second step's
 * forward starts from the first's running statistics). */
static void test_bn_add(void **state) {
    (void)state;
    for (int batch = 1; batch <= 3; batch += 2) {
        clcnn_graph *g = bn_add_graph(0);
        fd_case c = fd_default(g, batch);
        c.max_checks = 12;
        c.h = 3e-4;
        assert_true(fd_check(&c));
        clcnn_graph_free(g);
    }
    clcnn_train_plan *p[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        clcnn_graph *g = bn_add_graph(k);
        TU_OK(clcnn_train_plan_create(tu_device(), g, 3, NULL, &p[k]));
        clcnn_graph_free(g);
    }
    assert_int_equal(bn_adds(p[0]), 2);
    assert_int_equal(bn_adds(p[1]), 0);
    clcnn_tensor *xt = NULL, *dyt = NULL;
    random_batch(5, 6, 5, &xt, &dyt);
    const clcnn_tensor *grads[3] = {dyt, NULL, NULL};
    float *out[2][2], *gr[2][2];
    for (int step = 0; step < 2; step++)
        for (int k = 0; k < 2; k++) {
            TU_OK(clcnn_train_plan_forward(p[k], (const clcnn_tensor *const *)&xt, 1));
            TU_OK(clcnn_train_plan_backward(p[k], grads, 1 + 2 * k));
            out[step][k] = tu_download(clcnn_train_plan_output(p[k], 0));
            gr[step][k] = tu_download(clcnn_train_plan_grads(p[k]));
            TU_OK(clcnn_train_plan_zero_grad(p[k]));
        }
    size_t ng = clcnn_tensor_numel(clcnn_train_plan_grads(p[0]));
    assert_int_equal(ng, clcnn_tensor_numel(clcnn_train_plan_grads(p[1])));
    for (int step = 0; step < 2; step++) {
        assert_memory_equal(out[step][0], out[step][1], 9 * sizeof(float));
        assert_memory_equal(gr[step][0], gr[step][1], ng * sizeof(float));
        for (int k = 0; k < 2; k++)
            free(out[step][k]), free(gr[step][k]);
    }
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    clcnn_train_plan_free(p[0]);
    clcnn_train_plan_free(p[1]);
}

/* Two plans, same batch: bit-identical gradients; a second backward without zero_grad
 * adds the same again (exactly doubles), zero_grad clears; with overwrite_grads a second
 * backward writes the same gradients again. */
static float *dag_grads(clcnn_train_plan **keep, int twice, int overwrite) {
    clcnn_graph *g = dag_graph();
    clcnn_train_plan *p = NULL;
    clcnn_train_options o = {.overwrite_grads = overwrite};
    TU_OK(clcnn_train_plan_create(tu_device(), g, 3, &o, &p));
    clcnn_graph_free(g);
    clcnn_tensor *xt = NULL, *dyt = NULL;
    random_batch(3, 7, 7, &xt, &dyt);
    for (int k = 0; k < 1 + twice; k++) {
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    }
    float *grads = tu_download(clcnn_train_plan_grads(p));
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    if (keep)
        *keep = p;
    else
        clcnn_train_plan_free(p);
    return grads;
}

static void test_repeatable(void **state) {
    (void)state;
    clcnn_train_plan *p = NULL;
    float *a = dag_grads(NULL, 0, 0), *b = dag_grads(&p, 0, 0), *c2 = dag_grads(NULL, 1, 0);
    float *ow = dag_grads(NULL, 1, 1);
    size_t n = clcnn_tensor_numel(clcnn_train_plan_grads(p));
    assert_memory_equal(a, b, n * sizeof *a);
    double norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        assert_true(c2[i] == 2.0f * a[i]);
        assert_true(ow[i] == a[i]);
        norm += fabs(a[i]);
    }
    assert_true(norm > 0.0);
    TU_OK(clcnn_train_plan_zero_grad(p));
    float *z = tu_download(clcnn_train_plan_grads(p));
    for (size_t i = 0; i < n; i++)
        assert_true(z[i] == 0.0f);
    /* parameters by name: the arena holds them as views */
    float w[3 * 36];
    TU_OK(clcnn_train_plan_read(p, "fc.w", w, sizeof w));
    w[0] = 42.0f;
    TU_OK(clcnn_train_plan_write(p, "fc.w", w, sizeof w));
    float *wv = tu_download(clcnn_train_plan_param(p, "fc.w"));
    assert_true(wv[0] == 42.0f);
    assert_int_equal(clcnn_train_plan_read(p, "nope", w, sizeof w), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "nope"));
    assert_int_equal(clcnn_train_plan_write(p, "fc.w", w, 4), CLCNN_ERR_INVALID_ARG);
    assert_null(clcnn_train_plan_grad(p, "x"));
    free(a);
    free(b);
    free(c2);
    free(ow);
    free(z);
    free(wv);
    clcnn_train_plan_free(p);
}

/* SGD with momentum over the whole arenas (one update for every parameter) fits a fixed
 * batch of the DAG: the cross-entropy falls to under a third of its start in 30 steps. */
static void test_sgd_on_arenas(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 6, NULL, &p));
    clcnn_graph_free(g);
    tu_rng r = tu_rng_seed(8);
    float x[6 * 3 * 7 * 7];
    int lab[6] = {0, 1, 2, 2, 1, 0};
    tu_fill_uniform(&r, x, sizeof x / sizeof *x, -1.0f, 1.0f);
    size_t xs[4] = {6, 3, 7, 7}, ys[2] = {6, 3}, one = 1, six = 6;
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *labels = tu_tensor_new(CLCNN_I32, 1, &six);
    TU_OK(clcnn_tensor_upload(labels, lab, sizeof lab));
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, &one);
    clcnn_tensor *dlogits = tu_tensor_new(CLCNN_F32, 2, ys);
    clcnn_tensor *params = clcnn_train_plan_params(p), *grads = clcnn_train_plan_grads(p);
    size_t ng = clcnn_tensor_numel(grads);
    assert_int_equal(clcnn_tensor_numel(params), ng);
    clcnn_tensor *vel = tu_tensor_new(CLCNN_F32, 1, &ng);
    TU_OK(clcnn_tensor_fill(vel, 0.0f));
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < 30; step++) {
        TU_OK(clcnn_train_plan_zero_grad(p));
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_softmax_cross_entropy(tu_device(), clcnn_train_plan_output(p, 0), labels, loss,
                                          dlogits));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dlogits, 1));
        TU_OK(clcnn_sgd_update(tu_device(), params, grads, vel, 0.05f, 0.9f, 0.0f));
        TU_OK(clcnn_tensor_download(loss, step ? &last : &first, sizeof first));
    }
    printf("cross-entropy %.4f -> %.4f in 30 steps\n", first, last);
    assert_true(isfinite(last) && last < first / 3.0f);
    /* the trained weights and running statistics back into a graph, by name */
    clcnn_graph *back = dag_graph();
    TU_OK(clcnn_train_plan_to_graph(p, back));
    const char *names[3] = {"fc.w", "bn.m", "stem.w"};
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        const float *gv = clcnn_graph_initializer(back, names[i], &n);
        float *pv = tu_download(clcnn_train_plan_param(p, names[i]));
        assert_memory_equal(gv, pv, n * sizeof *pv);
        free(pv);
    }
    clcnn_graph *other = new_graph(); /* no such initializers */
    assert_int_equal(clcnn_train_plan_to_graph(p, other), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "stem.w"));
    clcnn_graph_free(other);
    clcnn_graph_free(back);
    clcnn_tensor *tensors[5] = {xt, labels, loss, dlogits, vel};
    for (int i = 0; i < 5; i++)
        clcnn_tensor_free(tensors[i]);
    clcnn_train_plan_free(p);
}

/* ---- the zoo's "bn" and "lenet": the net's own plan (parameter gradients written in place,
 * plans remade per batch size on shared arenas) against a public training plan of its graph
 * (gradients added to a zeroed arena). The gradients themselves are checked against finite
 * differences of the double reference in test_nn.c. ---------------------------------------- */

static void test_zoo_matches_net(void **state) {
    (void)state;
    const char *models[2] = {"bn", "lenet"};
    for (int mi = 0; mi < 2; mi++) {
        clcnn_net *net = NULL;
        TU_OK(clcnn_net_create_model(tu_device(), models[mi], 10, &net));
        TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 7));
        clcnn_graph *g = NULL;
        TU_OK(clcnn_net_graph(net, &g));
        int batch = 4;
        clcnn_train_plan *p = NULL;
        TU_OK(clcnn_train_plan_create(tu_device(), g, batch, NULL, &p));
        tu_rng r = tu_rng_seed(9);
        size_t xs[4] = {(size_t)batch, 1, 28, 28}, ys[2] = {(size_t)batch, 10};
        float *x = malloc(batch * 784 * sizeof *x), dy[40];
        tu_fill_uniform(&r, x, (size_t)batch * 784, 0.0f, 1.0f);
        tu_fill_uniform(&r, dy, 40, -1.0f, 1.0f);
        clcnn_tensor *xt = tu_tensor_from(4, xs, x), *dyt = tu_tensor_from(2, ys, dy);
        const clcnn_tensor *y = NULL;
        clcnn_net_set_training(net, 1);
        TU_OK(clcnn_net_forward(net, xt, &y));
        TU_OK(clcnn_net_backward(net, dyt));
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
        float *ya = tu_download(y), *yb = tu_download(clcnn_train_plan_output(p, 0));
        double *yref = malloc(40 * sizeof *yref);
        for (int i = 0; i < 40; i++)
            yref[i] = ya[i];
        assert_true(tu_close("output", yb, yref, 40, 1e-4, 1e-3));
        int compared = 0;
        for (int i = 0; i < clcnn_net_num_params(net); i++) {
            clcnn_param q;
            TU_OK(clcnn_net_param(net, i, &q));
            clcnn_tensor *gp = clcnn_train_plan_grad(p, q.name);
            if (!q.grad) {
                assert_null(gp);
                continue;
            }
            assert_non_null(gp);
            size_t n = clcnn_tensor_numel(q.grad);
            assert_int_equal(n, clcnn_tensor_numel(gp));
            float *ga = tu_download(q.grad), *gb = tu_download(gp);
            double *ref = malloc(n * sizeof *ref), mx = 0.0;
            for (size_t k = 0; k < n; k++) {
                ref[k] = ga[k];
                mx = fmax(mx, fabs(ref[k]));
            }
            /* different algorithms sum in different orders: rounding relative to the
             * tensor's largest gradient */
            assert_true(tu_close(q.name, gb, ref, n, 1e-4 * mx + 1e-7, 1e-3));
            compared++;
            free(ga);
            free(gb);
            free(ref);
        }
        assert_true(compared >= 6);
        free(x);
        free(ya);
        free(yb);
        free(yref);
        clcnn_tensor_free(xt);
        clcnn_tensor_free(dyt);
        clcnn_train_plan_free(p);
        clcnn_graph_free(g);
        clcnn_net_free(net);
    }
}

/* ---- models PyTorch exported (tests/onnx/torch) ---------------------------------------- */

static clcnn_graph *load_torch(const char *name) {
    char path[512];
    snprintf(path, sizeof path, CLCNN_SOURCE_DIR "/tests/onnx/torch/%s/model.onnx", name);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_load_onnx(path, &g));
    return g;
}

/* An imported ResNet (BasicBlocks: residual Adds, projection shortcuts, batch norm, max and
 * global pooling, Flatten, Gemm) against finite differences, two elements per parameter;
 * MobileNet-V2 (depthwise convolutions, Clip as ReLU6) runs a step with finite, non-zero
 * gradients; a model with a value of 5 dims fails naming it. */
static void test_imported_models(void **state) {
    (void)state;
    clcnn_graph *g = load_torch("small_resnet");
    fd_case c = fd_default(g, 2);
    c.max_checks = 2;
    c.h = 3e-4;
    assert_true(fd_check(&c));
    clcnn_graph_free(g);

    g = load_torch("small_mobilenet_v2");
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p));
    size_t xs[4] = {2, 3, 32, 32}, ys[2] = {2, 10};
    float x[2 * 3 * 32 * 32], dy[20];
    tu_rng r = tu_rng_seed(41);
    tu_fill_uniform(&r, x, sizeof x / sizeof *x, -1.0f, 1.0f);
    tu_fill_uniform(&r, dy, 20, -1.0f, 1.0f);
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *dyt = tu_tensor_from(2, ys, dy);
    TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
    TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    int nonzero = 0;
    for (int i = 0; i < clcnn_train_plan_num_params(p); i++) {
        clcnn_tensor *gt = clcnn_train_plan_grad(p, clcnn_train_plan_param_name(p, i));
        if (!gt) continue;
        float *gv = tu_download(gt);
        double sum = 0.0;
        for (size_t k = 0; k < clcnn_tensor_numel(gt); k++)
            sum += fabs(gv[k]);
        assert_true(isfinite(sum));
        nonzero += sum > 0.0;
        free(gv);
    }
    assert_true(nonzero > 50);
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    clcnn_train_plan_free(p);
    clcnn_graph_free(g);

    g = load_torch("shuffle_concat");
    p = (clcnn_train_plan *)0x1;
    assert_int_equal(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_null(p);
    /* its channel shuffle reshapes to 5 dims */
    assert_non_null(strstr(clcnn_last_error(), "training plans hold at most 4"));
    clcnn_graph_free(g);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_create_error(clcnn_graph *g, clcnn_status want, const char *needle1,
                                const char *needle2) {
    clcnn_train_plan *p = (clcnn_train_plan *)0x1;
    assert_int_equal(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p), want);
    assert_null(p);
    const char *msg = clcnn_last_error();
    if (!strstr(msg, needle1) || !strstr(msg, needle2))
        fail_msg("message '%s' does not name '%s' and '%s'", msg, needle1, needle2);
    clcnn_graph_free(g);
}

static void test_errors(void **state) {
    (void)state;
    /* an op without backward */
    clcnn_graph *g = new_graph();
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 4, 4);
    node(g, "Exp", "the_exp", "x", "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_create_error(g, CLCNN_ERR_UNSUPPORTED, "the_exp", "Exp");
    /* a form without backward: dilated max pooling */
    g = new_graph();
    add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 5, 5);
    int64_t k2[2] = {2, 2};
    clcnn_attr mp[3] = {ais("kernel_shape", k2, 2), ais("strides", k2, 2), ais("dilations", k2, 2)};
    node(g, "MaxPool", "dil_pool", "x", "y", 3, mp);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_create_error(g, CLCNN_ERR_UNSUPPORTED, "dil_pool", "dilations");
    /* backward before forward, wrong counts */
    g = dag_graph();
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p));
    const clcnn_tensor *none[1] = {NULL};
    assert_int_equal(clcnn_train_plan_backward(p, none, 1), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "no forward"));
    assert_int_equal(clcnn_train_plan_forward(p, NULL, 0), CLCNN_ERR_INVALID_ARG);
    size_t xs[4] = {2, 3, 7, 8};
    clcnn_tensor *bad = tu_tensor_new(CLCNN_F32, 4, xs);
    assert_int_equal(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&bad, 1),
                     CLCNN_ERR_SHAPE);
    clcnn_tensor_free(bad);
    assert_null(clcnn_train_plan_input_grad(p, 0)); /* input gradients off */
    clcnn_train_plan_free(p);
    clcnn_train_plan_free(NULL);
    clcnn_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_running),
        cmocka_unit_test(test_batchnorm_momentum_exact),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_concat_split_views),
        cmocka_unit_test(test_view_gradients),
        cmocka_unit_test(test_transpose_slice_pad_expand),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_closed_forms),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dag),
        cmocka_unit_test(test_fused_tail),
        cmocka_unit_test(test_bn_add),
        cmocka_unit_test(test_fd_catches_wrong_gradient),
        cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_sgd_on_arenas),
        cmocka_unit_test(test_zoo_matches_net),
        cmocka_unit_test(test_imported_models),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
