/* clcnn tune: tune CLBlast's SGEMM for a device and manage the per-device tuning file.
 * Exit status: 0 on success, 1 on an error, 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/clcnn.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: clcnn tune [--device SEL] [--budget SECONDS] [--exhaustive] [--seed N]\n"
        "                  [--no-save] [--quiet]\n"
        "       clcnn tune --show | --export FILE | --import FILE | --peak  [--device SEL]\n\n"
        "Search CLBlast's SGEMM kernel parameters for the device (random and greedy search\n"
        "over valid configurations, each one built, timed on SGEMM 1024^3 and\n"
        "convolution-like shapes and checked against a host GEMM), apply the winner and\n"
        "store it in the device's tuning file beside the program cache. Every later\n"
        "process applies it before its first matrix product.\n\n"
        "  --device SEL     device selector (index, cpu/gpu, or a name substring)\n"
        "  --budget S       wall-clock budget in seconds (default %.0f; %.0f with\n"
        "                   --exhaustive or CLCNN_TUNE=exhaustive)\n"
        "  --exhaustive     larger search space and budget\n"
        "  --seed N         random search seed (default 1)\n"
        "  --no-save        tune and report, but do not write the tuning file\n"
        "  --quiet          no line per configuration tried\n"
        "  --show           print the device's tuning file\n"
        "  --export FILE    copy the device's tuning file to FILE\n"
        "  --import FILE    check FILE (made for a device of the same name), store and apply it\n"
        "  --peak           measure and print the device's peak GFLOPS and GB/s\n"
        "  --help           this text\n\n"
        "CLCNN_TUNE=off disables applying and tuning; CLCNN_CACHE_DIR sets where the tuning\n"
        "file lives.\n",
        CLCNN_TUNE_BUDGET_ON, CLCNN_TUNE_BUDGET_EXHAUSTIVE);
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
    int show = 0, peak = 0, quiet = 0;
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
    if (show + peak + (export_path != NULL) + (import_path != NULL) > 1) {
        fprintf(stderr, "clcnn tune: --show, --peak, --export and --import exclude each other\n");
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
