/* The one place that calls CLBlast: row-major SGEMM wrappers that map CLBlast status
 * codes to clcnn statuses and take part in device profiling. */
#include "internal.h"

#include <clblast_c.h>

clcnn_status cc_blas_status(int code, const char *call) {
    if (code == CLBlastSuccess) return CLCNN_OK;
    clcnn_status s = CLCNN_ERR_BLAS;
    if (code == CLBlastOpenCLOutOfHostMemory || code == CLBlastOpenCLOutOfResources ||
        code == CLBlastTempBufferAllocFailure)
        s = CLCNN_ERR_OUT_OF_MEMORY;
    if (code == CLBlastOpenCLBuildProgramFailure) s = CLCNN_ERR_BUILD;
    return cc_fail(s, "%s failed with CLBlast status %d", call, code);
}

clcnn_status cc_sgemm(clcnn_device *dev, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                      size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc) {
    cc_tune_apply(dev); /* stored GEMM tuning, once per device (lib/tune) */
    cl_event *ev = cc_profile_slot(dev);
    int code = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                            trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a,
                            a_off, lda, b, b_off, ldb, beta, c, c_off, ldc, &dev->queue, ev);
    CC_TRY(cc_blas_status(code, "CLBlastSgemm"));
    if (ev) cc_profile_commit(dev, "CLBlastSgemm");
    return CLCNN_OK;
}

clcnn_status cc_sgemm_strided_batched(clcnn_device *dev, int trans_a, int trans_b, size_t m,
                                      size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                      size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                      size_t ldb, size_t b_stride, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
    if (batch == 1)
        return cc_sgemm(dev, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta,
                        c, c_off, ldc);
    cc_tune_apply(dev);
    cl_event *ev = cc_profile_slot(dev);
    int code = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda,
        a_stride, b, b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &dev->queue, ev);
    CC_TRY(cc_blas_status(code, "CLBlastSgemmStridedBatched"));
    if (ev) cc_profile_commit(dev, "CLBlastSgemm");
    return CLCNN_OK;
}
