/* Training plans (lib/exec/train.c): the training forward and backward of the element-wise
 * family: ReLU and leaky ReLU, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Add, Sub, Mul,
 * Div and PRelu with broadcasting (operand gradients summed over the broadcast dims in a
 * fixed order), ReduceMean / ReduceSum, Softmax / LogSoftmax over any axis. Made of the
 * element-wise kernels, the activation gradients and the deterministic reductions. */
#include "exec/train_internal.h"

#include "clcnn_ids.h"

#define T(v) (p->vals[(v)].t) /* the value's tensor this forward */
#define G(v) (p->vals[(v)].g) /* its gradient */

/* A view of t as (a, b, c) (or (a, b, c, 1) for the softmax kernels): freed by the caller. */
static clcnn_status view3(const clcnn_tensor *t, const size_t d[3], int four, clcnn_tensor **out) {
    size_t shape[4] = {d[0], d[1], d[2], 1};
    return clcnn_tensor_view(t, four ? 4 : 3, shape, out);
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

/* Sigmoid, Tanh: 1 as a tensor, a buffer like y. */
static clcnn_status prepare_curve(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                  const cc_gnode *gn) {
    (void)g;
    (void)gn;
    CC_TRY(cc_tr_scalar(p, 1.0f, &n->scalar[0]));
    return cc_tr_like(p, n->out[0], &n->scratch[0]);
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

int cc_train_clip_bounds(const clcnn_graph *g, const cc_tnode *n, float lim[2]) {
    lim[0] = n->a.clip_min;
    lim[1] = n->a.clip_max;
    for (int j = 1; j < 3 && j < n->n_in; j++) {
        if (n->in[j] < 0) continue;
        const cc_gvalue *v = &g->vals[n->in[j]];
        if (v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32 || v->numel != 1) return 0;
        lim[j - 1] = *(const float *)v->data;
    }
    return 1;
}

static clcnn_status prepare_clip(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    float lim[2];
    if (!cc_train_clip_bounds(g, n, lim))
        return cc_tr_unsupported(gn, "bounds that are not float scalar initializers");
    n->a.clip_min = lim[0];
    n->a.clip_max = lim[1];
    CC_TRY(cc_tr_scalar(p, lim[0], &n->scalar[0]));
    CC_TRY(cc_tr_scalar(p, lim[1], &n->scalar[1]));
    return cc_tr_like(p, n->in[0], &n->scratch[0]);
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
    if (!(n->a.alpha > 0.0f)) return cc_tr_unsupported(gn, "alpha <= 0");
    CC_TRY(cc_tr_scalar(p, -n->a.beta / n->a.alpha, &n->scalar[0]));
    CC_TRY(cc_tr_scalar(p, (1.0f - n->a.beta) / n->a.alpha, &n->scalar[1]));
    return cc_tr_like(p, n->in[0], &n->scratch[0]);
}

static const int binary_ids[] = {[CC_OP_ADD] = CLCNN_BIN_ID_ADD,
                                 [CC_OP_SUB] = CLCNN_BIN_ID_SUB,
                                 [CC_OP_MUL] = CLCNN_BIN_ID_MUL,
                                 [CC_OP_DIV] = CLCNN_BIN_ID_DIV,
                                 [CC_OP_PRELU] = CLCNN_BIN_ID_PRELU};

static clcnn_status prepare_binary(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                   const cc_gnode *gn) {
    (void)g;
    if (p->vals[n->out[0]].ndim > 4) return cc_tr_unsupported(gn, "more than 4 dims");
    return cc_tr_like(p, n->out[0], &n->scratch[0]);
}

static clcnn_status binary_forward(clcnn_train_plan *p, cc_tnode *n) {
    if (n->fwd_done) return CLCNN_OK; /* the batch norm that writes an operand added it */
    if (n->act == CLCNN_ACT_ID_RELU)
        return cc_add_relu(p->dev, T(n->in[0]), T(n->in[1]), T(n->out[0]));
    return cc_binary(p->dev, binary_ids[n->op], T(n->in[0]), T(n->in[1]), T(n->out[0]));
}

static clcnn_status binary_backward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *dy = G(n->out[0]);
    clcnn_tensor *tmp = n->scratch[0]; /* like y */
    /* the fused ReLU's gradient: where its output > 0 (with relu_grad a convolution's data
     * gradient masked dy) */
    if (n->act == CLCNN_ACT_ID_RELU && !n->relu_grad) {
        if (cc_train_sums_own_grad(p, n)) /* dy's two contributions summed here */
            CC_TRY(cc_add_relu_grad(p->dev, T(n->out[0]), dy, p->vals[n->out[0]].extra[0], tmp));
        else
            CC_TRY(clcnn_activation_backward(p->dev, CLCNN_ACT_RELU, 0.0f, T(n->out[0]), dy, tmp));
        dy = tmp;
    }
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
        CC_TRY(cc_tr_reduce_to(p, src, n->out[0], n->in[j], n->dst[j]));
        if ((n->op == CC_OP_SUB || n->op == CC_OP_DIV) && j == 1)
            CC_TRY(cc_unary(p->dev, CLCNN_UN_ID_NEG, 0.0f, 0.0f, n->dst[j], n->dst[j]));
    }
    return CLCNN_OK;
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
    return cc_tr_reduce_to(p, neg, n->out[0], n->in[1], n->dst[1]);
}

static clcnn_status prepare_prelu(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                  const cc_gnode *gn) {
    CC_TRY(prepare_binary(p, g, n, gn));
    return cc_tr_like(p, n->out[0], &n->scratch[1]);
}

/* ReduceMean, ReduceSum over the axes shape inference resolved; backward: dy (kept dims)
 * broadcast over x, times 1 / count (mean) or 1. */
static clcnn_status prepare_reduce(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                   const cc_gnode *gn) {
    (void)g;
    const cc_tval *x = &p->vals[n->in[0]];
    if (x->ndim > 4) return cc_tr_unsupported(gn, "more than 4 dims");
    n->red_mask = 0;
    for (int i = 0; i < n->a.naxes; i++)
        n->red_mask |= 1u << n->a.axes[i];
    size_t count = 1;
    for (int d = 0; d < x->ndim; d++) {
        int r = (n->red_mask >> d) & 1u;
        n->kept[d] = r ? 1 : x->shape[d];
        count *= r ? x->shape[d] : 1;
    }
    return cc_tr_scalar(p, n->op == CC_OP_REDUCEMEAN ? (float)(1.0 / (double)count) : 1.0f,
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

static clcnn_status prepare_softmax(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                    const cc_gnode *gn) {
    (void)g;
    (void)gn;
    cc_tr_join_dims(&p->vals[n->in[0]], n->a.axis, n->dims3);
    size_t red[3] = {n->dims3[0], 1, n->dims3[2]};
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 3, n->dims3, &n->scratch[0]));
    return clcnn_tensor_create(p->dev, CLCNN_F32, 3, red, &n->scratch[1]);
}

static clcnn_status softmax_forward(clcnn_train_plan *p, cc_tnode *n) {
    return softmax_run(p, n, 0);
}

static clcnn_status softmax_backward(clcnn_train_plan *p, cc_tnode *n) {
    return softmax_run(p, n, 1);
}

const cc_train_def cc_train_eltwise_defs[CC_OP_COUNT] = {
    [CC_OP_RELU] = {1u, 0, NULL, act_forward, act_backward},
    [CC_OP_LEAKYRELU] = {1u, 0, NULL, act_forward, act_backward},
    [CC_OP_SIGMOID] = {1u, 0, prepare_curve, unary_forward, curve_backward},
    [CC_OP_TANH] = {1u, 0, prepare_curve, unary_forward, curve_backward},
    [CC_OP_CLIP] = {1u, 0, prepare_clip, unary_forward, clip_backward},
    [CC_OP_HARDSIGMOID] = {1u, 0, prepare_hard, unary_forward, hard_backward},
    [CC_OP_HARDSWISH] = {1u, 0, prepare_hard, unary_forward, hard_backward},
    [CC_OP_ADD] = {3u, 0, prepare_binary, binary_forward, binary_backward},
    [CC_OP_SUB] = {3u, 0, prepare_binary, binary_forward, binary_backward},
    [CC_OP_MUL] = {3u, 0, prepare_binary, binary_forward, binary_backward},
    [CC_OP_DIV] = {3u, 0, prepare_binary, binary_forward, binary_backward},
    [CC_OP_PRELU] = {3u, 0, prepare_prelu, binary_forward, prelu_backward},
    [CC_OP_REDUCEMEAN] = {1u, 0, prepare_reduce, reduce_forward, reduce_backward},
    [CC_OP_REDUCESUM] = {1u, 0, prepare_reduce, reduce_forward, reduce_backward},
    [CC_OP_SOFTMAX] = {1u, 0, prepare_softmax, softmax_forward, softmax_backward},
    [CC_OP_LOGSOFTMAX] = {1u, 0, prepare_softmax, softmax_forward, softmax_backward},
};
