/* Named models of the clcnn command, checkpoint metadata helpers, and the evaluation
 * loop shared by train, eval and the tests.
 *
 * A model is a table of layer specs; build_model() turns the first max_layers of them
 * into a clcnn_net (all of them when max_layers < 0), which lets `visualize` build
 * prefixes of a net to read every layer's feature maps. */
#ifndef CLCNN_TOOL_MODELS_H
#define CLCNN_TOOL_MODELS_H

#include <signal.h>
#include <stdio.h>

#include "clcnn/clcnn.h"

typedef enum spec_kind {
    SPEC_CONV, /* k filters r x r, stride, pad, groups; bias unless followed by batchnorm */
    SPEC_BN,   /* batch normalisation */
    SPEC_RELU,
    SPEC_MAXPOOL, /* r x r, stride */
    SPEC_FLATTEN,
    SPEC_LINEAR,  /* k outputs */
    SPEC_DROPOUT, /* p */
} spec_kind;

typedef struct layer_spec {
    spec_kind kind;
    int k, r, stride, pad, groups, bias;
    float p;
} layer_spec;

typedef struct model_def {
    const char *name;
    const char *help;
    int c, h, w; /* input per sample */
    int classes; /* outputs of the last layer */
    int fashion; /* 1: takes 1x28x28 Fashion-MNIST images (trainable by `clcnn train`) */
    const layer_spec *layers;
    int num_layers;
} model_def;

/* The model called name, or NULL. */
const model_def *find_model(const char *name);
/* Print "  name  help" lines for every model. */
void list_models(FILE *f, const char *indent);
/* A comma-separated list of model names into buf. */
const char *model_names(char *buf, size_t cap);

/* Build the first max_layers specs (all when < 0) of m on dev (weights uninitialised). */
clcnn_status build_model(clcnn_device *dev, const model_def *m, int max_layers, clcnn_net **out);

/* ---- checkpoints ---------------------------------------------------------------- */

/* Metadata value of key as a string/number; fallback when absent or unreadable. */
int ckpt_meta_str(const char *path, const char *key, char *buf, size_t cap);
double ckpt_meta_num(const char *path, const char *key, double fallback);

/* Open the model a checkpoint was saved from: reads "model" from its metadata unless
 * model_name is given, builds it on dev and loads the weights. Prints what is wrong to
 * stderr and returns non-zero on failure. */
int open_checkpoint_model(clcnn_device *dev, const char *path, const char *model_name,
                          const model_def **model, clcnn_net **net);

/* ---- evaluation ------------------------------------------------------------------- */

#define EVAL_MAX_CLASSES 16
#define EVAL_BATCH 250 /* fixed, so train and eval compute the same numbers */

typedef struct eval_result {
    size_t n, correct;
    double loss; /* mean cross-entropy */
    int classes;
    size_t confusion[EVAL_MAX_CLASSES][EVAL_MAX_CLASSES]; /* [true][predicted] */
} eval_result;

/* Evaluate net (in evaluation mode; training mode is restored after) on every sample of
 * ds. stop: when non-NULL and set, returns CLCNN_ERR_INTERRUPTED early. */
clcnn_status evaluate(clcnn_device *dev, clcnn_net *net, const clcnn_dataset *ds,
                      volatile sig_atomic_t *stop, eval_result *r);

/* Softmax of n logits into p (double precision, stable). */
void softmax(const float *logits, int n, double *p);

/* Open the device or print why not (and return NULL). */
clcnn_device *open_device_or_say(const char *selector);
/* Parse a whole string as a number within [lo, hi]; 0 on success, else prints
 * "prog: --opt: bad value" and returns 2 (the usage exit code). */
int parse_long(const char *prog, const char *opt, const char *s, long long lo, long long hi,
               long long *out);
int parse_float(const char *prog, const char *opt, const char *s, double lo, double hi,
                double *out);

/* Seconds from a monotonic clock. */
double now_seconds(void);

/* Print "prog: <status>: <detail>" to stderr; returns 1. */
int report(const char *prog, clcnn_status s);

#endif
