/* clcnn export: a checkpoint (or a zoo model with its initial weights) as an ONNX model
 * (clcnn_graph_save_onnx). With --test-data DIR it also writes an ONNX test case beside
 * it: a seeded random input batch (input_0.pb) and what the model computes on it here
 * (output_0.pb), so `clcnn onnx test` or another runtime can check the file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "models.h"

#define PROG "clcnn export"

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn export --checkpoint FILE --out MODEL.onnx [options]\n"
            "       clcnn export --model NAME --out MODEL.onnx [options]\n\n"
            "Write a model with its weights as an ONNX file (opset 17, batch dimension 'N',\n"
            "batch norm with its running statistics, dropout in inference form). Parameter\n"
            "names are the checkpoint's.\n\n"
            "  --checkpoint FILE   checkpoint written by clcnn train\n"
            "  --model NAME        zoo model (with --checkpoint: overrides its metadata; alone:\n"
            "                      the model's initial weights from --seed)\n"
            "  --out FILE          the ONNX file to write (replaced only when complete)\n"
            "  --test-data DIR     also write DIR/input_0.pb (seeded random input) and\n"
            "                      DIR/output_0.pb (the model's output computed here)\n"
            "  --batch N           samples in the test data (default 2)\n"
            "  --seed S            seed of the initial weights and the test input (default 1)\n"
            "  --device SEL        OpenCL device\n");
}

/* Run g on a seeded random batch and write the input and output 0 as TensorProto files. */
static clcnn_status write_test_data(clcnn_device *dev, clcnn_graph *g, const char *dir, int batch,
                                    unsigned long long seed) {
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    const char *in = clcnn_graph_input_name(g, 0);
    clcnn_status s = clcnn_graph_value_shape(g, in, &nd, d);
    if (s) return s;
    if (clcnn_graph_num_inputs(g) != 1 || nd < 1 || nd > 4)
        return clcnn_set_error(CLCNN_ERR_UNSUPPORTED, "--test-data: the model must have one input "
                                                      "of 1 to 4 dimensions");
    size_t shape[4], numel = 1;
    for (int i = 0; i < nd; i++) {
        if (d[i] == CLCNN_GRAPH_BATCH) d[i] = batch;
        shape[i] = (size_t)d[i];
        numel *= shape[i];
    }
    float *x = malloc(numel * sizeof *x), *y = NULL;
    clcnn_tensor *xt = NULL;
    clcnn_plan *p = NULL;
    if (!x) return clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < numel; i++) { /* xorshift64*, uniform in [-1, 1) */
        r ^= r >> 12, r ^= r << 25, r ^= r >> 27;
        x[i] = (float)((r * 0x2545F4914F6CDD1Dull) >> 40) / (float)(1 << 23) - 1.0f;
    }
    char path[4096];
    s = clcnn_tensor_create(dev, CLCNN_F32, nd, shape, &xt);
    if (!s) s = clcnn_tensor_upload(xt, x, numel * sizeof *x);
    if (!s) s = clcnn_plan_create(dev, g, batch, NULL, &p);
    if (!s) s = clcnn_plan_run(p, (const clcnn_tensor *const[]){xt}, 1);
    const clcnn_tensor *yt = s ? NULL : clcnn_plan_output(p, 0);
    int yn = 0;
    int64_t yd[CLCNN_GRAPH_MAX_DIMS];
    size_t ynumel = 1;
    if (!s) s = clcnn_graph_value_shape(g, clcnn_graph_output_name(g, 0), &yn, yd);
    for (int i = 0; !s && i < yn; i++) {
        if (yd[i] == CLCNN_GRAPH_BATCH) yd[i] = batch;
        ynumel *= (size_t)yd[i];
    }
    if (!s && !(y = malloc(ynumel * sizeof *y)))
        s = clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) s = clcnn_tensor_download(yt, y, ynumel * sizeof *y);
    if (!s) {
        snprintf(path, sizeof path, "%s/input_0.pb", dir);
        s = clcnn_onnx_save_tensor(path, in, CLCNN_F32, nd, d, x);
    }
    if (!s) {
        snprintf(path, sizeof path, "%s/output_0.pb", dir);
        s = clcnn_onnx_save_tensor(path, clcnn_graph_output_name(g, 0), CLCNN_F32, yn, yd, y);
    }
    clcnn_plan_free(p);
    clcnn_tensor_free(xt);
    free(x);
    free(y);
    return s;
}

int cmd_export(int argc, char **argv) {
    /* string options by their code: --checkpoint --model --out --test-data --device */
    enum { O_CKPT = 256, O_MODEL, O_OUT, O_TEST, O_DEVICE, O_BATCH, O_SEED };
    const char *arg[5] = {NULL};
    long long batch = 2, seed = 1;
    static const struct option opts[] = {{"checkpoint", required_argument, 0, O_CKPT},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"out", required_argument, 0, O_OUT},
                                         {"test-data", required_argument, 0, O_TEST},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o >= O_CKPT && o <= O_DEVICE) {
            arg[o - O_CKPT] = optarg;
        } else if (o == O_BATCH || o == O_SEED) {
            if (o == O_BATCH ? parse_long(PROG, "--batch", optarg, 1, 1024, &batch)
                             : parse_long(PROG, "--seed", optarg, 0, 1LL << 62, &seed))
                return 2;
        } else {
            usage(o == 'h' ? stdout : stderr);
            return o == 'h' ? 0 : 2;
        }
    }
    const char *ckpt = arg[0], *model = arg[1], *out = arg[2], *test_dir = arg[3];
    if (optind < argc || !out || (!ckpt && !model)) {
        fprintf(stderr, PROG ": %s%s\n",
                optind < argc ? "unexpected argument "
                : !out        ? "--out is required"
                              : "give "
                                "--checkpoint or --model",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return 2;
    }
    clcnn_device *dev = open_device_or_say(arg[4]);
    if (!dev) return 1;
    clcnn_model_info m = {0};
    clcnn_net *net = NULL;
    clcnn_graph *g = NULL;
    clcnn_status s = CLCNN_OK;
    int rc = 1;
    if (ckpt) {
        if (open_checkpoint_model(dev, ckpt, model, &m, &net)) goto done;
    } else {
        if (!find_model_or_say(PROG, model, &m)) goto done;
        if ((s = clcnn_net_create_model(dev, m.name, m.classes, &net)) ||
            (s = clcnn_net_init(net, CLCNN_INIT_HE, (uint64_t)seed))) {
            rc = report(PROG, s);
            goto done;
        }
    }
    if ((s = clcnn_net_graph(net, &g)) || (s = clcnn_graph_save_onnx(g, out))) {
        rc = report(PROG, s);
        goto done;
    }
    if (test_dir) {
        mkdir(test_dir, 0755); /* an existing folder is fine; other failures show below */
        if ((s = write_test_data(dev, g, test_dir, (int)batch, (unsigned long long)seed))) {
            rc = report(PROG, s);
            goto done;
        }
    }
    printf("%s: model '%s' (%zu parameters, %d nodes) written to %s%s%s\n",
           ckpt ? ckpt : "initial weights", m.name, clcnn_net_param_count(net),
           clcnn_graph_num_nodes(g), out, test_dir ? "; test data in " : "",
           test_dir ? test_dir : "");
    rc = 0;
done:
    clcnn_graph_free(g);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    return rc;
}
