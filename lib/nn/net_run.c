/* Running the net: forward (training or evaluation mode), backward, and the classification
 * loss step.
 *
 * Training forward and backward run the graph's training plan (lib/exec/train.c) for the
 * batch at hand (cc_net_train_plan_for: a batch size other than the plan's makes a new plan
 * on the same parameter and gradient arenas). Evaluation runs an inference plan (batch norm
 * folded, fused epilogues) made from the current parameters and remade when they or the
 * batch size changed. */
#include "exec/train_internal.h"
#include "graph/graph_internal.h"
#include "nn_internal.h"

#include <stdlib.h>

void clcnn_net_set_training(clcnn_net *net, int training) {
    if (net) net->training = training != 0;
}

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
        CC_TRY(cc_net_train_plan_for(net, n));
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
