/* The C builders' layer kinds: each constructor checks that the layer takes its input shape,
 * infers its output shape, describes it for summaries and declares its parameters (names,
 * roles, shapes). The layer then runs as the graph nodes lib/nn/net_graph.c emits for it.
 *
 * Shape key: x is the layer input (n, c, h, w) or (n, c) after a flatten/linear; y its
 * output (n, k, p, q) or (n, k). */
#include "nn_internal.h"

#include <stdio.h>
#include <string.h>

const char *cc_shape_str(const size_t *shape, int ndim, char *buf, size_t cap) {
    size_t pos = 0;
    if (cap == 0) return buf;
    buf[0] = '\0';
    pos += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, i ? ",%zu" : "%zu", shape[i]);
    if (pos < cap) snprintf(buf + pos, cap - pos, "]");
    return buf;
}

static const char *default_suffix(cc_param_role role) {
    switch (role) {
    case CC_PARAM_WEIGHT:
    case CC_PARAM_GAMMA:
        return "weight";
    case CC_PARAM_BIAS:
    case CC_PARAM_BETA:
        return "bias";
    case CC_PARAM_RMEAN:
        return "running_mean";
    case CC_PARAM_RVAR:
        return "running_var";
    case CC_PARAM_OTHER:
        break;
    }
    return "?";
}

/* Value before clcnn_net_init (and after it for everything but weights). */
float cc_param_default(cc_param_role role) {
    return (role == CC_PARAM_GAMMA || role == CC_PARAM_RVAR) ? 1.0f : 0.0f;
}

/* A parameter named "layers.<i>.<suffix>", or "layers.<i>.<sub>.<suffix>" when sub is
 * not NULL (the parts of a residual shortcut). */
static void add_param_named(cc_layer *l, const char *sub, cc_param_role role, int ndim,
                            const size_t *shape) {
    cc_pspec *p = &l->params[l->nparams++];
    memset(p, 0, sizeof *p);
    if (sub)
        snprintf(p->name, sizeof p->name, "layers.%d.%s.%s", l->index, sub, default_suffix(role));
    else
        snprintf(p->name, sizeof p->name, "layers.%d.%s", l->index, default_suffix(role));
    p->role = role;
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
}

static void add_param(cc_layer *l, cc_param_role role, int ndim, const size_t *shape) {
    add_param_named(l, NULL, role, ndim, shape);
}

static void same_shape_out(cc_layer *l) {
    l->out_c = l->in_c;
    l->out_h = l->in_h;
    l->out_w = l->in_w;
    l->out_rank = l->in_rank;
}

/* Replace l->view with a view of t shaped (ndim, shape). */
/* ---- conv2d: y (n, k, p, q) = conv(x (n, c, h, w), w (k, c/g, r, s)) + b (k) ------ */

clcnn_status cc_layer_conv2d(cc_layer *l, int k, int r, int s, const clcnn_conv2d_desc *d,
                             int bias) {
    CC_RETURN_IF(l->in_rank != 4, CLCNN_ERR_SHAPE,
                 "layer %d (conv2d): needs an image input (c, h, w) but gets %d features "
                 "(after a flatten or linear layer)",
                 l->index, l->in_c);
    CC_RETURN_IF(k < 1 || r < 1 || s < 1, CLCNN_ERR_INVALID_ARG,
                 "layer %d (conv2d): %d filters of %dx%d: every size must be >= 1", l->index, k, r,
                 s);
    clcnn_conv2d_desc desc = {1, 1, 0, 0, 1, 1, 1, CLCNN_CONV_AUTO};
    if (d) desc = *d;
    CC_RETURN_IF(desc.groups < 1 || l->in_c % desc.groups || k % desc.groups, CLCNN_ERR_SHAPE,
                 "layer %d (conv2d): %d groups must divide the %d input channels and the %d "
                 "filters",
                 l->index, desc.groups, l->in_c, k);
    size_t xs[4] = {1, (size_t)l->in_c, (size_t)l->in_h, (size_t)l->in_w};
    size_t ws[4] = {(size_t)k, (size_t)(l->in_c / desc.groups), (size_t)r, (size_t)s};
    size_t ys[4];
    clcnn_status st = clcnn_conv2d_output_shape(&desc, xs, ws, ys);
    if (st != CLCNN_OK)
        return cc_fail_append(st, " (layer %d, conv2d %d x %dx%d on input %dx%dx%d)", l->index, k,
                              r, s, l->in_c, l->in_h, l->in_w);
    l->conv = desc;
    l->has_bias = bias != 0;
    l->out_c = (int)ys[1];
    l->out_h = (int)ys[2];
    l->out_w = (int)ys[3];
    l->out_rank = 4;
    snprintf(l->kind, sizeof l->kind, "conv2d");
    int pos = snprintf(l->desc, sizeof l->desc, "%d x %dx%d, stride %d", k, r, s, desc.stride_h);
    if (desc.stride_w != desc.stride_h && pos < (int)sizeof l->desc)
        pos += snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, "x%d", desc.stride_w);
    if ((desc.pad_h || desc.pad_w) && pos < (int)sizeof l->desc)
        pos +=
            snprintf(l->desc + pos, sizeof l->desc - (size_t)pos,
                     desc.pad_h == desc.pad_w ? ", pad %d" : ", pad %dx%d", desc.pad_h, desc.pad_w);
    if ((desc.dilation_h != 1 || desc.dilation_w != 1) && pos < (int)sizeof l->desc)
        pos += snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, ", dilation %dx%d",
                        desc.dilation_h, desc.dilation_w);
    if (desc.groups != 1 && pos < (int)sizeof l->desc)
        pos += snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, ", groups %d", desc.groups);
    if (!bias && pos < (int)sizeof l->desc)
        snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, ", no bias");
    add_param(l, CC_PARAM_WEIGHT, 4, ws);
    if (bias) add_param(l, CC_PARAM_BIAS, 1, (size_t[]){(size_t)k});
    return CLCNN_OK;
}

/* ---- activation: y = act(x), any shape --------------------------------------------- */

clcnn_status cc_layer_activation(cc_layer *l, clcnn_activation act, float alpha) {
    const char *kind = act == CLCNN_ACT_RELU         ? "relu"
                       : act == CLCNN_ACT_LEAKY_RELU ? "leaky_relu"
                       : act == CLCNN_ACT_NONE       ? "identity"
                                                     : NULL;
    CC_RETURN_IF(!kind, CLCNN_ERR_INVALID_ARG, "layer %d (activation): unknown activation %d",
                 l->index, (int)act);
    l->alpha = alpha;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    if (act == CLCNN_ACT_LEAKY_RELU) snprintf(l->desc, sizeof l->desc, "slope %g", (double)alpha);
    return CLCNN_OK;
}

/* ---- pool2d: y (n, c, p, q) from x (n, c, h, w); max keeps the argmax ---------------- */

clcnn_status cc_layer_pool2d(cc_layer *l, const clcnn_pool2d_desc *d) {
    CC_RETURN_IF(!d, CLCNN_ERR_INVALID_ARG, "layer %d (pool2d): descriptor is NULL", l->index);
    CC_RETURN_IF(l->in_rank != 4, CLCNN_ERR_SHAPE,
                 "layer %d (pool2d): needs an image input (c, h, w) but gets %d features "
                 "(after a flatten or linear layer)",
                 l->index, l->in_c);
    const char *kind = d->mode == CLCNN_POOL_MAX           ? "maxpool"
                       : d->mode == CLCNN_POOL_AVG         ? "avgpool"
                       : d->mode == CLCNN_POOL_AVG_EXCLUDE ? "avgpool"
                                                           : NULL;
    CC_RETURN_IF(!kind, CLCNN_ERR_INVALID_ARG, "layer %d (pool2d): unknown mode %d", l->index,
                 (int)d->mode);
    size_t xs[4] = {1, (size_t)l->in_c, (size_t)l->in_h, (size_t)l->in_w};
    size_t ys[4];
    clcnn_status st = clcnn_pool2d_output_shape(d, xs, ys);
    if (st != CLCNN_OK)
        return cc_fail_append(st, " (layer %d, %s on input %dx%dx%d)", l->index, kind, l->in_c,
                              l->in_h, l->in_w);
    l->pool = *d;
    l->out_c = (int)ys[1];
    l->out_h = (int)ys[2];
    l->out_w = (int)ys[3];
    l->out_rank = 4;
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    if (d->global) {
        snprintf(l->desc, sizeof l->desc, "global");
    } else {
        int pos = snprintf(l->desc, sizeof l->desc, "%dx%d, stride %d", d->kernel_h, d->kernel_w,
                           d->stride_h);
        if (d->stride_w != d->stride_h)
            pos += snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, "x%d", d->stride_w);
        if (d->pad_h || d->pad_w)
            pos += snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, ", pad %dx%d", d->pad_h,
                            d->pad_w);
        if (d->mode == CLCNN_POOL_AVG_EXCLUDE)
            snprintf(l->desc + pos, sizeof l->desc - (size_t)pos, ", padding excluded");
    }
    return CLCNN_OK;
}

/* ---- batchnorm: per channel of (n, c, h, w) or per feature of (n, c) ----------------- */

clcnn_status cc_layer_batchnorm(cc_layer *l, float momentum, float eps) {
    CC_RETURN_IF(!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f), CLCNN_ERR_INVALID_ARG,
                 "layer %d (batchnorm): momentum %g must be in [0, 1] and eps %g > 0", l->index,
                 (double)momentum, (double)eps);
    l->momentum = momentum;
    l->eps = eps;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "batchnorm");
    snprintf(l->desc, sizeof l->desc, "%d %s, momentum %g, eps %g", l->in_c,
             l->in_rank == 4 ? "channels" : "features", (double)momentum, (double)eps);
    size_t c = (size_t)l->in_c;
    static const cc_param_role roles[4] = {CC_PARAM_GAMMA, CC_PARAM_BETA, CC_PARAM_RMEAN,
                                           CC_PARAM_RVAR};
    for (int i = 0; i < 4; i++)
        add_param(l, roles[i], 1, &c);
    return CLCNN_OK;
}

/* ---- dropout: y = x * mask / (1 - p) in training, y = x (a view) otherwise ----------- */

clcnn_status cc_layer_dropout(cc_layer *l, float p) {
    CC_RETURN_IF(!(p >= 0.0f && p < 1.0f), CLCNN_ERR_INVALID_ARG,
                 "layer %d (dropout): p = %g must be in [0, 1)", l->index, (double)p);
    l->p = p;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "dropout");
    snprintf(l->desc, sizeof l->desc, "p = %g", (double)p);
    return CLCNN_OK;
}

/* ---- flatten: (n, c, h, w) -> (n, c*h*w), a view both ways -------------------------- */

clcnn_status cc_layer_flatten(cc_layer *l) {
    size_t features = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
    CC_RETURN_IF(features > 0x7fffffff, CLCNN_ERR_SHAPE,
                 "layer %d (flatten): %dx%dx%d is too many features", l->index, l->in_c, l->in_h,
                 l->in_w);
    l->out_c = (int)features;
    l->out_h = l->out_w = 1;
    l->out_rank = 2;
    snprintf(l->kind, sizeof l->kind, "flatten");
    snprintf(l->desc, sizeof l->desc, "%dx%dx%d -> %zu", l->in_c, l->in_h, l->in_w, features);
    return CLCNN_OK;
}

/* ---- linear: y (n, out) = x (n, in) w^T (out, in) + b (out); x may be 4-D ----------- */

clcnn_status cc_layer_linear(cc_layer *l, int out_features, int bias) {
    CC_RETURN_IF(out_features < 1, CLCNN_ERR_INVALID_ARG,
                 "layer %d (linear): %d output features, need >= 1", l->index, out_features);
    size_t in = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
    l->has_bias = bias != 0;
    l->out_c = out_features;
    l->out_h = l->out_w = 1;
    l->out_rank = 2;
    snprintf(l->kind, sizeof l->kind, "linear");
    snprintf(l->desc, sizeof l->desc, "%zu -> %d%s", in, out_features, bias ? "" : ", no bias");
    size_t ws[2] = {(size_t)out_features, in};
    add_param(l, CC_PARAM_WEIGHT, 2, ws);
    if (bias) add_param(l, CC_PARAM_BIAS, 1, ws);
    return CLCNN_OK;
}

/* ---- residual: y = branch(x0) + shortcut(x0), x0 the block input --------------------- *
 * x here is the branch output (n, k, p, q) (or (n, k)); the shortcut is x0 itself or
 * bn(conv1x1(x0, w (k, c0, 1, 1), stride)). In the graph: the shortcut's nodes and an Add. */

clcnn_status cc_layer_residual(const clcnn_net *net, cc_layer *l, int res_from,
                               const clcnn_residual_desc *d) {
    clcnn_residual_desc desc = {CLCNN_SHORTCUT_IDENTITY, 1, 0, 0.0f, 0.0f};
    if (d) desc = *d;
    CC_RETURN_IF(desc.kind != CLCNN_SHORTCUT_IDENTITY && desc.kind != CLCNN_SHORTCUT_PROJECTION,
                 CLCNN_ERR_INVALID_ARG, "layer %d (residual): unknown shortcut kind %d", l->index,
                 (int)desc.kind);
    int proj = desc.kind == CLCNN_SHORTCUT_PROJECTION;
    float momentum = desc.bn_momentum == 0.0f ? 0.1f : desc.bn_momentum;
    float eps = desc.bn_eps == 0.0f ? 1e-5f : desc.bn_eps;
    CC_RETURN_IF(proj && desc.stride < 1, CLCNN_ERR_INVALID_ARG,
                 "layer %d (residual): projection stride %d must be >= 1", l->index, desc.stride);
    CC_RETURN_IF(proj && desc.batchnorm &&
                     (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f)),
                 CLCNN_ERR_INVALID_ARG,
                 "layer %d (residual): shortcut batchnorm momentum %g must be in [0, 1] and "
                 "eps %g > 0",
                 l->index, (double)momentum, (double)eps);
    /* block input: layer res_from-1's output, or the net's samples */
    int c0 = net->c, h0 = net->h, w0 = net->w, rank0 = 4;
    if (res_from > 0) {
        const cc_layer *b = &net->layers[res_from - 1];
        c0 = b->out_c, h0 = b->out_h, w0 = b->out_w, rank0 = b->out_rank;
    }
    /* what the shortcut makes of it */
    int sc_c = c0, sc_h = h0, sc_w = w0, sc_rank = rank0;
    char what[96];
    snprintf(what, sizeof what, "identity");
    if (proj) {
        CC_RETURN_IF(rank0 != 4, CLCNN_ERR_SHAPE,
                     "layer %d (residual): a projection shortcut needs an image block input "
                     "(c, h, w) but gets %d features",
                     l->index, c0);
        sc_c = l->in_c;
        sc_h = (h0 - 1) / desc.stride + 1;
        sc_w = (w0 - 1) / desc.stride + 1;
        /* short enough for a summary column: "bn(1x1 conv 2048 s2)" */
        snprintf(what, sizeof what, desc.batchnorm ? "bn(1x1 conv %d s%d)" : "1x1 conv %d s%d",
                 sc_c, desc.stride);
    }
    if (sc_c != l->in_c || sc_h != l->in_h || sc_w != l->in_w || sc_rank != l->in_rank)
        return cc_fail(CLCNN_ERR_SHAPE,
                       "layer %d (residual): the branch output %dx%dx%d%s (layers %d-%d) does not "
                       "match the shortcut's %dx%dx%d%s (%s of the block input %dx%dx%d)",
                       l->index, l->in_c, l->in_h, l->in_w, l->in_rank == 2 ? " (flat)" : "",
                       res_from, l->index - 1, sc_c, sc_h, sc_w, sc_rank == 2 ? " (flat)" : "",
                       what, c0, h0, w0);
    l->res_from = res_from;
    l->res_proj = proj;
    l->res_bn = proj && desc.batchnorm;
    l->momentum = momentum;
    l->eps = eps;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "residual");
    snprintf(l->desc, sizeof l->desc, "layers %d-%d + %s", res_from, l->index - 1, what);
    if (!proj) return CLCNN_OK;
    clcnn_conv2d_desc cd = {desc.stride, desc.stride, 0, 0, 1, 1, 1, CLCNN_CONV_AUTO};
    l->conv = cd;
    l->has_bias = !l->res_bn;
    size_t ws[4] = {(size_t)sc_c, (size_t)c0, 1, 1}, c = (size_t)sc_c;
    add_param_named(l, "shortcut", CC_PARAM_WEIGHT, 4, ws);
    if (l->has_bias) add_param_named(l, "shortcut", CC_PARAM_BIAS, 1, &c);
    static const cc_param_role roles[4] = {CC_PARAM_GAMMA, CC_PARAM_BETA, CC_PARAM_RMEAN,
                                           CC_PARAM_RVAR};
    for (int i = 0; l->res_bn && i < 4; i++)
        add_param_named(l, "shortcut_bn", roles[i], 1, &c);
    return CLCNN_OK;
}
