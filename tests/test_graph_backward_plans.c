/* Backward on the graph, whole plans: a DAG with fan-out, Concat, Split, a
 * squeeze-excitation Mul, a residual Add and batch norm against finite differences
 * (graph_fd.c; and a meta test that the check catches a gradient 5% off), the fused
 * element-wise tail and batch norm + Add, bit-identical repeats, SGD on the arenas, the
 * zoo's "bn" and "lenet" models against the layer-by-layer net's backward, models PyTorch
 * exported, and the error paths. Per op: test_graph_backward. */
#include "graph_fd.h"

#include "exec/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a DAG: stem conv + BN + ReLU fans out to two branches (one with a squeeze-excitation
 * block), concatenated, split and concatenated in another order, a residual Add with the
 * stem, pooled, a classifier ------------------------------------------------------------ */

static clcnn_graph *dag_graph(void) {
    clcnn_graph *g = gt_new_graph();
    tu_rng r = tu_rng_seed(21);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 7, 7);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = gt_ais("pads", p1, 4);
    gt_add_param(g, &r, "stem.w", 4, 4, 3, 3, 3, -0.4f, 0.4f);
    gt_add_param(g, &r, "stem.b", 1, 4, 0, 0, 0, -0.1f, 0.1f);
    gt_node(g, "Conv", "stem", "x stem.w stem.b", "s0", 1, &pad1);
    gt_add_param(g, &r, "bn.g", 1, 4, 0, 0, 0, 0.8f, 1.2f);
    gt_add_param(g, &r, "bn.b", 1, 4, 0, 0, 0, -0.1f, 0.1f);
    gt_add_param(g, &r, "bn.m", 1, 4, 0, 0, 0, 0.0f, 0.0f);
    gt_add_param(g, &r, "bn.v", 1, 4, 0, 0, 0, 1.0f, 1.0f);
    gt_node(g, "BatchNormalization", "bn", "s0 bn.g bn.b bn.m bn.v", "s1", 0, NULL);
    gt_node(g, "Relu", "relu", "s1", "s", 0, NULL); /* fans out to 4 readers */
    /* branch a: 1x1 conv to 2 channels */
    gt_add_param(g, &r, "a.w", 4, 2, 4, 1, 1, -0.5f, 0.5f);
    gt_node(g, "Conv", "a", "s a.w", "ya", 0, NULL);
    /* branch b: 3x3 conv to 2 channels, then squeeze-excitation */
    gt_add_param(g, &r, "b.w", 4, 2, 4, 3, 3, -0.3f, 0.3f);
    gt_node(g, "Conv", "b", "s b.w", "yb", 1, &pad1);
    gt_node(g, "GlobalAveragePool", "se.pool", "yb", "se0", 0, NULL);
    gt_add_param(g, &r, "se.w", 4, 2, 2, 1, 1, -0.8f, 0.8f);
    gt_add_param(g, &r, "se.b", 1, 2, 0, 0, 0, -0.1f, 0.1f);
    gt_node(g, "Conv", "se.fc", "se0 se.w se.b", "se1", 0, NULL);
    gt_node(g, "Sigmoid", "se.gate", "se1", "se2", 0, NULL);
    gt_node(g, "Mul", "se.scale", "yb se2", "ybs", 0, NULL);
    clcnn_attr ax1 = gt_ai("axis", 1);
    gt_node(g, "Concat", "cat", "ya ybs", "cat", 1, &ax1);
    /* the channels rotated by one: Split 1 + 3, Concat the other way round */
    int64_t sizes[2] = {1, 3};
    clcnn_attr split[2] = {gt_ai("axis", 1), gt_ais("split", sizes, 2)};
    const char *parts[2] = {"c0", "c1"}, *cat = "cat";
    TU_OK(clcnn_graph_add_node(g, "Split", "split", 1, &cat, 2, parts, 2, split));
    gt_node(g, "Concat", "rot", "c1 c0", "rot", 1, &ax1);
    gt_node(g, "Add", "res", "rot s", "sum", 0, NULL);
    gt_node(g, "Mul", "sq", "sum s", "sq", 0, NULL); /* s read a fourth time */
    int64_t k2[2] = {2, 2};
    clcnn_attr mp[2] = {gt_ais("kernel_shape", k2, 2), gt_ais("strides", k2, 2)};
    gt_node(g, "MaxPool", "pool", "sq", "pooled", 2, mp);
    gt_classifier(g, &r, "pooled", 36, 0.2f, 1);
    return g;
}

static void test_dag(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    gt_fd_case c = gt_fd_default(g, 2);
    c.max_checks = 16;
    c.h = 3e-4; /* ReLU and max-pool kinks lie within 1e-3 of some inputs here */
    assert_true(gt_fd_check(&c));
    clcnn_graph_free(g);
}

/* The check catches a gradient 5% off: the test above can fail. */
static void test_fd_catches_wrong_gradient(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    gt_fd_case c = gt_fd_default(g, 2);
    c.max_checks = 4;
    c.h = 3e-4; /* as test_dag: only the scaling differs */
    c.grad_scale = 1.05f;
    printf("(expected mismatch reports follow)\n");
    fflush(stdout);
    assert_false(gt_fd_check(&c));
    clcnn_graph_free(g);
}

/* The element-wise tail the plan fuses: batch norm into the ReLU and the Clip to [0, 6]
 * that alone read it (one node, masked backward), not a batch norm whose output two nodes
 * read, nor a Clip to other bounds; residual Adds whose operands' gradients become views of
 * dy (one operand read elsewhere too, one Add feeding the next), the last fused with the
 * ReLU that alone reads it, whose output two nodes read (its backward sums their
 * contributions and masks them in one pass). BN2's gamma and beta put a good share of its
 * values above 6. */
static clcnn_graph *tail_graph(void) {
    clcnn_graph *g = gt_new_graph();
    tu_rng r = tu_rng_seed(23);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 6, 5);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = gt_ais("pads", p1, 4);
    float zero = 0.0f, six = 6.0f, one = 1.0f;
    TU_OK(clcnn_graph_add_initializer(g, "zero", CLCNN_F32, 0, NULL, &zero));
    TU_OK(clcnn_graph_add_initializer(g, "six", CLCNN_F32, 0, NULL, &six));
    TU_OK(clcnn_graph_add_initializer(g, "one", CLCNN_F32, 0, NULL, &one));
    const char *ins[4] = {"x", "r1", "c2o", "r3"};
    for (int l = 1; l <= 4; l++) {
        char w[8], cv[8], gm[8], bt[8], mn[8], vr[8], bn[128], t[8], nm[8];
        snprintf(w, sizeof w, "w%d", l);
        snprintf(cv, sizeof cv, "cv%d", l);
        snprintf(gm, sizeof gm, "g%d", l);
        snprintf(bt, sizeof bt, "b%d", l);
        snprintf(mn, sizeof mn, "m%d", l);
        snprintf(vr, sizeof vr, "v%d", l);
        snprintf(t, sizeof t, "t%d", l);
        snprintf(nm, sizeof nm, "bn%d", l);
        gt_add_param(g, &r, w, 4, 4, l == 1 ? 3 : 4, 3, 3, -0.4f, 0.4f);
        char cin[32];
        snprintf(cin, sizeof cin, "%s %s", ins[l - 1], w);
        gt_node(g, "Conv", w, cin, cv, 1, &pad1);
        gt_add_param(g, &r, gm, 1, 4, 0, 0, 0, l == 2 ? 3.0f : 0.5f, l == 2 ? 4.0f : 1.5f);
        gt_add_param(g, &r, bt, 1, 4, 0, 0, 0, l == 2 ? 3.0f : -0.5f, l == 2 ? 4.0f : 0.5f);
        gt_add_param(g, &r, mn, 1, 4, 0, 0, 0, 0.0f, 0.0f);
        gt_add_param(g, &r, vr, 1, 4, 0, 0, 0, 1.0f, 1.0f);
        snprintf(bn, sizeof bn, "%s %s %s %s %s", cv, gm, bt, mn, vr);
        gt_node(g, "BatchNormalization", nm, bn, t, 0, NULL);
    }
    gt_node(g, "Relu", "r1", "t1", "r1", 0, NULL);           /* fused; r1 read twice */
    gt_node(g, "Clip", "c2", "t2 zero six", "c2o", 0, NULL); /* fused as ReLU6 */
    gt_node(g, "Relu", "r3", "t3", "r3", 0, NULL);           /* t3 read twice: not fused */
    gt_node(g, "Clip", "c4", "t4 zero one", "c4o", 0, NULL); /* other bounds: not fused */
    gt_node(g, "Add", "s1", "c4o r1", "s1", 0, NULL);
    gt_node(g, "Add", "s2", "s1 t3", "s2", 0, NULL);
    gt_node(g, "Relu", "r5", "s2", "r5", 0, NULL); /* fused into s2; r5 read twice */
    gt_node(g, "Add", "s3", "r5 c4o", "s3", 0, NULL);
    gt_node(g, "Mul", "mul3", "s3 r5", "mul3", 0, NULL);
    gt_node(g, "GlobalAveragePool", "pool", "mul3", "pooled", 0, NULL);
    gt_classifier(g, &r, "pooled", 4, 0.5f, 0);
    return g;
}

static void test_fused_tail(void **state) {
    (void)state;
    gt_expect_fd_fused(tail_graph(), CLCNN_CONV_AUTO);
}

/* A residual Add whose later operand is a batch norm's output that only it reads runs in
 * the batch norm's pass (train.c's fuse_bn_add): a bottleneck-like block with a
 * downsampling branch (Add + ReLU: the branch's batch norm comes last) and a second Add
 * without ReLU whose other operand the block's convolution reads too. extra: the two batch
 * norms' outputs are graph outputs as well, which keeps both Adds apart. */
static clcnn_graph *bn_add_graph(int extra) {
    clcnn_graph *g = gt_new_graph();
    tu_rng r = tu_rng_seed(29);
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 3, 6, 5);
    int64_t p1[4] = {1, 1, 1, 1};
    clcnn_attr pad1 = gt_ais("pads", p1, 4);
    static const char *const layers[][3] = {
        {"1", "x", "4"}, {"2", "r1", "4"}, {"d", "x", "4"}, {"3", "o1", "4"}};
    for (int l = 0; l < 4; l++) {
        const char *id = layers[l][0];
        char w[8], cv[8], bn[128], t[8], nm[8], cin[32];
        snprintf(w, sizeof w, "w%s", id);
        snprintf(cv, sizeof cv, "c%s", id);
        snprintf(t, sizeof t, "t%s", id);
        snprintf(nm, sizeof nm, "bn%s", id);
        gt_add_param(g, &r, w, 4, 4, l == 0 || l == 2 ? 3 : 4, 3, 3, -0.4f, 0.4f);
        snprintf(cin, sizeof cin, "%s %s", layers[l][1], w);
        gt_node(g, "Conv", w, cin, cv, 1, &pad1);
        const char *sfx[4] = {"g", "b", "m", "v"};
        float lo[4] = {0.5f, -0.5f, 0.0f, 1.0f}, hi[4] = {1.5f, 0.5f, 0.0f, 1.0f};
        char pn[4][8];
        for (int k = 0; k < 4; k++) {
            snprintf(pn[k], sizeof pn[k], "%s%s", sfx[k], id);
            gt_add_param(g, &r, pn[k], 1, 4, 0, 0, 0, lo[k], hi[k]);
        }
        snprintf(bn, sizeof bn, "%s %s %s %s %s", cv, pn[0], pn[1], pn[2], pn[3]);
        gt_node(g, "BatchNormalization", nm, bn, t, 0, NULL);
        if (l == 0) gt_node(g, "Relu", "r1", "t1", "r1", 0, NULL);
        if (l == 2) { /* after the downsampling branch: the block's sum */
            gt_node(g, "Add", "s1", "t2 td", "u1", 0, NULL);
            gt_node(g, "Relu", "o1", "u1", "o1", 0, NULL);
        }
    }
    gt_node(g, "Add", "s2", "o1 t3", "u2", 0, NULL);
    gt_node(g, "GlobalAveragePool", "pool", "u2", "pooled", 0, NULL);
    gt_classifier(g, &r, "pooled", 4, 0.5f, 1);
    if (extra) {
        TU_OK(clcnn_graph_add_output(g, "td"));
        TU_OK(clcnn_graph_add_output(g, "t3"));
    }
    return g;
}

/* The batch norms of a plan that run an Add in their pass. */
static int bn_adds(const clcnn_train_plan *p) {
    int n = 0;
    for (int i = 0; i < p->nnodes; i++)
        n += p->nodes[i].op == CC_OP_BATCHNORM && p->nodes[i].res >= 0;
    return n;
}

/* Finite differences through the fused block, and the same logits and parameter
 * gradients, bit for bit, as the plan that keeps the Adds apart (twice: the second step's
 * forward starts from the first's running statistics). */
static void test_bn_add(void **state) {
    (void)state;
    gt_expect_fd_fused(bn_add_graph(0), CLCNN_CONV_AUTO);
    clcnn_train_plan *p[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        clcnn_graph *g = bn_add_graph(k);
        TU_OK(clcnn_train_plan_create(tu_device(), g, 3, NULL, &p[k]));
        clcnn_graph_free(g);
    }
    assert_int_equal(bn_adds(p[0]), 2);
    assert_int_equal(bn_adds(p[1]), 0);
    gt_expect_same_steps(p, 2, 5, 6, 5);
    clcnn_train_plan_free(p[0]);
    clcnn_train_plan_free(p[1]);
}

/* Two plans, same batch: bit-identical gradients; a second backward without zero_grad
 * adds the same again (exactly doubles), zero_grad clears; with overwrite_grads a second
 * backward writes the same gradients again. */
static float *dag_grads(clcnn_train_plan **keep, int twice, int overwrite) {
    clcnn_graph *g = dag_graph();
    clcnn_train_plan *p = NULL;
    clcnn_train_options o = {.overwrite_grads = overwrite};
    TU_OK(clcnn_train_plan_create(tu_device(), g, 3, &o, &p));
    clcnn_graph_free(g);
    clcnn_tensor *xt = NULL, *dyt = NULL;
    gt_random_batch(3, 7, 7, &xt, &dyt);
    for (int k = 0; k < 1 + twice; k++) {
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    }
    float *grads = tu_download(clcnn_train_plan_grads(p));
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    if (keep)
        *keep = p;
    else
        clcnn_train_plan_free(p);
    return grads;
}

static void test_repeatable(void **state) {
    (void)state;
    clcnn_train_plan *p = NULL;
    float *a = dag_grads(NULL, 0, 0), *b = dag_grads(&p, 0, 0), *c2 = dag_grads(NULL, 1, 0);
    float *ow = dag_grads(NULL, 1, 1);
    size_t n = clcnn_tensor_numel(clcnn_train_plan_grads(p));
    assert_memory_equal(a, b, n * sizeof *a);
    double norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        assert_true(c2[i] == 2.0f * a[i]);
        assert_true(ow[i] == a[i]);
        norm += fabs(a[i]);
    }
    assert_true(norm > 0.0);
    TU_OK(clcnn_train_plan_zero_grad(p));
    float *z = tu_download(clcnn_train_plan_grads(p));
    for (size_t i = 0; i < n; i++)
        assert_true(z[i] == 0.0f);
    /* parameters by name: the arena holds them as views */
    float w[3 * 36];
    TU_OK(clcnn_train_plan_read(p, "fc.w", w, sizeof w));
    w[0] = 42.0f;
    TU_OK(clcnn_train_plan_write(p, "fc.w", w, sizeof w));
    float *wv = tu_download(clcnn_train_plan_param(p, "fc.w"));
    assert_true(wv[0] == 42.0f);
    assert_int_equal(clcnn_train_plan_read(p, "nope", w, sizeof w), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "nope"));
    assert_int_equal(clcnn_train_plan_write(p, "fc.w", w, 4), CLCNN_ERR_INVALID_ARG);
    assert_null(clcnn_train_plan_grad(p, "x"));
    free(a);
    free(b);
    free(c2);
    free(ow);
    free(z);
    free(wv);
    clcnn_train_plan_free(p);
}

/* SGD with momentum over the whole arenas (one update for every parameter) fits a fixed
 * batch of the DAG: the cross-entropy falls to under a third of its start in 30 steps. */
static void test_sgd_on_arenas(void **state) {
    (void)state;
    clcnn_graph *g = dag_graph();
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 6, NULL, &p));
    clcnn_graph_free(g);
    tu_rng r = tu_rng_seed(8);
    float x[6 * 3 * 7 * 7];
    int lab[6] = {0, 1, 2, 2, 1, 0};
    tu_fill_uniform(&r, x, sizeof x / sizeof *x, -1.0f, 1.0f);
    size_t xs[4] = {6, 3, 7, 7}, ys[2] = {6, 3}, one = 1, six = 6;
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *labels = tu_tensor_new(CLCNN_I32, 1, &six);
    TU_OK(clcnn_tensor_upload(labels, lab, sizeof lab));
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, &one);
    clcnn_tensor *dlogits = tu_tensor_new(CLCNN_F32, 2, ys);
    clcnn_tensor *params = clcnn_train_plan_params(p), *grads = clcnn_train_plan_grads(p);
    size_t ng = clcnn_tensor_numel(grads);
    assert_int_equal(clcnn_tensor_numel(params), ng);
    clcnn_tensor *vel = tu_tensor_new(CLCNN_F32, 1, &ng);
    TU_OK(clcnn_tensor_fill(vel, 0.0f));
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < 30; step++) {
        TU_OK(clcnn_train_plan_zero_grad(p));
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_softmax_cross_entropy(tu_device(), clcnn_train_plan_output(p, 0), labels, loss,
                                          dlogits));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dlogits, 1));
        TU_OK(clcnn_sgd_update(tu_device(), params, grads, vel, 0.05f, 0.9f, 0.0f));
        TU_OK(clcnn_tensor_download(loss, step ? &last : &first, sizeof first));
    }
    printf("cross-entropy %.4f -> %.4f in 30 steps\n", first, last);
    assert_true(isfinite(last) && last < first / 3.0f);
    /* the trained weights and running statistics back into a graph, by name */
    clcnn_graph *back = dag_graph();
    TU_OK(clcnn_train_plan_to_graph(p, back));
    const char *names[3] = {"fc.w", "bn.m", "stem.w"};
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        const float *gv = clcnn_graph_initializer(back, names[i], &n);
        float *pv = tu_download(clcnn_train_plan_param(p, names[i]));
        assert_memory_equal(gv, pv, n * sizeof *pv);
        free(pv);
    }
    clcnn_graph *other = gt_new_graph(); /* no such initializers */
    assert_int_equal(clcnn_train_plan_to_graph(p, other), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "stem.w"));
    clcnn_graph_free(other);
    clcnn_graph_free(back);
    clcnn_tensor *tensors[5] = {xt, labels, loss, dlogits, vel};
    for (int i = 0; i < 5; i++)
        clcnn_tensor_free(tensors[i]);
    clcnn_train_plan_free(p);
}

/* ---- the zoo's "bn" and "lenet": the net's own plan (parameter gradients written in place,
 * plans remade per batch size on shared arenas) against a public training plan of its graph
 * (gradients added to a zeroed arena). The gradients themselves are checked against finite
 * differences of the double reference in test_nn.c. ---------------------------------------- */

static void test_zoo_matches_net(void **state) {
    (void)state;
    const char *models[2] = {"bn", "lenet"};
    for (int mi = 0; mi < 2; mi++) {
        clcnn_net *net = NULL;
        TU_OK(clcnn_net_create_model(tu_device(), models[mi], 10, &net));
        TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 7));
        clcnn_graph *g = NULL;
        TU_OK(clcnn_net_graph(net, &g));
        int batch = 4;
        clcnn_train_plan *p = NULL;
        TU_OK(clcnn_train_plan_create(tu_device(), g, batch, NULL, &p));
        tu_rng r = tu_rng_seed(9);
        size_t xs[4] = {(size_t)batch, 1, 28, 28}, ys[2] = {(size_t)batch, 10};
        float *x = malloc(batch * 784 * sizeof *x), dy[40];
        tu_fill_uniform(&r, x, (size_t)batch * 784, 0.0f, 1.0f);
        tu_fill_uniform(&r, dy, 40, -1.0f, 1.0f);
        clcnn_tensor *xt = tu_tensor_from(4, xs, x), *dyt = tu_tensor_from(2, ys, dy);
        const clcnn_tensor *y = NULL;
        clcnn_net_set_training(net, 1);
        TU_OK(clcnn_net_forward(net, xt, &y));
        TU_OK(clcnn_net_backward(net, dyt));
        TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
        TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
        float *ya = tu_download(y), *yb = tu_download(clcnn_train_plan_output(p, 0));
        double *yref = malloc(40 * sizeof *yref);
        for (int i = 0; i < 40; i++)
            yref[i] = ya[i];
        assert_true(tu_close("output", yb, yref, 40, 1e-4, 1e-3));
        int compared = 0;
        for (int i = 0; i < clcnn_net_num_params(net); i++) {
            clcnn_param q;
            TU_OK(clcnn_net_param(net, i, &q));
            clcnn_tensor *gp = clcnn_train_plan_grad(p, q.name);
            if (!q.grad) {
                assert_null(gp);
                continue;
            }
            assert_non_null(gp);
            size_t n = clcnn_tensor_numel(q.grad);
            assert_int_equal(n, clcnn_tensor_numel(gp));
            float *ga = tu_download(q.grad), *gb = tu_download(gp);
            double *ref = malloc(n * sizeof *ref), mx = 0.0;
            for (size_t k = 0; k < n; k++) {
                ref[k] = ga[k];
                mx = fmax(mx, fabs(ref[k]));
            }
            /* different algorithms sum in different orders: rounding relative to the
             * tensor's largest gradient */
            assert_true(tu_close(q.name, gb, ref, n, 1e-4 * mx + 1e-7, 1e-3));
            compared++;
            free(ga);
            free(gb);
            free(ref);
        }
        assert_true(compared >= 6);
        free(x);
        free(ya);
        free(yb);
        free(yref);
        clcnn_tensor_free(xt);
        clcnn_tensor_free(dyt);
        clcnn_train_plan_free(p);
        clcnn_graph_free(g);
        clcnn_net_free(net);
    }
}

/* ---- models PyTorch exported (tests/onnx/torch) ---------------------------------------- */

static clcnn_graph *load_torch(const char *name) {
    char path[512];
    snprintf(path, sizeof path, CLCNN_SOURCE_DIR "/tests/onnx/torch/%s/model.onnx", name);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_load_onnx(path, &g));
    return g;
}

/* An imported ResNet (BasicBlocks: residual Adds, projection shortcuts, batch norm, max and
 * global pooling, Flatten, Gemm) against finite differences, two elements per parameter;
 * MobileNet-V2 (depthwise convolutions, Clip as ReLU6) runs a step with finite, non-zero
 * gradients; a model with a value of 5 dims fails naming it. */
static void test_imported_models(void **state) {
    (void)state;
    clcnn_graph *g = load_torch("small_resnet");
    gt_fd_case c = gt_fd_default(g, 2);
    c.max_checks = 2;
    c.h = 3e-4;
    assert_true(gt_fd_check(&c));
    clcnn_graph_free(g);

    g = load_torch("small_mobilenet_v2");
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p));
    size_t xs[4] = {2, 3, 32, 32}, ys[2] = {2, 10};
    float x[2 * 3 * 32 * 32], dy[20];
    tu_rng r = tu_rng_seed(41);
    tu_fill_uniform(&r, x, sizeof x / sizeof *x, -1.0f, 1.0f);
    tu_fill_uniform(&r, dy, 20, -1.0f, 1.0f);
    clcnn_tensor *xt = tu_tensor_from(4, xs, x), *dyt = tu_tensor_from(2, ys, dy);
    TU_OK(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&xt, 1));
    TU_OK(clcnn_train_plan_backward(p, (const clcnn_tensor *const *)&dyt, 1));
    int nonzero = 0;
    for (int i = 0; i < clcnn_train_plan_num_params(p); i++) {
        clcnn_tensor *gt = clcnn_train_plan_grad(p, clcnn_train_plan_param_name(p, i));
        if (!gt) continue;
        float *gv = tu_download(gt);
        double sum = 0.0;
        for (size_t k = 0; k < clcnn_tensor_numel(gt); k++)
            sum += fabs(gv[k]);
        assert_true(isfinite(sum));
        nonzero += sum > 0.0;
        free(gv);
    }
    assert_true(nonzero > 50);
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
    clcnn_train_plan_free(p);
    clcnn_graph_free(g);

    g = load_torch("shuffle_concat");
    p = (clcnn_train_plan *)0x1;
    assert_int_equal(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_null(p);
    /* its channel shuffle reshapes to 5 dims */
    assert_non_null(strstr(clcnn_last_error(), "training plans hold at most 4"));
    clcnn_graph_free(g);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_create_error(clcnn_graph *g, clcnn_status want, const char *needle1,
                                const char *needle2) {
    clcnn_train_plan *p = (clcnn_train_plan *)0x1;
    assert_int_equal(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p), want);
    assert_null(p);
    const char *msg = clcnn_last_error();
    if (!strstr(msg, needle1) || !strstr(msg, needle2))
        fail_msg("message '%s' does not name '%s' and '%s'", msg, needle1, needle2);
    clcnn_graph_free(g);
}

static void test_errors(void **state) {
    (void)state;
    /* an op without backward */
    clcnn_graph *g = gt_new_graph();
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 4, 4);
    gt_node(g, "Exp", "the_exp", "x", "y", 0, NULL);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_create_error(g, CLCNN_ERR_UNSUPPORTED, "the_exp", "Exp");
    /* a form without backward: dilated max pooling */
    g = gt_new_graph();
    gt_add_input(g, "x", 4, CLCNN_GRAPH_BATCH, 2, 5, 5);
    int64_t k2[2] = {2, 2};
    clcnn_attr mp[3] = {gt_ais("kernel_shape", k2, 2), gt_ais("strides", k2, 2),
                        gt_ais("dilations", k2, 2)};
    gt_node(g, "MaxPool", "dil_pool", "x", "y", 3, mp);
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_create_error(g, CLCNN_ERR_UNSUPPORTED, "dil_pool", "dilations");
    /* backward before forward, wrong counts */
    g = dag_graph();
    clcnn_train_plan *p = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, 2, NULL, &p));
    const clcnn_tensor *none[1] = {NULL};
    assert_int_equal(clcnn_train_plan_backward(p, none, 1), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "no forward"));
    assert_int_equal(clcnn_train_plan_forward(p, NULL, 0), CLCNN_ERR_INVALID_ARG);
    size_t xs[4] = {2, 3, 7, 8};
    clcnn_tensor *bad = tu_tensor_new(CLCNN_F32, 4, xs);
    assert_int_equal(clcnn_train_plan_forward(p, (const clcnn_tensor *const *)&bad, 1),
                     CLCNN_ERR_SHAPE);
    clcnn_tensor_free(bad);
    assert_null(clcnn_train_plan_input_grad(p, 0)); /* input gradients off */
    clcnn_train_plan_free(p);
    clcnn_train_plan_free(NULL);
    clcnn_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag),
        cmocka_unit_test(test_fused_tail),
        cmocka_unit_test(test_bn_add),
        cmocka_unit_test(test_fd_catches_wrong_gradient),
        cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_sgd_on_arenas),
        cmocka_unit_test(test_zoo_matches_net),
        cmocka_unit_test(test_imported_models),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
