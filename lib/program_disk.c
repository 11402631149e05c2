/* The program cache on disk: where it lives, its files, and the build lock. Callers:
 * lib/program.c (obtain_program), which decides when to read, build and write.
 *
 * One file per program under the cache directory, named by a 64-bit hash of (source,
 * options, platform, device name, driver version, library version). File layout
 * (little-endian):
 *   "CLCNNBIN" | u32 format | u32 0 | u64 key | u64 payload bytes |
 *   u64 payload hash | payload (the CL_PROGRAM_BINARIES bytes)
 * Written to a unique temporary name, flushed, fsync'd and renamed, so readers see either
 * no file or a whole one. Anything that does not validate is the caller's to rebuild.
 * A process that misses builds under an exclusive flock on <key>.clbin.lock (removed
 * after the build), so that processes wanting the same program at once (parallel tests,
 * MPI ranks on a cold cache) compile it once: the others wait, then load the file. */
#include "program_disk.h"

#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DISK_MAGIC "CLCNNBIN"
#define DISK_FORMAT 1u
#define HEADER_BYTES 40

int clcnn_cache_dir(char *buf, size_t cap) {
    const char *env = getenv("CLCNN_CACHE_DIR");
    if (env && strcmp(env, "off") == 0) return 0;
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return 1;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(buf, cap, "%s/clcnn", xdg);
        return 1;
    }
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(buf, cap, "%s/.cache/clcnn", home);
        return 1;
    }
    return 0;
}

int cc_disk_mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

uint64_t cc_disk_key(const clcnn_device *dev, const char *src, const char *options) {
    uint64_t h = CC_HASH_INIT;
    /* POCL compiles for another CPU than the one it runs on when POCL_LLVM_CPU_NAME says
     * so: such binaries must not be taken for the native ones, nor the other way round */
    const char *target = getenv("POCL_LLVM_CPU_NAME");
    const char *parts[] = {src,
                           options,
                           dev->info.platform_name,
                           dev->info.name,
                           dev->info.driver_version,
                           CLCNN_VERSION_STRING};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        h = cc_hash64(h, parts[i], strlen(parts[i]) + 1); /* +1: separator */
    if (target && *target) h = cc_hash64(h, target, strlen(target) + 1);
    return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void cc_disk_path(const char *dir, uint64_t key, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%016llx.clbin", dir, (unsigned long long)key);
}

/* Load and validate a cached binary. Returns the payload (caller frees) or NULL. */
unsigned char *cc_disk_read(const char *path, uint64_t key, size_t *payload_len) {
    size_t len = 0;
    unsigned char *buf = (unsigned char *)cc_read_text(path, &len);
    if (!buf) return NULL;
    if (len < HEADER_BYTES || memcmp(buf, DISK_MAGIC, 8) != 0 ||
        (buf[8] | buf[9] << 8 | buf[10] << 16 | (uint32_t)buf[11] << 24) != DISK_FORMAT ||
        get_u64(buf + 16) != key || get_u64(buf + 24) != len - HEADER_BYTES ||
        get_u64(buf + 32) != cc_hash64(CC_HASH_INIT, buf + HEADER_BYTES, len - HEADER_BYTES)) {
        free(buf);
        return NULL;
    }
    *payload_len = len - HEADER_BYTES;
    memmove(buf, buf + HEADER_BYTES, *payload_len);
    return buf;
}

/* Write atomically: a unique temporary file in the same directory
 * (<key>.clbin.tmp.<pid>.<random>), fsync, rename over the final name. Readers see no
 * file or a whole one; concurrent writers of one key each rename a complete file.
 * Failures are silent (the cache is an optimisation) but reported under CLCNN_VERBOSE. */
int cc_disk_write(const char *dir, const char *path, uint64_t key, const unsigned char *data,
                  size_t len) {
    if (cc_disk_mkdirs(dir) != 0) return -1;
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) return -1;
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; cache files are not secrets */
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    unsigned char hdr[HEADER_BYTES] = {0};
    memcpy(hdr, DISK_MAGIC, 8);
    hdr[8] = DISK_FORMAT;
    put_u64(hdr + 16, key);
    put_u64(hdr + 24, len);
    put_u64(hdr + 32, cc_hash64(CC_HASH_INIT, data, len));
    int ok = !cc_fault_hit(CC_FAULT_FILE_WRITE) && fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr &&
             fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* How long a process waits for another one's build of the same program before it
 * builds its own copy (a build takes seconds; a stuck one must not stop everyone). */
#define BUILD_LOCK_WAIT_MS 120000.0

int cc_disk_lock_wait(const char *dir, const char *lock_path, const char *watch) {
    if (cc_disk_mkdirs(dir) != 0) return -1;
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    double t0 = cc_now_ms();
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) break;
        if (watch && access(watch, F_OK) == 0) break;
        if (cc_now_ms() - t0 > BUILD_LOCK_WAIT_MS) break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    close(fd);
    return -1;
}

int cc_disk_build_lock(const char *dir, const char *path, char *lock_path, size_t cap) {
    snprintf(lock_path, cap, "%s.lock", path);
    return cc_disk_lock_wait(dir, lock_path, path);
}

/* After the build (or the load) under the lock: the lock file goes (waiters holding it
 * open find the cache file when they get it), then the lock. */
void cc_disk_build_unlock(int fd, const char *lock_path) {
    if (fd < 0) return;
    unlink(lock_path);
    close(fd);
}
