/* Test support for training plans on graphs (clcnn_train_plan_*): building small graphs
 * node by node, and the check of every parameter's and input's gradient against central
 * finite differences of a scalar loss L = sum(y * r) (r fixed random; L summed in double
 * on the host). Used by test_graph_backward (per op) and test_graph_backward_plans (DAGs,
 * fusion, models). */
#ifndef CLCNN_TESTS_GRAPH_FD_H
#define CLCNN_TESTS_GRAPH_FD_H

#include "test_util.h"

void gt_add_input(clcnn_graph *g, const char *name, int nd, int64_t d0, int64_t d1, int64_t d2,
                  int64_t d3);
/* A float initializer of random values in [lo, hi]. */
void gt_add_param(clcnn_graph *g, tu_rng *r, const char *name, int nd, int64_t d0, int64_t d1,
                  int64_t d2, int64_t d3, float lo, float hi);
/* A node with inputs given as one space-separated string ("x w b") and one output. */
void gt_node(clcnn_graph *g, const char *op, const char *name, const char *ins, const char *out,
             int na, const clcnn_attr *a);
clcnn_attr gt_ai(const char *n, int64_t v);
clcnn_attr gt_af(const char *n, float v);
clcnn_attr gt_ais(const char *n, const int64_t *v, int c);
clcnn_graph *gt_new_graph(void);

typedef struct gt_fd_case {
    clcnn_graph *g;
    int batch;
    float in_lo, in_hi; /* input values: uniform in +-[lo, hi] (away from ReLU's kink) */
    double h, atol, rtol;
    int max_checks;   /* elements checked per tensor (a seeded sample when larger) */
    float grad_scale; /* 1; the meta test scales the analytic gradients to see them caught */
    clcnn_conv_algo conv_algo; /* the plan's (clcnn_train_options): CLCNN_CONV_AUTO */
} gt_fd_case;

/* Gradients of every parameter and input of c->g against finite differences; 1 when all
 * are close. */
int gt_fd_check(const gt_fd_case *c);
gt_fd_case gt_fd_default(clcnn_graph *g, int batch);
/* Check graph g at batch with step h, then free it. */
void gt_expect_fd(clcnn_graph *g, int batch, double h);
/* Check graph g at batch 1 and 3 (12 elements per tensor, step 3e-4: activation kinks lie
 * within 1e-3 of some values), every convolution on algo (CLCNN_CONV_AUTO: the plan's
 * choice), then free it. */
void gt_expect_fd_fused(clcnn_graph *g, clcnn_conv_algo algo);
/* Two training steps (forward, backward, zero_grad) of plans p[0] and p[1] of one graph on
 * gt_random_batch(seed, h, w): p[1] is built with `extra` more graph outputs, whose
 * gradients are zero, so that it keeps nodes apart that p[0] fuses. The logits and every
 * parameter gradient must be the same bit for bit, and the gradients not all zero. */
void gt_expect_same_steps(clcnn_train_plan *const p[2], int extra, uint64_t seed, size_t h,
                          size_t w);

/* Flatten of in (features per sample), a Gemm to 3 logits (weights in +-w_range, a bias
 * in +-0.1 when bias) and the graph's output "logits". */
void gt_classifier(clcnn_graph *g, tu_rng *r, const char *in, int64_t features, float w_range,
                   int bias);
/* A batch of 3 random 3-channel h x w images (x) and the gradient of 3 logits per image
 * (dy), uniform in [-1, 1] from seed. */
void gt_random_batch(uint64_t seed, size_t h, size_t w, clcnn_tensor **xt, clcnn_tensor **dyt);

#endif
