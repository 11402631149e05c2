/* The model zoo: the ImageNet models of the perf suites (perf/suites/<name>.txt) built
 * with the public builders, so their convolution shapes are exactly the suites'.
 *
 *   alexnet       3x227x227, one tower as torchvision but with the original 96 conv1
 *                 filters; dropout 0.5 before fc6 and fc7
 *   vgg16         3x224x224, configuration D, 13 convolutions 3x3 pad 1, no batchnorm
 *   resnet50      3x224x224, v1.5 (the stride of a downsampling bottleneck is on its 3x3
 *                 convolution), batchnorm after every convolution, projection shortcuts
 *                 (1x1 conv + batchnorm) where the shape changes
 *   mobilenet_v2  3x224x224, width 1.0, inverted residuals; the library has no ReLU6, so
 *                 the clipped activations are plain ReLUs (same shapes and cost)
 *
 * Convolutions followed by a batchnorm have no bias; batchnorms use PyTorch's momentum 0.1
 * and eps 1e-5. Parameters are allocated, not initialised: call clcnn_net_init. */
#include "nn_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct model_def {
    const char *name;
    int c, h, w;
    clcnn_status (*build)(clcnn_net *net, int classes);
} model_def;

static clcnn_conv2d_desc conv_desc(int stride, int pad, int groups) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.groups = groups;
    return d;
}

/* conv (k filters r x r) with a bias, then ReLU */
static clcnn_status conv_relu(clcnn_net *net, int k, int r, int stride, int pad) {
    clcnn_conv2d_desc d = conv_desc(stride, pad, 1);
    CC_TRY(clcnn_net_add_conv2d(net, k, r, r, &d, 1));
    return clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f);
}

/* conv without bias, batchnorm, and a ReLU when relu */
static clcnn_status conv_bn(clcnn_net *net, int k, int r, int stride, int pad, int groups,
                            int relu) {
    clcnn_conv2d_desc d = conv_desc(stride, pad, groups);
    CC_TRY(clcnn_net_add_conv2d(net, k, r, r, &d, 0));
    CC_TRY(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    return relu ? clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f) : CLCNN_OK;
}

static clcnn_status max_pool(clcnn_net *net, int k, int stride, int pad) {
    clcnn_pool2d_desc p = {CLCNN_POOL_MAX, k, k, stride, stride, pad, pad, 0};
    return clcnn_net_add_pool2d(net, &p);
}

static clcnn_status global_avg_pool(clcnn_net *net) {
    clcnn_pool2d_desc p = {CLCNN_POOL_AVG, 0, 0, 0, 0, 0, 0, 1};
    return clcnn_net_add_pool2d(net, &p);
}

/* flatten, then (dropout, linear, ReLU) per hidden width, then dropout and the classes */
static clcnn_status classifier(clcnn_net *net, const int *hidden, int nhidden, float dropout,
                               int classes) {
    CC_TRY(clcnn_net_add_flatten(net));
    for (int i = 0; i < nhidden; i++) {
        if (dropout > 0.0f) CC_TRY(clcnn_net_add_dropout(net, dropout));
        CC_TRY(clcnn_net_add_linear(net, hidden[i], 1));
        CC_TRY(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f));
    }
    if (dropout > 0.0f && nhidden == 0) CC_TRY(clcnn_net_add_dropout(net, dropout));
    return clcnn_net_add_linear(net, classes, 1);
}

/* ---- AlexNet: 227 -> conv1 55 -> pool 27 -> conv2 27 -> pool 13 -> conv3-5 13 -> 6 --- */

static clcnn_status build_alexnet(clcnn_net *net, int classes) {
    CC_TRY(conv_relu(net, 96, 11, 4, 0));
    CC_TRY(max_pool(net, 3, 2, 0));
    CC_TRY(conv_relu(net, 256, 5, 1, 2));
    CC_TRY(max_pool(net, 3, 2, 0));
    CC_TRY(conv_relu(net, 384, 3, 1, 1));
    CC_TRY(conv_relu(net, 384, 3, 1, 1));
    CC_TRY(conv_relu(net, 256, 3, 1, 1));
    CC_TRY(max_pool(net, 3, 2, 0));
    static const int hidden[2] = {4096, 4096};
    return classifier(net, hidden, 2, 0.5f, classes);
}

/* ---- VGG-16 (configuration D): 5 stages of 3x3 convs, each halved by a 2x2 max pool -- */

static clcnn_status build_vgg16(clcnn_net *net, int classes) {
    static const int widths[5] = {64, 128, 256, 512, 512}, convs[5] = {2, 2, 3, 3, 3};
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < convs[s]; i++)
            CC_TRY(conv_relu(net, widths[s], 3, 1, 1));
        CC_TRY(max_pool(net, 2, 2, 0));
    }
    static const int hidden[2] = {4096, 4096};
    return classifier(net, hidden, 2, 0.5f, classes);
}

/* ---- ResNet-50 v1.5 -------------------------------------------------------------------- */

/* Bottleneck: 1x1 reduce to `width`, 3x3 (stride here, v1.5), 1x1 expand to 4*width, plus
 * the shortcut (a projection when the stride or the channel count changes), then ReLU. */
static clcnn_status bottleneck(clcnn_net *net, int in_c, int width, int stride) {
    CC_TRY(clcnn_net_add_residual_begin(net));
    CC_TRY(conv_bn(net, width, 1, 1, 0, 1, 1));
    CC_TRY(conv_bn(net, width, 3, stride, 1, 1, 1));
    CC_TRY(conv_bn(net, 4 * width, 1, 1, 0, 1, 0));
    clcnn_residual_desc proj = {CLCNN_SHORTCUT_PROJECTION, stride, 1, 0.1f, 1e-5f};
    int project = stride != 1 || in_c != 4 * width;
    CC_TRY(clcnn_net_add_residual_end(net, project ? &proj : NULL));
    return clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0.0f);
}

static clcnn_status build_resnet50(clcnn_net *net, int classes) {
    CC_TRY(conv_bn(net, 64, 7, 2, 3, 1, 1)); /* 112x112 */
    CC_TRY(max_pool(net, 3, 2, 1));          /* 56x56 */
    static const int blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
    int in_c = 64;
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < blocks[s]; b++) {
            CC_TRY(bottleneck(net, in_c, widths[s], b == 0 && s > 0 ? 2 : 1));
            in_c = 4 * widths[s];
        }
    CC_TRY(global_avg_pool(net));
    return classifier(net, NULL, 0, 0.0f, classes);
}

/* ---- MobileNet-V2 ---------------------------------------------------------------------- */

/* Inverted residual: 1x1 expand by t (skipped when t == 1), 3x3 depthwise with the stride,
 * 1x1 linear projection to out_c; an identity shortcut when the shape is kept. */
static clcnn_status inverted_residual(clcnn_net *net, int in_c, int out_c, int stride, int t) {
    int residual = stride == 1 && in_c == out_c, hidden = in_c * t;
    if (residual) CC_TRY(clcnn_net_add_residual_begin(net));
    if (t != 1) CC_TRY(conv_bn(net, hidden, 1, 1, 0, 1, 1));
    CC_TRY(conv_bn(net, hidden, 3, stride, 1, hidden, 1));
    CC_TRY(conv_bn(net, out_c, 1, 1, 0, 1, 0));
    return residual ? clcnn_net_add_residual_end(net, NULL) : CLCNN_OK;
}

static clcnn_status build_mobilenet_v2(clcnn_net *net, int classes) {
    /* (expansion t, channels c, repeats n, first stride s), as in the paper's table 2 */
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    CC_TRY(conv_bn(net, 32, 3, 2, 1, 1, 1)); /* 112x112 */
    int in_c = 32;
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < cfg[i][2]; j++) {
            CC_TRY(inverted_residual(net, in_c, cfg[i][1], j == 0 ? cfg[i][3] : 1, cfg[i][0]));
            in_c = cfg[i][1];
        }
    CC_TRY(conv_bn(net, 1280, 1, 1, 0, 1, 1));
    CC_TRY(global_avg_pool(net));
    return classifier(net, NULL, 0, 0.2f, classes);
}

static const model_def models[] = {
    {"alexnet", 3, 227, 227, build_alexnet},
    {"vgg16", 3, 224, 224, build_vgg16},
    {"resnet50", 3, 224, 224, build_resnet50},
    {"mobilenet_v2", 3, 224, 224, build_mobilenet_v2},
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

const char *clcnn_model_name(int i, int *input_c, int *input_h, int *input_w) {
    if (i < 0 || i >= NMODELS) return NULL;
    if (input_c) *input_c = models[i].c;
    if (input_h) *input_h = models[i].h;
    if (input_w) *input_w = models[i].w;
    return models[i].name;
}

clcnn_status clcnn_net_create_model(clcnn_device *dev, const char *name, int classes,
                                    clcnn_net **out) {
    CC_RETURN_IF(!dev || !name || !out, CLCNN_ERR_INVALID_ARG,
                 "clcnn_net_create_model: NULL argument");
    *out = NULL;
    const model_def *m = NULL;
    for (int i = 0; i < NMODELS; i++)
        if (!strcmp(name, models[i].name)) m = &models[i];
    if (!m) {
        char names[128] = "";
        size_t pos = 0;
        for (int i = 0; i < NMODELS && pos < sizeof names; i++)
            pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s%s", i ? ", " : "",
                                    models[i].name);
        return cc_fail(CLCNN_ERR_INVALID_ARG,
                       "clcnn_net_create_model: unknown model '%s' (models: %s)", name, names);
    }
    if (classes <= 0) classes = 1000;
    clcnn_net *net = NULL;
    CC_TRY(clcnn_net_create(dev, m->c, m->h, m->w, &net));
    clcnn_status s = m->build(net, classes);
    if (s != CLCNN_OK) {
        clcnn_net_free(net);
        return cc_fail_append(s, " (building %s)", m->name);
    }
    *out = net;
    return CLCNN_OK;
}
