/* Fault injection for tests: make the N-th call of one kind of operation fail, so that
 * tests can walk every failure point of a training step or a save and check that each
 * returns a status with a message, leaks nothing and leaves the device usable.
 *
 * Each hooked site asks cc_fault_hit() right before the real call and, when it answers 1,
 * behaves as if the call had failed:
 *   CC_FAULT_CREATE_BUFFER   lib/pool.c, clCreateBuffer -> CL_MEM_OBJECT_ALLOCATION_FAILURE
 *   CC_FAULT_BUILD_PROGRAM   lib/program.c, clBuildProgram from source -> build failure
 *   CC_FAULT_ENQUEUE_KERNEL  lib/program.c cc_launch, clEnqueueNDRangeKernel ->
 *                            CL_OUT_OF_RESOURCES
 *   CC_FAULT_FILE_WRITE      lib/program.c disk cache write, lib/nn/checkpoint_save.c,
 *                            lib/graph/onnx_export.c (each piece the packer writes) ->
 *                            a failing write()
 *
 * Configuration: $CLCNN_FAULT="kind:N[,kind:N...]" (read once, at the first hooked call),
 * kinds "create_buffer", "build_program", "enqueue_kernel", "file_write"; the N-th call
 * (from 1) of that kind in the process fails, once. Tests linked statically call
 * cc_fault_set() instead. With nothing configured a hook costs one relaxed atomic add.
 * Calls are counted from every thread together. Internal: never exported. */
#ifndef CLCNN_FAULT_H
#define CLCNN_FAULT_H

#include <stdint.h>

typedef enum cc_fault_kind {
    CC_FAULT_CREATE_BUFFER = 0,
    CC_FAULT_BUILD_PROGRAM,
    CC_FAULT_ENQUEUE_KERNEL,
    CC_FAULT_FILE_WRITE,
    CC_FAULT_KIND_COUNT
} cc_fault_kind;

/* Count one call of `kind`; 1 when this call must fail (the armed N-th one), else 0. */
int cc_fault_hit(cc_fault_kind kind);

/* Arm `kind` so that its n-th call from now fails (n >= 1), or disarm it (n = 0); the
 * kind's call counter restarts at 0 either way. Overrides $CLCNN_FAULT for that kind. */
void cc_fault_set(cc_fault_kind kind, uint64_t n);

/* Calls of `kind` counted since the last cc_fault_set/cc_fault_reset of it. */
uint64_t cc_fault_count(cc_fault_kind kind);

/* Whether an armed fault of `kind` has fired since it was armed. */
int cc_fault_fired(cc_fault_kind kind);

/* Disarm every kind and zero every counter. */
void cc_fault_reset(void);

/* "create_buffer", ... (NULL for an unknown kind). */
const char *cc_fault_name(cc_fault_kind kind);

#endif
