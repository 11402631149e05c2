/* Internals of the nn layer (the .c files of lib/nn): layers, the sequential net, optimizers.
 * Never installed. Prefix cc_ like lib/internal.h.
 *
 * A layer is a small vtable (forward, backward) plus its parameters and the tensors of
 * its last forward pass. Tensors have a per-sample shape (c, h, w) and a rank: 4-D
 * (n, c, h, w) until a flatten or linear layer, then 2-D (n, c) with h = w = 1. */
#ifndef CLCNN_NN_INTERNAL_H
#define CLCNN_NN_INTERNAL_H

#include "internal.h"

#define CC_RES_MAX_DEPTH 16   /* nested residual blocks */
#define CC_LAYER_MAX_PARAMS 6 /* residual projection: conv weight, bias, 4 of batchnorm */

typedef enum cc_param_role {
    CC_PARAM_WEIGHT = 0, /* conv (k, c/g, r, s) or linear (out, in) weights */
    CC_PARAM_BIAS,       /* conv or linear bias: zeros */
    CC_PARAM_GAMMA,      /* batchnorm weight: ones */
    CC_PARAM_BETA,       /* batchnorm bias: zeros */
    CC_PARAM_RMEAN,      /* batchnorm running mean (buffer): zeros */
    CC_PARAM_RVAR,       /* batchnorm running variance (buffer): ones */
} cc_param_role;

typedef struct cc_param {
    char name[48]; /* "layers.<i>.weight" */
    cc_param_role role;
    clcnn_tensor *value;
    clcnn_tensor *grad;     /* NULL for buffers */
    size_t fan_in, fan_out; /* weights only, for initialisation */
} cc_param;

typedef struct cc_layer cc_layer;

typedef struct cc_layer_vtable {
    /* Compute l->out from x (the previous layer's output, (n, in_c, in_h, in_w) or
     * (n, in_c)). training selects batch statistics / dropout. */
    clcnn_status (*forward)(clcnn_net *net, cc_layer *l, const clcnn_tensor *x, int training);
    /* From dy (shaped like l->out): every parameter gradient, and l->dxout (shaped like
     * x) when need_dx. */
    clcnn_status (*backward)(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                             const clcnn_tensor *dy, int need_dx);
} cc_layer_vtable;

struct cc_layer {
    const cc_layer_vtable *vt;
    int index; /* position in the net: the <i> of "layers.<i>.weight" */
    char kind[32];
    char desc[128];
    int in_c, in_h, in_w, in_rank; /* per-sample input; rank 4 or 2 including n */
    int out_c, out_h, out_w, out_rank;

    int nparams;
    cc_param params[CC_LAYER_MAX_PARAMS];

    /* configuration (the fields of its kind) */
    clcnn_conv2d_desc conv;
    int k, r, s, has_bias;
    clcnn_activation act;
    float alpha;
    clcnn_pool2d_desc pool;
    float momentum, eps; /* batchnorm */
    float p;             /* dropout */
    int out_features;    /* linear */

    /* residual (the layer closing a block): the branch is layers res_from .. index-1;
     * the block input is layer res_from-1's output (the net input when res_from is 0) */
    int res_block; /* 1: this layer closes a residual block */
    int res_from;
    int res_proj, res_bn;         /* projection shortcut, with a batchnorm */
    clcnn_tensor *sc_y;           /* projection conv output (n, k, p, q) */
    clcnn_tensor *sc_bn_y;        /* its batchnorm output */
    clcnn_tensor *sc_dconv;       /* gradient at the conv output (batchnorm backward) */
    clcnn_tensor *sc_dx;          /* shortcut gradient at the block input */
    const clcnn_tensor *sc_dxout; /* what the join adds: sc_dx, or dy for the identity */

    /* tensors of the last pass, kept across calls while the batch size is unchanged */
    clcnn_tensor *y;           /* owned output buffer */
    clcnn_tensor *view;        /* output as a view of the input (flatten, dropout off) */
    clcnn_tensor *aux;         /* pool argmax (int32), dropout mask, batchnorm save_mean */
    clcnn_tensor *aux2;        /* batchnorm save_invstd */
    clcnn_tensor *dx;          /* owned input-gradient buffer */
    clcnn_tensor *dxview;      /* input gradient as a view of dy */
    const clcnn_tensor *out;   /* what the next layer reads: y or view */
    const clcnn_tensor *dxout; /* what the previous layer receives: dx or dxview */
};

struct clcnn_net {
    clcnn_device *dev;
    int c, h, w;
    cc_layer **layers; /* pointers, so cc_param addresses stay put when the array grows */
    int nlayers, cap;
    int training;
    /* open residual blocks, innermost last: first layer index and block input value */
    int res_depth;
    int res_from[CC_RES_MAX_DEPTH];
    char res_stack[CC_RES_MAX_DEPTH][64];
    clcnn_graph *graph;    /* the same network as graph nodes (lib/nn/net_graph.c) */
    char cur[64];          /* the graph value the next layer reads */
    uint64_t seed;         /* from clcnn_net_init; keys the dropout masks */
    uint64_t dropout_step; /* training forwards so far; the dropout RNG counter */

    /* the last forward */
    const clcnn_tensor *x;  /* the caller's input (must live until backward) */
    const clcnn_tensor *in; /* the input of layer 0 during a forward (x or xview) */
    int bwd_first;          /* the first layer the running backward goes down to */
    clcnn_tensor *xview;    /* x seen with the rank layer 0 expects */
    size_t batch;
    int fwd_valid;    /* a forward succeeded and nothing changed since */
    int fwd_training; /* it ran in training mode, so backward may follow */

    /* loss */
    clcnn_tensor *loss;    /* (1) */
    clcnn_tensor *dlogits; /* (n, k) */
    clcnn_tensor *logits2d;
    float *host_logits;
    int32_t *host_labels;
    size_t host_cap_logits, host_cap_labels;
};

struct clcnn_optimizer {
    clcnn_net *net;
    clcnn_optim_config cfg;
    int64_t t; /* steps taken */
    int n;     /* trainable parameters at creation */
    cc_param **params;
    clcnn_tensor **slot1; /* SGD velocity (NULL without momentum) or Adam m */
    clcnn_tensor **slot2; /* Adam v */
};

/* lib/nn/layers.c: constructors fill l (kind, desc, shapes, params) from its input shape
 * (l->in_*) and fail with CLCNN_ERR_SHAPE when the layer cannot take it. */
clcnn_status cc_layer_conv2d(clcnn_net *net, cc_layer *l, int k, int r, int s,
                             const clcnn_conv2d_desc *d, int bias);
clcnn_status cc_layer_activation(clcnn_net *net, cc_layer *l, clcnn_activation act, float alpha);
clcnn_status cc_layer_pool2d(clcnn_net *net, cc_layer *l, const clcnn_pool2d_desc *d);
clcnn_status cc_layer_batchnorm(clcnn_net *net, cc_layer *l, float momentum, float eps);
clcnn_status cc_layer_dropout(clcnn_net *net, cc_layer *l, float p);
clcnn_status cc_layer_flatten(clcnn_net *net, cc_layer *l);
clcnn_status cc_layer_linear(clcnn_net *net, cc_layer *l, int out_features, int bias);
/* The layer closing a residual block (branch: layers res_from .. l->index-1). */
clcnn_status cc_layer_residual(clcnn_net *net, cc_layer *l, int res_from,
                               const clcnn_residual_desc *d);
/* The block input of residual layer l in the current pass. */
const clcnn_tensor *cc_residual_input(const clcnn_net *net, const cc_layer *l);
/* Backward, at the block's first layer: *g = branch_dx + the shortcut gradient (held by
 * l, the residual layer), the gradient at the block input. */
clcnn_status cc_residual_join(clcnn_net *net, cc_layer *l, const clcnn_tensor *branch_dx,
                              const clcnn_tensor **g);
/* Free every tensor of the layer (parameters and pass state), not l itself. */
void cc_layer_release(cc_layer *l);

/* Make *t a tensor of this dtype and shape, keeping the existing one when it already
 * matches (so steady-state training allocates nothing). */
clcnn_status cc_ensure_tensor(clcnn_device *dev, clcnn_tensor **t, clcnn_dtype dtype, int ndim,
                              const size_t *shape);

/* Trainable + buffer parameters in checkpoint order. */
int cc_net_num_params(const clcnn_net *net);
cc_param *cc_net_param(const clcnn_net *net, int i);

/* lib/nn/net_graph.c: the net's graph with its input (begin, at creation) and a layer's
 * nodes (after its constructor succeeded; on failure the graph is unchanged). */
clcnn_status cc_net_graph_begin(clcnn_net *net);
clcnn_status cc_net_graph_layer(clcnn_net *net, const cc_layer *l);

/* "[16,3,3,3]" */
const char *cc_shape_str(const size_t *shape, int ndim, char *buf, size_t cap);

#endif
