/* Plain-C double-precision references for the element-wise ops (activations, add,
 * axpby, dropout, SGD, Adam). Inputs are the float values the device saw; results
 * are double, to be compared with tu_close. Written from the definitions (PyTorch
 * semantics), not from the kernels. */
#ifndef CLCNN_REFERENCE_ELEMENTWISE_H
#define CLCNN_REFERENCE_ELEMENTWISE_H

#include <stddef.h>
#include <stdint.h>

/* act: 0 identity, 1 ReLU, 2 leaky ReLU with slope alpha (x > 0 ? x : alpha * x).
 * NaN propagates through the forward pass. */
double ref_act(int act, double alpha, double x);
/* d act / dx at x (ReLU: 0 at x <= 0; leaky: alpha at x <= 0). */
double ref_act_grad(int act, double alpha, double x);
void ref_activation_forward(int act, double alpha, const float *x, size_t n, double *y);
void ref_activation_backward(int act, double alpha, const float *x, const float *dy, size_t n,
                             double *dx);

void ref_add(const float *a, const float *b, size_t n, double *y);
/* y = alpha * x + beta * y0 (beta == 0: y0 is not read). */
void ref_axpby(double alpha, const float *x, double beta, const float *y0, size_t n, double *y);

/* The dropout mask of clcnn_dropout_forward, recomputed from its definition:
 * element i is kept when the high 32 bits of the i-th SplitMix64 output from
 * key = splitmix64(seed ^ splitmix64(step)) are >= floor(p * 2^32); kept elements get
 * 1 / (1 - p), dropped ones 0. */
void ref_dropout_mask(double p, uint64_t seed, uint64_t step, size_t n, double *mask);

/* One optimizer step in double on double state (PyTorch semantics).
 * SGD: v may be NULL (then p -= lr * (g + wd * p)). */
void ref_sgd_step(double *p, const float *g, double *v, size_t n, double lr, double momentum,
                  double wd);
void ref_adam_step(double *p, const float *g, double *m, double *v, size_t n, double lr,
                   double beta1, double beta2, double eps, double wd, int t);

#endif
