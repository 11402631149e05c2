/* The device-free graph and plans on hand-built graphs: shape inference of every op kind
 * (auto_pad, ceil_mode, broadcasting, a symbolic batch), the errors of bad graphs (cycles,
 * dangling inputs, unknown ops, duplicate names, bad attributes, shapes that do not fit),
 * inspection, and plans of a small DAG (two branches, Concat, a residual Add, global
 * pooling, Gemm, Softmax) against a double-precision reference, at batch 1 and 3, with
 * folding, fusion and buffer reuse each on and off. */
#include "reference_conv.h"
#include "reference_ops.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int64_t N = CLCNN_GRAPH_BATCH;

static void node(clcnn_graph *g, const char *op, const char *name, int n_in, const char *const *in,
                 const char *out, int na, const clcnn_attr *a) {
    clcnn_status s = clcnn_graph_add_node(g, op, name, n_in, in, 1, &out, na, a);
    if (s != CLCNN_OK) fail_msg("%s: %s", name, clcnn_last_error());
}

static void expect_shape(clcnn_graph *g, const char *v, int ndim, const int64_t *want) {
    int nd = 0;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_value_shape(g, v, &nd, dims));
    assert_int_equal(nd, ndim);
    for (int i = 0; i < ndim; i++)
        if (dims[i] != want[i])
            fail_msg("%s: dim %d is %lld, want %lld", v, i, (long long)dims[i], (long long)want[i]);
}

static void init(clcnn_graph *g, const char *name, int ndim, const int64_t *dims) {
    TU_OK(clcnn_graph_add_initializer(g, name, CLCNN_F32, ndim, dims, NULL));
}

static void test_shape_inference(void **state) {
    (void)state;
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 3, 11, 10}));
    init(g, "w", 4, (int64_t[]){8, 3, 3, 3});
    init(g, "wg", 4, (int64_t[]){8, 2, 3, 3});
    init(g, "b", 1, (int64_t[]){8});
    /* stride 2, pad 1, dilation 2: (11 + 2 - 5) / 2 + 1 = 5, (10 + 2 - 5) / 2 + 1 = 4 */
    node(g, "Conv", "c1", 3, (const char *[]){"x", "w", "b"}, "c1", 3,
         (clcnn_attr[]){INTS("strides", 2, 2), INTS("pads", 1, 1, 1, 1), INTS("dilations", 2, 2)});
    /* SAME_UPPER, stride 2: ceil(11/2) = 6, ceil(10/2) = 5 */
    node(g, "Conv", "c2", 2, (const char *[]){"x", "w"}, "c2", 2,
         (clcnn_attr[]){STR("auto_pad", "SAME_UPPER"), INTS("strides", 2, 2)});
    /* groups: 8 channels in 4 groups of 2 */
    node(g, "Conv", "c3", 2, (const char *[]){"c2", "wg"}, "c3", 2,
         (clcnn_attr[]){INT("group", 4), STR("auto_pad", "VALID")});
    /* ceil mode, kernel 3 stride 2: 11 -> ceil(8/2) + 1 = 5 (floor 5 too);
     * 10 -> ceil(7/2) + 1 = 5 (floor 4) */
    node(g, "MaxPool", "p1", 1, (const char *[]){"x"}, "p1", 3,
         (clcnn_attr[]){INTS("kernel_shape", 3, 3), INTS("strides", 2, 2), INT("ceil_mode", 1)});
    /* PyTorch's rule drops a last window that starts in the right padding: kernel 2,
     * stride 2, pad 1, ceil on 5x4: 5 -> ceil(5/2) + 1 = 4 windows, the 4th starts at 6,
     * past 5 + 1, so 3; 4 -> ceil(4/2) + 1 = 3, the 3rd starts at 4 < 4 + 1: 3 */
    node(g, "MaxPool", "p3", 1, (const char *[]){"c1"}, "p3", 4,
         (clcnn_attr[]){INTS("kernel_shape", 2, 2), INTS("strides", 2, 2), INTS("pads", 1, 1, 1, 1),
                        INT("ceil_mode", 1)});
    node(g, "AveragePool", "p2", 1, (const char *[]){"c3"}, "p2", 3,
         (clcnn_attr[]){INTS("kernel_shape", 2, 2), INTS("strides", 2, 2),
                        INTS("pads", 1, 1, 1, 1)});
    node(g, "GlobalAveragePool", "gap", 1, (const char *[]){"c1"}, "gap", 0, NULL);
    node(g, "GlobalMaxPool", "gmp", 1, (const char *[]){"c1"}, "gmp", 0, NULL);
    init(g, "s", 1, (int64_t[]){8});
    node(g, "BatchNormalization", "bn", 5, (const char *[]){"c1", "s", "s", "s", "s"}, "bn", 0,
         NULL);
    node(g, "Relu", "r", 1, (const char *[]){"bn"}, "r", 0, NULL);
    node(g, "LeakyRelu", "lr", 1, (const char *[]){"r"}, "lr", 1,
         (clcnn_attr[]){FLOAT("alpha", 0.2f)});
    /* broadcasting: (N, 8, 1, 1) + (N, 8, 5, 4) */
    node(g, "Add", "add", 2, (const char *[]){"gap", "lr"}, "add", 0, NULL);
    node(g, "Concat", "cat", 3, (const char *[]){"add", "lr", "c1"}, "cat", 1,
         (clcnn_attr[]){INT("axis", 1)});
    node(g, "Flatten", "flat", 1, (const char *[]){"cat"}, "flat", 0, NULL);
    init(g, "fw", 2, (int64_t[]){7, 480});
    init(g, "fwt", 2, (int64_t[]){480, 7});
    init(g, "fb", 1, (int64_t[]){7});
    node(g, "Gemm", "fc", 3, (const char *[]){"flat", "fw", "fb"}, "fc", 1,
         (clcnn_attr[]){INT("transB", 1)});
    node(g, "Gemm", "fc2", 2, (const char *[]){"flat", "fwt"}, "fc2", 0, NULL);
    node(g, "Dropout", "drop", 1, (const char *[]){"fc"}, "drop", 1,
         (clcnn_attr[]){FLOAT("ratio", 0.3f)});
    node(g, "Identity", "id", 1, (const char *[]){"drop"}, "id", 0, NULL);
    node(g, "Softmax", "sm", 1, (const char *[]){"id"}, "sm", 0, NULL);
    node(g, "LogSoftmax", "lsm", 1, (const char *[]){"fc2"}, "lsm", 1,
         (clcnn_attr[]){INT("axis", 1)});
    TU_OK(clcnn_graph_add_output(g, "sm"));
    TU_OK(clcnn_graph_add_output(g, "lsm"));
    TU_OK(clcnn_graph_add_output(g, "p1"));
    TU_OK(clcnn_graph_add_output(g, "p2"));
    TU_OK(clcnn_graph_add_output(g, "gmp"));
    TU_OK(clcnn_graph_add_output(g, "p3"));
    TU_OK(clcnn_graph_check(g));
    expect_shape(g, "c1", 4, (int64_t[]){N, 8, 5, 4});
    expect_shape(g, "c2", 4, (int64_t[]){N, 8, 6, 5});
    expect_shape(g, "c3", 4, (int64_t[]){N, 8, 4, 3});
    expect_shape(g, "p1", 4, (int64_t[]){N, 3, 5, 5});
    expect_shape(g, "p3", 4, (int64_t[]){N, 8, 3, 3});
    expect_shape(g, "p2", 4, (int64_t[]){N, 8, 3, 2});
    expect_shape(g, "gap", 4, (int64_t[]){N, 8, 1, 1});
    expect_shape(g, "gmp", 4, (int64_t[]){N, 8, 1, 1});
    expect_shape(g, "bn", 4, (int64_t[]){N, 8, 5, 4});
    expect_shape(g, "add", 4, (int64_t[]){N, 8, 5, 4});
    expect_shape(g, "cat", 4, (int64_t[]){N, 24, 5, 4});
    expect_shape(g, "flat", 2, (int64_t[]){N, 480});
    expect_shape(g, "fc", 2, (int64_t[]){N, 7});
    expect_shape(g, "fc2", 2, (int64_t[]){N, 7});
    expect_shape(g, "sm", 2, (int64_t[]){N, 7});
    expect_shape(g, "lsm", 2, (int64_t[]){N, 7});

    /* inspection */
    assert_int_equal(clcnn_graph_num_nodes(g), 20);
    assert_int_equal(clcnn_graph_num_inputs(g), 1);
    assert_string_equal(clcnn_graph_input_name(g, 0), "x");
    assert_null(clcnn_graph_input_name(g, 1));
    assert_int_equal(clcnn_graph_num_outputs(g), 6);
    assert_string_equal(clcnn_graph_output_name(g, 1), "lsm");
    clcnn_node_info info;
    TU_OK(clcnn_graph_node_info(g, 0, &info));
    assert_string_equal(info.op_type, "Conv");
    assert_string_equal(info.name, "c1");
    assert_int_equal(info.params, 8 * 27 + 8);
    assert_true(fabs(info.flops - 2.0 * 8 * 27 * 20) < 1e-9);
    assert_non_null(strstr(info.desc, "stride 2"));
    assert_non_null(strstr(info.desc, "dilation 2"));
    size_t numel = 0;
    const float *wb = clcnn_graph_initializer(g, "b", &numel);
    assert_non_null(wb);
    assert_int_equal(numel, 8);
    assert_true(wb[3] == 0.0f);
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    TU_OK(clcnn_graph_set_initializer(g, "b", ones, sizeof ones));
    assert_true(((const float *)clcnn_graph_initializer(g, "b", NULL))[7] == 1.0f);
    assert_int_equal(clcnn_graph_set_initializer(g, "b", ones, 4), CLCNN_ERR_SHAPE);
    assert_null(clcnn_graph_initializer(g, "x", NULL));
    for (int i = 0; clcnn_graph_op_name(i); i++)
        assert_true(strlen(clcnn_graph_op_name(i)) > 0);
    clcnn_graph_free(g);
}

/* Build a graph from a one-line description of the failure and check its message. */
static void expect_check_error(clcnn_graph *g, clcnn_status want, const char *needle) {
    clcnn_status s = clcnn_graph_check(g);
    if (s != want) fail_msg("check gave %d (%s), want %d", (int)s, clcnn_last_error(), (int)want);
    if (!strstr(clcnn_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", clcnn_last_error(), needle);
    clcnn_graph_free(g);
}

static clcnn_graph *with_input(void) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 2, 5, 5}));
    return g;
}

static void test_errors(void **state) {
    (void)state;
    /* a cycle: a reads b, b reads a */
    clcnn_graph *g = with_input();
    node(g, "Add", "a", 2, (const char *[]){"x", "b"}, "a", 0, NULL);
    node(g, "Relu", "b", 1, (const char *[]){"a"}, "b", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "b"));
    expect_check_error(g, CLCNN_ERR_INVALID_ARG, "cycle");
    /* a node reading itself */
    g = with_input();
    node(g, "Add", "self", 2, (const char *[]){"x", "self"}, "self", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "self"));
    expect_check_error(g, CLCNN_ERR_INVALID_ARG, "'self'");
    /* a dangling input */
    g = with_input();
    node(g, "Relu", "r", 1, (const char *[]){"nowhere"}, "r", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "r"));
    expect_check_error(g, CLCNN_ERR_INVALID_ARG, "'nowhere'");
    /* an output that is no value, and no outputs at all */
    g = with_input();
    TU_OK(clcnn_graph_add_output(g, "ghost"));
    expect_check_error(g, CLCNN_ERR_INVALID_ARG, "'ghost'");
    expect_check_error(with_input(), CLCNN_ERR_INVALID_ARG, "no outputs");
    /* channels that do not fit the weights */
    g = with_input();
    init(g, "w", 4, (int64_t[]){4, 3, 3, 3});
    node(g, "Conv", "conv", 2, (const char *[]){"x", "w"}, "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_check_error(g, CLCNN_ERR_SHAPE, "'conv'");
    /* a kernel larger than the input */
    g = with_input();
    init(g, "w", 4, (int64_t[]){4, 2, 7, 7});
    node(g, "Conv", "big", 2, (const char *[]){"x", "w"}, "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_check_error(g, CLCNN_ERR_SHAPE, "larger than the padded input");
    /* shapes that do not broadcast, concat that does not line up */
    g = with_input();
    TU_OK(clcnn_graph_add_input(g, "z", CLCNN_F32, 4, (int64_t[]){N, 3, 5, 5}));
    node(g, "Add", "add", 2, (const char *[]){"x", "z"}, "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_check_error(g, CLCNN_ERR_SHAPE, "broadcast");
    g = with_input();
    TU_OK(clcnn_graph_add_input(g, "z", CLCNN_F32, 4, (int64_t[]){N, 3, 5, 4}));
    node(g, "Concat", "cat", 2, (const char *[]){"x", "z"}, "y", 1, (clcnn_attr[]){INT("axis", 1)});
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_check_error(g, CLCNN_ERR_SHAPE, "'cat'");

    /* errors at add time */
    g = with_input();
    const char *out = "y";
    assert_int_equal(
        clcnn_graph_add_node(g, "Frobnicate", "f", 1, (const char *[]){"x"}, 1, &out, 0, NULL),
        CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "Frobnicate"));
    assert_int_equal(
        clcnn_graph_add_node(g, "Relu", "r", 2, (const char *[]){"x", "x"}, 1, &out, 0, NULL),
        CLCNN_ERR_INVALID_ARG);
    out = "x"; /* an output name taken by the input */
    assert_int_equal(
        clcnn_graph_add_node(g, "Relu", "r", 1, (const char *[]){"x"}, 1, &out, 0, NULL),
        CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "exists already"));
    out = "y";
    clcnn_attr bad_type = FLOAT("group", 2.0f);
    assert_int_equal(
        clcnn_graph_add_node(g, "Conv", "c", 2, (const char *[]){"x", "x"}, 1, &out, 1, &bad_type),
        CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "group"));
    clcnn_attr neg_stride = INTS("strides", 0, 1);
    assert_int_equal(clcnn_graph_add_node(g, "Conv", "c", 2, (const char *[]){"x", "x"}, 1, &out, 1,
                                          &neg_stride),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "strides"));
    clcnn_attr three_d = INTS("kernel_shape", 3, 3, 3);
    assert_int_equal(
        clcnn_graph_add_node(g, "MaxPool", "p", 1, (const char *[]){"x"}, 1, &out, 1, &three_d),
        CLCNN_ERR_UNSUPPORTED);
    assert_int_equal(
        clcnn_graph_add_node(g, "MaxPool", "p", 1, (const char *[]){"x"}, 1, &out, 0, NULL),
        CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "kernel_shape"));
    assert_int_equal(clcnn_graph_add_input(g, "x", CLCNN_F32, 1, (int64_t[]){3}),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_graph_add_initializer(g, "neg", CLCNN_F32, 1, (int64_t[]){-2}, NULL),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_graph_add_initializer(g, "huge", CLCNN_F32, 4,
                                                 (int64_t[]){1 << 20, 1 << 20, 1 << 20, 1 << 20},
                                                 NULL),
                     CLCNN_ERR_SHAPE);
    /* failed adds left nothing behind: the graph is still a valid (empty-output) graph */
    node(g, "Relu", "r", 1, (const char *[]){"x"}, "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    assert_int_equal(clcnn_graph_add_output(g, "y"), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_graph_check(g));
    assert_int_equal(clcnn_graph_num_nodes(g), 1);
    clcnn_graph_free(g);
    clcnn_graph_free(NULL);
}

/* ---- a small DAG through plans vs a double reference ---------------------------------- */

typedef struct dag {
    clcnn_graph *g;
    double *w1, *b1, *w2, *w3, *b3, *bn[4], *fw, *fb;
} dag;

static double *rand_param(clcnn_graph *g, const char *name, int ndim, const int64_t *dims,
                          tu_rng *r, float lo, float hi) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)dims[i];
    float *f = tu_graph_random_init(g, r, name, ndim, dims, lo, hi);
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

/* x (N,3,7,7) -> a = LeakyRelu0.2(BN(Conv3x3 pad1 -> 4)); b = Conv1x1 -> 2 (bias);
 * cat = Concat(a, b) (N,6,7,7); p = MaxPool 2x2 s2 (N,6,3,3);
 * r = Relu(Conv3x3 pad1 6->6 (p) + p); gap = GlobalAveragePool(r); Flatten; Gemm -> 5;
 * Softmax. */
static void build_dag(dag *d) {
    tu_rng r = tu_rng_seed(21);
    TU_OK(clcnn_graph_create(&d->g));
    clcnn_graph *g = d->g;
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 3, 7, 7}));
    d->w1 = rand_param(g, "w1", 4, (int64_t[]){4, 3, 3, 3}, &r, -0.4f, 0.4f);
    d->b1 = rand_param(g, "b1", 1, (int64_t[]){4}, &r, -0.2f, 0.2f);
    d->bn[0] = rand_param(g, "gamma", 1, (int64_t[]){4}, &r, 0.5f, 1.5f);
    d->bn[1] = rand_param(g, "beta", 1, (int64_t[]){4}, &r, -0.3f, 0.3f);
    d->bn[2] = rand_param(g, "mean", 1, (int64_t[]){4}, &r, -0.3f, 0.3f);
    d->bn[3] = rand_param(g, "var", 1, (int64_t[]){4}, &r, 0.5f, 2.0f);
    d->w2 = rand_param(g, "w2", 4, (int64_t[]){2, 3, 1, 1}, &r, -0.5f, 0.5f);
    d->w3 = rand_param(g, "w3", 4, (int64_t[]){6, 6, 3, 3}, &r, -0.3f, 0.3f);
    d->b3 = rand_param(g, "b3", 1, (int64_t[]){6}, &r, -0.2f, 0.2f);
    d->fw = rand_param(g, "fw", 2, (int64_t[]){5, 6}, &r, -0.5f, 0.5f);
    d->fb = rand_param(g, "fb", 1, (int64_t[]){5}, &r, -0.2f, 0.2f);
    clcnn_attr pad1 = INTS("pads", 1, 1, 1, 1);
    node(g, "Conv", "conv_a", 3, (const char *[]){"x", "w1", "b1"}, "ca", 1, &pad1);
    node(g, "BatchNormalization", "bn_a", 5, (const char *[]){"ca", "gamma", "beta", "mean", "var"},
         "ba", 1, (clcnn_attr[]){FLOAT("epsilon", 1e-3f)});
    node(g, "LeakyRelu", "act_a", 1, (const char *[]){"ba"}, "a", 1,
         (clcnn_attr[]){FLOAT("alpha", 0.2f)});
    node(g, "Conv", "conv_b", 2, (const char *[]){"x", "w2"}, "b", 0, NULL);
    node(g, "Concat", "cat", 2, (const char *[]){"a", "b"}, "cat", 1,
         (clcnn_attr[]){INT("axis", 1)});
    node(g, "MaxPool", "pool", 1, (const char *[]){"cat"}, "p", 2,
         (clcnn_attr[]){INTS("kernel_shape", 2, 2), INTS("strides", 2, 2)});
    node(g, "Conv", "conv_c", 3, (const char *[]){"p", "w3", "b3"}, "cc", 1, &pad1);
    node(g, "Add", "res", 2, (const char *[]){"cc", "p"}, "sum", 0, NULL);
    node(g, "Relu", "act_c", 1, (const char *[]){"sum"}, "rc", 0, NULL);
    node(g, "GlobalAveragePool", "gap", 1, (const char *[]){"rc"}, "gap", 0, NULL);
    node(g, "Flatten", "flat", 1, (const char *[]){"gap"}, "flat", 0, NULL);
    node(g, "Gemm", "fc", 3, (const char *[]){"flat", "fw", "fb"}, "fc", 1,
         (clcnn_attr[]){INT("transB", 1)});
    node(g, "Softmax", "sm", 1, (const char *[]){"fc"}, "prob", 1, (clcnn_attr[]){INT("axis", 1)});
    TU_OK(clcnn_graph_add_output(g, "prob"));
    TU_OK(clcnn_graph_add_output(g, "fc"));
}

static void free_dag(dag *d) {
    free(d->w1), free(d->b1), free(d->w2), free(d->w3), free(d->b3), free(d->fw), free(d->fb);
    for (int i = 0; i < 4; i++)
        free(d->bn[i]);
    clcnn_graph_free(d->g);
}

/* A stride-1 convolution of c x hw x hw inputs with k filters of r x r and padding pad. */
static ref_conv square_conv(int n, int c, int hw, int k, int r, int pad) {
    ref_conv cv = {.n = n, .c = c, .h = hw, .w = hw, .k = k, .r = r, .s = r};
    cv.stride_h = cv.stride_w = cv.dilation_h = cv.dilation_w = cv.groups = 1;
    cv.pad_h = cv.pad_w = pad;
    return cv;
}

/* The reference logits (n, 5) and probabilities. */
static void ref_dag(const dag *d, int n, const double *x, double *logits, double *prob) {
    ref_conv ca = square_conv(n, 3, 7, 4, 3, 1);
    ref_conv_out(&ca);
    double *a = malloc(ref_conv_y_size(&ca) * sizeof *a),
           *ab = malloc(ref_conv_y_size(&ca) * sizeof *a);
    ref_conv2d_forward(&ca, x, d->w1, d->b1, 0, 0.0, a);
    ro_bn_infer(a, n, 4, 49, d->bn[0], d->bn[1], d->bn[2], d->bn[3], 1e-3, ab);
    for (size_t i = 0; i < ref_conv_y_size(&ca); i++)
        ab[i] = ab[i] > 0 ? ab[i] : 0.2 * ab[i];
    ref_conv cb = ca;
    cb.k = 2, cb.r = cb.s = 1, cb.pad_h = cb.pad_w = 0;
    ref_conv_out(&cb);
    double *b = malloc(ref_conv_y_size(&cb) * sizeof *b);
    ref_conv2d_forward(&cb, x, d->w2, NULL, 0, 0.0, b);
    double *cat = malloc((size_t)n * 6 * 49 * sizeof *cat);
    for (int i = 0; i < n; i++) {
        memcpy(cat + (size_t)i * 294, ab + (size_t)i * 196, 196 * sizeof *cat);
        memcpy(cat + (size_t)i * 294 + 196, b + (size_t)i * 98, 98 * sizeof *cat);
    }
    ro_pool pg = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0};
    double *p = malloc((size_t)n * 6 * 9 * sizeof *p);
    ro_pool_forward(&pg, cat, n, 6, 7, 7, p, NULL);
    ref_conv cc = square_conv(n, 6, 3, 6, 3, 1);
    ref_conv_out(&cc);
    double *c = malloc((size_t)n * 54 * sizeof *c);
    ref_conv2d_forward(&cc, p, d->w3, d->b3, 0, 0.0, c);
    double *gap = calloc((size_t)n * 6, sizeof *gap);
    for (int i = 0; i < n * 6; i++) {
        for (int j = 0; j < 9; j++) {
            double v = c[i * 9 + j] + p[i * 9 + j];
            gap[i] += v > 0 ? v : 0;
        }
        gap[i] /= 9.0;
    }
    ro_linear_forward(gap, d->fw, d->fb, n, 6, 5, logits);
    ro_softmax(logits, n, 5, 1, 0, prob);
    free(a), free(ab), free(b), free(cat), free(p), free(c), free(gap);
}

static void run_dag(dag *d, int n, const clcnn_plan_options *o, float **prob, float **logits,
                    clcnn_plan_memory *mem) {
    clcnn_plan *p = NULL;
    clcnn_status s = clcnn_plan_create(tu_device(), d->g, n, o, &p);
    if (s != CLCNN_OK) fail_msg("plan: %s", clcnn_last_error());
    size_t xs[4] = {(size_t)n, 3, 7, 7};
    float *xh = malloc((size_t)n * 147 * sizeof *xh);
    tu_rng r = tu_rng_seed(99);
    tu_fill_uniform(&r, xh, (size_t)n * 147, -1.0f, 1.0f);
    clcnn_tensor *x = tu_tensor_from(4, xs, xh);
    const clcnn_tensor *in = x;
    TU_OK(clcnn_plan_run(p, &in, 1));
    TU_OK(clcnn_plan_run(p, &in, 1)); /* a second run gives the same */
    *prob = tu_download(clcnn_plan_output(p, 0));
    *logits = tu_download(clcnn_plan_output(p, 1));
    assert_null(clcnn_plan_output(p, 2));
    clcnn_plan_get_memory(p, mem);
    for (int i = 0; i < clcnn_plan_num_steps(p); i++)
        assert_non_null(clcnn_plan_step_desc(p, i));
    clcnn_plan_free(p);
    clcnn_tensor_free(x);
    free(xh);
}

static void test_dag_plans(void **state) {
    (void)state;
    dag d;
    build_dag(&d);
    for (int n = 1; n <= 3; n += 2) {
        double *xd = malloc((size_t)n * 147 * sizeof *xd), logits[15], prob[15];
        float *xh = malloc((size_t)n * 147 * sizeof *xh);
        tu_rng r = tu_rng_seed(99);
        tu_fill_uniform(&r, xh, (size_t)n * 147, -1.0f, 1.0f);
        for (int i = 0; i < n * 147; i++)
            xd[i] = xh[i];
        ref_dag(&d, n, xd, logits, prob);
        float *pr[4], *lg[4];
        clcnn_plan_memory mem[4];
        /* 0 everything on; 1 reuse off; 2 no folding or fusion; 3 all off, direct conv */
        clcnn_plan_options o[4];
        for (int k = 0; k < 4; k++)
            o[k] = clcnn_plan_options_default();
        o[1].reuse_buffers = 0;
        o[2].fold_batchnorm = o[2].fuse = 0;
        o[3].fold_batchnorm = o[3].fuse = o[3].reuse_buffers = 0;
        o[3].conv_algo = CLCNN_CONV_DIRECT;
        for (int k = 0; k < 4; k++) {
            run_dag(&d, n, &o[k], &pr[k], &lg[k], &mem[k]);
            char what[64];
            snprintf(what, sizeof what, "dag batch %d options %d logits", n, k);
            assert_true(tu_close(what, lg[k], logits, (size_t)n * 5, 1e-5, 1e-4));
            assert_true(tu_close(what, pr[k], prob, (size_t)n * 5, 1e-6, 1e-4));
        }
        assert_memory_equal(lg[0], lg[1], (size_t)n * 5 * sizeof(float));
        /* conv_a absorbs BN and LeakyRelu, conv_c the Add and Relu */
        assert_int_equal(mem[0].fused_batchnorm, 1);
        assert_int_equal(mem[0].fused_activation, 2);
        assert_int_equal(mem[0].fused_add, 1);
        assert_int_equal(mem[0].steps, 8);
        assert_int_equal(mem[2].steps, 12);
        assert_int_equal(mem[2].fused_batchnorm + mem[2].fused_activation + mem[2].fused_add, 0);
        assert_true(mem[0].activation_bytes < mem[1].activation_bytes);
        assert_true(mem[1].activation_bytes >= mem[0].activation_sum);
        for (int k = 0; k < 4; k++)
            free(pr[k]), free(lg[k]);
        free(xd);
        free(xh);
    }
    free_dag(&d);
}

static void test_plan_errors(void **state) {
    (void)state;
    dag d;
    build_dag(&d);
    clcnn_plan *p = NULL;
    assert_int_equal(clcnn_plan_create(tu_device(), d.g, 0, NULL, &p), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_plan_create(NULL, d.g, 1, NULL, &p), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_plan_create(tu_device(), d.g, 2, NULL, &p));
    /* the plan keeps nothing of the graph */
    free_dag(&d);
    clcnn_tensor *wrong = tu_tensor_new(CLCNN_F32, 4, (size_t[]){3, 3, 7, 7});
    const clcnn_tensor *in = wrong;
    assert_int_equal(clcnn_plan_run(p, &in, 1), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "[2,3,7,7]"));
    assert_int_equal(clcnn_plan_run(p, &in, 2), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_plan_run(p, NULL, 0), CLCNN_ERR_INVALID_ARG);
    clcnn_tensor *right = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 3, 7, 7});
    TU_OK(clcnn_tensor_fill(right, 0.25f));
    in = right;
    TU_OK(clcnn_plan_run(p, &in, 1));
    clcnn_plan_free(p);
    clcnn_plan_free(NULL);
    clcnn_tensor_free(wrong);
    clcnn_tensor_free(right);

    /* what a plan cannot run yet names the node (per-side Conv pads now run:
     * tests/test_graph_convt.c) */
    clcnn_graph *g = with_input();
    TU_OK(clcnn_graph_add_input(g, "z", CLCNN_F32, 4, (int64_t[]){N, 2, 1, 1}));
    node(g, "Add", "bcast", 2, (const char *[]){"x", "z"}, "y", 0, NULL);
    TU_OK(clcnn_graph_add_input(g, "lo", CLCNN_F32, 1, (int64_t[]){1}));
    node(g, "Clip", "clip", 2, (const char *[]){"y", "lo"}, "yc", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "yc"));
    /* broadcasting runs, and so does a bound computed per run (tests/test_graph_eltwise.c) */
    TU_OK(clcnn_plan_create(tu_device(), g, 1, NULL, &p));
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    g = with_input();
    TU_OK(clcnn_graph_add_output(g, "x"));
    assert_int_equal(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "'x'"));
    clcnn_graph_free(g);
}

/* BatchNormalization alone (nothing to fold into) on (N, C), (N, C, L) and (N, C, H, W)
 * against y = gamma (x - mean) / sqrt(var + eps) + beta per channel (dim 1). */
static void test_batchnorm_ranks(void **state) {
    (void)state;
    static const int64_t shapes[3][4] = {{3, 5}, {2, 4, 7}, {2, 3, 4, 5}};
    tu_rng r = tu_rng_seed(99);
    for (int t = 0; t < 3; t++) {
        int nd = t + 2;
        int64_t c = shapes[t][1];
        size_t numel = 1, inner = 1;
        for (int d = 0; d < nd; d++)
            numel *= (size_t)shapes[t][d];
        for (int d = 2; d < nd; d++)
            inner *= (size_t)shapes[t][d];
        float *x = malloc(numel * sizeof *x), q[4][8];
        tu_fill_uniform(&r, x, numel, -2, 2);
        for (int i = 0; i < 4; i++)
            tu_fill_uniform(&r, q[i], (size_t)c, i == 3 ? 0.5f : -1.0f, i == 3 ? 2.0f : 1.0f);
        clcnn_graph *g = NULL;
        TU_OK(clcnn_graph_create(&g));
        int64_t gd[4];
        memcpy(gd, shapes[t], sizeof gd);
        gd[0] = N;
        TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, nd, gd));
        const char *pn[4] = {"gamma", "beta", "mean", "var"};
        for (int i = 0; i < 4; i++)
            TU_OK(clcnn_graph_add_initializer(g, pn[i], CLCNN_F32, 1, &c, q[i]));
        clcnn_attr eps = {"epsilon", CLCNN_ATTR_FLOAT, 0, 1e-3f, NULL, NULL, 0, NULL};
        node(g, "BatchNormalization", "bn", 5,
             (const char *[]){"x", "gamma", "beta", "mean", "var"}, "y", 1, &eps);
        TU_OK(clcnn_graph_add_output(g, "y"));
        clcnn_plan *p = NULL;
        TU_OK(clcnn_plan_create(tu_device(), g, (int)shapes[t][0], NULL, &p));
        size_t xs[4];
        for (int d = 0; d < nd; d++)
            xs[d] = (size_t)shapes[t][d];
        clcnn_tensor *xt = tu_tensor_from(nd, xs, x);
        const clcnn_tensor *in = xt;
        TU_OK(clcnn_plan_run(p, &in, 1));
        float *got = tu_download(clcnn_plan_output(p, 0));
        double *ref = malloc(numel * sizeof *ref);
        for (size_t i = 0; i < numel; i++) {
            size_t ch = (i / inner) % (size_t)c;
            ref[i] =
                q[0][ch] * ((double)x[i] - q[2][ch]) / sqrt((double)q[3][ch] + 1e-3) + q[1][ch];
        }
        char what[64];
        snprintf(what, sizeof what, "BatchNormalization rank %d", nd);
        if (!tu_close(what, got, ref, numel, 1e-5, 1e-5)) fail_msg("%s", what);
        free(got);
        free(ref);
        free(x);
        clcnn_tensor_free(xt);
        clcnn_plan_free(p);
        clcnn_graph_free(g);
    }
}

/* CLCNN_PROFILE=steps: a device opened with it reports each plan step's device time
 * under "step I <description>" when it closes (stderr, captured here), and a training
 * plan's per node and pass ("fwd I Conv name [algo]", "bwd I ..."). */
static void test_profile_steps(void **state) {
    (void)state;
    char *saved = tu_env_set("CLCNN_PROFILE", "steps");
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    tu_env_restore("CLCNN_PROFILE", saved);
    dag d;
    build_dag(&d);
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(dev, d.g, 2, NULL, &p));
    clcnn_tensor *x = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 4, (size_t[]){2, 3, 7, 7}, &x));
    TU_OK(clcnn_tensor_fill(x, 0.5f));
    const clcnn_tensor *in = x;
    TU_OK(clcnn_plan_run(p, &in, 1));
    TU_OK(clcnn_plan_run(p, &in, 1));
    char step0[192];
    snprintf(step0, sizeof step0, "step 0 %s", clcnn_plan_step_desc(p, 0));
    int nsteps = clcnn_plan_num_steps(p);
    clcnn_plan_free(p);
    /* a training plan's nodes: forward and backward each under their own label */
    clcnn_train_plan *tp = NULL;
    TU_OK(clcnn_train_plan_create(dev, d.g, 2, NULL, &tp));
    clcnn_tensor *dfc = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 2, (size_t[]){2, 5}, &dfc));
    TU_OK(clcnn_tensor_fill(dfc, 0.25f));
    const clcnn_tensor *grads[2] = {NULL, dfc};
    for (int it = 0; it < 2; it++) {
        TU_OK(clcnn_train_plan_forward(tp, &in, 1));
        TU_OK(clcnn_train_plan_backward(tp, grads, 2));
    }
    clcnn_train_plan_free(tp);
    clcnn_tensor_free(dfc);
    clcnn_tensor_free(x);
    free_dag(&d);

    char path[] = "/tmp/clcnn-profile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int err = dup(2);
    assert_true(err >= 0);
    dup2(fd, 2);
    clcnn_device_close(dev); /* prints the table */
    fflush(stderr);
    dup2(err, 2);
    close(err);
    FILE *f = fdopen(fd, "r");
    assert_non_null(f);
    rewind(f);
    char line[512];
    int header = 0, rows = 0, first = 0, fwd = 0, bwd = 0;
    while (fgets(line, sizeof line, f)) {
        header |= strstr(line, "device time per plan step") != NULL;
        if (strstr(line, "  step ")) {
            rows++;
            /* each step ran twice */
            first |= strstr(line, step0) != NULL && strstr(line, " 2 ") != NULL;
        }
        /* "fwd I Conv conv_a [algo]", "bwd I Conv conv_c [algo]": the node's name and the
         * forward's algorithm */
        fwd |= strncmp(line, "  fwd ", 6) == 0 && strstr(line, " Conv conv_a [") != NULL;
        bwd |= strncmp(line, "  bwd ", 6) == 0 && strstr(line, " Conv conv_c [") != NULL;
    }
    fclose(f);
    unlink(path);
    assert_true(header);
    assert_true(first);
    assert_true(fwd);
    assert_true(bwd);
    assert_true(rows >= 1 && rows <= nsteps); /* steps that are views enqueue nothing */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_inference), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_dag_plans),       cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_profile_steps),   cmocka_unit_test(test_batchnorm_ranks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
