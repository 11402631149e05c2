#include "test_util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static clcnn_device *test_dev;

/* A new handle on the test device ($CLCNN_TEST_DEVICE, else the default): the status. */
static clcnn_status open_test_device(clcnn_device **out) {
    const char *sel = getenv("CLCNN_TEST_DEVICE");
    return clcnn_device_open(sel && *sel ? sel : NULL, out);
}

clcnn_device *tu_device(void) {
    if (!test_dev) {
        clcnn_status s = open_test_device(&test_dev);
        if (s != CLCNN_OK) {
            fprintf(stderr, "cannot open test device: %s: %s\n", clcnn_status_str(s),
                    clcnn_last_error());
            return NULL;
        }
    }
    return test_dev;
}

int tu_setup_device(void **state) {
    (void)state;
    return tu_device() ? 0 : -1;
}

int tu_teardown_device(void **state) {
    (void)state;
    tu_close_device();
    return 0;
}

clcnn_device *tu_device_fresh(void) {
    clcnn_device *dev = NULL;
    TU_OK(open_test_device(&dev));
    return dev;
}

char *tu_env_set(const char *name, const char *value) {
    const char *old = getenv(name);
    char *keep = old ? strdup(old) : NULL;
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return keep;
}

void tu_env_restore(const char *name, char *keep) {
    if (keep)
        setenv(name, keep, 1);
    else
        unsetenv(name);
    free(keep);
}

void tu_expect_status(clcnn_status s, clcnn_status want, const char *needle) {
    if (s != want || !strstr(clcnn_last_error(), needle))
        fail_msg("got %s '%s', want %s containing '%s'", clcnn_status_str(s), clcnn_last_error(),
                 clcnn_status_str(want), needle);
}

void tu_expect_untouched(const clcnn_tensor *t, float v) {
    if (!t) return;
    float *h = tu_download(t);
    for (size_t i = 0; i < clcnn_tensor_numel(t); i++)
        if (h[i] != v) fail_msg("element %zu = %g was written by a failing call", i, h[i]);
    free(h);
}

clcnn_device *tu_device_with_width(const char *width) {
    char *saved = tu_env_set("CLCNN_CPU_VECTOR_WIDTH", width);
    clcnn_device *dev = NULL;
    clcnn_status s = open_test_device(&dev);
    tu_env_restore("CLCNN_CPU_VECTOR_WIDTH", saved);
    TU_OK(s);
    return dev;
}

void tu_close_device(void) {
    clcnn_device_close(test_dev);
    test_dev = NULL;
}

int tu_small(void) {
    const char *v = getenv("CLCNN_TEST_SMALL");
    return v && *v && strcmp(v, "0") != 0;
}

size_t tu_small_count(size_t full, size_t small) {
    return tu_small() && small < full ? small : full;
}

/* Whether name is one of the comma-separated names in list. */
static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) return 1;
        p += len;
        p += *p == ',';
    }
    return 0;
}

int tu_run_group_tests(const char *group, const struct CMUnitTest *tests, size_t count,
                       CMFixtureFunction setup, CMFixtureFunction teardown) {
    const char *only = getenv("CLCNN_TEST_ONLY");
    if (!only || !*only) return _cmocka_run_group_tests(group, tests, count, setup, teardown);
    struct CMUnitTest *keep = malloc((count ? count : 1) * sizeof *keep);
    if (!keep) return 1;
    size_t n = 0, named = 1;
    for (size_t i = 0; i < count; i++)
        if (in_list(only, tests[i].name)) keep[n++] = tests[i];
    for (const char *c = only; *c; c++)
        named += *c == ',';
    int rc = 1;
    if (n != named) /* a name that is no test here: a typo or a renamed test */
        fprintf(stderr, "%s: CLCNN_TEST_ONLY=%s names %zu tests, %zu of them here\n", group, only,
                named, n);
    else
        rc = _cmocka_run_group_tests(group, keep, n, setup, teardown);
    free(keep);
    return rc;
}

tu_rng tu_rng_seed(uint64_t seed) {
    tu_rng r = {seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL};
    if (!r.s) r.s = 1;
    return r;
}

uint64_t tu_rng_next(tu_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

int tu_rng_int(tu_rng *r, int lo, int hi) {
    return lo + (int)(tu_rng_next(r) % (uint64_t)(hi - lo + 1));
}

float tu_rng_uniform(tu_rng *r, float lo, float hi) {
    double u = (double)(tu_rng_next(r) >> 11) / 9007199254740992.0;
    return lo + (float)(u * (hi - lo));
}

void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = tu_rng_uniform(r, lo, hi);
}

clcnn_tensor *tu_tensor_from(int ndim, const size_t *shape, const float *data) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_F32, ndim, shape, &t));
    if (data) TU_OK(clcnn_tensor_upload(t, data, clcnn_tensor_numel(t) * sizeof(float)));
    return t;
}

clcnn_tensor *tu_tensor_new(clcnn_dtype dtype, int ndim, const size_t *shape) {
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(tu_device(), dtype, ndim, shape, &t));
    return t;
}

float *tu_download(const clcnn_tensor *t) {
    size_t n = clcnn_tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    assert_non_null(h);
    TU_OK(clcnn_tensor_download(t, h, n * sizeof *h));
    return h;
}

int tu_close(const char *what, const float *got, const double *ref, size_t n, double atol,
             double rtol) {
    size_t worst = 0, bad = 0;
    double worst_excess = -1, max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (isnan(got[i]) != isnan(ref[i])) d = INFINITY;
        double excess = d - (atol + rtol * fabs(ref[i]));
        if (d > max_diff) max_diff = d;
        if (excess > 0) bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad == 0) return 1;
    fprintf(stderr, "MISMATCH %s: %zu of %zu elements outside atol=%g rtol=%g, max |diff| %g\n",
            what, bad, n, atol, rtol, max_diff);
    fprintf(stderr, "  worst at [%zu]: got %.9g ref %.9g\n", worst, got[worst], ref[worst]);
    fprintf(stderr, "  first values:");
    for (size_t i = 0; i < n && i < 6; i++)
        fprintf(stderr, " %.6g/%.6g", got[i], ref[i]);
    fprintf(stderr, "\n");
    return 0;
}

double tu_nmse(const float *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : num / (double)(n ? n : 1);
}

char *tu_temp_dir(const char *tag) {
    char tmpl[4096];
    const char *base = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/clcnn-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

void tu_remove_dir(char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

char *tu_slurp(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    if (buf) buf[got] = '\0';
    fclose(f);
    return buf;
}

void tu_trace_begin(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/kernels.txt", dir);
    remove(path);
    setenv("CLCNN_TRACE_KERNELS", path, 1);
}

char *tu_trace_end(const char *dir) {
    unsetenv("CLCNN_TRACE_KERNELS");
    return tu_slurp(dir, "kernels.txt");
}

float *tu_graph_random_init(clcnn_graph *g, tu_rng *r, const char *name, int ndim,
                            const int64_t *dims, float lo, float hi) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)dims[i];
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    tu_fill_uniform(r, v, n, lo, hi);
    TU_OK(clcnn_graph_add_initializer(g, name, CLCNN_F32, ndim, dims, v));
    return v;
}

void tu_expect_graph_error(clcnn_graph *g, int plan_batch, clcnn_status want, const char *needle) {
    clcnn_plan *p = NULL;
    clcnn_status s =
        plan_batch ? clcnn_plan_create(tu_device(), g, plan_batch, NULL, &p) : clcnn_graph_check(g);
    if (s != want)
        fail_msg("'%s': gave %d (%s), want %d", needle, (int)s, clcnn_last_error(), (int)want);
    if (!strstr(clcnn_last_error(), "'mv'") || !strstr(clcnn_last_error(), needle))
        fail_msg("message '%s' lacks 'mv' or '%s'", clcnn_last_error(), needle);
    assert_null(p);
    clcnn_graph_free(g);
}

/* ---- a private tuning-file directory -------------------------------------------------- */

static char *private_dir;

const char *tu_tune_dir_begin(const char *tag) {
    private_dir = tu_temp_dir(tag);
    setenv("CLCNN_TUNE_DIR", private_dir, 1);
    return private_dir;
}

void tu_tune_dir_end(void) {
    if (!private_dir) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", private_dir, private_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", private_dir);
    free(private_dir);
    private_dir = NULL;
    unsetenv("CLCNN_TUNE_DIR");
    tu_close_device();
}
