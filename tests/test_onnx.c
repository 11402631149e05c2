/* ONNX import: models built here with the protobuf-c types generated from onnx.proto, so
 * every field can be set to what a hostile or broken exporter would write. A valid
 * Conv-Relu model through a plan against the double reference (initializers in raw_data
 * and in the typed fields, IR 3 initializers listed as inputs, a folded Shape/Gather/
 * Unsqueeze/Concat sub-graph, external data); then truncated and random bytes, dims whose
 * product overflows, zero strides, kernels larger than the input, cycles, missing
 * initializers, duplicate outputs, unknown ops and domains, newer opsets, external data
 * outside the model's folder or past its file's end, raw data shorter than its dims and
 * deeply nested sub-graphs: each a clear error naming the node or tensor. */
#include "reference_conv.h"
#include "test_util.h"

#include "onnx.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a tiny model builder over the generated types (everything malloc'd; freed with
 * the arena below) ---- */

typedef struct arena {
    void *p[4096];
    int n;
} arena;

static void *take(arena *a, size_t bytes) {
    assert_true(a->n < 4096);
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    a->p[a->n++] = p;
    return p;
}

static void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++)
        free(a->p[i]);
    a->n = 0;
}

static char *str(arena *a, const char *s) {
    char *d = take(a, strlen(s) + 1);
    strcpy(d, s);
    return d;
}

typedef struct model {
    arena a;
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    Onnx__NodeProto *nodes[64];
    Onnx__TensorProto *inits[64];
    Onnx__ValueInfoProto *inputs[8], *outputs[8];
} model;

static void model_init(model *md, int opset) {
    memset(md, 0, sizeof *md);
    onnx__model_proto__init(&md->m);
    onnx__graph_proto__init(&md->g);
    onnx__operator_set_id_proto__init(&md->opset);
    md->opset.domain = str(&md->a, "");
    md->opset.has_version = 1;
    md->opset.version = opset;
    md->opsets[0] = &md->opset;
    md->m.has_ir_version = 1;
    md->m.ir_version = 8;
    md->m.n_opset_import = 1;
    md->m.opset_import = md->opsets;
    md->m.graph = &md->g;
    md->g.node = md->nodes;
    md->g.initializer = md->inits;
    md->g.input = md->inputs;
    md->g.output = md->outputs;
}

static Onnx__ValueInfoProto *value_info(model *md, const char *name, int ndim, const int64_t *dims,
                                        const char *batch_param) {
    Onnx__ValueInfoProto *v = take(&md->a, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = str(&md->a, name);
    Onnx__TypeProto *t = take(&md->a, sizeof *t);
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = take(&md->a, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *sh = take(&md->a, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)ndim;
    sh->dim = take(&md->a, (size_t)ndim * sizeof *sh->dim);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = take(&md->a, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0 && batch_param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = str(&md->a, batch_param);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static void add_input(model *md, const char *name, int ndim, const int64_t *dims,
                      const char *batch) {
    md->inputs[md->g.n_input++] = value_info(md, name, ndim, dims, batch);
}

static void add_output(model *md, const char *name) {
    md->outputs[md->g.n_output++] = value_info(md, name, 0, NULL, NULL);
}

/* A float initializer: raw little-endian bytes when raw, else float_data. */
static Onnx__TensorProto *add_init(model *md, const char *name, int ndim, const int64_t *dims,
                                   const float *data, int raw) {
    Onnx__TensorProto *t = take(&md->a, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = str(&md->a, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)ndim;
    t->dims = take(&md->a, (size_t)ndim * sizeof(int64_t));
    memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)(dims[i] > 0 ? dims[i] : 1);
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = n * 4;
        t->raw_data.data = take(&md->a, n * 4);
        memcpy(t->raw_data.data, data, n * 4);
    } else {
        t->n_float_data = n;
        t->float_data = take(&md->a, n * 4);
        memcpy(t->float_data, data, n * 4);
    }
    md->inits[md->g.n_initializer++] = t;
    return t;
}

static Onnx__TensorProto *add_init_i64(model *md, const char *name, int64_t n, const int64_t *v) {
    Onnx__TensorProto *t = take(&md->a, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = str(&md->a, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_dims = 1;
    t->dims = take(&md->a, sizeof(int64_t));
    t->dims[0] = n;
    t->n_int64_data = (size_t)n;
    t->int64_data = take(&md->a, (size_t)n * sizeof(int64_t));
    memcpy(t->int64_data, v, (size_t)n * sizeof(int64_t));
    md->inits[md->g.n_initializer++] = t;
    return t;
}

static Onnx__NodeProto *add_node(model *md, const char *op, const char *name, int n_in,
                                 const char *const *in, int n_out, const char *const *out) {
    Onnx__NodeProto *n = take(&md->a, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = str(&md->a, op);
    n->name = str(&md->a, name);
    n->n_input = (size_t)n_in;
    n->input = take(&md->a, (size_t)n_in * sizeof(char *));
    for (int i = 0; i < n_in; i++)
        n->input[i] = str(&md->a, in[i]);
    n->n_output = (size_t)n_out;
    n->output = take(&md->a, (size_t)n_out * sizeof(char *));
    for (int i = 0; i < n_out; i++)
        n->output[i] = str(&md->a, out[i]);
    n->attribute = take(&md->a, 8 * sizeof *n->attribute);
    md->nodes[md->g.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *attr_ints(model *md, Onnx__NodeProto *n, const char *name, int count,
                                       const int64_t *v) {
    Onnx__AttributeProto *a = take(&md->a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(&md->a, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = take(&md->a, (size_t)count * sizeof(int64_t));
    memcpy(a->ints, v, (size_t)count * sizeof(int64_t));
    n->attribute[n->n_attribute++] = a;
    return a;
}

static Onnx__AttributeProto *attr_int(model *md, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = take(&md->a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(&md->a, name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    n->attribute[n->n_attribute++] = a;
    return a;
}

/* Serialise (malloc'd). */
static uint8_t *pack(model *md, size_t *size) {
    *size = onnx__model_proto__get_packed_size(&md->m);
    uint8_t *buf = malloc(*size ? *size : 1);
    assert_non_null(buf);
    assert_int_equal(onnx__model_proto__pack(&md->m, buf), *size);
    return buf;
}

/* ---- the valid model: x (N,2,6,6) -> Conv 3x3 pad 1 (3 filters, bias) -> Relu -> y ---- */

static float W[3 * 2 * 3 * 3], B[3];

static void valid_model(model *md, int raw, int ir3) {
    model_init(md, 13);
    tu_rng r = tu_rng_seed(4);
    tu_fill_uniform(&r, W, 54, -0.5f, 0.5f);
    tu_fill_uniform(&r, B, 3, -0.2f, 0.2f);
    add_input(md, "x", 4, (int64_t[]){0, 2, 6, 6}, "N");
    add_init(md, "W", 4, (int64_t[]){3, 2, 3, 3}, W, raw);
    add_init(md, "B", 1, (int64_t[]){3}, B, !raw);
    if (ir3) {
        md->m.ir_version = 3;
        add_input(md, "W", 4, (int64_t[]){3, 2, 3, 3}, NULL);
        add_input(md, "B", 1, (int64_t[]){3}, NULL);
    }
    Onnx__NodeProto *c =
        add_node(md, "Conv", "conv", 3, (const char *[]){"x", "W", "B"}, 1, (const char *[]){"c"});
    attr_ints(md, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    add_node(md, "Relu", "relu", 1, (const char *[]){"c"}, 1, (const char *[]){"y"});
    add_output(md, "y");
}

/* Load, plan for batch n and compare with the double reference. */
static void check_runs(clcnn_graph *g, int n) {
    assert_int_equal(clcnn_graph_num_inputs(g), 1);
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(tu_device(), g, n, NULL, &p));
    size_t xs[4] = {(size_t)n, 2, 6, 6}, xn = (size_t)n * 72;
    float *x = malloc(xn * sizeof *x);
    tu_rng r = tu_rng_seed(8);
    tu_fill_uniform(&r, x, xn, -1, 1);
    clcnn_tensor *t = tu_tensor_from(4, xs, x);
    const clcnn_tensor *in = t;
    TU_OK(clcnn_plan_run(p, &in, 1));
    float *got = tu_download(clcnn_plan_output(p, 0));
    ref_conv cv = {.n = n, .c = 2, .h = 6, .w = 6, .k = 3, .r = 3, .s = 3};
    cv.stride_h = cv.stride_w = cv.dilation_h = cv.dilation_w = cv.groups = 1;
    cv.pad_h = cv.pad_w = 1;
    ref_conv_out(&cv);
    double *xd = malloc(xn * sizeof *xd), wd[54], bd[3], *yd = malloc(ref_conv_y_size(&cv) * 8);
    for (size_t i = 0; i < xn; i++)
        xd[i] = x[i];
    for (int i = 0; i < 54; i++)
        wd[i] = W[i];
    for (int i = 0; i < 3; i++)
        bd[i] = B[i];
    ref_conv2d_forward(&cv, xd, wd, bd, 1, 0.0, yd);
    assert_true(tu_close("onnx conv relu", got, yd, ref_conv_y_size(&cv), 1e-5, 1e-4));
    free(got), free(x), free(xd), free(yd);
    clcnn_tensor_free(t);
    clcnn_plan_free(p);
}

static void test_valid_models(void **state) {
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        model md;
        valid_model(&md, variant != 1, variant == 2);
        size_t size;
        uint8_t *buf = pack(&md, &size);
        clcnn_graph *g = NULL;
        TU_OK(clcnn_graph_load_onnx_memory(buf, size, NULL, &g));
        int nd;
        int64_t dims[CLCNN_GRAPH_MAX_DIMS];
        TU_OK(clcnn_graph_value_shape(g, "y", &nd, dims));
        assert_int_equal(dims[0], CLCNN_GRAPH_BATCH);
        assert_int_equal(dims[1], 3);
        check_runs(g, variant + 1);
        clcnn_graph_free(g);
        free(buf);
        arena_free(&md.a);
    }
}

/* The exporters' flatten: Shape -> Gather(0) -> Unsqueeze -> Concat(-1) feeds a Reshape;
 * folded to the constant [batch, -1]; the Concat of shapes never reaches the graph. */
static void test_shape_subgraph_folded(void **state) {
    (void)state;
    model md;
    valid_model(&md, 1, 0);
    add_init_i64(&md, "zero", 1, (int64_t[]){0})->n_dims = 0; /* a scalar index */
    add_init_i64(&md, "axes", 1, (int64_t[]){0});
    add_init_i64(&md, "minus1", 1, (int64_t[]){-1});
    add_node(&md, "Shape", "shape", 1, (const char *[]){"y"}, 1, (const char *[]){"shp"});
    Onnx__NodeProto *ga = add_node(&md, "Gather", "gather", 2, (const char *[]){"shp", "zero"}, 1,
                                   (const char *[]){"n"});
    attr_int(&md, ga, "axis", 0);
    add_node(&md, "Unsqueeze", "unsq", 2, (const char *[]){"n", "axes"}, 1, (const char *[]){"n1"});
    Onnx__NodeProto *cc = add_node(&md, "Concat", "cat", 2, (const char *[]){"n1", "minus1"}, 1,
                                   (const char *[]){"newshape"});
    attr_int(&md, cc, "axis", 0);
    add_node(&md, "Relu", "relu2", 1, (const char *[]){"y"}, 1, (const char *[]){"y2"});
    add_output(&md, "y2");
    size_t size;
    uint8_t *buf = pack(&md, &size);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_load_onnx_memory(buf, size, NULL, &g));
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        TU_OK(clcnn_graph_node_info(g, i, &info));
        assert_string_not_equal(info.op_type, "Concat"); /* folded on the host */
    }
    assert_int_equal(clcnn_graph_num_nodes(g), 3);
    clcnn_graph_free(g);
    free(buf);
    arena_free(&md.a);
}

/* PyTorch's Linear without bias: x [N,3] MatMul Transpose(w [4,3]). The Transpose of the
 * initializer is folded on the host (the graph holds MatMul only, with w transposed), and
 * y equals x w^T; a perm that is no permutation is not folded, and the graph refuses it
 * at load, naming the node. */
static void test_transpose_folded(void **state) {
    (void)state;
    static const float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (int bad = 0; bad < 2; bad++) {
        model md;
        model_init(&md, 13);
        add_input(&md, "x", 2, (int64_t[]){1, 3}, "N");
        add_init(&md, "w", 2, (int64_t[]){4, 3}, w, 1);
        Onnx__NodeProto *t =
            add_node(&md, "Transpose", "wt", 1, (const char *[]){"w"}, 1, (const char *[]){"wT"});
        attr_ints(&md, t, "perm", 2, bad ? (int64_t[]){1, 1} : (int64_t[]){1, 0});
        add_node(&md, "MatMul", "mm", 2, (const char *[]){"x", "wT"}, 1, (const char *[]){"y"});
        add_output(&md, "y");
        size_t size;
        uint8_t *buf = pack(&md, &size);
        clcnn_graph *g = NULL;
        if (bad) {
            assert_int_not_equal(clcnn_graph_load_onnx_memory(buf, size, NULL, &g), CLCNN_OK);
            assert_non_null(strstr(clcnn_last_error(), "'wt'"));
        } else {
            TU_OK(clcnn_graph_load_onnx_memory(buf, size, NULL, &g));
            assert_int_equal(clcnn_graph_num_nodes(g), 1);
            clcnn_plan *p = NULL;
            TU_OK(clcnn_plan_create(tu_device(), g, 2, NULL, &p));
            static const float xv[6] = {1, 0, -1, 0.5f, 2, -3};
            clcnn_tensor *x = tu_tensor_from(2, (size_t[]){2, 3}, xv);
            const clcnn_tensor *in = x;
            TU_OK(clcnn_plan_run(p, &in, 1));
            float *y = tu_download(clcnn_plan_output(p, 0));
            for (int i = 0; i < 2; i++)
                for (int o = 0; o < 4; o++) {
                    float want = 0;
                    for (int j = 0; j < 3; j++)
                        want += xv[i * 3 + j] * w[o * 3 + j];
                    assert_float_equal(y[i * 4 + o], want, 1e-5);
                }
            free(y);
            clcnn_tensor_free(x);
            clcnn_plan_free(p);
            clcnn_graph_free(g);
        }
        free(buf);
        arena_free(&md.a);
    }
}

static void test_external_data(void **state) {
    (void)state;
    char *dir = tu_temp_dir("onnx-ext");
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    float pad[4] = {9, 9, 9, 9};
    model md;
    valid_model(&md, 1, 0);
    fwrite(pad, 4, 4, f); /* the weights start at byte 16 */
    fwrite(W, 4, 54, f);
    fclose(f);
    Onnx__TensorProto *t = md.inits[0];
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto *e[3];
    const char *kv[3][2] = {{"location", "weights.bin"}, {"offset", "16"}, {"length", "216"}};
    for (int i = 0; i < 3; i++) {
        e[i] = take(&md.a, sizeof *e[i]);
        onnx__string_string_entry_proto__init(e[i]);
        e[i]->key = str(&md.a, kv[i][0]);
        e[i]->value = str(&md.a, kv[i][1]);
    }
    t->n_external_data = 3;
    t->external_data = e;
    size_t size;
    uint8_t *buf = pack(&md, &size);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    f = fopen(path, "wb");
    fwrite(buf, 1, size, f);
    fclose(f);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_load_onnx(path, &g));
    check_runs(g, 2);
    clcnn_graph_free(g);
    /* from memory without a folder: refused */
    assert_int_equal(clcnn_graph_load_onnx_memory(buf, size, NULL, &g), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "'W'"));
    /* outside the folder, absolute, past the end */
    const char *bad[][2] = {{"location", "../weights.bin"},
                            {"location", "/etc/passwd"},
                            {"offset", "1000"},
                            {"length", "100"}};
    for (int k = 0; k < 4; k++) {
        e[0]->value = str(&md.a, "weights.bin");
        e[1]->value = str(&md.a, "16");
        e[2]->value = str(&md.a, "216");
        Onnx__StringStringEntryProto *which = !strcmp(bad[k][0], "location") ? e[0]
                                              : !strcmp(bad[k][0], "offset") ? e[1]
                                                                             : e[2];
        which->value = str(&md.a, bad[k][1]);
        free(buf);
        buf = pack(&md, &size);
        assert_int_equal(clcnn_graph_load_onnx_memory(buf, size, dir, &g), CLCNN_ERR_FORMAT);
        assert_null(g);
        assert_non_null(strstr(clcnn_last_error(), "tensor 'W'"));
    }
    free(buf);
    arena_free(&md.a);
    tu_remove_dir(dir);
}

/* Load buf and expect status want with `needle` in the message. */
static void expect_load_error(model *md, clcnn_status want, const char *needle) {
    size_t size;
    uint8_t *buf = pack(md, &size);
    clcnn_graph *g = (clcnn_graph *)1;
    clcnn_status s = clcnn_graph_load_onnx_memory(buf, size, NULL, &g);
    if (s != want || !strstr(clcnn_last_error(), needle))
        fail_msg("got %d '%s', want %d with '%s'", (int)s, clcnn_last_error(), (int)want, needle);
    assert_null(g);
    free(buf);
    arena_free(&md->a);
}

static void test_hostile_fields(void **state) {
    (void)state;
    model md;
    /* dims whose product overflows */
    valid_model(&md, 1, 0);
    md.inits[0]->dims[0] = (int64_t)1 << 40;
    md.inits[0]->dims[1] = (int64_t)1 << 40;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "tensor 'W'");
    /* negative dims */
    valid_model(&md, 1, 0);
    md.inits[1]->dims[0] = -3;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "tensor 'B'");
    /* raw data shorter than its dims */
    valid_model(&md, 1, 0);
    md.inits[0]->raw_data.len -= 4;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "tensor 'W'");
    /* typed data shorter than its dims */
    valid_model(&md, 1, 0);
    md.inits[1]->n_float_data = 2;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "tensor 'B'");
    /* zero and negative strides, negative pads */
    valid_model(&md, 1, 0);
    attr_ints(&md, md.nodes[0], "strides", 2, (int64_t[]){0, 1});
    expect_load_error(&md, CLCNN_ERR_INVALID_ARG, "'conv'");
    valid_model(&md, 1, 0);
    md.nodes[0]->attribute[0]->ints[2] = -1;
    expect_load_error(&md, CLCNN_ERR_INVALID_ARG, "'conv'");
    /* a kernel larger than the (padded) input */
    valid_model(&md, 1, 0);
    md.inits[0]->dims[2] = md.inits[0]->dims[3] = 9;
    md.inits[0]->raw_data.len = 3 * 2 * 81 * 4;
    md.inits[0]->raw_data.data = take(&md.a, md.inits[0]->raw_data.len);
    expect_load_error(&md, CLCNN_ERR_SHAPE, "'conv'");
    /* a cycle: relu reads y, which relu writes */
    valid_model(&md, 1, 0);
    md.nodes[1]->input[0] = str(&md.a, "y");
    expect_load_error(&md, CLCNN_ERR_INVALID_ARG, "'relu'");
    /* two nodes in a loop: conv reads y (written later) */
    valid_model(&md, 1, 0);
    md.nodes[0]->input[0] = str(&md.a, "y");
    expect_load_error(&md, CLCNN_ERR_INVALID_ARG, "'conv'");
    /* a missing initializer */
    valid_model(&md, 1, 0);
    md.nodes[0]->input[1] = str(&md.a, "W_missing");
    expect_load_error(&md, CLCNN_ERR_INVALID_ARG, "'W_missing'");
    /* duplicate output names */
    valid_model(&md, 1, 0);
    md.nodes[1]->output[0] = str(&md.a, "c");
    expect_load_error(&md, CLCNN_ERR_FORMAT, "'c'");
    valid_model(&md, 1, 0);
    add_init(&md, "W", 1, (int64_t[]){1}, W, 1);
    expect_load_error(&md, CLCNN_ERR_FORMAT, "'W'");
    /* unknown op, unknown domain, newer opset, no default opset */
    valid_model(&md, 1, 0);
    md.nodes[1]->op_type = str(&md.a, "Frobnicate");
    expect_load_error(&md, CLCNN_ERR_UNSUPPORTED, "Frobnicate");
    valid_model(&md, 1, 0);
    md.nodes[1]->domain = str(&md.a, "com.example");
    expect_load_error(&md, CLCNN_ERR_UNSUPPORTED, "com.example");
    valid_model(&md, 1, 0);
    md.opset.version = 99;
    expect_load_error(&md, CLCNN_ERR_UNSUPPORTED, "opset 99");
    valid_model(&md, 1, 0);
    md.opset.domain = str(&md.a, "com.example");
    expect_load_error(&md, CLCNN_ERR_FORMAT, "opset_import");
    /* an integer graph input */
    valid_model(&md, 1, 0);
    md.inputs[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    expect_load_error(&md, CLCNN_ERR_UNSUPPORTED, "'x'");
    /* no graph */
    valid_model(&md, 1, 0);
    md.m.graph = NULL;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "no graph");
}

/* A node whose attribute holds a graph whose node's attribute holds a graph, depth deep. */
static Onnx__GraphProto *nested(model *md, int depth) {
    Onnx__GraphProto *g = take(&md->a, sizeof *g);
    onnx__graph_proto__init(g);
    if (depth == 0) return g;
    Onnx__NodeProto *n = take(&md->a, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = str(&md->a, "If");
    Onnx__AttributeProto *a = take(&md->a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(&md->a, "then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = nested(md, depth - 1);
    n->n_attribute = 1;
    n->attribute = take(&md->a, sizeof *n->attribute);
    n->attribute[0] = a;
    g->n_node = 1;
    g->node = take(&md->a, sizeof *g->node);
    g->node[0] = n;
    return g;
}

static void test_nesting_and_garbage(void **state) {
    (void)state;
    model md;
    valid_model(&md, 1, 0);
    Onnx__NodeProto *iff = add_node(&md, "If", "if", 0, NULL, 1, (const char *[]){"z"});
    Onnx__AttributeProto *a = take(&md.a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(&md.a, "then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = nested(&md, 200);
    iff->attribute[iff->n_attribute++] = a;
    expect_load_error(&md, CLCNN_ERR_FORMAT, "nests");
    /* a shallow sub-graph is read, and refused by name */
    valid_model(&md, 1, 0);
    iff = add_node(&md, "If", "if", 0, NULL, 1, (const char *[]){"z"});
    a = take(&md.a, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = str(&md.a, "then_branch");
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    a->g = nested(&md, 2);
    iff->attribute[iff->n_attribute++] = a;
    expect_load_error(&md, CLCNN_ERR_UNSUPPORTED, "sub-graph");

    /* every prefix of a valid model: an error (or, rarely, a smaller valid model), never
     * a crash; random bytes likewise */
    valid_model(&md, 1, 0);
    size_t size;
    uint8_t *buf = pack(&md, &size);
    int errors = 0;
    for (size_t len = 0; len < size; len++) {
        clcnn_graph *g = NULL;
        clcnn_status s = clcnn_graph_load_onnx_memory(buf, len, NULL, &g);
        if (s != CLCNN_OK) {
            assert_null(g);
            assert_true(clcnn_last_error()[0] != '\0');
            errors++;
        }
        clcnn_graph_free(g);
    }
    assert_true(errors > (int)size / 2);
    tu_rng r = tu_rng_seed(12);
    for (int i = 0; i < 300; i++) {
        size_t n = (size_t)tu_rng_int(&r, 1, 400);
        uint8_t *junk = malloc(n);
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)tu_rng_int(&r, 0, 255);
        if (i % 2) memcpy(junk, buf, n < size / 2 ? n : size / 2); /* a valid start */
        clcnn_graph *g = NULL;
        if (clcnn_graph_load_onnx_memory(junk, n, NULL, &g) != CLCNN_OK) assert_null(g);
        clcnn_graph_free(g);
        free(junk);
    }
    free(buf);
    arena_free(&md.a);
    /* a file that is not there, an empty one */
    clcnn_graph *g = NULL;
    assert_int_equal(clcnn_graph_load_onnx("/nonexistent/model.onnx", &g), CLCNN_ERR_IO);
    assert_int_equal(clcnn_graph_load_onnx_memory("", 0, NULL, &g), CLCNN_ERR_FORMAT);
}

/* clcnn_onnx_load_tensor reads a TensorProto file (test case inputs and outputs). */
static void test_tensor_file(void **state) {
    (void)state;
    model md;
    model_init(&md, 13);
    Onnx__TensorProto *t = add_init(&md, "t", 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6}, 1);
    size_t size = onnx__tensor_proto__get_packed_size(t);
    uint8_t *buf = malloc(size);
    onnx__tensor_proto__pack(t, buf);
    char *dir = tu_temp_dir("onnx-tensor");
    char path[4096];
    snprintf(path, sizeof path, "%s/input_0.pb", dir);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, size, f);
    fclose(f);
    clcnn_dtype dt;
    int nd;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    void *data = NULL;
    size_t numel;
    TU_OK(clcnn_onnx_load_tensor(path, &dt, &nd, dims, &data, &numel));
    assert_int_equal(dt, CLCNN_F32);
    assert_int_equal(nd, 2);
    assert_int_equal(numel, 6);
    assert_true(((float *)data)[5] == 6.0f);
    free(data);
    f = fopen(path, "wb"); /* truncated */
    fwrite(buf, 1, size - 3, f);
    fclose(f);
    assert_int_equal(clcnn_onnx_load_tensor(path, &dt, &nd, dims, &data, &numel), CLCNN_ERR_FORMAT);
    assert_null(data);
    free(buf);
    tu_remove_dir(dir);
    arena_free(&md.a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_models),     cmocka_unit_test(test_shape_subgraph_folded),
        cmocka_unit_test(test_transpose_folded), cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_hostile_fields),   cmocka_unit_test(test_nesting_and_garbage),
        cmocka_unit_test(test_tensor_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
