/* Device discovery and selection: every selector form, $CLCNN_DEVICE, the messages of
 * failed selections, the facts reported per device, the -cl-std choice, and the
 * `clcnn devices` command (table, --json, no device -> exit 1).
 *
 * Written for any machine: where a test depends on which devices exist (is there a
 * GPU?), it asks clcnn_device_list and checks the matching outcome. */
#include "test_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "program_disk.h"

static clcnn_device_info infos[64];
static size_t ninfos;

/* Save/restore one environment variable around a test. */
typedef struct saved_env {
    const char *name;
    char *value; /* NULL: was unset */
} saved_env;

static saved_env env_save(const char *name) {
    const char *v = getenv(name);
    saved_env e = {name, v ? strdup(v) : NULL};
    return e;
}

static void env_restore(saved_env *e) {
    if (e->value)
        setenv(e->name, e->value, 1);
    else
        unsetenv(e->name);
    free(e->value);
    e->value = NULL;
}

static int setup_list(void **state) {
    (void)state;
    clcnn_status s = clcnn_device_list(infos, 64, &ninfos);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn_device_list: %s: %s\n", clcnn_status_str(s), clcnn_last_error());
        return -1;
    }
    return ninfos > 0 ? 0 : -1;
}

static int first_of_type(clcnn_device_type t) {
    for (size_t i = 0; i < ninfos; i++)
        if (infos[i].type == t) return (int)i;
    return -1;
}

/* Open with a selector and return the index opened, or fail the test. */
static int open_index(const char *sel) {
    clcnn_device *dev = NULL;
    clcnn_status s = clcnn_device_open(sel, &dev);
    if (s != CLCNN_OK)
        fail_msg("clcnn_device_open(%s) -> %s: %s", sel ? sel : "NULL", clcnn_status_str(s),
                 clcnn_last_error());
    int i = clcnn_device_get_info(dev)->index;
    clcnn_device_close(dev);
    return i;
}

/* The selector must fail with CLCNN_ERR_NO_DEVICE, write NULL, and list every device. */
static void expect_no_match(const char *sel, const char *must_mention) {
    clcnn_device *dev = (clcnn_device *)&dev; /* not NULL: must be overwritten */
    clcnn_clear_error();
    assert_int_equal(clcnn_device_open(sel, &dev), CLCNN_ERR_NO_DEVICE);
    assert_null(dev);
    const char *msg = clcnn_last_error();
    if (must_mention && !strstr(msg, must_mention))
        fail_msg("message does not mention '%s': %s", must_mention, msg);
    for (size_t i = 0; i < ninfos; i++)
        if (!strstr(msg, infos[i].name))
            fail_msg("message does not list device %zu (%s): %s", i, infos[i].name, msg);
}

static void test_list_is_sane(void **state) {
    (void)state;
    size_t n = 0;
    TU_OK(clcnn_device_list(NULL, 0, &n)); /* counting only */
    assert_int_equal(n, ninfos);
    assert_int_equal(clcnn_device_list(NULL, 0, NULL), CLCNN_ERR_INVALID_ARG);
    for (size_t i = 0; i < ninfos; i++) {
        const clcnn_device_info *d = &infos[i];
        assert_int_equal(d->index, (int)i);
        assert_true(d->platform_index >= 0);
        assert_true(d->name[0] != '\0');
        assert_true(d->platform_name[0] != '\0');
        assert_true(d->compute_units > 0);
        assert_true(d->global_mem_bytes > 0);
        assert_true(d->local_mem_bytes > 0);
        assert_true(d->max_alloc_bytes > 0 && d->max_alloc_bytes <= d->global_mem_bytes);
        assert_true(d->max_work_group_size > 0);
        assert_true(d->type == CLCNN_DEVICE_CPU || d->type == CLCNN_DEVICE_GPU ||
                    d->type == CLCNN_DEVICE_ACCELERATOR || d->type == CLCNN_DEVICE_OTHER);
        /* The C version numbers are parsed from the string the driver gave. */
        char want[32];
        snprintf(want, sizeof want, "OpenCL C %d.%d", d->opencl_c_major, d->opencl_c_minor);
        assert_true(strncmp(d->opencl_c_version, want, strlen(want)) == 0);
        assert_true(d->opencl_c_major >= 1);
        /* no trailing blanks in strings (drivers pad some) */
        size_t l = strlen(d->name);
        assert_true(d->name[l - 1] != ' ');
    }
}

/* A cap smaller than the count fills cap entries and still reports the full count. */
static void test_list_respects_cap(void **state) {
    (void)state;
    clcnn_device_info one[2];
    memset(one, 0x5a, sizeof one);
    size_t n = 0;
    TU_OK(clcnn_device_list(one, 1, &n));
    assert_int_equal(n, ninfos);
    assert_string_equal(one[0].name, infos[0].name);
    unsigned char *tail = (unsigned char *)&one[1];
    for (size_t i = 0; i < sizeof one[1]; i++)
        assert_int_equal(tail[i], 0x5a);
}

static void test_default_selection(void **state) {
    (void)state;
    saved_env e = env_save("CLCNN_DEVICE");
    unsetenv("CLCNN_DEVICE");
    int gpu = first_of_type(CLCNN_DEVICE_GPU), cpu = first_of_type(CLCNN_DEVICE_CPU);
    int want = gpu >= 0 ? gpu : cpu >= 0 ? cpu : 0;
    assert_int_equal(open_index(NULL), want);
    assert_int_equal(open_index(""), want); /* "" is the same as NULL */
    env_restore(&e);
}

static void test_index_selector(void **state) {
    (void)state;
    assert_int_equal(open_index("0"), 0);
    if (ninfos > 1) assert_int_equal(open_index("1"), 1);
    char past[16];
    snprintf(past, sizeof past, "%zu", ninfos);
    expect_no_match(past, past);
    expect_no_match("99999999999999999999999", NULL); /* overflow is no match, not index 0 */
}

static void test_type_selectors(void **state) {
    (void)state;
    const struct {
        const char *sel;
        clcnn_device_type type;
    } cases[] = {{"cpu", CLCNN_DEVICE_CPU},
                 {"CPU", CLCNN_DEVICE_CPU},
                 {"gpu", CLCNN_DEVICE_GPU},
                 {"Gpu", CLCNN_DEVICE_GPU}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int want = first_of_type(cases[c].type);
        if (want >= 0)
            assert_int_equal(open_index(cases[c].sel), want);
        else
            expect_no_match(cases[c].sel, cases[c].sel); /* e.g. "gpu" on a CPU-only CI */
    }
}

static void test_substring_selectors(void **state) {
    (void)state;
    /* A piece of device 0's name, in another case, must find a device whose platform,
     * vendor or name contains it (case-insensitively): the first such device. */
    char piece[8] = {0};
    memcpy(piece, infos[0].name, strlen(infos[0].name) < 7 ? strlen(infos[0].name) : 7);
    for (char *c = piece; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    assert_int_equal(open_index(piece), 0);
    for (size_t i = 0; i < ninfos; i++) {
        if (strstr(infos[i].platform_name, "Portable Computing Language")) {
            /* POCL: "pocl" is only in the platform vendor ("The pocl project") */
            int pi = open_index("POCL");
            assert_non_null(strstr(infos[pi].platform_name, "Portable Computing Language"));
        }
        if (strstr(infos[i].name, "pthread")) {
            int pt = open_index("pThReAd");
            assert_true(pt <= (int)i);
            assert_non_null(strstr(infos[pt].name, "pthread"));
        }
    }
}

static void test_bad_selector_lists_devices(void **state) {
    (void)state;
    expect_no_match("no-such-device-xyzzy", "no-such-device-xyzzy");
    clcnn_device *dev = NULL;
    assert_int_equal(clcnn_device_open("x", NULL), CLCNN_ERR_INVALID_ARG);
    (void)dev;
}

static void test_env_selector(void **state) {
    (void)state;
    saved_env e = env_save("CLCNN_DEVICE");
    char last[16];
    snprintf(last, sizeof last, "%zu", ninfos - 1);
    setenv("CLCNN_DEVICE", last, 1);
    assert_int_equal(open_index(NULL), (int)ninfos - 1);
    /* An explicit selector wins over the environment. */
    assert_int_equal(open_index("0"), 0);
    setenv("CLCNN_DEVICE", "no-such-device-xyzzy", 1);
    expect_no_match(NULL, "CLCNN_DEVICE");
    assert_int_equal(open_index("0"), 0);
    env_restore(&e);
}

/* $CLCNN_DEVICE_CLASS: the opened device reports (and so chooses as) that class, whatever
 * its driver says; the list and the "gpu"/"cpu" selectors keep the driver's types; any
 * other value fails the open with a message naming the variable and the valid values. */
static void test_device_class_override(void **state) {
    (void)state;
    saved_env e = env_save("CLCNN_DEVICE_CLASS");
    const char *classes[] = {"gpu", "CPU"};
    const clcnn_device_type want[] = {CLCNN_DEVICE_GPU, CLCNN_DEVICE_CPU};
    for (int i = 0; i < 2; i++) {
        setenv("CLCNN_DEVICE_CLASS", classes[i], 1);
        clcnn_device *dev = NULL;
        TU_OK(clcnn_device_open("0", &dev));
        assert_int_equal(clcnn_device_get_info(dev)->type, want[i]);
        assert_string_equal(clcnn_device_get_info(dev)->name, infos[0].name);
        clcnn_device_close(dev);
        clcnn_device_info again[64];
        size_t n = 0;
        TU_OK(clcnn_device_list(again, 64, &n));
        assert_int_equal(again[0].type, infos[0].type);
    }
    setenv("CLCNN_DEVICE_CLASS", "tpu", 1);
    clcnn_device *dev = NULL;
    assert_int_equal(clcnn_device_open("0", &dev), CLCNN_ERR_INVALID_ARG);
    assert_null(dev);
    assert_non_null(strstr(clcnn_last_error(), "CLCNN_DEVICE_CLASS is 'tpu'"));
    assert_non_null(strstr(clcnn_last_error(), "'gpu' or 'cpu'"));
    setenv("CLCNN_DEVICE_CLASS", "", 1); /* empty: the driver's type */
    TU_OK(clcnn_device_open("0", &dev));
    assert_int_equal(clcnn_device_get_info(dev)->type, infos[0].type);
    clcnn_device_close(dev);
    env_restore(&e);
}

/* $CLCNN_CPU_VECTOR_WIDTH: the opened device's native float width as the library's
 * choices see it (4, 8 or 16), whatever the driver reports; empty: the driver's; any other
 * value fails the open with a message naming the variable and the valid values. The
 * program cache keeps binaries POCL made for another CPU (POCL_LLVM_CPU_NAME, which such
 * runs set) apart from the native ones. */
static void test_vector_width_override(void **state) {
    (void)state;
    saved_env e = env_save("CLCNN_CPU_VECTOR_WIDTH");
    unsetenv("CLCNN_CPU_VECTOR_WIDTH");
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open("0", &dev));
    unsigned native = dev->native_float_width;
    clcnn_device_close(dev);
    const char *widths[] = {"4", "8", "16"};
    for (int i = 0; i < 3; i++) {
        setenv("CLCNN_CPU_VECTOR_WIDTH", widths[i], 1);
        TU_OK(clcnn_device_open("0", &dev));
        assert_int_equal(dev->native_float_width, (unsigned)atoi(widths[i]));
        clcnn_device_close(dev);
    }
    setenv("CLCNN_CPU_VECTOR_WIDTH", "7", 1);
    dev = NULL;
    assert_int_equal(clcnn_device_open("0", &dev), CLCNN_ERR_INVALID_ARG);
    assert_null(dev);
    assert_non_null(strstr(clcnn_last_error(), "CLCNN_CPU_VECTOR_WIDTH is '7'"));
    assert_non_null(strstr(clcnn_last_error(), "4, 8 or 16"));
    setenv("CLCNN_CPU_VECTOR_WIDTH", "", 1);
    TU_OK(clcnn_device_open("0", &dev));
    assert_int_equal(dev->native_float_width, native);
    /* the disk key: the same without a target or with an empty one, another with one */
    saved_env t = env_save("POCL_LLVM_CPU_NAME");
    unsetenv("POCL_LLVM_CPU_NAME");
    uint64_t k0 = cc_disk_key(dev, "src", "-DX=1");
    setenv("POCL_LLVM_CPU_NAME", "", 1);
    assert_true(cc_disk_key(dev, "src", "-DX=1") == k0);
    setenv("POCL_LLVM_CPU_NAME", "znver2", 1);
    uint64_t k1 = cc_disk_key(dev, "src", "-DX=1");
    setenv("POCL_LLVM_CPU_NAME", "haswell", 1);
    assert_true(k1 != k0 && cc_disk_key(dev, "src", "-DX=1") != k1);
    env_restore(&t);
    clcnn_device_close(dev);
    env_restore(&e);
}

static void test_cl_std_from_device_c_version(void **state) {
    (void)state;
    char b[32];
    const struct {
        int major, minor;
        const char *want;
    } cases[] = {{1, 0, ""},
                 {1, 1, "-cl-std=CL1.1"},
                 {1, 2, "-cl-std=CL1.2"},
                 {2, 0, "-cl-std=CL2.0"},
                 {2, 2, "-cl-std=CL2.0"},
                 {3, 0, "-cl-std=CL3.0"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cc_choose_cl_std(cases[c].major, cases[c].minor, b, sizeof b);
        assert_string_equal(b, cases[c].want);
    }
    /* The opened device uses its compiler's version, not the platform's ("OpenCL 3.0
     * PoCL" platforms report "OpenCL C 1.2" compilers). */
    for (size_t i = 0; i < ninfos; i++) {
        char sel[24];
        snprintf(sel, sizeof sel, "%zu", i);
        clcnn_device *dev = NULL;
        TU_OK(clcnn_device_open(sel, &dev));
        cc_choose_cl_std(dev->info.opencl_c_major, dev->info.opencl_c_minor, b, sizeof b);
        assert_string_equal(dev->cl_std, b);
        char pver[128] = "";
        int pmaj = 0, pmin = 0;
        clGetPlatformInfo(dev->platform, CL_PLATFORM_VERSION, sizeof pver, pver, NULL);
        if (sscanf(pver, "OpenCL %d.%d", &pmaj, &pmin) == 2 &&
            (pmaj != dev->info.opencl_c_major || pmin != dev->info.opencl_c_minor)) {
            char pstd[32];
            cc_choose_cl_std(pmaj, pmin, pstd, sizeof pstd);
            if (strcmp(pstd, b) != 0) assert_string_not_equal(dev->cl_std, pstd);
        }
        clcnn_device_close(dev);
    }
}

static void test_handle_accessors(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open("0", &dev));
    assert_non_null(clcnn_device_context(dev));
    assert_non_null(clcnn_device_queue(dev));
    assert_string_equal(clcnn_device_get_info(dev)->name, infos[0].name);
    TU_OK(clcnn_device_finish(dev));
    clcnn_cache_stats st;
    memset(&st, 0xff, sizeof st);
    clcnn_device_cache_stats(dev, &st);
    assert_int_equal(st.builds + st.disk_hits + st.memory_hits, 0);
    double ms = -1;
    clcnn_device_profile_begin(dev);
    TU_OK(clcnn_device_profile_end(dev, &ms));
    assert_true(ms == 0);
    clcnn_device_close(dev);
    /* NULL is safe everywhere */
    clcnn_device_close(NULL);
    assert_null(clcnn_device_get_info(NULL));
    assert_null(clcnn_device_context(NULL));
    assert_null(clcnn_device_queue(NULL));
    assert_int_equal(clcnn_device_finish(NULL), CLCNN_ERR_INVALID_ARG);
    memset(&st, 0xff, sizeof st);
    clcnn_device_cache_stats(NULL, &st);
    assert_int_equal(st.builds, 0);
    clcnn_device_cache_stats(NULL, NULL);
    assert_int_equal(clcnn_device_profile_end(NULL, &ms), CLCNN_ERR_INVALID_ARG);
    assert_string_equal(clcnn_version(), CLCNN_VERSION_STRING);
}

/* Closing a device with tensors alive: they stay usable and release the device with the
 * last of them (before, freeing them after the close touched freed memory; ASan in
 * `make test-sanitize` checks both the access and the leak). */
static void test_tensors_outlive_close(void **state) {
    (void)state;
    clcnn_device *dev = NULL;
    TU_OK(clcnn_device_open("0", &dev));
    clcnn_tensor *a = NULL, *b = NULL, *v = NULL, *early = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){6}, &a));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){6}, &b));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){3}, &early));
    TU_OK(clcnn_tensor_view(a, 2, (size_t[]){2, 3}, &v));
    const float in[6] = {1, -2, 3.5f, 4, 5, -6};
    TU_OK(clcnn_tensor_upload(a, in, sizeof in));
    clcnn_tensor_free(early);       /* freed before the close, as always */
    assert_int_equal(dev->refs, 4); /* the handle + a, b, v */
    clcnn_device_close(dev);
    /* still usable through the tensors, in any order */
    TU_OK(clcnn_tensor_copy(b, v));
    clcnn_tensor_free(a);
    float out[6] = {0};
    TU_OK(clcnn_tensor_download(b, out, sizeof out));
    assert_memory_equal(out, in, sizeof in);
    TU_OK(clcnn_tensor_fill(v, 2.0f));
    TU_OK(clcnn_tensor_download(v, out, sizeof out));
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == 2.0f);
    clcnn_tensor_free(v);
    clcnn_tensor_free(b); /* the last one: the device goes with it */
}

/* ---- the `clcnn devices` command ------------------------------------------------- */

/* Run a shell command, capture stdout (and stderr when merged by the command). */
static char *run_capture(const char *cmd, int *exit_code) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[n] = '\0';
    int st = pclose(p);
    *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

static const char *cli(void) {
    const char *c = getenv("CLCNN_CLI");
    return c && *c ? c : NULL;
}

static void test_cli_devices_table_and_json(void **state) {
    (void)state;
    if (!cli()) skip();
    char cmd[4400];
    int rc = -1;
    snprintf(cmd, sizeof cmd, "'%s' devices", cli());
    char *out = run_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < ninfos; i++)
        assert_non_null(strstr(out, infos[i].platform_name));
    assert_non_null(strstr(out, "OpenCL C"));
    free(out);

    snprintf(cmd, sizeof cmd, "'%s' devices --json", cli());
    out = run_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    if (!root) fail_msg("not valid JSON (%s at line %d): %s", jerr.text, jerr.line, out);
    json_t *devs = json_object_get(root, "devices");
    assert_true(json_is_array(devs));
    assert_int_equal(json_array_size(devs), ninfos);
    for (size_t i = 0; i < ninfos; i++) {
        json_t *d = json_array_get(devs, i);
        assert_int_equal(json_integer_value(json_object_get(d, "index")), (json_int_t)i);
        assert_string_equal(json_string_value(json_object_get(d, "name")), infos[i].name);
        assert_int_equal(json_integer_value(json_object_get(d, "compute_units")),
                         infos[i].compute_units);
        assert_int_equal(json_integer_value(json_object_get(d, "global_mem_bytes")),
                         (json_int_t)infos[i].global_mem_bytes);
        assert_true(json_is_boolean(json_object_get(d, "fp64")));
        assert_non_null(json_string_value(json_object_get(d, "opencl_c_version")));
        assert_non_null(json_string_value(json_object_get(d, "driver_version")));
    }
    json_decref(root);
    free(out);

    snprintf(cmd, sizeof cmd, "'%s' devices --help", cli());
    out = run_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "--json"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' devices --bogus 2>&1", cli());
    out = run_capture(cmd, &rc);
    assert_int_equal(rc, 2);
    free(out);
}

/* With no OpenCL platform at all (the ICD loader pointed at an empty directory) the
 * command says what to install and exits 1. */
static void test_cli_devices_without_any_platform(void **state) {
    (void)state;
    if (!cli()) skip();
    char *empty = tu_temp_dir("no-icd");
    char cmd[4400];
    int rc = -1;
    snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS='%s' OCL_ICD_FILENAMES= '%s' devices 2>&1", empty,
             cli());
    char *out = run_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    if (!strstr(out, "no OpenCL platform") || !strstr(out, "pocl-opencl-icd"))
        fail_msg("unexpected output: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS='%s' OCL_ICD_FILENAMES= '%s' devices --json 2>&1",
             empty, cli());
    out = run_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    free(out);
    rmdir(empty);
    free(empty);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_is_sane),
        cmocka_unit_test(test_list_respects_cap),
        cmocka_unit_test(test_default_selection),
        cmocka_unit_test(test_index_selector),
        cmocka_unit_test(test_type_selectors),
        cmocka_unit_test(test_substring_selectors),
        cmocka_unit_test(test_bad_selector_lists_devices),
        cmocka_unit_test(test_env_selector),
        cmocka_unit_test(test_device_class_override),
        cmocka_unit_test(test_vector_width_override),
        cmocka_unit_test(test_cl_std_from_device_c_version),
        cmocka_unit_test(test_handle_accessors),
        cmocka_unit_test(test_tensors_outlive_close),
        cmocka_unit_test(test_cli_devices_table_and_json),
        cmocka_unit_test(test_cli_devices_without_any_platform),
    };
    return cmocka_run_group_tests(tests, setup_list, NULL);
}
