/* Fuzz the safetensors checkpoint reader (lib/nn/safetensors.c, and the loading in
 * lib/nn/checkpoint.c). The input is written to a file and loaded into a small fixed net
 * on the default device: weights only (opt NULL) and weights + Adam state; then one
 * metadata key is read.
 *   net: (1, 6, 6) -> conv 2 3x3 -> batchnorm -> relu -> flatten -> linear 3
 * Checks: no crash, no sanitizer report, no leak; a failed load leaves the net's
 * parameters unchanged (compared with a snapshot) and sets a message.
 *
 * Seeds: CLCNN_FUZZ_WRITE_SEEDS=DIR makes the harness save valid checkpoints of its net
 * to DIR at start-up (tests/fuzz/run.sh --seeds does this for corpus/safetensors).
 * Names carry an st_ prefix: tests/test_fuzz_corpus.c includes every harness in one file. */
#include "clcnn/clcnn.h"
#include "fuzz_common.h"

static clcnn_device *st_dev;
static clcnn_net *st_net;
static clcnn_optimizer *st_opt;
static char st_path[512];
static float *st_snapshot, *st_scratch;
static size_t st_total;

static void st_die(const char *what) {
    fprintf(stderr, "fuzz_safetensors: %s: %s\n", what, clcnn_last_error());
    abort();
}

/* Every parameter of the net, back to back, into buf (NULL: only count them). */
static void st_read_params(float *buf) {
    size_t pos = 0;
    for (int i = 0; i < clcnn_net_num_params(st_net); i++) {
        clcnn_param p;
        if (clcnn_net_param(st_net, i, &p)) st_die("param");
        size_t n = clcnn_tensor_numel(p.value);
        if (buf && clcnn_tensor_download(p.value, buf + pos, n * sizeof(float))) st_die("download");
        pos += n;
    }
    st_total = pos;
}

static void st_write_seeds(const char *dir) {
    char p[4096];
    const char *meta[] = {"note", "fuzz seed", NULL};
    snprintf(p, sizeof p, "%s/weights.safetensors", dir);
    if (clcnn_checkpoint_save(st_net, NULL, p, meta)) st_die(p);
    snprintf(p, sizeof p, "%s/with-adam.safetensors", dir);
    if (clcnn_checkpoint_save(st_net, st_opt, p, NULL)) st_die(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_temp_path(st_path, sizeof st_path, "safetensors", ".safetensors");
    if (clcnn_device_open(NULL, &st_dev)) st_die("device");
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    if (clcnn_net_create(st_dev, 1, 6, 6, &st_net) ||
        clcnn_net_add_conv2d(st_net, 2, 3, 3, &d, 1) ||
        clcnn_net_add_batchnorm(st_net, 0.1f, 1e-5f) ||
        clcnn_net_add_activation(st_net, CLCNN_ACT_RELU, 0) || clcnn_net_add_flatten(st_net) ||
        clcnn_net_add_linear(st_net, 3, 1) || clcnn_net_init(st_net, CLCNN_INIT_HE, 1))
        st_die("net");
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    if (clcnn_optimizer_create(st_net, &cfg, &st_opt)) st_die("optimizer");
    const char *seeds = getenv("CLCNN_FUZZ_WRITE_SEEDS");
    if (seeds && *seeds) st_write_seeds(seeds);
    st_read_params(NULL);
    st_snapshot = malloc(st_total * sizeof *st_snapshot);
    st_scratch = malloc(st_total * sizeof *st_scratch);
    if (!st_snapshot || !st_scratch) st_die("malloc");
    st_read_params(st_snapshot);
    return 0;
}

/* For the corpus replay test: release what LLVMFuzzerInitialize made. */
__attribute__((unused)) static void st_cleanup(void) {
    free(st_snapshot);
    free(st_scratch);
    clcnn_optimizer_free(st_opt);
    clcnn_net_free(st_net);
    clcnn_device_close(st_dev);
    unlink(st_path);
    st_snapshot = st_scratch = NULL;
    st_opt = NULL;
    st_net = NULL;
    st_dev = NULL;
}

static void st_check_failed_load(clcnn_status s) {
    FUZZ_CHECK(s != CLCNN_OK);
    FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    st_read_params(st_scratch);
    FUZZ_CHECK(memcmp(st_scratch, st_snapshot, st_total * sizeof *st_scratch) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(st_path, data, size);
    clcnn_clear_error();
    clcnn_status s = clcnn_checkpoint_load(st_net, NULL, st_path);
    if (s == CLCNN_OK)
        st_read_params(st_snapshot); /* the new state every later failure must preserve */
    else
        st_check_failed_load(s);
    clcnn_clear_error();
    s = clcnn_checkpoint_load(st_net, st_opt, st_path);
    if (s == CLCNN_OK)
        st_read_params(st_snapshot);
    else
        st_check_failed_load(s);
    char buf[64];
    s = clcnn_checkpoint_metadata(st_path, "format", buf, sizeof buf);
    if (s == CLCNN_OK) FUZZ_CHECK(strlen(buf) < sizeof buf);
    return 0;
}
