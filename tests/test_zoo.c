/* The model zoo (clcnn_net_create_model): every ImageNet model's convolutions are exactly
 * the distinct shapes of its perf suite (perf/suites/<name>.txt, conv and linear lines,
 * both ways), parameter counts match the published (torchvision) ones, one training step
 * and one inference of the smaller models run and give finite numbers, and bad names fail.
 * The models of `clcnn train` keep their parameter counts and names; the listing API
 * describes every model; `clcnn summary` shows the zoo's models.
 *
 * The layer shapes come from clcnn_net_layer_info: a conv layer's input (in_c/h/w) and
 * its description ("k x rxs, stride S, pad P, groups G"); a projection shortcut from the
 * residual layer's description ("layers A-B + bn(1x1 conv K sS)") and the output of the
 * layer before its block. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    int linear;
    int c, h, w, k, r, s, stride, pad, groups;
} shape;

typedef struct shape_set {
    shape v[128];
    int n;
} shape_set;

static int same(const shape *a, const shape *b) {
    return a->linear == b->linear && a->c == b->c && a->h == b->h && a->w == b->w && a->k == b->k &&
           a->r == b->r && a->s == b->s && a->stride == b->stride && a->pad == b->pad &&
           a->groups == b->groups;
}

static int find(const shape_set *set, const shape *x) {
    for (int i = 0; i < set->n; i++)
        if (same(&set->v[i], x)) return i;
    return -1;
}

static void add_distinct(shape_set *set, const shape *x) {
    if (find(set, x) >= 0) return;
    assert_true(set->n < 128);
    set->v[set->n++] = *x;
}

static void describe(const shape *x, char *buf, size_t cap) {
    if (x->linear)
        snprintf(buf, cap, "linear %d -> %d", x->c, x->k);
    else
        snprintf(buf, cap, "conv c%d %dx%d k%d %dx%d s%d p%d g%d", x->c, x->h, x->w, x->k, x->r,
                 x->s, x->stride, x->pad, x->groups);
}

/* The conv and linear lines of perf/suites/<name>.txt (found from this file's path). */
static void load_suite(const char *name, shape_set *set) {
    char path[4096];
    const char *me = __FILE__, *slash = strrchr(me, '/');
    int dir = slash ? (int)(slash - me) : 0; /* .../tests */
    snprintf(path, sizeof path, "%.*s/../perf/suites/%s.txt", dir, slash ? me : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open the suite %s", path);
    char line[512];
    memset(set, 0, sizeof *set);
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char word[64], nm[64];
        shape x = {0};
        int n = 0, dil = 1;
        x.groups = 1;
        if (sscanf(line, "%63s", word) != 1) continue;
        if (!strcmp(word, "pool") || !strcmp(word, "gemm")) continue;
        if (!strcmp(word, "linear")) {
            assert_int_equal(sscanf(line, "%*s %63s %d %d %d", nm, &n, &x.c, &x.k), 4);
            x.linear = 1;
        } else {
            int got = sscanf(line, "%63s %d %d %d %d %d %d %d %d %d %d %d", nm, &n, &x.c, &x.h,
                             &x.w, &x.k, &x.r, &x.s, &x.stride, &x.pad, &dil, &x.groups);
            assert_true(got == 10 || got == 12);
            assert_int_equal(dil, 1);
        }
        add_distinct(set, &x);
    }
    fclose(f);
    assert_true(set->n > 0);
}

/* The distinct conv (and projection) and linear shapes of a net. */
static void net_shapes(clcnn_net *net, int c0, int h0, int w0, shape_set *set) {
    memset(set, 0, sizeof *set);
    int nl = clcnn_net_num_layers(net);
    for (int i = 0; i < nl; i++) {
        clcnn_layer_info info;
        TU_OK(clcnn_net_layer_info(net, i, &info));
        shape x = {0};
        x.groups = 1;
        if (!strcmp(info.kind, "conv2d")) {
            x.c = info.in_c, x.h = info.in_h, x.w = info.in_w;
            assert_int_equal(
                sscanf(info.desc, "%d x %dx%d, stride %d", &x.k, &x.r, &x.s, &x.stride), 4);
            const char *p = strstr(info.desc, ", pad ");
            if (p) assert_int_equal(sscanf(p, ", pad %d", &x.pad), 1);
            const char *g = strstr(info.desc, ", groups ");
            if (g) assert_int_equal(sscanf(g, ", groups %d", &x.groups), 1);
            assert_int_equal(x.k, info.out_c);
        } else if (!strcmp(info.kind, "residual")) {
            const char *p = strstr(info.desc, "1x1 conv ");
            if (!p) continue; /* identity */
            assert_int_equal(sscanf(p, "1x1 conv %d s%d", &x.k, &x.stride), 2);
            x.r = x.s = 1;
            x.c = c0, x.h = h0, x.w = w0;
            if (info.block_start > 0) {
                clcnn_layer_info before;
                TU_OK(clcnn_net_layer_info(net, info.block_start - 1, &before));
                x.c = before.out_c, x.h = before.out_h, x.w = before.out_w;
            }
        } else if (!strcmp(info.kind, "linear")) {
            x.linear = 1;
            x.c = info.in_c * info.in_h * info.in_w;
            x.k = info.out_c;
        } else {
            continue;
        }
        add_distinct(set, &x);
    }
}

/* want_gmacs: published multiply-adds per image (conv + linear), checked to 2 %. */
static void check_model(const char *name, size_t want_params, int want_layers_min,
                        double want_gmacs) {
    int c, h, w;
    const char *found = NULL;
    for (int i = 0; clcnn_model_name(i, NULL, NULL, NULL); i++)
        if (!strcmp(clcnn_model_name(i, &c, &h, &w), name)) found = clcnn_model_name(i, 0, 0, 0);
    assert_non_null(found);
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), name, 0, &net));
    assert_true(clcnn_net_num_layers(net) >= want_layers_min);
    if (clcnn_net_param_count(net) != want_params)
        fail_msg("%s: %zu trainable parameters, want %zu", name, clcnn_net_param_count(net),
                 want_params);
    double flops = 0;
    for (int i = 0; i < clcnn_net_num_layers(net); i++) {
        clcnn_layer_info info;
        TU_OK(clcnn_net_layer_info(net, i, &info));
        flops += info.flops;
    }
    print_message("%s: %.4f G multiply-adds per image\n", name, flops / 2e9);
    if (fabs(flops / 2e9 - want_gmacs) > 0.02 * want_gmacs)
        fail_msg("%s: %.4f G multiply-adds per image, want %.3f", name, flops / 2e9, want_gmacs);
    clcnn_layer_info last;
    TU_OK(clcnn_net_layer_info(net, clcnn_net_num_layers(net) - 1, &last));
    assert_string_equal(last.kind, "linear");
    assert_int_equal(last.out_c, 1000);

    shape_set suite, got;
    load_suite(name, &suite);
    net_shapes(net, c, h, w, &got);
    /* a suite without linear lines (resnet50) says nothing about the classifier */
    int suite_linear = 0;
    for (int i = 0; i < suite.n; i++)
        suite_linear |= suite.v[i].linear;
    for (int i = 0; !suite_linear && i < got.n; i++)
        if (got.v[i].linear) got.v[i--] = got.v[--got.n];
    int ok = 1;
    char buf[160];
    for (int i = 0; i < got.n; i++)
        if (find(&suite, &got.v[i]) < 0) {
            describe(&got.v[i], buf, sizeof buf);
            print_error("%s: the model has %s, the suite does not\n", name, buf);
            ok = 0;
        }
    for (int i = 0; i < suite.n; i++)
        if (find(&got, &suite.v[i]) < 0) {
            describe(&suite.v[i], buf, sizeof buf);
            print_error("%s: the suite has %s, the model does not\n", name, buf);
            ok = 0;
        }
    clcnn_net_free(net);
    if (!ok) fail_msg("%s: layer shapes differ from perf/suites/%s.txt", name, name);
}

/* Published parameter counts: torchvision's resnet50 and mobilenet_v2, VGG-16 (D);
 * AlexNet with 96/256/384/384/256 filters and 9216-4096-4096-1000 (one tower).
 * Multiply-adds: ResNet-50 v1.5 4.1 G, MobileNet-V2 0.30 G (paper: 300 M), VGG-16
 * 15.5 G; AlexNet 227 with 96 conv1 filters 1.13 G (1.08 G of convs + 58.6 M of fcs). */
static void test_alexnet(void **state) {
    (void)state;
    check_model("alexnet", 62378344, 20, 1.13);
}
static void test_resnet50(void **state) {
    (void)state;
    check_model("resnet50", 25557032, 150, 4.1);
}
static void test_mobilenet_v2(void **state) {
    (void)state;
    check_model("mobilenet_v2", 3504872, 140, 0.30);
}
/* 138 M parameters (553 MB, twice with gradients): skipped when CLCNN_TEST_QUICK is set */
static void test_vgg16(void **state) {
    (void)state;
    if (getenv("CLCNN_TEST_QUICK")) skip();
    check_model("vgg16", 138357544, 38, 15.5);
}

static void test_bad_name(void **state) {
    (void)state;
    clcnn_net *net = (clcnn_net *)&net;
    assert_int_equal(clcnn_net_create_model(tu_device(), "resnet18", 0, &net),
                     CLCNN_ERR_INVALID_ARG);
    assert_null(net);
    assert_non_null(strstr(clcnn_last_error(), "mobilenet_v2"));
    assert_null(clcnn_model_name(7, NULL, NULL, NULL));
    assert_null(clcnn_model_name(-1, NULL, NULL, NULL));
}

/* One training step and one inference of MobileNet-V2 at batch 2 with 10 classes: finite
 * loss near log(10) (He init, random input), finite logits of the right shape. */
static void test_mobilenet_v2_step(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), "mobilenet_v2", 10, &net));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 7));
    size_t xn = 2 * 3 * 224 * 224;
    float *xf = malloc(xn * sizeof *xf);
    tu_rng rng = tu_rng_seed(7);
    tu_fill_uniform(&rng, xf, xn, -1.0f, 1.0f);
    clcnn_tensor *x = tu_tensor_from(4, (size_t[]){2, 3, 224, 224}, xf);
    clcnn_tensor *labels = tu_tensor_new(CLCNN_I32, 1, (size_t[]){2});
    int lab[2] = {3, 8};
    TU_OK(clcnn_tensor_upload(labels, lab, sizeof lab));
    float loss = NAN;
    TU_OK(clcnn_net_loss_backward(net, x, labels, &loss, NULL));
    assert_true(isfinite(loss) && loss > 0.0f && loss < 50.0f);
    clcnn_net_set_training(net, 0);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(net, x, &y));
    assert_int_equal(clcnn_tensor_numel(y), 20);
    float *yf = tu_download(y);
    for (int i = 0; i < 20; i++)
        assert_true(isfinite(yf[i]));
    free(yf);
    free(xf);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_net_free(net);
}

/* The listing: every model with its sample shape, default classes and a description, in
 * the same order through clcnn_model_get_info, clcnn_model_name and clcnn_model_find. */
static void test_listing(void **state) {
    (void)state;
    static const clcnn_model_info want[] = {
        {"bn", NULL, 1, 28, 28, 10},
        {"lenet", NULL, 1, 28, 28, 10},
        {"alexnet", NULL, 3, 227, 227, 1000},
        {"alexnet_grouped", NULL, 3, 227, 227, 1000},
        {"vgg16", NULL, 3, 224, 224, 1000},
        {"resnet50", NULL, 3, 224, 224, 1000},
        {"mobilenet_v2", NULL, 3, 224, 224, 1000},
    };
    int n = (int)(sizeof want / sizeof want[0]);
    clcnn_model_info m;
    for (int i = 0; i < n; i++) {
        assert_true(clcnn_model_get_info(i, &m));
        assert_string_equal(m.name, want[i].name);
        assert_true(m.description && m.description[0]);
        assert_int_equal(m.c, want[i].c);
        assert_int_equal(m.h, want[i].h);
        assert_int_equal(m.w, want[i].w);
        assert_int_equal(m.classes, want[i].classes);
        int c = 0, h = 0, w = 0;
        assert_string_equal(clcnn_model_name(i, &c, &h, &w), m.name);
        assert_true(c == m.c && h == m.h && w == m.w);
        clcnn_model_info f;
        assert_int_equal(clcnn_model_find(m.name, &f), i);
        assert_string_equal(f.name, m.name);
    }
    m.name = "untouched";
    assert_false(clcnn_model_get_info(n, &m));
    assert_false(clcnn_model_get_info(-1, &m));
    assert_string_equal(m.name, "untouched");
    assert_int_equal(clcnn_model_find("resnet18", NULL), -1);
    assert_int_equal(clcnn_model_find(NULL, NULL), -1);
}

/* A model built with its default classes: the parameter count, the output width. */
static void check_count(const char *name, size_t want_params, int want_classes) {
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), name, 0, &net));
    if (clcnn_net_param_count(net) != want_params)
        fail_msg("%s: %zu trainable parameters, want %zu", name, clcnn_net_param_count(net),
                 want_params);
    clcnn_layer_info last;
    TU_OK(clcnn_net_layer_info(net, clcnn_net_num_layers(net) - 1, &last));
    assert_string_equal(last.kind, "linear");
    assert_int_equal(last.out_c, want_classes);
    clcnn_net_free(net);
}

/* The models of `clcnn train` (their layer order is their checkpoint format, so these
 * counts and the names below must not change) and the paper's two-tower AlexNet. */
static void test_small_models(void **state) {
    (void)state;
    check_count("bn", 421738, 10);
    check_count("lenet", 61706, 10);
    check_count("alexnet_grouped", 60965224, 1000);
    /* bn: conv (no bias), batchnorm, ..., linear: names as in checkpoints of `clcnn train` */
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), "bn", 0, &net));
    clcnn_param p;
    TU_OK(clcnn_net_param(net, 0, &p));
    assert_string_equal(p.name, "layers.0.weight");
    TU_OK(clcnn_net_param(net, 1, &p));
    assert_string_equal(p.name, "layers.1.weight");
    TU_OK(clcnn_net_param(net, clcnn_net_num_params(net) - 1, &p));
    assert_string_equal(p.name, "layers.11.bias");
    clcnn_net_free(net);
}

/* A prefix: the first layers of the model, with the whole model's parameter names. */
static void test_prefix(void **state) {
    (void)state;
    clcnn_net *full = NULL, *part = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), "lenet", 0, &full));
    TU_OK(clcnn_net_create_model_prefix(tu_device(), "lenet", 0, 4, &part));
    assert_int_equal(clcnn_net_num_layers(part), 4);
    assert_int_equal(clcnn_net_num_params(part), 4); /* two convolutions, weight and bias */
    for (int i = 0; i < clcnn_net_num_params(part); i++) {
        clcnn_param a, b;
        TU_OK(clcnn_net_param(part, i, &a));
        TU_OK(clcnn_net_param(full, i, &b));
        assert_string_equal(a.name, b.name);
    }
    clcnn_layer_info info;
    TU_OK(clcnn_net_layer_info(part, 3, &info));
    assert_string_equal(info.kind, "conv2d");
    clcnn_net_free(part);
    part = NULL;
    /* inside a residual branch of ResNet-50, and past the end */
    TU_OK(clcnn_net_create_model_prefix(tu_device(), "resnet50", 0, 6, &part));
    assert_int_equal(clcnn_net_num_layers(part), 6);
    clcnn_net_free(part);
    part = NULL;
    TU_OK(clcnn_net_create_model_prefix(tu_device(), "lenet", 0, 1000, &part));
    assert_int_equal(clcnn_net_num_layers(part), clcnn_net_num_layers(full));
    clcnn_net_free(part);
    clcnn_net_free(full);
}

/* `clcnn summary --model alexnet` shows the zoo's AlexNet: the same total parameters. */
static void test_cli_summary_is_the_zoo(void **state) {
    (void)state;
    const char *cli = getenv("CLCNN_CLI");
    if (!cli || !*cli) {
        print_message("CLCNN_CLI is not set (run under ctest): skipped\n");
        skip();
    }
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create_model(tu_device(), "alexnet", 0, &net));
    size_t want = clcnn_net_param_count(net);
    clcnn_net_free(net);
    assert_int_equal(want, 62378344); /* 96-256-384-384-256 filters, not torchvision's 61.1 M */
    char cmd[4096], line[512], digits[32] = "";
    snprintf(cmd, sizeof cmd, "'%s' summary --model alexnet 2>&1", cli);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        const char *t = strstr(line, "total parameters: ");
        if (!t) continue;
        int n = 0;
        for (t += strlen("total parameters: "); *t && n + 1 < (int)sizeof digits; t++)
            if (*t >= '0' && *t <= '9')
                digits[n++] = *t;
            else if (*t != ',')
                break;
        digits[n] = '\0';
    }
    assert_int_equal(pclose(f), 0);
    if (!digits[0]) fail_msg("no 'total parameters' line in the output of %s", cmd);
    assert_int_equal(strtoull(digits, NULL, 10), want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_name), cmocka_unit_test(test_alexnet),
        cmocka_unit_test(test_resnet50), cmocka_unit_test(test_mobilenet_v2),
        cmocka_unit_test(test_vgg16),    cmocka_unit_test(test_mobilenet_v2_step),
        cmocka_unit_test(test_listing),  cmocka_unit_test(test_small_models),
        cmocka_unit_test(test_prefix),   cmocka_unit_test(test_cli_summary_is_the_zoo),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_close_device();
    return rc;
}
