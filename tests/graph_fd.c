/* Graph-building helpers and the finite-difference check of training plans (graph_fd.h). */
#include "graph_fd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXI 4 /* graph inputs and outputs per test graph */

/* ---- building graphs ------------------------------------------------------------------- */

void gt_add_input(clcnn_graph *g, const char *name, int nd, int64_t d0, int64_t d1, int64_t d2,
                  int64_t d3) {
    int64_t dims[4] = {d0, d1, d2, d3};
    TU_OK(clcnn_graph_add_input(g, name, CLCNN_F32, nd, dims));
}

/* A float initializer of random values in [lo, hi]. */
void gt_add_param(clcnn_graph *g, tu_rng *r, const char *name, int nd, int64_t d0, int64_t d1,
                  int64_t d2, int64_t d3, float lo, float hi) {
    int64_t dims[4] = {d0, d1, d2, d3};
    free(tu_graph_random_init(g, r, name, nd, dims, lo, hi));
}

/* A node with inputs given as one space-separated string ("x w b") and one output. */
void gt_node(clcnn_graph *g, const char *op, const char *name, const char *ins, const char *out,
             int na, const clcnn_attr *a) {
    char buf[256], *names[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", ins);
    for (char *t = strtok(buf, " "); t && n < 16; t = strtok(NULL, " "))
        names[n++] = t;
    TU_OK(clcnn_graph_add_node(g, op, name, n, (const char *const *)names, 1, &out, na, a));
}

clcnn_attr gt_ai(const char *n, int64_t v) {
    return (clcnn_attr){n, CLCNN_ATTR_INT, v, 0.0f, NULL, NULL, 0, NULL};
}
clcnn_attr gt_af(const char *n, float v) {
    return (clcnn_attr){n, CLCNN_ATTR_FLOAT, 0, v, NULL, NULL, 0, NULL};
}
clcnn_attr gt_ais(const char *n, const int64_t *v, int c) {
    return (clcnn_attr){n, CLCNN_ATTR_INTS, 0, 0.0f, v, NULL, c, NULL};
}

/* ---- the finite-difference check --------------------------------------------------------- */

typedef struct gt_fd_run {
    clcnn_train_plan *p;
    int nin, nout;
    float *x[MAXI];
    clcnn_tensor *xt[MAXI];
    float *r[MAXI];
} gt_fd_run;

static double loss_of(gt_fd_run *f) {
    TU_OK(clcnn_train_plan_forward(f->p, (const clcnn_tensor *const *)f->xt, f->nin));
    double l = 0.0;
    for (int o = 0; o < f->nout; o++) {
        float *y = tu_download(clcnn_train_plan_output(f->p, o));
        size_t n = clcnn_tensor_numel(clcnn_train_plan_output(f->p, o));
        for (size_t i = 0; i < n; i++)
            l += (double)y[i] * f->r[o][i];
        free(y);
    }
    return l;
}

/* Compare the analytic gradient `got` of one tensor (numel n) with central differences;
 * set(e, v) writes element e of the perturbed tensor. Returns 1 when close. */
typedef void (*fd_setter)(gt_fd_run *f, int which, size_t e, float v);

static void set_param(gt_fd_run *f, int which, size_t e, float v) {
    clcnn_tensor *t = clcnn_train_plan_param(f->p, clcnn_train_plan_param_name(f->p, which));
    size_t n = clcnn_tensor_numel(t);
    float *h = tu_download(t);
    h[e] = v;
    TU_OK(clcnn_train_plan_write(f->p, clcnn_train_plan_param_name(f->p, which), h, n * sizeof *h));
    free(h);
}

static void set_input(gt_fd_run *f, int which, size_t e, float v) {
    f->x[which][e] = v;
    TU_OK(clcnn_tensor_upload(f->xt[which], f->x[which],
                              clcnn_tensor_numel(f->xt[which]) * sizeof(float)));
}

static int fd_compare(const gt_fd_case *c, gt_fd_run *f, const char *what, int which,
                      const float *base, const float *got, size_t n, fd_setter set) {
    int m = c->max_checks < (int)n ? c->max_checks : (int)n;
    float *g = malloc((size_t)m * sizeof *g);
    double *ref = malloc((size_t)m * sizeof *ref);
    tu_rng r = tu_rng_seed(77 + (uint64_t)which);
    for (int k = 0; k < m; k++) {
        size_t e = m == (int)n ? (size_t)k : (size_t)tu_rng_int(&r, 0, (int)n - 1);
        set(f, which, e, (float)(base[e] + c->h));
        double lp = loss_of(f);
        set(f, which, e, (float)(base[e] - c->h));
        double lm = loss_of(f);
        set(f, which, e, base[e]);
        ref[k] = (lp - lm) / (2.0 * c->h);
        g[k] = got[e] * c->grad_scale;
    }
    int ok = tu_close(what, g, ref, (size_t)m, c->atol, c->rtol);
    free(g);
    free(ref);
    return ok;
}

/* Gradients of every parameter and input of c->g against finite differences; returns 1
 * when all are close. */
int gt_fd_check(const gt_fd_case *c) {
    clcnn_train_options o = {.input_grads = 1, .conv_algo = c->conv_algo};
    gt_fd_run f = {0};
    TU_OK(clcnn_train_plan_create(tu_device(), c->g, c->batch, &o, &f.p));
    f.nin = clcnn_graph_num_inputs(c->g);
    f.nout = clcnn_graph_num_outputs(c->g);
    tu_rng r = tu_rng_seed(5);
    for (int i = 0; i < f.nin; i++) {
        int nd;
        int64_t d[CLCNN_GRAPH_MAX_DIMS];
        TU_OK(clcnn_graph_value_shape(c->g, clcnn_graph_input_name(c->g, i), &nd, d));
        size_t shape[4], n = 1;
        for (int k = 0; k < nd; k++) {
            shape[k] = (size_t)(d[k] == CLCNN_GRAPH_BATCH ? c->batch : d[k]);
            n *= shape[k];
        }
        f.x[i] = malloc(n * sizeof(float));
        for (size_t k = 0; k < n; k++) {
            float v = tu_rng_uniform(&r, c->in_lo, c->in_hi);
            f.x[i][k] = tu_rng_int(&r, 0, 1) ? v : -v;
        }
        f.xt[i] = tu_tensor_from(nd, shape, f.x[i]);
    }
    TU_OK(clcnn_train_plan_forward(f.p, (const clcnn_tensor *const *)f.xt, f.nin));
    clcnn_tensor *dy[MAXI];
    for (int o2 = 0; o2 < f.nout; o2++) {
        const clcnn_tensor *y = clcnn_train_plan_output(f.p, o2);
        size_t n = clcnn_tensor_numel(y);
        f.r[o2] = malloc(n * sizeof(float));
        tu_fill_uniform(&r, f.r[o2], n, -1.0f, 1.0f);
        dy[o2] = tu_tensor_from(clcnn_tensor_ndim(y), clcnn_tensor_shape(y), f.r[o2]);
    }
    TU_OK(clcnn_train_plan_zero_grad(f.p));
    TU_OK(clcnn_train_plan_backward(f.p, (const clcnn_tensor *const *)dy, f.nout));
    int ok = 1;
    for (int i = 0; i < clcnn_train_plan_num_params(f.p); i++) {
        const char *name = clcnn_train_plan_param_name(f.p, i);
        clcnn_tensor *gt = clcnn_train_plan_grad(f.p, name);
        if (!gt) continue; /* state: running statistics */
        float *got = tu_download(gt), *base = tu_download(clcnn_train_plan_param(f.p, name));
        ok &= fd_compare(c, &f, name, i, base, got, clcnn_tensor_numel(gt), set_param);
        free(got);
        free(base);
    }
    for (int i = 0; i < f.nin; i++) {
        float *got = tu_download(clcnn_train_plan_input_grad(f.p, i));
        size_t n = clcnn_tensor_numel(f.xt[i]);
        float *base = malloc(n * sizeof *base);
        memcpy(base, f.x[i], n * sizeof *base);
        ok &= fd_compare(c, &f, clcnn_graph_input_name(c->g, i), i, base, got, n, set_input);
        free(got);
        free(base);
    }
    for (int i = 0; i < f.nin; i++) {
        clcnn_tensor_free(f.xt[i]);
        free(f.x[i]);
    }
    for (int o2 = 0; o2 < f.nout; o2++) {
        clcnn_tensor_free(dy[o2]);
        free(f.r[o2]);
    }
    clcnn_train_plan_free(f.p);
    return ok;
}

gt_fd_case gt_fd_default(clcnn_graph *g, int batch) {
    gt_fd_case c = {g, batch, 0.05f, 1.0f, 1e-2, 3e-3, 2e-2, 24, 1.0f, CLCNN_CONV_AUTO};
    return c;
}

/* Check graph g at batch, then free it. */
void gt_expect_fd(clcnn_graph *g, int batch, double h) {
    gt_fd_case c = gt_fd_default(g, batch);
    c.h = h;
    assert_true(gt_fd_check(&c));
    clcnn_graph_free(g);
}

void gt_expect_fd_fused(clcnn_graph *g, clcnn_conv_algo algo) {
    for (int batch = 1; batch <= 3; batch += 2) {
        gt_fd_case c = gt_fd_default(g, batch);
        c.max_checks = 12;
        c.h = 3e-4;
        c.conv_algo = algo;
        assert_true(gt_fd_check(&c));
    }
    clcnn_graph_free(g);
}

void gt_expect_same_steps(clcnn_train_plan *const p[2], int extra, uint64_t seed, size_t h,
                          size_t w) {
    assert_true(extra >= 0 && extra < MAXI);
    clcnn_tensor *xt = NULL, *dyt = NULL;
    gt_random_batch(seed, h, w, &xt, &dyt);
    const clcnn_tensor *grads[MAXI] = {dyt};
    size_t ng = clcnn_tensor_numel(clcnn_train_plan_grads(p[0]));
    assert_int_equal(ng, clcnn_tensor_numel(clcnn_train_plan_grads(p[1])));
    for (int step = 0; step < 2; step++) {
        float *out[2], *gr[2];
        for (int k = 0; k < 2; k++) {
            TU_OK(clcnn_train_plan_forward(p[k], (const clcnn_tensor *const *)&xt, 1));
            TU_OK(clcnn_train_plan_backward(p[k], grads, 1 + k * extra));
            out[k] = tu_download(clcnn_train_plan_output(p[k], 0));
            gr[k] = tu_download(clcnn_train_plan_grads(p[k]));
            TU_OK(clcnn_train_plan_zero_grad(p[k]));
        }
        assert_memory_equal(out[0], out[1], 9 * sizeof(float));
        assert_memory_equal(gr[0], gr[1], ng * sizeof(float));
        double norm = 0.0;
        for (size_t i = 0; i < ng; i++)
            norm += fabs(gr[0][i]);
        assert_true(norm > 0.0);
        for (int k = 0; k < 2; k++)
            free(out[k]), free(gr[k]);
    }
    clcnn_tensor_free(xt);
    clcnn_tensor_free(dyt);
}

clcnn_graph *gt_new_graph(void) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    return g;
}

/* Flatten of in (features per sample), a Gemm to 3 logits (weights in +-w_range, a bias
 * in +-0.1 when bias) and the graph's output "logits". */
void gt_classifier(clcnn_graph *g, tu_rng *r, const char *in, int64_t features, float w_range,
                   int bias) {
    gt_node(g, "Flatten", "flat", in, "f", 0, NULL);
    gt_add_param(g, r, "fc.w", 2, 3, features, 0, 0, -w_range, w_range);
    if (bias) gt_add_param(g, r, "fc.b", 1, 3, 0, 0, 0, -0.1f, 0.1f);
    clcnn_attr tb = gt_ai("transB", 1);
    gt_node(g, "Gemm", "fc", bias ? "f fc.w fc.b" : "f fc.w", "logits", 1, &tb);
    TU_OK(clcnn_graph_add_output(g, "logits"));
}

/* A batch of 3 random 3-channel h x w images (x) and the gradient of 3 logits per image
 * (dy), uniform in [-1, 1] from seed. */
void gt_random_batch(uint64_t seed, size_t h, size_t w, clcnn_tensor **xt, clcnn_tensor **dyt) {
    tu_rng r = tu_rng_seed(seed);
    size_t xs[4] = {3, 3, h, w}, ys[2] = {3, 3}, n = 9 * h * w;
    float *x = malloc(n * sizeof *x), dy[9];
    assert_non_null(x);
    tu_fill_uniform(&r, x, n, -1.0f, 1.0f);
    tu_fill_uniform(&r, dy, 9, -1.0f, 1.0f);
    *xt = tu_tensor_from(4, xs, x);
    *dyt = tu_tensor_from(2, ys, dy);
    free(x);
}
