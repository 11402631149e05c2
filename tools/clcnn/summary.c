/* clcnn summary: a model's graph (nodes, output shapes, parameters, multiply-adds) and the
 * plan a device would run for it (steps, fusions, activation memory). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "models.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn summary [--model NAME|FILE.onnx] [--batch N] [--steps] [--device SEL]\n\n"
            "Print the model's graph: each node with its op, configuration, output shape\n"
            "(per sample, H x W x C), parameters and multiply-adds, and the totals (with\n"
            "the model's default classes). Then the plan the device would run for a\n"
            "batch of N (default 1): steps after folding and fusion, the peak activation\n"
            "memory with buffer reuse next to the sum of all activations; --steps lists\n"
            "the plan's steps with the algorithm of each convolution.\n"
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

/* A value's shape per sample: "HxWxC" for (N, C, H, W), "F" for (N, F). */
static void sample_shape(const clcnn_node_info *info, char *buf, size_t cap) {
    const int64_t *d = info->dims;
    if (info->ndim == 4 && d[2] == 1 && d[3] == 1)
        snprintf(buf, cap, "%lld", (long long)d[1]);
    else if (info->ndim == 4)
        snprintf(buf, cap, "%lldx%lldx%lld", (long long)d[2], (long long)d[3], (long long)d[1]);
    else if (info->ndim == 2)
        snprintf(buf, cap, "%lld", (long long)d[1]);
    else
        snprintf(buf, cap, "%d-d", info->ndim);
}

static clcnn_status print_graph(clcnn_graph *g, const clcnn_model_info *m, size_t net_params) {
    char b1[32], b2[32];
    if (m->classes > 0)
        printf("model %s: input %d x %d x %d, %d classes\n\n", m->name, m->c, m->h, m->w,
               m->classes);
    else
        printf("model %s: input %d x %d x %d\n\n", m->name, m->c, m->h, m->w);
    printf("%-4s %-18s %-14s %-34s %-12s %12s %10s\n", "#", "op", "name", "configuration", "output",
           "params", "M mul-add");
    char in_shape[48];
    snprintf(in_shape, sizeof in_shape, "%dx%dx%d", m->h, m->w, m->c);
    printf("%-4s %-18s %-14s %-34s %-12s %12s %10s\n", "-", "input", "input", "", in_shape, "0",
           "");
    size_t total = 0;
    double flops = 0;
    clcnn_status s = CLCNN_OK;
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        if ((s = clcnn_graph_node_info(g, i, &info)) != CLCNN_OK) return s;
        char shape[48], mac[32] = "";
        sample_shape(&info, shape, sizeof shape);
        if (info.flops > 0) snprintf(mac, sizeof mac, "%.1f", info.flops / 2e6);
        printf("%-4d %-18s %-14.14s %-34.34s %-12s %12s %10s\n", i, info.op_type, info.name,
               info.desc, shape, grouped(info.params, b1), mac);
        total += info.params;
        flops += info.flops;
    }
    printf("\ntotal parameters: %s", grouped(total, b1));
    if (net_params && net_params != total) printf(" (the net reports %s)", grouped(net_params, b2));
    printf("\nmultiply-adds per sample: %.4g M (convolutions and Gemm)\n", flops / 2e6);
    printf("output shapes: H x W x C per sample; features after Flatten and Gemm\n");
    return CLCNN_OK;
}

static clcnn_status print_plan(clcnn_device *dev, clcnn_graph *g, int batch, int steps) {
    clcnn_plan *p = NULL;
    clcnn_status s = clcnn_plan_create(dev, g, batch, NULL, &p);
    if (s != CLCNN_OK) return s;
    clcnn_plan_memory mem;
    clcnn_plan_get_memory(p, &mem);
    printf("\nplan for batch %d on %s: %d steps (%d batch norms folded into convolutions, "
           "%d activations and %d residual adds fused)\n",
           batch, clcnn_device_get_info(dev)->name, mem.steps, mem.fused_batchnorm,
           mem.fused_activation, mem.fused_add);
    printf("activation memory: %.2f MB with buffer reuse; %.2f MB for the plan's values summed, "
           "%.2f MB for every node output of the graph (%.1fx more)\n",
           mem.activation_bytes / 1e6, mem.activation_sum / 1e6, mem.graph_sum / 1e6,
           mem.activation_bytes ? (double)mem.graph_sum / (double)mem.activation_bytes : 0.0);
    printf("parameters: %.2f MB after folding (convolution algorithms may keep them in "
           "another layout)\n",
           mem.param_bytes / 1e6);
    if (mem.scratch_bytes)
        printf("step buffers: %.2f MB (padded inputs of convolutions with per-side pads, "
               "uncropped transposed convolutions)\n",
               mem.scratch_bytes / 1e6);
    if (steps)
        for (int i = 0; i < clcnn_plan_num_steps(p); i++)
            printf("  step %-4d %s\n", i, clcnn_plan_step_desc(p, i));
    clcnn_plan_free(p);
    return CLCNN_OK;
}

int cmd_summary(int argc, char **argv) {
    const char *model_name = "bn", *device = NULL;
    long long batch = 1;
    int steps = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"device", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'b'}, {"steps", no_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:d:b:sh", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            model_name = optarg;
            break;
        case 'd':
            device = optarg;
            break;
        case 'b':
            if (parse_long("clcnn summary", "--batch", optarg, 1, 4096, &batch)) return 2;
            break;
        case 's':
            steps = 1;
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
    size_t len = strlen(model_name);
    int onnx = len > 5 && !strcmp(model_name + len - 5, ".onnx");
    clcnn_graph *g = NULL;
    clcnn_status s = CLCNN_OK;
    if (onnx) {
        if ((s = clcnn_graph_load_onnx(model_name, &g)) != CLCNN_OK)
            return report("clcnn summary", s);
        memset(&m, 0, sizeof m);
        m.name = model_name;
        int nd = 0;
        int64_t d[CLCNN_GRAPH_MAX_DIMS] = {0};
        if (clcnn_graph_num_inputs(g) > 0)
            clcnn_graph_value_shape(g, clcnn_graph_input_name(g, 0), &nd, d);
        m.c = nd > 1 ? (int)d[1] : 0;
        m.h = nd > 2 ? (int)d[2] : 1;
        m.w = nd > 3 ? (int)d[3] : 1;
    } else if (!find_model_or_say("clcnn summary", model_name, &m)) {
        return 2;
    }
    clcnn_device *dev = open_device_or_say(device);
    if (!dev) {
        clcnn_graph_free(g);
        return 1;
    }
    clcnn_net *net = NULL;
    size_t net_params = 0;
    if (!onnx) {
        s = clcnn_net_create_model(dev, m.name, 0, &net);
        if (s == CLCNN_OK) s = clcnn_net_init(net, CLCNN_INIT_HE, 1);
        if (s == CLCNN_OK) s = clcnn_net_graph(net, &g);
        net_params = clcnn_net_param_count(net);
    }
    if (s == CLCNN_OK) s = print_graph(g, &m, onnx ? 0 : net_params);
    clcnn_net_free(net);
    if (s == CLCNN_OK) s = print_plan(dev, g, (int)batch, steps);
    clcnn_graph_free(g);
    clcnn_device_close(dev);
    return s == CLCNN_OK ? 0 : report("clcnn summary", s);
}
