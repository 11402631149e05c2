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

/* reductions (cl/reduce.cl; cc_reduce_op in lib/internal.h) */
#define CC_REDUCE_ID_SUM 0
#define CC_REDUCE_ID_MEAN 1
#define CC_REDUCE_ID_MAX 2
#define CC_REDUCE_ID_MIN 3
#define CC_REDUCE_ID_PROD 4
#define CC_REDUCE_ID_SUM_SQUARE 5
#define CC_REDUCE_ID_L1 6
#define CC_REDUCE_ID_L2 7
#define CC_REDUCE_ID_LOG_SUM 8
#define CC_REDUCE_ID_LOG_SUM_EXP 9

#endif
