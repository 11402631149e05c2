/* clcnn status codes and the thread-local detail message.
 *
 * Every fallible public function returns a clcnn_status: 0 is success, errors are
 * negative. When a call fails it also records a message in words a user can act on
 * (the shapes involved, the compiler log, the file offset); clcnn_last_error() returns
 * it for the calling thread until the next failing call on that thread. */
#ifndef CLCNN_STATUS_H
#define CLCNN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CLCNN_API __declspec(dllexport)
#else
#define CLCNN_API __attribute__((visibility("default")))
#endif

/* XX(name, value, text): the single list both the enum and clcnn_status_str() come from. */
#define CLCNN_STATUS_MAP(XX)                                                                       \
    XX(OK, 0, "success")                                                                           \
    XX(ERR_INVALID_ARG, -1, "invalid argument")                                                    \
    XX(ERR_SHAPE, -2, "tensor shapes do not match the operation")                                  \
    XX(ERR_NO_DEVICE, -3, "no matching OpenCL device")                                             \
    XX(ERR_OPENCL, -4, "OpenCL call failed")                                                       \
    XX(ERR_BUILD, -5, "OpenCL kernel build failed")                                                \
    XX(ERR_OUT_OF_MEMORY, -6, "out of memory")                                                     \
    XX(ERR_IO, -7, "file input/output failed")                                                     \
    XX(ERR_FORMAT, -8, "malformed file or data")                                                   \
    XX(ERR_BLAS, -9, "CLBlast call failed")                                                        \
    XX(ERR_UNSUPPORTED, -10, "not supported on this device or build")                              \
    XX(ERR_NUMERIC, -11, "numerical failure (NaN or Inf)")                                         \
    XX(ERR_INTERRUPTED, -12, "interrupted")                                                        \
    XX(ERR_NOT_FOUND, -13, "not found")                                                            \
    XX(ERR_DIST, -14, "a replica or rank failed, timed out or disagreed")

typedef enum clcnn_status {
#define CLCNN_STATUS_ENUM_(name, value, text) CLCNN_##name = value,
    CLCNN_STATUS_MAP(CLCNN_STATUS_ENUM_)
#undef CLCNN_STATUS_ENUM_
} clcnn_status;

/* A short, static description of a status code ("unknown status" for others). */
CLCNN_API const char *clcnn_status_str(clcnn_status s);

/* The detail message of the last failure on this thread ("" if none). The pointer
 * stays valid until the next clcnn call on this thread. */
CLCNN_API const char *clcnn_last_error(void);

/* Forget the last error message of this thread. */
CLCNN_API void clcnn_clear_error(void);

/* Set this thread's detail message (printf format) and return s: for code built on the
 * library (the clcnn command) whose failures are reported through clcnn_last_error. */
CLCNN_API clcnn_status clcnn_set_error(clcnn_status s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
