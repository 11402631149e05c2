/* Fuzz the device selector parser: clcnn_device_open with arbitrary selector strings,
 * directly and through $CLCNN_DEVICE (selector NULL). Every call enumerates the
 * platforms, so keep inputs short (run with -max_len=64).
 * Checks: no crash, no sanitizer report, no leak; success gives a handle that closes;
 * a failure is CLCNN_ERR_NO_DEVICE (or another error) with a message. */
#include "clcnn/device.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 256) return 0;
    char sel[257];
    memcpy(sel, data + 1, size - 1);
    sel[size - 1] = '\0'; /* an embedded NUL simply ends the selector early */
    clcnn_device *dev = NULL;
    clcnn_clear_error();
    clcnn_status s;
    if (data[0] & 1) {
        setenv("CLCNN_DEVICE", sel, 1);
        s = clcnn_device_open(NULL, &dev);
        unsetenv("CLCNN_DEVICE");
    } else {
        s = clcnn_device_open(sel, &dev);
    }
    if (s == CLCNN_OK) {
        FUZZ_CHECK(dev != NULL);
        FUZZ_CHECK(clcnn_device_get_info(dev)->name[0] != '\0');
        clcnn_device_close(dev);
    } else {
        FUZZ_CHECK(dev == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
    return 0;
}
