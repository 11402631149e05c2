/* Optimizers: SGD with momentum and Adam, PyTorch semantics, state and updates on the
 * device (clcnn_sgd_update / clcnn_adam_update). One state tensor per trainable
 * parameter and slot, zero at creation:
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
    free(opt->slot1);
    free(opt->slot2);
    free(opt->params);
    free(opt);
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

static clcnn_status zero_like(clcnn_device *dev, const clcnn_tensor *t, clcnn_tensor **out) {
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, t->ndim, t->shape, out));
    clcnn_status s = clcnn_tensor_fill(*out, 0.0f);
    if (s != CLCNN_OK) {
        clcnn_tensor_free(*out);
        *out = NULL;
    }
    return s;
}

clcnn_status clcnn_optimizer_create(clcnn_net *net, const clcnn_optim_config *cfg,
                                    clcnn_optimizer **out) {
    CC_RETURN_IF(!net || !cfg || !out, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_create: NULL argument");
    *out = NULL;
    CC_TRY(check_config(cfg));
    clcnn_optimizer *opt = calloc(1, sizeof *opt);
    CC_RETURN_IF(!opt, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    opt->net = net;
    opt->cfg = *cfg;
    int np = cc_net_num_params(net), n = 0;
    for (int i = 0; i < np; i++)
        n += cc_net_param(net, i)->grad != NULL;
    size_t cnt = n ? (size_t)n : 1;
    opt->params = calloc(cnt, sizeof *opt->params);
    opt->slot1 = calloc(cnt, sizeof *opt->slot1);
    opt->slot2 = calloc(cnt, sizeof *opt->slot2);
    if (!opt->params || !opt->slot1 || !opt->slot2) {
        clcnn_optimizer_free(opt);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    opt->n = n;
    int adam = cfg->kind == CLCNN_OPTIM_ADAM;
    int need1 = adam || cfg->momentum != 0.0f;
    for (int i = 0, j = 0; i < np; i++) {
        cc_param *p = cc_net_param(net, i);
        if (!p->grad) continue;
        opt->params[j] = p;
        clcnn_status s = CLCNN_OK;
        if (need1) s = zero_like(net->dev, p->value, &opt->slot1[j]);
        if (s == CLCNN_OK && adam) s = zero_like(net->dev, p->value, &opt->slot2[j]);
        if (s != CLCNN_OK) {
            clcnn_optimizer_free(opt);
            return s;
        }
        j++;
    }
    *out = opt;
    return CLCNN_OK;
}

clcnn_status clcnn_optimizer_step(clcnn_optimizer *opt, float lr) {
    CC_RETURN_IF(!opt, CLCNN_ERR_INVALID_ARG, "clcnn_optimizer_step: optimizer is NULL");
    CC_RETURN_IF(!(lr >= 0.0f) || !isfinite(lr), CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: learning rate %g must be finite and >= 0", (double)lr);
    const clcnn_net *net = opt->net;
    int np = cc_net_num_params(net), n = 0;
    for (int i = 0; i < np; i++)
        n += cc_net_param(net, i)->grad != NULL;
    CC_RETURN_IF(n != opt->n, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: the net has %d trainable parameters but the optimizer "
                 "was made for %d (layers added after clcnn_optimizer_create?)",
                 n, opt->n);
    CC_RETURN_IF(opt->t >= INT32_MAX, CLCNN_ERR_INVALID_ARG,
                 "clcnn_optimizer_step: step count %lld overflows", (long long)opt->t);
    int64_t t = opt->t + 1;
    const clcnn_optim_config *c = &opt->cfg;
    for (int i = 0; i < opt->n; i++) {
        cc_param *p = opt->params[i];
        clcnn_status s;
        if (c->kind == CLCNN_OPTIM_ADAM)
            s = clcnn_adam_update(net->dev, p->value, p->grad, opt->slot1[i], opt->slot2[i], lr,
                                  c->beta1, c->beta2, c->eps, c->weight_decay, (int)t);
        else
            s = clcnn_sgd_update(net->dev, p->value, p->grad, opt->slot1[i], lr, c->momentum,
                                 c->weight_decay);
        if (s != CLCNN_OK) return cc_fail_append(s, " (updating %s)", p->name);
    }
    opt->t = t;
    return CLCNN_OK;
}

int64_t clcnn_optimizer_steps(const clcnn_optimizer *opt) {
    return opt ? opt->t : 0;
}
