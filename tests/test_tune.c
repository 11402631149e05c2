/* Tuning: peak probes, the per-device tuning file (round trip, corrupted and invalid
 * files ignored, import/export), the CLBlast parameter rules, and SGEMM results with
 * tuned parameters applied compared with a double-precision reference.
 * No timing assertions: the numbers depend on the machine and its load. */
#include "test_util.h"

#include <clblast_c.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference_tune.h"
#include "tune/tune_internal.h"

/* Every test that touches tuning files works in its own cache directory, so the shared
 * test cache (and other tests of the suite) never see the files written here. */
static char *cache_dir;

static int setup(void **state) {
    (void)state;
    cache_dir = tu_temp_dir("tune");
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
    unsetenv("CLCNN_TUNE");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
    free(cache_dir);
    tu_close_device();
    return 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A valid configuration unlike CLBlast's defaults, with local memory, strided access and
 * unequal tiles, so a wrong application shows up in the results. */
static const size_t test_xgemm[CC_XG_COUNT] = {
    /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
    0, 1, 16, 2, 8, 8, 32, 16, 8, 64, 1, 1, 1, 0, 2, 4};
/* A GEMMK 1 configuration (2-D register tiling, KREG 8): CLBlast 1.5.3's strided-batched
 * GEMM gets it wrong for k no multiple of 8 and for operands it does not copy at an
 * offset or stride other than its own, which lib/blas.c must route around. */
static const size_t test_xgemm_k1[CC_XG_COUNT] = {
    /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
    1, 8, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 4};
static const size_t test_direct[CC_XD_COUNT] = {
    /* KWID MDIMAD MDIMCD NDIMBD NDIMCD PADA PADB VWMD VWND WGD */
    2, 8, 8, 8, 8, 1, 0, 2, 2, 16};

static cc_tune_record make_record(const clcnn_device *dev) {
    cc_tune_record rec;
    memset(&rec, 0, sizeof rec);
    cc_tune_record_identify(&rec, dev);
    rec.has_xgemm = 1;
    memcpy(rec.xgemm, test_xgemm, sizeof rec.xgemm);
    rec.has_direct = 1;
    memcpy(rec.direct, test_direct, sizeof rec.direct);
    rec.has_min_indirect = 1;
    rec.min_indirect = 64; /* m*n*k < 64^3 takes the direct kernel */
    rec.before_gflops = 20.5;
    rec.after_gflops = 90.25;
    rec.seconds = 123.5;
    rec.tried = 17;
    return rec;
}

/* ---- peak ------------------------------------------------------------------------ */

static void test_peak_is_plausible(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_peak p, again;
    TU_OK(clcnn_device_peak(dev, &p));
    /* any OpenCL device from a phone GPU to a data-centre GPU: 0.1 GFLOPS .. 1 PFLOPS,
     * 0.05 GB/s .. 100 TB/s */
    assert_true(p.gflops > 0.1 && p.gflops < 1e6);
    assert_true(p.gbps > 0.05 && p.gbps < 1e5);
    TU_OK(clcnn_device_peak(dev, &again)); /* cached: the very same numbers */
    assert_true(again.gflops == p.gflops && again.gbps == p.gbps);
    assert_int_equal(clcnn_device_peak(NULL, &p), CLCNN_ERR_INVALID_ARG);
    assert_int_equal(clcnn_device_peak(dev, NULL), CLCNN_ERR_INVALID_ARG);
}

/* ---- parameter rules -------------------------------------------------------------- */

static void test_parameter_rules(void **state) {
    (void)state;
    size_t v[CC_XG_COUNT];
    assert_null(cc_xgemm_invalid(test_xgemm, 32768, 256));
    memcpy(v, test_xgemm, sizeof v);
    v[CC_XG_MWG] = 16; /* still a multiple of MDIMC*VWM = MDIMA*VWM = 16 */
    assert_null(cc_xgemm_invalid(v, 32768, 256));
    v[CC_XG_VWM] = 4; /* MWG 16 % (MDIMC 8 * VWM 4) != 0 */
    assert_non_null(cc_xgemm_invalid(v, 0, 0));
    memcpy(v, test_xgemm, sizeof v);
    v[CC_XG_KWG] = 4; /* KWG % (MDIMC*NDIMC/MDIMA = 8) != 0 */
    assert_non_null(cc_xgemm_invalid(v, 0, 0));
    memcpy(v, test_xgemm, sizeof v);
    v[CC_XG_KWI] = 32; /* KWG 16 % KWI 32 != 0 */
    assert_non_null(cc_xgemm_invalid(v, 0, 0));
    memcpy(v, test_xgemm, sizeof v);
    v[CC_XG_MWG] = 48; /* not a power of two */
    assert_non_null(cc_xgemm_invalid(v, 0, 0));
    memcpy(v, test_xgemm, sizeof v);
    assert_non_null(cc_xgemm_invalid(v, 1024, 0)); /* 4*(16*32+16*64) B > 1 KiB local */
    assert_non_null(cc_xgemm_invalid(v, 0, 32));   /* 64 work-items > 32 */
    /* tiles above 128 computed garbage on POCL */
    memcpy(v, test_xgemm, sizeof v);
    v[CC_XG_MWG] = 256;
    assert_non_null(cc_xgemm_invalid(v, 0, 0));
    /* GEMMK 1 (CLBlast's 2-D register tiling) and its ties */
    size_t k1[CC_XG_COUNT];
    memcpy(k1, test_xgemm_k1, sizeof k1);
    assert_null(cc_xgemm_invalid(k1, 32768, 256));
    k1[CC_XG_NWG] = 32; /* MWG != NWG computed garbage on POCL */
    assert_non_null(cc_xgemm_invalid(k1, 0, 0));
    memcpy(k1, test_xgemm_k1, sizeof k1);
    k1[CC_XG_KWG] = 16; /* GEMMK 1 has no k tile */
    assert_non_null(cc_xgemm_invalid(k1, 0, 0));
    memcpy(k1, test_xgemm_k1, sizeof k1);
    k1[CC_XG_KREG] = 2; /* not a multiple of VWN 4 */
    assert_non_null(cc_xgemm_invalid(k1, 0, 0));
    memcpy(k1, test_xgemm_k1, sizeof k1);
    k1[CC_XG_MDIMA] = 4; /* != MDIMC */
    assert_non_null(cc_xgemm_invalid(k1, 0, 0));
    memcpy(k1, test_xgemm_k1, sizeof k1);
    k1[CC_XG_MDIMC] = k1[CC_XG_MDIMA] = 2; /* 32 rows per work-item crashed POCL */
    assert_non_null(cc_xgemm_invalid(k1, 0, 0));

    size_t d[CC_XD_COUNT];
    assert_null(cc_xgemm_direct_invalid(test_direct, 32768, 256));
    memcpy(d, test_direct, sizeof d);
    d[CC_XD_WGD] = 8; /* WGD 8 % (MDIMCD 8 * VWMD 2) != 0 */
    assert_non_null(cc_xgemm_direct_invalid(d, 0, 0));
    memcpy(d, test_direct, sizeof d);
    d[CC_XD_KWID] = 32; /* > WGD */
    assert_non_null(cc_xgemm_direct_invalid(d, 0, 0));
}

/* ---- the file ----------------------------------------------------------------------- */

static void test_file_round_trip(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char path[4200];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    assert_non_null(strstr(path, cache_dir));
    assert_non_null(strstr(path, "/tune-"));
    unlink(path);
    char *json = NULL;
    assert_int_equal(clcnn_tune_show(dev, &json), CLCNN_ERR_NOT_FOUND);

    /* another tuner's section already in the file survives our write */
    char text[8192];
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"%s\",\n"
             " \"conv2d\": [{\"pass\": \"forward\", \"n\": 1, \"c\": 3, \"h\": 8, \"w\": 8, "
             "\"k\": 4, \"r\": 3, \"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], "
             "\"dilation\": [1, 1], \"groups\": 1, \"algo\": \"winograd\", \"ms\": 1}]}\n",
             clcnn_device_get_info(dev)->name);
    write_text(path, text);

    cc_tune_record rec = make_record(dev), back;
    TU_OK(cc_tune_record_write(path, &rec));
    memset(&back, 0xff, sizeof back);
    TU_OK(cc_tune_record_read(path, &back));
    assert_string_equal(back.device, rec.device);
    assert_string_equal(back.driver, rec.driver);
    assert_int_equal(back.has_xgemm, 1);
    assert_memory_equal(back.xgemm, rec.xgemm, sizeof rec.xgemm);
    assert_int_equal(back.has_direct, 1);
    assert_memory_equal(back.direct, rec.direct, sizeof rec.direct);
    assert_int_equal(back.has_min_indirect, 1);
    assert_int_equal(back.min_indirect, 64);
    assert_true(fabs(back.after_gflops - 90.25) < 1e-9 && back.tried == 17);

    TU_OK(clcnn_tune_show(dev, &json));
    assert_non_null(strstr(json, "\"conv2d\""));
    assert_non_null(strstr(json, "\"XgemmDirect\""));
    free(json);

    /* no temporary files left behind */
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", cache_dir);
    assert_int_not_equal(system(cmd), 0);

    /* a record without the optional kernels */
    rec.has_direct = rec.has_min_indirect = 0;
    TU_OK(cc_tune_record_write(path, &rec));
    TU_OK(cc_tune_record_read(path, &back));
    assert_int_equal(back.has_direct, 0);
    assert_int_equal(back.has_min_indirect, 0);
    unlink(path);
}

static void expect_format_error(const char *path, const char *text, const char *why) {
    write_text(path, text);
    cc_tune_record rec;
    clcnn_clear_error();
    assert_int_equal(cc_tune_record_read(path, &rec), CLCNN_ERR_FORMAT);
    if (!strstr(clcnn_last_error(), path) || !strstr(clcnn_last_error(), why))
        fail_msg("message '%s' should name %s and say '%s'", clcnn_last_error(), path, why);
}

static void test_corrupted_files_are_rejected(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char path[4200], text[4096];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    const char *name = clcnn_device_get_info(dev)->name;

    expect_format_error(path, "{\"format\": \"clcnn-tune\", \"vers", "not valid JSON");
    expect_format_error(path, "", "not valid JSON");
    expect_format_error(path, "[1, 2]", "not a JSON object");
    expect_format_error(path, "{\"format\": \"other\"}", "not a clcnn tuning file");
    snprintf(text, sizeof text, "{\"format\": \"clcnn-tune\", \"version\": 9, \"device\": \"%s\"}",
             name);
    expect_format_error(path, text, "version");
    /* a missing parameter, a string value, and a configuration breaking CLBlast's rules */
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"%s\", \"clblast\": "
             "{\"GemmRoutine\": {}}}",
             name);
    expect_format_error(path, text, "GemmRoutine");
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"%s\", \"clblast\": "
             "{\"GemmRoutine\": {\"XGEMM_MIN_INDIRECT_SIZE\": \"big\"}}}",
             name);
    expect_format_error(path, text, "non-integer");
    /* test_xgemm with KWI 32 > KWG 16 */
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"%s\", \"clblast\": "
             "{\"Xgemm\": {\"GEMMK\": 0, \"KREG\": 1, \"KWG\": 16, \"KWI\": 32, \"MDIMA\": 8, "
             "\"MDIMC\": 8, \"MWG\": 32, \"NDIMB\": 16, \"NDIMC\": 8, \"NWG\": 64, \"SA\": 1, "
             "\"SB\": 1, \"STRM\": 1, \"STRN\": 0, \"VWM\": 2, \"VWN\": 4}}}",
             name);
    expect_format_error(path, text, "KWI");
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"%s\", \"clblast\": "
             "{\"Xtrsm\": {}}}",
             name);
    expect_format_error(path, text, "not a kernel this library tunes");

    /* the public entry reports it; the automatic path ignores it and GEMM still works */
    write_text(path, "this is not json");
    assert_int_equal(clcnn_tune_apply(dev), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), path));
    char *json = NULL;
    assert_int_equal(clcnn_tune_show(dev, &json), CLCNN_ERR_FORMAT);

    /* a file made for another device is not applied */
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": \"Some Other GPU\"}");
    write_text(path, text);
    assert_int_equal(clcnn_tune_apply(dev), CLCNN_ERR_FORMAT);
    assert_non_null(strstr(clcnn_last_error(), "Some Other GPU"));

    /* cc_tune_apply (what lib/blas.c calls) never fails and keeps the caller's message */
    write_text(path, "{ corrupted");
    cc_fail(CLCNN_ERR_SHAPE, "an earlier message");
    cc_tune_apply(dev);
    assert_string_equal(clcnn_last_error(), "an earlier message");
    unlink(path);
}

/* Where the tuning file lives: beside the program cache, or in $CLCNN_TUNE_DIR, which
 * also keeps a tuning file with the disk cache off. */
static void test_tune_dir(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char path[4200], dir[4000];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    assert_true(clcnn_cache_dir(dir, sizeof dir));
    assert_true(strncmp(path, dir, strlen(dir)) == 0 && strstr(path, "/tune-"));
    setenv("CLCNN_TUNE_DIR", "/nonexistent/clcnn-tunes", 1);
    setenv("CLCNN_CACHE_DIR", "off", 1);
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    assert_true(strncmp(path, "/nonexistent/clcnn-tunes/tune-", 30) == 0);
    unsetenv("CLCNN_TUNE_DIR");
    assert_false(clcnn_tune_file_path(dev, path, sizeof path));
    assert_string_equal(path, "");
    setenv("CLCNN_CACHE_DIR", cache_dir, 1);
}

static void test_export_import(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char path[4200], other[4300], foreign[4300];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    snprintf(other, sizeof other, "%s/exported.json", cache_dir);
    snprintf(foreign, sizeof foreign, "%s/foreign.json", cache_dir);
    unlink(path);
    assert_int_equal(clcnn_tune_export(dev, other), CLCNN_ERR_NOT_FOUND);

    cc_tune_record rec = make_record(dev), back;
    TU_OK(cc_tune_record_write(path, &rec));
    TU_OK(clcnn_tune_export(dev, other));
    unlink(path);
    TU_OK(clcnn_tune_import(dev, other)); /* validates, stores, applies */
    TU_OK(cc_tune_record_read(path, &back));
    assert_memory_equal(back.xgemm, rec.xgemm, sizeof rec.xgemm);

    snprintf(rec.device, sizeof rec.device, "Some Other GPU");
    TU_OK(cc_tune_record_write(foreign, &rec));
    assert_int_equal(clcnn_tune_import(dev, foreign), CLCNN_ERR_INVALID_ARG);
    assert_non_null(strstr(clcnn_last_error(), "Some Other GPU"));
    write_text(foreign, "garbage");
    assert_int_equal(clcnn_tune_import(dev, foreign), CLCNN_ERR_FORMAT);
    /* the stored file is still the good one */
    TU_OK(cc_tune_record_read(path, &back));
    assert_string_equal(back.device, clcnn_device_get_info(dev)->name);
    unlink(path);
}

static void test_tune_off(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    setenv("CLCNN_TUNE", "off", 1);
    assert_int_equal(clcnn_tune_mode_get(), CLCNN_TUNE_OFF);
    assert_int_equal(clcnn_tune_apply(dev), CLCNN_ERR_UNSUPPORTED);
    clcnn_gemm_tune_result r;
    assert_int_equal(clcnn_gemm_tune(dev, NULL, &r), CLCNN_ERR_UNSUPPORTED);
    setenv("CLCNN_TUNE", "exhaustive", 1);
    assert_int_equal(clcnn_tune_mode_get(), CLCNN_TUNE_EXHAUSTIVE);
    assert_int_equal(clcnn_gemm_tune_options_default().exhaustive, 1);
    unsetenv("CLCNN_TUNE");
    assert_int_equal(clcnn_tune_mode_get(), CLCNN_TUNE_ON);
}

/* ---- SGEMM with tuned parameters ------------------------------------------------------- */

/* One row-major SGEMM through lib/blas.c (as the ops call it) with buffer offsets,
 * strided-batched when batch > 1 as the convolutions call it (A shared, B and C one matrix
 * per product), compared with the double reference. Tolerance: the worst-case float rounding bound
 * 2 * k * 2^-24 * sum|a*b| per element (+1e-6), so it cannot flake, while a kernel with
 * wrong tiling or padding is off by about sum|a*b| itself. */
static void check_sgemm_at(clcnn_device *dev, tu_rng *rng, int ta, int tb, size_t m, size_t n,
                           size_t k, size_t batch, int offsets) {
    /* with offsets 0 (and aligned sizes) CLBlast's batched GEMM may read the operands in
     * place; at offsets lib/blas.c must not let it (CLBlast 1.5.3 ignores them there) */
    const size_t a_off = offsets ? 3 : 0, b_off = offsets ? 5 : 0, c_off = offsets ? 1 : 0;
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    size_t na = a_off + m * k, nb = b_off + k * n * batch, nc = c_off + m * n * batch;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    double *ref = malloc(m * n * batch * sizeof *ref), *mag = malloc(m * n * batch * sizeof *mag);
    assert_true(a && b && c && ref && mag);
    tu_fill_uniform(rng, a, na, -1, 1);
    tu_fill_uniform(rng, b, nb, -1, 1);
    for (size_t i = 0; i < nc; i++)
        c[i] = 1e30f; /* beta = 0 must ignore what is there */
    clcnn_tensor *ta_t = tu_tensor_from(1, (size_t[]){na}, a);
    clcnn_tensor *tb_t = tu_tensor_from(1, (size_t[]){nb}, b);
    clcnn_tensor *tc_t = tu_tensor_from(1, (size_t[]){nc}, c);
    TU_OK(cc_sgemm_strided_batched(dev, ta, tb, m, n, k, 1.0f, clcnn_tensor_mem(ta_t), a_off, lda,
                                   0, clcnn_tensor_mem(tb_t), b_off, ldb, k * n, 0.0f,
                                   clcnn_tensor_mem(tc_t), c_off, n, m * n, batch));
    float *got = tu_download(tc_t);
    for (size_t bi = 0; bi < batch; bi++)
        ref_sgemm(ta, tb, m, n, k, a + a_off, lda, b + b_off + bi * k * n, ldb, ref + bi * m * n,
                  mag + bi * m * n);
    size_t worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < m * n * batch; i++) {
        double tol = 2.0 * (double)k * 5.96e-8 * mag[i] + 1e-6;
        double excess = fabs((double)got[c_off + i] - ref[i]) - tol;
        if (!(excess <= worst_excess) || isnan(got[c_off + i])) {
            worst_excess = isnan(got[c_off + i]) ? INFINITY : excess;
            worst = i;
        }
    }
    if (worst_excess > 0)
        fail_msg("SGEMM %s%s m=%zu n=%zu k=%zu batch=%zu: C[%zu][%zu][%zu] = %g, reference %g "
                 "(tolerance %g)",
                 ta ? "T" : "N", tb ? "T" : "N", m, n, k, batch, worst / (m * n),
                 worst % (m * n) / n, worst % n, (double)got[c_off + worst], ref[worst],
                 2.0 * (double)k * 5.96e-8 * mag[worst] + 1e-6);
    if (c_off) assert_true(got[0] == 1e30f); /* the element before C's offset is untouched */
    free(got);
    clcnn_tensor_free(ta_t);
    clcnn_tensor_free(tb_t);
    clcnn_tensor_free(tc_t);
    free(a);
    free(b);
    free(c);
    free(ref);
    free(mag);
}

static void check_sgemm(clcnn_device *dev, tu_rng *rng, int ta, int tb, size_t m, size_t n,
                        size_t k, size_t batch) {
    check_sgemm_at(dev, rng, ta, tb, m, n, k, batch, 1);
    if (batch > 1) check_sgemm_at(dev, rng, ta, tb, m, n, k, batch, 0);
}

static void test_tuned_sgemm_is_correct(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    tu_rng rng = tu_rng_seed(20240611);
    /* the tuning file is applied by lib/blas.c before the first GEMM of the device */
    char path[4200];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    cc_tune_record rec = make_record(dev);
    TU_OK(cc_tune_record_write(path, &rec));
    TU_OK(clcnn_tune_apply(dev)); /* explicitly too: the automatic path may have run */
    /* direct kernel (m*n*k < 64^3) and indirect kernel (with padding: no size is a
     * multiple of the 32x64x16 tiles), every transpose, batch 1 and odd sizes */
    check_sgemm(dev, &rng, 0, 0, 67, 45, 37, 1);
    check_sgemm(dev, &rng, 1, 1, 1, 31, 7, 1);
    check_sgemm(dev, &rng, 0, 0, 129, 257, 65, 1);
    check_sgemm(dev, &rng, 0, 1, 100, 70, 300, 1);
    check_sgemm(dev, &rng, 1, 0, 33, 200, 129, 1);
    /* strided-batched, as the convolutions issue them (CLBlast has kernels of its own) */
    check_sgemm(dev, &rng, 0, 0, 19, 40, 27, 3);
    check_sgemm(dev, &rng, 0, 0, 64, 196, 72, 2);
    check_sgemm(dev, &rng, 1, 0, 72, 196, 64, 2);
    check_sgemm(dev, &rng, 0, 1, 64, 72, 196, 2);
    check_sgemm(dev, &rng, 0, 0, 64, 128, 64, 2); /* multiples of every tile: no copies */
    unlink(path);
    /* the first call of each routine ran under a lock in the cache directory (lib/blas.c),
     * so that processes starting together compile CLBlast's program once */
    DIR *d = opendir(cache_dir);
    assert_non_null(d);
    int locks = 0;
    for (struct dirent *e; (e = readdir(d));)
        locks += strlen(e->d_name) == 29 && !strcmp(e->d_name + 16, ".clblast.lock");
    closedir(d);
    assert_true(locks >= 1);
}

/* lib/blas.c's rule for CLBlast 1.5.3's strided-batched GEMM, on a made-up device id:
 * which calls it may hand to CLBlast with the parameters in force. */
static void test_batched_rule(void **state) {
    (void)state;
    cl_device_id id = (cl_device_id)(uintptr_t)0x5eed;
    /* nothing noted: CLBlast's defaults, GEMMK 0 with unknown tiles */
    assert_true(cc_blas_batched_ok(id, 0, 0, 64, 196, 576, 0, 576, 0, 0, 196, 196 * 576, 0, 196,
                                   64 * 196)); /* forward convolution: A shared, copied */
    assert_false(cc_blas_batched_ok(id, 0, 0, 64, 196, 576, 0, 576, 0, 8, 196, 196 * 576, 0, 196,
                                    64 * 196)); /* B at an offset: may be read in place */
    assert_false(cc_blas_batched_ok(id, 1, 0, 64, 196, 576, 0, 64, 0, 0, 196, 196 * 576, 0, 196,
                                    64 * 196));    /* transposed A, shared */
    cc_blas_xgemm_shape k1 = {1, 64, 64, 1, 8, 8}; /* GEMMK MWG NWG KWG KREG VWM */
    cc_blas_note_xgemm(id, &k1);
    cc_blas_note_min_indirect(id, 1);
    /* k no multiple of KREG: the GEMMK 1 kernel reads past A and B (NaN) */
    assert_false(cc_blas_batched_ok(id, 0, 0, 100, 100, 100, 0, 100, 100 * 100, 0, 100, 100 * 100,
                                    0, 100, 100 * 100));
    assert_true(cc_blas_batched_ok(id, 0, 0, 100, 100, 104, 0, 104, 100 * 104, 0, 100, 100 * 104, 0,
                                   100, 100 * 100));
    /* aligned sizes: A, B and C read in place, so shared A or C at an offset are wrong */
    assert_true(cc_blas_batched_ok(id, 0, 0, 128, 128, 128, 0, 128, 128 * 128, 0, 128, 128 * 128, 0,
                                   128, 128 * 128));
    assert_false(cc_blas_batched_ok(id, 0, 0, 128, 128, 128, 0, 128, 0, 0, 128, 128 * 128, 0, 128,
                                    128 * 128));
    assert_false(cc_blas_batched_ok(id, 0, 0, 128, 128, 128, 0, 128, 128 * 128, 0, 128, 128 * 128,
                                    7, 128, 128 * 128));
    /* m no multiple of MWG: A and C go through padded copies, which honour both */
    assert_true(cc_blas_batched_ok(id, 0, 0, 100, 128, 128, 0, 128, 0, 0, 128, 128 * 128, 7, 128,
                                   100 * 128));
    /* below XGEMM_MIN_INDIRECT_SIZE^3 the direct kernel runs: anything goes */
    cc_blas_note_min_indirect(id, 200);
    assert_true(cc_blas_batched_ok(id, 0, 0, 100, 100, 100, 0, 100, 0, 3, 100, 100 * 100, 7, 100,
                                   100 * 100));
    cc_blas_note_xgemm(id, NULL);
}

/* A GEMMK 1 configuration in force: every GEMM through lib/blas.c right, the strided-
 * batched ones CLBlast 1.5.3 gets wrong with it (k no multiple of KREG, shared A or C at
 * an offset read in place) included. */
static void test_gemmk1_sgemm_is_correct(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    tu_rng rng = tu_rng_seed(20261125);
    cc_tune_record rec = make_record(dev);
    memcpy(rec.xgemm, test_xgemm_k1, sizeof rec.xgemm);
    rec.min_indirect = 1; /* always the indirect kernel */
    cc_tune_mark_applied(dev);
    TU_OK(cc_tune_record_apply(dev, &rec));
    check_sgemm(dev, &rng, 0, 0, 67, 45, 37, 1);
    check_sgemm(dev, &rng, 1, 1, 129, 257, 65, 1);
    for (int tr = 0; tr < 4; tr++) {
        check_sgemm(dev, &rng, tr & 1, tr >> 1, 67, 45, 37, 3);    /* k 37: NaN in CLBlast */
        check_sgemm(dev, &rng, tr & 1, tr >> 1, 128, 128, 100, 2); /* k 100 */
        check_sgemm(dev, &rng, tr & 1, tr >> 1, 128, 128, 128, 2); /* in place */
    }
    check_sgemm(dev, &rng, 0, 0, 64, 196, 576, 2); /* VGG forward: k 576 = 72 * 8 */
    check_sgemm(dev, &rng, 1, 0, 576, 196, 64, 2); /* its backward data */
    check_sgemm(dev, &rng, 0, 1, 64, 576, 196, 2); /* its weight gradient */
    /* back to the GEMMK 0 test configuration (CLBlast cannot return to its defaults) */
    rec = make_record(dev);
    TU_OK(cc_tune_record_apply(dev, &rec));
}

/* The tuner with a budget too small to try anything: measures what is in force, stores
 * nothing, fails on nothing, and files away a configuration a crashed run left behind. */
static void test_tuner_tiny_budget(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char path[4200];
    assert_true(clcnn_tune_file_path(dev, path, sizeof path));
    unlink(path);
    /* a previous run that died on a configuration left it in the journal */
    char trying[4300], crashed[4300];
    snprintf(trying, sizeof trying, "%s.trying", path);
    snprintf(crashed, sizeof crashed, "%s.crashed", path);
    unlink(crashed);
    write_text(trying, "Xgemm: GEMMK=9 (crashed)\n");
    clcnn_gemm_tune_options opt = clcnn_gemm_tune_options_default();
    opt.budget_s = 0.001;
    clcnn_gemm_tune_result r;
    TU_OK(clcnn_gemm_tune(dev, &opt, &r));
    assert_true(r.before_gflops > 0 && r.before_score > 0);
    assert_int_equal(r.improved, 0);
    assert_int_equal(r.tried, 0);
    assert_int_equal(access(path, F_OK), -1);
    /* ... and it moved to the list of configurations never tried again */
    assert_int_equal(access(trying, F_OK), -1);
    FILE *f = fopen(crashed, "r");
    assert_non_null(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "Xgemm: GEMMK=9 (crashed)\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peak_is_plausible),
        cmocka_unit_test(test_parameter_rules),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_corrupted_files_are_rejected),
        cmocka_unit_test(test_tune_dir),
        cmocka_unit_test(test_export_import),
        cmocka_unit_test(test_tune_off),
        cmocka_unit_test(test_tuned_sgemm_is_correct),
        cmocka_unit_test(test_batched_rule),
        cmocka_unit_test(test_gemmk1_sgemm_is_correct),
        cmocka_unit_test(test_tuner_tiny_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
