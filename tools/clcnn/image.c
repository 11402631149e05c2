/* PGM, PNG and JPEG reading (as gray or RGB floats), resizing and PNG writing for the
 * clcnn command. */
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

#include <jerror.h>
#include <jpeglib.h>

#define PGM_MAX_FILE (512u << 20)

void image_free(image *img) {
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = img->c = 0;
}

/* The sides a header declares, before anything is allocated for them. */
static clcnn_status check_sides(const char *path, const char *fmt, uint64_t w, uint64_t h) {
    if (w == 0 || h == 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE)
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: %s size %llux%llu is outside 1..%d", path,
                               fmt, (unsigned long long)w, (unsigned long long)h, IMAGE_MAX_SIDE);
    return CLCNN_OK;
}

/* The pixel count, checked after the file's size has shown it can hold the pixels. */
static clcnn_status check_pixels(const char *path, const char *fmt, uint64_t w, uint64_t h) {
    if (w * h > IMAGE_MAX_PIXELS)
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: %s size %llux%llu is more than %u megapixels",
                               path, fmt, (unsigned long long)w, (unsigned long long)h,
                               IMAGE_MAX_PIXELS >> 20);
    return CLCNN_OK;
}

/* out->px for a w x h image of c channels, or a CLCNN_ERR_OUT_OF_MEMORY naming path. */
static clcnn_status alloc_pixels(const char *path, int w, int h, int c, image *out) {
    out->px = malloc((size_t)w * h * c * sizeof *out->px);
    if (!out->px)
        return clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "%s: out of memory for %dx%d", path, w, h);
    out->w = w;
    out->h = h;
    out->c = c;
    return CLCNN_OK;
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

static clcnn_status read_pgm(const char *path, const unsigned char *b, size_t n, int channels,
                             image *out) {
    int binary = b[1] == '5';
    size_t pos = 2;
    unsigned long w, h, maxval;
    if (!pgm_number(b, n, &pos, &w) || !pgm_number(b, n, &pos, &h) ||
        !pgm_number(b, n, &pos, &maxval))
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: malformed PGM header (width, height, maxval)",
                               path);
    clcnn_status s = check_sides(path, "PGM", w, h);
    if (s) return s;
    if (maxval == 0 || maxval > 65535)
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: PGM maxval %lu is outside 1..65535", path,
                               maxval);
    size_t count = (size_t)w * h;
    if (count > n - pos) /* every pixel takes a byte at least: no allocating on the header's word */
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: truncated PGM: %lux%lu pixels in %zu bytes",
                               path, w, h, n - pos);
    if ((s = check_pixels(path, "PGM", w, h))) return s;
    size_t bpp = maxval > 255 ? 2 : 1;
    if (binary) {
        if (pos >= n || !isspace(b[pos]))
            return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: malformed PGM header", path);
        pos++; /* exactly one whitespace before the raster */
        if (n - pos < count * bpp)
            return clcnn_set_error(
                CLCNN_ERR_FORMAT,
                "%s: truncated PGM: %lux%lu needs %zu bytes of pixels, the file has "
                "%zu",
                path, w, h, count * bpp, n - pos);
    }
    if ((s = alloc_pixels(path, (int)w, (int)h, channels, out))) return s;
    for (size_t i = 0; i < count; i++) {
        unsigned long v;
        if (!binary && !pgm_number(b, n, &pos, &v)) {
            image_free(out);
            return clcnn_set_error(CLCNN_ERR_FORMAT,
                                   "%s: truncated or malformed P2 data at pixel %zu", path, i);
        }
        if (binary)
            v = bpp == 1 ? b[pos + i] : (unsigned long)b[pos + 2 * i] << 8 | b[pos + 2 * i + 1];
        float f = (float)(v > maxval ? maxval : v) / (float)maxval;
        for (int c = 0; c < channels; c++)
            out->px[i * channels + c] = f;
    }
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

static clcnn_status read_png(const char *path, FILE *f, int channels, image *out) {
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
    if ((uint64_t)w * h > IMAGE_MAX_PIXELS) {
        snprintf(err.msg, sizeof err.msg, "%ux%u is more than %u megapixels", (unsigned)w,
                 (unsigned)h, IMAGE_MAX_PIXELS >> 20);
        longjmp(err.jmp, 1);
    }
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_strip_alpha(png);
    int color = ct == PNG_COLOR_TYPE_PALETTE || (ct & PNG_COLOR_MASK_COLOR);
    if (color && channels == 1) png_set_rgb_to_gray_fixed(png, 1, -1, -1);
    if (!color && channels == 3) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * channels) {
        snprintf(err.msg, sizeof err.msg, "unexpected row size %zu for width %u", rowbytes,
                 (unsigned)w);
        longjmp(err.jmp, 1);
    }
    raster = malloc(rowbytes * h);
    rows = malloc(h * sizeof *rows);
    px = malloc(rowbytes * h * sizeof *px);
    if (!raster || !rows || !px) {
        snprintf(err.msg, sizeof err.msg, "out of memory for %ux%u", (unsigned)w, (unsigned)h);
        longjmp(err.jmp, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = raster + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (size_t i = 0; i < rowbytes * h; i++)
        px[i] = raster[i] / 255.0f;
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(raster);
    out->w = (int)w;
    out->h = (int)h;
    out->c = channels;
    out->px = px;
    return CLCNN_OK;
}

/* ---- JPEG ---------------------------------------------------------------------------- */

/* Coded data per pixel has a floor only if no block goes missing: every 8x8 block of the
 * component with the largest sampling factors costs at least one bit (its DC code; the
 * EOB of a sequential scan is another), so a file of n bytes holds at most n*8*64 pixels.
 * libjpeg fills missing or corrupt data with gray and only warns; here every warning that
 * means lost data is an error, arithmetic coding (well under a bit per block) is refused,
 * and so are more scans than any encoder writes (each one is a pass over the image). */
#define JPEG_MAX_PIXELS_PER_BYTE 512
#define JPEG_MAX_SCANS 256

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci) {
    jpeg_err *e = (jpeg_err *)ci->err;
    ci->err->format_message(ci, e->msg);
    longjmp(e->jmp, 1);
}

/* level -1 is a warning (corrupt or missing data, a bogus progression); higher levels are
 * trace messages. Only warnings about metadata that does not touch the pixels pass. */
static void jpeg_on_message(j_common_ptr ci, int level) {
    int code = ci->err->msg_code;
    if (level < 0 && code != JWRN_EXTRANEOUS_DATA && code != JWRN_JFIF_MAJOR &&
        code != JWRN_ADOBE_XFORM)
        jpeg_on_error(ci);
}

static void jpeg_on_progress(j_common_ptr ci) {
    j_decompress_ptr d = (j_decompress_ptr)ci;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)ci->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(e->jmp, 1);
    }
}

static clcnn_status read_jpeg(const char *path, FILE *f, int channels, image *out) {
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    jpeg_err err = {.msg = ""};
    float *volatile px = NULL;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    if (setjmp(err.jmp)) {
        jpeg_destroy_decompress(&ci);
        free(px);
        return clcnn_set_error(CLCNN_ERR_FORMAT, "%s: bad JPEG: %s", path,
                               err.msg[0] ? err.msg : "cannot read");
    }
    jpeg_create_decompress(&ci);
    ci.progress = &progress;
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    struct stat st;
    uint64_t w = ci.image_width, h = ci.image_height;
    clcnn_status s = check_sides(path, "JPEG", w, h);
    if (s) {
        jpeg_destroy_decompress(&ci);
        return s;
    }
    if (ci.arith_code) {
        snprintf(err.msg, sizeof err.msg, "arithmetic coding is not supported");
        longjmp(err.jmp, 1);
    }
    if (fstat(fileno(f), &st) == 0 && w * h > (uint64_t)st.st_size * JPEG_MAX_PIXELS_PER_BYTE) {
        snprintf(err.msg, sizeof err.msg, "%llux%llu pixels cannot be in a %lld-byte file",
                 (unsigned long long)w, (unsigned long long)h, (long long)st.st_size);
        longjmp(err.jmp, 1);
    }
    if ((s = check_pixels(path, "JPEG", w, h))) {
        jpeg_destroy_decompress(&ci);
        return s;
    }
    ci.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&ci);
    if (ci.output_components != channels || ci.output_width != w || ci.output_height != h) {
        snprintf(err.msg, sizeof err.msg, "unexpected output of %d components, %ux%u",
                 ci.output_components, ci.output_width, ci.output_height);
        longjmp(err.jmp, 1);
    }
    size_t rowlen = (size_t)w * channels;
    JSAMPARRAY row = ci.mem->alloc_sarray((j_common_ptr)&ci, JPOOL_IMAGE, (JDIMENSION)rowlen, 1);
    px = malloc(rowlen * h * sizeof *px);
    if (!px) {
        snprintf(err.msg, sizeof err.msg, "out of memory for %llux%llu", (unsigned long long)w,
                 (unsigned long long)h);
        longjmp(err.jmp, 1);
    }
    while (ci.output_scanline < ci.output_height) {
        float *dst = px + (size_t)ci.output_scanline * rowlen;
        jpeg_read_scanlines(&ci, row, 1);
        for (size_t i = 0; i < rowlen; i++)
            dst[i] = row[0][i] / 255.0f;
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    out->w = (int)w;
    out->h = (int)h;
    out->c = channels;
    out->px = px;
    return CLCNN_OK;
}

/* ---- any format ---------------------------------------------------------------------- */

clcnn_status image_read_gray(const char *path, image *out) {
    return image_read(path, 1, out);
}

clcnn_status image_read(const char *path, int channels, image *out) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return clcnn_set_error(CLCNN_ERR_INVALID_ARG, "%s: %d channels asked for (1 or 3)", path,
                               channels);
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
        s = read_png(path, f, channels, out);
    } else if (got >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff) {
        rewind(f);
        s = read_jpeg(path, f, channels, out);
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
        s = read_pgm(path, buf, n, channels, out);
        free(buf);
    } else {
        s = clcnn_set_error(CLCNN_ERR_FORMAT,
                            "%s: not a PNG, JPEG or PGM (P5/P2) image (other formats: convert "
                            "first, e.g. 'convert in.tiff out.png')",
                            path);
    }
    fclose(f);
    return s;
}

/* ---- resize ------------------------------------------------------------------------ */

/* Taps of one axis resampled from in to outn, for outputs first..first+count: output
 * first+i reads input idx[i*k + t] with weight wt[i*k + t]. Returns k, 0 when out of
 * memory. */
static int axis_taps(int in, int outn, int first, int count, int **idx, float **wt) {
    int k = outn <= in ? (int)ceil((double)in / outn) + 1 : 2;
    *idx = calloc((size_t)count * k, sizeof **idx);
    *wt = calloc((size_t)count * k, sizeof **wt);
    if (!*idx || !*wt) return 0;
    for (int i = 0; i < count; i++) {
        int o = first + i;
        if (outn <= in) { /* area average: an output covers in/outn inputs */
            double r = (double)in / outn, a = o * r, b = (o + 1) * r;
            int t = 0;
            for (int j = (int)floor(a); j < (int)ceil(b) && t < k; j++, t++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                (*idx)[i * k + t] = j < in ? j : in - 1;
                (*wt)[i * k + t] = (float)((hi - lo) / r);
            }
        } else { /* bilinear, pixel centres aligned */
            double x = (o + 0.5) * in / outn - 0.5;
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

void image_resize_crop(const image *src, int rw, int rh, int x0, int y0, int cw, int ch,
                       float *dst) {
    int c = src->c;
    size_t n = (size_t)cw * ch * c;
    if (src->w == rw && src->h == rh) {
        for (int y = 0; y < ch; y++)
            memcpy(dst + (size_t)y * cw * c, src->px + ((size_t)(y0 + y) * rw + x0) * c,
                   (size_t)cw * c * sizeof *dst);
        return;
    }
    int *xi = NULL, *yi = NULL;
    float *xw = NULL, *yw = NULL;
    int kx = axis_taps(src->w, rw, x0, cw, &xi, &xw), ky = axis_taps(src->h, rh, y0, ch, &yi, &yw);
    if (kx && ky) {
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
                for (int k = 0; k < c; k++) {
                    double acc = 0;
                    for (int ty = 0; ty < ky; ty++) {
                        float wy = yw[y * ky + ty];
                        if (wy == 0) continue;
                        const float *row = src->px + (size_t)yi[y * ky + ty] * src->w * c + k;
                        for (int tx = 0; tx < kx; tx++)
                            acc += wy * xw[x * kx + tx] * row[(size_t)xi[x * kx + tx] * c];
                    }
                    dst[((size_t)y * cw + x) * c + k] = (float)acc;
                }
    } else {
        memset(dst, 0, n * sizeof *dst);
    }
    free(xi);
    free(yi);
    free(xw);
    free(yw);
}

void image_resize(const image *src, int w, int h, float *dst) {
    image_resize_crop(src, w, h, 0, 0, w, h, dst);
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
