/* Helpers shared by every kernel file (expanded into each .cl at build time). */
#ifndef CLCNN_CL_COMMON_H
#define CLCNN_CL_COMMON_H

#include "clcnn_ids.h"

/* PASS: in files whose kernels the host builds as separate programs per pass (their top
 * comment says which kernels each value holds), the kernels this program holds; 0 = all,
 * so such a file still compiles on its own. */
#ifndef PASS
#define PASS 0
#endif
#if PASS < 0 || PASS > 3
#error "PASS must be 0, 1, 2 or 3"
#endif

/* Apply a fused activation chosen by ACT_* id at run time. */
inline float cc_activate(float v, int act, float alpha) {
    if (act == CLCNN_ACT_ID_RELU) return fmax(v, 0.0f);
    if (act == CLCNN_ACT_ID_LEAKY) return v > 0.0f ? v : alpha * v;
    return v;
}

#endif
