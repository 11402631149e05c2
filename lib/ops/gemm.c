/* The public batched matrix product: shape and bounds checks in front of CLBlast's
 * row-major strided-batched SGEMM (lib/blas.c). */
#include "internal.h"

/* A rows x cols row-major matrix with leading dimension ld, batch of them stride apart,
 * must lie inside t from its offset. */
static clcnn_status check_operand(const clcnn_device *dev, const clcnn_tensor *t, const char *what,
                                  size_t rows, size_t cols, size_t ld, size_t stride,
                                  size_t batch) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, "clcnn_gemm_batched", what));
    CC_RETURN_IF(ld < cols || ld < 1, CLCNN_ERR_SHAPE,
                 "clcnn_gemm_batched: %s has %zu columns but leading dimension %zu", what, cols,
                 ld);
    if (rows == 0 || cols == 0) return CLCNN_OK;
    size_t last = (rows - 1) * ld + cols;
    CC_RETURN_IF(batch > 1 && stride > (SIZE_MAX - last) / (batch - 1), CLCNN_ERR_SHAPE,
                 "clcnn_gemm_batched: %s strides overflow", what);
    size_t extent = (batch - 1) * stride + last;
    CC_RETURN_IF(extent > t->numel, CLCNN_ERR_SHAPE,
                 "clcnn_gemm_batched: %s needs %zu elements (%zu x %zu, ld %zu, %zu matrices "
                 "%zu apart) but the tensor has %zu",
                 what, extent, rows, cols, ld, batch, stride, t->numel);
    return CLCNN_OK;
}

clcnn_status clcnn_gemm_batched(clcnn_device *dev, int ta, int tb, size_t m, size_t n, size_t k,
                                float alpha, const clcnn_tensor *a, size_t lda, size_t stride_a,
                                const clcnn_tensor *b, size_t ldb, size_t stride_b, float beta,
                                clcnn_tensor *c, size_t ldc, size_t stride_c, size_t batch) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "clcnn_gemm_batched: device is NULL");
    CC_RETURN_IF(batch < 1 || m < 1 || n < 1 || k < 1, CLCNN_ERR_SHAPE,
                 "clcnn_gemm_batched: m %zu, n %zu, k %zu and batch %zu must be >= 1", m, n, k,
                 batch);
    CC_TRY(check_operand(dev, a, "a", ta ? k : m, ta ? m : k, lda, stride_a, batch));
    CC_TRY(check_operand(dev, b, "b", tb ? n : k, tb ? k : n, ldb, stride_b, batch));
    CC_TRY(check_operand(dev, c, "c", m, n, ldc, stride_c, batch));
    return cc_sgemm_strided_batched(dev, ta, tb, m, n, k, alpha, a->storage->mem, a->offset, lda,
                                    stride_a, b->storage->mem, b->offset, ldb, stride_b, beta,
                                    c->storage->mem, c->offset, ldc, stride_c, batch);
}
