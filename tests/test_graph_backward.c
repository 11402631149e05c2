/* Backward on the graph, per op: each op's gradients in a training plan
 * (clcnn_train_plan_*) against central finite differences of a scalar loss (graph_fd.c),
 * input gradients against closed forms computed in double, Softmax, Dropout's masks. DAGs,
 * fusion, repeats, the zoo's and PyTorch's models and the error paths:
 * test_graph_backward_plans. */
#include "graph_fd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- per op ----------------------------------------------------------------------------- */

static void conv_case_pads(int batch, int c, int h, int w, int k, int r, int stride,
                           const int64_t pd[4], int dil, int groups, int bias) {
    clcnn_graph *g = gt_new_graph();
    tu_rng rng = tu_rng_seed(11);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, c, h, w);
    gt_add_param(g, &rng, "w", 4, k, c / groups, r, r, -0.5f, 0.5f);
    if (bias) gt_add_param(g, &rng, "b", 1, k, 0, 0, 0, -0.5f, 0.5f);
    int64_t st[2] = {stride, stride}, dl[2] = {dil, dil};
    clcnn_attr a[4] = {gt_ais("strides", st, 2), gt_ais("pads", pd, 4), gt_ais("dilations", dl, 2),
                       gt_ai("group", groups)};
    gt_node(g, "Conv", "conv", bias ? "x w b" : "x w", "y", 4, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_expect_fd(g, batch, 1e-2);
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
    clcnn_graph *g = gt_new_graph();
    tu_rng rng = tu_rng_seed(15);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, c, h, h + 1);
    gt_add_param(g, &rng, "w", 4, c, k / groups, r, r, -0.5f, 0.5f);
    gt_add_param(g, &rng, "b", 1, k, 0, 0, 0, -0.5f, 0.5f);
    int64_t st[2] = {stride, stride}, pd[4] = {pad, pad, pad, pad};
    clcnn_attr a[3] = {gt_ais("strides", st, 2), gt_ais("pads", pd, 4), gt_ai("group", groups)};
    gt_node(g, "ConvTranspose", "up", "x w b", "y", 3, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_expect_fd(g, batch, 1e-2);
}

static void test_conv_transpose(void **state) {
    (void)state;
    convt_case(2, 3, 4, 2, 3, 2, 1, 1); /* stride 2, pad 1 */
    convt_case(1, 4, 3, 6, 2, 1, 0, 2); /* groups */
}

static void bn_case(int nd, int batch) {
    clcnn_graph *g = gt_new_graph();
    tu_rng rng = tu_rng_seed(12);
    if (nd == 4)
        gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 5, 4);
    else
        gt_add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 5, 0, 0);
    int c = nd == 4 ? 3 : 5;
    gt_add_param(g, &rng, "gamma", 1, c, 0, 0, 0, 0.5f, 1.5f);
    gt_add_param(g, &rng, "beta", 1, c, 0, 0, 0, -0.5f, 0.5f);
    gt_add_param(g, &rng, "mean", 1, c, 0, 0, 0, -0.1f, 0.1f);
    gt_add_param(g, &rng, "var", 1, c, 0, 0, 0, 0.9f, 1.1f);
    clcnn_attr a[1] = {gt_af("momentum", 0.9f)};
    gt_node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_expect_fd(g, batch, 1e-2);
}

/* Running statistics: PyTorch's rule with momentum 1 - ONNX's (unbiased variance). */
static void test_batchnorm_running(void **state) {
    (void)state;
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 2, 0, 0);
    float one[2] = {1, 1}, zero[2] = {0, 0};
    int64_t d = 2;
    TU_OK(clcnn_graph_add_initializer(g, "gamma", CLCNN_F32, 1, &d, one));
    TU_OK(clcnn_graph_add_initializer(g, "beta", CLCNN_F32, 1, &d, zero));
    TU_OK(clcnn_graph_add_initializer(g, "mean", CLCNN_F32, 1, &d, zero));
    TU_OK(clcnn_graph_add_initializer(g, "var", CLCNN_F32, 1, &d, one));
    clcnn_attr a[1] = {gt_af("momentum", 0.75f)};
    gt_node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
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
        clcnn_graph *g = gt_new_graph();
        gt_add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 1, 0, 0);
        float one = 1, zero = 0;
        int64_t d = 1;
        TU_OK(clcnn_graph_add_initializer(g, "gamma", CLCNN_F32, 1, &d, &one));
        TU_OK(clcnn_graph_add_initializer(g, "beta", CLCNN_F32, 1, &d, &zero));
        TU_OK(clcnn_graph_add_initializer(g, "mean", CLCNN_F32, 1, &d, &zero));
        TU_OK(clcnn_graph_add_initializer(g, "var", CLCNN_F32, 1, &d, &one));
        clcnn_attr a[1] = {gt_af("momentum", 1.0f - ms[i])};
        gt_node(g, "BatchNormalization", "bn", "x gamma beta mean var", "y", 1, a);
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
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 3, 5);
    char ins[64];
    snprintf(ins, sizeof ins, "x%s", extra_in ? extra_in : "");
    if (extra_in) {
        float lo = -0.4f, hi = 0.6f;
        TU_OK(clcnn_graph_add_initializer(g, "lo", CLCNN_F32, 0, NULL, &lo));
        TU_OK(clcnn_graph_add_initializer(g, "hi", CLCNN_F32, 0, NULL, &hi));
    }
    gt_node(g, op, "u", ins, "y", na, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_fd_case c = gt_fd_default(g, 2);
    c.h = 1e-3;
    c.in_hi = strcmp(op, "HardSwish") ? 1.0f : 4.0f; /* inside and outside (-3, 3) */
    assert_true(gt_fd_check(&c));
    clcnn_graph_free(g);
}

static void test_activations(void **state) {
    (void)state;
    unary_case("Relu", 0, NULL, NULL);
    clcnn_attr alpha = gt_af("alpha", 0.2f);
    unary_case("LeakyRelu", 1, &alpha, NULL);
    unary_case("Sigmoid", 0, NULL, NULL);
    unary_case("Tanh", 0, NULL, NULL);
    unary_case("Clip", 0, NULL, " lo hi");
    clcnn_attr hs[2] = {gt_af("alpha", 1.0f), gt_af("beta", 0.5f)}; /* the window (-0.5, 0.5) */
    unary_case("HardSigmoid", 2, hs, NULL);
    unary_case("HardSwish", 0, NULL, NULL);
    int64_t hw[2] = {2, 3}, c1[1] = {1};
    clcnn_attr mean[2] = {gt_ais("axes", hw, 2), gt_ai("keepdims", 1)};
    unary_case("ReduceMean", 2, mean, NULL); /* as a squeeze-excitation's pooling */
    clcnn_attr sum[2] = {gt_ais("axes", c1, 1), gt_ai("keepdims", 0)};
    unary_case("ReduceSum", 2, sum, NULL);
}

/* pads top, left, bottom, right = pad, pad, pad + extra, pad + extra. */
static void pool_case(const char *op, int k, int stride, int pad, int include_pad, int extra,
                      int ceil) {
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 7, 9);
    int64_t ks[2] = {k, k}, st[2] = {stride, stride};
    int64_t pd[4] = {pad, pad, pad + extra, pad + extra};
    clcnn_attr a[5] = {gt_ais("kernel_shape", ks, 2), gt_ais("strides", st, 2),
                       gt_ais("pads", pd, 4), gt_ai("ceil_mode", ceil),
                       gt_ai("count_include_pad", include_pad)};
    gt_node(g, op, "pool", "x", "y", strncmp(op, "Global", 6) ? 5 - !strcmp(op, "MaxPool") : 0, a);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_expect_fd(g, 2, 1e-3);
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
    clcnn_graph *g = gt_new_graph();
    tu_rng rng = tu_rng_seed(13);
    gt_add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    if (b_is_input)
        gt_add_input(g, "b", bnd, CLCNN_GRAPH_BATCH, b1, b2, b3);
    else
        gt_add_param(g, &rng, "b", bnd, b1, b2, b3, 0, strcmp(op, "Div") ? -1.0f : 0.5f, 1.5f);
    gt_node(g, op, "bin", "a b", "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    gt_expect_fd(g, 2, 1e-2);
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
        clcnn_graph *g = gt_new_graph();
        tu_rng rng = tu_rng_seed(14);
        int ta = variant == 2, tb = variant == 0 || variant == 2;
        if (ta)
            gt_add_input(g, "a", 2, 6, 3, 0, 0); /* (k, m), m the batch of 3 */
        else
            gt_add_input(g, "a", 2, CLCNN_GRAPH_BATCH, 6, 0, 0);
        gt_add_param(g, &rng, "w", 2, tb ? 5 : 6, tb ? 6 : 5, 0, 0, -1.0f, 1.0f);
        gt_add_param(g, &rng, "c", 1, 5, 0, 0, 0, -1.0f, 1.0f);
        clcnn_attr a[3] = {gt_ai("transA", ta), gt_ai("transB", tb),
                           gt_af("alpha", ta ? 0.5f : 1.0f)};
        if (variant == 3)
            gt_node(g, "MatMul", "mm", "a w", "y", 0, NULL);
        else
            gt_node(g, "Gemm", "fc", variant == 1 ? "a w" : "a w c", "y", 3, a);
        TU_OK(clcnn_graph_add_output(g, "y"));
        gt_expect_fd(g, 3, 1e-2);
    }
}

static void test_concat_split_views(void **state) {
    (void)state;
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 2, 3, 3);
    gt_add_input(g, "b", 4, CLCNN_GRAPH_BATCH, 3, 3, 3);
    clcnn_attr ax1 = gt_ai("axis", 1);
    gt_node(g, "Concat", "cat", "a b a", "c", 1, &ax1);
    int64_t sp[3] = {1, 4, 2};
    clcnn_attr split[2] = {gt_ai("axis", 1), gt_ais("split", sp, 3)};
    const char *outs[3] = {"s0", "s1", "s2"};
    const char *in = "c";
    TU_OK(clcnn_graph_add_node(g, "Split", "split", 1, &in, 3, outs, 2, split));
    clcnn_attr fl = gt_ai("axis", 1);
    gt_node(g, "Flatten", "flat", "s1", "f", 1, &fl);
    int64_t shape[3] = {INT64_MIN, 2, 9};
    int64_t sd = 3;
    TU_OK(clcnn_graph_add_initializer(g, "shape", CLCNN_I64, 1, &sd, shape));
    gt_node(g, "Reshape", "reshape", "s2 shape", "r", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "f"));
    TU_OK(clcnn_graph_add_output(g, "r"));
    TU_OK(clcnn_graph_add_output(g, "s0"));
    gt_expect_fd(g, 2, 1e-2);
}

/* Views take their gradient buffers from their input's (no copy in backward): a Flatten
 * that is the first of its input's three readers, a Reshape that is the last, a view of a
 * view, a view that is a graph output read twice by one Mul, a view of a node output. */
static void test_view_gradients(void **state) {
    (void)state;
    clcnn_graph *g = gt_new_graph();
    tu_rng rng = tu_rng_seed(21);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 3, 3);
    gt_add_param(g, &rng, "s", 4, 1, 2, 1, 1, 0.5f, 1.5f);
    gt_node(g, "Mul", "scale", "x s", "a", 0, NULL);
    clcnn_attr fl = gt_ai("axis", 1);
    gt_node(g, "Flatten", "flat", "a", "f", 1, &fl); /* (N, 18) */
    gt_node(g, "Tanh", "tanh", "a", "t", 0, NULL);
    int64_t sd = 3, s29[3] = {INT64_MIN, 2, 9}, s36[3] = {INT64_MIN, 3, 6};
    TU_OK(clcnn_graph_add_initializer(g, "s29", CLCNN_I64, 1, &sd, s29));
    TU_OK(clcnn_graph_add_initializer(g, "s36", CLCNN_I64, 1, &sd, s36));
    gt_node(g, "Reshape", "ra", "a s29", "ra", 0, NULL);
    gt_node(g, "Reshape", "rt", "t s29", "rt", 0, NULL);
    gt_node(g, "Mul", "z", "ra rt", "z", 0, NULL);
    gt_node(g, "Mul", "square", "f f", "q", 0, NULL);
    gt_node(g, "Reshape", "f2", "f s36", "f2", 0, NULL);
    gt_node(g, "Sigmoid", "o", "f2", "o", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "f"));
    TU_OK(clcnn_graph_add_output(g, "q"));
    TU_OK(clcnn_graph_add_output(g, "o"));
    TU_OK(clcnn_graph_add_output(g, "z"));
    gt_expect_fd(g, 3, 1e-2);
}

/* Transpose to NHWC, a strided Slice of two axes, a constant Pad (and a crop), an Expand
 * added to it */
static void test_transpose_slice_pad_expand(void **state) {
    (void)state;
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 5, 6);
    int64_t perm[4] = {0, 2, 3, 1};
    clcnn_attr pa = gt_ais("perm", perm, 4);
    gt_node(g, "Transpose", "nhwc", "x", "t", 1, &pa);
    int64_t one = 2, starts[2] = {1, 0}, ends[2] = {5, 6}, axes[2] = {1, 2}, steps[2] = {2, 2};
    TU_OK(clcnn_graph_add_initializer(g, "starts", CLCNN_I64, 1, &one, starts));
    TU_OK(clcnn_graph_add_initializer(g, "ends", CLCNN_I64, 1, &one, ends));
    TU_OK(clcnn_graph_add_initializer(g, "axes", CLCNN_I64, 1, &one, axes));
    TU_OK(clcnn_graph_add_initializer(g, "steps", CLCNN_I64, 1, &one, steps));
    gt_node(g, "Slice", "slice", "t starts ends axes steps", "s", 0, NULL); /* [N,2,3,3] */
    int64_t eight = 8, pads[8] = {0, 1, 0, 2, 0, 0, 1, -1};
    TU_OK(clcnn_graph_add_initializer(g, "pads", CLCNN_I64, 1, &eight, pads));
    gt_node(g, "Pad", "pad", "s pads", "y", 0, NULL); /* [N,3,4,4] */
    int64_t four = 4, eshape[4] = {1, 3, 4, 4};       /* [N,3,1,4] over its h */
    TU_OK(clcnn_graph_add_initializer(g, "eshape", CLCNN_I64, 1, &four, eshape));
    gt_add_input(g, "row", 4, CLCNN_GRAPH_BATCH, 3, 1, 4);
    gt_node(g, "Expand", "expand", "row eshape", "e", 0, NULL);
    gt_node(g, "Add", "sum", "y e", "z", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "z"));
    gt_expect_fd(g, 2, 1e-2);
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
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    gt_add_input(g, "b", 4, CLCNN_GRAPH_BATCH, 3, 1, 1);
    gt_node(g, "Mul", "se", "a b", "y", 0, NULL);
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
        g = gt_new_graph();
        gt_add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
        clcnn_attr ax = gt_ai("axis", 1);
        gt_node(g, ops[o], "u", "a", "y", o >= 2, &ax);
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
    g = gt_new_graph();
    gt_add_input(g, "a", 4, CLCNN_GRAPH_BATCH, 3, 4, 5);
    clcnn_attr ax2 = gt_ai("axis", 2);
    gt_node(g, "Concat", "cat", "a a", "y", 1, &ax2);
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
            clcnn_graph *g = gt_new_graph();
            if (four)
                gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 4, 3, 2);
            else
                gt_add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 7, 0, 0);
            clcnn_attr ax = gt_ai("axis", 1);
            gt_node(g, ops[i], "sm", "x", "y", 1, &ax);
            TU_OK(clcnn_graph_add_output(g, "y"));
            gt_expect_fd(g, 3, 1e-2);
        }
}

/* Dropout: y is 0 or x / (1 - p); dx = dy there, 0 elsewhere; a new mask each forward, the
 * same masks for the same seed; ratio 0 (or training_mode 0) a copy. */
static float *dropout_run(uint64_t seed, float ratio, int forwards, float **dx_out) {
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 2, CLCNN_GRAPH_BATCH, 300, 0, 0);
    clcnn_attr a = gt_af("ratio", ratio);
    gt_node(g, "Dropout", "drop", "x", "y", 1, &a);
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
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
