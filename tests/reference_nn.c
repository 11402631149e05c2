/* Double-precision reference of a sequential net; see reference_nn.h. Plain loops,
 * written for reading, not speed. */
#include "reference_nn.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* y (n, k, p, q) = conv(x (n, c, h, w), w (k, c/g, r, s)) + b */
static double *conv(const rn_layer *l, int n, int c, int h, int w, const double *x, int *pk,
                    int *pp, int *pq) {
    const clcnn_conv2d_desc *d = &l->conv;
    int k = l->k, r = l->r, s = l->s, g = d->groups, cg = c / g, kg = k / g;
    int p = (h + 2 * d->pad_h - d->dilation_h * (r - 1) - 1) / d->stride_h + 1;
    int q = (w + 2 * d->pad_w - d->dilation_w * (s - 1) - 1) / d->stride_w + 1;
    double *y = calloc((size_t)n * k * p * q, sizeof *y);
    for (int ni = 0; ni < n; ni++)
        for (int ki = 0; ki < k; ki++)
            for (int pi = 0; pi < p; pi++)
                for (int qi = 0; qi < q; qi++) {
                    double acc = l->b ? l->b[ki] : 0.0;
                    int grp = ki / kg;
                    for (int ci = 0; ci < cg; ci++)
                        for (int ri = 0; ri < r; ri++)
                            for (int si = 0; si < s; si++) {
                                int hi = pi * d->stride_h - d->pad_h + ri * d->dilation_h;
                                int wi = qi * d->stride_w - d->pad_w + si * d->dilation_w;
                                if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                                int cx = grp * cg + ci;
                                acc += x[(((size_t)ni * c + cx) * h + hi) * w + wi] *
                                       l->w[(((size_t)ki * cg + ci) * r + ri) * s + si];
                            }
                    y[(((size_t)ni * k + ki) * p + pi) * q + qi] = acc;
                }
    *pk = k;
    *pp = p;
    *pq = q;
    return y;
}

static double *pool(const rn_layer *l, int n, int c, int h, int w, const double *x, int *pp,
                    int *pq) {
    clcnn_pool2d_desc d = l->pool;
    if (d.global) {
        d.kernel_h = h;
        d.kernel_w = w;
        d.stride_h = d.stride_w = 1;
        d.pad_h = d.pad_w = 0;
    }
    int p = (h + 2 * d.pad_h - d.kernel_h) / d.stride_h + 1;
    int q = (w + 2 * d.pad_w - d.kernel_w) / d.stride_w + 1;
    double *y = calloc((size_t)n * c * p * q, sizeof *y);
    for (int ni = 0; ni < n; ni++)
        for (int ci = 0; ci < c; ci++)
            for (int pi = 0; pi < p; pi++)
                for (int qi = 0; qi < q; qi++) {
                    double mx = -DBL_MAX, sum = 0.0;
                    int cnt = 0;
                    for (int a = 0; a < d.kernel_h; a++)
                        for (int b = 0; b < d.kernel_w; b++) {
                            int hi = pi * d.stride_h - d.pad_h + a,
                                wi = qi * d.stride_w - d.pad_w + b;
                            if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                            double v = x[(((size_t)ni * c + ci) * h + hi) * w + wi];
                            if (v > mx) mx = v;
                            sum += v;
                            cnt++;
                        }
                    double out = d.mode == CLCNN_POOL_MAX   ? mx
                                 : d.mode == CLCNN_POOL_AVG ? sum / (d.kernel_h * d.kernel_w)
                                                            : sum / cnt;
                    y[(((size_t)ni * c + ci) * p + pi) * q + qi] = out;
                }
    *pp = p;
    *pq = q;
    return y;
}

/* per channel over (n, h*w) */
static double *batchnorm(const rn_layer *l, int n, int c, int hw, const double *x) {
    double *y = malloc((size_t)n * c * hw * sizeof *y);
    for (int ci = 0; ci < c; ci++) {
        double mean, var;
        if (l->eval) {
            mean = l->rmean[ci];
            var = l->rvar[ci];
        } else {
            double s = 0, ss = 0;
            for (int ni = 0; ni < n; ni++)
                for (int i = 0; i < hw; i++)
                    s += x[((size_t)ni * c + ci) * hw + i];
            mean = s / ((double)n * hw);
            for (int ni = 0; ni < n; ni++)
                for (int i = 0; i < hw; i++) {
                    double dd = x[((size_t)ni * c + ci) * hw + i] - mean;
                    ss += dd * dd;
                }
            var = ss / ((double)n * hw);
        }
        double inv = 1.0 / sqrt(var + l->eps);
        for (int ni = 0; ni < n; ni++)
            for (int i = 0; i < hw; i++) {
                size_t j = ((size_t)ni * c + ci) * hw + i;
                y[j] = (x[j] - mean) * inv * l->w[ci] + l->b[ci];
            }
    }
    return y;
}

double *rn_forward(const rn_layer *L, int nl, int n, int c, int h, int w, const double *x, int *oc,
                   int *oh, int *ow) {
    size_t cnt = (size_t)n * c * h * w;
    double *cur = malloc(cnt * sizeof *cur);
    memcpy(cur, x, cnt * sizeof *cur);
    for (int li = 0; li < nl; li++) {
        const rn_layer *l = &L[li];
        double *next = NULL;
        size_t m = (size_t)n * c * h * w;
        switch (l->kind) {
        case RN_CONV:
            next = conv(l, n, c, h, w, cur, &c, &h, &w);
            break;
        case RN_POOL:
            next = pool(l, n, c, h, w, cur, &h, &w);
            break;
        case RN_ACT:
            next = malloc(m * sizeof *next);
            for (size_t i = 0; i < m; i++) {
                double v = cur[i];
                next[i] = l->act == CLCNN_ACT_RELU         ? (v > 0 ? v : 0)
                          : l->act == CLCNN_ACT_LEAKY_RELU ? (v > 0 ? v : l->alpha * v)
                                                           : v;
            }
            break;
        case RN_BN:
            next = batchnorm(l, n, c, h * w, cur);
            break;
        case RN_DROPOUT:
            next = malloc(m * sizeof *next);
            for (size_t i = 0; i < m; i++)
                next[i] = l->mask ? cur[i] * l->mask[i] : cur[i];
            break;
        case RN_FLATTEN:
            c = c * h * w;
            h = w = 1;
            break;
        case RN_LINEAR: {
            int in = c * h * w;
            next = malloc((size_t)n * l->out * sizeof *next);
            for (int ni = 0; ni < n; ni++)
                for (int o = 0; o < l->out; o++) {
                    double acc = l->b ? l->b[o] : 0.0;
                    for (int i = 0; i < in; i++)
                        acc += cur[(size_t)ni * in + i] * l->w[(size_t)o * in + i];
                    next[(size_t)ni * l->out + o] = acc;
                }
            c = l->out;
            h = w = 1;
            break;
        }
        }
        if (next) {
            free(cur);
            cur = next;
        }
    }
    *oc = c;
    *oh = h;
    *ow = w;
    return cur;
}

double rn_softmax_ce(const double *logits, int n, int k, const int *labels) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const double *row = logits + (size_t)i * k;
        double mx = row[0];
        for (int j = 1; j < k; j++)
            mx = row[j] > mx ? row[j] : mx;
        double se = 0;
        for (int j = 0; j < k; j++)
            se += exp(row[j] - mx);
        total += log(se) + mx - row[labels[i]];
    }
    return total / n;
}

double rn_loss(const rn_layer *L, int nl, int n, int c, int h, int w, const double *x,
               const int *labels) {
    int oc, oh, ow;
    double *y = rn_forward(L, nl, n, c, h, w, x, &oc, &oh, &ow);
    double loss = rn_softmax_ce(y, n, oc * oh * ow, labels);
    free(y);
    return loss;
}

void rn_params_from_net(const clcnn_net *net, rn_layer *L, int nl, rn_params *out) {
    int np = clcnn_net_num_params(net);
    out->n = np;
    out->v = calloc((size_t)np, sizeof *out->v);
    out->numel = calloc((size_t)np, sizeof *out->numel);
    out->names = calloc((size_t)np, sizeof *out->names);
    out->trainable = calloc((size_t)np, sizeof *out->trainable);
    for (int i = 0; i < np; i++) {
        clcnn_param p;
        if (clcnn_net_param(net, i, &p) != CLCNN_OK) abort();
        size_t m = clcnn_tensor_numel(p.value);
        float *f = malloc(m * sizeof *f);
        if (clcnn_tensor_download(p.value, f, m * sizeof *f) != CLCNN_OK) abort();
        out->v[i] = malloc(m * sizeof(double));
        for (size_t j = 0; j < m; j++)
            out->v[i][j] = f[j];
        free(f);
        out->numel[i] = m;
        out->names[i] = p.name;
        out->trainable[i] = p.grad != NULL;
        int idx = -1;
        char suffix[32] = "";
        if (sscanf(p.name, "layers.%d.%31s", &idx, suffix) != 2 || idx < 0 || idx >= nl) abort();
        if (strcmp(suffix, "weight") == 0)
            L[idx].w = out->v[i];
        else if (strcmp(suffix, "bias") == 0)
            L[idx].b = out->v[i];
        else if (strcmp(suffix, "running_mean") == 0)
            L[idx].rmean = out->v[i];
        else if (strcmp(suffix, "running_var") == 0)
            L[idx].rvar = out->v[i];
        else
            abort();
    }
}

void rn_params_free(rn_params *p) {
    for (int i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    free(p->numel);
    free(p->names);
    free(p->trainable);
    p->n = 0;
}
