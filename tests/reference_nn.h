/* A plain-C, double-precision reference of a sequential net (the layers of nn.h) and of
 * the softmax cross-entropy loss, for the nn tests: forward only; gradients come from
 * central finite differences of rn_loss in double.
 *
 * Layouts as in clcnn: x (n, c, h, w) row-major; conv weights (k, c/groups, r, s);
 * linear weights (out, in) with in = c*h*w of the layer input (NCHW order, i.e. what a
 * flatten gives). */
#ifndef CLCNN_REFERENCE_NN_H
#define CLCNN_REFERENCE_NN_H

#include "clcnn/clcnn.h"

typedef enum rn_kind { RN_CONV, RN_ACT, RN_POOL, RN_BN, RN_DROPOUT, RN_FLATTEN, RN_LINEAR } rn_kind;

typedef struct rn_layer {
    rn_kind kind;
    clcnn_conv2d_desc conv; /* conv: k filters r x s */
    int k, r, s;
    clcnn_activation act; /* activation */
    double alpha;
    clcnn_pool2d_desc pool; /* pool */
    double eps;             /* batchnorm: batch statistics (biased variance) unless eval */
    int eval;               /* batchnorm: use rmean/rvar instead */
    const double *rmean, *rvar;
    const double *mask;  /* dropout: per-element multiplier (0 or 1/(1-p)); NULL = identity */
    int out;             /* linear: output features */
    const double *w, *b; /* weight/bias, or gamma/beta for batchnorm; b may be NULL */
} rn_layer;

/* Runs the layers on x (n, c, h, w); returns a malloc'd output (n, oc, oh, ow). */
double *rn_forward(const rn_layer *L, int nl, int n, int c, int h, int w, const double *x, int *oc,
                   int *oh, int *ow);
/* Mean over the batch of -log softmax(logits)[label]; logits (n, k). */
double rn_softmax_ce(const double *logits, int n, int k, const int *labels);
/* rn_forward + rn_softmax_ce (the net must end in k features per sample). */
double rn_loss(const rn_layer *L, int nl, int n, int c, int h, int w, const double *x,
               const int *labels);

/* The parameters of a device net downloaded as double arrays and wired into the
 * reference layers by name ("layers.<i>.weight" -> L[i].w, ".bias" -> L[i].b,
 * ".running_mean" -> L[i].rmean, ".running_var" -> L[i].rvar). Perturbing v[i][j] then
 * changes what rn_loss computes. */
typedef struct rn_params {
    int n;
    double **v;
    size_t *numel;
    const char **names;
    int *trainable;
} rn_params;
void rn_params_from_net(const clcnn_net *net, rn_layer *L, int nl, rn_params *out);
void rn_params_free(rn_params *p);

#endif
