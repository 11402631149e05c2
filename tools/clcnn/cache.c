/* clcnn cache: manage the on-disk program cache (see lib/program.c).
 *   warm [--device SEL]   build or load every kernel program for a device
 *   clear                 delete the cached binaries (and stale temporary files)
 *   info                  where the cache is, how many entries, how large */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clcnn/clcnn.h"
#include "commands.h"

/* A temporary file older than this is stale even if its writer's pid is alive (the pid
 * may have been reused, or the directory is shared between machines). */
#define STALE_TMP_SECONDS 600

static void usage(FILE *f) {
    fprintf(f, "usage: clcnn cache warm [--device SEL] [--quiet]\n"
               "       clcnn cache clear\n"
               "       clcnn cache info\n\n"
               "The program cache keeps compiled OpenCL kernels so that later runs skip the\n"
               "compiler. It lives in $CLCNN_CACHE_DIR, else $XDG_CACHE_HOME/clcnn, else\n"
               "~/.cache/clcnn; CLCNN_CACHE_DIR=off disables it.\n\n"
               "  warm    build (or load) every kernel program the library ships for a device\n"
               "          (--device: index, 'gpu', 'cpu' or part of a name; default: as\n"
               "          'clcnn devices' marks) and print what was built and how long it took\n"
               "  clear   delete the cached binaries (*.clbin), stale temporary files and lock\n"
               "          files nobody holds; other files in the directory are left alone\n"
               "  info    the cache location, whether it is disabled, entries and total size\n");
}

/* name starts with the 16 hex digits of a program key */
static int key_named(const char *name) {
    for (int i = 0; i < 16; i++)
        if (!name[i] || !strchr("0123456789abcdef", name[i])) return 0;
    return 1;
}

/* "<16 hex digits>.clbin" */
static int is_entry(const char *name) {
    if (!key_named(name)) return 0;
    return strcmp(name + 16, ".clbin") == 0;
}

/* "<16 hex digits>.clbin.tmp.<pid>.<suffix>": a binary being written (or left by a crash). */
static int is_tmp(const char *name, long *pid) {
    if (!key_named(name)) return 0;
    if (strncmp(name + 16, ".clbin.tmp.", 11) != 0) return 0;
    char *end = NULL;
    *pid = strtol(name + 27, &end, 10);
    return end != name + 27 && *end == '.';
}

/* "<16 hex digits>.clbin.lock": held while a process builds that program (or left by
 * one that crashed); "<16 hex digits>.clblast.lock": held during a process's first call
 * of a CLBlast routine (lib/blas.c), left in place afterwards. */
static int is_lock(const char *name) {
    if (!key_named(name)) return 0;
    return strcmp(name + 16, ".clbin.lock") == 0 || strcmp(name + 16, ".clblast.lock") == 0;
}

/* A lock file nobody holds. */
static int lock_is_stale(const char *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return 0;
    int stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return stale;
}

static int tmp_is_stale(long pid, const struct stat *st) {
    if (time(NULL) - st->st_mtime > STALE_TMP_SECONDS) return 1;
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

typedef struct scan {
    size_t entries, tmps, stale_tmps, others;
    unsigned long long entry_bytes, tmp_bytes;
    size_t removed_entries, removed_tmps, failed;
    unsigned long long removed_bytes;
} scan;

/* Walk the cache directory; with `remove`, delete entries and stale temporaries.
 * Returns 0, or -1 with errno when the directory cannot be read (ENOENT: none yet). */
static int walk(const char *dir, int remove, scan *sc) {
    memset(sc, 0, sizeof *sc);
    DIR *d = opendir(dir);
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.') continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            sc->others++;
            continue;
        }
        long pid = 0;
        int lock = 0;
        if (is_entry(de->d_name)) {
            sc->entries++;
            sc->entry_bytes += (unsigned long long)st.st_size;
            if (remove) {
                if (unlink(path) == 0) {
                    sc->removed_entries++;
                    sc->removed_bytes += (unsigned long long)st.st_size;
                } else {
                    sc->failed++;
                }
            }
        } else if ((lock = is_lock(de->d_name)) || is_tmp(de->d_name, &pid)) {
            sc->tmps++;
            sc->tmp_bytes += (unsigned long long)st.st_size;
            int stale = lock ? lock_is_stale(path) : tmp_is_stale(pid, &st);
            sc->stale_tmps += stale;
            if (remove && stale) {
                if (unlink(path) == 0)
                    sc->removed_tmps++;
                else
                    sc->failed++;
            }
        } else {
            sc->others++;
        }
    }
    closedir(d);
    return 0;
}

static const char *human(unsigned long long b, char *buf, size_t cap) {
    if (b < 1024)
        snprintf(buf, cap, "%llu B", b);
    else if (b < 1024ull * 1024)
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(buf, cap, "%.1f MiB", b / (1024.0 * 1024));
    else
        snprintf(buf, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    return buf;
}

static const char *dir_source(void) {
    const char *env = getenv("CLCNN_CACHE_DIR");
    if (env && *env) return "$CLCNN_CACHE_DIR";
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) return "$XDG_CACHE_HOME/clcnn";
    return "~/.cache/clcnn";
}

static int cache_info(void) {
    char dir[4096];
    if (!clcnn_cache_dir(dir, sizeof dir)) {
        printf("program cache: disabled (CLCNN_CACHE_DIR=off); kernels are compiled in every "
               "process\n");
        return 0;
    }
    printf("location:  %s (from %s)\n", dir, dir_source());
    scan sc;
    if (walk(dir, 0, &sc) != 0) {
        if (errno == ENOENT) {
            printf("state:     enabled, directory not created yet (0 entries)\n");
            return 0;
        }
        fprintf(stderr, "clcnn cache info: cannot read %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char a[32], b[32];
    printf("state:     enabled\n");
    printf("entries:   %zu compiled programs, %s\n", sc.entries,
           human(sc.entry_bytes, a, sizeof a));
    if (sc.tmps)
        printf("temporary: %zu files being written or left by a crash (%zu stale), %s\n", sc.tmps,
               sc.stale_tmps, human(sc.tmp_bytes, b, sizeof b));
    if (sc.others) printf("other:     %zu other files (not managed by this command)\n", sc.others);
    return 0;
}

static int cache_clear(void) {
    char dir[4096];
    if (!clcnn_cache_dir(dir, sizeof dir)) {
        printf("program cache is disabled (CLCNN_CACHE_DIR=off): nothing to clear\n");
        return 0;
    }
    scan sc;
    if (walk(dir, 1, &sc) != 0) {
        if (errno == ENOENT) {
            printf("%s does not exist: nothing to clear\n", dir);
            return 0;
        }
        fprintf(stderr, "clcnn cache clear: cannot read %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char a[32];
    printf("removed %zu cached programs (%s) and %zu stale temporary files from %s\n",
           sc.removed_entries, human(sc.removed_bytes, a, sizeof a), sc.removed_tmps, dir);
    if (sc.tmps > sc.stale_tmps)
        printf("left %zu temporary files that a running process is writing\n",
               sc.tmps - sc.stale_tmps);
    if (sc.failed) {
        fprintf(stderr, "clcnn cache clear: %zu files could not be removed (permissions?)\n",
                sc.failed);
        return 1;
    }
    return 0;
}

typedef struct warm_report {
    int quiet;
    size_t built, loaded, in_memory, failed;
} warm_report;

static void on_program(void *ctx, const char *file, const char *defines, const char *how, double ms,
                       clcnn_status s) {
    warm_report *r = ctx;
    if (!strcmp(how, "built"))
        r->built++;
    else if (!strcmp(how, "loaded"))
        r->loaded++;
    else if (!strcmp(how, "failed"))
        r->failed++;
    else
        r->in_memory++;
    if (!r->quiet || s != CLCNN_OK)
        printf("  %-9s %-24s %-28s %8.0f ms\n", how, file, defines && *defines ? defines : "-", ms);
    fflush(stdout);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cache_warm(const char *selector, int quiet) {
    double t0 = now_s();
    clcnn_device *dev = NULL;
    clcnn_status s = clcnn_device_open(selector, &dev);
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn cache warm: %s: %s\n", clcnn_status_str(s), clcnn_last_error());
        return 1;
    }
    const clcnn_device_info *in = clcnn_device_get_info(dev);
    char dir[4096];
    int on = clcnn_cache_dir(dir, sizeof dir);
    printf("warming the program cache for device %d: %s / %s\n", in->index, in->platform_name,
           in->name);
    printf("cache: %s\n", on ? dir : "disabled (CLCNN_CACHE_DIR=off)");
    if (!quiet) printf("  %-9s %-24s %-28s %11s\n", "how", "kernel file", "defines", "time");
    warm_report r = {.quiet = quiet};
    double t1 = now_s();
    s = clcnn_device_warm_each(dev, on_program, &r);
    double t2 = now_s();
    clcnn_cache_stats st;
    clcnn_device_cache_stats(dev, &st);
    printf("%zu programs: %zu built from source (%.1f s compiling), %zu loaded from the disk "
           "cache (%.1f s), %zu already in memory, %zu failed; %.1f s in all (%.1f s with "
           "device start-up)\n",
           r.built + r.loaded + r.in_memory + r.failed, r.built, st.build_ms / 1e3, r.loaded,
           st.load_ms / 1e3, r.in_memory, r.failed, t2 - t1, t2 - t0);
    if (st.disk_rejects)
        printf("%llu cache files were unreadable or rejected and were rebuilt\n",
               (unsigned long long)st.disk_rejects);
    if (on && r.built > st.disk_writes)
        printf("warning: only %llu of %zu new binaries could be written to %s\n",
               (unsigned long long)st.disk_writes, r.built, dir);
    int rc = 0;
    if (s != CLCNN_OK) {
        fprintf(stderr, "clcnn cache warm: %s: %s\n", clcnn_status_str(s), clcnn_last_error());
        rc = 1;
    }
    clcnn_device_close(dev);
    return rc;
}

int cmd_cache(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    const char *device = NULL;
    int quiet = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(sub, "warm") && !strcmp(argv[i], "--device") && i + 1 < argc) {
            device = argv[++i];
        } else if (!strcmp(sub, "warm") && !strncmp(argv[i], "--device=", 9)) {
            device = argv[i] + 9;
        } else if (!strcmp(sub, "warm") &&
                   (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))) {
            quiet = 1;
        } else {
            fprintf(stderr, "clcnn cache %s: unknown or incomplete option '%s'\n\n", sub, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!strcmp(sub, "warm")) return cache_warm(device, quiet);
    if (!strcmp(sub, "clear")) return cache_clear();
    if (!strcmp(sub, "info")) return cache_info();
    fprintf(stderr, "clcnn cache: unknown subcommand '%s'\n\n", sub);
    usage(stderr);
    return 2;
}
