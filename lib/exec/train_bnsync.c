/* BatchNormalization in training mode through a plan's clcnn_bn_sync (synchronised batch
 * norm, docs/distributed.md): the node's statistics and backward sums go through the
 * callbacks, which may replace them by those of a larger batch. On the host in fp64: x (and
 * dy) are downloaded, y (and dx, dscale, dB) uploaded, the running statistics updated here.
 * The saved mean and 1/std are the float values forward normalised with; backward reads
 * them back, so both directions use the same numbers. */
#include "exec/train_internal.h"

#include <math.h>
#include <stdlib.h>

#define T(v) (p->vals[(v)].t)
#define G(v) (p->vals[(v)].g)

/* Host buffers of one call: x, a second (n, c, hw) buffer, and per channel the double
 * statistics and float parameters. */
typedef struct bn_host {
    size_t n, c, hw, numel;
    float *x, *y;
    double *a, *b;             /* forward: mean, m2; backward: sum dy, sum dy xhat */
    float *gamma, *mean, *inv; /* per channel */
    float *r0, *r1;            /* per channel: running mean and variance, or dscale and dB */
} bn_host;

static void host_free(bn_host *h) {
    free(h->x);
    free(h->y);
    free(h->a);
    free(h->b);
    free(h->gamma);
    free(h->mean);
    free(h->inv);
    free(h->r0);
    free(h->r1);
}

static clcnn_status host_alloc(bn_host *h, const clcnn_tensor *x) {
    h->numel = clcnn_tensor_numel(x);
    h->n = clcnn_tensor_shape(x)[0];
    h->c = clcnn_tensor_shape(x)[1];
    h->hw = h->numel / (h->n * h->c);
    h->x = malloc(h->numel * sizeof *h->x);
    h->y = malloc(h->numel * sizeof *h->y);
    h->a = calloc(h->c, sizeof *h->a);
    h->b = calloc(h->c, sizeof *h->b);
    h->gamma = malloc(h->c * sizeof *h->gamma);
    h->mean = malloc(h->c * sizeof *h->mean);
    h->inv = malloc(h->c * sizeof *h->inv);
    h->r0 = malloc(h->c * sizeof *h->r0);
    h->r1 = malloc(h->c * sizeof *h->r1);
    if (h->x && h->y && h->a && h->b && h->gamma && h->mean && h->inv && h->r0 && h->r1)
        return CLCNN_OK;
    host_free(h);
    return cc_fail(CLCNN_ERR_OUT_OF_MEMORY,
                   "synchronised batch norm: out of host memory for %zu values", h->numel);
}

#define AT(h, i, ch, j) ((((i) * (h)->c) + (ch)) * (h)->hw + (j))

/* Per channel mean and M2 of x, in fp64, two passes in index order. */
static void moments(const bn_host *h, double *mean, double *m2) {
    double cnt = (double)(h->n * h->hw);
    for (size_t ch = 0; ch < h->c; ch++) {
        double s = 0.0, q = 0.0;
        for (size_t i = 0; i < h->n; i++)
            for (size_t j = 0; j < h->hw; j++)
                s += (double)h->x[AT(h, i, ch, j)];
        double mu = s / cnt;
        for (size_t i = 0; i < h->n; i++)
            for (size_t j = 0; j < h->hw; j++) {
                double d = (double)h->x[AT(h, i, ch, j)] - mu;
                q += d * d;
            }
        mean[ch] = mu;
        m2[ch] = q;
    }
}

static clcnn_status bn_forward_host(clcnn_train_plan *p, cc_tnode *n, bn_host *h) {
    const clcnn_bn_sync *sy = p->opts.bn_sync;
    size_t cb = h->c * sizeof(float);
    CC_TRY(clcnn_tensor_download(T(n->in[0]), h->x, h->numel * sizeof(float)));
    CC_TRY(clcnn_tensor_download(T(n->in[1]), h->gamma, cb));
    CC_TRY(clcnn_tensor_download(T(n->in[2]), h->inv, cb)); /* B, for now */
    CC_TRY(clcnn_tensor_download(T(n->in[3]), h->r0, cb));
    CC_TRY(clcnn_tensor_download(T(n->in[4]), h->r1, cb));
    moments(h, h->a, h->b);
    double count = (double)(h->n * h->hw);
    CC_TRY(sy->stats(sy->ctx, n->bn_layer, h->c, &count, h->a, h->b));
    if (!(count >= 1.0))
        return cc_fail(CLCNN_ERR_INVALID_ARG,
                       "synchronised batch norm: layer %d's statistics cover %g values per "
                       "channel (at least 1 needed)",
                       n->bn_layer, count);
    n->bn_count = count;
    double m = (double)n->a.momentum; /* ONNX: running = m running + (1 - m) batch */
    for (size_t ch = 0; ch < h->c; ch++) {
        float beta = h->inv[ch];
        h->mean[ch] = (float)h->a[ch];
        h->inv[ch] = (float)(1.0 / sqrt(h->b[ch] / count + (double)n->a.epsilon));
        h->r0[ch] = (float)(m * h->r0[ch] + (1.0 - m) * h->a[ch]);
        h->r1[ch] = (float)(m * h->r1[ch] + (1.0 - m) * (h->b[ch] / fmax(count - 1.0, 1.0)));
        double mu = h->mean[ch], gi = (double)h->inv[ch] * h->gamma[ch];
        for (size_t i = 0; i < h->n; i++)
            for (size_t j = 0; j < h->hw; j++) {
                size_t k = AT(h, i, ch, j);
                h->y[k] = (float)(((double)h->x[k] - mu) * gi + beta);
            }
    }
    CC_TRY(clcnn_tensor_upload(T(n->out[0]), h->y, h->numel * sizeof(float)));
    CC_TRY(clcnn_tensor_upload(n->save[0], h->mean, cb));
    CC_TRY(clcnn_tensor_upload(n->save[1], h->inv, cb));
    CC_TRY(clcnn_tensor_upload(T(n->in[3]), h->r0, cb));
    return clcnn_tensor_upload(T(n->in[4]), h->r1, cb);
}

clcnn_status cc_train_bn_sync_forward(clcnn_train_plan *p, cc_tnode *n) {
    bn_host h = {0};
    CC_TRY(host_alloc(&h, T(n->in[0])));
    clcnn_status s = bn_forward_host(p, n, &h);
    host_free(&h);
    return s;
}

static clcnn_status bn_backward_host(clcnn_train_plan *p, cc_tnode *n, bn_host *h) {
    const clcnn_bn_sync *sy = p->opts.bn_sync;
    size_t cb = h->c * sizeof(float);
    CC_TRY(clcnn_tensor_download(T(n->in[0]), h->x, h->numel * sizeof(float)));
    CC_TRY(clcnn_tensor_download(G(n->out[0]), h->y, h->numel * sizeof(float)));
    CC_TRY(clcnn_tensor_download(T(n->in[1]), h->gamma, cb));
    CC_TRY(clcnn_tensor_download(n->save[0], h->mean, cb));
    CC_TRY(clcnn_tensor_download(n->save[1], h->inv, cb));
    for (size_t ch = 0; ch < h->c; ch++) {
        double s1 = 0.0, s2 = 0.0, mu = h->mean[ch], inv = h->inv[ch];
        for (size_t i = 0; i < h->n; i++)
            for (size_t j = 0; j < h->hw; j++) {
                size_t k = AT(h, i, ch, j);
                s1 += (double)h->y[k];
                s2 += (double)h->y[k] * (((double)h->x[k] - mu) * inv);
            }
        h->a[ch] = s1;
        h->b[ch] = s2;
        h->r0[ch] = (float)s2; /* dscale and dB: this batch's own */
        h->r1[ch] = (float)s1;
    }
    CC_TRY(sy->grads(sy->ctx, n->bn_layer, h->c, h->a, h->b));
    if (n->dst[1]) CC_TRY(clcnn_tensor_upload(n->dst[1], h->r0, cb));
    if (n->dst[2]) CC_TRY(clcnn_tensor_upload(n->dst[2], h->r1, cb));
    if (!n->dst[0]) return CLCNN_OK;
    double cnt = n->bn_count;
    for (size_t ch = 0; ch < h->c; ch++) {
        double mu = h->mean[ch], inv = h->inv[ch], gi = inv * h->gamma[ch];
        double a = h->a[ch] / cnt, b = h->b[ch] / cnt;
        for (size_t i = 0; i < h->n; i++)
            for (size_t j = 0; j < h->hw; j++) {
                size_t k = AT(h, i, ch, j);
                double xhat = ((double)h->x[k] - mu) * inv;
                h->y[k] = (float)(gi * ((double)h->y[k] - a - xhat * b));
            }
    }
    return clcnn_tensor_upload(n->dst[0], h->y, h->numel * sizeof(float));
}

clcnn_status cc_train_bn_sync_backward(clcnn_train_plan *p, cc_tnode *n) {
    bn_host h = {0};
    CC_TRY(host_alloc(&h, T(n->in[0])));
    clcnn_status s = bn_backward_host(p, n, &h);
    host_free(&h);
    return s;
}
