/* The convolution tuning database: the schema of the tuning file's convolution winners,
 * their strict validation, printing, the per-device in-memory copy, the lookups for
 * CLCNN_CONV_AUTO and kernel parameters (lib/ops), and merging a winner into the file
 * (lib/tune/conv_tune.c, the tuner). It sits below lib/ops and calls nothing there
 * (tests/layering.sh checks it).
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
#include "conv_db.h"

#include "tune_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- names: the words of the file (and of lib/ops' messages and the command) ---------- */

static const char *const pass_words[CLCNN_CONV_PASS_COUNT] = {"forward", "backward_data",
                                                              "backward_filter"};
static const char *const algo_words[CLCNN_CONV_ALGO_COUNT] = {
    "auto", "direct", "gemm", "implicit_gemm", "winograd", "depthwise",
};

const char *clcnn_conv_pass_name(clcnn_conv_pass pass) {
    return (int)pass >= 0 && pass < CLCNN_CONV_PASS_COUNT ? pass_words[pass] : "unknown";
}

int clcnn_conv_pass_parse(const char *name) {
    for (int i = 0; name && i < CLCNN_CONV_PASS_COUNT; i++)
        if (!strcmp(name, pass_words[i])) return i;
    return -1;
}

const char *clcnn_conv_algo_name(clcnn_conv_algo a) {
    if ((int)a < 0 || a >= CLCNN_CONV_ALGO_COUNT) return "unknown";
    return algo_words[a];
}

int clcnn_conv_algo_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < CLCNN_CONV_ALGO_COUNT; i++)
        if (strcasecmp(name, algo_words[i]) == 0) return i;
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

/* 1 when a*b*c*d (each >= 1) exceeds INT_MAX: kernels index tensors with int. */
static int over_int(int64_t a, int64_t b, int64_t c, int64_t d) {
    return a > INT_MAX / b || (a *= b) > INT_MAX / c || (a *= c) > INT_MAX / d;
}

/* The shape checks of lib/ops/conv2d.c (cc_conv2d_geometry) that an entry whose members
 * are in range (sizes, strides, dilations and groups >= 1, pads >= 0, all <= INT32_MAX)
 * and whose groups divide c and k can still fail; NULL or the reason. Its own few lines
 * of output-size arithmetic, so that the database calls nothing in lib/ops. */
static const char *geometry_invalid(const cc_conv_entry *e) {
    int64_t eh = (int64_t)e->dh * (e->r - 1) + 1, ew = (int64_t)e->dw * (e->s - 1) + 1;
    int64_t hp = e->h + 2 * (int64_t)e->ph, wp = e->w + 2 * (int64_t)e->pw;
    if (hp < eh || wp < ew)
        return "is a convolution the library rejects (the dilated kernel spans more than the "
               "padded input: the output would be empty)";
    if (hp > INT_MAX / 2 || wp > INT_MAX / 2 || eh > INT_MAX / 2 || ew > INT_MAX / 2)
        return "is a convolution the library rejects (the padded input or the dilated kernel "
               "is too large)";
    int64_t p = (hp - eh) / e->sh + 1, q = (wp - ew) / e->sw + 1;
    if (over_int(e->n, e->c, e->h, e->w) || over_int(e->k, e->c / e->groups, e->r, e->s) ||
        over_int(e->n, e->k, p, q))
        return "is a convolution the library rejects (the input, weights or output has 2^31 "
               "elements or more)";
    return NULL;
}

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
    return geometry_invalid(e);
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
            return cc_fail(CLCNN_ERR_FORMAT, "%s: conv2d entry %zu: %s%s%s", path, i, what,
                           what[0] ? " " : "", why);
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

cc_conv_entry cc_conv_entry_key(const cc_conv *cv, int pass) {
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
    cc_conv_entry key = cc_conv_entry_key(cv, pass);
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

int cc_conv_db_has_exact(const clcnn_device *dev, const cc_conv *cv, int pass) {
    cc_conv_entry e;
    return find_entry(dev, cv, pass, &e) && e.n == cv->n;
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

clcnn_status cc_conv_db_can_store(const clcnn_device *dev, const char *path) {
    if (access(path, F_OK) == 0) {
        cc_conv_entry *arr = NULL;
        size_t n = 0;
        clcnn_status s = load_entries(dev, path, &arr, &n);
        free(arr);
        CC_TRY(s);
        CC_RETURN_IF(access(path, W_OK) != 0, CLCNN_ERR_IO, "tuning file %s is not writable: %s",
                     path, strerror(errno));
    }
    /* the nearest existing directory above path must take a new file */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash) {
            snprintf(dir, sizeof dir, ".");
            break;
        }
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (access(dir, F_OK) == 0 || slash == dir) break;
    }
    CC_RETURN_IF(access(dir, W_OK | X_OK) != 0, CLCNN_ERR_IO,
                 "cannot write the tuning file %s: directory %s: %s", path, dir, strerror(errno));
    return CLCNN_OK;
}

clcnn_status cc_conv_db_store(const clcnn_device *dev, const char *path, const cc_conv_entry *e) {
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
