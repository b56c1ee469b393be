/* add.c - ref_add: y = a + b (the residual connection of a decoder layer,
 * h = x + attn(x), y = h + mlp(h); HF Qwen2DecoderLayer). mag = |a| + |b|: a float
 * sum rounds once, relative to its result, which cancellation can make small. */
#include "ref/ref.h"

#include <math.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

void ref_add(int64_t count, const double *a, const double *b, double *y, double *mag) {
    for (int64_t i = 0; i < count; i++) {
        y[i] = a[i] + b[i];
        if (mag) mag[i] = fabs(a[i]) + fabs(b[i]);
    }
}
