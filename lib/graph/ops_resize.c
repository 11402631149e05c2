/* Resize (opsets 10-13+) and Upsample (opsets 7-9) in the op table: attribute parsing and
 * shape inference. Scales (float) and sizes (int64) must be initializers; roi is read only
 * by tf_crop_and_resize, which is not supported, nor is cubic. Resize with two inputs
 * (opset 10) and Upsample scale with the asymmetric transform and floor rounding, as
 * Upsample's repeat of each element does.
 *
 * Output dims: floor(in * scale) from scales, else sizes. The batch (dim 0 symbolic) must
 * keep scale 1 (or a sizes entry CC_SHAPE_BATCH). */
#include "graph/graph_internal.h"

#include <math.h>
#include <string.h>

#define BATCH CLCNN_GRAPH_BATCH

static const char *opname(const cc_gnode *n) {
    return cc_op_defs[n->op].name;
}

/* Index of the string attr's value in names[0..count), def when absent; any other value
 * is CLCNN_ERR_UNSUPPORTED naming it (cubic, tf_crop_and_resize, ...). */
static clcnn_status attr_choice(const cc_gnode *n, const char *attr, const char *const *names,
                                int count, int def, int *out) {
    const cc_gattr *a = cc_node_attr(n, attr);
    *out = def;
    if (!a) return CLCNN_OK;
    CC_RETURN_IF(a->type != CLCNN_ATTR_STRING, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (%s): attribute '%s' must be a string", n->name, opname(n), attr);
    for (int i = 0; i < count; i++)
        if (names[i] && !strcmp(a->s, names[i])) {
            *out = i;
            return CLCNN_OK;
        }
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "node '%s' (%s): %s '%s' is not supported", n->name,
                   opname(n), attr, a->s);
}

static const char *const coord_names[] = {"half_pixel", "asymmetric", "align_corners",
                                          "pytorch_half_pixel", "tf_half_pixel_for_nn"};
static const char *const round_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};

clcnn_status cc_parse_resize(cc_gnode *n) {
    cc_op_attrs *a = &n->a;
    cc_attrs_defaults(a);
    int mode;
    /* "bilinear": Upsample before opset 7 */
    static const char *const modes[] = {"nearest", "linear", "bilinear"};
    CC_TRY(attr_choice(n, "mode", modes, 3, 0, &mode));
    a->rs_linear = mode > 0;
    int legacy = n->op == CC_OP_UPSAMPLE || n->n_in == 2; /* Upsample, Resize-10 */
    a->rs_coord = legacy ? CC_RESIZE_ASYMMETRIC : CC_RESIZE_HALF_PIXEL;
    a->rs_round = legacy ? CC_RESIZE_FLOOR : CC_RESIZE_ROUND_PREFER_FLOOR;
    if (n->op == CC_OP_UPSAMPLE) {
        const cc_gattr *s = cc_node_attr(n, "scales");
        CC_RETURN_IF(s && s->type != CLCNN_ATTR_FLOATS, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Upsample): attribute 'scales' must be a list of floats", n->name);
        CC_RETURN_IF(!s && n->n_in < 2, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Upsample): no scales (attribute or input)", n->name);
        return CLCNN_OK;
    }
    if (!legacy) {
        int c, r;
        CC_TRY(attr_choice(n, "coordinate_transformation_mode", coord_names, 5,
                           CC_RESIZE_HALF_PIXEL, &c));
        CC_TRY(attr_choice(n, "nearest_mode", round_names, 4, CC_RESIZE_ROUND_PREFER_FLOOR, &r));
        a->rs_coord = c;
        a->rs_round = r;
    }
    int64_t antialias;
    int keep;
    static const char *const policies[] = {"stretch"};
    CC_TRY(cc_attr_int(n, "antialias", 0, &antialias));
    CC_TRY(attr_choice(n, "keep_aspect_ratio_policy", policies, 1, 0, &keep));
    CC_RETURN_IF(antialias != 0 || cc_node_attr(n, "axes"), CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Resize): antialias and axes (opset 18) are not supported", n->name);
    return CLCNN_OK;
}

clcnn_status cc_resize_info_of(const clcnn_graph *g, const cc_gnode *n, cc_resize_info *r) {
    const cc_gvalue *x = cc_node_in(g, n, 0);
    char b[96];
    CC_RETURN_IF(!x || x->ndim < 1, CLCNN_ERR_SHAPE, "node '%s' (%s): the input has no dims",
                 n->name, opname(n));
    int nd = x->ndim;
    const cc_gvalue *scales = NULL, *sizes = NULL;
    const float *sc = NULL;
    if (n->op == CC_OP_UPSAMPLE || n->n_in == 2) {
        scales = cc_node_in(g, n, 1);
    } else {
        scales = cc_node_in(g, n, 2);
        sizes = cc_node_in(g, n, 3);
        if (scales && scales->kind == CC_VAL_INIT && scales->numel == 0) scales = NULL;
    }
    if (scales) {
        CC_RETURN_IF(scales->kind != CC_VAL_INIT || scales->dtype != CLCNN_F32,
                     CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (%s): scales '%s' must be a float initializer (scales computed "
                     "per run are not supported)",
                     n->name, opname(n), scales->name);
        CC_RETURN_IF(scales->numel != (size_t)nd, CLCNN_ERR_SHAPE,
                     "node '%s' (%s): %zu scales for the input %s", n->name, opname(n),
                     scales->numel, cc_graph_shape_str(x->dims, nd, b, sizeof b));
        sc = scales->data;
    } else if (n->op == CC_OP_UPSAMPLE) {
        const cc_gattr *a = cc_node_attr(n, "scales");
        CC_RETURN_IF(!a || a->n != nd, CLCNN_ERR_SHAPE,
                     "node '%s' (Upsample): %d scales for the input %s", n->name, a ? a->n : 0,
                     cc_graph_shape_str(x->dims, nd, b, sizeof b));
        sc = a->floats;
    }
    if (!sc) {
        CC_RETURN_IF(!sizes, CLCNN_ERR_INVALID_ARG, "node '%s' (Resize): neither scales nor sizes",
                     n->name);
        CC_RETURN_IF(sizes->kind != CC_VAL_INIT || sizes->dtype != CLCNN_I64, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (Resize): sizes '%s' must be an int64 initializer (shape "
                     "computations are folded on import)",
                     n->name, sizes->name);
        CC_RETURN_IF(sizes->numel != (size_t)nd, CLCNN_ERR_SHAPE,
                     "node '%s' (Resize): %zu sizes for the input %s", n->name, sizes->numel,
                     cc_graph_shape_str(x->dims, nd, b, sizeof b));
    }
    r->ndim = nd;
    for (int d = 0; d < nd; d++) {
        int64_t in = x->dims[d], out;
        if (sc) {
            CC_RETURN_IF(!(sc[d] > 0.0f) || !isfinite(sc[d]) || (in == BATCH && sc[d] != 1.0f),
                         CLCNN_ERR_UNSUPPORTED,
                         "node '%s' (%s): scale %g of dim %d (the batch keeps scale 1; scales "
                         "are positive)",
                         n->name, opname(n), (double)sc[d], d);
            r->scale[d] = sc[d];
            out = in == BATCH ? BATCH : (int64_t)floor((double)in * (double)sc[d]);
        } else {
            out = ((const int64_t *)sizes->data)[d];
            if (in == BATCH) {
                CC_RETURN_IF(out != CC_SHAPE_BATCH, CLCNN_ERR_UNSUPPORTED,
                             "node '%s' (Resize): size %lld for the batch dim", n->name,
                             (long long)out);
                out = BATCH;
            }
            CC_RETURN_IF(out != BATCH && (out < 0 || out > ((int64_t)1 << 31)), CLCNN_ERR_SHAPE,
                         "node '%s' (Resize): size %lld of dim %d", n->name, (long long)out, d);
            r->scale[d] = in == BATCH || in == 0 ? 1.0 : (double)out / (double)in;
        }
        CC_RETURN_IF(out != BATCH && out > ((int64_t)1 << 31), CLCNN_ERR_SHAPE,
                     "node '%s' (%s): dim %d grows to %lld", n->name, opname(n), d, (long long)out);
        r->dims[d] = out;
    }
    return CLCNN_OK;
}

clcnn_status cc_infer_resize(clcnn_graph *g, cc_gnode *n) {
    cc_resize_info r;
    CC_TRY(cc_resize_info_of(g, n, &r));
    cc_gvalue *y = &g->vals[n->out[0]];
    y->ndim = r.ndim;
    memcpy(y->dims, r.dims, (size_t)r.ndim * sizeof *r.dims);
    return CLCNN_OK;
}

void cc_node_describe_resize(const cc_gnode *n, char *desc, size_t cap) {
    const cc_op_attrs *a = &n->a;
    if (a->rs_linear)
        snprintf(desc, cap, "linear, %s", coord_names[a->rs_coord]);
    else
        snprintf(desc, cap, "nearest (%s), %s", round_names[a->rs_round], coord_names[a->rs_coord]);
}
