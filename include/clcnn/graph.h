/* The network layer's two halves: a device-free graph (named values with N-d shapes,
 * nodes with ONNX-style op types and typed attributes, named initializers in host memory)
 * and a plan that binds a graph to one device and one batch size and runs it.
 *
 * A graph describes a network once; a plan decides everything that can be decided
 * before running it: buffers (values whose lifetimes do not overlap share memory), each
 * convolution's algorithm, weights transformed for that algorithm, batch norm folded into
 * the convolution before it, bias, activation and a following residual Add fused into the
 * convolution. Running a plan then only launches kernels.
 *
 * Op types and attribute names follow ONNX (Conv, BatchNormalization, Relu, MaxPool, Add,
 * Gemm, ...); clcnn_graph_op_name lists the supported ones. The first dimension of a
 * graph input may be symbolic (-1): the batch, fixed when a plan is made.
 *
 * Ownership: the graph copies every name, shape, attribute and initializer it is given.
 * A plan keeps no pointer into its graph: the graph may be freed or changed after
 * clcnn_plan_create. A graph or plan is used from one thread at a time. */
#ifndef CLCNN_GRAPH_H
#define CLCNN_GRAPH_H

#include <stdint.h>

#include "ops.h"
#include "tune.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLCNN_GRAPH_MAX_DIMS 8
#define CLCNN_GRAPH_BATCH (-1) /* a symbolic leading dimension: the plan's batch size */
/* Inside int64 shape initializers (Reshape's shape, Expand's shape), INT64_MIN stands for
 * the batch: PyTorch's x.view(x.size(0), -1) is the shape {INT64_MIN, -1}. */

typedef struct clcnn_graph clcnn_graph;

typedef enum clcnn_attr_type {
    CLCNN_ATTR_INT = 0,
    CLCNN_ATTR_FLOAT = 1,
    CLCNN_ATTR_INTS = 2,
    CLCNN_ATTR_FLOATS = 3,
    CLCNN_ATTR_STRING = 4,
} clcnn_attr_type;

/* One attribute of a node; the fields of its type are read, the others ignored. */
typedef struct clcnn_attr {
    const char *name;
    clcnn_attr_type type;
    int64_t i;
    float f;
    const int64_t *ints; /* n of them */
    const float *floats; /* n of them */
    int n;
    const char *s;
} clcnn_attr;

CLCNN_API clcnn_status clcnn_graph_create(clcnn_graph **out);
CLCNN_API void clcnn_graph_free(clcnn_graph *g);

/* A graph input of dtype and shape dims[0..ndim) (dims[0] may be CLCNN_GRAPH_BATCH).
 * Names are unique across inputs, initializers and node outputs. */
CLCNN_API clcnn_status clcnn_graph_add_input(clcnn_graph *g, const char *name, clcnn_dtype dtype,
                                             int ndim, const int64_t *dims);
/* A named constant (weights, running statistics), copied from data (NULL: zeros). */
CLCNN_API clcnn_status clcnn_graph_add_initializer(clcnn_graph *g, const char *name,
                                                   clcnn_dtype dtype, int ndim, const int64_t *dims,
                                                   const void *data);
/* A node of op_type reading inputs[0..n_in) (NULL or "" for an absent optional input) and
 * writing outputs[0..n_out), new value names. An unknown op type is CLCNN_ERR_UNSUPPORTED
 * naming it; attributes are parsed and checked here (CLCNN_ERR_INVALID_ARG naming the node
 * and attribute). name may be NULL (a name is generated). Inputs may be added later:
 * references are resolved by clcnn_graph_check. */
CLCNN_API clcnn_status clcnn_graph_add_node(clcnn_graph *g, const char *op_type, const char *name,
                                            int n_in, const char *const *inputs, int n_out,
                                            const char *const *outputs, int n_attrs,
                                            const clcnn_attr *attrs);
/* Mark a value as a graph output (in the order of the calls). */
CLCNN_API clcnn_status clcnn_graph_add_output(clcnn_graph *g, const char *name);

/* Resolve references, order the nodes topologically and infer every value's shape. A
 * reference to an unknown value (CLCNN_ERR_INVALID_ARG naming the node and input), a
 * cycle (naming a node on it), a shape an op cannot take (CLCNN_ERR_SHAPE naming the node
 * and shapes) or a graph without outputs fails. Called by clcnn_plan_create; calling it
 * again after a change is fine. */
CLCNN_API clcnn_status clcnn_graph_check(clcnn_graph *g);

/* ---- inspection (after a successful clcnn_graph_check) ------------------------------- */

typedef struct clcnn_node_info {
    const char *op_type; /* "Conv" */
    const char *name;
    int n_in, n_out;
    const char *inputs[8];              /* the first 8 input names ("" when absent) */
    const char *outputs[4];             /* the first 4 output names */
    int ndim;                           /* of the first output */
    int64_t dims[CLCNN_GRAPH_MAX_DIMS]; /* its shape (CLCNN_GRAPH_BATCH for the batch) */
    size_t params; /* elements of the float initializers it reads that are trained
                    * (weights, biases, batch-norm scale and shift) */
    double flops;  /* per sample: 2 per multiply-add of Conv, Gemm, MatMul */
    char desc[96]; /* "64 x 3x3, stride 2, pad 1" */
} clcnn_node_info;
CLCNN_API int clcnn_graph_num_nodes(const clcnn_graph *g);
/* Node i in topological order. */
CLCNN_API clcnn_status clcnn_graph_node_info(const clcnn_graph *g, int i, clcnn_node_info *out);
CLCNN_API int clcnn_graph_num_inputs(const clcnn_graph *g); /* not counting initializers */
CLCNN_API const char *clcnn_graph_input_name(const clcnn_graph *g, int i);
CLCNN_API int clcnn_graph_num_outputs(const clcnn_graph *g);
CLCNN_API const char *clcnn_graph_output_name(const clcnn_graph *g, int i);
/* Shape of any value (an input, an initializer, a node output). */
CLCNN_API clcnn_status clcnn_graph_value_shape(const clcnn_graph *g, const char *name, int *ndim,
                                               int64_t dims[CLCNN_GRAPH_MAX_DIMS]);
/* An initializer's data (host memory owned by the graph) and element count; NULL when
 * name is no initializer. */
CLCNN_API const void *clcnn_graph_initializer(const clcnn_graph *g, const char *name,
                                              size_t *numel);
/* Overwrite an initializer's data with bytes from src (its numel x dtype size). */
CLCNN_API clcnn_status clcnn_graph_set_initializer(clcnn_graph *g, const char *name,
                                                   const void *src, size_t bytes);
/* The supported op types: name i, NULL past the last. */
CLCNN_API const char *clcnn_graph_op_name(int i);

/* ---- ONNX ------------------------------------------------------------------------------ */

/* A graph from an ONNX model file: its inputs (initializers also listed as inputs, as in
 * IR 3, stay initializers), initializers, nodes and outputs. Constant nodes and the int64
 * shape computations exporters emit (Shape, Gather, Unsqueeze, Concat, Slice, Cast,
 * arithmetic on constants) are folded on the host; a symbolic (or 0) first dimension of
 * an input becomes CLCNN_GRAPH_BATCH. External data is read from files below the model's
 * folder only. Errors name the node or tensor: CLCNN_ERR_FORMAT for malformed files
 * (truncated, sizes that do not add up, nesting deeper than 64), CLCNN_ERR_UNSUPPORTED
 * for op types, element types, domains and opsets clcnn does not run (opset <= 17). */
CLCNN_API clcnn_status clcnn_graph_load_onnx(const char *path, clcnn_graph **out);
/* The same from memory; external data is looked up below base_dir (NULL: refused). */
CLCNN_API clcnn_status clcnn_graph_load_onnx_memory(const void *data, size_t size,
                                                    const char *base_dir, clcnn_graph **out);
/* A file holding one ONNX TensorProto (an ONNX test case's input_K.pb): element type (float
 * as CLCNN_F32, integers widened to CLCNN_I64), shape and data (malloc'd; free() it). */
CLCNN_API clcnn_status clcnn_onnx_load_tensor(const char *path, clcnn_dtype *dtype, int *ndim,
                                              int64_t dims[CLCNN_GRAPH_MAX_DIMS], void **data,
                                              size_t *numel);

/* Write a checked graph (clcnn_graph_check) with its initializers to path as an ONNX model:
 * opset 17, IR 8, nodes in topological order under their names, initializers as
 * little-endian raw_data under their names (float32, int32, int64), inputs and outputs
 * with their shapes and the batch as the symbolic dimension "N". Attribute forms of older
 * opsets are rewritten to opset 17's (e.g. Squeeze axes as an input); Dropout goes out in
 * inference form. Written to a temporary file beside path and renamed: on failure path is
 * left as it was. Errors name the problem: CLCNN_ERR_UNSUPPORTED for an attribute or value
 * opset 17 cannot express (naming the node) or a model over protobuf's 2 GiB,
 * CLCNN_ERR_INVALID_ARG for an unchecked graph, CLCNN_ERR_IO naming the file,
 * CLCNN_ERR_OUT_OF_MEMORY. docs/onnx.md lists what is written and rewritten. */
CLCNN_API clcnn_status clcnn_graph_save_onnx(const clcnn_graph *g, const char *path);
/* The same into memory: *data (malloc'd; free() it) of *size bytes. */
CLCNN_API clcnn_status clcnn_graph_save_onnx_memory(const clcnn_graph *g, void **data,
                                                    size_t *size);
/* Write one ONNX TensorProto file (an ONNX test case's input_K.pb / output_K.pb) named name
 * (NULL: unnamed) of dtype (CLCNN_F32, CLCNN_I32, CLCNN_I64) and shape dims[0..ndim)
 * holding data (their product of elements). */
CLCNN_API clcnn_status clcnn_onnx_save_tensor(const char *path, const char *name, clcnn_dtype dtype,
                                              int ndim, const int64_t *dims, const void *data);

/* ---- plans ------------------------------------------------------------------------ */

typedef struct clcnn_plan clcnn_plan;

/* What a plan may do; every switch exists so tests can compare against the plain form. */
typedef struct clcnn_plan_options {
    int fold_batchnorm;        /* fold inference batch norm into the convolution before it */
    int fuse;                  /* bias, activation (ReLU, LeakyRelu, and SiLU as Sigmoid + Mul where
                                  the convolution runs on implicit_gemm or depthwise) and a
                                  following residual Add into conv epilogues */
    int reuse_buffers;         /* values whose lifetimes do not overlap share memory */
    clcnn_conv_algo conv_algo; /* CLCNN_CONV_AUTO, or force one where it applies */
    int find;           /* Find (clcnn_conv2d_find) for each convolution before its algorithm is
                           chosen: 0 as $CLCNN_TUNE says ("find": on), 1 on, -1 off; off when
                           $CLCNN_TUNE is off */
    int fuse_depthwise; /* with fuse and conv_algo AUTO, on CPUs: a depthwise convolution
                           (batch norm and activation folded, no residual) whose output of
                           at least 56x56 only a 1x1 stride-1 unpadded convolution reads,
                           the two on depthwise and implicit_gemm when apart, runs inside
                           that one's kernel (MobileNet's first blocks): its output is never
                           stored. The bytes of the unfused plan while the 1x1 layer has at
                           most 1024 input channels per group */
} clcnn_plan_options;
/* Everything on, automatic algorithms. */
CLCNN_API clcnn_plan_options clcnn_plan_options_default(void);

/* Bind g to dev for batch size batch (the value of every CLCNN_GRAPH_BATCH dimension):
 * checks the graph, allocates parameters and activations, resolves each convolution's
 * algorithm (after Find, when it is on) and transforms its weights. opts NULL = defaults. Inference
 * only (batch norm with running statistics, dropout as identity). An op the plan cannot run on this
 * shape is CLCNN_ERR_UNSUPPORTED naming the node. */
CLCNN_API clcnn_status clcnn_plan_create(clcnn_device *dev, clcnn_graph *g, int batch,
                                         const clcnn_plan_options *opts, clcnn_plan **out);
CLCNN_API void clcnn_plan_free(clcnn_plan *p);
/* How many convolution shapes Find measured (and stored) while the plan was created. */
CLCNN_API int clcnn_plan_conv_measured(const clcnn_plan *p);

/* One convolution pass a plan runs, as the convolution entry points see it: the pass, the
 * descriptor (algo: what the plan was asked for, normally CLCNN_CONV_AUTO), the input x
 * (n,c,h,w; padded when the plan pads it first) and weights w (k,c/groups,r,s), the node.
 * For `clcnn tune --model` and the like: tune exactly what a plan runs. */
typedef struct clcnn_plan_conv {
    clcnn_conv_pass pass;
    clcnn_conv2d_desc desc;
    size_t x[4], w[4];
    char node[64]; /* the node's name, cut to 63 bytes */
} clcnn_plan_conv;
/* The convolution passes of a plan, in the order of its steps (NULL past the last). */
CLCNN_API int clcnn_plan_num_convs(const clcnn_plan *p);
CLCNN_API const clcnn_plan_conv *clcnn_plan_conv_at(const clcnn_plan *p, int i);

/* Run the plan: inputs[i] is graph input i, shaped as the graph says with the batch
 * filled in (float32; read, not kept after the call returns its work to the queue; a 0-D
 * input, a scalar, takes a tensor of one element, shape [1]). Outputs stay valid until
 * the next run or clcnn_plan_free. */
CLCNN_API clcnn_status clcnn_plan_run(clcnn_plan *p, const clcnn_tensor *const *inputs,
                                      int n_inputs);
/* Output i of the last run (owned by the plan). */
CLCNN_API const clcnn_tensor *clcnn_plan_output(const clcnn_plan *p, int i);

typedef struct clcnn_plan_memory {
    size_t activation_bytes; /* what the plan allocated for intermediate values (peak) */
    size_t activation_sum;   /* sum of the sizes of the values the steps write, no reuse */
    size_t graph_sum;        /* sum of the graph's node outputs (no fusion, no reuse; views such
                              * as Flatten not counted): what a layer-by-layer run keeps */
    size_t param_bytes;      /* parameters after folding, before algorithm-specific layouts */
    int steps;               /* kernel steps per run after fusion */
    int fused_batchnorm, fused_activation, fused_add; /* nodes folded into convolutions */
    int fused_depthwise;  /* depthwise convolutions run inside the 1x1 convolution after them */
    size_t scratch_bytes; /* buffers steps keep besides the activations: a Conv with per-side
                           * pads its padded input, a ConvTranspose its uncropped output */
} clcnn_plan_memory;
CLCNN_API void clcnn_plan_get_memory(const clcnn_plan *p, clcnn_plan_memory *out);

/* Step i of the plan for listings: what it runs ("Conv+BN+Relu conv1 implicit_gemm"). */
CLCNN_API int clcnn_plan_num_steps(const clcnn_plan *p);
CLCNN_API const char *clcnn_plan_step_desc(const clcnn_plan *p, int i);

/* ---- training plans ------------------------------------------------------------------- */

/* A graph bound to a device and batch for training: forward with batch statistics
 * (BatchNormalization updates its running mean and variance with the node's momentum),
 * then backward in reverse topological order. Every value keeps its own buffer (nothing
 * that backward reads is reused or fused away; no batch-norm folding). The float
 * initializers read where an op has a gradient (Conv and Gemm weights and biases, batch-norm
 * scale and shift, MatMul and element-wise operands, PRelu slopes) are the parameters: they and
 * their gradients live in two flat arenas (each a view; the running statistics and other float
 * initializers follow the parameters in the first arena, without gradients). Where a value
 * feeds several nodes, its gradient is the sum, in this fixed order, of the graph output's
 * gradient (when it is one) and each reader's contribution in topological order; so two
 * runs give bit-identical gradients. docs/training.md lists the ops with backward. */
typedef struct clcnn_train_plan clcnn_train_plan;

/* Synchronised batch norm (lib/dist, docs/distributed.md): when a plan has one, every
 * BatchNormalization node in training mode hands its batch's per-channel statistics to
 * `stats` and normalises with what it gets back, and in backward hands its per-channel sums
 * to `grads` and uses what it gets back; so several plans can normalise with the
 * statistics of all their batches together. Such nodes compute on the host in fp64 (their
 * input is downloaded; the output and gradients uploaded), which costs a transfer of the
 * activation each way. `layer` is the node's index among the plan's BatchNormalization
 * nodes in topological order; c the channels.
 *  - stats: in: this batch's values per channel (*count) and per channel their mean and M2
 *    (sum of squared deviations from the mean); out: the count, mean and M2 to normalise
 *    with (variance M2 / count) and to update the running statistics with (unbiased
 *    variance M2 / (count - 1); M2 for a count of 1). A count below 1 is an error.
 *  - grads: in: this batch's per-channel sum of dy and of dy * xhat (they are the
 *    gradients of scale and B); out: the sums that the input gradient uses, with the count
 *    that stats returned.
 * A returned error stops the forward or backward with it. The struct must outlive the
 * plan. */
typedef struct clcnn_bn_sync {
    void *ctx;
    clcnn_status (*stats)(void *ctx, int layer, size_t c, double *count, double *mean, double *m2);
    clcnn_status (*grads)(void *ctx, int layer, size_t c, double *sum_dy, double *sum_dyxhat);
} clcnn_bn_sync;

typedef struct clcnn_train_options {
    int input_grads;           /* 1: also compute the gradients of the graph inputs */
    clcnn_conv_algo conv_algo; /* CLCNN_CONV_AUTO, or force one where it applies */
    uint64_t seed;             /* Dropout's masks: drawn from (seed, forward count), repeatable */
    int find; /* Find for each Conv's forward, data (when needed) and filter passes, as
                 clcnn_plan_options.find says */
    const clcnn_bn_sync *bn_sync; /* NULL: each batch norm uses its own batch's statistics */
    int overwrite_grads;          /* 1: backward writes the parameter gradients (a parameter's first
                                     contribution overwrites, later ones add), as after PyTorch's
                                     zero_grad(set_to_none=True): no clcnn_train_plan_zero_grad */
} clcnn_train_options;

/* Bind g to dev for batch size batch; the parameters start as g's initializers. An op
 * without backward (or a form of one: per-side pads, ceil mode, ...) is
 * CLCNN_ERR_UNSUPPORTED naming the node and op. opts NULL: no input gradients, automatic
 * algorithms. The plan keeps no pointer into g. */
CLCNN_API clcnn_status clcnn_train_plan_create(clcnn_device *dev, clcnn_graph *g, int batch,
                                               const clcnn_train_options *opts,
                                               clcnn_train_plan **out);
CLCNN_API void clcnn_train_plan_free(clcnn_train_plan *p);
/* How many convolution passes Find measured (and stored) while the plan was created. */
CLCNN_API int clcnn_train_plan_conv_measured(const clcnn_train_plan *p);
/* Its convolution passes (forward, data gradients where one is needed, filter gradients),
 * as clcnn_plan_num_convs / clcnn_plan_conv_at. */
CLCNN_API int clcnn_train_plan_num_convs(const clcnn_train_plan *p);
CLCNN_API const clcnn_plan_conv *clcnn_train_plan_conv_at(const clcnn_train_plan *p, int i);

/* Forward in training mode (inputs as clcnn_plan_run's; the plan reads them again in
 * backward, so keep them alive and unchanged until then). Updates running statistics. */
CLCNN_API clcnn_status clcnn_train_plan_forward(clcnn_train_plan *p,
                                                const clcnn_tensor *const *inputs, int n_inputs);
/* Output i of the last forward (owned by the plan). */
CLCNN_API const clcnn_tensor *clcnn_train_plan_output(const clcnn_train_plan *p, int i);
/* Backward from d(loss)/d(output i) = output_grads[i] (shaped like output i; NULL: zero),
 * after a forward. Parameter gradients are ADDED to the gradient arena (call
 * clcnn_train_plan_zero_grad between steps), or overwritten with opts->overwrite_grads;
 * input gradients are overwritten. */
CLCNN_API clcnn_status clcnn_train_plan_backward(clcnn_train_plan *p,
                                                 const clcnn_tensor *const *output_grads,
                                                 int n_outputs);
CLCNN_API clcnn_status clcnn_train_plan_zero_grad(clcnn_train_plan *p);

/* The parameters and state in arena order (name i, NULL past the last; the graph's
 * initializer names); the trainable parameters and their gradients as two flat tensors of
 * one layout (for optimizers: one update covers every parameter); views by name (NULL when
 * name is neither; state such as running statistics has a value but no gradient). */
CLCNN_API int clcnn_train_plan_num_params(const clcnn_train_plan *p);
CLCNN_API const char *clcnn_train_plan_param_name(const clcnn_train_plan *p, int i);
CLCNN_API clcnn_tensor *clcnn_train_plan_params(const clcnn_train_plan *p);
CLCNN_API clcnn_tensor *clcnn_train_plan_grads(const clcnn_train_plan *p);
/* The state part of the first arena (running statistics and the other float initializers
 * without gradient, right after the trainable part; padding included) as one flat tensor;
 * NULL when the plan has no state. */
CLCNN_API clcnn_tensor *clcnn_train_plan_state(const clcnn_train_plan *p);
/* Element offset of parameter (or state) i in the first arena: a trainable parameter's
 * offset in clcnn_train_plan_params and _grads, a state tensor's is past them (so its offset
 * in clcnn_train_plan_state is this minus numel(params)); 0 for an i out of range. */
CLCNN_API size_t clcnn_train_plan_param_offset(const clcnn_train_plan *p, int i);
CLCNN_API clcnn_tensor *clcnn_train_plan_param(const clcnn_train_plan *p, const char *name);
CLCNN_API clcnn_tensor *clcnn_train_plan_grad(const clcnn_train_plan *p, const char *name);
/* Copy a parameter (or state) by name from / to host floats (bytes: its numel x 4);
 * an unknown name or a wrong size is CLCNN_ERR_INVALID_ARG naming it. */
CLCNN_API clcnn_status clcnn_train_plan_read(const clcnn_train_plan *p, const char *name,
                                             float *dst, size_t bytes);
CLCNN_API clcnn_status clcnn_train_plan_write(clcnn_train_plan *p, const char *name,
                                              const float *src, size_t bytes);
/* Copy every parameter and state tensor back into the initializer of the same name in g
 * (the graph the plan was made from, or one with the same initializers): for checkpoints,
 * ONNX export or an inference plan of the trained weights. A name g lacks or a size that
 * differs is CLCNN_ERR_INVALID_ARG naming it (initializers before it are written). */
CLCNN_API clcnn_status clcnn_train_plan_to_graph(const clcnn_train_plan *p, clcnn_graph *g);
/* Dropout's masks of the next forward are those of forward number `count` (forwards count
 * from 1, each adds one): data-parallel training keys them by a global micro-batch index
 * instead of by how many forwards this plan ran. */
CLCNN_API void clcnn_train_plan_set_forward_count(clcnn_train_plan *p, uint64_t count);
/* Gradient of graph input i after a backward with input_grads on (NULL otherwise). */
CLCNN_API const clcnn_tensor *clcnn_train_plan_input_grad(const clcnn_train_plan *p, int i);

#ifdef __cplusplus
}
#endif
#endif
