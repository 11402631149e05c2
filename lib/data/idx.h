/* Internal to lib/data: the IDX file reader. */
#ifndef CLCNN_DATA_IDX_H
#define CLCNN_DATA_IDX_H

#include <stdint.h>

#include "internal.h"

/* Read an IDX u8 file of ndims (1 = labels, 3 = images) dimensions from path (plain or
 * gzip). On success dims[0..ndims) hold the dimensions and *data a malloc'd block of
 * their product in bytes. Errors name the file: CLCNN_ERR_IO, CLCNN_ERR_FORMAT. */
clcnn_status cc_idx_read_u8(const char *path, int ndims, uint32_t dims[3], uint8_t **data);

#endif
