/* Double-precision references for pool2d, linear, softmax / losses and batch
 * normalisation. See reference_ops.h. Plain loops, textbook formulas. */
#include "reference_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- pool2d ---------------------------------------------------------------------------- */

int ro_pool_out(const ro_pool *g, size_t h, size_t w, size_t *p, size_t *q) {
    long hp = (long)h + 2L * g->ph, wp = (long)w + 2L * g->pw;
    if (hp < g->kh || wp < g->kw) return 0;
    *p = (size_t)((hp - g->kh) / g->sh + 1);
    *q = (size_t)((wp - g->kw) / g->sw + 1);
    return 1;
}

/* Window of output (op, oq) clipped to the input, and the average divisor. */
static void window(const ro_pool *g, size_t h, size_t w, size_t op, size_t oq, long *h0, long *h1,
                   long *w0, long *w1, double *divisor) {
    long hs = (long)op * g->sh - g->ph, ws = (long)oq * g->sw - g->pw;
    long he = hs + g->kh, we = ws + g->kw;
    /* count_include_pad: the window clipped to the padded input (PyTorch) */
    long he_p = he < (long)h + g->ph ? he : (long)h + g->ph;
    long we_p = we < (long)w + g->pw ? we : (long)w + g->pw;
    double pad_count = (double)((he_p - hs) * (we_p - ws));
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > (long)h ? (long)h : he;
    *w1 = we > (long)w ? (long)w : we;
    double real_count = (double)((*h1 - *h0) * (*w1 - *w0));
    *divisor = g->mode == CLCNN_POOL_AVG_EXCLUDE ? real_count : pad_count;
}

static void pool_plane(const ro_pool *g, const double *x, size_t h, size_t w, size_t p, size_t q,
                       double *y, int *argmax) {
    for (size_t op = 0; op < p; op++)
        for (size_t oq = 0; oq < q; oq++) {
            long h0, h1, w0, w1;
            double div;
            window(g, h, w, op, oq, &h0, &h1, &w0, &w1, &div);
            if (g->mode == CLCNN_POOL_MAX) {
                double m = -INFINITY;
                long best = h0 * (long)w + w0;
                for (long i = h0; i < h1; i++)
                    for (long j = w0; j < w1; j++) {
                        double v = x[i * (long)w + j];
                        if (v > m || (isnan(v) && !isnan(m))) {
                            m = v;
                            best = i * (long)w + j;
                        }
                    }
                y[op * q + oq] = m;
                if (argmax) argmax[op * q + oq] = (int)best;
            } else {
                double s = 0;
                for (long i = h0; i < h1; i++)
                    for (long j = w0; j < w1; j++)
                        s += x[i * (long)w + j];
                y[op * q + oq] = s / div;
            }
        }
}

void ro_pool_forward(const ro_pool *g, const double *x, size_t n, size_t c, size_t h, size_t w,
                     double *y, int *argmax) {
    size_t p, q;
    if (!ro_pool_out(g, h, w, &p, &q)) return;
    for (size_t pl = 0; pl < n * c; pl++)
        pool_plane(g, x + pl * h * w, h, w, p, q, y + pl * p * q,
                   argmax ? argmax + pl * p * q : NULL);
}

void ro_pool_backward(const ro_pool *g, const double *x, const double *dy, size_t n, size_t c,
                      size_t h, size_t w, double *dx) {
    size_t p, q;
    if (!ro_pool_out(g, h, w, &p, &q)) return;
    memset(dx, 0, n * c * h * w * sizeof *dx);
    int *am = malloc(p * q * sizeof *am);
    double *y = malloc(p * q * sizeof *y);
    for (size_t pl = 0; pl < n * c; pl++) {
        const double *xp = x + pl * h * w, *dyp = dy + pl * p * q;
        double *dxp = dx + pl * h * w;
        if (g->mode == CLCNN_POOL_MAX) {
            pool_plane(g, xp, h, w, p, q, y, am);
            for (size_t o = 0; o < p * q; o++)
                dxp[am[o]] += dyp[o];
            continue;
        }
        for (size_t op = 0; op < p; op++)
            for (size_t oq = 0; oq < q; oq++) {
                long h0, h1, w0, w1;
                double div;
                window(g, h, w, op, oq, &h0, &h1, &w0, &w1, &div);
                for (long i = h0; i < h1; i++)
                    for (long j = w0; j < w1; j++)
                        dxp[i * (long)w + j] += dyp[op * q + oq] / div;
            }
    }
    free(am);
    free(y);
}

/* ---- linear ---------------------------------------------------------------------------- */

void ro_linear_forward(const double *x, const double *w, const double *b, size_t n, size_t in,
                       size_t k, double *y) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++) {
            double s = b ? b[j] : 0.0;
            for (size_t l = 0; l < in; l++)
                s += x[i * in + l] * w[j * in + l];
            y[i * k + j] = s;
        }
}

void ro_linear_backward(const double *x, const double *w, const double *dy, size_t n, size_t in,
                        size_t k, double *dx, double *dw, double *db) {
    if (dx)
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < in; l++) {
                double s = 0;
                for (size_t j = 0; j < k; j++)
                    s += dy[i * k + j] * w[j * in + l];
                dx[i * in + l] = s;
            }
    if (dw)
        for (size_t j = 0; j < k; j++)
            for (size_t l = 0; l < in; l++) {
                double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += dy[i * k + j] * x[i * in + l];
                dw[j * in + l] = s;
            }
    if (db)
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += dy[i * k + j];
            db[j] = s;
        }
}

/* ---- softmax and losses ------------------------------------------------------------------ */

void ro_softmax(const double *x, size_t n, size_t c, size_t inner, int log_out, double *y) {
    for (size_t i = 0; i < n; i++)
        for (size_t s = 0; s < inner; s++) {
            const double *xr = x + i * c * inner + s;
            double *yr = y + i * c * inner + s;
            double m = -INFINITY;
            for (size_t j = 0; j < c; j++)
                m = fmax(m, xr[j * inner]);
            double sum = 0;
            for (size_t j = 0; j < c; j++)
                sum += exp(xr[j * inner] - m);
            for (size_t j = 0; j < c; j++)
                yr[j * inner] =
                    log_out ? xr[j * inner] - m - log(sum) : exp(xr[j * inner] - m) / sum;
        }
}

double ro_softmax_xent(const double *logits, const int *labels, size_t n, size_t k,
                       double *dlogits) {
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const double *xr = logits + i * k;
        double m = -INFINITY;
        for (size_t j = 0; j < k; j++)
            m = fmax(m, xr[j]);
        double sum = 0;
        for (size_t j = 0; j < k; j++)
            sum += exp(xr[j] - m);
        int ok = labels[i] >= 0 && (size_t)labels[i] < k;
        total += ok ? m + log(sum) - xr[labels[i]] : NAN;
        if (dlogits)
            for (size_t j = 0; j < k; j++)
                dlogits[i * k + j] =
                    ok ? (exp(xr[j] - m) / sum - ((int)j == labels[i] ? 1.0 : 0.0)) / (double)n
                       : NAN;
    }
    return total / (double)n;
}

double ro_mse(const double *pred, const double *target, size_t numel, double *dpred) {
    double s = 0;
    for (size_t i = 0; i < numel; i++) {
        double d = pred[i] - target[i];
        s += d * d;
        if (dpred) dpred[i] = 2.0 * d / (double)numel;
    }
    return s / (double)numel;
}

/* ---- batch normalisation ------------------------------------------------------------------ */

#define AT(ptr, i, ch, s) (ptr)[((i)*c + (ch)) * hw + (s)]

void ro_bn_train(const double *x, size_t n, size_t c, size_t hw, const double *gamma,
                 const double *beta, double *rmean, double *rvar, double momentum, double eps,
                 double *y, double *mean, double *invstd) {
    double m = (double)(n * hw);
    for (size_t ch = 0; ch < c; ch++) {
        double mu = 0, var = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++)
                mu += AT(x, i, ch, s);
        mu /= m;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++)
                var += (AT(x, i, ch, s) - mu) * (AT(x, i, ch, s) - mu);
        double unbiased = var / (m - 1);
        var /= m;
        double inv = 1.0 / sqrt(var + eps);
        double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++)
                AT(y, i, ch, s) = (AT(x, i, ch, s) - mu) * inv * g + b;
        if (mean) mean[ch] = mu;
        if (invstd) invstd[ch] = inv;
        if (rmean) rmean[ch] = (1 - momentum) * rmean[ch] + momentum * mu;
        if (rvar) rvar[ch] = (1 - momentum) * rvar[ch] + momentum * unbiased;
    }
}

void ro_bn_infer(const double *x, size_t n, size_t c, size_t hw, const double *gamma,
                 const double *beta, const double *rmean, const double *rvar, double eps,
                 double *y) {
    for (size_t ch = 0; ch < c; ch++) {
        double inv = 1.0 / sqrt(rvar[ch] + eps);
        double g = gamma ? gamma[ch] : 1.0, b = beta ? beta[ch] : 0.0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++)
                AT(y, i, ch, s) = (AT(x, i, ch, s) - rmean[ch]) * inv * g + b;
    }
}

void ro_bn_backward(const double *x, const double *dy, size_t n, size_t c, size_t hw,
                    const double *gamma, const double *mean, const double *invstd, double *dx,
                    double *dgamma, double *dbeta) {
    double m = (double)(n * hw);
    for (size_t ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++) {
                double xhat = (AT(x, i, ch, s) - mean[ch]) * invstd[ch];
                sdy += AT(dy, i, ch, s);
                sdyx += AT(dy, i, ch, s) * xhat;
            }
        if (dbeta) dbeta[ch] = sdy;
        if (dgamma) dgamma[ch] = sdyx;
        if (!dx) continue;
        double g = gamma ? gamma[ch] : 1.0;
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < hw; s++) {
                double xhat = (AT(x, i, ch, s) - mean[ch]) * invstd[ch];
                AT(dx, i, ch, s) = g * invstd[ch] / m * (m * AT(dy, i, ch, s) - sdy - xhat * sdyx);
            }
    }
}

#undef AT

/* ---- helpers ------------------------------------------------------------------------------ */

double ro_central_diff(ro_scalar_fn f, void *ctx, double *p, double h) {
    double keep = *p;
    *p = keep + h;
    double fp = f(ctx);
    *p = keep - h;
    double fm = f(ctx);
    *p = keep;
    return (fp - fm) / (2 * h);
}

double *ro_to_double(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

clcnn_tensor *ro_tensor_at_offset(clcnn_device *dev, clcnn_dtype dtype, int ndim,
                                  const size_t *shape, size_t offset, clcnn_tensor **base) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    size_t total = numel + offset + 7; /* a tail after the view too */
    *base = NULL;
    if (clcnn_tensor_create(dev, dtype, 1, &total, base) != CLCNN_OK) return NULL;
    float *nan_fill = malloc(total * sizeof *nan_fill);
    for (size_t i = 0; i < total; i++)
        nan_fill[i] = NAN; /* also a garbage int32 */
    clcnn_tensor_upload(*base, nan_fill, total * sizeof *nan_fill);
    free(nan_fill);
    return ro_view_at(*base, ndim, shape, offset);
}

clcnn_tensor *ro_view_at(const clcnn_tensor *base, int ndim, const size_t *shape, size_t offset) {
    return cc_tensor_view_at(base, ndim, shape, offset);
}
