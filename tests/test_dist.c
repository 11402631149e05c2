/* Data-parallel training in one process (lib/dist, local backend): the first step against a
 * plain reference (each micro-batch through one training plan, the gradients added in
 * double in micro-batch order, SGD with momentum in double); 1, 2 and 4 replicas give the
 * same checkpoint bytes, two runs too, and a different seed does not; resuming reproduces
 * an uninterrupted run; a replica whose parameters differ is caught; bad settings and bad
 * checkpoints are clear errors. ctest runs it with POCL_DEVICES="pthread pthread" (two CPU
 * devices); with one device the replicas share it. The model: conv 3x3 x4, batch norm,
 * ReLU, max pool, dropout, linear (batch norm and dropout are what makes micro-batches
 * matter). */
#include "test_util.h"

#include "clcnn/dist.h"
#include "dist/dist_internal.h"
#include "fault.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static clcnn_device *devs[4]; /* handles of devices 0, 1, 0, 1 (one per replica) */
static clcnn_dataset *ds;
static char *tmp;

/* conv 3x3 x4, batch norm, ReLU (nbn times), max pool, flatten, [dropout], linear. */
static clcnn_graph *bn_graph(uint64_t seed, int nbn, int dropout) {
    clcnn_net *net = NULL;
    clcnn_conv2d_desc cd = clcnn_conv2d_desc_default();
    cd.pad_h = cd.pad_w = 1;
    clcnn_pool2d_desc pd = {
        .mode = CLCNN_POOL_MAX, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    TU_OK(clcnn_net_create(devs[0], 1, 28, 28, &net));
    for (int i = 0; i < nbn; i++) {
        TU_OK(clcnn_net_add_conv2d(net, 4, 3, 3, &cd, 1));
        TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
        TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f));
    }
    TU_OK(clcnn_net_add_pool2d(net, &pd));
    TU_OK(clcnn_net_add_flatten(net));
    if (dropout) TU_OK(clcnn_net_add_dropout(net, 0.25f));
    TU_OK(clcnn_net_add_linear(net, 10, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, seed));
    clcnn_graph *g = NULL;
    TU_OK(clcnn_net_graph(net, &g));
    clcnn_net_free(net);
    return g;
}

static clcnn_graph *tiny_graph(uint64_t seed) {
    return bn_graph(seed, 1, 1);
}

/* Two batch-norm layers (synchronised batch norm combines them one after the other). */
static clcnn_graph *bn2_dropout_graph(uint64_t seed) {
    return bn_graph(seed, 2, 1);
}

/* The model run() trains. */
static clcnn_graph *(*model)(uint64_t seed) = tiny_graph;

static clcnn_dist_config config(void) {
    clcnn_dist_config c = clcnn_dist_config_default();
    c.global_batch = 32;
    c.micro_batch = 8;
    c.seed = 11;
    c.lr = 0.05f;
    c.check_every = 1;
    return c;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* The reduction itself, on rows where the order of the sum shows even in fp64: 1, 1e30,
 * -1e30, 2 in micro-batch order is ((1 + 1e30) - 1e30) + 2 = 2, while adding each replica's
 * block first gives (1 + 1e30) + (-1e30 + 2) = 0 and the reverse order 1. Every replica
 * count must give 2. */
typedef struct reduce_job {
    clcnn_comm *c;
    int r, n;
    float rows[4];
    float next[1];
    clcnn_status s;
} reduce_job;

static void copy_sum(void *ctx, size_t lo, size_t hi, const double *sums, double count,
                     float *out) {
    for (size_t j = lo; j < hi; j++)
        out[j - lo] = (float)sums[j - lo];
}

static void *reduce_thread(void *arg) {
    reduce_job *j = arg;
    uint64_t sent, received;
    j->s = cc_dist_reduce(j->c, j->r, j->rows, 1, 4, 1, copy_sum, NULL, j[-j->r].next, &sent,
                          &received);
    return NULL;
}

static void test_reduce_order(void **state) {
    const float vals[4] = {1.0f, 1e30f, -1e30f, 2.0f};
    for (int n = 1; n <= 4; n *= 2) {
        clcnn_comm *c = NULL;
        TU_OK(clcnn_comm_create_local(n, &c));
        reduce_job jobs[4];
        pthread_t th[4];
        for (int r = 0; r < n; r++) {
            size_t lo, hi;
            cc_dist_split(4, n, r, &lo, &hi);
            jobs[r] = (reduce_job){.c = c, .r = r, .n = n};
            memcpy(jobs[r].rows, vals + lo, (hi - lo) * sizeof(float));
            assert_int_equal(pthread_create(&th[r], NULL, reduce_thread, &jobs[r]), 0);
        }
        for (int r = 0; r < n; r++) {
            pthread_join(th[r], NULL);
            TU_OK(jobs[r].s);
        }
        if (jobs[0].next[0] != 2.0f)
            fail_msg("%d replicas: the ordered sum is %g, not 2", n, (double)jobs[0].next[0]);
        clcnn_comm_free(c);
    }
}

/* Train `steps` steps (from resume if not NULL) on n replicas over devs cycled, save to
 * path; returns the file's bytes. */
static unsigned char *run(int n, const clcnn_dist_config *cfg, int steps, const char *resume,
                          const char *name, size_t *len) {
    clcnn_comm *comm = NULL;
    TU_OK(clcnn_comm_create_local(n, &comm));
    assert_int_equal(clcnn_comm_replicas(comm), n);
    clcnn_graph *g = model(3);
    clcnn_dist_trainer *t = NULL;
    TU_OK(clcnn_dist_trainer_create(comm, devs, n, g, ds, cfg, &t));
    if (resume) TU_OK(clcnn_dist_trainer_load(t, resume));
    float first = NAN, loss = NAN;
    while (clcnn_dist_trainer_steps(t) < steps) {
        TU_OK(clcnn_dist_trainer_step(t, &loss));
        if (isnan(first)) first = loss;
        assert_true(isfinite(loss));
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    TU_OK(clcnn_dist_trainer_save(t, path, NULL));
    clcnn_dist_trainer_free(t);
    clcnn_graph_free(g);
    clcnn_comm_free(comm);
    return slurp(path, len);
}

static void assert_same_file(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                             const char *what) {
    if (na != nb) fail_msg("%s: %zu bytes vs %zu", what, na, nb);
    for (size_t i = 0; i < na; i++)
        if (a[i] != b[i]) fail_msg("%s: first difference at byte %zu of %zu", what, i, na);
}

/* 1, 2 and 4 replicas of cfg for `steps` steps give the same bytes, two runs of 2 too;
 * returns the bytes (files named after tag). */
static unsigned char *same_for_1_2_4(const clcnn_dist_config *cfg, int steps, const char *tag,
                                     size_t *n1) {
    size_t n[3];
    char name[4][64];
    const char *what[] = {"two", "two_again", "four"};
    snprintf(name[0], sizeof name[0], "%s_one.safetensors", tag);
    unsigned char *a = run(1, cfg, steps, NULL, name[0], n1), *r[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name[i + 1], sizeof name[i + 1], "%s_%s.safetensors", tag, what[i]);
        r[i] = run(i < 2 ? 2 : 4, cfg, steps, NULL, name[i + 1], &n[i]);
    }
    assert_same_file(a, *n1, r[0], n[0], "1 vs 2 replicas");
    assert_same_file(r[0], n[0], r[1], n[1], "2 replicas, two runs");
    assert_same_file(a, *n1, r[2], n[2], "1 vs 4 replicas");
    free(r[0]), free(r[1]), free(r[2]);
    return a;
}

/* 1, 2 and 4 replicas at the same global and micro batch: the same bytes; two runs of 2
 * replicas too; the allreduce mode repeats for a fixed count; another seed differs. */
static void test_replica_count_invariant(void **state) {
    clcnn_dist_config cfg = config();
    size_t n1, nseed;
    unsigned char *a = same_for_1_2_4(&cfg, 5, "plain", &n1);
    cfg.seed = 12;
    unsigned char *e = run(2, &cfg, 5, NULL, "seed.safetensors", &nseed);
    assert_int_equal(nseed, n1);
    assert_true(memcmp(a, e, n1) != 0);
    cfg.seed = 11;
    cfg.reduce = CLCNN_DIST_ALLREDUCE;
    size_t nr1, nr2;
    unsigned char *f = run(2, &cfg, 5, NULL, "allreduce.safetensors", &nr1);
    unsigned char *g = run(2, &cfg, 5, NULL, "allreduce_again.safetensors", &nr2);
    assert_same_file(f, nr1, g, nr2, "allreduce, 2 replicas, two runs");
    free(a), free(e), free(f), free(g);
}

/* Resuming at step 2 of 4 gives the bytes of the uninterrupted run. */
static void test_resume(void **state) {
    clcnn_dist_config cfg = config();
    size_t nf, nh, nr;
    unsigned char *full = run(2, &cfg, 4, NULL, "full.safetensors", &nf);
    unsigned char *half = run(2, &cfg, 2, NULL, "half.safetensors", &nh);
    char path[4200];
    snprintf(path, sizeof path, "%s/half.safetensors", tmp);
    unsigned char *resumed = run(1, &cfg, 4, path, "resumed.safetensors", &nr);
    assert_same_file(full, nf, resumed, nr, "resumed vs uninterrupted");
    assert_true(memcmp(full, half, nf) != 0);
    free(full), free(half), free(resumed);
}

/* A batch of n samples through a plan: a batcher of batches of n (the trainer's
 * permutation), the input, label, loss and logits-gradient tensors. */
typedef struct batch_run {
    size_t n;
    clcnn_batcher *b;
    clcnn_tensor *x, *lab, *loss, *dl;
} batch_run;

static batch_run batch_run_make(size_t n, uint64_t seed) {
    batch_run r = {.n = n};
    clcnn_batcher_config bc = clcnn_batcher_config_default();
    bc.batch_size = n;
    bc.shuffle = 1;
    bc.drop_last = 1;
    bc.seed = seed;
    TU_OK(clcnn_batcher_create(ds, &bc, &r.b));
    size_t one = 1;
    TU_OK(clcnn_tensor_create(devs[0], CLCNN_F32, 4, (size_t[]){n, 1, 28, 28}, &r.x));
    TU_OK(clcnn_tensor_create(devs[0], CLCNN_I32, 1, &n, &r.lab));
    TU_OK(clcnn_tensor_create(devs[0], CLCNN_F32, 1, &one, &r.loss));
    TU_OK(clcnn_tensor_create(devs[0], CLCNN_F32, 2, (size_t[]){n, 10}, &r.dl));
    return r;
}

/* The batcher's next batch through p: forward, softmax cross-entropy, backward. */
static void batch_run_next(batch_run *r, clcnn_train_plan *p) {
    clcnn_batch bt;
    TU_OK(clcnn_batcher_next(r->b, &bt));
    assert_int_equal(bt.n, r->n);
    TU_OK(clcnn_tensor_upload(r->x, bt.x, r->n * 784 * 4));
    TU_OK(clcnn_tensor_upload(r->lab, bt.labels, r->n * 4));
    const clcnn_tensor *in = r->x;
    TU_OK(clcnn_train_plan_forward(p, &in, 1));
    TU_OK(clcnn_softmax_cross_entropy(devs[0], clcnn_train_plan_output(p, 0), r->lab, r->loss,
                                      r->dl));
    const clcnn_tensor *dy = r->dl;
    TU_OK(clcnn_train_plan_backward(p, &dy, 1));
}

static void batch_run_free(batch_run *r) {
    clcnn_batcher_free(r->b);
    clcnn_tensor_free(r->x), clcnn_tensor_free(r->lab), clcnn_tensor_free(r->loss);
    clcnn_tensor_free(r->dl);
}

/* The first step by hand: micro-batch m of step 0 is batch m of epoch 0 of a batcher of
 * micro-batches (same seed); its gradient from one plan; the mean in double in order, SGD
 * in double; the state the mean of each micro-batch's. */
static void test_first_step_reference(void **state) {
    clcnn_dist_config cfg = config();
    clcnn_graph *g = tiny_graph(3);
    clcnn_train_options o = {0};
    o.seed = cfg.seed;
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(devs[0], g, (int)cfg.micro_batch, &o, &p));
    size_t P = clcnn_tensor_numel(clcnn_train_plan_params(p));
    size_t S = clcnn_tensor_numel(clcnn_train_plan_state(p)), M = 4, mb = cfg.micro_batch;
    float *p0 = malloc(P * 4), *s0 = malloc(S * 4), *gr = malloc(P * 4), *st = malloc(S * 4);
    double *gsum = calloc(P, sizeof *gsum), *ssum = calloc(S, sizeof *ssum);
    TU_OK(clcnn_tensor_download(clcnn_train_plan_params(p), p0, P * 4));
    TU_OK(clcnn_tensor_download(clcnn_train_plan_state(p), s0, S * 4));
    batch_run br = batch_run_make(mb, cfg.seed);
    for (size_t m = 0; m < M; m++) {
        TU_OK(clcnn_tensor_upload(clcnn_train_plan_state(p), s0, S * 4));
        TU_OK(clcnn_train_plan_zero_grad(p));
        clcnn_train_plan_set_forward_count(p, m + 1);
        batch_run_next(&br, p);
        TU_OK(clcnn_tensor_download(clcnn_train_plan_grads(p), gr, P * 4));
        TU_OK(clcnn_tensor_download(clcnn_train_plan_state(p), st, S * 4));
        for (size_t j = 0; j < P; j++)
            gsum[j] += gr[j];
        for (size_t j = 0; j < S; j++)
            ssum[j] += st[j];
    }
    /* the trainer's first step, one replica and two */
    for (int n = 1; n <= 2; n++) {
        clcnn_comm *comm = NULL;
        TU_OK(clcnn_comm_create_local(n, &comm));
        clcnn_dist_trainer *t = NULL;
        TU_OK(clcnn_dist_trainer_create(comm, devs, n, g, ds, &cfg, &t));
        TU_OK(clcnn_dist_trainer_step(t, NULL));
        for (int r = 0; r < n; r++) {
            clcnn_train_plan *tp = clcnn_dist_trainer_plan(t, r);
            TU_OK(clcnn_tensor_download(clcnn_train_plan_params(tp), gr, P * 4));
            TU_OK(clcnn_tensor_download(clcnn_train_plan_state(tp), st, S * 4));
            size_t changed = 0;
            for (size_t j = 0; j < P; j++) {
                float v = (float)(gsum[j] / (double)M); /* momentum 0.9 from v = 0 */
                float want = (float)((double)p0[j] - (double)cfg.lr * (double)v);
                if (memcmp(&want, &gr[j], 4))
                    fail_msg("%d replicas, replica %d: parameter %zu is %.9g, the reference "
                             "%.9g",
                             n, r, j, (double)gr[j], (double)want);
                changed += want != p0[j];
            }
            assert_true(changed > P / 2);
            for (size_t j = 0; j < S; j++) {
                float want = (float)(ssum[j] / (double)M);
                if (memcmp(&want, &st[j], 4))
                    fail_msg("%d replicas: state %zu is %.9g, the reference %.9g", n, j,
                             (double)st[j], (double)want);
            }
        }
        clcnn_dist_trainer_free(t);
        clcnn_comm_free(comm);
    }
    batch_run_free(&br);
    free(p0), free(s0), free(gr), free(st), free(gsum), free(ssum);
    clcnn_train_plan_free(p);
    clcnn_graph_free(g);
}

/* Synchronised batch norm (two batch-norm layers, dropout): 1, 2 and 4 replicas give the
 * same bytes, two runs too; local batch norm gives others. */
static void test_bn_sync_replica_count_invariant(void **state) {
    clcnn_dist_config cfg = config();
    cfg.bn_sync = 1;
    model = bn2_dropout_graph;
    size_t n1, nl;
    unsigned char *a = same_for_1_2_4(&cfg, 3, "sync", &n1);
    cfg.bn_sync = 0;
    unsigned char *e = run(2, &cfg, 3, NULL, "local_two.safetensors", &nl);
    model = tiny_graph;
    assert_int_equal(nl, n1);
    assert_true(memcmp(a, e, n1) != 0);
    free(a), free(e);
}

/* One step of synchronised batch norm (2 replicas, 4 micro-batches of 8) against one plan
 * running the global batch of 32 as one batch: the same gradient (read back from the
 * parameters: lr 1024, no momentum) and running statistics within float tolerance (not
 * bytes: the plan's kernels sum in float in another grouping); local batch norm's gradient
 * is measurably further away. */
static double bn_sync_step_error(const clcnn_dist_config *cfg, const float *p0, const float *gref,
                                 const float *sref, size_t P, size_t S, double *gmax) {
    clcnn_comm *comm = NULL;
    TU_OK(clcnn_comm_create_local(2, &comm));
    clcnn_graph *g = bn_graph(3, 2, 0);
    clcnn_dist_trainer *t = NULL;
    TU_OK(clcnn_dist_trainer_create(comm, devs, 2, g, ds, cfg, &t));
    TU_OK(clcnn_dist_trainer_step(t, NULL));
    clcnn_train_plan *tp = clcnn_dist_trainer_plan(t, 0);
    float *p1 = malloc(P * 4), *s1 = malloc(S * 4);
    TU_OK(clcnn_tensor_download(clcnn_train_plan_params(tp), p1, P * 4));
    TU_OK(clcnn_tensor_download(clcnn_train_plan_state(tp), s1, S * 4));
    double err = 0.0;
    *gmax = 0.0;
    for (size_t j = 0; j < P; j++) {
        double gd = ((double)p0[j] - (double)p1[j]) / (double)cfg->lr;
        err = fmax(err, fabs(gd - gref[j]));
        *gmax = fmax(*gmax, fabs(gref[j]));
    }
    for (size_t j = 0; cfg->bn_sync && j < S; j++)
        if (fabs(s1[j] - sref[j]) > 1e-5 * fmax(1.0, fabs(sref[j])))
            fail_msg("bn sync: state %zu is %.9g, one plan of the global batch %.9g", j,
                     (double)s1[j], (double)sref[j]);
    free(p1), free(s1);
    clcnn_dist_trainer_free(t);
    clcnn_graph_free(g);
    clcnn_comm_free(comm);
    return err;
}

static void test_bn_sync_whole_batch(void **state) {
    clcnn_dist_config cfg = config();
    cfg.lr = 1024.0f;
    cfg.momentum = 0.0f;
    cfg.bn_sync = 1;
    size_t B = cfg.global_batch;
    clcnn_graph *g = bn_graph(3, 2, 0);
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(devs[0], g, (int)B, NULL, &p));
    size_t P = clcnn_tensor_numel(clcnn_train_plan_params(p));
    size_t S = clcnn_tensor_numel(clcnn_train_plan_state(p));
    float *p0 = malloc(P * 4), *gref = malloc(P * 4), *sref = malloc(S * 4);
    TU_OK(clcnn_tensor_download(clcnn_train_plan_params(p), p0, P * 4));
    batch_run br = batch_run_make(B, cfg.seed);
    TU_OK(clcnn_train_plan_zero_grad(p));
    batch_run_next(&br, p);
    TU_OK(clcnn_tensor_download(clcnn_train_plan_grads(p), gref, P * 4));
    TU_OK(clcnn_tensor_download(clcnn_train_plan_state(p), sref, S * 4));
    double gmax = 0.0, gmax2 = 0.0;
    double err = bn_sync_step_error(&cfg, p0, gref, sref, P, S, &gmax);
    cfg.bn_sync = 0;
    double err_local = bn_sync_step_error(&cfg, p0, gref, sref, P, S, &gmax2);
    printf("bn sync vs one plan of the global batch: largest gradient difference %.3g "
           "(largest gradient %.3g); local batch norm: %.3g\n",
           err, gmax, err_local);
    assert_true(err <= 1e-4 * gmax);
    assert_true(err_local > 100.0 * err);
    batch_run_free(&br);
    free(p0), free(gref), free(sref);
    clcnn_train_plan_free(p);
    clcnn_graph_free(g);
}

/* clcnn_train_options.bn_sync on its own: callbacks that hand back the batch's own
 * statistics give the plain plan's gradients and state within float tolerance (the host
 * path in fp64 vs the device kernels); a callback's error stops the forward with it; a
 * count below 1 is an error naming the layer. */
static int hook_mode; /* 0: pass through, 1: fail, 2: count 0 */
static int hook_calls[2];

static clcnn_status hook_stats(void *ctx, int layer, size_t c, double *count, double *mean,
                               double *m2) {
    (void)ctx, (void)layer, (void)c, (void)mean, (void)m2;
    hook_calls[0]++;
    if (hook_mode == 1) return cc_fail(CLCNN_ERR_DIST, "hook says no");
    if (hook_mode == 2) *count = 0.0;
    return CLCNN_OK;
}

static clcnn_status hook_grads(void *ctx, int layer, size_t c, double *sum_dy, double *sum_dyxhat) {
    (void)ctx, (void)layer, (void)c, (void)sum_dy, (void)sum_dyxhat;
    hook_calls[1]++;
    return CLCNN_OK;
}

static void test_bn_sync_hook(void **state) {
    clcnn_graph *g = bn_graph(3, 2, 0);
    clcnn_bn_sync hook = {NULL, hook_stats, hook_grads};
    clcnn_train_options o = {0};
    float *res[2][2];
    size_t P = 0, S = 0;
    for (int with = 0; with < 2; with++) {
        o.bn_sync = with ? &hook : NULL;
        clcnn_train_plan *p = NULL;
        TU_OK(clcnn_train_plan_create(devs[0], g, 12, &o, &p));
        P = clcnn_tensor_numel(clcnn_train_plan_params(p));
        S = clcnn_tensor_numel(clcnn_train_plan_state(p));
        batch_run br = batch_run_make(12, 4);
        TU_OK(clcnn_train_plan_zero_grad(p));
        hook_mode = 0;
        batch_run_next(&br, p);
        res[with][0] = malloc(P * 4);
        res[with][1] = malloc(S * 4);
        TU_OK(clcnn_tensor_download(clcnn_train_plan_grads(p), res[with][0], P * 4));
        TU_OK(clcnn_tensor_download(clcnn_train_plan_state(p), res[with][1], S * 4));
        if (with) {
            assert_int_equal(hook_calls[0], 2); /* two layers, one forward */
            assert_int_equal(hook_calls[1], 2);
            const clcnn_tensor *in = br.x;
            hook_mode = 1;
            assert_int_equal(clcnn_train_plan_forward(p, &in, 1), CLCNN_ERR_DIST);
            assert_non_null(strstr(clcnn_last_error(), "hook says no"));
            hook_mode = 2;
            assert_int_equal(clcnn_train_plan_forward(p, &in, 1), CLCNN_ERR_INVALID_ARG);
            assert_non_null(strstr(clcnn_last_error(), "layer 0's statistics cover 0 values"));
        }
        batch_run_free(&br);
        clcnn_train_plan_free(p);
    }
    double gmax = 0.0, err = 0.0;
    for (size_t j = 0; j < P; j++) {
        gmax = fmax(gmax, fabs(res[0][0][j]));
        err = fmax(err, fabs(res[0][0][j] - res[1][0][j]));
    }
    printf("bn_sync pass-through vs device kernels: gradient difference %.3g (largest %.3g)\n", err,
           gmax);
    assert_true(gmax > 0.0 && err <= 1e-4 * gmax);
    for (size_t j = 0; j < S; j++)
        assert_true(fabs(res[0][1][j] - res[1][1][j]) <= 1e-5 * fmax(1.0, fabs(res[0][1][j])));
    for (int k = 0; k < 4; k++)
        free(res[k / 2][k % 2]);
    clcnn_graph_free(g);
}

/* Two replicas of the tiny model after one step (free with end_two). */
typedef struct two {
    clcnn_comm *comm;
    clcnn_graph *g;
    clcnn_dist_trainer *t;
} two;

static two start_two(int bn_sync) {
    clcnn_dist_config cfg = config();
    cfg.bn_sync = bn_sync;
    two w = {0};
    TU_OK(clcnn_comm_create_local(2, &w.comm));
    w.g = tiny_graph(3);
    TU_OK(clcnn_dist_trainer_create(w.comm, devs, 2, w.g, ds, &cfg, &w.t));
    TU_OK(clcnn_dist_trainer_step(w.t, NULL));
    return w;
}

static void end_two(two *w) {
    clcnn_dist_trainer_free(w->t);
    clcnn_graph_free(w->g);
    clcnn_comm_free(w->comm);
}

/* A replica whose parameters changed behind the trainer's back is caught by the check. */
static void test_divergence_caught(void **state) {
    two w = start_two(0);
    clcnn_dist_trainer *t = w.t;
    TU_OK(clcnn_dist_trainer_check(t));
    clcnn_train_plan *p1 = clcnn_dist_trainer_plan(t, 1);
    const char *name = clcnn_train_plan_param_name(p1, 0);
    size_t n = clcnn_tensor_numel(clcnn_train_plan_param(p1, name));
    float *v = malloc(n * 4);
    TU_OK(clcnn_train_plan_read(p1, name, v, n * 4));
    v[0] = nextafterf(v[0], INFINITY); /* one ulp */
    TU_OK(clcnn_train_plan_write(p1, name, v, n * 4));
    assert_int_equal(clcnn_dist_trainer_check(t), CLCNN_ERR_DIST);
    assert_non_null(strstr(clcnn_last_error(), "replica 1 differ"));
    free(v);
    end_two(&w);
}

/* One replica's kernel launch fails: the step returns that replica's error (not "another
 * replica failed") instead of leaving the other waiting at the exchange; with synchronised
 * batch norm too, failing in its first forward pass or in a later pass (at a barrier). */
static void test_replica_failure(void **state) {
    const struct { int bn_sync, nth; } cases[] = {{0, 3}, {1, 3}, {1, 40}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        two w = start_two(cases[i].bn_sync);
        clcnn_dist_trainer *t = w.t;
        cc_fault_set(CC_FAULT_ENQUEUE_KERNEL, cases[i].nth);
        clcnn_status s = clcnn_dist_trainer_step(t, NULL);
        cc_fault_set(CC_FAULT_ENQUEUE_KERNEL, 0);
        assert_int_not_equal(s, CLCNN_OK);
        printf("the failed step (bn sync %d, launch %d): %s\n", cases[i].bn_sync, cases[i].nth,
               clcnn_last_error());
        assert_non_null(strstr(clcnn_last_error(), "replica "));
        assert_null(strstr(clcnn_last_error(), "another replica failed"));
        assert_int_equal(clcnn_dist_trainer_steps(t), 1);
        end_two(&w);
    }
}

static void test_errors(void **state) {
    clcnn_dist_config cfg = config();
    clcnn_comm *comm = NULL;
    clcnn_graph *g = tiny_graph(3);
    clcnn_dist_trainer *t = NULL;
    assert_int_equal(clcnn_comm_create_local(0, &comm), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_comm_create_local(2, &comm));
    assert_int_equal(clcnn_dist_trainer_create(comm, devs, 1, g, ds, &cfg, &t),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "1 devices for 2 replicas"));
    cfg.micro_batch = 5;
    assert_int_equal(clcnn_dist_trainer_create(comm, devs, 2, g, ds, &cfg, &t),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "must divide the global batch"));
    cfg.micro_batch = 32;
    assert_int_equal(clcnn_dist_trainer_create(comm, devs, 2, g, ds, &cfg, &t),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "fewer than the 2 replicas"));
    assert_null(t);
    cfg = config();
    clcnn_device *same[2] = {devs[0], devs[0]};
    assert_int_equal(clcnn_dist_trainer_create(comm, same, 2, g, ds, &cfg, &t),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "the same device handle"));
    TU_OK(clcnn_dist_trainer_create(comm, devs, 2, g, ds, &cfg, &t));
    /* a file that is no checkpoint of this model: an error, and nothing changes */
    char path[4200];
    snprintf(path, sizeof path, "%s/junk.safetensors", tmp);
    FILE *f = fopen(path, "wb");
    fputs("not a checkpoint", f);
    fclose(f);
    TU_OK(clcnn_dist_trainer_step(t, NULL));
    assert_int_equal(clcnn_dist_trainer_load(t, path), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "not a checkpoint of this model"));
    assert_int_equal(clcnn_dist_trainer_steps(t), 1);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", tmp);
    assert_int_equal(clcnn_dist_trainer_save(t, path, NULL), CLCNN_ERR_IO);
    clcnn_dist_trainer_free(t);
    cfg.bn_sync = 1;
    cfg.reduce = CLCNN_DIST_ALLREDUCE;
    assert_int_equal(clcnn_dist_trainer_create(comm, devs, 2, g, ds, &cfg, &t),
                     CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "synchronised batch norm needs the ordered"));
    cfg.bn_sync = 0;
    cfg.reduce = CLCNN_DIST_NO_REDUCE; /* runs, but has nothing to save */
    TU_OK(clcnn_dist_trainer_create(comm, devs, 2, g, ds, &cfg, &t));
    TU_OK(clcnn_dist_trainer_step(t, NULL));
    assert_int_equal(clcnn_dist_trainer_save(t, path, NULL), CLCNN_ERR_UNSUPPORTED);
    clcnn_dist_trainer_free(t);
    clcnn_comm_free(comm);
    if (!clcnn_dist_have_mpi()) {
        assert_int_equal(clcnn_comm_create_mpi(1, 1.0, &comm), CLCNN_ERR_UNSUPPORTED);
        assert_non_null(strstr(clcnn_last_error(), "built without MPI"));
    }
    clcnn_graph_free(g);
}

static int setup(void **state) {
    tmp = tu_temp_dir("dist");
    devs[0] = tu_device();
    for (int i = 1; i < 4; i++)
        if (clcnn_device_open(i % 2 ? "1" : "0", &devs[i]) != CLCNN_OK) {
            fprintf(stderr, "test_dist: one OpenCL device; each replica opens it\n");
            if (clcnn_device_open("0", &devs[i]) != CLCNN_OK) return -1;
        }
    if (clcnn_dataset_load_mnist(NULL, CLCNN_SPLIT_TRAIN, &ds) != CLCNN_OK) return -1;
    clcnn_dataset_limit(ds, 256);
    return 0;
}

static int teardown(void **state) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    free(tmp);
    clcnn_dataset_free(ds);
    for (int i = 1; i < 4; i++)
        clcnn_device_close(devs[i]);
    tu_close_device();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_order),
        cmocka_unit_test(test_first_step_reference),
        cmocka_unit_test(test_replica_count_invariant),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_bn_sync_replica_count_invariant),
        cmocka_unit_test(test_bn_sync_whole_batch),
        cmocka_unit_test(test_bn_sync_hook),
        cmocka_unit_test(test_divergence_caught),
        cmocka_unit_test(test_replica_failure),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
