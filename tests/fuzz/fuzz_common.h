/* Shared by the harnesses: the readers under test take a path, so each input is written
 * to a per-process temporary file first (tmpfs under /dev/shm when there is one). */
#ifndef CLCNN_FUZZ_COMMON_H
#define CLCNN_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An always-on assertion (NDEBUG does not remove it): prints the condition and aborts,
 * which libFuzzer reports as a crash with the input that caused it. The corpus replay
 * test (tests/test_fuzz_corpus.c) defines it as a cmocka assertion instead. */
#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#endif

/* Temporary files are removed at exit (libFuzzer ends with exit()). */
static char fuzz_temp_paths[8][512];
static int fuzz_temp_count;

static inline void fuzz_temp_cleanup(void) {
    for (int i = 0; i < fuzz_temp_count; i++)
        unlink(fuzz_temp_paths[i]);
    fuzz_temp_count = 0;
}

/* A temporary path unique to this process: <dir>/clcnn-fuzz-<tag>-<pid><suffix>. */
static inline void fuzz_temp_path(char *buf, size_t cap, const char *tag, const char *suffix) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    const char *env = getenv("TMPDIR");
    if (env && *env) dir = env;
    snprintf(buf, cap, "%s/clcnn-fuzz-%s-%ld%s", dir, tag, (long)getpid(), suffix);
    if (fuzz_temp_count == 0) atexit(fuzz_temp_cleanup);
    if (fuzz_temp_count < 8) snprintf(fuzz_temp_paths[fuzz_temp_count++], 512, "%s", buf);
}

/* Replace the file at path with exactly data[0..size). Aborts on failure: a harness that
 * cannot write its input tests nothing. */
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    while (size > 0) {
        ssize_t w = write(fd, data, size);
        if (w <= 0) {
            perror(path);
            abort();
        }
        data += w;
        size -= (size_t)w;
    }
    close(fd);
}

#endif
