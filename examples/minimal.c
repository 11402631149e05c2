/* The README example: build a small CNN, train it a few steps, save a checkpoint.
 * Built as build/clcnn-example and run by ctest (test_example), so it stays true. */
#include <clcnn/clcnn.h>
#include <stdio.h>

int main(void) {
    clcnn_device *dev = NULL;
    clcnn_net *net = NULL;
    clcnn_optimizer *opt = NULL;
    clcnn_tensor *x = NULL, *labels = NULL;
    clcnn_status s;

    /* NULL: $CLCNN_DEVICE, else the first GPU, else the first CPU. */
    if ((s = clcnn_device_open(NULL, &dev)) != CLCNN_OK) goto fail;

    /* 28x28 grey images -> conv 16 3x3 + ReLU -> 2x2 max pool -> 10 classes. */
    clcnn_conv2d_desc conv = clcnn_conv2d_desc_default();
    conv.pad_h = conv.pad_w = 1;
    clcnn_pool2d_desc pool = {
        .mode = CLCNN_POOL_MAX, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    if ((s = clcnn_net_create(dev, 1, 28, 28, &net)) ||
        (s = clcnn_net_add_conv2d(net, 16, 3, 3, &conv, 1)) ||
        (s = clcnn_net_add_activation(net, CLCNN_ACT_RELU, 0)) ||
        (s = clcnn_net_add_pool2d(net, &pool)) || (s = clcnn_net_add_flatten(net)) ||
        (s = clcnn_net_add_linear(net, 10, 1)) || (s = clcnn_net_init(net, CLCNN_INIT_HE, 42)))
        goto fail;
    clcnn_optim_config cfg = clcnn_optim_default(CLCNN_OPTIM_ADAM);
    if ((s = clcnn_optimizer_create(net, &cfg, &opt))) goto fail;

    /* One batch of 8 (real programs fill it from their data; here: all zero). */
    static float images[8 * 28 * 28];
    static int classes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    if ((s = clcnn_tensor_create4(dev, 8, 1, 28, 28, &x)) ||
        (s = clcnn_tensor_upload(x, images, sizeof images)) ||
        (s = clcnn_tensor_create(dev, CLCNN_I32, 1, (size_t[]){8}, &labels)) ||
        (s = clcnn_tensor_upload(labels, classes, sizeof classes)))
        goto fail;

    for (int step = 0; step < 10; step++) {
        float loss;
        int correct;
        if ((s = clcnn_net_loss_backward(net, x, labels, &loss, &correct)) ||
            (s = clcnn_optimizer_step(opt, cfg.lr)))
            goto fail;
        printf("step %d: loss %.4f, %d/8 correct\n", step, loss, correct);
    }
    s = clcnn_checkpoint_save(net, opt, "example.safetensors", NULL);
fail:
    if (s != CLCNN_OK) fprintf(stderr, "clcnn: %s: %s\n", clcnn_status_str(s), clcnn_last_error());
    clcnn_tensor_free(x);
    clcnn_tensor_free(labels);
    clcnn_optimizer_free(opt);
    clcnn_net_free(net);
    clcnn_device_close(dev);
    return s == CLCNN_OK ? 0 : 1;
}
