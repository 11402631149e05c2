/* Shared support for the conv2d tests (test_conv2d.c, test_conv2d_algos.c,
 * test_conv2d_backward.c): shape constructors, descriptors, a random forward problem with
 * its double reference output, running it on the device, and offset tensor views.
 * Failures are cmocka assertions (these helpers are for tests only). */
#ifndef CLCNN_TESTS_REFERENCE_CONV_PROBLEM_H
#define CLCNN_TESTS_REFERENCE_CONV_PROBLEM_H

#include "test_util.h"

#include "reference_conv.h"

/* A shape with the same stride, padding and dilation in both directions. */
ref_conv rcp_conv(int n, int c, int h, int w, int k, int r, int s, int stride, int pad, int dil,
                  int groups);

/* The descriptor of cv with algorithm algo (other fields at their defaults). */
clcnn_conv2d_desc rcp_make_desc(const ref_conv *cv, clcnn_conv_algo algo);

/* Writes a one-line description of a forward case (algo, shapes, bias, act) to buf. */
void rcp_describe(const ref_conv *cv, clcnn_conv_algo algo, int bias, int act, char *buf,
                  size_t cap);

/* A malloc'd double copy of f[0..n). */
double *rcp_to_double(const float *f, size_t n);

/* One forward problem on the host: random x, w, b (uniform in [-1, 1]) and the
 * reference y. */
typedef struct rcp_problem {
    ref_conv cv;
    int bias, act;
    float *x, *w, *b;
    double *ref;
} rcp_problem;

void rcp_problem_init(rcp_problem *pb, const ref_conv *cv, int bias, int act, uint64_t seed);
void rcp_problem_free(rcp_problem *pb);

/* Runs the problem with algo on the device; returns y (malloc'd). y starts as NaN so an
 * element the kernel forgets to write fails the comparison. Also checks that
 * clcnn_conv2d_output_shape agrees with the reference output shape. */
float *rcp_run_forward(const rcp_problem *pb, clcnn_conv_algo algo);

/* A random valid shape from a seeded generator: batch 1 .. max_n, some grouped and
 * depthwise (with and without channel multiplier), odd sizes, strides, padding and
 * dilation. */
ref_conv rcp_random_conv(tu_rng *rng, int max_n);

/* A float tensor viewing elements off .. off+numel-1 of a NaN-filled buffer with 5 more
 * after the view (reading outside the view poisons the result), built through the
 * internal struct: the public API has no such view yet, but every kernel must honour
 * the offset. data (numel floats) is written into the view unless NULL. */
clcnn_tensor *rcp_offset_tensor(int ndim, const size_t *shape, size_t off, const float *data);

/* Runs pb's forward with algo (its bias and activation) on tensors at element offsets inside
 * NaN-filled buffers (rcp_offset_tensor: x at 3, w at 17, b at 1, y at 11); 1 when y
 * matches pb->ref within atol + rtol * |ref| and the elements around y stayed NaN (a
 * kernel that writes outside its view, or reads outside its inputs' views, fails it). */
int rcp_check_offsets(const rcp_problem *pb, clcnn_conv_algo algo, double atol, double rtol);

/* One NaN-filled buffer laid out as a plan's arena: x (shape xs) at element 3, a 7-element
 * guard, y (ys), with residual a 5-element guard and z (ys; y itself when inplace), 6 more
 * at the end. x and z (when residual) hold the given data. For prepared convolutions
 * that must read only their views and write only y. */
typedef struct rcp_arena {
    clcnn_tensor *base, *x, *y, *z; /* z NULL without a residual, == y in place */
    size_t nx, ny, x_off, y_off, z_off, total;
} rcp_arena;
void rcp_arena_init(rcp_arena *a, const size_t xs[4], const size_t ys[4], int residual, int inplace,
                    const float *x, const float *z);
void rcp_arena_free(rcp_arena *a);
/* 1 when every element outside x, y and z is still NaN; else prints what and returns 0. */
int rcp_arena_guards_ok(const rcp_arena *a, const char *what);

/* Forcing algo on one pass of cv (0 forward, 1 backward data, 2 backward filter) must fail
 * with CLCNN_ERR_UNSUPPORTED and a message containing needle and the algorithm's name, and
 * write nothing: y (forward), dx (backward data) or dw and db (backward filter) keep the 42
 * they were filled with. Failures are cmocka assertions. */
void rcp_expect_refused(clcnn_conv_algo algo, const ref_conv *cv, int pass, const char *needle);

#endif
