/* Training: optimizer updates against their closed forms, learning-rate schedules,
 * bit-identical repeated runs, and a small net overfitting one batch. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static clcnn_tensor *labels_tensor(const int *lab, int n) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_I32, 1, (size_t[]){(size_t)n}, &t));
    TU_OK(clcnn_tensor_upload(t, lab, (size_t)n * sizeof(int)));
    return t;
}

/* (1, 8, 8) -> conv 4 3x3 pad 1 -> [batchnorm] -> relu -> maxpool 2 -> [dropout] ->
 * flatten -> linear k */
static clcnn_net *small_net(int bn, float dropout, int k, uint64_t seed) {
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 1, 8, 8, &net));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    TU_OK(clcnn_net_add_conv2d(net, 4, 3, 3, &d, 1));
    if (bn) TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0));
    clcnn_pool2d_desc pd = {CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0};
    TU_OK(clcnn_net_add_pool2d(net, &pd));
    if (dropout > 0) TU_OK(clcnn_net_add_dropout(net, dropout));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, k, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, seed));
    return net;
}

typedef struct batch {
    int n;
    clcnn_tensor *x, *labels;
} batch;

static batch make_batch(int n, int k, uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    float *x = malloc((size_t)n * 64 * sizeof *x);
    tu_fill_uniform(&r, x, (size_t)n * 64, -1, 1);
    int *lab = malloc((size_t)n * sizeof *lab);
    for (int i = 0; i < n; i++)
        lab[i] = i % k; /* every class present */
    batch b = {n, tu_tensor_from(4, (size_t[]){(size_t)n, 1, 8, 8}, x), labels_tensor(lab, n)};
    free(x);
    free(lab);
    return b;
}

static void free_batch(batch *b) {
    clcnn_tensor_free(b->x);
    clcnn_tensor_free(b->labels);
}

/* ---- optimizer updates vs closed form --------------------------------------------- */

typedef struct host_params {
    int n;
    float **v, **g;
    size_t *numel;
} host_params;

static host_params grab(const clcnn_net *net) {
    host_params h;
    h.n = clcnn_net_num_params(net);
    h.v = calloc((size_t)h.n, sizeof *h.v);
    h.g = calloc((size_t)h.n, sizeof *h.g);
    h.numel = calloc((size_t)h.n, sizeof *h.numel);
    for (int i = 0; i < h.n; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        h.numel[i] = clcnn_tensor_numel(p.value);
        h.v[i] = tu_download(p.value);
        if (p.grad) h.g[i] = tu_download(p.grad);
    }
    return h;
}

static void release(host_params *h) {
    for (int i = 0; i < h->n; i++) {
        free(h->v[i]);
        free(h->g[i]);
    }
    free(h->v);
    free(h->g);
    free(h->numel);
}

/* Three steps of SGD (momentum, weight decay) and of Adam, each compared with the
 * PyTorch update computed in double from the gradients the device produced; buffers
 * (running statistics) must not move. Tolerance: one float update is exact to a few
 * ulps of the parameter (|p| <= ~2), so 1e-6 absolute + 1e-5 relative. */
static void check_updates(clcnn_optim_kind kind) {
    clcnn_net *net = small_net(1, 0, 3, 4);
    batch b = make_batch(6, 3, 5);
    clcnn_optim_config cfg = clcnn_optim_default(kind);
    cfg.weight_decay = 0.01f;
    if (kind == CLCNN_OPTIM_SGD) cfg.momentum = 0.8f;
    clcnn_optimizer *opt = NULL;
    TU_OK(clcnn_optimizer_create(net, &cfg, &opt));
    assert_int_equal(clcnn_optimizer_steps(opt), 0);
    int np = clcnn_net_num_params(net);
    double **s1 = calloc((size_t)np, sizeof *s1), **s2 = calloc((size_t)np, sizeof *s2);
    const float lrs[3] = {0.1f, 0.05f, 0.02f};
    for (int t = 1; t <= 3; t++) {
        TU_OK(clcnn_net_loss_backward(net, b.x, b.labels, NULL, NULL));
        host_params before = grab(net);
        TU_OK(clcnn_optimizer_step(opt, lrs[t - 1]));
        assert_int_equal(clcnn_optimizer_steps(opt), t);
        host_params after = grab(net);
        for (int i = 0; i < np; i++) {
            size_t n = before.numel[i];
            double *want = malloc(n * sizeof *want);
            if (!s1[i]) s1[i] = calloc(n, sizeof **s1), s2[i] = calloc(n, sizeof **s2);
            for (size_t j = 0; j < n; j++) {
                double p = before.v[i][j];
                if (!before.g[i]) {
                    want[j] = p; /* a buffer: untouched */
                    continue;
                }
                double g = before.g[i][j] + (double)cfg.weight_decay * p;
                double lr = lrs[t - 1];
                if (kind == CLCNN_OPTIM_SGD) {
                    s1[i][j] = t == 1 ? g : cfg.momentum * s1[i][j] + g;
                    want[j] = p - lr * s1[i][j];
                } else {
                    double b1 = cfg.beta1, b2 = cfg.beta2;
                    s1[i][j] = b1 * s1[i][j] + (1 - b1) * g;
                    s2[i][j] = b2 * s2[i][j] + (1 - b2) * g * g;
                    double mh = s1[i][j] / (1 - pow(b1, t)), vh = s2[i][j] / (1 - pow(b2, t));
                    want[j] = p - lr * mh / (sqrt(vh) + cfg.eps);
                }
            }
            char what[64];
            snprintf(what, sizeof what, "%s step %d param %d", kind ? "adam" : "sgd", t, i);
            assert_true(tu_close(what, after.v[i], want, n, 1e-6, 1e-5));
            free(want);
        }
        release(&before);
        release(&after);
    }
    for (int i = 0; i < np; i++) {
        free(s1[i]);
        free(s2[i]);
    }
    free(s1);
    free(s2);
    clcnn_optimizer_free(opt);
    free_batch(&b);
    clcnn_net_free(net);
}

static void test_sgd_update(void **state) {
    (void)state;
    check_updates(CLCNN_OPTIM_SGD);
}

static void test_adam_update(void **state) {
    (void)state;
    check_updates(CLCNN_OPTIM_ADAM);
}

static void test_optimizer_errors(void **state) {
    (void)state;
    clcnn_net *net = small_net(0, 0, 3, 1);
    clcnn_optimizer *opt = NULL;
    clcnn_optim_config c = clcnn_optim_default(CLCNN_OPTIM_SGD);
    assert_true(c.lr == 0.01f && c.momentum == 0.9f && c.weight_decay == 0.0f);
    clcnn_optim_config a = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    assert_true(a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f);
    c.momentum = 1.0f;
    assert_int_equal(clcnn_optimizer_create(net, &c, &opt), CLCNN_ERR_INVALID_ARG);
    assert_null(opt);
    c = clcnn_optim_default(CLCNN_OPTIM_SGD);
    c.lr = -1;
    assert_int_equal(clcnn_optimizer_create(net, &c, &opt), CLCNN_ERR_INVALID_ARG);
    a.eps = 0;
    assert_int_equal(clcnn_optimizer_create(net, &a, &opt), CLCNN_ERR_INVALID_ARG);
    c = clcnn_optim_default(CLCNN_OPTIM_SGD);
    c.kind = (clcnn_optim_kind)9;
    assert_int_equal(clcnn_optimizer_create(net, &c, &opt), CLCNN_ERR_INVALID_ARG);

    /* plain SGD (no momentum, so no velocity): p -= lr * g */
    c = clcnn_optim_default(CLCNN_OPTIM_SGD);
    c.momentum = 0;
    TU_OK(clcnn_optimizer_create(net, &c, &opt));
    batch b = make_batch(3, 3, 2);
    TU_OK(clcnn_net_loss_backward(net, b.x, b.labels, NULL, NULL));
    host_params before = grab(net);
    TU_OK(clcnn_optimizer_step(opt, 0.5f));
    host_params after = grab(net);
    for (int i = 0; i < before.n; i++) {
        double *want = malloc(before.numel[i] * sizeof *want);
        for (size_t j = 0; j < before.numel[i]; j++)
            want[j] = before.v[i][j] - 0.5 * before.g[i][j];
        assert_true(tu_close("plain sgd", after.v[i], want, before.numel[i], 1e-6, 1e-5));
        free(want);
    }
    release(&before);
    release(&after);
    assert_int_equal(clcnn_optimizer_step(opt, NAN), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_optimizer_step(opt, -0.1f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_optimizer_step(NULL, 0.1f), CLCNN_ERR_INVALID_ARG);
    /* the net grew after the optimizer was made */
    TU_OK(clcnn_net_add_linear(net, 2, 1));
    assert_int_equal(clcnn_optimizer_step(opt, 0.1f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_optimizer_steps(opt), 1);
    clcnn_optimizer_free(opt);
    clcnn_optimizer_free(NULL);
    free_batch(&b);
    clcnn_net_free(net);
}

/* ---- schedules ------------------------------------------------------------------------- */

static void test_schedules(void **state) {
    (void)state;
    clcnn_schedule c = {CLCNN_SCHEDULE_CONSTANT, 0.1f, 0.0f, 0.5f, 10, 100};
    for (int64_t s = -1; s < 300; s += 37)
        assert_true(clcnn_schedule_lr(&c, s) == 0.1f);

    clcnn_schedule st = {CLCNN_SCHEDULE_STEP, 0.1f, 0.0f, 0.5f, 10, 0};
    int64_t steps[] = {0, 1, 9, 10, 11, 19, 20, 35, 99, 100};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        double want = 0.1 * pow(0.5, (double)(steps[i] / 10));
        double got = clcnn_schedule_lr(&st, steps[i]);
        if (fabs(got - want) > 1e-7 * want)
            fail_msg("step %lld: %g vs %g", (long long)steps[i], got, want);
    }
    st.step_size = 0; /* degenerate: constant */
    assert_true(clcnn_schedule_lr(&st, 50) == 0.1f);

    clcnn_schedule cs = {CLCNN_SCHEDULE_COSINE, 0.1f, 0.001f, 0.0f, 0, 200};
    for (int64_t s = 0; s <= 260; s += 13) {
        double want =
            s >= 200 ? 0.001 : 0.001 + (0.1 - 0.001) * 0.5 * (1 + cos(M_PI * (double)s / 200));
        double got = clcnn_schedule_lr(&cs, s);
        if (fabs(got - (float)want) > 1e-7)
            fail_msg("cosine %lld: %g vs %g", (long long)s, got, want);
    }
    assert_true(fabs(clcnn_schedule_lr(&cs, 0) - 0.1f) < 1e-9);
    assert_true(fabs(clcnn_schedule_lr(&cs, 100) - 0.0505f) < 1e-7);
    assert_true(clcnn_schedule_lr(&cs, 200) == 0.001f);
    assert_true(clcnn_schedule_lr(&cs, -5) == clcnn_schedule_lr(&cs, 0));
    /* monotone non-increasing */
    for (int64_t s = 1; s <= 200; s++)
        assert_true(clcnn_schedule_lr(&cs, s) <= clcnn_schedule_lr(&cs, s - 1));
    assert_true(clcnn_schedule_lr(NULL, 3) == 0.0f);
}

/* ---- determinism and learning ---------------------------------------------------------- */

static float *all_params(const clcnn_net *net, size_t *count) {
    size_t total = 0;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        total += clcnn_tensor_numel(p.value);
    }
    float *all = malloc(total * sizeof *all), *at = all;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        size_t n = clcnn_tensor_numel(p.value);
        TU_OK(clcnn_tensor_download(p.value, at, n * sizeof *at));
        at += n;
    }
    *count = total;
    return all;
}

/* Train from scratch: net with batchnorm and dropout, `steps` steps on two alternating
 * batches with a step schedule. Returns every parameter afterwards. */
static float *run_training(clcnn_optim_kind kind, int steps, size_t *count, float *last_loss) {
    clcnn_net *net = small_net(1, 0.3f, 4, 77);
    batch b[2] = {make_batch(8, 4, 1), make_batch(5, 4, 2)};
    clcnn_optim_config cfg = clcnn_optim_default(kind);
    cfg.weight_decay = 1e-4f;
    clcnn_optimizer *opt = NULL;
    TU_OK(clcnn_optimizer_create(net, &cfg, &opt));
    clcnn_schedule sch = {CLCNN_SCHEDULE_STEP, cfg.lr, 0, 0.5f, 3, 0};
    for (int s = 0; s < steps; s++) {
        TU_OK(clcnn_net_loss_backward(net, b[s % 2].x, b[s % 2].labels, last_loss, NULL));
        TU_OK(clcnn_optimizer_step(opt, clcnn_schedule_lr(&sch, s)));
    }
    float *p = all_params(net, count);
    clcnn_optimizer_free(opt);
    free_batch(&b[0]);
    free_batch(&b[1]);
    clcnn_net_free(net);
    return p;
}

static void test_runs_are_bit_identical(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        size_t n1, n2;
        float l1, l2;
        float *p1 = run_training((clcnn_optim_kind)kind, 8, &n1, &l1);
        float *p2 = run_training((clcnn_optim_kind)kind, 8, &n2, &l2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1 * sizeof *p1);
        assert_memory_equal(&l1, &l2, sizeof l1);
        /* and training did move the weights */
        clcnn_net *fresh = small_net(1, 0.3f, 4, 77);
        size_t n0;
        float *p0 = all_params(fresh, &n0);
        assert_true(memcmp(p0, p1, n0 * sizeof *p0) != 0);
        free(p0);
        clcnn_net_free(fresh);
        free(p1);
        free(p2);
    }
}

/* A small net must drive the loss of one fixed batch to ~0 with Adam. */
static void test_overfits_one_batch(void **state) {
    (void)state;
    clcnn_net *net = small_net(1, 0, 5, 3);
    batch b = make_batch(16, 5, 9);
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    cfg.lr = 1e-2f;
    clcnn_optimizer *opt = NULL;
    TU_OK(clcnn_optimizer_create(net, &cfg, &opt));
    float loss = 0, first = 0;
    int correct = 0, step;
    for (step = 0; step < 300; step++) {
        TU_OK(clcnn_net_loss_backward(net, b.x, b.labels, &loss, &correct));
        if (step == 0) first = loss;
        assert_true(isfinite(loss));
        if (loss < 0.05f) break;
        TU_OK(clcnn_optimizer_step(opt, cfg.lr));
    }
    printf("overfit: loss %.4f -> %.4f after %d Adam steps, %d/16 correct\n", (double)first,
           (double)loss, step, correct);
    assert_true(first > 1.0f); /* ~ln 5 at the start */
    assert_true(loss < 0.05f);
    assert_int_equal(correct, 16);
    /* eval mode agrees: every sample classified right with the running statistics? The
     * running statistics lag the batch ones, so only ask for most. */
    clcnn_net_set_training(net, 0);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(net, b.x, &y));
    float *logits = tu_download(y);
    int ok = 0;
    for (int i = 0; i < 16; i++) {
        int best = 0;
        for (int j = 1; j < 5; j++)
            if (logits[i * 5 + j] > logits[i * 5 + best]) best = j;
        ok += best == i % 5;
    }
    assert_true(ok >= 12);
    free(logits);
    clcnn_optimizer_free(opt);
    free_batch(&b);
    clcnn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_update),
        cmocka_unit_test(test_adam_update),
        cmocka_unit_test(test_optimizer_errors),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_runs_are_bit_identical),
        cmocka_unit_test(test_overfits_one_batch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
