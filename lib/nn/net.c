/* The sequential network: builders, layer and parameter queries, initialisation,
 * forward, backward and the classification loss step.
 *
 * Layer i reads layer i-1's output (layer 0 the caller's x) and keeps its own output for
 * layer i+1 and for its backward pass. Backward walks the layers in reverse, feeding
 * each layer's input gradient to the one before; it stops at the first layer that has
 * parameters, since nothing below it needs a gradient.
 *
 * Residual blocks keep the layer array flat: the layer closing a block (kind "residual")
 * also reads the block input, the output of the layer before the block's first. Backward
 * through it hands dy to the branch unchanged and keeps the shortcut's gradient; when the
 * walk has passed the branch's first layer, the two are added (cc_residual_join) and the
 * sum goes on down. */
#include "nn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clcnn_status clcnn_net_create(clcnn_device *dev, int c, int h, int w, clcnn_net **out) {
    CC_RETURN_IF(!dev || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_create: NULL argument");
    *out = NULL;
    CC_RETURN_IF(c < 1 || h < 1 || w < 1, CLCNN_ERR_SHAPE,
                 "clcnn_net_create: sample shape %dx%dx%d must be positive", c, h, w);
    clcnn_net *net = calloc(1, sizeof *net);
    CC_RETURN_IF(!net, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    net->dev = dev;
    net->c = c;
    net->h = h;
    net->w = w;
    net->training = 1;
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
    for (int i = 0; i < net->nlayers; i++) {
        cc_layer_release(net->layers[i]);
        free(net->layers[i]);
    }
    free(net->layers);
    clcnn_graph_free(net->graph);
    clcnn_tensor_free(net->xview);
    clcnn_tensor_free(net->loss);
    clcnn_tensor_free(net->dlogits);
    clcnn_tensor_free(net->logits2d);
    free(net->host_logits);
    free(net->host_labels);
    free(net);
}

/* A fresh layer reading the current last output; NULL when out of memory. */
static cc_layer *new_layer(clcnn_net *net) {
    if (net->nlayers == net->cap) {
        int cap = net->cap ? 2 * net->cap : 8;
        cc_layer **grown = realloc(net->layers, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        net->layers = grown;
        net->cap = cap;
    }
    cc_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->index = net->nlayers;
    if (net->nlayers == 0) {
        l->in_c = net->c;
        l->in_h = net->h;
        l->in_w = net->w;
        l->in_rank = 4;
    } else {
        const cc_layer *prev = net->layers[net->nlayers - 1];
        l->in_c = prev->out_c;
        l->in_h = prev->out_h;
        l->in_w = prev->out_w;
        l->in_rank = prev->out_rank;
    }
    return l;
}

/* Append l when the constructor succeeded, else drop it; the net is unchanged then. */
static clcnn_status finish_layer(clcnn_net *net, cc_layer *l, clcnn_status s) {
    if (s == CLCNN_OK) s = cc_net_graph_layer(net, l);
    if (s != CLCNN_OK) {
        cc_layer_release(l);
        free(l);
        return s;
    }
    net->layers[net->nlayers++] = l;
    net->fwd_valid = 0;
    return CLCNN_OK;
}

#define NEW_LAYER_OR_FAIL(net, l, what)                                                            \
    CC_RETURN_IF(!(net), CLCNN_ERR_INVALID_ARG, "%s: net is NULL", what);                          \
    cc_layer *l = new_layer(net);                                                                  \
    CC_RETURN_IF(!l, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", what)

clcnn_status clcnn_net_add_conv2d(clcnn_net *net, int k, int r, int s, const clcnn_conv2d_desc *d,
                                  int bias) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_conv2d");
    return finish_layer(net, l, cc_layer_conv2d(net, l, k, r, s, d, bias));
}

clcnn_status clcnn_net_add_activation(clcnn_net *net, clcnn_activation act, float alpha) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_activation");
    return finish_layer(net, l, cc_layer_activation(net, l, act, alpha));
}

clcnn_status clcnn_net_add_pool2d(clcnn_net *net, const clcnn_pool2d_desc *d) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_pool2d");
    return finish_layer(net, l, cc_layer_pool2d(net, l, d));
}

clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, float momentum, float eps) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_batchnorm");
    return finish_layer(net, l, cc_layer_batchnorm(net, l, momentum, eps));
}

clcnn_status clcnn_net_add_dropout(clcnn_net *net, float p) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_dropout");
    return finish_layer(net, l, cc_layer_dropout(net, l, p));
}

clcnn_status clcnn_net_add_flatten(clcnn_net *net) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_flatten");
    return finish_layer(net, l, cc_layer_flatten(net, l));
}

clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias) {
    NEW_LAYER_OR_FAIL(net, l, "clcnn_net_add_linear");
    return finish_layer(net, l, cc_layer_linear(net, l, out_features, bias));
}

/* A residual block's branch is every layer added between begin and end; the layer that
 * end appends reads the branch output and the block input (see layers.c). */
clcnn_status clcnn_net_add_residual_begin(clcnn_net *net) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_add_residual_begin: net is NULL");
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

/* ---- queries ------------------------------------------------------------------------ */

int clcnn_net_num_layers(const clcnn_net *net) {
    return net ? net->nlayers : 0;
}

static size_t layer_trainable(const cc_layer *l) {
    size_t n = 0;
    for (int i = 0; i < l->nparams; i++)
        if (l->params[i].grad) n += l->params[i].value->numel;
    return n;
}

clcnn_status clcnn_net_layer_info(const clcnn_net *net, int i, clcnn_layer_info *out) {
    CC_RETURN_IF(!net || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_layer_info: NULL argument");
    CC_RETURN_IF(i < 0 || i >= net->nlayers, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_layer_info: layer %d of a net with %d layers", i, net->nlayers);
    const cc_layer *l = net->layers[i];
    memset(out, 0, sizeof *out);
    snprintf(out->kind, sizeof out->kind, "%s", l->kind);
    snprintf(out->desc, sizeof out->desc, "%s", l->desc);
    out->out_c = l->out_c;
    out->out_h = l->out_h;
    out->out_w = l->out_w;
    out->params = layer_trainable(l);
    out->in_c = l->in_c;
    out->in_h = l->in_h;
    out->in_w = l->in_w;
    out->block_start = l->res_block ? l->res_from : -1;
    /* weights numel x output positions: (k, c/g, r, s) per (p, q), (out, in) once */
    if (l->nparams && l->params[0].role == CC_PARAM_WEIGHT) {
        double positions = l->params[0].value->ndim == 4 ? (double)l->out_h * l->out_w : 1.0;
        out->flops = 2.0 * (double)l->params[0].value->numel * positions;
    }
    return CLCNN_OK;
}

size_t clcnn_net_param_count(const clcnn_net *net) {
    size_t n = 0;
    for (int i = 0; net && i < net->nlayers; i++)
        n += layer_trainable(net->layers[i]);
    return n;
}

int cc_net_num_params(const clcnn_net *net) {
    int n = 0;
    for (int i = 0; net && i < net->nlayers; i++)
        n += net->layers[i]->nparams;
    return n;
}

cc_param *cc_net_param(const clcnn_net *net, int i) {
    for (int j = 0; net && i >= 0 && j < net->nlayers; j++) {
        if (i < net->layers[j]->nparams) return &net->layers[j]->params[i];
        i -= net->layers[j]->nparams;
    }
    return NULL;
}

int clcnn_net_num_params(const clcnn_net *net) {
    return cc_net_num_params(net);
}

clcnn_status clcnn_net_param(const clcnn_net *net, int i, clcnn_param *out) {
    CC_RETURN_IF(!net || !out, CLCNN_ERR_INVALID_ARG, "clcnn_net_param: NULL argument");
    cc_param *p = cc_net_param(net, i);
    CC_RETURN_IF(!p, CLCNN_ERR_INVALID_ARG, "clcnn_net_param: parameter %d of a net with %d", i,
                 cc_net_num_params(net));
    out->name = p->name;
    out->value = p->value;
    out->grad = p->grad;
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

clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init init, uint64_t seed) {
    CC_RETURN_IF(!net, CLCNN_ERR_INVALID_ARG, "clcnn_net_init: net is NULL");
    CC_RETURN_IF(init != CLCNN_INIT_HE && init != CLCNN_INIT_XAVIER, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_init: unknown initialisation %d", (int)init);
    int np = cc_net_num_params(net);
    size_t cap = 0;
    float *host = NULL;
    for (int i = 0; i < np; i++) {
        cc_param *p = cc_net_param(net, i);
        if (p->role != CC_PARAM_WEIGHT) {
            int one = p->role == CC_PARAM_GAMMA || p->role == CC_PARAM_RVAR;
            CC_TRY(clcnn_tensor_fill(p->value, one ? 1.0f : 0.0f));
            continue;
        }
        size_t n = p->value->numel;
        if (n > cap) {
            float *grown = realloc(host, n * sizeof *host);
            if (!grown) {
                free(host);
                return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_net_init: out of host memory");
            }
            host = grown;
            cap = n;
        }
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
        clcnn_status s = clcnn_tensor_upload(p->value, host, n * sizeof *host);
        if (s != CLCNN_OK) {
            free(host);
            return s;
        }
    }
    free(host);
    for (int i = 0; i < np; i++) {
        cc_param *p = cc_net_param(net, i);
        if (p->grad) CC_TRY(clcnn_tensor_fill(p->grad, 0.0f));
    }
    net->seed = seed;
    net->dropout_step = 0;
    net->fwd_valid = 0;
    return CLCNN_OK;
}

void clcnn_net_set_training(clcnn_net *net, int training) {
    if (net) net->training = training != 0;
}

/* ---- forward and backward ------------------------------------------------------------- */

clcnn_status clcnn_net_forward(clcnn_net *net, const clcnn_tensor *x, const clcnn_tensor **y) {
    CC_RETURN_IF(!net || !x || !y, CLCNN_ERR_INVALID_ARG, "clcnn_net_forward: NULL argument");
    CC_RETURN_IF(net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_forward: the net has no "
                 "layers");
    CC_RETURN_IF(net->res_depth > 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_forward: the residual block opened at layer %d is not closed "
                 "(clcnn_net_add_residual_end)",
                 net->res_from[net->res_depth > 0 ? net->res_depth - 1 : 0]);
    CC_TRY(cc_check_tensor(net->dev, x, CLCNN_F32, "clcnn_net_forward", "x"));
    net->fwd_valid = 0;
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
    const clcnn_tensor *in = x;
    if (ok2) {
        clcnn_tensor *v = NULL;
        CC_TRY(clcnn_tensor_view(x, 4, (size_t[]){n, (size_t)net->c, 1, 1}, &v));
        clcnn_tensor_free(net->xview);
        net->xview = v;
        in = v;
    }
    int training = net->training;
    net->in = in;
    for (int i = 0; i < net->nlayers; i++) {
        cc_layer *l = net->layers[i];
        clcnn_status s = l->vt->forward(net, l, in, training);
        if (s != CLCNN_OK) return cc_fail_append(s, " (in layer %d, %s %s)", i, l->kind, l->desc);
        in = l->out;
    }
    if (training) net->dropout_step++;
    net->x = ok2 ? net->xview : x;
    net->batch = n;
    net->fwd_valid = 1;
    net->fwd_training = training;
    *y = in;
    return CLCNN_OK;
}

/* Index of the first layer with parameters (layers before it need no gradient). */
static int first_param_layer(const clcnn_net *net) {
    for (int i = 0; i < net->nlayers; i++)
        if (layer_trainable(net->layers[i])) return i;
    return net->nlayers;
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
    const clcnn_tensor *y = net->layers[net->nlayers - 1]->out;
    if (dy->numel != y->numel || dy->shape[0] != y->shape[0]) {
        char a[64], b[64];
        return cc_fail(CLCNN_ERR_SHAPE, "clcnn_net_backward: dy %s does not match the output %s",
                       clcnn_tensor_shape_str(dy, a, sizeof a),
                       clcnn_tensor_shape_str(y, b, sizeof b));
    }
    int first = first_param_layer(net);
    net->bwd_first = first;
    const clcnn_tensor *g = dy;
    /* residual layers whose branches are being walked, innermost last */
    cc_layer *blocks[CC_RES_MAX_DEPTH];
    int depth = 0;
    for (int i = net->nlayers - 1; i >= first; i--) {
        cc_layer *l = net->layers[i];
        const clcnn_tensor *x = i == 0 ? net->x : net->layers[i - 1]->out;
        clcnn_status s = l->vt->backward(net, l, x, g, i > first);
        if (s != CLCNN_OK)
            return cc_fail_append(s, " (backward of layer %d, %s %s)", i, l->kind, l->desc);
        g = l->dxout;
        if (l->res_block && depth < CC_RES_MAX_DEPTH) blocks[depth++] = l;
        /* branches done here meet their shortcuts' gradients, innermost first */
        while (depth > 0 && blocks[depth - 1]->res_from == i) {
            cc_layer *block = blocks[--depth];
            if (i > first) {
                s = cc_residual_join(net, block, g, &g);
                if (s != CLCNN_OK)
                    return cc_fail_append(s, " (backward of layer %d, %s %s)", block->index,
                                          block->kind, block->desc);
            }
        }
    }
    return CLCNN_OK;
}

static clcnn_status host_reserve(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return CLCNN_OK;
    void *grown = realloc(*buf, bytes);
    CC_RETURN_IF(!grown, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", bytes);
    *buf = grown;
    *cap = bytes;
    return CLCNN_OK;
}

clcnn_status clcnn_net_loss_backward(clcnn_net *net, const clcnn_tensor *x,
                                     const clcnn_tensor *labels, float *loss, int *correct) {
    CC_RETURN_IF(!net || !x || !labels, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: NULL argument");
    CC_TRY(cc_check_tensor(net->dev, labels, CLCNN_I32, "clcnn_net_loss_backward", "labels"));
    CC_RETURN_IF(!net->training, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: the net is in evaluation mode; training steps need "
                 "clcnn_net_set_training(net, 1)");
    CC_RETURN_IF(net->nlayers == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_loss_backward: the net has no layers");
    const cc_layer *last = net->layers[net->nlayers - 1];
    CC_RETURN_IF(last->out_h != 1 || last->out_w != 1, CLCNN_ERR_SHAPE,
                 "clcnn_net_loss_backward: the net's output %dx%dx%d is not a vector of class "
                 "scores (end the net with a linear layer or a global pool)",
                 last->out_c, last->out_h, last->out_w);
    size_t n = x->shape[0], k = (size_t)last->out_c;
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
    const clcnn_tensor *logits = y;
    if (y->ndim != 2) {
        clcnn_tensor *v = NULL;
        CC_TRY(clcnn_tensor_view(y, 2, (size_t[]){n, k}, &v));
        clcnn_tensor_free(net->logits2d);
        net->logits2d = v;
        logits = v;
    }
    if (!net->loss) CC_TRY(clcnn_tensor_create(net->dev, CLCNN_F32, 1, (size_t[]){1}, &net->loss));
    CC_TRY(cc_ensure_tensor(net->dev, &net->dlogits, CLCNN_F32, 2, (size_t[]){n, k}));
    CC_TRY(clcnn_softmax_cross_entropy(net->dev, logits, labels, net->loss, net->dlogits));
    /* Enqueue the backward pass before the blocking downloads so the device keeps busy;
     * it writes gradients only, not the logits or the loss read below. */
    CC_TRY(clcnn_net_backward(net, net->dlogits));
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
