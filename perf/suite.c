/* Suite files: perf/suites/NAME.txt, one shape per line; '#' starts a comment.
 *
 *   [conv] NAME  n c h w  k r s  stride pad [dilation groups]
 *   pool   NAME  n c h w  kernel stride pad [max|avg|avg_exclude|global]
 *   linear NAME  n in out
 *   gemm   NAME  m n k [NN|NT|TN|TT]
 *
 * A line whose first word is not one of the four keywords is a conv line (so a layer
 * cannot be named conv/pool/linear/gemm). Numbers are decimal integers; dilation and
 * groups default to 1, the pool mode to max, the GEMM to NN (row-major, as the library
 * calls CLBlast). */
#include "perf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef CLCNN_PERF_SUITE_DIR
#define CLCNN_PERF_SUITE_DIR "perf/suites"
#endif

const char *perf_suite_dir(void) {
    const char *e = getenv("CLCNN_PERF_SUITES");
    return e && *e ? e : CLCNN_PERF_SUITE_DIR;
}

/* Parse up to `cap` positive integers from the tokens; returns how many. */
static int parse_ints(char **tok, int ntok, int *out, int cap, int *bad) {
    int n = 0;
    *bad = 0;
    for (int i = 0; i < ntok && n < cap; i++) {
        char *end = NULL;
        errno = 0;
        long v = strtol(tok[i], &end, 10);
        if (!end || *end || errno || v < 0 || v > 1000000000L) {
            *bad = 1;
            return n;
        }
        out[n++] = (int)v;
    }
    return n;
}

static int parse_line(char *line, int lineno, perf_shape *s, char *err, size_t cap) {
    char *tok[32];
    int ntok = 0;
    for (char *p = strtok(line, " \t\r\n"); p && ntok < 32; p = strtok(NULL, " \t\r\n"))
        tok[ntok++] = p;
    if (ntok == 0) return 0;
    memset(s, 0, sizeof *s);
    s->line = lineno;
    s->dilation = s->groups = 1;
    int first = 0;
    s->kind = PERF_CONV;
    if (!strcmp(tok[0], "conv"))
        first = 1;
    else if (!strcmp(tok[0], "pool"))
        s->kind = PERF_POOL, first = 1;
    else if (!strcmp(tok[0], "linear"))
        s->kind = PERF_LINEAR, first = 1;
    else if (!strcmp(tok[0], "gemm"))
        s->kind = PERF_GEMM, first = 1;
    if (ntok <= first) {
        snprintf(err, cap, "line %d: a name is missing", lineno);
        return -1;
    }
    snprintf(s->name, sizeof s->name, "%s", tok[first]);
    char **num = tok + first + 1;
    int nnum = ntok - first - 1, v[16], bad = 0;
    switch (s->kind) {
    case PERF_CONV: {
        int got = parse_ints(num, nnum, v, 11, &bad);
        if (bad || (got != 9 && got != 11) || nnum != got) {
            snprintf(err, cap,
                     "line %d: a conv line is: NAME n c h w k r s stride pad [dilation groups]",
                     lineno);
            return -1;
        }
        s->n = v[0], s->c = v[1], s->h = v[2], s->w = v[3], s->k = v[4], s->r = v[5];
        s->s = v[6], s->stride = v[7], s->pad = v[8];
        if (got == 11) s->dilation = v[9], s->groups = v[10];
        if (!s->n || !s->c || !s->h || !s->w || !s->k || !s->r || !s->s || !s->stride ||
            !s->dilation || !s->groups || s->c % s->groups || s->k % s->groups) {
            snprintf(err, cap, "line %d: zero size, or groups does not divide c and k", lineno);
            return -1;
        }
        break;
    }
    case PERF_POOL: {
        int got = parse_ints(num, nnum < 7 ? nnum : 7, v, 7, &bad);
        if (bad || got != 7 || nnum > 8) {
            snprintf(err, cap,
                     "line %d: a pool line is: pool NAME n c h w kernel stride pad "
                     "[max|avg|avg_exclude|global]",
                     lineno);
            return -1;
        }
        s->n = v[0], s->c = v[1], s->h = v[2], s->w = v[3], s->r = s->s = v[4];
        s->stride = v[5], s->pad = v[6];
        s->pool_mode = CLCNN_POOL_MAX;
        if (nnum == 8) {
            const char *m = num[7];
            if (!strcmp(m, "max"))
                s->pool_mode = CLCNN_POOL_MAX;
            else if (!strcmp(m, "avg"))
                s->pool_mode = CLCNN_POOL_AVG;
            else if (!strcmp(m, "avg_exclude"))
                s->pool_mode = CLCNN_POOL_AVG_EXCLUDE;
            else if (!strcmp(m, "global"))
                s->pool_mode = CLCNN_POOL_AVG, s->pool_global = 1;
            else {
                snprintf(err, cap, "line %d: unknown pool mode '%s'", lineno, m);
                return -1;
            }
        }
        if (!s->n || !s->c || !s->h || !s->w || !s->r || !s->stride) {
            snprintf(err, cap, "line %d: zero size", lineno);
            return -1;
        }
        break;
    }
    case PERF_LINEAR: {
        int got = parse_ints(num, nnum, v, 3, &bad);
        if (bad || got != 3 || nnum != 3 || !v[0] || !v[1] || !v[2]) {
            snprintf(err, cap, "line %d: a linear line is: linear NAME n in out", lineno);
            return -1;
        }
        s->n = v[0], s->c = v[1], s->k = v[2];
        break;
    }
    case PERF_GEMM: {
        int got = parse_ints(num, nnum < 3 ? nnum : 3, v, 3, &bad);
        const char *tr = nnum == 4 ? num[3] : "NN";
        if (bad || got != 3 || nnum > 4 || !v[0] || !v[1] || !v[2] || strlen(tr) != 2 ||
            !strchr("NT", tr[0]) || !strchr("NT", tr[1])) {
            snprintf(err, cap, "line %d: a gemm line is: gemm NAME m n k [NN|NT|TN|TT]", lineno);
            return -1;
        }
        s->m = (size_t)v[0], s->gn = (size_t)v[1], s->gk = (size_t)v[2];
        s->ta = tr[0] == 'T', s->tb = tr[1] == 'T';
        break;
    }
    }
    return 1;
}

int perf_suite_load(const char *name, perf_shape **out, size_t *count, char *err, size_t cap) {
    char path[4096];
    if (strchr(name, '/'))
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s/%s.txt", perf_suite_dir(), name);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "cannot open suite %s: %s (--list shows the suites)", path,
                 strerror(errno));
        return -1;
    }
    perf_shape *arr = NULL;
    size_t n = 0, cap_n = 0;
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        perf_shape s;
        char why[256];
        int got = parse_line(line, lineno, &s, why, sizeof why);
        if (got < 0) {
            snprintf(err, cap, "%s: %s", path, why);
            rc = -1;
            break;
        }
        if (got == 0) continue;
        if (n == cap_n) {
            cap_n = cap_n ? cap_n * 2 : 32;
            perf_shape *na = realloc(arr, cap_n * sizeof *na);
            if (!na) {
                snprintf(err, cap, "out of memory reading %s", path);
                rc = -1;
                break;
            }
            arr = na;
        }
        arr[n++] = s;
    }
    fclose(f);
    if (rc == 0 && n == 0) {
        snprintf(err, cap, "%s has no shapes", path);
        rc = -1;
    }
    if (rc != 0) {
        free(arr);
        return -1;
    }
    *out = arr;
    *count = n;
    return 0;
}

void perf_suite_list(FILE *f) {
    const char *dir = perf_suite_dir();
    fprintf(f, "suites in %s:\n", dir);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(f, "  (cannot open: %s)\n", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".txt")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
        perf_shape *s = NULL;
        size_t n = 0;
        char err[512];
        if (perf_suite_load(name, &s, &n, err, sizeof err) == 0) {
            size_t kinds[4] = {0};
            for (size_t i = 0; i < n; i++)
                kinds[s[i].kind]++;
            fprintf(f, "  %-14s %3zu conv, %2zu pool, %2zu linear, %2zu gemm\n", name, kinds[0],
                    kinds[1], kinds[2], kinds[3]);
            free(s);
        } else {
            fprintf(f, "  %-14s invalid: %s\n", name, err);
        }
    }
    closedir(d);
}
