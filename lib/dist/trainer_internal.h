/* The trainer's internals, shared by lib/dist/trainer*.c. */
#ifndef CLCNN_DIST_TRAINER_INTERNAL_H
#define CLCNN_DIST_TRAINER_INTERNAL_H

#include "dist/dist_internal.h"

typedef struct cc_replica {
    clcnn_dist_trainer *t;
    int r; /* local index */
    clcnn_device *dev;
    clcnn_train_plan *plan;
    clcnn_batcher *batcher;
    clcnn_tensor *x, *labels, *loss, *dlogits; /* x (micro, c, h, w), labels (micro) */
    clcnn_tensor *velocity;                    /* CLCNN_DIST_NO_REDUCE only: (P) */
    float *rows;                               /* ordered: k rows of L; otherwise one */
    float *scratch;                            /* S floats */
    size_t first, k; /* this replica's micro-batches [first, first + k) of each step */
    float loss_mean; /* CLCNN_DIST_NO_REDUCE: this replica's own */
    double compute_ms, exchange_ms;
    uint64_t sent, received;
    clcnn_status status;
    char msg[1024];
    /* synchronised batch norm (lib/dist/bn_sync.c) */
    clcnn_bn_sync sync;
    size_t cur_m;    /* the micro-batch its plan runs now */
    int fwd_known;   /* forward: layers below this use the global statistics */
    int bwd_collect; /* backward: layers above this use the global sums, this one reports */
} cc_replica;

/* One batch-norm layer's per-micro-batch partial statistics and sums (M of each, c per
 * micro-batch) and what they combine to. */
typedef struct cc_bn_layer {
    size_t c;
    double *count, *mean, *m2;                 /* (M), (M c), (M c) */
    double *sdy, *sdx;                         /* (M c), (M c) */
    double gcount, *gmean, *gm2, *gsdy, *gsdx; /* (c) each */
} cc_bn_layer;

#define CC_DIST_MAX_BN 1024

struct clcnn_dist_trainer {
    clcnn_comm *comm;
    clcnn_dist_config cfg;
    int nlocal;
    cc_replica *reps;
    size_t P, S, A, L, M; /* see trainer.c; M micro-batches per step */
    float *host;          /* (A) */
    float *next;          /* (L) */
    float *velocity;      /* (P) this process's slices current (all of it on rank 0 after a
                             gather) */
    int64_t step, steps_per_epoch;
    size_t sample; /* floats per sample */
    clcnn_dist_stats stats;
    pthread_mutex_t bn_mu; /* guards nbn and the allocation of bn[] */
    int nbn;               /* batch-norm layers seen */
    cc_bn_layer *bn[CC_DIST_MAX_BN];
};

uint64_t cc_dist_fnv(uint64_t h, const void *data, size_t n);
clcnn_status cc_dist_run_replicas(clcnn_dist_trainer *t, void *(*fn)(void *));
/* Upload host (and zero the momentum on the devices that keep one) to every local replica. */
clcnn_status cc_dist_upload_all(clcnn_dist_trainer *t);
/* lib/dist/trainer.c: upload the micro-batch's samples and the step's state and run the
 * plan's forward (micro-batch m of this step, rp->cur_m = m). */
clcnn_status cc_dist_forward(cc_replica *rp, size_t m, int zero_grad);
/* One step's whole forward and backward of each of the replica's micro-batches. */
clcnn_status cc_dist_micro_batch(cc_replica *rp, size_t m, float *row, int first);
/* lib/dist/bn_sync.c: the replica's callbacks (set in make_replica) and, before the step's
 * final pass, the passes that make every layer's global statistics and sums; freeing. */
void cc_dist_bn_sync_init(cc_replica *rp);
clcnn_status cc_dist_bn_sync_passes(cc_replica *rp);
void cc_dist_bn_sync_free(clcnn_dist_trainer *t);

#endif
