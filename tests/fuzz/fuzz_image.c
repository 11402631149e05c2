/* Fuzz the image reader of the clcnn command (tools/clcnn/image.c, image_read): PGM (P5
 * binary, P2 text), PNG through libpng and JPEG through libjpeg-turbo, chosen by content,
 * each read as gray and as RGB. A decoded gray image is also resized to 28x28 (what
 * `clcnn predict` does with a checkpoint), an RGB one resized and centre-cropped to 8x8
 * (the ONNX path's preprocessing, tools/clcnn/preprocess.c).
 * Checks: no crash, no sanitizer report, no leak; success gives 1..IMAGE_MAX_SIDE sides,
 * at most IMAGE_MAX_PIXELS pixels and values in [0, 1]; a failure sets a message. */
#include "../../tools/clcnn/image.h"
#include "../../tools/clcnn/preprocess.h"
#include "fuzz_common.h"

#include "clcnn/status.h"

static char image_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_temp_path(image_path, sizeof image_path, "image", "");
    return 0;
}

static void check_one(int channels) {
    image img;
    clcnn_clear_error();
    clcnn_status s = image_read(image_path, channels, &img);
    if (s == CLCNN_OK) {
        FUZZ_CHECK(img.c == channels);
        FUZZ_CHECK(img.w >= 1 && img.h >= 1 && img.w <= IMAGE_MAX_SIDE && img.h <= IMAGE_MAX_SIDE);
        FUZZ_CHECK((size_t)img.w * (size_t)img.h <= IMAGE_MAX_PIXELS);
        size_t n = (size_t)img.w * (size_t)img.h * (size_t)channels;
        for (size_t i = 0; i < n; i += 1 + n / 64)
            FUZZ_CHECK(img.px[i] >= 0.0f && img.px[i] <= 1.0f);
        FUZZ_CHECK(img.px[n - 1] >= 0.0f && img.px[n - 1] <= 1.0f);
        if (channels == 1) {
            float out[28 * 28];
            image_resize(&img, 28, 28, out);
        } else {
            float out[3 * 8 * 8];
            preprocess_params p = {.size = 8, .h = 8, .w = 8, .c = 3, .std = {1, 1, 1}};
            FUZZ_CHECK(preprocess_image(&img, &p, out) == CLCNN_OK);
            for (int i = 0; i < 3 * 8 * 8; i++)
                FUZZ_CHECK(out[i] >= -1e-5f && out[i] <= 1.00001f);
        }
        image_free(&img);
    } else {
        FUZZ_CHECK(img.px == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(image_path, data, size);
    check_one(1);
    check_one(3);
    return 0;
}
