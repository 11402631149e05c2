/* The forward of each op kind inside a plan: preparing a step once (parameters uploaded,
 * batch norm folded into convolution weights in double, algorithm chosen, weights
 * transformed) and running it. Indexed like the graph's op table (cc_op). */
#include "exec/exec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static clcnn_status unsupported(const cc_gnode *n, const char *why) {
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "clcnn_plan_create: node '%s' (%s): %s", n->name,
                   cc_op_defs[n->op].name, why);
}

/* A device tensor of the given shape holding host floats. */
static clcnn_status upload(clcnn_device *dev, int ndim, const size_t *shape, const float *data,
                           clcnn_tensor **out) {
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, ndim, shape, out));
    clcnn_status s = clcnn_tensor_upload(*out, data, clcnn_tensor_numel(*out) * sizeof(float));
    if (s != CLCNN_OK) {
        clcnn_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

static clcnn_status need_float_init(const cc_gnode *n, const cc_gvalue *v, const char *what) {
    if (!v || v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32) {
        char why[160];
        snprintf(why, sizeof why, "%s '%s' must be a float initializer", what, v ? v->name : "");
        return unsupported(n, why);
    }
    return CLCNN_OK;
}

static int append(char *buf, size_t cap, const char *s) {
    size_t used = strlen(buf);
    if (used < cap) snprintf(buf + used, cap - used, "%s", s);
    return 0;
}

clcnn_conv2d_desc cc_step_conv_desc(const cc_op_attrs *a) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = (int)a->strides[0];
    d.stride_w = (int)a->strides[1];
    d.pad_h = (int)a->pads[0];
    d.pad_w = (int)a->pads[1];
    d.dilation_h = (int)a->dilations[0];
    d.dilation_w = (int)a->dilations[1];
    d.groups = (int)a->group;
    return d;
}

/* Per-side pads (top != bottom or left != right, e.g. auto_pad SAME_*): x is copied into
 * a step-owned (n, c, h + top + bottom, w + left + right) buffer with zeros around it,
 * and the convolution runs on that without padding. xshape becomes the padded shape. */
static clcnn_status prepare_pre_pad(clcnn_plan *p, const cc_gnode *n, cc_step *s,
                                    clcnn_conv2d_desc *d, size_t xshape[4]) {
    const int64_t *pads = n->a.pads;
    if (pads[0] == pads[2] && pads[1] == pads[3]) return CLCNN_OK;
    size_t padded[4] = {xshape[0], xshape[1], xshape[2] + (size_t)(pads[0] + pads[2]),
                        xshape[3] + (size_t)(pads[1] + pads[3])};
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 4, padded, &s->scratch));
    cc_step_window(&s->xcopy, padded, xshape, -pads[0], -pads[1]);
    d->pad_h = d->pad_w = 0;
    memcpy(xshape, padded, sizeof padded);
    return CLCNN_OK;
}

/* The convolution's input this run: x, or x copied into the padded buffer. */
static clcnn_status conv_input(clcnn_plan *p, cc_step *s, const clcnn_tensor **x) {
    *x = cc_plan_tensor(p, s->in[0]);
    if (!s->scratch) return CLCNN_OK;
    CC_TRY(cc_copy_nd_run(p->dev, &s->xcopy, *x, s->scratch));
    *x = s->scratch;
    return CLCNN_OK;
}

/* A convolution whose weights (or bias) are values computed per run, not initializers:
 * the per-call convolution, nothing fused. */
static clcnn_status prepare_conv_dynamic(clcnn_plan *p, const clcnn_graph *g, const cc_gnode *n,
                                         cc_step *s) {
    s->dynamic = 1;
    s->conv_desc = cc_step_conv_desc(&n->a);
    s->conv_desc.algo = p->opts.conv_algo;
    size_t xshape[4];
    memcpy(xshape, p->vals[n->in[0]].shape, sizeof xshape);
    CC_TRY(prepare_pre_pad(p, n, s, &s->conv_desc, xshape));
    const cc_gvalue *wv = cc_node_in(g, n, 1);
    size_t wshape[CC_GMAX], wn;
    CC_TRY(cc_value_dims(wv, p->batch, "clcnn_plan_create", wshape, &wn));
    if (wv->ndim == 4)
        CC_TRY(cc_plan_find(p->dev, p->opts.find, &p->convs, CLCNN_CONV_PASS_FORWARD, &s->conv_desc,
                            xshape, wshape, n->name, &p->conv_measured));
    s->n_in = n->n_in > 2 && n->in[2] >= 0 ? 3 : 2;
    for (int i = 0; i < s->n_in; i++)
        s->in[i] = n->in[i];
    /* the parts that are initializers are uploaded once */
    for (int i = 1; i < s->n_in; i++) {
        const cc_gvalue *v = cc_node_in(g, n, i);
        if (v->kind != CC_VAL_INIT) continue;
        CC_TRY(need_float_init(n, v, i == 1 ? "the weight" : "the bias"));
        size_t shape[4];
        for (int d = 0; d < v->ndim; d++)
            shape[d] = (size_t)v->dims[d];
        CC_TRY(upload(p->dev, v->ndim, shape, v->data, &s->param[i - 1]));
    }
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "Conv %s [weights per run]", n->name);
    return CLCNN_OK;
}

/* ---- Conv (+ BatchNormalization) (+ Relu | LeakyRelu | Add (+ Relu | LeakyRelu)) ------- */

/* One convolution's group (absorbed[0] the Conv, then what fused into it), folded on the
 * host: weights and bias (k) with the batch norm folded in double, the activation, and
 * the residual Add's other operand appended to s->in. s->desc and s->out follow the group. */
typedef struct conv_group {
    const cc_gnode *n;
    size_t w[4], k;
    float *wh, *bh; /* malloc'd */
    int has_bias;
    clcnn_activation act;
    float alpha;
    int residual;
} conv_group;

static clcnn_status fold_group(const clcnn_graph *g, cc_step *s, const int *absorbed, int na,
                               conv_group *cg) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_gvalue *w = cc_node_in(g, n, 1), *b = cc_node_in(g, n, 2);
    memset(cg, 0, sizeof *cg); /* wh, bh NULL on every failure */
    CC_TRY(need_float_init(n, w, "the weight"));
    if (b) CC_TRY(need_float_init(n, b, "the bias"));
    cg->n = n;
    for (int i = 0; i < 4; i++)
        cg->w[i] = (size_t)w->dims[i];
    size_t k = cg->w[0], per_k = w->numel / k;
    cg->k = k;
    cg->wh = malloc(w->numel * sizeof *cg->wh);
    cg->bh = calloc(k, sizeof *cg->bh);
    if (!cg->wh || !cg->bh) {
        free(cg->wh);
        free(cg->bh);
        cg->wh = cg->bh = NULL;
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    }
    memcpy(cg->wh, w->data, w->numel * sizeof *cg->wh);
    if (b) memcpy(cg->bh, b->data, k * sizeof *cg->bh);
    cg->has_bias = b != NULL;
    append(s->desc, sizeof s->desc, "Conv");
    s->out = n->out[0];
    for (int i = 1; i < na; i++) {
        const cc_gnode *m = &g->nodes[absorbed[i]];
        append(s->desc, sizeof s->desc, "+");
        append(s->desc, sizeof s->desc, cc_op_defs[m->op].name);
        s->out = m->out[0];
        if (m->op == CC_OP_BATCHNORM) {
            /* y = gamma (conv + b - mean) / sqrt(var + eps) + beta, folded in double */
            const float *gamma = cc_node_in(g, m, 1)->data, *beta = cc_node_in(g, m, 2)->data;
            const float *mean = cc_node_in(g, m, 3)->data, *var = cc_node_in(g, m, 4)->data;
            for (size_t c = 0; c < k; c++) {
                double sc = (double)gamma[c] / sqrt((double)var[c] + (double)m->a.epsilon);
                for (size_t j = 0; j < per_k; j++)
                    cg->wh[c * per_k + j] = (float)(cg->wh[c * per_k + j] * sc);
                cg->bh[c] = (float)(((double)cg->bh[c] - mean[c]) * sc + beta[c]);
            }
            cg->has_bias = 1;
        } else if (m->op == CC_OP_RELU || m->op == CC_OP_LEAKYRELU) {
            cg->act = m->op == CC_OP_RELU ? CLCNN_ACT_RELU : CLCNN_ACT_LEAKY_RELU;
            cg->alpha = m->op == CC_OP_RELU ? 0.0f : m->a.alpha;
        } else if (m->op == CC_OP_ADD) {
            int prev = g->nodes[absorbed[i - 1]].out[0];
            cg->residual = 1;
            s->in[s->n_in++] = m->in[0] == prev ? m->in[1] : m->in[0];
        } else if (m->op == CC_OP_MUL) { /* SiLU: the Sigmoid, then this Mul (plan_fuse.c) */
            cg->act = CC_ACT_SILU;
            cg->alpha = 0.0f;
        }
    }
    return CLCNN_OK;
}

/* The group's weights and (when it has one) bias on the device. */
static clcnn_status upload_group(clcnn_plan *p, const conv_group *cg, clcnn_tensor **wt,
                                 clcnn_tensor **bt) {
    size_t numel = cg->w[0] * cg->w[1] * cg->w[2] * cg->w[3];
    CC_TRY(upload(p->dev, 4, cg->w, cg->wh, wt));
    clcnn_status st = cg->has_bias ? upload(p->dev, 1, &cg->k, cg->bh, bt) : CLCNN_OK;
    if (st != CLCNN_OK) {
        clcnn_tensor_free(*wt);
        *wt = NULL;
    }
    p->mem.param_bytes += (numel + (cg->has_bias ? cg->k : 0)) * sizeof(float);
    return st;
}

/* A depthwise Conv group and the 1x1 Conv group that reads it (plan_fuse.c's
 * fuse_depthwise_pair; absorbed[split] is the second Conv): one step, the depthwise layer
 * computed inside the 1x1 convolution's GEMM (cc_conv_fwd_desc's pre_dw). */
static clcnn_status prepare_conv_pair(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                      const int *absorbed, int na, int split) {
    const cc_gnode *dn = &g->nodes[absorbed[0]], *pn = &g->nodes[absorbed[split]];
    cc_conv_fwd_desc d = {0};
    d.pre_dw = 1;
    d.dw = cc_step_conv_desc(&dn->a);
    d.conv = cc_step_conv_desc(&pn->a);
    d.conv.algo = p->opts.conv_algo;
    for (int i = 0; i < 4; i++)
        d.x[i] = p->vals[dn->in[0]].shape[i];
    s->n_in = 1;
    s->in[0] = dn->in[0];
    conv_group dg, pg;
    CC_TRY(fold_group(g, s, absorbed, split, &dg)); /* no residual: plan_fuse.c checked */
    append(s->desc, sizeof s->desc, ">");
    clcnn_status st = fold_group(g, s, absorbed + split, na - split, &pg);
    clcnn_tensor *dwt = NULL, *dbt = NULL, *wt = NULL, *bt = NULL;
    if (st == CLCNN_OK) st = upload_group(p, &dg, &dwt, &dbt);
    if (st == CLCNN_OK) st = upload_group(p, &pg, &wt, &bt);
    if (st == CLCNN_OK) {
        memcpy(d.w, pg.w, sizeof d.w);
        d.dw_w = dwt;
        d.dw_b = dbt;
        d.dw_act = dg.act;
        d.dw_alpha = dg.alpha;
        d.act = pg.act;
        d.alpha = pg.alpha;
        d.residual = pg.residual;
        st = cc_conv_fwd_create(p->dev, &d, wt, bt, &s->conv);
    }
    free(dg.wh);
    free(dg.bh);
    free(pg.wh);
    free(pg.bh);
    clcnn_tensor_free(dwt);
    clcnn_tensor_free(dbt);
    clcnn_tensor_free(wt);
    clcnn_tensor_free(bt);
    if (st != CLCNN_OK)
        return cc_fail_append(st, " (plan step for nodes '%s' and '%s')", dn->name, pn->name);
    char tail[160];
    snprintf(tail, sizeof tail, " %s > %s [depthwise+implicit_gemm]", dn->name, pn->name);
    append(s->desc, sizeof s->desc, tail);
    return CLCNN_OK;
}

static clcnn_status prepare_conv(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                 const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_gvalue *w = cc_node_in(g, n, 1), *b = cc_node_in(g, n, 2);
    if (w->kind != CC_VAL_INIT || (b && b->kind != CC_VAL_INIT))
        return prepare_conv_dynamic(p, g, n, s);
    for (int i = 1; i < na; i++)
        if (g->nodes[absorbed[i]].op == CC_OP_CONV)
            return prepare_conv_pair(p, g, s, absorbed, na, i);
    cc_conv_fwd_desc d = {0};
    d.conv = cc_step_conv_desc(&n->a);
    d.conv.algo = p->opts.conv_algo;
    for (int i = 0; i < 4; i++) {
        d.x[i] = p->vals[n->in[0]].shape[i];
        d.w[i] = (size_t)w->dims[i];
    }
    CC_TRY(prepare_pre_pad(p, n, s, &d.conv, d.x));
    s->n_in = 1;
    s->in[0] = n->in[0];
    conv_group cg;
    CC_TRY(fold_group(g, s, absorbed, na, &cg));
    d.act = cg.act;
    d.alpha = cg.alpha;
    d.residual = cg.residual;
    clcnn_tensor *wt = NULL, *bt = NULL;
    clcnn_status st = upload_group(p, &cg, &wt, &bt);
    free(cg.wh);
    free(cg.bh);
    if (st == CLCNN_OK)
        st = cc_plan_find(p->dev, p->opts.find, &p->convs, CLCNN_CONV_PASS_FORWARD, &d.conv, d.x,
                          d.w, n->name, &p->conv_measured);
    if (st == CLCNN_OK) {
        st = cc_conv_fwd_create(p->dev, &d, wt, bt, &s->conv);
        if (st == CLCNN_ERR_UNSUPPORTED && d.conv.algo != CLCNN_CONV_AUTO) {
            d.conv.algo = CLCNN_CONV_AUTO; /* the forced algorithm does not apply here */
            st = cc_conv_fwd_create(p->dev, &d, wt, bt, &s->conv);
        }
    }
    clcnn_tensor_free(wt);
    clcnn_tensor_free(bt);
    if (st != CLCNN_OK) return cc_fail_append(st, " (plan step for node '%s')", n->name);
    char tail[96];
    snprintf(tail, sizeof tail, " %s [%s]", n->name,
             clcnn_conv_algo_name(cc_conv_fwd_algo(s->conv)));
    append(s->desc, sizeof s->desc, tail);
    return CLCNN_OK;
}

static clcnn_status run_conv(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *x = NULL;
    CC_TRY(conv_input(p, s, &x));
    if (s->dynamic) {
        const clcnn_tensor *w = s->param[0] ? s->param[0] : cc_plan_tensor(p, s->in[1]);
        const clcnn_tensor *b = s->n_in < 3   ? NULL
                                : s->param[1] ? s->param[1]
                                              : cc_plan_tensor(p, s->in[2]);
        return clcnn_conv2d_forward(p->dev, &s->conv_desc, x, w, b,
                                    (clcnn_tensor *)cc_plan_tensor(p, s->out), CLCNN_ACT_NONE);
    }
    const clcnn_tensor *z = s->n_in > 1 ? cc_plan_tensor(p, s->in[1]) : NULL;
    return cc_conv_fwd_run(s->conv, x, z, (clcnn_tensor *)cc_plan_tensor(p, s->out));
}

/* ---- BatchNormalization (not folded) ----------------------------------------------------- */

static clcnn_status prepare_batchnorm(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                      const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_gvalue *x = cc_node_in(g, n, 0);
    CC_RETURN_IF(x->ndim < 2 || x->ndim > 4, CLCNN_ERR_UNSUPPORTED,
                 "clcnn_plan_create: node '%s' (BatchNormalization): input of %d dimensions "
                 "(2, 3 or 4 supported)",
                 n->name, x->ndim);
    s->n_in = 1;
    s->in[0] = n->in[0];
    for (int i = 1; i < 5; i++) {
        const cc_gvalue *v = cc_node_in(g, n, i);
        s->in[i] = n->in[i];
        if (v->kind != CC_VAL_INIT) { /* a value computed per run: read it then */
            s->dynamic = 1;
            continue;
        }
        CC_TRY(need_float_init(n, v, "the parameter"));
        size_t c = (size_t)v->dims[0];
        CC_TRY(upload(p->dev, 1, &c, v->data, &s->param[i - 1]));
    }
    if (s->dynamic) s->n_in = 5;
    s->eps = n->a.epsilon;
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "BatchNormalization %s", n->name);
    return CLCNN_OK;
}

static clcnn_status run_batchnorm(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *q[4];
    for (int i = 0; i < 4; i++)
        q[i] = s->param[i] ? s->param[i] : cc_plan_tensor(p, s->in[i + 1]);
    const clcnn_tensor *x = cc_plan_tensor(p, s->in[0]);
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    if (clcnn_tensor_ndim(x) != 3)
        return clcnn_batchnorm_forward_infer(p->dev, x, q[0], q[1], q[2], q[3], s->eps, y);
    /* (N, C, L) as (N, C, L, 1): PyTorch's BatchNorm1d on sequences */
    size_t shape[4] = {clcnn_tensor_dim(x, 0), clcnn_tensor_dim(x, 1), clcnn_tensor_dim(x, 2), 1};
    clcnn_tensor *xv = NULL, *yv = NULL;
    clcnn_status st = clcnn_tensor_view(x, 4, shape, &xv);
    if (st == CLCNN_OK) st = clcnn_tensor_view(y, 4, shape, &yv);
    if (st == CLCNN_OK)
        st = clcnn_batchnorm_forward_infer(p->dev, xv, q[0], q[1], q[2], q[3], s->eps, yv);
    clcnn_tensor_free(xv);
    clcnn_tensor_free(yv);
    return st;
}

/* ---- activations -------------------------------------------------------------------- */

static clcnn_status prepare_act(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    s->act = n->op == CC_OP_RELU ? CLCNN_ACT_RELU : CLCNN_ACT_LEAKY_RELU;
    s->alpha = n->op == CC_OP_RELU ? 0.0f : n->a.alpha;
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
    return CLCNN_OK;
}

static clcnn_status run_act(clcnn_plan *p, cc_step *s) {
    return clcnn_activation_forward(p->dev, s->act, s->alpha, cc_plan_tensor(p, s->in[0]),
                                    (clcnn_tensor *)cc_plan_tensor(p, s->out));
}

/* ---- pooling ----------------------------------------------------------------------------- */

static clcnn_status prepare_pool(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                 const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_op_attrs *a = &n->a;
    clcnn_pool2d_desc *d = &s->pool;
    memset(d, 0, sizeof *d);
    int reader;
    if (n->n_out > 1 && cc_value_readers(g, n->out[1], &reader) > 0)
        return unsupported(n, "the Indices output");
    int dilated = a->dilations[0] != 1 || a->dilations[1] != 1;
    switch (n->op) {
    case CC_OP_GLOBALAVGPOOL:
    case CC_OP_GLOBALMAXPOOL:
        d->mode = n->op == CC_OP_GLOBALMAXPOOL ? CLCNN_POOL_MAX : CLCNN_POOL_AVG;
        d->global = 1;
        break;
    default:
        if (dilated && n->op != CC_OP_MAXPOOL) return unsupported(n, "dilations");
        /* per-side pads, ceil mode or dilations: the per-output kernels with the graph's
         * output size */
        s->pool_general =
            a->pads[0] != a->pads[2] || a->pads[1] != a->pads[3] || a->ceil_mode || dilated;
        s->pool_dil[0] = (int)a->dilations[0];
        s->pool_dil[1] = (int)a->dilations[1];
        for (int i = 0; i < 4; i++)
            s->pool_pads[i] = (int)a->pads[i];
        cc_step_pool_desc(n, d);
    }
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
    return CLCNN_OK;
}

static clcnn_status run_pool(clcnn_plan *p, cc_step *s) {
    const clcnn_pool2d_desc *d = &s->pool;
    if (s->pool_general)
        return cc_pool2d_forward_pads(p->dev, d->mode, cc_plan_tensor(p, s->in[0]),
                                      (clcnn_tensor *)cc_plan_tensor(p, s->out), d->kernel_h,
                                      d->kernel_w, d->stride_h, d->stride_w, s->pool_pads,
                                      s->pool_dil[0], s->pool_dil[1]);
    return clcnn_pool2d_forward(p->dev, &s->pool, cc_plan_tensor(p, s->in[0]),
                                (clcnn_tensor *)cc_plan_tensor(p, s->out), NULL);
}

/* ---- Gemm as a fully connected layer ------------------------------------------------------- */

/* The general product: Y (M, N) = alpha op(A) op(B) + beta C through CLBlast, C broadcast
 * on the host once (initializer) or per run (a value: copied into Y, broadcast by the
 * strided copy xcopy when it is smaller, then scaled). */
static clcnn_status prepare_gemm_general(clcnn_plan *p, const clcnn_graph *g, const cc_gnode *n,
                                         cc_step *s) {
    const cc_gvalue *b = cc_node_in(g, n, 1), *c = cc_node_in(g, n, 2);
    const cc_pvalue *y = &p->vals[n->out[0]];
    size_t m = y->shape[0], nn = y->shape[1];
    s->dynamic = 1;
    s->n_in = 2;
    s->in[0] = n->in[0];
    s->in[1] = n->in[1];
    s->trans_a = n->a.trans_a;
    s->trans_b = n->a.trans_b;
    s->gemm_alpha = n->a.alpha;
    s->gemm_beta = 0.0f; /* 1 when C was written into Y first */
    if (b->kind == CC_VAL_INIT) {
        CC_TRY(need_float_init(n, b, "B"));
        size_t shape[2] = {(size_t)b->dims[0], (size_t)b->dims[1]};
        CC_TRY(upload(p->dev, 2, shape, b->data, &s->param[0]));
    }
    if (c && n->a.beta != 0.0f) {
        s->gemm_beta = 1.0f;
        if (c->kind == CC_VAL_INIT) {
            CC_TRY(need_float_init(n, c, "C"));
            float *full = malloc(m * nn * sizeof *full);
            CC_RETURN_IF(!full, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
            const float *cd = c->data;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < nn; j++) {
                    size_t ci = c->ndim == 2 ? (c->dims[0] == 1 ? 0 : i) * (size_t)c->dims[1] +
                                                   (c->dims[1] == 1 ? 0 : j)
                                : c->ndim == 1 ? (c->dims[0] == 1 ? 0 : j)
                                               : 0;
                    full[i * nn + j] = n->a.beta * cd[ci];
                }
            size_t shape[2] = {m, nn};
            clcnn_status st = upload(p->dev, 2, shape, full, &s->param[1]);
            free(full);
            CC_TRY(st);
        } else {
            /* C (cm, cn), (cn) or a scalar, each dim 1 or Y's: a strided copy into Y whose
             * steps are 0 along the broadcast dims */
            const cc_pvalue *cv = &p->vals[n->in[2]];
            size_t cm = cv->ndim == 2 ? cv->shape[0] : 1;
            size_t cn = cv->ndim >= 1 ? cv->shape[cv->ndim - 1] : 1;
            size_t yshape[2] = {m, nn};
            cc_copy_nd_dense(&s->xcopy, 2, yshape);
            s->xcopy.x_stride[0] = cn;
            s->xcopy.x_stride[1] = 1;
            s->xcopy.lim[0] = cm;
            s->xcopy.lim[1] = cn;
            s->xcopy.step[0] = cm == 1 ? 0 : 1;
            s->xcopy.step[1] = cn == 1 ? 0 : 1;
            s->in[s->n_in++] = n->in[2];
            s->c_per_run = 1;
            s->c_scale = n->a.beta;
        }
    }
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "Gemm %s [general]", n->name);
    return CLCNN_OK;
}

static clcnn_status run_gemm_general(clcnn_plan *p, cc_step *s) {
    const clcnn_tensor *a = cc_plan_tensor(p, s->in[0]);
    const clcnn_tensor *b = s->param[0] ? s->param[0] : cc_plan_tensor(p, s->in[1]);
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    size_t m = clcnn_tensor_dim(y, 0), n = clcnn_tensor_dim(y, 1);
    int ta = s->trans_a, tb = s->trans_b;
    size_t k = ta ? clcnn_tensor_dim(a, 0) : clcnn_tensor_dim(a, 1);
    if (s->param[1]) CC_TRY(clcnn_tensor_copy(y, s->param[1]));
    if (s->c_per_run) {
        CC_TRY(cc_copy_nd_run(p->dev, &s->xcopy, cc_plan_tensor(p, s->in[2]), y));
        CC_TRY(clcnn_axpby(p->dev, 0.0f, y, s->c_scale, y));
    }
    return clcnn_gemm_batched(p->dev, ta, tb, m, n, k, s->gemm_alpha, a, ta ? m : k, 0, b,
                              tb ? k : n, 0, s->gemm_beta, y, n, 0, 1);
}

/* ---- Gemm as a fully connected layer ------------------------------------------------------- */

static clcnn_status prepare_gemm(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                 const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const cc_gvalue *b = cc_node_in(g, n, 1), *c = cc_node_in(g, n, 2);
    int general = n->a.trans_a || n->a.alpha != 1.0f || b->kind != CC_VAL_INIT ||
                  (c && n->a.beta != 0.0f &&
                   (c->kind != CC_VAL_INIT || c->numel != (size_t)p->vals[n->out[0]].shape[1]));
    if (general) return prepare_gemm_general(p, g, n, s);
    CC_TRY(need_float_init(n, b, "B"));
    size_t out = (size_t)b->dims[n->a.trans_b ? 0 : 1], in = (size_t)b->dims[n->a.trans_b ? 1 : 0];
    float *wh = malloc(out * in * sizeof *wh);
    CC_RETURN_IF(!wh, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    const float *bd = b->data;
    for (size_t o = 0; o < out; o++)
        for (size_t i = 0; i < in; i++)
            wh[o * in + i] = n->a.trans_b ? bd[o * in + i] : bd[i * out + o];
    size_t wshape[2] = {out, in};
    clcnn_status st = upload(p->dev, 2, wshape, wh, &s->param[0]);
    free(wh);
    CC_TRY(st);
    if (c && n->a.beta != 0.0f) {
        CC_TRY(need_float_init(n, c, "C"));
        float *ch = malloc(out * sizeof *ch);
        CC_RETURN_IF(!ch, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
        for (size_t o = 0; o < out; o++)
            ch[o] = n->a.beta * ((const float *)c->data)[c->numel == 1 ? 0 : o];
        st = upload(p->dev, 1, &out, ch, &s->param[1]);
        free(ch);
        CC_TRY(st);
    }
    s->n_in = 1;
    s->in[0] = n->in[0];
    s->out = n->out[0];
    snprintf(s->desc, sizeof s->desc, "Gemm %s", n->name);
    return CLCNN_OK;
}

static clcnn_status run_gemm(clcnn_plan *p, cc_step *s) {
    if (s->dynamic) return run_gemm_general(p, s);
    return clcnn_linear_forward(p->dev, cc_plan_tensor(p, s->in[0]), s->param[0], s->param[1],
                                (clcnn_tensor *)cc_plan_tensor(p, s->out));
}

typedef struct exec_def {
    clcnn_status (*prepare)(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                            int na);
    clcnn_status (*run)(clcnn_plan *p, cc_step *s);
} exec_def;

/* Flatten, Identity, Dropout, Reshape, Squeeze and Unsqueeze have no entry: the plan makes
 * their outputs views. */
static const exec_def exec_defs[CC_OP_COUNT] = {
    [CC_OP_CONV] = {prepare_conv, run_conv},
    [CC_OP_BATCHNORM] = {prepare_batchnorm, run_batchnorm},
    [CC_OP_RELU] = {prepare_act, run_act},
    [CC_OP_LEAKYRELU] = {prepare_act, run_act},
    [CC_OP_MAXPOOL] = {prepare_pool, run_pool},
    [CC_OP_AVGPOOL] = {prepare_pool, run_pool},
    [CC_OP_GLOBALAVGPOOL] = {prepare_pool, run_pool},
    [CC_OP_GLOBALMAXPOOL] = {prepare_pool, run_pool},
    [CC_OP_ADD] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_CONCAT] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_GEMM] = {prepare_gemm, run_gemm},
    /* data movement: lib/exec/steps_movement.c */
    [CC_OP_TRANSPOSE] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_SLICE] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_SPLIT] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_PAD] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_EXPAND] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_TILE] = {cc_prepare_movement, cc_run_movement},
    [CC_OP_GATHER] = {cc_prepare_movement, cc_run_movement},
    /* element-wise family (lib/exec/steps_eltwise.c) */
    [CC_OP_SIGMOID] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_TANH] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_HARDSIGMOID] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_HARDSWISH] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_CLIP] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_EXP] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_LOG] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_SQRT] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_NEG] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_ABS] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_RECIPROCAL] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_FLOOR] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_CEIL] = {cc_prepare_unary, cc_run_unary},
    [CC_OP_PRELU] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_SUB] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_MUL] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_DIV] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_POW] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_MAX] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_MIN] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_SUM] = {cc_prepare_binary, cc_run_binary},
    [CC_OP_SOFTMAX] = {cc_prepare_softmax, cc_run_softmax},
    [CC_OP_LOGSOFTMAX] = {cc_prepare_softmax, cc_run_softmax},
    [CC_OP_MATMUL] = {cc_prepare_matmul, cc_run_matmul},
    [CC_OP_REDUCEMEAN] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCESUM] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCEMAX] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCEMIN] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCEPROD] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCESUMSQUARE] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCEL1] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCEL2] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCELOGSUM] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_REDUCELOGSUMEXP] = {cc_prepare_reduce, cc_run_reduce},
    [CC_OP_LRN] = {cc_prepare_lrn, cc_run_lrn},
    [CC_OP_CONVTRANSPOSE] = {cc_prepare_convt, cc_run_convt},
    [CC_OP_RESIZE] = {cc_prepare_resize, cc_run_resize},
    [CC_OP_UPSAMPLE] = {cc_prepare_resize, cc_run_resize},
};

clcnn_status cc_step_prepare(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                             int nabsorbed) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    const exec_def *e = &exec_defs[n->op];
    if (!e->prepare) return unsupported(n, "no forward in plans");
    for (int i = 0; i < n->n_in; i++) {
        const cc_gvalue *v = cc_node_in(g, n, i);
        if (v && v->kind != CC_VAL_INIT && v->dtype != CLCNN_F32)
            return unsupported(n, "a non-float input");
    }
    CC_TRY(e->prepare(p, g, s, absorbed, nabsorbed));
    /* every value a step reads at run time must be computed or fed, not an initializer
     * (those are uploaded into the step's parameters by its prepare) */
    for (int j = 0; j < s->n_in; j++)
        if (g->vals[s->in[j]].kind == CC_VAL_INIT && !(s->dynamic && j > 0 && s->param[j - 1]))
            return unsupported(n, "an initializer where a computed value is expected");
    return CLCNN_OK;
}

clcnn_status cc_step_run(clcnn_plan *p, cc_step *s) {
    return exec_defs[s->op].run(p, s);
}

void cc_step_release(cc_step *s) {
    cc_conv_fwd_free(s->conv);
    s->conv = NULL;
    for (int i = 0; i < 4; i++) {
        clcnn_tensor_free(s->param[i]);
        s->param[i] = NULL;
    }
    clcnn_tensor_free(s->scratch);
    s->scratch = NULL;
    free(s->copies);
    s->copies = NULL;
    s->ncopies = 0;
}

/* ---- shared with the op families in other files (exec_internal.h) ------------------- */

void cc_step_pool_desc(const cc_gnode *n, clcnn_pool2d_desc *d) {
    const cc_op_attrs *a = &n->a;
    d->global = 0;
    d->mode = n->op == CC_OP_MAXPOOL
                  ? CLCNN_POOL_MAX
                  : (a->count_include_pad ? CLCNN_POOL_AVG : CLCNN_POOL_AVG_EXCLUDE);
    d->kernel_h = (int)a->kernel[0];
    d->kernel_w = (int)a->kernel[1];
    d->stride_h = (int)a->strides[0];
    d->stride_w = (int)a->strides[1];
    d->pad_h = (int)a->pads[0];
    d->pad_w = (int)a->pads[1];
}

void cc_step_window(cc_copy_nd *c, const size_t box[4], const size_t src[4], int64_t top,
                    int64_t left) {
    cc_copy_nd_dense(c, 4, box);
    size_t stride = 1;
    for (int i = 3; i >= 0; i--) {
        c->lim[i] = src[i];
        c->x_stride[i] = stride;
        stride *= src[i];
    }
    c->start[2] = top;
    c->start[3] = left;
}

clcnn_status cc_step_unsupported(const cc_gnode *n, const char *why) {
    return unsupported(n, why);
}

clcnn_status cc_step_upload(clcnn_device *dev, int ndim, const size_t *shape, const float *data,
                            clcnn_tensor **out) {
    return upload(dev, ndim, shape, data, out);
}
