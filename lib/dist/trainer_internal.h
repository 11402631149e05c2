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
} cc_replica;

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
};

uint64_t cc_dist_fnv(uint64_t h, const void *data, size_t n);
clcnn_status cc_dist_run_replicas(clcnn_dist_trainer *t, void *(*fn)(void *));
/* Upload host (and zero the momentum on the devices that keep one) to every local replica. */
clcnn_status cc_dist_upload_all(clcnn_dist_trainer *t);

#endif
