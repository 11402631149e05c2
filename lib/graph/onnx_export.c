/* ONNX export: a checked graph to a ModelProto at opset 17 (IR 8), packed by the
 * protobuf-c code generated from onnx.proto. Nodes go out in topological order, each as
 * lib/graph/onnx_export_node.c writes it; initializers as little-endian raw_data under
 * their names; graph inputs and outputs with their element type and shape, the batch as
 * the symbolic dimension "N". Messages are built in an arena and point into the graph;
 * nothing of the graph is copied except what is rewritten. */
#include "fault.h"
#include "graph/onnx_export_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_IR 8
#define BATCH_PARAM "N"

void *cc_ex_alloc(exporter *ex, size_t size) {
    if (ex->nmem == ex->capmem) {
        size_t cap = ex->capmem ? 2 * ex->capmem : 256;
        void **m = realloc(ex->mem, cap * sizeof *m);
        if (!m) return NULL;
        ex->mem = m;
        ex->capmem = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p) ex->mem[ex->nmem++] = p;
    return p;
}

static void ex_free(exporter *ex) {
    for (size_t i = 0; i < ex->nmem; i++)
        free(ex->mem[i]);
    free(ex->mem);
}

static int host_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* bytes of elements of esz bytes as little-endian: the data itself on a little-endian
 * host, else a swapped copy in the arena (NULL when out of memory). */
static const void *little_endian(exporter *ex, const void *data, size_t bytes, size_t esz) {
    if (!host_big_endian()) return data;
    uint8_t *out = cc_ex_alloc(ex, bytes);
    if (!out) return NULL;
    const uint8_t *in = data;
    for (size_t i = 0; i < bytes; i += esz)
        for (size_t b = 0; b < esz; b++)
            out[i + b] = in[i + esz - 1 - b];
    return out;
}

static int32_t onnx_type(clcnn_dtype t) {
    return t == CLCNN_F32   ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
           : t == CLCNN_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                            : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
}

/* ---- tensors ------------------------------------------------------------------------- */

/* A TensorProto named name of dtype and shape dims[0..ndim) holding numel elements of data
 * (kept by pointer on little-endian hosts). */
Onnx__TensorProto *cc_ex_tensor_msg(exporter *ex, const char *name, clcnn_dtype dtype, int ndim,
                                    const int64_t *dims, const void *data, size_t numel) {
    Onnx__TensorProto *t = NEW(ex, Onnx__TensorProto);
    int64_t *d = cc_ex_alloc(ex, (size_t)(ndim > 0 ? ndim : 1) * sizeof *d);
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    if (ndim > 0) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = onnx_type(dtype);
    size_t esz = cc_dtype_size(dtype), bytes = numel * esz;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)little_endian(ex, data, bytes, esz);
    return t->raw_data.data || !bytes ? t : NULL;
}

clcnn_status cc_ex_add_init_msg(exporter *ex, Onnx__TensorProto *t) {
    if (!t) return OOM();
    if (ex->ninits == ex->capinits) {
        size_t cap = ex->capinits ? 2 * ex->capinits : 64;
        Onnx__TensorProto **v = realloc(ex->inits, cap * sizeof *v);
        if (!v) return OOM();
        ex->inits = v;
        ex->capinits = cap;
    }
    ex->inits[ex->ninits++] = t;
    return CLCNN_OK;
}

int cc_ex_init_named(const exporter *ex, const char *name) {
    for (size_t i = 0; i < ex->ninits; i++)
        if (!strcmp(ex->inits[i]->name, name)) return 1;
    return 0;
}

/* Inside int64 data, CC_SHAPE_BATCH stands for the batch; ONNX has no such value. Where
 * every reader is a Reshape's shape (0 copies the input's batch dimension) or an Expand's
 * shape (1 broadcasts to it) and the entry lines up with the reader's batch dimension,
 * the entry is written as 0 or 1; anything else is refused. *fill: the value. */
static clcnn_status batch_fill(const exporter *ex, int vi, size_t pos, int64_t *fill) {
    const clcnn_graph *g = ex->g;
    const cc_gvalue *v = &g->vals[vi];
    *fill = -1;
    for (int i = 0; i < g->nnodes; i++) {
        const cc_gnode *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] != vi) continue;
            const cc_gvalue *x = cc_node_in(g, n, 0);
            const cc_gattr *az = cc_node_attr(n, "allowzero");
            int64_t want = -1;
            if (j == 1 && n->op == CC_OP_RESHAPE && pos == 0 && !(az && az->i))
                want = 0;
            else if (j == 1 && n->op == CC_OP_EXPAND && x->ndim <= (int)v->numel &&
                     pos == v->numel - (size_t)x->ndim)
                want = 1;
            CC_RETURN_IF(want < 0 || (*fill >= 0 && *fill != want) || x->ndim < 1 ||
                             x->dims[0] != CLCNN_GRAPH_BATCH,
                         CLCNN_ERR_UNSUPPORTED,
                         "ONNX export: initializer '%s' holds the symbolic batch size (entry %zu), "
                         "which node '%s' (%s) reads in a way ONNX cannot express",
                         v->name, pos, n->name, cc_op_defs[n->op].name);
            *fill = want;
        }
    }
    CC_RETURN_IF(*fill < 0, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: initializer '%s' holds the symbolic batch size", v->name);
    return CLCNN_OK;
}

static clcnn_status export_init(exporter *ex, int vi) {
    const cc_gvalue *v = &ex->g->vals[vi];
    const void *data = v->data;
    if (v->dtype == CLCNN_I64) {
        const int64_t *src = v->data;
        int64_t *copy = NULL;
        for (size_t i = 0; i < v->numel; i++) {
            if (src[i] != CC_SHAPE_BATCH) continue;
            if (!copy) {
                copy = cc_ex_alloc(ex, v->numel * sizeof *copy);
                if (!copy) return OOM();
                memcpy(copy, src, v->numel * sizeof *copy);
            }
            CC_TRY(batch_fill(ex, vi, i, &copy[i]));
        }
        if (copy) data = copy;
    }
    return cc_ex_add_init_msg(
        ex, cc_ex_tensor_msg(ex, v->name, v->dtype, v->ndim, v->dims, data, v->numel));
}

/* ---- graph inputs and outputs ------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(exporter *ex, const cc_gvalue *v) {
    Onnx__ValueInfoProto *vi = NEW(ex, Onnx__ValueInfoProto);
    Onnx__TypeProto *tp = NEW(ex, Onnx__TypeProto);
    Onnx__TypeProto__Tensor *tt = NEW(ex, Onnx__TypeProto__Tensor);
    Onnx__TensorShapeProto *sh = NEW(ex, Onnx__TensorShapeProto);
    Onnx__TensorShapeProto__Dimension **dims =
        cc_ex_alloc(ex, (size_t)(v->ndim > 0 ? v->ndim : 1) * sizeof *dims);
    if (!vi || !tp || !tt || !sh || !dims) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int d = 0; d < v->ndim; d++) {
        Onnx__TensorShapeProto__Dimension *dm = NEW(ex, Onnx__TensorShapeProto__Dimension);
        if (!dm) return NULL;
        onnx__tensor_shape_proto__dimension__init(dm);
        if (v->dims[d] == CLCNN_GRAPH_BATCH) {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dm->dim_param = BATCH_PARAM;
        } else {
            dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dm->dim_value = v->dims[d];
        }
        dims[d] = dm;
    }
    sh->n_dim = (size_t)v->ndim;
    sh->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = onnx_type(v->dtype);
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = v->name;
    vi->type = tp;
    return vi;
}

/* ---- the model ------------------------------------------------------------------------ */

static clcnn_status build_model(exporter *ex, Onnx__ModelProto *m) {
    const clcnn_graph *g = ex->g;
    Onnx__GraphProto *gp = NEW(ex, Onnx__GraphProto);
    Onnx__OperatorSetIdProto *ops = NEW(ex, Onnx__OperatorSetIdProto);
    Onnx__OperatorSetIdProto **opsv = NEW(ex, Onnx__OperatorSetIdProto *);
    Onnx__NodeProto **nodes = cc_ex_alloc(ex, (size_t)(g->nnodes + 1) * sizeof *nodes);
    Onnx__ValueInfoProto **ins = cc_ex_alloc(ex, (size_t)(g->nvals + 1) * sizeof *ins);
    Onnx__ValueInfoProto **outs = cc_ex_alloc(ex, (size_t)(g->noutputs + 1) * sizeof *outs);
    if (!gp || !ops || !opsv || !nodes || !ins || !outs) return OOM();
    onnx__graph_proto__init(gp);
    onnx__operator_set_id_proto__init(ops);
    for (int i = 0; i < g->nvals; i++) {
        const cc_gvalue *v = &g->vals[i];
        if (v->kind == CC_VAL_INIT) {
            CC_TRY(export_init(ex, i));
        } else if (v->kind == CC_VAL_INPUT) {
            if (!(ins[gp->n_input++] = value_info(ex, v))) return OOM();
        }
    }
    for (int i = 0; i < g->nnodes; i++)
        CC_TRY(cc_ex_export_node(ex, &g->nodes[g->order[i]], &nodes[i]));
    for (int i = 0; i < g->noutputs; i++)
        if (!(outs[i] = value_info(ex, &g->vals[g->outputs[i]]))) return OOM();
    gp->name = "clcnn";
    gp->n_node = (size_t)g->nnodes;
    gp->node = nodes;
    gp->n_initializer = ex->ninits;
    gp->initializer = ex->inits;
    gp->input = ins;
    gp->n_output = (size_t)g->noutputs;
    gp->output = outs;
    ops->domain = "";
    ops->has_version = 1;
    ops->version = EXPORT_OPSET;
    opsv[0] = ops;
    m->has_ir_version = 1;
    m->ir_version = EXPORT_IR;
    m->n_opset_import = 1;
    m->opset_import = opsv;
    m->producer_name = "clcnn";
    m->producer_version = (char *)clcnn_version();
    m->graph = gp;
    return CLCNN_OK;
}

/* Build the model of g into m (its messages in ex's arena) and its packed size. */
static clcnn_status prepare(exporter *ex, const clcnn_graph *g, Onnx__ModelProto *m, size_t *size) {
    CC_RETURN_IF(!g->checked, CLCNN_ERR_INVALID_ARG,
                 "ONNX export: the graph is not checked (call clcnn_graph_check first)");
    ex->g = g;
    onnx__model_proto__init(m);
    CC_TRY(build_model(ex, m));
    *size = onnx__model_proto__get_packed_size(m);
    CC_RETURN_IF(*size > CC_ONNX_MAX_FILE - 1, CLCNN_ERR_UNSUPPORTED,
                 "ONNX export: the model is %zu bytes, more than protobuf's 2 GiB limit (clcnn "
                 "does not write external data)",
                 *size);
    return CLCNN_OK;
}

clcnn_status clcnn_graph_save_onnx_memory(const clcnn_graph *g, void **data, size_t *size) {
    CC_RETURN_IF(!g || !data || !size, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_save_onnx_memory: NULL argument");
    *data = NULL;
    *size = 0;
    exporter ex = {0};
    Onnx__ModelProto m;
    size_t n = 0;
    clcnn_status s = prepare(&ex, g, &m, &n);
    uint8_t *buf = s == CLCNN_OK ? malloc(n ? n : 1) : NULL;
    if (s == CLCNN_OK && !buf)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: no host memory for %zu bytes", n);
    if (s == CLCNN_OK && onnx__model_proto__pack(&m, buf) != n) {
        free(buf);
        s = cc_fail(CLCNN_ERR_INVALID_ARG, "ONNX export: packed size differs (internal)");
    }
    ex_free(&ex);
    free(ex.inits);
    if (s != CLCNN_OK) return s;
    *data = buf;
    *size = n;
    return CLCNN_OK;
}

/* ---- files: written to a temporary name beside path, then renamed ------------------- */

typedef struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    int err; /* errno of the first failed write */
} file_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_sink *s = (file_sink *)b;
    if (s->err || !len) return;
    if (cc_fault_hit(CC_FAULT_FILE_WRITE))
        s->err = EIO;
    else if (fwrite(data, 1, len, s->f) != len)
        s->err = errno ? errno : EIO;
}

/* Stream m into a new file beside path and rename it over path; on any failure the
 * temporary file is removed and path is left as it was. */
static clcnn_status write_atomic(const Onnx__ModelProto *m, const char *path) {
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    CC_RETURN_IF(!tmp, CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: out of host memory");
    snprintf(tmp, cap, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        clcnn_status s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot create a file beside '%s': %s",
                                 path, strerror(errno));
        free(tmp);
        return s;
    }
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a model is no secret */
    file_sink sink = {{sink_append}, fdopen(fd, "wb"), 0};
    if (!sink.f) {
        sink.err = errno;
        close(fd);
    } else {
        onnx__model_proto__pack_to_buffer(m, &sink.base);
        if (fflush(sink.f) != 0 && !sink.err) sink.err = errno;
        if (fsync(fileno(sink.f)) != 0 && !sink.err) sink.err = errno;
        if (fclose(sink.f) != 0 && !sink.err) sink.err = errno;
    }
    clcnn_status s = CLCNN_OK;
    if (sink.err)
        s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot write '%s': %s", tmp, strerror(sink.err));
    else if (rename(tmp, path) != 0)
        s = cc_fail(CLCNN_ERR_IO, "ONNX export: cannot rename '%s' to '%s': %s", tmp, path,
                    strerror(errno));
    if (s != CLCNN_OK) {
        unlink(tmp);
        cc_fail_append(s, " ('%s' left as it was)", path);
    } else {
        cc_fsync_dir_of(path);
    }
    free(tmp);
    return s;
}

clcnn_status clcnn_graph_save_onnx(const clcnn_graph *g, const char *path) {
    CC_RETURN_IF(!g || !path || !*path, CLCNN_ERR_INVALID_ARG,
                 "clcnn_graph_save_onnx: NULL or empty argument");
    exporter ex = {0};
    Onnx__ModelProto m;
    size_t n = 0;
    clcnn_status s = prepare(&ex, g, &m, &n);
    if (s == CLCNN_OK) s = write_atomic(&m, path);
    ex_free(&ex);
    free(ex.inits);
    return s;
}

clcnn_status clcnn_onnx_save_tensor(const char *path, const char *name, clcnn_dtype dtype, int ndim,
                                    const int64_t *dims, const void *data) {
    CC_RETURN_IF(!path || !data || (ndim > 0 && !dims), CLCNN_ERR_INVALID_ARG,
                 "clcnn_onnx_save_tensor: NULL argument");
    CC_RETURN_IF(ndim < 0 || ndim > CLCNN_GRAPH_MAX_DIMS, CLCNN_ERR_SHAPE,
                 "clcnn_onnx_save_tensor: %d dimensions", ndim);
    CC_RETURN_IF(dtype != CLCNN_F32 && dtype != CLCNN_I32 && dtype != CLCNN_I64,
                 CLCNN_ERR_UNSUPPORTED, "clcnn_onnx_save_tensor: dtype %d", (int)dtype);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        CC_RETURN_IF(dims[d] < 0 || (dims[d] && numel > CC_ONNX_MAX_ELEMS / (uint64_t)dims[d]),
                     CLCNN_ERR_SHAPE, "clcnn_onnx_save_tensor: dimension %d is %lld", d,
                     (long long)dims[d]);
        numel *= (size_t)dims[d];
    }
    exporter ex = {0};
    Onnx__TensorProto *t = cc_ex_tensor_msg(&ex, name ? name : "", dtype, ndim, dims, data, numel);
    clcnn_status s = CLCNN_OK;
    if (!t) s = OOM();
    FILE *f = s == CLCNN_OK ? fopen(path, "wb") : NULL;
    if (s == CLCNN_OK && !f)
        s = cc_fail(CLCNN_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    if (f) {
        file_sink sink = {{sink_append}, f, 0};
        onnx__tensor_proto__pack_to_buffer(t, &sink.base);
        if (fclose(f) != 0 && !sink.err) sink.err = errno;
        if (sink.err) {
            s = cc_fail(CLCNN_ERR_IO, "cannot write '%s': %s", path, strerror(sink.err));
            unlink(path);
        }
    }
    ex_free(&ex);
    return s;
}
