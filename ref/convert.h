/* convert.h - whole arrays between kbench's types and double. */
#ifndef KB_CONVERT_H
#define KB_CONVERT_H

#include "ref/types.h"

/* Decode `count` elements of any type to double (exact: every value of every
 * type is a double). Q4_K/Q6_K: count a multiple of 256. */
void kb_decode(kb_dtype t, const void *src, double *dst, int64_t count);
/* Round doubles to `t` (F32/F16/BF16/E4M3/E5M2, nearest even, IEEE overflow:
 * inf, or NaN for e4m3) into dst: the value an exact result becomes in that type. */
void kb_round_to(kb_dtype t, const double *src, void *dst, int64_t count);

#endif
