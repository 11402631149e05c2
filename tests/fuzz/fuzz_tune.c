/* Fuzz the reader of the per-device tuning file (lib/tune/tune_file.c,
 * cc_tune_record_read): JSON through jansson, then every CLBlast parameter checked
 * against CLBlast's rules (divisibility, powers of two, ranges), and every convolution
 * winner (lib/tune/conv_db.c: keys, ranges, geometry, algorithm names, duplicates).
 * Checks: no crash (e.g. no division by a zero parameter), no sanitizer report, no
 * leak; a success gives parameters that pass the validity rules again; a failure
 * leaves the record untouched and sets a message; the convolution entries of a valid
 * file parse again into real passes and algorithms. */
#include "fuzz_common.h"

#include <jansson.h>

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
        json_t *root = json_load_file(tune_path, JSON_REJECT_DUPLICATES, NULL);
        json_t *sec = root ? json_object_get(root, "conv2d") : NULL;
        if (sec) {
            cc_conv_entry *e = NULL;
            size_t n = 0;
            FUZZ_CHECK(cc_conv_entries_parse(sec, tune_path, &e, &n) == CLCNN_OK);
            for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(e[i].pass >= 0 && e[i].pass < CLCNN_CONV_PASS_COUNT);
                FUZZ_CHECK(e[i].algo > CLCNN_CONV_AUTO && e[i].algo < CLCNN_CONV_ALGO_COUNT);
                FUZZ_CHECK(e[i].ms >= 0 && e[i].n > 0 && e[i].groups > 0);
            }
            free(e);
        }
        json_decref(root);
    } else {
        FUZZ_CHECK(memcmp(&rec, &before, sizeof rec) == 0);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
    }
    return 0;
}
