/* The main job, CI-sized, through the built `clcnn` command ($CLCNN_CLI under ctest):
 * - train the default model one epoch on 2,000 Fashion-MNIST images: > 70% on 1,000 test
 *   images; `clcnn eval` on the checkpoint reproduces the accuracy and loss training logged;
 * - a run interrupted (mid-epoch, and at the end of an epoch before its evaluation) and
 *   resumed gives exactly the numbers of an uninterrupted run;
 * - predict, visualize and summary work on the result; bad input gives clear errors. */
#include "test_util.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmp;
static const char *cli;

static int have_prereqs(void) {
    cli = getenv("CLCNN_CLI"); /* set by ctest; else the binary of this build tree */
    if (!cli || !*cli) cli = CLCNN_BINARY_DIR "/clcnn";
    if (access(cli, X_OK) != 0) {
        print_message("no clcnn binary at %s (set CLCNN_CLI): skipped\n", cli);
        return 0;
    }
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", CLCNN_FASHION_MNIST_DIR);
    if (access(probe, R_OK) != 0) {
        print_message("Fashion-MNIST is not installed (dataset-fashion-mnist): skipped\n");
        return 0;
    }
    return 1;
}

/* Run "$CLCNN_CLI args" with stdout+stderr into tmp/<out>; returns the exit code. */
static int run(const char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *out, const char *fmt, ...) {
    char args[3000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/%s' 2>&1", cli, args, tmp, out);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *name) {
    return tu_slurp(tmp, name);
}

static void show(const char *name) {
    char *s = slurp(name);
    print_message("---- %s ----\n%s\n", name, s ? s : "(missing)");
    free(s);
}

/* The JSON lines of a training log, as an array. */
static json_t *read_log(const char *name) {
    char *s = slurp(name);
    assert_non_null(s);
    json_t *arr = json_array();
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        if (!o) fail_msg("%s: bad JSON line '%s': %s", name, line, e.text);
        json_array_append_new(arr, o);
    }
    free(s);
    return arr;
}

static double num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("no number '%s' in the JSON", key);
    return json_number_value(v);
}

static void test_train_one_epoch_and_eval(void **state) {
    (void)state;
    if (!have_prereqs()) skip();
    int rc = run("train.out",
                 "train --limit-train 2000 --limit-test 1000 --epochs 1 --print-every 10 "
                 "--checkpoint '%s/a.safetensors' --log '%s/a.jsonl'",
                 tmp, tmp);
    show("train.out");
    assert_int_equal(rc, 0);
    json_t *log = read_log("a.jsonl");
    assert_int_equal(json_array_size(log), 1);
    json_t *e1 = json_array_get(log, 0);
    double acc = num(e1, "test_acc"), loss = num(e1, "test_loss");
    print_message("one epoch on 2,000 images: test accuracy %.2f%% on 1,000, loss %.4f, "
                  "%.1f s, %.0f images/s\n",
                  100 * acc, loss, num(e1, "seconds"), num(e1, "images_per_s"));
    assert_true(acc > 0.70);
    assert_true(num(e1, "train_acc") > 0.5);
    assert_int_equal((int)num(e1, "epoch"), 1);

    /* eval reproduces what training logged (same data, same normalisation, same batches) */
    rc = run("eval.json", "eval --checkpoint '%s/a.safetensors' --limit-test 1000 --json", tmp);
    show("eval.json");
    assert_int_equal(rc, 0);
    char *s = slurp("eval.json");
    json_error_t e;
    json_t *ev = json_loads(s, 0, &e);
    free(s);
    assert_non_null(ev);
    assert_int_equal((int)num(ev, "images"), 1000);
    assert_true(num(ev, "accuracy") == acc);
    assert_true(fabs(num(ev, "loss") - loss) <= 1e-6 * (1 + loss));
    json_t *conf = json_object_get(ev, "confusion");
    assert_int_equal(json_array_size(conf), 10);
    size_t total = 0;
    for (size_t i = 0; i < 10; i++)
        for (size_t j = 0; j < 10; j++)
            total += (size_t)json_integer_value(json_array_get(json_array_get(conf, i), j));
    assert_int_equal(total, 1000);
    json_decref(ev);

    /* the human-readable eval names the classes and prints the same accuracy */
    rc = run("eval.txt", "eval --checkpoint '%s/a.safetensors' --limit-test 1000", tmp);
    assert_int_equal(rc, 0);
    s = slurp("eval.txt");
    char want[64];
    snprintf(want, sizeof want, "accuracy %.2f%%", 100 * acc);
    if (!strstr(s, want) || !strstr(s, "Ankle boot") || !strstr(s, "T-shirt/top"))
        fail_msg("eval output lacks '%s' or class names:\n%s", want, s);
    free(s);

    /* predict: a test image written as binary PGM, a 2x enlarged copy as text PGM (resized
     * on input), and a file that is not an image */
    clcnn_dataset *ds = NULL;
    TU_OK(clcnn_dataset_load_mnist(NULL, CLCNN_SPLIT_TEST, &ds));
    const uint8_t *px = clcnn_dataset_pixels(ds, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/img0.pgm", tmp);
    FILE *f = fopen(path, "wb");
    fprintf(f, "P5\n# test image 0\n28 28\n255\n");
    fwrite(px, 1, 784, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/img0-big.pgm", tmp); /* 56x56 text PGM: resized */
    f = fopen(path, "w");
    fprintf(f, "P2\n56 56\n255\n");
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 56; x++)
            fprintf(f, "%d%c", px[(y / 2) * 28 + x / 2], x == 55 ? '\n' : ' ');
    fclose(f);
    snprintf(path, sizeof path, "%s/not-an-image.pgm", tmp);
    f = fopen(path, "w");
    fprintf(f, "hello\n");
    fclose(f);
    clcnn_dataset_free(ds);
    rc = run("predict.out",
             "predict --checkpoint '%s/a.safetensors' --top 3 '%s/img0.pgm' "
             "'%s/img0-big.pgm'",
             tmp, tmp, tmp);
    show("predict.out");
    assert_int_equal(rc, 0);
    s = slurp("predict.out");
    assert_non_null(strstr(s, "img0.pgm:"));
    assert_non_null(strstr(s, "(56x56, resized)"));
    assert_non_null(strstr(s, "%"));
    free(s);
    rc = run("predict-bad.out", "predict --checkpoint '%s/a.safetensors' '%s/not-an-image.pgm'",
             tmp, tmp);
    assert_int_equal(rc, 1);
    s = slurp("predict-bad.out");
    if (!strstr(s, "not-an-image.pgm") || !strstr(s, "PGM")) fail_msg("unclear error: %s", s);
    free(s);

    /* visualize: filters, input and one PNG per layer */
    rc = run("vis.out", "visualize --checkpoint '%s/a.safetensors' --out '%s/vis' --index 3", tmp,
             tmp);
    show("vis.out");
    assert_int_equal(rc, 0);
    const char *files[] = {"filters.png", "input.png", "layer_00_conv2d.png", "layer_11_linear.png",
                           NULL};
    for (int i = 0; files[i]; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/vis/%s", tmp, files[i]);
        if (stat(path, &st) != 0 || st.st_size < 60) fail_msg("visualize did not write %s", path);
    }
    /* a PNG it wrote (RGB, enlarged) reads back through predict's PNG loader */
    rc = run("predict-png.out", "predict --checkpoint '%s/a.safetensors' '%s/vis/input.png'", tmp,
             tmp);
    show("predict-png.out");
    assert_int_equal(rc, 0);
    json_decref(log);
}

/* Interrupt + resume must give the uninterrupted numbers exactly. 384 images = 6 batches
 * of 64 per epoch, 2 epochs. */
static void test_resume_reproduces(void **state) {
    (void)state;
    if (!have_prereqs()) skip();
    const char *common = "--limit-train 384 --limit-test 250 --epochs 2 --print-every 3";
    int rc = run("full.out", "train %s --checkpoint '%s/full.safetensors' --log '%s/full.jsonl'",
                 common, tmp, tmp);
    assert_int_equal(rc, 0);
    /* stop after 4 steps (epoch 1), resume and stop after 2 more (the last step of epoch
     * 1, before its evaluation), resume to the end */
    rc = run("r1.out",
             "train %s --checkpoint '%s/r.safetensors' --log '%s/r.jsonl' --interrupt-after 4",
             common, tmp, tmp);
    show("r1.out");
    assert_int_equal(rc, 130);
    char *s = slurp("r1.out");
    assert_non_null(strstr(s, "--resume"));
    free(s);
    rc = run("r2.out",
             "train --resume --checkpoint '%s/r.safetensors' --log '%s/r.jsonl' "
             "--interrupt-after 2",
             tmp, tmp);
    show("r2.out");
    assert_int_equal(rc, 130);
    rc = run("r3.out", "train --resume --checkpoint '%s/r.safetensors' --log '%s/r.jsonl'", tmp,
             tmp);
    show("r3.out");
    assert_int_equal(rc, 0);
    /* stop in epoch 2 as well, in a third run */
    rc = run("q1.out",
             "train %s --checkpoint '%s/q.safetensors' --log '%s/q.jsonl' --interrupt-after 8",
             common, tmp, tmp);
    assert_int_equal(rc, 130);
    rc = run("q2.out", "train --resume --checkpoint '%s/q.safetensors' --log '%s/q.jsonl'", tmp,
             tmp);
    show("q2.out");
    assert_int_equal(rc, 0);

    json_t *a = read_log("full.jsonl"), *b = read_log("r.jsonl"), *q = read_log("q.jsonl");
    assert_int_equal(json_array_size(a), 2);
    assert_int_equal(json_array_size(b), 2);
    assert_int_equal(json_array_size(q), 2);
    const char *keys[] = {"epoch",    "train_loss", "train_acc", "test_loss",
                          "test_acc", "step",       NULL};
    for (size_t e = 0; e < 2; e++)
        for (int k = 0; keys[k]; k++) {
            double va = num(json_array_get(a, e), keys[k]);
            double vb = num(json_array_get(b, e), keys[k]);
            double vq = num(json_array_get(q, e), keys[k]);
            if (va != vb || va != vq)
                fail_msg("epoch %zu %s: uninterrupted %.9g, resumed %.9g / %.9g", e + 1, keys[k],
                         va, vb, vq);
        }
    json_decref(a);
    json_decref(b);
    json_decref(q);

    /* resuming a finished run does nothing; contradicting settings are refused */
    rc = run("done.out", "train --resume --checkpoint '%s/r.safetensors'", tmp);
    assert_int_equal(rc, 0);
    s = slurp("done.out");
    assert_non_null(strstr(s, "nothing to do"));
    free(s);
    rc = run("conflict.out", "train --resume --batch 32 --epochs 3 --checkpoint '%s/r.safetensors'",
             tmp);
    assert_int_equal(rc, 2);
    s = slurp("conflict.out");
    assert_non_null(strstr(s, "--batch 64"));
    free(s);
}

static void test_cli_errors_and_summary(void **state) {
    (void)state;
    if (!have_prereqs()) skip();
    int rc = run("sum.out", "summary --model alexnet_grouped");
    show("sum.out");
    assert_int_equal(rc, 0);
    char *s = slurp("sum.out");
    assert_non_null(strstr(s, "55x55x96"));
    assert_non_null(strstr(s, "34,944"));
    assert_non_null(strstr(s, "60,965,224"));
    free(s);
    rc = run("sum-bn.out", "summary");
    assert_int_equal(rc, 0);
    s = slurp("sum-bn.out");
    assert_non_null(strstr(s, "421,738"));
    free(s);

    assert_int_equal(run("e1.out", "summary --model nosuch"), 2);
    assert_int_equal(run("e2.out", "train --model alexnet"), 2);
    assert_int_equal(run("e3.out", "train --epochs 0"), 2);
    assert_int_equal(run("e4.out", "train --batch x"), 2);
    assert_int_equal(run("e5.out", "train --optimizer rmsprop"), 2);
    assert_int_equal(run("e6.out", "train --data '%s/no-such-dir' --epochs 1", tmp), 1);
    s = slurp("e6.out");
    assert_non_null(strstr(s, "no-such-dir"));
    free(s);
    assert_int_equal(run("e7.out", "eval --checkpoint '%s/missing.safetensors'", tmp), 1);
    s = slurp("e7.out");
    assert_non_null(strstr(s, "missing.safetensors"));
    free(s);
    assert_int_equal(run("e8.out", "train --resume --checkpoint '%s/missing.safetensors'", tmp), 1);
    assert_int_equal(run("e9.out", "predict --checkpoint '%s/missing.safetensors'", tmp), 2);
}

static int setup(void **state) {
    (void)state;
    tmp = tu_temp_dir("train");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    free(tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_errors_and_summary),
        cmocka_unit_test(test_train_one_epoch_and_eval),
        cmocka_unit_test(test_resume_reproduces),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
