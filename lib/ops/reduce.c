/* Reductions along any set of axes (ONNX's ten: sum, mean, max, min, prod, sum of squares,
 * L1, L2, log-sum, log-sum-exp) and local response normalisation
 * across channels. Kernels: cl/reduce.cl.
 *
 * Shapes: reduce x of ndim <= 4 dims (any), y with the kept dims' elements; lrn x, y
 * (n, c, d...), inner = product of the dims after c. */
#include "internal.h"

#include "clcnn_ids.h"

#include <limits.h>

_Static_assert(CC_REDUCE_SUM == CC_REDUCE_ID_SUM && CC_REDUCE_MEAN == CC_REDUCE_ID_MEAN &&
                   CC_REDUCE_MAX == CC_REDUCE_ID_MAX && CC_REDUCE_MIN == CC_REDUCE_ID_MIN &&
                   CC_REDUCE_PROD == CC_REDUCE_ID_PROD &&
                   CC_REDUCE_SUM_SQUARE == CC_REDUCE_ID_SUM_SQUARE &&
                   CC_REDUCE_L1 == CC_REDUCE_ID_L1 && CC_REDUCE_L2 == CC_REDUCE_ID_L2 &&
                   CC_REDUCE_LOG_SUM == CC_REDUCE_ID_LOG_SUM &&
                   CC_REDUCE_LOG_SUM_EXP == CC_REDUCE_ID_LOG_SUM_EXP,
               "clcnn_ids.h reduce ids differ from cc_reduce_op");

static int fits_int(const clcnn_tensor *t) {
    return t->offset <= (size_t)INT_MAX && t->numel <= (size_t)INT_MAX - t->offset;
}

/* POCL compiles once per local size: a fixed one keeps new shapes from recompiling. */
static const size_t *lws_1d(const clcnn_device *dev, size_t *buf) {
    size_t max = dev->info.max_work_group_size;
    *buf = max && max < 64 ? max : 64;
    return buf;
}

clcnn_status cc_reduce(clcnn_device *dev, cc_reduce_op op, const clcnn_tensor *x, unsigned mask,
                       clcnn_tensor *y) {
    static const char name[] = "reduce";
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, name, "x"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, name, "y"));
    char a[64];
    CC_RETURN_IF(!fits_int(x) || !fits_int(y), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (x %s)", name,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(cc_tensors_overlap(x, y), CLCNN_ERR_INVALID_ARG, "%s: y must not overlap x", name);
    /* groups of adjacent dims of the same kind (dims of 1 join any group), innermost last */
    int ks[4] = {1, 1, 1, 1}, kt[4] = {0, 0, 0, 0}, rs[4] = {1, 1, 1, 1}, rt[4] = {0, 0, 0, 0};
    int nk = 0, nr = 0, last = -1; /* last: kind of the group being grown (0 kept, 1 reduced) */
    size_t nout = 1, nred = 1, stride = 1;
    int gs[8], gt[8], gk[8], ng = 0;
    for (int d = x->ndim - 1; d >= 0; d--) { /* innermost first */
        size_t e = x->shape[d];
        int kind = (mask >> d) & 1;
        if (kind)
            nred *= e;
        else
            nout *= e;
        if (e != 1) {
            if (kind == last && (size_t)gt[ng - 1] * gs[ng - 1] == stride) {
                gs[ng - 1] *= (int)e;
            } else {
                gs[ng] = (int)e, gt[ng] = (int)stride, gk[ng] = kind;
                ng++;
                last = kind;
            }
        }
        stride *= e;
    }
    char b[64];
    CC_RETURN_IF(y->numel != nout, CLCNN_ERR_SHAPE, "%s: y is %s, expected %zu elements", name,
                 clcnn_tensor_shape_str(y, b, sizeof b), nout);
    if (nout == 0) return CLCNN_OK;
    for (int i = 0; i < ng; i++) { /* fill from .w (innermost) outwards */
        if (gk[i])
            rs[3 - nr] = gs[i], rt[3 - nr] = gt[i], nr++;
        else
            ks[3 - nk] = gs[i], kt[3 - nk] = gt[i], nk++;
    }
    /* at most 4 alternating groups of each kind for 8 dims; 4 dims give at most 2 */
    CC_RETURN_IF(nk > 4 || nr > 4, CLCNN_ERR_UNSUPPORTED, "%s: too many groups of axes", name);
    /* a single reduced group is read as .x by the kernel's fast path */
    if (nr == 1) rs[0] = rs[3], rt[0] = rt[3], rs[3] = 1, rt[3] = 0;
    cl_int4 ksz = {{ks[0], ks[1], ks[2], ks[3]}}, kst = {{kt[0], kt[1], kt[2], kt[3]}};
    cl_int4 rsz = {{rs[0], rs[1], rs[2], rs[3]}}, rst = {{rt[0], rt[1], rt[2], rt[3]}};
    size_t lws, gws = nout;
    float scale = nred ? 1.0f / (float)nred : 0.0f;
    return cc_launch(dev, "reduce", "", "reduce_fwd", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(nout),
                             (cc_arg){sizeof ksz, &ksz}, (cc_arg){sizeof kst, &kst},
                             (cc_arg){sizeof rsz, &rsz}, (cc_arg){sizeof rst, &rst},
                             CC_ARG_INT(nred), CC_ARG_INT(op), CC_ARG_FLOAT(scale)));
}

clcnn_status cc_lrn(clcnn_device *dev, const clcnn_tensor *x, int size, float alpha, float beta,
                    float bias, clcnn_tensor *y) {
    static const char name[] = "lrn";
    CC_TRY(cc_check_tensor(dev, x, CLCNN_F32, name, "x"));
    CC_TRY(cc_check_tensor(dev, y, CLCNN_F32, name, "y"));
    char a[64];
    CC_RETURN_IF(x->ndim < 2 || y->numel != x->numel, CLCNN_ERR_SHAPE,
                 "%s: x must be (n, c, ...) and y like it, got x %s", name,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(!fits_int(x) || !fits_int(y), CLCNN_ERR_UNSUPPORTED,
                 "%s: tensors beyond 2^31-1 elements are not supported (x %s)", name,
                 clcnn_tensor_shape_str(x, a, sizeof a));
    CC_RETURN_IF(cc_tensors_overlap(x, y), CLCNN_ERR_INVALID_ARG, "%s: y must not overlap x", name);
    CC_RETURN_IF(size < 1, CLCNN_ERR_INVALID_ARG, "%s: size %d must be >= 1", name, size);
    if (x->numel == 0) return CLCNN_OK;
    size_t n = x->shape[0], c = x->shape[1], inner = x->numel / (n * c);
    size_t lws, gws = x->numel;
    return cc_launch(dev, "reduce", "", "lrn_fwd", 1, &gws, lws_1d(dev, &lws),
                     CC_ARGS(CC_ARG_MEM(x->storage->mem), CC_ARG_INT(x->offset),
                             CC_ARG_MEM(y->storage->mem), CC_ARG_INT(y->offset), CC_ARG_INT(n),
                             CC_ARG_INT(c), CC_ARG_INT(inner), CC_ARG_INT(size),
                             CC_ARG_FLOAT(alpha), CC_ARG_FLOAT(beta), CC_ARG_FLOAT(bias)));
}
