/* Internals of checkpoints (lib/nn/checkpoint.c: names and loading; checkpoint_save.c:
 * saving; safetensors.c: reading and validating a file). Never installed. Prefix cc_ck_.
 * jansson parses the header. */
#ifndef CLCNN_NN_CHECKPOINT_INTERNAL_H
#define CLCNN_NN_CHECKPOINT_INTERNAL_H

#include "nn_internal.h"

#include <jansson.h>

#define CK_MAX_RANK 8
#define CK_NAME_CAP 512

typedef struct ck_entry {
    const char *name; /* key inside root (valid while root lives) */
    const char *dtype;
    size_t elem; /* bytes per element */
    int ndim;
    uint64_t shape[CK_MAX_RANK];
    uint64_t begin, end; /* relative to the data section */
    int claimed;
    clcnn_tensor *dst; /* where load puts it; NULL = ignored */
} ck_entry;

typedef struct ck_file {
    const char *path;
    FILE *f;
    uint64_t file_size, header_len, data_size;
    json_t *root;
    json_t *meta; /* NULL when absent */
    ck_entry *e;
    size_t ne;
} ck_file;

/* lib/nn/safetensors.c. Byte order: 1 on a big-endian host; swap every 4-byte element of
 * buf in place. */
int cc_ck_host_big_endian(void);
void cc_ck_swap32_inplace(void *buf, size_t bytes);
/* Open path, read and validate its header: the JSON, every entry, and that no two
 * tensors share bytes. The file stays open for reading the data; cc_ck_close closes it and
 * frees the header. On failure ck is closed. */
clcnn_status cc_ck_open(const char *path, ck_file *ck);
void cc_ck_close(ck_file *ck);
/* The entry called name, NULL when the file has none. */
ck_entry *cc_ck_find(ck_file *ck, const char *name);
/* e's shape as "[16,3,3,3]" in buf. */
const char *cc_ck_entry_shape_str(const ck_entry *e, char *buf, size_t cap);
/* A metadata value, NULL when absent. */
const char *cc_ck_meta(const ck_file *ck, const char *key);
/* A metadata value that must be a decimal unsigned integer. found = 0 when absent. */
clcnn_status cc_ck_meta_u64(const ck_file *ck, const char *key, uint64_t *out, int *found);

/* lib/nn/checkpoint.c: the "optim.kind" metadata value of an optimizer kind. */
const char *cc_ck_optim_kind_name(clcnn_optim_kind k);

#endif
