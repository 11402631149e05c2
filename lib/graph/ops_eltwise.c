/* The element-wise family of the op table (lib/graph/ops.c holds the entries): attribute
 * parsing and shape inference where the shared ones (no attributes, output shaped as
 * input 0, NumPy broadcasting of all inputs) do not fit. ONNX semantics, opsets 6-17. */
#include "graph/graph_internal.h"

/* HardSigmoid: y = max(0, min(1, alpha x + beta)), alpha 0.2 and beta 0.5 by default. */
clcnn_status cc_parse_hardsigmoid(cc_gnode *n) {
    cc_attrs_defaults(&n->a);
    CC_TRY(cc_attr_float(n, "alpha", 0.2f, &n->a.alpha));
    return cc_attr_float(n, "beta", 0.5f, &n->a.beta);
}

/* HardSwish: x HardSigmoid(x) with alpha 1/6, beta 0.5 (fixed: no attributes). */
clcnn_status cc_parse_hardswish(cc_gnode *n) {
    cc_attrs_defaults(&n->a);
    n->a.alpha = 1.0f / 6.0f;
    n->a.beta = 0.5f;
    return CLCNN_OK;
}

/* Clip: opset < 11 gives the bounds as attributes min and max; opset 11 and later as the
 * optional inputs 1 and 2 (one-element tensors; inputs win over attributes). min > max
 * is allowed: ONNX defines the result as min(max(x, min), max), i.e. max everywhere. */
clcnn_status cc_parse_clip(cc_gnode *n) {
    cc_attrs_defaults(&n->a);
    CC_TRY(cc_attr_float(n, "min", n->a.clip_min, &n->a.clip_min));
    return cc_attr_float(n, "max", n->a.clip_max, &n->a.clip_max);
}

clcnn_status cc_infer_clip(clcnn_graph *g, cc_gnode *n) {
    for (int i = 1; i < n->n_in; i++) {
        if (n->in[i] < 0) continue; /* absent: no bound on that side */
        const cc_gvalue *v = &g->vals[n->in[i]];
        size_t numel = cc_graph_numel(v->dims, v->ndim, 1);
        char b[96];
        CC_RETURN_IF(numel != 1 || (v->ndim > 0 && v->dims[0] == CLCNN_GRAPH_BATCH),
                     CLCNN_ERR_SHAPE, "node '%s' (Clip): %s '%s' is %s, not a scalar", n->name,
                     i == 1 ? "min" : "max", v->name,
                     cc_graph_shape_str(v->dims, v->ndim, b, sizeof b));
    }
    return cc_infer_same(g, n);
}

/* PRelu: the slope broadcasts to X unidirectionally (NumPy rules, right-aligned: a slope
 * (C,1,1) or (1,C,1,1) on (N,C,H,W); (C) aligns with the last dim, as ONNX says). */
clcnn_status cc_infer_prelu(clcnn_graph *g, cc_gnode *n) {
    CC_TRY(cc_infer_broadcast(g, n));
    const cc_gvalue *x = &g->vals[n->in[0]], *slope = &g->vals[n->in[1]];
    const cc_gvalue *y = &g->vals[n->out[0]];
    int same = x->ndim == y->ndim;
    for (int d = 0; same && d < x->ndim; d++)
        same = x->dims[d] == y->dims[d];
    char bx[96], bs[96];
    CC_RETURN_IF(!same, CLCNN_ERR_SHAPE,
                 "node '%s' (PRelu): slope %s does not broadcast to X %s (unidirectionally)",
                 n->name, cc_graph_shape_str(slope->dims, slope->ndim, bs, sizeof bs),
                 cc_graph_shape_str(x->dims, x->ndim, bx, sizeof bx));
    return CLCNN_OK;
}
