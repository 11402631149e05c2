/* Plans: a checked graph bound to one device and batch size. Owns the decisions made
 * once: which nodes fuse into one step (lib/exec/plan_fuse.c), where each activation
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
    group_info gi = {calloc((size_t)nn + 1, sizeof(int)), calloc((size_t)nn + 1, sizeof(int))};
    int *absorbed = calloc((size_t)nn + 1, sizeof(int));
    clcnn_status s = CLCNN_OK;
    if (!gi.leader || !gi.anchor || !absorbed)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    else
        cc_plan_fuse(p, g, &gi);
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
                p->mem.fused_activation += cc_plan_is_act(&g->nodes[absorbed[k]]);
                p->mem.fused_add += op == CC_OP_ADD;
                p->mem.fused_depthwise += op == CC_OP_CONV;
            }
        }
    }
    free(gi.leader);
    free(gi.anchor);
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
