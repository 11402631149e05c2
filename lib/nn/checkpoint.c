/* Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N, the header length, unsigned 64-bit little-endian
 *   [N bytes]  a JSON object, UTF-8, padded with spaces so the data starts 8-byte aligned:
 *              { "__metadata__": { "key": "value", ... },            (strings only)
 *                "<tensor name>": { "dtype": "F32", "shape": [16, 3, 3, 3],
 *                                   "data_offsets": [begin, end] }, ... }
 *              offsets are bytes relative to the first byte after the header
 *   [rest]     the raw little-endian tensor data
 *
 * Tensor names follow PyTorch's nn.Sequential state_dict, so a net built with the same
 * layers in both moves between them unchanged (layer indices count every layer,
 * parameterless ones included):
 *   layers.<i>.weight, layers.<i>.bias     conv2d (k, c/groups, r, s) + (k); linear
 *                                          (out, in) + (out); batchnorm gamma + beta (c)
 *   layers.<i>.running_mean, .running_var  batchnorm running statistics (c)
 *   optim.<param name>.momentum            SGD velocity (only when momentum != 0)
 *   optim.<param name>.m, optim.<param name>.v   Adam moments
 * Metadata written by clcnn: "format" = "pt", "clcnn.seed" and "clcnn.step" (the
 * dropout RNG key and counter, restored on load so a resumed run draws the same masks),
 * and with an optimizer "optim.kind" ("sgd" or "adam") and "optim.step" (steps taken).
 * PyTorch's "layers.<i>.num_batches_tracked" (I64, one element) is accepted and ignored
 * for batchnorm layers; every other unknown tensor is an error.
 *
 * Saving writes "<path>.tmp.<pid>" in the same directory, fsyncs it, renames it over
 * path and fsyncs the directory: a crash or failure at any point leaves either the old
 * or the new complete file. A tensor holding NaN or Inf is refused (CLCNN_ERR_NUMERIC)
 * before anything is written. Loading validates the whole header against the file and the
 * net and reads every tensor before it uploads anything, so a failed load leaves the
 * net and the optimizer unchanged. */
#include "fault.h"
#include "nn_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CK_MAX_HEADER ((uint64_t)100 << 20) /* 100 MiB of JSON is surely not a checkpoint */
#define CK_MAX_RANK 8
#define CK_NAME_CAP 512

/* ---- byte order ------------------------------------------------------------------------ */

static int host_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

static void swap32_inplace(void *buf, size_t bytes) {
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

typedef struct ck_entry {
    const char *name; /* key inside root (valid while root lives) */
    const char *dtype;
    size_t elem; /* bytes per element */
    int ndim;
    uint64_t shape[CK_MAX_RANK];
    uint64_t begin, end; /* relative to the data section */
    int claimed;
    clcnn_tensor *dst; /* where load puts it; NULL = ignored */
} ck_entry;

typedef struct ck_file {
    const char *path;
    FILE *f;
    uint64_t file_size, header_len, data_size;
    json_t *root;
    json_t *meta; /* NULL when absent */
    ck_entry *e;
    size_t ne;
} ck_file;

static void ck_close(ck_file *ck) {
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

static const char *entry_shape_str(const ck_entry *e, char *buf, size_t cap) {
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
                 p, name, entry_shape_str(e, sb, sizeof sb), e->dtype,
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
static clcnn_status ck_open(const char *path, ck_file *ck) {
    memset(ck, 0, sizeof *ck);
    ck->path = path;
    ck->f = fopen(path, "rb");
    CC_RETURN_IF(!ck->f, CLCNN_ERR_IO, "checkpoint '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(ck->f), &st) != 0) {
        int err = errno;
        ck_close(ck);
        return cc_fail(CLCNN_ERR_IO, "checkpoint '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ck_close(ck);
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
    ck_close(ck);
    return s;
}

static ck_entry *ck_find(ck_file *ck, const char *name) {
    for (size_t i = 0; i < ck->ne; i++)
        if (strcmp(ck->e[i].name, name) == 0) return &ck->e[i];
    return NULL;
}

static const char *ck_meta(const ck_file *ck, const char *key) {
    json_t *v = ck->meta ? json_object_get(ck->meta, key) : NULL;
    return v ? json_string_value(v) : NULL;
}

/* A metadata value that must be a decimal unsigned integer. found = 0 when absent. */
static clcnn_status ck_meta_u64(const ck_file *ck, const char *key, uint64_t *out, int *found) {
    const char *v = ck_meta(ck, key);
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

/* Claim entry `name` for tensor t: it must exist as F32 with t's exact shape. */
static clcnn_status claim(ck_file *ck, const char *name, clcnn_tensor *t, const char *what) {
    ck_entry *e = ck_find(ck, name);
    CC_RETURN_IF(!e, CLCNN_ERR_FORMAT, "checkpoint '%s': tensor '%s' (%s) is missing", ck->path,
                 name, what);
    CC_RETURN_IF(strcmp(e->dtype, "F32") != 0, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': tensor '%s' has dtype %s; clcnn reads F32 only", ck->path, name,
                 e->dtype);
    int same = e->ndim == t->ndim;
    for (int i = 0; same && i < e->ndim; i++)
        same = e->shape[i] == (uint64_t)t->shape[i];
    if (!same) {
        char a[160], b[96];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "checkpoint '%s': tensor '%s' has shape %s but the net expects %s", ck->path,
                       name, entry_shape_str(e, a, sizeof a),
                       cc_shape_str(t->shape, t->ndim, b, sizeof b));
    }
    e->claimed = 1;
    e->dst = t;
    return CLCNN_OK;
}

static const char *optim_kind_name(clcnn_optim_kind k) {
    return k == CLCNN_OPTIM_ADAM ? "adam" : "sgd";
}

/* Match the optimizer's slots and step count; on success *t gets the step count. */
static clcnn_status claim_optimizer(ck_file *ck, const clcnn_optimizer *opt, int64_t *t) {
    const char *kind = ck_meta(ck, "optim.kind");
    CC_RETURN_IF(!kind, CLCNN_ERR_FORMAT,
                 "checkpoint '%s' has no optimizer state (it was saved without an optimizer); "
                 "load it with opt = NULL to restore the weights only",
                 ck->path);
    CC_RETURN_IF(strcmp(kind, optim_kind_name(opt->cfg.kind)) != 0, CLCNN_ERR_FORMAT,
                 "checkpoint '%s' holds %s optimizer state but the optimizer is %s", ck->path, kind,
                 optim_kind_name(opt->cfg.kind));
    uint64_t step = 0;
    int found = 0;
    CC_TRY(ck_meta_u64(ck, "optim.step", &step, &found));
    CC_RETURN_IF(!found || step > INT32_MAX, CLCNN_ERR_FORMAT,
                 "checkpoint '%s': metadata 'optim.step' is missing or out of range", ck->path);
    char name[CK_NAME_CAP];
    for (int i = 0; i < opt->n; i++) {
        const char *pn = cc_optim_param_name(opt, i);
        if (opt->cfg.kind == CLCNN_OPTIM_ADAM) {
            snprintf(name, sizeof name, "optim.%s.m", pn);
            CC_TRY(claim(ck, name, opt->slot1[i], "Adam first moment"));
            snprintf(name, sizeof name, "optim.%s.v", pn);
            CC_TRY(claim(ck, name, opt->slot2[i], "Adam second moment"));
        } else if (opt->slot1[i]) {
            snprintf(name, sizeof name, "optim.%s.momentum", pn);
            CC_TRY(claim(ck, name, opt->slot1[i], "SGD momentum"));
        }
    }
    *t = (int64_t)step;
    return CLCNN_OK;
}

/* PyTorch's batchnorm counter ("<prefix>.num_batches_tracked", I64, one element, beside a
 * "<prefix>.running_mean" of the net): accepted and ignored (clcnn does not use it). */
static int is_bn_counter(const clcnn_net *net, const ck_entry *e) {
    static const char suffix[] = ".num_batches_tracked";
    size_t len = strlen(e->name), sl = sizeof suffix - 1;
    if (len <= sl || strcmp(e->name + len - sl, suffix) != 0 || strcmp(e->dtype, "I64") != 0)
        return 0;
    uint64_t numel = 1;
    for (int i = 0; i < e->ndim; i++)
        numel *= e->shape[i];
    if (numel != 1) return 0;
    char mean[CK_NAME_CAP];
    snprintf(mean, sizeof mean, "%.*s.running_mean", (int)(len - sl), e->name);
    for (int i = 0; i < cc_net_num_params(net); i++)
        if (!strcmp(cc_net_param(net, i)->name, mean)) return 1;
    return 0;
}

clcnn_status clcnn_checkpoint_load(clcnn_net *net, clcnn_optimizer *opt, const char *path) {
    CC_RETURN_IF(!net || !path, CLCNN_ERR_INVALID_ARG, "clcnn_checkpoint_load: NULL argument");
    CC_RETURN_IF(opt && opt->net != net, CLCNN_ERR_INVALID_ARG,
                 "clcnn_checkpoint_load: the optimizer belongs to another net");
    CC_TRY(cc_net_bind(net));
    ck_file ck;
    CC_TRY(ck_open(path, &ck));
    clcnn_status s = CLCNN_OK;
    uint8_t *data = NULL;
    int64_t opt_t = 0;
    uint64_t seed = 0, step = 0;
    int has_seed = 0, has_step = 0;

    int np = cc_net_num_params(net);
    for (int i = 0; i < np && s == CLCNN_OK; i++) {
        cc_param *p = cc_net_param(net, i);
        s = claim(&ck, p->name, p->value, "a parameter of the net");
    }
    if (s == CLCNN_OK && opt) s = claim_optimizer(&ck, opt, &opt_t);
    if (s == CLCNN_OK) s = ck_meta_u64(&ck, "clcnn.seed", &seed, &has_seed);
    if (s == CLCNN_OK) s = ck_meta_u64(&ck, "clcnn.step", &step, &has_step);
    if (s != CLCNN_OK) goto done;

    /* Whatever is left must be ignorable, else the checkpoint is for another net. */
    size_t unknown = 0, total = 0;
    char names[512] = "";
    for (size_t i = 0; i < ck.ne; i++) {
        ck_entry *e = &ck.e[i];
        if (e->claimed) {
            total += (size_t)(e->end - e->begin);
            continue;
        }
        if ((!opt && strncmp(e->name, "optim.", 6) == 0) || is_bn_counter(net, e)) continue;
        if (unknown++ < 4) {
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s'%s'", len ? ", " : "", e->name);
        }
    }
    if (unknown) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "checkpoint '%s': %zu tensor(s) the net does not have: %s%s (a checkpoint of "
                    "another architecture?)",
                    path, unknown, names, unknown > 4 ? ", ..." : "");
        goto done;
    }

    /* Read everything first; upload only when all of it is in memory. */
    data = malloc(total ? total : 1);
    if (!data) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "checkpoint '%s': out of host memory for %zu bytes",
                    path, total);
        goto done;
    }
    size_t pos = 0;
    uint64_t data_start = 8 + ck.header_len;
    for (size_t i = 0; i < ck.ne; i++) {
        ck_entry *e = &ck.e[i];
        if (!e->dst) continue;
        size_t bytes = (size_t)(e->end - e->begin);
        if (fseeko(ck.f, (off_t)(data_start + e->begin), SEEK_SET) != 0 ||
            fread(data + pos, 1, bytes, ck.f) != bytes) {
            s = cc_fail(CLCNN_ERR_IO,
                        "checkpoint '%s': cannot read tensor '%s' at byte %" PRIu64 ": %s", path,
                        e->name, data_start + e->begin,
                        ferror(ck.f) ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        if (host_big_endian()) swap32_inplace(data + pos, bytes);
        pos += bytes;
    }
    pos = 0;
    for (size_t i = 0; i < ck.ne; i++) {
        ck_entry *e = &ck.e[i];
        if (!e->dst) continue;
        size_t bytes = (size_t)(e->end - e->begin);
        s = clcnn_tensor_upload(e->dst, data + pos, bytes);
        if (s != CLCNN_OK) {
            cc_fail_append(s, " (loading tensor '%s' of checkpoint '%s')", e->name, path);
            goto done;
        }
        pos += bytes;
    }
    if (opt) opt->t = opt_t;
    if (has_seed) net->seed = seed;
    if (has_step) net->forwards = step;
    net->fwd_valid = 0;
    net->version++;
done:
    free(data);
    ck_close(&ck);
    return s;
}

clcnn_status clcnn_checkpoint_metadata(const char *path, const char *key, char *buf, size_t cap) {
    CC_RETURN_IF(!path || !key || !buf || cap == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_checkpoint_metadata: NULL argument or empty buffer");
    ck_file ck;
    CC_TRY(ck_open(path, &ck));
    const char *v = ck_meta(&ck, key);
    size_t len = v ? strlen(v) : 0;
    clcnn_status s = CLCNN_OK;
    if (len + 1 > cap)
        s = cc_fail(CLCNN_ERR_INVALID_ARG,
                    "clcnn_checkpoint_metadata: value of '%s' in '%s' has %zu bytes, the buffer "
                    "%zu",
                    key, path, len + 1, cap);
    else
        memcpy(buf, v ? v : "", len + 1);
    ck_close(&ck);
    return s;
}

/* ---- saving ---------------------------------------------------------------------------- */

typedef struct ck_out {
    char name[CK_NAME_CAP];
    const clcnn_tensor *t;
} ck_out;

/* Remove "<path>.tmp.<pid>" files left by saves whose process died (SIGKILL, power
 * loss): they were never renamed, so nothing refers to them. A temp file of a process
 * that still runs is left alone (it may be saving right now). Best effort, silent. */
static void remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    if (slash && slash == path) snprintf(dir, sizeof dir, "/");
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, blen) != 0 || strncmp(nm + blen, ".tmp.", 5) != 0) continue;
        char *end = NULL;
        long pid = strtol(nm + blen + 5, &end, 10);
        if (!end || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or unknown */
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        unlink(full);
    }
    closedir(d);
}

static clcnn_status write_all(int fd, const void *buf, size_t n, const char *tmp) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = cc_fault_hit(CC_FAULT_FILE_WRITE) ? (errno = EIO, -1) : write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        CC_RETURN_IF(w <= 0, CLCNN_ERR_IO, "cannot write '%s': %s", tmp,
                     w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return CLCNN_OK;
}

static int json_put(json_t *obj, const char *key, json_t *v) {
    return v ? json_object_set_new(obj, key, v) : -1;
}

/* The header JSON for the tensors `outs` laid out back to back, plus metadata. */
static clcnn_status build_header(const clcnn_net *net, const clcnn_optimizer *opt,
                                 const char *const *metadata, const ck_out *outs, int n,
                                 char **out) {
    json_t *root = json_object(), *meta = json_object();
    int bad = !root || !meta;
    char num[32];
    if (!bad && metadata) {
        for (int i = 0; metadata[i]; i += 2)
            bad |= json_put(meta, metadata[i], json_string(metadata[i + 1])) != 0;
    }
    if (!bad && !json_object_get(meta, "format"))
        bad |= json_put(meta, "format", json_string("pt")) != 0;
    snprintf(num, sizeof num, "%" PRIu64, net->seed);
    bad |= json_put(meta, "clcnn.seed", json_string(num)) != 0;
    snprintf(num, sizeof num, "%" PRIu64, net->forwards);
    bad |= json_put(meta, "clcnn.step", json_string(num)) != 0;
    if (opt) {
        bad |= json_put(meta, "optim.kind", json_string(optim_kind_name(opt->cfg.kind))) != 0;
        snprintf(num, sizeof num, "%" PRId64, opt->t);
        bad |= json_put(meta, "optim.step", json_string(num)) != 0;
    }
    if (!bad) {
        bad |= json_object_set(root, "__metadata__", meta) != 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n && !bad; i++) {
        const clcnn_tensor *t = outs[i].t;
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        bad |= !e || !shape || !offs;
        for (int d = 0; d < t->ndim && !bad; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) != 0;
        uint64_t bytes = (uint64_t)t->numel * 4;
        if (!bad) {
            bad |= json_array_append_new(offs, json_integer((json_int_t)off)) != 0;
            bad |= json_array_append_new(offs, json_integer((json_int_t)(off + bytes))) != 0;
            bad |= json_put(e, "dtype", json_string("F32")) != 0;
            bad |= json_object_set(e, "shape", shape) != 0;
            bad |= json_object_set(e, "data_offsets", offs) != 0;
            bad |= json_object_set(root, outs[i].name, e) != 0;
        }
        json_decref(shape);
        json_decref(offs);
        json_decref(e);
        off += bytes;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(meta);
    json_decref(root);
    CC_RETURN_IF(!text, CLCNN_ERR_OUT_OF_MEMORY,
                 "clcnn_checkpoint_save: cannot build the JSON header (out of memory, or a "
                 "metadata string that is not UTF-8)");
    *out = text;
    return CLCNN_OK;
}

clcnn_status clcnn_checkpoint_save(const clcnn_net *net, const clcnn_optimizer *opt,
                                   const char *path, const char *const *metadata) {
    CC_RETURN_IF(!net || !path || !*path, CLCNN_ERR_INVALID_ARG,
                 "clcnn_checkpoint_save: NULL argument or empty path");
    CC_RETURN_IF(opt && opt->net != net, CLCNN_ERR_INVALID_ARG,
                 "clcnn_checkpoint_save: the optimizer belongs to another net");
    for (int i = 0; metadata && metadata[i]; i += 2) {
        CC_RETURN_IF(!metadata[i + 1], CLCNN_ERR_INVALID_ARG,
                     "clcnn_checkpoint_save: metadata key '%s' has no value (the list is key, "
                     "value pairs ending in NULL)",
                     metadata[i]);
        CC_RETURN_IF(
            strncmp(metadata[i], "optim.", 6) == 0 || strncmp(metadata[i], "clcnn.", 6) == 0,
            CLCNN_ERR_INVALID_ARG,
            "clcnn_checkpoint_save: metadata key '%s' is reserved (optim.*, clcnn.*)", metadata[i]);
    }

    /* The tensors, in order: parameters, then optimizer slots. */
    CC_TRY(cc_net_bind((clcnn_net *)net));
    int np = cc_net_num_params(net);
    int cap = np + (opt ? 2 * opt->n : 0);
    ck_out *outs = calloc(cap ? (size_t)cap : 1, sizeof *outs);
    CC_RETURN_IF(!outs, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
    int n = 0;
    for (int i = 0; i < np; i++) {
        cc_param *p = cc_net_param(net, i);
        snprintf(outs[n].name, CK_NAME_CAP, "%s", p->name);
        outs[n++].t = p->value;
    }
    for (int i = 0; opt && i < opt->n; i++) {
        const char *pn = cc_optim_param_name(opt, i);
        if (opt->cfg.kind == CLCNN_OPTIM_ADAM) {
            snprintf(outs[n].name, CK_NAME_CAP, "optim.%s.m", pn);
            outs[n++].t = opt->slot1[i];
            snprintf(outs[n].name, CK_NAME_CAP, "optim.%s.v", pn);
            outs[n++].t = opt->slot2[i];
        } else if (opt->slot1[i]) {
            snprintf(outs[n].name, CK_NAME_CAP, "optim.%s.momentum", pn);
            outs[n++].t = opt->slot1[i];
        }
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += outs[i].t->numel * 4;

    clcnn_status s = CLCNN_OK;
    char *header = NULL, *tmp = NULL;
    uint8_t *data = malloc(total ? total : 1);
    int fd = -1;
    if (!data) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY,
                    "clcnn_checkpoint_save: out of host memory for %zu "
                    "bytes",
                    total);
        goto done;
    }
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = outs[i].t->numel * 4;
        s = clcnn_tensor_download(outs[i].t, data + pos, bytes);
        if (s != CLCNN_OK) goto done;
        /* NaN/Inf weights (a diverged run) must never replace a good checkpoint. */
        size_t bad = 0;
        for (size_t j = 0; j < outs[i].t->numel; j++)
            bad += !isfinite(((const float *)(data + pos))[j]);
        if (bad) {
            s = cc_fail(CLCNN_ERR_NUMERIC,
                        "clcnn_checkpoint_save: tensor '%s' holds %zu NaN/Inf value(s) of %zu "
                        "(training diverged?); checkpoint '%s' left as it was",
                        outs[i].name, bad, outs[i].t->numel, path);
            goto done;
        }
        if (host_big_endian()) swap32_inplace(data + pos, bytes);
        pos += bytes;
    }
    s = build_header(net, opt, metadata, outs, n, &header);
    if (s != CLCNN_OK) goto done;
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    char *grown = realloc(header, padded + 1);
    if (!grown) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    header = grown;
    memset(header + hlen, ' ', padded - hlen);
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    size_t tlen = strlen(path) + 32;
    tmp = malloc(tlen);
    if (!tmp) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    remove_stale_temps(path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = cc_fail(CLCNN_ERR_IO, "clcnn_checkpoint_save: cannot create '%s': %s", tmp,
                    strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to remove */
        goto done;
    }
    s = write_all(fd, lenb, 8, tmp);
    if (s == CLCNN_OK) s = write_all(fd, header, padded, tmp);
    if (s == CLCNN_OK) s = write_all(fd, data, total, tmp);
    if (s == CLCNN_OK && fsync(fd) != 0)
        s = cc_fail(CLCNN_ERR_IO, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
    int cr = close(fd);
    fd = -1;
    if (s == CLCNN_OK && cr != 0)
        s = cc_fail(CLCNN_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
    if (s == CLCNN_OK && rename(tmp, path) != 0)
        s = cc_fail(CLCNN_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (s != CLCNN_OK) {
        cc_fail_append(s, " (checkpoint '%s' left as it was)", path);
        goto done;
    }
    free(tmp);
    tmp = NULL;
    cc_fsync_dir_of(path);
done:
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
    free(tmp);
    free(header);
    free(data);
    free(outs);
    return s;
}
