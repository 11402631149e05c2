/* Device measurements and tuning: the measured peak of a device, the GEMM tuner that
 * searches CLBlast's kernel parameters, and the convolution tuner that times every
 * algorithm on a shape and remembers the winner.
 *
 * Tuning results live in one JSON file per device beside the program cache
 * (clcnn_cache_dir()/tune-<hash of device name and driver version>.json, so a new driver
 * starts a new file), written atomically under a lock: two processes tuning at once merge
 * their results. It holds
 *   - CLBlast's GEMM parameters ("clblast"), applied the first time the library calls
 *     CLBlast on a device;
 *   - convolution winners ("conv2d"): for a pass (forward, backward data, backward filter)
 *     and a full geometry (n c h w k r s, stride, padding and dilation per axis, groups),
 *     the fastest algorithm, its kernel parameters ("params": a string in the syntax of
 *     the algorithm's $CLCNN_CONV_<ALGO>_CFG development variable, e.g. "8 2 16 4" for
 *     direct's TILE_K TILE_P VEC TILE_C; "" or absent: the algorithm's heuristic), its
 *     time and the other algorithms' times. CLCNN_CONV_AUTO uses the winner stored for
 *     the exact shape, else for the same shape with another batch size (the nearest),
 *     else the built-in heuristic; a winner that no longer supports the shape is
 *     ignored. The winning algorithm uses the stored parameters (also when the
 *     descriptor forces that algorithm) unless its $CLCNN_CONV_<ALGO>_CFG is set; a
 *     parameter string it does not accept means its heuristic, never a failure. The
 *     file is read once per process (and again after this process rewrites it).
 * So the next process starts tuned.
 *
 * $CLCNN_TUNE: "off" (or "0") applies nothing (GEMM parameters and convolution winners)
 * and refuses to tune; "on" (the default) applies stored results, clcnn_gemm_tune() runs
 * for CLCNN_TUNE_BUDGET_ON seconds and clcnn_conv2d_tune() takes the median of 3 runs;
 * "exhaustive" applies stored results, tunes GEMM for CLCNN_TUNE_BUDGET_EXHAUSTIVE seconds
 * over a larger search space and times convolutions with 9 runs; "find" is "on" plus Find:
 * inference and training plans measure, when they are created, the convolution passes
 * the tuning file does not know (clcnn_conv2d_find) and store the winners. GEMM tuning
 * never starts by itself; convolutions are measured only by Find (CLCNN_TUNE=find or the
 * plans' find option), `clcnn tune --suite NAME` / `--model M`, or clcnn_conv2d_tune(). */
#ifndef CLCNN_TUNE_H
#define CLCNN_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- peak probes ------------------------------------------------------------ */

/* What the device sustains on synthetic kernels (cl/peak.cl). */
typedef struct clcnn_peak {
    double gflops; /* single-precision multiply-add throughput, GFLOP/s (a mad = 2 flops) */
    double gbps;   /* copy bandwidth, GB/s (bytes read + bytes written, 1 GB = 1e9 bytes) */
} clcnn_peak;

/* Measure the peak of the device (first call per physical device in a process: about
 * a second plus the kernel builds) or return the value cached in this process. The
 * kernels run on dev's queue and are not counted by clcnn_device_profile_begin/end. */
CLCNN_API clcnn_status clcnn_device_peak(clcnn_device *dev, clcnn_peak *out);

/* ---- tuning mode -------------------------------------------------------------- */

typedef enum clcnn_tune_mode {
    CLCNN_TUNE_OFF = 0,
    CLCNN_TUNE_ON = 1,
    CLCNN_TUNE_EXHAUSTIVE = 2,
    CLCNN_TUNE_FIND = 3, /* "on", and plans measure the convolutions the file does not know */
} clcnn_tune_mode;

#define CLCNN_TUNE_BUDGET_ON 300.0          /* seconds, default GEMM tuning budget */
#define CLCNN_TUNE_BUDGET_EXHAUSTIVE 1800.0 /* seconds, with CLCNN_TUNE=exhaustive */

/* The mode $CLCNN_TUNE asks for ("off" or "0", "on", "exhaustive", "find"; unset or
 * unknown words: CLCNN_TUNE_ON). */
CLCNN_API clcnn_tune_mode clcnn_tune_mode_get(void);

/* ---- GEMM tuning ------------------------------------------------------------- */

typedef struct clcnn_gemm_tune_options {
    double budget_s; /* wall-clock budget in seconds; <= 0: the mode's default */
    int exhaustive;  /* 1: larger search space (default: from $CLCNN_TUNE) */
    uint64_t seed;   /* random search seed; equal seeds try configurations in equal order */
    int save;        /* 1: store the winner in the device's tuning file (default) */
    /* Called with one line of progress per tried configuration (may be NULL). */
    void (*progress)(void *user, const char *line);
    void *user;
} clcnn_gemm_tune_options;

/* The defaults: budget from $CLCNN_TUNE, seed 1, save on, no progress callback. */
CLCNN_API clcnn_gemm_tune_options clcnn_gemm_tune_options_default(void);

typedef struct clcnn_gemm_tune_result {
    double before_gflops; /* SGEMM 1024^3 with the parameters in force before tuning */
    double after_gflops;  /* ... with the winner (equal to before when nothing beat it) */
    double before_score;  /* geometric mean GFLOPS over the tuning shapes, before */
    double after_score;   /* ... and with the winner */
    double seconds;       /* wall time of the search, builds included */
    int tried;            /* configurations built and timed */
    int failed;           /* configurations the device rejected (build or launch) */
    int improved;         /* 1 when a configuration beat the parameters in force */
    char params[512];     /* the winner, e.g. "Xgemm: GEMMK=0 KREG=1 KWG=16 ..." */
} clcnn_gemm_tune_result;

/* Search CLBlast's SGEMM kernel parameters for this device within the budget (random
 * and greedy search over valid configurations, timed on SGEMM 1024^3 and convolution-
 * like shapes, every candidate's results checked), apply the winner and, with
 * opt->save, store it in the tuning file. opt may be NULL (defaults). When nothing beats
 * the parameters in force, the file is left as it was and its configuration re-applied;
 * without a file, this process keeps the last configuration tried (CLBlast cannot return
 * to its defaults in a running process; the next process starts with them).
 * CLCNN_ERR_UNSUPPORTED when $CLCNN_TUNE is off. */
CLCNN_API clcnn_status clcnn_gemm_tune(clcnn_device *dev, const clcnn_gemm_tune_options *opt,
                                       clcnn_gemm_tune_result *out);

/* ---- convolution algorithm tuning ------------------------------------------------- */

typedef enum clcnn_conv_pass {
    CLCNN_CONV_PASS_FORWARD = 0,         /* clcnn_conv2d_forward */
    CLCNN_CONV_PASS_BACKWARD_DATA = 1,   /* clcnn_conv2d_backward_data */
    CLCNN_CONV_PASS_BACKWARD_FILTER = 2, /* clcnn_conv2d_backward_filter */
    CLCNN_CONV_PASS_COUNT
} clcnn_conv_pass;

/* "forward", "backward_data", "backward_filter" (the tuning file's words); "unknown". */
CLCNN_API const char *clcnn_conv_pass_name(clcnn_conv_pass pass);
/* The pass for one of those words, or -1. */
CLCNN_API int clcnn_conv_pass_parse(const char *name);

typedef struct clcnn_conv2d_tune_options {
    int runs;        /* timed runs per algorithm after the warm-up; <= 0: 3, or 9 with
                        $CLCNN_TUNE=exhaustive */
    int save;        /* 1: store the winner in the device's tuning file (default) */
    uint64_t seed;   /* input data */
    int algo_only;   /* 1: time each algorithm's heuristic kernel parameters only (no
                        parameter candidates: no extra kernel builds) */
    double budget_s; /* > 0: one call of each algorithm's heuristic ranks them; one
                        over 4x the fastest is not timed further; candidate parameter
                        sets, the fastest algorithm's first, are tried only until this
                        many seconds have passed since the start; <= 0: no limit, no
                        ranking (every algorithm timed) */
    /* Called with one line per algorithm and parameter set timed (may be NULL). */
    void (*progress)(void *user, const char *line);
    void *user;
    int max_candidates; /* > 0: at most this many candidate parameter sets per algorithm;
                           <= 0: 6, or 40 with $CLCNN_TUNE=exhaustive */
} clcnn_conv2d_tune_options;

/* runs from $CLCNN_TUNE, save on, seed 1, no progress callback. */
CLCNN_API clcnn_conv2d_tune_options clcnn_conv2d_tune_options_default(void);

typedef struct clcnn_conv2d_tune_result {
    clcnn_conv_algo winner;           /* the fastest algorithm */
    double ms[CLCNN_CONV_ALGO_COUNT]; /* median ms per algorithm; -1: it does not run this
                                         pass on this shape, or failed (see note) */
    int runs;                         /* timed runs per algorithm */
    int stored;                       /* 1 when the winner was written to the tuning file */
    char note[256];                   /* algorithms that failed or computed wrong results */
    char params[64];      /* the winner's kernel parameters ("": its heuristic was fastest) */
    clcnn_conv_algo rule; /* what the built-in rule picks for this shape (never-tuned AUTO) */
    double rule_ms;       /* its median with its heuristic parameters; -1: not timed */
    double seconds;       /* wall time of the whole measurement, kernel builds included */
} clcnn_conv2d_tune_result;

/* Time every algorithm that runs `pass` on the convolution (x: input (n,c,h,w), w:
 * weights (k,c/groups,r,s); d->algo is ignored), each with its heuristic kernel
 * parameters and, unless opt->algo_only, with a few candidate parameter sets near them
 * (direct, winograd, depthwise forward, implicit_gemm, all passes: up to 6 each, up
 * to 40 with $CLCNN_TUNE=exhaustive, at most opt->max_candidates when that is > 0;
 * every set is one more kernel build, 1-20 s on POCL,
 * kept in the program cache), on seeded random tensors it allocates:
 * one warm-up call (two when exhaustive), then the median of opt->runs calls, taken
 * round robin over the algorithms and each measured on the device (queue markers).
 * Every result is compared with the direct algorithm's; one that disagrees is not a
 * candidate. out->ms holds each algorithm's best median, out->params the winner's
 * parameters. $CLCNN_CONV_*_CFG and stored parameters are ignored while tuning. With
 * opt->save the winner and its parameters are merged into dev's tuning file
 * (atomically, under a lock) and used by CLCNN_CONV_AUTO from then on. opt may be NULL.
 * CLCNN_ERR_UNSUPPORTED when $CLCNN_TUNE is off; the shape errors of the convolution
 * itself; CLCNN_ERR_FORMAT when the existing tuning file is invalid (it is left alone:
 * fix or remove it), CLCNN_ERR_IO when it or its directory cannot be written: with
 * opt->save both are found before anything is measured. */
CLCNN_API clcnn_status clcnn_conv2d_tune(clcnn_device *dev, clcnn_conv_pass pass,
                                         const clcnn_conv2d_desc *d, const size_t x[4],
                                         const size_t w[4], const clcnn_conv2d_tune_options *opt,
                                         clcnn_conv2d_tune_result *out);

/* ---- Find: measuring at plan creation ---------------------------------------------- */

/* Seconds of candidate parameter sets Find tries per shape and pass after timing every
 * algorithm's heuristic (clcnn_conv2d_tune_options.budget_s), unless $CLCNN_FIND_BUDGET
 * sets another number of seconds (0: the heuristic parameters only, no candidates). */
#define CLCNN_FIND_BUDGET 1.0

/* Whether plans measure the convolutions their tuning file does not know: request 1 (a
 * plan option asks for it), 0 (as $CLCNN_TUNE says: "find"), -1 (never). Never when
 * $CLCNN_TUNE is off. */
CLCNN_API int clcnn_conv2d_find_enabled(int request);

/* Find for one convolution pass (what plans call at creation when Find is enabled): when
 * dev's tuning file has no entry for exactly this pass, geometry and batch size, time the
 * algorithms as clcnn_conv2d_tune does with budget_s CLCNN_FIND_BUDGET or $CLCNN_FIND_BUDGET
 * (opt NULL; a value that is no number of seconds >= 0 is CLCNN_ERR_INVALID_ARG) and
 * store the winner; *measured = 1 then (out, when non-NULL, gets the result). Nothing is
 * measured (*measured = 0, CLCNN_OK) when the file knows the shape, when $CLCNN_TUNE is
 * off, or when the winner could not be stored: no tuning file (CLCNN_CACHE_DIR=off), or
 * one that is invalid or not writable (left as it is; with $CLCNN_VERBOSE the reason is
 * printed) - AUTO then keeps its rule. Fails with the shape errors of the convolution,
 * or when no algorithm ran it. */
CLCNN_API clcnn_status clcnn_conv2d_find(clcnn_device *dev, clcnn_conv_pass pass,
                                         const clcnn_conv2d_desc *d, const size_t x[4],
                                         const size_t w[4], const clcnn_conv2d_tune_options *opt,
                                         clcnn_conv2d_tune_result *out, int *measured);

/* The algorithm a call of `pass` with descriptor d and these shapes would use: d->algo
 * when forced, else the tuned winner (*from_db = 1), else the heuristic (*from_db = 0).
 * from_db may be NULL. CLCNN_ERR_UNSUPPORTED when a forced algorithm cannot run it. */
CLCNN_API clcnn_status clcnn_conv2d_algo_choice(clcnn_device *dev, clcnn_conv_pass pass,
                                                const clcnn_conv2d_desc *d, const size_t x[4],
                                                const size_t w[4], clcnn_conv_algo *algo,
                                                int *from_db);

/* ---- the tuning file ----------------------------------------------------------- */

/* The path of dev's tuning file, written into buf: in $CLCNN_TUNE_DIR when that is set,
 * else in the program cache's directory. Returns 0 (and buf "") when neither is there
 * (CLCNN_TUNE_DIR unset and CLCNN_CACHE_DIR=off) or the path does not fit. */
CLCNN_API int clcnn_tune_file_path(const clcnn_device *dev, char *buf, size_t cap);

/* Apply the stored parameters of dev's tuning file now (the library also does this by
 * itself before its first GEMM on a device). CLCNN_ERR_NOT_FOUND when there is no
 * file, CLCNN_ERR_FORMAT for a malformed or invalid one (the message names the file
 * and the problem), CLCNN_ERR_UNSUPPORTED when $CLCNN_TUNE is off. */
CLCNN_API clcnn_status clcnn_tune_apply(clcnn_device *dev);

/* The contents of dev's tuning file as JSON text; *json is malloc'd, the caller frees
 * it. CLCNN_ERR_NOT_FOUND when there is none. */
CLCNN_API clcnn_status clcnn_tune_show(clcnn_device *dev, char **json);

/* Copy dev's tuning file (GEMM parameters and convolution winners) to `path` (written
 * atomically). */
CLCNN_API clcnn_status clcnn_tune_export(clcnn_device *dev, const char *path);

/* Validate the tuning file at `path` (format, GEMM parameters, convolution entries, and
 * that it was made for a device of the same name as dev), store it as dev's tuning file
 * (replacing the one there) and apply it: GEMM parameters now, convolution winners from
 * the next AUTO call. */
CLCNN_API clcnn_status clcnn_tune_import(clcnn_device *dev, const char *path);

#ifdef __cplusplus
}
#endif
#endif
