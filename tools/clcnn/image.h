/* Image files for the clcnn command: reading PGM (P5/P2), PNG and JPEG as grayscale or
 * RGB floats, resizing, and writing 8-bit PNGs (grayscale or RGB). */
#ifndef CLCNN_TOOL_IMAGE_H
#define CLCNN_TOOL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (1u << 26) /* 64 megapixels: 768 MB as RGB floats */

/* An image of c channels (1 gray, 3 RGB), values in [0, 1], rows of w pixels whose
 * channels are interleaved: px[(y*w + x)*c + ch]. */
typedef struct image {
    int w, h, c;
    float *px;
} image;

/* Read a PGM (P5 binary or P2 text, maxval up to 65535), PNG (any color type: palette is
 * expanded, alpha dropped, 16-bit reduced) or JPEG (baseline or progressive, Huffman
 * coded) file, chosen by its content, as channels 1 (gray: color is converted to
 * luminance) or 3 (RGB: gray is replicated). Errors (CLCNN_ERR_IO / CLCNN_ERR_FORMAT) name
 * the file and the problem: unknown format, truncated or corrupt data, a side of 0 or
 * beyond IMAGE_MAX_SIDE, more than IMAGE_MAX_PIXELS pixels, or more pixels than a file of
 * its size can encode. Nothing is allocated on a header's word alone. */
clcnn_status image_read(const char *path, int channels, image *out);
/* image_read(path, 1, out) */
clcnn_status image_read_gray(const char *path, image *out);
void image_free(image *img);

/* Resample src to rw x rh and write the cw x ch window at (x0, y0) of the result into dst
 * (cw*ch*src->c floats, channels interleaved): area averaging along an axis that shrinks,
 * bilinear (pixel centres aligned, edges clamped) along one that grows. The window must lie
 * inside rw x rh. */
void image_resize_crop(const image *src, int rw, int rh, int x0, int y0, int cw, int ch,
                       float *dst);
/* The whole of src resampled to w x h: image_resize_crop(src, w, h, 0, 0, w, h, dst). */
void image_resize(const image *src, int w, int h, float *dst);

/* Write an 8-bit PNG: channels 1 (gray) or 3 (RGB), rows of w*channels bytes. */
clcnn_status image_write_png(const char *path, int w, int h, int channels, const uint8_t *px);

#endif
