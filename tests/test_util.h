/* Helpers every test uses: the test device, seeded random data, and the one
 * comparison helper |got - ref| <= atol + rtol * |ref| that prints the shape, the first
 * values, the worst element and the max difference on failure. */
#ifndef CLCNN_TEST_UTIL_H
#define CLCNN_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
/* cmocka needs these first */
#include <cmocka.h>

#include "clcnn/clcnn.h"

/* The device tests run on: $CLCNN_TEST_DEVICE, else the library default (POCL's CPU
 * device on CI). Opened once per process; closed by tu_close_device(). */
clcnn_device *tu_device(void);
void tu_close_device(void);
/* cmocka group fixtures: open the test device (the group fails when none opens), close it. */
int tu_setup_device(void **state);
int tu_teardown_device(void **state);
/* Another handle on the test device (its own program cache, kernels first launched anew);
 * close it with clcnn_device_close. */
clcnn_device *tu_device_fresh(void);
/* Another handle on the test device's device, opened with $CLCNN_CPU_VECTOR_WIDTH=width:
 * its choices are those of a CPU with that native float width (lib/device.c); the variable
 * is as it was afterwards. Close it with clcnn_device_close. */
clcnn_device *tu_device_with_width(const char *width);

/* Small-shape mode ($CLCNN_TEST_SMALL=1, set by tests/oclgrind/run.sh for a simulated
 * device that runs 100-1000x slower): sweeps keep their tail cases (odd sizes, one tile
 * plus a remainder, batch 1) and drop the large shapes and long random runs.
 * tu_small_count(full, small) is the number of cases to run. */
int tu_small(void);
size_t tu_small_count(size_t full, size_t small);
/* $CLCNN_TEST_ONLY (a comma-separated list of test function names): every test binary
 * runs only those of its tests (tests/oclgrind/tests.txt picks what a simulator has time
 * for); unset or empty: all. A name that is no test of the binary fails it (exit 1).
 * cmocka_run_group_tests goes through this filter. */
int tu_run_group_tests(const char *group, const struct CMUnitTest *tests, size_t count,
                       CMFixtureFunction setup, CMFixtureFunction teardown);
#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group_tests, group_setup, group_teardown)                           \
    tu_run_group_tests(#group_tests, group_tests, sizeof(group_tests) / sizeof((group_tests)[0]),  \
                       group_setup, group_teardown)

/* In small mode, skip the current cmocka test (one of only large shapes); else nothing. */
#define TU_SKIP_IF_SMALL()                                                                         \
    do {                                                                                           \
        if (tu_small()) skip();                                                                    \
    } while (0)

/* Fail the test with the library's message when s is not CLCNN_OK. */
#define TU_OK(expr)                                                                                \
    do {                                                                                           \
        clcnn_status tu_s_ = (expr);                                                               \
        if (tu_s_ != CLCNN_OK)                                                                     \
            fail_msg("%s -> %s: %s", #expr, clcnn_status_str(tu_s_), clcnn_last_error());          \
    } while (0)

/* Deterministic RNG (xorshift64*), independent of libc. */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
tu_rng tu_rng_seed(uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
int tu_rng_int(tu_rng *r, int lo, int hi); /* inclusive */
float tu_rng_uniform(tu_rng *r, float lo, float hi);
void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi);

/* A new device tensor with the given shape holding `data` (float32). */
clcnn_tensor *tu_tensor_from(int ndim, const size_t *shape, const float *data);
/* A new uninitialised tensor of any dtype on the test device (fails the test on error). */
clcnn_tensor *tu_tensor_new(clcnn_dtype dtype, int ndim, const size_t *shape);
/* Download a float32 tensor into a malloc'd array. */
float *tu_download(const clcnn_tensor *t);

/* Compare got (float) with ref (double): returns 1 when every element is within
 * atol + rtol*|ref|; otherwise prints what/the shape description, the worst element
 * and the max difference, and returns 0. */
int tu_close(const char *what, const float *got, const double *ref, size_t n, double atol,
             double rtol);
/* Normalised MSE: sum((got-ref)^2) / sum(ref^2) (or / n when ref is all zero). */
double tu_nmse(const float *got, const double *ref, size_t n);

/* Graph error tests: clcnn_graph_check (plan_batch 0) or clcnn_plan_create at plan_batch
 * fails with want and a message naming the node 'mv' and holding needle; frees g. */
void tu_expect_graph_error(clcnn_graph *g, int plan_batch, clcnn_status want, const char *needle);
/* Add a float initializer `name` of the given shape to g, filled with uniform values in
 * [lo, hi] from r; returns those values (malloc'd; the caller frees). */
float *tu_graph_random_init(clcnn_graph *g, tu_rng *r, const char *name, int ndim,
                            const int64_t *dims, float lo, float hi);

/* A fresh empty directory under the build tree (or /tmp); caller frees. */
char *tu_temp_dir(const char *tag);
/* Remove a tu_temp_dir directory with the files in it (not subdirectories, which fail the
 * test) and free dir. */
void tu_remove_dir(char *dir);
/* A private tuning-file directory for tests that write tuning files: a fresh directory
 * that becomes $CLCNN_TUNE_DIR (the programs stay in the shared test cache, where the
 * other tests see them as they are built). tu_tune_dir_end removes the directory, unsets
 * the variable and closes the test device. Returns the directory (owned here). */
const char *tu_tune_dir_begin(const char *tag);
void tu_tune_dir_end(void);
/* The whole of dir/name, NUL-terminated (malloc'd; caller frees); NULL when unreadable. */
char *tu_slurp(const char *dir, const char *name);
/* $CLCNN_TRACE_KERNELS for a stretch of a test: tu_trace_begin(dir) points it at
 * dir/kernels.txt, emptied (every device then appends "file kernel DEFINES..." the first
 * time it launches a kernel); tu_trace_end(dir) unsets it and returns what was traced
 * (tu_slurp: malloc'd, NULL when nothing was). */
void tu_trace_begin(const char *dir);
char *tu_trace_end(const char *dir);
/* Sets (value non-NULL) or clears the environment variable name; returns a malloc'd copy
 * of its old value (NULL when unset) for tu_env_restore, which puts that back and frees
 * it. */
char *tu_env_set(const char *name, const char *value);
void tu_env_restore(const char *name, char *keep);
/* Fails the test unless s is want with an error message holding needle. */
void tu_expect_status(clcnn_status s, clcnn_status want, const char *needle);
/* Fails the test unless every element of t is v (t NULL: nothing to check): what a call
 * that failed must have left as it was. */
void tu_expect_untouched(const clcnn_tensor *t, float v);

/* Graph node attributes (clcnn_attr) as compound literals: INTS("pads", 1, 1, 1, 1). */
#define INTS(n_, ...)                                                                              \
    ((clcnn_attr){(n_), CLCNN_ATTR_INTS, 0, 0.0f, (const int64_t[]){__VA_ARGS__}, NULL,            \
                  sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t), NULL})
#define INT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_INT, (v_), 0.0f, NULL, NULL, 0, NULL})
#define FLOAT(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_FLOAT, 0, (v_), NULL, NULL, 0, NULL})
#define STR(n_, v_) ((clcnn_attr){(n_), CLCNN_ATTR_STRING, 0, 0.0f, NULL, NULL, 0, (v_)})

#endif
