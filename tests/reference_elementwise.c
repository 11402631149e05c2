#include "reference_elementwise.h"

#include <math.h>

double ref_act(int act, double alpha, double x) {
    if (isnan(x)) return x;
    if (act == 1) return x > 0 ? x : 0.0;
    if (act == 2) return x > 0 ? x : alpha * x;
    return x;
}

double ref_act_grad(int act, double alpha, double x) {
    if (act == 1) return x > 0 ? 1.0 : 0.0;
    if (act == 2) return x > 0 ? 1.0 : alpha;
    return 1.0;
}

void ref_activation_forward(int act, double alpha, const float *x, size_t n, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = ref_act(act, alpha, x[i]);
}

void ref_activation_backward(int act, double alpha, const float *x, const float *dy, size_t n,
                             double *dx) {
    for (size_t i = 0; i < n; i++)
        dx[i] = (double)dy[i] * ref_act_grad(act, alpha, x[i]);
}

void ref_add(const float *a, const float *b, size_t n, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = (double)a[i] + (double)b[i];
}

void ref_axpby(double alpha, const float *x, double beta, const float *y0, size_t n, double *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = alpha * x[i] + (beta == 0 ? 0.0 : beta * (double)y0[i]);
}

/* SplitMix64 (Steele, Lea, Flood 2014), as in Vigna's reference splitmix64.c: the state
 * advances by the golden gamma, the output is the finalizer of the new state. */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void ref_dropout_mask(double p, uint64_t seed, uint64_t step, size_t n, double *mask) {
    uint64_t state = mix(seed ^ mix(step));
    uint64_t thresh = (uint64_t)floor(p * 4294967296.0);
    double scale = 1.0 / (1.0 - p);
    for (size_t i = 0; i < n; i++) {
        state += 0x9E3779B97F4A7C15ULL; /* next(): state += gamma; return mix(state) */
        mask[i] = (mix(state) >> 32) >= thresh ? scale : 0.0;
    }
}

void ref_sgd_step(double *p, const float *g, double *v, size_t n, double lr, double momentum,
                  double wd) {
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + wd * p[i];
        if (v) {
            v[i] = momentum * v[i] + gi;
            gi = v[i];
        }
        p[i] -= lr * gi;
    }
}

void ref_adam_step(double *p, const float *g, double *m, double *v, size_t n, double lr,
                   double beta1, double beta2, double eps, double wd, int t) {
    double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + wd * p[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        double mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}
