/* Image files for the clcnn command: reading PGM (P5/P2) and PNG as grayscale, resizing,
 * and writing 8-bit PNGs (grayscale or RGB). */
#ifndef CLCNN_TOOL_IMAGE_H
#define CLCNN_TOOL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "clcnn/status.h"

#define IMAGE_MAX_SIDE 16384

/* A grayscale image, values in [0, 1], row-major. */
typedef struct gray_image {
    int w, h;
    float *px;
} gray_image;

/* Read a PGM (P5 binary or P2 text, maxval up to 65535) or PNG (any color type: palette
 * and RGB are converted to luminance, alpha is dropped, 16-bit is reduced) file, chosen
 * by its content. Errors (CLCNN_ERR_IO / CLCNN_ERR_FORMAT) name the file and the problem:
 * unknown format, truncated data, a side of 0 or beyond IMAGE_MAX_SIDE. */
clcnn_status image_read_gray(const char *path, gray_image *out);
void image_free(gray_image *img);

/* Resample src to w x h into dst (w*h floats): area averaging when shrinking, bilinear
 * when enlarging. */
void image_resize(const gray_image *src, int w, int h, float *dst);

/* Write an 8-bit PNG: channels 1 (gray) or 3 (RGB), rows of w*channels bytes. */
clcnn_status image_write_png(const char *path, int w, int h, int channels, const uint8_t *px);

#endif
