/* Internals of plans (lib/exec): the value table, the steps a run launches, and the
 * per-op-kind preparation and forward functions (lib/exec/steps.c) indexed like the
 * graph's op table. Never installed. */
#ifndef CLCNN_EXEC_INTERNAL_H
#define CLCNN_EXEC_INTERNAL_H

#include "graph/graph_internal.h"

#define CC_STEP_MAX_IN 64

/* One value of the graph as the plan sees it. */
typedef enum cc_pval_kind {
    CC_PV_UNUSED = 0, /* initializers (steps hold their own device copies) and dead values */
    CC_PV_INPUT,      /* a graph input: the caller's tensor, per run */
    CC_PV_ACT,        /* an activation in the arena */
    CC_PV_ALIAS,      /* a view of another value's storage with its own shape */
} cc_pval_kind;

/* A value has up to CC_GMAX logical dims; its device tensor has at most 4 (the leading
 * dims of a wider value collapsed into one). Only views and the strided copies of
 * Transpose, Slice, Pad, Expand and Tile touch values wider than 4 dims (plan.c checks
 * it; the copy merges dims to reach 4 or refuses). */
typedef struct cc_pvalue {
    cc_pval_kind kind;
    int ndim;
    size_t shape[CC_GMAX];
    size_t numel;
    int alias_of;    /* CC_PV_ALIAS: the value whose storage it views (never an alias) */
    int input_index; /* CC_PV_INPUT: position among the graph inputs */
    int def_step;    /* step that writes it (-1: before the first) */
    int last_step;   /* last step that reads it (through aliases too) */
    size_t offset;   /* CC_PV_ACT: element offset in the arena */
    clcnn_tensor *t; /* CC_PV_ACT / ALIAS of an ACT: a view; inputs: set per run */
} cc_pvalue;

/* One strided copy of a data-movement step: from s->in[in] into s->out. */
typedef struct cc_step_copy {
    cc_copy_nd d;
    int in;
} cc_step_copy;

typedef struct cc_step {
    cc_op op; /* the kind of the leading node */
    int node; /* graph node index of the leading node */
    int n_in;
    int in[CC_STEP_MAX_IN]; /* value indices read (activations or inputs) */
    int out;                /* value index written */
    /* epilogue of a convolution (or an unfused Add) */
    clcnn_activation act;
    float alpha;
    int residual; /* Conv: in[1] is added before the activation */
    /* state prepared once */
    cc_conv_fwd *conv;
    clcnn_conv2d_desc conv_desc; /* Conv with weights computed per run (in[1], in[2]) */
    int dynamic;                 /* parameters are read from in[] each run */
    /* Gemm through CLBlast: Y = gemm_alpha op(A) op(B) + gemm_beta Y, after Y = C (param[1])
     * or Y = c_scale C (C a value, in[2], broadcast into Y by xcopy) when there is a C */
    int trans_a, trans_b, c_per_run;
    float gemm_alpha, gemm_beta, c_scale;
    clcnn_pool2d_desc pool;
    clcnn_tensor *param[4]; /* Gemm: w (out, in), b; BatchNormalization: scale, B, mean, var */
    float eps;
    int log;     /* LogSoftmax */
    int part;    /* which output of the node the step writes (Split: one step per output) */
    int ncopies; /* data movement: strided copies into out, run in order */
    cc_step_copy *copies;
    char desc[160];
    /* element-wise family (lib/exec/steps_eltwise.c) */
    int ew_op;                  /* CLCNN_UN_ID_* or CLCNN_BIN_ID_* (cl/clcnn_ids.h) */
    float ew_beta;              /* the unary op's second parameter (the first is alpha) */
    int ew_n;                   /* binary: operands, in node order */
    int ew_src[CC_STEP_MAX_IN]; /* operand i: a value index, or -1 - k for param[k] */
    int inplace;                /* out may take the bytes of in[0] when in[0] is last read here */
    /* lib/exec/steps_reduce.c: MatMul as gemm_batched calls (outer of them, offsets
     * mm_oa/mm_ob/mm_oc apart, each over batch items mm_sa/mm_sb/mm_sc apart), reductions,
     * LRN, softmax over (outer, c, inner) */
    size_t mm_m, mm_n, mm_k, mm_batch, mm_outer;
    size_t mm_sa, mm_sb, mm_sc, mm_oa, mm_ob, mm_oc;
    unsigned red_mask;
    int red_op; /* cc_reduce_op */
    int lrn_size;
    float lrn_alpha, lrn_beta, lrn_bias;
    size_t sm_outer, sm_c, sm_inner;
    int pool_pads[4]; /* pooling with per-side pads, ceil mode or dilations (pool_general) */
    int pool_dil[2];
    int pool_general;
    /* Conv with per-side pads: x copied into scratch with the pads (xcopy), then the
     * convolution without padding. ConvTranspose (lib/exec/steps_convt.c): the data
     * gradient into scratch (the full transposed convolution), cropped or extended into out
     * by xcopy; straight into out when convt_direct. Gemm with C per run: xcopy broadcasts
     * C into Y. */
    clcnn_tensor *scratch;
    cc_copy_nd xcopy;
    int convt_direct;
    /* lib/exec/steps_resize.c: x (outer, h, w) -> y (outer, p, q); param[0] the table */
    size_t rs_outer, rs_h, rs_w, rs_p, rs_q;
} cc_step;

/* The convolution passes a plan runs (clcnn_plan_conv_at). */
typedef struct cc_conv_list {
    int n, cap;
    clcnn_plan_conv *e;
} cc_conv_list;

struct clcnn_plan {
    clcnn_device *dev;
    int batch;
    clcnn_plan_options opts;
    int nvals;
    cc_pvalue *vals;
    int nsteps, capsteps;
    cc_step *steps;
    clcnn_tensor *arena; /* every activation, as views at offsets */
    int ninputs, noutputs;
    int *inputs;  /* value index per graph input */
    int *outputs; /* value index per graph output */
    clcnn_plan_memory mem;
    int conv_measured; /* convolution shapes Find measured at creation */
    cc_conv_list convs;
};

/* lib/exec/plan.c: how many node inputs read value v, a graph output counting 2 (never
 * fused away); *only receives the (last) reading node. */
int cc_value_readers(const clcnn_graph *g, int v, int *only);
/* The checks both plan kinds make first: device and graph given, batch 1..2^24, the graph
 * checked (clcnn_graph_check). */
/* Find for one convolution pass when request (a plan's find option) and $CLCNN_TUNE ask
 * for it (clcnn_conv2d_find); adds 1 to *measured when it measured. Errors name node. */
/* Record the pass in list (out of memory: CLCNN_ERR_OUT_OF_MEMORY), then Find for it when
 * request (a plan's find option) and $CLCNN_TUNE ask for it (clcnn_conv2d_find); adds 1 to
 * *measured when it measured. Errors name the node. */
clcnn_status cc_plan_find(clcnn_device *dev, int request, cc_conv_list *list, clcnn_conv_pass pass,
                          const clcnn_conv2d_desc *d, const size_t x[4], const size_t w[4],
                          const char *node, int *measured);
clcnn_status cc_plan_check_args(const clcnn_device *dev, clcnn_graph *g, int batch, const char *op);
/* gv's shape (gv->ndim dims) with the batch filled in, and its element count;
 * CLCNN_ERR_SHAPE (naming op and the value) past 2^40 elements. */
clcnn_status cc_value_dims(const cc_gvalue *gv, int batch, const char *op, size_t *shape,
                           size_t *numel);

/* lib/exec/steps.c: prepare step s (parameters uploaded, folded, transformed; algorithm
 * chosen) from graph g, and run it. absorbed lists the nodes fused into it, in order. */
clcnn_status cc_step_prepare(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                             int nabsorbed);
clcnn_status cc_step_run(clcnn_plan *p, cc_step *s);
void cc_step_release(cc_step *s);
/* lib/exec/steps_movement.c: Transpose, Slice, Pad, Expand, Tile, Concat, Split, Gather
 * as strided copies (Reshape, Squeeze, Unsqueeze, Flatten are views made by plan.c). */
clcnn_status cc_prepare_movement(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                 const int *absorbed, int na);
clcnn_status cc_run_movement(clcnn_plan *p, cc_step *s);
/* lib/exec/steps.c, shared with the op families in other files: CLCNN_ERR_UNSUPPORTED
 * naming the node and why; a device tensor holding host floats. */
clcnn_status cc_step_unsupported(const cc_gnode *n, const char *why);
/* The convolution descriptor of a Conv node's attributes (symmetric pads: top, left), and
 * the pooling descriptor of a MaxPool / AveragePool node's (not global). */
clcnn_conv2d_desc cc_step_conv_desc(const cc_op_attrs *a);

/* Grouping (lib/exec/plan_fuse.c): leader[i] = the node whose step absorbs node i (itself
 * when not fused); anchor[leader] = the last node of its group in topological order, where
 * its step runs. cc_plan_fuse fills both arrays (g->nnodes each) for g under p's options
 * (p's value shapes set); cc_plan_is_act: a ReLU or LeakyRelu node. */
typedef struct group_info {
    int *leader, *anchor;
} group_info;
void cc_plan_fuse(const clcnn_plan *p, const clcnn_graph *g, group_info *gi);
int cc_plan_is_act(const cc_gnode *n);
void cc_step_pool_desc(const cc_gnode *n, clcnn_pool2d_desc *d);
clcnn_status cc_step_upload(clcnn_device *dev, int ndim, const size_t *shape, const float *data,
                            clcnn_tensor **out);
/* A copy of the (n, c, h, w) box from a dense src tensor whose box origin is at row top,
 * column left of src (negative: before it); outside src it writes 0. */
void cc_step_window(cc_copy_nd *c, const size_t box[4], const size_t src[4], int64_t top,
                    int64_t left);
/* lib/exec/steps_eltwise.c: the element-wise family (unary ops, binary ops with
 * broadcasting and initializer operands, variadic Max/Min/Sum). */
clcnn_status cc_prepare_unary(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                              int na);
clcnn_status cc_run_unary(clcnn_plan *p, cc_step *s);
clcnn_status cc_prepare_binary(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na);
clcnn_status cc_run_binary(clcnn_plan *p, cc_step *s);
/* lib/exec/steps_reduce.c: the steps of MatMul, the Reduce* family, LRN
 * and Softmax / LogSoftmax over any axis (prepare and run, as in steps.c). */
clcnn_status cc_prepare_matmul(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na);
clcnn_status cc_run_matmul(clcnn_plan *p, cc_step *s);
clcnn_status cc_prepare_reduce(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na);
clcnn_status cc_run_reduce(clcnn_plan *p, cc_step *s);
clcnn_status cc_prepare_lrn(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                            int na);
clcnn_status cc_run_lrn(clcnn_plan *p, cc_step *s);
clcnn_status cc_prepare_softmax(clcnn_plan *p, const clcnn_graph *g, cc_step *s,
                                const int *absorbed, int na);
clcnn_status cc_run_softmax(clcnn_plan *p, cc_step *s);

/* lib/exec/steps_convt.c: ConvTranspose as the data gradient of a convolution. */
clcnn_status cc_prepare_convt(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                              int na);
clcnn_status cc_run_convt(clcnn_plan *p, cc_step *s);
/* lib/exec/steps_resize.c: Resize and Upsample over the last two dims. */
clcnn_status cc_prepare_resize(clcnn_plan *p, const clcnn_graph *g, cc_step *s, const int *absorbed,
                               int na);
clcnn_status cc_run_resize(clcnn_plan *p, cc_step *s);

/* The tensor of value v in the current run. */
static inline const clcnn_tensor *cc_plan_tensor(const clcnn_plan *p, int v) {
    return p->vals[v].t;
}

#endif
