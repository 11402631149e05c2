/* The trainer's checkpoints: safetensors files (little-endian), written by rank 0 to a
 * temporary name and renamed; read by rank 0 and broadcast. Tensors in order: every
 * parameter and state tensor under its initializer name, "optim.<name>.momentum" for each
 * trainable one, "optim.step" (I64 [1]); clcnn_checkpoint_load (nn.h) without an optimizer
 * skips the optim.* tensors, so `clcnn eval` reads the file when the metadata names the
 * model. Without its "__metadata__" the header depends only on the model: a file is this
 * model's exactly when that part is what this trainer would write. */
#include "dist/trainer_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int put(json_t *obj, const char *key, json_t *v) {
    return v ? json_object_set_new(obj, key, v) : -1;
}

static int entry(json_t *h, const char *name, const char *dtype, const clcnn_tensor *shape_of,
                 size_t numel, size_t *at) {
    json_t *e = json_object(), *shape = json_array(), *off = json_array();
    int bad = !e || !shape || !off;
    int nd = shape_of ? clcnn_tensor_ndim(shape_of) : 1;
    for (int d = 0; !bad && d < nd; d++)
        bad = json_array_append_new(
            shape, json_integer((json_int_t)(shape_of ? clcnn_tensor_dim(shape_of, d) : numel)));
    size_t bytes = numel * (strcmp(dtype, "I64") ? 4 : 8);
    bad = bad || json_array_append_new(off, json_integer((json_int_t)*at)) ||
          json_array_append_new(off, json_integer((json_int_t)(*at + bytes)));
    *at += bytes;
    if (bad || put(e, "dtype", json_string(dtype)) || json_object_set_new(e, "shape", shape) ||
        json_object_set_new(e, "data_offsets", off)) {
        json_decref(e);
        return -1;
    }
    return json_object_set_new(h, name, e);
}

/* The header (JSON padded with spaces to a multiple of 8) this trainer writes; meta_kv:
 * NULL (the part a loaded file must match) or key, value, ..., NULL. */
static clcnn_status header(const clcnn_dist_trainer *t, const char *const *meta_kv, char **out,
                           size_t *len, size_t *data) {
    const clcnn_train_plan *p = t->reps[0].plan;
    json_t *h = json_object(), *meta = meta_kv ? json_object() : NULL;
    int bad = !h || (meta_kv && !meta);
    for (int i = 0; !bad && meta_kv && meta_kv[i] && meta_kv[i + 1]; i += 2)
        bad = put(meta, meta_kv[i], json_string(meta_kv[i + 1]));
    if (meta) bad = bad || json_object_set_new(h, "__metadata__", meta);
    size_t at = 0;
    int n = clcnn_train_plan_num_params(p);
    for (int i = 0; !bad && i < n; i++) {
        const char *name = clcnn_train_plan_param_name(p, i);
        const clcnn_tensor *v = clcnn_train_plan_param(p, name);
        bad = entry(h, name, "F32", v, clcnn_tensor_numel(v), &at);
    }
    char key[512];
    for (int i = 0; !bad && i < n; i++) {
        const char *name = clcnn_train_plan_param_name(p, i);
        if (!clcnn_train_plan_grad(p, name)) continue;
        snprintf(key, sizeof key, "optim.%s.momentum", name);
        const clcnn_tensor *v = clcnn_train_plan_param(p, name);
        bad = entry(h, key, "F32", v, clcnn_tensor_numel(v), &at);
    }
    bad = bad || entry(h, "optim.step", "I64", NULL, 1, &at);
    char *js = bad ? NULL : json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    CC_RETURN_IF(!js, CLCNN_ERR_OUT_OF_MEMORY, "dist checkpoint: cannot build the header");
    size_t n_js = strlen(js), padded = (n_js + 7) / 8 * 8;
    *out = malloc(padded + 1);
    if (*out) {
        memcpy(*out, js, n_js);
        memset(*out + n_js, ' ', padded - n_js);
        (*out)[padded] = '\0';
    }
    free(js);
    CC_RETURN_IF(!*out, CLCNN_ERR_OUT_OF_MEMORY, "dist checkpoint: out of host memory");
    *len = padded;
    *data = at;
    return CLCNN_OK;
}

/* Visit the data of the file in order: fn(ctx, host pointer, bytes). */
typedef clcnn_status (*visit_fn)(void *ctx, void *ptr, size_t bytes, const char *name);

static clcnn_status visit(clcnn_dist_trainer *t, visit_fn fn, void *ctx) {
    const clcnn_train_plan *p = t->reps[0].plan;
    int n = clcnn_train_plan_num_params(p);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const char *name = clcnn_train_plan_param_name(p, i);
            int trained = clcnn_train_plan_grad(p, name) != NULL;
            if (pass == 1 && !trained) continue;
            size_t off = clcnn_train_plan_param_offset(p, i);
            size_t numel = clcnn_tensor_numel(clcnn_train_plan_param(p, name));
            float *base = pass == 0 ? t->host : t->velocity;
            CC_TRY(fn(ctx, base + off, numel * sizeof(float), name));
        }
    return fn(ctx, &t->step, sizeof t->step, "optim.step");
}

typedef struct sink {
    int fd;
    const char *tmp;
} sink;

static clcnn_status write_all(int fd, const void *buf, size_t n, const char *tmp) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        CC_RETURN_IF(w <= 0, CLCNN_ERR_IO, "dist checkpoint: cannot write '%s': %s", tmp,
                     strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return CLCNN_OK;
}

static clcnn_status put_tensor(void *ctx, void *ptr, size_t bytes, const char *name) {
    sink *k = ctx;
    if (strcmp(name, "optim.step")) {
        const float *f = ptr;
        for (size_t i = 0; i < bytes / 4; i++)
            CC_RETURN_IF(!isfinite(f[i]), CLCNN_ERR_NUMERIC,
                         "dist checkpoint: '%s' holds %g at %zu: the run diverged, nothing saved",
                         name, (double)f[i], i);
    }
    return write_all(k->fd, ptr, bytes, k->tmp);
}

static clcnn_status save(clcnn_dist_trainer *t, const char *path, const char *const *meta) {
    static const char *const none[] = {NULL};
    char *hdr = NULL;
    size_t hlen = 0, data = 0;
    CC_TRY(header(t, meta ? meta : none, &hdr, &hlen, &data));
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    if (!tmp) {
        free(hdr);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist checkpoint: out of host memory");
    }
    snprintf(tmp, cap, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    clcnn_status s = fd < 0 ? cc_fail(CLCNN_ERR_IO, "dist checkpoint: cannot create '%s': %s", tmp,
                                      strerror(errno))
                            : CLCNN_OK;
    uint64_t n = hlen;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(n >> (8 * i));
    sink k = {fd, tmp};
    if (s == CLCNN_OK) s = write_all(fd, le, 8, tmp);
    if (s == CLCNN_OK) s = write_all(fd, hdr, hlen, tmp);
    if (s == CLCNN_OK) s = visit(t, put_tensor, &k);
    if (s == CLCNN_OK && fsync(fd) != 0)
        s = cc_fail(CLCNN_ERR_IO, "dist checkpoint: cannot sync '%s': %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && s == CLCNN_OK)
        s = cc_fail(CLCNN_ERR_IO, "dist checkpoint: cannot close '%s': %s", tmp, strerror(errno));
    if (s == CLCNN_OK && rename(tmp, path) != 0)
        s = cc_fail(CLCNN_ERR_IO, "dist checkpoint: cannot rename '%s' to '%s': %s", tmp, path,
                    strerror(errno));
    if (s == CLCNN_OK)
        cc_fsync_dir_of(path);
    else if (fd >= 0)
        unlink(tmp);
    free(tmp);
    free(hdr);
    return s;
}

clcnn_status clcnn_dist_trainer_save(clcnn_dist_trainer *t, const char *path,
                                     const char *const *metadata) {
    CC_RETURN_IF(!t || !path, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_save: NULL argument");
    CC_RETURN_IF(t->cfg.reduce == CLCNN_DIST_NO_REDUCE, CLCNN_ERR_UNSUPPORTED,
                 "clcnn_dist_trainer_save: the replicas of a run without exchange hold "
                 "different parameters; nothing to save");
    CC_TRY(cc_dist_gather_slices(t->comm, t->velocity, t->P, t->L));
    clcnn_status s = clcnn_comm_rank(t->comm) == 0 ? save(t, path, metadata) : CLCNN_OK;
    return cc_dist_agree(t->comm, s);
}

/* ---- loading ------------------------------------------------------------------------ */

typedef struct source {
    const unsigned char *p;
} source;

static clcnn_status get_tensor(void *ctx, void *ptr, size_t bytes, const char *name) {
    source *src = ctx;
    memcpy(ptr, src->p, bytes);
    src->p += bytes;
    return CLCNN_OK;
}

/* Whether the file's header (n bytes at h), without its metadata, is want. */
static int header_matches(const unsigned char *h, size_t n, const char *want) {
    json_t *j = json_loadb((const char *)h, n, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    json_object_del(j, "__metadata__");
    char *js = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    size_t wl = strlen(want);
    while (wl && want[wl - 1] == ' ')
        wl--;
    int ok = js && strlen(js) == wl && !memcmp(js, want, wl);
    free(js);
    return ok;
}

static clcnn_status load(clcnn_dist_trainer *t, const char *path) {
    char *hdr = NULL;
    size_t hlen = 0, data = 0;
    CC_TRY(header(t, NULL, &hdr, &hlen, &data));
    FILE *f = fopen(path, "rb");
    clcnn_status s =
        f ? CLCNN_OK
          : cc_fail(CLCNN_ERR_IO, "dist checkpoint: cannot open '%s': %s", path, strerror(errno));
    unsigned char le[8];
    uint64_t n = 0;
    size_t got = s == CLCNN_OK ? fread(le, 1, 8, f) : 0;
    for (int i = 0; s == CLCNN_OK && got == 8 && i < 8; i++)
        n |= (uint64_t)le[i] << (8 * i);
    /* the header is this model's plus at most 1 MiB of metadata */
    int sane = got == 8 && n >= hlen && n <= hlen + (1u << 20);
    size_t want = sane ? (size_t)n + data : 0;
    unsigned char *buf = s == CLCNN_OK && sane ? malloc(want + 1) : NULL;
    if (s == CLCNN_OK && sane && !buf)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist checkpoint: no memory");
    size_t body = buf ? fread(buf, 1, want + 1, f) : 0;
    if (s == CLCNN_OK && (!sane || body != want || !header_matches(buf, (size_t)n, hdr)))
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "dist checkpoint: '%s' is not a checkpoint of this model (its header or size "
                    "differs from this model's %zu + %zu bytes)",
                    path, hlen, data);
    hlen = (size_t)n;
    float *host = NULL, *vel = NULL;
    int64_t step = t->step;
    if (s == CLCNN_OK) { /* into copies: on a bad file nothing changes */
        host = malloc(t->A * sizeof *host);
        vel = malloc((t->P ? t->P : 1) * sizeof *vel);
        if (!host || !vel) s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist checkpoint: no memory");
    }
    if (s == CLCNN_OK) {
        float *h0 = t->host, *v0 = t->velocity;
        memcpy(host, h0, t->A * sizeof *host);
        t->host = host;
        t->velocity = vel;
        source src = {buf + hlen};
        s = visit(t, get_tensor, &src);
        step = t->step;
        t->host = h0;
        t->velocity = v0;
    }
    if (s == CLCNN_OK) {
        memcpy(t->host, host, t->A * sizeof *host);
        memcpy(t->velocity, vel, t->P * sizeof *vel);
        t->step = step;
    }
    if (f) fclose(f);
    free(buf);
    free(host);
    free(vel);
    free(hdr);
    return s;
}

clcnn_status clcnn_dist_trainer_load(clcnn_dist_trainer *t, const char *path) {
    CC_RETURN_IF(!t || !path, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_load: NULL argument");
    clcnn_status s = clcnn_comm_rank(t->comm) == 0 ? load(t, path) : CLCNN_OK;
    CC_TRY(cc_dist_agree(t->comm, s));
    CC_TRY(cc_dist_bcast(t->comm, t->host, t->A * sizeof(float), "the checkpoint's parameters"));
    CC_TRY(cc_dist_bcast(t->comm, t->velocity, t->P * sizeof(float), "the checkpoint's momentum"));
    CC_TRY(cc_dist_bcast(t->comm, &t->step, sizeof t->step, "the checkpoint's step"));
    return cc_dist_upload_all(t);
}
