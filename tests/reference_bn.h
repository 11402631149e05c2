/* The error bounds of the library's training batch norm against the double reference
 * (reference_ops.c), shared by test_batchnorm and test_batchnorm_fused. */
#ifndef CLCNN_TESTS_REFERENCE_BN_H
#define CLCNN_TESTS_REFERENCE_BN_H

#include <stddef.h>

/* Error bounds, per channel, in multiples of U = 2u (u the unit roundoff):
 *  mean: group kernels, a compensated sum per work-item (2u) and a tree of log2(WG) <= 8
 *    levels (8u) of the per-item sums; chunk kernels, a compensated sum per vector lane
 *    (2u), a tree of the 16 lanes (4u) and a compensated sum of the chunk partials (2u):
 *    |mean err| <= 10 U mean|x| (generous: 20u).
 *  invstd: the deviations are taken from the rounded mean, which adds mean_err^2 to the
 *    variance; the sum of squares has the same 10 U; sqrt and the division add 2 U:
 *    relative error <= 16 U + (mean_err * invstd)^2.
 *  y = (x - mean) invstd gamma + beta: mean_err invstd |gamma| + |xhat gamma| (inv_rel +
 *    4 U) + 2 U |beta|.
 *  backward sums: 10 U of the sums of absolute terms, plus what the mean and invstd errors
 *    carry in (sum dy (x - mean) moves by mean_err |sum dy|).
 *  dx = gamma invstd (dy - sum_dy/m - xhat sum_dyxhat/m): the errors of each term above,
 *    plus 8 U of the magnitudes for the element-wise roundings.
 * Each bound is the max over channels; tu_close then applies it to every element. */
typedef struct bn_tol {
    double mean, inv_rel, y, rmean, rvar_rel, dbeta, dgamma, dx;
} bn_tol;

/* The bounds for x and dy (NULL: no backward), (n, c, hw), the affine parameters (NULL:
 * 1 and 0), the reference mean and invstd, and the running mean before the update. */
bn_tol ref_bn_tolerances(const double *x, const double *dy, size_t n, size_t c, size_t hw,
                         const double *gamma, const double *beta, const double *mean,
                         const double *invstd, double momentum, const double *rmean_old);

#endif
