/* The model zoo: every named model of the library and the `clcnn` command, built with the
 * public builders. The ImageNet models are those of the perf suites
 * (perf/suites/<name>.txt), so their convolution shapes are exactly the suites'.
 *
 *   bn               1x28x28, 10 classes: two conv + batchnorm blocks and a small
 *                    classifier, the default of `clcnn train` (Fashion-MNIST)
 *   lenet            1x28x28, 10 classes: LeNet-5 with ReLU and max pooling
 *   alexnet          3x227x227, one tower (as torchvision) with the paper's filter counts
 *                    (96, 256, 384, 384, 256; torchvision has 64, 192, 384, 256, 256);
 *                    dropout 0.5 before fc6 and fc7
 *   alexnet_grouped  3x227x227, the original two-tower AlexNet (conv2, conv4 and conv5 in
 *                    two groups), without local response normalisation; dropout after
 *                    fc6 and fc7
 *   vgg16            3x224x224, configuration D, 13 convolutions 3x3 pad 1, no batchnorm
 *   resnet50         3x224x224, v1.5 (the stride of a downsampling bottleneck is on its 3x3
 *                    convolution), batchnorm after every convolution, projection shortcuts
 *                    (1x1 conv + batchnorm) where the shape changes
 *   mobilenet_v2     3x224x224, width 1.0, inverted residuals; the library has no ReLU6, so
 *                    the clipped activations are plain ReLUs (same shapes and cost)
 *
 * The ImageNet models default to 1000 classes. Convolutions followed by a batchnorm have no
 * bias; batchnorms use PyTorch's momentum 0.1 and eps 1e-5. Parameters are allocated, not
 * initialised: call clcnn_net_init. Parameter names follow the layer order ("layers.<i>.*"),
 * so a model's layer sequence is its checkpoint format: bn and lenet must not change. */
#include "nn_internal.h"

#include <stdio.h>
#include <string.h>

/* The net being built and how many layers it may reach (< 0: all): clcnn_net_create_model_prefix
 * builds the first layers of a model, for reading the feature maps of each. */
typedef struct zoo_net {
    clcnn_net *net;
    int max_layers;
} zoo_net;

typedef struct model_def {
    const char *name, *description;
    int c, h, w, classes;
    clcnn_status (*build)(zoo_net *z, int classes);
} model_def;

/* Run one builder call unless the net already has its max_layers: every call after the
 * limit is skipped, so the builders below read as if they always built the whole model.
 * (A residual_begin alone adds no layer: a prefix ending inside a branch runs that branch
 * as a plain chain.) */
#define ADD(z, call)                                                                               \
    do {                                                                                           \
        if ((z)->max_layers < 0 || clcnn_net_num_layers((z)->net) < (z)->max_layers) CC_TRY(call); \
    } while (0)

static clcnn_conv2d_desc conv_desc(int stride, int pad, int groups) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.groups = groups;
    return d;
}

/* conv (k filters r x r in `groups` groups) with a bias, then ReLU */
static clcnn_status conv_relu(zoo_net *z, int k, int r, int stride, int pad, int groups) {
    clcnn_conv2d_desc d = conv_desc(stride, pad, groups);
    ADD(z, clcnn_net_add_conv2d(z->net, k, r, r, &d, 1));
    ADD(z, clcnn_net_add_activation(z->net, CLCNN_ACT_RELU, 0.0f));
    return CLCNN_OK;
}

/* conv without bias, batchnorm, and a ReLU when relu */
static clcnn_status conv_bn(zoo_net *z, int k, int r, int stride, int pad, int groups, int relu) {
    clcnn_conv2d_desc d = conv_desc(stride, pad, groups);
    ADD(z, clcnn_net_add_conv2d(z->net, k, r, r, &d, 0));
    ADD(z, clcnn_net_add_batchnorm(z->net, 0.1f, 1e-5f));
    if (relu) ADD(z, clcnn_net_add_activation(z->net, CLCNN_ACT_RELU, 0.0f));
    return CLCNN_OK;
}

static clcnn_status max_pool(zoo_net *z, int k, int stride, int pad) {
    clcnn_pool2d_desc p = {CLCNN_POOL_MAX, k, k, stride, stride, pad, pad, 0};
    ADD(z, clcnn_net_add_pool2d(z->net, &p));
    return CLCNN_OK;
}

static clcnn_status global_avg_pool(zoo_net *z) {
    clcnn_pool2d_desc p = {CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    ADD(z, clcnn_net_add_pool2d(z->net, &p));
    return CLCNN_OK;
}

/* flatten, then (dropout, linear, ReLU) per hidden width, then dropout and the classes */
static clcnn_status classifier(zoo_net *z, const int *hidden, int nhidden, float dropout,
                               int classes) {
    ADD(z, clcnn_net_add_flatten(z->net));
    for (int i = 0; i < nhidden; i++) {
        if (dropout > 0.0f) ADD(z, clcnn_net_add_dropout(z->net, dropout));
        ADD(z, clcnn_net_add_linear(z->net, hidden[i], 1));
        ADD(z, clcnn_net_add_activation(z->net, CLCNN_ACT_RELU, 0.0f));
    }
    if (dropout > 0.0f && nhidden == 0) ADD(z, clcnn_net_add_dropout(z->net, dropout));
    ADD(z, clcnn_net_add_linear(z->net, classes, 1));
    return CLCNN_OK;
}

/* ---- bn: 28 -> conv 28 -> pool 14 -> conv 14 -> pool 7 -> fc128 -> classes ------------ */

/* 421,738 parameters with 10 classes. No dropout, so a resumed run repeats an
 * uninterrupted one exactly. Measured with `clcnn train` on POCL (Adam 1e-3, cosine to 0,
 * batch 64, seed 1), final test accuracy: 5 epochs 92.07%; 8 epochs 92.28%; 8 + weight
 * decay 5e-4 92.39% (the default); 8 + shift 1 92.16%; 12 + shift 1 92.61%; 6 + flip
 * 91.71% (flips hurt: the shoes all face left in Fashion-MNIST). */
static clcnn_status build_bn(zoo_net *z, int classes) {
    CC_TRY(conv_bn(z, 32, 3, 1, 1, 1, 1));
    CC_TRY(max_pool(z, 2, 2, 0)); /* 32x14x14 */
    CC_TRY(conv_bn(z, 64, 3, 1, 1, 1, 1));
    CC_TRY(max_pool(z, 2, 2, 0)); /* 64x7x7 */
    static const int hidden[1] = {128};
    return classifier(z, hidden, 1, 0.0f, classes);
}

/* ---- LeNet-5 for 28x28 inputs (padding 2 on the first conv, as for MNIST) ------------ */

/* ReLU and max pooling instead of tanh and subsampling: 61,706 parameters (10 classes). */
static clcnn_status build_lenet(zoo_net *z, int classes) {
    CC_TRY(conv_relu(z, 6, 5, 1, 2, 1));
    CC_TRY(max_pool(z, 2, 2, 0)); /* 6x14x14 */
    CC_TRY(conv_relu(z, 16, 5, 1, 0, 1));
    CC_TRY(max_pool(z, 2, 2, 0)); /* 16x5x5 */
    static const int hidden[2] = {120, 84};
    return classifier(z, hidden, 2, 0.0f, classes);
}

/* ---- AlexNet: 227 -> conv1 55 -> pool 27 -> conv2 27 -> pool 13 -> conv3-5 13 -> 6 --- */

static clcnn_status build_alexnet(zoo_net *z, int classes) {
    CC_TRY(conv_relu(z, 96, 11, 4, 0, 1));
    CC_TRY(max_pool(z, 3, 2, 0));
    CC_TRY(conv_relu(z, 256, 5, 1, 2, 1));
    CC_TRY(max_pool(z, 3, 2, 0));
    CC_TRY(conv_relu(z, 384, 3, 1, 1, 1));
    CC_TRY(conv_relu(z, 384, 3, 1, 1, 1));
    CC_TRY(conv_relu(z, 256, 3, 1, 1, 1));
    CC_TRY(max_pool(z, 3, 2, 0));
    static const int hidden[2] = {4096, 4096};
    return classifier(z, hidden, 2, 0.5f, classes);
}

/* Krizhevsky et al. 2012 with the two-GPU grouping of conv2, conv4 and conv5 and without
 * local response normalisation: 60,965,224 parameters with 1000 classes. */
static clcnn_status build_alexnet_grouped(zoo_net *z, int classes) {
    CC_TRY(conv_relu(z, 96, 11, 4, 0, 1));
    CC_TRY(max_pool(z, 3, 2, 0)); /* 96x55x55 -> 96x27x27 */
    CC_TRY(conv_relu(z, 256, 5, 1, 2, 2));
    CC_TRY(max_pool(z, 3, 2, 0)); /* 256x27x27 -> 256x13x13 */
    CC_TRY(conv_relu(z, 384, 3, 1, 1, 1));
    CC_TRY(conv_relu(z, 384, 3, 1, 1, 2));
    CC_TRY(conv_relu(z, 256, 3, 1, 1, 2));
    CC_TRY(max_pool(z, 3, 2, 0)); /* 256x13x13 -> 256x6x6 */
    ADD(z, clcnn_net_add_flatten(z->net));
    for (int i = 0; i < 2; i++) { /* 9216 -> 4096 -> 4096 */
        ADD(z, clcnn_net_add_linear(z->net, 4096, 1));
        ADD(z, clcnn_net_add_activation(z->net, CLCNN_ACT_RELU, 0.0f));
        ADD(z, clcnn_net_add_dropout(z->net, 0.5f));
    }
    ADD(z, clcnn_net_add_linear(z->net, classes, 1));
    return CLCNN_OK;
}

/* ---- VGG-16 (configuration D): 5 stages of 3x3 convs, each halved by a 2x2 max pool -- */

static clcnn_status build_vgg16(zoo_net *z, int classes) {
    static const int widths[5] = {64, 128, 256, 512, 512}, convs[5] = {2, 2, 3, 3, 3};
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < convs[s]; i++)
            CC_TRY(conv_relu(z, widths[s], 3, 1, 1, 1));
        CC_TRY(max_pool(z, 2, 2, 0));
    }
    static const int hidden[2] = {4096, 4096};
    return classifier(z, hidden, 2, 0.5f, classes);
}

/* ---- ResNet-50 v1.5 -------------------------------------------------------------------- */

/* Bottleneck: 1x1 reduce to `width`, 3x3 (stride here, v1.5), 1x1 expand to 4*width, plus
 * the shortcut (a projection when the stride or the channel count changes), then ReLU. */
static clcnn_status bottleneck(zoo_net *z, int in_c, int width, int stride) {
    ADD(z, clcnn_net_add_residual_begin(z->net));
    CC_TRY(conv_bn(z, width, 1, 1, 0, 1, 1));
    CC_TRY(conv_bn(z, width, 3, stride, 1, 1, 1));
    CC_TRY(conv_bn(z, 4 * width, 1, 1, 0, 1, 0));
    clcnn_residual_desc proj = {CLCNN_SHORTCUT_PROJECTION, stride, 1, 0.1f, 1e-5f};
    int project = stride != 1 || in_c != 4 * width;
    ADD(z, clcnn_net_add_residual_end(z->net, project ? &proj : NULL));
    ADD(z, clcnn_net_add_activation(z->net, CLCNN_ACT_RELU, 0.0f));
    return CLCNN_OK;
}

static clcnn_status build_resnet50(zoo_net *z, int classes) {
    CC_TRY(conv_bn(z, 64, 7, 2, 3, 1, 1)); /* 112x112 */
    CC_TRY(max_pool(z, 3, 2, 1));          /* 56x56 */
    static const int blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
    int in_c = 64;
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < blocks[s]; b++) {
            CC_TRY(bottleneck(z, in_c, widths[s], b == 0 && s > 0 ? 2 : 1));
            in_c = 4 * widths[s];
        }
    CC_TRY(global_avg_pool(z));
    return classifier(z, NULL, 0, 0.0f, classes);
}

/* ---- MobileNet-V2 ---------------------------------------------------------------------- */

/* Inverted residual: 1x1 expand by t (skipped when t == 1), 3x3 depthwise with the stride,
 * 1x1 linear projection to out_c; an identity shortcut when the shape is kept. */
static clcnn_status inverted_residual(zoo_net *z, int in_c, int out_c, int stride, int t) {
    int residual = stride == 1 && in_c == out_c, hidden = in_c * t;
    if (residual) ADD(z, clcnn_net_add_residual_begin(z->net));
    if (t != 1) CC_TRY(conv_bn(z, hidden, 1, 1, 0, 1, 1));
    CC_TRY(conv_bn(z, hidden, 3, stride, 1, hidden, 1));
    CC_TRY(conv_bn(z, out_c, 1, 1, 0, 1, 0));
    if (residual) ADD(z, clcnn_net_add_residual_end(z->net, NULL));
    return CLCNN_OK;
}

static clcnn_status build_mobilenet_v2(zoo_net *z, int classes) {
    /* (expansion t, channels c, repeats n, first stride s), as in the paper's table 2 */
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    CC_TRY(conv_bn(z, 32, 3, 2, 1, 1, 1)); /* 112x112 */
    int in_c = 32;
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < cfg[i][2]; j++) {
            CC_TRY(inverted_residual(z, in_c, cfg[i][1], j == 0 ? cfg[i][3] : 1, cfg[i][0]));
            in_c = cfg[i][1];
        }
    CC_TRY(conv_bn(z, 1280, 1, 1, 0, 1, 1));
    CC_TRY(global_avg_pool(z));
    return classifier(z, NULL, 0, 0.2f, classes);
}

static const model_def models[] = {
    {"bn", "conv32-BN-ReLU-pool, conv64-BN-ReLU-pool, fc128 (the default)", 1, 28, 28, 10,
     build_bn},
    {"lenet", "LeNet-5: conv6 5x5, pool, conv16 5x5, pool, fc120, fc84", 1, 28, 28, 10,
     build_lenet},
    {"alexnet", "AlexNet in one tower with the paper's filter counts (the perf suite)", 3, 227, 227,
     1000, build_alexnet},
    {"alexnet_grouped", "AlexNet as in the paper: conv2, conv4, conv5 in two groups", 3, 227, 227,
     1000, build_alexnet_grouped},
    {"vgg16", "VGG-16 (configuration D), no batchnorm", 3, 224, 224, 1000, build_vgg16},
    {"resnet50", "ResNet-50 v1.5", 3, 224, 224, 1000, build_resnet50},
    {"mobilenet_v2", "MobileNet-V2, width 1.0 (ReLU for ReLU6)", 3, 224, 224, 1000,
     build_mobilenet_v2},
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

int clcnn_model_get_info(int i, clcnn_model_info *out) {
    if (i < 0 || i >= NMODELS || !out) return 0;
    const model_def *m = &models[i];
    *out = (clcnn_model_info){m->name, m->description, m->c, m->h, m->w, m->classes};
    return 1;
}

int clcnn_model_find(const char *name, clcnn_model_info *out) {
    for (int i = 0; name && i < NMODELS; i++)
        if (!strcmp(name, models[i].name)) {
            if (out) clcnn_model_get_info(i, out);
            return i;
        }
    return -1;
}

clcnn_status clcnn_net_create_model_prefix(clcnn_device *dev, const char *name, int classes,
                                           int num_layers, clcnn_net **out) {
    CC_RETURN_IF(!dev || !name || !out, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_create_model: NULL argument");
    *out = NULL;
    int i = clcnn_model_find(name, NULL);
    if (i < 0) {
        char names[256] = "";
        size_t pos = 0;
        for (int j = 0; j < NMODELS && pos < sizeof names; j++)
            pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s%s", j ? ", " : "",
                                    models[j].name);
        return cc_fail(CLCNN_ERR_INVALID_ARG,
                       "clcnn_net_create_model: unknown model '%s' (models: %s)", name, names);
    }
    const model_def *m = &models[i];
    if (classes <= 0) classes = m->classes;
    zoo_net z = {NULL, num_layers};
    CC_TRY(clcnn_net_create(dev, m->c, m->h, m->w, &z.net));
    clcnn_status s = m->build(&z, classes);
    if (s != CLCNN_OK) {
        clcnn_net_free(z.net);
        return cc_fail_append(s, " (building %s)", m->name);
    }
    *out = z.net;
    return CLCNN_OK;
}

clcnn_status clcnn_net_create_model(clcnn_device *dev, const char *name, int classes,
                                    clcnn_net **out) {
    return clcnn_net_create_model_prefix(dev, name, classes, -1, out);
}

const char *clcnn_model_name(int i, int *input_c, int *input_h, int *input_w) {
    clcnn_model_info info;
    if (!clcnn_model_get_info(i, &info)) return NULL;
    if (input_c) *input_c = info.c;
    if (input_h) *input_h = info.h;
    if (input_w) *input_w = info.w;
    return info.name;
}
