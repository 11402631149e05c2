/* Inverted dropout (training mode), forward and backward. Host side of cl/dropout.cl,
 * whose top comment defines the RNG: the mask is a pure function of (seed, step,
 * element index), identical on every device.
 *
 * Shapes: x, y, mask (and dy, dx) all have exactly the same dims. y may be x and dx
 * may be dy; mask must be a separate tensor (it is kept for backward). */
#include "elementwise.h"

#include <math.h>

static uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

clcnn_status clcnn_dropout_forward(clcnn_device *dev, float p, unsigned long long seed,
                                   unsigned long long step, const clcnn_tensor *x, clcnn_tensor *y,
                                   clcnn_tensor *mask) {
    static const char *op = "clcnn_dropout_forward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_RETURN_IF(!(p >= 0.0f && p < 1.0f), CLCNN_ERR_INVALID_ARG,
                 "%s: drop probability p = %g is outside [0, 1)", op, (double)p);
    CC_TRY(cc_ew_check(dev, op, "x", x, NULL, NULL, 1));
    CC_TRY(cc_ew_check(dev, op, "y", y, "x", x, 1));
    CC_TRY(cc_ew_check(dev, op, "mask", mask, "x", x, 1));
    CC_RETURN_IF(cc_same_memory(mask, y), CLCNN_ERR_INVALID_ARG,
                 "%s: mask and y are the same tensor memory; mask must be separate", op);

    /* p < 1 so p * 2^32 < 2^32; the floor fits in 32 bits. */
    cl_uint thresh = (cl_uint)floor((double)p * 4294967296.0);
    float scale = (float)(1.0 / (1.0 - (double)p));
    uint64_t key = splitmix64((uint64_t)seed ^ splitmix64((uint64_t)step));
    return cc_ew_launch(dev, "dropout", "dropout_forward", x->numel,
                        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset),
                                CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                                CC_ARG_MEM(mask->storage->mem), CC_ARG_ULONG(mask->offset),
                                CC_ARG_ULONG(x->numel), CC_ARG_ULONG(key), CC_ARG_UINT(thresh),
                                CC_ARG_FLOAT(scale)));
}

clcnn_status clcnn_dropout_backward(clcnn_device *dev, const clcnn_tensor *mask,
                                    const clcnn_tensor *dy, clcnn_tensor *dx) {
    static const char *op = "clcnn_dropout_backward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_ew_check(dev, op, "mask", mask, NULL, NULL, 1));
    CC_TRY(cc_ew_check(dev, op, "dy", dy, "mask", mask, 1));
    CC_TRY(cc_ew_check(dev, op, "dx", dx, "mask", mask, 1));
    return cc_ew_launch(dev, "dropout", "dropout_backward", mask->numel,
                        CC_ARGS(CC_ARG_MEM(mask->storage->mem), CC_ARG_ULONG(mask->offset),
                                CC_ARG_MEM(dy->storage->mem), CC_ARG_ULONG(dy->offset),
                                CC_ARG_MEM(dx->storage->mem), CC_ARG_ULONG(dx->offset),
                                CC_ARG_ULONG(mask->numel)));
}
