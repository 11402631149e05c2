/* The batch iterator: per-epoch permutations that depend only on (seed, epoch), so a
 * run resumed at (epoch, batch) sees exactly the batches an uninterrupted run sees.
 *
 * RNG: splitmix64 seeded from (seed, epoch); Fisher-Yates with unbiased bounded draws
 * (rejection sampling), independent of libc, identical on every platform. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct clcnn_batcher {
    const clcnn_dataset *ds;
    clcnn_batcher_config cfg;
    size_t n;           /* dataset size when created */
    size_t per;         /* floats per sample */
    size_t num_batches; /* per epoch */
    int64_t epoch;
    size_t next;   /* batch index the next call returns */
    size_t *order; /* permutation of the current epoch */
    float *x;      /* batch_size x per */
    int32_t *labels;
    int c, h, w;
    float *scratch;   /* one sample, for augmentation */
    float background; /* normalised value of pixel 0 */
};

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias. */
static uint64_t bounded(uint64_t *s, uint64_t bound) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = splitmix64(s);
    while (r >= limit);
    return r % bound;
}

static void make_order(clcnn_batcher *b) {
    for (size_t i = 0; i < b->n; i++)
        b->order[i] = i;
    if (!b->cfg.shuffle) return;
    /* Mix seed and epoch through splitmix so neighbouring seeds/epochs are unrelated. */
    uint64_t s = b->cfg.seed ^ 0x2545f4914f6cdd1dULL;
    uint64_t e = (uint64_t)b->epoch;
    s = splitmix64(&s) ^ (e * 0xd1b54a32d192ed03ULL);
    for (size_t i = b->n - 1; i > 0; i--) {
        size_t j = (size_t)bounded(&s, (uint64_t)i + 1);
        size_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

/* Flip and/or shift one sample in place; the draws depend on (seed, epoch, position). */
static void augment(clcnn_batcher *b, size_t position, float *x) {
    uint64_t s = b->cfg.seed ^ 0x6a09e667f3bcc909ULL;
    s = splitmix64(&s) ^ ((uint64_t)b->epoch * 0xd1b54a32d192ed03ULL);
    s = splitmix64(&s) ^ ((uint64_t)position * 0x9e3779b97f4a7c15ULL);
    splitmix64(&s);
    int flip = b->cfg.flip ? (int)bounded(&s, 2) : 0;
    int span = 2 * b->cfg.shift + 1;
    int dx = b->cfg.shift ? (int)bounded(&s, (uint64_t)span) - b->cfg.shift : 0;
    int dy = b->cfg.shift ? (int)bounded(&s, (uint64_t)span) - b->cfg.shift : 0;
    if (!flip && !dx && !dy) return;
    int h = b->h, w = b->w;
    memcpy(b->scratch, x, b->per * sizeof *x);
    for (int c = 0; c < b->c; c++) {
        const float *src = b->scratch + (size_t)c * h * w;
        float *dst = x + (size_t)c * h * w;
        /* out(y, x) = in(y - dy, x' - dx) where x' = flip ? w-1-x : x */
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                int sy = y - dy, sx = (flip ? w - 1 - xx : xx) - dx;
                dst[y * w + xx] =
                    sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx] : b->background;
            }
    }
}

clcnn_batcher_config clcnn_batcher_config_default(void) {
    return (clcnn_batcher_config){
        .batch_size = 64, .shuffle = 1, .drop_last = 0, .seed = 0, .flip = 0, .shift = 0};
}

clcnn_status clcnn_batcher_create(const clcnn_dataset *ds, const clcnn_batcher_config *cfg,
                                  clcnn_batcher **out) {
    CC_RETURN_IF(!out, CLCNN_ERR_INVALID_ARG, "clcnn_batcher_create: out is NULL");
    *out = NULL;
    CC_RETURN_IF(!ds || !cfg, CLCNN_ERR_INVALID_ARG, "clcnn_batcher_create: NULL argument");
    size_t n = clcnn_dataset_size(ds);
    CC_RETURN_IF(n == 0, CLCNN_ERR_INVALID_ARG, "clcnn_batcher_create: the dataset is empty");
    CC_RETURN_IF(cfg->batch_size == 0 || cfg->batch_size > (1u << 24), CLCNN_ERR_INVALID_ARG,
                 "clcnn_batcher_create: batch size %zu is not in [1, 16777216]", cfg->batch_size);
    int c, h, w;
    clcnn_dataset_shape(ds, &c, &h, &w);
    CC_RETURN_IF(cfg->shift < 0 || cfg->shift >= h || cfg->shift >= w || cfg->flip < 0 ||
                     cfg->flip > 1,
                 CLCNN_ERR_INVALID_ARG,
                 "clcnn_batcher_create: flip %d (0 or 1) or shift %d (0 to %d) out of range",
                 cfg->flip, cfg->shift, (h < w ? h : w) - 1);
    CC_RETURN_IF(cfg->drop_last && cfg->batch_size > n, CLCNN_ERR_INVALID_ARG,
                 "clcnn_batcher_create: batch size %zu with drop_last leaves no batch of the "
                 "%zu samples",
                 cfg->batch_size, n);
    clcnn_batcher *b = calloc(1, sizeof *b);
    if (!b) return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "clcnn_batcher_create: out of memory");
    b->ds = ds;
    b->cfg = *cfg;
    b->n = n;
    b->per = (size_t)c * h * w;
    b->num_batches =
        cfg->drop_last ? n / cfg->batch_size : (n + cfg->batch_size - 1) / cfg->batch_size;
    b->order = malloc(n * sizeof *b->order);
    b->x = malloc(cfg->batch_size * b->per * sizeof *b->x);
    b->labels = malloc(cfg->batch_size * sizeof *b->labels);
    b->scratch = malloc(b->per * sizeof *b->scratch);
    b->c = c;
    b->h = h;
    b->w = w;
    float mean, std;
    clcnn_dataset_normalization(ds, &mean, &std);
    b->background = (0.0f - mean) / std;
    if (!b->order || !b->x || !b->labels || !b->scratch) {
        size_t per = b->per;
        clcnn_batcher_free(b);
        return cc_fail(CLCNN_ERR_OUT_OF_MEMORY,
                       "clcnn_batcher_create: cannot allocate a batch of %zu x %zu floats",
                       cfg->batch_size, per);
    }
    make_order(b);
    *out = b;
    return CLCNN_OK;
}

void clcnn_batcher_free(clcnn_batcher *b) {
    if (!b) return;
    free(b->order);
    free(b->x);
    free(b->labels);
    free(b->scratch);
    free(b);
}

size_t clcnn_batcher_num_batches(const clcnn_batcher *b) {
    return b ? b->num_batches : 0;
}

clcnn_status clcnn_batcher_seek(clcnn_batcher *b, int64_t epoch, size_t batch) {
    CC_RETURN_IF(!b, CLCNN_ERR_INVALID_ARG, "clcnn_batcher_seek: batcher is NULL");
    CC_RETURN_IF(epoch < 0 || batch > b->num_batches, CLCNN_ERR_INVALID_ARG,
                 "clcnn_batcher_seek: position (epoch %lld, batch %zu) is outside epochs >= 0 "
                 "of %zu batches",
                 (long long)epoch, batch, b->num_batches);
    if (epoch != b->epoch) {
        b->epoch = epoch;
        make_order(b);
    }
    b->next = batch;
    return CLCNN_OK;
}

void clcnn_batcher_position(const clcnn_batcher *b, int64_t *epoch, size_t *batch) {
    if (epoch) *epoch = b ? b->epoch : 0;
    if (batch) *batch = b ? b->next : 0;
}

clcnn_status clcnn_batcher_next(clcnn_batcher *b, clcnn_batch *out) {
    CC_RETURN_IF(!b || !out, CLCNN_ERR_INVALID_ARG, "clcnn_batcher_next: NULL argument");
    CC_RETURN_IF(clcnn_dataset_size(b->ds) != b->n, CLCNN_ERR_INVALID_ARG,
                 "clcnn_batcher_next: the dataset changed size (%zu -> %zu samples) after the "
                 "batcher was created",
                 b->n, clcnn_dataset_size(b->ds));
    memset(out, 0, sizeof *out);
    if (b->next >= b->num_batches) {
        b->epoch++;
        b->next = 0;
        make_order(b);
        return CLCNN_OK;
    }
    size_t start = b->next * b->cfg.batch_size;
    size_t count = b->n - start < b->cfg.batch_size ? b->n - start : b->cfg.batch_size;
    CC_TRY(clcnn_dataset_gather(b->ds, b->order + start, count, b->x, b->labels));
    if (b->cfg.flip || b->cfg.shift)
        for (size_t i = 0; i < count; i++)
            augment(b, start + i, b->x + i * b->per);
    out->x = b->x;
    out->labels = b->labels;
    out->n = count;
    out->index = b->next++;
    return CLCNN_OK;
}

size_t clcnn_batcher_order(const clcnn_batcher *b, size_t i) {
    return b && i < b->n ? b->order[i] : (size_t)-1;
}
