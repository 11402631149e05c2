/* Data-parallel training over several OpenCL devices in one process (one thread and one
 * training plan per device) and over MPI ranks (one or more devices per rank),
 * deterministic.
 *
 * A communicator (clcnn_comm) says who takes part; a trainer (clcnn_dist_trainer) runs the
 * steps. Every step splits the global batch into fixed micro-batches (global index
 * step * M + m); replica r computes the gradient of a contiguous block of them, one
 * micro-batch at a time, and the micro-batch gradients are added on the host in fp64 in
 * micro-batch order, whatever the replica count. The optimizer step (SGD with momentum)
 * is computed on the host from that sum, so 1, 2 or 4 replicas at the same global and
 * micro batch give the same bytes (given the same OpenCL device kind for every replica).
 * docs/distributed.md says exactly what is and is not repeatable.
 *
 * Ownership: the trainer borrows its communicator, devices and dataset (they must outlive
 * it); it copies what it needs of the graph. Functions marked "collective" must be called
 * by every rank in the same order. */
#ifndef CLCNN_DIST_H
#define CLCNN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "device.h"
#include "graph.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- communicators ---------------------------------------------------------------- */
/* Replica i of R (processes x replicas per process) is local replica i mod n of rank
 * i / n: ranks hold consecutive replicas. */

typedef struct clcnn_comm clcnn_comm;

/* 1 when the library was built with MPI (Open MPI found by CMake), else 0. */
CLCNN_API int clcnn_dist_have_mpi(void);

/* `replicas` replicas in this process, each run by its own thread (1..64); exchange through
 * host memory. */
CLCNN_API clcnn_status clcnn_comm_create_local(int replicas, clcnn_comm **out);
/* `replicas` replicas (threads, 1..64; the same on every rank) in each rank of
 * MPI_COMM_WORLD. Initialises MPI (thread level SERIALIZED: one replica's thread speaks
 * for its rank) unless the program did; errors are returned, not fatal
 * (MPI_ERRORS_RETURN). Every collective waits at most timeout_s seconds (<= 0: 30) for the
 * other ranks, then fails with CLCNN_ERR_DIST naming the collective: a dead or hung rank
 * ends the others with an error instead of a hang. Built without MPI:
 * CLCNN_ERR_UNSUPPORTED. */
CLCNN_API clcnn_status clcnn_comm_create_mpi(int replicas, double timeout_s, clcnn_comm **out);
/* Finalizes MPI if clcnn_comm_create_mpi initialised it. NULL is a no-op. */
CLCNN_API void clcnn_comm_free(clcnn_comm *c);
/* This process's rank and the number of processes (0 and 1 for a local communicator),
 * its rank among the processes of its host, and the replicas in all (processes x local). */
CLCNN_API int clcnn_comm_rank(const clcnn_comm *c);
CLCNN_API int clcnn_comm_size(const clcnn_comm *c);
CLCNN_API int clcnn_comm_local_rank(const clcnn_comm *c);
CLCNN_API int clcnn_comm_replicas(const clcnn_comm *c);
/* After a failure: end every rank of the job (MPI_Abort with code); a no-op for a local
 * communicator. For programs, which exit afterwards; the library never calls it. */
CLCNN_API void clcnn_comm_abort(clcnn_comm *c, int code);

/* ---- the trainer -------------------------------------------------------------------- */

typedef enum clcnn_dist_reduce {
    /* Micro-batch gradients added in micro-batch order in fp64: the same bytes for any
     * replica count. */
    CLCNN_DIST_ORDERED = 0,
    /* Each replica sums its micro-batches in float, then one MPI_Allreduce (local: a sum
     * in replica order): repeatable only for a fixed replica count. */
    CLCNN_DIST_ALLREDUCE = 1,
    /* No exchange: each replica steps on its own gradients (for measuring the cost of the
     * exchange; the replicas drift apart, so the parameter check is off). */
    CLCNN_DIST_NO_REDUCE = 2,
} clcnn_dist_reduce;

typedef struct clcnn_dist_config {
    size_t global_batch; /* samples per step, all replicas together */
    size_t micro_batch;  /* samples per micro-batch; divides global_batch */
    uint64_t seed;       /* the permutation of each epoch, augmentation, Dropout's masks */
    float lr, momentum, weight_decay; /* SGD with momentum (PyTorch's form), on the host */
    clcnn_dist_reduce reduce;
    int check_every; /* compare a hash of the parameters across replicas every K steps (0: no) */
    int flip, shift; /* augmentation as clcnn_batcher_config's, keyed by global sample index */
    /* 1: synchronised batch norm: every batch-norm layer normalises with the statistics of
     * the whole global batch (docs/distributed.md); with CLCNN_DIST_ORDERED only (else
     * CLCNN_ERR_UNSUPPORTED). 0: each micro-batch's own. */
    int bn_sync;
} clcnn_dist_config;
/* global 64, micro 16, seed 0, lr 0.01, momentum 0.9, no decay, ordered, check every 10,
 * local batch norm. */
CLCNN_API clcnn_dist_config clcnn_dist_config_default(void);

typedef struct clcnn_dist_trainer clcnn_dist_trainer;

/* Collective. g: one input [N, c, h, w] matching the dataset, one output of logits
 * [N, classes] trained with softmax cross-entropy; every replica starts from rank 0's
 * parameters. devs: this process's device handles, one per local replica, all distinct
 * (each replica's thread uses its own; two handles may open the same device). Checks that
 * every
 * rank has the same settings (model, batches, seed, optimizer, dataset size and shape):
 * a difference is CLCNN_ERR_DIST naming the setting and the ranks. */
CLCNN_API clcnn_status clcnn_dist_trainer_create(clcnn_comm *comm, clcnn_device *const *devs,
                                                 int n_devs, clcnn_graph *g,
                                                 const clcnn_dataset *train,
                                                 const clcnn_dist_config *cfg,
                                                 clcnn_dist_trainer **out);
CLCNN_API void clcnn_dist_trainer_free(clcnn_dist_trainer *t);

/* Collective: one optimizer step over the next global batch (epochs follow each other;
 * an epoch has floor(dataset size / global batch) steps). loss (may be NULL): the mean
 * loss over the global batch. Every check_every steps the replicas compare parameter
 * hashes; a difference is CLCNN_ERR_DIST. When one local replica fails, the others stop
 * and the status is that replica's error. After a failed step the replicas may disagree:
 * free the trainer (or load a checkpoint) rather than step again. */
CLCNN_API clcnn_status clcnn_dist_trainer_step(clcnn_dist_trainer *t, float *loss);
/* The learning rate of the next steps (a schedule): every rank must set the same. */
CLCNN_API void clcnn_dist_trainer_set_lr(clcnn_dist_trainer *t, float lr);
/* Steps done, steps per epoch. */
CLCNN_API int64_t clcnn_dist_trainer_steps(const clcnn_dist_trainer *t);
CLCNN_API int64_t clcnn_dist_trainer_steps_per_epoch(const clcnn_dist_trainer *t);
/* Collective: compare a hash of every replica's parameters and state now. */
CLCNN_API clcnn_status clcnn_dist_trainer_check(clcnn_dist_trainer *t);

/* Collective: rank 0 writes a safetensors checkpoint (the parameters and state under the
 * graph's initializer names, "optim.<name>.momentum", "optim.step"; metadata: NULL or key,
 * value, ..., NULL strings for "__metadata__") to a temporary file and renames it over
 * path; the other ranks wait and get its status. clcnn_checkpoint_load (nn.h) without an
 * optimizer reads it into a net of the same model. CLCNN_DIST_NO_REDUCE:
 * CLCNN_ERR_UNSUPPORTED. */
CLCNN_API clcnn_status clcnn_dist_trainer_save(clcnn_dist_trainer *t, const char *path,
                                               const char *const *metadata);
/* Collective: rank 0 reads a checkpoint this trainer's model wrote (any metadata) and
 * broadcasts it; every replica continues from its step. A file of another model or layout
 * is CLCNN_ERR_FORMAT on every rank, and nothing changes. */
CLCNN_API clcnn_status clcnn_dist_trainer_load(clcnn_dist_trainer *t, const char *path);
/* The parameters and state into g's initializers (clcnn_train_plan_to_graph). */
CLCNN_API clcnn_status clcnn_dist_trainer_to_graph(const clcnn_dist_trainer *t, clcnn_graph *g);
/* Local replica i's training plan (owned by the trainer), NULL outside [0, n_devs). */
CLCNN_API clcnn_train_plan *clcnn_dist_trainer_plan(const clcnn_dist_trainer *t, int i);

/* What the last step cost this process (milliseconds of wall time; bytes of the exchange
 * sent and received: between the replicas of a local communicator, through host memory;
 * between the processes of an MPI one; device transfers not counted). */
typedef struct clcnn_dist_stats {
    double compute_ms;  /* forward, backward and downloads of the micro-batches */
    double exchange_ms; /* the reduction, the update and the uploads */
    uint64_t bytes_sent, bytes_received;
    size_t params; /* trainable parameters (floats), padding included */
} clcnn_dist_stats;
CLCNN_API void clcnn_dist_trainer_stats(const clcnn_dist_trainer *t, clcnn_dist_stats *out);

#ifdef __cplusplus
}
#endif
#endif
