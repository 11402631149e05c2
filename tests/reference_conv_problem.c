/* Shared support for the conv2d tests; see reference_conv_problem.h. */
#include "reference_conv_problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

ref_conv rcp_conv(int n, int c, int h, int w, int k, int r, int s, int stride, int pad, int dil,
                  int groups) {
    ref_conv cv = {.n = n,
                   .c = c,
                   .h = h,
                   .w = w,
                   .k = k,
                   .r = r,
                   .s = s,
                   .stride_h = stride,
                   .stride_w = stride,
                   .pad_h = pad,
                   .pad_w = pad,
                   .dilation_h = dil,
                   .dilation_w = dil,
                   .groups = groups};
    return cv;
}

clcnn_conv2d_desc rcp_make_desc(const ref_conv *cv, clcnn_conv_algo algo) {
    clcnn_conv2d_desc d = clcnn_conv2d_desc_default();
    d.stride_h = cv->stride_h;
    d.stride_w = cv->stride_w;
    d.pad_h = cv->pad_h;
    d.pad_w = cv->pad_w;
    d.dilation_h = cv->dilation_h;
    d.dilation_w = cv->dilation_w;
    d.groups = cv->groups;
    d.algo = algo;
    return d;
}

void rcp_describe(const ref_conv *cv, clcnn_conv_algo algo, int bias, int act, char *buf,
                  size_t cap) {
    snprintf(buf, cap,
             "%s x %dx%dx%dx%d w %dx%dx%dx%d stride %dx%d pad %dx%d dil %dx%d groups %d bias %d "
             "act %d",
             clcnn_conv_algo_name(algo), cv->n, cv->c, cv->h, cv->w, cv->k, cv->c / cv->groups,
             cv->r, cv->s, cv->stride_h, cv->stride_w, cv->pad_h, cv->pad_w, cv->dilation_h,
             cv->dilation_w, cv->groups, bias, act);
}

double *rcp_to_double(const float *f, size_t n) {
    double *d = malloc(n * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
    return d;
}

void rcp_problem_init(rcp_problem *pb, const ref_conv *cv, int bias, int act, uint64_t seed) {
    memset(pb, 0, sizeof *pb);
    pb->cv = *cv;
    assert_true(ref_conv_out(&pb->cv));
    pb->bias = bias;
    pb->act = act;
    tu_rng rng = tu_rng_seed(seed);
    size_t nx = ref_conv_x_size(&pb->cv), nw = ref_conv_w_size(&pb->cv);
    pb->x = malloc(nx * sizeof(float));
    pb->w = malloc(nw * sizeof(float));
    pb->b = malloc((size_t)cv->k * sizeof(float));
    pb->ref = malloc(ref_conv_y_size(&pb->cv) * sizeof(double));
    assert_true(pb->x && pb->w && pb->b && pb->ref);
    tu_fill_uniform(&rng, pb->x, nx, -1, 1);
    tu_fill_uniform(&rng, pb->w, nw, -1, 1);
    tu_fill_uniform(&rng, pb->b, (size_t)cv->k, -1, 1);
    double *xd = rcp_to_double(pb->x, nx), *wd = rcp_to_double(pb->w, nw);
    double *bd = rcp_to_double(pb->b, (size_t)cv->k);
    ref_conv2d_forward(&pb->cv, xd, wd, bias ? bd : NULL, act, 0.01, pb->ref);
    free(xd);
    free(wd);
    free(bd);
}

void rcp_problem_free(rcp_problem *pb) {
    free(pb->x);
    free(pb->w);
    free(pb->b);
    free(pb->ref);
}

float *rcp_run_forward(const rcp_problem *pb, clcnn_conv_algo algo) {
    const ref_conv *cv = &pb->cv;
    clcnn_device *dev = tu_device();
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w};
    size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
    clcnn_tensor *x = tu_tensor_from(4, xs, pb->x), *w = tu_tensor_from(4, ws, pb->w);
    clcnn_tensor *b = pb->bias ? tu_tensor_from(1, (size_t[]){cv->k}, pb->b) : NULL;
    clcnn_tensor *y = tu_tensor_from(4, ys, NULL);
    TU_OK(clcnn_tensor_fill(y, NAN));
    clcnn_conv2d_desc d = rcp_make_desc(cv, algo);
    size_t got_ys[4];
    TU_OK(clcnn_conv2d_output_shape(&d, xs, ws, got_ys));
    assert_memory_equal(got_ys, ys, sizeof ys);
    TU_OK(clcnn_conv2d_forward(dev, &d, x, w, b, y, (clcnn_activation)pb->act));
    float *out = tu_download(y);
    clcnn_tensor_free(x);
    clcnn_tensor_free(w);
    clcnn_tensor_free(b);
    clcnn_tensor_free(y);
    return out;
}

ref_conv rcp_random_conv(tu_rng *rng, int max_n) {
    for (;;) {
        ref_conv cv = {0};
        int kind = tu_rng_int(rng, 0, 9);
        int groups = 1, cpg = tu_rng_int(rng, 1, 6), kpg = tu_rng_int(rng, 1, 9);
        if (kind == 7) groups = tu_rng_int(rng, 2, 3);
        if (kind >= 8) { /* depthwise, sometimes with a channel multiplier */
            groups = tu_rng_int(rng, 1, 8);
            cpg = 1;
            kpg = kind == 8 ? 1 : 2;
        }
        cv.groups = groups;
        cv.c = groups * cpg;
        cv.k = groups * kpg;
        cv.n = tu_rng_int(rng, 1, max_n);
        cv.h = tu_rng_int(rng, 1, 14);
        cv.w = tu_rng_int(rng, 1, 14);
        cv.r = tu_rng_int(rng, 1, 5);
        cv.s = tu_rng_int(rng, 1, 5);
        cv.stride_h = tu_rng_int(rng, 1, 4);
        cv.stride_w = tu_rng_int(rng, 1, 4);
        cv.pad_h = tu_rng_int(rng, 0, 5);
        cv.pad_w = tu_rng_int(rng, 0, 5);
        cv.dilation_h = tu_rng_int(rng, 1, 10) > 7 ? tu_rng_int(rng, 2, 3) : 1;
        cv.dilation_w = tu_rng_int(rng, 1, 10) > 7 ? tu_rng_int(rng, 2, 3) : 1;
        if (ref_conv_out(&cv)) return cv;
    }
}

clcnn_tensor *rcp_offset_tensor(int ndim, const size_t *shape, size_t off, const float *data) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    clcnn_tensor *t = NULL;
    TU_OK(clcnn_tensor_create(tu_device(), CLCNN_F32, 1, (size_t[]){numel + off + 5}, &t));
    TU_OK(clcnn_tensor_fill(t, NAN));
    t->ndim = ndim;
    size_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = stride;
        stride *= shape[i];
    }
    t->numel = numel;
    t->offset = off;
    if (data)
        assert_int_equal(clEnqueueWriteBuffer(clcnn_device_queue(tu_device()), clcnn_tensor_mem(t),
                                              CL_TRUE, off * sizeof(float), numel * sizeof(float),
                                              data, 0, NULL, NULL),
                         CL_SUCCESS);
    return t;
}

int rcp_check_offsets(const rcp_problem *pb, clcnn_conv_algo algo, double atol, double rtol) {
    const ref_conv *cv = &pb->cv;
    size_t xs[4] = {cv->n, cv->c, cv->h, cv->w};
    size_t ws[4] = {cv->k, cv->c / cv->groups, cv->r, cv->s};
    size_t ys[4] = {cv->n, cv->k, cv->p, cv->q};
    clcnn_tensor *x = rcp_offset_tensor(4, xs, 3, pb->x), *w = rcp_offset_tensor(4, ws, 17, pb->w);
    clcnn_tensor *b = pb->bias ? rcp_offset_tensor(1, (size_t[]){cv->k}, 1, pb->b) : NULL;
    clcnn_tensor *y = rcp_offset_tensor(4, ys, 11, NULL);
    clcnn_conv2d_desc d = rcp_make_desc(cv, algo);
    TU_OK(clcnn_conv2d_forward(tu_device(), &d, x, w, b, y, (clcnn_activation)pb->act));
    size_t ny = ref_conv_y_size(cv);
    float *all = malloc((ny + 16) * sizeof(float));
    assert_non_null(all);
    assert_int_equal(clEnqueueReadBuffer(clcnn_device_queue(tu_device()), clcnn_tensor_mem(y),
                                         CL_TRUE, 0, (ny + 16) * sizeof(float), all, 0, NULL, NULL),
                     CL_SUCCESS);
    char what[320];
    rcp_describe(cv, algo, pb->bias, pb->act, what, sizeof what);
    strncat(what, " (offsets)", sizeof what - strlen(what) - 1);
    int ok = tu_close(what, all + 11, pb->ref, ny, atol, rtol);
    for (size_t j = 0; j < 11; j++)
        ok &= isnan(all[j]);
    for (size_t j = ny + 11; j < ny + 16; j++)
        ok &= isnan(all[j]);
    free(all);
    clcnn_tensor *all_t[] = {x, w, b, y};
    for (int i = 0; i < 4; i++)
        clcnn_tensor_free(all_t[i]);
    return ok;
}

void rcp_expect_refused(clcnn_conv_algo algo, const ref_conv *cv, int pass, const char *needle) {
    clcnn_device *dev = tu_device();
    ref_conv s = *cv;
    assert_true(ref_conv_out(&s));
    clcnn_tensor *x = NULL, *w = NULL, *y = NULL, *b = NULL;
    TU_OK(clcnn_tensor_create4(dev, s.n, s.c, s.h, s.w, &x));
    TU_OK(clcnn_tensor_create4(dev, s.k, s.c / s.groups, s.r, s.s, &w));
    TU_OK(clcnn_tensor_create4(dev, s.n, s.k, s.p, s.q, &y));
    TU_OK(clcnn_tensor_create(dev, CLCNN_F32, 1, (size_t[]){s.k}, &b));
    TU_OK(clcnn_tensor_fill(x, 1.0f));
    TU_OK(clcnn_tensor_fill(w, 1.0f));
    TU_OK(clcnn_tensor_fill(y, 42.0f));
    TU_OK(clcnn_tensor_fill(b, 42.0f));
    clcnn_conv2d_desc d = rcp_make_desc(&s, algo);
    clcnn_status st;
    clcnn_tensor *out = pass == 1 ? x : pass == 2 ? w : y; /* dx: x's shape, dw: w's */
    TU_OK(clcnn_tensor_fill(out, 42.0f));
    if (pass == 0)
        st = clcnn_conv2d_forward(dev, &d, x, w, b, y, CLCNN_ACT_RELU);
    else if (pass == 1)
        st = clcnn_conv2d_backward_data(dev, &d, y, w, x);
    else
        st = clcnn_conv2d_backward_filter(dev, &d, x, y, w, b);
    if (st != CLCNN_ERR_UNSUPPORTED || !strstr(clcnn_last_error(), needle) ||
        !strstr(clcnn_last_error(), clcnn_conv_algo_name(algo)))
        fail_msg("%s, pass %d: got %s '%s', want unsupported containing '%s'",
                 clcnn_conv_algo_name(algo), pass, clcnn_status_str(st), clcnn_last_error(),
                 needle);
    clcnn_tensor *outs[] = {out, pass == 2 ? b : NULL};
    for (int i = 0; i < 2 && outs[i]; i++) {
        float *h = tu_download(outs[i]);
        for (size_t j = 0; j < clcnn_tensor_numel(outs[i]); j++)
            if (h[j] != 42.0f) fail_msg("pass %d: output [%zu] = %g was written", pass, j, h[j]);
        free(h);
    }
    clcnn_tensor *all[] = {x, w, y, b};
    for (int i = 0; i < 4; i++)
        clcnn_tensor_free(all[i]);
}

void rcp_arena_init(rcp_arena *a, const size_t xs[4], const size_t ys[4], int residual, int inplace,
                    const float *x, const float *z) {
    memset(a, 0, sizeof *a);
    a->nx = xs[0] * xs[1] * xs[2] * xs[3];
    a->ny = ys[0] * ys[1] * ys[2] * ys[3];
    a->x_off = 3;
    a->y_off = a->x_off + a->nx + 7;
    a->z_off = inplace ? a->y_off : a->y_off + a->ny + 5;
    a->total = (residual && !inplace ? a->z_off + a->ny : a->y_off + a->ny) + 6;
    a->base = tu_tensor_new(CLCNN_F32, 1, (size_t[]){a->total});
    TU_OK(clcnn_tensor_fill(a->base, NAN));
    a->x = cc_tensor_view_at(a->base, 4, xs, a->x_off);
    a->y = cc_tensor_view_at(a->base, 4, ys, a->y_off);
    assert_non_null(a->x);
    assert_non_null(a->y);
    TU_OK(clcnn_tensor_upload(a->x, x, a->nx * sizeof(float)));
    if (residual) {
        a->z = inplace ? a->y : cc_tensor_view_at(a->base, 4, ys, a->z_off);
        assert_non_null(a->z);
        TU_OK(clcnn_tensor_upload(a->z, z, a->ny * sizeof(float)));
    }
}

void rcp_arena_free(rcp_arena *a) {
    if (a->z != a->y) clcnn_tensor_free(a->z);
    clcnn_tensor_free(a->x);
    clcnn_tensor_free(a->y);
    clcnn_tensor_free(a->base);
}

int rcp_arena_guards_ok(const rcp_arena *a, const char *what) {
    float *all = tu_download(a->base);
    int ok = 1;
    for (size_t i = 0; i < a->total; i++) {
        int in_x = i >= a->x_off && i < a->x_off + a->nx;
        int in_y = i >= a->y_off && i < a->y_off + a->ny;
        int in_z = a->z && i >= a->z_off && i < a->z_off + a->ny;
        if (!in_x && !in_y && !in_z && !isnan(all[i])) ok = 0;
    }
    if (!ok) fprintf(stderr, "%s: wrote outside y\n", what);
    free(all);
    return ok;
}
