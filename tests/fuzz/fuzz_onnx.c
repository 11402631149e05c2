/* Fuzz the ONNX loader (lib/graph/onnx_*.c): the input is an ONNX file's bytes, loaded from
 * memory with no folder (external data refused) and, when it loads, checked again and
 * inspected node by node. Checks: no crash, hang or sanitizer report, no leak; a failed
 * load returns no graph and says why.
 * Names carry an ox_ prefix: tests/test_fuzz_corpus.c includes every harness in one file. */
#include "clcnn/clcnn.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    clcnn_graph *g = (clcnn_graph *)1;
    clcnn_clear_error();
    clcnn_status s = clcnn_graph_load_onnx_memory(data, size, NULL, &g);
    if (s != CLCNN_OK) {
        FUZZ_CHECK(g == NULL);
        FUZZ_CHECK(clcnn_last_error()[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(g != NULL);
    FUZZ_CHECK(clcnn_graph_check(g) == CLCNN_OK);
    for (int i = 0; i < clcnn_graph_num_nodes(g); i++) {
        clcnn_node_info ox_info;
        FUZZ_CHECK(clcnn_graph_node_info(g, i, &ox_info) == CLCNN_OK);
    }
    clcnn_graph_free(g);
    return 0;
}
