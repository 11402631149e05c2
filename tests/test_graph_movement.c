/* The data-movement ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Slice, Split,
 * Concat, Pad, Expand, Tile, Gather) through the graph and plans: seeded random shapes of
 * rank 1-4 with odd sizes, negative axes, the symbolic batch at batch 1 and 3, each run
 * through a plan and compared exactly with a host reference (a pure copy changes no bit).
 * The references index every output element through per-dimension index lists built
 * straight from the ONNX definitions, not through the kernel's start/step form. Errors of
 * bad graphs (perm, axes, shapes, non-constant shape inputs) name the node. */
#include "test_util.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const int64_t N = CLCNN_GRAPH_BATCH;
static const int64_t NB = INT64_MIN; /* the batch inside folded int64 shape data */

/* ---- building graphs ------------------------------------------------------------------ */

static clcnn_graph *graph_with(int ndim, const int64_t *dims) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, ndim, dims));
    return g;
}

static void ints(clcnn_graph *g, const char *name, int n, const int64_t *v) {
    TU_OK(clcnn_graph_add_initializer(g, name, CLCNN_I64, 1, (int64_t[]){n}, v));
}

static void node(clcnn_graph *g, const char *op, int n_in, const char *const *in, int n_out,
                 const char *const *out, int na, const clcnn_attr *a) {
    clcnn_status s = clcnn_graph_add_node(g, op, "mv", n_in, in, n_out, out, na, a);
    if (s != CLCNN_OK) fail_msg("%s: %s", op, clcnn_last_error());
    for (int i = 0; i < n_out; i++)
        TU_OK(clcnn_graph_add_output(g, out[i]));
}

/* ---- references --------------------------------------------------------------------- */

typedef struct host {
    int ndim;
    size_t shape[4];
    size_t numel;
    float *f;  /* as uploaded */
    double *d; /* the same values */
} host;

static host host_rand(tu_rng *r, int ndim, const size_t *shape) {
    host h = {ndim, {0}, 1, NULL, NULL};
    for (int i = 0; i < ndim; i++)
        h.numel *= (h.shape[i] = shape[i]);
    h.f = malloc(h.numel * sizeof *h.f);
    h.d = malloc(h.numel * sizeof *h.d);
    tu_fill_uniform(r, h.f, h.numel, -4.0f, 4.0f);
    for (size_t i = 0; i < h.numel; i++)
        h.d[i] = h.f[i];
    return h;
}

static void host_free(host *h) {
    free(h->f);
    free(h->d);
}

/* y[o] = x[c]: for every output dim d with src[d] >= 0, c[src[d]] = list[d][o_d] (-1: the
 * element is pad); input dims no output dim names are read at 0. */
static double *ref_index(const host *x, int yn, const size_t *ys, const int *src, long **list,
                         double pad, size_t *numel) {
    size_t n = 1;
    for (int d = 0; d < yn; d++)
        n *= ys[d];
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        size_t rest = i, c[4] = {0, 0, 0, 0};
        int inside = 1;
        for (int d = yn - 1; d >= 0; d--) {
            size_t o = rest % ys[d];
            rest /= ys[d];
            if (src[d] < 0) continue;
            long l = list[d][o];
            if (l < 0)
                inside = 0;
            else
                c[src[d]] = (size_t)l;
        }
        size_t xi = 0;
        for (int d = 0; d < x->ndim; d++)
            xi = xi * x->shape[d] + c[d];
        y[i] = inside ? x->d[xi] : pad;
    }
    *numel = n;
    return y;
}

/* ---- running ------------------------------------------------------------------------ */

/* Plan g for the batch of x, run it on x, download output i into outs[i] (malloc'd). */
static void run_plan(clcnn_graph *g, const host *x, int nout, float **outs, size_t *numels,
                     int *steps) {
    clcnn_plan *p = NULL;
    clcnn_status s = clcnn_plan_create(tu_device(), g, (int)x->shape[0], NULL, &p);
    if (s != CLCNN_OK) fail_msg("plan: %s", clcnn_last_error());
    clcnn_tensor *t = tu_tensor_from(x->ndim, x->shape, x->f);
    const clcnn_tensor *in = t;
    TU_OK(clcnn_plan_run(p, &in, 1));
    for (int i = 0; i < nout; i++) {
        outs[i] = tu_download(clcnn_plan_output(p, i));
        numels[i] = clcnn_tensor_numel(clcnn_plan_output(p, i));
    }
    if (steps) *steps = clcnn_plan_num_steps(p);
    clcnn_plan_free(p);
    clcnn_tensor_free(t);
}

/* Run the one-output graph on x and compare exactly with ref (freed). */
static void expect_run(clcnn_graph *g, const host *x, double *ref, size_t n, const char *what) {
    float *got;
    size_t numel;
    run_plan(g, x, 1, &got, &numel, NULL);
    if (numel != n) fail_msg("%s: %zu elements, want %zu", what, numel, n);
    if (!tu_close(what, got, ref, n, 0.0, 0.0)) fail_msg("%s differs", what);
    free(got);
    free(ref);
}

static void expect_dims(clcnn_graph *g, const char *v, int ndim, const int64_t *want) {
    int nd = 0;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    TU_OK(clcnn_graph_check(g));
    TU_OK(clcnn_graph_value_shape(g, v, &nd, dims));
    assert_int_equal(nd, ndim);
    for (int i = 0; i < ndim; i++)
        if (dims[i] != want[i])
            fail_msg("%s: dim %d is %lld, want %lld", v, i, (long long)dims[i], (long long)want[i]);
}

/* A random shape of rank nd, dims 1..7, the first symbolic (gdims[0] = N) when batch. */
static void rand_shape(tu_rng *r, int nd, int batch, int b, size_t *shape, int64_t *gdims) {
    for (int d = 0; d < nd; d++) {
        shape[d] = (size_t)tu_rng_int(r, 1, 7);
        gdims[d] = (int64_t)shape[d];
    }
    if (batch) {
        shape[0] = (size_t)b;
        gdims[0] = N;
    }
}

static long *iota_list(size_t n) {
    long *l = malloc(n * sizeof *l);
    for (size_t i = 0; i < n; i++)
        l[i] = (long)i;
    return l;
}

static void free_lists(long **l, int n) {
    for (int i = 0; i < n; i++)
        free(l[i]);
}

/* The end of one random case. */
static void done(long **list, int nd, host *x, clcnn_graph *g) {
    free_lists(list, nd);
    host_free(x);
    clcnn_graph_free(g);
}

/* ---- Transpose ------------------------------------------------------------------------- */

static void test_transpose(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(1);
    for (int it = 0; it < 12; it++) {
        int nd = 1 + it % 4, batch = it % 3 == 0 && nd > 1, dflt = it % 5 == 4 && !batch;
        size_t xs[4];
        int64_t gd[4], perm[4];
        rand_shape(&r, nd, batch, 1 + 2 * (it % 2), xs, gd);
        for (int d = 0; d < nd; d++)
            perm[d] = dflt ? nd - 1 - d : d;
        for (int d = nd - 1; d > (batch ? 1 : 0) && !dflt; d--) {
            int j = tu_rng_int(&r, batch ? 1 : 0, d);
            int64_t t = perm[d];
            perm[d] = perm[j];
            perm[j] = t;
        }
        clcnn_graph *g = graph_with(nd, gd);
        clcnn_attr a = {"perm", CLCNN_ATTR_INTS, 0, 0.0f, perm, NULL, nd, NULL};
        node(g, "Transpose", 1, (const char *[]){"x"}, 1, (const char *[]){"y"}, dflt ? 0 : 1, &a);
        host x = host_rand(&r, nd, xs);
        size_t ys[4];
        int src[4];
        long *list[4];
        for (int d = 0; d < nd; d++) {
            src[d] = (int)perm[d];
            ys[d] = xs[perm[d]];
            list[d] = iota_list(ys[d]);
        }
        size_t n;
        double *ref = ref_index(&x, nd, ys, src, list, 0.0, &n);
        expect_run(g, &x, ref, n, "Transpose");
        done(list, nd, &x, g);
    }
}

/* ---- Slice ------------------------------------------------------------------------- */

/* The indices an ONNX Slice takes from a dim of d (negative starts/ends count from the
 * end, then clamp), by walking them. */
static size_t slice_list(int64_t d, int64_t s, int64_t e, int64_t step, long *out) {
    if (s < 0) s += d;
    if (e < 0) e += d;
    size_t n = 0;
    if (step > 0) {
        s = s < 0 ? 0 : s > d ? d : s;
        e = e < 0 ? 0 : e > d ? d : e;
        for (int64_t i = s; i < e; i += step)
            out[n++] = (long)i;
    } else {
        s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
        e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
        for (int64_t i = s; i > e; i += step)
            out[n++] = (long)i;
    }
    return n;
}

static void test_slice(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(2);
    static const int64_t far[] = {INT64_MAX, INT64_MIN, 100, -100};
    for (int it = 0; it < 16; it++) {
        int nd = 1 + it % 4, batch = it % 4 == 1 && nd > 1, attr_form = it == 5;
        size_t xs[4];
        int64_t gd[4];
        rand_shape(&r, nd, batch, 1 + 2 * (it % 2), xs, gd);
        int64_t st[4], en[4], ax[4], sp[4];
        int k = 0;
        long *list[4] = {NULL, NULL, NULL, NULL};
        size_t ys[4];
        int src[4];
        for (int d = 0; d < nd; d++) {
            src[d] = d;
            list[d] = malloc((xs[d] + 1) * sizeof(long));
            if ((batch && d == 0) || tu_rng_int(&r, 0, 3) == 0) {
                ys[d] = slice_list((int64_t)xs[d], 0, INT64_MAX, 1, list[d]);
                continue;
            }
            int64_t dd = (int64_t)xs[d];
            int64_t step = attr_form ? 1 : tu_rng_int(&r, 1, 3) * (tu_rng_int(&r, 0, 1) ? 1 : -1);
            int64_t s, e;
            size_t n = 0;
            while (n == 0) { /* random until not empty */
                s = tu_rng_int(&r, 0, 5) == 0 ? far[tu_rng_int(&r, 0, 3)]
                                              : tu_rng_int(&r, -(int)dd - 1, (int)dd);
                e = tu_rng_int(&r, 0, 4) == 0 ? far[tu_rng_int(&r, 0, 3)]
                                              : tu_rng_int(&r, -(int)dd - 1, (int)dd);
                n = slice_list(dd, s, e, step, list[d]);
            }
            ys[d] = n;
            st[k] = s;
            en[k] = e;
            sp[k] = step;
            ax[k] = tu_rng_int(&r, 0, 1) ? d : d - nd; /* negative axes too */
            k++;
        }
        if (k == 0 && !batch) { /* at least one sliced axis: the last, reversed */
            int d = nd - 1;
            ys[d] = slice_list((int64_t)xs[d], -1, INT64_MIN, -1, list[d]);
            st[0] = -1, en[0] = INT64_MIN, sp[0] = -1, ax[0] = d, k = 1;
        }
        clcnn_graph *g = graph_with(nd, gd);
        if (k == 0) { /* batch only: slice all of it */
            st[0] = 0, en[0] = INT64_MAX, sp[0] = 1, ax[0] = 0, k = 1;
        }
        if (attr_form) {
            clcnn_attr a[3] = {{"starts", CLCNN_ATTR_INTS, 0, 0.0f, st, NULL, k, NULL},
                               {"ends", CLCNN_ATTR_INTS, 0, 0.0f, en, NULL, k, NULL},
                               {"axes", CLCNN_ATTR_INTS, 0, 0.0f, ax, NULL, k, NULL}};
            node(g, "Slice", 1, (const char *[]){"x"}, 1, (const char *[]){"y"}, 3, a);
        } else {
            ints(g, "st", k, st);
            ints(g, "en", k, en);
            ints(g, "ax", k, ax);
            ints(g, "sp", k, sp);
            node(g, "Slice", 5, (const char *[]){"x", "st", "en", "ax", "sp"}, 1,
                 (const char *[]){"y"}, 0, NULL);
        }
        host x = host_rand(&r, nd, xs);
        size_t n;
        double *ref = ref_index(&x, nd, ys, src, list, 0.0, &n);
        expect_run(g, &x, ref, n, "Slice");
        done(list, nd, &x, g);
    }
}

/* ---- Pad --------------------------------------------------------------------------- */

static long pad_index(long i, long d, int mode) {
    if (i >= 0 && i < d) return i;
    if (mode == 1) return i < 0 ? 0 : d - 1;            /* edge */
    if (mode == 2) return i < 0 ? -i : 2 * (d - 1) - i; /* reflect, pads < d */
    return -1;
}

static void test_pad(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(3);
    static const char *modes[] = {"constant", "edge", "reflect"};
    for (int it = 0; it < 12; it++) {
        int nd = 1 + it % 4, batch = it % 3 == 2 && nd > 1, mode = it % 3;
        int attr_form = it == 4, with_axes = it == 7;
        size_t xs[4];
        int64_t gd[4], pads[8];
        rand_shape(&r, nd, batch, 1 + 2 * (it % 2), xs, gd);
        for (int d = 0; d < nd; d++)
            if (mode == 2 && xs[d] < 2 && !(batch && d == 0)) xs[d] = gd[d] = 3;
        size_t ys[4];
        int src[4];
        long *list[4];
        for (int d = 0; d < nd; d++) {
            long dd = (long)xs[d];
            long lo = 0, hi = 0;
            if (!(batch && d == 0)) {
                long maxp = mode == 2 ? dd - 1 : 3;
                lo = tu_rng_int(&r, mode == 0 ? -(int)(dd - 1) / 2 : 0, (int)maxp);
                hi = tu_rng_int(&r, mode == 0 ? -(int)(dd - 1) / 2 : 0, (int)maxp);
            }
            pads[d] = lo;
            pads[d + nd] = hi;
            src[d] = d;
            ys[d] = (size_t)(dd + lo + hi);
            list[d] = malloc(ys[d] * sizeof(long));
            for (long o = 0; o < (long)ys[d]; o++)
                list[d][o] = pad_index(o - lo, dd, mode);
        }
        clcnn_graph *g = graph_with(nd, gd);
        float value = mode == 0 ? tu_rng_uniform(&r, -9.0f, 9.0f) : 0.0f;
        clcnn_attr m = STR("mode", modes[mode]);
        if (attr_form) {
            clcnn_attr a[3] = {m,
                               {"pads", CLCNN_ATTR_INTS, 0, 0.0f, pads, NULL, 2 * nd, NULL},
                               FLOAT("value", value)};
            node(g, "Pad", 1, (const char *[]){"x"}, 1, (const char *[]){"y"}, 3, a);
        } else {
            ints(g, "pads", 2 * nd, pads);
            TU_OK(clcnn_graph_add_initializer(g, "v", CLCNN_F32, 0, NULL, &value));
            if (with_axes) { /* opset 18: every axis named, negative */
                int64_t ax[4];
                for (int d = 0; d < nd; d++)
                    ax[d] = d - nd;
                ints(g, "ax", nd, ax);
            }
            node(g, "Pad", with_axes ? 4 : 3,
                 (const char *[]){"x", "pads", mode == 0 ? "v" : "", "ax"}, 1,
                 (const char *[]){"y"}, 1, &m);
        }
        host x = host_rand(&r, nd, xs);
        size_t n;
        double *ref = ref_index(&x, nd, ys, src, list, value, &n);
        expect_run(g, &x, ref, n, modes[mode]);
        done(list, nd, &x, g);
    }
}

/* ---- Concat and Split along every axis ------------------------------------------------ */

static void test_concat_split(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(4);
    for (int it = 0; it < 12; it++) {
        int nd = 1 + it % 4, batch = it % 2 && nd > 1;
        int axis = tu_rng_int(&r, batch ? 1 : 0, nd - 1);
        size_t xs[4];
        int64_t gd[4];
        rand_shape(&r, nd, batch, 1 + 2 * (it % 3 == 0), xs, gd);
        /* x is split into k parts along axis (sizes given or equal), the parts are
         * concatenated back in reverse order: y */
        int k = tu_rng_int(&r, 2, 3), given = it % 3 != 1;
        if (given && xs[axis] < (size_t)k) xs[axis] = gd[axis] = (int64_t)k + 2;
        if (!given) xs[axis] = gd[axis] = (int64_t)k * tu_rng_int(&r, 1, 3);
        int64_t sizes[3], left = (int64_t)xs[axis];
        for (int i = 0; i < k; i++) {
            sizes[i] = i == k - 1 ? left
                       : given    ? tu_rng_int(&r, 1, (int)(left - (k - 1 - i)))
                                  : left / (k - i);
            left -= sizes[i];
        }
        clcnn_graph *g = graph_with(nd, gd);
        const char *parts[3] = {"p0", "p1", "p2"}, *rev[3];
        clcnn_attr ax = INT("axis", tu_rng_int(&r, 0, 1) ? axis : axis - nd);
        if (given) ints(g, "split", k, sizes);
        TU_OK(clcnn_graph_add_node(g, "Split", "split", given ? 2 : 1,
                                   (const char *[]){"x", "split"}, k, parts, 1, &ax));
        for (int i = 0; i < k; i++)
            rev[i] = parts[k - 1 - i];
        TU_OK(clcnn_graph_add_node(g, "Concat", "cat", k, rev, 1, (const char *[]){"y"}, 1, &ax));
        TU_OK(clcnn_graph_add_output(g, "y"));
        TU_OK(clcnn_graph_add_output(g, "p1"));
        host x = host_rand(&r, nd, xs);
        /* reference: y's index along axis maps to the reversed parts */
        size_t ys[4];
        int src[4];
        long *list[4];
        for (int d = 0; d < nd; d++) {
            src[d] = d;
            ys[d] = xs[d];
            list[d] = iota_list(xs[d]);
        }
        long o = 0, start[3];
        for (int i = 0, at = 0; i < k; at += (int)sizes[i], i++)
            start[i] = at;
        for (int i = k - 1; i >= 0; i--)
            for (long j = 0; j < sizes[i]; j++)
                list[axis][o++] = start[i] + j;
        size_t n;
        double *ref = ref_index(&x, nd, ys, src, list, 0.0, &n);
        float *got[2];
        size_t numel[2];
        run_plan(g, &x, 2, got, numel, NULL);
        assert_int_equal(numel[0], n);
        if (!tu_close("Split+Concat", got[0], ref, n, 0.0, 0.0)) fail_msg("iteration %d", it);
        /* p1 alone */
        list[axis] = realloc(list[axis], (size_t)sizes[1] * sizeof(long));
        for (long j = 0; j < sizes[1]; j++)
            list[axis][j] = start[1] + j;
        ys[axis] = (size_t)sizes[1];
        free(ref);
        ref = ref_index(&x, nd, ys, src, list, 0.0, &n);
        assert_int_equal(numel[1], n);
        if (!tu_close("Split part 1", got[1], ref, n, 0.0, 0.0)) fail_msg("iteration %d", it);
        free(ref);
        free(got[0]);
        free(got[1]);
        done(list, nd, &x, g);
    }
}

/* Split with opset 18's num_outputs (the last part smaller) and an output nobody reads. */
static void test_split_uneven(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(5);
    clcnn_graph *g = graph_with(2, (int64_t[]){N, 7});
    TU_OK(clcnn_graph_add_node(g, "Split", "s", 1, (const char *[]){"x"}, 3,
                               (const char *[]){"a", "b", "c"}, 2,
                               (clcnn_attr[]){INT("axis", -1), INT("num_outputs", 3)}));
    TU_OK(clcnn_graph_add_output(g, "c"));
    TU_OK(clcnn_graph_add_output(g, "a"));
    expect_dims(g, "a", 2, (int64_t[]){N, 3});
    expect_dims(g, "b", 2, (int64_t[]){N, 3});
    expect_dims(g, "c", 2, (int64_t[]){N, 1});
    host x = host_rand(&r, 2, (size_t[]){3, 7});
    float *got[2];
    size_t numel[2];
    int steps;
    run_plan(g, &x, 2, got, numel, &steps);
    assert_int_equal(steps, 2); /* b is read by nobody: no step */
    for (int i = 0; i < 3; i++) {
        assert_true(got[0][i] == x.f[i * 7 + 6]);
        for (int j = 0; j < 3; j++)
            assert_true(got[1][i * 3 + j] == x.f[i * 7 + j]);
    }
    free(got[0]);
    free(got[1]);
    host_free(&x);
    clcnn_graph_free(g);
}

/* ---- views: Reshape, Flatten, Squeeze, Unsqueeze ---------------------------------------- */

static void test_views(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(6);
    /* [N,2048,1,1] -> Reshape [0,-1] and the PyTorch export [N,-1] (folded) */
    static const int64_t shapes[][4] = {{0, -1}, {NB, -1}, {-1, 2048}, {NB, 32, 0, 64}};
    static const int nshape[] = {2, 2, 2, 4};
    static const int64_t want[][4] = {{N, 2048}, {N, 2048}, {N, 2048}, {N, 32, 1, 64}};
    for (int c = 0; c < 4; c++) {
        clcnn_graph *g = graph_with(4, (int64_t[]){N, 2048, 1, 1});
        ints(g, "shape", nshape[c], shapes[c]);
        node(g, "Reshape", 2, (const char *[]){"x", "shape"}, 1, (const char *[]){"y"}, 0, NULL);
        expect_dims(g, "y", nshape[c], want[c]);
        clcnn_graph_free(g);
    }
    /* a chain of views ending in a copy, and a view as the graph output:
     * x [N,3,1,5] -Squeeze(axes input [-2])-> [N,3,5] -Unsqueeze(axes attribute [-3])->
     * [N,1,3,5] -Reshape [NB,-1,5]-> [N,3,5] -Transpose [0,2,1]-> t [N,5,3]
     * -Reshape [0,15]-> f [N,15] (a view of t) */
    for (int b = 1; b <= 3; b += 2) {
        clcnn_graph *g = graph_with(4, (int64_t[]){N, 3, 1, 5});
        ints(g, "sq", 1, (int64_t[]){-2});
        ints(g, "rs", 3, (int64_t[]){NB, -1, 5});
        ints(g, "rf", 2, (int64_t[]){0, 15});
        TU_OK(clcnn_graph_add_node(g, "Squeeze", "sq", 2, (const char *[]){"x", "sq"}, 1,
                                   (const char *[]){"a"}, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Unsqueeze", "us", 1, (const char *[]){"a"}, 1,
                                   (const char *[]){"b"}, 1, (clcnn_attr[]){INTS("axes", -3)}));
        TU_OK(clcnn_graph_add_node(g, "Reshape", "rs", 2, (const char *[]){"b", "rs"}, 1,
                                   (const char *[]){"c"}, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Transpose", "tr", 1, (const char *[]){"c"}, 1,
                                   (const char *[]){"t"}, 1,
                                   (clcnn_attr[]){INTS("perm", 0, 2, 1)}));
        TU_OK(clcnn_graph_add_node(g, "Reshape", "rf", 2, (const char *[]){"t", "rf"}, 1,
                                   (const char *[]){"f"}, 0, NULL));
        TU_OK(clcnn_graph_add_output(g, "f"));
        expect_dims(g, "a", 3, (int64_t[]){N, 3, 5});
        expect_dims(g, "b", 4, (int64_t[]){N, 1, 3, 5});
        expect_dims(g, "c", 3, (int64_t[]){N, 3, 5});
        expect_dims(g, "f", 2, (int64_t[]){N, 15});
        host x = host_rand(&r, 4, (size_t[]){(size_t)b, 3, 1, 5});
        float *got;
        size_t numel;
        int steps;
        run_plan(g, &x, 1, &got, &numel, &steps);
        assert_int_equal(steps, 1); /* only the Transpose copies */
        assert_int_equal(numel, (size_t)b * 15);
        for (int i = 0; i < b; i++)
            for (int w = 0; w < 5; w++)
                for (int c = 0; c < 3; c++)
                    assert_true(got[i * 15 + w * 3 + c] == x.f[i * 15 + c * 5 + w]);
        free(got);
        host_free(&x);
        clcnn_graph_free(g);
    }
    /* Flatten keeps the batch for any axis whose leading dims are 1; Squeeze without
     * axes drops every 1 but the batch */
    clcnn_graph *g = graph_with(4, (int64_t[]){N, 1, 4, 1});
    node(g, "Flatten", 1, (const char *[]){"x"}, 1, (const char *[]){"f"}, 1,
         (clcnn_attr[]){INT("axis", 2)});
    TU_OK(clcnn_graph_add_node(g, "Squeeze", "sq", 1, (const char *[]){"x"}, 1,
                               (const char *[]){"s"}, 0, NULL));
    expect_dims(g, "f", 2, (int64_t[]){N, 4});
    expect_dims(g, "s", 2, (int64_t[]){N, 4});
    clcnn_graph_free(g);
}

/* ---- Expand, Tile, Gather ---------------------------------------------------------- */

static void test_expand_tile_gather(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(7);
    for (int b = 1; b <= 3; b += 2) {
        /* Expand [N,3,1] by [1,1,3,4] -> [N,3,3,4]? no: ranks align right:
         * x [N,1,5] with shape [NB,4,1] -> [N,4,5] */
        clcnn_graph *g = graph_with(3, (int64_t[]){N, 1, 5});
        ints(g, "s", 3, (int64_t[]){NB, 4, 1});
        node(g, "Expand", 2, (const char *[]){"x", "s"}, 1, (const char *[]){"y"}, 0, NULL);
        expect_dims(g, "y", 3, (int64_t[]){N, 4, 5});
        host x = host_rand(&r, 3, (size_t[]){(size_t)b, 1, 5});
        long *list[3] = {iota_list((size_t)b), calloc(4, sizeof(long)), iota_list(5)};
        size_t n;
        double *ref = ref_index(&x, 3, (size_t[]){(size_t)b, 4, 5}, (int[]){0, 1, 2}, list, 0, &n);
        expect_run(g, &x, ref, n, "Expand");
        done(list, 3, &x, g);
    }
    /* Expand to a higher rank without a batch: [3,1] by [2,1,4] -> [2,3,4] */
    {
        clcnn_graph *g = graph_with(2, (int64_t[]){3, 1});
        ints(g, "s", 3, (int64_t[]){2, 1, 4});
        node(g, "Expand", 2, (const char *[]){"x", "s"}, 1, (const char *[]){"y"}, 0, NULL);
        host x = host_rand(&r, 2, (size_t[]){3, 1});
        long *list[3] = {iota_list(2), iota_list(3), calloc(4, sizeof(long))};
        size_t n;
        double *ref = ref_index(&x, 3, (size_t[]){2, 3, 4}, (int[]){-1, 0, 1}, list, 0, &n);
        expect_run(g, &x, ref, n, "Expand rank 3");
        done(list, 3, &x, g);
    }
    /* Tile [N,3,2] by [1,2,3] */
    {
        clcnn_graph *g = graph_with(3, (int64_t[]){N, 3, 2});
        ints(g, "rep", 3, (int64_t[]){1, 2, 3});
        node(g, "Tile", 2, (const char *[]){"x", "rep"}, 1, (const char *[]){"y"}, 0, NULL);
        host x = host_rand(&r, 3, (size_t[]){3, 3, 2});
        long *list[3] = {iota_list(3), malloc(6 * sizeof(long)), malloc(6 * sizeof(long))};
        for (int i = 0; i < 6; i++) {
            list[1][i] = i % 3;
            list[2][i] = i % 2;
        }
        size_t n;
        double *ref = ref_index(&x, 3, (size_t[]){3, 6, 6}, (int[]){0, 1, 2}, list, 0, &n);
        expect_run(g, &x, ref, n, "Tile");
        done(list, 3, &x, g);
    }
    /* Gather along axis 1 (negative, repeated and evenly stepped indices) and a 2-D index
     * tensor along the last axis */
    {
        static const int64_t idx[] = {0, -1, 2, 4, 6, 6, 6, 5, 4, 1};
        clcnn_graph *g = graph_with(3, (int64_t[]){N, 7, 3});
        ints(g, "i", 10, idx);
        node(g, "Gather", 2, (const char *[]){"x", "i"}, 1, (const char *[]){"y"}, 1,
             (clcnn_attr[]){INT("axis", -2)});
        host x = host_rand(&r, 3, (size_t[]){3, 7, 3});
        long *list[3] = {iota_list(3), malloc(10 * sizeof(long)), iota_list(3)};
        for (int i = 0; i < 10; i++)
            list[1][i] = (long)(idx[i] < 0 ? idx[i] + 7 : idx[i]);
        size_t n;
        double *ref = ref_index(&x, 3, (size_t[]){3, 10, 3}, (int[]){0, 1, 2}, list, 0, &n);
        expect_run(g, &x, ref, n, "Gather");
        done(list, 3, &x, g);
    }
    {
        clcnn_graph *g = graph_with(2, (int64_t[]){N, 5});
        TU_OK(clcnn_graph_add_initializer(g, "i", CLCNN_I64, 2, (int64_t[]){2, 2},
                                          (int64_t[]){4, 0, -2, 1}));
        node(g, "Gather", 2, (const char *[]){"x", "i"}, 1, (const char *[]){"y"}, 1,
             (clcnn_attr[]){INT("axis", 1)});
        expect_dims(g, "y", 3, (int64_t[]){N, 2, 2});
        host x = host_rand(&r, 2, (size_t[]){2, 5});
        float *got;
        size_t numel;
        run_plan(g, &x, 1, &got, &numel, NULL);
        static const int at[] = {4, 0, 3, 1};
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                assert_true(got[i * 4 + j] == x.f[i * 5 + at[j]]);
        free(got);
        host_free(&x);
        clcnn_graph_free(g);
    }
}

/* ---- errors --------------------------------------------------------------------------- */

/* The graph check (or the plan, when plan) fails with want and a message naming node
 * "mv" and holding needle. */
static void expect_error(clcnn_graph *g, int plan, clcnn_status want, const char *needle) {
    tu_expect_graph_error(g, plan ? 2 : 0, want, needle);
}

static clcnn_graph *x4(void) {
    return graph_with(4, (int64_t[]){N, 2, 3, 4});
}

/* x4 -> op with inputs {"x", extra} and attributes -> "y" (the node added as given). */
static clcnn_graph *one(const char *op, const char *extra, int na, const clcnn_attr *a,
                        clcnn_graph *g) {
    TU_OK(clcnn_graph_add_node(g, op, "mv", extra ? 2 : 1, (const char *[]){"x", extra}, 1,
                               (const char *[]){"y"}, na, a));
    TU_OK(clcnn_graph_add_output(g, "y"));
    return g;
}

static clcnn_graph *with_ints(const char *name, int n, const int64_t *v) {
    clcnn_graph *g = x4();
    ints(g, name, n, v);
    return g;
}

static void test_errors(void **state) {
    (void)state;
    clcnn_graph *g = x4();
    /* a perm that is no permutation fails when the node is added */
    clcnn_status s =
        clcnn_graph_add_node(g, "Transpose", "mv", 1, (const char *[]){"x"}, 1,
                             (const char *[]){"y"}, 1, (clcnn_attr[]){INTS("perm", 0, 1, 1, 3)});
    assert_int_equal(s, CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "permutation"));
    s = clcnn_graph_add_node(g, "Pad", "mv", 1, (const char *[]){"x"}, 1, (const char *[]){"y"}, 1,
                             (clcnn_attr[]){STR("mode", "mirror")});
    assert_int_equal(s, CLCNN_ERR_INVALID_ARG);
    clcnn_graph_free(g);
    expect_error(one("Transpose", NULL, 1, (clcnn_attr[]){INTS("perm", 0, 2, 1)}, x4()), 0,
                 CLCNN_ERR_INVALID_ARG, "perm has 3 values");
    expect_error(one("Transpose", NULL, 1, (clcnn_attr[]){INTS("perm", 1, 0, 2, 3)}, x4()), 0,
                 CLCNN_ERR_UNSUPPORTED, "batch");
    expect_error(one("Squeeze", NULL, 1, (clcnn_attr[]){INTS("axes", 4)}, x4()), 0,
                 CLCNN_ERR_INVALID_ARG, "out of range");
    expect_error(one("Squeeze", NULL, 1, (clcnn_attr[]){INTS("axes", 2)}, x4()), 0, CLCNN_ERR_SHAPE,
                 "not 1");
    expect_error(one("Squeeze", NULL, 1, (clcnn_attr[]){INTS("axes", 0)}, x4()), 0,
                 CLCNN_ERR_UNSUPPORTED, "batch");
    expect_error(one("Unsqueeze", NULL, 1, (clcnn_attr[]){INTS("axes", 1, -5)}, x4()), 0,
                 CLCNN_ERR_INVALID_ARG, "twice");
    expect_error(one("Unsqueeze", NULL, 1, (clcnn_attr[]){INTS("axes", 0)}, x4()), 0,
                 CLCNN_ERR_UNSUPPORTED, "batch");
    expect_error(one("Reshape", "s", 0, NULL, with_ints("s", 3, (int64_t[]){0, -1, -1})), 0,
                 CLCNN_ERR_INVALID_ARG, "at most one");
    expect_error(one("Reshape", "s", 0, NULL, with_ints("s", 3, (int64_t[]){0, 5, 5})), 0,
                 CLCNN_ERR_SHAPE, "element count");
    expect_error(one("Reshape", "s", 0, NULL, with_ints("s", 3, (int64_t[]){0, 5, -1})), 0,
                 CLCNN_ERR_SHAPE, "do not divide");
    expect_error(one("Reshape", "s", 0, NULL, with_ints("s", 1, (int64_t[]){-1})), 0,
                 CLCNN_ERR_UNSUPPORTED, "batch");
    expect_error(one("Reshape", "s", 0, NULL, with_ints("s", 2, (int64_t[]){2, -1})), 0,
                 CLCNN_ERR_UNSUPPORTED, "batch");
    {
        g = graph_with(2, (int64_t[]){6, 4});
        ints(g, "s", 2, (int64_t[]){NB, -1});
        expect_error(one("Reshape", "s", 0, NULL, g), 0, CLCNN_ERR_SHAPE, "has none");
    }
    /* shape inputs that are not int64 initializers */
    g = x4();
    TU_OK(clcnn_graph_add_input(g, "s", CLCNN_I64, 1, (int64_t[]){2}));
    expect_error(one("Reshape", "s", 0, NULL, g), 0, CLCNN_ERR_UNSUPPORTED, "int64 initializer");
    g = x4();
    TU_OK(clcnn_graph_add_initializer(g, "s", CLCNN_F32, 1, (int64_t[]){2}, NULL));
    expect_error(one("Reshape", "s", 0, NULL, g), 0, CLCNN_ERR_UNSUPPORTED, "int64 initializer");
    g = x4();
    TU_OK(clcnn_graph_add_node(g, "Relu", "r", 1, (const char *[]){"x"}, 1, (const char *[]){"ax"},
                               0, NULL));
    expect_error(one("Unsqueeze", "ax", 0, NULL, g), 0, CLCNN_ERR_UNSUPPORTED, "initializer");
    /* Slice */
    g = with_ints("st", 1, (int64_t[]){2});
    ints(g, "en", 1, (int64_t[]){1});
    ints(g, "ax", 1, (int64_t[]){-1});
    TU_OK(clcnn_graph_add_node(g, "Slice", "mv", 4, (const char *[]){"x", "st", "en", "ax"}, 1,
                               (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 0, CLCNN_ERR_SHAPE, "empty");
    g = with_ints("st", 2, (int64_t[]){0, 0});
    ints(g, "en", 1, (int64_t[]){1});
    TU_OK(clcnn_graph_add_node(g, "Slice", "mv", 3, (const char *[]){"x", "st", "en"}, 1,
                               (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 0, CLCNN_ERR_INVALID_ARG, "starts, ends");
    /* Split, Pad, Tile, Gather, Expand */
    g = x4();
    TU_OK(clcnn_graph_add_node(g, "Split", "mv", 1, (const char *[]){"x"}, 2,
                               (const char *[]){"y", "z"}, 1, (clcnn_attr[]){INT("axis", 2)}));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 0, CLCNN_ERR_SHAPE, "equal parts");
    expect_error(one("Pad", "p", 0, NULL, with_ints("p", 6, (int64_t[]){0, 0, 0, 0, 0, 0})), 0,
                 CLCNN_ERR_INVALID_ARG, "2 per axis");
    expect_error(one("Pad", "p", 0, NULL, with_ints("p", 8, (int64_t[]){1, 0, 0, 0, 0, 0, 0, 0})),
                 0, CLCNN_ERR_UNSUPPORTED, "batch");
    expect_error(one("Tile", "r", 0, NULL, with_ints("r", 3, (int64_t[]){1, 1, 1})), 0,
                 CLCNN_ERR_INVALID_ARG, "repeats");
    expect_error(
        one("Gather", "i", 1, (clcnn_attr[]){INT("axis", 2)}, with_ints("i", 2, (int64_t[]){0, 3})),
        0, CLCNN_ERR_INVALID_ARG, "out of range");
    expect_error(one("Expand", "s", 0, NULL, with_ints("s", 2, (int64_t[]){2, 4})), 0,
                 CLCNN_ERR_SHAPE, "broadcast");
    /* plans: a view of an initializer, a constant Concat operand */
    g = x4();
    TU_OK(clcnn_graph_add_initializer(g, "c", CLCNN_F32, 1, (int64_t[]){24}, NULL));
    ints(g, "s", 4, (int64_t[]){1, 2, 3, 4});
    TU_OK(clcnn_graph_add_node(g, "Reshape", "mv", 2, (const char *[]){"c", "s"}, 1,
                               (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_node(g, "Add", "add", 2, (const char *[]){"x", "y"}, 1,
                               (const char *[]){"z"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "z"));
    expect_error(g, 1, CLCNN_ERR_UNSUPPORTED, "initializer");
    g = graph_with(4, (int64_t[]){2, 2, 3, 4});
    TU_OK(clcnn_graph_add_initializer(g, "c", CLCNN_F32, 4, (int64_t[]){2, 2, 3, 4}, NULL));
    TU_OK(clcnn_graph_add_node(g, "Concat", "mv", 2, (const char *[]){"x", "c"}, 1,
                               (const char *[]){"y"}, 1, (clcnn_attr[]){INT("axis", 3)}));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 1, CLCNN_ERR_UNSUPPORTED, "constant");
}

/* The copy launcher refuses boxes that leave their tensors before queueing anything. */
static void test_copy_bounds(void **state) {
    (void)state;
    clcnn_tensor *x = tu_tensor_new(CLCNN_F32, 2, (size_t[]){3, 4});
    clcnn_tensor *y = tu_tensor_new(CLCNN_F32, 2, (size_t[]){4, 3});
    cc_copy_nd d;
    cc_copy_nd_dense(&d, 2, (size_t[]){4, 3});
    d.x_stride[0] = 1;
    d.x_stride[1] = 4; /* transpose: fits */
    d.lim[0] = 4;
    d.lim[1] = 3;
    TU_OK(cc_copy_nd_run(tu_device(), &d, x, y));
    d.y_off = 1; /* one past y's end */
    assert_int_equal(cc_copy_nd_run(tu_device(), &d, x, y), CLCNN_ERR_SHAPE);
    d.y_off = 0;
    d.lim[1] = 4; /* may read past x */
    assert_int_equal(cc_copy_nd_run(tu_device(), &d, x, y), CLCNN_ERR_SHAPE);
    clcnn_tensor_free(x);
    clcnn_tensor_free(y);
}

/* PyTorch's channel shuffle: Reshape [N,C,H,W] -> [N,g,C/g,H,W], Transpose [0,2,1,3,4],
 * Reshape back. The 5-D values are views and a copy whose last two dims merge into one;
 * y[n, i*g + j] = x[n, j*(C/g) + i]. A 5-D Transpose that keeps all dims apart is refused. */
static void test_channel_shuffle(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(31);
    const int gr = 3, cg = 4, h = 3, w = 5, c = gr * cg;
    for (int b = 1; b <= 2; b++) {
        clcnn_graph *g = graph_with(4, (int64_t[]){N, c, h, w});
        ints(g, "s5", 5, (int64_t[]){NB, gr, cg, h, w});
        ints(g, "s4", 4, (int64_t[]){NB, c, h, w});
        TU_OK(clcnn_graph_add_node(g, "Reshape", "r5", 2, (const char *[]){"x", "s5"}, 1,
                                   (const char *[]){"a"}, 0, NULL));
        TU_OK(clcnn_graph_add_node(g, "Transpose", "t", 1, (const char *[]){"a"}, 1,
                                   (const char *[]){"b"}, 1,
                                   (clcnn_attr[]){INTS("perm", 0, 2, 1, 3, 4)}));
        node(g, "Reshape", 2, (const char *[]){"b", "s4"}, 1, (const char *[]){"y"}, 0, NULL);
        host x = host_rand(&r, 4, (size_t[]){(size_t)b, (size_t)c, (size_t)h, (size_t)w});
        size_t n = x.numel, hw = (size_t)(h * w);
        double *ref = malloc(n * sizeof *ref);
        for (size_t i = 0; i < n; i++) {
            size_t bn = i / (c * hw), ch = i / hw % c, k = i % hw;
            size_t src = (size_t)(ch % gr) * cg + ch / gr;
            ref[i] = x.d[(bn * c + src) * hw + k];
        }
        expect_run(g, &x, ref, n, "channel shuffle");
        host_free(&x);
        clcnn_graph_free(g);
    }
    clcnn_graph *g = graph_with(4, (int64_t[]){N, c, h, w});
    ints(g, "s5", 5, (int64_t[]){NB, gr, cg, h, w});
    TU_OK(clcnn_graph_add_node(g, "Reshape", "r5", 2, (const char *[]){"x", "s5"}, 1,
                               (const char *[]){"a"}, 0, NULL));
    TU_OK(clcnn_graph_add_node(g, "Transpose", "mv", 1, (const char *[]){"a"}, 1,
                               (const char *[]){"b"}, 1,
                               (clcnn_attr[]){INTS("perm", 0, 4, 3, 2, 1)}));
    ints(g, "s4", 4, (int64_t[]){NB, w, h, c});
    TU_OK(clcnn_graph_add_node(g, "Reshape", "r4", 2, (const char *[]){"b", "s4"}, 1,
                               (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 1, CLCNN_ERR_UNSUPPORTED, "plans hold at most 4 dimensions");
    /* a 5-D graph output stays refused */
    g = graph_with(4, (int64_t[]){N, c, h, w});
    ints(g, "s5", 5, (int64_t[]){NB, gr, cg, h, w});
    TU_OK(clcnn_graph_add_node(g, "Reshape", "mv", 2, (const char *[]){"x", "s5"}, 1,
                               (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    clcnn_plan *p = NULL;
    assert_int_equal(clcnn_plan_create(tu_device(), g, 2, NULL, &p), CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "plans hold at most 4 dimensions"));
    clcnn_graph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_concat_split),
        cmocka_unit_test(test_split_uneven),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_expand_tile_gather),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_copy_bounds),
        cmocka_unit_test(test_channel_shuffle),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
