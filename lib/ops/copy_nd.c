/* Host side of cl/copy_nd.cl: the strided N-d gather behind Transpose, Slice, Pad, Expand,
 * Tile and the parts of Concat, Split and Gather in plans. Bounds are checked on the host
 * once per launch (a few multiplications), so the kernel never reads or writes outside
 * its tensors. */
#include "internal.h"

#include "clcnn_ids.h"

#include <string.h>

void cc_copy_nd_dense(cc_copy_nd *d, int ndim, const size_t *shape) {
    memset(d, 0, sizeof *d);
    d->ndim = ndim;
    size_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        d->shape[i] = d->lim[i] = shape[i];
        d->y_stride[i] = d->x_stride[i] = stride;
        d->step[i] = 1;
        stride *= shape[i];
    }
    d->mode = CLCNN_COPY_ID_CONSTANT;
}

/* Highest element offset + 1 that extents ext[] at strides st[] reach from off; 0 when it
 * would pass 2^50 elements (no tensor is that large). */
static size_t reach(size_t off, const size_t *ext, const size_t *st) {
    const size_t cap = (size_t)1 << 50;
    size_t top = off;
    for (int i = 0; i < 4; i++) {
        if (ext[i] == 0) return 0;
        if (st[i] && (ext[i] - 1) > (cap - top) / st[i]) return 0;
        top += (ext[i] - 1) * st[i];
    }
    return top + 1;
}

clcnn_status cc_copy_nd_run(clcnn_device *dev, const cc_copy_nd *d, const clcnn_tensor *x,
                            clcnn_tensor *y) {
    static const char *op = "cc_copy_nd";
    CC_RETURN_IF(!dev || !d, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", op);
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, op, "x"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, op, "y"));
    CC_RETURN_IF(d->ndim < 0 || d->ndim > 4 ||
                     (d->mode != CLCNN_COPY_ID_CONSTANT && d->mode != CLCNN_COPY_ID_EDGE &&
                      d->mode != CLCNN_COPY_ID_REFLECT && d->mode != CLCNN_COPY_ID_WRAP),
                 CLCNN_ERR_INVALID_ARG, "%s: %d dims, mode %d", op, d->ndim, d->mode);
    /* the box as 4 dims, leading ones padded */
    size_t shape[4], ys[4], xs[4], lim[4];
    int64_t start[4], step[4];
    int pad = 4 - d->ndim;
    for (int i = 0; i < 4; i++) {
        int k = i - pad;
        shape[i] = k < 0 ? 1 : d->shape[k];
        ys[i] = k < 0 ? 0 : d->y_stride[k];
        xs[i] = k < 0 ? 0 : d->x_stride[k];
        lim[i] = k < 0 ? 1 : d->lim[k];
        start[i] = k < 0 ? 0 : d->start[k];
        step[i] = k < 0 ? 0 : d->step[k];
        CC_RETURN_IF(shape[i] > INT32_MAX || lim[i] > ((size_t)1 << 40) ||
                         start[i] < -((int64_t)1 << 40) || start[i] > ((int64_t)1 << 40) ||
                         step[i] < -((int64_t)1 << 20) || step[i] > ((int64_t)1 << 20),
                     CLCNN_ERR_SHAPE,
                     "%s: dim %d: box %zu, input extent %zu, start %lld, step %lld", op, k,
                     shape[i], lim[i], (long long)start[i], (long long)step[i]);
    }
    size_t ytop = reach(d->y_off, shape, ys), xtop = reach(d->x_off, lim, xs);
    if (ytop == 0 || xtop == 0 || ytop > y->numel || xtop > x->numel) {
        char a[64], b[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "%s: the box %zux%zux%zux%zu writes up to element %zu of y (%s, %zu "
                       "elements) and may read up to element %zu of x (%s, %zu elements)",
                       op, shape[0], shape[1], shape[2], shape[3], ytop,
                       clcnn_tensor_shape_str(y, a, sizeof a), y->numel, xtop,
                       clcnn_tensor_shape_str(x, b, sizeof b), x->numel);
    }
    cl_int4 cshape = {{(cl_int)shape[0], (cl_int)shape[1], (cl_int)shape[2], (cl_int)shape[3]}};
    cl_long4 cys, cxs, cstart, cstep, clim;
    for (int i = 0; i < 4; i++) {
        cys.s[i] = (cl_long)ys[i];
        cxs.s[i] = (cl_long)xs[i];
        cstart.s[i] = start[i];
        cstep.s[i] = step[i];
        clim.s[i] = (cl_long)lim[i];
    }
    size_t gws[3] = {shape[3], shape[2], shape[0] * shape[1]};
    return cc_launch(dev, "copy_nd", "", "copy_nd", 3, gws, NULL,
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset + d->x_off),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset + d->y_off),
                             ((cc_arg){sizeof cshape, &cshape}), ((cc_arg){sizeof cys, &cys}),
                             ((cc_arg){sizeof cxs, &cxs}), ((cc_arg){sizeof cstart, &cstart}),
                             ((cc_arg){sizeof cstep, &cstep}), ((cc_arg){sizeof clim, &clim}),
                             CC_ARG_INT(d->mode), CC_ARG_FLOAT(d->value)));
}
