/* ref_util.c - allocation and abort for the references. */
#include "ref/ref_util.h"

#include <stdio.h>
#include <stdlib.h>

void ref_abort(const char *what) {
    fprintf(stderr, "kbench reference: %s\n", what);
    abort();
}

void *ref_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ref_abort("out of memory");
    return p;
}

void *ref_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ref_abort("out of memory");
    return p;
}
