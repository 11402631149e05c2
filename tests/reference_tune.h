/* Plain-C double-precision references for the tuning tests (tests/test_tune.c). */
#ifndef CLCNN_REFERENCE_TUNE_H
#define CLCNN_REFERENCE_TUNE_H

#include <stddef.h>

/* Row-major C (m,n) = op(A) op(B) in double, op(X) = X or X^T as CLBlast reads it:
 * A is (m,k) with leading dim lda, or (k,m) when trans_a; B is (k,n) with ldb, or (n,k)
 * when trans_b. mag (may be NULL) receives sum_p |a_ip * b_pj| per element, the scale of
 * the rounding error a float GEMM may make. */
void ref_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
               const float *b, size_t ldb, double *c, double *mag);

#endif
