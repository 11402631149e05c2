/* Double-precision conv2d reference: the direct definition of a cross-correlation
 *   y[n,k,p,q] = b[k] + sum_{ci<c/groups, kr<r, ks<s} x[n, g*cpg+ci, ih, iw] * wt[k,ci,kr,ks]
 *   ih = p*stride_h - pad_h + kr*dilation_h,  iw = q*stride_w - pad_w + ks*dilation_w,
 *   g = k / (k/groups), out-of-range (ih, iw) read as zero,
 * and its two gradients written as scatters of the same loop nest (so they are an
 * independent formulation from the device's gather kernels). */
#include "reference_conv.h"

#include <string.h>

int ref_conv_out(ref_conv *cv) {
    int eh = cv->dilation_h * (cv->r - 1) + 1, ew = cv->dilation_w * (cv->s - 1) + 1;
    int hp = cv->h + 2 * cv->pad_h, wp = cv->w + 2 * cv->pad_w;
    if (hp < eh || wp < ew) return 0;
    cv->p = (hp - eh) / cv->stride_h + 1;
    cv->q = (wp - ew) / cv->stride_w + 1;
    return 1;
}

size_t ref_conv_x_size(const ref_conv *cv) {
    return (size_t)cv->n * cv->c * cv->h * cv->w;
}
size_t ref_conv_w_size(const ref_conv *cv) {
    return (size_t)cv->k * (cv->c / cv->groups) * cv->r * cv->s;
}
size_t ref_conv_y_size(const ref_conv *cv) {
    return (size_t)cv->n * cv->k * cv->p * cv->q;
}

/* Calls body(xi, wi, yi) for every (input element, weight, output) triple of the
 * convolution with an in-range input position. */
#define REF_CONV_LOOP(cv, body)                                                                    \
    do {                                                                                           \
        int cpg_ = (cv)->c / (cv)->groups, kpg_ = (cv)->k / (cv)->groups;                          \
        for (int ni = 0; ni < (cv)->n; ni++)                                                       \
            for (int ko = 0; ko < (cv)->k; ko++) {                                                 \
                int g_ = ko / kpg_;                                                                \
                for (int pi = 0; pi < (cv)->p; pi++)                                               \
                    for (int qi = 0; qi < (cv)->q; qi++) {                                         \
                        size_t yi = (((size_t)ni * (cv)->k + ko) * (cv)->p + pi) * (cv)->q + qi;   \
                        for (int ci = 0; ci < cpg_; ci++)                                          \
                            for (int kr = 0; kr < (cv)->r; kr++) {                                 \
                                int ih =                                                           \
                                    pi * (cv)->stride_h - (cv)->pad_h + kr * (cv)->dilation_h;     \
                                if (ih < 0 || ih >= (cv)->h) continue;                             \
                                for (int ks = 0; ks < (cv)->s; ks++) {                             \
                                    int iw =                                                       \
                                        qi * (cv)->stride_w - (cv)->pad_w + ks * (cv)->dilation_w; \
                                    if (iw < 0 || iw >= (cv)->w) continue;                         \
                                    size_t xi =                                                    \
                                        (((size_t)ni * (cv)->c + g_ * cpg_ + ci) * (cv)->h + ih) * \
                                            (cv)->w +                                              \
                                        iw;                                                        \
                                    size_t wi =                                                    \
                                        (((size_t)ko * cpg_ + ci) * (cv)->r + kr) * (cv)->s + ks;  \
                                    body;                                                          \
                                }                                                                  \
                            }                                                                      \
                    }                                                                              \
            }                                                                                      \
    } while (0)

void ref_conv2d_forward(const ref_conv *cv, const double *x, const double *wt, const double *b,
                        int act, double alpha, double *y) {
    size_t ny = ref_conv_y_size(cv);
    memset(y, 0, ny * sizeof *y);
    REF_CONV_LOOP(cv, y[yi] += x[xi] * wt[wi]);
    for (size_t i = 0; i < ny; i++) {
        int ko = (int)(i / ((size_t)cv->p * cv->q) % (size_t)cv->k);
        double v = y[i] + (b ? b[ko] : 0.0);
        if (act == 1 && v < 0) v = 0;
        if (act == 2 && v < 0) v *= alpha;
        y[i] = v;
    }
}

void ref_conv2d_backward_data(const ref_conv *cv, const double *dy, const double *wt, double *dx) {
    memset(dx, 0, ref_conv_x_size(cv) * sizeof *dx);
    REF_CONV_LOOP(cv, dx[xi] += dy[yi] * wt[wi]);
}

void ref_conv2d_backward_filter(const ref_conv *cv, const double *x, const double *dy, double *dw) {
    memset(dw, 0, ref_conv_w_size(cv) * sizeof *dw);
    REF_CONV_LOOP(cv, dw[wi] += dy[yi] * x[xi]);
}

void ref_conv2d_bias_grad(const ref_conv *cv, const double *dy, double *db) {
    size_t pq = (size_t)cv->p * cv->q;
    for (int ko = 0; ko < cv->k; ko++) {
        double sum = 0;
        for (int ni = 0; ni < cv->n; ni++)
            for (size_t j = 0; j < pq; j++)
                sum += dy[((size_t)ni * cv->k + ko) * pq + j];
        db[ko] = sum;
    }
}
