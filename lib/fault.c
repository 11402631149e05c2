/* Fault injection for tests (see fault.h). Counters and targets are atomics so that
 * hooks may be hit from several threads, each with its own device handle. */
#include "fault.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[CC_FAULT_KIND_COUNT] = {"create_buffer", "build_program",
                                                            "enqueue_kernel", "file_write"};

static uint64_t calls[CC_FAULT_KIND_COUNT];  /* calls since the last set/reset */
static uint64_t target[CC_FAULT_KIND_COUNT]; /* 0: disarmed; else the call that fails */
static int fired[CC_FAULT_KIND_COUNT];
static int any_armed; /* fast path: skip the target check when nothing is armed */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

const char *cc_fault_name(cc_fault_kind kind) {
    return (unsigned)kind < CC_FAULT_KIND_COUNT ? kind_names[kind] : NULL;
}

static void arm(int k, uint64_t n) {
    __atomic_store_n(&target[k], n, __ATOMIC_SEQ_CST);
    __atomic_store_n(&calls[k], 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fired[k], 0, __ATOMIC_SEQ_CST);
    int armed = 0;
    for (int i = 0; i < CC_FAULT_KIND_COUNT; i++)
        armed |= __atomic_load_n(&target[i], __ATOMIC_SEQ_CST) != 0;
    __atomic_store_n(&any_armed, armed, __ATOMIC_SEQ_CST);
}

/* $CLCNN_FAULT = "kind:N[,kind:N...]"; malformed entries are ignored (the library never
 * prints or fails because of a test knob). */
static void read_env(void) {
    const char *env = getenv("CLCNN_FAULT");
    if (!env || !*env) return;
    const char *p = env;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            char num[32];
            size_t vlen = len - nlen - 1;
            if (vlen > 0 && vlen < sizeof num) {
                memcpy(num, colon + 1, vlen);
                num[vlen] = '\0';
                char *e = NULL;
                unsigned long long n = strtoull(num, &e, 10);
                for (int k = 0; k < CC_FAULT_KIND_COUNT && e && *e == '\0'; k++)
                    if (strlen(kind_names[k]) == nlen && strncmp(p, kind_names[k], nlen) == 0)
                        arm(k, (uint64_t)n);
            }
        }
        p += len;
        if (*p == ',') p++;
    }
}

int cc_fault_hit(cc_fault_kind kind) {
    if ((unsigned)kind >= CC_FAULT_KIND_COUNT) return 0;
    pthread_once(&env_once, read_env);
    uint64_t n = __atomic_add_fetch(&calls[kind], 1, __ATOMIC_RELAXED);
    if (!__atomic_load_n(&any_armed, __ATOMIC_RELAXED)) return 0;
    if (n != __atomic_load_n(&target[kind], __ATOMIC_SEQ_CST)) return 0;
    __atomic_store_n(&fired[kind], 1, __ATOMIC_SEQ_CST);
    return 1;
}

void cc_fault_set(cc_fault_kind kind, uint64_t n) {
    if ((unsigned)kind >= CC_FAULT_KIND_COUNT) return;
    pthread_once(&env_once, read_env); /* so that a later first hit does not override it */
    arm(kind, n);
}

uint64_t cc_fault_count(cc_fault_kind kind) {
    if ((unsigned)kind >= CC_FAULT_KIND_COUNT) return 0;
    return __atomic_load_n(&calls[kind], __ATOMIC_SEQ_CST);
}

int cc_fault_fired(cc_fault_kind kind) {
    if ((unsigned)kind >= CC_FAULT_KIND_COUNT) return 0;
    return __atomic_load_n(&fired[kind], __ATOMIC_SEQ_CST);
}

void cc_fault_reset(void) {
    pthread_once(&env_once, read_env);
    for (int k = 0; k < CC_FAULT_KIND_COUNT; k++)
        arm(k, 0);
}
