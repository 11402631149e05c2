/* The data layer: datasets read from IDX files (the MNIST / Fashion-MNIST format, plain
 * or gzip-compressed), normalisation to float, and a seeded shuffling batch iterator
 * that produces host batches (float NCHW + int32 labels) ready for upload.
 *
 * Everything here runs on the host; nothing touches a device.
 *
 * Ownership: a clcnn_dataset owns its pixels and labels; a clcnn_batcher borrows its
 * dataset (which must outlive it) and owns the batch buffers it hands out. */
#ifndef CLCNN_DATA_H
#define CLCNN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where Debian's dataset-fashion-mnist package installs the files. */
#define CLCNN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/* Mean and standard deviation of the Fashion-MNIST training pixels scaled to [0, 1]. */
#define CLCNN_FASHION_MNIST_MEAN 0.2860f
#define CLCNN_FASHION_MNIST_STD 0.3530f

/* The ten Fashion-MNIST class names ("T-shirt/top", ..., "Ankle boot"); NULL outside [0, 9]. */
CLCNN_API const char *clcnn_fashion_mnist_class_name(int label);

/* A labelled image dataset held in memory as u8 pixels: n samples of (c, h, w). */
typedef struct clcnn_dataset clcnn_dataset;

/* Read an IDX image file (magic 0x00000803: u8, n x rows x cols) and an IDX label file
 * (magic 0x00000801: u8, n), either plain or gzip-compressed (any name; a name ending in
 * ".gz" must hold gzip data). Validates magic numbers, dimensions and the data size
 * against what the file actually contains before trusting the header for allocation,
 * that both files agree in count, and that every label is in [0, num_classes).
 * Failures: CLCNN_ERR_IO (cannot open/read) or CLCNN_ERR_FORMAT (malformed), with a
 * message naming the file and the problem; nothing is allocated on failure. */
CLCNN_API clcnn_status clcnn_dataset_load_idx(const char *images_path, const char *labels_path,
                                              int num_classes, clcnn_dataset **out);

typedef enum clcnn_split {
    CLCNN_SPLIT_TRAIN = 0, /* train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] */
    CLCNN_SPLIT_TEST = 1,  /* t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] */
} clcnn_split;

/* Load one split of an MNIST-format directory (10 classes). dir NULL or "" means
 * CLCNN_FASHION_MNIST_DIR. Accepts the plain and .gz names (and the "train-images.idx3-ubyte"
 * spelling); a missing file is CLCNN_ERR_IO naming the directory and the names tried. */
CLCNN_API clcnn_status clcnn_dataset_load_mnist(const char *dir, clcnn_split split,
                                                clcnn_dataset **out);
/* As clcnn_dataset_load_mnist, but only the first max_samples samples of the split are
 * read and decompressed (0: all), so a run on a few thousand images starts at once (60,000
 * Fashion-MNIST training images take about 0.25 s of CPU to decompress). Both headers are
 * still checked and must agree; damage past the samples read may go unnoticed. */
CLCNN_API clcnn_status clcnn_dataset_load_mnist_first(const char *dir, clcnn_split split,
                                                      size_t max_samples, clcnn_dataset **out);

/* NULL is a no-op. */
CLCNN_API void clcnn_dataset_free(clcnn_dataset *ds);

CLCNN_API size_t clcnn_dataset_size(const clcnn_dataset *ds);
/* Per-sample shape (c, h, w); any pointer may be NULL. */
CLCNN_API void clcnn_dataset_shape(const clcnn_dataset *ds, int *c, int *h, int *w);
CLCNN_API int clcnn_dataset_num_classes(const clcnn_dataset *ds);
/* The raw u8 pixels (c*h*w bytes) and the label of sample i (i < size). */
CLCNN_API const uint8_t *clcnn_dataset_pixels(const clcnn_dataset *ds, size_t i);
CLCNN_API int clcnn_dataset_label(const clcnn_dataset *ds, size_t i);

/* Keep only the first n samples (n = 0 or n >= size keeps all). For quick runs and tests. */
CLCNN_API void clcnn_dataset_limit(clcnn_dataset *ds, size_t n);

/* Normalisation applied when samples are turned into floats:
 * x = (pixel / 255 - mean) / std. Default: the Fashion-MNIST mean and std.
 * std <= 0 or a non-finite value is CLCNN_ERR_INVALID_ARG. */
CLCNN_API clcnn_status clcnn_dataset_set_normalization(clcnn_dataset *ds, float mean, float std);
CLCNN_API void clcnn_dataset_normalization(const clcnn_dataset *ds, float *mean, float *std);

/* Normalised floats of the samples indices[0..count): x receives count x (c, h, w)
 * floats (NCHW), labels (may be NULL) count int32. An index out of range is
 * CLCNN_ERR_INVALID_ARG and nothing is written. */
CLCNN_API clcnn_status clcnn_dataset_gather(const clcnn_dataset *ds, const size_t *indices,
                                            size_t count, float *x, int32_t *labels);

/* ---- batches ----------------------------------------------------------------------- */

typedef struct clcnn_batcher_config {
    size_t batch_size; /* >= 1 */
    int shuffle;       /* 1: a fresh permutation per epoch from (seed, epoch); 0: file order */
    int drop_last;     /* 1: drop a last partial batch; 0: keep it */
    uint64_t seed;
    /* Augmentation, drawn per sample from (seed, epoch, position) so that resuming
     * reproduces it: */
    int flip;  /* 1: mirror left-right with probability 1/2 */
    int shift; /* > 0: translate by up to +-shift pixels in x and y (uniform), filling with
                  the background (pixel value 0) */
} clcnn_batcher_config;
/* batch 64, shuffle on, keep the last partial batch, seed 0, no augmentation. */
CLCNN_API clcnn_batcher_config clcnn_batcher_config_default(void);

/* One host batch: x is n x (c, h, w) floats, labels n int32 (n <= batch size). The
 * pointers belong to the batcher and stay valid until its next call. */
typedef struct clcnn_batch {
    const float *x;
    const int32_t *labels;
    size_t n;
    size_t index; /* position of this batch in its epoch, from 0 */
} clcnn_batch;

typedef struct clcnn_batcher clcnn_batcher;

/* An iterator over ds (borrowed; must outlive the batcher), positioned at the start of
 * epoch 0. */
CLCNN_API clcnn_status clcnn_batcher_create(const clcnn_dataset *ds,
                                            const clcnn_batcher_config *cfg, clcnn_batcher **out);
CLCNN_API void clcnn_batcher_free(clcnn_batcher *b);

/* Batches per epoch (counting a last partial batch unless drop_last). */
CLCNN_API size_t clcnn_batcher_num_batches(const clcnn_batcher *b);

/* Position at batch `batch` of epoch `epoch` (0-based). The order of an epoch depends
 * only on (seed, epoch), so seeking reproduces exactly what an uninterrupted iteration
 * would produce: this is how training resumes. batch > num_batches is
 * CLCNN_ERR_INVALID_ARG. */
CLCNN_API clcnn_status clcnn_batcher_seek(clcnn_batcher *b, int64_t epoch, size_t batch);
/* The current position: the epoch and the index of the batch the next call returns. */
CLCNN_API void clcnn_batcher_position(const clcnn_batcher *b, int64_t *epoch, size_t *batch);

/* The next batch of the current epoch. At the end of the epoch it returns CLCNN_OK with
 * out->n == 0 and moves to the start of the next epoch. */
CLCNN_API clcnn_status clcnn_batcher_next(clcnn_batcher *b, clcnn_batch *out);

/* The dataset index of position i (< size) of the permutation of the current epoch. */
CLCNN_API size_t clcnn_batcher_order(const clcnn_batcher *b, size_t i);

#ifdef __cplusplus
}
#endif
#endif
