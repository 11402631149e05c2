/* clcnn eval: test-set accuracy, per-class accuracy and the confusion matrix of a
 * checkpoint. The model, the data directory and the normalisation come from the
 * checkpoint's metadata unless given. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "models.h"

#define PROG "clcnn eval"

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn eval --checkpoint FILE [options]\n\n"
               "Evaluate a checkpoint on the test set: accuracy, loss, per-class accuracy and\n"
               "the confusion matrix.\n\n"
               "  --checkpoint FILE   checkpoint written by clcnn train (default "
               "./clcnn-fashion.safetensors)\n"
               "  --model NAME        model (default: from the checkpoint); an ONNX file without\n"
               "                      --checkpoint: that file's own weights\n"
               "  --data DIR          MNIST-format directory (default: the training data)\n"
               "  --limit-test N      first N test images only\n"
               "  --train             evaluate on the training split instead\n"
               "  --device SEL        OpenCL device\n"
               "  --json              one JSON object instead of the tables\n");
}

static const char *class_name(int i, char *buf, size_t cap, int fashion) {
    const char *n = fashion ? clcnn_fashion_mnist_class_name(i) : NULL;
    if (n) return n;
    snprintf(buf, cap, "class %d", i);
    return buf;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = "clcnn-fashion.safetensors", *model = NULL, *data = NULL, *device = NULL;
    long long limit = 0;
    int json = 0, use_train = 0, set_ckpt = 0;
    enum { O_CKPT = 256, O_MODEL, O_DATA, O_LIMIT, O_DEVICE, O_JSON, O_TRAIN };
    static const struct option opts[] = {{"checkpoint", required_argument, 0, O_CKPT},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"data", required_argument, 0, O_DATA},
                                         {"limit-test", required_argument, 0, O_LIMIT},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"json", no_argument, 0, O_JSON},
                                         {"train", no_argument, 0, O_TRAIN},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_CKPT:
            ckpt = optarg;
            set_ckpt = 1;
            break;
        case O_MODEL:
            model = optarg;
            break;
        case O_DATA:
            data = optarg;
            break;
        case O_LIMIT:
            if (parse_long(PROG, "--limit-test", optarg, 1, 1LL << 31, &limit)) return 2;
            break;
        case O_DEVICE:
            device = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_TRAIN:
            use_train = 1;
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
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    /* an ONNX file alone: its own weights, the default normalisation */
    if (model && is_onnx_path(model) && !set_ckpt) ckpt = NULL;
    char data_buf[1024];
    if (ckpt && !data && ckpt_meta_str(ckpt, "data", data_buf, sizeof data_buf)) data = data_buf;

    clcnn_dataset *ds = NULL;
    clcnn_status s = clcnn_dataset_load_mnist_first(
        data, use_train ? CLCNN_SPLIT_TRAIN : CLCNN_SPLIT_TEST, (size_t)limit, &ds);
    if (s) return report(PROG, s);
    double mean = ckpt ? ckpt_meta_num(ckpt, "norm_mean", CLCNN_FASHION_MNIST_MEAN)
                       : CLCNN_FASHION_MNIST_MEAN;
    double std =
        ckpt ? ckpt_meta_num(ckpt, "norm_std", CLCNN_FASHION_MNIST_STD) : CLCNN_FASHION_MNIST_STD;
    if ((s = clcnn_dataset_set_normalization(ds, (float)mean, (float)std))) {
        clcnn_dataset_free(ds);
        return report(PROG, s);
    }

    clcnn_device *dev = open_device_or_say(device);
    clcnn_model_info m = {0};
    clcnn_net *net = NULL;
    int rc = 1;
    if (!dev) goto out;
    if (ckpt ? open_checkpoint_model(dev, ckpt, model, &m, &net)
             : open_model(PROG, dev, model, 0, CLCNN_INIT_HE, 0, &m, &net))
        goto out;
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    if (c != m.c || h != m.h || w != m.w) {
        fprintf(stderr, PROG ": model '%s' takes %dx%dx%d inputs; the data has %dx%dx%d\n", m.name,
                m.c, m.h, m.w, c, h, w);
        goto out;
    }
    eval_result r;
    double t0 = now_seconds();
    if ((s = evaluate(dev, net, ds, NULL, &r))) {
        rc = report(PROG, s);
        goto out;
    }
    double secs = now_seconds() - t0;
    int fashion = !data || !strcmp(data, CLCNN_FASHION_MNIST_DIR);
    char nb[32];
    if (json) {
        printf("{\"checkpoint\": \"%s\", \"model\": \"%s\", \"images\": %zu, \"correct\": %zu, "
               "\"accuracy\": %.9g, \"loss\": %.9g, \"seconds\": %.3f, \"per_class\": [",
               ckpt ? ckpt : "", m.name, r.n, r.correct, r.n ? (double)r.correct / r.n : 0.0,
               r.loss, secs);
        for (int i = 0; i < r.classes; i++) {
            size_t tot = 0;
            for (int j = 0; j < r.classes; j++)
                tot += r.confusion[i][j];
            printf("%s%.9g", i ? ", " : "", tot ? (double)r.confusion[i][i] / tot : 0.0);
        }
        printf("], \"confusion\": [");
        for (int i = 0; i < r.classes; i++) {
            printf("%s[", i ? ", " : "");
            for (int j = 0; j < r.classes; j++)
                printf("%s%zu", j ? ", " : "", r.confusion[i][j]);
            printf("]");
        }
        printf("]}\n");
        rc = 0;
        goto out;
    }
    printf("%s (model %s) on %zu %s images: accuracy %.2f%% (%zu correct), loss %.4f, %.1f s\n\n",
           ckpt ? ckpt : model, m.name, r.n, use_train ? "training" : "test",
           100.0 * (double)r.correct / (double)(r.n ? r.n : 1), r.correct, r.loss, secs);
    printf("%-12s %9s %7s\n", "class", "accuracy", "images");
    for (int i = 0; i < r.classes; i++) {
        size_t tot = 0;
        for (int j = 0; j < r.classes; j++)
            tot += r.confusion[i][j];
        printf("%-12s %8.2f%% %7zu\n", class_name(i, nb, sizeof nb, fashion),
               tot ? 100.0 * r.confusion[i][i] / tot : 0.0, tot);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-14s", "");
    for (int j = 0; j < r.classes; j++)
        printf(" %5d", j);
    printf("\n");
    for (int i = 0; i < r.classes; i++) {
        printf("%-2d %-11.11s", i, class_name(i, nb, sizeof nb, fashion));
        for (int j = 0; j < r.classes; j++)
            printf(" %5zu", r.confusion[i][j]);
        printf("\n");
    }
    rc = 0;
out:
    clcnn_net_free(net);
    clcnn_device_close(dev);
    clcnn_dataset_free(ds);
    return rc;
}
