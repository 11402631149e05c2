/* Training plans that fold an Add + ReLU's backward into a convolution's data gradient
 * (lib/exec/train.c's fold_relu_grads; the kernel: test_conv2d_dgrad_relu): ResNet-like
 * blocks whose output feeds the next block's first convolution (1x1: plane tiles; 3x3:
 * row tiles) and that block's Add. Finite differences through the folded blocks at batch
 * 1 and 3; logits and every parameter gradient bit for bit equal, over two steps, to the
 * plan that cannot fold (the blocks' outputs are graph outputs too, so their gradients
 * are summed apart and masked by the ReLU's own backward); where the plan folds (the
 * implicit GEMM's data gradient at stride 1) and where it does not. */
#include "graph_fd.h"

#include "exec/train_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Conv named id (weights id.w, k x c x rk x rk, pads rk/2) on in, then a batch norm
 * (id.bn: id.g, id.b, id.m, id.v) whose output is out. */
static void conv_bn(clcnn_graph *g, tu_rng *r, const char *id, const char *in, int k, int c, int rk,
                    const char *out) {
    char w[32], cv[32], ins[160], pn[4][32];
    snprintf(w, sizeof w, "%s.w", id);
    snprintf(cv, sizeof cv, "%s.c", id);
    gt_add_param(g, r, w, 4, k, c, rk, rk, -0.6f, 0.6f);
    int64_t p[4] = {rk / 2, rk / 2, rk / 2, rk / 2};
    clcnn_attr pads = gt_ais("pads", p, 4);
    snprintf(ins, sizeof ins, "%s %s", in, w);
    gt_node(g, "Conv", id, ins, cv, 1, &pads);
    const char *sfx[4] = {"g", "b", "m", "v"};
    float lo[4] = {0.5f, -0.5f, 0.0f, 1.0f}, hi[4] = {1.5f, 0.5f, 0.0f, 1.0f};
    for (int q = 0; q < 4; q++) {
        snprintf(pn[q], sizeof pn[q], "%s.%s", id, sfx[q]);
        gt_add_param(g, r, pn[q], 1, k, 0, 0, 0, lo[q], hi[q]);
    }
    char bn[32];
    snprintf(bn, sizeof bn, "%s.bn", id);
    snprintf(ins, sizeof ins, "%s %s %s %s %s", cv, pn[0], pn[1], pn[2], pn[3]);
    gt_node(g, "BatchNormalization", bn, ins, out, 0, NULL);
}

/* x (3 channels) -> conv a + BN + ReLU (C channels) -> three residual blocks, each
 * relu(bn(conv(relu(bn(conv1(in))))) + in), where conv1 is 1x1 in the first two blocks
 * and 3x3 in the third; pooled, a classifier. Blocks 1 and 2's outputs feed the next
 * block's conv1 (their first reader) and its Add: foldable. extra: those outputs are graph
 * outputs as well (no fold). */
#define C 16 /* channels: the automatic rule's implicit GEMM for the data gradients */
static clcnn_graph *blocks_graph(int extra) {
    clcnn_graph *g = gt_new_graph();
    tu_rng r = tu_rng_seed(41);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 6, 5);
    conv_bn(g, &r, "a", "x", C, 3, 3, "ta");
    gt_node(g, "Relu", "ra", "ta", "o0", 0, NULL);
    for (int b = 1; b <= 3; b++) {
        char id1[8], id2[8], in[8], t1[8], r1[8], t2[8], add[8], u[8], relu[8], out[8];
        snprintf(in, sizeof in, "o%d", b - 1);
        snprintf(id1, sizeof id1, "b%d1", b);
        snprintf(id2, sizeof id2, "b%d2", b);
        snprintf(t1, sizeof t1, "t%d1", b);
        snprintf(r1, sizeof r1, "r%d1", b);
        snprintf(t2, sizeof t2, "t%d2", b);
        snprintf(add, sizeof add, "s%d", b);
        snprintf(u, sizeof u, "u%d", b);
        snprintf(relu, sizeof relu, "q%d", b);
        snprintf(out, sizeof out, "o%d", b);
        conv_bn(g, &r, id1, in, C, C, b == 3 ? 3 : 1, t1);
        gt_node(g, "Relu", r1, t1, r1, 0, NULL);
        conv_bn(g, &r, id2, r1, C, C, 3, t2);
        char ins[24];
        snprintf(ins, sizeof ins, "%s %s", t2, in);
        gt_node(g, "Add", add, ins, u, 0, NULL);
        gt_node(g, "Relu", relu, u, out, 0, NULL);
    }
    gt_node(g, "GlobalAveragePool", "pool", "o3", "pooled", 0, NULL);
    gt_classifier(g, &r, "pooled", C, 0.5f, 1);
    if (extra) {
        TU_OK(clcnn_graph_add_output(g, "o1"));
        TU_OK(clcnn_graph_add_output(g, "o2"));
    }
    return g;
}

/* The plan's folds: Conv nodes whose data gradient finishes an Add's ReLU gradient, after
 * checking that as many Adds hand theirs over. */
static int folds(const clcnn_train_plan *p) {
    int convs = 0, adds = 0;
    for (int i = 0; i < p->nnodes; i++) {
        convs += p->nodes[i].op == CC_OP_CONV && p->nodes[i].relu_grad;
        adds += p->nodes[i].op == CC_OP_ADD && p->nodes[i].relu_grad;
    }
    assert_int_equal(convs, adds);
    return convs;
}

static void test_finite_differences(void **state) {
    (void)state;
    gt_expect_fd_fused(blocks_graph(0), CLCNN_CONV_IMPLICIT_GEMM);
}

/* Two steps of the folding plan and of the one that cannot fold, with algo for every
 * convolution: the same logits and parameter gradients, bit for bit; want folds. */
static void compare_plans(clcnn_conv_algo algo, int want) {
    clcnn_train_plan *p[2] = {NULL, NULL};
    clcnn_train_options o = {.conv_algo = algo};
    for (int k = 0; k < 2; k++) {
        clcnn_graph *g = blocks_graph(k);
        TU_OK(clcnn_train_plan_create(tu_device(), g, 3, &o, &p[k]));
        clcnn_graph_free(g);
    }
    assert_int_equal(folds(p[0]), want);
    assert_int_equal(folds(p[1]), 0);
    gt_expect_same_steps(p, 2, 9, 6, 5);
    clcnn_train_plan_free(p[0]);
    clcnn_train_plan_free(p[1]);
}

/* Blocks 1 and 2 fold on the implicit GEMM (the automatic choice for these layers, and
 * forced); with the direct algorithm nothing folds and the Adds keep their own pass. */
static void test_same_bits(void **state) {
    (void)state;
    compare_plans(CLCNN_CONV_AUTO, 2);
    compare_plans(CLCNN_CONV_IMPLICIT_GEMM, 2);
    compare_plans(CLCNN_CONV_DIRECT, 0);
}

/* The folded plan launches the data gradient with the ReLU epilogue (RGRAD) and no
 * separate sum-and-mask pass (a fresh device traced by $CLCNN_TRACE_KERNELS). */
static void test_kernels(void **state) {
    (void)state;
    char *dir = tu_temp_dir("fold");
    tu_trace_begin(dir);
    clcnn_device *dev = tu_device_fresh();
    clcnn_graph *g = blocks_graph(0);
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(dev, g, 3, NULL, &p));
    clcnn_graph_free(g);
    size_t xs[4] = {3, 3, 6, 5}, ys[2] = {3, 3};
    clcnn_tensor *x = NULL, *dy = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 4, xs, &x));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 2, ys, &dy));
    TU_OK(clcnn_tensor_fill(x, 0.5f));
    TU_OK(clcnn_tensor_fill(dy, 1.0f));
    TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&x, 1));
    TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dy, 1));
    TU_OK(clcnn_device_finish(dev));
    clcnn_tensor_free(x);
    clcnn_tensor_free(dy);
    clcnn_train_plan_free(p);
    clcnn_device_close(dev);
    char *trace = tu_trace_end(dir);
    assert_non_null(trace);
    assert_non_null(strstr(trace, "RGRAD=1"));
    assert_null(strstr(trace, "ew_add_relu_grad"));
    free(trace);
    tu_remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_kernels),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
