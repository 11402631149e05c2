/* Crash safety of the files the library writes: checkpoints and program-cache binaries.
 *
 * Child processes (this program run again with --child-save / --child-cache) write in a
 * loop; the parent SIGKILLs them at random moments, many times (50 + 25), and after every kill
 * checks what a user would find on disk:
 *   - checkpoint: the file always loads (weights + Adam state) and holds exactly one
 *     generation the child completed (or the one before, or the one whose rename won
 *     the race with the kill), bit for bit; never a mix, never a truncated file;
 *   - program cache: a fresh device handle on that directory loads every binary there or
 *     rebuilds the missing ones, rejects none (no truncated file ever has a final name),
 *     ignores the temporary files of killed writers, and computes correct results.
 * Leftover temporary files of killed writers are counted and reported. */
#include "test_util.h"

#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Under ASan (make test-sanitize) every process start, save and driver build is 5-10x
 * slower, so the sanitizer suite runs fewer kills of a smaller checkpoint; the full counts
 * run in the normal suite. */
#if defined(__SANITIZE_ADDRESS__)
#define KILLS_CHECKPOINT 15
#define KILLS_CACHE 10
#define BIG_FEATURES 512
#else
#define KILLS_CHECKPOINT 50
#define KILLS_CACHE 25
#define BIG_FEATURES 1024
#endif

static char self_path[4096];

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- the checkpoint writer ---------------------------------------------------------- */

/* (1, 32, 32) -> flatten -> linear BIG_FEATURES (1024: 1 M parameters; with Adam's two
 * moments a save writes about 12.6 MB and fsyncs it, long enough to be killed in the
 * middle). */
static clcnn_status make_big_net(clcnn_device *dev, clcnn_net **net, clcnn_optimizer **opt) {
    clcnn_status s;
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    *net = NULL;
    *opt = NULL;
    if ((s = clcnn_net_create(dev, 1, 32, 32, net)) || (s = clcnn_net_add_flatten(*net)) ||
        (s = clcnn_net_add_linear(*net, BIG_FEATURES, 1)) ||
        (s = clcnn_optimizer_create(*net, &cfg, opt)))
        return s;
    return CLCNN_OK;
}

/* Generation g: weights from seed g; metadata "gen" = g. */
static int child_save(const char *path, long gen) {
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev) || make_big_net(dev, &net, &opt)) {
        fprintf(stderr, "child: %s\n", clcnn_last_error());
        return 1;
    }
    printf("R\n");
    fflush(stdout);
    for (;; gen++) {
        char g[32];
        snprintf(g, sizeof g, "%ld", gen);
        const char *meta[] = {"gen", g, NULL};
        if (clcnn_net_init(net, CLCNN_INIT_HE, (uint64_t)gen) ||
            clcnn_checkpoint_save(net, opt, path, meta)) {
            fprintf(stderr, "child: %s\n", clcnn_last_error());
            return 1;
        }
        printf("S %ld\n", gen);
        fflush(stdout);
    }
}

/* ---- the program-cache writer ------------------------------------------------------- */

/* Programs the cache writer rebuilds in a loop; relu forward uses the first. */
static const char *const cache_files[] = {"activation", "pool2d", "linear", "optim"};
#define NCACHE (sizeof cache_files / sizeof *cache_files)

static void remove_matching(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strstr(e->d_name, needle)) continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
}

static int count_matching(const char *dir, const char *needle) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, needle) != NULL;
    if (d) closedir(d);
    return n;
}

/* Each cycle: a fresh handle, the final cache files removed, every program built and
 * written again (temporary file, fsync, rename). */
static int child_cache(const char *dir) {
    setenv("CLCNN_CACHE_DIR", dir, 1);
    printf("R\n");
    fflush(stdout);
    for (long cycle = 0;; cycle++) {
        clcnn_device *dev = NULL;
        if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev)) return 1;
        remove_matching(dir, ".clbin");
        for (size_t i = 0; i < NCACHE; i++) {
            cl_program p;
            if (cc_program_get(dev, cache_files[i], "", &p)) {
                fprintf(stderr, "child: %s\n", clcnn_last_error());
                return 1;
            }
        }
        clcnn_device_close(dev);
        printf("C %ld\n", cycle);
        fflush(stdout);
    }
}

/* ---- the parent's side ---------------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int out; /* read end of the child's stdout */
    char buf[65536];
    size_t len;
} child;

static void spawn(child *c, const char *mode, const char *arg1, const char *arg2) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(self_path, self_path, mode, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    c->out = fds[0];
    c->len = 0;
}

/* Read what the child printed, waiting at most timeout_ms for more. */
static void drain(child *c, int timeout_ms) {
    struct pollfd pfd = {c->out, POLLIN, 0};
    while (poll(&pfd, 1, timeout_ms) > 0) {
        if (c->len + 1 >= sizeof c->buf) c->len = 0; /* only the last lines matter */
        ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (n <= 0) break;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        timeout_ms = 0;
    }
    c->buf[c->len] = '\0';
}

static void wait_ready(child *c) {
    double t0 = now_ms();
    while (!strstr(c->buf, "R\n")) {
        drain(c, 100);
        if (now_ms() - t0 > 120000) fail_msg("child did not start: %s", c->buf);
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) fail_msg("child died early");
    }
}

static void kill_child(child *c) {
    kill(c->pid, SIGKILL);
    int st = 0;
    assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
    if (!WIFSIGNALED(st)) fail_msg("child exited by itself (status %d): it failed", st);
    drain(c, 0);
    close(c->out);
}

/* The number after the last "<tag> " line, or -1. */
static long last_report(const child *c, char tag) {
    long v = -1;
    for (const char *p = c->buf; (p = strchr(p, tag)); p++)
        if ((p == c->buf || p[-1] == '\n') && p[1] == ' ') v = strtol(p + 2, NULL, 10);
    return v;
}

static float *read_all_params(const clcnn_net *net, size_t *total) {
    size_t n = 0;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        n += clcnn_tensor_numel(p.value);
    }
    float *v = malloc(n * sizeof *v), *q = v;
    assert_non_null(v);
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        TU_OK(clcnn_tensor_download(p.value, q, clcnn_tensor_numel(p.value) * sizeof *q));
        q += clcnn_tensor_numel(p.value);
    }
    *total = n;
    return v;
}

static void test_killed_checkpoint_saves(void **state) {
    (void)state;
    char *dir = tu_temp_dir("crashsafe-ckpt");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    clcnn_net *net = NULL, *ref = NULL;
    clcnn_optimizer *opt = NULL, *ref_opt = NULL;
    TU_OK(make_big_net(tu_device(), &net, &opt));
    TU_OK(make_big_net(tu_device(), &ref, &ref_opt));

    /* Generation 0, saved here: the file every kill must leave intact (or replace). */
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 0));
    double t0 = now_ms();
    TU_OK(clcnn_checkpoint_save(net, opt, path, (const char *[]){"gen", "0", NULL}));
    double save_ms = now_ms() - t0;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    printf("checkpoint of %.1f MB saves in %.0f ms\n", st.st_size / 1e6, save_ms);

    tu_rng rng = tu_rng_seed(2024);
    long valid = 0; /* the generation on disk */
    int mid_write = 0, replaced = 0;
    /* At least KILLS_CHECKPOINT kills, and more (up to 300) until one has landed inside a
     * save: where a kill lands is up to the scheduler, so the count is not fixed. */
    int k = 0;
    for (; k < KILLS_CHECKPOINT || (mid_write == 0 && k < 300); k++) {
        long start = 1000L * (k + 1);
        char arg[32];
        snprintf(arg, sizeof arg, "%ld", start);
        child c;
        spawn(&c, "--child-save", path, arg);
        wait_ready(&c);
        /* Anywhere in the first few saves (the first also initialises the weights). */
        usleep((useconds_t)(tu_rng_uniform(&rng, 0, 6.0f * (float)save_ms + 50) * 1000));
        kill_child(&c);
        long done = last_report(&c, 'S');
        mid_write += count_matching(dir, ".tmp.") > 0;
        remove_matching(dir, ".tmp."); /* a killed save leaves its temporary file */

        char g[64];
        TU_OK(clcnn_checkpoint_metadata(path, "gen", g, sizeof g));
        long on_disk = strtol(g, NULL, 10);
        /* The last completed save, or the next one whose rename beat the kill, or (no
         * save completed) the generation that was there before. */
        int ok = on_disk == done || on_disk == (done < 0 ? start : done + 1) ||
                 (done < 0 && on_disk == valid);
        if (!ok)
            fail_msg("kill %d: the file holds generation %ld; the child had completed %ld, "
                     "the one before was %ld",
                     k, on_disk, done, valid);
        replaced += on_disk != valid;
        valid = on_disk;

        /* It loads (weights and Adam state) and is exactly generation `valid`. */
        TU_OK(clcnn_checkpoint_load(net, opt, path));
        TU_OK(clcnn_net_init(ref, CLCNN_INIT_HE, (uint64_t)valid));
        size_t n1, n2;
        float *got = read_all_params(net, &n1), *want = read_all_params(ref, &n2);
        assert_int_equal(n1, n2);
        if (memcmp(got, want, n1 * sizeof *got) != 0)
            fail_msg("kill %d: checkpoint of generation %ld does not hold its weights", k, valid);
        free(got);
        free(want);
    }
    printf("%d kills: the checkpoint changed %d times; %d kills left a temporary file "
           "(killed inside a save); every time the file loaded whole\n",
           k, replaced, mid_write);
    assert_true(replaced > 0);  /* the children did get saves done */
    assert_true(mid_write > 0); /* and some kills landed inside one */

    clcnn_optimizer_free(opt);
    clcnn_optimizer_free(ref_opt);
    clcnn_net_free(net);
    clcnn_net_free(ref);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* A fresh handle on dir: every program loads or rebuilds, none is rejected, relu works. */
static void check_cache(const char *dir, int k, int *loaded) {
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    for (size_t i = 0; i < NCACHE; i++) {
        cl_program p;
        TU_OK(cc_program_get(dev, cache_files[i], "", &p));
    }
    clcnn_cache_stats cs;
    clcnn_device_cache_stats(dev, &cs);
    if (cs.disk_rejects)
        fail_msg("kill %d: %llu cache file(s) with a final name did not validate", k,
                 (unsigned long long)cs.disk_rejects);
    *loaded += (int)cs.disk_hits;

    float x[100], y[100];
    tu_rng r = tu_rng_seed((uint64_t)k);
    tu_fill_uniform(&r, x, 100, -1, 1);
    clcnn_tensor *tx = NULL, *ty = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){100}, &tx));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){100}, &ty));
    TU_OK(clcnn_tensor_upload(tx, x, sizeof x));
    TU_OK(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0, tx, ty));
    TU_OK(clcnn_tensor_download(ty, y, sizeof y));
    for (int i = 0; i < 100; i++)
        assert_true(y[i] == (x[i] > 0 ? x[i] : 0.0f)); /* relu is exact */
    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
    clcnn_device_close(dev);
}

static void test_killed_cache_writers(void **state) {
    (void)state;
    char *dir = tu_temp_dir("crashsafe-cache");
    char *saved = getenv("CLCNN_CACHE_DIR") ? strdup(getenv("CLCNN_CACHE_DIR")) : NULL;
    setenv("CLCNN_CACHE_DIR", dir, 1);

    /* One uninterrupted cycle first, to time it (and to warm the driver's own cache). */
    child c;
    spawn(&c, "--child-cache", dir, "");
    wait_ready(&c);
    double t0 = now_ms();
    while (last_report(&c, 'C') < 1) {
        drain(&c, 100);
        if (now_ms() - t0 > 300000) fail_msg("cache writer made no progress");
    }
    double cycle_ms = (now_ms() - t0) / 2;
    kill_child(&c);
    printf("a cache-writer cycle (%zu programs) takes %.0f ms\n", NCACHE, cycle_ms);

    tu_rng rng = tu_rng_seed(77);
    int mid_write = 0, loaded = 0;
    for (int k = 0; k < KILLS_CACHE; k++) {
        spawn(&c, "--child-cache", dir, "");
        wait_ready(&c);
        usleep((useconds_t)(tu_rng_uniform(&rng, 0, 2.0f * (float)cycle_ms + 10) * 1000));
        kill_child(&c);
        mid_write += count_matching(dir, ".tmp.") > 0;
        check_cache(dir, k, &loaded); /* with the temporary files still there */
        remove_matching(dir, ".tmp.");
    }
    printf("%d kills: %d left a temporary cache file (killed inside a write); %d binaries "
           "loaded, none rejected\n",
           KILLS_CACHE, mid_write, loaded);
    assert_true(loaded > 0);

    remove_matching(dir, ".clbin");
    rmdir(dir);
    free(dir);
    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child-save") == 0)
        return child_save(argv[2], argc > 3 ? strtol(argv[3], NULL, 10) : 1);
    if (argc > 2 && strcmp(argv[1], "--child-cache") == 0) return child_cache(argv[2]);
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len <= 0) return 1;
    self_path[len] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_checkpoint_saves),
        cmocka_unit_test(test_killed_cache_writers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
