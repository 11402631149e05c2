/* The training layer: the net, a graph (graph.h) bound to a device for training, built
 * layer by layer (sequential, with residual blocks), taken from the model zoo or made from
 * any graph (an imported ONNX model); initialisation, losses, optimizers updating the flat
 * parameter arena on the device, learning-rate schedules, and checkpoints in the safetensors
 * format.
 *
 * Ownership: the net owns its graph, plans, parameters, gradients and activations; tensors
 * returned by clcnn_net_forward stay valid until the next forward or clcnn_net_free.
 * A net is used from one thread at a time (it shares the device handle's rules). */
#ifndef CLCNN_NN_H
#define CLCNN_NN_H

#include <stdint.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clcnn_net clcnn_net;

/* A network for samples of shape (c, h, w); the batch size is free per call. */
CLCNN_API clcnn_status clcnn_net_create(clcnn_device *dev, int c, int h, int w, clcnn_net **out);
CLCNN_API void clcnn_net_free(clcnn_net *net);

/* Builders append one layer after the current last one; each checks its input shape
 * and fails with CLCNN_ERR_SHAPE naming the layer and shapes when it cannot fit. */
/* conv2d with k filters of r x s; d NULL = stride 1, no padding; bias 0/1. */
CLCNN_API clcnn_status clcnn_net_add_conv2d(clcnn_net *net, int k, int r, int s,
                                            const clcnn_conv2d_desc *d, int bias);
CLCNN_API clcnn_status clcnn_net_add_activation(clcnn_net *net, clcnn_activation act, float alpha);
CLCNN_API clcnn_status clcnn_net_add_pool2d(clcnn_net *net, const clcnn_pool2d_desc *d);
CLCNN_API clcnn_status clcnn_net_add_batchnorm(clcnn_net *net, float momentum, float eps);
CLCNN_API clcnn_status clcnn_net_add_dropout(clcnn_net *net, float p);
CLCNN_API clcnn_status clcnn_net_add_flatten(clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_add_linear(clcnn_net *net, int out_features, int bias);

/* Residual blocks: y = branch(x) + shortcut(x), where x is the output of the layer before
 * clcnn_net_add_residual_begin (or the net input) and branch is the layers added between
 * begin and end. The shortcut is the identity or a projection: a 1x1 convolution with
 * the branch's output channels and a stride (no bias when followed by a batchnorm), as
 * in ResNet v1.5 downsampling blocks. Blocks nest (up to 16 deep); an activation after
 * the sum is an ordinary layer added after clcnn_net_add_residual_end. In the net's graph
 * (clcnn_net_graph) a block is its branch, the shortcut and an Add node. */
typedef enum clcnn_shortcut {
    CLCNN_SHORTCUT_IDENTITY = 0,
    CLCNN_SHORTCUT_PROJECTION = 1,
} clcnn_shortcut;
typedef struct clcnn_residual_desc {
    clcnn_shortcut kind;
    int stride;                /* projection: stride of the 1x1 convolution (>= 1) */
    int batchnorm;             /* projection: 1 = a batchnorm after the convolution */
    float bn_momentum, bn_eps; /* that batchnorm's; 0 means 0.1 and 1e-5 */
} clcnn_residual_desc;
/* Open a block: the layers added next form the branch (inside any block already open;
 * a 17th level is CLCNN_ERR_INVALID_ARG). */
CLCNN_API clcnn_status clcnn_net_add_residual_begin(clcnn_net *net);
/* Close the block with a layer (kind "residual") that adds the shortcut of the block
 * input (shortcut NULL = identity) to the branch output. A branch output shaped unlike the
 * shortcut's is CLCNN_ERR_SHAPE naming both shapes; an empty branch or no open block is
 * CLCNN_ERR_INVALID_ARG. On failure the block stays open. The projection's parameters
 * are the residual layer's ("layers.<i>.shortcut.weight", "layers.<i>.shortcut_bn.*"). */
CLCNN_API clcnn_status clcnn_net_add_residual_end(clcnn_net *net,
                                                  const clcnn_residual_desc *shortcut);

/* The net as a device-free graph (graph.h): a new graph (the caller frees it) whose
 * nodes are the layers (value and node names "layers.<i>", the input "input" of shape
 * (N, c, h, w)) and whose initializers hold the parameters' current values under their
 * checkpoint names. Every clcnn_net_add_* call emits its nodes; this copies them and
 * downloads the parameters. Run it with clcnn_plan_create. */
CLCNN_API clcnn_status clcnn_net_graph(const clcnn_net *net, clcnn_graph **out);

/* A net running g (which is copied; the caller keeps g): one input of shape (N, c, h, w) or
 * (N, features) with a symbolic batch N, one output. The parameters are g's float
 * initializers that ops with a gradient read (training plans, graph.h), named as in g, e.g.
 * an imported PyTorch model's "layer1.0.conv1.weight", starting with g's values; the other
 * float initializers (running statistics) are state. The clcnn_net_add_* builders refuse such
 * a net. Layers (clcnn_net_num_layers, clcnn_net_layer_info) are g's nodes in topological
 * order, kind the op type. An op without a backward in training plans fails at the first
 * training forward (CLCNN_ERR_UNSUPPORTED naming the node). */
CLCNN_API clcnn_status clcnn_net_from_graph(clcnn_device *dev, const clcnn_graph *g,
                                            clcnn_net **out);
/* What a layer is, for summaries: kind ("conv2d", "relu", "maxpool", ...), its output
 * shape per sample (c, h, w; h = w = 1 after flatten/linear) and parameter count. */
typedef struct clcnn_layer_info {
    char kind[32];
    char desc[128]; /* e.g. "96 x 11x11, stride 4" */
    int out_c, out_h, out_w;
    size_t params;
    int in_c, in_h, in_w; /* input shape per sample (for "residual": the branch output) */
    int block_start;      /* "residual": index of the block's first layer, else -1 */
    double flops;         /* forward work per sample: 2 per multiply-add of a conv, linear or
                           * projection shortcut; 0 for the other kinds */
} clcnn_layer_info;
CLCNN_API int clcnn_net_num_layers(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_layer_info(const clcnn_net *net, int i, clcnn_layer_info *out);
CLCNN_API size_t clcnn_net_param_count(const clcnn_net *net);

/* Parameters in a fixed order (the graph's initializers'), each with its checkpoint name
 * ("layers.0.weight", "layers.0.bias", "layers.1.running_mean", ...; a net from a graph:
 * the initializer names) and gradient (NULL for buffers such as running statistics that are
 * not trained). The tensors are views of the net's two flat arenas (value, gradient), valid
 * until a layer is added or the net is freed. */
typedef struct clcnn_param {
    const char *name;
    clcnn_tensor *value;
    clcnn_tensor *grad; /* NULL for non-trainable buffers */
} clcnn_param;
CLCNN_API int clcnn_net_num_params(const clcnn_net *net);
CLCNN_API clcnn_status clcnn_net_param(const clcnn_net *net, int i, clcnn_param *out);

typedef enum clcnn_init {
    CLCNN_INIT_HE = 0,     /* Kaiming normal (fan_in), for ReLU nets */
    CLCNN_INIT_XAVIER = 1, /* Glorot uniform */
} clcnn_init;
/* Initialise every weight from a seeded host RNG (same seed -> same weights on every
 * device); biases and beta to 0, gamma to 1, running stats to 0/1. */
CLCNN_API clcnn_status clcnn_net_init(clcnn_net *net, clcnn_init init, uint64_t seed);

/* For a new data set: replace the weight and bias of the last Gemm (or MatMul, with the Add
 * of a bias after it) feeding the net's output with new ones for `classes` outputs, drawn
 * as clcnn_net_init would (init, seed); every other parameter keeps its value. The output
 * must be that node's (or its Add's) output: CLCNN_ERR_UNSUPPORTED naming what is there
 * otherwise. */
CLCNN_API clcnn_status clcnn_net_replace_classifier(clcnn_net *net, int classes, clcnn_init init,
                                                    uint64_t seed);

/* The key of the dropout masks (clcnn_net_init sets it to its seed), restarting their
 * step counter; for nets whose weights come from elsewhere (clcnn_net_from_graph). */
CLCNN_API void clcnn_net_set_seed(clcnn_net *net, uint64_t seed);

/* Training mode (batch statistics, dropout on) or evaluation mode. Default: training.
 * Training forwards run the net's training plan (graph.h) for the batch size at hand (a new
 * batch size makes a new plan over the same parameters); evaluation runs an inference plan
 * of the current parameters (batch norm folded into convolutions), remade after they
 * change. */
CLCNN_API void clcnn_net_set_training(clcnn_net *net, int training);

/* Forward a batch x (n, c, h, w). *y (owned by the net) receives the output. x is not
 * copied: keep it alive and unchanged until the backward pass that follows. */
CLCNN_API clcnn_status clcnn_net_forward(clcnn_net *net, const clcnn_tensor *x,
                                         const clcnn_tensor **y);
/* Backward from dy (shaped like the last forward output): fills every gradient
 * (overwriting, not accumulating). Needs a forward in training mode before it. */
CLCNN_API clcnn_status clcnn_net_backward(clcnn_net *net, const clcnn_tensor *dy);

/* One training step for classification: forward, fused softmax cross-entropy with the
 * int32 labels (n), backward. Returns the mean loss and the number of correct
 * predictions (either pointer may be NULL). Does not update the weights. */
CLCNN_API clcnn_status clcnn_net_loss_backward(clcnn_net *net, const clcnn_tensor *x,
                                               const clcnn_tensor *labels, float *loss,
                                               int *correct);

/* ---- model zoo -------------------------------------------------------------------- */

/* The zoo's models: "bn" (the default of `clcnn train`) and "lenet" for 1x28x28 images and
 * 10 classes; "alexnet" (one tower, the perf suite's), "alexnet_grouped" (the paper's two
 * towers) at 3x227x227; "vgg16", "resnet50" (v1.5) and "mobilenet_v2" (width 1.0) at
 * 3x224x224; the ImageNet ones default to 1000 classes. */
typedef struct clcnn_model_info {
    const char *name;        /* static strings */
    const char *description; /* one line, for listings */
    int c, h, w;             /* the sample shape the model takes */
    int classes;             /* outputs when built with classes <= 0 */
} clcnn_model_info;
/* Describe model i (0-based) into *out: 1, or 0 (out untouched) past the last model. */
CLCNN_API int clcnn_model_get_info(int i, clcnn_model_info *out);
/* The index of the model called name (its description into *out when out is not NULL),
 * or -1 when there is none. */
CLCNN_API int clcnn_model_find(const char *name, clcnn_model_info *out);

/* Build a named model with fresh parameters (call clcnn_net_init before use), with
 * `classes` outputs (<= 0: the model's default). An unknown name is CLCNN_ERR_INVALID_ARG
 * listing the names. Building allocates the parameters only (VGG-16: 138 M, 553 MB). */
CLCNN_API clcnn_status clcnn_net_create_model(clcnn_device *dev, const char *name, int classes,
                                              clcnn_net **out);
/* The same model's first num_layers layers only (as clcnn_net_num_layers counts them; < 0:
 * all), with the whole model's parameter names: the net whose output is layer
 * num_layers-1's feature maps. A prefix ending inside a residual branch has no shortcut. */
CLCNN_API clcnn_status clcnn_net_create_model_prefix(clcnn_device *dev, const char *name,
                                                     int classes, int num_layers, clcnn_net **out);
/* The model names, for listings: name i (0-based), NULL past the last; *input_c/h/w (any
 * may be NULL) receive the model's sample shape. (clcnn_model_get_info says more.) */
CLCNN_API const char *clcnn_model_name(int i, int *input_c, int *input_h, int *input_w);

/* ---- optimizers -------------------------------------------------------------- */

typedef enum clcnn_optim_kind { CLCNN_OPTIM_SGD = 0, CLCNN_OPTIM_ADAM = 1 } clcnn_optim_kind;

typedef struct clcnn_optim_config {
    clcnn_optim_kind kind;
    float lr;
    float momentum;          /* SGD */
    float weight_decay;      /* L2, both */
    float beta1, beta2, eps; /* Adam */
} clcnn_optim_config;
/* SGD: lr 0.01, momentum 0.9; Adam: lr 1e-3, betas 0.9/0.999, eps 1e-8; no decay. */
CLCNN_API clcnn_optim_config clcnn_optim_default(clcnn_optim_kind kind);

typedef struct clcnn_optimizer clcnn_optimizer;
CLCNN_API clcnn_status clcnn_optimizer_create(clcnn_net *net, const clcnn_optim_config *cfg,
                                              clcnn_optimizer **out);
CLCNN_API void clcnn_optimizer_free(clcnn_optimizer *opt);
/* Update every trainable parameter from its gradient with learning rate lr. */
CLCNN_API clcnn_status clcnn_optimizer_step(clcnn_optimizer *opt, float lr);
CLCNN_API int64_t clcnn_optimizer_steps(const clcnn_optimizer *opt);

/* Learning-rate schedules: constant, step (x gamma every step_size steps), cosine
 * (from lr to min_lr over total_steps). */
typedef enum clcnn_schedule_kind {
    CLCNN_SCHEDULE_CONSTANT = 0,
    CLCNN_SCHEDULE_STEP = 1,
    CLCNN_SCHEDULE_COSINE = 2,
} clcnn_schedule_kind;
typedef struct clcnn_schedule {
    clcnn_schedule_kind kind;
    float lr, min_lr, gamma;
    int64_t step_size, total_steps;
} clcnn_schedule;
CLCNN_API float clcnn_schedule_lr(const clcnn_schedule *s, int64_t step);

/* ---- checkpoints (safetensors) --------------------------------------------------- */

/* Save every parameter and buffer (and, if opt is not NULL, the optimizer state as
 * "optim.<param name>.<slot>", slot "momentum" for SGD or "m"/"v" for Adam, plus its step
 * count) to path. metadata: NULL or a NULL-terminated list of key, value strings stored
 * in "__metadata__" (keys "optim.*" and "clcnn.*" are reserved). Writes a temporary file,
 * flushes and renames it: an interrupted save leaves the old file. A tensor holding NaN
 * or Inf (a diverged run) is CLCNN_ERR_NUMERIC naming it, and nothing is written. */
CLCNN_API clcnn_status clcnn_checkpoint_save(const clcnn_net *net, const clcnn_optimizer *opt,
                                             const char *path, const char *const *metadata);
/* Load into a net built with the same layers; validates the header length against the
 * file size, offsets (in range, non-overlapping), dtypes and shapes against the net.
 * Any problem is CLCNN_ERR_FORMAT (or CLCNN_ERR_SHAPE) naming the file and tensor; the
 * net is unchanged on failure. opt may be NULL (optimizer state is then ignored). */
CLCNN_API clcnn_status clcnn_checkpoint_load(clcnn_net *net, clcnn_optimizer *opt,
                                             const char *path);
/* Read one metadata value from a checkpoint's header into buf ("" if absent). */
CLCNN_API clcnn_status clcnn_checkpoint_metadata(const char *path, const char *key, char *buf,
                                                 size_t cap);

#ifdef __cplusplus
}
#endif
#endif
