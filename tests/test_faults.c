/* Injected OpenCL and file faults (lib/fault.h): for each fault kind, the N-th call of
 * that kind fails, for N = 1, 2, ... until a whole training step (net construction,
 * forward, loss, backward, Adam step) runs without reaching the N-th call. Every failure
 * must
 *   - return a status with a message (no crash, no abort),
 *   - leak nothing (the sanitizer build, `make test-sanitize`, checks this with LSan),
 *   - leave the device usable: an un-faulted step right after it on the same device
 *     gives bit-for-bit the result of a step on a fresh device,
 * and a failing checkpoint write never damages the existing checkpoint (loaded back and
 * compared) nor leaves temporary files behind.
 *
 * The sweep prints one line per N (kind, N, status, first line of the message), which is
 * the fault table of the hardening report. */
#include "test_util.h"

#include "fault.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NB 4 /* batch */
#define NK 3 /* classes */

/* Everything a step produces: every parameter after the update, and the loss. */
typedef struct step_result {
    int nparams;
    float *values; /* all parameters back to back */
    size_t total;
    float loss;
} step_result;

static void result_free(step_result *r) {
    free(r->values);
    memset(r, 0, sizeof *r);
}

/* (1, 8, 8) -> conv 4 3x3 pad 1 -> batchnorm -> relu -> maxpool 2 -> flatten -> linear NK */
static clcnn_status build_net(clcnn_device *dev, clcnn_net **out) {
    clcnn_net *net = NULL;
    clcnn_status s = clcnn_net_create(dev, 1, 8, 8, &net);
    if (s) return s;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    clcnn_pool2d_desc pd = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    if ((s = clcnn_net_add_conv2d(net, 4, 3, 3, &d, 1)) ||
        (s = clcnn_net_add_batchnorm(net, 0.1f, 1e-5f)) ||
        (s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0)) ||
        (s = clcnn_net_add_pool2d(net, &pd)) || (s = clcnn_net_add_flatten(net)) ||
        (s = clcnn_net_add_linear(net, NK, 1)) || (s = clcnn_net_init(net, CLCNN_INIT_HE, 7))) {
        clcnn_net_free(net);
        return s;
    }
    *out = net;
    return CLCNN_OK;
}

static void batch_data(float *x, int32_t *lab) {
    tu_rng r = tu_rng_seed(11);
    tu_fill_uniform(&r, x, NB * 64, -1, 1);
    for (int i = 0; i < NB; i++)
        lab[i] = i % NK;
}

static clcnn_status read_params(const clcnn_net *net, step_result *r) {
    int np = clcnn_net_num_params(net);
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        clcnn_param p;
        clcnn_status s = clcnn_net_param(net, i, &p);
        if (s) return s;
        total += clcnn_tensor_numel(p.value);
    }
    float *v = malloc(total * sizeof *v);
    if (!v) return CLCNN_ERR_OUT_OF_MEMORY;
    size_t pos = 0;
    for (int i = 0; i < np; i++) {
        clcnn_param p;
        clcnn_net_param(net, i, &p);
        size_t n = clcnn_tensor_numel(p.value);
        clcnn_status s = clcnn_tensor_download(p.value, v + pos, n * sizeof *v);
        if (s) {
            free(v);
            return s;
        }
        pos += n;
    }
    r->nparams = np;
    r->values = v;
    r->total = total;
    return CLCNN_OK;
}

/* One whole training step from nothing: build and initialise the net, make the
 * optimizer and the batch, forward + loss + backward, Adam step, read the parameters.
 * Frees everything it made, on every path. */
static clcnn_status train_step(clcnn_device *dev, step_result *out) {
    memset(out, 0, sizeof *out);
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_tensor *x = NULL, *labels = NULL;
    float hx[NB * 64];
    int32_t hl[NB];
    batch_data(hx, hl);
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    clcnn_status s;
    if ((s = build_net(dev, &net)) || (s = clcnn_optimizer_create(net, &cfg, &opt)) ||
        (s = clcnn_tensor_create4(dev, NB, 1, 8, 8, &x)) ||
        (s = clcnn_tensor_create(dev, CLCNN_I32, 1, (size_t[]){NB}, &labels)) ||
        (s = clcnn_tensor_upload(x, hx, sizeof hx)) ||
        (s = clcnn_tensor_upload(labels, hl, sizeof hl)) ||
        (s = clcnn_net_loss_backward(net, x, labels, &out->loss, NULL)) ||
        (s = clcnn_optimizer_step(opt, 1e-2f)) || (s = read_params(net, out)))
        result_free(out);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    return s;
}

static step_result reference; /* a step on a fresh device, no faults */

static void assert_same_result(const step_result *got, const char *what) {
    if (got->total != reference.total || got->loss != reference.loss ||
        memcmp(got->values, reference.values, got->total * sizeof(float)) != 0) {
        size_t bad = 0;
        for (size_t i = 0; i < got->total && i < reference.total; i++)
            bad += got->values[i] != reference.values[i];
        fail_msg("%s: result differs from a fresh device: loss %.9g vs %.9g, %zu of %zu "
                 "parameter values differ",
                 what, got->loss, reference.loss, bad, reference.total);
    }
}

/* First line of the detail message, for the table. */
static void first_line(char *buf, size_t cap) {
    snprintf(buf, cap, "%s", clcnn_last_error());
    buf[strcspn(buf, "\n")] = '\0';
}

static int setup_reference(void **state) {
    (void)state;
    cc_fault_reset();
    clcnn_device *dev = NULL;
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev) != CLCNN_OK) return -1;
    clcnn_status s = train_step(dev, &reference);
    clcnn_device_close(dev);
    if (s) fprintf(stderr, "reference step failed: %s\n", clcnn_last_error());
    return s ? -1 : 0;
}

static int teardown_reference(void **state) {
    (void)state;
    result_free(&reference);
    cc_fault_reset();
    return 0;
}

/* Sweep one kind across a training step on dev (programs already built, unless
 * fresh_device: then each N gets a new device handle, so that every program is built
 * again). Returns the number of faults that fired. */
static int sweep_step(cc_fault_kind kind, clcnn_device *dev, int fresh_device,
                      clcnn_status expect) {
    int fired = 0;
    for (uint64_t n = 1; n < 10000; n++) {
        clcnn_device *d = dev;
        if (fresh_device) {
            cc_fault_reset();
            TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &d));
        } else {
            clcnn_device_pool_trim(d); /* so that buffers are created, not reused */
        }
        cc_fault_set(kind, n);
        clcnn_clear_error();
        step_result r;
        clcnn_status s = train_step(d, &r);
        int hit = cc_fault_fired(kind);
        cc_fault_set(kind, 0);
        char msg[256];
        first_line(msg, sizeof msg);
        if (!hit) {
            /* N is past the last call of this kind: the step ran clean. */
            TU_OK(s);
            assert_same_result(&r, "step without a fault");
            result_free(&r);
            if (fresh_device) clcnn_device_close(d);
            printf("fault %-14s N=%-3llu not reached: %llu calls per step\n", cc_fault_name(kind),
                   (unsigned long long)n, (unsigned long long)(n - 1));
            break;
        }
        fired++;
        printf("fault %-14s N=%-3llu -> %-22s %s\n", cc_fault_name(kind), (unsigned long long)n,
               s ? clcnn_status_str(s) : "absorbed (success)", s ? msg : "");
        if (s == CLCNN_OK) {
            /* A fault the library recovers from by itself must not change the result. */
            assert_same_result(&r, "step with an absorbed fault");
            result_free(&r);
        } else {
            assert_int_equal(s, expect);
            assert_true(strlen(clcnn_last_error()) > 0);
            assert_null(r.values); /* nothing written */
        }
        /* The same device, no fault: works and gives the fresh-device result. */
        TU_OK(train_step(d, &r));
        assert_same_result(&r, "step after a fault");
        result_free(&r);
        if (fresh_device) clcnn_device_close(d);
    }
    return fired;
}

static void test_enqueue_kernel_faults(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    step_result warm;
    TU_OK(train_step(dev, &warm)); /* builds everything once */
    result_free(&warm);
    int fired = sweep_step(CC_FAULT_ENQUEUE_KERNEL, dev, 0, CLCNN_ERR_OUT_OF_MEMORY);
    assert_true(fired >= 10); /* a step launches dozens of kernels */
    clcnn_device_close(dev);
}

static void test_create_buffer_faults(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    step_result warm;
    TU_OK(train_step(dev, &warm));
    result_free(&warm);
    int fired = sweep_step(CC_FAULT_CREATE_BUFFER, dev, 0, CLCNN_ERR_OUT_OF_MEMORY);
    assert_true(fired >= 10); /* parameters, gradients, moments, activations */
    clcnn_device_close(dev);
}

/* A failed clCreateBuffer while the pool holds cached buffers of other sizes: the pool
 * gives them back and retries, so the caller never sees the fault. */
static void test_create_buffer_retry_after_trim(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
    clcnn_tensor *big = NULL, *t = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){1 << 20}, &big));
    clcnn_tensor_free(big); /* cached, too big to be reused for a small request */
    cc_fault_set(CC_FAULT_CREATE_BUFFER, 1);
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){16}, &t));
    assert_true(cc_fault_fired(CC_FAULT_CREATE_BUFFER));
    cc_fault_set(CC_FAULT_CREATE_BUFFER, 0);
    TU_OK(clcnn_tensor_fill(t, 2.0f));
    float h[16];
    TU_OK(clcnn_tensor_download(t, h, sizeof h));
    for (int i = 0; i < 16; i++)
        assert_true(h[i] == 2.0f);
    clcnn_tensor_free(t);
    clcnn_device_close(dev);
}

/* Build failures: every program must be built from source, so the disk cache is off
 * and each N gets a fresh device handle (an empty in-memory cache). */
static void test_build_program_faults(void **state) {
    (void)state;
    char *saved = getenv("CLCNN_CACHE_DIR") ? strdup(getenv("CLCNN_CACHE_DIR")) : NULL;
    setenv("CLCNN_CACHE_DIR", "off", 1);
    int fired = sweep_step(CC_FAULT_BUILD_PROGRAM, NULL, 1, CLCNN_ERR_BUILD);
    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
    assert_true(fired >= 3); /* conv, batchnorm, activation, pool, softmax, Adam, ... */
}

/* Names in dir other than "." and "..", as one string; counts them. */
static int list_dir(const char *dir, char *buf, size_t cap) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    buf[0] = '\0';
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", n ? " " : "", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void assert_loads_as(const char *path, const step_result *want) {
    clcnn_net *net = NULL;
    TU_OK(build_net(tu_device(), &net));
    TU_OK(clcnn_checkpoint_load(net, NULL, path));
    step_result got;
    TU_OK(read_params(net, &got));
    assert_int_equal(got.total, want->total);
    assert_memory_equal(got.values, want->values, got.total * sizeof(float));
    result_free(&got);
    clcnn_net_free(net);
}

static void test_checkpoint_write_faults(void **state) {
    (void)state;
    char *dir = tu_temp_dir("faults-ckpt");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    TU_OK(build_net(tu_device(), &net));
    TU_OK(clcnn_optimizer_create(net, &cfg, &opt));
    const char *meta[] = {"note", "good", NULL};
    TU_OK(clcnn_checkpoint_save(net, opt, path, meta));
    step_result good;
    TU_OK(read_params(net, &good));
    struct stat st0;
    assert_int_equal(stat(path, &st0), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *bytes0 = malloc((size_t)st0.st_size);
    assert_int_equal(fread(bytes0, 1, (size_t)st0.st_size, f), (size_t)st0.st_size);
    fclose(f);

    /* Change the weights, then try to save over the good checkpoint with a failing write. */
    clcnn_param p;
    TU_OK(clcnn_net_param(net, 0, &p));
    TU_OK(clcnn_tensor_fill(p.value, 0.5f));
    step_result changed;
    TU_OK(read_params(net, &changed));
    int fired = 0;
    for (uint64_t n = 1; n < 100; n++) {
        cc_fault_set(CC_FAULT_FILE_WRITE, n);
        clcnn_clear_error();
        clcnn_status s = clcnn_checkpoint_save(net, opt, path, NULL);
        int hit = cc_fault_fired(CC_FAULT_FILE_WRITE);
        cc_fault_set(CC_FAULT_FILE_WRITE, 0);
        char names[1024];
        if (!hit) {
            TU_OK(s);
            printf("fault %-14s N=%-3llu not reached: %llu writes per save\n", "file_write",
                   (unsigned long long)n, (unsigned long long)(n - 1));
            assert_loads_as(path, &changed);
            assert_int_equal(list_dir(dir, names, sizeof names), 1);
            break;
        }
        fired++;
        char msg[256];
        first_line(msg, sizeof msg);
        printf("fault %-14s N=%-3llu -> %-22s %s\n", "file_write", (unsigned long long)n,
               clcnn_status_str(s), msg);
        assert_int_equal(s, CLCNN_ERR_IO);
        assert_non_null(strstr(clcnn_last_error(), "left as it was"));
        /* The old file, byte for byte, and nothing else in the directory. */
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, st0.st_size);
        f = fopen(path, "rb");
        assert_non_null(f);
        char *bytes = malloc((size_t)st.st_size);
        assert_int_equal(fread(bytes, 1, (size_t)st.st_size, f), (size_t)st.st_size);
        fclose(f);
        assert_memory_equal(bytes, bytes0, (size_t)st.st_size);
        free(bytes);
        if (list_dir(dir, names, sizeof names) != 1)
            fail_msg("a failed save left files behind: %s", names);
        assert_loads_as(path, &good);
    }
    assert_true(fired >= 2); /* header length + header, data */
    result_free(&good);
    result_free(&changed);
    free(bytes0);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* Remove dir and the plain files in it. */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* A failing program-cache write is silent (the cache is an optimisation): the step
 * succeeds with the same result, no temporary file stays, and the next process simply
 * rebuilds the binary that is missing. Each N starts from an empty cache directory. */
static void test_cache_write_faults(void **state) {
    (void)state;
    char *saved = getenv("CLCNN_CACHE_DIR") ? strdup(getenv("CLCNN_CACHE_DIR")) : NULL;
    char names[8192];
    for (uint64_t n = 1; n <= 2; n++) {
        char *dir = tu_temp_dir("faults-cache");
        setenv("CLCNN_CACHE_DIR", dir, 1);
        clcnn_device *dev = NULL;
        TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
        cc_fault_set(CC_FAULT_FILE_WRITE, n);
        step_result r;
        TU_OK(train_step(dev, &r));
        assert_true(cc_fault_fired(CC_FAULT_FILE_WRITE));
        cc_fault_set(CC_FAULT_FILE_WRITE, 0);
        assert_same_result(&r, "step with a failing cache write");
        result_free(&r);
        clcnn_cache_stats cs;
        clcnn_device_cache_stats(dev, &cs);
        printf("fault %-14s N=%-3llu -> %-22s %llu of %llu built programs cached\n", "file_write",
               (unsigned long long)n, "absorbed (success)", (unsigned long long)cs.disk_writes,
               (unsigned long long)cs.builds);
        assert_true(cs.disk_writes >= 1 && cs.disk_writes + 1 == cs.builds);
        clcnn_device_close(dev);
        int count = list_dir(dir, names, sizeof names);
        if (strstr(names, ".tmp")) fail_msg("temporary cache file left behind: %s", names);
        assert_int_equal(count, (int)cs.disk_writes);

        /* A fresh handle on that directory: loads what is there, rebuilds the missing
         * one, same result, nothing rejected. */
        TU_OK(clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev));
        TU_OK(train_step(dev, &r));
        assert_same_result(&r, "step from the cache");
        result_free(&r);
        clcnn_device_cache_stats(dev, &cs);
        assert_int_equal(cs.disk_rejects, 0);
        assert_int_equal(cs.builds, 1);
        clcnn_device_close(dev);
        remove_dir(dir);
        free(dir);
    }
    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
}

/* ---- numerical faults ------------------------------------------------------------------ */

/* Every float of a safetensors file's tensors is finite (read with plain C, not the library). */
static int file_all_finite(const char *path, size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char lenb[8];
    uint64_t hlen = 0;
    int ok = fread(lenb, 1, 8, f) == 8;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    ok = ok && fseek(f, (long)(8 + hlen), SEEK_SET) == 0;
    float v;
    *count = 0;
    while (ok && fread(&v, sizeof v, 1, f) == 1) { /* every tensor clcnn writes is F32 */
        ok = isfinite(v);
        ++*count;
    }
    fclose(f);
    return ok;
}

/* A huge learning rate makes the weights Inf/NaN: the next loss is not finite (what
 * `clcnn train` checks every step), and saving refuses to write such weights over a
 * good checkpoint. */
static void test_diverged_weights_never_replace_a_checkpoint(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char *dir = tu_temp_dir("faults-nan");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_tensor *x = NULL, *labels = NULL;
    float hx[NB * 64];
    int32_t hl[NB];
    batch_data(hx, hl);
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_SGD);
    TU_OK(build_net(dev, &net));
    TU_OK(clcnn_optimizer_create(net, &cfg, &opt));
    TU_OK(clcnn_tensor_create4(dev, NB, 1, 8, 8, &x));
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 1, (size_t[]){NB}, &labels));
    TU_OK(clcnn_tensor_upload(x, hx, sizeof hx));
    TU_OK(clcnn_tensor_upload(labels, hl, sizeof hl));
    float loss = 0;
    TU_OK(clcnn_net_loss_backward(net, x, labels, &loss, NULL));
    assert_true(isfinite(loss));
    TU_OK(clcnn_optimizer_step(opt, 1e-2f));
    TU_OK(clcnn_checkpoint_save(net, opt, path, NULL));
    step_result good;
    TU_OK(read_params(net, &good));

    int diverged = 0;
    for (int step = 0; step < 4 && !diverged; step++) {
        TU_OK(clcnn_net_loss_backward(net, x, labels, &loss, NULL));
        diverged = !isfinite(loss);
        TU_OK(clcnn_optimizer_step(opt, 1e30f));
    }
    assert_true(diverged); /* the signal a training loop stops on */
    clcnn_clear_error();
    clcnn_status s = clcnn_checkpoint_save(net, opt, path, NULL);
    printf("save after lr 1e30 -> %s: %s\n", clcnn_status_str(s), clcnn_last_error());
    assert_int_equal(s, CLCNN_ERR_NUMERIC);
    assert_non_null(strstr(clcnn_last_error(), "NaN/Inf"));
    assert_non_null(strstr(clcnn_last_error(), "left as it was"));
    char names[1024];
    assert_int_equal(list_dir(dir, names, sizeof names), 1);
    assert_loads_as(path, &good);
    size_t n = 0;
    assert_true(file_all_finite(path, &n));
    result_free(&good);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* `clcnn train` with a learning rate that makes SGD diverge within a few one-batch
 * epochs: it either finishes or stops with a message naming the step, and whatever
 * checkpoint it leaves holds finite weights only. Needs the command and Fashion-MNIST. */
static void test_cli_divergence_keeps_finite_checkpoint(void **state) {
    (void)state;
    const char *cli = getenv("CLCNN_CLI");
    if (!cli || access(cli, X_OK) != 0 ||
        access(CLCNN_FASHION_MNIST_DIR "/train-labels-idx1-ubyte.gz", R_OK) != 0)
        skip();
    char *dir = tu_temp_dir("faults-cli");
    char cmd[8192], path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' train --model bn --optimizer sgd --schedule constant --lr 100 --epochs 6 "
             "--limit-train 64 --limit-test 64 --batch 64 --checkpoint '%s' 2>&1",
             cli, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[16384];
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int rc = pclose(p);
    while (len > 0 && out[len - 1] == '\n')
        out[--len] = '\0';
    const char *last = strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out;
    printf("clcnn train (lr 100) exit %d; last line: %s\n", WEXITSTATUS(rc), last);
    if (rc != 0) {
        if (!strstr(out, "step")) fail_msg("the failure does not name the step:\n%s", out);
        assert_non_null(strstr(out, "numerical failure"));
    }
    size_t n = 0;
    if (access(path, F_OK) == 0 && !file_all_finite(path, &n))
        fail_msg("clcnn train left NaN/Inf weights in %s:\n%s", path, out);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* $CLCNN_FAULT is read once per process, at the first hook, so it is checked in a fresh
 * process: this program run again with --env-child. */
static int env_child(void) {
    /* Malformed entries are ignored; "enqueue_kernel:2" fails the second call only. */
    int ok =
        cc_fault_hit(CC_FAULT_ENQUEUE_KERNEL) == 0 && cc_fault_hit(CC_FAULT_ENQUEUE_KERNEL) == 1 &&
        cc_fault_hit(CC_FAULT_ENQUEUE_KERNEL) == 0 && cc_fault_hit(CC_FAULT_FILE_WRITE) == 0 &&
        cc_fault_hit(CC_FAULT_CREATE_BUFFER) == 0 && cc_fault_hit(CC_FAULT_CREATE_BUFFER) == 0 &&
        cc_fault_hit(CC_FAULT_CREATE_BUFFER) == 1 && cc_fault_count(CC_FAULT_FILE_WRITE) == 1;
    return ok ? 0 : 1;
}

static char self_path[4096];

static void test_env_configuration(void **state) {
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CLCNN_FAULT",
               "bogus:1,enqueue_kernel:x,enqueue_kernel:2,file_write:,create_buffer:3", 1);
        execl(self_path, self_path, "--env-child", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--env-child") == 0) return env_child();
    ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len <= 0) return 1;
    self_path[len] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_configuration),
        cmocka_unit_test(test_enqueue_kernel_faults),
        cmocka_unit_test(test_create_buffer_faults),
        cmocka_unit_test(test_create_buffer_retry_after_trim),
        cmocka_unit_test(test_checkpoint_write_faults),
        cmocka_unit_test(test_cache_write_faults),
        cmocka_unit_test(test_build_program_faults),
        cmocka_unit_test(test_diverged_weights_never_replace_a_checkpoint),
        cmocka_unit_test(test_cli_divergence_keeps_finite_checkpoint),
    };
    int rc = cmocka_run_group_tests(tests, setup_reference, teardown_reference);
    tu_close_device();
    return rc;
}
