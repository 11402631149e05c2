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
#define CC_SPLIT_MAX 64 /* outputs of one Split node */

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
    /* data movement (lib/graph/ops_movement.c) */
    CC_OP_RESHAPE,
    CC_OP_SQUEEZE,
    CC_OP_UNSQUEEZE,
    CC_OP_TRANSPOSE,
    CC_OP_SLICE,
    CC_OP_SPLIT,
    CC_OP_PAD,
    CC_OP_EXPAND,
    CC_OP_TILE,
    CC_OP_GATHER,
    /* element-wise family (lib/graph/ops_eltwise.c) */
    CC_OP_SIGMOID,
    CC_OP_TANH,
    CC_OP_HARDSIGMOID,
    CC_OP_HARDSWISH,
    CC_OP_CLIP,
    CC_OP_EXP,
    CC_OP_LOG,
    CC_OP_SQRT,
    CC_OP_NEG,
    CC_OP_ABS,
    CC_OP_RECIPROCAL,
    CC_OP_FLOOR,
    CC_OP_CEIL,
    CC_OP_PRELU,
    CC_OP_SUB,
    CC_OP_MUL,
    CC_OP_DIV,
    CC_OP_POW,
    CC_OP_MAX,
    CC_OP_MIN,
    CC_OP_SUM,
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
    /* ConvTranspose (lib/graph/ops.c, lib/exec/steps_convt.c) */
    CC_OP_CONVTRANSPOSE,
    /* lib/graph/ops_resize.c */
    CC_OP_RESIZE,
    CC_OP_UPSAMPLE,
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
    /* element-wise family */
    float clip_min, clip_max; /* Clip's attributes (opset < 11): -FLT_MAX, FLT_MAX */
    /* reductions (lib/graph/ops_reduce.c): axes from the attribute, or from the second
     * input (an int64 initializer) when infer resolves it; naxes 0 = all axes unless
     * noop_empty; LRN: size, alpha, beta above, bias */
    int64_t axes[CC_GMAX];
    int naxes;
    int keepdims;   /* 1 */
    int noop_empty; /* noop_with_empty_axes 0 */
    int64_t size;   /* LRN (required) */
    float bias;     /* LRN 1 */
    /* ConvTranspose: output_padding (0), output_shape (spatial; 0 = absent). Shape
     * inference resolves output_shape and auto_pad into pads[], which may then be negative
     * (an output larger than the full transposed convolution, zeros at that side). */
    int64_t output_padding[2];
    int64_t output_shape[2];
    /* Resize / Upsample (lib/graph/ops_resize.c): linear (else nearest), the coordinate
     * transform and nearest rounding (cc_resize_coord, cc_resize_round in internal.h) */
    int rs_linear;
    int rs_coord;
    int rs_round;
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

/* lib/graph/ops.c: Conv's attributes (strides, pads, dilations, group, auto_pad,
 * kernel_shape), shared with ConvTranspose. */
clcnn_status cc_parse_conv(cc_gnode *n);
/* lib/graph/ops_convt.c: ConvTranspose (ONNX opset 11+, 2-D); its description. */
clcnn_status cc_parse_convtranspose(cc_gnode *n);
clcnn_status cc_infer_convtranspose(clcnn_graph *g, cc_gnode *n);
void cc_node_describe_convt(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                            double *flops, size_t *params);
/* lib/graph/ops_resize.c: Resize and Upsample. cc_resize_info_of gives the output dims
 * and each dim's ONNX scale (out / in when sizes are given), failing as inference does. */
typedef struct cc_resize_info {
    int ndim;
    int64_t dims[CC_GMAX];
    double scale[CC_GMAX];
} cc_resize_info;
clcnn_status cc_parse_resize(cc_gnode *n); /* Resize and Upsample */
clcnn_status cc_infer_resize(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_resize_info_of(const clcnn_graph *g, const cc_gnode *n, cc_resize_info *r);
/* "linear, half_pixel" / "nearest (floor), asymmetric" for node listings. */
void cc_node_describe_resize(const cc_gnode *n, char *desc, size_t cap);

/* Input i of node n (after resolution), NULL when absent or past its inputs. */
static inline const cc_gvalue *cc_node_in(const clcnn_graph *g, const cc_gnode *n, int i) {
    return i < n->n_in && n->in[i] >= 0 ? &g->vals[n->in[i]] : NULL;
}

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
/* lib/graph/ops.c, shared with the op families in other files: ONNX defaults for every
 * attribute; a float attribute (def when absent); the output shaped as input 0; NumPy
 * broadcasting of all inputs (a shape error names the node and shapes). */
void cc_attrs_defaults(cc_op_attrs *a);
clcnn_status cc_attr_float(const cc_gnode *n, const char *name, float def, float *out);
clcnn_status cc_infer_same(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_infer_broadcast(clcnn_graph *g, cc_gnode *n);

/* lib/graph/ops_eltwise.c: the element-wise family's parse and infer functions. */
clcnn_status cc_parse_hardsigmoid(cc_gnode *n);
clcnn_status cc_parse_hardswish(cc_gnode *n);
clcnn_status cc_parse_clip(cc_gnode *n);
clcnn_status cc_infer_clip(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_infer_prelu(clcnn_graph *g, cc_gnode *n);

/* lib/graph/ops.c: attribute readers for the op files (ONNX defaults when absent; a
 * value of the wrong type is CLCNN_ERR_INVALID_ARG naming the node and attribute). */
clcnn_status cc_attr_int(const cc_gnode *n, const char *name, int64_t def, int64_t *out);
/* axis of an ndim-d input in [0, ndim) (negative counts from the end; Flatten also takes
 * ndim), else CLCNN_ERR_INVALID_ARG naming the node. */
clcnn_status cc_norm_axis(const cc_gnode *n, int64_t axis, int ndim, int *out);

/* ---- data movement (lib/graph/ops_movement.c) -----------------------------------------
 * Reshape, Squeeze, Unsqueeze, Transpose, Slice, Split, Pad, Expand, Tile, Gather (and
 * Flatten, Concat in ops.c). Their shape, axes, starts/ends/steps, pads, repeats, split
 * and indices inputs must be int64 initializers: the ONNX importer folds shape
 * sub-graphs into constants, and a non-constant one is CLCNN_ERR_UNSUPPORTED naming the
 * node. Inside such folded int64 data, CC_SHAPE_BATCH stands for the batch (the symbolic
 * CLCNN_GRAPH_BATCH dimension): PyTorch's x.view(x.size(0), -1) folds to the Reshape
 * shape {CC_SHAPE_BATCH, -1}. The batch stays dimension 0: an op that would move it,
 * merge it with other dimensions or cut it is CLCNN_ERR_UNSUPPORTED. */
#define CC_SHAPE_BATCH INT64_MIN

clcnn_status cc_parse_reshape(cc_gnode *n);
clcnn_status cc_infer_reshape(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_parse_squeeze(cc_gnode *n); /* Squeeze and Unsqueeze */
clcnn_status cc_infer_squeeze(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_infer_unsqueeze(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_parse_transpose(cc_gnode *n);
clcnn_status cc_parse_slice(cc_gnode *n);
clcnn_status cc_parse_split(cc_gnode *n);
clcnn_status cc_infer_split(clcnn_graph *g, cc_gnode *n);
clcnn_status cc_parse_pad(cc_gnode *n);
clcnn_status cc_parse_none_movement(cc_gnode *n); /* Expand, Tile */
clcnn_status cc_parse_gather(cc_gnode *n);
clcnn_status cc_infer_gather(clcnn_graph *g, cc_gnode *n);
/* Transpose, Slice, Pad, Expand and Tile: shape inference through cc_copy_map_of. */
clcnn_status cc_infer_copy_map(clcnn_graph *g, cc_gnode *n);

/* What a Transpose, Slice, Pad, Expand or Tile node reads: output coordinate o of dim d
 * reads input dim axis[d] at start[d] + o * step[d] (axis[d] = -1: a broadcast dim that
 * reads coordinate 0). A coordinate outside the input is `value` in mode
 * CLCNN_COPY_ID_CONSTANT, else mapped into it (edge, reflect, wrap: cl/clcnn_ids.h).
 * dims: the output's graph shape. The batch dim maps to itself with start 0, step 1. */
typedef struct cc_copy_map {
    int ndim;
    int64_t dims[CC_GMAX];
    int axis[CC_GMAX];
    int64_t start[CC_GMAX], step[CC_GMAX];
    int mode;
    float value;
} cc_copy_map;
/* Fails as shape inference does (the node and inputs named). */
clcnn_status cc_copy_map_of(const clcnn_graph *g, const cc_gnode *n, cc_copy_map *m);
/* Split: the normalised axis and the size of each of the n_out parts along it. */
clcnn_status cc_split_sizes(const clcnn_graph *g, const cc_gnode *n, int *axis,
                            int64_t sizes[CC_SPLIT_MAX]);
/* Gather: the normalised axis and the indices initializer (count values, each already
 * checked to lie in [-dim, dim)). */
clcnn_status cc_gather_indices(const clcnn_graph *g, const cc_gnode *n, int *axis,
                               const int64_t **idx, size_t *count);

#endif
