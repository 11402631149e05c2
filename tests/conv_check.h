/* Test support for the convolution algorithms' tests: test_conv2d_algos.c (forward) and
 * test_conv2d_algos_data.c (stride-1 data gradients, Winograd's GEMM path). Which
 * algorithm runs a shape, the checks against the double reference (tests/reference_conv.c),
 * random shapes per algorithm, tensors at offsets and bit-identical repeats. Failures are
 * cmocka assertions, or a 0 returned with the mismatch on stderr.
 *
 * Tolerances (inputs, weights and bias uniform in [-1, 1]; L = (c/groups)*r*s terms, for
 * data gradients (k/groups)*r*s):
 *  - implicit_gemm and depthwise sum the same products as the direct kernel in another
 *    order: |got - ref| <= 1e-6 * L + 1e-5 * |ref|, as in test_conv2d.c (float32
 *    rounding grows at most about linearly with L; a missing or misplaced term ~0.3
 *    fails it).
 *  - winograd F(4x4,3x3) / F(2x2,3x3) multiplies transformed values: the transforms
 *    scale inputs by up to 5 (B^T), weights by 1/24 .. 1 (G) and outputs by up to 8
 *    (A^T), so float32 rounding is amplified by a small constant over the direct sum:
 *    |got - ref| <= 4e-6 * L + 4e-5 * |ref| (four times the direct tolerance; every case
 *    also passes at twice the direct tolerance, while a transform coefficient off by 0.1%
 *    fails it), and normalised MSE <= 1e-7 on the anchors as for the others. */
#ifndef CLCNN_TESTS_CONV_CHECK_H
#define CLCNN_TESTS_CONV_CHECK_H

#include "reference_conv_problem.h"

/* Whether algo applies to the shape (mirrors the library's rule, stated independently). */
int cck_supports(clcnn_conv_algo algo, const ref_conv *cv);
/* The forward's tolerances for algo (above). */
double cck_atol(clcnn_conv_algo algo, const ref_conv *cv);
double cck_rtol(clcnn_conv_algo algo);
/* Runs algo's forward on the problem and compares (tag: added to the description; use_nmse:
 * also the normalised MSE); 1 on a match. */
int cck_check(const rcp_problem *pb, clcnn_conv_algo algo, const char *tag, int use_nmse);
/* Random shapes: anything (groups, dilation, stride, padding, rectangular kernels); 3x3
 * stride 1 dilation 1 with any padding and groups; depthwise (groups == c == k). */
ref_conv cck_random_any(tu_rng *rng);
ref_conv cck_random_winograd(tu_rng *rng);
ref_conv cck_random_depthwise(tu_rng *rng);
/* The forward of algo on the shape with tensors at element offsets, and run twice bit for
 * bit the same (assertions). */
void cck_offsets(clcnn_conv_algo algo, const ref_conv *shape);
void cck_determinism(clcnn_conv_algo algo, const ref_conv *shape);
/* A data-gradient problem: w and dy uniform in [-1, 1] from seed, the reference dx. */
typedef struct cck_dproblem {
    ref_conv cv;
    float *w, *dy;
    double *ref;
} cck_dproblem;
void cck_dproblem_init(cck_dproblem *pb, const ref_conv *shape, uint64_t seed);
void cck_dproblem_free(cck_dproblem *pb);
/* The data gradient of algo on the shape (w, dy from seed) against the reference; 1 on a
 * match. */
int cck_check_data(clcnn_conv_algo algo, const ref_conv *shape, uint64_t seed, int use_nmse);

#endif
