/* Helpers shared by every kernel file (expanded into each .cl at build time). */
#ifndef CLCNN_CL_COMMON_H
#define CLCNN_CL_COMMON_H

#include "clcnn_ids.h"

/* Apply a fused activation chosen by ACT_* id at run time. */
inline float cc_activate(float v, int act, float alpha) {
    if (act == CLCNN_ACT_ID_RELU) return fmax(v, 0.0f);
    if (act == CLCNN_ACT_ID_LEAKY) return v > 0.0f ? v : alpha * v;
    return v;
}

#endif
