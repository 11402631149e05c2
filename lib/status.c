/* Status codes and the thread-local detail message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[8192];

const char *clcnn_status_str(clcnn_status s) {
    switch (s) {
#define CLCNN_STATUS_STR_(name, value, text)                                                       \
    case CLCNN_##name:                                                                             \
        return text;
        CLCNN_STATUS_MAP(CLCNN_STATUS_STR_)
#undef CLCNN_STATUS_STR_
    }
    return "unknown status";
}

const char *clcnn_last_error(void) {
    return last_error;
}

void clcnn_clear_error(void) {
    last_error[0] = '\0';
}

static clcnn_status set_error(clcnn_status s, const char *fmt, va_list ap) {
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return s;
}

clcnn_status cc_fail(clcnn_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(s, fmt, ap);
    va_end(ap);
    return s;
}

/* cc_fail for callers outside the library */
clcnn_status clcnn_set_error(clcnn_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(s, fmt, ap);
    va_end(ap);
    return s;
}

clcnn_status cc_fail_append(clcnn_status s, const char *fmt, ...) {
    size_t used = strlen(last_error);
    if (used + 1 >= sizeof last_error) return s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + used, sizeof last_error - used, fmt, ap);
    va_end(ap);
    return s;
}
