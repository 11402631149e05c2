/* The GEMM tuner: searches CLBlast's SGEMM kernel parameters for the device in hand.
 *
 * CLBlast ships tuned parameters for devices it has seen; for others (POCL's CPU device,
 * new GPUs) its defaults can be several times slower than what the same kernels reach
 * with suitable tile sizes. CLBlastOverrideParameters() lets us set them per device at
 * run time, and CLBlast keys its compiled programs by the parameter values, so every
 * configuration tried is one program build (1-10 s on POCL): the search is a budget of
 * builds, not of timings.
 *
 * Search, all phases within the wall-clock budget:
 *   0. time the parameters in force (CLBlast's defaults in a fresh process);
 *   1. (until half the budget) indirect kernel (Xgemm, 16 parameters, GEMMK 0 and 1): the
 *      stored one, a few seeds known to be good for the device type, then random sampling
 *      mixed with greedy mutation of the best so far; CLBlast is told to always use the
 *      indirect path (XGEMM_MIN_INDIRECT_SIZE = 1);
 *   2. (until 65%) direct kernel (XgemmDirect, 10 parameters) the same way, on the smaller
 *      shapes with the direct path forced;
 *   3. (the rest) XGEMM_MIN_INDIRECT_SIZE from the per-shape times of both winners; the
 *      combination is built, checked against a double-precision host GEMM on odd shapes
 *      and every transpose, and timed again; it is kept only when it beats phase 0.
 * Timings are device-side spans between two queue markers (CLBlast enqueues several
 * kernels per call and returns the event of the last one only), best of 3 runs after a
 * warm-up (best of 7 for SGEMM 1024^3 before and after: the ratio the tuner reports).
 * Each candidate's results are spot-checked against the host; strided-batched GEMMs go
 * through lib/blas.c, which runs the calls CLBlast 1.5.3 gets wrong one item at a time.
 * The value ranges, the random draws and mutations and the seeds: lib/tune/gemm_space.c;
 * the timing and checking of the parameters in force: lib/tune/gemm_measure.c. */
#include "gemm_tune_internal.h"

#include <clblast_c.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A_FLOATS (1u << 20)
#define B_FLOATS (2048u * 1024u)
#define C_FLOATS (4u << 20) /* >= 576*3136*2 (cc_gt_verify) */
#define FORCE_DIRECT 65536  /* XGEMM_MIN_INDIRECT_SIZE that makes every GEMM direct */

static void progress(tuner *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(tuner *t, const char *fmt, ...) {
    if (!t->opt->progress) return;
    char line[1024];
    int pos = snprintf(line, sizeof line, "[%6.1f s] ", cc_gt_now_s() - t->t0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + pos, sizeof line - (size_t)pos, fmt, ap);
    va_end(ap);
    t->opt->progress(t->opt->user, line);
}

static void format_params(char *buf, size_t cap, const char *kernel, const char *const *names,
                          const size_t *v, int count) {
    size_t pos = (size_t)snprintf(buf, cap, "%s:", kernel);
    for (int i = 0; i < count && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, " %s=%zu", names[i], v[i]);
}

/* ---- configurations tried ------------------------------------------------------------ */

static int seen_before(tuner *t, const size_t *v, int count) {
    for (int i = 0; i < t->seen_n; i++)
        if (memcmp(t->seen[i], v, (size_t)count * sizeof *v) == 0) return 1;
    return 0;
}
static void remember(tuner *t, const size_t *v, int count) {
    if (t->seen_n < CC_GT_MAX_TRIED) {
        memset(t->seen[t->seen_n], 0, sizeof t->seen[0]);
        memcpy(t->seen[t->seen_n++], v, (size_t)count * sizeof *v);
    }
}

/* ---- the phases --------------------------------------------------------------------- */

typedef struct best {
    int have;
    size_t v[CC_XG_COUNT];
    double score;
    double gflops[CC_GT_NSHAPES];
} best;

static int time_left(tuner *t, double deadline) {
    double est = t->cost_n ? t->cost_sum / t->cost_n : 10.0;
    return cc_gt_now_s() + est <= t->t0 + deadline;
}

/* Evaluate one candidate (kind 0: Xgemm, 1: XgemmDirect) and update b. */
static void try_candidate(tuner *t, int kind, const size_t *v, best *b, int first, int last) {
    const int count = kind ? CC_XD_COUNT : CC_XG_COUNT;
    const char *kernel = kind ? "XgemmDirect" : "Xgemm";
    const char *const *names = kind ? cc_xgemm_direct_names : cc_xgemm_names;
    const char *why =
        kind ? cc_xgemm_direct_invalid(v, t->dev->info.local_mem_bytes,
                                       t->dev->info.max_work_group_size)
             : cc_xgemm_invalid(v, t->dev->info.local_mem_bytes, t->dev->info.max_work_group_size);
    if (why || seen_before(t, v, count)) return;
    remember(t, v, count);
    char desc[400];
    format_params(desc, sizeof desc, kernel, names, v, count);
    for (int i = 0; i < t->nbad; i++)
        if (!strcmp(t->bad[i], desc)) return; /* crashed an earlier run */
    if (t->journal) {
        FILE *f = fopen(t->trying_path, "w");
        if (f) {
            fprintf(f, "%s\n", desc);
            fclose(f);
        }
    }
    /* said before the build: should the device crash on it, the last line names it */
    progress(t, "trying %s", desc);
    double t0 = cc_gt_now_s(), g[CC_GT_NSHAPES] = {0}, score = 0;
    int poor = 0;
    memset(t->warm, 0, sizeof t->warm);
    double cutoff = b->have ? b->gflops[first] / 2.5 : 0;
    clcnn_status s = cc_gt_override(t, kernel, names, v, count);
    if (s == CLCNN_OK) s = cc_gt_probe(t);
    if (s == CLCNN_OK) s = cc_gt_evaluate(t, first, last, cutoff, g, &score, &poor);
    CLBlastClearCache(); /* one program per candidate: free it */
    if (t->journal) unlink(t->trying_path);
    t->cost_sum += cc_gt_now_s() - t0;
    t->cost_n++;
    t->res->tried++;
    if (s != CLCNN_OK) {
        t->res->failed++;
        clFinish(t->dev->queue);
        progress(t, "  -> rejected: %s", clcnn_last_error());
        clcnn_clear_error();
        return;
    }
    int better = !poor && (!b->have || score > b->score);
    char warm[128];
    size_t wpos = 0;
    for (int i = first; i <= last && wpos < sizeof warm; i++)
        wpos += (size_t)snprintf(warm + wpos, sizeof warm - wpos, "%s%.1f", i > first ? "+" : "",
                                 t->warm[i]);
    progress(t, "  -> %s %.1f GFLOPS, score %.1f (warm-ups %s s)%s", cc_gt_shapes[first].what,
             g[first], score, warm,
             poor     ? " slow, stopped early"
             : better ? " best so far"
                      : "");
    if (better) {
        b->have = 1;
        memset(b->v, 0, sizeof b->v);
        memcpy(b->v, v, (size_t)count * sizeof *v);
        b->score = score;
        memcpy(b->gflops, g, sizeof g);
    }
}

static void search(tuner *t, int kind, best *b, const size_t *stored, double deadline) {
    const int count = kind ? CC_XD_COUNT : CC_XG_COUNT;
    const int first = kind ? 1 : 0, last = CC_GT_NSHAPES - 1;
    const int gpu = t->dev->info.type == CLCNN_DEVICE_GPU;
    if (stored && time_left(t, deadline)) try_candidate(t, kind, stored, b, first, last);
    const size_t *seeds;
    size_t nseeds = cc_gemm_seeds(kind, gpu, &seeds);
    for (size_t i = 0; i < nseeds && time_left(t, deadline); i++)
        try_candidate(t, kind, seeds + i * (size_t)count, b, first, last);
    while (time_left(t, deadline) && t->seen_n < CC_GT_MAX_TRIED) {
        size_t v[CC_XG_COUNT] = {0};
        int found = 0;
        for (int attempt = 0; attempt < 20000 && !found; attempt++) {
            if (b->have && cc_gt_rnd(t) % 100 < 65)
                cc_gemm_mutate(&t->rng, kind, b->v, v);
            else
                cc_gemm_random(&t->rng, kind, t->dev->info.type == CLCNN_DEVICE_CPU,
                               t->opt->exhaustive, v);
            const char *why = kind ? cc_xgemm_direct_invalid(v, t->dev->info.local_mem_bytes,
                                                             t->dev->info.max_work_group_size)
                                   : cc_xgemm_invalid(v, t->dev->info.local_mem_bytes,
                                                      t->dev->info.max_work_group_size);
            found = !why && !seen_before(t, v, count);
        }
        if (!found) break; /* the space is exhausted */
        try_candidate(t, kind, v, b, first, last);
    }
}

/* The XGEMM_MIN_INDIRECT_SIZE that maximises the geometric mean over the shapes: CLBlast
 * takes the direct path when m*n*k < size^3. 1 = always indirect. */
static size_t choose_min_indirect(const best *ind, const best *dir) {
    double cube[CC_GT_NSHAPES];
    for (int i = 0; i < CC_GT_NSHAPES; i++)
        cube[i] =
            cbrt((double)cc_gt_shapes[i].m * (double)cc_gt_shapes[i].n * (double)cc_gt_shapes[i].k);
    size_t best_t = 1;
    double best_s = -1e300;
    /* candidate thresholds: 1, and midway above each shape's size */
    for (int c = -1; c < CC_GT_NSHAPES; c++) {
        double thr = 1;
        if (c >= 0) {
            double above = 1e9;
            for (int i = 0; i < CC_GT_NSHAPES; i++)
                if (cube[i] > cube[c] && cube[i] < above) above = cube[i];
            thr = above < 1e9 ? (cube[c] + above) / 2 : cube[c] + 1;
        }
        double s = 0;
        int ok = 1;
        for (int i = 0; i < CC_GT_NSHAPES; i++) {
            double g = cube[i] < thr ? dir->gflops[i] : ind->gflops[i];
            if (g <= 0)
                ok = 0;
            else
                s += log(g);
        }
        if (ok && s > best_s + 1e-9) {
            best_s = s;
            best_t = (size_t)ceil(thr);
        }
    }
    return best_t;
}

static void strip(char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
}

/* Set up the crash journal beside the tuning file: a configuration that a previous run
 * was trying when the process died (a driver crash on a bad kernel) joins the list of
 * configurations never tried again. */
static void journal_open(tuner *t) {
    char path[4200], dir[4200];
    if (!clcnn_tune_file_path(t->dev, path, sizeof path)) return;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    if (cc_tune_mkdirs(dir) != 0) return;
    t->journal = 1;
    snprintf(t->trying_path, sizeof t->trying_path, "%s.trying", path);
    snprintf(t->crashed_path, sizeof t->crashed_path, "%s.crashed", path);
    char line[400];
    FILE *f = fopen(t->trying_path, "r");
    if (f) {
        if (fgets(line, sizeof line, f)) {
            strip(line);
            FILE *c = fopen(t->crashed_path, "a");
            if (c) {
                fprintf(c, "%s\n", line);
                fclose(c);
            }
            progress(t,
                     "a previous tuning run died while trying %s; it is not tried again "
                     "(list: %s)",
                     line, t->crashed_path);
        }
        fclose(f);
        unlink(t->trying_path);
    }
    f = fopen(t->crashed_path, "r");
    while (f && t->nbad < 64 && fgets(line, sizeof line, f)) {
        strip(line);
        if (line[0]) snprintf(t->bad[t->nbad++], sizeof t->bad[0], "%s", line);
    }
    if (f) fclose(f);
}

clcnn_gemm_tune_options clcnn_gemm_tune_options_default(void) {
    clcnn_gemm_tune_options o;
    memset(&o, 0, sizeof o);
    o.exhaustive = clcnn_tune_mode_get() == CLCNN_TUNE_EXHAUSTIVE;
    o.budget_s = 0;
    o.seed = 1;
    o.save = 1;
    return o;
}

static clcnn_status tune(tuner *t) {
    clcnn_gemm_tune_result *res = t->res;
    double g[CC_GT_NSHAPES] = {0}, score = 0;
    int poor = 0;

    /* 0: the parameters in force */
    progress(t, "timing the parameters in force on %d cc_gt_shapes", CC_GT_NSHAPES);
    t->careful = 1;
    clcnn_status s = cc_gt_evaluate(t, 0, CC_GT_NSHAPES - 1, 0, g, &score, &poor);
    t->careful = 0;
    if (s == CLCNN_ERR_NUMERIC) { /* wrong results: anything that works beats them */
        progress(t, "the parameters in force compute wrong results: %s", clcnn_last_error());
        clcnn_clear_error();
        memset(g, 0, sizeof g);
        score = 0;
    } else if (s != CLCNN_OK) {
        return cc_fail_append(s, " (with the parameters in force, before tuning)");
    } else {
        /* SGEMM 1024^3 once more, a few seconds later: the best of two windows, as the
         * winner gets (its search timing and the final one), so that a busy moment on a
         * shared machine moves neither figure much */
        double g0[CC_GT_NSHAPES] = {0}, sc0;
        t->careful = 1;
        s = cc_gt_evaluate(t, 0, 0, 0, g0, &sc0, &poor);
        t->careful = 0;
        if (s != CLCNN_OK)
            return cc_fail_append(s, " (with the parameters in force, before tuning)");
        if (g0[0] > g[0]) g[0] = g0[0];
        score = cc_gt_geomean(g);
    }
    res->before_gflops = res->after_gflops = g[0];
    res->before_score = res->after_score = score;
    progress(t, "in force: %s %.1f GFLOPS, score %.1f", cc_gt_shapes[0].what, g[0], score);
    double before[CC_GT_NSHAPES];
    memcpy(before, g, sizeof g);

    char path[4200];
    cc_tune_record stored;
    int have_stored = clcnn_tune_file_path(t->dev, path, sizeof path) &&
                      cc_tune_record_read(path, &stored) == CLCNN_OK &&
                      strcmp(stored.device, t->dev->info.name) == 0;
    clcnn_clear_error();

    /* 1: indirect kernel, indirect path forced */
    best ind = {0}, dir = {0};
    CC_TRY(cc_gt_set_min_indirect(t, 1));
    search(t, 0, &ind, have_stored && stored.has_xgemm ? stored.xgemm : NULL, t->budget * 0.5);
    if (!ind.have) {
        progress(t, "no configuration of the indirect kernel was tried or worked");
        if (have_stored && cc_tune_record_apply(t->dev, &stored) != CLCNN_OK) clcnn_clear_error();
        return CLCNN_OK;
    }
    CC_TRY(cc_gt_override(t, "Xgemm", cc_xgemm_names, ind.v, CC_XG_COUNT));

    /* 2: direct kernel, direct path forced */
    t->seen_n = 0;
    /* a direct candidate builds one kernel per transpose case, single and batched (on POCL
     * about 5 times the cost of an indirect one: 86 s against 16 s): start its estimate
     * there; the final check (two more builds and 48 checked products, 60-100 s on a
     * busy 2-core machine) takes the rest */
    if (t->cost_n) {
        t->cost_sum = 5.0 * t->cost_sum / t->cost_n;
        t->cost_n = 1;
    }
    CC_TRY(cc_gt_set_min_indirect(t, FORCE_DIRECT));
    search(t, 1, &dir, have_stored && stored.has_direct ? stored.direct : NULL, t->budget * 0.65);

    /* 3: combine, verify, re-time */
    cc_tune_record rec;
    memset(&rec, 0, sizeof rec);
    cc_tune_record_identify(&rec, t->dev);
    rec.has_xgemm = 1;
    memcpy(rec.xgemm, ind.v, sizeof rec.xgemm);
    rec.has_min_indirect = 1;
    rec.min_indirect = dir.have ? choose_min_indirect(&ind, &dir) : 1;
    if (dir.have && rec.min_indirect > 1) {
        rec.has_direct = 1;
        memcpy(rec.direct, dir.v, sizeof rec.direct);
    }
    /* CLBlast 1.5.3's indirect strided-batched GEMM gets operands it reads in place at
     * an offset or other stride (a transposed, shared A: the weights in backward data)
     * wrong; lib/blas.c runs those calls one item at a time (cc_blas_batched_ok). Should
     * the check still fail (a case that rule misses), raise the threshold so the direct
     * kernel takes those sizes, as with CLBlast's defaults (above 512). */
    static const size_t raise[] = {600, 1100};
    size_t chosen = rec.min_indirect;
    for (int attempt = 0;; attempt++) {
        s = cc_tune_record_apply(t->dev, &rec);
        if (s == CLCNN_OK) s = cc_gt_verify(t);
        if (s != CLCNN_ERR_NUMERIC || attempt >= 2) break;
        size_t next = raise[attempt] > chosen ? raise[attempt] : chosen;
        progress(t, "XGEMM_MIN_INDIRECT_SIZE=%zu fails the final check (%s); trying %zu",
                 rec.min_indirect, clcnn_last_error(), next);
        clcnn_clear_error();
        rec.min_indirect = next;
    }
    if (s == CLCNN_ERR_NUMERIC) { /* wrong results: keep what was in force */
        progress(t, "the winner fails the final check (%s); nothing stored", clcnn_last_error());
        clcnn_clear_error();
        if (have_stored && cc_tune_record_apply(t->dev, &stored) != CLCNN_OK) clcnn_clear_error();
        return CLCNN_OK;
    }
    if (s != CLCNN_OK) return cc_fail_append(s, " (verifying the tuned SGEMM)");
    t->careful = 1;
    s = cc_gt_evaluate(t, 0, CC_GT_NSHAPES - 1, 0, g, &score, &poor);
    t->careful = 0;
    if (s != CLCNN_OK) return cc_fail_append(s, " (timing the tuned SGEMM)");
    /* per shape, the best of this timing and the winner's own in the search (the same
     * kernel and path: direct below the threshold, as CLBlast decides): one busy moment
     * of a shared machine must not throw the search away */
    for (int i = 0; i < CC_GT_NSHAPES; i++) {
        const tshape *sh = &cc_gt_shapes[i];
        const double mi = (double)rec.min_indirect;
        const int direct = (double)sh->m * (double)sh->n * (double)sh->k < mi * mi * mi;
        const double seen = direct ? (dir.have ? dir.gflops[i] : 0) : ind.gflops[i];
        if (seen > g[i]) g[i] = seen;
    }
    score = cc_gt_geomean(g);
    CLBlastClearCache();
    char desc[1024];
    size_t pos = 0;
    format_params(desc, sizeof desc, "Xgemm", cc_xgemm_names, rec.xgemm, CC_XG_COUNT);
    pos = strlen(desc);
    if (rec.has_direct) {
        pos += (size_t)snprintf(desc + pos, sizeof desc - pos, "; ");
        format_params(desc + pos, sizeof desc - pos, "XgemmDirect", cc_xgemm_direct_names,
                      rec.direct, CC_XD_COUNT);
        pos = strlen(desc);
    }
    snprintf(desc + pos, sizeof desc - pos, "; GemmRoutine: XGEMM_MIN_INDIRECT_SIZE=%zu",
             rec.min_indirect);
    progress(t, "best timings (before: in force at the start; after: the search and now):");
    for (int i = 0; i < CC_GT_NSHAPES; i++)
        progress(t, "%-42s before %7.1f  after %7.1f GFLOPS", cc_gt_shapes[i].what, before[i],
                 g[i]);
    if (score <= res->before_score) {
        progress(t,
                 "the winner (score %.1f) does not beat the parameters in force (%.1f); "
                 "nothing stored",
                 score, res->before_score);
        /* CLBlast cannot go back to its defaults in-process; a stored configuration can */
        if (have_stored && cc_tune_record_apply(t->dev, &stored) != CLCNN_OK) clcnn_clear_error();
        return CLCNN_OK;
    }
    res->improved = 1;
    res->after_gflops = g[0];
    res->after_score = score;
    snprintf(res->params, sizeof res->params, "%s", desc);
    if (t->opt->save && clcnn_tune_file_path(t->dev, path, sizeof path)) {
        rec.before_gflops = res->before_gflops;
        rec.after_gflops = res->after_gflops;
        rec.seconds = cc_gt_now_s() - t->t0;
        rec.tried = res->tried;
        CC_TRY(cc_tune_record_write(path, &rec));
        progress(t, "stored in %s", path);
    }
    return CLCNN_OK;
}

clcnn_status clcnn_gemm_tune(clcnn_device *dev, const clcnn_gemm_tune_options *opt,
                             clcnn_gemm_tune_result *out) {
    CC_RETURN_IF(!dev || !out, CLCNN_ERR_INVALID_ARG, "clcnn_gemm_tune: NULL argument");
    clcnn_tune_mode mode = clcnn_tune_mode_get();
    CC_RETURN_IF(mode == CLCNN_TUNE_OFF, CLCNN_ERR_UNSUPPORTED,
                 "tuning is disabled (CLCNN_TUNE=off)");
    clcnn_gemm_tune_options defaults = clcnn_gemm_tune_options_default();
    if (!opt) opt = &defaults;
    tuner *t = calloc(1, sizeof *t);
    CC_RETURN_IF(!t, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory for the GEMM tuner");
    clcnn_gemm_tune_result res;
    memset(&res, 0, sizeof res);
    t->dev = dev;
    t->opt = opt;
    t->res = &res;
    t->rng = opt->seed ? opt->seed * 0x9E3779B97F4A7C15ULL : 0x9E3779B97F4A7C15ULL;
    t->budget = opt->budget_s > 0 ? opt->budget_s
                : opt->exhaustive ? CLCNN_TUNE_BUDGET_EXHAUSTIVE
                                  : CLCNN_TUNE_BUDGET_ON;
    clcnn_status s = CLCNN_OK;
    t->ha = malloc(A_FLOATS * sizeof(float));
    t->hb = malloc(B_FLOATS * sizeof(float));
    t->hc = malloc(C_FLOATS * sizeof(float));
    if (!t->ha || !t->hb || !t->hc)
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory for the GEMM tuner");
    for (size_t i = 0; s == CLCNN_OK && i < B_FLOATS; i++) {
        float x = (float)((cc_gt_rnd(t) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
        if (i < A_FLOATS) t->ha[i] = x;
        t->hb[i] = -x * 0.5f + 0.25f;
    }
    cl_int err = CL_SUCCESS;
    if (s == CLCNN_OK) {
        t->a = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              A_FLOATS * sizeof(float), t->ha, &err);
        if (err == CL_SUCCESS)
            t->b = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                  B_FLOATS * sizeof(float), t->hb, &err);
        if (err == CL_SUCCESS)
            t->c =
                clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, C_FLOATS * sizeof(float), NULL, &err);
        if (err != CL_SUCCESS)
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "cannot allocate the GEMM tuner's buffers (%s)",
                        cc_cl_error_name(err));
    }
    t->t0 = cc_gt_now_s();
    if (s == CLCNN_OK) {
        cc_tune_mark_applied(dev); /* from here on the tuner decides what is in force */
        journal_open(t);
        s = tune(t);
    }
    res.seconds = cc_gt_now_s() - t->t0;
    if (!res.params[0]) snprintf(res.params, sizeof res.params, "(unchanged)");
    if (t->a) clReleaseMemObject(t->a);
    if (t->b) clReleaseMemObject(t->b);
    if (t->c) clReleaseMemObject(t->c);
    free(t->ha);
    free(t->hb);
    free(t->hc);
    free(t);
    if (s == CLCNN_OK) *out = res;
    return s;
}
