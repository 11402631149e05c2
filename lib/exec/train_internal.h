/* Internals of training plans (lib/exec/train.c and the op families in train_ops.c,
 * train_eltwise.c, train_movement.c): the value and node tables, the op table's entries and
 * the per-op-kind forward (training mode) and backward functions. Never installed. */
#ifndef CLCNN_TRAIN_INTERNAL_H
#define CLCNN_TRAIN_INTERNAL_H

#include "exec/exec_internal.h"

typedef enum cc_tval_kind {
    CC_TV_NONE = 0, /* no device tensor: integer initializers, values nothing reads */
    CC_TV_INPUT,    /* a graph input: the caller's tensor, per forward */
    CC_TV_PARAM,    /* a float initializer with a gradient: a view of the parameter arena */
    CC_TV_STATE,    /* a float initializer without one (running statistics, Clip bounds) */
    CC_TV_ACT,      /* a node output with its own buffer */
    CC_TV_ALIAS,    /* a node output viewing its input (Flatten, Reshape, ...) */
} cc_tval_kind;

typedef struct cc_tval {
    cc_tval_kind kind;
    int ndim;
    size_t shape[CLCNN_MAX_DIMS];
    size_t numel;
    int need;        /* a gradient flows into it */
    int is_output;   /* a graph output: its gradient starts as the caller's */
    int no_t;        /* no tensor: the Add that alone reads it takes its producer's
                      * output in the same pass (train.c's fuse_bn_add); a gradient only */
    int direct;      /* a reader writes its contribution straight into g (the first one) */
    int param;       /* CC_TV_PARAM / STATE: index in the parameter list */
    clcnn_tensor *t; /* the value this forward */
    clcnn_tensor *g; /* its gradient (PARAM: the view of the gradient arena) */
    int g_shared;    /* g is a view of another value's gradient (train.c's alias_add_grads) */
    int nextra;      /* contributions summed into g after the first, in order */
    clcnn_tensor **extra;
} cc_tval;

typedef struct cc_tnode {
    cc_op op;
    int node; /* index in the graph's node list */
    char *name;
    int n_in, n_out;
    int in[CC_STEP_MAX_IN]; /* value indices (-1 absent) */
    int out[4];
    cc_op_attrs a;
    clcnn_tensor *dst[CC_STEP_MAX_IN]; /* where the gradient of input j goes (NULL: none) */
    /* per-kind state, made at create time */
    clcnn_conv2d_desc conv;
    clcnn_conv_algo conv_algo[CLCNN_CONV_PASS_COUNT]; /* Conv: each pass's, fixed at create */
    clcnn_pool2d_desc pool;
    float ratio;                 /* Dropout (0: a copy) */
    float bn_momentum;           /* BatchNormalization: the batch's share (PyTorch's) */
    int linear;                  /* Gemm as PyTorch's Linear: clcnn_linear_* */
    cc_copy_nd fwd_map, bwd_map; /* Transpose, Slice, Pad: the gather and its way back */
    int map_fill;                /* Slice: dx is 0 where the slice does not read */
    unsigned red_mask;           /* ReduceMean, ReduceSum: the reduced dims of x */
    size_t kept[CLCNN_MAX_DIMS]; /* x's shape with 1 at the reduced dims */
    size_t dims3[3];             /* Softmax (outer, c, inner); Concat/Split (outer, -, inner) */
    clcnn_tensor *save[3];       /* argmax; batch-norm saved mean and 1/std */
    clcnn_tensor *scratch[2];    /* shaped like the output; a reduced one */
    clcnn_tensor *scalar[2];     /* Tanh's 1; Clip's bounds */
    /* Conv with per-side pads, pooling with per-side pads or ceil mode: x copied into px
     * (n, c, h + pads, w + pads) by pad_in, the op run without padding; its input gradient
     * dpx cropped into dx by crop. Average pooling divides by cnt (1, 1, p, q): the share
     * of each window that counts. */
    cc_copy_nd pad_in, crop;
    clcnn_tensor *px, *dpx, *cnt;
    int bn_layer;     /* BatchNormalization: its index among the plan's (opts.bn_sync) */
    int act;          /* BatchNormalization, Add: the activation it applies (CLCNN_ACT_ID_*;
                       * its output is then that activation's, train.c's fuse_activations) */
    int fused;        /* an activation another node applies: no inputs, outputs or work */
    int res, res_out; /* BatchNormalization: the Add it runs (fuse_bn_add): the Add's other
                       * operand and output (values; -1: none), its activation in act */
    int fwd_done;     /* Add: its forward ran in the batch norm's (no work here) */
    int relu_grad;    /* Conv: its data gradient also adds its input's other gradient
                       * contribution and applies the ReLU gradient of the Add that wrote
                       * that input; Add: a Conv does that (train.c's fold_relu_grads) */
    double bn_count;  /* its forward's count as opts.bn_sync->stats returned it */
} cc_tnode;

typedef struct cc_tparam {
    char *name;
    int value;
    size_t offset, numel; /* in the parameter arena */
} cc_tparam;

struct clcnn_train_plan {
    clcnn_device *dev;
    int batch;
    clcnn_train_options opts;
    int nvals, nnodes;
    cc_tval *vals;
    cc_tnode *nodes; /* in topological order */
    int ninputs, noutputs;
    int *inputs, *outputs;
    int nparams, ntrain; /* the first ntrain parameters have gradients */
    cc_tparam *params;
    clcnn_tensor *arena, *grad_arena;
    clcnn_tensor *trained; /* the arena's first numel(grad_arena) elements */
    clcnn_tensor *state;   /* the rest of the arena (NULL when there is no state) */
    int forwarded;
    int conv_measured; /* convolution passes Find measured at creation */
    cc_conv_list convs;
    uint64_t forwards; /* forwards run: the step of Dropout's counter-based masks */
    int overwrite;     /* a parameter's first contribution overwrites its gradient */
    int nbn;           /* BatchNormalization nodes */
};

/* For lib/nn's nets: clcnn_train_plan_create, and when like is not NULL (a plan of the same
 * graph at another batch size) the parameter and gradient arenas are views of like's, values
 * kept (g's initializers are not uploaded). overwrite: backward writes each parameter's
 * gradient (its first contribution overwrites, later ones add) instead of adding to the
 * arena, so no clcnn_train_plan_zero_grad is needed between steps. */
clcnn_status cc_train_plan_create_ex(clcnn_device *dev, clcnn_graph *g, int batch,
                                     const clcnn_train_options *opts, const clcnn_train_plan *like,
                                     int overwrite, clcnn_train_plan **out);

/* lib/exec/train_ops.c: whether op has a training forward and backward, which input slots
 * receive a gradient, preparation (scratch, descriptors; CLCNN_ERR_UNSUPPORTED naming the
 * node for forms without backward), forward and backward. Backward writes (overwrites)
 * n->dst[j] for each j that is not NULL from dy (the gradients of the outputs). */
int cc_train_has_op(cc_op op);
int cc_train_grad_slot(cc_op op, int slot);
int cc_train_is_view(cc_op op);
clcnn_status cc_train_prepare(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n);
clcnn_status cc_train_forward(clcnn_train_plan *p, cc_tnode *n);
clcnn_status cc_train_backward(clcnn_train_plan *p, cc_tnode *n);
void cc_train_release(cc_tnode *n);

/* Shared by the train_*.c files (lib/exec/train_ops.c): CLCNN_ERR_UNSUPPORTED naming the
 * node; a new tensor shaped like value v; a 1-element tensor holding value; dst (operand av
 * of an element-wise op with output yv) = src (yv-shaped) summed over the dims av was
 * broadcast along; v seen as (outer, axis, inner). */
static inline int cc_tr_has_in(const cc_tnode *n, int j) {
    return j < n->n_in && n->in[j] >= 0;
}
clcnn_status cc_tr_unsupported(const cc_gnode *n, const char *why);
clcnn_status cc_tr_like(clcnn_train_plan *p, int v, clcnn_tensor **out);
clcnn_status cc_tr_scalar(clcnn_train_plan *p, float value, clcnn_tensor **out);
clcnn_status cc_tr_reduce_to(clcnn_train_plan *p, const clcnn_tensor *src, int yv, int av,
                             clcnn_tensor *dst);
void cc_tr_join_dims(const cc_tval *v, int64_t axis, size_t d[3]);

/* One op kind's entry of the training op table: which inputs receive a gradient (bit j:
 * input j), whether its output is a view of its input, and the prepare (p, g, n, n's
 * graph node; NULL: nothing to prepare), forward and backward functions. The compute ops'
 * entries are in lib/exec/train_ops.c, the element-wise family's and data movement's in
 * these two tables (indexed by cc_op; an empty entry: not that family's). */
typedef struct cc_train_def {
    unsigned grads;
    int view;
    clcnn_status (*prepare)(clcnn_train_plan *p, const clcnn_graph *g, cc_tnode *n,
                            const cc_gnode *gn);
    clcnn_status (*forward)(clcnn_train_plan *p, cc_tnode *n);
    clcnn_status (*backward)(clcnn_train_plan *p, cc_tnode *n);
} cc_train_def;
extern const cc_train_def cc_train_eltwise_defs[CC_OP_COUNT];
/* Clip's bounds in lim (attributes, or its float scalar initializer inputs); 0 when an
 * input bound is something else. */
int cc_train_clip_bounds(const clcnn_graph *g, const cc_tnode *n, float lim[2]);
/* Whether n's backward adds its output's second gradient contribution itself (an Add
 * fused with its ReLU; lib/exec/train.c), so the plan's backward does not sum it first. */
int cc_train_sums_own_grad(const clcnn_train_plan *p, const cc_tnode *n);

/* lib/exec/train_bnsync.c: BatchNormalization's training forward and backward through
 * p->opts.bn_sync, on the host. */
clcnn_status cc_train_bn_sync_forward(clcnn_train_plan *p, cc_tnode *n);
clcnn_status cc_train_bn_sync_backward(clcnn_train_plan *p, cc_tnode *n);
extern const cc_train_def cc_train_movement_defs[CC_OP_COUNT];

#endif
