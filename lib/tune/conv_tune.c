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

/* One call, timed on the device between two queue markers (wall clock when the device
 * gives no marker times). */
static clcnn_status timed(clcnn_device *dev, const job *j, double *ms) {
    cl_command_queue q = clcnn_device_queue(dev);
    cl_event m0 = NULL, m1 = NULL;
    CC_TRY(clcnn_device_finish(dev));
    double t0 = cc_now_ms();
    cl_int e0 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m0);
    clcnn_status s = invoke(dev, j);
    cl_int e1 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m1);
    clcnn_status s2 = clcnn_device_finish(dev);
    double t1 = cc_now_ms();
    double span = 0;
    if (e0 == CL_SUCCESS && e1 == CL_SUCCESS) e0 = cc_event_span_ms(m0, m1, &span);
    if (m0) clReleaseEvent(m0);
    if (m1) clReleaseEvent(m1);
    if (s != CLCNN_OK) return s;
    if (s2 != CLCNN_OK) return s2;
    *ms = e0 == CL_SUCCESS && e1 == CL_SUCCESS && span > 0 ? span : t1 - t0;
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
/* With a budget, an algorithm whose ranking call took more than this many times the
 * fastest one's is not timed further (nor its candidates): it cannot win, and on CPUs an
 * untuned CLBlast (gemm) runs 10-30x slower than the best, so timing it dominated Find. */
#define TUNE_PRUNE 4.0

#define TUNE_CANDS 6
#define TUNE_CANDS_EXHAUSTIVE 40
#define TUNE_VARIANTS (CLCNN_CONV_ALGO_COUNT * (TUNE_CANDS_EXHAUSTIVE + 1))

typedef struct variant {
    int algo;
    char cfg[CC_CONV_CFG_MAX]; /* "": the algorithm's heuristic */
    int ok;                    /* ran and agreed with direct */
    double ms;                 /* median time */
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

/* Warm up variant vv (o's warm-up calls) and check its result against the reference (the
 * first variant that runs, direct's heuristic, makes it): vv->ok when it ran and agreed.
 * *unsupported when its algorithm does not run this pass here (heuristic only). Fails
 * only when direct's heuristic fails: no reference. */
static clcnn_status try_variant(clcnn_device *dev, job *j, variant *vv,
                                const clcnn_conv2d_tune_options *o, int warmups, float *ref,
                                float *got, size_t n_out, int *have_ref,
                                clcnn_conv2d_tune_result *r, int *unsupported) {
    const char *pname = clcnn_conv_pass_name(j->pass);
    int a = vv->algo, heuristic = !vv->cfg[0];
    const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a), *vc = vv->cfg;
    clcnn_status e = CLCNN_OK;
    j->d.algo = (clcnn_conv_algo)a;
    force_cfg(dev, a, vc);
    for (int i = 0; e == CLCNN_OK && i < warmups; i++)
        e = invoke(dev, j);
    if (e == CLCNN_OK) e = clcnn_device_finish(dev);
    force_cfg(dev, CLCNN_CONV_AUTO, "");
    vv->ok = 0;
    *unsupported = 0;
    if (e == CLCNN_ERR_UNSUPPORTED && heuristic) {
        progress(o, "%s %s: not supported here (%s)", pname, an, clcnn_last_error());
        *unsupported = 1; /* nor its candidates */
        return CLCNN_OK;
    }
    if (e == CLCNN_OK)
        e = clcnn_tensor_download(j->out, *have_ref ? got : ref, n_out * sizeof *ref);
    if (e != CLCNN_OK) {
        progress(o, "%s %s%s%s: failed: %s", pname, an, vc[0] ? " " : "", vc, clcnn_last_error());
        note_add(r->note, sizeof r->note, "%s failed: %s", an, clcnn_last_error());
        return a == CLCNN_CONV_DIRECT && heuristic ? e : CLCNN_OK; /* no reference: give up */
    }
    if (*have_ref) {
        double err = nmse(got, ref, n_out);
        if (!(err <= TUNE_NMSE_MAX)) {
            char msg[64];
            snprintf(msg, sizeof msg, "%.3g", err);
            progress(o, "%s %s%s%s: WRONG results (normalised squared error %s vs direct)", pname,
                     an, vc[0] ? " " : "", vc, msg);
            note_add(r->note, sizeof r->note, "%s: wrong results (nmse %s vs direct)", an, msg);
            return CLCNN_OK;
        }
    }
    *have_ref = 1;
    vv->ok = 1;
    return CLCNN_OK;
}

/* clcnn_conv2d_tune; file_checked: the caller (Find) has already seen that the tuning
 * file can take the winner. */
static clcnn_status tune_pass(clcnn_device *dev, clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                              const size_t x[4], const size_t w[4],
                              const clcnn_conv2d_tune_options *opt, clcnn_conv2d_tune_result *out,
                              int file_checked) {
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
    /* A winner that cannot be stored fails now, not after minutes of measuring. */
    char path[4200];
    const int store = o.save && clcnn_tune_file_path(dev, path, sizeof path);
    if (store && !file_checked) CC_TRY(cc_conv_db_can_store(dev, path));

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
    double t_start = cc_now_ms();
    /* First every algorithm's heuristic once (warm-up: builds, buffer pool) and its result
     * checked; direct (index 1) runs every pass and shape, and its result is the
     * reference. Then candidate kernel parameters (each one kernel build) the same way:
     * of every algorithm that ran, or with a budget, of the fastest first (one timed call
     * of each heuristic ranks them) until the budget is spent. */
    int nv = 0, heur[CLCNN_CONV_ALGO_COUNT];
    double rank[CLCNN_CONV_ALGO_COUNT];
    for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++) {
        heur[a] = -1;
        rank[a] = INFINITY;
    }
    for (int a = 1; s == CLCNN_OK && a < CLCNN_CONV_ALGO_COUNT; a++) {
        v[nv].algo = a;
        v[nv].cfg[0] = '\0';
        int unsupported = 0;
        s = try_variant(dev, &j, &v[nv], &o, warmups, ref, got, n_out, &have_ref, &r, &unsupported);
        if (unsupported) continue;
        heur[a] = nv++;
        if (s == CLCNN_OK && v[heur[a]].ok && o.budget_s > 0 && !o.algo_only) {
            force_cfg(dev, a, "");
            j.d.algo = (clcnn_conv_algo)a;
            if (timed(dev, &j, &rank[a]) != CLCNN_OK) rank[a] = INFINITY;
            force_cfg(dev, CLCNN_CONV_AUTO, "");
        }
    }
    double fastest = INFINITY;
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++)
        if (rank[a] < fastest) fastest = rank[a];
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++) {
        if (heur[a] < 0 || !v[heur[a]].ok || !(rank[a] > TUNE_PRUNE * fastest)) continue;
        char msg[96];
        snprintf(msg, sizeof msg, "%.3g ms in one call, over %.0fx the fastest", rank[a],
                 TUNE_PRUNE);
        progress(&o, "%s %s: not timed further: %s", pname,
                 clcnn_conv_algo_name((clcnn_conv_algo)a), msg);
        note_add(r.note, sizeof r.note, "%s not timed: %s",
                 clcnn_conv_algo_name((clcnn_conv_algo)a), msg);
        v[heur[a]].ok = 0;
        heur[a] = -1; /* nor its candidates */
    }
    int order[CLCNN_CONV_ALGO_COUNT], no = 0;
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++)
        if (heur[a] >= 0) order[no++] = a;
    for (int i = 1; i < no; i++) /* by rank; stable, so without a budget: table order */
        for (int k = i; k > 0 && rank[order[k]] < rank[order[k - 1]]; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    int out_of_budget = 0;
    for (int oi = 0; s == CLCNN_OK && !o.algo_only && oi < no && !out_of_budget; oi++) {
        int a = order[oi];
        int max = mode == CLCNN_TUNE_EXHAUSTIVE ? TUNE_CANDS_EXHAUSTIVE : TUNE_CANDS;
        if (o.max_candidates > 0 && o.max_candidates < max) max = o.max_candidates;
        int nc = candidates(dev, &cv, pass, a, mode == CLCNN_TUNE_EXHAUSTIVE, cands, max);
        for (int i = 0; s == CLCNN_OK && i < nc && nv < TUNE_VARIANTS; i++) {
            if (o.budget_s > 0 && cc_now_ms() - t_start > o.budget_s * 1e3) {
                progress(&o, "%s: budget of %.1f s spent, no more parameter sets", pname,
                         o.budget_s);
                out_of_budget = 1;
                break;
            }
            v[nv].algo = a;
            memcpy(v[nv].cfg, cands[i], CC_CONV_CFG_MAX);
            int unsupported = 0;
            s = try_variant(dev, &j, &v[nv], &o, warmups, ref, got, n_out, &have_ref, &r,
                            &unsupported);
            nv++;
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
        v[vi].ms = med;
        if (r.ms[a] < 0 || med < r.ms[a]) r.ms[a] = med;
        if (win < 0 || med < win_ms) {
            win = vi;
            win_ms = med;
            r.winner = (clcnn_conv_algo)a;
        }
    }
    if (win >= 0) memcpy(r.params, v[win].cfg, CC_CONV_CFG_MAX);
    r.rule = cc_conv2d_rule_algo(dev, &cv, (int)pass);
    r.rule_ms = heur[r.rule] >= 0 && v[heur[r.rule]].ok ? v[heur[r.rule]].ms : -1.0;
    r.seconds = (cc_now_ms() - t_start) / 1e3;
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

    if (store) {
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

clcnn_status clcnn_conv2d_tune(clcnn_device *dev, clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                               const size_t x[4], const size_t w[4],
                               const clcnn_conv2d_tune_options *opt,
                               clcnn_conv2d_tune_result *out) {
    return tune_pass(dev, pass, d, x, w, opt, out, 0);
}

/* ---- Find --------------------------------------------------------------------------------- */

int clcnn_conv2d_find_enabled(int request) {
    clcnn_tune_mode mode = clcnn_tune_mode_get();
    if (mode == CLCNN_TUNE_OFF || request < 0) return 0;
    return request > 0 || mode == CLCNN_TUNE_FIND;
}

clcnn_status clcnn_conv2d_find(clcnn_device *dev, clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                               const size_t x[4], const size_t w[4],
                               const clcnn_conv2d_tune_options *opt, clcnn_conv2d_tune_result *out,
                               int *measured) {
    const char *op = "conv2d find";
    CC_RETURN_IF(!dev || !d || !x || !w || !measured, CLCNN_ERR_INVALID_ARG, "%s: NULL argument",
                 op);
    *measured = 0;
    CC_RETURN_IF((int)pass < 0 || pass >= CLCNN_CONV_PASS_COUNT, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown pass %d", op, (int)pass);
    size_t ys[4];
    cc_conv cv;
    CC_TRY(cc_conv2d_geometry("conv2d", d, x, w, ys, &cv));
    char path[4200];
    if (clcnn_tune_mode_get() == CLCNN_TUNE_OFF || !clcnn_tune_file_path(dev, path, sizeof path) ||
        cc_conv_db_has_exact(dev, &cv, (int)pass))
        return CLCNN_OK;
    /* Measure only what can be stored: a second process must start tuned, and this one
     * must not measure the same shape again. */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", clcnn_last_error());
    if (cc_conv_db_can_store(dev, path) != CLCNN_OK) {
        if (cc_verbose())
            fprintf(stderr, "clcnn: not measuring convolutions (Find): %s\n", clcnn_last_error());
        if (saved[0])
            cc_fail(CLCNN_ERR_INVALID_ARG, "%s", saved); /* the message as it was */
        else
            clcnn_clear_error();
        return CLCNN_OK;
    }
    clcnn_conv2d_tune_options o = clcnn_conv2d_tune_options_default();
    o.budget_s = CLCNN_FIND_BUDGET;
    const char *env = getenv("CLCNN_FIND_BUDGET");
    if (!opt && env) {
        char *end = NULL;
        double b = strtod(env, &end);
        CC_RETURN_IF(end == env || *end || !(b >= 0 && b <= 1e6), CLCNN_ERR_INVALID_ARG,
                     "%s: CLCNN_FIND_BUDGET is \"%s\", not a number of seconds >= 0", op, env);
        o.budget_s = b;
        o.algo_only = b == 0; /* budget 0 would mean no limit to clcnn_conv2d_tune */
    }
    if (opt) o = *opt;
    o.save = 1;
    clcnn_conv2d_tune_result r;
    CC_TRY(tune_pass(dev, pass, d, x, w, &o, &r, 1)); /* cc_conv_db_can_store above */
    if (cc_verbose())
        fprintf(stderr,
                "clcnn: Find %s n%d c%d %dx%d k%d %dx%d stride %dx%d: %s %.3f ms (rule %s %.3f "
                "ms), %.2f s\n",
                clcnn_conv_pass_name(pass), cv.n, cv.c, cv.h, cv.w, cv.k, cv.r, cv.s, cv.sh, cv.sw,
                clcnn_conv_algo_name(r.winner), r.ms[r.winner], clcnn_conv_algo_name(r.rule),
                r.rule_ms, r.seconds);
    *measured = 1;
    if (out) *out = r;
    return CLCNN_OK;
}
