/* clcnn predict: classify grayscale images (PGM or PNG) with a checkpoint; prints the
 * top-k classes with their probabilities. Images of another size are resized to the
 * model's input; Fashion-MNIST images are light objects on a black background, so
 * --invert helps for dark-on-light pictures. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "image.h"
#include "models.h"

#define PROG "clcnn predict"

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn predict [--checkpoint FILE] [--top K] [options] IMAGE...\n\n"
               "Classify PGM (P5/P2) or PNG images with a trained checkpoint. Images are\n"
               "converted to grayscale and resized to the model's input (28x28).\n\n"
               "  --checkpoint FILE   default ./clcnn-fashion.safetensors\n"
               "  --top K             classes to print per image (default 3)\n"
               "  --invert            use 1 - pixel (for dark objects on a light background)\n"
               "  --model NAME        model (default: from the checkpoint)\n"
               "  --device SEL        OpenCL device\n");
}

int cmd_predict(int argc, char **argv) {
    const char *ckpt = "clcnn-fashion.safetensors", *model = NULL, *device = NULL;
    long long top = 3;
    int invert = 0;
    enum { O_CKPT = 256, O_TOP, O_INVERT, O_MODEL, O_DEVICE };
    static const struct option opts[] = {{"checkpoint", required_argument, 0, O_CKPT},
                                         {"top", required_argument, 0, O_TOP},
                                         {"invert", no_argument, 0, O_INVERT},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_CKPT:
            ckpt = optarg;
            break;
        case O_TOP:
            if (parse_long(PROG, "--top", optarg, 1, 1000, &top)) return 2;
            break;
        case O_INVERT:
            invert = 1;
            break;
        case O_MODEL:
            model = optarg;
            break;
        case O_DEVICE:
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
    if (optind >= argc) {
        fprintf(stderr, PROG ": no image given\n");
        usage(stderr);
        return 2;
    }
    double mean = ckpt_meta_num(ckpt, "norm_mean", CLCNN_FASHION_MNIST_MEAN);
    double std = ckpt_meta_num(ckpt, "norm_std", CLCNN_FASHION_MNIST_STD);
    char data_buf[1024];
    int fashion = !ckpt_meta_str(ckpt, "data", data_buf, sizeof data_buf);

    clcnn_device *dev = open_device_or_say(device);
    clcnn_model_info m = {0};
    clcnn_net *net = NULL;
    clcnn_tensor *x = NULL;
    int rc = 1, failures = 0;
    if (!dev || open_checkpoint_model(dev, ckpt, model, &m, &net)) goto out;
    if (m.c != 1) {
        fprintf(stderr, PROG ": model '%s' takes %d-channel images; only grayscale is supported\n",
                m.name, m.c);
        goto out;
    }
    clcnn_net_set_training(net, 0);
    clcnn_status s = clcnn_tensor_create4(dev, 1, 1, (size_t)m.h, (size_t)m.w, &x);
    if (s) {
        rc = report(PROG, s);
        goto out;
    }
    size_t npx = (size_t)m.h * m.w;
    float *in = malloc(npx * sizeof *in), *logits = malloc((size_t)m.classes * sizeof *logits);
    double *p = malloc((size_t)m.classes * sizeof *p);
    int *order = malloc((size_t)m.classes * sizeof *order);
    if (!in || !logits || !p || !order) {
        fprintf(stderr, PROG ": out of memory\n");
        free(in), free(logits), free(p), free(order);
        goto out;
    }
    if (top > m.classes) top = m.classes;
    for (int a = optind; a < argc; a++) {
        gray_image img;
        if ((s = image_read_gray(argv[a], &img))) {
            fprintf(stderr, PROG ": %s\n", clcnn_last_error());
            failures++;
            continue;
        }
        image_resize(&img, m.w, m.h, in);
        double avg = 0;
        for (size_t i = 0; i < npx; i++) {
            float v = invert ? 1.0f - in[i] : in[i];
            avg += v;
            in[i] = (float)((v - mean) / std);
        }
        avg /= (double)npx;
        const clcnn_tensor *y = NULL;
        if ((s = clcnn_tensor_upload(x, in, npx * sizeof *in)) ||
            (s = clcnn_net_forward(net, x, &y)) ||
            (s = clcnn_tensor_download(y, logits, (size_t)m.classes * sizeof *logits))) {
            image_free(&img);
            rc = report(PROG, s);
            free(in), free(logits), free(p), free(order);
            goto out;
        }
        softmax(logits, m.classes, p);
        for (int i = 0; i < m.classes; i++)
            order[i] = i;
        for (int i = 0; i < top; i++) /* partial selection sort: k is small */
            for (int j = i + 1; j < m.classes; j++)
                if (p[order[j]] > p[order[i]]) {
                    int t = order[i];
                    order[i] = order[j];
                    order[j] = t;
                }
        printf("%s", argv[a]);
        if (img.w != m.w || img.h != m.h) printf(" (%dx%d, resized)", img.w, img.h);
        printf(":\n");
        for (int i = 0; i < top; i++) {
            const char *name = fashion ? clcnn_fashion_mnist_class_name(order[i]) : NULL;
            char buf[32];
            if (!name) snprintf(buf, sizeof buf, "class %d", order[i]), name = buf;
            printf("  %2d  %-12s %6.2f%%\n", order[i], name, 100.0 * p[order[i]]);
        }
        if (avg > 0.5 && !invert)
            fprintf(stderr,
                    PROG ": note: %s is mostly light; Fashion-MNIST images are light objects on "
                         "black, try --invert\n",
                    argv[a]);
        image_free(&img);
    }
    free(in), free(logits), free(p), free(order);
    rc = failures ? 1 : 0;
out:
    clcnn_tensor_free(x);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    return rc;
}
