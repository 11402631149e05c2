/* The input preprocessing of `clcnn predict` for ONNX models: torchvision's ImageNet
 * recipe, Resize(round(S*256/224)) + CenterCrop((H, W)) + ToTensor + Normalize(mean, std),
 * into one sample of an NCHW batch. */
#ifndef CLCNN_TOOL_PREPROCESS_H
#define CLCNN_TOOL_PREPROCESS_H

#include "image.h"

typedef struct preprocess_params {
    int size;               /* S: the shorter side becomes round(S*256/224) */
    int h, w, c;            /* the model's input: an h x w crop of c channels (1 or 3) */
    double mean[3], std[3]; /* per channel, on values in [0, 1] */
} preprocess_params;

/* round(size * 256 / 224): 224 -> 256. */
int preprocess_shorter_side(int size);
/* The size of an iw x ih image resized so that its shorter side is `shorter`, keeping the
 * aspect ratio; the longer side is truncated, as torchvision's Resize(int) does. */
void preprocess_resized(int iw, int ih, int shorter, int *rw, int *rh);
/* Offset of a centred window of n in len (len >= n), rounded half to even as torchvision's
 * CenterCrop (Python's round). */
int preprocess_crop_offset(int len, int n);
/* img (p->c channels) resized, cropped and normalised into dst (c x h x w floats, channel
 * planes). CLCNN_ERR_SHAPE when the resized image is smaller than the crop,
 * CLCNN_ERR_OUT_OF_MEMORY. */
clcnn_status preprocess_image(const image *img, const preprocess_params *p, float *dst);

#endif
