/* Datasets in memory: loading an images + labels pair of IDX files, the MNIST directory
 * layout, accessors, normalisation to float and gathering samples into NCHW floats. */
#include "idx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct clcnn_dataset {
    size_t n;    /* samples in use (clcnn_dataset_limit may lower it) */
    int c, h, w; /* per sample */
    int num_classes;
    uint8_t *pixels; /* n x (c, h, w) */
    uint8_t *labels; /* n */
    float mean, std;
    float lut[256]; /* normalised value of each pixel byte */
};

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                              "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

const char *clcnn_fashion_mnist_class_name(int label) {
    return label >= 0 && label < 10 ? fashion_names[label] : NULL;
}

static void set_lut(clcnn_dataset *ds) {
    for (int v = 0; v < 256; v++)
        ds->lut[v] = ((float)v / 255.0f - ds->mean) / ds->std;
}

/* clcnn_dataset_load_idx, reading only the first max_samples samples (0: all). */
static clcnn_status load_idx(const char *images_path, const char *labels_path, int num_classes,
                             size_t max_samples, clcnn_dataset **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_dataset_load_idx: out is NULL");
    *out = NULL;
    CC_RETURN_IF(!images_path || !labels_path, CLCNN_ERR_INVALID_ARG,
                 "clcnn_dataset_load_idx: a file name is NULL");
    CC_RETURN_IF(num_classes < 1 || num_classes > 256, CLCNN_ERR_INVALID_ARG,
                 "clcnn_dataset_load_idx: num_classes %d is not in [1, 256]", num_classes);

    uint32_t idims[3], ldims[3], nimg = 0, nlab = 0;
    uint8_t *pixels = NULL, *labels = NULL;
    CC_TRY(cc_idx_read_u8(images_path, 3, max_samples, idims, &nimg, &pixels));
    clcnn_status s = cc_idx_read_u8(labels_path, 1, max_samples, ldims, &nlab, &labels);
    if (s != CLCNN_OK) {
        free(pixels);
        return s;
    }
    if (idims[0] != ldims[0]) {
        free(pixels);
        free(labels);
        return cc_fail(CLCNN_ERR_FORMAT, "%s holds %u images but %s holds %u labels", images_path,
                       idims[0], labels_path, ldims[0]);
    }
    for (uint32_t i = 0; i < nlab; i++) {
        if (labels[i] >= num_classes) {
            int bad = labels[i];
            free(pixels);
            free(labels);
            return cc_fail(CLCNN_ERR_FORMAT, "%s: label %u is %d, outside [0, %d)", labels_path, i,
                           bad, num_classes);
        }
    }
    clcnn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        free(pixels);
        free(labels);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_dataset_load_idx: out of memory");
    }
    ds->n = nimg;
    ds->c = 1;
    ds->h = (int)idims[1];
    ds->w = (int)idims[2];
    ds->num_classes = num_classes;
    ds->pixels = pixels;
    ds->labels = labels;
    ds->mean = CLCNN_FASHION_MNIST_MEAN;
    ds->std = CLCNN_FASHION_MNIST_STD;
    set_lut(ds);
    *out = ds;
    return CLCNN_OK;
}

clcnn_status clcnn_dataset_load_idx(const char *images_path, const char *labels_path,
                                    int num_classes, clcnn_dataset **out) {
    return load_idx(images_path, labels_path, num_classes, 0, out);
}

/* Find dir/<one of names>; writes the path into buf. */
static int find_file(const char *dir, const char *const *names, char *buf, size_t cap) {
    for (int i = 0; names[i]; i++) {
        snprintf(buf, cap, "%s/%s", dir, names[i]);
        if (access(buf, F_OK) == 0) return 1;
    }
    return 0;
}

clcnn_status clcnn_dataset_load_mnist_first(const char *dir, clcnn_split split, size_t max_samples,
                                            clcnn_dataset **out) {
    /* the function the caller called (clcnn_dataset_load_mnist passes 0) */
    const char *fn = max_samples ? "clcnn_dataset_load_mnist_first" : "clcnn_dataset_load_mnist";
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    CC_RETURN_IF(split != CLCNN_SPLIT_TRAIN && split != CLCNN_SPLIT_TEST, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown split %d", fn, (int)split);
    int is_default = !dir || !*dir;
    if (is_default) dir = CLCNN_FASHION_MNIST_DIR;
    const char *p = split == CLCNN_SPLIT_TRAIN ? "train" : "t10k";
    char img_names[4][64], lab_names[4][64];
    const char *const suffix[2] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        snprintf(img_names[i], 64, "%s-images-idx3-ubyte%s", p, suffix[i]);
        snprintf(img_names[2 + i], 64, "%s-images.idx3-ubyte%s", p, suffix[i]);
        snprintf(lab_names[i], 64, "%s-labels-idx1-ubyte%s", p, suffix[i]);
        snprintf(lab_names[2 + i], 64, "%s-labels.idx1-ubyte%s", p, suffix[i]);
    }
    const char *const imgs[] = {img_names[0], img_names[1], img_names[2], img_names[3], NULL};
    const char *const labs[] = {lab_names[0], lab_names[1], lab_names[2], lab_names[3], NULL};
    char ipath[4096], lpath[4096];
    const char *hint = is_default ? " (install the Debian package dataset-fashion-mnist, or pass "
                                    "another MNIST-format directory)"
                                  : "";
    if (!find_file(dir, imgs, ipath, sizeof ipath))
        return cc_fail(CLCNN_ERR_IO, "%s: no %s or %s.gz%s", dir, img_names[0], img_names[0], hint);
    if (!find_file(dir, labs, lpath, sizeof lpath))
        return cc_fail(CLCNN_ERR_IO, "%s: no %s or %s.gz%s", dir, lab_names[0], lab_names[0], hint);
    return load_idx(ipath, lpath, 10, max_samples, out);
}

clcnn_status clcnn_dataset_load_mnist(const char *dir, clcnn_split split, clcnn_dataset **out) {
    return clcnn_dataset_load_mnist_first(dir, split, 0, out);
}

void clcnn_dataset_free(clcnn_dataset *ds) {
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    free(ds);
}

size_t clcnn_dataset_size(const clcnn_dataset *ds) {
    return ds ? ds->n : 0;
}

void clcnn_dataset_shape(const clcnn_dataset *ds, int *c, int *h, int *w) {
    if (c) *c = ds ? ds->c : 0;
    if (h) *h = ds ? ds->h : 0;
    if (w) *w = ds ? ds->w : 0;
}

int clcnn_dataset_num_classes(const clcnn_dataset *ds) {
    return ds ? ds->num_classes : 0;
}

const uint8_t *clcnn_dataset_pixels(const clcnn_dataset *ds, size_t i) {
    if (!ds || i >= ds->n) return NULL;
    return ds->pixels + i * (size_t)ds->c * ds->h * ds->w;
}

int clcnn_dataset_label(const clcnn_dataset *ds, size_t i) {
    if (!ds || i >= ds->n) return -1;
    return ds->labels[i];
}

void clcnn_dataset_limit(clcnn_dataset *ds, size_t n) {
    if (ds && n > 0 && n < ds->n) ds->n = n;
}

clcnn_status clcnn_dataset_set_normalization(clcnn_dataset *ds, float mean, float std) {
    CC_RETURN_IF(!ds, CLCNN_ERR_INVALID_ARG, "clcnn_dataset_set_normalization: dataset is NULL");
    CC_RETURN_IF(!isfinite(mean) || !isfinite(std) || !(std > 0.0f), CLCNN_ERR_INVALID_ARG,
                 "clcnn_dataset_set_normalization: need a finite mean and std > 0, got mean %g "
                 "std %g",
                 (double)mean, (double)std);
    ds->mean = mean;
    ds->std = std;
    set_lut(ds);
    return CLCNN_OK;
}

void clcnn_dataset_normalization(const clcnn_dataset *ds, float *mean, float *std) {
    if (mean) *mean = ds ? ds->mean : 0.0f;
    if (std) *std = ds ? ds->std : 1.0f;
}

clcnn_status clcnn_dataset_gather(const clcnn_dataset *ds, const size_t *indices, size_t count,
                                  float *x, int32_t *labels) {
    CC_RETURN_IF(!ds || (count && (!indices || !x)), CLCNN_ERR_INVALID_ARG,
                 "clcnn_dataset_gather: NULL argument");
    for (size_t i = 0; i < count; i++)
        CC_RETURN_IF(indices[i] >= ds->n, CLCNN_ERR_INVALID_ARG,
                     "clcnn_dataset_gather: index %zu (position %zu) is outside the dataset of "
                     "%zu samples",
                     indices[i], i, ds->n);
    size_t per = (size_t)ds->c * ds->h * ds->w;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *src = ds->pixels + indices[i] * per;
        float *dst = x + i * per;
        for (size_t j = 0; j < per; j++)
            dst[j] = ds->lut[src[j]];
        if (labels) labels[i] = ds->labels[indices[i]];
    }
    return CLCNN_OK;
}
