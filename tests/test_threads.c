/* Concurrency, following the threading rules of docs/threading.md:
 *   - several threads, each with its own device handle (on the same physical device),
 *     run whole training steps at once, cold (every program built and written to one
 *     shared disk cache by all of them together) and warm, and get bit-for-bit the
 *     result of a single-threaded run;
 *   - the detail message is per thread: a failure on one thread does not change what
 *     clcnn_last_error() says on another;
 *   - several processes share one empty cache directory, build and write it at the same
 *     time, and all compute the reference result; afterwards the directory holds only
 *     whole binaries (no temporary files) that a fresh handle loads without a rebuild. */
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define ROUNDS 3
#define NPROCS 3
#define NB 4
#define NK 5

static char self_path[4096];

/* ---- one training step, from nothing ---------------------------------------------------- */

typedef struct result {
    float *values; /* every parameter after the step, back to back */
    size_t total;
    float loss;
} result;

/* (3, 12, 12) -> conv 6 3x3 pad 1 -> batchnorm -> relu -> maxpool 2 -> conv 8 3x3 ->
 * relu -> flatten -> linear NK; Adam. Exercises the direct conv, batchnorm, pooling,
 * CLBlast (linear), softmax cross-entropy and the optimizer kernels. */
static clcnn_status train_step(clcnn_device *dev, result *out) {
    memset(out, 0, sizeof *out);
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_tensor *x = NULL, *labels = NULL;
    float hx[NB * 3 * 12 * 12];
    int32_t hl[NB];
    tu_rng r = tu_rng_seed(5);
    tu_fill_uniform(&r, hx, sizeof hx / sizeof *hx, -1, 1);
    for (int i = 0; i < NB; i++)
        hl[i] = (i * 3) % NK;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    clcnn_conv2d_desc d0 = clcnn_conv2d_desc_default();
    clcnn_pool2d_desc pd = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    clcnn_status s;
    if ((s = clcnn_net_create(dev, 3, 12, 12, &net)) ||
        (s = clcnn_net_add_conv2d(net, 6, 3, 3, &d, 1)) ||
        (s = clcnn_net_add_batchnorm(net, 0.1f, 1e-5f)) ||
        (s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0)) ||
        (s = clcnn_net_add_pool2d(net, &pd)) || (s = clcnn_net_add_conv2d(net, 8, 3, 3, &d0, 1)) ||
        (s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0)) ||
        (s = clcnn_net_add_flatten(net)) || (s = clcnn_net_add_linear(net, NK, 1)) ||
        (s = clcnn_net_init(net, CLCNN_INIT_HE, 3)) ||
        (s = clcnn_optimizer_create(net, &cfg, &opt)) ||
        (s = clcnn_tensor_create4(dev, NB, 3, 12, 12, &x)) ||
        (s = clcnn_tensor_create(dev, CLCNN_I32, 1, (size_t[]){NB}, &labels)) ||
        (s = clcnn_tensor_upload(x, hx, sizeof hx)) ||
        (s = clcnn_tensor_upload(labels, hl, sizeof hl)))
        goto done;
    for (int step = 0; step < 2 && !s; step++) {
        if (!(s = clcnn_net_loss_backward(net, x, labels, &out->loss, NULL)))
            s = clcnn_optimizer_step(opt, 1e-2f);
    }
    if (s) goto done;
    size_t total = 0;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        clcnn_net_param(net, i, &p);
        total += clcnn_tensor_numel(p.value);
    }
    out->values = malloc(total * sizeof(float));
    if (!out->values) {
        s = CLCNN_ERR_OUT_OF_MEMORY;
        goto done;
    }
    out->total = total;
    size_t pos = 0;
    for (int i = 0; i < clcnn_net_num_params(net) && !s; i++) {
        clcnn_param p;
        clcnn_net_param(net, i, &p);
        size_t n = clcnn_tensor_numel(p.value);
        s = clcnn_tensor_download(p.value, out->values + pos, n * sizeof(float));
        pos += n;
    }
done:
    if (s) {
        free(out->values);
        out->values = NULL;
    }
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    return s;
}

static result reference;

static int same_as_reference(const result *r) {
    return r->total == reference.total && r->loss == reference.loss &&
           memcmp(r->values, reference.values, r->total * sizeof(float)) == 0;
}

static int setup(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev)) return -1;
    clcnn_status s = train_step(dev, &reference);
    clcnn_device_close(dev);
    return s ? -1 : 0;
}

static int teardown(void **state) {
    (void)state;
    free(reference.values);
    return 0;
}

/* ---- threads -------------------------------------------------------------------------- */

static pthread_barrier_t barrier;

typedef struct worker {
    int id;
    int steps_ok, steps_same;
    int message_kept;
    char error[512];
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    clcnn_device *dev = NULL;
    pthread_barrier_wait(&barrier); /* all open and build at the same moment */
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev)) {
        snprintf(w->error, sizeof w->error, "open: %s", clcnn_last_error());
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        return NULL;
    }
    for (int round = 0; round < ROUNDS; round++) {
        result r;
        clcnn_status s = train_step(dev, &r);
        if (s) {
            snprintf(w->error, sizeof w->error, "round %d: %s", round, clcnn_last_error());
            continue;
        }
        w->steps_ok++;
        w->steps_same += same_as_reference(&r);
        free(r.values);
    }
    /* A failure of this thread's own, with a number only this thread uses. */
    size_t own = 100 + (size_t)w->id;
    clcnn_tensor *a = NULL, *b = NULL;
    char expect[32];
    snprintf(expect, sizeof expect, "%zu elements", own);
    if (!clcnn_tensor_create(dev, CLCNN_F32, 1, &own, &a) &&
        !clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){7}, &b))
        (void)clcnn_tensor_copy(b, a); /* CLCNN_ERR_SHAPE: "... has <own> elements ..." */
    pthread_barrier_wait(&barrier);    /* every thread has failed in its own way */
    pthread_barrier_wait(&barrier);
    w->message_kept = strstr(clcnn_last_error(), expect) != NULL;
    if (!w->message_kept)
        snprintf(w->error, sizeof w->error, "message changed: '%s'", clcnn_last_error());
    clcnn_tensor_free(a);
    clcnn_tensor_free(b);
    clcnn_device_close(dev);
    return NULL;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static int count_tmp(const char *dir, int *clbin) {
    int tmp = 0;
    *clbin = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        tmp += strstr(e->d_name, ".tmp") != NULL;
        *clbin += strstr(e->d_name, ".tmp") == NULL && strstr(e->d_name, ".clbin") != NULL;
    }
    if (d) closedir(d);
    return tmp;
}

/* A fresh handle finds every program of the step in dir: no build, no reject. */
static void assert_cache_complete(const char *dir) {
    char *saved = getenv("CLCNN_CACHE_DIR") ? strdup(getenv("CLCNN_CACHE_DIR")) : NULL;
    setenv("CLCNN_CACHE_DIR", dir, 1);
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    result r;
    TU_OK(train_step(dev, &r));
    assert_true(same_as_reference(&r));
    free(r.values);
    clcnn_cache_stats cs;
    clcnn_device_cache_stats(dev, &cs);
    printf("fresh handle on the shared cache: %llu loaded, %llu built, %llu rejected\n",
           (unsigned long long)cs.disk_hits, (unsigned long long)cs.builds,
           (unsigned long long)cs.disk_rejects);
    assert_int_equal(cs.builds, 0);
    assert_int_equal(cs.disk_rejects, 0);
    assert_true(cs.disk_hits > 0);
    clcnn_device_close(dev);
    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
}

static void test_threads_with_own_handles(void **state) {
    (void)state;
    /* A cold, shared disk cache: the threads build and write the same programs together.
     * (setenv only here, before any thread exists.) */
    char *dir = tu_temp_dir("threads-cache");
    char *saved = getenv("CLCNN_CACHE_DIR") ? strdup(getenv("CLCNN_CACHE_DIR")) : NULL;
    setenv("CLCNN_CACHE_DIR", dir, 1);
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
    for (int i = 0; i < NTHREADS; i++) {
        if (w[i].error[0]) fail_msg("thread %d: %s", i, w[i].error);
        assert_int_equal(w[i].steps_ok, ROUNDS);
        assert_int_equal(w[i].steps_same, ROUNDS);
        assert_true(w[i].message_kept);
    }
    printf("%d threads x %d training steps, each on its own handle: all bit-identical to "
           "the single-threaded step; messages stayed per thread\n",
           NTHREADS, ROUNDS);
    int clbin = 0;
    assert_int_equal(count_tmp(dir, &clbin), 0);
    assert_true(clbin > 0);
    assert_cache_complete(dir);
    remove_dir(dir);
    free(dir);
}

/* ---- processes --------------------------------------------------------------------------- */

/* Child: wait for the parent's go (a byte on stdin), run the step, write the values. */
static int child_main(const char *out_path) {
    char go;
    if (read(STDIN_FILENO, &go, 1) != 1) return 2;
    clcnn_device *dev = NULL;
    result r;
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev) || train_step(dev, &r)) {
        fprintf(stderr, "child: %s\n", clcnn_last_error());
        return 1;
    }
    clcnn_cache_stats cs;
    clcnn_device_cache_stats(dev, &cs);
    clcnn_device_close(dev);
    FILE *f = fopen(out_path, "wb");
    if (!f) return 1;
    int ok = fwrite(&r.loss, sizeof r.loss, 1, f) == 1 &&
             fwrite(r.values, sizeof(float), r.total, f) == r.total;
    fprintf(stderr, "child %ld: %llu built, %llu loaded, %llu written\n", (long)getpid(),
            (unsigned long long)cs.builds, (unsigned long long)cs.disk_hits,
            (unsigned long long)cs.disk_writes);
    free(r.values);
    return fclose(f) == 0 && ok ? 0 : 1;
}

static void test_processes_share_one_cache(void **state) {
    (void)state;
    char *dir = tu_temp_dir("procs-cache");
    char *outdir = tu_temp_dir("procs-out");
    pid_t pids[NPROCS];
    int go[NPROCS];
    fflush(NULL);
    for (int i = 0; i < NPROCS; i++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            dup2(fds[0], STDIN_FILENO);
            close(fds[0]);
            close(fds[1]);
            char out[8400];
            snprintf(out, sizeof out, "%s/%d", outdir, i);
            setenv("CLCNN_CACHE_DIR", dir, 1); /* in the child only */
            execl(self_path, self_path, "--child", out, (char *)NULL);
            _exit(127);
        }
        close(fds[0]);
        go[i] = fds[1];
    }
    for (int i = 0; i < NPROCS; i++) { /* start them together */
        assert_int_equal(write(go[i], "g", 1), 1);
        close(go[i]);
    }
    for (int i = 0; i < NPROCS; i++) {
        int st = 0;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        char out[8400];
        snprintf(out, sizeof out, "%s/%d", outdir, i);
        FILE *f = fopen(out, "rb");
        assert_non_null(f);
        result r = {malloc(reference.total * sizeof(float)), reference.total, 0};
        assert_int_equal(fread(&r.loss, sizeof r.loss, 1, f), 1);
        assert_int_equal(fread(r.values, sizeof(float), r.total, f), r.total);
        assert_int_equal(fgetc(f), EOF);
        fclose(f);
        if (!same_as_reference(&r)) fail_msg("process %d computed a different step", i);
        free(r.values);
    }
    int clbin = 0;
    assert_int_equal(count_tmp(dir, &clbin), 0);
    printf("%d processes built one cold cache together (%d binaries), all results "
           "bit-identical, no temporary file left\n",
           NPROCS, clbin);
    assert_cache_complete(dir);
    remove_dir(dir);
    remove_dir(outdir);
    free(dir);
    free(outdir);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0) return child_main(argv[2]);
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len <= 0) return 1;
    self_path[len] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_with_own_handles),
        cmocka_unit_test(test_processes_share_one_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
