/* util.c - small helpers of the contract (kbench.h). */
#include "bench/kbench.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int kb_fail(char *msg, int code, const char *fmt, ...) {
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, KB_MSG, fmt, ap);
        va_end(ap);
    }
    return code;
}

int kb_failn(char *msg, size_t n, const char *fmt, ...) {
    if (msg && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void kb_variant_init(kb_variant *v, const char *name) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->algo_id = -1;
    v->stages = -1;
    v->splitk = -1;
    v->swizzle = -1;
    v->custom = -1;
    v->workspace = -1;
    v->waves = -1.0;
    v->heuristic_rank = -1;
}

double kb_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
