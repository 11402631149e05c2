/* Optimizer update kernels (SGD with momentum, Adam), in place on the device. Host side
 * of cl/optim.cl, whose top comment states the exact update rules (PyTorch's).
 *
 * Shapes: param, grad and the state tensors (velocity; m, v) are float32 tensors with
 * the same element count. State tensors must start at zero before step 1 (as PyTorch's
 * lazily created buffers do). Hyper-parameters are validated as torch.optim does. */
#include "elementwise.h"

#include <math.h>

static int finite_nonneg(float x) {
    return isfinite(x) && x >= 0.0f;
}

clcnn_status clcnn_sgd_update(clcnn_device *dev, clcnn_tensor *param, const clcnn_tensor *grad,
                              clcnn_tensor *velocity, float lr, float momentum,
                              float weight_decay) {
    static const char *op = "clcnn_sgd_update";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_RETURN_IF(!finite_nonneg(lr), CLCNN_ERR_INVALID_ARG,
                 "%s: learning rate %g must be finite and >= 0", op, (double)lr);
    CC_RETURN_IF(!finite_nonneg(momentum), CLCNN_ERR_INVALID_ARG,
                 "%s: momentum %g must be finite and >= 0", op, (double)momentum);
    CC_RETURN_IF(!finite_nonneg(weight_decay), CLCNN_ERR_INVALID_ARG,
                 "%s: weight decay %g must be finite and >= 0", op, (double)weight_decay);
    CC_RETURN_IF(!velocity && momentum != 0.0f, CLCNN_ERR_INVALID_ARG,
                 "%s: momentum is %g but velocity is NULL (NULL is allowed only with momentum 0)",
                 op, (double)momentum);
    CC_TRY(cc_ew_check(dev, op, "param", param, NULL, NULL, 0));
    CC_TRY(cc_ew_check(dev, op, "grad", grad, "param", param, 0));
    if (velocity) CC_TRY(cc_ew_check(dev, op, "velocity", velocity, "param", param, 0));

    size_t n = param->numel;
    if (!velocity)
        return cc_ew_launch(dev, "optim", "sgd_plain", n,
                            CC_ARGS(CC_ARG_MEM(param->storage->mem), CC_ARG_ULONG(param->offset),
                                    CC_ARG_MEM(grad->storage->mem), CC_ARG_ULONG(grad->offset),
                                    CC_ARG_ULONG(n), CC_ARG_FLOAT(lr), CC_ARG_FLOAT(weight_decay)));
    return cc_ew_launch(dev, "optim", "sgd_momentum", n,
                        CC_ARGS(CC_ARG_MEM(param->storage->mem), CC_ARG_ULONG(param->offset),
                                CC_ARG_MEM(grad->storage->mem), CC_ARG_ULONG(grad->offset),
                                CC_ARG_MEM(velocity->storage->mem), CC_ARG_ULONG(velocity->offset),
                                CC_ARG_ULONG(n), CC_ARG_FLOAT(lr), CC_ARG_FLOAT(momentum),
                                CC_ARG_FLOAT(weight_decay)));
}

clcnn_status clcnn_adam_update(clcnn_device *dev, clcnn_tensor *param, const clcnn_tensor *grad,
                               clcnn_tensor *m, clcnn_tensor *v, float lr, float beta1, float beta2,
                               float eps, float weight_decay, int t) {
    static const char *op = "clcnn_adam_update";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_RETURN_IF(t < 1, CLCNN_ERR_INVALID_ARG, "%s: step t = %d must be >= 1", op, t);
    CC_RETURN_IF(!finite_nonneg(lr), CLCNN_ERR_INVALID_ARG,
                 "%s: learning rate %g must be finite and >= 0", op, (double)lr);
    CC_RETURN_IF(!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f),
                 CLCNN_ERR_INVALID_ARG, "%s: betas (%g, %g) must be in [0, 1)", op, (double)beta1,
                 (double)beta2);
    CC_RETURN_IF(!finite_nonneg(eps), CLCNN_ERR_INVALID_ARG, "%s: eps %g must be finite and >= 0",
                 op, (double)eps);
    CC_RETURN_IF(!finite_nonneg(weight_decay), CLCNN_ERR_INVALID_ARG,
                 "%s: weight decay %g must be finite and >= 0", op, (double)weight_decay);
    CC_TRY(cc_ew_check(dev, op, "param", param, NULL, NULL, 0));
    CC_TRY(cc_ew_check(dev, op, "grad", grad, "param", param, 0));
    CC_TRY(cc_ew_check(dev, op, "m", m, "param", param, 0));
    CC_TRY(cc_ew_check(dev, op, "v", v, "param", param, 0));
    CC_RETURN_IF(cc_same_memory(m, v), CLCNN_ERR_INVALID_ARG,
                 "%s: m and v are the same tensor memory; they must be separate", op);

    /* Bias corrections in double: 1 - beta^t loses every digit in float once beta^t is
     * near 1 (beta2 = 0.999, small t). */
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)((double)lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    size_t n = param->numel;
    return cc_ew_launch(dev, "optim", "adam", n,
                        CC_ARGS(CC_ARG_MEM(param->storage->mem), CC_ARG_ULONG(param->offset),
                                CC_ARG_MEM(grad->storage->mem), CC_ARG_ULONG(grad->offset),
                                CC_ARG_MEM(m->storage->mem), CC_ARG_ULONG(m->offset),
                                CC_ARG_MEM(v->storage->mem), CC_ARG_ULONG(v->offset),
                                CC_ARG_ULONG(n), CC_ARG_FLOAT(step_size), CC_ARG_FLOAT(beta1),
                                CC_ARG_FLOAT(beta2), CC_ARG_FLOAT(eps), CC_ARG_FLOAT(weight_decay),
                                CC_ARG_FLOAT(inv_sqrt_bc2)));
}
