/* clcnn: the command-line front end. */
#include <stdio.h>
#include <string.h>

#include "clcnn/clcnn.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"devices", cmd_devices, "list OpenCL devices (--json for JSON)"},
    {"cache", cmd_cache, "program cache: warm [--device SEL] | clear | info"},
    {"train", cmd_train, "train a CNN (default: Fashion-MNIST on the default device)"},
    {"eval", cmd_eval, "evaluate a checkpoint on the test set"},
    {"predict", cmd_predict, "classify image files with a checkpoint"},
    {"summary", cmd_summary, "print a model's graph (shapes, parameters, FLOPs) and plan memory"},
    {"visualize", cmd_visualize, "write PNGs of first-layer filters and feature maps"},
    {"tune", cmd_tune, "tune CLBlast SGEMM for a device; show/export/import the tuning file"},
    {"onnx", cmd_onnx, "ONNX models: test DIR... runs ONNX backend test cases"},
    {"export", cmd_export, "write a checkpoint or zoo model as an ONNX file"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn COMMAND [options]   (clcnn %s)\n\ncommands:\n", clcnn_version());
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'clcnn COMMAND --help' for a command's options.\n"
               "Environment: CLCNN_DEVICE (device selector), CLCNN_CACHE_DIR (program cache, "
               "'off' disables),\n  CLCNN_VERBOSE=1 (build and cache messages), CLCNN_TUNE, "
               "CLCNN_KERNEL_DIR (load cl/*.cl from disk).\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("clcnn %s\n", clcnn_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clcnn: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
