/* Status codes: every code has its own text; the detail message is per thread. */
#include "test_util.h"

#include <pthread.h>
#include <string.h>

#include "internal.h"

static void test_every_code_has_text(void **state) {
    (void)state;
#define CHECK_(name, value, text)                                                                  \
    assert_string_equal(clcnn_status_str(CLCNN_##name), text);                                     \
    assert_true(CLCNN_##name <= 0);
    CLCNN_STATUS_MAP(CHECK_)
#undef CHECK_
    assert_string_equal(clcnn_status_str((clcnn_status)12345), "unknown status");
}

static void *other_thread(void *arg) {
    (void)arg;
    cc_fail(CLCNN_ERR_IO, "from the other thread");
    return NULL;
}

static void test_message_is_thread_local(void **state) {
    (void)state;
    clcnn_clear_error();
    assert_int_equal(cc_fail(CLCNN_ERR_SHAPE, "shape %dx%d", 2, 3), CLCNN_ERR_SHAPE);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    pthread_join(t, NULL);
    assert_string_equal(clcnn_last_error(), "shape 2x3");
    cc_fail_append(CLCNN_ERR_SHAPE, " (more)");
    assert_string_equal(clcnn_last_error(), "shape 2x3 (more)");
    clcnn_clear_error();
    assert_string_equal(clcnn_last_error(), "");
}

static void test_long_message_is_truncated_not_overflowed(void **state) {
    (void)state;
    char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cc_fail(CLCNN_ERR_BUILD, "%s", big);
    cc_fail_append(CLCNN_ERR_BUILD, "%s", big);
    assert_true(strlen(clcnn_last_error()) < sizeof big);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text),
        cmocka_unit_test(test_message_is_thread_local),
        cmocka_unit_test(test_long_message_is_truncated_not_overflowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
