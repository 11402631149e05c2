/* ONNX export of one node (the model around it: lib/graph/onnx_export.c): its name, inputs,
 * outputs and attributes as opset 17 spells them.
 *
 * The graph keeps attributes as they were given, so a graph imported from an older opset
 * may hold forms that opset 17 spells differently. Those this file knows are rewritten
 * (attribute to input: Squeeze/Unsqueeze/ReduceSum axes, Split split, Slice
 * starts/ends/axes, Pad pads/value, Clip min/max, Dropout ratio; Resize-10 and Upsample
 * to Resize with the same coordinate rule); attributes the graph ignores are dropped; any
 * other attribute opset 17 does not define is refused, naming the node. Dropout goes out
 * in its inference form (no training_mode input). */
#include "graph/onnx_export_internal.h"

#include <stdio.h>
#include <string.h>

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
    char *name = cc_ex_alloc(ex, cap);
    if (!name) return NULL;
    snprintf(name, cap, "%s.%s", n->name, attr);
    for (int k = 1; cc_graph_find(ex->g, name) >= 0 || cc_ex_init_named(ex, name); k++)
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
        t = cc_ex_tensor_msg(ex, name, CLCNN_I64, 1, &len, a->ints, (size_t)a->n);
    else if (a->type == CLCNN_ATTR_FLOATS)
        t = cc_ex_tensor_msg(ex, name, CLCNN_F32, 1, &len, a->floats, (size_t)a->n);
    else if (a->type == CLCNN_ATTR_FLOAT)
        t = cc_ex_tensor_msg(ex, name, CLCNN_F32, 0, NULL, &a->f, 1);
    else
        return cc_fail(CLCNN_ERR_UNSUPPORTED,
                       "ONNX export: node '%s' (%s): attribute '%s' has an unexpected type",
                       n->name, node_op(n), a->name);
    CC_TRY(cc_ex_add_init_msg(ex, t));
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

clcnn_status cc_ex_export_node(exporter *ex, const cc_gnode *n, Onnx__NodeProto **out) {
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
    char **ins = cc_ex_alloc(ex, (size_t)(o.n_in > 0 ? o.n_in : 1) * sizeof *ins);
    Onnx__AttributeProto **attrs =
        cc_ex_alloc(ex, (size_t)(o.nattrs ? o.nattrs : 1) * sizeof *attrs);
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
