/* Element-wise arithmetic (clcnn_add, clcnn_axpby; cc_add_relu and cc_add_relu_grad for
 * training plans) and the helpers every element-wise op uses (lib/ops/elementwise.h). Host
 * side of cl/elementwise.cl.
 *
 * Shapes: a, b, x, y are any float32 tensors with the same element count (they are
 * read as flat arrays, so a (n, c, h, w) tensor may be added to a (n, c*h*w) view). */
#include "elementwise.h"

/* Work-group size for the 1-D element-wise launches: 256 fills a GPU wave/warp
 * multiple and gives POCL's work-group loops enough iterations to vectorise. */
#define EW_LWS 256

clcnn_status cc_ew_check(const clcnn_device *dev, const char *op, const char *what,
                         const clcnn_tensor *t, const char *ref_what, const clcnn_tensor *ref,
                         int same_dims) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, what));
    if (!ref) return CLCNN_OK;
    int same = t->numel == ref->numel;
    if (same && same_dims) {
        same = t->ndim == ref->ndim;
        for (int i = 0; same && i < t->ndim; i++)
            same = t->shape[i] == ref->shape[i];
    }
    if (same) return CLCNN_OK;
    char a[64], b[64];
    return cc_fail(CLCNN_ERR_SHAPE, "%s: %s is %s (%zu elements) but %s is %s (%zu elements); %s",
                   op, what, clcnn_tensor_shape_str(t, a, sizeof a), t->numel, ref_what,
                   clcnn_tensor_shape_str(ref, b, sizeof b), ref->numel,
                   same_dims ? "the shapes must be equal" : "the element counts must be equal");
}

clcnn_status cc_ew_launch_defs(clcnn_device *dev, const char *file, const char *defines,
                               const char *kernel, size_t n, const cc_arg *args, int nargs) {
    size_t lws = EW_LWS;
    if (dev->info.max_work_group_size && dev->info.max_work_group_size < lws)
        lws = dev->info.max_work_group_size;
    /* Small tensors: one work-group of the next multiple of 32 is enough. */
    if (n < lws) lws = (n + 31) / 32 * 32 < lws ? (n + 31) / 32 * 32 : lws;
    return cc_launch(dev, file, defines, kernel, 1, (size_t[]){n}, (size_t[]){lws}, args, nargs);
}

clcnn_status cc_ew_launch(clcnn_device *dev, const char *file, const char *kernel, size_t n,
                          const cc_arg *args, int nargs) {
    return cc_ew_launch_defs(dev, file, "", kernel, n, args, nargs);
}

/* y = a + b (ew_add), or relu(a + b) (ew_add_relu), after op's checks. */
static clcnn_status add_kernel(clcnn_device *dev, const char *op, const char *kernel,
                               const clcnn_tensor *a, const clcnn_tensor *b, clcnn_tensor *y) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_ew_check(dev, op, "a", a, NULL, NULL, 0));
    CC_TRY(cc_ew_check(dev, op, "b", b, "a", a, 0));
    CC_TRY(cc_ew_check(dev, op, "y", y, "a", a, 0));
    return cc_ew_launch(dev, "elementwise", kernel, a->numel,
                        CC_ARGS(CC_ARG_MEM(a->storage->mem), CC_ARG_ULONG(a->offset),
                                CC_ARG_MEM(b->storage->mem), CC_ARG_ULONG(b->offset),
                                CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                                CC_ARG_ULONG(a->numel)));
}

clcnn_status clcnn_add(clcnn_device *dev, const clcnn_tensor *a, const clcnn_tensor *b,
                       clcnn_tensor *y) {
    return add_kernel(dev, "clcnn_add", "ew_add", a, b, y);
}

clcnn_status cc_add_relu(clcnn_device *dev, const clcnn_tensor *a, const clcnn_tensor *b,
                         clcnn_tensor *y) {
    return add_kernel(dev, "cc_add_relu", "ew_add_relu", a, b, y);
}

clcnn_status cc_add_relu_grad(clcnn_device *dev, const clcnn_tensor *y, const clcnn_tensor *a,
                              const clcnn_tensor *b, clcnn_tensor *dx) {
    static const char *op = "cc_add_relu_grad";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_ew_check(dev, op, "y", y, NULL, NULL, 0));
    CC_TRY(cc_ew_check(dev, op, "a", a, "y", y, 0));
    CC_TRY(cc_ew_check(dev, op, "b", b, "y", y, 0));
    CC_TRY(cc_ew_check(dev, op, "dx", dx, "y", y, 0));
    return cc_ew_launch(
        dev, "elementwise", "ew_add_relu_grad", y->numel,
        CC_ARGS(CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset), CC_ARG_MEM(a->storage->mem),
                CC_ARG_ULONG(a->offset), CC_ARG_MEM(b->storage->mem), CC_ARG_ULONG(b->offset),
                CC_ARG_MEM(dx->storage->mem), CC_ARG_ULONG(dx->offset), CC_ARG_ULONG(y->numel)));
}

clcnn_status clcnn_axpby(clcnn_device *dev, float alpha, const clcnn_tensor *x, float beta,
                         clcnn_tensor *y) {
    static const char *op = "clcnn_axpby";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(cc_ew_check(dev, op, "x", x, NULL, NULL, 0));
    CC_TRY(cc_ew_check(dev, op, "y", y, "x", x, 0));
    return cc_ew_launch(dev, "elementwise", "ew_axpby", x->numel,
                        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset),
                                CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                                CC_ARG_ULONG(x->numel), CC_ARG_FLOAT(alpha), CC_ARG_FLOAT(beta)));
}
