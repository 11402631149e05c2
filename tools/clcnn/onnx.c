/* clcnn onnx: ONNX models on the command line.
 *   test [--rtol R] [--atol A] [--device SEL] [--quiet] DIR...
 *       run test cases in the layout of ONNX's backend test data (DIR/model.onnx, and
 *       input_K.pb / output_K.pb in each folder DIR/test_data_set_N) and compare every
 *       output element as |y - ref| <= atol + rtol |ref|; one line per case, then a line
 *       "N passed, N failed, N skipped". A case whose model or op clcnn does not support
 *       is skipped, naming why; a mismatch or a model that cannot be read fails (exit 1). */
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/clcnn.h"
#include "commands.h"
#include "models.h"

#define PROG "clcnn onnx"

typedef enum verdict { PASS, FAIL, SKIP } verdict;

typedef struct opts {
    double rtol, atol;
    int quiet;
    double max_abs, max_ref; /* largest |y - ref| of the case so far, and max |ref| */
} opts;

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn onnx test [--rtol R] [--atol A] [--device SEL] [--quiet] DIR...\n\n"
               "Run ONNX backend test cases: DIR/model.onnx with DIR/test_data_set_N/\n"
               "input_K.pb (fed to the graph inputs that are not initializers, in order) and\n"
               "output_K.pb (compared element-wise: |y - ref| <= atol + rtol * |ref|; defaults\n"
               "rtol 1e-3, atol 1e-7). One line per case: pass, FAIL with the worst element,\n"
               "or skip naming the unsupported op or type; then 'N passed, N failed, N\n"
               "skipped'. Exit status 1 when a case failed or could not be read.\n");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The test_data_set_* folders of dir, sorted; caller frees. */
static int data_sets(const char *dir, char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_data_set_", 14)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **g = realloc(v, (size_t)cap * sizeof *g);
            if (!g) break;
            v = g;
        }
        v[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!v[n]) break;
        sprintf(v[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

typedef struct host_tensor {
    clcnn_dtype dtype;
    int ndim;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    void *data;
    size_t numel;
} host_tensor;

static clcnn_status load(const char *dir, const char *kind, int k, host_tensor *t) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%d.pb", dir, kind, k);
    return clcnn_onnx_load_tensor(path, &t->dtype, &t->ndim, t->dims, &t->data, &t->numel);
}

/* Compare got with want; on a mismatch describe the worst element in why. */
static int close_enough(const float *got, const float *want, size_t n, opts *o, char *why,
                        size_t cap, int k) {
    double worst = 0.0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(w) && isnan(g)) continue;
        if (fabs(g - w) > o->max_abs) o->max_abs = fabs(g - w);
        if (fabs(w) > o->max_ref) o->max_ref = fabs(w);
        if (isinf(w) && g == w) continue;
        double excess = fabs(g - w) - (o->atol + o->rtol * fabs(w));
        if (!(excess <= 0.0)) {
            if (!bad || excess > worst || isnan(excess)) worst = excess, at = i;
            bad = 1;
        }
    }
    if (bad)
        snprintf(why, cap, "output %d element %zu: got %.7g, want %.7g (|diff| %.3g)", k, at,
                 (double)got[at], (double)want[at], fabs((double)got[at] - want[at]));
    return !bad;
}

static verdict run_set(clcnn_device *dev, clcnn_graph *g, clcnn_plan **plan, const char *set,
                       opts *o, char *why, size_t cap) {
    int nin = clcnn_graph_num_inputs(g), nout = clcnn_graph_num_outputs(g);
    host_tensor hin[16] = {0};
    clcnn_tensor *tin[16] = {0};
    verdict v = PASS;
    if (nin > 16 || nout > 16) {
        snprintf(why, cap, "%d inputs, %d outputs", nin, nout);
        return SKIP;
    }
    clcnn_status s = CLCNN_OK;
    for (int i = 0; i < nin && v == PASS; i++) {
        if ((s = load(set, "input", i, &hin[i])) != CLCNN_OK) {
            snprintf(why, cap, "input %d: %s", i, clcnn_last_error());
            v = s == CLCNN_ERR_UNSUPPORTED ? SKIP : FAIL;
        } else if (hin[i].dtype != CLCNN_F32) {
            snprintf(why, cap, "input %d is not float", i);
            v = SKIP;
        }
    }
    if (v == PASS && !*plan) {
        int batch = nin && hin[0].ndim > 0 ? (int)hin[0].dims[0] : 1;
        s = clcnn_plan_create(dev, g, batch > 0 ? batch : 1, NULL, plan);
        if (s != CLCNN_OK) {
            snprintf(why, cap, "%s", clcnn_last_error());
            v = s == CLCNN_ERR_UNSUPPORTED ? SKIP : FAIL;
        }
    }
    for (int i = 0; i < nin && v == PASS; i++) {
        size_t shape[4] = {1};
        if (hin[i].ndim > 4) {
            snprintf(why, cap, "input %d has %d dimensions", i, hin[i].ndim);
            v = SKIP;
            break;
        }
        for (int d = 0; d < hin[i].ndim; d++)
            shape[d] = (size_t)hin[i].dims[d];
        /* a scalar (0-D) input goes in as one element, [1] (clcnn_plan_run takes that) */
        s = clcnn_tensor_create(dev, CLCNN_F32, hin[i].ndim ? hin[i].ndim : 1, shape, &tin[i]);
        if (s == CLCNN_OK) s = clcnn_tensor_upload(tin[i], hin[i].data, hin[i].numel * 4);
        if (s != CLCNN_OK) {
            snprintf(why, cap, "input %d: %s", i, clcnn_last_error());
            v = FAIL;
        }
    }
    if (v == PASS &&
        (s = clcnn_plan_run(*plan, (const clcnn_tensor *const *)tin, nin)) != CLCNN_OK) {
        snprintf(why, cap, "run: %s", clcnn_last_error());
        v = s == CLCNN_ERR_UNSUPPORTED ? SKIP : FAIL;
    }
    for (int k = 0; k < nout && v == PASS; k++) {
        host_tensor want = {0};
        if ((s = load(set, "output", k, &want)) != CLCNN_OK) {
            snprintf(why, cap, "output %d: %s", k, clcnn_last_error());
            v = s == CLCNN_ERR_UNSUPPORTED ? SKIP : FAIL;
            break;
        }
        const clcnn_tensor *y = clcnn_plan_output(*plan, k);
        size_t n = y ? clcnn_tensor_numel(y) : 0;
        if (want.dtype != CLCNN_F32) {
            snprintf(why, cap, "output %d is not float", k);
            v = SKIP;
        } else if (n != want.numel) {
            snprintf(why, cap, "output %d has %zu elements, the reference %zu", k, n, want.numel);
            v = FAIL;
        } else {
            float *got = malloc(n * sizeof *got);
            if (!got || clcnn_tensor_download(y, got, n * sizeof *got) != CLCNN_OK) {
                snprintf(why, cap, "output %d: download failed", k);
                v = FAIL;
            } else if (!close_enough(got, want.data, n, o, why, cap, k)) {
                v = FAIL;
            }
            free(got);
        }
        free(want.data);
    }
    for (int i = 0; i < nin; i++) {
        free(hin[i].data);
        clcnn_tensor_free(tin[i]);
    }
    return v;
}

static verdict run_case(clcnn_device *dev, const char *dir, opts *o, char *why, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    clcnn_graph *g = NULL;
    clcnn_status s = clcnn_graph_load_onnx(path, &g);
    if (s != CLCNN_OK) {
        snprintf(why, cap, "%s", clcnn_last_error());
        return s == CLCNN_ERR_UNSUPPORTED ? SKIP : FAIL;
    }
    char **sets = NULL;
    int nsets = data_sets(dir, &sets);
    verdict v = nsets ? PASS : FAIL;
    if (!nsets) snprintf(why, cap, "no test_data_set_* folders");
    clcnn_plan *plan = NULL;
    for (int i = 0; i < nsets && v == PASS; i++)
        v = run_set(dev, g, &plan, sets[i], o, why, cap);
    for (int i = 0; i < nsets; i++)
        free(sets[i]);
    free(sets);
    clcnn_plan_free(plan);
    clcnn_graph_free(g);
    return v;
}

static const char *base(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/')
        p--;
    return p;
}

static int cmd_onnx_test(int argc, char **argv) {
    opts o = {1e-3, 1e-7, 0, 0.0, 0.0};
    const char *device = NULL;
    static const struct option lo[] = {
        {"rtol", required_argument, 0, 'r'},   {"atol", required_argument, 0, 'a'},
        {"device", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:a:d:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (parse_float(PROG " test", "--rtol", optarg, 0.0, 1.0, &o.rtol)) return 2;
            break;
        case 'a':
            if (parse_float(PROG " test", "--atol", optarg, 0.0, 1e3, &o.atol)) return 2;
            break;
        case 'd':
            device = optarg;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    clcnn_device *dev = open_device_or_say(device);
    if (!dev) return 1;
    int passed = 0, failed = 0, skipped = 0;
    for (int i = optind; i < argc; i++) {
        char why[1024] = "";
        o.max_abs = o.max_ref = 0.0;
        verdict v = run_case(dev, argv[i], &o, why, sizeof why);
        passed += v == PASS;
        failed += v == FAIL;
        skipped += v == SKIP;
        if (v == PASS && !o.quiet)
            printf("pass  %s: max |y - ref| %.3g (max |ref| %.3g)\n", base(argv[i]), o.max_abs,
                   o.max_ref);
        else if (v == FAIL)
            printf("FAIL  %s: %s\n", base(argv[i]), why);
        else if (v == SKIP && !o.quiet)
            printf("skip  %s: %s\n", base(argv[i]), why);
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    clcnn_device_close(dev);
    return failed ? 1 : 0;
}

int cmd_onnx(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "test")) return cmd_onnx_test(argc - 1, argv + 1);
    fprintf(stderr, PROG ": unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
