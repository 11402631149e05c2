/* The data layer: the real Fashion-MNIST files load; broken IDX files (truncated plain and
 * gzip, wrong magic, count mismatch, a .gz name that is not gzip, huge claimed counts,
 * labels out of range, ...) give clear errors and no crash and no large allocation;
 * normalisation; the batch iterator is deterministic per seed, visits every sample once
 * per epoch, and resumes exactly. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* AddressSanitizer reserves terabytes of address space: no RLIMIT_AS under it. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_RLIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_RLIMIT 1
#endif
#endif
#ifndef NO_RLIMIT
#define NO_RLIMIT 0
#endif

static char *tmp;

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmp, name);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Write an IDX file: magic, ndims dims, then `len` data bytes (which need not match the
 * dims: that is the point of several tests). gz: gzip-compress it. keep: write only the
 * first `keep` bytes of the (possibly compressed) file (0 = all). */
static void write_idx(const char *name, uint32_t magic, int ndims, const uint32_t *dims,
                      const uint8_t *data, size_t len, int gz, size_t keep) {
    size_t hdr = 4 + 4 * (size_t)ndims;
    size_t raw_len = hdr + len;
    unsigned char *raw = malloc(raw_len);
    assert_non_null(raw);
    put_be32(raw, magic);
    for (int i = 0; i < ndims; i++)
        put_be32(raw + 4 + 4 * i, dims[i]);
    if (len && data) memcpy(raw + hdr, data, len);
    unsigned char *bytes = raw;
    size_t bytes_len = raw_len;
    unsigned char *comp = NULL;
    if (gz) {
        /* gzip wrapper via deflateInit2 (windowBits 15 + 16). */
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
        size_t cap = deflateBound(&zs, raw_len) + 64;
        comp = malloc(cap);
        zs.next_in = raw;
        zs.avail_in = (uInt)raw_len;
        zs.next_out = comp;
        zs.avail_out = (uInt)cap;
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        bytes = comp;
        bytes_len = zs.total_out;
        deflateEnd(&zs);
    }
    if (keep && keep < bytes_len) bytes_len = keep;
    char path[4096];
    path_in(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, bytes_len, f), bytes_len);
    fclose(f);
    free(raw);
    free(comp);
}

/* A small valid pair: n images of h x w with pixel (i, j) = (i + j) & 255, labels i % 10. */
static void write_pair(const char *img, const char *lab, uint32_t n, uint32_t h, uint32_t w,
                       int gz) {
    uint8_t *px = malloc((size_t)n * h * w);
    uint8_t *lb = malloc(n);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < (size_t)h * w; j++)
            px[i * h * w + j] = (uint8_t)((i + j) & 255);
        lb[i] = (uint8_t)(i % 10);
    }
    write_idx(img, 0x803, 3, (uint32_t[]){n, h, w}, px, (size_t)n * h * w, gz, 0);
    write_idx(lab, 0x801, 1, (uint32_t[]){n}, lb, n, gz, 0);
    free(px);
    free(lb);
}

/* Load img + lab from the temp dir, expecting `want`; on error the message must
 * contain `needle` (and name the offending file when `file` is given). */
static void expect_load(const char *img, const char *lab, clcnn_status want, const char *file,
                        const char *needle) {
    char ip[4096], lp[4096];
    path_in(ip, sizeof ip, img);
    path_in(lp, sizeof lp, lab);
    clcnn_dataset *ds = (clcnn_dataset *)0x1;
    clcnn_status s = clcnn_dataset_load_idx(ip, lp, 10, &ds);
    if (s != want)
        fail_msg("load %s + %s: got %s (%s), want %s", img, lab, clcnn_status_str(s),
                 clcnn_last_error(), clcnn_status_str(want));
    if (want == CLCNN_OK) {
        assert_non_null(ds);
        clcnn_dataset_free(ds);
        return;
    }
    assert_null(ds);
    const char *msg = clcnn_last_error();
    if (file && !strstr(msg, file)) fail_msg("message '%s' does not name %s", msg, file);
    if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
}

/* ---- the real data set ----------------------------------------------------------- */

static void test_real_fashion_mnist(void **state) {
    (void)state;
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", CLCNN_FASHION_MNIST_DIR);
    if (access(probe, R_OK) != 0) {
        print_message("Fashion-MNIST not installed in %s (dataset-fashion-mnist): skipped\n",
                      CLCNN_FASHION_MNIST_DIR);
        skip();
    }
    const struct {
        clcnn_split split;
        size_t n;
    } splits[] = {{CLCNN_SPLIT_TRAIN, 60000}, {CLCNN_SPLIT_TEST, 10000}};
    for (int k = 0; k < 2; k++) {
        clcnn_dataset *ds = NULL;
        TU_OK(clcnn_dataset_load_mnist(NULL, splits[k].split, &ds));
        assert_int_equal(clcnn_dataset_size(ds), splits[k].n);
        int c, h, w;
        clcnn_dataset_shape(ds, &c, &h, &w);
        assert_int_equal(c, 1);
        assert_int_equal(h, 28);
        assert_int_equal(w, 28);
        assert_int_equal(clcnn_dataset_num_classes(ds), 10);
        size_t hist[10] = {0};
        double sum = 0;
        for (size_t i = 0; i < splits[k].n; i++) {
            int l = clcnn_dataset_label(ds, i);
            assert_true(l >= 0 && l < 10);
            hist[l]++;
            const uint8_t *p = clcnn_dataset_pixels(ds, i);
            for (int j = 0; j < 28 * 28; j++)
                sum += p[j];
        }
        for (int l = 0; l < 10; l++)
            assert_int_equal(hist[l], splits[k].n / 10);
        /* The default normalisation constants are the training set's statistics. */
        if (splits[k].split == CLCNN_SPLIT_TRAIN) {
            double mean = sum / (60000.0 * 784.0) / 255.0;
            assert_true(fabs(mean - CLCNN_FASHION_MNIST_MEAN) < 5e-4);
        }
        clcnn_dataset_free(ds);
    }
    assert_string_equal(clcnn_fashion_mnist_class_name(0), "T-shirt/top");
    assert_string_equal(clcnn_fashion_mnist_class_name(9), "Ankle boot");
    assert_null(clcnn_fashion_mnist_class_name(10));
    assert_null(clcnn_fashion_mnist_class_name(-1));
}

/* ---- valid synthetic files ------------------------------------------------------ */

static void test_plain_and_gzip_agree(void **state) {
    (void)state;
    write_pair("a-img", "a-lab", 37, 5, 3, 0);
    write_pair("a-img.gz", "a-lab.gz", 37, 5, 3, 1);
    write_pair("a-gzdata-img", "a-gzdata-lab", 37, 5, 3, 1); /* gzip under a plain name */
    const char *names[3][2] = {
        {"a-img", "a-lab"}, {"a-img.gz", "a-lab.gz"}, {"a-gzdata-img", "a-gzdata-lab"}};
    for (int k = 0; k < 3; k++) {
        char ip[4096], lp[4096];
        path_in(ip, sizeof ip, names[k][0]);
        path_in(lp, sizeof lp, names[k][1]);
        clcnn_dataset *ds = NULL;
        TU_OK(clcnn_dataset_load_idx(ip, lp, 10, &ds));
        assert_int_equal(clcnn_dataset_size(ds), 37);
        int c, h, w;
        clcnn_dataset_shape(ds, &c, &h, &w);
        assert_int_equal(c * 100 + h * 10 + w, 153);
        for (size_t i = 0; i < 37; i++) {
            assert_int_equal(clcnn_dataset_label(ds, i), (int)(i % 10));
            const uint8_t *p = clcnn_dataset_pixels(ds, i);
            for (size_t j = 0; j < 15; j++)
                assert_int_equal(p[j], (i + j) & 255);
        }
        assert_null(clcnn_dataset_pixels(ds, 37));
        assert_int_equal(clcnn_dataset_label(ds, 37), -1);
        clcnn_dataset_free(ds);
    }
    clcnn_dataset_free(NULL);
}

static void test_mnist_directory_names(void **state) {
    (void)state;
    char dir[4096], sub[4096];
    snprintf(dir, sizeof dir, "%s/mnist-gz", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_pair("mnist-gz/train-images-idx3-ubyte.gz", "mnist-gz/train-labels-idx1-ubyte.gz", 20, 4,
               4, 1);
    write_pair("mnist-gz/t10k-images-idx3-ubyte.gz", "mnist-gz/t10k-labels-idx1-ubyte.gz", 10, 4, 4,
               1);
    snprintf(sub, sizeof sub, "%s/mnist-plain", tmp);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_pair("mnist-plain/train-images.idx3-ubyte", "mnist-plain/train-labels.idx1-ubyte", 30, 4,
               4, 0);
    write_pair("mnist-plain/t10k-images-idx3-ubyte", "mnist-plain/t10k-labels-idx1-ubyte", 10, 4, 4,
               0);
    clcnn_dataset *ds = NULL;
    TU_OK(clcnn_dataset_load_mnist(dir, CLCNN_SPLIT_TRAIN, &ds));
    assert_int_equal(clcnn_dataset_size(ds), 20);
    clcnn_dataset_free(ds);
    TU_OK(clcnn_dataset_load_mnist(dir, CLCNN_SPLIT_TEST, &ds));
    assert_int_equal(clcnn_dataset_size(ds), 10);
    clcnn_dataset_free(ds);
    TU_OK(clcnn_dataset_load_mnist(sub, CLCNN_SPLIT_TRAIN, &ds));
    assert_int_equal(clcnn_dataset_size(ds), 30);
    clcnn_dataset_free(ds);

    /* A directory without the files: CLCNN_ERR_IO naming the directory and the file. */
    ds = (clcnn_dataset *)0x1;
    assert_int_equal(clcnn_dataset_load_mnist(tmp, CLCNN_SPLIT_TRAIN, &ds), CLCNN_ERR_IO);
    assert_null(ds);
    assert_non_null(strstr(clcnn_last_error(), "train-images-idx3-ubyte"));
    assert_non_null(strstr(clcnn_last_error(), tmp));
    assert_int_equal(clcnn_dataset_load_mnist("/nonexistent/dir", CLCNN_SPLIT_TEST, &ds),
                     CLCNN_ERR_IO);
    assert_int_equal(clcnn_dataset_load_mnist(dir, (clcnn_split)7, &ds), CLCNN_ERR_INVALID_ARG);
}

/* clcnn_dataset_load_mnist_first: the first n samples, the same bytes as a whole load's;
 * n = 0 or past the end gives all; the rest of a gzip file is not read (so data past the
 * header's count, which a whole load rejects, goes unnoticed); both headers still agree. */
static void test_first_samples(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/first", tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_pair("first/train-images-idx3-ubyte.gz", "first/train-labels-idx1-ubyte.gz", 23, 3, 5, 1);
    write_pair("first/t10k-images-idx3-ubyte", "first/t10k-labels-idx1-ubyte", 11, 3, 5, 0);
    /* errors name the function called */
    assert_int_equal(clcnn_dataset_load_mnist_first(dir, CLCNN_SPLIT_TRAIN, 5, NULL),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "clcnn_dataset_load_mnist_first: "));
    assert_int_equal(clcnn_dataset_load_mnist(dir, (clcnn_split)7, &(clcnn_dataset *){NULL}),
                     CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "clcnn_dataset_load_mnist: unknown split 7"));
    const struct {
        clcnn_split split;
        size_t n;
    } sp[] = {{CLCNN_SPLIT_TRAIN, 23}, {CLCNN_SPLIT_TEST, 11}};
    for (int k = 0; k < 2; k++) {
        clcnn_dataset *all = NULL;
        TU_OK(clcnn_dataset_load_mnist(dir, sp[k].split, &all));
        const size_t firsts[] = {0, 1, 7, sp[k].n - 1, sp[k].n, sp[k].n + 5};
        for (size_t f = 0; f < sizeof firsts / sizeof *firsts; f++) {
            clcnn_dataset *ds = NULL;
            TU_OK(clcnn_dataset_load_mnist_first(dir, sp[k].split, firsts[f], &ds));
            size_t want = firsts[f] == 0 || firsts[f] > sp[k].n ? sp[k].n : firsts[f];
            assert_int_equal(clcnn_dataset_size(ds), want);
            for (size_t i = 0; i < want; i++) {
                assert_int_equal(clcnn_dataset_label(ds, i), clcnn_dataset_label(all, i));
                assert_memory_equal(clcnn_dataset_pixels(ds, i), clcnn_dataset_pixels(all, i), 15);
            }
            assert_null(clcnn_dataset_pixels(ds, want));
            clcnn_dataset_free(ds);
        }
        clcnn_dataset_free(all);
    }

    /* 9 images' bytes under a header of 8: a whole load refuses them, the first 5 load */
    uint8_t px[9 * 4], lb[8];
    for (int i = 0; i < 9 * 4; i++)
        px[i] = (uint8_t)i;
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)(i % 10);
    write_idx("first/train-images-idx3-ubyte.gz", 0x803, 3, (uint32_t[]){8, 2, 2}, px, sizeof px, 1,
              0);
    write_idx("first/train-labels-idx1-ubyte.gz", 0x801, 1, (uint32_t[]){8}, lb, sizeof lb, 1, 0);
    clcnn_dataset *ds = (clcnn_dataset *)0x1;
    assert_int_equal(clcnn_dataset_load_mnist(dir, CLCNN_SPLIT_TRAIN, &ds), CLCNN_ERR_FORMAT);
    assert_null(ds);
    assert_non_null(strstr(clcnn_last_error(), "more data than the header"));
    TU_OK(clcnn_dataset_load_mnist_first(dir, CLCNN_SPLIT_TRAIN, 5, &ds));
    assert_int_equal(clcnn_dataset_size(ds), 5);
    assert_int_equal(clcnn_dataset_pixels(ds, 4)[3], 19);
    clcnn_dataset_free(ds);
    /* ... but headers that disagree in count are still an error, and so is a bad label */
    write_idx("first/train-labels-idx1-ubyte.gz", 0x801, 1, (uint32_t[]){7}, lb, 7, 1, 0);
    ds = (clcnn_dataset *)0x1;
    assert_int_equal(clcnn_dataset_load_mnist_first(dir, CLCNN_SPLIT_TRAIN, 5, &ds),
                     CLCNN_ERR_FORMAT);
    assert_null(ds);
    lb[2] = 10;
    write_idx("first/train-labels-idx1-ubyte.gz", 0x801, 1, (uint32_t[]){8}, lb, 8, 1, 0);
    assert_int_equal(clcnn_dataset_load_mnist_first(dir, CLCNN_SPLIT_TRAIN, 5, &ds),
                     CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "label 2 is 10"));
    TU_OK(clcnn_dataset_load_mnist_first(dir, CLCNN_SPLIT_TRAIN, 2, &ds)); /* before it */
    clcnn_dataset_free(ds);
}

/* ---- broken files ----------------------------------------------------------------- */

static void test_broken_files(void **state) {
    (void)state;
    uint8_t px[10 * 16], lb[10];
    for (int i = 0; i < 160; i++)
        px[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        lb[i] = (uint8_t)(i % 10);
    write_idx("ok-img", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 160, 0, 0);
    write_idx("ok-lab", 0x801, 1, (uint32_t[]){10}, lb, 10, 0, 0);
    write_idx("ok-img.gz", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 160, 1, 0);
    write_idx("ok-lab.gz", 0x801, 1, (uint32_t[]){10}, lb, 10, 1, 0);
    expect_load("ok-img", "ok-lab", CLCNN_OK, NULL, NULL);
    expect_load("ok-img.gz", "ok-lab.gz", CLCNN_OK, NULL, NULL);

    /* missing / empty files */
    expect_load("no-such-file", "ok-lab", CLCNN_ERR_IO, "no-such-file", NULL);
    write_idx("empty", 0, 0, NULL, NULL, 0, 0, 0);
    {
        char p[4096];
        path_in(p, sizeof p, "empty");
        FILE *f = fopen(p, "wb");
        fclose(f);
    }
    expect_load("empty", "ok-lab", CLCNN_ERR_FORMAT, "empty", "truncated header");

    /* truncated plain: header says 10 images, data holds 7.5 */
    write_idx("trunc-img", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 120, 0, 0);
    expect_load("trunc-img", "ok-lab", CLCNN_ERR_FORMAT, "trunc-img", "truncated");
    /* trailing bytes in a plain file */
    uint8_t big[200] = {0};
    write_idx("long-img", 0x803, 3, (uint32_t[]){10, 4, 4}, big, 200, 0, 0);
    expect_load("long-img", "ok-lab", CLCNN_ERR_FORMAT, "long-img", "trailing");
    /* truncated gzip: a complete stream holding too little data ... */
    write_idx("short-img.gz", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 120, 1, 0);
    expect_load("short-img.gz", "ok-lab", CLCNN_ERR_FORMAT, "short-img.gz", "truncated");
    /* ... and a gzip file cut in the middle of the compressed stream, at several places */
    for (size_t keep = 12; keep < 80; keep += 9) {
        write_idx("cut-img.gz", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 160, 1, keep);
        expect_load("cut-img.gz", "ok-lab.gz", CLCNN_ERR_FORMAT, "cut-img.gz", NULL);
    }
    /* a gzip stream with its trailer (CRC, size) cut off after all the data */
    {
        char p[4096];
        path_in(p, sizeof p, "ok-img.gz");
        FILE *f = fopen(p, "rb");
        fseek(f, 0, SEEK_END);
        long full = ftell(f);
        fclose(f);
        write_idx("notrailer-img.gz", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 160, 1,
                  (size_t)full - 4);
        expect_load("notrailer-img.gz", "ok-lab", CLCNN_ERR_FORMAT, "notrailer-img.gz", NULL);
    }
    /* corrupt deflate data (flip bytes in the middle of the stream) */
    {
        char p[4096], q[4096];
        path_in(p, sizeof p, "ok-img.gz");
        path_in(q, sizeof q, "corrupt-img.gz");
        FILE *f = fopen(p, "rb");
        unsigned char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (size_t i = 14; i < n - 10; i += 3)
            buf[i] ^= 0x5a;
        f = fopen(q, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        expect_load("corrupt-img.gz", "ok-lab", CLCNN_ERR_FORMAT, "corrupt-img.gz", NULL);
    }
    /* wrong magic: a label file given as images, random bytes, a non-u8 type */
    expect_load("ok-lab", "ok-lab", CLCNN_ERR_FORMAT, "ok-lab", "magic");
    expect_load("ok-img", "ok-img", CLCNN_ERR_FORMAT, "ok-img", "magic");
    write_idx("float-img", 0x0d03, 3, (uint32_t[]){10, 4, 4}, px, 160, 0, 0);
    expect_load("float-img", "ok-lab", CLCNN_ERR_FORMAT, "float-img", "magic");
    write_idx("text-img", 0x3c68746d, 0, NULL, NULL, 0, 0, 0); /* "<htm" */
    expect_load("text-img", "ok-lab", CLCNN_ERR_FORMAT, "text-img", "magic");
    /* a dimension of 0 */
    write_idx("zero-img", 0x803, 3, (uint32_t[]){10, 0, 4}, px, 0, 0, 0);
    expect_load("zero-img", "ok-lab", CLCNN_ERR_FORMAT, "zero-img", "0");
    /* count mismatch between images and labels */
    write_idx("nine-lab", 0x801, 1, (uint32_t[]){9}, lb, 9, 0, 0);
    expect_load("ok-img", "nine-lab", CLCNN_ERR_FORMAT, "nine-lab", "10 images");
    /* a .gz name whose content is not gzip */
    write_idx("fake-img.gz", 0x803, 3, (uint32_t[]){10, 4, 4}, px, 160, 0, 0);
    expect_load("fake-img.gz", "ok-lab", CLCNN_ERR_FORMAT, "fake-img.gz", "not gzip");
    /* a label out of range */
    uint8_t badlb[10];
    memcpy(badlb, lb, 10);
    badlb[7] = 10;
    write_idx("bad-lab", 0x801, 1, (uint32_t[]){10}, badlb, 10, 0, 0);
    expect_load("ok-img", "bad-lab", CLCNN_ERR_FORMAT, "bad-lab", "label 7 is 10");
    badlb[7] = 255;
    write_idx("bad-lab.gz", 0x801, 1, (uint32_t[]){10}, badlb, 10, 1, 0);
    expect_load("ok-img.gz", "bad-lab.gz", CLCNN_ERR_FORMAT, "bad-lab.gz", "255");

    /* num_classes other than 10 */
    char ip[4096], lp[4096];
    path_in(ip, sizeof ip, "ok-img");
    path_in(lp, sizeof lp, "ok-lab");
    clcnn_dataset *ds = NULL;
    assert_int_equal(clcnn_dataset_load_idx(ip, lp, 5, &ds), CLCNN_ERR_FORMAT);
    assert_null(ds);
    assert_int_equal(clcnn_dataset_load_idx(ip, lp, 0, &ds), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dataset_load_idx(NULL, lp, 10, &ds), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dataset_load_idx(ip, lp, 10, NULL), CLCNN_ERR_INVALID_ARG);
    /* a directory is not a file */
    assert_int_equal(clcnn_dataset_load_idx(tmp, lp, 10, &ds), CLCNN_ERR_IO);
}

/* Headers claiming huge counts must fail before allocating what they claim. The loads run
 * in a child process whose address space is capped at 1 GiB, so an allocation trusting
 * the header (2^31 x 28 x 28 bytes = 1.6 TB, or 2^31 labels) would fail the test. */
static void test_huge_claims_do_not_allocate(void **state) {
    (void)state;
    uint8_t px[784 * 4], lb[4] = {0};
    tu_rng rng = tu_rng_seed(3);
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)tu_rng_next(&rng); /* incompressible */
    write_idx("huge-img", 0x803, 3, (uint32_t[]){0x7fffffffu, 28, 28}, px, sizeof px, 0, 0);
    write_idx("huge-img.gz", 0x803, 3, (uint32_t[]){0x7fffffffu, 28, 28}, px, sizeof px, 1, 0);
    write_idx("huge-lab", 0x801, 1, (uint32_t[]){0x7fffffffu}, lb, 4, 0, 0);
    write_idx("huge-lab.gz", 0x801, 1, (uint32_t[]){0x7fffffffu}, lb, 4, 1, 0);
    /* 10^7 images: under the byte cap, so the file size / gzip ratio checks must catch it */
    write_idx("ten-m-img", 0x803, 3, (uint32_t[]){10000000u, 28, 28}, px, sizeof px, 0, 0);
    write_idx("ten-m-img.gz", 0x803, 3, (uint32_t[]){10000000u, 28, 28}, px, sizeof px, 1, 0);
    write_idx("max-img.gz", 0x803, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, px,
              sizeof px, 1, 0);
    /* within deflate's ratio bound (784 kB claimed from 3 kB of gzip): fails when the
     * data runs out, having allocated only what arrived */
    write_idx("mid-img.gz", 0x803, 3, (uint32_t[]){1000, 28, 28}, px, sizeof px, 1, 0);
    write_idx("four-img", 0x803, 3, (uint32_t[]){4, 28, 28}, px, sizeof px, 0, 0);
    write_idx("four-lab", 0x801, 1, (uint32_t[]){4}, lb, 4, 0, 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
#if !NO_RLIMIT
        struct rlimit rl = {1ULL << 30, 1ULL << 30};
        setrlimit(RLIMIT_AS, &rl);
#endif
        const char *imgs[] = {"huge-img",   "huge-img.gz", "ten-m-img", "ten-m-img.gz",
                              "max-img.gz", "mid-img.gz",  "huge-img",  NULL};
        const char *labs[] = {"four-lab", "four-lab", "four-lab",    "four-lab",
                              "four-lab", "four-lab", "huge-lab.gz", NULL};
        for (int i = 0; imgs[i]; i++) {
            char ip[4096], lp[4096];
            path_in(ip, sizeof ip, imgs[i]);
            path_in(lp, sizeof lp, labs[i]);
            clcnn_dataset *ds = NULL;
            clcnn_status s = clcnn_dataset_load_idx(ip, lp, 10, &ds);
            if (s != CLCNN_ERR_FORMAT || ds || !strstr(clcnn_last_error(), imgs[i]) ||
                strlen(clcnn_last_error()) < 20) {
                fprintf(stderr, "%s: %s: %s\n", imgs[i], clcnn_status_str(s), clcnn_last_error());
                _exit(1);
            }
            fprintf(stderr, "  ok: %s\n", clcnn_last_error());
        }
        /* labels claiming 2^31 (plain and gzip) against a valid 4-image file */
        const char *hl[] = {"huge-lab", "huge-lab.gz", NULL};
        for (int i = 0; hl[i]; i++) {
            char ip[4096], lp[4096];
            path_in(ip, sizeof ip, "four-img");
            path_in(lp, sizeof lp, hl[i]);
            clcnn_dataset *ds = NULL;
            clcnn_status s = clcnn_dataset_load_idx(ip, lp, 10, &ds);
            if (s != CLCNN_ERR_FORMAT || ds || !strstr(clcnn_last_error(), hl[i])) {
                fprintf(stderr, "%s: %s: %s\n", hl[i], clcnn_status_str(s), clcnn_last_error());
                _exit(1);
            }
            fprintf(stderr, "  ok: %s\n", clcnn_last_error());
        }
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- normalisation ---------------------------------------------------------------- */

static clcnn_dataset *small_dataset(const char *tag, uint32_t n, uint32_t h, uint32_t w) {
    char img[128], lab[128], ip[4096], lp[4096];
    snprintf(img, sizeof img, "%s-img", tag);
    snprintf(lab, sizeof lab, "%s-lab", tag);
    write_pair(img, lab, n, h, w, 0);
    path_in(ip, sizeof ip, img);
    path_in(lp, sizeof lp, lab);
    clcnn_dataset *ds = NULL;
    TU_OK(clcnn_dataset_load_idx(ip, lp, 10, &ds));
    return ds;
}

static void test_normalization(void **state) {
    (void)state;
    clcnn_dataset *ds = small_dataset("norm", 300, 2, 3);
    float mean, std;
    clcnn_dataset_normalization(ds, &mean, &std);
    assert_true(mean == CLCNN_FASHION_MNIST_MEAN && std == CLCNN_FASHION_MNIST_STD);
    size_t idx[3] = {0, 299, 130};
    float x[3 * 6];
    int32_t lab[3];
    TU_OK(clcnn_dataset_gather(ds, idx, 3, x, lab));
    double ref[18];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lab[i], (int)(idx[i] % 10));
        for (int j = 0; j < 6; j++)
            ref[i * 6 + j] = (((idx[i] + j) & 255) / 255.0 - 0.2860) / 0.3530;
    }
    /* one float division chain per value: a few ulps */
    assert_true(tu_close("normalised pixels", x, ref, 18, 1e-6, 1e-6));

    TU_OK(clcnn_dataset_set_normalization(ds, 0.5f, 2.0f));
    TU_OK(clcnn_dataset_gather(ds, idx, 1, x, NULL));
    for (int j = 0; j < 6; j++)
        ref[j] = (j / 255.0 - 0.5) / 2.0;
    assert_true(tu_close("custom normalisation", x, ref, 6, 1e-6, 1e-6));

    assert_int_equal(clcnn_dataset_set_normalization(ds, 0.0f, 0.0f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dataset_set_normalization(ds, NAN, 1.0f), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_dataset_set_normalization(ds, 0.0f, -1.0f), CLCNN_ERR_INVALID_ARG);
    clcnn_dataset_normalization(ds, &mean, &std);
    assert_true(mean == 0.5f && std == 2.0f); /* unchanged by the failed calls */

    /* out-of-range index: error, nothing written */
    float sentinel[6];
    for (int j = 0; j < 6; j++)
        sentinel[j] = -7.0f;
    size_t bad[2] = {1, 300};
    assert_int_equal(clcnn_dataset_gather(ds, bad, 2, sentinel, NULL), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "300"));
    for (int j = 0; j < 6; j++)
        assert_true(sentinel[j] == -7.0f);

    clcnn_dataset_limit(ds, 50);
    assert_int_equal(clcnn_dataset_size(ds), 50);
    clcnn_dataset_limit(ds, 0); /* 0 keeps all */
    clcnn_dataset_limit(ds, 5000);
    assert_int_equal(clcnn_dataset_size(ds), 50);
    clcnn_dataset_free(ds);
}

/* ---- the batch iterator ---------------------------------------------------------- */

/* Images of 1x2 pixels that encode their index (hi, lo); normalisation set so that a
 * float equals its byte, so a batch tells which samples it holds. */
static clcnn_dataset *indexed_dataset(uint32_t n) {
    uint8_t *px = malloc(2 * (size_t)n), *lb = malloc(n);
    for (uint32_t i = 0; i < n; i++) {
        px[2 * i] = (uint8_t)(i >> 8);
        px[2 * i + 1] = (uint8_t)(i & 255);
        lb[i] = (uint8_t)(i % 10);
    }
    write_idx("ix-img", 0x803, 3, (uint32_t[]){n, 1, 2}, px, 2 * (size_t)n, 0, 0);
    write_idx("ix-lab", 0x801, 1, (uint32_t[]){n}, lb, n, 0, 0);
    free(px);
    free(lb);
    char ip[4096], lp[4096];
    path_in(ip, sizeof ip, "ix-img");
    path_in(lp, sizeof lp, "ix-lab");
    clcnn_dataset *ds = NULL;
    TU_OK(clcnn_dataset_load_idx(ip, lp, 10, &ds));
    TU_OK(clcnn_dataset_set_normalization(ds, 0.0f, 1.0f / 255.0f));
    return ds;
}

/* Run one epoch, writing the visited sample indices into seen (n entries); returns the
 * number of batches. Checks labels match and the batch index sequence. */
static size_t run_epoch(clcnn_batcher *b, size_t *seen, size_t cap, size_t *sizes) {
    size_t count = 0, nb = 0;
    clcnn_batch batch;
    for (;;) {
        TU_OK(clcnn_batcher_next(b, &batch));
        if (batch.n == 0) break;
        assert_int_equal(batch.index, nb);
        if (sizes) sizes[nb] = batch.n;
        nb++;
        for (size_t i = 0; i < batch.n; i++) {
            size_t idx = (size_t)lrintf(batch.x[2 * i]) * 256 + (size_t)lrintf(batch.x[2 * i + 1]);
            assert_int_equal(batch.labels[i], (int32_t)(idx % 10));
            assert_true(count < cap);
            seen[count++] = idx;
        }
    }
    assert_int_equal(count, cap);
    return nb;
}

static void test_batcher_visits_each_sample_once(void **state) {
    (void)state;
    const uint32_t n = 1003;
    clcnn_dataset *ds = indexed_dataset(n);
    clcnn_batcher_config cfg = clcnn_batcher_config_default();
    cfg.batch_size = 64;
    cfg.seed = 42;
    clcnn_batcher *b = NULL;
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    assert_int_equal(clcnn_batcher_num_batches(b), 16); /* 15 full + 43 */
    size_t *seen0 = malloc(n * sizeof *seen0), *seen1 = malloc(n * sizeof *seen1);
    size_t sizes[16];
    assert_int_equal(run_epoch(b, seen0, n, sizes), 16);
    assert_int_equal(sizes[15], 1003 - 15 * 64);
    int64_t e;
    size_t pos;
    clcnn_batcher_position(b, &e, &pos);
    assert_int_equal(e, 1);
    assert_int_equal(pos, 0);
    assert_int_equal(run_epoch(b, seen1, n, NULL), 16);
    /* each epoch is a permutation of 0..n-1 */
    char *hit = calloc(n, 1);
    for (int k = 0; k < 2; k++) {
        memset(hit, 0, n);
        for (size_t i = 0; i < n; i++) {
            size_t v = (k ? seen1 : seen0)[i];
            assert_true(v < n);
            assert_false(hit[v]);
            hit[v] = 1;
        }
    }
    /* shuffled (not the identity) and reshuffled between epochs */
    size_t same_pos = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        same_pos += seen0[i] == i;
        diff += seen0[i] != seen1[i];
    }
    assert_true(same_pos < 20);
    assert_true(diff > n / 2);
    clcnn_batcher_free(b);

    /* drop_last drops the partial batch */
    cfg.drop_last = 1;
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    assert_int_equal(clcnn_batcher_num_batches(b), 15);
    clcnn_batch batch;
    size_t total = 0;
    for (;;) {
        TU_OK(clcnn_batcher_next(b, &batch));
        if (!batch.n) break;
        assert_int_equal(batch.n, 64);
        total += batch.n;
    }
    assert_int_equal(total, 15 * 64);
    clcnn_batcher_free(b);

    /* no shuffle: file order; batch bigger than the data set: one batch */
    cfg = clcnn_batcher_config_default();
    cfg.shuffle = 0;
    cfg.batch_size = 5000;
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    assert_int_equal(clcnn_batcher_num_batches(b), 1);
    assert_int_equal(run_epoch(b, seen0, n, NULL), 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen0[i], i);
    clcnn_batcher_free(b);

    /* batch 1 */
    cfg.batch_size = 1;
    cfg.shuffle = 1;
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    assert_int_equal(run_epoch(b, seen0, n, NULL), n);
    clcnn_batcher_free(b);

    free(hit);
    free(seen0);
    free(seen1);
    clcnn_dataset_free(ds);
}

static void test_batcher_deterministic_and_resumable(void **state) {
    (void)state;
    const uint32_t n = 500;
    clcnn_dataset *ds = indexed_dataset(n);
    clcnn_batcher_config cfg = clcnn_batcher_config_default();
    cfg.batch_size = 32;
    cfg.seed = 7;
    clcnn_batcher *a = NULL, *b = NULL, *c = NULL;
    TU_OK(clcnn_batcher_create(ds, &cfg, &a));
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    cfg.seed = 8;
    TU_OK(clcnn_batcher_create(ds, &cfg, &c));
    size_t sa[3][500], sb[500], sc[500];
    for (int e = 0; e < 3; e++)
        run_epoch(a, sa[e], n, NULL);
    run_epoch(b, sb, n, NULL);
    run_epoch(c, sc, n, NULL);
    assert_memory_equal(sa[0], sb, sizeof sb);     /* same seed: same order */
    assert_memory_not_equal(sa[0], sc, sizeof sc); /* another seed: another order */

    /* Resume at (epoch 2, batch 5) in a fresh batcher: the rest of epoch 2 matches. */
    cfg.seed = 7;
    clcnn_batcher *r = NULL;
    TU_OK(clcnn_batcher_create(ds, &cfg, &r));
    TU_OK(clcnn_batcher_seek(r, 2, 5));
    int64_t e;
    size_t pos;
    clcnn_batcher_position(r, &e, &pos);
    assert_int_equal(e, 2);
    assert_int_equal(pos, 5);
    size_t k = 5 * 32;
    clcnn_batch batch;
    for (;;) {
        TU_OK(clcnn_batcher_next(r, &batch));
        if (!batch.n) break;
        for (size_t i = 0; i < batch.n; i++) {
            size_t idx = (size_t)lrintf(batch.x[2 * i]) * 256 + (size_t)lrintf(batch.x[2 * i + 1]);
            assert_int_equal(idx, sa[2][k]);
            assert_int_equal(clcnn_batcher_order(r, k), sa[2][k]);
            k++;
        }
    }
    assert_int_equal(k, n);
    /* seeking back to epoch 0 reproduces it too */
    TU_OK(clcnn_batcher_seek(r, 0, 0));
    run_epoch(r, sb, n, NULL);
    assert_memory_equal(sa[0], sb, sizeof sb);
    /* the end-of-epoch position is a valid seek target; beyond it is not */
    TU_OK(clcnn_batcher_seek(r, 1, clcnn_batcher_num_batches(r)));
    TU_OK(clcnn_batcher_next(r, &batch));
    assert_int_equal(batch.n, 0);
    clcnn_batcher_position(r, &e, &pos);
    assert_int_equal(e, 2);
    assert_int_equal(clcnn_batcher_seek(r, 0, clcnn_batcher_num_batches(r) + 1),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batcher_seek(r, -1, 0), CLCNN_ERR_INVALID_ARG);

    /* bad configurations */
    clcnn_batcher *x = (clcnn_batcher *)0x1;
    cfg.batch_size = 0;
    assert_int_equal(clcnn_batcher_create(ds, &cfg, &x), CLCNN_ERR_INVALID_ARG);
    assert_null(x);
    cfg.batch_size = 501;
    cfg.drop_last = 1;
    assert_int_equal(clcnn_batcher_create(ds, &cfg, &x), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_batcher_create(NULL, &cfg, &x), CLCNN_ERR_INVALID_ARG);
    /* shrinking the dataset under a batcher is caught, not read out of bounds */
    clcnn_dataset_limit(ds, 100);
    assert_int_equal(clcnn_batcher_next(a, &batch), CLCNN_ERR_INVALID_ARG);

    clcnn_batcher_free(a);
    clcnn_batcher_free(b);
    clcnn_batcher_free(c);
    clcnn_batcher_free(r);
    clcnn_batcher_free(NULL);
    clcnn_dataset_free(ds);
}

/* Does got equal src (h x w) mirrored (flip) and moved by (dx, dy), background bg? */
static int is_transform(const float *got, const float *src, int h, int w, int flip, int dx, int dy,
                        float bg) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sy = y - dy, sx = (flip ? w - 1 - x : x) - dx;
            float want = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] : bg;
            if (got[y * w + x] != want) return 0;
        }
    return 1;
}

static void test_batcher_augmentation(void **state) {
    (void)state;
    const int n = 400, h = 5, w = 6, shift = 2;
    clcnn_dataset *ds = small_dataset("aug", (uint32_t)n, (uint32_t)h, (uint32_t)w);
    clcnn_batcher_config cfg = clcnn_batcher_config_default();
    cfg.batch_size = 32;
    cfg.shuffle = 0; /* position i holds sample i */
    cfg.seed = 11;
    cfg.flip = 1;
    cfg.shift = shift;
    clcnn_batcher *b = NULL, *b2 = NULL;
    TU_OK(clcnn_batcher_create(ds, &cfg, &b));
    TU_OK(clcnn_batcher_create(ds, &cfg, &b2));
    float *orig = malloc((size_t)h * w * sizeof *orig);
    float bg = (0.0f - CLCNN_FASHION_MNIST_MEAN) / CLCNN_FASHION_MNIST_STD;
    int flips = 0, moved = 0, identity = 0;
    clcnn_batch batch, batch2;
    for (;;) {
        TU_OK(clcnn_batcher_next(b, &batch));
        TU_OK(clcnn_batcher_next(b2, &batch2));
        assert_int_equal(batch.n, batch2.n);
        if (!batch.n) break;
        /* same seed: same augmentation */
        assert_memory_equal(batch.x, batch2.x, batch.n * h * w * sizeof(float));
        for (size_t i = 0; i < batch.n; i++) {
            size_t idx = batch.index * 32 + i;
            TU_OK(clcnn_dataset_gather(ds, &idx, 1, orig, NULL));
            const float *got = batch.x + i * h * w;
            int found = 0;
            for (int f = 0; f < 2 && !found; f++)
                for (int dy = -shift; dy <= shift && !found; dy++)
                    for (int dx = -shift; dx <= shift && !found; dx++)
                        if (is_transform(got, orig, h, w, f, dx, dy, bg)) {
                            found = 1;
                            flips += f;
                            moved += dx || dy;
                            identity += !f && !dx && !dy;
                        }
            if (!found) fail_msg("sample %zu is not a flip/shift of its source", idx);
        }
    }
    /* flip with p = 1/2, identity p = 1/2 * 1/25: loose binomial bounds for n = 400 */
    assert_true(flips > 150 && flips < 250);
    assert_true(moved > 300);
    assert_true(identity < 30);
    /* the augmentation of an epoch is reproduced after a seek (resume) */
    float *first = malloc(32 * (size_t)h * w * sizeof *first);
    TU_OK(clcnn_batcher_seek(b, 3, 2));
    TU_OK(clcnn_batcher_next(b, &batch));
    memcpy(first, batch.x, batch.n * h * w * sizeof(float));
    TU_OK(clcnn_batcher_seek(b2, 3, 2));
    TU_OK(clcnn_batcher_next(b2, &batch2));
    assert_memory_equal(first, batch2.x, batch2.n * h * w * sizeof(float));
    /* ... and differs between epochs */
    TU_OK(clcnn_batcher_seek(b2, 4, 2));
    TU_OK(clcnn_batcher_next(b2, &batch2));
    assert_memory_not_equal(first, batch2.x, batch2.n * h * w * sizeof(float));
    clcnn_batcher_free(b);
    clcnn_batcher_free(b2);
    /* shift must leave some of the image */
    cfg.shift = 5;
    b = (clcnn_batcher *)0x1;
    assert_int_equal(clcnn_batcher_create(ds, &cfg, &b), CLCNN_ERR_INVALID_ARG);
    assert_null(b);
    cfg.shift = -1;
    assert_int_equal(clcnn_batcher_create(ds, &cfg, &b), CLCNN_ERR_INVALID_ARG);
    free(first);
    free(orig);
    clcnn_dataset_free(ds);
}

static int setup(void **state) {
    (void)state;
    tmp = tu_temp_dir("data");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    free(tmp);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_fashion_mnist),
        cmocka_unit_test(test_plain_and_gzip_agree),
        cmocka_unit_test(test_mnist_directory_names),
        cmocka_unit_test(test_first_samples),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_huge_claims_do_not_allocate),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_batcher_visits_each_sample_once),
        cmocka_unit_test(test_batcher_deterministic_and_resumable),
        cmocka_unit_test(test_batcher_augmentation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
