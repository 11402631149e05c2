/* Ids both the host (lib/) and the kernels (cl/) use. Plain #defines only, so the file
 * is valid C and OpenCL C. Keep in step with clcnn_activation in include/clcnn/ops.h. */
#ifndef CLCNN_IDS_H
#define CLCNN_IDS_H

#define CLCNN_ACT_ID_NONE 0
#define CLCNN_ACT_ID_RELU 1
#define CLCNN_ACT_ID_LEAKY 2
#define CLCNN_ACT_ID_RELU6 3 /* min(max(x, 0), 6): batch norm fused in training plans only */
#define CLCNN_ACT_ID_SILU                                                                          \
    4 /* x Sigmoid(x): inference plans' implicit_gemm and depthwise                                \
       * convolutions only, compiled in (their ACT_SILU define) */

/* Batch norm's chunk kernels: the chunks each work-item of bn_part_sum, bn_part_sqdev and
 * bn_bwd_part owns (cl/batchnorm.cl), which the host's launch sizes follow
 * (lib/ops/batchnorm.c). */
#define CC_BN_CHUNKS_PER_ITEM 4

#define CLCNN_POOL_ID_MAX 0
#define CLCNN_POOL_ID_AVG 1
#define CLCNN_POOL_ID_AVG_EXCLUDE 2

/* copy_nd: what a coordinate outside the input reads (ONNX Pad modes; wrap is Tile) */
#define CLCNN_COPY_ID_CONSTANT 0 /* the pad value */
#define CLCNN_COPY_ID_EDGE 1     /* the nearest element */
#define CLCNN_COPY_ID_REFLECT 2  /* mirrored about the first/last element (numpy reflect) */
#define CLCNN_COPY_ID_WRAP 3     /* periodic */
/* Element-wise unary ops (cl/unary.cl), chosen at run time; alpha and beta as named. */
#define CLCNN_UN_ID_SIGMOID 0
#define CLCNN_UN_ID_TANH 1
#define CLCNN_UN_ID_HARDSIGMOID 2 /* clamp(alpha x + beta, 0, 1) */
#define CLCNN_UN_ID_HARDSWISH 3   /* x clamp(alpha x + beta, 0, 1) */
#define CLCNN_UN_ID_CLIP 4        /* min(max(x, alpha), beta) */
#define CLCNN_UN_ID_EXP 5
#define CLCNN_UN_ID_LOG 6
#define CLCNN_UN_ID_SQRT 7
#define CLCNN_UN_ID_NEG 8
#define CLCNN_UN_ID_ABS 9
#define CLCNN_UN_ID_RECIPROCAL 10
#define CLCNN_UN_ID_FLOOR 11
#define CLCNN_UN_ID_CEIL 12
#define CLCNN_UN_ID_SILU 13 /* x Sigmoid(x): a plan's Sigmoid and the Mul of it with its input */
#define CLCNN_UN_ID_COUNT 14

/* Element-wise binary ops with broadcasting (cl/binary.cl): y = op(a, b). */
#define CLCNN_BIN_ID_ADD 0
#define CLCNN_BIN_ID_SUB 1
#define CLCNN_BIN_ID_MUL 2
#define CLCNN_BIN_ID_DIV 3
#define CLCNN_BIN_ID_POW 4
#define CLCNN_BIN_ID_MAX 5
#define CLCNN_BIN_ID_MIN 6
#define CLCNN_BIN_ID_PRELU 7 /* a < 0 ? b a : a (b the slope) */
#define CLCNN_BIN_ID_COUNT 8
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
