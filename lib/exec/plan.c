/* Plans: a checked graph bound to one device and batch size. Owns the decisions made
 * once: which nodes fuse into one step (batch norm folded into the convolution before it;
 * activation (SiLU too) or residual Add (+ activation) into its epilogue; a depthwise
 * convolution into the 1x1 one after it), where each activation
 * lives (one arena, values whose lifetimes do not overlap share bytes), and the order of
 * the steps. Running a plan walks the steps and launches their kernels. */
#include "exec/exec_internal.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_ELEMS 64 /* 256-byte boundaries between values in the arena */

clcnn_plan_options clcnn_plan_options_default(void) {
    clcnn_plan_options o = {.fold_batchnorm = 1,
                            .fuse = 1,
                            .reuse_buffers = 1,
                            .conv_algo = CLCNN_CONV_AUTO,
                            .fuse_depthwise = 1};
    return o;
}

/* Ops whose output is its input's storage with another shape. */
static int is_alias_op(cc_op op) {
    return op == CC_OP_FLATTEN || op == CC_OP_IDENTITY || op == CC_OP_DROPOUT ||
           op == CC_OP_RESHAPE || op == CC_OP_SQUEEZE || op == CC_OP_UNSQUEEZE;
}

/* Ops whose step is one strided copy over the output (steps_movement.c's prepare_map). */
static int is_map_op(cc_op op) {
    return op == CC_OP_TRANSPOSE || op == CC_OP_SLICE || op == CC_OP_PAD || op == CC_OP_EXPAND ||
           op == CC_OP_TILE;
}

/* Whether value v may be wider than 4 dims: made by a view or a strided copy, read only by
 * views and strided copies, and no graph output (PyTorch's channel shuffle: Reshape to
 * [N,g,C/g,H,W], Transpose, Reshape back). */
static int wide_ok(const clcnn_graph *g, int v) {
    int prod = g->vals[v].producer;
    if (g->vals[v].kind != CC_VAL_NODE || prod < 0) return 0;
    if (!is_alias_op(g->nodes[prod].op) && !is_map_op(g->nodes[prod].op)) return 0;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == v) return 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == v && !is_alias_op(g->nodes[i].op) &&
                !is_map_op(g->nodes[i].op))
                return 0;
    return 1;
}

/* The device tensor's shape of pv: at most 4 dims, the leading ones of a wider value
 * collapsed into one. Returns its ndim. */
static int device_shape(const cc_pvalue *pv, size_t shape[CLCNN_MAX_DIMS]) {
    int extra = pv->ndim > CLCNN_MAX_DIMS ? pv->ndim - CLCNN_MAX_DIMS : 0;
    shape[0] = 1;
    for (int d = 0; d < pv->ndim; d++) {
        if (d <= extra)
            shape[0] = d == 0 ? pv->shape[0] : shape[0] * pv->shape[d];
        else
            shape[d - extra] = pv->shape[d];
    }
    return pv->ndim - extra;
}

/* How many node inputs and graph outputs read value v. */
int cc_value_readers(const clcnn_graph *g, int v, int *only) {
    int count = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == v) {
                count++;
                *only = i;
            }
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] == v) count += 2; /* an output is never fused away */
    return count;
}

clcnn_status cc_value_dims(const cc_gvalue *gv, int batch, const char *op, size_t *shape,
                           size_t *numel) {
    *numel = 1;
    for (int d = 0; d < gv->ndim; d++) {
        shape[d] = (size_t)(gv->dims[d] == CLCNN_GRAPH_BATCH ? batch : gv->dims[d]);
        CC_RETURN_IF(*numel > ((size_t)1 << 40) / (shape[d] ? shape[d] : 1), CLCNN_ERR_SHAPE,
                     "%s: value '%s' is too large", op, gv->name);
        *numel *= shape[d];
    }
    return CLCNN_OK;
}

/* The single node reading v, when exactly one node (and no graph output) reads it. */
static int sole_consumer(const clcnn_graph *g, int v) {
    int only = -1;
    return cc_value_readers(g, v, &only) == 1 ? only : -1;
}

static int all_init(const clcnn_graph *g, const cc_gnode *n, int from, int to) {
    for (int i = from; i < to; i++)
        if (i >= n->n_in || n->in[i] < 0 || g->vals[n->in[i]].kind != CC_VAL_INIT) return 0;
    return 1;
}

static int same_shape(const cc_gvalue *a, const cc_gvalue *b) {
    return a->ndim == b->ndim && !memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof *a->dims);
}

static int is_act(const cc_gnode *n) {
    return n->op == CC_OP_RELU || n->op == CC_OP_LEAKYRELU;
}

/* Grouping: leader[i] = the node whose step absorbs node i (itself when not fused);
 * anchor[leader] = the last node of its group in topological order, where its step runs. */
typedef struct group_info {
    int *leader, *anchor, *pos; /* pos: node -> position in topological order */
} group_info;

/* SiLU after a convolution's value cur (PyTorch's export: Sigmoid(cur) and Mul of the two,
 * either order, nothing else reading cur or the Sigmoid): *sig and *mul; 0 when absent,
 * taken, or when conv would not run on implicit_gemm or depthwise (the kernels that compile
 * the SiLU epilogue in, cc_conv_fwd_desc's CC_ACT_SILU). */
static int silu_after(const clcnn_graph *g, const clcnn_plan *p, int conv, int cur,
                      const group_info *gi, int *sig, int *mul) {
    int only = -1;
    if (cc_value_readers(g, cur, &only) != 2) return 0;
    *sig = *mul = -1;
    for (int i = 0; i < g->nnodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] == cur) {
                if (g->nodes[i].op == CC_OP_SIGMOID) *sig = i;
                if (g->nodes[i].op == CC_OP_MUL) *mul = i;
            }
    if (*sig < 0 || *mul < 0 || gi->leader[*sig] != *sig || gi->leader[*mul] != *mul) return 0;
    const cc_gnode *m = &g->nodes[*mul];
    int s_out = g->nodes[*sig].out[0];
    if (m->n_in != 2 || sole_consumer(g, s_out) != *mul ||
        !((m->in[0] == cur && m->in[1] == s_out) || (m->in[0] == s_out && m->in[1] == cur)) ||
        !same_shape(&g->vals[m->out[0]], &g->vals[cur]))
        return 0;
    const cc_gnode *c = &g->nodes[conv];
    clcnn_conv_algo a = p->opts.conv_algo;
    if (a == CLCNN_CONV_AUTO) {
        const cc_gvalue *w = &g->vals[c->in[1]];
        if (w->ndim != 4 || p->vals[c->in[0]].ndim != 4) return 0;
        size_t ws[4];
        for (int i = 0; i < 4; i++)
            ws[i] = (size_t)w->dims[i];
        clcnn_conv2d_desc d = cc_step_conv_desc(&c->a);
        if (clcnn_conv2d_algo_choice(p->dev, CLCNN_CONV_PASS_FORWARD, &d, p->vals[c->in[0]].shape,
                                     ws, &a, NULL) != CLCNN_OK)
            return 0;
    }
    return a == CLCNN_CONV_IMPLICIT_GEMM || a == CLCNN_CONV_DEPTHWISE;
}

static void fuse_conv(const clcnn_graph *g, const clcnn_plan *p, int conv, group_info *gi) {
    const clcnn_plan_options *o = &p->opts;
    const cc_gnode *c = &g->nodes[conv];
    if (!all_init(g, c, 1, c->n_in > 2 && c->in[2] >= 0 ? 3 : 2)) return; /* weights per run */
    int cur = c->out[0];
    int last = conv;
    int nx;
    if (o->fold_batchnorm && (nx = sole_consumer(g, cur)) >= 0 &&
        g->nodes[nx].op == CC_OP_BATCHNORM && all_init(g, &g->nodes[nx], 1, 5) &&
        all_init(g, c, 1, c->n_in > 2 && c->in[2] >= 0 ? 3 : 2)) {
        int extra_used = 0;
        for (int k = 1; k < g->nodes[nx].n_out; k++) {
            int dummy;
            extra_used |= cc_value_readers(g, g->nodes[nx].out[k], &dummy) > 0;
        }
        if (!extra_used) {
            gi->leader[nx] = conv;
            last = nx;
            cur = g->nodes[nx].out[0];
        }
    }
    if (!o->fuse) {
        gi->anchor[conv] = last;
        return;
    }
    nx = sole_consumer(g, cur);
    if (nx >= 0 && gi->leader[nx] != nx) nx = -1; /* another convolution took it */
    int sig, mul;
    if (nx >= 0 && is_act(&g->nodes[nx])) {
        gi->leader[nx] = conv;
        last = nx;
    } else if (nx < 0 && silu_after(g, p, conv, cur, gi, &sig, &mul)) {
        gi->leader[sig] = gi->leader[mul] = conv;
        last = mul; /* it reads the Sigmoid: later in topological order */
    } else if (nx >= 0 && g->nodes[nx].op == CC_OP_ADD) {
        const cc_gnode *add = &g->nodes[nx];
        int z = add->in[0] == cur ? add->in[1] : add->in[0];
        if (z != cur && z >= 0 && g->vals[z].kind != CC_VAL_INIT &&
            same_shape(&g->vals[z], &g->vals[cur]) &&
            same_shape(&g->vals[add->out[0]], &g->vals[cur])) {
            gi->leader[nx] = conv;
            last = nx;
            cur = add->out[0];
            int ac = sole_consumer(g, cur);
            if (ac >= 0 && gi->leader[ac] == ac && is_act(&g->nodes[ac])) {
                gi->leader[ac] = conv;
                last = ac;
            }
        }
    }
    gi->anchor[conv] = last;
}

/* SiLU (EfficientNet's activation, exported as x * Sigmoid(x)): a Sigmoid whose output
 * only a Mul reads, the Mul's other operand the Sigmoid's own input with the same shape,
 * runs as one step (the Mul absorbed): one pass over x instead of three reads and two
 * writes. */
static void fuse_silu(const clcnn_graph *g, int sig, group_info *gi) {
    const cc_gnode *sn = &g->nodes[sig];
    int x = sn->in[0], mul = sole_consumer(g, sn->out[0]);
    if (mul < 0 || gi->leader[mul] != mul || g->nodes[mul].op != CC_OP_MUL) return;
    const cc_gnode *m = &g->nodes[mul];
    if (m->n_in != 2 || x < 0 || g->vals[x].kind == CC_VAL_INIT) return;
    int other = m->in[0] == sn->out[0] ? m->in[1] : m->in[0];
    if (other != x || !same_shape(&g->vals[m->out[0]], &g->vals[x])) return;
    gi->leader[mul] = sig;
    gi->anchor[sig] = mul;
}

/* A Conv with float initializer weights (and bias), symmetric pads and its input shape
 * known (4-D); *c its input channels. */
static int plain_conv(const clcnn_graph *g, const clcnn_plan *p, const cc_gnode *n, size_t *c) {
    if (n->op != CC_OP_CONV || n->n_in < 2 ||
        !all_init(g, n, 1, n->n_in > 2 && n->in[2] >= 0 ? 3 : 2))
        return 0;
    const cc_gvalue *w = &g->vals[n->in[1]];
    const int64_t *pads = n->a.pads;
    if (w->ndim != 4 || w->dtype != CLCNN_F32 || p->vals[n->in[0]].ndim != 4 ||
        pads[0] != pads[2] || pads[1] != pads[3])
        return 0;
    *c = p->vals[n->in[0]].shape[1];
    return 1;
}

/* A depthwise Conv (groups == channels, one filter each) whose group (batch norm, ReLU or
 * LeakyRelu; no residual Add, no SiLU) ends in a value only a 1x1 stride-1 unpadded Conv reads,
 * the two on depthwise and implicit_gemm if they ran apart: that Conv's group joins it as
 * one step (steps.c's prepare_conv_pair, the depthwise output computed inside the 1x1
 * layer's GEMM and never stored). On CPUs, and only for
 * depthwise outputs of at least 56x56: there the depthwise kernel's pass over memory is
 * what the fusion saves; on smaller planes, which stay in the cache, the fused kernel
 * was no faster than the two (and on MobileNet-V2's 28x28 stride-2 pair slower). */
#define DW_FUSE_MIN_PLANE (56 * 56)
static void fuse_depthwise_pair(const clcnn_graph *g, const clcnn_plan *p, int dw, group_info *gi) {
    const cc_gnode *d = &g->nodes[dw];
    size_t c, c2;
    if (p->dev->info.type != CLCNN_DEVICE_CPU || !plain_conv(g, p, d, &c) ||
        (size_t)d->a.group != c || g->vals[d->in[1]].dims[0] != (int64_t)c)
        return;
    const cc_pvalue *dy = &p->vals[d->out[0]];
    if (dy->ndim != 4 || dy->shape[2] * dy->shape[3] < DW_FUSE_MIN_PLANE) return;
    /* the depthwise group: batch norm and ReLU or LeakyRelu only (no residual Add, no SiLU:
     * the fused pack applies the run-time activations) */
    for (int k = 0; k < g->nnodes; k++)
        if (gi->leader[k] == dw && k != dw && g->nodes[k].op != CC_OP_BATCHNORM &&
            !is_act(&g->nodes[k]))
            return;
    int pw = sole_consumer(g, g->nodes[gi->anchor[dw]].out[0]);
    if (pw < 0 || gi->leader[pw] != pw) return;
    const cc_gnode *q = &g->nodes[pw];
    if (!plain_conv(g, p, q, &c2) || q->in[0] != g->nodes[gi->anchor[dw]].out[0]) return;
    const cc_gvalue *qw = &g->vals[q->in[1]];
    if (qw->dims[2] != 1 || qw->dims[3] != 1 || q->a.strides[0] != 1 || q->a.strides[1] != 1 ||
        q->a.pads[0] != 0 || q->a.pads[1] != 0)
        return;
    /* only where the two would run on depthwise and implicit_gemm (the rules, or the
     * tuning file): the fused kernel computes what those do, in their order */
    const cc_gvalue *dwv = &g->vals[d->in[1]];
    size_t dws[4], qws[4];
    for (int i = 0; i < 4; i++) {
        dws[i] = (size_t)dwv->dims[i];
        qws[i] = (size_t)qw->dims[i];
    }
    clcnn_conv2d_desc dd = cc_step_conv_desc(&d->a), qd = cc_step_conv_desc(&q->a);
    clcnn_conv_algo da, qa;
    if (clcnn_conv2d_algo_choice(p->dev, CLCNN_CONV_PASS_FORWARD, &dd, p->vals[d->in[0]].shape, dws,
                                 &da, NULL) != CLCNN_OK ||
        clcnn_conv2d_algo_choice(p->dev, CLCNN_CONV_PASS_FORWARD, &qd, p->vals[q->in[0]].shape, qws,
                                 &qa, NULL) != CLCNN_OK ||
        da != CLCNN_CONV_DEPTHWISE || qa != CLCNN_CONV_IMPLICIT_GEMM)
        return;
    for (int k = 0; k < g->nnodes; k++)
        if (gi->leader[k] == pw) gi->leader[k] = dw;
    gi->anchor[dw] = gi->anchor[pw];
}

static clcnn_status add_step(clcnn_plan *p, cc_step **out) {
    if (p->nsteps == p->capsteps) {
        int cap = p->capsteps ? 2 * p->capsteps : 64;
        cc_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        CC_RETURN_IF(!s, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
        p->steps = s;
        p->capsteps = cap;
    }
    *out = &p->steps[p->nsteps];
    memset(*out, 0, sizeof **out);
    return CLCNN_OK;
}

/* Build the steps in topological order of their anchors. */
static clcnn_status build_steps(clcnn_plan *p, const clcnn_graph *g) {
    int nn = g->nnodes;
    group_info gi = {calloc((size_t)nn + 1, sizeof(int)), calloc((size_t)nn + 1, sizeof(int)),
                     calloc((size_t)nn + 1, sizeof(int))};
    int *absorbed = calloc((size_t)nn + 1, sizeof(int));
    clcnn_status s = CLCNN_OK;
    if (!gi.leader || !gi.anchor || !gi.pos || !absorbed)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    for (int i = 0; s == CLCNN_OK && i < nn; i++) {
        gi.leader[i] = i;
        gi.anchor[i] = i;
        gi.pos[g->order[i]] = i;
    }
    for (int i = 0; s == CLCNN_OK && i < nn; i++) {
        int ni = g->order[i];
        if (gi.leader[ni] == ni && g->nodes[ni].op == CC_OP_CONV) fuse_conv(g, p, ni, &gi);
        if (gi.leader[ni] == ni && g->nodes[ni].op == CC_OP_SIGMOID && p->opts.fuse)
            fuse_silu(g, ni, &gi);
    }
    if (p->opts.fuse && p->opts.fuse_depthwise && p->opts.conv_algo == CLCNN_CONV_AUTO)
        for (int i = 0; s == CLCNN_OK && i < nn; i++) {
            int ni = g->order[i];
            if (gi.leader[ni] == ni && g->nodes[ni].op == CC_OP_CONV)
                fuse_depthwise_pair(g, p, ni, &gi);
        }
    /* A group runs at its anchor: every input of every member is ready there. */
    for (int i = 0; s == CLCNN_OK && i < nn; i++) {
        int ni = g->order[i];
        const cc_gnode *n = &g->nodes[ni];
        if (is_alias_op(n->op)) continue;
        int leader = -1;
        for (int k = 0; k < nn; k++)
            if (gi.leader[k] == k && gi.anchor[k] == ni) leader = k;
        if (leader < 0) continue; /* absorbed; its leader runs at its anchor */
        int na = 0;
        for (int k = 0; k < nn; k++) {
            int nk = g->order[k];
            if (gi.leader[nk] == leader) absorbed[na++] = nk;
        }
        /* one step per output that is read (Split); one step for every other node */
        int parts = n->op == CC_OP_SPLIT ? n->n_out : 1;
        for (int part = 0; s == CLCNN_OK && part < parts; part++) {
            int dummy;
            if (parts > 1 && cc_value_readers(g, n->out[part], &dummy) == 0) continue;
            cc_step *st = NULL;
            s = add_step(p, &st);
            if (s != CLCNN_OK) break;
            st->node = leader;
            st->op = g->nodes[leader].op;
            st->part = part;
            s = cc_step_prepare(p, g, st, absorbed, na);
            if (s != CLCNN_OK) {
                cc_step_release(st);
                break;
            }
            p->nsteps++;
        }
        if (s != CLCNN_OK) break;
        if (na > 1) {
            for (int k = 1; k < na; k++) {
                cc_op op = g->nodes[absorbed[k]].op;
                p->mem.fused_batchnorm += op == CC_OP_BATCHNORM;
                p->mem.fused_activation += is_act(&g->nodes[absorbed[k]]);
                p->mem.fused_add += op == CC_OP_ADD;
                p->mem.fused_depthwise += op == CC_OP_CONV;
            }
        }
    }
    free(gi.leader);
    free(gi.anchor);
    free(gi.pos);
    free(absorbed);
    return s;
}

/* ---- values and memory --------------------------------------------------------------- */

static clcnn_status value_shapes(clcnn_plan *p, const clcnn_graph *g) {
    for (int v = 0; v < g->nvals; v++) {
        const cc_gvalue *gv = &g->vals[v];
        cc_pvalue *pv = &p->vals[v];
        pv->alias_of = -1;
        pv->def_step = -1;
        pv->last_step = -1;
        pv->input_index = -1;
        if (gv->kind == CC_VAL_INIT) continue;
        if (gv->ndim > CLCNN_MAX_DIMS && (gv->ndim > CC_GMAX || !wide_ok(g, v))) {
            char b[96];
            return cc_fail(CLCNN_ERR_UNSUPPORTED,
                           "clcnn_plan_create: value '%s' is %s; plans hold at most %d "
                           "dimensions",
                           gv->name, cc_graph_shape_str(gv->dims, gv->ndim, b, sizeof b),
                           CLCNN_MAX_DIMS);
        }
        pv->ndim = gv->ndim;
        CC_TRY(cc_value_dims(gv, p->batch, "clcnn_plan_create", pv->shape, &pv->numel));
        if (gv->kind == CC_VAL_INPUT) pv->kind = CC_PV_INPUT;
    }
    int k = 0;
    for (int v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == CC_VAL_INPUT) {
            p->vals[v].input_index = k;
            p->inputs[k++] = v;
        }
    /* aliases: views of their source's storage */
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[g->order[i]];
        if (!is_alias_op(n->op)) continue;
        int src = n->in[0];
        CC_RETURN_IF(g->vals[src].kind == CC_VAL_INIT, CLCNN_ERR_UNSUPPORTED,
                     "clcnn_plan_create: node '%s' (%s) views the initializer '%s'; constants "
                     "are folded on import",
                     n->name, cc_op_defs[n->op].name, g->vals[src].name);
        int root = p->vals[src].kind == CC_PV_ALIAS ? p->vals[src].alias_of : src;
        cc_pvalue *pv = &p->vals[n->out[0]];
        pv->kind = CC_PV_ALIAS;
        pv->alias_of = root;
        if (n->op == CC_OP_DROPOUT && n->n_out > 1) {
            int dummy;
            CC_RETURN_IF(cc_value_readers(g, n->out[1], &dummy) > 0, CLCNN_ERR_UNSUPPORTED,
                         "clcnn_plan_create: the mask output of Dropout '%s' is read; plans run "
                         "inference only",
                         n->name);
        }
    }
    return CLCNN_OK;
}

/* Lifetimes in step indices; reads through an alias extend its root's lifetime. */
static void lifetimes(clcnn_plan *p) {
    for (int si = 0; si < p->nsteps; si++) {
        const cc_step *s = &p->steps[si];
        p->vals[s->out].kind = CC_PV_ACT;
        p->vals[s->out].def_step = si;
        for (int j = 0; j < s->n_in; j++) {
            int v = s->in[j];
            int root = p->vals[v].kind == CC_PV_ALIAS ? p->vals[v].alias_of : v;
            if (p->vals[root].last_step < si) p->vals[root].last_step = si;
        }
    }
    for (int i = 0; i < p->noutputs; i++) {
        int v = p->outputs[i];
        int root = p->vals[v].kind == CC_PV_ALIAS ? p->vals[v].alias_of : v;
        p->vals[root].last_step = p->nsteps; /* outputs live to the end of the run */
    }
}

typedef struct block {
    size_t off, len;
    int value;
} block;

static size_t round_up(size_t n) {
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

/* The value whose bytes step si may write its output over: its in[0], when the step
 * allows it (element-wise, reading each element before writing it), in[0] lives in the
 * arena with the output's size and no later step or graph output reads it. -1 if none. */
static int inplace_source(const clcnn_plan *p, int si) {
    const cc_step *s = &p->steps[si];
    if (!s->inplace || s->n_in < 1) return -1;
    int v = s->in[0];
    int root = p->vals[v].kind == CC_PV_ALIAS ? p->vals[v].alias_of : v;
    const cc_pvalue *r = &p->vals[root];
    return r->kind == CC_PV_ACT && r->last_step == si && r->numel == p->vals[s->out].numel ? root
                                                                                           : -1;
}

/* First-fit placement in step order: a value takes the lowest offset that overlaps no
 * value still live; with reuse off every value gets fresh bytes. */
static clcnn_status place_values(clcnn_plan *p) {
    block *live = calloc((size_t)p->nvals + 1, sizeof *live);
    CC_RETURN_IF(!live, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    int nlive = 0;
    size_t top = 0, sum = 0;
    for (int si = 0; si < p->nsteps; si++) {
        int v = p->steps[si].out;
        cc_pvalue *pv = &p->vals[v];
        size_t len = round_up(pv->numel);
        sum += pv->numel * sizeof(float);
        size_t off = 0;
        int over = p->opts.reuse_buffers ? inplace_source(p, si) : -1;
        if (over >= 0) {
            /* the block of the dying operand now holds the output */
            off = p->vals[over].offset;
            for (int k = 0; k < nlive; k++)
                if (live[k].value == over) live[k].value = v;
        } else if (p->opts.reuse_buffers) {
            /* live is sorted by offset: take the first gap that fits */
            int at = 0;
            for (; at < nlive; at++) {
                if (live[at].off >= off + len) break;
                if (live[at].off + live[at].len > off) off = live[at].off + live[at].len;
            }
            memmove(&live[at + 1], &live[at], (size_t)(nlive - at) * sizeof *live);
            live[at] = (block){off, len, v};
            nlive++;
        } else {
            off = top;
        }
        pv->offset = off;
        if (off + len > top) top = off + len;
        /* values whose last reader is this step die after it */
        for (int k = 0; k < nlive;) {
            if (p->vals[live[k].value].last_step <= si) {
                memmove(&live[k], &live[k + 1], (size_t)(nlive - k - 1) * sizeof *live);
                nlive--;
            } else {
                k++;
            }
        }
    }
    free(live);
    p->mem.activation_bytes = top * sizeof(float);
    p->mem.activation_sum = sum;
    if (top == 0) return CLCNN_OK;
    CC_TRY(clcnn_tensor_create(p->dev, CLCNN_F32, 1, &top, &p->arena));
    for (int v = 0; v < p->nvals; v++) {
        cc_pvalue *pv = &p->vals[v];
        int root = pv->kind == CC_PV_ALIAS ? pv->alias_of : v;
        if (pv->kind != CC_PV_ACT && !(pv->kind == CC_PV_ALIAS && p->vals[root].kind == CC_PV_ACT))
            continue;
        size_t shape[CLCNN_MAX_DIMS];
        int nd = device_shape(pv, shape);
        pv->t = cc_tensor_view_at(p->arena, nd, shape, p->vals[root].offset);
        CC_RETURN_IF(!pv->t, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    }
    return CLCNN_OK;
}

clcnn_status cc_plan_check_args(const clcnn_device *dev, clcnn_graph *g, int batch,
                                const char *op) {
    CC_RETURN_IF(!dev || !g, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", op);
    CC_RETURN_IF(batch < 1 || batch > (1 << 24), CLCNN_ERR_INVALID_ARG,
                 "%s: batch %d must be 1..%d", op, batch, 1 << 24);
    return clcnn_graph_check(g);
}

clcnn_status clcnn_plan_create(clcnn_device *dev, clcnn_graph *g, int batch,
                               const clcnn_plan_options *opts, clcnn_plan **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_plan_create: out is NULL");
    *out = NULL;
    CC_TRY(cc_plan_check_args(dev, g, batch, "clcnn_plan_create"));
    clcnn_plan *p = calloc(1, sizeof *p);
    CC_RETURN_IF(!p, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    p->dev = dev;
    p->batch = batch;
    p->opts = opts ? *opts : clcnn_plan_options_default();
    p->nvals = g->nvals;
    p->ninputs = clcnn_graph_num_inputs(g);
    p->noutputs = g->noutputs;
    p->vals = calloc((size_t)g->nvals + 1, sizeof *p->vals);
    p->inputs = calloc((size_t)p->ninputs + 1, sizeof *p->inputs);
    p->outputs = calloc((size_t)p->noutputs + 1, sizeof *p->outputs);
    clcnn_status s = CLCNN_OK;
    if (!p->vals || !p->inputs || !p->outputs)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    for (int i = 0; s == CLCNN_OK && i < p->noutputs; i++) {
        p->outputs[i] = g->outputs[i];
        if (g->vals[g->outputs[i]].kind != CC_VAL_NODE)
            s = cc_fail(CLCNN_ERR_UNSUPPORTED,
                        "clcnn_plan_create: output '%s' is a graph input or initializer",
                        g->vals[g->outputs[i]].name);
    }
    if (s == CLCNN_OK) s = value_shapes(p, g);
    for (int v = 0; s == CLCNN_OK && v < g->nvals; v++)
        if (g->vals[v].kind == CC_VAL_NODE && p->vals[v].kind != CC_PV_ALIAS)
            p->mem.graph_sum += p->vals[v].numel * sizeof(float);
    if (s == CLCNN_OK) s = build_steps(p, g);
    if (s == CLCNN_OK) {
        lifetimes(p);
        s = place_values(p);
    }
    if (s != CLCNN_OK) {
        clcnn_plan_free(p);
        return s;
    }
    p->mem.steps = p->nsteps;
    for (int i = 0; i < p->nsteps; i++) {
        const cc_step *st = &p->steps[i];
        for (int k = 0; k < 4; k++)
            if (st->param[k])
                p->mem.param_bytes += clcnn_tensor_numel(st->param[k]) * sizeof(float);
        if (st->scratch) p->mem.scratch_bytes += clcnn_tensor_numel(st->scratch) * sizeof(float);
    }
    *out = p;
    return CLCNN_OK;
}

/* See exec_internal.h. */
clcnn_status cc_plan_find(clcnn_device *dev, int request, cc_conv_list *list, clcnn_conv_pass pass,
                          const clcnn_conv2d_desc *d, const size_t x[4], const size_t w[4],
                          const char *node, int *measured) {
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 16;
        clcnn_plan_conv *e = realloc(list->e, (size_t)cap * sizeof *e);
        CC_RETURN_IF(!e, CLCNN_ERR_OUT_OF_MEMORY, "plan: out of host memory (node '%s')", node);
        list->e = e;
        list->cap = cap;
    }
    clcnn_plan_conv *c = &list->e[list->n++];
    memset(c, 0, sizeof *c);
    c->pass = pass;
    c->desc = *d;
    memcpy(c->x, x, sizeof c->x);
    memcpy(c->w, w, sizeof c->w);
    snprintf(c->node, sizeof c->node, "%s", node);
    if (!clcnn_conv2d_find_enabled(request)) return CLCNN_OK;
    int m = 0;
    clcnn_status s = clcnn_conv2d_find(dev, pass, d, x, w, NULL, NULL, &m);
    if (s != CLCNN_OK) return cc_fail_append(s, " (Find for node '%s')", node);
    *measured += m;
    return CLCNN_OK;
}

int clcnn_plan_conv_measured(const clcnn_plan *p) {
    return p ? p->conv_measured : 0;
}

int clcnn_plan_num_convs(const clcnn_plan *p) {
    return p ? p->convs.n : 0;
}

const clcnn_plan_conv *clcnn_plan_conv_at(const clcnn_plan *p, int i) {
    return p && i >= 0 && i < p->convs.n ? &p->convs.e[i] : NULL;
}

void clcnn_plan_free(clcnn_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nsteps; i++)
        cc_step_release(&p->steps[i]);
    for (int v = 0; v < p->nvals; v++)
        if (p->vals[v].kind != CC_PV_INPUT) clcnn_tensor_free(p->vals[v].t);
    clcnn_tensor_free(p->arena);
    free(p->steps);
    free(p->vals);
    free(p->inputs);
    free(p->outputs);
    free(p->convs.e);
    free(p);
}

/* Point inputs (and views of inputs) at the caller's tensors for this run. */
static clcnn_status bind_inputs(clcnn_plan *p, const clcnn_tensor *const *inputs, int n) {
    CC_RETURN_IF(n != p->ninputs || (n && !inputs), CLCNN_ERR_INVALID_ARG,
                 "clcnn_plan_run: %d inputs given, the graph has %d", n, p->ninputs);
    for (int i = 0; i < n; i++) {
        const cc_pvalue *pv = &p->vals[p->inputs[i]];
        const clcnn_tensor *t = inputs[i];
        CC_TRY(cc_check_tensor(p->dev, t, CLCNN_F32, "clcnn_plan_run", "input"));
        /* a 0-D input (a scalar) takes a tensor of one element, [1] */
        int ok = t->ndim == pv->ndim || (pv->ndim == 0 && t->ndim == 1 && t->shape[0] == 1);
        for (int d = 0; ok && d < pv->ndim; d++)
            ok = t->shape[d] == pv->shape[d];
        if (!ok) {
            char a[64], b[96];
            int64_t dims[CLCNN_MAX_DIMS];
            for (int d = 0; d < pv->ndim; d++)
                dims[d] = (int64_t)pv->shape[d];
            return cc_fail(CLCNN_ERR_SHAPE, "clcnn_plan_run: input %d is %s, the plan expects %s",
                           i, clcnn_tensor_shape_str(t, a, sizeof a),
                           cc_graph_shape_str(dims, pv->ndim, b, sizeof b));
        }
        p->vals[p->inputs[i]].t = (clcnn_tensor *)t;
    }
    for (int v = 0; v < p->nvals; v++) {
        cc_pvalue *pv = &p->vals[v];
        if (pv->kind != CC_PV_ALIAS || p->vals[pv->alias_of].kind != CC_PV_INPUT) continue;
        clcnn_tensor_free(pv->t);
        pv->t = NULL;
        size_t shape[CLCNN_MAX_DIMS];
        int nd = device_shape(pv, shape);
        CC_TRY(clcnn_tensor_view(p->vals[pv->alias_of].t, nd, shape, &pv->t));
    }
    return CLCNN_OK;
}

clcnn_status clcnn_plan_run(clcnn_plan *p, const clcnn_tensor *const *inputs, int n_inputs) {
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_plan_run: plan is NULL");
    CC_TRY(bind_inputs(p, inputs, n_inputs));
    clcnn_device *dev = p->dev;
    for (int i = 0; i < p->nsteps; i++) {
        char label[192];
        if (dev->trace_steps) { /* CLCNN_PROFILE=steps: time per step, under its description */
            snprintf(label, sizeof label, "step %d %s", i, p->steps[i].desc);
            dev->trace_label = label;
        }
        clcnn_status st = cc_step_run(p, &p->steps[i]);
        dev->trace_label = NULL;
        CC_TRY(st);
    }
    return CLCNN_OK;
}

const clcnn_tensor *clcnn_plan_output(const clcnn_plan *p, int i) {
    return p && i >= 0 && i < p->noutputs ? p->vals[p->outputs[i]].t : NULL;
}

void clcnn_plan_get_memory(const clcnn_plan *p, clcnn_plan_memory *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (p) *out = p->mem;
}

int clcnn_plan_num_steps(const clcnn_plan *p) {
    return p ? p->nsteps : 0;
}

const char *clcnn_plan_step_desc(const clcnn_plan *p, int i) {
    return p && i >= 0 && i < p->nsteps ? p->steps[i].desc : NULL;
}
