/* The graph container: adding inputs, initializers, nodes and outputs (everything
 * copied), resolving names, topological order with cycle and dangling-input checks,
 * shape inference through the op table, inspection, clone and undo. */
#include "graph/graph_internal.h"

#include <stdlib.h>
#include <string.h>

clcnn_status clcnn_graph_create(clcnn_graph **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_graph_create: out is NULL");
    *out = calloc(1, sizeof **out);
    CC_RETURN_IF(!*out, CLCNN_ERR_OUT_OF_MEMORY, "clcnn_graph_create: out of host memory");
    return CLCNN_OK;
}

static void free_attr(cc_gattr *a) {
    free(a->name);
    free(a->ints);
    free(a->floats);
    free(a->s);
}

static void free_node(cc_gnode *n) {
    for (int i = 0; i < n->n_in; i++)
        free(n->in_names[i]);
    for (int i = 0; i < n->n_out; i++)
        free(n->out_names[i]);
    for (int i = 0; i < n->nattrs; i++)
        free_attr(&n->attrs[i]);
    free(n->in_names);
    free(n->out_names);
    free(n->in);
    free(n->out);
    free(n->attrs);
    free(n->name);
}

static void free_value(cc_gvalue *v) {
    free(v->name);
    free(v->data);
}

void cc_graph_truncate(clcnn_graph *g, int nnodes, int nvals, int noutputs) {
    while (g->nnodes > nnodes)
        free_node(&g->nodes[--g->nnodes]);
    while (g->nvals > nvals)
        free_value(&g->vals[--g->nvals]);
    while (g->noutputs > noutputs)
        free(g->out_names[--g->noutputs]);
    g->checked = 0;
}

void cc_graph_clear_outputs(clcnn_graph *g) {
    cc_graph_truncate(g, g->nnodes, g->nvals, 0);
}

void clcnn_graph_free(clcnn_graph *g) {
    if (!g) return;
    cc_graph_truncate(g, 0, 0, 0);
    free(g->vals);
    free(g->nodes);
    free(g->order);
    free(g->out_names);
    free(g->outputs);
    free(g);
}

int cc_graph_find(const clcnn_graph *g, const char *name) {
    for (int i = 0; i < g->nvals; i++)
        if (!strcmp(g->vals[i].name, name)) return i;
    return -1;
}

const char *cc_graph_shape_str(const int64_t *dims, int ndim, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++) {
        if (dims[i] == CLCNN_GRAPH_BATCH)
            used += (size_t)snprintf(buf + used, cap - used, "%sN", i ? "," : "");
        else
            used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "",
                                     (long long)dims[i]);
    }
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

size_t cc_graph_numel(const int64_t *dims, int ndim, int64_t batch) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        int64_t d = dims[i] == CLCNN_GRAPH_BATCH ? batch : dims[i];
        if (d < 0) return 0;
        if (d == 0) return 0;
        if (n > SIZE_MAX / (size_t)d) return 0;
        n *= (size_t)d;
    }
    return n;
}

static char *dup_str(const char *s) {
    return strdup(s ? s : "");
}

/* A new value slot named name (copied); index or -1 when out of memory. */
static int new_value(clcnn_graph *g, const char *name) {
    if (g->nvals == g->capv) {
        int cap = g->capv ? 2 * g->capv : 32;
        cc_gvalue *v = realloc(g->vals, (size_t)cap * sizeof *v);
        if (!v) return -1;
        g->vals = v;
        g->capv = cap;
    }
    cc_gvalue *v = &g->vals[g->nvals];
    memset(v, 0, sizeof *v);
    v->name = dup_str(name);
    if (!v->name) return -1;
    v->producer = -1;
    v->ndim = -1;
    return g->nvals++;
}

static clcnn_status check_new_name(const clcnn_graph *g, const char *fn, const char *name) {
    CC_RETURN_IF(!name || !*name, CLCNN_ERR_INVALID_ARG, "%s: empty value name", fn);
    CC_RETURN_IF(cc_graph_find(g, name) >= 0, CLCNN_ERR_INVALID_ARG,
                 "%s: a value named '%s' exists already (names are unique across inputs, "
                 "initializers and node outputs)",
                 fn, name);
    return CLCNN_OK;
}

static clcnn_status check_dims(const char *fn, const char *name, int ndim, const int64_t *dims,
                               int allow_batch) {
    CC_RETURN_IF(ndim < 0 || ndim > CC_GMAX || (ndim > 0 && !dims), CLCNN_ERR_SHAPE,
                 "%s: '%s' has %d dimensions (0..%d supported)", fn, name, ndim, CC_GMAX);
    for (int i = 0; i < ndim; i++) {
        int batch = allow_batch && i == 0 && dims[i] == CLCNN_GRAPH_BATCH;
        CC_RETURN_IF(!batch && dims[i] < 1, CLCNN_ERR_SHAPE,
                     "%s: '%s' dimension %d is %lld (must be >= 1%s)", fn, name, i,
                     (long long)dims[i], allow_batch && i == 0 ? ", or -1 for the batch" : "");
    }
    return CLCNN_OK;
}

static clcnn_status add_source(clcnn_graph *g, const char *fn, const char *name, clcnn_dtype dtype,
                               int ndim, const int64_t *dims, cc_value_kind kind,
                               const void *data) {
    CC_RETURN_IF(!g, CLCNN_ERR_INVALID_ARG, "%s: graph is NULL", fn);
    CC_TRY(check_new_name(g, fn, name));
    CC_TRY(check_dims(fn, name, ndim, dims, kind == CC_VAL_INPUT));
    CC_RETURN_IF(dtype != CLCNN_F32 && dtype != CLCNN_I32 && dtype != CLCNN_I64,
                 CLCNN_ERR_UNSUPPORTED, "%s: '%s' has an unsupported dtype %d", fn, name,
                 (int)dtype);
    size_t numel = cc_graph_numel(dims, ndim, 1);
    CC_RETURN_IF(kind == CC_VAL_INIT && numel == 0, CLCNN_ERR_SHAPE,
                 "%s: '%s' has too many elements", fn, name);
    void *copy = NULL;
    if (kind == CC_VAL_INIT) {
        size_t esz = cc_dtype_size(dtype);
        CC_RETURN_IF(numel > SIZE_MAX / esz, CLCNN_ERR_SHAPE, "%s: '%s' is too large", fn, name);
        copy = data ? malloc(numel * esz) : calloc(numel, esz);
        CC_RETURN_IF(!copy, CLCNN_ERR_OUT_OF_MEMORY, "%s: no host memory for '%s' (%zu bytes)", fn,
                     name, numel * esz);
        if (data) memcpy(copy, data, numel * esz);
    }
    int vi = new_value(g, name);
    if (vi < 0) {
        free(copy);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
    }
    cc_gvalue *v = &g->vals[vi];
    v->kind = kind;
    v->dtype = dtype;
    v->ndim = ndim;
    if (ndim > 0) memcpy(v->dims, dims, (size_t)ndim * sizeof *dims);
    v->data = copy;
    v->numel = numel;
    g->checked = 0;
    return CLCNN_OK;
}

clcnn_status clcnn_graph_add_input(clcnn_graph *g, const char *name, clcnn_dtype dtype, int ndim,
                                   const int64_t *dims) {
    return add_source(g, "clcnn_graph_add_input", name, dtype, ndim, dims, CC_VAL_INPUT, NULL);
}

clcnn_status clcnn_graph_add_initializer(clcnn_graph *g, const char *name, clcnn_dtype dtype,
                                         int ndim, const int64_t *dims, const void *data) {
    return add_source(g, "clcnn_graph_add_initializer", name, dtype, ndim, dims, CC_VAL_INIT, data);
}

static clcnn_status copy_attrs(cc_gnode *n, int n_attrs, const clcnn_attr *attrs) {
    n->attrs = calloc((size_t)(n_attrs > 0 ? n_attrs : 1), sizeof *n->attrs);
    CC_RETURN_IF(!n->attrs, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n_attrs; i++) {
        const clcnn_attr *a = &attrs[i];
        cc_gattr *d = &n->attrs[n->nattrs++];
        CC_RETURN_IF(!a->name || !*a->name, CLCNN_ERR_INVALID_ARG,
                     "node '%s': attribute %d has no name", n->name, i);
        for (int j = 0; j < i; j++)
            CC_RETURN_IF(!strcmp(attrs[j].name, a->name), CLCNN_ERR_INVALID_ARG,
                         "node '%s': attribute '%s' given twice", n->name, a->name);
        d->name = dup_str(a->name);
        d->type = a->type;
        d->i = a->i;
        d->f = a->f;
        CC_RETURN_IF(!d->name, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        switch (a->type) {
        case CLCNN_ATTR_INT:
        case CLCNN_ATTR_FLOAT:
            break;
        case CLCNN_ATTR_INTS:
        case CLCNN_ATTR_FLOATS: {
            CC_RETURN_IF(a->n < 0 || a->n > 4096 || (a->n > 0 && !a->ints && !a->floats),
                         CLCNN_ERR_INVALID_ARG, "node '%s': attribute '%s' has %d values", n->name,
                         a->name, a->n);
            d->n = a->n;
            if (a->type == CLCNN_ATTR_INTS) {
                CC_RETURN_IF(a->n > 0 && !a->ints, CLCNN_ERR_INVALID_ARG,
                             "node '%s': attribute '%s' has no values", n->name, a->name);
                d->ints = malloc((size_t)(a->n ? a->n : 1) * sizeof *d->ints);
                CC_RETURN_IF(!d->ints, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
                if (a->n) memcpy(d->ints, a->ints, (size_t)a->n * sizeof *d->ints);
            } else {
                CC_RETURN_IF(a->n > 0 && !a->floats, CLCNN_ERR_INVALID_ARG,
                             "node '%s': attribute '%s' has no values", n->name, a->name);
                d->floats = malloc((size_t)(a->n ? a->n : 1) * sizeof *d->floats);
                CC_RETURN_IF(!d->floats, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
                if (a->n) memcpy(d->floats, a->floats, (size_t)a->n * sizeof *d->floats);
            }
            break;
        }
        case CLCNN_ATTR_STRING:
            d->s = dup_str(a->s);
            CC_RETURN_IF(!d->s, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        default:
            return cc_fail(CLCNN_ERR_INVALID_ARG, "node '%s': attribute '%s' has type %d", n->name,
                           a->name, (int)a->type);
        }
    }
    return CLCNN_OK;
}

static int find_op(const char *op_type) {
    for (int i = 0; i < CC_OP_COUNT; i++)
        if (!strcmp(cc_op_defs[i].name, op_type)) return i;
    return -1;
}

const char *clcnn_graph_op_name(int i) {
    return i >= 0 && i < CC_OP_COUNT ? cc_op_defs[i].name : NULL;
}

static clcnn_status fill_node(clcnn_graph *g, cc_gnode *n, const char *name, int n_in,
                              const char *const *inputs, int n_out, const char *const *outputs,
                              int n_attrs, const clcnn_attr *attrs) {
    char gen[64];
    if (!name || !*name) {
        snprintf(gen, sizeof gen, "%s_%d", cc_op_defs[n->op].name, g->next_id);
        name = gen;
    }
    n->name = dup_str(name);
    n->in_names = calloc((size_t)n_in + 1, sizeof *n->in_names);
    n->out_names = calloc((size_t)n_out + 1, sizeof *n->out_names);
    n->in = calloc((size_t)n_in + 1, sizeof *n->in);
    n->out = calloc((size_t)n_out + 1, sizeof *n->out);
    CC_RETURN_IF(!n->name || !n->in_names || !n->out_names || !n->in || !n->out,
                 CLCNN_ERR_OUT_OF_MEMORY, "clcnn_graph_add_node: out of host memory");
    for (int i = 0; i < n_in; i++) {
        n->in_names[i] = dup_str(inputs[i]);
        CC_RETURN_IF(!n->in_names[i], CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        n->n_in = i + 1;
        n->in[i] = -1;
    }
    for (int i = 0; i < n_out; i++) {
        CC_TRY(check_new_name(g, "clcnn_graph_add_node", outputs[i]));
        for (int j = 0; j < i; j++)
            CC_RETURN_IF(!strcmp(outputs[i], outputs[j]), CLCNN_ERR_INVALID_ARG,
                         "clcnn_graph_add_node: node '%s' names output '%s' twice", n->name,
                         outputs[i]);
        n->out_names[i] = dup_str(outputs[i]);
        CC_RETURN_IF(!n->out_names[i], CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        n->n_out = i + 1;
    }
    CC_TRY(copy_attrs(n, n_attrs, attrs));
    return cc_op_defs[n->op].parse(n);
}

clcnn_status clcnn_graph_add_node(clcnn_graph *g, const char *op_type, const char *name, int n_in,
                                  const char *const *inputs, int n_out, const char *const *outputs,
                                  int n_attrs, const clcnn_attr *attrs) {
    const char *fn = "clcnn_graph_add_node";
    CC_RETURN_IF(!g || !op_type, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", fn);
    int op = find_op(op_type);
    CC_RETURN_IF(op < 0, CLCNN_ERR_UNSUPPORTED,
                 "%s: op type '%s' (node '%s') is not supported (clcnn_graph_op_name lists "
                 "the supported ones)",
                 fn, op_type, name ? name : "");
    const cc_op_def *def = &cc_op_defs[op];
    CC_RETURN_IF(
        n_in < def->min_in || n_in > def->max_in || n_out < def->min_out || n_out > def->max_out ||
            (n_in && !inputs) || !outputs || (n_attrs > 0 && !attrs) || n_attrs < 0,
        CLCNN_ERR_INVALID_ARG,
        "%s: %s node '%s' has %d inputs and %d outputs (takes %d..%d and %d..%d)", fn, op_type,
        name ? name : "", n_in, n_out, def->min_in, def->max_in, def->min_out, def->max_out);
    for (int i = 0; i < n_out; i++)
        CC_RETURN_IF(!outputs[i] || !*outputs[i], CLCNN_ERR_INVALID_ARG,
                     "%s: %s node '%s' output %d has no name", fn, op_type, name ? name : "", i);
    if (g->nnodes == g->capn) {
        int cap = g->capn ? 2 * g->capn : 32;
        cc_gnode *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        CC_RETURN_IF(!nodes, CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
        g->nodes = nodes;
        g->capn = cap;
    }
    int nvals = g->nvals;
    cc_gnode *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->op = (cc_op)op;
    clcnn_status s = fill_node(g, n, name, n_in, inputs ? inputs : (const char *const[]){""}, n_out,
                               outputs, n_attrs, attrs);
    for (int i = 0; s == CLCNN_OK && i < n_out; i++) {
        int vi = new_value(g, outputs[i]);
        if (vi < 0) {
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory", fn);
            break;
        }
        g->vals[vi].kind = CC_VAL_NODE;
        g->vals[vi].dtype = CLCNN_F32;
        g->vals[vi].producer = g->nnodes;
        n->out[i] = vi;
    }
    if (s != CLCNN_OK) {
        free_node(n);
        cc_graph_truncate(g, g->nnodes, nvals, g->noutputs);
        return s;
    }
    g->nnodes++;
    g->next_id++;
    g->checked = 0;
    return CLCNN_OK;
}

clcnn_status clcnn_graph_add_output(clcnn_graph *g, const char *name) {
    CC_RETURN_IF(!g || !name || !*name, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_add_output: NULL or empty argument");
    for (int i = 0; i < g->noutputs; i++)
        CC_RETURN_IF(!strcmp(g->out_names[i], name), CLCNN_ERR_INVALID_ARG,
                     "clcnn_graph_add_output: '%s' is an output already", name);
    if (g->noutputs == g->capo) {
        int cap = g->capo ? 2 * g->capo : 4;
        char **names = realloc(g->out_names, (size_t)cap * sizeof *names);
        CC_RETURN_IF(!names, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        g->out_names = names;
        int *outs = realloc(g->outputs, (size_t)cap * sizeof *outs);
        CC_RETURN_IF(!outs, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        g->outputs = outs;
        g->capo = cap;
    }
    g->out_names[g->noutputs] = dup_str(name);
    CC_RETURN_IF(!g->out_names[g->noutputs], CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    g->outputs[g->noutputs++] = -1;
    g->checked = 0;
    return CLCNN_OK;
}

/* Kahn's algorithm, taking ready nodes in insertion order so the order is stable. */
static clcnn_status topo_sort(clcnn_graph *g) {
    int nn = g->nnodes;
    int *pending = calloc((size_t)nn + 1, sizeof *pending);
    int *order = malloc(((size_t)nn + 1) * sizeof *order);
    if (!pending || !order) {
        free(pending);
        free(order);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_graph_check: out of host memory");
    }
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int v = g->nodes[i].in[j];
            if (v >= 0 && g->vals[v].producer >= 0) pending[i]++;
        }
    int done = 0;
    /* repeated scans keep insertion order among ready nodes; graphs are hundreds of nodes */
    char *emitted = calloc((size_t)nn + 1, 1);
    if (!emitted) {
        free(pending);
        free(order);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_graph_check: out of host memory");
    }
    int progress = 1;
    int start = 0;
    while (done < nn && progress) {
        progress = 0;
        for (int i = start; i < nn; i++) {
            if (emitted[i] || pending[i]) continue;
            emitted[i] = 1;
            order[done++] = i;
            progress = 1;
            for (int k = 0; k < g->nodes[i].n_out; k++) {
                int v = g->nodes[i].out[k];
                for (int c = 0; c < nn; c++)
                    for (int j = 0; j < g->nodes[c].n_in; j++)
                        if (g->nodes[c].in[j] == v) pending[c]--;
            }
            break; /* rescan from the first unemitted node */
        }
        while (start < nn && emitted[start])
            start++;
    }
    clcnn_status s = CLCNN_OK;
    if (done < nn) {
        int i = 0;
        while (emitted[i])
            i++;
        s = cc_fail(CLCNN_ERR_INVALID_ARG,
                    "clcnn_graph_check: the graph has a cycle through node '%s' (%s)",
                    g->nodes[i].name, cc_op_defs[g->nodes[i].op].name);
        free(order);
    } else {
        free(g->order);
        g->order = order;
    }
    free(pending);
    free(emitted);
    return s;
}

clcnn_status clcnn_graph_check(clcnn_graph *g) {
    CC_RETURN_IF(!g, CLCNN_ERR_INVALID_ARG, "clcnn_graph_check: graph is NULL");
    g->checked = 0;
    CC_RETURN_IF(g->noutputs == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_check: the graph has no "
                 "outputs (clcnn_graph_add_output)");
    for (int i = 0; i < g->nnodes; i++) {
        cc_gnode *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            n->in[j] = -1;
            if (!n->in_names[j][0]) continue;
            n->in[j] = cc_graph_find(g, n->in_names[j]);
            CC_RETURN_IF(n->in[j] < 0, CLCNN_ERR_INVALID_ARG,
                         "clcnn_graph_check: node '%s' (%s) reads '%s', which is no input, "
                         "initializer or node output",
                         n->name, cc_op_defs[n->op].name, n->in_names[j]);
        }
    }
    for (int i = 0; i < g->noutputs; i++) {
        g->outputs[i] = cc_graph_find(g, g->out_names[i]);
        CC_RETURN_IF(g->outputs[i] < 0, CLCNN_ERR_INVALID_ARG,
                     "clcnn_graph_check: output '%s' is no value of the graph", g->out_names[i]);
    }
    CC_TRY(topo_sort(g));
    for (int i = 0; i < g->nnodes; i++) {
        cc_gnode *n = &g->nodes[g->order[i]];
        for (int j = 0; j < n->n_out; j++)
            g->vals[n->out[j]].ndim = -1;
        CC_TRY(cc_op_defs[n->op].infer(g, n));
    }
    g->checked = 1;
    return CLCNN_OK;
}

clcnn_status cc_graph_infer_node(clcnn_graph *g, int i) {
    cc_gnode *n = &g->nodes[i];
    for (int j = 0; j < n->n_in; j++) {
        n->in[j] = -1;
        if (!n->in_names[j][0]) continue;
        n->in[j] = cc_graph_find(g, n->in_names[j]);
        CC_RETURN_IF(n->in[j] < 0 || g->vals[n->in[j]].ndim < 0, CLCNN_ERR_INVALID_ARG,
                     "node '%s' (%s) reads '%s', which no earlier node, input or initializer "
                     "provides",
                     n->name, cc_op_defs[n->op].name, n->in_names[j]);
    }
    return cc_op_defs[n->op].infer(g, n);
}

/* ---- inspection ---------------------------------------------------------------------- */

int clcnn_graph_num_nodes(const clcnn_graph *g) {
    return g ? g->nnodes : 0;
}

clcnn_status clcnn_graph_node_info(const clcnn_graph *g, int i, clcnn_node_info *out) {
    CC_RETURN_IF(!g || !out, CLCNN_ERR_INVALID_ARG, "clcnn_graph_node_info: NULL argument");
    CC_RETURN_IF(!g->checked, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_node_info: call clcnn_graph_check first");
    CC_RETURN_IF(i < 0 || i >= g->nnodes, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_node_info: node %d of %d", i, g->nnodes);
    const cc_gnode *n = &g->nodes[g->order[i]];
    memset(out, 0, sizeof *out);
    out->op_type = cc_op_defs[n->op].name;
    out->name = n->name;
    out->n_in = n->n_in;
    out->n_out = n->n_out;
    for (int j = 0; j < n->n_in && j < 8; j++)
        out->inputs[j] = n->in_names[j];
    for (int j = 0; j < n->n_out && j < 4; j++)
        out->outputs[j] = n->out_names[j];
    const cc_gvalue *y = &g->vals[n->out[0]];
    out->ndim = y->ndim;
    memcpy(out->dims, y->dims, sizeof out->dims);
    cc_node_describe(g, n, out->desc, sizeof out->desc, &out->flops, &out->params);
    return CLCNN_OK;
}

static int count_inputs(const clcnn_graph *g, int stop_at, int *index_of) {
    int k = 0;
    for (int i = 0; g && i < g->nvals; i++) {
        if (g->vals[i].kind != CC_VAL_INPUT) continue;
        if (k == stop_at) {
            *index_of = i;
            return k;
        }
        k++;
    }
    return k;
}

int clcnn_graph_num_inputs(const clcnn_graph *g) {
    int dummy;
    return count_inputs(g, -1, &dummy);
}

const char *clcnn_graph_input_name(const clcnn_graph *g, int i) {
    int vi = -1;
    if (i < 0) return NULL;
    count_inputs(g, i, &vi);
    return vi >= 0 ? g->vals[vi].name : NULL;
}

int clcnn_graph_num_outputs(const clcnn_graph *g) {
    return g ? g->noutputs : 0;
}

const char *clcnn_graph_output_name(const clcnn_graph *g, int i) {
    return g && i >= 0 && i < g->noutputs ? g->out_names[i] : NULL;
}

clcnn_status clcnn_graph_value_shape(const clcnn_graph *g, const char *name, int *ndim,
                                     int64_t dims[CLCNN_GRAPH_MAX_DIMS]) {
    CC_RETURN_IF(!g || !name || !ndim || !dims, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_value_shape: NULL argument");
    int v = cc_graph_find(g, name);
    CC_RETURN_IF(v < 0, CLCNN_ERR_NOT_FOUND, "clcnn_graph_value_shape: no value '%s'", name);
    CC_RETURN_IF(g->vals[v].ndim < 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_value_shape: '%s' has no shape yet (call clcnn_graph_check)", name);
    *ndim = g->vals[v].ndim;
    memcpy(dims, g->vals[v].dims, sizeof(int64_t) * CLCNN_GRAPH_MAX_DIMS);
    return CLCNN_OK;
}

const void *clcnn_graph_initializer(const clcnn_graph *g, const char *name, size_t *numel) {
    int v = g && name ? cc_graph_find(g, name) : -1;
    if (v < 0 || g->vals[v].kind != CC_VAL_INIT) return NULL;
    if (numel) *numel = g->vals[v].numel;
    return g->vals[v].data;
}

clcnn_status clcnn_graph_set_initializer(clcnn_graph *g, const char *name, const void *src,
                                         size_t bytes) {
    CC_RETURN_IF(!g || !name || !src, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_set_initializer: NULL argument");
    int v = cc_graph_find(g, name);
    CC_RETURN_IF(v < 0 || g->vals[v].kind != CC_VAL_INIT, CLCNN_ERR_NOT_FOUND,
                 "clcnn_graph_set_initializer: no initializer '%s'", name);
    size_t want = g->vals[v].numel * cc_dtype_size(g->vals[v].dtype);
    CC_RETURN_IF(bytes != want, CLCNN_ERR_SHAPE,
                 "clcnn_graph_set_initializer: '%s' holds %zu bytes, %zu given", name, want, bytes);
    memcpy(g->vals[v].data, src, bytes);
    return CLCNN_OK;
}

/* ---- clone ----------------------------------------------------------------------------- */

clcnn_status cc_graph_clone(const clcnn_graph *g, clcnn_graph **out) {
    CC_RETURN_IF(!g || !out, CLCNN_ERR_INVALID_ARG, "cc_graph_clone: NULL argument");
    *out = NULL;
    clcnn_graph *c = NULL;
    CC_TRY(clcnn_graph_create(&c));
    clcnn_status s = CLCNN_OK;
    for (int i = 0; s == CLCNN_OK && i < g->nvals; i++) {
        const cc_gvalue *v = &g->vals[i];
        if (v->kind == CC_VAL_INPUT)
            s = clcnn_graph_add_input(c, v->name, v->dtype, v->ndim, v->dims);
        else if (v->kind == CC_VAL_INIT)
            s = clcnn_graph_add_initializer(c, v->name, v->dtype, v->ndim, v->dims, v->data);
    }
    for (int i = 0; s == CLCNN_OK && i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[i];
        clcnn_attr attrs[32];
        int na = n->nattrs < 32 ? n->nattrs : 32;
        for (int j = 0; j < na; j++) {
            const cc_gattr *a = &n->attrs[j];
            attrs[j] = (clcnn_attr){a->name, a->type, a->i, a->f, a->ints, a->floats, a->n, a->s};
        }
        s = clcnn_graph_add_node(c, cc_op_defs[n->op].name, n->name, n->n_in,
                                 (const char *const *)n->in_names, n->n_out,
                                 (const char *const *)n->out_names, na, attrs);
    }
    for (int i = 0; s == CLCNN_OK && i < g->noutputs; i++)
        s = clcnn_graph_add_output(c, g->out_names[i]);
    if (s == CLCNN_OK && g->checked) s = clcnn_graph_check(c);
    if (s != CLCNN_OK) {
        clcnn_graph_free(c);
        return s;
    }
    c->next_id = g->next_id;
    *out = c;
    return CLCNN_OK;
}
