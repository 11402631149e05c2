/* Helpers of the clcnn command: model lookup in the library's zoo (clcnn_model_find,
 * clcnn_net_create_model), checkpoint metadata, the evaluation loop shared by train and
 * eval, option parsing and error reports. */
#ifndef CLCNN_TOOL_MODELS_H
#define CLCNN_TOOL_MODELS_H

#include <signal.h>
#include <stdio.h>

#include "clcnn/clcnn.h"

/* The zoo model called name into *m; else prints "prog: unknown model 'name' (models:
 * ...)" to stderr and returns 0. */
int find_model_or_say(const char *prog, const char *name, clcnn_model_info *m);
/* Print "<indent>name  CxHxW, N classes: description" lines for every zoo model. */
void list_models(FILE *f, const char *indent);
/* A comma-separated list of the zoo's model names into buf. */
const char *model_names(char *buf, size_t cap);

/* ---- checkpoints ---------------------------------------------------------------- */

/* Metadata value of key as a string/number; fallback when absent or unreadable. */
int ckpt_meta_str(const char *path, const char *key, char *buf, size_t cap);
double ckpt_meta_num(const char *path, const char *key, double fallback);

/* Whether a --model argument names an ONNX file (ends in .onnx) rather than a zoo model. */
int is_onnx_path(const char *name);
/* Build model `name` on dev: a zoo model (fresh parameters; classes <= 0: its default) or an
 * ONNX file (its initializers as the weights; classes > 0 and unlike the file's: the last
 * Gemm/MatMul replaced, drawn from init and seed). *m gets its name (name itself for a file),
 * sample shape and classes. Prints what is wrong to stderr and returns non-zero on failure. */
int open_model(const char *prog, clcnn_device *dev, const char *name, int classes, clcnn_init init,
               uint64_t seed, clcnn_model_info *m, clcnn_net **net);
/* Open the model a checkpoint was saved from: reads "model" from its metadata (a zoo name or
 * an ONNX file's path) unless model_name is given, builds it on dev with the checkpoint's
 * "classes" (else the model's default; model->classes says which) and loads the weights.
 * Prints what is wrong to stderr and returns non-zero on failure. */
int open_checkpoint_model(clcnn_device *dev, const char *path, const char *model_name,
                          clcnn_model_info *model, clcnn_net **net);

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
