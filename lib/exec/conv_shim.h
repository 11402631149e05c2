/* TEMPORARY: the prepared-convolution interface until lib/ops provides it. */
#ifndef CLCNN_EXEC_CONV_SHIM_H
#define CLCNN_EXEC_CONV_SHIM_H
#include "internal.h"
typedef struct cc_conv_fwd cc_conv_fwd;
typedef struct cc_conv_fwd_desc {
    clcnn_conv2d_desc conv;
    size_t x[4], w[4];
    clcnn_activation act;
    float alpha;
    int residual;
} cc_conv_fwd_desc;
clcnn_status cc_conv_fwd_create(clcnn_device *dev, const cc_conv_fwd_desc *d, const clcnn_tensor *w,
                                const clcnn_tensor *b, cc_conv_fwd **out);
clcnn_status cc_conv_fwd_run(cc_conv_fwd *f, const clcnn_tensor *x, const clcnn_tensor *z,
                             clcnn_tensor *y);
clcnn_conv_algo cc_conv_fwd_algo(const cc_conv_fwd *f);
void cc_conv_fwd_free(cc_conv_fwd *f);
#endif
