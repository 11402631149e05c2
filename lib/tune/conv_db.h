/* The convolution side of the tuning database (lib/tune/conv_db.c): the "conv2d" section
 * of the per-device tuning file, its in-memory copy and the lookups that lib/ops makes
 * for CLCNN_CONV_AUTO and for kernel parameters. It sits below lib/ops (like
 * lib/tune/tune_file.c, the GEMM side) and calls nothing there; the tuner
 * (lib/tune/conv_tune.c) sits above lib/ops and stores its winners through here.
 * tests/layering.sh checks both directions. */
#ifndef CLCNN_TUNE_CONV_DB_H
#define CLCNN_TUNE_CONV_DB_H

#include "internal.h"

/* The geometry of one convolution, as lib/ops/conv2d.c checks it (cc_conv2d_geometry):
 * x (n, c, h, w); w (k, cpg, r, s) with cpg = c/groups; y (n, k, p, q); kpg = k/groups
 * output channels per group. */
typedef struct cc_conv {
    int n, c, h, w;
    int k, r, s;
    int p, q;
    int sh, sw; /* stride */
    int ph, pw; /* zero padding */
    int dh, dw; /* dilation */
    int groups, cpg, kpg;
} cc_conv;

/* ---- lookups (lib/ops calls these) ---------------------------------------------------- */

/* The convolution algorithm stored in dev's tuning file for this geometry and pass (a
 * clcnn_conv_pass), or CLCNN_CONV_AUTO when none is (or $CLCNN_TUNE is off, or the file
 * is missing or invalid). The file is read once per process; never fails and leaves the
 * last-error message alone. */
clcnn_conv_algo cc_conv_tuned_algo(clcnn_device *dev, const cc_conv *cv, int pass);

/* Parameter strings are one line of at most CC_CONV_CFG_MAX - 1 printable characters in
 * the syntax of the algorithm's $CLCNN_CONV_*_CFG variable. */
#define CC_CONV_CFG_MAX 64
/* The kernel parameters algorithm `algo` should use for pass (a clcnn_conv_pass) of cv,
 * copied into buf: the string the tuner is timing on dev, else $env_name when set, else
 * the one stored in dev's tuning file for this pass and geometry when its winner is algo
 * (and $CLCNN_TUNE is not off); NULL: the algorithm's heuristic. The caller validates the
 * string and uses its heuristic when it is invalid; then, and after using the string or
 * the heuristic, it reports what it used with cc_conv_cfg_used. Never fails. */
const char *cc_conv_cfg(const clcnn_device *dev, const char *env_name, int pass, const cc_conv *cv,
                        clcnn_conv_algo algo, char buf[CC_CONV_CFG_MAX]);
/* Record the parameters the last convolution on this thread used: cfg when the algorithm
 * accepted it, NULL or "" for its heuristic (read by cc_conv_cfg_last). */
void cc_conv_cfg_used(clcnn_conv_algo algo, const char *cfg);
/* The kernel parameters the last convolution on this thread used ("": its heuristic) and,
 * when algo is non-NULL, the algorithm that reported them (CLCNN_CONV_AUTO: none yet, or
 * one without parameters such as gemm). For tests and tools. */
const char *cc_conv_cfg_last(clcnn_conv_algo *algo);

/* ---- entries, the file and storing ------------------------------------------------------ */

/* One entry of the "conv2d" section: the key (pass + full geometry) and the winner. */
typedef struct cc_conv_entry {
    int pass; /* clcnn_conv_pass */
    int n, c, h, w, k, r, s, sh, sw, ph, pw, dh, dw, groups;
    int algo;                            /* the winner (never AUTO) */
    double ms;                           /* its median time */
    double times[CLCNN_CONV_ALGO_COUNT]; /* ms per algorithm timed; < 0: not timed */
    int runs;                            /* timed runs per algorithm (0: not recorded) */
    char params[64]; /* the winner's kernel parameters ("": its heuristic); printable */
} cc_conv_entry;

/* The key fields (pass and geometry) of an entry for cv; the rest zero. */
cc_conv_entry cc_conv_entry_key(const cc_conv *cv, int pass);

struct json_t;
/* Validate the "conv2d" section of the tuning file at path (an array of entries): every
 * key and value, the geometry (as lib/ops/conv2d.c checks it), algorithm names, and no
 * two entries with the same key. CLCNN_ERR_FORMAT naming path and the entry. With out
 * non-NULL, *out (malloc'd) and *count receive the entries. */
clcnn_status cc_conv_entries_parse(struct json_t *section, const char *path, cc_conv_entry **out,
                                   size_t *count);
/* The tuning file's text for root (malloc'd, no final newline): two-space indented JSON
 * with sorted keys, except one line per conv2d entry. NULL when out of memory. */
char *cc_tune_dumps(struct json_t *root);
/* Merge e into the "conv2d" section of dev's tuning file at path (replacing the entry
 * with the same key), under the file's lock, written atomically; a new file gets dev's
 * identity. An existing invalid file is left alone (CLCNN_ERR_FORMAT). */
clcnn_status cc_conv_db_store(const clcnn_device *dev, const char *path, const cc_conv_entry *e);
/* 1 when dev's tuning file (its in-memory copy) has an entry for exactly this pass and
 * geometry, batch size included (0 when $CLCNN_TUNE is off). */
int cc_conv_db_has_exact(const clcnn_device *dev, const cc_conv *cv, int pass);
/* CLCNN_OK when cc_conv_db_store could write path now: an existing file is a valid tuning
 * file of dev and writable, or the directory that would hold a new one is; else the
 * reason (CLCNN_ERR_FORMAT, CLCNN_ERR_IO) naming the file. Reads the file. */
clcnn_status cc_conv_db_can_store(const clcnn_device *dev, const char *path);
/* Forget every in-memory copy of the convolution entries (after this process rewrote or
 * imported a tuning file). */
void cc_conv_tune_forget(void);

#endif
