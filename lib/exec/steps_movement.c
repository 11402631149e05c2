/* Data movement in plans: Transpose, Slice, Pad, Expand, Tile, Concat, Split and Gather as
 * strided copies (cc_copy_nd, cl/copy_nd.cl) decided once when the plan is made. Reshape,
 * Squeeze, Unsqueeze and Flatten copy nothing: plan.c makes their outputs views.
 *
 * Concat, Split and Gather see their tensors as [outer, axis, inner] (outer: the dims
 * before the axis, inner: those after it): Concat copies each input into its rows of the
 * output, a Split step (one per output) copies its rows of the input, Gather copies one
 * run of indices that step evenly (1, 0, -1, ...) per launch. */
#include "exec/exec_internal.h"

#include "clcnn_ids.h"

#include <stdlib.h>
#include <string.h>

#define MAX_GATHER_RUNS 256 /* launches per Gather step */

static clcnn_status refuse(const cc_gnode *n, const char *why, const char *name) {
    return cc_fail(CLCNN_ERR_UNSUPPORTED, "clcnn_plan_create: node '%s' (%s): %s%s", n->name,
                   cc_op_defs[n->op].name, why, name);
}

static clcnn_status alloc_copies(cc_step *s, int k) {
    s->copies = calloc((size_t)k, sizeof *s->copies);
    CC_RETURN_IF(!s->copies, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_plan_create: out of host memory");
    s->ncopies = k;
    return CLCNN_OK;
}

/* Elements before and after dim axis of v. */
static void around(const cc_pvalue *v, int axis, size_t *outer, size_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < v->ndim; d++) {
        if (d < axis) *outer *= v->shape[d];
        if (d > axis) *inner *= v->shape[d];
    }
}

/* Copy len rows: y as [outer, ylen, inner] from row y_at gets x as [outer, xlen, inner]
 * from row x_at, every step-th row. */
static cc_copy_nd rows(size_t outer, size_t inner, size_t len, size_t ylen, size_t y_at,
                       size_t xlen, int64_t x_at, int64_t step) {
    cc_copy_nd d;
    cc_copy_nd_dense(&d, 3, (size_t[]){outer, len, inner});
    d.y_stride[0] = ylen * inner;
    d.y_off = y_at * inner;
    d.x_stride[0] = xlen * inner;
    d.lim[1] = xlen;
    d.start[1] = x_at;
    d.step[1] = step;
    return d;
}

/* One dim of a gather: the output extent, the input stride and extent it reads, where. */
typedef struct map_dim {
    size_t shape, x_stride, lim;
    int64_t start, step;
    int axis; /* the input dim (the innermost one of a merged run); -1: broadcast */
} map_dim;

/* Output dims d, d + 1 that read whole input dims axis, axis + 1 in order are one dim of
 * the dense input: merge such pairs (outermost first) until at most 4 dims remain, the
 * most cc_copy_nd takes. Returns the number of dims left. */
static int merge_dims(map_dim *m, int nd) {
    for (int d = 0; nd > CLCNN_MAX_DIMS && d + 1 < nd;) {
        const map_dim *a = &m[d], *b = &m[d + 1];
        int whole = a->start == 0 && a->step == 1 && a->shape == a->lim && b->start == 0 &&
                    b->step == 1 && b->shape == b->lim;
        if (!whole || a->axis < 0 || b->axis != a->axis + 1) {
            d++;
            continue;
        }
        m[d].shape *= b->shape;
        m[d].lim = m[d].shape;
        m[d].x_stride = b->x_stride;
        m[d].axis = b->axis;
        memmove(&m[d + 1], &m[d + 2], (size_t)(nd - d - 2) * sizeof *m);
        nd--;
    }
    return nd;
}

/* Transpose, Slice, Pad, Expand, Tile: one gather over the output. */
static clcnn_status prepare_map(clcnn_plan *p, const clcnn_graph *g, const cc_gnode *n,
                                cc_step *s) {
    cc_copy_map m;
    CC_TRY(cc_copy_map_of(g, n, &m));
    const cc_pvalue *x = &p->vals[s->in[0]], *y = &p->vals[s->out];
    size_t xs[CC_GMAX], stride = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        xs[d] = stride;
        stride *= x->shape[d];
    }
    map_dim md[CC_GMAX];
    for (int d = 0; d < y->ndim; d++) {
        int a = m.axis[d];
        md[d] = (map_dim){y->shape[d], a >= 0 ? xs[a] : 0, a >= 0 ? x->shape[a] : 1,
                          m.start[d],  m.step[d],          a};
    }
    int nd = merge_dims(md, y->ndim);
    if (nd > CLCNN_MAX_DIMS) {
        char b[96];
        return cc_fail(CLCNN_ERR_UNSUPPORTED,
                       "clcnn_plan_create: value '%s' is %s; plans hold at most %d dimensions "
                       "(node '%s' (%s) keeps more than %d apart)",
                       g->vals[s->out].name,
                       cc_graph_shape_str(g->vals[s->out].dims, g->vals[s->out].ndim, b, sizeof b),
                       CLCNN_MAX_DIMS, n->name, cc_op_defs[n->op].name, CLCNN_MAX_DIMS);
    }
    CC_TRY(alloc_copies(s, 1));
    cc_copy_nd *c = &s->copies[0].d;
    size_t shape[CLCNN_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        shape[d] = md[d].shape;
    cc_copy_nd_dense(c, nd, shape);
    for (int d = 0; d < nd; d++) {
        c->x_stride[d] = md[d].x_stride;
        c->lim[d] = md[d].lim;
        c->start[d] = md[d].start;
        c->step[d] = md[d].step;
    }
    c->mode = m.mode;
    c->value = m.value;
    return CLCNN_OK;
}

static clcnn_status prepare_concat(clcnn_plan *p, const cc_gnode *n, cc_step *s) {
    const cc_pvalue *y = &p->vals[s->out];
    int axis = (int)(n->a.axis < 0 ? n->a.axis + y->ndim : n->a.axis);
    size_t outer, inner, at = 0;
    around(y, axis, &outer, &inner);
    CC_TRY(alloc_copies(s, s->n_in));
    for (int i = 0; i < s->n_in; i++) {
        size_t len = p->vals[s->in[i]].shape[axis];
        s->copies[i].d = rows(outer, inner, len, y->shape[axis], at, len, 0, 1);
        s->copies[i].in = i;
        at += len;
    }
    return CLCNN_OK;
}

static clcnn_status prepare_split(clcnn_plan *p, const clcnn_graph *g, const cc_gnode *n,
                                  cc_step *s) {
    int axis;
    int64_t sizes[CC_SPLIT_MAX], at = 0;
    CC_TRY(cc_split_sizes(g, n, &axis, sizes));
    for (int i = 0; i < s->part; i++)
        at += sizes[i];
    const cc_pvalue *x = &p->vals[s->in[0]];
    size_t outer, inner, len = (size_t)sizes[s->part];
    around(x, axis, &outer, &inner);
    CC_TRY(alloc_copies(s, 1));
    s->copies[0].d = rows(outer, inner, len, len, 0, x->shape[axis], at, 1);
    return CLCNN_OK;
}

static clcnn_status prepare_gather(clcnn_plan *p, const clcnn_graph *g, const cc_gnode *n,
                                   cc_step *s) {
    int axis;
    const int64_t *idx;
    size_t k;
    CC_TRY(cc_gather_indices(g, n, &axis, &idx, &k));
    const cc_pvalue *x = &p->vals[s->in[0]];
    size_t outer, inner, dim = x->shape[axis];
    around(x, axis, &outer, &inner);
#define AT(j) (idx[j] < 0 ? idx[j] + (int64_t)dim : idx[j])
    /* runs of indices with a constant step: j0 .. j0 + len */
    int runs = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) CC_TRY(alloc_copies(s, runs));
        runs = 0;
        for (size_t j0 = 0, len; j0 < k; j0 += len) {
            int64_t step = j0 + 1 < k ? AT(j0 + 1) - AT(j0) : 1;
            for (len = 1; j0 + len < k && AT(j0 + len) - AT(j0 + len - 1) == step; len++)
                ;
            if (len == 1) step = 1;
            if (pass == 1) s->copies[runs].d = rows(outer, inner, len, k, j0, dim, AT(j0), step);
            runs++;
        }
        if (runs > MAX_GATHER_RUNS)
            return refuse(n, "indices that need more than 256 copies (runs of even steps)", "");
    }
#undef AT
    return CLCNN_OK;
}

clcnn_status cc_prepare_movement(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                 const int *absorbed, int na) {
    const cc_gnode *n = &g->nodes[absorbed[0]];
    (void)na;
    s->n_in = n->op == CC_OP_CONCAT ? n->n_in : 1;
    if (s->n_in > CC_STEP_MAX_IN) return refuse(n, "more than 64 inputs", "");
    for (int i = 0; i < s->n_in; i++) {
        const cc_gvalue *v = &g->vals[n->in[i]];
        if (v->kind == CC_VAL_INIT) return refuse(n, "a constant data input ", v->name);
        if (p->vals[n->in[i]].ndim < 1) return refuse(n, "a 0-D input ", v->name);
        s->in[i] = n->in[i];
    }
    s->out = n->out[s->part];
    if (p->vals[s->out].ndim < 1) return refuse(n, "a 0-D output ", g->vals[s->out].name);
    snprintf(s->desc, sizeof s->desc, "%s %s", cc_op_defs[n->op].name, n->name);
    switch (n->op) {
    case CC_OP_CONCAT:
        return prepare_concat(p, n, s);
    case CC_OP_SPLIT:
        snprintf(s->desc, sizeof s->desc, "Split %s -> %s", n->name, g->vals[s->out].name);
        return prepare_split(p, g, n, s);
    case CC_OP_GATHER:
        return prepare_gather(p, g, n, s);
    default:
        return prepare_map(p, g, n, s);
    }
}

clcnn_status cc_run_movement(clcnn_plan *p, cc_step *s) {
    clcnn_tensor *y = (clcnn_tensor *)cc_plan_tensor(p, s->out);
    for (int i = 0; i < s->ncopies; i++)
        CC_TRY(
            cc_copy_nd_run(p->dev, &s->copies[i].d, cc_plan_tensor(p, s->in[s->copies[i].in]), y));
    return CLCNN_OK;
}
