/* The element-wise families of the graph: unary ops over any dense tensor and binary ops
 * with NumPy broadcasting over up to 4 dims. Host side of cl/unary.cl and cl/binary.cl.
 *
 * Shapes: x, y of cc_unary have equal dims. For cc_binary, a and b are right-aligned
 * against y (ndim <= 4) and each of their dims is y's or 1. Before a launch the dims are
 * merged where both operands allow it (see bcast_plan), so the kernel sees the fewest
 * dims: equal shapes are one flat run, (n,c,h,w) * (n,c,1,1) is (n*c, h*w) with the
 * scale's strides (1, 0), a per-channel operand (c,1,1) on (n,c,h,w) is (n, c, h*w). */
#include "elementwise.h"

#include "clcnn_ids.h"

#include <stdio.h>
#include <string.h>

clcnn_status cc_unary(clcnn_device *dev, int op, float alpha, float beta, const clcnn_tensor *x,
                      clcnn_tensor *y) {
    static const char *fn = "cc_unary";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", fn);
    CC_RETURN_IF(op < 0 || op >= CLCNN_UN_ID_COUNT, CLCNN_ERR_INVALID_ARG, "%s: unknown op %d", fn,
                 op);
    CC_TRY(cc_ew_check(dev, fn, "x", x, NULL, NULL, 1));
    CC_TRY(cc_ew_check(dev, fn, "y", y, "x", x, 1));
    /* one program per op (cl/unary.cl's UN_OP), 16 elements per work-item (UN_VEC) */
    char defs[24];
    snprintf(defs, sizeof defs, "UN_OP=%d", op);
    return cc_ew_launch_defs(dev, "unary", defs, "unary_fwd", (x->numel + 15) / 16,
                             CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset),
                                     CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                                     CC_ARG_ULONG(x->numel), CC_ARG_FLOAT(alpha),
                                     CC_ARG_FLOAT(beta)));
}

/* The broadcast geometry of one launch: dims of y (outermost first, padded to 4 with 1s)
 * and each operand's element strides (0 where it broadcasts). */
typedef struct bcast {
    size_t d[4];
    size_t s[2][4];
} bcast;

/* Strides of operand t against y (0 on broadcast dims); 0 when t does not broadcast. */
static int operand_strides(const clcnn_tensor *t, const clcnn_tensor *y, size_t *st) {
    if (t->ndim > y->ndim) return 0;
    size_t dense = 1;
    for (int d = y->ndim - 1; d >= 0; d--) {
        int td = d - (y->ndim - t->ndim);
        size_t n = td >= 0 ? t->shape[td] : 1;
        if (n != y->shape[d] && n != 1) return 0;
        st[d] = n == 1 ? 0 : dense;
        dense *= n;
    }
    return 1;
}

/* Drop size-1 dims and merge a dim into the one inside it when both operands step
 * through the pair as through one dim. */
static void bcast_plan(const clcnn_tensor *y, const size_t sa[4], const size_t sb[4], bcast *out) {
    size_t d[4], s[2][4];
    int nd = 0; /* merged dims, innermost first */
    for (int k = y->ndim - 1; k >= 0; k--) {
        size_t n = y->shape[k];
        if (n == 1) continue;
        if (nd > 0 && sa[k] == s[0][nd - 1] * d[nd - 1] && sb[k] == s[1][nd - 1] * d[nd - 1]) {
            d[nd - 1] *= n;
            continue;
        }
        d[nd] = n;
        s[0][nd] = sa[k];
        s[1][nd] = sb[k];
        nd++;
    }
    for (int k = 0; k < 4; k++) {
        int from = k < nd ? k : -1; /* out->d[3 - k] is merged dim k */
        out->d[3 - k] = from >= 0 ? d[from] : 1;
        out->s[0][3 - k] = from >= 0 ? s[0][from] : 0;
        out->s[1][3 - k] = from >= 0 ? s[1][from] : 0;
    }
}

/* A power of two <= n and <= cap (at least 1). */
static size_t pow2_upto(size_t n, size_t cap) {
    size_t p = 1;
    while (p * 2 <= n && p * 2 <= cap)
        p *= 2;
    return p;
}

/* Operand j of a merged geometry is dense over the last `nd` dims. */
static int dense(const bcast *g, int j, int nd) {
    size_t want = 1;
    for (int k = 3; k >= 4 - nd; k--) {
        if (g->s[j][k] != want) return 0;
        want *= g->d[k];
    }
    return 1;
}

/* The patterns with contiguous loads (binary_flat, binary_rows); CLCNN_ERR_UNSUPPORTED
 * when g is none of them (nothing enqueued). */
static clcnn_status launch_special(clcnn_device *dev, int op, const clcnn_tensor *a,
                                   const clcnn_tensor *b, clcnn_tensor *y, const bcast *g) {
    char defs[32];
    snprintf(defs, sizeof defs, "BIN_OP=%d", op);
    size_t cap = dev->info.max_work_group_size && dev->info.max_work_group_size < 256
                     ? dev->info.max_work_group_size
                     : 256;
    int nd = g->d[0] > 1 ? 4 : g->d[1] > 1 ? 3 : g->d[2] > 1 ? 2 : 1;
    if (nd == 1) {
        int a_scalar = g->s[0][3] == 0, b_scalar = g->s[1][3] == 0;
        return cc_launch(
            dev, "binary", defs, "binary_flat", 1, (size_t[]){y->numel}, (size_t[]){cap},
            CC_ARGS(CC_ARG_MEM(a->storage->mem), CC_ARG_ULONG(a->offset),
                    CC_ARG_MEM(b->storage->mem), CC_ARG_ULONG(b->offset),
                    CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset), CC_ARG_ULONG(y->numel),
                    CC_ARG_INT(op), CC_ARG_INT(a_scalar && !b_scalar), CC_ARG_INT(b_scalar)));
    }
    if (nd > 3) return CLCNN_ERR_UNSUPPORTED;
    int full = dense(g, 0, nd) ? 0 : dense(g, 1, nd) ? 1 : -1;
    if (full < 0) return CLCNN_ERR_UNSUPPORTED;
    const size_t *vs = g->s[1 - full];
    size_t K = g->d[3], R = y->numel / K, vr = 0;
    int v_cols = 0;
    if (nd == 2 && vs[2] == 1 && vs[3] == 0)
        vr = R; /* (R, K) by (R, 1): the squeeze-excitation scale */
    else if (nd == 2 && vs[2] == 0 && vs[3] == 1)
        v_cols = 1, vr = 1; /* (R, K) by (K) */
    else if (nd == 3 && vs[1] == 0 && vs[2] == 1 && vs[3] == 0)
        vr = g->d[2]; /* (A, C, K) by (C, 1): a per-channel operand */
    else
        return CLCNN_ERR_UNSUPPORTED;
    const clcnn_tensor *x = full == 0 ? a : b, *v = full == 0 ? b : a;
    size_t kg = v_cols ? K : (K + 15) / 16; /* binary_rows: 16 columns per work-item */
    size_t lws[2] = {pow2_upto(kg, cap), 1};
    lws[1] = pow2_upto(R, cap / lws[0]);
    return cc_launch(
        dev, "binary", defs, v_cols ? "binary_cols" : "binary_rows", 2, (size_t[]){kg, R}, lws,
        CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_ULONG(x->offset), CC_ARG_MEM(v->storage->mem),
                CC_ARG_ULONG(v->offset), CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset),
                CC_ARG_UINT(K), CC_ARG_UINT(R), CC_ARG_UINT(vr), CC_ARG_INT(full == 1),
                CC_ARG_INT(op)));
}

clcnn_status cc_binary(clcnn_device *dev, int op, const clcnn_tensor *a, const clcnn_tensor *b,
                       clcnn_tensor *y) {
    static const char *fn = "cc_binary";
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "%s: device is NULL", fn);
    CC_RETURN_IF(op < 0 || op >= CLCNN_BIN_ID_COUNT, CLCNN_ERR_INVALID_ARG, "%s: unknown op %d", fn,
                 op);
    CC_TRY(cc_check_tensor(dev, a, CLCNN_F32, fn, "a"));
    CC_TRY(cc_check_tensor(dev, b, CLCNN_F32, fn, "b"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, fn, "y"));
    size_t sa[4], sb[4];
    if (y->ndim > 4 || !operand_strides(a, y, sa) || !operand_strides(b, y, sb) ||
        y->numel > 0xffffffffu) {
        char ba[64], bb[64], by[64];
        return cc_fail(CLCNN_ERR_SHAPE,
                       "%s: a %s and b %s do not broadcast to y %s (at most 4 dims, 2^32 "
                       "elements)",
                       fn, clcnn_tensor_shape_str(a, ba, sizeof ba),
                       clcnn_tensor_shape_str(b, bb, sizeof bb),
                       clcnn_tensor_shape_str(y, by, sizeof by));
    }
    if (y->numel == 0) return CLCNN_OK;
    bcast g;
    bcast_plan(y, sa, sb, &g);
    clcnn_status st = launch_special(dev, op, a, b, y, &g);
    if (st != CLCNN_ERR_UNSUPPORTED) return st;
    size_t d01 = g.d[0] * g.d[1];
    size_t lws[3] = {pow2_upto(g.d[3], 256), 1, 1};
    lws[1] = pow2_upto(g.d[2], 256 / lws[0]);
    lws[2] = pow2_upto(d01, 256 / (lws[0] * lws[1]));
    size_t max_wg = dev->info.max_work_group_size;
    while (max_wg && lws[0] * lws[1] * lws[2] > max_wg)
        lws[lws[2] > 1 ? 2 : lws[1] > 1 ? 1 : 0] /= 2;
    return cc_launch(
        dev, "binary", "", "binary_fwd", 3, (size_t[]){g.d[3], g.d[2], d01}, lws,
        CC_ARGS(CC_ARG_MEM(a->storage->mem), CC_ARG_ULONG(a->offset), CC_ARG_UINT(g.s[0][0]),
                CC_ARG_UINT(g.s[0][1]), CC_ARG_UINT(g.s[0][2]), CC_ARG_UINT(g.s[0][3]),
                CC_ARG_MEM(b->storage->mem), CC_ARG_ULONG(b->offset), CC_ARG_UINT(g.s[1][0]),
                CC_ARG_UINT(g.s[1][1]), CC_ARG_UINT(g.s[1][2]), CC_ARG_UINT(g.s[1][3]),
                CC_ARG_MEM(y->storage->mem), CC_ARG_ULONG(y->offset), CC_ARG_UINT(g.d[1]),
                CC_ARG_UINT(g.d[2]), CC_ARG_UINT(g.d[3]), CC_ARG_UINT(d01), CC_ARG_INT(op)));
}
