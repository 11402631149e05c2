/* One program cache directory shared by two drivers keeps one binary per driver: POCL's
 * (machine code) and Oclgrind's (LLVM bitcode) never stand in for each other, because the
 * disk key holds the platform, device name and driver version (lib/program.c). Each
 * device builds its own binary once, then loads only its own, and the loaded program
 * computes the right result. Needs both drivers registered with the ICD loader (as
 * tests/oclgrind/run.sh does in its private vendors folder); skipped otherwise. */
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t count_binaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t l = strlen(de->d_name);
        if (l > 6 && !strcmp(de->d_name + l - 6, ".clbin")) n++;
    }
    closedir(d);
    return n;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ReLU of 7 values on dev, checked; returns dev's cache counters afterwards. */
static clcnn_cache_stats relu_on(clcnn_device *dev) {
    const float x[7] = {-3, -1, 0, 0.5f, 2, -0.25f, 7};
    const size_t n = 7;
    clcnn_tensor *tx = NULL, *ty = NULL;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, &n, &tx));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, &n, &ty));
    TU_OK(clcnn_tensor_upload(tx, x, sizeof x));
    TU_OK(clcnn_activation_forward(dev, CLCNN_ACT_RELU, 0, tx, ty));
    float y[7];
    TU_OK(clcnn_tensor_download(ty, y, sizeof y));
    for (size_t i = 0; i < n; i++)
        assert_true(y[i] == (x[i] > 0 ? x[i] : 0));
    clcnn_tensor_free(tx);
    clcnn_tensor_free(ty);
    clcnn_cache_stats st;
    clcnn_device_cache_stats(dev, &st);
    return st;
}

static void test_one_binary_per_driver(void **state) {
    (void)state;
    const char *sel[2] = {"pocl", "oclgrind"};
    clcnn_device *dev[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (clcnn_device_open(sel[i], &dev[i]) != CLCNN_OK) {
            clcnn_device_close(dev[0]);
            print_message("no '%s' device here (tests/oclgrind/run.sh registers both): %s\n",
                          sel[i], clcnn_last_error());
            skip();
        }
    }
    const char *keep = getenv("CLCNN_CACHE_DIR");
    char *saved = keep ? strdup(keep) : NULL;
    char *dir = tu_temp_dir("drivers");
    setenv("CLCNN_CACHE_DIR", dir, 1);

    /* First use: each driver compiles and writes its own file; neither loads the other's. */
    for (int i = 0; i < 2; i++) {
        clcnn_cache_stats st = relu_on(dev[i]);
        assert_int_equal(st.builds, 1);
        assert_int_equal(st.disk_hits, 0);
        assert_int_equal(st.disk_rejects, 0);
        assert_int_equal(st.disk_writes, 1);
        assert_int_equal(count_binaries(dir), (size_t)i + 1);
        clcnn_device_close(dev[i]);
    }
    /* A new handle of each loads its own binary, and it runs. */
    for (int i = 0; i < 2; i++) {
        TU_OK(clcnn_device_open(sel[i], &dev[i]));
        clcnn_cache_stats st = relu_on(dev[i]);
        assert_int_equal(st.builds, 0);
        assert_int_equal(st.disk_hits, 1);
        assert_int_equal(st.disk_rejects, 0);
        clcnn_device_close(dev[i]);
    }
    assert_int_equal(count_binaries(dir), 2);

    if (saved)
        setenv("CLCNN_CACHE_DIR", saved, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(saved);
    remove_dir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_binary_per_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
