/* Plans on whole networks: every zoo model gives the same outputs through a plan (batch
 * norm folded, epilogues fused, buffers reused) as through the net's own layer-by-layer
 * inference; a plan with reuse on equals one with reuse off bit for bit; the fused plan
 * equals the unfused one within the algorithms' rounding; peak activation memory is far
 * below the sum of all activations. Batch-norm statistics are randomised so that folding
 * does real work. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Random gamma, beta, running mean and variance for every batch norm of net. */
static void randomise_bn(clcnn_net *net, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        assert_int_equal(clcnn_net_param(net, i, &p), CLCNN_OK);
        const char *dot = strrchr(p.name, '.');
        int bn_weight = strstr(p.name, "bn") != NULL && !strcmp(dot, ".weight");
        float lo, hi;
        if (!strcmp(dot, ".running_mean") ||
            (!strcmp(dot, ".bias") && clcnn_tensor_ndim(p.value) == 1))
            lo = -0.2f, hi = 0.2f;
        else if (!strcmp(dot, ".running_var"))
            lo = 0.5f, hi = 2.0f;
        else if (bn_weight)
            lo = 0.5f, hi = 1.5f;
        else
            continue;
        size_t n = clcnn_tensor_numel(p.value);
        float *v = malloc(n * sizeof *v);
        tu_fill_uniform(&r, v, n, lo, hi);
        assert_int_equal(clcnn_tensor_upload(p.value, v, n * sizeof *v), CLCNN_OK);
        free(v);
    }
}

/* max |a - b| / max |b| */
static double rel_max_diff(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return m > 0.0 ? d / m : d;
}

static float *run_plan(clcnn_graph *g, int batch, const clcnn_plan_options *o,
                       const clcnn_tensor *x, size_t *numel, clcnn_plan_memory *mem) {
    clcnn_plan *p = NULL;
    clcnn_status s = clcnn_plan_create(tu_device(), g, batch, o, &p);
    if (s != CLCNN_OK) fail_msg("plan: %s", clcnn_last_error());
    s = clcnn_plan_run(p, &x, 1);
    if (s != CLCNN_OK) fail_msg("run: %s", clcnn_last_error());
    const clcnn_tensor *y = clcnn_plan_output(p, 0);
    assert_non_null(y);
    *numel = clcnn_tensor_numel(y);
    float *out = tu_download(y);
    if (mem) clcnn_plan_get_memory(p, mem);
    clcnn_plan_free(p);
    return out;
}

static void check_model(const char *name, int batch, int expect_dw_pairs) {
    clcnn_device *dev = tu_device();
    clcnn_net *net = NULL;
    assert_int_equal(clcnn_net_create_model(dev, name, 10, &net), CLCNN_OK);
    assert_int_equal(clcnn_net_init(net, CLCNN_INIT_HE, 7), CLCNN_OK);
    randomise_bn(net, 11);
    clcnn_net_set_training(net, 0);
    int c, h, w;
    for (int i = 0; clcnn_model_name(i, NULL, NULL, NULL); i++)
        if (!strcmp(clcnn_model_name(i, &c, &h, &w), name)) break;
    size_t xs[4] = {(size_t)batch, (size_t)c, (size_t)h, (size_t)w};
    size_t xn = xs[0] * xs[1] * xs[2] * xs[3];
    float *xh = malloc(xn * sizeof *xh);
    tu_rng r = tu_rng_seed(3);
    tu_fill_uniform(&r, xh, xn, -1.0f, 1.0f);
    clcnn_tensor *x = tu_tensor_from(4, xs, xh);
    const clcnn_tensor *ynet = NULL;
    assert_int_equal(clcnn_net_forward(net, x, &ynet), CLCNN_OK);
    float *ref = tu_download(ynet);
    size_t ref_n = clcnn_tensor_numel(ynet);

    clcnn_graph *g = NULL;
    assert_int_equal(clcnn_net_graph(net, &g), CLCNN_OK);
    clcnn_plan_options o = clcnn_plan_options_default();
    size_t n = 0;
    clcnn_plan_memory mem, mem_plain;
    float *planned = run_plan(g, batch, &o, x, &n, &mem);
    assert_int_equal(n, ref_n);
    double d = rel_max_diff(planned, ref, n);
    printf("%-14s batch %d: plan vs net max rel diff %.2e; %d steps, %d BN folded, %d "
           "activations, %d adds and %d depthwise layers fused; activations %.1f MB planned, "
           "%.1f MB summed\n",
           name, batch, d, mem.steps, mem.fused_batchnorm, mem.fused_activation, mem.fused_add,
           mem.fused_depthwise, mem.activation_bytes / 1e6, mem.activation_sum / 1e6);
    assert_true(d < 2e-3);
    assert_true(mem.activation_bytes * 2 < mem.activation_sum);

    /* reuse off: the same steps on private buffers give the same bytes */
    o.reuse_buffers = 0;
    float *unshared = run_plan(g, batch, &o, x, &n, &mem_plain);
    assert_memory_equal(unshared, planned, n * sizeof *planned);
    assert_true(mem_plain.activation_bytes >= mem.activation_sum);

    /* depthwise layers as steps of their own: one more step per pair, the same bytes (the
     * fused kernel sums in the two kernels' orders) */
    o = clcnn_plan_options_default();
    o.fuse_depthwise = 0;
    float *unpaired = run_plan(g, batch, &o, x, &n, &mem_plain);
    assert_int_equal(mem.fused_depthwise, expect_dw_pairs);
    assert_int_equal(mem_plain.fused_depthwise, 0);
    assert_int_equal(mem_plain.steps, mem.steps + mem.fused_depthwise);
    assert_memory_equal(unpaired, planned, n * sizeof *planned);
    free(unpaired);

    /* nothing folded or fused: more steps, same outputs within rounding */
    o = clcnn_plan_options_default();
    o.fold_batchnorm = 0;
    o.fuse = 0;
    float *plain = run_plan(g, batch, &o, x, &n, &mem_plain);
    assert_true(mem_plain.steps > mem.steps || mem.fused_batchnorm + mem.fused_activation == 0);
    assert_true(rel_max_diff(planned, plain, n) < 2e-3);

    free(plain);
    free(unshared);
    free(planned);
    free(ref);
    free(xh);
    clcnn_graph_free(g);
    clcnn_tensor_free(x);
    clcnn_net_free(net);
}

static void test_resnet50(void **state) {
    (void)state;
    check_model("resnet50", 1, 0);
}

/* At batch 2 the depthwise + 1x1 pairs of 112x112, 56x56 and 28x28 planes fuse (at least
 * 1568 positions over the batch, plan_fuse.c): 6. */
static void test_mobilenet_v2(void **state) {
    (void)state;
    check_model("mobilenet_v2", 2, 6);
}

static void test_alexnet(void **state) {
    (void)state;
    check_model("alexnet", 1, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobilenet_v2),
        cmocka_unit_test(test_resnet50),
        cmocka_unit_test(test_alexnet),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
