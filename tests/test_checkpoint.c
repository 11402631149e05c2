/* Checkpoints (safetensors): round trips, a file written by hand from the format's spec,
 * every kind of malformed file (an error naming file and tensor, never a crash, and the
 * net and optimizer left unchanged), saves that fail half way (the old file survives),
 * metadata, and resuming training from a checkpoint bit for bit. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = tu_temp_dir("ckpt");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(dir);
    tu_close_device();
    return 0;
}

static char *path_in(const char *name) {
    static char buf[8][4200];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* ---- file helpers ------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put_u64le(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Write a safetensors file: u64 LE header length, header (padded with spaces to a
 * multiple of 8), data. */
static void write_st(const char *path, const char *header, const uint8_t *data, size_t dlen) {
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    uint8_t *b = malloc(8 + padded + dlen + 1);
    put_u64le(b, padded);
    memcpy(b + 8, header, h);
    memset(b + 8 + h, ' ', padded - h);
    if (dlen) memcpy(b + 8 + padded, data, dlen);
    write_all(path, b, 8 + padded + dlen);
    free(b);
}

/* Float data as little-endian bytes, written out byte by byte (independent of the host). */
static void floats_le(const float *v, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(u >> (8 * j));
    }
}

/* Split a file into its parsed header and data section. */
typedef struct st_parts {
    json_t *root;
    uint8_t *data;
    size_t dlen;
    uint64_t hlen;
} st_parts;

static st_parts split_file(const char *path) {
    size_t len;
    uint8_t *b = read_all(path, &len);
    st_parts p;
    p.hlen = get_u64le(b);
    assert_true(8 + p.hlen <= len);
    json_error_t e;
    p.root = json_loadb((const char *)b + 8, p.hlen, 0, &e);
    assert_non_null(p.root);
    p.dlen = len - 8 - p.hlen;
    p.data = malloc(p.dlen + 64);
    memcpy(p.data, b + 8 + p.hlen, p.dlen);
    free(b);
    return p;
}

static void write_parts(const char *path, json_t *root, const uint8_t *data, size_t dlen) {
    char *h = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    write_st(path, h, data, dlen);
    free(h);
}

/* ---- nets ----------------------------------------------------------------------------- */

/* (2, 5, 5) -> conv 3x3x3 pad 1 -> batchnorm -> relu -> dropout -> flatten -> linear 4 */
static clcnn_net *make_net(uint64_t seed) {
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 2, 5, 5, &net));
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.pad_h = d.pad_w = 1;
    TU_OK(clcnn_net_add_conv2d(net, 3, 3, 3, &d, 1));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    TU_OK(clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0));
    TU_OK(clcnn_net_add_dropout(net, 0.25f));
    TU_OK(clcnn_net_add_flatten(net));
    TU_OK(clcnn_net_add_linear(net, 4, 1));
    TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, seed));
    return net;
}

typedef struct batch {
    clcnn_tensor *x, *labels;
} batch;

static batch make_batch(uint64_t seed) {
    tu_rng r = tu_rng_seed(seed);
    float x[6 * 2 * 5 * 5];
    tu_fill_uniform(&r, x, sizeof x / sizeof x[0], -1, 1);
    int lab[6];
    for (int i = 0; i < 6; i++)
        lab[i] = tu_rng_int(&r, 0, 3);
    batch b;
    b.x = tu_tensor_from(4, (size_t[]){6, 2, 5, 5}, x);
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_I32, 1, (size_t[]){6}, &b.labels));
    TU_OK(clcnn_tensor_upload(b.labels, lab, sizeof lab));
    return b;
}

static void free_batch(batch *b) {
    clcnn_tensor_free(b->x);
    clcnn_tensor_free(b->labels);
}

static void train(clcnn_net *net, clcnn_optimizer *opt, const batch *b, int steps) {
    for (int i = 0; i < steps; i++) {
        TU_OK(clcnn_net_loss_backward(net, b->x, b->labels, NULL, NULL));
        TU_OK(clcnn_optimizer_step(opt, 0.05f));
    }
}

/* Every parameter value, concatenated. */
static float *snapshot(const clcnn_net *net, size_t *count) {
    size_t total = 0;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        total += clcnn_tensor_numel(p.value);
    }
    float *all = malloc(total * sizeof *all), *at = all;
    for (int i = 0; i < clcnn_net_num_params(net); i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        size_t n = clcnn_tensor_numel(p.value);
        TU_OK(clcnn_tensor_download(p.value, at, n * sizeof *at));
        at += n;
    }
    *count = total;
    return all;
}

static void assert_same_params(const clcnn_net *a, const clcnn_net *b) {
    size_t na, nb;
    float *pa = snapshot(a, &na), *pb = snapshot(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na * sizeof *pa);
    free(pa);
    free(pb);
}

static float *eval_output(clcnn_net *net, const clcnn_tensor *x) {
    clcnn_net_set_training(net, 0);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(net, x, &y));
    clcnn_net_set_training(net, 1);
    return tu_download(y);
}

/* ---- round trip ------------------------------------------------------------------------ */

static void test_save_load_round_trip(void **state) {
    (void)state;
    clcnn_net *a = make_net(1), *b = make_net(2);
    batch bt = make_batch(3);
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_SGD);
    clcnn_optimizer *opt = NULL;
    TU_OK(clcnn_optimizer_create(a, &cfg, &opt));
    train(a, opt, &bt, 2); /* running statistics and weights away from their defaults */
    const char *path = path_in("round.safetensors");
    const char *meta[] = {"epoch", "3", "note", "héllo \"quoted\"", NULL};
    TU_OK(clcnn_checkpoint_save(a, NULL, path, meta));
    TU_OK(clcnn_checkpoint_load(b, NULL, path));
    assert_same_params(a, b);
    float *ya = eval_output(a, bt.x), *yb = eval_output(b, bt.x);
    assert_memory_equal(ya, yb, 24 * sizeof *ya);
    free(ya);
    free(yb);
    /* Same dropout key and counter too: the next training forward matches bit for bit. */
    const clcnn_tensor *y1, *y2;
    TU_OK(clcnn_net_forward(a, bt.x, &y1));
    TU_OK(clcnn_net_forward(b, bt.x, &y2));
    float *t1 = tu_download(y1), *t2 = tu_download(y2);
    assert_memory_equal(t1, t2, 24 * sizeof *t1);
    free(t1);
    free(t2);

    char buf[64];
    TU_OK(clcnn_checkpoint_metadata(path, "epoch", buf, sizeof buf));
    assert_string_equal(buf, "3");
    TU_OK(clcnn_checkpoint_metadata(path, "note", buf, sizeof buf));
    assert_string_equal(buf, "héllo \"quoted\"");
    TU_OK(clcnn_checkpoint_metadata(path, "format", buf, sizeof buf));
    assert_string_equal(buf, "pt");
    TU_OK(clcnn_checkpoint_metadata(path, "absent", buf, sizeof buf));
    assert_string_equal(buf, "");
    assert_int_equal(clcnn_checkpoint_metadata(path, "epoch", buf, 1), CLCNN_ERR_INVALID_ARG);

    /* The layout follows the spec: N little-endian, header padded to 8, offsets back to
     * back covering the data exactly, F32 everywhere, PyTorch names. */
    st_parts p = split_file(path);
    assert_int_equal(p.hlen % 8, 0);
    size_t entries = 0;
    uint64_t covered = 0;
    const char *key;
    json_t *v;
    json_object_foreach(p.root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        entries++;
        assert_string_equal(json_string_value(json_object_get(v, "dtype")), "F32");
        json_t *off = json_object_get(v, "data_offsets");
        assert_int_equal(json_integer_value(json_array_get(off, 0)), covered);
        covered = (uint64_t)json_integer_value(json_array_get(off, 1));
    }
    assert_int_equal(entries, 8);
    assert_int_equal(covered, p.dlen);
    json_t *w = json_object_get(p.root, "layers.0.weight");
    assert_non_null(w);
    json_t *shape = json_object_get(w, "shape");
    assert_int_equal(json_array_size(shape), 4);
    assert_int_equal(json_integer_value(json_array_get(shape, 0)), 3);
    assert_int_equal(json_integer_value(json_array_get(shape, 1)), 2);
    assert_non_null(json_object_get(p.root, "layers.1.running_var"));
    assert_non_null(json_object_get(p.root, "layers.5.bias"));
    json_decref(p.root);
    free(p.data);

    /* Saving over an existing checkpoint replaces it. */
    train(a, opt, &bt, 1);
    TU_OK(clcnn_checkpoint_save(a, NULL, path, NULL));
    TU_OK(clcnn_checkpoint_load(b, NULL, path));
    assert_same_params(a, b);
    TU_OK(clcnn_checkpoint_metadata(path, "epoch", buf, sizeof buf));
    assert_string_equal(buf, "");

    /* Bad arguments */
    const char *reserved[] = {"optim.step", "1", NULL};
    assert_int_equal(clcnn_checkpoint_save(a, NULL, path, reserved), CLCNN_ERR_INVALID_ARG);
    const char *odd[] = {"k", NULL};
    assert_int_equal(clcnn_checkpoint_save(a, NULL, path, odd), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_checkpoint_save(b, opt, path, NULL), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_checkpoint_load(b, opt, path), CLCNN_ERR_INVALID_ARG);
    free_batch(&bt);
    clcnn_optimizer_free(opt);
    clcnn_net_free(a);
    clcnn_net_free(b);
}

/* A file written byte by byte from the format description, as another tool would: the
 * tensors in a different order than the header lists them, metadata in the middle. */
static void test_hand_written_file(void **state) {
    (void)state;
    clcnn_net *net = NULL;
    TU_OK(clcnn_net_create(tu_device(), 3, 1, 1, &net));
    TU_OK(clcnn_net_add_linear(net, 2, 1));
    TU_OK(clcnn_net_add_batchnorm(net, 0.1f, 1e-5f));
    const char *header =
        "{\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
        "\"__metadata__\":{\"epoch\":\"7\"},"
        "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        " \"layers.1.weight\" : {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]},\n"
        "\"layers.1.bias\":{\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\":[40,48]},"
        "\"layers.1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[48,56]},"
        "\"layers.1.running_var\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[56,64]},"
        "\"layers.1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],"
        "\"data_offsets\":[64,72]}}";
    float vals[16] = {1, 2, 3, 4, 5, 6, 0.5f, -1.25f, 2, 3, 0.25f, -0.5f, 1, -1, 4, 0.25f};
    uint8_t data[72];
    floats_le(vals, 16, data);
    memset(data + 64, 0, 8);
    data[64] = 42; /* num_batches_tracked = 42 (ignored) */
    const char *path = path_in("hand.safetensors");
    write_st(path, header, data, sizeof data);
    TU_OK(clcnn_checkpoint_load(net, NULL, path));

    const float *want[6] = {vals, vals + 6, vals + 8, vals + 10, vals + 12, vals + 14};
    size_t cnt[6] = {6, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        clcnn_param p;
        TU_OK(clcnn_net_param(net, i, &p));
        float *got = tu_download(p.value);
        assert_memory_equal(got, want[i], cnt[i] * sizeof(float));
        free(got);
    }
    /* x = (1, 0, -1): linear gives (1 - 3 + 0.5, 4 - 6 - 1.25) = (-1.5, -3.25); batchnorm
     * in eval: gamma (x - mean) / sqrt(var + eps) + beta. */
    clcnn_tensor *x = tu_tensor_from(2, (size_t[]){1, 3}, (float[]){1, 0, -1});
    clcnn_net_set_training(net, 0);
    const clcnn_tensor *y = NULL;
    TU_OK(clcnn_net_forward(net, x, &y));
    float *got = tu_download(y);
    double ref[2] = {2 * (-1.5 - 1) / sqrt(4 + 1e-5) + 0.25,
                     3 * (-3.25 + 1) / sqrt(0.25 + 1e-5) - 0.5};
    assert_true(tu_close("hand-written forward", got, ref, 2, 1e-5, 1e-5));
    free(got);
    char buf[16];
    TU_OK(clcnn_checkpoint_metadata(path, "epoch", buf, sizeof buf));
    assert_string_equal(buf, "7");
    clcnn_tensor_free(x);
    clcnn_net_free(net);
}

/* ---- malformed files -------------------------------------------------------------------- */

/* Load must fail with `want`, mention the file (and `needle` if given), and change
 * nothing in the net or the optimizer. */
static void expect_load_error(clcnn_net *net, clcnn_optimizer *opt, const char *path,
                              clcnn_status want, const char *needle, const char *what) {
    size_t n0, n1;
    float *before = snapshot(net, &n0);
    int64_t steps = clcnn_optimizer_steps(opt);
    clcnn_status s = clcnn_checkpoint_load(net, opt, path);
    if (s != want)
        fail_msg("%s: load returned %s (%s), expected %s", what, clcnn_status_str(s),
                 clcnn_last_error(), clcnn_status_str(want));
    const char *msg = clcnn_last_error();
    if (!strstr(msg, path)) fail_msg("%s: message does not name the file: %s", what, msg);
    if (needle && !strstr(msg, needle))
        fail_msg("%s: message does not mention '%s': %s", what, needle, msg);
    float *after = snapshot(net, &n1);
    assert_int_equal(n0, n1);
    if (memcmp(before, after, n0 * sizeof *before) != 0)
        fail_msg("%s: the net changed on a failed load", what);
    assert_int_equal(clcnn_optimizer_steps(opt), steps);
    free(before);
    free(after);
}

typedef void (*mutator)(json_t *root);

static void mut_dtype_i32(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "dtype", json_string("I32"));
}
static void mut_dtype_unknown(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "dtype", json_string("F33"));
}
static void mut_shape_bytes(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "shape", json_pack("[i]", 4));
}
static void mut_shape_transposed(json_t *r) { /* same bytes, other shape */
    json_object_set_new(json_object_get(r, "layers.5.weight"), "shape", json_pack("[i,i]", 75, 4));
}
static void mut_shape_rank(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.5.bias"), "shape", json_pack("[i,i]", 1, 4));
}
static void mut_shape_negative(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "shape", json_pack("[i]", -3));
}
static void mut_shape_not_list(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "shape", json_string("3"));
}
static void mut_shape_float(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "shape", json_pack("[f]", 3.0));
}
static void mut_overlap(json_t *r) { /* the bias moves onto the first 12 bytes of the weight */
    json_object_set_new(json_object_get(r, "layers.0.bias"), "data_offsets",
                        json_pack("[i,i]", 8, 20));
}
static uint64_t g_dlen;
static void mut_out_of_range(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.5.bias"), "data_offsets",
                        json_pack("[I,I]", (json_int_t)g_dlen, (json_int_t)g_dlen + 16));
}
static void mut_begin_after_end(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "data_offsets",
                        json_pack("[i,i]", 20, 8));
}
static void mut_negative_offset(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "data_offsets",
                        json_pack("[i,i]", -12, 0));
}
static void mut_offsets_three(json_t *r) {
    json_object_set_new(json_object_get(r, "layers.0.bias"), "data_offsets",
                        json_pack("[i,i,i]", 0, 12, 24));
}
static void mut_missing_dtype(json_t *r) {
    json_object_del(json_object_get(r, "layers.0.bias"), "dtype");
}
static void mut_entry_not_object(json_t *r) {
    json_object_set_new(r, "layers.0.bias", json_integer(5));
}
static void mut_missing_tensor(json_t *r) {
    json_object_del(r, "layers.1.running_var");
}
static void mut_extra_tensor(json_t *r) { /* an empty tensor: no bytes, still unknown */
    json_object_set_new(
        r, "layers.9.weight",
        json_pack("{s:s,s:[i],s:[i,i]}", "dtype", "F32", "shape", 0, "data_offsets", 0, 0));
}
static void mut_meta_not_string(json_t *r) {
    json_object_set_new(json_object_get(r, "__metadata__"), "epoch", json_integer(3));
}
static void mut_meta_not_object(json_t *r) {
    json_object_set_new(r, "__metadata__", json_pack("[s]", "x"));
}
static void mut_bad_counter(json_t *r) { /* num_batches_tracked on a non-batchnorm layer */
    json_object_set_new(
        r, "layers.0.num_batches_tracked",
        json_pack("{s:s,s:[],s:[i,i]}", "dtype", "I64", "shape", "data_offsets", 0, 0));
}

static void test_malformed_files(void **state) {
    (void)state;
    clcnn_net *net = make_net(5), *src = make_net(6);
    const char *good = path_in("good.safetensors");
    TU_OK(clcnn_checkpoint_save(src, NULL, good, (const char *[]){"epoch", "1", NULL}));
    size_t len;
    uint8_t *bytes = read_all(good, &len);
    uint64_t hlen = get_u64le(bytes);
    const char *bad = path_in("bad.safetensors");

    /* truncated at several points: in the length, in the header, in the data */
    size_t cuts[] = {
        0,       3,      8, 9, 8 + hlen / 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 1, 8 + hlen + 100,
        len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(bad, bytes, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu of %zu", cuts[i], len);
        expect_load_error(net, NULL, bad, CLCNN_ERR_FORMAT, NULL, what);
    }
    /* header length larger than the file; absurdly large; zero */
    uint64_t lens[] = {len, len - 7, (uint64_t)1 << 63, UINT64_MAX, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, bytes, len);
        put_u64le(copy, lens[i]);
        write_all(bad, copy, len);
        free(copy);
        expect_load_error(net, NULL, bad, CLCNN_ERR_FORMAT, "header length", "header length");
    }
    /* A 200 MB sparse file claiming a 150 MB header: refused before reading it. */
    {
        int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        uint8_t hdr[8];
        put_u64le(hdr, (uint64_t)150 << 20);
        assert_int_equal(write(fd, hdr, 8), 8);
        assert_int_equal(ftruncate(fd, (off_t)200 << 20), 0);
        close(fd);
        expect_load_error(net, NULL, bad, CLCNN_ERR_FORMAT, "limit", "huge header");
    }
    /* not JSON, not an object, duplicate keys */
    const char *texts[] = {"{not json", "[1, 2, 3]", "\"str\"", "{\"a\":1,}", "{}x"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        write_st(bad, texts[i], NULL, 0);
        expect_load_error(net, NULL, bad, CLCNN_ERR_FORMAT, NULL, texts[i]);
    }
    {
        st_parts p = split_file(good);
        char *h = json_dumps(p.root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        const char *dup = "{\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[3],"
                          "\"data_offsets\":[0,12]},";
        char *h2 = malloc(strlen(h) + strlen(dup) + 1);
        strcpy(h2, dup);
        strcat(h2, h + 1);
        write_st(bad, h2, p.data, p.dlen);
        expect_load_error(net, NULL, bad, CLCNN_ERR_FORMAT, "duplicate", "duplicate key");
        free(h);
        free(h2);
        json_decref(p.root);
        free(p.data);
    }
    /* entry-level problems */
    struct {
        mutator m;
        clcnn_status want;
        const char *needle, *what;
    } cases[] = {
        {mut_dtype_i32, CLCNN_ERR_FORMAT, "layers.0.bias", "wrong dtype"},
        {mut_dtype_unknown, CLCNN_ERR_FORMAT, "F33", "unknown dtype"},
        {mut_shape_bytes, CLCNN_ERR_FORMAT, "layers.0.bias", "shape/offsets mismatch"},
        {mut_shape_transposed, CLCNN_ERR_SHAPE, "layers.5.weight", "shape differs from the net"},
        {mut_shape_rank, CLCNN_ERR_SHAPE, "layers.5.bias", "rank differs from the net"},
        {mut_shape_negative, CLCNN_ERR_FORMAT, "layers.0.bias", "negative dim"},
        {mut_shape_not_list, CLCNN_ERR_FORMAT, "layers.0.bias", "shape not a list"},
        {mut_shape_float, CLCNN_ERR_FORMAT, "layers.0.bias", "shape of floats"},
        {mut_overlap, CLCNN_ERR_FORMAT, "overlap", "overlapping offsets"},
        {mut_out_of_range, CLCNN_ERR_FORMAT, "layers.5.bias", "offsets out of range"},
        {mut_begin_after_end, CLCNN_ERR_FORMAT, "layers.0.bias", "begin > end"},
        {mut_negative_offset, CLCNN_ERR_FORMAT, "layers.0.bias", "negative offset"},
        {mut_offsets_three, CLCNN_ERR_FORMAT, "layers.0.bias", "three offsets"},
        {mut_missing_dtype, CLCNN_ERR_FORMAT, "layers.0.bias", "missing dtype"},
        {mut_entry_not_object, CLCNN_ERR_FORMAT, "layers.0.bias", "entry not an object"},
        {mut_missing_tensor, CLCNN_ERR_FORMAT, "layers.1.running_var", "missing tensor"},
        {mut_extra_tensor, CLCNN_ERR_FORMAT, "layers.9.weight", "extra tensor"},
        {mut_meta_not_string, CLCNN_ERR_FORMAT, "epoch", "metadata value not a string"},
        {mut_meta_not_object, CLCNN_ERR_FORMAT, "__metadata__", "metadata not an object"},
        {mut_bad_counter, CLCNN_ERR_FORMAT, "layers.0.num_batches_tracked", "stray counter"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_parts p = split_file(good);
        g_dlen = p.dlen;
        cases[i].m(p.root);
        write_parts(bad, p.root, p.data, p.dlen);
        expect_load_error(net, NULL, bad, cases[i].want, cases[i].needle, cases[i].what);
        json_decref(p.root);
        free(p.data);
    }
    /* trailing bytes nobody claims are tolerated; a tensor reaching into them is not */
    {
        st_parts p = split_file(good);
        memset(p.data + p.dlen, 0, 8);
        write_parts(bad, p.root, p.data, p.dlen + 8);
        TU_OK(clcnn_checkpoint_load(net, NULL, bad));
        json_decref(p.root);
        free(p.data);
        TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 5));
    }
    /* not there, a directory */
    expect_load_error(net, NULL, path_in("absent.safetensors"), CLCNN_ERR_IO, NULL, "absent");
    expect_load_error(net, NULL, dir, CLCNN_ERR_IO, "directory", "a directory");
    /* metadata of a bad file is an error too */
    char buf[8];
    write_all(bad, bytes, 9);
    assert_int_equal(clcnn_checkpoint_metadata(bad, "epoch", buf, sizeof buf), CLCNN_ERR_FORMAT);
    /* a checkpoint of another architecture */
    clcnn_net *other = NULL;
    TU_OK(clcnn_net_create(tu_device(), 2, 5, 5, &other));
    TU_OK(clcnn_net_add_flatten(other));
    TU_OK(clcnn_net_add_linear(other, 4, 1));
    const char *op = path_in("other.safetensors");
    TU_OK(clcnn_checkpoint_save(other, NULL, op, NULL));
    expect_load_error(net, NULL, op, CLCNN_ERR_FORMAT, "layers.0.weight", "other net");
    clcnn_net_free(other);
    free(bytes);
    clcnn_net_free(net);
    clcnn_net_free(src);
}

/* Seeded random corruption of a good file: flipped bytes anywhere (length, header,
 * data), random cuts. Whatever load answers, it must not crash (run under ASan in the
 * sanitizer build), and a failed load must leave the net unchanged. */
static void test_random_corruption(void **state) {
    (void)state;
    clcnn_net *net = make_net(12), *src = make_net(13);
    const char *good = path_in("fuzz-good.safetensors"), *bad = path_in("fuzz.safetensors");
    TU_OK(clcnn_checkpoint_save(src, NULL, good, (const char *[]){"k", "v", NULL}));
    size_t len;
    uint8_t *bytes = read_all(good, &len);
    uint64_t hlen = get_u64le(bytes);
    uint8_t *copy = malloc(len);
    tu_rng r = tu_rng_seed(2024);
    size_t before_n;
    float *before = snapshot(net, &before_n);
    int loaded = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(copy, bytes, len);
        size_t cut = len;
        int flips = tu_rng_int(&r, 1, 4);
        for (int f = 0; f < flips; f++) {
            /* mostly the header, where the structure is */
            size_t at = tu_rng_int(&r, 0, 3) ? (size_t)tu_rng_int(&r, 0, (int)(8 + hlen - 1))
                                             : (size_t)tu_rng_int(&r, 0, (int)len - 1);
            copy[at] = tu_rng_int(&r, 0, 1)
                           ? (uint8_t)tu_rng_next(&r)
                           : (uint8_t) "{}[]\",:0123456789-e. \x00"[tu_rng_int(&r, 0, 20)];
        }
        if (tu_rng_int(&r, 0, 4) == 0) cut = (size_t)tu_rng_int(&r, 0, (int)len);
        write_all(bad, copy, cut);
        clcnn_status s = clcnn_checkpoint_load(net, NULL, bad);
        if (s == CLCNN_OK) {
            loaded++; /* a flip inside the data: legal; restore the net */
            TU_OK(clcnn_net_init(net, CLCNN_INIT_HE, 12));
            continue;
        }
        assert_true(s == CLCNN_ERR_FORMAT || s == CLCNN_ERR_SHAPE || s == CLCNN_ERR_IO);
        size_t n;
        float *after = snapshot(net, &n);
        assert_memory_equal(before, after, n * sizeof *after);
        free(after);
    }
    printf("random corruption: %d of 400 files still loaded (data-only changes)\n", loaded);
    free(before);
    free(copy);
    free(bytes);
    clcnn_net_free(net);
    clcnn_net_free(src);
}

/* ---- saves that fail ------------------------------------------------------------------ */

static int temp_files_left(void) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void test_failed_save_keeps_old_file(void **state) {
    (void)state;
    clcnn_net *a = make_net(7), *b = make_net(8);
    const char *path = path_in("keep.safetensors");
    TU_OK(clcnn_checkpoint_save(a, NULL, path, NULL));
    size_t len0;
    uint8_t *orig = read_all(path, &len0);

    /* 1. The temporary file cannot be created (its name is taken by a directory). */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_equal(mkdir(tmp, 0755), 0);
    assert_int_equal(clcnn_checkpoint_save(b, NULL, path, NULL), CLCNN_ERR_IO);
    assert_non_null(strstr(clcnn_last_error(), tmp));
    assert_int_equal(rmdir(tmp), 0);

    /* 2. The disk fills up half way through the data (a file-size limit below the new
     *    file's size): the write fails with EFBIG instead of a signal. */
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = len0 / 2;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    clcnn_status s = clcnn_checkpoint_save(b, NULL, path, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(s, CLCNN_ERR_IO);

    /* 3. The path is a directory: the rename fails. */
    const char *dpath = path_in("adir.safetensors");
    assert_int_equal(mkdir(dpath, 0755), 0);
    assert_int_equal(clcnn_checkpoint_save(b, NULL, dpath, NULL), CLCNN_ERR_IO);
    struct stat st;
    assert_int_equal(stat(dpath, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* 4. The directory does not exist. */
    assert_int_equal(clcnn_checkpoint_save(b, NULL, path_in("no/such/dir.safetensors"), NULL),
                     CLCNN_ERR_IO);

    /* 5. A read-only directory (root ignores permissions, so only as another user). */
    if (geteuid() != 0) {
        const char *ro = path_in("ro");
        assert_int_equal(mkdir(ro, 0755), 0);
        char rop[4300];
        snprintf(rop, sizeof rop, "%s/ck.safetensors", ro);
        TU_OK(clcnn_checkpoint_save(a, NULL, rop, NULL));
        assert_int_equal(chmod(ro, 0555), 0);
        assert_int_equal(clcnn_checkpoint_save(b, NULL, rop, NULL), CLCNN_ERR_IO);
        assert_int_equal(chmod(ro, 0755), 0);
        clcnn_net *c = make_net(9);
        TU_OK(clcnn_checkpoint_load(c, NULL, rop));
        assert_same_params(a, c);
        clcnn_net_free(c);
    }

    /* After all that: the old file is byte for byte what it was, loads, and no temporary
     * file is left behind. */
    size_t len1;
    uint8_t *now = read_all(path, &len1);
    assert_int_equal(len0, len1);
    assert_memory_equal(orig, now, len0);
    assert_int_equal(temp_files_left(), 0);
    TU_OK(clcnn_checkpoint_load(b, NULL, path));
    assert_same_params(a, b);
    free(orig);
    free(now);
    clcnn_net_free(a);
    clcnn_net_free(b);
}

/* ---- optimizer state ---------------------------------------------------------------- */

static void resume_case(clcnn_optim_config cfg, const char *name) {
    const int k = 3, m = 4;
    batch bt = make_batch(11);
    /* uninterrupted: k + m steps */
    clcnn_net *ref = make_net(21);
    clcnn_optimizer *ref_opt = NULL;
    TU_OK(clcnn_optimizer_create(ref, &cfg, &ref_opt));
    train(ref, ref_opt, &bt, k + m);
    /* interrupted after k: save, then a fresh net (other seed) and optimizer load it */
    clcnn_net *a = make_net(21);
    clcnn_optimizer *a_opt = NULL;
    TU_OK(clcnn_optimizer_create(a, &cfg, &a_opt));
    train(a, a_opt, &bt, k);
    const char *path = path_in(name);
    TU_OK(clcnn_checkpoint_save(a, a_opt, path, NULL));
    clcnn_optimizer_free(a_opt);
    clcnn_net_free(a);
    clcnn_net *b = make_net(99);
    clcnn_optimizer *b_opt = NULL;
    TU_OK(clcnn_optimizer_create(b, &cfg, &b_opt));
    TU_OK(clcnn_checkpoint_load(b, b_opt, path));
    assert_int_equal(clcnn_optimizer_steps(b_opt), k);
    char buf[32];
    TU_OK(clcnn_checkpoint_metadata(path, "optim.step", buf, sizeof buf));
    assert_string_equal(buf, "3");
    TU_OK(clcnn_checkpoint_metadata(path, "optim.kind", buf, sizeof buf));
    assert_string_equal(buf, cfg.kind == CLCNN_OPTIM_ADAM ? "adam" : "sgd");
    train(b, b_opt, &bt, m);
    assert_same_params(ref, b); /* memcmp: bit-identical */
    assert_int_equal(clcnn_optimizer_steps(b_opt), k + m);

    /* the weights alone load into a net without an optimizer (state ignored) */
    clcnn_net *c = make_net(5);
    TU_OK(clcnn_checkpoint_load(c, NULL, path));
    /* a checkpoint without state, or of the other kind, refuses to fill an optimizer */
    const char *plain = path_in("plain.safetensors");
    TU_OK(clcnn_checkpoint_save(c, NULL, plain, NULL));
    expect_load_error(b, b_opt, plain, CLCNN_ERR_FORMAT, "optimizer", "no optimizer state");
    clcnn_optim_config other =
        clcnn_optim_default(cfg.kind == CLCNN_OPTIM_ADAM ? CLCNN_OPTIM_SGD : CLCNN_OPTIM_ADAM);
    clcnn_optimizer *o2 = NULL;
    TU_OK(clcnn_optimizer_create(c, &other, &o2));
    expect_load_error(c, o2, path, CLCNN_ERR_FORMAT, "optimizer", "optimizer kind");
    /* a missing slot tensor names it */
    st_parts p = split_file(path);
    const char *slot =
        cfg.kind == CLCNN_OPTIM_ADAM ? "optim.layers.5.bias.v" : "optim.layers.5.bias.momentum";
    assert_non_null(json_object_get(p.root, slot));
    json_object_del(p.root, slot);
    const char *cut = path_in("cut.safetensors");
    write_parts(cut, p.root, p.data, p.dlen);
    expect_load_error(b, b_opt, cut, CLCNN_ERR_FORMAT, slot, "missing slot");
    json_decref(p.root);
    free(p.data);

    clcnn_optimizer_free(o2);
    clcnn_net_free(c);
    clcnn_optimizer_free(b_opt);
    clcnn_net_free(b);
    clcnn_optimizer_free(ref_opt);
    clcnn_net_free(ref);
    free_batch(&bt);
}

static void test_resume_sgd(void **state) {
    (void)state;
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_SGD);
    cfg.weight_decay = 1e-3f;
    resume_case(cfg, "sgd.safetensors");
}

static void test_resume_adam(void **state) {
    (void)state;
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    cfg.weight_decay = 1e-4f;
    resume_case(cfg, "adam.safetensors");
}

/* A save removes the temporary files of earlier saves whose process died (killed in the
 * middle of a save), and leaves those of processes that still run. */
static void test_stale_temporaries_removed(void **state) {
    (void)state;
    clcnn_net *a = make_net(31);
    const char *path = path_in("stale.safetensors");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) _exit(0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child); /* its pid is now dead */
    char dead[4300], live[4300], other[4300];
    snprintf(dead, sizeof dead, "%s.tmp.%ld", path, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    snprintf(other, sizeof other, "%s.tmp.notapid", path);
    const char *names[] = {dead, live, other};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(names[i], "wb");
        assert_non_null(f);
        fputs("half a checkpoint", f);
        fclose(f);
    }
    TU_OK(clcnn_checkpoint_save(a, NULL, path, NULL));
    assert_int_equal(access(dead, F_OK), -1); /* removed */
    assert_int_equal(access(live, F_OK), 0);  /* a running process's: kept */
    assert_int_equal(access(other, F_OK), 0); /* not ours to judge: kept */
    unlink(live);
    unlink(other);
    clcnn_net_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_hand_written_file),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_failed_save_keeps_old_file),
        cmocka_unit_test(test_resume_sgd),
        cmocka_unit_test(test_resume_adam),
        cmocka_unit_test(test_stale_temporaries_removed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
