/* Optimizers: SGD with momentum and Adam, PyTorch semantics, state and updates on the
 * device (clcnn_sgd_update / clcnn_adam_update) over the net's flat parameter arena: one
 * launch per step. Each slot is one tensor laid out like the trained arena (zero at
 * creation), with a view per trainable parameter for checkpoints:
 *   SGD:  slot1 = velocity ("momentum" in checkpoints; none when momentum is 0)
 *   Adam: slot1 = first moment m, slot2 = second moment v */
#include "nn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

clcnn_optim_config clcnn_optim_default(clcnn_optim_kind kind) {
    clcnn_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    if (kind == CLCNN_OPTIM_ADAM) {
        c.lr = 1e-3f;
    } else {
        c.lr = 0.01f;
        c.momentum = 0.9f;
    }
    return c;
}

void clcnn_optimizer_free(clcnn_optimizer *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) {
        if (opt->slot1) clcnn_tensor_free(opt->slot1[i]);
        if (opt->slot2) clcnn_tensor_free(opt->slot2[i]);
    }
    clcnn_tensor_free(opt->arena1);
    clcnn_tensor_free(opt->arena2);
    free(opt->slot1);
    free(opt->slot2);
    free(opt->pidx);
    free(opt);
}

const char *cc_optim_param_name(const clcnn_optimizer *opt, int i) {
    const cc_param *p = cc_net_param(opt->net, opt->pidx[i]);
    return p ? p->name : "?";
}

static clcnn_status check_config(const clcnn_optim_config *c) {
    CC_RETURN_IF(c->kind != CLCNN_OPTIM_SGD && c->kind != CLCNN_OPTIM_ADAM, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_create: unknown optimizer kind %d", (int)c->kind);
    CC_RETURN_IF(!(c->lr >= 0.0f) || !isfinite(c->lr), CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_create: learning rate %g must be finite and >= 0", (double)c->lr);
    CC_RETURN_IF(!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay), CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_create: weight decay %g must be finite and >= 0",
                 (double)c->weight_decay);
    if (c->kind == CLCNN_OPTIM_SGD) {
        CC_RETURN_IF(!(c->momentum >= 0.0f && c->momentum < 1.0f), CLCNN_ERR_INVALID_ARG,
                     "clcnn_optimizer_create: SGD momentum %g must be in [0, 1)",
                     (double)c->momentum);
    } else {
        CC_RETURN_IF(!(c->beta1 >= 0.0f && c->beta1 < 1.0f) ||
                         !(c->beta2 >= 0.0f && c->beta2 < 1.0f) || !(c->eps > 0.0f),
                     CLCNN_ERR_INVALID_ARG,
                     "clcnn_optimizer_create: Adam betas %g, %g must be in [0, 1) and eps %g > 0",
                     (double)c->beta1, (double)c->beta2, (double)c->eps);
    }
    return CLCNN_OK;
}

/* A zero tensor like the net's trained arena, and a view of it per trainable parameter. */
static clcnn_status make_slot(clcnn_optimizer *opt, clcnn_tensor **arena, clcnn_tensor **views) {
    const clcnn_net *net = opt->net;
    CC_TRY(clcnn_tensor_create(net->dev, CLCNN_F32, 1, &opt->numel, arena));
    CC_TRY(clcnn_tensor_fill(*arena, 0.0f));
    for (int i = 0; i < opt->n; i++) {
        const cc_param *p = &net->params[opt->pidx[i]];
        size_t off = p->value->offset - net->trained->offset;
        views[i] =
            cc_tensor_view_at(*arena, p->value->ndim, p->value->shape, (*arena)->offset + off);
        CC_RETURN_IF(!views[i], CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    return CLCNN_OK;
}

clcnn_status clcnn_optimizer_create(clcnn_net *net, const clcnn_optim_config *cfg,
                                    clcnn_optimizer **out) {
    CC_RETURN_IF(!net || !cfg || !out, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_create: NULL argument");
    *out = NULL;
    CC_TRY(check_config(cfg));
    CC_TRY(cc_net_bind(net));
    clcnn_optimizer *opt = calloc(1, sizeof *opt);
    CC_RETURN_IF(!opt, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    opt->net = net;
    opt->cfg = *cfg;
    opt->numel = net->trained->numel;
    size_t cnt = net->ntrain ? (size_t)net->ntrain : 1;
    opt->pidx = calloc(cnt, sizeof *opt->pidx);
    opt->slot1 = calloc(cnt, sizeof *opt->slot1);
    opt->slot2 = calloc(cnt, sizeof *opt->slot2);
    if (!opt->pidx || !opt->slot1 || !opt->slot2) {
        clcnn_optimizer_free(opt);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i].grad) opt->pidx[opt->n++] = i;
    int adam = cfg->kind == CLCNN_OPTIM_ADAM;
    clcnn_status s = CLCNN_OK;
    if (adam || cfg->momentum != 0.0f) s = make_slot(opt, &opt->arena1, opt->slot1);
    if (s == CLCNN_OK && adam) s = make_slot(opt, &opt->arena2, opt->slot2);
    if (s != CLCNN_OK) {
        clcnn_optimizer_free(opt);
        return s;
    }
    *out = opt;
    return CLCNN_OK;
}

/* One update over the whole trained arena: the gaps between parameters hold zeros in the
 * values, gradients and slots, and stay zero. */
clcnn_status clcnn_optimizer_step(clcnn_optimizer *opt, float lr) {
    CC_RETURN_IF(!opt, CLCNN_ERR_INVALID_ARG, "clcnn_optimizer_step: optimizer is NULL");
    CC_RETURN_IF(!(lr >= 0.0f) || !isfinite(lr), CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: learning rate %g must be finite and >= 0", (double)lr);
    clcnn_net *net = opt->net;
    CC_TRY(cc_net_bind(net));
    CC_RETURN_IF(net->ntrain != opt->n || net->trained->numel != opt->numel, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: the net has %d trainable parameters but the optimizer "
                 "was made for %d (layers added after clcnn_optimizer_create?)",
                 net->ntrain, opt->n);
    CC_RETURN_IF(opt->t >= INT32_MAX, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: step count %lld overflows", (long long)opt->t);
    int64_t t = opt->t + 1;
    const clcnn_optim_config *c = &opt->cfg;
    clcnn_status s = CLCNN_OK;
    if (opt->n == 0) /* nothing to train (the one-element arena is state) */
        ;
    else if (c->kind == CLCNN_OPTIM_ADAM)
        s = clcnn_adam_update(net->dev, net->trained, net->grad_arena, opt->arena1, opt->arena2, lr,
                              c->beta1, c->beta2, c->eps, c->weight_decay, (int)t);
    else
        s = clcnn_sgd_update(net->dev, net->trained, net->grad_arena, opt->arena1, lr, c->momentum,
                             c->weight_decay);
    if (s != CLCNN_OK) return cc_fail_append(s, " (updating the parameter arena)");
    net->version++;
    opt->t = t;
    return CLCNN_OK;
}

int64_t clcnn_optimizer_steps(const clcnn_optimizer *opt) {
    return opt ? opt->t : 0;
}
