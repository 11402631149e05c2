/* The program cache on disk (lib/program_disk.c): files, their checks, the build lock.
 * Internal to lib/program.c. */
#ifndef CLCNN_PROGRAM_DISK_H
#define CLCNN_PROGRAM_DISK_H

#include "internal.h"

/* mkdir -p; 0 or -1 (errno). */
int cc_disk_mkdirs(const char *path);
/* The key of a program: a hash of source, options, platform, device, driver, library. */
uint64_t cc_disk_key(const clcnn_device *dev, const char *src, const char *options);
/* <dir>/<key as 16 hex digits>.clbin into buf. */
void cc_disk_path(const char *dir, uint64_t key, char *buf, size_t cap);
/* The payload of the file at path when it validates for key (caller frees), else NULL. */
unsigned char *cc_disk_read(const char *path, uint64_t key, size_t *payload_len);
/* Writes data as path atomically (temporary file, fsync, rename); 0 or -1. */
int cc_disk_write(const char *dir, const char *path, uint64_t key, const unsigned char *data,
                  size_t len);
/* An exclusive flock on lock_path (created in dir if missing), waited for at most two
 * minutes: the descriptor holding it, or -1 when there is none to be had (not writable,
 * timeout) or the file watch (may be NULL) appeared while waiting. A crashed holder's
 * lock goes with its process. */
int cc_disk_lock_wait(const char *dir, const char *lock_path, const char *watch);
/* Waits while another process builds the program of path: a descriptor holding its lock
 * (path.lock, into lock_path) for cc_disk_build_unlock, or -1 (no lock to be had, or the
 * file appeared meanwhile). The caller reads path again either way: the other process
 * may have written it. */
int cc_disk_build_lock(const char *dir, const char *path, char *lock_path, size_t cap);
/* Removes the lock file and releases the lock (fd -1: nothing). */
void cc_disk_build_unlock(int fd, const char *lock_path);

#endif
