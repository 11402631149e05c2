/* See reference_tune.h. */
#include "reference_tune.h"

#include <math.h>

void ref_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
               const float *b, size_t ldb, double *c, double *mag) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double acc = 0, abs_acc = 0;
            for (size_t p = 0; p < k; p++) {
                double x = a[trans_a ? p * lda + i : i * lda + p];
                double y = b[trans_b ? j * ldb + p : p * ldb + j];
                acc += x * y;
                abs_acc += fabs(x * y);
            }
            c[i * n + j] = acc;
            if (mag) mag[i * n + j] = abs_acc;
        }
    }
}
