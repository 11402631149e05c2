/* The element-wise family of the graph (unary ops, binary ops with NumPy broadcasting,
 * PRelu, Clip in both forms, variadic Max/Min/Sum) through plans against a double
 * reference written from the ONNX definitions: seeded random data, odd sizes, batch 1 and
 * 3, rank 2 to 4, operands that are activations or initializers (scalars, (C,1,1),
 * (1,C,1,1)); attribute defaults; shape and plan errors naming the node; an element-wise
 * step writing over the value it consumes. */
#include "reference_conv.h"
#include "reference_conv_problem.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FLOAT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_FLOAT, 0, (v_), NULL, NULL, 0, NULL})
#define INT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_INT, (v_), 0.0f, NULL, NULL, 0, NULL})

static const int64_t N = CLCNN_GRAPH_BATCH;

/* One operand of the node under test: a graph input (dims[0] may be N) or an
 * initializer; absent ones are passed as "" (Clip's optional bounds). Values are drawn
 * uniformly from [lo, hi], pushed away from 0 by `gap` (divisors). */
typedef struct operand {
    int ndim;
    int64_t dims[4];
    int init, absent;
    float lo, hi, gap;
    const float *fixed; /* initializer data instead of random values */
} operand;

/* The reference of op on arguments a (and b): ONNX definitions in double. */
static double ref_op(const char *op, double a, double b, double alpha, double beta) {
    if (!strcmp(op, "Sigmoid")) return 1.0 / (1.0 + exp(-a));
    if (!strcmp(op, "Tanh")) return tanh(a);
    if (!strcmp(op, "HardSigmoid")) return fmax(0.0, fmin(1.0, alpha * a + beta));
    if (!strcmp(op, "HardSwish")) return a * fmax(0.0, fmin(1.0, a / 6.0 + 0.5));
    if (!strcmp(op, "Exp")) return exp(a);
    if (!strcmp(op, "Log")) return log(a);
    if (!strcmp(op, "Sqrt")) return sqrt(a);
    if (!strcmp(op, "Neg")) return -a;
    if (!strcmp(op, "Abs")) return fabs(a);
    if (!strcmp(op, "Reciprocal")) return 1.0 / a;
    if (!strcmp(op, "Floor")) return floor(a);
    if (!strcmp(op, "Ceil")) return ceil(a);
    if (!strcmp(op, "Add") || !strcmp(op, "Sum")) return a + b;
    if (!strcmp(op, "Sub")) return a - b;
    if (!strcmp(op, "Mul")) return a * b;
    if (!strcmp(op, "Div")) return a / b;
    if (!strcmp(op, "Pow")) return pow(a, b);
    if (!strcmp(op, "Max")) return a > b || isnan(a) ? a : b;
    if (!strcmp(op, "Min")) return a < b || isnan(a) ? a : b;
    if (!strcmp(op, "PRelu")) return a < 0 ? b * a : a;
    fail_msg("no reference for %s", op);
    return 0;
}

/* Element of an operand of shape vd[0..vn) read at flat index i of the output od[0..on)
 * (NumPy broadcasting, right-aligned). */
static size_t bcast_index(const int64_t *od, int on, const int64_t *vd, int vn, size_t i) {
    size_t idx = 0, stride = 1;
    for (int d = on - 1; d >= 0; d--) {
        size_t coord = i % (size_t)od[d];
        i /= (size_t)od[d];
        int k = d - (on - vn);
        if (k < 0) continue;
        if (vd[k] != 1) idx += coord * stride;
        stride *= (size_t)vd[k];
    }
    return idx;
}

static size_t numel_of(const int64_t *dims, int ndim) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)dims[d];
    return n;
}

typedef struct result {
    float *got;
    double *ref;
    size_t n;
    clcnn_plan_memory mem;
} result;

/* Build operands -> op -> y, plan it at `batch`, run it and compute the reference: Clip
 * is min(max(x, lo), hi) with its bound inputs, else alpha and beta (the attribute
 * form); other unary ops read alpha and beta; binary ops fold left over the operands. */
static result run_case(const char *op, int nops, const operand *ops, int batch, int na,
                       const clcnn_attr *attrs, double alpha, double beta, uint64_t seed) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    tu_rng r = tu_rng_seed(seed);
    char names[8][8];
    const char *in[8];
    float *data[8] = {0};
    int64_t cdims[8][4];
    clcnn_tensor *tin[8];
    int ntin = 0;
    for (int i = 0; i < nops; i++) {
        const operand *o = &ops[i];
        snprintf(names[i], sizeof names[i], "in%d", i);
        in[i] = o->absent ? "" : names[i];
        if (o->absent) continue;
        for (int d = 0; d < o->ndim; d++)
            cdims[i][d] = o->dims[d] == N ? batch : o->dims[d];
        size_t n = numel_of(cdims[i], o->ndim);
        data[i] = malloc(n * sizeof(float));
        if (o->fixed) {
            memcpy(data[i], o->fixed, n * sizeof(float));
        } else {
            tu_fill_uniform(&r, data[i], n, o->lo, o->hi);
            for (size_t k = 0; k < n; k++)
                if (fabsf(data[i][k]) < o->gap) data[i][k] += data[i][k] < 0 ? -o->gap : o->gap;
        }
        if (o->init) {
            TU_OK(clcnn_graph_add_initializer(g, names[i], CLCNN_F32, o->ndim, o->dims, data[i]));
        } else {
            TU_OK(clcnn_graph_add_input(g, names[i], CLCNN_F32, o->ndim, o->dims));
            size_t shape[4] = {1}; /* a 0-D input is passed as [1] */
            for (int d = 0; d < o->ndim; d++)
                shape[d] = (size_t)cdims[i][d];
            tin[ntin++] = tu_tensor_from(o->ndim ? o->ndim : 1, shape, data[i]);
        }
    }
    const char *out = "y";
    clcnn_status s = clcnn_graph_add_node(g, op, "node", nops, in, 1, &out, na, attrs);
    if (s != CLCNN_OK) fail_msg("%s: %s", op, clcnn_last_error());
    TU_OK(clcnn_graph_add_output(g, "y"));
    clcnn_plan *p = NULL;
    s = clcnn_plan_create(tu_device(), g, batch, NULL, &p);
    if (s != CLCNN_OK) fail_msg("%s plan: %s", op, clcnn_last_error());
    TU_OK(clcnn_plan_run(p, (const clcnn_tensor *const *)tin, ntin));
    result res;
    int ynd = 0;
    int64_t yd[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_value_shape(g, "y", &ynd, yd));
    if (ynd > 0 && yd[0] == N) yd[0] = batch;
    res.n = numel_of(yd, ynd);
    res.got = tu_download(clcnn_plan_output(p, 0));
    assert_int_equal(clcnn_tensor_numel(clcnn_plan_output(p, 0)), res.n);
    clcnn_plan_get_memory(p, &res.mem);
    res.ref = malloc(res.n * sizeof *res.ref);
    int unary = nops == 1 && strcmp(op, "Max") && strcmp(op, "Min") && strcmp(op, "Sum");
    for (size_t i = 0; i < res.n; i++) {
        double v = data[0][bcast_index(yd, ynd, cdims[0], ops[0].ndim, i)];
        if (!strcmp(op, "Clip")) {
            double lo = nops > 1 && !ops[1].absent ? data[1][0] : alpha;
            double hi = nops > 2 && !ops[2].absent ? data[2][0] : beta;
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
        } else if (unary) {
            v = ref_op(op, v, 0, alpha, beta);
        } else {
            for (int k = 1; k < nops; k++)
                v = ref_op(op, v, data[k][bcast_index(yd, ynd, cdims[k], ops[k].ndim, i)], 0, 0);
        }
        res.ref[i] = v;
    }
    clcnn_plan_free(p);
    clcnn_graph_free(g);
    for (int i = 0; i < ntin; i++)
        clcnn_tensor_free(tin[i]);
    for (int i = 0; i < nops; i++)
        free(data[i]);
    return res;
}

static void check_case(const char *what, const char *op, int nops, const operand *ops, int batch,
                       int na, const clcnn_attr *attrs, double alpha, double beta, double atol,
                       double rtol) {
    result r = run_case(op, nops, ops, batch, na, attrs, alpha, beta, 1000 + (uint64_t)batch);
    char msg[160];
    snprintf(msg, sizeof msg, "%s (%s, batch %d)", what, op, batch);
    if (!tu_close(msg, r.got, r.ref, r.n, atol, rtol)) fail_msg("%s", msg);
    free(r.got);
    free(r.ref);
}

#define OPND(nd_, lo_, hi_, ...) ((operand){(nd_), {__VA_ARGS__}, 0, 0, (lo_), (hi_), 0, NULL})
#define INIT(nd_, lo_, hi_, ...) ((operand){(nd_), {__VA_ARGS__}, 1, 0, (lo_), (hi_), 0, NULL})

static void test_unary(void **state) {
    (void)state;
    static const struct {
        const char *op;
        float lo, hi, gap;
    } ops[] = {
        {"Sigmoid", -12, 12, 0},     {"Tanh", -5, 5, 0},    {"HardSigmoid", -4, 4, 0},
        {"HardSwish", -5, 5, 0},     {"Exp", -6, 4, 0},     {"Log", 0.05f, 30, 0},
        {"Sqrt", 0, 50, 0},          {"Neg", -3, 3, 0},     {"Abs", -3, 3, 0},
        {"Reciprocal", -4, 4, 0.1f}, {"Floor", -20, 20, 0}, {"Ceil", -20, 20, 0},
    };
    /* rank 4 with the batch, rank 2, rank 3 of odd sizes */
    const operand shapes[] = {OPND(4, 0, 0, N, 5, 7, 3), OPND(2, 0, 0, N, 37),
                              OPND(3, 0, 0, 3, 11, 13)};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        for (int sh = 0; sh < 3; sh++)
            for (int batch = 1; batch <= 3; batch += 2) {
                operand x = shapes[sh];
                x.lo = ops[i].lo, x.hi = ops[i].hi, x.gap = ops[i].gap;
                /* HardSigmoid's defaults alpha 0.2, beta 0.5 */
                check_case("unary", ops[i].op, 1, &x, batch, 0, NULL, 0.2, 0.5, 1e-6, 1e-5);
            }
    /* HardSigmoid with its attributes */
    operand x = OPND(4, -6, 6, N, 3, 5, 5);
    clcnn_attr hs[] = {FLOAT("alpha", 0.3f), FLOAT("beta", 0.4f)};
    check_case("attributes", "HardSigmoid", 1, &x, 2, 2, hs, 0.3f, 0.4f, 1e-6, 1e-5);
}

static void test_clip(void **state) {
    (void)state;
    operand x = OPND(4, -9, 9, N, 4, 5, 7);
    /* attribute form (opset 6): ReLU6, one bound only, neither (no change) */
    clcnn_attr relu6[] = {FLOAT("min", 0.0f), FLOAT("max", 6.0f)};
    check_case("attributes 0..6", "Clip", 1, &x, 1, 2, relu6, 0, 6, 0, 0);
    check_case("attribute max", "Clip", 1, &x, 3, 1, &relu6[1], -FLT_MAX, 6, 0, 0);
    check_case("no bounds", "Clip", 1, &x, 1, 0, NULL, -FLT_MAX, FLT_MAX, 0, 0);
    /* input form (opset 11+): scalars of rank 0 and of shape [1], absent ones */
    static const float zero = 0.0f, six = 6.0f, lo = 2.5f, hi = -1.0f;
    operand ops[3] = {x, {0, {0}, 1, 0, 0, 0, 0, &zero}, {1, {1}, 1, 0, 0, 0, 0, &six}};
    check_case("inputs 0..6", "Clip", 3, ops, 3, 0, NULL, 0, 0, 0, 0);
    ops[1].absent = 1;
    check_case("input max only", "Clip", 3, ops, 1, 0, NULL, -FLT_MAX, 0, 0, 0);
    ops[1] = (operand){0, {0}, 1, 0, 0, 0, 0, &lo};
    check_case("input min only", "Clip", 2, ops, 1, 0, NULL, 0, FLT_MAX, 0, 0);
    /* min > max: ONNX defines min(max(x, min), max), i.e. max everywhere */
    ops[2] = (operand){0, {0}, 1, 0, 0, 0, 0, &hi};
    result r = run_case("Clip", 3, ops, 2, 0, NULL, 0, 0, 7);
    for (size_t i = 0; i < r.n; i++)
        if (r.got[i] != -1.0f) fail_msg("min > max: element %zu is %g, want -1", i, r.got[i]);
    free(r.got);
    free(r.ref);
    /* bounds given per run (graph inputs, ONNX's backend tests): a 0-D min passed as [1],
     * a [1] max; one of them with a static other; min > max again */
    operand dyn[3] = {x, {0, {0}, 0, 0, 0, 0, 0, &lo}, {1, {1}, 0, 0, 0, 0, 0, &six}};
    check_case("run-time bounds", "Clip", 3, dyn, 2, 0, NULL, 0, 0, 0, 0);
    dyn[2] = (operand){1, {1}, 1, 0, 0, 0, 0, &six};
    check_case("run-time min, constant max", "Clip", 3, dyn, 1, 0, NULL, 0, 0, 0, 0);
    dyn[1].absent = 1;
    dyn[2] = (operand){0, {0}, 0, 0, 0, 0, 0, &zero};
    check_case("run-time max only", "Clip", 3, dyn, 3, 0, NULL, -FLT_MAX, 0, 0, 0);
    dyn[1] = (operand){0, {0}, 0, 0, 0, 0, 0, &lo};
    dyn[2] = (operand){0, {0}, 0, 0, 0, 0, 0, &hi};
    r = run_case("Clip", 3, dyn, 2, 0, NULL, 0, 0, 8);
    for (size_t i = 0; i < r.n; i++)
        if (r.got[i] != -1.0f) fail_msg("run-time min > max: element %zu is %g", i, r.got[i]);
    free(r.got);
    free(r.ref);
}

/* The broadcasting patterns every binary op runs through: (label, a, b). */
typedef struct pattern {
    const char *label;
    operand a, b;
} pattern;

static void run_patterns(const char *op, float lo, float hi, float blo, float bhi, float gap) {
    const pattern pats[] = {
        {"equal shapes", OPND(4, 0, 0, N, 5, 7, 3), OPND(4, 0, 0, N, 5, 7, 3)},
        {"(N,C,H,W) by (N,C,1,1)", OPND(4, 0, 0, N, 6, 5, 9), OPND(4, 0, 0, N, 6, 1, 1)},
        {"(N,C,H,W) by init (C,1,1)", OPND(4, 0, 0, N, 6, 5, 9), INIT(3, 0, 0, 6, 1, 1)},
        {"(N,C,H,W) by init (1,C,1,1)", OPND(4, 0, 0, N, 3, 4, 5), INIT(4, 0, 0, 1, 3, 1, 1)},
        {"scalar init by (N,C,H,W)", INIT(0, 0, 0, 0), OPND(4, 0, 0, N, 3, 4, 5)},
        {"(N,C,H,W) by init [1]", OPND(4, 0, 0, N, 3, 4, 5), INIT(1, 0, 0, 1)},
        {"rank 2 by init (C)", OPND(2, 0, 0, N, 7), INIT(1, 0, 0, 7)},
        {"(N,1,W) by init (H,1)", OPND(3, 0, 0, N, 1, 5), INIT(2, 0, 0, 3, 1)},
        {"(N,C,H,W) by init (H,1)", OPND(4, 0, 0, N, 3, 4, 5), INIT(2, 0, 0, 4, 1)},
        {"(N,1,H,1) by (N,C,1,W)", OPND(4, 0, 0, N, 1, 4, 1), OPND(4, 0, 0, N, 3, 1, 5)},
        {"init (C,H,W) by (N,C,H,W)", INIT(3, 0, 0, 3, 4, 5), OPND(4, 0, 0, N, 3, 4, 5)},
    };
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        for (int batch = 1; batch <= 3; batch += 2) {
            operand ab[2] = {pats[i].a, pats[i].b};
            ab[0].lo = lo, ab[0].hi = hi;
            ab[1].lo = blo, ab[1].hi = bhi, ab[1].gap = gap;
            check_case(pats[i].label, op, 2, ab, batch, 0, NULL, 0, 0, 1e-6, 1e-5);
        }
}

static void test_binary(void **state) {
    (void)state;
    run_patterns("Add", -3, 3, -3, 3, 0);
    run_patterns("Sub", -3, 3, -3, 3, 0);
    run_patterns("Mul", -3, 3, -3, 3, 0);
    run_patterns("Div", -3, 3, -3, 3, 0.2f);
    run_patterns("Pow", 0.1f, 3, -2.5f, 2.5f, 0);
    run_patterns("Max", -3, 3, -3, 3, 0);
    run_patterns("Min", -3, 3, -3, 3, 0);
    /* Pow of negative bases by integer exponents (ONNX follows C's pow) */
    static const float ex[3] = {2, 3, -1};
    operand ab[2] = {OPND(2, -3, 3, N, 3), {1, {3}, 1, 0, 0, 0, 0, ex}};
    check_case("negative bases", "Pow", 2, ab, 3, 0, NULL, 0, 0, 1e-6, 1e-5);
}

static void test_prelu_variadic(void **state) {
    (void)state;
    /* slopes (C,1,1) and (1,C,1,1) on (N,C,H,W), (C) on (N,C), one shared slope, and a
     * slope that is an activation */
    const operand pr[][2] = {
        {OPND(4, -3, 3, N, 6, 5, 7), INIT(3, -0.5f, 0.5f, 6, 1, 1)},
        {OPND(4, -3, 3, N, 6, 5, 7), INIT(4, -0.5f, 0.5f, 1, 6, 1, 1)},
        {OPND(2, -3, 3, N, 9), INIT(1, -0.5f, 0.5f, 9)},
        {OPND(4, -3, 3, N, 2, 3, 3), INIT(1, 0.1f, 0.3f, 1)},
        {OPND(4, -3, 3, N, 2, 3, 3), OPND(4, 0.1f, 0.3f, N, 2, 1, 1)},
    };
    for (size_t i = 0; i < sizeof pr / sizeof *pr; i++)
        for (int batch = 1; batch <= 3; batch += 2)
            check_case("PRelu", "PRelu", 2, pr[i], batch, 0, NULL, 0, 0, 1e-6, 1e-5);
    /* Max, Min, Sum of 1 and 3 operands with broadcasting and an initializer */
    const operand three[3] = {OPND(4, -3, 3, N, 4, 3, 5), OPND(4, -3, 3, N, 4, 1, 1),
                              INIT(1, -3, 3, 5)};
    const char *vops[] = {"Max", "Min", "Sum"};
    for (int i = 0; i < 3; i++)
        for (int k = 1; k <= 3; k += 2)
            check_case("variadic", vops[i], k, three, 2, 0, NULL, 0, 0, 1e-6, 1e-5);
}

/* A graph with input x (N,2,5,5), a node op reading `in` and output y, checked. */
static clcnn_graph *one_node(const char *op, int n_in, const char *const *in, int na,
                             const clcnn_attr *a) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 2, 5, 5}));
    const char *out = "y";
    TU_OK(clcnn_graph_add_node(g, op, "bad_node", n_in, in, 1, &out, na, a));
    TU_OK(clcnn_graph_add_output(g, "y"));
    return g;
}

static void expect(clcnn_status got, clcnn_status want, const char *needle) {
    if (got != want) fail_msg("status %d (%s), want %d", (int)got, clcnn_last_error(), (int)want);
    if (!strstr(clcnn_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", clcnn_last_error(), needle);
}

static void test_errors(void **state) {
    (void)state;
    /* shapes that do not broadcast, in graph checks */
    clcnn_graph *g = one_node("Mul", 2, (const char *[]){"x", "w"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 2, (int64_t[]){3, 5}, NULL));
    expect(clcnn_graph_check(g), CLCNN_ERR_SHAPE, "'bad_node'");
    assert_non_null(strstr(clcnn_last_error(), "[3,5]"));
    clcnn_graph_free(g);
    /* a PRelu slope that would grow X */
    g = one_node("PRelu", 2, (const char *[]){"x", "s"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "s", CLCNN_F32, 5, (int64_t[]){1, 1, 2, 1, 1}, NULL));
    expect(clcnn_graph_check(g), CLCNN_ERR_SHAPE, "unidirectionally");
    clcnn_graph_free(g);
    /* Clip bounds that are no scalars */
    g = one_node("Clip", 2, (const char *[]){"x", "lo"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "lo", CLCNN_F32, 1, (int64_t[]){2}, NULL));
    expect(clcnn_graph_check(g), CLCNN_ERR_SHAPE, "not a scalar");
    clcnn_graph_free(g);
    /* attribute types */
    TU_OK(clcnn_graph_create(&g));
    const char *out = "y";
    clcnn_attr bad = INT("alpha", 1);
    expect(clcnn_graph_add_node(g, "HardSigmoid", "hs", 1, (const char *[]){"x"}, 1, &out, 1, &bad),
           CLCNN_ERR_INVALID_ARG, "alpha");
    clcnn_attr badmin = INT("min", 0);
    expect(clcnn_graph_add_node(g, "Clip", "c", 1, (const char *[]){"x"}, 1, &out, 1, &badmin),
           CLCNN_ERR_INVALID_ARG, "min");
    expect(
        clcnn_graph_add_node(g, "Sub", "s", 3, (const char *[]){"x", "x", "x"}, 1, &out, 0, NULL),
        CLCNN_ERR_INVALID_ARG, "takes 2..2");
    clcnn_graph_free(g);

    /* what plans cannot run names the node */
    clcnn_plan *p = NULL;
    g = one_node("Clip", 3, (const char *[]){"x", "lo", ""}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "lo", CLCNN_I64, 0, NULL, (int64_t[]){0}));
    expect(clcnn_plan_create(tu_device(), g, 2, NULL, &p), CLCNN_ERR_UNSUPPORTED, "'bad_node'");
    assert_non_null(strstr(clcnn_last_error(), "one float"));
    clcnn_graph_free(g);
    g = one_node("Sigmoid", 1, (const char *[]){"c"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "c", CLCNN_F32, 1, (int64_t[]){3}, NULL));
    expect(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED, "'bad_node'");
    clcnn_graph_free(g);
    g = one_node("Add", 2, (const char *[]){"x", "i"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "i", CLCNN_I64, 1, (int64_t[]){1}, NULL));
    expect(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED, "'bad_node'");
    clcnn_graph_free(g);
    g = one_node("Mul", 2, (const char *[]){"x", "big"}, 0, NULL);
    TU_OK(clcnn_graph_add_initializer(g, "big", CLCNN_F32, 5, (int64_t[]){1, 1, 1, 1, 5}, NULL));
    expect(clcnn_plan_create(tu_device(), g, 1, NULL, &p), CLCNN_ERR_UNSUPPORTED, "dimensions");
    clcnn_graph_free(g);
}

/* Conv -> Clip(0, 6) -> Sigmoid: the element-wise steps write over the value they
 * consume, so the plan needs one activation buffer; results match with reuse off. */
static void test_in_place(void **state) {
    (void)state;
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 3, 9, 9}));
    float w[4 * 3 * 9];
    tu_rng r = tu_rng_seed(5);
    tu_fill_uniform(&r, w, sizeof w / sizeof *w, -2, 2);
    TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 4, (int64_t[]){4, 3, 3, 3}, w));
    static const float lo = 0, hi = 6;
    TU_OK(clcnn_graph_add_initializer(g, "lo", CLCNN_F32, 0, NULL, &lo));
    TU_OK(clcnn_graph_add_initializer(g, "hi", CLCNN_F32, 0, NULL, &hi));
    const char *c = "c", *cl = "cl", *y = "y";
    TU_OK(clcnn_graph_add_node(g, "Conv", "conv", 2, (const char *[]){"x", "w"}, 1, &c, 0, NULL));
    TU_OK(clcnn_graph_add_node(g, "Clip", "relu6", 3, (const char *[]){"c", "lo", "hi"}, 1, &cl, 0,
                               NULL));
    TU_OK(clcnn_graph_add_node(g, "Sigmoid", "sig", 1, (const char *[]){"cl"}, 1, &y, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    float xh[2 * 3 * 81];
    tu_fill_uniform(&r, xh, sizeof xh / sizeof *xh, -1, 1);
    clcnn_tensor *x = tu_tensor_from(4, (size_t[]){2, 3, 9, 9}, xh);
    float *got[2];
    for (int k = 0; k < 2; k++) {
        clcnn_plan_options o = clcnn_plan_options_default();
        o.reuse_buffers = k == 0;
        clcnn_plan *p = NULL;
        TU_OK(clcnn_plan_create(tu_device(), g, 2, &o, &p));
        const clcnn_tensor *in = x;
        TU_OK(clcnn_plan_run(p, &in, 1));
        got[k] = tu_download(clcnn_plan_output(p, 0));
        clcnn_plan_memory m;
        clcnn_plan_get_memory(p, &m);
        assert_int_equal(m.steps, 3);
        if (k == 0)
            assert_int_equal(m.activation_bytes, (2 * 4 * 7 * 7 + 63) / 64 * 64 * sizeof(float));
        if (k == 1) assert_true(m.activation_bytes >= 3 * 2 * 4 * 7 * 7 * sizeof(float));
        assert_non_null(strstr(clcnn_plan_step_desc(p, 1), "[0, 6]"));
        clcnn_plan_free(p);
    }
    /* reference: the convolution in double, then clip and sigmoid */
    ref_conv cv = {.n = 2, .c = 3, .h = 9, .w = 9, .k = 4, .r = 3, .s = 3};
    cv.stride_h = cv.stride_w = cv.dilation_h = cv.dilation_w = cv.groups = 1;
    ref_conv_out(&cv);
    double xd[2 * 3 * 81], wd[4 * 3 * 9], ref[2 * 4 * 49];
    for (size_t i = 0; i < sizeof xd / sizeof *xd; i++)
        xd[i] = xh[i];
    for (size_t i = 0; i < sizeof wd / sizeof *wd; i++)
        wd[i] = w[i];
    ref_conv2d_forward(&cv, xd, wd, NULL, 0, 0.0, ref);
    for (size_t i = 0; i < sizeof ref / sizeof *ref; i++) {
        double v = ref[i] < 0 ? 0 : ref[i] > 6 ? 6 : ref[i];
        ref[i] = 1.0 / (1.0 + exp(-v));
    }
    assert_true(tu_close("conv clip sigmoid", got[0], ref, 2 * 4 * 49, 1e-6, 1e-5));
    assert_memory_equal(got[0], got[1], 2 * 4 * 49 * sizeof(float));
    free(got[0]);
    free(got[1]);
    clcnn_tensor_free(x);
    clcnn_graph_free(g);
}

/* SiLU as PyTorch exports it, Conv -> Sigmoid -> Mul(conv, sigmoid) (either operand
 * order): one plan step (plan.c's fuse_silu) with the unfused plan's exact bytes, also
 * when the convolution's output is read again later; not fused when the Sigmoid's output
 * is read elsewhere too (here a graph output) or the Mul's other operand is not the
 * Sigmoid's input (Mul(sigmoid, sigmoid)). */
static void test_silu(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(6);
    float w[5 * 2 * 9], xh[3 * 2 * 64];
    tu_fill_uniform(&r, w, sizeof w / sizeof *w, -1.5f, 1.5f);
    tu_fill_uniform(&r, xh, sizeof xh / sizeof *xh, -2, 2);
    clcnn_tensor *x = tu_tensor_from(4, (size_t[]){3, 2, 8, 8}, xh);
    /* reference: the convolution (5 x 6x6 outputs per image) in double, then x sigmoid(x) */
    ref_conv cv = {.n = 3, .c = 2, .h = 8, .w = 8, .k = 5, .r = 3, .s = 3};
    cv.stride_h = cv.stride_w = cv.dilation_h = cv.dilation_w = cv.groups = 1;
    ref_conv_out(&cv);
    enum { NY = 3 * 5 * 36 };
    double xd[3 * 2 * 64], wd[5 * 2 * 9], ref[NY], sq[NY], plus[NY];
    for (size_t i = 0; i < sizeof xd / sizeof *xd; i++)
        xd[i] = xh[i];
    for (size_t i = 0; i < sizeof wd / sizeof *wd; i++)
        wd[i] = w[i];
    ref_conv2d_forward(&cv, xd, wd, NULL, 0, 0.0, ref);
    for (int i = 0; i < NY; i++) {
        double sg = 1.0 / (1.0 + exp(-ref[i]));
        sq[i] = sg * sg;
        plus[i] = ref[i] * sg + ref[i];
        ref[i] *= sg;
    }
    /* variant: 0 Mul(c, s), 1 Mul(s, c), 2 the sigmoid also an output, 3 Mul(s, s), 4 the
     * output Add(y, c): c read again after the fused step (it must not be overwritten) */
    for (int v = 0; v < 5; v++) {
        clcnn_graph *g = NULL;
        TU_OK(clcnn_graph_create(&g));
        TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 2, 8, 8}));
        TU_OK(clcnn_graph_add_initializer(g, "w", CLCNN_F32, 4, (int64_t[]){5, 2, 3, 3}, w));
        const char *c = "c", *sg = "s", *y = "y";
        TU_OK(
            clcnn_graph_add_node(g, "Conv", "conv", 2, (const char *[]){"x", "w"}, 1, &c, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Sigmoid", "sig", 1, (const char *[]){"c"}, 1, &sg, 0, NULL));
        const char *ops[2] = {v == 1 || v == 3 ? "s" : "c", v == 1 ? "c" : "s"};
        TU_OK(clcnn_graph_add_node(g, "Mul", "mul", 2, ops, 1, &y, 0, NULL));
        if (v == 4) {
            const char *y2 = "y2";
            TU_OK(clcnn_graph_add_node(g, "Add", "add", 2, (const char *[]){"y", "c"}, 1, &y2, 0,
                                       NULL));
            TU_OK(clcnn_graph_add_output(g, "y2"));
        } else {
            TU_OK(clcnn_graph_add_output(g, "y"));
        }
        if (v == 2) TU_OK(clcnn_graph_add_output(g, "s"));
        float *got[2];
        int steps[2];
        for (int fuse = 1; fuse >= 0; fuse--) {
            clcnn_plan_options o = clcnn_plan_options_default();
            o.fuse = fuse;
            clcnn_plan *p = NULL;
            TU_OK(clcnn_plan_create(tu_device(), g, 3, &o, &p));
            const clcnn_tensor *in = x;
            TU_OK(clcnn_plan_run(p, &in, 1));
            got[fuse] = tu_download(clcnn_plan_output(p, 0));
            clcnn_plan_memory m;
            clcnn_plan_get_memory(p, &m);
            steps[fuse] = m.steps;
            if (fuse && (v < 2 || v == 4))
                assert_non_null(strstr(clcnn_plan_step_desc(p, 1), "SiLU"));
            clcnn_plan_free(p);
        }
        assert_int_equal(steps[1], v < 2 ? 2 : 3);
        assert_int_equal(steps[0], v == 4 ? 4 : 3);
        char what[48];
        snprintf(what, sizeof what, "conv silu variant %d", v);
        assert_true(tu_close(what, got[1], v == 3 ? sq : v == 4 ? plus : ref, NY, 1e-6, 1e-5));
        assert_memory_equal(got[0], got[1], NY * sizeof(float)); /* fused or not, same bytes */
        free(got[0]);
        free(got[1]);
        clcnn_graph_free(g);
    }
    clcnn_tensor_free(x);
}

/* SiLU after a convolution that runs on implicit_gemm or depthwise is that convolution's
 * epilogue (plan.c's silu_after, CC_ACT_SILU: one step, the Sigmoid and the Mul gone) and
 * matches the double reference and the plan without fusion; on another algorithm (direct
 * forced) it stays the SiLU step of its own. variant: 0 a 3x3 convolution with a bias on
 * implicit_gemm, Mul(c, s); 1 a 3x3 depthwise one on depthwise, Mul(s, c); 2 variant 0 on
 * direct. */
static void test_silu_epilogue(void **state) {
    (void)state;
    for (int v = 0; v < 3; v++) {
        int dwise = v == 1, c = dwise ? 6 : 3, k = dwise ? 6 : 7, n = 2, hw = 9;
        tu_rng r = tu_rng_seed(60 + (uint64_t)v);
        clcnn_graph *g = NULL;
        TU_OK(clcnn_graph_create(&g));
        TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, c, hw, hw}));
        float *w = tu_graph_random_init(g, &r, "w", 4, (int64_t[]){k, dwise ? 1 : c, 3, 3}, -1, 1);
        float *b = tu_graph_random_init(g, &r, "b", 1, (int64_t[]){k}, -1, 1);
        clcnn_attr at[] = {INTS("pads", 1, 1, 1, 1), INT("group", dwise ? c : 1)};
        const char *cv = "c", *sg = "s", *y = "y";
        TU_OK(clcnn_graph_add_node(g, "Conv", "conv", 3, (const char *[]){"x", "w", "b"}, 1, &cv, 2,
                                   at));
        TU_OK(clcnn_graph_add_node(g, "Sigmoid", "sig", 1, (const char *[]){"c"}, 1, &sg, 0, NULL));
        const char *ops[2] = {dwise ? "s" : "c", dwise ? "c" : "s"};
        TU_OK(clcnn_graph_add_node(g, "Mul", "mul", 2, ops, 1, &y, 0, NULL));
        TU_OK(clcnn_graph_add_output(g, "y"));
        size_t nx = (size_t)n * c * hw * hw, ny = (size_t)n * k * hw * hw;
        float *xh = malloc(nx * sizeof *xh);
        tu_fill_uniform(&r, xh, nx, -2, 2);
        clcnn_tensor *x = tu_tensor_from(4, (size_t[]){(size_t)n, (size_t)c, hw, hw}, xh);
        ref_conv rc = {.n = n, .c = c, .h = hw, .w = hw, .k = k, .r = 3, .s = 3};
        rc.stride_h = rc.stride_w = rc.dilation_h = rc.dilation_w = rc.pad_h = rc.pad_w = 1;
        rc.groups = dwise ? c : 1;
        assert_true(ref_conv_out(&rc));
        size_t nw = (size_t)k * (dwise ? 1 : c) * 9;
        double *xd = rcp_to_double(xh, nx), *wd = rcp_to_double(w, nw);
        double *bd = rcp_to_double(b, (size_t)k), *ref = malloc(ny * sizeof *ref);
        assert_non_null(ref);
        ref_conv2d_forward(&rc, xd, wd, bd, 0, 0.0, ref);
        for (size_t i = 0; i < ny; i++)
            ref[i] = ref[i] / (1.0 + exp(-ref[i]));
        float *got[2];
        for (int fuse = 1; fuse >= 0; fuse--) {
            clcnn_plan_options o = clcnn_plan_options_default();
            o.fuse = fuse;
            o.conv_algo = v == 2  ? CLCNN_CONV_DIRECT
                          : dwise ? CLCNN_CONV_DEPTHWISE
                                  : CLCNN_CONV_IMPLICIT_GEMM;
            clcnn_plan *p = NULL;
            TU_OK(clcnn_plan_create(tu_device(), g, n, &o, &p));
            const clcnn_tensor *in = x;
            TU_OK(clcnn_plan_run(p, &in, 1));
            got[fuse] = tu_download(clcnn_plan_output(p, 0));
            clcnn_plan_memory m;
            clcnn_plan_get_memory(p, &m);
            int epi = fuse && v < 2;
            assert_int_equal(m.steps, epi ? 1 : fuse ? 2 : 3);
            if (epi) assert_non_null(strstr(clcnn_plan_step_desc(p, 0), "Conv+Sigmoid+Mul"));
            clcnn_plan_free(p);
        }
        char what[48];
        snprintf(what, sizeof what, "conv silu epilogue variant %d", v);
        assert_true(tu_close(what, got[1], ref, ny, 2e-5, 1e-5));
        assert_true(tu_close(what, got[0], ref, ny, 2e-5, 1e-5));
        free(got[0]);
        free(got[1]);
        free(xd);
        free(wd);
        free(bd);
        free(ref);
        free(xh);
        free(w);
        free(b);
        clcnn_tensor_free(x);
        clcnn_graph_free(g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary),  cmocka_unit_test(test_clip),
        cmocka_unit_test(test_binary), cmocka_unit_test(test_prelu_variadic),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_silu),   cmocka_unit_test(test_silu_epilogue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
