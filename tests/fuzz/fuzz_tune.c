/* Fuzz the reader of the per-device GEMM tuning file (lib/tune/tune_file.c,
 * cc_tune_record_read): JSON through jansson, then every CLBlast parameter checked
 * against CLBlast's rules (divisibility, powers of two, ranges).
 * Checks: no crash (e.g. no division by a zero parameter), no sanitizer report, no
 * leak; a success gives parameters that pass the validity rules again; a failure
 * leaves the record untouched and sets a message. */
#include "fuzz_common.h"
#include "tune/tune_internal.h"

static char tune_path[512];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_temp_path(tune_path, sizeof tune_path, "tune", ".json");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(tune_path, data, size);
    cc_tune_record rec, before;
    memset(&rec, 0xab, sizeof rec);
    before = rec;
    clcnn_clear_error();
    clcnn_status s = cc_tune_record_read(tune_path, &rec);
    if (s == CLCNN_OK) {
        FUZZ_CHECK(rec.device[0] != '\0');
        if (rec.has_xgemm) FUZZ_CHECK(cc_xgemm_invalid(rec.xgemm, 0, 0) == NULL);
        if (rec.has_direct) FUZZ_CHECK(cc_xgemm_direct_invalid(rec.direct, 0, 0) == NULL);
    } else {
        FUZZ_CHECK(memcmp(&rec, &before, sizeof rec) == 0);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
    return 0;
}
