/* Resize and Upsample in plans: the last two dims scale (any mode), the leading ones must
 * keep their size at scale 1. The per-axis coordinate tables (cc_resize_axis) are made
 * once here and uploaded as the step's param[0]; a run is one cc_resize2d launch. */
#include "exec/exec_internal.h"

#include <stdlib.h>

clcnn_status cc_prepare_resize(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    (void)na;
    cc_resize_info r;
    CC_TRY(cc_resize_info_of(g, n, &r));
    const cc_pvalue *x = &p->vals[n->in[0]], *y = &p->vals[n->out[0]];
    CC_RETURN_IF(g->vals[n->in[0]].kind == CC_VAL_INIT, CLCNN_ERR_UNSUPPORTED,
                 "clcnn_plan_create: node '%s' (%s): a constant data input", n->name,
                 cc_op_defs[n->op].name);
    int nd = x->ndim;
    size_t outer = 1, h = nd >= 2 ? x->shape[nd - 2] : 1, w = x->shape[nd - 1];
    size_t pp = nd >= 2 ? y->shape[nd - 2] : 1, q = y->shape[nd - 1];
    for (int d = 0; d < nd - 2; d++) {
        CC_RETURN_IF(x->shape[d] != y->shape[d] || r.scale[d] != 1.0, CLCNN_ERR_UNSUPPORTED,
                     "clcnn_plan_create: node '%s' (%s) scales dim %d by %g; plans resize only "
                     "the last two dims",
                     n->name, cc_op_defs[n->op].name, d, r.scale[d]);
        outer *= x->shape[d];
    }
    CC_RETURN_IF(h == 0 || w == 0 || pp + q > (1 << 24), CLCNN_ERR_UNSUPPORTED,
                 "clcnn_plan_create: node '%s' (%s): an empty input or an output over 2^24 "
                 "rows and columns",
                 n->name, cc_op_defs[n->op].name);
    float *tab = malloc(3 * (pp + q) * sizeof *tab);
    CC_RETURN_IF(!tab, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    const cc_op_attrs *a = &n->a;
    cc_resize_axis(a->rs_linear, a->rs_coord, a->rs_round, h, pp, nd >= 2 ? r.scale[nd - 2] : 1.0,
                   tab);
    cc_resize_axis(a->rs_linear, a->rs_coord, a->rs_round, w, q, r.scale[nd - 1], tab + 3 * pp);
    clcnn_status st = cc_step_upload(p->dev, 1, (size_t[]){3 * (pp + q)}, tab, &s->param[0]);
    free(tab);
    CC_TRY(st);
    s->rs_outer = outer;
    s->rs_h = h;
    s->rs_w = w;
    s->rs_p = pp;
    s->rs_q = q;
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "%s %s (%s)", cc_op_defs[n->op].name, n->name,
             a->rs_linear ? "linear" : "nearest");
    return CLCNN_OK;
}

clcnn_status cc_run_resize(clcnn_plan *p, cc_step *s) {
    return cc_resize2d(p->dev, cc_plan_tensor(p, s->in[0]), s->param[0], s->rs_outer, s->rs_h,
                       s->rs_w, s->rs_p, s->rs_q, (clcnn_tensor *)cc_plan_tensor(p, s->out));
}
