/* Creating the data-parallel trainer: one training plan per local replica, the check that
 * every rank has the same settings, rank 0's parameters to every replica. */
#include "dist/trainer_internal.h"

#include <stdlib.h>
#include <string.h>

/* The settings every rank must share, by name (for the error message). */
#define SETTINGS(XX)                                                                               \
    XX(model, "model (a hash of its nodes and parameters)")                                        \
    XX(params, "parameter count")                                                                  \
    XX(state, "state count")                                                                       \
    XX(global_batch, "global batch")                                                               \
    XX(micro_batch, "micro-batch")                                                                 \
    XX(seed, "seed")                                                                               \
    XX(lr, "learning rate (bits)")                                                                 \
    XX(momentum, "momentum (bits)")                                                                \
    XX(weight_decay, "weight decay (bits)")                                                        \
    XX(reduce, "reduction")                                                                        \
    XX(bn_sync, "batch norm (1: synchronised)")                                                    \
    XX(check_every, "parameter check interval")                                                    \
    XX(flip, "flip augmentation")                                                                  \
    XX(shift, "shift augmentation")                                                                \
    XX(samples, "dataset size")                                                                    \
    XX(sample_shape, "sample shape (c*h*w)")                                                       \
    XX(classes, "class count")                                                                     \
    XX(local_replicas, "replicas per process")
#define FIELD_(name, text) uint64_t name;
typedef struct settings {
    SETTINGS(FIELD_)
} settings;
#undef FIELD_
#define NAME_(name, text) text,
static const char *const setting_names[] = {SETTINGS(NAME_)};
#undef NAME_

static uint64_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static clcnn_status model_hash(const clcnn_graph *g, const clcnn_train_plan *p, uint64_t *h) {
    *h = 0xcbf29ce484222325ull;
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        CC_TRY(clcnn_graph_node_info(g, i, &info));
        *h = cc_dist_fnv(*h, info.op_type, strlen(info.op_type) + 1);
    }
    for (int i = 0; i < clcnn_train_plan_num_params(p); i++) {
        const char *name = clcnn_train_plan_param_name(p, i);
        size_t n = clcnn_tensor_numel(clcnn_train_plan_param(p, name));
        *h = cc_dist_fnv(cc_dist_fnv(*h, name, strlen(name) + 1), &n, sizeof n);
    }
    return CLCNN_OK;
}

static clcnn_status check_settings(clcnn_dist_trainer *t, const settings *mine) {
    int n = clcnn_comm_size(t->comm);
    settings *all = malloc((size_t)n * sizeof *all);
    CC_RETURN_IF(!all, CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    clcnn_status s = cc_dist_allgather(t->comm, mine, all, sizeof *mine, "the settings");
    const size_t nf = sizeof setting_names / sizeof *setting_names;
    for (int p = 1; s == CLCNN_OK && p < n; p++) {
        const uint64_t *a = (const uint64_t *)&all[0], *b = (const uint64_t *)&all[p];
        for (size_t f = 0; f < nf; f++)
            if (a[f] != b[f]) {
                s = cc_fail(CLCNN_ERR_DIST,
                            "clcnn_dist_trainer_create: rank %d's %s is %llu but rank 0's is %llu "
                            "(every rank must run the same model, batches, seed, optimizer and "
                            "data)",
                            p, setting_names[f], (unsigned long long)b[f],
                            (unsigned long long)a[f]);
                break;
            }
    }
    free(all);
    return s;
}

static clcnn_status check_args(clcnn_comm *comm, clcnn_device *const *devs, int n_devs,
                               clcnn_graph *g, const clcnn_dataset *ds,
                               const clcnn_dist_config *cfg) {
    const char *f = "clcnn_dist_trainer_create";
    CC_RETURN_IF(!comm || !g || !ds || !cfg, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", f);
    CC_RETURN_IF(n_devs != comm->nlocal, CLCNN_ERR_INVALID_ARG,
                 "%s: %d devices for %d replicas in this process (one device per replica)", f,
                 n_devs, comm->nlocal);
    for (int i = 0; i < n_devs; i++) {
        CC_RETURN_IF(!devs[i], CLCNN_ERR_INVALID_ARG, "%s: device %d is NULL", f, i);
        for (int j = 0; j < i; j++)
            CC_RETURN_IF(devs[i] == devs[j], CLCNN_ERR_INVALID_ARG,
                         "%s: replicas %d and %d have the same device handle; each replica's "
                         "thread needs its own (open the device once per replica: "
                         "docs/threading.md)",
                         f, j, i);
    }
    size_t gb = cfg->global_batch, mb = cfg->micro_batch;
    CC_RETURN_IF(!gb || !mb || gb % mb, CLCNN_ERR_INVALID_ARG,
                 "%s: the micro-batch (%zu) must divide the global batch (%zu), both >= 1", f, mb,
                 gb);
    int R = clcnn_comm_replicas(comm);
    CC_RETURN_IF(
        gb / mb < (size_t)R, CLCNN_ERR_INVALID_ARG,
        "%s: global batch %zu / micro-batch %zu gives %zu micro-batches, fewer than the %d "
        "replicas",
        f, gb, mb, gb / mb, R);
    CC_RETURN_IF(clcnn_dataset_size(ds) < gb, CLCNN_ERR_INVALID_ARG,
                 "%s: the dataset has %zu samples, fewer than the global batch %zu", f,
                 clcnn_dataset_size(ds), gb);
    CC_RETURN_IF(cfg->reduce < CLCNN_DIST_ORDERED || cfg->reduce > CLCNN_DIST_NO_REDUCE,
                 CLCNN_ERR_INVALID_ARG, "%s: unknown reduction %d", f, (int)cfg->reduce);
    CC_RETURN_IF(cfg->bn_sync && cfg->reduce != CLCNN_DIST_ORDERED, CLCNN_ERR_UNSUPPORTED,
                 "%s: synchronised batch norm needs the ordered reduction (the micro-batch "
                 "rows it combines in order)",
                 f);
    CC_RETURN_IF(clcnn_graph_num_inputs(g) != 1 || clcnn_graph_num_outputs(g) != 1,
                 CLCNN_ERR_INVALID_ARG,
                 "%s: the graph has %d inputs and %d outputs (1 image input, 1 logits output)", f,
                 clcnn_graph_num_inputs(g), clcnn_graph_num_outputs(g));
    int c, h, w, nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    clcnn_dataset_shape(ds, &c, &h, &w);
    CC_TRY(clcnn_graph_value_shape(g, clcnn_graph_input_name(g, 0), &nd, d));
    CC_RETURN_IF(nd != 4 || d[1] != c || d[2] != h || d[3] != w, CLCNN_ERR_SHAPE,
                 "%s: the graph's input '%s' does not take %dx%dx%d samples", f,
                 clcnn_graph_input_name(g, 0), c, h, w);
    CC_TRY(clcnn_graph_value_shape(g, clcnn_graph_output_name(g, 0), &nd, d));
    CC_RETURN_IF(nd != 2 || d[1] != clcnn_dataset_num_classes(ds), CLCNN_ERR_SHAPE,
                 "%s: the graph's output '%s' is not [N, %d] logits", f,
                 clcnn_graph_output_name(g, 0), clcnn_dataset_num_classes(ds));
    return CLCNN_OK;
}

static clcnn_status make_replica(clcnn_dist_trainer *t, cc_replica *rp, clcnn_device *dev,
                                 clcnn_graph *g, const clcnn_dataset *ds) {
    rp->t = t;
    rp->dev = dev;
    clcnn_train_options o;
    memset(&o, 0, sizeof o);
    o.seed = t->cfg.seed;
    cc_dist_bn_sync_init(rp);
    if (t->cfg.bn_sync) o.bn_sync = &rp->sync;
    size_t mb = t->cfg.micro_batch;
    CC_TRY(clcnn_train_plan_create(dev, g, (int)mb, &o, &rp->plan));
    clcnn_batcher_config bc = clcnn_batcher_config_default();
    bc.batch_size = mb;
    bc.shuffle = 1;
    bc.drop_last = 1;
    bc.seed = t->cfg.seed;
    bc.flip = t->cfg.flip;
    bc.shift = t->cfg.shift;
    CC_TRY(clcnn_batcher_create(ds, &bc, &rp->batcher));
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    size_t one = 1, classes = (size_t)clcnn_dataset_num_classes(ds);
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 4, (size_t[]){mb, (size_t)c, (size_t)h, (size_t)w},
                               &rp->x));
    CC_TRY(clcnn_tensor_create(dev, CLCNN_I32, 1, &mb, &rp->labels));
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, &one, &rp->loss));
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, 2, (size_t[]){mb, classes}, &rp->dlogits));
    return CLCNN_OK;
}

static clcnn_status layout(clcnn_dist_trainer *t) {
    for (int r = 0; r < t->nlocal; r++) {
        cc_replica *rp = &t->reps[r];
        size_t P = clcnn_tensor_numel(clcnn_train_plan_params(rp->plan));
        clcnn_tensor *st = clcnn_train_plan_state(rp->plan);
        size_t S = st ? clcnn_tensor_numel(st) : 0;
        if (r == 0) t->P = P, t->S = S;
        CC_RETURN_IF(P != t->P || S != t->S, CLCNN_ERR_DIST,
                     "dist: replica %d's plan has %zu + %zu floats, replica 0's %zu + %zu", r, P, S,
                     t->P, t->S);
    }
    t->A = t->P + t->S;
    t->L = t->A + 1;
    int R = clcnn_comm_replicas(t->comm);
    t->host = calloc(t->A, sizeof *t->host);
    t->next = calloc(t->L, sizeof *t->next);
    t->velocity = calloc(t->P ? t->P : 1, sizeof *t->velocity);
    CC_RETURN_IF(!t->host || !t->next || !t->velocity, CLCNN_ERR_OUT_OF_MEMORY,
                 "dist: out of host memory");
    for (int r = 0; r < t->nlocal; r++) {
        cc_replica *rp = &t->reps[r];
        size_t hi;
        cc_dist_split(t->M, R, cc_dist_replica(t->comm, r), &rp->first, &hi);
        rp->k = hi - rp->first;
        size_t nrows = t->cfg.reduce == CLCNN_DIST_ORDERED ? (rp->k ? rp->k : 1) : 1;
        rp->rows = calloc(nrows * t->L, sizeof *rp->rows);
        rp->scratch = calloc(t->S ? t->S : 1, sizeof *rp->scratch);
        CC_RETURN_IF(!rp->rows || !rp->scratch, CLCNN_ERR_OUT_OF_MEMORY,
                     "dist: out of host memory for %zu micro-batch rows of %zu floats", nrows,
                     t->L);
        if (t->cfg.reduce == CLCNN_DIST_NO_REDUCE) {
            size_t np = t->P ? t->P : 1;
            CC_TRY(clcnn_tensor_create(rp->dev, CLCNN_F32, 1, &np, &rp->velocity));
        }
    }
    return CLCNN_OK;
}

clcnn_status cc_dist_upload_all(clcnn_dist_trainer *t) {
    for (int r = 0; r < t->nlocal; r++) {
        cc_replica *rp = &t->reps[r];
        CC_TRY(clcnn_tensor_upload(clcnn_train_plan_params(rp->plan), t->host, t->P * 4));
        if (t->S)
            CC_TRY(clcnn_tensor_upload(clcnn_train_plan_state(rp->plan), t->host + t->P,
                                       t->S * sizeof(float)));
        if (rp->velocity) CC_TRY(clcnn_tensor_fill(rp->velocity, 0.0f));
    }
    return CLCNN_OK;
}

static clcnn_status create(clcnn_dist_trainer *t, clcnn_device *const *devs, clcnn_graph *g,
                           const clcnn_dataset *ds) {
    for (int r = 0; r < t->nlocal; r++)
        CC_TRY(make_replica(t, &t->reps[r], devs[r], g, ds));
    CC_TRY(layout(t));
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    t->sample = (size_t)c * (size_t)h * (size_t)w;
    const clcnn_dist_config *k = &t->cfg;
    settings mine = {.params = t->P,
                     .state = t->S,
                     .global_batch = k->global_batch,
                     .micro_batch = k->micro_batch,
                     .seed = k->seed,
                     .lr = bits(k->lr),
                     .momentum = bits(k->momentum),
                     .weight_decay = bits(k->weight_decay),
                     .reduce = (uint64_t)k->reduce,
                     .bn_sync = (uint64_t)k->bn_sync,
                     .check_every = (uint64_t)k->check_every,
                     .flip = (uint64_t)k->flip,
                     .shift = (uint64_t)k->shift,
                     .samples = clcnn_dataset_size(ds),
                     .sample_shape = t->sample,
                     .classes = (uint64_t)clcnn_dataset_num_classes(ds),
                     .local_replicas = (uint64_t)t->nlocal};
    CC_TRY(model_hash(g, t->reps[0].plan, &mine.model));
    CC_TRY(check_settings(t, &mine));
    /* rank 0's parameters and state (its graph's initializers) to every replica */
    clcnn_status s = CLCNN_OK;
    if (clcnn_comm_rank(t->comm) == 0) {
        s = clcnn_tensor_download(clcnn_train_plan_params(t->reps[0].plan), t->host, t->P * 4);
        if (s == CLCNN_OK && t->S)
            s = clcnn_tensor_download(clcnn_train_plan_state(t->reps[0].plan), t->host + t->P,
                                      t->S * sizeof(float));
    }
    CC_TRY(cc_dist_agree(t->comm, s));
    CC_TRY(cc_dist_bcast(t->comm, t->host, t->A * sizeof(float), "the initial parameters"));
    return cc_dist_upload_all(t);
}

clcnn_status clcnn_dist_trainer_create(clcnn_comm *comm, clcnn_device *const *devs, int n_devs,
                                       clcnn_graph *g, const clcnn_dataset *train,
                                       const clcnn_dist_config *cfg, clcnn_dist_trainer **out) {
    CC_RETURN_IF(!out || !devs, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_create: NULL argument");
    *out = NULL;
    CC_TRY(check_args(comm, devs, n_devs, g, train, cfg));
    clcnn_dist_trainer *t = calloc(1, sizeof *t);
    CC_RETURN_IF(!t, CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    t->comm = comm;
    t->cfg = *cfg;
    if (cfg->bn_sync) pthread_mutex_init(&t->bn_mu, NULL);
    t->nlocal = n_devs;
    t->M = cfg->global_batch / cfg->micro_batch;
    t->steps_per_epoch = (int64_t)(clcnn_dataset_size(train) / cfg->global_batch);
    t->reps = calloc((size_t)n_devs, sizeof *t->reps);
    clcnn_status s =
        t->reps ? CLCNN_OK : cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "dist: out of host memory");
    for (int r = 0; s == CLCNN_OK && r < n_devs; r++)
        t->reps[r].r = r;
    if (s == CLCNN_OK) s = create(t, devs, g, train);
    if (s != CLCNN_OK) {
        clcnn_dist_trainer_free(t);
        return s;
    }
    *out = t;
    return CLCNN_OK;
}

void clcnn_dist_trainer_free(clcnn_dist_trainer *t) {
    if (!t) return;
    for (int r = 0; t->reps && r < t->nlocal; r++) {
        cc_replica *rp = &t->reps[r];
        clcnn_train_plan_free(rp->plan);
        clcnn_batcher_free(rp->batcher);
        clcnn_tensor_free(rp->x);
        clcnn_tensor_free(rp->labels);
        clcnn_tensor_free(rp->loss);
        clcnn_tensor_free(rp->dlogits);
        clcnn_tensor_free(rp->velocity);
        free(rp->rows);
        free(rp->scratch);
    }
    cc_dist_bn_sync_free(t);
    free(t->reps);
    free(t->host);
    free(t->next);
    free(t->velocity);
    free(t);
}

clcnn_status clcnn_dist_trainer_to_graph(const clcnn_dist_trainer *t, clcnn_graph *g) {
    CC_RETURN_IF(!t || !g, CLCNN_ERR_INVALID_ARG, "clcnn_dist_trainer_to_graph: NULL argument");
    return clcnn_train_plan_to_graph(t->reps[0].plan, g);
}
