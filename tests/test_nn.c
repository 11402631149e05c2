/* The sequential net: builders and shape inference, layer info, parameter names,
 * initialisation, forward against the double-precision reference (tests/reference_nn.c),
 * and gradients of whole nets and of each layer kind against central finite
 * differences; the same gradients through the net's graph as a training plan
 * (clcnn_train_plan_*, lib/exec/train.c) against the same differences.
 *
 * Gradient checks: the device computes the loss gradient in float; the reference
 * differentiates the same net (same float parameters and inputs, promoted to double)
 * by central differences with step 1e-6 in double. The FD error is then ~1e-10 relative
 * (truncation h^2 ~ 1e-12, rounding 1e-16/h), far below float's; the comparison uses
 * |dev - fd| <= 5e-5 * gmax + 5e-4 * |fd|, where gmax is the largest |gradient| of the
 * net: float32 forward and backward through a few layers with reductions of at most a
 * few hundred terms err by a few 1e-7 relative to the gradient scale (all cases here
 * pass with 40x less), while a wrong index or a missing term errs by O(gmax). A step of 1e-6
 * crosses a ReLU or max-pool kink only if an input lies within 1e-6 of it, which seeded uniform
 * data does not. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference_nn.h"

static clcnn_tensor *labels_tensor(const int *lab, int n) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_I32, 1, (size_t[]){(size_t)n}, &t));
    TU_OK(clcnn_tensor_upload(t, lab, (size_t)n * sizeof(int)));
    return t;
}

static clcnn_tensor *input_tensor(int n, int c, int h, int w, const float *x) {
    return tu_tensor_from(4, (size_t[]){(size_t)n, (size_t)c, (size_t)h, (size_t)w}, x);
}

static double *to_double(const float *f, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

/* Give biases, gammas and betas random values too, so their gradients (and errors in
 * them) are not hidden behind zeros and ones. */
static void randomize_non_weights(clcnn_net *net, tu_rng *r) {
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        if (!p.grad || strstr(p.name, "weight")) continue;
        size_t m = clcnn_tensor_numel(p.value);
        float *v = malloc(m * sizeof *v);
        tu_fill_uniform(r, v, m, -0.2f, 0.2f);
        TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
        free(v);
    }
    /* batchnorm gamma ("weight" of a 1-D parameter): around 1 */
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        if (!p.grad || !strstr(p.name, "weight") || clcnn_tensor_ndim(p.value) != 1) continue;
        size_t m = clcnn_tensor_numel(p.value);
        float *v = malloc(m * sizeof *v);
        tu_fill_uniform(r, v, m, 0.5f, 1.5f);
        TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
        free(v);
    }
}

/* Compare every trainable gradient of net (already computed on the device), and the same
 * parameter's gradient in the training plan tp of the net's graph (clcnn_train_plan_*,
 * after the same loss's backward; NULL: none), with central differences of the reference
 * loss. */
static void compare_with_fd(const char *what, clcnn_net *net, const clcnn_train_plan *tp,
                            rn_layer *L, int nl, int n, int c, int h, int w, const double *x,
                            const int *labels) {
    rn_params P;
    rn_params_from_net(net, L, nl, &P);
    const double step = 1e-6;
    double **fd = calloc((size_t)P.n, sizeof *fd);
    double gmax = 0;
    for (int i = 0; i < P.n; i++) {
        if (!P.trainable[i]) continue;
        fd[i] = malloc(P.numel[i] * sizeof(double));
        for (size_t j = 0; j < P.numel[i]; j++) {
            double v = P.v[i][j];
            P.v[i][j] = v + step;
            double lp = rn_loss(L, nl, n, c, h, w, x, labels);
            P.v[i][j] = v - step;
            double lm = rn_loss(L, nl, n, c, h, w, x, labels);
            P.v[i][j] = v;
            fd[i][j] = (lp - lm) / (2 * step);
            if (fabs(fd[i][j]) > gmax) gmax = fabs(fd[i][j]);
        }
    }
    assert_true(gmax > 1e-3); /* a check of all-zero gradients would prove nothing */
    int ok = 1;
    for (int i = 0; i < P.n; i++) {
        if (!fd[i]) continue;
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        float *g = tu_download(p.grad);
        char label[160];
        snprintf(label, sizeof label, "%s: d loss / d %s", what, P.names[i]);
        ok &= tu_close(label, g, fd[i], P.numel[i], 5e-5 * gmax, 5e-4);
        free(g);
        if (tp) {
            g = tu_download(clcnn_train_plan_grad(tp, P.names[i]));
            snprintf(label, sizeof label, "%s: training plan's d loss / d %s", what, P.names[i]);
            ok &= tu_close(label, g, fd[i], P.numel[i], 5e-5 * gmax, 5e-4);
            free(g);
        }
        free(fd[i]);
    }
    free(fd);
    rn_params_free(&P);
    if (!ok) fail_msg("%s: gradients differ from finite differences", what);
}

/* Build-time description of one test net: device builders and the reference layers. */
typedef struct net_case {
    const char *what;
    int n, c, h, w;
    clcnn_net *net;
    rn_layer L[12];
    int nl;
} net_case;

static void nc_begin(net_case *nc, const char *what, int n, int c, int h, int w) {
    memset(nc, 0, sizeof *nc);
    nc->what = what;
    nc->n = n;
    nc->c = c;
    nc->h = h;
    nc->w = w;
    TU_OK(clcnn_net_create(tu_device(), c, h, w, &nc->net));
}

static void nc_conv(net_case *nc, int k, int r, int s, clcnn_conv2d_desc d, int bias) {
    TU_OK(clcnn_net_add_conv2d(nc->net, k, r, s, &d, bias));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_CONV, .conv = d, .k = k, .r = r, .s = s};
}
static void nc_act(net_case *nc, clcnn_activation act, float alpha) {
    TU_OK(clcnn_net_add_activation(nc->net, act, alpha));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_ACT, .act = act, .alpha = alpha};
}
static void nc_pool(net_case *nc, clcnn_pool2d_desc d) {
    TU_OK(clcnn_net_add_pool2d(nc->net, &d));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_POOL, .pool = d};
}
static void nc_bn(net_case *nc, float momentum, float eps) {
    TU_OK(clcnn_net_add_batchnorm(nc->net, momentum, eps));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_BN, .eps = eps};
}
static void nc_flatten(net_case *nc) {
    TU_OK(clcnn_net_add_flatten(nc->net));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_FLATTEN};
}
static void nc_linear(net_case *nc, int out, int bias) {
    TU_OK(clcnn_net_add_linear(nc->net, out, bias));
    nc->L[nc->nl++] = (rn_layer){.kind = RN_LINEAR, .out = out};
}

static clcnn_conv2d_desc conv_desc(int stride, int pad, int dil, int groups) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.dilation_h = d.dilation_w = dil;
    d.groups = groups;
    return d;
}

static clcnn_pool2d_desc pool_desc(clcnn_pool_mode mode, int k, int stride, int pad) {
    clcnn_pool2d_desc d = {mode, k, k, stride, stride, pad, pad, 0};
    return d;
}

/* The net's graph as a training plan, after forward, the softmax cross-entropy's gradient
 * of the logits and backward (the gradients the net's loss_backward computes). */
static clcnn_train_plan *plan_loss_backward(clcnn_net *net, const clcnn_tensor *x,
                                            const clcnn_tensor *labels, int n) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_net_graph(net, &g));
    clcnn_train_plan *tp = NULL;
    TU_OK(clcnn_train_plan_create(tu_device(), g, n, NULL, &tp));
    clcnn_graph_free(g);
    TU_OK(clcnn_train_plan_forward(tp, &x, 1));
    const clcnn_tensor *logits = clcnn_train_plan_output(tp, 0);
    clcnn_tensor *loss = tu_tensor_new(CLCNN_F32, 1, (size_t[]){1});
    clcnn_tensor *dlogits = tu_tensor_new(CLCNN_F32, 2, clcnn_tensor_shape(logits));
    TU_OK(clcnn_softmax_cross_entropy(tu_device(), logits, labels, loss, dlogits));
    TU_OK(clcnn_train_plan_backward(tp, (const clcnn_tensor *const *)&dlogits, 1));
    clcnn_tensor_free(loss);
    clcnn_tensor_free(dlogits);
    return tp;
}

/* Random input and labels, one loss_backward on the device (the net and its graph's
 * training plan), then the FD comparison. */
static void run_gradcheck(net_case *nc, uint64_t seed, clcnn_init init) {
    tu_rng r = tu_rng_seed(seed);
    TU_OK(clcnn_net_init(nc->net, init, seed));
    randomize_non_weights(nc->net, &r);
    size_t xn = (size_t)nc->n * nc->c * nc->h * nc->w;
    float *xf = malloc(xn * sizeof *xf);
    tu_fill_uniform(&r, xf, xn, -1.0f, 1.0f);
    clcnn_layer_info info;
    TU_OK(clcnn_net_layer_info(nc->net, clcnn_net_num_layers(nc->net) - 1, &info));
    int k = info.out_c;
    int *lab = malloc((size_t)nc->n * sizeof *lab);
    for (int i = 0; i < nc->n; i++)
        lab[i] = tu_rng_int(&r, 0, k - 1);
    clcnn_tensor *x = input_tensor(nc->n, nc->c, nc->h, nc->w, xf);
    clcnn_tensor *labels = labels_tensor(lab, nc->n);
    float loss = 0;
    int correct = -1;
    TU_OK(clcnn_net_loss_backward(nc->net, x, labels, &loss, &correct));
    assert_true(correct >= 0 && correct <= nc->n);

    double *xd = to_double(xf, xn);
    rn_params P;
    rn_params_from_net(nc->net, nc->L, nc->nl, &P);
    double ref = rn_loss(nc->L, nc->nl, nc->n, nc->c, nc->h, nc->w, xd, lab);
    /* correct predictions: argmax of the reference logits */
    int oc, oh, ow, want_correct = 0;
    double *logits = rn_forward(nc->L, nc->nl, nc->n, nc->c, nc->h, nc->w, xd, &oc, &oh, &ow);
    for (int i = 0; i < nc->n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[i * k + j] > logits[i * k + best]) best = j;
        want_correct += best == lab[i];
    }
    free(logits);
    assert_int_equal(correct, want_correct);
    rn_params_free(&P);
    /* loss ~1-3, float forward: relative error ~1e-6 */
    if (fabs(loss - ref) > 1e-5 + 1e-5 * fabs(ref))
        fail_msg("%s: device loss %.9g, reference %.9g", nc->what, (double)loss, ref);
    clcnn_train_plan *tp = plan_loss_backward(nc->net, x, labels, nc->n);
    compare_with_fd(nc->what, nc->net, tp, nc->L, nc->nl, nc->n, nc->c, nc->h, nc->w, xd, lab);
    clcnn_train_plan_free(tp);
    free(xd);
    free(xf);
    free(lab);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_net_free(nc->net);
    nc->net = NULL;
}

/* ---- builders, info, parameters ------------------------------------------------------ */

static void test_builders_and_info(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 3, 32, 32, &net));
    clcnn_conv2d_desc d = conv_desc(1, 2, 1, 1);
    TU_OK(clcnn_net_add_conv2d(net, 8, 5, 5, &d, 1));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0));
    clcnn_pool2d_desc pd = pool_desc(CLCNN_POOL_MAX, 2, 2, 0);
    TU_OK(clcnn_net_add_pool2d(net, &pd));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_conv2d(net, 4, 3, 3, NULL, 0)); /* stride 1, no padding */
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_LEAKY_RELU, 0.1f));
    TU_OK(clcnn_net_add_dropout(net, 0.5f));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 10, 1));
    assert_int_equal(clcnn_net_num_layers(net), 9);

    struct {
        const char *kind;
        int c, h, w;
        size_t params;
    } want[] = {{"conv2d", 8, 32, 32, 8 * 3 * 25 + 8},
                {"relu", 8, 32, 32, 0},
                {"maxpool", 8, 16, 16, 0},
                {"batchnorm", 8, 16, 16, 16},
                {"conv2d", 4, 14, 14, 4 * 8 * 9},
                {"leaky_relu", 4, 14, 14, 0},
                {"dropout", 4, 14, 14, 0},
                {"flatten", 784, 1, 1, 0},
                {"linear", 10, 1, 1, 7840 + 10}};
    size_t total = 0;
    for (int i = 0; i < 9; i++) {
        clcnn_layer_info info;
        TU_OK(clcnn_net_layer_info(net, i, &info));
        assert_string_equal(info.kind, want[i].kind);
        assert_int_equal(info.out_c, want[i].c);
        assert_int_equal(info.out_h, want[i].h);
        assert_int_equal(info.out_w, want[i].w);
        assert_int_equal(info.params, want[i].params);
        assert_true(strlen(info.desc) < sizeof info.desc);
        total += want[i].params;
    }
    clcnn_layer_info info;
    TU_OK(clcnn_net_layer_info(net, 0, &info));
    assert_string_equal(info.desc, "8 x 5x5, stride 1, pad 2");
    TU_OK(clcnn_net_layer_info(net, 8, &info));
    assert_string_equal(info.desc, "784 -> 10");
    assert_int_equal(clcnn_net_layer_info(net, 9, &info), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_layer_info(net, -1, &info), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_param_count(net), total);

    /* names, shapes, order, and which have gradients (PyTorch state_dict order) */
    struct {
        const char *name;
        int ndim;
        size_t shape[4];
        int grad;
    } pw[] = {{"layers.0.weight", 4, {8, 3, 5, 5}, 1},
              {"layers.0.bias", 1, {8}, 1},
              {"layers.3.weight", 1, {8}, 1},
              {"layers.3.bias", 1, {8}, 1},
              {"layers.3.running_mean", 1, {8}, 0},
              {"layers.3.running_var", 1, {8}, 0},
              {"layers.4.weight", 4, {4, 8, 3, 3}, 1},
              {"layers.8.weight", 2, {10, 784}, 1},
              {"layers.8.bias", 1, {10}, 1}};
    assert_int_equal(clcnn_net_num_params(net), 9);
    for (int i = 0; i < 9; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        assert_string_equal(p.name, pw[i].name);
        assert_int_equal(clcnn_tensor_ndim(p.value), pw[i].ndim);
        for (int j = 0; j < pw[i].ndim; j++)
            assert_int_equal(clcnn_tensor_dim(p.value, j), pw[i].shape[j]);
        assert_int_equal(p.grad != NULL, pw[i].grad);
        if (p.grad) assert_int_equal(clcnn_tensor_numel(p.grad), clcnn_tensor_numel(p.value));
    }
    clcnn_param p;
    assert_int_equal(clcnn_net_param(net, 9, &p), CLCNN_ERR_INVALID_ARG);
    clcnn_net_free(net);
    clcnn_net_free(NULL);
}

static void test_builder_errors_leave_net_unchanged(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 4, 6, 6, &net));
    assert_int_equal(clcnn_net_add_conv2d(net, 8, 7, 7, NULL, 1), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "layer 0"));
    clcnn_conv2d_desc d = conv_desc(1, 0, 1, 3); /* 3 groups do not divide 4 channels */
    assert_int_equal(clcnn_net_add_conv2d(net, 6, 3, 3, &d, 1), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_net_add_conv2d(net, 0, 3, 3, NULL, 1), CLCNN_ERR_INVALID_ARG);
    clcnn_pool2d_desc pd = pool_desc(CLCNN_POOL_MAX, 8, 1, 0);
    assert_int_equal(clcnn_net_add_pool2d(net, &pd), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_net_add_pool2d(net, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_dropout(net, 1.0f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_dropout(net, -0.1f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_batchnorm(net, 0.1f, 0.0f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_batchnorm(net, 1.5f, 1e-5f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_linear(net, 0, 1), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_add_activation(net, (clcnn_activation)42, 0), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_num_layers(net), 0);
    assert_int_equal(clcnn_net_num_params(net), 0);
    TU_OK(clcnn_net_add_flatten(net));
    assert_int_equal(clcnn_net_add_conv2d(net, 2, 1, 1, NULL, 1), CLCNN_ERR_SHAPE);
    pd = pool_desc(CLCNN_POOL_MAX, 1, 1, 0);
    assert_int_equal(clcnn_net_add_pool2d(net, &pd), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_net_num_layers(net), 1);
    assert_int_equal(clcnn_net_add_linear(NULL, 3, 1), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_net_create(tu_device(), 0, 1, 1, &(clcnn_net *){NULL}), CLCNN_ERR_SHAPE);
    clcnn_net_free(net);
}

static void test_pass_errors(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 2, 4, 4, &net));
    clcnn_tensor *x = input_tensor(3, 2, 4, 4, NULL);
    TU_OK(clcnn_tensor_fill(x, 0.5f));
    const clcnn_tensor *y = NULL;
    assert_int_equal(clcnn_net_forward(net, x, &y), CLCNN_ERR_INVALID_ARG); /* no layers */
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 3, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 1));
    clcnn_tensor *dy = tu_tensor_from(2, (size_t[]){3, 3}, NULL);
    TU_OK(clcnn_tensor_fill(dy, 1.0f));
    assert_int_equal(clcnn_net_backward(net, dy), CLCNN_ERR_INVALID_ARG); /* no forward */

    clcnn_tensor *bad = input_tensor(3, 2, 4, 5, NULL);
    assert_int_equal(clcnn_net_forward(net, bad, &y), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "3x2x4x5"));
    clcnn_tensor_free(bad);

    clcnn_net_set_training(net, 0);
    TU_OK(clcnn_net_forward(net, x, &y));
    assert_int_equal(clcnn_tensor_dim(y, 0), 3);
    assert_int_equal(clcnn_tensor_dim(y, 1), 3);
    assert_int_equal(clcnn_net_backward(net, dy), CLCNN_ERR_INVALID_ARG); /* eval forward */
    clcnn_tensor *labels = labels_tensor((int[]){0, 1, 2}, 3);
    assert_int_equal(clcnn_net_loss_backward(net, x, labels, NULL, NULL), CLCNN_ERR_INVALID_ARG);
    clcnn_net_set_training(net, 1);
    TU_OK(clcnn_net_forward(net, x, &y));
    clcnn_tensor *dy_bad = tu_tensor_from(2, (size_t[]){3, 4}, NULL);
    assert_int_equal(clcnn_net_backward(net, dy_bad), CLCNN_ERR_SHAPE);
    TU_OK(clcnn_net_backward(net, dy));

    /* labels: out of range (named), wrong count, wrong dtype */
    clcnn_tensor *lab_range = labels_tensor((int[]){0, 3, 1}, 3);
    assert_int_equal(clcnn_net_loss_backward(net, x, lab_range, NULL, NULL), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "label 1 is 3"));
    clcnn_tensor *lab_count = labels_tensor((int[]){0, 1}, 2);
    assert_int_equal(clcnn_net_loss_backward(net, x, lab_count, NULL, NULL), CLCNN_ERR_SHAPE);
    clcnn_tensor *lab_float = tu_tensor_from(1, (size_t[]){3}, (float[]){0, 1, 2});
    assert_int_equal(clcnn_net_loss_backward(net, x, lab_float, NULL, NULL), CLCNN_ERR_INVALID_ARG);
    float loss = -1;
    int correct = -1;
    TU_OK(clcnn_net_loss_backward(net, x, labels, &loss, &correct));
    assert_true(loss > 0 && isfinite(loss));
    /* a conv output that is not a vector cannot feed the classification loss */
    clcnn_net *img = NULL;
    TU_OK(clcnn_net_create(tu_device(), 2, 4, 4, &img));
    TU_OK(clcnn_net_add_conv2d(img, 3, 3, 3, NULL, 1));
    assert_int_equal(clcnn_net_loss_backward(img, x, labels, NULL, NULL), CLCNN_ERR_SHAPE);
    clcnn_net_free(img);
    clcnn_tensor_free(lab_range);
    clcnn_tensor_free(lab_count);
    clcnn_tensor_free(lab_float);
    clcnn_tensor_free(labels);
    clcnn_tensor_free(dy_bad);
    clcnn_tensor_free(dy);
    clcnn_tensor_free(x);
    clcnn_net_free(net);
}

/* ---- initialisation ---------------------------------------------------------------- */

static void moments(const float *v, size_t n, double *mean, double *var) {
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *var = ss / n;
}

static void test_init(void **state) {
    (void)state;
    clcnn_net *net = NULL, *twin = NULL;
    for (int pass = 0; pass < 2; pass++) {
        clcnn_net **np = pass ? &twin : &net;
        TU_OK(clcnn_net_create(tu_device(), 16, 10, 10, np));
        TU_OK(clcnn_net_add_conv2d(*np, 32, 3, 3, NULL, 1));
        TU_OK(clcnn_net_add_batchnorm(*np, 0.1f, 1e-5f));
        TU_OK(clcnn_net_add_flatten(*np));
        TU_OK(clcnn_net_add_linear(*np, 200, 1));
    }
    size_t fan_in[2] = {16 * 9, 32 * 8 * 8}, fan_out[2] = {32 * 9, 200};
    int widx[2] = {0, 6};
    for (int kind = 0; kind < 2; kind++) {
        TU_OK(clcnn_net_init(net, kind ? CLCNN_INIT_XAVIER : CLCNN_INIT_HE, 1234));
        for (int j = 0; j < 2; j++) {
            clcnn_param p;
            TU_OK(clcnn_net_param(net, widx[j], &p));
            size_t n = clcnn_tensor_numel(p.value);
            float *v = tu_download(p.value);
            double mean, var;
            moments(v, n, &mean, &var);
            double want = kind ? 6.0 / (double)(fan_in[j] + fan_out[j]) / 3.0 : 2.0 / fan_in[j];
            /* sample variance of n draws: relative sd ~ sqrt(2/n) (<= 0.03 here); 5 sd */
            double rel = 5 * sqrt(2.0 / n);
            if (fabs(var / want - 1) > rel || fabs(mean) > 5 * sqrt(want / n))
                fail_msg("%s init of %s: mean %g var %g, want 0 and %g", kind ? "xavier" : "he",
                         p.name, mean, var, want);
            if (kind) {
                double a = sqrt(6.0 / (double)(fan_in[j] + fan_out[j]));
                for (size_t i = 0; i < n; i++)
                    assert_true(fabs(v[i]) <= a);
            }
            free(v);
        }
    }
    /* everything else at its default; gradients zero */
    const float want_const[9] = {NAN, 0, 1, 0, 0, 1, NAN, 0};
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        float *v = tu_download(p.value);
        if (!isnan(want_const[i]))
            for (size_t j = 0; j < clcnn_tensor_numel(p.value); j++)
                assert_true(v[j] == want_const[i]);
        free(v);
        if (p.grad) {
            float *g = tu_download(p.grad);
            for (size_t j = 0; j < clcnn_tensor_numel(p.grad); j++)
                assert_true(g[j] == 0.0f);
            free(g);
        }
    }
    /* same seed, same weights (bit for bit); another seed, other weights */
    TU_OK(clcnn_net_init(twin, CLCNN_INIT_XAVIER, 1234));
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < clcnn_net_num_params(net); i++) {
            clcnn_param a, b;
            TU_OK(clcnn_net_param(net, i, &a));
            TU_OK(clcnn_net_param(twin, i, &b));
            size_t n = clcnn_tensor_numel(a.value);
            float *va = tu_download(a.value), *vb = tu_download(b.value);
            int same = memcmp(va, vb, n * sizeof *va) == 0;
            if (pass == 0) assert_true(same);
            if (pass == 1 && strstr(a.name, "weight") && clcnn_tensor_ndim(a.value) > 1)
                assert_false(same);
            free(va);
            free(vb);
        }
        TU_OK(clcnn_net_init(twin, CLCNN_INIT_XAVIER, 1235));
    }
    assert_int_equal(clcnn_net_init(net, (clcnn_init)7, 1), CLCNN_ERR_INVALID_ARG);
    clcnn_net_free(net);
    clcnn_net_free(twin);
}

/* ---- forward against the reference; train and eval mode; batch size changes -------- */

static void test_forward_train_eval_and_running_stats(void **state) {
    (void)state;
    net_case nc;
    nc_begin(&nc, "forward", 4, 3, 7, 7);
    nc_conv(&nc, 5, 3, 3, conv_desc(1, 1, 1, 1), 1);
    nc_bn(&nc, 0.25f, 1e-5f);
    nc_act(&nc, CLCNN_ACT_RELU, 0);
    nc_pool(&nc, pool_desc(CLCNN_POOL_MAX, 2, 2, 0));
    TU_OK(clcnn_net_add_dropout(nc.net, 0.4f));
    nc.L[nc.nl++] = (rn_layer){.kind = RN_DROPOUT}; /* compared in eval mode only */
    nc_flatten(&nc);
    nc_linear(&nc, 6, 1);
    tu_rng r = tu_rng_seed(5);
    TU_OK(clcnn_net_init(nc.net, CLCNN_INIT_HE, 5));
    randomize_non_weights(nc.net, &r);

    size_t xn = (size_t)4 * 3 * 7 * 7;
    float *xf = malloc(xn * sizeof *xf);
    tu_fill_uniform(&r, xf, xn, -1, 1);
    double *xd = to_double(xf, xn);
    clcnn_tensor *x = input_tensor(4, 3, 7, 7, xf);

    /* Training forward: the running statistics move towards the batch statistics. */
    rn_params P;
    rn_params_from_net(nc.net, nc.L, nc.nl, &P);
    int oc, oh, ow;
    double *conv_out = rn_forward(nc.L, 1, 4, 3, 7, 7, xd, &oc, &oh, &ow);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(nc.net, x, &y));
    double rm[5], rv[5];
    size_t hw = (size_t)oh * ow;
    for (int ch = 0; ch < 5; ch++) {
        double s = 0, ss = 0;
        for (int ni = 0; ni < 4; ni++)
            for (size_t i = 0; i < hw; i++)
                s += conv_out[((size_t)ni * 5 + ch) * hw + i];
        double m = s / (4 * hw);
        for (int ni = 0; ni < 4; ni++)
            for (size_t i = 0; i < hw; i++) {
                double d = conv_out[((size_t)ni * 5 + ch) * hw + i] - m;
                ss += d * d;
            }
        rm[ch] = 0.75 * 0.0 + 0.25 * m;
        rv[ch] = 0.75 * 1.0 + 0.25 * ss / (4 * hw - 1); /* unbiased, as PyTorch */
    }
    free(conv_out);
    clcnn_param prm, prv;
    TU_OK(clcnn_net_param(nc.net, 4, &prm));
    TU_OK(clcnn_net_param(nc.net, 5, &prv));
    assert_string_equal(prm.name, "layers.1.running_mean");
    float *grm = tu_download(prm.value), *grv = tu_download(prv.value);
    assert_true(tu_close("running_mean", grm, rm, 5, 1e-5, 1e-4));
    assert_true(tu_close("running_var", grv, rv, 5, 1e-5, 1e-4));
    free(grm);
    free(grv);
    rn_params_free(&P);

    /* Eval mode: batchnorm uses the running statistics, dropout is the identity, and
     * the output is the same for every call. Batch sizes 4, 1, 4 in turn. */
    clcnn_net_set_training(nc.net, 0);
    rn_params_from_net(nc.net, nc.L, nc.nl, &P);
    nc.L[1].eval = 1;
    int sizes[3] = {4, 1, 4};
    float *first = NULL;
    for (int t = 0; t < 3; t++) {
        int n = sizes[t];
        clcnn_tensor *xs = input_tensor(n, 3, 7, 7, xf);
        TU_OK(clcnn_net_forward(nc.net, xs, &y));
        assert_int_equal(clcnn_tensor_dim(y, 0), n);
        assert_int_equal(clcnn_tensor_numel(y), (size_t)n * 6);
        float *got = tu_download(y);
        double *ref = rn_forward(nc.L, nc.nl, n, 3, 7, 7, xd, &oc, &oh, &ow);
        assert_int_equal(oc, 6);
        /* conv (27 terms) + linear (45 terms) in float: 1e-5 relative */
        assert_true(tu_close("eval forward", got, ref, (size_t)n * 6, 1e-5, 1e-4));
        if (t == 0)
            first = got;
        else {
            if (t == 2) assert_memory_equal(first, got, (size_t)n * 6 * sizeof *got);
            free(got);
        }
        free(ref);
        clcnn_tensor_free(xs);
    }
    free(first);
    rn_params_free(&P);
    /* Training mode with dropout: a new mask every step, about 40% of units dropped. */
    clcnn_net_set_training(nc.net, 1);
    float *y1 = NULL, *y2 = NULL;
    TU_OK(clcnn_net_forward(nc.net, x, &y));
    y1 = tu_download(y);
    TU_OK(clcnn_net_forward(nc.net, x, &y));
    y2 = tu_download(y);
    assert_true(memcmp(y1, y2, 24 * sizeof(float)) != 0);
    free(y1);
    free(y2);
    free(xd);
    free(xf);
    clcnn_tensor_free(x);
    clcnn_net_free(nc.net);
}

/* A training loop with a fixed batch allocates no buffers after the first steps, and a
 * batch-size change in between works. */
static void test_no_allocation_in_steady_state(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 2, 8, 8, &net));
    TU_OK(clcnn_net_add_conv2d(net, 4, 3, 3, NULL, 1));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0));
    clcnn_pool2d_desc pd = pool_desc(CLCNN_POOL_MAX, 2, 2, 0);
    TU_OK(clcnn_net_add_pool2d(net, &pd));
    TU_OK(clcnn_net_add_dropout(net, 0.2f));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 3, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 3));
    clcnn_tensor *x5 = input_tensor(5, 2, 8, 8, NULL), *x2 = input_tensor(2, 2, 8, 8, NULL);
    TU_OK(clcnn_tensor_fill(x5, 0.3f));
    TU_OK(clcnn_tensor_fill(x2, -0.2f));
    clcnn_tensor *l5 = labels_tensor((int[]){0, 1, 2, 0, 1}, 5),
                 *l2 = labels_tensor((int[]){2, 2}, 2);
    for (int i = 0; i < 2; i++)
        TU_OK(clcnn_net_loss_backward(net, x5, l5, NULL, NULL));
    TU_OK(clcnn_net_loss_backward(net, x2, l2, NULL, NULL));
    TU_OK(clcnn_net_loss_backward(net, x5, l5, NULL, NULL));
    clcnn_pool_stats before, after;
    clcnn_device_pool_stats(tu_device(), &before);
    for (int i = 0; i < 3; i++)
        TU_OK(clcnn_net_loss_backward(net, x5, l5, NULL, NULL));
    clcnn_device_pool_stats(tu_device(), &after);
    assert_int_equal(after.buffers_created, before.buffers_created);
    clcnn_tensor_free(x5);
    clcnn_tensor_free(x2);
    clcnn_tensor_free(l5);
    clcnn_tensor_free(l2);
    clcnn_net_free(net);
}

/* ---- gradients ------------------------------------------------------------------------ */

/* The whole small net of the issue: conv + batchnorm + relu + max pool + flatten + linear. */
static void test_gradcheck_whole_net(void **state) {
    (void)state;
    net_case nc;
    nc_begin(&nc, "conv+bn+relu+maxpool+flatten+linear", 3, 2, 6, 6);
    nc_conv(&nc, 3, 3, 3, conv_desc(1, 1, 1, 1), 1);
    nc_bn(&nc, 0.1f, 1e-5f);
    nc_act(&nc, CLCNN_ACT_RELU, 0);
    nc_pool(&nc, pool_desc(CLCNN_POOL_MAX, 2, 2, 0));
    nc_flatten(&nc);
    nc_linear(&nc, 4, 1);
    run_gradcheck(&nc, 11, CLCNN_INIT_HE);
}

/* Each layer kind and option, through a net that ends in a linear classifier. */
static void test_gradcheck_each_kind(void **state) {
    (void)state;
    net_case nc;

    nc_begin(&nc, "conv stride 2 pad 1, no bias", 2, 3, 7, 7);
    nc_conv(&nc, 4, 3, 3, conv_desc(2, 1, 1, 1), 0);
    nc_flatten(&nc);
    nc_linear(&nc, 3, 1);
    run_gradcheck(&nc, 21, CLCNN_INIT_XAVIER);

    nc_begin(&nc, "conv dilation 2 groups 2 + 1x1 conv", 2, 4, 7, 6);
    nc_conv(&nc, 4, 3, 2, conv_desc(1, 1, 2, 2), 1);
    nc_conv(&nc, 3, 1, 1, conv_desc(1, 0, 1, 1), 1);
    nc_flatten(&nc);
    nc_linear(&nc, 3, 0);
    run_gradcheck(&nc, 22, CLCNN_INIT_HE);

    nc_begin(&nc, "leaky relu + avgpool 3x3 s2 pad 1 (padding counted)", 2, 2, 7, 7);
    nc_conv(&nc, 3, 3, 3, conv_desc(1, 1, 1, 1), 1);
    nc_act(&nc, CLCNN_ACT_LEAKY_RELU, 0.1f);
    nc_pool(&nc, pool_desc(CLCNN_POOL_AVG, 3, 2, 1));
    nc_flatten(&nc);
    nc_linear(&nc, 3, 1);
    run_gradcheck(&nc, 23, CLCNN_INIT_HE);

    nc_begin(&nc, "avgpool padding excluded + linear on a 4-D input", 3, 2, 5, 5);
    nc_conv(&nc, 3, 2, 2, conv_desc(1, 0, 1, 1), 1);
    nc_pool(&nc, pool_desc(CLCNN_POOL_AVG_EXCLUDE, 3, 2, 1));
    nc_linear(&nc, 4, 1); /* no flatten: linear reads (n, c, h, w) as (n, c*h*w) */
    run_gradcheck(&nc, 24, CLCNN_INIT_XAVIER);

    nc_begin(&nc, "maxpool 3x3 stride 1 pad 1", 2, 2, 5, 5);
    nc_conv(&nc, 3, 3, 3, conv_desc(1, 1, 1, 1), 1);
    nc_pool(&nc, pool_desc(CLCNN_POOL_MAX, 3, 1, 1));
    nc_flatten(&nc);
    nc_linear(&nc, 3, 1);
    run_gradcheck(&nc, 25, CLCNN_INIT_HE);

    nc_begin(&nc, "global average pool", 3, 2, 5, 4);
    nc_conv(&nc, 4, 3, 3, conv_desc(1, 1, 1, 1), 1);
    nc_act(&nc, CLCNN_ACT_RELU, 0);
    clcnn_pool2d_desc g = {CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    nc_pool(&nc, g);
    nc_flatten(&nc);
    nc_linear(&nc, 3, 1);
    run_gradcheck(&nc, 26, CLCNN_INIT_HE);

    nc_begin(&nc, "global max pool, batchnorm on 4-D", 3, 2, 4, 4);
    nc_conv(&nc, 3, 3, 3, conv_desc(1, 1, 1, 1), 0);
    nc_bn(&nc, 0.1f, 1e-3f);
    clcnn_pool2d_desc gm = {CLCNN_POOL_MAX, 0, 0, 0, 0, 0, 0, 1};
    nc_pool(&nc, gm);
    nc_flatten(&nc);
    nc_linear(&nc, 3, 1);
    run_gradcheck(&nc, 27, CLCNN_INIT_HE);

    /* vector input (c, 1, 1): linear + batchnorm over (n, features) + relu + linear */
    nc_begin(&nc, "linear + batchnorm 1-D + relu + linear", 6, 10, 1, 1);
    nc_linear(&nc, 7, 1);
    nc_bn(&nc, 0.1f, 1e-5f);
    nc_act(&nc, CLCNN_ACT_RELU, 0);
    nc_linear(&nc, 4, 1);
    run_gradcheck(&nc, 28, CLCNN_INIT_XAVIER);
}

/* Dropout through the net: forward, read the mask off the output, backward from a dy
 * computed on the host, then FD of the reference with that mask. Also exercises
 * clcnn_net_backward with a caller's dy and a 2-D input. */
static void test_gradcheck_dropout(void **state) {
    (void)state;
    const int n = 5, c = 9, k = 6;
    const float p = 0.3f;
    net_case nc;
    nc_begin(&nc, "linear + relu + linear + dropout", n, c, 1, 1);
    nc_linear(&nc, 8, 1);
    nc_act(&nc, CLCNN_ACT_RELU, 0);
    nc_linear(&nc, k, 1);
    TU_OK(clcnn_net_add_dropout(nc.net, p));
    double *mask = malloc((size_t)n * k * sizeof *mask);
    nc.L[nc.nl++] = (rn_layer){.kind = RN_DROPOUT, .mask = mask};
    tu_rng r = tu_rng_seed(31);
    TU_OK(clcnn_net_init(nc.net, CLCNN_INIT_HE, 31));
    randomize_non_weights(nc.net, &r);
    float xf[5 * 9];
    tu_fill_uniform(&r, xf, n * c, -1, 1);
    int lab[5];
    for (int i = 0; i < n; i++)
        lab[i] = tu_rng_int(&r, 0, k - 1);
    clcnn_tensor *x = tu_tensor_from(2, (size_t[]){(size_t)n, (size_t)c}, xf); /* 2-D input */
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(nc.net, x, &y));
    float *yf = tu_download(y);
    int dropped = 0;
    for (int i = 0; i < n * k; i++) {
        mask[i] = yf[i] == 0.0f ? 0.0 : 1.0 / (1.0 - p);
        dropped += yf[i] == 0.0f;
    }
    assert_true(dropped > 0 && dropped < n * k);
    /* dy = (softmax(y) - onehot) / n, in double, rounded to float */
    double *xd = to_double(xf, (size_t)n * c);
    rn_params P;
    rn_params_from_net(nc.net, nc.L, nc.nl, &P);
    int oc, oh, ow;
    double *yr = rn_forward(nc.L, nc.nl, n, c, 1, 1, xd, &oc, &oh, &ow);
    assert_true(tu_close("dropout forward", yf, yr, (size_t)n * k, 1e-5, 1e-4));
    float dyf[5 * 6];
    for (int i = 0; i < n; i++) {
        double mx = yr[i * k], se = 0;
        for (int j = 1; j < k; j++)
            mx = fmax(mx, yr[i * k + j]);
        for (int j = 0; j < k; j++)
            se += exp(yr[i * k + j] - mx);
        for (int j = 0; j < k; j++)
            dyf[i * k + j] = (float)((exp(yr[i * k + j] - mx) / se - (j == lab[i])) / n);
    }
    rn_params_free(&P);
    clcnn_tensor *dy = tu_tensor_from(2, (size_t[]){(size_t)n, (size_t)k}, dyf);
    TU_OK(clcnn_net_backward(nc.net, dy));
    /* a training plan draws other masks than the net: the net alone */
    compare_with_fd("dropout", nc.net, NULL, nc.L, nc.nl, n, c, 1, 1, xd, lab);
    free(yr);
    free(yf);
    free(xd);
    free(mask);
    clcnn_tensor_free(x);
    clcnn_tensor_free(dy);
    clcnn_net_free(nc.net);
}

/* Finite differences on the device itself: perturb a parameter in device memory and
 * evaluate the float loss. The net is smooth (no ReLU or max kinks) so a large step
 * can be used: h = 1e-2 gives truncation error ~h^2/6 |f'''| ~ 1e-5 and rounding error
 * ~ (loss 1.5 x float eps 6e-8 x a few) / 2h ~ 1e-5; tolerance 2e-3 + 2e-2 relative. */
static void test_device_finite_differences(void **state) {
    (void)state;
    const int n = 3, c = 2, h = 5, w = 5;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), c, h, w, &net));
    clcnn_conv2d_desc d = conv_desc(1, 1, 1, 1);
    TU_OK(clcnn_net_add_conv2d(net, 3, 3, 3, &d, 1));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    clcnn_pool2d_desc pd = pool_desc(CLCNN_POOL_AVG, 2, 2, 0);
    TU_OK(clcnn_net_add_pool2d(net, &pd));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 4, 1));
    tu_rng r = tu_rng_seed(41);
    TU_OK(clcnn_net_init(net, CLCNN_INIT_XAVIER, 41));
    randomize_non_weights(net, &r);
    float xf[3 * 2 * 5 * 5];
    tu_fill_uniform(&r, xf, sizeof xf / sizeof xf[0], -1, 1);
    clcnn_tensor *x = input_tensor(n, c, h, w, xf);
    clcnn_tensor *labels = labels_tensor((int[]){1, 3, 0}, n);
    TU_OK(clcnn_net_loss_backward(net, x, labels, NULL, NULL));
    int np = clcnn_net_num_params(net);
    float **grads = calloc((size_t)np, sizeof *grads);
    for (int i = 0; i < np; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        if (p.grad) grads[i] = tu_download(p.grad);
    }
    const float step = 1e-2f;
    int ok = 1;
    for (int i = 0; i < np; i++) {
        if (!grads[i]) continue;
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        size_t m = clcnn_tensor_numel(p.value);
        float *v = tu_download(p.value);
        double *fd = malloc(m * sizeof *fd);
        for (size_t j = 0; j < m; j++) {
            float orig = v[j], lp, lm;
            v[j] = orig + step;
            TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
            TU_OK(clcnn_net_loss_backward(net, x, labels, &lp, NULL));
            v[j] = orig - step;
            TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
            TU_OK(clcnn_net_loss_backward(net, x, labels, &lm, NULL));
            v[j] = orig;
            TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
            fd[j] = ((double)lp - (double)lm) / (2.0 * step);
        }
        char label[96];
        snprintf(label, sizeof label, "device FD %s", p.name);
        ok &= tu_close(label, grads[i], fd, m, 2e-3, 2e-2);
        free(fd);
        free(v);
        free(grads[i]);
    }
    free(grads);
    assert_true(ok);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders_and_info),
        cmocka_unit_test(test_builder_errors_leave_net_unchanged),
        cmocka_unit_test(test_pass_errors),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_forward_train_eval_and_running_stats),
        cmocka_unit_test(test_no_allocation_in_steady_state),
        cmocka_unit_test(test_gradcheck_whole_net),
        cmocka_unit_test(test_gradcheck_each_kind),
        cmocka_unit_test(test_gradcheck_dropout),
        cmocka_unit_test(test_device_finite_differences),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
