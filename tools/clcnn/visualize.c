/* clcnn visualize: PNGs of a checkpoint's first-layer filters (a grid, blue negative,
 * red positive) and of every layer's feature maps for one test image.
 *
 * The nn API returns only a net's final output, so the feature maps of layer i come from
 * a net built from the model's first i+1 layers (clcnn_net_create_model_prefix) with the
 * trained parameters copied in. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "image.h"
#include "models.h"

#define PROG "clcnn visualize"

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn visualize [--checkpoint FILE] --out DIR [options]\n\n"
               "Write filters.png (first conv layer), input.png and layer_NN_KIND.png (feature\n"
               "maps of every layer for one test image) into DIR.\n\n"
               "  --checkpoint FILE   default ./clcnn-fashion.safetensors\n"
               "  --out DIR           output directory (created if missing)\n"
               "  --index N           test image to show (default 0)\n"
               "  --data DIR          MNIST-format directory (default: the training data)\n"
               "  --model NAME        model (default: from the checkpoint)\n"
               "  --device SEL        OpenCL device\n");
}

/* A canvas of 8-bit RGB pixels, background gray. */
typedef struct canvas {
    int w, h;
    uint8_t *px;
} canvas;

static int canvas_new(canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * h * 3);
    if (!c->px) return 0;
    memset(c->px, 96, (size_t)w * h * 3);
    return 1;
}

static void put(canvas *c, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    memcpy(c->px + ((size_t)y * c->w + x) * 3, rgb, 3);
}

/* Fill a zoom x zoom block at cell (x, y) of a tile whose corner is (ox, oy). */
static void block(canvas *c, int ox, int oy, int x, int y, int zoom, const uint8_t rgb[3]) {
    for (int dy = 0; dy < zoom; dy++)
        for (int dx = 0; dx < zoom; dx++)
            put(c, ox + x * zoom + dx, oy + y * zoom + dy, rgb);
}

static void diverging(float v, uint8_t rgb[3]) { /* v in [-1, 1]: blue - white - red */
    v = v < -1 ? -1 : v > 1 ? 1 : v;
    uint8_t fade = (uint8_t)lrintf(255.0f * (1.0f - fabsf(v)));
    rgb[0] = v > 0 ? 255 : fade;
    rgb[1] = fade;
    rgb[2] = v < 0 ? 255 : fade;
}

static void grayv(float v, uint8_t rgb[3]) { /* v in [0, 1] */
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    rgb[0] = rgb[1] = rgb[2] = (uint8_t)lrintf(255.0f * v);
}

static int save_canvas(const char *dir, const char *name, canvas *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clcnn_status s = image_write_png(path, c->w, c->h, 3, c->px);
    free(c->px);
    c->px = NULL;
    if (s) return report(PROG, s);
    printf("wrote %s (%dx%d)\n", path, c->w, c->h);
    return 0;
}

/* tiles of th x tw values (row-major, count of them) in a grid; per-tile min-max gray
 * (diverging = 0) or one symmetric scale for all tiles (diverging = 1). */
static int save_grid(const char *dir, const char *name, const float *v, int count, int th, int tw,
                     int diverging_map) {
    int zoom = th >= 56 ? 1 : (56 + th - 1) / th;
    if (zoom > 16) zoom = 16;
    int cols = (int)ceil(sqrt((double)count)), rows = (count + cols - 1) / cols, gap = 2;
    canvas c;
    if (!canvas_new(&c, gap + cols * (tw * zoom + gap), gap + rows * (th * zoom + gap))) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    float amax = 0;
    for (size_t i = 0; i < (size_t)count * th * tw; i++)
        amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
    for (int t = 0; t < count; t++) {
        const float *m = v + (size_t)t * th * tw;
        float lo = m[0], hi = m[0];
        for (int i = 1; i < th * tw; i++)
            lo = m[i] < lo ? m[i] : lo, hi = m[i] > hi ? m[i] : hi;
        int ox = gap + (t % cols) * (tw * zoom + gap), oy = gap + (t / cols) * (th * zoom + gap);
        for (int y = 0; y < th; y++)
            for (int x = 0; x < tw; x++) {
                uint8_t rgb[3];
                float val = m[y * tw + x];
                if (diverging_map)
                    diverging(amax > 0 ? val / amax : 0, rgb);
                else
                    grayv(hi > lo ? (val - lo) / (hi - lo) : 0, rgb);
                block(&c, ox, oy, x, y, zoom, rgb);
            }
    }
    return save_canvas(dir, name, &c);
}

/* A vector of features as a strip of cells (min-max gray). */
static int save_strip(const char *dir, const char *name, const float *v, int n) {
    int cell = n <= 16 ? 24 : n <= 256 ? 8 : 2, cols = n <= 64 ? n : 64;
    int rows = (n + cols - 1) / cols;
    canvas c;
    if (!canvas_new(&c, cols * cell, rows * cell)) return 1;
    float lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++)
        lo = v[i] < lo ? v[i] : lo, hi = v[i] > hi ? v[i] : hi;
    for (int i = 0; i < n; i++) {
        uint8_t rgb[3];
        grayv(hi > lo ? (v[i] - lo) / (hi - lo) : 0, rgb);
        block(&c, (i % cols) * cell, (i / cols) * cell, 0, 0, cell, rgb);
    }
    return save_canvas(dir, name, &c);
}

/* Copy every parameter of `small` from the same-named parameter of `full`. */
static clcnn_status copy_params(clcnn_net *small, const clcnn_net *full) {
    int ns = clcnn_net_num_params(small), nf = clcnn_net_num_params(full);
    clcnn_status s = CLCNN_OK;
    for (int i = 0; i < ns && s == CLCNN_OK; i++) {
        clcnn_param ps, pf;
        if ((s = clcnn_net_param(small, i, &ps))) break;
        int found = 0;
        for (int j = 0; j < nf && !found && s == CLCNN_OK; j++)
            if (!(s = clcnn_net_param(full, j, &pf)) && !strcmp(ps.name, pf.name)) {
                s = clcnn_tensor_copy(ps.value, pf.value);
                found = 1;
            }
        if (s == CLCNN_OK && !found)
            s = clcnn_set_error(CLCNN_ERR_NOT_FOUND, "visualize: no parameter %s in the net",
                                ps.name);
    }
    return s;
}

int cmd_visualize(int argc, char **argv) {
    const char *ckpt = "clcnn-fashion.safetensors", *out = NULL, *data = NULL, *model = NULL,
               *device = NULL;
    long long index = 0;
    enum { O_CKPT = 256, O_OUT, O_INDEX, O_DATA, O_MODEL, O_DEVICE };
    static const struct option opts[] = {{"checkpoint", required_argument, 0, O_CKPT},
                                         {"out", required_argument, 0, O_OUT},
                                         {"index", required_argument, 0, O_INDEX},
                                         {"data", required_argument, 0, O_DATA},
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
        case O_OUT:
            out = optarg;
            break;
        case O_INDEX:
            if (parse_long(PROG, "--index", optarg, 0, 1LL << 31, &index)) return 2;
            break;
        case O_DATA:
            data = optarg;
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
    if (!out || optind < argc) {
        fprintf(stderr, PROG ": %s\n", out ? "unexpected argument" : "--out DIR is required");
        usage(stderr);
        return 2;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    char data_buf[1024];
    if (!data && ckpt_meta_str(ckpt, "data", data_buf, sizeof data_buf)) data = data_buf;
    clcnn_dataset *ds = NULL;
    clcnn_status s = clcnn_dataset_load_mnist(data, CLCNN_SPLIT_TEST, &ds);
    if (s) return report(PROG, s);
    if ((size_t)index >= clcnn_dataset_size(ds)) {
        fprintf(stderr, PROG ": --index %lld: the test set has %zu images\n", index,
                clcnn_dataset_size(ds));
        clcnn_dataset_free(ds);
        return 2;
    }
    clcnn_dataset_set_normalization(
        ds, (float)ckpt_meta_num(ckpt, "norm_mean", CLCNN_FASHION_MNIST_MEAN),
        (float)ckpt_meta_num(ckpt, "norm_std", CLCNN_FASHION_MNIST_STD));

    clcnn_device *dev = open_device_or_say(device);
    clcnn_model_info m = {0};
    clcnn_net *net = NULL, *part = NULL;
    clcnn_tensor *x = NULL;
    float *host = NULL, *buf = NULL;
    int rc = 1;
    if (!dev || open_checkpoint_model(dev, ckpt, model, &m, &net)) goto out;
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    if (c != m.c || h != m.h || w != m.w) {
        fprintf(stderr, PROG ": model '%s' takes %dx%dx%d inputs; the data has %dx%dx%d\n", m.name,
                m.c, m.h, m.w, c, h, w);
        goto out;
    }
    size_t idx = (size_t)index;
    int32_t label;
    host = malloc((size_t)c * h * w * sizeof *host);
    if (!host) goto out;
    if ((s = clcnn_dataset_gather(ds, &idx, 1, host, &label)) ||
        (s = clcnn_tensor_create4(dev, 1, (size_t)c, (size_t)h, (size_t)w, &x)) ||
        (s = clcnn_tensor_upload(x, host, (size_t)c * h * w * sizeof *host))) {
        rc = report(PROG, s);
        goto out;
    }
    const char *cname = clcnn_fashion_mnist_class_name(label);
    printf("test image %lld: label %d (%s)\n", index, label, cname ? cname : "?");

    /* the input, as the net sees it (normalised; min-max shown) */
    if (save_grid(out, "input.png", host, c, h, w, 0)) goto out;

    /* first-layer filters */
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        if ((s = clcnn_net_param(net, i, &p))) break;
        if (clcnn_tensor_ndim(p.value) != 4) continue;
        size_t k = clcnn_tensor_dim(p.value, 0), ch = clcnn_tensor_dim(p.value, 1),
               r = clcnn_tensor_dim(p.value, 2), sw = clcnn_tensor_dim(p.value, 3);
        buf = malloc(clcnn_tensor_numel(p.value) * sizeof *buf);
        if (!buf ||
            (s = clcnn_tensor_download(p.value, buf, clcnn_tensor_numel(p.value) * sizeof *buf)))
            break;
        printf("filters of %s: %zu x %zu x %zux%zu\n", p.name, k, ch, r, sw);
        if (save_grid(out, "filters.png", buf, (int)(k * ch), (int)r, (int)sw, 1)) goto out;
        free(buf);
        buf = NULL;
        break;
    }
    if (s) {
        rc = report(PROG, s);
        goto out;
    }

    /* feature maps of every layer */
    int layers = clcnn_net_num_layers(net);
    for (int i = 0; i < layers; i++) {
        clcnn_layer_info info;
        const clcnn_tensor *y = NULL;
        if ((s = clcnn_net_layer_info(net, i, &info)) ||
            (s = clcnn_net_create_model_prefix(dev, m.name, m.classes, i + 1, &part)) ||
            (s = copy_params(part, net)))
            break;
        clcnn_net_set_training(part, 0);
        if ((s = clcnn_net_forward(part, x, &y))) break;
        size_t n = clcnn_tensor_numel(y);
        buf = malloc(n * sizeof *buf);
        if (!buf || (s = clcnn_tensor_download(y, buf, n * sizeof *buf))) break;
        char name[96];
        snprintf(name, sizeof name, "layer_%02d_%s.png", i, info.kind);
        int bad = info.out_h * info.out_w > 1
                      ? save_grid(out, name, buf, info.out_c, info.out_h, info.out_w, 0)
                      : save_strip(out, name, buf, (int)n);
        if (bad) goto out;
        if (i == layers - 1 && (int)n == m.classes) {
            double *p = malloc(n * sizeof *p);
            if (p) {
                softmax(buf, (int)n, p);
                int best = 0;
                for (int j = 1; j < (int)n; j++)
                    best = p[j] > p[best] ? j : best;
                const char *bn = clcnn_fashion_mnist_class_name(best);
                printf("prediction: %d (%s), %.2f%%\n", best, bn ? bn : "?", 100 * p[best]);
                free(p);
            }
        }
        free(buf);
        buf = NULL;
        clcnn_net_free(part);
        part = NULL;
    }
    if (s) {
        rc = report(PROG, s);
        goto out;
    }
    rc = 0;
out:
    free(host);
    free(buf);
    clcnn_tensor_free(x);
    clcnn_net_free(part);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    clcnn_dataset_free(ds);
    return rc;
}
