/* The communicator's internals, shared by lib/dist/comm*.c and the trainer.
 *
 * Two kinds of collective:
 *  - process level (bcast, allgather, gather of slices, agree on a status): called by the
 *    main thread of every process; no-ops (or copies) for a local communicator, which has
 *    one process;
 *  - replica level (barrier, the gradient reduction): called by every replica, that is by
 *    each worker thread of a local communicator, or by the one replica of an MPI rank.
 *
 * Slices: the reduced row of L floats is cut into one contiguous slice per replica
 * (cc_dist_slice); replica r adds up, in micro-batch order, the elements of its slice,
 * finishes them (mean, optimizer) and shares the result. Micro-batches are cut the same
 * way into one contiguous block per replica (cc_dist_block). */
#ifndef CLCNN_DIST_INTERNAL_H
#define CLCNN_DIST_INTERNAL_H

#include "clcnn/dist.h"
#include "internal.h"

#include <pthread.h>

#define CC_DIST_MAX_LOCAL 64

typedef enum { CC_COMM_LOCAL, CC_COMM_MPI } cc_comm_kind;

struct clcnn_comm {
    cc_comm_kind kind;
    int rank, size, local_rank; /* processes */
    int nlocal;                 /* replicas in this process */
    double timeout_s;
    /* local: a barrier that a failing replica can break */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned generation;
    int waiting, broken;
    const float *rows[CC_DIST_MAX_LOCAL]; /* each replica's micro-batch rows, while reducing */
    /* mpi */
    void *mpi_comm; /* MPI_Comm*, a duplicate of MPI_COMM_WORLD */
    int finalize;   /* 1: we initialised MPI */
};

/* [*lo, *hi) of n items cut into `parts` contiguous pieces, piece i. */
static inline void cc_dist_split(size_t n, int parts, int i, size_t *lo, size_t *hi) {
    *lo = n * (size_t)i / (size_t)parts;
    *hi = n * (size_t)(i + 1) / (size_t)parts;
}

/* Turns the double sums of elements [lo, hi) (of `count` micro-batches) into the floats
 * every replica continues from: out[j - lo] for j in [lo, hi). */
typedef void (*cc_dist_finish_fn)(void *ctx, size_t lo, size_t hi, const double *sums, double count,
                                  float *out);

/* Replica level. Global replica index of local replica r. */
int cc_dist_replica(const clcnn_comm *c, int r);
/* The barrier of this process's replicas (not of the ranks). */
clcnn_status cc_dist_barrier(clcnn_comm *c);
/* Local: mark the communicator broken so that every replica waiting or arriving at a
 * barrier returns CLCNN_ERR_DIST; reset before the next collective call. */
void cc_dist_break(clcnn_comm *c);
void cc_dist_unbreak(clcnn_comm *c);
/* The reduction: rows are this replica's k = its block's size rows of L floats, in
 * micro-batch order; M micro-batches in all. ordered: the sum over all M rows in
 * micro-batch order in fp64. Otherwise rows holds one row (this replica's float sum), and
 * the rows are added in float (MPI_Allreduce; local: in replica order). The finished
 * floats of all slices end up in next (L floats, shared by the process's replicas).
 * bytes_sent/received: what a replica moves to / from the others. */
clcnn_status cc_dist_reduce(clcnn_comm *c, int r, const float *rows, size_t L, size_t M,
                            int ordered, cc_dist_finish_fn finish, void *ctx, float *next,
                            uint64_t *bytes_sent, uint64_t *bytes_received);

/* Process level (main thread). */
clcnn_status cc_dist_bcast(clcnn_comm *c, void *buf, size_t bytes, const char *what);
/* all: size x bytes, process p's at p * bytes. */
clcnn_status cc_dist_allgather(clcnn_comm *c, const void *mine, void *all, size_t bytes,
                               const char *what);
/* Process 0 gets every replica's slice of buf: its first n floats, cut as the slices of a
 * reduction of L floats are. */
clcnn_status cc_dist_gather_slices(clcnn_comm *c, float *buf, size_t n, size_t L);
/* Process 0's status and detail message become every process's (CLCNN_OK stays OK). */
clcnn_status cc_dist_agree(clcnn_comm *c, clcnn_status s);

/* MPI backend (lib/dist/comm_mpi.c; stubs without MPI). */
clcnn_status cc_mpi_create(double timeout_s, clcnn_comm *c);
void cc_mpi_free(clcnn_comm *c);
void cc_mpi_abort(clcnn_comm *c, int code);
/* rows: this rank's k rows of L floats in micro-batch order (its block of the M); not
 * ordered: one row, the rank's float sum. Called by one thread of the rank. */
clcnn_status cc_mpi_reduce(clcnn_comm *c, const float *const *rows, size_t k, size_t L, size_t M,
                           int ordered, cc_dist_finish_fn finish, void *ctx, float *next);
clcnn_status cc_mpi_bcast(clcnn_comm *c, void *buf, size_t bytes, const char *what);
clcnn_status cc_mpi_allgather(clcnn_comm *c, const void *mine, void *all, size_t bytes,
                              const char *what);
clcnn_status cc_mpi_gather_slices(clcnn_comm *c, float *buf, size_t n, size_t L);

/* Sum of rows[0..n) (each `stride` floats apart) over [lo, hi), in row order, in fp64. */
void cc_dist_sum_rows(const float *const *rows, size_t n, size_t lo, size_t hi, double *sums);

#endif
