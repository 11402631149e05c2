/* Internals of the device-free graph (lib/graph): values, nodes, parsed attributes and
 * the op-kind table. Shared with lib/exec (plans) and lib/nn (the builder that emits
 * nodes). Never installed.
 *
 * A value is an input, an initializer (host data) or a node output. Shapes are int64
 * dims; CLCNN_GRAPH_BATCH (-1) in dim 0 stands for the batch. Node inputs and outputs
 * are value indices (-1 for an absent optional input), resolved by clcnn_graph_check. */
#ifndef CLCNN_GRAPH_INTERNAL_H
#define CLCNN_GRAPH_INTERNAL_H

#include "internal.h"

#define CC_GMAX CLCNN_GRAPH_MAX_DIMS

typedef enum cc_op {
    CC_OP_CONV = 0,
    CC_OP_BATCHNORM,
    CC_OP_RELU,
    CC_OP_LEAKYRELU,
    CC_OP_MAXPOOL,
    CC_OP_AVGPOOL,
    CC_OP_GLOBALAVGPOOL,
    CC_OP_GLOBALMAXPOOL,
    CC_OP_ADD,
    CC_OP_CONCAT,
    CC_OP_FLATTEN,
    CC_OP_GEMM,
    CC_OP_DROPOUT,
    CC_OP_IDENTITY,
    CC_OP_SOFTMAX,
    CC_OP_LOGSOFTMAX,
    /* lib/graph/ops_reduce.c */
    CC_OP_MATMUL,
    CC_OP_REDUCEMEAN,
    CC_OP_REDUCESUM,
    CC_OP_REDUCEMAX,
    CC_OP_REDUCEMIN,
    CC_OP_REDUCEPROD,
    CC_OP_REDUCESUMSQUARE,
    CC_OP_REDUCEL1,
    CC_OP_REDUCEL2,
    CC_OP_REDUCELOGSUM,
    CC_OP_REDUCELOGSUMEXP,
    CC_OP_LRN,
    CC_OP_COUNT
} cc_op;

typedef enum cc_value_kind { CC_VAL_INPUT = 0, CC_VAL_INIT, CC_VAL_NODE } cc_value_kind;

typedef struct cc_gvalue {
    char *name;
    cc_value_kind kind;
    clcnn_dtype dtype;
    int ndim; /* -1 until inferred (node outputs) */
    int64_t dims[CC_GMAX];
    void *data;   /* initializers: numel elements of dtype */
    size_t numel; /* initializers */
    int producer; /* node index, -1 for inputs and initializers */
} cc_gvalue;

typedef struct cc_gattr {
    char *name;
    clcnn_attr_type type;
    int64_t i;
    float f;
    int64_t *ints;
    float *floats;
    int n;
    char *s;
} cc_gattr;

/* The attributes every op kind may have, parsed once with ONNX defaults applied. Spatial
 * attributes are 2-D (h, w); pads are (top, left, bottom, right) as in ONNX. */
typedef struct cc_op_attrs {
    int64_t kernel[2];     /* kernel_shape; 0 = from the weights (Conv) */
    int64_t strides[2];    /* 1 */
    int64_t pads[4];       /* 0 */
    int64_t dilations[2];  /* 1 */
    int64_t group;         /* 1 */
    int auto_pad;          /* 0 NOTSET, 1 VALID, 2 SAME_UPPER, 3 SAME_LOWER */
    int ceil_mode;         /* 0 */
    int count_include_pad; /* 0 */
    float alpha, beta;     /* LeakyRelu 0.01; Gemm 1, 1 */
    float epsilon;         /* BatchNormalization 1e-5 */
    float momentum;        /* BatchNormalization 0.9 (ONNX: running = m*running + (1-m)*batch) */
    int64_t axis;          /* Concat (required), Flatten 1, Softmax -1 */
    int trans_a, trans_b;  /* Gemm 0, 0 */
    float ratio;           /* Dropout 0.5 */
    /* reductions (lib/graph/ops_reduce.c): axes from the attribute, or from the second
     * input (an int64 initializer) when infer resolves it; naxes 0 = all axes unless
     * noop_empty; LRN: size, alpha, beta above, bias */
    int64_t axes[CC_GMAX];
    int naxes;
    int keepdims;   /* 1 */
    int noop_empty; /* noop_with_empty_axes 0 */
    int64_t size;   /* LRN (required) */
    float bias;     /* LRN 1 */
} cc_op_attrs;

typedef struct cc_gnode {
    cc_op op;
    char *name;
    int n_in, n_out;
    char **in_names; /* "" for an absent optional input */
    char **out_names;
    int *in; /* value indices after check; -1 absent */
    int *out;
    int nattrs;
    cc_gattr *attrs;
    cc_op_attrs a;
} cc_gnode;

struct clcnn_graph {
    cc_gvalue *vals;
    int nvals, capv;
    cc_gnode *nodes;
    int nnodes, capn;
    int *order; /* node indices in topological order (after check) */
    char **out_names;
    int *outputs;
    int noutputs, capo;
    int checked;
    int next_id; /* for generated node names */
};

/* One entry per op kind: arity, attribute parsing (into n->a, with checks) and shape
 * inference (the outputs' ndim/dims from the inputs'). The plan's forward for each kind
 * is the entry of the same index in lib/exec's table. */
typedef struct cc_op_def {
    const char *name; /* ONNX op type */
    int min_in, max_in, min_out, max_out;
    clcnn_status (*parse)(cc_gnode *n);
    clcnn_status (*infer)(clcnn_graph *g, cc_gnode *n);
} cc_op_def;
extern const cc_op_def cc_op_defs[CC_OP_COUNT];

/* lib/graph/ops_reduce.c: MatMul, the Reduce* family and LRN */
clcnn_status cc_parse_matmul(cc_gnode *n);
clcnn_status cc_infer_matmul(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_parse_reduce(cc_gnode *n);
clcnn_status cc_infer_reduce(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_parse_lrn(cc_gnode *n);
clcnn_status cc_infer_lrn(clcnn_graph *g, cc_gnode *n);
/* cc_node_describe for these kinds (nothing for others). */
void cc_node_describe_reduce(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                             double *flops, size_t *params);

/* lib/graph/graph.c */
int cc_graph_find(const clcnn_graph *g, const char *name); /* value index or -1 */
/* "[N,64,56,56]" */
const char *cc_graph_shape_str(const int64_t *dims, int ndim, char *buf, size_t cap);
/* Number of elements with the batch dimension counted as `batch`; 0 on overflow. */
size_t cc_graph_numel(const int64_t *dims, int ndim, int64_t batch);
/* A deep copy of g (checked again if g was). */
clcnn_status cc_graph_clone(const clcnn_graph *g, clcnn_graph **out);
/* Drop the nodes, values and outputs added after the counts given (a builder's undo). */
void cc_graph_truncate(clcnn_graph *g, int nnodes, int nvals, int noutputs);
/* Resolve node i's inputs and infer its outputs now; for builders that add nodes in
 * topological order and need shapes as they go (ONNX import). */
clcnn_status cc_graph_infer_node(clcnn_graph *g, int i);
/* Remove every graph output mark (a builder moving its output along). */
void cc_graph_clear_outputs(clcnn_graph *g);

/* lib/graph/ops.c: every attribute at its ONNX default (for the kinds' parse functions). */
void cc_op_attrs_defaults(cc_op_attrs *a);
/* lib/graph/ops.c: the attribute of a node, NULL when absent. */
const cc_gattr *cc_node_attr(const cc_gnode *n, const char *name);
/* Description and per-sample FLOPs of a checked node (for clcnn_graph_node_info). */
void cc_node_describe(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                      double *flops, size_t *params);

#endif
