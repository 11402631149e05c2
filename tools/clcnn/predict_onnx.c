/* clcnn predict --model FILE.onnx: images (JPEG, PNG, PGM) prepared as torchvision's
 * ImageNet recipe (preprocess.c), run through a plan in batches, softmax and top-k with
 * class names from a labels file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "models.h"
#include "predict.h"
#include "preprocess.h"

#define PROG PREDICT_PROG
#define LABEL_MAX 256 /* characters kept of a label */

/* What predict needs to know of a model: its one image input and its class output. */
typedef struct onnx_model {
    int c, h, w;
    int batch;   /* images per run: the input's fixed batch, else up to PREDICT_MAX_BATCH */
    int classes; /* elements per sample of output 0 */
    int probs;   /* output 0 comes from a Softmax: printed as it is */
} onnx_model;

/* Check that g takes one N x C x H x W image input (C 1 or 3) and gives per-sample
 * scores; prints what does not fit and returns 0. */
static int inspect_model(const char *path, const clcnn_graph *g, int n_img, onnx_model *m) {
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    if (clcnn_graph_num_inputs(g) != 1 ||
        clcnn_graph_value_shape(g, clcnn_graph_input_name(g, 0), &nd, d) != CLCNN_OK || nd != 4 ||
        (d[1] != 1 && d[1] != 3) || d[2] < 1 || d[3] < 1 || d[2] > IMAGE_MAX_SIDE ||
        d[3] > IMAGE_MAX_SIDE) {
        fprintf(stderr,
                PROG ": %s: the model must take one N x C x H x W image input with C 1 or 3 "
                     "(it has %d inputs",
                path, clcnn_graph_num_inputs(g));
        if (clcnn_graph_num_inputs(g) == 1 && nd > 0) {
            fprintf(stderr, ", '%s' shaped", clcnn_graph_input_name(g, 0));
            for (int i = 0; i < nd; i++)
                fprintf(stderr, "%s%lld", i ? " x " : " ", (long long)d[i]);
        }
        fprintf(stderr, ")\n");
        return 0;
    }
    int64_t in_batch = d[0];
    m->c = (int)d[1];
    m->h = (int)d[2];
    m->w = (int)d[3];
    m->batch = d[0] == CLCNN_GRAPH_BATCH ? (n_img < PREDICT_MAX_BATCH ? n_img : PREDICT_MAX_BATCH)
                                         : (int)d[0];
    const char *out = clcnn_graph_num_outputs(g) > 0 ? clcnn_graph_output_name(g, 0) : NULL;
    int64_t classes = 1;
    if (!out || clcnn_graph_value_shape(g, out, &nd, d) != CLCNN_OK || nd < 2 || d[0] != in_batch) {
        fprintf(stderr, PROG ": %s: the model's first output is not a batch of class scores\n",
                path);
        return 0;
    }
    for (int i = 1; i < nd; i++)
        classes *= d[i] > 0 ? d[i] : 0;
    if (classes < 1 || classes > (1 << 24)) {
        fprintf(stderr, PROG ": %s: output '%s' has %lld scores per image\n", path, out,
                (long long)classes);
        return 0;
    }
    m->classes = (int)classes;
    m->probs = 0;
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        if (clcnn_graph_node_info(g, i, &info) == CLCNN_OK && !strcmp(info.outputs[0], out))
            m->probs = !strcmp(info.op_type, "Softmax");
    }
    return 1;
}

/* The first `classes` lines of path (without line ends) as a NULL-padded array of
 * `classes` strings; fewer lines: a note, and NULL (class indices). Sets *failed when the
 * file cannot be read. */
static char **read_labels(const char *path, int classes, int *failed) {
    FILE *f = fopen(path, "r");
    *failed = 0;
    if (!f) {
        fprintf(stderr, PROG ": cannot open labels file %s: %s\n", path, strerror(errno));
        *failed = 1;
        return NULL;
    }
    char **names = calloc((size_t)classes, sizeof *names);
    char line[LABEL_MAX + 1];
    int n = 0;
    while (names && n < classes && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        int whole = len > 0 && line[len - 1] == '\n';
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        for (int ch; !whole && (ch = fgetc(f)) != EOF && ch != '\n';)
            ; /* the rest of an overlong line */
        if (!(names[n++] = strdup(line))) break;
    }
    int err = ferror(f);
    fclose(f);
    if (!names || err || (n > 0 && !names[n - 1])) {
        fprintf(stderr, PROG ": cannot read labels file %s\n", path);
        *failed = 1;
    } else if (n < classes) {
        fprintf(stderr,
                PROG ": note: labels file %s has %d lines for the model's %d classes; "
                     "printing class indices\n",
                path, n, classes);
    } else {
        return names;
    }
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    return NULL;
}

/* The normalisation: ImageNet's unless given; a count that does not match the model's
 * channels is an error (returns 0). */
static int choose_norm(const predict_args *a, int c, double *mean, double *std) {
    static const double rgb_mean[3] = {0.485, 0.456, 0.406}, rgb_std[3] = {0.229, 0.224, 0.225};
    for (int k = 0; k < c; k++) {
        mean[k] = c == 3 ? rgb_mean[k] : 0.449; /* gray: the mean of the three */
        std[k] = c == 3 ? rgb_std[k] : 0.226;
    }
    const int n[2] = {a->n_mean, a->n_std};
    const double *v[2] = {a->mean, a->std};
    double *to[2] = {mean, std};
    for (int j = 0; j < 2; j++) {
        if (!n[j]) continue;
        if (n[j] != c) {
            fprintf(stderr, PROG ": --%s has %d values; the model takes %d-channel images\n",
                    j ? "std" : "mean", n[j], c);
            return 0;
        }
        for (int k = 0; k < c; k++) {
            if (j && v[j][k] <= 0) {
                fprintf(stderr, PROG ": --std values must be positive\n");
                return 0;
            }
            to[j][k] = v[j][k];
        }
    }
    return 1;
}

/* Run the batch of filled images (the rest of x's host copy is zeros) and print each. */
static clcnn_status run_batch(clcnn_plan *plan, clcnn_tensor *x, const float *in, size_t in_bytes,
                              const onnx_model *m, int filled, char *const *paths,
                              const int (*sizes)[2], float *out, double *p,
                              const char *const *names, int top) {
    clcnn_status s;
    const clcnn_tensor *inputs[1] = {x};
    if ((s = clcnn_tensor_upload(x, in, in_bytes)) || (s = clcnn_plan_run(plan, inputs, 1)) ||
        (s = clcnn_tensor_download(clcnn_plan_output(plan, 0), out,
                                   (size_t)m->batch * m->classes * sizeof *out)))
        return s;
    for (int i = 0; i < filled; i++) {
        const float *o = out + (size_t)i * m->classes;
        if (m->probs)
            for (int k = 0; k < m->classes; k++)
                p[k] = o[k];
        else
            softmax(o, m->classes, p);
        printf("%s (%dx%d):\n", paths[i], sizes[i][0], sizes[i][1]);
        predict_print_top(p, m->classes, top, names);
    }
    return CLCNN_OK;
}

int predict_onnx(const predict_args *a, int n_img, char *const *images) {
    clcnn_graph *g = NULL;
    clcnn_status s = clcnn_graph_load_onnx(a->model, &g);
    if (s) {
        fprintf(stderr, PROG ": cannot load ONNX model %s: %s: %s\n", a->model,
                s == CLCNN_ERR_FORMAT ? "not a valid ONNX file" : clcnn_status_str(s),
                clcnn_last_error());
        return 1;
    }
    onnx_model m;
    preprocess_params pp = {0};
    if (!inspect_model(a->model, g, n_img, &m) || !choose_norm(a, m.c, pp.mean, pp.std)) {
        clcnn_graph_free(g);
        return 2;
    }
    pp.c = m.c, pp.h = m.h, pp.w = m.w;
    pp.size = a->size ? a->size : (m.h > m.w ? m.h : m.w);
    if (preprocess_shorter_side(pp.size) < (m.h > m.w ? m.h : m.w)) {
        fprintf(stderr,
                PROG ": --size %d resizes the shorter side to %d, less than the model's %dx%d "
                     "input\n",
                pp.size, preprocess_shorter_side(pp.size), m.w, m.h);
        clcnn_graph_free(g);
        return 2;
    }
    int failed = 0, failures = 0, rc = 1;
    char **labels = a->labels ? read_labels(a->labels, m.classes, &failed) : NULL;
    clcnn_device *dev = failed ? NULL : open_device_or_say(a->device);
    clcnn_plan *plan = NULL;
    clcnn_tensor *x = NULL;
    size_t sample = (size_t)m.c * m.h * m.w, in_bytes = (size_t)m.batch * sample * sizeof(float);
    float *in = malloc(in_bytes), *out = malloc((size_t)m.batch * m.classes * sizeof *out);
    double *p = malloc((size_t)m.classes * sizeof *p);
    char **paths = malloc((size_t)m.batch * sizeof *paths);
    int(*sizes)[2] = malloc((size_t)m.batch * sizeof *sizes);
    if (!dev) goto out;
    if (!in || !out || !p || !paths || !sizes) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    if ((s = clcnn_plan_create(dev, g, m.batch, NULL, &plan)) ||
        (s = clcnn_tensor_create4(dev, (size_t)m.batch, (size_t)m.c, (size_t)m.h, (size_t)m.w,
                                  &x))) {
        rc = report(PROG, s);
        goto out;
    }
    int filled = 0;
    for (int i = 0; i < n_img; i++) {
        image img;
        if ((s = image_read(images[i], m.c, &img))) {
            fprintf(stderr, PROG ": %s\n", clcnn_last_error());
            failures++;
        } else if ((s = preprocess_image(&img, &pp, in + filled * sample))) {
            fprintf(stderr, PROG ": %s: %s\n", images[i], clcnn_last_error());
            failures++;
        } else {
            sizes[filled][0] = img.w, sizes[filled][1] = img.h;
            paths[filled++] = images[i];
        }
        image_free(&img);
        if (filled == m.batch || (i == n_img - 1 && filled > 0)) {
            memset(in + filled * sample, 0, (m.batch - filled) * sample * sizeof *in);
            if ((s = run_batch(plan, x, in, in_bytes, &m, filled, paths, (const int(*)[2])sizes,
                               out, p, (const char *const *)labels, a->top))) {
                rc = report(PROG, s);
                goto out;
            }
            filled = 0;
        }
    }
    rc = failures ? 1 : 0;
out:
    free(in), free(out), free(p), free(paths), free(sizes);
    for (int i = 0; labels && i < m.classes; i++)
        free(labels[i]);
    free(labels);
    clcnn_tensor_free(x);
    clcnn_plan_free(plan);
    clcnn_device_close(dev);
    clcnn_graph_free(g);
    return rc;
}
