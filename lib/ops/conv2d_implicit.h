/* The implicit GEMM's host side, shared by lib/ops/conv2d_implicit.c (parameters, plans,
 * the forward and the tuner's candidates) and lib/ops/conv2d_implicit_data.c (backward
 * data as stride-1 GEMMs): one GEMM's parameters, plan and prepared state, and the calls
 * that make and launch them. The kernels: cl/conv2d_implicit.cl. */
#ifndef CLCNN_OPS_CONV2D_IMPLICIT_H
#define CLCNN_OPS_CONV2D_IMPLICIT_H

#include "conv2d_impl.h"

/* Kernel parameters: TM, VW, LWS, KC (reduction rows per chunk at most), NT, TN. */
typedef struct implicit_cfg {
    int tm, vw, lws, kc_max, nt; /* nt 0: choose */
    int tn;                      /* tiles per register block */
} implicit_cfg;

/* The launch parameters of the GEMM kernel for the geometry cv (see the top comment). */
typedef struct gemm_plan {
    implicit_cfg cfg;
    int plane, mp, nt, cc, m_per, msplit;
    size_t items, wfloats, local_bytes;
    char defs[80];
} gemm_plan;

/* The forward of a layer with few input channels, prepared (lib/ops/conv2d_stem.c,
 * cl/conv2d_stem.cl): its geometry, bands of rb output rows, ldl floats per copied column
 * phase, its local memory, program and a copy of the weights (NULL: not prepared). */
typedef struct cc_stem {
    cc_conv cv;
    int rb, ldl;
    size_t local_bytes;
    char defs[64];
    clcnn_tensor *w;
} cc_stem;
/* The GEMM of the geometry cv, prepared: its plan, its kernels built and wt, the weights
 * transposed (flip: w holds the weights of the convolution that cv transposes, backward
 * data of the layer key, see implicit_weights; else key is cv); or, for the forward of a
 * layer with few input channels, stem (stem.w set: no GEMM plan, no wt). */
typedef struct implicit_fwd {
    cc_conv cv;
    gemm_plan pl;
    clcnn_tensor *wt; /* (groups, mp/TM, K, TM) */
    cc_stem stem;
} implicit_fwd;
/* lib/ops/conv2d_stem.c. Whether the forward of cv takes the few-channel kernel when no
 * parameter string says otherwise (the heuristic). */
int cc_stem_applies(const clcnn_device *dev, const cc_conv *cv);
/* Whether s is "stem" or "stem TM TN" and the kernel can run cv so (any device): then
 * *tm, *tn are its parameters (for "stem" 8 and 3, with 16 vector registers 8 and 1). */
int cc_stem_parse(const clcnn_device *dev, const cc_conv *cv, const char *s, int *tm, int *tn);
/* st prepared for the forward of cv with activation act (SiLU is compiled in) and TM x TN
 * blocks: program built, a copy of w kept (released with clcnn_tensor_free(st->w)). */
clcnn_status cc_stem_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w, int act,
                             int tm, int tn, cc_stem *st);
/* y = act(conv(x, w) + b + z) (ep as for cc_implicit_launch) with st. */
clcnn_status cc_stem_run(clcnn_device *dev, const cc_stem *st, const clcnn_tensor *x,
                         const cc_conv_epilogue *ep, clcnn_tensor *y);

/* The parameter string for pass of the layer `key` (its own geometry, also for the
 * GEMMs backward data runs): the tuner's, $CLCNN_CONV_IMPLICIT_CFG="TM VW LWS KC [NT [TN]]"
 * or the tuning file's (cc_conv_cfg); NULL: the heuristic. */
const char *cc_implicit_cfg_string(const clcnn_device *dev, int pass, const cc_conv *key,
                                   char tmp[CC_CONV_CFG_MAX]);

/* The plan of the GEMM geometry cv with the parameters of s when they are valid and fit
 * cv (*used 1), else with the heuristic (*used 0). */
clcnn_status cc_implicit_plan_gemm(const clcnn_device *dev, const cc_conv *cv, const char *s,
                                   gemm_plan *pl, int *used);

/* y (at element y_off) = act(conv(x (at x_off), wt) + b + z) for the geometry cv (ep NULL:
 * the convolution alone), with wt the transposed weights that plan pl asks for. */
clcnn_status cc_implicit_launch(clcnn_device *dev, const cc_conv *cv, const gemm_plan *pl, cl_mem x,
                                size_t x_off, cl_mem wt, size_t wt_off, const cc_conv_epilogue *ep,
                                cl_mem y, size_t y_off);

/* The depthwise layer a DWF launch computes its rows of B with (lib/ops/conv2d_dwpw.c):
 * weights (c, 1, r, s), bias (c) or NULL, activation. */
typedef struct cc_implicit_dw {
    const clcnn_tensor *w, *b;
    int act; /* a clcnn_activation */
    float alpha;
} cc_implicit_dw;

/* The plan of a fused depthwise + 1x1 launch (the DWF define, heuristic parameters): cv is
 * the depthwise layer's geometry (input, kernel, strides, pads, dilations; its output p x
 * q) with the 1x1 layer's k and groups. An error when the strips do not fit the device's
 * local memory. */
clcnn_status cc_implicit_plan_dwf(const clcnn_device *dev, const cc_conv *cv, gemm_plan *pl);

/* cc_implicit_launch with dwf: the DWF launch of plan pl (cc_implicit_plan_dwf) for the
 * geometry cv, the depthwise layer dwf; dwf NULL: cc_implicit_launch. */
clcnn_status cc_implicit_launch_dwf(clcnn_device *dev, const cc_conv *cv, const gemm_plan *pl,
                                    cl_mem x, size_t x_off, cl_mem wt, size_t wt_off,
                                    const cc_conv_epilogue *ep, const cc_implicit_dw *dwf, cl_mem y,
                                    size_t y_off);

/* f->wt (allocated for f->pl, whose GEMM program is built) filled with the transposed
 * weights w of the geometry cv (flip as for cc_implicit_prepare); on failure f->wt is
 * freed and NULL. */
clcnn_status cc_implicit_fill_wt(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                 int flip, implicit_fwd *f);

/* f prepared for the geometry cv (act: the forward's epilogue activation, see
 * cc_implicit_act_defs): planned with the parameters of its pass (flip: backward
 * data of the layer key, else the forward of cv itself), kernels built, f->wt the
 * transposed weights of w. On failure nothing is left to release. */
clcnn_status cc_implicit_prepare(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *w,
                                 int flip, const cc_conv *key, int act, implicit_fwd *f);

/* The act of cc_implicit_prepare and cc_implicit_act_defs for backward data whose
 * epilogue is a ReLU's gradient over a sum (cc_conv_epilogue's mask; the RGRAD define). */
#define CC_IMPLICIT_RELU_GRAD (-1)

/* pl's program with the epilogue activation act compiled in where the kernel needs that
 * (CLCNN_ACT_ID_SILU: ACT_SILU=1; CC_IMPLICIT_RELU_GRAD: RGRAD=1; the others stay run-time
 * arguments, no new program). */
void cc_implicit_act_defs(gemm_plan *pl, int act);

/* The geometry of the first GEMM backward data runs for the layer cv (strides up to
 * 32): the transposed convolution at stride 1, else its first phase convolution
 * (lib/ops/conv2d_implicit_data.c). */
cc_conv cc_implicit_data_gemm0(const cc_conv *cv);

#endif
