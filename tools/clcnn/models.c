/* Model lookup in the library's zoo, checkpoint helpers and the evaluation loop of the clcnn
 * command. */
#include "models.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int find_model_or_say(const char *prog, const char *name, clcnn_model_info *m) {
    if (clcnn_model_find(name, m) >= 0) return 1;
    char names[256];
    fprintf(stderr, "%s: unknown model '%s' (models: %s)\n", prog, name ? name : "",
            model_names(names, sizeof names));
    return 0;
}

void list_models(FILE *f, const char *indent) {
    clcnn_model_info m;
    for (int i = 0; clcnn_model_get_info(i, &m); i++)
        fprintf(f, "%s%-16s %dx%dx%d, %d classes: %s\n", indent, m.name, m.c, m.h, m.w, m.classes,
                m.description);
}

const char *model_names(char *buf, size_t cap) {
    clcnn_model_info m;
    buf[0] = '\0';
    for (int i = 0; clcnn_model_get_info(i, &m); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", m.name);
    }
    return buf;
}

/* ---- checkpoints ---------------------------------------------------------------- */

int ckpt_meta_str(const char *path, const char *key, char *buf, size_t cap) {
    buf[0] = '\0';
    if (clcnn_checkpoint_metadata(path, key, buf, cap) != CLCNN_OK) {
        buf[0] = '\0';
        return 0;
    }
    return buf[0] != '\0';
}

double ckpt_meta_num(const char *path, const char *key, double fallback) {
    char buf[64], *end;
    if (!ckpt_meta_str(path, key, buf, sizeof buf)) return fallback;
    double v = strtod(buf, &end);
    return end != buf && *end == '\0' ? v : fallback;
}

int is_onnx_path(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n > 5 && !strcmp(name + n - 5, ".onnx");
}

/* A value's (c, h, w) or (features) per sample, and its feature count after the batch. */
static void sample_shape(const clcnn_graph *g, const char *value, int *c, int *h, int *w) {
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    *c = *h = *w = 0;
    if (clcnn_graph_value_shape(g, value, &nd, d) != CLCNN_OK || nd < 2) return;
    *c = (int)d[1];
    *h = nd > 2 ? (int)d[2] : 1;
    *w = nd > 3 ? (int)d[3] : 1;
}

int open_model(const char *prog, clcnn_device *dev, const char *name, int classes, clcnn_init init,
               uint64_t seed, clcnn_model_info *m, clcnn_net **net) {
    *net = NULL;
    clcnn_status s;
    if (!is_onnx_path(name)) {
        if (!find_model_or_say(prog, name, m)) return 1;
        if (classes > 0) m->classes = classes;
        if ((s = clcnn_net_create_model(dev, m->name, m->classes, net)) != CLCNN_OK) {
            fprintf(stderr, "%s: cannot build model '%s': %s: %s\n", prog, name,
                    clcnn_status_str(s), clcnn_last_error());
            return 1;
        }
        return 0;
    }
    clcnn_graph *g = NULL;
    if ((s = clcnn_graph_load_onnx(name, &g)) != CLCNN_OK ||
        (s = clcnn_net_from_graph(dev, g, net)) != CLCNN_OK) {
        fprintf(stderr, "%s: cannot use ONNX model %s: %s: %s\n", prog, name, clcnn_status_str(s),
                clcnn_last_error());
        clcnn_graph_free(g);
        return 1;
    }
    memset(m, 0, sizeof *m);
    m->name = name;
    m->description = "ONNX model";
    int oh, ow;
    sample_shape(g, clcnn_graph_input_name(g, 0), &m->c, &m->h, &m->w);
    sample_shape(g, clcnn_graph_output_name(g, 0), &m->classes, &oh, &ow);
    clcnn_graph_free(g);
    if (oh != 1 || ow != 1) {
        fprintf(stderr,
                "%s: ONNX model %s gives %dx%dx%d outputs per sample, not a vector of "
                "class scores\n",
                prog, name, m->classes, oh, ow);
        clcnn_net_free(*net);
        *net = NULL;
        return 1;
    }
    if (classes > 0 && classes != m->classes) {
        if ((s = clcnn_net_replace_classifier(*net, classes, init, seed)) != CLCNN_OK) {
            fprintf(stderr, "%s: cannot give %s %d classes: %s: %s\n", prog, name, classes,
                    clcnn_status_str(s), clcnn_last_error());
            clcnn_net_free(*net);
            *net = NULL;
            return 1;
        }
        m->classes = classes;
    }
    return 0;
}

int open_checkpoint_model(clcnn_device *dev, const char *path, const char *model_name,
                          clcnn_model_info *model, clcnn_net **net) {
    static char name[4096];
    char names[256];
    *net = NULL;
    /* Reading the metadata also checks that the file exists and is a checkpoint. */
    clcnn_status s = clcnn_checkpoint_metadata(path, "model", name, sizeof name);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn: cannot read checkpoint %s: %s\n", path, clcnn_last_error());
        return 1;
    }
    if (model_name) snprintf(name, sizeof name, "%s", model_name);
    if (!name[0]) {
        fprintf(stderr,
                "clcnn: checkpoint %s does not say which model it holds; pass --model (one of "
                "%s, or an ONNX file)\n",
                path, model_names(names, sizeof names));
        return 1;
    }
    if (is_onnx_path(name) && access(name, R_OK) != 0) {
        fprintf(stderr,
                "clcnn: checkpoint %s was trained from the ONNX model %s, which cannot be read "
                "(%s); pass --model FILE.onnx with that model\n",
                path, name, strerror(errno));
        return 1;
    }
    /* `clcnn train` builds the model with the data's classes and records them */
    int classes = (int)ckpt_meta_num(path, "classes", 0);
    clcnn_model_info m;
    if (open_model("clcnn", dev, name, classes, CLCNN_INIT_HE, 0, &m, net)) return 1;
    if ((s = clcnn_checkpoint_load(*net, NULL, path)) != CLCNN_OK) {
        fprintf(stderr, "clcnn: cannot load %s as model '%s': %s: %s\n", path, name,
                clcnn_status_str(s), clcnn_last_error());
        clcnn_net_free(*net);
        *net = NULL;
        return 1;
    }
    *model = m;
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------- */

void softmax(const float *logits, int n, double *p) {
    double mx = logits[0], sum = 0.0;
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++)
        sum += p[i] = exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++)
        p[i] /= sum;
}

clcnn_status evaluate(clcnn_device *dev, clcnn_net *net, const clcnn_dataset *ds,
                      volatile sig_atomic_t *stop, eval_result *r) {
    memset(r, 0, sizeof *r);
    int classes = clcnn_dataset_num_classes(ds);
    if (classes > EVAL_MAX_CLASSES)
        return clcnn_set_error(CLCNN_ERR_UNSUPPORTED, "evaluate: %d classes, at most %d supported",
                               classes, EVAL_MAX_CLASSES);
    r->classes = classes;
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    clcnn_batcher_config cfg = clcnn_batcher_config_default();
    cfg.batch_size = EVAL_BATCH;
    cfg.shuffle = 0;
    clcnn_batcher *b = NULL;
    clcnn_status s = clcnn_batcher_create(ds, &cfg, &b);
    if (s != CLCNN_OK) return s;
    clcnn_tensor *x = NULL;
    float *logits = malloc((size_t)EVAL_BATCH * classes * sizeof *logits);
    if (!logits) s = clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "evaluate: out of memory");
    clcnn_net_set_training(net, 0);
    double loss_sum = 0.0;
    size_t cur_n = 0;
    while (s == CLCNN_OK) {
        if (stop && *stop) {
            s = clcnn_set_error(CLCNN_ERR_INTERRUPTED, "evaluation interrupted");
            break;
        }
        clcnn_batch batch;
        if ((s = clcnn_batcher_next(b, &batch)) != CLCNN_OK || batch.n == 0) break;
        if (batch.n != cur_n) {
            clcnn_tensor_free(x);
            x = NULL;
            if ((s = clcnn_tensor_create4(dev, batch.n, c, h, w, &x)) != CLCNN_OK) break;
            cur_n = batch.n;
        }
        const clcnn_tensor *y = NULL;
        if ((s = clcnn_tensor_upload(x, batch.x, batch.n * c * h * w * sizeof(float))) ||
            (s = clcnn_net_forward(net, x, &y)))
            break;
        if (clcnn_tensor_numel(y) != batch.n * (size_t)classes) {
            s = clcnn_set_error(CLCNN_ERR_SHAPE,
                                "evaluate: the net gives %zu outputs per sample, the "
                                "data has %d classes",
                                clcnn_tensor_numel(y) / batch.n, classes);
            break;
        }
        if ((s = clcnn_tensor_download(y, logits, batch.n * classes * sizeof(float)))) break;
        for (size_t i = 0; i < batch.n; i++) {
            const float *l = logits + i * classes;
            double p[EVAL_MAX_CLASSES];
            softmax(l, classes, p);
            int t = batch.labels[i], best = 0;
            for (int j = 1; j < classes; j++)
                if (l[j] > l[best]) best = j;
            loss_sum += -log(p[t] > 1e-300 ? p[t] : 1e-300);
            r->confusion[t][best]++;
            r->correct += best == t;
            r->n++;
        }
    }
    clcnn_net_set_training(net, 1);
    r->loss = r->n ? loss_sum / (double)r->n : 0.0;
    clcnn_tensor_free(x);
    free(logits);
    clcnn_batcher_free(b);
    return s;
}

clcnn_device *open_device_or_say(const char *selector) {
    clcnn_device *dev = NULL;
    clcnn_status s = clcnn_device_open(selector, &dev);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn: cannot open a device%s%s: %s: %s\n", selector ? " for " : "",
                selector ? selector : "", clcnn_status_str(s), clcnn_last_error());
        return NULL;
    }
    return dev;
}

int report(const char *prog, clcnn_status s) {
    fprintf(stderr, "%s: %s: %s\n", prog, clcnn_status_str(s), clcnn_last_error());
    return 1;
}

int parse_long(const char *prog, const char *opt, const char *s, long long lo, long long hi,
               long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not an integer in [%lld, %lld]\n", prog, opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int parse_float(const char *prog, const char *opt, const char *s, double lo, double hi,
                double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
