/* Output of clcnn-perf: CSV (streamed, one row per line, header first), JSON (one
 * document: an array of row objects, written at the end) or a table for people
 * (streamed, fixed columns). Missing numbers (unsupported, errors) are empty in CSV,
 * null in JSON and "-" in the table. */
#include "perf.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct perf_report {
    FILE *f;
    perf_format fmt;
    int rows;
    int peak_mode;
    json_t *array;
};

perf_report *perf_report_open(FILE *f, perf_format fmt) {
    perf_report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->f = f;
    r->fmt = fmt;
    if (fmt == PERF_JSON) r->array = json_array();
    return r;
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static void csv_str(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p == '\n' ? ' ' : *p, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void csv_num(FILE *f, double v, const char *fmt) {
    if (!isnan(v)) fprintf(f, fmt, v);
    fputc(',', f);
}

static json_t *jnum(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static const char *tnum(char *buf, size_t cap, double v, const char *fmt) {
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, fmt, v);
    return buf;
}

static const char *const csv_header =
    "device,op,algo,shape,dims,status,runs,ms,min_ms,kernel_ms,gflop,gflops,pct_peak,gbps,"
    "pct_bw,peak_gflops,peak_gbps,images_per_s,note\n";

void perf_report_row(perf_report *r, const perf_row *w) {
    if (!r) return;
    FILE *f = r->f;
    switch (r->fmt) {
    case PERF_CSV:
        if (r->rows == 0) fputs(csv_header, f);
        csv_str(f, w->device, 0);
        csv_str(f, w->op, 0);
        csv_str(f, w->algo, 0);
        csv_str(f, w->shape, 0);
        csv_str(f, w->dims, 0);
        csv_str(f, w->status, 0);
        fprintf(f, "%d,", w->runs);
        csv_num(f, w->ms, "%.4f");
        csv_num(f, w->min_ms, "%.4f");
        csv_num(f, w->kernel_ms, "%.4f");
        csv_num(f, w->gflop, "%.6f");
        csv_num(f, w->gflops, "%.2f");
        csv_num(f, w->pct_peak, "%.1f");
        csv_num(f, w->gbps, "%.2f");
        csv_num(f, w->pct_bw, "%.1f");
        csv_num(f, w->peak_gflops, "%.1f");
        csv_num(f, w->peak_gbps, "%.1f");
        csv_num(f, w->images_per_s, "%.2f");
        csv_str(f, w->note, 1);
        break;
    case PERF_JSON: {
        json_t *o = json_object();
        const char *strs[][2] = {{"device", w->device}, {"op", w->op},     {"algo", w->algo},
                                 {"shape", w->shape},   {"dims", w->dims}, {"status", w->status},
                                 {"note", w->note}};
        for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
            json_t *s = json_string(strs[i][1]);
            json_object_set_new(o, strs[i][0], s ? s : json_string("(not UTF-8)"));
        }
        json_object_set_new(o, "runs", json_integer(w->runs));
        const struct {
            const char *k;
            double v;
        } nums[] = {{"ms", w->ms},
                    {"min_ms", w->min_ms},
                    {"kernel_ms", w->kernel_ms},
                    {"gflop", w->gflop},
                    {"gflops", w->gflops},
                    {"pct_peak", w->pct_peak},
                    {"gbps", w->gbps},
                    {"pct_bw", w->pct_bw},
                    {"peak_gflops", w->peak_gflops},
                    {"peak_gbps", w->peak_gbps},
                    {"images_per_s", w->images_per_s}};
        for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
            json_object_set_new(o, nums[i].k, jnum(nums[i].v));
        json_array_append_new(r->array, o);
        break;
    }
    case PERF_TABLE: {
        if (r->rows == 0)
            fprintf(f, "%-18s %-14s %-20s %-34s %10s %9s %6s %8s %6s %8s  %s\n", "op", "algo",
                    "shape", "dims", "ms", "GFLOPS", "%peak", "GB/s", "%bw", "img/s", "status");
        char a[32], b[32], c[32], d[32], e[32], g[32];
        fprintf(f, "%-18s %-14s %-20s %-34s %10s %9s %6s %8s %6s %8s  %s\n", w->op, w->algo,
                w->shape, w->dims, tnum(a, sizeof a, w->ms, "%.3f"),
                tnum(b, sizeof b, w->gflops, "%.1f"), tnum(c, sizeof c, w->pct_peak, "%.1f"),
                tnum(d, sizeof d, w->gbps, "%.1f"), tnum(e, sizeof e, w->pct_bw, "%.1f"),
                tnum(g, sizeof g, w->images_per_s, "%.2f"), w->status);
        break;
    }
    }
    r->rows++;
    fflush(f);
}

void perf_report_peak(perf_report *r, const char *device, double gflops, double gbps) {
    if (!r) return;
    switch (r->fmt) {
    case PERF_CSV:
        if (r->rows == 0) fputs("device,peak_gflops,peak_gbps\n", r->f);
        csv_str(r->f, device, 0);
        fprintf(r->f, "%.1f,%.1f\n", gflops, gbps);
        break;
    case PERF_JSON: {
        json_t *o = json_object();
        json_t *s = json_string(device);
        json_object_set_new(o, "device", s ? s : json_string("(not UTF-8)"));
        json_object_set_new(o, "peak_gflops", json_real(gflops));
        json_object_set_new(o, "peak_gbps", json_real(gbps));
        json_array_append_new(r->array, o);
        break;
    }
    case PERF_TABLE:
        if (r->rows == 0) fprintf(r->f, "%-60s %12s %10s\n", "device", "peak GFLOPS", "GB/s");
        fprintf(r->f, "%-60s %12.1f %10.1f\n", device, gflops, gbps);
        break;
    }
    r->rows++;
    fflush(r->f);
}

void perf_report_close(perf_report *r) {
    if (!r) return;
    if (r->fmt == PERF_JSON) {
        json_dumpf(r->array, r->f, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        fputc('\n', r->f);
        json_decref(r->array);
    }
    fflush(r->f);
    free(r);
}
