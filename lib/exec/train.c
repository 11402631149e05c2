/* Training plans: a checked graph bound to one device and batch for forward (training
 * mode) and backward. Owns the value table (every value its own buffer, views for
 * Flatten-like ops), the parameter and gradient arenas, where each input's gradient goes
 * (the first reader in topological order writes the value's gradient, later readers their
 * own buffers, summed in that order) and the walks: forward in topological order,
 * backward in reverse. The per-op work is lib/exec/train_ops.c's. */
#include "exec/train_internal.h"

#include "clcnn_ids.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_ELEMS 64 /* 256-byte boundaries between parameters in the arenas */

static size_t round_up(size_t n) {
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

static clcnn_status oom(void) {
    return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_train_plan_create: out of host memory");
}

/* Shapes of every value with the batch filled in; which initializers are parameters. */
static clcnn_status classify_values(clcnn_train_plan *p, const clcnn_graph *g) {
    for (int v = 0; v < g->nvals; v++) {
        const cc_gvalue *gv = &g->vals[v];
        cc_tval *tv = &p->vals[v];
        tv->param = -1;
        if (gv->dtype != CLCNN_F32) continue; /* integer shapes and indices: host only */
        CC_RETURN_IF(gv->ndim > CLCNN_MAX_DIMS, CLCNN_ERR_UNSUPPORTED,
                     "clcnn_train_plan_create: value '%s' has %d dimensions; training plans "
                     "hold at most %d",
                     gv->name, gv->ndim, CLCNN_MAX_DIMS);
        tv->ndim = gv->ndim;
        CC_TRY(cc_value_dims(gv, p->batch, "clcnn_train_plan_create", tv->shape, &tv->numel));
        tv->kind = gv->kind == CC_VAL_INPUT  ? CC_TV_INPUT
                   : gv->kind == CC_VAL_INIT ? CC_TV_STATE
                                             : CC_TV_ACT;
    }
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v >= 0 && p->vals[v].kind == CC_TV_STATE && cc_train_grad_slot(n->op, j))
                p->vals[v].kind = CC_TV_PARAM;
        }
        if (cc_train_is_view(n->op) && p->vals[n->out[0]].kind == CC_TV_ACT)
            p->vals[n->out[0]].kind = CC_TV_ALIAS;
    }
    return CLCNN_OK;
}

/* The parameter arena: trainable parameters first (their gradients line up), then state;
 * both in the graph's value order, each starting on a 256-byte boundary. */
static clcnn_status make_arenas(clcnn_train_plan *p, const clcnn_graph *g,
                                const clcnn_train_plan *like) {
    p->params = calloc((size_t)g->nvals + 1, sizeof *p->params);
    if (!p->params) return oom();
    size_t top = 0, train_top = 0;
    for (int pass = 0; pass < 2; pass++) {
        cc_tval_kind want = pass == 0 ? CC_TV_PARAM : CC_TV_STATE;
        for (int v = 0; v < g->nvals; v++) {
            if (p->vals[v].kind != want) continue;
            cc_tparam *q = &p->params[p->nparams];
            q->name = strdup(g->vals[v].name);
            if (!q->name) return oom();
            q->value = v;
            q->offset = top;
            q->numel = p->vals[v].numel;
            p->vals[v].param = p->nparams++;
            top += round_up(q->numel);
        }
        if (pass == 0) {
            p->ntrain = p->nparams;
            train_top = top;
        }
    }
    size_t state_n = top - train_top;
    if (top == 0) top = 1;
    size_t gtop = train_top ? train_top : 1;
    if (like) { /* the same graph at another batch: its arenas, values as they are */
        CC_RETURN_IF(like->nparams != p->nparams || like->arena->numel != top ||
                         like->grad_arena->numel != gtop,
                     CLCNN_ERR_INVALID_ARG,
                     "clcnn_train_plan_create: the plan to share arenas with has %d parameters "
                     "in %zu elements, this graph %d in %zu",
                     like->nparams, like->arena->numel, p->nparams, top);
        CC_TRY(clcnn_tensor_view(like->arena, 1, &top, &p->arena));
        CC_TRY(clcnn_tensor_view(like->grad_arena, 1, &gtop, &p->grad_arena));
    } else {
        CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &top, &p->arena));
        CC_TRY(clcnn_tensor_fill(p->arena, 0.0f));
        CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &gtop, &p->grad_arena));
        CC_TRY(clcnn_tensor_fill(p->grad_arena, 0.0f));
    }
    p->trained = cc_tensor_view_at(p->arena, 1, &gtop, 0);
    if (!p->trained) return oom();
    if (state_n) {
        p->state = cc_tensor_view_at(p->arena, 1, &state_n, train_top);
        if (!p->state) return oom();
    }
    for (int i = 0; i < p->nparams; i++) {
        cc_tparam *q = &p->params[i];
        cc_tval *tv = &p->vals[q->value];
        tv->t = cc_tensor_view_at(p->arena, tv->ndim, tv->shape, q->offset);
        if (!tv->t) return oom();
        if (!like)
            CC_TRY(clcnn_tensor_upload(tv->t, g->vals[q->value].data, q->numel * sizeof(float)));
        if (i < p->ntrain) {
            tv->g = cc_tensor_view_at(p->grad_arena, tv->ndim, tv->shape, q->offset);
            if (!tv->g) return oom();
        }
    }
    return CLCNN_OK;
}

/* Which values a gradient flows into, in topological order. */
static void mark_needs(clcnn_train_plan *p) {
    for (int v = 0; v < p->nvals; v++) {
        cc_tval *tv = &p->vals[v];
        tv->need = tv->kind == CC_TV_PARAM || (tv->kind == CC_TV_INPUT && p->opts.input_grads);
    }
    for (int i = 0; i < p->nnodes; i++) {
        const cc_tnode *n = &p->nodes[i];
        int need = 0;
        for (int j = 0; j < n->n_in; j++)
            need |= n->in[j] >= 0 && cc_train_grad_slot(n->op, j) && p->vals[n->in[j]].need;
        for (int k = 0; k < n->n_out; k++)
            if (p->vals[n->out[k]].kind != CC_TV_NONE) p->vals[n->out[k]].need = need;
    }
}

static clcnn_status new_like(clcnn_train_plan *p, const cc_tval *tv, clcnn_tensor **out) {
    return clcnn_tensor_create(p->dev, CLCNN_F32, tv->ndim, tv->shape, out);
}

/* A view's (Flatten, Reshape, ...) gradient is its input's contribution seen in the view's
 * shape: the view's gradient becomes a view of that contribution's buffer, so backward
 * copies nothing. The contribution's buffer is the view's alone (the input's gradient for
 * its first reader, else its own extra buffer), and the view's readers add up their
 * contributions in it before the view's backward, as they would in a buffer of its own. */
static clcnn_status alias_view_grad(clcnn_train_plan *p, cc_tnode *n) {
    cc_tval *y = &p->vals[n->out[0]];
    if (!cc_train_is_view(n->op) || y->kind != CC_TV_ALIAS || !y->g || !n->dst[0]) return CLCNN_OK;
    clcnn_tensor *v = NULL;
    CC_TRY(clcnn_tensor_view(n->dst[0], y->ndim, y->shape, &v));
    clcnn_tensor_free(y->g);
    y->g = v;
    return CLCNN_OK;
}

/* Gradient buffers and, per node input, where its contribution goes. */
static clcnn_status route_grads(clcnn_train_plan *p) {
    for (int v = 0; v < p->nvals; v++) {
        cc_tval *tv = &p->vals[v];
        if (!tv->need || tv->kind == CC_TV_PARAM) continue;
        CC_TRY(new_like(p, tv, &tv->g));
    }
    for (int i = 0; i < p->nnodes; i++) {
        cc_tnode *n = &p->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            if (v < 0 || !cc_train_grad_slot(n->op, j) || !p->vals[v].need) continue;
            cc_tval *tv = &p->vals[v];
            if ((tv->kind != CC_TV_PARAM || p->overwrite) && !tv->is_output && !tv->direct) {
                tv->direct = 1;
                n->dst[j] = tv->g;
                continue;
            }
            clcnn_tensor **e = realloc(tv->extra, (size_t)(tv->nextra + 1) * sizeof *e);
            if (!e) return oom();
            tv->extra = e;
            e[tv->nextra] = NULL;
            CC_TRY(new_like(p, tv, &e[tv->nextra]));
            n->dst[j] = e[tv->nextra++];
        }
        CC_TRY(alias_view_grad(p, n)); /* before the view's readers take its gradient */
    }
    return CLCNN_OK;
}

/* An Add fused with its ReLU whose output's gradient has two contributions, the first
 * written straight into g (cc_train_sums_own_grad), has them summed and masked by the data
 * gradient of the convolution that writes that first one, where that runs on the implicit
 * GEMM at stride 1 (cc_conv2d_backward_data_relu, the same bits as the Add's own pass):
 * the convolution is the value's first reader, so its backward runs after the other's.
 * The Add then passes its output's gradient on as it is, and needs no scratch. ResNet's
 * bottlenecks: every block's output feeds the next block's first 1x1 convolution. */
static void fold_relu_grads(clcnn_train_plan *p) {
    for (int i = 0; i < p->nnodes; i++) {
        cc_tnode *n = &p->nodes[i];
        if (!cc_train_sums_own_grad(p, n)) continue;
        const cc_tval *v = &p->vals[n->out[0]];
        for (int k = i + 1; k < p->nnodes; k++) {
            cc_tnode *c = &p->nodes[k];
            if (c->n_in < 1 || c->dst[0] != v->g) continue;
            if (c->op == CC_OP_CONV && !c->px && c->in[0] == n->out[0] &&
                cc_conv2d_data_relu_applies(&c->conv,
                                            c->conv_algo[CLCNN_CONV_PASS_BACKWARD_DATA])) {
                c->relu_grad = n->relu_grad = 1;
                clcnn_tensor_free(n->scratch[0]);
                n->scratch[0] = NULL;
            }
            break;
        }
    }
}

/* Add, and Sub's first operand, pass dy on unchanged where the operand has the output's
 * shape: the operand's contribution becomes a view of dy instead of a copy of it. Only
 * where nothing writes that buffer afterwards: an extra contribution is only read (summed
 * into the operand's gradient), the operand's own gradient only when nothing else is added
 * into it, and dy must be the output's own buffer, complete before the Add's backward and
 * written by nobody after it (so later Adds first: an Add whose output's gradient became a
 * view keeps its copies). */
static clcnn_status alias_add_grads(clcnn_train_plan *p) {
    for (int i = p->nnodes - 1; i >= 0; i--) {
        cc_tnode *n = &p->nodes[i];
        if (n->op != CC_OP_ADD && n->op != CC_OP_SUB) continue;
        const cc_tval *y = &p->vals[n->out[0]];
        /* an Add fused with its ReLU passes on the masked dy of its own scratch (unless a
         * convolution's data gradient masked y's own) */
        const clcnn_tensor *dy =
            n->act != CLCNN_ACT_ID_NONE && !n->relu_grad ? n->scratch[0] : y->g;
        if (!y->g || y->kind != CC_TV_ACT || (y->g_shared && dy == y->g)) continue;
        for (int j = 0; j < (n->op == CC_OP_ADD ? 2 : 1); j++) {
            cc_tval *a = &p->vals[n->in[j]];
            if (!n->dst[j] || a->kind != CC_TV_ACT || a->numel != y->numel) continue;
            clcnn_tensor **slot = NULL;
            if (n->dst[j] == a->g && a->nextra == 0 && !a->g_shared) slot = &a->g;
            for (int k = 0; k < a->nextra && !slot; k++)
                if (a->extra[k] == n->dst[j]) slot = &a->extra[k];
            if (!slot) continue;
            clcnn_tensor *v = NULL;
            CC_TRY(clcnn_tensor_view(dy, a->ndim, a->shape, &v));
            clcnn_tensor_free(*slot);
            *slot = n->dst[j] = v;
            if (slot == &a->g) a->g_shared = 1;
        }
    }
    return CLCNN_OK;
}

/* Whether n is an Add of two operands with its output's shape (no broadcasting). */
static int flat_add(const clcnn_train_plan *p, const cc_tnode *n) {
    if (n->op != CC_OP_ADD || n->n_in != 2 || n->in[0] < 0 || n->in[1] < 0) return 0;
    size_t numel = p->vals[n->out[0]].numel;
    return p->vals[n->in[0]].numel == numel && p->vals[n->in[1]].numel == numel;
}

/* A BatchNormalization whose output only a Relu, or a Clip to [0, 6], reads runs as one
 * node with it: batch norm writes the activation's output, and its backward masks that
 * output's gradient (lib/ops/batchnorm.c), which is bit for bit what the activation's
 * backward would have handed it. So does an Add of equal shapes with the Relu that alone
 * reads it (cc_add_relu; backward: the ReLU's mask from its output, then the Add's).
 * The activation node keeps no inputs or outputs, so the walks pass it by; the fused
 * node's own output needs no buffer. Not with bn_sync (its arithmetic is on the host). */
static void fuse_activations(clcnn_train_plan *p, const clcnn_graph *g) {
    for (int i = 0; i < p->nnodes; i++) {
        cc_tnode *n = &p->nodes[i];
        int v = n->out[0], only = -1;
        int is_bn = n->op == CC_OP_BATCHNORM && !p->opts.bn_sync;
        if ((!is_bn && !flat_add(p, n)) || p->vals[v].kind != CC_TV_ACT ||
            cc_value_readers(g, v, &only) != 1)
            continue;
        cc_tnode *r = NULL;
        for (int k = i + 1; k < p->nnodes && !r; k++)
            if (p->nodes[k].node == only) r = &p->nodes[k];
        if (!r || r->in[0] != v) continue;
        float lim[2];
        int act = r->op == CC_OP_RELU ? CLCNN_ACT_ID_RELU
                  : r->op == CC_OP_CLIP && cc_train_clip_bounds(g, r, lim) && lim[0] == 0.0f &&
                          lim[1] == 6.0f
                      ? CLCNN_ACT_ID_RELU6
                      : CLCNN_ACT_ID_NONE;
        if (!is_bn && act != CLCNN_ACT_ID_RELU) continue;
        if (act == CLCNN_ACT_ID_NONE || p->vals[r->out[0]].kind != CC_TV_ACT) continue;
        n->act = act;
        n->out[0] = r->out[0];
        p->vals[v].kind = CC_TV_NONE;
        r->fused = 1;
        r->n_in = r->n_out = 0;
    }
}

/* The node that writes value v (after fuse_activations: the fused node), or -1. */
static int producer(const clcnn_train_plan *p, int v) {
    for (int i = 0; i < p->nnodes; i++)
        for (int k = 0; k < p->nodes[i].n_out; k++)
            if (p->nodes[i].out[k] == v) return i;
    return -1;
}

/* An Add of equal shapes (with or without the ReLU fused into it) whose later operand is
 * a training batch norm's output that only the Add reads runs its forward in the batch
 * norm's pass: act(y + the other operand), the sum and comparisons ew_add(_relu) would
 * have made of the stored y (cl/batchnorm.cl), so the Add's output is the same bits and
 * the batch norm's y is never stored (ResNet's last batch norm of each block: one pass
 * over three tensors instead of two passes over five). The other operand is ready then:
 * its producer comes earlier. Backward is unchanged: the Add (and its ReLU's mask from
 * its output) hands the batch norm its gradient, and the batch norm's backward reads x,
 * not y. Not with bn_sync, nor where y is a graph output. */
static void fuse_bn_add(clcnn_train_plan *p, const clcnn_graph *g) {
    for (int i = 0; i < p->nnodes; i++) {
        cc_tnode *a = &p->nodes[i];
        if (a->fused || !flat_add(p, a) || p->vals[a->out[0]].kind != CC_TV_ACT ||
            a->in[0] == a->in[1])
            continue;
        int pr[2] = {producer(p, a->in[0]), producer(p, a->in[1])};
        int j = pr[1] > pr[0];
        if (pr[j] < 0) continue;
        cc_tnode *b = &p->nodes[pr[j]];
        int v = a->in[j], only = -1;
        cc_tval *y = &p->vals[v];
        if (b->op != CC_OP_BATCHNORM || p->opts.bn_sync || b->act != CLCNN_ACT_ID_NONE ||
            b->out[0] != v || y->kind != CC_TV_ACT || y->is_output ||
            cc_value_readers(g, v, &only) != 1)
            continue;
        b->res = a->in[1 - j];
        b->res_out = a->out[0];
        b->act = a->act;
        a->fwd_done = 1;
        y->no_t = 1;
    }
}

static clcnn_status copy_nodes(clcnn_train_plan *p, const clcnn_graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *gn = &g->nodes[g->order[i]];
        cc_tnode *n = &p->nodes[i];
        n->op = gn->op;
        n->node = g->order[i];
        n->name = strdup(gn->name);
        if (!n->name) return oom();
        if (!cc_train_has_op(gn->op))
            return cc_fail(CLCNN_ERR_UNSUPPORTED,
                           "clcnn_train_plan_create: node '%s' (%s) has no backward in training "
                           "plans",
                           gn->name, cc_op_defs[gn->op].name);
        if (gn->n_in > CC_STEP_MAX_IN || gn->n_out > 4)
            return cc_fail(CLCNN_ERR_UNSUPPORTED,
                           "clcnn_train_plan_create: node '%s' (%s) has %d inputs and %d outputs "
                           "(at most %d and 4 in training plans)",
                           gn->name, cc_op_defs[gn->op].name, gn->n_in, gn->n_out, CC_STEP_MAX_IN);
        n->n_in = gn->n_in;
        n->n_out = gn->n_out;
        memcpy(n->in, gn->in, (size_t)gn->n_in * sizeof *n->in);
        memcpy(n->out, gn->out, (size_t)gn->n_out * sizeof *n->out);
        n->a = gn->a;
        n->res = n->res_out = -1;
        for (int k = 1; k < gn->n_out && gn->op != CC_OP_SPLIT; k++) {
            int dummy;
            if (cc_value_readers(g, gn->out[k], &dummy) > 0)
                return cc_fail(CLCNN_ERR_UNSUPPORTED,
                               "clcnn_train_plan_create: node '%s' (%s): output %d ('%s') is read; "
                               "training plans run the first output only",
                               gn->name, cc_op_defs[gn->op].name, k, g->vals[gn->out[k]].name);
        }
    }
    return CLCNN_OK;
}

clcnn_status clcnn_train_plan_create(clcnn_device *dev, clcnn_graph *g, int batch,
                                     const clcnn_train_options *opts, clcnn_train_plan **out) {
    return cc_train_plan_create_ex(dev, g, batch, opts, NULL, 0, out);
}

clcnn_status cc_train_plan_create_ex(clcnn_device *dev, clcnn_graph *g, int batch,
                                     const clcnn_train_options *opts, const clcnn_train_plan *like,
                                     int overwrite, clcnn_train_plan **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_train_plan_create: out is NULL");
    *out = NULL;
    CC_TRY(cc_plan_check_args(dev, g, batch, "clcnn_train_plan_create"));
    clcnn_train_plan *p = calloc(1, sizeof *p);
    CC_RETURN_IF(!p, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_train_plan_create: out of host memory");
    p->dev = dev;
    p->batch = batch;
    if (opts) p->opts = *opts;
    p->overwrite = overwrite || p->opts.overwrite_grads;
    p->nvals = g->nvals;
    p->nnodes = g->nnodes;
    p->ninputs = clcnn_graph_num_inputs(g);
    p->noutputs = g->noutputs;
    p->vals = calloc((size_t)p->nvals + 1, sizeof *p->vals);
    p->nodes = calloc((size_t)p->nnodes + 1, sizeof *p->nodes);
    p->inputs = calloc((size_t)p->ninputs + 1, sizeof *p->inputs);
    p->outputs = calloc((size_t)p->noutputs + 1, sizeof *p->outputs);
    clcnn_status s = CLCNN_OK;
    if (!p->vals || !p->nodes || !p->inputs || !p->outputs) s = oom();
    if (s == CLCNN_OK) s = copy_nodes(p, g);
    if (s == CLCNN_OK) s = classify_values(p, g);
    for (int v = 0, k = 0; s == CLCNN_OK && v < g->nvals; v++)
        if (g->vals[v].kind == CC_VAL_INPUT) p->inputs[k++] = v;
    for (int i = 0; s == CLCNN_OK && i < p->noutputs; i++) {
        int v = g->outputs[i];
        p->outputs[i] = v;
        p->vals[v].is_output = 1;
        if (g->vals[v].kind != CC_VAL_NODE || g->vals[v].dtype != CLCNN_F32)
            s = cc_fail(CLCNN_ERR_UNSUPPORTED,
                        "clcnn_train_plan_create: output '%s' is not a float node output",
                        g->vals[v].name);
    }
    if (s == CLCNN_OK) fuse_activations(p, g);
    if (s == CLCNN_OK) fuse_bn_add(p, g);
    if (s == CLCNN_OK) s = make_arenas(p, g, like);
    /* activations: one buffer each; views get their tensors per forward */
    for (int v = 0; s == CLCNN_OK && v < p->nvals; v++)
        if (p->vals[v].kind == CC_TV_ACT && !p->vals[v].no_t)
            s = new_like(p, &p->vals[v], &p->vals[v].t);
    if (s == CLCNN_OK) mark_needs(p);
    for (int i = 0; s == CLCNN_OK && i < p->nnodes; i++)
        s = cc_train_prepare(p, g, &p->nodes[i]);
    if (s == CLCNN_OK) s = route_grads(p);
    if (s == CLCNN_OK) fold_relu_grads(p);
    if (s == CLCNN_OK) s = alias_add_grads(p);
    if (s != CLCNN_OK) {
        clcnn_train_plan_free(p);
        return s;
    }
    *out = p;
    return CLCNN_OK;
}

int clcnn_train_plan_conv_measured(const clcnn_train_plan *p) {
    return p ? p->conv_measured : 0;
}

int clcnn_train_plan_num_convs(const clcnn_train_plan *p) {
    return p ? p->convs.n : 0;
}

const clcnn_plan_conv *clcnn_train_plan_conv_at(const clcnn_train_plan *p, int i) {
    return p && i >= 0 && i < p->convs.n ? &p->convs.e[i] : NULL;
}

void clcnn_train_plan_free(clcnn_train_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nnodes; i++) {
        cc_train_release(&p->nodes[i]);
        free(p->nodes[i].name);
    }
    for (int v = 0; v < p->nvals; v++) {
        cc_tval *tv = &p->vals[v];
        if (tv->kind != CC_TV_INPUT) clcnn_tensor_free(tv->t);
        clcnn_tensor_free(tv->g);
        for (int k = 0; k < tv->nextra; k++)
            clcnn_tensor_free(tv->extra[k]);
        free(tv->extra);
    }
    for (int i = 0; i < p->nparams; i++)
        free(p->params[i].name);
    clcnn_tensor_free(p->trained);
    clcnn_tensor_free(p->state);
    clcnn_tensor_free(p->arena);
    clcnn_tensor_free(p->grad_arena);
    free(p->params);
    free(p->vals);
    free(p->nodes);
    free(p->inputs);
    free(p->outputs);
    free(p->convs.e);
    free(p);
}

/* CLCNN_PROFILE=steps: what node i's forward or backward enqueues counts under
 * "fwd 12 Conv+Relu name [algo]" (the forward pass's algorithm for a convolution). */
static void trace_node(clcnn_train_plan *p, int i, const char *pass, char *label, size_t size) {
    const cc_tnode *n = &p->nodes[i];
    if (!p->dev->trace_steps || n->fused) return;
    const char *act = n->act == CLCNN_ACT_ID_RELU    ? "+Relu"
                      : n->act == CLCNN_ACT_ID_RELU6 ? "+Clip"
                                                     : "";
    int len = snprintf(label, size, "%s %d %s%s%s %s", pass, i, cc_op_defs[n->op].name,
                       n->res >= 0 ? "+Add" : "", act, n->name);
    if (n->op == CC_OP_CONV && len > 0 && (size_t)len < size)
        snprintf(label + len, size - (size_t)len, " [%s]",
                 clcnn_conv_algo_name(n->conv_algo[CLCNN_CONV_PASS_FORWARD]));
    p->dev->trace_label = label;
}

clcnn_status clcnn_train_plan_forward(clcnn_train_plan *p, const clcnn_tensor *const *inputs,
                                      int n_inputs) {
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_train_plan_forward: plan is NULL");
    CC_RETURN_IF(n_inputs != p->ninputs || (n_inputs && !inputs), CLCNN_ERR_INVALID_ARG,
                 "clcnn_train_plan_forward: %d inputs given, the graph has %d", n_inputs,
                 p->ninputs);
    p->forwarded = 0;
    for (int i = 0; i < n_inputs; i++) {
        cc_tval *tv = &p->vals[p->inputs[i]];
        const clcnn_tensor *t = inputs[i];
        CC_TRY(cc_check_tensor(p->dev, t, CLCNN_F32, "clcnn_train_plan_forward", "input"));
        int ok = clcnn_tensor_ndim(t) == tv->ndim;
        for (int d = 0; ok && d < tv->ndim; d++)
            ok = clcnn_tensor_dim(t, d) == tv->shape[d];
        if (!ok) {
            char a[64], b[96];
            int64_t dims[CLCNN_MAX_DIMS];
            for (int d = 0; d < tv->ndim; d++)
                dims[d] = (int64_t)tv->shape[d];
            return cc_fail(CLCNN_ERR_SHAPE,
                           "clcnn_train_plan_forward: input %d is %s, the plan expects %s", i,
                           clcnn_tensor_shape_str(t, a, sizeof a),
                           cc_graph_shape_str(dims, tv->ndim, b, sizeof b));
        }
        tv->t = (clcnn_tensor *)t;
    }
    p->forwards++;
    for (int i = 0; i < p->nnodes; i++) {
        char label[192];
        trace_node(p, i, "fwd", label, sizeof label);
        clcnn_status s = cc_train_forward(p, &p->nodes[i]);
        p->dev->trace_label = NULL;
        if (s != CLCNN_OK)
            return cc_fail_append(s, " (training forward of node '%s')", p->nodes[i].name);
    }
    p->forwarded = 1;
    return CLCNN_OK;
}

const clcnn_tensor *clcnn_train_plan_output(const clcnn_train_plan *p, int i) {
    return p && i >= 0 && i < p->noutputs ? p->vals[p->outputs[i]].t : NULL;
}

/* Whether n's backward sums its output's gradient itself: an Add fused with its ReLU
 * whose output has two contributions, the first written straight into g (train_eltwise.c's
 * binary_backward adds and masks them in one pass, cc_add_relu_grad), so finish_grad
 * leaves g as it is. */
int cc_train_sums_own_grad(const clcnn_train_plan *p, const cc_tnode *n) {
    if (n->op != CC_OP_ADD || n->act != CLCNN_ACT_ID_RELU || n->n_out < 1) return 0;
    const cc_tval *v = &p->vals[n->out[0]];
    return v->kind == CC_TV_ACT && v->g && v->direct && !v->is_output && v->nextra == 1;
}

/* g of v = its first contribution (the output gradient or the direct reader's, else 0)
 * plus the later ones in order. Parameters add every contribution to the arena. */
static clcnn_status finish_grad(clcnn_train_plan *p, int v) {
    cc_tval *tv = &p->vals[v];
    if (!tv->g) return CLCNN_OK;
    if (tv->kind != CC_TV_PARAM && !tv->is_output && !tv->direct)
        CC_TRY(clcnn_tensor_fill(tv->g, 0.0f));
    for (int k = 0; k < tv->nextra; k++)
        CC_TRY(clcnn_axpby(p->dev, 1.0f, tv->extra[k], 1.0f, tv->g));
    return CLCNN_OK;
}

clcnn_status clcnn_train_plan_backward(clcnn_train_plan *p, const clcnn_tensor *const *output_grads,
                                       int n_outputs) {
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_train_plan_backward: plan is NULL");
    CC_RETURN_IF(!p->forwarded, CLCNN_ERR_INVALID_ARG,
                 "clcnn_train_plan_backward: no forward since the plan was made (or the last "
                 "one failed)");
    CC_RETURN_IF(n_outputs != p->noutputs || !output_grads, CLCNN_ERR_INVALID_ARG,
                 "clcnn_train_plan_backward: %d output gradients given, the graph has %d "
                 "outputs",
                 n_outputs, p->noutputs);
    for (int i = 0; i < n_outputs; i++) {
        cc_tval *tv = &p->vals[p->outputs[i]];
        if (!tv->g) continue;
        if (!output_grads[i]) {
            CC_TRY(clcnn_tensor_fill(tv->g, 0.0f));
            continue;
        }
        CC_TRY(cc_check_tensor(p->dev, output_grads[i], CLCNN_F32, "clcnn_train_plan_backward",
                               "output gradient"));
        if (clcnn_tensor_numel(output_grads[i]) != tv->numel) {
            char a[64], b[64];
            return cc_fail(CLCNN_ERR_SHAPE,
                           "clcnn_train_plan_backward: gradient of output %d is %s, the output is "
                           "%s",
                           i, clcnn_tensor_shape_str(output_grads[i], a, sizeof a),
                           clcnn_tensor_shape_str(tv->t, b, sizeof b));
        }
        /* a caller that computed the gradient in place (lib/nn's loss) needs no copy */
        if (output_grads[i]->storage != tv->g->storage || output_grads[i]->offset != tv->g->offset)
            CC_TRY(clcnn_tensor_copy(tv->g, output_grads[i]));
    }
    for (int i = p->nnodes - 1; i >= 0; i--) {
        cc_tnode *n = &p->nodes[i];
        int any = 0;
        for (int j = 0; j < n->n_in; j++)
            any |= n->dst[j] != NULL;
        if (!any) continue;
        char label[192];
        trace_node(p, i, "bwd", label, sizeof label);
        clcnn_status s = CLCNN_OK;
        for (int k = cc_train_sums_own_grad(p, n); s == CLCNN_OK && k < n->n_out; k++)
            s = finish_grad(p, n->out[k]);
        if (s == CLCNN_OK) s = cc_train_backward(p, n);
        p->dev->trace_label = NULL;
        if (s != CLCNN_OK) return cc_fail_append(s, " (backward of node '%s')", n->name);
    }
    for (int v = 0; v < p->nvals; v++)
        if (p->vals[v].kind == CC_TV_PARAM || p->vals[v].kind == CC_TV_INPUT)
            CC_TRY(finish_grad(p, v));
    return CLCNN_OK;
}

clcnn_status clcnn_train_plan_zero_grad(clcnn_train_plan *p) {
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_train_plan_zero_grad: plan is NULL");
    return clcnn_tensor_fill(p->grad_arena, 0.0f);
}

int clcnn_train_plan_num_params(const clcnn_train_plan *p) {
    return p ? p->nparams : 0;
}

const char *clcnn_train_plan_param_name(const clcnn_train_plan *p, int i) {
    return p && i >= 0 && i < p->nparams ? p->params[i].name : NULL;
}

clcnn_tensor *clcnn_train_plan_params(const clcnn_train_plan *p) {
    return p ? p->trained : NULL;
}

clcnn_tensor *clcnn_train_plan_grads(const clcnn_train_plan *p) {
    return p ? p->grad_arena : NULL;
}

clcnn_tensor *clcnn_train_plan_state(const clcnn_train_plan *p) {
    return p ? p->state : NULL;
}

size_t clcnn_train_plan_param_offset(const clcnn_train_plan *p, int i) {
    return p && i >= 0 && i < p->nparams ? p->params[i].offset : 0;
}

void clcnn_train_plan_set_forward_count(clcnn_train_plan *p, uint64_t count) {
    if (p) p->forwards = count - 1; /* the forward adds one before drawing */
}

static const cc_tparam *find_param(const clcnn_train_plan *p, const char *name) {
    for (int i = 0; p && name && i < p->nparams; i++)
        if (!strcmp(p->params[i].name, name)) return &p->params[i];
    return NULL;
}

clcnn_tensor *clcnn_train_plan_param(const clcnn_train_plan *p, const char *name) {
    const cc_tparam *q = find_param(p, name);
    return q ? p->vals[q->value].t : NULL;
}

clcnn_tensor *clcnn_train_plan_grad(const clcnn_train_plan *p, const char *name) {
    const cc_tparam *q = find_param(p, name);
    return q ? p->vals[q->value].g : NULL;
}

static clcnn_status checked_param(const clcnn_train_plan *p, const char *op, const char *name,
                                  size_t bytes, const void *buf, clcnn_tensor **t) {
    const cc_tparam *q = find_param(p, name);
    CC_RETURN_IF(!q, CLCNN_ERR_INVALID_ARG, "%s: no parameter '%s'", op, name ? name : "(null)");
    CC_RETURN_IF(!buf || bytes != q->numel * sizeof(float), CLCNN_ERR_INVALID_ARG,
                 "%s: parameter '%s' has %zu bytes, %zu given", op, name, q->numel * sizeof(float),
                 bytes);
    *t = p->vals[q->value].t;
    return CLCNN_OK;
}

clcnn_status clcnn_train_plan_read(const clcnn_train_plan *p, const char *name, float *dst,
                                   size_t bytes) {
    clcnn_tensor *t = NULL;
    CC_TRY(checked_param(p, "clcnn_train_plan_read", name, bytes, dst, &t));
    return clcnn_tensor_download(t, dst, bytes);
}

clcnn_status clcnn_train_plan_write(clcnn_train_plan *p, const char *name, const float *src,
                                    size_t bytes) {
    clcnn_tensor *t = NULL;
    CC_TRY(checked_param(p, "clcnn_train_plan_write", name, bytes, src, &t));
    return clcnn_tensor_upload(t, src, bytes);
}

const clcnn_tensor *clcnn_train_plan_input_grad(const clcnn_train_plan *p, int i) {
    return p && i >= 0 && i < p->ninputs ? p->vals[p->inputs[i]].g : NULL;
}

clcnn_status clcnn_train_plan_to_graph(const clcnn_train_plan *p, clcnn_graph *g) {
    CC_RETURN_IF(!p || !g, CLCNN_ERR_INVALID_ARG, "clcnn_train_plan_to_graph: NULL argument");
    size_t most = 0;
    for (int i = 0; i < p->nparams; i++)
        if (p->params[i].numel > most) most = p->params[i].numel;
    float *buf = malloc((most ? most : 1) * sizeof *buf);
    CC_RETURN_IF(!buf, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_train_plan_to_graph: out of host memory");
    clcnn_status s = CLCNN_OK;
    for (int i = 0; s == CLCNN_OK && i < p->nparams; i++) {
        const cc_tparam *q = &p->params[i];
        size_t numel = 0;
        if (!clcnn_graph_initializer(g, q->name, &numel) || numel != q->numel) {
            s = cc_fail(CLCNN_ERR_INVALID_ARG,
                        "clcnn_train_plan_to_graph: the graph has no float initializer '%s' of "
                        "%zu elements",
                        q->name, q->numel);
            break;
        }
        s = clcnn_tensor_download(p->vals[q->value].t, buf, q->numel * sizeof *buf);
        if (s == CLCNN_OK) s = clcnn_graph_set_initializer(g, q->name, buf, q->numel * sizeof *buf);
    }
    free(buf);
    return s;
}
