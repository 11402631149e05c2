/* Training plans (lib/exec/train.c): the training forward and backward of data movement:
 * Concat and Split (rows of an (outer, axis, inner) view), Transpose, Slice, Pad and
 * Expand (the node's strided gather, scattered back, cropped or summed), the views
 * (Flatten, Reshape, Squeeze, Unsqueeze, Identity: the gradient reshaped) and Dropout (the
 * counter-based mask kept for backward). */
#include "exec/train_internal.h"

#include "clcnn_ids.h"

#define T(v) (p->vals[(v)].t) /* the value's tensor this forward */
#define G(v) (p->vals[(v)].g) /* its gradient */

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

static clcnn_status prepare_join(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    (void)gn;
    cc_tr_join_dims(&p->vals[n->op == CC_OP_CONCAT ? n->out[0] : n->in[0]], n->a.axis, n->dims3);
    return CLCNN_OK;
}

static clcnn_status join_forward(clcnn_train_plan *p, cc_tnode *n) {
    return join(p, n, 0);
}

static clcnn_status join_backward(clcnn_train_plan *p, cc_tnode *n) {
    return join(p, n, 1);
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
        if (ax < 0 && n->op != CC_OP_EXPAND) return cc_tr_unsupported(gn, "a broadcast dim");
        f->x_stride[d] = ax < 0 ? 0 : xs[ax];
        f->lim[d] = ax < 0 ? 1 : x->shape[ax];
        f->start[d] = m.start[d];
        f->step[d] = m.step[d];
    }
    f->mode = m.mode;
    f->value = m.value;
    if (n->op == CC_OP_PAD) {
        if (m.mode != CLCNN_COPY_ID_CONSTANT)
            return cc_tr_unsupported(gn, "a mode other than constant");
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
        if (m.step[d] < 1) return cc_tr_unsupported(gn, "a negative step");
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
    if (n->op == CC_OP_EXPAND)
        return cc_tr_reduce_to(p, G(n->out[0]), n->out[0], n->in[0], n->dst[0]);
    if (n->map_fill) CC_TRY(clcnn_tensor_fill(n->dst[0], 0.0f));
    return cc_copy_nd_run(p->dev, &n->bwd_map, G(n->out[0]), n->dst[0]);
}

static clcnn_status prepare_view(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                 const cc_gnode *gn) {
    (void)g;
    cc_tval_kind k = p->vals[n->in[0]].kind;
    if (k != CC_TV_ACT && k != CC_TV_ALIAS && k != CC_TV_INPUT)
        return cc_tr_unsupported(gn, "a view of an initializer");
    return CLCNN_OK;
}

/* The view of the last forward stays while x is in the same place (the view holds x's
 * storage, so an equal storage is the same buffer). */
static clcnn_status view_forward(clcnn_train_plan *p, cc_tnode *n) {
    cc_tval *y = &p->vals[n->out[0]];
    const clcnn_tensor *x = T(n->in[0]);
    if (y->t && y->t->storage == x->storage && y->t->offset == x->offset) return CLCNN_OK;
    clcnn_tensor_free(y->t);
    y->t = NULL;
    return clcnn_tensor_view(x, y->ndim, y->shape, &y->t);
}

/* The gradient reshaped: nothing to do where the view's gradient is a view of dst
 * (train.c's alias_view_grad). */
static clcnn_status view_backward(clcnn_train_plan *p, cc_tnode *n) {
    const clcnn_tensor *dy = G(n->out[0]);
    if (dy->storage == n->dst[0]->storage && dy->offset == n->dst[0]->offset) return CLCNN_OK;
    return clcnn_tensor_copy(n->dst[0], dy);
}

/* The ratio from the attribute or a float initializer (opset 12); a training_mode
 * initializer that is 0 makes it a copy. */
static clcnn_status prepare_dropout(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                                    const cc_gnode *gn) {
    n->ratio = n->a.ratio;
    if (cc_tr_has_in(n, 1)) {
        const cc_gvalue *v = &g->vals[n->in[1]];
        if (v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32 || v->numel != 1)
            return cc_tr_unsupported(gn, "a ratio that is not a float scalar initializer");
        n->ratio = *(const float *)v->data;
        if (!(n->ratio >= 0.0f && n->ratio < 1.0f))
            return cc_tr_unsupported(gn, "a ratio outside [0, 1)");
    }
    if (cc_tr_has_in(n, 2)) {
        const cc_gvalue *v = &g->vals[n->in[2]];
        if (v->kind != CC_VAL_INIT || v->numel != 1 ||
            (v->dtype != CLCNN_I64 && v->dtype != CLCNN_I32))
            return cc_tr_unsupported(gn,
                                     "a training_mode that is not an integer scalar initializer");
        int on =
            v->dtype == CLCNN_I64 ? *(const int64_t *)v->data != 0 : *(const int32_t *)v->data != 0;
        if (!on) n->ratio = 0.0f;
    }
    if (n->ratio == 0.0f) return CLCNN_OK;
    return cc_tr_like(p, n->in[0], &n->save[0]);
}

/* The seed mixed with the node's index (splitmix64): two Dropout nodes of one shape draw
 * different masks at the same step. */
static unsigned long long dropout_key(const clcnn_train_plan *p, const cc_tnode *n) {
    uint64_t z = p->opts.seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(n->node + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (unsigned long long)(z ^ (z >> 31));
}

static clcnn_status dropout_forward(clcnn_train_plan *p, cc_tnode *n) {
    if (!n->save[0]) return clcnn_tensor_copy(T(n->out[0]), T(n->in[0]));
    return clcnn_dropout_forward(p->dev, n->ratio, dropout_key(p, n), p->forwards, T(n->in[0]),
                                 T(n->out[0]), n->save[0]);
}

static clcnn_status dropout_backward(clcnn_train_plan *p, cc_tnode *n) {
    if (!n->save[0]) return clcnn_tensor_copy(n->dst[0], G(n->out[0]));
    return clcnn_dropout_backward(p->dev, n->save[0], G(n->out[0]), n->dst[0]);
}

#define ALL_INPUTS (~0u) /* Concat: every input */
const cc_train_def cc_train_movement_defs[CC_OP_COUNT] = {
    [CC_OP_TRANSPOSE] = {1u, 0, prepare_map, map_forward, map_backward},
    [CC_OP_SLICE] = {1u, 0, prepare_map, map_forward, map_backward},
    [CC_OP_PAD] = {1u, 0, prepare_map, map_forward, map_backward},
    [CC_OP_EXPAND] = {1u, 0, prepare_map, map_forward, map_backward},
    [CC_OP_CONCAT] = {ALL_INPUTS, 0, prepare_join, join_forward, join_backward},
    [CC_OP_SPLIT] = {1u, 0, prepare_join, join_forward, join_backward},
    [CC_OP_DROPOUT] = {1u, 0, prepare_dropout, dropout_forward, dropout_backward},
    /* views of their input: Reshape's shape (input 1) is an integer initializer */
    [CC_OP_FLATTEN] = {1u, 1, prepare_view, view_forward, view_backward},
    [CC_OP_RESHAPE] = {1u, 1, prepare_view, view_forward, view_backward},
    [CC_OP_SQUEEZE] = {1u, 1, prepare_view, view_forward, view_backward},
    [CC_OP_UNSQUEEZE] = {1u, 1, prepare_view, view_forward, view_backward},
    [CC_OP_IDENTITY] = {1u, 1, prepare_view, view_forward, view_backward},
};
