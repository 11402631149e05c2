/* Internals of lib/tune shared by its files and tests/test_tune.c: CLBlast's GEMM kernel
 * parameters, their validity rules, and the tuning record stored in the per-device
 * tuning file. The convolution side of the file is in conv_db.h. */
#ifndef CLCNN_TUNE_INTERNAL_H
#define CLCNN_TUNE_INTERNAL_H

#include "conv_db.h"
#include "internal.h"

#include "clcnn/tune.h"

/* Parameters of CLBlast's Xgemm (indirect GEMM) kernel, in CLBlast's order (sorted by
 * name, as its database stores them). */
enum {
    CC_XG_GEMMK, /* 0: kernel with local-memory tiles; 1: 2-D register tiling */
    CC_XG_KREG,  /* register tiling in k (GEMMK 1), multiple of VWN */
    CC_XG_KWG,   /* tile size in k */
    CC_XG_KWI,   /* unroll factor of the k loop (divides KWG) */
    CC_XG_MDIMA, /* re-shaped tile of A: KDIMA x MDIMA work-items (GEMMK 0) */
    CC_XG_MDIMC, /* work-items per work-group in m */
    CC_XG_MWG,   /* tile size in m */
    CC_XG_NDIMB, /* re-shaped tile of B (GEMMK 0) */
    CC_XG_NDIMC, /* work-items per work-group in n */
    CC_XG_NWG,   /* tile size in n */
    CC_XG_SA,    /* cache A in local memory */
    CC_XG_SB,    /* cache B in local memory */
    CC_XG_STRM,  /* strided access in m */
    CC_XG_STRN,  /* strided access in n */
    CC_XG_VWM,   /* vector width in m */
    CC_XG_VWN,   /* vector width in n */
    CC_XG_COUNT
};
extern const char *const cc_xgemm_names[CC_XG_COUNT];

/* Parameters of CLBlast's XgemmDirect kernel (one kernel, no pre-processing; CLBlast
 * uses it when m*n*k < XGEMM_MIN_INDIRECT_SIZE^3). */
enum {
    CC_XD_KWID,   /* unroll factor of the k loop (divides WGD) */
    CC_XD_MDIMAD, /* re-shaped tile of A */
    CC_XD_MDIMCD, /* work-items per work-group in m */
    CC_XD_NDIMBD, /* re-shaped tile of B */
    CC_XD_NDIMCD, /* work-items per work-group in n */
    CC_XD_PADA,   /* pad the local-memory tile of A */
    CC_XD_PADB,   /* pad the local-memory tile of B */
    CC_XD_VWMD,   /* vector width in m */
    CC_XD_VWND,   /* vector width in n */
    CC_XD_WGD,    /* square tile size (m, n and k) */
    CC_XD_COUNT
};
extern const char *const cc_xgemm_direct_names[CC_XD_COUNT];

/* NULL when the configuration satisfies CLBlast's rules (integer work per work-item,
 * reshaped tiles, local memory <= local_mem bytes, work-group <= max_wg; pass 0 to
 * skip the two device limits), else a short static reason. */
const char *cc_xgemm_invalid(const size_t v[CC_XG_COUNT], uint64_t local_mem, size_t max_wg);
const char *cc_xgemm_direct_invalid(const size_t v[CC_XD_COUNT], uint64_t local_mem, size_t max_wg);

/* The GEMM tuner's search space (lib/tune/gemm_space.c). kind 0: Xgemm (CC_XG_COUNT
 * values), 1: XgemmDirect (CC_XD_COUNT). rng: the caller's generator state (never 0).
 * cc_gemm_rnd: the next 64 random bits. cc_gemm_random: a random configuration (cpu: no
 * vectors narrower than 4; exhaustive: the wider Xgemm ranges), not yet checked against
 * CLBlast's rules. cc_gemm_mutate: from with one or two parameters moved to a neighbour.
 * cc_gemm_seeds: the starting points for the device type, *rows the first of the
 * returned count, each kind's count of values long. */
uint64_t cc_gemm_rnd(uint64_t *rng);
void cc_gemm_random(uint64_t *rng, int kind, int cpu, int exhaustive, size_t *v);
void cc_gemm_mutate(uint64_t *rng, int kind, const size_t *from, size_t *v);
size_t cc_gemm_seeds(int kind, int gpu, const size_t **rows);

/* What a tuning file holds about GEMM. */
typedef struct cc_tune_record {
    char device[256]; /* device name it was made for */
    char platform[128];
    char driver[128];
    int has_xgemm;
    size_t xgemm[CC_XG_COUNT];
    int has_direct;
    size_t direct[CC_XD_COUNT];
    int has_min_indirect;
    size_t min_indirect; /* GemmRoutine XGEMM_MIN_INDIRECT_SIZE */
    /* how the winner was found (informational) */
    double before_gflops, after_gflops, seconds;
    int tried;
} cc_tune_record;

/* Read and validate a tuning file. CLCNN_ERR_NOT_FOUND when it does not exist,
 * CLCNN_ERR_FORMAT (message naming the path and the problem) when it is not a valid
 * tuning file; *rec is untouched on failure. */
clcnn_status cc_tune_record_read(const char *path, cc_tune_record *rec);
/* Write rec to path atomically (temporary file + rename), keeping any other top-level
 * sections of an existing valid file (other tuners store their results there too). */
clcnn_status cc_tune_record_write(const char *path, const cc_tune_record *rec);
/* Override CLBlast's parameters for this OpenCL device with those in rec. */
clcnn_status cc_tune_record_apply(const clcnn_device *dev, const cc_tune_record *rec);
/* Fill device/platform/driver of rec from dev. */
void cc_tune_record_identify(cc_tune_record *rec, const clcnn_device *dev);

/* Mark dev's parameters as set (the tuner and import set them), so that cc_tune_apply
 * does not apply the file again. */
void cc_tune_mark_applied(const clcnn_device *dev);

/* Create a directory and its parents (0 on success). */
int cc_tune_mkdirs(const char *path);
/* Write `len` bytes to path through a temporary file in the same directory + rename. */
clcnn_status cc_tune_write_atomic(const char *path, const char *data, size_t len);

/* Take an exclusive lock for read-modify-write of the tuning file at path (flock on
 * "<path>.lock", blocking): returns a descriptor for cc_tune_unlock, or -1 when no lock
 * could be made (the caller goes on without one). */
int cc_tune_lock(const char *path);
void cc_tune_unlock(int fd);

#endif
