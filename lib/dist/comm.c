/* Communicators: the local backend (replicas are threads of this process, the exchange
 * goes through host memory) and the dispatch to the MPI backend (comm_mpi.c). */
#include "dist/dist_internal.h"

#include <stdlib.h>
#include <string.h>

static clcnn_status comm_alloc(clcnn_comm **out, cc_comm_kind kind) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_comm_create: out is NULL");
    *out = NULL;
    clcnn_comm *c = calloc(1, sizeof *c);
    CC_RETURN_IF(!c, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_comm_create: out of host memory");
    c->kind = kind;
    c->size = 1;
    c->nlocal = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    *out = c;
    return CLCNN_OK;
}

clcnn_status clcnn_comm_create_local(int replicas, clcnn_comm **out) {
    CC_RETURN_IF(replicas < 1 || replicas > CC_DIST_MAX_LOCAL, CLCNN_ERR_INVALID_ARG,
                 "clcnn_comm_create_local: %d replicas (1..%d)", replicas, CC_DIST_MAX_LOCAL);
    CC_TRY(comm_alloc(out, CC_COMM_LOCAL));
    (*out)->nlocal = replicas;
    return CLCNN_OK;
}

clcnn_status clcnn_comm_create_mpi(int replicas, double timeout_s, clcnn_comm **out) {
    CC_RETURN_IF(replicas < 1 || replicas > CC_DIST_MAX_LOCAL, CLCNN_ERR_INVALID_ARG,
                 "clcnn_comm_create_mpi: %d replicas per rank (1..%d)", replicas,
                 CC_DIST_MAX_LOCAL);
    CC_TRY(comm_alloc(out, CC_COMM_MPI));
    (*out)->nlocal = replicas;
    clcnn_status s = cc_mpi_create(timeout_s > 0 ? timeout_s : 30.0, *out);
    if (s != CLCNN_OK) {
        clcnn_comm_free(*out);
        *out = NULL;
    }
    return s;
}

void clcnn_comm_free(clcnn_comm *c) {
    if (!c) return;
    if (c->kind == CC_COMM_MPI) cc_mpi_free(c);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

int clcnn_comm_rank(const clcnn_comm *c) {
    return c ? c->rank : 0;
}
int clcnn_comm_size(const clcnn_comm *c) {
    return c ? c->size : 0;
}
int clcnn_comm_local_rank(const clcnn_comm *c) {
    return c ? c->local_rank : 0;
}
int clcnn_comm_replicas(const clcnn_comm *c) {
    return c ? c->size * c->nlocal : 0;
}

void clcnn_comm_abort(clcnn_comm *c, int code) {
    if (c && c->kind == CC_COMM_MPI) cc_mpi_abort(c, code);
}

int cc_dist_replica(const clcnn_comm *c, int r) {
    return c->rank * c->nlocal + r;
}

/* ---- replica level ---------------------------------------------------------------- */

void cc_dist_break(clcnn_comm *c) {
    pthread_mutex_lock(&c->mu);
    c->broken = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void cc_dist_unbreak(clcnn_comm *c) {
    pthread_mutex_lock(&c->mu);
    c->broken = 0;
    c->waiting = 0;
    pthread_mutex_unlock(&c->mu);
}

static clcnn_status broken(void) {
    return cc_fail(CLCNN_ERR_DIST, "dist: another replica failed");
}

clcnn_status cc_dist_barrier(clcnn_comm *c) {
    if (c->nlocal == 1) return CLCNN_OK;
    pthread_mutex_lock(&c->mu);
    int ok = !c->broken;
    if (ok && ++c->waiting == c->nlocal) {
        c->waiting = 0;
        c->generation++;
        pthread_cond_broadcast(&c->cv);
    } else if (ok) {
        unsigned gen = c->generation;
        while (gen == c->generation && !c->broken)
            pthread_cond_wait(&c->cv, &c->mu);
        ok = gen != c->generation;
    }
    pthread_mutex_unlock(&c->mu);
    return ok ? CLCNN_OK : broken();
}

void cc_dist_sum_rows(const float *const *rows, size_t n, size_t lo, size_t hi, double *sums) {
    for (size_t j = lo; j < hi; j++)
        sums[j - lo] = 0.0;
    for (size_t m = 0; m < n; m++) {
        const float *row = rows[m];
        for (size_t j = lo; j < hi; j++)
            sums[j - lo] += (double)row[j];
    }
}

/* What participant i of R moves in an exchange of M micro-batch rows of L floats: the
 * rows of its block, cut to the others' slices, out; the other blocks' rows of its slice
 * in; then its finished slice to everyone and everyone else's slice in. */
static void count_bytes(size_t L, size_t M, int R, int i, int ordered, uint64_t *sent,
                        uint64_t *received) {
    size_t blo, bhi, slo, shi;
    cc_dist_split(M, R, i, &blo, &bhi);
    cc_dist_split(L, R, i, &slo, &shi);
    size_t k = ordered ? bhi - blo : 1, rows = ordered ? M : (size_t)R, slice = shi - slo;
    *sent = 4 * (uint64_t)(k * (L - slice) + slice * (size_t)(R - 1));
    *received = 4 * (uint64_t)((rows - k) * slice + (L - slice));
    if (R == 1) *sent = *received = 0;
}

/* MPI: the rank's replicas publish their rows; local replica 0 hands the rank's rows, in
 * micro-batch order (its replicas' blocks follow each other), to the MPI exchange, or for
 * the allreduce mode their float sum in replica order; the others wait for it. */
static clcnn_status mpi_reduce(clcnn_comm *c, int r, const float *rows, size_t L, size_t M,
                               int ordered, cc_dist_finish_fn finish, void *ctx, float *next) {
    int R = clcnn_comm_replicas(c);
    c->rows[r] = rows;
    CC_TRY(cc_dist_barrier(c));
    if (r != 0) {
        CC_TRY(cc_dist_barrier(c)); /* broken when replica 0's exchange fails */
        return CLCNN_OK;
    }
    size_t n = 0, cap = ordered ? M : 1;
    const float **list = malloc(cap * sizeof *list);
    float *sum = !ordered && c->nlocal > 1 ? malloc(L * sizeof *sum) : NULL;
    clcnn_status s = list && (ordered || c->nlocal == 1 || sum)
                         ? CLCNN_OK
                         : cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    for (int q = 0; s == CLCNN_OK && ordered && q < c->nlocal; q++) {
        size_t blo, bhi;
        cc_dist_split(M, R, cc_dist_replica(c, q), &blo, &bhi);
        for (size_t m = blo; m < bhi; m++)
            list[n++] = c->rows[q] + (m - blo) * L;
    }
    if (s == CLCNN_OK && !ordered) {
        if (sum) {
            for (size_t j = 0; j < L; j++) {
                float f = 0.0f;
                for (int q = 0; q < c->nlocal; q++)
                    f += c->rows[q][j];
                sum[j] = f;
            }
        }
        list[n++] = sum ? sum : rows;
    }
    if (s == CLCNN_OK) s = cc_mpi_reduce(c, list, n, L, M, ordered, finish, ctx, next);
    free((void *)list);
    free(sum);
    if (s != CLCNN_OK) {
        cc_dist_break(c);
        return s;
    }
    return cc_dist_barrier(c);
}

clcnn_status cc_dist_reduce(clcnn_comm *c, int r, const float *rows, size_t L, size_t M,
                            int ordered, cc_dist_finish_fn finish, void *ctx, float *next,
                            uint64_t *bytes_sent, uint64_t *bytes_received) {
    int R = clcnn_comm_replicas(c), me = cc_dist_replica(c, r);
    if (c->kind == CC_COMM_MPI) {
        *bytes_sent = *bytes_received = 0;
        if (r == 0) count_bytes(L, M, c->size, c->rank, ordered, bytes_sent, bytes_received);
        return mpi_reduce(c, r, rows, L, M, ordered, finish, ctx, next);
    }
    count_bytes(L, M, R, me, ordered, bytes_sent, bytes_received);
    c->rows[r] = rows;
    CC_TRY(cc_dist_barrier(c));
    size_t lo, hi, n = ordered ? M : (size_t)R;
    cc_dist_split(L, R, r, &lo, &hi);
    const float **all = malloc((n ? n : 1) * sizeof *all);
    double *sums = malloc((hi > lo ? hi - lo : 1) * sizeof *sums);
    clcnn_status s = CLCNN_OK;
    if (!all || !sums) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    } else {
        for (int q = 0; q < R; q++) { /* replica q's rows are micro-batches [blo, bhi) */
            size_t blo, bhi;
            cc_dist_split(M, R, q, &blo, &bhi);
            if (!ordered) {
                all[q] = c->rows[q];
                continue;
            }
            for (size_t m = blo; m < bhi; m++)
                all[m] = c->rows[q] + (m - blo) * L;
        }
        if (ordered)
            cc_dist_sum_rows(all, n, lo, hi, sums);
        else /* the float sum of MPI_Allreduce, here in replica order */
            for (size_t j = lo; j < hi; j++) {
                float f = 0.0f;
                for (size_t q = 0; q < n; q++)
                    f += all[q][j];
                sums[j - lo] = f;
            }
        finish(ctx, lo, hi, sums, (double)M, next + lo);
    }
    free(all);
    free(sums);
    if (s != CLCNN_OK) {
        cc_dist_break(c);
        return s;
    }
    return cc_dist_barrier(c); /* every slice of next is written */
}

/* ---- process level ---------------------------------------------------------------- */

clcnn_status cc_dist_bcast(clcnn_comm *c, void *buf, size_t bytes, const char *what) {
    return c->kind == CC_COMM_MPI ? cc_mpi_bcast(c, buf, bytes, what) : CLCNN_OK;
}

clcnn_status cc_dist_allgather(clcnn_comm *c, const void *mine, void *all, size_t bytes,
                               const char *what) {
    if (c->kind == CC_COMM_MPI) return cc_mpi_allgather(c, mine, all, bytes, what);
    memcpy(all, mine, bytes);
    return CLCNN_OK;
}

clcnn_status cc_dist_gather_slices(clcnn_comm *c, float *buf, size_t n, size_t L) {
    return c->kind == CC_COMM_MPI ? cc_mpi_gather_slices(c, buf, n, L) : CLCNN_OK;
}

clcnn_status cc_dist_agree(clcnn_comm *c, clcnn_status s) {
    if (c->kind != CC_COMM_MPI) return s;
    struct {
        int32_t status;
        char msg[1020];
    } m;
    memset(&m, 0, sizeof m);
    m.status = (int32_t)s;
    if (s != CLCNN_OK) snprintf(m.msg, sizeof m.msg, "%s", clcnn_last_error());
    clcnn_status b = cc_mpi_bcast(c, &m, sizeof m, "the status of rank 0");
    if (b != CLCNN_OK) return b;
    if (m.status == CLCNN_OK) return s; /* rank 0 is fine: this rank's own status */
    if (c->rank == 0) return s;
    return cc_fail((clcnn_status)m.status, "rank 0: %s", m.msg);
}
