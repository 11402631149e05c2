/* Batch normalisation per channel of NCHW (or per feature of (n, c)), as
 * torch.nn.BatchNorm2d/1d. Kernels: cl/batchnorm.cl.
 *
 * Shapes: x, y, dy, dx are (n, c) or (n, c, h, w) (a 3-D (n, c, l) works too: every dim
 * after c is a position); gamma, beta, running_mean, running_var, save_mean, save_invstd,
 * dgamma, dbeta hold c elements each. m = n * h * w values per channel.
 *
 * Optional arguments (NULL), beyond what ops.h promises: gamma and beta (then 1 and 0, an
 * affine=False layer; dgamma/dbeta may then be NULL too), running_mean + running_var
 * together (no running statistics kept), save_mean + save_invstd (when no backward
 * follows), dx / dgamma / dbeta in backward (what is not wanted is not written).
 *
 * Per-channel sums are deterministic. GPUs: one work-group of WG work-items per channel, a
 * fixed visiting order and a fixed tree. Other devices (POCL on CPUs): per-chunk partial
 * sums, one work-item walking each chunk of a plane with float16 vectors, then a fixed-order
 * sum of each channel's partials (see cl/batchnorm.cl); for training passes over tensors
 * whose channels fit a core's cache, one work-item per channel makes all of a pass's sweeps
 * over it (cl/batchnorm_channel.h, the chunk kernels' bits). family() chooses;
 * $CLCNN_BN_KERNELS=group|chunk|channel overrides the choice (tests run all three). */
#include "internal.h"

#include "clcnn_ids.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int fits_int(const clcnn_tensor *t) {
    return t->offset <= (size_t)INT_MAX && t->numel <= (size_t)INT_MAX - t->offset;
}

/* A fixed work-group size for the element-wise kernels: POCL compiles a kernel once per
 * local size, so leaving the choice to the driver (which derives it from the global size)
 * means a fresh compile for many new shapes. 64 suits GPUs and CPUs alike. */
static const size_t *lws_1d(const clcnn_device *dev, size_t *buf) {
    size_t max = dev->info.max_work_group_size;
    *buf = max && max < 64 ? max : 64;
    return buf;
}

static int same_shape(const clcnn_tensor *a, const clcnn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static size_t reduce_wg(const clcnn_device *dev, char defines[32]) {
    size_t wg = 256;
    while (wg > 1 && dev->info.max_work_group_size && wg > dev->info.max_work_group_size)
        wg /= 2;
    /* 256 is the kernel's default: no define, so clcnn_device_warm's build is the one used */
    if (wg == 256)
        defines[0] = '\0';
    else
        snprintf(defines, 32, "WG=%zu", wg);
    return wg;
}

typedef struct bn_dims {
    size_t n, c, hw;
} bn_dims;

/* The kernel family of a pass: the per-channel group kernels (GPU-shaped), the chunk
 * kernels (CPU-shaped), or, for a training pass where the chunk kernels run, the
 * whole-channel kernels (cl/batchnorm_channel.h: the same bits, one work-item per channel)
 * where a channel's values of one tensor fit channel_limit bytes (training forward 128 KB,
 * backward 256 KB; 0 for the other passes), so that a pass's later sweeps find x (and dy)
 * in a core's cache, and there are at least 4 channels per compute unit to share out. Past
 * these sizes they were no faster than the chunk kernels, and the forward slower (the
 * commit that set them has the numbers). $CLCNN_BN_KERNELS=group|chunk|channel overrides
 * the choice (channel: wherever the chunk kernels would run, also for the other passes'
 * chunk kernels). */
enum { BN_GROUP, BN_CHUNK, BN_CHANNEL };

static int family(const clcnn_device *dev, bn_dims d, size_t channel_limit) {
    const char *e = getenv("CLCNN_BN_KERNELS");
    if (e && strcmp(e, "group") == 0) return BN_GROUP;
    if (e && strcmp(e, "chunk") == 0) return BN_CHUNK;
    if (e && strcmp(e, "channel") == 0) return channel_limit ? BN_CHANNEL : BN_CHUNK;
    if (dev->info.type == CLCNN_DEVICE_GPU) return BN_GROUP;
    size_t cu = dev->info.compute_units ? dev->info.compute_units : 1;
    int fits = d.n * d.hw * sizeof(float) <= channel_limit && d.c >= 4 * cu;
    return fits ? BN_CHANNEL : BN_CHUNK;
}

/* Values per chunk kernel work-item: whole planes up to 4096 values, so the partial sums
 * stay few (n per channel for the usual planes); 1024 when that leaves fewer than 64
 * work-items to share out (a few large planes). Depends on the shape only: the summation
 * order, and so every bit of the result, is the same on every run. */
typedef struct bn_chunking {
    int chunk, chunks;
    size_t items;  /* n * c * chunks */
    size_t groups; /* the reduction kernels' work-items: items / CC_BN_CHUNKS_PER_ITEM, up */
} bn_chunking;

static bn_chunking chunking(bn_dims d) {
    size_t chunk = 4096;
    if (d.n * d.c * ((d.hw + chunk - 1) / chunk) < 64 && d.hw > 1024) chunk = 1024;
    bn_chunking k;
    k.chunks = (int)((d.hw + chunk - 1) / chunk);
    k.chunk = (int)chunk;
    k.items = d.n * d.c * (size_t)k.chunks;
    k.groups = (k.items + CC_BN_CHUNKS_PER_ITEM - 1) / CC_BN_CHUNKS_PER_ITEM;
    return k;
}

/* x must be (n, c, ...) float; fills n, c, hw. */
static clcnn_status check_x(clcnn_device *dev, const char *op, const clcnn_tensor *x,
                            const char *name, bn_dims *d) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, op, name));
    char a[64];
    CC_RETURN_IF(x->ndim < 2, CLCNN_ERR_SHAPE, "%s: %s must be (n, c) or (n, c, h, w), got %s", op,
                 name, clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(!fits_int(x), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (%s %s)", op, name,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    d->n = x->shape[0];
    d->c = x->shape[1];
    d->hw = x->numel / (d->n * d->c);
    return CLCNN_OK;
}

/* t (may be NULL when optional) must be float with c elements. */
static clcnn_status check_chan(clcnn_device *dev, const char *op, const clcnn_tensor *t,
                               const char *name, int optional, const clcnn_tensor *x) {
    if (!t && optional) return CLCNN_OK;
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, name));
    char a[64], b[64];
    CC_RETURN_IF(t->numel != cc_dim(x, 1), CLCNN_ERR_SHAPE,
                 "%s: %s is %s but x %s has %zu channels", op, name,
                 clcnn_tensor_shape_str(t, a, sizeof a), clcnn_tensor_shape_str(x, b, sizeof b),
                 cc_dim(x, 1));
    CC_RETURN_IF(!fits_int(t), CLCNN_ERR_UNSUPPORTED, "%s: %s is too large", op, name);
    return CLCNN_OK;
}

static clcnn_status check_like(clcnn_device *dev, const char *op, const clcnn_tensor *t,
                               const char *name, const clcnn_tensor *x, const char *xname) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, name));
    char a[64], b[64];
    CC_RETURN_IF(!same_shape(t, x), CLCNN_ERR_SHAPE, "%s: %s is %s but %s is %s", op, name,
                 clcnn_tensor_shape_str(t, a, sizeof a), xname,
                 clcnn_tensor_shape_str(x, b, sizeof b));
    return CLCNN_OK;
}

/* A (mem, offset) pair for a kernel argument: the tensor's, or NULL. */
#define MEM_OR_NULL(t) CC_ARG_MEM((t) ? (t)->storage->mem : NULL)
#define OFF_OR_0(t) CC_ARG_INT((t) ? (t)->offset : 0)

static clcnn_status apply(clcnn_device *dev, const char *defines, const clcnn_tensor *x,
                          clcnn_tensor *y, bn_dims d, cl_mem mean, size_t mean_off, cl_mem sd,
                          size_t sd_off, int from_var, float eps, const clcnn_tensor *gamma,
                          const clcnn_tensor *beta, int act, const clcnn_tensor *res) {
    size_t lws;
    if (family(dev, d, 0) != BN_GROUP) {
        bn_chunking k = chunking(d);
        return cc_launch(
            dev, "batchnorm", defines, "bn_apply_chunk", 1, &k.items, lws_1d(dev, &lws),
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                    CC_ARG_INT(y->offset), CC_ARG_INT(d.n), CC_ARG_INT(d.c), CC_ARG_INT(d.hw),
                    CC_ARG_INT(k.chunk), CC_ARG_INT(k.chunks), CC_ARG_MEM(mean),
                    CC_ARG_INT(mean_off), CC_ARG_MEM(sd), CC_ARG_INT(sd_off), CC_ARG_INT(from_var),
                    CC_ARG_FLOAT(eps), MEM_OR_NULL(gamma), OFF_OR_0(gamma), MEM_OR_NULL(beta),
                    OFF_OR_0(beta), CC_ARG_INT(act), MEM_OR_NULL(res), OFF_OR_0(res)));
    }
    size_t gws = d.n * d.c * d.hw;
    return cc_launch(dev, "batchnorm", defines, "bn_apply", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(d.n),
                             CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_MEM(mean),
                             CC_ARG_INT(mean_off), CC_ARG_MEM(sd), CC_ARG_INT(sd_off),
                             CC_ARG_INT(from_var), CC_ARG_FLOAT(eps), MEM_OR_NULL(gamma),
                             OFF_OR_0(gamma), MEM_OR_NULL(beta), OFF_OR_0(beta), CC_ARG_INT(act),
                             MEM_OR_NULL(res), OFF_OR_0(res)));
}

/* Batch mean and invstd (and the running statistics) with one group per channel. */
static clcnn_status stats_group(clcnn_device *dev, const char *defines, size_t wg,
                                const clcnn_tensor *x, bn_dims d, float eps, cl_mem mean_mem,
                                size_t mean_off, cl_mem inv_mem, size_t inv_off, int upd,
                                const clcnn_tensor *running_mean, const clcnn_tensor *running_var,
                                float momentum) {
    size_t gws = d.c * wg;
    return cc_launch(dev, "batchnorm", defines, "bn_stats", 1, &gws, &wg,
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_INT(d.n),
                             CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_FLOAT(eps),
                             CC_ARG_MEM(mean_mem), CC_ARG_INT(mean_off), CC_ARG_MEM(inv_mem),
                             CC_ARG_INT(inv_off), CC_ARG_INT(upd), MEM_OR_NULL(running_mean),
                             OFF_OR_0(running_mean), MEM_OR_NULL(running_var),
                             OFF_OR_0(running_var), CC_ARG_FLOAT(momentum)));
}

/* The same with per-chunk partial sums: sums, the mean (one work-item per channel), the
 * squared deviations from it, invstd and the running statistics. */
static clcnn_status stats_chunks(clcnn_device *dev, const char *defines, const clcnn_tensor *x,
                                 bn_dims d, float eps, cl_mem mean_mem, size_t mean_off,
                                 cl_mem inv_mem, size_t inv_off, int upd,
                                 const clcnn_tensor *running_mean, const clcnn_tensor *running_var,
                                 float momentum) {
    size_t lws;
    bn_chunking k = chunking(d);
    cc_storage *part = NULL;
    CC_TRY(cc_pool_acquire(dev, 2 * k.items * sizeof(float), &part));
    clcnn_status s =
        cc_launch(dev, "batchnorm", defines, "bn_part_sum", 1, &k.groups, lws_1d(dev, &lws),
                  CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_INT(d.n),
                          CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_INT(k.chunk),
                          CC_ARG_INT(k.chunks), CC_ARG_MEM(part->mem)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "batchnorm", defines, "bn_mean_final", 1, &d.c, lws_1d(dev, &lws),
                      CC_ARGS(CC_ARG_MEM(part->mem), CC_ARG_INT(d.n), CC_ARG_INT(d.c),
                              CC_ARG_INT(d.hw), CC_ARG_INT(k.chunks), CC_ARG_MEM(mean_mem),
                              CC_ARG_INT(mean_off)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "batchnorm", defines, "bn_part_sqdev", 1, &k.groups, lws_1d(dev, &lws),
                      CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_INT(d.n),
                              CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_INT(k.chunk),
                              CC_ARG_INT(k.chunks), CC_ARG_MEM(mean_mem), CC_ARG_INT(mean_off),
                              CC_ARG_MEM(part->mem)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "batchnorm", defines, "bn_var_final", 1, &d.c, lws_1d(dev, &lws),
                      CC_ARGS(CC_ARG_MEM(part->mem), CC_ARG_INT(d.n), CC_ARG_INT(d.c),
                              CC_ARG_INT(d.hw), CC_ARG_INT(k.chunks), CC_ARG_FLOAT(eps),
                              CC_ARG_MEM(mean_mem), CC_ARG_INT(mean_off), CC_ARG_MEM(inv_mem),
                              CC_ARG_INT(inv_off), CC_ARG_INT(upd), MEM_OR_NULL(running_mean),
                              OFF_OR_0(running_mean), MEM_OR_NULL(running_var),
                              OFF_OR_0(running_var), CC_ARG_FLOAT(momentum)));
    cc_pool_release(dev, part); /* in-order queue: later users run after us */
    return s;
}

clcnn_status clcnn_batchnorm_forward_train(clcnn_device *dev, const clcnn_tensor *x,
                                           const clcnn_tensor *gamma, const clcnn_tensor *beta,
                                           clcnn_tensor *running_mean, clcnn_tensor *running_var,
                                           float momentum, float eps, clcnn_tensor *y,
                                           clcnn_tensor *save_mean, clcnn_tensor *save_invstd) {
    return cc_batchnorm_forward_train_act(dev, x, gamma, beta, running_mean, running_var, momentum,
                                          eps, CLCNN_ACT_ID_NONE, NULL, y, save_mean, save_invstd);
}

static clcnn_status check_act(const char *op, int act) {
    CC_RETURN_IF(act != CLCNN_ACT_ID_NONE && act != CLCNN_ACT_ID_RELU && act != CLCNN_ACT_ID_RELU6,
                 CLCNN_ERR_INVALID_ARG,
                 "%s: activation %d is not one batch norm fuses (none, ReLU or ReLU6)", op, act);
    return CLCNN_OK;
}

clcnn_status cc_batchnorm_forward_train_act(clcnn_device *dev, const clcnn_tensor *x,
                                            const clcnn_tensor *gamma, const clcnn_tensor *beta,
                                            clcnn_tensor *running_mean, clcnn_tensor *running_var,
                                            float momentum, float eps, int act,
                                            const clcnn_tensor *res, clcnn_tensor *y,
                                            clcnn_tensor *save_mean, clcnn_tensor *save_invstd) {
    static const char op[] = "clcnn_batchnorm_forward_train";
    CC_TRY(check_act(op, act));
    bn_dims d = {0, 0, 0};
    CC_TRY(check_x(dev, op, x, "x", &d));
    CC_TRY(check_like(dev, op, y, "y", x, "x"));
    if (res) {
        CC_TRY(check_like(dev, op, res, "res", x, "x"));
        CC_RETURN_IF(cc_tensors_bad_alias(y, res), CLCNN_ERR_INVALID_ARG,
                     "%s: y must be res itself or not overlap it", op);
    }
    CC_TRY(check_chan(dev, op, gamma, "gamma", 1, x));
    CC_TRY(check_chan(dev, op, beta, "beta", 1, x));
    CC_RETURN_IF(!running_mean != !running_var, CLCNN_ERR_INVALID_ARG,
                 "%s: running_mean and running_var must both be given or both be NULL", op);
    CC_TRY(check_chan(dev, op, running_mean, "running_mean", 1, x));
    CC_TRY(check_chan(dev, op, running_var, "running_var", 1, x));
    CC_RETURN_IF(!save_mean != !save_invstd, CLCNN_ERR_INVALID_ARG,
                 "%s: save_mean and save_invstd must both be given or both be NULL", op);
    CC_TRY(check_chan(dev, op, save_mean, "save_mean", 1, x));
    CC_TRY(check_chan(dev, op, save_invstd, "save_invstd", 1, x));
    CC_RETURN_IF(!(momentum >= 0.0f && momentum <= 1.0f), CLCNN_ERR_INVALID_ARG,
                 "%s: momentum %g is outside [0, 1]", op, (double)momentum);
    CC_RETURN_IF(!(eps >= 0.0f) || isinf(eps), CLCNN_ERR_INVALID_ARG,
                 "%s: eps %g must be finite and not negative", op, (double)eps);
    char a[64];
    CC_RETURN_IF(d.n * d.hw < 2, CLCNN_ERR_SHAPE,
                 "%s: training needs more than one value per channel, x is %s", op,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(cc_tensors_bad_alias(y, x), CLCNN_ERR_INVALID_ARG,
                 "%s: y must be x itself or not overlap it", op);
    enum { NOUT = 4, NIN = 5 };
    const clcnn_tensor *outs[NOUT] = {running_mean, running_var, save_mean, save_invstd};
    const clcnn_tensor *ins[NIN] = {x, y, gamma, beta, res};
    for (int i = 0; i < NOUT; i++) {
        int bad = 0;
        for (int j = 0; j < NIN; j++)
            bad |= cc_tensors_overlap(outs[i], ins[j]);
        for (int j = 0; j < NOUT; j++)
            bad |= i != j && cc_tensors_overlap(outs[i], outs[j]);
        CC_RETURN_IF(bad, CLCNN_ERR_INVALID_ARG,
                     "%s: the running and saved statistics must not overlap each other, x, y, "
                     "gamma, beta or res",
                     op);
    }

    char defines[32];
    size_t wg = reduce_wg(dev, defines);
    /* Without save_* tensors the statistics live in a scratch buffer (2c floats). */
    cc_storage *tmp = NULL;
    cl_mem mean_mem, inv_mem;
    size_t mean_off, inv_off;
    if (save_mean) {
        mean_mem = save_mean->storage->mem;
        mean_off = save_mean->offset;
        inv_mem = save_invstd->storage->mem;
        inv_off = save_invstd->offset;
    } else {
        CC_TRY(cc_pool_acquire(dev, 2 * d.c * sizeof(float), &tmp));
        mean_mem = inv_mem = tmp->mem;
        mean_off = 0;
        inv_off = d.c;
    }
    int upd = running_mean != NULL;
    clcnn_status s;
    int fam = family(dev, d, (size_t)128 << 10);
    if (fam == BN_CHANNEL) {
        bn_chunking k = chunking(d);
        size_t one = 1;
        s = cc_launch(
            dev, "batchnorm", defines, "bn_fwd_channel", 1, &d.c, &one,
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                    CC_ARG_INT(y->offset), CC_ARG_INT(d.n), CC_ARG_INT(d.c), CC_ARG_INT(d.hw),
                    CC_ARG_INT(k.chunk), CC_ARG_INT(k.chunks), CC_ARG_FLOAT(eps),
                    CC_ARG_MEM(mean_mem), CC_ARG_INT(mean_off), CC_ARG_MEM(inv_mem),
                    CC_ARG_INT(inv_off), CC_ARG_INT(upd), MEM_OR_NULL(running_mean),
                    OFF_OR_0(running_mean), MEM_OR_NULL(running_var), OFF_OR_0(running_var),
                    CC_ARG_FLOAT(momentum), MEM_OR_NULL(gamma), OFF_OR_0(gamma), MEM_OR_NULL(beta),
                    OFF_OR_0(beta), CC_ARG_INT(act), MEM_OR_NULL(res), OFF_OR_0(res)));
    } else {
        s = fam == BN_CHUNK ? stats_chunks(dev, defines, x, d, eps, mean_mem, mean_off, inv_mem,
                                           inv_off, upd, running_mean, running_var, momentum)
                            : stats_group(dev, defines, wg, x, d, eps, mean_mem, mean_off, inv_mem,
                                          inv_off, upd, running_mean, running_var, momentum);
        if (s == CLCNN_OK)
            s = apply(dev, defines, x, y, d, mean_mem, mean_off, inv_mem, inv_off, 0, 0.0f, gamma,
                      beta, act, res);
    }
    if (tmp) cc_pool_release(dev, tmp); /* in-order queue: later users run after us */
    return s;
}

clcnn_status clcnn_batchnorm_forward_infer(clcnn_device *dev, const clcnn_tensor *x,
                                           const clcnn_tensor *gamma, const clcnn_tensor *beta,
                                           const clcnn_tensor *running_mean,
                                           const clcnn_tensor *running_var, float eps,
                                           clcnn_tensor *y) {
    static const char op[] = "clcnn_batchnorm_forward_infer";
    bn_dims d = {0, 0, 0};
    CC_TRY(check_x(dev, op, x, "x", &d));
    CC_TRY(check_like(dev, op, y, "y", x, "x"));
    CC_TRY(check_chan(dev, op, gamma, "gamma", 1, x));
    CC_TRY(check_chan(dev, op, beta, "beta", 1, x));
    CC_TRY(check_chan(dev, op, running_mean, "running_mean", 0, x));
    CC_TRY(check_chan(dev, op, running_var, "running_var", 0, x));
    CC_RETURN_IF(!(eps >= 0.0f) || isinf(eps), CLCNN_ERR_INVALID_ARG,
                 "%s: eps %g must be finite and not negative", op, (double)eps);
    CC_RETURN_IF(
        cc_tensors_bad_alias(y, x) || cc_tensors_overlap(y, gamma) || cc_tensors_overlap(y, beta) ||
            cc_tensors_overlap(y, running_mean) || cc_tensors_overlap(y, running_var),
        CLCNN_ERR_INVALID_ARG,
        "%s: y must be x itself or not overlap x, and must not overlap the statistics", op);
    char defines[32];
    reduce_wg(dev, defines);
    return apply(dev, defines, x, y, d, running_mean->storage->mem, running_mean->offset,
                 running_var->storage->mem, running_var->offset, 1, eps, gamma, beta,
                 CLCNN_ACT_ID_NONE, NULL);
}

/* Backward with per-chunk partial sums: partials of sum dy and sum dy (x - mean), the
 * channel sums (into sdy / sdx), then dx when wanted. */
static clcnn_status backward_chunks(clcnn_device *dev, const char *defines, const clcnn_tensor *x,
                                    const clcnn_tensor *dy, const clcnn_tensor *beta, int act,
                                    const clcnn_tensor *gamma, const clcnn_tensor *save_mean,
                                    const clcnn_tensor *save_invstd, clcnn_tensor *dx, bn_dims d,
                                    cl_mem sdy, size_t sdy_off, cl_mem sdx, size_t sdx_off) {
    size_t lws;
    bn_chunking k = chunking(d);
    cc_storage *part = NULL;
    CC_TRY(cc_pool_acquire(dev, 2 * k.items * sizeof(float), &part));
    clcnn_status s = cc_launch(
        dev, "batchnorm", defines, "bn_bwd_part", 1, &k.groups, lws_1d(dev, &lws),
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(dy->storage->mem),
                CC_ARG_INT(dy->offset), CC_ARG_INT(d.n), CC_ARG_INT(d.c), CC_ARG_INT(d.hw),
                CC_ARG_INT(k.chunk), CC_ARG_INT(k.chunks), CC_ARG_MEM(save_mean->storage->mem),
                CC_ARG_INT(save_mean->offset), CC_ARG_MEM(save_invstd->storage->mem),
                CC_ARG_INT(save_invstd->offset), MEM_OR_NULL(gamma), OFF_OR_0(gamma),
                MEM_OR_NULL(beta), OFF_OR_0(beta), CC_ARG_MEM(part->mem), CC_ARG_INT(act)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "batchnorm", defines, "bn_bwd_final", 1, &d.c, lws_1d(dev, &lws),
                      CC_ARGS(CC_ARG_MEM(part->mem), CC_ARG_INT(d.n), CC_ARG_INT(d.c),
                              CC_ARG_INT(k.chunks), CC_ARG_MEM(save_invstd->storage->mem),
                              CC_ARG_INT(save_invstd->offset), CC_ARG_MEM(sdy), CC_ARG_INT(sdy_off),
                              CC_ARG_MEM(sdx), CC_ARG_INT(sdx_off)));
    if (s == CLCNN_OK && dx)
        s = cc_launch(dev, "batchnorm", defines, "bn_bwd_dx_chunk", 1, &k.items, lws_1d(dev, &lws),
                      CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                              CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                              CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset), CC_ARG_INT(d.n),
                              CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_INT(k.chunk),
                              CC_ARG_INT(k.chunks), CC_ARG_MEM(save_mean->storage->mem),
                              CC_ARG_INT(save_mean->offset), CC_ARG_MEM(save_invstd->storage->mem),
                              CC_ARG_INT(save_invstd->offset), MEM_OR_NULL(gamma), OFF_OR_0(gamma),
                              CC_ARG_MEM(sdy), CC_ARG_INT(sdy_off), CC_ARG_MEM(sdx),
                              CC_ARG_INT(sdx_off), MEM_OR_NULL(beta), OFF_OR_0(beta),
                              CC_ARG_INT(act)));
    cc_pool_release(dev, part);
    return s;
}

/* The same with the whole-channel kernel: both sums and dx in one launch, one work-item per
 * channel. */
static clcnn_status backward_channel(clcnn_device *dev, const char *defines, const clcnn_tensor *x,
                                     const clcnn_tensor *dy, const clcnn_tensor *beta, int act,
                                     const clcnn_tensor *gamma, const clcnn_tensor *save_mean,
                                     const clcnn_tensor *save_invstd, clcnn_tensor *dx, bn_dims d,
                                     cl_mem sdy, size_t sdy_off, cl_mem sdx, size_t sdx_off) {
    bn_chunking k = chunking(d);
    size_t one = 1;
    return cc_launch(dev, "batchnorm", defines, "bn_bwd_channel", 1, &d.c, &one,
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset), MEM_OR_NULL(dx),
                             OFF_OR_0(dx), CC_ARG_INT(d.n), CC_ARG_INT(d.c), CC_ARG_INT(d.hw),
                             CC_ARG_INT(k.chunk), CC_ARG_INT(k.chunks),
                             CC_ARG_MEM(save_mean->storage->mem), CC_ARG_INT(save_mean->offset),
                             CC_ARG_MEM(save_invstd->storage->mem), CC_ARG_INT(save_invstd->offset),
                             MEM_OR_NULL(gamma), OFF_OR_0(gamma), MEM_OR_NULL(beta), OFF_OR_0(beta),
                             CC_ARG_INT(act), CC_ARG_MEM(sdy), CC_ARG_INT(sdy_off), CC_ARG_MEM(sdx),
                             CC_ARG_INT(sdx_off)));
}

clcnn_status clcnn_batchnorm_backward(clcnn_device *dev, const clcnn_tensor *x,
                                      const clcnn_tensor *dy, const clcnn_tensor *gamma,
                                      const clcnn_tensor *save_mean,
                                      const clcnn_tensor *save_invstd, clcnn_tensor *dx,
                                      clcnn_tensor *dgamma, clcnn_tensor *dbeta) {
    return cc_batchnorm_backward_act(dev, x, NULL, dy, CLCNN_ACT_ID_NONE, gamma, save_mean,
                                     save_invstd, dx, dgamma, dbeta);
}

clcnn_status cc_batchnorm_backward_act(clcnn_device *dev, const clcnn_tensor *x,
                                       const clcnn_tensor *beta, const clcnn_tensor *dy, int act,
                                       const clcnn_tensor *gamma, const clcnn_tensor *save_mean,
                                       const clcnn_tensor *save_invstd, clcnn_tensor *dx,
                                       clcnn_tensor *dgamma, clcnn_tensor *dbeta) {
    size_t lws;
    static const char op[] = "clcnn_batchnorm_backward";
    CC_TRY(check_act(op, act));
    bn_dims d = {0, 0, 0};
    CC_TRY(check_x(dev, op, x, "x", &d));
    CC_TRY(check_like(dev, op, dy, "dy", x, "x"));
    if (dx) CC_TRY(check_like(dev, op, dx, "dx", x, "x"));
    if (act == CLCNN_ACT_ID_NONE) beta = NULL; /* read only for the activation's mask */
    CC_TRY(check_chan(dev, op, gamma, "gamma", 1, x));
    CC_TRY(check_chan(dev, op, beta, "beta", 1, x));
    CC_TRY(check_chan(dev, op, save_mean, "save_mean", 0, x));
    CC_TRY(check_chan(dev, op, save_invstd, "save_invstd", 0, x));
    CC_TRY(check_chan(dev, op, dgamma, "dgamma", 1, x));
    CC_TRY(check_chan(dev, op, dbeta, "dbeta", 1, x));
    const clcnn_tensor *ins[] = {x, dy, gamma, save_mean, save_invstd, beta};
    clcnn_tensor *outs[] = {dx, dgamma, dbeta};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 6; j++) {
            /* dx may be x or dy itself (element-wise, after the reductions) */
            int bad = (i == 0 && j < 2) ? cc_tensors_bad_alias(outs[i], ins[j])
                                        : cc_tensors_overlap(outs[i], ins[j]);
            CC_RETURN_IF(bad, CLCNN_ERR_INVALID_ARG,
                         "%s: dx, dgamma and dbeta must not overlap the inputs (dx may be x or "
                         "dy itself)",
                         op);
        }
        for (int j = i + 1; j < 3; j++)
            CC_RETURN_IF(cc_tensors_overlap(outs[i], outs[j]), CLCNN_ERR_INVALID_ARG,
                         "%s: dx, dgamma and dbeta must not overlap each other", op);
    }
    if (!dx && !dgamma && !dbeta) return CLCNN_OK;

    char defines[32];
    size_t wg = reduce_wg(dev, defines);
    /* The two per-channel sums land in dbeta and dgamma when given, else in scratch. */
    cc_storage *tmp = NULL;
    if (!dgamma || !dbeta) CC_TRY(cc_pool_acquire(dev, 2 * d.c * sizeof(float), &tmp));
    cl_mem sdy = dbeta ? dbeta->storage->mem : tmp->mem;
    size_t sdy_off = dbeta ? dbeta->offset : 0;
    cl_mem sdx = dgamma ? dgamma->storage->mem : tmp->mem;
    size_t sdx_off = dgamma ? dgamma->offset : d.c;
    int fam = family(dev, d, (size_t)256 << 10);
    if (fam != BN_GROUP) {
        clcnn_status s = (fam == BN_CHANNEL ? backward_channel : backward_chunks)(
            dev, defines, x, dy, beta, act, gamma, save_mean, save_invstd, dx, d, sdy, sdy_off, sdx,
            sdx_off);
        if (tmp) cc_pool_release(dev, tmp);
        return s;
    }
    size_t gws = d.c * wg;
    clcnn_status s =
        cc_launch(dev, "batchnorm", defines, "bn_bwd_reduce", 1, &gws, &wg,
                  CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                          CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset), CC_ARG_INT(d.n),
                          CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_MEM(save_mean->storage->mem),
                          CC_ARG_INT(save_mean->offset), CC_ARG_MEM(save_invstd->storage->mem),
                          CC_ARG_INT(save_invstd->offset), CC_ARG_MEM(sdy), CC_ARG_INT(sdy_off),
                          CC_ARG_MEM(sdx), CC_ARG_INT(sdx_off), MEM_OR_NULL(gamma), OFF_OR_0(gamma),
                          MEM_OR_NULL(beta), OFF_OR_0(beta), CC_ARG_INT(act)));
    if (s == CLCNN_OK && dx) {
        size_t n_el = d.n * d.c * d.hw;
        s = cc_launch(
            dev, "batchnorm", defines, "bn_bwd_dx", 1, &n_el, lws_1d(dev, &lws),
            CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                    CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                    CC_ARG_MEM(dx->storage->mem), CC_ARG_INT(dx->offset), CC_ARG_INT(d.n),
                    CC_ARG_INT(d.c), CC_ARG_INT(d.hw), CC_ARG_MEM(save_mean->storage->mem),
                    CC_ARG_INT(save_mean->offset), CC_ARG_MEM(save_invstd->storage->mem),
                    CC_ARG_INT(save_invstd->offset), MEM_OR_NULL(gamma), OFF_OR_0(gamma),
                    CC_ARG_MEM(sdy), CC_ARG_INT(sdy_off), CC_ARG_MEM(sdx), CC_ARG_INT(sdx_off),
                    MEM_OR_NULL(beta), OFF_OR_0(beta), CC_ARG_INT(act)));
    }
    if (tmp) cc_pool_release(dev, tmp);
    return s;
}
