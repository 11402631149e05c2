/* ONNX tensors on the host: a TensorProto (typed fields, raw_data or external data) to
 * dense host data, with every size checked before it is used, and external data kept
 * inside the model's folder. Also reading a TensorProto file (an ONNX test case's
 * input_K.pb / output_K.pb). */
#include "graph/onnx_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cc_htensor_free(cc_htensor *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

const char *cc_onnx_type_name(int32_t t) {
    static const char *names[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                  "int16",      "int32",   "int64",  "string", "bool",
                                  "float16",    "double",  "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
    return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

clcnn_status cc_read_file(const char *path, size_t max, unsigned char **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    CC_RETURN_IF(!f, CLCNN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cc_fail(CLCNN_ERR_IO, "'%s' is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max) {
        fclose(f);
        return cc_fail(CLCNN_ERR_FORMAT, "'%s' is %lld bytes, more than the %zu accepted", path,
                       (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "no host memory for '%s' (%zu bytes)", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    fclose(f);
    if (got != n) {
        free(buf);
        return cc_fail(CLCNN_ERR_IO, "short read of '%s' (%zu of %zu bytes)", path, got, n);
    }
    *data = buf;
    *size = n;
    return CLCNN_OK;
}

/* The dtype clcnn holds an ONNX element type in: float, int64; int32/int16/int8/uint8/bool
 * widened to int64 (shape and index data); -1 for the rest. */
static int host_dtype(int32_t t, size_t *wire_size) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        *wire_size = 4;
        return CLCNN_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        *wire_size = 8;
        return CLCNN_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        *wire_size = 4;
        return CLCNN_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
        *wire_size = 2;
        return CLCNN_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        *wire_size = 1;
        return CLCNN_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        *wire_size = 1;
        return CLCNN_I64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        *wire_size = 1;
        return CLCNN_I64;
    default:
        return -1;
    }
}

/* raw little-endian bytes of element type t into out (float or int64) */
static void decode_raw(int32_t t, const unsigned char *src, size_t n, void *out) {
    for (size_t i = 0; i < n; i++) {
        switch (t) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
            uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                         (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
            memcpy((float *)out + i, &u, 4);
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--)
                u = u << 8 | src[8 * i + (size_t)b];
            ((int64_t *)out)[i] = (int64_t)u;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                         (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
            ((int64_t *)out)[i] = (int32_t)u;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
            ((int64_t *)out)[i] = (int16_t)((uint16_t)src[2 * i] | (uint16_t)src[2 * i + 1] << 8);
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
            ((int64_t *)out)[i] = (int8_t)src[i];
            break;
        default:
            ((int64_t *)out)[i] = src[i];
            break; /* uint8, bool */
        }
    }
}

/* Is rel a plain relative path that stays below its folder (no "..", not absolute)? */
static int safe_relative(const char *rel) {
    if (!rel || !*rel || rel[0] == '/' || strchr(rel, '\\')) return 0;
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return 1;
}

/* External data of t: the bytes [offset, offset + want) of base_dir/location. */
static clcnn_status read_external(const Onnx__TensorProto *t, const char *what,
                                  const char *base_dir, size_t want, unsigned char **out) {
    *out = NULL;
    const char *location = NULL;
    long long offset = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e || !e->key || !e->value) continue;
        char *end = NULL;
        if (!strcmp(e->key, "location")) {
            location = e->value;
        } else if (!strcmp(e->key, "offset") || !strcmp(e->key, "length")) {
            errno = 0;
            long long v = strtoll(e->value, &end, 10);
            CC_RETURN_IF(errno || end == e->value || *end || v < 0, CLCNN_ERR_FORMAT,
                         "tensor '%s': external data %s '%s' is not a size", what, e->key,
                         e->value);
            if (!strcmp(e->key, "offset"))
                offset = v;
            else
                length = v;
        }
    }
    CC_RETURN_IF(!location, CLCNN_ERR_FORMAT, "tensor '%s': external data without a location",
                 what);
    CC_RETURN_IF(!base_dir, CLCNN_ERR_FORMAT,
                 "tensor '%s': external data '%s' but the model was given without a folder", what,
                 location);
    CC_RETURN_IF(!safe_relative(location), CLCNN_ERR_FORMAT,
                 "tensor '%s': external data location '%s' leaves the model's folder (absolute "
                 "paths and '..' are refused)",
                 what, location);
    CC_RETURN_IF(length >= 0 && (size_t)length != want, CLCNN_ERR_FORMAT,
                 "tensor '%s': external data length %lld, the tensor needs %zu bytes", what, length,
                 want);
    char path[PATH_MAX], real_base[PATH_MAX], real_file[PATH_MAX];
    CC_RETURN_IF((size_t)snprintf(path, sizeof path, "%s/%s", base_dir, location) >= sizeof path,
                 CLCNN_ERR_FORMAT, "tensor '%s': external data path too long", what);
    CC_RETURN_IF(!realpath(base_dir, real_base) || !realpath(path, real_file), CLCNN_ERR_IO,
                 "tensor '%s': external data '%s': %s", what, path, strerror(errno));
    size_t bl = strlen(real_base);
    CC_RETURN_IF(strncmp(real_file, real_base, bl) != 0 || real_file[bl] != '/', CLCNN_ERR_FORMAT,
                 "tensor '%s': external data '%s' resolves outside the model's folder", what,
                 location);
    FILE *f = fopen(real_file, "rb");
    CC_RETURN_IF(!f, CLCNN_ERR_IO, "tensor '%s': cannot open '%s': %s", what, path,
                 strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)offset > (unsigned long long)st.st_size ||
        want > (size_t)st.st_size - (size_t)offset) {
        fclose(f);
        return cc_fail(CLCNN_ERR_FORMAT,
                       "tensor '%s': external data [%lld, +%zu) lies past the end of '%s'", what,
                       offset, want, location);
    }
    unsigned char *buf = malloc(want ? want : 1);
    if (!buf) {
        fclose(f);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "tensor '%s': no host memory (%zu bytes)", what,
                       want);
    }
    int ok = fseeko(f, (off_t)offset, SEEK_SET) == 0 && fread(buf, 1, want, f) == want;
    fclose(f);
    if (!ok) {
        free(buf);
        return cc_fail(CLCNN_ERR_IO, "tensor '%s': short read of '%s'", what, path);
    }
    *out = buf;
    return CLCNN_OK;
}

clcnn_status cc_onnx_tensor(const Onnx__TensorProto *t, const char *base_dir, cc_htensor *out) {
    memset(out, 0, sizeof *out);
    const char *what = t->name && *t->name ? t->name : "(unnamed)";
    int32_t type = t->has_data_type ? t->data_type : 0;
    size_t wire = 0;
    int dt = host_dtype(type, &wire);
    CC_RETURN_IF(dt < 0, CLCNN_ERR_UNSUPPORTED,
                 "tensor '%s' has element type %s (supported: "
                 "float, and integers for shapes and indices)",
                 what, cc_onnx_type_name(type));
    CC_RETURN_IF(t->n_dims > CLCNN_GRAPH_MAX_DIMS, CLCNN_ERR_UNSUPPORTED,
                 "tensor '%s' has %zu dimensions (at most %d)", what, t->n_dims,
                 CLCNN_GRAPH_MAX_DIMS);
    size_t numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        CC_RETURN_IF(t->dims[i] < 0, CLCNN_ERR_FORMAT, "tensor '%s': dimension %zu is %lld", what,
                     i, (long long)t->dims[i]);
        CC_RETURN_IF(t->dims[i] == 0, CLCNN_ERR_UNSUPPORTED,
                     "tensor '%s' is empty (dimension %zu is 0)", what, i);
        CC_RETURN_IF((uint64_t)t->dims[i] > (uint64_t)CC_ONNX_MAX_ELEMS / numel, CLCNN_ERR_FORMAT,
                     "tensor '%s': dims multiply past %llu elements", what,
                     (unsigned long long)CC_ONNX_MAX_ELEMS);
        numel *= (size_t)t->dims[i];
        out->dims[i] = t->dims[i];
    }
    out->ndim = (int)t->n_dims;
    out->dtype = (clcnn_dtype)dt;
    out->numel = numel;
    size_t esz = dt == CLCNN_F32 ? 4 : 8;
    int external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* the data's size is checked before anything of the dims' size is allocated */
    size_t have = external                                       ? numel
                  : t->has_raw_data                              ? t->raw_data.len / wire
                  : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                  : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data
                                                                 : t->n_int32_data;
    CC_RETURN_IF(t->has_raw_data && !external && t->raw_data.len != numel * wire, CLCNN_ERR_FORMAT,
                 "tensor '%s': raw data holds %zu bytes, its dims need %zu (%zu %s)", what,
                 t->raw_data.len, numel * wire, numel, cc_onnx_type_name(type));
    CC_RETURN_IF(have != numel, CLCNN_ERR_FORMAT, "tensor '%s': %zu %s values for %zu elements",
                 what, have, cc_onnx_type_name(type), numel);
    unsigned char *raw = NULL;
    if (external) CC_TRY(read_external(t, what, base_dir, numel * wire, &raw));
    void *data = malloc(numel * esz);
    if (!data) {
        free(raw);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "tensor '%s': no host memory (%zu bytes)", what,
                       numel * esz);
    }
    clcnn_status s = CLCNN_OK;
    if (external)
        decode_raw(type, raw, numel, data);
    else if (t->has_raw_data)
        decode_raw(type, t->raw_data.data, numel, data);
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        memcpy(data, t->float_data, numel * 4);
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        memcpy(data, t->int64_data, numel * 8);
    else
        for (size_t i = 0; i < numel; i++)
            ((int64_t *)data)[i] = t->int32_data[i];
    free(raw);
    if (s != CLCNN_OK) {
        free(data);
        memset(out, 0, sizeof *out);
        return s;
    }
    out->data = data;
    return CLCNN_OK;
}

clcnn_status clcnn_onnx_load_tensor(const char *path, clcnn_dtype *dtype, int *ndim,
                                    int64_t dims[CLCNN_GRAPH_MAX_DIMS], void **data,
                                    size_t *numel) {
    CC_RETURN_IF(!path || !dtype || !ndim || !dims || !data || !numel, CLCNN_ERR_INVALID_ARG,
                 "clcnn_onnx_load_tensor: NULL argument");
    *data = NULL;
    unsigned char *buf = NULL;
    size_t size = 0;
    CC_TRY(cc_read_file(path, CC_ONNX_MAX_FILE, &buf, &size));
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size, buf);
    free(buf);
    CC_RETURN_IF(!t, CLCNN_ERR_FORMAT, "'%s' is no ONNX TensorProto (truncated or malformed)",
                 path);
    cc_htensor h;
    clcnn_status s = cc_onnx_tensor(t, NULL, &h);
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (s != CLCNN_OK) return cc_fail_append(s, " (in '%s')", path);
    *dtype = h.dtype;
    *ndim = h.ndim;
    memcpy(dims, h.dims, sizeof(int64_t) * CLCNN_GRAPH_MAX_DIMS);
    *data = h.data;
    *numel = h.numel;
    return CLCNN_OK;
}
