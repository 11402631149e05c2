/* Plain-C double-precision reference for conv2d (forward, backward data, backward
 * filter, bias gradient). Loops written for clarity, not speed: this is the
 * documentation of what the device kernels must compute.
 *
 * Shape key: x (n, c, h, w); wt (k, c/groups, r, s); y and dy (n, k, p, q). All arrays
 * are dense NCHW in double. */
#ifndef CLCNN_REFERENCE_CONV_H
#define CLCNN_REFERENCE_CONV_H

#include <stddef.h>

typedef struct ref_conv {
    int n, c, h, w;             /* input */
    int k, r, s;                /* weights (k, c/groups, r, s) */
    int p, q;                   /* output, from ref_conv_out */
    int stride_h, stride_w;     /* >= 1 */
    int pad_h, pad_w;           /* >= 0 */
    int dilation_h, dilation_w; /* >= 1 */
    int groups;                 /* divides c and k */
} ref_conv;

/* Fills cv->p and cv->q; returns 0 when the output would be empty. */
int ref_conv_out(ref_conv *cv);

size_t ref_conv_x_size(const ref_conv *cv); /* n*c*h*w */
size_t ref_conv_w_size(const ref_conv *cv); /* k*(c/groups)*r*s */
size_t ref_conv_y_size(const ref_conv *cv); /* n*k*p*q */

/* y = act(conv(x, wt) + b); b may be NULL; act: 0 none, 1 relu, 2 leaky relu (alpha). */
void ref_conv2d_forward(const ref_conv *cv, const double *x, const double *wt, const double *b,
                        int act, double alpha, double *y);
/* dx = d(sum(y * dy))/dx for the linear convolution (no activation). */
void ref_conv2d_backward_data(const ref_conv *cv, const double *dy, const double *wt, double *dx);
/* dw = d(sum(y * dy))/dw. */
void ref_conv2d_backward_filter(const ref_conv *cv, const double *x, const double *dy, double *dw);
/* db[k] = sum over n, p, q of dy. */
void ref_conv2d_bias_grad(const ref_conv *cv, const double *dy, double *db);

#endif
