/* The reducing op kinds through plans against double references: MatMul (ranks 1-4, batch
 * broadcasting, A or B an initializer), Gemm's general form (transA/transB, alpha, beta,
 * C given per run in every broadcast shape), the ten Reduce* kinds (random axes, negative axes,
 * keepdims 0/1, axes as an initializer input, noop_with_empty_axes), Softmax / LogSoftmax
 * over every axis of ranks 2-4, LRN, and MaxPool / AveragePool with per-side pads,
 * ceil_mode and (max) dilations; seeded random shapes with odd sizes and batch 1, a
 * symbolic batch, shape inference and the errors of bad nodes. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTS(n_, ...)                                                                              \
    ((clcnn_attr){(n_), CLCNN_ATTR_INTS, 0, 0.0f, (const int64_t[]){__VA_ARGS__}, NULL,            \
                  sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t), NULL})
#define INT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_INT, (v_), 0.0f, NULL, NULL, 0, NULL})
#define FLOAT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_FLOAT, 0, (v_), NULL, NULL, 0, NULL})

static const int64_t N = CLCNN_GRAPH_BATCH;

static size_t numel(int ndim, const int64_t *dims) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)dims[d];
    return n;
}

/* One operand of a single-node graph: a graph input (symbolic batch when batch) or a float
 * initializer. */
typedef struct operand {
    int ndim;
    int64_t dims[4];
    int init, batch;
    float *data;
} operand;

/* Runs `op` on a (and b when given) through a plan; returns the output (malloc'd) and its
 * shape. */
static float *run_node(const char *op, const operand *a, const operand *b, int na,
                       const clcnn_attr *attrs, int *ondim, int64_t *odims) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    const operand *ops[2] = {a, b};
    const char *names[2] = {"a", "b"};
    int nin = b ? 2 : 1, ngi = 0;
    const clcnn_tensor *tin[2];
    clcnn_tensor *owned[2] = {NULL, NULL};
    int batch = 1;
    for (int i = 0; i < nin; i++) {
        const operand *o = ops[i];
        if (o->init) {
            TU_OK(clcnn_graph_add_initializer(g, names[i], CLCNN_F32, o->ndim, o->dims, o->data));
            continue;
        }
        int64_t gd[4];
        memcpy(gd, o->dims, sizeof gd);
        if (o->batch) gd[0] = N, batch = (int)o->dims[0];
        TU_OK(clcnn_graph_add_input(g, names[i], CLCNN_F32, o->ndim, gd));
        size_t shape[4];
        for (int d = 0; d < o->ndim; d++)
            shape[d] = (size_t)o->dims[d];
        owned[ngi] = tu_tensor_from(o->ndim, shape, o->data);
        tin[ngi] = owned[ngi];
        ngi++;
    }
    const char *out = "y";
    clcnn_status s = clcnn_graph_add_node(g, op, "node", nin, names, 1, &out, na, attrs);
    if (s != CLCNN_OK) fail_msg("%s: %s", op, clcnn_last_error());
    TU_OK(clcnn_graph_add_output(g, "y"));
    TU_OK(clcnn_graph_check(g));
    TU_OK(clcnn_graph_value_shape(g, "y", ondim, odims));
    for (int d = 0; d < *ondim; d++)
        if (odims[d] == N) odims[d] = batch;
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(tu_device(), g, batch, NULL, &p));
    TU_OK(clcnn_plan_run(p, tin, ngi));
    const clcnn_tensor *y = clcnn_plan_output(p, 0);
    assert_int_equal(clcnn_tensor_numel(y), numel(*ondim, odims));
    float *got = tu_download(y);
    /* a second run gives the same bits (fixed summation orders) */
    TU_OK(clcnn_plan_run(p, tin, ngi));
    float *again = tu_download(clcnn_plan_output(p, 0));
    assert_memory_equal(got, again, clcnn_tensor_numel(y) * sizeof(float));
    free(again);
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    for (int i = 0; i < ngi; i++)
        clcnn_tensor_free(owned[i]);
    return got;
}

static void random_operand(tu_rng *r, operand *o, int ndim, const int64_t *dims) {
    memset(o, 0, sizeof *o);
    o->ndim = ndim;
    memcpy(o->dims, dims, (size_t)ndim * sizeof *dims);
    size_t n = numel(ndim, dims);
    o->data = malloc((n ? n : 1) * sizeof(float));
    tu_fill_uniform(r, o->data, n, -2.0f, 2.0f);
}

/* ---- Gemm, general form --------------------------------------------------------------------- */

/* Y = alpha op(A) op(B) + beta C with A, B and C graph inputs (C of rank cr: (cm, cn), (cn) or
 * a scalar passed as [1]), against the double reference. */
static void check_gemm(tu_rng *r, int m, int n, int k, int ta, int tb, float alpha, float beta,
                       int cr, int cm, int cn) {
    int64_t ad[2] = {ta ? k : m, ta ? m : k}, bd[2] = {tb ? n : k, tb ? k : n};
    int64_t cdims[2] = {cr == 2 ? cm : cn, cn};
    size_t ncl = (size_t)(cr == 2 ? cm * cn : cr == 1 ? cn : 1);
    float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)k * n * sizeof *b);
    float *c = malloc(ncl * sizeof *c);
    tu_fill_uniform(r, a, (size_t)m * k, -1, 1);
    tu_fill_uniform(r, b, (size_t)k * n, -1, 1);
    tu_fill_uniform(r, c, ncl, -1, 1);
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "a", CLCNN_F32, 2, ad));
    TU_OK(clcnn_graph_add_input(g, "b", CLCNN_F32, 2, bd));
    TU_OK(clcnn_graph_add_input(g, "c", CLCNN_F32, cr, cr == 2 ? cdims : &cdims[1]));
    clcnn_attr at[4] = {INT("transA", ta), INT("transB", tb), FLOAT("alpha", alpha),
                        FLOAT("beta", beta)};
    const char *y = "y";
    TU_OK(
        clcnn_graph_add_node(g, "Gemm", "gemm", 3, (const char *[]){"a", "b", "c"}, 1, &y, 4, at));
    TU_OK(clcnn_graph_add_output(g, "y"));
    clcnn_plan *p = NULL;
    TU_OK(clcnn_plan_create(tu_device(), g, 1, NULL, &p));
    clcnn_tensor *ta_ = tu_tensor_from(2, (size_t[]){(size_t)ad[0], (size_t)ad[1]}, a);
    clcnn_tensor *tb_ = tu_tensor_from(2, (size_t[]){(size_t)bd[0], (size_t)bd[1]}, b);
    clcnn_tensor *tc = cr == 2 ? tu_tensor_from(2, (size_t[]){(size_t)cm, (size_t)cn}, c)
                               : tu_tensor_from(1, (size_t[]){cr == 1 ? (size_t)cn : 1}, c);
    const clcnn_tensor *in[3] = {ta_, tb_, tc};
    TU_OK(clcnn_plan_run(p, in, 3));
    float *got = tu_download(clcnn_plan_output(p, 0));
    double *ref = malloc((size_t)m * n * sizeof *ref);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += (double)a[ta ? l * m + i : i * k + l] * b[tb ? j * k + l : l * n + j];
            size_t ci = cr == 2   ? (size_t)(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)
                        : cr == 1 ? (size_t)(cn == 1 ? 0 : j)
                                  : 0;
            ref[i * n + j] = alpha * s + beta * c[ci];
        }
    char what[128];
    snprintf(what, sizeof what, "Gemm %dx%dx%d trans %d%d alpha %g beta %g C rank %d %dx%d", m, n,
             k, ta, tb, alpha, beta, cr, cm, cn);
    if (!tu_close(what, got, ref, (size_t)m * n, 1e-5, 1e-4)) fail_msg("%s", what);
    free(got);
    free(ref);
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    clcnn_tensor_free(ta_);
    clcnn_tensor_free(tb_);
    clcnn_tensor_free(tc);
    free(a);
    free(b);
    free(c);
}

static void test_gemm_general(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(515);
    check_gemm(&r, 3, 5, 4, 0, 0, 1.0f, 1.0f, 2, 3, 5);    /* full C */
    check_gemm(&r, 3, 5, 4, 1, 0, 0.5f, 2.0f, 2, 1, 5);    /* row vector, transA */
    check_gemm(&r, 7, 2, 9, 0, 1, 1.0f, -1.5f, 2, 7, 1);   /* column vector, transB */
    check_gemm(&r, 1, 6, 3, 1, 1, 0.25f, 1.0f, 1, 1, 6);   /* rank 1, both transposed */
    check_gemm(&r, 4, 3, 2, 0, 0, 1.0f, 0.75f, 1, 1, 1);   /* one element */
    check_gemm(&r, 5, 4, 6, 0, 0, 2.0f, 3.0f, 0, 1, 1);    /* 0-D scalar passed as [1] */
    check_gemm(&r, 17, 33, 65, 1, 0, 1.0f, 1.0f, 2, 1, 1); /* [1,1], odd sizes */
}

/* ---- MatMul ------------------------------------------------------------------------------ */

/* y = a b with NumPy's rules, in double: operands padded to (b0, b1, rows, cols). */
static double *ref_matmul(const operand *a, const operand *b, size_t *out_n) {
    int64_t as[4] = {1, 1, 1, 1}, bs[4] = {1, 1, 1, 1};
    if (a->ndim == 1)
        as[3] = a->dims[0];
    else
        for (int d = 0; d < a->ndim; d++)
            as[4 - a->ndim + d] = a->dims[d];
    if (b->ndim == 1)
        bs[2] = b->dims[0];
    else
        for (int d = 0; d < b->ndim; d++)
            bs[4 - b->ndim + d] = b->dims[d];
    int64_t o0 = as[0] > bs[0] ? as[0] : bs[0], o1 = as[1] > bs[1] ? as[1] : bs[1];
    int64_t m = as[2], k = as[3], n = bs[3];
    double *y = calloc((size_t)(o0 * o1 * m * n), sizeof *y);
    for (int64_t i0 = 0; i0 < o0; i0++)
        for (int64_t i1 = 0; i1 < o1; i1++) {
            const float *am =
                a->data + ((as[0] == 1 ? 0 : i0) * as[1] + (as[1] == 1 ? 0 : i1)) * m * k;
            const float *bm =
                b->data + ((bs[0] == 1 ? 0 : i0) * bs[1] + (bs[1] == 1 ? 0 : i1)) * k * n;
            double *ym = y + (i0 * o1 + i1) * m * n;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = 0.0;
                    for (int64_t t = 0; t < k; t++)
                        s += (double)am[i * k + t] * bm[t * n + j];
                    ym[i * n + j] = s;
                }
        }
    *out_n = (size_t)(o0 * o1 * m * n);
    return y;
}

/* b_init: 1 B is an initializer, 2 A is one */
static void check_matmul(tu_rng *r, int ar, const int64_t *ad, int br, const int64_t *bd,
                         int b_init, int batch, int ondim_want) {
    operand a, b;
    random_operand(r, &a, ar, ad);
    random_operand(r, &b, br, bd);
    b.init = b_init == 1;
    a.init = b_init == 2;
    a.batch = batch;
    int ondim;
    int64_t odims[8];
    float *got = run_node("MatMul", &a, &b, 0, NULL, &ondim, odims);
    size_t n;
    double *ref = ref_matmul(&a, &b, &n);
    char what[160];
    snprintf(what, sizeof what, "MatMul a rank %d [%lld..,%lld] b rank %d [..%lld]%s", ar,
             (long long)ad[0], (long long)ad[ar - 1], br, (long long)bd[br - 1],
             b_init == 1   ? " (B init)"
             : b_init == 2 ? " (A init)"
                           : "");
    assert_int_equal(ondim, ondim_want);
    assert_int_equal(numel(ondim, odims), n);
    int64_t k = ad[ar - 1];
    assert_true(tu_close(what, got, ref, n, 1e-5, 1e-5 * (double)(k + 4)));
    free(got);
    free(ref);
    free(a.data);
    free(b.data);
}

static void test_matmul(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(11);
    /* the ONNX cases' shapes, then broadcasting of every kind */
    check_matmul(&r, 2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 3}, 0, 0, 2);
    check_matmul(&r, 3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){2, 4, 3}, 0, 0, 3);
    check_matmul(&r, 4, (int64_t[]){1, 2, 3, 4}, 4, (int64_t[]){1, 2, 4, 3}, 0, 0, 4);
    check_matmul(&r, 3, (int64_t[]){5, 7, 9}, 2, (int64_t[]){9, 6}, 1, 1, 3); /* rows fold */
    check_matmul(&r, 3, (int64_t[]){1, 7, 9}, 2, (int64_t[]){9, 6}, 1, 1, 3); /* batch 1 */
    check_matmul(&r, 2, (int64_t[]){5, 9}, 3, (int64_t[]){3, 9, 6}, 0, 0, 3); /* A broadcast */
    check_matmul(&r, 4, (int64_t[]){2, 1, 3, 5}, 4, (int64_t[]){1, 3, 5, 4}, 0, 0, 4);
    check_matmul(&r, 4, (int64_t[]){2, 3, 3, 5}, 3, (int64_t[]){3, 5, 4}, 1, 0, 4);
    check_matmul(&r, 4, (int64_t[]){3, 1, 2, 5}, 2, (int64_t[]){5, 1}, 0, 1, 4);
    check_matmul(&r, 1, (int64_t[]){5}, 3, (int64_t[]){2, 5, 3}, 0, 0, 2); /* 1-D A */
    check_matmul(&r, 3, (int64_t[]){2, 3, 5}, 1, (int64_t[]){5}, 1, 0, 2); /* 1-D B */
    check_matmul(&r, 2, (int64_t[]){3, 70}, 2, (int64_t[]){70, 33}, 0, 1, 2);
    check_matmul(&r, 2, (int64_t[]){4, 6}, 3, (int64_t[]){2, 6, 5}, 2, 0, 3); /* A init */
    for (int it = 0; it < 12; it++) { /* random batched shapes, broadcasting per dim */
        int rank = tu_rng_int(&r, 3, 4);
        int64_t m = tu_rng_int(&r, 1, 9), k = tu_rng_int(&r, 1, 17), n = tu_rng_int(&r, 1, 9);
        int64_t ad[4], bd[4];
        for (int d = 0; d < rank - 2; d++) {
            int64_t e = tu_rng_int(&r, 1, 4);
            int which = tu_rng_int(&r, 0, 2); /* 0 both, 1 A broadcasts, 2 B broadcasts */
            ad[d] = which == 1 ? 1 : e;
            bd[d] = which == 2 ? 1 : e;
        }
        ad[rank - 2] = m, ad[rank - 1] = k;
        bd[rank - 2] = k, bd[rank - 1] = n;
        check_matmul(&r, rank, ad, rank, bd, it & 1, 0, rank);
    }
}

/* ---- reductions -------------------------------------------------------------------------- */

static const char *reduce_ops[10] = {"ReduceSum",    "ReduceMean",      "ReduceMax", "ReduceMin",
                                     "ReduceProd",   "ReduceSumSquare", "ReduceL1",  "ReduceL2",
                                     "ReduceLogSum", "ReduceLogSumExp"};

/* reduce_ops[op] over the dims in mask, by definition (log-sum-exp as log(sum(exp))); y in
 * the kept dims' order. */
static double *ref_reduce(const operand *x, unsigned mask, int op, size_t *out_n) {
    size_t n = numel(x->ndim, x->dims), on = 1, cnt = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (mask & (1u << d))
            cnt *= (size_t)x->dims[d];
        else
            on *= (size_t)x->dims[d];
    }
    double *y = malloc(on * sizeof *y);
    for (size_t i = 0; i < on; i++)
        y[i] = op == 2 ? -INFINITY : op == 3 ? INFINITY : op == 4 ? 1.0 : 0.0;
    for (size_t i = 0; i < n; i++) {
        size_t rem = i, o = 0, scale = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            size_t c = rem % (size_t)x->dims[d];
            rem /= (size_t)x->dims[d];
            if (!(mask & (1u << d))) o += c * scale, scale *= (size_t)x->dims[d];
        }
        double v = x->data[i];
        switch (op) {
        case 2:
            y[o] = fmax(y[o], v);
            break;
        case 3:
            y[o] = fmin(y[o], v);
            break;
        case 4:
            y[o] *= v;
            break;
        case 5:
        case 7:
            y[o] += v * v;
            break;
        case 6:
            y[o] += fabs(v);
            break;
        case 9:
            y[o] += exp(v);
            break;
        default:
            y[o] += v;
        }
    }
    for (size_t i = 0; i < on; i++) {
        if (op == 1) y[i] /= (double)cnt;
        if (op == 7) y[i] = sqrt(y[i]);
        if (op == 8 || op == 9) y[i] = log(y[i]);
    }
    *out_n = on;
    return y;
}

/* axes as given (may be negative); naxes -1: no axes attribute at all */
static void check_reduce(tu_rng *r, int op, int ndim, const int64_t *dims, int naxes,
                         const int64_t *axes, int keepdims, int batch) {
    operand x;
    random_operand(r, &x, ndim, dims);
    if (op == 8) /* log of a sum: positive inputs */
        for (size_t i = 0; i < numel(ndim, dims); i++)
            x.data[i] = fabsf(x.data[i]) + 0.01f;
    x.batch = batch;
    clcnn_attr at[2];
    int na = 0;
    if (naxes >= 0)
        at[na++] = (clcnn_attr){"axes", CLCNN_ATTR_INTS, 0, 0.0f, axes, NULL, naxes, NULL};
    at[na++] = INT("keepdims", keepdims);
    int ondim;
    int64_t odims[8];
    float *got = run_node(reduce_ops[op], &x, NULL, na, at, &ondim, odims);
    unsigned mask = 0;
    for (int i = 0; i < naxes; i++)
        mask |= 1u << (axes[i] < 0 ? axes[i] + ndim : axes[i]);
    if (naxes <= 0) mask = (1u << ndim) - 1;
    size_t n;
    double *ref = ref_reduce(&x, mask, op, &n);
    char what[160];
    snprintf(what, sizeof what, "%s rank %d [%lld,...] mask %#x keepdims %d", reduce_ops[op], ndim,
             (long long)dims[0], mask, keepdims);
    int want_nd = keepdims ? ndim : ndim - __builtin_popcount(mask);
    assert_int_equal(ondim, want_nd);
    assert_int_equal(numel(ondim, odims), n);
    for (int d = 0, o = 0; d < ndim; d++) {
        if (!(mask & (1u << d)))
            assert_int_equal(odims[o++], dims[d]);
        else if (keepdims)
            assert_int_equal(odims[o++], 1);
    }
    /* products of up to 7^4 values in [-2, 2] reach 1e30s: relative error per factor */
    assert_true(
        tu_close(what, got, ref, n, 1e-5, op == 4 ? 1e-6 * (double)numel(ndim, dims) : 1e-5));
    free(got);
    free(ref);
    free(x.data);
}

static void test_reduce(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(12);
    /* ONNX's examples, the global average pool, all axes by default */
    check_reduce(&r, 1, 3, (int64_t[]){3, 2, 2}, 1, (int64_t[]){1}, 1, 0);
    check_reduce(&r, 1, 4, (int64_t[]){2, 5, 7, 9}, 2, (int64_t[]){2, 3}, 1, 1);
    check_reduce(&r, 1, 4, (int64_t[]){1, 5, 7, 9}, 2, (int64_t[]){-1, -2}, 0, 1);
    check_reduce(&r, 0, 3, (int64_t[]){3, 2, 2}, -1, NULL, 1, 0);
    check_reduce(&r, 2, 3, (int64_t[]){3, 2, 2}, -1, NULL, 0, 0);
    check_reduce(&r, 2, 4, (int64_t[]){2, 3, 4, 5}, 2, (int64_t[]){0, 2}, 1, 0);
    check_reduce(&r, 0, 4, (int64_t[]){3, 4, 1, 5}, 2, (int64_t[]){3, 1}, 0, 0);
    check_reduce(&r, 0, 2, (int64_t[]){1, 3001}, 1, (int64_t[]){-1}, 1, 1); /* long sum */
    /* log-sum-exp of large values stays finite (the max is taken out first) */
    {
        operand x;
        random_operand(&r, &x, 2, (int64_t[]){3, 5});
        for (int i = 0; i < 15; i++)
            x.data[i] += 200.0f;
        int ondim;
        int64_t odims[8];
        float *got = run_node("ReduceLogSumExp", &x, NULL, 1, (clcnn_attr[]){INTS("axes", 1)},
                              &ondim, odims);
        for (int i = 0; i < 3; i++) {
            double m = -INFINITY, s = 0.0;
            for (int j = 0; j < 5; j++)
                m = fmax(m, x.data[i * 5 + j]);
            for (int j = 0; j < 5; j++)
                s += exp(x.data[i * 5 + j] - m);
            assert_true(fabs(got[i] - (m + log(s))) <= 1e-4);
        }
        free(got);
        free(x.data);
    }
    for (int it = 0; it < 60; it++) {
        int ndim = tu_rng_int(&r, 1, 4), op = it < 20 ? it % 10 : tu_rng_int(&r, 0, 9);
        int64_t dims[4], axes[4];
        for (int d = 0; d < ndim; d++)
            dims[d] = tu_rng_int(&r, 1, 7);
        int naxes = 0;
        for (int d = 0; d < ndim; d++)
            if (tu_rng_int(&r, 0, 1)) axes[naxes++] = tu_rng_int(&r, 0, 1) ? d : d - ndim;
        if (naxes == 0 && tu_rng_int(&r, 0, 1)) naxes = -1;
        check_reduce(&r, op, ndim, dims, naxes, axes, tu_rng_int(&r, 0, 1),
                     ndim > 1 && tu_rng_int(&r, 0, 1));
    }
}

/* ReduceSum's axes as an int64 initializer input (opset 13), or absent with and without
 * noop_with_empty_axes. */
static void test_reduce_axes_input(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(13);
    operand x;
    random_operand(&r, &x, 3, (int64_t[]){3, 4, 5});
    for (int noop = 0; noop <= 1; noop++)
        for (int empty = 0; empty <= 1; empty++) {
            clcnn_graph *g = NULL;
            TU_OK(clcnn_graph_create(&g));
            TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 3, x.dims));
            /* empty: the optional input absent (the graph has no empty initializers) */
            const int64_t axes[1] = {-2};
            TU_OK(clcnn_graph_add_initializer(g, "axes", CLCNN_I64, 1, (int64_t[]){1}, axes));
            const char *out = "y";
            clcnn_attr at[2] = {INT("keepdims", 0), INT("noop_with_empty_axes", noop)};
            TU_OK(clcnn_graph_add_node(g, "ReduceSum", "rs", 2,
                                       (const char *[]){"x", empty ? "" : "axes"}, 1, &out, 2, at));
            TU_OK(clcnn_graph_add_output(g, "y"));
            TU_OK(clcnn_graph_check(g));
            int nd;
            int64_t od[8];
            TU_OK(clcnn_graph_value_shape(g, "y", &nd, od));
            clcnn_plan *p = NULL;
            TU_OK(clcnn_plan_create(tu_device(), g, 1, NULL, &p));
            clcnn_tensor *xt = tu_tensor_from(3, (size_t[]){3, 4, 5}, x.data);
            const clcnn_tensor *in = xt;
            TU_OK(clcnn_plan_run(p, &in, 1));
            float *got = tu_download(clcnn_plan_output(p, 0));
            unsigned mask = empty ? (noop ? 0u : 7u) : 2u;
            size_t on;
            double *ref = ref_reduce(&x, mask, 0, &on);
            assert_int_equal(nd, 3 - __builtin_popcount(mask));
            assert_int_equal(clcnn_tensor_numel(clcnn_plan_output(p, 0)), on);
            assert_true(tu_close("ReduceSum axes input", got, ref, on, 1e-5, 1e-5));
            free(got);
            free(ref);
            clcnn_tensor_free(xt);
            clcnn_plan_free(p);
            clcnn_graph_free(g);
        }
    free(x.data);
}

/* ---- Softmax / LogSoftmax ---------------------------------------------------------------- */

static double *ref_softmax(const operand *x, int axis, int log_out) {
    size_t outer = 1, c = (size_t)x->dims[axis], inner = 1, n = numel(x->ndim, x->dims);
    for (int d = 0; d < axis; d++)
        outer *= (size_t)x->dims[d];
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= (size_t)x->dims[d];
    double *y = malloc(n * sizeof *y);
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *xr = x->data + o * c * inner + i;
            double m = -INFINITY, s = 0.0;
            for (size_t j = 0; j < c; j++)
                m = fmax(m, xr[j * inner]);
            for (size_t j = 0; j < c; j++)
                s += exp(xr[j * inner] - m);
            for (size_t j = 0; j < c; j++) {
                double v = xr[j * inner] - m;
                y[o * c * inner + j * inner + i] = log_out ? v - log(s) : exp(v) / s;
            }
        }
    return y;
}

static void test_softmax_axes(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(14);
    for (int it = 0; it < 24; it++) {
        int ndim = 2 + it % 3, log_out = (it / 3) & 1;
        int64_t dims[4];
        for (int d = 0; d < ndim; d++)
            dims[d] = tu_rng_int(&r, 1, 6);
        if (it == 0) dims[0] = 1, dims[1] = 1001; /* a long row */
        int axis = tu_rng_int(&r, -ndim, ndim - 1);
        int a = axis < 0 ? axis + ndim : axis;
        operand x;
        random_operand(&r, &x, ndim, dims);
        for (size_t i = 0; i < numel(ndim, dims); i++)
            x.data[i] *= 8.0f;
        x.batch = it & 1;
        int ondim;
        int64_t odims[8];
        const char *op = log_out ? "LogSoftmax" : "Softmax";
        float *got = run_node(op, &x, NULL, 1, (clcnn_attr[]){INT("axis", axis)}, &ondim, odims);
        double *ref = ref_softmax(&x, a, log_out);
        char what[96];
        snprintf(what, sizeof what, "%s rank %d axis %d", op, ndim, axis);
        assert_true(tu_close(what, got, ref, numel(ndim, dims), 1e-6, 1e-4));
        free(got);
        free(ref);
        free(x.data);
    }
}

/* ---- LRN --------------------------------------------------------------------------------- */

static double *ref_lrn(const operand *x, int size, double alpha, double beta, double bias) {
    size_t n = (size_t)x->dims[0], c = (size_t)x->dims[1],
           inner = numel(x->ndim, x->dims) / (n * c);
    double *y = malloc(n * c * inner * sizeof *y);
    for (size_t b = 0; b < n; b++)
        for (size_t ch = 0; ch < c; ch++)
            for (size_t i = 0; i < inner; i++) {
                long lo = (long)ch - (size - 1) / 2, hi = (long)ch + size / 2;
                double s = 0.0;
                for (long j = lo < 0 ? 0 : lo; j <= hi && j < (long)c; j++) {
                    double v = x->data[(b * c + (size_t)j) * inner + i];
                    s += v * v;
                }
                size_t at = (b * c + ch) * inner + i;
                y[at] = x->data[at] / pow(bias + alpha / size * s, beta);
            }
    return y;
}

static void test_lrn(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(15);
    struct {
        int ndim;
        int64_t dims[4];
        int size;
        float alpha, beta, bias;
    } cases[] = {
        {4, {5, 5, 5, 5}, 3, 0.0002f, 0.5f, 2.0f}, /* ONNX's test_lrn */
        {4, {5, 5, 5, 5}, 3, 1e-4f, 0.75f, 1.0f},  /* ONNX's defaults */
        {4, {1, 96, 7, 5}, 5, 1e-4f, 0.75f, 2.0f}, /* AlexNet's */
        {4, {2, 3, 4, 4}, 8, 1e-2f, 0.75f, 1.0f},  /* window wider than the channels */
        {3, {3, 7, 9}, 4, 1e-1f, 0.6f, 1.5f},      /* even size: one more channel above */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        operand x;
        random_operand(&r, &x, cases[t].ndim, cases[t].dims);
        x.batch = t & 1;
        clcnn_attr at[4] = {INT("size", cases[t].size), FLOAT("alpha", cases[t].alpha),
                            FLOAT("beta", cases[t].beta), FLOAT("bias", cases[t].bias)};
        int ondim;
        int64_t odims[8];
        float *got = run_node("LRN", &x, NULL, t == 1 ? 1 : 4, at, &ondim, odims);
        double *ref = ref_lrn(&x, cases[t].size, cases[t].alpha, cases[t].beta, cases[t].bias);
        char what[64];
        snprintf(what, sizeof what, "LRN case %zu", t);
        assert_true(tu_close(what, got, ref, numel(x.ndim, x.dims), 1e-6, 1e-5));
        free(got);
        free(ref);
        free(x.data);
    }
}

/* ---- MaxPool / AveragePool with per-side pads, ceil mode and (max) dilations ------------ */

/* y (n, c, p, q) of x (n, c, h, w) with the graph's output size; mode 0 max, 1 average
 * without padding, 2 average with padding (clipped to the padded plane, PyTorch's rule);
 * taps dil apart (max only). */
static double *ref_pool(const operand *x, int mode, const int *k, const int *st, const int *pads,
                        const int *dil, int p, int q) {
    int64_t planes = x->dims[0] * x->dims[1], h = x->dims[2], w = x->dims[3];
    double *y = malloc((size_t)(planes * p * q) * sizeof *y);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int op = 0; op < p; op++)
            for (int oq = 0; oq < q; oq++) {
                int64_t h0 = op * st[0] - pads[0], w0 = oq * st[1] - pads[1];
                int64_t h1 = h0 + k[0], w1 = w0 + k[1];
                int64_t ph1 = h1 < h + pads[2] ? h1 : h + pads[2];
                int64_t pw1 = w1 < w + pads[3] ? w1 : w + pads[3];
                double m = -INFINITY, s = 0.0;
                int cnt = 0;
                for (int64_t ti = 0; ti < k[0]; ti++)
                    for (int64_t tj = 0; tj < k[1]; tj++) {
                        int64_t i = h0 + ti * dil[0], j = w0 + tj * dil[1];
                        if (i < 0 || i >= h || j < 0 || j >= w) continue;
                        double v = x->data[(pl * h + i) * w + j];
                        m = fmax(m, v);
                        s += v;
                        cnt++;
                    }
                double *o = &y[(pl * p + op) * q + oq];
                *o = mode == 0 ? m : mode == 1 ? s / cnt : s / (double)((ph1 - h0) * (pw1 - w0));
            }
    return y;
}

static void test_pool_pads_ceil(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(16);
    static const char *ops[3] = {"MaxPool", "AveragePool", "AveragePool"};
    for (int it = 0; it < 36; it++) {
        int mode = it % 3, ceil_mode = (it / 3) & 1;
        int k[2], st[2], pads[4], dil[2] = {1, 1};
        for (int d = 0; d < 2; d++) {
            k[d] = tu_rng_int(&r, 1, 4);
            st[d] = tu_rng_int(&r, 1, 3);
            if (mode == 0 && it >= 12) dil[d] = tu_rng_int(&r, 1, 2);
        }
        for (int i = 0; i < 4; i++)
            pads[i] = tu_rng_int(&r, 0, k[i % 2] - 1);
        if (it == 0) /* ONNX's test_maxpool_2d_ceil: 4x4, 3x3 stride 2 */
            k[0] = k[1] = 3, st[0] = st[1] = 2, pads[0] = pads[1] = pads[2] = pads[3] = 0;
        int64_t dims[4] = {tu_rng_int(&r, 1, 2), tu_rng_int(&r, 1, 3), tu_rng_int(&r, 4, 11),
                           tu_rng_int(&r, 4, 11)};
        if (it == 0) dims[2] = dims[3] = 4;
        operand x;
        random_operand(&r, &x, 4, dims);
        x.batch = it & 1;
        clcnn_attr at[5] = {
            {"kernel_shape", CLCNN_ATTR_INTS, 0, 0.0f, (const int64_t[]){k[0], k[1]}, NULL, 2,
             NULL},
            {"strides", CLCNN_ATTR_INTS, 0, 0.0f, (const int64_t[]){st[0], st[1]}, NULL, 2, NULL},
            {"pads", CLCNN_ATTR_INTS, 0, 0.0f,
             (const int64_t[]){pads[0], pads[1], pads[2], pads[3]}, NULL, 4, NULL},
            INT("ceil_mode", ceil_mode),
            mode == 0 ? (clcnn_attr){"dilations", CLCNN_ATTR_INTS, 0, 0.0f,
                                     (const int64_t[]){dil[0], dil[1]}, NULL, 2, NULL}
                      : INT("count_include_pad", mode == 2)};
        int ondim;
        int64_t odims[8];
        float *got = run_node(ops[mode], &x, NULL, 5, at, &ondim, odims);
        assert_int_equal(ondim, 4);
        double *ref = ref_pool(&x, mode, k, st, pads, dil, (int)odims[2], (int)odims[3]);
        char what[160];
        snprintf(what, sizeof what,
                 "%s mode %d ceil %d x %lldx%lld k %dx%d s %dx%d d %dx%d pads %d,%d,%d,%d -> "
                 "%lldx%lld",
                 ops[mode], mode, ceil_mode, (long long)dims[2], (long long)dims[3], k[0], k[1],
                 st[0], st[1], dil[0], dil[1], pads[0], pads[1], pads[2], pads[3],
                 (long long)odims[2], (long long)odims[3]);
        assert_true(tu_close(what, got, ref, numel(4, odims), 1e-6, 1e-5));
        free(got);
        free(ref);
        free(x.data);
    }
}

/* ---- shape inference and errors ---------------------------------------------------------- */

static clcnn_status try_node(const char *op, int ndim, const int64_t *dims, int ndim_b,
                             const int64_t *dims_b, int na, const clcnn_attr *at) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "a", CLCNN_F32, ndim, dims));
    if (ndim_b) TU_OK(clcnn_graph_add_input(g, "b", CLCNN_F32, ndim_b, dims_b));
    const char *out = "y";
    clcnn_status s = clcnn_graph_add_node(g, op, "bad", ndim_b ? 2 : 1, (const char *[]){"a", "b"},
                                          1, &out, na, at);
    if (s == CLCNN_OK) s = clcnn_graph_add_output(g, "y");
    if (s == CLCNN_OK) s = clcnn_graph_check(g);
    clcnn_graph_free(g);
    return s;
}

static void test_errors(void **state) {
    (void)state;
    int64_t x4[4] = {N, 3, 5, 5};
    assert_int_equal(try_node("MatMul", 2, (int64_t[]){3, 4}, 2, (int64_t[]){5, 3}, 0, NULL),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "'bad'"));
    assert_int_equal(try_node("MatMul", 3, (int64_t[]){2, 3, 4}, 3, (int64_t[]){3, 4, 3}, 0, NULL),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(try_node("ReduceMean", 4, x4, 0, NULL, 1, (clcnn_attr[]){INTS("axes", 4)}),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(try_node("ReduceMax", 4, x4, 0, NULL, 1, (clcnn_attr[]){INTS("axes", 1, -3)}),
                     CLCNN_ERR_INVALID_ARG); /* the same axis twice */
    assert_int_equal(try_node("ReduceSum", 4, x4, 0, NULL, 1, (clcnn_attr[]){INT("axes", 1)}),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(try_node("LRN", 4, x4, 0, NULL, 0, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(try_node("LRN", 4, x4, 0, NULL, 1, (clcnn_attr[]){INT("size", 0)}),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(
        try_node("LRN", 2, (int64_t[]){N, 3}, 0, NULL, 1, (clcnn_attr[]){INT("size", 3)}),
        CLCNN_ERR_SHAPE);
    assert_int_equal(
        try_node("Softmax", 3, (int64_t[]){N, 3, 4}, 0, NULL, 1, (clcnn_attr[]){INT("axis", 3)}),
        CLCNN_ERR_INVALID_ARG);
    /* ReduceSum's axes computed per run cannot give a shape */
    assert_int_equal(try_node("ReduceSum", 4, x4, 1, (int64_t[]){1}, 0, NULL),
                     CLCNN_ERR_UNSUPPORTED);
    /* what plans cannot run names the node: dilated average pooling, an int64 operand */
    clcnn_graph *g = NULL;
    clcnn_plan *p = NULL;
    const char *y = "y";
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, x4));
    TU_OK(
        clcnn_graph_add_node(g, "AveragePool", "dilated", 1, (const char *[]){"x"}, 1, &y, 2,
                             (clcnn_attr[]){INTS("kernel_shape", 2, 2), INTS("dilations", 2, 2)}));
    TU_OK(clcnn_graph_add_output(g, "y"));
    assert_int_equal(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "'dilated'"));
    clcnn_graph_free(g);
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 2, (int64_t[]){N, 3}));
    TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_I64, 2, (int64_t[]){3, 2}, NULL));
    TU_OK(clcnn_graph_add_node(g, "MatMul", "ints", 2, (const char *[]){"x", "w"}, 1, &y, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    assert_int_equal(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "'ints'"));
    clcnn_graph_free(g);
    /* the symbolic batch stays where it is; reduced away it is gone */
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, x4));
    TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 2, (int64_t[]){5, 7}, NULL));
    const char *o1 = "m", *o2 = "r";
    TU_OK(clcnn_graph_add_node(g, "MatMul", "mm", 2, (const char *[]){"x", "w"}, 1, &o1, 0, NULL));
    TU_OK(clcnn_graph_add_node(g, "ReduceMean", "rm", 1, (const char *[]){"m"}, 1, &o2, 2,
                               (clcnn_attr[]){INTS("axes", 0, -1), INT("keepdims", 0)}));
    TU_OK(clcnn_graph_add_output(g, "r"));
    TU_OK(clcnn_graph_check(g));
    int nd;
    int64_t d[8];
    TU_OK(clcnn_graph_value_shape(g, "m", &nd, d));
    assert_int_equal(nd, 4);
    assert_true(d[0] == N && d[1] == 3 && d[2] == 5 && d[3] == 7);
    TU_OK(clcnn_graph_value_shape(g, "r", &nd, d));
    assert_int_equal(nd, 2);
    assert_true(d[0] == 3 && d[1] == 5);
    /* listings: MatMul's per-sample FLOPs and parameters, the reduced axes */
    clcnn_node_info info;
    for (int i = 0; i < 2; i++) {
        TU_OK(clcnn_graph_node_info(g, i, &info));
        if (!strcmp(info.outputs[0], "m")) {
            assert_true(info.flops == 2.0 * 5 * 3 * 5 * 7);
            assert_int_equal(info.params, 35);
        } else {
            assert_string_equal(info.desc, "axes 0,3, dropped");
        }
    }
    clcnn_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),         cmocka_unit_test(test_gemm_general),
        cmocka_unit_test(test_reduce),         cmocka_unit_test(test_reduce_axes_input),
        cmocka_unit_test(test_softmax_axes),   cmocka_unit_test(test_lrn),
        cmocka_unit_test(test_pool_pads_ceil), cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
