/* Checkpoints of a net and its optimizer, in the safetensors format (lib/nn/safetensors.c):
 * the names of the tensors, and loading.
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
 * Loading validates the whole header against the file and the net and reads every tensor
 * before it uploads anything, so a failed load leaves the net and the optimizer unchanged.
 * Saving: lib/nn/checkpoint_save.c. */
#include "checkpoint_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Claim entry `name` for tensor t: it must exist as F32 with t's exact shape. */
static clcnn_status claim(ck_file *ck, const char *name, clcnn_tensor *t, const char *what) {
    ck_entry *e = cc_ck_find(ck, name);
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
                       name, cc_ck_entry_shape_str(e, a, sizeof a),
                       cc_shape_str(t->shape, t->ndim, b, sizeof b));
    }
    e->claimed = 1;
    e->dst = t;
    return CLCNN_OK;
}

const char *cc_ck_optim_kind_name(clcnn_optim_kind k) {
    return k == CLCNN_OPTIM_ADAM ? "adam" : "sgd";
}

/* Match the optimizer's slots and step count; on success *t gets the step count. */
static clcnn_status claim_optimizer(ck_file *ck, const clcnn_optimizer *opt, int64_t *t) {
    const char *kind = cc_ck_meta(ck, "optim.kind");
    CC_RETURN_IF(!kind, CLCNN_ERR_FORMAT,
                 "checkpoint '%s' has no optimizer state (it was saved without an optimizer); "
                 "load it with opt = NULL to restore the weights only",
                 ck->path);
    CC_RETURN_IF(strcmp(kind, cc_ck_optim_kind_name(opt->cfg.kind)) != 0, CLCNN_ERR_FORMAT,
                 "checkpoint '%s' holds %s optimizer state but the optimizer is %s", ck->path, kind,
                 cc_ck_optim_kind_name(opt->cfg.kind));
    uint64_t step = 0;
    int found = 0;
    CC_TRY(cc_ck_meta_u64(ck, "optim.step", &step, &found));
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
    CC_TRY(cc_ck_open(path, &ck));
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
    if (s == CLCNN_OK) s = cc_ck_meta_u64(&ck, "clcnn.seed", &seed, &has_seed);
    if (s == CLCNN_OK) s = cc_ck_meta_u64(&ck, "clcnn.step", &step, &has_step);
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
        if (cc_ck_host_big_endian()) cc_ck_swap32_inplace(data + pos, bytes);
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
    cc_ck_close(&ck);
    return s;
}

clcnn_status clcnn_checkpoint_metadata(const char *path, const char *key, char *buf, size_t cap) {
    CC_RETURN_IF(!path || !key || !buf || cap == 0, CLCNN_ERR_INVALID_ARG,
                 "clcnn_checkpoint_metadata: NULL argument or empty buffer");
    ck_file ck;
    CC_TRY(cc_ck_open(path, &ck));
    const char *v = cc_ck_meta(&ck, key);
    size_t len = v ? strlen(v) : 0;
    clcnn_status s = CLCNN_OK;
    if (len + 1 > cap)
        s = cc_fail(CLCNN_ERR_INVALID_ARG,
                    "clcnn_checkpoint_metadata: value of '%s' in '%s' has %zu bytes, the buffer "
                    "%zu",
                    key, path, len + 1, cap);
    else
        memcpy(buf, v ? v : "", len + 1);
    cc_ck_close(&ck);
    return s;
}
