/* conv2d: descriptor and shape checks, output shape, algorithm choice and dispatch (the
 * forwards through the table of cc_conv2d_fwd_impl, prepared per call here and once in
 * lib/ops/conv2d_prepared.c), plus the bias kernels shared by the algorithms
 * (cl/conv2d_bias.cl).
 *
 * Shape key: x (n, c, h, w); w (k, c/groups, r, s); y (n, k, p, q) with
 *   p = (h + 2 pad_h - dilation_h (r-1) - 1) / stride_h + 1   (q likewise).
 *
 * Algorithms: direct (lib/ops/conv2d_direct.c) and gemm (lib/ops/conv2d_gemm.c) handle
 * every shape and pass; implicit_gemm (lib/ops/conv2d_implicit.c) every forward shape and
 * the data gradient for strides up to 32; winograd (lib/ops/conv2d_winograd.c) forward
 * and data gradient of 3x3 stride-1 dilation-1 layers; depthwise
 * (lib/ops/conv2d_depthwise.c) all three passes of groups == c == k. The filter
 * gradient: direct, gemm and implicit_gemm (its own kernel, lib/ops/conv2d_wgrad.c),
 * each for every shape. Forcing one where it does not apply is CLCNN_ERR_UNSUPPORTED
 * with the reason (algo_supports).
 *
 * AUTO: the winner stored for this device, pass and geometry in the tuning file
 * (lib/tune/conv_db.c, filled by `clcnn tune --suite` / clcnn_conv2d_tune) when
 * $CLCNN_TUNE is not off and that algorithm still supports the shape; otherwise the
 * measured heuristic in pick_algo().
 *
 * Every entry point checks everything (descriptor, dtypes, devices, shapes, aliasing,
 * algorithm) before it enqueues anything, so a failing call leaves its outputs as they
 * were. */
#include "conv2d_impl.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

clcnn_conv2d_desc clcnn_conv2d_desc_default(void) {
    clcnn_conv2d_desc d = {1, 1, 0, 0, 1, 1, 1, CLCNN_CONV_AUTO};
    return d;
}

size_t cc_conv_workspace_limit(void) {
    const char *e = getenv("CLCNN_CONV_WORKSPACE_MB");
    if (e && *e) {
        char *end = NULL;
        double mb = strtod(e, &end);
        /* at most 2^31 bytes: workspace element indices stay far below 2^31 */
        if (end != e && mb > 0) return mb >= 2048.0 ? (size_t)INT_MAX : (size_t)(mb * 1048576.0);
    }
    return (size_t)256 << 20;
}

/* ---- checks -------------------------------------------------------------------------- */

static clcnn_status check_desc(const char *op, const clcnn_conv2d_desc *d) {
    CC_RETURN_IF(!d, CLCNN_ERR_INVALID_ARG, "%s: descriptor is NULL", op);
    CC_RETURN_IF(d->stride_h < 1 || d->stride_w < 1, CLCNN_ERR_INVALID_ARG,
                 "%s: stride %dx%d must be at least 1x1", op, d->stride_h, d->stride_w);
    CC_RETURN_IF(d->dilation_h < 1 || d->dilation_w < 1, CLCNN_ERR_INVALID_ARG,
                 "%s: dilation %dx%d must be at least 1x1", op, d->dilation_h, d->dilation_w);
    CC_RETURN_IF(d->pad_h < 0 || d->pad_w < 0, CLCNN_ERR_INVALID_ARG,
                 "%s: padding %dx%d must not be negative", op, d->pad_h, d->pad_w);
    CC_RETURN_IF(d->groups < 1, CLCNN_ERR_INVALID_ARG, "%s: groups %d must be at least 1", op,
                 d->groups);
    CC_RETURN_IF((int)d->algo < 0 || d->algo >= CLCNN_CONV_ALGO_COUNT, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown algorithm %d", op, (int)d->algo);
    return CLCNN_OK;
}

/* See conv2d_impl.h. */
clcnn_status cc_conv2d_geometry(const char *op, const clcnn_conv2d_desc *d, const size_t x[4],
                                const size_t w[4], size_t y[4], cc_conv *cv) {
    CC_TRY(check_desc(op, d));
    CC_RETURN_IF(!x || !w || !y, CLCNN_ERR_INVALID_ARG, "%s: shape pointer is NULL", op);
    for (int i = 0; i < 4; i++) {
        CC_RETURN_IF(x[i] == 0 || w[i] == 0, CLCNN_ERR_SHAPE,
                     "%s: input " SHAPE4 " and weights " SHAPE4 " must not have zero dims", op,
                     DIMS4(x), DIMS4(w));
        CC_RETURN_IF(x[i] > INT_MAX || w[i] > INT_MAX, CLCNN_ERR_SHAPE,
                     "%s: input " SHAPE4 " or weights " SHAPE4 " too large", op, DIMS4(x),
                     DIMS4(w));
    }
    size_t g = (size_t)d->groups;
    CC_RETURN_IF(x[1] % g != 0, CLCNN_ERR_SHAPE,
                 "%s: groups %d does not divide the %zu channels of input " SHAPE4, op, d->groups,
                 x[1], DIMS4(x));
    CC_RETURN_IF(w[0] % g != 0, CLCNN_ERR_SHAPE,
                 "%s: groups %d does not divide the %zu output channels of weights " SHAPE4, op,
                 d->groups, w[0], DIMS4(w));
    CC_RETURN_IF(w[1] * g != x[1], CLCNN_ERR_SHAPE,
                 "%s: input " SHAPE4 " has %zu channels but weights " SHAPE4
                 " expect %zu (groups %d)",
                 op, DIMS4(x), x[1], DIMS4(w), w[1] * g, d->groups);
    /* int64 arithmetic: every operand is at most INT_MAX. */
    int64_t eh = (int64_t)d->dilation_h * ((int64_t)w[2] - 1) + 1;
    int64_t ew = (int64_t)d->dilation_w * ((int64_t)w[3] - 1) + 1;
    int64_t hp = (int64_t)x[2] + 2 * (int64_t)d->pad_h, wp = (int64_t)x[3] + 2 * (int64_t)d->pad_w;
    CC_RETURN_IF(hp < eh || wp < ew, CLCNN_ERR_SHAPE,
                 "%s: weights " SHAPE4
                 " with dilation %dx%d span %lldx%lld, more than input " SHAPE4
                 " padded by %dx%d: the output would be empty",
                 op, DIMS4(w), d->dilation_h, d->dilation_w, (long long)eh, (long long)ew, DIMS4(x),
                 d->pad_h, d->pad_w);
    CC_RETURN_IF(hp > INT_MAX / 2 || wp > INT_MAX / 2 || eh > INT_MAX / 2 || ew > INT_MAX / 2,
                 CLCNN_ERR_SHAPE, "%s: input " SHAPE4 " with padding %dx%d is too large", op,
                 DIMS4(x), d->pad_h, d->pad_w);
    y[0] = x[0];
    y[1] = w[0];
    y[2] = (size_t)((hp - eh) / d->stride_h + 1);
    y[3] = (size_t)((wp - ew) / d->stride_w + 1);
    /* Kernels index with int: every tensor (and y) must have < 2^31 elements. */
    size_t nx = x[0] * x[1], nw = w[0] * w[1], ny = y[0] * y[1];
    int big = nx > INT_MAX / x[2] || (nx *= x[2]) > INT_MAX / x[3] || nw > INT_MAX / w[2] ||
              (nw *= w[2]) > INT_MAX / w[3] || ny > INT_MAX / y[2] || (ny *= y[2]) > INT_MAX / y[3];
    CC_RETURN_IF(big, CLCNN_ERR_UNSUPPORTED,
                 "%s: input " SHAPE4 ", weights " SHAPE4 " or output " SHAPE4
                 " has 2^31 elements or more",
                 op, DIMS4(x), DIMS4(w), DIMS4(y));
    if (cv) {
        *cv = (cc_conv){
            .n = (int)x[0],
            .c = (int)x[1],
            .h = (int)x[2],
            .w = (int)x[3],
            .k = (int)w[0],
            .r = (int)w[2],
            .s = (int)w[3],
            .p = (int)y[2],
            .q = (int)y[3],
            .sh = d->stride_h,
            .sw = d->stride_w,
            .ph = d->pad_h,
            .pw = d->pad_w,
            .dh = d->dilation_h,
            .dw = d->dilation_w,
            .groups = d->groups,
            .cpg = (int)x[1] / d->groups,
            .kpg = (int)w[0] / d->groups,
        };
    }
    return CLCNN_OK;
}

clcnn_status clcnn_conv2d_output_shape(const clcnn_conv2d_desc *d, const size_t x[4],
                                       const size_t w[4], size_t y[4]) {
    size_t out[4];
    CC_RETURN_IF(!y, CLCNN_ERR_INVALID_ARG, "conv2d: output shape pointer is NULL");
    CC_TRY(cc_conv2d_geometry("conv2d", d, x, w, out, NULL));
    memcpy(y, out, sizeof out);
    return CLCNN_OK;
}

/* See conv2d_impl.h. */
clcnn_status cc_conv2d_check_4d(const clcnn_device *dev, const char *op, const char *what,
                                const clcnn_tensor *t) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, what));
    char buf[64];
    CC_RETURN_IF(t->ndim != 4, CLCNN_ERR_SHAPE, "%s: %s %s must have 4 dims (NCHW), not %d", op,
                 what, clcnn_tensor_shape_str(t, buf, sizeof buf), t->ndim);
    CC_RETURN_IF(t->offset > (size_t)INT_MAX - t->numel, CLCNN_ERR_UNSUPPORTED,
                 "%s: %s %s ends past element 2^31 of its buffer", op, what,
                 clcnn_tensor_shape_str(t, buf, sizeof buf));
    return CLCNN_OK;
}

/* See conv2d_impl.h. */
clcnn_status cc_conv2d_check_shape(const char *op, const char *what, const clcnn_tensor *t,
                                   const size_t want[4], const char *a_what, const clcnn_tensor *a,
                                   const char *b_what, const clcnn_tensor *b) {
    if (memcmp(t->shape, want, 4 * sizeof(size_t)) == 0) return CLCNN_OK;
    return cc_fail(CLCNN_ERR_SHAPE,
                   "%s: %s is " SHAPE4 ", expected " SHAPE4 " from %s " SHAPE4 " and %s " SHAPE4,
                   op, what, DIMS4(t->shape), DIMS4(want), a_what, DIMS4(a->shape), b_what,
                   DIMS4(b->shape));
}

/* A bias-like vector of k elements (any dims, e.g. (k) or (1,k,1,1)). */
clcnn_status cc_conv2d_check_vec(const clcnn_device *dev, const char *op, const char *what,
                                 const clcnn_tensor *t, size_t k) {
    CC_TRY(cc_check_tensor(dev, t, CLCNN_F32, op, what));
    char buf[64];
    CC_RETURN_IF(t->numel != k, CLCNN_ERR_SHAPE, "%s: %s %s has %zu elements, expected %zu", op,
                 what, clcnn_tensor_shape_str(t, buf, sizeof buf), t->numel, k);
    CC_RETURN_IF(t->offset > (size_t)INT_MAX - t->numel, CLCNN_ERR_UNSUPPORTED,
                 "%s: %s ends past element 2^31 of its buffer", op, what);
    return CLCNN_OK;
}

/* Outputs must not overlap inputs (the kernels read inputs while writing); views of one
 * buffer at disjoint offsets are fine. */
static clcnn_status check_no_alias(const char *op, const clcnn_tensor *out, const char *out_what,
                                   const clcnn_tensor *in, const char *in_what) {
    CC_RETURN_IF(cc_tensors_overlap(out, in), CLCNN_ERR_INVALID_ARG,
                 "%s: %s must not share memory with %s", op, out_what, in_what);
    return CLCNN_OK;
}

/* See conv2d_impl.h. */
int cc_cpu_f16_accumulators(const clcnn_device *dev, int live) {
    int width = (int)dev->native_float_width;
    if (dev->info.type == CLCNN_DEVICE_GPU || width <= 0 || width >= 16) return 0;
    int per = 16 / width, acc = (16 - 1 - live * per) / per;
    return acc < 1 ? 1 : acc;
}

/* ---- algorithm choice ------------------------------------------------------------------ */

typedef enum pass { PASS_FORWARD, PASS_DATA, PASS_FILTER } pass;
static const char *const pass_names[] = {"forward", "backward data", "backward filter"};

/* Bytes of one group's weights (forward: kpg x cpg*r*s) and of its Winograd transform. */
static size_t group_weight_bytes(const cc_conv *cv) {
    return (size_t)cv->kpg * cv->cpg * cv->r * cv->s * sizeof(float);
}

/* The CPU rule for one forward-shaped geometry (a stride-1 data gradient passes its
 * transposed geometry: dy as input, kpg and cpg swapped), see pick_algo. narrow: a CPU
 * with 16 vector registers (AVX2, cc_cpu_f16_accumulators), where the space-to-depth
 * Winograd path is taken. */
static clcnn_conv_algo pick_cpu_forward(const cc_conv *cv, int narrow) {
    size_t wbytes = group_weight_bytes(cv);
    if (cc_conv2d_depthwise_supports(cv)) return CLCNN_CONV_DEPTHWISE;
    /* 32 vector registers (AVX-512): fewer than 128 input channels per group on planes
     * larger than 56x56 go to implicit_gemm (below) */
    int wide_few = !narrow && cv->cpg < 128 && (size_t)cv->p * cv->q > 56 * 56;
    if (cc_conv2d_winograd_supports(cv) && cv->cpg >= 8 && cv->kpg >= 16 && cv->p >= 14 &&
        cv->q >= 14 && !wide_few)
        return CLCNN_CONV_WINOGRAD;
    if (cc_conv2d_winograd_supports(cv) && cc_conv2d_winograd_cpu_gemm(cv) && cv->p >= 7 &&
        cv->q >= 7)
        return CLCNN_CONV_WINOGRAD;
    int S = cc_conv2d_winograd_s2d(cv);
    if (narrow && S && cv->kpg >= 64 && cv->p >= 14 && cv->q >= 14 &&
        9 * S * S * 4 <= 5 * cv->r * cv->s)
        return CLCNN_CONV_WINOGRAD;
    if (cv->kpg >= 16 && (cv->sh > 1 || cv->sw > 1) && wbytes <= ((size_t)16 << 20))
        return CLCNN_CONV_IMPLICIT_GEMM;
    if (cv->kpg >= 16 && cv->cpg * cv->r * cv->s >= 16 && wbytes <= ((size_t)16 << 20))
        return CLCNN_CONV_IMPLICIT_GEMM;
    return CLCNN_CONV_DIRECT;
}

/* The CPU rule for the data gradient of a strided layer (see pick_algo). */
static clcnn_conv_algo pick_cpu_strided_data(const cc_conv *cv) {
    if (cc_conv2d_depthwise_supports(cv) || !cc_conv2d_implicit_supports_data(cv))
        return CLCNN_CONV_DIRECT;
    int m, k;
    size_t wbytes;
    cc_conv2d_implicit_data_gemms(cv, &m, &k, &wbytes);
    if (m >= 8 && k >= 32 && wbytes <= ((size_t)8 << 20)) return CLCNN_CONV_IMPLICIT_GEMM;
    if (cv->kpg >= 8 && cv->cpg >= 8) return CLCNN_CONV_GEMM;
    return CLCNN_CONV_DIRECT;
}

/* The AUTO heuristic, used when the tuning file has no winner for the shape.
 *
 * CPU devices (POCL 3.1; each shape timed with every algorithm in turn, GFLOPS per
 * CPU-second x 2 or CPU ms, which stay comparable on a loaded machine; first measured on a
 * 2-core AVX-512 Xeon in 2026-11, refined on a 2-core AVX2 EPYC in 2026-12, and checked
 * again on both with perf/rule_check.sh, whose results are under perf/results/):
 *   forward
 *   - depthwise (groups == c == k): depthwise, 1.3-5x direct on MobileNet-V2's layers
 *     (stride 2: 5x);
 *   - 3x3, stride 1, dilation 1, cpg >= 8, kpg >= 16, p and q >= 14: winograd (F(4x4)):
 *     VGG 56x56 c64 320 vs direct 97 vs implicit 127; 56x56 c128->256 309 vs 148 vs 189;
 *     28x28 c256->512 168 vs 145; 14x14 c512 82.8 vs implicit 149 vs direct 264 (AVX2);
 *     except on AVX-512 CPUs for fewer than 128 input channels per group on planes larger
 *     than 56x56, where implicit_gemm was faster (VGG conv1_2 and conv2_1 at batch 1, 2
 *     and 8; 56x56 planes and 128 channels stayed faster on winograd: the commit that set
 *     this has the numbers);
 *     also on 7x7 to 13x13 planes when it takes the GEMM path (128 channels and more per
 *     group, cc_conv2d_winograd_cpu_gemm; there the fused kernel was slower than
 *     implicit_gemm, the GEMM path about twice as fast); below that its tiles are mostly
 *     padding (7x7 fused: 31 vs 87);
 *   - strided layers that space-to-depth makes 3x3 stride-1 ones (cc_conv2d_winograd_s2d)
 *     with kpg >= 64, outputs of at least 14x14 and at most a quarter more taps after
 *     the rearrangement ((3S)^2 <= 1.25 r*s), on CPUs with 16 vector registers (AVX2):
 *     winograd: faster on AlexNet conv1 (batch 32 and 1), slower on 5x5 stride 2 (36 taps
 *     for 25) and on small layers; the numbers are in the commit that set this rule. On
 *     AVX-512 implicit_gemm was faster on AlexNet conv1 at batch 1 to 32 (the commit that
 *     made it so);
 *   - kpg >= 16 and a stride above 1, one group's weights at most 16 MB: implicit_gemm,
 *     faster than direct on every strided layer of ResNet-50 (3x3 and 1x1, up to 9.4 MB
 *     of weights; the numbers are in the commit that set this rule); AlexNet conv1 168
 *     vs 42; strided 3x3 stem with 3 channels 98 vs 30. Larger weights: not measured;
 *   - kpg >= 16, a reduction cpg*r*s of at least 16 and at most 16 MB of weights per
 *     group: implicit_gemm: ResNet-50 l4 1x1 c1024->512 25.6 vs direct 97.5, c512->2048
 *     18.0 vs 26.4, c2048->512 16.0 vs 44.6, 7x7 3x3 c512 55.0 vs 66.8; MobileNet-V2 1x1
 *     c24->144 3.2 vs 6.6, c960->320 4.4 vs 6.9, c320->1280 5.7 vs 9.5 (AVX2, CPU ms).
 *     Reductions of 16 (AVX2: c16->96 at 112x112 9.1 vs 15.1, VGG conv1_1's rows of 27
 *     36 vs 48). On AVX-512 the shortest was 24 until implicit_gemm gave a work-item runs
 *     of up to 48 tiles, after which it beat direct on MobileNet-V2's reductions of 16,
 *     forward and data gradient (the commit that made it so has the numbers);
 *   - else direct: few output channels per group, where it is best (ResNeXt-like 3x3 with
 *     4 and 8 per group: 9.8 vs implicit 16.4 and 7.5 vs 13.5) or close (LeNet conv1,
 *     kpg 6: 1.37 vs 1.06), short reductions, small images.
 *   The AVX-512 rule of 2026-11 (winograd only up to 10 MB of transform or from 28x28,
 *   no GEMM path, implicit_gemm only up to 1 MB of weights and from a reduction of 32)
 *   sent 10 forward and 12 data-gradient shapes of the perf suites to direct at
 *   1.5-2.7x the best algorithm's time when it was checked again on that Xeon with the
 *   kernels of 2026-12; the rule above has none there.
 *   backward data: the same rule applied to the transposed convolution (dy as input,
 *     kpg and cpg swapped) for stride 1, where implicit_gemm and winograd compute it as
 *     a forward convolution: ResNet 1x1 105 vs 19 device GFLOPS, 56x56 c64 3x3 winograd
 *     99 vs direct 43; depthwise layers: depthwise (below). The forward rule (direct was
 *     the slow choice on MobileNet-V2's 1x1 projections, AlexNet
 *     conv2-conv5, VGG conv5 and ResNet-50's stage 4 under the older rules:
 *     perf/rule_check.sh, perf/README.md's rule section).
 *     Strides 2..32 (pick_cpu_strided_data; device GFLOPS of one run with every
 *     algorithm per shape on the shared 2-core machine, load 3-4, 2026-11-25):
 *     implicit_gemm (the phase decomposition, lib/ops/conv2d_implicit_data.c) when its GEMMs
 *     have >= 8 output and >= 32 reduction rows and at most 8 MB of weights per group:
 *     AlexNet conv1 37 vs direct 6.0 (gemm 3.6), ResNet-50 conv1 24.7 vs 8.1, 3x3 s2
 *     c128 68.7 vs 16.5, c256 52.2 vs 13.9, c512 41.1 vs 24.2 (gemm 29.5), 1x1 s2
 *     c256->512 133 vs 24.8 (gemm 30.7), c512->1024 48.4 vs 26.6 (gemm 35.5),
 *     c1024->2048 (8 MB of weights) 21.9 vs 5.9 (gemm 13.9; 3 more rounds: 10.8-24.0 vs
 *     gemm 7.1-15.6), MobileNet-V2 stem 50.6 vs 12.8; larger weights (not measured):
 *     gemm, which beat direct on the c512 and c1024 layers; depthwise layers: depthwise
 *     (below; among the others direct was best: 3.2 vs
 *     3.2, 4.1 vs 2.9, 1.9 vs 2.0, 1.9 vs 1.9 on MobileNet-V2's four stride-2 layers).
 *   backward filter (GFLOPS per CPU-second x 2, implicit_gemm vs direct vs gemm,
 *     2026-11-25, the tuned kernels of lib/ops/conv2d_wgrad.c):
 *   - kpg >= 16 and a reduction row cpg*r*s >= 16: implicit_gemm: AlexNet conv1 163 vs
 *     11 vs 16, VGG 3x3 c64 190 vs 88 vs 17, ResNet 1x1 c256 149 vs 72 vs 42, LeNet 5x5
 *     46 vs 22 vs 5, the bn model's conv2 (64x32x14x14 -> 64, 3x3) 150 vs 88, 3x3
 *     stride 2 c64 -> 128 139 vs 21, ResNet-50's 7x7 stride-2 stem 119 vs 16, VGG at
 *     batch 1 264 vs 110, 32x2x28x28 -> 32 3x3 (rows of 18) 71 vs 53; VGG's first
 *     layer (8x3x224x224 -> 64 3x3, rows of 27) ties, 43 vs 45: transposing its 103 MB
 *     dy costs as much as the product;
 *   - else direct: few channels per group (kpg 8: a tie; depthwise 12 vs 2, but see the
 *     depthwise rule below) or short
 *     rows (64x1x28x28 -> 32 3x3, rows of 9: 38 vs 49).
 * Other devices (GPUs): CLBlast's GEMM is the tuned path, so gemm when the matrices are
 * reasonably large:
 *   - 1x1, stride 1, no padding (no im2col) with >= 8 channels in and out per group
 *   - cpg*r*s >= 64 and kpg >= 16 and p*q >= 16
 * and direct otherwise (depthwise, small reductions or outputs). Not measured on a GPU
 * yet; the new kernels are correct there but tuned for CPUs. */
static clcnn_conv_algo pick_algo(const clcnn_device *dev, const cc_conv *cv, pass ps) {
    if (dev->info.type == CLCNN_DEVICE_CPU) {
        /* Depthwise layers (lib/ops/conv2d_depthwise.c), measured on MobileNet-V2's ten
         * depthwise layers at batch 8 (clcnn-perf --op conv2d_bwd_data,conv2d_bwd_filter
         * --suite mobilenet_v2 --filter dw --algo all --runs 7: interleaved, device ms
         * depthwise vs direct, shared 2-core machine, 2026-11-25). Data gradient: depthwise:
         * 112x112 c32 3.2 vs 6.8, s2 c96 8.8 vs 14.0, 56x56 c144 6.0 vs 6.4, s2 2.5 vs 7.8,
         * 28x28 c192 1.6 vs 4.1, s2 0.83 vs 1.4, 14x14 c384 0.97 vs 2.4, c576 1.4 vs 1.8,
         * s2 1.02 vs 1.09, 7x7 c960 0.92 vs 0.94. Filter gradient: depthwise for strides
         * > 1 (s2: c96 3.3 vs 13.5, c144 1.1 vs 6.2, c192 0.35 vs 3.8, c576 0.38 vs 1.7)
         * and stride-1 planes of at least 40x40 outputs (112x112 c32 2.4 vs 3.3, 56x56
         * c144 3.1 vs 3.5); direct on smaller ones, where the two are close (28x28 c192
         * 1.48 vs 1.11, 14x14 c384 0.68 vs 0.56, c576 0.85 vs 0.86, 7x7 c960 0.48 vs
         * 0.57). Since the filter-gradient kernel compiles 3x3 stride-1/2 geometries in
         * (cc_conv2d_depthwise_k3), depthwise is ahead on those small planes too (see the
         * commit that made it so; perf/rule_check.sh --ops conv2d_bwd_filter). */
        if (cc_conv2d_depthwise_supports(cv) &&
            (ps != PASS_FILTER || cv->sh > 1 || cv->sw > 1 || cv->p * cv->q >= 40 * 40 ||
             cc_conv2d_depthwise_k3(cv)))
            return CLCNN_CONV_DEPTHWISE;
        if (ps == PASS_FILTER)
            return cv->kpg >= 16 && cv->cpg * cv->r * cv->s >= 16 ? CLCNN_CONV_IMPLICIT_GEMM
                                                                  : CLCNN_CONV_DIRECT;
        int narrow = cc_cpu_f16_accumulators(dev, 1) > 0;
        if (ps == PASS_FORWARD) return pick_cpu_forward(cv, narrow);
        if (cv->sh != 1 || cv->sw != 1) return pick_cpu_strided_data(cv);
        cc_conv t = cc_conv_transposed(cv); /* dy in, dx out */
        return pick_cpu_forward(&t, narrow);
    }
    int red = cv->cpg * cv->r * cv->s;
    if (cv->r == 1 && cv->s == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0 &&
        cv->kpg >= 8 && cv->cpg >= 8)
        return CLCNN_CONV_GEMM;
    if (red >= 64 && cv->kpg >= 16 && cv->p * cv->q >= 16) return CLCNN_CONV_GEMM;
    return CLCNN_CONV_DIRECT;
}

/* Whether algorithm a can run pass ps on this shape; when not, *why says what is missing
 * (for the CLCNN_ERR_UNSUPPORTED message of a forced algorithm). */
static int algo_supports(clcnn_conv_algo a, const cc_conv *cv, pass ps, const char **why) {
    switch (a) {
    case CLCNN_CONV_DIRECT:
    case CLCNN_CONV_GEMM:
        return 1;
    case CLCNN_CONV_IMPLICIT_GEMM:
        if (ps == PASS_FILTER) return 1; /* lib/ops/conv2d_wgrad.c: every shape */
        *why = "its data gradient needs strides of at most 32 (use direct, gemm or auto)";
        return ps == PASS_FORWARD || cc_conv2d_implicit_supports_data(cv);
    case CLCNN_CONV_WINOGRAD:
        if (ps == PASS_FORWARD && cc_conv2d_winograd_s2d(cv)) return 1;
        if (!cc_conv2d_winograd_supports(cv)) {
            *why = ps == PASS_FORWARD
                       ? "it needs a 3x3 kernel with stride 1 and dilation 1, or groups 1, "
                         "dilation 1 and a kernel of three strides each way (2S < r, s <= 3S "
                         "for stride S, e.g. 11x11 stride 4) whose input rearranged fits the "
                         "convolution workspace"
                       : "it needs a 3x3 kernel with stride 1 and dilation 1";
            return 0;
        }
        *why = "it has no filter-gradient kernel (use direct, gemm or auto)";
        return ps != PASS_FILTER;
    case CLCNN_CONV_DEPTHWISE:
        if (!cc_conv2d_depthwise_supports(cv)) {
            *why = "it needs groups == input channels == output channels (channel multiplier "
                   "1)";
            return 0;
        }
        return 1; /* forward, data and filter gradients */
    default:
        *why = "it is not implemented yet (use direct, gemm, implicit_gemm or auto)";
        return 0;
    }
}

/* AUTO: the winner stored in the tuning file (lib/tune/conv_db.c) while it still
 * supports the shape, else the heuristic. */
static clcnn_conv_algo auto_algo(clcnn_device *dev, const cc_conv *cv, pass ps, int *from_db) {
    const char *why = "";
    clcnn_conv_algo t = cc_conv_tuned_algo(dev, cv, (int)ps);
    *from_db = t != CLCNN_CONV_AUTO && algo_supports(t, cv, ps, &why);
    return *from_db ? t : pick_algo(dev, cv, ps);
}

static clcnn_status resolve_algo_db(clcnn_device *dev, const char *op, const clcnn_conv2d_desc *d,
                                    const cc_conv *cv, pass ps, clcnn_conv_algo *out,
                                    int *from_db) {
    clcnn_conv_algo a = d->algo;
    *from_db = 0;
    if (a == CLCNN_CONV_AUTO) a = auto_algo(dev, cv, ps, from_db);
    const char *why = "";
    CC_RETURN_IF(!algo_supports(a, cv, ps, &why), CLCNN_ERR_UNSUPPORTED,
                 "%s: algorithm %s cannot run the %s pass here: %s (x %dx%dx%dx%d, w "
                 "%dx%dx%dx%d, stride %dx%d, dilation %dx%d, groups %d)",
                 op, clcnn_conv_algo_name(a), pass_names[ps], why, cv->n, cv->c, cv->h, cv->w,
                 cv->k, cv->cpg, cv->r, cv->s, cv->sh, cv->sw, cv->dh, cv->dw, cv->groups);
    *out = a;
    return CLCNN_OK;
}

static clcnn_status resolve_algo(clcnn_device *dev, const char *op, const clcnn_conv2d_desc *d,
                                 const cc_conv *cv, pass ps, clcnn_conv_algo *out) {
    int from_db;
    return resolve_algo_db(dev, op, d, cv, ps, out, &from_db);
}

clcnn_status cc_conv2d_forward_algo(clcnn_device *dev, const char *op, const clcnn_conv2d_desc *d,
                                    const cc_conv *cv, clcnn_conv_algo *out) {
    return resolve_algo(dev, op, d, cv, PASS_FORWARD, out);
}

/* The forward of each algorithm (see cc_conv2d_fwd_impl in conv2d_impl.h). */
static const cc_conv2d_fwd_impl *const fwd_algos[CLCNN_CONV_ALGO_COUNT] = {
    [CLCNN_CONV_DIRECT] = &cc_conv2d_direct_fwd,
    [CLCNN_CONV_GEMM] = &cc_conv2d_gemm_fwd,
    [CLCNN_CONV_IMPLICIT_GEMM] = &cc_conv2d_implicit_fwd,
    [CLCNN_CONV_WINOGRAD] = &cc_conv2d_winograd_fwd,
    [CLCNN_CONV_DEPTHWISE] = &cc_conv2d_depthwise_fwd,
};

const cc_conv2d_fwd_impl *cc_conv2d_fwd_algo(clcnn_conv_algo a) {
    return (int)a > 0 && a < CLCNN_CONV_ALGO_COUNT && fwd_algos[a] ? fwd_algos[a]
                                                                   : &cc_conv2d_direct_fwd;
}

clcnn_status cc_conv2d_fwd_new(const cc_conv2d_fwd_impl *fa, clcnn_device *dev, const cc_conv *cv,
                               const clcnn_tensor *w, int act, void **state) {
    void *st = calloc(1, fa->state_bytes);
    CC_RETURN_IF(!st, CLCNN_ERR_OUT_OF_MEMORY, "conv2d forward: out of host memory");
    clcnn_status s = fa->prepare(dev, cv, w, act, st);
    if (s != CLCNN_OK) {
        free(st);
        return s;
    }
    *state = st;
    return CLCNN_OK;
}

void cc_conv2d_fwd_delete(const cc_conv2d_fwd_impl *fa, void *state) {
    if (!state) return;
    if (fa->release) fa->release(state);
    free(state);
}

clcnn_status clcnn_conv2d_algo_choice(clcnn_device *dev, clcnn_conv_pass which,
                                      const clcnn_conv2d_desc *d, const size_t x[4],
                                      const size_t w[4], clcnn_conv_algo *algo, int *from_db) {
    const char *op = "conv2d algorithm choice";
    CC_RETURN_IF(!dev || !algo, CLCNN_ERR_INVALID_ARG, "%s: NULL argument", op);
    CC_RETURN_IF((int)which < 0 || which >= CLCNN_CONV_PASS_COUNT, CLCNN_ERR_INVALID_ARG,
                 "%s: unknown pass %d", op, (int)which);
    cc_conv cv;
    size_t ys[4];
    CC_TRY(cc_conv2d_geometry(op, d, x, w, ys, &cv));
    clcnn_conv_algo a;
    int db;
    CC_TRY(resolve_algo_db(dev, op, d, &cv, (pass)(int)which, &a, &db));
    *algo = a;
    if (from_db) *from_db = db;
    return CLCNN_OK;
}

/* See conv2d_impl.h. */
clcnn_conv_algo cc_conv2d_rule_algo(const clcnn_device *dev, const cc_conv *cv, int which) {
    return pick_algo(dev, cv, (pass)which);
}

/* ---- entry points ---------------------------------------------------------------------- */

clcnn_status clcnn_conv2d_forward(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                  const clcnn_tensor *x, const clcnn_tensor *w,
                                  const clcnn_tensor *b, clcnn_tensor *y, clcnn_activation act) {
    const char *op = "conv2d forward";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(check_desc(op, d));
    CC_TRY(cc_conv2d_check_4d(dev, op, "input x", x));
    CC_TRY(cc_conv2d_check_4d(dev, op, "weights w", w));
    CC_TRY(cc_conv2d_check_4d(dev, op, "output y", y));
    CC_RETURN_IF(act != CLCNN_ACT_NONE && act != CLCNN_ACT_RELU && act != CLCNN_ACT_LEAKY_RELU,
                 CLCNN_ERR_INVALID_ARG, "%s: unknown activation %d", op, (int)act);
    cc_conv cv;
    size_t ys[4];
    CC_TRY(cc_conv2d_geometry(op, d, x->shape, w->shape, ys, &cv));
    CC_TRY(cc_conv2d_check_shape(op, "output y", y, ys, "input x", x, "weights w", w));
    if (b) CC_TRY(cc_conv2d_check_vec(dev, op, "bias b", b, (size_t)cv.k));
    CC_TRY(check_no_alias(op, y, "output y", x, "input x"));
    CC_TRY(check_no_alias(op, y, "output y", w, "weights w"));
    CC_TRY(check_no_alias(op, y, "output y", b, "bias b"));
    clcnn_conv_algo a;
    CC_TRY(resolve_algo(dev, op, d, &cv, PASS_FORWARD, &a));
    /* prepared for this call only: w is borrowed, transforms come from the pool */
    const cc_conv2d_fwd_impl *fa = cc_conv2d_fwd_algo(a);
    void *st = NULL;
    CC_TRY(cc_conv2d_fwd_new(fa, dev, &cv, w, (int)act, &st));
    cc_conv_epilogue ep = {.b = b, .z = NULL, .act = (int)act, .alpha = CC_CONV_LEAKY_ALPHA};
    clcnn_status s = fa->run(dev, st, x, &ep, y);
    cc_conv2d_fwd_delete(fa, st); /* the in-order queue runs the kernels before any reuse */
    return s;
}

/* The checks of a data gradient's arguments, its geometry and its algorithm. */
static clcnn_status data_args(clcnn_device *dev, const char *op, const clcnn_conv2d_desc *d,
                              const clcnn_tensor *dy, const clcnn_tensor *w, const clcnn_tensor *dx,
                              cc_conv *cv, clcnn_conv_algo *a) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(check_desc(op, d));
    CC_TRY(cc_conv2d_check_4d(dev, op, "output gradient dy", dy));
    CC_TRY(cc_conv2d_check_4d(dev, op, "weights w", w));
    CC_TRY(cc_conv2d_check_4d(dev, op, "input gradient dx", dx));
    size_t ys[4];
    CC_TRY(cc_conv2d_geometry(op, d, dx->shape, w->shape, ys, cv));
    CC_TRY(cc_conv2d_check_shape(op, "output gradient dy", dy, ys, "input gradient dx", dx,
                                 "weights w", w));
    CC_TRY(check_no_alias(op, dx, "input gradient dx", dy, "output gradient dy"));
    CC_TRY(check_no_alias(op, dx, "input gradient dx", w, "weights w"));
    return resolve_algo(dev, op, d, cv, PASS_DATA, a);
}

clcnn_status clcnn_conv2d_backward_data(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                        const clcnn_tensor *dy, const clcnn_tensor *w,
                                        clcnn_tensor *dx) {
    cc_conv cv;
    clcnn_conv_algo a;
    CC_TRY(data_args(dev, "conv2d backward data", d, dy, w, dx, &cv, &a));
    if (a == CLCNN_CONV_GEMM) return cc_conv2d_gemm_backward_data(dev, &cv, dy, w, dx);
    if (a == CLCNN_CONV_IMPLICIT_GEMM) return cc_conv2d_implicit_backward_data(dev, &cv, dy, w, dx);
    if (a == CLCNN_CONV_WINOGRAD) return cc_conv2d_winograd_backward_data(dev, &cv, dy, w, dx);
    if (a == CLCNN_CONV_DEPTHWISE) return cc_conv2d_depthwise_backward_data(dev, &cv, dy, w, dx);
    return cc_conv2d_direct_backward_data(dev, &cv, dy, w, dx);
}

/* See lib/internal.h. */
int cc_conv2d_data_relu_applies(const clcnn_conv2d_desc *d, clcnn_conv_algo a) {
    return d && a == CLCNN_CONV_IMPLICIT_GEMM && d->stride_h == 1 && d->stride_w == 1;
}

/* See lib/internal.h. */
clcnn_status cc_conv2d_backward_data_relu(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                          const clcnn_tensor *dy, const clcnn_tensor *w,
                                          const clcnn_tensor *z, const clcnn_tensor *mask,
                                          clcnn_tensor *dx) {
    const char *op = "conv2d backward data with a ReLU gradient";
    cc_conv cv;
    clcnn_conv_algo a;
    CC_TRY(data_args(dev, op, d, dy, w, dx, &cv, &a));
    const clcnn_tensor *in[2] = {z, mask};
    const char *what[2] = {"contribution z", "ReLU output mask"};
    for (int i = 0; i < 2; i++) {
        CC_TRY(cc_conv2d_check_4d(dev, op, what[i], in[i]));
        CC_RETURN_IF(memcmp(in[i]->shape, dx->shape, 4 * sizeof(size_t)) != 0, CLCNN_ERR_SHAPE,
                     "%s: %s is " SHAPE4 ", the input gradient dx " SHAPE4, op, what[i],
                     DIMS4(in[i]->shape), DIMS4(dx->shape));
        CC_TRY(check_no_alias(op, dx, "input gradient dx", in[i], what[i]));
    }
    CC_RETURN_IF(!cc_conv2d_data_relu_applies(d, a), CLCNN_ERR_UNSUPPORTED,
                 "%s: runs on implicit_gemm at stride 1 only, not %s at stride %dx%d", op,
                 clcnn_conv_algo_name(a), d->stride_h, d->stride_w);
    return cc_conv2d_implicit_backward_data_relu(dev, &cv, dy, w, z, mask, dx);
}

clcnn_status clcnn_conv2d_backward_filter(clcnn_device *dev, const clcnn_conv2d_desc *d,
                                          const clcnn_tensor *x, const clcnn_tensor *dy,
                                          clcnn_tensor *dw, clcnn_tensor *db) {
    const char *op = "conv2d backward filter";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", op);
    CC_TRY(check_desc(op, d));
    CC_TRY(cc_conv2d_check_4d(dev, op, "input x", x));
    CC_TRY(cc_conv2d_check_4d(dev, op, "output gradient dy", dy));
    CC_TRY(cc_conv2d_check_4d(dev, op, "weight gradient dw", dw));
    cc_conv cv;
    size_t ys[4];
    CC_TRY(cc_conv2d_geometry(op, d, x->shape, dw->shape, ys, &cv));
    CC_TRY(cc_conv2d_check_shape(op, "output gradient dy", dy, ys, "input x", x,
                                 "weight gradient dw", dw));
    if (db) CC_TRY(cc_conv2d_check_vec(dev, op, "bias gradient db", db, (size_t)cv.k));
    CC_TRY(check_no_alias(op, dw, "weight gradient dw", x, "input x"));
    CC_TRY(check_no_alias(op, dw, "weight gradient dw", dy, "output gradient dy"));
    if (db) {
        CC_TRY(check_no_alias(op, db, "bias gradient db", x, "input x"));
        CC_TRY(check_no_alias(op, db, "bias gradient db", dy, "output gradient dy"));
        CC_TRY(check_no_alias(op, db, "bias gradient db", dw, "weight gradient dw"));
    }
    clcnn_conv_algo a;
    CC_TRY(resolve_algo(dev, op, d, &cv, PASS_FILTER, &a));
    if (db) CC_TRY(cc_conv2d_prepare(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_bias_grad"));
    if (a == CLCNN_CONV_GEMM)
        CC_TRY(cc_conv2d_gemm_backward_filter(dev, &cv, x, dy, dw));
    else if (a == CLCNN_CONV_IMPLICIT_GEMM)
        CC_TRY(cc_conv2d_wgrad_backward_filter(dev, &cv, x, dy, dw));
    else if (a == CLCNN_CONV_DEPTHWISE)
        CC_TRY(cc_conv2d_depthwise_backward_filter(dev, &cv, x, dy, dw));
    else
        CC_TRY(cc_conv2d_direct_backward_filter(dev, &cv, x, dy, dw));
    if (!db) return CLCNN_OK;
    /* db[k] = sum over n, p, q of dy: one work-group of WG items per channel. */
    enum { WG = 64 };
    return cc_launch(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_bias_grad", 1,
                     (size_t[]){(size_t)cv.k * WG}, (size_t[]){WG},
                     CC_ARGS(CC_ARG_MEM(dy->storage->mem), CC_ARG_INT(dy->offset),
                             CC_ARG_MEM(db->storage->mem), CC_ARG_INT(db->offset), CC_ARG_INT(cv.n),
                             CC_ARG_INT(cv.k), CC_ARG_INT(cv.p * cv.q)));
}

/* ---- bias kernels shared by the algorithms ----------------------------------------------- */

clcnn_status cc_conv2d_prepare(clcnn_device *dev, const char *file, const char *defines,
                               const char *kernel) {
    cl_kernel k;
    return cc_kernel_get(dev, file, defines, kernel, &k);
}

#define EW_LWS 64 /* fixed local size: one POCL work-group function per kernel */

clcnn_status cc_conv2d_bias_act(clcnn_device *dev, const cc_conv *cv, const clcnn_tensor *b,
                                const clcnn_tensor *z, clcnn_tensor *y, int act, float alpha) {
    if (!b && !z && act == CLCNN_ACT_NONE) return CLCNN_OK;
    size_t n = (size_t)cv->n * cv->k * cv->p * cv->q;
    return cc_launch(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_bias_act", 1, (size_t[]){n},
                     (size_t[]){EW_LWS},
                     CC_ARGS(CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset),
                             CC_ARGS_OPT(b, y->storage->mem), CC_ARGS_OPT(z, y->storage->mem),
                             CC_ARG_INT(cv->n), CC_ARG_INT(cv->k), CC_ARG_INT(cv->p * cv->q),
                             CC_ARG_INT(act), CC_ARG_FLOAT(alpha)));
}

clcnn_status cc_conv2d_sum_parts(clcnn_device *dev, cl_mem part, size_t part_off, int parts, int m,
                                 cl_mem out, size_t out_off, int accumulate) {
    return cc_launch(dev, "conv2d_bias", CC_CONV_BIAS_DEFINES, "conv2d_sum_parts", 1,
                     (size_t[]){(size_t)m}, (size_t[]){EW_LWS},
                     CC_ARGS(CC_ARG_MEM(part), CC_ARG_INT(part_off), CC_ARG_INT(parts),
                             CC_ARG_INT(m), CC_ARG_MEM(out), CC_ARG_INT(out_off),
                             CC_ARG_INT(accumulate)));
}
