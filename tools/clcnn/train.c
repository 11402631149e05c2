/* clcnn train: train a named model on Fashion-MNIST (or any MNIST-format directory).
 *
 * Flow per step: host batch (data layer, shuffled per epoch from (seed, epoch)) ->
 * upload -> forward + softmax cross-entropy + backward -> optimizer step with the
 * scheduled learning rate. Per epoch: test-set evaluation, a JSON log line, a checkpoint.
 *
 * Resuming: the checkpoint holds the weights, the optimizer state, the iterator position
 * (next epoch, next batch), the global step and the running statistics of a partial
 * epoch, plus every setting that shapes the trajectory. A run stopped by Ctrl-C and
 * resumed with --resume takes exactly the steps an uninterrupted run takes. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "models.h"

#define PROG "clcnn train"
#define DEFAULT_EPOCHS 8
#define DEFAULT_BATCH 64
#define DEFAULT_FLIP 0
#define DEFAULT_SHIFT 0
#define DEFAULT_CHECKPOINT "clcnn-fashion.safetensors"
#define FORMAT_TAG "clcnn-train-1"

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    g_stop = sig;
}

typedef struct settings {
    const char *model, *device, *data, *checkpoint, *log, *schedule;
    long long epochs, batch, seed, limit_train, limit_test, print_every, interrupt_after;
    long long flip, shift; /* augmentation */
    long long num_classes; /* ONNX models: the classifier's outputs (0: the file's) */
    int init;              /* -1: he for zoo models, the file's weights for ONNX models */
    double lr, min_lr, momentum, weight_decay;
    clcnn_optim_kind optim;
    int resume;
    /* which options were given on the command line */
    int set_model, set_epochs, set_batch, set_lr, set_optim, set_seed, set_limit_train,
        set_limit_test, set_schedule, set_wd, set_momentum, set_flip, set_shift;
} settings;

/* What a checkpoint records besides the tensors. */
typedef struct progress {
    long long next_epoch, next_batch, step;
    /* running sums of the partial epoch next_epoch (zero at an epoch boundary) */
    double loss_sum, seconds;
    long long correct, seen;
    /* the last completed epoch's results */
    double train_loss, train_acc, test_loss, test_acc;
} progress;

static void usage(FILE *f) {
    fprintf(f,
            "usage: clcnn train [options]\n\n"
            "Train a CNN on Fashion-MNIST (or any MNIST-format directory), evaluate it on the\n"
            "test set after every epoch and save a checkpoint. Ctrl-C saves the exact position;\n"
            "--resume continues from it.\n\n"
            "  --model NAME|F.onnx  model to train (default bn; see clcnn summary) or an ONNX\n"
            "                       file to fine-tune, its initializers the starting weights\n"
            "  --num-classes N      ONNX model: replace its last Gemm/MatMul by one with N\n"
            "                       outputs (new weights from --seed) for a new data set\n"
            "  --init he|xavier     initialise the weights (default he for zoo models; an ONNX\n"
            "                       model keeps its own unless --init is given)\n"
            "  --epochs N           epochs (default %d)\n"
            "  --batch N            batch size (default %d)\n"
            "  --optimizer adam|sgd optimizer (default adam)\n"
            "  --lr X               peak learning rate (default 1e-3 for adam, 0.05 for sgd)\n"
            "  --schedule S         cosine (default), step (x0.1 after each third) or constant\n"
            "  --min-lr X           final learning rate of the cosine schedule (default 0)\n"
            "  --momentum X         SGD momentum (default 0.9)\n"
            "  --weight-decay X     L2 weight decay (default 5e-4)\n"
            "  --seed N             seed for weights and shuffling (default 1)\n"
            "  --device SEL         OpenCL device: index, cpu, gpu or a name substring\n"
            "  --devices LIST|all   data-parallel on several devices (also: mpirun -np N clcnn\n"
            "                       train): see clcnn train --devices all --help\n"
            "  --data DIR           MNIST-format directory (default %s)\n"
            "  --checkpoint FILE    where to save (default ./%s)\n"
            "  --resume             continue from --checkpoint with its settings\n"
            "  --log FILE           append one JSON line per epoch\n"
            "  --limit-train N      train on the first N images only\n"
            "  --limit-test N       evaluate on the first N test images only\n"
            "  --flip / --no-flip   mirror training images at random (default %s)\n"
            "  --shift N            move training images by up to N pixels at random "
            "(default %d)\n"
            "  --print-every N      progress line every N batches when not on a terminal "
            "(default 100)\n\n"
            "Models (those taking 1x28x28 images train on MNIST-format data):\n",
            DEFAULT_EPOCHS, DEFAULT_BATCH, CLCNN_FASHION_MNIST_DIR, DEFAULT_CHECKPOINT,
            DEFAULT_FLIP ? "on" : "off", DEFAULT_SHIFT);
    list_models(f, "  ");
}

static const char *optim_name(clcnn_optim_kind k) {
    return k == CLCNN_OPTIM_SGD ? "sgd" : "adam";
}

/* ---- checkpoint metadata ------------------------------------------------------------ */

#define META_MAX 40
typedef struct meta {
    char kv[META_MAX * 2][1024];
    const char *ptrs[META_MAX * 2 + 1];
    int n;
} meta;

static void meta_add(meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_add(meta *m, const char *key, const char *fmt, ...) {
    if (m->n >= META_MAX) return;
    snprintf(m->kv[2 * m->n], sizeof m->kv[0], "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->kv[2 * m->n + 1], sizeof m->kv[0], fmt, ap);
    va_end(ap);
    m->n++;
}

static const char *const *meta_list(meta *m) {
    for (int i = 0; i < 2 * m->n; i++)
        m->ptrs[i] = m->kv[i];
    m->ptrs[2 * m->n] = NULL;
    return m->ptrs;
}

static clcnn_status save(const settings *st, const progress *pg, const clcnn_dataset *train,
                         clcnn_net *net, clcnn_optimizer *opt, int interrupted) {
    meta m = {.n = 0};
    float mean, std;
    clcnn_dataset_normalization(train, &mean, &std);
    meta_add(&m, "format", FORMAT_TAG);
    char abs[4096];
    /* an ONNX model by its absolute path, so eval and --resume find it from anywhere */
    meta_add(&m, "model", "%s",
             is_onnx_path(st->model) && realpath(st->model, abs) ? abs : st->model);
    meta_add(&m, "num_classes", "%lld", st->num_classes);
    meta_add(&m, "init", "%d", st->init);
    meta_add(&m, "dataset", "%s", st->data ? st->data : "fashion-mnist");
    if (st->data) meta_add(&m, "data", "%s", st->data);
    meta_add(&m, "classes", "%d", clcnn_dataset_num_classes(train));
    meta_add(&m, "norm_mean", "%.9g", (double)mean);
    meta_add(&m, "norm_std", "%.9g", (double)std);
    meta_add(&m, "epochs", "%lld", st->epochs);
    meta_add(&m, "batch", "%lld", st->batch);
    meta_add(&m, "seed", "%lld", st->seed);
    meta_add(&m, "optimizer", "%s", optim_name(st->optim));
    meta_add(&m, "lr", "%.9g", st->lr);
    meta_add(&m, "min_lr", "%.9g", st->min_lr);
    meta_add(&m, "schedule", "%s", st->schedule);
    meta_add(&m, "momentum", "%.9g", st->momentum);
    meta_add(&m, "weight_decay", "%.9g", st->weight_decay);
    meta_add(&m, "limit_train", "%lld", st->limit_train);
    meta_add(&m, "limit_test", "%lld", st->limit_test);
    meta_add(&m, "flip", "%lld", st->flip);
    meta_add(&m, "shift", "%lld", st->shift);
    meta_add(&m, "next_epoch", "%lld", pg->next_epoch);
    meta_add(&m, "next_batch", "%lld", pg->next_batch);
    meta_add(&m, "step", "%lld", pg->step);
    meta_add(&m, "epochs_done", "%lld", pg->next_epoch);
    meta_add(&m, "epoch_loss_sum", "%.17g", pg->loss_sum);
    meta_add(&m, "epoch_correct", "%lld", pg->correct);
    meta_add(&m, "epoch_seen", "%lld", pg->seen);
    meta_add(&m, "epoch_seconds", "%.6f", pg->seconds);
    meta_add(&m, "interrupted", "%d", interrupted);
    if (pg->next_epoch > 0) {
        meta_add(&m, "train_loss", "%.9g", pg->train_loss);
        meta_add(&m, "train_acc", "%.9g", pg->train_acc);
        meta_add(&m, "test_loss", "%.9g", pg->test_loss);
        meta_add(&m, "test_acc", "%.9g", pg->test_acc);
    }
    clcnn_status s = clcnn_checkpoint_save(net, opt, st->checkpoint, meta_list(&m));
    if (s == CLCNN_ERR_NUMERIC) { /* weights went NaN/Inf in the last steps: stop, keep the file */
        char why[512];
        snprintf(why, sizeof why, "%s", clcnn_last_error());
        clcnn_set_error(s, "%s; training diverged by step %lld (epoch %lld), try a lower --lr", why,
                        pg->step, pg->next_epoch + (pg->next_batch > 0));
    }
    return s;
}

/* Adopt the checkpoint's settings for a resumed run; an explicit option that contradicts
 * one is an error (it would change the trajectory). Returns 0, or an exit code. */
static int load_resume_settings(settings *st, progress *pg, char *model_buf, size_t model_cap,
                                char *sched_buf, size_t sched_cap, char *data_buf,
                                size_t data_cap) {
    const char *ck = st->checkpoint;
    char fmt[64], opt_name[16];
    if (access(ck, F_OK) != 0) {
        fprintf(stderr, PROG ": --resume: no checkpoint at %s\n", ck);
        return 1;
    }
    clcnn_status s = clcnn_checkpoint_metadata(ck, "format", fmt, sizeof fmt);
    if (s != CLCNN_OK) return report(PROG ": --resume", s);
    if (strcmp(fmt, FORMAT_TAG) != 0) {
        fprintf(stderr, PROG ": --resume: %s was not written by clcnn train (format '%s')\n", ck,
                fmt);
        return 1;
    }
    int conflict = 0;
#define ADOPT_NUM(field, key, flag)                                                                \
    do {                                                                                           \
        double v_ = ckpt_meta_num(ck, key, NAN);                                                   \
        if (isnan(v_)) {                                                                           \
            fprintf(stderr, PROG ": --resume: %s lacks '%s'\n", ck, key);                          \
            return 1;                                                                              \
        }                                                                                          \
        if (flag && (double)st->field != v_) {                                                     \
            fprintf(stderr, PROG ": --resume: %s was trained with --%s %.9g, not %.9g\n", ck, key, \
                    v_, (double)st->field);                                                        \
            conflict = 1;                                                                          \
        }                                                                                          \
        st->field = (__typeof__(st->field))v_;                                                     \
    } while (0)
    ADOPT_NUM(batch, "batch", st->set_batch);
    ADOPT_NUM(seed, "seed", st->set_seed);
    ADOPT_NUM(lr, "lr", 0);
    ADOPT_NUM(min_lr, "min_lr", 0);
    ADOPT_NUM(momentum, "momentum", 0);
    ADOPT_NUM(weight_decay, "weight_decay", 0);
    ADOPT_NUM(limit_train, "limit_train", st->set_limit_train);
    ADOPT_NUM(flip, "flip", st->set_flip);
    ADOPT_NUM(shift, "shift", st->set_shift);
    st->num_classes = (long long)ckpt_meta_num(ck, "num_classes", 0);
    st->init = (int)ckpt_meta_num(ck, "init", -1);
#undef ADOPT_NUM
    if (!st->set_limit_test) st->limit_test = (long long)ckpt_meta_num(ck, "limit_test", 0);
    /* learning-rate settings are float: compare after the same round trip */
    if (st->set_lr || st->set_wd || st->set_momentum) {
        fprintf(stderr, PROG ": --resume: --lr, --weight-decay and --momentum come from the "
                             "checkpoint; leave them out\n");
        conflict = 1;
    }
    if (!ckpt_meta_str(ck, "model", model_buf, model_cap) ||
        !ckpt_meta_str(ck, "schedule", sched_buf, sched_cap) ||
        !ckpt_meta_str(ck, "optimizer", opt_name, sizeof opt_name)) {
        fprintf(stderr, PROG ": --resume: %s lacks model/schedule/optimizer metadata\n", ck);
        return 1;
    }
    char abs[4096];
    const char *given =
        st->set_model && is_onnx_path(st->model) && realpath(st->model, abs) ? abs : st->model;
    if (st->set_model && strcmp(given, model_buf)) {
        fprintf(stderr, PROG ": --resume: %s holds model '%s', not '%s'\n", ck, model_buf,
                st->model);
        conflict = 1;
    }
    if (st->set_schedule && strcmp(st->schedule, sched_buf)) {
        fprintf(stderr, PROG ": --resume: %s was trained with --schedule %s\n", ck, sched_buf);
        conflict = 1;
    }
    clcnn_optim_kind ok = !strcmp(opt_name, "sgd") ? CLCNN_OPTIM_SGD : CLCNN_OPTIM_ADAM;
    if (st->set_optim && st->optim != ok) {
        fprintf(stderr, PROG ": --resume: %s was trained with --optimizer %s\n", ck, opt_name);
        conflict = 1;
    }
    if (conflict) return 2;
    st->model = model_buf;
    st->schedule = sched_buf;
    st->optim = ok;
    if (!st->data && ckpt_meta_str(ck, "data", data_buf, data_cap)) st->data = data_buf;
    long long saved_epochs = (long long)ckpt_meta_num(ck, "epochs", DEFAULT_EPOCHS);
    if (!st->set_epochs)
        st->epochs = saved_epochs;
    else if (st->epochs != saved_epochs)
        fprintf(stderr,
                PROG ": note: training for %lld epochs instead of %lld: the learning-rate "
                     "schedule is stretched from here on\n",
                st->epochs, saved_epochs);
    pg->next_epoch = (long long)ckpt_meta_num(ck, "next_epoch", -1);
    pg->next_batch = (long long)ckpt_meta_num(ck, "next_batch", -1);
    pg->step = (long long)ckpt_meta_num(ck, "step", -1);
    pg->loss_sum = ckpt_meta_num(ck, "epoch_loss_sum", 0);
    pg->correct = (long long)ckpt_meta_num(ck, "epoch_correct", 0);
    pg->seen = (long long)ckpt_meta_num(ck, "epoch_seen", 0);
    pg->seconds = ckpt_meta_num(ck, "epoch_seconds", 0);
    pg->train_loss = ckpt_meta_num(ck, "train_loss", 0);
    pg->train_acc = ckpt_meta_num(ck, "train_acc", 0);
    pg->test_loss = ckpt_meta_num(ck, "test_loss", 0);
    pg->test_acc = ckpt_meta_num(ck, "test_acc", 0);
    if (pg->next_epoch < 0 || pg->next_batch < 0 || pg->step < 0) {
        fprintf(stderr, PROG ": --resume: %s lacks its position (next_epoch/next_batch/step)\n",
                ck);
        return 1;
    }
    return 0;
}

/* ---- progress display ---------------------------------------------------------------- */

static void fmt_duration(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 359999) s = 359999;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void show_progress(int tty, long long epoch, long long epochs, size_t done, size_t total,
                          double loss, double acc, double ips, double eta) {
    char e[32];
    fmt_duration(eta, e, sizeof e);
    if (tty) {
        enum { BAR = 16 };
        char bar[BAR + 1];
        int fill = total ? (int)((double)done / (double)total * BAR) : 0;
        for (int i = 0; i < BAR; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR] = '\0';
        printf("\r\033[Kepoch %lld/%lld [%s] %zu/%zu loss %.4f acc %.1f%% %.0f img/s ETA %s", epoch,
               epochs, bar, done, total, loss, 100.0 * acc, ips, e);
    } else {
        printf("epoch %lld/%lld batch %zu/%zu loss %.4f acc %.2f%% %.0f img/s ETA %s\n", epoch,
               epochs, done, total, loss, 100.0 * acc, ips, e);
    }
    fflush(stdout);
}

/* ---- the command ------------------------------------------------------------------ */

int cmd_train(int argc, char **argv) {
    /* several devices, or several MPI ranks (Open MPI sets OMPI_COMM_WORLD_SIZE) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--devices") || !strncmp(argv[i], "--devices=", 10))
            return cmd_train_dist(argc, argv);
    if (getenv("OMPI_COMM_WORLD_SIZE")) return cmd_train_dist(argc, argv);
    settings st = {.model = "bn",
                   .checkpoint = DEFAULT_CHECKPOINT,
                   .schedule = "cosine",
                   .epochs = DEFAULT_EPOCHS,
                   .batch = DEFAULT_BATCH,
                   .seed = 1,
                   .print_every = 100,
                   .flip = DEFAULT_FLIP,
                   .shift = DEFAULT_SHIFT,
                   .lr = -1,
                   .min_lr = 0,
                   .momentum = 0.9,
                   .weight_decay = 5e-4,
                   .optim = CLCNN_OPTIM_ADAM,
                   .init = -1};
    enum {
        O_EPOCHS = 256,
        O_BATCH,
        O_LR,
        O_OPTIM,
        O_MODEL,
        O_DEVICE,
        O_SEED,
        O_CKPT,
        O_RESUME,
        O_DATA,
        O_LOG,
        O_LTRAIN,
        O_LTEST,
        O_EVERY,
        O_SCHED,
        O_MINLR,
        O_MOM,
        O_WD,
        O_INTR,
        O_FLIP,
        O_NOFLIP,
        O_SHIFT,
        O_NCLASSES,
        O_INIT
    };
    static const struct option opts[] = {{"epochs", required_argument, 0, O_EPOCHS},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"lr", required_argument, 0, O_LR},
                                         {"optimizer", required_argument, 0, O_OPTIM},
                                         {"model", required_argument, 0, O_MODEL},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"checkpoint", required_argument, 0, O_CKPT},
                                         {"resume", no_argument, 0, O_RESUME},
                                         {"data", required_argument, 0, O_DATA},
                                         {"log", required_argument, 0, O_LOG},
                                         {"limit-train", required_argument, 0, O_LTRAIN},
                                         {"limit-test", required_argument, 0, O_LTEST},
                                         {"print-every", required_argument, 0, O_EVERY},
                                         {"schedule", required_argument, 0, O_SCHED},
                                         {"min-lr", required_argument, 0, O_MINLR},
                                         {"momentum", required_argument, 0, O_MOM},
                                         {"weight-decay", required_argument, 0, O_WD},
                                         /* testing: behave as if Ctrl-C came after N steps */
                                         {"interrupt-after", required_argument, 0, O_INTR},
                                         {"flip", no_argument, 0, O_FLIP},
                                         {"no-flip", no_argument, 0, O_NOFLIP},
                                         {"shift", required_argument, 0, O_SHIFT},
                                         {"num-classes", required_argument, 0, O_NCLASSES},
                                         {"init", required_argument, 0, O_INIT},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o, bad = 0;
    optind = 1;
    while (!bad && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_EPOCHS:
            bad = parse_long(PROG, "--epochs", optarg, 1, 100000, &st.epochs);
            st.set_epochs = 1;
            break;
        case O_BATCH:
            bad = parse_long(PROG, "--batch", optarg, 1, 65536, &st.batch);
            st.set_batch = 1;
            break;
        case O_LR:
            bad = parse_float(PROG, "--lr", optarg, 1e-12, 100, &st.lr);
            st.set_lr = 1;
            break;
        case O_MINLR:
            bad = parse_float(PROG, "--min-lr", optarg, 0, 100, &st.min_lr);
            break;
        case O_MOM:
            bad = parse_float(PROG, "--momentum", optarg, 0, 0.9999, &st.momentum);
            st.set_momentum = 1;
            break;
        case O_WD:
            bad = parse_float(PROG, "--weight-decay", optarg, 0, 1, &st.weight_decay);
            st.set_wd = 1;
            break;
        case O_OPTIM:
            if (!strcmp(optarg, "adam"))
                st.optim = CLCNN_OPTIM_ADAM;
            else if (!strcmp(optarg, "sgd"))
                st.optim = CLCNN_OPTIM_SGD;
            else {
                fprintf(stderr, PROG ": --optimizer: '%s' is not adam or sgd\n", optarg);
                bad = 2;
            }
            st.set_optim = 1;
            break;
        case O_SCHED:
            if (strcmp(optarg, "cosine") && strcmp(optarg, "step") && strcmp(optarg, "constant")) {
                fprintf(stderr, PROG ": --schedule: '%s' is not cosine, step or constant\n",
                        optarg);
                bad = 2;
            }
            st.schedule = optarg;
            st.set_schedule = 1;
            break;
        case O_MODEL:
            st.model = optarg;
            st.set_model = 1;
            break;
        case O_DEVICE:
            st.device = optarg;
            break;
        case O_SEED:
            bad = parse_long(PROG, "--seed", optarg, 0, (long long)1 << 53, &st.seed);
            st.set_seed = 1;
            break;
        case O_CKPT:
            st.checkpoint = optarg;
            break;
        case O_RESUME:
            st.resume = 1;
            break;
        case O_DATA:
            st.data = optarg;
            break;
        case O_LOG:
            st.log = optarg;
            break;
        case O_LTRAIN:
            bad = parse_long(PROG, "--limit-train", optarg, 1, 1LL << 31, &st.limit_train);
            st.set_limit_train = 1;
            break;
        case O_LTEST:
            bad = parse_long(PROG, "--limit-test", optarg, 1, 1LL << 31, &st.limit_test);
            st.set_limit_test = 1;
            break;
        case O_EVERY:
            bad = parse_long(PROG, "--print-every", optarg, 1, 1LL << 31, &st.print_every);
            break;
        case O_FLIP:
        case O_NOFLIP:
            st.flip = o == O_FLIP;
            st.set_flip = 1;
            break;
        case O_SHIFT:
            bad = parse_long(PROG, "--shift", optarg, 0, 8, &st.shift);
            st.set_shift = 1;
            break;
        case O_NCLASSES:
            bad = parse_long(PROG, "--num-classes", optarg, 1, 1 << 20, &st.num_classes);
            break;
        case O_INIT:
            if (!strcmp(optarg, "he") || !strcmp(optarg, "xavier")) {
                st.init = !strcmp(optarg, "he") ? CLCNN_INIT_HE : CLCNN_INIT_XAVIER;
            } else {
                fprintf(stderr, PROG ": --init: '%s' is not he or xavier\n", optarg);
                bad = 2;
            }
            break;
        case O_INTR:
            bad = parse_long(PROG, "--interrupt-after", optarg, 1, 1LL << 40, &st.interrupt_after);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad = 2;
            break;
        }
    }
    if (bad) {
        fprintf(stderr, "Run 'clcnn train --help' for the options.\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    progress pg = {0};
    char model_buf[4096], sched_buf[16], data_buf[1024];
    if (st.resume) {
        int rc = load_resume_settings(&st, &pg, model_buf, sizeof model_buf, sched_buf,
                                      sizeof sched_buf, data_buf, sizeof data_buf);
        if (rc) return rc;
    }
    if (st.lr < 0) st.lr = st.optim == CLCNN_OPTIM_SGD ? 0.05 : 1e-3;

    clcnn_model_info m = {0};
    int onnx = is_onnx_path(st.model);
    if (!onnx && st.num_classes) {
        fprintf(stderr, PROG ": --num-classes is for ONNX models; zoo models get the data's "
                             "classes\n");
        return 2;
    }
    if (!onnx && !find_model_or_say(PROG, st.model, &m)) return 2;
    if (!onnx && (m.c != 1 || m.h != 28 || m.w != 28)) {
        /* the data layer reads MNIST-format directories: 1x28x28 images */
        fprintf(stderr,
                PROG ": model '%s' takes %dx%dx%d inputs, not 1x28x28 images; try "
                     "'clcnn summary --model %s'\n",
                m.name, m.c, m.h, m.w, m.name);
        return 2;
    }

    /* data */
    clcnn_dataset *train = NULL, *test = NULL;
    /* --limit-*: only those samples are read */
    clcnn_status s =
        clcnn_dataset_load_mnist_first(st.data, CLCNN_SPLIT_TRAIN, (size_t)st.limit_train, &train);
    if (!s)
        s = clcnn_dataset_load_mnist_first(st.data, CLCNN_SPLIT_TEST, (size_t)st.limit_test, &test);
    if (s) {
        clcnn_dataset_free(train);
        return report(PROG, s);
    }
    int c, h, w;
    clcnn_dataset_shape(train, &c, &h, &w);
    if (!onnx && (c != m.c || h != m.h || w != m.w)) {
        fprintf(stderr, PROG ": model '%s' takes %dx%dx%d inputs; the data has %dx%dx%d\n", m.name,
                m.c, m.h, m.w, c, h, w);
        clcnn_dataset_free(train);
        clcnn_dataset_free(test);
        return 1;
    }

    clcnn_device *dev = open_device_or_say(st.device);
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_batcher *batches = NULL;
    clcnn_tensor *x = NULL, *labels = NULL;
    FILE *log = NULL;
    int rc = 1, tty = 0;
    if (!dev) goto out;

    clcnn_optim_config oc = clcnn_optim_default(st.optim);
    oc.lr = (float)st.lr;
    oc.momentum = (float)st.momentum;
    oc.weight_decay = (float)st.weight_decay;
    clcnn_batcher_config bc = clcnn_batcher_config_default();
    bc.batch_size = (size_t)st.batch;
    bc.seed = (uint64_t)st.seed;
    bc.shuffle = 1;
    bc.drop_last = 0;
    bc.flip = (int)st.flip;
    bc.shift = (int)st.shift;
    clcnn_init init = st.init < 0 ? CLCNN_INIT_HE : (clcnn_init)st.init;
    int classes = clcnn_dataset_num_classes(train);
    if (open_model(PROG, dev, st.model, onnx ? (int)st.num_classes : classes, init,
                   (uint64_t)st.seed, &m, &net))
        goto out;
    if (onnx && (m.c != c || m.h != h || m.w != w)) {
        fprintf(stderr, PROG ": ONNX model %s takes %dx%dx%d inputs; the data has %dx%dx%d\n",
                st.model, m.c, m.h, m.w, c, h, w);
        goto out;
    }
    if (onnx && m.classes != classes) {
        fprintf(stderr,
                PROG ": ONNX model %s gives %d class scores; the data has %d classes (pass "
                     "--num-classes %d to replace its classifier)\n",
                st.model, m.classes, classes, classes);
        goto out;
    }
    if (!onnx || st.init >= 0)
        s = clcnn_net_init(net, init, (uint64_t)st.seed);
    else
        clcnn_net_set_seed(net, (uint64_t)st.seed);
    if (s || (s = clcnn_optimizer_create(net, &oc, &opt)) ||
        (s = clcnn_batcher_create(train, &bc, &batches))) {
        rc = report(PROG, s);
        goto out;
    }
    size_t nb = clcnn_batcher_num_batches(batches);
    if (st.resume) {
        if ((s = clcnn_checkpoint_load(net, opt, st.checkpoint))) {
            rc = report(PROG ": --resume", s);
            goto out;
        }
        if (clcnn_optimizer_steps(opt) != pg.step || (size_t)pg.next_batch > nb) {
            fprintf(stderr,
                    PROG ": --resume: %s is inconsistent (optimizer steps %lld, step %lld, "
                         "batch %lld of %zu)\n",
                    st.checkpoint, (long long)clcnn_optimizer_steps(opt), pg.step, pg.next_batch,
                    nb);
            goto out;
        }
        if (pg.next_epoch >= st.epochs) {
            printf("%s already holds %lld epochs of training (test accuracy %.2f%%); nothing to "
                   "do. Pass --epochs N to train further.\n",
                   st.checkpoint, pg.next_epoch, 100.0 * pg.test_acc);
            rc = 0;
            goto out;
        }
        clcnn_batcher_seek(batches, pg.next_epoch, (size_t)pg.next_batch);
    }

    clcnn_schedule sched = {.kind = CLCNN_SCHEDULE_COSINE,
                            .lr = (float)st.lr,
                            .min_lr = (float)st.min_lr,
                            .gamma = 0.1f,
                            .total_steps = (int64_t)st.epochs * (int64_t)nb};
    if (!strcmp(st.schedule, "constant")) sched.kind = CLCNN_SCHEDULE_CONSTANT;
    if (!strcmp(st.schedule, "step")) {
        /* lr, lr/10, lr/100 over the three thirds of the run */
        sched.kind = CLCNN_SCHEDULE_STEP;
        sched.step_size = (sched.total_steps + 2) / 3 > 0 ? (sched.total_steps + 2) / 3 : 1;
    }

    if (st.log && !(log = fopen(st.log, st.resume ? "a" : "w"))) {
        fprintf(stderr, PROG ": cannot open log %s: %s\n", st.log, strerror(errno));
        goto out;
    }

    const clcnn_device_info *di = clcnn_device_get_info(dev);
    printf("%s model '%s' (%zu parameters) on %s (%s)\n", st.resume ? "resuming" : "training",
           m.name, clcnn_net_param_count(net), di->name, di->platform_name);
    printf("data: %zu train / %zu test images from %s; batch %lld, %zu batches per epoch\n",
           clcnn_dataset_size(train), clcnn_dataset_size(test),
           st.data ? st.data : CLCNN_FASHION_MNIST_DIR, st.batch, nb);
    char aug[64] = "none";
    if (st.flip || st.shift)
        snprintf(aug, sizeof aug, "%s%s%.0lld", st.flip ? "flip" : "",
                 st.flip && st.shift ? "+shift "
                 : st.shift          ? "shift "
                                     : "",
                 st.shift ? st.shift : 0LL);
    printf("%s lr %g, %s schedule, %lld epochs, seed %lld, augmentation %s; checkpoint %s\n",
           optim_name(st.optim), st.lr, st.schedule, st.epochs, st.seed, aug, st.checkpoint);
    if (st.resume)
        printf("continuing at epoch %lld, batch %lld (step %lld)\n", pg.next_epoch + 1,
               pg.next_batch, pg.step);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once (saves are atomic) */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tty = isatty(STDOUT_FILENO);
    size_t cur_n = 0;
    long long steps_this_run = 0;
    double run_t0 = now_seconds();
    for (long long epoch = pg.next_epoch; epoch < st.epochs; epoch++) {
        double t0 = now_seconds(), last_draw = 0;
        double seconds_before = pg.seconds;
        long long seen_before = pg.seen;
        size_t first_batch = (size_t)pg.next_batch;
        int interrupted = 0;
        for (;;) {
            clcnn_batch b;
            if ((s = clcnn_batcher_next(batches, &b))) goto fail;
            if (b.n == 0) break;
            if (b.n != cur_n) {
                clcnn_tensor_free(x);
                clcnn_tensor_free(labels);
                x = labels = NULL;
                size_t ln = b.n;
                if ((s = clcnn_tensor_create4(dev, b.n, c, h, w, &x)) ||
                    (s = clcnn_tensor_create(dev, CLCNN_I32, 1, &ln, &labels)))
                    goto fail;
                cur_n = b.n;
            }
            float loss = 0;
            int correct = 0;
            if ((s = clcnn_tensor_upload(x, b.x, b.n * (size_t)(c * h * w) * sizeof(float))) ||
                (s = clcnn_tensor_upload(labels, b.labels, b.n * sizeof(int32_t))) ||
                (s = clcnn_net_loss_backward(net, x, labels, &loss, &correct)))
                goto fail;
            if (!isfinite(loss)) {
                s = clcnn_set_error(
                    CLCNN_ERR_NUMERIC,
                    "the loss became %g at epoch %lld, batch %zu (step %lld); try a "
                    "lower --lr (now %g)",
                    (double)loss, epoch + 1, b.index, pg.step, st.lr);
                goto fail;
            }
            float lr = clcnn_schedule_lr(&sched, pg.step);
            if ((s = clcnn_optimizer_step(opt, lr))) goto fail;
            pg.step++;
            steps_this_run++;
            pg.loss_sum += (double)loss * (double)b.n;
            pg.correct += correct;
            pg.seen += (long long)b.n;
            pg.next_batch = (long long)b.index + 1;
            if (st.interrupt_after && steps_this_run == st.interrupt_after) raise(SIGINT);

            double now = now_seconds(), el = now - t0;
            size_t done = b.index + 1, here = done - first_batch;
            double ips = el > 0 ? (double)(pg.seen - seen_before) / el : 0;
            double eta = here ? el / (double)here * (double)(nb - done) : 0;
            if ((tty && (now - last_draw > 0.2 || done == nb)) ||
                (!tty && (done % (size_t)st.print_every == 0 || done == nb))) {
                show_progress(tty, epoch + 1, st.epochs, done, nb, pg.loss_sum / (double)pg.seen,
                              (double)pg.correct / (double)pg.seen, ips, eta);
                last_draw = now;
            }
            if (g_stop) {
                interrupted = 1;
                break;
            }
        }
        pg.seconds = seconds_before + (now_seconds() - t0);
        if (tty) printf("\n");

        eval_result er;
        double te0 = now_seconds();
        if (!interrupted) {
            if (tty) {
                printf("evaluating on %zu test images...", clcnn_dataset_size(test));
                fflush(stdout);
            }
            s = evaluate(dev, net, test, &g_stop, &er);
            if (tty) printf("\r\033[K");
            if (s == CLCNN_ERR_INTERRUPTED)
                interrupted = 1;
            else if (s)
                goto fail;
        }
        if (interrupted) {
            pg.next_epoch = epoch;
            if ((s = save(&st, &pg, train, net, opt, 1))) goto fail;
            printf("interrupted: saved %s at epoch %lld, batch %lld/%zu (step %lld).\n"
                   "Continue with: clcnn train --resume --checkpoint %s\n",
                   st.checkpoint, epoch + 1, pg.next_batch, nb, pg.step, st.checkpoint);
            rc = 130;
            goto out;
        }
        double eval_s = now_seconds() - te0;
        pg.train_loss = pg.loss_sum / (double)pg.seen;
        pg.train_acc = (double)pg.correct / (double)pg.seen;
        pg.test_loss = er.loss;
        pg.test_acc = er.n ? (double)er.correct / (double)er.n : 0;
        double ips = pg.seconds > 0 ? (double)pg.seen / pg.seconds : 0;
        printf("epoch %lld/%lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | "
               "%.1f s, %.0f img/s, eval %.1f s\n",
               epoch + 1, st.epochs, pg.train_loss, 100 * pg.train_acc, pg.test_loss,
               100 * pg.test_acc, pg.seconds, ips, eval_s);
        if (log) {
            fprintf(log,
                    "{\"epoch\": %lld, \"train_loss\": %.9g, \"train_acc\": %.9g, "
                    "\"test_loss\": %.9g, \"test_acc\": %.9g, \"seconds\": %.3f, "
                    "\"images_per_s\": %.1f, \"eval_seconds\": %.3f, \"step\": %lld, "
                    "\"lr\": %.9g}\n",
                    epoch + 1, pg.train_loss, pg.train_acc, pg.test_loss, pg.test_acc, pg.seconds,
                    ips, eval_s, pg.step,
                    (double)clcnn_schedule_lr(&sched, pg.step > 0 ? pg.step - 1 : 0));
            fflush(log);
        }
        pg.next_epoch = epoch + 1;
        pg.next_batch = 0;
        pg.loss_sum = 0;
        pg.correct = pg.seen = 0;
        pg.seconds = 0;
        if ((s = save(&st, &pg, train, net, opt, 0))) goto fail;
        fflush(stdout);
    }
    printf("done: test accuracy %.2f%% after %lld epochs (%.1f s in this run); checkpoint %s\n",
           100 * pg.test_acc, st.epochs, now_seconds() - run_t0, st.checkpoint);
    rc = 0;
    goto out;

fail:
    if (tty) printf("\n");
    rc = report(PROG, s);
out:
    if (log) fclose(log);
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_batcher_free(batches);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    clcnn_dataset_free(train);
    clcnn_dataset_free(test);
    return rc;
}
