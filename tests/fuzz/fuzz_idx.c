/* Fuzz the IDX reader (lib/data/idx.c), plain and gzip, and the dataset loader on top.
 *
 * Input: the whole input is read as an IDX label file (1 dim) and as an image file
 * (3 dims) by cc_idx_read_u8, whole and its first 0-3 items only; then it is split in two at the
 * offset given by its first two bytes, and the halves are loaded as an (images, labels) pair by
 * clcnn_dataset_load_idx, which also cross-checks counts and label ranges. A dataset
 * that loads is read back through clcnn_dataset_gather.
 * Checks: no crash, no sanitizer report, no leak; a success returns consistent shapes;
 * a failure sets a message. */
#include "clcnn/data.h"
#include "data/idx.h"
#include "fuzz_common.h"

static char idx_path_all[512], idx_path_img[512], idx_path_lab[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_temp_path(idx_path_all, sizeof idx_path_all, "idx-all", "");
    fuzz_temp_path(idx_path_img, sizeof idx_path_img, "idx-img", "");
    fuzz_temp_path(idx_path_lab, sizeof idx_path_lab, "idx-lab", ".gz"); /* the .gz name rule too */
    return 0;
}

static void idx_read_one(int ndims, uint64_t max_items) {
    uint32_t dims[3] = {0, 0, 0}, items = 0;
    uint8_t *data = NULL;
    clcnn_clear_error();
    clcnn_status s = cc_idx_read_u8(idx_path_all, ndims, max_items, dims, &items, &data);
    if (s == CLCNN_OK) {
        FUZZ_CHECK(items > 0 && items <= dims[0]);
        FUZZ_CHECK(max_items == 0 ? items == dims[0] : items <= max_items);
        uint64_t total = items;
        for (int i = 1; i < ndims; i++)
            total *= dims[i];
        FUZZ_CHECK(total > 0 && data != NULL);
        volatile uint8_t sink = data[total - 1]; /* ASan: the block holds total bytes */
        (void)sink;
        free(data);
    } else {
        FUZZ_CHECK(data == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(idx_path_all, data, size);
    idx_read_one(1, 0);
    idx_read_one(3, 0);
    idx_read_one(1, size ? data[0] % 4 : 1); /* the first items only (0: all) */
    idx_read_one(3, size ? data[0] % 4 : 1);

    if (size < 2) return 0;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (size - 1);
    fuzz_write_file(idx_path_img, data + 2, split);
    fuzz_write_file(idx_path_lab, data + 2 + split, size - 2 - split);
    clcnn_dataset *ds = NULL;
    clcnn_clear_error();
    clcnn_status s = clcnn_dataset_load_idx(idx_path_img, idx_path_lab, 10, &ds);
    if (s == CLCNN_OK) {
        int c = 0, h = 0, w = 0;
        clcnn_dataset_shape(ds, &c, &h, &w);
        size_t n = clcnn_dataset_size(ds), per = (size_t)c * h * w;
        FUZZ_CHECK(n > 0 && per > 0);
        size_t idx[2] = {0, n - 1};
        float *x = malloc(2 * per * sizeof *x);
        int32_t lab[2];
        if (x && clcnn_dataset_gather(ds, idx, 2, x, lab) == CLCNN_OK)
            FUZZ_CHECK(lab[0] >= 0 && lab[0] < 10 && lab[1] >= 0 && lab[1] < 10);
        free(x);
        clcnn_dataset_free(ds);
    } else {
        FUZZ_CHECK(ds == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
    return 0;
}
