/* The net: a graph bound to a device for training. Creation (builders, or any graph),
 * binding the parameters to the device, layer and parameter queries. Initialisation is in
 * lib/nn/net_init.c; forward, backward and the classification loss step in lib/nn/net_run.c.
 *
 * The builders (and the zoo through them) append graph nodes (lib/nn/net_graph.c);
 * clcnn_net_from_graph takes any graph. The parameters are views of the arenas of the
 * graph's training plan (lib/exec/train.c) for the batch at hand: a batch size other than
 * the plan's makes a new plan on the same parameter and gradient arenas. */
#include "exec/train_internal.h"
#include "graph/graph_internal.h"
#include "nn_internal.h"

#include <stdlib.h>
#include <string.h>

static void free_views(clcnn_net *net) {
    for (int i = 0; i < net->nparams; i++) {
        clcnn_tensor_free(net->params[i].value);
        clcnn_tensor_free(net->params[i].grad);
        free(net->params[i].name);
    }
    free(net->params);
    net->params = NULL;
    net->nparams = net->ntrain = 0;
    clcnn_tensor_free(net->arena);
    clcnn_tensor_free(net->grad_arena);
    clcnn_tensor_free(net->trained);
    net->arena = net->grad_arena = net->trained = NULL;
}

static void drop_plans(clcnn_net *net) {
    clcnn_train_plan_free(net->tp);
    clcnn_plan_free(net->ip);
    net->tp = NULL;
    net->ip = NULL;
    net->tp_batch = net->ip_batch = 0;
    net->fwd_valid = 0;
}

static clcnn_status net_alloc(clcnn_device *dev, clcnn_net **out) {
    clcnn_net *net = calloc(1, sizeof *net);
    CC_RETURN_IF(!net, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    net->dev = dev;
    net->training = 1;
    net->in_rank = 4;
    *out = net;
    return CLCNN_OK;
}

clcnn_status clcnn_net_create(clcnn_device *dev, int c, int h, int w, clcnn_net **out) {
    CC_RETURN_IF(!dev || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_create: NULL argument");
    *out = NULL;
    CC_RETURN_IF(c < 1 || h < 1 || w < 1, CLCNN_ERR_SHAPE,
                 "clcnn_net_create: sample shape %dx%dx%d must be positive", c, h, w);
    clcnn_net *net = NULL;
    CC_TRY(net_alloc(dev, &net));
    net->c = c;
    net->h = h;
    net->w = w;
    clcnn_status s = cc_net_graph_begin(net);
    if (s != CLCNN_OK) {
        clcnn_net_free(net);
        return s;
    }
    *out = net;
    return CLCNN_OK;
}

void clcnn_net_free(clcnn_net *net) {
    if (!net) return;
    drop_plans(net);
    free_views(net);
    free(net->layers);
    clcnn_graph_free(net->graph);
    clcnn_tensor_free(net->xview);
    clcnn_tensor_free(net->yview);
    clcnn_tensor_free(net->loss);
    clcnn_tensor_free(net->dlogits);
    free(net->host_logits);
    free(net->host_labels);
    free(net);
}

/* ---- binding: the parameters on the device ------------------------------------------------ */

static int cmp_by_value(const void *a, const void *b) {
    const cc_tparam *x = *(const cc_tparam *const *)a, *y = *(const cc_tparam *const *)b;
    return (x->value > y->value) - (x->value < y->value);
}

/* The net's views of tp's arenas and parameters, in the graph's initializer order. */
static clcnn_status make_views(clcnn_net *net, const clcnn_train_plan *tp) {
    int np = tp->nparams;
    const cc_tparam **order = calloc((size_t)np + 1, sizeof *order);
    net->params = calloc((size_t)np + 1, sizeof *net->params);
    if (!order || !net->params) {
        free(order);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int i = 0; i < np; i++)
        order[i] = &tp->params[i];
    qsort(order, (size_t)np, sizeof *order, cmp_by_value);
    clcnn_status s = clcnn_tensor_view(tp->arena, 1, tp->arena->shape, &net->arena);
    if (s == CLCNN_OK)
        s = clcnn_tensor_view(tp->grad_arena, 1, tp->grad_arena->shape, &net->grad_arena);
    if (s == CLCNN_OK) s = clcnn_tensor_view(tp->trained, 1, tp->trained->shape, &net->trained);
    for (int i = 0; s == CLCNN_OK && i < np; i++) {
        const cc_tparam *q = order[i];
        const cc_tval *tv = &tp->vals[q->value];
        cc_param *p = &net->params[i];
        net->nparams = i + 1;
        p->name = strdup(q->name);
        if (!p->name) {
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        p->train = (int)(q - tp->params) < tp->ntrain ? (int)(q - tp->params) : -1;
        cc_net_param_role(net->graph, q->name, &p->role, &p->fan_in, &p->fan_out);
        s = clcnn_tensor_view(tv->t, tv->ndim, tv->shape, &p->value);
        if (s == CLCNN_OK && tv->g) s = clcnn_tensor_view(tv->g, tv->ndim, tv->shape, &p->grad);
    }
    net->ntrain = tp->ntrain;
    free(order);
    return s;
}

/* The training plan for batch n (made on the arenas of the plan there is, if any). */
clcnn_status cc_net_train_plan_for(clcnn_net *net, int n) {
    if (net->tp && net->tp_batch == n) return CLCNN_OK;
    clcnn_train_options o = {.input_grads = 0, .conv_algo = CLCNN_CONV_AUTO, .seed = net->seed};
    clcnn_train_plan *tp = NULL;
    CC_TRY(cc_train_plan_create_ex(net->dev, net->graph, n, &o, net->tp, 1, &tp));
    if (!net->params) {
        clcnn_status s = make_views(net, tp);
        if (s != CLCNN_OK) {
            free_views(net);
            clcnn_train_plan_free(tp);
            return s;
        }
    }
    clcnn_train_plan_free(net->tp);
    net->tp = tp;
    net->tp_batch = n;
    return CLCNN_OK;
}

clcnn_status cc_net_bind(clcnn_net *net) {
    if (net->params) return CLCNN_OK;
    CC_RETURN_IF(!net->from_graph && net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "the net has no layers");
    return cc_net_train_plan_for(net, 1); /* an open residual block: its branch so far */
}

clcnn_status cc_net_unbind(clcnn_net *net) {
    if (!net->params) return CLCNN_OK;
    CC_TRY(clcnn_train_plan_to_graph(net->tp, net->graph));
    drop_plans(net);
    free_views(net);
    net->version++;
    return CLCNN_OK;
}

int cc_net_num_params(const clcnn_net *net) {
    if (!net || cc_net_bind((clcnn_net *)net) != CLCNN_OK) return 0;
    return net->nparams;
}

cc_param *cc_net_param(const clcnn_net *net, int i) {
    if (!net || cc_net_bind((clcnn_net *)net) != CLCNN_OK || i < 0 || i >= net->nparams)
        return NULL;
    return &net->params[i];
}

/* ---- builders ------------------------------------------------------------------------- */

/* A fresh layer record reading the current last output; NULL when out of memory. */
static cc_layer *new_layer(clcnn_net *net) {
    if (net->nlayers == net->cap) {
        int cap = net->cap ? 2 * net->cap : 8;
        cc_layer *grown = realloc(net->layers, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        net->layers = grown;
        net->cap = cap;
    }
    cc_layer *l = &net->layers[net->nlayers];
    memset(l, 0, sizeof *l);
    l->index = net->nlayers;
    l->res_from = -1;
    if (net->nlayers == 0) {
        l->in_c = net->c;
        l->in_h = net->h;
        l->in_w = net->w;
        l->in_rank = 4;
    } else {
        const cc_layer *prev = &net->layers[net->nlayers - 1];
        l->in_c = prev->out_c;
        l->in_h = prev->out_h;
        l->in_w = prev->out_w;
        l->in_rank = prev->out_rank;
    }
    return l;
}

/* Append l when the constructor succeeded: its graph nodes, after the parameters so far
 * went back into the graph. The net is unchanged on failure. */
static clcnn_status finish_layer(clcnn_net *net, cc_layer *l, clcnn_status s) {
    if (s == CLCNN_OK) s = cc_net_unbind(net);
    if (s == CLCNN_OK) s = cc_net_graph_layer(net, l);
    if (s != CLCNN_OK) return s;
    net->nlayers++;
    net->fwd_valid = 0;
    return CLCNN_OK;
}

#define NEW_LAYER_OR_FAIL(net, l, what)                                                            \
    CC_RETURN_IF(!(net), CLCNN_ERR_INVALID_ARG, "%s: net is NULL", what);                          \
    CC_RETURN_IF((net)->from_graph, CLCNN_ERR_INVALID_ARG,                                         \
                 "%s: the net was made from a graph (clcnn_net_from_graph); add nodes to the "     \
                 "graph instead",                                                                  \
                 what);                                                                            \
    cc_layer *l = new_layer(net);                                                                  \
    CC_RETURN_IF(!l, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", what)

clcnn_status clcnn_net_add_conv2d(clcnn_net *net, int k, int r, int s, const clcnn_conv2d_desc *d,
                                  int bias) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_conv2d");
    return finish_layer(net, l, cc_layer_conv2d(l, k, r, s, d, bias));
}

clcnn_status clcnn_net_add_activation(clcnn_net *net, clcnn_activation act, float alpha) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_activation");
    return finish_layer(net, l, cc_layer_activation(l, act, alpha));
}

clcnn_status clcnn_net_add_pool2d(clcnn_net *net, const clcnn_pool2d_desc *d) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_pool2d");
    return finish_layer(net, l, cc_layer_pool2d(l, d));
}

clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, float momentum, float eps) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_batchnorm");
    return finish_layer(net, l, cc_layer_batchnorm(l, momentum, eps));
}

clcnn_status clcnn_net_add_dropout(clcnn_net *net, float p) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_dropout");
    return finish_layer(net, l, cc_layer_dropout(l, p));
}

clcnn_status clcnn_net_add_flatten(clcnn_net *net) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_flatten");
    return finish_layer(net, l, cc_layer_flatten(l));
}

clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_linear");
    return finish_layer(net, l, cc_layer_linear(l, out_features, bias));
}

/* A residual block's branch is every layer added between begin and end; end appends the
 * shortcut and an Add reading the branch output and the block input (net_graph.c). */
clcnn_status clcnn_net_add_residual_begin(clcnn_net *net) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_add_residual_begin: net is NULL");
    CC_RETURN_IF(net->from_graph, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_add_residual_begin: the net was made from a graph");
    CC_RETURN_IF(net->res_depth == CC_RES_MAX_DEPTH, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_add_residual_begin: %d residual blocks are open; they nest %d deep "
                 "at most",
                 net->res_depth, CC_RES_MAX_DEPTH);
    net->res_from[net->res_depth] = net->nlayers;
    snprintf(net->res_stack[net->res_depth], sizeof net->res_stack[0], "%s", net->cur);
    net->res_depth++;
    net->fwd_valid = 0;
    return CLCNN_OK;
}

clcnn_status clcnn_net_add_residual_end(clcnn_net *net, const clcnn_residual_desc *shortcut) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_add_residual_end: net is NULL");
    CC_RETURN_IF(net->res_depth == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_add_residual_end: no residual block is open (call "
                 "clcnn_net_add_residual_begin first)");
    int from = net->res_from[net->res_depth - 1];
    CC_RETURN_IF(net->nlayers == from, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_add_residual_end: the residual block opened at layer %d has no "
                 "layers in its branch",
                 from);
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_residual_end");
    CC_TRY(finish_layer(net, l, cc_layer_residual(net, l, from, shortcut)));
    net->res_depth--;
    return CLCNN_OK;
}

/* ---- from a graph ---------------------------------------------------------------------- */

clcnn_status clcnn_net_from_graph(clcnn_device *dev, const clcnn_graph *g, clcnn_net **out) {
    CC_RETURN_IF(!dev || !g || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_from_graph: NULL argument");
    *out = NULL;
    clcnn_graph *copy = NULL;
    CC_TRY(cc_graph_clone(g, &copy));
    clcnn_status s = clcnn_graph_check(copy);
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    const char *in = clcnn_graph_input_name(copy, 0);
    if (s == CLCNN_OK && (clcnn_graph_num_inputs(copy) != 1 || clcnn_graph_num_outputs(copy) != 1))
        s = cc_fail(CLCNN_ERR_UNSUPPORTED,
                    "clcnn_net_from_graph: the graph has %d inputs and %d outputs; a net takes "
                    "one input batch and gives one output",
                    clcnn_graph_num_inputs(copy), clcnn_graph_num_outputs(copy));
    if (s == CLCNN_OK) s = clcnn_graph_value_shape(copy, in, &nd, d);
    if (s == CLCNN_OK && !((nd == 4 || nd == 2) && d[0] == CLCNN_GRAPH_BATCH)) {
        char b[96];
        s = cc_fail(CLCNN_ERR_UNSUPPORTED,
                    "clcnn_net_from_graph: input '%s' is %s; a net takes (N, c, h, w) or "
                    "(N, features) with a symbolic batch N",
                    in, cc_graph_shape_str(d, nd, b, sizeof b));
    }
    clcnn_net *net = NULL;
    if (s == CLCNN_OK) s = net_alloc(dev, &net);
    if (s != CLCNN_OK) {
        clcnn_graph_free(copy);
        return s;
    }
    net->graph = copy;
    net->from_graph = 1;
    net->in_rank = nd;
    net->c = (int)d[1];
    net->h = nd == 4 ? (int)d[2] : 1;
    net->w = nd == 4 ? (int)d[3] : 1;
    *out = net;
    return CLCNN_OK;
}

/* ---- queries ------------------------------------------------------------------------ */

int clcnn_net_num_layers(const clcnn_net *net) {
    if (!net) return 0;
    return net->from_graph ? clcnn_graph_num_nodes(net->graph) : net->nlayers;
}

static int trainable_role(cc_param_role r) {
    return r == CC_PARAM_WEIGHT || r == CC_PARAM_BIAS || r == CC_PARAM_GAMMA || r == CC_PARAM_BETA;
}

static size_t layer_trainable(const cc_layer *l) {
    size_t n = 0;
    for (int i = 0; i < l->nparams; i++) {
        if (!trainable_role(l->params[i].role)) continue;
        size_t e = 1;
        for (int d = 0; d < l->params[i].ndim; d++)
            e *= l->params[i].shape[d];
        n += e;
    }
    return n;
}

/* Layer i of a net made from a graph: node i in topological order. */
static clcnn_status node_layer_info(const clcnn_net *net, int i, clcnn_layer_info *out) {
    clcnn_node_info ni;
    CC_TRY(clcnn_graph_node_info(net->graph, i, &ni));
    snprintf(out->kind, sizeof out->kind, "%s", ni.op_type);
    snprintf(out->desc, sizeof out->desc, "%s", ni.desc);
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    int nd = 0;
    out->out_c = ni.ndim > 1 ? (int)ni.dims[1] : 1;
    out->out_h = ni.ndim > 2 ? (int)ni.dims[2] : 1;
    out->out_w = ni.ndim > 3 ? (int)ni.dims[3] : 1;
    if (ni.n_in > 0 && ni.inputs[0][0] &&
        clcnn_graph_value_shape(net->graph, ni.inputs[0], &nd, d) == CLCNN_OK) {
        out->in_c = nd > 1 ? (int)d[1] : 1;
        out->in_h = nd > 2 ? (int)d[2] : 1;
        out->in_w = nd > 3 ? (int)d[3] : 1;
    }
    out->params = ni.params;
    out->flops = ni.flops;
    out->block_start = -1;
    return CLCNN_OK;
}

clcnn_status clcnn_net_layer_info(const clcnn_net *net, int i, clcnn_layer_info *out) {
    CC_RETURN_IF(!net || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_layer_info: NULL argument");
    int nl = clcnn_net_num_layers(net);
    CC_RETURN_IF(i < 0 || i >= nl, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_layer_info: layer %d of a net with %d layers", i, nl);
    memset(out, 0, sizeof *out);
    if (net->from_graph) return node_layer_info(net, i, out);
    const cc_layer *l = &net->layers[i];
    snprintf(out->kind, sizeof out->kind, "%s", l->kind);
    snprintf(out->desc, sizeof out->desc, "%s", l->desc);
    out->out_c = l->out_c;
    out->out_h = l->out_h;
    out->out_w = l->out_w;
    out->params = layer_trainable(l);
    out->in_c = l->in_c;
    out->in_h = l->in_h;
    out->in_w = l->in_w;
    out->block_start = l->res_from;
    /* weights numel x output positions: (k, c/g, r, s) per (p, q), (out, in) once */
    if (l->nparams && l->params[0].role == CC_PARAM_WEIGHT) {
        const cc_pspec *w = &l->params[0];
        double numel = 1.0;
        for (int d = 0; d < w->ndim; d++)
            numel *= (double)w->shape[d];
        double positions = w->ndim == 4 ? (double)l->out_h * l->out_w : 1.0;
        out->flops = 2.0 * numel * positions;
    }
    return CLCNN_OK;
}

size_t clcnn_net_param_count(const clcnn_net *net) {
    size_t n = 0;
    if (net && net->from_graph) {
        for (int i = 0; i < clcnn_net_num_layers(net); i++) {
            clcnn_node_info ni;
            if (clcnn_graph_node_info(net->graph, i, &ni) == CLCNN_OK) n += ni.params;
        }
        return n;
    }
    for (int i = 0; net && i < net->nlayers; i++)
        n += layer_trainable(&net->layers[i]);
    return n;
}

int clcnn_net_num_params(const clcnn_net *net) {
    return cc_net_num_params(net);
}

clcnn_status clcnn_net_param(const clcnn_net *net, int i, clcnn_param *out) {
    CC_RETURN_IF(!net || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_param: NULL argument");
    CC_TRY(cc_net_bind((clcnn_net *)net));
    cc_param *p = cc_net_param(net, i);
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_net_param: parameter %d of a net with %d", i,
                 net->nparams);
    out->name = p->name;
    out->value = p->value;
    out->grad = p->grad;
    /* the caller may write through it: the next evaluation remakes its plan */
    ((clcnn_net *)net)->version++;
    return CLCNN_OK;
}
