/* PGM and PNG reading (as grayscale), resizing and PNG writing for the clcnn command. */
#include "image.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PGM_MAX_FILE (512u << 20)

void image_free(gray_image *img) {
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = 0;
}

/* ---- PGM ------------------------------------------------------------------------ */

/* Skip whitespace and # comments; read one unsigned decimal. */
static int pgm_number(const unsigned char *b, size_t n, size_t *pos, unsigned long *out) {
    size_t p = *pos;
    for (;;) {
        while (p < n && isspace(b[p]))
            p++;
        if (p < n && b[p] == '#') {
            while (p < n && b[p] != '\n' && b[p] != '\r')
                p++;
            continue;
        }
        break;
    }
    if (p >= n || !isdigit(b[p])) return 0;
    unsigned long v = 0;
    while (p < n && isdigit(b[p])) {
        v = v * 10 + (unsigned long)(b[p] - '0');
        if (v > 0xffffffUL) return 0;
        p++;
    }
    *pos = p;
    *out = v;
    return 1;
}

static clcnn_status read_pgm(const char *path, const unsigned char *b, size_t n, gray_image *out) {
    int binary = b[1] == '5';
    size_t pos = 2;
    unsigned long w, h, maxval;
    if (!pgm_number(b, n, &pos, &w) || !pgm_number(b, n, &pos, &h) ||
        !pgm_number(b, n, &pos, &maxval))
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: malformed PGM header (width, height, maxval)",
                               path);
    if (w == 0 || h == 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: PGM size %lux%lu is outside 1..%d", path, w,
                               h, IMAGE_MAX_SIDE);
    if (maxval == 0 || maxval > 65535)
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: PGM maxval %lu is outside 1..65535", path,
                               maxval);
    size_t count = (size_t)w * h;
    if (count > n - pos) /* every pixel takes a byte at least: no allocating on the header's word */
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: truncated PGM: %lux%lu pixels in %zu bytes",
                               path, w, h, n - pos);
    float *px = malloc(count * sizeof *px);
    if (!px) return clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (binary) {
        if (pos >= n || !isspace(b[pos])) {
            free(px);
            return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: malformed PGM header", path);
        }
        pos++; /* exactly one whitespace before the raster */
        size_t bpp = maxval > 255 ? 2 : 1;
        if (n - pos < count * bpp) {
            free(px);
            return clcnn_set_error(
                CLCNN_ERR_FORMAT,
                "%s: truncated PGM: %lux%lu needs %zu bytes of pixels, the file has "
                "%zu",
                path, w, h, count * bpp, n - pos);
        }
        for (size_t i = 0; i < count; i++) {
            unsigned v = bpp == 1 ? b[pos + i] : (unsigned)b[pos + 2 * i] << 8 | b[pos + 2 * i + 1];
            px[i] = (float)(v > maxval ? maxval : v) / (float)maxval;
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            unsigned long v;
            if (!pgm_number(b, n, &pos, &v)) {
                free(px);
                return clcnn_set_error(CLCNN_ERR_FORMAT,
                                       "%s: truncated or malformed P2 data at pixel %zu", path, i);
            }
            px[i] = (float)(v > maxval ? maxval : v) / (float)maxval;
        }
    }
    out->w = (int)w;
    out->h = (int)h;
    out->px = px;
    return CLCNN_OK;
}

/* ---- PNG ---------------------------------------------------------------------------- */

typedef struct png_err {
    jmp_buf jmp;
    char msg[256];
} png_err;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    longjmp(e->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static clcnn_status read_png(const char *path, FILE *f, gray_image *out) {
    png_err err = {.msg = ""};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
    if (!png)
        return clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "%s: cannot create a PNG reader", path);
    png_infop info = png_create_info_struct(png);
    float *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    unsigned char *volatile raster = NULL;
    if (!info || setjmp(err.jmp)) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(px);
        free(rows);
        free(raster);
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: bad PNG: %s", path,
                               err.msg[0] ? err.msg : "cannot read");
    }
    png_init_io(png, f);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    /* Deflate expands at most ~1032:1, so a small file cannot hold a huge image: refuse
     * before allocating for it on the header's word (found by fuzz_image). The filtered
     * rows of the file's own format (bit depth, channels) are what is compressed. */
    struct stat st;
    uint64_t raw = (uint64_t)h * (png_get_rowbytes(png, info) + 1);
    if (fstat(fileno(f), &st) == 0 && raw > (uint64_t)st.st_size * 1032) {
        snprintf(err.msg, sizeof err.msg, "%ux%u pixels cannot be in a %lld-byte file", (unsigned)w,
                 (unsigned)h, (long long)st.st_size);
        longjmp(err.jmp, 1);
    }
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_PALETTE || (ct & PNG_COLOR_MASK_COLOR))
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w) {
        snprintf(err.msg, sizeof err.msg, "unexpected row size %zu for width %u", rowbytes,
                 (unsigned)w);
        longjmp(err.jmp, 1);
    }
    raster = malloc((size_t)w * h);
    rows = malloc(h * sizeof *rows);
    px = malloc((size_t)w * h * sizeof *px);
    if (!raster || !rows || !px) {
        snprintf(err.msg, sizeof err.msg, "out of memory for %ux%u", (unsigned)w, (unsigned)h);
        longjmp(err.jmp, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = raster + (size_t)y * w;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (size_t i = 0; i < (size_t)w * h; i++)
        px[i] = raster[i] / 255.0f;
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(raster);
    out->w = (int)w;
    out->h = (int)h;
    out->px = px;
    return CLCNN_OK;
}

clcnn_status image_read_gray(const char *path, gray_image *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return clcnn_set_error(CLCNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return clcnn_set_error(CLCNN_ERR_IO, "%s: not a regular file", path);
    }
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, 8, f);
    clcnn_status s;
    if (got == 8 && !png_sig_cmp(sig, 0, 8)) {
        rewind(f);
        s = read_png(path, f, out);
    } else if (got >= 2 && sig[0] == 'P' && (sig[1] == '5' || sig[1] == '2')) {
        if ((uint64_t)st.st_size > PGM_MAX_FILE) {
            fclose(f);
            return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: a PGM file of %lld bytes is too large",
                                   path, (long long)st.st_size);
        }
        size_t n = (size_t)st.st_size;
        unsigned char *buf = malloc(n ? n : 1);
        rewind(f);
        if (!buf || fread(buf, 1, n, f) != n) {
            free(buf);
            fclose(f);
            return clcnn_set_error(CLCNN_ERR_IO, "%s: cannot read", path);
        }
        s = read_pgm(path, buf, n, out);
        free(buf);
    } else {
        s = clcnn_set_error(
            CLCNN_ERR_FORMAT,
            "%s: not a PNG or PGM (P5/P2) image (other formats: convert first, e.g. "
            "'convert in.jpg -colorspace gray out.png')",
            path);
    }
    fclose(f);
    return s;
}

/* ---- resize ------------------------------------------------------------------------ */

/* Taps of one axis: output i reads input idx[i*k + t] with weight wt[i*k + t]. */
static int axis_taps(int in, int outn, int **idx, float **wt) {
    int k;
    if (outn <= in) { /* area average: an output covers in/outn inputs */
        double r = (double)in / outn;
        k = (int)ceil(r) + 1;
        *idx = calloc((size_t)outn * k, sizeof **idx);
        *wt = calloc((size_t)outn * k, sizeof **wt);
        if (!*idx || !*wt) return 0;
        for (int i = 0; i < outn; i++) {
            double a = i * r, b = (i + 1) * r;
            int t = 0;
            for (int j = (int)floor(a); j < (int)ceil(b) && t < k; j++, t++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                (*idx)[i * k + t] = j < in ? j : in - 1;
                (*wt)[i * k + t] = (float)((hi - lo) / r);
            }
        }
    } else { /* bilinear, pixel centres aligned */
        k = 2;
        *idx = calloc((size_t)outn * k, sizeof **idx);
        *wt = calloc((size_t)outn * k, sizeof **wt);
        if (!*idx || !*wt) return 0;
        for (int i = 0; i < outn; i++) {
            double x = (i + 0.5) * in / outn - 0.5;
            if (x < 0) x = 0;
            if (x > in - 1) x = in - 1;
            int j = (int)floor(x);
            double f = x - j;
            (*idx)[i * k] = j;
            (*wt)[i * k] = (float)(1 - f);
            (*idx)[i * k + 1] = j + 1 < in ? j + 1 : j;
            (*wt)[i * k + 1] = (float)f;
        }
    }
    return k;
}

void image_resize(const gray_image *src, int w, int h, float *dst) {
    if (src->w == w && src->h == h) {
        memcpy(dst, src->px, (size_t)w * h * sizeof *dst);
        return;
    }
    int *xi = NULL, *yi = NULL;
    float *xw = NULL, *yw = NULL;
    int kx = axis_taps(src->w, w, &xi, &xw), ky = axis_taps(src->h, h, &yi, &yw);
    if (kx && ky) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int ty = 0; ty < ky; ty++) {
                    float wy = yw[y * ky + ty];
                    if (wy == 0) continue;
                    const float *row = src->px + (size_t)yi[y * ky + ty] * src->w;
                    for (int tx = 0; tx < kx; tx++)
                        acc += wy * xw[x * kx + tx] * row[xi[x * kx + tx]];
                }
                dst[(size_t)y * w + x] = (float)acc;
            }
    } else {
        memset(dst, 0, (size_t)w * h * sizeof *dst);
    }
    free(xi);
    free(yi);
    free(xw);
    free(yw);
}

/* ---- PNG writing ------------------------------------------------------------------------ */

clcnn_status image_write_png(const char *path, int w, int h, int channels, const uint8_t *px) {
    FILE *f = fopen(path, "wb");
    if (!f) return clcnn_set_error(CLCNN_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png_err err = {.msg = ""};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(err.jmp)) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        fclose(f);
        remove(path);
        return clcnn_set_error(CLCNN_ERR_IO, "%s: cannot write PNG: %s", path,
                               err.msg[0] ? err.msg : "out of memory");
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * w * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        return clcnn_set_error(CLCNN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return CLCNN_OK;
}
