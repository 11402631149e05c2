/* perf/onednn_bench.c: oneDNN's convolution forward on the conv lines of a clcnn-perf
 * suite, the baseline of perf/compare_onednn.sh. Built by that script against Debian's
 * libdnnl-dev (oneDNN 2.x C API); never part of the library or its tests.
 *
 *   onednn-bench SUITE.txt [--runs N] [--filter TEXT]
 *
 * "Native" oneDNN: every tensor in the layout oneDNN picks for the primitive
 * (format_tag any, e.g. nChw8c on AVX2), so no reorder is timed; forward inference with a
 * bias, fp32, dnnl_convolution_auto. One warm-up execution, then the median wall-clock
 * time of N executions (each waits for the stream). Threads: oneDNN's (OpenMP;
 * OMP_NUM_THREADS). Prints CSV: shape,dims,ms,min_ms,gflop,gflops,impl, where gflop is
 * the direct convolution's work (2 per multiply-add, as clcnn-perf counts it). */
#include <oneapi/dnnl/dnnl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RUNS 1000

#define DNNL_TRY(call)                                                                             \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            fprintf(stderr, "onednn-bench: %s: %s failed (status %d)\n", c->name, #call,           \
                    (int)st_);                                                                     \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

typedef struct conv_line {
    char name[64];
    long n, c, h, w, k, r, s, stride, pad, dilation, groups;
} conv_line;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One suite line: a conv line (optionally starting with "conv") into *c: 1; another kind
 * (pool, linear, gemm), a comment or a blank line: 0; a malformed conv line: -1. */
static int parse_line(const char *line, conv_line *c) {
    char first[64];
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '#' || *p == '\n' || *p == '\0') return 0;
    if (sscanf(p, "%63s", first) != 1) return 0;
    if (!strcmp(first, "pool") || !strcmp(first, "linear") || !strcmp(first, "gemm")) return 0;
    if (!strcmp(first, "conv")) p = strstr(p, "conv") + 4;
    memset(c, 0, sizeof *c);
    c->dilation = c->groups = 1;
    int got =
        sscanf(p, "%63s %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld", c->name, &c->n, &c->c, &c->h,
               &c->w, &c->k, &c->r, &c->s, &c->stride, &c->pad, &c->dilation, &c->groups);
    if (got != 10 && got != 11 && got != 12) return -1;
    if (c->n < 1 || c->c < 1 || c->h < 1 || c->w < 1 || c->k < 1 || c->r < 1 || c->s < 1 ||
        c->stride < 1 || c->pad < 0 || c->dilation < 1 || c->groups < 1 || c->c % c->groups ||
        c->k % c->groups)
        return -1;
    return 1;
}

static dnnl_status_t make_md(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims) {
    return dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, dnnl_format_tag_any);
}

/* Time one convolution; prints its CSV row. 0, or -1 when oneDNN refused it. */
static int run_conv(dnnl_engine_t eng, dnnl_stream_t stream, const conv_line *c, int runs) {
    long ek = (c->r - 1) * c->dilation + 1, es = (c->s - 1) * c->dilation + 1;
    long p = (c->h + 2 * c->pad - ek) / c->stride + 1, q = (c->w + 2 * c->pad - es) / c->stride + 1;
    if (p < 1 || q < 1) {
        fprintf(stderr, "onednn-bench: %s: the kernel is larger than the padded input\n", c->name);
        return -1;
    }
    long g = c->groups;
    dnnl_dims_t src = {c->n, c->c, c->h, c->w}, dst = {c->n, c->k, p, q}, bias = {c->k};
    dnnl_dims_t wei = {g, c->k / g, c->c / g, c->r, c->s}, wei4 = {c->k, c->c, c->r, c->s};
    dnnl_dims_t strides = {c->stride, c->stride}, dil = {c->dilation - 1, c->dilation - 1};
    dnnl_dims_t pad = {c->pad, c->pad};
    dnnl_memory_desc_t src_md, wei_md, bias_md, dst_md;
    DNNL_TRY(make_md(&src_md, 4, src));
    DNNL_TRY(make_md(&dst_md, 4, dst));
    DNNL_TRY(make_md(&bias_md, 1, bias));
    if (g > 1)
        DNNL_TRY(make_md(&wei_md, 5, wei));
    else
        DNNL_TRY(make_md(&wei_md, 4, wei4));
    dnnl_convolution_desc_t cd;
    DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                        dnnl_convolution_auto, &src_md, &wei_md,
                                                        &bias_md, &dst_md, strides, dil, pad, pad));
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, NULL));
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    static const dnnl_query_t queries[4] = {dnnl_query_src_md, dnnl_query_weights_md,
                                            dnnl_query_weights_md, dnnl_query_dst_md};
    static const int query_index[4] = {0, 0, 1, 0};
    static const int arg_ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    dnnl_memory_t mem[4] = {NULL, NULL, NULL, NULL};
    dnnl_exec_arg_t args[4];
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, queries[i], query_index[i]);
        if (!md || dnnl_memory_create(&mem[i], md, eng, DNNL_MEMORY_ALLOCATE) != dnnl_success) {
            fprintf(stderr, "onednn-bench: %s: cannot allocate argument %d\n", c->name, i);
            rc = -1;
            break;
        }
        void *data = NULL;
        dnnl_memory_get_data_handle(mem[i], &data);
        size_t bytes = dnnl_memory_desc_get_size(md);
        float *f = data;
        for (size_t j = 0; j < bytes / sizeof(float); j++) /* small, varied, finite */
            f[j] = (float)((j * 2654435761u) % 1000) / 1000.0f - 0.5f;
        args[i] = (dnnl_exec_arg_t){arg_ids[i], mem[i]};
    }
    dnnl_primitive_t prim = NULL;
    if (!rc && dnnl_primitive_create(&prim, pd) != dnnl_success) {
        fprintf(stderr, "onednn-bench: %s: primitive creation failed\n", c->name);
        rc = -1;
    }
    double t[MAX_RUNS];
    for (int i = -1; i < runs && !rc; i++) { /* -1: the warm-up */
        double t0 = now_ms();
        if (dnnl_primitive_execute(prim, stream, 4, args) != dnnl_success ||
            dnnl_stream_wait(stream) != dnnl_success) {
            fprintf(stderr, "onednn-bench: %s: execution failed\n", c->name);
            rc = -1;
            break;
        }
        if (i >= 0) t[i] = now_ms() - t0;
    }
    if (!rc) {
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        double ms = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
        double gflop = 2.0 * c->n * c->k * p * q * (c->c / g) * c->r * c->s / 1e9;
        printf("%s,\"n%ld c%ld %ldx%ld k%ld %ldx%ld s%ld p%ld d%ld g%ld\",%.4f,%.4f,%.6f,%.2f,%s\n",
               c->name, c->n, c->c, c->h, c->w, c->k, c->r, c->s, c->stride, c->pad, c->dilation,
               c->groups, ms, t[0], gflop, gflop / ms * 1e3, impl);
    }
    if (prim) dnnl_primitive_destroy(prim);
    for (int i = 0; i < 4; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

int main(int argc, char **argv) {
    const char *suite = NULL, *filter = NULL;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (argv[i][0] != '-' && !suite)
            suite = argv[i];
        else {
            fprintf(stderr, "usage: onednn-bench SUITE.txt [--runs N] [--filter TEXT]\n");
            return 2;
        }
    }
    if (!suite || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: onednn-bench SUITE.txt [--runs N (1-%d)] [--filter TEXT]\n",
                MAX_RUNS);
        return 2;
    }
    FILE *f = fopen(suite, "r");
    if (!f) {
        perror(suite);
        return 1;
    }
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream, eng, dnnl_stream_default_flags) != dnnl_success) {
        fprintf(stderr, "onednn-bench: no oneDNN CPU engine\n");
        fclose(f);
        return 1;
    }
    const dnnl_version_t *v = dnnl_version();
    fprintf(stderr, "oneDNN %d.%d.%d\n", v->major, v->minor, v->patch);
    printf("shape,dims,ms,min_ms,gflop,gflops,impl\n");
    char line[512];
    int lineno = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        conv_line c;
        lineno++;
        int k = parse_line(line, &c);
        if (k < 0) {
            fprintf(stderr, "onednn-bench: %s:%d: not a conv line: %s", suite, lineno, line);
            failed = 1;
            continue;
        }
        if (k == 0 || (filter && !strstr(c.name, filter))) continue;
        if (run_conv(eng, stream, &c, runs)) failed = 1;
        fflush(stdout);
    }
    fclose(f);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(eng);
    return failed;
}
