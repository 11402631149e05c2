/* clcnn predict: classify images with a checkpoint of the zoo (grayscale PGM or PNG,
 * resized to the model's input; Fashion-MNIST images are light objects on a black
 * background, so --invert helps for dark-on-light pictures) or with an ONNX model
 * (predict_onnx.c). Prints the top-k classes with their probabilities. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "image.h"
#include "models.h"
#include "predict.h"

#define PROG PREDICT_PROG

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn predict [--checkpoint FILE] [--top K] [options] IMAGE...\n"
            "       clcnn predict --model FILE.onnx [--labels FILE] [--size N]\n"
            "                     [--mean a,b,c --std a,b,c] [--top K] [--device SEL] IMAGE...\n\n"
            "Classify images with a trained checkpoint: PGM (P5/P2), PNG or JPEG, converted\n"
            "to grayscale and resized to the model's input (28x28).\n\n"
            "  --checkpoint FILE   default ./clcnn-fashion.safetensors\n"
            "  --top K             classes to print per image (default 3; ONNX 5)\n"
            "  --invert            use 1 - pixel (for dark objects on a light background)\n"
            "  --model NAME        zoo model (default: from the checkpoint)\n"
            "  --device SEL        OpenCL device\n\n"
            "Or with an ONNX model (--model FILE.onnx) taking N x C x H x W images (C 3: RGB,\n"
            "C 1: grayscale), prepared as torchvision's ImageNet recipe: the shorter side\n"
            "resized to round(S*256/224), a centred H x W crop, values in [0, 1] normalised\n"
            "per channel; softmax of the first output (unless the model ends with Softmax).\n"
            "All images run as one batch when the model's batch is symbolic.\n\n"
            "  --labels FILE       class names, one per line (default: class indices)\n"
            "  --size S            resize scale (default: the model's input size, so\n"
            "                      224 -> shorter side 256, crop 224)\n"
            "  --mean a,b,c        per channel (default 0.485,0.456,0.406; gray 0.449)\n"
            "  --std a,b,c         per channel (default 0.229,0.224,0.225; gray 0.226)\n");
}

void predict_print_top(const double *p, int classes, int k, const char *const *names) {
    int *order = malloc((size_t)classes * sizeof *order);
    if (!order) {
        fprintf(stderr, PROG ": out of memory\n");
        return;
    }
    if (k > classes) k = classes;
    for (int i = 0; i < classes; i++)
        order[i] = i;
    for (int i = 0; i < k; i++) /* partial selection sort: k is small */
        for (int j = i + 1; j < classes; j++)
            if (p[order[j]] > p[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    int iw = 2, nw = 12;
    for (int c = classes - 1; c >= 100; c /= 10)
        iw++;
    for (int i = 0; i < k; i++) {
        const char *name = names ? names[order[i]] : NULL;
        int len = name ? (int)strlen(name) : 0;
        if (len > nw) nw = len < 40 ? len : 40;
    }
    for (int i = 0; i < k; i++) {
        const char *name = names ? names[order[i]] : NULL;
        char buf[32];
        if (!name) snprintf(buf, sizeof buf, "class %d", order[i]), name = buf;
        printf("  %*d  %-*s %6.2f%%\n", iw, order[i], nw, name, 100.0 * p[order[i]]);
    }
    free(order);
}

/* "a,b,c" (1 to 3 numbers) into v; 0 on success, else prints why and returns 2. */
static int parse_list(const char *opt, const char *s, double *v, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == 3) {
            fprintf(stderr, PROG ": %s: more than 3 values in '%s'\n", opt, s);
            return 2;
        }
        if (parse_float(PROG, opt, tok, -1e6, 1e6, &v[(*n)++])) return 2;
    }
    if (*n == 0) {
        fprintf(stderr, PROG ": %s: no values in '%s'\n", opt, s);
        return 2;
    }
    return 0;
}

/* --model names an ONNX file: it ends in .onnx, or is no zoo model but a file. */
static int is_onnx_model(const char *model) {
    size_t len = strlen(model);
    clcnn_model_info m;
    if (len > 5 && !strcmp(model + len - 5, ".onnx")) return 1;
    return clcnn_model_find(model, &m) < 0 && access(model, F_OK) == 0;
}

/* The checkpoint path: one image at a time through the zoo net. */
static int predict_checkpoint(const char *ckpt, const char *model, const char *device, int top,
                              int invert, int n_img, char *const *images) {
    double mean = ckpt_meta_num(ckpt, "norm_mean", CLCNN_FASHION_MNIST_MEAN);
    double std = ckpt_meta_num(ckpt, "norm_std", CLCNN_FASHION_MNIST_STD);
    char data_buf[1024];
    int fashion = !ckpt_meta_str(ckpt, "data", data_buf, sizeof data_buf);

    clcnn_device *dev = open_device_or_say(device);
    clcnn_model_info m = {0};
    clcnn_net *net = NULL;
    clcnn_tensor *x = NULL;
    int rc = 1, failures = 0;
    float *in = NULL, *logits = NULL;
    double *p = NULL;
    const char **names = NULL;
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
    in = malloc(npx * sizeof *in), logits = malloc((size_t)m.classes * sizeof *logits);
    p = malloc((size_t)m.classes * sizeof *p);
    names = calloc((size_t)m.classes, sizeof *names);
    if (!in || !logits || !p || !names) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    for (int i = 0; fashion && i < m.classes; i++)
        names[i] = clcnn_fashion_mnist_class_name(i);
    for (int a = 0; a < n_img; a++) {
        image img;
        if ((s = image_read_gray(images[a], &img))) {
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
            goto out;
        }
        softmax(logits, m.classes, p);
        printf("%s", images[a]);
        if (img.w != m.w || img.h != m.h) printf(" (%dx%d, resized)", img.w, img.h);
        printf(":\n");
        predict_print_top(p, m.classes, top, names);
        if (avg > 0.5 && !invert)
            fprintf(stderr,
                    PROG ": note: %s is mostly light; Fashion-MNIST images are light objects on "
                         "black, try --invert\n",
                    images[a]);
        image_free(&img);
    }
    rc = failures ? 1 : 0;
out:
    free(in), free(logits), free(p), free(names);
    clcnn_tensor_free(x);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    const char *ckpt = NULL, *model = NULL;
    predict_args a = {.top = 0};
    long long top = 0, size = 0;
    int invert = 0;
    enum { O_CKPT = 256, O_TOP, O_INVERT, O_MODEL, O_DEVICE, O_LABELS, O_SIZE, O_MEAN, O_STD };
    static const struct option opts[] = {{"checkpoint", required_argument, 0, O_CKPT},
                                         {"top", required_argument, 0, O_TOP},
                                         {"invert", no_argument, 0, O_INVERT},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"labels", required_argument, 0, O_LABELS},
                                         {"size", required_argument, 0, O_SIZE},
                                         {"mean", required_argument, 0, O_MEAN},
                                         {"std", required_argument, 0, O_STD},
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
            a.device = optarg;
            break;
        case O_LABELS:
            a.labels = optarg;
            break;
        case O_SIZE:
            if (parse_long(PROG, "--size", optarg, 1, 4096, &size)) return 2;
            break;
        case O_MEAN:
            if (parse_list("--mean", optarg, a.mean, &a.n_mean)) return 2;
            break;
        case O_STD:
            if (parse_list("--std", optarg, a.std, &a.n_std)) return 2;
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
    if (model && is_onnx_model(model)) {
        if (ckpt || invert) {
            fprintf(stderr, PROG ": %s does not apply to an ONNX model\n",
                    ckpt ? "--checkpoint" : "--invert");
            return 2;
        }
        a.model = model;
        a.size = (int)size;
        a.top = top ? (int)top : 5;
        return predict_onnx(&a, argc - optind, argv + optind);
    }
    if (a.labels || size || a.n_mean || a.n_std) {
        fprintf(stderr, PROG ": --labels, --size, --mean and --std apply to ONNX models "
                             "(--model FILE.onnx)\n");
        return 2;
    }
    return predict_checkpoint(ckpt ? ckpt : "clcnn-fashion.safetensors", model, a.device,
                              top ? (int)top : 3, invert, argc - optind, argv + optind);
}
