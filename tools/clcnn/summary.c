/* clcnn summary: a model's layers with their output shapes and parameter counts. */
#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "models.h"

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn summary [--model NAME] [--device SEL]\n\n"
               "Print each layer of a model with its output shape (per sample, C x H x W)\n"
               "and parameter count, and the totals (with the model's default classes).\n"
               "Models (default bn):\n");
    list_models(f, "  ");
}

/* "1,234,567" */
static const char *grouped(size_t v, char *buf) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

int cmd_summary(int argc, char **argv) {
    const char *model_name = "bn", *device = NULL;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"device", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:d:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            model_name = optarg;
            break;
        case 'd':
            device = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "clcnn summary: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    clcnn_model_info m;
    if (!find_model_or_say("clcnn summary", model_name, &m)) return 2;
    clcnn_device *dev = open_device_or_say(device);
    if (!dev) return 1;
    clcnn_net *net = NULL;
    clcnn_status s = clcnn_net_create_model(dev, m.name, 0, &net);
    if (s != CLCNN_OK) {
        clcnn_device_close(dev);
        return report("clcnn summary", s);
    }
    char b1[32], b2[32];
    printf("model %s: input %d x %d x %d, %d classes\n\n", m.name, m.c, m.h, m.w, m.classes);
    printf("%-4s %-10s %-42s %-12s %12s\n", "#", "layer", "configuration", "output", "params");
    char in_shape[48];
    snprintf(in_shape, sizeof in_shape, "%dx%dx%d", m.h, m.w, m.c);
    printf("%-4s %-10s %-42s %-12s %12s\n", "-", "input", "", in_shape, "0");
    size_t total = 0;
    double flops = 0;
    int n = clcnn_net_num_layers(net);
    for (int i = 0; i < n; i++) {
        clcnn_layer_info info;
        if ((s = clcnn_net_layer_info(net, i, &info)) != CLCNN_OK) break;
        char shape[48];
        if (info.out_h == 1 && info.out_w == 1)
            snprintf(shape, sizeof shape, "%d", info.out_c);
        else
            snprintf(shape, sizeof shape, "%dx%dx%d", info.out_h, info.out_w, info.out_c);
        printf("%-4d %-10s %-42.42s %-12s %12s\n", i, info.kind, info.desc, shape,
               grouped(info.params, b1));
        total += info.params;
        flops += info.flops;
    }
    if (s == CLCNN_OK) {
        printf("\ntotal parameters: %s", grouped(total, b1));
        if (clcnn_net_param_count(net) != total)
            printf(" (the net reports %s)", grouped(clcnn_net_param_count(net), b2));
        printf("\nmultiply-adds per sample: %.4g M (convolutions and linear layers)", flops / 2e6);
        printf("\noutput shapes: H x W x C per sample; features after flatten; a residual\n"
               "layer adds its shortcut of the block input to the output of layers A-B\n");
    }
    clcnn_net_free(net);
    clcnn_device_close(dev);
    return s == CLCNN_OK ? 0 : report("clcnn summary", s);
}
