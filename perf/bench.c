/* One benchmark: op x shape x algorithm on one device.
 *
 * Inputs are seeded uniform random values uploaded once per call. One warm-up call
 * (kernel builds, buffer pool), then cfg->runs timed calls. Each timed call runs inside
 * clcnn_device_profile_begin/end (the summed time of the kernels the library enqueues:
 * kernel_ms) and between two queue markers whose profiling timestamps give the device
 * time from the first command of the call to the end of the last (ms). The span is the
 * figure reported: CLBlast runs several kernels per GEMM but hands back the event of the
 * last one only, so the summed kernel times miss part of every GEMM; on an in-order queue
 * the span covers everything the call enqueued (plus any idle gaps between its commands).
 *
 * Work per call: convolution 2*n*k*p*q*(c/groups)*r*s flops for each of the three passes;
 * pooling one operation per window element (n*c*p*q*kh*kw); linear 2*n*in*out; GEMM
 * 2*m*n*k per product. Traffic: every input and output tensor once (float32). Batch norm
 * (training, on the output of a suite's layer): no flops counted; traffic x and y (forward)
 * or x, dy and dx (backward) once, the least any implementation moves.
 *
 * Whole networks (perf_bench_net) are timed by the wall clock from the first enqueue to
 * the end of the device work (clcnn_device_finish): a training step includes host work
 * (label checks, the loss download, launching hundreds of kernels), which is real cost. */
#include "perf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const op_names[PERF_OP_COUNT] = {
    "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter", "pool2d_fwd",    "linear_fwd",    "gemm",
    "net_infer",  "net_train",       "pool2d_bwd",        "batchnorm_fwd", "batchnorm_bwd",
};

const char *perf_op_name(perf_op op) {
    return (int)op >= 0 && op < PERF_OP_COUNT ? op_names[op] : "unknown";
}

int perf_op_parse(const char *name) {
    for (int i = 0; i < PERF_OP_COUNT; i++)
        if (!strcmp(name, op_names[i])) return i;
    return -1;
}

int perf_op_is_net(perf_op op) {
    return op == PERF_OP_NET_INFER || op == PERF_OP_NET_TRAIN;
}

int perf_op_accepts(perf_op op, const perf_shape *s) {
    switch (op) {
    case PERF_OP_CONV_FWD:
    case PERF_OP_CONV_BWD_DATA:
    case PERF_OP_CONV_BWD_FILTER:
    case PERF_OP_BN_FWD:
    case PERF_OP_BN_BWD:
        return s->kind == PERF_CONV;
    case PERF_OP_POOL_FWD:
    case PERF_OP_POOL_BWD:
        return s->kind == PERF_POOL;
    case PERF_OP_LINEAR_FWD:
        return s->kind == PERF_LINEAR;
    case PERF_OP_GEMM:
        return s->kind == PERF_GEMM || s->kind == PERF_LINEAR ||
               (s->kind == PERF_CONV && s->groups == 1);
    default:
        return 0;
    }
}

/* ---- tensors --------------------------------------------------------------------- */

typedef struct bench {
    clcnn_tensor *t[10];
    int nt;
    unsigned rng;
} bench;

static float next_uniform(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

static clcnn_status make(clcnn_device *dev, bench *b, clcnn_dtype dt, int ndim, const size_t *shape,
                         int fill, clcnn_tensor **out) {
    clcnn_tensor *t = NULL;
    PERF_TRY(clcnn_tensor_create(dev, dt, ndim, shape, &t));
    b->t[b->nt++] = t;
    *out = t;
    size_t n = clcnn_tensor_numel(t);
    if (!fill) return clcnn_tensor_fill(t, 0.0f);
    float *h = malloc(n * sizeof *h);
    PERF_RETURN_IF(!h, CLCNN_ERR_OUT_OF_MEMORY, "perf: out of host memory for %zu floats", n);
    for (size_t i = 0; i < n; i++)
        h[i] = next_uniform(&b->rng);
    clcnn_status s = clcnn_tensor_upload(t, h, n * sizeof *h);
    free(h);
    return s;
}

/* ---- one call of the op ---------------------------------------------------------------- */

typedef struct call {
    perf_op op;
    clcnn_conv2d_desc conv;
    clcnn_pool2d_desc pool;
    clcnn_tensor *a, *b, *c, *d, *e, *f, *g, *h; /* op-specific, see prepare() */
    /* gemm */
    int ta, tb;
    size_t m, n, k, batch, lda, ldb, ldc, stride_a, stride_b, stride_c;
} call;

static clcnn_status invoke(clcnn_device *dev, const call *c) {
    switch (c->op) {
    case PERF_OP_CONV_FWD: /* a x, b w, c bias, d y */
        return clcnn_conv2d_forward(dev, &c->conv, c->a, c->b, c->c, c->d, CLCNN_ACT_NONE);
    case PERF_OP_CONV_BWD_DATA: /* a dy, b w, d dx */
        return clcnn_conv2d_backward_data(dev, &c->conv, c->a, c->b, c->d);
    case PERF_OP_CONV_BWD_FILTER: /* a x, b dy, d dw */
        return clcnn_conv2d_backward_filter(dev, &c->conv, c->a, c->b, c->d, NULL);
    case PERF_OP_POOL_FWD: /* a x, d y, c argmax */
        return clcnn_pool2d_forward(dev, &c->pool, c->a, c->d, c->c);
    case PERF_OP_POOL_BWD: /* a dy, c argmax, d dx */
        return clcnn_pool2d_backward(dev, &c->pool, c->a, c->c, c->d);
    case PERF_OP_LINEAR_FWD: /* a x, b w, c bias, d y */
        return clcnn_linear_forward(dev, c->a, c->b, c->c, c->d);
    case PERF_OP_BN_FWD: /* a x, b gamma, c beta, d y, e/f saved mean/invstd, g/h running */
        return clcnn_batchnorm_forward_train(dev, c->a, c->b, c->c, c->g, c->h, 0.1f, 1e-5f, c->d,
                                             c->e, c->f);
    case PERF_OP_BN_BWD: /* a x, g dy, b gamma, e/f saved, d dx, h dgamma, c dbeta */
        return clcnn_batchnorm_backward(dev, c->a, c->g, c->b, c->e, c->f, c->d, c->h, c->c);
    case PERF_OP_GEMM:
        return clcnn_gemm_batched(dev, c->ta, c->tb, c->m, c->n, c->k, 1.0f, c->a, c->lda,
                                  c->stride_a, c->b, c->ldb, c->stride_b, 0.0f, c->d, c->ldc,
                                  c->stride_c, c->batch);
    default:
        return clcnn_set_error(CLCNN_ERR_INVALID_ARG, "perf: unknown op");
    }
}

/* One timed call: *ms the marker span, *kernel_ms the profiled kernel sum. */
static clcnn_status timed(clcnn_device *dev, const call *c, double *ms, double *kernel_ms) {
    cl_command_queue q = clcnn_device_queue(dev);
    cl_event m0 = NULL, m1 = NULL;
    clcnn_device_profile_begin(dev);
    cl_int e0 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m0);
    clcnn_status s = invoke(dev, c);
    cl_int e1 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m1);
    clcnn_status s2 = clcnn_device_profile_end(dev, kernel_ms); /* waits for the queue */
    cl_ulong start = 0, end = 0;
    if (e0 == CL_SUCCESS)
        e0 = clGetEventProfilingInfo(m0, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (e1 == CL_SUCCESS)
        e1 = clGetEventProfilingInfo(m1, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    if (m0) clReleaseEvent(m0);
    if (m1) clReleaseEvent(m1);
    if (s != CLCNN_OK) return s;
    if (s2 != CLCNN_OK) return s2;
    PERF_RETURN_IF(e0 != CL_SUCCESS || e1 != CL_SUCCESS, CLCNN_ERR_OPENCL,
                   "perf: the device gives no profiling time for queue markers");
    *ms = end > start ? (double)(end - start) / 1e6 : 0.0;
    return CLCNN_OK;
}

/* ---- shapes to tensors -------------------------------------------------------------- */

static clcnn_status prepare(clcnn_device *dev, bench *b, perf_op op, const perf_shape *s,
                            clcnn_conv_algo algo, call *c, perf_row *row) {
    memset(c, 0, sizeof *c);
    c->op = op;
    if (s->kind == PERF_CONV) {
        c->conv = clcnn_conv2d_desc_default();
        c->conv.stride_h = c->conv.stride_w = s->stride;
        c->conv.pad_h = c->conv.pad_w = s->pad;
        c->conv.dilation_h = c->conv.dilation_w = s->dilation;
        c->conv.groups = s->groups;
        c->conv.algo = algo;
    }
    size_t xs[4] = {(size_t)s->n, (size_t)s->c, (size_t)s->h, (size_t)s->w};
    size_t ws[4] = {(size_t)s->k, (size_t)(s->c / (s->groups ? s->groups : 1)), (size_t)s->r,
                    (size_t)s->s};
    size_t ys[4] = {0};
    if (s->kind == PERF_CONV) PERF_TRY(clcnn_conv2d_output_shape(&c->conv, xs, ws, ys));
    if (s->kind == PERF_CONV && algo == CLCNN_CONV_AUTO && op <= PERF_OP_CONV_BWD_FILTER) {
        /* which algorithm auto is (perf/rule_check.sh compares its row with the best) */
        clcnn_conv_algo chosen;
        int db = 0;
        if (clcnn_conv2d_algo_choice(dev, (clcnn_conv_pass)(op - PERF_OP_CONV_FWD), &c->conv, xs,
                                     ws, &chosen, &db) == CLCNN_OK)
            snprintf(row->note, sizeof row->note, "chose %s (%s)", clcnn_conv_algo_name(chosen),
                     db ? "tuning file" : "rule");
    }
    const double cpg = (double)ws[1], crs = cpg * s->r * s->s;
    const double nx = (double)xs[0] * xs[1] * xs[2] * xs[3], nw = (double)ws[0] * crs;
    const double ny = (double)ys[0] * ys[1] * ys[2] * ys[3];
    switch (op) {
    case PERF_OP_CONV_FWD:
        PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ws, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, (size_t[]){(size_t)s->k}, 1, &c->c));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 0, &c->d));
        row->gflop = 2.0 * ny * crs / 1e9;
        row->gbytes = 4.0 * (nx + nw + ny + s->k) / 1e9;
        break;
    case PERF_OP_CONV_BWD_DATA:
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ws, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 0, &c->d));
        row->gflop = 2.0 * ny * crs / 1e9;
        row->gbytes = 4.0 * (nx + nw + ny) / 1e9;
        break;
    case PERF_OP_CONV_BWD_FILTER:
        PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ws, 0, &c->d));
        row->gflop = 2.0 * ny * crs / 1e9;
        row->gbytes = 4.0 * (nx + nw + ny) / 1e9;
        break;
    case PERF_OP_BN_FWD:
    case PERF_OP_BN_BWD: {
        size_t k = (size_t)s->k;
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 1, &c->c));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 0, &c->d));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 0, &c->e));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 0, &c->f));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 0, &c->h));
        if (op == PERF_OP_BN_FWD) { /* the running mean (h: the running variance) */
            PERF_TRY(make(dev, b, CLCNN_F32, 1, &k, 0, &c->g));
        } else { /* dy, and the saved statistics of one forward (h: dgamma) */
            PERF_TRY(make(dev, b, CLCNN_F32, 4, ys, 1, &c->g));
            PERF_TRY(clcnn_batchnorm_forward_train(dev, c->a, c->b, c->c, NULL, NULL, 0.1f, 1e-5f,
                                                   c->d, c->e, c->f));
        }
        row->gflop = NAN;
        row->gbytes = 4.0 * ny * (op == PERF_OP_BN_FWD ? 2 : 3) / 1e9;
        break;
    }
    case PERF_OP_POOL_FWD: {
        clcnn_pool2d_desc *p = &c->pool;
        p->mode = s->pool_mode;
        p->kernel_h = s->r, p->kernel_w = s->s;
        p->stride_h = p->stride_w = s->stride;
        p->pad_h = p->pad_w = s->pad;
        p->global = s->pool_global;
        size_t ps[4];
        PERF_TRY(clcnn_pool2d_output_shape(p, xs, ps));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ps, 0, &c->d));
        double np = (double)ps[0] * ps[1] * ps[2] * ps[3];
        if (p->mode == CLCNN_POOL_MAX) /* the training path: with arg-max indices */
            PERF_TRY(make(dev, b, CLCNN_I32, 4, ps, 0, &c->c));
        double window = s->pool_global ? (double)s->h * s->w : (double)s->r * s->s;
        row->gflop = np * window / 1e9;
        row->gbytes = 4.0 * (nx + np * (p->mode == CLCNN_POOL_MAX ? 2 : 1)) / 1e9;
        break;
    }
    case PERF_OP_POOL_BWD: { /* the same traffic as the forward pass, read and written back */
        clcnn_pool2d_desc *p = &c->pool;
        p->mode = s->pool_mode;
        p->kernel_h = s->r, p->kernel_w = s->s;
        p->stride_h = p->stride_w = s->stride;
        p->pad_h = p->pad_w = s->pad;
        p->global = s->pool_global;
        size_t ps[4];
        PERF_TRY(clcnn_pool2d_output_shape(p, xs, ps));
        clcnn_tensor *x = NULL, *y = NULL;
        PERF_TRY(make(dev, b, CLCNN_F32, 4, ps, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 0, &c->d));
        double np = (double)ps[0] * ps[1] * ps[2] * ps[3];
        if (p->mode == CLCNN_POOL_MAX) { /* real arg-max indices from random inputs */
            PERF_TRY(make(dev, b, CLCNN_F32, 4, xs, 1, &x));
            PERF_TRY(make(dev, b, CLCNN_F32, 4, ps, 0, &y));
            PERF_TRY(make(dev, b, CLCNN_I32, 4, ps, 0, &c->c));
            PERF_TRY(clcnn_pool2d_forward(dev, p, x, y, c->c));
        }
        double window = s->pool_global ? (double)s->h * s->w : (double)s->r * s->s;
        row->gflop = np * window / 1e9;
        row->gbytes = 4.0 * (nx + np * (p->mode == CLCNN_POOL_MAX ? 2 : 1)) / 1e9;
        break;
    }
    case PERF_OP_LINEAR_FWD:
        PERF_TRY(make(dev, b, CLCNN_F32, 2, (size_t[]){(size_t)s->n, (size_t)s->c}, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 2, (size_t[]){(size_t)s->k, (size_t)s->c}, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, (size_t[]){(size_t)s->k}, 1, &c->c));
        PERF_TRY(make(dev, b, CLCNN_F32, 2, (size_t[]){(size_t)s->n, (size_t)s->k}, 0, &c->d));
        row->gflop = 2.0 * s->n * (double)s->c * s->k / 1e9;
        row->gbytes =
            4.0 * ((double)s->n * s->c + (double)s->k * s->c + s->k + (double)s->n * s->k) / 1e9;
        break;
    case PERF_OP_GEMM: {
        c->batch = 1;
        if (s->kind == PERF_GEMM) { /* C (m,n) = op(A) op(B) */
            c->ta = s->ta, c->tb = s->tb, c->m = s->m, c->n = s->gn, c->k = s->gk;
        } else if (s->kind == PERF_LINEAR) { /* y (n,out) = x (n,in) w^T, as linear.c */
            c->ta = 0, c->tb = 1, c->m = (size_t)s->n, c->n = (size_t)s->k, c->k = (size_t)s->c;
        } else { /* conv forward per image: y (k, pq) = w (k, crs) col (crs, pq) */
            c->m = (size_t)s->k, c->n = ys[2] * ys[3], c->k = (size_t)crs;
            c->batch = (size_t)s->n;
            c->stride_b = c->k * c->n, c->stride_c = c->m * c->n;
        }
        c->lda = c->ta ? c->m : c->k;
        c->ldb = c->tb ? c->k : c->n;
        c->ldc = c->n;
        size_t na = c->m * c->k, nb = c->k * c->n * c->batch, nc = c->m * c->n * c->batch;
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &na, 1, &c->a));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &nb, 1, &c->b));
        PERF_TRY(make(dev, b, CLCNN_F32, 1, &nc, 0, &c->d));
        row->gflop = 2.0 * c->m * (double)c->n * c->k * c->batch / 1e9;
        row->gbytes = 4.0 * ((double)na + nb + nc) / 1e9;
        break;
    }
    default:
        return clcnn_set_error(CLCNN_ERR_INVALID_ARG, "perf: unknown op");
    }
    return CLCNN_OK;
}

static void describe(const clcnn_device *dev, perf_op op, const perf_shape *s, clcnn_conv_algo algo,
                     perf_row *row) {
    static const char *const pool_modes[] = {"max", "avg", "avg_exclude"};
    snprintf(row->op, sizeof row->op, "%s", perf_op_name(op));
    snprintf(row->shape, sizeof row->shape, "%s", s->name);
    size_t pos = 0;
    switch (s->kind) {
    case PERF_CONV:
        pos = (size_t)snprintf(row->dims, sizeof row->dims, "n%d c%d %dx%d k%d %dx%d s%d p%d", s->n,
                               s->c, s->h, s->w, s->k, s->r, s->s, s->stride, s->pad);
        if (s->dilation > 1)
            pos += (size_t)snprintf(row->dims + pos, sizeof row->dims - pos, " d%d", s->dilation);
        if (s->groups > 1) snprintf(row->dims + pos, sizeof row->dims - pos, " g%d", s->groups);
        break;
    case PERF_POOL:
        if (s->pool_global)
            snprintf(row->dims, sizeof row->dims, "n%d c%d %dx%d global", s->n, s->c, s->h, s->w);
        else
            snprintf(row->dims, sizeof row->dims, "n%d c%d %dx%d %dx%d s%d p%d", s->n, s->c, s->h,
                     s->w, s->r, s->s, s->stride, s->pad);
        break;
    case PERF_LINEAR:
        snprintf(row->dims, sizeof row->dims, "n%d %d->%d", s->n, s->c, s->k);
        break;
    case PERF_GEMM:
        snprintf(row->dims, sizeof row->dims, "%zux%zux%zu %c%c", s->m, s->gn, s->gk,
                 s->ta ? 'T' : 'N', s->tb ? 'T' : 'N');
        break;
    }
    if (op == PERF_OP_GEMM && s->kind != PERF_GEMM) {
        /* the GEMM the library issues for this layer */
        int pq_h = (s->h + 2 * s->pad - s->dilation * (s->r - 1) - 1) / s->stride + 1;
        int pq_w = (s->w + 2 * s->pad - s->dilation * (s->s - 1) - 1) / s->stride + 1;
        if (s->kind == PERF_LINEAR)
            snprintf(row->dims, sizeof row->dims, "%dx%dx%d NT (linear)", s->n, s->k, s->c);
        else
            snprintf(row->dims, sizeof row->dims, "%dx%dx%d NN x%d (conv fwd)", s->k, pq_h * pq_w,
                     s->c * s->r * s->s, s->n);
    }
    if (op <= PERF_OP_CONV_BWD_FILTER)
        snprintf(row->algo, sizeof row->algo, "%s", clcnn_conv_algo_name(algo));
    else if (op == PERF_OP_POOL_FWD || op == PERF_OP_POOL_BWD)
        snprintf(row->algo, sizeof row->algo, "%s",
                 s->pool_global ? "global_avg" : pool_modes[s->pool_mode]);
    else if (op == PERF_OP_BN_FWD || op == PERF_OP_BN_BWD)
        snprintf(row->algo, sizeof row->algo, "train");
    else if (op == PERF_OP_LINEAR_FWD && clcnn_linear_small_batch(dev, (size_t)s->n))
        snprintf(row->algo, sizeof row->algo, "small_batch"); /* cl/linear_small.cl */
    else
        snprintf(row->algo, sizeof row->algo, "clblast");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int perf_bench(clcnn_device *dev, const perf_config *cfg, perf_op op, const perf_shape *s,
               clcnn_conv_algo algo, perf_row *row) {
    bench b;
    memset(&b, 0, sizeof b);
    b.rng = cfg->seed ? cfg->seed : 12345u;
    call c;
    describe(dev, op, s, algo, row);
    snprintf(row->status, sizeof row->status, "ok");
    row->runs = 0;
    row->images_per_s = NAN;
    int rc = 0;
    double *ms = calloc((size_t)cfg->runs, sizeof *ms);
    double *kms = calloc((size_t)cfg->runs, sizeof *kms);
    clcnn_clear_error();
    clcnn_status st = ms && kms
                          ? prepare(dev, &b, op, s, algo, &c, row)
                          : clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "perf: out of host memory");
    if (st == CLCNN_OK) {
        double w0, w1;
        st = timed(dev, &c, &w0, &w1); /* warm-up: builds, pool */
    }
    for (int r = 0; st == CLCNN_OK && r < cfg->runs; r++) {
        st = timed(dev, &c, &ms[r], &kms[r]);
        if (st == CLCNN_OK) row->runs++;
    }
    if (st == CLCNN_OK) {
        row->min_ms = ms[0];
        for (int r = 1; r < row->runs; r++)
            if (ms[r] < row->min_ms) row->min_ms = ms[r];
        row->ms = median(ms, row->runs);
        row->kernel_ms = median(kms, row->runs);
        if (row->ms > 0) {
            row->gflops = row->gflop / (row->ms * 1e-3);
            row->gbps = row->gbytes / (row->ms * 1e-3);
        }
    } else {
        int unsupported = st == CLCNN_ERR_UNSUPPORTED;
        snprintf(row->status, sizeof row->status, "%s", unsupported ? "unsupported" : "error");
        snprintf(row->note, sizeof row->note, "%s", clcnn_last_error());
        row->ms = row->min_ms = row->kernel_ms = row->gflops = row->gbps = NAN;
        rc = unsupported ? 0 : -1;
        clcnn_device_finish(dev);
    }
    for (int i = 0; i < b.nt; i++)
        clcnn_tensor_free(b.t[i]);
    free(ms);
    free(kms);
    return rc;
}

/* ---- whole networks -------------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

typedef struct net_bench {
    clcnn_net *net;
    clcnn_plan *plan; /* net_infer through a plan of the net's graph */
    clcnn_optimizer *opt;
    clcnn_tensor *x, *labels;
    float loss_first, loss_last;
    /* net_train through the graph's training plan: logits' gradient, the loss, the
     * momentum of SGD over the parameter arena */
    clcnn_train_plan *tplan;
    clcnn_tensor *dlogits, *loss, *velocity;
} net_bench;

/* One call: inference forward, or a training step; waits for the device. */
static clcnn_status net_call(clcnn_device *dev, perf_op op, net_bench *nb, float *loss) {
    if (nb->tplan) { /* forward, softmax cross-entropy, backward (writing the parameter
                      * gradients: no zero fill), SGD with momentum */
        const clcnn_tensor *x = nb->x;
        PERF_TRY(clcnn_train_plan_forward(nb->tplan, &x, 1));
        PERF_TRY(clcnn_softmax_cross_entropy(dev, clcnn_train_plan_output(nb->tplan, 0), nb->labels,
                                             nb->loss, nb->dlogits));
        const clcnn_tensor *dy = nb->dlogits;
        PERF_TRY(clcnn_train_plan_backward(nb->tplan, &dy, 1));
        PERF_TRY(clcnn_sgd_update(dev, clcnn_train_plan_params(nb->tplan),
                                  clcnn_train_plan_grads(nb->tplan), nb->velocity, 1e-4f, 0.9f,
                                  0.0f));
        return clcnn_tensor_download(nb->loss, loss, sizeof *loss); /* waits for the device */
    }
    if (nb->plan) {
        const clcnn_tensor *x = nb->x;
        PERF_TRY(clcnn_plan_run(nb->plan, &x, 1));
    } else if (op == PERF_OP_NET_INFER) {
        const clcnn_tensor *y = NULL;
        PERF_TRY(clcnn_net_forward(nb->net, nb->x, &y));
    } else {
        /* a small step: the weights stay sane over the runs on random labels */
        PERF_TRY(clcnn_net_loss_backward(nb->net, nb->x, nb->labels, loss, NULL));
        PERF_TRY(clcnn_optimizer_step(nb->opt, 1e-4f));
    }
    return clcnn_device_finish(dev);
}

int perf_is_onnx(const char *model) {
    size_t n = strlen(model);
    return n > 5 && !strcmp(model + n - 5, ".onnx");
}

/* An ONNX file: its graph through a plan at cfg->batch, random float inputs. */
static clcnn_status onnx_prepare(clcnn_device *dev, const perf_config *cfg, perf_op op,
                                 const char *model, net_bench *nb, perf_row *row) {
    PERF_RETURN_IF(op != PERF_OP_NET_INFER, CLCNN_ERR_UNSUPPORTED,
                   "perf: ONNX models run net_infer only (training them is not built yet)");
    clcnn_graph *g = NULL;
    PERF_TRY(clcnn_graph_load_onnx(model, &g));
    int nd = 0;
    int64_t d[CLCNN_GRAPH_MAX_DIMS];
    clcnn_status s = clcnn_graph_num_inputs(g) == 1
                         ? clcnn_graph_value_shape(g, clcnn_graph_input_name(g, 0), &nd, d)
                         : clcnn_set_error(CLCNN_ERR_UNSUPPORTED,
                                           "perf: %s has %d inputs (1 "
                                           "supported)",
                                           model, clcnn_graph_num_inputs(g));
    size_t shape[4] = {1, 1, 1, 1};
    if (s == CLCNN_OK && (nd < 1 || nd > 4))
        s = clcnn_set_error(CLCNN_ERR_UNSUPPORTED, "perf: input of %d dimensions", nd);
    for (int i = 0; s == CLCNN_OK && i < nd; i++)
        shape[i] = d[i] == CLCNN_GRAPH_BATCH ? (size_t)cfg->batch : (size_t)d[i];
    double fwd = 0;
    for (int i = 0; s == CLCNN_OK && i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info info;
        s = clcnn_graph_node_info(g, i, &info);
        fwd += info.flops;
    }
    if (s == CLCNN_OK) s = clcnn_plan_create(dev, g, cfg->batch, NULL, &nb->plan);
    if (s == CLCNN_OK) {
        snprintf(row->dims, sizeof row->dims, "n%zu %zux%zux%zu, %d nodes", shape[0], shape[1],
                 shape[2], shape[3], clcnn_graph_num_nodes(g));
        row->gflop = fwd * (double)shape[0] / 1e9;
        row->gbytes = NAN;
        bench b;
        memset(&b, 0, sizeof b);
        b.rng = cfg->seed ? cfg->seed : 12345u;
        s = make(dev, &b, CLCNN_F32, nd, shape, 1, &nb->x);
    }
    if (s == CLCNN_OK) {
        clcnn_plan_memory mem;
        clcnn_plan_get_memory(nb->plan, &mem);
        snprintf(row->note, sizeof row->note,
                 "%d steps; activations %.1f MB planned, %.1f MB summed", mem.steps,
                 mem.activation_bytes / 1e6, mem.activation_sum / 1e6);
    }
    clcnn_graph_free(g);
    return s;
}

static clcnn_status net_prepare(clcnn_device *dev, const perf_config *cfg, perf_op op,
                                const char *model, net_bench *nb, perf_row *row) {
    if (perf_is_onnx(model)) return onnx_prepare(dev, cfg, op, model, nb, row);
    clcnn_model_info m;
    PERF_RETURN_IF(clcnn_model_find(model, &m) < 0, CLCNN_ERR_INVALID_ARG, "unknown model '%s'",
                   model);
    PERF_TRY(clcnn_net_create_model(dev, model, m.classes, &nb->net));
    PERF_TRY(clcnn_net_init(nb->net, CLCNN_INIT_HE, cfg->seed));
    size_t n = (size_t)cfg->batch;
    snprintf(row->dims, sizeof row->dims, "n%zu %dx%dx%d -> %d, %d layers", n, m.c, m.h, m.w,
             m.classes, clcnn_net_num_layers(nb->net));
    /* work: the forward conv/linear flops; training adds backward filter (the same) and
     * backward data (the same, less the first layer's, which the net skips) */
    double fwd = 0, first = -1;
    for (int i = 0; i < clcnn_net_num_layers(nb->net); i++) {
        clcnn_layer_info info;
        PERF_TRY(clcnn_net_layer_info(nb->net, i, &info));
        fwd += info.flops;
        if (first < 0 && info.flops > 0) first = info.flops;
    }
    double per_image = op == PERF_OP_NET_TRAIN ? 3.0 * fwd - (first > 0 ? first : 0) : fwd;
    row->gflop = per_image * (double)n / 1e9;
    row->gbytes = NAN;
    bench b;
    memset(&b, 0, sizeof b);
    b.rng = cfg->seed ? cfg->seed : 12345u;
    clcnn_tensor *x = NULL;
    clcnn_status s =
        make(dev, &b, CLCNN_F32, 4, (size_t[]){n, (size_t)m.c, (size_t)m.h, (size_t)m.w}, 1, &x);
    nb->x = x;
    if (s != CLCNN_OK) return s;
    PERF_TRY(clcnn_tensor_create(dev, CLCNN_I32, 1, &n, &nb->labels));
    int32_t *lab = malloc(n * sizeof *lab);
    PERF_RETURN_IF(!lab, CLCNN_ERR_OUT_OF_MEMORY, "perf: out of host memory");
    for (size_t i = 0; i < n; i++) {
        b.rng = b.rng * 1664525u + 1013904223u;
        lab[i] = (int32_t)((b.rng >> 8) % (uint32_t)m.classes);
    }
    s = clcnn_tensor_upload(nb->labels, lab, n * sizeof *lab);
    free(lab);
    if (s != CLCNN_OK) return s;
    clcnn_net_set_training(nb->net, op == PERF_OP_NET_TRAIN);
    if (op == PERF_OP_NET_TRAIN && cfg->plan) {
        PERF_RETURN_IF(cfg->optim != CLCNN_OPTIM_SGD, CLCNN_ERR_UNSUPPORTED,
                       "perf: the training plan is timed with sgd only");
        clcnn_graph *g = NULL;
        PERF_TRY(clcnn_net_graph(nb->net, &g));
        clcnn_train_options to = {.overwrite_grads = 1}; /* as clcnn train, PyTorch's bench */
        s = clcnn_train_plan_create(dev, g, cfg->batch, &to, &nb->tplan);
        clcnn_graph_free(g);
        if (s != CLCNN_OK) return s;
        const clcnn_tensor *params = clcnn_train_plan_params(nb->tplan);
        size_t np = clcnn_tensor_numel(params), one = 1;
        PERF_TRY(
            clcnn_tensor_create(dev, CLCNN_F32, 2, (size_t[]){n, (size_t)m.classes}, &nb->dlogits));
        PERF_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, &one, &nb->loss));
        PERF_TRY(clcnn_tensor_create(dev, CLCNN_F32, 1, &np, &nb->velocity));
        PERF_TRY(clcnn_tensor_fill(nb->velocity, 0.0f));
        snprintf(row->note, sizeof row->note, "training plan, %zu parameters", np);
    } else if (op == PERF_OP_NET_TRAIN) {
        clcnn_optim_config oc = clcnn_optim_default(cfg->optim);
        PERF_TRY(clcnn_optimizer_create(nb->net, &oc, &nb->opt));
    }
    if (cfg->plan && op == PERF_OP_NET_INFER) {
        clcnn_graph *g = NULL;
        PERF_TRY(clcnn_net_graph(nb->net, &g));
        s = clcnn_plan_create(dev, g, cfg->batch, NULL, &nb->plan);
        clcnn_graph_free(g);
        if (s != CLCNN_OK) return s;
        clcnn_plan_memory mem;
        clcnn_plan_get_memory(nb->plan, &mem);
        snprintf(row->note, sizeof row->note,
                 "%d steps; activations %.1f MB planned, %.1f MB summed", mem.steps,
                 mem.activation_bytes / 1e6, mem.activation_sum / 1e6);
    }
    return CLCNN_OK;
}

int perf_bench_net(clcnn_device *dev, const perf_config *cfg, perf_op op, const char *model,
                   perf_row *row) {
    net_bench nb;
    memset(&nb, 0, sizeof nb);
    snprintf(row->op, sizeof row->op, "%s", perf_op_name(op));
    const char *slash = strrchr(model, '/');
    snprintf(row->shape, sizeof row->shape, "%s", perf_is_onnx(model) && slash ? slash + 1 : model);
    snprintf(row->algo, sizeof row->algo, "%s",
             op == PERF_OP_NET_INFER          ? (cfg->plan || perf_is_onnx(model) ? "plan" : "eval")
             : cfg->plan                      ? "plan_sgd"
             : cfg->optim == CLCNN_OPTIM_ADAM ? "adam"
                                              : "sgd_momentum");
    snprintf(row->status, sizeof row->status, "ok");
    row->runs = 0;
    row->kernel_ms = row->gbps = row->gbytes = NAN;
    int rc = 0;
    double *ms = calloc((size_t)cfg->runs, sizeof *ms);
    clcnn_clear_error();
    clcnn_status st = ms ? net_prepare(dev, cfg, op, model, &nb, row)
                         : clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "perf: out of host memory");
    if (st == CLCNN_OK) st = net_call(dev, op, &nb, &nb.loss_first); /* warm-up */
    for (int r = 0; st == CLCNN_OK && r < cfg->runs; r++) {
        double t0 = now_ms();
        st = net_call(dev, op, &nb, &nb.loss_last);
        ms[r] = now_ms() - t0;
        if (st == CLCNN_OK) row->runs++;
    }
    if (st == CLCNN_OK) {
        row->min_ms = ms[0];
        for (int r = 1; r < row->runs; r++)
            if (ms[r] < row->min_ms) row->min_ms = ms[r];
        row->ms = median(ms, row->runs);
        row->gflops = row->gflop / (row->ms * 1e-3);
        row->images_per_s = cfg->batch / (row->ms * 1e-3);
        if (op == PERF_OP_NET_TRAIN)
            snprintf(row->note, sizeof row->note, "loss %.4f at the warm-up, %.4f at the last run",
                     (double)nb.loss_first, (double)nb.loss_last);
    } else {
        snprintf(row->status, sizeof row->status, "error");
        snprintf(row->note, sizeof row->note, "%s", clcnn_last_error());
        row->ms = row->min_ms = row->gflops = row->images_per_s = NAN;
        rc = -1;
        clcnn_device_finish(dev);
    }
    clcnn_optimizer_free(nb.opt);
    clcnn_plan_free(nb.plan);
    clcnn_train_plan_free(nb.tplan);
    clcnn_tensor_free(nb.dlogits);
    clcnn_tensor_free(nb.loss);
    clcnn_tensor_free(nb.velocity);
    clcnn_net_free(nb.net);
    clcnn_tensor_free(nb.x);
    clcnn_tensor_free(nb.labels);
    free(ms);
    return rc;
}
