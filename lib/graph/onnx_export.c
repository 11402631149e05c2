/* ONNX export: a checked graph to a ModelProto at opset 17 (IR 8), packed by the
 * protobuf-c code generated from onnx.proto. Nodes go out in topological order with their
 * names, inputs, outputs and attributes; initializers as little-endian raw_data under
 * their names; graph inputs and outputs with their element type and shape, the batch as
 * the symbolic dimension "N".
 *
 * The graph keeps attributes as they were given, so a graph imported from an older opset
 * may hold forms that opset 17 spells differently. Those this file knows are rewritten
 * (attribute to input: Squeeze/Unsqueeze/ReduceSum axes, Split split, Slice
 * starts/ends/axes, Pad pads/value, Clip min/max, Dropout ratio; Resize-10 and Upsample
 * to Resize with the same coordinate rule); attributes the graph ignores are dropped; any
 * other attribute opset 17 does not define is refused, naming the node. Dropout goes out
 * in its inference form (no training_mode input). Messages are built in an arena and point into the
 * graph; nothing of the graph is copied except what is rewritten. */
#include "fault.h"
#include "graph/onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_OPSET 17
#define EXPORT_IR 8
#define BATCH_PARAM "N"
#define MAX_IN 66    /* a node's inputs: Concat's 64, plus room for inputs made of attributes */
#define MAX_ATTRS 40 /* the graph copies at most 32 per node; conversions add a few */

/* The attributes opset 17 defines for each op kind, "name:type" with type i (int), f
 * (float), s (string), I (ints), F (floats). NULL: no opset-17 form (Upsample is
 * rewritten before it is looked up). */
static const char *const attr_spec[CC_OP_COUNT] = {
    [CC_OP_CONV] = "auto_pad:s dilations:I group:i kernel_shape:I pads:I strides:I",
    [CC_OP_BATCHNORM] = "epsilon:f momentum:f training_mode:i",
    [CC_OP_RELU] = "",
    [CC_OP_LEAKYRELU] = "alpha:f",
    [CC_OP_MAXPOOL] = "auto_pad:s ceil_mode:i dilations:I kernel_shape:I pads:I storage_order:i "
                      "strides:I",
    [CC_OP_AVGPOOL] = "auto_pad:s ceil_mode:i count_include_pad:i kernel_shape:I pads:I strides:I",
    [CC_OP_GLOBALAVGPOOL] = "",
    [CC_OP_GLOBALMAXPOOL] = "",
    [CC_OP_ADD] = "",
    [CC_OP_CONCAT] = "axis:i",
    [CC_OP_FLATTEN] = "axis:i",
    [CC_OP_GEMM] = "alpha:f beta:f transA:i transB:i",
    [CC_OP_DROPOUT] = "seed:i",
    [CC_OP_IDENTITY] = "",
    [CC_OP_SOFTMAX] = "axis:i",
    [CC_OP_LOGSOFTMAX] = "axis:i",
    [CC_OP_RESHAPE] = "allowzero:i",
    [CC_OP_SQUEEZE] = "",
    [CC_OP_UNSQUEEZE] = "",
    [CC_OP_TRANSPOSE] = "perm:I",
    [CC_OP_SLICE] = "",
    [CC_OP_SPLIT] = "axis:i",
    [CC_OP_PAD] = "mode:s",
    [CC_OP_EXPAND] = "",
    [CC_OP_TILE] = "",
    [CC_OP_GATHER] = "axis:i",
    [CC_OP_SIGMOID] = "",
    [CC_OP_TANH] = "",
    [CC_OP_HARDSIGMOID] = "alpha:f beta:f",
    [CC_OP_HARDSWISH] = "",
    [CC_OP_CLIP] = "",
    [CC_OP_EXP] = "",
    [CC_OP_LOG] = "",
    [CC_OP_SQRT] = "",
    [CC_OP_NEG] = "",
    [CC_OP_ABS] = "",
    [CC_OP_RECIPROCAL] = "",
    [CC_OP_FLOOR] = "",
    [CC_OP_CEIL] = "",
    [CC_OP_PRELU] = "",
    [CC_OP_SUB] = "",
    [CC_OP_MUL] = "",
    [CC_OP_DIV] = "",
    [CC_OP_POW] = "",
    [CC_OP_MAX] = "",
    [CC_OP_MIN] = "",
    [CC_OP_SUM] = "",
    [CC_OP_MATMUL] = "",
    [CC_OP_REDUCEMEAN] = "axes:I keepdims:i",
    [CC_OP_REDUCESUM] = "keepdims:i noop_with_empty_axes:i",
    [CC_OP_REDUCEMAX] = "axes:I keepdims:i",
    [CC_OP_REDUCEMIN] = "axes:I keepdims:i",
    [CC_OP_REDUCEPROD] = "axes:I keepdims:i",
    [CC_OP_REDUCESUMSQUARE] = "axes:I keepdims:i",
    [CC_OP_REDUCEL1] = "axes:I keepdims:i",
    [CC_OP_REDUCEL2] = "axes:I keepdims:i",
    [CC_OP_REDUCELOGSUM] = "axes:I keepdims:i",
    [CC_OP_REDUCELOGSUMEXP] = "axes:I keepdims:i",
    [CC_OP_LRN] = "alpha:f beta:f bias:f size:i",
    [CC_OP_CONVTRANSPOSE] = "auto_pad:s dilations:I group:i kernel_shape:I output_padding:I "
                            "output_shape:I pads:I strides:I",
    [CC_OP_RESIZE] = "coordinate_transformation_mode:s cubic_coeff_a:f exclude_outside:i "
                     "extrapolation_value:f mode:s nearest_mode:s",
};

/* Attributes of older opsets that opset 17 takes as input `index`: ints become an int64
 * list, a float a float scalar, floats a float list. */
static const struct moved {
    cc_op op;
    const char *attr;
    int index;
} moved_attrs[] = {
    {CC_OP_SQUEEZE, "axes", 1},  {CC_OP_UNSQUEEZE, "axes", 1}, {CC_OP_REDUCESUM, "axes", 1},
    {CC_OP_SPLIT, "split", 1},   {CC_OP_SLICE, "starts", 1},   {CC_OP_SLICE, "ends", 2},
    {CC_OP_SLICE, "axes", 3},    {CC_OP_PAD, "pads", 1},       {CC_OP_PAD, "value", 2},
    {CC_OP_CLIP, "min", 1},      {CC_OP_CLIP, "max", 2},       {CC_OP_UPSAMPLE, "scales", 2},
    {CC_OP_DROPOUT, "ratio", 1},
};

typedef struct exporter {
    const clcnn_graph *g;
    void **mem; /* the arena: every block allocated for the messages */
    size_t nmem, capmem;
    Onnx__TensorProto **inits;
    size_t ninits, capinits;
} exporter;

static void *ex_alloc(exporter *ex, size_t size) {
    if (ex->nmem == ex->capmem) {
        size_t cap = ex->capmem ? 2 * ex->capmem : 256;
        void **m = realloc(ex->mem, cap * sizeof *m);
        if (!m) return NULL;
        ex->mem = m;
        ex->capmem = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p) ex->mem[ex->nmem++] = p;
    return p;
}

static void ex_free(exporter *ex) {
    for (size_t i = 0; i < ex->nmem; i++)
        free(ex->mem[i]);
    free(ex->mem);
}

#define NEW(ex, type) ((type *)ex_alloc((ex), sizeof(type)))
#define OOM() cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: out of host memory")

static int host_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* bytes of elements of esz bytes as little-endian: the data itself on a little-endian
 * host, else a swapped copy in the arena (NULL when out of memory). */
static const void *little_endian(exporter *ex, const void *data, size_t bytes, size_t esz) {
    if (!host_big_endian()) return data;
    uint8_t *out = ex_alloc(ex, bytes);
    if (!out) return NULL;
    const uint8_t *in = data;
    for (size_t i = 0; i < bytes; i += esz)
        for (size_t b = 0; b < esz; b++)
            out[i + b] = in[i + esz - 1 - b];
    return out;
}

static int32_t onnx_type(clcnn_dtype t) {
    return t == CLCNN_F32   ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
           : t == CLCNN_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                            : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
}

/* ---- tensors ------------------------------------------------------------------------- */

/* A TensorProto named name of dtype and shape dims[0..ndim) holding numel elements of data
 * (kept by pointer on little-endian hosts). */
static Onnx__TensorProto *tensor_msg(exporter *ex, const char *name, clcnn_dtype dtype, int ndim,
                                     const int64_t *dims, const void *data, size_t numel) {
    Onnx__TensorProto *t = NEW(ex, Onnx__TensorProto);
    int64_t *d = ex_alloc(ex, (size_t)(ndim > 0 ? ndim : 1) * sizeof *d);
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    if (ndim > 0) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = onnx_type(dtype);
    size_t esz = cc_dtype_size(dtype), bytes = numel * esz;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)little_endian(ex, data, bytes, esz);
    return t->raw_data.data || !bytes ? t : NULL;
}

static clcnn_status add_init_msg(exporter *ex, Onnx__TensorProto *t) {
    if (!t) return OOM();
    if (ex->ninits == ex->capinits) {
        size_t cap = ex->capinits ? 2 * ex->capinits : 64;
        Onnx__TensorProto **v = realloc(ex->inits, cap * sizeof *v);
        if (!v) return OOM();
        ex->inits = v;
        ex->capinits = cap;
    }
    ex->inits[ex->ninits++] = t;
    return CLCNN_OK;
}

static int init_named(const exporter *ex, const char *name) {
    for (size_t i = 0; i < ex->ninits; i++)
        if (!strcmp(ex->inits[i]->name, name)) return 1;
    return 0;
}

/* Inside int64 data, CC_SHAPE_BATCH stands for the batch; ONNX has no such value. Where
 * every reader is a Reshape's shape (0 copies the input's batch dimension) or an Expand's
 * shape (1 broadcasts to it) and the entry lines up with the reader's batch dimension,
 * the entry is written as 0 or 1; anything else is refused. *fill: the value. */
static clcnn_status batch_fill(const exporter *ex, int vi, size_t pos, int64_t *fill) {
    const clcnn_graph *g = ex->g;
    const cc_gvalue *v = &g->vals[vi];
    *fill = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] != vi) continue;
            const cc_gvalue *x = cc_node_in(g, n, 0);
            const cc_gattr *az = cc_node_attr(n, "allowzero");
            int64_t want = -1;
            if (j == 1 && n->op == CC_OP_RESHAPE && pos == 0 && !(az && az->i))
                want = 0;
            else if (j == 1 && n->op == CC_OP_EXPAND && x->ndim <= (int)v->numel &&
                     pos == v->numel - (size_t)x->ndim)
                want = 1;
            CC_RETURN_IF(want < 0 || (*fill >= 0 && *fill != want) || x->ndim < 1 ||
                             x->dims[0] != CLCNN_GRAPH_BATCH,
                         CLCNN_ERR_UNSUPPORTED,
                         "ONNX export: initializer '%s' holds the symbolic batch size (entry %zu), "
                         "which node '%s' (%s) reads in a way ONNX cannot express",
                         v->name, pos, n->name, cc_op_defs[n->op].name);
            *fill = want;
        }
    }
    CC_RETURN_IF(*fill < 0, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: initializer '%s' holds the symbolic batch size", v->name);
    return CLCNN_OK;
}

static clcnn_status export_init(exporter *ex, int vi) {
    const cc_gvalue *v = &ex->g->vals[vi];
    const void *data = v->data;
    if (v->dtype == CLCNN_I64) {
        const int64_t *src = v->data;
        int64_t *copy = NULL;
        for (size_t i = 0; i < v->numel; i++) {
            if (src[i] != CC_SHAPE_BATCH) continue;
            if (!copy) {
                copy = ex_alloc(ex, v->numel * sizeof *copy);
                if (!copy) return OOM();
                memcpy(copy, src, v->numel * sizeof *copy);
            }
            CC_TRY(batch_fill(ex, vi, i, &copy[i]));
        }
        if (copy) data = copy;
    }
    return add_init_msg(ex, tensor_msg(ex, v->name, v->dtype, v->ndim, v->dims, data, v->numel));
}

/* ---- graph inputs and outputs ------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(exporter *ex, const cc_gvalue *v) {
    Onnx__ValueInfoProto *vi = NEW(ex, Onnx__ValueInfoProto);
    Onnx__TypeProto *tp = NEW(ex, Onnx__TypeProto);
    Onnx__TypeProto__Tensor *tt = NEW(ex, Onnx__TypeProto__Tensor);
    Onnx__TensorShapeProto *sh = NEW(ex, Onnx__TensorShapeProto);
    Onnx__TensorShapeProto__Dimension **dims =
        ex_alloc(ex, (size_t)(v->ndim > 0 ? v->ndim : 1) * sizeof *dims);
    if (!vi || !tp || !tt || !sh || !dims) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int d = 0; d < v->ndim; d++) {
        Onnx__TensorShapeProto__Dimension *dm = NEW(ex, Onnx__TensorShapeProto__Dimension);
        if (!dm) return NULL;
        onnx__tensor_shape_proto__dimension__init(dm);
        if (v->dims[d] == CLCNN_GRAPH_BATCH) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = BATCH_PARAM;
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = v->dims[d];
        }
        dims[d] = dm;
    }
    sh->n_dim = (size_t)v->ndim;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = onnx_type(v->dtype);
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = v->name;
    vi->type = tp;
    return vi;
}

/* ---- nodes ---------------------------------------------------------------------------- */

/* One node as it goes out: inputs (NULL = absent) and attributes. */
typedef struct out_node {
    const char *in[MAX_IN];
    int n_in;
    Onnx__AttributeProto *attrs[MAX_ATTRS];
    int nattrs;
} out_node;

/* The op kind a node goes out as: Upsample as Resize. */
static cc_op out_op(const cc_gnode *n) {
    return n->op == CC_OP_UPSAMPLE ? CC_OP_RESIZE : n->op;
}

static const char *node_op(const cc_gnode *n) {
    return cc_op_defs[out_op(n)].name;
}

/* The type letter attr_spec gives attribute name of op, 0 when opset 17 has none. */
static char spec_type(cc_op op, const char *name) {
    const char *s = attr_spec[op];
    size_t len = strlen(name);
    while (s && *s) {
        if (!strncmp(s, name, len) && s[len] == ':') return s[len + 1];
        s = strchr(s, ' ');
        if (s) s++;
    }
    return 0;
}

static clcnn_status add_attr(exporter *ex, const cc_gnode *n, out_node *o, const char *name,
                             clcnn_attr_type type, int64_t i, float f, const int64_t *ints,
                             const float *floats, int count, const char *s) {
    static const char letters[] = {[CLCNN_ATTR_INT] = 'i',
                                   [CLCNN_ATTR_FLOAT] = 'f',
                                   [CLCNN_ATTR_INTS] = 'I',
                                   [CLCNN_ATTR_FLOATS] = 'F',
                                   [CLCNN_ATTR_STRING] = 's'};
    char want = spec_type(out_op(n), name);
    CC_RETURN_IF(!want, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s): attribute '%s' is not part of %s at opset %d",
                 n->name, node_op(n), name, node_op(n), EXPORT_OPSET);
    CC_RETURN_IF((int)type < 0 || type > CLCNN_ATTR_STRING || letters[type] != want,
                 CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s): attribute '%s' has the wrong type for ONNX", n->name,
                 node_op(n), name);
    CC_RETURN_IF(o->nattrs == MAX_ATTRS, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s) has too many attributes", n->name, node_op(n));
    Onnx__AttributeProto *a = NEW(ex, Onnx__AttributeProto);
    if (!a) return OOM();
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    switch (type) {
    case CLCNN_ATTR_INT:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = i;
        break;
    case CLCNN_ATTR_FLOAT:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = f;
        break;
    case CLCNN_ATTR_INTS:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        a->n_ints = (size_t)count;
        a->ints = (int64_t *)ints;
        break;
    case CLCNN_ATTR_FLOATS:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        a->n_floats = (size_t)count;
        a->floats = (float *)floats;
        break;
    case CLCNN_ATTR_STRING:
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        a->has_s = 1;
        a->s.len = strlen(s);
        a->s.data = (uint8_t *)s;
        break;
    }
    o->attrs[o->nattrs++] = a;
    return CLCNN_OK;
}

static clcnn_status copy_attr(exporter *ex, const cc_gnode *n, out_node *o, const cc_gattr *a) {
    return add_attr(ex, n, o, a->name, a->type, a->i, a->f, a->ints, a->floats, a->n, a->s);
}

/* Attributes of older opsets that the graph ignores (or that hold what the graph
 * assumes): 1 when a is one, dropped; an unusable value is refused. */
static int dropped_attr(const cc_gnode *n, const cc_gattr *a, clcnn_status *s) {
    const char *name = a->name;
    *s = CLCNN_OK;
    if (!strcmp(name, "consumed_inputs")) return 1;
    switch (n->op) {
    case CC_OP_BATCHNORM:
        if (!strcmp(name, "is_test")) return 1;
        if (!strcmp(name, "spatial")) {
            if (a->type != CLCNN_ATTR_INT || a->i != 1)
                *s = cc_fail(CLCNN_ERR_UNSUPPORTED,
                             "ONNX export: node '%s' (BatchNormalization): spatial 0 has no "
                             "opset %d form",
                             n->name, EXPORT_OPSET);
            return 1;
        }
        return 0;
    case CC_OP_DROPOUT:
        return !strcmp(name, "is_test");
    case CC_OP_SPLIT: /* opset 18's; the graph checked it equals the outputs */
        return !strcmp(name, "num_outputs");
    case CC_OP_ADD:
    case CC_OP_SUB:
    case CC_OP_MUL:
    case CC_OP_DIV: /* opset < 7: the graph broadcasts as NumPy does regardless */
        return !strcmp(name, "broadcast") || !strcmp(name, "axis");
    case CC_OP_GEMM: /* opset < 7: C broadcasts regardless */
        return !strcmp(name, "broadcast");
    case CC_OP_UPSAMPLE:
    case CC_OP_RESIZE: /* rewrite_resize writes the mode of the older forms */
        return (n->op == CC_OP_UPSAMPLE || n->n_in == 2) && !strcmp(name, "mode");
    default:
        return 0;
    }
}

/* A name for a new initializer made from attribute attr of n, unique in the model. */
static const char *new_init_name(exporter *ex, const cc_gnode *n, const char *attr) {
    size_t cap = strlen(n->name) + strlen(attr) + 16;
    char *name = ex_alloc(ex, cap);
    if (!name) return NULL;
    snprintf(name, cap, "%s.%s", n->name, attr);
    for (int k = 1; cc_graph_find(ex->g, name) >= 0 || init_named(ex, name); k++)
        snprintf(name, cap, "%s.%s_%d", n->name, attr, k);
    return name;
}

/* Attribute a, which opset 17 takes as input index, as a new initializer there. */
static clcnn_status move_attr(exporter *ex, const cc_gnode *n, out_node *o, const cc_gattr *a,
                              int index) {
    CC_RETURN_IF(index < o->n_in && o->in[index], CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s) has '%s' both as an attribute and an input", n->name,
                 node_op(n), a->name);
    const char *name = new_init_name(ex, n, a->name);
    if (!name) return OOM();
    int64_t len = a->n;
    Onnx__TensorProto *t;
    if (a->type == CLCNN_ATTR_INTS)
        t = tensor_msg(ex, name, CLCNN_I64, 1, &len, a->ints, (size_t)a->n);
    else if (a->type == CLCNN_ATTR_FLOATS)
        t = tensor_msg(ex, name, CLCNN_F32, 1, &len, a->floats, (size_t)a->n);
    else if (a->type == CLCNN_ATTR_FLOAT)
        t = tensor_msg(ex, name, CLCNN_F32, 0, NULL, &a->f, 1);
    else
        return cc_fail(CLCNN_ERR_UNSUPPORTED,
                       "ONNX export: node '%s' (%s): attribute '%s' has an unexpected type",
                       n->name, node_op(n), a->name);
    CC_TRY(add_init_msg(ex, t));
    while (o->n_in <= index)
        o->in[o->n_in++] = NULL;
    o->in[index] = name;
    return CLCNN_OK;
}

static int moved_index(const cc_gnode *n, const char *attr) {
    for (size_t i = 0; i < sizeof moved_attrs / sizeof *moved_attrs; i++)
        if (moved_attrs[i].op == n->op && !strcmp(moved_attrs[i].attr, attr))
            return moved_attrs[i].index;
    return -1;
}

/* Resize with two inputs (opset 10: X, scales) and Upsample (X, scales; opset < 9 scales
 * as an attribute) compute with the asymmetric transform and floor rounding: opset 17's
 * Resize(X, roi absent, scales) with those modes said. */
static clcnn_status rewrite_resize(exporter *ex, const cc_gnode *n, out_node *o) {
    if (n->op == CC_OP_UPSAMPLE || (n->op == CC_OP_RESIZE && n->n_in == 2)) {
        if (n->n_in == 2) {
            o->in[2] = o->in[1];
            o->in[1] = NULL;
            o->n_in = 3;
        }
        const char *mode = n->a.rs_linear ? "linear" : "nearest";
        CC_TRY(add_attr(ex, n, o, "mode", CLCNN_ATTR_STRING, 0, 0.0f, NULL, NULL, 0, mode));
        CC_TRY(add_attr(ex, n, o, "coordinate_transformation_mode", CLCNN_ATTR_STRING, 0, 0.0f,
                        NULL, NULL, 0, "asymmetric"));
        if (!n->a.rs_linear)
            CC_TRY(add_attr(ex, n, o, "nearest_mode", CLCNN_ATTR_STRING, 0, 0.0f, NULL, NULL, 0,
                            "floor"));
    }
    return CLCNN_OK;
}

/* Reductions other than ReduceSum take axes as an attribute until opset 18. */
static clcnn_status reduce_axes_attr(exporter *ex, const cc_gnode *n, out_node *o) {
    const cc_gvalue *axes = cc_node_in(ex->g, n, 1);
    if (n->op < CC_OP_REDUCEMEAN || n->op > CC_OP_REDUCELOGSUMEXP || n->op == CC_OP_REDUCESUM ||
        !axes)
        return CLCNN_OK;
    CC_RETURN_IF(axes->kind != CC_VAL_INIT || axes->dtype != CLCNN_I64, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s): axes '%s' must be an int64 initializer", n->name,
                 node_op(n), axes->name);
    o->n_in = 1;
    return add_attr(ex, n, o, "axes", CLCNN_ATTR_INTS, 0, 0.0f, axes->data, NULL, (int)axes->numel,
                    NULL);
}

static int value_read(const clcnn_graph *g, int vi) {
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == vi) return 1;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == vi) return 1;
    return 0;
}

static clcnn_status export_node(exporter *ex, const cc_gnode *n, Onnx__NodeProto **out) {
    out_node o = {.n_in = n->n_in};
    CC_RETURN_IF(n->n_in > MAX_IN - 2, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (%s) has %d inputs", n->name, node_op(n), n->n_in);
    for (int i = 0; i < n->n_in; i++)
        o.in[i] = n->in_names[i][0] ? n->in_names[i] : NULL;
    if (n->op == CC_OP_DROPOUT && o.n_in > 2) o.n_in = 2; /* inference form: no training_mode */
    CC_TRY(reduce_axes_attr(ex, n, &o));
    CC_TRY(rewrite_resize(ex, n, &o));
    for (int i = 0; i < n->nattrs; i++) {
        const cc_gattr *a = &n->attrs[i];
        clcnn_status s;
        if (dropped_attr(n, a, &s)) {
            CC_TRY(s);
            continue;
        }
        int index = moved_index(n, a->name);
        if (index >= 0)
            CC_TRY(move_attr(ex, n, &o, a, index));
        else
            CC_TRY(copy_attr(ex, n, &o, a));
    }
    int n_out = n->n_out;
    if (n->op == CC_OP_BATCHNORM) /* inference form: Y only; running stats are outputs of
                                   * training mode */
        while (n_out > 1 && !value_read(ex->g, n->out[n_out - 1]))
            n_out--;
    CC_RETURN_IF(n->op == CC_OP_BATCHNORM && n_out > 1, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: node '%s' (BatchNormalization): output '%s' is read, but "
                 "inference mode has only Y",
                 n->name, n->out_names[n_out - 1]);
    while (o.n_in > 0 && !o.in[o.n_in - 1])
        o.n_in--;

    Onnx__NodeProto *np = NEW(ex, Onnx__NodeProto);
    char **ins = ex_alloc(ex, (size_t)(o.n_in > 0 ? o.n_in : 1) * sizeof *ins);
    Onnx__AttributeProto **attrs = ex_alloc(ex, (size_t)(o.nattrs ? o.nattrs : 1) * sizeof *attrs);
    if (!np || !ins || !attrs) return OOM();
    onnx__node_proto__init(np);
    for (int i = 0; i < o.n_in; i++)
        ins[i] = (char *)(o.in[i] ? o.in[i] : "");
    memcpy(attrs, o.attrs, (size_t)o.nattrs * sizeof *attrs);
    np->n_input = (size_t)o.n_in;
    np->input = ins;
    np->n_output = (size_t)n_out;
    np->output = n->out_names;
    np->name = n->name;
    np->op_type = (char *)node_op(n);
    np->n_attribute = (size_t)o.nattrs;
    np->attribute = attrs;
    *out = np;
    return CLCNN_OK;
}

/* ---- the model ------------------------------------------------------------------------ */

static clcnn_status build_model(exporter *ex, Onnx__ModelProto *m) {
    const clcnn_graph *g = ex->g;
    Onnx__GraphProto *gp = NEW(ex, Onnx__GraphProto);
    Onnx__OperatorSetIdProto *ops = NEW(ex, Onnx__OperatorSetIdProto);
    Onnx__OperatorSetIdProto **opsv = NEW(ex, Onnx__OperatorSetIdProto *);
    Onnx__NodeProto **nodes = ex_alloc(ex, (size_t)(g->nnodes + 1) * sizeof *nodes);
    Onnx__ValueInfoProto **ins = ex_alloc(ex, (size_t)(g->nvals + 1) * sizeof *ins);
    Onnx__ValueInfoProto **outs = ex_alloc(ex, (size_t)(g->noutputs + 1) * sizeof *outs);
    if (!gp || !ops || !opsv || !nodes || !ins || !outs) return OOM();
    onnx__graph_proto__init(gp);
    onnx__operator_set_id_proto__init(ops);
    for (int i = 0; i < g->nvals; i++) {
        const cc_gvalue *v = &g->vals[i];
        if (v->kind == CC_VAL_INIT) {
            CC_TRY(export_init(ex, i));
        } else if (v->kind == CC_VAL_INPUT) {
            if (!(ins[gp->n_input++] = value_info(ex, v))) return OOM();
        }
    }
    for (int i = 0; i < g->nnodes; i++)
        CC_TRY(export_node(ex, &g->nodes[g->order[i]], &nodes[i]));
    for (int i = 0; i < g->noutputs; i++)
        if (!(outs[i] = value_info(ex, &g->vals[g->outputs[i]]))) return OOM();
    gp->name = "clcnn";
    gp->n_node = (size_t)g->nnodes;
    gp->node = nodes;
    gp->n_initializer = ex->ninits;
    gp->initializer = ex->inits;
    gp->input = ins;
    gp->n_output = (size_t)g->noutputs;
    gp->output = outs;
    ops->domain = "";
    ops->has_version = 1;
    ops->version = EXPORT_OPSET;
    opsv[0] = ops;
    m->has_ir_version = 1;
    m->ir_version = EXPORT_IR;
    m->n_opset_import = 1;
    m->opset_import = opsv;
    m->producer_name = "clcnn";
    m->producer_version = (char *)clcnn_version();
    m->graph = gp;
    return CLCNN_OK;
}

/* Build the model of g into m (its messages in ex's arena) and its packed size. */
static clcnn_status prepare(exporter *ex, const clcnn_graph *g, Onnx__ModelProto *m, size_t *size) {
    CC_RETURN_IF(!g->checked, CLCNN_ERR_INVALID_ARG,
                 "ONNX export: the graph is not checked (call clcnn_graph_check first)");
    ex->g = g;
    onnx__model_proto__init(m);
    CC_TRY(build_model(ex, m));
    *size = onnx__model_proto__get_packed_size(m);
    CC_RETURN_IF(*size > CC_ONNX_MAX_FILE - 1, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: the model is %zu bytes, more than protobuf's 2 GiB limit (clcnn "
                 "does not write external data)",
                 *size);
    return CLCNN_OK;
}

clcnn_status clcnn_graph_save_onnx_memory(const clcnn_graph *g, void **data, size_t *size) {
    CC_RETURN_IF(!g || !data || !size, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_save_onnx_memory: NULL argument");
    *data = NULL;
    *size = 0;
    exporter ex = {0};
    Onnx__ModelProto m;
    size_t n = 0;
    clcnn_status s = prepare(&ex, g, &m, &n);
    uint8_t *buf = s == CLCNN_OK ? malloc(n ? n : 1) : NULL;
    if (s == CLCNN_OK && !buf)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: no host memory for %zu bytes", n);
    if (s == CLCNN_OK && onnx__model_proto__pack(&m, buf) != n) {
        free(buf);
        s = cc_fail(CLCNN_ERR_INVALID_ARG, "ONNX export: packed size differs (internal)");
    }
    ex_free(&ex);
    free(ex.inits);
    if (s != CLCNN_OK) return s;
    *data = buf;
    *size = n;
    return CLCNN_OK;
}

/* ---- files: written to a temporary name beside path, then renamed ------------------- */

typedef struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    int err; /* errno of the first failed write */
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_sink *s = (file_sink *)b;
    if (s->err || !len) return;
    if (cc_fault_hit(CC_FAULT_FILE_WRITE))
        s->err = EIO;
    else if (fwrite(data, 1, len, s->f) != len)
        s->err = errno ? errno : EIO;
}

/* Stream m into a new file beside path and rename it over path; on any failure the
 * temporary file is removed and path is left as it was. */
static clcnn_status write_atomic(const Onnx__ModelProto *m, const char *path) {
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    CC_RETURN_IF(!tmp, CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: out of host memory");
    snprintf(tmp, cap, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        clcnn_status s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot create a file beside '%s': %s",
                                 path, strerror(errno));
        free(tmp);
        return s;
    }
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a model is no secret */
    file_sink sink = {{sink_append}, fdopen(fd, "wb"), 0};
    if (!sink.f) {
        sink.err = errno;
        close(fd);
    } else {
        onnx__model_proto__pack_to_buffer(m, &sink.base);
        if (fflush(sink.f) != 0 && !sink.err) sink.err = errno;
        if (fsync(fileno(sink.f)) != 0 && !sink.err) sink.err = errno;
        if (fclose(sink.f) != 0 && !sink.err) sink.err = errno;
    }
    clcnn_status s = CLCNN_OK;
    if (sink.err)
        s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot write '%s': %s", tmp, strerror(sink.err));
    else if (rename(tmp, path) != 0)
        s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot rename '%s' to '%s': %s", tmp, path,
                    strerror(errno));
    if (s != CLCNN_OK) {
        unlink(tmp);
        cc_fail_append(s, " ('%s' left as it was)", path);
    } else {
        cc_fsync_dir_of(path);
    }
    free(tmp);
    return s;
}

clcnn_status clcnn_graph_save_onnx(const clcnn_graph *g, const char *path) {
    CC_RETURN_IF(!g || !path || !*path, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_save_onnx: NULL or empty argument");
    exporter ex = {0};
    Onnx__ModelProto m;
    size_t n = 0;
    clcnn_status s = prepare(&ex, g, &m, &n);
    if (s == CLCNN_OK) s = write_atomic(&m, path);
    ex_free(&ex);
    free(ex.inits);
    return s;
}

clcnn_status clcnn_onnx_save_tensor(const char *path, const char *name, clcnn_dtype dtype, int ndim,
                                    const int64_t *dims, const void *data) {
    CC_RETURN_IF(!path || !data || (ndim > 0 && !dims), CLCNN_ERR_INVALID_ARG,
                 "clcnn_onnx_save_tensor: NULL argument");
    CC_RETURN_IF(ndim < 0 || ndim > CLCNN_GRAPH_MAX_DIMS, CLCNN_ERR_SHAPE,
                 "clcnn_onnx_save_tensor: %d dimensions", ndim);
    CC_RETURN_IF(dtype != CLCNN_F32 && dtype != CLCNN_I32 && dtype != CLCNN_I64,
                 CLCNN_ERR_UNSUPPORTED, "clcnn_onnx_save_tensor: dtype %d", (int)dtype);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        CC_RETURN_IF(dims[d] < 0 || (dims[d] && numel > CC_ONNX_MAX_ELEMS / (uint64_t)dims[d]),
                     CLCNN_ERR_SHAPE, "clcnn_onnx_save_tensor: dimension %d is %lld", d,
                     (long long)dims[d]);
        numel *= (size_t)dims[d];
    }
    exporter ex = {0};
    Onnx__TensorProto *t = tensor_msg(&ex, name ? name : "", dtype, ndim, dims, data, numel);
    clcnn_status s = CLCNN_OK;
    if (!t) s = OOM();
    FILE *f = s == CLCNN_OK ? fopen(path, "wb") : NULL;
    if (s == CLCNN_OK && !f)
        s = cc_fail(CLCNN_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    if (f) {
        file_sink sink = {{sink_append}, f, 0};
        onnx__tensor_proto__pack_to_buffer(t, &sink.base);
        if (fclose(f) != 0 && !sink.err) sink.err = errno;
        if (sink.err) {
            s = cc_fail(CLCNN_ERR_IO, "cannot write '%s': %s", path, strerror(sink.err));
            unlink(path);
        }
    }
    ex_free(&ex);
    return s;
}
