/* The op-kind table of the graph: per ONNX op type, its arity, attribute parsing (ONNX
 * defaults, range checks naming the node) and shape inference. Descriptions and FLOPs for
 * listings come from the parsed attributes and inferred shapes. Forward code for each
 * kind lives in lib/exec under the same cc_op index. */
#include "graph/graph_internal.h"

#include <float.h>
#include <string.h>

const cc_gattr *cc_node_attr(const cc_gnode *n, const char *name) {
    for (int i = 0; i < n->nattrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

static clcnn_status attr_int(const cc_gnode *n, const char *name, int64_t def, int64_t *out) {
    const cc_gattr *a = cc_node_attr(n, name);
    *out = def;
    if (!a) return CLCNN_OK;
    CC_RETURN_IF(a->type != CLCNN_ATTR_INT, CLCNN_ERR_INVALID_ARG,
                 "node '%s': attribute '%s' must be an int", n->name, name);
    *out = a->i;
    return CLCNN_OK;
}

static clcnn_status attr_float(const cc_gnode *n, const char *name, float def, float *out) {
    const cc_gattr *a = cc_node_attr(n, name);
    *out = def;
    if (!a) return CLCNN_OK;
    CC_RETURN_IF(a->type != CLCNN_ATTR_FLOAT, CLCNN_ERR_INVALID_ARG,
                 "node '%s': attribute '%s' must be a float", n->name, name);
    *out = a->f;
    return CLCNN_OK;
}

/* ints attribute of exactly `count` values (when present), each >= min */
static clcnn_status attr_ints(const cc_gnode *n, const char *name, int count, int64_t min,
                              int64_t *out) {
    const cc_gattr *a = cc_node_attr(n, name);
    if (!a) return CLCNN_OK;
    CC_RETURN_IF(a->type != CLCNN_ATTR_INTS, CLCNN_ERR_INVALID_ARG,
                 "node '%s': attribute '%s' must be a list of ints", n->name, name);
    CC_RETURN_IF(a->n != count, CLCNN_ERR_UNSUPPORTED,
                 "node '%s': attribute '%s' has %d values; only 2-D (%d values) is supported",
                 n->name, name, a->n, count);
    for (int i = 0; i < count; i++) {
        CC_RETURN_IF(a->ints[i] < min || a->ints[i] > (1 << 20), CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute '%s'[%d] = %lld is out of range (%lld..%d)", n->name,
                     name, i, (long long)a->ints[i], (long long)min, 1 << 20);
        out[i] = a->ints[i];
    }
    return CLCNN_OK;
}

static void attrs_defaults(cc_op_attrs *a) {
    memset(a, 0, sizeof *a);
    a->strides[0] = a->strides[1] = 1;
    a->dilations[0] = a->dilations[1] = 1;
    a->group = 1;
    a->alpha = 1.0f;
    a->beta = 1.0f;
    a->epsilon = 1e-5f;
    a->momentum = 0.9f;
    a->axis = 1;
    a->ratio = 0.5f;
    a->clip_min = -FLT_MAX;
    a->clip_max = FLT_MAX;
}

void cc_op_attrs_defaults(cc_op_attrs *a) {
    attrs_defaults(a);
}

static clcnn_status parse_none(cc_gnode *n) {
    attrs_defaults(&n->a);
    return CLCNN_OK;
}

static clcnn_status parse_spatial(cc_gnode *n, int pool) {
    cc_op_attrs *a = &n->a;
    attrs_defaults(a);
    CC_TRY(attr_ints(n, "kernel_shape", 2, 1, a->kernel));
    CC_TRY(attr_ints(n, "strides", 2, 1, a->strides));
    CC_TRY(attr_ints(n, "pads", 4, 0, a->pads));
    CC_TRY(attr_ints(n, "dilations", 2, 1, a->dilations));
    const cc_gattr *ap = cc_node_attr(n, "auto_pad");
    if (ap) {
        CC_RETURN_IF(ap->type != CLCNN_ATTR_STRING, CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute 'auto_pad' must be a string", n->name);
        static const char *modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};
        a->auto_pad = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(ap->s, modes[i])) a->auto_pad = i;
        CC_RETURN_IF(a->auto_pad < 0, CLCNN_ERR_INVALID_ARG,
                     "node '%s': auto_pad '%s' is none of NOTSET, VALID, SAME_UPPER, SAME_LOWER",
                     n->name, ap->s);
    }
    if (pool) {
        CC_RETURN_IF(!cc_node_attr(n, "kernel_shape"), CLCNN_ERR_INVALID_ARG,
                     "node '%s': %s needs the attribute kernel_shape", n->name,
                     cc_op_defs[n->op].name);
        int64_t v;
        CC_TRY(attr_int(n, "ceil_mode", 0, &v));
        a->ceil_mode = v != 0;
        CC_TRY(attr_int(n, "count_include_pad", 0, &v));
        a->count_include_pad = v != 0;
        CC_TRY(attr_int(n, "storage_order", 0, &v));
        CC_RETURN_IF(v != 0, CLCNN_ERR_UNSUPPORTED,
                     "node '%s': storage_order %lld is not supported", n->name, (long long)v);
    } else {
        CC_TRY(attr_int(n, "group", 1, &a->group));
        CC_RETURN_IF(a->group < 1, CLCNN_ERR_INVALID_ARG, "node '%s': group %lld must be >= 1",
                     n->name, (long long)a->group);
    }
    return CLCNN_OK;
}

static clcnn_status parse_conv(cc_gnode *n) {
    return parse_spatial(n, 0);
}

clcnn_status cc_parse_conv(cc_gnode *n) {
    return parse_spatial(n, 0);
}

static clcnn_status parse_pool(cc_gnode *n) {
    return parse_spatial(n, 1);
}

static clcnn_status parse_batchnorm(cc_gnode *n) {
    attrs_defaults(&n->a);
    CC_TRY(attr_float(n, "epsilon", 1e-5f, &n->a.epsilon));
    CC_TRY(attr_float(n, "momentum", 0.9f, &n->a.momentum));
    CC_RETURN_IF(!(n->a.epsilon > 0.0f), CLCNN_ERR_INVALID_ARG, "node '%s': epsilon %g must be > 0",
                 n->name, n->a.epsilon);
    int64_t training = 0;
    CC_TRY(attr_int(n, "training_mode", 0, &training));
    CC_RETURN_IF(training != 0, CLCNN_ERR_UNSUPPORTED,
                 "node '%s': BatchNormalization with training_mode 1 is not supported", n->name);
    return CLCNN_OK;
}

static clcnn_status parse_leaky(cc_gnode *n) {
    attrs_defaults(&n->a);
    return attr_float(n, "alpha", 0.01f, &n->a.alpha);
}

static clcnn_status parse_axis(cc_gnode *n, int64_t def, int required) {
    attrs_defaults(&n->a);
    CC_RETURN_IF(required && !cc_node_attr(n, "axis"), CLCNN_ERR_INVALID_ARG,
                 "node '%s': %s needs the attribute axis", n->name, cc_op_defs[n->op].name);
    return attr_int(n, "axis", def, &n->a.axis);
}

static clcnn_status parse_concat(cc_gnode *n) {
    return parse_axis(n, 0, 1);
}

static clcnn_status parse_flatten(cc_gnode *n) {
    return parse_axis(n, 1, 0);
}

static clcnn_status parse_softmax(cc_gnode *n) {
    return parse_axis(n, -1, 0);
}

static clcnn_status parse_gemm(cc_gnode *n) {
    attrs_defaults(&n->a);
    int64_t ta, tb;
    CC_TRY(attr_float(n, "alpha", 1.0f, &n->a.alpha));
    CC_TRY(attr_float(n, "beta", 1.0f, &n->a.beta));
    CC_TRY(attr_int(n, "transA", 0, &ta));
    CC_TRY(attr_int(n, "transB", 0, &tb));
    n->a.trans_a = ta != 0;
    n->a.trans_b = tb != 0;
    return CLCNN_OK;
}

static clcnn_status parse_dropout(cc_gnode *n) {
    attrs_defaults(&n->a);
    CC_TRY(attr_float(n, "ratio", 0.5f, &n->a.ratio));
    CC_RETURN_IF(!(n->a.ratio >= 0.0f && n->a.ratio < 1.0f), CLCNN_ERR_INVALID_ARG,
                 "node '%s': dropout ratio %g must be in [0, 1)", n->name, n->a.ratio);
    return CLCNN_OK;
}

/* ---- shape inference ------------------------------------------------------------------- */

static cc_gvalue *out_val(clcnn_graph *g, const cc_gnode *n, int i) {
    return &g->vals[n->out[i]];
}

static clcnn_status need_rank(const clcnn_graph *g, const cc_gnode *n, int i, int rank) {
    const cc_gvalue *v = cc_node_in(g, n, i);
    char b[96];
    CC_RETURN_IF(!v, CLCNN_ERR_INVALID_ARG, "node '%s' (%s): input %d is missing", n->name,
                 cc_op_defs[n->op].name, i);
    CC_RETURN_IF(rank > 0 && v->ndim != rank, CLCNN_ERR_SHAPE,
                 "node '%s' (%s): input '%s' is %s, expected %d dimensions", n->name,
                 cc_op_defs[n->op].name, v->name, cc_graph_shape_str(v->dims, v->ndim, b, sizeof b),
                 rank);
    return CLCNN_OK;
}

static void set_out(clcnn_graph *g, const cc_gnode *n, int i, int ndim, const int64_t *dims) {
    cc_gvalue *y = out_val(g, n, i);
    y->ndim = ndim;
    memcpy(y->dims, dims, (size_t)ndim * sizeof *dims);
}

static clcnn_status infer_same(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 0));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    for (int i = 0; i < n->n_out; i++)
        set_out(g, n, i, x->ndim, x->dims);
    return CLCNN_OK;
}

/* Output size of one spatial dim, resolving auto_pad into pads[lo], pads[hi]. */
static clcnn_status spatial_out(cc_gnode *n, int d, int64_t in, int64_t k, int64_t *out) {
    cc_op_attrs *a = &n->a;
    int64_t s = a->strides[d], dil = a->dilations[d];
    int64_t ek = dil * (k - 1) + 1;
    if (a->auto_pad == 1) {
        a->pads[d] = a->pads[d + 2] = 0;
    } else if (a->auto_pad >= 2) {
        int64_t o = (in + s - 1) / s;
        int64_t total = (o - 1) * s + ek - in;
        if (total < 0) total = 0;
        int64_t small = total / 2, big = total - small;
        a->pads[d] = a->auto_pad == 2 ? small : big;
        a->pads[d + 2] = a->auto_pad == 2 ? big : small;
    }
    int64_t span = in + a->pads[d] + a->pads[d + 2] - ek;
    CC_RETURN_IF(span < 0, CLCNN_ERR_SHAPE,
                 "node '%s' (%s): kernel extent %lld is larger than the padded input %lld "
                 "(dimension %d)",
                 n->name, cc_op_defs[n->op].name, (long long)ek,
                 (long long)(in + a->pads[d] + a->pads[d + 2]), d + 2);
    int64_t o = a->ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    /* PyTorch's rule: the last window must start inside the input or left padding */
    if (a->ceil_mode && (o - 1) * s >= in + a->pads[d]) o--;
    *out = o;
    return CLCNN_OK;
}

static clcnn_status infer_conv(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 4));
    CC_TRY(need_rank(g, n, 1, 4));
    const cc_gvalue *x = cc_node_in(g, n, 0), *w = cc_node_in(g, n, 1), *b = cc_node_in(g, n, 2);
    char bx[96], bw[96];
    int64_t c = x->dims[1], k = w->dims[0], grp = n->a.group;
    CC_RETURN_IF(c % grp || k % grp || w->dims[1] * grp != c, CLCNN_ERR_SHAPE,
                 "node '%s' (Conv): input %s and weights %s do not fit group %lld", n->name,
                 cc_graph_shape_str(x->dims, 4, bx, sizeof bx),
                 cc_graph_shape_str(w->dims, 4, bw, sizeof bw), (long long)grp);
    for (int d = 0; d < 2; d++)
        CC_RETURN_IF(n->a.kernel[d] && n->a.kernel[d] != w->dims[2 + d], CLCNN_ERR_SHAPE,
                     "node '%s' (Conv): kernel_shape %lldx%lld differs from the weights %s",
                     n->name, (long long)n->a.kernel[0], (long long)n->a.kernel[1],
                     cc_graph_shape_str(w->dims, 4, bw, sizeof bw));
    if (b)
        CC_RETURN_IF(b->ndim != 1 || b->dims[0] != k, CLCNN_ERR_SHAPE,
                     "node '%s' (Conv): bias %s does not match %lld output channels", n->name,
                     cc_graph_shape_str(b->dims, b->ndim, bx, sizeof bx), (long long)k);
    n->a.kernel[0] = w->dims[2];
    n->a.kernel[1] = w->dims[3];
    int64_t y[4] = {x->dims[0], k, 0, 0};
    for (int d = 0; d < 2; d++)
        CC_TRY(spatial_out(n, d, x->dims[2 + d], w->dims[2 + d], &y[2 + d]));
    set_out(g, n, 0, 4, y);
    return CLCNN_OK;
}

static clcnn_status infer_pool(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 4));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    int64_t y[4] = {x->dims[0], x->dims[1], 0, 0};
    for (int d = 0; d < 2; d++) {
        CC_RETURN_IF(n->a.pads[d] >= n->a.kernel[d] || n->a.pads[d + 2] >= n->a.kernel[d],
                     CLCNN_ERR_SHAPE, "node '%s' (%s): padding must be smaller than the kernel",
                     n->name, cc_op_defs[n->op].name);
        CC_TRY(spatial_out(n, d, x->dims[2 + d], n->a.kernel[d], &y[2 + d]));
    }
    for (int i = 0; i < n->n_out; i++)
        set_out(g, n, i, 4, y); /* MaxPool's Indices too */
    return CLCNN_OK;
}

static clcnn_status infer_global_pool(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 4));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    int64_t y[4] = {x->dims[0], x->dims[1], 1, 1};
    set_out(g, n, 0, 4, y);
    return CLCNN_OK;
}

static clcnn_status infer_batchnorm(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 0));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    CC_RETURN_IF(x->ndim < 2, CLCNN_ERR_SHAPE,
                 "node '%s' (BatchNormalization): input needs at least 2 dimensions", n->name);
    for (int i = 1; i < 5; i++) {
        CC_TRY(need_rank(g, n, i, 1));
        const cc_gvalue *p = cc_node_in(g, n, i);
        CC_RETURN_IF(p->dims[0] != x->dims[1], CLCNN_ERR_SHAPE,
                     "node '%s' (BatchNormalization): '%s' has %lld values for %lld channels",
                     n->name, p->name, (long long)p->dims[0], (long long)x->dims[1]);
    }
    set_out(g, n, 0, x->ndim, x->dims);
    for (int i = 1; i < n->n_out; i++)
        set_out(g, n, i, 1, &x->dims[1]);
    return CLCNN_OK;
}

/* NumPy broadcasting of the inputs (the batch dim broadcasts with 1 and itself). */
static clcnn_status infer_broadcast(clcnn_graph *g, cc_gnode *n) {
    int nd = 0;
    for (int i = 0; i < n->n_in; i++) {
        CC_TRY(need_rank(g, n, i, 0));
        if (cc_node_in(g, n, i)->ndim > nd) nd = cc_node_in(g, n, i)->ndim;
    }
    int64_t y[CC_GMAX];
    for (int d = 0; d < nd; d++)
        y[d] = 1;
    for (int i = 0; i < n->n_in; i++) {
        const cc_gvalue *v = cc_node_in(g, n, i);
        for (int d = 0; d < v->ndim; d++) {
            int64_t vd = v->dims[d], *yd = &y[nd - v->ndim + d];
            if (vd == 1 || vd == *yd) continue;
            if (*yd == 1) {
                *yd = vd;
                continue;
            }
            char b1[96], b2[96];
            return cc_fail(CLCNN_ERR_SHAPE,
                           "node '%s' (%s): input shapes %s and %s do not broadcast", n->name,
                           cc_op_defs[n->op].name,
                           cc_graph_shape_str(cc_node_in(g, n, 0)->dims, cc_node_in(g, n, 0)->ndim,
                                              b1, sizeof b1),
                           cc_graph_shape_str(v->dims, v->ndim, b2, sizeof b2));
        }
    }
    set_out(g, n, 0, nd, y);
    return CLCNN_OK;
}

clcnn_status cc_norm_axis(const cc_gnode *n, int64_t axis, int ndim, int *out) {
    CC_RETURN_IF(axis < -ndim || axis >= ndim + (n->op == CC_OP_FLATTEN), CLCNN_ERR_INVALID_ARG,
                 "node '%s' (%s): axis %lld is out of range for %d dimensions", n->name,
                 cc_op_defs[n->op].name, (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return CLCNN_OK;
}

static clcnn_status infer_concat(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 0));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    int axis = 0;
    CC_TRY(cc_norm_axis(n, n->a.axis, x->ndim, &axis));
    int64_t y[CC_GMAX];
    memcpy(y, x->dims, sizeof y);
    for (int i = 1; i < n->n_in; i++) {
        CC_TRY(need_rank(g, n, i, x->ndim));
        const cc_gvalue *v = cc_node_in(g, n, i);
        for (int d = 0; d < x->ndim; d++) {
            char b1[96], b2[96];
            CC_RETURN_IF(d != axis && v->dims[d] != x->dims[d], CLCNN_ERR_SHAPE,
                         "node '%s' (Concat): inputs %s and %s differ outside axis %d", n->name,
                         cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1),
                         cc_graph_shape_str(v->dims, v->ndim, b2, sizeof b2), axis);
        }
        CC_RETURN_IF(axis == 0 && (v->dims[0] < 0 || y[0] < 0), CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (Concat): concatenation along the batch", n->name);
        y[axis] += v->dims[axis];
    }
    set_out(g, n, 0, x->ndim, y);
    return CLCNN_OK;
}

static clcnn_status infer_flatten(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 0));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    int axis = 0;
    CC_TRY(cc_norm_axis(n, n->a.axis, x->ndim, &axis));
    int64_t y[2] = {1, 1};
    for (int d = 0; d < x->ndim; d++) {
        int64_t *t = &y[d < axis ? 0 : 1];
        if (x->dims[d] == CLCNN_GRAPH_BATCH) {
            CC_RETURN_IF(d != 0 || axis == 0, CLCNN_ERR_UNSUPPORTED,
                         "node '%s' (Flatten): axis 0 merges the symbolic batch", n->name);
            *t = CLCNN_GRAPH_BATCH;
            continue;
        }
        /* axis > 1 keeps the batch alone only when the dims between are 1 */
        CC_RETURN_IF(*t == CLCNN_GRAPH_BATCH && x->dims[d] != 1, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (Flatten): axis %d merges the symbolic batch with dimension %d",
                     n->name, axis, d);
        if (*t == CLCNN_GRAPH_BATCH) continue;
        CC_RETURN_IF(*t > ((int64_t)1 << 40) / x->dims[d], CLCNN_ERR_SHAPE,
                     "node '%s' (Flatten): too many elements", n->name);
        *t *= x->dims[d];
    }
    set_out(g, n, 0, 2, y);
    return CLCNN_OK;
}

static clcnn_status infer_gemm(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 2));
    CC_TRY(need_rank(g, n, 1, 2));
    const cc_gvalue *a = cc_node_in(g, n, 0), *b = cc_node_in(g, n, 1), *c = cc_node_in(g, n, 2);
    int64_t m = a->dims[n->a.trans_a ? 1 : 0], ka = a->dims[n->a.trans_a ? 0 : 1];
    int64_t kb = b->dims[n->a.trans_b ? 1 : 0], nn = b->dims[n->a.trans_b ? 0 : 1];
    char b1[96], b2[96];
    CC_RETURN_IF(ka != kb, CLCNN_ERR_SHAPE, "node '%s' (Gemm): A %s and B %s do not multiply%s",
                 n->name, cc_graph_shape_str(a->dims, 2, b1, sizeof b1),
                 cc_graph_shape_str(b->dims, 2, b2, sizeof b2),
                 n->a.trans_b ? " (B transposed)" : "");
    if (c) {
        int ok = c->ndim <= 2;
        for (int d = 0; ok && d < c->ndim; d++) {
            int64_t want = (c->ndim == 1 || d == 1) ? nn : m;
            ok = c->dims[d] == 1 || c->dims[d] == want;
        }
        CC_RETURN_IF(!ok, CLCNN_ERR_SHAPE,
                     "node '%s' (Gemm): C %s does not broadcast to [%lld,%lld]", n->name,
                     cc_graph_shape_str(c->dims, c->ndim, b1, sizeof b1), (long long)m,
                     (long long)nn);
    }
    int64_t y[2] = {m, nn};
    set_out(g, n, 0, 2, y);
    return CLCNN_OK;
}

static clcnn_status infer_softmax(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_rank(g, n, 0, 0));
    int axis = 0;
    CC_TRY(cc_norm_axis(n, n->a.axis, cc_node_in(g, n, 0)->ndim, &axis));
    return infer_same(g, n);
}

#define UNLIMITED 64
const cc_op_def cc_op_defs[CC_OP_COUNT] = {
    [CC_OP_CONV] = {"Conv", 2, 3, 1, 1, parse_conv, infer_conv},
    [CC_OP_BATCHNORM] = {"BatchNormalization", 5, 5, 1, 3, parse_batchnorm, infer_batchnorm},
    [CC_OP_RELU] = {"Relu", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_LEAKYRELU] = {"LeakyRelu", 1, 1, 1, 1, parse_leaky, infer_same},
    [CC_OP_MAXPOOL] = {"MaxPool", 1, 1, 1, 2, parse_pool, infer_pool},
    [CC_OP_AVGPOOL] = {"AveragePool", 1, 1, 1, 1, parse_pool, infer_pool},
    [CC_OP_GLOBALAVGPOOL] = {"GlobalAveragePool", 1, 1, 1, 1, parse_none, infer_global_pool},
    [CC_OP_GLOBALMAXPOOL] = {"GlobalMaxPool", 1, 1, 1, 1, parse_none, infer_global_pool},
    [CC_OP_ADD] = {"Add", 2, 2, 1, 1, parse_none, infer_broadcast},
    [CC_OP_CONCAT] = {"Concat", 1, UNLIMITED, 1, 1, parse_concat, infer_concat},
    [CC_OP_FLATTEN] = {"Flatten", 1, 1, 1, 1, parse_flatten, infer_flatten},
    [CC_OP_GEMM] = {"Gemm", 2, 3, 1, 1, parse_gemm, infer_gemm},
    [CC_OP_DROPOUT] = {"Dropout", 1, 3, 1, 2, parse_dropout, infer_same},
    [CC_OP_IDENTITY] = {"Identity", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_SOFTMAX] = {"Softmax", 1, 1, 1, 1, parse_softmax, infer_softmax},
    [CC_OP_LOGSOFTMAX] = {"LogSoftmax", 1, 1, 1, 1, parse_softmax, infer_softmax},
    /* data movement: lib/graph/ops_movement.c */
    [CC_OP_RESHAPE] = {"Reshape", 2, 2, 1, 1, cc_parse_reshape, cc_infer_reshape},
    [CC_OP_SQUEEZE] = {"Squeeze", 1, 2, 1, 1, cc_parse_squeeze, cc_infer_squeeze},
    [CC_OP_UNSQUEEZE] = {"Unsqueeze", 1, 2, 1, 1, cc_parse_squeeze, cc_infer_unsqueeze},
    [CC_OP_TRANSPOSE] = {"Transpose", 1, 1, 1, 1, cc_parse_transpose, cc_infer_copy_map},
    [CC_OP_SLICE] = {"Slice", 1, 5, 1, 1, cc_parse_slice, cc_infer_copy_map},
    [CC_OP_SPLIT] = {"Split", 1, 2, 1, CC_SPLIT_MAX, cc_parse_split, cc_infer_split},
    [CC_OP_PAD] = {"Pad", 1, 4, 1, 1, cc_parse_pad, cc_infer_copy_map},
    [CC_OP_EXPAND] = {"Expand", 2, 2, 1, 1, cc_parse_none_movement, cc_infer_copy_map},
    [CC_OP_TILE] = {"Tile", 2, 2, 1, 1, cc_parse_none_movement, cc_infer_copy_map},
    [CC_OP_GATHER] = {"Gather", 2, 2, 1, 1, cc_parse_gather, cc_infer_gather},
    /* element-wise family (parse and infer of their own in lib/graph/ops_eltwise.c) */
    [CC_OP_SIGMOID] = {"Sigmoid", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_TANH] = {"Tanh", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_HARDSIGMOID] = {"HardSigmoid", 1, 1, 1, 1, cc_parse_hardsigmoid, infer_same},
    [CC_OP_HARDSWISH] = {"HardSwish", 1, 1, 1, 1, cc_parse_hardswish, infer_same},
    [CC_OP_CLIP] = {"Clip", 1, 3, 1, 1, cc_parse_clip, cc_infer_clip},
    [CC_OP_EXP] = {"Exp", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_LOG] = {"Log", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_SQRT] = {"Sqrt", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_NEG] = {"Neg", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_ABS] = {"Abs", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_RECIPROCAL] = {"Reciprocal", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_FLOOR] = {"Floor", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_CEIL] = {"Ceil", 1, 1, 1, 1, parse_none, infer_same},
    [CC_OP_PRELU] = {"PRelu", 2, 2, 1, 1, parse_none, cc_infer_prelu},
    [CC_OP_SUB] = {"Sub", 2, 2, 1, 1, parse_none, infer_broadcast},
    [CC_OP_MUL] = {"Mul", 2, 2, 1, 1, parse_none, infer_broadcast},
    [CC_OP_DIV] = {"Div", 2, 2, 1, 1, parse_none, infer_broadcast},
    [CC_OP_POW] = {"Pow", 2, 2, 1, 1, parse_none, infer_broadcast},
    [CC_OP_MAX] = {"Max", 1, UNLIMITED, 1, 1, parse_none, infer_broadcast},
    [CC_OP_MIN] = {"Min", 1, UNLIMITED, 1, 1, parse_none, infer_broadcast},
    [CC_OP_SUM] = {"Sum", 1, UNLIMITED, 1, 1, parse_none, infer_broadcast},
    [CC_OP_MATMUL] = {"MatMul", 2, 2, 1, 1, cc_parse_matmul, cc_infer_matmul},
    [CC_OP_REDUCEMEAN] = {"ReduceMean", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCESUM] = {"ReduceSum", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCEMAX] = {"ReduceMax", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCEMIN] = {"ReduceMin", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCEPROD] = {"ReduceProd", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCESUMSQUARE] = {"ReduceSumSquare", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCEL1] = {"ReduceL1", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCEL2] = {"ReduceL2", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCELOGSUM] = {"ReduceLogSum", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_REDUCELOGSUMEXP] = {"ReduceLogSumExp", 1, 2, 1, 1, cc_parse_reduce, cc_infer_reduce},
    [CC_OP_LRN] = {"LRN", 1, 1, 1, 1, cc_parse_lrn, cc_infer_lrn},
    /* lib/graph/ops_convt.c */
    [CC_OP_CONVTRANSPOSE] = {"ConvTranspose", 2, 3, 1, 1, cc_parse_convtranspose,
                             cc_infer_convtranspose},
    [CC_OP_RESIZE] = {"Resize", 2, 4, 1, 1, cc_parse_resize, cc_infer_resize},
    [CC_OP_UPSAMPLE] = {"Upsample", 1, 2, 1, 1, cc_parse_resize, cc_infer_resize},
};

/* ---- descriptions -------------------------------------------------------------------- */

static size_t init_numel(const clcnn_graph *g, const cc_gnode *n, int i) {
    const cc_gvalue *v = cc_node_in(g, n, i);
    return v && v->kind == CC_VAL_INIT ? v->numel : 0;
}

void cc_node_describe(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                      double *flops, size_t *params) {
    const cc_op_attrs *a = &n->a;
    const cc_gvalue *y = &g->vals[n->out[0]];
    *flops = 0.0;
    *params = 0;
    desc[0] = '\0';
    switch (n->op) {
    case CC_OP_CONV: {
        const cc_gvalue *w = cc_node_in(g, n, 1);
        *params = init_numel(g, n, 1) + init_numel(g, n, 2);
        *flops = 2.0 * (double)(w->dims[0] * w->dims[1] * w->dims[2] * w->dims[3]) *
                 (double)(y->dims[2] * y->dims[3]);
        int used = snprintf(desc, cap, "%lld x %lldx%lld", (long long)w->dims[0],
                            (long long)w->dims[2], (long long)w->dims[3]);
        if (a->strides[0] != 1 || a->strides[1] != 1)
            used += snprintf(desc + used, cap - (size_t)used, ", stride %lld",
                             (long long)a->strides[0]);
        if (a->pads[0] || a->pads[1] || a->pads[2] || a->pads[3])
            used += snprintf(desc + used, cap - (size_t)used, ", pad %lld", (long long)a->pads[0]);
        if (a->dilations[0] != 1 || a->dilations[1] != 1)
            used += snprintf(desc + used, cap - (size_t)used, ", dilation %lld",
                             (long long)a->dilations[0]);
        if (a->group != 1)
            snprintf(desc + used, cap - (size_t)used, ", %lld groups", (long long)a->group);
        break;
    }
    case CC_OP_GEMM: {
        const cc_gvalue *b = cc_node_in(g, n, 1);
        *params = init_numel(g, n, 1) + init_numel(g, n, 2);
        *flops = 2.0 * (double)(b->dims[0] * b->dims[1]);
        snprintf(desc, cap, "%lld -> %lld", (long long)b->dims[a->trans_b ? 1 : 0],
                 (long long)y->dims[1]);
        break;
    }
    case CC_OP_BATCHNORM:
        *params = init_numel(g, n, 1) + init_numel(g, n, 2);
        snprintf(desc, cap, "eps %g", a->epsilon);
        break;
    case CC_OP_MAXPOOL:
    case CC_OP_AVGPOOL:
        snprintf(desc, cap, "%lldx%lld, stride %lld%s", (long long)a->kernel[0],
                 (long long)a->kernel[1], (long long)a->strides[0], a->ceil_mode ? ", ceil" : "");
        break;
    case CC_OP_LEAKYRELU:
        snprintf(desc, cap, "alpha %g", a->alpha);
        break;
    case CC_OP_DROPOUT:
        snprintf(desc, cap, "p %g", a->ratio);
        break;
    case CC_OP_CONCAT:
        snprintf(desc, cap, "axis %lld", (long long)a->axis);
        break;
    case CC_OP_HARDSIGMOID:
        snprintf(desc, cap, "alpha %g, beta %g", a->alpha, a->beta);
        break;
    case CC_OP_CLIP:
        if (n->n_in > 1)
            snprintf(desc, cap, "min/max from inputs");
        else
            snprintf(desc, cap, "min %g, max %g", a->clip_min, a->clip_max);
        break;
    case CC_OP_CONVTRANSPOSE:
        cc_node_describe_convt(g, n, desc, cap, flops, params);
        break;
    case CC_OP_RESIZE:
    case CC_OP_UPSAMPLE:
        cc_node_describe_resize(n, desc, cap);
        break;
    default:
        cc_node_describe_reduce(g, n, desc, cap, flops, params);
        break;
    }
}

/* ---- shared with the op families in other files (graph_internal.h) ------------------ */

clcnn_status cc_attr_int(const cc_gnode *n, const char *name, int64_t def, int64_t *out) {
    return attr_int(n, name, def, out);
}

void cc_attrs_defaults(cc_op_attrs *a) {
    attrs_defaults(a);
}

clcnn_status cc_attr_float(const cc_gnode *n, const char *name, float def, float *out) {
    return attr_float(n, name, def, out);
}

clcnn_status cc_infer_same(clcnn_graph *g, cc_gnode *n) {
    return infer_same(g, n);
}

clcnn_status cc_infer_broadcast(clcnn_graph *g, cc_gnode *n) {
    return infer_broadcast(g, n);
}
