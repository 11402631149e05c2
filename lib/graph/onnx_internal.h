/* Internals of ONNX import (lib/graph/onnx_*.c): host tensors, the generated protobuf-c
 * types (onnx.pb-c.h, generated at build time from Debian's /usr/include/onnx/onnx.proto)
 * and the host evaluation of constant sub-graphs. Never installed. */
#ifndef CLCNN_ONNX_INTERNAL_H
#define CLCNN_ONNX_INTERNAL_H

#include "graph/graph_internal.h"
#include "onnx.pb-c.h"

#define CC_ONNX_MAX_OPSET 17                  /* the newest default-domain opset run */
#define CC_ONNX_MAX_FILE ((size_t)2 << 30)    /* protobuf's own limit: 2 GiB */
#define CC_ONNX_MAX_ELEMS ((uint64_t)1 << 34) /* elements of one tensor */
#define CC_ONNX_MAX_DEPTH 64                  /* message nesting accepted */
#define CC_ONNX_BATCH INT64_MIN               /* "the batch" inside folded int64 shape data */

/* A dense host tensor: float32 or int64 (every integer type is widened to int64). */
typedef struct cc_htensor {
    clcnn_dtype dtype; /* CLCNN_F32 or CLCNN_I64 */
    int ndim;
    int64_t dims[CLCNN_GRAPH_MAX_DIMS];
    size_t numel;
    void *data;
} cc_htensor;

void cc_htensor_free(cc_htensor *t);
const char *cc_onnx_type_name(int32_t onnx_type);
/* Read a whole regular file of at most max bytes (malloc'd). */
clcnn_status cc_read_file(const char *path, size_t max, unsigned char **data, size_t *size);
/* A TensorProto's data on the host; external data is read from base_dir (NULL: refused)
 * and must stay inside it. Errors name the tensor. */
clcnn_status cc_onnx_tensor(const Onnx__TensorProto *t, const char *base_dir, cc_htensor *out);
/* Fails with CLCNN_ERR_FORMAT when the protobuf wire data nests deeper than
 * CC_ONNX_MAX_DEPTH or is not well formed (checked before protobuf-c unpacks it, whose
 * recursion has no limit). */
clcnn_status cc_onnx_check_wire(const unsigned char *data, size_t size);

/* lib/graph/onnx_fold.c: the attribute `name` of node n, NULL when absent. */
const Onnx__AttributeProto *cc_onnx_attr(const Onnx__NodeProto *n, const char *name);
/* lib/graph/onnx_fold.c: evaluate node n of op_type on constant inputs (in[i] NULL for
 * an absent one); 1 with the outputs filled when it could, 0 when the op (or this input,
 * e.g. one holding the symbolic batch) is not foldable, <0 on a real error (set). */
int cc_onnx_fold(const char *op_type, const Onnx__NodeProto *n, int opset, cc_htensor **in,
                 int n_in, cc_htensor *out, int n_out);

#endif
