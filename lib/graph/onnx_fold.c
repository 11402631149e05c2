/* Host evaluation of the small constant sub-graphs ONNX exporters emit around shapes
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, Cast, Slice, arithmetic on
 * constants), so that the graph handed to plans holds device work only. Inputs and
 * outputs are host tensors (float32 or int64); int64 data may hold CC_ONNX_BATCH for the
 * symbolic batch, which survives copies (Gather, Concat, Slice, Squeeze, ...) but not
 * arithmetic (such a node is left to the device graph, which then refuses it). */
#include "graph/onnx_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const Onnx__AttributeProto *cc_onnx_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i] && n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = cc_onnx_attr(n, name);
    return a && a->has_i ? a->i : def;
}

static clcnn_status alloc_like(cc_htensor *o, clcnn_dtype dt, int ndim, const int64_t *dims) {
    memset(o, 0, sizeof *o);
    o->dtype = dt;
    o->ndim = ndim;
    o->numel = 1;
    for (int i = 0; i < ndim; i++) {
        CC_RETURN_IF(dims[i] < 0 || (dims[i] && o->numel > CC_ONNX_MAX_ELEMS / (uint64_t)dims[i]),
                     CLCNN_ERR_FORMAT, "a folded constant is too large");
        o->dims[i] = dims[i];
        o->numel *= (size_t)dims[i];
    }
    CC_RETURN_IF(o->numel > ((size_t)1 << 24), CLCNN_ERR_UNSUPPORTED,
                 "a constant sub-graph produces %zu elements (folding is for shapes)", o->numel);
    o->data = calloc(o->numel ? o->numel : 1, 8);
    CC_RETURN_IF(!o->data, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    return CLCNN_OK;
}

static double get(const cc_htensor *t, size_t i) {
    return t->dtype == CLCNN_F32 ? ((const float *)t->data)[i]
                                 : (double)((const int64_t *)t->data)[i];
}

/* Element i as int64; floats are truncated toward zero and saturate (NaN reads 0), as a
 * hostile file may hold any float where an index or a shape is expected. */
static int64_t geti(const cc_htensor *t, size_t i) {
    if (t->dtype != CLCNN_F32) return ((const int64_t *)t->data)[i];
    float f = ((const float *)t->data)[i];
    if (!(f == f)) return 0;
    if (f >= 9.2233720368547758e18f) return INT64_MAX;
    if (f <= -9.2233720368547758e18f) return INT64_MIN;
    return (int64_t)f;
}

static void set(cc_htensor *t, size_t i, double v, int64_t iv) {
    if (t->dtype == CLCNN_F32)
        ((float *)t->data)[i] = (float)v;
    else
        ((int64_t *)t->data)[i] = iv;
}

static int has_batch(const cc_htensor *t) {
    if (!t || t->dtype != CLCNN_I64) return 0;
    for (size_t i = 0; i < t->numel; i++)
        if (((const int64_t *)t->data)[i] == CC_ONNX_BATCH) return 1;
    return 0;
}

/* Axes from an attribute or an int64 input, normalised to [0, rank); 0 when invalid. */
static int read_axes(const Onnx__NodeProto *n, cc_htensor *in, int rank, int64_t *axes,
                     int *count) {
    const Onnx__AttributeProto *a = cc_onnx_attr(n, "axes");
    *count = 0;
    if (in) {
        for (size_t i = 0; i < in->numel && i < CLCNN_GRAPH_MAX_DIMS; i++)
            axes[(*count)++] = geti(in, i);
    } else if (a) {
        for (size_t i = 0; i < a->n_ints && i < CLCNN_GRAPH_MAX_DIMS; i++)
            axes[(*count)++] = a->ints[i];
    }
    for (int i = 0; i < *count; i++) {
        if (axes[i] < -rank || axes[i] >= rank) return 0;
        if (axes[i] < 0) axes[i] += rank;
    }
    return 1;
}

static int fold_binary(const char *op, cc_htensor *a, cc_htensor *b, cc_htensor *o) {
    if (has_batch(a) || has_batch(b) || a->dtype != b->dtype) return 0;
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int64_t da = d - (nd - a->ndim) >= 0 ? a->dims[d - (nd - a->ndim)] : 1;
        int64_t db = d - (nd - b->ndim) >= 0 ? b->dims[d - (nd - b->ndim)] : 1;
        if (da != db && da != 1 && db != 1) return 0;
        dims[d] = da == 1 ? db : da;
    }
    if (alloc_like(o, a->dtype, nd, dims) != CLCNN_OK) return -1;
    for (size_t i = 0; i < o->numel; i++) {
        size_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int d = nd - 1; d >= 0; d--) {
            size_t c = rem % (size_t)dims[d];
            rem /= (size_t)dims[d];
            int ad = d - (nd - a->ndim), bd = d - (nd - b->ndim);
            if (ad >= 0) {
                if (a->dims[ad] != 1) ia += c * sa;
                sa *= (size_t)a->dims[ad];
            }
            if (bd >= 0) {
                if (b->dims[bd] != 1) ib += c * sb;
                sb *= (size_t)b->dims[bd];
            }
        }
        if (a->dtype == CLCNN_F32) {
            double x = get(a, ia), y = get(b, ib);
            double r = !strcmp(op, "Add")   ? x + y
                       : !strcmp(op, "Sub") ? x - y
                       : !strcmp(op, "Mul") ? x * y
                                            : x / y;
            set(o, i, r, 0);
        } else {
            int64_t x = geti(a, ia), y = geti(b, ib), r = 0;
            int bad; /* division by zero or int64 overflow: left to the device graph */
            if (!strcmp(op, "Div")) {
                bad = y == 0 || (x == INT64_MIN && y == -1);
                if (!bad) r = x / y;
            } else if (!strcmp(op, "Add"))
                bad = __builtin_add_overflow(x, y, &r);
            else if (!strcmp(op, "Sub"))
                bad = __builtin_sub_overflow(x, y, &r);
            else
                bad = __builtin_mul_overflow(x, y, &r);
            if (bad) {
                cc_htensor_free(o);
                return 0;
            }
            set(o, i, 0, r);
        }
    }
    return 1;
}

/* Transpose of a constant (perm, default reversed): exporters emit it on weights
 * (PyTorch's Linear without bias as MatMul of a transposed weight). Left to the device
 * graph (0) when perm is not a permutation or the constant is larger than folding takes. */
static int fold_transpose(const Onnx__NodeProto *n, cc_htensor *x, cc_htensor *o) {
    int nd = x->ndim, perm[CLCNN_GRAPH_MAX_DIMS], seen[CLCNN_GRAPH_MAX_DIMS] = {0};
    const Onnx__AttributeProto *a = cc_onnx_attr(n, "perm");
    if (a && a->n_ints != (size_t)nd) return 0;
    for (int i = 0; i < nd; i++) {
        int64_t pi = a ? a->ints[i] : nd - 1 - i;
        if (pi < 0 || pi >= nd || seen[pi]) return 0;
        seen[pi] = 1;
        perm[i] = (int)pi;
    }
    if (x->numel > ((size_t)1 << 24)) return 0;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    size_t xs[CLCNN_GRAPH_MAX_DIMS], stride = 1; /* x's strides */
    for (int d = nd - 1; d >= 0; d--) {
        xs[d] = stride;
        stride *= (size_t)x->dims[d];
    }
    for (int i = 0; i < nd; i++)
        dims[i] = x->dims[perm[i]];
    if (alloc_like(o, x->dtype, nd, dims) != CLCNN_OK) return -1;
    size_t es = x->dtype == CLCNN_F32 ? 4 : 8, idx[CLCNN_GRAPH_MAX_DIMS] = {0};
    for (size_t i = 0; i < o->numel; i++) { /* idx: output coordinates of element i */
        size_t src = 0;
        for (int d = 0; d < nd; d++)
            src += idx[d] * xs[perm[d]];
        memcpy((char *)o->data + i * es, (const char *)x->data + src * es, es);
        for (int d = nd - 1; d >= 0 && ++idx[d] == (size_t)dims[d]; d--)
            idx[d] = 0;
    }
    return 1;
}

static int fold_gather(const Onnx__NodeProto *n, cc_htensor *data, cc_htensor *idx, cc_htensor *o) {
    if (has_batch(idx) || idx->dtype != CLCNN_I64) return 0;
    int64_t axis = attr_i(n, "axis", 0);
    if (axis < -data->ndim || axis >= data->ndim) return 0;
    if (axis < 0) axis += data->ndim;
    if (data->ndim + idx->ndim - 1 > CLCNN_GRAPH_MAX_DIMS) return 0;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < axis; d++)
        dims[nd++] = data->dims[d];
    for (int d = 0; d < idx->ndim; d++)
        dims[nd++] = idx->dims[d];
    for (int d = (int)axis + 1; d < data->ndim; d++)
        dims[nd++] = data->dims[d];
    size_t outer = 1, inner = 1, len = (size_t)data->dims[axis];
    for (int d = 0; d < axis; d++)
        outer *= (size_t)data->dims[d];
    for (int d = (int)axis + 1; d < data->ndim; d++)
        inner *= (size_t)data->dims[d];
    if (alloc_like(o, data->dtype, nd, dims) != CLCNN_OK) return -1;
    size_t k = 0;
    for (size_t a = 0; a < outer; a++)
        for (size_t j = 0; j < idx->numel; j++) {
            int64_t ix = geti(idx, j);
            if (ix < 0) ix += (int64_t)len;
            if (ix < 0 || ix >= (int64_t)len) {
                cc_htensor_free(o);
                return 0;
            }
            for (size_t b = 0; b < inner; b++, k++) {
                size_t src = (a * len + (size_t)ix) * inner + b;
                set(o, k, get(data, src), geti(data, src));
            }
        }
    return 1;
}

static int fold_concat(const Onnx__NodeProto *n, cc_htensor **in, int n_in, cc_htensor *o) {
    int rank = in[0]->ndim;
    int64_t axis = attr_i(n, "axis", 0);
    if (axis < -rank || axis >= rank) return 0;
    if (axis < 0) axis += rank;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    memcpy(dims, in[0]->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n_in; i++) {
        if (!in[i] || in[i]->ndim != rank || in[i]->dtype != in[0]->dtype) return 0;
        for (int d = 0; d < rank; d++)
            if (d != axis && in[i]->dims[d] != in[0]->dims[d]) return 0;
        dims[axis] += in[i]->dims[axis];
    }
    if (alloc_like(o, in[0]->dtype, rank, dims) != CLCNN_OK) return -1;
    size_t outer = 1, inner = 1, k = 0;
    for (int d = 0; d < axis; d++)
        outer *= (size_t)dims[d];
    for (int d = (int)axis + 1; d < rank; d++)
        inner *= (size_t)dims[d];
    for (size_t a = 0; a < outer; a++)
        for (int i = 0; i < n_in; i++) {
            size_t chunk = (size_t)in[i]->dims[axis] * inner;
            for (size_t j = 0; j < chunk; j++, k++)
                set(o, k, get(in[i], a * chunk + j), geti(in[i], a * chunk + j));
        }
    return 1;
}

/* Slice of a 1-D tensor (shape vectors) or any rank along the given axes with steps. */
static int fold_slice(const Onnx__NodeProto *n, int opset, cc_htensor **in, int n_in,
                      cc_htensor *o) {
    cc_htensor *x = in[0];
    int rank = x->ndim;
    int64_t starts[CLCNN_GRAPH_MAX_DIMS], ends[CLCNN_GRAPH_MAX_DIMS], axes[CLCNN_GRAPH_MAX_DIMS],
        steps[CLCNN_GRAPH_MAX_DIMS];
    int count = 0;
    if (opset < 10) {
        const Onnx__AttributeProto *s = cc_onnx_attr(n, "starts"), *e = cc_onnx_attr(n, "ends"),
                                   *ax = cc_onnx_attr(n, "axes");
        if (!s || !e || s->n_ints != e->n_ints || s->n_ints > CLCNN_GRAPH_MAX_DIMS) return 0;
        count = (int)s->n_ints;
        for (int i = 0; i < count; i++) {
            starts[i] = s->ints[i];
            ends[i] = e->ints[i];
            axes[i] = ax && (int)ax->n_ints == count ? ax->ints[i] : i;
            steps[i] = 1;
        }
    } else {
        if (n_in < 3 || !in[1] || !in[2] || in[1]->numel != in[2]->numel ||
            in[1]->numel > CLCNN_GRAPH_MAX_DIMS || has_batch(in[1]) || has_batch(in[2]))
            return 0;
        count = (int)in[1]->numel;
        for (int i = 0; i < count; i++) {
            starts[i] = geti(in[1], (size_t)i);
            ends[i] = geti(in[2], (size_t)i);
            axes[i] = n_in > 3 && in[3] && (int)in[3]->numel == count ? geti(in[3], (size_t)i) : i;
            steps[i] = n_in > 4 && in[4] && (int)in[4]->numel == count ? geti(in[4], (size_t)i) : 1;
        }
    }
    int64_t b[CLCNN_GRAPH_MAX_DIMS], st[CLCNN_GRAPH_MAX_DIMS], dims[CLCNN_GRAPH_MAX_DIMS];
    for (int d = 0; d < rank; d++)
        b[d] = 0, st[d] = 1, dims[d] = x->dims[d];
    for (int i = 0; i < count; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (ax < 0 || ax >= rank || steps[i] == 0) return 0;
        int64_t len = x->dims[ax], s = starts[i], e = ends[i];
        /* steps beyond the axis behave as +-(len + 1); clamping keeps the sums below exact */
        if (steps[i] > len + 1) steps[i] = len + 1;
        if (steps[i] < -(len + 1)) steps[i] = -(len + 1);
        if (s < 0) s += len;
        if (e < 0) e += len;
        if (steps[i] > 0) {
            s = s < 0 ? 0 : s > len ? len : s;
            e = e < 0 ? 0 : e > len ? len : e;
            dims[ax] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
        } else {
            s = s < 0 ? -1 : s > len - 1 ? len - 1 : s;
            e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
            dims[ax] = s > e ? (s - e - steps[i] - 1) / -steps[i] : 0;
        }
        b[ax] = s;
        st[ax] = steps[i];
    }
    for (int d = 0; d < rank; d++)
        if (dims[d] == 0) return 0; /* empty results are not folded */
    if (alloc_like(o, x->dtype, rank, dims) != CLCNN_OK) return -1;
    for (size_t i = 0; i < o->numel; i++) {
        size_t rem = i, src = 0, stride = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int64_t c = (int64_t)(rem % (size_t)dims[d]);
            rem /= (size_t)dims[d];
            src += (size_t)(b[d] + c * st[d]) * stride;
            stride *= (size_t)x->dims[d];
        }
        set(o, i, get(x, src), geti(x, src));
    }
    return 1;
}

static int copy_reshaped(cc_htensor *x, int ndim, const int64_t *dims, cc_htensor *o) {
    if (alloc_like(o, x->dtype, ndim, dims) != CLCNN_OK) return -1;
    if (o->numel != x->numel) {
        cc_htensor_free(o);
        return 0;
    }
    memcpy(o->data, x->data, x->numel * (x->dtype == CLCNN_F32 ? 4 : 8));
    return 1;
}

int cc_onnx_fold(const char *op, const Onnx__NodeProto *n, int opset, cc_htensor **in, int n_in,
                 cc_htensor *out, int n_out) {
    if (n_in < 1 || !in[0] || n_out < 1) return 0;
    cc_htensor *x = in[0];
    if (!strcmp(op, "Identity")) return copy_reshaped(x, x->ndim, x->dims, out);
    if (!strcmp(op, "Cast")) {
        int64_t to = attr_i(n, "to", 0);
        clcnn_dtype dt = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? CLCNN_F32
                         : (to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
                            to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
                             ? CLCNN_I64
                             : (clcnn_dtype)-1;
        if ((int)dt < 0 || (dt == CLCNN_F32 && has_batch(x))) return 0;
        if (alloc_like(out, dt, x->ndim, x->dims) != CLCNN_OK) return -1;
        for (size_t i = 0; i < x->numel; i++)
            set(out, i, get(x, i), geti(x, i));
        return 1;
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return n_in == 2 && in[1] ? fold_binary(op, x, in[1], out) : 0;
    if (!strcmp(op, "Gather")) return n_in == 2 && in[1] ? fold_gather(n, x, in[1], out) : 0;
    if (!strcmp(op, "Transpose")) return fold_transpose(n, x, out);
    if (!strcmp(op, "Concat")) return fold_concat(n, in, n_in, out);
    if (!strcmp(op, "Slice")) return fold_slice(n, opset, in, n_in, out);
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        int unsq = op[0] == 'U';
        int64_t axes[CLCNN_GRAPH_MAX_DIMS];
        int count = 0, rank_out = x->ndim;
        cc_htensor *ax_in = opset >= 13 && n_in > 1 ? in[1] : NULL;
        if (opset >= 13 && n_in > 1 && !in[1]) return 0;
        if (unsq) {
            const Onnx__AttributeProto *a = cc_onnx_attr(n, "axes");
            count = ax_in ? (int)ax_in->numel : a ? (int)a->n_ints : 0;
            rank_out = x->ndim + count;
            if (rank_out > CLCNN_GRAPH_MAX_DIMS) return 0;
        }
        if (!read_axes(n, ax_in, unsq ? rank_out : x->ndim, axes, &count)) return 0;
        int64_t dims[CLCNN_GRAPH_MAX_DIMS];
        int nd = 0;
        if (unsq) {
            int src = 0;
            for (int d = 0; d < rank_out; d++) {
                int is_new = 0;
                for (int k = 0; k < count; k++)
                    is_new |= axes[k] == d;
                dims[nd++] = is_new ? 1 : x->dims[src++];
            }
        } else {
            for (int d = 0; d < x->ndim; d++) {
                int drop = count == 0 ? x->dims[d] == 1 : 0;
                for (int k = 0; k < count; k++)
                    drop |= axes[k] == d;
                if (drop && x->dims[d] != 1) return 0;
                if (!drop) dims[nd++] = x->dims[d];
            }
        }
        return copy_reshaped(x, nd, dims, out);
    }
    if (!strcmp(op, "Reshape")) {
        if (n_in < 2 || !in[1] || in[1]->dtype != CLCNN_I64 ||
            in[1]->numel > CLCNN_GRAPH_MAX_DIMS || has_batch(in[1]))
            return 0;
        int64_t dims[CLCNN_GRAPH_MAX_DIMS];
        int nd = (int)in[1]->numel, infer = -1;
        size_t known = 1;
        for (int d = 0; d < nd; d++) {
            dims[d] = geti(in[1], (size_t)d);
            if (dims[d] == 0 && !attr_i(n, "allowzero", 0)) dims[d] = d < x->ndim ? x->dims[d] : 0;
            if (dims[d] == -1) {
                if (infer >= 0) return 0;
                infer = d;
            } else if (dims[d] <= 0) {
                return 0;
            } else {
                known *= (size_t)dims[d];
            }
        }
        if (infer >= 0) {
            if (!known || x->numel % known) return 0;
            dims[infer] = (int64_t)(x->numel / known);
        }
        return copy_reshaped(x, nd, dims, out);
    }
    if (!strcmp(op, "ConstantOfShape")) {
        if (x->dtype != CLCNN_I64 || has_batch(x) || x->numel > CLCNN_GRAPH_MAX_DIMS) return 0;
        const Onnx__AttributeProto *a = cc_onnx_attr(n, "value");
        cc_htensor v = {0};
        if (a && a->t) {
            if (cc_onnx_tensor(a->t, NULL, &v) != CLCNN_OK) return -1;
            if (v.numel != 1) {
                cc_htensor_free(&v);
                return 0;
            }
        }
        clcnn_dtype dt = a && a->t ? v.dtype : CLCNN_F32;
        double fv = a && a->t ? get(&v, 0) : 0.0;
        int64_t iv = a && a->t ? geti(&v, 0) : 0;
        cc_htensor_free(&v);
        int64_t dims[CLCNN_GRAPH_MAX_DIMS];
        for (size_t d = 0; d < x->numel; d++)
            dims[d] = geti(x, d);
        if (alloc_like(out, dt, (int)x->numel, dims) != CLCNN_OK) return -1;
        for (size_t i = 0; i < out->numel; i++)
            set(out, i, fv, iv);
        return 1;
    }
    return 0;
}
