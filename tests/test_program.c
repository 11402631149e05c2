/* Run-time program builds and the program cache (lib/program.c): build errors carry
 * the compiler log, the disk cache round-trips, corrupted cache files are rebuilt and
 * rewritten, define order does not change the key, concurrent processes share one
 * cache directory safely, CLCNN_CACHE_DIR=off writes nothing, and the `clcnn cache`
 * command. Every test uses its own tiny kernels in a temporary CLCNN_KERNEL_DIR and
 * its own fresh cache directory, so it depends on no kernel of the library. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* c[i] = a[i] * SCALE + b[i] + BIAS; helper.h supplies BIAS, to test include expansion. */
static const char *VADD_CL =
    "/* vadd: c = a * SCALE + b + BIAS. Defines: SCALE (default 1), BIAS (helper.h).\n"
    " * clcnn-warm: SCALE=2.0f\n"
    " * clcnn-warm:\n"
    " */\n"
    "#include \"helper.h\"\n"
    "#ifndef SCALE\n"
    "#define SCALE 1.0f\n"
    "#endif\n"
    "__kernel void vadd(__global const float *a, __global const float *b,\n"
    "                   __global float *c, int n) {\n"
    "    int i = get_global_id(0);\n"
    "    if (i < n) c[i] = a[i] * SCALE + b[i] + BIAS;\n"
    "}\n";
static const char *HELPER_H = "#ifndef BIAS\n#define BIAS 0.0f\n#endif\n";
/* Compiles (so warm covers two files) but is not launched. */
static const char *NEG_CL = "__kernel void neg(__global float *x, int n) {\n"
                            "    int i = get_global_id(0);\n"
                            "    if (i < n) x[i] = -x[i];\n"
                            "}\n";
static const char *BAD_CL = "__kernel void bad(__global float *x) {\n"
                            "    x[0] = this_is_not_declared + ;\n"
                            "}\n";

static char *orig_cache_dir;

/* ---- helpers ---------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Count files in dir whose name ends with suffix (or contains it, for ".tmp."). */
static size_t count_files(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.' && strstr(de->d_name, part)) n++;
    closedir(d);
    return n;
}

/* The path of the only *.clbin in dir. */
static void only_entry(const char *dir, char *path, size_t cap) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t l = strlen(de->d_name);
        if (l > 6 && !strcmp(de->d_name + l - 6, ".clbin")) {
            snprintf(path, cap, "%s/%s", dir, de->d_name);
            found++;
        }
    }
    closedir(d);
    assert_int_equal(found, 1);
}

/* A test's environment: a kernel dir with our kernels and a fresh cache dir. */
typedef struct env {
    char *kdir, *cdir;
} env;

static env env_begin(void) {
    env e = {tu_temp_dir("kernels"), tu_temp_dir("cache")};
    write_file(e.kdir, "vadd.cl", VADD_CL);
    write_file(e.kdir, "helper.h", HELPER_H);
    write_file(e.kdir, "neg.cl", NEG_CL);
    setenv("CLCNN_KERNEL_DIR", e.kdir, 1);
    setenv("CLCNN_CACHE_DIR", e.cdir, 1);
    return e;
}

static void env_end(env *e) {
    unsetenv("CLCNN_KERNEL_DIR");
    if (orig_cache_dir)
        setenv("CLCNN_CACHE_DIR", orig_cache_dir, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    rm_rf(e->kdir);
    rm_rf(e->cdir);
    free(e->kdir);
    free(e->cdir);
}

static clcnn_device *open_dev(void) {
    clcnn_device *dev = NULL;
    const char *sel = getenv("CLCNN_TEST_DEVICE");
    TU_OK(clcnn_device_open(sel && *sel ? sel : NULL, &dev));
    return dev;
}

static clcnn_cache_stats stats(const clcnn_device *dev) {
    clcnn_cache_stats s;
    clcnn_device_cache_stats(dev, &s);
    return s;
}

/* Run vadd on n seeded values and compare with the double reference
 * c = a*scale + b + bias. One multiply and two adds in float (or a fused multiply-add):
 * relative error <= 3 ulp of the magnitudes involved; |a|,|b| <= 1 so atol 1e-6 and
 * rtol 1e-6 hold with margin. */
static void run_vadd(clcnn_device *dev, const char *defines, double scale, double bias, size_t n) {
    tu_rng r = tu_rng_seed(n * 31 + 7);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    double *ref = malloc(n * sizeof *ref);
    assert_true(a && b && c && ref);
    tu_fill_uniform(&r, a, n, -1, 1);
    tu_fill_uniform(&r, b, n, -1, 1);
    for (size_t i = 0; i < n; i++)
        ref[i] = (double)a[i] * scale + (double)b[i] + bias;
    clcnn_tensor *ta, *tb, *tc;
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){n}, &ta));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){n}, &tb));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){n}, &tc));
    TU_OK(clcnn_tensor_upload(ta, a, n * sizeof *a));
    TU_OK(clcnn_tensor_upload(tb, b, n * sizeof *b));
    TU_OK(clcnn_tensor_fill(tc, 12345.0f));
    TU_OK(cc_launch(dev, "vadd", defines, "vadd", 1, (size_t[]){n}, (size_t[]){16},
                    CC_ARGS(CC_ARG_MEM(clcnn_tensor_mem(ta)), CC_ARG_MEM(clcnn_tensor_mem(tb)),
                            CC_ARG_MEM(clcnn_tensor_mem(tc)), CC_ARG_INT(n))));
    TU_OK(clcnn_tensor_download(tc, c, n * sizeof *c));
    char what[128];
    snprintf(what, sizeof what, "vadd n=%zu defines='%s'", n, defines ? defines : "");
    assert_true(tu_close(what, c, ref, n, 1e-6, 1e-6));
    clcnn_tensor_free(ta);
    clcnn_tensor_free(tb);
    clcnn_tensor_free(tc);
    free(a);
    free(b);
    free(c);
    free(ref);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_build_error_has_compiler_log(void **state) {
    (void)state;
    env e = env_begin();
    write_file(e.kdir, "bad.cl", BAD_CL);
    clcnn_device *dev = open_dev();
    cl_program p = NULL;
    clcnn_clear_error();
    assert_int_equal(cc_program_get(dev, "bad", "X=1", &p), CLCNN_ERR_BUILD);
    const char *msg = clcnn_last_error();
    if (!strstr(msg, "bad.cl") || !strstr(msg, "this_is_not_declared") || !strstr(msg, "-DX=1"))
        fail_msg("build error message lacks the file, the log or the options: %s", msg);
    assert_null(p);
    /* the failure is not cached: it fails again (not a stale success), nothing on disk */
    assert_int_equal(cc_program_get(dev, "bad", "X=1", &p), CLCNN_ERR_BUILD);
    assert_int_equal(count_files(e.cdir, ".clbin"), 0);
    assert_int_equal(stats(dev).builds, 0);
    /* a launch of it fails the same way */
    assert_int_equal(
        cc_launch(dev, "bad", "", "bad", 1, (size_t[]){1}, NULL, CC_ARGS(CC_ARG_MEM(NULL))),
        CLCNN_ERR_BUILD);
    /* missing file, missing kernel name */
    assert_int_equal(cc_program_get(dev, "missing_file", "", &p), CLCNN_ERR_IO);
    assert_non_null(strstr(clcnn_last_error(), "missing_file.cl"));
    cl_kernel k = NULL;
    assert_int_equal(cc_kernel_get(dev, "vadd", "", "no_such_kernel", &k), CLCNN_ERR_NOT_FOUND);
    assert_non_null(strstr(clcnn_last_error(), "no_such_kernel"));
    clcnn_device_close(dev);
    env_end(&e);

    /* Without CLCNN_KERNEL_DIR only the embedded files exist. */
    dev = open_dev();
    assert_int_equal(cc_program_get(dev, "no_such_embedded_file", "", &p), CLCNN_ERR_NOT_FOUND);
    assert_non_null(strstr(clcnn_last_error(), "no_such_embedded_file.cl"));
    clcnn_device_close(dev);
}

static void test_launch_argument_errors(void **state) {
    (void)state;
    env e = env_begin();
    clcnn_device *dev = open_dev();
    /* too few arguments: the enqueue fails and names the kernel */
    clcnn_status s =
        cc_launch(dev, "vadd", "", "vadd", 1, (size_t[]){4}, NULL, CC_ARGS(CC_ARG_MEM(NULL)));
    assert_int_equal(s, CLCNN_ERR_OPENCL);
    assert_non_null(strstr(clcnn_last_error(), "vadd"));
    /* wrong argument size */
    s = cc_launch(dev, "vadd", "", "vadd", 1, (size_t[]){4}, NULL,
                  CC_ARGS(CC_ARG_MEM(NULL), CC_ARG_MEM(NULL), CC_ARG_MEM(NULL), CC_ARG_ULONG(4)));
    assert_int_equal(s, CLCNN_ERR_OPENCL);
    assert_non_null(strstr(clcnn_last_error(), "arg 3"));
    clcnn_device_close(dev);
    env_end(&e);
}

/* The lines $CLCNN_TRACE_BUILDS got, "process cpu_ms wall_ms file OPTIONS...", whose
 * file is `file` (checking the rest of each line's form). */
static int trace_lines(const char *path, const char *file) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024], proc[64], name[64];
    double cpu, wall;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        assert_int_equal(sscanf(line, "%63s %lf %lf %63s", proc, &cpu, &wall, name), 4);
        assert_true(cpu >= 0 && wall >= 0);
        assert_non_null(strstr(line, "-cl-std="));
        n += strcmp(name, file) == 0;
    }
    fclose(f);
    return n;
}

static void test_disk_round_trip(void **state) {
    (void)state;
    env e = env_begin();
    char trace[4200];
    snprintf(trace, sizeof trace, "%s/builds.txt", e.cdir);
    setenv("CLCNN_TRACE_BUILDS", trace, 1);
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 1000);
    clcnn_cache_stats s = stats(dev);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_hits, 0);
    assert_int_equal(s.disk_writes, 1);
    assert_int_equal(s.disk_rejects, 0);
    assert_true(s.build_ms > 0);
    run_vadd(dev, "", 1, 0, 37); /* second launch: from memory */
    s = stats(dev);
    assert_int_equal(s.builds, 1);
    assert_true(s.memory_hits >= 1);
    assert_int_equal(count_files(e.cdir, ".clbin"), 1);
    assert_int_equal(count_files(e.cdir, ".tmp."), 0);
    clcnn_device_close(dev);

    /* A new handle (as a new process would) loads the binary and runs it. */
    dev = open_dev();
    run_vadd(dev, "", 1, 0, 1001);
    s = stats(dev);
    assert_int_equal(s.builds, 0);
    assert_int_equal(s.disk_hits, 1);
    assert_int_equal(s.disk_writes, 0);
    assert_int_equal(s.disk_rejects, 0);
    clcnn_device_close(dev);
    /* one line for the one build from source; none for the load */
    unsetenv("CLCNN_TRACE_BUILDS");
    assert_int_equal(trace_lines(trace, "vadd"), 1);
    env_end(&e);
}

/* Editing a file under CLCNN_KERNEL_DIR (or a header it includes) while the process
 * runs gives a new program, in memory and on disk: the source is part of both keys. */
static void test_kernel_dir_edits_are_seen(void **state) {
    (void)state;
    env e = env_begin();
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 100);
    write_file(e.kdir, "helper.h", "#ifndef BIAS\n#define BIAS 0.5f\n#endif\n");
    run_vadd(dev, "", 1, 0.5, 100);
    assert_int_equal(stats(dev).builds, 2);
    assert_int_equal(count_files(e.cdir, ".clbin"), 2);
    /* an explicit define still wins over the header's default */
    run_vadd(dev, "BIAS=-2.0f", 1, -2, 100);
    clcnn_device_close(dev);
    env_end(&e);
}

typedef enum corruption { TRUNCATE, FLIP_PAYLOAD, GARBAGE, EMPTY, BAD_PAYLOAD } corruption;

/* Replace the cache file's content per `how`. */
static void corrupt(const char *path, corruption how) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(len > 64);
    unsigned char *buf = malloc((size_t)len);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    long newlen = len;
    tu_rng r = tu_rng_seed((uint64_t)how + 99);
    switch (how) {
    case TRUNCATE:
        newlen = len / 2;
        break;
    case FLIP_PAYLOAD:
        for (int i = 0; i < 8; i++)
            buf[64 + tu_rng_next(&r) % (uint64_t)(len - 64)] ^= 0x5a;
        break;
    case GARBAGE:
        for (long i = 0; i < len; i++)
            buf[i] = (unsigned char)tu_rng_next(&r);
        break;
    case EMPTY:
        newlen = 0;
        break;
    case BAD_PAYLOAD: {
        /* A well-formed file (magic, key, length, payload hash all right) whose payload
         * is not a binary the driver accepts: the driver's rejection is handled too. */
        for (long i = 40; i < len; i++)
            buf[i] = (unsigned char)tu_rng_next(&r);
        uint64_t h = cc_hash64(CC_HASH_INIT, buf + 40, (size_t)(len - 40));
        for (int i = 0; i < 8; i++)
            buf[32 + i] = (unsigned char)(h >> (8 * i));
        break;
    }
    }
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, (size_t)newlen, f), (size_t)newlen);
    fclose(f);
    free(buf);
}

static void test_corrupted_cache_files_are_rebuilt(void **state) {
    (void)state;
    env e = env_begin();
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 257);
    clcnn_device_close(dev);
    char path[4096];
    only_entry(e.cdir, path, sizeof path);
    const char *names[] = {"truncate", "flip payload bytes", "garbage", "zero length",
                           "driver-rejected payload"};
    for (corruption how = TRUNCATE; how <= BAD_PAYLOAD; how++) {
        corrupt(path, how);
        dev = open_dev();
        run_vadd(dev, "", 1, 0, 257);
        clcnn_cache_stats s = stats(dev);
        if (s.disk_rejects != 1 || s.builds != 1 || s.disk_hits != 0 || s.disk_writes != 1)
            fail_msg("%s: rejects %llu builds %llu disk hits %llu writes %llu", names[how],
                     (unsigned long long)s.disk_rejects, (unsigned long long)s.builds,
                     (unsigned long long)s.disk_hits, (unsigned long long)s.disk_writes);
        clcnn_device_close(dev);
        /* rewritten valid: the next handle loads it */
        dev = open_dev();
        run_vadd(dev, "", 1, 0, 33);
        s = stats(dev);
        if (s.disk_hits != 1 || s.builds != 0 || s.disk_rejects != 0)
            fail_msg("%s: file was not rewritten valid (hits %llu builds %llu)", names[how],
                     (unsigned long long)s.disk_hits, (unsigned long long)s.builds);
        clcnn_device_close(dev);
        assert_int_equal(count_files(e.cdir, ".clbin"), 1);
        assert_int_equal(count_files(e.cdir, ".tmp."), 0);
    }
    env_end(&e);
}

static void test_defines_order_is_one_program(void **state) {
    (void)state;
    env e = env_begin();
    clcnn_device *dev = open_dev();
    cl_program p1 = NULL, p2 = NULL, p3 = NULL, p4 = NULL;
    TU_OK(cc_program_get(dev, "vadd", "SCALE=2.0f BIAS=1.0f", &p1));
    TU_OK(cc_program_get(dev, "vadd", "BIAS=1.0f SCALE=2.0f", &p2));
    TU_OK(cc_program_get(dev, "vadd", "  BIAS=1.0f\tSCALE=2.0f  ", &p3));
    assert_ptr_equal(p1, p2);
    assert_ptr_equal(p1, p3);
    clcnn_cache_stats s = stats(dev);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.memory_hits, 2);
    run_vadd(dev, "BIAS=1.0f SCALE=2.0f", 2, 1, 300);
    assert_int_equal(stats(dev).builds, 1);
    /* different values: a different program */
    TU_OK(cc_program_get(dev, "vadd", "BIAS=1.0f SCALE=3.0f", &p4));
    assert_ptr_not_equal(p1, p4);
    assert_int_equal(stats(dev).builds, 2);
    run_vadd(dev, "SCALE=3.0f BIAS=1.0f", 3, 1, 300);
    clcnn_device_close(dev);
    assert_int_equal(count_files(e.cdir, ".clbin"), 2);
    /* and on disk: the other order in a new handle is a disk hit */
    dev = open_dev();
    TU_OK(cc_program_get(dev, "vadd", "SCALE=2.0f BIAS=1.0f", &p1));
    s = stats(dev);
    assert_int_equal(s.disk_hits, 1);
    assert_int_equal(s.builds, 0);
    clcnn_device_close(dev);
    env_end(&e);
}

/* ---- two processes warming one fresh cache directory ---------------------------- */

/* Child mode (the test binary re-executed: a process that forked while OpenCL threads
 * run must exec before using OpenCL again): open the device, say ready, wait for the
 * start signal, warm, exit 0 on success. */
static int warm_child(int ready_fd, int go_fd) {
    clcnn_device *dev = NULL;
    if (clcnn_device_open(getenv("CLCNN_TEST_DEVICE"), &dev) != CLCNN_OK) {
        fprintf(stderr, "child: open: %s\n", clcnn_last_error());
        return 3;
    }
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1) return 4;
    close(ready_fd);
    while (read(go_fd, &c, 1) < 0 && errno == EINTR) {
    } /* EOF = go */
    clcnn_status s = clcnn_device_warm(dev);
    if (s != CLCNN_OK) fprintf(stderr, "child: warm: %s\n", clcnn_last_error());
    clcnn_cache_stats st;
    clcnn_device_cache_stats(dev, &st);
    clcnn_device_close(dev);
    /* exit status 10 + the programs this child built (the parent adds them up) */
    return s == CLCNN_OK && st.builds + st.disk_hits == 3 ? 10 + (int)st.builds : 5;
}

static char self_exe[4096];

static void test_two_processes_warm_one_cache(void **state) {
    (void)state;
    env e = env_begin();
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            close(ready[0]);
            close(go[1]);
            char a[16], b[16];
            snprintf(a, sizeof a, "%d", ready[1]);
            snprintf(b, sizeof b, "%d", go[0]);
            execl(self_exe, self_exe, "--warm-child", a, b, (char *)NULL);
            _exit(127);
        }
    }
    close(ready[1]);
    close(go[0]);
    char c;
    int got = 0;
    while (got < 2 && read(ready[0], &c, 1) == 1)
        got++;
    close(go[1]); /* both start now */
    close(ready[0]);
    int built = 0;
    for (int k = 0; k < 2; k++) {
        int st = 0;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) < 10 || WEXITSTATUS(st) > 13)
            fail_msg("warm child %d failed (status %d)", k, st);
        built += WEXITSTATUS(st) - 10;
    }
    assert_int_equal(got, 2);
    /* each program was built once: the second process waited on the build lock and
     * loaded the first one's binary */
    assert_int_equal(built, 3);
    /* vadd.cl has two warm variants, neg.cl none: 3 programs, no temporaries, no locks */
    assert_int_equal(count_files(e.cdir, ".clbin"), 3);
    assert_int_equal(count_files(e.cdir, ".tmp."), 0);
    assert_int_equal(count_files(e.cdir, ".lock"), 0);
    /* every file is valid: a new handle loads all three and builds nothing */
    clcnn_device *dev = open_dev();
    TU_OK(clcnn_device_warm(dev));
    clcnn_cache_stats s = stats(dev);
    assert_int_equal(s.disk_hits, 3);
    assert_int_equal(s.builds, 0);
    assert_int_equal(s.disk_rejects, 0);
    run_vadd(dev, "SCALE=2.0f", 2, 0, 500);
    assert_int_equal(stats(dev).builds, 0);
    clcnn_device_close(dev);
    env_end(&e);
}

static void test_warm_reports_failures_and_continues(void **state) {
    (void)state;
    env e = env_begin();
    write_file(e.kdir, "bad.cl", BAD_CL);
    clcnn_device *dev = open_dev();
    assert_int_equal(clcnn_device_warm(dev), CLCNN_ERR_BUILD);
    const char *msg = clcnn_last_error();
    if (!strstr(msg, "1 of 4 programs failed") || !strstr(msg, "this_is_not_declared"))
        fail_msg("unexpected warm message: %s", msg);
    /* the good ones were built anyway */
    assert_int_equal(stats(dev).builds, 3);
    assert_int_equal(clcnn_device_warm(NULL), CLCNN_ERR_INVALID_ARG);
    clcnn_device_close(dev);
    env_end(&e);
}

static void test_cache_off_writes_nothing(void **state) {
    (void)state;
    env e = env_begin();
    char *home = tu_temp_dir("home");
    char *xdg_home = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *real_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char xdg[4200];
    snprintf(xdg, sizeof xdg, "%s/xdg", home);
    setenv("HOME", home, 1);
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("CLCNN_CACHE_DIR", "off", 1);
    char buf[256] = "untouched";
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 0);
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 100);
    clcnn_cache_stats s = stats(dev);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_writes + s.disk_hits + s.disk_rejects, 0);
    clcnn_device_close(dev);
    dev = open_dev(); /* and nothing is read either: a new handle builds again */
    run_vadd(dev, "", 1, 0, 100);
    assert_int_equal(stats(dev).builds, 1);
    clcnn_device_close(dev);
    assert_int_equal(count_files(home, ""), 0); /* not even the xdg dir */
    assert_int_equal(count_files(e.cdir, ""), 0);
    if (real_home) setenv("HOME", real_home, 1);
    if (xdg_home)
        setenv("XDG_CACHE_HOME", xdg_home, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(real_home);
    free(xdg_home);
    rm_rf(home);
    free(home);
    env_end(&e);
}

static void test_cache_dir_resolution(void **state) {
    (void)state;
    char *xdg_home = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *real_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char buf[512];
    setenv("CLCNN_CACHE_DIR", "/some/where", 1);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 1);
    assert_string_equal(buf, "/some/where");
    unsetenv("CLCNN_CACHE_DIR");
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 1);
    assert_string_equal(buf, "/xdg/clcnn");
    setenv("CLCNN_CACHE_DIR", "", 1); /* empty is the same as unset */
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 1);
    assert_string_equal(buf, "/xdg/clcnn");
    unsetenv("XDG_CACHE_HOME");
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 1);
    assert_string_equal(buf, "/home/u/.cache/clcnn");
    setenv("CLCNN_CACHE_DIR", "off", 1);
    assert_int_equal(clcnn_cache_dir(buf, sizeof buf), 0);
    if (real_home) setenv("HOME", real_home, 1);
    if (xdg_home) setenv("XDG_CACHE_HOME", xdg_home, 1);
    if (orig_cache_dir)
        setenv("CLCNN_CACHE_DIR", orig_cache_dir, 1);
    else
        unsetenv("CLCNN_CACHE_DIR");
    free(real_home);
    free(xdg_home);
}

/* A cache directory that cannot be created: builds still work, nothing is counted as
 * written. */
static void test_unwritable_cache_dir_is_not_fatal(void **state) {
    (void)state;
    env e = env_begin();
    setenv("CLCNN_CACHE_DIR", "/proc/clcnn-cannot-exist/cache", 1);
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 64);
    clcnn_cache_stats s = stats(dev);
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.disk_writes, 0);
    clcnn_device_close(dev);
    env_end(&e);
}

static void test_profiling_times_launches(void **state) {
    (void)state;
    env e = env_begin();
    clcnn_device *dev = open_dev();
    run_vadd(dev, "", 1, 0, 64); /* build outside the profiled region */
    clcnn_device_profile_begin(dev);
    run_vadd(dev, "", 1, 0, 1 << 16);
    double ms = -1;
    TU_OK(clcnn_device_profile_end(dev, &ms));
    assert_true(ms > 0 && ms < 60000);
    clcnn_device_close(dev);
    env_end(&e);
}

/* ---- the `clcnn cache` command ------------------------------------------------------ */

static char *run_capture(const char *cmd, int *exit_code) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    assert_non_null(buf);
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

static char *cli_run(const char *args, int *rc) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", getenv("CLCNN_CLI"), args);
    return run_capture(cmd, rc);
}

#define EXPECT_OUTPUT(out, text)                                                                   \
    do {                                                                                           \
        if (!strstr((out), (text))) fail_msg("expected '%s' in:\n%s", (text), (out));              \
    } while (0)

static void test_cli_cache_commands(void **state) {
    (void)state;
    const char *c = getenv("CLCNN_CLI");
    if (!c || !*c) skip();
    env e = env_begin();
    int rc = -1;
    char *out = cli_run("cache warm", &rc);
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, "3 programs: 3 built from source");
    EXPECT_OUTPUT(out, "SCALE=2.0f");
    free(out);
    /* second run: all from disk; CLCNN_VERBOSE prints the counters at close */
    setenv("CLCNN_VERBOSE", "1", 1);
    out = cli_run("cache warm --device 0", &rc);
    unsetenv("CLCNN_VERBOSE");
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, "0 built from source");
    EXPECT_OUTPUT(out, "3 loaded from the disk cache");
    EXPECT_OUTPUT(out, "clcnn: program cache: 0 builds");
    EXPECT_OUTPUT(out, "3 disk hits");
    free(out);

    out = cli_run("cache info", &rc);
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, e.cdir);
    EXPECT_OUTPUT(out, "3 compiled programs");
    free(out);

    /* clear removes our binaries and stale temporaries, nothing else */
    write_file(e.cdir, "tuning.json", "{}");
    char stale[256];
    snprintf(stale, sizeof stale, "0123456789abcdef.clbin.tmp.%d.AbCdEf", 999999999);
    write_file(e.cdir, stale, "half a file");
    char old[256]; /* a live pid (ours) but an hour old: stale as well */
    snprintf(old, sizeof old, "0123456789abcdef.clbin.tmp.%d.XyZ123", (int)getpid());
    write_file(e.cdir, old, "half a file");
    char oldpath[4400];
    snprintf(oldpath, sizeof oldpath, "%s/%s", e.cdir, old);
    struct timeval tv[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    assert_int_equal(utimes(oldpath, tv), 0);
    char fresh[256]; /* a live writer: left alone */
    snprintf(fresh, sizeof fresh, "fedcba9876543210.clbin.tmp.%d.QwErTy", (int)getpid());
    write_file(e.cdir, fresh, "being written");
    /* build locks: one left by a crashed build (nobody holds it) goes, a held one stays */
    write_file(e.cdir, "0123456789abcdef.clbin.lock", "");
    write_file(e.cdir, "fedcba9876543210.clbin.lock", "");
    char held[4400];
    snprintf(held, sizeof held, "%s/fedcba9876543210.clbin.lock", e.cdir);
    int lock_fd = open(held, O_RDWR);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    out = cli_run("cache clear", &rc);
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, "removed 3 cached programs");
    EXPECT_OUTPUT(out, "and 3 stale temporary files");
    free(out);
    close(lock_fd);
    assert_int_equal(count_files(e.cdir, ".lock"), 1);  /* the held lock */
    assert_int_equal(count_files(e.cdir, ".clbin"), 2); /* the live temporary and lock */
    assert_int_equal(count_files(e.cdir, "tuning.json"), 1);
    out = cli_run("cache info", &rc);
    EXPECT_OUTPUT(out, "0 compiled programs");
    free(out);

    setenv("CLCNN_CACHE_DIR", "off", 1);
    out = cli_run("cache info", &rc);
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, "disabled");
    free(out);
    out = cli_run("cache clear", &rc);
    assert_int_equal(rc, 0);
    free(out);
    out = cli_run("cache warm --device no-such-device-xyzzy", &rc);
    assert_int_equal(rc, 1);
    EXPECT_OUTPUT(out, "no-such-device-xyzzy");
    free(out);
    out = cli_run("cache frobnicate", &rc);
    assert_int_equal(rc, 2);
    free(out);
    out = cli_run("cache --help", &rc);
    assert_int_equal(rc, 0);
    EXPECT_OUTPUT(out, "warm");
    free(out);
    env_end(&e);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--warm-child"))
        return warm_child(atoi(argv[2]), atoi(argv[3]));
    ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (l <= 0) {
        fprintf(stderr, "cannot find /proc/self/exe\n");
        return 1;
    }
    self_exe[l] = '\0';
    const char *cd = getenv("CLCNN_CACHE_DIR");
    orig_cache_dir = cd ? strdup(cd) : NULL;
    unsetenv("CLCNN_VERBOSE"); /* keep the test output readable */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_error_has_compiler_log),
        cmocka_unit_test(test_launch_argument_errors),
        cmocka_unit_test(test_disk_round_trip),
        cmocka_unit_test(test_kernel_dir_edits_are_seen),
        cmocka_unit_test(test_corrupted_cache_files_are_rebuilt),
        cmocka_unit_test(test_defines_order_is_one_program),
        cmocka_unit_test(test_two_processes_warm_one_cache),
        cmocka_unit_test(test_warm_reports_failures_and_continues),
        cmocka_unit_test(test_cache_off_writes_nothing),
        cmocka_unit_test(test_cache_dir_resolution),
        cmocka_unit_test(test_unwritable_cache_dir_is_not_fatal),
        cmocka_unit_test(test_profiling_times_launches),
        cmocka_unit_test(test_cli_cache_commands),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(orig_cache_dir);
    return rc;
}
