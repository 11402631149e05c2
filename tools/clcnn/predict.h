/* clcnn predict's two paths, a checkpoint of the zoo (predict.c) and an ONNX model
 * (predict_onnx.c), and what they share. */
#ifndef CLCNN_TOOL_PREDICT_H
#define CLCNN_TOOL_PREDICT_H

#define PREDICT_PROG "clcnn predict"
#define PREDICT_MAX_BATCH 64 /* images per plan run of a model with a symbolic batch */

typedef struct predict_args {
    const char *model;  /* the ONNX file */
    const char *labels; /* NULL: class indices */
    const char *device;
    int size; /* 0: the model's input size */
    int top;
    int n_mean, n_std; /* 0: the defaults */
    double mean[3], std[3];
} predict_args;

/* Classify images[0..n) with an ONNX model; returns the exit code (1 when a file failed). */
int predict_onnx(const predict_args *a, int n, char *const *images);

/* Print the top k of p[0..classes) as "  index  name  percent" lines; names[i] may be NULL
 * (or names itself), printed as "class i". */
void predict_print_top(const double *p, int classes, int k, const char *const *names);

#endif
