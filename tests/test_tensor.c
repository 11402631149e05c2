/* Tensors: creation and shape bookkeeping, dtype and shape errors, transfers (blocking
 * and async), fill, copy, views sharing storage, the buffer pool's reuse across
 * training-like steps, and out-of-memory reporting. */
#include "test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_create_f32_i32_shapes(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const clcnn_dtype types[] = {CLCNN_F32, CLCNN_I32};
    for (int ti = 0; ti < 2; ti++) {
        for (int nd = 1; nd <= 4; nd++) {
            const size_t shape[4] = {2, 3, 5, 7};
            clcnn_tensor *t = NULL;
            TU_OK(clcnn_tensor_create(dev, types[ti], nd, shape, &t));
            assert_non_null(t);
            assert_int_equal(clcnn_tensor_ndim(t), nd);
            assert_int_equal(clcnn_tensor_dtype(t), types[ti]);
            assert_ptr_equal(clcnn_tensor_device(t), dev);
            assert_non_null(clcnn_tensor_mem(t));
            assert_int_equal(clcnn_tensor_offset(t), 0);
            size_t numel = 1;
            for (int i = 0; i < nd; i++)
                numel *= shape[i];
            assert_int_equal(clcnn_tensor_numel(t), numel);
            const size_t *s = clcnn_tensor_shape(t), *st = clcnn_tensor_strides(t);
            size_t stride = 1; /* row-major (NCHW): the last dim is contiguous */
            for (int i = nd - 1; i >= 0; i--) {
                assert_int_equal(s[i], shape[i]);
                assert_int_equal(clcnn_tensor_dim(t, i), shape[i]);
                assert_int_equal(st[i], stride);
                stride *= shape[i];
            }
            for (int i = nd; i < 4; i++)
                assert_int_equal(clcnn_tensor_dim(t, i), 1);
            char buf[64];
            const char *want[] = {"2", "2x3", "2x3x5", "2x3x5x7"};
            assert_string_equal(clcnn_tensor_shape_str(t, buf, sizeof buf), want[nd - 1]);
            clcnn_tensor_free(t);
        }
    }
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create4(dev, 1, 1, 1, 1, &t));
    assert_int_equal(clcnn_tensor_numel(t), 1);
    assert_int_equal(clcnn_tensor_ndim(t), 4);
    clcnn_tensor_free(t);
    clcnn_tensor_free(NULL); /* no-op */
}

static void test_create_errors(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *t = (clcnn_tensor *)(uintptr_t)1; /* must be reset to NULL on failure */
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 3, (size_t[]){2, 0, 3}, &t),
                     CLCNN_ERR_SHAPE);
    assert_null(t);
    assert_non_null(strstr(clcnn_last_error(), "dim 1 is zero"));
    assert_int_equal(clcnn_tensor_create4(dev, 0, 1, 1, 1, &t), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 5, (size_t[]){1, 1, 1, 1, 1}, &t),
                     CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "5"));
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 0, (size_t[]){1}, &t), CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F16, 1, (size_t[]){4}, &t),
                     CLCNN_ERR_UNSUPPORTED);
    assert_null(t);
    assert_int_equal(clcnn_tensor_create(dev, (clcnn_dtype)9, 1, (size_t[]){4}, &t),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 1, NULL, &t), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){4}, NULL),
                     CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_tensor_create(NULL, CLCNN_F32, 1, (size_t[]){4}, &t),
                     CLCNN_ERR_INVALID_ARG);
    /* numel * 4 overflowing size_t is a shape error, not a wrapped-around small buffer */
    assert_int_equal(clcnn_tensor_create(dev, CLCNN_F32, 2, (size_t[]){SIZE_MAX / 8, 4}, &t),
                     CLCNN_ERR_SHAPE);
    assert_null(t);
}

static void test_upload_download_round_trip(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(501);
    clcnn_device *dev = tu_device();
    const size_t sizes[] = {1, 3, 4, 1000, 65537};
    for (size_t k = 0; k < 5; k++) {
        size_t n = sizes[k];
        float *src = malloc(n * sizeof *src), *dst = calloc(n, sizeof *dst);
        int32_t *isrc = malloc(n * sizeof *isrc), *idst = calloc(n, sizeof *idst);
        tu_fill_uniform(&r, src, n, -1e6f, 1e6f);
        for (size_t i = 0; i < n; i++)
            isrc[i] = (int32_t)tu_rng_next(&r);
        clcnn_tensor *t = NULL, *ti = NULL;
        TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, &n, &t));
        TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 1, &n, &ti));
        /* blocking */
        TU_OK(clcnn_tensor_upload(t, src, n * sizeof *src));
        TU_OK(clcnn_tensor_download(t, dst, n * sizeof *dst));
        assert_memory_equal(src, dst, n * sizeof *src);
        TU_OK(clcnn_tensor_upload(ti, isrc, n * sizeof *isrc));
        TU_OK(clcnn_tensor_download(ti, idst, n * sizeof *idst));
        assert_memory_equal(isrc, idst, n * sizeof *isrc);
        /* async: both return at once; the data is there after clcnn_device_finish */
        for (size_t i = 0; i < n; i++)
            src[i] = -src[i];
        memset(dst, 0, n * sizeof *dst);
        TU_OK(clcnn_tensor_upload_async(t, src, n * sizeof *src));
        TU_OK(clcnn_tensor_download_async(t, dst, n * sizeof *dst));
        TU_OK(clcnn_device_finish(dev));
        assert_memory_equal(src, dst, n * sizeof *src);
        free(src), free(dst), free(isrc), free(idst);
        clcnn_tensor_free(t);
        clcnn_tensor_free(ti);
    }
}

/* A byte count other than numel * element size is rejected before anything moves. */
static void test_wrong_byte_counts(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_tensor *t = tu_tensor_from(2, (size_t[]){3, 4}, NULL);
    TU_OK(clcnn_tensor_fill(t, 2.0f));
    float host[13];
    for (int i = 0; i < 13; i++)
        host[i] = -1.0f;
    const size_t bad[] = {0, 11 * sizeof(float), 13 * sizeof(float), 12 * sizeof(float) - 1};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(clcnn_tensor_upload(t, host, bad[k]), CLCNN_ERR_SHAPE);
        assert_non_null(strstr(clcnn_last_error(), "3x4"));
        assert_int_equal(clcnn_tensor_upload_async(t, host, bad[k]), CLCNN_ERR_SHAPE);
        assert_int_equal(clcnn_tensor_download(t, host, bad[k]), CLCNN_ERR_SHAPE);
        assert_int_equal(clcnn_tensor_download_async(t, host, bad[k]), CLCNN_ERR_SHAPE);
    }
    assert_int_equal(clcnn_tensor_upload(t, NULL, 12 * sizeof(float)), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_tensor_download(NULL, host, 12 * sizeof(float)), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_device_finish(dev));
    for (int i = 0; i < 13; i++)
        assert_true(host[i] == -1.0f); /* host untouched */
    TU_OK(clcnn_tensor_download(t, host, 12 * sizeof(float)));
    for (int i = 0; i < 12; i++)
        assert_true(host[i] == 2.0f); /* device untouched */
    assert_true(host[12] == -1.0f);
    clcnn_tensor_free(t);
}

static void test_fill(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const size_t n = 1001;
    clcnn_tensor *t = NULL, *ti = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, &n, &t));
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 1, &n, &ti));
    TU_OK(clcnn_tensor_fill(t, -2.5f));
    TU_OK(clcnn_tensor_fill(ti, 7.0f));
    float *h = tu_download(t);
    int32_t *hi = malloc(n * sizeof *hi);
    TU_OK(clcnn_tensor_download(ti, hi, n * sizeof *hi));
    for (size_t i = 0; i < n; i++) {
        assert_true(h[i] == -2.5f);
        assert_int_equal(hi[i], 7);
    }
    TU_OK(clcnn_tensor_fill(ti, -3.0f));
    TU_OK(clcnn_tensor_download(ti, hi, n * sizeof *hi));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hi[i], -3);
    assert_int_equal(clcnn_tensor_fill(NULL, 1.0f), CLCNN_ERR_INVALID_ARG);
    free(h);
    free(hi);
    clcnn_tensor_free(t);
    clcnn_tensor_free(ti);
}

static void test_copy(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(502);
    clcnn_device *dev = tu_device();
    float src[24];
    tu_fill_uniform(&r, src, 24, -1, 1);
    clcnn_tensor *a = tu_tensor_from(3, (size_t[]){2, 3, 4}, src);
    clcnn_tensor *b = tu_tensor_from(2, (size_t[]){4, 6}, NULL); /* same numel */
    clcnn_tensor *c = tu_tensor_from(2, (size_t[]){5, 5}, NULL);
    clcnn_tensor *ci = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 3, (size_t[]){2, 3, 4}, &ci));
    TU_OK(clcnn_tensor_copy(b, a));
    float *h = tu_download(b);
    assert_memory_equal(h, src, sizeof src);
    free(h);
    TU_OK(clcnn_tensor_fill(c, 4.0f));
    TU_OK(clcnn_tensor_fill(ci, 4.0f));
    assert_int_equal(clcnn_tensor_copy(c, a), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3x4"));
    assert_non_null(strstr(clcnn_last_error(), "5x5"));
    assert_int_equal(clcnn_tensor_copy(ci, a), CLCNN_ERR_INVALID_ARG); /* dtype */
    assert_non_null(strstr(clcnn_last_error(), "int32"));
    assert_int_equal(clcnn_tensor_copy(NULL, a), CLCNN_ERR_INVALID_ARG);
    TU_OK(clcnn_tensor_copy(a, a)); /* to itself: nothing to do */
    h = tu_download(c);
    for (int i = 0; i < 25; i++)
        assert_true(h[i] == 4.0f);
    free(h);
    h = tu_download(a);
    assert_memory_equal(h, src, sizeof src);
    free(h);
    clcnn_tensor_free(a);
    clcnn_tensor_free(b);
    clcnn_tensor_free(c);
    clcnn_tensor_free(ci);
}

/* A view is another shape over the same storage: no copy, writes through either are
 * seen through the other, and the storage lives until the last of them is freed. */
static void test_views(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    float src[24], back[24];
    for (int i = 0; i < 24; i++)
        src[i] = (float)i;
    clcnn_pool_stats before, after;
    clcnn_tensor *base = tu_tensor_from(4, (size_t[]){2, 3, 2, 2}, NULL);
    clcnn_device_pool_stats(dev, &before);
    clcnn_tensor *v = NULL, *vv = NULL;
    TU_OK(clcnn_tensor_view(base, 2, (size_t[]){6, 4}, &v));
    TU_OK(clcnn_tensor_view(v, 1, (size_t[]){24}, &vv)); /* a view of a view */
    clcnn_device_pool_stats(dev, &after);
    assert_int_equal(after.buffers_created, before.buffers_created); /* no new buffer */
    assert_int_equal(after.bytes_in_use, before.bytes_in_use);
    assert_ptr_equal(clcnn_tensor_mem(v), clcnn_tensor_mem(base));
    assert_int_equal(clcnn_tensor_ndim(v), 2);
    assert_int_equal(clcnn_tensor_strides(v)[0], 4);
    assert_int_equal(clcnn_tensor_numel(vv), 24);

    TU_OK(clcnn_tensor_upload(base, src, sizeof src));  /* write through the base */
    TU_OK(clcnn_tensor_download(v, back, sizeof back)); /* read through the view */
    assert_memory_equal(back, src, sizeof src);
    TU_OK(clcnn_tensor_fill(vv, 3.0f)); /* write through a view, read the base */
    TU_OK(clcnn_tensor_download(base, back, sizeof back));
    for (int i = 0; i < 24; i++)
        assert_true(back[i] == 3.0f);

    clcnn_tensor *bad = NULL;
    assert_int_equal(clcnn_tensor_view(base, 2, (size_t[]){5, 5}, &bad), CLCNN_ERR_SHAPE);
    assert_non_null(strstr(clcnn_last_error(), "2x3x2x2"));
    assert_null(bad);
    assert_int_equal(clcnn_tensor_view(base, 5, (size_t[]){1, 1, 24, 1, 1}, &bad), CLCNN_ERR_SHAPE);

    /* Free the base first: the views keep the storage alive and usable. */
    clcnn_tensor_free(base);
    TU_OK(clcnn_tensor_upload(v, src, sizeof src));
    TU_OK(clcnn_tensor_download(vv, back, sizeof back));
    assert_memory_equal(back, src, sizeof src);
    clcnn_device_pool_stats(dev, &after);
    assert_int_equal(after.bytes_in_use, before.bytes_in_use); /* still held */
    clcnn_tensor_free(v);
    clcnn_tensor_free(vv);
    clcnn_device_pool_stats(dev, &after);
    assert_true(after.bytes_in_use < before.bytes_in_use); /* back in the pool now */
}

/* A training-like loop: after one warm-up step, creating and freeing the same set of
 * tensors (activations, gradients, a batch) creates no new cl_mem. */
static void test_pool_reuses_buffers(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const size_t shapes[][4] = {{64, 1, 28, 28}, {64, 16, 26, 26}, {64, 16, 13, 13}, {64, 10, 1, 1},
                                {16, 1, 3, 3},   {16, 1, 1, 1},    {64, 16, 26, 26}, {1, 1, 1, 3}};
    const int nt = (int)(sizeof shapes / sizeof *shapes);
    clcnn_pool_stats warm, now;
    for (int step = 0; step < 12; step++) {
        clcnn_tensor *ts[8];
        for (int i = 0; i < nt; i++) {
            const size_t *s = shapes[i];
            TU_OK(clcnn_tensor_create4(dev, s[0], s[1], s[2], s[3], &ts[i]));
        }
        clcnn_tensor *labels = NULL;
        TU_OK(clcnn_tensor_create(dev, CLCNN_I32, 1, (size_t[]){64}, &labels));
        for (int i = nt - 1; i >= 0; i -= 2)
            clcnn_tensor_free(ts[i]); /* free in a */
        for (int i = nt - 2; i >= 0; i -= 2)
            clcnn_tensor_free(ts[i]); /* mixed order */
        clcnn_tensor_free(labels);
        if (step == 0) clcnn_device_pool_stats(dev, &warm);
    }
    clcnn_device_pool_stats(dev, &now);
    assert_int_equal(now.buffers_created, warm.buffers_created);
    assert_true(now.buffers_reused >= warm.buffers_reused + 11 * (size_t)(nt + 1));
    assert_int_equal(now.bytes_in_use, warm.bytes_in_use);
    assert_true(now.bytes_cached > 0);
    clcnn_device_pool_trim(dev);
    clcnn_device_pool_stats(dev, &now);
    assert_int_equal(now.bytes_cached, 0);
}

/* More than the device's largest allocation: CLCNN_ERR_OUT_OF_MEMORY whose message names
 * the size, no crash, no tensor. */
static void test_out_of_memory(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    uint64_t max_alloc = clcnn_device_get_info(dev)->max_alloc_bytes;
    assert_true(max_alloc > 0);
    size_t n = (size_t)(max_alloc / 4) + 1024;
    clcnn_tensor *t = (clcnn_tensor *)(uintptr_t)1;
    clcnn_status s = clcnn_tensor_create(dev, CLCNN_F32, 2, (size_t[]){n / 16, 16}, &t);
    assert_int_equal(s, CLCNN_ERR_OUT_OF_MEMORY);
    assert_null(t);
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%zu bytes", n / 16 * 16 * 4);
    if (!strstr(clcnn_last_error(), bytes))
        fail_msg("message '%s' does not name the size '%s'", clcnn_last_error(), bytes);
    /* numel * 4 just below SIZE_MAX: rounding up to the pool's alignment must not wrap
     * around to a tiny buffer. */
    s = clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){SIZE_MAX / 4}, &t);
    assert_int_equal(s, CLCNN_ERR_OUT_OF_MEMORY);
    assert_null(t);
    /* The device still works afterwards. */
    clcnn_tensor *ok = tu_tensor_from(1, (size_t[]){8}, NULL);
    TU_OK(clcnn_tensor_fill(ok, 1.0f));
    TU_OK(clcnn_device_finish(dev));
    clcnn_tensor_free(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_f32_i32_shapes),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_upload_download_round_trip),
        cmocka_unit_test(test_wrong_byte_counts),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_pool_reuses_buffers),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, tu_teardown_device);
}
