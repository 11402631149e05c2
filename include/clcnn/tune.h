/* Device measurements and tuning: the measured peak of a device, and the GEMM tuner
 * that searches CLBlast's kernel parameters for the device in hand.
 *
 * Tuning results live in one JSON file per device beside the program cache
 * (clcnn_cache_dir()/tune-<hash of device name and driver version>.json), written
 * atomically. The library applies the stored GEMM parameters the first time it calls
 * CLBlast on a device, so the next process starts tuned.
 *
 * $CLCNN_TUNE: "off" (or "0") applies nothing and refuses to tune; "on" (the default)
 * applies stored results, and clcnn_gemm_tune() runs for CLCNN_TUNE_BUDGET_ON seconds;
 * "exhaustive" applies stored results and tunes for CLCNN_TUNE_BUDGET_EXHAUSTIVE seconds
 * over a larger search space. Tuning never starts by itself: run `clcnn tune` (or call
 * clcnn_gemm_tune()) once per device. */
#ifndef CLCNN_TUNE_H
#define CLCNN_TUNE_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"

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
} clcnn_tune_mode;

#define CLCNN_TUNE_BUDGET_ON 300.0          /* seconds, default GEMM tuning budget */
#define CLCNN_TUNE_BUDGET_EXHAUSTIVE 1800.0 /* seconds, with CLCNN_TUNE=exhaustive */

/* The mode $CLCNN_TUNE asks for (unset or unknown words: CLCNN_TUNE_ON). */
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

/* ---- the tuning file ----------------------------------------------------------- */

/* The path of dev's tuning file, written into buf. Returns 0 (and buf "") when the
 * disk cache is disabled (CLCNN_CACHE_DIR=off). */
CLCNN_API int clcnn_tune_file_path(const clcnn_device *dev, char *buf, size_t cap);

/* Apply the stored parameters of dev's tuning file now (the library also does this by
 * itself before its first GEMM on a device). CLCNN_ERR_NOT_FOUND when there is no
 * file, CLCNN_ERR_FORMAT for a malformed or invalid one (the message names the file
 * and the problem), CLCNN_ERR_UNSUPPORTED when $CLCNN_TUNE is off. */
CLCNN_API clcnn_status clcnn_tune_apply(clcnn_device *dev);

/* The contents of dev's tuning file as JSON text; *json is malloc'd, the caller frees
 * it. CLCNN_ERR_NOT_FOUND when there is none. */
CLCNN_API clcnn_status clcnn_tune_show(clcnn_device *dev, char **json);

/* Copy dev's tuning file to `path` (written atomically). */
CLCNN_API clcnn_status clcnn_tune_export(clcnn_device *dev, const char *path);

/* Validate the tuning file at `path` (format, parameters, and that it was made for a
 * device of the same name as dev), store it as dev's tuning file and apply it. */
CLCNN_API clcnn_status clcnn_tune_import(clcnn_device *dev, const char *path);

#ifdef __cplusplus
}
#endif
#endif
