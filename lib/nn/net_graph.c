/* The C builder's graph: every clcnn_net_add_* call also emits the layer as graph nodes
 * (lib/graph) into the net's graph, so a net built in C, the model zoo and an imported
 * model are one network type. Node and value names are the layer's ("layers.<i>"), and
 * initializers carry the parameter names of checkpoints ("layers.<i>.weight").
 * clcnn_net_graph hands out a copy with the parameters' current values.
 *
 * Residual blocks: begin pushes the current value on a stack, end emits the shortcut
 * (identity or projection Conv [+ BatchNormalization]) and an Add; blocks nest. */
#include "graph/graph_internal.h"
#include "nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* An initializer holding the parameter's value before clcnn_net_init. */
static clcnn_status add_init(clcnn_graph *g, const cc_pspec *p) {
    int64_t dims[4];
    size_t numel = 1;
    for (int d = 0; d < p->ndim; d++) {
        dims[d] = (int64_t)p->shape[d];
        numel *= p->shape[d];
    }
    float v = cc_param_default(p->role), *data = NULL;
    if (v != 0.0f) {
        data = malloc(numel * sizeof *data);
        CC_RETURN_IF(!data, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        for (size_t i = 0; i < numel; i++)
            data[i] = v;
    }
    clcnn_status s = clcnn_graph_add_initializer(g, p->name, CLCNN_F32, p->ndim, dims, data);
    free(data);
    return s;
}

static clcnn_status add_params(clcnn_graph *g, const cc_layer *l, int from, int to) {
    for (int i = from; i < to; i++)
        CC_TRY(add_init(g, &l->params[i]));
    return CLCNN_OK;
}

#define ATTR_INTS(n_, v_, c_) ((clcnn_attr){(n_), CLCNN_ATTR_INTS, 0, 0.0f, (v_), NULL, (c_), NULL})
#define ATTR_INT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_INT, (v_), 0.0f, NULL, NULL, 0, NULL})
#define ATTR_FLOAT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_FLOAT, 0, (v_), NULL, NULL, 0, NULL})

static clcnn_status emit(clcnn_graph *g, const char *op, const char *name, int n_in,
                         const char *const *in, const char *out, int na, const clcnn_attr *a) {
    return clcnn_graph_add_node(g, op, name, n_in, in, 1, &out, na, a);
}

static clcnn_status emit_conv(clcnn_graph *g, const char *name, const char *x, const char *w,
                              const char *b, const clcnn_conv2d_desc *d, const char *out) {
    int64_t strides[2] = {d->stride_h, d->stride_w};
    int64_t pads[4] = {d->pad_h, d->pad_w, d->pad_h, d->pad_w};
    int64_t dil[2] = {d->dilation_h, d->dilation_w};
    clcnn_attr a[4] = {ATTR_INTS("strides", strides, 2), ATTR_INTS("pads", pads, 4),
                       ATTR_INTS("dilations", dil, 2), ATTR_INT("group", d->groups)};
    const char *in[3] = {x, w, b};
    return emit(g, "Conv", name, b ? 3 : 2, in, out, 4, a);
}

/* BatchNormalization reading x with the four parameters params[0..4) (gamma, beta, mean,
 * var); PyTorch's momentum m is ONNX's 1 - m. */
static clcnn_status emit_bn(clcnn_graph *g, const char *name, const char *x, const cc_pspec *params,
                            float momentum, float eps, const char *out) {
    clcnn_attr a[2] = {ATTR_FLOAT("epsilon", eps), ATTR_FLOAT("momentum", 1.0f - momentum)};
    const char *in[5] = {x, params[0].name, params[1].name, params[2].name, params[3].name};
    return emit(g, "BatchNormalization", name, 5, in, out, 2, a);
}

static clcnn_status emit_pool(clcnn_graph *g, const char *name, const char *x,
                              const clcnn_pool2d_desc *d, const char *out) {
    if (d->global)
        return emit(g, d->mode == CLCNN_POOL_MAX ? "GlobalMaxPool" : "GlobalAveragePool", name, 1,
                    &x, out, 0, NULL);
    int64_t k[2] = {d->kernel_h, d->kernel_w}, st[2] = {d->stride_h, d->stride_w};
    int64_t pads[4] = {d->pad_h, d->pad_w, d->pad_h, d->pad_w};
    clcnn_attr a[4] = {ATTR_INTS("kernel_shape", k, 2), ATTR_INTS("strides", st, 2),
                       ATTR_INTS("pads", pads, 4),
                       ATTR_INT("count_include_pad", d->mode == CLCNN_POOL_AVG)};
    return emit(g, d->mode == CLCNN_POOL_MAX ? "MaxPool" : "AveragePool", name, 1, &x, out,
                d->mode == CLCNN_POOL_MAX ? 3 : 4, a);
}

/* The nodes of layer l reading the current value; out receives the value l writes. */
static clcnn_status emit_layer(clcnn_net *net, const cc_layer *l, const char *x, char *out,
                               size_t cap) {
    clcnn_graph *g = net->graph;
    char name[48], tmp[64], tmp2[64];
    snprintf(name, sizeof name, "layers.%d", l->index);
    snprintf(out, cap, "%s", name);
    const char *kind = l->kind;
    if (!strcmp(kind, "conv2d")) {
        CC_TRY(add_params(g, l, 0, l->nparams));
        return emit_conv(g, name, x, l->params[0].name, l->has_bias ? l->params[1].name : NULL,
                         &l->conv, out);
    }
    if (!strcmp(kind, "relu")) return emit(g, "Relu", name, 1, &x, out, 0, NULL);
    if (!strcmp(kind, "identity")) return emit(g, "Identity", name, 1, &x, out, 0, NULL);
    if (!strcmp(kind, "leaky_relu")) {
        clcnn_attr a = ATTR_FLOAT("alpha", l->alpha);
        return emit(g, "LeakyRelu", name, 1, &x, out, 1, &a);
    }
    if (!strcmp(kind, "maxpool") || !strcmp(kind, "avgpool"))
        return emit_pool(g, name, x, &l->pool, out);
    if (!strcmp(kind, "batchnorm")) {
        CC_TRY(add_params(g, l, 0, 4));
        return emit_bn(g, name, x, l->params, l->momentum, l->eps, out);
    }
    if (!strcmp(kind, "dropout")) {
        clcnn_attr a = ATTR_FLOAT("ratio", l->p);
        return emit(g, "Dropout", name, 1, &x, out, 1, &a);
    }
    if (!strcmp(kind, "flatten")) return emit(g, "Flatten", name, 1, &x, out, 0, NULL);
    if (!strcmp(kind, "linear")) {
        CC_TRY(add_params(g, l, 0, l->nparams));
        const char *src = x;
        if (l->in_rank != 2) { /* the layer reads a 4-D input as rows */
            snprintf(tmp, sizeof tmp, "%s.flatten", name);
            CC_TRY(emit(g, "Flatten", tmp, 1, &x, tmp, 0, NULL));
            src = tmp;
        }
        clcnn_attr a = ATTR_INT("transB", 1);
        const char *in[3] = {src, l->params[0].name, l->has_bias ? l->params[1].name : NULL};
        return emit(g, "Gemm", name, l->has_bias ? 3 : 2, in, out, 1, &a);
    }
    if (!strcmp(kind, "residual")) {
        CC_RETURN_IF(net->res_depth < 1, CLCNN_ERR_INVALID_ARG,
                     "residual without a block (internal)");
        const char *x0 = net->res_stack[net->res_depth - 1];
        const char *sc = x0;
        if (l->res_proj) {
            CC_TRY(add_params(g, l, 0, l->nparams));
            snprintf(tmp, sizeof tmp, "%s.shortcut", name);
            CC_TRY(emit_conv(g, tmp, x0, l->params[0].name, l->has_bias ? l->params[1].name : NULL,
                             &l->conv, tmp));
            sc = tmp;
            if (l->res_bn) {
                snprintf(tmp2, sizeof tmp2, "%s.shortcut_bn", name);
                CC_TRY(emit_bn(g, tmp2, tmp, &l->params[l->has_bias ? 2 : 1], l->momentum, l->eps,
                               tmp2));
                sc = tmp2;
            }
        }
        const char *in[2] = {x, sc};
        return emit(g, "Add", name, 2, in, out, 0, NULL);
    }
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "layer %d: kind '%s' has no graph form (internal)",
                   l->index, kind);
}

clcnn_status cc_net_graph_begin(clcnn_net *net) {
    CC_TRY(clcnn_graph_create(&net->graph));
    int64_t dims[4] = {CLCNN_GRAPH_BATCH, net->c, net->h, net->w};
    clcnn_status s = clcnn_graph_add_input(net->graph, "input", CLCNN_F32, 4, dims);
    if (s == CLCNN_OK) s = clcnn_graph_add_output(net->graph, "input");
    snprintf(net->cur, sizeof net->cur, "input");
    return s;
}

clcnn_status cc_net_graph_layer(clcnn_net *net, const cc_layer *l) {
    clcnn_graph *g = net->graph;
    int nn = g->nnodes, nv = g->nvals;
    char out[sizeof net->cur];
    clcnn_status s = emit_layer(net, l, net->cur, out, sizeof out);
    if (s == CLCNN_OK) {
        cc_graph_clear_outputs(g);
        s = clcnn_graph_add_output(g, out);
    }
    if (s != CLCNN_OK) {
        cc_graph_truncate(g, nn, nv, 0);
        clcnn_graph_add_output(g, net->cur);
        return s;
    }
    snprintf(net->cur, sizeof net->cur, "%s", out);
    return CLCNN_OK;
}

clcnn_status clcnn_net_graph(const clcnn_net *net, clcnn_graph **out) {
    CC_RETURN_IF(!net || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_graph: NULL argument");
    *out = NULL;
    CC_RETURN_IF(!net->from_graph && net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_graph: the net has no layers");
    CC_RETURN_IF(net->res_depth > 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_graph: %d residual block(s) still open", net->res_depth);
    clcnn_graph *g = NULL;
    CC_TRY(cc_graph_clone(net->graph, &g));
    clcnn_status s = net->tp ? clcnn_train_plan_to_graph(net->tp, g) : CLCNN_OK;
    if (s == CLCNN_OK) s = clcnn_graph_check(g);
    if (s != CLCNN_OK) {
        clcnn_graph_free(g);
        return s;
    }
    *out = g;
    return CLCNN_OK;
}

/* ---- parameters' roles, from the nodes that read them ------------------------------------ */

void cc_net_param_role(const clcnn_graph *g, const char *name, cc_param_role *role, size_t *fan_in,
                       size_t *fan_out) {
    *role = CC_PARAM_OTHER;
    *fan_in = *fan_out = 0;
    int v = cc_graph_find(g, name);
    if (v < 0) return;
    const int64_t *d = g->vals[v].dims;
    int nd = g->vals[v].ndim;
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[g->order[i]];
        int slot = -1;
        for (int j = 0; j < n->n_in && slot < 0; j++)
            if (n->in[j] == v) slot = j;
        if (slot < 0) continue;
        int64_t groups = n->a.group > 0 ? n->a.group : 1;
        switch (n->op) {
        case CC_OP_CONV:
        case CC_OP_CONVTRANSPOSE:
            if (slot == 2) *role = CC_PARAM_BIAS;
            if (slot != 1 || nd < 2) break;
            *role = CC_PARAM_WEIGHT;
            /* Conv (k, c/g, r, s); ConvTranspose (c, k/g, r, s) */
            size_t rs = (size_t)cc_graph_numel(d + 2, nd - 2, 1);
            size_t a = (size_t)d[1] * rs, b = (size_t)d[0] / (size_t)groups * rs;
            *fan_in = n->op == CC_OP_CONV ? a : b;
            *fan_out = n->op == CC_OP_CONV ? b : a;
            break;
        case CC_OP_GEMM:
        case CC_OP_MATMUL:
            if (slot == 2) *role = CC_PARAM_BIAS;
            if (slot != 1 || nd != 2) break;
            *role = CC_PARAM_WEIGHT;
            int tb = n->op == CC_OP_GEMM && n->a.trans_b;
            *fan_in = (size_t)d[tb ? 1 : 0];
            *fan_out = (size_t)d[tb ? 0 : 1];
            break;
        case CC_OP_BATCHNORM: {
            static const cc_param_role bn[5] = {CC_PARAM_OTHER, CC_PARAM_GAMMA, CC_PARAM_BETA,
                                                CC_PARAM_RMEAN, CC_PARAM_RVAR};
            *role = bn[slot < 5 ? slot : 0];
            break;
        }
        default:
            break;
        }
        if (*role != CC_PARAM_OTHER) return;
    }
}

/* ---- a new classifier ------------------------------------------------------------------- */

/* Give initializer v the shape dims[0..nd) (zeros). */
static clcnn_status reshape_init(clcnn_graph *g, int v, int nd, const int64_t *dims) {
    cc_gvalue *gv = &g->vals[v];
    size_t numel = cc_graph_numel(dims, nd, 1);
    float *data = calloc(numel ? numel : 1, sizeof *data);
    CC_RETURN_IF(!data, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    free(gv->data);
    gv->data = data;
    gv->numel = numel;
    gv->ndim = nd;
    memcpy(gv->dims, dims, (size_t)nd * sizeof *dims);
    return CLCNN_OK;
}

static int is_float_init(const clcnn_graph *g, int v) {
    return v >= 0 && g->vals[v].kind == CC_VAL_INIT && g->vals[v].dtype == CLCNN_F32;
}

clcnn_status clcnn_net_replace_classifier(clcnn_net *net, int classes, clcnn_init init,
                                          uint64_t seed) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_replace_classifier: net is NULL");
    CC_RETURN_IF(classes < 1, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_replace_classifier: %d classes, need >= 1", classes);
    CC_TRY(cc_net_unbind(net));
    clcnn_graph *g = net->graph;
    CC_TRY(clcnn_graph_check(g));
    int out = g->outputs[0], node = g->vals[out].producer;
    const cc_gnode *n = node >= 0 ? &g->nodes[node] : NULL;
    int bias = -1; /* MatMul's bias: the other operand of the Add after it */
    if (n && n->op == CC_OP_ADD && n->n_in == 2) {
        int a = n->in[0], b = n->in[1];
        int mm = is_float_init(g, b) ? a : b;
        bias = mm == a ? b : a;
        int p = g->vals[mm].producer;
        if (is_float_init(g, bias) && p >= 0 && g->nodes[p].op == CC_OP_MATMUL)
            n = &g->nodes[p];
        else
            bias = -1;
    }
    CC_RETURN_IF(!n || (n->op != CC_OP_GEMM && n->op != CC_OP_MATMUL) || n->n_in < 2 ||
                     !is_float_init(g, n->in[1]) || g->vals[n->in[1]].ndim != 2,
                 CLCNN_ERR_UNSUPPORTED,
                 "clcnn_net_replace_classifier: the output '%s' is made by %s%s%s, not by a Gemm "
                 "or MatMul with a weight initializer (the classifier to replace)",
                 g->vals[out].name, n ? "node '" : "no node", n ? n->name : "", n ? "'" : "");
    if (n->op == CC_OP_GEMM && n->n_in > 2 && n->in[2] >= 0) bias = n->in[2];
    CC_RETURN_IF(bias >= 0 && (!is_float_init(g, bias) ||
                               g->vals[bias].numel != (size_t)g->vals[out].dims[1]),
                 CLCNN_ERR_UNSUPPORTED,
                 "clcnn_net_replace_classifier: the bias of node '%s' is not a float initializer "
                 "with one value per output",
                 n->name);
    int w = n->in[1], tb = n->op == CC_OP_GEMM && n->a.trans_b;
    int64_t wd[2] = {g->vals[w].dims[0], g->vals[w].dims[1]};
    wd[tb ? 0 : 1] = classes;
    int64_t bd[1] = {classes};
    const char *names[2] = {g->vals[w].name, bias >= 0 ? g->vals[bias].name : NULL};
    CC_TRY(reshape_init(g, w, 2, wd));
    if (bias >= 0) CC_TRY(reshape_init(g, bias, 1, bd));
    CC_TRY(clcnn_graph_check(g));
    CC_TRY(cc_net_bind(net));
    return cc_net_init_params(net, init, seed, names, bias >= 0 ? 2 : 1);
}
