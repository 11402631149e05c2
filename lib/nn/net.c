/* The net: a graph bound to a device for training. Builders, layer and parameter queries,
 * initialisation, forward, backward and the classification loss step.
 *
 * The builders (and the zoo through them) append graph nodes (lib/nn/net_graph.c);
 * clcnn_net_from_graph takes any graph. Training forward and backward run the graph's
 * training plan (lib/exec/train.c) for the batch at hand: a batch size other than the
 * plan's makes a new plan on the same parameter and gradient arenas. Evaluation runs an
 * inference plan (batch norm folded, fused epilogues) made from the current parameters and
 * remade when they or the batch size changed. */
#include "exec/train_internal.h"
#include "graph/graph_internal.h"
#include "nn_internal.h"

#include <math.h>
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
static clcnn_status train_plan_for(clcnn_net *net, int n) {
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
    return train_plan_for(net, 1); /* an open residual block: its branch so far */
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

/* ---- initialisation ------------------------------------------------------------------ */

/* splitmix64: one independent stream per parameter, keyed by (seed, parameter index), so
 * a layer's weights do not depend on the layers before it. */
typedef struct init_rng {
    uint64_t s;
} init_rng;

static uint64_t rng_next(init_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in (0, 1), never 0 (for the logarithm of Box-Muller) */
static double rng_open01(init_rng *r) {
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Draw parameter i's weights (n of them) into host. */
static void draw_weights(const cc_param *p, int i, clcnn_init init, uint64_t seed, float *host,
                         size_t n) {
    init_rng r = {seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(i + 1))};
    rng_next(&r);
    if (init == CLCNN_INIT_HE) {
        double std = sqrt(2.0 / (double)(p->fan_in ? p->fan_in : 1));
        for (size_t j = 0; j < n; j += 2) {
            double rad = sqrt(-2.0 * log(rng_open01(&r))), th = 2.0 * M_PI * rng_open01(&r);
            host[j] = (float)(std * rad * cos(th));
            if (j + 1 < n) host[j + 1] = (float)(std * rad * sin(th));
        }
    } else {
        double a = sqrt(6.0 / (double)(p->fan_in + p->fan_out ? p->fan_in + p->fan_out : 1));
        for (size_t j = 0; j < n; j++)
            host[j] = (float)(a * (2.0 * rng_open01(&r) - 1.0));
    }
}

clcnn_status cc_net_init_params(clcnn_net *net, clcnn_init init, uint64_t seed,
                                const char *const *only, int n_only) {
    int np = net->nparams;
    size_t cap = 0;
    float *host = NULL;
    clcnn_status s = CLCNN_OK;
    for (int i = 0; s == CLCNN_OK && i < np; i++) {
        cc_param *p = &net->params[i];
        int pick = n_only == 0;
        for (int k = 0; k < n_only && !pick; k++)
            pick = !strcmp(only[k], p->name);
        if (!pick || p->role == CC_PARAM_OTHER) continue;
        if (p->role != CC_PARAM_WEIGHT) {
            s = clcnn_tensor_fill(p->value, cc_param_default(p->role));
            continue;
        }
        size_t n = p->value->numel;
        if (n > cap) {
            float *grown = realloc(host, n * sizeof *host);
            if (!grown) {
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_init: out of host memory");
                break;
            }
            host = grown;
            cap = n;
        }
        draw_weights(p, i, init, seed, host, n);
        s = clcnn_tensor_upload(p->value, host, n * sizeof *host);
    }
    free(host);
    net->version++;
    net->fwd_valid = 0;
    return s;
}

clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init init, uint64_t seed) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_init: net is NULL");
    CC_RETURN_IF(init != CLCNN_INIT_HE && init != CLCNN_INIT_XAVIER, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_init: unknown initialisation %d", (int)init);
    CC_TRY(cc_net_bind(net));
    CC_TRY(cc_net_init_params(net, init, seed, NULL, 0));
    CC_TRY(clcnn_tensor_fill(net->grad_arena, 0.0f));
    clcnn_net_set_seed(net, seed);
    return CLCNN_OK;
}

void clcnn_net_set_seed(clcnn_net *net, uint64_t seed) {
    if (!net) return;
    net->seed = seed;
    net->forwards = 0;
    net->fwd_valid = 0;
}

void clcnn_net_set_training(clcnn_net *net, int training) {
    if (net) net->training = training != 0;
}

/* ---- forward and backward ------------------------------------------------------------- */

/* x seen with the rank of the graph input: (n, c, h, w), or (n, c) with h = w = 1. */
static clcnn_status input_view(clcnn_net *net, const clcnn_tensor *x, const clcnn_tensor **in) {
    size_t n = x->shape[0];
    int ok4 = x->ndim == 4 && x->shape[1] == (size_t)net->c && x->shape[2] == (size_t)net->h &&
              x->shape[3] == (size_t)net->w;
    int ok2 = x->ndim == 2 && net->h == 1 && net->w == 1 && x->shape[1] == (size_t)net->c;
    if (!ok4 && !ok2) {
        char a[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "clcnn_net_forward: input %s does not match the net's samples "
                       "(n, %d, %d, %d)",
                       clcnn_tensor_shape_str(x, a, sizeof a), net->c, net->h, net->w);
    }
    CC_RETURN_IF(n < 1 || n > 0x7fffffff, CLCNN_ERR_SHAPE, "clcnn_net_forward: batch of %zu", n);
    if (x->ndim == net->in_rank) {
        *in = x;
        return CLCNN_OK;
    }
    clcnn_tensor *v = NULL;
    size_t shape[4] = {n, (size_t)net->c, 1, 1};
    CC_TRY(clcnn_tensor_view(x, net->in_rank, shape, &v));
    clcnn_tensor_free(net->xview);
    net->xview = v;
    *in = v;
    return CLCNN_OK;
}

/* The inference plan for batch n with the current parameters. */
static clcnn_status eval_plan_for(clcnn_net *net, int n) {
    if (net->ip && net->ip_batch == n && net->ip_version == net->version) return CLCNN_OK;
    clcnn_plan_free(net->ip);
    net->ip = NULL;
    CC_TRY(clcnn_train_plan_to_graph(net->tp, net->graph));
    CC_TRY(clcnn_plan_create(net->dev, net->graph, n, NULL, &net->ip));
    net->ip_batch = n;
    net->ip_version = net->version;
    return CLCNN_OK;
}

clcnn_status clcnn_net_forward(clcnn_net *net, const clcnn_tensor *x, const clcnn_tensor **y) {
    CC_RETURN_IF(!net || !x || !y, CLCNN_ERR_INVALID_ARG, "clcnn_net_forward: NULL argument");
    CC_RETURN_IF(!net->from_graph && net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_forward: the net has no layers");
    CC_RETURN_IF(net->res_depth > 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_forward: the residual block opened at layer %d is not closed "
                 "(clcnn_net_add_residual_end)",
                 net->res_from[net->res_depth > 0 ? net->res_depth - 1 : 0]);
    CC_TRY(cc_check_tensor(net->dev, x, CLCNN_F32, "clcnn_net_forward", "x"));
    net->fwd_valid = 0;
    const clcnn_tensor *in = NULL;
    CC_TRY(input_view(net, x, &in));
    int n = (int)x->shape[0];
    CC_TRY(cc_net_bind(net));
    const clcnn_tensor *out = NULL;
    if (net->training) {
        CC_TRY(train_plan_for(net, n));
        net->tp->opts.seed = net->seed;
        net->tp->forwards = net->forwards;
        CC_TRY(clcnn_train_plan_forward(net->tp, &in, 1));
        net->forwards = net->tp->forwards;
        net->version++; /* batch norm's running statistics moved */
        out = clcnn_train_plan_output(net->tp, 0);
    } else {
        CC_TRY(eval_plan_for(net, n));
        CC_TRY(clcnn_plan_run(net->ip, &in, 1));
        out = clcnn_plan_output(net->ip, 0);
    }
    net->fwd_valid = 1;
    net->fwd_training = net->training;
    *y = out;
    return CLCNN_OK;
}

clcnn_status clcnn_net_backward(clcnn_net *net, const clcnn_tensor *dy) {
    CC_RETURN_IF(!net || !dy, CLCNN_ERR_INVALID_ARG, "clcnn_net_backward: NULL argument");
    CC_RETURN_IF(!net->fwd_valid, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_backward: no forward pass to go back through (call "
                 "clcnn_net_forward first; adding layers or clcnn_net_init discards it)");
    CC_RETURN_IF(!net->fwd_training, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_backward: the last forward ran in evaluation mode; backward needs "
                 "a forward in training mode (clcnn_net_set_training(net, 1))");
    CC_TRY(cc_check_tensor(net->dev, dy, CLCNN_F32, "clcnn_net_backward", "dy"));
    const clcnn_tensor *y = clcnn_train_plan_output(net->tp, 0);
    if (dy->numel != y->numel || dy->shape[0] != y->shape[0]) {
        char a[64], b[64];
        return cc_fail(CLCNN_ERR_SHAPE, "clcnn_net_backward: dy %s does not match the output %s",
                       clcnn_tensor_shape_str(dy, a, sizeof a),
                       clcnn_tensor_shape_str(y, b, sizeof b));
    }
    return clcnn_train_plan_backward(net->tp, &dy, 1);
}

static clcnn_status host_reserve(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return CLCNN_OK;
    void *grown = realloc(*buf, bytes);
    CC_RETURN_IF(!grown, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", bytes);
    *buf = grown;
    *cap = bytes;
    return CLCNN_OK;
}

/* *view = t seen as (n, k); the view of the last step while it still sees t's buffer (it
 * holds that storage, so an equal storage is the same buffer). */
static clcnn_status view_nk(const clcnn_tensor *t, const size_t nk[2], clcnn_tensor **view) {
    const clcnn_tensor *v = *view;
    if (v && v->storage == t->storage && v->offset == t->offset && v->shape[0] == nk[0] &&
        v->shape[1] == nk[1])
        return CLCNN_OK;
    clcnn_tensor *fresh = NULL;
    CC_TRY(clcnn_tensor_view(t, 2, nk, &fresh));
    clcnn_tensor_free(*view);
    *view = fresh;
    return CLCNN_OK;
}

/* Class scores per sample of the graph's output: (N, k) or (N, k, 1, 1); 0 otherwise. */
static size_t num_classes(const clcnn_net *net, char *shape, size_t cap) {
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    if (clcnn_graph_value_shape(net->graph, clcnn_graph_output_name(net->graph, 0), &nd, d))
        return 0;
    cc_graph_shape_str(d, nd, shape, cap);
    if (nd == 2 || (nd == 4 && d[2] == 1 && d[3] == 1)) return (size_t)d[1];
    return 0;
}

clcnn_status clcnn_net_loss_backward(clcnn_net *net, const clcnn_tensor *x,
                                     const clcnn_tensor *labels, float *loss, int *correct) {
    CC_RETURN_IF(!net || !x || !labels, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: NULL argument");
    CC_TRY(cc_check_tensor(net->dev, labels, CLCNN_I32, "clcnn_net_loss_backward", "labels"));
    CC_RETURN_IF(!net->training, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: the net is in evaluation mode; training steps need "
                 "clcnn_net_set_training(net, 1)");
    CC_RETURN_IF(!net->from_graph && net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: the net has no layers");
    CC_TRY(cc_net_bind(net));
    char oshape[96] = "";
    size_t k = num_classes(net, oshape, sizeof oshape);
    CC_RETURN_IF(k == 0, CLCNN_ERR_SHAPE,
                 "clcnn_net_loss_backward: the net's output %s is not a vector of class "
                 "scores (end the net with a linear layer or a global pool)",
                 oshape);
    size_t n = x->shape[0];
    if (labels->numel != n) {
        char a[64], b[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "clcnn_net_loss_backward: %zu labels %s for a batch x %s of %zu samples",
                       labels->numel, clcnn_tensor_shape_str(labels, a, sizeof a),
                       clcnn_tensor_shape_str(x, b, sizeof b), n);
    }
    /* The labels are small: check them here for a message naming the bad one, rather
     * than a NaN loss from the op. */
    CC_TRY(host_reserve((void **)&net->host_labels, &net->host_cap_labels, n * sizeof(int32_t)));
    CC_TRY(clcnn_tensor_download(labels, net->host_labels, n * sizeof(int32_t)));
    for (size_t i = 0; i < n; i++)
        CC_RETURN_IF(net->host_labels[i] < 0 || (size_t)net->host_labels[i] >= k,
                     CLCNN_ERR_INVALID_ARG,
                     "clcnn_net_loss_backward: label %zu is %d, outside the %zu classes [0, %zu)",
                     i, (int)net->host_labels[i], k, k);

    const clcnn_tensor *y = NULL;
    CC_TRY(clcnn_net_forward(net, x, &y));
    size_t nk[2] = {n, k};
    CC_TRY(view_nk(y, nk, &net->yview));
    clcnn_tensor *logits = net->yview;
    /* the loss gradient goes straight into the plan's gradient of the output */
    clcnn_tensor *g = net->tp->vals[net->tp->outputs[0]].g;
    if (g)
        CC_TRY(view_nk(g, nk, &net->dlogits));
    else if (!net->dlogits || net->dlogits->shape[0] != n || net->dlogits->shape[1] != k) {
        clcnn_tensor_free(net->dlogits);
        net->dlogits = NULL;
        CC_TRY(clcnn_tensor_create(net->dev, CLCNN_F32, 2, nk, &net->dlogits));
    }
    clcnn_tensor *dl = net->dlogits;
    if (!net->loss) CC_TRY(clcnn_tensor_create(net->dev, CLCNN_F32, 1, (size_t[]){1}, &net->loss));
    CC_TRY(clcnn_softmax_cross_entropy(net->dev, logits, labels, net->loss, dl));
    /* Enqueue the backward pass before the blocking downloads so the device keeps busy;
     * it writes gradients only, not the logits or the loss read below. */
    if (g) {
        const clcnn_tensor *grads[1] = {g};
        CC_TRY(clcnn_train_plan_backward(net->tp, grads, 1));
    }
    int c = 0;
    if (correct) {
        CC_TRY(
            host_reserve((void **)&net->host_logits, &net->host_cap_logits, n * k * sizeof(float)));
        CC_TRY(clcnn_tensor_download(logits, net->host_logits, n * k * sizeof(float)));
        for (size_t i = 0; i < n; i++) {
            const float *row = net->host_logits + i * k;
            size_t best = 0;
            for (size_t j = 1; j < k; j++)
                if (row[j] > row[best]) best = j;
            c += (int32_t)best == net->host_labels[i];
        }
    }
    float l = 0.0f;
    if (loss) CC_TRY(clcnn_tensor_download(net->loss, &l, sizeof l));
    if (loss) *loss = l;
    if (correct) *correct = c;
    return CLCNN_OK;
}
