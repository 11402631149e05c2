/* ONNX import: a ModelProto (parsed by protobuf-c after a bounded wire scan) to a graph.
 * Opsets come from opset_import; initializers listed as graph inputs too (IR 3) stay
 * initializers; Constant nodes and the int64 shape sub-graphs exporters emit are folded on
 * the host (onnx_fold.c), with the symbolic batch carried through them; every other node
 * becomes a graph node of the same op type and attributes, its shapes inferred as it is
 * added so that folding can read them. A first input dimension that is symbolic (or 0)
 * becomes CLCNN_GRAPH_BATCH. Errors name the node or tensor. */
#include "graph/onnx_internal.h"

#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct cst {
    char *name;
    cc_htensor t;
    int in_graph; /* added to the graph as an initializer */
} cst;

typedef struct importer {
    clcnn_graph *g;
    const char *base_dir;
    int opset;
    cst *c;
    int nc, capc;
    int next_name;
} importer;

static cst *find_const(importer *im, const char *name) {
    for (int i = im->nc - 1; i >= 0; i--)
        if (!strcmp(im->c[i].name, name)) return &im->c[i];
    return NULL;
}

/* Take ownership of t as the constant `name`. */
static clcnn_status add_const(importer *im, const char *name, cc_htensor *t) {
    if (im->nc == im->capc) {
        int cap = im->capc ? 2 * im->capc : 64;
        cst *c = realloc(im->c, (size_t)cap * sizeof *c);
        if (!c) {
            cc_htensor_free(t);
            return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX import: out of host memory");
        }
        im->c = c;
        im->capc = cap;
    }
    cst *c = &im->c[im->nc];
    c->name = strdup(name);
    if (!c->name) {
        cc_htensor_free(t);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX import: out of host memory");
    }
    c->t = *t;
    c->in_graph = 0;
    memset(t, 0, sizeof *t);
    im->nc++;
    return CLCNN_OK;
}

static void free_importer(importer *im) {
    for (int i = 0; i < im->nc; i++) {
        free(im->c[i].name);
        cc_htensor_free(&im->c[i].t);
    }
    free(im->c);
}

/* A constant a device node reads becomes a graph initializer (once); float data leaves
 * the importer then (the graph holds its copy). */
static clcnn_status materialise(importer *im, cst *c) {
    if (c->in_graph) return CLCNN_OK;
    CC_RETURN_IF(c->t.dtype == CLCNN_I64 && c->t.numel > 0 &&
                     ((int64_t *)c->t.data)[0] == CC_ONNX_BATCH && c->t.ndim == 0,
                 CLCNN_ERR_UNSUPPORTED, "constant '%s' is the symbolic batch size", c->name);
    CC_TRY(
        clcnn_graph_add_initializer(im->g, c->name, c->t.dtype, c->t.ndim, c->t.dims, c->t.data));
    c->in_graph = 1;
    return CLCNN_OK;
}

/* ---- graph inputs --------------------------------------------------------------------- */

static clcnn_status add_inputs(importer *im, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *v = gp->input[i];
        CC_RETURN_IF(!v || !v->name || !*v->name, CLCNN_ERR_FORMAT, "graph input %zu has no name",
                     i);
        if (find_const(im, v->name)) continue; /* IR 3: an initializer listed as an input */
        const Onnx__TypeProto *tp = v->type;
        CC_RETURN_IF(!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
                         !tp->tensor_type,
                     CLCNN_ERR_UNSUPPORTED, "graph input '%s' is not a tensor", v->name);
        const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
        int32_t et = tt->has_elem_type ? tt->elem_type : 0;
        CC_RETURN_IF(et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, CLCNN_ERR_UNSUPPORTED,
                     "graph input '%s' has element type %s (float is supported)", v->name,
                     cc_onnx_type_name(et));
        CC_RETURN_IF(!tt->shape, CLCNN_ERR_UNSUPPORTED, "graph input '%s' has no shape", v->name);
        CC_RETURN_IF(tt->shape->n_dim > CLCNN_GRAPH_MAX_DIMS, CLCNN_ERR_UNSUPPORTED,
                     "graph input '%s' has %zu dimensions", v->name, tt->shape->n_dim);
        int64_t dims[CLCNN_GRAPH_MAX_DIMS];
        for (size_t d = 0; d < tt->shape->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
            int known = dm &&
                        dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                        dm->dim_value > 0;
            if (known) {
                CC_RETURN_IF(dm->dim_value > ((int64_t)1 << 31), CLCNN_ERR_FORMAT,
                             "graph input '%s': dimension %zu is %lld", v->name, d,
                             (long long)dm->dim_value);
                dims[d] = dm->dim_value;
            } else {
                CC_RETURN_IF(
                    d != 0, CLCNN_ERR_UNSUPPORTED,
                    "graph input '%s': dimension %zu ('%s') is symbolic; only the first "
                    "(the batch) may be",
                    v->name, d,
                    dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                            dm->dim_param
                        ? dm->dim_param
                        : "?");
                dims[d] = CLCNN_GRAPH_BATCH;
            }
        }
        CC_TRY(clcnn_graph_add_input(im->g, v->name, CLCNN_F32, (int)tt->shape->n_dim, dims));
    }
    return CLCNN_OK;
}

/* ---- nodes ----------------------------------------------------------------------------- */

static clcnn_status constant_node(importer *im, const Onnx__NodeProto *n, const char *name) {
    CC_RETURN_IF(n->n_output < 1 || !n->output[0] || !*n->output[0], CLCNN_ERR_FORMAT,
                 "node '%s' (Constant) has no output", name);
    cc_htensor t = {0};
    const Onnx__AttributeProto *a;
    if ((a = cc_onnx_attr(n, "value")) && a->t) {
        CC_TRY(cc_onnx_tensor(a->t, im->base_dir, &t));
        t.ndim = (int)a->t->n_dims; /* scalars stay rank 0 */
    } else if ((a = cc_onnx_attr(n, "value_float")) || (a = cc_onnx_attr(n, "value_int")) ||
               (a = cc_onnx_attr(n, "value_floats")) || (a = cc_onnx_attr(n, "value_ints"))) {
        int is_float = strstr(a->name, "float") != NULL, list = a->name[strlen(a->name) - 1] == 's';
        size_t count = list ? (is_float ? a->n_floats : a->n_ints) : 1;
        CC_RETURN_IF(count == 0, CLCNN_ERR_UNSUPPORTED, "node '%s' (Constant) is empty", name);
        t.dtype = is_float ? CLCNN_F32 : CLCNN_I64;
        t.ndim = list ? 1 : 0;
        t.dims[0] = (int64_t)count;
        t.numel = count;
        t.data = malloc(count * 8);
        CC_RETURN_IF(!t.data, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        for (size_t i = 0; i < count; i++) {
            if (is_float)
                ((float *)t.data)[i] = list ? a->floats[i] : a->f;
            else
                ((int64_t *)t.data)[i] = list ? a->ints[i] : a->i;
        }
    } else {
        return cc_fail(CLCNN_ERR_UNSUPPORTED,
                       "node '%s' (Constant) holds no tensor, float or int value (sparse and "
                       "string constants are not supported)",
                       name);
    }
    return add_const(im, n->output[0], &t);
}

/* Shape of a graph value (the batch as CC_ONNX_BATCH), honouring start/end (opset 15). */
static int shape_of(importer *im, const Onnx__NodeProto *n, const char *value, cc_htensor *out) {
    int vi = cc_graph_find(im->g, value);
    if (vi < 0 || im->g->vals[vi].ndim < 0) return 0;
    const cc_gvalue *v = &im->g->vals[vi];
    int64_t start = 0, end = v->ndim;
    const Onnx__AttributeProto *a;
    if ((a = cc_onnx_attr(n, "start")) && a->has_i) start = a->i;
    if ((a = cc_onnx_attr(n, "end")) && a->has_i) end = a->i;
    if (start < 0) start += v->ndim;
    if (end < 0) end += v->ndim;
    start = start < 0 ? 0 : start > v->ndim ? v->ndim : start;
    end = end < 0 ? 0 : end > v->ndim ? v->ndim : end;
    if (end <= start) return 0;
    memset(out, 0, sizeof *out);
    out->dtype = CLCNN_I64;
    out->ndim = 1;
    out->dims[0] = end - start;
    out->numel = (size_t)(end - start);
    out->data = malloc(out->numel * 8);
    if (!out->data) return -1;
    for (int64_t d = start; d < end; d++)
        ((int64_t *)out->data)[d - start] =
            v->dims[d] == CLCNN_GRAPH_BATCH ? CC_ONNX_BATCH : v->dims[d];
    return 1;
}

/* Fold n on the host when its inputs are constants (Shape: a value of known shape).
 * 1 folded, 0 not, <0 error. */
static int try_fold(importer *im, const Onnx__NodeProto *n, const char *op) {
    if (n->n_output < 1 || !n->output[0] || !*n->output[0] || n->n_input > 16) return 0;
    cc_htensor out = {0};
    int r;
    if (!strcmp(op, "Shape")) {
        if (n->n_input != 1 || !n->input[0]) return 0;
        r = shape_of(im, n, n->input[0], &out);
    } else {
        cc_htensor *in[16] = {0};
        for (size_t i = 0; i < n->n_input; i++) {
            if (!n->input[i] || !*n->input[i]) continue;
            cst *c = find_const(im, n->input[i]);
            if (!c || !c->t.data) return 0;
            in[i] = &c->t;
        }
        r = cc_onnx_fold(op, n, im->opset, in, (int)n->n_input, &out, (int)n->n_output);
    }
    if (r <= 0) return r;
    return add_const(im, n->output[0], &out) == CLCNN_OK ? 1 : -1;
}

static clcnn_status convert_attrs(const Onnx__NodeProto *n, const char *name, clcnn_attr *attrs,
                                  char (*strs)[256], int *count) {
    *count = 0;
    for (size_t i = 0; i < n->n_attribute && i < 32; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        if (!a || !a->name) continue;
        clcnn_attr *d = &attrs[*count];
        memset(d, 0, sizeof *d);
        d->name = a->name;
        switch (a->has_type ? a->type : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
            d->type = CLCNN_ATTR_FLOAT;
            d->f = a->f;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
            d->type = CLCNN_ATTR_INT;
            d->i = a->i;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
            d->type = CLCNN_ATTR_STRING;
            size_t len = a->s.len < 255 ? a->s.len : 255;
            if (len) memcpy(strs[*count], a->s.data, len);
            strs[*count][len] = '\0';
            d->s = strs[*count];
            break;
        }
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            CC_RETURN_IF(a->n_floats > 4096, CLCNN_ERR_FORMAT,
                         "node '%s': attribute '%s' has %zu values", name, a->name, a->n_floats);
            d->type = CLCNN_ATTR_FLOATS;
            d->floats = a->floats;
            d->n = (int)a->n_floats;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            CC_RETURN_IF(a->n_ints > 4096, CLCNN_ERR_FORMAT,
                         "node '%s': attribute '%s' has %zu values", name, a->name, a->n_ints);
            d->type = CLCNN_ATTR_INTS;
            d->ints = a->ints;
            d->n = (int)a->n_ints;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
            return cc_fail(CLCNN_ERR_UNSUPPORTED,
                           "node '%s': attribute '%s' holds a sub-graph (control flow is not "
                           "supported)",
                           name, a->name);
        default:
            return cc_fail(CLCNN_ERR_UNSUPPORTED,
                           "node '%s': attribute '%s' has an unsupported type", name, a->name);
        }
        (*count)++;
    }
    return CLCNN_OK;
}

/* Opset-dependent meanings the graph's op table does not know about. */
static clcnn_status opset_rules(importer *im, const Onnx__NodeProto *n, const char *op,
                                const char *name, clcnn_attr *attrs, int *na) {
    int is_softmax = !strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax");
    if (is_softmax && im->opset < 13) {
        /* before 13: flatten to 2-D at axis (default 1), softmax over the second part; the
         * same as 13's softmax over one axis when that axis is the last */
        int64_t axis = 1;
        for (int i = 0; i < *na; i++)
            if (!strcmp(attrs[i].name, "axis")) axis = attrs[i].i;
        int vi = n->n_input ? cc_graph_find(im->g, n->input[0]) : -1;
        int rank = vi >= 0 ? im->g->vals[vi].ndim : -1;
        if (axis < 0) axis += rank;
        CC_RETURN_IF(rank < 0 || axis != rank - 1, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (%s, opset %d): softmax over the flattened dimensions %lld.. of "
                     "a %d-d input is not supported",
                     name, op, im->opset, (long long)axis, rank);
        int found = 0;
        for (int i = 0; i < *na; i++)
            if (!strcmp(attrs[i].name, "axis")) attrs[i].i = axis, found = 1;
        if (!found && *na < 32)
            attrs[(*na)++] = (clcnn_attr){"axis", CLCNN_ATTR_INT, axis, 0.0f, NULL, NULL, 0, NULL};
    }
    return CLCNN_OK;
}

static clcnn_status graph_node(importer *im, const Onnx__NodeProto *n, const char *op,
                               const char *name) {
    CC_RETURN_IF(n->n_input > 64 || n->n_output > 16, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (%s) has %zu inputs and %zu outputs", name, op, n->n_input,
                 n->n_output);
    const char *ins[64], *outs[16];
    char gen[16][64];
    if (!strcmp(op, "PRelu") && im->opset < 7 && n->n_input == 2) {
        /* before opset 7 a 1-D slope of C values is per channel (dimension 1), as PyTorch
         * exports it; since 7 it broadcasts from the right like every other operand */
        cst *c = find_const(im, n->input[1]);
        int vi = cc_graph_find(im->g, n->input[0]);
        if (c && !c->in_graph && c->t.ndim == 1 && vi >= 0 && im->g->vals[vi].ndim > 2 &&
            (int64_t)c->t.numel == im->g->vals[vi].dims[1]) {
            c->t.ndim = im->g->vals[vi].ndim - 1;
            for (int d = 1; d < c->t.ndim; d++)
                c->t.dims[d] = 1;
        }
    }

    /* Dropout's ratio is an input from opset 12; a constant one becomes the attribute of
     * the older opsets, which the graph keeps (and ONNX export writes back as the input) */
    size_t n_in = n->n_input;
    float ratio = 0.0f;
    cst *rc = !strcmp(op, "Dropout") && n_in == 2 && n->input[1] && *n->input[1]
                  ? find_const(im, n->input[1])
                  : NULL;
    if (rc && rc->t.dtype == CLCNN_F32 && rc->t.numel == 1 && !cc_onnx_attr(n, "ratio")) {
        ratio = ((const float *)rc->t.data)[0];
        n_in = 1;
    }
    for (size_t i = 0; i < n_in; i++) {
        ins[i] = n->input[i] ? n->input[i] : "";
        if (!*ins[i]) continue;
        cst *c = find_const(im, ins[i]);
        if (c) CC_TRY(materialise(im, c));
    }
    int n_out = (int)n->n_output;
    while (n_out > 1 && (!n->output[n_out - 1] || !*n->output[n_out - 1]))
        n_out--;
    for (int i = 0; i < n_out; i++) {
        outs[i] = n->output[i];
        if (!outs[i] || !*outs[i]) {
            snprintf(gen[i], sizeof gen[i], "%s.unused%d", name, i);
            outs[i] = gen[i];
        }
    }
    clcnn_attr attrs[34];
    char strs[34][256];
    int na = 0;
    CC_TRY(convert_attrs(n, name, attrs, strs, &na));
    CC_TRY(opset_rules(im, n, op, name, attrs, &na));
    if (n_in < n->n_input && na < 34)
        attrs[na++] = (clcnn_attr){"ratio", CLCNN_ATTR_FLOAT, 0, ratio, NULL, NULL, 0, NULL};
    clcnn_status s = clcnn_graph_add_node(im->g, op, name, (int)n_in, ins, n_out, outs, na, attrs);
    if (s != CLCNN_OK) return s;
    return cc_graph_infer_node(im->g, im->g->nnodes - 1);
}

static clcnn_status import_graph(importer *im, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        CC_RETURN_IF(!t || !t->name || !*t->name, CLCNN_ERR_FORMAT, "initializer %zu has no name",
                     i);
        CC_RETURN_IF(find_const(im, t->name), CLCNN_ERR_FORMAT, "initializer '%s' is given twice",
                     t->name);
        cc_htensor h;
        CC_TRY(cc_onnx_tensor(t, im->base_dir, &h));
        CC_TRY(add_const(im, t->name, &h));
    }
    CC_RETURN_IF(gp->n_sparse_initializer, CLCNN_ERR_UNSUPPORTED,
                 "the model has sparse initializers");
    CC_TRY(add_inputs(im, gp));
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *n = gp->node[i];
        CC_RETURN_IF(!n || !n->op_type || !*n->op_type, CLCNN_ERR_FORMAT, "node %zu has no op type",
                     i);
        char gen[64];
        const char *name = n->name && *n->name ? n->name : NULL;
        if (!name) {
            snprintf(gen, sizeof gen, "%s_%zu", n->op_type, i);
            name = gen;
        }
        const char *dom = n->domain && *n->domain ? n->domain : "";
        CC_RETURN_IF(*dom && strcmp(dom, "ai.onnx"), CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (%s) is in domain '%s' (only the default ONNX domain is "
                     "supported)",
                     name, n->op_type, dom);
        for (size_t k = 0; k < n->n_output; k++)
            if (n->output[k] && *n->output[k])
                CC_RETURN_IF(find_const(im, n->output[k]) ||
                                 cc_graph_find(im->g, n->output[k]) >= 0,
                             CLCNN_ERR_FORMAT,
                             "node '%s' (%s) writes '%s', which another node or initializer "
                             "already defines",
                             name, n->op_type, n->output[k]);
        CC_RETURN_IF(im->opset < 0, CLCNN_ERR_FORMAT,
                     "node '%s' (%s) is in the default ONNX domain, which the model does not "
                     "import (opset_import)",
                     name, n->op_type);
        if (!strcmp(n->op_type, "Constant")) {
            CC_TRY(constant_node(im, n, name));
            continue;
        }
        int r = try_fold(im, n, n->op_type);
        CC_RETURN_IF(r < 0, CLCNN_ERR_OUT_OF_MEMORY, "node '%s' (%s): folding failed: %s", name,
                     n->op_type, clcnn_last_error());
        if (r > 0) continue;
        clcnn_status s = graph_node(im, n, n->op_type, name);
        if (s != CLCNN_OK) {
            if (!strstr(clcnn_last_error(), name))
                cc_fail_append(s, " (node '%s', %s)", name, n->op_type);
            return s;
        }
    }
    CC_RETURN_IF(gp->n_output == 0, CLCNN_ERR_FORMAT, "the graph has no outputs");
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *v = gp->output[i];
        CC_RETURN_IF(!v || !v->name || !*v->name, CLCNN_ERR_FORMAT, "graph output %zu has no name",
                     i);
        CC_RETURN_IF(find_const(im, v->name) && cc_graph_find(im->g, v->name) < 0,
                     CLCNN_ERR_UNSUPPORTED, "graph output '%s' is a constant", v->name);
        CC_TRY(clcnn_graph_add_output(im->g, v->name));
    }
    return clcnn_graph_check(im->g);
}

static clcnn_status read_opsets(importer *im, const Onnx__ModelProto *m) {
    im->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o) continue;
        const char *dom = o->domain ? o->domain : "";
        if (*dom && strcmp(dom, "ai.onnx")) continue; /* checked per node that uses it */
        CC_RETURN_IF(!o->has_version || o->version < 1, CLCNN_ERR_FORMAT,
                     "opset_import of the default domain has no valid version");
        CC_RETURN_IF(o->version > CC_ONNX_MAX_OPSET, CLCNN_ERR_UNSUPPORTED,
                     "the model uses opset %lld of the default ONNX domain; clcnn supports up to "
                     "%d",
                     (long long)o->version, CC_ONNX_MAX_OPSET);
        im->opset = (int)o->version;
    }
    /* IR 1-2 have no opset_import: opset 1. A later model without the default domain
     * fails at its first default-domain node (other domains' nodes are unsupported). */
    if (im->opset < 0 && !(m->has_ir_version && m->ir_version >= 3)) im->opset = 1;
    return CLCNN_OK;
}

clcnn_status clcnn_graph_load_onnx_memory(const void *data, size_t size, const char *base_dir,
                                          clcnn_graph **out) {
    CC_RETURN_IF(!data || !out, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_load_onnx_memory: NULL argument");
    *out = NULL;
    CC_RETURN_IF(size == 0, CLCNN_ERR_FORMAT, "the ONNX model is empty");
    CC_TRY(cc_onnx_check_wire(data, size));
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    CC_RETURN_IF(!m, CLCNN_ERR_FORMAT, "not an ONNX model (malformed protobuf)");
    importer im = {0};
    im.base_dir = base_dir;
    clcnn_status s = read_opsets(&im, m);
    if (s == CLCNN_OK && !m->graph) s = cc_fail(CLCNN_ERR_FORMAT, "the ONNX model has no graph");
    if (s == CLCNN_OK) s = clcnn_graph_create(&im.g);
    if (s == CLCNN_OK) s = import_graph(&im, m->graph);
    onnx__model_proto__free_unpacked(m, NULL);
    free_importer(&im);
    if (s != CLCNN_OK) {
        clcnn_graph_free(im.g);
        return s;
    }
    *out = im.g;
    return CLCNN_OK;
}

clcnn_status clcnn_graph_load_onnx(const char *path, clcnn_graph **out) {
    CC_RETURN_IF(!path || !out, CLCNN_ERR_INVALID_ARG, "clcnn_graph_load_onnx: NULL argument");
    *out = NULL;
    unsigned char *buf = NULL;
    size_t size = 0;
    CC_TRY(cc_read_file(path, CC_ONNX_MAX_FILE, &buf, &size));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    clcnn_status s = clcnn_graph_load_onnx_memory(buf, size, dirname(dir), out);
    free(buf);
    if (s != CLCNN_OK) return cc_fail_append(s, " (loading '%s')", path);
    return CLCNN_OK;
}
