/* Which nodes of a graph fuse into one plan step (lib/exec/plan.c's build_steps runs the
 * steps): batch norm folded into the convolution before it; a ReLU or LeakyRelu, SiLU
 * (Sigmoid + Mul) or a residual Add (+ activation) into its epilogue; SiLU as one step of
 * its own where no convolution takes it; a depthwise convolution into the 1x1 convolution
 * that reads it. The decisions depend only on the graph, the plan's options, the value
 * shapes and the algorithm each convolution would run (the rules or the tuning file), so
 * a plan's steps are known before any of them is prepared. */
#include "exec/exec_internal.h"

#include <string.h>

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

int cc_plan_is_act(const cc_gnode *n) {
    return n->op == CC_OP_RELU || n->op == CC_OP_LEAKYRELU;
}

/* The algorithm the Conv n would run on: the plan's forced one, else AUTO's choice (rules
 * or tuning file) for its shapes; CLCNN_CONV_AUTO when that cannot be told (weights or
 * input not 4-D). */
static clcnn_conv_algo conv_algo(const clcnn_graph *g, const clcnn_plan *p, const cc_gnode *n) {
    clcnn_conv_algo a = p->opts.conv_algo;
    if (a != CLCNN_CONV_AUTO) return a;
    const cc_gvalue *w = &g->vals[n->in[1]];
    if (w->ndim != 4 || p->vals[n->in[0]].ndim != 4) return CLCNN_CONV_AUTO;
    size_t ws[4];
    for (int i = 0; i < 4; i++)
        ws[i] = (size_t)w->dims[i];
    clcnn_conv2d_desc d = cc_step_conv_desc(&n->a);
    if (clcnn_conv2d_algo_choice(p->dev, CLCNN_CONV_PASS_FORWARD, &d, p->vals[n->in[0]].shape, ws,
                                 &a, NULL) != CLCNN_OK)
        return CLCNN_CONV_AUTO;
    return a;
}

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
    clcnn_conv_algo a = conv_algo(g, p, &g->nodes[conv]);
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
        g->nodes[nx].op == CC_OP_BATCHNORM && all_init(g, &g->nodes[nx], 1, 5)) {
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
    if (nx >= 0 && cc_plan_is_act(&g->nodes[nx])) {
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
            if (ac >= 0 && gi->leader[ac] == ac && cc_plan_is_act(&g->nodes[ac])) {
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
 * layer's GEMM and never stored). On CPUs, and only for depthwise outputs of at least
 * 1568 positions over the batch (a 56x56 plane at batch 1, 28x28 at 2, 14x14 at 8): the
 * fused kernel's work-items are output tiles (channels split only when there are few),
 * the depthwise kernel's are channels too: MobileNet-V2 was faster fused from 14x14
 * planes at batch 8 and slower with every pair fused at batch 1 (the numbers are in the
 * commit that set this). */
#define DW_FUSE_MIN_POSITIONS (8 * 14 * 14)
static void fuse_depthwise_pair(const clcnn_graph *g, const clcnn_plan *p, int dw, group_info *gi) {
    const cc_gnode *d = &g->nodes[dw];
    size_t c, c2;
    if (p->dev->info.type != CLCNN_DEVICE_CPU || !plain_conv(g, p, d, &c) ||
        (size_t)d->a.group != c || g->vals[d->in[1]].dims[0] != (int64_t)c)
        return;
    const cc_pvalue *dy = &p->vals[d->out[0]];
    if (dy->ndim != 4 || dy->shape[0] * dy->shape[2] * dy->shape[3] < DW_FUSE_MIN_POSITIONS) return;
    /* the depthwise group: batch norm and ReLU or LeakyRelu only (no residual Add, no SiLU:
     * the fused pack applies the run-time activations) */
    for (int k = 0; k < g->nnodes; k++)
        if (gi->leader[k] == dw && k != dw && g->nodes[k].op != CC_OP_BATCHNORM &&
            !cc_plan_is_act(&g->nodes[k]))
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
    if (conv_algo(g, p, d) != CLCNN_CONV_DEPTHWISE ||
        conv_algo(g, p, q) != CLCNN_CONV_IMPLICIT_GEMM)
        return;
    for (int k = 0; k < g->nnodes; k++)
        if (gi->leader[k] == pw) gi->leader[k] = dw;
    gi->anchor[dw] = gi->anchor[pw];
}

/* See exec_internal.h. */
void cc_plan_fuse(const clcnn_plan *p, const clcnn_graph *g, group_info *gi) {
    int nn = g->nnodes;
    for (int i = 0; i < nn; i++) {
        gi->leader[i] = i;
        gi->anchor[i] = i;
    }
    for (int i = 0; i < nn; i++) {
        int ni = g->order[i];
        if (gi->leader[ni] == ni && g->nodes[ni].op == CC_OP_CONV) fuse_conv(g, p, ni, gi);
        if (gi->leader[ni] == ni && g->nodes[ni].op == CC_OP_SIGMOID && p->opts.fuse)
            fuse_silu(g, ni, gi);
    }
    if (p->opts.fuse && p->opts.fuse_depthwise && p->opts.conv_algo == CLCNN_CONV_AUTO)
        for (int i = 0; i < nn; i++) {
            int ni = g->order[i];
            if (gi->leader[ni] == ni && g->nodes[ni].op == CC_OP_CONV)
                fuse_depthwise_pair(g, p, ni, gi);
        }
}
