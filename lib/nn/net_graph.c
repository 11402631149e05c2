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

static clcnn_status add_init(clcnn_graph *g, const cc_param *p) {
    int64_t dims[CLCNN_MAX_DIMS];
    for (int d = 0; d < p->value->ndim; d++)
        dims[d] = (int64_t)p->value->shape[d];
    return clcnn_graph_add_initializer(g, p->name, CLCNN_F32, p->value->ndim, dims, NULL);
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
static clcnn_status emit_bn(clcnn_graph *g, const char *name, const char *x, const cc_param *params,
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
    CC_RETURN_IF(net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_graph: the net has no layers");
    CC_RETURN_IF(net->res_depth > 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_graph: %d residual block(s) still open", net->res_depth);
    clcnn_graph *g = NULL;
    CC_TRY(cc_graph_clone(net->graph, &g));
    clcnn_status s = CLCNN_OK;
    size_t cap = 0;
    float *buf = NULL;
    for (int i = 0; s == CLCNN_OK && i < cc_net_num_params(net); i++) {
        const cc_param *p = cc_net_param(net, i);
        size_t bytes = p->value->numel * sizeof(float);
        if (bytes > cap) {
            float *grown = realloc(buf, bytes);
            if (!grown) {
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_graph: out of host memory");
                break;
            }
            buf = grown;
            cap = bytes;
        }
        s = clcnn_tensor_download(p->value, buf, bytes);
        if (s == CLCNN_OK) s = clcnn_graph_set_initializer(g, p->name, buf, bytes);
    }
    free(buf);
    if (s == CLCNN_OK) s = clcnn_graph_check(g);
    if (s != CLCNN_OK) {
        clcnn_graph_free(g);
        return s;
    }
    *out = g;
    return CLCNN_OK;
}
