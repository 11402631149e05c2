/* The MPI backend over a duplicate of MPI_COMM_WORLD: one thread of each rank (its local
 * replica 0) exchanges for all the rank's replicas (comm.c's mpi_reduce). Every collective
 * is a non-blocking MPI call waited for with a deadline (the communicator's timeout), so a
 * dead or stopped rank ends the others with CLCNN_ERR_DIST instead of a hang; errors are
 * returned (MPI_ERRORS_RETURN), never fatal. Built without MPI, every entry point says so. */
#include "dist/dist_internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef CLCNN_HAVE_MPI
#include <mpi.h>
#include <time.h>

int clcnn_dist_have_mpi(void) {
    return 1;
}

#define COMM(c) (*(MPI_Comm *)(c)->mpi_comm)

static clcnn_status mpi_fail(int err, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", err);
    return cc_fail(CLCNN_ERR_DIST, "MPI: %s failed: %s", what, msg);
}

#define MPI_TRY(call, what)                                                                        \
    do {                                                                                           \
        int e_ = (call);                                                                           \
        if (e_ != MPI_SUCCESS) return mpi_fail(e_, what);                                          \
    } while (0)

static double seconds(void) {
    return cc_now_ms() * 1e-3;
}

/* Wait for req until the deadline, polling with sleeps that grow from 10 us to 1 ms (a
 * long wait for a slower rank then costs little CPU). */
static clcnn_status wait_for(clcnn_comm *c, MPI_Request *req, const char *what) {
    double end = seconds() + c->timeout_s;
    long nap = 10000;
    for (;;) {
        int done = 0;
        MPI_TRY(MPI_Test(req, &done, MPI_STATUS_IGNORE), what);
        if (done) return CLCNN_OK;
        if (seconds() > end)
            return cc_fail(CLCNN_ERR_DIST,
                           "MPI: rank %d waited %.0f s for the other ranks in %s: a rank died, "
                           "hangs or left the job",
                           c->rank, c->timeout_s, what);
        nanosleep(&(struct timespec){0, nap}, NULL);
        if (nap < 1000000) nap *= 2;
    }
}

clcnn_status cc_mpi_create(double timeout_s, clcnn_comm *c) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
        c->finalize = 1;
    }
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    CC_RETURN_IF(c->nlocal > 1 && level < MPI_THREAD_SERIALIZED, CLCNN_ERR_UNSUPPORTED,
                 "MPI: %d replicas per rank need MPI_THREAD_SERIALIZED, this MPI gives level %d",
                 c->nlocal, level);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    c->mpi_comm = malloc(sizeof(MPI_Comm));
    CC_RETURN_IF(!c->mpi_comm, CLCNN_ERR_OUT_OF_MEMORY, "MPI: out of host memory");
    *(MPI_Comm *)c->mpi_comm = MPI_COMM_NULL;
    MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, (MPI_Comm *)c->mpi_comm), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(COMM(c), MPI_ERRORS_RETURN);
    MPI_Comm_rank(COMM(c), &c->rank);
    MPI_Comm_size(COMM(c), &c->size);
    MPI_Comm node;
    MPI_TRY(MPI_Comm_split_type(COMM(c), MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_free(&node);
    c->timeout_s = timeout_s;
    return CLCNN_OK;
}

void cc_mpi_free(clcnn_comm *c) {
    if (c->mpi_comm) {
        if (COMM(c) != MPI_COMM_NULL) MPI_Comm_free((MPI_Comm *)c->mpi_comm);
        free(c->mpi_comm);
    }
    if (c->finalize) MPI_Finalize();
}

void cc_mpi_abort(clcnn_comm *c, int code) {
    MPI_Abort(c->mpi_comm ? COMM(c) : MPI_COMM_WORLD, code);
}

clcnn_status cc_mpi_bcast(clcnn_comm *c, void *buf, size_t bytes, const char *what) {
    char name[160];
    snprintf(name, sizeof name, "the broadcast of %s", what);
    for (size_t off = 0; off < bytes;) { /* counts are ints */
        size_t n = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        MPI_Request req;
        MPI_TRY(MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, 0, COMM(c), &req), name);
        CC_TRY(wait_for(c, &req, name));
        off += n;
    }
    return CLCNN_OK;
}

clcnn_status cc_mpi_allgather(clcnn_comm *c, const void *mine, void *all, size_t bytes,
                              const char *what) {
    char name[160];
    snprintf(name, sizeof name, "the exchange of %s", what);
    MPI_Request req;
    MPI_TRY(MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, COMM(c), &req),
            name);
    return wait_for(c, &req, name);
}

/* counts and displacements of the slices of L floats, one per rank */
static clcnn_status slice_layout(clcnn_comm *c, size_t L, int **counts, int **displs) {
    *counts = malloc((size_t)c->size * sizeof **counts);
    *displs = malloc((size_t)c->size * sizeof **displs);
    CC_RETURN_IF(!*counts || !*displs, CLCNN_ERR_OUT_OF_MEMORY, "MPI: out of host memory");
    for (int q = 0; q < c->size; q++) {
        size_t lo, hi;
        cc_dist_split(L, c->size, q, &lo, &hi);
        (*counts)[q] = (int)(hi - lo);
        (*displs)[q] = (int)lo;
    }
    return CLCNN_OK;
}

clcnn_status cc_mpi_gather_slices(clcnn_comm *c, float *buf, size_t n, size_t L) {
    int *counts = NULL, *displs = NULL;
    clcnn_status s = slice_layout(c, L, &counts, &displs);
    for (int q = 0; s == CLCNN_OK && q < c->size; q++) { /* the slices of L cut to [0, n) */
        size_t lo = (size_t)displs[q] < n ? (size_t)displs[q] : n;
        size_t end = (size_t)displs[q] + (size_t)counts[q], hi = end < n ? end : n;
        displs[q] = (int)lo;
        counts[q] = (int)(hi - lo);
    }
    MPI_Request req;
    int e = MPI_SUCCESS;
    if (s == CLCNN_OK) {
        int me = c->rank;
        e = c->rank == 0 ? MPI_Igatherv(MPI_IN_PLACE, counts[me], MPI_FLOAT, buf, counts, displs,
                                        MPI_FLOAT, 0, COMM(c), &req)
                         : MPI_Igatherv(buf + displs[me], counts[me], MPI_FLOAT, NULL, NULL, NULL,
                                        MPI_FLOAT, 0, COMM(c), &req);
        s = e != MPI_SUCCESS ? mpi_fail(e, "MPI_Igatherv")
                             : wait_for(c, &req, "the gather of the optimizer state");
    }
    free(counts);
    free(displs);
    return s;
}

/* ordered: every rank sends each of its k rows' slice q to rank q (MPI_Ialltoallv), so rank
 * q holds the M rows of its slice in micro-batch order (ranks' blocks are in rank order);
 * otherwise one MPI_Iallreduce of the one row. Then each rank finishes its slice and an
 * MPI_Iallgatherv shares them. */
clcnn_status cc_mpi_reduce(clcnn_comm *c, const float *const *rows, size_t k, size_t L, size_t M,
                           int ordered, cc_dist_finish_fn finish, void *ctx, float *next) {
    int P = c->size, me = c->rank;
    size_t lo, hi;
    cc_dist_split(L, P, me, &lo, &hi); /* a rank's block of micro-batches: split(M, P, me) */
    size_t len = hi - lo;
    int *counts = NULL, *displs = NULL, *scount = NULL, *sdispl = NULL, *rcount = NULL,
        *rdispl = NULL;
    float *send = NULL, *recv = NULL, *sum = NULL;
    const float **all = NULL;
    double *sums = malloc((len ? len : 1) * sizeof *sums);
    clcnn_status s = slice_layout(c, L, &counts, &displs);
    MPI_Request req;
    int e = MPI_SUCCESS;
    if (s == CLCNN_OK && ordered) {
        scount = malloc((size_t)P * 4 * sizeof *scount);
        send = malloc((k * L + 1) * sizeof *send);
        recv = malloc((M * len + 1) * sizeof *recv);
        all = malloc((M ? M : 1) * sizeof *all);
        if (!scount || !send || !recv || !all || !sums)
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "MPI: out of host memory");
    }
    if (s == CLCNN_OK && ordered) {
        sdispl = scount + P;
        rcount = scount + 2 * P;
        rdispl = scount + 3 * P;
        size_t at = 0, rat = 0;
        for (int q = 0; q < P; q++) { /* to q: slice q of each of my rows; from q: its rows */
            size_t qlo, qhi, qblo, qbhi;
            cc_dist_split(L, P, q, &qlo, &qhi);
            cc_dist_split(M, P, q, &qblo, &qbhi);
            sdispl[q] = (int)at;
            for (size_t i = 0; i < k; i++, at += qhi - qlo)
                memcpy(send + at, rows[i] + qlo, (qhi - qlo) * sizeof *send);
            scount[q] = (int)(at - (size_t)sdispl[q]);
            rdispl[q] = (int)rat;
            rcount[q] = (int)((qbhi - qblo) * len);
            rat += (qbhi - qblo) * len;
        }
        e = MPI_Ialltoallv(send, scount, sdispl, MPI_FLOAT, recv, rcount, rdispl, MPI_FLOAT,
                           COMM(c), &req);
        s = e != MPI_SUCCESS ? mpi_fail(e, "MPI_Ialltoallv")
                             : wait_for(c, &req, "the exchange of the micro-batch gradients");
        if (s == CLCNN_OK) {
            for (size_t m = 0; m < M; m++)
                all[m] = recv + m * len;
            cc_dist_sum_rows(all, M, 0, len, sums);
        }
    } else if (s == CLCNN_OK) {
        sum = malloc((L ? L : 1) * sizeof *sum);
        if (!sum || !sums) s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "MPI: out of host memory");
        if (s == CLCNN_OK)
            e = MPI_Iallreduce(rows[0], sum, (int)L, MPI_FLOAT, MPI_SUM, COMM(c), &req);
        if (s == CLCNN_OK)
            s = e != MPI_SUCCESS ? mpi_fail(e, "MPI_Iallreduce")
                                 : wait_for(c, &req, "MPI_Allreduce of the gradients");
        for (size_t j = lo; s == CLCNN_OK && j < hi; j++)
            sums[j - lo] = sum[j];
    }
    if (s == CLCNN_OK) {
        finish(ctx, lo, hi, sums, (double)M, next + lo);
        e = MPI_Iallgatherv(MPI_IN_PLACE, counts[me], MPI_FLOAT, next, counts, displs, MPI_FLOAT,
                            COMM(c), &req);
        s = e != MPI_SUCCESS ? mpi_fail(e, "MPI_Iallgatherv")
                             : wait_for(c, &req, "the exchange of the updated parameters");
    }
    free(counts);
    free(displs);
    free(scount);
    free(send);
    free(recv);
    free(sum);
    free((void *)all);
    free(sums);
    return s;
}

#else /* built without MPI */

int clcnn_dist_have_mpi(void) {
    return 0;
}

static clcnn_status no_mpi(void) {
    return cc_fail(CLCNN_ERR_UNSUPPORTED,
                   "clcnn was built without MPI: install Debian's libopenmpi-dev and openmpi-bin "
                   "(make deps) and configure again");
}

clcnn_status cc_mpi_create(double timeout_s, clcnn_comm *c) {
    return no_mpi();
}
void cc_mpi_free(clcnn_comm *c) {}
void cc_mpi_abort(clcnn_comm *c, int code) {}
clcnn_status cc_mpi_reduce(clcnn_comm *c, const float *const *rows, size_t k, size_t L, size_t M,
                           int ordered, cc_dist_finish_fn finish, void *ctx, float *next) {
    return no_mpi();
}
clcnn_status cc_mpi_bcast(clcnn_comm *c, void *buf, size_t bytes, const char *what) {
    return no_mpi();
}
clcnn_status cc_mpi_allgather(clcnn_comm *c, const void *mine, void *all, size_t bytes,
                              const char *what) {
    return no_mpi();
}
clcnn_status cc_mpi_gather_slices(clcnn_comm *c, float *buf, size_t n, size_t L) {
    return no_mpi();
}

#endif
