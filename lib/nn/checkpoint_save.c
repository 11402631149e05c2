/* Saving checkpoints: the net's parameters, then the optimizer's slots, as F32 tensors
 * back to back in a safetensors file (the names: lib/nn/checkpoint.c; the format:
 * lib/nn/safetensors.c).
 *
 * Saving writes "<path>.tmp.<pid>" in the same directory, fsyncs it, renames it over
 * path and fsyncs the directory: a crash or failure at any point leaves either the old
 * or the new complete file. A tensor holding NaN or Inf is refused (CLCNN_ERR_NUMERIC)
 * before anything is written. */
#include "checkpoint_internal.h"
#include "fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
        bad |= json_put(meta, "optim.kind", json_string(cc_ck_optim_kind_name(opt->cfg.kind))) != 0;
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
        if (cc_ck_host_big_endian()) cc_ck_swap32_inplace(data + pos, bytes);
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
