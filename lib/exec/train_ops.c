/* The training forward and the backward of each op kind in training plans (lib/exec/
 * train.c walks them): Conv, BatchNormalization with batch statistics, the activations,
 * pooling, Add/Sub/Mul with broadcasting, Gemm/MatMul, Concat/Split, Softmax/LogSoftmax
 * and the views (Flatten, Reshape, ...). Each backward is made of the primitives in lib/ops
 * (dgrad, wgrad, pool and batch-norm backward, element-wise kernels, deterministic
 * reductions); an input gradient is written, never accumulated (train.c sums).
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

static int has_in(const cc_tnode *n, int j) {
    return j < n->n_in && n->in[j] >= 0;
}

static clcnn_status unsupported(const cc_gnode *n, const char *why) {
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "clcnn_train_plan_create: node '%s' (%s): %s", n->name,
                   cc_op_defs[n->op].name, why);
}

static clcnn_status like(clcnn_train_plan *p, int v, clcnn_tensor **out) {
    return clcnn_tensor_create(p->dev, CLCNN_F32, p->vals[v].ndim, p->vals[v].shape, out);
}

static clcnn_status scalar(clcnn_train_plan *p, float value, clcnn_tensor **out) {
    size_t one = 1;
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &one, out));
    return clcnn_tensor_upload(*out, &value, sizeof value);
}

/* A view of t as (a, b, c) (or (a, b, c, 1) for the softmax kernels): freed by the caller. */
static clcnn_status view3(const clcnn_tensor *t, const size_t d[3], int four, clcnn_tensor **out) {
    size_t shape[4] = {d[0], d[1], d[2], 1};
    return clcnn_tensor_view(t, four ? 4 : 3, shape, out);
}

/* dst (an operand of an element-wise op, broadcast to y's shape) = the sum of src (y's
 * shape) over the dims the operand was broadcast along. */
static clcnn_status reduce_to(clcnn_train_plan *p, const clcnn_tensor *src, int yv, int av,
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
    if (s == CLCNN_OK) s = like(p, n->out[0], &n->scratch[0]);
    clcnn_tensor_free(mt);
    free(mask);
    return s;
}

static clcnn_status prepare_conv(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    const cc_op_attrs *a = &n->a;
    if (p->vals[n->in[0]].ndim != 4) return unsupported(gn, "an input of other than 4 dims");
    for (int j = 1; j < n->n_in; j++)
        if (n->in[j] >= 0 && g->vals[n->in[j]].kind != CC_VAL_INIT)
            return unsupported(gn, "weights computed per run");
    n->conv = cc_step_conv_desc(a);
    n->conv.algo = p->opts.conv_algo;
    if (a->pads[0] == a->pads[2] && a->pads[1] == a->pads[3]) return CLCNN_OK;
    n->conv.pad_h = n->conv.pad_w = 0;
    const size_t *x = p->vals[n->in[0]].shape;
    size_t hp = x[2] + (size_t)(a->pads[0] + a->pads[2]),
           wp = x[3] + (size_t)(a->pads[1] + a->pads[3]);
    return prepare_padded(p, n, hp, wp, 0.0f);
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
        if (a->dilations[0] != 1 || a->dilations[1] != 1) return unsupported(gn, "dilations");
        cc_step_pool_desc(gn, d);
    }
    if (p->vals[n->in[0]].ndim != 4) return unsupported(gn, "an input of other than 4 dims");
    const cc_tval *y = &p->vals[n->out[0]];
    if (max) CC_TRY(clcnn_tensor_create(p->dev, CLCNN_I32, y->ndim, y->shape, &n->save[0]));
    if (d->global || (a->pads[0] == a->pads[2] && a->pads[1] == a->pads[3] && !a->ceil_mode))
        return CLCNN_OK;
    return prepare_pool_padded(p, n);
}

static clcnn_status prepare_batchnorm(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                      const cc_gnode *gn) {
    int nd = p->vals[n->in[0]].ndim;
    if (nd != 2 && nd != 4) return unsupported(gn, "an input of other than 2 or 4 dims");
    for (int j = 1; j < 5; j++)
        if (g->vals[n->in[j]].kind != CC_VAL_INIT || g->vals[n->in[j]].dtype != CLCNN_F32)
            return unsupported(gn, "scale, bias, mean and variance must be float initializers");
    size_t c = p->vals[n->in[0]].shape[1];
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &c, &n->save[0]));
    return clcnn_tensor_create(p->dev, CLCNN_F32, 1, &c, &n->save[1]);
}

/* Concat / Split: the joined value as (outer, axis, inner). */
static void join_dims(const cc_tval *v, int64_t axis, size_t d[3]) {
    int ax = (int)(axis < 0 ? axis + v->ndim : axis);
    d[0] = d[1] = d[2] = 1;
    for (int k = 0; k < v->ndim; k++)
        *(k < ax ? &d[0] : k == ax ? &d[1] : &d[2]) *= v->shape[k];
}

static clcnn_status prepare_gemm(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    if (n->op == CC_OP_MATMUL) {
        n->a.trans_a = n->a.trans_b = 0;
        n->a.alpha = 1.0f;
    }
    for (int j = 0; j < 2; j++)
        if (p->vals[n->in[j]].ndim != 2) return unsupported(gn, "operands of other than 2 dims");
    int c = has_in(n, 2);
    if (n->op == CC_OP_GEMM && c && n->a.beta != 1.0f)
        return unsupported(gn, "beta other than 1 with C");
    /* y = x w^T + b: the fully connected layer's primitives (small-batch kernels on CPUs) */
    const cc_tval *y = &p->vals[n->out[0]];
    n->linear = n->op == CC_OP_GEMM && !n->a.trans_a && n->a.trans_b && n->a.alpha == 1.0f &&
                (!c || (p->vals[n->in[2]].ndim == 1 && p->vals[n->in[2]].numel == y->shape[1]));
    return like(p, n->out[0], &n->scratch[0]); /* C's gradient before the reduction */
}

static clcnn_status prepare_clip(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    float lim[2] = {n->a.clip_min, n->a.clip_max};
    for (int j = 1; j < 3 && j < n->n_in; j++) {
        if (n->in[j] < 0) continue;
        const cc_gvalue *v = &g->vals[n->in[j]];
        if (v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32 || v->numel != 1)
            return unsupported(gn, "bounds that are not float scalar initializers");
        lim[j - 1] = *(const float *)v->data;
    }
    n->a.clip_min = lim[0];
    n->a.clip_max = lim[1];
    CC_TRY(scalar(p, lim[0], &n->scalar[0]));
    CC_TRY(scalar(p, lim[1], &n->scalar[1]));
    return like(p, n->in[0], &n->scratch[0]);
}

/* Sigmoid, Tanh: 1 as a tensor, a buffer like y. */
static clcnn_status prepare_curve(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                  const cc_gnode *gn) {
    (void)g;
    (void)gn;
    CC_TRY(scalar(p, 1.0f, &n->scalar[0]));
    return like(p, n->out[0], &n->scratch[0]);
}

static clcnn_status prepare_binary(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                   const cc_gnode *gn) {
    (void)g;
    if (p->vals[n->out[0]].ndim > 4) return unsupported(gn, "more than 4 dims");
    return like(p, n->out[0], &n->scratch[0]);
}

static clcnn_status prepare_join(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    (void)gn;
    join_dims(&p->vals[n->op == CC_OP_CONCAT ? n->out[0] : n->in[0]], n->a.axis, n->dims3);
    return CLCNN_OK;
}

static clcnn_status prepare_softmax(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                    const cc_gnode *gn) {
    (void)g;
    (void)gn;
    join_dims(&p->vals[n->in[0]], n->a.axis, n->dims3);
    size_t red[3] = {n->dims3[0], 1, n->dims3[2]};
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 3, n->dims3, &n->scratch[0]));
    return clcnn_tensor_create(p->dev, CLCNN_F32, 3, red, &n->scratch[1]);
}

/* The ratio from the attribute or a float initializer (opset 12); a training_mode
 * initializer that is 0 makes it a copy. */
static clcnn_status prepare_dropout(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                    const cc_gnode *gn) {
    n->ratio = n->a.ratio;
    if (has_in(n, 1)) {
        const cc_gvalue *v = &g->vals[n->in[1]];
        if (v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32 || v->numel != 1)
            return unsupported(gn, "a ratio that is not a float scalar initializer");
        n->ratio = *(const float *)v->data;
        if (!(n->ratio >= 0.0f && n->ratio < 1.0f))
            return unsupported(gn, "a ratio outside [0, 1)");
    }
    if (has_in(n, 2)) {
        const cc_gvalue *v = &g->vals[n->in[2]];
        if (v->kind != CC_VAL_INIT || v->numel != 1 ||
            (v->dtype != CLCNN_I64 && v->dtype != CLCNN_I32))
            return unsupported(gn, "a training_mode that is not an integer scalar initializer");
        int on =
            v->dtype == CLCNN_I64 ? *(const int64_t *)v->data != 0 : *(const int32_t *)v->data != 0;
        if (!on) n->ratio = 0.0f;
    }
    if (n->ratio == 0.0f) return CLCNN_OK;
    return like(p, n->in[0], &n->save[0]);
}

static clcnn_status prepare_view(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    cc_tval_kind k = p->vals[n->in[0]].kind;
    if (k != CC_TV_ACT && k != CC_TV_ALIAS && k != CC_TV_INPUT)
        return unsupported(gn, "a view of an initializer");
    return CLCNN_OK;
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

/* ---- strided copies of Concat / Split ------------------------------------------------ */

/* Copy part (outer, len, inner) of the joined (outer, total, inner) tensor at offset off
 * along the axis: from the part into the joined one (into_joined) or back. */
static clcnn_status copy_part(clcnn_train_plan *p, const size_t d[3], size_t off, size_t len,
                              const clcnn_tensor *src, clcnn_tensor *dst, int into_joined) {
    cc_copy_nd c;
    size_t box[3] = {d[0], len, d[2]};
    cc_copy_nd_dense(&c, 3, box);
    size_t *js = into_joined ? c.y_stride : c.x_stride;
    js[0] = d[1] * d[2];
    js[1] = d[2];
    js[2] = 1;
    *(into_joined ? &c.y_off : &c.x_off) = off * d[2];
    return cc_copy_nd_run(p->dev, &c, src, dst);
}

static clcnn_status join(clcnn_train_plan *p, cc_tnode *n, int backward) {
    int concat = n->op == CC_OP_CONCAT;
    int parts = concat ? n->n_in : n->n_out;
    size_t off = 0;
    for (int k = 0; k < parts; k++) {
        int v = concat ? n->in[k] : n->out[k];
        size_t len = p->vals[v].numel / (n->dims3[0] * n->dims3[2]);
        if (!backward) {
            if (concat)
                CC_TRY(copy_part(p, n->dims3, off, len, T(v), T(n->out[0]), 1));
            else
                CC_TRY(copy_part(p, n->dims3, off, len, T(n->in[0]), T(v), 0));
        } else if (concat) {
            if (n->dst[k]) CC_TRY(copy_part(p, n->dims3, off, len, G(n->out[0]), n->dst[k], 0));
        } else if (G(v)) {
            CC_TRY(copy_part(p, n->dims3, off, len, G(v), n->dst[0], 1));
        } else {
            return cc_fail(CLCNN_ERR_INVALID_ARG, "Split: output %d has no gradient buffer", k);
        }
        off += len;
    }
    return CLCNN_OK;
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
                                    has_in(n, 2) ? T(n->in[2]) : NULL, T(n->out[0]));
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
                                     n->dst[1], has_in(n, 2) ? n->dst[2] : NULL);
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
    if (n->n_in > 2 && n->dst[2]) CC_TRY(reduce_to(p, dy, n->out[0], n->in[2], n->dst[2]));
    return CLCNN_OK;
}

/* ---- Add / Sub / Mul ------------------------------------------------------------------- */

static const int binary_ids[] = {[CC_OP_ADD] = CLCNN_BIN_ID_ADD,
                                 [CC_OP_SUB] = CLCNN_BIN_ID_SUB,
                                 [CC_OP_MUL] = CLCNN_BIN_ID_MUL,
                                 [CC_OP_DIV] = CLCNN_BIN_ID_DIV,
                                 [CC_OP_PRELU] = CLCNN_BIN_ID_PRELU};

static clcnn_status binary_backward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *dy = G(n->out[0]);
    clcnn_tensor *tmp = n->scratch[0]; /* like y */
    for (int j = 0; j < 2; j++) {
        if (!n->dst[j]) continue;
        const clcnn_tensor *src = dy;
        if (n->op == CC_OP_MUL) {
            CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_MUL, dy, T(n->in[1 - j]), tmp));
            src = tmp;
        } else if (n->op == CC_OP_DIV) { /* da = dy / b, db = -(dy / b) y */
            CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_DIV, dy, T(n->in[1]), tmp));
            if (j == 1) CC_TRY(cc_binary(p->dev, CLCNN_BIN_ID_MUL, tmp, T(n->out[0]), tmp));
            src = tmp;
        }
        CC_TRY(reduce_to(p, src, n->out[0], n->in[j], n->dst[j]));
        if ((n->op == CC_OP_SUB || n->op == CC_OP_DIV) && j == 1)
            CC_TRY(cc_unary(p->dev, CLCNN_UN_ID_NEG, 0.0f, 0.0f, n->dst[j], n->dst[j]));
    }
    return CLCNN_OK;
}

/* ---- Softmax / LogSoftmax over (outer, c, inner) --------------------------------------- */

static clcnn_status softmax_run(clcnn_train_plan *p, cc_tnode *n, int backward) {
    clcnn_tensor *x = NULL, *y = NULL, *dy = NULL, *dx = NULL;
    int log = n->op == CC_OP_LOGSOFTMAX;
    clcnn_status s = view3(T(n->in[0]), n->dims3, 1, &x);
    if (s == CLCNN_OK) s = view3(T(n->out[0]), n->dims3, !backward, &y);
    if (s == CLCNN_OK && !backward) s = clcnn_softmax_forward(p->dev, x, y, log);
    if (s == CLCNN_OK && backward) s = view3(G(n->out[0]), n->dims3, 0, &dy);
    if (s == CLCNN_OK && backward) s = view3(n->dst[0], n->dims3, 0, &dx);
    clcnn_tensor *t = n->scratch[0], *r = n->scratch[1];
    clcnn_device *dev = p->dev;
    if (s == CLCNN_OK && backward && !log) {
        /* dx = y (dy - sum_c dy y) */
        s = cc_binary(dev, CLCNN_BIN_ID_MUL, dy, y, t);
        if (s == CLCNN_OK) s = cc_reduce(dev, CC_REDUCE_SUM, t, 2u, r);
        if (s == CLCNN_OK) s = cc_binary(dev, CLCNN_BIN_ID_SUB, dy, r, t);
        if (s == CLCNN_OK) s = cc_binary(dev, CLCNN_BIN_ID_MUL, y, t, dx);
    } else if (s == CLCNN_OK && backward) {
        /* dx = dy - exp(y) sum_c dy */
        s = cc_reduce(dev, CC_REDUCE_SUM, dy, 2u, r);
        if (s == CLCNN_OK) s = cc_unary(dev, CLCNN_UN_ID_EXP, 0.0f, 0.0f, y, t);
        if (s == CLCNN_OK) s = cc_binary(dev, CLCNN_BIN_ID_MUL, t, r, t);
        if (s == CLCNN_OK) s = cc_binary(dev, CLCNN_BIN_ID_SUB, dy, t, dx);
    }
    clcnn_tensor_free(x);
    clcnn_tensor_free(y);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(dx);
    return s;
}

/* ---- forward and backward by kind ------------------------------------------------------ */

static clcnn_status view_forward(clcnn_train_plan *p, cc_tnode *n) {
    cc_tval *y = &p->vals[n->out[0]];
    clcnn_tensor_free(y->t);
    y->t = NULL;
    return clcnn_tensor_view(T(n->in[0]), y->ndim, y->shape, &y->t);
}

static clcnn_status view_backward(clcnn_train_plan *p, cc_tnode *n) {
    return clcnn_tensor_copy(n->dst[0], G(n->out[0])); /* the gradient reshaped */
}

/* The op's input this forward: x, or x copied into px with the pads. */
static clcnn_status padded_input(clcnn_train_plan *p, cc_tnode *n, const clcnn_tensor **x) {
    *x = T(n->in[0]);
    if (!n->px) return CLCNN_OK;
    CC_TRY(cc_copy_nd_run(p->dev, &n->pad_in, *x, n->px));
    *x = n->px;
    return CLCNN_OK;
}

static clcnn_status dropout_forward(clcnn_train_plan *p, cc_tnode *n) {
    if (!n->save[0]) return clcnn_tensor_copy(T(n->out[0]), T(n->in[0]));
    return clcnn_dropout_forward(p->dev, n->ratio, p->opts.seed, p->forwards, T(n->in[0]),
                                 T(n->out[0]), n->save[0]);
}

static clcnn_status dropout_backward(clcnn_train_plan *p, cc_tnode *n) {
    if (!n->save[0]) return clcnn_tensor_copy(n->dst[0], G(n->out[0]));
    return clcnn_dropout_backward(p->dev, n->save[0], G(n->out[0]), n->dst[0]);
}

static clcnn_status conv_forward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *x = NULL;
    CC_TRY(padded_input(p, n, &x));
    return clcnn_conv2d_forward(p->dev, &n->conv, x, T(n->in[1]), has_in(n, 2) ? T(n->in[2]) : NULL,
                                T(n->out[0]), CLCNN_ACT_NONE);
}

/* ONNX's momentum m: running = m running + (1 - m) batch; the primitive takes 1 - m. */
static clcnn_status bn_forward(clcnn_train_plan *p, cc_tnode *n) {
    return clcnn_batchnorm_forward_train(p->dev, T(n->in[0]), T(n->in[1]), T(n->in[2]), T(n->in[3]),
                                         T(n->in[4]), 1.0f - n->a.momentum, n->a.epsilon,
                                         T(n->out[0]), n->save[0], n->save[1]);
}

static clcnn_status bn_backward(clcnn_train_plan *p, cc_tnode *n) {
    return clcnn_batchnorm_backward(p->dev, T(n->in[0]), G(n->out[0]), T(n->in[1]), n->save[0],
                                    n->save[1], n->dst[0], n->dst[1], n->dst[2]);
}

static clcnn_activation act_of(const cc_tnode *n) {
    return n->op == CC_OP_RELU ? CLCNN_ACT_RELU : CLCNN_ACT_LEAKY_RELU;
}

static clcnn_status act_forward(clcnn_train_plan *p, cc_tnode *n) {
    return clcnn_activation_forward(p->dev, act_of(n), n->a.alpha, T(n->in[0]), T(n->out[0]));
}

static clcnn_status act_backward(clcnn_train_plan *p, cc_tnode *n) {
    return clcnn_activation_backward(p->dev, act_of(n), n->a.alpha, T(n->in[0]), G(n->out[0]),
                                     n->dst[0]);
}

static clcnn_status unary_forward(clcnn_train_plan *p, cc_tnode *n) {
    int hard = n->op == CC_OP_HARDSIGMOID || n->op == CC_OP_HARDSWISH;
    int id = n->op == CC_OP_SIGMOID       ? CLCNN_UN_ID_SIGMOID
             : n->op == CC_OP_TANH        ? CLCNN_UN_ID_TANH
             : n->op == CC_OP_HARDSIGMOID ? CLCNN_UN_ID_HARDSIGMOID
             : n->op == CC_OP_HARDSWISH   ? CLCNN_UN_ID_HARDSWISH
                                          : CLCNN_UN_ID_CLIP;
    return cc_unary(p->dev, id, hard ? n->a.alpha : n->a.clip_min, hard ? n->a.beta : n->a.clip_max,
                    T(n->in[0]), T(n->out[0]));
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

static clcnn_status binary_forward(clcnn_train_plan *p, cc_tnode *n) {
    return cc_binary(p->dev, binary_ids[n->op], T(n->in[0]), T(n->in[1]), T(n->out[0]));
}

static clcnn_status join_forward(clcnn_train_plan *p, cc_tnode *n) {
    return join(p, n, 0);
}

static clcnn_status join_backward(clcnn_train_plan *p, cc_tnode *n) {
    return join(p, n, 1);
}

static clcnn_status softmax_forward(clcnn_train_plan *p, cc_tnode *n) {
    return softmax_run(p, n, 0);
}

static clcnn_status softmax_backward(clcnn_train_plan *p, cc_tnode *n) {
    return softmax_run(p, n, 1);
}

/* dx = dy where lo < x < hi (scalar[0], scalar[1]): two ReLU gradients, of x - lo and of
 * hi - x. */
static clcnn_status window_backward(clcnn_train_plan *p, cc_tnode *n, clcnn_tensor *dx) {
    clcnn_device *dev = p->dev;
    clcnn_tensor *t = n->scratch[0];
    CC_TRY(cc_binary(dev, CLCNN_BIN_ID_SUB, T(n->in[0]), n->scalar[0], t));
    CC_TRY(clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0.0f, t, G(n->out[0]), dx));
    CC_TRY(cc_binary(dev, CLCNN_BIN_ID_SUB, n->scalar[1], T(n->in[0]), t));
    return clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0.0f, t, dx, dx);
}

static clcnn_status clip_backward(clcnn_train_plan *p, cc_tnode *n) {
    return window_backward(p, n, n->dst[0]);
}

/* HardSigmoid y = clamp(a x + b, 0, 1): dx = a dy inside the window (-b / a, (1 - b) / a).
 * HardSwish y = x hs(x): dx = dy (hs(x) + a x inside the window). */
static clcnn_status hard_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_device *dev = p->dev;
    clcnn_tensor *dx = n->dst[0];
    CC_TRY(window_backward(p, n, dx));
    if (n->op == CC_OP_HARDSWISH) CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, dx, T(n->in[0]), dx));
    CC_TRY(clcnn_axpby(dev, n->a.alpha, dx, 0.0f, dx));
    if (n->op == CC_OP_HARDSIGMOID) return CLCNN_OK;
    clcnn_tensor *t = n->scratch[0];
    CC_TRY(cc_unary(dev, CLCNN_UN_ID_HARDSIGMOID, n->a.alpha, n->a.beta, T(n->in[0]), t));
    CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, t, G(n->out[0]), t));
    return cc_binary(dev, CLCNN_BIN_ID_ADD, dx, t, dx);
}

static clcnn_status prepare_hard(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    if (!(n->a.alpha > 0.0f)) return unsupported(gn, "alpha <= 0");
    CC_TRY(scalar(p, -n->a.beta / n->a.alpha, &n->scalar[0]));
    CC_TRY(scalar(p, (1.0f - n->a.beta) / n->a.alpha, &n->scalar[1]));
    return like(p, n->in[0], &n->scratch[0]);
}

/* Sigmoid: dx = dy y (1 - y); Tanh: dx = dy (1 - y^2). */
static clcnn_status curve_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_device *dev = p->dev;
    const clcnn_tensor *y = T(n->out[0]);
    clcnn_tensor *t = n->scratch[0];
    if (n->op == CC_OP_SIGMOID) {
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_SUB, n->scalar[0], y, t));
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, y, t, t));
    } else {
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, y, y, t));
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_SUB, n->scalar[0], t, t));
    }
    return cc_binary(dev, CLCNN_BIN_ID_MUL, G(n->out[0]), t, n->dst[0]);
}

static clcnn_status conv_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_conv2d_desc d = n->conv;
    const clcnn_tensor *dy = G(n->out[0]);
    if (n->dst[0] && !n->px)
        CC_TRY(clcnn_conv2d_backward_data(p->dev, &d, dy, T(n->in[1]), n->dst[0]));
    if (n->dst[0] && n->px) {
        CC_TRY(clcnn_conv2d_backward_data(p->dev, &d, dy, T(n->in[1]), n->dpx));
        CC_TRY(cc_copy_nd_run(p->dev, &n->crop, n->dpx, n->dst[0]));
    }
    if (!n->dst[1] && !(has_in(n, 2) && n->dst[2])) return CLCNN_OK;
    clcnn_tensor *db = has_in(n, 2) ? n->dst[2] : NULL;
    const clcnn_tensor *x = n->px ? n->px : T(n->in[0]); /* px still holds this forward's */
    if (n->dst[1]) return clcnn_conv2d_backward_filter(p->dev, &d, x, dy, n->dst[1], db);
    /* the bias alone: the sum of dy over n, p, q */
    return cc_reduce(p->dev, CC_REDUCE_SUM, dy, 0xdu, db);
}

/* PRelu y = x > 0 ? x : s x: dx = dy where x > 0, s dy elsewhere; ds = the sum of dy x
 * where x <= 0 over the dims s is broadcast along. */
static clcnn_status prelu_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_device *dev = p->dev;
    const clcnn_tensor *x = T(n->in[0]), *dy = G(n->out[0]);
    clcnn_tensor *pos = n->scratch[0], *neg = n->scratch[1];
    CC_TRY(clcnn_activation_backward(dev, CLCNN_ACT_RELU, 0.0f, x, dy, pos));
    CC_TRY(cc_binary(dev, CLCNN_BIN_ID_SUB, dy, pos, neg));
    if (n->dst[0]) {
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, neg, T(n->in[1]), n->dst[0]));
        CC_TRY(cc_binary(dev, CLCNN_BIN_ID_ADD, n->dst[0], pos, n->dst[0]));
    }
    if (!n->dst[1]) return CLCNN_OK;
    CC_TRY(cc_binary(dev, CLCNN_BIN_ID_MUL, neg, x, neg));
    return reduce_to(p, neg, n->out[0], n->in[1], n->dst[1]);
}

static clcnn_status prepare_prelu(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                  const cc_gnode *gn) {
    CC_TRY(prepare_binary(p, g, n, gn));
    return like(p, n->out[0], &n->scratch[1]);
}

/* ReduceMean, ReduceSum over the axes shape inference resolved; backward: dy (kept dims)
 * broadcast over x, times 1 / count (mean) or 1. */
static clcnn_status prepare_reduce(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                   const cc_gnode *gn) {
    (void)g;
    const cc_tval *x = &p->vals[n->in[0]];
    if (x->ndim > 4) return unsupported(gn, "more than 4 dims");
    n->red_mask = 0;
    for (int i = 0; i < n->a.naxes; i++)
        n->red_mask |= 1u << n->a.axes[i];
    size_t count = 1;
    for (int d = 0; d < x->ndim; d++) {
        int r = (n->red_mask >> d) & 1u;
        n->kept[d] = r ? 1 : x->shape[d];
        count *= r ? x->shape[d] : 1;
    }
    return scalar(p, n->op == CC_OP_REDUCEMEAN ? (float)(1.0 / (double)count) : 1.0f,
                  &n->scalar[0]);
}

static clcnn_status reduce_forward(clcnn_train_plan *p, cc_tnode *n) {
    return cc_reduce(p->dev, n->op == CC_OP_REDUCEMEAN ? CC_REDUCE_MEAN : CC_REDUCE_SUM,
                     T(n->in[0]), n->red_mask, T(n->out[0]));
}

static clcnn_status reduce_backward(clcnn_train_plan *p, cc_tnode *n) {
    clcnn_tensor *dyk = NULL;
    CC_TRY(clcnn_tensor_view(G(n->out[0]), p->vals[n->in[0]].ndim, n->kept, &dyk));
    clcnn_status s = cc_binary(p->dev, CLCNN_BIN_ID_MUL, dyk, n->scalar[0], n->dst[0]);
    clcnn_tensor_free(dyk);
    return s;
}

/* Transpose, Slice, Pad, Expand: forward the gather of the node's copy map (each output
 * element reads input dim axis[d] at start[d] + o step[d]); backward Transpose and Slice
 * (positive steps) scatter dy back into dx (0 where Slice reads nothing), a constant Pad
 * crops dy, Expand sums dy over the dims it broadcast. */
static clcnn_status prepare_map(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                const cc_gnode *gn) {
    cc_copy_map m;
    CC_TRY(cc_copy_map_of(g, gn, &m));
    const cc_tval *x = &p->vals[n->in[0]], *y = &p->vals[n->out[0]];
    size_t xs[CLCNN_MAX_DIMS], ys[CLCNN_MAX_DIMS], sx = 1, sy = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xs[d] = sx;
        sx *= x->shape[d];
    }
    for (int d = y->ndim - 1; d >= 0; d--) {
        ys[d] = sy;
        sy *= y->shape[d];
    }
    cc_copy_nd *f = &n->fwd_map, *b = &n->bwd_map;
    cc_copy_nd_dense(f, y->ndim, y->shape);
    for (int d = 0; d < y->ndim; d++) {
        int ax = m.axis[d];
        if (ax < 0 && n->op != CC_OP_EXPAND) return unsupported(gn, "a broadcast dim");
        f->x_stride[d] = ax < 0 ? 0 : xs[ax];
        f->lim[d] = ax < 0 ? 1 : x->shape[ax];
        f->start[d] = m.start[d];
        f->step[d] = m.step[d];
    }
    f->mode = m.mode;
    f->value = m.value;
    if (n->op == CC_OP_PAD) {
        if (m.mode != CLCNN_COPY_ID_CONSTANT) return unsupported(gn, "a mode other than constant");
        cc_copy_nd_dense(b, x->ndim, x->shape); /* dx[i] = dy[i + pad before] */
        for (int d = 0; d < x->ndim; d++) {
            b->x_stride[d] = ys[d];
            b->lim[d] = y->shape[d];
            b->start[d] = -m.start[d];
        }
        return CLCNN_OK;
    }
    if (n->op == CC_OP_EXPAND) return CLCNN_OK; /* backward: a sum over the broadcast dims */
    cc_copy_nd_dense(b, y->ndim, y->shape);     /* dx[x index of o] = dy[o] */
    for (int d = 0; d < y->ndim; d++) {
        if (m.step[d] < 1) return unsupported(gn, "a negative step");
        b->y_stride[d] = xs[m.axis[d]] * (size_t)m.step[d];
        b->y_off += (size_t)m.start[d] * xs[m.axis[d]];
    }
    n->map_fill = n->op == CC_OP_SLICE && x->numel != y->numel;
    return CLCNN_OK;
}

static clcnn_status map_forward(clcnn_train_plan *p, cc_tnode *n) {
    return cc_copy_nd_run(p->dev, &n->fwd_map, T(n->in[0]), T(n->out[0]));
}

static clcnn_status map_backward(clcnn_train_plan *p, cc_tnode *n) {
    if (n->op == CC_OP_EXPAND) return reduce_to(p, G(n->out[0]), n->out[0], n->in[0], n->dst[0]);
    if (n->map_fill) CC_TRY(clcnn_tensor_fill(n->dst[0], 0.0f));
    return cc_copy_nd_run(p->dev, &n->bwd_map, G(n->out[0]), n->dst[0]);
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
            return unsupported(gn, "weights computed per run");
    n->conv = cc_step_conv_desc(a);
    for (int i = 0; i < 2; i++) {
        size_t full = (size_t)a->strides[i] * (x[2 + i] - 1) +
                      (size_t)(a->dilations[i] * (a->kernel[i] - 1)) + 1;
        if (a->pads[i] != a->pads[2 + i] || a->pads[i] < 0 ||
            y[2 + i] + 2 * (size_t)a->pads[i] != full)
            return unsupported(gn, "output_padding, output_shape or pads that differ per side");
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
    CC_TRY(bias_view(p, n, has_in(n, 2) ? T(n->in[2]) : NULL, &b));
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
    if (!has_in(n, 2) || !n->dst[2]) return CLCNN_OK;
    return cc_reduce(p->dev, CC_REDUCE_SUM, dy, 0xdu, n->dst[2]);
}

/* ---- the table ------------------------------------------------------------------------ */

typedef clcnn_status (*prepare_fn)(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                   const cc_gnode *gn);
typedef clcnn_status (*run_fn)(clcnn_train_plan *p, cc_tnode *n);
typedef struct train_def {
    unsigned grads; /* bit j: input j receives a gradient */
    prepare_fn prepare;
    run_fn forward, backward;
} train_def;

#define ALL_INPUTS (~0u)
/* Ops without an entry have no backward: creating a training plan with one fails. */
static const train_def train_defs[CC_OP_COUNT] = {
    [CC_OP_CONV] = {7u, prepare_conv, conv_forward, conv_backward},
    [CC_OP_CONVTRANSPOSE] = {7u, prepare_convt, convt_forward, convt_backward},
    /* batch norm's mean and variance (inputs 3, 4) are state */
    [CC_OP_BATCHNORM] = {7u, prepare_batchnorm, bn_forward, bn_backward},
    [CC_OP_RELU] = {1u, NULL, act_forward, act_backward},
    [CC_OP_LEAKYRELU] = {1u, NULL, act_forward, act_backward},
    [CC_OP_SIGMOID] = {1u, prepare_curve, unary_forward, curve_backward},
    [CC_OP_TANH] = {1u, prepare_curve, unary_forward, curve_backward},
    [CC_OP_CLIP] = {1u, prepare_clip, unary_forward, clip_backward},
    [CC_OP_HARDSIGMOID] = {1u, prepare_hard, unary_forward, hard_backward},
    [CC_OP_HARDSWISH] = {1u, prepare_hard, unary_forward, hard_backward},
    [CC_OP_MAXPOOL] = {1u, prepare_pool, pool_forward, pool_backward},
    [CC_OP_AVGPOOL] = {1u, prepare_pool, pool_forward, pool_backward},
    [CC_OP_GLOBALAVGPOOL] = {1u, prepare_pool, pool_forward, pool_backward},
    [CC_OP_GLOBALMAXPOOL] = {1u, prepare_pool, pool_forward, pool_backward},
    [CC_OP_ADD] = {3u, prepare_binary, binary_forward, binary_backward},
    [CC_OP_SUB] = {3u, prepare_binary, binary_forward, binary_backward},
    [CC_OP_MUL] = {3u, prepare_binary, binary_forward, binary_backward},
    [CC_OP_DIV] = {3u, prepare_binary, binary_forward, binary_backward},
    [CC_OP_PRELU] = {3u, prepare_prelu, binary_forward, prelu_backward},
    [CC_OP_REDUCEMEAN] = {1u, prepare_reduce, reduce_forward, reduce_backward},
    [CC_OP_REDUCESUM] = {1u, prepare_reduce, reduce_forward, reduce_backward},
    [CC_OP_GEMM] = {7u, prepare_gemm, gemm_forward, gemm_backward},
    [CC_OP_MATMUL] = {3u, prepare_gemm, gemm_forward, gemm_backward},
    [CC_OP_TRANSPOSE] = {1u, prepare_map, map_forward, map_backward},
    [CC_OP_SLICE] = {1u, prepare_map, map_forward, map_backward},
    [CC_OP_PAD] = {1u, prepare_map, map_forward, map_backward},
    [CC_OP_EXPAND] = {1u, prepare_map, map_forward, map_backward},
    [CC_OP_CONCAT] = {ALL_INPUTS, prepare_join, join_forward, join_backward},
    [CC_OP_SPLIT] = {1u, prepare_join, join_forward, join_backward},
    [CC_OP_DROPOUT] = {1u, prepare_dropout, dropout_forward, dropout_backward},
    [CC_OP_SOFTMAX] = {1u, prepare_softmax, softmax_forward, softmax_backward},
    [CC_OP_LOGSOFTMAX] = {1u, prepare_softmax, softmax_forward, softmax_backward},
    /* views of their input: Reshape's shape (input 1) is an integer initializer */
    [CC_OP_FLATTEN] = {1u, prepare_view, view_forward, view_backward},
    [CC_OP_RESHAPE] = {1u, prepare_view, view_forward, view_backward},
    [CC_OP_SQUEEZE] = {1u, prepare_view, view_forward, view_backward},
    [CC_OP_UNSQUEEZE] = {1u, prepare_view, view_forward, view_backward},
    [CC_OP_IDENTITY] = {1u, prepare_view, view_forward, view_backward},
};

int cc_train_has_op(cc_op op) {
    return train_defs[op].forward != NULL;
}

int cc_train_grad_slot(cc_op op, int slot) {
    return slot < 32 && (train_defs[op].grads >> slot & 1u);
}

int cc_train_is_view(cc_op op) {
    return train_defs[op].forward == view_forward;
}

clcnn_status cc_train_prepare(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n) {
    const cc_gnode *gn = &g->nodes[n->node];
    for (int j = 0; j < n->n_in; j++) {
        int v = n->in[j];
        if (v >= 0 && cc_train_grad_slot(n->op, j) && g->vals[v].dtype != CLCNN_F32)
            return unsupported(gn, "a non-float input");
    }
    prepare_fn f = train_defs[n->op].prepare;
    return f ? f(p, g, n, gn) : CLCNN_OK;
}

clcnn_status cc_train_forward(clcnn_train_plan *p, cc_tnode *n) {
    return train_defs[n->op].forward(p, n);
}

clcnn_status cc_train_backward(clcnn_train_plan *p, cc_tnode *n) {
    return train_defs[n->op].backward(p, n);
}
