/* The per-device tuning file and applying it to CLBlast.
 *
 * File: <dir>/tune-<16 hex digits>.json, dir $CLCNN_TUNE_DIR when set, else the program
 * cache's (clcnn_cache_dir()), the digits an FNV-1a hash of the device name and driver
 * version. Layout (version 1):
 *   { "format": "clcnn-tune", "version": 1,
 *     "device": "...", "platform": "...", "driver": "...",
 *     "clblast": { "Xgemm": {"GEMMK": 0, ...all 16...},
 *                  "XgemmDirect": {"KWID": 2, ...all 10...},       (optional)
 *                  "GemmRoutine": {"XGEMM_MIN_INDIRECT_SIZE": 384} (optional) },
 *     "gemm_tuning": { "before_gflops": .., "after_gflops": .., "seconds": .., "tried": .. },
 *     "conv2d": [ ...convolution winners, see lib/tune/conv_db.c... ],         (optional)
 *     ...other sections are kept as they are... }
 * Version 1 files without "conv2d" (written before convolution tuning) read as before;
 * libraries that predate it keep the section when they rewrite the file.
 * Parameters are checked against CLBlast's rules before use: a bad value would make
 * CLBlast build a kernel that computes garbage, so an invalid file is ignored whole. */
#include "tune_internal.h"

#include <clblast_c.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const cc_xgemm_names[CC_XG_COUNT] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN",
};
const char *const cc_xgemm_direct_names[CC_XD_COUNT] = {
    "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD",
};

static int pow2(size_t x) {
    return x && !(x & (x - 1));
}
static int is_vw(size_t x) {
    return x == 1 || x == 2 || x == 4 || x == 8 || x == 16;
}

const char *cc_xgemm_invalid(const size_t v[CC_XG_COUNT], uint64_t local_mem, size_t max_wg) {
    for (int i = 0; i < CC_XG_COUNT; i++)
        if (v[i] > 4096) return "a parameter is out of range";
    if (v[CC_XG_GEMMK] > 1) return "GEMMK must be 0 or 1";
    if (v[CC_XG_SA] > 1 || v[CC_XG_SB] > 1 || v[CC_XG_STRM] > 1 || v[CC_XG_STRN] > 1)
        return "SA, SB, STRM and STRN must be 0 or 1";
    if (!is_vw(v[CC_XG_VWM]) || !is_vw(v[CC_XG_VWN])) return "VWM and VWN must be 1, 2, 4, 8, 16";
    const size_t sizes[] = {v[CC_XG_KWG],   v[CC_XG_KWI], v[CC_XG_MDIMA],
                            v[CC_XG_MDIMC], v[CC_XG_MWG], v[CC_XG_NDIMB],
                            v[CC_XG_NDIMC], v[CC_XG_NWG], v[CC_XG_KREG]};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (!pow2(sizes[i])) return "tile sizes and work-group dims must be powers of two";
    if (v[CC_XG_KWG] % v[CC_XG_KWI]) return "KWG must be a multiple of KWI";
    if (v[CC_XG_MWG] % (v[CC_XG_MDIMC] * v[CC_XG_VWM]))
        return "MWG must be a multiple of MDIMC*VWM";
    if (v[CC_XG_NWG] % (v[CC_XG_NDIMC] * v[CC_XG_VWN]))
        return "NWG must be a multiple of NDIMC*VWN";
    if (v[CC_XG_MWG] % (v[CC_XG_MDIMA] * v[CC_XG_VWM]))
        return "MWG must be a multiple of MDIMA*VWM";
    if (v[CC_XG_NWG] % (v[CC_XG_NDIMB] * v[CC_XG_VWN]))
        return "NWG must be a multiple of NDIMB*VWN";
    if (v[CC_XG_MWG] > 128 || v[CC_XG_NWG] > 128 || v[CC_XG_KWG] > 64)
        return "tiles above 128 (KWG above 64) are not used: seen to compute garbage";
    size_t threads = v[CC_XG_MDIMC] * v[CC_XG_NDIMC];
    if (v[CC_XG_GEMMK] == 0) {
        if (v[CC_XG_MDIMA] > threads || v[CC_XG_NDIMB] > threads)
            return "MDIMA and NDIMB must not exceed MDIMC*NDIMC";
        if (v[CC_XG_KWG] % (threads / v[CC_XG_MDIMA]))
            return "KWG must be a multiple of MDIMC*NDIMC/MDIMA";
        if (v[CC_XG_KWG] % (threads / v[CC_XG_NDIMB]))
            return "KWG must be a multiple of MDIMC*NDIMC/NDIMB";
        if (v[CC_XG_KREG] != 1) return "KREG must be 1 when GEMMK is 0";
    } else {
        /* 2-D register tiling (CLBlast's tuner: KWG = KWI = 1, no local memory). Its
         * strided-batched GEMM is wrong unless k is a multiple of KREG (NaN): lib/blas.c
         * runs those calls one item at a time. Seen on POCL (CLBlast 1.5.3): MWG != NWG
         * computed garbage (the routine sizes the grid from the n tiles with MWG), and so
         * did, or crashed, 1, 32 or 64 rows or columns per work-item. */
        if (v[CC_XG_MDIMA] != v[CC_XG_MDIMC] || v[CC_XG_NDIMB] != v[CC_XG_NDIMC])
            return "GEMMK 1 needs MDIMA == MDIMC and NDIMB == NDIMC";
        if (v[CC_XG_KREG] % v[CC_XG_VWN]) return "KREG must be a multiple of VWN";
        if (v[CC_XG_SA] || v[CC_XG_SB] || v[CC_XG_STRM] || v[CC_XG_STRN])
            return "GEMMK 1 needs SA = SB = STRM = STRN = 0";
        if (v[CC_XG_KWG] != 1 || v[CC_XG_KWI] != 1) return "GEMMK 1 needs KWG = KWI = 1";
        if (v[CC_XG_MWG] != v[CC_XG_NWG]) return "GEMMK 1 needs MWG == NWG";
        size_t mwi = v[CC_XG_MWG] / v[CC_XG_MDIMC], nwi = v[CC_XG_NWG] / v[CC_XG_NDIMC];
        if (mwi < 2 || mwi > 16 || nwi < 2 || nwi > 16)
            return "GEMMK 1 needs 2..16 rows and columns per work-item (MWG/MDIMC, NWG/NDIMC)";
    }
    if (max_wg && threads > max_wg) return "MDIMC*NDIMC exceeds the device's work-group size";
    uint64_t lmem = 4 * ((uint64_t)v[CC_XG_SA] * v[CC_XG_KWG] * v[CC_XG_MWG] +
                         (uint64_t)v[CC_XG_SB] * v[CC_XG_KWG] * v[CC_XG_NWG]);
    if (local_mem && lmem > local_mem) return "the tiles exceed the device's local memory";
    return NULL;
}

const char *cc_xgemm_direct_invalid(const size_t v[CC_XD_COUNT], uint64_t local_mem,
                                    size_t max_wg) {
    for (int i = 0; i < CC_XD_COUNT; i++)
        if (v[i] > 4096) return "a parameter is out of range";
    if (v[CC_XD_PADA] > 1 || v[CC_XD_PADB] > 1) return "PADA and PADB must be 0 or 1";
    if (!is_vw(v[CC_XD_VWMD]) || !is_vw(v[CC_XD_VWND])) return "VWMD and VWND must be 1..16";
    const size_t sizes[] = {v[CC_XD_KWID],   v[CC_XD_MDIMAD], v[CC_XD_MDIMCD],
                            v[CC_XD_NDIMBD], v[CC_XD_NDIMCD], v[CC_XD_WGD]};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (!pow2(sizes[i])) return "tile sizes and work-group dims must be powers of two";
    size_t wgd = v[CC_XD_WGD], threads = v[CC_XD_MDIMCD] * v[CC_XD_NDIMCD];
    if (wgd > 128) return "WGD above 128 is not used";
    if (wgd % v[CC_XD_KWID]) return "WGD must be a multiple of KWID";
    if (wgd % (v[CC_XD_MDIMCD] * v[CC_XD_VWMD])) return "WGD must be a multiple of MDIMCD*VWMD";
    if (wgd % (v[CC_XD_NDIMCD] * v[CC_XD_VWND])) return "WGD must be a multiple of NDIMCD*VWND";
    if (wgd % (v[CC_XD_MDIMAD] * v[CC_XD_VWMD])) return "WGD must be a multiple of MDIMAD*VWMD";
    if (wgd % (v[CC_XD_NDIMBD] * v[CC_XD_VWND])) return "WGD must be a multiple of NDIMBD*VWND";
    if (v[CC_XD_MDIMAD] > threads || v[CC_XD_NDIMBD] > threads)
        return "MDIMAD and NDIMBD must not exceed MDIMCD*NDIMCD";
    if (wgd % (threads / v[CC_XD_MDIMAD])) return "WGD must be a multiple of MDIMCD*NDIMCD/MDIMAD";
    if (wgd % (threads / v[CC_XD_NDIMBD])) return "WGD must be a multiple of MDIMCD*NDIMCD/NDIMBD";
    if (max_wg && threads > max_wg) return "MDIMCD*NDIMCD exceeds the device's work-group size";
    uint64_t lmem =
        4 * ((uint64_t)wgd * (wgd + v[CC_XD_PADA]) + (uint64_t)wgd * (wgd + v[CC_XD_PADB]));
    if (local_mem && lmem > local_mem) return "the tiles exceed the device's local memory";
    return NULL;
}

/* ---- files -------------------------------------------------------------------- */

int cc_tune_mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

clcnn_status cc_tune_write_atomic(const char *path, const char *data, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lx", path, (long)getpid(),
             (unsigned long)(uintptr_t)&tmp);
    FILE *f = fopen(tmp, "wb");
    CC_RETURN_IF(!f, CLCNN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cc_fail(CLCNN_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return CLCNN_OK;
}

int cc_tune_lock(const char *path) {
    char lp[4400];
    snprintf(lp, sizeof lp, "%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

void cc_tune_unlock(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

int clcnn_tune_file_path(const clcnn_device *dev, char *buf, size_t cap) {
    if (!buf || cap == 0) return 0;
    buf[0] = '\0';
    char dir[4000];
    const char *tune_dir = getenv("CLCNN_TUNE_DIR"); /* else beside the program cache */
    if (!dev) return 0;
    if (tune_dir && *tune_dir) {
        if (strlen(tune_dir) >= sizeof dir) return 0;
        snprintf(dir, sizeof dir, "%s", tune_dir);
    } else if (!clcnn_cache_dir(dir, sizeof dir)) {
        return 0;
    }
    uint64_t h = cc_hash64(CC_HASH_INIT, dev->info.name, strlen(dev->info.name) + 1);
    h = cc_hash64(h, dev->info.driver_version, strlen(dev->info.driver_version) + 1);
    snprintf(buf, cap, "%s/tune-%016llx.json", dir, (unsigned long long)h);
    return 1;
}

void cc_tune_record_identify(cc_tune_record *rec, const clcnn_device *dev) {
    snprintf(rec->device, sizeof rec->device, "%s", dev->info.name);
    snprintf(rec->platform, sizeof rec->platform, "%s", dev->info.platform_name);
    snprintf(rec->driver, sizeof rec->driver, "%s", dev->info.driver_version);
}

/* Read the integers named in `names` from object `obj` (all must be present, and no
 * other keys). Returns NULL or a reason. */
static const char *read_params(json_t *obj, const char *const *names, int count, size_t *out) {
    if (!json_is_object(obj)) return "is not an object";
    if ((int)json_object_size(obj) != count) return "does not have exactly the expected keys";
    for (int i = 0; i < count; i++) {
        json_t *v = json_object_get(obj, names[i]);
        if (!json_is_integer(v)) return "lacks a parameter or has a non-integer value";
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > (1 << 20)) return "has a parameter out of range";
        out[i] = (size_t)x;
    }
    return NULL;
}

static void copy_string(json_t *root, const char *key, char *dst, size_t cap) {
    const char *s = json_string_value(json_object_get(root, key));
    snprintf(dst, cap, "%s", s ? s : "");
}

static clcnn_status parse_record(json_t *root, const char *path, cc_tune_record *out) {
    cc_tune_record rec;
    memset(&rec, 0, sizeof rec);
    const char *fmt = json_string_value(json_object_get(root, "format"));
    CC_RETURN_IF(!fmt || strcmp(fmt, "clcnn-tune") != 0, CLCNN_ERR_FORMAT,
                 "%s is not a clcnn tuning file (\"format\" is not \"clcnn-tune\")", path);
    json_t *ver = json_object_get(root, "version");
    CC_RETURN_IF(!json_is_integer(ver) || json_integer_value(ver) != 1, CLCNN_ERR_FORMAT,
                 "%s: unsupported tuning file version (this library reads version 1)", path);
    copy_string(root, "device", rec.device, sizeof rec.device);
    copy_string(root, "platform", rec.platform, sizeof rec.platform);
    copy_string(root, "driver", rec.driver, sizeof rec.driver);
    CC_RETURN_IF(!rec.device[0], CLCNN_ERR_FORMAT, "%s: no \"device\" name", path);
    json_t *cb = json_object_get(root, "clblast");
    if (cb) {
        CC_RETURN_IF(!json_is_object(cb), CLCNN_ERR_FORMAT, "%s: \"clblast\" is not an object",
                     path);
        const char *key;
        json_t *val;
        json_object_foreach(cb, key, val) {
            const char *why = NULL;
            if (strcmp(key, "Xgemm") == 0) {
                why = read_params(val, cc_xgemm_names, CC_XG_COUNT, rec.xgemm);
                if (!why) why = cc_xgemm_invalid(rec.xgemm, 0, 0);
                rec.has_xgemm = 1;
            } else if (strcmp(key, "XgemmDirect") == 0) {
                why = read_params(val, cc_xgemm_direct_names, CC_XD_COUNT, rec.direct);
                if (!why) why = cc_xgemm_direct_invalid(rec.direct, 0, 0);
                rec.has_direct = 1;
            } else if (strcmp(key, "GemmRoutine") == 0) {
                static const char *const names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
                why = read_params(val, names, 1, &rec.min_indirect);
                rec.has_min_indirect = 1;
            } else {
                why = "is not a kernel this library tunes";
            }
            CC_RETURN_IF(why, CLCNN_ERR_FORMAT, "%s: clblast.%s %s", path, key, why);
        }
    }
    json_t *conv = json_object_get(root, "conv2d");
    if (conv) CC_TRY(cc_conv_entries_parse(conv, path, NULL, NULL));
    json_t *gt = json_object_get(root, "gemm_tuning");
    if (json_is_object(gt)) {
        rec.before_gflops = json_number_value(json_object_get(gt, "before_gflops"));
        rec.after_gflops = json_number_value(json_object_get(gt, "after_gflops"));
        rec.seconds = json_number_value(json_object_get(gt, "seconds"));
        rec.tried = (int)json_integer_value(json_object_get(gt, "tried"));
    }
    *out = rec;
    return CLCNN_OK;
}

clcnn_status cc_tune_record_read(const char *path, cc_tune_record *rec) {
    CC_RETURN_IF(!path || !rec, CLCNN_ERR_INVALID_ARG, "cc_tune_record_read: NULL argument");
    if (access(path, F_OK) != 0) return cc_fail(CLCNN_ERR_NOT_FOUND, "no tuning file %s", path);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    CC_RETURN_IF(!root, CLCNN_ERR_FORMAT, "tuning file %s is not valid JSON: %s (line %d)", path,
                 jerr.text, jerr.line);
    clcnn_status s = json_is_object(root)
                         ? parse_record(root, path, rec)
                         : cc_fail(CLCNN_ERR_FORMAT, "tuning file %s is not a JSON object", path);
    json_decref(root);
    return s;
}

static json_t *params_object(const char *const *names, const size_t *v, int count) {
    json_t *o = json_object();
    for (int i = 0; o && i < count; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)v[i]));
    return o;
}

static clcnn_status record_write(const char *path, const cc_tune_record *rec) {
    /* keep the other sections of an existing, valid file */
    json_t *root = NULL;
    cc_tune_record old;
    if (access(path, F_OK) == 0 && cc_tune_record_read(path, &old) == CLCNN_OK)
        root = json_load_file(path, 0, NULL);
    else
        clcnn_clear_error();
    if (!root) root = json_object();
    CC_RETURN_IF(!root, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
    json_object_set_new(root, "format", json_string("clcnn-tune"));
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "device", json_string(rec->device));
    json_object_set_new(root, "platform", json_string(rec->platform));
    json_object_set_new(root, "driver", json_string(rec->driver));
    json_t *cb = json_object();
    if (rec->has_xgemm)
        json_object_set_new(cb, "Xgemm", params_object(cc_xgemm_names, rec->xgemm, CC_XG_COUNT));
    if (rec->has_direct)
        json_object_set_new(cb, "XgemmDirect",
                            params_object(cc_xgemm_direct_names, rec->direct, CC_XD_COUNT));
    if (rec->has_min_indirect) {
        static const char *const names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
        json_object_set_new(cb, "GemmRoutine", params_object(names, &rec->min_indirect, 1));
    }
    json_object_set_new(root, "clblast", cb);
    json_t *gt = json_object();
    json_object_set_new(gt, "before_gflops", json_real(rec->before_gflops));
    json_object_set_new(gt, "after_gflops", json_real(rec->after_gflops));
    json_object_set_new(gt, "seconds", json_real(rec->seconds));
    json_object_set_new(gt, "tried", json_integer(rec->tried));
    json_object_set_new(root, "gemm_tuning", gt);
    char *text = cc_tune_dumps(root);
    json_decref(root);
    CC_RETURN_IF(!text, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (cc_tune_mkdirs(dir) != 0) {
            int e = errno;
            free(text);
            return cc_fail(CLCNN_ERR_IO, "cannot create directory %s: %s", dir, strerror(e));
        }
    }
    size_t len = strlen(text);
    text[len] = '\0';
    char *withnl = realloc(text, len + 2);
    if (withnl) {
        text = withnl;
        text[len++] = '\n';
        text[len] = '\0';
    }
    clcnn_status s = cc_tune_write_atomic(path, text, len);
    free(text);
    return s;
}

clcnn_status cc_tune_record_write(const char *path, const cc_tune_record *rec) {
    CC_RETURN_IF(!path || !rec, CLCNN_ERR_INVALID_ARG, "cc_tune_record_write: NULL argument");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        cc_tune_mkdirs(dir); /* for the lock file; record_write reports a failure */
    }
    /* under the lock: a convolution tuner in another process merges into the same file */
    int lock = cc_tune_lock(path);
    clcnn_status s = record_write(path, rec);
    cc_tune_unlock(lock);
    return s;
}

static clcnn_status override(const clcnn_device *dev, const char *kernel, const char *const *names,
                             const size_t *values, int count) {
    int code = CLBlastOverrideParameters(dev->id, kernel, CLBlastPrecisionSingle, (size_t)count,
                                         (const char **)names, values);
    CC_RETURN_IF(code != CLBlastSuccess, CLCNN_ERR_BLAS,
                 "CLBlastOverrideParameters(%s) failed with CLBlast status %d on %s", kernel, code,
                 dev->info.name);
    return CLCNN_OK;
}

clcnn_status cc_tune_record_apply(const clcnn_device *dev, const cc_tune_record *rec) {
    const char *why = NULL;
    if (rec->has_xgemm && (why = cc_xgemm_invalid(rec->xgemm, dev->info.local_mem_bytes,
                                                  dev->info.max_work_group_size)))
        return cc_fail(CLCNN_ERR_FORMAT, "tuned Xgemm parameters do not fit %s: %s", dev->info.name,
                       why);
    if (rec->has_direct && (why = cc_xgemm_direct_invalid(rec->direct, dev->info.local_mem_bytes,
                                                          dev->info.max_work_group_size)))
        return cc_fail(CLCNN_ERR_FORMAT, "tuned XgemmDirect parameters do not fit %s: %s",
                       dev->info.name, why);
    if (rec->has_xgemm) {
        CC_TRY(override(dev, "Xgemm", cc_xgemm_names, rec->xgemm, CC_XG_COUNT));
        const size_t *x = rec->xgemm; /* lib/blas.c works around CLBlast's batched GEMM */
        cc_blas_xgemm_shape sh = {x[CC_XG_GEMMK], x[CC_XG_MWG],  x[CC_XG_NWG],
                                  x[CC_XG_KWG],   x[CC_XG_KREG], x[CC_XG_VWM]};
        cc_blas_note_xgemm(dev->id, &sh);
    }
    if (rec->has_direct)
        CC_TRY(override(dev, "XgemmDirect", cc_xgemm_direct_names, rec->direct, CC_XD_COUNT));
    if (rec->has_min_indirect) {
        static const char *const names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
        CC_TRY(override(dev, "GemmRoutine", names, &rec->min_indirect, 1));
        cc_blas_note_min_indirect(dev->id, rec->min_indirect);
    }
    return CLCNN_OK;
}

/* ---- public API ---------------------------------------------------------------- */

clcnn_tune_mode clcnn_tune_mode_get(void) {
    const char *e = getenv("CLCNN_TUNE");
    if (!e) return CLCNN_TUNE_ON;
    if (!strcmp(e, "off") || !strcmp(e, "0") || !strcmp(e, "OFF")) return CLCNN_TUNE_OFF;
    if (!strcmp(e, "exhaustive")) return CLCNN_TUNE_EXHAUSTIVE;
    if (!strcmp(e, "find")) return CLCNN_TUNE_FIND;
    return CLCNN_TUNE_ON;
}

clcnn_status clcnn_tune_apply(clcnn_device *dev) {
    CC_RETURN_IF(!dev, CLCNN_ERR_INVALID_ARG, "clcnn_tune_apply: device is NULL");
    CC_RETURN_IF(clcnn_tune_mode_get() == CLCNN_TUNE_OFF, CLCNN_ERR_UNSUPPORTED,
                 "tuning is disabled (CLCNN_TUNE=off)");
    char path[4200];
    CC_RETURN_IF(!clcnn_tune_file_path(dev, path, sizeof path), CLCNN_ERR_NOT_FOUND,
                 "no tuning file: the disk cache is disabled (CLCNN_CACHE_DIR=off)");
    cc_tune_record rec;
    CC_TRY(cc_tune_record_read(path, &rec));
    CC_RETURN_IF(strcmp(rec.device, dev->info.name) != 0, CLCNN_ERR_FORMAT,
                 "tuning file %s was made for \"%s\", not \"%s\"", path, rec.device,
                 dev->info.name);
    clcnn_status s = cc_tune_record_apply(dev, &rec);
    if (s != CLCNN_OK) return cc_fail_append(s, " (from %s)", path);
    return CLCNN_OK;
}

/* Called by lib/blas.c before every CLBlast call: applies the stored parameters the
 * first time a physical device is used in this process. A missing, corrupted or
 * invalid file is ignored (CLBlast's defaults stay in force; CLCNN_VERBOSE=1 says why)
 * and leaves the caller's last-error message as it was. */
#define APPLIED_MAX 32
static pthread_mutex_t applied_lock = PTHREAD_MUTEX_INITIALIZER;
static cl_device_id applied[APPLIED_MAX];
static int applied_count;

void cc_tune_apply(clcnn_device *dev) {
    if (!dev) return;
    pthread_mutex_lock(&applied_lock);
    for (int i = 0; i < applied_count; i++) {
        if (applied[i] == dev->id) {
            pthread_mutex_unlock(&applied_lock);
            return;
        }
    }
    if (applied_count < APPLIED_MAX) applied[applied_count++] = dev->id;
    if (clcnn_tune_mode_get() != CLCNN_TUNE_OFF) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", clcnn_last_error());
        clcnn_status s = clcnn_tune_apply(dev);
        if (s == CLCNN_OK && cc_verbose())
            fprintf(stderr, "clcnn: applied tuned GEMM parameters for %s\n", dev->info.name);
        else if (s != CLCNN_OK && s != CLCNN_ERR_NOT_FOUND && cc_verbose())
            fprintf(stderr, "clcnn: ignoring the tuning file: %s\n", clcnn_last_error());
        if (saved[0])
            cc_fail(CLCNN_ERR_INVALID_ARG, "%s", saved); /* restore the message, not a failure */
        else
            clcnn_clear_error();
    }
    pthread_mutex_unlock(&applied_lock);
}

/* Mark dev as applied (the tuner sets parameters itself). */
void cc_tune_mark_applied(const clcnn_device *dev) {
    pthread_mutex_lock(&applied_lock);
    int found = 0;
    for (int i = 0; i < applied_count; i++)
        found |= applied[i] == dev->id;
    if (!found && applied_count < APPLIED_MAX) applied[applied_count++] = dev->id;
    pthread_mutex_unlock(&applied_lock);
}

clcnn_status clcnn_tune_show(clcnn_device *dev, char **json) {
    CC_RETURN_IF(!dev || !json, CLCNN_ERR_INVALID_ARG, "clcnn_tune_show: NULL argument");
    char path[4200];
    CC_RETURN_IF(!clcnn_tune_file_path(dev, path, sizeof path), CLCNN_ERR_NOT_FOUND,
                 "no tuning file: the disk cache is disabled (CLCNN_CACHE_DIR=off)");
    cc_tune_record rec;
    CC_TRY(cc_tune_record_read(path, &rec));
    json_t *root = json_load_file(path, 0, NULL);
    CC_RETURN_IF(!root, CLCNN_ERR_IO, "cannot read %s", path);
    char *text = cc_tune_dumps(root);
    json_decref(root);
    CC_RETURN_IF(!text, CLCNN_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path);
    *json = text;
    return CLCNN_OK;
}

static clcnn_status copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    CC_RETURN_IF(!f, CLCNN_ERR_IO, "cannot open %s: %s", from, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return cc_fail(CLCNN_ERR_OUT_OF_MEMORY, "out of host memory reading %s", from);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    clcnn_status s = bad ? cc_fail(CLCNN_ERR_IO, "cannot read %s", from)
                         : cc_tune_write_atomic(to, buf ? buf : "", len);
    free(buf);
    return s;
}

clcnn_status clcnn_tune_export(clcnn_device *dev, const char *path) {
    CC_RETURN_IF(!dev || !path, CLCNN_ERR_INVALID_ARG, "clcnn_tune_export: NULL argument");
    char own[4200];
    CC_RETURN_IF(!clcnn_tune_file_path(dev, own, sizeof own), CLCNN_ERR_NOT_FOUND,
                 "no tuning file: the disk cache is disabled (CLCNN_CACHE_DIR=off)");
    cc_tune_record rec;
    CC_TRY(cc_tune_record_read(own, &rec));
    return copy_file(own, path);
}

clcnn_status clcnn_tune_import(clcnn_device *dev, const char *path) {
    CC_RETURN_IF(!dev || !path, CLCNN_ERR_INVALID_ARG, "clcnn_tune_import: NULL argument");
    CC_RETURN_IF(clcnn_tune_mode_get() == CLCNN_TUNE_OFF, CLCNN_ERR_UNSUPPORTED,
                 "tuning is disabled (CLCNN_TUNE=off)");
    cc_tune_record rec;
    CC_TRY(cc_tune_record_read(path, &rec));
    CC_RETURN_IF(strcmp(rec.device, dev->info.name) != 0, CLCNN_ERR_INVALID_ARG,
                 "%s was tuned for \"%s\", not for this device \"%s\"", path, rec.device,
                 dev->info.name);
    CC_TRY(cc_tune_record_apply(dev, &rec));
    char own[4200];
    CC_RETURN_IF(!clcnn_tune_file_path(dev, own, sizeof own), CLCNN_ERR_IO,
                 "cannot store the tuning file: the disk cache is disabled (CLCNN_CACHE_DIR=off)");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", own);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    CC_RETURN_IF(cc_tune_mkdirs(dir) != 0, CLCNN_ERR_IO, "cannot create directory %s: %s", dir,
                 strerror(errno));
    int lock = cc_tune_lock(own);
    clcnn_status s = copy_file(path, own);
    cc_tune_unlock(lock);
    cc_conv_tune_forget(); /* its convolution winners replace those read before */
    CC_TRY(s);
    cc_tune_mark_applied(dev);
    return CLCNN_OK;
}
