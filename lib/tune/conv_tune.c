/* The convolution tuner: time every algorithm (and candidate kernel parameters) on one
 * shape and pass through the public entry points of lib/ops, check each result against
 * direct, and store the winner in the device's tuning file through the database
 * (lib/tune/conv_db.c, which also documents the file's "conv2d" section and the lookup
 * that CLCNN_CONV_AUTO makes). */
#include "tune_internal.h"

#include "ops/conv2d_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- timing ------------------------------------------------------------------------------ */

clcnn_conv2d_tune_options clcnn_conv2d_tune_options_default(void) {
    clcnn_conv2d_tune_options o;
    memset(&o, 0, sizeof o);
    o.save = 1;
    o.seed = 1;
    return o;
}

typedef struct job {
    clcnn_conv_pass pass;
    clcnn_conv2d_desc d;
    clcnn_tensor *in0, *in1, *bias, *out; /* see make_tensors */
} job;

static clcnn_status invoke(clcnn_device *dev, const job *j) {
    switch (j->pass) {
    case CLCNN_CONV_PASS_FORWARD: /* in0 x, in1 w, out y */
        return clcnn_conv2d_forward(dev, &j->d, j->in0, j->in1, j->bias, j->out, CLCNN_ACT_NONE);
    case CLCNN_CONV_PASS_BACKWARD_DATA: /* in0 dy, in1 w, out dx */
        return clcnn_conv2d_backward_data(dev, &j->d, j->in0, j->in1, j->out);
    default: /* in0 x, in1 dy, out dw */
        return clcnn_conv2d_backward_filter(dev, &j->d, j->in0, j->in1, j->out, NULL);
    }
}

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One call, timed on the device between two queue markers (wall clock when the device
 * gives no marker times). */
static clcnn_status timed(clcnn_device *dev, const job *j, double *ms) {
    cl_command_queue q = clcnn_device_queue(dev);
    cl_event m0 = NULL, m1 = NULL;
    CC_TRY(clcnn_device_finish(dev));
    double t0 = wall_ms();
    cl_int e0 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m0);
    clcnn_status s = invoke(dev, j);
    cl_int e1 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m1);
    clcnn_status s2 = clcnn_device_finish(dev);
    double t1 = wall_ms();
    cl_ulong start = 0, end = 0;
    if (e0 == CL_SUCCESS)
        e0 = clGetEventProfilingInfo(m0, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (e1 == CL_SUCCESS)
        e1 = clGetEventProfilingInfo(m1, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    if (m0) clReleaseEvent(m0);
    if (m1) clReleaseEvent(m1);
    if (s != CLCNN_OK) return s;
    if (s2 != CLCNN_OK) return s2;
    *ms =
        e0 == CL_SUCCESS && e1 == CL_SUCCESS && end > start ? (double)(end - start) / 1e6 : t1 - t0;
    return CLCNN_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static clcnn_status make(clcnn_device *dev, const size_t *shape, int ndim, uint64_t *rng, int fill,
                         clcnn_tensor **out) {
    clcnn_tensor *t = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, ndim, shape, &t));
    size_t n = clcnn_tensor_numel(t);
    clcnn_status s = CLCNN_OK;
    if (!fill) {
        s = clcnn_tensor_fill(t, 0.0f);
    } else {
        float *h = malloc(n * sizeof *h);
        if (!h) {
            clcnn_tensor_free(t);
            return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "conv2d tune: out of host memory (%zu floats)",
                           n);
        }
        for (size_t i = 0; i < n; i++) {
            *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
            h[i] = (float)(*rng >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
        s = clcnn_tensor_upload(t, h, n * sizeof *h);
        free(h);
    }
    if (s != CLCNN_OK) {
        clcnn_tensor_free(t);
        return s;
    }
    *out = t;
    return CLCNN_OK;
}

static void progress(const clcnn_conv2d_tune_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(const clcnn_conv2d_tune_options *o, const char *fmt, ...) {
    if (!o->progress) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->progress(o->user, line);
}

static void note_add(char *note, size_t cap, const char *fmt, const char *a, const char *b) {
    size_t len = strlen(note);
    if (len + 1 >= cap) return;
    snprintf(note + len, cap - len, "%s", len ? "; " : "");
    len = strlen(note);
    snprintf(note + len, cap - len, fmt, a, b);
}

/* Normalised squared difference of got against ref. */
static double nmse(const float *got, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (!isfinite(num)) return INFINITY;
    return den > 0 ? num / den : num;
}

/* Algorithms that disagree with direct by more than this are not candidates: a wrong
 * result is ~1, float rounding of every algorithm here is below 1e-8 (Winograd's larger
 * error included). */
#define TUNE_NMSE_MAX 1e-5

/* Candidate kernel parameters per algorithm: near the heuristic, more when exhaustive. */
#define TUNE_CANDS 6
#define TUNE_CANDS_EXHAUSTIVE 40
#define TUNE_VARIANTS (CLCNN_CONV_ALGO_COUNT * (TUNE_CANDS_EXHAUSTIVE + 1))

typedef struct variant {
    int algo;
    char cfg[CC_CONV_CFG_MAX]; /* "": the algorithm's heuristic */
    int ok;                    /* ran and agreed with direct */
} variant;

static int candidates(const clcnn_device *dev, const cc_conv *cv, clcnn_conv_pass pass, int algo,
                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    switch (algo) {
    case CLCNN_CONV_DIRECT:
        return cc_conv2d_direct_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_WINOGRAD:
        return cc_conv2d_winograd_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_DEPTHWISE:
        return cc_conv2d_depthwise_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_IMPLICIT_GEMM: /* backward filter is its own kernel (conv2d_wgrad.c) */
        return pass == CLCNN_CONV_PASS_BACKWARD_FILTER
                   ? cc_conv2d_wgrad_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max)
                   : cc_conv2d_implicit_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    default: /* gemm: CLBlast's parameters come from clcnn_gemm_tune */
        return 0;
    }
}

/* Make algo use cfg ("": its heuristic) on dev until the next call; CLCNN_CONV_AUTO
 * stops forcing. */
static void force_cfg(clcnn_device *dev, int algo, const char *cfg) {
    dev->tune_cfg_algo = algo;
    snprintf(dev->tune_cfg, sizeof dev->tune_cfg, "%s", cfg);
}

clcnn_status clcnn_conv2d_tune(clcnn_device *dev, clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                               const size_t x[4], const size_t w[4],
                               const clcnn_conv2d_tune_options *opt,
                               clcnn_conv2d_tune_result *out) {
    const char *op = "conv2d tune";
    CC_RETURN_IF(!dev || !d || !x || !w || !out, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", op);
    CC_RETURN_IF((int)pass < 0 || pass >= CLCNN_CONV_PASS_COUNT, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown pass %d", op, (int)pass);
    clcnn_tune_mode mode = clcnn_tune_mode_get();
    CC_RETURN_IF(mode == CLCNN_TUNE_OFF, CLCNN_ERR_UNSUPPORTED,
                 "tuning is disabled (CLCNN_TUNE=off)");
    clcnn_conv2d_tune_options o = opt ? *opt : clcnn_conv2d_tune_options_default();
    int runs = o.runs > 0 ? o.runs : mode == CLCNN_TUNE_EXHAUSTIVE ? 9 : 3;
    int warmups = mode == CLCNN_TUNE_EXHAUSTIVE ? 2 : 1;
    if (runs > 1000) runs = 1000;
    job j = {.pass = pass, .d = *d};
    j.d.algo = CLCNN_CONV_AUTO;
    size_t ys[4];
    cc_conv cv;
    CC_TRY(cc_conv2d_geometry("conv2d", &j.d, x, w, ys, &cv));

    uint64_t rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;
    clcnn_status s = CLCNN_OK;
    float *ref = NULL, *got = NULL;
    double *samples = NULL;
    variant *v = NULL;
    char(*cands)[CC_CONV_CFG_MAX] = NULL;
    size_t bias_shape[1] = {w[0]};
    switch (pass) {
    case CLCNN_CONV_PASS_FORWARD:
        s = make(dev, x, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, bias_shape, 1, &rng, 1, &j.bias);
        if (s == CLCNN_OK) s = make(dev, ys, 4, &rng, 0, &j.out);
        break;
    case CLCNN_CONV_PASS_BACKWARD_DATA:
        s = make(dev, ys, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, x, 4, &rng, 0, &j.out);
        break;
    default:
        s = make(dev, x, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, ys, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 0, &j.out);
        break;
    }
    size_t n_out = j.out ? clcnn_tensor_numel(j.out) : 0;
    if (s == CLCNN_OK) {
        ref = malloc(n_out * sizeof *ref);
        got = malloc(n_out * sizeof *got);
        samples = malloc((size_t)runs * TUNE_VARIANTS * sizeof *samples);
        v = calloc(TUNE_VARIANTS, sizeof *v);
        cands = calloc(TUNE_CANDS_EXHAUSTIVE, sizeof *cands);
        if (!ref || !got || !samples || !v || !cands)
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory (%zu floats)", op, n_out);
    }

    clcnn_conv2d_tune_result r;
    memset(&r, 0, sizeof r);
    r.winner = CLCNN_CONV_AUTO;
    r.runs = runs;
    for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
        r.ms[a] = -1.0;
    int have_ref = 0;
    const char *pname = clcnn_conv_pass_name(pass);
    /* First every algorithm's heuristic once (warm-up: builds, buffer pool) and its result
     * checked; direct (index 1) runs every pass and shape, and its result is the
     * reference. Then, for each algorithm that ran, its candidate kernel parameters the
     * same way (each one kernel build). */
    int nv = 0;
    for (int a = 1; s == CLCNN_OK && a < CLCNN_CONV_ALGO_COUNT; a++) {
        const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a);
        j.d.algo = (clcnn_conv_algo)a;
        int first = nv;
        v[nv].algo = a;
        v[nv].cfg[0] = '\0';
        nv++;
        if (!o.algo_only && s == CLCNN_OK) {
            char(*c)[CC_CONV_CFG_MAX] = cands;
            int nc = candidates(dev, &cv, pass, a, mode == CLCNN_TUNE_EXHAUSTIVE, c,
                                mode == CLCNN_TUNE_EXHAUSTIVE ? TUNE_CANDS_EXHAUSTIVE : TUNE_CANDS);
            for (int i = 0; i < nc && nv < TUNE_VARIANTS; i++) {
                v[nv].algo = a;
                memcpy(v[nv].cfg, c[i], CC_CONV_CFG_MAX);
                nv++;
            }
        }
        for (int vi = first; vi < nv; vi++) {
            const char *vc = v[vi].cfg;
            clcnn_status e = CLCNN_OK;
            force_cfg(dev, a, vc);
            for (int i = 0; e == CLCNN_OK && i < warmups; i++)
                e = invoke(dev, &j);
            if (e == CLCNN_OK) e = clcnn_device_finish(dev);
            force_cfg(dev, CLCNN_CONV_AUTO, "");
            if (e == CLCNN_ERR_UNSUPPORTED && vi == first) {
                progress(&o, "%s %s: not supported here (%s)", pname, an, clcnn_last_error());
                nv = first; /* nor its candidates */
                break;
            }
            if (e == CLCNN_OK)
                e = clcnn_tensor_download(j.out, have_ref ? got : ref, n_out * sizeof *ref);
            if (e != CLCNN_OK) {
                progress(&o, "%s %s%s%s: failed: %s", pname, an, vc[0] ? " " : "", vc,
                         clcnn_last_error());
                note_add(r.note, sizeof r.note, "%s failed: %s", an, clcnn_last_error());
                if (a == CLCNN_CONV_DIRECT && vi == first) { /* no reference: give up */
                    s = e;
                    break;
                }
                continue;
            }
            if (have_ref) {
                double err = nmse(got, ref, n_out);
                if (!(err <= TUNE_NMSE_MAX)) {
                    char msg[64];
                    snprintf(msg, sizeof msg, "%.3g", err);
                    progress(&o, "%s %s%s%s: WRONG results (normalised squared error %s vs direct)",
                             pname, an, vc[0] ? " " : "", vc, msg);
                    note_add(r.note, sizeof r.note, "%s: wrong results (nmse %s vs direct)", an,
                             msg);
                    continue;
                }
            }
            have_ref = 1;
            v[vi].ok = 1;
        }
    }
    /* Then the timed runs, round robin over the candidates, so a change of machine load
     * during the measurement hits every algorithm alike. */
    for (int i = 0; s == CLCNN_OK && i < runs; i++) {
        for (int vi = 0; vi < nv; vi++) {
            if (!v[vi].ok) continue;
            int a = v[vi].algo;
            j.d.algo = (clcnn_conv_algo)a;
            force_cfg(dev, a, v[vi].cfg);
            clcnn_status e = timed(dev, &j, &samples[(size_t)vi * runs + i]);
            force_cfg(dev, CLCNN_CONV_AUTO, "");
            if (e != CLCNN_OK) {
                const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a);
                progress(&o, "%s %s: failed: %s", pname, an, clcnn_last_error());
                note_add(r.note, sizeof r.note, "%s failed: %s", an, clcnn_last_error());
                v[vi].ok = 0;
            }
        }
    }
    int win = -1;
    double win_ms = INFINITY;
    for (int vi = 0; s == CLCNN_OK && vi < nv; vi++) {
        if (!v[vi].ok) continue;
        int a = v[vi].algo;
        double *t = samples + (size_t)vi * runs;
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
        progress(&o, "%s %s %s: %.3f ms (median of %d, %.3f to %.3f)", pname,
                 clcnn_conv_algo_name((clcnn_conv_algo)a), v[vi].cfg[0] ? v[vi].cfg : "(heuristic)",
                 med, runs, t[0], t[runs - 1]);
        if (r.ms[a] < 0 || med < r.ms[a]) r.ms[a] = med;
        if (win < 0 || med < win_ms) {
            win = vi;
            win_ms = med;
            r.winner = (clcnn_conv_algo)a;
        }
    }
    if (win >= 0) memcpy(r.params, v[win].cfg, CC_CONV_CFG_MAX);
    clcnn_tensor_free(j.in0);
    clcnn_tensor_free(j.in1);
    clcnn_tensor_free(j.bias);
    clcnn_tensor_free(j.out);
    free(ref);
    free(got);
    free(samples);
    free(v);
    free(cands);
    CC_TRY(s);
    CC_RETURN_IF(r.winner == CLCNN_CONV_AUTO, CLCNN_ERR_UNSUPPORTED,
                 "%s: no algorithm ran the %s pass of x %zux%zux%zux%zu, w %zux%zux%zux%zu (%s)",
                 op, pname, x[0], x[1], x[2], x[3], w[0], w[1], w[2], w[3], r.note);

    char path[4200];
    if (o.save && clcnn_tune_file_path(dev, path, sizeof path)) {
        cc_conv_entry e = cc_conv_entry_key(&cv, pass);
        e.algo = r.winner;
        e.ms = r.ms[r.winner];
        e.runs = runs;
        memcpy(e.params, r.params, sizeof e.params);
        for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
            e.times[a] = a == 0 ? -1.0 : r.ms[a];
        CC_TRY(cc_conv_db_store(dev, path, &e));
        r.stored = 1;
    }
    *out = r;
    return CLCNN_OK;
}
