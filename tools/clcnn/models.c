/* Named models, checkpoint helpers and the evaluation loop of the clcnn command. */
#include "models.h"

#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONV(k_, r_, s_, p_, g_, b_)                                                               \
    { SPEC_CONV, (k_), (r_), (s_), (p_), (g_), (b_), 0.0f }
#define BN()                                                                                       \
    { SPEC_BN, 0, 0, 0, 0, 0, 0, 0.0f }
#define RELU()                                                                                     \
    { SPEC_RELU, 0, 0, 0, 0, 0, 0, 0.0f }
#define MAXPOOL(r_, s_)                                                                            \
    { SPEC_MAXPOOL, 0, (r_), (s_), 0, 0, 0, 0.0f }
#define FLATTEN()                                                                                  \
    { SPEC_FLATTEN, 0, 0, 0, 0, 0, 0, 0.0f }
#define LINEAR(k_)                                                                                 \
    { SPEC_LINEAR, (k_), 0, 0, 0, 0, 1, 0.0f }
#define DROPOUT(p_)                                                                                \
    { SPEC_DROPOUT, 0, 0, 0, 0, 0, 0, (p_) }

/* The default: two conv + batch-norm blocks and a small classifier (421,738 trainable
 * parameters). No dropout, so a resumed run repeats an uninterrupted one exactly.
 * Measured with `clcnn train` on POCL (Adam 1e-3, cosine to 0, batch 64, seed 1), final
 * test accuracy: 5 epochs 92.07%; 8 epochs 92.28%; 8 + weight decay 5e-4 92.39% (the
 * default; 92.36% with the implicit-GEMM gradients of 2026-11-25); 8 + shift 1 92.16%;
 * 12 + shift 1 92.61%; 6 + flip 91.71% (flips hurt: the shoes all face left in
 * Fashion-MNIST). */
static const layer_spec bn_layers[] = {
    CONV(32, 3, 1, 1, 1, 0),
    BN(),
    RELU(),
    MAXPOOL(2, 2), /* 32x14x14 */
    CONV(64, 3, 1, 1, 1, 0),
    BN(),
    RELU(),
    MAXPOOL(2, 2), /* 64x7x7 */
    FLATTEN(),
    LINEAR(128),
    RELU(),
    LINEAR(10),
};

/* LeNet-5 for 28x28 inputs (padding 2 on the first conv, as for MNIST), ReLU and max
 * pooling instead of tanh and subsampling: 61,706 parameters. */
static const layer_spec lenet_layers[] = {
    CONV(6, 5, 1, 2, 1, 1),
    RELU(),
    MAXPOOL(2, 2), /* 6x14x14 */
    CONV(16, 5, 1, 0, 1, 1),
    RELU(),
    MAXPOOL(2, 2), /* 16x5x5 */
    FLATTEN(),
    LINEAR(120),
    RELU(),
    LINEAR(84),
    RELU(),
    LINEAR(10),
};

/* AlexNet (Krizhevsky et al. 2012) on 3x227x227, with the two-GPU grouping of conv2,
 * conv4 and conv5 and without local response normalisation: 60,965,224 parameters. */
static const layer_spec alexnet_layers[] = {
    CONV(96, 11, 4, 0, 1, 1),
    RELU(),
    MAXPOOL(3, 2), /* 96x55x55 -> 96x27x27 */
    CONV(256, 5, 1, 2, 2, 1),
    RELU(),
    MAXPOOL(3, 2), /* 256x27x27 -> 256x13x13 */
    CONV(384, 3, 1, 1, 1, 1),
    RELU(), /* 384x13x13 */
    CONV(384, 3, 1, 1, 2, 1),
    RELU(), /* 384x13x13 */
    CONV(256, 3, 1, 1, 2, 1),
    RELU(),
    MAXPOOL(3, 2), /* 256x13x13 -> 256x6x6 */
    FLATTEN(),
    LINEAR(4096),
    RELU(),
    DROPOUT(0.5f), /* 9216 -> 4096 */
    LINEAR(4096),
    RELU(),
    DROPOUT(0.5f),
    LINEAR(1000),
};

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

static const model_def models[] = {
    {"bn", "conv32-BN-ReLU-pool, conv64-BN-ReLU-pool, fc128, fc10 (default; Fashion-MNIST)", 1, 28,
     28, 10, 1, bn_layers, COUNT(bn_layers)},
    {"lenet", "LeNet-5 style: conv6 5x5, pool, conv16 5x5, pool, fc120, fc84, fc10", 1, 28, 28, 10,
     1, lenet_layers, COUNT(lenet_layers)},
    {"alexnet", "AlexNet on 3x227x227, 1000 classes (for summary; not trainable here)", 3, 227, 227,
     1000, 0, alexnet_layers, COUNT(alexnet_layers)},
};

const model_def *find_model(const char *name) {
    for (int i = 0; name && i < COUNT(models); i++)
        if (!strcmp(models[i].name, name)) return &models[i];
    return NULL;
}

void list_models(FILE *f, const char *indent) {
    for (int i = 0; i < COUNT(models); i++)
        fprintf(f, "%s%-8s %s\n", indent, models[i].name, models[i].help);
}

const char *model_names(char *buf, size_t cap) {
    buf[0] = '\0';
    for (int i = 0; i < COUNT(models); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", models[i].name);
    }
    return buf;
}

clcnn_status build_model(clcnn_device *dev, const model_def *m, int max_layers, clcnn_net **out) {
    *out = NULL;
    clcnn_net *net = NULL;
    CC_TRY(clcnn_net_create(dev, m->c, m->h, m->w, &net));
    int n = max_layers < 0 || max_layers > m->num_layers ? m->num_layers : max_layers;
    clcnn_status s = CLCNN_OK;
    for (int i = 0; i < n && s == CLCNN_OK; i++) {
        const layer_spec *l = &m->layers[i];
        switch (l->kind) {
        case SPEC_CONV: {
            clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
            d.stride_h = d.stride_w = l->stride;
            d.pad_h = d.pad_w = l->pad;
            d.groups = l->groups;
            s = clcnn_net_add_conv2d(net, l->k, l->r, l->r, &d, l->bias);
            break;
        }
        case SPEC_BN:
            s = clcnn_net_add_batchnorm(net, 0.1f, 1e-5f);
            break;
        case SPEC_RELU:
            s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f);
            break;
        case SPEC_MAXPOOL: {
            clcnn_pool2d_desc d = {.mode = CLCNN_POOL_MAX,
                                   .kernel_h = l->r,
                                   .kernel_w = l->r,
                                   .stride_h = l->stride,
                                   .stride_w = l->stride};
            s = clcnn_net_add_pool2d(net, &d);
            break;
        }
        case SPEC_FLATTEN:
            s = clcnn_net_add_flatten(net);
            break;
        case SPEC_LINEAR:
            s = clcnn_net_add_linear(net, l->k, l->bias);
            break;
        case SPEC_DROPOUT:
            s = clcnn_net_add_dropout(net, l->p);
            break;
        }
    }
    if (s != CLCNN_OK) {
        clcnn_net_free(net);
        return s;
    }
    *out = net;
    return CLCNN_OK;
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

int open_checkpoint_model(clcnn_device *dev, const char *path, const char *model_name,
                          const model_def **model, clcnn_net **net) {
    char name[64] = "", names[256];
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
                "%s)\n",
                path, model_names(names, sizeof names));
        return 1;
    }
    const model_def *m = find_model(name);
    if (!m) {
        fprintf(stderr, "clcnn: unknown model '%s' (models: %s)\n", name,
                model_names(names, sizeof names));
        return 1;
    }
    if ((s = build_model(dev, m, -1, net)) != CLCNN_OK ||
        (s = clcnn_checkpoint_load(*net, NULL, path)) != CLCNN_OK) {
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
    CC_RETURN_IF(classes > EVAL_MAX_CLASSES, CLCNN_ERR_UNSUPPORTED,
                 "evaluate: %d classes, at most %d supported", classes, EVAL_MAX_CLASSES);
    r->classes = classes;
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    clcnn_batcher_config cfg = clcnn_batcher_config_default();
    cfg.batch_size = EVAL_BATCH;
    cfg.shuffle = 0;
    clcnn_batcher *b = NULL;
    CC_TRY(clcnn_batcher_create(ds, &cfg, &b));
    clcnn_tensor *x = NULL;
    float *logits = malloc((size_t)EVAL_BATCH * classes * sizeof *logits);
    clcnn_status s = logits ? CLCNN_OK : CLCNN_ERR_OUT_OF_MEMORY;
    if (s) cc_fail(s, "evaluate: out of memory");
    clcnn_net_set_training(net, 0);
    double loss_sum = 0.0;
    size_t cur_n = 0;
    while (s == CLCNN_OK) {
        if (stop && *stop) {
            s = cc_fail(CLCNN_ERR_INTERRUPTED, "evaluation interrupted");
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
            s = cc_fail(CLCNN_ERR_SHAPE,
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
