/* TEMPORARY: the prepared-convolution interface over the public per-call convolution. */
#include "exec/conv_shim.h"

#include <stdlib.h>

struct cc_conv_fwd {
    clcnn_device *dev;
    cc_conv_fwd_desc d;
    clcnn_tensor *w, *b;
    clcnn_conv_algo algo;
};

clcnn_status cc_conv_fwd_create(clcnn_device *dev, const cc_conv_fwd_desc *d, const clcnn_tensor *w,
                                const clcnn_tensor *b, cc_conv_fwd **out) {
    *out = NULL;
    cc_conv_fwd *f = calloc(1, sizeof *f);
    CC_RETURN_IF(!f, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    f->dev = dev;
    f->d = *d;
    clcnn_status s = clcnn_tensor_create(dev, CLCNN_F32, 4, d->w, &f->w);
    if (s == CLCNN_OK) s = clcnn_tensor_copy(f->w, w);
    if (s == CLCNN_OK && b) s = clcnn_tensor_create(dev, CLCNN_F32, 1, &d->w[0], &f->b);
    if (s == CLCNN_OK && b) s = clcnn_tensor_copy(f->b, b);
    if (s == CLCNN_OK)
        s = clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d->conv, d->x, d->w, &f->algo,
                                     NULL);
    if (s != CLCNN_OK) {
        cc_conv_fwd_free(f);
        return s;
    }
    f->d.conv.algo = f->algo;
    *out = f;
    return CLCNN_OK;
}

clcnn_status cc_conv_fwd_run(cc_conv_fwd *f, const clcnn_tensor *x, const clcnn_tensor *z,
                             clcnn_tensor *y) {
    int separate = f->d.residual || (f->d.act == CLCNN_ACT_LEAKY_RELU && f->d.alpha != 0.01f);
    CC_TRY(clcnn_conv2d_forward(f->dev, &f->d.conv, x, f->w, f->b, y,
                                separate ? CLCNN_ACT_NONE : f->d.act));
    if (f->d.residual) CC_TRY(clcnn_add(f->dev, y, z, y));
    if (separate && f->d.act != CLCNN_ACT_NONE)
        CC_TRY(clcnn_activation_forward(f->dev, f->d.act, f->d.alpha, y, y));
    return CLCNN_OK;
}

clcnn_conv_algo cc_conv_fwd_algo(const cc_conv_fwd *f) {
    return f->algo;
}

void cc_conv_fwd_free(cc_conv_fwd *f) {
    if (!f) return;
    clcnn_tensor_free(f->w);
    clcnn_tensor_free(f->b);
    free(f);
}
