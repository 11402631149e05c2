/* A bounded pre-scan of an ONNX file's protobuf wire data. protobuf-c unpacks nested
 * messages recursively with no depth limit, so a hostile file of deeply nested sub-graphs
 * (or type protos) could exhaust the stack. This scan follows exactly the fields through
 * which ONNX messages nest (ModelProto.graph, GraphProto.node, NodeProto.attribute,
 * AttributeProto.g/graphs/tp/type_protos, ValueInfoProto.type, TypeProto's
 * sequence/map/optional element types, training info and functions) with an explicit
 * depth bound, and checks that every field of those messages is well formed. */
#include "graph/onnx_internal.h"

typedef enum msg {
    M_MODEL,
    M_GRAPH,
    M_NODE,
    M_ATTR,
    M_VALUEINFO,
    M_TYPE,
    M_TYPE_ELEM, /* Sequence, Map, Optional: their TypeProto field */
    M_TRAINING,
    M_FUNCTION,
    M_NONE /* leaf: not scanned further */
} msg;

/* The message type a field of m holds, or M_NONE. */
static msg child(msg m, uint64_t field) {
    switch (m) {
    case M_MODEL:
        return field == 7 ? M_GRAPH : field == 20 ? M_TRAINING : field == 25 ? M_FUNCTION : M_NONE;
    case M_GRAPH:
        return field == 1 ? M_NODE : (field >= 11 && field <= 13) ? M_VALUEINFO : M_NONE;
    case M_NODE:
        return field == 5 ? M_ATTR : M_NONE;
    case M_ATTR:
        return (field == 6 || field == 11)    ? M_GRAPH
               : (field == 14 || field == 15) ? M_TYPE
                                              : M_NONE;
    case M_VALUEINFO:
        return field == 2 ? M_TYPE : M_NONE;
    case M_TYPE:
        return (field == 4 || field == 5 || field == 9) ? M_TYPE_ELEM : M_NONE;
    case M_TYPE_ELEM:
        return (field == 1 || field == 2) ? M_TYPE : M_NONE;
    case M_TRAINING:
        return (field == 1 || field == 2) ? M_GRAPH : M_NONE;
    case M_FUNCTION:
        return field == 7 ? M_NODE : M_NONE;
    default:
        return M_NONE;
    }
}

static int varint(const unsigned char **p, const unsigned char *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return 0;
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static clcnn_status scan(const unsigned char *p, const unsigned char *end, msg m, int depth) {
    CC_RETURN_IF(depth > CC_ONNX_MAX_DEPTH, CLCNN_ERR_FORMAT,
                 "the model nests messages (sub-graphs or types) more than %d deep",
                 CC_ONNX_MAX_DEPTH);
    while (p < end) {
        uint64_t key, len = 0;
        CC_RETURN_IF(!varint(&p, end, &key), CLCNN_ERR_FORMAT,
                     "malformed protobuf: a truncated field key");
        uint64_t field = key >> 3, wire = key & 7;
        CC_RETURN_IF(field == 0, CLCNN_ERR_FORMAT, "malformed protobuf: field number 0");
        switch (wire) {
        case 0:
            CC_RETURN_IF(!varint(&p, end, &len), CLCNN_ERR_FORMAT,
                         "malformed protobuf: a truncated varint");
            break;
        case 1:
            CC_RETURN_IF(end - p < 8, CLCNN_ERR_FORMAT, "malformed protobuf: a truncated value");
            p += 8;
            break;
        case 5:
            CC_RETURN_IF(end - p < 4, CLCNN_ERR_FORMAT, "malformed protobuf: a truncated value");
            p += 4;
            break;
        case 2: {
            CC_RETURN_IF(!varint(&p, end, &len) || len > (uint64_t)(end - p), CLCNN_ERR_FORMAT,
                         "malformed protobuf: a field of %llu bytes runs past the end of its "
                         "message (truncated file?)",
                         (unsigned long long)len);
            msg c = child(m, field);
            if (c != M_NONE) CC_TRY(scan(p, p + len, c, depth + 1));
            p += len;
            break;
        }
        default:
            return cc_fail(CLCNN_ERR_FORMAT, "malformed protobuf: wire type %llu",
                           (unsigned long long)wire);
        }
    }
    return CLCNN_OK;
}

clcnn_status cc_onnx_check_wire(const unsigned char *data, size_t size) {
    return scan(data, data + size, M_MODEL, 0);
}
