/* clcnn-perf: benchmark sweeps over devices x shapes x algorithms (perf/README.md).
 *
 *   suite.c   reads perf/suites/NAME.txt into perf_shape entries
 *   bench.c   runs one op on one shape with one algorithm: warm-up, timed runs, median;
 *             and whole networks of the model zoo (inference, training step)
 *   report.c  prints rows as CSV, JSON or a table
 *   main.c    the command line */
#ifndef CLCNN_PERF_H
#define CLCNN_PERF_H

#include <stddef.h>
#include <stdio.h>

#include "clcnn/clcnn.h"

/* ---- suites ------------------------------------------------------------------------ */

typedef enum perf_kind { PERF_CONV, PERF_POOL, PERF_LINEAR, PERF_GEMM } perf_kind;

typedef struct perf_shape {
    perf_kind kind;
    char name[64];
    int line; /* line in the suite file */
    /* conv: x (n,c,h,w), w (k,c/groups,r,s); pool: x (n,c,h,w), window r x s */
    int n, c, h, w, k, r, s, stride, pad, dilation, groups;
    clcnn_pool_mode pool_mode;
    int pool_global;
    /* linear: x (n, c) -> y (n, k). gemm: C (m,gn) = op(A) op(B), k = gk */
    size_t m, gn, gk;
    int ta, tb;
} perf_shape;

/* Load suite `name` (a file perf/suites/NAME.txt, or a path when it contains '/').
 * Returns 0 and a malloc'd array, or -1 with a message in err. */
int perf_suite_load(const char *name, perf_shape **out, size_t *count, char *err, size_t cap);
/* Print the suite directory and the suites in it. */
void perf_suite_list(FILE *f);
/* The directory suites are read from: $CLCNN_PERF_SUITES or the source tree's. */
const char *perf_suite_dir(void);

/* ---- ops and results ------------------------------------------------------------------ */

typedef enum perf_op {
    PERF_OP_CONV_FWD,
    PERF_OP_CONV_BWD_DATA,
    PERF_OP_CONV_BWD_FILTER,
    PERF_OP_POOL_FWD,
    PERF_OP_LINEAR_FWD,
    PERF_OP_GEMM,
    PERF_OP_NET_INFER, /* a zoo model: forward of a batch in evaluation mode */
    PERF_OP_NET_TRAIN, /* a zoo model: forward, softmax cross-entropy, backward, optimizer */
    PERF_OP_POOL_BWD,  /* pool shapes: backward (max: the arg-max of one forward pass) */
    PERF_OP_BN_FWD,    /* conv shapes: training batch norm of the layer's output (n, k, p, q) */
    PERF_OP_BN_BWD,    /* the same: its backward (dx, dgamma, dbeta) */
    PERF_OP_COUNT
} perf_op;

const char *perf_op_name(perf_op op);
int perf_op_parse(const char *name); /* -1 when unknown */
/* Whole-network ops run on models (clcnn_net_create_model), not on suite shapes. */
int perf_op_is_net(perf_op op);
/* Whether the op runs on shapes of this kind (gemm also runs linear and conv shapes,
 * as the GEMMs the library would issue for them). */
int perf_op_accepts(perf_op op, const perf_shape *s);

typedef struct perf_row {
    char device[256];
    char op[32];
    char algo[32];
    char shape[64];
    char dims[160];  /* the shape in words, e.g. "n32 c3 227x227 k96 11x11 s4 p0" */
    char status[16]; /* "ok", "unsupported" or "error" */
    char note[256];  /* the library's message for unsupported/error */
    int runs;
    double ms;        /* median device time over the runs (queue-marker span) */
    double min_ms;    /* fastest run */
    double kernel_ms; /* median of the summed kernel times (clcnn_device_profile_*) */
    double gflop;     /* work of one call */
    double gbytes;    /* minimum memory traffic of one call */
    double gflops, gbps;
    double peak_gflops, peak_gbps; /* measured device peak (0 when not measured) */
    double pct_peak, pct_bw;       /* gflops / peak_gflops, gbps / peak_gbps, in % */
    double images_per_s;           /* net ops: batch / median seconds (NAN otherwise) */
} perf_row;

/* Status plumbing for the benchmarks (clients of the public API). */
#define PERF_TRY(expr)                                                                             \
    do {                                                                                           \
        clcnn_status perf_s_ = (expr);                                                             \
        if (perf_s_ != CLCNN_OK) return perf_s_;                                                   \
    } while (0)
#define PERF_RETURN_IF(cond, status, ...)                                                          \
    do {                                                                                           \
        if (cond) return clcnn_set_error((status), __VA_ARGS__);                                   \
    } while (0)

typedef struct perf_config {
    int runs;               /* timed runs after one warm-up (>= 1; default 5) */
    int verbose;            /* progress on stderr */
    unsigned seed;          /* input data */
    int batch;              /* net ops: images per batch (default 8) */
    clcnn_optim_kind optim; /* net_train: SGD with momentum (default) or Adam */
    int exec_mask;          /* net_infer: 1 the net's layer by layer, 2 a plan (default 3);
                             * net_train: 1 unless --exec names the plan */
    int plan;               /* this row runs through a plan (clcnn_plan_* for net_infer,
                             * clcnn_train_plan_* for net_train) */
    int exec_given;         /* --exec was on the command line */
} perf_config;

/* Run `op` on shape s with conv algorithm `algo` (ignored by other ops) and fill row
 * (device and peak fields are filled by the caller). Returns 0, or -1 when the row is an
 * error (the row says why); an unsupported algorithm is a row, not an error. */
int perf_bench(clcnn_device *dev, const perf_config *cfg, perf_op op, const perf_shape *s,
               clcnn_conv_algo algo, perf_row *row);

/* Whether a --model name is an ONNX file (ends in .onnx). */
int perf_is_onnx(const char *model);

/* Time op (PERF_OP_NET_INFER or _TRAIN) on the zoo model `model` with random images and
 * labels, cfg->batch per call: one warm-up, cfg->runs timed calls, the median wall-clock
 * time to the end of the device work. Returns 0, or -1 when the row is an error. */
int perf_bench_net(clcnn_device *dev, const perf_config *cfg, perf_op op, const char *model,
                   perf_row *row);

/* ---- reports --------------------------------------------------------------------- */

typedef enum perf_format { PERF_CSV, PERF_JSON, PERF_TABLE } perf_format;

typedef struct perf_report perf_report;
perf_report *perf_report_open(FILE *f, perf_format fmt);
void perf_report_row(perf_report *r, const perf_row *row);
/* Peak rows (--op peak). */
void perf_report_peak(perf_report *r, const char *device, double gflops, double gbps);
void perf_report_close(perf_report *r);

#endif
