/* clcnn devices: every OpenCL platform/device as a table, or as JSON with --json.
 * Exit status: 0 when at least one device exists, 1 when none (or on an error), 2 on a
 * usage error. */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn/clcnn.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn devices [--json]\n\n"
               "List every OpenCL platform and device this machine has: the index (a device\n"
               "selector, as in CLCNN_DEVICE=1 or --device 1), type, platform, name, compute\n"
               "units, global and local memory, largest work-group, OpenCL C version, fp16 and\n"
               "fp64 support and the driver version. '*' marks the device opened by default\n"
               "(honouring $CLCNN_DEVICE).\n\n"
               "  --json    print a JSON document instead of the table\n"
               "  --help    this text\n");
}

static const char *type_str(clcnn_device_type t) {
    switch (t) {
    case CLCNN_DEVICE_CPU:
        return "cpu";
    case CLCNN_DEVICE_GPU:
        return "gpu";
    case CLCNN_DEVICE_ACCELERATOR:
        return "accel";
    default:
        return "other";
    }
}

/* 34359738368 -> "32 GiB", 65536 -> "64 KiB". */
static const char *human_bytes(uint64_t b, char *buf, size_t cap) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
        snprintf(buf, cap, "%.0f %s", v, units[u]);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

/* The index clcnn_device_open(NULL) picks, or -1 when it fails (the table still prints). */
static int default_index(void) {
    clcnn_device *dev = NULL;
    if (clcnn_device_open(NULL, &dev) != CLCNN_OK) return -1;
    int i = clcnn_device_get_info(dev)->index;
    clcnn_device_close(dev);
    return i;
}

static int print_json(const clcnn_device_info *d, size_t n, int def) {
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "clcnn_version", json_string(clcnn_version()));
    json_object_set_new(root, "default_index", def >= 0 ? json_integer(def) : json_null());
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(d[i].index));
        json_object_set_new(o, "platform_index", json_integer(d[i].platform_index));
        json_object_set_new(o, "type", json_string(type_str(d[i].type)));
        /* Driver strings are not guaranteed UTF-8: json_string rejects invalid UTF-8,
         * json_stringn_nocheck would write it; fall back to an empty string instead. */
        const char *fields[][2] = {{"platform", d[i].platform_name},
                                   {"vendor", d[i].vendor},
                                   {"name", d[i].name},
                                   {"driver_version", d[i].driver_version},
                                   {"opencl_c_version", d[i].opencl_c_version}};
        for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
            json_t *s = json_string(fields[f][1]);
            json_object_set_new(o, fields[f][0], s ? s : json_string(""));
        }
        json_object_set_new(o, "opencl_c_major", json_integer(d[i].opencl_c_major));
        json_object_set_new(o, "opencl_c_minor", json_integer(d[i].opencl_c_minor));
        json_object_set_new(o, "compute_units", json_integer(d[i].compute_units));
        json_object_set_new(o, "max_clock_mhz", json_integer(d[i].max_clock_mhz));
        json_object_set_new(o, "global_mem_bytes", json_integer((json_int_t)d[i].global_mem_bytes));
        json_object_set_new(o, "local_mem_bytes", json_integer((json_int_t)d[i].local_mem_bytes));
        json_object_set_new(o, "max_alloc_bytes", json_integer((json_int_t)d[i].max_alloc_bytes));
        json_object_set_new(o, "max_work_group_size",
                            json_integer((json_int_t)d[i].max_work_group_size));
        json_object_set_new(o, "fp16", json_boolean(d[i].has_fp16));
        json_object_set_new(o, "fp64", json_boolean(d[i].has_fp64));
        json_object_set_new(o, "default", json_boolean(d[i].index == def));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "devices", arr);
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    printf("\n");
    return rc == 0 ? 0 : 1;
}

static int col_width(const clcnn_device_info *d, size_t n, size_t field_off, int min) {
    int w = min;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen((const char *)&d[i] + field_off);
        if (l > w) w = l;
    }
    return w > 64 ? 64 : w;
}

static void print_table(const clcnn_device_info *d, size_t n, int def) {
    int wp = col_width(d, n, offsetof(clcnn_device_info, platform_name), 8);
    int wn = col_width(d, n, offsetof(clcnn_device_info, name), 6);
    int wc = col_width(d, n, offsetof(clcnn_device_info, opencl_c_version), 8);
    printf("  %-3s %-5s %-*s %-*s %4s %10s %9s %6s %-*s %-9s %s\n", "#", "type", wp, "platform", wn,
           "device", "CUs", "global", "local", "max-wg", wc, "OpenCL C", "fp16/fp64", "driver");
    for (size_t i = 0; i < n; i++) {
        char g[32], l[32];
        printf("%c %-3d %-5s %-*.*s %-*.*s %4u %10s %9s %6zu %-*.*s %-9s %s\n",
               d[i].index == def ? '*' : ' ', d[i].index, type_str(d[i].type), wp, wp,
               d[i].platform_name, wn, wn, d[i].name, d[i].compute_units,
               human_bytes(d[i].global_mem_bytes, g, sizeof g),
               human_bytes(d[i].local_mem_bytes, l, sizeof l), d[i].max_work_group_size, wc, wc,
               d[i].opencl_c_version,
               d[i].has_fp16 ? (d[i].has_fp64 ? "yes/yes" : "yes/no")
                             : (d[i].has_fp64 ? "no/yes" : "no/no"),
               d[i].driver_version);
    }
    if (def >= 0) {
        printf("\n* = default device (selector: $CLCNN_DEVICE, else the first GPU, else the "
               "first CPU)\n");
    } else {
        const char *env = getenv("CLCNN_DEVICE");
        printf("\nno default device: %s\n", env && *env ? "$CLCNN_DEVICE matches no device above"
                                                        : "the default device could not be opened");
    }
    printf("several devices (data-parallel training, docs/distributed.md): POCL's CPU device "
           "splits in two with POCL_DEVICES=\"pthread pthread\"\n");
}

int cmd_devices(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "clcnn devices: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    size_t n = 0;
    clcnn_status s = clcnn_device_list(NULL, 0, &n);
    clcnn_device_info *d = NULL;
    if (s == CLCNN_OK && n > 0) {
        d = calloc(n, sizeof *d);
        if (!d) {
            fprintf(stderr, "clcnn devices: out of memory\n");
            return 1;
        }
        s = clcnn_device_list(d, n, &n);
    }
    if (s != CLCNN_OK || n == 0) {
        fprintf(stderr, "clcnn devices: %s: %s\n", clcnn_status_str(s ? s : CLCNN_ERR_NO_DEVICE),
                clcnn_last_error());
        free(d);
        return 1;
    }
    int def = default_index();
    int rc = 0;
    if (json)
        rc = print_json(d, n, def);
    else
        print_table(d, n, def);
    free(d);
    return rc;
}
