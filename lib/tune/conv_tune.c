/* Convolution tuning: time every algorithm on a shape, store the winner in the device's
 * tuning file, and look winners up for CLCNN_CONV_AUTO (lib/ops/conv2d.c resolve_algo).
 *
 * The "conv2d" section of the tuning file (lib/tune/tune_file.c, format version 1; an
 * older file without it simply has no convolution winners) is an array of entries:
 *   { "pass": "forward" | "backward_data" | "backward_filter",
 *     "n": 16, "c": 64, "h": 56, "w": 56, "k": 64, "r": 3, "s": 3,
 *     "stride": [1, 1], "pad": [1, 1], "dilation": [1, 1], "groups": 1,   (h, w)
 *     "algo": "winograd", "ms": 21.4,                   the winner, median ms
 *     "times_ms": {"direct": 60.2, "gemm": 75.0, ...},  every algorithm timed (optional)
 *     "runs": 3,                                        timed runs each (optional)
 *     "params": "4 0 8 0 0" }  the winner's kernel parameters (optional; "": heuristic)
 * x is (n,c,h,w) and the weights (k,c/groups,r,s) for all three passes. Unknown keys,
 * unknown algorithm names, numbers out of range, params that are not a string of at most
 * 63 printable ASCII characters, geometries the library rejects and two entries with
 * the same key make the whole file invalid (CLCNN_ERR_FORMAT). The syntax of params is
 * the algorithm's (lib/ops/conv2d_*.c checks it when it runs: an invalid string means
 * its heuristic). cc_conv_cfg hands them to the algorithms: the tuner's candidate, else
 * $CLCNN_CONV_<ALGO>_CFG, else the stored params when the stored winner is that algorithm.
 *
 * Lookup: the entry with the exact key, else the same key with the batch size nearest
 * to n (in ratio), else none. The batch is part of the key because the winner depends on
 * it: on POCL (2-core Xeon, 2026-11) 5 of 15 (shape, pass) pairs of VGG 3x3, ResNet 1x1,
 * LeNet 5x5 and AlexNet conv1 at two or three batch sizes changed winner, mostly between
 * batch 1 (direct) and 4..256 (implicit_gemm). The parsed entries are kept in memory per tuning
 * file path, so AUTO reads the file once per process; this process's writes and imports
 * drop the copy. */
#include "tune_internal.h"

#include "ops/conv2d_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static const char *const pass_words[CLCNN_CONV_PASS_COUNT] = {"forward", "backward_data",
                                                              "backward_filter"};

const char *clcnn_conv_pass_name(clcnn_conv_pass pass) {
    return (int)pass >= 0 && pass < CLCNN_CONV_PASS_COUNT ? pass_words[pass] : "unknown";
}

int clcnn_conv_pass_parse(const char *name) {
    for (int i = 0; name && i < CLCNN_CONV_PASS_COUNT; i++)
        if (!strcmp(name, pass_words[i])) return i;
    return -1;
}

/* ---- entries <-> JSON ------------------------------------------------------------------ */

static int same_key(const cc_conv_entry *a, const cc_conv_entry *b) {
    return a->pass == b->pass && a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w &&
           a->k == b->k && a->r == b->r && a->s == b->s && a->sh == b->sh && a->sw == b->sw &&
           a->ph == b->ph && a->pw == b->pw && a->dh == b->dh && a->dw == b->dw &&
           a->groups == b->groups;
}

/* The same key except the batch size. */
static int same_shape(const cc_conv_entry *a, const cc_conv_entry *b) {
    cc_conv_entry t = *b;
    t.n = a->n;
    return same_key(a, &t);
}

static void key_str(const cc_conv_entry *e, char *buf, size_t cap) {
    snprintf(buf, cap, "%s n%d c%d %dx%d k%d %dx%d stride %dx%d pad %dx%d dilation %dx%d groups %d",
             clcnn_conv_pass_name((clcnn_conv_pass)e->pass), e->n, e->c, e->h, e->w, e->k, e->r,
             e->s, e->sh, e->sw, e->ph, e->pw, e->dh, e->dw, e->groups);
}

static int cmp_entry(const void *pa, const void *pb) {
    const cc_conv_entry *a = pa, *b = pb;
    const int ka[] = {a->pass, a->c,  a->h,  a->w,  a->k,  a->r,      a->s, a->sh,
                      a->sw,   a->ph, a->pw, a->dh, a->dw, a->groups, a->n};
    const int kb[] = {b->pass, b->c,  b->h,  b->w,  b->k,  b->r,      b->s, b->sh,
                      b->sw,   b->ph, b->pw, b->dh, b->dw, b->groups, b->n};
    for (size_t i = 0; i < sizeof ka / sizeof *ka; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

/* An integer member in [lo, hi]; NULL or the reason. */
static const char *get_int(json_t *v, long long lo, long long hi, int *out) {
    if (!v) return "is missing";
    if (!json_is_integer(v)) return "is not an integer";
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return "is out of range";
    *out = (int)x;
    return NULL;
}

static const char *get_pair(json_t *v, long long lo, int out[2]) {
    if (!v) return "is missing";
    if (!json_is_array(v) || json_array_size(v) != 2) return "is not an array [h, w]";
    for (int i = 0; i < 2; i++) {
        const char *why = get_int(json_array_get(v, (size_t)i), lo, INT32_MAX, &out[i]);
        if (why) return why;
    }
    return NULL;
}

static const char *get_ms(json_t *v, double *out) {
    if (!json_is_number(v)) return "is not a number";
    double x = json_number_value(v);
    if (!isfinite(x) || x < 0 || x > 1e9) return "is not a time in ms (0 to 1e9)";
    *out = x;
    return NULL;
}

static const char REJECTED[] = "is a convolution the library rejects";

/* Parse entry i; NULL or the reason, with *what naming the member at fault. */
static const char *parse_entry(json_t *o, cc_conv_entry *e, const char **what) {
    static const char *const known[] = {"pass", "n",  "c",        "h",    "w",        "k",
                                        "r",    "s",  "stride",   "pad",  "dilation", "groups",
                                        "algo", "ms", "times_ms", "runs", "params"};
    *what = "";
    if (!json_is_object(o)) return "is not an object";
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            *what = key;
            return "is not a key of a conv2d entry";
        }
    }
    memset(e, 0, sizeof *e);
    for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
        e->times[a] = -1.0;
    const char *why = NULL;
    *what = "pass";
    const char *ps = json_string_value(json_object_get(o, "pass"));
    if (!ps) return "is missing or not a string";
    if ((e->pass = clcnn_conv_pass_parse(ps)) < 0)
        return "is not forward, backward_data or backward_filter";
    struct {
        const char *name;
        int *dst;
    } ints[] = {{"n", &e->n}, {"c", &e->c}, {"h", &e->h}, {"w", &e->w},
                {"k", &e->k}, {"r", &e->r}, {"s", &e->s}, {"groups", &e->groups}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        *what = ints[i].name;
        if ((why = get_int(json_object_get(o, ints[i].name), 1, INT32_MAX, ints[i].dst)))
            return why;
    }
    int st[2], pd[2], dl[2];
    *what = "stride";
    if ((why = get_pair(json_object_get(o, "stride"), 1, st))) return why;
    *what = "pad";
    if ((why = get_pair(json_object_get(o, "pad"), 0, pd))) return why;
    *what = "dilation";
    if ((why = get_pair(json_object_get(o, "dilation"), 1, dl))) return why;
    e->sh = st[0], e->sw = st[1], e->ph = pd[0], e->pw = pd[1], e->dh = dl[0], e->dw = dl[1];
    *what = "algo";
    const char *an = json_string_value(json_object_get(o, "algo"));
    if (!an) return "is missing or not a string";
    e->algo = clcnn_conv_algo_parse(an);
    if (e->algo <= CLCNN_CONV_AUTO) return "is not the name of an algorithm";
    *what = "ms";
    if ((why = get_ms(json_object_get(o, "ms"), &e->ms))) return why;
    json_t *times = json_object_get(o, "times_ms");
    if (times) {
        *what = "times_ms";
        if (!json_is_object(times)) return "is not an object";
        json_object_foreach(times, key, val) {
            *what = key;
            int a = clcnn_conv_algo_parse(key);
            if (a <= CLCNN_CONV_AUTO) return "in times_ms is not the name of an algorithm";
            if ((why = get_ms(val, &e->times[a]))) return why;
        }
    }
    json_t *runs = json_object_get(o, "runs");
    *what = "runs";
    if (runs && (why = get_int(runs, 1, 1000000, &e->runs))) return why;
    json_t *params = json_object_get(o, "params");
    *what = "params";
    if (params) {
        const char *ps = json_string_value(params);
        if (!ps) return "is not a string";
        size_t len = strlen(ps);
        if (len >= sizeof e->params || len != json_string_length(params))
            return "is longer than 63 characters";
        for (size_t i = 0; i < len; i++)
            if (ps[i] < 0x20 || ps[i] > 0x7e) return "has a character that is not printable";
        memcpy(e->params, ps, len + 1);
    }
    /* the geometry must be one the library accepts */
    *what = "";
    if (e->c % e->groups || e->k % e->groups) return "has groups that do not divide c and k";
    clcnn_conv2d_desc d = {e->sh, e->sw, e->ph, e->pw, e->dh, e->dw, e->groups, CLCNN_CONV_AUTO};
    size_t xs[4] = {(size_t)e->n, (size_t)e->c, (size_t)e->h, (size_t)e->w};
    size_t ws[4] = {(size_t)e->k, (size_t)(e->c / e->groups), (size_t)e->r, (size_t)e->s};
    size_t ys[4];
    if (clcnn_conv2d_output_shape(&d, xs, ws, ys) != CLCNN_OK) return REJECTED;
    return NULL;
}

clcnn_status cc_conv_entries_parse(json_t *section, const char *path, cc_conv_entry **out,
                                   size_t *count) {
    CC_RETURN_IF(!json_is_array(section), CLCNN_ERR_FORMAT,
                 "%s: \"conv2d\" is not an array of entries", path);
    size_t n = json_array_size(section);
    cc_conv_entry *arr = n ? calloc(n, sizeof *arr) : NULL;
    CC_RETURN_IF(n && !arr, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path);
    for (size_t i = 0; i < n; i++) {
        const char *what = "";
        const char *why = parse_entry(json_array_get(section, i), &arr[i], &what);
        if (why) {
            free(arr);
            char detail[600] = "";
            if (why == REJECTED) snprintf(detail, sizeof detail, " (%s)", clcnn_last_error());
            return cc_fail(CLCNN_ERR_FORMAT, "%s: conv2d entry %zu: %s%s%s%s", path, i, what,
                           what[0] ? " " : "", why, detail);
        }
    }
    /* duplicates: sort a copy by key */
    cc_conv_entry *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (n && !sorted) {
        free(arr);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path);
    }
    if (n) memcpy(sorted, arr, n * sizeof *arr);
    if (n) qsort(sorted, n, sizeof *sorted, cmp_entry);
    for (size_t i = 1; i < n; i++) {
        if (!same_key(&sorted[i - 1], &sorted[i])) continue;
        char key[256];
        key_str(&sorted[i], key, sizeof key);
        free(sorted);
        free(arr);
        return cc_fail(CLCNN_ERR_FORMAT, "%s: two conv2d entries for %s", path, key);
    }
    free(sorted);
    if (out) {
        *out = arr;
        *count = n;
    } else {
        free(arr);
    }
    return CLCNN_OK;
}

static json_t *pair(int a, int b) {
    json_t *v = json_array();
    json_array_append_new(v, json_integer(a));
    json_array_append_new(v, json_integer(b));
    return v;
}

/* Times with 3 significant decimals in ms: enough, and diffs stay readable. */
static json_t *ms_value(double ms) {
    return json_real(round(ms * 1000.0) / 1000.0);
}

static json_t *entry_json(const cc_conv_entry *e) {
    json_t *o = json_object();
    json_object_set_new(o, "pass", json_string(clcnn_conv_pass_name((clcnn_conv_pass)e->pass)));
    json_object_set_new(o, "n", json_integer(e->n));
    json_object_set_new(o, "c", json_integer(e->c));
    json_object_set_new(o, "h", json_integer(e->h));
    json_object_set_new(o, "w", json_integer(e->w));
    json_object_set_new(o, "k", json_integer(e->k));
    json_object_set_new(o, "r", json_integer(e->r));
    json_object_set_new(o, "s", json_integer(e->s));
    json_object_set_new(o, "stride", pair(e->sh, e->sw));
    json_object_set_new(o, "pad", pair(e->ph, e->pw));
    json_object_set_new(o, "dilation", pair(e->dh, e->dw));
    json_object_set_new(o, "groups", json_integer(e->groups));
    json_object_set_new(o, "algo", json_string(clcnn_conv_algo_name((clcnn_conv_algo)e->algo)));
    json_object_set_new(o, "ms", ms_value(e->ms));
    json_t *t = json_object();
    for (int a = 1; a < CLCNN_CONV_ALGO_COUNT; a++)
        if (e->times[a] >= 0)
            json_object_set_new(t, clcnn_conv_algo_name((clcnn_conv_algo)a), ms_value(e->times[a]));
    json_object_set_new(o, "times_ms", t);
    if (e->runs > 0) json_object_set_new(o, "runs", json_integer(e->runs));
    json_object_set_new(o, "params", json_string(e->params));
    return o;
}

#define TUNE_DUMP_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6))

char *cc_tune_dumps(json_t *root) {
    json_t *conv = json_object_get(root, "conv2d");
    if (!json_is_array(conv) || json_object_size(root) < 2)
        return json_dumps(root, TUNE_DUMP_FLAGS);
    json_incref(conv);
    json_object_del(root, "conv2d");
    char *head = json_dumps(root, TUNE_DUMP_FLAGS);
    json_object_set_new(root, "conv2d", conv);
    char *close = head ? strrchr(head, '}') : NULL;
    if (!close) {
        free(head);
        return NULL;
    }
    *close = '\0';
    size_t hl = strlen(head);
    while (hl && (head[hl - 1] == '\n' || head[hl - 1] == ' '))
        head[--hl] = '\0';
    size_t n = json_array_size(conv), cap = hl + 64, len = 0;
    char **lines = calloc(n ? n : 1, sizeof *lines);
    int ok = lines != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        lines[i] =
            json_dumps(json_array_get(conv, i), JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        ok = lines[i] != NULL;
        if (ok) cap += strlen(lines[i]) + 8;
    }
    char *text = ok ? malloc(cap) : NULL;
    if (text) {
        len = (size_t)snprintf(text, cap, "%s,\n  \"conv2d\": [", head);
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s\n    %s", i ? "," : "", lines[i]);
        snprintf(text + len, cap - len, "%s]\n}", n ? "\n  " : "");
    }
    for (size_t i = 0; lines && i < n; i++)
        free(lines[i]);
    free(lines);
    free(head);
    return text;
}

/* ---- in-memory tables and the AUTO lookup ------------------------------------------------ */

typedef struct table {
    char path[4200];
    cc_conv_entry *e;
    size_t n;
    struct table *next;
} table;

static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static table *tables;

void cc_conv_tune_forget(void) {
    pthread_mutex_lock(&tables_lock);
    while (tables) {
        table *t = tables;
        tables = t->next;
        free(t->e);
        free(t);
    }
    pthread_mutex_unlock(&tables_lock);
}

/* Read the conv2d entries of the file at path for dev. Missing file: none. */
static clcnn_status load_entries(const clcnn_device *dev, const char *path, cc_conv_entry **out,
                                 size_t *count) {
    *out = NULL;
    *count = 0;
    if (access(path, F_OK) != 0) return CLCNN_OK;
    cc_tune_record rec;
    CC_TRY(cc_tune_record_read(path, &rec)); /* validates the conv2d section too */
    CC_RETURN_IF(strcmp(rec.device, dev->info.name) != 0, CLCNN_ERR_FORMAT,
                 "tuning file %s was made for \"%s\", not \"%s\"", path, rec.device,
                 dev->info.name);
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    CC_RETURN_IF(!root, CLCNN_ERR_IO, "cannot read %s", path);
    json_t *sec = json_object_get(root, "conv2d");
    clcnn_status s = sec ? cc_conv_entries_parse(sec, path, out, count) : CLCNN_OK;
    json_decref(root);
    return s;
}

/* The table of path, loaded on first use (an invalid file gives an empty table). Called
 * with tables_lock held. */
static table *table_for(const clcnn_device *dev, const char *path) {
    for (table *t = tables; t; t = t->next)
        if (!strcmp(t->path, path)) return t;
    table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    snprintf(t->path, sizeof t->path, "%s", path);
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", clcnn_last_error());
    clcnn_status s = load_entries(dev, path, &t->e, &t->n);
    if (s != CLCNN_OK && cc_verbose())
        fprintf(stderr, "clcnn: ignoring the convolution winners of the tuning file: %s\n",
                clcnn_last_error());
    if (saved[0])
        cc_fail(CLCNN_ERR_INVALID_ARG, "%s", saved); /* restore the message, not a failure */
    else
        clcnn_clear_error();
    if (s == CLCNN_OK && t->n && cc_verbose())
        fprintf(stderr, "clcnn: %zu tuned convolution entries from %s\n", t->n, path);
    t->next = tables;
    tables = t;
    return t;
}

/* The key fields (pass and geometry) of an entry for cv. */
static cc_conv_entry entry_key(const cc_conv *cv, int pass) {
    return (cc_conv_entry){.pass = pass,
                           .n = cv->n,
                           .c = cv->c,
                           .h = cv->h,
                           .w = cv->w,
                           .k = cv->k,
                           .r = cv->r,
                           .s = cv->s,
                           .sh = cv->sh,
                           .sw = cv->sw,
                           .ph = cv->ph,
                           .pw = cv->pw,
                           .dh = cv->dh,
                           .dw = cv->dw,
                           .groups = cv->groups};
}

/* The entry for pass and cv (the exact batch, else the nearest) copied into *out; 0 when
 * there is none (or $CLCNN_TUNE is off, or no tuning file). */
static int find_entry(const clcnn_device *dev, const cc_conv *cv, int pass, cc_conv_entry *out) {
    if (!dev || !cv || clcnn_tune_mode_get() == CLCNN_TUNE_OFF) return 0;
    char path[4200];
    if (!clcnn_tune_file_path(dev, path, sizeof path)) return 0;
    cc_conv_entry key = entry_key(cv, pass);
    int found = 0;
    pthread_mutex_lock(&tables_lock);
    table *t = table_for(dev, path);
    double best = INFINITY;
    for (size_t i = 0; t && i < t->n; i++) {
        const cc_conv_entry *e = &t->e[i];
        if (!same_shape(&key, e)) continue;
        double dist = fabs(log((double)e->n / key.n)); /* exact batch: 0 */
        if (dist < best || (dist == best && e->n > key.n)) {
            best = dist;
            *out = *e;
            found = 1;
        }
    }
    pthread_mutex_unlock(&tables_lock);
    return found;
}

clcnn_conv_algo cc_conv_tuned_algo(clcnn_device *dev, const cc_conv *cv, int pass) {
    cc_conv_entry e;
    return find_entry(dev, cv, pass, &e) ? (clcnn_conv_algo)e.algo : CLCNN_CONV_AUTO;
}

/* ---- kernel parameters --------------------------------------------------------------- */

_Static_assert(sizeof((cc_conv_entry *)0)->params == CC_CONV_CFG_MAX,
               "a stored parameter string must fit a parameter buffer");

const char *cc_conv_cfg(const clcnn_device *dev, const char *env_name, int pass, const cc_conv *cv,
                        clcnn_conv_algo algo, char buf[CC_CONV_CFG_MAX]) {
    if (!dev) return NULL;
    if (dev->tune_cfg_algo != CLCNN_CONV_AUTO) { /* the tuner is timing a candidate */
        if (dev->tune_cfg_algo != (int)algo || !dev->tune_cfg[0]) return NULL;
        snprintf(buf, CC_CONV_CFG_MAX, "%s", dev->tune_cfg);
        return buf;
    }
    const char *env = env_name ? getenv(env_name) : NULL;
    if (env && env[0]) return env;
    cc_conv_entry e;
    if (!find_entry(dev, cv, pass, &e) || e.algo != (int)algo || !e.params[0]) return NULL;
    memcpy(buf, e.params, CC_CONV_CFG_MAX);
    return buf;
}

static _Thread_local char last_cfg[CC_CONV_CFG_MAX];
static _Thread_local int last_algo;

void cc_conv_cfg_used(clcnn_conv_algo algo, const char *cfg) {
    last_algo = (int)algo;
    snprintf(last_cfg, sizeof last_cfg, "%s", cfg ? cfg : "");
}

const char *cc_conv_cfg_last(clcnn_conv_algo *algo) {
    if (algo) *algo = (clcnn_conv_algo)last_algo;
    return last_cfg;
}

/* ---- storing a winner ------------------------------------------------------------------ */

static clcnn_status store_entry(clcnn_device *dev, const char *path, const cc_conv_entry *e) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        CC_RETURN_IF(cc_tune_mkdirs(dir) != 0, CLCNN_ERR_IO, "cannot create directory %s: %s", dir,
                     strerror(errno));
    }
    int lock = cc_tune_lock(path);
    json_t *root = NULL;
    cc_conv_entry *arr = NULL;
    size_t n = 0;
    clcnn_status s = CLCNN_OK;
    if (access(path, F_OK) == 0) {
        s = load_entries(dev, path, &arr, &n);
        if (s != CLCNN_OK) {
            cc_fail_append(s, " (not tuning over it: fix or remove the file)");
            goto done;
        }
        root = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    } else {
        root = json_object();
        cc_tune_record rec;
        memset(&rec, 0, sizeof rec);
        cc_tune_record_identify(&rec, dev);
        json_object_set_new(root, "format", json_string("clcnn-tune"));
        json_object_set_new(root, "version", json_integer(1));
        json_object_set_new(root, "device", json_string(rec.device));
        json_object_set_new(root, "platform", json_string(rec.platform));
        json_object_set_new(root, "driver", json_string(rec.driver));
    }
    if (!root) {
        s = cc_fail(CLCNN_ERR_IO, "cannot read %s", path);
        goto done;
    }
    size_t i = 0;
    while (i < n && !same_key(&arr[i], e))
        i++;
    if (i == n) {
        cc_conv_entry *na = realloc(arr, (n + 1) * sizeof *na);
        if (!na) {
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
            goto done;
        }
        arr = na;
        n++;
    }
    arr[i] = *e;
    qsort(arr, n, sizeof *arr, cmp_entry);
    json_t *sec = json_array();
    for (size_t j = 0; j < n; j++)
        json_array_append_new(sec, entry_json(&arr[j]));
    json_object_set_new(root, "conv2d", sec);
    char *text = cc_tune_dumps(root);
    if (!text) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
        goto done;
    }
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (withnl) {
        text = withnl;
        text[len++] = '\n';
        text[len] = '\0';
    }
    s = cc_tune_write_atomic(path, text, len);
    free(text);
done:
    if (root) json_decref(root);
    free(arr);
    cc_tune_unlock(lock);
    cc_conv_tune_forget();
    return s;
}

/* ---- timing ------------------------------------------------------------------------------ */

clcnn_conv2d_tune_options clcnn_conv2d_tune_options_default(void) {
    clcnn_conv2d_tune_options o;
    memset(&o, 0, sizeof o);
    o.save = 1;
    o.seed = 1;
    return o;
}

typedef struct job {
    clcnn_conv_pass pass;
    clcnn_conv2d_desc d;
    clcnn_tensor *in0, *in1, *bias, *out; /* see make_tensors */
} job;

static clcnn_status invoke(clcnn_device *dev, const job *j) {
    switch (j->pass) {
    case CLCNN_CONV_PASS_FORWARD: /* in0 x, in1 w, out y */
        return clcnn_conv2d_forward(dev, &j->d, j->in0, j->in1, j->bias, j->out, CLCNN_ACT_NONE);
    case CLCNN_CONV_PASS_BACKWARD_DATA: /* in0 dy, in1 w, out dx */
        return clcnn_conv2d_backward_data(dev, &j->d, j->in0, j->in1, j->out);
    default: /* in0 x, in1 dy, out dw */
        return clcnn_conv2d_backward_filter(dev, &j->d, j->in0, j->in1, j->out, NULL);
    }
}

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One call, timed on the device between two queue markers (wall clock when the device
 * gives no marker times). */
static clcnn_status timed(clcnn_device *dev, const job *j, double *ms) {
    cl_command_queue q = clcnn_device_queue(dev);
    cl_event m0 = NULL, m1 = NULL;
    CC_TRY(clcnn_device_finish(dev));
    double t0 = wall_ms();
    cl_int e0 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m0);
    clcnn_status s = invoke(dev, j);
    cl_int e1 = clEnqueueMarkerWithWaitList(q, 0, NULL, &m1);
    clcnn_status s2 = clcnn_device_finish(dev);
    double t1 = wall_ms();
    cl_ulong start = 0, end = 0;
    if (e0 == CL_SUCCESS)
        e0 = clGetEventProfilingInfo(m0, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (e1 == CL_SUCCESS)
        e1 = clGetEventProfilingInfo(m1, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    if (m0) clReleaseEvent(m0);
    if (m1) clReleaseEvent(m1);
    if (s != CLCNN_OK) return s;
    if (s2 != CLCNN_OK) return s2;
    *ms =
        e0 == CL_SUCCESS && e1 == CL_SUCCESS && end > start ? (double)(end - start) / 1e6 : t1 - t0;
    return CLCNN_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static clcnn_status make(clcnn_device *dev, const size_t *shape, int ndim, uint64_t *rng, int fill,
                         clcnn_tensor **out) {
    clcnn_tensor *t = NULL;
    CC_TRY(clcnn_tensor_create(dev, CLCNN_F32, ndim, shape, &t));
    size_t n = clcnn_tensor_numel(t);
    clcnn_status s = CLCNN_OK;
    if (!fill) {
        s = clcnn_tensor_fill(t, 0.0f);
    } else {
        float *h = malloc(n * sizeof *h);
        if (!h) {
            clcnn_tensor_free(t);
            return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "conv2d tune: out of host memory (%zu floats)",
                           n);
        }
        for (size_t i = 0; i < n; i++) {
            *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
            h[i] = (float)(*rng >> 40) * (2.0f / 16777216.0f) - 1.0f;
        }
        s = clcnn_tensor_upload(t, h, n * sizeof *h);
        free(h);
    }
    if (s != CLCNN_OK) {
        clcnn_tensor_free(t);
        return s;
    }
    *out = t;
    return CLCNN_OK;
}

static void progress(const clcnn_conv2d_tune_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(const clcnn_conv2d_tune_options *o, const char *fmt, ...) {
    if (!o->progress) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->progress(o->user, line);
}

static void note_add(char *note, size_t cap, const char *fmt, const char *a, const char *b) {
    size_t len = strlen(note);
    if (len + 1 >= cap) return;
    snprintf(note + len, cap - len, "%s", len ? "; " : "");
    len = strlen(note);
    snprintf(note + len, cap - len, fmt, a, b);
}

/* Normalised squared difference of got against ref. */
static double nmse(const float *got, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (!isfinite(num)) return INFINITY;
    return den > 0 ? num / den : num;
}

/* Algorithms that disagree with direct by more than this are not candidates: a wrong
 * result is ~1, float rounding of every algorithm here is below 1e-8 (Winograd's larger
 * error included). */
#define TUNE_NMSE_MAX 1e-5

/* Candidate kernel parameters per algorithm: near the heuristic, more when exhaustive. */
#define TUNE_CANDS 6
#define TUNE_CANDS_EXHAUSTIVE 40
#define TUNE_VARIANTS (CLCNN_CONV_ALGO_COUNT * (TUNE_CANDS_EXHAUSTIVE + 1))

typedef struct variant {
    int algo;
    char cfg[CC_CONV_CFG_MAX]; /* "": the algorithm's heuristic */
    int ok;                    /* ran and agreed with direct */
} variant;

static int candidates(const clcnn_device *dev, const cc_conv *cv, clcnn_conv_pass pass, int algo,
                      int exhaustive, char out[][CC_CONV_CFG_MAX], int max) {
    switch (algo) {
    case CLCNN_CONV_DIRECT:
        return cc_conv2d_direct_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_WINOGRAD:
        return cc_conv2d_winograd_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_DEPTHWISE:
        return cc_conv2d_depthwise_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    case CLCNN_CONV_IMPLICIT_GEMM: /* backward filter is its own kernel (conv2d_wgrad.c) */
        return pass == CLCNN_CONV_PASS_BACKWARD_FILTER
                   ? cc_conv2d_wgrad_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max)
                   : cc_conv2d_implicit_cfg_candidates(dev, cv, (int)pass, exhaustive, out, max);
    default: /* gemm: CLBlast's parameters come from clcnn_gemm_tune */
        return 0;
    }
}

/* Make algo use cfg ("": its heuristic) on dev until the next call; CLCNN_CONV_AUTO
 * stops forcing. */
static void force_cfg(clcnn_device *dev, int algo, const char *cfg) {
    dev->tune_cfg_algo = algo;
    snprintf(dev->tune_cfg, sizeof dev->tune_cfg, "%s", cfg);
}

clcnn_status clcnn_conv2d_tune(clcnn_device *dev, clcnn_conv_pass pass, const clcnn_conv2d_desc *d,
                               const size_t x[4], const size_t w[4],
                               const clcnn_conv2d_tune_options *opt,
                               clcnn_conv2d_tune_result *out) {
    const char *op = "conv2d tune";
    CC_RETURN_IF(!dev || !d || !x || !w || !out, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", op);
    CC_RETURN_IF((int)pass < 0 || pass >= CLCNN_CONV_PASS_COUNT, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown pass %d", op, (int)pass);
    clcnn_tune_mode mode = clcnn_tune_mode_get();
    CC_RETURN_IF(mode == CLCNN_TUNE_OFF, CLCNN_ERR_UNSUPPORTED,
                 "tuning is disabled (CLCNN_TUNE=off)");
    clcnn_conv2d_tune_options o = opt ? *opt : clcnn_conv2d_tune_options_default();
    int runs = o.runs > 0 ? o.runs : mode == CLCNN_TUNE_EXHAUSTIVE ? 9 : 3;
    int warmups = mode == CLCNN_TUNE_EXHAUSTIVE ? 2 : 1;
    if (runs > 1000) runs = 1000;
    job j = {.pass = pass, .d = *d};
    j.d.algo = CLCNN_CONV_AUTO;
    size_t ys[4];
    cc_conv cv;
    CC_TRY(cc_conv2d_geometry("conv2d", &j.d, x, w, ys, &cv));

    uint64_t rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;
    clcnn_status s = CLCNN_OK;
    float *ref = NULL, *got = NULL;
    double *samples = NULL;
    variant *v = NULL;
    char(*cands)[CC_CONV_CFG_MAX] = NULL;
    size_t bias_shape[1] = {w[0]};
    switch (pass) {
    case CLCNN_CONV_PASS_FORWARD:
        s = make(dev, x, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, bias_shape, 1, &rng, 1, &j.bias);
        if (s == CLCNN_OK) s = make(dev, ys, 4, &rng, 0, &j.out);
        break;
    case CLCNN_CONV_PASS_BACKWARD_DATA:
        s = make(dev, ys, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, x, 4, &rng, 0, &j.out);
        break;
    default:
        s = make(dev, x, 4, &rng, 1, &j.in0);
        if (s == CLCNN_OK) s = make(dev, ys, 4, &rng, 1, &j.in1);
        if (s == CLCNN_OK) s = make(dev, w, 4, &rng, 0, &j.out);
        break;
    }
    size_t n_out = j.out ? clcnn_tensor_numel(j.out) : 0;
    if (s == CLCNN_OK) {
        ref = malloc(n_out * sizeof *ref);
        got = malloc(n_out * sizeof *got);
        samples = malloc((size_t)runs * TUNE_VARIANTS * sizeof *samples);
        v = calloc(TUNE_VARIANTS, sizeof *v);
        cands = calloc(TUNE_CANDS_EXHAUSTIVE, sizeof *cands);
        if (!ref || !got || !samples || !v || !cands)
            s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of host memory (%zu floats)", op, n_out);
    }

    clcnn_conv2d_tune_result r;
    memset(&r, 0, sizeof r);
    r.winner = CLCNN_CONV_AUTO;
    r.runs = runs;
    for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
        r.ms[a] = -1.0;
    int have_ref = 0;
    const char *pname = clcnn_conv_pass_name(pass);
    /* First every algorithm's heuristic once (warm-up: builds, buffer pool) and its result
     * checked; direct (index 1) runs every pass and shape, and its result is the
     * reference. Then, for each algorithm that ran, its candidate kernel parameters the
     * same way (each one kernel build). */
    int nv = 0;
    for (int a = 1; s == CLCNN_OK && a < CLCNN_CONV_ALGO_COUNT; a++) {
        const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a);
        j.d.algo = (clcnn_conv_algo)a;
        int first = nv;
        v[nv].algo = a;
        v[nv].cfg[0] = '\0';
        nv++;
        if (!o.algo_only && s == CLCNN_OK) {
            char(*c)[CC_CONV_CFG_MAX] = cands;
            int nc = candidates(dev, &cv, pass, a, mode == CLCNN_TUNE_EXHAUSTIVE, c,
                                mode == CLCNN_TUNE_EXHAUSTIVE ? TUNE_CANDS_EXHAUSTIVE : TUNE_CANDS);
            for (int i = 0; i < nc && nv < TUNE_VARIANTS; i++) {
                v[nv].algo = a;
                memcpy(v[nv].cfg, c[i], CC_CONV_CFG_MAX);
                nv++;
            }
        }
        for (int vi = first; vi < nv; vi++) {
            const char *vc = v[vi].cfg;
            clcnn_status e = CLCNN_OK;
            force_cfg(dev, a, vc);
            for (int i = 0; e == CLCNN_OK && i < warmups; i++)
                e = invoke(dev, &j);
            if (e == CLCNN_OK) e = clcnn_device_finish(dev);
            force_cfg(dev, CLCNN_CONV_AUTO, "");
            if (e == CLCNN_ERR_UNSUPPORTED && vi == first) {
                progress(&o, "%s %s: not supported here (%s)", pname, an, clcnn_last_error());
                nv = first; /* nor its candidates */
                break;
            }
            if (e == CLCNN_OK)
                e = clcnn_tensor_download(j.out, have_ref ? got : ref, n_out * sizeof *ref);
            if (e != CLCNN_OK) {
                progress(&o, "%s %s%s%s: failed: %s", pname, an, vc[0] ? " " : "", vc,
                         clcnn_last_error());
                note_add(r.note, sizeof r.note, "%s failed: %s", an, clcnn_last_error());
                if (a == CLCNN_CONV_DIRECT && vi == first) { /* no reference: give up */
                    s = e;
                    break;
                }
                continue;
            }
            if (have_ref) {
                double err = nmse(got, ref, n_out);
                if (!(err <= TUNE_NMSE_MAX)) {
                    char msg[64];
                    snprintf(msg, sizeof msg, "%.3g", err);
                    progress(&o, "%s %s%s%s: WRONG results (normalised squared error %s vs direct)",
                             pname, an, vc[0] ? " " : "", vc, msg);
                    note_add(r.note, sizeof r.note, "%s: wrong results (nmse %s vs direct)", an,
                             msg);
                    continue;
                }
            }
            have_ref = 1;
            v[vi].ok = 1;
        }
    }
    /* Then the timed runs, round robin over the candidates, so a change of machine load
     * during the measurement hits every algorithm alike. */
    for (int i = 0; s == CLCNN_OK && i < runs; i++) {
        for (int vi = 0; vi < nv; vi++) {
            if (!v[vi].ok) continue;
            int a = v[vi].algo;
            j.d.algo = (clcnn_conv_algo)a;
            force_cfg(dev, a, v[vi].cfg);
            clcnn_status e = timed(dev, &j, &samples[(size_t)vi * runs + i]);
            force_cfg(dev, CLCNN_CONV_AUTO, "");
            if (e != CLCNN_OK) {
                const char *an = clcnn_conv_algo_name((clcnn_conv_algo)a);
                progress(&o, "%s %s: failed: %s", pname, an, clcnn_last_error());
                note_add(r.note, sizeof r.note, "%s failed: %s", an, clcnn_last_error());
                v[vi].ok = 0;
            }
        }
    }
    int win = -1;
    double win_ms = INFINITY;
    for (int vi = 0; s == CLCNN_OK && vi < nv; vi++) {
        if (!v[vi].ok) continue;
        int a = v[vi].algo;
        double *t = samples + (size_t)vi * runs;
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
        progress(&o, "%s %s %s: %.3f ms (median of %d, %.3f to %.3f)", pname,
                 clcnn_conv_algo_name((clcnn_conv_algo)a), v[vi].cfg[0] ? v[vi].cfg : "(heuristic)",
                 med, runs, t[0], t[runs - 1]);
        if (r.ms[a] < 0 || med < r.ms[a]) r.ms[a] = med;
        if (win < 0 || med < win_ms) {
            win = vi;
            win_ms = med;
            r.winner = (clcnn_conv_algo)a;
        }
    }
    if (win >= 0) memcpy(r.params, v[win].cfg, CC_CONV_CFG_MAX);
    clcnn_tensor_free(j.in0);
    clcnn_tensor_free(j.in1);
    clcnn_tensor_free(j.bias);
    clcnn_tensor_free(j.out);
    free(ref);
    free(got);
    free(samples);
    free(v);
    free(cands);
    CC_TRY(s);
    CC_RETURN_IF(r.winner == CLCNN_CONV_AUTO, CLCNN_ERR_UNSUPPORTED,
                 "%s: no algorithm ran the %s pass of x %zux%zux%zux%zu, w %zux%zux%zux%zu (%s)",
                 op, pname, x[0], x[1], x[2], x[3], w[0], w[1], w[2], w[3], r.note);

    char path[4200];
    if (o.save && clcnn_tune_file_path(dev, path, sizeof path)) {
        cc_conv_entry e = entry_key(&cv, pass);
        e.algo = r.winner;
        e.ms = r.ms[r.winner];
        e.runs = runs;
        memcpy(e.params, r.params, sizeof e.params);
        for (int a = 0; a < CLCNN_CONV_ALGO_COUNT; a++)
            e.times[a] = a == 0 ? -1.0 : r.ms[a];
        CC_TRY(store_entry(dev, path, &e));
        r.stored = 1;
    }
    *out = r;
    return CLCNN_OK;
}
