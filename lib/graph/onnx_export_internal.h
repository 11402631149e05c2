/* Internals of ONNX export, shared by lib/graph/onnx_export.c (the model, initializers,
 * files) and lib/graph/onnx_export_node.c (nodes and their attributes). Never installed.
 * Prefix cc_ex_ (the exporter). */
#ifndef CLCNN_ONNX_EXPORT_INTERNAL_H
#define CLCNN_ONNX_EXPORT_INTERNAL_H

#include "graph/onnx_internal.h"

#define EXPORT_OPSET 17

typedef struct exporter {
    const clcnn_graph *g;
    void **mem; /* the arena: every block allocated for the messages */
    size_t nmem, capmem;
    Onnx__TensorProto **inits;
    size_t ninits, capinits;
} exporter;

/* lib/graph/onnx_export.c. cc_ex_alloc: a zeroed block of the arena that ex_free
 * releases (NULL when out of memory). cc_ex_tensor_msg: a TensorProto named name of dtype
 * and shape dims[0..ndim) holding numel elements of data (kept by pointer on little-endian
 * hosts), NULL when out of memory. cc_ex_add_init_msg: t (NULL: out of memory) appended to
 * the model's initializers. cc_ex_init_named: 1 when an initializer of that name was
 * added. */
void *cc_ex_alloc(exporter *ex, size_t size);
Onnx__TensorProto *cc_ex_tensor_msg(exporter *ex, const char *name, clcnn_dtype dtype, int ndim,
                                    const int64_t *dims, const void *data, size_t numel);
clcnn_status cc_ex_add_init_msg(exporter *ex, Onnx__TensorProto *t);
int cc_ex_init_named(const exporter *ex, const char *name);

#define NEW(ex, type) ((type *)cc_ex_alloc((ex), sizeof(type)))
#define OOM() cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "ONNX export: out of host memory")

/* lib/graph/onnx_export_node.c: node n as opset 17 writes it (messages in ex's arena,
 * attributes moved to inputs added to ex's initializers); refused nodes and attributes
 * fail with CLCNN_ERR_UNSUPPORTED naming the node. */
clcnn_status cc_ex_export_node(exporter *ex, const cc_gnode *n, Onnx__NodeProto **out);

#endif
