/* dist_train: a small data-parallel training run through clcnn_dist_trainer, for the tests
 * (tests/dist_mpi.sh, test_dist.c) and perf/dist.sh. Public API only.
 *
 *   dist_train [options] [--out CKPT]
 *     --mpi                over MPI ranks (else the replicas are threads of this process)
 *     --replicas R         replicas per process (default 1)
 *     --devices LIST       comma-separated device selectors, cycled; replica i of the
 *                          process of local rank l takes entry l R + i (default: the
 *                          OpenCL device of that index)
 *     --model lenet|tiny   tiny: conv 3x3 x4 + batch norm + ReLU + max pool + dropout + linear
 *     --global B --micro b --steps N --samples N --seed S --lr F
 *     --reduce ordered|allreduce|none   --bn local|sync   --check-every K   --timeout S   --resume
 * CKPT
 *     --batch-on-rank1 B   rank 1 uses global batch B (the settings-mismatch test)
 *     --kill-rank1-at N    rank 1 kills itself (SIGKILL) before step N
 *     --stop-rank1-at N    rank 1 stops itself (SIGSTOP: hangs) before step N
 *     --bench              print one line per step: wall and CPU ms (of this process),
 *                          images/s, bytes moved
 * Prints "step N loss L" per step from rank 0; exits 1 on any error (after
 * clcnn_comm_abort, so that an MPI job ends). */
#include "clcnn/clcnn.h"
#include "clcnn/dist.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    int mpi, replicas, steps, check_every, bench, kill_at, stop_at, bn_sync;
    size_t global, micro, samples, batch_rank1;
    uint64_t seed;
    float lr;
    double timeout;
    const char *devices, *model, *out, *resume, *reduce;
} opts;

static clcnn_status add_tiny(clcnn_net *net) {
    clcnn_conv2d_desc cd = clcnn_conv2d_desc_default();
    cd.pad_h = cd.pad_w = 1;
    clcnn_pool2d_desc pd = {
        .mode = CLCNN_POOL_MAX, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    clcnn_status s = clcnn_net_add_conv2d(net, 4, 3, 3, &cd, 1);
    if (s == CLCNN_OK) s = clcnn_net_add_batchnorm(net, 0.1f, 1e-5f);
    if (s == CLCNN_OK) s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f);
    if (s == CLCNN_OK) s = clcnn_net_add_pool2d(net, &pd);
    if (s == CLCNN_OK) s = clcnn_net_add_flatten(net);
    if (s == CLCNN_OK) s = clcnn_net_add_dropout(net, 0.25f);
    if (s == CLCNN_OK) s = clcnn_net_add_linear(net, 10, 1);
    return s;
}

/* The model as a graph, initialised from the seed. */
static clcnn_status make_graph(clcnn_device *dev, const opts *o, clcnn_graph **g) {
    clcnn_net *net = NULL;
    clcnn_status s = !strcmp(o->model, "tiny") ? clcnn_net_create(dev, 1, 28, 28, &net)
                                               : clcnn_net_create_model(dev, o->model, 10, &net);
    if (s == CLCNN_OK && !strcmp(o->model, "tiny")) s = add_tiny(net);
    if (s == CLCNN_OK) s = clcnn_net_init(net, CLCNN_INIT_HE, o->seed);
    if (s == CLCNN_OK) s = clcnn_net_graph(net, g);
    clcnn_net_free(net);
    return s;
}

static double clock_ms(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.replicas = 1,
                .steps = 4,
                .check_every = 2,
                .global = 32,
                .micro = 8,
                .samples = 512,
                .seed = 7,
                .kill_at = -1,
                .stop_at = -1,
                .lr = 0.05f,
                .model = "tiny",
                .reduce = "ordered"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int flag = !strcmp(a, "--mpi") || !strcmp(a, "--bench");
        if (!flag && !v) return fprintf(stderr, "dist_train: %s needs a value\n", a), -1;
        if (!strcmp(a, "--mpi"))
            o->mpi = 1;
        else if (!strcmp(a, "--bench"))
            o->bench = 1;
        else if (!strcmp(a, "--replicas"))
            o->replicas = atoi(v);
        else if (!strcmp(a, "--devices"))
            o->devices = v;
        else if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--global"))
            o->global = (size_t)atol(v);
        else if (!strcmp(a, "--micro"))
            o->micro = (size_t)atol(v);
        else if (!strcmp(a, "--steps"))
            o->steps = atoi(v);
        else if (!strcmp(a, "--samples"))
            o->samples = (size_t)atol(v);
        else if (!strcmp(a, "--seed"))
            o->seed = (uint64_t)atoll(v);
        else if (!strcmp(a, "--lr"))
            o->lr = (float)atof(v);
        else if (!strcmp(a, "--reduce"))
            o->reduce = v;
        else if (!strcmp(a, "--bn"))
            o->bn_sync = !strcmp(v, "sync");
        else if (!strcmp(a, "--check-every"))
            o->check_every = atoi(v);
        else if (!strcmp(a, "--timeout"))
            o->timeout = atof(v);
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--batch-on-rank1"))
            o->batch_rank1 = (size_t)atol(v);
        else if (!strcmp(a, "--kill-rank1-at"))
            o->kill_at = atoi(v);
        else if (!strcmp(a, "--stop-rank1-at"))
            o->stop_at = atoi(v);
        else
            return fprintf(stderr, "dist_train: unknown option %s\n", a), -1;
        i += !flag;
    }
    return 0;
}

/* Device i of this process, whose replicas start at base (an MPI rank: its local rank
 * times the replicas per rank): entry base + i of --devices (cycled), else index base + i. */
static void selector(const opts *o, int base, int i, char *buf, size_t cap) {
    if (!o->devices) {
        snprintf(buf, cap, "%d", base + i);
        return;
    }
    int n = 1;
    for (const char *p = o->devices; *p; p++)
        n += *p == ',';
    const char *p = o->devices;
    for (int k = 0; k < (base + i) % n; k++)
        p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), p);
}

int main(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    clcnn_comm *comm = NULL;
    clcnn_device *devs[64] = {0};
    clcnn_graph *g = NULL;
    clcnn_dataset *ds = NULL;
    clcnn_dist_trainer *t = NULL;
    clcnn_status s = o.mpi ? clcnn_comm_create_mpi(o.replicas, o.timeout, &comm)
                           : clcnn_comm_create_local(o.replicas, &comm);
    int rank = clcnn_comm_rank(comm), nlocal = o.replicas;
    for (int i = 0; s == CLCNN_OK && i < nlocal; i++) {
        char sel[64];
        selector(&o, clcnn_comm_local_rank(comm) * nlocal, i, sel, sizeof sel);
        s = clcnn_device_open(sel, &devs[i]);
    }
    if (s == CLCNN_OK) s = make_graph(devs[0], &o, &g);
    if (s == CLCNN_OK) s = clcnn_dataset_load_mnist(NULL, CLCNN_SPLIT_TRAIN, &ds);
    if (s == CLCNN_OK) clcnn_dataset_limit(ds, o.samples);
    clcnn_dist_config cfg = clcnn_dist_config_default();
    cfg.global_batch = rank == 1 && o.batch_rank1 ? o.batch_rank1 : o.global;
    cfg.micro_batch = o.micro;
    cfg.seed = o.seed;
    cfg.lr = o.lr;
    cfg.check_every = o.check_every;
    cfg.bn_sync = o.bn_sync;
    cfg.reduce = !strcmp(o.reduce, "allreduce") ? CLCNN_DIST_ALLREDUCE
                 : !strcmp(o.reduce, "none")    ? CLCNN_DIST_NO_REDUCE
                                                : CLCNN_DIST_ORDERED;
    if (s == CLCNN_OK) s = clcnn_dist_trainer_create(comm, devs, nlocal, g, ds, &cfg, &t);
    if (s == CLCNN_OK && o.resume) s = clcnn_dist_trainer_load(t, o.resume);
    for (int i = 0; s == CLCNN_OK && clcnn_dist_trainer_steps(t) < o.steps; i++) {
        int64_t step = clcnn_dist_trainer_steps(t);
        if (rank == 1 && step == o.kill_at) raise(SIGKILL);
        if (rank == 1 && step == o.stop_at) raise(SIGSTOP);
        float loss = 0;
        double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        s = clcnn_dist_trainer_step(t, &loss);
        double ms = clock_ms(CLOCK_MONOTONIC) - t0, cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s != CLCNN_OK || rank != 0) continue;
        printf("step %lld loss %.6f\n", (long long)step + 1, (double)loss);
        clcnn_dist_stats st;
        clcnn_dist_trainer_stats(t, &st);
        if (o.bench)
            printf("bench replicas %d reduce %s ms %.2f images/s %.1f cpu_ms %.2f compute_ms %.2f "
                   "exchange_ms %.2f bytes_sent %llu bytes_received %llu params %zu\n",
                   clcnn_comm_replicas(comm), o.reduce, ms, (double)o.global / (ms * 1e-3), cpu,
                   st.compute_ms, st.exchange_ms, (unsigned long long)st.bytes_sent,
                   (unsigned long long)st.bytes_received, st.params);
        fflush(stdout);
    }
    if (s == CLCNN_OK && o.out) s = clcnn_dist_trainer_save(t, o.out, NULL);
    int rc = 0;
    if (s != CLCNN_OK) {
        fprintf(stderr, "dist_train (rank %d): %s: %s\n", rank, clcnn_status_str(s),
                clcnn_last_error());
        rc = 1;
    }
    clcnn_dist_trainer_free(t);
    clcnn_dataset_free(ds);
    clcnn_graph_free(g);
    for (int i = 0; i < nlocal; i++)
        clcnn_device_close(devs[i]);
    if (rc && comm) clcnn_comm_abort(comm, 1);
    clcnn_comm_free(comm);
    return rc;
}
