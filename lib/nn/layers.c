/* The layer kinds of a sequential net: constructors (shape inference, parameters) and
 * their forward/backward passes on top of the ops layer.
 *
 * Shape key: x is the layer input (n, c, h, w) or (n, c) after a flatten/linear; y its
 * output (n, k, p, q) or (n, k). Every pass writes its output into a tensor the layer
 * owns and keeps until the batch size changes (cc_ensure_tensor), so a training loop
 * with a fixed batch allocates nothing after its first step. */
#include "nn_internal.h"

#include <stdio.h>
#include <string.h>

clcnn_status cc_ensure_tensor(clcnn_device *dev, clcnn_tensor **t, clcnn_dtype dtype, int ndim,
                              const size_t *shape) {
    clcnn_tensor *old = *t;
    if (old && old->dtype == dtype && old->ndim == ndim) {
        int same = 1;
        for (int i = 0; i < ndim; i++)
            same &= old->shape[i] == shape[i];
        if (same) return CLCNN_OK;
    }
    clcnn_tensor *fresh = NULL;
    CC_TRY(clcnn_tensor_create(dev, dtype, ndim, shape, &fresh));
    clcnn_tensor_free(old);
    *t = fresh;
    return CLCNN_OK;
}

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

/* A tensor like x (same dtype float, same shape). */
static clcnn_status ensure_like(clcnn_net *net, clcnn_tensor **t, const clcnn_tensor *x) {
    return cc_ensure_tensor(net->dev, t, CLCNN_F32, x->ndim, x->shape);
}

/* Shape of the layer output for batch n. */
static void out_shape(const cc_layer *l, size_t n, size_t shape[4], int *ndim) {
    shape[0] = n;
    shape[1] = (size_t)l->out_c;
    shape[2] = (size_t)l->out_h;
    shape[3] = (size_t)l->out_w;
    *ndim = l->out_rank;
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
    }
    return "?";
}

/* Value before clcnn_net_init (and after it for everything but weights). */
static float default_value(cc_param_role role) {
    return (role == CC_PARAM_GAMMA || role == CC_PARAM_RVAR) ? 1.0f : 0.0f;
}

/* A parameter named "layers.<i>.<suffix>", or "layers.<i>.<sub>.<suffix>" when sub is
 * not NULL (the parts of a residual shortcut). */
static clcnn_status add_param_named(clcnn_net *net, cc_layer *l, const char *sub,
                                    cc_param_role role, int ndim, const size_t *shape,
                                    size_t fan_in, size_t fan_out) {
    cc_param *p = &l->params[l->nparams];
    memset(p, 0, sizeof *p);
    if (sub)
        snprintf(p->name, sizeof p->name, "layers.%d.%s.%s", l->index, sub, default_suffix(role));
    else
        snprintf(p->name, sizeof p->name, "layers.%d.%s", l->index, default_suffix(role));
    p->role = role;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    int trainable = role != CC_PARAM_RMEAN && role != CC_PARAM_RVAR;
    clcnn_status s = clcnn_tensor_create(net->dev, CLCNN_F32, ndim, shape, &p->value);
    if (s == CLCNN_OK) s = clcnn_tensor_fill(p->value, default_value(role));
    if (s == CLCNN_OK && trainable) {
        s = clcnn_tensor_create(net->dev, CLCNN_F32, ndim, shape, &p->grad);
        if (s == CLCNN_OK) s = clcnn_tensor_fill(p->grad, 0.0f);
    }
    if (s != CLCNN_OK) {
        clcnn_tensor_free(p->value);
        clcnn_tensor_free(p->grad);
        memset(p, 0, sizeof *p);
        return s;
    }
    l->nparams++;
    return CLCNN_OK;
}

static clcnn_status add_param(clcnn_net *net, cc_layer *l, cc_param_role role, int ndim,
                              const size_t *shape, size_t fan_in, size_t fan_out) {
    return add_param_named(net, l, NULL, role, ndim, shape, fan_in, fan_out);
}

void cc_layer_release(cc_layer *l) {
    if (!l) return;
    for (int i = 0; i < l->nparams; i++) {
        clcnn_tensor_free(l->params[i].value);
        clcnn_tensor_free(l->params[i].grad);
    }
    l->nparams = 0;
    clcnn_tensor *ts[] = {l->y,      l->view, l->aux,     l->aux2,     l->dx,
                          l->dxview, l->sc_y, l->sc_bn_y, l->sc_dconv, l->sc_dx};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        clcnn_tensor_free(ts[i]);
    l->y = l->view = l->aux = l->aux2 = l->dx = l->dxview = NULL;
    l->sc_y = l->sc_bn_y = l->sc_dconv = l->sc_dx = NULL;
    l->out = l->dxout = l->sc_dxout = NULL;
}

static void same_shape_out(cc_layer *l) {
    l->out_c = l->in_c;
    l->out_h = l->in_h;
    l->out_w = l->in_w;
    l->out_rank = l->in_rank;
}

/* Replace l->view with a view of t shaped (ndim, shape). */
static clcnn_status set_view(clcnn_tensor **view, const clcnn_tensor *t, int ndim,
                             const size_t *shape) {
    clcnn_tensor *v = NULL;
    CC_TRY(clcnn_tensor_view(t, ndim, shape, &v));
    clcnn_tensor_free(*view);
    *view = v;
    return CLCNN_OK;
}

/* ---- conv2d: y (n, k, p, q) = conv(x (n, c, h, w), w (k, c/g, r, s)) + b (k) ------ */

static clcnn_status conv_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x, int training) {
    size_t shape[4];
    int nd;
    out_shape(l, x->shape[0], shape, &nd);
    CC_TRY(cc_ensure_tensor(net->dev, &l->y, CLCNN_F32, nd, shape));
    CC_TRY(clcnn_conv2d_forward(net->dev, &l->conv, x, l->params[0].value,
                                l->has_bias ? l->params[1].value : NULL, l->y, CLCNN_ACT_NONE));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status conv_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                  const clcnn_tensor *dy, int need_dx) {
    CC_TRY(clcnn_conv2d_backward_filter(net->dev, &l->conv, x, dy, l->params[0].grad,
                                        l->has_bias ? l->params[1].grad : NULL));
    if (need_dx) {
        CC_TRY(ensure_like(net, &l->dx, x));
        CC_TRY(clcnn_conv2d_backward_data(net->dev, &l->conv, dy, l->params[0].value, l->dx));
        l->dxout = l->dx;
    }
    return CLCNN_OK;
}

static const cc_layer_vtable conv_vt = {conv_forward, conv_backward};

clcnn_status cc_layer_conv2d(clcnn_net *net, cc_layer *l, int k, int r, int s,
                             const clcnn_conv2d_desc *d, int bias) {
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
    l->vt = &conv_vt;
    l->conv = desc;
    l->k = k;
    l->r = r;
    l->s = s;
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
    size_t rs = (size_t)r * (size_t)s;
    CC_TRY(add_param(net, l, CC_PARAM_WEIGHT, 4, ws, ws[1] * rs, (size_t)k / desc.groups * rs));
    if (bias) {
        st = add_param(net, l, CC_PARAM_BIAS, 1, (size_t[]){(size_t)k}, 0, 0);
        if (st != CLCNN_OK) {
            cc_layer_release(l);
            return st;
        }
    }
    return CLCNN_OK;
}

/* ---- activation: y = act(x), any shape --------------------------------------------- */

static clcnn_status act_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x, int training) {
    CC_TRY(ensure_like(net, &l->y, x));
    CC_TRY(clcnn_activation_forward(net->dev, l->act, l->alpha, x, l->y));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status act_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                 const clcnn_tensor *dy, int need_dx) {
    if (!need_dx) return CLCNN_OK;
    CC_TRY(ensure_like(net, &l->dx, x));
    CC_TRY(clcnn_activation_backward(net->dev, l->act, l->alpha, x, dy, l->dx));
    l->dxout = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable act_vt = {act_forward, act_backward};

clcnn_status cc_layer_activation(clcnn_net *net, cc_layer *l, clcnn_activation act, float alpha) {
    const char *kind = act == CLCNN_ACT_RELU         ? "relu"
                       : act == CLCNN_ACT_LEAKY_RELU ? "leaky_relu"
                       : act == CLCNN_ACT_NONE       ? "identity"
                                                     : NULL;
    CC_RETURN_IF(!kind, CLCNN_ERR_INVALID_ARG, "layer %d (activation): unknown activation %d",
                 l->index, (int)act);
    l->vt = &act_vt;
    l->act = act;
    l->alpha = alpha;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    if (act == CLCNN_ACT_LEAKY_RELU) snprintf(l->desc, sizeof l->desc, "slope %g", (double)alpha);
    return CLCNN_OK;
}

/* ---- pool2d: y (n, c, p, q) from x (n, c, h, w); max keeps the argmax ---------------- */

static clcnn_status pool_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x, int training) {
    size_t shape[4];
    int nd;
    out_shape(l, x->shape[0], shape, &nd);
    CC_TRY(cc_ensure_tensor(net->dev, &l->y, CLCNN_F32, nd, shape));
    clcnn_tensor *argmax = NULL;
    if (training && l->pool.mode == CLCNN_POOL_MAX) {
        CC_TRY(cc_ensure_tensor(net->dev, &l->aux, CLCNN_I32, nd, shape));
        argmax = l->aux;
    }
    CC_TRY(clcnn_pool2d_forward(net->dev, &l->pool, x, l->y, argmax));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status pool_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                  const clcnn_tensor *dy, int need_dx) {
    if (!need_dx) return CLCNN_OK;
    CC_TRY(ensure_like(net, &l->dx, x));
    CC_TRY(clcnn_pool2d_backward(net->dev, &l->pool, dy,
                                 l->pool.mode == CLCNN_POOL_MAX ? l->aux : NULL, l->dx));
    l->dxout = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable pool_vt = {pool_forward, pool_backward};

clcnn_status cc_layer_pool2d(clcnn_net *net, cc_layer *l, const clcnn_pool2d_desc *d) {
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
    l->vt = &pool_vt;
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

static clcnn_status bn_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x, int training) {
    CC_TRY(ensure_like(net, &l->y, x));
    cc_param *p = l->params;
    if (training) {
        size_t c = (size_t)l->in_c;
        CC_TRY(cc_ensure_tensor(net->dev, &l->aux, CLCNN_F32, 1, &c));
        CC_TRY(cc_ensure_tensor(net->dev, &l->aux2, CLCNN_F32, 1, &c));
        CC_TRY(clcnn_batchnorm_forward_train(net->dev, x, p[0].value, p[1].value, p[2].value,
                                             p[3].value, l->momentum, l->eps, l->y, l->aux,
                                             l->aux2));
    } else {
        CC_TRY(clcnn_batchnorm_forward_infer(net->dev, x, p[0].value, p[1].value, p[2].value,
                                             p[3].value, l->eps, l->y));
    }
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status bn_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                const clcnn_tensor *dy, int need_dx) {
    if (need_dx) CC_TRY(ensure_like(net, &l->dx, x));
    CC_TRY(clcnn_batchnorm_backward(net->dev, x, dy, l->params[0].value, l->aux, l->aux2,
                                    need_dx ? l->dx : NULL, l->params[0].grad, l->params[1].grad));
    if (need_dx) l->dxout = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable bn_vt = {bn_forward, bn_backward};

clcnn_status cc_layer_batchnorm(clcnn_net *net, cc_layer *l, float momentum, float eps) {
    CC_RETURN_IF(!(momentum >= 0.0f && momentum <= 1.0f) || !(eps > 0.0f), CLCNN_ERR_INVALID_ARG,
                 "layer %d (batchnorm): momentum %g must be in [0, 1] and eps %g > 0", l->index,
                 (double)momentum, (double)eps);
    l->vt = &bn_vt;
    l->momentum = momentum;
    l->eps = eps;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "batchnorm");
    snprintf(l->desc, sizeof l->desc, "%d %s, momentum %g, eps %g", l->in_c,
             l->in_rank == 4 ? "channels" : "features", (double)momentum, (double)eps);
    size_t c = (size_t)l->in_c;
    static const cc_param_role roles[4] = {CC_PARAM_GAMMA, CC_PARAM_BETA, CC_PARAM_RMEAN,
                                           CC_PARAM_RVAR};
    for (int i = 0; i < 4; i++) {
        clcnn_status st = add_param(net, l, roles[i], 1, &c, 0, 0);
        if (st != CLCNN_OK) {
            cc_layer_release(l);
            return st;
        }
    }
    return CLCNN_OK;
}

/* ---- dropout: y = x * mask / (1 - p) in training, y = x (a view) otherwise ----------- */

/* A per-layer key so two dropout layers draw different masks at the same step. */
static unsigned long long dropout_seed(const clcnn_net *net, const cc_layer *l) {
    uint64_t z = net->seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(l->index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (unsigned long long)(z ^ (z >> 31));
}

static clcnn_status dropout_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                    int training) {
    if (!training || l->p == 0.0f) {
        CC_TRY(set_view(&l->view, x, x->ndim, x->shape));
        l->out = l->view;
        return CLCNN_OK;
    }
    CC_TRY(ensure_like(net, &l->y, x));
    CC_TRY(ensure_like(net, &l->aux, x));
    CC_TRY(clcnn_dropout_forward(net->dev, l->p, dropout_seed(net, l), net->dropout_step, x, l->y,
                                 l->aux));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status dropout_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                     const clcnn_tensor *dy, int need_dx) {
    if (!need_dx) return CLCNN_OK;
    if (l->p == 0.0f) {
        CC_TRY(set_view(&l->dxview, dy, x->ndim, x->shape));
        l->dxout = l->dxview;
        return CLCNN_OK;
    }
    CC_TRY(ensure_like(net, &l->dx, x));
    CC_TRY(clcnn_dropout_backward(net->dev, l->aux, dy, l->dx));
    l->dxout = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable dropout_vt = {dropout_forward, dropout_backward};

clcnn_status cc_layer_dropout(clcnn_net *net, cc_layer *l, float p) {
    CC_RETURN_IF(!(p >= 0.0f && p < 1.0f), CLCNN_ERR_INVALID_ARG,
                 "layer %d (dropout): p = %g must be in [0, 1)", l->index, (double)p);
    l->vt = &dropout_vt;
    l->p = p;
    same_shape_out(l);
    snprintf(l->kind, sizeof l->kind, "dropout");
    snprintf(l->desc, sizeof l->desc, "p = %g", (double)p);
    return CLCNN_OK;
}

/* ---- flatten: (n, c, h, w) -> (n, c*h*w), a view both ways -------------------------- */

static clcnn_status flatten_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                    int training) {
    size_t shape[2] = {x->shape[0], (size_t)l->out_c};
    CC_TRY(set_view(&l->view, x, 2, shape));
    l->out = l->view;
    return CLCNN_OK;
}

static clcnn_status flatten_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                     const clcnn_tensor *dy, int need_dx) {
    if (!need_dx) return CLCNN_OK;
    CC_TRY(set_view(&l->dxview, dy, x->ndim, x->shape));
    l->dxout = l->dxview;
    return CLCNN_OK;
}

static const cc_layer_vtable flatten_vt = {flatten_forward, flatten_backward};

clcnn_status cc_layer_flatten(clcnn_net *net, cc_layer *l) {
    size_t features = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
    CC_RETURN_IF(features > 0x7fffffff, CLCNN_ERR_SHAPE,
                 "layer %d (flatten): %dx%dx%d is too many features", l->index, l->in_c, l->in_h,
                 l->in_w);
    l->vt = &flatten_vt;
    l->out_c = (int)features;
    l->out_h = l->out_w = 1;
    l->out_rank = 2;
    snprintf(l->kind, sizeof l->kind, "flatten");
    snprintf(l->desc, sizeof l->desc, "%dx%dx%d -> %zu", l->in_c, l->in_h, l->in_w, features);
    return CLCNN_OK;
}

/* ---- linear: y (n, out) = x (n, in) w^T (out, in) + b (out); x may be 4-D ----------- */

static clcnn_status linear_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                   int training) {
    size_t shape[4];
    int nd;
    out_shape(l, x->shape[0], shape, &nd);
    CC_TRY(cc_ensure_tensor(net->dev, &l->y, CLCNN_F32, nd, shape));
    CC_TRY(clcnn_linear_forward(net->dev, x, l->params[0].value,
                                l->has_bias ? l->params[1].value : NULL, l->y));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status linear_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                    const clcnn_tensor *dy, int need_dx) {
    if (need_dx) CC_TRY(ensure_like(net, &l->dx, x));
    CC_TRY(clcnn_linear_backward(net->dev, x, l->params[0].value, dy, need_dx ? l->dx : NULL,
                                 l->params[0].grad, l->has_bias ? l->params[1].grad : NULL));
    if (need_dx) l->dxout = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable linear_vt = {linear_forward, linear_backward};

clcnn_status cc_layer_linear(clcnn_net *net, cc_layer *l, int out_features, int bias) {
    CC_RETURN_IF(out_features < 1, CLCNN_ERR_INVALID_ARG,
                 "layer %d (linear): %d output features, need >= 1", l->index, out_features);
    size_t in = (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
    l->vt = &linear_vt;
    l->out_features = out_features;
    l->has_bias = bias != 0;
    l->out_c = out_features;
    l->out_h = l->out_w = 1;
    l->out_rank = 2;
    snprintf(l->kind, sizeof l->kind, "linear");
    snprintf(l->desc, sizeof l->desc, "%zu -> %d%s", in, out_features, bias ? "" : ", no bias");
    size_t ws[2] = {(size_t)out_features, in};
    CC_TRY(add_param(net, l, CC_PARAM_WEIGHT, 2, ws, in, (size_t)out_features));
    if (bias) {
        clcnn_status st = add_param(net, l, CC_PARAM_BIAS, 1, ws, 0, 0);
        if (st != CLCNN_OK) {
            cc_layer_release(l);
            return st;
        }
    }
    return CLCNN_OK;
}

/* ---- residual: y = branch(x0) + shortcut(x0), x0 the block input --------------------- *
 * x here is the branch output (n, k, p, q) (or (n, k)); the shortcut is x0 itself or
 * bn(conv1x1(x0, w (k, c0, 1, 1), stride)). Backward hands dy on to the branch unchanged
 * and keeps the shortcut's gradient at x0 (sc_dxout) for cc_residual_join, which the net
 * calls after the branch's first layer: the two gradients meet there in a fixed order. */

const clcnn_tensor *cc_residual_input(const clcnn_net *net, const cc_layer *l) {
    return l->res_from == 0 ? net->in : net->layers[l->res_from - 1]->out;
}

/* Parameter slots of the projection: weight, [bias], then gamma, beta, mean, var. */
static int res_bn_slot(const cc_layer *l) {
    return l->has_bias ? 2 : 1;
}

static clcnn_status residual_forward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                     int training) {
    const clcnn_tensor *x0 = cc_residual_input(net, l), *sc = x0;
    if (l->res_proj) {
        size_t shape[4];
        int nd;
        out_shape(l, x->shape[0], shape, &nd);
        CC_TRY(cc_ensure_tensor(net->dev, &l->sc_y, CLCNN_F32, 4, shape));
        CC_TRY(clcnn_conv2d_forward(net->dev, &l->conv, x0, l->params[0].value,
                                    l->has_bias ? l->params[1].value : NULL, l->sc_y,
                                    CLCNN_ACT_NONE));
        sc = l->sc_y;
        if (l->res_bn) {
            cc_param *p = &l->params[res_bn_slot(l)];
            CC_TRY(ensure_like(net, &l->sc_bn_y, l->sc_y));
            if (training) {
                size_t c = (size_t)l->out_c;
                CC_TRY(cc_ensure_tensor(net->dev, &l->aux, CLCNN_F32, 1, &c));
                CC_TRY(cc_ensure_tensor(net->dev, &l->aux2, CLCNN_F32, 1, &c));
                CC_TRY(clcnn_batchnorm_forward_train(net->dev, l->sc_y, p[0].value, p[1].value,
                                                     p[2].value, p[3].value, l->momentum, l->eps,
                                                     l->sc_bn_y, l->aux, l->aux2));
            } else {
                CC_TRY(clcnn_batchnorm_forward_infer(net->dev, l->sc_y, p[0].value, p[1].value,
                                                     p[2].value, p[3].value, l->eps, l->sc_bn_y));
            }
            sc = l->sc_bn_y;
        }
    }
    CC_TRY(ensure_like(net, &l->y, x));
    CC_TRY(clcnn_add(net->dev, x, sc, l->y));
    l->out = l->y;
    return CLCNN_OK;
}

static clcnn_status residual_backward(clcnn_net *net, cc_layer *l, const clcnn_tensor *x,
                                      const clcnn_tensor *dy, int need_dx) {
    l->dxout = dy; /* d(branch + shortcut)/d(branch) = 1 */
    /* the block input needs a gradient only when a layer below it is walked */
    int need_x0 = l->res_from > net->bwd_first;
    l->sc_dxout = NULL;
    if (!l->res_proj) {
        l->sc_dxout = dy;
        return CLCNN_OK;
    }
    const clcnn_tensor *x0 = cc_residual_input(net, l), *g = dy;
    if (l->res_bn) {
        cc_param *p = &l->params[res_bn_slot(l)];
        CC_TRY(ensure_like(net, &l->sc_dconv, l->sc_y));
        CC_TRY(clcnn_batchnorm_backward(net->dev, l->sc_y, dy, p[0].value, l->aux, l->aux2,
                                        l->sc_dconv, p[0].grad, p[1].grad));
        g = l->sc_dconv;
    }
    CC_TRY(clcnn_conv2d_backward_filter(net->dev, &l->conv, x0, g, l->params[0].grad,
                                        l->has_bias ? l->params[1].grad : NULL));
    if (need_x0) {
        CC_TRY(ensure_like(net, &l->sc_dx, x0));
        CC_TRY(clcnn_conv2d_backward_data(net->dev, &l->conv, g, l->params[0].value, l->sc_dx));
        l->sc_dxout = l->sc_dx;
    }
    return CLCNN_OK;
}

clcnn_status cc_residual_join(clcnn_net *net, cc_layer *l, const clcnn_tensor *branch_dx,
                              const clcnn_tensor **g) {
    CC_RETURN_IF(!l->sc_dxout || !branch_dx, CLCNN_ERR_INVALID_ARG,
                 "layer %d (residual): no shortcut gradient to join (internal)", l->index);
    const clcnn_tensor *x0 = cc_residual_input(net, l);
    CC_TRY(ensure_like(net, &l->dx, x0));
    CC_TRY(clcnn_add(net->dev, branch_dx, l->sc_dxout, l->dx));
    *g = l->dx;
    return CLCNN_OK;
}

static const cc_layer_vtable residual_vt = {residual_forward, residual_backward};

clcnn_status cc_layer_residual(clcnn_net *net, cc_layer *l, int res_from,
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
        const cc_layer *b = net->layers[res_from - 1];
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
    l->vt = &residual_vt;
    l->res_block = 1;
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
    l->k = sc_c;
    l->r = l->s = 1;
    l->has_bias = !l->res_bn;
    size_t ws[4] = {(size_t)sc_c, (size_t)c0, 1, 1}, c = (size_t)sc_c;
    clcnn_status st =
        add_param_named(net, l, "shortcut", CC_PARAM_WEIGHT, 4, ws, (size_t)c0, (size_t)sc_c);
    if (st == CLCNN_OK && l->has_bias)
        st = add_param_named(net, l, "shortcut", CC_PARAM_BIAS, 1, &c, 0, 0);
    static const cc_param_role roles[4] = {CC_PARAM_GAMMA, CC_PARAM_BETA, CC_PARAM_RMEAN,
                                           CC_PARAM_RVAR};
    for (int i = 0; st == CLCNN_OK && l->res_bn && i < 4; i++)
        st = add_param_named(net, l, "shortcut_bn", roles[i], 1, &c, 0, 0);
    if (st != CLCNN_OK) cc_layer_release(l);
    return st;
}
