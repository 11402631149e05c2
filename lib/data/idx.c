/* IDX files (the MNIST format), plain or gzip-compressed, read defensively.
 *
 * Layout (big-endian): magic 0x00 0x00 <type> <ndims>, then ndims u32 dimensions, then
 * the data. We accept type 0x08 (u8) only: images have ndims 3 (n, rows, cols), labels
 * ndims 1 (n).
 *
 * A header is never trusted for allocation: a plain file's size must match the header
 * exactly before anything is allocated; a gzip stream is bounded by deflate's maximum
 * ratio against the compressed size, and its buffer grows only as decompressed bytes
 * actually arrive, so a header claiming 2^31 images in a 1 kB file fails cheaply. */
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Sanity caps: beyond these a header is malformed, whatever the file holds. */
#define IDX_MAX_COUNT 0x7fffffffULL /* samples */
#define IDX_MAX_PLANE (1ULL << 24)  /* rows * cols */
#define IDX_MAX_BYTES (16ULL << 30) /* data bytes of one file */
#define DEFLATE_MAX_RATIO 1032ULL   /* deflate cannot expand more than ~1032:1 */
#define READ_CHUNK (1u << 20)

typedef struct reader {
    const char *path;
    FILE *f;   /* plain */
    gzFile gz; /* gzip */
    uint64_t file_bytes;
} reader;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static clcnn_status reader_open(reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cc_fail(CLCNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cc_fail(CLCNN_ERR_IO, "%s: not a regular file", path);
    }
    r->file_bytes = (uint64_t)st.st_size;
    unsigned char sig[2] = {0, 0};
    ssize_t got = pread(fd, sig, 2, 0);
    int is_gzip = got == 2 && sig[0] == 0x1f && sig[1] == 0x8b;
    if (ends_with(path, ".gz") && !is_gzip) {
        close(fd);
        return cc_fail(CLCNN_ERR_FORMAT,
                       "%s: the name ends in .gz but the file is not gzip data (first bytes "
                       "%02x %02x, expected 1f 8b)",
                       path, got > 0 ? sig[0] : 0, got > 1 ? sig[1] : 0);
    }
    if (is_gzip) {
        r->gz = gzdopen(fd, "rb");
        if (!r->gz) {
            close(fd);
            return cc_fail(CLCNN_ERR_IO, "%s: cannot open as gzip", path);
        }
        gzbuffer(r->gz, 256 * 1024);
    } else {
        r->f = fdopen(fd, "rb");
        if (!r->f) {
            close(fd);
            return cc_fail(CLCNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        }
    }
    return CLCNN_OK;
}

static void reader_close(reader *r) {
    if (r->gz) gzclose(r->gz);
    if (r->f) fclose(r->f);
    r->gz = NULL;
    r->f = NULL;
}

/* Read up to len bytes; *got < len only at the end of the data. A corrupt gzip stream
 * is CLCNN_ERR_FORMAT; a stream that ends without its trailer counts as end of data
 * (the caller then reports the file as truncated). */
static clcnn_status reader_read(reader *r, void *buf, size_t len, size_t *got) {
    *got = 0;
    if (r->f) {
        *got = fread(buf, 1, len, r->f);
        if (*got < len && ferror(r->f))
            return cc_fail(CLCNN_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
        return CLCNN_OK;
    }
    unsigned char *p = buf;
    while (*got < len) {
        size_t want = len - *got;
        unsigned chunk = want > READ_CHUNK ? READ_CHUNK : (unsigned)want;
        int n = gzread(r->gz, p + *got, chunk);
        if (n < 0) {
            int code = 0;
            const char *msg = gzerror(r->gz, &code);
            if (code == Z_ERRNO)
                return cc_fail(CLCNN_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
            return cc_fail(CLCNN_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path,
                           msg ? msg : "unknown zlib error");
        }
        if (n == 0) {
            int code = 0;
            const char *msg = gzerror(r->gz, &code);
            if (code != Z_OK && code != Z_BUF_ERROR) /* Z_BUF_ERROR: stream ended early */
                return cc_fail(CLCNN_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path,
                               msg ? msg : "unknown zlib error");
            break;
        }
        *got += (size_t)n;
    }
    return CLCNN_OK;
}

/* The gzip stream must also end cleanly (trailer present, CRC right). */
static clcnn_status reader_check_end(reader *r, uint64_t expected) {
    unsigned char extra;
    size_t got = 0;
    CC_TRY(reader_read(r, &extra, 1, &got));
    if (got != 0)
        return cc_fail(CLCNN_ERR_FORMAT,
                       "%s: more data than the header describes (%llu bytes expected)", r->path,
                       (unsigned long long)expected);
    if (r->gz) {
        int code = 0;
        const char *msg = gzerror(r->gz, &code);
        if (code != Z_OK)
            return cc_fail(CLCNN_ERR_FORMAT,
                           "%s: gzip stream is truncated or damaged after the data (%s)", r->path,
                           msg ? msg : "?");
    }
    return CLCNN_OK;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

clcnn_status cc_idx_read_u8(const char *path, int ndims, uint64_t max_items, uint32_t dims[3],
                            uint32_t *items, uint8_t **data) {
    *data = NULL;
    *items = 0;
    int whole = 1; /* every item is read */
    reader r;
    CC_TRY(reader_open(&r, path));
    clcnn_status s = CLCNN_OK;
    uint8_t *buf = NULL;
    unsigned char hdr[4 + 4 * 3];
    size_t hdr_bytes = 4 + 4 * (size_t)ndims, got = 0;
    const char *what = ndims == 3 ? "images" : "labels";

    /* The magic first, so that a file of the wrong kind is named as such. */
    s = reader_read(&r, hdr, 4, &got);
    if (s) goto done;
    if (got < 4) {
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: truncated header (%zu of %zu bytes)", path, got,
                    hdr_bytes);
        goto done;
    }
    uint32_t magic = be32(hdr), want_magic = 0x00000800u | (uint32_t)ndims;
    if (magic != want_magic) {
        const char *hint = "";
        if (magic == 0x00000801u || magic == 0x00000803u)
            hint = magic == 0x00000801u ? " (this is a label file)" : " (this is an image file)";
        else if ((magic >> 16) != 0)
            hint = " (not an IDX file)";
        else if (((magic >> 8) & 0xff) != 0x08)
            hint = " (element type is not u8)";
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: bad magic 0x%08x, expected 0x%08x (IDX u8 %s)%s", path,
                    magic, want_magic, what, hint);
        goto done;
    }
    s = reader_read(&r, hdr + 4, hdr_bytes - 4, &got);
    if (s) goto done;
    if (got < hdr_bytes - 4) {
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: truncated header (%zu of %zu bytes)", path, 4 + got,
                    hdr_bytes);
        goto done;
    }
    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        dims[i] = be32(hdr + 4 + 4 * i);
        if (dims[i] == 0) {
            s = cc_fail(CLCNN_ERR_FORMAT, "%s: dimension %d is 0", path, i);
            goto done;
        }
        total *= dims[i];
    }
    if (dims[0] > IDX_MAX_COUNT) {
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: header claims %u %s, more than the limit %llu", path,
                    dims[0], what, IDX_MAX_COUNT);
        goto done;
    }
    if (ndims == 3 && (uint64_t)dims[1] * dims[2] > IDX_MAX_PLANE) {
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: images of %ux%u pixels are beyond the limit of %llu",
                    path, dims[1], dims[2], IDX_MAX_PLANE);
        goto done;
    }
    if (ndims == 3) total = (uint64_t)dims[0] * dims[1] * dims[2];
    if (total > IDX_MAX_BYTES) {
        s = cc_fail(CLCNN_ERR_FORMAT, "%s: header claims %llu bytes of %s, beyond the limit %llu",
                    path, (unsigned long long)total, what, IDX_MAX_BYTES);
        goto done;
    }
    char shape[64];
    if (ndims == 3)
        snprintf(shape, sizeof shape, "%u images of %ux%u", dims[0], dims[1], dims[2]);
    else
        snprintf(shape, sizeof shape, "%u labels", dims[0]);

    if (r.f) {
        uint64_t have = r.file_bytes - hdr_bytes;
        if (have != total) {
            s = cc_fail(CLCNN_ERR_FORMAT,
                        "%s: header promises %s (%llu data bytes) but the file holds %llu data "
                        "bytes (%s)",
                        path, shape, (unsigned long long)total, (unsigned long long)have,
                        have < total ? "truncated" : "trailing bytes");
            goto done;
        }
    } else if (total > r.file_bytes * DEFLATE_MAX_RATIO) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "%s: header promises %s (%llu bytes), more than a %llu-byte gzip file can "
                    "hold",
                    path, shape, (unsigned long long)total, (unsigned long long)r.file_bytes);
        goto done;
    }

    /* Only the first max_items items: the rest of the file is left unread. */
    whole = max_items == 0 || max_items >= dims[0];
    if (!whole) total = total / dims[0] * max_items;

    /* Grow with the bytes that arrive: allocation never outruns the data by more than 2x. */
    size_t cap = total < READ_CHUNK ? (size_t)total : READ_CHUNK, have = 0;
    buf = malloc(cap);
    if (!buf) {
        s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, cap);
        goto done;
    }
    while (have < total) {
        if (have == cap) {
            size_t ncap = cap * 2 > total ? (size_t)total : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                s = cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, ncap);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = 0;
        s = reader_read(&r, buf + have, cap - have, &n);
        if (s) goto done;
        have += n;
        if (n == 0) break;
    }
    if (have < total) {
        s = cc_fail(CLCNN_ERR_FORMAT,
                    "%s: truncated: header promises %s (%llu data bytes) but the data ends "
                    "after %zu bytes",
                    path, shape, (unsigned long long)total, have);
        goto done;
    }
    if (whole) s = reader_check_end(&r, total);

done:
    reader_close(&r);
    if (s != CLCNN_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    *items = whole ? dims[0] : (uint32_t)max_items;
    return CLCNN_OK;
}
