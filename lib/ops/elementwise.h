/* Helpers shared by the element-wise ops (activation.c, elementwise.c, dropout.c,
 * optim.c): shape checks whose message names both shapes, and a 1-D launch of one
 * work-item per element. Internal to lib/ops; implemented in lib/ops/elementwise.c. */
#ifndef CLCNN_OPS_ELEMENTWISE_H
#define CLCNN_OPS_ELEMENTWISE_H

#include "internal.h"

/* Check that t is a float32 tensor on dev (cc_check_tensor) and, when ref is given,
 * that t matches ref: the same dims (same_dims != 0) or only the same element count.
 * Fails with CLCNN_ERR_SHAPE naming op and both shapes. */
clcnn_status cc_ew_check(const clcnn_device *dev, const char *op, const char *what,
                         const clcnn_tensor *t, const char *ref_what, const clcnn_tensor *ref,
                         int same_dims);

/* Enqueue `kernel` of cl/<file>.cl (no defines) over n work-items in work-groups of a
 * fixed size (kernels bounds-check the padded tail). */
clcnn_status cc_ew_launch(clcnn_device *dev, const char *file, const char *kernel, size_t n,
                          const cc_arg *args, int nargs);
/* The same with the program built with `defines`. */
clcnn_status cc_ew_launch_defs(clcnn_device *dev, const char *file, const char *defines,
                               const char *kernel, size_t n, const cc_arg *args, int nargs);

/* Whether two tensors use the same elements of the same buffer. */
static inline int cc_same_memory(const clcnn_tensor *a, const clcnn_tensor *b) {
    return a->storage == b->storage && a->offset == b->offset;
}

#endif
