/* torchvision's ImageNet preprocessing for `clcnn predict` on ONNX models. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>

int preprocess_shorter_side(int size) {
    return (int)lround(size * 256.0 / 224.0);
}

void preprocess_resized(int iw, int ih, int shorter, int *rw, int *rh) {
    if (iw <= ih) {
        *rw = shorter;
        *rh = (int)((double)shorter * ih / iw);
    } else {
        *rh = shorter;
        *rw = (int)((double)shorter * iw / ih);
    }
}

int preprocess_crop_offset(int len, int n) {
    int d = len - n, half = d / 2;
    return d % 2 == 0 || half % 2 == 0 ? half : half + 1; /* k + 0.5 rounds to the even one */
}

clcnn_status preprocess_image(const image *img, const preprocess_params *p, float *dst) {
    if (img->c != p->c)
        return clcnn_set_error(CLCNN_ERR_INVALID_ARG, "preprocess: a %d-channel image for %d",
                               img->c, p->c);
    int rw, rh;
    preprocess_resized(img->w, img->h, preprocess_shorter_side(p->size), &rw, &rh);
    if (rw < p->w || rh < p->h)
        return clcnn_set_error(CLCNN_ERR_SHAPE,
                               "a %dx%d image resized to %dx%d (size %d) is smaller than the "
                               "model's %dx%d input",
                               img->w, img->h, rw, rh, p->size, p->w, p->h);
    size_t plane = (size_t)p->h * p->w;
    float *hwc = malloc(plane * p->c * sizeof *hwc); /* the crop, channels interleaved */
    if (!hwc) return clcnn_set_error(CLCNN_ERR_OUT_OF_MEMORY, "preprocess: out of memory");
    image_resize_crop(img, rw, rh, preprocess_crop_offset(rw, p->w),
                      preprocess_crop_offset(rh, p->h), p->w, p->h, hwc);
    for (int k = 0; k < p->c; k++)
        for (size_t i = 0; i < plane; i++)
            dst[k * plane + i] = (float)((hwc[i * p->c + k] - p->mean[k]) / p->std[k]);
    free(hwc);
    return CLCNN_OK;
}
