/* Synchronised batch norm for the data-parallel trainer (docs/distributed.md).
 *
 * Every micro-batch still runs alone through its replica's plan (so its gradient, and the
 * result, do not depend on the replica count); the plan's batch-norm nodes hand their
 * per-channel partial statistics to the callbacks here. Layer j's global statistics need
 * every micro-batch's activations at layer j, which need layers below j's global ones, so
 * a step runs in passes:
 *  - forward pass j = 0 .. nbn-1: each replica runs the forward of its micro-batches,
 *    layers < j normalising with the global statistics and layer j reporting its
 *    (count, mean, M2) into slot m; after a barrier replica 0 combines the M slots with
 *    Chan's formula in fp64 in micro-batch order; a barrier;
 *  - backward pass q = nbn-1 .. 0: forward and backward of each micro-batch, layers > q
 *    using the global sums (sum dy, sum dy xhat), layer q reporting its own; combined in
 *    micro-batch order the same way;
 *  - the step's usual pass, every layer global.
 * So a step costs 2 nbn + 1 forwards and nbn + 1 backwards per micro-batch (local: 1
 * and 1). Every micro-batch's loss is the mean over its b samples, so its dy is M times
 * the global loss's; the global sums are too, its input gradient is M times the global
 * one and the reduction's division by M makes it exact. Over MPI, each rank's replica 0
 * gathers every rank's partials before combining (MPI_Iallgather with the watchdog). */
#include "dist/trainer_internal.h"

#include <stdlib.h>
#include <string.h>

static void layer_free(cc_bn_layer *l) {
    if (!l) return;
    free(l->count);
    free(l->mean);
    free(l->m2);
    free(l->sdy);
    free(l->sdx);
    free(l->gmean);
    free(l->gm2);
    free(l->gsdy);
    free(l->gsdx);
    free(l);
}

void cc_dist_bn_sync_free(clcnn_dist_trainer *t) {
    for (int j = 0; j < CC_DIST_MAX_BN; j++)
        layer_free(t->bn[j]);
    if (t->cfg.bn_sync) pthread_mutex_destroy(&t->bn_mu);
}

static cc_bn_layer *layer_new(size_t M, size_t c) {
    cc_bn_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->c = c;
    l->count = calloc(M, sizeof(double));
    l->mean = calloc(M * c, sizeof(double));
    l->m2 = calloc(M * c, sizeof(double));
    l->sdy = calloc(M * c, sizeof(double));
    l->sdx = calloc(M * c, sizeof(double));
    l->gmean = calloc(c, sizeof(double));
    l->gm2 = calloc(c, sizeof(double));
    l->gsdy = calloc(c, sizeof(double));
    l->gsdx = calloc(c, sizeof(double));
    if (l->count && l->mean && l->m2 && l->sdy && l->sdx && l->gmean && l->gm2 && l->gsdy &&
        l->gsdx)
        return l;
    layer_free(l);
    return NULL;
}

/* Layer `layer` of c channels, made when first seen. */
static clcnn_status layer_get(clcnn_dist_trainer *t, int layer, size_t c, cc_bn_layer **out) {
    CC_RETURN_IF(layer < 0 || layer >= CC_DIST_MAX_BN, CLCNN_ERR_UNSUPPORTED,
                 "dist: synchronised batch norm supports at most %d batch-norm layers",
                 CC_DIST_MAX_BN);
    pthread_mutex_lock(&t->bn_mu);
    if (!t->bn[layer]) t->bn[layer] = layer_new(t->M, c);
    cc_bn_layer *l = t->bn[layer];
    if (l && layer >= t->nbn) t->nbn = layer + 1;
    pthread_mutex_unlock(&t->bn_mu);
    CC_RETURN_IF(!l, CLCNN_ERR_OUT_OF_MEMORY,
                 "dist: out of host memory for batch-norm layer %d's statistics", layer);
    CC_RETURN_IF(l->c != c, CLCNN_ERR_DIST,
                 "dist: batch-norm layer %d has %zu channels in one plan and %zu in another", layer,
                 c, l->c);
    *out = l;
    return CLCNN_OK;
}

static clcnn_status sync_stats(void *ctx, int layer, size_t c, double *count, double *mean,
                               double *m2) {
    cc_replica *rp = ctx;
    cc_bn_layer *l = NULL;
    CC_TRY(layer_get(rp->t, layer, c, &l));
    size_t m = rp->cur_m, cb = c * sizeof(double);
    if (layer < rp->fwd_known) {
        *count = l->gcount;
        memcpy(mean, l->gmean, cb);
        memcpy(m2, l->gm2, cb);
    } else if (layer == rp->fwd_known) {
        l->count[m] = *count;
        memcpy(l->mean + m * c, mean, cb);
        memcpy(l->m2 + m * c, m2, cb);
    }
    return CLCNN_OK;
}

static clcnn_status sync_grads(void *ctx, int layer, size_t c, double *sum_dy, double *sum_dyxhat) {
    cc_replica *rp = ctx;
    cc_bn_layer *l = NULL;
    CC_TRY(layer_get(rp->t, layer, c, &l));
    size_t m = rp->cur_m, cb = c * sizeof(double);
    if (layer > rp->bwd_collect) {
        memcpy(sum_dy, l->gsdy, cb);
        memcpy(sum_dyxhat, l->gsdx, cb);
    } else if (layer == rp->bwd_collect) {
        memcpy(l->sdy + m * c, sum_dy, cb);
        memcpy(l->sdx + m * c, sum_dyxhat, cb);
    }
    return CLCNN_OK;
}

void cc_dist_bn_sync_init(cc_replica *rp) {
    rp->sync.ctx = rp;
    rp->sync.stats = sync_stats;
    rp->sync.grads = sync_grads;
    rp->fwd_known = CC_DIST_MAX_BN;
    rp->bwd_collect = -1;
}

/* Chan et al.'s pairwise update, slot by slot in micro-batch order. */
static void combine_stats(cc_bn_layer *l, size_t M) {
    size_t c = l->c;
    double n = l->count[0];
    memcpy(l->gmean, l->mean, c * sizeof(double));
    memcpy(l->gm2, l->m2, c * sizeof(double));
    for (size_t m = 1; m < M; m++) {
        double nb = l->count[m], nab = n + nb;
        for (size_t ch = 0; ch < c; ch++) {
            double d = l->mean[m * c + ch] - l->gmean[ch];
            l->gmean[ch] += d * (nb / nab);
            l->gm2[ch] += l->m2[m * c + ch] + d * d * (n * nb / nab);
        }
        n = nab;
    }
    l->gcount = n;
}

static void combine_sums(cc_bn_layer *l, size_t M) {
    size_t c = l->c;
    for (size_t ch = 0; ch < c; ch++) {
        double a = 0.0, b = 0.0;
        for (size_t m = 0; m < M; m++) {
            a += l->sdy[m * c + ch];
            b += l->sdx[m * c + ch];
        }
        l->gsdy[ch] = a;
        l->gsdx[ch] = b;
    }
}

/* The rank that runs micro-batch m (replicas hold consecutive blocks, ranks consecutive
 * replicas). */
static int owner(const clcnn_comm *c, size_t M, size_t m) {
    int R = clcnn_comm_replicas(c);
    for (int g = 0; g < R; g++) {
        size_t lo, hi;
        cc_dist_split(M, R, g, &lo, &hi);
        if (m >= lo && m < hi) return g / c->nlocal;
    }
    return 0;
}

/* Over MPI every rank needs every micro-batch's partials and holds only its replicas':
 * each rank sends all M slots (w doubles each), and slot m is taken from the rank that ran
 * micro-batch m. Then every rank combines the same numbers in the same order. */
static clcnn_status exchange(clcnn_dist_trainer *t, cc_bn_layer *l, int backward) {
    clcnn_comm *cm = t->comm;
    int P = clcnn_comm_size(cm);
    if (cm->kind != CC_COMM_MPI || P == 1) return CLCNN_OK;
    size_t M = t->M, c = l->c, w = backward ? 2 * c : 1 + 2 * c, cb = c * sizeof(double);
    double *mine = malloc(M * w * sizeof(double));
    double *all = malloc((size_t)P * M * w * sizeof(double));
    clcnn_status s = CLCNN_OK;
    if (!mine || !all)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY,
                    "dist: out of host memory for the batch-norm "
                    "statistics of %zu micro-batches",
                    M);
    double *a = backward ? l->sdy : l->mean, *b = backward ? l->sdx : l->m2;
    size_t o = backward ? 0 : 1; /* forward slots: count, mean (c), M2 (c) */
    for (size_t m = 0; s == CLCNN_OK && m < M; m++) {
        if (!backward) mine[m * w] = l->count[m];
        memcpy(mine + m * w + o, a + m * c, cb);
        memcpy(mine + m * w + o + c, b + m * c, cb);
    }
    if (s == CLCNN_OK)
        s = cc_dist_allgather(cm, mine, all, M * w * sizeof(double),
                              backward ? "the batch-norm gradient sums"
                                       : "the batch-norm statistics");
    for (size_t m = 0; s == CLCNN_OK && m < M; m++) {
        const double *src = all + ((size_t)owner(cm, M, m) * M + m) * w;
        if (!backward) l->count[m] = src[0];
        memcpy(a + m * c, src + o, cb);
        memcpy(b + m * c, src + o + c, cb);
    }
    free(mine);
    free(all);
    return s;
}

/* Barrier; replica 0 combines layer j (forward statistics, or backward sums); barrier. */
static clcnn_status combine(cc_replica *rp, int j, int backward) {
    clcnn_dist_trainer *t = rp->t;
    CC_TRY(cc_dist_barrier(t->comm));
    if (rp->r == 0 && j < t->nbn) {
        CC_TRY(exchange(t, t->bn[j], backward));
        if (backward)
            combine_sums(t->bn[j], t->M);
        else
            combine_stats(t->bn[j], t->M);
    }
    return cc_dist_barrier(t->comm);
}

clcnn_status cc_dist_bn_sync_passes(cc_replica *rp) {
    clcnn_dist_trainer *t = rp->t;
    rp->bwd_collect = CC_DIST_MAX_BN; /* forward passes run no backward */
    for (int j = 0; j == 0 || j < t->nbn; j++) {
        rp->fwd_known = j;
        for (size_t i = 0; i < rp->k; i++)
            CC_TRY(cc_dist_forward(rp, rp->first + i, 0));
        CC_TRY(combine(rp, j, 0)); /* after its first barrier every layer has been seen */
    }
    rp->fwd_known = CC_DIST_MAX_BN;
    for (int q = t->nbn - 1; q >= 0; q--) {
        rp->bwd_collect = q;
        for (size_t i = 0; i < rp->k; i++)
            CC_TRY(cc_dist_micro_batch(rp, rp->first + i, rp->rows + i * t->L, 1));
        CC_TRY(combine(rp, q, 1));
    }
    rp->bwd_collect = -1;
    return CLCNN_OK;
}
