/* Op kinds of the graph that reduce: MatMul (NumPy matmul: batch dims broadcast, 1-D
 * operands promoted and their dim dropped again), the Reduce* family (Sum, Mean, Max,
 * Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp; axes as an attribute, or for ReduceSum from
 * opset 13 as an int64 initializer input; keepdims; noop_with_empty_axes) and LRN (across
 * channels). Attribute parsing and shape inference, as the rest of the table in lib/graph/ops.c. */
#include "graph/graph_internal.h"

#include <string.h>

static void set_out(clcnn_graph *g, const cc_gnode *n, int ndim, const int64_t *dims) {
    cc_gvalue *y = &g->vals[n->out[0]];
    y->ndim = ndim;
    memcpy(y->dims, dims, (size_t)ndim * sizeof *dims);
}

static clcnn_status need_input(const clcnn_graph *g, const cc_gnode *n, int i, int min_rank,
                               int max_rank) {
    const cc_gvalue *v = cc_node_in(g, n, i);
    char b[96];
    CC_RETURN_IF(!v, CLCNN_ERR_INVALID_ARG, "node '%s' (%s): input %d is missing", n->name,
                 cc_op_defs[n->op].name, i);
    CC_RETURN_IF(v->ndim < min_rank || v->ndim > max_rank, CLCNN_ERR_SHAPE,
                 "node '%s' (%s): input '%s' is %s, expected %d to %d dimensions", n->name,
                 cc_op_defs[n->op].name, v->name, cc_graph_shape_str(v->dims, v->ndim, b, sizeof b),
                 min_rank, max_rank);
    return CLCNN_OK;
}

/* ---- MatMul ------------------------------------------------------------------------------ */

clcnn_status cc_parse_matmul(cc_gnode *n) {
    cc_op_attrs_defaults(&n->a);
    return CLCNN_OK;
}

/* A (..., m, k) x B (..., k, n) -> (batch..., m, n); a 1-D A is (1, k) and a 1-D B (k, 1),
 * their added dim removed from the result. Batch dims broadcast (the symbolic batch with 1
 * and itself only). */
clcnn_status cc_infer_matmul(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_input(g, n, 0, 1, CC_GMAX));
    CC_TRY(need_input(g, n, 1, 1, CC_GMAX));
    const cc_gvalue *a = cc_node_in(g, n, 0), *b = cc_node_in(g, n, 1);
    char b1[96], b2[96];
    int64_t m = a->ndim == 1 ? 1 : a->dims[a->ndim - 2], ka = a->dims[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
    int64_t nn = b->ndim == 1 ? 1 : b->dims[b->ndim - 1];
    CC_RETURN_IF(ka != kb || ka < 0, CLCNN_ERR_SHAPE,
                 "node '%s' (MatMul): A %s and B %s do not multiply", n->name,
                 cc_graph_shape_str(a->dims, a->ndim, b1, sizeof b1),
                 cc_graph_shape_str(b->dims, b->ndim, b2, sizeof b2));
    int ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nb = ba > bb ? ba : bb;
    /* a 2-D A may have the batch as its rows: it stays the result's first dim */
    CC_RETURN_IF(m < 0 && nb > 0, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (MatMul): the batch as the rows of A with a batched B", n->name);
    int64_t y[CC_GMAX + 2];
    for (int d = 0; d < nb; d++) {
        int64_t da = d - (nb - ba) >= 0 ? a->dims[d - (nb - ba)] : 1;
        int64_t db = d - (nb - bb) >= 0 ? b->dims[d - (nb - bb)] : 1;
        CC_RETURN_IF(da != db && da != 1 && db != 1, CLCNN_ERR_SHAPE,
                     "node '%s' (MatMul): batch dims of A %s and B %s do not broadcast", n->name,
                     cc_graph_shape_str(a->dims, a->ndim, b1, sizeof b1),
                     cc_graph_shape_str(b->dims, b->ndim, b2, sizeof b2));
        y[d] = da == 1 ? db : da;
    }
    int nd = nb;
    if (a->ndim > 1) y[nd++] = m;
    if (b->ndim > 1) y[nd++] = nn;
    CC_RETURN_IF(nd > CC_GMAX, CLCNN_ERR_UNSUPPORTED, "node '%s' (MatMul): result of %d dimensions",
                 n->name, nd);
    set_out(g, n, nd, y);
    return CLCNN_OK;
}

/* ---- the Reduce* family -------------------------------------------------- */

clcnn_status cc_parse_reduce(cc_gnode *n) {
    cc_op_attrs *a = &n->a;
    cc_op_attrs_defaults(a);
    a->keepdims = 1;
    const cc_gattr *ax = cc_node_attr(n, "axes");
    if (ax) {
        CC_RETURN_IF(ax->type != CLCNN_ATTR_INTS, CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute 'axes' must be a list of ints", n->name);
        CC_RETURN_IF(ax->n > CC_GMAX, CLCNN_ERR_UNSUPPORTED, "node '%s': %d axes (at most %d)",
                     n->name, ax->n, CC_GMAX);
        for (int i = 0; i < ax->n; i++)
            a->axes[i] = ax->ints[i];
        a->naxes = ax->n;
    }
    for (int i = 0; i < n->nattrs; i++) {
        const cc_gattr *t = &n->attrs[i];
        int is_int = !strcmp(t->name, "keepdims") || !strcmp(t->name, "noop_with_empty_axes");
        CC_RETURN_IF(is_int && t->type != CLCNN_ATTR_INT, CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute '%s' must be an int", n->name, t->name);
        if (!strcmp(t->name, "keepdims")) a->keepdims = t->i != 0;
        if (!strcmp(t->name, "noop_with_empty_axes")) a->noop_empty = t->i != 0;
    }
    return CLCNN_OK;
}

/* The axes as given (attribute or initializer input), checked, made non-negative and
 * sorted into mask (bit d: dim d is reduced). */
static clcnn_status reduce_mask(cc_gnode *n, const cc_gvalue *axes, int ndim, unsigned *mask) {
    cc_op_attrs *a = &n->a;
    if (axes) {
        char b[96];
        CC_RETURN_IF(axes->kind != CC_VAL_INIT || axes->dtype != CLCNN_I64, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (%s): axes '%s' must be an int64 initializer (axes computed per "
                     "run are not supported)",
                     n->name, cc_op_defs[n->op].name, axes->name);
        CC_RETURN_IF(axes->ndim != 1 || axes->numel > CC_GMAX, CLCNN_ERR_SHAPE,
                     "node '%s' (%s): axes '%s' is %s, expected a list of at most %d", n->name,
                     cc_op_defs[n->op].name, axes->name,
                     cc_graph_shape_str(axes->dims, axes->ndim, b, sizeof b), CC_GMAX);
        CC_RETURN_IF(cc_node_attr(n, "axes") != NULL, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s): axes both as an attribute and an input", n->name,
                     cc_op_defs[n->op].name);
        a->naxes = (int)axes->numel;
        memcpy(a->axes, axes->data, axes->numel * sizeof(int64_t));
    }
    *mask = 0;
    for (int i = 0; i < a->naxes; i++) {
        int ax;
        CC_TRY(cc_norm_axis(n, a->axes[i], ndim, &ax));
        CC_RETURN_IF(*mask & (1u << ax), CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s): axis %lld is given twice", n->name, cc_op_defs[n->op].name,
                     (long long)a->axes[i]);
        *mask |= 1u << ax;
    }
    if (a->naxes == 0 && !a->noop_empty) *mask = (1u << ndim) - 1;
    /* keep the normalised, sorted list: lib/exec reads it */
    a->naxes = 0;
    for (int d = 0; d < ndim; d++)
        if (*mask & (1u << d)) a->axes[a->naxes++] = d;
    return CLCNN_OK;
}

clcnn_status cc_infer_reduce(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_input(g, n, 0, 1, CC_GMAX));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    unsigned mask = 0;
    /* re-derive from the attributes: infer may run more than once (graph check, clone) */
    CC_TRY(cc_parse_reduce(n));
    CC_TRY(reduce_mask(n, cc_node_in(g, n, 1), x->ndim, &mask));
    int64_t y[CC_GMAX];
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!(mask & (1u << d)))
            y[nd++] = x->dims[d];
        else if (n->a.keepdims)
            y[nd++] = 1;
    }
    set_out(g, n, nd, y);
    return CLCNN_OK;
}

/* ---- LRN --------------------------------------------------------------------------------- */

clcnn_status cc_parse_lrn(cc_gnode *n) {
    cc_op_attrs *a = &n->a;
    cc_op_attrs_defaults(a);
    a->alpha = 1e-4f;
    a->beta = 0.75f;
    a->bias = 1.0f;
    const cc_gattr *sz = cc_node_attr(n, "size");
    CC_RETURN_IF(!sz, CLCNN_ERR_INVALID_ARG, "node '%s': LRN needs the attribute size", n->name);
    CC_RETURN_IF(sz->type != CLCNN_ATTR_INT || sz->i < 1 || sz->i > 4096, CLCNN_ERR_INVALID_ARG,
                 "node '%s': LRN size must be an int in 1..4096", n->name);
    a->size = sz->i;
    static const char *names[] = {"alpha", "beta", "bias"};
    float *dst[] = {&a->alpha, &a->beta, &a->bias};
    for (int i = 0; i < 3; i++) {
        const cc_gattr *t = cc_node_attr(n, names[i]);
        if (!t) continue;
        CC_RETURN_IF(t->type != CLCNN_ATTR_FLOAT, CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute '%s' must be a float", n->name, names[i]);
        *dst[i] = t->f;
    }
    return CLCNN_OK;
}

/* (n, c, d1, ...): the output has the input's shape. */
clcnn_status cc_infer_lrn(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(need_input(g, n, 0, 3, CC_GMAX));
    const cc_gvalue *x = cc_node_in(g, n, 0);
    set_out(g, n, x->ndim, x->dims);
    return CLCNN_OK;
}

/* ---- descriptions ------------------------------------------------------------------------ */

void cc_node_describe_reduce(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                             double *flops, size_t *params) {
    const cc_gvalue *y = &g->vals[n->out[0]];
    if (n->op == CC_OP_MATMUL) {
        const cc_gvalue *a = cc_node_in(g, n, 0), *b = cc_node_in(g, n, 1);
        int64_t k = a->dims[a->ndim - 1];
        /* per sample: the batch dim (when it is one) counts once */
        double outs = 1.0;
        for (int d = 0; d < y->ndim; d++)
            outs *= y->dims[d] == CLCNN_GRAPH_BATCH ? 1.0 : (double)y->dims[d];
        *flops = 2.0 * (double)k * outs;
        for (int i = 0; i < 2; i++) {
            const cc_gvalue *v = i ? b : a;
            if (v->kind == CC_VAL_INIT) *params += v->numel;
        }
        char ba[96], bb[96];
        snprintf(desc, cap, "%s x %s", cc_graph_shape_str(a->dims, a->ndim, ba, sizeof ba),
                 cc_graph_shape_str(b->dims, b->ndim, bb, sizeof bb));
    } else if (n->op == CC_OP_LRN) {
        snprintf(desc, cap, "size %lld, alpha %g, beta %g, bias %g", (long long)n->a.size,
                 n->a.alpha, n->a.beta, n->a.bias);
    } else if (n->op >= CC_OP_REDUCEMEAN && n->op <= CC_OP_REDUCELOGSUMEXP) {
        int used = snprintf(desc, cap, "axes");
        for (int i = 0; i < n->a.naxes && used > 0 && (size_t)used < cap; i++)
            used += snprintf(desc + used, cap - (size_t)used, "%s%lld", i ? "," : " ",
                             (long long)n->a.axes[i]);
        if (n->a.naxes == 0 && used > 0 && (size_t)used < cap)
            used += snprintf(desc + used, cap - (size_t)used, " none");
        if (!n->a.keepdims && used > 0 && (size_t)used < cap)
            snprintf(desc + used, cap - (size_t)used, ", dropped");
    }
}
