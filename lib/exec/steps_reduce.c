/* Plan steps of the reducing op kinds: MatMul through clcnn_gemm_batched (batch dims
 * broadcast by zero strides, or one call per outer batch item when the two batch dims
 * broadcast differently), the Reduce* family (cc_reduce), LRN (cc_lrn)
 * and Softmax / LogSoftmax over any axis (the input seen as (outer, c, inner)). Shapes are
 * decided at prepare time from the plan's values. */
#include "exec/exec_internal.h"

#include <string.h>

static void name_step(cc_step *s, const cc_gnode *n) {
    snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
}

/* ---- MatMul ------------------------------------------------------------------------------ */

/* Y (o0, o1, m, n) = A (a0, a1, m, k) B (b0, b1, k, n) with batch dims padded to two on the
 * left (1-D operands promoted first); a batch dim of 1 broadcasts. */
clcnn_status cc_prepare_matmul(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_gvalue *av = &g->vals[n->in[0]], *bv = &g->vals[n->in[1]];
    /* shapes: the plan's for values, the graph's for initializers */
    size_t ash[4] = {0}, bsh[4] = {0};
    int ar = av->ndim, br = bv->ndim;
    if (ar > 4 || br > 4) return cc_step_unsupported(n, "an operand of more than 4 dimensions");
    for (int d = 0; d < ar; d++)
        ash[d] = av->kind == CC_VAL_INIT ? (size_t)av->dims[d] : p->vals[n->in[0]].shape[d];
    for (int d = 0; d < br; d++)
        bsh[d] = bv->kind == CC_VAL_INIT ? (size_t)bv->dims[d] : p->vals[n->in[1]].shape[d];
    if (ar == 1) ash[1] = ash[0], ash[0] = 1, ar = 2;
    if (br == 1) bsh[1] = 1, br = 2;
    size_t m = ash[ar - 2], k = ash[ar - 1], nn = bsh[br - 1];
    size_t ab[2] = {1, 1}, bb[2] = {1, 1};
    for (int d = 0; d < ar - 2; d++)
        ab[2 - (ar - 2) + d] = ash[d];
    for (int d = 0; d < br - 2; d++)
        bb[2 - (br - 2) + d] = bsh[d];
    size_t ob[2] = {ab[0] > bb[0] ? ab[0] : bb[0], ab[1] > bb[1] ? ab[1] : bb[1]};
    s->mm_k = k;
    s->mm_n = nn;
    if (bb[0] == 1 && bb[1] == 1) {
        /* one B for every item: A's batch joins its rows, one GEMM */
        s->mm_m = m * ab[0] * ab[1];
        s->mm_batch = s->mm_outer = 1;
    } else {
        s->mm_m = m;
        size_t ma = m * k, mb = k * nn, mc = m * nn;
        int a_all = ab[0] == ob[0] && ab[1] == ob[1], b_all = bb[0] == ob[0] && bb[1] == ob[1];
        int a_none = ab[0] == 1 && ab[1] == 1;
        if ((a_all || a_none) && b_all) { /* one batched call over o0 * o1 */
            s->mm_batch = ob[0] * ob[1];
            s->mm_outer = 1;
            s->mm_sa = a_none ? 0 : ma;
            s->mm_sb = mb;
        } else { /* one batched call over o1 per item of o0 */
            s->mm_batch = ob[1];
            s->mm_outer = ob[0];
            s->mm_sa = ab[1] == 1 ? 0 : ma;
            s->mm_sb = bb[1] == 1 ? 0 : mb;
            s->mm_oa = ab[0] == 1 ? 0 : ab[1] * ma;
            s->mm_ob = bb[0] == 1 ? 0 : bb[1] * mb;
        }
        s->mm_sc = mc;
        s->mm_oc = ob[1] * mc;
    }
    /* initializers are uploaded once (param[0] B, param[1] A); in[] lists the values */
    s->dynamic = 1;
    s->n_in = 0;
    for (int i = 0; i < 2; i++) {
        const cc_gvalue *v = i ? bv : av;
        if (v->kind != CC_VAL_INIT) {
            s->in[s->n_in++] = n->in[i];
            continue;
        }
        if (v->dtype != CLCNN_F32) return cc_step_unsupported(n, "an operand that is not float");
        size_t len = v->numel;
        clcnn_tensor **t = &s->param[i ? 0 : 1];
        CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &len, t));
        CC_TRY(clcnn_tensor_upload(*t, v->data, len * sizeof(float)));
        p->mem.param_bytes += len * sizeof(float);
    }
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "MatMul %s [%zu x (%zu x %zu x %zu)%s]", n->name,
             s->mm_outer * s->mm_batch, s->mm_m, s->mm_k, s->mm_n,
             s->mm_outer > 1 ? ", broadcast per outer item" : "");
    return CLCNN_OK;
}

clcnn_status cc_run_matmul(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *a = s->param[1] ? s->param[1] : cc_plan_tensor(p, s->in[0]);
    const clcnn_tensor *b =
        s->param[0] ? s->param[0] : cc_plan_tensor(p, s->in[s->param[1] ? 0 : 1]);
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    size_t m = s->mm_m, n = s->mm_n, k = s->mm_k;
    if (s->mm_outer == 1)
        return clcnn_gemm_batched(p->dev, 0, 0, m, n, k, 1.0f, a, k, s->mm_sa, b, n, s->mm_sb, 0.0f,
                                  y, n, s->mm_sc, s->mm_batch);
    for (size_t o = 0; o < s->mm_outer; o++) {
        /* views from this outer item's matrices to the end of each tensor */
        size_t la = a->numel - o * s->mm_oa, lb = b->numel - o * s->mm_ob;
        size_t lc = y->numel - o * s->mm_oc;
        clcnn_tensor *va = cc_tensor_view_at(a, 1, &la, a->offset + o * s->mm_oa);
        clcnn_tensor *vb = cc_tensor_view_at(b, 1, &lb, b->offset + o * s->mm_ob);
        clcnn_tensor *vc = cc_tensor_view_at(y, 1, &lc, y->offset + o * s->mm_oc);
        clcnn_status st = va && vb && vc ? CLCNN_OK
                                         : cc_fail(CLCNN_ERR_OUT_OF_MEMORY,
                                                   "clcnn_plan_run: out of host memory (MatMul)");
        if (st == CLCNN_OK)
            st = clcnn_gemm_batched(p->dev, 0, 0, m, n, k, 1.0f, va, k, s->mm_sa, vb, n, s->mm_sb,
                                    0.0f, vc, n, s->mm_sc, s->mm_batch);
        clcnn_tensor_free(va);
        clcnn_tensor_free(vb);
        clcnn_tensor_free(vc);
        CC_TRY(st);
    }
    return CLCNN_OK;
}

/* ---- ReduceSum, ReduceMean, ... (the Reduce* family)
 * --------------------------------------------------- */

clcnn_status cc_prepare_reduce(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    s->red_mask = 0;
    for (int i = 0; i < n->a.naxes; i++) /* normalised and sorted by shape inference */
        s->red_mask |= 1u << n->a.axes[i];
    static const struct {
        cc_op op;
        cc_reduce_op red;
    } kinds[] = {
        {CC_OP_REDUCESUM, CC_REDUCE_SUM},        {CC_OP_REDUCEMEAN, CC_REDUCE_MEAN},
        {CC_OP_REDUCEMAX, CC_REDUCE_MAX},        {CC_OP_REDUCEMIN, CC_REDUCE_MIN},
        {CC_OP_REDUCEPROD, CC_REDUCE_PROD},      {CC_OP_REDUCESUMSQUARE, CC_REDUCE_SUM_SQUARE},
        {CC_OP_REDUCEL1, CC_REDUCE_L1},          {CC_OP_REDUCEL2, CC_REDUCE_L2},
        {CC_OP_REDUCELOGSUM, CC_REDUCE_LOG_SUM}, {CC_OP_REDUCELOGSUMEXP, CC_REDUCE_LOG_SUM_EXP}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].op == n->op) s->red_op = (int)kinds[i].red;
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    name_step(s, n);
    return CLCNN_OK;
}

clcnn_status cc_run_reduce(clcnn_plan *p, cc_step *s) {
    return cc_reduce(p->dev, (cc_reduce_op)s->red_op, cc_plan_tensor(p, s->in[0]), s->red_mask,
                     (clcnn_tensor *)cc_plan_tensor(p, s->out));
}

/* ---- LRN ------------------------------------------------------------------------------- */

clcnn_status cc_prepare_lrn(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                            int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    s->lrn_size = (int)n->a.size;
    s->lrn_alpha = n->a.alpha;
    s->lrn_beta = n->a.beta;
    s->lrn_bias = n->a.bias;
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    name_step(s, n);
    return CLCNN_OK;
}

clcnn_status cc_run_lrn(clcnn_plan *p, cc_step *s) {
    return cc_lrn(p->dev, cc_plan_tensor(p, s->in[0]), s->lrn_size, s->lrn_alpha, s->lrn_beta,
                  s->lrn_bias, (clcnn_tensor *)cc_plan_tensor(p, s->out));
}

/* ---- Softmax / LogSoftmax over one axis (opset 13) ---------------------------------------- */

clcnn_status cc_prepare_softmax(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_pvalue *x = &p->vals[n->in[0]];
    int axis = (int)(n->a.axis < 0 ? n->a.axis + x->ndim : n->a.axis);
    s->sm_outer = s->sm_c = s->sm_inner = 1;
    for (int d = 0; d < x->ndim; d++)
        *(d < axis ? &s->sm_outer : d == axis ? &s->sm_c : &s->sm_inner) *= x->shape[d];
    s->log = n->op == CC_OP_LOGSOFTMAX;
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    name_step(s, n);
    return CLCNN_OK;
}

clcnn_status cc_run_softmax(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *x = cc_plan_tensor(p, s->in[0]);
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    if (x->numel == 0) return CLCNN_OK;
    /* clcnn_softmax_forward reduces dim 1 of (n, c, inner) */
    size_t shape[3] = {s->sm_outer, s->sm_c, s->sm_inner};
    clcnn_tensor *vx = cc_tensor_view_at(x, 3, shape, x->offset);
    clcnn_tensor *vy = cc_tensor_view_at(y, 3, shape, y->offset);
    clcnn_status st =
        vx && vy ? clcnn_softmax_forward(p->dev, vx, vy, s->log)
                 : cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_run: out of host memory (softmax)");
    clcnn_tensor_free(vx);
    clcnn_tensor_free(vy);
    return st;
}
