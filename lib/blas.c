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

/* When profiling or tracing, a marker before a CLBlast call: CLBlast's own event covers
 * only the last of the kernels it enqueues, so the call is timed from this marker to one
 * enqueued after it. */
static cl_event span_start(clcnn_device *dev) {
    cl_event e = NULL;
    if (cc_profile_slot(dev) && clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &e) != CL_SUCCESS)
        e = NULL;
    return e;
}

static void span_end(clcnn_device *dev, cl_event first, int ok) {
    if (!first) return;
    cl_event last = NULL;
    if (!ok || clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &last) != CL_SUCCESS) {
        clReleaseEvent(first);
        return;
    }
    cc_profile_commit_span(dev, "CLBlastSgemm", first, last);
}

clcnn_status cc_sgemm(clcnn_device *dev, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                      size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc) {
    cc_tune_apply(dev); /* stored GEMM tuning, once per device (lib/tune) */
    cl_event first = span_start(dev);
    int code =
        CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                     trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                     lda, b, b_off, ldb, beta, c, c_off, ldc, &dev->queue, NULL);
    span_end(dev, first, code == CLBlastSuccess);
    return cc_blas_status(code, "CLBlastSgemm");
}

clcnn_status cc_sgemm_strided_batched(clcnn_device *dev, int trans_a, int trans_b, size_t m,
                                      size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                      size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                      size_t ldb, size_t b_stride, float beta, cl_mem c,
                                      size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
    /* CLBlast 1.5.3's strided-batched GEMM computes wrong results (with any kernel
     * parameters, default ones included) on its indirect path for a row-major B at a
     * non-zero offset, and for a transposed A shared by every batch item (a_stride 0)
     * from the second item on. Those cases, and batch 1, run as one GEMM per item. */
    if (batch == 1 || b_off != 0 || (trans_a && a_stride == 0)) {
        for (size_t i = 0; i < batch; i++)
            CC_TRY(cc_sgemm(dev, trans_a, trans_b, m, n, k, alpha, a, a_off + i * a_stride, lda, b,
                            b_off + i * b_stride, ldb, beta, c, c_off + i * c_stride, ldc));
        return CLCNN_OK;
    }
    cc_tune_apply(dev);
    cl_event first = span_start(dev);
    int code = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda, a_stride,
        b, b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &dev->queue, NULL);
    span_end(dev, first, code == CLBlastSuccess);
    return cc_blas_status(code, "CLBlastSgemmStridedBatched");
}
