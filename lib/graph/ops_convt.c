/* ConvTranspose in the graph: attributes and shape inference (ONNX opset 11+, 2-D NCHW).
 *
 * x (n, c, h, w), weights (c, k/group, r, s), bias (k) optional, y (n, k, p, q). The full
 * transposed convolution (no padding) has h_full = stride (h - 1) + dilation (r - 1) + 1
 * rows (q likewise); y is rows [pads[0], pads[0] + p) of it, where rows past h_full (an
 * output_padding, or an output_shape larger than h_full) hold only the bias. Shape
 * inference resolves output_shape and auto_pad into pads[] as the ONNX reference does:
 *     total = stride (h - 1) + output_padding + dilation (r - 1) + 1 - p
 *     SAME_UPPER: pads = (floor(total / 2), total - floor(total / 2))
 *     otherwise:  pads = (total - floor(total / 2), floor(total / 2))
 * with p = output_shape (when given) or h * stride (SAME_*). total < 0 gives negative
 * pads: zero rows at that side. */
#include "graph/graph_internal.h"

#include <stdio.h>
#include <string.h>

static int64_t floor_half(int64_t v) {
    return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

/* An optional ints attribute of 2 values (or 4: n, c, h, w for output_shape), each >= min. */
static clcnn_status spatial_ints(const cc_gnode *n, const char *name, int64_t min, int64_t *out) {
    const cc_gattr *a = cc_node_attr(n, name);
    if (!a) return CLCNN_OK;
    CC_RETURN_IF(a->type != CLCNN_ATTR_INTS, CLCNN_ERR_INVALID_ARG,
                 "node '%s': attribute '%s' must be a list of ints", n->name, name);
    CC_RETURN_IF(a->n != 2 && a->n != 4, CLCNN_ERR_UNSUPPORTED,
                 "node '%s': attribute '%s' has %d values; only 2-D (2 values) is supported",
                 n->name, name, a->n);
    for (int i = 0; i < 2; i++) {
        int64_t v = a->ints[a->n - 2 + i];
        CC_RETURN_IF(v < min || v > (1 << 20), CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute '%s' value %lld is out of range (%lld..%d)", n->name,
                     name, (long long)v, (long long)min, 1 << 20);
        out[i] = v;
    }
    return CLCNN_OK;
}

clcnn_status cc_parse_convtranspose(cc_gnode *n) {
    CC_TRY(cc_parse_conv(n));
    CC_TRY(spatial_ints(n, "output_padding", 0, n->a.output_padding));
    CC_TRY(spatial_ints(n, "output_shape", 1, n->a.output_shape));
    return CLCNN_OK;
}

clcnn_status cc_infer_convtranspose(clcnn_graph *g, cc_gnode *n) {
    cc_op_attrs *a = &n->a;
    const cc_gvalue *x = n->in[0] >= 0 ? &g->vals[n->in[0]] : NULL;
    const cc_gvalue *w = n->in[1] >= 0 ? &g->vals[n->in[1]] : NULL;
    const cc_gvalue *b = n->n_in > 2 && n->in[2] >= 0 ? &g->vals[n->in[2]] : NULL;
    char bx[96], bw[96];
    CC_RETURN_IF(!x || !w, CLCNN_ERR_INVALID_ARG, "node '%s' (ConvTranspose): input missing",
                 n->name);
    CC_RETURN_IF(x->ndim != 4 || w->ndim != 4, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (ConvTranspose): input %s and weights %s: only 2-D (4 dimensions) "
                 "is supported",
                 n->name, cc_graph_shape_str(x->dims, x->ndim, bx, sizeof bx),
                 cc_graph_shape_str(w->dims, w->ndim, bw, sizeof bw));
    int64_t c = x->dims[1], grp = a->group, k = w->dims[1] * grp;
    CC_RETURN_IF(w->dims[0] != c || c % grp, CLCNN_ERR_SHAPE,
                 "node '%s' (ConvTranspose): input %s and weights %s do not fit group %lld",
                 n->name, cc_graph_shape_str(x->dims, 4, bx, sizeof bx),
                 cc_graph_shape_str(w->dims, 4, bw, sizeof bw), (long long)grp);
    for (int d = 0; d < 2; d++)
        CC_RETURN_IF(a->kernel[d] && a->kernel[d] != w->dims[2 + d], CLCNN_ERR_SHAPE,
                     "node '%s' (ConvTranspose): kernel_shape %lldx%lld differs from the "
                     "weights %s",
                     n->name, (long long)a->kernel[0], (long long)a->kernel[1],
                     cc_graph_shape_str(w->dims, 4, bw, sizeof bw));
    if (b)
        CC_RETURN_IF(b->ndim != 1 || b->dims[0] != k, CLCNN_ERR_SHAPE,
                     "node '%s' (ConvTranspose): bias %s does not match %lld output channels",
                     n->name, cc_graph_shape_str(b->dims, b->ndim, bx, sizeof bx), (long long)k);
    a->kernel[0] = w->dims[2];
    a->kernel[1] = w->dims[3];
    int64_t y[4] = {x->dims[0], k, 0, 0};
    for (int d = 0; d < 2; d++) {
        int64_t s = a->strides[d], op = a->output_padding[d];
        CC_RETURN_IF(op >= s && op >= a->dilations[d], CLCNN_ERR_SHAPE,
                     "node '%s' (ConvTranspose): output_padding %lld must be smaller than the "
                     "stride or the dilation",
                     n->name, (long long)op);
        CC_RETURN_IF(x->dims[2 + d] < 1 || x->dims[2 + d] > (1 << 24), CLCNN_ERR_SHAPE,
                     "node '%s' (ConvTranspose): input %s has a spatial size out of range "
                     "(1..%d)",
                     n->name, cc_graph_shape_str(x->dims, 4, bx, sizeof bx), 1 << 24);
        int64_t full = s * (x->dims[2 + d] - 1) + a->dilations[d] * (w->dims[2 + d] - 1) + 1;
        int64_t out = a->output_shape[d];
        if (!out && a->auto_pad >= 2) out = x->dims[2 + d] * s;
        if (out) {
            int64_t total = full + op - out, half = floor_half(total);
            a->pads[d] = a->auto_pad == 2 ? half : total - half;
            a->pads[d + 2] = a->auto_pad == 2 ? total - half : half;
        } else {
            if (a->auto_pad == 1) a->pads[d] = a->pads[d + 2] = 0;
            out = full + op - a->pads[d] - a->pads[d + 2];
        }
        CC_RETURN_IF(out < 1, CLCNN_ERR_SHAPE,
                     "node '%s' (ConvTranspose): pads %lld+%lld leave no output of the %lld "
                     "rows (dimension %d)",
                     n->name, (long long)a->pads[d], (long long)a->pads[d + 2],
                     (long long)(full + op), d + 2);
        y[2 + d] = out;
    }
    cc_gvalue *yv = &g->vals[n->out[0]];
    yv->ndim = 4;
    memcpy(yv->dims, y, sizeof y);
    return CLCNN_OK;
}

void cc_node_describe_convt(const clcnn_graph *g, const cc_gnode *n, char *desc, size_t cap,
                            double *flops, size_t *params) {
    const cc_op_attrs *a = &n->a;
    const cc_gvalue *w = &g->vals[n->in[1]], *x = &g->vals[n->in[0]];
    for (int i = 1; i < n->n_in && i < 3; i++)
        if (n->in[i] >= 0 && g->vals[n->in[i]].kind == CC_VAL_INIT)
            *params += g->vals[n->in[i]].numel;
    *flops = 2.0 * (double)(w->dims[0] * w->dims[1] * w->dims[2] * w->dims[3]) *
             (double)(x->dims[2] * x->dims[3]);
    int used = snprintf(desc, cap, "%lld x %lldx%lld", (long long)(w->dims[1] * a->group),
                        (long long)w->dims[2], (long long)w->dims[3]);
    if (a->strides[0] != 1 || a->strides[1] != 1)
        used +=
            snprintf(desc + used, cap - (size_t)used, ", stride %lld", (long long)a->strides[0]);
    if (a->group != 1)
        snprintf(desc + used, cap - (size_t)used, ", %lld groups", (long long)a->group);
}
