/* Resize / Upsample over the last two dims (ONNX, nearest and linear). Kernel:
 * cl/resize.cl.
 *
 * Shapes: x (outer, h, w) -> y (outer, p, q); tab (p + q, 3) as cc_resize_axis writes it,
 * the rows' entries first, then the columns'. */
#include "internal.h"

#include <limits.h>
#include <math.h>

/* The input coordinate output coordinate o maps to (ONNX's coordinate transforms). */
static double source_coord(cc_resize_coord coord, double o, double scale, size_t in, size_t out) {
    switch (coord) {
    case CC_RESIZE_ASYMMETRIC:
        return o / scale;
    case CC_RESIZE_ALIGN_CORNERS:
        return out > 1 ? o * (double)(in - 1) / (double)(out - 1) : 0.0;
    case CC_RESIZE_PYTORCH_HALF_PIXEL:
        return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case CC_RESIZE_TF_HALF_PIXEL_FOR_NN:
        return (o + 0.5) / scale;
    case CC_RESIZE_HALF_PIXEL:
    default:
        return (o + 0.5) / scale - 0.5;
    }
}

static double round_coord(cc_resize_round r, double v) {
    switch (r) {
    case CC_RESIZE_FLOOR:
        return floor(v);
    case CC_RESIZE_CEIL:
        return ceil(v);
    case CC_RESIZE_ROUND_PREFER_CEIL:
        return v - floor(v) == 0.5 ? ceil(v) : round(v);
    case CC_RESIZE_ROUND_PREFER_FLOOR:
    default:
        return v - floor(v) == 0.5 ? floor(v) : round(v);
    }
}

static double clampd(double v, size_t in) {
    return v < 0.0 ? 0.0 : v > (double)(in - 1) ? (double)(in - 1) : v;
}

void cc_resize_axis(int linear, cc_resize_coord coord, cc_resize_round round, size_t in, size_t out,
                    double scale, float *tab) {
    for (size_t o = 0; o < out; o++) {
        double v = source_coord(coord, (double)o, scale, in, out);
        float *t = tab + 3 * o;
        if (!linear) {
            t[0] = t[1] = (float)clampd(round_coord(round, v), in);
            t[2] = 0.0f;
            continue;
        }
        /* beyond the edges the edge value (ONNX pads the input with its edge) */
        double f = floor(v);
        t[0] = (float)clampd(f, in);
        t[1] = (float)clampd(f + 1.0, in);
        t[2] = (float)(v - f);
    }
}

clcnn_status cc_resize2d(clcnn_device *dev, const clcnn_tensor *x, const clcnn_tensor *tab,
                         size_t outer, size_t h, size_t w, size_t p, size_t q, clcnn_tensor *y) {
    static const char name[] = "resize2d";
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, name, "x"));
    CC_TRY(cc_check_tensor(dev, tab, CLCNN_F32, name, "tab"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, name, "y"));
    char a[64], b[64];
    CC_RETURN_IF(x->numel != outer * h * w || y->numel != outer * p * q ||
                     tab->numel != 3 * (p + q) || !h || !w,
                 CLCNN_ERR_SHAPE,
                 "%s: x %s must hold (%zu, %zu, %zu), y %s (%zu, %zu, %zu), the table %zu rows",
                 name, clcnn_tensor_shape_str(x, a, sizeof a), outer, h, w,
                 clcnn_tensor_shape_str(y, b, sizeof b), outer, p, q, p + q);
    CC_RETURN_IF(x->offset + x->numel > INT_MAX || y->offset + y->numel > INT_MAX ||
                     tab->offset + tab->numel > INT_MAX || h > (1 << 24) || w > (1 << 24),
                 CLCNN_ERR_UNSUPPORTED, "%s: tensors beyond 2^31-1 elements are not supported",
                 name);
    if (y->numel == 0) return CLCNN_OK;
    size_t gws[3] = {q, p, outer};
    return cc_launch(
        dev, "resize", "", "resize2d", 3, gws, NULL,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset), CC_ARG_MEM(y->storage->mem),
                CC_ARG_INT(y->offset), CC_ARG_MEM(tab->storage->mem), CC_ARG_INT(tab->offset),
                CC_ARG_INT(outer), CC_ARG_INT(h), CC_ARG_INT(w), CC_ARG_INT(p), CC_ARG_INT(q)));
}
