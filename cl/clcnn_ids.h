/* Ids both the host (lib/) and the kernels (cl/) use. Plain #defines only, so the file
 * is valid C and OpenCL C. Keep in step with clcnn_activation in include/clcnn/ops.h. */
#ifndef CLCNN_IDS_H
#define CLCNN_IDS_H

#define CLCNN_ACT_ID_NONE 0
#define CLCNN_ACT_ID_RELU 1
#define CLCNN_ACT_ID_LEAKY 2

#define CLCNN_POOL_ID_MAX 0
#define CLCNN_POOL_ID_AVG 1
#define CLCNN_POOL_ID_AVG_EXCLUDE 2

/* copy_nd: what a coordinate outside the input reads (ONNX Pad modes; wrap is Tile) */
#define CLCNN_COPY_ID_CONSTANT 0 /* the pad value */
#define CLCNN_COPY_ID_EDGE 1     /* the nearest element */
#define CLCNN_COPY_ID_REFLECT 2  /* mirrored about the first/last element (numpy reflect) */
#define CLCNN_COPY_ID_WRAP 3     /* periodic */

#endif
