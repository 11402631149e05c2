/* batchnorm's whole-channel kernels (cl/batchnorm_channel.h, one work-item per channel):
 * every output bit for bit equal to the chunk kernels' on shapes with one and several
 * chunks per plane, chunk tails, (n, c) tensors, with and without gamma/beta, running
 * statistics, ReLU / ReLU6, a residual, in place (y = x, y = res; dx = dy, dx = x), and a
 * backward without dx; and the rule that picks them (test_batchnorm checks them against
 * the double reference through CLCNN_BN_KERNELS=channel). */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcnn_ids.h"
#include "internal.h"

/* A case: the shape (ndim 2 or 4), the activation, whether gamma/beta, running statistics
 * and a residual are given, and where y and dx go. */
typedef struct bn_case {
    size_t shape[4];
    int ndim, act, affine, running, res;
    int y_at;  /* 0: own buffer, 1: x, 2: res */
    int dx_at; /* 0: own buffer, 1: dy, 2: x, 3: none */
} bn_case;

typedef struct bn_out {
    float *y, *mean, *inv, *rmean, *rvar, *dx, *dgamma, *dbeta;
} bn_out;

static void out_free(bn_out *o) {
    free(o->y), free(o->mean), free(o->inv), free(o->rmean), free(o->rvar);
    free(o->dx), free(o->dgamma), free(o->dbeta);
}

/* One forward and one backward of cs with the kernels $CLCNN_BN_KERNELS=kernels names,
 * on data drawn from seed; what they wrote. */
static bn_out run_case(const bn_case *cs, const char *kernels, uint64_t seed) {
    setenv("CLCNN_BN_KERNELS", kernels, 1);
    size_t numel = 1;
    for (int i = 0; i < cs->ndim; i++)
        numel *= cs->shape[i];
    size_t c = cs->shape[1];
    tu_rng r = tu_rng_seed(seed);
    float *hx = malloc(numel * sizeof *hx), *hdy = malloc(numel * sizeof *hdy);
    float *hres = malloc(numel * sizeof *hres), *hc = malloc(4 * c * sizeof *hc);
    assert_non_null(hx), assert_non_null(hdy), assert_non_null(hres), assert_non_null(hc);
    tu_fill_uniform(&r, hx, numel, -3.0f, 5.0f);
    tu_fill_uniform(&r, hdy, numel, -1.0f, 1.0f);
    tu_fill_uniform(&r, hres, numel, -2.0f, 2.0f);
    tu_fill_uniform(&r, hc, 4 * c, 0.5f, 1.5f);
    clcnn_tensor *x = tu_tensor_from(cs->ndim, cs->shape, hx);
    clcnn_tensor *dy = tu_tensor_from(cs->ndim, cs->shape, hdy);
    clcnn_tensor *res = cs->res || cs->y_at == 2 ? tu_tensor_from(cs->ndim, cs->shape, hres) : NULL;
    clcnn_tensor *gamma = cs->affine ? tu_tensor_from(1, &c, hc) : NULL;
    clcnn_tensor *beta = cs->affine ? tu_tensor_from(1, &c, hc + c) : NULL;
    clcnn_tensor *rmean = cs->running ? tu_tensor_from(1, &c, hc + 2 * c) : NULL;
    clcnn_tensor *rvar = cs->running ? tu_tensor_from(1, &c, hc + 3 * c) : NULL;
    clcnn_tensor *mean = tu_tensor_from(1, &c, NULL), *inv = tu_tensor_from(1, &c, NULL);
    clcnn_tensor *dgamma = tu_tensor_from(1, &c, NULL), *dbeta = tu_tensor_from(1, &c, NULL);
    clcnn_tensor *own_y = cs->y_at == 0 ? tu_tensor_from(cs->ndim, cs->shape, NULL) : NULL;
    clcnn_tensor *y = cs->y_at == 0 ? own_y : cs->y_at == 1 ? x : res;
    bn_out o = {0};
    /* the backward reads the forward's input: keep a copy where y overwrites it */
    clcnn_tensor *xin = cs->y_at == 1 ? tu_tensor_from(cs->ndim, cs->shape, hx) : x;
    TU_OK(cc_batchnorm_forward_train_act(tu_device(), x, gamma, beta, rmean, rvar, 0.1f, 1e-5f,
                                         cs->act, cs->res ? res : NULL, y, mean, inv));
    o.y = tu_download(y);
    o.mean = tu_download(mean);
    o.inv = tu_download(inv);
    if (cs->running) o.rmean = tu_download(rmean), o.rvar = tu_download(rvar);
    clcnn_tensor *own_dx = cs->dx_at == 0 ? tu_tensor_from(cs->ndim, cs->shape, NULL) : NULL;
    clcnn_tensor *dx = cs->dx_at == 0 ? own_dx : cs->dx_at == 1 ? dy : cs->dx_at == 2 ? xin : NULL;
    TU_OK(cc_batchnorm_backward_act(tu_device(), xin, beta, dy, cs->act, gamma, mean, inv, dx,
                                    dgamma, dbeta));
    if (dx) o.dx = tu_download(dx);
    o.dgamma = tu_download(dgamma);
    o.dbeta = tu_download(dbeta);
    clcnn_tensor *ts[] = {x,    dy,  res,    gamma, beta,  rmean,  rvar,
                          mean, inv, dgamma, dbeta, own_y, own_dx, xin != x ? xin : NULL};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
        clcnn_tensor_free(ts[i]);
    free(hx), free(hdy), free(hres), free(hc);
    unsetenv("CLCNN_BN_KERNELS");
    return o;
}

static int same(const char *what, const bn_case *cs, const float *a, const float *b, size_t n) {
    if (!a && !b) return 1;
    if (!a || !b || memcmp(a, b, n * sizeof *a) != 0) {
        size_t i = 0;
        while (a && b && i < n && memcmp(a + i, b + i, sizeof *a) == 0)
            i++;
        print_message("%s differs (shape %zux%zux%zux%zu act %d affine %d res %d y_at %d dx_at "
                      "%d) at %zu: %.9g vs %.9g\n",
                      what, cs->shape[0], cs->shape[1], cs->shape[2], cs->shape[3], cs->act,
                      cs->affine, cs->res, cs->y_at, cs->dx_at, i, a && i < n ? a[i] : 0.0,
                      b && i < n ? b[i] : 0.0);
        return 0;
    }
    return 1;
}

static void test_same_bits(void **state) {
    (void)state;
    /* planes of one chunk, of several (4096 values each) with tails, exactly one chunk, of
     * 1 value ((n, c)) */
    static const size_t shapes[][4] = {{3, 5, 9, 11}, {2, 3, 70, 71}, {1, 4, 64, 64},
                                       {5, 16, 4, 4}, {7, 9, 1, 1},   {2, 2, 129, 130},
                                       {4, 3, 17, 1}};
    static const int ndims[] = {4, 4, 4, 4, 2, 4, 4};
    static const int acts[] = {CLCNN_ACT_ID_NONE, CLCNN_ACT_ID_RELU, CLCNN_ACT_ID_RELU6};
    int ok = 1, k = 0;
    for (size_t s = 0; s < sizeof ndims / sizeof *ndims; s++) {
        if (tu_small() && shapes[s][2] * shapes[s][3] > 4096) continue; /* a simulator's minutes */
        for (size_t ai = 0; ai < sizeof acts / sizeof *acts; ai++) {
            const int act = acts[ai];
            bn_case cs = {{shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]},
                          ndims[s],
                          act,
                          (k & 1) == 0,
                          (k & 2) == 0,
                          act != CLCNN_ACT_ID_NONE && (k & 4) == 0,
                          k % 3,
                          k % 4};
            if (cs.y_at == 2 && !cs.res) cs.y_at = 0;
            k++;
            size_t numel =
                cs.shape[0] * cs.shape[1] * (cs.ndim == 4 ? cs.shape[2] * cs.shape[3] : 1);
            size_t c = cs.shape[1];
            bn_out a = run_case(&cs, "chunk", 900 + (uint64_t)k);
            bn_out b = run_case(&cs, "channel", 900 + (uint64_t)k);
            ok &= same("y", &cs, a.y, b.y, numel) && same("mean", &cs, a.mean, b.mean, c) &&
                  same("invstd", &cs, a.inv, b.inv, c) &&
                  same("running mean", &cs, a.rmean, b.rmean, c) &&
                  same("running var", &cs, a.rvar, b.rvar, c) &&
                  same("dx", &cs, a.dx, b.dx, numel) &&
                  same("dgamma", &cs, a.dgamma, b.dgamma, c) &&
                  same("dbeta", &cs, a.dbeta, b.dbeta, c);
            out_free(&a), out_free(&b);
        }
    }
    assert_true(ok);
}

/* Which kernels a forward and a backward of (n, c, hw, 1) launch on a fresh device
 * ($CLCNN_TRACE_KERNELS): bit 0 set where the forward ran bn_fwd_channel (else the chunk
 * kernels), bit 1 where the backward ran bn_bwd_channel; -1 when either ran both or
 * neither. */
static int launched_channel(size_t n, size_t c, size_t hw, const char *dir) {
    tu_trace_begin(dir);
    clcnn_device *d = tu_device_fresh();
    size_t shape[4] = {n, c, hw, 1};
    clcnn_tensor *t[4] = {NULL, NULL, NULL, NULL}; /* x, y (and dx), mean, invstd */
    TU_OK(clcnn_tensor_create(d, CLCNN_F32, 4, shape, &t[0]));
    TU_OK(clcnn_tensor_create(d, CLCNN_F32, 4, shape, &t[1]));
    TU_OK(clcnn_tensor_create(d, CLCNN_F32, 1, &c, &t[2]));
    TU_OK(clcnn_tensor_create(d, CLCNN_F32, 1, &c, &t[3]));
    TU_OK(clcnn_tensor_fill(t[0], 1.0f));
    TU_OK(clcnn_batchnorm_forward_train(d, t[0], NULL, NULL, NULL, NULL, 0.1f, 1e-5f, t[1], t[2],
                                        t[3]));
    TU_OK(clcnn_batchnorm_backward(d, t[0], t[1], NULL, t[2], t[3], t[1], NULL, NULL));
    TU_OK(clcnn_device_finish(d));
    for (int k = 0; k < 4; k++)
        clcnn_tensor_free(t[k]);
    clcnn_device_close(d);
    char *trace = tu_trace_end(dir);
    assert_non_null(trace);
    int fc = strstr(trace, "bn_fwd_channel") != NULL, fk = strstr(trace, "bn_part_sum") != NULL;
    int bc = strstr(trace, "bn_bwd_channel") != NULL, bk = strstr(trace, "bn_bwd_part") != NULL;
    int r = fc == fk || bc == bk ? -1 : fc | bc << 1;
    if (r < 0) print_message("n %zu c %zu hw %zu launched:\n%s", n, c, hw, trace);
    free(trace);
    return r;
}

/* The rule: whole-channel kernels where a channel's values of one tensor fit 128 KB
 * (forward) or 256 KB (backward) and there are at least 4 channels per compute unit, else
 * the chunk kernels (CPU devices: GPUs run the group kernels). */
static void test_rule(void **state) {
    (void)state;
    const clcnn_device_info *info = clcnn_device_get_info(tu_device());
    if (info->type == CLCNN_DEVICE_GPU || tu_small()) skip();
    size_t c = 4 * (info->compute_units ? info->compute_units : 1);
    char *dir = tu_temp_dir("bn-rule");
    assert_int_equal(launched_channel(2, c, 16384, dir), 3);   /* 128 KB: both */
    assert_int_equal(launched_channel(2, c, 16385, dir), 2);   /* one value more: backward */
    assert_int_equal(launched_channel(2, c, 32768, dir), 2);   /* 256 KB */
    assert_int_equal(launched_channel(2, c, 32769, dir), 0);   /* past it: neither */
    assert_int_equal(launched_channel(8, c - 1, 100, dir), 0); /* too few channels */
    tu_remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits),
        cmocka_unit_test(test_rule),
    };
    return cmocka_run_group_tests(tests, tu_setup_device, tu_teardown_device);
}
