/* Device time of what a device enqueues: clcnn_device_profile_begin/end (the total of a
 * span of work), and $CLCNN_PROFILE's trace (device time per kernel name, or per plan
 * step, printed when the device closes). The device handle: lib/device.c. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cc_span {
    cl_event first, last; /* last may be NULL: the span of one command */
} cc_span;

static void span_release(cc_span *sp) {
    if (sp->first) clReleaseEvent(sp->first);
    if (sp->last) clReleaseEvent(sp->last);
    sp->first = sp->last = NULL;
}

/* See internal.h. */
void cc_profile_release(clcnn_device *dev) {
    for (size_t i = 0; i < dev->prof_count; i++)
        span_release(&dev->prof_events[i]);
    free(dev->prof_events);
    dev->prof_events = NULL;
    dev->prof_count = dev->prof_cap = 0;
}

void clcnn_device_profile_begin(clcnn_device *dev) {
    if (!dev) return;
    for (size_t i = 0; i < dev->prof_count; i++)
        span_release(&dev->prof_events[i]);
    dev->prof_count = 0;
    dev->profiling = 1;
}

cl_event *cc_profile_slot(clcnn_device *dev) {
    if (!dev->profiling && !dev->trace) return NULL;
    dev->slot_event = NULL;
    return &dev->slot_event;
}

typedef struct cc_kernel_stat {
    char name[192];
    double ms;
    uint64_t calls;
} cc_kernel_stat;

typedef struct cc_trace_entry {
    cc_span span;
    size_t stat;
} cc_trace_entry;

/* See internal.h. */
cl_int cc_event_span_ms(cl_event first, cl_event last, double *ms) {
    cl_ulong a = 0, b = 0;
    *ms = 0;
    cl_int err = clGetEventProfilingInfo(first, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
    if (err == CL_SUCCESS)
        err = clGetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
    if (err == CL_SUCCESS && b > a) *ms = (double)(b - a) / 1e6;
    return err;
}

/* Milliseconds from the start of span.first to the end of span.last (or of first); 0
 * when the times cannot be read. */
static double span_ms(const cc_span *sp) {
    double ms;
    return cc_event_span_ms(sp->first, sp->last ? sp->last : sp->first, &ms) == CL_SUCCESS ? ms : 0;
}

/* Read the times of every pending traced event (waits for them). */
static void trace_flush(clcnn_device *dev) {
    for (size_t i = 0; i < dev->trace_count; i++) {
        cc_span *sp = &dev->trace_pending[i].span;
        clWaitForEvents(1, sp->last ? &sp->last : &sp->first);
        dev->kstats[dev->trace_pending[i].stat].ms += span_ms(sp);
        span_release(sp);
    }
    dev->trace_count = 0;
}

static void trace_add(clcnn_device *dev, const cc_span *sp, const char *what) {
    size_t k = 0;
    if (dev->trace_label) what = dev->trace_label;
    while (k < dev->kstat_count && strcmp(dev->kstats[k].name, what) != 0)
        k++;
    if (k == dev->kstat_count) {
        if (k == dev->kstat_cap) {
            size_t cap = dev->kstat_cap ? dev->kstat_cap * 2 : 32;
            cc_kernel_stat *ns = realloc(dev->kstats, cap * sizeof *ns);
            if (!ns) return; /* tracing is best effort */
            dev->kstats = ns;
            dev->kstat_cap = cap;
        }
        memset(&dev->kstats[k], 0, sizeof dev->kstats[k]);
        snprintf(dev->kstats[k].name, sizeof dev->kstats[k].name, "%s", what);
        dev->kstat_count++;
    }
    if (dev->trace_count == dev->trace_cap) {
        if (dev->trace_cap >= 4096)
            trace_flush(dev);
        else {
            size_t cap = dev->trace_cap ? dev->trace_cap * 2 : 256;
            cc_trace_entry *nt = realloc(dev->trace_pending, cap * sizeof *nt);
            if (!nt) return;
            dev->trace_pending = nt;
            dev->trace_cap = cap;
        }
    }
    clRetainEvent(sp->first);
    if (sp->last) clRetainEvent(sp->last);
    dev->kstats[k].calls++;
    dev->trace_pending[dev->trace_count].span = *sp;
    dev->trace_pending[dev->trace_count].stat = k;
    dev->trace_count++;
}

void cc_profile_commit_span(clcnn_device *dev, const char *what, cl_event first, cl_event last) {
    cc_span sp = {first, last};
    if (!first) {
        if (last) clReleaseEvent(last);
        return;
    }
    if (dev->trace) trace_add(dev, &sp, what ? what : "?");
    if (dev->profiling) {
        if (dev->prof_count == dev->prof_cap) {
            size_t cap = dev->prof_cap ? dev->prof_cap * 2 : 64;
            cc_span *ne = realloc(dev->prof_events, cap * sizeof *ne);
            if (!ne) {
                span_release(&sp); /* profiling is best effort */
                return;
            }
            dev->prof_events = ne;
            dev->prof_cap = cap;
        }
        dev->prof_events[dev->prof_count++] = sp; /* keeps our references */
        return;
    }
    span_release(&sp);
}

void cc_profile_commit(clcnn_device *dev, const char *what) {
    cl_event e = dev->slot_event;
    dev->slot_event = NULL;
    cc_profile_commit_span(dev, what, e, NULL);
}

static int cmp_stat(const void *a, const void *b) {
    double x = ((const cc_kernel_stat *)a)->ms, y = ((const cc_kernel_stat *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Print the per-kernel table of $CLCNN_PROFILE to stderr and free the trace. */
/* See internal.h. */
void cc_trace_report(clcnn_device *dev) {
    if (!dev->trace) return;
    trace_flush(dev);
    double total = 0;
    for (size_t k = 0; k < dev->kstat_count; k++)
        total += dev->kstats[k].ms;
    qsort(dev->kstats, dev->kstat_count, sizeof *dev->kstats, cmp_stat);
    fprintf(stderr, "clcnn: device time per %s on %s (CLCNN_PROFILE):\n",
            dev->trace_steps ? "plan step (else kernel)" : "kernel", dev->info.name);
    fprintf(stderr, "  %-40s %10s %8s %10s %6s\n", "kernel", "total ms", "calls", "ms/call", "%");
    for (size_t k = 0; k < dev->kstat_count; k++) {
        const cc_kernel_stat *st = &dev->kstats[k];
        fprintf(stderr, "  %-40s %10.1f %8llu %10.3f %5.1f%%\n", st->name, st->ms,
                (unsigned long long)st->calls, st->calls ? st->ms / (double)st->calls : 0,
                total > 0 ? 100 * st->ms / total : 0);
    }
    fprintf(stderr, "  %-40s %10.1f\n", "total", total);
    free(dev->trace_pending);
    free(dev->kstats);
    dev->trace_pending = NULL;
    dev->kstats = NULL;
    dev->trace_count = dev->trace_cap = dev->kstat_count = dev->kstat_cap = 0;
    dev->trace = 0; /* reported once, at close; work after that is not traced */
}

clcnn_status clcnn_device_profile_end(clcnn_device *dev, double *ms) {
    CC_RETURN_IF(!dev || !ms, CLCNN_ERR_INVALID_ARG, "clcnn_device_profile_end: NULL argument");
    dev->profiling = 0;
    *ms = 0;
    CC_CL_TRY(clFinish(dev->queue));
    double total = 0;
    for (size_t i = 0; i < dev->prof_count; i++) {
        total += span_ms(&dev->prof_events[i]);
        span_release(&dev->prof_events[i]);
    }
    dev->prof_count = 0;
    *ms = total;
    return CLCNN_OK;
}
