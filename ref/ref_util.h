/* ref_util.h - what the reference files share (not part of the reference API). */
#ifndef KB_REF_UTIL_H
#define KB_REF_UTIL_H

#include <stdint.h>
#include <stddef.h>

/* A reference cannot fail on valid sizes; a broken precondition or no memory is a
 * bug in the caller: say so and abort. */
void ref_abort(const char *what) __attribute__((noreturn));
void *ref_malloc(size_t bytes);
void *ref_calloc(size_t count, size_t size);
static inline int64_t ref_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The references' bits must not depend on the compiler fusing a*b+c into an FMA.
 * GCC in ISO C mode (-std=c11, as CMake sets) already uses -ffp-contract=off;
 * clang needs the standard pragma, which each reference file states after
 * including this header. */

#endif
