/* Resize and Upsample through the graph and plans, against a double reference written
 * straight from the ONNX definitions (coordinate transform per axis, then nearest rounding
 * or linear interpolation with the input's edge repeated beyond it): scales 2 and 0.5,
 * sizes at non-integer ratios, every coordinate transform and nearest rounding, Resize-10
 * and Upsample-7/9, the symbolic batch at batch 1 and 2. Unsupported forms (cubic,
 * tf_crop_and_resize, scales computed per run, scaled channels) fail naming the node. */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const int64_t N = CLCNN_GRAPH_BATCH;
static const int64_t NB = INT64_MIN;

enum { HALF, ASYM, ALIGN, PYTORCH, TFNN };                 /* coordinate transforms */
enum { PREFER_FLOOR, PREFER_CEIL, FLOOR_, CEIL_, LINEAR }; /* nearest roundings; linear */
static const char *coord_s[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                "tf_half_pixel_for_nn"};
static const char *round_s[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* ONNX: x_original for x_resized = o along an axis of in -> out at scale s. */
static double ref_coord(int coord, double o, double s, int in, int out) {
    switch (coord) {
    case ASYM:
        return o / s;
    case ALIGN:
        return out == 1 ? 0.0 : o * (in - 1) / (out - 1);
    case PYTORCH:
        return out > 1 ? (o + 0.5) / s - 0.5 : 0.0;
    case TFNN:
        return (o + 0.5) / s;
    default:
        return (o + 0.5) / s - 0.5;
    }
}

static int clampi(long v, int in) {
    return v < 0 ? 0 : v >= in ? in - 1 : (int)v;
}

static int ref_nearest(int mode, double v, int in) {
    double f = floor(v), r;
    if (mode == FLOOR_)
        r = f;
    else if (mode == CEIL_)
        r = ceil(v);
    else if (v - f == 0.5)
        r = mode == PREFER_CEIL ? f + 1 : f;
    else
        r = floor(v + 0.5);
    return clampi((long)r, in);
}

/* One axis: taps i0, i1 and weight of i1 for output o. */
static void ref_axis(int mode, int coord, int o, double s, int in, int out, int *i0, int *i1,
                     double *wt) {
    double v = ref_coord(coord, o, s, in, out);
    if (mode != LINEAR) {
        *i0 = *i1 = ref_nearest(mode, v, in);
        *wt = 0.0;
        return;
    }
    double f = floor(v);
    *i0 = clampi((long)f, in);
    *i1 = clampi((long)f + 1, in);
    *wt = v - f;
}

/* x (b, c, h, w) -> y (b, c, p, q); sh, sw the ONNX scales. */
static double *ref_resize(const float *x, int b, int c, int h, int w, int p, int q, double sh,
                          double sw, int mode, int coord) {
    double *y = malloc((size_t)b * c * p * q * sizeof *y);
    for (int bc = 0; bc < b * c; bc++)
        for (int i = 0; i < p; i++)
            for (int j = 0; j < q; j++) {
                int r0, r1, c0, c1;
                double a, e;
                ref_axis(mode, coord, i, sh, h, p, &r0, &r1, &a);
                ref_axis(mode, coord, j, sw, w, q, &c0, &c1, &e);
                const float *xs = x + (size_t)bc * h * w;
                double top = (1 - e) * xs[r0 * w + c0] + e * xs[r0 * w + c1];
                double bot = (1 - e) * xs[r1 * w + c0] + e * xs[r1 * w + c1];
                y[((size_t)bc * p + i) * q + j] = (1 - a) * top + a * bot;
            }
    return y;
}

/* Plan g at batch b, run it on random x (b, c, h, w), compare with the reference. */
static void check(clcnn_graph *g, int b, int c, int h, int w, int p, int q, double sh, double sw,
                  int mode, int coord, const char *what) {
    tu_rng r = tu_rng_seed((uint64_t)(h * 131 + w * 7 + p * 3 + q));
    size_t n = (size_t)b * c * h * w;
    float *x = malloc(n * sizeof *x);
    tu_fill_uniform(&r, x, n, -4.0f, 4.0f);
    clcnn_plan *pl = NULL;
    clcnn_status s = clcnn_plan_create(tu_device(), g, b, NULL, &pl);
    if (s != CLCNN_OK) fail_msg("%s: plan: %s", what, clcnn_last_error());
    clcnn_tensor *t = tu_tensor_from(4, (size_t[]){(size_t)b, (size_t)c, (size_t)h, (size_t)w}, x);
    const clcnn_tensor *in = t;
    TU_OK(clcnn_plan_run(pl, &in, 1));
    const clcnn_tensor *yt = clcnn_plan_output(pl, 0);
    size_t m = (size_t)b * c * p * q;
    if (clcnn_tensor_numel(yt) != m)
        fail_msg("%s: %zu elements, want %zu", what, clcnn_tensor_numel(yt), m);
    float *got = tu_download(yt);
    double *ref = ref_resize(x, b, c, h, w, p, q, sh, sw, mode, coord);
    if (!tu_close(what, got, ref, m, 1e-6, 1e-5)) fail_msg("%s differs", what);
    free(got);
    free(ref);
    free(x);
    clcnn_tensor_free(t);
    clcnn_plan_free(pl);
}

/* x [dim0, c, h, w] -> Resize (opset 11+: X, roi "", scales or "", sizes) -> y. */
static clcnn_graph *resize_graph(int64_t dim0, int c, int h, int w, const float *scales,
                                 const int64_t *sizes, int mode, int coord) {
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){dim0, c, h, w}));
    if (scales) TU_OK(clcnn_graph_add_initializer(g, "s", CLCNN_F32, 1, (int64_t[]){4}, scales));
    if (sizes) TU_OK(clcnn_graph_add_initializer(g, "z", CLCNN_I64, 1, (int64_t[]){4}, sizes));
    clcnn_attr a[3] = {STR("mode", mode == LINEAR ? "linear" : "nearest"),
                       STR("coordinate_transformation_mode", coord_s[coord]),
                       STR("nearest_mode", mode == LINEAR ? "floor" : round_s[mode])};
    clcnn_status s = clcnn_graph_add_node(g, "Resize", "mv", sizes ? 4 : 3,
                                          (const char *[]){"x", "", scales ? "s" : "", "z"}, 1,
                                          (const char *[]){"y"}, 3, a);
    if (s != CLCNN_OK) fail_msg("Resize: %s", clcnn_last_error());
    TU_OK(clcnn_graph_add_output(g, "y"));
    return g;
}

static void test_scales(void **state) {
    (void)state;
    char what[128];
    for (int mode = 0; mode <= LINEAR; mode++)
        for (int coord = 0; coord <= TFNN; coord++) {
            if (mode == LINEAR && coord == TFNN) continue; /* a nearest-only transform */
            /* scale 2 up, 0.5 down */
            snprintf(what, sizeof what, "%s %s x2", mode == LINEAR ? "linear" : round_s[mode],
                     coord_s[coord]);
            clcnn_graph *g = resize_graph(1, 2, 3, 5, (float[]){1, 1, 2, 2}, NULL, mode, coord);
            check(g, 1, 2, 3, 5, 6, 10, 2.0, 2.0, mode, coord, what);
            clcnn_graph_free(g);
            snprintf(what, sizeof what, "%s %s x0.5", mode == LINEAR ? "linear" : round_s[mode],
                     coord_s[coord]);
            g = resize_graph(1, 2, 6, 7, (float[]){1, 1, 0.5f, 0.5f}, NULL, mode, coord);
            check(g, 1, 2, 6, 7, 3, 3, 0.5, 0.5, mode, coord, what);
            clcnn_graph_free(g);
        }
}

static void test_sizes(void **state) {
    (void)state;
    char what[128];
    static const int shapes[][4] = {{4, 5, 7, 3}, {5, 7, 3, 11}, {3, 3, 1, 8}, {6, 1, 9, 2}};
    for (int mode = 0; mode <= LINEAR; mode++)
        for (int coord = 0; coord <= TFNN; coord++)
            for (int k = 0; k < 4; k++) {
                if (mode == LINEAR && coord == TFNN) continue;
                int h = shapes[k][0], w = shapes[k][1], p = shapes[k][2], q = shapes[k][3];
                snprintf(what, sizeof what, "%s %s %dx%d -> %dx%d",
                         mode == LINEAR ? "linear" : round_s[mode], coord_s[coord], h, w, p, q);
                /* the symbolic batch, run at batch 1 and 2 */
                clcnn_graph *g =
                    resize_graph(N, 3, h, w, NULL, (int64_t[]){NB, 3, p, q}, mode, coord);
                for (int b = 1; b <= 2; b++)
                    check(g, b, 3, h, w, p, q, (double)p / h, (double)q / w, mode, coord, what);
                clcnn_graph_free(g);
            }
}

/* Resize-10 (X, scales) and Upsample-7 (attribute) / -9 (input): asymmetric, floor. */
static void test_legacy(void **state) {
    (void)state;
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){1, 2, 3, 4}));
    TU_OK(clcnn_graph_add_initializer(g, "s", CLCNN_F32, 1, (int64_t[]){4},
                                      (float[]){1, 1, 2, 1.5f}));
    TU_OK(clcnn_graph_add_node(g, "Resize", "mv", 2, (const char *[]){"x", "s"}, 1,
                               (const char *[]){"y"}, 1, (clcnn_attr[]){STR("mode", "linear")}));
    TU_OK(clcnn_graph_add_output(g, "y"));
    check(g, 1, 2, 3, 4, 6, 6, 2.0, 1.5, LINEAR, ASYM, "Resize-10 linear");
    clcnn_graph_free(g);

    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){N, 2, 3, 4}));
    float sc[4] = {1, 1, 2, 3};
    clcnn_attr a[2] = {STR("mode", "nearest"),
                       {"scales", CLCNN_ATTR_FLOATS, 0, 0.0f, NULL, sc, 4, NULL}};
    TU_OK(clcnn_graph_add_node(g, "Upsample", "mv", 1, (const char *[]){"x"}, 1,
                               (const char *[]){"y"}, 2, a));
    TU_OK(clcnn_graph_add_output(g, "y"));
    check(g, 1, 2, 3, 4, 6, 12, 2.0, 3.0, FLOOR_, ASYM, "Upsample-7 nearest");
    check(g, 2, 2, 3, 4, 6, 12, 2.0, 3.0, FLOOR_, ASYM, "Upsample-7 nearest, batch 2");
    clcnn_node_info ni;
    TU_OK(clcnn_graph_node_info(g, 0, &ni));
    assert_string_equal(ni.desc, "nearest (floor), asymmetric");
    assert_int_equal(ni.dims[3], 12);
    clcnn_graph_free(g);

    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){1, 2, 3, 4}));
    TU_OK(clcnn_graph_add_initializer(g, "s", CLCNN_F32, 1, (int64_t[]){4}, (float[]){1, 1, 2, 2}));
    TU_OK(clcnn_graph_add_node(g, "Upsample", "mv", 2, (const char *[]){"x", "s"}, 1,
                               (const char *[]){"y"}, 1, (clcnn_attr[]){STR("mode", "linear")}));
    TU_OK(clcnn_graph_add_output(g, "y"));
    check(g, 1, 2, 3, 4, 6, 8, 2.0, 2.0, LINEAR, ASYM, "Upsample-9 linear");
    clcnn_graph_free(g);
}

/* add_node (parse) or plan (plan = 1) or check (plan = 0) fails with want naming 'mv'. */
static void expect_error(clcnn_graph *g, int plan, clcnn_status want, const char *needle) {
    tu_expect_graph_error(g, plan ? 1 : 0, want, needle);
}

static void test_errors(void **state) {
    (void)state;
    clcnn_graph *g = NULL;
    TU_OK(clcnn_graph_create(&g));
    TU_OK(clcnn_graph_add_input(g, "x", CLCNN_F32, 4, (int64_t[]){1, 2, 3, 4}));
    TU_OK(clcnn_graph_add_input(g, "s", CLCNN_F32, 1, (int64_t[]){4}));
    const char *ins[] = {"x", "", "s"};
    assert_int_equal(clcnn_graph_add_node(g, "Resize", "mv", 3, ins, 1, (const char *[]){"y"}, 1,
                                          (clcnn_attr[]){STR("mode", "cubic")}),
                     CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "cubic"));
    assert_int_equal(clcnn_graph_add_node(g, "Resize", "mv", 3, ins, 1, (const char *[]){"y"}, 1,
                                          (clcnn_attr[]){STR("coordinate_transformation_mode",
                                                             "tf_crop_and_resize")}),
                     CLCNN_ERR_UNSUPPORTED);
    /* scales computed per run */
    TU_OK(clcnn_graph_add_node(g, "Resize", "mv", 3, ins, 1, (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g, "y"));
    expect_error(g, 0, CLCNN_ERR_UNSUPPORTED, "float initializer");
    /* a scaled channel dim: shape inference takes it, plans refuse */
    g = resize_graph(1, 2, 3, 4, (float[]){1, 2, 2, 2}, NULL, LINEAR, HALF);
    TU_OK(clcnn_graph_check(g));
    expect_error(g, 1, CLCNN_ERR_UNSUPPORTED, "last two dims");
    /* the symbolic batch scaled */
    g = resize_graph(N, 2, 3, 4, (float[]){2, 1, 2, 2}, NULL, LINEAR, HALF);
    expect_error(g, 0, CLCNN_ERR_UNSUPPORTED, "batch");
    /* scales of the wrong count */
    clcnn_graph *g2 = NULL;
    TU_OK(clcnn_graph_create(&g2));
    TU_OK(clcnn_graph_add_input(g2, "x", CLCNN_F32, 4, (int64_t[]){1, 2, 3, 4}));
    TU_OK(clcnn_graph_add_initializer(g2, "s", CLCNN_F32, 1, (int64_t[]){2}, (float[]){2, 2}));
    TU_OK(clcnn_graph_add_node(g2, "Resize", "mv", 3, ins, 1, (const char *[]){"y"}, 0, NULL));
    TU_OK(clcnn_graph_add_output(g2, "y"));
    expect_error(g2, 0, CLCNN_ERR_SHAPE, "2 scales");
}

/* Nearest copies an inf; linear at an exact input coordinate does not mix in its
 * neighbour (no inf * 0 = NaN). */
static void test_inf(void **state) {
    (void)state;
    for (int linear = 0; linear <= 1; linear++) {
        clcnn_graph *g = resize_graph(1, 1, 1, 2, (float[]){1, 1, 1, 2}, NULL,
                                      linear ? LINEAR : PREFER_FLOOR, ASYM);
        clcnn_plan *pl = NULL;
        TU_OK(clcnn_plan_create(tu_device(), g, 1, NULL, &pl));
        clcnn_tensor *t = tu_tensor_from(4, (size_t[]){1, 1, 1, 2}, (float[]){1.0f, INFINITY});
        const clcnn_tensor *in = t;
        TU_OK(clcnn_plan_run(pl, &in, 1));
        float *y = tu_download(clcnn_plan_output(pl, 0));
        /* asymmetric x2: coordinates 0, 0.5, 1, 1.5 */
        assert_true(y[0] == 1.0f);
        assert_true(isinf(y[2]) && isinf(y[3]));
        assert_true(linear ? isinf(y[1]) : y[1] == 1.0f);
        free(y);
        clcnn_tensor_free(t);
        clcnn_plan_free(pl);
        clcnn_graph_free(g);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scales), cmocka_unit_test(test_sizes), cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_inf),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
