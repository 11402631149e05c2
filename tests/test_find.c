/* Find (clcnn_conv2d_find, lib/tune/conv_tune.c) at plan creation (lib/exec): an inference
 * plan made with Find measures each convolution shape its tuning file does not know and
 * stores the winners; a second plan (in this process, and as a new process would, after
 * the in-memory copy is dropped) measures nothing and leaves the file as it was; a new
 * batch size is a new shape; a training plan measures the forward, data (only where a
 * gradient flows into the input) and filter passes; outputs of plans made with Find
 * equal the double reference; CLCNN_TUNE=off, find = -1 and the default (no
 * CLCNN_TUNE=find) measure nothing and write nothing; a corrupt tuning file, a directory
 * where the file should be and a read-only file give plans that run correctly on the
 * rules, with the file untouched; $CLCNN_FIND_BUDGET 0 tries no candidates, a bad value
 * is a clear error. Tiny shapes; no timing assertions. */
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference_conv.h"
#include "tune/conv_db.h"

static char tune_path[4200];

static int setup(void **state) {
    (void)state;
    tu_tune_dir_begin("find");
    unsetenv("CLCNN_TUNE");
    assert_true(clcnn_tune_file_path(tu_device(), tune_path, sizeof tune_path));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_tune_dir_end();
    return 0;
}

/* Every test starts without a tuning file (and without this process's copy of one), with
 * Find timing the algorithms' heuristic parameters only (CLCNN_FIND_BUDGET=0): each
 * candidate set is one more kernel build. test_find_stores_then_reuses' first plan tries
 * candidates within the default budget. */
static int fresh(void **state) {
    (void)state;
    unsetenv("CLCNN_TUNE");
    setenv("CLCNN_FIND_BUDGET", "0", 1);
    chmod(tune_path, 0644);
    if (unlink(tune_path) != 0) rmdir(tune_path);
    cc_conv_tune_forget();
    return 0;
}

/* ---- the network: x (n,3,9,9) -> Conv 8 3x3 pad 1 -> Relu -> Conv 5 3x3 stride 2 pad 1 - */

enum { C0 = 3, H0 = 9, K1 = 8, K2 = 5 };
static float w1[K1 * C0 * 9], b1[K1], w2[K2 * K1 * 9], b2[K2];

static clcnn_graph *make_graph(void) {
    tu_rng r = tu_rng_seed(5);
    tu_fill_uniform(&r, w1, sizeof w1 / sizeof *w1, -0.5f, 0.5f);
    tu_fill_uniform(&r, b1, K1, -0.5f, 0.5f);
    tu_fill_uniform(&r, w2, sizeof w2 / sizeof *w2, -0.5f, 0.5f);
    tu_fill_uniform(&r, b2, K2, -0.5f, 0.5f);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4,
                                (const int64_t[]){CLCNN_GRAPH_BATCH, C0, H0, H0}));
    TU_OK(clcnn_graph_add_initializer(g, "w1", CLCNN_F32, 4, (const int64_t[]){K1, C0, 3, 3}, w1));
    TU_OK(clcnn_graph_add_initializer(g, "b1", CLCNN_F32, 1, (const int64_t[]){K1}, b1));
    TU_OK(clcnn_graph_add_initializer(g, "w2", CLCNN_F32, 4, (const int64_t[]){K2, K1, 3, 3}, w2));
    TU_OK(clcnn_graph_add_initializer(g, "b2", CLCNN_F32, 1, (const int64_t[]){K2}, b2));
    clcnn_attr a1 = INTS("pads", 1, 1, 1, 1);
    clcnn_attr a2[2] = {INTS("pads", 1, 1, 1, 1), INTS("strides", 2, 2)};
    TU_OK(clcnn_graph_add_node(g, "Conv", "conv1", 3, (const char *[]){"x", "w1", "b1"}, 1,
                               (const char *[]){"c1"}, 1, &a1));
    TU_OK(clcnn_graph_add_node(g, "Relu", "relu1", 1, (const char *[]){"c1"}, 1,
                               (const char *[]){"r1"}, 0, NULL));
    TU_OK(clcnn_graph_add_node(g, "Conv", "conv2", 3, (const char *[]){"r1", "w2", "b2"}, 1,
                               (const char *[]){"y"}, 2, a2));
    TU_OK(clcnn_graph_add_output(g, "y"));
    TU_OK(clcnn_graph_check(g));
    return g;
}

static double *to_double(const float *a, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = a[i];
    return d;
}

/* The network on x (n images) in double; y is (n, K2, 5, 5). */
static double *reference(const float *x, int n, size_t *ny) {
    ref_conv c1 = {n, C0, H0, H0, K1, 3, 3, 0, 0, 1, 1, 1, 1, 1, 1, 1};
    assert_true(ref_conv_out(&c1));
    ref_conv c2 = c1;
    c2.c = K1, c2.h = c1.p, c2.w = c1.q, c2.k = K2, c2.stride_h = c2.stride_w = 2;
    assert_true(ref_conv_out(&c2));
    *ny = ref_conv_y_size(&c2);
    double *xd = to_double(x, ref_conv_x_size(&c1)), *w1d = to_double(w1, sizeof w1 / 4);
    double *w2d = to_double(w2, sizeof w2 / 4), *b1d = to_double(b1, K1), *b2d = to_double(b2, K2);
    double *y1 = malloc(ref_conv_y_size(&c1) * sizeof *y1), *y = malloc(*ny * sizeof *y);
    ref_conv2d_forward(&c1, xd, w1d, b1d, 1, 0.0, y1);
    ref_conv2d_forward(&c2, y1, w2d, b2d, 0, 0.0, y);
    free(xd), free(w1d), free(w2d), free(b1d), free(b2d), free(y1);
    return y;
}

static clcnn_tensor *input(int n, float **host) {
    size_t xs[4] = {(size_t)n, C0, H0, H0}, nx = (size_t)n * C0 * H0 * H0;
    *host = malloc(nx * sizeof **host);
    tu_rng r = tu_rng_seed(9 + (uint64_t)n);
    tu_fill_uniform(&r, *host, nx, -1.0f, 1.0f);
    return tu_tensor_from(4, xs, *host);
}

/* An inference plan with Find request `find`; checks its output against the reference
 * and returns how many shapes it measured. */
static int plan_checked(clcnn_graph *g, int n, int find) {
    clcnn_plan_options o = clcnn_plan_options_default();
    o.find = find;
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(tu_device(), g, n, &o, &p));
    float *xh = NULL;
    clcnn_tensor *x = input(n, &xh);
    const clcnn_tensor *xin = x;
    TU_OK(clcnn_plan_run(p, &xin, 1));
    float *got = tu_download(clcnn_plan_output(p, 0));
    size_t ny = 0;
    double *ref = reference(xh, n, &ny);
    assert_int_equal(clcnn_tensor_numel(clcnn_plan_output(p, 0)), ny);
    assert_true(tu_close("find plan output", got, ref, ny, 1e-4, 1e-4));
    int m = clcnn_plan_conv_measured(p);
    free(got), free(ref), free(xh);
    clcnn_tensor_free(x);
    clcnn_plan_free(p);
    return m;
}

/* Entries of the tuning file per pass (-1 for every pass: all); -1 when there is no file. */
static int entries(int pass) {
    json_t *root = json_load_file(tune_path, 0, NULL);
    if (!root) return -1;
    json_t *conv = json_object_get(root, "conv2d");
    int count = 0;
    for (size_t i = 0; i < json_array_size(conv); i++) {
        const char *ps = json_string_value(json_object_get(json_array_get(conv, i), "pass"));
        count += pass < 0 || (ps && clcnn_conv_pass_parse(ps) == pass);
    }
    json_decref(root);
    return count;
}

/* How many passes a training plan made with Find measured. */
static int train_measured(clcnn_graph *g, int n) {
    clcnn_train_options o = {.conv_algo = CLCNN_CONV_AUTO, .find = 1};
    clcnn_train_plan *tp = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, n, &o, &tp));
    int m = clcnn_train_plan_conv_measured(tp);
    clcnn_train_plan_free(tp);
    return m;
}

/* The tuning file's bytes; NULL when it is missing or not a regular file. */
static char *file_bytes(void) {
    struct stat st;
    if (stat(tune_path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", tune_path);
    char *slash = strrchr(dir, '/');
    *slash = '\0';
    return tu_slurp(dir, slash + 1);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_find_stores_then_reuses(void **state) {
    (void)state;
    clcnn_graph *g = make_graph();
    assert_int_equal(entries(-1), -1);
    unsetenv("CLCNN_FIND_BUDGET"); /* CLCNN_FIND_BUDGET seconds of candidates per pass */
    assert_int_equal(plan_checked(g, 2, 1), 2); /* two shapes, both measured */
    setenv("CLCNN_FIND_BUDGET", "0", 1);
    assert_int_equal(entries(CLCNN_CONV_PASS_FORWARD), 2);
    assert_int_equal(entries(-1), 2);
    char *before = file_bytes();
    assert_non_null(before);
    /* the same process: the winners are known now */
    assert_int_equal(plan_checked(g, 2, 1), 0);
    /* as a new process: read the file again */
    cc_conv_tune_forget();
    assert_int_equal(plan_checked(g, 2, 1), 0);
    char *after = file_bytes();
    assert_string_equal(before, after);
    /* another batch size is another key */
    assert_int_equal(plan_checked(g, 1, 1), 2);
    assert_int_equal(entries(CLCNN_CONV_PASS_FORWARD), 4);
    /* CLCNN_TUNE=find turns it on for plans that do not ask */
    setenv("CLCNN_TUNE", "find", 1);
    assert_int_equal(clcnn_tune_mode_get(), CLCNN_TUNE_FIND);
    assert_int_equal(plan_checked(g, 3, 0), 2);
    assert_int_equal(plan_checked(g, 3, 0), 0);
    assert_int_equal(plan_checked(g, 4, -1), 0); /* the plan says no */
    unsetenv("CLCNN_TUNE");
    assert_int_equal(entries(-1), 6);
    free(before), free(after);
    clcnn_graph_free(g);
}

static void test_find_training_plan(void **state) {
    (void)state;
    clcnn_graph *g = make_graph();
    clcnn_train_options o = {.conv_algo = CLCNN_CONV_AUTO, .find = 1};
    clcnn_train_plan *tp = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, &o, &tp));
    /* conv1: forward and filter (x needs no gradient); conv2: forward, data and filter */
    assert_int_equal(clcnn_train_plan_conv_measured(tp), 5);
    assert_int_equal(entries(CLCNN_CONV_PASS_FORWARD), 2);
    assert_int_equal(entries(CLCNN_CONV_PASS_BACKWARD_DATA), 1);
    assert_int_equal(entries(CLCNN_CONV_PASS_BACKWARD_FILTER), 2);
    float *xh = NULL;
    clcnn_tensor *x = input(2, &xh);
    const clcnn_tensor *xin = x;
    TU_OK(clcnn_train_plan_forward(tp, &xin, 1));
    float *got = tu_download(clcnn_train_plan_output(tp, 0));
    size_t ny = 0;
    double *ref = reference(xh, 2, &ny);
    assert_true(tu_close("find training forward", got, ref, ny, 1e-4, 1e-4));
    const clcnn_tensor *dy[1] = {NULL}; /* a zero output gradient: the passes run */
    TU_OK(clcnn_train_plan_backward(tp, dy, 1));
    clcnn_train_plan_free(tp);
    /* known now: no measurement; the inference plan shares the forward entries */
    assert_int_equal(train_measured(g, 2), 0);
    assert_int_equal(plan_checked(g, 2, 1), 0);
    assert_int_equal(entries(-1), 5);
    free(got), free(ref), free(xh);
    clcnn_tensor_free(x);
    clcnn_graph_free(g);
}

static void test_find_off_measures_nothing(void **state) {
    (void)state;
    clcnn_graph *g = make_graph();
    /* not asked: the default plan options under the default $CLCNN_TUNE */
    assert_int_equal(plan_checked(g, 2, 0), 0);
    assert_int_equal(entries(-1), -1);
    assert_int_equal(clcnn_conv2d_find_enabled(0), 0);
    /* CLCNN_TUNE=off wins over a plan that asks */
    setenv("CLCNN_TUNE", "off", 1);
    assert_int_equal(clcnn_conv2d_find_enabled(1), 0);
    assert_int_equal(plan_checked(g, 2, 1), 0);
    assert_int_equal(train_measured(g, 2), 0);
    int measured = 1;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    TU_OK(clcnn_conv2d_find(tu_device(), CLCNN_CONV_PASS_FORWARD, &d, (const size_t[]){1, 3, 9, 9},
                            (const size_t[]){4, 3, 3, 3}, NULL, NULL, &measured));
    assert_int_equal(measured, 0);
    assert_int_equal(entries(-1), -1);
    assert_int_equal(access(tune_path, F_OK), -1);
    unsetenv("CLCNN_TUNE");
    clcnn_graph_free(g);
}

/* $CLCNN_FIND_BUDGET: 0 times the heuristics only (the winner's parameters are its
 * heuristic's); what is no number of seconds >= 0 stops the plan with a message naming it,
 * and nothing is stored. */
static void test_find_budget_variable(void **state) {
    (void)state;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    const size_t x[4] = {1, 3, 9, 9}, w[4] = {4, 3, 3, 3};
    int measured = 0;
    clcnn_conv2d_tune_result r;
    TU_OK(clcnn_conv2d_find(tu_device(), CLCNN_CONV_PASS_FORWARD, &d, x, w, NULL, &r, &measured));
    assert_int_equal(measured, 1);
    assert_string_equal(r.params, "");
    assert_int_equal(entries(-1), 1);
    clcnn_graph *g = make_graph();
    const char *bad[] = {"abc", "-1", "1s", "", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("CLCNN_FIND_BUDGET", bad[i], 1);
        clcnn_plan_options o = clcnn_plan_options_default();
        o.find = 1;
        clcnn_plan *p = NULL;
        assert_int_equal(clcnn_plan_create(tu_device(), g, 2, &o, &p), CLCNN_ERR_INVALID_ARG);
        assert_null(p);
        assert_non_null(strstr(clcnn_last_error(), "CLCNN_FIND_BUDGET"));
    }
    assert_int_equal(entries(-1), 1);
    clcnn_graph_free(g);
}

/* A tuning file Find cannot store into: plans run on the rules, the file stays. */
static void expect_fallback(clcnn_graph *g, const char *what) {
    char *before = file_bytes();
    assert_int_equal(plan_checked(g, 2, 1), 0);
    assert_int_equal(train_measured(g, 2), 0);
    char *after = file_bytes();
    if (before || after) {
        if (!before || !after || strcmp(before, after)) fail_msg("%s: the file changed", what);
    }
    free(before), free(after);
}

static void test_find_unwritable_file_falls_back(void **state) {
    (void)state;
    clcnn_graph *g = make_graph();
    /* corrupt */
    FILE *f = fopen(tune_path, "w");
    assert_non_null(f);
    fputs("{\"format\": \"clcnn-tune\", \"version\": 1, \"conv2d\": [{\"pass\": 7}", f);
    fclose(f);
    cc_conv_tune_forget();
    expect_fallback(g, "corrupt file");
    /* a shape error still names the problem */
    int measured = 0;
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    assert_int_equal(clcnn_conv2d_find(tu_device(), CLCNN_CONV_PASS_FORWARD, &d,
                                       (const size_t[]){1, 3, 9, 9}, (const size_t[]){4, 2, 3, 3},
                                       NULL, NULL, &measured),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "channels"));
    /* a directory in the way */
    unlink(tune_path);
    assert_int_equal(mkdir(tune_path, 0755), 0);
    cc_conv_tune_forget();
    expect_fallback(g, "directory");
    rmdir(tune_path);
    /* read-only (root writes anyway: then Find may store, which is fine) */
    assert_int_equal(plan_checked(g, 2, 1), 2);
    assert_int_equal(chmod(tune_path, 0444), 0);
    if (geteuid() != 0) {
        cc_conv_tune_forget();
        expect_fallback(g, "read-only file"); /* batch 2 is known: nothing to store */
        assert_int_equal(plan_checked(g, 3, 1), 0);
        assert_int_equal(entries(-1), 2);
    }
    clcnn_graph_free(g);
}

/* clcnn tune --model FILE.onnx --train: one line per distinct pass of the training plan
 * (5), winners stored; --no-save stores nothing. */
static void test_tune_model_command(void **state) {
    (void)state;
    const char *cli = getenv("CLCNN_CLI");
    if (!cli || access(cli, X_OK) != 0) {
        skip(); /* the command is not built */
    }
    clcnn_graph *g = make_graph();
    char dir[4200], model[4300], out[4300], cmd[16384];
    snprintf(dir, sizeof dir, "%s", tune_path);
    *strrchr(dir, '/') = '\0';
    snprintf(model, sizeof model, "%s/two_convs.onnx", dir);
    snprintf(out, sizeof out, "%s/tune_model.txt", dir);
    TU_OK(clcnn_graph_save_onnx(g, model));
    snprintf(cmd, sizeof cmd,
             "'%s' tune --model '%s' --batch 2 --train --algo-only --runs 1 --quiet --no-save "
             ">'%s' 2>/dev/null",
             cli, model, out);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(access(tune_path, F_OK), -1);
    snprintf(cmd, sizeof cmd,
             "'%s' tune --model '%s' --batch 2 --train --algo-only --runs 1 --quiet >'%s' "
             "2>/dev/null",
             cli, model, out);
    assert_int_equal(system(cmd), 0);
    char *text = tu_slurp(dir, "tune_model.txt");
    assert_non_null(text);
    int lines = 0, fwd = 0, data = 0;
    for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        lines += !strncmp(l, "conv", 4);
        fwd += !strncmp(l, "conv", 4) && !strncmp(l + 21, "conv2d_fwd ", 11);
        data += !strncmp(l, "conv2", 5) && !strncmp(l + 21, "conv2d_bwd_data", 15);
    }
    assert_int_equal(lines, 5);
    assert_int_equal(fwd, 2);
    assert_int_equal(data, 1);
    assert_int_equal(entries(-1), 5);
    /* a model that does not exist is a clear error */
    snprintf(cmd, sizeof cmd, "'%s' tune --model no_such_model --quiet >/dev/null 2>&1", cli);
    assert_int_not_equal(system(cmd), 0);
    free(text);
    unlink(model);
    unlink(out);
    clcnn_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_find_stores_then_reuses, fresh),
        cmocka_unit_test_setup(test_find_training_plan, fresh),
        cmocka_unit_test_setup(test_find_off_measures_nothing, fresh),
        cmocka_unit_test_setup(test_find_budget_variable, fresh),
        cmocka_unit_test_setup(test_find_unwritable_file_falls_back, fresh),
        cmocka_unit_test_setup(test_tune_model_command, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
