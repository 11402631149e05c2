/* Internals of the nn layer (the .c files of lib/nn): the net, a graph bound to a device for
 * training, its builders and optimizers. Never installed. Prefix cc_ like lib/internal.h.
 *
 * A net is a graph (lib/graph) plus, once it is used, a training plan (lib/exec) for the batch
 * size of the last training forward and an inference plan for evaluation. Parameters and
 * gradients are the training plan's two flat arenas; the net keeps its own views of them
 * (cc_param), which stay valid when the plan is remade for another batch size (the new plan
 * views the same arenas). The C builders keep a record per layer (cc_layer: shapes, kind,
 * description, parameter names) for shape checks and summaries; the layers run as the graph
 * nodes they emit (lib/nn/net_graph.c). */
#ifndef CLCNN_NN_INTERNAL_H
#define CLCNN_NN_INTERNAL_H

#include "internal.h"

#define CC_RES_MAX_DEPTH 16   /* nested residual blocks */
#define CC_LAYER_MAX_PARAMS 6 /* residual projection: conv weight, bias, 4 of batchnorm */

typedef enum cc_param_role {
    CC_PARAM_WEIGHT = 0, /* conv (k, c/g, r, s), Gemm or MatMul weights: drawn by clcnn_net_init */
    CC_PARAM_BIAS,       /* conv or Gemm bias: zeros */
    CC_PARAM_GAMMA,      /* batchnorm weight: ones */
    CC_PARAM_BETA,       /* batchnorm bias: zeros */
    CC_PARAM_RMEAN,      /* batchnorm running mean (buffer): zeros */
    CC_PARAM_RVAR,       /* batchnorm running variance (buffer): ones */
    CC_PARAM_OTHER,      /* any other float initializer: left as it is by clcnn_net_init */
} cc_param_role;

/* A parameter a builder declares: name, role and shape. */
typedef struct cc_pspec {
    char name[48]; /* "layers.<i>.weight" */
    cc_param_role role;
    int ndim;
    size_t shape[4];
} cc_pspec;

/* A parameter of a bound net: views of the arenas. */
typedef struct cc_param {
    char *name; /* the initializer's name */
    cc_param_role role;
    clcnn_tensor *value;
    clcnn_tensor *grad;     /* NULL for buffers */
    size_t fan_in, fan_out; /* weights only, for initialisation */
    int train;              /* index among the trainable parameters (arena order), else -1 */
} cc_param;

/* What a C builder call made: kind, description and shapes for summaries and the next
 * builder's checks; its parameters' names. Tensors (n, c, h, w) until a flatten or linear
 * layer, then (n, c) with h = w = 1 (rank 2). */
typedef struct cc_layer {
    int index; /* the <i> of "layers.<i>.weight" */
    char kind[32];
    char desc[128];
    int in_c, in_h, in_w, in_rank;
    int out_c, out_h, out_w, out_rank;
    int nparams;
    cc_pspec params[CC_LAYER_MAX_PARAMS];
    clcnn_conv2d_desc conv; /* conv2d, the residual projection */
    int has_bias;
    float alpha; /* leaky_relu */
    clcnn_pool2d_desc pool;
    float momentum, eps; /* batchnorm (PyTorch's momentum) */
    float p;             /* dropout */
    int res_from;        /* residual: the block's first layer, else -1 */
    int res_proj, res_bn;
} cc_layer;

struct clcnn_net {
    clcnn_device *dev;
    int c, h, w;        /* the sample shape */
    int in_rank;        /* the graph input's rank (4, or 2 for a (N, features) input) */
    clcnn_graph *graph; /* the network; its initializers are the parameters when unbound */
    int from_graph;     /* made by clcnn_net_from_graph: layers are the graph's nodes */
    /* C builders */
    cc_layer *layers;
    int nlayers, cap;
    int res_depth;
    int res_from[CC_RES_MAX_DEPTH];
    char res_stack[CC_RES_MAX_DEPTH][64];
    char cur[64]; /* the graph value the next layer reads */

    int training;
    uint64_t seed;     /* from clcnn_net_init; keys the dropout masks */
    uint64_t forwards; /* training forwards so far; the dropout RNG counter */

    /* bound: the parameters on the device (cc_net_bind) */
    clcnn_train_plan *tp; /* training plan for batch tp_batch; owns nothing the views need */
    int tp_batch;
    clcnn_tensor *arena, *grad_arena, *trained; /* views: all, gradients, trained part */
    int nparams, ntrain;
    cc_param *params; /* in the graph's initializer order */
    uint64_t version; /* bumped whenever the parameters may have changed */
    clcnn_plan *ip;   /* inference plan for batch ip_batch, made at version ip_version */
    int ip_batch;
    uint64_t ip_version;

    /* the last forward */
    int fwd_valid;       /* a forward succeeded and nothing changed since */
    int fwd_training;    /* it ran in training mode, so backward may follow */
    clcnn_tensor *xview; /* the caller's x seen with the graph input's rank */
    clcnn_tensor *yview; /* the output the caller sees */

    /* loss */
    clcnn_tensor *loss;    /* (1) */
    clcnn_tensor *dlogits; /* (n, k) view of the output gradient */
    float *host_logits;
    int32_t *host_labels;
    size_t host_cap_logits, host_cap_labels;
};

struct clcnn_optimizer {
    clcnn_net *net;
    clcnn_optim_config cfg;
    int64_t t;                     /* steps taken */
    int n;                         /* trainable parameters at creation */
    size_t numel;                  /* of the trained arena at creation */
    int *pidx;                     /* trainable parameter i is the net's parameter pidx[i] */
    clcnn_tensor *arena1, *arena2; /* the slots over the whole trained arena (NULL: none) */
    clcnn_tensor **slot1;          /* per parameter views: SGD velocity (NULL without momentum)
                                    * or Adam m */
    clcnn_tensor **slot2;          /* Adam v */
};

/* The name of the optimizer's trainable parameter i (lib/nn/optim.c). */
const char *cc_optim_param_name(const clcnn_optimizer *opt, int i);

/* lib/nn/builder.c: constructors fill l (kind, desc, shapes, parameter specs) from its input
 * shape (l->in_*) and fail with CLCNN_ERR_SHAPE when the layer cannot take it. */
clcnn_status cc_layer_conv2d(cc_layer *l, int k, int r, int s, const clcnn_conv2d_desc *d,
                             int bias);
clcnn_status cc_layer_activation(cc_layer *l, clcnn_activation act, float alpha);
clcnn_status cc_layer_pool2d(cc_layer *l, const clcnn_pool2d_desc *d);
clcnn_status cc_layer_batchnorm(cc_layer *l, float momentum, float eps);
clcnn_status cc_layer_dropout(cc_layer *l, float p);
clcnn_status cc_layer_flatten(cc_layer *l);
clcnn_status cc_layer_linear(cc_layer *l, int out_features, int bias);
/* The layer closing a residual block (branch: layers res_from .. l->index-1). */
clcnn_status cc_layer_residual(const clcnn_net *net, cc_layer *l, int res_from,
                               const clcnn_residual_desc *d);
/* The value a parameter of this role starts with before clcnn_net_init. */
float cc_param_default(cc_param_role role);

/* lib/nn/net_graph.c: the net's graph with its input (begin, at creation) and a layer's
 * nodes (after its constructor succeeded; on failure the graph is unchanged). */
clcnn_status cc_net_graph_begin(clcnn_net *net);
clcnn_status cc_net_graph_layer(clcnn_net *net, const cc_layer *l);
/* Role and fans of the float initializer called name, from the nodes that read it. */
void cc_net_param_role(const clcnn_graph *g, const char *name, cc_param_role *role, size_t *fan_in,
                       size_t *fan_out);

/* lib/nn/net.c: make the parameters exist on the device (a training plan for batch 1 when
 * there is none yet); after it net->params are valid. */
clcnn_status cc_net_bind(clcnn_net *net);
/* Copy the device parameters back into the graph's initializers and drop the plans (before
 * the graph changes). */
clcnn_status cc_net_unbind(clcnn_net *net);
/* The training plan for batch n (made on the arenas of the plan there is, if any; the
 * first one also makes net->params). */
clcnn_status cc_net_train_plan_for(clcnn_net *net, int n);
/* Bound parameters (binding first): count, and parameter i in the graph's order. */
int cc_net_num_params(const clcnn_net *net);
cc_param *cc_net_param(const clcnn_net *net, int i);

/* lib/nn/net_init.c: initialise the bound parameters as clcnn_net_init does: all of them
 * (n_only 0) or those named only[0..n_only). */
clcnn_status cc_net_init_params(clcnn_net *net, clcnn_init init, uint64_t seed,
                                const char *const *only, int n_only);

/* "[16,3,3,3]" */
const char *cc_shape_str(const size_t *shape, int ndim, char *buf, size_t cap);

#endif
