/* The data-parallel trainer: one training plan per local replica, micro-batches of the
 * global batch by global index, the ordered reduction and the optimizer step on the host.
 *
 * Shapes: P trainable floats (the parameter arena's trainable part, padding included),
 * S state floats after them (running statistics), A = P + S; a row is what one
 * micro-batch contributes: [gradient (P) | state after its forward (S) | loss (1)], L = A + 1.
 * host (A) holds the parameters and state that every replica holds after a step. */
#include "dist/trainer_internal.h"

#include "clcnn/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clcnn_dist_config clcnn_dist_config_default(void) {
    clcnn_dist_config c;
    memset(&c, 0, sizeof c);
    c.global_batch = 64;
    c.micro_batch = 16;
    c.lr = 0.01f;
    c.momentum = 0.9f;
    c.reduce = CLCNN_DIST_ORDERED;
    c.check_every = 10;
    return c;
}

uint64_t cc_dist_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* SGD with momentum (PyTorch: g += wd p; v = mu v + g; p -= lr v) on the mean gradient,
 * in fp64, rounded to float; the state and the loss: their mean. */
static void finish(void *ctx, size_t lo, size_t hi, const double *sums, double count, float *out) {
    clcnn_dist_trainer *t = ctx;
    double lr = t->cfg.lr, mu = t->cfg.momentum, wd = t->cfg.weight_decay;
    for (size_t j = lo; j < hi; j++) {
        double mean = sums[j - lo] / count;
        if (j < t->P) {
            double p = t->host[j];
            float v = (float)(mu * (double)t->velocity[j] + mean + wd * p);
            t->velocity[j] = v;
            out[j - lo] = (float)(p - lr * (double)v);
        } else {
            out[j - lo] = (float)mean;
        }
    }
}

/* ---- one replica's part of a step ------------------------------------------------- */

clcnn_status cc_dist_forward(cc_replica *rp, size_t m, int zero_grad) {
    clcnn_dist_trainer *t = rp->t;
    rp->cur_m = m;
    int64_t s = t->step, spe = t->steps_per_epoch;
    clcnn_batch b;
    CC_TRY(clcnn_batcher_seek(rp->batcher, s / spe, (size_t)(s % spe) * t->M + m));
    CC_TRY(clcnn_batcher_next(rp->batcher, &b));
    CC_RETURN_IF(b.n != t->cfg.micro_batch, CLCNN_ERR_INVALID_ARG,
                 "dist: micro-batch %zu of step %lld has %zu samples, not %zu", m, (long long)s,
                 b.n, t->cfg.micro_batch);
    CC_TRY(clcnn_tensor_upload(rp->x, b.x, b.n * t->sample * sizeof(float)));
    CC_TRY(clcnn_tensor_upload(rp->labels, b.labels, b.n * sizeof(int32_t)));
    /* every micro-batch starts from the step's state, so the running statistics after a
     * step are the mean of what each micro-batch makes of them */
    if (t->S && t->cfg.reduce != CLCNN_DIST_NO_REDUCE)
        CC_TRY(clcnn_tensor_upload(clcnn_train_plan_state(rp->plan), t->host + t->P,
                                   t->S * sizeof(float)));
    if (zero_grad) CC_TRY(clcnn_train_plan_zero_grad(rp->plan));
    clcnn_train_plan_set_forward_count(rp->plan, (uint64_t)s * t->M + m + 1);
    const clcnn_tensor *x = rp->x;
    return clcnn_train_plan_forward(rp->plan, &x, 1);
}

clcnn_status cc_dist_micro_batch(cc_replica *rp, size_t m, float *row, int first) {
    clcnn_dist_trainer *t = rp->t;
    clcnn_tensor *state = clcnn_train_plan_state(rp->plan);
    int ordered = t->cfg.reduce == CLCNN_DIST_ORDERED;
    CC_TRY(cc_dist_forward(rp, m, ordered || first));
    CC_TRY(clcnn_softmax_cross_entropy(rp->dev, clcnn_train_plan_output(rp->plan, 0), rp->labels,
                                       rp->loss, rp->dlogits));
    const clcnn_tensor *dy = rp->dlogits;
    CC_TRY(clcnn_train_plan_backward(rp->plan, &dy, 1));
    if (ordered) CC_TRY(clcnn_tensor_download(clcnn_train_plan_grads(rp->plan), row, t->P * 4));
    float loss;
    CC_TRY(clcnn_tensor_download(rp->loss, &loss, sizeof loss));
    if (ordered) {
        if (t->S) CC_TRY(clcnn_tensor_download(state, row + t->P, t->S * sizeof(float)));
        row[t->A] = loss;
        return CLCNN_OK;
    }
    /* float sums over this replica's micro-batches (the gradient sums on the device) */
    if (t->S) CC_TRY(clcnn_tensor_download(state, rp->scratch, t->S * sizeof(float)));
    for (size_t j = 0; j < t->S; j++)
        row[t->P + j] = first ? rp->scratch[j] : row[t->P + j] + rp->scratch[j];
    row[t->A] = first ? loss : row[t->A] + loss;
    return CLCNN_OK;
}

static clcnn_status replica_step(cc_replica *rp) {
    clcnn_dist_trainer *t = rp->t;
    double t0 = cc_now_ms();
    if (t->cfg.bn_sync) CC_TRY(cc_dist_bn_sync_passes(rp));
    for (size_t i = 0; i < rp->k; i++)
        CC_TRY(cc_dist_micro_batch(rp, rp->first + i,
                                   rp->rows + (t->cfg.reduce == CLCNN_DIST_ORDERED ? i * t->L : 0),
                                   i == 0));
    clcnn_tensor *grads = clcnn_train_plan_grads(rp->plan);
    if (t->cfg.reduce == CLCNN_DIST_ALLREDUCE && rp->k)
        CC_TRY(clcnn_tensor_download(grads, rp->rows, t->P * sizeof(float)));
    rp->compute_ms = cc_now_ms() - t0;
    t0 = cc_now_ms();
    rp->sent = rp->received = 0;
    if (t->cfg.reduce == CLCNN_DIST_NO_REDUCE) { /* this replica's own mean gradient */
        float k = rp->k ? (float)rp->k : 1.0f;
        CC_TRY(clcnn_sgd_update(rp->dev, clcnn_train_plan_params(rp->plan), grads, rp->velocity,
                                t->cfg.lr / k, t->cfg.momentum, t->cfg.weight_decay));
        rp->loss_mean = rp->rows[t->A] / k;
        CC_TRY(clcnn_device_finish(rp->dev));
    } else {
        CC_TRY(cc_dist_reduce(t->comm, rp->r, rp->rows, t->L, t->M,
                              t->cfg.reduce == CLCNN_DIST_ORDERED, finish, t, t->next, &rp->sent,
                              &rp->received));
        CC_TRY(clcnn_tensor_upload(clcnn_train_plan_params(rp->plan), t->next, t->P * 4));
        if (t->S)
            CC_TRY(clcnn_tensor_upload(clcnn_train_plan_state(rp->plan), t->next + t->P,
                                       t->S * sizeof(float)));
    }
    rp->exchange_ms = cc_now_ms() - t0;
    return CLCNN_OK;
}

static void *replica_thread(void *arg) {
    cc_replica *rp = arg;
    clcnn_clear_error();
    rp->status = replica_step(rp);
    if (rp->status != CLCNN_OK) {
        snprintf(rp->msg, sizeof rp->msg, "%s", clcnn_last_error());
        cc_dist_break(rp->t->comm);
    }
    return NULL;
}

/* Run fn's work on every local replica at once (threads when there are several); the
 * first replica's own failure (not "another replica failed") becomes the status. */
clcnn_status cc_dist_run_replicas(clcnn_dist_trainer *t, void *(*fn)(void *)) {
    pthread_t th[CC_DIST_MAX_LOCAL];
    int started[CC_DIST_MAX_LOCAL] = {0};
    for (int r = 0; r < t->nlocal; r++) {
        t->reps[r].status = CLCNN_OK;
        t->reps[r].msg[0] = '\0';
    }
    if (t->nlocal == 1) {
        fn(&t->reps[0]);
    } else {
        for (int r = 0; r < t->nlocal; r++) {
            started[r] = pthread_create(&th[r], NULL, fn, &t->reps[r]) == 0;
            if (!started[r]) { /* the others must not wait for it */
                t->reps[r].status = CLCNN_ERR_DIST;
                snprintf(t->reps[r].msg, sizeof t->reps[r].msg, "dist: cannot start a thread");
                cc_dist_break(t->comm);
            }
        }
        for (int r = 0; r < t->nlocal; r++)
            if (started[r]) pthread_join(th[r], NULL);
    }
    cc_dist_unbreak(t->comm); /* a failure broke the barrier for this call only */
    int pick = -1;
    for (int r = 0; r < t->nlocal; r++) {
        if (t->reps[r].status == CLCNN_OK) continue;
        if (pick < 0 || (strstr(t->reps[pick].msg, "another replica failed") &&
                         !strstr(t->reps[r].msg, "another replica failed")))
            pick = r;
    }
    if (pick < 0) return CLCNN_OK;
    return cc_fail(t->reps[pick].status, "replica %d: %s", cc_dist_replica(t->comm, pick),
                   t->reps[pick].msg);
}

clcnn_status clcnn_dist_trainer_step(clcnn_dist_trainer *t, float *loss) {
    CC_RETURN_IF(!t, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_step: trainer is NULL");
    CC_TRY(cc_dist_run_replicas(t, replica_thread));
    t->stats.compute_ms = t->reps[0].compute_ms;
    t->stats.exchange_ms = t->reps[0].exchange_ms;
    t->stats.bytes_sent = t->stats.bytes_received = 0;
    t->stats.params = t->P;
    for (int r = 0; r < t->nlocal; r++) {
        t->stats.bytes_sent += t->reps[r].sent;
        t->stats.bytes_received += t->reps[r].received;
    }
    float l = t->reps[0].loss_mean;
    if (t->cfg.reduce != CLCNN_DIST_NO_REDUCE) {
        memcpy(t->host, t->next, t->A * sizeof(float));
        l = t->next[t->A];
    }
    t->step++;
    if (loss) *loss = l;
    if (t->cfg.check_every > 0 && t->cfg.reduce != CLCNN_DIST_NO_REDUCE &&
        t->step % t->cfg.check_every == 0)
        CC_TRY(clcnn_dist_trainer_check(t));
    return CLCNN_OK;
}

void clcnn_dist_trainer_set_lr(clcnn_dist_trainer *t, float lr) {
    if (t) t->cfg.lr = lr;
}

int64_t clcnn_dist_trainer_steps(const clcnn_dist_trainer *t) {
    return t ? t->step : 0;
}

int64_t clcnn_dist_trainer_steps_per_epoch(const clcnn_dist_trainer *t) {
    return t ? t->steps_per_epoch : 0;
}

void clcnn_dist_trainer_stats(const clcnn_dist_trainer *t, clcnn_dist_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (t) *out = t->stats;
}

clcnn_train_plan *clcnn_dist_trainer_plan(const clcnn_dist_trainer *t, int i) {
    return t && i >= 0 && i < t->nlocal ? t->reps[i].plan : NULL;
}

/* ---- the parameter check ---------------------------------------------------------- */

clcnn_status clcnn_dist_trainer_check(clcnn_dist_trainer *t) {
    CC_RETURN_IF(!t, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_check: trainer is NULL");
    uint64_t h[CC_DIST_MAX_LOCAL];
    float *buf = malloc(t->A * sizeof *buf);
    CC_RETURN_IF(!buf, CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    clcnn_status s = CLCNN_OK;
    for (int r = 0; s == CLCNN_OK && r < t->nlocal; r++) {
        cc_replica *rp = &t->reps[r];
        s = clcnn_tensor_download(clcnn_train_plan_params(rp->plan), buf, t->P * sizeof(float));
        if (s == CLCNN_OK && t->S)
            s = clcnn_tensor_download(clcnn_train_plan_state(rp->plan), buf + t->P,
                                      t->S * sizeof(float));
        h[r] = cc_dist_fnv(0xcbf29ce484222325ull, buf, t->A * sizeof(float));
    }
    free(buf);
    CC_TRY(s);
    for (int r = 1; r < t->nlocal; r++)
        CC_RETURN_IF(h[r] != h[0], CLCNN_ERR_DIST,
                     "dist: after step %lld the parameters of replica %d differ from replica "
                     "%d's (hash %016llx, %016llx): the replicas have diverged",
                     (long long)t->step, cc_dist_replica(t->comm, r), cc_dist_replica(t->comm, 0),
                     (unsigned long long)h[r], (unsigned long long)h[0]);
    int n = clcnn_comm_size(t->comm);
    uint64_t *all = malloc((size_t)n * sizeof *all);
    CC_RETURN_IF(!all, CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    s = cc_dist_allgather(t->comm, &h[0], all, sizeof *all, "the parameter hashes");
    for (int p = 1; s == CLCNN_OK && p < n; p++)
        if (all[p] != all[0])
            s = cc_fail(CLCNN_ERR_DIST,
                        "dist: after step %lld the parameters of rank %d differ from rank 0's "
                        "(hash %016llx, %016llx): the replicas have diverged",
                        (long long)t->step, p, (unsigned long long)all[p],
                        (unsigned long long)all[0]);
    free(all);
    return s;
}
