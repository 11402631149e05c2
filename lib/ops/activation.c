/* Activations (ReLU, leaky ReLU, identity), forward and backward. Host side of
 * cl/activation.cl.
 *
 * Shapes: x, y, dy, dx all have exactly the same dims (any 1-4-D float32 tensor).
 * y may be x and dx may be dy (in place). */
#include "elementwise.h"

#include "clcnn_ids.h"

static clcnn_status check_act(const char *op, clcnn_activation act) {
    CC_RETURN_IF(act != CLCNN_ACT_NONE && act != CLCNN_ACT_RELU && act != CLCNN_ACT_LEAKY_RELU,
                 CLCNN_ERR_INVALID_ARG,
                 "%s: unknown activation %d (expected CLCNN_ACT_NONE, _RELU or _LEAKY_RELU)", op,
                 (int)act);
    return CLCNN_OK;
}

/* The ids in cl/clcnn_ids.h must stay in step with the public enum. */
_Static_assert(CLCNN_ACT_ID_RELU == CLCNN_ACT_RELU && CLCNN_ACT_ID_LEAKY == CLCNN_ACT_LEAKY_RELU &&
                   CLCNN_ACT_ID_NONE == CLCNN_ACT_NONE,
               "clcnn_ids.h activation ids differ from clcnn_activation");

clcnn_status clcnn_activation_forward(clcnn_device *dev, clcnn_activation act, float alpha,
                                      const clcnn_tensor *x, clcnn_tensor *y) {
    static const char *op = "clcnn_activation_forward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(check_act(op, act));
    CC_TRY(cc_ew_check(dev, op, "x", x, NULL, NULL, 1));
    CC_TRY(cc_ew_check(dev, op, "y", y, "x", x, 1));
    if (act == CLCNN_ACT_NONE) return clcnn_tensor_copy(y, x); /* no-op when y is x */
    return cc_ew_launch(dev, "activation", "act_forward", x->numel,
                        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset),
                                CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                                CC_ARG_ULONG(x->numel), CC_ARG_INT(act), CC_ARG_FLOAT(alpha)));
}

clcnn_status clcnn_activation_backward(clcnn_device *dev, clcnn_activation act, float alpha,
                                       const clcnn_tensor *x, const clcnn_tensor *dy,
                                       clcnn_tensor *dx) {
    static const char *op = "clcnn_activation_backward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(check_act(op, act));
    CC_TRY(cc_ew_check(dev, op, "x", x, NULL, NULL, 1));
    CC_TRY(cc_ew_check(dev, op, "dy", dy, "x", x, 1));
    CC_TRY(cc_ew_check(dev, op, "dx", dx, "x", x, 1));
    if (act == CLCNN_ACT_NONE) return clcnn_tensor_copy(dx, dy);
    return cc_ew_launch(dev, "activation", "act_backward", x->numel,
                        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset),
                                CC_ARG_MEM(dy->storage->mem), CC_ARG_ULONG(dy->offset),
                                CC_ARG_MEM(dx->storage->mem), CC_ARG_ULONG(dx->offset),
                                CC_ARG_ULONG(x->numel), CC_ARG_INT(act), CC_ARG_FLOAT(alpha)));
}
