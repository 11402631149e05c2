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

#endif
