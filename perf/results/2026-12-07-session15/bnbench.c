#include <clcnn/clcnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]),
        runs = argc > 4 ? atoi(argv[4]) : 20, bwd = argc > 5 ? atoi(argv[5]) : 0;
    clcnn_device *dev;
    if (clcnn_device_open(NULL, &dev)) {
        puts(clcnn_last_error());
        return 1;
    }
    size_t xs[4] = {n, c, h, h}, cs[1] = {c};
    clcnn_tensor *x, *y, *g, *b, *rm, *rv, *sm, *si, *dy, *dx, *dg, *db;
    clcnn_tensor_create(dev, CLCNN_F32, 4, xs, &x);
    clcnn_tensor_create(dev, CLCNN_F32, 4, xs, &y);
    clcnn_tensor_create(dev, CLCNN_F32, 4, xs, &dy);
    clcnn_tensor_create(dev, CLCNN_F32, 4, xs, &dx);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &g);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &b);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &rm);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &rv);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &sm);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &si);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &dg);
    clcnn_tensor_create(dev, CLCNN_F32, 1, cs, &db);
    size_t N = (size_t)n * c * h * h;
    float *hx = malloc(N * 4);
    for (size_t i = 0; i < N; i++)
        hx[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    clcnn_tensor_upload(x, hx, N * 4);
    clcnn_tensor_upload(dy, hx, N * 4);
    clcnn_tensor_fill(g, 1.0f);
    clcnn_tensor_fill(b, 0.1f);
    clcnn_tensor_fill(rm, 0);
    clcnn_tensor_fill(rv, 1);
    clcnn_batchnorm_forward_train(dev, x, g, b, rm, rv, 0.1f, 1e-5f, y, sm, si);
    clcnn_device_finish(dev);
    double best = 1e9;
    for (int r = 0; r < runs + 1; r++) {
        clcnn_device_finish(dev);
        double t0 = now();
        if (!bwd)
            clcnn_batchnorm_forward_train(dev, x, g, b, rm, rv, 0.1f, 1e-5f, y, sm, si);
        else
            clcnn_batchnorm_backward(dev, x, dy, g, sm, si, dx, dg, db);
        clcnn_device_finish(dev);
        double t = now() - t0;
        if (r && t < best) best = t;
    }
    printf("%s n%d c%d %dx%d: %.3f ms (min of %d)\n", bwd ? "bwd" : "fwd", n, c, h, h, best, runs);
    clcnn_device_close(dev);
    return 0;
}
