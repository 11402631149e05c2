/* Internal to lib/data: the IDX file reader. */
#ifndef CLCNN_DATA_IDX_H
#define CLCNN_DATA_IDX_H

#include <stdint.h>

#include "internal.h"

/* Read an IDX u8 file of ndims (1 = labels, 3 = images) dimensions from path (plain or
 * gzip). On success dims[0..ndims) hold the dimensions the header gives and *data a
 * malloc'd block of the first min(dims[0], max_items) items (max_items 0: all of them);
 * *items says how many that is. With fewer items than the file holds, the rest of the
 * file is not read, so damage past them may go unnoticed. Errors name the file:
 * CLCNN_ERR_IO, CLCNN_ERR_FORMAT. */
clcnn_status cc_idx_read_u8(const char *path, int ndims, uint64_t max_items, uint32_t dims[3],
                            uint32_t *items, uint8_t **data);

#endif
