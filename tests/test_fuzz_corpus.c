/* Replays every committed fuzz input (every file of tests/fuzz/corpus/<harness>/) through the same
 * harness code the fuzzers run (tests/fuzz/fuzz_*.c, included here with their entry
 * points renamed), with the harnesses' checks turned into cmocka assertions. So every
 * crash a fuzzer ever found, once its input is copied into the corpus, is a regression
 * test of the normal suite (`make test`) and of the sanitizer suite (`make test-sanitize`,
 * where ASan/UBSan/LSan watch the replay), without clang or libFuzzer.
 *
 * Inputs kept as regression cases for bugs found by fuzzing:
 *   corpus/image/p5-huge.pgm   19-byte P5 header declaring 16384x16384: the reader
 *                              allocated 1 GiB before checking the data (fixed in
 *                              tools/clcnn/image.c)
 *   corpus/image/huge-idat.png 96-byte PNG declaring 16384x16384: 1.25 GiB allocated
 *                              before libpng read a row (fixed: bounded by the file size
 *                              times deflate's maximum ratio)
 *   corpus/onnx/empty-string-attr.onnx   a string attribute without bytes: memcpy from NULL
 *                              (UBSan; fixed in lib/graph/onnx_import.c)
 *   corpus/onnx/huge-dims-no-data.onnx   an initializer declaring 2 x 4294967293 elements
 *                              with no data: 34 GB allocated before the data size was checked
 *                              (fixed: lib/graph/onnx_tensor.c checks first)
 *   corpus/onnx/fold-overflow.onnx   constants folded on the host out of range: a float
 *                              1e30 cast to int64 (found by fuzz_onnx in CI, UBSan
 *                              float-cast-overflow), int64 Add/Sub/Mul/Div overflow, a Slice
 *                              step of INT64_MAX (fixed in lib/graph/onnx_fold.c: casts
 *                              saturate, overflowing arithmetic is not folded, steps clamp;
 *                              made by tests/fuzz/make_onnx_seeds.py) */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUZZ_CHECK(cond) assert_true(cond)

#define LLVMFuzzerInitialize fuzz_idx_init
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz/fuzz_idx.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerInitialize fuzz_safetensors_init
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_selector_one
#include "fuzz/fuzz_selector.c"
#undef LLVMFuzzerTestOneInput

#include "../tools/clcnn/image.c" /* the reader fuzz_image tests, part of the clcnn command */
#include "../tools/clcnn/preprocess.c"

#define LLVMFuzzerInitialize fuzz_image_init
#define LLVMFuzzerTestOneInput fuzz_image_one
#include "fuzz/fuzz_image.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerInitialize fuzz_tune_init
#define LLVMFuzzerTestOneInput fuzz_tune_one
#include "fuzz/fuzz_tune.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_onnx_one
#include "fuzz/fuzz_onnx.c"
#undef LLVMFuzzerTestOneInput

typedef int (*one_fn)(const uint8_t *, size_t);

/* Run every file of corpus/<name> through fn; returns how many there were. */
static int replay(const char *name, one_fn fn) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", CLCNN_SOURCE_DIR, name);
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open the seed corpus %s", dir);
    int count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        struct stat st;
        assert_int_equal(fstat(fileno(f), &st), 0);
        size_t n = (size_t)st.st_size;
        uint8_t *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, n, f), n);
        fclose(f);
        fn(buf, n);
        free(buf);
        count++;
    }
    closedir(d);
    printf("replayed %d inputs of corpus/%s\n", count, name);
    return count;
}

static void test_idx_corpus(void **state) {
    (void)state;
    fuzz_idx_init(NULL, NULL);
    assert_true(replay("idx", fuzz_idx_one) >= 5);
}

static void test_safetensors_corpus(void **state) {
    (void)state;
    fuzz_safetensors_init(NULL, NULL);
    assert_true(replay("safetensors", fuzz_safetensors_one) >= 5);
    st_cleanup();
}

static void test_selector_corpus(void **state) {
    (void)state;
    assert_true(replay("selector", fuzz_selector_one) >= 5);
}

static void test_image_corpus(void **state) {
    (void)state;
    fuzz_image_init(NULL, NULL);
    assert_true(replay("image", fuzz_image_one) >= 20);
}

static void test_tune_corpus(void **state) {
    (void)state;
    fuzz_tune_init(NULL, NULL);
    assert_true(replay("tune", fuzz_tune_one) >= 5);
}

static void test_onnx_corpus(void **state) {
    (void)state;
    assert_true(replay("onnx", fuzz_onnx_one) >= 4);
}

/* The regression input of the PGM allocation bug fails fast, as a format error. */
static void test_pgm_header_does_not_allocate(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/image/p5-huge.pgm", CLCNN_SOURCE_DIR);
    image img;
    assert_int_equal(image_read_gray(path, &img), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "truncated PGM"));
}

/* The PNG version: a header that a file of this size cannot back is refused up front. */
static void test_png_header_does_not_allocate(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/image/huge-idat.png", CLCNN_SOURCE_DIR);
    image img;
    assert_int_equal(image_read_gray(path, &img), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "cannot be in a 96-byte file"));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_corpus),
        cmocka_unit_test(test_safetensors_corpus),
        cmocka_unit_test(test_selector_corpus),
        cmocka_unit_test(test_image_corpus),
        cmocka_unit_test(test_tune_corpus),
        cmocka_unit_test(test_onnx_corpus),
        cmocka_unit_test(test_pgm_header_does_not_allocate),
        cmocka_unit_test(test_png_header_does_not_allocate),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fuzz_temp_cleanup();
    return rc;
}
