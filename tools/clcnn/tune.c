/* clcnn tune: tune CLBlast's SGEMM for a device, tune the convolution algorithms of a perf
 * suite's shapes, and manage the per-device tuning file.
 * Progress goes to stderr, results to stdout. Exit status: 0 on success, 1 on an error,
 * 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/clcnn.h"
#include "commands.h"
#include "models.h"
#include "perf.h" /* perf/suite.c: the suite reader */

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: clcnn tune [--device SEL] [--budget SECONDS] [--exhaustive] [--seed N]\n"
        "                  [--no-save] [--quiet]\n"
        "       clcnn tune --suite NAME [--op OPS] [--filter TEXT] [--runs N] [--algo-only]\n"
        "                  [--candidates N] [--device SEL] [--no-save] [--quiet]\n"
        "       clcnn tune --model FILE.onnx|ZOO-NAME [--batch N] [--train] [--op OPS]\n"
        "                  [--runs N] [--algo-only] [--candidates N] [--device SEL]\n"
        "                  [--no-save] [--quiet]\n"
        "       clcnn tune --show | --export FILE | --import FILE | --peak  [--device SEL]\n\n"
        "Without --suite: search CLBlast's SGEMM kernel parameters for the device (random\n"
        "and greedy search over valid configurations, each one built, timed on SGEMM 1024^3\n"
        "and convolution-like shapes and checked against a host GEMM), apply the winner and\n"
        "store it in the device's tuning file beside the program cache. Every later\n"
        "process applies it before its first matrix product.\n\n"
        "With --suite: for every convolution shape of a perf suite (perf/suites/NAME.txt,\n"
        "or a path) and every pass asked for, time each algorithm that runs it with its\n"
        "heuristic kernel parameters and with a few candidate parameter sets near them\n"
        "(direct, winograd, depthwise forward, implicit_gemm backward filter; more with\n"
        "CLCNN_TUNE=exhaustive), one warm-up and the median of 3 runs (9 with\n"
        "CLCNN_TUNE=exhaustive), check each result against the direct algorithm, and store\n"
        "the fastest algorithm and its parameters in the tuning file: from then on\n"
        "--algo auto (CLCNN_CONV_AUTO) uses them for that shape (and for the same shape with\n"
        "another batch size when that one is not tuned). Every parameter set is one kernel\n"
        "build (1-6 s each on POCL, cached for later runs): a suite takes minutes; use\n"
        "--algo-only to time the heuristics only. One line per shape and pass on stdout:\n"
        "the winner, its parameters ('-': its heuristic) and the best median ms of every\n"
        "algorithm ('-': does not run it), and the algorithm the built-in rule picks for a\n"
        "never-tuned shape with its median and its ratio to the winner.\n\n"
        "With --model: the same for every distinct convolution pass of the model's plan at\n"
        "--batch N (default 8): its inference plan, or with --train its training plan\n"
        "(forward, data gradients where one is needed, filter gradients): the whole network\n"
        "tuned ahead of time, where Find (CLCNN_TUNE=find) would measure it at plan\n"
        "creation within a small budget.\n\n"
        "  --device SEL     device selector (index, cpu/gpu, or a name substring)\n"
        "  --budget S       GEMM: wall-clock budget in seconds (default %.0f; %.0f with\n"
        "                   --exhaustive or CLCNN_TUNE=exhaustive)\n"
        "  --exhaustive     GEMM: larger search space and budget; --suite: 9 timed runs\n"
        "  --seed N         random search seed / input data seed (default 1)\n"
        "  --suite NAME     tune the convolution algorithms of a perf suite (e.g. anchors)\n"
        "  --op OPS         passes for --suite, comma-separated: conv2d_fwd,\n"
        "                   conv2d_bwd_data, conv2d_bwd_filter (default: all three)\n"
        "  --filter TEXT    --suite: only shapes whose name contains TEXT\n"
        "  --model M        tune the convolutions of an ONNX file or zoo model (e.g. resnet50)\n"
        "  --batch N        --model: batch size of the plan (default 8)\n"
        "  --train          --model: the training plan's passes\n"
        "  --runs N         --suite: timed runs per algorithm and parameter set\n"
        "  --algo-only      --suite, --model: no kernel parameter candidates (heuristics only)\n"
        "  --candidates N   --suite, --model: at most N candidate parameter sets per\n"
        "                   algorithm (default 6; 40 with CLCNN_TUNE=exhaustive)\n"
        "  --list           the perf suites --suite can name\n"
        "  --no-save        tune and report, but do not write the tuning file\n"
        "  --quiet          no progress lines on stderr\n"
        "  --show           print the device's tuning file (GEMM parameters, conv winners)\n"
        "  --export FILE    copy the device's tuning file to FILE\n"
        "  --import FILE    check FILE (made for a device of the same name), store and apply it\n"
        "  --peak           measure and print the device's peak GFLOPS and GB/s\n"
        "  --help           this text\n\n"
        "CLCNN_TUNE=off disables applying stored results (GEMM parameters and convolution\n"
        "winners) and tuning; CLCNN_TUNE=exhaustive searches longer; CLCNN_TUNE=find makes\n"
        "plans measure the convolutions the tuning file does not know when they are\n"
        "created (Find). CLCNN_CACHE_DIR sets where the tuning file lives.\n",
        CLCNN_TUNE_BUDGET_ON, CLCNN_TUNE_BUDGET_EXHAUSTIVE);
}

/* --op words -> passes, in the perf tool's names. */
static const char *const op_words[CLCNN_CONV_PASS_COUNT] = {"conv2d_fwd", "conv2d_bwd_data",
                                                            "conv2d_bwd_filter"};

static int parse_ops(const char *list, int want[CLCNN_CONV_PASS_COUNT]) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (int i = 0; i < CLCNN_CONV_PASS_COUNT; i++)
        want[i] = 0;
    int any = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = -1;
        for (int i = 0; i < CLCNN_CONV_PASS_COUNT; i++)
            if (!strcmp(tok, op_words[i])) found = i;
        if (found < 0) {
            fprintf(stderr,
                    "clcnn tune: unknown --op '%s' (conv2d_fwd, conv2d_bwd_data, "
                    "conv2d_bwd_filter)\n",
                    tok);
            return -1;
        }
        want[found] = any = 1;
    }
    return any ? 0 : -1;
}

static void print_line(void *user, const char *line);

static void print_header(void) {
    printf("%-20s %-17s %-30s %-14s %-18s %-24s %s\n", "shape", "pass", "dims", "winner", "params",
           "rule (ms, x winner)", "median ms per algorithm");
}

/* Tune one pass of one shape and print its line; 0, or 1 after an error (*stop set for
 * errors that end the run: an invalid tuning file, nothing that runs the pass). */
static int tune_one(clcnn_device *dev, const char *name, int pass, const clcnn_conv2d_desc *d,
                    const size_t x[4], const size_t w[4], const clcnn_conv2d_tune_options *opt,
                    int quiet, int *stop) {
    char dims[96];
    snprintf(dims, sizeof dims, "n%zu c%zu %zux%zu k%zu %zux%zu s%d p%d%s", x[0], x[1], x[2], x[3],
             w[0], w[2], w[3], d->stride_h, d->pad_h, d->groups > 1 ? " grouped" : "");
    if (!quiet) fprintf(stderr, "-- %s %s (%s)\n", name, op_words[pass], dims);
    clcnn_conv2d_tune_result r;
    clcnn_status s = clcnn_conv2d_tune(dev, (clcnn_conv_pass)pass, d, x, w, opt, &r);
    if (s != CLCNN_OK) {
        printf("%-20s %-17s %-30s %-14s %s\n", name, op_words[pass], dims, "error",
               clcnn_last_error());
        fflush(stdout);
        *stop = s == CLCNN_ERR_FORMAT || s == CLCNN_ERR_UNSUPPORTED;
        return 1;
    }
    char times[256] = "", rule[64];
    size_t len = 0;
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT && len < sizeof times; a++) {
        const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a);
        int m = r.ms[a] >= 0
                    ? snprintf(times + len, sizeof times - len, "%s%s %.2f", len ? "  " : "", an,
                               r.ms[a])
                    : snprintf(times + len, sizeof times - len, "%s%s -", len ? "  " : "", an);
        if (m > 0) len += (size_t)m;
    }
    double best = r.ms[r.winner];
    if (r.rule_ms >= 0 && best > 0)
        snprintf(rule, sizeof rule, "%s %.2f %.2fx", clcnn_conv_algo_name(r.rule), r.rule_ms,
                 r.rule_ms / best);
    else
        snprintf(rule, sizeof rule, "%s -", clcnn_conv_algo_name(r.rule));
    printf("%-20s %-17s %-30s %-14s %-18s %-24s %s\n", name, op_words[pass], dims,
           clcnn_conv_algo_name(r.winner), r.params[0] ? r.params : "-", rule, times);
    if (r.note[0]) printf("%-20s %-17s note: %s\n", "", "", r.note);
    fflush(stdout);
    return 0;
}

static void print_stored(clcnn_device *dev, const clcnn_conv2d_tune_options *opt, int tuned) {
    char path[4200];
    if (!opt->save)
        fprintf(stderr, "clcnn tune: %d results, not stored (--no-save)\n", tuned);
    else if (!clcnn_tune_file_path(dev, path, sizeof path))
        fprintf(stderr, "clcnn tune: %d results, not stored (CLCNN_CACHE_DIR=off)\n", tuned);
    else
        fprintf(stderr, "clcnn tune: %d results stored in %s\n", tuned, path);
}

/* Tune every conv shape of the suite for the passes in want. */
static int run_suite(clcnn_device *dev, const char *suite, const int want[CLCNN_CONV_PASS_COUNT],
                     const char *filter, const clcnn_conv2d_tune_options *opt, int quiet) {
    perf_shape *shapes = NULL;
    size_t count = 0;
    char err[512];
    if (perf_suite_load(suite, &shapes, &count, err, sizeof err) != 0) {
        fprintf(stderr, "clcnn tune: %s\n", err);
        return 2;
    }
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    fprintf(stderr, "clcnn tune: convolution algorithms of suite %s on %s (%s)\n", suite,
            info->name, info->driver_version);
    print_header();
    int rc = 0, tuned = 0, stop = 0;
    for (size_t i = 0; i < count && !stop; i++) {
        const perf_shape *sh = &shapes[i];
        if (sh->kind != PERF_CONV || (filter && !strstr(sh->name, filter))) continue;
        clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
        d.stride_h = d.stride_w = sh->stride;
        d.pad_h = d.pad_w = sh->pad;
        d.dilation_h = d.dilation_w = sh->dilation;
        d.groups = sh->groups;
        size_t x[4] = {(size_t)sh->n, (size_t)sh->c, (size_t)sh->h, (size_t)sh->w};
        size_t w[4] = {(size_t)sh->k, (size_t)(sh->c / (sh->groups > 0 ? sh->groups : 1)),
                       (size_t)sh->r, (size_t)sh->s};
        for (int p = 0; p < CLCNN_CONV_PASS_COUNT && !stop; p++) {
            if (!want[p]) continue;
            int e = tune_one(dev, sh->name, p, &d, x, w, opt, quiet, &stop);
            rc |= e;
            tuned += !e;
        }
    }
    if (!stop) print_stored(dev, opt, tuned);
    free(shapes);
    return rc;
}

/* The graph of an ONNX file (a name ending in .onnx) or of a zoo model. */
static clcnn_status model_graph(clcnn_device *dev, const char *model, clcnn_graph **g) {
    size_t len = strlen(model);
    if (len > 5 && !strcmp(model + len - 5, ".onnx")) return clcnn_graph_load_onnx(model, g);
    clcnn_model_info m;
    if (!find_model_or_say("clcnn tune", model, &m))
        return clcnn_set_error(CLCNN_ERR_INVALID_ARG, "no model '%s'", model);
    clcnn_net *net = NULL;
    clcnn_status s = clcnn_net_create_model(dev, m.name, 0, &net);
    if (s == CLCNN_OK) s = clcnn_net_init(net, CLCNN_INIT_HE, 1);
    if (s == CLCNN_OK) s = clcnn_net_graph(net, g);
    clcnn_net_free(net);
    return s;
}

static int same_conv(const clcnn_plan_conv *a, const clcnn_plan_conv *b) {
    clcnn_conv2d_desc da = a->desc, db = b->desc;
    da.algo = db.algo = CLCNN_CONV_AUTO;
    return a->pass == b->pass && !memcmp(&da, &db, sizeof da) && !memcmp(a->x, b->x, sizeof a->x) &&
           !memcmp(a->w, b->w, sizeof a->w);
}

/* Tune every distinct convolution pass of the model's plan (training plan with train) at
 * this batch size. */
static int run_model(clcnn_device *dev, const char *model, int batch, int train,
                     const int want[CLCNN_CONV_PASS_COUNT], const clcnn_conv2d_tune_options *opt,
                     int quiet) {
    clcnn_graph *g = NULL;
    clcnn_status s = model_graph(dev, model, &g);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn tune: model %s: %s: %s\n", model, clcnn_status_str(s),
                clcnn_last_error());
        return s == CLCNN_ERR_INVALID_ARG ? 2 : 1;
    }
    clcnn_plan *plan = NULL;
    clcnn_train_plan *tplan = NULL;
    if (train) {
        clcnn_train_options to = {.conv_algo = CLCNN_CONV_AUTO, .find = -1};
        s = clcnn_train_plan_create(dev, g, batch, &to, &tplan);
    } else {
        clcnn_plan_options po = clcnn_plan_options_default();
        po.find = -1;
        s = clcnn_plan_create(dev, g, batch, &po, &plan);
    }
    clcnn_graph_free(g);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn tune: %s plan of %s at batch %d: %s: %s\n",
                train ? "training" : "inference", model, batch, clcnn_status_str(s),
                clcnn_last_error());
        return 1;
    }
    int n = train ? clcnn_train_plan_num_convs(tplan) : clcnn_plan_num_convs(plan);
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    fprintf(stderr, "clcnn tune: the %d convolution passes of the %s plan of %s, batch %d, on %s\n",
            n, train ? "training" : "inference", model, batch, info->name);
    print_header();
    int rc = 0, tuned = 0, stop = 0;
    for (int i = 0; i < n && !stop; i++) {
        const clcnn_plan_conv *c =
            train ? clcnn_train_plan_conv_at(tplan, i) : clcnn_plan_conv_at(plan, i);
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = same_conv(c, train ? clcnn_train_plan_conv_at(tplan, j)
                                      : clcnn_plan_conv_at(plan, j));
        if (seen || !want[c->pass]) continue;
        int e = tune_one(dev, c->node, c->pass, &c->desc, c->x, c->w, opt, quiet, &stop);
        rc |= e;
        tuned += !e;
    }
    if (!stop) print_stored(dev, opt, tuned);
    clcnn_plan_free(plan);
    clcnn_train_plan_free(tplan);
    return rc;
}

static void print_line(void *user, const char *line) {
    (void)user;
    fprintf(stderr, "%s\n", line);
}

static int fail(const char *what, clcnn_status s) {
    fprintf(stderr, "clcnn tune: %s: %s: %s\n", what, clcnn_status_str(s), clcnn_last_error());
    return 1;
}

int cmd_tune(int argc, char **argv) {
    const char *selector = NULL, *export_path = NULL, *import_path = NULL;
    const char *suite = NULL, *filter = NULL, *model = NULL;
    int show = 0, peak = 0, quiet = 0, runs = 0, algo_only = 0, train = 0;
    long long max_cands = 0;
    long long batch = 8;
    int want[CLCNN_CONV_PASS_COUNT] = {1, 1, 1};
    clcnn_gemm_tune_options opt = clcnn_gemm_tune_options_default();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--device") && has_value) {
            selector = argv[++i];
        } else if (!strcmp(a, "--budget") && has_value) {
            char *end = NULL;
            opt.budget_s = strtod(argv[++i], &end);
            if (!end || *end || opt.budget_s <= 0) {
                fprintf(stderr, "clcnn tune: --budget needs a positive number of seconds\n");
                return 2;
            }
        } else if (!strcmp(a, "--exhaustive")) {
            opt.exhaustive = 1;
        } else if (!strcmp(a, "--seed") && has_value) {
            opt.seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--no-save")) {
            opt.save = 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--algo-only")) {
            algo_only = 1;
        } else if (!strcmp(a, "--candidates") && has_value) {
            if (parse_long("clcnn tune", "--candidates", argv[++i], 1, 1000, &max_cands)) return 2;
        } else if (!strcmp(a, "--suite") && has_value) {
            suite = argv[++i];
        } else if (!strcmp(a, "--model") && has_value) {
            model = argv[++i];
        } else if (!strcmp(a, "--batch") && has_value) {
            if (parse_long("clcnn tune", "--batch", argv[++i], 1, 1 << 24, &batch)) return 2;
        } else if (!strcmp(a, "--train")) {
            train = 1;
        } else if (!strcmp(a, "--op") && has_value) {
            if (parse_ops(argv[++i], want) != 0) return 2;
        } else if (!strcmp(a, "--filter") && has_value) {
            filter = argv[++i];
        } else if (!strcmp(a, "--runs") && has_value) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 1 || v > 1000) {
                fprintf(stderr, "clcnn tune: --runs needs a number from 1 to 1000\n");
                return 2;
            }
            runs = (int)v;
        } else if (!strcmp(a, "--list")) {
            perf_suite_list(stdout);
            return 0;
        } else if (!strcmp(a, "--show")) {
            show = 1;
        } else if (!strcmp(a, "--peak")) {
            peak = 1;
        } else if (!strcmp(a, "--export") && has_value) {
            export_path = argv[++i];
        } else if (!strcmp(a, "--import") && has_value) {
            import_path = argv[++i];
        } else {
            fprintf(stderr, "clcnn tune: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (show + peak + (export_path != NULL) + (import_path != NULL) + (suite != NULL) +
            (model != NULL) >
        1) {
        fprintf(stderr, "clcnn tune: --show, --peak, --export, --import, --suite and --model "
                        "exclude each other\n");
        return 2;
    }

    clcnn_device *dev = NULL;
    clcnn_status s = clcnn_device_open(selector, &dev);
    if (s != CLCNN_OK) return fail("opening the device", s);
    const clcnn_device_info *info = clcnn_device_get_info(dev);
    char path[4200];
    int have_path = clcnn_tune_file_path(dev, path, sizeof path);
    int rc = 0;

    if (show) {
        char *json = NULL;
        s = clcnn_tune_show(dev, &json);
        if (s == CLCNN_ERR_NOT_FOUND) {
            printf("%s: not tuned (%s)\n", info->name, clcnn_last_error());
        } else if (s != CLCNN_OK) {
            rc = fail("reading the tuning file", s);
        } else {
            printf("# %s\n%s\n", path, json);
            free(json);
        }
    } else if (export_path) {
        s = clcnn_tune_export(dev, export_path);
        if (s != CLCNN_OK)
            rc = fail("exporting", s);
        else
            printf("exported %s to %s\n", path, export_path);
    } else if (import_path) {
        s = clcnn_tune_import(dev, import_path);
        if (s != CLCNN_OK)
            rc = fail("importing", s);
        else
            printf("imported %s as %s and applied it\n", import_path, path);
    } else if (suite || model) {
        clcnn_conv2d_tune_options copt = clcnn_conv2d_tune_options_default();
        copt.runs = runs > 0 ? runs : opt.exhaustive ? 9 : 0;
        copt.save = opt.save;
        copt.seed = opt.seed;
        copt.algo_only = algo_only;
        copt.max_candidates = (int)max_cands;
        if (!quiet) copt.progress = print_line;
        rc = suite ? run_suite(dev, suite, want, filter, &copt, quiet)
                   : run_model(dev, model, (int)batch, train, want, &copt, quiet);
    } else if (peak) {
        clcnn_peak p;
        s = clcnn_device_peak(dev, &p);
        if (s != CLCNN_OK)
            rc = fail("measuring the peak", s);
        else
            printf("%s: %.1f GFLOPS (multiply-add), %.1f GB/s (copy)\n", info->name, p.gflops,
                   p.gbps);
    } else {
        if (!quiet) {
            opt.progress = print_line;
            opt.user = NULL;
        }
        double budget = opt.budget_s > 0 ? opt.budget_s
                        : opt.exhaustive ? CLCNN_TUNE_BUDGET_EXHAUSTIVE
                                         : CLCNN_TUNE_BUDGET_ON;
        fprintf(stderr, "clcnn tune: tuning SGEMM on %s (%s) for up to %.0f s%s\n", info->name,
                info->driver_version, budget, opt.exhaustive ? ", exhaustive" : "");
        clcnn_gemm_tune_result r;
        s = clcnn_gemm_tune(dev, &opt, &r);
        if (s != CLCNN_OK) {
            rc = fail("tuning", s);
        } else {
            printf("device:            %s\n", info->name);
            printf("SGEMM 1024^3:      %.1f GFLOPS before, %.1f GFLOPS after (%.2fx)\n",
                   r.before_gflops, r.after_gflops, r.after_gflops / r.before_gflops);
            printf("all tuning shapes: %.1f -> %.1f GFLOPS (geometric mean)\n", r.before_score,
                   r.after_score);
            printf("search:            %.0f s, %d configurations (%d rejected)\n", r.seconds,
                   r.tried, r.failed);
            printf("parameters:        %s\n", r.params);
            if (!r.improved)
                printf("stored:            nothing (no configuration beat the ones in force)\n");
            else if (!opt.save)
                printf("stored:            no (--no-save)\n");
            else if (!have_path)
                printf("stored:            no (CLCNN_CACHE_DIR=off)\n");
            else
                printf("stored:            %s\n", path);
        }
    }
    clcnn_device_close(dev);
    return rc;
}
