/* clcnn train --devices LIST|all, and any clcnn train under mpirun: data-parallel training
 * through clcnn_dist_trainer (include/clcnn/dist.h, docs/distributed.md). A zoo model on
 * MNIST-format data, SGD with momentum and a learning-rate schedule, the global batch cut
 * into micro-batches; per epoch rank 0 evaluates the test set, prints the results and
 * writes the checkpoint (the trainer's safetensors, with the model's name and classes as
 * metadata, so `clcnn eval` reads it; --resume continues from it). Under
 * mpirun (Open MPI's OMPI_COMM_WORLD_SIZE is set) each rank runs the replicas of its
 * --devices entries (default: the device whose index is its local rank). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/dist.h"
#include "commands.h"
#include "models.h"

#define PROG "clcnn train"

typedef struct dsettings {
    const char *model, *data, *checkpoint, *devices, *schedule, *reduce, *bn;
    long long epochs, batch, micro, seed, limit_train, limit_test;
    double lr, min_lr, momentum, weight_decay, timeout;
    int resume;
} dsettings;

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn train --devices LIST|all [options]   (several devices in one process)\n"
            "       mpirun -np N clcnn train [--devices LIST] [options]   (over MPI ranks)\n"
            "Data-parallel training (docs/distributed.md): the same bytes for any replica count.\n"
            "  --devices LIST|all   device selectors, comma-separated, one replica each; under\n"
            "                       mpirun the rank of local rank l takes entry l (cycled);\n"
            "                       default there: the device of index l\n"
            "  --optimizer sgd      SGD with momentum (the only optimizer here; required)\n"
            "  --model bn|lenet     zoo model (default bn)\n"
            "  --epochs N           (default 8)   --batch N   global batch (default 64)\n"
            "  --micro-batch N      samples per micro-batch (default: batch / replicas)\n"
            "  --lr F (default 0.05) --momentum F (0.9) --weight-decay F (0) --min-lr F (0)\n"
            "  --schedule cosine|constant|step   (default cosine)\n"
            "  --reduce ordered|allreduce   (default ordered: repeatable for any count)\n"
            "  --bn local|sync      batch norm per micro-batch (default) or synchronised over\n"
            "                       the global batch (with the ordered reduction)\n"
            "  --seed N  --data DIR  --limit-train N  --limit-test N  --timeout S (MPI, 30)\n"
            "  --checkpoint FILE    (default ./clcnn-dist.safetensors)   --resume\n");
}

static int parse(int argc, char **argv, dsettings *st) {
    enum {
        O_DEV = 300,
        O_OPT,
        O_MODEL,
        O_EP,
        O_B,
        O_MB,
        O_LR,
        O_MOM,
        O_WD,
        O_MINLR,
        O_SCHED,
        O_RED,
        O_BN,
        O_SEED,
        O_DATA,
        O_LTR,
        O_LTE,
        O_TO,
        O_CK,
        O_RES
    };
    static const struct option opts[] = {{"devices", required_argument, 0, O_DEV},
                                         {"optimizer", required_argument, 0, O_OPT},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"epochs", required_argument, 0, O_EP},
                                         {"batch", required_argument, 0, O_B},
                                         {"micro-batch", required_argument, 0, O_MB},
                                         {"lr", required_argument, 0, O_LR},
                                         {"momentum", required_argument, 0, O_MOM},
                                         {"weight-decay", required_argument, 0, O_WD},
                                         {"min-lr", required_argument, 0, O_MINLR},
                                         {"schedule", required_argument, 0, O_SCHED},
                                         {"reduce", required_argument, 0, O_RED},
                                         {"bn", required_argument, 0, O_BN},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"data", required_argument, 0, O_DATA},
                                         {"limit-train", required_argument, 0, O_LTR},
                                         {"limit-test", required_argument, 0, O_LTE},
                                         {"timeout", required_argument, 0, O_TO},
                                         {"checkpoint", required_argument, 0, O_CK},
                                         {"resume", no_argument, 0, O_RES},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o, bad = 0, sgd = 0;
    optind = 1;
    while (!bad && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_DEV:
            st->devices = optarg;
            break;
        case O_OPT:
            sgd = !strcmp(optarg, "sgd");
            if (!sgd) {
                fprintf(stderr,
                        PROG ": data-parallel training runs --optimizer sgd only (SGD "
                             "with momentum on the host; '%s' is not built)\n",
                        optarg);
                bad = 1;
            }
            break;
        case O_MODEL:
            st->model = optarg;
            break;
        case O_EP:
            bad = parse_long(PROG, "--epochs", optarg, 1, 100000, &st->epochs);
            break;
        case O_B:
            bad = parse_long(PROG, "--batch", optarg, 1, 65536, &st->batch);
            break;
        case O_MB:
            bad = parse_long(PROG, "--micro-batch", optarg, 1, 65536, &st->micro);
            break;
        case O_LR:
            bad = parse_float(PROG, "--lr", optarg, 1e-12, 100, &st->lr);
            break;
        case O_MOM:
            bad = parse_float(PROG, "--momentum", optarg, 0, 0.9999, &st->momentum);
            break;
        case O_WD:
            bad = parse_float(PROG, "--weight-decay", optarg, 0, 1, &st->weight_decay);
            break;
        case O_MINLR:
            bad = parse_float(PROG, "--min-lr", optarg, 0, 100, &st->min_lr);
            break;
        case O_SCHED:
            st->schedule = optarg;
            break;
        case O_RED:
            st->reduce = optarg;
            break;
        case O_BN:
            st->bn = optarg;
            break;
        case O_SEED:
            bad = parse_long(PROG, "--seed", optarg, 0, (1LL << 62), &st->seed);
            break;
        case O_DATA:
            st->data = optarg;
            break;
        case O_LTR:
            bad = parse_long(PROG, "--limit-train", optarg, 0, 1LL << 40, &st->limit_train);
            break;
        case O_LTE:
            bad = parse_long(PROG, "--limit-test", optarg, 0, 1LL << 40, &st->limit_test);
            break;
        case O_TO:
            bad = parse_float(PROG, "--timeout", optarg, 1, 86400, &st->timeout);
            break;
        case O_CK:
            st->checkpoint = optarg;
            break;
        case O_RES:
            st->resume = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            bad = 1;
        }
    }
    if (!bad && !sgd) {
        fprintf(stderr, PROG ": data-parallel training runs SGD with momentum only: pass "
                             "--optimizer sgd\n");
        bad = 1;
    }
    if (!bad && optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    if (!bad && strcmp(st->schedule, "cosine") && strcmp(st->schedule, "constant") &&
        strcmp(st->schedule, "step")) {
        fprintf(stderr, PROG ": --schedule: '%s' is not cosine, constant or step\n", st->schedule);
        bad = 1;
    }
    if (!bad && strcmp(st->reduce, "ordered") && strcmp(st->reduce, "allreduce")) {
        fprintf(stderr, PROG ": --reduce: '%s' is not ordered or allreduce\n", st->reduce);
        bad = 1;
    }
    if (!bad && strcmp(st->bn, "local") && strcmp(st->bn, "sync")) {
        fprintf(stderr, PROG ": --bn: '%s' is not local or sync\n", st->bn);
        bad = 1;
    }
    if (bad) usage(stderr);
    return bad;
}

/* The selectors of this process's replicas: --devices "all" (every device), a list (one
 * replica each; under MPI, entry local_rank cycled), or under MPI the local rank's index. */
static int selectors(const dsettings *st, int mpi, int local_rank, char sel[][64], int cap) {
    size_t n = 0;
    clcnn_device_info info[64];
    if (st->devices && !strcmp(st->devices, "all")) {
        if (clcnn_device_list(info, 64, &n) != CLCNN_OK || n == 0) return 0;
        if (mpi) return snprintf(sel[0], 64, "%zu", (size_t)local_rank % n), 1;
        for (size_t i = 0; i < n && (int)i < cap; i++)
            snprintf(sel[i], 64, "%zu", i);
        return (int)(n < (size_t)cap ? n : (size_t)cap);
    }
    if (!st->devices) return snprintf(sel[0], 64, "%d", local_rank), 1;
    int count = 0;
    for (const char *p = st->devices; *p && count < cap;) {
        size_t len = strcspn(p, ",");
        snprintf(sel[count++], 64, "%.*s", (int)(len < 63 ? len : 63), p);
        p += len + (p[len] == ',');
    }
    if (mpi && count) {
        memmove(sel[0], sel[local_rank % count], 64);
        return 1;
    }
    return count;
}

static int run(const dsettings *st, clcnn_comm *comm, int nrep, clcnn_device **devs) {
    int rank = clcnn_comm_rank(comm), rc = 1;
    clcnn_model_info m;
    clcnn_net *net = NULL, *enet = NULL;
    clcnn_graph *g = NULL;
    clcnn_dataset *train = NULL, *test = NULL;
    clcnn_dist_trainer *t = NULL;
    if (!find_model_or_say(PROG, st->model, &m) || is_onnx_path(st->model)) return 2;
    clcnn_status s = clcnn_dataset_load_mnist_first(st->data, CLCNN_SPLIT_TRAIN,
                                                    (size_t)st->limit_train, &train);
    if (!s)
        s = clcnn_dataset_load_mnist_first(st->data, CLCNN_SPLIT_TEST, (size_t)st->limit_test,
                                           &test);
    if (s) goto fail;
    if (open_model(PROG, devs[0], st->model, clcnn_dataset_num_classes(train), CLCNN_INIT_HE,
                   (uint64_t)st->seed, &m, &net))
        goto out;
    if ((s = clcnn_net_init(net, CLCNN_INIT_HE, (uint64_t)st->seed)) ||
        (s = clcnn_net_graph(net, &g)))
        goto fail;
    int R = clcnn_comm_replicas(comm);
    clcnn_dist_config cfg = clcnn_dist_config_default();
    cfg.global_batch = (size_t)st->batch;
    cfg.micro_batch = (size_t)(st->micro ? st->micro : (st->batch / R > 0 ? st->batch / R : 1));
    cfg.seed = (uint64_t)st->seed;
    cfg.lr = (float)st->lr;
    cfg.momentum = (float)st->momentum;
    cfg.weight_decay = (float)st->weight_decay;
    cfg.reduce = strcmp(st->reduce, "allreduce") ? CLCNN_DIST_ORDERED : CLCNN_DIST_ALLREDUCE;
    cfg.bn_sync = !strcmp(st->bn, "sync");
    if ((s = clcnn_dist_trainer_create(comm, devs, nrep, g, train, &cfg, &t))) goto fail;
    if (st->resume && (s = clcnn_dist_trainer_load(t, st->checkpoint))) goto fail;
    int64_t spe = clcnn_dist_trainer_steps_per_epoch(t);
    clcnn_schedule sched = {.kind = CLCNN_SCHEDULE_COSINE,
                            .lr = (float)st->lr,
                            .min_lr = (float)st->min_lr,
                            .gamma = 0.1f,
                            .total_steps = st->epochs * spe};
    if (!strcmp(st->schedule, "constant")) sched.kind = CLCNN_SCHEDULE_CONSTANT;
    if (!strcmp(st->schedule, "step")) {
        sched.kind = CLCNN_SCHEDULE_STEP;
        sched.step_size = (sched.total_steps + 2) / 3 > 0 ? (sched.total_steps + 2) / 3 : 1;
    }
    if (rank == 0) {
        const clcnn_device_info *di = clcnn_device_get_info(devs[0]);
        printf("%s model '%s' (%zu parameters) data-parallel: %d replicas (%d processes x %d), "
               "global batch %lld in micro-batches of %zu, %s reduction, %s batch norm; rank 0 on "
               "%s\n",
               st->resume ? "resuming" : "training", m.name, clcnn_net_param_count(net), R,
               clcnn_comm_size(comm), nrep, st->batch, cfg.micro_batch, st->reduce, st->bn,
               di->name);
        printf("data: %zu train / %zu test images; %lld steps per epoch; sgd lr %g, %s "
               "schedule, %lld epochs, seed %lld; checkpoint %s\n",
               clcnn_dataset_size(train), clcnn_dataset_size(test), (long long)spe, st->lr,
               st->schedule, st->epochs, st->seed, st->checkpoint);
        fflush(stdout);
    }
    for (int64_t epoch = clcnn_dist_trainer_steps(t) / spe; epoch < st->epochs; epoch++) {
        double t0 = now_seconds(), loss_sum = 0;
        int64_t steps = 0;
        while (clcnn_dist_trainer_steps(t) < (epoch + 1) * spe) {
            float loss = 0;
            clcnn_dist_trainer_set_lr(t, clcnn_schedule_lr(&sched, clcnn_dist_trainer_steps(t)));
            if ((s = clcnn_dist_trainer_step(t, &loss))) goto fail;
            loss_sum += loss;
            steps++;
        }
        double secs = now_seconds() - t0;
        /* what `clcnn eval` / `predict` need to rebuild the model */
        char classes[16];
        snprintf(classes, sizeof classes, "%d", clcnn_dataset_num_classes(train));
        const char *meta[] = {"model", m.name, "classes", classes, "format", "clcnn-dist", NULL};
        if ((s = clcnn_dist_trainer_save(t, st->checkpoint, meta))) goto fail;
        /* every rank evaluates (only rank 0 prints), so none waits for rank 0 in the next
         * step long enough to trip the watchdog */
        eval_result r;
        if ((s = clcnn_dist_trainer_to_graph(t, g)) ||
            (s = clcnn_net_from_graph(devs[0], g, &enet)) ||
            (s = evaluate(devs[0], enet, test, NULL, &r)))
            goto fail;
        clcnn_net_free(enet);
        enet = NULL;
        printf("epoch %lld/%lld: train loss %.4f | test loss %.4f acc %.2f%% | %.1f s, %.0f "
               "img/s\n",
               (long long)epoch + 1, st->epochs, steps ? loss_sum / (double)steps : 0.0, r.loss,
               r.n ? 100.0 * (double)r.correct / (double)r.n : 0.0, secs,
               (double)(steps * st->batch) / (secs > 0 ? secs : 1e-9));
        fflush(stdout);
    }
    if (rank == 0) printf("done; checkpoint %s\n", st->checkpoint);
    rc = 0;
    goto out;
fail:
    rc = report(PROG, s);
out:
    clcnn_dist_trainer_free(t);
    clcnn_net_free(enet);
    clcnn_net_free(net);
    clcnn_graph_free(g);
    clcnn_dataset_free(train);
    clcnn_dataset_free(test);
    return rc;
}

int cmd_train_dist(int argc, char **argv) {
    dsettings st = {.model = "bn",
                    .checkpoint = "clcnn-dist.safetensors",
                    .schedule = "cosine",
                    .reduce = "ordered",
                    .bn = "local",
                    .epochs = 8,
                    .batch = 64,
                    .seed = 1,
                    .lr = 0.05,
                    .momentum = 0.9};
    int p = parse(argc, argv, &st);
    if (p) return p < 0 ? 0 : 2;
    int mpi = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    clcnn_comm *comm = NULL;
    char sel[64][64];
    int rc = 1, nrep = 0;
    clcnn_device *devs[64] = {0};
    int lr0 = mpi ? atoi(getenv("OMPI_COMM_WORLD_LOCAL_RANK") ? getenv("OMPI_COMM_WORLD_LOCAL_RANK")
                                                              : "0")
                  : 0;
    nrep = selectors(&st, mpi, lr0, sel, 64);
    clcnn_status s = nrep < 1 ? clcnn_set_error(CLCNN_ERR_NO_DEVICE, "--devices: no device")
                     : mpi    ? clcnn_comm_create_mpi(nrep, st.timeout, &comm)
                              : clcnn_comm_create_local(nrep, &comm);
    for (int i = 0; s == CLCNN_OK && i < nrep; i++)
        s = clcnn_device_open(sel[i], &devs[i]);
    if (s == CLCNN_OK) {
        /* progress from rank 0 only: the other ranks print errors */
        if (clcnn_comm_rank(comm) != 0 && !freopen("/dev/null", "w", stdout))
            fprintf(stderr, PROG ": rank %d prints its progress too\n", clcnn_comm_rank(comm));
        rc = run(&st, comm, nrep, devs);
    } else {
        rc = report(PROG, s);
    }
    for (int i = 0; i < nrep; i++)
        clcnn_device_close(devs[i]);
    if (rc && comm) clcnn_comm_abort(comm, rc);
    clcnn_comm_free(comm);
    return rc;
}
