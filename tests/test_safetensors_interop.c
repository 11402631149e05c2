/* Checkpoint names that survive the trip between PyTorch and clcnn (issue 13 part 4).
 *
 * tests/onnx/fmnist_bn_cnn_b.safetensors is a PyTorch state_dict written by the official
 * safetensors writer, tests/onnx/fmnist_bn_cnn_b.onnx PyTorch's ONNX export of the same
 * weights (both made by tests/onnx/make_safetensors_interop.py). The state_dict loads by
 * name, num_batches_tracked included, into the net of tests/onnx/fmnist_bn_cnn.onnx (same
 * architecture, other weights), which then computes what PyTorch's export of those weights
 * computes; a checkpoint clcnn writes for that net names, shapes and types every
 * parameter as the state_dict does, holding the same bytes. The other direction, clcnn's
 * file read by the official reader, is tests/safetensors_official.py (needs the PyPI
 * package, so skipped where it is missing). Loading the state_dict into a net whose names
 * differ (the zoo's bn) fails naming a tensor and leaves the net as it was. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define N 3

static void path_of(char *buf, size_t cap, const char *file) {
    snprintf(buf, cap, "%s/tests/onnx/%s", CLCNN_SOURCE_DIR, file);
}

static clcnn_tensor *input_batch(void) {
    static float x[N * 28 * 28];
    tu_rng r = tu_rng_seed(7);
    tu_fill_uniform(&r, x, N * 28 * 28, 0.0f, 1.0f);
    return tu_tensor_from(4, (size_t[]){N, 1, 28, 28}, x);
}

/* Logits of PyTorch's ONNX export of the state_dict's weights, through a plan. */
static float *reference_logits(clcnn_tensor *x) {
    char path[512];
    clcnn_graph *g = NULL;
    clcnn_plan *p = NULL;
    path_of(path, sizeof path, "fmnist_bn_cnn_b.onnx");
    TU_OK(clcnn_graph_load_onnx(path, &g));
    TU_OK(clcnn_plan_create(tu_device(), g, N, NULL, &p));
    const clcnn_tensor *in[1] = {x};
    TU_OK(clcnn_plan_run(p, in, 1));
    float *y = tu_download(clcnn_plan_output(p, 0));
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    return y;
}

static clcnn_net *net_of_model_a(void) {
    char path[512];
    clcnn_graph *g = NULL;
    clcnn_net *net = NULL;
    path_of(path, sizeof path, "fmnist_bn_cnn.onnx");
    TU_OK(clcnn_graph_load_onnx(path, &g));
    TU_OK(clcnn_net_from_graph(tu_device(), g, &net));
    clcnn_graph_free(g);
    clcnn_net_set_training(net, 0);
    return net;
}

static float *net_logits(clcnn_net *net, clcnn_tensor *x) {
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(net, x, &y));
    return tu_download(y);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* The safetensors header of path as JSON (the 8-byte length, then the header). */
static json_t *header_of(const char *path, long *data_start) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char len8[8];
    assert_int_equal(fread(len8, 1, 8, f), 8);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | len8[i];
    assert_true(len > 2 && len < (1u << 20));
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, len, f), len);
    buf[len] = '\0';
    fclose(f);
    json_error_t err;
    json_t *h = json_loads(buf, 0, &err);
    free(buf);
    if (!h) fail_msg("%s: header is not JSON: %s", path, err.text);
    *data_start = 8 + (long)len;
    return h;
}

/* Bytes [begin, end) of the data section of path. */
static unsigned char *tensor_bytes(const char *path, long data_start, json_t *entry, size_t *n) {
    json_t *off = json_object_get(entry, "data_offsets");
    assert_true(json_is_array(off) && json_array_size(off) == 2);
    long b = (long)json_integer_value(json_array_get(off, 0));
    long e = (long)json_integer_value(json_array_get(off, 1));
    assert_true(e >= b);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, data_start + b, SEEK_SET), 0);
    *n = (size_t)(e - b);
    unsigned char *buf = malloc(*n ? *n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *n, f), *n);
    fclose(f);
    return buf;
}

static void test_state_dict_loads_by_name(void **state) {
    (void)state;
    clcnn_tensor *x = input_batch();
    float *ref = reference_logits(x);
    clcnn_net *net = net_of_model_a();
    float *before = net_logits(net, x);
    /* the other weights compute something else, so a load that did nothing would fail */
    assert_true(max_diff(before, ref, N * 10) > 1e-2);

    char path[512];
    path_of(path, sizeof path, "fmnist_bn_cnn_b.safetensors");
    TU_OK(clcnn_checkpoint_load(net, NULL, path));
    float *after = net_logits(net, x);
    double worst = max_diff(after, ref, N * 10);
    printf("state_dict loaded: max |clcnn - PyTorch's ONNX export| = %.3g (before: %.3g)\n", worst,
           max_diff(before, ref, N * 10));
    assert_true(worst <= 1e-5);

    /* clcnn's checkpoint of that net: every state_dict tensor but num_batches_tracked, with
     * its name, dtype, shape and bytes */
    char *dir = tu_temp_dir("st-interop");
    char out[600];
    snprintf(out, sizeof out, "%s/clcnn.safetensors", dir);
    TU_OK(clcnn_checkpoint_save(net, NULL, out, NULL));
    long start_pt = 0, start_cl = 0;
    json_t *pt = header_of(path, &start_pt), *cl = header_of(out, &start_cl);
    const char *name;
    json_t *e;
    int compared = 0;
    json_object_foreach(pt, name, e) {
        if (!strcmp(name, "__metadata__") || strstr(name, "num_batches_tracked")) continue;
        json_t *c = json_object_get(cl, name);
        if (!c) fail_msg("clcnn's checkpoint has no tensor '%s'", name);
        assert_string_equal(json_string_value(json_object_get(c, "dtype")), "F32");
        assert_true(json_equal(json_object_get(c, "shape"), json_object_get(e, "shape")));
        size_t na = 0, nb = 0;
        unsigned char *a = tensor_bytes(path, start_pt, e, &na);
        unsigned char *b = tensor_bytes(out, start_cl, c, &nb);
        assert_int_equal(na, nb);
        if (memcmp(a, b, na)) fail_msg("tensor '%s' holds other bytes after the trip", name);
        free(a);
        free(b);
        compared++;
    }
    assert_int_equal(compared, 12);
    json_decref(pt);
    json_decref(cl);
    remove(out);
    remove(dir);
    free(dir);
    free(before);
    free(after);
    free(ref);
    clcnn_net_free(net);
    clcnn_tensor_free(x);
}

static void test_other_names_refused(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), "bn", 10, &net));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 1));
    clcnn_net_set_training(net, 0);
    clcnn_tensor *x = input_batch();
    float *before = net_logits(net, x);
    char path[512];
    path_of(path, sizeof path, "fmnist_bn_cnn_b.safetensors");
    clcnn_status s = clcnn_checkpoint_load(net, NULL, path);
    assert_int_not_equal(s, CLCNN_OK);
    const char *msg = clcnn_last_error();
    printf("zoo bn <- PyTorch state_dict: %s\n", msg);
    if (!strstr(msg, "fmnist_bn_cnn_b.safetensors") || !strstr(msg, "'"))
        fail_msg("the error names neither the file nor a tensor: %s", msg);
    float *after = net_logits(net, x);
    assert_memory_equal(before, after, N * 10 * sizeof(float));
    free(before);
    free(after);
    clcnn_tensor_free(x);
    clcnn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_dict_loads_by_name),
        cmocka_unit_test(test_other_names_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
