/* Training plans' op table (what lib/exec/train.c walks: which ops have a backward, which
 * inputs receive a gradient, prepare / forward / backward per kind) and the compute ops:
 * Conv and ConvTranspose (per-side pads through a padded copy), BatchNormalization with
 * batch statistics, pooling (per-side pads and ceil mode through a padded copy), Gemm and
 * MatMul; the helpers the other families share. Each backward is made of the primitives in
 * lib/ops (dgrad, wgrad, pool and batch-norm backward, CLBlast); an input gradient is
 * written, never accumulated (train.c sums). The element-wise family is in
 * train_eltwise.c, data movement, views and Dropout in train_movement.c.
 *
 * Shape key: x (n, c, h, w), w (k, c/groups, r, s), y (n, k, p, q); Gemm A (m, k),
 * B (k, n), Y (m, n) before transposes. */
#include "exec/train_internal.h"

#include "clcnn_ids.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#define T(v) (p->vals[(v)].t) /* the value's tensor this forward */
#define G(v) (p->vals[(v)].g) /* its gradient */

/* ---- shared with train_eltwise.c and train_movement.c (train_internal.h) ---------------- */

clcnn_status cc_tr_unsupported(const cc_gnode *n, const char *why) {
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "clcnn_train_plan_create: node '%s' (%s): %s", n->name,
                   cc_op_defs[n->op].name, why);
}

clcnn_status cc_tr_like(clcnn_train_plan *p, int v, clcnn_tensor **out) {
    return clcnn_tensor_create(p->dev, CLCNN_F32, p->vals[v].ndim, p->vals[v].shape, out);
}

clcnn_status cc_tr_scalar(clcnn_train_plan *p, float value, clcnn_tensor **out) {
    size_t one = 1;
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &one, out));
    return clcnn_tensor_upload(*out, &value, sizeof value);
}

/* dst (an operand of an element-wise op, broadcast to y's shape) = the sum of src (y's
 * shape) over the dims the operand was broadcast along. */
clcnn_status cc_tr_reduce_to(clcnn_train_plan *p, const clcnn_tensor *src, int yv, int av,
                             clcnn_tensor *dst) {
    const cc_tval *y = &p->vals[yv], *a = &p->vals[av];
    if (a->numel == y->numel) return clcnn_tensor_copy(dst, src);
    unsigned mask = 0;
    for (int d = 0; d < y->ndim; d++) {
        int ad = d - (y->ndim - a->ndim);
        size_t dim = ad < 0 ? 1 : a->shape[ad];
        if (dim == 1 && y->shape[d] != 1) mask |= 1u << d;
    }
    return cc_reduce(p->dev, CC_REDUCE_SUM, src, mask, dst);
}

/* Concat, Split, Softmax: v as (outer, axis, inner). */
void cc_tr_join_dims(const cc_tval *v, int64_t axis, size_t d[3]) {
    int ax = (int)(axis < 0 ? axis + v->ndim : axis);
    d[0] = d[1] = d[2] = 1;
    for (int k = 0; k < v->ndim; k++)
        *(k < ax ? &d[0] : k == ax ? &d[1] : &d[2]) *= v->shape[k];
}

/* ---- preparation ----------------------------------------------------------------------- */

/* The padded input px (n, c, hp, wp) holding x at (top, left) and fill around it, its
 * gradient dpx, and the two copies. */
static clcnn_status prepare_padded(clcnn_train_plan *p, cc_tnode *n, size_t hp, size_t wp,
                                   float fill) {
    const size_t *x = p->vals[n->in[0]].shape;
    size_t padded[4] = {x[0], x[1], hp, wp};
    int64_t top = n->a.pads[0], left = n->a.pads[1];
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 4, padded, &n->px));
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 4, padded, &n->dpx));
    cc_step_window(&n->pad_in, padded, x, -top, -left);
    n->pad_in.value = fill;
    cc_step_window(&n->crop, x, padded, top, left); /* rows past px (unused by ceil): 0 */
    return CLCNN_OK;
}

/* Per-side pads or ceil mode: windows over px without padding, as many as the graph's
 * output has; max pooling pads with -FLT_MAX, average pooling with 0 and divides by the
 * share of each window inside x (count_include_pad: inside x and its pads). */
static clcnn_status prepare_pool_padded(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_pool2d_desc *d = &n->pool;
    const cc_op_attrs *a = &n->a;
    const size_t *x = p->vals[n->in[0]].shape, *y = p->vals[n->out[0]].shape;
    size_t hp = (y[2] - 1) * (size_t)d->stride_h + (size_t)d->kernel_h;
    size_t wp = (y[3] - 1) * (size_t)d->stride_w + (size_t)d->kernel_w;
    int max = d->mode == CLCNN_POOL_MAX;
    d->pad_h = d->pad_w = 0;
    CC_TRY(prepare_padded(p, n, hp, wp, max ? -FLT_MAX : 0.0f));
    if (max) return CLCNN_OK;
    d->mode = CLCNN_POOL_AVG;
    int inc = a->count_include_pad;
    size_t r0 = inc ? 0 : (size_t)a->pads[0], c0 = inc ? 0 : (size_t)a->pads[1];
    size_t r1 = (size_t)a->pads[0] + x[2] + (inc ? (size_t)a->pads[2] : 0);
    size_t c1 = (size_t)a->pads[1] + x[3] + (inc ? (size_t)a->pads[3] : 0);
    float *mask = calloc(hp * wp, sizeof *mask);
    if (!mask)
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_train_plan_create: out of host memory");
    for (size_t i = r0; i < r1 && i < hp; i++)
        for (size_t j = c0; j < c1 && j < wp; j++)
            mask[i * wp + j] = 1.0f;
    size_t ms[4] = {1, 1, hp, wp}, cs[4] = {1, 1, y[2], y[3]};
    clcnn_tensor *mt = NULL;
    clcnn_status s = clcnn_tensor_create(p->dev, CLCNN_F32, 4, ms, &mt);
    if (s == CLCNN_OK) s = clcnn_tensor_upload(mt, mask, hp * wp * sizeof *mask);
    if (s == CLCNN_OK) s = clcnn_tensor_create(p->dev, CLCNN_F32, 4, cs, &n->cnt);
    if (s == CLCNN_OK) s = clcnn_pool2d_forward(p->dev, d, mt, n->cnt, NULL);
    if (s == CLCNN_OK) s = cc_tr_like(p, n->out[0], &n->scratch[0]);
    clcnn_tensor_free(mt);
    free(mask);
    return s;
}

/* Each pass's algorithm, fixed now: Find first (when on) for the passes a step runs
 * (forward; the data gradient when x needs one; the filter gradient when w does), then
 * AUTO's choice, so a later change of the tuning file's in-memory copy cannot switch the
 * algorithm of a plan in the middle of training. x is the convolution's input shape
 * (padded when the plan pads it). */
static clcnn_status conv_choose(clcnn_train_plan *p, cc_tnode *n, const cc_gnode *gn,
                                const size_t *x) {
    const cc_tval *wv = &p->vals[n->in[1]];
    if (p->vals[n->in[0]].ndim != 4 || wv->ndim != 4)
        return cc_tr_unsupported(gn, "an input or weights of other than 4 dims");
    int runs[CLCNN_CONV_PASS_COUNT] = {1, p->vals[n->in[0]].need, wv->need};
    for (int ps = 0; ps < CLCNN_CONV_PASS_COUNT; ps++) {
        n->conv_algo[ps] = n->conv.algo;
        if (!runs[ps]) continue;
        CC_TRY(cc_plan_find(p->dev, p->opts.find, &p->convs, (clcnn_conv_pass)ps, &n->conv, x,
                            wv->shape, gn->name, &p->conv_measured));
        if (n->conv.algo == CLCNN_CONV_AUTO)
            CC_TRY(clcnn_conv2d_algo_choice(p->dev, (clcnn_conv_pass)ps, &n->conv, x, wv->shape,
                                            &n->conv_algo[ps], NULL));
    }
    return CLCNN_OK;
}

static clcnn_status prepare_conv(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    const cc_op_attrs *a = &n->a;
    if (p->vals[n->in[0]].ndim != 4) return cc_tr_unsupported(gn, "an input of other than 4 dims");
    for (int j = 1; j < n->n_in; j++)
        if (n->in[j] >= 0 && g->vals[n->in[j]].kind != CC_VAL_INIT)
            return cc_tr_unsupported(gn, "weights computed per run");
    n->conv = cc_step_conv_desc(a);
    n->conv.algo = p->opts.conv_algo;
    const size_t *x = p->vals[n->in[0]].shape;
    if (a->pads[0] != a->pads[2] || a->pads[1] != a->pads[3]) {
        n->conv.pad_h = n->conv.pad_w = 0;
        size_t hp = x[2] + (size_t)(a->pads[0] + a->pads[2]),
               wp = x[3] + (size_t)(a->pads[1] + a->pads[3]);
        CC_TRY(prepare_padded(p, n, hp, wp, 0.0f));
        x = n->px->shape;
    }
    return conv_choose(p, n, gn, x);
}

static clcnn_status prepare_pool(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    const cc_op_attrs *a = &n->a;
    clcnn_pool2d_desc *d = &n->pool;
    memset(d, 0, sizeof *d);
    int max = n->op == CC_OP_MAXPOOL || n->op == CC_OP_GLOBALMAXPOOL;
    if (n->op == CC_OP_GLOBALAVGPOOL || n->op == CC_OP_GLOBALMAXPOOL) {
        d->global = 1;
        d->mode = max ? CLCNN_POOL_MAX : CLCNN_POOL_AVG;
    } else {
        if (a->dilations[0] != 1 || a->dilations[1] != 1) return cc_tr_unsupported(gn, "dilations");
        cc_step_pool_desc(gn, d);
    }
    if (p->vals[n->in[0]].ndim != 4) return cc_tr_unsupported(gn, "an input of other than 4 dims");
    const cc_tval *y = &p->vals[n->out[0]];
    if (max) CC_TRY(clcnn_tensor_create(p->dev, CLCNN_I32, y->ndim, y->shape, &n->save[0]));
    if (d->global || (a->pads[0] == a->pads[2] && a->pads[1] == a->pads[3] && !a->ceil_mode))
        return CLCNN_OK;
    return prepare_pool_padded(p, n);
}

/* PyTorch's momentum (the batch's share of the running statistics) from ONNX's m, as the
 * shortest decimal that gives m back: a builder's (or PyTorch's) 0.1 is stored as
 * m = 1 - 0.1 = 0.9f, and 1 - 0.9f is 0.10000002f, not the 0.1f the net was made with. */
static float pytorch_momentum(float m) {
    float exact = 1.0f - m;
    for (int digits = 1; digits <= 9; digits++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.*g", digits, (double)exact);
        float f = strtof(buf, NULL);
        if (1.0f - f == m) return f;
    }
    return exact;
}

static clcnn_status prepare_batchnorm(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                      const cc_gnode *gn) {
    int nd = p->vals[n->in[0]].ndim;
    if (nd != 2 && nd != 4) return cc_tr_unsupported(gn, "an input of other than 2 or 4 dims");
    for (int j = 1; j < 5; j++)
        if (g->vals[n->in[j]].kind != CC_VAL_INIT || g->vals[n->in[j]].dtype != CLCNN_F32)
            return cc_tr_unsupported(gn,
                                     "scale, bias, mean and variance must be float initializers");
    n->bn_momentum = pytorch_momentum(n->a.momentum);
    size_t c = p->vals[n->in[0]].shape[1];
    n->bn_layer = p->nbn++;
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &c, &n->save[0]));
    return clcnn_tensor_create(p->dev, CLCNN_F32, 1, &c, &n->save[1]);
}

static clcnn_status prepare_gemm(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    if (n->op == CC_OP_MATMUL) {
        n->a.trans_a = n->a.trans_b = 0;
        n->a.alpha = 1.0f;
    }
    for (int j = 0; j < 2; j++)
        if (p->vals[n->in[j]].ndim != 2)
            return cc_tr_unsupported(gn, "operands of other than 2 dims");
    int c = cc_tr_has_in(n, 2);
    if (n->op == CC_OP_GEMM && c && n->a.beta != 1.0f)
        return cc_tr_unsupported(gn, "beta other than 1 with C");
    /* y = x w^T + b: the fully connected layer's primitives (small-batch kernels on CPUs) */
    const cc_tval *y = &p->vals[n->out[0]];
    n->linear = n->op == CC_OP_GEMM && !n->a.trans_a && n->a.trans_b && n->a.alpha == 1.0f &&
                (!c || (p->vals[n->in[2]].ndim == 1 && p->vals[n->in[2]].numel == y->shape[1]));
    return cc_tr_like(p, n->out[0], &n->scratch[0]); /* C's gradient before the reduction */
}

void cc_train_release(cc_tnode *n) {
    for (int k = 0; k < 3; k++)
        clcnn_tensor_free(n->save[k]);
    for (int k = 0; k < 2; k++) {
        clcnn_tensor_free(n->scratch[k]);
        clcnn_tensor_free(n->scalar[k]);
    }
    clcnn_tensor_free(n->px);
    clcnn_tensor_free(n->dpx);
    clcnn_tensor_free(n->cnt);
    n->px = n->dpx = n->cnt = NULL;
    memset(n->save, 0, sizeof n->save);
    memset(n->scratch, 0, sizeof n->scratch);
    memset(n->scalar, 0, sizeof n->scalar);
}

/* ---- Gemm / MatMul --------------------------------------------------------------------- */

/* c (m, n) = alpha op(a) op(b); a holds (k, m) when ta, b (n, k) when tb; dense. */
static clcnn_status mm(clcnn_train_plan *p, int ta, int tb, size_t m, size_t n, size_t k,
                       float alpha, const clcnn_tensor *a, const clcnn_tensor *b, clcnn_tensor *c) {
    return clcnn_gemm_batched(p->dev, ta, tb, m, n, k, alpha, a, ta ? m : k, 0, b, tb ? k : n, 0,
                              0.0f, c, n, 0, 1);
}

static void gemm_dims(const clcnn_train_plan *p, const cc_tnode *n, size_t *m, size_t *nn,
                      size_t *k) {
    const cc_tval *y = &p->vals[n->out[0]], *a = &p->vals[n->in[0]];
    *m = y->shape[0];
    *nn = y->shape[1];
    *k = n->a.trans_a ? a->shape[0] : a->shape[1];
}

static clcnn_status gemm_forward(clcnn_train_plan *p, cc_tnode *n) {
    if (n->linear)
        return clcnn_linear_forward(p->dev, T(n->in[0]), T(n->in[1]),
                                    cc_tr_has_in(n, 2) ? T(n->in[2]) : NULL, T(n->out[0]));
    size_t m, nn, k;
    gemm_dims(p, n, &m, &nn, &k);
    clcnn_tensor *y = T(n->out[0]);
    CC_TRY(mm(p, n->a.trans_a, n->a.trans_b, m, nn, k, n->a.alpha, T(n->in[0]), T(n->in[1]), y));
    if (n->op == CC_OP_GEMM && n->n_in > 2 && n->in[2] >= 0)
        CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_ADD, y, T(n->in[2]), y));
    return CLCNN_OK;
}

/* dop(A) = dY op(B)^T, dop(B) = op(A)^T dY, transposed back where A or B are stored so. */
static clcnn_status gemm_backward(clcnn_train_plan *p, cc_tnode *n) {
    if (n->linear && n->dst[1])
        return clcnn_linear_backward(p->dev, T(n->in[0]), T(n->in[1]), G(n->out[0]), n->dst[0],
                                     n->dst[1], cc_tr_has_in(n, 2) ? n->dst[2] : NULL);
    size_t m, nn, k;
    gemm_dims(p, n, &m, &nn, &k);
    int ta = n->a.trans_a, tb = n->a.trans_b;
    float al = n->a.alpha;
    const clcnn_tensor *dy = G(n->out[0]), *a = T(n->in[0]), *b = T(n->in[1]);
    if (n->dst[0]) {
        if (!ta)
            CC_TRY(mm(p, 0, !tb, m, k, nn, al, dy, b, n->dst[0]));
        else
            CC_TRY(mm(p, tb, 1, k, m, nn, al, b, dy, n->dst[0]));
    }
    if (n->dst[1]) {
        if (!tb)
            CC_TRY(mm(p, !ta, 0, k, nn, m, al, a, dy, n->dst[1]));
        else
            CC_TRY(mm(p, 1, ta, nn, k, m, al, dy, a, n->dst[1]));
    }
    if (n->n_in > 2 && n->dst[2]) CC_TRY(cc_tr_reduce_to(p, dy, n->out[0], n->in[2], n->dst[2]));
    return CLCNN_OK;
}

/* ---- forward and backward by kind ------------------------------------------------------ */

/* The op's input this forward: x, or x copied into px with the pads. */
static clcnn_status padded_input(clcnn_train_plan *p, cc_tnode *n, const clcnn_tensor **x) {
    *x = T(n->in[0]);
    if (!n->px) return CLCNN_OK;
    CC_TRY(cc_copy_nd_run(p->dev, &n->pad_in, *x, n->px));
    *x = n->px;
    return CLCNN_OK;
}

static clcnn_status conv_forward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *x = NULL;
    CC_TRY(padded_input(p, n, &x));
    clcnn_conv2d_desc d = n->conv;
    d.algo = n->conv_algo[CLCNN_CONV_PASS_FORWARD];
    return clcnn_conv2d_forward(p->dev, &d, x, T(n->in[1]), cc_tr_has_in(n, 2) ? T(n->in[2]) : NULL,
                                T(n->out[0]), CLCNN_ACT_NONE);
}

/* ONNX's momentum m: running = m running + (1 - m) batch; the primitive takes 1 - m as
 * PyTorch's momentum (prepare_batchnorm). */
static clcnn_status bn_forward(clcnn_train_plan *p, cc_tnode *n) {
    if (p->opts.bn_sync) return cc_train_bn_sync_forward(p, n);
    /* with the Add that reads it (train.c's fuse_bn_add): the Add's output */
    int res = n->res >= 0;
    return cc_batchnorm_forward_train_act(p->dev, T(n->in[0]), T(n->in[1]), T(n->in[2]),
                                          T(n->in[3]), T(n->in[4]), n->bn_momentum, n->a.epsilon,
                                          n->act, res ? T(n->res) : NULL,
                                          T(res ? n->res_out : n->out[0]), n->save[0], n->save[1]);
}

static clcnn_status bn_backward(clcnn_train_plan *p, cc_tnode *n) {
    if (p->opts.bn_sync) return cc_train_bn_sync_backward(p, n);
    /* a fused Add's ReLU masked dy already (the Add's backward) */
    int act = n->res >= 0 ? CLCNN_ACT_ID_NONE : n->act;
    return cc_batchnorm_backward_act(p->dev, T(n->in[0]), T(n->in[2]), G(n->out[0]), act,
                                     T(n->in[1]), n->save[0], n->save[1], n->dst[0], n->dst[1],
                                     n->dst[2]);
}

static clcnn_status pool_forward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *x = NULL;
    clcnn_tensor *y = T(n->out[0]);
    CC_TRY(padded_input(p, n, &x));
    CC_TRY(clcnn_pool2d_forward(p->dev, &n->pool, x, y, n->save[0]));
    return n->cnt ? cc_binary(p->dev, CLCNN_BIN_ID_DIV, y, n->cnt, y) : CLCNN_OK;
}

static clcnn_status pool_backward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *dy = G(n->out[0]);
    if (!n->px) return clcnn_pool2d_backward(p->dev, &n->pool, dy, n->save[0], n->dst[0]);
    if (n->cnt) {
        CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_DIV, dy, n->cnt, n->scratch[0]));
        dy = n->scratch[0];
    }
    CC_TRY(clcnn_pool2d_backward(p->dev, &n->pool, dy, n->save[0], n->dpx));
    return cc_copy_nd_run(p->dev, &n->crop, n->dpx, n->dst[0]);
}

static clcnn_status conv_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_conv2d_desc d = n->conv;
    d.algo = n->conv_algo[CLCNN_CONV_PASS_BACKWARD_DATA];
    const clcnn_tensor *dy = G(n->out[0]);
    if (n->dst[0] && !n->px && n->relu_grad) /* x's other contribution and ReLU: train.c */
        CC_TRY(cc_conv2d_backward_data_relu(p->dev, &d, dy, T(n->in[1]), p->vals[n->in[0]].extra[0],
                                            T(n->in[0]), n->dst[0]));
    else if (n->dst[0] && !n->px)
        CC_TRY(clcnn_conv2d_backward_data(p->dev, &d, dy, T(n->in[1]), n->dst[0]));
    if (n->dst[0] && n->px) {
        CC_TRY(clcnn_conv2d_backward_data(p->dev, &d, dy, T(n->in[1]), n->dpx));
        CC_TRY(cc_copy_nd_run(p->dev, &n->crop, n->dpx, n->dst[0]));
    }
    if (!n->dst[1] && !(cc_tr_has_in(n, 2) && n->dst[2])) return CLCNN_OK;
    clcnn_tensor *db = cc_tr_has_in(n, 2) ? n->dst[2] : NULL;
    const clcnn_tensor *x = n->px ? n->px : T(n->in[0]); /* px still holds this forward's */
    d.algo = n->conv_algo[CLCNN_CONV_PASS_BACKWARD_FILTER];
    if (n->dst[1]) return clcnn_conv2d_backward_filter(p->dev, &d, x, dy, n->dst[1], db);
    /* the bias alone: the sum of dy over n, p, q */
    return cc_reduce(p->dev, CC_REDUCE_SUM, dy, 0xdu, db);
}

/* ConvTranspose as the data gradient of the convolution with the same weights
 * (lib/exec/steps_convt.c): y = dgrad(x, w) + b; backward dx = conv(dy, w), dw = the
 * convolution's filter gradient with x and dy in each other's roles, db the sum of dy over
 * n, p, q. Only the form whose output is that data gradient exactly (pads equal per side,
 * no output_padding). */
static clcnn_status prepare_convt(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                  const cc_gnode *gn) {
    const cc_op_attrs *a = &n->a;
    const size_t *x = p->vals[n->in[0]].shape, *y = p->vals[n->out[0]].shape;
    for (int j = 1; j < n->n_in; j++)
        if (n->in[j] >= 0 && g->vals[n->in[j]].kind != CC_VAL_INIT)
            return cc_tr_unsupported(gn, "weights computed per run");
    n->conv = cc_step_conv_desc(a);
    for (int i = 0; i < 2; i++) {
        size_t full = (size_t)a->strides[i] * (x[2 + i] - 1) +
                      (size_t)(a->dilations[i] * (a->kernel[i] - 1)) + 1;
        if (a->pads[i] != a->pads[2 + i] || a->pads[i] < 0 ||
            y[2 + i] + 2 * (size_t)a->pads[i] != full)
            return cc_tr_unsupported(gn,
                                     "output_padding, output_shape or pads that differ per side");
    }
    return CLCNN_OK;
}

/* The bias (k) as (k, 1, 1) for a broadcasting add, or NULL. */
static clcnn_status bias_view(clcnn_train_plan *p, cc_tnode *n, const clcnn_tensor *b,
                              clcnn_tensor **out) {
    *out = NULL;
    if (!b) return CLCNN_OK;
    size_t kshape[3] = {p->vals[n->in[2]].numel, 1, 1};
    return clcnn_tensor_view(b, 3, kshape, out);
}

static clcnn_status convt_forward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_tensor *y = T(n->out[0]), *b = NULL;
    CC_TRY(clcnn_conv2d_backward_data(p->dev, &n->conv, T(n->in[0]), T(n->in[1]), y));
    CC_TRY(bias_view(p, n, cc_tr_has_in(n, 2) ? T(n->in[2]) : NULL, &b));
    clcnn_status s = b ? cc_binary(p->dev, CLCNN_BIN_ID_ADD, y, b, y) : CLCNN_OK;
    clcnn_tensor_free(b);
    return s;
}

static clcnn_status convt_backward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *dy = G(n->out[0]);
    if (n->dst[0])
        CC_TRY(clcnn_conv2d_forward(p->dev, &n->conv, dy, T(n->in[1]), NULL, n->dst[0],
                                    CLCNN_ACT_NONE));
    if (n->dst[1])
        CC_TRY(clcnn_conv2d_backward_filter(p->dev, &n->conv, dy, T(n->in[0]), n->dst[1], NULL));
    if (!cc_tr_has_in(n, 2) || !n->dst[2]) return CLCNN_OK;
    return cc_reduce(p->dev, CC_REDUCE_SUM, dy, 0xdu, n->dst[2]);
}

/* ---- the table ------------------------------------------------------------------------ */

/* Ops without an entry here or in the families' tables have no backward: creating a
 * training plan with one fails naming the node. */
static const cc_train_def compute_defs[CC_OP_COUNT] = {
    [CC_OP_CONV] = {7u, 0, prepare_conv, conv_forward, conv_backward},
    [CC_OP_CONVTRANSPOSE] = {7u, 0, prepare_convt, convt_forward, convt_backward},
    /* batch norm's mean and variance (inputs 3, 4) are state */
    [CC_OP_BATCHNORM] = {7u, 0, prepare_batchnorm, bn_forward, bn_backward},
    [CC_OP_MAXPOOL] = {1u, 0, prepare_pool, pool_forward, pool_backward},
    [CC_OP_AVGPOOL] = {1u, 0, prepare_pool, pool_forward, pool_backward},
    [CC_OP_GLOBALAVGPOOL] = {1u, 0, prepare_pool, pool_forward, pool_backward},
    [CC_OP_GLOBALMAXPOOL] = {1u, 0, prepare_pool, pool_forward, pool_backward},
    [CC_OP_GEMM] = {7u, 0, prepare_gemm, gemm_forward, gemm_backward},
    [CC_OP_MATMUL] = {3u, 0, prepare_gemm, gemm_forward, gemm_backward},
};

/* The entry of op (all zero when it has none). */
static const cc_train_def *def_of(cc_op op) {
    if (compute_defs[op].forward) return &compute_defs[op];
    if (cc_train_eltwise_defs[op].forward) return &cc_train_eltwise_defs[op];
    return &cc_train_movement_defs[op];
}

int cc_train_has_op(cc_op op) {
    return def_of(op)->forward != NULL;
}

int cc_train_grad_slot(cc_op op, int slot) {
    return slot < 32 && (def_of(op)->grads >> slot & 1u);
}

int cc_train_is_view(cc_op op) {
    return def_of(op)->view;
}

clcnn_status cc_train_prepare(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n) {
    if (n->fused) return CLCNN_OK;
    const cc_gnode *gn = &g->nodes[n->node];
    for (int j = 0; j < n->n_in; j++) {
        int v = n->in[j];
        if (v >= 0 && cc_train_grad_slot(n->op, j) && g->vals[v].dtype != CLCNN_F32)
            return cc_tr_unsupported(gn, "a non-float input");
    }
    const cc_train_def *d = def_of(n->op);
    return d->prepare ? d->prepare(p, g, n, gn) : CLCNN_OK;
}

clcnn_status cc_train_forward(clcnn_train_plan *p, cc_tnode *n) {
    return n->fused ? CLCNN_OK : def_of(n->op)->forward(p, n);
}

clcnn_status cc_train_backward(clcnn_train_plan *p, cc_tnode *n) {
    return n->fused ? CLCNN_OK : def_of(n->op)->backward(p, n);
}
