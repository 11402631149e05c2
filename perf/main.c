/* clcnn-perf: benchmark sweeps over devices x ops x shapes x algorithms (perf/README.md).
 * Exit status: 0 when every row ran or was reported unsupported, 1 when a row failed
 * (or nothing could run), 2 on a usage error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

/* "alexnet, vgg16, ..." */
static const char *model_list(void) {
    static char buf[256];
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; clcnn_model_name(i, NULL, NULL, NULL) && pos < sizeof buf; i++)
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%s", i ? ", " : "",
                                clcnn_model_name(i, NULL, NULL, NULL));
    return buf;
}

static int is_model(const char *name) {
    for (int i = 0; clcnn_model_name(i, NULL, NULL, NULL); i++)
        if (!strcmp(name, clcnn_model_name(i, NULL, NULL, NULL))) return 1;
    return 0;
}

/* The models the net ops run: --model (a list or all), else the suite's base name when it
 * names a model ("resnet50", "perf/suites/resnet50.txt"). Returns how many (0..cap). */
static int net_models(const char *model_arg, const char *suite_arg, char names[][1024], int cap,
                      int *bad) {
    int n = 0;
    *bad = 0;
    if (model_arg) {
        char *copy = strdup(model_arg);
        for (char *t = strtok(copy, ","); t && n < cap; t = strtok(NULL, ",")) {
            if (!strcmp(t, "all")) {
                for (int i = 0; clcnn_model_name(i, NULL, NULL, NULL) && n < cap; i++)
                    snprintf(names[n++], 1024, "%s", clcnn_model_name(i, NULL, NULL, NULL));
            } else if (is_model(t) || perf_is_onnx(t)) {
                snprintf(names[n++], 1024, "%s", t);
            } else {
                fprintf(stderr, "clcnn-perf: unknown model '%s' (models: %s)\n", t, model_list());
                *bad = 1;
            }
        }
        free(copy);
        return n;
    }
    const char *base = strrchr(suite_arg, '/');
    base = base ? base + 1 : suite_arg;
    char name[64];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strstr(name, ".txt");
    if (dot && dot[4] == '\0') *dot = '\0';
    if (!is_model(name)) return 0;
    snprintf(names[0], 1024, "%s", name);
    return 1;
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: clcnn-perf [--op OPS] [--suite NAME] [--device SEL|all] [--algo NAME|all]\n"
        "                  [--format csv|json|table] [--runs N] [--filter TEXT] [--no-peak]\n"
        "                  [--seed N] [--quiet]\n"
        "       clcnn-perf --op net_infer,net_train [--suite MODEL | --model NAMES|all]\n"
        "                  [--batch N] [--optim sgd|adam] [--device ...] [--format ...]\n"
        "       clcnn-perf --op peak [--device SEL|all] [--format ...]\n"
        "       clcnn-perf --list\n\n"
        "Time the library's primitives on the shapes of a suite: one warm-up, then the\n"
        "median of N timed runs (device time from OpenCL profiling), as ms, GFLOPS, GB/s\n"
        "and %% of the device's measured peak.\n\n"
        "  --op OPS       comma-separated: conv2d_fwd, conv2d_bwd_data, conv2d_bwd_filter,\n"
        "                 pool2d_fwd, pool2d_bwd, linear_fwd, gemm, batchnorm_fwd,\n"
        "                 batchnorm_bwd (training batch norm of each layer's output), or all\n"
        "                 of these (default conv2d_fwd);\n"
        "                 net_infer, net_train: whole models (inference in evaluation mode;\n"
        "                 a training step: forward, softmax cross-entropy, backward, optimizer)\n"
        "                 as ms per batch and images/s; peak: only each device's peak\n"
        "  --model NAMES  net ops: comma-separated zoo models, ONNX files (NAME.onnx; inference\n"
        "                 through a plan) or all (default: the suite's\n"
        "                 name when it is a model, else none); models: %s\n"
        "  --batch N      net ops: images per batch (default 8)\n"
        "  --optim NAME   net_train: sgd (with momentum 0.9, default) or adam\n"
        "  --exec WHAT    net_infer: layers (the net layer by layer), plan (the net's graph\n"
        "                 through a plan: folded, fused, planned memory) or all (default);\n"
        "                 net_train: layers (default), plan (the graph's training plan,\n"
        "                 clcnn_train_plan_*, SGD with momentum over its arena) or all\n"
        "  --suite NAME   perf/suites/NAME.txt or a path (default anchors; --list shows them)\n"
        "  --device SEL   a device selector (index, cpu, gpu, name substring) or all\n"
        "  --algo NAME    convolution algorithm: auto, direct, gemm, implicit_gemm, winograd,\n"
        "                 depthwise, or all (default all); others ops ignore it\n"
        "  --format F     csv, json or table (default table)\n"
        "  --runs N       timed runs after the warm-up (default 5)\n"
        "  --filter TEXT  only shapes whose name contains TEXT\n"
        "  --no-peak      do not measure the device's peak (no %% columns)\n"
        "  --seed N       seed of the random inputs\n"
        "  --quiet        no progress on stderr\n\n"
        "Environment: CLCNN_PERF_SUITES (suite directory), CLCNN_DEVICE, CLCNN_TUNE=off\n"
        "(CLBlast's untuned defaults), CLCNN_CACHE_DIR.\n",
        model_list());
}

static int device_selectors(const char *sel, char ***out, int *count) {
    if (sel && !strcmp(sel, "all")) {
        size_t n = 0;
        clcnn_status s = clcnn_device_list(NULL, 0, &n);
        if (s != CLCNN_OK || n == 0) {
            fprintf(stderr, "clcnn-perf: %s\n", s != CLCNN_OK ? clcnn_last_error() : "no devices");
            return -1;
        }
        clcnn_device_info *infos = calloc(n, sizeof *infos);
        char **sels = calloc(n, sizeof *sels);
        if (!infos || !sels || clcnn_device_list(infos, n, &n) != CLCNN_OK) {
            free(infos);
            free(sels);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            sels[i] = malloc(16);
            snprintf(sels[i], 16, "%d", infos[i].index);
        }
        free(infos);
        *out = sels;
        *count = (int)n;
        return 0;
    }
    char **sels = calloc(1, sizeof *sels);
    if (!sels) return -1;
    sels[0] = sel ? strdup(sel) : NULL;
    *out = sels;
    *count = 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *ops_arg = "conv2d_fwd", *suite_arg = "anchors", *dev_arg = NULL;
    const char *algo_arg = "all", *filter = NULL, *model_arg = NULL;
    perf_format fmt = PERF_TABLE;
    perf_config cfg = {5, 1, 12345u, 8, CLCNN_OPTIM_SGD, 3, 0, 0};
    int no_peak = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            perf_suite_list(stdout);
            return 0;
        } else if (!strcmp(a, "--op") && more) {
            ops_arg = argv[++i];
        } else if (!strcmp(a, "--suite") && more) {
            suite_arg = argv[++i];
        } else if (!strcmp(a, "--device") && more) {
            dev_arg = argv[++i];
        } else if (!strcmp(a, "--algo") && more) {
            algo_arg = argv[++i];
        } else if (!strcmp(a, "--filter") && more) {
            filter = argv[++i];
        } else if (!strcmp(a, "--format") && more) {
            const char *f = argv[++i];
            if (!strcmp(f, "csv"))
                fmt = PERF_CSV;
            else if (!strcmp(f, "json"))
                fmt = PERF_JSON;
            else if (!strcmp(f, "table"))
                fmt = PERF_TABLE;
            else {
                fprintf(stderr, "clcnn-perf: --format is csv, json or table, not '%s'\n", f);
                return 2;
            }
        } else if (!strcmp(a, "--runs") && more) {
            cfg.runs = atoi(argv[++i]);
            if (cfg.runs < 1 || cfg.runs > 10000) {
                fprintf(stderr, "clcnn-perf: --runs needs a number from 1 to 10000\n");
                return 2;
            }
        } else if (!strcmp(a, "--model") && more) {
            model_arg = argv[++i];
        } else if (!strcmp(a, "--batch") && more) {
            cfg.batch = atoi(argv[++i]);
            if (cfg.batch < 1 || cfg.batch > 4096) {
                fprintf(stderr, "clcnn-perf: --batch needs a number from 1 to 4096\n");
                return 2;
            }
        } else if (!strcmp(a, "--optim") && more) {
            const char *o = argv[++i];
            if (!strcmp(o, "sgd"))
                cfg.optim = CLCNN_OPTIM_SGD;
            else if (!strcmp(o, "adam"))
                cfg.optim = CLCNN_OPTIM_ADAM;
            else {
                fprintf(stderr, "clcnn-perf: --optim is sgd or adam, not '%s'\n", o);
                return 2;
            }
        } else if (!strcmp(a, "--exec") && more) {
            const char *e = argv[++i];
            cfg.exec_mask = !strcmp(e, "layers") ? 1
                            : !strcmp(e, "plan") ? 2
                            : !strcmp(e, "all")  ? 3
                                                 : 0;
            if (!cfg.exec_mask) {
                fprintf(stderr, "clcnn-perf: --exec is layers, plan or all, not '%s'\n", e);
                return 2;
            }
            cfg.exec_given = 1;
        } else if (!strcmp(a, "--seed") && more) {
            cfg.seed = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--no-peak")) {
            no_peak = 1;
        } else if (!strcmp(a, "--quiet")) {
            cfg.verbose = 0;
        } else {
            fprintf(stderr, "clcnn-perf: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }

    /* ops */
    int want[PERF_OP_COUNT] = {0}, peak_only = 0;
    char *ops = strdup(ops_arg);
    for (char *t = strtok(ops, ","); t; t = strtok(NULL, ",")) {
        if (!strcmp(t, "all")) { /* the primitives; whole nets only when named */
            for (int o = 0; o < PERF_OP_COUNT; o++)
                want[o] |= !perf_op_is_net((perf_op)o);
        } else if (!strcmp(t, "peak")) {
            peak_only = 1;
        } else if (perf_op_parse(t) >= 0) {
            want[perf_op_parse(t)] = 1;
        } else {
            fprintf(stderr, "clcnn-perf: unknown op '%s' (see --help)\n", t);
            free(ops);
            return 2;
        }
    }
    free(ops);

    /* algorithms */
    int algos[CLCNN_CONV_ALGO_COUNT], nalgos = 0;
    if (!strcmp(algo_arg, "all")) {
        for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
            algos[nalgos++] = a;
    } else {
        int a = clcnn_conv_algo_parse(algo_arg);
        if (a < 0) {
            fprintf(stderr, "clcnn-perf: unknown algorithm '%s' (see --help)\n", algo_arg);
            return 2;
        }
        algos[nalgos++] = a;
    }

    /* models for the net ops */
    static char models[16][1024];
    int bad_model = 0;
    int nmodels = net_models(model_arg, suite_arg, models, 16, &bad_model);
    if (bad_model) return 2;

    /* suite */
    perf_shape *shapes = NULL;
    size_t nshapes = 0;
    if (!peak_only) {
        char err[1024];
        if (perf_suite_load(suite_arg, &shapes, &nshapes, err, sizeof err) != 0) {
            fprintf(stderr, "clcnn-perf: %s\n", err);
            return 2;
        }
    }

    char **sels = NULL;
    int nsel = 0;
    if (device_selectors(dev_arg, &sels, &nsel) != 0) return 1;

    perf_report *rep = perf_report_open(stdout, fmt);
    int failures = 0, rows = 0;
    for (int d = 0; d < nsel; d++) {
        clcnn_device *dev = NULL;
        clcnn_status s = clcnn_device_open(sels[d], &dev);
        if (s != CLCNN_OK) {
            fprintf(stderr, "clcnn-perf: opening device '%s': %s\n",
                    sels[d] ? sels[d] : "(default)", clcnn_last_error());
            failures++;
            continue;
        }
        const char *name = clcnn_device_get_info(dev)->name;
        clcnn_peak peak = {0, 0};
        if (!no_peak || peak_only) {
            if (cfg.verbose) fprintf(stderr, "clcnn-perf: measuring the peak of %s\n", name);
            if (clcnn_device_peak(dev, &peak) != CLCNN_OK) {
                fprintf(stderr, "clcnn-perf: peak of %s: %s\n", name, clcnn_last_error());
                failures++;
            }
        }
        if (peak_only) {
            perf_report_peak(rep, name, peak.gflops, peak.gbps);
            clcnn_device_close(dev);
            continue;
        }
        if (fmt == PERF_TABLE)
            printf("%s# device: %s   peak %.1f GFLOPS, %.1f GB/s\n", d ? "\n" : "", name,
                   peak.gflops, peak.gbps);
        for (int o = 0; o < PERF_OP_COUNT; o++) {
            if (!want[o]) continue;
            if (perf_op_is_net((perf_op)o)) {
                for (int m = 0; m < nmodels; m++)
                    for (int e = 1; e <= 2; e++) {
                        if (filter && !strstr(models[m], filter)) continue;
                        /* net_train: the net's own training unless --exec asks for the
                         * training plan too */
                        int mask = o == PERF_OP_NET_TRAIN && !cfg.exec_given ? 1 : cfg.exec_mask;
                        if (perf_is_onnx(models[m]) ? e != 2 : !(mask & e)) continue;
                        cfg.plan = e == 2;
                        perf_row row;
                        memset(&row, 0, sizeof row);
                        snprintf(row.device, sizeof row.device, "%s", name);
                        if (cfg.verbose)
                            fprintf(stderr, "clcnn-perf: %s %s%s, batch %d\n",
                                    perf_op_name((perf_op)o), models[m], cfg.plan ? " (plan)" : "",
                                    cfg.batch);
                        int rc = perf_bench_net(dev, &cfg, (perf_op)o, models[m], &row);
                        row.peak_gflops = peak.gflops > 0 ? peak.gflops : NAN;
                        row.peak_gbps = peak.gbps > 0 ? peak.gbps : NAN;
                        row.pct_peak = 100.0 * row.gflops / row.peak_gflops;
                        row.pct_bw = NAN;
                        if (rc != 0) {
                            failures++;
                            fprintf(stderr, "clcnn-perf: %s %s: %s\n", row.op, row.shape, row.note);
                        }
                        perf_report_row(rep, &row);
                        rows++;
                    }
                continue;
            }
            int conv = o <= PERF_OP_CONV_BWD_FILTER;
            for (size_t i = 0; i < nshapes; i++) {
                const perf_shape *sh = &shapes[i];
                if (!perf_op_accepts((perf_op)o, sh)) continue;
                if (filter && !strstr(sh->name, filter)) continue;
                for (int a = 0; a < (conv ? nalgos : 1); a++) {
                    perf_row row;
                    memset(&row, 0, sizeof row);
                    snprintf(row.device, sizeof row.device, "%s", name);
                    int rc = perf_bench(dev, &cfg, (perf_op)o, sh,
                                        (clcnn_conv_algo)(conv ? algos[a] : 0), &row);
                    row.peak_gflops = peak.gflops > 0 ? peak.gflops : NAN;
                    row.peak_gbps = peak.gbps > 0 ? peak.gbps : NAN;
                    row.pct_peak = 100.0 * row.gflops / row.peak_gflops;
                    row.pct_bw = 100.0 * row.gbps / row.peak_gbps;
                    if (rc != 0) {
                        failures++;
                        fprintf(stderr, "clcnn-perf: %s %s %s: %s\n", row.op, row.algo, row.shape,
                                row.note);
                    } else if (cfg.verbose && fmt != PERF_TABLE) {
                        fprintf(stderr, "clcnn-perf: %-17s %-13s %-18s %s\n", row.op, row.algo,
                                row.shape, strcmp(row.status, "ok") ? row.status : "done");
                    }
                    perf_report_row(rep, &row);
                    rows++;
                }
            }
        }
        clcnn_device_close(dev);
    }
    perf_report_close(rep);
    if (!peak_only && rows == 0)
        fprintf(stderr,
                "clcnn-perf: suite '%s' has no shapes for the ops asked for%s (net ops need "
                "--model or a suite named after a model)\n",
                suite_arg, filter ? " (and --filter)" : "");
    for (int d = 0; d < nsel; d++)
        free(sels[d]);
    free(sels);
    free(shapes);
    return failures || (!peak_only && rows == 0) ? 1 : 0;
}
