/* Softmax / log-softmax over dim 1, fused softmax cross-entropy and the mean squared error.
 * Kernels: cl/softmax.cl.
 *
 * Shapes: softmax x, y are (n, c) or (n, c, h, w) (any dims after c are positions);
 * cross-entropy logits (n, k) (trailing dims of 1 allowed, as a (n, k, 1, 1) conv output),
 * labels (n) int32, loss (1), dlogits like logits; mse pred, target, dpred of one shape,
 * loss (1).
 *
 * Both losses are means computed deterministically: per-sample (or per-work-item) partial
 * sums, then one work-group of WG work-items adds them in a fixed order (sum_final). */
#include "internal.h"

#include <limits.h>

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

/* The reduction work-group size: 256, or the device's largest power of two below it. */
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

static clcnn_status check_loss(clcnn_device *dev, const char *op, const clcnn_tensor *loss) {
    CC_TRY(cc_check_tensor(dev, loss, CLCNN_F32, op, "loss"));
    char a[64];
    CC_RETURN_IF(loss->numel != 1, CLCNN_ERR_SHAPE, "%s: loss must hold 1 element, got %s", op,
                 clcnn_tensor_shape_str(loss, a, sizeof a));
    return CLCNN_OK;
}

clcnn_status clcnn_softmax_forward(clcnn_device *dev, const clcnn_tensor *x, clcnn_tensor *y,
                                   int log) {
    size_t lws;
    static const char op[] = "clcnn_softmax_forward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, op, "x"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, op, "y"));
    char a[64], b[64];
    CC_RETURN_IF(x->ndim < 2, CLCNN_ERR_SHAPE, "%s: x must be (n, c) or (n, c, h, w), got %s", op,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(!same_shape(x, y), CLCNN_ERR_SHAPE, "%s: y is %s but x is %s", op,
                 clcnn_tensor_shape_str(y, a, sizeof a), clcnn_tensor_shape_str(x, b, sizeof b));
    CC_RETURN_IF(cc_tensors_bad_alias(x, y), CLCNN_ERR_INVALID_ARG,
                 "%s: y must be x itself or not overlap it", op);
    CC_RETURN_IF(!fits_int(x) || !fits_int(y), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (x %s)", op,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    size_t n = x->shape[0], c = x->shape[1], inner = x->numel / (n * c);
    size_t gws = n * inner;
    char defines[32]; /* the losses' program: one build of softmax.cl serves all four */
    reduce_wg(dev, defines);
    return cc_launch(dev, "softmax", defines, "softmax_fwd", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(n),
                             CC_ARG_INT(c), CC_ARG_INT(inner), CC_ARG_INT(log != 0)));
}

clcnn_status clcnn_softmax_cross_entropy(clcnn_device *dev, const clcnn_tensor *logits,
                                         const clcnn_tensor *labels, clcnn_tensor *loss,
                                         clcnn_tensor *dlogits) {
    size_t lws;
    static const char op[] = "clcnn_softmax_cross_entropy";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, logits, CLCNN_F32, op, "logits"));
    CC_TRY(cc_check_tensor(dev, labels, CLCNN_I32, op, "labels"));
    CC_TRY(check_loss(dev, op, loss));
    char a[64], b[64];
    int trailing_ones = 1;
    for (int i = 2; i < logits->ndim; i++)
        trailing_ones &= logits->shape[i] == 1;
    CC_RETURN_IF(logits->ndim < 2 || !trailing_ones, CLCNN_ERR_SHAPE,
                 "%s: logits must be (n, k), got %s", op,
                 clcnn_tensor_shape_str(logits, a, sizeof a));
    size_t n = logits->shape[0], k = logits->shape[1];
    CC_RETURN_IF(labels->numel != n || labels->shape[0] != n, CLCNN_ERR_SHAPE,
                 "%s: labels are %s but logits %s need %zu labels", op,
                 clcnn_tensor_shape_str(labels, a, sizeof a),
                 clcnn_tensor_shape_str(logits, b, sizeof b), n);
    if (dlogits) {
        CC_TRY(cc_check_tensor(dev, dlogits, CLCNN_F32, op, "dlogits"));
        CC_RETURN_IF(!same_shape(dlogits, logits), CLCNN_ERR_SHAPE,
                     "%s: dlogits is %s but logits are %s", op,
                     clcnn_tensor_shape_str(dlogits, a, sizeof a),
                     clcnn_tensor_shape_str(logits, b, sizeof b));
        CC_RETURN_IF(cc_tensors_bad_alias(dlogits, logits) || cc_tensors_overlap(dlogits, labels) ||
                         cc_tensors_overlap(dlogits, loss),
                     CLCNN_ERR_INVALID_ARG,
                     "%s: dlogits must be logits itself or not overlap any other argument", op);
    }
    CC_RETURN_IF(cc_tensors_overlap(loss, logits) || cc_tensors_overlap(loss, labels),
                 CLCNN_ERR_INVALID_ARG, "%s: loss must not overlap logits or labels", op);
    CC_RETURN_IF(!fits_int(logits) || !fits_int(labels) || !fits_int(loss) ||
                     (dlogits && !fits_int(dlogits)),
                 CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (logits %s)", op,
                 clcnn_tensor_shape_str(logits, a, sizeof a));

    char defines[32];
    size_t wg = reduce_wg(dev, defines);
    cc_storage *rows = NULL;
    CC_TRY(cc_pool_acquire(dev, n * sizeof(float), &rows));
    size_t gws = n;
    int grad = dlogits != NULL;
    clcnn_status s = cc_launch(dev, "softmax", defines, "xent_rows", 1, &gws, lws_1d(dev, &lws),
                               CC_ARGS(CC_ARG_MEM(logits->storage->mem), CC_ARG_INT(logits->offset),
                                       CC_ARG_MEM(labels->storage->mem), CC_ARG_INT(labels->offset),
                                       CC_ARG_MEM(grad ? dlogits->storage->mem : NULL),
                                       CC_ARG_INT(grad ? dlogits->offset : 0), CC_ARG_INT(grad),
                                       CC_ARG_MEM(rows->mem), CC_ARG_INT(n), CC_ARG_INT(k)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "softmax", defines, "sum_final", 1, &wg, &wg,
                      CC_ARGS(CC_ARG_MEM(rows->mem), CC_ARG_INT(n), CC_ARG_MEM(loss->storage->mem),
                              CC_ARG_INT(loss->offset), CC_ARG_FLOAT((float)n)));
    /* The queue is in order: a later user of this buffer runs after our kernels. */
    cc_pool_release(dev, rows);
    return s;
}

clcnn_status clcnn_mse_loss(clcnn_device *dev, const clcnn_tensor *pred, const clcnn_tensor *target,
                            clcnn_tensor *loss, clcnn_tensor *dpred) {
    static const char op[] = "clcnn_mse_loss";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_check_tensor(dev, pred, CLCNN_F32, op, "pred"));
    CC_TRY(cc_check_tensor(dev, target, CLCNN_F32, op, "target"));
    CC_TRY(check_loss(dev, op, loss));
    char a[64], b[64];
    CC_RETURN_IF(!same_shape(pred, target), CLCNN_ERR_SHAPE, "%s: pred is %s but target is %s", op,
                 clcnn_tensor_shape_str(pred, a, sizeof a),
                 clcnn_tensor_shape_str(target, b, sizeof b));
    if (dpred) {
        CC_TRY(cc_check_tensor(dev, dpred, CLCNN_F32, op, "dpred"));
        CC_RETURN_IF(!same_shape(dpred, pred), CLCNN_ERR_SHAPE, "%s: dpred is %s but pred is %s",
                     op, clcnn_tensor_shape_str(dpred, a, sizeof a),
                     clcnn_tensor_shape_str(pred, b, sizeof b));
        CC_RETURN_IF(cc_tensors_bad_alias(dpred, pred) || cc_tensors_bad_alias(dpred, target) ||
                         cc_tensors_overlap(dpred, loss),
                     CLCNN_ERR_INVALID_ARG,
                     "%s: dpred must be pred or target itself, or not overlap them", op);
    }
    CC_RETURN_IF(cc_tensors_overlap(loss, pred) || cc_tensors_overlap(loss, target),
                 CLCNN_ERR_INVALID_ARG, "%s: loss must not overlap pred or target", op);
    CC_RETURN_IF(
        !fits_int(pred) || !fits_int(target) || !fits_int(loss) || (dpred && !fits_int(dpred)),
        CLCNN_ERR_UNSUPPORTED, "%s: tensors beyond 2^31-1 elements are not supported (pred %s)", op,
        clcnn_tensor_shape_str(pred, a, sizeof a));

    char defines[32];
    size_t wg = reduce_wg(dev, defines);
    size_t numel = pred->numel;
    /* Enough groups to fill a GPU, at most 256 partials for the final group to add. The
     * count depends only on numel and WG, so the summation order is fixed. */
    size_t groups = (numel + wg - 1) / wg;
    if (groups > 256) groups = 256;
    cc_storage *part = NULL;
    CC_TRY(cc_pool_acquire(dev, groups * sizeof(float), &part));
    size_t gws = groups * wg;
    int grad = dpred != NULL;
    clcnn_status s = cc_launch(dev, "softmax", defines, "mse_partial", 1, &gws, &wg,
                               CC_ARGS(CC_ARG_MEM(pred->storage->mem), CC_ARG_INT(pred->offset),
                                       CC_ARG_MEM(target->storage->mem), CC_ARG_INT(target->offset),
                                       CC_ARG_MEM(grad ? dpred->storage->mem : NULL),
                                       CC_ARG_INT(grad ? dpred->offset : 0), CC_ARG_INT(grad),
                                       CC_ARG_MEM(part->mem), CC_ARG_INT(numel)));
    if (s == CLCNN_OK)
        s = cc_launch(dev, "softmax", defines, "sum_final", 1, &wg, &wg,
                      CC_ARGS(CC_ARG_MEM(part->mem), CC_ARG_INT(groups),
                              CC_ARG_MEM(loss->storage->mem), CC_ARG_INT(loss->offset),
                              CC_ARG_FLOAT((float)numel)));
    cc_pool_release(dev, part);
    return s;
}
