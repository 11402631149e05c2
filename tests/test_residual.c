/* Residual blocks of the net (clcnn_net_add_residual_begin/end): gradients of small
 * residual nets with identity and projection shortcuts against central finite
 * differences of a double-precision host reference, build-time shape and nesting errors,
 * layer info, a checkpoint round trip, evaluation mode, and bit-identical repeats.
 *
 * The reference reuses the sequential layers of tests/reference_nn.c (one layer at a
 * time) and adds the block sum itself: y = branch(x0) + x0, or + bn(conv1x1(x0)).
 * Gradient tolerance as in test_nn.c: |dev - fd| <= 5e-5 * gmax + 5e-4 * |fd| (float32
 * forward/backward through ~10 layers with reductions of at most a few hundred terms errs
 * by a few 1e-7 of the gradient scale; the FD with step 1e-6 in double errs by ~1e-10;
 * a missing shortcut gradient or a wrong sum errs by O(gmax)). */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference_nn.h"

/* ---- a residual net on both sides ------------------------------------------------------ */

typedef enum { OP_LAYER, OP_BEGIN, OP_END } op_kind;

typedef struct ref_op {
    op_kind kind;
    rn_layer l;      /* OP_LAYER */
    int first_param; /* index of its first net parameter */
    int bias;        /* conv, linear: a bias parameter follows the weight */
    /* OP_END */
    int proj, bn, stride;
    double eps;
} ref_op;

#define MAX_OPS 24

typedef struct rnet {
    int n, c, h, w;
    clcnn_net *net;
    ref_op ops[MAX_OPS];
    int nops;
    /* parameters as doubles, by net index */
    int np;
    double **pv;
    size_t *pn;
    int eval; /* reference batchnorms use running statistics */
} rnet;

static void rb_begin(rnet *r, int n, int c, int h, int w) {
    memset(r, 0, sizeof *r);
    r->n = n, r->c = c, r->h = h, r->w = w;
    TU_OK(clcnn_net_create(tu_device(), c, h, w, &r->net));
}

static ref_op *rb_push(rnet *r, op_kind kind) {
    assert_true(r->nops < MAX_OPS);
    ref_op *o = &r->ops[r->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->first_param = clcnn_net_num_params(r->net);
    return o;
}

static clcnn_conv2d_desc cdesc(int stride, int pad, int groups) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.groups = groups;
    return d;
}

static void rb_conv(rnet *r, int k, int rs, int stride, int pad, int groups, int bias) {
    ref_op *o = rb_push(r, OP_LAYER);
    clcnn_conv2d_desc d = cdesc(stride, pad, groups);
    TU_OK(clcnn_net_add_conv2d(r->net, k, rs, rs, &d, bias));
    o->l = (rn_layer){.kind = RN_CONV, .conv = d, .k = k, .r = rs, .s = rs};
    o->bias = bias;
}

static void rb_bn(rnet *r) {
    ref_op *o = rb_push(r, OP_LAYER);
    TU_OK(clcnn_net_add_batchnorm(r->net, 0.1f, 1e-5f));
    o->l = (rn_layer){.kind = RN_BN, .eps = 1e-5};
}

static void rb_relu(rnet *r) {
    ref_op *o = rb_push(r, OP_LAYER);
    TU_OK(clcnn_net_add_activation(r->net, CLCNN_ACT_RELU, 0.0f));
    o->l = (rn_layer){.kind = RN_ACT, .act = CLCNN_ACT_RELU};
}

static void rb_pool(rnet *r, clcnn_pool2d_desc d) {
    ref_op *o = rb_push(r, OP_LAYER);
    TU_OK(clcnn_net_add_pool2d(r->net, &d));
    o->l = (rn_layer){.kind = RN_POOL, .pool = d};
}

static void rb_flatten_linear(rnet *r, int out) {
    ref_op *o = rb_push(r, OP_LAYER);
    TU_OK(clcnn_net_add_flatten(r->net));
    o->l = (rn_layer){.kind = RN_FLATTEN};
    o = rb_push(r, OP_LAYER);
    TU_OK(clcnn_net_add_linear(r->net, out, 1));
    o->l = (rn_layer){.kind = RN_LINEAR, .out = out};
    o->bias = 1;
}

static void rb_res_begin(rnet *r) {
    rb_push(r, OP_BEGIN);
    TU_OK(clcnn_net_add_residual_begin(r->net));
}

static void rb_res_end(rnet *r, int proj, int stride, int bn) {
    ref_op *o = rb_push(r, OP_END);
    clcnn_residual_desc d = {proj ? CLCNN_SHORTCUT_PROJECTION : CLCNN_SHORTCUT_IDENTITY, stride, bn,
                             0.0f, 0.0f};
    TU_OK(clcnn_net_add_residual_end(r->net, proj ? &d : NULL));
    o->proj = proj, o->stride = stride, o->bn = bn, o->eps = 1e-5;
}

/* Download every parameter into r->pv and wire the reference layers to them. */
static void rb_wire(rnet *r) {
    r->np = clcnn_net_num_params(r->net);
    r->pv = calloc((size_t)r->np, sizeof *r->pv);
    r->pn = calloc((size_t)r->np, sizeof *r->pn);
    for (int i = 0; i < r->np; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(r->net, i, &p));
        r->pn[i] = clcnn_tensor_numel(p.value);
        float *f = tu_download(p.value);
        r->pv[i] = malloc(r->pn[i] * sizeof(double));
        for (size_t j = 0; j < r->pn[i]; j++)
            r->pv[i][j] = f[j];
        free(f);
    }
    for (int i = 0; i < r->nops; i++) {
        ref_op *o = &r->ops[i];
        int p = o->first_param;
        if (o->kind != OP_LAYER) continue;
        switch (o->l.kind) {
        case RN_CONV:
        case RN_LINEAR:
            o->l.w = r->pv[p];
            o->l.b = o->bias ? r->pv[p + 1] : NULL;
            break;
        case RN_BN:
            o->l.w = r->pv[p], o->l.b = r->pv[p + 1];
            o->l.rmean = r->pv[p + 2], o->l.rvar = r->pv[p + 3];
            break;
        default:
            break;
        }
    }
}

static void rb_free(rnet *r) {
    for (int i = 0; i < r->np; i++)
        free(r->pv[i]);
    free(r->pv);
    free(r->pn);
    clcnn_net_free(r->net);
    memset(r, 0, sizeof *r);
}

/* One reference layer on cur (n, *c, *h, *w): replaces cur. */
static double *ref_step(const rn_layer *l, int n, int *c, int *h, int *w, double *cur) {
    int oc, oh, ow;
    double *y = rn_forward(l, 1, n, *c, *h, *w, cur, &oc, &oh, &ow);
    free(cur);
    *c = oc, *h = oh, *w = ow;
    return y;
}

/* The reference logits (n, k) of the net for x; *k receives k. */
static double *ref_forward(const rnet *r, const double *x, int *k) {
    int n = r->n, c = r->c, h = r->h, w = r->w;
    size_t cnt = (size_t)n * c * h * w;
    double *cur = malloc(cnt * sizeof *cur);
    memcpy(cur, x, cnt * sizeof *cur);
    /* open blocks, innermost last: their inputs and shapes */
    double *stack[16];
    int shapes[16][3], depth = 0;
    for (int i = 0; i < r->nops; i++) {
        const ref_op *o = &r->ops[i];
        if (o->kind == OP_LAYER) {
            rn_layer l = o->l;
            l.eval = r->eval;
            cur = ref_step(&l, n, &c, &h, &w, cur);
        } else if (o->kind == OP_BEGIN) {
            assert_true(depth < 16);
            cnt = (size_t)n * c * h * w;
            stack[depth] = malloc(cnt * sizeof *cur);
            memcpy(stack[depth], cur, cnt * sizeof *cur);
            shapes[depth][0] = c, shapes[depth][1] = h, shapes[depth][2] = w;
            depth++;
        } else {
            assert_true(depth > 0);
            depth--;
            double *sc = stack[depth];
            int c0 = shapes[depth][0], h0 = shapes[depth][1], w0 = shapes[depth][2];
            if (o->proj) {
                const double *const *pv = (const double *const *)r->pv;
                int p = o->first_param;
                rn_layer conv = {
                    .kind = RN_CONV, .conv = cdesc(o->stride, 0, 1), .k = c, .r = 1, .s = 1};
                conv.w = pv[p];
                conv.b = o->bn ? NULL : pv[p + 1];
                sc = ref_step(&conv, n, &c0, &h0, &w0, sc);
                if (o->bn) {
                    rn_layer bn = {.kind = RN_BN, .eps = o->eps, .eval = r->eval};
                    bn.w = pv[p + 1], bn.b = pv[p + 2], bn.rmean = pv[p + 3], bn.rvar = pv[p + 4];
                    sc = ref_step(&bn, n, &c0, &h0, &w0, sc);
                }
            }
            assert_true(c0 == c && h0 == h && w0 == w);
            cnt = (size_t)n * c * h * w;
            for (size_t j = 0; j < cnt; j++)
                cur[j] += sc[j];
            free(sc);
        }
    }
    *k = c * h * w;
    return cur;
}

static double ref_loss(const rnet *r, const double *x, const int *labels) {
    int k;
    double *logits = ref_forward(r, x, &k);
    double l = rn_softmax_ce(logits, r->n, k, labels);
    free(logits);
    return l;
}

/* Biases, gammas and betas random too, so errors in their gradients are not hidden. */
static void randomize_non_weights(clcnn_net *net, tu_rng *rng) {
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        if (!p.grad) continue;
        int gamma = strstr(p.name, "weight") && clcnn_tensor_ndim(p.value) == 1;
        if (strstr(p.name, "weight") && !gamma) continue;
        size_t m = clcnn_tensor_numel(p.value);
        float *v = malloc(m * sizeof *v);
        tu_fill_uniform(rng, v, m, gamma ? 0.5f : -0.2f, gamma ? 1.5f : 0.2f);
        TU_OK(clcnn_tensor_upload(p.value, v, m * sizeof *v));
        free(v);
    }
}

typedef struct batch {
    float *xf;
    double *xd;
    int *lab;
    clcnn_tensor *x, *labels;
} batch;

static void make_batch(const rnet *r, int classes, tu_rng *rng, batch *b) {
    size_t xn = (size_t)r->n * r->c * r->h * r->w;
    b->xf = malloc(xn * sizeof *b->xf);
    b->xd = malloc(xn * sizeof *b->xd);
    tu_fill_uniform(rng, b->xf, xn, -1.0f, 1.0f);
    for (size_t i = 0; i < xn; i++)
        b->xd[i] = b->xf[i];
    b->lab = malloc((size_t)r->n * sizeof *b->lab);
    for (int i = 0; i < r->n; i++)
        b->lab[i] = tu_rng_int(rng, 0, classes - 1);
    b->x = tu_tensor_from(4, (size_t[]){(size_t)r->n, (size_t)r->c, (size_t)r->h, (size_t)r->w},
                          b->xf);
    b->labels = tu_tensor_new(CLCNN_I32, 1, (size_t[]){(size_t)r->n});
    TU_OK(clcnn_tensor_upload(b->labels, b->lab, (size_t)r->n * sizeof(int)));
}

static void free_batch(batch *b) {
    free(b->xf);
    free(b->xd);
    free(b->lab);
    clcnn_tensor_free(b->x);
    clcnn_tensor_free(b->labels);
}

/* One device loss_backward vs the reference loss, then every trainable gradient vs FD. */
static void gradcheck(const char *what, rnet *r, int classes, uint64_t seed) {
    tu_rng rng = tu_rng_seed(seed);
    TU_OK(clcnn_net_init(r->net, CLCNN_INIT_HE, seed));
    randomize_non_weights(r->net, &rng);
    batch b;
    make_batch(r, classes, &rng, &b);
    rb_wire(r); /* before the step: the running statistics it updates are not used */
    float loss = 0;
    TU_OK(clcnn_net_loss_backward(r->net, b.x, b.labels, &loss, NULL));
    double ref = ref_loss(r, b.xd, b.lab);
    if (fabs(loss - ref) > 1e-5 + 1e-5 * fabs(ref))
        fail_msg("%s: device loss %.9g, reference %.9g", what, (double)loss, ref);

    const double step = 1e-6;
    double **fd = calloc((size_t)r->np, sizeof *fd), gmax = 0;
    for (int i = 0; i < r->np; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(r->net, i, &p));
        if (!p.grad) continue;
        fd[i] = malloc(r->pn[i] * sizeof(double));
        for (size_t j = 0; j < r->pn[i]; j++) {
            double v = r->pv[i][j];
            r->pv[i][j] = v + step;
            double lp = ref_loss(r, b.xd, b.lab);
            r->pv[i][j] = v - step;
            double lm = ref_loss(r, b.xd, b.lab);
            r->pv[i][j] = v;
            fd[i][j] = (lp - lm) / (2 * step);
            gmax = fmax(gmax, fabs(fd[i][j]));
        }
    }
    assert_true(gmax > 1e-3);
    int ok = 1;
    for (int i = 0; i < r->np; i++) {
        if (!fd[i]) continue;
        clcnn_param p;
        TU_OK(clcnn_net_param(r->net, i, &p));
        float *g = tu_download(p.grad);
        char label[160];
        snprintf(label, sizeof label, "%s: d loss / d %s", what, p.name);
        ok &= tu_close(label, g, fd[i], r->pn[i], 5e-5 * gmax, 5e-4);
        free(g);
        free(fd[i]);
    }
    free(fd);
    free_batch(&b);
    if (!ok) fail_msg("%s: gradients differ from finite differences", what);
}

/* conv-bn-relu, an identity block, a downsampling block with a batchnormed projection,
 * global average pool, linear. */
static void build_resnet_like(rnet *r, int n) {
    rb_begin(r, n, 3, 6, 6);
    rb_conv(r, 4, 3, 1, 1, 1, 0);
    rb_bn(r);
    rb_relu(r);
    rb_res_begin(r); /* identity: 4x6x6 -> 4x6x6 */
    rb_conv(r, 4, 3, 1, 1, 1, 0);
    rb_bn(r);
    rb_relu(r);
    rb_conv(r, 4, 3, 1, 1, 1, 0);
    rb_bn(r);
    rb_res_end(r, 0, 1, 0);
    rb_relu(r);
    rb_res_begin(r); /* projection: 4x6x6 -> 6x3x3 */
    rb_conv(r, 6, 3, 2, 1, 1, 0);
    rb_bn(r);
    rb_relu(r);
    rb_conv(r, 6, 1, 1, 0, 1, 0);
    rb_bn(r);
    rb_res_end(r, 1, 2, 1);
    rb_relu(r);
    rb_pool(r, (clcnn_pool2d_desc){CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1});
    rb_flatten_linear(r, 3);
}

static void test_gradcheck_identity_and_projection(void **state) {
    (void)state;
    rnet r;
    build_resnet_like(&r, 2);
    gradcheck("resnet-like (identity + projection with batchnorm)", &r, 3, 11);
    rb_free(&r);
}

/* A block that starts at layer 0 (its input is the net input), a max pool inside the
 * branch, a projection with a bias and no batchnorm; then an inverted-residual-like
 * identity block with a depthwise conv (MobileNet-V2 style, no activation after the sum). */
static void test_gradcheck_block_at_input_and_depthwise(void **state) {
    (void)state;
    rnet r;
    rb_begin(&r, 3, 2, 6, 6);
    rb_res_begin(&r);
    rb_conv(&r, 5, 3, 1, 1, 1, 1);
    rb_relu(&r);
    rb_pool(&r, (clcnn_pool2d_desc){CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0});
    rb_res_end(&r, 1, 2, 0); /* 2x6x6 -> 5x3x3 */
    rb_res_begin(&r);
    rb_conv(&r, 10, 1, 1, 0, 1, 0); /* expand */
    rb_bn(&r);
    rb_relu(&r);
    rb_conv(&r, 10, 3, 1, 1, 10, 0); /* depthwise */
    rb_bn(&r);
    rb_relu(&r);
    rb_conv(&r, 5, 1, 1, 0, 1, 0); /* project */
    rb_bn(&r);
    rb_res_end(&r, 0, 1, 0);
    rb_flatten_linear(&r, 4);
    gradcheck("block at the input + inverted residual", &r, 4, 12);
    rb_free(&r);
}

/* Nested blocks: an outer block (projection with batchnorm) whose branch holds two inner
 * identity blocks, one starting at the outer block's first layer, one closing together
 * with it; the gradients meet innermost first. The same net through a plan gives the
 * net's inference outputs. */
static void test_gradcheck_nested(void **state) {
    (void)state;
    rnet r;
    rb_begin(&r, 2, 3, 6, 6);
    rb_conv(&r, 4, 3, 1, 1, 1, 1);
    rb_relu(&r);
    rb_res_begin(&r); /* outer */
    rb_res_begin(&r); /* inner 1, same first layer */
    rb_conv(&r, 4, 3, 1, 1, 1, 0);
    rb_bn(&r);
    rb_relu(&r);
    rb_res_end(&r, 0, 1, 0);
    rb_conv(&r, 6, 3, 2, 1, 1, 0);
    rb_res_begin(&r); /* inner 2, closes right before the outer */
    rb_bn(&r);
    rb_relu(&r);
    rb_conv(&r, 6, 1, 1, 0, 1, 1);
    rb_res_end(&r, 0, 1, 0);
    rb_res_end(&r, 1, 2, 1); /* outer: 4x6x6 -> 6x3x3 */
    rb_relu(&r);
    rb_flatten_linear(&r, 3);
    gradcheck("nested residual blocks", &r, 3, 13);

    /* through a plan (inference): the net's own eval output */
    clcnn_net_set_training(r.net, 0);
    size_t xs[4] = {2, 3, 6, 6};
    float xh[2 * 3 * 6 * 6];
    tu_rng rng = tu_rng_seed(5);
    tu_fill_uniform(&rng, xh, 2 * 3 * 6 * 6, -1.0f, 1.0f);
    clcnn_tensor *x = tu_tensor_from(4, xs, xh);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(r.net, x, &y));
    float *want = tu_download(y);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_net_graph(r.net, &g));
    int adds = 0;
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        TU_OK(clcnn_graph_node_info(g, i, &info));
        adds += !strcmp(info.op_type, "Add");
    }
    assert_int_equal(adds, 3);
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(tu_device(), g, 2, NULL, &p));
    const clcnn_tensor *in = x;
    TU_OK(clcnn_plan_run(p, &in, 1));
    float *got = tu_download(clcnn_plan_output(p, 0));
    for (int i = 0; i < 2 * 3; i++)
        assert_true(fabsf(got[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i]));
    free(got);
    free(want);
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    clcnn_tensor_free(x);
    rb_free(&r);
}

/* Backward stops at the first layer with parameters; blocks around it must cope: the
 * first parameter layer inside a branch (the block input needs no gradient), a projection
 * whose residual layer is the first with parameters, and an identity block on flat
 * features (after a flatten, around a linear layer). */
static void test_gradcheck_edge_cases(void **state) {
    (void)state;
    rnet r;
    rb_begin(&r, 2, 3, 4, 4);
    rb_res_begin(&r);
    rb_relu(&r);
    rb_conv(&r, 3, 3, 1, 1, 1, 1);
    rb_res_end(&r, 0, 1, 0);
    rb_flatten_linear(&r, 3);
    gradcheck("first parameter layer inside the branch", &r, 3, 31);
    rb_free(&r);

    rb_begin(&r, 3, 3, 4, 4);
    rb_res_begin(&r);
    rb_relu(&r);
    rb_pool(&r, (clcnn_pool2d_desc){CLCNN_POOL_MAX, 2, 2, 2, 2, 0, 0, 0});
    rb_res_end(&r, 1, 2, 1);
    rb_relu(&r);
    rb_flatten_linear(&r, 3);
    gradcheck("the projection is the first parameter layer", &r, 3, 32);
    rb_free(&r);

    rb_begin(&r, 2, 2, 3, 3);
    rb_conv(&r, 4, 3, 1, 1, 1, 1);
    rb_relu(&r);
    rb_push(&r, OP_LAYER)->l = (rn_layer){.kind = RN_FLATTEN};
    TU_OK(clcnn_net_add_flatten(r.net));
    rb_res_begin(&r);
    ref_op *o = rb_push(&r, OP_LAYER);
    TU_OK(clcnn_net_add_linear(r.net, 36, 1));
    o->l = (rn_layer){.kind = RN_LINEAR, .out = 36};
    o->bias = 1;
    rb_relu(&r);
    rb_res_end(&r, 0, 1, 0);
    o = rb_push(&r, OP_LAYER);
    TU_OK(clcnn_net_add_linear(r.net, 3, 1));
    o->l = (rn_layer){.kind = RN_LINEAR, .out = 3};
    o->bias = 1;
    gradcheck("identity block on flat features", &r, 3, 33);
    rb_free(&r);
}

/* ---- layer info, errors -------------------------------------------------------------- */

static void test_layer_info(void **state) {
    (void)state;
    rnet r;
    build_resnet_like(&r, 2);
    int n = clcnn_net_num_layers(r.net), blocks = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        clcnn_layer_info info;
        TU_OK(clcnn_net_layer_info(r.net, i, &info));
        total += info.params;
        if (strcmp(info.kind, "residual")) {
            assert_int_equal(info.block_start, -1);
            continue;
        }
        blocks++;
        assert_true(info.block_start >= 0 && info.block_start < i);
        if (blocks == 1) { /* identity, layers 3-7 */
            assert_int_equal(info.block_start, 3);
            assert_int_equal(info.params, 0);
            assert_non_null(strstr(info.desc, "identity"));
            assert_int_equal(info.out_c, 4);
        } else { /* projection 4 -> 6, stride 2, with batchnorm: 24 + 6 + 6 */
            assert_int_equal(info.params, 24 + 12);
            assert_string_equal(info.desc, "layers 10-14 + bn(1x1 conv 6 s2)");
            assert_int_equal(info.out_c, 6);
            assert_int_equal(info.out_h, 3);
            assert_int_equal(info.in_c, 6);
        }
    }
    assert_int_equal(blocks, 2);
    assert_int_equal(total, clcnn_net_param_count(r.net));
    /* projection parameters are named parameters of the residual layer */
    int found = 0;
    for (int i = 0; i < clcnn_net_num_params(r.net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(r.net, i, &p));
        if (!strcmp(p.name, "layers.15.shortcut.weight")) found |= 1, assert_non_null(p.grad);
        if (!strcmp(p.name, "layers.15.shortcut_bn.running_var")) found |= 2, assert_null(p.grad);
    }
    assert_int_equal(found, 3);
    rb_free(&r);
}

static void test_build_errors(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 4, 8, 8, &net));
    /* end without begin */
    assert_int_equal(clcnn_net_add_residual_end(net, NULL), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_net_add_residual_begin(net));
    /* empty branch */
    assert_int_equal(clcnn_net_add_residual_end(net, NULL), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "no layers"));
    /* blocks nest, 16 deep at most */
    {
        clcnn_net *deep = NULL;
        TU_OK(clcnn_net_create(tu_device(), 4, 8, 8, &deep));
        for (int i = 0; i < 16; i++)
            TU_OK(clcnn_net_add_residual_begin(deep));
        assert_int_equal(clcnn_net_add_residual_begin(deep), CLCNN_ERR_INVALID_ARG);
        assert_non_null(strstr(clcnn_last_error(), "nest"));
        clcnn_net_free(deep);
    }
    clcnn_conv2d_desc d = cdesc(1, 1, 1);
    TU_OK(clcnn_net_add_conv2d(net, 8, 3, 3, &d, 0));
    /* forward with the block open */
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 4, (size_t[]){1, 4, 8, 8});
    TU_OK(clcnn_tensor_fill(x, 0.5f));
    const clcnn_tensor *y = NULL;
    assert_int_equal(clcnn_net_forward(net, x, &y), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "not closed"));
    assert_null(y);
    /* identity: 8 channels out of the branch, 4 into the block */
    int layers = clcnn_net_num_layers(net), params = clcnn_net_num_params(net);
    assert_int_equal(clcnn_net_add_residual_end(net, NULL), CLCNN_ERR_SHAPE);
    const char *msg = clcnn_last_error();
    assert_non_null(strstr(msg, "8x8x8"));
    assert_non_null(strstr(msg, "4x8x8"));
    assert_int_equal(clcnn_net_num_layers(net), layers);
    assert_int_equal(clcnn_net_num_params(net), params);
    /* projection with the wrong stride: 8x4x4 against the branch's 8x8x8 */
    clcnn_residual_desc pd = {CLCNN_SHORTCUT_PROJECTION, 2, 1, 0, 0};
    assert_int_equal(clcnn_net_add_residual_end(net, &pd), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "8x4x4"));
    assert_non_null(strstr(clcnn_last_error(), "8x8x8"));
    assert_int_equal(clcnn_net_num_params(net), params);
    pd.stride = 0;
    assert_int_equal(clcnn_net_add_residual_end(net, &pd), CLCNN_ERR_INVALID_ARG);
    /* the block is still open; the right projection closes it */
    pd.stride = 1;
    TU_OK(clcnn_net_add_residual_end(net, &pd));
    assert_int_equal(clcnn_net_num_layers(net), layers + 1);
    assert_int_equal(clcnn_net_num_params(net), params + 5);
    TU_OK(clcnn_net_forward(net, x, &y));
    assert_int_equal(clcnn_tensor_shape(y)[1], 8);
    /* projection after a flatten: no image to convolve */
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_residual_begin(net));
    TU_OK(clcnn_net_add_linear(net, 16, 1));
    assert_int_equal(clcnn_net_add_residual_end(net, &pd), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_net_add_residual_end(net, NULL), CLCNN_ERR_SHAPE); /* 16 vs 512 */
    clcnn_tensor_free(x);
    clcnn_net_free(net);
}

/* ---- checkpoint, eval mode, determinism ---------------------------------------------- */

static void test_checkpoint_round_trip(void **state) {
    (void)state;
    rnet a, b;
    build_resnet_like(&a, 2);
    build_resnet_like(&b, 2);
    TU_OK(clcnn_net_init(a.net, CLCNN_INIT_HE, 1));
    TU_OK(clcnn_net_init(b.net, CLCNN_INIT_HE, 2));
    tu_rng rng = tu_rng_seed(5);
    randomize_non_weights(a.net, &rng);
    batch bt;
    make_batch(&a, 3, &rng, &bt);
    /* a training step moves the running statistics off their defaults */
    TU_OK(clcnn_net_loss_backward(a.net, bt.x, bt.labels, NULL, NULL));
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_SGD);
    clcnn_optimizer *oa = NULL, *ob = NULL;
    TU_OK(clcnn_optimizer_create(a.net, &cfg, &oa));
    TU_OK(clcnn_optimizer_create(b.net, &cfg, &ob));
    TU_OK(clcnn_optimizer_step(oa, 0.05f));
    char *dir = tu_temp_dir("residual");
    char path[4200];
    snprintf(path, sizeof path, "%s/res.safetensors", dir);
    TU_OK(clcnn_checkpoint_save(a.net, oa, path, NULL));
    TU_OK(clcnn_checkpoint_load(b.net, ob, path));
    assert_int_equal(clcnn_optimizer_steps(ob), 1);
    int np = clcnn_net_num_params(a.net), shortcut = 0;
    for (int i = 0; i < np; i++) {
        clcnn_param pa, pb;
        TU_OK(clcnn_net_param(a.net, i, &pa));
        TU_OK(clcnn_net_param(b.net, i, &pb));
        assert_string_equal(pa.name, pb.name);
        shortcut += strstr(pa.name, "shortcut") != NULL;
        size_t m = clcnn_tensor_numel(pa.value);
        float *va = tu_download(pa.value), *vb = tu_download(pb.value);
        assert_memory_equal(va, vb, m * sizeof *va);
        free(va);
        free(vb);
    }
    assert_int_equal(shortcut, 5);
    /* same outputs in evaluation mode */
    clcnn_net_set_training(a.net, 0);
    clcnn_net_set_training(b.net, 0);
    const clcnn_tensor *ya = NULL, *yb = NULL;
    TU_OK(clcnn_net_forward(a.net, bt.x, &ya));
    float *fa = tu_download(ya);
    TU_OK(clcnn_net_forward(b.net, bt.x, &yb));
    float *fb = tu_download(yb);
    assert_memory_equal(fa, fb, clcnn_tensor_numel(ya) * sizeof *fa);
    free(fa);
    free(fb);
    unlink(path);
    rmdir(dir);
    free(dir);
    free_batch(&bt);
    clcnn_optimizer_free(oa);
    clcnn_optimizer_free(ob);
    rb_free(&a);
    rb_free(&b);
}

/* Evaluation mode: the shortcut's batchnorm uses its running statistics too. Tolerance:
 * logits of order 1 through ~10 float layers: 1e-5 absolute + 1e-4 relative. */
static void test_eval_mode(void **state) {
    (void)state;
    rnet r;
    build_resnet_like(&r, 3);
    TU_OK(clcnn_net_init(r.net, CLCNN_INIT_HE, 21));
    tu_rng rng = tu_rng_seed(21);
    randomize_non_weights(r.net, &rng);
    batch b;
    make_batch(&r, 3, &rng, &b);
    for (int i = 0; i < 3; i++) /* running statistics away from 0 / 1 */
        TU_OK(clcnn_net_loss_backward(r.net, b.x, b.labels, NULL, NULL));
    clcnn_net_set_training(r.net, 0);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(r.net, b.x, &y));
    float *got = tu_download(y);
    rb_wire(&r);
    r.eval = 1;
    int k;
    double *ref = ref_forward(&r, b.xd, &k);
    assert_true(tu_close("residual net, evaluation mode", got, ref, (size_t)r.n * k, 1e-5, 1e-4));
    free(got);
    free(ref);
    free_batch(&b);
    rb_free(&r);
}

/* Two identical steps give bit-identical losses and gradients (no atomics, fixed order). */
static void test_bit_identical_repeat(void **state) {
    (void)state;
    rnet r;
    build_resnet_like(&r, 4);
    TU_OK(clcnn_net_init(r.net, CLCNN_INIT_HE, 3));
    tu_rng rng = tu_rng_seed(3);
    batch b;
    make_batch(&r, 3, &rng, &b);
    int np = clcnn_net_num_params(r.net);
    float *first[64] = {0}, loss[2];
    assert_true(np <= 64);
    for (int rep = 0; rep < 2; rep++) {
        TU_OK(clcnn_net_loss_backward(r.net, b.x, b.labels, &loss[rep], NULL));
        for (int i = 0; i < np; i++) {
            clcnn_param p;
            TU_OK(clcnn_net_param(r.net, i, &p));
            if (!p.grad) continue;
            float *g = tu_download(p.grad);
            if (rep == 0) {
                first[i] = g;
            } else {
                assert_memory_equal(first[i], g, clcnn_tensor_numel(p.grad) * sizeof *g);
                free(g);
                free(first[i]);
            }
        }
    }
    assert_memory_equal(&loss[0], &loss[1], sizeof loss[0]);
    free_batch(&b);
    rb_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_identity_and_projection),
        cmocka_unit_test(test_gradcheck_block_at_input_and_depthwise),
        cmocka_unit_test(test_gradcheck_edge_cases),
        cmocka_unit_test(test_gradcheck_nested),
        cmocka_unit_test(test_layer_info),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_eval_mode),
        cmocka_unit_test(test_bit_identical_repeat),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
