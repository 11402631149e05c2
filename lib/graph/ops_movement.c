/* The data-movement family of the op table: attribute parsing and shape inference of
 * Reshape, Squeeze, Unsqueeze, Transpose, Slice, Split, Pad, Expand, Tile and Gather, as
 * ONNX opsets 13-17 define them (the older attribute forms of axes, starts/ends, split and
 * pads are read too). Plans run Reshape, Squeeze and Unsqueeze as views and the others
 * through cc_copy_map_of / cc_split_sizes / cc_gather_indices, so the graph and the plan
 * read every index the same way.
 *
 * The batch (CLCNN_GRAPH_BATCH in dim 0) is symbolic: an op may keep it in dim 0, or fail
 * with CLCNN_ERR_UNSUPPORTED where its result would depend on the batch's value. */
#include "graph/graph_internal.h"

#include "clcnn_ids.h"

#include <string.h>

#define BATCH CLCNN_GRAPH_BATCH
#define BIG ((int64_t)1 << 40) /* larger than any dimension or element count */

static const char *opname(const cc_gnode *n) {
    return cc_op_defs[n->op].name;
}

static clcnn_status data_input(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue **x) {
    *x = cc_node_in(g, n, 0);
    CC_RETURN_IF(!*x || (*x)->ndim < 0, CLCNN_ERR_INVALID_ARG, "node '%s' (%s): no data input",
                 n->name, opname(n));
    return CLCNN_OK;
}

static int has_batch(const cc_gvalue *v) {
    return v->ndim > 0 && v->dims[0] == BATCH;
}

/* The int64 values of input i, which must be an initializer, or of attribute attr (the
 * form of older opsets) when the input is absent. *count = -1 when neither is given. */
static clcnn_status const_ints(const clcnn_graph *g, const cc_gnode *n, int i, const char *attr,
                               int any_rank, const int64_t **data, int *count) {
    const cc_gvalue *v = cc_node_in(g, n, i);
    const cc_gattr *a = attr ? cc_node_attr(n, attr) : NULL;
    *data = NULL;
    *count = -1;
    if (v) {
        char b[96];
        CC_RETURN_IF(a, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s): '%s' is given as input %d and as an attribute", n->name,
                     opname(n), attr, i);
        CC_RETURN_IF(v->kind != CC_VAL_INIT || v->dtype != CLCNN_I64, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (%s): input %d '%s' must be an int64 initializer (shape "
                     "computations are folded into constants on import)",
                     n->name, opname(n), i, v->name);
        CC_RETURN_IF((!any_rank && v->ndim > 1) || v->numel > INT32_MAX, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s): input %d '%s' is %s, expected a list", n->name, opname(n), i,
                     v->name, cc_graph_shape_str(v->dims, v->ndim, b, sizeof b));
        *data = v->data;
        *count = (int)v->numel;
    } else if (a) {
        CC_RETURN_IF(a->type != CLCNN_ATTR_INTS, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s): attribute '%s' must be a list of ints", n->name, opname(n),
                     attr);
        *data = a->ints;
        *count = a->n;
    }
    return CLCNN_OK;
}

/* Normalise axis (negative counts from the end) for rank dims and mark it in seen[]. */
static clcnn_status mark_axis(const cc_gnode *n, int64_t axis, int rank, int *seen, int *out) {
    CC_TRY(cc_norm_axis(n, axis, rank, out));
    CC_RETURN_IF(seen && seen[*out]++, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (%s): axis %lld is given twice", n->name, opname(n), (long long)axis);
    return CLCNN_OK;
}

static void set_output(clcnn_graph *g, const cc_gnode *n, int i, int ndim, const int64_t *dims) {
    cc_gvalue *y = &g->vals[n->out[i]];
    y->ndim = ndim;
    memcpy(y->dims, dims, (size_t)ndim * sizeof *dims);
}

/* ---- parsing: attribute types checked when the node is added ------------------------- */

static clcnn_status attr_type(const cc_gnode *n, const char *name, clcnn_attr_type type,
                              const char *what) {
    const cc_gattr *a = cc_node_attr(n, name);
    CC_RETURN_IF(a && a->type != type, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (%s): attribute '%s' must be %s", n->name, opname(n), name, what);
    return CLCNN_OK;
}

/* The movement ops keep what they need in their attributes; n->a holds only axis. */
clcnn_status cc_parse_none_movement(cc_gnode *n) {
    memset(&n->a, 0, sizeof n->a);
    return CLCNN_OK;
}

clcnn_status cc_parse_reshape(cc_gnode *n) {
    int64_t allowzero;
    CC_TRY(cc_parse_none_movement(n));
    return cc_attr_int(n, "allowzero", 0, &allowzero);
}

clcnn_status cc_parse_squeeze(cc_gnode *n) {
    CC_TRY(cc_parse_none_movement(n));
    return attr_type(n, "axes", CLCNN_ATTR_INTS, "a list of ints");
}

clcnn_status cc_parse_transpose(cc_gnode *n) {
    CC_TRY(cc_parse_none_movement(n));
    CC_TRY(attr_type(n, "perm", CLCNN_ATTR_INTS, "a list of ints"));
    const cc_gattr *p = cc_node_attr(n, "perm");
    int seen[CC_GMAX] = {0};
    CC_RETURN_IF(p && p->n > CC_GMAX, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Transpose): perm of %d dimensions (at most %d)", n->name, p->n,
                 CC_GMAX);
    for (int d = 0; p && d < p->n; d++)
        CC_RETURN_IF(p->ints[d] < 0 || p->ints[d] >= p->n || seen[p->ints[d]]++,
                     CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Transpose): perm is no permutation of 0..%d (value %lld at %d)",
                     n->name, p->n - 1, (long long)p->ints[d], d);
    return CLCNN_OK;
}

clcnn_status cc_parse_slice(cc_gnode *n) {
    CC_TRY(cc_parse_none_movement(n));
    static const char *names[] = {"starts", "ends", "axes"};
    for (int i = 0; i < 3; i++)
        CC_TRY(attr_type(n, names[i], CLCNN_ATTR_INTS, "a list of ints"));
    return CLCNN_OK;
}

clcnn_status cc_parse_split(cc_gnode *n) {
    int64_t k;
    CC_TRY(cc_parse_none_movement(n));
    CC_TRY(attr_type(n, "split", CLCNN_ATTR_INTS, "a list of ints"));
    CC_TRY(cc_attr_int(n, "num_outputs", n->n_out, &k));
    CC_RETURN_IF(k != n->n_out, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Split): num_outputs %lld but %d outputs", n->name, (long long)k,
                 n->n_out);
    return cc_attr_int(n, "axis", 0, &n->a.axis);
}

static const char *pad_modes[] = {"constant", "edge", "reflect", "wrap"}; /* CLCNN_COPY_ID_* */

clcnn_status cc_parse_pad(cc_gnode *n) {
    float v;
    CC_TRY(cc_parse_none_movement(n));
    CC_TRY(attr_type(n, "pads", CLCNN_ATTR_INTS, "a list of ints"));
    CC_TRY(attr_type(n, "mode", CLCNN_ATTR_STRING, "a string"));
    const cc_gattr *mode = cc_node_attr(n, "mode");
    int known = !mode;
    for (int i = 0; i < 4 && mode; i++)
        known |= !strcmp(mode->s, pad_modes[i]);
    CC_RETURN_IF(!known, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Pad): mode '%s' is none of constant, edge, reflect, wrap", n->name,
                 mode->s);
    return cc_attr_float(n, "value", 0.0f, &v);
}

clcnn_status cc_parse_gather(cc_gnode *n) {
    CC_TRY(cc_parse_none_movement(n));
    return cc_attr_int(n, "axis", 0, &n->a.axis);
}

/* ---- Reshape, Squeeze, Unsqueeze: views in plans ------------------------------------- */

/* Reshape's shape: 0 copies the input dim (unless allowzero), -1 is inferred from the
 * element count, CC_SHAPE_BATCH is the batch. The batch must end up in dim 0, alone. */
clcnn_status cc_infer_reshape(clcnn_graph *g, cc_gnode *n) {
    const cc_gvalue *x;
    const int64_t *s;
    int ns;
    int64_t allowzero;
    char b1[96], b2[96];
    CC_TRY(data_input(g, n, &x));
    CC_TRY(const_ints(g, n, 1, NULL, 0, &s, &ns));
    CC_TRY(cc_attr_int(n, "allowzero", 0, &allowzero));
    CC_RETURN_IF(ns < 0, CLCNN_ERR_INVALID_ARG, "node '%s' (Reshape): no shape input", n->name);
    CC_RETURN_IF(ns > CC_GMAX, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Reshape): shape of %d dimensions (at most %d)", n->name, ns, CC_GMAX);
    int64_t y[CC_GMAX], known = 1, in_known = 1;
    int infer_at = -1, batch_at = -1;
    for (int d = 0; d < x->ndim; d++)
        if (x->dims[d] != BATCH) in_known *= x->dims[d];
    for (int i = 0; i < ns; i++) {
        int64_t v = s[i];
        if (v == 0 && !allowzero) {
            CC_RETURN_IF(i >= x->ndim, CLCNN_ERR_INVALID_ARG,
                         "node '%s' (Reshape): shape[%d] = 0 copies a dimension the input %s "
                         "does not have",
                         n->name, i, cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1));
            v = x->dims[i] == BATCH ? CC_SHAPE_BATCH : x->dims[i];
        }
        if (v == CC_SHAPE_BATCH) {
            CC_RETURN_IF(batch_at >= 0, CLCNN_ERR_UNSUPPORTED,
                         "node '%s' (Reshape): the shape holds the batch twice", n->name);
            batch_at = i;
            y[i] = BATCH;
        } else if (v == -1) {
            CC_RETURN_IF(infer_at >= 0, CLCNN_ERR_INVALID_ARG,
                         "node '%s' (Reshape): the shape has -1 at %d and %d (at most one)",
                         n->name, infer_at, i);
            infer_at = i;
        } else {
            CC_RETURN_IF(v < 1 || v > BIG / known,
                         v == 0 ? CLCNN_ERR_UNSUPPORTED : CLCNN_ERR_INVALID_ARG,
                         "node '%s' (Reshape): shape[%d] = %lld (%s)", n->name, i, (long long)v,
                         v == 0 ? "empty tensors are not supported" : "out of range");
            known *= v;
            y[i] = v;
        }
    }
    CC_RETURN_IF(batch_at >= 0 && !has_batch(x), CLCNN_ERR_SHAPE,
                 "node '%s' (Reshape): the shape holds the batch, the input %s has none", n->name,
                 cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1));
    if (has_batch(x) && batch_at < 0 && infer_at == 0 && in_known == known) {
        y[0] = BATCH; /* [N,2048,1,1] -> [-1,2048]: the -1 is the batch */
        batch_at = 0;
        infer_at = -1;
    }
    CC_RETURN_IF(has_batch(x) && batch_at != 0, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Reshape): the batch of %s does not stay alone in dimension 0 "
                 "(shape %d values%s)",
                 n->name, cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1), ns,
                 infer_at >= 0 ? " with a -1 that would absorb it" : "");
    if (infer_at >= 0) {
        CC_RETURN_IF(in_known % known, CLCNN_ERR_SHAPE,
                     "node '%s' (Reshape): %lld elements%s of %s do not divide into blocks of %lld",
                     n->name, (long long)in_known, has_batch(x) ? " per sample" : "",
                     cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1), (long long)known);
        y[infer_at] = in_known / known;
    } else {
        CC_RETURN_IF(in_known != known, CLCNN_ERR_SHAPE,
                     "node '%s' (Reshape): input %s and shape %s differ in element count", n->name,
                     cc_graph_shape_str(x->dims, x->ndim, b1, sizeof b1),
                     cc_graph_shape_str(y, ns, b2, sizeof b2));
    }
    set_output(g, n, 0, ns, y);
    return CLCNN_OK;
}

/* Squeeze and Unsqueeze: the data and the axes (input 1 from opset 13, else attribute). */
static clcnn_status data_and_axes(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue **x,
                                  const int64_t **ax, int *na) {
    CC_TRY(data_input(g, n, x));
    return const_ints(g, n, 1, "axes", 0, ax, na);
}

clcnn_status cc_infer_squeeze(clcnn_graph *g, cc_gnode *n) {
    const cc_gvalue *x;
    const int64_t *ax;
    int na, drop[CC_GMAX] = {0}, a = 0;
    CC_TRY(data_and_axes(g, n, &x, &ax, &na));
    for (int d = 0; na <= 0 && d < x->ndim; d++)
        drop[d] = x->dims[d] == 1; /* no axes: every dim of 1 (the batch is not known 1) */
    for (int i = 0; i < na; i++) {
        CC_TRY(mark_axis(n, ax[i], x->ndim, drop, &a));
        CC_RETURN_IF(x->dims[a] == BATCH, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (Squeeze): squeezes the batch (dimension 0)", n->name);
        CC_RETURN_IF(x->dims[a] != 1, CLCNN_ERR_SHAPE,
                     "node '%s' (Squeeze): dimension %d of '%s' is %lld, not 1", n->name, a,
                     x->name, (long long)x->dims[a]);
    }
    int64_t y[CC_GMAX];
    int ny = 0;
    for (int d = 0; d < x->ndim; d++)
        if (!drop[d]) y[ny++] = x->dims[d];
    set_output(g, n, 0, ny, y);
    return CLCNN_OK;
}

clcnn_status cc_infer_unsqueeze(clcnn_graph *g, cc_gnode *n) {
    const cc_gvalue *x;
    const int64_t *ax;
    int na, ins[CC_GMAX] = {0}, a = 0;
    CC_TRY(data_and_axes(g, n, &x, &ax, &na));
    CC_RETURN_IF(na < 1, CLCNN_ERR_INVALID_ARG, "node '%s' (Unsqueeze): no axes", n->name);
    int ny = x->ndim + na;
    CC_RETURN_IF(ny > CC_GMAX, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Unsqueeze): %d dimensions (at most %d)", n->name, ny, CC_GMAX);
    for (int i = 0; i < na; i++)
        CC_TRY(mark_axis(n, ax[i], ny, ins, &a));
    CC_RETURN_IF(has_batch(x) && ins[0], CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Unsqueeze): a new dimension 0 moves the batch", n->name);
    int64_t y[CC_GMAX];
    for (int d = 0, k = 0; d < ny; d++)
        y[d] = ins[d] ? 1 : x->dims[k++];
    set_output(g, n, 0, ny, y);
    return CLCNN_OK;
}

/* ---- one strided gather in plans: Transpose, Slice, Pad, Expand, Tile ----------------- */

static clcnn_status map_transpose(const cc_gnode *n, const cc_gvalue *x, cc_copy_map *m) {
    const cc_gattr *p = cc_node_attr(n, "perm");
    char b[96];
    CC_RETURN_IF(p && p->n != x->ndim, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Transpose): perm has %d values for the %d dimensions of %s", n->name,
                 p->n, x->ndim, cc_graph_shape_str(x->dims, x->ndim, b, sizeof b));
    for (int d = 0; d < x->ndim; d++) {
        m->axis[d] = p ? (int)p->ints[d] : x->ndim - 1 - d; /* default: reversed */
        m->dims[d] = x->dims[m->axis[d]];
    }
    CC_RETURN_IF(has_batch(x) && m->axis[0] != 0, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Transpose): moves the batch out of dimension 0", n->name);
    return CLCNN_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

static clcnn_status map_slice(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue *x,
                              cc_copy_map *m) {
    const int64_t *st, *en, *ax, *sp;
    int ns, ne, na, nsp, seen[CC_GMAX] = {0}, a = 0;
    CC_TRY(const_ints(g, n, 1, "starts", 0, &st, &ns));
    CC_TRY(const_ints(g, n, 2, "ends", 0, &en, &ne));
    CC_TRY(const_ints(g, n, 3, "axes", 0, &ax, &na));
    CC_TRY(const_ints(g, n, 4, NULL, 0, &sp, &nsp));
    CC_RETURN_IF(ns < 0 || ne != ns || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns),
                 CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Slice): starts, ends, axes, steps have %d, %d, %d, %d values "
                 "(starts and ends required, all of one length)",
                 n->name, ns, ne, na, nsp);
    for (int i = 0; i < ns; i++) {
        CC_TRY(mark_axis(n, ax ? ax[i] : i, x->ndim, seen, &a));
        int64_t step = sp ? sp[i] : 1, d = x->dims[a], s = st[i], e = en[i], len;
        CC_RETURN_IF(step == 0 || step < -BIG || step > BIG, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Slice): step %lld on axis %d", n->name, (long long)step, a);
        if (d == BATCH) {
            CC_RETURN_IF(s != 0 || step != 1 || e < INT32_MAX, CLCNN_ERR_UNSUPPORTED,
                         "node '%s' (Slice): slices the batch (dimension 0); only all of it "
                         "(start 0, end >= 2^31-1, step 1) is supported",
                         n->name);
            continue;
        }
        s = s < 0 ? s + d : s;
        e = e < 0 ? e + d : e;
        if (step > 0) {
            s = clamp64(s, 0, d);
            e = clamp64(e, 0, d);
            len = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = clamp64(s, 0, d - 1);
            e = clamp64(e, -1, d - 1);
            len = s > e ? (s - e - step - 1) / -step : 0;
        }
        CC_RETURN_IF(len < 1, CLCNN_ERR_SHAPE,
                     "node '%s' (Slice): axis %d (%lld) is empty after slicing from %lld to %lld "
                     "by %lld; empty tensors are not supported",
                     n->name, a, (long long)d, (long long)st[i], (long long)en[i], (long long)step);
        m->start[a] = s;
        m->step[a] = step;
        m->dims[a] = len;
    }
    return CLCNN_OK;
}

/* The pad value: input 2 (a float initializer of one element) or attribute value. */
static clcnn_status pad_value(const clcnn_graph *g, const cc_gnode *n, float *value) {
    const cc_gvalue *v = cc_node_in(g, n, 2);
    if (!v) return cc_attr_float(n, "value", 0.0f, value);
    CC_RETURN_IF(v->kind != CC_VAL_INIT || v->dtype != CLCNN_F32 || v->numel != 1,
                 CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Pad): constant_value '%s' must be a float initializer of one "
                 "element",
                 n->name, v->name);
    *value = *(const float *)v->data;
    return CLCNN_OK;
}

static clcnn_status map_pad(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue *x,
                            cc_copy_map *m) {
    const int64_t *pads, *ax;
    int np, na, seen[CC_GMAX] = {0}, a = 0;
    CC_TRY(const_ints(g, n, 1, "pads", 0, &pads, &np));
    CC_TRY(const_ints(g, n, 3, NULL, 0, &ax, &na));
    CC_TRY(pad_value(g, n, &m->value));
    const cc_gattr *mode = cc_node_attr(n, "mode");
    for (int i = 0; mode && i < 4; i++)
        if (!strcmp(mode->s, pad_modes[i])) m->mode = i;
    int k = na >= 0 ? na : x->ndim;
    CC_RETURN_IF(np != 2 * k, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Pad): pads has %d values for %d axes (2 per axis)", n->name, np, k);
    for (int i = 0; i < k; i++) {
        CC_TRY(mark_axis(n, ax ? ax[i] : i, x->ndim, seen, &a));
        int64_t lo = pads[i], hi = pads[i + k], d = x->dims[a];
        if (d == BATCH) {
            CC_RETURN_IF(lo || hi, CLCNN_ERR_UNSUPPORTED,
                         "node '%s' (Pad): pads the batch (dimension 0)", n->name);
            continue;
        }
        CC_RETURN_IF(lo < -BIG || lo > BIG || hi < -BIG || hi > BIG || d + lo + hi < 1,
                     CLCNN_ERR_SHAPE,
                     "node '%s' (Pad): pads %lld, %lld leave nothing of axis %d (%lld)", n->name,
                     (long long)lo, (long long)hi, a, (long long)d);
        m->start[a] = -lo;
        m->dims[a] = d + lo + hi;
    }
    return CLCNN_OK;
}

/* Expand: bidirectional broadcast of the input with the shape (aligned to the right). */
static clcnn_status map_expand(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue *x,
                               cc_copy_map *m) {
    const int64_t *s;
    int ns;
    char b[96];
    CC_TRY(const_ints(g, n, 1, NULL, 0, &s, &ns));
    CC_RETURN_IF(ns < 0, CLCNN_ERR_INVALID_ARG, "node '%s' (Expand): no shape input", n->name);
    int ny = ns > x->ndim ? ns : x->ndim;
    CC_RETURN_IF(ny > CC_GMAX, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Expand): %d dimensions (at most %d)", n->name, ny, CC_GMAX);
    CC_RETURN_IF(has_batch(x) && ny > x->ndim, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Expand): new leading dimensions move the batch", n->name);
    m->ndim = ny;
    for (int d = 0; d < ny; d++) {
        int xi = d - (ny - x->ndim);
        int64_t xd = xi >= 0 ? x->dims[xi] : 1, sd = d - (ny - ns) >= 0 ? s[d - (ny - ns)] : 1;
        if (sd == CC_SHAPE_BATCH) sd = BATCH;
        CC_RETURN_IF((sd < 1 && sd != BATCH) || sd > BIG || (sd == BATCH && d != 0),
                     CLCNN_ERR_INVALID_ARG, "node '%s' (Expand): shape value %lld at %d", n->name,
                     (long long)s[d - (ny - ns)], d);
        CC_RETURN_IF(xd != sd && xd != 1 && sd != 1, CLCNN_ERR_SHAPE,
                     "node '%s' (Expand): input %s does not broadcast to the shape (dimension "
                     "%d: %lld and %lld)",
                     n->name, cc_graph_shape_str(x->dims, x->ndim, b, sizeof b), d, (long long)xd,
                     (long long)sd);
        m->dims[d] = xd == 1 ? sd : xd;
        m->axis[d] = xd == 1 ? -1 : xi; /* a dim of 1 is read at 0 */
        m->step[d] = xd == 1 ? 0 : 1;
        m->start[d] = 0;
    }
    return CLCNN_OK;
}

static clcnn_status map_tile(const clcnn_graph *g, const cc_gnode *n, const cc_gvalue *x,
                             cc_copy_map *m) {
    const int64_t *r;
    int nr;
    CC_TRY(const_ints(g, n, 1, NULL, 0, &r, &nr));
    CC_RETURN_IF(nr != x->ndim, CLCNN_ERR_INVALID_ARG,
                 "node '%s' (Tile): %d repeats for %d dimensions", n->name, nr, x->ndim);
    m->mode = CLCNN_COPY_ID_WRAP;
    for (int d = 0; d < nr; d++) {
        CC_RETURN_IF(r[d] < 1 || r[d] > BIG / (x->dims[d] == BATCH ? 1 : x->dims[d]),
                     CLCNN_ERR_INVALID_ARG, "node '%s' (Tile): repeats[%d] = %lld", n->name, d,
                     (long long)r[d]);
        CC_RETURN_IF(x->dims[d] == BATCH && r[d] != 1, CLCNN_ERR_UNSUPPORTED,
                     "node '%s' (Tile): repeats the batch (dimension 0)", n->name);
        if (x->dims[d] != BATCH) m->dims[d] = x->dims[d] * r[d];
    }
    return CLCNN_OK;
}

clcnn_status cc_copy_map_of(const clcnn_graph *g, const cc_gnode *n, cc_copy_map *m) {
    const cc_gvalue *x;
    CC_TRY(data_input(g, n, &x));
    memset(m, 0, sizeof *m);
    m->ndim = x->ndim;
    m->mode = CLCNN_COPY_ID_CONSTANT;
    for (int d = 0; d < x->ndim; d++) {
        m->dims[d] = x->dims[d];
        m->axis[d] = d;
        m->step[d] = 1;
    }
    switch (n->op) {
    case CC_OP_TRANSPOSE:
        return map_transpose(n, x, m);
    case CC_OP_SLICE:
        return map_slice(g, n, x, m);
    case CC_OP_PAD:
        return map_pad(g, n, x, m);
    case CC_OP_EXPAND:
        return map_expand(g, n, x, m);
    case CC_OP_TILE:
        return map_tile(g, n, x, m);
    default:
        return cc_fail(CLCNN_ERR_INVALID_ARG, "node '%s' (%s) is no strided gather", n->name,
                       opname(n));
    }
}

clcnn_status cc_infer_copy_map(clcnn_graph *g, cc_gnode *n) {
    cc_copy_map m;
    CC_TRY(cc_copy_map_of(g, n, &m));
    set_output(g, n, 0, m.ndim, m.dims);
    return CLCNN_OK;
}

/* ---- Split and Gather: several strided copies in plans ------------------------------- */

clcnn_status cc_split_sizes(const clcnn_graph *g, const cc_gnode *n, int *axis,
                            int64_t sizes[CC_SPLIT_MAX]) {
    const cc_gvalue *x;
    const int64_t *s;
    int ns, k = n->n_out;
    CC_TRY(data_input(g, n, &x));
    CC_TRY(mark_axis(n, n->a.axis, x->ndim, NULL, axis));
    CC_TRY(const_ints(g, n, 1, "split", 0, &s, &ns));
    int64_t d = x->dims[*axis], sum = 0;
    CC_RETURN_IF(d == BATCH, CLCNN_ERR_UNSUPPORTED, "node '%s' (Split): splits the batch", n->name);
    if (ns >= 0) {
        CC_RETURN_IF(ns != k, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Split): split has %d values for %d outputs", n->name, ns, k);
        for (int i = 0; i < k; i++) {
            CC_RETURN_IF(s[i] < 1 || s[i] > d, CLCNN_ERR_INVALID_ARG,
                         "node '%s' (Split): split[%d] = %lld (empty tensors are not "
                         "supported)",
                         n->name, i, (long long)s[i]);
            sizes[i] = s[i];
            sum += s[i];
        }
        CC_RETURN_IF(sum != d, CLCNN_ERR_SHAPE,
                     "node '%s' (Split): the parts add up to %lld, axis %d of '%s' is %lld",
                     n->name, (long long)sum, *axis, x->name, (long long)d);
        return CLCNN_OK;
    }
    /* equal parts; opset 18's num_outputs lets the last one be smaller */
    int64_t part = (d + k - 1) / k;
    CC_RETURN_IF(d % k && !cc_node_attr(n, "num_outputs"), CLCNN_ERR_SHAPE,
                 "node '%s' (Split): axis %d of '%s' (%lld) does not split into %d equal parts",
                 n->name, *axis, x->name, (long long)d, k);
    CC_RETURN_IF(part * (k - 1) >= d, CLCNN_ERR_SHAPE,
                 "node '%s' (Split): axis %d of '%s' (%lld) is too short for %d parts", n->name,
                 *axis, x->name, (long long)d, k);
    for (int i = 0; i < k; i++)
        sizes[i] = i < k - 1 ? part : d - part * (k - 1);
    return CLCNN_OK;
}

clcnn_status cc_infer_split(clcnn_graph *g, cc_gnode *n) {
    const cc_gvalue *x = cc_node_in(g, n, 0);
    int axis = 0;
    int64_t sizes[CC_SPLIT_MAX], y[CC_GMAX];
    CC_TRY(cc_split_sizes(g, n, &axis, sizes));
    memcpy(y, x->dims, sizeof y);
    for (int i = 0; i < n->n_out; i++) {
        y[axis] = sizes[i];
        set_output(g, n, i, x->ndim, y);
    }
    return CLCNN_OK;
}

clcnn_status cc_gather_indices(const clcnn_graph *g, const cc_gnode *n, int *axis,
                               const int64_t **idx, size_t *count) {
    const cc_gvalue *x;
    int ni;
    CC_TRY(data_input(g, n, &x));
    CC_TRY(mark_axis(n, n->a.axis, x->ndim, NULL, axis));
    CC_TRY(const_ints(g, n, 1, NULL, 1, idx, &ni));
    CC_RETURN_IF(ni < 0, CLCNN_ERR_INVALID_ARG, "node '%s' (Gather): no indices", n->name);
    int64_t d = x->dims[*axis];
    CC_RETURN_IF(d == BATCH, CLCNN_ERR_UNSUPPORTED, "node '%s' (Gather): gathers along the batch",
                 n->name);
    for (int i = 0; i < ni; i++)
        CC_RETURN_IF((*idx)[i] < -d || (*idx)[i] >= d, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (Gather): index %lld (at %d) is out of range for axis %d (%lld)",
                     n->name, (long long)(*idx)[i], i, *axis, (long long)d);
    *count = (size_t)ni;
    return CLCNN_OK;
}

/* Output: data dims before the axis, the indices' dims, data dims after the axis. */
clcnn_status cc_infer_gather(clcnn_graph *g, cc_gnode *n) {
    int axis = 0;
    const int64_t *idx;
    size_t count;
    CC_TRY(cc_gather_indices(g, n, &axis, &idx, &count));
    const cc_gvalue *x = cc_node_in(g, n, 0), *iv = cc_node_in(g, n, 1);
    int ny = x->ndim - 1 + iv->ndim;
    CC_RETURN_IF(ny > CC_GMAX, CLCNN_ERR_UNSUPPORTED,
                 "node '%s' (Gather): %d dimensions (at most %d)", n->name, ny, CC_GMAX);
    int64_t y[CC_GMAX];
    memcpy(y, x->dims, (size_t)axis * sizeof *y);
    memcpy(y + axis, iv->dims, (size_t)iv->ndim * sizeof *y);
    memcpy(y + axis + iv->ndim, x->dims + axis + 1, (size_t)(x->ndim - axis - 1) * sizeof *y);
    set_output(g, n, 0, ny, y);
    return CLCNN_OK;
}
