/* Reading checkpoint files: the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N, the header length, unsigned 64-bit little-endian
 *   [N bytes]  a JSON object, UTF-8, padded with spaces so the data starts 8-byte aligned:
 *              { "__metadata__": { "key": "value", ... },            (strings only)
 *                "<tensor name>": { "dtype": "F32", "shape": [16, 3, 3, 3],
 *                                   "data_offsets": [begin, end] }, ... }
 *              offsets are bytes relative to the first byte after the header
 *   [rest]     the raw little-endian tensor data
 *
 * cc_ck_open validates the whole header against the file before any tensor data is read:
 * JSON with string metadata only, known dtypes, shapes that match their data_offsets inside
 * the data, and no byte belonging to two tensors. The tensor names and metadata clcnn uses,
 * and loading: lib/nn/checkpoint.c; saving: lib/nn/checkpoint_save.c. */
#include "checkpoint_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CK_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON is surely not a checkpoint */

/* ---- byte order ------------------------------------------------------------------------ */

int cc_ck_host_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

void cc_ck_swap32_inplace(void *buf, size_t bytes) {
    uint8_t *b = buf;
    for (size_t i = 0; i + 3 < bytes; i += 4) {
        uint8_t t0 = b[i], t1 = b[i + 1];
        b[i] = b[i + 3];
        b[i + 1] = b[i + 2];
        b[i + 2] = t1;
        b[i + 3] = t0;
    }
}

/* ---- reading and validating a header ------------------------------------------------- */

void cc_ck_close(ck_file *ck) {
    if (ck->f) fclose(ck->f);
    json_decref(ck->root);
    free(ck->e);
    memset(ck, 0, sizeof *ck);
}

static size_t dtype_size(const char *d) {
    static const struct {
        const char *name;
        size_t size;
    } table[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
                 {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(d, table[i].name) == 0) return table[i].size;
    return 0;
}

const char *cc_ck_entry_shape_str(const ck_entry *e, char *buf, size_t cap) {
    size_t pos = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < e->ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, i ? ",%" PRIu64 : "%" PRIu64, e->shape[i]);
    if (pos < cap) snprintf(buf + pos, cap - pos, "]");
    return buf;
}

static clcnn_status parse_entry(ck_file *ck, const char *name, json_t *v, ck_entry *e) {
    const char *p = ck->path;
    memset(e, 0, sizeof *e);
    e->name = name;
    CC_RETURN_IF(!json_is_object(v), CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': header entry is not a JSON object", p, name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    CC_RETURN_IF(!json_is_string(dt), CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': \"dtype\" is missing or not a string", p, name);
    e->dtype = json_string_value(dt);
    e->elem = dtype_size(e->dtype);
    CC_RETURN_IF(e->elem == 0, CLCNN_ERR_FORMAT, "checkpoint '%s': tensor '%s': unknown dtype '%s'",
                 p, name, e->dtype);
    CC_RETURN_IF(!json_is_array(sh), CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': \"shape\" is missing or not a list", p, name);
    CC_RETURN_IF(json_array_size(sh) > CK_MAX_RANK, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': %zu dims, at most %d supported", p, name,
                 json_array_size(sh), CK_MAX_RANK);
    e->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < e->ndim; i++) {
        json_t *d = json_array_get(sh, (size_t)i);
        CC_RETURN_IF(!json_is_integer(d) || json_integer_value(d) < 0, CLCNN_ERR_FORMAT,
                     "checkpoint '%s': tensor '%s': shape entry %d is not a non-negative "
                     "integer",
                     p, name, i);
        e->shape[i] = (uint64_t)json_integer_value(d);
        if (e->shape[i] && numel > UINT64_MAX / e->shape[i]) overflow = 1;
        numel *= e->shape[i];
    }
    CC_RETURN_IF(!json_is_array(off) || json_array_size(off) != 2, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': \"data_offsets\" is missing or not [begin, end]", p,
                 name);
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    CC_RETURN_IF(!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
                     json_integer_value(en) < json_integer_value(b),
                 CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': data_offsets must be integers 0 <= begin <= end", p,
                 name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    CC_RETURN_IF(e->end > ck->data_size, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                 "] run past the end of the data (%" PRIu64 " bytes after the header)",
                 p, name, e->begin, e->end, ck->data_size);
    char sb[160];
    CC_RETURN_IF(overflow || numel > UINT64_MAX / e->elem || numel * e->elem != e->end - e->begin,
                 CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s': shape %s of %s needs %" PRIu64
                 " bytes but data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64,
                 p, name, cc_ck_entry_shape_str(e, sb, sizeof sb), e->dtype,
                 overflow ? UINT64_MAX : numel * (uint64_t)e->elem, e->begin, e->end,
                 e->end - e->begin);
    return CLCNN_OK;
}

static int cmp_entry_offsets(const void *a, const void *b) {
    const ck_entry *x = *(const ck_entry *const *)a, *y = *(const ck_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Open path, read and validate its header: the JSON, every entry, and that no two
 * tensors share bytes. The file stays open for reading the data. */
clcnn_status cc_ck_open(const char *path, ck_file *ck) {
    memset(ck, 0, sizeof *ck);
    ck->path = path;
    ck->f = fopen(path, "rb");
    CC_RETURN_IF(!ck->f, CLCNN_ERR_IO, "checkpoint '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(ck->f), &st) != 0) {
        int err = errno;
        cc_ck_close(ck);
        return cc_fail(CLCNN_ERR_IO, "checkpoint '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        cc_ck_close(ck);
        return cc_fail(CLCNN_ERR_IO, "checkpoint '%s': %s", path,
                       S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
    }
    ck->file_size = (uint64_t)st.st_size;
    clcnn_status s = CLCNN_OK;
    char *hdr = NULL;
    uint8_t lenb[8];
    if (ck->file_size < 8) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "checkpoint '%s': %" PRIu64 " bytes is too short for a safetensors file "
                    "(8-byte header length + JSON header)",
                    path, ck->file_size);
        goto fail;
    }
    if (fread(lenb, 1, 8, ck->f) != 8) {
        s = cc_fail(CLCNN_ERR_IO, "checkpoint '%s': cannot read the header length", path);
        goto fail;
    }
    for (int i = 7; i >= 0; i--)
        ck->header_len = (ck->header_len << 8) | lenb[i];
    if (ck->header_len < 2 || ck->header_len > ck->file_size - 8) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "checkpoint '%s': header length %" PRIu64 " does not fit the file of %" PRIu64
                    " bytes (not a safetensors file, or truncated)",
                    path, ck->header_len, ck->file_size);
        goto fail;
    }
    if (ck->header_len > CK_MAX_HEADER) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "checkpoint '%s': header length %" PRIu64 " exceeds the %" PRIu64 "-byte limit",
                    path, ck->header_len, CK_MAX_HEADER);
        goto fail;
    }
    ck->data_size = ck->file_size - 8 - ck->header_len;
    hdr = malloc((size_t)ck->header_len);
    if (!hdr) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "checkpoint '%s': out of host memory for the header",
                    path);
        goto fail;
    }
    if (fread(hdr, 1, (size_t)ck->header_len, ck->f) != ck->header_len) {
        s = cc_fail(CLCNN_ERR_IO, "checkpoint '%s': cannot read the %" PRIu64 "-byte header: %s",
                    path, ck->header_len, ferror(ck->f) ? strerror(errno) : "unexpected end");
        goto fail;
    }
    json_error_t jerr;
    ck->root = json_loadb(hdr, (size_t)ck->header_len, JSON_REJECT_DUPLICATES, &jerr);
    free(hdr);
    hdr = NULL;
    if (!ck->root) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "checkpoint '%s': the header is not valid JSON: %s (line %d, column %d)", path,
                    jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(ck->root)) {
        s = cc_fail(CLCNN_ERR_FORMAT, "checkpoint '%s': the header is not a JSON object", path);
        goto fail;
    }
    size_t cnt = json_object_size(ck->root);
    ck->e = calloc(cnt ? cnt : 1, sizeof *ck->e);
    if (!ck->e) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(ck->root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                s = cc_fail(CLCNN_ERR_FORMAT,
                            "checkpoint '%s': \"__metadata__\" is not a JSON object", path);
                goto fail;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    s = cc_fail(CLCNN_ERR_FORMAT,
                                "checkpoint '%s': metadata value of '%s' is not a string", path,
                                mk);
                    goto fail;
                }
            }
            ck->meta = val;
            continue;
        }
        s = parse_entry(ck, key, val, &ck->e[ck->ne]);
        if (s != CLCNN_OK) goto fail;
        ck->ne++;
    }
    /* No byte may belong to two tensors (checked in offset order). */
    if (ck->ne > 1) {
        ck_entry **order = malloc(ck->ne * sizeof *order);
        if (!order) {
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
            goto fail;
        }
        for (size_t i = 0; i < ck->ne; i++)
            order[i] = &ck->e[i];
        qsort(order, ck->ne, sizeof *order, cmp_entry_offsets);
        for (size_t i = 1; i < ck->ne; i++) {
            const ck_entry *a = order[i - 1], *b = order[i];
            if (a->end > b->begin && b->end > b->begin) {
                s = cc_fail(CLCNN_ERR_FORMAT,
                            "checkpoint '%s': tensors '%s' [%" PRIu64 ", %" PRIu64
                            ") and '%s' [%" PRIu64 ", %" PRIu64 ") overlap",
                            path, a->name, a->begin, a->end, b->name, b->begin, b->end);
                free(order);
                goto fail;
            }
        }
        free(order);
    }
    return CLCNN_OK;
fail:
    free(hdr);
    cc_ck_close(ck);
    return s;
}

ck_entry *cc_ck_find(ck_file *ck, const char *name) {
    for (size_t i = 0; i < ck->ne; i++)
        if (strcmp(ck->e[i].name, name) == 0) return &ck->e[i];
    return NULL;
}

const char *cc_ck_meta(const ck_file *ck, const char *key) {
    json_t *v = ck->meta ? json_object_get(ck->meta, key) : NULL;
    return v ? json_string_value(v) : NULL;
}

/* A metadata value that must be a decimal unsigned integer. found = 0 when absent. */
clcnn_status cc_ck_meta_u64(const ck_file *ck, const char *key, uint64_t *out, int *found) {
    const char *v = cc_ck_meta(ck, key);
    *found = v != NULL;
    if (!v) return CLCNN_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    CC_RETURN_IF(!*v || *v == '-' || *end || errno, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': metadata '%s' = '%s' is not an unsigned integer", ck->path, key,
                 v);
    *out = (uint64_t)x;
    return CLCNN_OK;
}
