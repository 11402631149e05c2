/* Convolution tuning database (lib/tune/conv_db.c), its tuner (lib/tune/conv_tune.c) and
 * include/clcnn/tune.h: tuning a shape stores a winner that AUTO then uses (exact batch
 * and another batch), hand-written entries steer AUTO and the results stay correct,
 * CLCNN_TUNE=off ignores the database and refuses to tune, an entry whose algorithm
 * cannot run the shape falls back to the heuristic, malformed entries are
 * CLCNN_ERR_FORMAT naming the file and leave it alone, export/import keep the entries,
 * old GEMM-only files still load and keep their GEMM part when convolution winners are
 * added, and two processes tuning at once both land in the file; kernel parameters:
 * tuning stores the winner's, a hand-written params string is used by the winner (result
 * still correct), an invalid one falls back to the heuristic, $CLCNN_CONV_*_CFG
 * overrides the file and CLCNN_TUNE=off ignores it. No timing assertions: the numbers
 * depend on the machine and its load. */
#include "test_util.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/conv2d_impl.h"
#include "reference_conv.h"
#include "tune/tune_internal.h"

/* The tests write their tuning files in a directory of their own (tu_tune_dir_begin). */
static const char *tune_dir;
static char tune_path[4200];

static int setup(void **state) {
    (void)state;
    tune_dir = tu_tune_dir_begin("conv_tune");
    unsetenv("CLCNN_TUNE");
    clcnn_device *dev = tu_device();
    assert_true(clcnn_tune_file_path(dev, tune_path, sizeof tune_path));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_tune_dir_end();
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    cc_conv_tune_forget(); /* a hand edit is not seen by a running process otherwise */
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The device name as a JSON string (quotes included). */
static char *device_json(void) {
    json_t *s = json_string(clcnn_device_get_info(tu_device())->name);
    char *t = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    assert_non_null(t);
    return t;
}

/* A tuning file for this device with the given conv2d entries ("" for none, NULL for no
 * conv2d section) and optionally a GEMM section. */
static void write_file(const char *path, const char *entries, int with_gemm) {
    char *name = device_json();
    char text[16384];
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": %s,\n"
             " \"platform\": \"p\", \"driver\": \"d\"%s%s%s%s}\n",
             name,
             /* test_tune.c's parameters: CLBlast builds its programs for them once */
             with_gemm ? ",\n \"clblast\": {\"Xgemm\": {\"GEMMK\": 0, \"KREG\": 1, \"KWG\": 16, "
                         "\"KWI\": 2, \"MDIMA\": 8, \"MDIMC\": 8, \"MWG\": 32, \"NDIMB\": 16, "
                         "\"NDIMC\": 8, \"NWG\": 64, \"SA\": 1, \"SB\": 1, \"STRM\": 1, "
                         "\"STRN\": 0, \"VWM\": 2, \"VWN\": 4},\n \"XgemmDirect\": {\"KWID\": 2, "
                         "\"MDIMAD\": 8, \"MDIMCD\": 8, \"NDIMBD\": 8, \"NDIMCD\": 8, \"PADA\": 1, "
                         "\"PADB\": 0, \"VWMD\": 2, \"VWND\": 2, \"WGD\": 16},\n \"GemmRoutine\": "
                         "{\"XGEMM_MIN_INDIRECT_SIZE\": 64}}"
                       : "",
             entries ? ",\n \"conv2d\": [" : "", entries ? entries : "", entries ? "]" : "");
    free(name);
    write_text(path, text);
}

/* One conv2d entry of the test shape family (stride/pad both axes). */
static void entry(char *buf, size_t cap, const char *pass, int n, int c, int hw, int k, int rs,
                  int stride, int pad, const char *algo) {
    snprintf(buf, cap,
             "{\"pass\": \"%s\", \"n\": %d, \"c\": %d, \"h\": %d, \"w\": %d, \"k\": %d, \"r\": %d, "
             "\"s\": %d, \"stride\": [%d, %d], \"pad\": [%d, %d], \"dilation\": [1, 1], "
             "\"groups\": 1, \"algo\": \"%s\", \"ms\": 1.5, \"times_ms\": {\"%s\": 1.5}}",
             pass, n, c, hw, hw, k, rs, rs, stride, stride, pad, pad, algo, algo);
}

static clcnn_conv2d_desc desc(int stride, int pad) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    return d;
}

/* The heuristic's choice (database off). */
static clcnn_conv_algo heuristic(clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                                 const size_t x[4], const size_t w[4]) {
    setenv("CLCNN_TUNE", "off", 1);
    clcnn_conv_algo a;
    int db = -1;
    TU_OK(clcnn_conv2d_algo_choice(tu_device(), pass, d, x, w, &a, &db));
    assert_int_equal(db, 0);
    unsetenv("CLCNN_TUNE");
    return a;
}

/* Counts the progress lines of timed parameter candidates ("<pass> <algo> <digits>..."),
 * in all (count[0]) and per algorithm (count[algo]). */
static void count_candidates(void *user, const char *line) {
    int *count = user;
    const char *sp = strchr(line, ' ');
    const char *algo = sp ? sp + 1 : NULL;
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    if (!sp || sp[1] < '0' || sp[1] > '9' || !strstr(line, " ms (median")) return;
    count[0]++;
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++) {
        const char *name = clcnn_conv_algo_name((clcnn_conv_algo)a);
        if ((size_t)(sp - algo) == strlen(name) && !strncmp(algo, name, strlen(name))) count[a]++;
    }
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_tune_stores_winner_auto_uses_it(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    unlink(tune_path);
    cc_conv_tune_forget();
    const size_t x[4] = {2, 8, 12, 12}, w[4] = {16, 8, 3, 3};
    clcnn_conv2d_desc d = desc(1, 1);
    const clcnn_conv_pass passes[] = {CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_PASS_BACKWARD_FILTER};
    clcnn_conv_algo winners[2];
    char *params[2];
    for (int i = 0; i < 2; i++) {
        clcnn_conv2d_tune_options o = clcnn_conv2d_tune_options_default();
        o.runs = 2;
        o.algo_only = i == 1; /* candidates for forward only: each is a kernel build */
        o.max_candidates = 1; /* of 6: each costs seconds of kernel build */
        int timed_cands[CLCNN_CONV_ALGO_COUNT] = {0};
        o.progress = count_candidates;
        o.user = timed_cands;
        clcnn_conv2d_tune_result r;
        TU_OK(clcnn_conv2d_tune(dev, passes[i], &d, x, w, &o, &r));
        /* direct offers candidates for every pass, at most max_candidates of them are
         * timed per algorithm; --algo-only times none */
        if (i == 0) {
            assert_int_equal(timed_cands[CLCNN_CONV_DIRECT], 1);
            assert_true(timed_cands[0] >= 2); /* winograd and implicit_gemm offer them too */
            for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++)
                assert_true(timed_cands[a] <= 1);
        } else {
            assert_int_equal(timed_cands[0], 0);
        }
        params[i] = strdup(r.params);
        if (i == 1) assert_string_equal(r.params, "");
        if (r.params[0]) { /* AUTO uses the stored parameters */
            clcnn_tensor *tx = tu_tensor_new(CLCNN_F32, 4, x), *tw = tu_tensor_new(CLCNN_F32, 4, w);
            clcnn_tensor *ty = tu_tensor_new(CLCNN_F32, 4, (size_t[]){2, 16, 12, 12});
            TU_OK(clcnn_conv2d_forward(dev, &d, tx, tw, NULL, ty, CLCNN_ACT_NONE));
            clcnn_conv_algo used;
            assert_string_equal(cc_conv_cfg_last(&used), r.params);
            assert_int_equal(used, r.winner);
            clcnn_tensor_free(tx), clcnn_tensor_free(tw), clcnn_tensor_free(ty);
        }
        assert_true(r.winner > CLCNN_CONV_AUTO && r.winner < CLCNN_CONV_ALGO_COUNT);
        assert_true(r.stored);
        assert_int_equal(r.runs, 2);
        assert_true(r.ms[CLCNN_CONV_DIRECT] >= 0);   /* direct runs everything */
        assert_true(r.ms[CLCNN_CONV_DEPTHWISE] < 0); /* not a depthwise layer */
        assert_true(r.ms[0] < 0);
        for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++)
            if (r.ms[a] >= 0) assert_true(r.ms[r.winner] <= r.ms[a]);
        winners[i] = r.winner;
        /* AUTO now uses it, for this batch and (nearest stored batch) for others */
        const size_t x8[4] = {8, 8, 12, 12};
        clcnn_conv_algo a;
        int db = 0;
        TU_OK(clcnn_conv2d_algo_choice(dev, passes[i], &d, x, w, &a, &db));
        assert_int_equal(a, r.winner);
        assert_int_equal(db, 1);
        db = 0;
        TU_OK(clcnn_conv2d_algo_choice(dev, passes[i], &d, x8, w, &a, &db));
        assert_int_equal(a, r.winner);
        assert_int_equal(db, 1);
        /* a forced algorithm stays forced */
        clcnn_conv2d_desc forced = d;
        forced.algo = CLCNN_CONV_GEMM;
        TU_OK(clcnn_conv2d_algo_choice(dev, passes[i], &forced, x, w, &a, &db));
        assert_int_equal(a, CLCNN_CONV_GEMM);
        assert_int_equal(db, 0);
    }
    /* not tuned: the heuristic */
    clcnn_conv_algo a;
    int db = 1;
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_BACKWARD_DATA, &d, x, w, &a, &db));
    assert_int_equal(db, 0);
    /* both entries are in the file, which reads back and shows them */
    cc_conv_entry *e = NULL;
    size_t n = 0;
    json_t *root = json_load_file(tune_path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    TU_OK(cc_conv_entries_parse(json_object_get(root, "conv2d"), tune_path, &e, &n));
    json_decref(root);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        int k = e[i].pass == CLCNN_CONV_PASS_FORWARD ? 0 : 1;
        assert_int_equal(e[i].pass, passes[k]);
        assert_int_equal(e[i].algo, winners[k]);
        assert_int_equal(e[i].n, 2);
        assert_int_equal(e[i].runs, 2);
        assert_true(e[i].times[CLCNN_CONV_DIRECT] >= 0);
        assert_string_equal(e[i].params, params[k]);
    }
    free(e);
    free(params[0]), free(params[1]);
    char *json = NULL;
    TU_OK(clcnn_tune_show(dev, &json));
    assert_non_null(strstr(json, "\"backward_filter\""));
    free(json);
    /* bad arguments */
    clcnn_conv2d_tune_result r;
    assert_int_equal(clcnn_conv2d_tune(dev, (clcnn_conv_pass)7, &d, x, w, NULL, &r),
                     CLCNN_ERR_INVALID_ARG);
    const size_t bad_w[4] = {16, 5, 3, 3};
    assert_int_equal(clcnn_conv2d_tune(dev, CLCNN_CONV_PASS_FORWARD, &d, x, bad_w, NULL, &r),
                     CLCNN_ERR_SHAPE);
    assert_int_equal(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, bad_w, &a, NULL),
                     CLCNN_ERR_SHAPE);
}

/* A hand-written entry naming an algorithm the heuristic would not pick steers AUTO; the
 * AUTO result equals the forced run of that algorithm bit for bit and the direct one
 * within rounding. CLCNN_TUNE=off ignores the entry. */
static void test_hand_written_entry_steers_auto(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const size_t x[4] = {2, 6, 11, 11}, w[4] = {8, 6, 3, 3};
    clcnn_conv2d_desc d = desc(1, 1);
    clcnn_conv_algo heur = heuristic(CLCNN_CONV_PASS_FORWARD, &d, x, w);
    clcnn_conv_algo pick = heur == CLCNN_CONV_GEMM ? CLCNN_CONV_DIRECT : CLCNN_CONV_GEMM;
    char e1[1024], e2[1024], all[2100];
    entry(e1, sizeof e1, "forward", 2, 6, 11, 8, 3, 1, 1, clcnn_conv_algo_name(pick));
    entry(e2, sizeof e2, "backward_data", 2, 6, 11, 8, 3, 1, 1, clcnn_conv_algo_name(pick));
    snprintf(all, sizeof all, "%s,\n%s", e1, e2);
    write_file(tune_path, all, 0);

    clcnn_conv_algo a;
    int db = 0;
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(a, pick);
    assert_int_equal(db, 1);

    /* forward: AUTO == forced pick (bitwise), and close to direct */
    tu_rng rng = tu_rng_seed(11);
    size_t xn = 2 * 6 * 11 * 11, wn = 8 * 6 * 3 * 3, ys[4];
    TU_OK(clcnn_conv2d_output_shape(&d, x, w, ys));
    size_t yn = ys[0] * ys[1] * ys[2] * ys[3];
    float *hx = malloc(xn * sizeof *hx), *hw = malloc(wn * sizeof *hw);
    tu_fill_uniform(&rng, hx, xn, -1, 1);
    tu_fill_uniform(&rng, hw, wn, -1, 1);
    clcnn_tensor *tx = tu_tensor_from(4, x, hx), *tw = tu_tensor_from(4, w, hw);
    clcnn_tensor *ya = tu_tensor_new(CLCNN_F32, 4, ys), *yf = tu_tensor_new(CLCNN_F32, 4, ys);
    clcnn_tensor *yd = tu_tensor_new(CLCNN_F32, 4, ys);
    TU_OK(clcnn_conv2d_forward(dev, &d, tx, tw, NULL, ya, CLCNN_ACT_NONE));
    clcnn_conv2d_desc forced = d;
    forced.algo = pick;
    TU_OK(clcnn_conv2d_forward(dev, &forced, tx, tw, NULL, yf, CLCNN_ACT_NONE));
    forced.algo = CLCNN_CONV_DIRECT;
    TU_OK(clcnn_conv2d_forward(dev, &forced, tx, tw, NULL, yd, CLCNN_ACT_NONE));
    float *ga = tu_download(ya), *gf = tu_download(yf), *gd = tu_download(yd);
    assert_memory_equal(ga, gf, yn * sizeof *ga);
    double *ref = malloc(yn * sizeof *ref);
    for (size_t i = 0; i < yn; i++)
        ref[i] = gd[i];
    /* two float32 algorithms over a 54-term reduction of values in [-1, 1]: both within
     * ~1e-6 of the exact sum, so 1e-5 absolute + 1e-5 relative has room */
    assert_true(tu_close("auto vs direct", ga, ref, yn, 1e-5, 1e-5));

    /* backward data through AUTO runs and agrees with direct */
    clcnn_tensor *dx = tu_tensor_new(CLCNN_F32, 4, x), *dxd = tu_tensor_new(CLCNN_F32, 4, x);
    TU_OK(clcnn_conv2d_backward_data(dev, &d, yd, tw, dx));
    TU_OK(clcnn_conv2d_backward_data(dev, &forced, yd, tw, dxd));
    float *gx = tu_download(dx), *gxd = tu_download(dxd);
    double *refx = malloc(xn * sizeof *refx);
    for (size_t i = 0; i < xn; i++)
        refx[i] = gxd[i];
    /* dy values are up to ~8 in size, reductions of 72 terms */
    assert_true(tu_close("auto vs direct, backward data", gx, refx, xn, 1e-4, 1e-5));

    /* CLCNN_TUNE=off: the heuristic, and tuning refuses */
    setenv("CLCNN_TUNE", "off", 1);
    db = 1;
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(a, heur);
    assert_int_equal(db, 0);
    clcnn_conv2d_tune_result r;
    assert_int_equal(clcnn_conv2d_tune(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, NULL, &r),
                     CLCNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(clcnn_last_error(), "CLCNN_TUNE=off"));
    setenv("CLCNN_TUNE", "exhaustive", 1); /* "exhaustive" uses stored results too */
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(a, pick);
    unsetenv("CLCNN_TUNE");

    free(hx), free(hw), free(ga), free(gf), free(gd), free(ref), free(gx), free(gxd), free(refx);
    clcnn_tensor_free(tx), clcnn_tensor_free(tw), clcnn_tensor_free(ya), clcnn_tensor_free(yf);
    clcnn_tensor_free(yd), clcnn_tensor_free(dx), clcnn_tensor_free(dxd);
}

/* An entry whose algorithm cannot run the shape (winograd on a stride-2 layer, depthwise
 * on a dense one, implicit_gemm's data gradient with stride 2) is ignored. */
static void test_unsupported_entry_falls_back(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    const size_t x[4] = {2, 4, 13, 13}, w[4] = {8, 4, 3, 3};
    clcnn_conv2d_desc d = desc(2, 1);
    char e1[1024], e2[1024], all[2100];
    entry(e1, sizeof e1, "forward", 2, 4, 13, 8, 3, 2, 1, "winograd");
    entry(e2, sizeof e2, "backward_filter", 2, 4, 13, 8, 3, 2, 1, "depthwise");
    snprintf(all, sizeof all, "%s,\n%s", e1, e2);
    write_file(tune_path, all, 0);
    const clcnn_conv_pass passes[] = {CLCNN_CONV_PASS_FORWARD, CLCNN_CONV_PASS_BACKWARD_FILTER};
    for (int i = 0; i < 2; i++) {
        clcnn_conv_algo h = heuristic(passes[i], &d, x, w), a;
        int db = 1;
        TU_OK(clcnn_conv2d_algo_choice(dev, passes[i], &d, x, w, &a, &db));
        assert_int_equal(a, h);
        assert_int_equal(db, 0);
    }
    size_t ys[4];
    TU_OK(clcnn_conv2d_output_shape(&d, x, w, ys));
    clcnn_tensor *tx = tu_tensor_new(CLCNN_F32, 4, x), *tw = tu_tensor_new(CLCNN_F32, 4, w);
    clcnn_tensor *ty = tu_tensor_new(CLCNN_F32, 4, ys);
    TU_OK(clcnn_conv2d_forward(dev, &d, tx, tw, NULL, ty, CLCNN_ACT_NONE));
    TU_OK(clcnn_conv2d_backward_filter(dev, &d, tx, ty, tw, NULL));
    clcnn_tensor_free(tx), clcnn_tensor_free(tw), clcnn_tensor_free(ty);
}

/* Malformed entries: CLCNN_ERR_FORMAT naming the file (and the entry), the file is left
 * as it was by tuning, import refuses it, and AUTO quietly uses the heuristic. */
static void test_malformed_entries(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    char good[1024];
    entry(good, sizeof good, "forward", 2, 8, 12, 16, 3, 1, 1, "direct");
    const char *bad[] = {
        /* unknown algorithm */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"fastest\", \"ms\": 1}",
        /* auto is not a winner */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"auto\", \"ms\": 1}",
        /* negative padding */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [-1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1}",
        /* zero stride */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [0, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1}",
        /* a string for a number */
        "{\"pass\": \"forward\", \"n\": \"2\", \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, "
        "\"r\": 3, \"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], "
        "\"groups\": 1, \"algo\": \"direct\", \"ms\": 1}",
        /* huge */
        "{\"pass\": \"forward\", \"n\": 99999999999, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, "
        "\"r\": 3, \"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], "
        "\"groups\": 1, \"algo\": \"direct\", \"ms\": 1}",
        /* kernel larger than the padded input */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 2, \"w\": 2, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [0, 0], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1}",
        /* groups that do not divide */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 3, "
        "\"algo\": \"direct\", \"ms\": 1}",
        /* negative time, unknown pass, unknown key, bad times_ms, missing member */
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": -1}",
        "{\"pass\": \"sideways\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1}",
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1, \"algorithm\": \"gemm\"}",
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1, \"times_ms\": {\"turbo\": 1}}",
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1], \"pad\": [1, 1], \"dilation\": [1, 1], \"groups\": 1, "
        "\"algo\": \"direct\", \"ms\": 1}",
        "{\"pass\": \"forward\", \"n\": 2, \"c\": 8, \"h\": 12, \"w\": 12, \"k\": 16, \"r\": 3, "
        "\"s\": 3, \"stride\": [1, 1], \"pad\": [1, 1], \"groups\": 1, \"algo\": \"direct\", "
        "\"ms\": 1}",
        "17", NULL, /* duplicate of good (below) */
    };
    const size_t x[4] = {2, 8, 12, 12}, w[4] = {16, 8, 3, 3};
    clcnn_conv2d_desc d = desc(1, 1);
    char import_path[4300];
    snprintf(import_path, sizeof import_path, "%s/import.json", tune_dir);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char all[4200];
        snprintf(all, sizeof all, "%s,\n%s", good, bad[i] ? bad[i] : good);
        write_file(tune_path, all, 1);
        char *before = read_text(tune_path);
        cc_tune_record rec;
        clcnn_status s = cc_tune_record_read(tune_path, &rec);
        if (s != CLCNN_ERR_FORMAT) fprintf(stderr, "bad entry %zu accepted: %s\n", i, all);
        assert_int_equal(s, CLCNN_ERR_FORMAT);
        assert_non_null(strstr(clcnn_last_error(), tune_path));
        assert_non_null(strstr(clcnn_last_error(), "conv2d"));
        char *json = NULL;
        assert_int_equal(clcnn_tune_show(dev, &json), CLCNN_ERR_FORMAT);
        assert_null(json);
        /* tuning does not write over it */
        clcnn_conv2d_tune_options o = clcnn_conv2d_tune_options_default();
        o.runs = 1;
        clcnn_conv2d_tune_result r;
        assert_int_equal(clcnn_conv2d_tune(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &o, &r),
                         CLCNN_ERR_FORMAT);
        assert_non_null(strstr(clcnn_last_error(), tune_path));
        char *after = read_text(tune_path);
        assert_string_equal(before, after);
        /* AUTO: the heuristic, no failure */
        clcnn_conv_algo a;
        int db = 1;
        TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
        assert_int_equal(db, 0);
        /* import refuses it, naming it */
        rename(tune_path, import_path);
        write_file(tune_path, good, 0);
        char *own = read_text(tune_path);
        assert_int_equal(clcnn_tune_import(dev, import_path), CLCNN_ERR_FORMAT);
        assert_non_null(strstr(clcnn_last_error(), import_path));
        char *own_after = read_text(tune_path);
        assert_string_equal(own, own_after);
        free(before), free(after), free(own), free(own_after);
    }
    /* not an array */
    char text[2048];
    char *name = device_json();
    snprintf(text, sizeof text,
             "{\"format\": \"clcnn-tune\", \"version\": 1, \"device\": %s, \"conv2d\": {}}", name);
    free(name);
    write_text(tune_path, text);
    cc_tune_record rec;
    assert_int_equal(cc_tune_record_read(tune_path, &rec), CLCNN_ERR_FORMAT);
    unlink(import_path);
}

/* Export and import keep the convolution entries (and the GEMM part); an old file with
 * only GEMM parameters loads, and adding winners keeps its GEMM part; the GEMM writer
 * keeps the winners. */
static void test_export_import_and_old_files(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    /* old format: GEMM only */
    write_file(tune_path, NULL, 1);
    cc_tune_record rec;
    TU_OK(cc_tune_record_read(tune_path, &rec));
    assert_true(rec.has_xgemm);
    char *json = NULL;
    TU_OK(clcnn_tune_show(dev, &json));
    free(json);
    const size_t x[4] = {1, 3, 9, 9}, w[4] = {4, 3, 3, 3};
    clcnn_conv2d_desc d = desc(1, 0);
    clcnn_conv_algo a;
    int db = 1;
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(db, 0);
    clcnn_conv2d_tune_options o = clcnn_conv2d_tune_options_default();
    o.runs = 1;
    o.algo_only = 1;
    clcnn_conv2d_tune_result r;
    TU_OK(clcnn_conv2d_tune(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &o, &r));
    TU_OK(cc_tune_record_read(tune_path, &rec));
    assert_true(rec.has_xgemm);
    assert_int_equal(rec.xgemm[CC_XG_NWG], 64);
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(db, 1);
    assert_int_equal(a, r.winner);
    /* the GEMM writer keeps the winners */
    rec.before_gflops = 1.0;
    TU_OK(cc_tune_record_write(tune_path, &rec));
    cc_conv_tune_forget();
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(db, 1);

    /* export, remove, import */
    char out[4300];
    snprintf(out, sizeof out, "%s/exported.json", tune_dir);
    TU_OK(clcnn_tune_export(dev, out));
    char *own = read_text(tune_path), *exp = read_text(out);
    assert_string_equal(own, exp);
    assert_non_null(strstr(exp, "\"conv2d\""));
    unlink(tune_path);
    cc_conv_tune_forget();
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(db, 0);
    TU_OK(clcnn_tune_import(dev, out));
    TU_OK(clcnn_conv2d_algo_choice(dev, CLCNN_CONV_PASS_FORWARD, &d, x, w, &a, &db));
    assert_int_equal(db, 1);
    assert_int_equal(a, r.winner);
    char *back = read_text(tune_path);
    assert_string_equal(back, exp);
    free(own), free(exp), free(back);
    unlink(out);
}

/* One entry with a "params" member (NULL: none) for the family of entry(). */
static void entry_params(char *buf, size_t cap, const char *pass, int n, int c, int hw, int k,
                         int rs, int pad, const char *algo, const char *params) {
    char base[1024];
    entry(base, sizeof base, pass, n, c, hw, k, rs, 1, pad, algo);
    base[strlen(base) - 1] = '\0'; /* drop the closing brace */
    snprintf(buf, cap, "%s, \"params\": \"%s\"}", base, params);
}

/* AUTO's forward of x (2, 8, 10, 10) with w (16, 8, 3, 3), pad 1, checked against the
 * double reference; returns the parameters the algorithm reported using. */
static const char *forward_checked(const char *what, clcnn_conv_algo *algo) {
    clcnn_device *dev = tu_device();
    ref_conv rc = {.n = 2,
                   .c = 8,
                   .h = 10,
                   .w = 10,
                   .k = 16,
                   .r = 3,
                   .s = 3,
                   .stride_h = 1,
                   .stride_w = 1,
                   .pad_h = 1,
                   .pad_w = 1,
                   .dilation_h = 1,
                   .dilation_w = 1,
                   .groups = 1};
    assert_true(ref_conv_out(&rc));
    size_t xn = ref_conv_x_size(&rc), wn = ref_conv_w_size(&rc), yn = ref_conv_y_size(&rc);
    tu_rng rng = tu_rng_seed(5);
    float *hx = malloc(xn * sizeof *hx), *hw = malloc(wn * sizeof *hw);
    double *dx = malloc(xn * sizeof *dx), *dw = malloc(wn * sizeof *dw), *ref = malloc(yn * 8);
    tu_fill_uniform(&rng, hx, xn, -1, 1);
    tu_fill_uniform(&rng, hw, wn, -1, 1);
    for (size_t i = 0; i < xn; i++)
        dx[i] = hx[i];
    for (size_t i = 0; i < wn; i++)
        dw[i] = hw[i];
    ref_conv2d_forward(&rc, dx, dw, NULL, 0, 0.0, ref);
    const size_t x[4] = {2, 8, 10, 10}, w[4] = {16, 8, 3, 3}, ys[4] = {2, 16, 10, 10};
    clcnn_tensor *tx = tu_tensor_from(4, x, hx), *tw = tu_tensor_from(4, w, hw);
    clcnn_tensor *ty = tu_tensor_new(CLCNN_F32, 4, ys);
    cc_conv_cfg_used(CLCNN_CONV_AUTO, NULL);
    clcnn_conv2d_desc d = desc(1, 1);
    TU_OK(clcnn_conv2d_forward(dev, &d, tx, tw, NULL, ty, CLCNN_ACT_NONE));
    float *got = tu_download(ty);
    /* float32 sums of 72 products of values in [-1, 1] (any tiling, any order): within
     * ~1e-5 of the exact value */
    assert_true(tu_close(what, got, ref, yn, 1e-4, 1e-4));
    free(hx), free(hw), free(dx), free(dw), free(ref), free(got);
    clcnn_tensor_free(tx), clcnn_tensor_free(tw), clcnn_tensor_free(ty);
    return cc_conv_cfg_last(algo);
}

/* Hand-written parameter strings: the stored winner uses them (results correct), an
 * invalid string falls back to the heuristic, $CLCNN_CONV_DIRECT_CFG overrides the file,
 * CLCNN_TUNE=off ignores it, the backward-data pass of winograd finds its entry by the
 * layer's own geometry, and malformed "params" members make the file invalid. */
static void test_params_in_tuning_file(void **state) {
    (void)state;
    clcnn_device *dev = tu_device();
    clcnn_conv_algo used;
    unsetenv("CLCNN_CONV_DIRECT_CFG");
    char e1[1200], e2[1200], all[2500];
    /* the table would pick 16 x 2 x 16 x 4 for 16 output channels on 10x10 planes */
    entry_params(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, "direct", "8 4 8 4");
    entry_params(e2, sizeof e2, "backward_data", 2, 8, 10, 16, 3, 1, "winograd", "4 8 8 0 0");
    snprintf(all, sizeof all, "%s,\n%s", e1, e2);
    write_file(tune_path, all, 0);
    assert_string_equal(forward_checked("stored params", &used), "8 4 8 4");
    assert_int_equal(used, CLCNN_CONV_DIRECT);

    /* backward data through winograd, keyed by the layer (not the transposed geometry) */
    {
        const size_t x[4] = {2, 8, 10, 10}, w[4] = {16, 8, 3, 3}, ys[4] = {2, 16, 10, 10};
        clcnn_tensor *dy = tu_tensor_new(CLCNN_F32, 4, ys), *tw = tu_tensor_new(CLCNN_F32, 4, w);
        clcnn_tensor *dx = tu_tensor_new(CLCNN_F32, 4, x);
        TU_OK(clcnn_tensor_fill(dy, 0.5f));
        TU_OK(clcnn_tensor_fill(tw, 0.25f));
        clcnn_conv2d_desc d = desc(1, 1);
        TU_OK(clcnn_conv2d_backward_data(dev, &d, dy, tw, dx));
        assert_string_equal(cc_conv_cfg_last(&used), "4 8 8 0 0");
        assert_int_equal(used, CLCNN_CONV_WINOGRAD);
        /* interior elements: 16 channels x 9 taps x 0.5 x 0.25 = 18 */
        float *g = tu_download(dx);
        assert_true(fabsf(g[5 * 10 + 5] - 18.0f) < 1e-4f);
        free(g);
        clcnn_tensor_free(dy), clcnn_tensor_free(tw), clcnn_tensor_free(dx);
    }

    /* the environment variable wins over the file */
    setenv("CLCNN_CONV_DIRECT_CFG", "4 4 8 4", 1);
    assert_string_equal(forward_checked("environment params", &used), "4 4 8 4");
    unsetenv("CLCNN_CONV_DIRECT_CFG");

    /* CLCNN_TUNE=off: neither the winner nor its parameters */
    setenv("CLCNN_TUNE", "off", 1);
    forward_checked("tuning off", &used);
    assert_true(used != CLCNN_CONV_DIRECT || !strcmp(cc_conv_cfg_last(NULL), ""));
    assert_string_equal(cc_conv_cfg_last(NULL), "");
    unsetenv("CLCNN_TUNE");

    /* invalid strings (printable, so the file loads): the heuristic, correct results */
    const char *bad[] = {"0 0 0 0", "16 2 7 4", "8 4 8", "8 4 8 4 9", "tile 8", "-1 2 8 4", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        entry_params(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, "direct", bad[i]);
        write_file(tune_path, e1, 0);
        assert_string_equal(forward_checked(bad[i], &used), "");
        assert_int_equal(used, CLCNN_CONV_DIRECT);
    }

    /* parameters of another algorithm than the one running are not applied: with the
     * winner forced to gemm by the descriptor, direct keeps its table */
    entry_params(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, "gemm", "8 4 8 4");
    write_file(tune_path, e1, 0);
    forward_checked("params of gemm", &used);
    assert_true(used != CLCNN_CONV_DIRECT || !strcmp(cc_conv_cfg_last(NULL), ""));

    /* an old entry without "params" loads with none; malformed ones are rejected */
    const char *members[] = {
        NULL, "1", "\"\\u0001 2\"",
        "\"0123456789012345678901234567890123456789012345678901234567890123\""};
    for (size_t i = 0; i < sizeof members / sizeof *members; i++) {
        char text[1400];
        entry(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, 1, "direct");
        if (members[i]) {
            e1[strlen(e1) - 1] = '\0';
            snprintf(text, sizeof text, "[%s, \"params\": %s}]", e1, members[i]);
        } else {
            snprintf(text, sizeof text, "[%s]", e1);
        }
        json_t *sec = json_loads(text, 0, NULL);
        assert_non_null(sec);
        cc_conv_entry *e = NULL;
        size_t n = 0;
        clcnn_status st = cc_conv_entries_parse(sec, "x.json", &e, &n);
        json_decref(sec);
        if (!members[i]) {
            TU_OK(st);
            assert_int_equal(n, 1);
            assert_string_equal(e[0].params, "");
            free(e);
        } else {
            assert_int_equal(st, CLCNN_ERR_FORMAT);
            assert_non_null(strstr(clcnn_last_error(), "params"));
        }
    }
    unlink(tune_path);
    cc_conv_tune_forget();
}

/* Backward data of x (2, 8, 10, 10), w (16, 8, 3, 3), stride 2, pad 1 (dy 2x16x5x5) with
 * AUTO (tuning file) or algo, checked against the double reference; returns the
 * parameters the algorithm reported using, *out the result (caller frees). */
static const char *data_checked(const char *what, clcnn_conv_algo algo, clcnn_conv_algo *used,
                                float **out) {
    clcnn_device *dev = tu_device();
    ref_conv rc = {.n = 2,
                   .c = 8,
                   .h = 10,
                   .w = 10,
                   .k = 16,
                   .r = 3,
                   .s = 3,
                   .stride_h = 2,
                   .stride_w = 2,
                   .pad_h = 1,
                   .pad_w = 1,
                   .dilation_h = 1,
                   .dilation_w = 1,
                   .groups = 1};
    assert_true(ref_conv_out(&rc));
    size_t xn = ref_conv_x_size(&rc), wn = ref_conv_w_size(&rc), yn = ref_conv_y_size(&rc);
    tu_rng rng = tu_rng_seed(6);
    float *hy = malloc(yn * sizeof *hy), *hw = malloc(wn * sizeof *hw);
    double *dy = malloc(yn * sizeof *dy), *dw = malloc(wn * sizeof *dw), *ref = malloc(xn * 8);
    tu_fill_uniform(&rng, hy, yn, -1, 1);
    tu_fill_uniform(&rng, hw, wn, -1, 1);
    for (size_t i = 0; i < yn; i++)
        dy[i] = hy[i];
    for (size_t i = 0; i < wn; i++)
        dw[i] = hw[i];
    ref_conv2d_backward_data(&rc, dy, dw, ref);
    const size_t x[4] = {2, 8, 10, 10}, w[4] = {16, 8, 3, 3}, ys[4] = {2, 16, 5, 5};
    clcnn_tensor *ty = tu_tensor_from(4, ys, hy), *tw = tu_tensor_from(4, w, hw);
    clcnn_tensor *tx = tu_tensor_new(CLCNN_F32, 4, x);
    cc_conv_cfg_used(CLCNN_CONV_AUTO, NULL);
    clcnn_conv2d_desc d = desc(2, 1);
    d.algo = algo;
    TU_OK(clcnn_conv2d_backward_data(dev, &d, ty, tw, tx));
    float *got = tu_download(tx);
    /* float32 sums of at most 16 * 9 products of values in [-1, 1]: within ~1e-5 */
    assert_true(tu_close(what, got, ref, xn, 1e-4, 1e-4));
    free(hy), free(hw), free(dy), free(dw), free(ref);
    *out = got;
    clcnn_tensor_free(tx), clcnn_tensor_free(tw), clcnn_tensor_free(ty);
    return cc_conv_cfg_last(used);
}

/* implicit_gemm's forward and stride-2 backward data take their parameters from the
 * tuning file (the data pass keyed by the layer, its phase GEMMs all given the string,
 * one GEMM or one per phase), match the double reference and the heuristic's result,
 * and invalid strings fall back to the heuristic. */
static void test_implicit_params_in_tuning_file(void **state) {
    (void)state;
    clcnn_conv_algo used;
    unsetenv("CLCNN_CONV_IMPLICIT_CFG");
    char e1[1200], e2[1200], all[2500];
    const char *fwd = "8 8 8 1024 2 2", *bwd = "4 4 8 16 1 1";
    entry_params(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, "implicit_gemm", fwd);
    entry(e2, sizeof e2, "backward_data", 2, 8, 10, 16, 3, 2, 1, "implicit_gemm");
    e2[strlen(e2) - 1] = '\0';
    snprintf(all, sizeof all, "%s,\n%s, \"params\": \"%s\"}", e1, e2, bwd);
    write_file(tune_path, all, 0);
    assert_string_equal(forward_checked("implicit stored params", &used), fwd);
    assert_int_equal(used, CLCNN_CONV_IMPLICIT_GEMM);

    const char *splits[] = {"0", "1"};
    for (int sp = 0; sp < 2; sp++) {
        setenv("CLCNN_CONV_DGRAD_SPLIT", splits[sp], 1);
        float *a, *h;
        assert_string_equal(data_checked("implicit data params", CLCNN_CONV_AUTO, &used, &a), bwd);
        assert_int_equal(used, CLCNN_CONV_IMPLICIT_GEMM);
        setenv("CLCNN_TUNE", "off", 1);
        assert_string_equal(
            data_checked("implicit data heuristic", CLCNN_CONV_IMPLICIT_GEMM, &used, &h), "");
        unsetenv("CLCNN_TUNE");
        /* the same sums in another tiling: float rounding only */
        for (size_t i = 0; i < 2 * 8 * 10 * 10; i++)
            assert_true(fabsf(a[i] - h[i]) <= 1e-5f + 1e-5f * fabsf(h[i]));
        free(a), free(h);
    }
    unsetenv("CLCNN_CONV_DGRAD_SPLIT");

    /* invalid strings: the heuristic, correct results */
    const char *bad[] = {"8 8 8",           "8 5 4 1024",     "0 16 4 1024",
                         "8 16 4 1024 0 5", "8 16 4 0",       "8 16 4 1024 65",
                         "8 16 4 1024 x",   "8 16 9999 1024", "8 16 4 1024 1 1 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        entry_params(e1, sizeof e1, "forward", 2, 8, 10, 16, 3, 1, "implicit_gemm", bad[i]);
        write_file(tune_path, e1, 0);
        assert_string_equal(forward_checked(bad[i], &used), "");
        assert_int_equal(used, CLCNN_CONV_IMPLICIT_GEMM);
    }
    /* the candidates the tuner times: valid strings, the heuristic not among them */
    const cc_conv cv = {.n = 2,
                        .c = 8,
                        .h = 10,
                        .w = 10,
                        .k = 16,
                        .r = 3,
                        .s = 3,
                        .p = 5,
                        .q = 5,
                        .sh = 2,
                        .sw = 2,
                        .ph = 1,
                        .pw = 1,
                        .dh = 1,
                        .dw = 1,
                        .groups = 1,
                        .cpg = 8,
                        .kpg = 16};
    char c[40][CC_CONV_CFG_MAX];
    int n =
        cc_conv2d_implicit_cfg_candidates(tu_device(), &cv, CLCNN_CONV_PASS_BACKWARD_DATA, 0, c, 6);
    assert_true(n >= 2 && n <= 6);
    assert_true(cc_conv2d_implicit_cfg_candidates(tu_device(), &cv, CLCNN_CONV_PASS_BACKWARD_DATA,
                                                  1, c, 40) > n);
    assert_int_equal(cc_conv2d_implicit_cfg_candidates(tu_device(), &cv,
                                                       CLCNN_CONV_PASS_BACKWARD_FILTER, 0, c, 6),
                     0);
    /* winograd's include the other path on a CPU: the fused kernel (G 0) where the
     * heuristic takes the GEMM path (128 channels), and the GEMM path (G 1) elsewhere */
    for (int big = 0; big < 2; big++) {
        cc_conv wv = cv;
        wv.sh = wv.sw = 1, wv.p = wv.q = 10;
        wv.c = wv.cpg = wv.k = wv.kpg = big ? 128 : 8;
        int nw =
            cc_conv2d_winograd_cfg_candidates(tu_device(), &wv, CLCNN_CONV_PASS_FORWARD, 0, c, 40);
        int other = 0;
        for (int i = 0; i < nw; i++)
            other |= strlen(c[i]) > 2 && !strcmp(c[i] + strlen(c[i]) - 2, big ? " 0" : " 1");
        if (clcnn_device_get_info(tu_device())->type != CLCNN_DEVICE_GPU) assert_true(other);
    }
    unlink(tune_path);
    cc_conv_tune_forget();
}

/* Two `clcnn tune --suite` processes at once, each with its own shapes: both sets of
 * winners end up in the file (the merge happens under a lock). */
static void test_two_processes_merge(void **state) {
    (void)state;
    const char *cli = getenv("CLCNN_CLI");
    if (!cli || access(cli, X_OK) != 0) {
        skip(); /* the command is not built */
    }
    unlink(tune_path);
    cc_conv_tune_forget();
    char sa[4300], sb[4300];
    snprintf(sa, sizeof sa, "%s/a.txt", tune_dir);
    snprintf(sb, sizeof sb, "%s/b.txt", tune_dir);
    FILE *f = fopen(sa, "w");
    fputs("a1 1 4 10 10 8 3 3 1 1\na2 1 4 10 10 8 1 1 1 0\na3 2 4 10 10 8 3 3 2 1\n", f);
    fclose(f);
    f = fopen(sb, "w");
    fputs("b1 1 6 10 10 8 3 3 1 1\nb2 1 6 10 10 8 1 1 1 0\nb3 2 6 10 10 8 3 3 2 1\n", f);
    fclose(f);
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' tune --suite '%s' --op conv2d_fwd,conv2d_bwd_data --runs 1 --algo-only "
             "--quiet >/dev/null & '%s' tune --suite '%s' --op conv2d_fwd,conv2d_bwd_data "
             "--runs 1 --algo-only --quiet >/dev/null 2>&1 & wait",
             cli, sa, cli, sb);
    assert_int_equal(system(cmd), 0);
    json_t *root = json_load_file(tune_path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(root);
    cc_conv_entry *e = NULL;
    size_t n = 0;
    TU_OK(cc_conv_entries_parse(json_object_get(root, "conv2d"), tune_path, &e, &n));
    json_decref(root);
    assert_int_equal(n, 12);
    free(e);
    /* and this process sees them */
    clcnn_conv_algo a;
    int db = 0;
    clcnn_conv2d_desc d = desc(2, 1);
    TU_OK(clcnn_conv2d_algo_choice(tu_device(), CLCNN_CONV_PASS_BACKWARD_DATA, &d,
                                   (size_t[]){2, 6, 10, 10}, (size_t[]){8, 6, 3, 3}, &a, &db));
    assert_int_equal(db, 1);
    unlink(sa);
    unlink(sb);
}

/* The database checks an entry's geometry with its own arithmetic (it calls nothing in
 * lib/ops): it must accept exactly the geometries clcnn_conv2d_output_shape accepts.
 * Seeded sweep over sizes, pads, strides and dilations around the limits (an empty
 * output, a padded input or kernel span over INT_MAX / 2, 2^31 elements in x, w or y). */
static void test_entry_geometry_matches_ops(void **state) {
    (void)state;
    static const long long sizes[] = {1,    2,     3,     5,       7,       64,
                                      1000, 46341, 65536, 1 << 20, 1 << 30, 2147483647};
    static const long long pads[] = {0, 1, 3, 1000, (1 << 29) - 1, 1 << 29, 1 << 30, 2147483647};
    const int ns = (int)(sizeof sizes / sizeof *sizes), np = (int)(sizeof pads / sizeof *pads);
    tu_rng rng = tu_rng_seed(12);
    int accepted = 0, rejected = 0;
    for (int it = 0; it < 20000; it++) {
        long long n = sizes[tu_rng_int(&rng, 0, ns - 1)], h = sizes[tu_rng_int(&rng, 0, ns - 1)];
        long long w = sizes[tu_rng_int(&rng, 0, ns - 1)], r = sizes[tu_rng_int(&rng, 0, 5)];
        long long sk = sizes[tu_rng_int(&rng, 0, 5)];
        int groups = tu_rng_int(&rng, 1, 2);
        long long c = groups * sizes[tu_rng_int(&rng, 0, ns - 2)];
        long long k = groups * sizes[tu_rng_int(&rng, 0, ns - 2)];
        if (it % 2) n = h = w = c = k = tu_rng_int(&rng, 1, 4) * groups; /* small tensors */
        long long ph = pads[tu_rng_int(&rng, 0, np - 1)], pw = pads[tu_rng_int(&rng, 0, 3)];
        long long dh = sizes[tu_rng_int(&rng, 0, ns - 1)], dw = sizes[tu_rng_int(&rng, 0, 2)];
        long long sh = sizes[tu_rng_int(&rng, 0, ns - 1)], sw = sizes[tu_rng_int(&rng, 0, 2)];
        char text[1024];
        snprintf(text, sizeof text,
                 "[{\"pass\": \"forward\", \"n\": %lld, \"c\": %lld, \"h\": %lld, \"w\": %lld, "
                 "\"k\": %lld, \"r\": %lld, \"s\": %lld, \"stride\": [%lld, %lld], "
                 "\"pad\": [%lld, %lld], \"dilation\": [%lld, %lld], \"groups\": %d, "
                 "\"algo\": \"direct\", \"ms\": 1}]",
                 n, c, h, w, k, r, sk, sh, sw, ph, pw, dh, dw, groups);
        json_t *sec = json_loads(text, 0, NULL);
        assert_non_null(sec);
        clcnn_status db = cc_conv_entries_parse(sec, "x.json", NULL, NULL);
        json_decref(sec);
        clcnn_conv2d_desc d = {(int)sh, (int)sw, (int)ph, (int)pw,
                               (int)dh, (int)dw, groups,  CLCNN_CONV_AUTO};
        size_t xs[4] = {(size_t)n, (size_t)c, (size_t)h, (size_t)w};
        size_t ws[4] = {(size_t)k, (size_t)(c / groups), (size_t)r, (size_t)sk}, ys[4];
        clcnn_status ops = clcnn_conv2d_output_shape(&d, xs, ws, ys);
        if ((db == CLCNN_OK) != (ops == CLCNN_OK)) fprintf(stderr, "disagree on %s\n", text);
        assert_int_equal(db == CLCNN_OK, ops == CLCNN_OK);
        if (db != CLCNN_OK) assert_int_equal(db, CLCNN_ERR_FORMAT);
        accepted += db == CLCNN_OK;
        rejected += db != CLCNN_OK;
    }
    assert_true(accepted > 1000 && rejected > 1000); /* the sweep hits both sides */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tune_stores_winner_auto_uses_it),
        cmocka_unit_test(test_hand_written_entry_steers_auto),
        cmocka_unit_test(test_unsupported_entry_falls_back),
        cmocka_unit_test(test_malformed_entries),
        cmocka_unit_test(test_export_import_and_old_files),
        cmocka_unit_test(test_params_in_tuning_file),
        cmocka_unit_test(test_implicit_params_in_tuning_file),
        cmocka_unit_test(test_two_processes_merge),
        cmocka_unit_test(test_entry_geometry_matches_ops),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
