/* The element-wise family inside a plan: unary ops (one launch of cl/unary.cl with the
 * op and its two parameters, resolved once) and binary ops with NumPy broadcasting
 * (cl/binary.cl). Binary operands may be activations or float initializers (uploaded
 * once, scalars included); Max, Min and Sum take any number of operands, folded left to
 * right into the output: y = op(x0, x1), then y = op(y, xi). */
#include "exec/exec_internal.h"

#include "clcnn_ids.h"

#include <float.h>
#include <stdio.h>

static int unary_id(cc_op op) {
    switch (op) {
    case CC_OP_SIGMOID:
        return CLCNN_UN_ID_SIGMOID;
    case CC_OP_TANH:
        return CLCNN_UN_ID_TANH;
    case CC_OP_HARDSIGMOID:
        return CLCNN_UN_ID_HARDSIGMOID;
    case CC_OP_HARDSWISH:
        return CLCNN_UN_ID_HARDSWISH;
    case CC_OP_CLIP:
        return CLCNN_UN_ID_CLIP;
    case CC_OP_EXP:
        return CLCNN_UN_ID_EXP;
    case CC_OP_LOG:
        return CLCNN_UN_ID_LOG;
    case CC_OP_SQRT:
        return CLCNN_UN_ID_SQRT;
    case CC_OP_NEG:
        return CLCNN_UN_ID_NEG;
    case CC_OP_ABS:
        return CLCNN_UN_ID_ABS;
    case CC_OP_RECIPROCAL:
        return CLCNN_UN_ID_RECIPROCAL;
    case CC_OP_FLOOR:
        return CLCNN_UN_ID_FLOOR;
    case CC_OP_CEIL:
        return CLCNN_UN_ID_CEIL;
    default:
        return -1;
    }
}

static int binary_id(cc_op op) {
    switch (op) {
    case CC_OP_ADD:
    case CC_OP_SUM:
        return CLCNN_BIN_ID_ADD;
    case CC_OP_SUB:
        return CLCNN_BIN_ID_SUB;
    case CC_OP_MUL:
        return CLCNN_BIN_ID_MUL;
    case CC_OP_DIV:
        return CLCNN_BIN_ID_DIV;
    case CC_OP_POW:
        return CLCNN_BIN_ID_POW;
    case CC_OP_MAX:
        return CLCNN_BIN_ID_MAX;
    case CC_OP_MIN:
        return CLCNN_BIN_ID_MIN;
    case CC_OP_PRELU:
        return CLCNN_BIN_ID_PRELU;
    default:
        return -1;
    }
}

/* Clip's bound from input i: an initializer of one float sets *bound; a float value of
 * one element computed per run (or a graph input) becomes the step's next input, applied
 * after the static bounds as Max (min) or Min (max) with it (ew_src[i]: its value index,
 * else -1). */
static clcnn_status clip_bound(const clcnn_graph *g, const cc_gnode *n, int i, float *bound,
                               cc_step *s) {
    const cc_gvalue *v = cc_node_in(g, n, i);
    s->ew_src[i] = -1;
    if (!v) return CLCNN_OK;
    char why[160];
    if (v->dtype != CLCNN_F32 || v->numel != 1) {
        snprintf(why, sizeof why, "%s '%s' must be one float", i == 1 ? "min" : "max", v->name);
        return cc_step_unsupported(n, why);
    }
    if (v->kind == CC_VAL_INIT) {
        *bound = ((const float *)v->data)[0];
        return CLCNN_OK;
    }
    s->ew_src[i] = n->in[i];
    s->in[s->n_in++] = n->in[i];
    return CLCNN_OK;
}

clcnn_status cc_prepare_unary(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                              int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    if (cc_node_in(g, n, 0)->kind == CC_VAL_INIT)
        return cc_step_unsupported(n, "an initializer input");
    s->ew_op = unary_id(n->op);
    s->alpha = n->a.alpha;
    s->ew_beta = n->a.beta;
    s->n_in = 1;
    s->in[0] = n->in[0];
    if (n->op == CC_OP_CLIP) {
        s->alpha = n->a.clip_min;
        s->ew_beta = n->a.clip_max;
        CC_TRY(clip_bound(g, n, 1, &s->alpha, s));
        CC_TRY(clip_bound(g, n, 2, &s->ew_beta, s));
    }
    s->out = n->out[0];
    s->inplace = 1;
    if (na == 2) { /* plan.c's fuse_silu: the Mul of x with Sigmoid(x) */
        const cc_gnode *mul = &g->nodes[absorbed[1]];
        s->ew_op = CLCNN_UN_ID_SILU;
        s->out = mul->out[0];
        snprintf(s->desc, sizeof s->desc, "SiLU %s (Sigmoid) + %s (Mul)", n->name, mul->name);
        return CLCNN_OK;
    }
    if (n->op == CC_OP_CLIP)
        snprintf(s->desc, sizeof s->desc, "Clip %s [%g, %g]", n->name, s->alpha, s->ew_beta);
    else
        snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
    return CLCNN_OK;
}

clcnn_status cc_run_unary(clcnn_plan *p, cc_step *s) {
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    CC_TRY(cc_unary(p->dev, s->ew_op, s->alpha, s->ew_beta, cc_plan_tensor(p, s->in[0]), y));
    if (s->ew_op == CLCNN_UN_ID_CLIP) { /* bounds computed per run, after the static ones */
        if (s->ew_src[1] >= 0)
            CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_MAX, y, cc_plan_tensor(p, s->ew_src[1]), y));
        if (s->ew_src[2] >= 0)
            CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_MIN, y, cc_plan_tensor(p, s->ew_src[2]), y));
    }
    return CLCNN_OK;
}

/* Upload initializer operand v as param[*nparam] (a scalar as one element). */
static clcnn_status upload_operand(clcnn_plan *p, const cc_gnode *n, const cc_gvalue *v, cc_step *s,
                                   int *nparam) {
    char why[160];
    if (v->dtype != CLCNN_F32) {
        snprintf(why, sizeof why, "initializer '%s' is not float32", v->name);
        return cc_step_unsupported(n, why);
    }
    if (v->ndim > CLCNN_MAX_DIMS || *nparam == 4) {
        snprintf(why, sizeof why,
                 "initializer '%s': at most 4 initializer operands of at most %d "
                 "dimensions",
                 v->name, CLCNN_MAX_DIMS);
        return cc_step_unsupported(n, why);
    }
    size_t shape[CLCNN_MAX_DIMS] = {1};
    for (int d = 0; d < v->ndim; d++)
        shape[d] = (size_t)v->dims[d];
    CC_TRY(cc_step_upload(p->dev, v->ndim ? v->ndim : 1, shape, v->data, &s->param[*nparam]));
    (*nparam)++;
    return CLCNN_OK;
}

clcnn_status cc_prepare_binary(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    if (n->n_in > CC_STEP_MAX_IN) return cc_step_unsupported(n, "more than 64 inputs");
    int nparam = 0;
    s->n_in = 0;
    for (int i = 0; i < n->n_in; i++) {
        const cc_gvalue *v = cc_node_in(g, n, i);
        if (!v) return cc_step_unsupported(n, "an absent input");
        if (v->kind == CC_VAL_INIT) {
            CC_TRY(upload_operand(p, n, v, s, &nparam));
            s->ew_src[i] = -nparam; /* -1 - k for param k */
        } else {
            s->ew_src[i] = n->in[i];
            s->in[s->n_in++] = n->in[i];
        }
    }
    s->ew_n = n->n_in;
    s->ew_op = binary_id(n->op);
    s->out = n->out[0];
    /* writing over operand 0 is safe when it has the output's shape; with more operands
     * a later one could be operand 0 again */
    s->inplace =
        n->n_in == 2 && s->ew_src[0] >= 0 && p->vals[n->in[0]].numel == p->vals[n->out[0]].numel;
    snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
    return CLCNN_OK;
}

static const clcnn_tensor *operand(const clcnn_plan *p, const cc_step *s, int i) {
    int src = s->ew_src[i];
    return src >= 0 ? cc_plan_tensor(p, src) : s->param[-1 - src];
}

clcnn_status cc_run_binary(clcnn_plan *p, cc_step *s) {
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    if (s->ew_n == 1) return clcnn_tensor_copy(y, operand(p, s, 0)); /* Max(x), Sum(x) */
    CC_TRY(cc_binary(p->dev, s->ew_op, operand(p, s, 0), operand(p, s, 1), y));
    for (int i = 2; i < s->ew_n; i++)
        CC_TRY(cc_binary(p->dev, s->ew_op, y, operand(p, s, i), y));
    return CLCNN_OK;
}
