/* ONNX export (clcnn_graph_save_onnx): a C-built net, every zoo model and a graph in the
 * attribute forms of older opsets go out and come back through clcnn_graph_load_onnx;
 * plans of the original and the re-imported graph give bit-identical outputs (same nodes,
 * same algorithms), and the re-imported graph keeps node, value and initializer names and
 * bytes. The same for the networks PyTorch exported for the ONNX tests (tests/onnx/torch),
 * whose parameter names are PyTorch's. Error paths: unsupported attributes, unchecked
 * graphs, missing folders and a write that fails half way leave an existing file as it
 * was, with no temporary file behind.
 *
 * The exported files are also left in onnx_export_out/ (in the working directory, the
 * build tree under ctest) for tests/onnx_export_check.sh, which runs ONNX's checker. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "graph/graph_internal.h" /* initializer dtypes */
#include "test_util.h"

#define OUT_DIR "onnx_export_out"

/* ---- helpers ----------------------------------------------------------------------- */

/* Export g to memory and, when tag is given, to OUT_DIR/<tag>.onnx (the same bytes);
 * import the bytes again. */
static clcnn_graph *round_trip(const clcnn_graph *g, const char *tag) {
    void *buf = NULL;
    size_t size = 0;
    TU_OK(clcnn_graph_save_onnx_memory(g, &buf, &size));
    assert_true(size > 0);
    if (tag) {
        char path[512];
        mkdir(OUT_DIR, 0755);
        snprintf(path, sizeof path, OUT_DIR "/%s.onnx", tag);
        TU_OK(clcnn_graph_save_onnx(g, path));
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char *file = malloc(size + 1);
        assert_non_null(file);
        size_t got = fread(file, 1, size + 1, f);
        fclose(f);
        assert_int_equal(got, size);
        assert_memory_equal(file, buf, size);
        free(file);
    }
    clcnn_graph *back = NULL;
    TU_OK(clcnn_graph_load_onnx_memory(buf, size, NULL, &back));
    free(buf);
    return back;
}

static int streq(const char *a, const char *b) {
    return !strcmp(a ? a : "", b ? b : "");
}

/* Initializer name holds the same dtype, shape and bytes in a and b, except that the
 * batch inside int64 shape data (CC_SHAPE_BATCH) goes out as 0 (Reshape) or 1 (Expand). */
static int same_init(const clcnn_graph *a, const clcnn_graph *b, const char *name) {
    int ia = cc_graph_find(a, name), ib = cc_graph_find(b, name);
    if (ia < 0 || ib < 0 || b->vals[ib].kind != CC_VAL_INIT) return 0;
    const cc_gvalue *va = &a->vals[ia], *vb = &b->vals[ib];
    clcnn_dtype da = va->dtype == CLCNN_I32 ? CLCNN_I64 : va->dtype; /* int32 comes back wide */
    if (da != vb->dtype || va->numel != vb->numel || va->ndim != vb->ndim ||
        memcmp(va->dims, vb->dims, (size_t)va->ndim * sizeof *va->dims))
        return 0;
    if (va->dtype == CLCNN_F32) return !memcmp(va->data, vb->data, va->numel * sizeof(float));
    for (size_t i = 0; i < va->numel; i++) {
        int64_t x = va->dtype == CLCNN_I32 ? ((const int32_t *)va->data)[i]
                                           : ((const int64_t *)va->data)[i];
        int64_t y = ((const int64_t *)vb->data)[i];
        if (x != y && !(x == CC_SHAPE_BATCH && (y == 0 || y == 1))) return 0;
    }
    return 1;
}

/* b has a's nodes in a's order with the same op types, names, inputs, outputs, shapes and
 * descriptions, a's graph inputs and outputs, and every initializer of a (same_init). */
static void expect_same_graph(const clcnn_graph *a, const clcnn_graph *b) {
    assert_int_equal(clcnn_graph_num_nodes(a), clcnn_graph_num_nodes(b));
    assert_int_equal(clcnn_graph_num_inputs(a), clcnn_graph_num_inputs(b));
    assert_int_equal(clcnn_graph_num_outputs(a), clcnn_graph_num_outputs(b));
    for (int i = 0; i < clcnn_graph_num_inputs(a); i++)
        assert_string_equal(clcnn_graph_input_name(a, i), clcnn_graph_input_name(b, i));
    for (int i = 0; i < clcnn_graph_num_outputs(a); i++)
        assert_string_equal(clcnn_graph_output_name(a, i), clcnn_graph_output_name(b, i));
    for (int i = 0; i < clcnn_graph_num_nodes(a); i++) {
        clcnn_node_info x, y;
        TU_OK(clcnn_graph_node_info(a, i, &x));
        TU_OK(clcnn_graph_node_info(b, i, &y));
        if (strcmp(x.op_type, y.op_type) || strcmp(x.name, y.name) || x.n_in != y.n_in ||
            x.n_out != y.n_out || strcmp(x.desc, y.desc) || x.ndim != y.ndim ||
            memcmp(x.dims, y.dims, sizeof x.dims))
            fail_msg("node %d: %s '%s' (%d in, %d out, '%s') came back as %s '%s' (%d in, %d out, "
                     "'%s')",
                     i, x.op_type, x.name, x.n_in, x.n_out, x.desc, y.op_type, y.name, y.n_in,
                     y.n_out, y.desc);
        for (int j = 0; j < x.n_out && j < 4; j++)
            assert_string_equal(x.outputs[j], y.outputs[j]);
        for (int j = 0; j < x.n_in && j < 8; j++) {
            if (!streq(x.inputs[j], y.inputs[j]))
                fail_msg("node '%s' input %d: '%s' came back as '%s'", x.name, j, x.inputs[j],
                         y.inputs[j]);
        }
    }
    for (int i = 0; i < a->nvals; i++)
        if (a->vals[i].kind == CC_VAL_INIT && !same_init(a, b, a->vals[i].name))
            fail_msg("initializer '%s' did not come back with the same values", a->vals[i].name);
}

/* Plans of a and b at batch run on the same seeded input give the same output bytes. */
static void expect_same_outputs(const clcnn_graph *a0, const clcnn_graph *b0, int batch,
                                uint64_t seed) {
    clcnn_device *dev = tu_device();
    clcnn_graph *g[2] = {(clcnn_graph *)a0, (clcnn_graph *)b0};
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_value_shape(g[0], clcnn_graph_input_name(g[0], 0), &nd, d));
    size_t shape[4], numel = 1;
    assert_true(nd >= 1 && nd <= 4);
    for (int i = 0; i < nd; i++) {
        shape[i] = d[i] == CLCNN_GRAPH_BATCH ? (size_t)batch : (size_t)d[i];
        numel *= shape[i];
    }
    float *x = malloc(numel * sizeof *x);
    assert_non_null(x);
    tu_rng r = tu_rng_seed(seed);
    tu_fill_uniform(&r, x, numel, -1.0f, 1.0f);
    clcnn_tensor *xt = tu_tensor_from(nd, shape, x);
    float *y[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        clcnn_plan *p = NULL;
        TU_OK(clcnn_plan_create(dev, g[k], batch, NULL, &p));
        TU_OK(clcnn_plan_run(p, (const clcnn_tensor *const[]){xt}, 1));
        n[k] = clcnn_tensor_numel(clcnn_plan_output(p, 0));
        y[k] = tu_download(clcnn_plan_output(p, 0));
        clcnn_plan_free(p);
    }
    assert_int_equal(n[0], n[1]);
    size_t differ = 0, first = 0;
    for (size_t i = 0; i < n[0]; i++)
        if (memcmp(&y[0][i], &y[1][i], sizeof(float)) && !differ++) first = i;
    if (differ)
        fail_msg("%zu of %zu outputs differ after the round trip; first at %zu: %.9g vs %.9g",
                 differ, n[0], first, y[0][first], y[1][first]);
    free(y[0]);
    free(y[1]);
    free(x);
    clcnn_tensor_free(xt);
}

/* Give every running statistic of net random values (variances positive), so batch norm
 * does more than scale by 1/sqrt(1 + eps). */
static void randomise_running_stats(clcnn_net *net, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        int var = strstr(p.name, "running_var") != NULL;
        if (!var && !strstr(p.name, "running_mean")) continue;
        size_t count = clcnn_tensor_numel(p.value);
        float *v = malloc(count * sizeof *v);
        assert_non_null(v);
        tu_fill_uniform(&r, v, count, var ? 0.25f : -0.5f, var ? 2.0f : 0.5f);
        TU_OK(clcnn_tensor_upload(p.value, v, count * sizeof *v));
        free(v);
    }
}

/* ---- (a) a net built in C ------------------------------------------------------------ */

static clcnn_net *c_net(void) {
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 3, 12, 12, &net));
    clcnn_conv2d_desc pad1 = clcnn_conv2d_desc_default();
    pad1.pad_h = pad1.pad_w = 1;
    clcnn_conv2d_desc down = pad1;
    down.stride_h = down.stride_w = 2;
    /* mode, kernel, stride, pad, global */
    clcnn_pool2d_desc max2 = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    clcnn_pool2d_desc avg3 = {CLCNN_POOL_AVG, 3, 3, 1, 1, 1, 1, 0};
    clcnn_residual_desc proj = {.kind = CLCNN_SHORTCUT_PROJECTION, .stride = 2, .batchnorm = 1};
    TU_OK(clcnn_net_add_conv2d(net, 8, 3, 3, &pad1, 1));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f));
    TU_OK(clcnn_net_add_pool2d(net, &max2));
    /* a residual block with an identity shortcut */
    TU_OK(clcnn_net_add_residual_begin(net));
    TU_OK(clcnn_net_add_conv2d(net, 8, 3, 3, &pad1, 0));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-3f));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_LEAKY_RELU, 0.1f));
    TU_OK(clcnn_net_add_conv2d(net, 8, 3, 3, &pad1, 0));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_residual_end(net, NULL));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f));
    /* a downsampling block with a projection (1x1 stride 2 + batch norm) */
    TU_OK(clcnn_net_add_residual_begin(net));
    TU_OK(clcnn_net_add_conv2d(net, 16, 3, 3, &down, 0));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_residual_end(net, &proj));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f));
    TU_OK(clcnn_net_add_pool2d(net, &avg3));
    TU_OK(clcnn_net_add_dropout(net, 0.25f));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 10, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 7));
    randomise_running_stats(net, 8);
    return net;
}

static void test_c_net(void **state) {
    (void)state;
    clcnn_net *net = c_net();
    clcnn_graph *g = NULL;
    TU_OK(clcnn_net_graph(net, &g));
    clcnn_graph *back = round_trip(g, "c_net");
    expect_same_graph(g, back);
    expect_same_outputs(g, back, 3, 11);
    expect_same_outputs(g, back, 1, 12);
    /* the batch stays symbolic; running statistics and dropout in inference form */
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_value_shape(back, "input", &nd, d));
    assert_int_equal(nd, 4);
    assert_true(d[0] == CLCNN_GRAPH_BATCH);
    assert_non_null(clcnn_graph_initializer(back, "layers.1.running_var", NULL));
    int dropouts = 0;
    for (int i = 0; i < clcnn_graph_num_nodes(back); i++) {
        clcnn_node_info info;
        TU_OK(clcnn_graph_node_info(back, i, &info));
        if (!strcmp(info.op_type, "Dropout")) {
            dropouts++;
            assert_int_equal(info.n_in, 1);
        }
    }
    assert_int_equal(dropouts, 1);
    clcnn_graph_free(back);
    clcnn_graph_free(g);
    clcnn_net_free(net);
}

/* ---- attribute forms of older opsets, Softmax, the batch inside a shape ------------- */

static void add_random_init(clcnn_graph *g, tu_rng *r, const char *name, int ndim,
                            const int64_t *dims, float lo, float hi) {
    free(tu_graph_random_init(g, r, name, ndim, dims, lo, hi));
}

#define NODE(g, op, name, ins, outs, ...)                                                          \
    TU_OK(clcnn_graph_add_node((g), (op), (name), sizeof(ins) / sizeof *(ins), (ins),              \
                               sizeof(outs) / sizeof *(outs), (outs),                              \
                               sizeof((clcnn_attr[]){__VA_ARGS__}) / sizeof(clcnn_attr),           \
                               (clcnn_attr[]){__VA_ARGS__}))
#define NODE0(g, op, name, ins, outs)                                                              \
    TU_OK(clcnn_graph_add_node((g), (op), (name), sizeof(ins) / sizeof *(ins), (ins),              \
                               sizeof(outs) / sizeof *(outs), (outs), 0, NULL))

/* x [N,3,8,8] -> Conv -> BatchNormalization (spatial, is_test: opset < 7) -> Clip (min/max
 * attributes: < 11) -> Pad (pads/value attributes: < 11) -> Upsample (scales attribute:
 * < 9) -> MaxPool (ceil) -> GlobalAveragePool -> Squeeze / Unsqueeze (axes attributes:
 * < 13) -> Reshape {batch, -1} -> Dropout (ratio attribute: < 12) -> Gemm -> Softmax. */
static clcnn_graph *old_forms_graph(void) {
    clcnn_graph *g = NULL;
    tu_rng r = tu_rng_seed(5);
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){CLCNN_GRAPH_BATCH, 3, 8, 8}));
    add_random_init(g, &r, "conv.weight", 4, (int64_t[]){4, 3, 3, 3}, -0.5f, 0.5f);
    add_random_init(g, &r, "conv.bias", 1, (int64_t[]){4}, -0.2f, 0.2f);
    const char *bn_names[4] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
    for (int i = 0; i < 4; i++)
        add_random_init(g, &r, bn_names[i], 1, (int64_t[]){4}, i == 3 ? 0.5f : -0.5f, 1.5f);
    add_random_init(g, &r, "fc.weight", 2, (int64_t[]){5, 4}, -1.0f, 1.0f);
    add_random_init(g, &r, "fc.bias", 1, (int64_t[]){5}, -0.1f, 0.1f);
    TU_OK(clcnn_graph_add_initializer(g, "shape", CLCNN_I64, 1, (int64_t[]){2},
                                      (int64_t[]){INT64_MIN, -1}));
    const char *conv_in[] = {"x", "conv.weight", "conv.bias"}, *conv_out[] = {"conv"};
    NODE(g, "Conv", "conv", conv_in, conv_out, INTS("pads", 1, 1, 1, 1));
    const char *bn_in[] = {"conv", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"},
               *bn_out[] = {"bn"};
    NODE(g, "BatchNormalization", "bn", bn_in, bn_out, FLOAT("epsilon", 1e-3f), INT("spatial", 1),
         INT("is_test", 1));
    const char *clip_in[] = {"bn"}, *clip_out[] = {"clip"};
    NODE(g, "Clip", "clip", clip_in, clip_out, FLOAT("min", -0.5f), FLOAT("max", 0.75f));
    const char *pad_in[] = {"clip"}, *pad_out[] = {"pad"};
    NODE(g, "Pad", "pad", pad_in, pad_out, INTS("pads", 0, 0, 1, 0, 0, 0, 0, 1),
         FLOAT("value", 0.25f));
    const char *up_in[] = {"pad"}, *up_out[] = {"up"};
    NODE(g, "Upsample", "up", up_in, up_out, STR("mode", "nearest"),
         ((clcnn_attr){"scales", CLCNN_ATTR_FLOATS, 0, 0.0f, NULL,
                       (const float[]){1.0f, 1.0f, 2.0f, 2.0f}, 4, NULL}));
    const char *pool_in[] = {"up"}, *pool_out[] = {"pool"};
    NODE(g, "MaxPool", "pool", pool_in, pool_out, INTS("kernel_shape", 3, 3), INTS("strides", 2, 2),
         INT("ceil_mode", 1));
    const char *gap_in[] = {"pool"}, *gap_out[] = {"gap"};
    NODE0(g, "GlobalAveragePool", "gap", gap_in, gap_out);
    const char *sq_in[] = {"gap"}, *sq_out[] = {"squeezed"};
    NODE(g, "Squeeze", "squeeze", sq_in, sq_out, INTS("axes", 2, 3));
    const char *us_in[] = {"squeezed"}, *us_out[] = {"unsqueezed"};
    NODE(g, "Unsqueeze", "unsqueeze", us_in, us_out, INTS("axes", 2));
    const char *rs_in[] = {"unsqueezed", "shape"}, *rs_out[] = {"flat"};
    NODE0(g, "Reshape", "reshape", rs_in, rs_out);
    const char *do_in[] = {"flat"}, *do_out[] = {"dropped"};
    NODE(g, "Dropout", "dropout", do_in, do_out, FLOAT("ratio", 0.3f), INT("is_test", 1));
    const char *fc_in[] = {"dropped", "fc.weight", "fc.bias"}, *fc_out[] = {"fc"};
    NODE(g, "Gemm", "fc", fc_in, fc_out, INT("transB", 1));
    const char *sm_in[] = {"fc"}, *sm_out[] = {"probs"};
    NODE(g, "Softmax", "softmax", sm_in, sm_out, INT("axis", 1));
    TU_OK(clcnn_graph_add_output(g, "probs"));
    TU_OK(clcnn_graph_check(g));
    return g;
}

/* The op type and input count of node name in g. */
static void expect_node(const clcnn_graph *g, const char *name, const char *op, int n_in) {
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        TU_OK(clcnn_graph_node_info(g, i, &info));
        if (strcmp(info.name, name)) continue;
        assert_string_equal(info.op_type, op);
        assert_int_equal(info.n_in, n_in);
        return;
    }
    fail_msg("no node '%s'", name);
}

static void test_old_forms(void **state) {
    (void)state;
    clcnn_graph *g = old_forms_graph();
    clcnn_graph *back = round_trip(g, "old_forms");
    expect_same_outputs(g, back, 2, 21);
    expect_node(back, "clip", "Clip", 3); /* min and max as inputs */
    expect_node(back, "pad", "Pad", 3);   /* pads and constant_value */
    expect_node(back, "up", "Resize", 3); /* X, no roi, scales */
    expect_node(back, "squeeze", "Squeeze", 2);
    expect_node(back, "unsqueeze", "Unsqueeze", 2);
    expect_node(back, "dropout", "Dropout", 1);
    size_t n = 0;
    const float *mn = clcnn_graph_initializer(back, "clip.min", &n);
    assert_non_null(mn);
    assert_int_equal(n, 1);
    assert_true(mn[0] == -0.5f);
    /* the batch inside Reshape's shape became 0 (copy the input's dimension) */
    const int64_t *shape = clcnn_graph_initializer(back, "shape", &n);
    assert_non_null(shape);
    assert_int_equal(n, 2);
    assert_true(shape[0] == 0 && shape[1] == -1);
    clcnn_graph_free(back);
    clcnn_graph_free(g);
}

/* ---- (b) every zoo model ----------------------------------------------------------------- */

static void test_zoo(void **state) {
    (void)state;
    clcnn_model_info m;
    for (int i = 0; clcnn_model_get_info(i, &m); i++) {
        clcnn_net *net = NULL;
        clcnn_graph *g = NULL;
        /* The classifiers of VGG-16 and the grouped AlexNet (123 M and 58 M parameters in
         * three Gemm nodes, as the one-tower AlexNet's, which goes through whole) would take
         * most of the test's time: their feature layers go through, up to the last pool */
        int features = !strcmp(m.name, "vgg16") ? 31 : !strcmp(m.name, "alexnet_grouped") ? 13 : -1;
        TU_OK(clcnn_net_create_model_prefix(tu_device(), m.name, m.classes, features, &net));
        if (features > 0) {
            clcnn_layer_info last;
            TU_OK(clcnn_net_layer_info(net, features - 1, &last));
            assert_string_equal(last.kind, "maxpool");
        }
        TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, (uint64_t)i + 1));
        randomise_running_stats(net, (uint64_t)i + 100);
        TU_OK(clcnn_net_graph(net, &g));
        clcnn_net_free(net);
        /* files for the checker: the small models and the two with every block kind */
        int keep = m.h <= 32 || !strcmp(m.name, "resnet50") || !strcmp(m.name, "mobilenet_v2");
        char tag[64];
        snprintf(tag, sizeof tag, "zoo_%s", m.name);
        clcnn_graph *back = round_trip(g, keep ? tag : NULL);
        expect_same_graph(g, back);
        expect_same_outputs(g, back, 1, (uint64_t)i + 50);
        clcnn_graph_free(back);
        clcnn_graph_free(g);
    }
}

/* ---- models PyTorch exported (tests/onnx/torch, made by make_torch_cases.py) ----------- */

static void test_torch_models(void **state) {
    (void)state;
    static const char *const names[] = {"small_resnet", "small_mobilenet_v2", "shuffle_concat"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[1024], tag[64];
        snprintf(path, sizeof path, CLCNN_SOURCE_DIR "/tests/onnx/torch/%s/model.onnx", names[i]);
        snprintf(tag, sizeof tag, "torch_%s", names[i]);
        clcnn_graph *g = NULL;
        TU_OK(clcnn_graph_load_onnx(path, &g));
        clcnn_graph *back = round_trip(g, tag);
        expect_same_graph(g, back); /* PyTorch's parameter names among them */
        expect_same_outputs(g, back, 2, 70 + i);
        clcnn_graph_free(back);
        clcnn_graph_free(g);
    }
}

/* ---- (d) errors ------------------------------------------------------------------------- */

static void expect_error(clcnn_status got, clcnn_status want, const char *needle) {
    if (got != want || !strstr(clcnn_last_error(), needle))
        fail_msg("got %s '%s', wanted %s naming '%s'", clcnn_status_str(got), clcnn_last_error(),
                 clcnn_status_str(want), needle);
}

/* dir holds exactly one entry, model.onnx, reading "keep me". */
static void expect_untouched(const char *dir) {
    char *text = tu_slurp(dir, "model.onnx");
    assert_non_null(text);
    assert_string_equal(text, "keep me");
    free(text);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            if (strcmp(e->d_name, "model.onnx")) fail_msg("'%s' left in %s", e->d_name, dir);
            entries++;
        }
    closedir(d);
    assert_int_equal(entries, 1);
}

static void test_errors(void **state) {
    (void)state;
    char *dir = tu_temp_dir("onnx-export");
    char path[4200], missing[4200];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(missing, sizeof missing, "%s/no/such/folder/model.onnx", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("keep me", f);
    fclose(f);
    void *buf = NULL;
    size_t size = 0;

    /* an attribute opset 17 does not define (the graph ignores it; ONNX would refuse it) */
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 2, (int64_t[]){CLCNN_GRAPH_BATCH, 4}));
    const char *in[] = {"x"}, *out[] = {"y"};
    NODE(g, "Relu", "odd", in, out, INT("slope", 2));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(clcnn_graph_save_onnx(g, path), CLCNN_ERR_INVALID_ARG, "clcnn_graph_check");
    TU_OK(clcnn_graph_check(g));
    expect_error(clcnn_graph_save_onnx(g, path), CLCNN_ERR_UNSUPPORTED, "'odd'");
    expect_error(clcnn_graph_save_onnx_memory(g, &buf, &size), CLCNN_ERR_UNSUPPORTED, "'slope'");
    assert_null(buf);
    expect_untouched(dir);
    clcnn_graph_free(g);

    /* batch norm over single positions (spatial 0) has no opset 17 form */
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 2, (int64_t[]){CLCNN_GRAPH_BATCH, 4}));
    const char *bn_names[4] = {"s", "b", "m", "v"};
    for (int i = 0; i < 4; i++)
        TU_OK(clcnn_graph_add_initializer(g, bn_names[i], CLCNN_F32, 1, (int64_t[]){4},
                                          (float[]){1, 1, 1, 1}));
    const char *bn_in[] = {"x", "s", "b", "m", "v"};
    NODE(g, "BatchNormalization", "bn", bn_in, out, INT("spatial", 0));
    TU_OK(clcnn_graph_add_output(g, "y"));
    TU_OK(clcnn_graph_check(g));
    expect_error(clcnn_graph_save_onnx(g, path), CLCNN_ERR_UNSUPPORTED, "spatial");
    expect_untouched(dir);
    clcnn_graph_free(g);

    /* a folder that does not exist; NULL arguments */
    clcnn_net *net = c_net();
    TU_OK(clcnn_net_graph(net, &g));
    clcnn_net_free(net);
    expect_error(clcnn_graph_save_onnx(g, missing), CLCNN_ERR_IO, missing);
    expect_error(clcnn_graph_save_onnx(NULL, path), CLCNN_ERR_INVALID_ARG, "NULL");
    expect_error(clcnn_graph_save_onnx(g, NULL), CLCNN_ERR_INVALID_ARG, "NULL");
    expect_error(clcnn_graph_save_onnx_memory(g, NULL, &size), CLCNN_ERR_INVALID_ARG, "NULL");

    /* a write that fails half way (the file size limit; SIGXFSZ ignored so the write
     * returns EFBIG): the old file stays, the temporary one is removed */
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit small = {4096, old.rlim_max};
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    clcnn_status s = clcnn_graph_save_onnx(g, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    expect_error(s, CLCNN_ERR_IO, "left as it was");
    expect_untouched(dir);

    /* an injected write failure at the first, second, a middle and the last piece the
     * packer writes (cc_fault_count says how many a whole save writes) */
    char counted[4200];
    snprintf(counted, sizeof counted, "%s/counted.onnx", dir);
    cc_fault_set(CC_FAULT_FILE_WRITE, 0);
    TU_OK(clcnn_graph_save_onnx(g, counted));
    uint64_t writes = cc_fault_count(CC_FAULT_FILE_WRITE);
    assert_true(writes > 10);
    remove(counted);
    const uint64_t at[4] = {1, 2, writes / 2, writes};
    for (int i = 0; i < 4; i++) {
        cc_fault_set(CC_FAULT_FILE_WRITE, at[i]);
        s = clcnn_graph_save_onnx(g, path);
        int fired = cc_fault_fired(CC_FAULT_FILE_WRITE);
        cc_fault_set(CC_FAULT_FILE_WRITE, 0);
        assert_true(fired);
        expect_error(s, CLCNN_ERR_IO, "left as it was");
        expect_untouched(dir);
    }

    /* and then a good save replaces it */
    TU_OK(clcnn_graph_save_onnx(g, path));
    clcnn_graph *back = NULL;
    TU_OK(clcnn_graph_load_onnx(path, &back));
    expect_same_graph(g, back);
    clcnn_graph_free(back);
    clcnn_graph_free(g);
    remove(path);
    rmdir(dir);
    free(dir);
}

/* clcnn_onnx_save_tensor writes what clcnn_onnx_load_tensor reads. */
static void test_tensor_file(void **state) {
    (void)state;
    char *dir = tu_temp_dir("onnx-tensor");
    char path[4200];
    snprintf(path, sizeof path, "%s/t.pb", dir);
    const float v[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
    TU_OK(clcnn_onnx_save_tensor(path, "t", CLCNN_F32, 2, (int64_t[]){2, 3}, v));
    clcnn_dtype dt;
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    void *data = NULL;
    size_t numel = 0;
    TU_OK(clcnn_onnx_load_tensor(path, &dt, &nd, d, &data, &numel));
    assert_int_equal(dt, CLCNN_F32);
    assert_int_equal(nd, 2);
    assert_true(d[0] == 2 && d[1] == 3);
    assert_int_equal(numel, 6);
    assert_memory_equal(data, v, sizeof v);
    free(data);
    expect_error(clcnn_onnx_save_tensor(path, "t", CLCNN_F32, 1, (int64_t[]){-1}, v),
                 CLCNN_ERR_SHAPE, "dimension");
    remove(path);
    rmdir(dir);
    free(dir);
}

/* Start OUT_DIR afresh, so the checker reads only this run's files. */
static void clear_out_dir(void) {
    DIR *d = opendir(OUT_DIR);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".onnx")) {
            snprintf(path, sizeof path, OUT_DIR "/%s", e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
}

int main(void) {
    clear_out_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_net),  cmocka_unit_test(test_old_forms),
        cmocka_unit_test(test_zoo),    cmocka_unit_test(test_torch_models),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_tensor_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
