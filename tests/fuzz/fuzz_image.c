/* Fuzz the image reader of the clcnn command (tools/clcnn/image.c, image_read_gray):
 * PGM (P5 binary, P2 text) and PNG through libpng, chosen by content. A decoded image is
 * also resized to 28x28 (what `clcnn predict` does next).
 * Checks: no crash, no sanitizer report, no leak; success gives 1..IMAGE_MAX_SIDE sides
 * and pixels in [0, 1]; a failure sets a message. */
#include "../../tools/clcnn/image.h"
#include "fuzz_common.h"

#include "clcnn/status.h"

static char image_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_temp_path(image_path, sizeof image_path, "image", "");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(image_path, data, size);
    image img;
    clcnn_clear_error();
    clcnn_status s = image_read_gray(image_path, &img);
    if (s == CLCNN_OK) {
        FUZZ_CHECK(img.w >= 1 && img.h >= 1 && img.w <= IMAGE_MAX_SIDE && img.h <= IMAGE_MAX_SIDE);
        size_t n = (size_t)img.w * (size_t)img.h;
        for (size_t i = 0; i < n; i += 1 + n / 64)
            FUZZ_CHECK(img.px[i] >= 0.0f && img.px[i] <= 1.0f);
        FUZZ_CHECK(img.px[n - 1] >= 0.0f && img.px[n - 1] <= 1.0f);
        float out[28 * 28];
        image_resize(&img, 28, 28, out);
        image_free(&img);
    } else {
        FUZZ_CHECK(img.px == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
    return 0;
}
