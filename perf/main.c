/* clcnn-perf: benchmark sweeps over devices x ops x shapes x algorithms (perf/README.md).
 * Exit status: 0 when every row ran or was reported unsupported, 1 when a row failed
 * (or nothing could run), 2 on a usage error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn-perf [--op OPS] [--suite NAME] [--device SEL|all] [--algo NAME|all]\n"
            "                  [--format csv|json|table] [--runs N] [--filter TEXT] [--no-peak]\n"
            "                  [--seed N] [--quiet]\n"
            "       clcnn-perf --op peak [--device SEL|all] [--format ...]\n"
            "       clcnn-perf --list\n\n"
            "Time the library's primitives on the shapes of a suite: one warm-up, then the\n"
            "median of N timed runs (device time from OpenCL profiling), as ms, GFLOPS, GB/s\n"
            "and %% of the device's measured peak.\n\n"
            "  --op OPS       comma-separated: conv2d_fwd, conv2d_bwd_data, conv2d_bwd_filter,\n"
            "                 pool2d_fwd, linear_fwd, gemm, or all (default conv2d_fwd);\n"
            "                 peak: only measure each device's peak\n"
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
            "(CLBlast's untuned defaults), CLCNN_CACHE_DIR.\n");
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
    const char *algo_arg = "all", *filter = NULL;
    perf_format fmt = PERF_TABLE;
    perf_config cfg = {5, 1, 12345u};
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
        if (!strcmp(t, "all")) {
            for (int o = 0; o < PERF_OP_COUNT; o++)
                want[o] = 1;
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
        fprintf(stderr, "clcnn-perf: suite '%s' has no shapes for the ops asked for%s\n", suite_arg,
                filter ? " (and --filter)" : "");
    for (int d = 0; d < nsel; d++)
        free(sels[d]);
    free(sels);
    free(shapes);
    return failures || (!peak_only && rows == 0) ? 1 : 0;
}
